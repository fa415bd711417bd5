//! Comments, decisions and the action outbox.

use std::collections::HashSet;

use super::{Backend, Store, StoreError};
use crate::rules::Action;
use crate::timefmt;

/// A comment as first seen.
#[derive(Debug, Clone)]
pub struct NewComment {
    pub id: String,
    pub account: String,
    pub media_id: String,
    pub parent_id: Option<String>,
    pub username: Option<String>,
    pub from_id: Option<String>,
    pub text: Option<String>,
    /// Already normalised to the stored format.
    pub created_at: Option<String>,
    /// [`crate::rules::RuleSet::text_key`] of the text.
    pub text_key: Option<String>,
}

/// Why a comment was or was not run through the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Evaluated,
    /// There before the first poll, and backfill is off.
    Baseline,
    /// Written by the account itself.
    Own,
}

impl Disposition {
    fn as_str(self) -> &'static str {
        match self {
            Disposition::Evaluated => "evaluated",
            Disposition::Baseline => "baseline",
            Disposition::Own => "own",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewDecision {
    pub rule: String,
    pub action: Action,
    pub reason: String,
    pub dry_run: bool,
    /// The rendered reply, for `action = reply`.
    pub message: Option<String>,
    /// Decided but not to be written (Meta supports no such write here, e.g. on a live
    /// video's comment): no action is queued; `reason` says why.
    pub not_written: bool,
}

/// An outbox row still to be applied.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingAction {
    pub id: i64,
    pub comment_id: String,
    /// The comment's thread parent, for replies.
    pub parent_id: Option<String>,
    pub action: String,
    /// The rule that decided it (`None` for an operator's unhide).
    pub rule: Option<String>,
    pub message: Option<String>,
    /// Calls already started for it: above zero, the last outcome is unknown.
    pub attempts: i64,
    /// The comment's own time, as stored (for the detection latency).
    pub comment_created_at: Option<String>,
}

/// A decided comment with its action's state, for summaries.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActedComment {
    pub comment_id: String,
    pub account: String,
    pub username: Option<String>,
    pub text: Option<String>,
    pub rule: String,
    pub action: String,
    pub reason: String,
    pub dry_run: bool,
    pub status: Option<String>,
}

/// A stored comment that the rules evaluated, with what was decided.
#[derive(Debug, Clone)]
pub struct StoredComment {
    pub id: String,
    pub media_id: String,
    pub parent_id: Option<String>,
    pub username: Option<String>,
    pub text: Option<String>,
    pub text_key: Option<String>,
    /// Written at (or, if unknown, first seen at).
    pub at: chrono::DateTime<chrono::Utc>,
    pub rule: Option<String>,
    pub action: Option<String>,
}

impl Store {
    /// Comments of an account first seen since `since` that went through the rules, oldest first.
    pub async fn evaluated_comments_since(
        &self,
        account: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<StoredComment>, StoreError> {
        with_pool!(self, |pool| {
            type Row = (
                String,
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
                String,
                Option<String>,
                Option<String>,
            );
            let rows: Vec<Row> = sqlx::query_as(
            "SELECT c.id, c.media_id, c.parent_id, c.username, c.text, c.text_key, c.created_at,
                    c.first_seen_at, d.rule, d.action
             FROM comments c LEFT JOIN decisions d ON d.comment_id = c.id
             WHERE c.account = $1 AND c.disposition = 'evaluated' AND c.first_seen_at >= $2
             ORDER BY c.first_seen_at, c.id",
        )
        .bind(account)
        .bind(timefmt::format(since))
        .fetch_all(pool)
        .await?;
            Ok(rows
                .into_iter()
                .map(
                    |(
                        id,
                        media_id,
                        parent_id,
                        username,
                        text,
                        text_key,
                        created,
                        seen,
                        rule,
                        action,
                    )| {
                        let at = created
                            .as_deref()
                            .and_then(timefmt::parse)
                            .or_else(|| timefmt::parse(&seen))
                            .unwrap_or_default();
                        StoredComment {
                            id,
                            media_id,
                            parent_id,
                            username,
                            text,
                            text_key,
                            at,
                            rule,
                            action,
                        }
                    },
                )
                .collect())
        })
    }

    /// Which of these comment ids are already recorded.
    pub async fn known_comment_ids(&self, ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        with_pool!(self, |pool| {
            if ids.is_empty() {
                return Ok(HashSet::new());
            }
            let json = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
            let rows: Vec<(String,)> = sqlx::query_as(if pool.is_postgres() {
                "SELECT id FROM comments WHERE id IN (SELECT json_array_elements_text($1::json))"
            } else {
                "SELECT id FROM comments WHERE id IN (SELECT value FROM json_each($1))"
            })
            .bind(json)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    /// Records a comment, its decision and its pending action in one transaction.
    /// Returns `false` (and writes nothing) when the comment was already recorded:
    /// a comment is decided once and never again.
    pub async fn record_comment(
        &self,
        c: &NewComment,
        disposition: Disposition,
        decision: Option<&NewDecision>,
    ) -> Result<bool, StoreError> {
        self.record_comment_in(c, disposition, decision, None).await
    }

    /// [`Store::record_comment`] with the comment's detected language (ISO 639-1; `None`
    /// when unknown or not detected), written on the comment and on its decision.
    pub async fn record_comment_in(
        &self,
        c: &NewComment,
        disposition: Disposition,
        decision: Option<&NewDecision>,
        lang: Option<&str>,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let now = timefmt::now();
            let mut tx = pool.begin_write().await?;
            let inserted = sqlx::query(
            "INSERT INTO comments (id, account, media_id, parent_id, username, from_id, text,
                                   created_at, first_seen_at, disposition, text_key, incomplete, lang)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, CASE WHEN $7 IS NULL OR $5 IS NULL THEN 1 ELSE 0 END, $12)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&c.id)
        .bind(&c.account)
        .bind(&c.media_id)
        .bind(&c.parent_id)
        .bind(&c.username)
        .bind(&c.from_id)
        .bind(&c.text)
        .bind(&c.created_at)
        .bind(&now)
        .bind(disposition.as_str())
        .bind(&c.text_key)
        .bind(lang)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
            if !inserted {
                tx.rollback().await?;
                return Ok(false);
            }
            if let Some(d) = decision {
                sqlx::query(
                "INSERT INTO decisions (comment_id, account, rule, action, dry_run, reason, decided_at, lang)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&c.id)
            .bind(&c.account)
            .bind(&d.rule)
            .bind(d.action.as_str())
            .bind(i64::from(d.dry_run))
            .bind(&d.reason)
            .bind(&now)
            .bind(lang)
            .execute(&mut *tx)
            .await?;
                if d.action.is_write() && !d.dry_run && !d.not_written {
                    sqlx::query(
                    "INSERT INTO actions (comment_id, account, action, message, status, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, 'pending', $5, $5)",
                )
                .bind(&c.id)
                .bind(&c.account)
                .bind(d.action.as_str())
                .bind(&d.message)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
                }
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The account's pending actions after the one with id `after` (0: from the start), oldest
    /// first, at most `limit` of them: the outbox is walked a page at a time, so a backlog of
    /// thousands is never read whole when the budget lets only a few through.
    pub async fn pending_actions(
        &self,
        account: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<PendingAction>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT a.id, a.comment_id, c.parent_id, a.action, d.rule, a.message, a.attempts,
                    c.created_at AS comment_created_at
             FROM actions a JOIN comments c ON c.id = a.comment_id
             LEFT JOIN decisions d ON d.comment_id = a.comment_id
             WHERE a.account = $1 AND a.status = 'pending' AND a.id > $2
             ORDER BY a.id LIMIT $3",
            )
            .bind(account)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Marks that a call for this action is about to be sent. Written before the call, so a
    /// crash leaves `attempts > 0` behind and the next run reads the comment back first.
    ///
    /// With `holder` (a daemon instance), the claim is made only while that instance holds
    /// the account's lease and the action is still pending: `false` means another instance
    /// has the account now (or did the action), and this one must leave it alone.
    pub async fn action_started(&self, id: i64, holder: Option<&str>) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let done = sqlx::query(
                "UPDATE actions SET attempts = attempts + 1, updated_at = $2
                 WHERE id = $1 AND status = 'pending'
                   AND ($3 IS NULL OR EXISTS (
                       SELECT 1 FROM account_leases l
                       WHERE l.account = actions.account AND l.holder = $3 AND l.expires_at > $2))",
            )
            .bind(id)
            .bind(timefmt::now())
            .bind(holder)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The action took effect (or the comment was already in the wanted state). A hide or
    /// delete keeps how many seconds the comment had been up (`detect_secs`, for the report).
    pub async fn action_done(&self, id: i64, note: Option<&str>) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(if pool.is_postgres() {
            "UPDATE actions SET status = 'done', last_error = COALESCE($2, last_error),
                    updated_at = $3,
                    detect_secs = CASE WHEN action IN ('hide', 'delete') THEN (
                        SELECT GREATEST(0, CAST(FLOOR(EXTRACT(EPOCH FROM
                            CAST($3 AS TIMESTAMPTZ) - CAST(c.created_at AS TIMESTAMPTZ))) AS BIGINT))
                        FROM comments c WHERE c.id = actions.comment_id) END
             WHERE id = $1"
        } else {
            "UPDATE actions SET status = 'done', last_error = COALESCE($2, last_error),
                    updated_at = $3,
                    detect_secs = CASE WHEN action IN ('hide', 'delete') THEN (
                        SELECT MAX(0, CAST((julianday($3) - julianday(c.created_at)) * 86400 AS INTEGER))
                        FROM comments c WHERE c.id = actions.comment_id) END
             WHERE id = $1"
        })
        .bind(id)
        .bind(note)
        .bind(timefmt::now())
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    /// The id of what the action created (a reply's id).
    pub async fn set_action_result_id(&self, id: i64, result_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE actions SET result_id = $2 WHERE id = $1")
                .bind(id)
                .bind(result_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Whether this comment is a reply igmod wrote for the account.
    pub async fn is_own_reply(&self, account: &str, comment_id: &str) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM actions WHERE result_id = $2 AND account = $1 LIMIT 1",
            )
            .bind(account)
            .bind(comment_id)
            .fetch_optional(pool)
            .await?;
            Ok(found.is_some())
        })
    }

    /// The action did not happen and will be tried again.
    pub async fn action_retry(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.update_action(id, "pending", Some(error), 0).await
    }

    /// Reading the comment back to learn an earlier attempt's outcome failed: counted as an
    /// attempt, so an action whose read-back keeps failing is given up in the end instead of
    /// spending budget every poll for ever.
    pub async fn action_read_back_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.update_action(id, "pending", Some(error), 1).await
    }

    /// The action cannot happen.
    pub async fn action_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.update_action(id, "failed", Some(error), 0).await
    }

    async fn update_action(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        attempts: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE actions SET status = $2, last_error = COALESCE($3, last_error),
                    attempts = attempts + $4, updated_at = $5
             WHERE id = $1",
            )
            .bind(id)
            .bind(status)
            .bind(error)
            .bind(attempts)
            .bind(timefmt::now())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Every decision with its comment and action, newest first.
    pub async fn decided_comments(&self, limit: i64) -> Result<Vec<ActedComment>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT d.comment_id, d.account, c.username, c.text, d.rule, d.action, d.reason,
                    d.dry_run <> 0 AS dry_run, a.status
             FROM decisions d JOIN comments c ON c.id = d.comment_id
             LEFT JOIN actions a ON a.comment_id = d.comment_id
             ORDER BY d.decided_at DESC, d.comment_id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Counts of decisions by (action, action status) — `status` is `None` for decisions
    /// without a write (approve, flag, dry run).
    pub async fn decision_counts(&self) -> Result<Vec<(String, Option<String>, i64)>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT d.action, a.status, COUNT(*) FROM decisions d
             LEFT JOIN actions a ON a.comment_id = d.comment_id
             GROUP BY d.action, a.status ORDER BY d.action, a.status",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// Earlier comments of the account with the same text key, first seen after `since`.
    pub async fn same_text_since(
        &self,
        account: &str,
        text_key: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::rules::Seen>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<(Option<String>, Option<String>, String)> = sqlx::query_as(
                "SELECT username, created_at, first_seen_at FROM comments
             WHERE account = $1 AND text_key = $2 AND first_seen_at >= $3",
            )
            .bind(account)
            .bind(text_key)
            .bind(timefmt::format(since))
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .filter_map(|(username, created, seen)| {
                    let at = created
                        .as_deref()
                        .and_then(timefmt::parse)
                        .or_else(|| timefmt::parse(&seen))?;
                    Some(crate::rules::Seen {
                        username: username.unwrap_or_default(),
                        at: at.timestamp(),
                    })
                })
                .collect())
        })
    }

    /// How many comments are recorded for an account.
    pub async fn comment_count(&self, account: &str) -> Result<i64, StoreError> {
        with_pool!(self, |pool| {
            let row: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM comments WHERE account = $1")
                .bind(account)
                .fetch_one(pool)
                .await?;
            Ok(row.0)
        })
    }
}

/// A comment igmod acted on, for `igmod undo`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UndoCandidate {
    pub comment_id: String,
    pub account: String,
    pub action: String,
    pub rule: Option<String>,
    /// An `unhide` already recorded for it: (status).
    pub unhide_status: Option<String>,
}

impl Store {
    /// Hides and deletes igmod applied, by comment id or by rule since a time.
    pub async fn undo_candidates(
        &self,
        comment_id: Option<&str>,
        rule: Option<&str>,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<UndoCandidate>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
            "SELECT a.comment_id, a.account, a.action, d.rule,
                    (SELECT u.status FROM actions u WHERE u.comment_id = a.comment_id AND u.action = 'unhide') AS unhide_status
             FROM actions a LEFT JOIN decisions d ON d.comment_id = a.comment_id
             WHERE a.action IN ('hide', 'delete') AND a.status = 'done'
               AND ($1 IS NULL OR a.comment_id = $1) AND ($2 IS NULL OR d.rule = $2)
               AND ($3 IS NULL OR d.decided_at >= $3)
             ORDER BY a.id",
        )
        .bind(comment_id)
        .bind(rule)
        .bind(since.map(timefmt::format))
        .fetch_all(pool)
        .await?)
        })
    }

    /// Records an operator's unhide as a pending action (or returns the existing one's id).
    pub async fn record_unhide(&self, account: &str, comment_id: &str) -> Result<i64, StoreError> {
        with_pool!(self, |pool| {
            let now = timefmt::now();
            let row: (i64,) = sqlx::query_as(
            "INSERT INTO actions (comment_id, account, action, status, created_at, updated_at)
             VALUES ($1, $2, 'unhide', 'pending', $3, $3)
             ON CONFLICT (comment_id, action) DO UPDATE SET status = 'pending', updated_at = excluded.updated_at
             RETURNING id",
        )
        .bind(comment_id)
        .bind(account)
        .bind(&now)
        .fetch_one(pool)
        .await?;
            Ok(row.0)
        })
    }
}
