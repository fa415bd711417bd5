-- Seconds from a comment's time to its hide or delete being applied, kept on the action when
-- it is done, so that `igmod report` reads detection latency from one table: joining a
-- million actions to their comments took over a second.
ALTER TABLE actions ADD COLUMN detect_secs INTEGER;
UPDATE actions SET detect_secs = (
    SELECT MAX(0, CAST((julianday(actions.updated_at) - julianday(c.created_at)) * 86400 AS INTEGER))
    FROM comments c WHERE c.id = actions.comment_id AND c.created_at IS NOT NULL)
WHERE status = 'done' AND action IN ('hide', 'delete');
