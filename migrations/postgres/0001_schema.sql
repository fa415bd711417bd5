-- The PostgreSQL schema: the same tables, columns and views as migrations/sqlite/ after its
-- 0016 (tests/postgres.rs compares the two). Times stay RFC 3339 UTC text, as in SQLite, so
-- that the audit queries read the same on both; flags stay 0/1 integers.

CREATE TABLE comments (
    id            TEXT PRIMARY KEY,
    account       TEXT NOT NULL,
    media_id      TEXT NOT NULL,
    parent_id     TEXT,
    username      TEXT,
    from_id       TEXT,
    text          TEXT,
    created_at    TEXT,
    first_seen_at TEXT NOT NULL,
    disposition   TEXT NOT NULL CHECK (disposition IN ('evaluated', 'baseline', 'own')),
    text_key      TEXT,
    incomplete    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX comments_account_seen ON comments (account, first_seen_at);
CREATE INDEX comments_media ON comments (media_id);
CREATE INDEX comments_text_key ON comments (account, text_key, first_seen_at);

CREATE TABLE decisions (
    comment_id TEXT PRIMARY KEY REFERENCES comments (id),
    account    TEXT NOT NULL,
    rule       TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('approve', 'delete', 'hide', 'reply', 'flag')),
    dry_run    BIGINT NOT NULL CHECK (dry_run IN (0, 1)),
    reason     TEXT NOT NULL,
    decided_at TEXT NOT NULL
);
CREATE INDEX decisions_account_time ON decisions (account, decided_at);

CREATE TABLE actions (
    id          BIGSERIAL PRIMARY KEY,
    comment_id  TEXT NOT NULL REFERENCES comments (id),
    account     TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('hide', 'delete', 'reply', 'unhide')),
    message     TEXT,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    attempts    BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    result_id   TEXT,
    detect_secs BIGINT,
    UNIQUE (comment_id, action)
);
CREATE INDEX actions_pending ON actions (account, status, id);
CREATE INDEX actions_result_id ON actions (result_id) WHERE result_id IS NOT NULL;

CREATE TABLE api_calls (
    id       BIGSERIAL PRIMARY KEY,
    account  TEXT NOT NULL,
    at       TEXT NOT NULL,
    method   TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    status   BIGINT
);
CREATE INDEX api_calls_account_at ON api_calls (account, at);

CREATE TABLE media_progress (
    account        TEXT NOT NULL,
    media_id       TEXT NOT NULL,
    comments_count BIGINT NOT NULL,
    checked_at     TEXT NOT NULL,
    PRIMARY KEY (account, media_id)
);

CREATE TABLE account_state (
    account                 TEXT PRIMARY KEY,
    baseline_done_at        TEXT,
    last_poll_at            TEXT,
    last_poll_status        TEXT,
    next_due_at             TEXT,
    paused_until            TEXT,
    paused_reason           TEXT,
    last_error              TEXT,
    username                TEXT,
    throttle_strikes        BIGINT NOT NULL DEFAULT 0,
    usage_pct               BIGINT,
    usage_at                TEXT,
    effective_interval_secs BIGINT,
    swept_at                TEXT
);

CREATE TABLE tokens (
    account                TEXT PRIMARY KEY,
    status                 TEXT NOT NULL CHECK (status IN ('ok', 'invalid')),
    expires_at             TEXT,
    refreshed_at           TEXT,
    invalid_reason         TEXT,
    checked_at             TEXT NOT NULL,
    token                  TEXT,
    source_hash            TEXT,
    next_check_at          TEXT,
    token_type             TEXT,
    never_expires          BIGINT NOT NULL DEFAULT 0,
    data_access_expires_at TEXT,
    scopes                 TEXT,
    validated_at           TEXT,
    expiry_estimated       BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE app_state (
    id            BIGINT PRIMARY KEY CHECK (id = 1),
    paused_until  TEXT,
    paused_reason TEXT,
    usage_pct     BIGINT,
    usage_at      TEXT
);
INSERT INTO app_state (id) VALUES (1);

CREATE TABLE _probe (at TEXT NOT NULL);

CREATE TABLE labels (
    id         BIGSERIAL PRIMARY KEY,
    comment_id TEXT NOT NULL REFERENCES comments (id),
    account    TEXT NOT NULL,
    label      TEXT NOT NULL CHECK (label IN ('scam', 'ok')),
    source     TEXT NOT NULL CHECK (source IN ('label', 'undo')),
    who        TEXT,
    labeled_at TEXT NOT NULL
);
CREATE INDEX labels_comment ON labels (comment_id, id);

CREATE TABLE webhook_events (
    id           BIGSERIAL PRIMARY KEY,
    received_at  TEXT NOT NULL,
    body_sha256  TEXT NOT NULL,
    account      TEXT,
    ig_user_id   TEXT,
    field        TEXT,
    comment_id   TEXT,
    outcome      TEXT NOT NULL,
    payload      TEXT,
    processed_at TEXT
);
CREATE INDEX webhook_events_pending ON webhook_events (account, id) WHERE outcome = 'pending';
CREATE INDEX webhook_events_account_time ON webhook_events (account, received_at);

CREATE TABLE alert_state (
    cause        TEXT PRIMARY KEY,
    firing       BIGINT NOT NULL DEFAULT 0,
    notified     BIGINT NOT NULL DEFAULT 0,
    last_sent_at TEXT
);

CREATE VIEW rule_hits_daily AS
    SELECT substr(decided_at, 1, 10) AS day, account, rule, action, COUNT(*) AS hits
    FROM decisions GROUP BY 1, account, rule, action;

CREATE VIEW recent_actions AS
    SELECT a.updated_at, a.account, a.comment_id, c.username, c.text, d.rule, d.reason,
           a.action, a.status, a.attempts, a.last_error
    FROM actions a
    JOIN comments c ON c.id = a.comment_id
    LEFT JOIN decisions d ON d.comment_id = a.comment_id
    ORDER BY a.updated_at DESC;

CREATE VIEW api_calls_hourly AS
    SELECT substr(at, 1, 13) || ':00Z' AS hour, account, COUNT(*) AS calls,
           SUM(CASE WHEN status IS NULL OR status >= 400 THEN 1 ELSE 0 END) AS failed
    FROM api_calls GROUP BY 1, account;

CREATE TABLE account_leases (
    account    TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX account_leases_expiry ON account_leases (expires_at);
CREATE INDEX account_leases_holder ON account_leases (holder);

CREATE TABLE instances (
    id         TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    started_at TEXT NOT NULL,
    seen_at    TEXT NOT NULL
);
