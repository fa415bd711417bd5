//! The call ledger behind the hourly budget. It is the truth across restarts: in-memory
//! limiters are rebuilt from it.

use chrono::{DateTime, Utc};

use super::{Backend, Store, StoreError};

/// What a retention run forgot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub comments: u64,
    pub replies: u64,
    pub calls: u64,
    /// Decisions whose reason quoted the comment or its author.
    pub reasons: u64,
}

/// What stands for a quoted span of a pruned decision's reason.
pub const PRUNED_QUOTE: &str = "[pruned]";

/// `reason` with every double-quoted span (a matched word, a username, a feature of the text:
/// reasons quote them with Rust's escapes) replaced by [`PRUNED_QUOTE`], the rest kept.
pub fn forget_quotes(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut chars = reason.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        // Skip to the closing quote, past escaped characters; an unclosed quote hides the rest.
        while let Some(q) = chars.next() {
            match q {
                '\\' => {
                    chars.next();
                }
                '"' => break,
                _ => {}
            }
        }
        out.push_str(PRUNED_QUOTE);
    }
    out
}
use crate::timefmt;

impl Store {
    /// Records one HTTP request sent to the Graph API. `endpoint` is a path without query.
    /// The endpoint of a call recorded before sending whose answer never got recorded.
    pub const INTERRUPTED: &'static str = "(interrupted)";

    pub async fn record_call(
        &self,
        account: &str,
        at: DateTime<Utc>,
        method: &str,
        endpoint: &str,
        status: Option<u16>,
    ) -> Result<i64, StoreError> {
        with_pool!(self, |pool| {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO api_calls (account, at, method, endpoint, status)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(account)
            .bind(timefmt::format(at))
            .bind(method)
            .bind(endpoint)
            .bind(status.map(i64::from))
            .fetch_one(pool)
            .await?;
            Ok(id)
        })
    }

    /// Ledgers a call about to be sent (as [`Store::INTERRUPTED`]) only if the account's calls
    /// after `since` are fewer than `limit`: the budget check and the ledger row in one
    /// statement, so two processes spending one account's budget cannot both take its last
    /// call. `None`: the budget is spent.
    pub async fn ledger_within(
        &self,
        account: &str,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Option<i64>, StoreError> {
        const SQL: &str = "INSERT INTO api_calls (account, at, method, endpoint, status)
             SELECT $1, $2, '?', $3, NULL
             WHERE (SELECT COUNT(*) FROM api_calls WHERE account = $1 AND at > $4) < $5
             RETURNING id";
        let (at, since) = (timefmt::format(at), timefmt::format(since));
        with_pool!(self, |pool| {
            let row: Option<(i64,)> = if pool.is_postgres() {
                // SQLite runs one writer at a time. PostgreSQL runs statements side by side,
                // so instances sharing the budget take the account's advisory lock first.
                let mut tx = pool.begin_write().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(account)
                    .execute(&mut *tx)
                    .await?;
                let row = sqlx::query_as(SQL)
                    .bind(account)
                    .bind(&at)
                    .bind(Self::INTERRUPTED)
                    .bind(&since)
                    .bind(i64::from(limit))
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                row
            } else {
                sqlx::query_as(SQL)
                    .bind(account)
                    .bind(&at)
                    .bind(Self::INTERRUPTED)
                    .bind(&since)
                    .bind(i64::from(limit))
                    .fetch_optional(pool)
                    .await?
            };
            Ok(row.map(|(id,)| id))
        })
    }

    /// Completes a call recorded (as [`INTERRUPTED`]) before it was sent: what it was and the
    /// answer's status. A crash between the two leaves the row counted against the budget.
    pub async fn finish_call(
        &self,
        id: i64,
        method: &str,
        endpoint: &str,
        status: Option<u16>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE api_calls SET status = $2, method = $3, endpoint = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(status.map(i64::from))
            .bind(method)
            .bind(endpoint)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Calls ledgered for the account after `since`, and, when there are at least `nth + 1`,
    /// the time of the `nth` oldest (0-based): when one more call fits the window.
    pub async fn calls_count_since(
        &self,
        account: &str,
        since: DateTime<Utc>,
        nth: Option<u32>,
    ) -> Result<(u32, Option<DateTime<Utc>>), StoreError> {
        with_pool!(self, |pool| {
            let since = timefmt::format(since);
            let (count,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM api_calls WHERE account = $1 AND at > $2")
                    .bind(account)
                    .bind(&since)
                    .fetch_one(pool)
                    .await?;
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            let Some(nth) = nth.filter(|n| *n < count) else {
                return Ok((count, None));
            };
            let at: Option<(String,)> = sqlx::query_as(
            "SELECT at FROM api_calls WHERE account = $1 AND at > $2 ORDER BY at LIMIT 1 OFFSET $3",
        )
        .bind(account)
        .bind(&since)
        .bind(i64::from(nth))
        .fetch_optional(pool)
        .await?;
            Ok((count, at.and_then(|(t,)| timefmt::parse(&t))))
        })
    }

    /// Retention: forgets comment texts, usernames, reply texts and ledger rows from before
    /// `before`. Decisions and actions keep their ids, rule, action and status.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned, StoreError> {
        with_pool!(self, |pool| {
            let before = timefmt::format(before);
            let mut tx = pool.begin_write().await?;
            let comments = sqlx::query(
                "UPDATE comments SET text = NULL, username = NULL
             WHERE first_seen_at < $1 AND (text IS NOT NULL OR username IS NOT NULL)",
            )
            .bind(&before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let replies = sqlx::query(
                "UPDATE actions SET message = NULL WHERE updated_at < $1 AND message IS NOT NULL",
            )
            .bind(&before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // A reason quotes the matched text or the username ("word \"forex\"",
            // "username \"…\" looks like …"): personal data like the comment's own.
            let quoting: Vec<(String, String)> = sqlx::query_as(
                "SELECT comment_id, reason FROM decisions
                 WHERE decided_at < $1 AND reason LIKE '%\"%'",
            )
            .bind(&before)
            .fetch_all(&mut *tx)
            .await?;
            let mut reasons = 0u64;
            for (comment_id, reason) in &quoting {
                sqlx::query("UPDATE decisions SET reason = $1 WHERE comment_id = $2")
                    .bind(forget_quotes(reason))
                    .bind(comment_id)
                    .execute(&mut *tx)
                    .await?;
                reasons = reasons.saturating_add(1);
            }
            let calls = sqlx::query("DELETE FROM api_calls WHERE at < $1")
                .bind(&before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // Webhook events already dealt with (a pending one keeps its payload until decided).
            sqlx::query(
                "DELETE FROM webhook_events WHERE received_at < $1 AND outcome <> 'pending'",
            )
            .bind(&before)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            // Give freed pages back to the file system (databases created by igmod use
            // incremental auto-vacuum).
            if !pool.is_postgres() {
                sqlx::query("PRAGMA incremental_vacuum")
                    .execute(pool)
                    .await?;
            }
            Ok(Pruned {
                comments,
                replies,
                calls,
                reasons,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_spans_of_a_reason_are_forgotten_and_the_rest_kept() {
        for (reason, expect) in [
            ("word \"forex\"", "word [pruned]"),
            (
                "username \"acme.shoes\" looks like acmeshoes",
                "username [pruned] looks like acmeshoes",
            ),
            ("a \"q\\\"x\" and \"y\"", "a [pruned] and [pruned]"),
            ("unclosed \"rest of it", "unclosed [pruned]"),
            ("classifier score 0.91", "classifier score 0.91"),
        ] {
            assert_eq!(forget_quotes(reason), expect, "{reason}");
        }
    }

    /// The budget check and the ledger row are one statement: calls racing for an account's
    /// last slots never take more than the limit, and only calls inside the window count.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ledger_within_never_admits_past_the_limit() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for (store, _server) in crate::store::test_stores(dir.path()).await? {
            let now = Utc::now();
            let hour_ago = now - chrono::Duration::hours(1);
            // One call outside the window, two inside.
            for minutes in [70, 30, 10] {
                store
                    .record_call(
                        "a",
                        now - chrono::Duration::minutes(minutes),
                        "GET",
                        "/x",
                        Some(200),
                    )
                    .await?;
            }
            assert_eq!(store.ledger_within("a", now, hour_ago, 2).await?, None);
            let racers: Vec<_> = (0..20)
                .map(|_| {
                    let store = store.clone();
                    tokio::spawn(
                        async move { store.ledger_within("a", Utc::now(), hour_ago, 7).await },
                    )
                })
                .collect();
            let mut admitted = 0;
            for racer in racers {
                if racer.await??.is_some() {
                    admitted += 1;
                }
            }
            assert_eq!(admitted, 5, "7 allowed, 2 already in the window");
            assert_eq!(store.calls_count_since("a", hour_ago, None).await?.0, 7);
            // Another account's window is its own.
            assert!(store.ledger_within("b", now, hour_ago, 1).await?.is_some());
            store.close().await;
        }
        Ok(())
    }
}
