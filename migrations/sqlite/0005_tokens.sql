-- Tokens v2: refreshed tokens (the only place igmod writes a token), the hash of the last
-- operator-supplied token (never the token: a different one in the env/file wins), and when to
-- check again.
ALTER TABLE tokens ADD COLUMN token TEXT;            -- a token igmod refreshed; NULL: use the operator's
ALTER TABLE tokens ADD COLUMN source_hash TEXT;      -- sha256 of the operator-supplied token
ALTER TABLE tokens ADD COLUMN next_check_at TEXT;    -- next refresh attempt
