//! One account's context: its config, Graph client, call gate, store handle and the small
//! in-memory state its polls, webhook batches, outbox and loop share ([`AccountCtx`]), and
//! the error that stops one of them ([`PollError`]).
//!
//! Below the poller, the outbox, the raid guard, the webhook inbox and the scheduler, which
//! all work on an account through it and none of which should import another for it.

use crate::budget::{Budget, CallError};
use crate::config::AccountConfig;
use crate::graph::{self, ErrorKind};
use crate::secrets::TokenError;
use crate::store::{Store, StoreError};

/// Everything one account's polls need.
#[derive(Debug)]
pub struct AccountCtx {
    pub config: AccountConfig,
    pub client: graph::Client,
    pub budget: Budget,
    pub store: Store,
    pub dry_run: bool,
    /// The Meta app (Facebook Login introspection and exchange).
    pub app: Option<crate::config::AppConfig>,
    /// The account's own username once known (for `impersonation`), cached from SQLite.
    pub username: std::sync::Mutex<Option<String>>,
    /// When the outbox was last seen empty with no decision since: a quiet poll then skips
    /// looking (one query less per poll), but looks again every [`PENDING_RECHECK`] for
    /// actions another process left (an interrupted `igmod undo`).
    pub outbox_empty_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// Per post, the comment count and newest comment id as last fully read: a poll whose
    /// listing matches every entry asks SQLite nothing (the quiet poll of most accounts).
    pub media_seen: std::sync::Mutex<std::collections::HashMap<String, (i64, Option<String>)>>,
    /// Woken by the webhook receiver when a delivery for this account was written.
    pub inbox: std::sync::Arc<tokio::sync::Notify>,
    /// This instance's leases: the account is worked on only while its lease is held.
    pub leases: std::sync::Arc<crate::lease::Leases>,
    /// When the raid guard next owes a post its comments back: the account's loop wakes for
    /// it even when its next poll is later.
    pub raid_reopen_at: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

/// How long a seen-empty outbox is trusted without looking.
pub const PENDING_RECHECK: std::time::Duration = std::time::Duration::from_secs(300);

impl AccountCtx {
    /// What the token functions need of this account.
    pub fn tokens(&self) -> crate::tokens::TokenCtx<'_> {
        crate::tokens::TokenCtx {
            store: &self.store,
            budget: &self.budget,
            client: &self.client,
            account: &self.config,
            app: self.app.as_ref(),
        }
    }

    /// Whether the outbox may hold pending actions.
    pub fn outbox_may_hold_actions(&self) -> bool {
        self.outbox_empty_at
            .lock()
            .ok()
            .and_then(|t| *t)
            .is_none_or(|t| t.elapsed() >= PENDING_RECHECK)
    }

    /// Records that the outbox was just seen empty (`true`) or may have gained an action.
    pub fn outbox_seen_empty(&self, empty: bool) {
        if let Ok(mut t) = self.outbox_empty_at.lock() {
            *t = empty.then(std::time::Instant::now);
        }
    }

    /// Forgets what the posts looked like: after igmod deleted a comment the stored count was
    /// lowered, and only the stored count may decide whether a post changed.
    pub fn forget_media(&self) {
        if let Ok(mut seen) = self.media_seen.lock() {
            seen.clear();
        }
    }

    pub(crate) fn remember_media(&self, m: &graph::Media) {
        if let Ok(mut seen) = self.media_seen.lock() {
            seen.insert(m.id.clone(), (m.comments_count, m.newest_comment.clone()));
        }
    }

    /// Every listed post is as last fully read.
    pub(crate) fn media_unchanged(&self, media: &[graph::Media]) -> bool {
        self.media_seen.lock().is_ok_and(|seen| {
            media.iter().all(|m| {
                seen.get(&m.id).is_some_and(|(count, newest)| {
                    *count == m.comments_count && *newest == m.newest_comment
                })
            })
        })
    }

    pub(crate) fn username(&self) -> Option<String> {
        self.username.lock().ok().and_then(|u| u.clone())
    }

    /// Remembers the account's username (from `/me` or its own comments), in memory and SQLite.
    pub async fn learn_username(&self, username: &str) -> Result<(), StoreError> {
        if self.username().as_deref() == Some(username) {
            return Ok(());
        }
        if let Ok(mut u) = self.username.lock() {
            *u = Some(username.to_string());
        }
        self.store
            .set_account_username(&self.config.name, username)
            .await
    }
}

/// Why a poll (or a webhook batch, or a token check) of one account stopped.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot load token: {0}")]
    Token(#[from] TokenError),
}

impl From<crate::tokens::CurrentError> for PollError {
    fn from(e: crate::tokens::CurrentError) -> Self {
        match e {
            crate::tokens::CurrentError::Source(t) => PollError::Token(t),
            crate::tokens::CurrentError::Store(s) => PollError::Store(s),
        }
    }
}

impl PollError {
    /// The database cannot take writes (see [`StoreError::cannot_write`]).
    pub fn database_unwritable(&self) -> bool {
        match self {
            PollError::Store(e) | PollError::Call(CallError::Store(e)) => e.cannot_write(),
            _ => false,
        }
    }

    /// Errors after which no action can be applied in this poll either: those that stop the
    /// poll, except a spent read budget (actions have their own reserve).
    pub fn blocks_actions(&self) -> bool {
        self.stops_poll() && !matches!(self, PollError::Call(CallError::Exhausted { .. }))
    }

    /// Errors that make the rest of this poll pointless: no budget, paused, dead token, no
    /// database. Others (a post that vanished, a transient failure that outlived its retries)
    /// skip one post and let the poll go on.
    pub fn stops_poll(&self) -> bool {
        match self {
            PollError::Call(CallError::Graph(e)) => matches!(
                e.kind,
                ErrorKind::TokenInvalid { .. }
                    | ErrorKind::Throttled { .. }
                    | ErrorKind::AppSecretProof
            ),
            _ => true,
        }
    }
}

/// Puts the token's known expiry into the metrics (after a validation or a refresh).
pub async fn record_token_expiry(ctx: &AccountCtx) {
    if let Ok(record) = ctx.store.token_record(&ctx.config.name).await {
        let expiry = record
            .expires_at
            .as_deref()
            .and_then(crate::timefmt::parse)
            .filter(|_| !record.never_expires)
            .map(|t| t.timestamp());
        crate::metrics::get().token_expiry(&ctx.config.name, expiry);
    }
}
