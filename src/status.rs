//! `igmod status` and `igmod audit`: what operators read, as a table or as JSON.

use std::fmt::Write as _;

use chrono::Utc;
use serde::Serialize;

use crate::config::{Config, Schedule};
use crate::store::{Activity, AuditFilter, AuditRow, Store, StoreError};
use crate::timefmt;

/// One account's state.
#[derive(Debug, Clone, Serialize)]
pub struct AccountStatus {
    pub account: String,
    pub ig_user_id: String,
    /// `ok`, `invalid`, or `unknown` before the first poll.
    pub token: String,
    pub token_problem: Option<String>,
    pub token_expires_at: Option<String>,
    /// Whole days until the token expires, when known.
    pub token_days_left: Option<i64>,
    /// A Page token (Facebook Login): it does not expire.
    pub token_never_expires: bool,
    /// `USER`/`PAGE` (Facebook Login with `[app]`).
    pub token_type: Option<String>,
    /// Whole days until Facebook data access ends (90 days without the user's activity).
    pub data_access_days_left: Option<i64>,
    /// The last time a validation found the token usable.
    pub token_validated_at: Option<String>,
    pub last_poll_at: Option<String>,
    pub last_poll_status: Option<String>,
    /// When the last webhook delivery for the account arrived.
    pub last_webhook_at: Option<String>,
    /// The igmod instance (`host:pid:nonce`) holding the account's lease now, if any.
    pub held_by: Option<String>,
    /// The database is shared by instances (PostgreSQL): the table says who holds what.
    #[serde(skip)]
    pub shared: bool,
    pub next_poll_at: Option<String>,
    pub configured_interval: String,
    pub effective_interval_secs: Option<i64>,
    pub calls_last_hour: i64,
    pub hourly_budget: u32,
    pub paused_until: Option<String>,
    pub paused_reason: Option<String>,
    /// Meta refuses the account's writes until then (4/2207051, 368): actions wait, polls go on.
    pub writes_paused_until: Option<String>,
    pub writes_paused_reason: Option<String>,
    pub usage_pct: Option<i64>,
    pub last_error: Option<String>,
    pub last_24h: Activity,
    /// `ok`, `STALLED`, `STOPPED` or `TOKEN ENDING`: what monitoring should act on.
    pub health: Health,
    /// Posts whose comments the raid guard holds off now.
    pub raid_closed: Vec<RaidPost>,
}

/// A post whose comments the raid guard switched off.
#[derive(Debug, Clone, Serialize)]
pub struct RaidPost {
    pub media_id: String,
    /// `closing` (switch not yet confirmed), `closed` or `reopening`.
    pub state: String,
    pub closed_at: Option<String>,
    pub reopen_at: Option<String>,
}

/// An account's health, worst first; `igmod status` exits with the worst one's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Health {
    /// Polling as scheduled (or paused by Meta's throttling, which ends by itself).
    Ok,
    /// The token ends within 3 days: a person must log in again soon. Exit code 1.
    TokenEnding,
    /// The last poll is older than 3 intervals: moderation has stopped. Exit code 2.
    Stalled,
    /// The token is dead: the account waits for a new one. Exit code 2.
    Stopped,
}

impl Health {
    /// The exit code of `igmod status` (Nagios plugin convention: 1 warning, 2 critical).
    pub fn exit_code(self) -> u8 {
        match self {
            Health::Ok => 0,
            Health::TokenEnding => 1,
            Health::Stalled | Health::Stopped => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::TokenEnding => "TOKEN ENDING",
            Health::Stalled => "STALLED",
            Health::Stopped => "STOPPED",
        }
    }
}

/// An account's health from what status gathered: a dead token stops it; a last poll older
/// than 3 intervals (or none 3 intervals after its first was due) means its loop is not
/// running; a token ending within 3 days needs a person soon.
fn health(r: &AccountStatus, interval_secs: Option<i64>, now: chrono::DateTime<Utc>) -> Health {
    if r.token == "invalid" {
        return Health::Stopped;
    }
    let paused = r.paused_until.is_some();
    let last = r
        .last_poll_at
        .as_deref()
        .or(r.next_poll_at.as_deref())
        .and_then(timefmt::parse);
    if let (Some(last), Some(every)) = (last, interval_secs.filter(|s| *s > 0))
        && !paused
        && (now - last).num_seconds() > every.saturating_mul(3)
    {
        return Health::Stalled;
    }
    if !r.token_never_expires && r.token_days_left.is_some_and(|d| d < 3) {
        return Health::TokenEnding;
    }
    Health::Ok
}

pub async fn status(config: &Config, store: &Store) -> Result<Vec<AccountStatus>, StoreError> {
    let now = Utc::now();
    let mut out = Vec::new();
    let webhooks = store.last_webhooks().await?;
    let stamp = timefmt::format(now);
    let holders: std::collections::HashMap<String, String> = store
        .leases()
        .await?
        .into_iter()
        .filter(|l| l.expires_at > stamp)
        .map(|l| (l.account, l.holder))
        .collect();
    for a in &config.accounts {
        let state = store.account_state(&a.name).await?;
        let token = store.token_health(&a.name).await?;
        let (calls, _) = store
            .calls_count_since(&a.name, now - chrono::Duration::hours(1), None)
            .await?;
        let paused = state
            .paused_until
            .clone()
            .filter(|p| timefmt::parse(p).is_some_and(|t| t > now));
        let writes_paused = state
            .writes_paused_until
            .clone()
            .filter(|p| timefmt::parse(p).is_some_and(|t| t > now));
        let mut row = AccountStatus {
            writes_paused_reason: writes_paused.as_ref().and(state.writes_paused_reason),
            writes_paused_until: writes_paused,
            account: a.name.clone(),
            ig_user_id: a.ig_user_id.clone(),
            token: token.as_ref().map_or_else(
                || "unknown".into(),
                |t| {
                    if t.status == "ok" && t.expiry_estimated {
                        "unverified".into()
                    } else {
                        t.status.clone()
                    }
                },
            ),
            token_days_left: days_left(token.as_ref().and_then(|t| t.expires_at.as_deref()), now),
            token_expires_at: token.as_ref().and_then(|t| t.expires_at.clone()),
            token_never_expires: token.as_ref().is_some_and(|t| t.never_expires),
            token_type: token.as_ref().and_then(|t| t.token_type.clone()),
            data_access_days_left: days_left(
                token
                    .as_ref()
                    .and_then(|t| t.data_access_expires_at.as_deref()),
                now,
            ),
            token_validated_at: token.as_ref().and_then(|t| t.validated_at.clone()),
            token_problem: token.and_then(|t| t.invalid_reason),
            last_poll_at: state.last_poll_at,
            last_poll_status: state.last_poll_status,
            last_webhook_at: webhooks.get(&a.name).cloned(),
            held_by: holders.get(&a.name).cloned(),
            shared: store.is_shared(),
            next_poll_at: state.next_due_at,
            configured_interval: match &a.schedule {
                Schedule::Every(d) => humantime::format_duration(*d).to_string(),
                Schedule::Cron(c) => format!("cron {c}"),
            },
            effective_interval_secs: state.effective_interval_secs,
            calls_last_hour: i64::from(calls),
            hourly_budget: a.hourly_budget,
            paused_reason: paused.as_ref().and(state.paused_reason),
            paused_until: paused,
            usage_pct: state.usage_pct,
            last_error: state.last_error,
            last_24h: store
                .activity(&a.name, now - chrono::Duration::hours(24))
                .await?,
            health: Health::Ok,
            raid_closed: store
                .raid_open_closures(Some(&a.name))
                .await?
                .into_iter()
                .map(|c| RaidPost {
                    media_id: c.media_id,
                    state: c.status,
                    closed_at: c.closed_at.map(timefmt::format),
                    reopen_at: c.reopen_at.map(timefmt::format),
                })
                .collect(),
        };
        let configured = match &a.schedule {
            Schedule::Every(d) => i64::try_from(d.as_secs()).ok(),
            Schedule::Cron(_) => None,
        };
        let interval = row.effective_interval_secs.max(configured);
        row.health = health(&row, interval, now);
        out.push(row);
    }
    Ok(out)
}

/// Whole days from `now` until a stored time, when there is one.
fn days_left(stored: Option<&str>, now: chrono::DateTime<Utc>) -> Option<i64> {
    stored
        .and_then(timefmt::parse)
        .map(|e| (e - now).num_days())
}

/// The instances alive now (seen within `ttl`), for the top of `igmod status`.
pub async fn instances(
    store: &Store,
    ttl: std::time::Duration,
) -> Result<Vec<crate::store::InstanceRow>, StoreError> {
    let since =
        Utc::now() - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(30));
    store.live_instances(since).await
}

/// The lines `igmod status` starts with: the live instances and how many accounts each holds.
pub fn instances_table(instances: &[crate::store::InstanceRow], rows: &[AccountStatus]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "instances: {} live", instances.len());
    for i in instances {
        let held = rows
            .iter()
            .filter(|r| r.held_by.as_deref() == Some(i.id.as_str()))
            .count();
        let _ = writeln!(
            s,
            "  {} (host {}, pid {}, since {}, seen {}): {held} account(s)",
            i.id, i.host, i.pid, i.started_at, i.seen_at
        );
    }
    s
}

/// The human table for `igmod status`.
pub fn status_table(rows: &[AccountStatus]) -> String {
    let mut s = String::new();
    for r in rows {
        let _ = writeln!(s, "{} (ig user {})", r.account, r.ig_user_id);
        let _ = writeln!(s, "  health:     {}", r.health.as_str());
        let mut token = match (&r.token_problem, r.token_days_left) {
            (Some(p), _) => format!("{} — {p}", r.token),
            (None, _) if r.token_never_expires => {
                format!("{}, never expires (Page token)", r.token)
            }
            (None, Some(days)) if r.token == "unverified" => format!(
                "unverified: Meta refused a refresh and never said when it ends; at most {days} days left"
            ),
            (None, Some(days)) => format!("{}, {days} days left", r.token),
            (None, None) => format!("{} (expiry unknown)", r.token),
        };
        if let Some(days) = r.data_access_days_left {
            let _ = write!(token, "; data access {days} days left");
        }
        let _ = writeln!(s, "  token:      {token}");
        let _ = writeln!(
            s,
            "  polls:      last {} ({}), next {}",
            r.last_poll_at.as_deref().unwrap_or("never"),
            r.last_poll_status.as_deref().unwrap_or("-"),
            r.next_poll_at.as_deref().unwrap_or("at start")
        );
        let _ = writeln!(
            s,
            "  webhooks:   last {}",
            r.last_webhook_at.as_deref().unwrap_or("never")
        );
        if r.shared {
            let _ = writeln!(
                s,
                "  instance:   {}",
                r.held_by
                    .as_deref()
                    .unwrap_or("none holds its lease (no igmod running for it)")
            );
        }
        let effective = r.effective_interval_secs.map_or_else(
            || "-".to_string(),
            |e| {
                humantime::format_duration(std::time::Duration::from_secs(e.max(0) as u64))
                    .to_string()
            },
        );
        let _ = writeln!(
            s,
            "  interval:   configured {}, effective {effective}",
            r.configured_interval
        );
        let usage = r
            .usage_pct
            .map_or_else(|| "unknown".to_string(), |u| format!("{u}%"));
        let _ = writeln!(
            s,
            "  budget:     {} of {} calls in the last hour; meta usage {usage}",
            r.calls_last_hour, r.hourly_budget
        );
        match (&r.paused_until, &r.paused_reason) {
            (Some(until), reason) => {
                let _ = writeln!(
                    s,
                    "  throttling: paused until {until} ({})",
                    reason.as_deref().unwrap_or("-")
                );
            }
            _ => {
                let _ = writeln!(s, "  throttling: none");
            }
        }
        if let Some(until) = &r.writes_paused_until {
            let _ = writeln!(
                s,
                "  writes:     paused until {until} ({}); polling goes on",
                r.writes_paused_reason.as_deref().unwrap_or("-")
            );
        }
        let a = &r.last_24h;
        let by: Vec<String> = a
            .by_action
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            s,
            "  last 24 h:  {} comments seen, {} decided ({}), {} actions applied, {} pending, {} failed",
            a.comments_seen,
            a.decided,
            if by.is_empty() {
                "none".to_string()
            } else {
                by.join(", ")
            },
            a.acted,
            a.pending_actions,
            a.failed_actions
        );
        if !r.raid_closed.is_empty() {
            let until = r
                .raid_closed
                .iter()
                .filter_map(|p| p.reopen_at.as_deref())
                .max()
                .unwrap_or("unknown");
            let posts: Vec<&str> = r.raid_closed.iter().map(|p| p.media_id.as_str()).collect();
            let _ = writeln!(
                s,
                "  raid guard: comments off on {} post(s) until {until} ({})",
                posts.len(),
                posts.join(", ")
            );
        }
        if let Some(e) = &r.last_error {
            let _ = writeln!(s, "  last error: {}", inert(e));
        }
    }
    s
}

/// `text` with every control and format character (escape sequences, bell, bidi overrides,
/// zero-width characters) written as its Rust escape, so text that came from a commenter or
/// from Meta is shown, never obeyed, by the operator's terminal.
pub fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{00AD}' | '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

pub async fn audit(store: &Store, filter: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
    store.audit(filter).await
}

/// The human table for `igmod audit`.
pub fn audit_table(rows: &[AuditRow]) -> String {
    let mut s = String::new();
    if rows.is_empty() {
        s.push_str("no decisions match\n");
    }
    for r in rows {
        let status = match (&r.action_status, r.dry_run) {
            (_, true) => "dry run".to_string(),
            (Some(st), false) if st == "failed" => match &r.action_error {
                Some(e) => format!("failed: {e}"),
                None => st.clone(),
            },
            (Some(st), false) => st.clone(),
            (None, false) => "recorded".to_string(),
        };
        let text: String = r.text.as_deref().unwrap_or("").chars().take(80).collect();
        // The reason quotes the comment, the username and the error come from Meta: none
        // may drive the operator's terminal.
        let _ = writeln!(
            s,
            "{} [{}] {} {} ({}) rule {}: {} — @{}: {text:?}",
            r.decided_at,
            r.account,
            inert(&r.comment_id),
            r.action,
            inert(&status),
            r.rule,
            inert(&r.reason),
            inert(r.username.as_deref().unwrap_or("?")),
        );
    }
    s
}
