//! Alert dedupe state, and the counts the alert conditions read.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::timefmt;

/// One cause's alert state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertState {
    pub firing: bool,
    pub notified: bool,
    pub last_sent_at: Option<DateTime<Utc>>,
}

impl Store {
    pub async fn alert_states(&self) -> Result<HashMap<String, AlertState>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<(String, bool, bool, Option<String>)> = sqlx::query_as(
                "SELECT cause, firing <> 0, notified <> 0, last_sent_at FROM alert_state",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(cause, firing, notified, at)| {
                    (
                        cause,
                        AlertState {
                            firing,
                            notified,
                            last_sent_at: at.as_deref().and_then(timefmt::parse),
                        },
                    )
                })
                .collect())
        })
    }

    pub async fn set_alert_state(&self, cause: &str, s: &AlertState) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO alert_state (cause, firing, notified, last_sent_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (cause) DO UPDATE SET firing = excluded.firing,
                 notified = excluded.notified, last_sent_at = excluded.last_sent_at",
        )
        .bind(cause)
        .bind(i64::from(s.firing))
        .bind(i64::from(s.notified))
        .bind(s.last_sent_at.map(timefmt::format))
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    /// Per account, actions that failed since `since`.
    pub async fn failed_actions_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, i64>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT account, COUNT(*) FROM actions WHERE status = 'failed' AND updated_at > $1
             GROUP BY account",
            )
            .bind(timefmt::format(since))
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().collect())
        })
    }

    /// Per account, hides and deletes decided since `since`.
    pub async fn removals_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, i64>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT account, COUNT(*) FROM decisions
             WHERE decided_at > $1 AND action IN ('hide', 'delete') GROUP BY account",
            )
            .bind(timefmt::format(since))
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().collect())
        })
    }
}
