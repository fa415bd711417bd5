//! The per-account call gate. Every Graph API request goes through [`Budget::call`], which
//! 1. refuses when the app or the account is paused (throttled by Meta), or when the rolling
//!    hour's calls reached the limit for the call's kind — counted from the SQLite ledger, so
//!    restarts do not reset it. Reads may use `hourly_budget` minus the `action_reserve`; writes
//!    (hide, delete, reply, and the reads that reconcile them) may use all of it, so actions
//!    never starve behind reads;
//! 2. records each HTTP request in the ledger, success or not;
//! 3. retries transient failures with exponential backoff and jitter, a bounded number of times;
//! 4. turns Meta's throttling signals into pauses stored in SQLite that are never shortened by a
//!    later, smaller hint: codes 4 (the whole app), 17/32/341/613/80001/80002 (this account) for
//!    `estimated_time_to_regain_access`, else an exponential back-off with jitter capped at one
//!    hour; usage headers at 95 % or more pause too, by scope: `X-App-Usage` pauses (and slows)
//!    every account of the app, `X-Business-Use-Case-Usage` only the account whose entry it is
//!    (the header may list other accounts' ids too).
//!
//! Pacing: [`Budget::effective_interval`] stretches an account's poll interval so that its
//! reads spread evenly over the hour (never a burst at the top of the hour), and further while
//! Meta's usage headers are above `slowdown_at`. Within a poll, a governor limiter spaces an
//! account's requests to at most [`CALLS_PER_SECOND`], so even a 500-comment burst never
//! fires a volley of simultaneous requests at Meta. The hourly cap itself is the SQLite ledger,
//! which a restart cannot reset (a token bucket in memory could).
//!
//! Whole on purpose: the ledger check, pacing, retries and pauses decide each call together.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;

use crate::graph::{CallInfo, ErrorKind, GraphError, Reply};
use crate::store::{Store, StoreError};
use crate::timefmt;

/// The fastest an account sends requests, whatever its budget.
pub const CALLS_PER_SECOND: NonZeroU32 = match NonZeroU32::new(10) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// Above this usage percentage an account is paused.
const PAUSE_AT_PCT: u32 = 95;
/// First step of the back-off when Meta throttles without saying for how long.
const THROTTLE_BASE: Duration = Duration::from_secs(60);
/// Longest back-off.
const THROTTLE_CAP: Duration = Duration::from_secs(3600);
/// How long the app's usage reported through another account still slows this one.
const APP_USAGE_FRESH: chrono::Duration = chrono::Duration::minutes(10);
/// First write pause after Meta restricts or policy-blocks an account without saying for how
/// long (4/2207051, 368); doubled with each block in a row.
const WRITE_BLOCK_BASE: Duration = Duration::from_secs(3600);
/// Longest write pause.
const WRITE_BLOCK_CAP: Duration = Duration::from_secs(24 * 3600);
/// Pause when usage headers say 95 % without a regain hint.
const USAGE_PAUSE: Duration = Duration::from_secs(5 * 60);

/// Whether a call reads or acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Polling: limited to the budget minus the action reserve.
    Read,
    /// Hide, delete, reply, the reads that reconcile them, token refresh: the whole budget.
    Write,
}

/// An account's budget settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Calls per rolling hour, all kinds.
    pub hourly: u32,
    /// Percentage of `hourly` kept for writes.
    pub action_reserve_pct: u32,
    /// Usage percentage above which polls slow down.
    pub slowdown_at: u32,
}

impl Policy {
    /// Calls per rolling hour that reads may use (at least one).
    pub fn read_limit(&self) -> u32 {
        let reserve = u64::from(self.hourly) * u64::from(self.action_reserve_pct.min(90)) / 100;
        (self.hourly - u32::try_from(reserve).unwrap_or(0)).max(1)
    }

    fn limit(&self, kind: CallKind) -> u32 {
        match kind {
            CallKind::Read => self.read_limit(),
            CallKind::Write => self.hourly,
        }
    }
}

/// Back-off after `strikes` throttling answers in a row without a hint: 1, 2, 4, … minutes,
/// capped at an hour, with full jitter over the upper half.
pub fn throttle_backoff(strikes: i64) -> Duration {
    let exp = u32::try_from(strikes.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    let d = THROTTLE_BASE.saturating_mul(1u32 << exp).min(THROTTLE_CAP);
    let secs = d.as_secs().max(1);
    Duration::from_secs(rand::rng().random_range(secs / 2..=secs))
}

/// Write pause after `strikes` write blocks in a row without a hint: 1, 2, 4, … hours, capped
/// at a day.
pub fn write_block_backoff(strikes: i64) -> Duration {
    let exp = u32::try_from(strikes.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    WRITE_BLOCK_BASE
        .saturating_mul(1u32 << exp)
        .min(WRITE_BLOCK_CAP)
}

/// Transient-failure retries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Full-jitter exponential backoff before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_delay);
        let millis = u64::try_from(exp.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{kind:?} budget of {budget} calls per hour is spent; next call allowed at {}", timefmt::format(*.until))]
    Exhausted {
        kind: CallKind,
        budget: u32,
        until: DateTime<Utc>,
    },
    #[error("account paused until {} ({reason})", timefmt::format(*.until))]
    Paused {
        until: DateTime<Utc>,
        reason: String,
    },
    #[error("this instance no longer holds the account's lease")]
    NotHolder,
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CallError {
    /// The Graph API error kind, if this is one.
    pub fn graph_kind(&self) -> Option<ErrorKind> {
        match self {
            CallError::Graph(e) => Some(e.kind),
            _ => None,
        }
    }
}

/// One account's call gate.
#[derive(Debug)]
pub struct Budget {
    store: Store,
    account: String,
    /// The account's Instagram user id: its key in `X-Business-Use-Case-Usage`.
    object_id: String,
    policy: Policy,
    retry: RetryPolicy,
    limiter: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<DateTime<Utc>>>,
    /// Meta refuses the account's writes until then, and why (reads go on).
    writes_paused: Mutex<Option<(DateTime<Utc>, String)>>,
    /// Write blocks in a row (mirrors the store, to reset it only when it is not 0).
    write_strikes: Mutex<i64>,
    /// Latest usage percentage of this account (its business-use-case entry).
    usage_pct: Mutex<Option<u32>>,
    /// Latest usage percentage of the whole app, from this account's answers or, fresher,
    /// another account's (read from SQLite at each call).
    app_pct: Mutex<Option<u32>>,
    /// Read calls sent since start (the scheduler diffs it per poll).
    reads: AtomicU64,
    /// Moving average of read calls per poll.
    reads_per_poll: Mutex<f64>,
    /// Calls let through per minute of the last hour, in memory (for the metrics only: the
    /// ledger is the budget's truth).
    hour: Mutex<HourCount>,
    /// The daemon's leases: no call goes out for an account this instance does not hold.
    lease: Option<std::sync::Arc<crate::lease::Leases>>,
}

/// Calls per minute over a rolling hour.
#[derive(Debug)]
struct HourCount {
    /// (minute since the epoch, calls in it) per minute slot.
    slots: [(i64, u32); 60],
}

impl Default for HourCount {
    fn default() -> Self {
        HourCount {
            slots: [(i64::MIN, 0); 60],
        }
    }
}

impl HourCount {
    fn add(&mut self, now: DateTime<Utc>) {
        let minute = now.timestamp().div_euclid(60);
        let slot = &mut self.slots[minute.rem_euclid(60) as usize];
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        slot.1 = slot.1.saturating_add(1);
    }

    fn total(&self, now: DateTime<Utc>) -> u32 {
        let minute = now.timestamp().div_euclid(60);
        self.slots
            .iter()
            .filter(|(m, _)| minute.saturating_sub(*m) < 60)
            .fold(0u32, |sum, (_, n)| sum.saturating_add(*n))
    }
}

impl Budget {
    /// This gate lets calls through only while `leases` holds the account (the daemon's).
    pub fn with_lease(mut self, leases: std::sync::Arc<crate::lease::Leases>) -> Budget {
        self.lease = Some(leases);
        self
    }

    /// Builds the gate, reading the pause and the last usage from SQLite.
    pub async fn new(
        store: Store,
        account: &str,
        object_id: &str,
        policy: Policy,
        retry: RetryPolicy,
    ) -> Result<Budget, StoreError> {
        let limiter = RateLimiter::direct(Quota::per_second(CALLS_PER_SECOND));
        let state = store.account_state(account).await?;
        let paused_until = state
            .paused_until
            .and_then(|p| timefmt::parse(&p))
            .filter(|p| *p > Utc::now());
        Ok(Budget {
            store,
            account: account.to_string(),
            object_id: object_id.to_string(),
            policy,
            retry,
            limiter,
            paused_until: Mutex::new(paused_until),
            writes_paused: Mutex::new(
                state
                    .writes_paused_until
                    .and_then(|p| timefmt::parse(&p))
                    .filter(|p| *p > Utc::now())
                    .map(|p| (p, state.writes_paused_reason.unwrap_or_default())),
            ),
            write_strikes: Mutex::new(state.write_block_strikes),
            usage_pct: Mutex::new(state.usage_pct.and_then(|p| u32::try_from(p).ok())),
            app_pct: Mutex::new(None),
            reads: AtomicU64::new(0),
            reads_per_poll: Mutex::new(1.0),
            hour: Mutex::new(HourCount::default()),
            lease: None,
        })
    }

    /// The share of the hourly budget this process's calls used in the last hour (metrics).
    pub fn used_ratio(&self) -> f64 {
        let used = self.hour.lock().map_or(0, |h| h.total(Utc::now()));
        f64::from(used) / f64::from(self.policy.hourly.max(1))
    }

    /// This account's latest usage percentage from Meta's headers (stored at each poll's end).
    pub fn usage_pct(&self) -> Option<u32> {
        self.usage_pct.lock().ok().and_then(|u| *u)
    }

    /// Read calls sent since start.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Feeds one poll's read calls into the moving average that paces polls.
    pub fn poll_cost(&self, reads: u64) {
        if let Ok(mut avg) = self.reads_per_poll.lock() {
            *avg = 0.7 * *avg + 0.3 * reads.max(1) as f64;
        }
    }

    /// The interval between polls: the configured one, or longer when the read budget spread
    /// evenly over the hour allows fewer polls, and longer still while Meta's usage headers
    /// (the account's or the app's) are above `slowdown_at` (up to four times at 95 %).
    pub fn effective_interval(&self, configured: Duration) -> Duration {
        let per_poll = self.reads_per_poll.lock().map_or(1.0, |a| a.max(1.0));
        let paced =
            Duration::from_secs_f64(3600.0 * per_poll / f64::from(self.policy.read_limit()));
        let mut interval = configured.max(paced);
        let mine = self.usage_pct.lock().ok().and_then(|u| *u);
        let app = self.app_pct.lock().ok().and_then(|u| *u);
        let usage = mine.max(app);
        if let Some(pct) = usage.filter(|p| *p > self.policy.slowdown_at) {
            let span = PAUSE_AT_PCT.saturating_sub(self.policy.slowdown_at).max(1);
            let over = pct.saturating_sub(self.policy.slowdown_at).min(span);
            interval = interval.mul_f64(1.0 + 3.0 * f64::from(over) / f64::from(span));
        }
        interval.min(THROTTLE_CAP * 24)
    }

    /// Calls of this kind left in the rolling hour, and when the next one frees up if none are.
    pub async fn remaining(
        &self,
        kind: CallKind,
    ) -> Result<(u32, Option<DateTime<Utc>>), StoreError> {
        let limit = self.policy.limit(kind);
        let now = Utc::now();
        let (used, _) = self
            .store
            .calls_count_since(&self.account, now - hour(), None)
            .await?;
        if used < limit {
            return Ok((limit - used, None));
        }
        // The call that must leave the window before one more fits.
        let (_, oldest) = self
            .store
            .calls_count_since(&self.account, now - hour(), Some(used - limit))
            .await?;
        Ok((0, Some(oldest.map_or(now + hour(), |t| t + hour()))))
    }

    /// When the account may call again, if it (or the whole app) is paused now. Also picks up
    /// the app's usage that other accounts' answers reported.
    pub async fn paused_until(&self) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
        let now = Utc::now();
        let mine = self
            .paused_until
            .lock()
            .ok()
            .and_then(|g| *g)
            .filter(|p| *p > now);
        let app = self.store.app_state().await?;
        if let Some((pct, _)) = app.usage.filter(|(_, at)| *at > now - APP_USAGE_FRESH)
            && let Ok(mut u) = self.app_pct.lock()
        {
            *u = Some(pct);
        }
        let app = app.paused.filter(|(p, _)| *p > now);
        Ok(match (mine, app) {
            (_, Some((until, reason))) if mine.is_none_or(|m| m < until) => Some((until, reason)),
            (Some(until), _) => {
                let reason = self.store.account_state(&self.account).await?.paused_reason;
                Some((until, reason.unwrap_or_else(|| "paused".into())))
            }
            _ => None,
        })
    }

    /// When Meta lets the account write again, and why it does not now (4/2207051, 368).
    /// The outbox asks before each write; reads are not concerned.
    pub fn writes_paused_until(&self) -> Option<(DateTime<Utc>, String)> {
        let guard = match self.writes_paused.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.clone().filter(|(until, _)| *until > Utc::now())
    }

    /// Meta refused one of this account's calls as a restricted or policy-blocked account:
    /// its writes wait for the regain hint of the account's usage entry if the answer has one,
    /// else for a back-off of 1, 2, 4, … hours up to a day. Stored (a restart honours it) and
    /// logged once per pause; never shortened.
    async fn pause_writes(&self, e: &GraphError) -> Result<(), StoreError> {
        let strikes = self.store.write_block_strike(&self.account, false).await?;
        if let Ok(mut s) = self.write_strikes.lock() {
            *s = strikes;
        }
        let hint = e.call.usage.object(&self.object_id).and_then(|o| o.regain);
        let pause = hint.unwrap_or_else(|| write_block_backoff(strikes));
        let until = timefmt::later(Utc::now(), pause);
        let reason = match e.kind {
            ErrorKind::Restricted => format!(
                "account restricted by meta: code 4/{}",
                e.subcode.unwrap_or_default()
            ),
            _ => format!("policy block by meta: code {}", e.code.unwrap_or_default()),
        };
        let changed = {
            let mut guard = match self.writes_paused.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if guard.as_ref().is_none_or(|(p, _)| *p < until) {
                *guard = Some((until, reason.clone()));
                true
            } else {
                false
            }
        };
        if changed {
            crate::metrics::get().write_pause();
            tracing::warn!(
                message = "meta refuses this account's writes: hides and deletes wait, polling goes on",
                reason = %reason,
                strike = strikes,
                until = %timefmt::format(until),
                fbtrace_id = e.fbtrace_id.as_deref().unwrap_or("-")
            );
            self.store
                .set_writes_paused(&self.account, until, &reason)
                .await?;
        }
        Ok(())
    }

    /// A write went through: a streak of write blocks is over.
    async fn write_succeeded(&self) -> Result<(), StoreError> {
        let had = self
            .write_strikes
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or(0);
        if had > 0 {
            self.store.write_block_strike(&self.account, true).await?;
        }
        Ok(())
    }

    /// Sends one logical request through the gate: budget check, ledger, retries, pauses.
    pub async fn call<T, F, Fut>(&self, kind: CallKind, send: F) -> Result<Reply<T>, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Reply<T>, GraphError>>,
    {
        self.gate(kind, true, send).await
    }

    /// Like [`Budget::call`], without retrying a transient failure: for writes that must not
    /// be repeated blindly. A write whose answer was lost may have taken effect; the caller
    /// reads the object back before writing again.
    pub async fn call_once<T, F, Fut>(&self, kind: CallKind, send: F) -> Result<Reply<T>, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Reply<T>, GraphError>>,
    {
        self.gate(kind, false, send).await
    }

    async fn gate<T, F, Fut>(
        &self,
        kind: CallKind,
        retry: bool,
        mut send: F,
    ) -> Result<Reply<T>, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Reply<T>, GraphError>>,
    {
        let mut attempt = 1;
        loop {
            let row = self.admit(kind).await?;
            if kind == CallKind::Read {
                self.reads.fetch_add(1, Ordering::Relaxed);
            }
            let result = send().await;
            crate::metrics::get().call(
                kind == CallKind::Write,
                match &result {
                    Ok(_) => "ok",
                    Err(e) => e.kind.label(),
                },
            );
            let call = match &result {
                Ok(r) => &r.call,
                Err(e) => &e.call,
            };
            self.store
                .finish_call(row, call.method, &call.endpoint, call.status)
                .await?;
            self.observe_usage(call).await?;
            match result {
                Ok(reply) => {
                    if kind == CallKind::Write && reply.call.method != "GET" {
                        self.write_succeeded().await?;
                    }
                    if !reply.call.odd.is_empty() {
                        tracing::warn!(
                            message = "answer had fields with unexpected values; used the rest",
                            endpoint = %reply.call.endpoint,
                            fields = %reply.call.odd.join(", "),
                            fbtrace_id = reply.call.trace.as_deref().unwrap_or("-")
                        );
                    }
                    return Ok(reply);
                }
                Err(e) => match e.kind {
                    ErrorKind::Transient if retry && attempt < self.retry.attempts => {
                        let delay = self.retry.delay(attempt);
                        tracing::warn!(
                            message = "transient graph api error, retrying",
                            error = %e,
                            attempt,
                            retry_in_ms = delay.as_millis() as u64
                        );
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                    }
                    ErrorKind::Throttled { regain, app_wide } => {
                        // This account's own entry says how long its limit lasts; another
                        // account's entry in the same header does not.
                        let regain = if app_wide {
                            regain
                        } else {
                            e.call
                                .usage
                                .object(&self.object_id)
                                .and_then(|o| o.regain)
                                .or(regain)
                        };
                        let strikes = self.store.add_throttle_strike(&self.account).await?;
                        let pause = regain.unwrap_or_else(|| throttle_backoff(strikes));
                        let code = e.code.unwrap_or(0);
                        if app_wide {
                            let until = Utc::now()
                                + chrono::Duration::from_std(pause).unwrap_or_else(|_| hour());
                            tracing::warn!(
                                message = "meta throttled the whole app (code 4): pausing every account",
                                until = %timefmt::format(until)
                            );
                            self.store
                                .set_app_paused(until, "app rate limited by meta (code 4)")
                                .await?;
                        }
                        self.pause(
                            pause,
                            &format!("rate limited by meta (code {code}, strike {strikes})"),
                        )
                        .await?;
                        return Err(e.into());
                    }
                    k if k.blocks_writes() => {
                        self.pause_writes(&e).await?;
                        return Err(e.into());
                    }
                    _ => return Err(e.into()),
                },
            }
        }
    }

    /// Lets one call through: not paused, spaced by the limiter, and ledgered before it is
    /// sent (a crash mid-call can only over-count the budget) in the same statement that
    /// checks the hour's count. Returns the ledger row.
    async fn admit(&self, kind: CallKind) -> Result<i64, CallError> {
        if let Some(lease) = &self.lease
            && !lease.holds(&self.account)
        {
            return Err(CallError::NotHolder);
        }
        if let Some((until, reason)) = self.paused_until().await? {
            return Err(CallError::Paused { until, reason });
        }
        // Politeness inside a poll: space the requests out.
        self.limiter.until_ready().await;
        let now = Utc::now();
        let limit = self.policy.limit(kind);
        match self
            .store
            .ledger_within(&self.account, now, now - hour(), limit)
            .await?
        {
            Some(row) => {
                if let Ok(mut h) = self.hour.lock() {
                    h.add(now);
                }
                Ok(row)
            }
            None => {
                let (_, frees) = self.remaining(kind).await?;
                Err(CallError::Exhausted {
                    kind,
                    budget: limit,
                    until: frees.unwrap_or_else(|| now + hour()),
                })
            }
        }
    }

    async fn observe_usage(&self, call: &CallInfo) -> Result<(), StoreError> {
        if let Some(pct) = call.usage.app_pct {
            self.observe_app_usage(pct).await?;
        }
        // Only this account's entry; absent means unknown, not 0 %.
        let Some(mine) = call.usage.object(&self.object_id) else {
            return Ok(());
        };
        let Some(pct) = mine.pct else {
            return Ok(());
        };
        crate::metrics::get().account_usage(pct);
        // Kept in memory; the poll's end stores it (one write per poll, not per call).
        let previous = self.usage_pct.lock().ok().and_then(|mut u| u.replace(pct));
        if pct > self.policy.slowdown_at && previous.is_none_or(|p| p <= self.policy.slowdown_at) {
            tracing::warn!(
                message = "meta usage above slowdown threshold: polling slower",
                usage_pct = pct
            );
        }
        if pct >= PAUSE_AT_PCT {
            // The pause may outlast the next poll: `status` shows why now.
            self.store.set_usage(&self.account, pct).await?;
            let pause = mine.regain.unwrap_or(USAGE_PAUSE);
            self.pause(pause, &format!("meta usage at {pct}%")).await?;
        }
        Ok(())
    }

    /// The app's usage concerns every account: stored for all of them to slow down on, and at
    /// 95 % every account of the app pauses.
    async fn observe_app_usage(&self, pct: u32) -> Result<(), StoreError> {
        crate::metrics::get().app_usage(pct);
        let previous = self.app_pct.lock().ok().and_then(|mut u| u.replace(pct));
        let crossed =
            pct > self.policy.slowdown_at && previous.is_none_or(|p| p <= self.policy.slowdown_at);
        if crossed {
            tracing::warn!(
                message = "meta app usage above slowdown threshold: every account polls slower",
                app_usage_pct = pct
            );
        }
        // Shared through SQLite with the other accounts and processes (at most once a minute
        // per process unless it moved or crossed a threshold).
        self.store
            .share_app_usage(pct, crossed || pct >= PAUSE_AT_PCT)
            .await?;
        if pct >= PAUSE_AT_PCT {
            let until = timefmt::later(Utc::now(), USAGE_PAUSE);
            let already = self
                .store
                .app_state()
                .await?
                .paused
                .is_some_and(|(p, _)| p >= until - chrono::Duration::seconds(5));
            if !already {
                tracing::warn!(
                    message = "meta app usage high: pausing every account of the app",
                    app_usage_pct = pct,
                    until = %timefmt::format(until)
                );
                self.store
                    .set_app_paused(until, &format!("meta app usage at {pct}%"))
                    .await?;
            }
        }
        Ok(())
    }

    async fn pause(&self, pause: Duration, reason: &str) -> Result<(), StoreError> {
        crate::metrics::get().throttle_pause();
        let until = Utc::now() + chrono::Duration::from_std(pause).unwrap_or_else(|_| hour());
        let changed = {
            let mut guard = match self.paused_until.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if guard.is_none_or(|p| p < until) {
                *guard = Some(until);
                true
            } else {
                false
            }
        };
        if changed {
            tracing::warn!(
                message = "pausing account",
                reason,
                until = %timefmt::format(until)
            );
            self.store.set_paused(&self.account, until, reason).await?;
        }
        Ok(())
    }
}

fn hour() -> chrono::Duration {
    chrono::Duration::hours(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_blocks_back_off_from_an_hour_to_a_day() {
        for (strikes, hours) in [(0, 1), (1, 1), (2, 2), (3, 4), (5, 16), (6, 24), (40, 24)] {
            assert_eq!(
                write_block_backoff(strikes),
                Duration::from_secs(hours * 3600),
                "strike {strikes}"
            );
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for (retry, lo, hi) in [
            (1, 50, 100),
            (2, 100, 200),
            (3, 200, 400),
            (5, 500, 1000),
            (9, 500, 1000),
        ] {
            for _ in 0..20 {
                let d = p.delay(retry).as_millis();
                assert!((lo..=hi).contains(&d), "retry {retry}: {d}ms");
            }
        }
    }

    #[tokio::test]
    async fn budget_counts_the_ledger_across_instances() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for (store, _server) in crate::store::test_stores(dir.path()).await? {
            let now = Utc::now();
            for minutes in [70, 50, 20, 10] {
                store
                    .record_call(
                        "a",
                        now - chrono::Duration::minutes(minutes),
                        "GET",
                        "/x",
                        Some(200),
                    )
                    .await?;
            }
            store
                .record_call("other", now, "GET", "/x", Some(200))
                .await?;
            let policy = |hourly| Policy {
                hourly,
                action_reserve_pct: 0,
                slowdown_at: 75,
            };
            let budget = Budget::new(
                store.clone(),
                "a",
                "1784",
                policy(3),
                RetryPolicy::default(),
            )
            .await?;
            let (left, frees) = budget.remaining(CallKind::Read).await?;
            assert_eq!(left, 0);
            // Three calls in the window (50, 20, 10 minutes ago): the oldest frees a slot in 10 min.
            let frees = frees.map(|f| (f - now).num_seconds());
            assert!(frees.is_some_and(|s| (595..=600).contains(&s)), "{frees:?}");
            let budget = Budget::new(
                store.clone(),
                "a",
                "1784",
                policy(5),
                RetryPolicy::default(),
            )
            .await?;
            assert_eq!(budget.remaining(CallKind::Read).await?.0, 2);
            // A 40 % reserve: reads may use 3 of 5 (all spent), writes all 5 (2 left).
            let reserved = Policy {
                hourly: 5,
                action_reserve_pct: 40,
                slowdown_at: 75,
            };
            let budget =
                Budget::new(store.clone(), "a", "1784", reserved, RetryPolicy::default()).await?;
            assert_eq!(budget.remaining(CallKind::Read).await?.0, 0);
            assert_eq!(budget.remaining(CallKind::Write).await?.0, 2);
            store.close().await;
        }
        Ok(())
    }

    #[test]
    fn read_limits_keep_the_reserve() {
        for (hourly, pct, reads) in [
            (200, 20, 160),
            (10, 20, 8),
            (1, 20, 1),
            (5, 0, 5),
            (100, 100, 10),
        ] {
            let p = Policy {
                hourly,
                action_reserve_pct: pct,
                slowdown_at: 75,
            };
            assert_eq!(p.read_limit(), reads, "{hourly} with {pct}%");
        }
    }

    #[test]
    fn throttle_backoff_doubles_with_jitter_and_caps_at_an_hour() {
        for (strikes, lo, hi) in [
            (1, 30, 60),
            (2, 60, 120),
            (3, 120, 240),
            (7, 1800, 3600),
            (30, 1800, 3600),
        ] {
            for _ in 0..20 {
                let d = throttle_backoff(strikes).as_secs();
                assert!((lo..=hi).contains(&d), "strike {strikes}: {d}s");
            }
        }
    }

    #[tokio::test]
    async fn effective_interval_spreads_reads_over_the_hour_and_slows_on_usage()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for (store, _server) in crate::store::test_stores(dir.path()).await? {
            let policy = Policy {
                hourly: 100,
                action_reserve_pct: 20,
                slowdown_at: 75,
            };
            let budget =
                Budget::new(store.clone(), "a", "1784", policy, RetryPolicy::default()).await?;
            let secs = |d: Duration| d.as_secs();
            // 80 reads an hour at one call per poll: at most one poll every 45 s.
            assert_eq!(secs(budget.effective_interval(Duration::from_secs(10))), 45);
            assert_eq!(
                secs(budget.effective_interval(Duration::from_secs(120))),
                120
            );
            // Polls that cost more calls are spaced further apart.
            for _ in 0..30 {
                budget.poll_cost(4);
            }
            assert!(
                (178..=180).contains(&secs(budget.effective_interval(Duration::from_secs(10))))
            );
            // Usage at 85 % (half-way from 75 to 95): 2.5 times slower.
            if let Ok(mut u) = budget.usage_pct.lock() {
                *u = Some(85);
            }
            assert!(
                (447..=450).contains(&secs(budget.effective_interval(Duration::from_secs(120))))
            );
            // The app's usage, reported through another account's answers, slows this one too.
            let other =
                Budget::new(store.clone(), "b", "1785", policy, RetryPolicy::default()).await?;
            assert_eq!(
                secs(other.effective_interval(Duration::from_secs(120))),
                120
            );
            store.set_app_usage(85).await?;
            assert_eq!(other.paused_until().await?, None);
            assert_eq!(
                secs(other.effective_interval(Duration::from_secs(120))),
                300
            );
            store.close().await;
        }
        Ok(())
    }
}
