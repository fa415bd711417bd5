-- The id Meta gave igmod's own reply: when the reply comes back in a later read it is
-- recognised as the account's own even if Meta leaves out its author.
ALTER TABLE actions ADD COLUMN result_id TEXT;
CREATE INDEX actions_result_id ON actions (result_id) WHERE result_id IS NOT NULL;
