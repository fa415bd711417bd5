//! Which accounts this instance may work on. Several instances can share one PostgreSQL
//! database; each polls an account only while it holds that account's lease (a row in
//! `account_leases`, claimed by one conditional upsert, renewed every `lease_renew`, lasting
//! `lease_ttl`). On SQLite the one instance takes every lease and the rest costs nothing.
//!
//! Balance: an instance keeps at most ⌈accounts / live instances⌉ and gives the rest back at
//! its next renewal; free leases (released, expired, never taken) are looked for every
//! second while it holds fewer, so a planned restart hands over within about a second and a
//! dead instance's accounts move within `lease_ttl` plus a second.
//!
//! The in-memory view is conservative: a lease counts as held until its renewal time plus
//! `lease_ttl` minus [`CLOCK_MARGIN`], so an instance whose renewals stop (database gone,
//! process frozen) stops calling the Graph API before another can take the account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::{InstanceRow, Store, StoreError};

/// How much sooner than the database's expiry this instance stops trusting a lease: room for
/// clock differences between hosts and a slow statement.
pub const CLOCK_MARGIN: Duration = Duration::from_secs(3);

/// How often free leases are looked for while this instance holds less than its share.
const CLAIM_TICK: Duration = Duration::from_secs(1);

/// This instance's leases.
#[derive(Debug)]
pub struct Leases {
    store: Store,
    me: InstanceRow,
    ttl: Duration,
    renew: Duration,
    /// The configured accounts (names), replaced on reload.
    accounts: Mutex<Vec<String>>,
    /// Held accounts → until when this instance trusts its lease.
    held: Mutex<HashMap<String, Instant>>,
    /// Woken when a lease is gained.
    gained: Notify,
    /// Whether the database could not be reached at the last try (said once per outage).
    unreachable: Mutex<bool>,
}

impl Leases {
    pub fn new(store: Store, ttl: Duration, renew: Duration) -> Leases {
        let host = hostname();
        let pid = std::process::id();
        let nonce: u32 = rand::random();
        Leases {
            store,
            me: InstanceRow {
                id: format!("{host}:{pid}:{nonce:08x}"),
                host,
                pid: i64::from(pid),
                started_at: crate::timefmt::now(),
                seen_at: String::new(),
            },
            ttl,
            renew,
            accounts: Mutex::new(Vec::new()),
            held: Mutex::new(HashMap::new()),
            gained: Notify::new(),
            unreachable: Mutex::new(false),
        }
    }

    /// This instance's id (`host:pid:nonce`), as `igmod status` shows it.
    pub fn id(&self) -> &str {
        &self.me.id
    }

    /// Sets the accounts to hold leases for (at start and on reload).
    pub fn set_accounts(&self, mut names: Vec<String>) {
        names.sort();
        names.dedup();
        if let Ok(mut accounts) = self.accounts.lock() {
            *accounts = names;
        }
    }

    /// Whether this instance may work on the account now.
    pub fn holds(&self, account: &str) -> bool {
        self.held
            .lock()
            .ok()
            .and_then(|held| held.get(account).copied())
            .is_some_and(|until| Instant::now() < until)
    }

    /// How many accounts this instance holds now.
    pub fn held_count(&self) -> usize {
        let now = Instant::now();
        self.held
            .lock()
            .map(|held| held.values().filter(|until| now < **until).count())
            .unwrap_or(0)
    }

    /// Waits until this instance holds the account's lease; `false` on shutdown.
    pub async fn wait_held(&self, account: &str, shutdown: &CancellationToken) -> bool {
        loop {
            let gained = self.gained.notified();
            if self.holds(account) {
                return true;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = gained => {}
                // A lease can also lapse and come back without a gain being announced.
                _ = tokio::time::sleep(CLAIM_TICK) => {}
            }
        }
    }

    /// Renews, balances and claims until shutdown, then releases every lease at once so
    /// another instance takes over within about a second.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut last_cycle: Option<Instant> = None;
        loop {
            let full = last_cycle.is_none_or(|at| at.elapsed() >= self.renew);
            let result = if full {
                last_cycle = Some(Instant::now());
                self.cycle().await
            } else {
                self.claim_free().await
            };
            self.note_reachable(result);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(CLAIM_TICK) => {}
            }
        }
        self.release_all().await;
    }

    /// Gives every lease back and leaves the live instances (planned shutdown).
    pub async fn release_all(&self) {
        if let Ok(mut held) = self.held.lock() {
            held.clear();
        }
        match self.store.instance_gone(&self.me.id).await {
            Ok(()) => tracing::info!(message = "leases released", instance = %self.me.id),
            Err(e) => tracing::warn!(
                message = "cannot release leases; they expire on their own",
                error = %e,
                ttl_secs = self.ttl.as_secs()
            ),
        }
    }

    /// Logs once when the database stops answering and once when it is back.
    fn note_reachable(&self, result: Result<(), StoreError>) {
        let Ok(mut down) = self.unreachable.lock() else {
            return;
        };
        match result {
            Ok(()) if *down => {
                *down = false;
                tracing::info!(message = "lease database reachable again; leases renewed");
            }
            Ok(()) => {}
            Err(e) if !*down => {
                *down = true;
                tracing::error!(
                    message = "cannot renew leases: this instance stops working on its accounts until the database answers",
                    error = %e
                );
            }
            Err(_) => {}
        }
    }

    /// The trusted end of a lease renewed or claimed just before `at`.
    fn trusted_until(&self, at: Instant) -> Instant {
        at + self.ttl.saturating_sub(CLOCK_MARGIN)
    }

    fn expiry(&self) -> chrono::DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::seconds(30))
    }

    fn live_since(&self) -> chrono::DateTime<Utc> {
        Utc::now() - chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::seconds(30))
    }

    fn configured(&self) -> Vec<String> {
        self.accounts.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// ⌈accounts / live instances⌉.
    fn share(accounts: usize, live: usize) -> usize {
        accounts.div_ceil(live.max(1))
    }

    /// Heartbeat, renewal, balance and claims.
    async fn cycle(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let live = self.store.heartbeat(&self.me, self.live_since()).await?;
        let renewed = self
            .store
            .renew_leases(&self.me.id, Utc::now(), self.expiry())
            .await?;
        let accounts = self.configured();
        let until = self.trusted_until(started);
        let mut kept: Vec<String> = renewed
            .into_iter()
            .filter(|a| accounts.binary_search(a).is_ok())
            .collect();
        kept.sort();
        let share = Self::share(accounts.len(), live);
        // Over the share: give the surplus back for the other instances to take.
        while kept.len() > share {
            let Some(account) = kept.pop() else { break };
            self.store.release_lease(&account, &self.me.id).await?;
            tracing::info!(message = "lease given up to balance", account = %account, share, live);
        }
        if let Ok(mut held) = self.held.lock() {
            held.clear();
            held.extend(kept.iter().map(|a| (a.clone(), until)));
        }
        // Under the share: take free ones, never-taken ones included.
        let free: Vec<String> = accounts
            .iter()
            .filter(|a| kept.binary_search(a).is_err())
            .cloned()
            .collect();
        self.claim(free, share).await
    }

    /// Between renewals: take released or expired leases while under the share.
    async fn claim_free(&self) -> Result<(), StoreError> {
        let accounts = self.configured();
        if self.held_count() >= accounts.len() {
            return Ok(());
        }
        let free = self.store.free_leases(Utc::now()).await?;
        if free.is_empty() {
            return Ok(());
        }
        let live = self
            .store
            .live_instances(self.live_since())
            .await?
            .len()
            .max(1);
        let share = Self::share(accounts.len(), live);
        let free = free
            .into_iter()
            .filter(|a| accounts.binary_search(a).is_ok() && !self.holds(a))
            .collect();
        self.claim(free, share).await
    }

    async fn claim(&self, candidates: Vec<String>, share: usize) -> Result<(), StoreError> {
        for account in candidates {
            if self.held_count() >= share {
                break;
            }
            let at = Instant::now();
            if self
                .store
                .claim_lease(&account, &self.me.id, Utc::now(), self.expiry())
                .await?
            {
                tracing::info!(message = "lease taken", account = %account);
                if let Ok(mut held) = self.held.lock() {
                    held.insert(account, self.trusted_until(at));
                }
                self.gained.notify_waiters();
            }
        }
        Ok(())
    }
}

/// This host's name, for telling instances apart in `igmod status`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
