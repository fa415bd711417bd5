-- Meta refuses one account's writes for a while (code 4/2207051: account restricted; 368:
-- policy block): its hides and deletes wait until then, its polling goes on. Kept here so a
-- restart honours the pause; the strikes make the back-off grow while Meta keeps refusing.
ALTER TABLE account_state ADD COLUMN writes_paused_until TEXT;
ALTER TABLE account_state ADD COLUMN writes_paused_reason TEXT;
ALTER TABLE account_state ADD COLUMN write_block_strikes BIGINT NOT NULL DEFAULT 0;
