//! `[[alerts]]` through the real binary: deliveries to a loopback receiver and to a command,
//! one per cause, "resolved" when it clears, a receiver that hangs, `igmod alerts test`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use common::*;

/// A loopback receiver that keeps every body POSTed to it; `hang`: never answers.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

async fn receiver(hang: bool) -> Receiver {
    let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook/secret-path",
            axum::routing::post(
                |State((bodies, hang)): State<(Arc<Mutex<Vec<serde_json::Value>>>, bool)>,
                 body: String| async move {
                    if hang {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    if let Ok(v) = serde_json::from_str(&body) {
                        bodies.lock().expect("lock").push(v);
                    }
                    "ok"
                },
            ),
        )
        .with_state((bodies.clone(), hang));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url: format!("http://{addr}/hook/secret-path"),
        bodies,
    }
}

fn kinds(bodies: &[serde_json::Value], kind: &str) -> Vec<(String, String)> {
    bodies
        .iter()
        .filter(|b| b["kind"] == kind)
        .map(|b| {
            (
                b["state"].as_str().unwrap_or("").to_string(),
                b["account"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// acme (fine) and globex (its token dead from the start), one `[[alerts]]` with `alert`'s
/// lines, conditions looked at every second.
fn two_accounts_one_dead(env: &Env, alert: &str) -> std::path::PathBuf {
    let accounts = format!(
        "[[alerts]]\n{alert}\n\n{}{}",
        env.account("acme", ACME, "backfill = true"),
        env.account("globex", GLOBEX, "")
    );
    env.sim.kill_token(GLOBEX, 460);
    env.config(&accounts, "alert_check = \"1s\"").path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_account_and_a_scam_wave_alert_once_and_resolve() {
    let env = Env::new().await;
    let hook = receiver(false).await;
    let config = two_accounts_one_dead(
        &env,
        &format!(
            "on = [\"account_stopped\", \"scam_wave\", \"token_expiring\"]\nurl = \"{}\"",
            hook.url
        ),
    );
    let media = env.sim.add_media(ACME);
    for i in 0..22 {
        env.sim
            .add_comment(&media, &format!("bot{i}"), &format!("forex signals {i}"));
    }
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    let bodies = hook.bodies.clone();
    wait_for("both alerts", Duration::from_secs(30), || async {
        let b = bodies.lock().expect("lock").clone();
        !kinds(&b, "account_stopped").is_empty() && !kinds(&b, "scam_wave").is_empty()
    })
    .await;
    // Several more checks: nothing is sent again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let b = bodies.lock().expect("lock").clone();
    assert_eq!(
        kinds(&b, "account_stopped"),
        [("firing".to_string(), "globex".to_string())]
    );
    assert_eq!(
        kinds(&b, "scam_wave"),
        [("firing".to_string(), "acme".to_string())]
    );
    // A new token and a reload: the account polls again and its alert resolves.
    let fresh = "EAAG-SECRET-globex-new-login";
    env.sim.replace_token(GLOBEX, fresh);
    std::fs::write(env.dir.path().join("globex.token"), fresh).expect("token");
    kill(child.id(), "-HUP");
    wait_for("the resolution", Duration::from_secs(30), || async {
        kinds(&bodies.lock().expect("lock"), "account_stopped").len() == 2
    })
    .await;
    let b = bodies.lock().expect("lock").clone();
    assert_eq!(
        kinds(&b, "account_stopped")[1],
        ("resolved".to_string(), "globex".to_string())
    );
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    // Restarted within the day, the still-holding wave is not told again.
    let child = spawn_daemon(&config, Some(&log));
    tokio::time::sleep(Duration::from_secs(4)).await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let b = bodies.lock().expect("lock").clone();
    assert_eq!(kinds(&b, "scam_wave").len(), 1, "{b:?}");
    let text = serde_json::to_string(&b).unwrap_or_default();
    assert!(!text.contains("EAAG-SECRET"), "a token in an alert");
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logs.contains("alert sent"), "{logs}");
    assert!(
        !logs.contains("secret-path"),
        "the alert URL's path was logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_receiver_that_hangs_does_not_slow_moderation() {
    let env = Env::new().await;
    let hook = receiver(true).await;
    let config = two_accounts_one_dead(
        &env,
        &format!(
            "on = [\"account_stopped\"]\nurl = \"{}\"\ntimeout = \"1s\"",
            hook.url
        ),
    );
    let media = env.sim.add_media(ACME);
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    wait_for(
        "the first alert attempt failed",
        Duration::from_secs(20),
        || async {
            count(
                &env.pool().await,
                "SELECT COUNT(*) FROM alert_state WHERE notified = 1",
            )
            .await
                == 1
        },
    )
    .await;
    // While the receiver hangs (three attempts of 1 s, 2 s and 10 s apart), scams are still
    // deleted within a poll or two.
    for i in 0..3 {
        let added = Instant::now();
        let scam = env.sim.add_comment(&media, "bot", &format!("forex {i}"));
        wait_for("the scam deleted", Duration::from_secs(5), || async {
            env.sim.comment(&scam).is_some_and(|c| c.deleted)
        })
        .await;
        assert!(
            added.elapsed() < Duration::from_secs(4),
            "{:?}",
            added.elapsed()
        );
    }
    wait_for("the failure logged", Duration::from_secs(30), || async {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("alert not delivered after 3 attempts")
    })
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_test_reaches_a_command_and_a_url_and_says_which_failed() {
    let env = Env::new().await;
    let hook = receiver(false).await;
    let out = env.dir.path().join("alert.json");
    let script = env.dir.path().join("notify.sh");
    std::fs::write(&script, format!("#!/bin/sh\ncat > {}\n", out.display())).expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dead = free_port();
    let accounts = format!(
        "[[alerts]]\non = [\"action_failed\"]\ncommand = \"{}\"\n\n[[alerts]]\non = [\"scam_wave\"]\nurl = \"{}\"\nformat = \"slack\"\n\n{}",
        script.display(),
        hook.url,
        env.account("acme", ACME, "")
    );
    let config = env.write_config(&accounts, "");
    let (code, stdout, stderr) = run(igmod().args(["alerts", "test", "-c"]).arg(&config));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("alerts[0] command") && stdout.contains("alerts[1] url on 127.0.0.1: sent"),
        "{stdout}"
    );
    let sent: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("the command ran"))
            .expect("json");
    assert_eq!(sent["state"], "test");
    let b = hook.bodies.lock().expect("lock").clone();
    assert!(
        b[0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("[igmod] TEST")),
        "{b:?}"
    );
    // A target that cannot be reached: named, exit 1, its URL's path never printed.
    let accounts = format!(
        "[[alerts]]\non = [\"scam_wave\"]\nurl = \"http://127.0.0.1:{dead}/private/token-like-path\"\ntimeout = \"1s\"\n\n{}",
        env.account("acme", ACME, "")
    );
    let config = env.write_config(&accounts, "");
    let (code, stdout, stderr) = run(igmod().args(["alerts", "test", "-c"]).arg(&config));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("alerts[0] url on 127.0.0.1: FAILED"),
        "{stdout}"
    );
    assert!(!stdout.contains("token-like-path") && !stderr.contains("token-like-path"));
}
