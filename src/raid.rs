//! The raid guard: when a bot wave floods one post, its comments are switched off for a while.
//!
//! Meta offers one write for it, `POST /{media-id}?comment_enabled=false` (graph-api.md §5,
//! §12): one call instead of hundreds of hides. The guard runs after the outbox, at the end of
//! each poll and of each batch of webhook deliveries: it counts, per post, the comments igmod hid or deleted within the account's
//! `raid_guard.within` (from the audit tables, so a restart forgets nothing), and when one post
//! has more than `max_comments` it records a closure and switches the post's comments off.
//! After `close_for` it switches them back on. Moderation of what still arrives goes on.
//!
//! A closure is an action like the others: its row (`closing`) is written before the switch is
//! sent, each attempt is counted first, and an attempt whose answer was lost is read back
//! (`is_comment_enabled`) before it is repeated. The reopening it owes is in the same row, so
//! a post closed before a crash or a restart is reopened after it. A post is closed at most once
//! per `close_for` (counted from its last reopening), never while it is a live video (Meta
//! supports no moderation there), and in dry run (the daemon's or the guard's) nothing is
//! switched: the guard only logs what it would do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use secrecy::SecretString;

use crate::account::{AccountCtx, PollError};
use crate::budget::{CallError, CallKind};
use crate::graph::{self, ErrorKind};
use crate::store::RaidClosure;

/// Attempts after which a switch that keeps failing transiently is given up as `failed`.
const MAX_ATTEMPTS: i64 = 8;

/// What became of one switch.
enum Switched {
    Done,
    /// Left for the next poll (a transient error, or the account cannot call now).
    Left,
    /// The account cannot call now: the rest waits too.
    Stop,
}

/// Runs the guard for one account after its poll's actions: due switches first (closings not
/// confirmed, reopenings due), then new closures for posts over the threshold. `listed` is the
/// poll's media list (a post not in it, or a live video, is not closed now).
pub async fn guard(
    ctx: &AccountCtx,
    token: &SecretString,
    listed: &[graph::Media],
) -> Result<(), PollError> {
    let account = ctx.config.name.as_str();
    // Reopenings run even when the guard was removed from the config since the closure.
    let due = ctx.store.raid_due(account, Utc::now()).await?;
    let advanced = !due.is_empty();
    for closure in due {
        if let Switched::Stop = advance(ctx, token, &closure).await? {
            return Ok(());
        }
    }
    if let Some(guard) = ctx.config.raid_guard {
        detect(ctx, token, listed, guard).await?;
        // Only guarded accounts get the gauge: 10,000 unguarded ones would each add a series.
        let open = ctx.store.raid_open_closures(Some(account)).await?;
        crate::metrics::get().raid_closed_posts(account, open.len());
        note_next_reopen(ctx, &open);
    } else if advanced {
        note_next_reopen(ctx, &ctx.store.raid_open_closures(Some(account)).await?);
    }
    Ok(())
}

/// Tells the account's loop when the next reopening is due, so that a post is switched back
/// on at `close_for`, not at the first poll after it (a poll interval may be longer).
fn note_next_reopen(ctx: &AccountCtx, open: &[RaidClosure]) {
    let next = open
        .iter()
        .filter(|c| c.status == "closed")
        .filter_map(|c| c.reopen_at)
        .min();
    if let Ok(mut at) = ctx.raid_reopen_at.lock() {
        *at = next;
    }
}

/// Closes the posts over the threshold.
async fn detect(
    ctx: &AccountCtx,
    token: &SecretString,
    listed: &[graph::Media],
    guard: crate::config::RaidGuard,
) -> Result<(), PollError> {
    let account = ctx.config.name.as_str();
    let dry_run = ctx.dry_run || guard.dry_run;
    let now = Utc::now();
    let since = crate::timefmt::ago(now, guard.within);
    let over = i64::from(guard.max_comments);
    for (media_id, removed) in ctx
        .store
        .raid_removals(account, since, dry_run, over)
        .await?
    {
        let Some(media) = listed.iter().find(|m| m.id == media_id) else {
            continue;
        };
        if media.product_type.as_deref() == Some("LIVE") {
            continue;
        }
        let last = ctx.store.raid_last_closure(account, &media_id).await?;
        if let Some(last) = &last {
            if matches!(last.status.as_str(), "closing" | "closed" | "reopening") {
                continue;
            }
            // At most once per close_for: a new wave right after a reopening waits.
            let since_last = last.reopened_at.or(last.decided_at);
            if since_last.is_some_and(|t| t > crate::timefmt::ago(now, guard.close_for)) {
                continue;
            }
            // Only removals after the last reopening count towards a new closure.
            if let Some(reopened) = last.reopened_at
                && reopened > since
            {
                let recent = ctx
                    .store
                    .raid_removals(account, reopened, dry_run, over)
                    .await?;
                if !recent.iter().any(|(m, _)| *m == media_id) {
                    continue;
                }
            }
        }
        if dry_run {
            if first_dry_run_notice(account, &media_id, guard.close_for) {
                tracing::warn!(
                    message = "raid guard (dry run): would switch the post's comments off",
                    media_id = %media_id,
                    removed,
                    within_secs = guard.within.as_secs(),
                    close_for_secs = guard.close_for.as_secs()
                );
            }
            continue;
        }
        let reopen_at = crate::timefmt::later(now, guard.close_for);
        let id = ctx
            .store
            .raid_decide(account, &media_id, removed, reopen_at)
            .await?;
        tracing::warn!(
            message = "raid guard: switching the post's comments off",
            media_id = %media_id,
            removed,
            reopen_at = %crate::timefmt::format(reopen_at)
        );
        let closure = RaidClosure {
            id,
            account: account.to_string(),
            media_id,
            removed,
            status: "closing".into(),
            attempts: 0,
            decided_at: Some(now),
            closed_at: None,
            reopen_at: Some(reopen_at),
            reopened_at: None,
            last_error: None,
        };
        if let Switched::Stop = advance(ctx, token, &closure).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Whether a dry-run closure of this post was not yet logged within `close_for` (so the log
/// tells it once per would-be closure, not at every poll).
fn first_dry_run_notice(account: &str, media_id: &str, close_for: Duration) -> bool {
    static LOGGED: Mutex<Option<HashMap<(String, String), Instant>>> = Mutex::new(None);
    let Ok(mut guard) = LOGGED.lock() else {
        return true;
    };
    let logged = guard.get_or_insert_with(HashMap::new);
    let key = (account.to_string(), media_id.to_string());
    match logged.get(&key) {
        Some(at) if at.elapsed() < close_for => false,
        _ => {
            logged.insert(key, Instant::now());
            true
        }
    }
}

/// Moves one closure on: sends (or confirms) its closing, or its due reopening.
async fn advance(
    ctx: &AccountCtx,
    token: &SecretString,
    c: &RaidClosure,
) -> Result<Switched, PollError> {
    let store = &ctx.store;
    let enable = match c.status.as_str() {
        "closing" => false,
        "reopening" => true,
        "closed" => {
            store.raid_reopening(c.id).await?;
            true
        }
        _ => return Ok(Switched::Left),
    };
    // A reopening just started has no attempt behind it yet.
    let attempts = if c.status == "closed" { 0 } else { c.attempts };
    let outcome = switch(ctx, token, c, enable, attempts).await;
    let error = match outcome {
        Ok(Switched::Done) => {
            if enable {
                store.raid_reopened(c.id).await?;
                tracing::info!(message = "raid guard: post's comments switched back on", media_id = %c.media_id);
            } else {
                store.raid_closed(c.id).await?;
                tracing::warn!(message = "raid guard: post's comments switched off", media_id = %c.media_id);
            }
            crate::metrics::get().raid(&c.account, !enable);
            return Ok(Switched::Done);
        }
        Ok(other) => return Ok(other),
        Err(e) => e,
    };
    let message = error.to_string();
    match &error {
        CallError::Graph(g) => match g.kind {
            ErrorKind::Gone | ErrorKind::Permission | ErrorKind::BadRequest => {
                store.raid_failed(c.id, &message).await?;
                tracing::error!(message = "raid guard: switch refused", media_id = %c.media_id, reopen = enable, error = %message);
                Ok(Switched::Left)
            }
            ErrorKind::Transient | ErrorKind::WriteUncertain => {
                if attempts + 1 >= MAX_ATTEMPTS {
                    let why = format!("gave up after {MAX_ATTEMPTS} attempts: {message}");
                    store.raid_failed(c.id, &why).await?;
                    tracing::error!(message = "raid guard: switch failed for good", media_id = %c.media_id, reopen = enable, error = %why);
                } else {
                    store.raid_retry(c.id, &message).await?;
                    tracing::warn!(message = "raid guard: switch will be retried", media_id = %c.media_id, reopen = enable, error = %message);
                }
                Ok(Switched::Left)
            }
            // Meta refuses the account's writes for now (throttle, restriction, policy
            // block): the switch waits like every write, never given up (a post left closed
            // for good is worse than a late reopening).
            ErrorKind::TokenInvalid { .. }
            | ErrorKind::Throttled { .. }
            | ErrorKind::Restricted
            | ErrorKind::PolicyBlock
            | ErrorKind::AppSecretProof => {
                store.raid_retry(c.id, &message).await?;
                Err(error.into())
            }
        },
        CallError::Exhausted { .. } | CallError::Paused { .. } | CallError::NotHolder => {
            Ok(Switched::Stop)
        }
        CallError::Store(_) => Err(error.into()),
    }
}

/// Reads back a switch whose earlier answer was lost, then sends it if still needed, through
/// the account's budget gate. Never retried blindly within one call.
async fn switch(
    ctx: &AccountCtx,
    token: &SecretString,
    c: &RaidClosure,
    enable: bool,
    attempts: i64,
) -> Result<Switched, CallError> {
    if attempts > 0 {
        let now = ctx
            .budget
            .call(CallKind::Write, || {
                ctx.client.comments_enabled(token, &c.media_id)
            })
            .await?
            .value;
        if now == enable {
            return Ok(Switched::Done);
        }
    }
    let (left, _) = ctx.budget.remaining(CallKind::Write).await?;
    if left == 0 || ctx.budget.paused_until().await?.is_some() {
        return Ok(Switched::Stop);
    }
    if !ctx.leases.holds(&ctx.config.name) {
        return Ok(Switched::Stop);
    }
    ctx.store.raid_attempt(c.id).await?;
    ctx.budget
        .call_once(CallKind::Write, || {
            ctx.client.set_comments_enabled(token, &c.media_id, enable)
        })
        .await?;
    Ok(Switched::Done)
}
