-- The review queue in the browser (src/review/): one settlement per comment, and labels that
-- say they came from a reviewer (source 'review', `who` = the reviewer's name).

CREATE TABLE labels_v2 (
    id         INTEGER PRIMARY KEY,
    comment_id TEXT NOT NULL REFERENCES comments (id),
    account    TEXT NOT NULL,
    label      TEXT NOT NULL CHECK (label IN ('scam', 'ok')),
    source     TEXT NOT NULL CHECK (source IN ('label', 'undo', 'review')),
    who        TEXT,
    labeled_at TEXT NOT NULL
);
INSERT INTO labels_v2 SELECT id, comment_id, account, label, source, who, labeled_at FROM labels;
DROP TABLE labels;
ALTER TABLE labels_v2 RENAME TO labels;
CREATE INDEX labels_comment ON labels (comment_id, id);

-- A comment leaves the queue once: the primary key makes a second click (or a second
-- reviewer) a no-op, so an unhide or a removal is queued exactly once.
CREATE TABLE reviews (
    comment_id  TEXT PRIMARY KEY REFERENCES comments (id),
    account     TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('right', 'wrong', 'remove')),
    who         TEXT NOT NULL,
    reviewed_at TEXT NOT NULL
);
CREATE INDEX reviews_time ON reviews (reviewed_at);
