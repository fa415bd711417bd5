-- Tokens v3: what validation learned. Facebook Login with [app] asks debug_token; Instagram
-- Login knows only what refreshes say. All NULL until known; a new operator token clears them.
ALTER TABLE tokens ADD COLUMN token_type TEXT;                 -- debug_token type: USER, PAGE
ALTER TABLE tokens ADD COLUMN never_expires INTEGER NOT NULL DEFAULT 0;  -- debug_token expires_at = 0
ALTER TABLE tokens ADD COLUMN data_access_expires_at TEXT;     -- Facebook data access ends (90 days idle)
ALTER TABLE tokens ADD COLUMN scopes TEXT;                     -- granted permissions, comma-separated
ALTER TABLE tokens ADD COLUMN validated_at TEXT;               -- last validation that found the token usable
