-- Operators' corrections, as labels the classifier can be retrained on: `igmod label`, and
-- every unhide by `igmod undo` (a comment igmod should have left alone).
CREATE TABLE labels (
    id         INTEGER PRIMARY KEY,
    comment_id TEXT NOT NULL REFERENCES comments (id),
    account    TEXT NOT NULL,
    label      TEXT NOT NULL CHECK (label IN ('scam', 'ok')),
    source     TEXT NOT NULL CHECK (source IN ('label', 'undo')),
    who        TEXT,                        -- the operator's login name, when known
    labeled_at TEXT NOT NULL
);
CREATE INDEX labels_comment ON labels (comment_id, id);
