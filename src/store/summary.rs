//! Aggregates for `igmod report`: each one GROUP BY in SQLite, so a report over a million
//! decisions reads thousands of rows, not a million.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Backend, Store, StoreError};
use crate::timefmt;

/// One rule's decisions, and what operators' labels said of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleStat {
    pub rule: String,
    pub action: String,
    pub decided: i64,
    /// Decided comments an operator labelled `ok` (an undo, or `igmod label … ok`).
    pub corrected: i64,
    /// Decided comments an operator confirmed as `scam`.
    pub confirmed: i64,
}

/// One language's comments in a period (`lang` `None`: unknown, or stored before igmod
/// detected languages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LanguageStat {
    pub lang: Option<String>,
    /// Comments the rules ran on.
    pub seen: i64,
    /// Decided `hide` / `delete` (dry runs left out).
    pub hidden: i64,
    pub deleted: i64,
}

impl Store {
    /// Comments seen, hidden and deleted per detected language, most seen first. Two
    /// GROUP BYs, one per table: `decisions` carries its own `lang`, so nothing is joined.
    pub async fn language_stats(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<LanguageStat>, StoreError> {
        with_pool!(self, |pool| {
            let since = timefmt::format(since);
            let seen: Vec<(Option<String>, i64)> = sqlx::query_as(
                "SELECT lang, COUNT(*) FROM comments
             WHERE first_seen_at > $1 AND disposition = 'evaluated' GROUP BY 1",
            )
            .bind(&since)
            .fetch_all(pool)
            .await?;
            let acted: Vec<(Option<String>, String, i64)> = sqlx::query_as(
                "SELECT lang, action, COUNT(*) FROM decisions
             WHERE decided_at > $1 AND action IN ('hide', 'delete') AND dry_run = 0
             GROUP BY 1, 2",
            )
            .bind(&since)
            .fetch_all(pool)
            .await?;
            let mut by: BTreeMap<Option<String>, LanguageStat> = BTreeMap::new();
            for (lang, n) in seen {
                by.entry(lang.clone())
                    .or_insert_with(|| LanguageStat {
                        lang,
                        ..LanguageStat::default()
                    })
                    .seen = n;
            }
            for (lang, action, n) in acted {
                let stat = by.entry(lang.clone()).or_insert_with(|| LanguageStat {
                    lang,
                    ..LanguageStat::default()
                });
                if action == "hide" {
                    stat.hidden = stat.hidden.saturating_add(n);
                } else {
                    stat.deleted = stat.deleted.saturating_add(n);
                }
            }
            let mut out: Vec<LanguageStat> = by.into_values().collect();
            out.sort_by(|a, b| b.seen.cmp(&a.seen).then_with(|| a.lang.cmp(&b.lang)));
            Ok(out)
        })
    }

    /// Hides and deletes applied per day and account.
    pub async fn actions_per_day(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT substr(updated_at, 1, 10), account, COUNT(*) FROM actions
             WHERE status = 'done' AND updated_at > $1 GROUP BY 1, 2 ORDER BY 1, 2",
            )
            .bind(timefmt::format(since))
            .fetch_all(pool)
            .await?)
        })
    }

    /// Rules by decisions, with operators' corrections. Two queries: the decisions counted
    /// by rule, and the (few) labelled decisions looked up through their labels; one query
    /// joining every decision to the labels took minutes over a million decisions.
    pub async fn rule_stats(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<RuleStat>, StoreError> {
        with_pool!(self, |pool| {
            let since = timefmt::format(since);
            let decided: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT rule, action, COUNT(*) FROM decisions WHERE decided_at > $1
             GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT $2",
            )
            .bind(&since)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let judged: Vec<(String, String, i64, i64)> = sqlx::query_as(
                "SELECT d.rule, d.action, SUM(CASE WHEN l.label = 'ok' THEN 1 ELSE 0 END),
                    SUM(CASE WHEN l.label = 'scam' THEN 1 ELSE 0 END)
             FROM labels l JOIN decisions d ON d.comment_id = l.comment_id
             WHERE l.id IN (SELECT MAX(id) FROM labels GROUP BY comment_id) AND d.decided_at > $1
             GROUP BY 1, 2",
            )
            .bind(&since)
            .fetch_all(pool)
            .await?;
            Ok(decided
                .into_iter()
                .map(|(rule, action, decided)| {
                    let (corrected, confirmed) = judged
                        .iter()
                        .find(|(r, a, _, _)| *r == rule && *a == action)
                        .map_or((0, 0), |(_, _, ok, scam)| (*ok, *scam));
                    RuleStat {
                        rule,
                        action,
                        decided,
                        corrected,
                        confirmed,
                    }
                })
                .collect())
        })
    }

    /// Usernames with the most comments hidden or deleted.
    pub async fn top_offenders(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
            "SELECT c.username, COUNT(*) FROM decisions d JOIN comments c ON c.id = d.comment_id
             WHERE d.decided_at > $1 AND d.action IN ('hide', 'delete') AND c.username IS NOT NULL
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $2",
        )
        .bind(timefmt::format(since))
        .bind(limit)
        .fetch_all(pool)
        .await?)
        })
    }

    /// Classifier scores of the decisions a classifier rule made, in buckets of 0.05 (the
    /// bucket's lower bound × 100 → count), read from the decisions' reasons.
    pub async fn classifier_scores(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<i64, i64>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<(i64, i64)> = sqlx::query_as(if pool.is_postgres() {
            "SELECT CAST(FLOOR(CAST(substring(reason FROM 'classifier ([0-9.]+)') AS DOUBLE PRECISION) * 20) AS BIGINT) * 5,
                    COUNT(*)
             FROM decisions WHERE decided_at > $1 AND strpos(reason, 'classifier ') > 0
             GROUP BY 1"
        } else {
            "SELECT CAST(CAST(substr(reason, instr(reason, 'classifier ') + 11, 5) AS REAL) * 20 AS INTEGER) * 5,
                    COUNT(*)
             FROM decisions WHERE decided_at > $1 AND instr(reason, 'classifier ') > 0
             GROUP BY 1"
        })
        .bind(timefmt::format(since))
        .fetch_all(pool)
        .await?;
            Ok(rows.into_iter().collect())
        })
    }

    /// Per day, how many hides/deletes took how many whole seconds from the comment's time
    /// to the action applied (a histogram per day, for percentiles), from the seconds kept on
    /// each action when it was done.
    pub async fn latency_histograms(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Vec<(i64, i64)>>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                "SELECT substr(updated_at, 1, 10), detect_secs, COUNT(*) FROM actions
             WHERE status = 'done' AND updated_at > $1 AND detect_secs IS NOT NULL
             GROUP BY 1, 2 ORDER BY 1, 2",
            )
            .bind(timefmt::format(since))
            .fetch_all(pool)
            .await?;
            let mut out: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
            for (day, secs, n) in rows {
                out.entry(day).or_default().push((secs, n));
            }
            Ok(out)
        })
    }

    /// Graph API calls per hour (`YYYY-MM-DDTHH`).
    pub async fn calls_per_hour(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
            "SELECT substr(at, 1, 13), COUNT(*) FROM api_calls WHERE at > $1 GROUP BY 1 ORDER BY 1",
        )
        .bind(timefmt::format(since))
        .fetch_all(pool)
        .await?)
        })
    }
}
