-- 1 while `tokens.expires_at` is only the documented upper bound (a refresh was refused and
-- Meta never said when the token ends): status shows the token as unverified, not "ok".
ALTER TABLE tokens ADD COLUMN expiry_estimated INTEGER NOT NULL DEFAULT 0;
