//! The review queue's SQL (`src/review/`): decided comments waiting for a person, a
//! reviewer's settlement (one per comment, with its label and at most one queued write), and
//! what reviewers did lately.

use super::{Backend, Store, StoreError};
use crate::timefmt;

/// A decided comment as the review queue shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReviewItem {
    pub comment_id: String,
    pub account: String,
    pub media_id: String,
    pub username: Option<String>,
    pub text: Option<String>,
    pub rule: String,
    /// `flag`, `hide` or `delete`.
    pub action: String,
    /// 1: decided in dry run (nothing was written to Instagram).
    pub dry_run: i64,
    pub reason: String,
    pub decided_at: String,
    /// The comment's language when it was decided (ISO 639-1); `None`: unknown or decided
    /// before languages were stored.
    pub lang: Option<String>,
    /// The decision's outbox row: `pending`, `done`, `failed`; `None`: none (flag, dry run).
    pub action_status: Option<String>,
}

/// A settled comment, for the recent decisions and search.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReviewedItem {
    pub comment_id: String,
    pub account: String,
    pub username: Option<String>,
    pub text: Option<String>,
    pub rule: Option<String>,
    pub action: Option<String>,
    /// `right`, `wrong`, `remove`; `None`: not reviewed (search only).
    pub verdict: Option<String>,
    pub who: Option<String>,
    pub reviewed_at: Option<String>,
}

/// The values the queue's filters offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewFacets {
    pub accounts: Vec<String>,
    pub rules: Vec<String>,
    pub langs: Vec<String>,
}

/// What a reviewer's click records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement<'a> {
    pub comment_id: &'a str,
    pub account: &'a str,
    /// `right`, `wrong` or `remove`.
    pub verdict: &'a str,
    pub who: &'a str,
    /// The label (`scam` or `ok`).
    pub label: super::Label,
    /// A write to queue in the outbox (`unhide`, `hide`, `delete`), at most once per comment.
    pub write: Option<&'a str>,
}

/// What became of a settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Recorded; whether a write was queued by it.
    Done { queued: bool },
    /// Someone settled the comment first (their name).
    Already { who: String },
}

/// The columns of a [`ReviewItem`] (a macro: `concat!` builds literal SQL from it).
macro_rules! item_columns {
    () => {
        "c.id AS comment_id, c.account, c.media_id, c.username, c.text,
    d.rule, d.action, d.dry_run, d.reason, d.decided_at, d.lang,
    (SELECT a.status FROM actions a WHERE a.comment_id = c.id AND a.action = d.action) AS action_status"
    };
}

/// `%`, `_` and `\` taken literally in a `LIKE … ESCAPE '\'` pattern.
fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len().saturating_add(2));
    p.push('%');
    for ch in needle.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

impl Store {
    /// Flagged, hidden and deleted comments nobody has reviewed yet, newest decision first, at
    /// most `limit`; `account`, `rule` and `lang` narrow them. The score band is applied by the
    /// caller (the score is the classifier's, not a column).
    pub async fn review_queue(
        &self,
        account: Option<&str>,
        rule: Option<&str>,
        lang: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let sql = concat!(
            "SELECT ",
            item_columns!(),
            " FROM decisions d JOIN comments c ON c.id = d.comment_id
             WHERE d.action IN ('flag', 'hide', 'delete')
               AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.comment_id = c.id)
               AND ($1 IS NULL OR c.account = $1) AND ($2 IS NULL OR d.rule = $2)
               AND ($3 IS NULL OR d.lang = $3)
             ORDER BY d.decided_at DESC, c.id DESC
             LIMIT $4"
        );
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(sql)
                .bind(account)
                .bind(rule)
                .bind(lang)
                .bind(limit)
                .fetch_all(pool)
                .await?)
        })
    }

    /// One decided comment, reviewed or not (`None`: no flag, hide or delete decision).
    pub async fn review_item(&self, comment_id: &str) -> Result<Option<ReviewItem>, StoreError> {
        let sql = concat!(
            "SELECT ",
            item_columns!(),
            " FROM decisions d JOIN comments c ON c.id = d.comment_id
             WHERE c.id = $1 AND d.action IN ('flag', 'hide', 'delete')"
        );
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(sql)
                .bind(comment_id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Accounts, rules and languages with decisions the queue could show, for its filters.
    pub async fn review_facets(&self) -> Result<ReviewFacets, StoreError> {
        with_pool!(self, |pool| {
            let accounts: Vec<(String,)> = sqlx::query_as(
                "SELECT DISTINCT account FROM decisions
                 WHERE action IN ('flag', 'hide', 'delete') ORDER BY account",
            )
            .fetch_all(pool)
            .await?;
            let rules: Vec<(String,)> = sqlx::query_as(
                "SELECT DISTINCT rule FROM decisions
                 WHERE action IN ('flag', 'hide', 'delete') ORDER BY rule",
            )
            .fetch_all(pool)
            .await?;
            let langs: Vec<(String,)> = sqlx::query_as(
                "SELECT DISTINCT lang FROM decisions
                 WHERE action IN ('flag', 'hide', 'delete') AND lang IS NOT NULL ORDER BY lang",
            )
            .fetch_all(pool)
            .await?;
            let names = |rows: Vec<(String,)>| rows.into_iter().map(|r| r.0).collect();
            Ok(ReviewFacets {
                accounts: names(accounts),
                rules: names(rules),
                langs: names(langs),
            })
        })
    }

    /// Records a reviewer's verdict, its label and (when asked) one outbox write, in one
    /// transaction. The first settlement of a comment wins; a second click, by the same
    /// reviewer or another, records nothing and queues nothing.
    pub async fn settle_review(&self, s: Settlement<'_>) -> Result<Settled, StoreError> {
        with_pool!(self, |pool| {
            let now = timefmt::now();
            let mut tx = pool.begin_write().await?;
            let first = sqlx::query(
                "INSERT INTO reviews (comment_id, account, verdict, who, reviewed_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (comment_id) DO NOTHING",
            )
            .bind(s.comment_id)
            .bind(s.account)
            .bind(s.verdict)
            .bind(s.who)
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !first {
                let who: Option<(String,)> =
                    sqlx::query_as("SELECT who FROM reviews WHERE comment_id = $1")
                        .bind(s.comment_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.rollback().await?;
                return Ok(Settled::Already {
                    who: who.map(|w| w.0).unwrap_or_default(),
                });
            }
            sqlx::query(
                "INSERT INTO labels (comment_id, account, label, source, who, labeled_at)
                 VALUES ($1, $2, $3, 'review', $4, $5)",
            )
            .bind(s.comment_id)
            .bind(s.account)
            .bind(s.label.as_str())
            .bind(s.who)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            let mut queued = false;
            if let Some(write) = s.write {
                queued = sqlx::query(
                    "INSERT INTO actions (comment_id, account, action, status, created_at, updated_at)
                     VALUES ($1, $2, $3, 'pending', $4, $4)
                     ON CONFLICT (comment_id, action) DO NOTHING",
                )
                .bind(s.comment_id)
                .bind(s.account)
                .bind(write)
                .bind(&now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
            }
            tx.commit().await?;
            Ok(Settled::Done { queued })
        })
    }

    /// The latest settlements, newest first.
    pub async fn recent_reviews(&self, limit: i64) -> Result<Vec<ReviewedItem>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT r.comment_id, r.account, c.username, c.text, d.rule, d.action,
                        r.verdict, r.who, r.reviewed_at
                 FROM reviews r JOIN comments c ON c.id = r.comment_id
                 LEFT JOIN decisions d ON d.comment_id = r.comment_id
                 ORDER BY r.reviewed_at DESC, r.comment_id DESC
                 LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Decided comments whose username or text holds `needle` (any case), newest first,
    /// reviewed or not.
    pub async fn search_reviews(
        &self,
        needle: &str,
        limit: i64,
    ) -> Result<Vec<ReviewedItem>, StoreError> {
        let pattern = like_pattern(needle);
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT c.id AS comment_id, c.account, c.username, c.text, d.rule, d.action,
                        r.verdict, r.who, r.reviewed_at
                 FROM decisions d JOIN comments c ON c.id = d.comment_id
                 LEFT JOIN reviews r ON r.comment_id = c.id
                 WHERE LOWER(COALESCE(c.username, '')) LIKE $1 ESCAPE '\\'
                    OR LOWER(COALESCE(c.text, '')) LIKE $1 ESCAPE '\\'
                 ORDER BY d.decided_at DESC, c.id DESC
                 LIMIT $2",
            )
            .bind(&pattern)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// How many comments carry a label (each counted once, whatever its latest label).
    pub async fn labeled_comments(&self) -> Result<i64, StoreError> {
        with_pool!(self, |pool| {
            let n: (i64,) = sqlx::query_as("SELECT COUNT(DISTINCT comment_id) FROM labels")
                .fetch_one(pool)
                .await?;
            Ok(n.0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns_take_wildcards_literally() {
        for (needle, pattern) in [
            ("Ana", "%ana%"),
            ("100%", "%100\\%%"),
            ("a_b", "%a\\_b%"),
            ("c:\\x", "%c:\\\\x%"),
        ] {
            assert_eq!(like_pattern(needle), pattern, "{needle}");
        }
    }
}
