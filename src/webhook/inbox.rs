//! The account's side of webhooks: its task takes the deliveries written for it, decides each
//! comment as a polled one would be, and applies the actions at once. Run by the account's
//! own task, between polls, so a comment is never decided or acted on by two hands at once.

use crate::account::{AccountCtx, PollError};
use crate::graph::Comment;
use crate::poller::{self, PollReport, Recorded};

use super::payload;

/// What one pass over the inbox did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InboxReport {
    pub events: usize,
    pub new_comments: usize,
    pub decisions: usize,
    pub actions_done: usize,
}

/// Takes the account's pending deliveries (all of them: also those written before a crash).
#[tracing::instrument(name = "webhooks", skip_all)]
pub async fn take(ctx: &AccountCtx) -> Result<InboxReport, PollError> {
    let mut report = InboxReport::default();
    let mut poll = PollReport::default();
    let mut token = None;
    // The posts this batch spoke of, for the raid guard (a live video says so in its payload).
    let mut posts: Vec<crate::graph::Media> = Vec::new();
    loop {
        let events = ctx.store.pending_webhook_events(&ctx.config.name).await?;
        if events.is_empty() {
            break;
        }
        let token = match &token {
            Some(t) => t,
            None => token.insert(crate::tokens::current(&ctx.store, &ctx.config).await?),
        };
        for event in events {
            report.events += 1;
            let value: serde_json::Value =
                serde_json::from_str(&event.payload).unwrap_or(serde_json::Value::Null);
            let Some(c) = payload::comment(&value) else {
                ctx.store
                    .finish_webhook_event(event.id, "refused: no comment id")
                    .await?;
                continue;
            };
            let Some(media_id) = c.media_id.clone() else {
                // Album comments come without their media: the next poll reads them.
                ctx.store
                    .finish_webhook_event(event.id, "left to polling: no media id")
                    .await?;
                continue;
            };
            if !posts.iter().any(|m| m.id == media_id) {
                posts.push(crate::graph::Media {
                    id: media_id.clone(),
                    comments_count: 0,
                    product_type: if event.field == "live_comments" {
                        Some("LIVE".into())
                    } else {
                        c.media_type.clone()
                    },
                    media_type: None,
                    newest_comment: None,
                });
            }
            let time = value
                .get("_entry_time")
                .and_then(serde_json::Value::as_i64)
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%z").to_string());
            let comment = Comment {
                id: c.id.clone(),
                text: c.text.clone(),
                username: c.username.clone(),
                from_id: c.from_id.clone(),
                parent_id: c.parent_id.clone(),
                timestamp: time,
                hidden: None,
                // Webhooks carry no `user`; `self_ig_scoped_id` marks the account's own.
                user_id: None,
            };
            // `live_comments` deliveries are comments on a live video whatever the payload's
            // media says (graph-api.md §9, §12).
            let media_type = if event.field == "live_comments" {
                Some("LIVE")
            } else {
                c.media_type.as_deref()
            };
            let recorded = poller::record_pushed(
                ctx,
                token,
                &comment,
                &media_id,
                media_type,
                c.self_scoped,
                &mut poll,
            )
            .await?;
            if recorded != Recorded::Known {
                // The post's stored count follows, so the next poll pages nothing for it.
                ctx.store
                    .bump_media_count(&ctx.config.name, &media_id)
                    .await?;
                ctx.forget_media();
            }
            tracing::debug!(
                message = "webhook comment",
                comment_id = %c.id,
                field = %event.field,
                outcome = recorded.as_str()
            );
            ctx.store
                .finish_webhook_event(event.id, recorded.as_str())
                .await?;
        }
    }
    report.new_comments = poll.new_comments;
    report.decisions = poll.decisions;
    // A reviewer's unhide or removal (src/review/) wakes the task without a delivery: the
    // outbox is applied then too.
    if token.is_none()
        && !ctx
            .store
            .pending_actions(&ctx.config.name, 0, 1)
            .await?
            .is_empty()
    {
        token = Some(crate::tokens::current(&ctx.store, &ctx.config).await?);
    }
    // Also when nothing new was decided: a decision taken before a crash may still wait.
    if let Some(token) = &token {
        report.actions_done = crate::actions::apply_pending(ctx, token).await?;
        crate::raid::guard(ctx, token, &posts).await?;
    }
    if report.events > 0 {
        tracing::info!(
            message = "webhook comments taken",
            events = report.events,
            new_comments = report.new_comments,
            decisions = report.decisions,
            actions_done = report.actions_done
        );
    }
    Ok(report)
}
