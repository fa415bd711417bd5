//! `igmod undo`: unhide what igmod hid, after a bad rule. Each unhide is an `unhide` row in the
//! `actions` table, written before the call and closed after it, like every other action.
//! Deleted comments cannot come back; undo says so. The original decision stays: igmod never
//! re-decides a comment, so it will not hide it again. Each unhide is also an `ok` label in
//! `labels`, for retraining the classifier (`igmod model train --labels-from-db`).

use chrono::{DateTime, Utc};

use crate::budget::{CallError, CallKind};
use crate::config::Config;
use crate::graph::ErrorKind;
use crate::store::{Label, LabelSource, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Setup(#[from] crate::daemon::DaemonError),
}

/// What undo did, one line per comment.
#[derive(Debug, Default)]
pub struct UndoReport {
    pub lines: Vec<String>,
    pub unhidden: usize,
    pub failed: usize,
}

/// Unhides, and records each comment unhidden as labeled `ok` by `who` (a correction the
/// classifier can be retrained on).
pub async fn undo(
    config: &Config,
    store: &Store,
    comment_id: Option<&str>,
    rule: Option<&str>,
    since: Option<DateTime<Utc>>,
    who: Option<&str>,
) -> Result<UndoReport, UndoError> {
    let mut report = UndoReport::default();
    let candidates = store.undo_candidates(comment_id, rule, since).await?;
    if candidates.is_empty() {
        report
            .lines
            .push("nothing to undo: no hide or delete by igmod matches".into());
    }
    for c in candidates {
        let rule = c.rule.as_deref().unwrap_or("?");
        if c.action == "delete" {
            report.lines.push(format!(
                "{}: deleted by rule {rule}; deletes cannot be undone",
                c.comment_id
            ));
            continue;
        }
        if c.unhide_status.as_deref() == Some("done") {
            report
                .lines
                .push(format!("{}: already unhidden", c.comment_id));
            continue;
        }
        let Some(account) = config.accounts.iter().find(|a| a.name == c.account) else {
            report.failed += 1;
            report.lines.push(format!(
                "{}: account {:?} is no longer in the config",
                c.comment_id, c.account
            ));
            continue;
        };
        let token = match crate::tokens::current(store, account).await {
            Ok(t) => t,
            Err(e) => {
                report.failed += 1;
                report.lines.push(format!("{}: {e}", c.comment_id));
                continue;
            }
        };
        let (client, budget) = crate::daemon::client_and_budget(config, account, store).await?;
        let id = store.record_unhide(&account.name, &c.comment_id).await?;
        store.action_started(id, None).await?;
        let result = budget
            .call(CallKind::Write, || {
                client.set_hidden(&token, &c.comment_id, false)
            })
            .await;
        match result {
            Ok(_) => {
                store.action_done(id, None).await?;
                store
                    .add_label(&c.comment_id, Label::Ok, LabelSource::Undo, who)
                    .await?;
                report.unhidden += 1;
                report.lines.push(format!(
                    "{}: unhidden (was hidden by rule {rule})",
                    c.comment_id
                ));
            }
            Err(CallError::Graph(g)) if g.kind == ErrorKind::Gone => {
                store.action_done(id, Some("comment gone")).await?;
                report
                    .lines
                    .push(format!("{}: the comment no longer exists", c.comment_id));
            }
            Err(e) => {
                let message = e.to_string();
                store.action_failed(id, &message).await?;
                report.failed += 1;
                report
                    .lines
                    .push(format!("{}: failed: {message}", c.comment_id));
            }
        }
    }
    Ok(report)
}
