//! `[[alerts]]` through the real binary: deliveries to a loopback receiver and to a command,
//! one per cause, "resolved" when it clears, a receiver that hangs, `igmod alerts test`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use common::*;

/// A loopback receiver that keeps every body POSTed to `/hook/secret-path`; `hang`: never
/// answers; the first `fail_first` posts are answered 500 (and not kept). `/redirect`
/// answers 307 to the hook.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    /// Requests to the hook, kept or not.
    hits: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Hook {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    hang: bool,
    fail_first: usize,
    hits: Arc<AtomicUsize>,
}

async fn receiver(hang: bool) -> Receiver {
    receiver_failing(hang, 0).await
}

async fn receiver_failing(hang: bool, fail_first: usize) -> Receiver {
    let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let hits = Arc::new(AtomicUsize::new(0));
    let state = Hook {
        bodies: bodies.clone(),
        hang,
        fail_first,
        hits: hits.clone(),
    };
    let app = axum::Router::new()
        .route(
            "/hook/secret-path",
            axum::routing::any(|State(h): State<Hook>, body: String| async move {
                let n = h.hits.fetch_add(1, Ordering::SeqCst);
                if h.hang {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                if n < h.fail_first {
                    return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down");
                }
                if let Ok(v) = serde_json::from_str(&body) {
                    h.bodies.lock().expect("lock").push(v);
                }
                (axum::http::StatusCode::OK, "ok")
            }),
        )
        .route(
            "/redirect",
            axum::routing::any(|| async {
                (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [("location", "/hook/secret-path")],
                    "",
                )
            }),
        )
        .with_state(state);
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
        hits,
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
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("alert not delivered; retrying")
        },
    )
    .await;
    // While the receiver hangs (attempts of 1 s, 2 s, 4 s… apart), scams are still deleted
    // within a poll or two.
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
    // Retried, never marked told while the receiver hangs; the outage logged once.
    wait_for("three attempts", Duration::from_secs(30), || async {
        hook.hits.load(Ordering::SeqCst) >= 3
    })
    .await;
    assert_eq!(
        count(
            &env.pool().await,
            "SELECT COUNT(*) FROM alert_state WHERE notified = 1"
        )
        .await,
        0
    );
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(logs.matches("alert not delivered").count(), 1, "{logs}");
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

/// `igmod run -c config` with `vars` added to its environment (the daemon's secrets as an
/// operator's unit would set them), its stderr appended to `log`.
fn spawn_daemon_with_env(
    config: &std::path::Path,
    log: &std::path::Path,
    vars: &[(&str, &str)],
) -> KillOnDrop {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut cmd = igmod();
    cmd.args(["run", "-c"])
        .arg(config)
        .envs(vars.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    spawn(&mut cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_command_sees_no_token_and_no_app_secret() {
    let env = Env::new().await;
    let out = env.dir.path().join("alert.env");
    let script = env.dir.path().join("dump-env.sh");
    // Written aside then renamed: the test never reads half a file.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nenv > {0}.part && mv {0}.part {0}\n",
            out.display()
        ),
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // acme's token and the app secret come from the environment, as under systemd.
    let acme = env
        .account("acme", ACME, "")
        .replace("token_file = ", "token_env = \"IGMOD_TOKEN_ACME\"\n# ");
    let app = env.app().replace(
        "app_secret_file = ",
        "app_secret_env = \"IGMOD_APP_SECRET\"\n# ",
    );
    let accounts = format!(
        "{app}[[alerts]]\non = [\"account_stopped\"]\ncommand = \"{}\"\n\n{acme}{}",
        script.display(),
        env.account("globex", GLOBEX, "")
    );
    env.sim.kill_token(GLOBEX, 460);
    // Loaded by the daemon only: the variables are in its environment, not the test's.
    let config = env.write_config(&accounts, "alert_check = \"1s\"");
    create_db(&env.db());
    let log = env.dir.path().join("igmod.log");
    let token = Env::token("acme");
    let child = spawn_daemon_with_env(
        &config,
        &log,
        &[
            ("IGMOD_TOKEN_ACME", &token),
            ("IGMOD_APP_SECRET", Env::APP_SECRET),
            ("LANG", "C.UTF-8"),
        ],
    );
    wait_for("the command ran", Duration::from_secs(30), || async {
        std::fs::metadata(&out).is_ok()
    })
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let seen = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(!seen.contains("IGMOD_TOKEN_"), "a token variable: {seen}");
    assert!(!seen.contains(&token), "a token: {seen}");
    assert!(!seen.contains(Env::APP_SECRET), "the app secret: {seen}");
    assert!(!seen.contains("IGMOD_APP_SECRET"), "{seen}");
    let names: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    assert!(
        names
            .iter()
            .all(|n| matches!(*n, "PATH" | "LANG" | "PWD" | "SHLVL" | "_")
                || n.starts_with("IGMOD_ALERT_")),
        "{names:?}"
    );
    assert!(seen.contains("IGMOD_ALERT_KIND=account_stopped"), "{seen}");
    assert!(seen.contains("IGMOD_ALERT_ACCOUNT=globex"), "{seen}");
    assert!(seen.contains("LANG=C.UTF-8"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_still_gets_the_alert_once_told_once_logged() {
    let env = Env::new().await;
    // The first three posts are answered 500: more than `igmod alerts test` tries.
    let hook = receiver_failing(false, 3).await;
    let config = two_accounts_one_dead(
        &env,
        &format!(
            "on = [\"account_stopped\"]\nurl = \"{}\"\ntimeout = \"1s\"",
            hook.url
        ),
    );
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    let bodies = hook.bodies.clone();
    wait_for(
        "the alert after the outage",
        Duration::from_secs(60),
        || async { !kinds(&bodies.lock().expect("lock"), "account_stopped").is_empty() },
    )
    .await;
    // Told: stored as such, and not told again at the next checks.
    wait_for("the state stored", Duration::from_secs(5), || async {
        count(
            &env.pool().await,
            "SELECT COUNT(*) FROM alert_state WHERE notified = 1",
        )
        .await
            == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let b = bodies.lock().expect("lock").clone();
    assert_eq!(
        kinds(&b, "account_stopped"),
        [("firing".to_string(), "globex".to_string())]
    );
    assert_eq!(hook.hits.load(Ordering::SeqCst), 4);
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(logs.matches("alert not delivered").count(), 1, "{logs}");
    assert_eq!(
        logs.matches("alert target answers again").count(),
        1,
        "{logs}"
    );
    assert!(!logs.contains("secret-path"), "the URL's path was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirecting_alert_url_is_not_followed() {
    let env = Env::new().await;
    let hook = receiver(false).await;
    let redirect = hook.url.replace("/hook/secret-path", "/redirect");
    let accounts = format!(
        "[[alerts]]\non = [\"scam_wave\"]\nurl = \"{redirect}\"\ntimeout = \"1s\"\n\n{}",
        env.account("acme", ACME, "")
    );
    let config = env.write_config(&accounts, "");
    let (code, stdout, stderr) = run(igmod().args(["alerts", "test", "-c"]).arg(&config));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("alerts[0] url on 127.0.0.1: FAILED: answered HTTP 307"),
        "{stdout}"
    );
    assert_eq!(
        hook.hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    assert!(hook.bodies.lock().expect("lock").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_alert_url_off_loopback_is_refused_at_load() {
    let env = Env::new().await;
    let accounts = format!(
        "[[alerts]]\non = [\"scam_wave\"]\nurl = \"http://alerts.example.com/hook/secret-path\"\n\n{}",
        env.account("acme", ACME, "")
    );
    let config = env.write_config(&accounts, "");
    for sub in ["check-config", "run"] {
        let (code, stdout, stderr) = run(igmod().args([sub, "-c"]).arg(&config));
        assert_eq!(code, 78, "{sub}: {stdout}{stderr}");
        let text = std::fs::read_to_string(&config).unwrap_or_default();
        let line = text
            .find("url = \"http://alerts")
            .map_or(0, |at| text[..at].matches('\n').count() + 1);
        let prefix = format!(
            "{}:{line}:7: alerts.url: http:// is allowed only to loopback",
            config.display()
        );
        assert!(
            stderr.lines().any(|l| l.starts_with(&prefix)),
            "{sub}: expected {prefix:?} in:\n{stderr}"
        );
        assert!(!stderr.contains("secret-path"), "{stderr}");
    }
    // The same URL over https, or http on loopback, loads.
    for ok in ["https://alerts.example.com/hook", "http://127.0.0.1:9/hook"] {
        let accounts = format!(
            "[[alerts]]\non = [\"scam_wave\"]\nurl = \"{ok}\"\n\n{}",
            env.account("acme", ACME, "")
        );
        let config = env.write_config(&accounts, "");
        let (code, stdout, stderr) = run(igmod().args(["check-config", "-c"]).arg(&config));
        assert_eq!(code, 0, "{ok}: {stdout}{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_account_raises_stalled_and_resolves_when_polls_end_again() {
    let env = Env::new().await;
    let hook = receiver(false).await;
    let accounts = format!(
        "[[alerts]]\non = [\"stalled\"]\nurl = \"{}\"\n\n{}",
        hook.url,
        env.account("acme", ACME, "")
    );
    let config = env.config(&accounts, "alert_check = \"1s\"").path;
    env.sim.add_media(ACME);
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    let db = env.pool().await;
    wait_polled(&db, 1).await;
    // Polls go on: nothing stalls.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(kinds(&hook.bodies.lock().expect("lock"), "stalled").is_empty());
    // Every answer now takes far longer than the 1 s interval: no poll ends for 3 intervals.
    env.sim.set_delay(Duration::from_secs(20));
    let bodies = hook.bodies.clone();
    wait_for("the stalled alert", Duration::from_secs(30), || async {
        !kinds(&bodies.lock().expect("lock"), "stalled").is_empty()
    })
    .await;
    env.sim.set_delay(Duration::ZERO);
    wait_for("the resolution", Duration::from_secs(60), || async {
        kinds(&bodies.lock().expect("lock"), "stalled").len() >= 2
    })
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let b = bodies.lock().expect("lock").clone();
    let stalled = kinds(&b, "stalled");
    assert_eq!(stalled[0], ("firing".to_string(), "acme".to_string()));
    assert_eq!(stalled[1], ("resolved".to_string(), "acme".to_string()));
    let summary = b
        .iter()
        .find(|e| e["kind"] == "stalled")
        .and_then(|e| e["summary"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(summary.contains("has not finished a poll"), "{summary}");
}

/// The commented `[[alerts]]` of `config.toml.example`, uncommented, loads: its `on` list
/// (every kind, `stalled` included) and its https URL stay true to the code.
#[test]
fn the_examples_alerts_table_loads() {
    let example = include_str!("../config.toml.example");
    let mut out = String::new();
    let mut in_alerts = false;
    for line in example.lines() {
        if line == "# [[alerts]]" {
            in_alerts = true;
        } else if in_alerts && !line.starts_with("# ") {
            in_alerts = false;
        }
        let line = if in_alerts {
            line.trim_start_matches("# ")
        } else {
            line
        };
        out.push_str(line);
        out.push('\n');
    }
    assert!(
        out.contains("\n[[alerts]]\non = ["),
        "no [[alerts]] in the example"
    );
    assert!(
        out.contains("\"stalled\""),
        "the example does not name stalled"
    );
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, out).expect("write");
    for d in ["models", "rules"] {
        let _ = std::os::unix::fs::symlink(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(d),
            dir.path().join(d),
        );
    }
    let (code, stdout, stderr) = run(igmod()
        .args(["check-config", "-c"])
        .arg(&path)
        .env("IGMOD_TOKEN_ACME", "x"));
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_waiting_out_a_throttle_is_not_stalled() {
    let env = Env::new().await;
    let hook = receiver(false).await;
    let accounts = format!(
        "[[alerts]]\non = [\"stalled\"]\nurl = \"{}\"\n\n{}",
        hook.url,
        env.account("acme", ACME, "")
    );
    let config = env.config(&accounts, "alert_check = \"1s\"").path;
    env.sim.add_media(ACME);
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    let db = env.pool().await;
    wait_polled(&db, 1).await;
    // Meta throttles the account for a minute, without a usage header (so its interval is not
    // stretched): it polls no more, on purpose, until the pause ends.
    env.sim.throttle_silently(ACME, Duration::from_secs(60));
    wait_for("the pause", Duration::from_secs(20), || async {
        count(
            &db,
            "SELECT COUNT(*) FROM account_state WHERE paused_until > strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
        )
        .await
            == 1
    })
    .await;
    // Well past three 1 s intervals without a poll's end, and several checks.
    tokio::time::sleep(Duration::from_secs(7)).await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let b = hook.bodies.lock().expect("lock").clone();
    assert!(kinds(&b, "stalled").is_empty(), "{b:?}");
}
