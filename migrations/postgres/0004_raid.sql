-- The raid guard's post closures (src/raid.rs). A row is written before the
-- `comment_enabled=false` call is sent (status 'closing'), so a crash never loses a closure
-- nor the reopening it owes: 'closing' -> 'closed' -> 'reopening' -> 'reopened'
-- ('failed': Meta refused the switch for good). `attempts` > 0 in 'closing' or 'reopening'
-- means the outcome of a sent switch is unknown: the post's is_comment_enabled is read back.
CREATE TABLE raid_closures (
    id          BIGSERIAL PRIMARY KEY,
    account     TEXT NOT NULL,
    media_id    TEXT NOT NULL,
    removed     BIGINT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('closing', 'closed', 'reopening', 'reopened', 'failed')),
    attempts    BIGINT NOT NULL DEFAULT 0,
    decided_at  TEXT NOT NULL,
    closed_at   TEXT,
    reopen_at   TEXT NOT NULL,
    reopened_at TEXT,
    last_error  TEXT
);
CREATE INDEX raid_closures_account ON raid_closures (account, status, media_id);
-- The guard counts each guarded account's hides/deletes done within its window at every poll:
-- without this index that reads every done action of the account.
CREATE INDEX actions_done_at ON actions (account, status, updated_at);
