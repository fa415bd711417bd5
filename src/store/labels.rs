//! Operators' labels on comments: what `igmod label` and `igmod undo` record, and what
//! `igmod labels export` and `igmod model train --labels-from-db` read back.

use super::{Store, StoreError};
use crate::timefmt;

/// A comment's label as an operator gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Scam,
    Ok,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Scam => "scam",
            Label::Ok => "ok",
        }
    }

    pub fn parse(s: &str) -> Option<Label> {
        match s {
            "scam" | "spam" | "1" => Some(Label::Scam),
            "ok" | "ham" | "0" => Some(Label::Ok),
            _ => None,
        }
    }
}

/// Where a label came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSource {
    /// `igmod label`.
    Label,
    /// An unhide by `igmod undo`.
    Undo,
}

impl LabelSource {
    fn as_str(self) -> &'static str {
        match self {
            LabelSource::Label => "label",
            LabelSource::Undo => "undo",
        }
    }
}

/// A comment's latest label, with the comment's text (if retention has not pruned it).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LabeledComment {
    pub comment_id: String,
    pub account: String,
    pub text: Option<String>,
    pub username: Option<String>,
    /// `scam` or `ok`.
    pub label: String,
    /// `label` or `undo`.
    pub source: String,
    pub who: Option<String>,
    pub labeled_at: String,
}

impl Store {
    /// Records a label on a stored comment. `Ok(false)`: igmod has never seen that comment.
    pub async fn add_label(
        &self,
        comment_id: &str,
        label: Label,
        source: LabelSource,
        who: Option<&str>,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let done = sqlx::query(
                "INSERT INTO labels (comment_id, account, label, source, who, labeled_at)
             SELECT id, account, $2, $3, $4, $5 FROM comments WHERE id = $1",
            )
            .bind(comment_id)
            .bind(label.as_str())
            .bind(source.as_str())
            .bind(who)
            .bind(timefmt::now())
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Every labeled comment with its latest label (a later label replaces an earlier one),
    /// oldest label first.
    pub async fn latest_labels(&self) -> Result<Vec<LabeledComment>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
            "SELECT l.comment_id, l.account, c.text, c.username, l.label, l.source, l.who, l.labeled_at
             FROM labels l JOIN comments c ON c.id = l.comment_id
             WHERE l.id = (SELECT MAX(id) FROM labels m WHERE m.comment_id = l.comment_id)
             ORDER BY l.id",
        )
        .fetch_all(pool)
        .await?)
        })
    }
}
