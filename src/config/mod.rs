//! `config.toml` → [`Config`].
//!
//! Two stages, as ripgrep does with its arguments: [`RawConfig`] mirrors the file (serde,
//! unknown keys rejected, spans kept), and [`Config`] is resolved and validated (no `Option`
//! for required things). Validation reports every problem it finds, each as
//! `PATH:LINE:COL: message` naming the key.
//!
//! Whole on purpose: one problem list with spans threads through parsing and validation.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use std::sync::Arc;

use crate::rules::{Model, RuleSet};
use crate::secrets::TokenSource;

pub mod alert_kind;
pub mod database;
mod review;
mod rules;
pub mod schedule;

use alert_kind::{AlertKind, check_url};
use schedule::parse_cron;

pub use review::{DEFAULT_REVIEW_LISTEN, RemoveAction, ReviewConfig, Reviewer};

/// One thing wrong with a config file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- raw (mirrors the file)

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    graph: RawGraph,
    app: Option<Spanned<RawApp>>,
    webhook: Option<Spanned<RawWebhook>>,
    metrics: Option<Spanned<RawMetrics>>,
    review: Option<Spanned<review::RawReview>>,
    #[serde(default)]
    alerts: Vec<Spanned<RawAlert>>,
    #[serde(default)]
    accounts: Vec<RawAccount>,
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    rules: Vec<rules::RawRule>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    database: Option<Spanned<String>>,
    database_password_env: Option<Spanned<String>>,
    database_password_file: Option<Spanned<String>>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    log_format: LogFormat,
    log_dir: Option<Spanned<String>>,
    log_keep: Option<Spanned<i64>>,
    log_level: Option<Spanned<String>>,
    retain: Option<Spanned<String>>,
    token_check: Option<Spanned<String>>,
    alert_check: Option<Spanned<String>>,
    lease_ttl: Option<Spanned<String>>,
    lease_renew: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    app_id: Spanned<String>,
    app_secret_env: Option<Spanned<String>>,
    app_secret_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlert {
    on: Vec<Spanned<String>>,
    command: Option<Spanned<RawCommand>>,
    url: Option<Spanned<String>>,
    url_env: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

/// A command as one string (split at whitespace, no shell) or as its arguments.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawCommand {
    Line(String),
    Args(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    listen: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    verify_token_env: Option<Spanned<String>>,
    verify_token_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGraph {
    facebook_base_url: Option<Spanned<String>>,
    instagram_base_url: Option<Spanned<String>>,
    api_version: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: Spanned<String>,
    ig_user_id: Spanned<String>,
    login: Login,
    token_env: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    poll_interval: Option<Spanned<String>>,
    poll_cron: Option<Spanned<String>>,
    hourly_budget: Spanned<i64>,
    #[serde(default = "default_recent_media")]
    recent_media: Spanned<i64>,
    #[serde(default)]
    backfill: bool,
    rules: Option<Vec<Spanned<String>>>,
    action_reserve: Option<Spanned<i64>>,
    slowdown_at: Option<Spanned<i64>>,
    refresh_before: Option<Spanned<String>>,
    sweep_interval: Option<Spanned<String>>,
    sweep_posts: Option<Spanned<i64>>,
    raid_guard: Option<Spanned<RawRaidGuard>>,
}

/// `raid_guard = { max_comments = 20, within = "1m", close_for = "30m" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRaidGuard {
    max_comments: Spanned<i64>,
    within: Spanned<String>,
    close_for: Spanned<String>,
    #[serde(default)]
    dry_run: bool,
}

fn default_recent_media() -> Spanned<i64> {
    Spanned::new(0..0, 20)
}

// ---------------------------------------------------------------- resolved

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from.
    pub path: PathBuf,
    pub daemon: DaemonConfig,
    pub graph: GraphConfig,
    /// The Meta app, for Facebook Login token introspection and exchange, `appsecret_proof`
    /// and webhook signatures.
    pub app: Option<AppConfig>,
    /// The webhook receiver; `None`: polling only.
    pub webhook: Option<WebhookConfig>,
    /// `/metrics`, `/healthz`, `/readyz`; `None`: off.
    pub metrics: Option<MetricsConfig>,
    /// The review queue in the browser; `None`: off.
    pub review: Option<ReviewConfig>,
    /// Where alerts go without Prometheus (`[[alerts]]`).
    pub alerts: Vec<AlertConfig>,
    pub accounts: Vec<AccountConfig>,
    /// Every rule in the file, compiled, in file order.
    pub rules: RuleSet,
    /// With [`Secrets::Check`]: the variables found only in the service's environment file,
    /// not in this process's environment (names only, never values).
    pub from_env_file: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// A SQLite file (created with mode 0600 if missing) or a PostgreSQL server.
    pub database: database::Database,
    /// Decide and record, never hide or delete.
    pub dry_run: bool,
    pub log_format: LogFormat,
    /// Daily-rotated log files here; `None`: stderr (journald under systemd).
    pub log_dir: Option<PathBuf>,
    /// How many daily log files to keep.
    pub log_keep: usize,
    /// A `tracing` filter (`info`, `debug`, `info,igmod=debug`); `RUST_LOG` overrides it.
    pub log_level: Option<String>,
    /// Comment texts, usernames, reply texts and the call ledger older than this are pruned.
    pub retain: Duration,
    /// When every account's token is validated again (cron with seconds, UTC).
    pub token_check: String,
    /// How often `[[alerts]]` conditions are looked at.
    pub alert_check: Duration,
    /// How long an account's lease lasts without renewal: how long a dead instance's
    /// accounts wait before another instance takes them.
    pub lease_ttl: Duration,
    /// How often an instance renews its leases and rebalances.
    pub lease_renew: Duration,
}

/// `[app]`: the Meta app's id and where its secret lives (never inline, like tokens).
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub app_id: String,
    pub secret: TokenSource,
}

impl Config {
    /// Things that work but lose something, for `check-config` and the start-up log.
    pub fn notes(&self) -> Vec<String> {
        let facebook: Vec<&str> = self
            .accounts
            .iter()
            .filter(|a| a.login == Login::Facebook)
            .map(|a| a.name.as_str())
            .collect();
        let mut notes = Vec::new();
        if self.app.is_none() && !facebook.is_empty() {
            notes.push(format!(
                "no [app] section: the Facebook Login tokens of {} cannot be introspected or extended;                  igmod checks them with a plain call, cannot see their expiry, permissions or data-access                  expiry (status shows \"unknown\"), and cannot re-exchange a user token before it                  lapses. Add [app] app_id and app_secret_env or app_secret_file to get all of that.",
                facebook.join(", ")
            ));
        }
        notes.extend(self.review.iter().flat_map(ReviewConfig::notes));
        notes
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct GraphConfig {
    pub facebook_base_url: String,
    pub instagram_base_url: String,
    pub api_version: String,
    pub timeout: Duration,
}

/// Which login the account's token comes from; it decides the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Login {
    /// `graph.instagram.com`, Instagram user token.
    Instagram,
    /// `graph.facebook.com`, Facebook user or Page token.
    Facebook,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Every(Duration),
    /// A six- or seven-field cron expression (seconds first), evaluated in UTC.
    Cron(String),
}

#[derive(Debug, Clone)]
pub struct AccountConfig {
    pub name: String,
    pub ig_user_id: String,
    pub login: Login,
    pub token: TokenSource,
    pub schedule: Schedule,
    /// Graph API calls per rolling hour, all kinds, across restarts.
    pub hourly_budget: u32,
    /// How many newest media to watch.
    pub recent_media: u32,
    /// Percentage of `hourly_budget` that reads may not use (kept for hides, deletes, replies).
    pub action_reserve: u32,
    /// Meta usage percentage above which polls slow down.
    pub slowdown_at: u32,
    /// Refresh an Instagram Login token when less than this remains.
    pub refresh_before: Duration,
    /// Moderate comments that were already there at the first poll.
    pub backfill: bool,
    /// How often the most recently active posts are re-read in full (replies on older threads
    /// that leave the counts unchanged are found only so).
    pub sweep_interval: Duration,
    /// How many posts each sweep re-reads; 0 switches sweeps off.
    pub sweep_posts: u32,
    /// The rules that apply to this account, in file order: one compiled set shared by every
    /// account that selects the same rules (regex caches and automata are per set, so a copy
    /// per account cost tens of KB each).
    pub rules: Arc<RuleSet>,
    /// Names of those rules (for summaries).
    pub rule_names: Vec<String>,
    /// Those rules as written (a reload restarts the account when they change).
    pub rule_specs: Arc<[crate::rules::RuleSpec]>,
    /// Turns a post's comments off during a bot raid; `None`: off.
    pub raid_guard: Option<RaidGuard>,
}

/// When more than `max_comments` comments on one post are hidden or deleted within `within`,
/// the post's comments are switched off for `close_for` (see [`crate::raid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaidGuard {
    pub max_comments: u32,
    pub within: Duration,
    pub close_for: Duration,
    /// Log what the guard would do, switch nothing (the daemon's `dry_run` does it too).
    pub dry_run: bool,
}

impl AccountConfig {
    /// Every setting but the rules, as text (a reload compares it).
    pub fn describe(&self) -> String {
        format!(
            "{} {} {:?} {:?} {:?} {} {} {} {} {} {:?} {:?} {} {:?}",
            self.name,
            self.ig_user_id,
            self.login,
            self.token,
            self.schedule,
            self.hourly_budget,
            self.recent_media,
            self.backfill,
            self.action_reserve,
            self.slowdown_at,
            self.refresh_before,
            self.sweep_interval,
            self.sweep_posts,
            self.raid_guard
        )
    }
}

impl GraphConfig {
    /// The base URL for an account's login.
    pub fn base_url(&self, login: Login) -> &str {
        match login {
            Login::Instagram => &self.instagram_base_url,
            Login::Facebook => &self.facebook_base_url,
        }
    }
}

/// `[webhook]`: where Meta's deliveries are received (plain HTTP behind a TLS proxy) and the
/// verify token Meta echoes when the callback URL is registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub listen: std::net::SocketAddr,
    pub path: String,
    pub verify_token: TokenSource,
}

/// `[metrics]`: where `/metrics`, `/healthz` and `/readyz` are served (the webhook receiver's
/// server when the address is the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: std::net::SocketAddr,
}

/// `[[alerts]]`: which events go where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertConfig {
    pub on: Vec<AlertKind>,
    pub target: AlertTarget,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertTarget {
    /// Run with the event as JSON on stdin; no shell.
    Command(Vec<String>),
    /// POST the event (`json`), a Slack-style `{"text": …}` (`slack`) or the summary as plain
    /// text (`text`, for ntfy). The URL may hold a secret (Slack's do): never logged.
    Url { url: UrlSource, format: AlertFormat },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    Inline(String),
    Env(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertFormat {
    Json,
    Slack,
    Text,
}

/// Where the metrics are served unless `listen` says otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// Where the webhook receiver listens unless `listen` says otherwise.
pub const DEFAULT_WEBHOOK_LISTEN: &str = "127.0.0.1:8787";

// ---------------------------------------------------------------- loading

/// Whether a config's token and app secret sources must hold something now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// `run` and the commands that call Meta: a missing token is an error now, not a poll
    /// error later.
    Required,
    /// `check-config`: as `Required`, but a variable may instead be defined in the service's
    /// environment file (`secrets::service_env_file`), which systemd loads for the daemon and a
    /// shell does not.
    Check,
    /// Commands that only read the database or run the rules (`status`, `audit`, `rules …`):
    /// they work from a shell where the service's tokens are not (sudo drops the variables,
    /// `LoadCredential` files exist only inside the service).
    NotNeeded,
}

/// The longest `retain`: longer ones are surely typos, and a time that far back is outside
/// what the clock arithmetic can hold.
const MAX_RETAIN: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, Secrets::Required)
}

/// [`load`], saying whether the secrets must be present.
pub fn load_with(path: &Path, secrets: Secrets) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_with(path, &text, secrets),
        Err(e) => Err(ConfigError {
            problems: vec![Problem {
                path: path.to_path_buf(),
                line: 1,
                col: 1,
                message: format!("cannot read config file: {e}"),
            }],
        }),
    }
}

impl Config {
    /// This config with every classifier condition's model replaced by `model` (to see what
    /// a new model would change before it is switched on).
    pub fn with_model(&self, model: &Arc<Model>) -> Config {
        let mut c = self.clone();
        c.rules = c.rules.with_models(|_| model.clone());
        for a in &mut c.accounts {
            a.rules = Arc::new(a.rules.with_models(|_| model.clone()));
        }
        c
    }
}

/// Validates config text as if it were the file at `path` (relative token files and
/// messages are resolved against it).
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    parse_with(path, text, Secrets::Required)
}

/// [`parse`], saying whether the secrets must be present.
pub fn parse_with(path: &Path, text: &str, secrets: Secrets) -> Result<Config, ConfigError> {
    let mut v = Validator {
        files: vec![(path.to_path_buf(), text.to_string())],
        file: 0,
        problems: Vec::new(),
        models: HashMap::new(),
        selections: HashMap::new(),
        secrets,
        from_env_file: Vec::new(),
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            v.problem(&span, e.message().trim().to_string());
            return Err(v.finish());
        }
    };
    let config = v.resolve(raw);
    match config {
        Some(c) if v.problems.is_empty() => Ok(c),
        _ => Err(v.finish()),
    }
}

/// Collects problems across the config file and the rule files it includes.
/// One compiled rule selection and its rules as written.
type Selection = (Arc<RuleSet>, Arc<[crate::rules::RuleSpec]>);

struct Validator {
    /// (path, text) of every file read; 0 is config.toml.
    files: Vec<(PathBuf, String)>,
    /// The file spans refer to.
    file: usize,
    /// (file index, problem)
    problems: Vec<(usize, Problem)>,
    /// Model files read so far (path as resolved → the model, or why it cannot be used).
    models: HashMap<PathBuf, Result<Arc<Model>, String>>,
    /// Rule selections compiled so far: accounts with the same rules share one set.
    selections: HashMap<Vec<String>, Selection>,
    secrets: Secrets,
    /// Variables found only in the service's environment file (`Secrets::Check`).
    from_env_file: Vec<String>,
}

impl Validator {
    fn path(&self) -> &Path {
        &self.files[0].0
    }

    fn text(&self) -> &str {
        &self.files[self.file].1
    }

    fn problem(&mut self, span: &Range<usize>, message: String) {
        let (path, text) = &self.files[self.file];
        let (line, col) = line_col(text, span.start);
        let problem = Problem {
            path: path.clone(),
            line,
            col,
            message,
        };
        self.problems.push((self.file, problem));
    }

    fn finish(mut self) -> ConfigError {
        self.problems.sort_by_key(|(f, p)| (*f, p.line, p.col));
        ConfigError {
            problems: self.problems.into_iter().map(|(_, p)| p).collect(),
        }
    }

    /// The model a `classifier` condition names (relative to config.toml), read once.
    fn model(&mut self, path: &Spanned<String>) -> Option<Arc<Model>> {
        let base = self.path().parent().unwrap_or(Path::new("."));
        let full = base.join(path.get_ref());
        let loaded = self
            .models
            .entry(full.clone())
            .or_insert_with(|| crate::training::load_shared(&full).map_err(|e| e.to_string()))
            .clone();
        match loaded {
            Ok(model) => Some(model),
            Err(e) => {
                self.problem(&path.span(), format!("rules.classifier.model: {e}"));
                None
            }
        }
    }

    /// An optional duration key: `default` when absent, refused (with `bounds` in the message)
    /// outside `min..=max`.
    fn bounded_duration(
        &mut self,
        key: &str,
        value: Option<&Spanned<String>>,
        default: Duration,
        (min, max): (Duration, Duration),
        bounds: &str,
    ) -> Option<Duration> {
        let Some(value) = value else {
            return Some(default);
        };
        let d = self.duration(key, value)?;
        if d < min || d > max {
            self.problem(&value.span(), format!("{key}: must be between {bounds}"));
            return None;
        }
        Some(d)
    }

    fn duration(&mut self, key: &str, value: &Spanned<String>) -> Option<Duration> {
        match humantime::parse_duration(value.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(
                    &value.span(),
                    format!("{key}: invalid duration {:?}: {e}", value.get_ref()),
                );
                None
            }
        }
    }

    fn resolve(&mut self, raw: RawConfig) -> Option<Config> {
        let daemon = self.daemon(raw.daemon);
        let graph = self.graph(raw.graph);
        let app_present = raw.app.is_some();
        let app = raw.app.and_then(|a| self.app(a));
        let webhook = raw.webhook.and_then(|w| self.webhook(w, app_present));
        let alerts = raw
            .alerts
            .into_iter()
            .filter_map(|a| self.alert(a))
            .collect();
        let metrics = raw.metrics.and_then(|m| {
            let listen = self.address(
                "metrics.listen",
                m.into_inner().listen.as_ref(),
                DEFAULT_METRICS_LISTEN,
            )?;
            Some(MetricsConfig { listen })
        });
        let review = raw.review.and_then(|r| self.review(r));
        let (rules, names) = self.rules(raw.rules, &raw.include);
        let mut accounts = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        if raw.accounts.is_empty() {
            // Points at a commented-out account (the packaged config has one) if there is one.
            let at = self
                .text()
                .match_indices("[[accounts]]")
                .map(|(at, _)| at)
                .next()
                .unwrap_or(0);
            self.problem(
                &(at..at),
                "accounts: no [[accounts]] configured, so igmod has nothing to moderate: \
                 uncomment the example account here (or write one with `igmod init --force`)"
                    .to_string(),
            );
        }
        for account in raw.accounts {
            let name = account.name.get_ref().clone();
            if let Some(line) = seen.get(&name) {
                let msg = format!(
                    "accounts.name: duplicate account name {name:?} (first defined on line {line})"
                );
                self.problem(&account.name.span(), msg);
            } else {
                let (line, _) = line_col(self.text(), account.name.span().start);
                seen.insert(name, line);
            }
            if let Some(a) = self.account(account, &rules, &names) {
                accounts.push(a);
            }
        }
        Some(Config {
            path: self.path().to_path_buf(),
            daemon,
            graph: graph?,
            accounts,
            rules: rules?,
            app,
            webhook,
            metrics,
            review,
            alerts,
            from_env_file: std::mem::take(&mut self.from_env_file),
        })
    }

    fn daemon(&mut self, raw: RawDaemon) -> DaemonConfig {
        let database = self.database(
            raw.database,
            raw.database_password_env,
            raw.database_password_file,
        );
        let log_keep = match raw.log_keep {
            Some(k) if !(1..=3650).contains(k.get_ref()) => {
                self.problem(
                    &k.span(),
                    format!(
                        "daemon.log_keep: {} must be between 1 and 3650",
                        k.get_ref()
                    ),
                );
                14
            }
            Some(k) => *k.get_ref() as usize,
            None => 14,
        };
        let bad_level = raw.log_level.as_ref().and_then(|level| {
            tracing_subscriber::EnvFilter::try_new(level.get_ref())
                .err()
                .map(|e| {
                    (
                        level.span(),
                        format!(
                            "daemon.log_level: invalid filter {:?}: {e}",
                            level.get_ref()
                        ),
                    )
                })
        });
        if let Some((span, message)) = bad_level {
            self.problem(&span, message);
        }
        let retain = match &raw.retain {
            None => Duration::from_secs(90 * 86_400),
            Some(r) => match self.duration("daemon.retain", r) {
                Some(d) if d < Duration::from_secs(86_400) => {
                    self.problem(&r.span(), "daemon.retain: must be at least 1d".into());
                    d
                }
                Some(d) if d > MAX_RETAIN => {
                    self.problem(&r.span(), "daemon.retain: must be at most 100years".into());
                    d
                }
                Some(d) => d,
                None => Duration::from_secs(90 * 86_400),
            },
        };
        let token_check = match raw.token_check {
            None => "0 0 */6 * * *".to_string(),
            Some(c) => {
                if let Err(e) = parse_cron(c.get_ref()) {
                    self.problem(&c.span(), format!("daemon.token_check: {e}"));
                }
                c.into_inner()
            }
        };
        let alert_check = self
            .bounded_duration(
                "daemon.alert_check",
                raw.alert_check.as_ref(),
                Duration::from_secs(60),
                (Duration::from_secs(1), Duration::from_secs(3600)),
                "1s and 1h",
            )
            .unwrap_or(Duration::from_secs(60));
        let lease_ttl = self
            .bounded_duration(
                "daemon.lease_ttl",
                raw.lease_ttl.as_ref(),
                Duration::from_secs(30),
                (Duration::from_secs(3), Duration::from_secs(600)),
                "3s and 10min",
            )
            .unwrap_or(Duration::from_secs(30));
        let lease_renew = self
            .bounded_duration(
                "daemon.lease_renew",
                raw.lease_renew.as_ref(),
                Duration::from_secs(10),
                (Duration::from_secs(1), Duration::from_secs(300)),
                "1s and 5min",
            )
            .unwrap_or(Duration::from_secs(10));
        if let Some(renew) = raw.lease_renew.as_ref()
            && lease_renew.saturating_mul(2) > lease_ttl
        {
            self.problem(
                &renew.span(),
                format!(
                    "daemon.lease_renew: {} must be at most half of lease_ttl ({}), or one late renewal loses every lease",
                    humantime::format_duration(lease_renew),
                    humantime::format_duration(lease_ttl)
                ),
            );
        }
        DaemonConfig {
            alert_check,
            lease_ttl,
            lease_renew,
            database,
            dry_run: raw.dry_run,
            log_format: raw.log_format,
            log_dir: raw.log_dir.map(|d| PathBuf::from(d.into_inner())),
            log_keep,
            log_level: raw.log_level.map(Spanned::into_inner),
            retain,
            token_check,
        }
    }

    fn alert(&mut self, raw: Spanned<RawAlert>) -> Option<AlertConfig> {
        let span = raw.span();
        let raw = raw.into_inner();
        let mut on = Vec::new();
        for kind in &raw.on {
            match AlertKind::parse(kind.get_ref()) {
                Some(k) => on.push(k),
                None => self.problem(
                    &kind.span(),
                    format!(
                        "alerts.on: {:?} is not one of {}",
                        kind.get_ref(),
                        AlertKind::NAMES.join(", ")
                    ),
                ),
            }
        }
        if raw.on.is_empty() {
            self.problem(&span, "alerts.on: name at least one event".into());
        }
        let timeout = self.bounded_duration(
            "alerts.timeout",
            raw.timeout.as_ref(),
            Duration::from_secs(10),
            (Duration::from_secs(1), Duration::from_secs(300)),
            "1s and 5m",
        );
        let format = match raw
            .format
            .as_ref()
            .map(|f| (f.get_ref().as_str(), f.span()))
        {
            None | Some(("json", _)) => Some(AlertFormat::Json),
            Some(("slack", _)) => Some(AlertFormat::Slack),
            Some(("text", _)) => Some(AlertFormat::Text),
            Some((other, span)) => {
                self.problem(
                    &span,
                    format!("alerts.format: {other:?} must be \"json\", \"slack\" or \"text\""),
                );
                None
            }
        };
        let target = match (raw.command, raw.url, raw.url_env) {
            (Some(c), None, None) => {
                let span = c.span();
                let args = match c.into_inner() {
                    RawCommand::Line(l) => l.split_whitespace().map(str::to_string).collect(),
                    RawCommand::Args(a) => a,
                };
                if args.first().is_none_or(|p| !p.starts_with('/')) {
                    self.problem(
                        &span,
                        "alerts.command: must start with an absolute path (it runs without a shell)".into(),
                    );
                    None
                } else {
                    Some(AlertTarget::Command(args))
                }
            }
            (None, Some(u), None) => match check_url(u.get_ref()) {
                Ok(()) => Some(AlertTarget::Url {
                    url: UrlSource::Inline(u.get_ref().clone()),
                    format: format?,
                }),
                Err(refusal) => {
                    self.problem(&u.span(), format!("alerts.url: {refusal}"));
                    None
                }
            },
            (None, None, Some(e)) => {
                if self.secrets != Secrets::NotNeeded && !self.env_var_set(e.get_ref()) {
                    self.problem(
                        &e.span(),
                        format!(
                            "alerts.url_env: environment variable {} is not set",
                            e.get_ref()
                        ),
                    );
                } else if let Some(Err(refusal)) =
                    std::env::var(e.get_ref()).ok().map(|u| check_url(&u))
                {
                    // The URL itself is never shown: it may hold a secret.
                    self.problem(
                        &e.span(),
                        format!("alerts.url_env: the URL in {}: {refusal}", e.get_ref()),
                    );
                }
                Some(AlertTarget::Url {
                    url: UrlSource::Env(e.get_ref().clone()),
                    format: format?,
                })
            }
            _ => {
                self.problem(
                    &span,
                    "alerts: give exactly one of command, url or url_env".into(),
                );
                None
            }
        };
        Some(AlertConfig {
            on,
            target: target?,
            timeout: timeout?,
        })
    }

    /// An `address:port` key (`default` when absent).
    fn address(
        &mut self,
        key: &str,
        value: Option<&Spanned<String>>,
        default: &str,
    ) -> Option<std::net::SocketAddr> {
        let Some(v) = value else {
            return default.parse().ok();
        };
        match v.get_ref().parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.problem(
                    &v.span(),
                    format!(
                        "{key}: {:?} is not an address and port like {default:?}",
                        v.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn webhook(&mut self, raw: Spanned<RawWebhook>, app: bool) -> Option<WebhookConfig> {
        let span = raw.span();
        let raw = raw.into_inner();
        if !app {
            self.problem(
                &span,
                "webhook: needs [app] with app_secret_env or app_secret_file: Meta signs every delivery with the app secret".into(),
            );
        }
        let listen = self.address(
            "webhook.listen",
            raw.listen.as_ref(),
            DEFAULT_WEBHOOK_LISTEN,
        );
        let path = match &raw.path {
            None => Some("/webhook".to_string()),
            Some(p) if p.get_ref().starts_with('/') && !p.get_ref().contains(['?', '#', ' ']) => {
                Some(p.get_ref().clone())
            }
            Some(p) => {
                self.problem(
                    &p.span(),
                    format!(
                        "webhook.path: {:?} must start with / and hold no query",
                        p.get_ref()
                    ),
                );
                None
            }
        };
        let verify_token = self.secret_source(
            "webhook.verify_token_env",
            "webhook.verify_token_file",
            raw.verify_token_env,
            raw.verify_token_file,
            &span,
            "webhook: [webhook] needs verify_token_env or verify_token_file (the token you type into Meta's dashboard with the callback URL)",
        );
        Some(WebhookConfig {
            listen: listen?,
            path: path?,
            verify_token: verify_token?,
        })
    }

    /// `daemon.database` and, for PostgreSQL, where its password is.
    fn database(
        &mut self,
        value: Option<Spanned<String>>,
        password_env: Option<Spanned<String>>,
        password_file: Option<Spanned<String>>,
    ) -> database::Database {
        use database::Database;
        let fallback = Database::Sqlite(PathBuf::from("/var/lib/igmod/igmod.db"));
        let Some(value) = value else {
            if let Some(key) = password_env.as_ref().or(password_file.as_ref()) {
                self.problem(
                    &key.span(),
                    "daemon.database_password_*: only for a postgres:// database".into(),
                );
            }
            return fallback;
        };
        if value.get_ref().trim().is_empty() {
            self.problem(&value.span(), "daemon.database: must not be empty".into());
            return fallback;
        }
        let is_url = value.get_ref().contains("://");
        let password = match (&password_env, &password_file) {
            (None, None) => None,
            (Some(key), _) | (None, Some(key)) if !is_url => {
                self.problem(
                    &key.span(),
                    "daemon.database_password_*: only for a postgres:// database".into(),
                );
                None
            }
            _ => self.secret_source(
                "daemon.database_password_env",
                "daemon.database_password_file",
                password_env,
                password_file,
                &value.span(),
                "",
            ),
        };
        match Database::parse(value.get_ref(), password) {
            Ok(db) if is_url && !db.is_postgres() => {
                self.problem(
                    &value.span(),
                    "daemon.database: only postgres:// and postgresql:// URLs are supported; anything else is a SQLite file path".into(),
                );
                fallback
            }
            Ok(db) => db,
            Err(e) => {
                self.problem(&value.span(), format!("daemon.database: {e}"));
                fallback
            }
        }
    }

    fn app(&mut self, raw: Spanned<RawApp>) -> Option<AppConfig> {
        let span = raw.span();
        let raw = raw.into_inner();
        let id = raw.app_id.get_ref();
        let mut ok = true;
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            self.problem(
                &raw.app_id.span(),
                format!("app.app_id: {id:?} must be the numeric app id in a string"),
            );
            ok = false;
        }
        let secret = self.secret_source(
            "app.app_secret_env",
            "app.app_secret_file",
            raw.app_secret_env,
            raw.app_secret_file,
            &span,
            "app: [app] needs app_secret_env or app_secret_file",
        );
        Some(AppConfig {
            app_id: id.clone(),
            secret: secret.filter(|_| ok)?,
        })
    }

    /// Whether an environment variable holds something: in this process's environment, or,
    /// for `check-config`, in the service's environment file (noted in `from_env_file`).
    fn env_var_set(&mut self, var: &str) -> bool {
        if std::env::var(var).is_ok_and(|v| !v.trim().is_empty()) {
            return true;
        }
        let in_file = self.secrets == Secrets::Check
            && crate::secrets::env_file_defines(
                &crate::secrets::service_env_file(self.path()),
                var,
            );
        if in_file && !self.from_env_file.iter().any(|v| v == var) {
            self.from_env_file.push(var.to_string());
        }
        in_file
    }

    /// A secret's source: exactly one of an environment variable or a file, which must hold
    /// something now (a missing token is a start-up error, not a poll error later).
    fn secret_source(
        &mut self,
        env_key: &str,
        file_key: &str,
        env: Option<Spanned<String>>,
        file: Option<Spanned<String>>,
        span: &Range<usize>,
        missing: &str,
    ) -> Option<TokenSource> {
        let required = self.secrets != Secrets::NotNeeded;
        match (env, file) {
            (Some(env), None) if !required => Some(TokenSource::Env(env.get_ref().clone())),
            (None, Some(file)) if !required => Some(TokenSource::File(
                crate::secrets::resolve_token_path(self.path(), file.get_ref()),
            )),
            (Some(env), None) => {
                let var = env.get_ref();
                match self.env_var_set(var) {
                    true => Some(TokenSource::Env(var.clone())),
                    false => {
                        self.problem(
                            &env.span(),
                            format!("{env_key}: environment variable {var} is not set or empty"),
                        );
                        None
                    }
                }
            }
            (None, Some(file)) => {
                let path = crate::secrets::resolve_token_path(self.path(), file.get_ref());
                match crate::secrets::read_token_file(&path) {
                    Ok(_) => Some(TokenSource::File(path)),
                    Err(e) => {
                        self.problem(&file.span(), format!("{file_key}: {e}"));
                        None
                    }
                }
            }
            (Some(env), Some(_)) => {
                let short = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
                self.problem(
                    &env.span(),
                    format!(
                        "{env_key}: set either {} or {}, not both",
                        short(env_key),
                        short(file_key)
                    ),
                );
                None
            }
            (None, None) => {
                self.problem(span, missing.to_string());
                None
            }
        }
    }

    fn graph(&mut self, raw: RawGraph) -> Option<GraphConfig> {
        let url = |v: &mut Self, key: &str, value: Option<Spanned<String>>, default: &str| {
            let Some(value) = value else {
                return Some(default.to_string());
            };
            match url::Url::parse(value.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.query().is_none() => {
                    Some(value.get_ref().trim_end_matches('/').to_string())
                }
                _ => {
                    v.problem(
                        &value.span(),
                        format!(
                            "graph.{key}: {:?} is not an http(s) URL without a query",
                            value.get_ref()
                        ),
                    );
                    None
                }
            }
        };
        let facebook = url(
            self,
            "facebook_base_url",
            raw.facebook_base_url,
            "https://graph.facebook.com",
        );
        let instagram = url(
            self,
            "instagram_base_url",
            raw.instagram_base_url,
            "https://graph.instagram.com",
        );
        let api_version = match raw.api_version {
            None => Some("v25.0".to_string()),
            Some(v) => {
                let s = v.get_ref();
                let ok = s
                    .strip_prefix('v')
                    .and_then(|r| r.split_once('.'))
                    .is_some_and(|(a, b)| {
                        !a.is_empty()
                            && !b.is_empty()
                            && a.chars().all(|c| c.is_ascii_digit())
                            && b.chars().all(|c| c.is_ascii_digit())
                    });
                if ok {
                    Some(s.clone())
                } else {
                    self.problem(
                        &v.span(),
                        format!("graph.api_version: {s:?} is not a version like \"v25.0\""),
                    );
                    None
                }
            }
        };
        let timeout = match raw.timeout {
            None => Some(Duration::from_secs(30)),
            Some(t) => match self.duration("graph.timeout", &t) {
                Some(d) if d.is_zero() => {
                    self.problem(&t.span(), "graph.timeout: must be more than 0".into());
                    None
                }
                d => d,
            },
        };
        Some(GraphConfig {
            facebook_base_url: facebook?,
            instagram_base_url: instagram?,
            api_version: api_version?,
            timeout: timeout?,
        })
    }

    fn account(
        &mut self,
        raw: RawAccount,
        rules: &Option<RuleSet>,
        names: &rules::RuleNames,
    ) -> Option<AccountConfig> {
        let before = self.problems.len();
        let name = raw.name.get_ref().clone();
        if name.trim().is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.problem(
                &raw.name.span(),
                format!(
                    "accounts.name: {name:?} must be non-empty letters, digits, '-', '_' or '.'"
                ),
            );
        }
        let id = raw.ig_user_id.get_ref();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            self.problem(
                &raw.ig_user_id.span(),
                format!("accounts.ig_user_id: {id:?} must be a numeric id in a string"),
            );
        }
        let token = self.secret_source(
            "accounts.token_env",
            "accounts.token_file",
            raw.token_env,
            raw.token_file,
            &raw.name.span(),
            &format!("accounts: account {name:?} needs token_env or token_file"),
        );
        let schedule = match (raw.poll_interval, raw.poll_cron) {
            (Some(every), None) => match self.duration("accounts.poll_interval", &every) {
                Some(d) if d < Duration::from_secs(1) || d > Duration::from_secs(86_400) => {
                    self.problem(
                        &every.span(),
                        "accounts.poll_interval: must be between 1s and 24h".into(),
                    );
                    None
                }
                d => d.map(Schedule::Every),
            },
            (None, Some(cron)) => match parse_cron(cron.get_ref()) {
                Ok(_) => Some(Schedule::Cron(cron.get_ref().clone())),
                Err(e) => {
                    self.problem(&cron.span(), format!("accounts.poll_cron: {e}"));
                    None
                }
            },
            (Some(every), Some(_)) => {
                self.problem(
                    &every.span(),
                    "accounts.poll_interval: set either poll_interval or poll_cron, not both"
                        .into(),
                );
                None
            }
            (None, None) => {
                self.problem(
                    &raw.name.span(),
                    format!("accounts: account {name:?} needs poll_interval or poll_cron"),
                );
                None
            }
        };
        let budget = *raw.hourly_budget.get_ref();
        if !(1..=1_000_000).contains(&budget) {
            self.problem(
                &raw.hourly_budget.span(),
                format!("accounts.hourly_budget: {budget} must be between 1 and 1000000"),
            );
        }
        let percent = |v: &mut Self,
                       key: &str,
                       value: &Option<Spanned<i64>>,
                       default: i64,
                       range: std::ops::RangeInclusive<i64>| {
            let Some(value) = value else {
                return default as u32;
            };
            let n = *value.get_ref();
            if !range.contains(&n) {
                v.problem(
                    &value.span(),
                    format!(
                        "accounts.{key}: {n} must be a percentage between {} and {}",
                        range.start(),
                        range.end()
                    ),
                );
            }
            n.clamp(0, 100) as u32
        };
        let refresh_before = self.bounded_duration(
            "accounts.refresh_before",
            raw.refresh_before.as_ref(),
            Duration::from_secs(10 * 86_400),
            (
                Duration::from_secs(86_400),
                Duration::from_secs(59 * 86_400),
            ),
            "1d and 59d",
        );
        let sweep_interval = self.bounded_duration(
            "accounts.sweep_interval",
            raw.sweep_interval.as_ref(),
            Duration::from_secs(3600),
            (Duration::from_secs(1), Duration::from_secs(7 * 86_400)),
            "1s and 7d",
        );
        let sweep_posts = raw.sweep_posts.as_ref().map_or(3, |n| *n.get_ref());
        if let Some(n) = &raw.sweep_posts
            && !(0..=20).contains(&sweep_posts)
        {
            self.problem(
                &n.span(),
                format!("accounts.sweep_posts: {sweep_posts} must be between 0 and 20"),
            );
        }
        let raid_guard = raw
            .raid_guard
            .as_ref()
            .map(|g| self.raid_guard(g.get_ref()));
        let action_reserve = percent(self, "action_reserve", &raw.action_reserve, 20, 0..=90);
        let slowdown_at = percent(self, "slowdown_at", &raw.slowdown_at, 75, 1..=94);
        let recent = *raw.recent_media.get_ref();
        if !(1..=100).contains(&recent) {
            self.problem(
                &raw.recent_media.span(),
                format!("accounts.recent_media: {recent} must be between 1 and 100"),
            );
        }
        let selected: Vec<String> = match &raw.rules {
            None => names.rules.clone(),
            Some(list) => {
                let mut selected = Vec::new();
                for r in list {
                    match names.resolve(r.get_ref()) {
                        Some(found) => selected.extend(found),
                        None => {
                            let sets = names.set_names();
                            let sets = if sets.is_empty() {
                                String::new()
                            } else {
                                format!("; rule sets: {}", sets.join(", "))
                            };
                            self.problem(
                                &r.span(),
                                format!(
                                    "accounts.rules: no rule or rule set named {:?} (rules: {}{sets})",
                                    r.get_ref(),
                                    names.rules.join(", "),
                                ),
                            )
                        }
                    }
                }
                selected
            }
        };
        if self.problems.len() != before {
            return None;
        }
        let (rules, rule_specs) = match self.selections.get(&selected) {
            Some(shared) => shared.clone(),
            None => {
                let set = Arc::new(rules.as_ref()?.select(&selected));
                let specs: Arc<[crate::rules::RuleSpec]> = names
                    .specs
                    .iter()
                    .filter(|s| set.names().any(|n| n == s.name))
                    .cloned()
                    .collect();
                self.selections
                    .insert(selected.clone(), (set.clone(), specs.clone()));
                (set, specs)
            }
        };
        let rule_names: Vec<String> = rules.names().map(str::to_string).collect();
        Some(AccountConfig {
            name,
            ig_user_id: id.clone(),
            login: raw.login,
            token: token?,
            schedule: schedule?,
            hourly_budget: u32::try_from(budget).ok()?,
            recent_media: u32::try_from(recent).ok()?,
            action_reserve,
            slowdown_at,
            refresh_before: refresh_before?,
            backfill: raw.backfill,
            sweep_interval: sweep_interval?,
            sweep_posts: u32::try_from(sweep_posts).ok()?,
            rules,
            rule_names,
            rule_specs,
            raid_guard: raid_guard.flatten(),
        })
    }

    /// An account's `raid_guard` table; `None` (with problems recorded) when it is invalid.
    fn raid_guard(&mut self, raw: &RawRaidGuard) -> Option<RaidGuard> {
        let max = *raw.max_comments.get_ref();
        let max_comments = match u32::try_from(max) {
            Ok(n) if (1..=10_000).contains(&n) => Some(n),
            _ => {
                self.problem(
                    &raw.max_comments.span(),
                    format!("accounts.raid_guard.max_comments: {max} must be between 1 and 10000"),
                );
                None
            }
        };
        let within = self.bounded_duration(
            "accounts.raid_guard.within",
            Some(&raw.within),
            Duration::ZERO,
            (Duration::from_secs(1), Duration::from_secs(86_400)),
            "1s and 1d",
        );
        let close_for = self.bounded_duration(
            "accounts.raid_guard.close_for",
            Some(&raw.close_for),
            Duration::ZERO,
            (Duration::from_secs(10), Duration::from_secs(7 * 86_400)),
            "10s and 7d",
        );
        Some(RaidGuard {
            max_comments: max_comments?,
            within: within?,
            close_for: close_for?,
            dry_run: raw.dry_run,
        })
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit_once('\n')
        .map_or(before, |(_, l)| l)
        .chars()
        .count()
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[daemon]
database = "/tmp/x.db"

[[accounts]]
name = "acme"
ig_user_id = "1784"
login = "instagram"
token_env = "PATH"
poll_interval = "2m"
hourly_budget = 200

[[rules]]
name = "scam"
action = "delete"
words = ["forex"]
"#;

    fn problems(text: &str) -> Vec<String> {
        match parse(Path::new("c.toml"), text) {
            Ok(_) => vec![],
            Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn good_config_resolves_defaults() {
        let c = parse(Path::new("c.toml"), GOOD).map_err(|e| e.to_string());
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.graph.api_version, "v25.0");
        assert_eq!(c.graph.timeout, Duration::from_secs(30));
        assert_eq!(c.accounts[0].recent_media, 20);
        assert_eq!(
            c.accounts[0].schedule,
            Schedule::Every(Duration::from_secs(120))
        );
        assert_eq!(c.accounts[0].rule_names, ["scam"]);
        assert!(!c.accounts[0].backfill);
    }

    /// (replace this, with that, expected problem lines)
    #[test]
    fn bad_configs_are_located() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "poll_interval = \"2m\"",
                "poll_interval = \"2x\"",
                &["c.toml:10:17: accounts.poll_interval: invalid duration \"2x\""],
            ),
            (
                "hourly_budget = 200",
                "hourly_budget = 0",
                &["c.toml:11:17: accounts.hourly_budget: 0 must be between 1 and 1000000"],
            ),
            (
                "hourly_budget = 200",
                "hourly_budget = 200\ncolour = \"red\"",
                &["c.toml:12:1: unknown field `colour`"],
            ),
            (
                "words = [\"forex\"]",
                "regex = [\"(oops\"]",
                &["c.toml:16:10: rules.regex: invalid regex pattern \"(oops\""],
            ),
            (
                "hourly_budget = 200",
                "hourly_budget = 200\nrules = [\"nope\"]",
                &["c.toml:12:10: accounts.rules: no rule or rule set named \"nope\" (rules: scam)"],
            ),
            (
                "poll_interval = \"2m\"",
                "poll_cron = \"*/2 * * * *\"",
                &["c.toml:10:13: accounts.poll_cron:"],
            ),
            (
                "token_env = \"PATH\"",
                "token_env = \"IGMOD_SURELY_UNSET_VAR\"",
                &[
                    "c.toml:9:13: accounts.token_env: environment variable IGMOD_SURELY_UNSET_VAR is not set",
                ],
            ),
            (
                "action = \"delete\"",
                "action = \"nuke\"",
                &["c.toml:15:10: unknown variant `nuke`"],
            ),
            ("[daemon]", "[daemon", &["c.toml:2:8:"]),
            (
                "database = \"/tmp/x.db\"",
                "database = \"/tmp/x.db\"\nretain = \"2h\"\nlog_keep = 0\nlog_level = \"info,[\"",
                &[
                    "c.toml:4:10: daemon.retain: must be at least 1d",
                    "c.toml:5:12: daemon.log_keep: 0 must be between 1 and 3650",
                    "c.toml:6:13: daemon.log_level: invalid filter",
                ],
            ),
        ];
        for (from, to, expected) in cases {
            let text = GOOD.replacen(from, to, 1);
            let got = problems(&text);
            assert_eq!(got.len(), expected.len(), "{to}: {got:?}");
            for (g, e) in got.iter().zip(expected.iter()) {
                assert!(g.starts_with(e), "{to}: got {g:?}, expected {e:?}");
            }
        }
    }

    #[test]
    fn every_validation_problem_is_reported() {
        let text = GOOD
            .replacen("hourly_budget = 200", "hourly_budget = 0", 1)
            .replacen("poll_interval = \"2m\"", "poll_interval = \"soon\"", 1)
            .replacen("ig_user_id = \"1784\"", "ig_user_id = \"abc\"", 1);
        let got = problems(&text);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with("c.toml:7:14: accounts.ig_user_id"));
        assert!(got[1].starts_with("c.toml:10:17: accounts.poll_interval"));
        assert!(got[2].starts_with("c.toml:11:17: accounts.hourly_budget"));
    }

    #[test]
    fn duplicate_accounts_name_the_first() {
        let account =
            &GOOD[GOOD.find("[[accounts]]").unwrap_or(0)..GOOD.find("[[rules]]").unwrap_or(0)];
        let text = format!("{GOOD}\n{account}");
        let got = problems(&text);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("duplicate account name \"acme\" (first defined on line 6)"),
            "{got:?}"
        );
    }
}
