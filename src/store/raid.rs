//! The raid guard's closures (`raid_closures`) and the removal counts it reads.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::timefmt;

/// One post closure, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaidClosure {
    pub id: i64,
    pub account: String,
    pub media_id: String,
    /// Comments removed within the window when the closure was decided.
    pub removed: i64,
    /// `closing`, `closed`, `reopening`, `reopened` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub decided_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub reopen_at: Option<DateTime<Utc>>,
    pub reopened_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

type Row = (
    i64,
    String,
    String,
    i64,
    String,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

/// The columns a [`Row`] reads, in its order.
macro_rules! select_closures {
    ($rest:literal) => {
        concat!(
            "SELECT id, account, media_id, removed, status, attempts, decided_at, closed_at, ",
            "reopen_at, reopened_at, last_error FROM raid_closures ",
            $rest
        )
    };
}

fn closure(r: Row) -> RaidClosure {
    let t = |s: Option<&str>| s.and_then(timefmt::parse);
    RaidClosure {
        id: r.0,
        account: r.1,
        media_id: r.2,
        removed: r.3,
        status: r.4,
        attempts: r.5,
        decided_at: t(Some(&r.6)),
        closed_at: t(r.7.as_deref()),
        reopen_at: t(Some(&r.8)),
        reopened_at: t(r.9.as_deref()),
        last_error: r.10,
    }
}

impl Store {
    /// Per post of `account`, comments igmod hid or deleted since `since` (actions closed as
    /// done, comments found already gone excluded); with `dry_run`, the hides and deletes it
    /// decided in dry run instead. Only posts with more than `over`.
    pub async fn raid_removals(
        &self,
        account: &str,
        since: DateTime<Utc>,
        dry_run: bool,
        over: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = if dry_run {
            "SELECT c.media_id, COUNT(*) FROM decisions d JOIN comments c ON c.id = d.comment_id
             WHERE d.account = $1 AND d.dry_run <> 0 AND d.action IN ('hide', 'delete')
               AND d.decided_at >= $2
             GROUP BY c.media_id HAVING COUNT(*) > $3 ORDER BY c.media_id"
        } else {
            "SELECT c.media_id, COUNT(*) FROM actions a JOIN comments c ON c.id = a.comment_id
             WHERE a.account = $1 AND a.status = 'done' AND a.action IN ('hide', 'delete')
               AND a.updated_at >= $2 AND COALESCE(a.last_error, '') <> 'comment already gone'
             GROUP BY c.media_id HAVING COUNT(*) > $3 ORDER BY c.media_id"
        };
        with_pool!(self, |pool| {
            let rows: Vec<(String, i64)> = sqlx::query_as(sql)
                .bind(account)
                .bind(timefmt::format(since))
                .bind(over)
                .fetch_all(pool)
                .await?;
            Ok(rows)
        })
    }

    /// The latest closure of a post.
    pub async fn raid_last_closure(
        &self,
        account: &str,
        media_id: &str,
    ) -> Result<Option<RaidClosure>, StoreError> {
        let sql = select_closures!("WHERE account = $1 AND media_id = $2 ORDER BY id DESC LIMIT 1");
        with_pool!(self, |pool| {
            let row: Option<Row> = sqlx::query_as(sql)
                .bind(account)
                .bind(media_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(closure))
        })
    }

    /// Records a decided closure (`closing`) before its switch is sent; returns its id.
    pub async fn raid_decide(
        &self,
        account: &str,
        media_id: &str,
        removed: i64,
        reopen_at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        with_pool!(self, |pool| {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO raid_closures (account, media_id, removed, status, decided_at, reopen_at)
                 VALUES ($1, $2, $3, 'closing', $4, $5) RETURNING id",
            )
            .bind(account)
            .bind(media_id)
            .bind(removed)
            .bind(timefmt::now())
            .bind(timefmt::format(reopen_at))
            .fetch_one(pool)
            .await?;
            Ok(id)
        })
    }

    /// The account's closures with work to do at `now`: switches not yet confirmed, and
    /// closed posts whose reopening is due. Oldest first.
    pub async fn raid_due(
        &self,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<RaidClosure>, StoreError> {
        let sql = select_closures!(
            "WHERE account = $1
               AND (status IN ('closing', 'reopening') OR (status = 'closed' AND reopen_at <= $2))
             ORDER BY id"
        );
        with_pool!(self, |pool| {
            let rows: Vec<Row> = sqlx::query_as(sql)
                .bind(account)
                .bind(timefmt::format(now))
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(closure).collect())
        })
    }

    /// Posts whose comments igmod holds off (closing, closed or reopening), every account
    /// (`None`) or one. Newest first.
    pub async fn raid_open_closures(
        &self,
        account: Option<&str>,
    ) -> Result<Vec<RaidClosure>, StoreError> {
        let sql = select_closures!(
            "WHERE status IN ('closing', 'closed', 'reopening') AND ($1 IS NULL OR account = $1)
             ORDER BY id DESC"
        );
        with_pool!(self, |pool| {
            let rows: Vec<Row> = sqlx::query_as(sql).bind(account).fetch_all(pool).await?;
            Ok(rows.into_iter().map(closure).collect())
        })
    }

    /// Every closure decided since `since` (the HTML report), oldest first.
    pub async fn raid_closures_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<RaidClosure>, StoreError> {
        let sql = select_closures!("WHERE decided_at >= $1 ORDER BY id");
        with_pool!(self, |pool| {
            let rows: Vec<Row> = sqlx::query_as(sql)
                .bind(timefmt::format(since))
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(closure).collect())
        })
    }

    /// Counts an attempt before a switch is sent: after a crash, `attempts` > 0 means its
    /// outcome is unknown.
    pub async fn raid_attempt(&self, id: i64) -> Result<(), StoreError> {
        self.raid_update(
            id,
            "UPDATE raid_closures SET attempts = attempts + 1 WHERE id = $1",
            None,
        )
        .await
    }

    /// The post's comments are off.
    pub async fn raid_closed(&self, id: i64) -> Result<(), StoreError> {
        self.raid_update(
            id,
            "UPDATE raid_closures SET status = 'closed', attempts = 0, closed_at = $2 WHERE id = $1",
            Some(&timefmt::now()),
        )
        .await
    }

    /// The post's reopening is due and about to be sent.
    pub async fn raid_reopening(&self, id: i64) -> Result<(), StoreError> {
        self.raid_update(
            id,
            "UPDATE raid_closures SET status = 'reopening', attempts = 0 WHERE id = $1",
            None,
        )
        .await
    }

    /// The post's comments are on again.
    pub async fn raid_reopened(&self, id: i64) -> Result<(), StoreError> {
        self.raid_update(
            id,
            "UPDATE raid_closures SET status = 'reopened', reopened_at = $2 WHERE id = $1",
            Some(&timefmt::now()),
        )
        .await
    }

    /// Meta refused the switch for good (the post is gone, a permission is missing).
    pub async fn raid_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.raid_update(
            id,
            "UPDATE raid_closures SET status = 'failed', last_error = $2 WHERE id = $1",
            Some(error),
        )
        .await
    }

    /// A switch that will be tried again.
    pub async fn raid_retry(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.raid_update(
            id,
            "UPDATE raid_closures SET last_error = $2 WHERE id = $1",
            Some(error),
        )
        .await
    }

    async fn raid_update(
        &self,
        id: i64,
        sql: &'static str,
        arg: Option<&str>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let q = sqlx::query(sql).bind(id);
            let q = match arg {
                Some(a) => q.bind(a),
                None => q,
            };
            q.execute(pool).await?;
            Ok(())
        })
    }
}
