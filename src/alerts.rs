//! Alerts without Prometheus (`[[alerts]]`): every `alert_check` the daemon looks at what needs
//! a person (a token ending, an account stopped, a budget spent, actions failing, a wave of
//! scams), and tells the configured commands and URLs: once per cause per day, then
//! "resolved" when it clears. Delivery runs on its own task with retries and timeouts, so a
//! receiver that hangs never slows moderation.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::config::{AlertConfig, AlertFormat, AlertTarget, UrlSource};
use crate::store::{Store, StoreError};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    TokenExpiring,
    AccountStopped,
    BudgetExhausted,
    ActionFailed,
    ScamWave,
}

impl AlertKind {
    pub const NAMES: [&'static str; 5] = [
        "token_expiring",
        "account_stopped",
        "budget_exhausted",
        "action_failed",
        "scam_wave",
    ];

    pub fn parse(s: &str) -> Option<AlertKind> {
        Some(match s {
            "token_expiring" => AlertKind::TokenExpiring,
            "account_stopped" => AlertKind::AccountStopped,
            "budget_exhausted" => AlertKind::BudgetExhausted,
            "action_failed" => AlertKind::ActionFailed,
            "scam_wave" => AlertKind::ScamWave,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::TokenExpiring => "token_expiring",
            AlertKind::AccountStopped => "account_stopped",
            AlertKind::BudgetExhausted => "budget_exhausted",
            AlertKind::ActionFailed => "action_failed",
            AlertKind::ScamWave => "scam_wave",
        }
    }
}

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
/// Attempts per delivery, and the waits between them.
const RETRIES: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];

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
    Ok(out)
}

/// Compares the conditions with the stored states; returns what to tell.
pub async fn evaluate(store: &Store, now: DateTime<Utc>) -> Result<Vec<Event>, StoreError> {
    let holding = conditions(store, now).await?;
    let states = store.alert_states().await?;
    let at = crate::timefmt::format(now);
    let mut events = Vec::new();
    let keys: HashSet<&String> = holding.keys().chain(states.keys()).collect();
    for key in keys {
        let mut state = states.get(key).cloned().unwrap_or_default();
        let before = state.clone();
        match holding.get(key) {
            Some((kind, account, summary)) => {
                let due = state.last_sent_at.is_none_or(|t| now - t >= REMIND_AFTER);
                if (!state.firing || state.notified) && due {
                    events.push(Event {
                        kind: *kind,
                        state: "firing",
                        account: account.clone(),
                        summary: summary.clone(),
                        at: at.clone(),
                    });
                    state.notified = true;
                    state.last_sent_at = Some(now);
                } else if !state.firing {
                    // Told within the day: this firing stays quiet, and so does its end.
                    state.notified = false;
                }
                state.firing = true;
            }
            None if state.firing => {
                if state.notified {
                    let (kind, account) = parse_key(key);
                    if let Some(kind) = kind {
                        events.push(Event {
                            kind,
                            state: "resolved",
                            account,
                            summary: format!("resolved: {key}"),
                            at: at.clone(),
                        });
                    }
                }
                state.firing = false;
                state.notified = false;
            }
            None => {}
        }
        if state != before {
            store.set_alert_state(key, &state).await?;
        }
    }
    Ok(events)
}

fn parse_key(key: &str) -> (Option<AlertKind>, Option<String>) {
    let (kind, account) = key.split_once('/').unwrap_or((key, "*"));
    (
        AlertKind::parse(kind),
        (account != "*").then(|| account.to_string()),
    )
}

/// Starts the delivery task; events put on the returned queue go to every target whose `on`
/// names their kind (`test` events to all).
pub fn start(targets: Vec<AlertConfig>) -> mpsc::Sender<Event> {
    let (tx, mut rx) = mpsc::channel::<Event>(1000);
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        while let Some(event) = rx.recv().await {
            for (i, t) in targets.iter().enumerate() {
                if event.state != "test" && !t.on.contains(&event.kind) {
                    continue;
                }
                let (t, event, http) = (t.clone(), event.clone(), http.clone());
                tokio::spawn(async move {
                    let _ = deliver_with_retries(&http, i, &t, &event).await;
                });
            }
        }
    });
    tx
}

/// Delivers one event to one target, retrying; the last error when all attempts failed.
pub async fn deliver_with_retries(
    http: &reqwest::Client,
    index: usize,
    target: &AlertConfig,
    event: &Event,
) -> Result<(), String> {
    let mut last = String::new();
    for wait in std::iter::once(Duration::ZERO).chain(RETRIES) {
        tokio::time::sleep(wait).await;
        match tokio::time::timeout(target.timeout, deliver(http, target, event)).await {
            Ok(Ok(())) => {
                tracing::info!(
                    message = "alert sent",
                    target = %describe(index, target),
                    kind = event.kind.as_str(),
                    state = event.state,
                    account = event.account.as_deref().unwrap_or("-")
                );
                return Ok(());
            }
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("no answer within {} s", target.timeout.as_secs()),
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

fn resolve(url: &UrlSource) -> Result<String, String> {
    match url {
        UrlSource::Inline(u) => Ok(u.clone()),
        UrlSource::Env(var) => std::env::var(var).map_err(|_| format!("{var} is not set")),
    }
}

async fn deliver(
    http: &reqwest::Client,
    target: &AlertConfig,
    event: &Event,
) -> Result<(), String> {
    let json = serde_json::to_string(event).map_err(|e| e.to_string())?;
    match &target.target {
        AlertTarget::Command(args) => {
            let Some((program, rest)) = args.split_first() else {
                return Err("empty command".into());
            };
            let mut child = tokio::process::Command::new(program)
                .args(rest)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot run: {e}"))?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin
                    .write_all(json.as_bytes())
                    .await
                    .map_err(|e| format!("cannot write its stdin: {e}"))?;
            }
            let status = child.wait().await.map_err(|e| e.to_string())?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("exited with {status}"))
            }
        }
        AlertTarget::Url { url, format } => {
            let url = resolve(url)?;
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
            let response = request
                .send()
                .await
                .map_err(|e| crate::graph::scrub(&e.without_url().to_string()))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("answered HTTP {}", response.status().as_u16()))
            }
        }
    }
}

/// Looks at the conditions every `every` and queues what to tell; never blocks on delivery.
pub async fn run(
    store: Store,
    every: Duration,
    tx: mpsc::Sender<Event>,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match evaluate(&store, Utc::now()).await {
            Ok(events) => {
                for e in events {
                    if tx.try_send(e).is_err() {
                        tracing::warn!(message = "alert queue full; an alert was dropped");
                    }
                }
            }
            Err(e) => tracing::warn!(message = "cannot evaluate alerts", error = %e),
        }
    }
}
