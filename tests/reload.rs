//! A reload that cannot start an account (the database did not answer) does not leave it
//! without a task: the daemon retries until it runs, without another reload.

mod common;

use std::time::Duration;

use common::pg::PgServer;
use common::{ACME, Env, GLOBEX, kill, wait_exit, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_a_reload_could_not_start_starts_once_the_database_is_back() {
    let server = PgServer::start();
    let env = Env::new().await;
    let acme = env.account("acme", ACME, "backfill = true");
    let globex = env.account("globex", GLOBEX, "backfill = true");
    let on_postgres = |path: &std::path::Path| {
        let text = std::fs::read_to_string(path).expect("config").replace(
            &format!("database = \"{}\"", env.db().display()),
            &format!("database = \"{}\"", server.url()),
        );
        std::fs::write(path, text).expect("config");
    };
    let config = env.write_config(&acme, "");
    on_postgres(&config);
    let acme_post = env.sim.add_media(ACME);
    let globex_post = env.sim.add_media(GLOBEX);
    let log = env.dir.path().join("daemon.log");
    let child = common::spawn_daemon(&config, Some(&log));
    wait_for("acme polled", Duration::from_secs(30), || async {
        env.sim.calls_for(ACME) >= 2
    })
    .await;

    // The database goes away; the operator adds globex and changes acme, and reloads.
    server.stop();
    let changed = acme.replace("poll_interval = \"1s\"", "poll_interval = \"2s\"");
    assert_ne!(changed, acme, "the account's interval is in its table");
    on_postgres(&env.write_config(&(changed + &globex), ""));
    kill(child.id(), "-HUP");
    wait_for("the reload done", Duration::from_secs(90), || async {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("config reloaded"))
    })
    .await;

    // The database comes back: both accounts run again, with no second reload.
    server.restart();
    let acme_scam = env
        .sim
        .add_comment(&acme_post, "bot", "forex signals, dm me");
    let globex_scam = env
        .sim
        .add_comment(&globex_post, "bot", "forex signals, dm me");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while ![&acme_scam, &globex_scam]
        .iter()
        .all(|id| env.sim.comment(id).is_some_and(|c| c.deleted))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after 60 s waiting for both accounts to moderate without another reload; the daemon's log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in [&acme_scam, &globex_scam] {
        assert_eq!(env.sim.comment(id).map(|c| c.delete_calls), Some(1));
    }
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let text = std::fs::read_to_string(&log).expect("log");
    for account in ["acme", "globex"] {
        for line in [
            "reload: cannot start account; retrying until it starts",
            "account started after a failed reload",
        ] {
            assert!(
                text.contains(&format!("{line} account={account}")),
                "{text}"
            );
        }
    }
}
