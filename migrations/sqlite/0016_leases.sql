-- Per-account leases and the live instances, for several igmod instances sharing one
-- database (PostgreSQL); on SQLite the one instance holds every lease.
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
    pid        INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    seen_at    TEXT NOT NULL
);
