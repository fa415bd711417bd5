//! Read-only queries behind `igmod status` and `igmod audit`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Store, StoreError};
use crate::timefmt;

/// One decision with its comment and action, for `igmod audit`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub decided_at: String,
    pub account: String,
    pub comment_id: String,
    pub username: Option<String>,
    pub text: Option<String>,
    pub rule: String,
    pub reason: String,
    pub action: String,
    pub dry_run: bool,
    /// `pending`, `done`, `failed`; `None` for decisions without a write.
    pub action_status: Option<String>,
    /// Why a failed (or retried) action did not happen.
    pub action_error: Option<String>,
    /// The comment's language (ISO 639-1) when the rules decided it; `None` when unknown or
    /// decided before igmod stored languages.
    pub lang: Option<String>,
}

/// Filters for `igmod audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub account: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub action: Option<String>,
    pub rule: Option<String>,
    pub limit: i64,
}

/// Per-account activity over a window, for `igmod status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Activity {
    pub comments_seen: i64,
    pub decided: i64,
    /// (action, count) of decisions in the window.
    pub by_action: Vec<(String, i64)>,
    /// Actions applied (done) in the window.
    pub acted: i64,
    pub pending_actions: i64,
    pub failed_actions: i64,
}

impl Store {
    pub async fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
            "SELECT d.decided_at, d.account, d.comment_id, c.username, c.text, d.rule, d.reason,
                    d.action, d.dry_run <> 0 AS dry_run,
                    (SELECT a.status FROM actions a WHERE a.comment_id = d.comment_id
                        AND a.action = d.action) AS action_status,
                    (SELECT a.last_error FROM actions a WHERE a.comment_id = d.comment_id
                        AND a.action = d.action AND a.status != 'done') AS action_error,
                    d.lang
             FROM decisions d JOIN comments c ON c.id = d.comment_id
             WHERE ($1 IS NULL OR d.account = $1) AND ($2 IS NULL OR d.decided_at >= $2)
               AND ($3 IS NULL OR d.action = $3) AND ($4 IS NULL OR d.rule = $4)
             ORDER BY d.decided_at DESC, d.comment_id LIMIT $5",
        )
        .bind(&f.account)
        .bind(f.since.map(timefmt::format))
        .bind(&f.action)
        .bind(&f.rule)
        .bind(f.limit)
        .fetch_all(pool)
        .await?)
        })
    }

    pub async fn activity(
        &self,
        account: &str,
        since: DateTime<Utc>,
    ) -> Result<Activity, StoreError> {
        with_pool!(self, |pool| {
            let since = timefmt::format(since);
            let one = |sql: &'static str| {
                let since = since.clone();
                async move {
                    let row: (i64,) = sqlx::query_as(sql)
                        .bind(account)
                        .bind(since)
                        .fetch_one(pool)
                        .await?;
                    Ok::<i64, StoreError>(row.0)
                }
            };
            Ok(Activity {
            comments_seen: one("SELECT COUNT(*) FROM comments WHERE account = $1 AND first_seen_at >= $2").await?,
            decided: one("SELECT COUNT(*) FROM decisions WHERE account = $1 AND decided_at >= $2").await?,
            by_action: sqlx::query_as(
                "SELECT action, COUNT(*) FROM decisions WHERE account = $1 AND decided_at >= $2
                 GROUP BY action ORDER BY action",
            )
            .bind(account)
            .bind(&since)
            .fetch_all(pool)
            .await?,
            acted: one("SELECT COUNT(*) FROM actions WHERE account = $1 AND status = 'done' AND updated_at >= $2").await?,
            pending_actions: one("SELECT COUNT(*) FROM actions WHERE account = $1 AND status = 'pending' AND $2 IS NOT NULL").await?,
            failed_actions: one("SELECT COUNT(*) FROM actions WHERE account = $1 AND status = 'failed' AND updated_at >= $2").await?,
        })
        })
    }
}
