-- A delivery whose body digest is on record is not acted on again (a retry, or a captured
-- delivery replayed): the receiver looks the digest up before writing.
CREATE INDEX webhook_events_digest ON webhook_events (body_sha256);
