-- Rules engine v2: replies as actions (and unhide for undo), repeated-text detection,
-- the account's own username, and per-day rule hit counts.

ALTER TABLE comments ADD COLUMN text_key TEXT;   -- hash of the normalised text (for `repeated`)
CREATE INDEX comments_text_key ON comments (account, text_key, first_seen_at);

ALTER TABLE account_state ADD COLUMN username TEXT;  -- the account's own username, when seen

CREATE TABLE decisions_v2 (
    comment_id TEXT PRIMARY KEY REFERENCES comments (id),
    account    TEXT NOT NULL,
    rule       TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('approve', 'delete', 'hide', 'reply', 'flag')),
    dry_run    INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
    reason     TEXT NOT NULL,
    decided_at TEXT NOT NULL
);
INSERT INTO decisions_v2 SELECT comment_id, account, rule, action, dry_run, reason, decided_at FROM decisions;
DROP TABLE decisions;
ALTER TABLE decisions_v2 RENAME TO decisions;
CREATE INDEX decisions_account_time ON decisions (account, decided_at);

CREATE TABLE actions_v2 (
    id         INTEGER PRIMARY KEY,
    comment_id TEXT NOT NULL REFERENCES comments (id),
    account    TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('hide', 'delete', 'reply', 'unhide')),
    message    TEXT,                        -- the reply text, for action = 'reply'
    status     TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (comment_id, action)
);
INSERT INTO actions_v2 (id, comment_id, account, action, status, attempts, last_error, created_at, updated_at)
    SELECT id, comment_id, account, action, status, attempts, last_error, created_at, updated_at FROM actions;
DROP TABLE actions;
ALTER TABLE actions_v2 RENAME TO actions;
CREATE INDEX actions_pending ON actions (account, status, id);

CREATE VIEW rule_hits_daily AS
    SELECT substr(decided_at, 1, 10) AS day, account, rule, action, COUNT(*) AS hits
    FROM decisions GROUP BY day, account, rule, action;
