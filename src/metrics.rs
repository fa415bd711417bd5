//! Prometheus metrics (`prometheus-client`, OpenMetrics text) and the health answers.
//!
//! One process-wide set: the daemon's parts record into it as they work (counters and
//! histograms are atomics, so recording costs nanoseconds), and `/metrics` encodes it. Label
//! cardinality is bounded by the config: the only per-account series are the token's expiry
//! and, while there is one, an account's problem (`igmod_account_problem`); everything else is
//! labelled by call kind, outcome, rule and action, never by comment or user.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets, linear_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub kind: CallKindLabel,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum CallKindLabel {
    Read,
    Write,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub account: String,
    pub rule: String,
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountLabel {
    pub account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProblemLabels {
    pub account: String,
    pub problem: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// `webhook` or `metrics`.
    pub server: String,
    /// `connection_cap`, `header_timeout`, `body_timeout`.
    pub reason: String,
}

/// Poll intervals without a poll's end that make an account stalled (the `stalled` state
/// here, and the `stalled` alert).
pub const STALLED_INTERVALS: i64 = 3;

/// What the scheduler knows of an account, for `/readyz` and the problem series.
#[derive(Debug, Clone, Copy, Default)]
struct AccountSeen {
    /// Unix seconds of the last poll's end (0: never).
    last_poll: i64,
    /// The poll interval in force (seconds).
    interval: i64,
    /// Stopped for a dead token.
    stopped: bool,
    /// The token's expiry (Unix seconds), when known.
    token_expiry: Option<i64>,
    /// Share of the hourly budget used at the last poll (0–1).
    budget_used: f64,
    /// The last poll found the hourly budget spent.
    exhausted: bool,
    /// Another instance holds the account's lease: its polls are that instance's to report.
    elsewhere: bool,
}

/// An account as the alerts see it.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub stopped: bool,
    pub token_expiry: Option<i64>,
    pub exhausted: bool,
}

pub struct Metrics {
    registry: Registry,
    polls: Family<StatusLabel, Counter>,
    poll_seconds: Histogram,
    calls: Family<CallLabels, Counter>,
    throttle_pauses: Counter,
    write_pauses: Counter,
    decisions: Family<DecisionLabels, Counter>,
    live_comments: Family<OutcomeLabel, Counter>,
    actions: Family<StatusLabel, Counter>,
    scores: Histogram,
    detection_seconds: Histogram,
    webhooks: Family<OutcomeLabel, Counter>,
    http_refused: Family<RefusedLabels, Counter>,
    token_read_retries: Counter,
    restarts: Counter,
    app_usage: Gauge,
    usage_max: Gauge,
    budget_used_max: Gauge<f64, std::sync::atomic::AtomicU64>,
    token_expiry: Family<AccountLabel, Gauge>,
    problems: Family<ProblemLabels, Gauge>,
    accounts: Family<StatusLabel, Gauge>,
    heartbeat: AtomicI64,
    seen: Mutex<HashMap<String, AccountSeen>>,
    raid_closures: Family<AccountLabel, Counter>,
    raid_reopens: Family<AccountLabel, Counter>,
    raid_closed_posts: Family<AccountLabel, Gauge>,
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("igmod");
        let polls = Family::<StatusLabel, Counter>::default();
        registry.register("polls", "Polls ended, by status", polls.clone());
        let poll_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "poll_duration_seconds",
            "How long polls took",
            poll_seconds.clone(),
        );
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "api_calls",
            "Graph API calls by kind and outcome (ok, or the error class)",
            calls.clone(),
        );
        let throttle_pauses = Counter::default();
        registry.register(
            "throttle_pauses",
            "Pauses for Meta's throttling or usage headers",
            throttle_pauses.clone(),
        );
        let write_pauses = Counter::default();
        registry.register(
            "write_pauses",
            "Pauses of one account's writes because Meta restricted (4/2207051) or policy-blocked (368) it",
            write_pauses.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions by account, rule and action",
            decisions.clone(),
        );
        let live_comments = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "live_comments",
            "Comments on live videos recorded, by outcome (not_written: a write decided and withheld, as Meta supports none there; decided; passed)",
            live_comments.clone(),
        );
        let actions = Family::<StatusLabel, Counter>::default();
        registry.register(
            "actions",
            "Actions finished, by status (done, failed)",
            actions.clone(),
        );
        let scores = Histogram::new(linear_buckets(0.1, 0.1, 9));
        registry.register(
            "classifier_score",
            "Classifier scores of the comments a model judged",
            scores.clone(),
        );
        let detection_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 16));
        registry.register(
            "detection_latency_seconds",
            "From a comment's time to its hide or delete applied",
            detection_seconds.clone(),
        );
        let webhooks = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook requests by outcome (accepted, bad_signature, too_large, malformed, unwritable, verified, verify_refused)",
            webhooks.clone(),
        );
        let http_refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "http_refused",
            "What the HTTP servers cut off or kept waiting, by server and reason (connection_cap: a connection waited for the cap; header_timeout, body_timeout: closed for a head or body that did not arrive in time)",
            http_refused.clone(),
        );
        let token_read_retries = Counter::default();
        registry.register(
            "token_read_retries",
            "Token file reads retried after a passing error (out of descriptors, I/O error, interrupted)",
            token_read_retries.clone(),
        );
        let restarts = Counter::default();
        registry.register(
            "account_task_restarts",
            "Account tasks restarted after they ended unexpectedly (the log names the account)",
            restarts.clone(),
        );
        let app_usage = Gauge::default();
        registry.register(
            "meta_app_usage_percent",
            "The app's usage (X-App-Usage) as last reported",
            app_usage.clone(),
        );
        let usage_max = Gauge::default();
        registry.register(
            "meta_account_usage_percent_max",
            "The highest account usage (X-Business-Use-Case-Usage) last reported",
            usage_max.clone(),
        );
        let budget_used_max = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "budget_used_ratio_max",
            "The highest share of an account's hourly_budget used in the last hour",
            budget_used_max.clone(),
        );
        let token_expiry = Family::<AccountLabel, Gauge>::default();
        registry.register(
            "token_expiry_timestamp_seconds",
            "When each account's token expires (absent: never, or not known yet)",
            token_expiry.clone(),
        );
        let problems = Family::<ProblemLabels, Gauge>::default();
        registry.register(
            "account_problem",
            "1 for each account problem now (stalled, stopped, budget_high); absent when fine",
            problems.clone(),
        );
        let accounts = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "accounts",
            "Accounts by state (ok, stalled, stopped, starting: waiting for their first poll, elsewhere: held by another instance)",
            accounts.clone(),
        );
        // Series that alerts watch exist from the start, at 0 (a rule over an absent series
        // cannot tell "none yet" from "not exported").
        for status in ["done", "failed"] {
            actions
                .get_or_create(&StatusLabel {
                    status: status.to_string(),
                })
                .inc_by(0);
        }
        for outcome in [
            "accepted",
            "bad_signature",
            "too_large",
            "malformed",
            "unwritable",
        ] {
            webhooks
                .get_or_create(&OutcomeLabel {
                    outcome: outcome.to_string(),
                })
                .inc_by(0);
        }
        for status in ["ok", "partial", "error"] {
            polls
                .get_or_create(&StatusLabel {
                    status: status.to_string(),
                })
                .inc_by(0);
        }
        let raid_closures = Family::<AccountLabel, Counter>::default();
        registry.register(
            "raid_closures",
            "Posts whose comments the raid guard switched off",
            raid_closures.clone(),
        );
        let raid_reopens = Family::<AccountLabel, Counter>::default();
        registry.register(
            "raid_reopens",
            "Posts whose comments the raid guard switched back on",
            raid_reopens.clone(),
        );
        let raid_closed_posts = Family::<AccountLabel, Gauge>::default();
        registry.register(
            "raid_closed_posts",
            "Posts whose comments the raid guard holds off now",
            raid_closed_posts.clone(),
        );
        Metrics {
            registry,
            polls,
            poll_seconds,
            calls,
            throttle_pauses,
            write_pauses,
            decisions,
            live_comments,
            actions,
            scores,
            detection_seconds,
            webhooks,
            http_refused,
            token_read_retries,
            restarts,
            app_usage,
            usage_max,
            budget_used_max,
            token_expiry,
            problems,
            accounts,
            heartbeat: AtomicI64::new(0),
            seen: Mutex::new(HashMap::new()),
            raid_closures,
            raid_reopens,
            raid_closed_posts,
        }
    }

    /// The raid guard switched a post's comments off (`closed`) or back on.
    pub fn raid(&self, account: &str, closed: bool) {
        let label = AccountLabel {
            account: account.to_string(),
        };
        let family = if closed {
            &self.raid_closures
        } else {
            &self.raid_reopens
        };
        family.get_or_create(&label).inc();
    }

    /// How many of the account's posts the raid guard holds closed now.
    pub fn raid_closed_posts(&self, account: &str, n: usize) {
        self.raid_closed_posts
            .get_or_create(&AccountLabel {
                account: account.to_string(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn poll(
        &self,
        account: &str,
        status: &str,
        seconds: f64,
        interval: i64,
        used: f64,
        exhausted: bool,
    ) {
        self.polls
            .get_or_create(&StatusLabel {
                status: status.to_string(),
            })
            .inc();
        self.poll_seconds.observe(seconds);
        if let Ok(mut seen) = self.seen.lock() {
            let s = seen.entry(account.to_string()).or_default();
            s.last_poll = chrono::Utc::now().timestamp();
            s.interval = interval;
            s.stopped = false;
            s.budget_used = used;
            s.exhausted = exhausted;
        }
    }

    pub fn call(&self, write: bool, outcome: &str) {
        self.calls
            .get_or_create(&CallLabels {
                kind: if write {
                    CallKindLabel::Write
                } else {
                    CallKindLabel::Read
                },
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn throttle_pause(&self) {
        self.throttle_pauses.inc();
    }

    pub fn write_pause(&self) {
        self.write_pauses.inc();
    }

    pub fn decision(&self, account: &str, rule: &str, action: &str) {
        self.decisions
            .get_or_create(&DecisionLabels {
                account: account.to_string(),
                rule: rule.to_string(),
                action: action.to_string(),
            })
            .inc();
    }

    /// A live video's comment recorded: `not_written` (a write decided, withheld: Meta
    /// supports none on live comments), `decided` (no write needed) or `passed`.
    pub fn live_comment(&self, outcome: &str) {
        self.live_comments
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn score(&self, score: f32) {
        self.scores.observe(f64::from(score));
    }

    pub fn action(&self, status: &str, detection_seconds: Option<f64>) {
        self.actions
            .get_or_create(&StatusLabel {
                status: status.to_string(),
            })
            .inc();
        if let Some(s) = detection_seconds.filter(|s| *s >= 0.0) {
            self.detection_seconds.observe(s);
        }
    }

    pub fn webhook(&self, outcome: &str) {
        self.webhooks
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A connection cut off or kept waiting by one of the HTTP servers (see [`crate::http`]).
    pub fn http_refused(&self, server: &str, reason: &str) {
        self.http_refused
            .get_or_create(&RefusedLabels {
                server: server.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// A token file read failed for a passing reason and is tried again.
    pub fn token_read_retry(&self) {
        self.token_read_retries.inc();
    }

    pub fn restart(&self) {
        self.restarts.inc();
    }

    pub fn app_usage(&self, pct: u32) {
        self.app_usage.set(i64::from(pct));
    }

    pub fn account_usage(&self, pct: u32) {
        let pct = i64::from(pct);
        if pct > self.usage_max.get() {
            self.usage_max.set(pct);
        }
    }

    /// The account's token expiry (`None`: never expires or unknown).
    pub fn token_expiry(&self, account: &str, expiry: Option<i64>) {
        let label = AccountLabel {
            account: account.to_string(),
        };
        match expiry {
            Some(t) => {
                self.token_expiry.get_or_create(&label).set(t);
            }
            None => {
                self.token_expiry.remove(&label);
            }
        }
        if let Ok(mut seen) = self.seen.lock() {
            seen.entry(account.to_string()).or_default().token_expiry = expiry;
        }
    }

    pub fn stopped(&self, account: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.entry(account.to_string()).or_default().stopped = true;
        }
    }

    /// The accounts of the running config (others are forgotten).
    pub fn configured(&self, accounts: &[&str]) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|k, _| accounts.contains(&k.as_str()));
            for a in accounts {
                seen.entry((*a).to_string()).or_default();
            }
        }
    }

    /// The scheduler's heartbeat (Unix seconds).
    pub fn beat(&self, now: i64) {
        self.heartbeat.store(now, Ordering::Relaxed);
    }

    pub fn heartbeat(&self) -> i64 {
        self.heartbeat.load(Ordering::Relaxed)
    }

    /// The scheduler beat within [`HEARTBEAT_FRESH_SECS`] of `now` (`/healthz` and the
    /// systemd watchdog both ask this).
    pub fn scheduler_alive(&self, now: i64) -> bool {
        now.saturating_sub(self.heartbeat()) <= HEARTBEAT_FRESH_SECS
    }

    /// Says whether this instance holds the account's lease. An account held elsewhere is
    /// neither waited for by `/readyz` nor reported stalled or alerted on here; one taken
    /// (back) counts its silence from now.
    pub fn lease_held(&self, account: &str, held: bool, now: i64) {
        if let Ok(mut seen) = self.seen.lock()
            && let Some(s) = seen.get_mut(account)
        {
            if s.elsewhere && held && s.last_poll != 0 {
                s.last_poll = now;
            }
            s.elsewhere = !held;
        }
    }

    /// Every configured account's alert-relevant state (those this instance holds).
    pub fn accounts_seen(&self) -> Vec<(String, Seen)> {
        self.seen
            .lock()
            .map(|seen| {
                seen.iter()
                    .filter(|(_, s)| !s.elsewhere)
                    .map(|(k, s)| {
                        (
                            k.clone(),
                            Seen {
                                stopped: s.stopped,
                                token_expiry: s.token_expiry,
                                exhausted: s.exhausted,
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Accounts not yet polled once and not stopped (`/readyz` waits for none).
    pub fn not_ready(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .seen
            .lock()
            .map(|seen| {
                seen.iter()
                    .filter(|(_, s)| s.last_poll == 0 && !s.stopped && !s.elsewhere)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// The exposition, with the per-account problems worked out as of `now`.
    pub fn encode(&self, now: i64) -> String {
        self.problems.clear();
        self.accounts.clear();
        let mut counts: HashMap<&'static str, i64> = HashMap::new();
        let mut budget_max = 0.0f64;
        if let Ok(seen) = self.seen.lock() {
            for (account, s) in seen.iter() {
                budget_max = budget_max.max(s.budget_used);
                let problem = |p: &str| {
                    self.problems
                        .get_or_create(&ProblemLabels {
                            account: account.clone(),
                            problem: p.to_string(),
                        })
                        .set(1);
                };
                let state = if s.elsewhere {
                    "elsewhere"
                } else if s.stopped {
                    problem("stopped");
                    "stopped"
                } else if s.last_poll == 0 {
                    "starting"
                } else if now.saturating_sub(s.last_poll) > s.interval.max(1).saturating_mul(3) {
                    problem("stalled");
                    "stalled"
                } else {
                    "ok"
                };
                if s.budget_used > 0.9 {
                    problem("budget_high");
                }
                *counts.entry(state).or_insert(0) += 1;
            }
        }
        for (state, n) in counts {
            self.accounts
                .get_or_create(&StatusLabel {
                    status: state.to_string(),
                })
                .set(n);
        }
        self.budget_used_max.set(budget_max);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Accounts this instance polls whose last poll ended more than
    /// [`STALLED_INTERVALS`] intervals ago (the `stalled` state above), with
    /// how long (seconds): the `stalled` alert.
    pub fn stalled_accounts(&self, now: i64) -> Vec<(String, i64)> {
        self.seen
            .lock()
            .map(|seen| {
                seen.iter()
                    .filter(|(_, s)| !s.elsewhere && !s.stopped && s.last_poll != 0)
                    .map(|(k, s)| (k.clone(), now.saturating_sub(s.last_poll), s.interval))
                    .filter(|&(_, silent, interval)| {
                        silent > interval.max(1).saturating_mul(STALLED_INTERVALS)
                    })
                    .map(|(k, silent, _)| (k, silent))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// How old the scheduler's heartbeat (every 10 s) may be for `/healthz`.
const HEARTBEAT_FRESH_SECS: i64 = 30;
/// How long a database write probe's result stands (probes write; scrapes may be frequent).
const PROBE_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// How long the health check's write may wait.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `/metrics`, `/healthz` and `/readyz`.
pub fn router(store: crate::store::Store) -> axum::Router {
    use axum::routing::get;
    let probe: Probe = Default::default();
    axum::Router::new()
        .route("/metrics", get(scrape))
        .route(
            "/healthz",
            get(move || healthz(store.clone(), probe.clone())),
        )
        .route("/readyz", get(readyz))
}

/// How long one encoding serves every scrape: several Prometheus replicas and dashboards
/// scraping at once share it (with 2,000 accounts an encoding costs about a millisecond of
/// CPU; 100 scrapes a second cost 13 % of a core uncached).
const ENCODING_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

async fn scrape() -> impl axum::response::IntoResponse {
    static LAST: Mutex<Option<(std::time::Instant, std::sync::Arc<String>)>> = Mutex::new(None);
    let cached = LAST.lock().ok().and_then(|l| {
        l.as_ref()
            .filter(|(at, _)| at.elapsed() < ENCODING_FRESH)
            .map(|(_, t)| t.clone())
    });
    let text = match cached {
        Some(text) => text,
        None => {
            let text = std::sync::Arc::new(get().encode(chrono::Utc::now().timestamp()));
            if let Ok(mut last) = LAST.lock() {
                *last = Some((std::time::Instant::now(), text.clone()));
            }
            text
        }
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        String::clone(&text),
    )
}

type Probe = std::sync::Arc<tokio::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>>;

/// Alive, the scheduler beating, the database taking writes; 503 with the reasons otherwise.
async fn healthz(
    store: crate::store::Store,
    probe: Probe,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let now = chrono::Utc::now().timestamp();
    let age = now.saturating_sub(get().heartbeat());
    let db = {
        let mut cached = probe.lock().await;
        match cached.as_ref() {
            Some((at, result)) if at.elapsed() < PROBE_FRESH => result.clone(),
            _ => {
                // A database locked by someone else for longer than this is as good as
                // unwritable for a health check.
                let result = match tokio::time::timeout(PROBE_TIMEOUT, store.probe_write()).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err(format!(
                        "a write waited more than {} s (locked?)",
                        PROBE_TIMEOUT.as_secs()
                    )),
                };
                // The detail (a path, a server's words) goes to the log, once per change; the
                // answer, which anyone reaching the port reads, says only what is wrong.
                let before = cached.as_ref().map(|(_, r)| r);
                if let Err(e) = &result
                    && before != Some(&result)
                {
                    tracing::error!(message = "health check: the database cannot be written", error = %e);
                }
                *cached = Some((std::time::Instant::now(), result.clone()));
                result
            }
        }
    };
    let mut problems = Vec::new();
    if !get().scheduler_alive(now) {
        problems.push(format!("scheduler heartbeat {age} s old"));
    }
    if db.is_err() {
        problems.push("database cannot be written (the log says why)".to_string());
    }
    let status = if problems.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({
            "status": if problems.is_empty() { "ok" } else { "unhealthy" },
            "heartbeat_age_secs": age,
            "database": if db.is_ok() { "writable" } else { "not writable" },
            "problems": problems,
        })),
    )
}

/// Ready once every account has polled once (or was stopped for its token).
async fn readyz() -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let waiting = get().not_ready();
    let status = if waiting.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({
            "ready": waiting.is_empty(),
            "waiting_for_first_poll": waiting,
        })),
    )
}
