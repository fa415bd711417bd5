//! The outbox: hides, deletes, replies (and operators' unhides), applied exactly once.
//!
//! A decision and its `pending` action row are committed together before any call. Before each
//! call the row's `attempts` is raised, so after a crash a pending row with `attempts > 0` means
//! "the outcome is unknown": the comment is read back first, and the write is repeated only if
//! the comment is not already in the wanted state.

use secrecy::SecretString;

use crate::account::{AccountCtx, PollError};
use crate::budget::{CallError, CallKind};
use crate::graph::{ErrorKind, GraphError};
use crate::store::PendingAction;

/// Attempts after which an action that keeps failing transiently is given up as `failed`.
const MAX_ATTEMPTS: i64 = 8;

/// Pending actions read from the store at a time.
pub const PAGE: i64 = 100;

/// What became of one action in a walk of the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    /// Closed as done.
    Done,
    /// Still pending, or failed for good: the walk goes on.
    Left,
    /// Refused for the whole account (budget spent, paused, lease lost): so would every later
    /// action be, so the walk stops and the rest waits for the next poll.
    Stop,
}

/// Applies the account's pending actions in order, a [`PAGE`] at a time. Returns how many
/// were closed as done. Stops at the first action the account cannot call for now (budget,
/// pause, lease), leaving it and the rest pending: later actions never overtake an earlier
/// one, and a spent budget costs one check, not one per pending action.
pub async fn apply_pending(ctx: &AccountCtx, token: &SecretString) -> Result<usize, PollError> {
    if !ctx.outbox_may_hold_actions() {
        return Ok(0);
    }
    let mut done = 0;
    let mut after = 0;
    loop {
        let page = ctx
            .store
            .pending_actions(&ctx.config.name, after, PAGE)
            .await?;
        if after == 0 {
            ctx.outbox_seen_empty(page.is_empty());
        }
        let last_page = i64::try_from(page.len()).map_or(true, |n| n < PAGE);
        for action in &page {
            after = action.id;
            match apply_one(ctx, token, action).await? {
                Applied::Done => done += 1,
                Applied::Left => {}
                Applied::Stop => return Ok(done),
            }
        }
        if last_page {
            return Ok(done);
        }
    }
}

/// What became of the comment when read back.
enum Observed {
    AlreadyDone(&'static str),
    NeedsWrite,
    /// A reply not found in its thread after an attempt: it may still have been posted (a
    /// lost answer, a read that lags), and a second one is worse than none.
    Unknown(&'static str),
}

/// The write an action makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write<'a> {
    Hide,
    Delete,
    Reply(&'a str),
    /// An operator's `igmod undo` that did not finish: the daemon completes it.
    Unhide,
}

#[tracing::instrument(
    name = "action",
    skip_all,
    fields(comment_id = %a.comment_id, action = %a.action, rule = a.rule.as_deref().unwrap_or("-"))
)]
async fn apply_one(
    ctx: &AccountCtx,
    token: &SecretString,
    a: &PendingAction,
) -> Result<Applied, PollError> {
    let store = &ctx.store;
    let kind = match (a.action.as_str(), &a.message) {
        ("hide", _) => Write::Hide,
        ("delete", _) => Write::Delete,
        ("reply", Some(message)) => Write::Reply(message),
        ("unhide", _) => Write::Unhide,
        (other, _) => {
            store
                .action_failed(a.id, &format!("cannot apply action {other:?}"))
                .await?;
            return Ok(Applied::Left);
        }
    };
    // Meta refuses this account's writes for now (4/2207051, 368): every action waits, and
    // reading comments back for them would spend budget on nothing.
    if ctx.budget.writes_paused_until().is_some() {
        return Ok(Applied::Stop);
    }
    if a.attempts > 0 {
        match reconcile(ctx, token, a, kind).await {
            Ok(Observed::AlreadyDone(note)) => {
                store.action_done(a.id, Some(note)).await?;
                record_done(a);
                tracing::info!(message = "action reconciled", result = note);
                return Ok(Applied::Done);
            }
            Ok(Observed::NeedsWrite) => {}
            Ok(Observed::Unknown(note)) => {
                store.action_failed(a.id, note).await?;
                tracing::warn!(
                    message = "reply left for a person: its outcome is unknown and sending it again could post it twice",
                    action_id = a.id,
                    comment_id = %a.comment_id
                );
                return Ok(Applied::Left);
            }
            Err(e) => return handle_error(ctx, a, e, Step::ReadBack).await,
        }
    }
    // Check the gate before counting an attempt, so a refused call leaves no false "unknown".
    let (left, _) = ctx.budget.remaining(CallKind::Write).await?;
    if left == 0 || ctx.budget.paused_until().await?.is_some() {
        return Ok(Applied::Stop);
    }
    // The claim succeeds only while this instance holds the account's lease: an instance
    // that lost it leaves the action to the new holder.
    if !store.action_started(a.id, Some(ctx.leases.id())).await? {
        tracing::info!(
            message = "action left to the account's new lease holder",
            action_id = a.id
        );
        // Without the lease every later claim fails too; with it, only this action was
        // closed by another hand (an operator's command).
        return Ok(if ctx.leases.holds(&ctx.config.name) {
            Applied::Left
        } else {
            Applied::Stop
        });
    }
    // Never retried blindly: a lost answer may hide a write that took effect, so the next
    // attempt reads the comment back first (attempts > 0 above).
    let result = match kind {
        Write::Hide => ctx
            .budget
            .call_once(CallKind::Write, || {
                ctx.client.set_hidden(token, &a.comment_id, true)
            })
            .await
            .map(drop),
        Write::Unhide => ctx
            .budget
            .call_once(CallKind::Write, || {
                ctx.client.set_hidden(token, &a.comment_id, false)
            })
            .await
            .map(drop),
        Write::Delete => ctx
            .budget
            .call_once(CallKind::Write, || ctx.client.delete(token, &a.comment_id))
            .await
            .map(drop),
        Write::Reply(message) => {
            let sent = ctx
                .budget
                .call_once(CallKind::Write, || {
                    // Replies go on the top-level comment: Meta puts a reply to a reply there
                    // anyway (graph-api.md §5, §12).
                    ctx.client.reply(
                        token,
                        a.parent_id.as_deref().unwrap_or(&a.comment_id),
                        message,
                    )
                })
                .await;
            if let Ok(reply) = &sent {
                // So the reply is known as the account's own when a later read brings it.
                store.set_action_result_id(a.id, &reply.value).await?;
            }
            sent.map(drop)
        }
    };
    match result {
        Ok(()) => {
            if kind == Write::Delete {
                store.note_deleted(&ctx.config.name, &a.comment_id).await?;
                ctx.forget_media();
            }
            store.action_done(a.id, None).await?;
            record_done(a);
            tracing::info!(message = "action applied", result = "done");
            Ok(Applied::Done)
        }
        Err(e) => handle_error(ctx, a, e, Step::Write).await,
    }
}

/// Reads the comment (for a reply: its thread) back to learn whether an earlier, interrupted
/// write took effect. Replies are not idempotent: one is sent again only if it is not there.
async fn reconcile(
    ctx: &AccountCtx,
    token: &SecretString,
    a: &PendingAction,
    kind: Write<'_>,
) -> Result<Observed, CallError> {
    let gone = |e: &CallError| {
        matches!(
            e,
            CallError::Graph(GraphError {
                kind: ErrorKind::Gone,
                ..
            })
        )
    };
    if let Write::Reply(message) = kind {
        let thread = a.parent_id.as_deref().unwrap_or(&a.comment_id);
        let mut after: Option<String> = None;
        loop {
            let page = match ctx
                .budget
                .call(CallKind::Write, || {
                    ctx.client.replies_page(token, thread, after.as_deref())
                })
                .await
            {
                Ok(p) => p.value,
                Err(e) if gone(&e) => {
                    return Ok(Observed::AlreadyDone("comment gone when reconciled"));
                }
                Err(e) => return Err(e),
            };
            // Ours: the same text, written by the account, known by `user` (only on the app
            // user's comments), by the account's username or by an id a reply of ours got
            // back; `from.id` is an Instagram-scoped id, only a hint.
            let mine = ctx.username();
            for r in &page.items {
                if r.text.as_deref() != Some(message) {
                    continue;
                }
                let by_account = r.user_id.is_some()
                    || r.from_id.as_deref() == Some(ctx.config.ig_user_id.as_str())
                    || matches!((&mine, &r.username), (Some(m), Some(u)) if m.eq_ignore_ascii_case(u))
                    || ctx
                        .store
                        .is_own_reply(&ctx.config.name, &r.id)
                        .await
                        .map_err(CallError::Store)?;
                if by_account {
                    return Ok(Observed::AlreadyDone("reply found when reconciled"));
                }
            }
            match page.after {
                Some(next) => after = Some(next),
                // Never sent again: a reply whose attempt may have landed is left to a person.
                None => return Ok(Observed::Unknown("outcome unknown: check the thread")),
            }
        }
    }
    let read = if kind == Write::Delete {
        // Any answer at all shows the comment still there.
        ctx.budget
            .call(CallKind::Write, || ctx.client.comment(token, &a.comment_id))
            .await
            .map(|_| None)
    } else {
        ctx.budget
            .call(CallKind::Write, || {
                ctx.client.comment_hidden(token, &a.comment_id)
            })
            .await
            .map(|r| Some(r.value))
    };
    match read {
        Ok(Some(true)) if kind == Write::Hide => {
            Ok(Observed::AlreadyDone("already hidden when reconciled"))
        }
        Ok(Some(false)) if kind == Write::Unhide => {
            Ok(Observed::AlreadyDone("already visible when reconciled"))
        }
        Ok(_) => Ok(Observed::NeedsWrite),
        Err(e) if gone(&e) => Ok(Observed::AlreadyDone("comment gone when reconciled")),
        Err(e) => Err(e),
    }
}

/// Which call of an action failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Reading the comment back (the attempt was not yet counted).
    ReadBack,
    /// The write itself (already counted by `action_started`).
    Write,
}

/// Counts a finished action; for a hide or delete, how long the comment was visible.
fn record_done(a: &PendingAction) {
    let detection = matches!(a.action.as_str(), "hide" | "delete")
        .then(|| {
            a.comment_created_at
                .as_deref()
                .and_then(crate::timefmt::parse)
        })
        .flatten()
        .and_then(|t| (chrono::Utc::now() - t).to_std().ok())
        .map(|d| d.as_secs_f64());
    crate::metrics::get().action("done", detection);
}

/// Closes, keeps or fails an action after an error. Account-wide errors propagate. Transient
/// failures count towards [`MAX_ATTEMPTS`] whether the write or the read-back failed.
async fn handle_error(
    ctx: &AccountCtx,
    a: &PendingAction,
    e: CallError,
    step: Step,
) -> Result<Applied, PollError> {
    let store = &ctx.store;
    let message = e.to_string();
    match &e {
        CallError::Graph(g) => match g.kind {
            ErrorKind::Gone => {
                store
                    .action_done(a.id, Some("comment already gone"))
                    .await?;
                tracing::info!(message = "action closed", result = "comment already gone");
                Ok(Applied::Done)
            }
            ErrorKind::Transient | ErrorKind::WriteUncertain => {
                // Stays pending; with attempts > 0 the next try reads the comment back first.
                if a.attempts + 1 >= MAX_ATTEMPTS {
                    let why = format!("gave up after {MAX_ATTEMPTS} attempts: {message}");
                    store.action_failed(a.id, &why).await?;
                    crate::metrics::get().action("failed", None);
                    tracing::error!(message = "action failed for good", result = "failed", error = %why);
                } else if step == Step::ReadBack {
                    store.action_read_back_failed(a.id, &message).await?;
                    tracing::warn!(message = "action will be retried", result = "retry", error = %message);
                } else {
                    store.action_retry(a.id, &message).await?;
                    tracing::warn!(message = "action will be retried", result = "retry", error = %message);
                }
                Ok(Applied::Left)
            }
            // Meta refuses this account's writes for a while (the budget paused them): the
            // action and every later one wait for the pause's end.
            ErrorKind::Restricted | ErrorKind::PolicyBlock => {
                store.action_retry(a.id, &message).await?;
                tracing::info!(
                    message = "action waits for meta to allow writes again",
                    result = "waiting"
                );
                Ok(Applied::Stop)
            }
            ErrorKind::Permission | ErrorKind::BadRequest => {
                store.action_failed(a.id, &message).await?;
                crate::metrics::get().action("failed", None);
                tracing::error!(message = "action failed", result = "failed", error = %message);
                Ok(Applied::Left)
            }
            // Account-wide: the action waits for a new token, the throttle's end, or a config
            // with the app secret.
            ErrorKind::TokenInvalid { .. }
            | ErrorKind::Throttled { .. }
            | ErrorKind::AppSecretProof => {
                store.action_retry(a.id, &message).await?;
                Err(e.into())
            }
        },
        CallError::Exhausted { .. } | CallError::Paused { .. } | CallError::NotHolder => {
            Ok(Applied::Stop)
        }
        CallError::Store(_) => Err(e.into()),
    }
}
