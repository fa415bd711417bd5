//! Per-account leases and the instances that hold them, for several igmod instances on one
//! PostgreSQL database (on SQLite the one instance holds every lease). Times are the same
//! RFC 3339 text as elsewhere; a released lease keeps its row with an empty expiry, which
//! sorts before every time.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::timefmt;

/// A lease as `igmod status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseRow {
    pub account: String,
    pub holder: String,
    /// Empty when released.
    pub expires_at: String,
}

/// A live instance as `igmod status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InstanceRow {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub started_at: String,
    pub seen_at: String,
}

impl Store {
    /// Says this instance is alive (`seen_at` now).
    pub async fn heartbeat(&self, instance: &InstanceRow) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO instances (id, host, pid, started_at, seen_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            )
            .bind(&instance.id)
            .bind(&instance.host)
            .bind(instance.pid)
            .bind(&instance.started_at)
            .bind(timefmt::now())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The instances seen since `live_since`, oldest first.
    pub async fn live_instances(
        &self,
        live_since: DateTime<Utc>,
    ) -> Result<Vec<InstanceRow>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT id, host, pid, started_at, seen_at FROM instances
                 WHERE seen_at > $1 ORDER BY started_at, id",
            )
            .bind(timefmt::format(live_since))
            .fetch_all(pool)
            .await?)
        })
    }

    /// Forgets an instance that is shutting down (the others' share grows at once) and
    /// releases its leases.
    pub async fn instance_gone(&self, instance: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE account_leases SET expires_at = '' WHERE holder = $1")
                .bind(instance)
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM instances WHERE id = $1")
                .bind(instance)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Extends this holder's unexpired leases to `until`; returns the accounts still held.
    /// An expired lease is not renewed: another instance may have taken it.
    pub async fn renew_leases(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_scalar(
                "UPDATE account_leases SET expires_at = $3 WHERE holder = $1 AND expires_at > $2
                 RETURNING account",
            )
            .bind(holder)
            .bind(timefmt::format(now))
            .bind(timefmt::format(until))
            .fetch_all(pool)
            .await?)
        })
    }

    /// Takes an account's lease if it is free (never taken, released or expired): one
    /// conditional upsert, so of two instances claiming at once exactly one wins.
    pub async fn claim_lease(
        &self,
        account: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let done = sqlx::query(
                "INSERT INTO account_leases (account, holder, expires_at) VALUES ($1, $2, $4)
                 ON CONFLICT (account) DO UPDATE SET holder = excluded.holder,
                     expires_at = excluded.expires_at
                 WHERE account_leases.expires_at <= $3 OR account_leases.holder = excluded.holder",
            )
            .bind(account)
            .bind(holder)
            .bind(timefmt::format(now))
            .bind(timefmt::format(until))
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Gives an account's lease up (to balance the load), if this holder has it.
    pub async fn release_lease(&self, account: &str, holder: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE account_leases SET expires_at = '' WHERE account = $1 AND holder = $2",
            )
            .bind(account)
            .bind(holder)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Accounts whose lease is free now (released or expired).
    pub async fn free_leases(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        with_pool!(self, |pool| {
            Ok(
                sqlx::query_scalar("SELECT account FROM account_leases WHERE expires_at <= $1")
                    .bind(timefmt::format(now))
                    .fetch_all(pool)
                    .await?,
            )
        })
    }

    /// Every lease, by account.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT account, holder, expires_at FROM account_leases ORDER BY account",
            )
            .fetch_all(pool)
            .await?)
        })
    }
}
