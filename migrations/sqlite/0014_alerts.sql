-- `[[alerts]]`: per cause (an event kind, and the account it concerns), whether it is firing
-- and when a person was last told, so that each cause alerts at most once a day (restarts
-- included) and a "resolved" follows a told firing.
CREATE TABLE alert_state (
    cause TEXT PRIMARY KEY,
    firing INTEGER NOT NULL DEFAULT 0,
    notified INTEGER NOT NULL DEFAULT 0,
    last_sent_at TEXT
);
