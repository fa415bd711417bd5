//! A daemon with its webhook receiver on: `[app]` + `[webhook]` on a free port.

use std::path::PathBuf;
use std::time::Duration;

use super::{ACME, Env, KillOnDrop, create_db, free_port, spawn_daemon, wait_for, wait_polled};

/// The receiver's verify token in every test config (never an operator's).
pub const VERIFY_TOKEN: &str = "VERIFY-TOKEN-8c1e2f";

/// Where the receiver listens, the config that says so, and where the daemon's log goes.
pub struct Hook {
    pub url: String,
    pub config: PathBuf,
    pub log: PathBuf,
}

/// `[app]` + `[webhook]` on a free port, then `accounts`; creates the database.
pub fn hook_config(env: &Env, accounts: &str) -> Hook {
    let port = free_port();
    let verify = env.dir.path().join("verify.token");
    std::fs::write(&verify, format!("{VERIFY_TOKEN}\n")).expect("verify token");
    let tables = format!(
        "{}[webhook]\nlisten = \"127.0.0.1:{port}\"\npath = \"/hooks/meta\"\nverify_token_file = \"{}\"\n\n{accounts}",
        env.app(),
        verify.display()
    );
    let config = env.write_config(&tables, "");
    create_db(&env.db());
    Hook {
        url: format!("http://127.0.0.1:{port}/hooks/meta"),
        config,
        log: env.dir.path().join("igmod.log"),
    }
}

/// Waits until the receiver answers (any status).
pub async fn wait_listening(url: &str) {
    let http = reqwest::Client::new();
    wait_for("the webhook receiver", Duration::from_secs(20), || async {
        http.get(url).send().await.is_ok()
    })
    .await;
}

/// Acme, polled once at start and then hourly: within a test, only a webhook can act.
pub fn one_hour_account(env: &Env) -> String {
    env.account("acme", ACME, "backfill = true")
        .replace("poll_interval = \"1s\"", "poll_interval = \"1h\"")
}

impl Hook {
    /// Starts the real daemon on this config and waits until its receiver listens and its
    /// first poll is recorded: from then on, a delivery is the only thing that can act.
    pub async fn start_polled(&self, env: &Env) -> (KillOnDrop, sqlx::SqlitePool) {
        let child = spawn_daemon(&self.config, Some(&self.log));
        let db = env.pool().await;
        wait_listening(&self.url).await;
        wait_polled(&db, 1).await;
        (child, db)
    }
}
