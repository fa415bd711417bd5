//! `/metrics`, `/healthz` and `/readyz` through the real binary over loopback, and the shipped
//! alert rules and dashboard checked against what `/metrics` serves.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// The value of the first sample line that starts with `series` (name and labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Metric family names declared by `# TYPE` lines.
fn families(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// The igmod metric names an expression uses, reduced to their family (no `_total`,
/// `_bucket`, `_sum`, `_count`).
fn used_families(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"igmod_[a-z_]+").expect("regex");
    re.find_iter(text)
        .map(|m| {
            let name = m.as_str();
            ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name)
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_moderation_and_health_follows_the_database() {
    let env = Env::new().await;
    let port = free_port();
    let accounts = format!(
        "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n{}",
        env.account("acme", ACME, "backfill = true")
    );
    let config = env.config(&accounts, "").path;
    let media = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&media, "bot", "forex signals dm me");
    env.sim.add_comment(&media, "fan", "love it");
    // The first answers are slow: /readyz is seen waiting for the first poll.
    env.sim.set_delay(Duration::from_secs(2));
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    let base = format!("http://127.0.0.1:{port}");
    wait_for("the metrics server", Duration::from_secs(20), || async {
        get(&format!("{base}/healthz")).await.0 != 0
    })
    .await;
    let (code, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("\"waiting_for_first_poll\":[\"acme\"]"),
        "{body}"
    );
    env.sim.set_delay(Duration::ZERO);
    wait_for("the scam deleted", Duration::from_secs(30), || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    let (code, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = get(&format!("{base}/healthz")).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"database\":\"writable\""), "{body}");

    let (code, metrics) = get(&format!("{base}/metrics")).await;
    assert_eq!(code, 200);
    assert_eq!(
        sample(
            &metrics,
            "igmod_decisions_total{account=\"acme\",rule=\"scam\",action=\"delete\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "igmod_actions_total{status=\"done\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "igmod_detection_latency_seconds_count"),
        Some(1.0)
    );
    assert!(sample(&metrics, "igmod_polls_total{status=\"ok\"}").is_some_and(|n| n >= 1.0));
    assert!(
        sample(
            &metrics,
            "igmod_api_calls_total{kind=\"Write\",outcome=\"ok\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "igmod_accounts{status=\"ok\"}"), Some(1.0));
    assert!(!metrics.contains("igmod_account_problem{"), "{metrics}");
    // No comment ids, usernames or texts in labels; no token.
    for leak in [scam.as_str(), "bot", "forex", &Env::token("acme")] {
        assert!(!metrics.contains(leak), "{leak} in /metrics");
    }
    // The token metric says what `status` says.
    let expiry = sample(
        &metrics,
        "igmod_token_expiry_timestamp_seconds{account=\"acme\"}",
    )
    .expect("token expiry");
    let (_, out, _) = run(igmod().args(["status", "--json", "-c"]).arg(&config));
    let rows: serde_json::Value = serde_json::from_str(&out).expect("status json");
    let shown = rows[0]["token_expires_at"].as_str().expect("expiry shown");
    let shown = chrono::DateTime::parse_from_rfc3339(shown)
        .map(|t| t.timestamp() as f64)
        .expect("rfc3339");
    assert_eq!(expiry, shown);

    // A database locked for longer than the probe may wait: unhealthy, then healthy again.
    let db = env.pool().await;
    let mut lock = db.acquire().await.expect("connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *lock)
        .await
        .expect("lock");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (code, body) = get(&format!("{base}/healthz")).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("database cannot be written"), "{body}");
    // The detail is the log's; the answer is fixed text.
    assert!(
        !body.contains("locked") && !body.contains("waited"),
        "{body}"
    );
    sqlx::query("COMMIT")
        .execute(&mut *lock)
        .await
        .expect("unlock");
    drop(lock);
    wait_for("healthy again", Duration::from_secs(15), || async {
        get(&format!("{base}/healthz")).await.0 == 200
    })
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_and_dashboard_use_only_metrics_igmod_serves() {
    let env = Env::new().await;
    let port = free_port();
    // Served on the webhook receiver's server: the same address for both.
    let verify = env.dir.path().join("verify");
    std::fs::write(&verify, "v").expect("verify");
    let accounts = format!(
        "{}[webhook]\nlisten = \"127.0.0.1:{port}\"\nverify_token_file = \"{}\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n{}",
        env.app(),
        verify.display(),
        env.account("acme", ACME, "")
    ) + &env.account("globex", GLOBEX, "");
    // globex's token is dead: its account stops, and its problem series appears.
    env.sim.kill_token(GLOBEX, 460);
    let config = env.config(&accounts, "").path;
    let child = spawn_daemon(&config, None);
    let base = format!("http://127.0.0.1:{port}");
    wait_for("the first poll", Duration::from_secs(20), || async {
        get(&format!("{base}/readyz")).await.0 == 200
    })
    .await;
    // A decision, so the decisions family has a series.
    let media = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&media, "bot", "forex");
    wait_for("the scam deleted", Duration::from_secs(20), || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    let (_, metrics) = get(&format!("{base}/metrics")).await;
    assert_eq!(
        sample(
            &metrics,
            "igmod_account_problem{account=\"globex\",problem=\"stopped\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "igmod_accounts{status=\"stopped\"}"),
        Some(1.0)
    );
    assert_eq!(
        get(&format!("{base}/webhook")).await.0,
        403,
        "the receiver shares the server"
    );
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let served = families(&metrics);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let alerts = root.join("contrib/prometheus/igmod-alerts.yml");
    let dashboard = root.join("contrib/grafana/igmod.json");
    for file in [&alerts, &dashboard] {
        let text = std::fs::read_to_string(file).expect("contrib file");
        let used = used_families(&text);
        assert!(!used.is_empty());
        let missing: Vec<_> = used.difference(&served).collect();
        assert!(
            missing.is_empty(),
            "{} uses {missing:?}; /metrics serves {served:?}",
            file.display()
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dashboard).expect("dashboard"))
            .expect("dashboard is JSON");
    assert!(json["panels"].as_array().is_some_and(|p| p.len() >= 10));
    // promtool parses the rules as Prometheus will (.ci/run installs Debian's prometheus).
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&alerts)
        .output()
        .expect("promtool is installed (apt-get install prometheus)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS: 6 rules found"), "{text}");
}
