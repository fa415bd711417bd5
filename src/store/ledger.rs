//! The call ledger behind the hourly budget. It is the truth across restarts: in-memory
//! limiters are rebuilt from it.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::timefmt;

impl Store {
    /// Records one HTTP request sent to the Graph API. `endpoint` is a path without query.
    pub async fn record_call(
        &self,
        account: &str,
        at: DateTime<Utc>,
        method: &str,
        endpoint: &str,
        status: Option<u16>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO api_calls (account, at, method, endpoint, status) VALUES (?1, ?2, ?3, ?4, ?5)")
            .bind(account)
            .bind(timefmt::format(at))
            .bind(method)
            .bind(endpoint)
            .bind(status.map(i64::from))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The times of the account's calls after `since`, oldest first.
    pub async fn calls_since(
        &self,
        account: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT at FROM api_calls WHERE account = ?1 AND at > ?2 ORDER BY at")
                .bind(account)
                .bind(timefmt::format(since))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().filter_map(|r| timefmt::parse(&r.0)).collect())
    }

    /// Deletes ledger rows older than `before`.
    pub async fn prune_calls(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM api_calls WHERE at < ?1")
            .bind(timefmt::format(before))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
