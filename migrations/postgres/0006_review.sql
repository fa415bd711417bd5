-- The review queue in the browser (src/review/): one settlement per comment, and labels that
-- say they came from a reviewer (source 'review', `who` = the reviewer's name).

ALTER TABLE labels DROP CONSTRAINT labels_source_check;
ALTER TABLE labels ADD CONSTRAINT labels_source_check
    CHECK (source IN ('label', 'undo', 'review'));

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
