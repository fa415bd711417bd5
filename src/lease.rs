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

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Accounts in the middle of a poll: at shutdown their leases go when the poll ends.
    busy: Mutex<HashSet<String>>,
    /// Shutting down: no new claims, and each lease goes as soon as its account is idle.
    draining: AtomicBool,
    /// Woken when an account stops being busy.
    idle: Notify,
}

/// Marks an account busy (mid-poll) until dropped.
pub struct Busy<'a> {
    leases: &'a Leases,
    account: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.leases.busy.lock() {
            busy.remove(&self.account);
        }
        self.leases.idle.notify_waiters();
    }
}

impl Leases {
    pub fn new(store: Store, ttl: Duration, renew: Duration) -> Leases {
        let host = hostname();
        let pid = std::process::id();
        let nonce: u32 = rand::random();
        let place = place().unwrap_or_else(|| UNKNOWN_PLACE.to_string());
        Leases {
            store,
            me: InstanceRow {
                id: format!("{host}:{pid}:{place}-{nonce:08x}"),
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
            busy: Mutex::new(HashSet::new()),
            draining: AtomicBool::new(false),
            idle: Notify::new(),
        }
    }

    /// This instance's id (`host:pid:place-nonce`), as `igmod status` shows it.
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

    /// Marks the account busy for as long as the guard lives (a poll): at shutdown its lease
    /// is kept, and renewed, until the poll ends, so the poll can finish its actions.
    pub fn busy(&self, account: &str) -> Busy<'_> {
        if let Ok(mut busy) = self.busy.lock() {
            busy.insert(account.to_string());
        }
        Busy {
            leases: self,
            account: account.to_string(),
        }
    }

    fn is_busy(&self, account: &str) -> bool {
        self.busy.lock().is_ok_and(|b| b.contains(account))
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

    /// Renews, balances and claims until `shutdown`. Then it drains: every idle account's
    /// lease goes at once (another instance takes over within about a second) and a busy
    /// one's as soon as its poll ends, until `done`, when the rest go and the instance leaves.
    pub async fn run(&self, shutdown: CancellationToken, done: CancellationToken) {
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
        self.draining.store(true, Ordering::SeqCst);
        let mut last_renewal = Instant::now();
        loop {
            let idle = self.idle.notified();
            self.release_idle().await;
            if self.held_count() == 0 || done.is_cancelled() {
                break;
            }
            // Busy accounts keep their leases while their polls finish.
            if last_renewal.elapsed() >= self.renew {
                last_renewal = Instant::now();
                let renewed = self.renew_held().await;
                self.note_reachable(renewed);
            }
            tokio::select! {
                _ = done.cancelled() => break,
                _ = idle => {}
                _ = tokio::time::sleep(CLAIM_TICK) => {}
            }
        }
        self.release_all().await;
    }

    /// While draining: gives back the leases of accounts not mid-poll.
    async fn release_idle(&self) {
        let idle: Vec<String> = self
            .held
            .lock()
            .map(|held| held.keys().filter(|a| !self.is_busy(a)).cloned().collect())
            .unwrap_or_default();
        for account in idle {
            if let Ok(mut held) = self.held.lock() {
                held.remove(&account);
            }
            if let Err(e) = self.store.release_lease(&account, &self.me.id).await {
                tracing::warn!(message = "cannot release a lease; it expires on its own", account = %account, error = %e);
            }
        }
    }

    /// Renews the leases held now (while draining: no balancing, no claims).
    async fn renew_held(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let renewed = self
            .store
            .renew_leases(&self.me.id, Utc::now(), self.expiry())
            .await?;
        let until = self.trusted_until(started);
        if let Ok(mut held) = self.held.lock() {
            held.retain(|a, _| renewed.contains(a));
            for t in held.values_mut() {
                *t = until;
            }
        }
        Ok(())
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
        self.store.heartbeat(&self.me).await?;
        let live = self.live_after_reaping().await?;
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
        let claimed = self.claim(free, share).await;
        self.publish(&accounts);
        claimed
    }

    /// Tells the metrics which accounts are this instance's to report on.
    fn publish(&self, accounts: &[String]) {
        let now = Utc::now().timestamp();
        let metrics = crate::metrics::get();
        for account in accounts {
            metrics.lease_held(account, self.holds(account), now);
        }
    }

    /// An instance on this machine and in this pid namespace whose process is definitely
    /// gone (killed, crashed: it released nothing) has its leases freed now rather than after
    /// `lease_ttl`: a single igmod restarted after a crash takes its accounts back at once.
    /// Any doubt (another machine, an unknown place, a pid we may not signal) leaves the
    /// instance to its leases' expiry: freeing a live instance's leases has two instances act
    /// on one account.
    /// Returns how many instances are alive, this one included, once those are gone: one
    /// read serves both.
    async fn live_after_reaping(&self) -> Result<usize, StoreError> {
        let mut live = 0usize;
        for other in self.store.live_instances(self.live_since()).await? {
            if other.id != self.me.id && self.is_dead_neighbour(&other) {
                tracing::info!(
                    message = "an instance on this host died; its leases are free now",
                    instance = %other.id
                );
                self.store.instance_gone(&other.id).await?;
            } else {
                live = live.saturating_add(1);
            }
        }
        Ok(live.max(1))
    }

    /// Whether `other` (another instance's row) is certainly a dead process of this machine and
    /// pid namespace.
    fn is_dead_neighbour(&self, other: &InstanceRow) -> bool {
        let same_place = other.host == self.me.host
            && place_of(&self.me.id).is_some_and(|mine| place_of(&other.id) == Some(mine));
        if !same_place {
            return false;
        }
        // Two processes never share a pid at once: a row with ours is a predecessor (a
        // container's igmod is pid 1 at every start).
        if other.pid == self.me.pid {
            return true;
        }
        process_gone(other.pid)
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
        let claimed = self.claim(free, share).await;
        self.publish(&accounts);
        claimed
    }

    async fn claim(&self, candidates: Vec<String>, share: usize) -> Result<(), StoreError> {
        for account in candidates {
            if self.draining.load(Ordering::SeqCst) {
                break;
            }
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

/// The place part of an instance id when neither the machine nor the pid namespace could be
/// read: it matches no other id's, so such an instance never reaps anyone by pid.
const UNKNOWN_PLACE: &str = "unknown";

/// A short digest of this machine and pid namespace (and kernel boot, when readable): a pid
/// means the same process only within one place. Read from files the shipped unit leaves
/// readable (`ProcSubset=pid` hides `/proc/sys`, not `/proc/self`); `None` when the machine
/// id or the namespace cannot be read. The machine id is hashed, never shown: systemd asks
/// that it stay private.
fn place() -> Option<String> {
    use sha2::Digest;
    let machine = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|id| id.trim().to_string())
        .find(|id| !id.is_empty())?;
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.display().to_string())
        .filter(|ns| !ns.is_empty())?;
    // Tells apart cloned machines that kept one machine id; hidden under the unit, where the
    // id alone must do (a process of an earlier boot is dead anyway).
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let digest =
        sha2::Sha256::digest(format!("igmod-place|{machine}|{ns}|{}", boot.trim()).as_bytes());
    Some(digest.iter().take(4).map(|b| format!("{b:02x}")).collect())
}

/// The place part of an instance id (`host:pid:place-nonce`); `None` for an unknown place or
/// an id of another form.
fn place_of(id: &str) -> Option<&str> {
    id.rsplit(':')
        .next()
        .and_then(|tail| tail.split_once('-'))
        .map(|(place, _)| place)
        .filter(|place| *place != UNKNOWN_PLACE && !place.is_empty())
}

/// Whether the process with this pid (in this pid namespace) is certainly gone: `kill(pid, 0)`
/// answered "no such process". A process we may not signal (another user's, as two units'
/// dynamic users are) is alive, and so is one a hardened /proc hides; a pid that is no valid
/// pid is not looked up at all.
fn process_gone(pid: i64) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// This host's name (the kernel's, from uname(2), which is what gethostname(2) returns and
/// what the unit's `ProtectHostname=` leaves visible), for telling instances apart in `igmod
/// status`. `IGMOD_HOSTNAME` overrides it.
fn hostname() -> String {
    if let Ok(name) = std::env::var("IGMOD_HOSTNAME")
        && !name.trim().is_empty()
    {
        return name.trim().to_string();
    }
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().trim().to_string();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_instances_of_this_machine_and_pid_namespace_are_looked_up_by_pid() {
        let here = place().expect("this test machine has a machine id and /proc/self/ns/pid");
        assert_eq!(here.len(), 8);
        let id = format!("web-1:4242:{here}-0badf00d");
        assert_eq!(place_of(&id), Some(here.as_str()));
        // Another machine or container with the same hostname: its pid means nothing here.
        assert_ne!(
            place_of("web-1:4242:00000000-0badf00d"),
            Some(here.as_str())
        );
        // An instance that could not tell where it runs matches nobody, itself included.
        assert_eq!(place_of("web-1:4242:unknown-0badf00d"), None);
        assert_eq!(place_of("old-format:4242:0badf00d"), None);
    }

    #[test]
    fn only_a_pid_that_is_certainly_gone_counts_as_dead() {
        // This process is alive; pid 1 exists but belongs to another user when run unprivileged
        // (EPERM): alive either way.
        assert!(!process_gone(i64::from(std::process::id())));
        assert!(!process_gone(1));
        // Not pids at all: never "dead" (and never kill(0) / kill(-1)).
        for pid in [0, -1, i64::MAX, i64::from(i32::MAX) + 1] {
            assert!(!process_gone(pid), "{pid}");
        }
        // A child that has exited and been reaped: gone.
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = i64::from(child.id());
        child.wait().expect("wait");
        assert!(process_gone(pid));
    }
}
