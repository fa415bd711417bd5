//! Alerts without Prometheus (`[[alerts]]`): every `alert_check` the daemon looks at what needs
//! a person (a token ending, an account stopped or stalled, a budget spent, actions failing, a
//! wave of scams), and tells the configured commands and URLs: once per cause per day, then
//! "resolved" when it clears. Delivery runs on its own tasks with timeouts, so a receiver that
//! hangs never slows moderation.
//!
//! Architecture Invariant: a cause is marked told only after every target that wants it
//! accepted it. Until then it is retried with back-off (the outage logged once per target,
//! not per retry), and a restart tells it again: a receiver outage delays an alert, never
//! swallows it.
//!
//! What leaves the process is bounded: a command runs with a cleared environment (only
//! `PATH`, `LANG` and the `IGMOD_ALERT_*` variables, never the tokens or the app secret the
//! daemon holds), and a URL target gets no redirect followed and needs https unless it is on
//! loopback.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::config::alert_kind::{AlertKind, UrlRefusal, check_url};
use crate::config::{AlertConfig, AlertFormat, AlertTarget, UrlSource};
use crate::metrics::STALLED_INTERVALS;
use crate::store::{AlertState, Store, StoreError};

/// One alert as sent (JSON on a command's stdin, or POSTed).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub kind: AlertKind,
    /// `firing`, `resolved` or `test`.
    pub state: &'static str,
    pub account: Option<String>,
    pub summary: String,
    pub at: String,
}

/// A token ending within this long alerts.
const TOKEN_WARN_DAYS: i64 = 7;
/// Hides and deletes of one account within [`WAVE_WINDOW`] that make a wave.
pub const WAVE_SIZE: i64 = 20;
const WAVE_WINDOW: chrono::Duration = chrono::Duration::minutes(10);
/// A told cause is told again after this long if it still holds.
const REMIND_AFTER: chrono::Duration = chrono::Duration::hours(24);
/// `igmod alerts test`: attempts per target, and the waits between them.
const RETRIES: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];
/// The daemon's deliveries: the first wait after a failure, doubled each time up to the cap.
const BACKOFF_FIRST: Duration = Duration::from_secs(2);
const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// The conditions that hold now: cause key → (kind, account, summary).
pub async fn conditions(
    store: &Store,
    now: DateTime<Utc>,
) -> Result<HashMap<String, (AlertKind, Option<String>, String)>, StoreError> {
    let mut out = HashMap::new();
    let mut add = |kind: AlertKind, account: Option<&str>, summary: String| {
        let key = format!("{}/{}", kind.as_str(), account.unwrap_or("*"));
        out.insert(key, (kind, account.map(str::to_string), summary));
    };
    for (account, s) in crate::metrics::get().accounts_seen() {
        if s.stopped {
            add(
                AlertKind::AccountStopped,
                Some(&account),
                format!(
                    "{account} stopped: its access token is not usable; put a new token in its source and reload igmod"
                ),
            );
        }
        if let Some(t) = s.token_expiry {
            let days = t.saturating_sub(now.timestamp()) / 86_400;
            if days < TOKEN_WARN_DAYS {
                add(
                    AlertKind::TokenExpiring,
                    Some(&account),
                    format!(
                        "the access token of {account} lapses in {days} days; run `igmod token refresh {account}` or log in again"
                    ),
                );
            }
        }
        if s.exhausted {
            add(
                AlertKind::BudgetExhausted,
                Some(&account),
                format!(
                    "{account} spent its hourly budget: polls wait for it (raise hourly_budget or poll_interval)"
                ),
            );
        }
    }
    for (account, silent) in crate::metrics::get().stalled_accounts(now.timestamp()) {
        if waits_on_purpose(store, &account, now).await? {
            continue;
        }
        add(
            AlertKind::Stalled,
            Some(&account),
            format!(
                "{account} has not finished a poll for {silent} s ({STALLED_INTERVALS} poll intervals): a poll hangs or its task is stuck (see the log)"
            ),
        );
    }
    for (account, until, reason) in store.writes_paused(now).await? {
        add(
            AlertKind::Restricted,
            Some(&account),
            format!(
                "meta refuses the writes of {account} until {until} ({}): its hides and deletes wait, polling goes on",
                reason.as_deref().unwrap_or("-")
            ),
        );
    }
    for (account, n) in store
        .failed_actions_since(now - chrono::Duration::hours(1))
        .await?
    {
        add(
            AlertKind::ActionFailed,
            Some(&account),
            format!(
                "{n} hide/delete actions of {account} failed in the last hour (see `igmod audit`)"
            ),
        );
    }
    for (account, n) in store.removals_since(now - WAVE_WINDOW).await? {
        if n >= WAVE_SIZE {
            add(
                AlertKind::ScamWave,
                Some(&account),
                format!(
                    "{n} comments of {account} hidden or deleted in the last 10 minutes: a wave of scams or abuse"
                ),
            );
        }
    }
    let mut closed: HashMap<String, Vec<String>> = HashMap::new();
    for c in store.raid_open_closures(None).await? {
        closed.entry(c.account).or_default().push(c.media_id);
    }
    for (account, posts) in closed {
        add(
            AlertKind::Raid,
            Some(&account),
            format!(
                "raid guard: comments of {account} switched off on {} post(s) ({}) after a wave of removals; they reopen by themselves",
                posts.len(),
                posts.join(", ")
            ),
        );
    }
    Ok(out)
}

/// An event to deliver, and the state its cause takes once every target accepted it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub key: String,
    pub event: Event,
    pub after: AlertState,
}

/// The account's next poll is scheduled in the future, or its calls are paused (budget spent,
/// throttled by Meta): its silence is a wait, told by other alerts, not a stall. A stalled
/// account's due time has passed (its poll started and never ended).
async fn waits_on_purpose(
    store: &Store,
    account: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let state = store.account_state(account).await?;
    let future = |t: Option<&str>| t.and_then(crate::timefmt::parse).is_some_and(|t| t > now);
    Ok(future(state.next_due_at.as_deref()) || future(state.paused_until.as_deref()))
}

/// Compares the conditions holding with the stored states, skipping causes whose delivery is
/// still under way (`busy`). Returns the events to tell and the states to store at once (a
/// firing or an end that stays quiet); a told cause's state is stored by its delivery.
pub fn plan(
    holding: &HashMap<String, (AlertKind, Option<String>, String)>,
    states: &HashMap<String, AlertState>,
    busy: &HashSet<String>,
    now: DateTime<Utc>,
) -> (Vec<Pending>, Vec<(String, AlertState)>) {
    let at = crate::timefmt::format(now);
    let (mut tell, mut store) = (Vec::new(), Vec::new());
    let mut keys: Vec<&String> = holding
        .keys()
        .chain(states.keys())
        .collect::<HashSet<_>>()
        .into_iter()
        .filter(|k| !busy.contains(*k))
        .collect();
    keys.sort();
    for key in keys {
        let state = states.get(key).cloned().unwrap_or_default();
        match holding.get(key) {
            Some((kind, account, summary)) => {
                let due = state.last_sent_at.is_none_or(|t| now - t >= REMIND_AFTER);
                if (!state.firing || state.notified) && due {
                    tell.push(Pending {
                        key: key.clone(),
                        event: Event {
                            kind: *kind,
                            state: "firing",
                            account: account.clone(),
                            summary: summary.clone(),
                            at: at.clone(),
                        },
                        after: AlertState {
                            firing: true,
                            notified: true,
                            last_sent_at: Some(now),
                        },
                    });
                } else if !state.firing {
                    // Told within the day: this firing stays quiet, and so does its end.
                    store.push((
                        key.clone(),
                        AlertState {
                            firing: true,
                            notified: false,
                            ..state
                        },
                    ));
                }
            }
            None if state.firing => {
                let after = AlertState {
                    firing: false,
                    notified: false,
                    ..state.clone()
                };
                match (state.notified, parse_key(key)) {
                    (true, (Some(kind), account)) => tell.push(Pending {
                        key: key.clone(),
                        event: Event {
                            kind,
                            state: "resolved",
                            account,
                            summary: format!("resolved: {key}"),
                            at: at.clone(),
                        },
                        after,
                    }),
                    _ => store.push((key.clone(), after)),
                }
            }
            None => {}
        }
    }
    (tell, store)
}

fn parse_key(key: &str) -> (Option<AlertKind>, Option<String>) {
    let (kind, account) = key.split_once('/').unwrap_or((key, "*"));
    (
        AlertKind::parse(kind),
        (account != "*").then(|| account.to_string()),
    )
}

/// Why one delivery attempt failed. Never holds a URL's path or query, nor a command's
/// arguments (either may carry a secret).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("empty command")]
    EmptyCommand,
    #[error("cannot run: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("cannot write its stdin: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("cannot wait for it: {0}")]
    Wait(#[source] std::io::Error),
    #[error("exited with {0}")]
    Exit(std::process::ExitStatus),
    #[error("{0} is not set")]
    UrlEnvUnset(String),
    #[error("the URL in {var}: {refusal}")]
    UrlEnvRefused { var: String, refusal: UrlRefusal },
    #[error("{0}")]
    Http(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("no HTTP client: {0}")]
    NoClient(String),
    #[error("cannot encode the event: {0}")]
    Encode(#[source] serde_json::Error),
}

/// The HTTP client of alert deliveries: it follows no redirect (a receiver cannot send an
/// alert, or the secret in its URL, on to another host).
#[derive(Debug, Clone)]
pub struct AlertHttp(reqwest::Client);

impl AlertHttp {
    pub fn new() -> Result<AlertHttp, DeliveryError> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("igmod/", env!("CARGO_PKG_VERSION")))
            .build()
            .map(AlertHttp)
            .map_err(|e| DeliveryError::NoClient(crate::graph::scrub(&e.without_url().to_string())))
    }
}

/// The daemon's delivery side: targets, the causes being delivered, the targets down.
#[derive(Clone)]
pub struct Deliverer {
    targets: Arc<Vec<AlertConfig>>,
    http: Result<AlertHttp, Arc<str>>,
    busy: Arc<Mutex<HashSet<String>>>,
    down: Arc<Mutex<HashSet<usize>>>,
}

/// Prepares delivery to `targets`: events go to every target whose `on` names their kind
/// (`test` events to all).
pub fn start(targets: Vec<AlertConfig>) -> Deliverer {
    let http = AlertHttp::new().map_err(|e| {
        tracing::error!(message = "alert URLs cannot be reached: no HTTP client", error = %e);
        Arc::<str>::from(e.to_string())
    });
    Deliverer {
        targets: Arc::new(targets),
        http,
        busy: Arc::default(),
        down: Arc::default(),
    }
}

impl Deliverer {
    fn busy(&self) -> HashSet<String> {
        self.busy.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Delivers `p` to its targets on a task of its own, each retried with back-off until it
    /// accepts; then stores the cause's state. Cancelled: nothing stored (told again later).
    fn dispatch(&self, store: Store, p: Pending, cancel: CancellationToken) {
        if let Ok(mut busy) = self.busy.lock() {
            busy.insert(p.key.clone());
        }
        let this = self.clone();
        tokio::spawn(async move {
            let wanted: Vec<usize> = this
                .targets
                .iter()
                .enumerate()
                .filter(|(_, t)| t.on.contains(&p.event.kind))
                .map(|(i, _)| i)
                .collect();
            let sends = wanted
                .iter()
                .map(|&i| this.until_sent(i, &p.event, &cancel));
            let all_sent = futures::future::join_all(sends)
                .await
                .into_iter()
                .all(|sent| sent);
            if all_sent {
                let mut after = p.after.clone();
                if after.notified {
                    after.last_sent_at = Some(Utc::now());
                }
                if let Err(e) = store.set_alert_state(&p.key, &after).await {
                    // Not stored: told again at the next check (twice beats never).
                    tracing::warn!(message = "cannot store an alert's state", error = %e);
                }
            }
            if let Ok(mut busy) = this.busy.lock() {
                busy.remove(&p.key);
            }
        });
    }

    /// One target, until it accepts the event (`true`) or the daemon stops (`false`). Its
    /// outage is logged when it starts and when it ends, not at each retry.
    async fn until_sent(&self, index: usize, event: &Event, cancel: &CancellationToken) -> bool {
        let Some(target) = self.targets.get(index) else {
            return true;
        };
        let mut failures: u32 = 0;
        loop {
            let result = match &self.http {
                Ok(http) => attempt(http, target, event).await,
                Err(e) => Err(DeliveryError::NoClient(e.to_string())),
            };
            match result {
                Ok(()) => {
                    let was_down = self.down.lock().is_ok_and(|mut d| d.remove(&index));
                    if was_down {
                        tracing::info!(message = "alert target answers again", target = %describe(index, target));
                    }
                    log_sent(index, target, event);
                    return true;
                }
                Err(e) => {
                    let first = self.down.lock().is_ok_and(|mut d| d.insert(index));
                    let wait = backoff(failures);
                    if first {
                        tracing::warn!(
                            message = "alert not delivered; retrying with back-off until the target accepts it",
                            target = %describe(index, target),
                            kind = event.kind.as_str(),
                            error = %e
                        );
                    } else {
                        tracing::debug!(message = "alert still not delivered", target = %describe(index, target), error = %e, retry_in_s = wait.as_secs());
                    }
                    failures = failures.saturating_add(1);
                    tokio::select! {
                        _ = cancel.cancelled() => return false,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}

/// The wait after the `failures`-th failure in a row (0-based): 2 s doubling, capped at 5 min.
pub fn backoff(failures: u32) -> Duration {
    BACKOFF_FIRST
        .checked_mul(2u32.saturating_pow(failures.min(16)))
        .map_or(BACKOFF_CAP, |d| d.min(BACKOFF_CAP))
}

fn log_sent(index: usize, target: &AlertConfig, event: &Event) {
    tracing::info!(
        message = "alert sent",
        target = %describe(index, target),
        kind = event.kind.as_str(),
        state = event.state,
        account = event.account.as_deref().unwrap_or("-")
    );
}

/// One attempt, bounded by the target's timeout.
async fn attempt(
    http: &AlertHttp,
    target: &AlertConfig,
    event: &Event,
) -> Result<(), DeliveryError> {
    tokio::time::timeout(target.timeout, deliver(http, target, event))
        .await
        .unwrap_or(Err(DeliveryError::Timeout(target.timeout.as_secs())))
}

/// `igmod alerts test`: delivers one event to one target, three attempts; the last error when
/// all failed.
pub async fn deliver_with_retries(
    http: &AlertHttp,
    index: usize,
    target: &AlertConfig,
    event: &Event,
) -> Result<(), DeliveryError> {
    let mut last = DeliveryError::EmptyCommand;
    for wait in std::iter::once(Duration::ZERO).chain(RETRIES) {
        tokio::time::sleep(wait).await;
        match attempt(http, target, event).await {
            Ok(()) => {
                log_sent(index, target, event);
                return Ok(());
            }
            Err(e) => last = e,
        }
    }
    tracing::warn!(
        message = "alert not delivered after 3 attempts",
        target = %describe(index, target),
        kind = event.kind.as_str(),
        error = %last
    );
    Err(last)
}

/// A target as it may be logged: a command's program, a URL's host (never its path or query,
/// which may hold a secret).
pub fn describe(index: usize, target: &AlertConfig) -> String {
    match &target.target {
        AlertTarget::Command(args) => format!(
            "alerts[{index}] command {}",
            args.first().map_or("-", String::as_str)
        ),
        AlertTarget::Url { url, .. } => {
            let host = resolve(url)
                .ok()
                .and_then(|u| url::Url::parse(&u).ok())
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "?".into());
            format!("alerts[{index}] url on {host}")
        }
    }
}

/// The URL of a target; one from the environment is checked like one in the file.
fn resolve(url: &UrlSource) -> Result<String, DeliveryError> {
    match url {
        UrlSource::Inline(u) => Ok(u.clone()),
        UrlSource::Env(var) => {
            let u = std::env::var(var).map_err(|_| DeliveryError::UrlEnvUnset(var.clone()))?;
            check_url(&u).map_err(|refusal| DeliveryError::UrlEnvRefused {
                var: var.clone(),
                refusal,
            })?;
            Ok(u)
        }
    }
}

/// The environment an alert command gets: nothing of the daemon's (its tokens, app secret and
/// database password live there) but `PATH` and `LANG`, and the event's kind, state and
/// account.
pub fn command_env(event: &Event) -> Vec<(&'static str, String)> {
    let mut env = vec![(
        "PATH",
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    )];
    if let Ok(lang) = std::env::var("LANG") {
        env.push(("LANG", lang));
    }
    env.push(("IGMOD_ALERT_KIND", event.kind.as_str().to_string()));
    env.push(("IGMOD_ALERT_STATE", event.state.to_string()));
    env.push((
        "IGMOD_ALERT_ACCOUNT",
        event.account.clone().unwrap_or_default(),
    ));
    env
}

async fn deliver(
    http: &AlertHttp,
    target: &AlertConfig,
    event: &Event,
) -> Result<(), DeliveryError> {
    let json = serde_json::to_string(event).map_err(DeliveryError::Encode)?;
    match &target.target {
        AlertTarget::Command(args) => {
            let Some((program, rest)) = args.split_first() else {
                return Err(DeliveryError::EmptyCommand);
            };
            let mut child = tokio::process::Command::new(program)
                .args(rest)
                .env_clear()
                .envs(command_env(event))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(DeliveryError::Spawn)?;
            if let Some(mut stdin) = child.stdin.take() {
                // A command that does not read its stdin is fine: its exit status decides.
                match stdin.write_all(json.as_bytes()).await {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                        return Err(DeliveryError::Stdin(e));
                    }
                    _ => {}
                }
            }
            let status = child.wait().await.map_err(DeliveryError::Wait)?;
            if status.success() {
                Ok(())
            } else {
                Err(DeliveryError::Exit(status))
            }
        }
        AlertTarget::Url { url, format } => {
            let url = resolve(url)?;
            let http = &http.0;
            let request = match format {
                AlertFormat::Json => http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(json),
                AlertFormat::Slack => http.post(&url).json(&serde_json::json!({
                    "text": format!("[igmod] {} {}: {}", event.state.to_uppercase(), event.kind.as_str(), event.summary)
                })),
                AlertFormat::Text => http
                    .post(&url)
                    .header("title", format!("igmod {} {}", event.state, event.kind.as_str()))
                    .body(event.summary.clone()),
            };
            let response = request.send().await.map_err(|e| {
                DeliveryError::Http(crate::graph::scrub(&e.without_url().to_string()))
            })?;
            if response.status().is_success() {
                Ok(())
            } else {
                // A redirect is an answer, not followed: the target must be given as it is.
                Err(DeliveryError::Status(response.status().as_u16()))
            }
        }
    }
}

/// Looks at the conditions every `every` and hands what to tell to `deliverer`; never waits
/// for a delivery.
pub async fn run(store: Store, every: Duration, deliverer: Deliverer, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = check(&store, &deliverer, &cancel).await {
            tracing::warn!(message = "cannot evaluate alerts", error = %e);
        }
    }
}

async fn check(
    store: &Store,
    deliverer: &Deliverer,
    cancel: &CancellationToken,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let holding = conditions(store, now).await?;
    let states = store.alert_states().await?;
    let (tell, quiet) = plan(&holding, &states, &deliverer.busy(), now);
    for (key, state) in quiet {
        store.set_alert_state(&key, &state).await?;
    }
    for p in tell {
        deliverer.dispatch(store.clone(), p, cancel.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let waits: Vec<u64> = (0..10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(u32::MAX), BACKOFF_CAP);
    }

    #[test]
    fn a_cause_is_told_until_delivered_and_skipped_while_under_way() {
        let now = Utc::now();
        let key = "account_stopped/globex".to_string();
        let holding = HashMap::from([(
            key.clone(),
            (AlertKind::AccountStopped, Some("globex".into()), "s".into()),
        )]);
        let none = HashSet::new();
        // Nothing stored yet: told; nothing stored before the delivery.
        let (tell, quiet) = plan(&holding, &HashMap::new(), &none, now);
        assert_eq!(tell.len(), 1);
        assert!(quiet.is_empty());
        assert!(tell[0].after.notified && tell[0].after.firing);
        // Still holding, delivery under way: not told twice.
        let busy = HashSet::from([key.clone()]);
        let (tell2, quiet2) = plan(&holding, &HashMap::new(), &busy, now);
        assert!(tell2.is_empty() && quiet2.is_empty());
        // The delivery stored its state: quiet within the day, resolved when it ends.
        let states = HashMap::from([(key.clone(), tell[0].after.clone())]);
        let (tell3, _) = plan(&holding, &states, &none, now);
        assert!(tell3.is_empty());
        let (tell4, _) = plan(&HashMap::new(), &states, &none, now);
        assert_eq!(tell4.len(), 1);
        assert_eq!(tell4[0].event.state, "resolved");
        assert!(!tell4[0].after.firing);
    }

    #[test]
    fn a_command_gets_no_secret_from_the_environment() {
        let event = Event {
            kind: AlertKind::Stalled,
            state: "firing",
            account: Some("acme".into()),
            summary: String::new(),
            at: String::new(),
        };
        let names: Vec<&str> = command_env(&event).iter().map(|(k, _)| *k).collect();
        for name in &names {
            assert!(
                matches!(*name, "PATH" | "LANG") || name.starts_with("IGMOD_ALERT_"),
                "{name}"
            );
        }
        assert!(names.contains(&"IGMOD_ALERT_KIND"));
    }
}
