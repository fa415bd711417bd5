//! Wiring: opens the database, starts one [`scheduler::run_account`] task per account and the
//! maintenance jobs, and stops them when the `shutdown` future resolves. Shutdown is passed in
//! (as mini-redis does) so tests and `demo` drive the real daemon with their own.
//!
//! Whole on purpose: start, reload and shutdown hold the same tasks, listeners and leases.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::account::AccountCtx;
use crate::budget::{Budget, Policy, RetryPolicy};
use crate::config::{AccountConfig, Config, Schedule};
use crate::graph::{self, GraphError};
use crate::lease::Leases;
use crate::scheduler::{self, Ended};
use crate::store::{Store, StoreError};

/// How long in-flight polls may take to finish after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build graph api client: {0}")]
    Graph(#[from] GraphError),
    #[error("scheduler: {0}")]
    Scheduler(#[from] JobSchedulerError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("webhook receiver: {0}")]
    WebhookSecret(#[from] crate::secrets::TokenError),
    #[error("webhook receiver: [webhook] needs [app] with the app secret that signs deliveries")]
    NoAppSecret,
}

/// Runs the daemon until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let (_keep, reloads) = mpsc::channel(1);
    run_with_reload(config, shutdown, reloads, |_| {}).await
}

/// One running account: how to stop it, and how to know it stopped.
struct Running {
    /// What it runs with; a reload restarts the account when this changes.
    fingerprint: [u8; 32],
    cancel: CancellationToken,
    cron_job: Option<Uuid>,
    /// Resolves when the task has ended (its sender is dropped).
    done: oneshot::Receiver<()>,
}

/// Everything an account task needs from the daemon.
struct Shared<'a> {
    store: &'a Store,
    jobs: &'a JobScheduler,
    cancel: &'a CancellationToken,
    /// Bumped by the token check job; every account validates its token when it changes.
    token_checks: &'a watch::Sender<u64>,
    /// Account tasks that died unexpectedly, for the watchdog.
    deaths: &'a Arc<Deaths>,
    /// Where the webhook receiver finds each account's task.
    inboxes: &'a crate::webhook::Inboxes,
    /// Which accounts this instance may work on.
    leases: &'a Arc<Leases>,
}

/// Unexpected ends of account tasks (panics), counted so that a daemon whose accounts keep
/// dying stops feeding systemd's watchdog and is restarted whole.
#[derive(Debug, Default)]
pub struct Deaths {
    /// Unix seconds of recent deaths.
    recent: std::sync::Mutex<Vec<i64>>,
}

/// Deaths within [`DEATH_WINDOW_SECS`] after which the daemon counts as broken.
pub const DEATHS_TOO_MANY: usize = 5;
const DEATH_WINDOW_SECS: i64 = 600;

impl Deaths {
    fn record(&self, now: i64) -> usize {
        let Ok(mut recent) = self.recent.lock() else {
            return DEATHS_TOO_MANY;
        };
        recent.retain(|t| now.saturating_sub(*t) < DEATH_WINDOW_SECS);
        recent.push(now);
        recent.len()
    }

    /// Whether account tasks keep dying: the watchdog stops being fed.
    pub fn too_many(&self, now: i64) -> bool {
        self.recent.lock().map_or(true, |recent| {
            recent
                .iter()
                .filter(|t| now.saturating_sub(**t) < DEATH_WINDOW_SECS)
                .count()
                >= DEATHS_TOO_MANY
        })
    }
}

/// Runs an account's task, restarting it with back-off (1 s, 2 s, 4 s … 5 min) when it ends
/// unexpectedly (a panic: a bug), so one bad comment or answer cannot stop an account's
/// moderation for good. A normal end (shutdown, dead token) is returned.
pub async fn supervise<F, Fut>(
    account: &str,
    mut start: F,
    cancel: &CancellationToken,
    deaths: &Deaths,
) -> Ended
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Ended> + Send + 'static,
{
    let mut restarts: u32 = 0;
    loop {
        match tokio::spawn(start()).await {
            Ok(ended) => return ended,
            Err(e) if e.is_cancelled() => return Ended::Shutdown,
            Err(e) => {
                let recent = deaths.record(chrono::Utc::now().timestamp());
                crate::metrics::get().restart();
                let wait =
                    Duration::from_secs(1u64 << restarts.min(8)).min(Duration::from_secs(300));
                restarts = restarts.saturating_add(1);
                tracing::error!(
                    message = "the account's task died; restarting it",
                    account = %account,
                    error = %e,
                    restart_in_secs = wait.as_secs(),
                    deaths_in_10_min = recent
                );
                tokio::select! {
                    _ = cancel.cancelled() => return Ended::Shutdown,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Starts one account's task. It first waits for `after` (the same account's previous task,
/// still finishing its in-flight poll after a reload), so an account never polls twice at once.
async fn start_account(
    shared: &Shared<'_>,
    config: &Config,
    account: &AccountConfig,
    after: &mut Option<oneshot::Receiver<()>>,
    tasks: &mut JoinSet<(String, Ended)>,
) -> Result<Running, DaemonError> {
    let (client, budget) = client_and_budget(config, account, shared.store).await?;
    let budget = budget.with_lease(shared.leases.clone());
    let wake = Arc::new(Notify::new());
    let cron_job = match &account.schedule {
        Schedule::Cron(expr) => {
            let wake = wake.clone();
            Some(
                shared
                    .jobs
                    .add(Job::new(expr.as_str(), move |_, _| wake.notify_one())?)
                    .await?,
            )
        }
        Schedule::Every(_) => None,
    };
    let ctx = Arc::new(AccountCtx {
        config: account.clone(),
        client,
        budget,
        store: shared.store.clone(),
        dry_run: config.daemon.dry_run,
        app: config.app.clone(),
        username: std::sync::Mutex::new(shared.store.account_state(&account.name).await?.username),
        outbox_empty_at: std::sync::Mutex::new(None),
        media_seen: Default::default(),
        inbox: Arc::new(Notify::new()),
        leases: shared.leases.clone(),
        raid_reopen_at: std::sync::Mutex::new(None),
    });
    shared
        .inboxes
        .register(&account.ig_user_id, &account.name, ctx.inbox.clone());
    let name = account.name.clone();
    let cancel = shared.cancel.child_token();
    let stop = cancel.clone();
    let (done_tx, done) = oneshot::channel::<()>();
    let checks = shared.token_checks.subscribe();
    let deaths = shared.deaths.clone();
    // Taken only now that nothing can fail: a start that failed keeps the previous task's
    // end to wait for, so a retry never overlaps its in-flight poll.
    let after = after.take();
    tasks.spawn(async move {
        if let Some(previous) = after {
            let _ = previous.await;
        }
        let start =
            || scheduler::run_account(ctx.clone(), wake.clone(), checks.clone(), stop.clone());
        let ended = supervise(&name, start, &stop, &deaths).await;
        drop(done_tx);
        (name, ended)
    });
    Ok(Running {
        fingerprint: fingerprint(config, account),
        cancel,
        cron_job,
        done,
    })
}

/// The Graph API client and the call gate of one account (the daemon's and `igmod undo`'s).
pub async fn client_and_budget(
    config: &Config,
    account: &AccountConfig,
    store: &Store,
) -> Result<(graph::Client, Budget), DaemonError> {
    let mut client = graph::Client::new(
        config.graph.base_url(account.login),
        &config.graph.api_version,
        config.graph.timeout,
    )?;
    // Facebook Login calls carry appsecret_proof when the app secret is at hand ("Require
    // App Secret" apps refuse them otherwise).
    if account.login == crate::config::Login::Facebook
        && let Some(app) = &config.app
    {
        match app.secret.load() {
            Ok(secret) => client = client.with_appsecret_proof(secret),
            Err(e) => tracing::warn!(
                message = "app secret unreadable: calls go without appsecret_proof",
                account = %account.name,
                error = %e
            ),
        }
    }
    let policy = Policy {
        hourly: account.hourly_budget,
        action_reserve_pct: account.action_reserve,
        slowdown_at: account.slowdown_at,
    };
    let budget = Budget::new(
        store.clone(),
        &account.name,
        &account.ig_user_id,
        policy,
        RetryPolicy::default(),
    )
    .await?;
    Ok((client, budget))
}

/// A digest of what an account runs with: equal fingerprints need no restart on reload. Kept
/// as a digest, not the text (the rules as written run to kilobytes, once per account).
fn fingerprint(config: &Config, account: &AccountConfig) -> [u8; 32] {
    use sha2::Digest;
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}|{}|{:?}",
        account.describe(),
        config.graph,
        config.app,
        config.daemon.dry_run,
        account.rule_names.join(","),
        account.rule_specs
    );
    sha2::Sha256::digest(text.as_bytes()).into()
}

/// Runs the daemon until `shutdown` resolves; each message on `reloads` re-reads the config
/// file (SIGHUP).
/// `on_reload` sees each applied config (`main` uses it to change the log level).
pub async fn run_with_reload(
    mut config: Config,
    shutdown: impl Future<Output = ()>,
    mut reloads: mpsc::Receiver<()>,
    on_reload: impl Fn(&Config),
) -> Result<(), DaemonError> {
    let store = Store::connect(&config.daemon.database).await?;
    tracing::info!(
        message = "igmod started",
        accounts = config.accounts.len(),
        database = %config.daemon.database,
        dry_run = config.daemon.dry_run
    );
    for note in config.notes() {
        tracing::warn!(message = "config note", note = %note);
    }
    for file in crate::tokens::exposed_files(&config) {
        tracing::warn!(message = "a file with secrets is readable by others", file = %file);
    }
    let cancel = CancellationToken::new();
    // Leases first: an account's task starts working only once its lease is held.
    let leases = Arc::new(Leases::new(
        store.clone(),
        config.daemon.lease_ttl,
        config.daemon.lease_renew,
    ));
    leases.set_accounts(config.accounts.iter().map(|a| a.name.clone()).collect());
    let lease_stop = CancellationToken::new();
    let lease_done = CancellationToken::new();
    let lease_task = tokio::spawn({
        let leases = leases.clone();
        let (stop, done) = (lease_stop.clone(), lease_done.clone());
        async move { leases.run(stop, done).await }
    });
    tracing::info!(message = "instance", id = %leases.id(), backend = store.backend());
    let jobs = JobScheduler::new().await?;
    let mut tasks = JoinSet::new();
    let mut running: HashMap<String, Running> = HashMap::new();
    // Accounts a reload could not start (the database did not answer): retried every
    // [`START_RETRY`] until they run, shown as stopped meanwhile.
    let mut unstarted = Unstarted::new();
    let mut start_retry = tokio::time::interval(START_RETRY);
    start_retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Token validation every `token_check` (default 6 h), on top of the one at each start.
    let token_checks = Arc::new(watch::Sender::new(0u64));
    let deaths = Arc::new(Deaths::default());
    let inboxes = crate::webhook::Inboxes::default();
    // The webhook receiver's and the metrics' ports are bound before any account starts (a
    // port in use is a start-up error, not a silent loss of real-time moderation); they serve
    // once every account's inbox is registered, so that no early delivery finds its account
    // unknown.
    let mut servers = Vec::new();
    if let Some(w) = &config.webhook {
        let listener = tokio::net::TcpListener::bind(w.listen)
            .await
            .map_err(|source| DaemonError::Listen {
                addr: w.listen,
                source,
            })?;
        let app_secret = match &config.app {
            Some(app) => app.secret.load()?,
            None => return Err(DaemonError::NoAppSecret),
        };
        let receiver = Arc::new(crate::webhook::server::Receiver::new(
            store.clone(),
            app_secret,
            w.verify_token.load()?,
            inboxes.clone(),
        ));
        let mut router = crate::webhook::server::router(&w.path, receiver);
        tracing::info!(
            message = "webhook receiver listening",
            listen = %w.listen,
            path = %w.path
        );
        // The metrics share the receiver's server when they ask for the same address.
        if config
            .metrics
            .as_ref()
            .is_some_and(|m| m.listen == w.listen)
        {
            router = router.merge(crate::metrics::router(store.clone()));
            tracing::info!(message = "metrics and health served", listen = %w.listen);
        }
        servers.push((
            listener,
            router,
            "webhook",
            "webhook receiver stopped; polling goes on",
        ));
    }
    if let Some(m) = &config.metrics
        && config.webhook.as_ref().is_none_or(|w| w.listen != m.listen)
    {
        let listener = tokio::net::TcpListener::bind(m.listen)
            .await
            .map_err(|source| DaemonError::Listen {
                addr: m.listen,
                source,
            })?;
        tracing::info!(message = "metrics and health served", listen = %m.listen);
        let router = crate::metrics::router(store.clone());
        servers.push((
            listener,
            router,
            "metrics",
            "metrics server stopped; moderation goes on",
        ));
    }
    if let Some(r) = &config.review {
        let listener = tokio::net::TcpListener::bind(r.listen)
            .await
            .map_err(|source| DaemonError::Listen {
                addr: r.listen,
                source,
            })?;
        tracing::info!(message = "review queue served", listen = %r.listen, reviewers = r.users.len());
        let review = crate::review::Review::new(&config, r, store.clone(), inboxes.clone());
        servers.push((
            listener,
            crate::review::router(review),
            "review",
            "review queue stopped; moderation goes on",
        ));
    }
    if !config.alerts.is_empty() {
        let queue = crate::alerts::start(config.alerts.clone());
        tokio::spawn(crate::alerts::run(
            store.clone(),
            config.daemon.alert_check,
            queue,
            cancel.clone(),
        ));
        tracing::info!(message = "alerts on", targets = config.alerts.len());
    }
    crate::metrics::get().configured(
        &config
            .accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
    );
    let bump = token_checks.clone();
    jobs.add(Job::new(
        config.daemon.token_check.as_str(),
        move |_, _| {
            bump.send_modify(|n| *n += 1);
        },
    )?)
    .await?;
    // What starting an account needs, for the first start, reloads and retries alike.
    let shared = Shared {
        store: &store,
        jobs: &jobs,
        cancel: &cancel,
        token_checks: &token_checks,
        deaths: &deaths,
        inboxes: &inboxes,
        leases: &leases,
    };
    for account in &config.accounts {
        let r = start_account(&shared, &config, account, &mut None, &mut tasks).await?;
        running.insert(account.name.clone(), r);
    }
    // Another instance's webhook receiver may record a delivery for an account this one
    // holds: PostgreSQL's notifications wake its task (nothing to do on SQLite).
    tokio::spawn({
        let (store, inboxes, stop) = (store.clone(), inboxes.clone(), cancel.clone());
        async move {
            store
                .listen_inbox(|account| inboxes.wake_account(account), stop)
                .await
        }
    });
    // Idle and half-sent connections must not take the descriptors the token files and the
    // database need: the limit is raised, and each server's connections capped below it.
    let cap = crate::http::connection_cap(crate::http::raise_open_files());
    for (listener, router, name, stopped) in servers {
        let stop = cancel.clone();
        // A handful of reviewers need few connections: a flood there takes no descriptors.
        let cap = match name {
            "review" => cap.min(crate::review::CONNECTIONS_MAX),
            _ => cap,
        };
        tokio::spawn(async move {
            if let Err(e) = crate::http::serve(listener, router, name, cap, stop).await {
                tracing::error!(message = stopped, error = %e);
            }
        });
    }
    // Retention, daily at 03:30 UTC: comment text is personal data.
    let prune_store = store.clone();
    let retain = config.daemon.retain;
    jobs.add(Job::new_async("0 30 3 * * *", move |_, _| {
        let store = prune_store.clone();
        Box::pin(async move {
            match store
                .prune(crate::timefmt::ago(chrono::Utc::now(), retain))
                .await
            {
                Ok(p) => tracing::info!(
                    message = "retention: old personal data pruned",
                    comment_texts = p.comments,
                    reply_texts = p.replies,
                    decision_reasons = p.reasons,
                    ledger_rows = p.calls
                ),
                Err(e) => tracing::warn!(message = "retention job failed", error = %e),
            }
        })
    })?)
    .await?;
    // Heartbeat of the cron scheduler itself: the watchdog is fed (and /healthz answers 200)
    // only while it fires.
    crate::metrics::get().beat(chrono::Utc::now().timestamp());
    jobs.add(Job::new("*/10 * * * * *", move |_, _| {
        crate::metrics::get().beat(chrono::Utc::now().timestamp());
    })?)
    .await?;
    jobs.start().await?;

    let status = format!("polling {} account(s)", config.accounts.len());
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&status),
    ]);
    if let Some(period) = sd_notify::watchdog_enabled() {
        tasks.spawn(watchdog(
            period,
            deaths.clone(),
            store.clone(),
            cancel.clone(),
        ));
    }

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            joined = tasks.join_next(), if !tasks.is_empty() => log_end(joined),
            _ = start_retry.tick(), if !unstarted.is_empty() => {
                retry_unstarted(&shared, &config, &mut unstarted, &mut running, &mut tasks).await;
            }
            Some(()) = reloads.recv() => {
                // systemd ≥ 253 wants the monotonic time with RELOADING=1.
                match sd_notify::NotifyState::monotonic_usec_now() {
                    Ok(now) => notify(&[sd_notify::NotifyState::Reloading, now]),
                    Err(_) => notify(&[sd_notify::NotifyState::Reloading]),
                }
                if let Some(new) = reload(&shared, &config, &mut running, &mut unstarted, &mut tasks).await {
                    leases.set_accounts(new.accounts.iter().map(|a| a.name.clone()).collect());
                    crate::metrics::get().configured(
                        &new.accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
                    );
                    on_reload(&new);
                    config = new;
                }
                let status = format!("polling {} account(s)", config.accounts.len());
                notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(&status)]);
            }
        }
    }
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("stopping: letting in-flight polls finish"),
    ]);
    tracing::info!(
        message = "shutting down: letting in-flight polls finish",
        grace_secs = SHUTDOWN_GRACE.as_secs()
    );
    // Idle accounts' leases go at once, so another instance takes them over within a
    // second; an account mid-poll keeps its lease until the poll ends.
    lease_stop.cancel();
    cancel.cancel();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while let Some(joined) = tasks.join_next().await {
            log_end(Some(joined));
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            message = "grace period over; abandoning polls still running (their actions stay pending and resume at the next start)"
        );
        tasks.abort_all();
    }
    lease_done.cancel();
    if let Err(e) = lease_task.await {
        tracing::warn!(message = "lease task ended badly", error = %e);
    }
    let mut jobs = jobs;
    if let Err(e) = jobs.shutdown().await {
        tracing::warn!(message = "scheduler shutdown", error = %e);
    }
    store.close().await;
    tracing::info!(message = "igmod stopped");
    Ok(())
}

/// Re-reads the config file. If it is invalid, logs every problem and keeps the running
/// config. If valid, stops removed accounts (after their in-flight poll), starts added ones,
/// and restarts those whose settings or rules changed. Returns the new config when applied.
async fn reload(
    shared: &Shared<'_>,
    old: &Config,
    running: &mut HashMap<String, Running>,
    unstarted: &mut Unstarted,
    tasks: &mut JoinSet<(String, Ended)>,
) -> Option<Config> {
    let new = match crate::config::load(&old.path) {
        Ok(c) => c,
        Err(e) => {
            for p in &e.problems {
                tracing::error!(message = "reload refused, keeping the running config", problem = %p);
            }
            return None;
        }
    };
    if new.daemon.database != old.daemon.database
        || new.daemon.retain != old.daemon.retain
        || new.daemon.token_check != old.daemon.token_check
        || new.webhook != old.webhook
        || new.metrics != old.metrics
        || new.review != old.review
        || new.alerts != old.alerts
        || new.daemon.alert_check != old.daemon.alert_check
        || new.daemon.lease_ttl != old.daemon.lease_ttl
        || new.daemon.lease_renew != old.daemon.lease_renew
    {
        tracing::warn!(
            message = "database, retain, token_check, alert_check, lease_ttl, lease_renew, [webhook], [metrics], [review] and [[alerts]] changes apply at the next restart; everything else applies now"
        );
    }
    unstarted.retain(|name, _| new.accounts.iter().any(|a| &a.name == name));
    let mut stopped = Vec::new();
    for name in running.keys().cloned().collect::<Vec<_>>() {
        if !new.accounts.iter().any(|a| a.name == name) {
            stopped.push(name);
        }
    }
    for name in &stopped {
        shared.inboxes.remove_account(name);
        if let Some(r) = running.remove(name) {
            r.cancel.cancel();
            if let Some(job) = r.cron_job {
                let _ = shared.jobs.remove(&job).await;
            }
            tracing::info!(message = "reload: account removed; it stops after its in-flight poll", account = %name);
        }
    }
    for account in &new.accounts {
        let fp = fingerprint(&new, account);
        let mut previous = match running.remove(&account.name) {
            Some(mut r) if r.fingerprint == fp => {
                // A task that ended (its token was dead) starts again: the operator may have
                // put a new token in its file or environment before reloading.
                if !matches!(r.done.try_recv(), Err(oneshot::error::TryRecvError::Closed)) {
                    running.insert(account.name.clone(), r);
                    continue;
                }
                tracing::info!(message = "reload: retrying an account that had stopped", account = %account.name);
                if let Some(job) = r.cron_job {
                    let _ = shared.jobs.remove(&job).await;
                }
                None
            }
            Some(r) => {
                r.cancel.cancel();
                if let Some(job) = r.cron_job {
                    let _ = shared.jobs.remove(&job).await;
                }
                tracing::info!(message = "reload: account changed; restarting it after its in-flight poll", account = %account.name);
                Some(r.done)
            }
            None => match unstarted.remove(&account.name) {
                // Still waiting for its retry: the previous task's end comes along.
                Some(waiting) => waiting,
                None => {
                    tracing::info!(message = "reload: account added", account = %account.name);
                    None
                }
            },
        };
        match start_account(shared, &new, account, &mut previous, tasks).await {
            Ok(r) => {
                running.insert(account.name.clone(), r);
            }
            Err(e) => {
                tracing::error!(
                    message = "reload: cannot start account; retrying until it starts",
                    account = %account.name,
                    retry_secs = START_RETRY.as_secs(),
                    error = %e
                );
                crate::metrics::get().stopped(&account.name);
                unstarted.insert(account.name.clone(), previous);
            }
        }
    }
    tracing::info!(message = "config reloaded", accounts = new.accounts.len());
    Some(new)
}

/// How often an account a reload could not start is tried again.
const START_RETRY: Duration = Duration::from_secs(5);

/// Accounts a reload could not start, each with the end of its previous task (if it had one)
/// that a retry must still wait for.
type Unstarted = HashMap<String, Option<oneshot::Receiver<()>>>;

/// Tries again to start every account a reload could not start; logs only when one starts
/// (each failure was logged when the reload failed, and the account shows as stopped).
async fn retry_unstarted(
    shared: &Shared<'_>,
    config: &Config,
    unstarted: &mut Unstarted,
    running: &mut HashMap<String, Running>,
    tasks: &mut JoinSet<(String, Ended)>,
) {
    for account in &config.accounts {
        let Some(previous) = unstarted.get_mut(&account.name) else {
            continue;
        };
        match start_account(shared, config, account, previous, tasks).await {
            Ok(r) => {
                tracing::info!(message = "account started after a failed reload", account = %account.name);
                running.insert(account.name.clone(), r);
                unstarted.remove(&account.name);
            }
            Err(e) => {
                tracing::debug!(message = "account still cannot start", account = %account.name, error = %e)
            }
        }
    }
}

/// Tells systemd (when run with `Type=notify`) about the daemon's state. Outside systemd
/// (`NOTIFY_SOCKET` unset) it does nothing.
fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(message = "cannot notify systemd", error = %e);
    }
}

/// Sends `WATCHDOG=1` every half period, but only while the daemon is really alive: the cron
/// scheduler fired within the last 30 s, the database answers, and account tasks are not
/// dying over and over ([`DEATHS_TOO_MANY`] in 10 minutes). A hung scheduler or a dead
/// database lets systemd's watchdog restart the service.
async fn watchdog(
    period: Duration,
    deaths: Arc<Deaths>,
    store: Store,
    cancel: CancellationToken,
) -> (String, Ended) {
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return ("watchdog".into(), Ended::Shutdown),
            _ = tick.tick() => {}
        }
        let now = chrono::Utc::now().timestamp();
        let fresh = crate::metrics::get().scheduler_alive(now);
        let db_ok = store.account_state("").await.is_ok();
        let tasks_ok = !deaths.too_many(now);
        if fresh && db_ok && tasks_ok {
            notify(&[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::error!(
                message = "not feeding the systemd watchdog",
                scheduler_alive = fresh,
                database_ok = db_ok,
                account_tasks_ok = tasks_ok
            );
        }
    }
}

fn log_end(joined: Option<Result<(String, Ended), tokio::task::JoinError>>) {
    match joined {
        Some(Ok((account, Ended::TokenDead(reason)))) => {
            tracing::error!(message = "account stopped until its token is replaced", account = %account, reason = %reason)
        }
        Some(Ok((account, Ended::Shutdown))) => {
            tracing::debug!(message = "account stopped", account = %account)
        }
        Some(Err(e)) if e.is_panic() => {
            tracing::error!(message = "an account task panicked; other accounts continue", error = %e)
        }
        Some(Err(_)) | None => {}
    }
}

#[cfg(test)]
mod supervise_tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A task that panics is restarted (after 1 s, then 2 s) and its later normal end is
    /// returned; each death is counted for the watchdog.
    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_restarted_with_back_off() {
        let runs = Arc::new(AtomicU32::new(0));
        let deaths = Deaths::default();
        let cancel = CancellationToken::new();
        let counter = runs.clone();
        let start = move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    panic!("a bug in run {n}");
                }
                Ended::TokenDead("done".into())
            }
        };
        let ended = supervise("acme", start, &cancel, &deaths).await;
        assert!(matches!(ended, Ended::TokenDead(_)));
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert!(!deaths.too_many(chrono::Utc::now().timestamp()));
    }

    /// A task that keeps dying marks the daemon broken (so the watchdog starves and systemd
    /// restarts it); a shutdown during the back-off ends the supervisor.
    #[tokio::test(start_paused = true)]
    async fn a_task_that_keeps_dying_starves_the_watchdog() {
        let deaths = Arc::new(Deaths::default());
        let cancel = CancellationToken::new();
        let start = || async { panic!("always") };
        let supervisor = {
            let (deaths, cancel) = (deaths.clone(), cancel.clone());
            tokio::spawn(async move { supervise("acme", start, &cancel, &deaths).await })
        };
        // 1 + 2 + 4 + 8 s of back-off: five deaths.
        tokio::time::sleep(Duration::from_secs(16)).await;
        assert!(deaths.too_many(chrono::Utc::now().timestamp()));
        cancel.cancel();
        let ended = supervisor.await.expect("supervisor ends");
        assert!(matches!(ended, Ended::Shutdown));
    }
}
