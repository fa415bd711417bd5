-- Budget v2: throttling back-off that survives restarts, Meta's usage signal, the effective
-- poll interval (for `status`), and an app-wide pause (code 4 throttles the whole app).

ALTER TABLE account_state ADD COLUMN throttle_strikes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE account_state ADD COLUMN usage_pct INTEGER;          -- largest usage percentage last seen
ALTER TABLE account_state ADD COLUMN usage_at TEXT;
ALTER TABLE account_state ADD COLUMN effective_interval_secs INTEGER;

CREATE TABLE app_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    paused_until  TEXT,
    paused_reason TEXT
);
INSERT INTO app_state (id) VALUES (1);
