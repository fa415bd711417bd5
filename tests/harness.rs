//! The test harness's own promises (`tests/common`): a daemon a test spawned dies with the test
//! however the test ends, and a wait that runs out fails the test naming what it waited for.

mod common;

use std::time::Duration;

use common::{ACME, Env, spawn_daemon, wait_exit_within, wait_for};

/// Whether a process with this pid exists (a zombie counts: it has not been reaped).
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The process's command line, NUL-separated arguments joined by spaces.
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// A daemon polling the simulator, running: its config path.
async fn daemon_config(env: &Env) -> std::path::PathBuf {
    let accounts = env.account("acme", ACME, "");
    env.sim.add_media(ACME);
    let config = env.write_config(&accounts, "");
    common::create_db(&env.db());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_that_panics_leaves_no_daemon_running() {
    let env = Env::new().await;
    let config = daemon_config(&env).await;
    let db = env.pool().await;
    let mut pid = 0;
    // The panic is caught on this thread, which lives on: only the guard's drop can end the
    // daemon (the parent-death signal, the other safeguard, needs the thread to end).
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let child = spawn_daemon(&config, None);
        pid = child.id();
        assert!(cmdline(pid).contains(" run -c "), "{}", cmdline(pid));
        panic!("a failing test");
    }));
    assert!(caught.is_err(), "the test body panicked");
    assert!(pid != 0, "the daemon was spawned");
    assert!(
        !exists(pid),
        "igmod (pid {pid}) still exists after its test panicked: {}",
        cmdline(pid)
    );
    // It really ran: a daemon that died at once would prove nothing. Its first poll is
    // recorded by a second one, spawned the same way and left to the guard at the end.
    let second = spawn_daemon(&config, None);
    common::wait_polled(&db, 1).await;
    let second_pid = second.id();
    assert!(exists(second_pid));
    drop(second);
    assert!(
        !exists(second_pid),
        "igmod (pid {second_pid}) outlived its guard"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_runs_out_names_what_it_waited_for_and_kills_the_daemon() {
    let env = Env::new().await;
    let config = daemon_config(&env).await;
    let child = spawn_daemon(&config, None);
    let pid = child.id();
    // The daemon is never told to stop: the bounded wait runs out.
    let waited = tokio::spawn(wait_exit_within(child, Duration::from_secs(1))).await;
    let message = match waited {
        Ok(code) => panic!("igmod exited ({code:?}) without being told to"),
        Err(e) => match e.try_into_panic() {
            Ok(payload) => payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default(),
            Err(e) => panic!("the wait was cancelled: {e}"),
        },
    };
    assert!(
        message.contains(&format!("waiting for process {pid} to exit")),
        "{message}"
    );
    assert!(!exists(pid), "igmod (pid {pid}) outlived a failed wait");

    // The same for `wait_for`: its panic names the condition.
    let waited = tokio::spawn(wait_for(
        "a condition that never holds",
        Duration::from_millis(200),
        || async { false },
    ))
    .await;
    let message = waited
        .err()
        .and_then(|e| e.try_into_panic().ok())
        .and_then(|p| p.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(
        message.contains("waiting for: a condition that never holds"),
        "{message:?}"
    );
}
