//! Webhook deliveries: written before Meta is answered, taken by the account's task.

use std::collections::HashMap;

use super::{Backend, Pool, Store, StoreError};

/// The PostgreSQL notification channel on which a recorded webhook delivery names its account.
pub const INBOX_CHANNEL: &str = "igmod_inbox";
use crate::timefmt;

/// One row of a delivery: a comment change, or what the delivery was when it held none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEvent {
    pub account: Option<String>,
    pub ig_user_id: Option<String>,
    pub field: Option<String>,
    pub comment_id: Option<String>,
    /// `pending` for a comment the account's task is to decide; otherwise why it was set
    /// aside (`ignored`, `test`, `unknown_account`).
    pub outcome: &'static str,
    /// The change's `value` as received (pending rows only).
    pub payload: Option<String>,
}

/// Whether [`Store::record_webhook_delivery`] wrote a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    /// A delivery with the same body digest is on record: nothing was written (Meta's retry
    /// of one it thinks failed, or a captured delivery replayed).
    Again,
}

/// A comment event waiting for its account's task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingWebhookEvent {
    pub id: i64,
    pub field: String,
    pub payload: String,
    pub received_at: String,
}

impl Store {
    /// Writes every row of one delivery in one transaction: when this returns `Ok`, Meta may
    /// be answered 200. A delivery whose digest is already on record (kept as long as
    /// `webhook_events` rows are) writes nothing: [`Recorded::Again`]. The check is inside the
    /// write transaction (SQLite's `BEGIN IMMEDIATE`, a transaction lock on the digest on
    /// PostgreSQL), so two copies arriving together are written once. On PostgreSQL the same
    /// transaction announces each account with a pending comment on [`INBOX_CHANNEL`], so the
    /// instance holding it (maybe not this one) acts at once ([`Store::listen_inbox`]).
    pub async fn record_webhook_delivery(
        &self,
        body_sha256: &str,
        rows: &[NewWebhookEvent],
    ) -> Result<Recorded, StoreError> {
        with_pool!(self, |pool| {
            let now = timefmt::now();
            let mut tx = pool.begin_write().await?;
            if pool.is_postgres() {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(body_sha256)
                    .execute(&mut *tx)
                    .await?;
            }
            let seen: Option<i64> =
                sqlx::query_scalar("SELECT id FROM webhook_events WHERE body_sha256 = $1 LIMIT 1")
                    .bind(body_sha256)
                    .fetch_optional(&mut *tx)
                    .await?;
            if seen.is_some() {
                tx.rollback().await?;
                return Ok(Recorded::Again);
            }
            for r in rows {
                sqlx::query(
                "INSERT INTO webhook_events (received_at, body_sha256, account, ig_user_id, field,
                                             comment_id, outcome, payload, processed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $7 = 'pending' THEN NULL ELSE $1 END)",
            )
            .bind(&now)
            .bind(body_sha256)
            .bind(&r.account)
            .bind(&r.ig_user_id)
            .bind(&r.field)
            .bind(&r.comment_id)
            .bind(r.outcome)
            .bind(&r.payload)
            .execute(&mut *tx)
            .await?;
            }
            if pool.is_postgres() {
                let mut announced: Vec<&str> = Vec::new();
                for account in rows
                    .iter()
                    .filter(|r| r.outcome == "pending")
                    .filter_map(|r| r.account.as_deref())
                {
                    if !announced.contains(&account) {
                        announced.push(account);
                        sqlx::query("SELECT pg_notify($1, $2)")
                            .bind(INBOX_CHANNEL)
                            .bind(account)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(Recorded::New)
        })
    }

    /// On PostgreSQL, calls `wake` with the account of every webhook delivery any instance
    /// records, until `stop`; after a lost connection (deliveries may have been announced
    /// meanwhile) with `None`: look at every account. On SQLite (one instance, which wakes its
    /// own tasks) it returns at once.
    pub async fn listen_inbox(
        &self,
        wake: impl Fn(Option<&str>),
        stop: tokio_util::sync::CancellationToken,
    ) {
        let Pool::Postgres(pool) = &self.pool else {
            return;
        };
        let mut down = false;
        while !stop.is_cancelled() {
            let listener = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(INBOX_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = match listener.await {
                Ok(l) => l,
                Err(e) => {
                    if !down {
                        tracing::warn!(message = "cannot listen for other instances' webhook deliveries; polls still find the comments", error = %e);
                        down = true;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                    }
                }
            };
            if down {
                down = false;
                wake(None);
            }
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    got = listener.try_recv() => match got {
                        Ok(Some(n)) => wake(Some(n.payload())),
                        // The connection dropped and was re-made: announcements may be lost.
                        Ok(None) => wake(None),
                        Err(_) => break,
                    },
                }
            }
        }
    }

    /// The account's comment events not yet decided, oldest first.
    pub async fn pending_webhook_events(
        &self,
        account: &str,
    ) -> Result<Vec<PendingWebhookEvent>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<(i64, Option<String>, Option<String>, String)> = sqlx::query_as(
                "SELECT id, field, payload, received_at FROM webhook_events
             WHERE account = $1 AND outcome = 'pending' ORDER BY id LIMIT 500",
            )
            .bind(account)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(id, field, payload, received_at)| PendingWebhookEvent {
                    id,
                    field: field.unwrap_or_default(),
                    payload: payload.unwrap_or_default(),
                    received_at,
                })
                .collect())
        })
    }

    /// Says what became of an event; its payload is dropped (the comment's row holds the
    /// text, under the retention rules).
    pub async fn finish_webhook_event(&self, id: i64, outcome: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
            "UPDATE webhook_events SET outcome = $2, processed_at = $3, payload = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(outcome)
        .bind(timefmt::now())
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    /// When each account last received a webhook delivery.
    pub async fn last_webhooks(&self) -> Result<HashMap<String, String>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT account, MAX(received_at) FROM webhook_events
             WHERE account IS NOT NULL GROUP BY account",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().collect())
        })
    }

    /// The comments a webhook delivery decided (rather than a poll).
    pub async fn webhook_decided(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT comment_id FROM webhook_events WHERE outcome = 'decided' AND comment_id IS NOT NULL",
        )
        .fetch_all(pool)
        .await?;
            Ok(rows.into_iter().map(|(id,)| id).collect())
        })
    }

    /// Adds one to a post's stored comment count (a comment that came by webhook), so the
    /// next poll finds the count it lists and pages nothing. A post never read keeps no count.
    pub async fn bump_media_count(&self, account: &str, media_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE media_progress SET comments_count = comments_count + 1
             WHERE account = $1 AND media_id = $2",
            )
            .bind(account)
            .bind(media_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
