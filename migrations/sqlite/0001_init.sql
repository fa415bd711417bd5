-- igmod audit and state tables. Timestamps are RFC 3339 UTC text with milliseconds
-- (2026-11-28T17:00:00.123Z): fixed width, so text order is time order.

-- Every comment igmod has seen, once.
CREATE TABLE comments (
    id            TEXT PRIMARY KEY,
    account       TEXT NOT NULL,
    media_id      TEXT NOT NULL,
    parent_id     TEXT,                 -- set for replies
    username      TEXT,
    from_id       TEXT,
    text          TEXT,
    created_at    TEXT,                 -- Meta's timestamp, normalised; NULL if unparseable
    first_seen_at TEXT NOT NULL,
    -- 'evaluated': the rules ran on it; 'baseline': it was there before igmod's first poll and
    -- backfill is off; 'own': written by the account itself, never moderated.
    disposition   TEXT NOT NULL CHECK (disposition IN ('evaluated', 'baseline', 'own'))
);
CREATE INDEX comments_account_seen ON comments (account, first_seen_at);
CREATE INDEX comments_media ON comments (media_id);

-- Exactly one row per comment that matched a rule.
CREATE TABLE decisions (
    comment_id TEXT PRIMARY KEY REFERENCES comments (id),
    account    TEXT NOT NULL,
    rule       TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('approve', 'delete', 'hide', 'flag')),
    dry_run    INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
    reason     TEXT NOT NULL,
    decided_at TEXT NOT NULL
);
CREATE INDEX decisions_account_time ON decisions (account, decided_at);

-- The outbox: written 'pending' before the Graph API call, closed after it.
CREATE TABLE actions (
    id         INTEGER PRIMARY KEY,
    comment_id TEXT NOT NULL REFERENCES comments (id),
    account    TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('hide', 'delete')),
    status     TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,   -- calls started; > 0 while pending = outcome unknown
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (comment_id, action)
);
CREATE INDEX actions_pending ON actions (account, status, id);

-- The call ledger behind the hourly budget: one row per HTTP request sent.
CREATE TABLE api_calls (
    id       INTEGER PRIMARY KEY,
    account  TEXT NOT NULL,
    at       TEXT NOT NULL,
    method   TEXT NOT NULL,
    endpoint TEXT NOT NULL,                 -- path only: no query string, no token
    status   INTEGER                        -- HTTP status; NULL when no response arrived
);
CREATE INDEX api_calls_account_at ON api_calls (account, at);

-- Per-media progress: the comments_count last fully read. Cursors go stale, so they are not kept.
CREATE TABLE media_progress (
    account        TEXT NOT NULL,
    media_id       TEXT NOT NULL,
    comments_count INTEGER NOT NULL,
    checked_at     TEXT NOT NULL,
    PRIMARY KEY (account, media_id)
);

-- Scheduling and health per account: a restart keeps the rhythm.
CREATE TABLE account_state (
    account          TEXT PRIMARY KEY,
    baseline_done_at TEXT,                  -- first complete poll (backfill = false)
    last_poll_at     TEXT,
    last_poll_status TEXT,
    next_due_at      TEXT,
    paused_until     TEXT,
    paused_reason    TEXT,
    last_error       TEXT
);

-- Token health. Never the token itself in this table until refreshed tokens are stored.
CREATE TABLE tokens (
    account        TEXT PRIMARY KEY,
    status         TEXT NOT NULL CHECK (status IN ('ok', 'invalid')),
    expires_at     TEXT,
    refreshed_at   TEXT,
    invalid_reason TEXT,
    checked_at     TEXT NOT NULL
);
