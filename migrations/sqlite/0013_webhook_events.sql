-- Every webhook delivery, written before Meta is answered 200: one row per comment change
-- (or one row for a delivery that carries none). `payload` holds the change's value until the
-- account's task has decided the comment (`outcome` then says what became of it), so an event
-- answered 200 and not yet acted on survives a crash. `body_sha256` is the delivery's digest,
-- shared by the rows of one delivery; the body itself is not kept.
CREATE TABLE webhook_events (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    account TEXT,
    ig_user_id TEXT,
    field TEXT,
    comment_id TEXT,
    outcome TEXT NOT NULL,
    payload TEXT,
    processed_at TEXT
);
CREATE INDEX webhook_events_pending ON webhook_events (account, id) WHERE outcome = 'pending';
CREATE INDEX webhook_events_account_time ON webhook_events (account, received_at);
