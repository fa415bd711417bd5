//! One account's loop: sleep until the due time stored in SQLite, poll, store the next due
//! time. One task per account, so an account's polls never overlap, and a failure (or a panic)
//! in one account's task never touches another's.
//!
//! Cron schedules: tokio-cron-scheduler fires a job at each cron time that wakes the loop.
//! Its known faults (a repeated job that stops firing, overlapping runs, DST) are contained:
//! the loop computes the same next time itself with `croner` and polls at most
//! [`CRON_GRACE`] late if the wake-up never comes; a wake-up that comes early or twice is
//! ignored because the due time, not the wake-up, decides.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::account::{AccountCtx, PollError, record_token_expiry};
use crate::budget::CallError;
use crate::config::Schedule;
use crate::config::schedule::parse_cron;
use crate::graph::ErrorKind;
use crate::poller;
use crate::store::PollEnd;
use crate::timefmt;

/// How late a cron poll may run when the cron job's wake-up is missing.
pub const CRON_GRACE: Duration = Duration::from_secs(2);

/// The first time strictly after `after` that the schedule is due.
pub fn next_due(schedule: &Schedule, after: DateTime<Utc>) -> DateTime<Utc> {
    match schedule {
        Schedule::Every(d) => {
            after + chrono::Duration::from_std(*d).unwrap_or(chrono::Duration::hours(1))
        }
        Schedule::Cron(expr) => parse_cron(expr)
            .ok()
            .and_then(|c| c.find_next_occurrence(&after, false).ok())
            .unwrap_or(after + chrono::Duration::hours(1)),
    }
}

/// Why an account's loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Shutdown,
    /// The token is dead or missing; the account waits for a new one (reload or restart).
    TokenDead(String),
}

/// Runs an account until shutdown, or until its token is dead.
#[tracing::instrument(name = "account", skip_all, fields(account = %ctx.config.name))]
pub async fn run_account(
    ctx: Arc<AccountCtx>,
    wake: Arc<Notify>,
    mut validate: watch::Receiver<u64>,
    shutdown: CancellationToken,
) -> Ended {
    let name = ctx.config.name.clone();
    let mut token_ok_recorded = false;
    validate.mark_unchanged();
    // Nothing, not even the token check, before this instance holds the account's lease.
    if !ctx.leases.wait_held(&name, &shutdown).await {
        return Ended::Shutdown;
    }
    if let Some(reason) = Box::pin(validate_token(&ctx)).await {
        return stop_account(&ctx, reason).await;
    }
    // Deliveries answered 200 before a restart are taken first.
    take_inbox(&ctx).await;
    loop {
        let state = ctx.store.account_state(&name).await;
        let due = match &state {
            Ok(state) => {
                let due = state.next_due_at.as_deref().and_then(timefmt::parse);
                // A post the raid guard closed is reopened on time: the poll comes early for
                // it (a reopening already late waits for the schedule, never loops).
                let now = Utc::now();
                let reopen = ctx
                    .raid_reopen_at
                    .lock()
                    .ok()
                    .and_then(|at| *at)
                    .filter(|at| *at > now);
                let due = match (due, reopen) {
                    (Some(d), Some(r)) => Some(d.min(r)),
                    (d, _) => d,
                };
                let paused = state.paused_until.as_deref().and_then(timefmt::parse);
                due.max(paused).unwrap_or_else(Utc::now)
            }
            Err(e) => {
                tracing::error!(message = "cannot read schedule; retrying in 30s", error = %e);
                Utc::now() + chrono::Duration::seconds(30)
            }
        };
        match wait_until(
            due,
            &ctx.config.schedule,
            &wake,
            &ctx.inbox,
            &mut validate,
            &shutdown,
        )
        .await
        {
            Woke::Shutdown => return Ended::Shutdown,
            Woke::Inbox => {
                take_inbox(&ctx).await;
                continue;
            }
            Woke::Validate => {
                if let Some(reason) = Box::pin(validate_token(&ctx)).await {
                    return stop_account(&ctx, reason).await;
                }
                continue;
            }
            Woke::Due => {}
        }
        if !ctx.leases.holds(&name) {
            // Another instance has the account now: wait to get it back, then take what
            // arrived meanwhile. Its schedule is in the shared database.
            tracing::info!(message = "lease lost; the account's new holder polls it");
            if !ctx.leases.wait_held(&name, &shutdown).await {
                return Ended::Shutdown;
            }
            tracing::info!(message = "lease held; polling resumes");
            take_inbox(&ctx).await;
            continue;
        }
        let started = Utc::now();
        let reads_before = ctx.budget.reads();
        // The state read for the schedule serves the poll too (one query less per poll). The
        // poll's future is boxed: it is large, and an account waits between polls holding
        // only this loop's (10,000 accounts × a poll's future cost ~15 KB each).
        let busy = ctx.leases.busy(&name);
        let result = Box::pin(poller::poll(&ctx, state.ok())).await;
        drop(busy);
        if matches!(&result, Err(PollError::Call(CallError::NotHolder))) {
            // The lease went mid-poll: the new holder records this account's polls now.
            continue;
        }
        ctx.budget.poll_cost(ctx.budget.reads() - reads_before);
        let (mut next, effective) = next_poll(&ctx, started);
        let exhausted = matches!(&result, Err(PollError::Call(CallError::Exhausted { .. })));
        // The poll's status, its error, and whether it went through (ending a throttle streak).
        let (status, error, went_through) = match result {
            Ok(r) => {
                tracing::info!(
                    message = "poll done",
                    media = r.media,
                    media_read = r.media_read,
                    new_comments = r.new_comments,
                    decisions = r.decisions,
                    actions_done = r.actions_done,
                    skipped_posts = r.skipped_posts
                );
                if !token_ok_recorded {
                    token_ok_recorded = ctx.store.set_token_health(&name, None).await.is_ok();
                }
                match r.skipped_because {
                    None => ("ok", None, true),
                    Some(why) => ("partial", Some(why), true),
                }
            }
            Err(e) => {
                if let Some(reason) = token_dead(&e) {
                    return stop_account(&ctx, reason).await;
                }
                if e.database_unwritable() {
                    tracing::error!(
                        message = "DATABASE CANNOT BE WRITTEN (read-only, disk full or I/O error): polling stopped so that nothing is read or done without a record; igmod checks every 30 s and resumes by itself",
                        error = %e
                    );
                    if !wait_for_writable(&ctx, &shutdown).await {
                        return Ended::Shutdown;
                    }
                    continue;
                }
                match &e {
                    PollError::Call(CallError::Exhausted { until, .. }) => {
                        tracing::warn!(message = "hourly budget spent; polls wait for it", error = %e);
                        next = next.max(*until);
                    }
                    PollError::Call(CallError::Paused { until, .. }) => next = next.max(*until),
                    PollError::Token(t) if t.is_transient() => {
                        tracing::warn!(message = "poll failed: the token cannot be read for now; tried again soon", error = %e);
                        next = next.min(Utc::now() + TRANSIENT_RETRY);
                    }
                    _ => tracing::warn!(message = "poll failed", error = %e),
                }
                ("error", Some(e.to_string()), false)
            }
        };
        crate::metrics::get().poll(
            &name,
            status,
            (Utc::now() - started)
                .to_std()
                .map_or(0.0, |d| d.as_secs_f64()),
            i64::try_from(effective.as_secs()).unwrap_or(i64::MAX),
            ctx.budget.used_ratio(),
            exhausted,
        );
        // Everything the poll's end changes, in one write.
        let end = PollEnd {
            status,
            error: error.as_deref(),
            next_due: next,
            effective_interval_secs: effective.as_secs(),
            usage_pct: ctx.budget.usage_pct(),
            clear_throttle_strikes: went_through,
        };
        if let Err(e) = ctx.store.poll_ended(&name, &end).await {
            tracing::error!(message = "cannot record poll", error = %e);
        }
    }
}

/// Decides and acts on the comments webhooks delivered; a failure leaves them pending for the
/// next wake-up or restart (and the poll finds them anyway).
async fn take_inbox(ctx: &AccountCtx) {
    if !ctx.leases.holds(&ctx.config.name) {
        return;
    }
    if let Err(e) = Box::pin(crate::webhook::inbox::take(ctx)).await {
        tracing::warn!(message = "webhook comments not taken; they wait for the next try", error = %e);
    }
}

/// How often a stopped account checks whether the database takes writes again.
const WRITABLE_CHECK: Duration = Duration::from_secs(30);

/// Waits until a probe write succeeds. Returns `false` on shutdown.
async fn wait_for_writable(ctx: &AccountCtx, shutdown: &CancellationToken) -> bool {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(WRITABLE_CHECK) => {}
        }
        if ctx.store.probe_write().await.is_ok() {
            tracing::info!(message = "the database takes writes again: polling resumes");
            return true;
        }
    }
}

/// Stops the account loudly: its token cannot be used. Other accounts go on.
async fn stop_account(ctx: &AccountCtx, reason: String) -> Ended {
    crate::metrics::get().stopped(&ctx.config.name);
    tracing::error!(
        message = "ACCOUNT STOPPED: its access token is not usable; put a new token in its source and restart or reload igmod",
        token_source = %ctx.config.token.describe(),
        error = %reason
    );
    if let Err(e) = ctx
        .store
        .set_token_health(&ctx.config.name, Some(&reason))
        .await
    {
        tracing::error!(message = "cannot record token health", error = %e);
    }
    record_poll(ctx, "token_invalid", Some(&reason)).await;
    Ended::TokenDead(reason)
}

/// Validates the account's token (at start and at each `token_check`): see
/// [`crate::tokens::validate`]. Returns the reason to stop the account, if any; a failure to
/// check (network, budget) only logs, and polling goes on. The username it learns lets
/// `impersonation` know the account's own name.
async fn validate_token(ctx: &AccountCtx) -> Option<String> {
    let token = match crate::tokens::current(&ctx.store, &ctx.config).await {
        Ok(t) => t,
        Err(crate::tokens::CurrentError::Source(e)) if e.is_transient() => {
            // Out of descriptors, an I/O error: says nothing about the token. The next poll
            // reads it again (soon: see `TRANSIENT_RETRY`).
            tracing::warn!(message = "cannot read the token now to validate it; polling goes on", error = %e);
            return None;
        }
        Err(e) => return Some(format!("cannot load token: {e}")),
    };
    let checked = crate::tokens::validate(ctx.tokens(), &token).await;
    match checked {
        Ok(Ok(crate::tokens::Validation::Usable(username))) => {
            record_token_expiry(ctx).await;
            let learned = match &username {
                Some(u) => ctx.learn_username(u).await,
                None => Ok(()),
            };
            if let Err(e) = learned {
                tracing::warn!(message = "cannot record the account's username", error = %e);
            }
            None
        }
        Ok(Ok(crate::tokens::Validation::Unusable(reason))) => Some(reason),
        Ok(Err(e)) => {
            let e = PollError::Call(e);
            let dead = token_dead(&e);
            if dead.is_none() {
                tracing::warn!(message = "cannot validate the token now; polling anyway", error = %e);
            }
            dead
        }
        Err(e) => {
            tracing::warn!(message = "cannot record the token check", error = %e);
            None
        }
    }
}

async fn record_poll(ctx: &AccountCtx, status: &str, error: Option<&str>) {
    if let Err(e) = ctx
        .store
        .poll_finished(&ctx.config.name, status, error)
        .await
    {
        tracing::error!(message = "cannot record poll", error = %e);
    }
}

/// When the next poll is due: the schedule, stretched to the account's effective interval
/// (budget pacing, Meta's usage), returned too so the poll's end stores it for `status`.
fn next_poll(ctx: &AccountCtx, started: DateTime<Utc>) -> (DateTime<Utc>, Duration) {
    let configured = match &ctx.config.schedule {
        Schedule::Every(d) => *d,
        Schedule::Cron(_) => (next_due(&ctx.config.schedule, started) - started)
            .to_std()
            .unwrap_or_default(),
    };
    let effective = ctx.budget.effective_interval(configured);
    let earliest = timefmt::later(started, effective);
    let next = match &ctx.config.schedule {
        Schedule::Every(_) => earliest,
        // The first cron time at or after the stretched interval.
        Schedule::Cron(_) => next_due(
            &ctx.config.schedule,
            earliest - chrono::Duration::milliseconds(1),
        ),
    };
    (next, effective)
}

/// Why [`wait_until`] returned.
enum Woke {
    Due,
    /// The token check job fired.
    Validate,
    /// A webhook delivery for the account was written.
    Inbox,
    Shutdown,
}

/// Sleeps until `due` (for cron schedules: until the cron job's wake-up at or after `due`, or
/// `due + CRON_GRACE`), or until the token check job fires or a webhook delivery arrives.
async fn wait_until(
    due: DateTime<Utc>,
    schedule: &Schedule,
    wake: &Notify,
    inbox: &Notify,
    validate: &mut watch::Receiver<u64>,
    shutdown: &CancellationToken,
) -> Woke {
    let grace = match schedule {
        Schedule::Cron(_) => CRON_GRACE,
        Schedule::Every(_) => Duration::ZERO,
    };
    let mut checks = true;
    loop {
        let now = Utc::now();
        let deadline = due + chrono::Duration::from_std(grace).unwrap_or_default();
        if shutdown.is_cancelled() {
            return Woke::Shutdown;
        }
        if now >= deadline {
            return Woke::Due;
        }
        let sleep = (deadline - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = shutdown.cancelled() => return Woke::Shutdown,
            _ = tokio::time::sleep(sleep) => return Woke::Due,
            changed = validate.changed(), if checks => {
                if changed.is_ok() {
                    return Woke::Validate;
                }
                // The daemon dropped the sender (shutting down): no more checks to wait for.
                checks = false;
            }
            _ = inbox.notified() => return Woke::Inbox,
            _ = wake.notified() => {
                // Early or duplicate wake-ups are ignored: the due time decides.
                if Utc::now() + chrono::Duration::milliseconds(500) >= due {
                    return Woke::Due;
                }
            }
        }
    }
}

/// How soon a poll whose token could not be read for a passing reason is tried again.
const TRANSIENT_RETRY: chrono::Duration = chrono::Duration::seconds(30);

/// The reason to stop the account, if the error means its token is unusable (a token source
/// failing for a passing reason does not: it is tried again).
fn token_dead(e: &PollError) -> Option<String> {
    match e {
        PollError::Token(t) if t.is_transient() => None,
        PollError::Token(t) => Some(t.to_string()),
        PollError::Call(CallError::Graph(g)) => match g.kind {
            ErrorKind::TokenInvalid { subcode } => Some(match subcode {
                Some(463 | 467) => {
                    format!("token expired (code 190, subcode {})", subcode.unwrap_or(0))
                }
                Some(460) => {
                    "token invalidated by a password change (code 190, subcode 460)".into()
                }
                Some(458 | 459 | 464 | 492) => format!(
                    "token no longer authorised (code 190, subcode {})",
                    subcode.unwrap_or(0)
                ),
                Some(s) => format!("token invalid (code 190, subcode {s})"),
                None => "token invalid (code 190)".into(),
            }),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_due_times() {
        let t = timefmt::parse("2026-11-28T10:00:30Z").unwrap_or_default();
        let cases = [
            (
                Schedule::Every(Duration::from_secs(120)),
                "2026-11-28T10:02:30.000Z",
            ),
            (
                Schedule::Cron("0 */2 * * * *".into()),
                "2026-11-28T10:02:00.000Z",
            ),
            (
                Schedule::Cron("30 0 10 * * *".into()),
                "2026-11-29T10:00:30.000Z",
            ),
        ];
        for (schedule, expected) in cases {
            assert_eq!(
                timefmt::format(next_due(&schedule, t)),
                expected,
                "{schedule:?}"
            );
        }
    }
}
