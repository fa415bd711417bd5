-- Views for the questions operators ask most (see README "The audit database").

-- Every hide/delete/reply with its comment and the rule that asked for it, newest first.
CREATE VIEW recent_actions AS
    SELECT a.updated_at, a.account, a.comment_id, c.username, c.text, d.rule, d.reason,
           a.action, a.status, a.attempts, a.last_error
    FROM actions a
    JOIN comments c ON c.id = a.comment_id
    LEFT JOIN decisions d ON d.comment_id = a.comment_id
    ORDER BY a.updated_at DESC;

-- API calls per account and hour.
CREATE VIEW api_calls_hourly AS
    SELECT substr(at, 1, 13) || ':00Z' AS hour, account, COUNT(*) AS calls,
           SUM(status IS NULL OR status >= 400) AS failed
    FROM api_calls GROUP BY hour, account;
