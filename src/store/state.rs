//! Per-account scheduling state, per-media progress and token health.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Backend, Store, StoreError};
use crate::timefmt;

/// How long a token record read from SQLite is used without reading it again (another
/// process's change, an `igmod token refresh`, is seen within this).
const TOKEN_FRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// What a poll's end records about its account.
#[derive(Debug, Clone)]
pub struct PollEnd<'a> {
    /// `ok`, `partial` or `error`.
    pub status: &'a str,
    pub error: Option<&'a str>,
    pub next_due: DateTime<Utc>,
    pub effective_interval_secs: u64,
    /// Meta's latest usage percentage for the account, if any header said.
    pub usage_pct: Option<u32>,
    /// The poll went through: a throttling streak is over.
    pub clear_throttle_strikes: bool,
}

/// What holds for every account of the Meta app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppState {
    /// Set by code 4 or by `X-App-Usage` at 95 %; never shortened.
    pub paused: Option<(DateTime<Utc>, String)>,
    /// The app's last usage percentage and when it was seen.
    pub usage: Option<(u32, DateTime<Utc>)>,
}

#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct AccountState {
    pub baseline_done_at: Option<String>,
    pub last_poll_at: Option<String>,
    pub last_poll_status: Option<String>,
    pub next_due_at: Option<String>,
    pub paused_until: Option<String>,
    pub paused_reason: Option<String>,
    pub last_error: Option<String>,
    /// The account's own username, learned from its own comments or `/me`.
    pub username: Option<String>,
    /// Consecutive throttling answers without a regain hint (for exponential back-off).
    pub throttle_strikes: i64,
    /// Largest usage percentage in Meta's last usage headers.
    pub usage_pct: Option<i64>,
    pub effective_interval_secs: Option<i64>,
    /// When the account's most active posts were last re-read in full.
    pub swept_at: Option<String>,
    /// Meta refuses the account's writes (4/2207051, 368) until then; polling goes on.
    pub writes_paused_until: Option<String>,
    pub writes_paused_reason: Option<String>,
    /// Write blocks in a row (the back-off doubles with each).
    pub write_block_strikes: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenHealth {
    pub status: String,
    pub invalid_reason: Option<String>,
    pub checked_at: String,
    pub expires_at: Option<String>,
    /// `USER`/`PAGE` (Facebook Login, from debug_token).
    pub token_type: Option<String>,
    pub never_expires: bool,
    pub data_access_expires_at: Option<String>,
    pub scopes: Option<String>,
    pub validated_at: Option<String>,
    /// `expires_at` is only the documented upper bound: Meta never confirmed it.
    pub expiry_estimated: bool,
}

/// What igmod keeps about an account's token. The token is held as a secret from the row on,
/// so no `{:?}` of a record can print it.
#[derive(Debug, Clone, Default)]
pub struct TokenRecord {
    /// A token igmod refreshed.
    pub token: Option<secrecy::SecretString>,
    pub source_hash: Option<String>,
    pub expires_at: Option<String>,
    pub next_check_at: Option<String>,
    pub token_type: Option<String>,
    pub never_expires: bool,
}

/// The `tokens` row as read; deliberately without `Debug`.
#[derive(sqlx::FromRow)]
struct TokenRow {
    token: Option<String>,
    pub source_hash: Option<String>,
    pub expires_at: Option<String>,
    pub next_check_at: Option<String>,
    pub token_type: Option<String>,
    pub never_expires: bool,
}

impl Store {
    pub async fn account_state(&self, account: &str) -> Result<AccountState, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
            "SELECT baseline_done_at, last_poll_at, last_poll_status, next_due_at, paused_until,
                    paused_reason, last_error, username, throttle_strikes, usage_pct,
                    effective_interval_secs, swept_at, writes_paused_until,
                    writes_paused_reason, write_block_strikes
             FROM account_state WHERE account = $1",
        )
        .bind(account)
        .fetch_optional(pool)
        .await?
        .unwrap_or_default())
        })
    }

    async fn ensure_account(&self, account: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("INSERT INTO account_state (account) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(account)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Records everything a poll's end changes in one statement (with 2,000 accounts polled
    /// each minute, every statement per poll counts).
    pub async fn poll_ended(&self, account: &str, end: &PollEnd<'_>) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO account_state (account, last_poll_at, last_poll_status, last_error,
                                        next_due_at, effective_interval_secs, usage_pct, usage_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 IS NULL THEN NULL ELSE $2 END)
             ON CONFLICT (account) DO UPDATE SET
                 last_poll_at = excluded.last_poll_at,
                 last_poll_status = excluded.last_poll_status,
                 last_error = excluded.last_error,
                 next_due_at = excluded.next_due_at,
                 effective_interval_secs = excluded.effective_interval_secs,
                 usage_pct = COALESCE(excluded.usage_pct, account_state.usage_pct),
                 usage_at = COALESCE(excluded.usage_at, account_state.usage_at),
                 throttle_strikes = CASE WHEN $8 THEN 0 ELSE account_state.throttle_strikes END",
            )
            .bind(account)
            .bind(timefmt::now())
            .bind(end.status)
            .bind(end.error)
            .bind(timefmt::format(end.next_due))
            .bind(i64::try_from(end.effective_interval_secs).unwrap_or(i64::MAX))
            .bind(end.usage_pct.map(i64::from))
            .bind(end.clear_throttle_strikes)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Records the end of a poll without a next one (its token stopped the account): `error`
    /// is `None` on success (and clears the last error).
    pub async fn poll_finished(
        &self,
        account: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            self.ensure_account(account).await?;
            sqlx::query(
                "UPDATE account_state SET last_poll_at = $2, last_poll_status = $3, last_error = $4
             WHERE account = $1",
            )
            .bind(account)
            .bind(timefmt::now())
            .bind(status)
            .bind(error)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn set_account_username(
        &self,
        account: &str,
        username: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            self.ensure_account(account).await?;
            sqlx::query("UPDATE account_state SET username = $2 WHERE account = $1")
                .bind(account)
                .bind(username)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    pub async fn mark_baseline_done(&self, account: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            self.ensure_account(account).await?;
            sqlx::query(
                "UPDATE account_state SET baseline_done_at = COALESCE(baseline_done_at, $2)
             WHERE account = $1",
            )
            .bind(account)
            .bind(timefmt::now())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Pauses an account until `until`; a pause is never shortened by a later, smaller one.
    pub async fn set_paused(
        &self,
        account: &str,
        until: DateTime<Utc>,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.extend_pause(
            account,
            until,
            reason,
            "UPDATE account_state SET paused_until = $2, paused_reason = $3
             WHERE account = $1 AND (paused_until IS NULL OR paused_until < $2)",
        )
        .await
    }

    /// Pauses the account's writes until `until` (Meta restricted or policy-blocked it);
    /// never shortened by a later, smaller pause.
    pub async fn set_writes_paused(
        &self,
        account: &str,
        until: DateTime<Utc>,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.extend_pause(
            account,
            until,
            reason,
            "UPDATE account_state SET writes_paused_until = $2, writes_paused_reason = $3
             WHERE account = $1 AND (writes_paused_until IS NULL OR writes_paused_until < $2)",
        )
        .await
    }

    /// Runs one of the pause updates above (`$1` account, `$2` until, `$3` reason), which
    /// lengthen a pause and never shorten it.
    async fn extend_pause(
        &self,
        account: &str,
        until: DateTime<Utc>,
        reason: &str,
        update: &'static str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            self.ensure_account(account).await?;
            sqlx::query(update)
                .bind(account)
                .bind(timefmt::format(until))
                .bind(reason)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// One more write block in a row; returns the count. `reset`: a write went through, the
    /// streak is over (returns 0).
    pub async fn write_block_strike(&self, account: &str, reset: bool) -> Result<i64, StoreError> {
        with_pool!(self, |pool| {
            self.ensure_account(account).await?;
            let row: (i64,) = sqlx::query_as(
                "UPDATE account_state SET write_block_strikes =
                     CASE WHEN $2 THEN 0 ELSE write_block_strikes + 1 END
                 WHERE account = $1 RETURNING write_block_strikes",
            )
            .bind(account)
            .bind(reset)
            .fetch_one(pool)
            .await?;
            Ok(row.0)
        })
    }

    /// Accounts whose writes Meta refuses now: (account, until, reason).
    pub async fn writes_paused(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT account, writes_paused_until, writes_paused_reason FROM account_state
                 WHERE writes_paused_until > $1 ORDER BY account",
            )
            .bind(timefmt::format(now))
            .fetch_all(pool)
            .await?)
        })
    }

    /// Records a throttling answer: one more strike for the back-off. Returns the new count.
    pub async fn add_throttle_strike(&self, account: &str) -> Result<i64, StoreError> {
        with_pool!(self, |pool| {
            self.ensure_account(account).await?;
            let row: (i64,) = sqlx::query_as(
            "UPDATE account_state SET throttle_strikes = throttle_strikes + 1 WHERE account = $1
             RETURNING throttle_strikes",
        )
        .bind(account)
        .fetch_one(pool)
        .await?;
            Ok(row.0)
        })
    }

    /// Pauses every account (Meta throttled the whole app with code 4, or `X-App-Usage` reached
    /// 95 %); never shortened.
    pub async fn set_app_paused(
        &self,
        until: DateTime<Utc>,
        reason: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE app_state SET paused_until = $1, paused_reason = $2
             WHERE id = 1 AND (paused_until IS NULL OR paused_until < $1)",
            )
            .bind(timefmt::format(until))
            .bind(reason)
            .execute(pool)
            .await?;
            self.forget_app_state();
            Ok(())
        })
    }

    /// The app-wide pause (past or future) and the app's last usage percentage, at most a
    /// second old (another process's pause is seen within a second).
    pub async fn app_state(&self) -> Result<AppState, StoreError> {
        const FRESH: std::time::Duration = std::time::Duration::from_secs(1);
        if let Ok(cached) = self.app.lock()
            && let Some((at, state)) = cached.as_ref()
            && at.elapsed() < FRESH
        {
            return Ok(state.clone());
        }
        let state = self.read_app_state().await?;
        if let Ok(mut cached) = self.app.lock() {
            *cached = Some((std::time::Instant::now(), state.clone()));
        }
        Ok(state)
    }

    /// Forgets the cached app row (after this process wrote it).
    fn forget_app_state(&self) {
        if let Ok(mut cached) = self.app.lock() {
            *cached = None;
        }
    }

    async fn read_app_state(&self) -> Result<AppState, StoreError> {
        with_pool!(self, |pool| {
            type Row = (Option<String>, Option<String>, Option<i64>, Option<String>);
            let row: Option<Row> = sqlx::query_as(
            "SELECT paused_until, paused_reason, usage_pct, usage_at FROM app_state WHERE id = 1",
        )
        .fetch_optional(pool)
        .await?;
            let Some((until, reason, pct, at)) = row else {
                return Ok(AppState::default());
            };
            Ok(AppState {
                paused: until
                    .as_deref()
                    .and_then(timefmt::parse)
                    .map(|u| (u, reason.unwrap_or_default())),
                usage: pct
                    .and_then(|p| u32::try_from(p).ok())
                    .zip(at.as_deref().and_then(timefmt::parse)),
            })
        })
    }

    /// Remembers the app's usage percentage (`X-App-Usage`), which every account reads.
    pub async fn set_app_usage(&self, pct: u32) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let at = chrono::Utc::now();
            sqlx::query("UPDATE app_state SET usage_pct = $1, usage_at = $2 WHERE id = 1")
                .bind(i64::from(pct))
                .bind(timefmt::format(at))
                .execute(pool)
                .await?;
            if let Ok(mut written) = self.app_usage_written.lock() {
                *written = Some((pct, std::time::Instant::now()));
            }
            // The cached row stays good with the new usage in it: no read back.
            if let Ok(mut cached) = self.app.lock()
                && let Some((_, state)) = cached.as_mut()
            {
                state.usage = Some((pct, at));
            }
            Ok(())
        })
    }

    /// Shares the app's usage with the other accounts and processes, but not on every answer
    /// (every account's answers carry the same app-wide figure): when `urgent`, when it moved
    /// by 5 points from what this process last wrote, or a minute after that write.
    pub async fn share_app_usage(&self, pct: u32, urgent: bool) -> Result<(), StoreError> {
        const EVERY: std::time::Duration = std::time::Duration::from_secs(60);
        let due = match self.app_usage_written.lock() {
            Ok(written) => {
                urgent
                    || written.is_none_or(|(p, at)| p.abs_diff(pct) >= 5 || at.elapsed() >= EVERY)
            }
            Err(_) => true,
        };
        if due {
            self.set_app_usage(pct).await?;
        }
        Ok(())
    }

    /// Remembers the usage percentage Meta last reported for the account (at a pause; polls
    /// store it at their end).
    pub async fn set_usage(&self, account: &str, pct: u32) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            self.ensure_account(account).await?;
            sqlx::query(
                "UPDATE account_state SET usage_pct = $2, usage_at = $3 WHERE account = $1",
            )
            .bind(account)
            .bind(i64::from(pct))
            .bind(timefmt::now())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Records that the account's reconcile sweep ran (or that its clock starts) at `at`.
    pub async fn set_swept(&self, account: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            self.ensure_account(account).await?;
            sqlx::query("UPDATE account_state SET swept_at = $2 WHERE account = $1")
                .bind(account)
                .bind(timefmt::format(at))
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Of the given posts, the `n` whose newest recorded comment is newest: where replies on
    /// older threads are most likely.
    pub async fn most_active_media(
        &self,
        account: &str,
        among: &[String],
        n: u32,
    ) -> Result<Vec<String>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT media_id, MAX(COALESCE(created_at, first_seen_at)) AS latest
             FROM comments WHERE account = $1 GROUP BY media_id ORDER BY latest DESC",
            )
            .bind(account)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(id, _)| id)
                .filter(|id| among.contains(id))
                .take(n as usize)
                .collect())
        })
    }

    /// `comments_count` last fully read, per media.
    pub async fn media_counts(&self, account: &str) -> Result<HashMap<String, i64>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT media_id, comments_count FROM media_progress WHERE account = $1",
            )
            .bind(account)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().collect())
        })
    }

    pub async fn set_media_count(
        &self,
        account: &str,
        media_id: &str,
        count: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO media_progress (account, media_id, comments_count, checked_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (account, media_id) DO UPDATE SET
                 comments_count = excluded.comments_count, checked_at = excluded.checked_at",
            )
            .bind(account)
            .bind(media_id)
            .bind(count)
            .bind(timefmt::now())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Lowers the post's recorded count after igmod deleted a comment (and with it its
    /// replies), so the next media list does not mistake igmod's own delete for a change.
    pub async fn note_deleted(&self, account: &str, comment_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
            // SQLite's two-argument MAX is PostgreSQL's GREATEST.
            if pool.is_postgres() {
                "UPDATE media_progress SET comments_count = GREATEST(0, comments_count - 1 - (
                     SELECT COUNT(*) FROM comments r WHERE r.parent_id = $2 AND NOT EXISTS (
                         SELECT 1 FROM actions a WHERE a.comment_id = r.id AND a.action = 'delete' AND a.status = 'done')))
                 WHERE account = $1 AND media_id = (SELECT media_id FROM comments WHERE id = $2)"
            } else {
                "UPDATE media_progress SET comments_count = MAX(0, comments_count - 1 - (
                     SELECT COUNT(*) FROM comments r WHERE r.parent_id = $2 AND NOT EXISTS (
                         SELECT 1 FROM actions a WHERE a.comment_id = r.id AND a.action = 'delete' AND a.status = 'done')))
                 WHERE account = $1 AND media_id = (SELECT media_id FROM comments WHERE id = $2)"
            },
        )
        .bind(account)
        .bind(comment_id)
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    /// Records a token's health: `reason` is `Some` when it is dead.
    pub async fn set_token_health(
        &self,
        account: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            self.forget_token(account);
            sqlx::query(
            "INSERT INTO tokens (account, status, invalid_reason, checked_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (account) DO UPDATE SET status = excluded.status,
                 invalid_reason = excluded.invalid_reason, checked_at = excluded.checked_at",
        )
        .bind(account)
        .bind(if reason.is_some() { "invalid" } else { "ok" })
        .bind(reason)
        .bind(timefmt::now())
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    /// The account's token record, at most [`TOKEN_FRESH`] old: every poll asks for it twice,
    /// and only this process's account task writes it (which forgets the copy at once).
    pub async fn token_record(&self, account: &str) -> Result<TokenRecord, StoreError> {
        if let Ok(cached) = self.tokens.lock()
            && let Some((at, record)) = cached.get(account)
            && at.elapsed() < TOKEN_FRESH
        {
            return Ok(record.clone());
        }
        let record = self.read_token_record(account).await?;
        if let Ok(mut cached) = self.tokens.lock() {
            cached.insert(
                account.to_string(),
                (std::time::Instant::now(), record.clone()),
            );
        }
        Ok(record)
    }

    fn forget_token(&self, account: &str) {
        if let Ok(mut cached) = self.tokens.lock() {
            cached.remove(account);
        }
    }

    async fn read_token_record(&self, account: &str) -> Result<TokenRecord, StoreError> {
        with_pool!(self, |pool| {
            let row: Option<TokenRow> = sqlx::query_as(
                "SELECT token, source_hash, expires_at, next_check_at, token_type,
                    never_expires <> 0 AS never_expires
             FROM tokens WHERE account = $1",
            )
            .bind(account)
            .fetch_optional(pool)
            .await?;
            Ok(row.map_or_else(TokenRecord::default, |r| TokenRecord {
                token: r.token.map(secrecy::SecretString::from),
                source_hash: r.source_hash,
                expires_at: r.expires_at,
                next_check_at: r.next_check_at,
                token_type: r.token_type,
                never_expires: r.never_expires,
            }))
        })
    }

    /// The operator supplied a token with this hash for the first time: it wins over any token
    /// igmod refreshed before, and its expiry is unknown.
    pub async fn set_token_source(&self, account: &str, hash: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            self.forget_token(account);
            sqlx::query(
            "INSERT INTO tokens (account, status, checked_at, source_hash) VALUES ($1, 'ok', $2, $3)
             ON CONFLICT (account) DO UPDATE SET source_hash = excluded.source_hash, token = NULL,
                 expires_at = NULL, expiry_estimated = 0, refreshed_at = NULL, next_check_at = NULL,
                 status = 'ok',
                 invalid_reason = NULL, checked_at = excluded.checked_at, token_type = NULL,
                 never_expires = 0, data_access_expires_at = NULL, scopes = NULL,
                 validated_at = NULL",
        )
        .bind(account)
        .bind(timefmt::now())
        .bind(hash)
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    /// Persists a refreshed token and its expiry in one statement, before it is used.
    pub async fn store_refreshed_token(
        &self,
        account: &str,
        token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            self.forget_token(account);
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE tokens SET token = $2, expires_at = $3, expiry_estimated = 0,
                 refreshed_at = $4, next_check_at = NULL,
                 status = 'ok', invalid_reason = NULL, checked_at = $4
             WHERE account = $1",
            )
            .bind(account)
            .bind(token)
            .bind(timefmt::format(expires_at))
            .bind(timefmt::now())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// When to look at the token again, and (if still unknown) an upper bound of its expiry.
    pub async fn set_token_check(
        &self,
        account: &str,
        next_check_at: DateTime<Utc>,
        expires_at_if_unknown: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            self.forget_token(account);
            sqlx::query(
                "UPDATE tokens SET next_check_at = $2, expires_at = COALESCE(expires_at, $3),
                 expiry_estimated = CASE WHEN expires_at IS NULL AND $3 IS NOT NULL THEN 1
                                         ELSE expiry_estimated END
             WHERE account = $1",
            )
            .bind(account)
            .bind(timefmt::format(next_check_at))
            .bind(expires_at_if_unknown.map(timefmt::format))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn token_health(&self, account: &str) -> Result<Option<TokenHealth>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT status, invalid_reason, checked_at, expires_at, token_type,
                    never_expires <> 0 AS never_expires, data_access_expires_at, scopes,
                    validated_at, expiry_estimated <> 0 AS expiry_estimated
             FROM tokens WHERE account = $1",
            )
            .bind(account)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// What a validation learned about the token (`expires_at = None` with `never_expires`:
    /// a Page token; `None` without it: not said).
    pub async fn record_token_info(
        &self,
        account: &str,
        info: &TokenInfoRow<'_>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            self.forget_token(account);
            sqlx::query(
                "UPDATE tokens SET token_type = $2, never_expires = $3,
                 expires_at = CASE WHEN $3 = 1 THEN NULL ELSE COALESCE($4, expires_at) END,
                 expiry_estimated = CASE WHEN $3 = 1 OR $4 IS NOT NULL THEN 0
                                         ELSE expiry_estimated END,
                 data_access_expires_at = $5, scopes = $6, validated_at = $7, checked_at = $7
             WHERE account = $1",
            )
            .bind(account)
            .bind(info.token_type)
            .bind(i64::from(info.never_expires))
            .bind(info.expires_at.map(timefmt::format))
            .bind(info.data_access_expires_at.map(timefmt::format))
            .bind(info.scopes)
            .bind(timefmt::now())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A validation found the token usable (no introspection: a plain call answered).
    pub async fn token_validated(&self, account: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            self.forget_token(account);
            sqlx::query("UPDATE tokens SET validated_at = $2, checked_at = $2 WHERE account = $1")
                .bind(account)
                .bind(timefmt::now())
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}

/// The columns [`Store::record_token_info`] writes.
#[derive(Debug, Clone, Copy)]
pub struct TokenInfoRow<'a> {
    pub token_type: Option<&'a str>,
    pub never_expires: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub data_access_expires_at: Option<DateTime<Utc>>,
    pub scopes: &'a str,
}

#[cfg(test)]
mod secret_tests {
    #[test]
    fn a_token_record_never_prints_its_token() {
        let record = super::TokenRecord {
            token: Some(secrecy::SecretString::from("EAAG-SECRET-record")),
            ..Default::default()
        };
        let shown = format!("{record:?}");
        assert!(!shown.contains("EAAG-SECRET"), "{shown}");
    }
}
