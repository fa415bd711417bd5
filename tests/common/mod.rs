//! Shared test harness: a real simulator on 127.0.0.1:0, real config files and SQLite files in
//! a temp dir, and the real daemon (in-process or as the built binary).
#![allow(dead_code)]

pub mod hook;
pub mod outcomes;
pub mod pg;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use igmod::config::{self, Config};
use igmod::daemon::{self, DaemonError};
use igmod::simulator::Simulator;
use sqlx::SqlitePool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ACME: &str = "17841400000000001";
pub const GLOBEX: &str = "17841400000000002";
pub const INITECH: &str = "17841400000000003";

/// Every permission a Facebook Login token needs.
pub const ALL_SCOPES: [&str; 4] = [
    "instagram_basic",
    "instagram_manage_comments",
    "pages_read_engagement",
    "pages_show_list",
];

/// The rules of the README's example.
pub const RULES: &str = igmod::demo::RULES;

pub struct Env {
    pub sim: Simulator,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn new() -> Env {
        // Logs go to the test's captured output: shown only when a test fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,sqlx=warn,tokio_cron_scheduler=warn")
            .with_test_writer()
            .try_init();
        let sim = Simulator::start().await.expect("simulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        Env { sim, dir }
    }

    /// A distinctive token for an account, so leak checks can look for it.
    pub fn token(name: &str) -> String {
        format!("EAAG-SECRET-{name}-7f3a9c")
    }

    /// Registers an account in the simulator, writes its token file, and returns its
    /// `[[accounts]]` table (polling every second) with `extra` lines appended.
    pub fn account(&self, name: &str, id: &str, extra: &str) -> String {
        let token = Self::token(name);
        self.sim.add_account(id, name, &token);
        let file = self.dir.path().join(format!("{name}.token"));
        std::fs::write(&file, format!("{token}\n")).expect("token file");
        format!(
            "[[accounts]]\nname = \"{name}\"\nig_user_id = \"{id}\"\nlogin = \"instagram\"\ntoken_file = \"{}\"\npoll_interval = \"1s\"\nhourly_budget = 20000\n{extra}\n\n",
            file.display()
        )
    }

    /// A distinctive app secret, so leak checks can look for it.
    pub const APP_SECRET: &'static str = "APPSECRET-5be1d0c4e9";
    pub const APP_ID: &'static str = "990011223344";

    /// Registers the Meta app in the simulator, writes its secret file, and returns the
    /// `[app]` table.
    pub fn app(&self) -> String {
        self.sim.set_app(Self::APP_ID, Self::APP_SECRET);
        let file = self.dir.path().join("app.secret");
        std::fs::write(&file, format!("{}\n", Self::APP_SECRET)).expect("secret file");
        format!(
            "[app]\napp_id = \"{}\"\napp_secret_file = \"{}\"\n\n",
            Self::APP_ID,
            file.display()
        )
    }

    /// Like [`Env::account`], for a Facebook Login token of `kind` (`USER`/`PAGE`) that ends in
    /// `days` (`None`: never) and grants `scopes`.
    pub fn facebook_account(
        &self,
        name: &str,
        id: &str,
        kind: &str,
        days: Option<i64>,
        scopes: &[&str],
        extra: &str,
    ) -> String {
        let table = self.account(name, id, extra);
        self.sim.set_facebook(id, kind, days, 80, scopes);
        table.replace("login = \"instagram\"", "login = \"facebook\"")
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("igmod.db")
    }

    /// Writes config.toml (with the README's example rules) and returns its path.
    pub fn write_config(&self, accounts: &str, daemon_extra: &str) -> PathBuf {
        self.write_config_with_rules(accounts, daemon_extra, RULES)
    }

    /// Writes config.toml with the given `[[rules]]` and returns its path.
    pub fn write_config_with_rules(
        &self,
        accounts: &str,
        daemon_extra: &str,
        rules: &str,
    ) -> PathBuf {
        let path = self.dir.path().join("config.toml");
        let text = format!(
            "[daemon]\ndatabase = \"{}\"\n{daemon_extra}\n\n[graph]\nfacebook_base_url = \"{base}\"\ninstagram_base_url = \"{base}\"\napi_version = \"v25.0\"\ntimeout = \"3s\"\n\n{accounts}{rules}",
            self.db().display(),
            base = self.sim.base_url()
        );
        std::fs::write(&path, text).expect("config");
        path
    }

    pub fn config(&self, accounts: &str, daemon_extra: &str) -> Config {
        self.config_with_rules(accounts, daemon_extra, RULES)
    }

    pub fn config_with_rules(&self, accounts: &str, daemon_extra: &str, rules: &str) -> Config {
        let path = self.write_config_with_rules(accounts, daemon_extra, rules);
        let config = match config::load(&path) {
            Ok(c) => c,
            Err(e) => panic!("test config is invalid:\n{e}"),
        };
        // Create and migrate the database now, so the test can read it while the daemon runs.
        create_db(&self.db());
        config
    }

    pub async fn pool(&self) -> SqlitePool {
        SqlitePool::connect(&format!("sqlite://{}", self.db().display()))
            .await
            .expect("open db")
    }
}

/// The real daemon running in this process.
pub struct Running {
    cancel: CancellationToken,
    handle: JoinHandle<Result<(), DaemonError>>,
}

pub fn start(config: Config) -> Running {
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let handle = tokio::spawn(daemon::run(config, async move { stop.cancelled().await }));
    Running { cancel, handle }
}

impl Running {
    pub async fn stop(self) {
        self.cancel.cancel();
        let result = tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("daemon stops within its grace period")
            .expect("daemon task did not panic");
        if let Err(e) = result {
            panic!("daemon failed: {e}");
        }
    }
}

/// Waits until `check` holds, failing the test with `what` after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn create_db(db: &std::path::Path) {
    let db = db.to_path_buf();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            igmod::store::Store::open(&db)
                .await
                .expect("db")
                .close()
                .await
        });
    })
    .join()
    .expect("db thread");
}

pub async fn count(pool: &SqlitePool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

pub async fn text(pool: &SqlitePool, sql: &str) -> Option<String> {
    sqlx::query_scalar::<_, Option<String>>(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_optional(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .flatten()
}

/// `table.column` for every column of every igmod table holding one of `secrets`, as
/// `table.column: secret`, in table order.
pub async fn secret_holders(pool: &SqlitePool, secrets: &[String]) -> Vec<String> {
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut holders = Vec::new();
    for (table,) in &tables {
        let columns: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}')"
        )))
        .fetch_all(pool)
        .await
        .expect("columns");
        for (column,) in &columns {
            for secret in secrets {
                let sql = format!(
                    "SELECT COUNT(*) FROM \"{table}\" WHERE CAST(\"{column}\" AS TEXT) LIKE '%{secret}%'"
                );
                if count(pool, &sql).await > 0 {
                    holders.push(format!("{table}.{column}: {secret}"));
                }
            }
        }
    }
    holders
}

/// How long [`wait_exit`] waits for a process to exit (a daemon's SIGTERM grace is shorter).
pub const EXIT_LIMIT: Duration = Duration::from_secs(60);

/// How long [`run`] waits for a command (model training in a debug build is the slowest).
pub const RUN_LIMIT: Duration = Duration::from_secs(240);

/// A child process that gets SIGKILL and is reaped when dropped, however its test ends (an
/// assertion, a panic, a timeout): a failing test never leaves a daemon running. It derefs to
/// the [`std::process::Child`], so `child.id()`, `child.try_wait()` and `child.stdin` work as
/// on the child itself.
pub struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    fn child(&self) -> &std::process::Child {
        self.0
            .as_ref()
            .expect("a KillOnDrop holds its child until consumed")
    }

    /// Waits at most `limit` for the child to exit and collects its output, like
    /// [`std::process::Child::wait_with_output`]; on timeout the child is killed and the test
    /// fails naming `what`.
    pub fn output_within(mut self, limit: Duration, what: &str) -> std::process::Output {
        let child = self
            .0
            .take()
            .expect("a KillOnDrop holds its child until consumed");
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(limit) {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => panic!("cannot wait for {what}: {e}"),
            Err(_) => {
                // The waiting thread has not reaped it, so the pid is still this child's.
                // SAFETY: kill(2) with a pid we own; no memory is shared.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                panic!(
                    "timed out after {limit:?} waiting for {what} (pid {pid}) to exit; killed it"
                );
            }
        }
    }
}

impl From<std::process::Child> for KillOnDrop {
    fn from(child: std::process::Child) -> KillOnDrop {
        KillOnDrop(Some(child))
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        self.child()
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        self.0
            .as_mut()
            .expect("a KillOnDrop holds its child until consumed")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            // Already exited (and reaped by a wait): both calls are harmless no-ops.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Spawns `cmd` under a [`KillOnDrop`] guard (and [`die_with_test`]).
pub fn spawn(cmd: &mut std::process::Command) -> KillOnDrop {
    die_with_test(cmd);
    let program = cmd.get_program().to_string_lossy().into_owned();
    match cmd.spawn() {
        Ok(child) => KillOnDrop::from(child),
        Err(e) => panic!("cannot spawn {program}: {e}"),
    }
}

/// Starts the real `igmod run -c config`, its stderr appended to `stderr` (or dropped), its
/// stdout dropped; killed when the returned guard drops.
pub fn spawn_daemon(config: &Path, stderr: Option<&Path>) -> KillOnDrop {
    let stderr = match stderr {
        Some(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(std::process::Stdio::from)
            .expect("log file"),
        None => std::process::Stdio::null(),
    };
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_igmod"));
    cmd.env_remove("IGMOD_CONFIG")
        .env_remove("RUST_LOG")
        .args(["run", "-c"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    spawn(&mut cmd)
}

/// The child also gets SIGKILL when the thread that spawned it ends: the last line of defence
/// when the test process itself is killed and no destructor runs.
pub fn die_with_test(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends `signal` (e.g. `-TERM`) to a process.
pub fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// Waits, at most [`EXIT_LIMIT`] and without blocking the runtime, for a child (a
/// [`KillOnDrop`] or a bare `Child`) to exit: its exit code (`None`: killed by a signal). On
/// timeout the test fails saying which pid it waited for, and the child is killed.
pub async fn wait_exit(child: impl Into<KillOnDrop>) -> Option<i32> {
    wait_exit_within(child, EXIT_LIMIT).await
}

/// [`wait_exit`] with a bound of `limit`.
pub async fn wait_exit_within(child: impl Into<KillOnDrop>, limit: Duration) -> Option<i32> {
    let mut child = child.into();
    let pid = child.id();
    let deadline = std::time::Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.code(),
            Ok(None) => {}
            Err(e) => panic!("cannot wait for process {pid}: {e}"),
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for process {pid} to exit");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The built binary, without the caller's `IGMOD_CONFIG` and `RUST_LOG`.
pub fn igmod() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_igmod"));
    c.env_remove("IGMOD_CONFIG").env_remove("RUST_LOG");
    die_with_test(&mut c);
    c
}

/// Runs `cmd` (stdin empty), waiting at most [`RUN_LIMIT`]: its exit code (-1 if killed by a
/// signal), stdout and stderr.
pub fn run(cmd: &mut std::process::Command) -> (i32, String, String) {
    let what = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .next()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let std::process::Output {
        status,
        stdout,
        stderr,
    } = spawn(cmd).output_within(RUN_LIMIT, &what);
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until `accounts` accounts have ended a poll.
pub async fn wait_polled(db: &SqlitePool, accounts: i64) {
    wait_for("the first poll", Duration::from_secs(20), || async {
        count(
            db,
            "SELECT COUNT(*) FROM account_state WHERE last_poll_at IS NOT NULL",
        )
        .await
            >= accounts
    })
    .await;
}

/// Waits until `n` more media listings are in the ledger than `before` held (polls).
pub async fn wait_more_polls(db: &SqlitePool, n: i64, limit: Duration) {
    const POLLS: &str = "SELECT COUNT(*) FROM api_calls WHERE endpoint LIKE '%/media'";
    let before = count(db, POLLS).await;
    wait_for("more polls", limit, || async {
        count(db, POLLS).await >= before + n
    })
    .await;
}
