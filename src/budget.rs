//! The per-account call gate. Every Graph API request goes through [`Budget::call`], which
//! 1. refuses when the account is paused (throttled by Meta) or its `hourly_budget` of calls in
//!    the rolling hour is spent — counted from the SQLite ledger, so restarts do not reset it;
//! 2. records each HTTP request in the ledger, success or not;
//! 3. retries transient failures with exponential backoff and jitter, a bounded number of times;
//! 4. turns Meta's throttling signals (codes 4/17/32/613/80001/80002, usage headers at 95 %)
//!    into a pause stored in SQLite that is never shortened by a later, smaller hint.
//!
//! The in-memory governor is only a cache of the ledger, rebuilt from it at start.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;

use crate::graph::{CallInfo, ErrorKind, GraphError, Reply};
use crate::store::{Store, StoreError};
use crate::timefmt;

/// Above this usage percentage an account is paused.
const PAUSE_AT_PCT: u32 = 95;
/// Pause when Meta throttles without saying for how long.
const DEFAULT_THROTTLE_PAUSE: Duration = Duration::from_secs(5 * 60);

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
    #[error("hourly budget of {budget} calls is spent; next call allowed at {}", timefmt::format(*.until))]
    Exhausted { budget: u32, until: DateTime<Utc> },
    #[error("account paused until {} ({reason})", timefmt::format(*.until))]
    Paused {
        until: DateTime<Utc>,
        reason: String,
    },
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
    hourly: u32,
    retry: RetryPolicy,
    limiter: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<DateTime<Utc>>>,
}

impl Budget {
    /// Builds the gate, rebuilding the in-memory limiter and pause from SQLite.
    pub async fn new(
        store: Store,
        account: &str,
        hourly: u32,
        retry: RetryPolicy,
    ) -> Result<Budget, StoreError> {
        let per_hour = NonZeroU32::new(hourly).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::direct(Quota::per_hour(per_hour));
        let used = store.calls_since(account, Utc::now() - hour()).await?.len();
        if let Some(n) = u32::try_from(used).ok().and_then(NonZeroU32::new) {
            // Spend what the ledger says was spent; more than the burst just empties it.
            let _ = limiter.check_n(n.min(per_hour));
        }
        let paused_until = store
            .account_state(account)
            .await?
            .paused_until
            .and_then(|p| timefmt::parse(&p))
            .filter(|p| *p > Utc::now());
        Ok(Budget {
            store,
            account: account.to_string(),
            hourly,
            retry,
            limiter,
            paused_until: Mutex::new(paused_until),
        })
    }

    /// Calls left in the rolling hour, and when the next one frees up if none are.
    pub async fn remaining(&self) -> Result<(u32, Option<DateTime<Utc>>), StoreError> {
        let now = Utc::now();
        let calls = self.store.calls_since(&self.account, now - hour()).await?;
        let used = u32::try_from(calls.len()).unwrap_or(u32::MAX);
        if used < self.hourly {
            return Ok((self.hourly - used, None));
        }
        // The call that must leave the window before one more fits.
        let index = (used - self.hourly) as usize;
        let frees = calls
            .get(index)
            .map(|t| *t + hour())
            .unwrap_or(now + hour());
        Ok((0, Some(frees)))
    }

    /// When the account may call again, if it is paused now.
    pub fn paused_until(&self) -> Option<DateTime<Utc>> {
        let guard = self.paused_until.lock().ok()?;
        guard.filter(|p| *p > Utc::now())
    }

    /// Sends one logical request through the gate: budget check, ledger, retries, pauses.
    pub async fn call<T, F, Fut>(&self, mut send: F) -> Result<Reply<T>, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Reply<T>, GraphError>>,
    {
        let mut attempt = 1;
        loop {
            self.admit().await?;
            let started = Utc::now();
            let result = send().await;
            let call = match &result {
                Ok(r) => &r.call,
                Err(e) => &e.call,
            };
            self.store
                .record_call(
                    &self.account,
                    started,
                    call.method,
                    &call.endpoint,
                    call.status,
                )
                .await?;
            self.observe_usage(call).await?;
            match result {
                Ok(reply) => return Ok(reply),
                Err(e) => match e.kind {
                    ErrorKind::Transient if attempt < self.retry.attempts => {
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
                        let pause = regain.unwrap_or(DEFAULT_THROTTLE_PAUSE);
                        let reason = if app_wide {
                            "app rate limited by meta"
                        } else {
                            "account rate limited by meta"
                        };
                        self.pause(pause, reason).await?;
                        return Err(e.into());
                    }
                    _ => return Err(e.into()),
                },
            }
        }
    }

    async fn admit(&self) -> Result<(), CallError> {
        if let Some(until) = self.paused_until() {
            let reason = self
                .store
                .account_state(&self.account)
                .await?
                .paused_reason
                .unwrap_or_else(|| "paused".into());
            return Err(CallError::Paused { until, reason });
        }
        let (left, frees) = self.remaining().await?;
        if left == 0 {
            return Err(CallError::Exhausted {
                budget: self.hourly,
                until: frees.unwrap_or_else(|| Utc::now() + hour()),
            });
        }
        // The ledger allows it; keep the cache in step (it cannot refuse what the ledger allows
        // by more than its own rounding, and the ledger is the truth).
        let _ = self.limiter.check();
        Ok(())
    }

    async fn observe_usage(&self, call: &CallInfo) -> Result<(), StoreError> {
        if let Some(pct) = call.usage.max_pct().filter(|p| *p >= PAUSE_AT_PCT) {
            let pause = call.usage.regain.unwrap_or(DEFAULT_THROTTLE_PAUSE);
            self.pause(pause, &format!("meta usage at {pct}%")).await?;
        }
        Ok(())
    }

    async fn pause(&self, pause: Duration, reason: &str) -> Result<(), StoreError> {
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
        let store = Store::open(&dir.path().join("b.db")).await?;
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
        let budget = Budget::new(store.clone(), "a", 3, RetryPolicy::default()).await?;
        let (left, frees) = budget.remaining().await?;
        assert_eq!(left, 0);
        // Three calls in the window (50, 20, 10 minutes ago): the oldest frees a slot in 10 min.
        let frees = frees.map(|f| (f - now).num_seconds());
        assert!(frees.is_some_and(|s| (595..=600).contains(&s)), "{frees:?}");
        let budget = Budget::new(store.clone(), "a", 5, RetryPolicy::default()).await?;
        assert_eq!(budget.remaining().await?.0, 2);
        Ok(())
    }
}
