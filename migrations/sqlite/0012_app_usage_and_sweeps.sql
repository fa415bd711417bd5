-- The app's own usage (X-App-Usage speaks for every account of the app, so every account
-- slows down on it), and when each account's posts were last re-read in full (the reconcile
-- sweep that finds replies on older threads the counts cannot reveal).
ALTER TABLE app_state ADD COLUMN usage_pct INTEGER;
ALTER TABLE app_state ADD COLUMN usage_at TEXT;
ALTER TABLE account_state ADD COLUMN swept_at TEXT;
