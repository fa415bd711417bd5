//! `igmod demo`: the bundled simulator with two accounts, posts and live comment traffic; the
//! real daemon (scheduler, HTTP client, SQLite file) polling it; and a summary of what it did.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::simulator::{Simulator, Traffic};
use crate::store::Store;
use crate::{config, daemon};

/// The rules of the README's example config (the tests use them too).
pub const RULES: &str = r#"
[[rules]]
name = "trusted"
action = "approve"
usernames = ["acme_support", "acme"]

[[rules]]
name = "scam"
action = "delete"
words = ["crypto signal", "forex", "dm me to earn"]

[[rules]]
name = "scam-dm"
action = "delete"
regex = ['(?i)\bdm\s+@\w+\s+(for|to)\b']

[[rules]]
name = "profanity"
action = "hide"
words = ["idiot", "scumbag"]

[[rules]]
name = "links"
action = "hide"
links = true
allow_domains = ["acme.com"]

[[rules]]
name = "mention-spam"
action = "hide"
max_mentions = 3
"#;

const ACCOUNTS: &[(&str, &str)] = &[
    ("acme", "17841400000000001"),
    ("globex", "17841400000000002"),
];

/// The rules the demo adds when it has a model: the example config's model rules (it hides
/// in English, and flags for a person in other languages and what is too short to tell).
pub const MODEL_RULE: &str = r#"
[[rules]]
name = "scam-model"
action = "hide"
classifier = { model = "models/scam.model", min_score = 0.85 }
languages = ["en"]

[[rules]]
name = "scam-model-unsure-language"
action = "hide"
classifier = { model = "models/scam.model", min_score = 0.95 }
languages = ["en", "und"]
not_regex = ['@[a-z0-9_]']

[[rules]]
name = "scam-model-unknown-language"
action = "flag"
classifier = { model = "models/scam.model", min_score = 0.85 }
languages = ["und"]
regex = ['\pL']

[[rules]]
name = "scam-model-other-languages"
action = "flag"
classifier = { model = "models/scam.model", min_score = 0.6 }
not_languages = ["en"]
"#;

/// Runs the demo for `seconds`; with `model`, the example's classifier rule joins the rules
/// (a missing default model is reported, and the demo runs on the rules alone).
pub async fn run(seconds: u64, dir: Option<PathBuf>, model: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            d
        }
        None => tempfile::Builder::new()
            .prefix("igmod-demo-")
            .tempdir()
            .context("cannot create a temp dir")?
            .keep(),
    };
    let sim = Arc::new(
        Simulator::start()
            .await
            .context("cannot start the simulator")?,
    );
    let mut media = Vec::new();
    let mut accounts_toml = String::new();
    for (i, (name, id)) in ACCOUNTS.iter().enumerate() {
        let token = format!("demo-token-{name}-{:016x}", rand::random::<u64>());
        sim.add_account(id, name, &token);
        let token_file = dir.join(format!("{name}.token"));
        write_private(&token_file, &token)?;
        for _ in 0..3 {
            media.push(sim.add_media(id));
        }
        // A comment from before igmod started: recorded, not moderated (backfill = false).
        sim.add_comment(&media[i * 3], "early_bird", "first! forex anyone?");
        sim.add_owner_comment(
            &media[i * 3 + 2],
            "Thanks everyone, you idiots are the best 😄",
        );
        accounts_toml.push_str(&format!(
            "[[accounts]]\nname = \"{name}\"\nig_user_id = \"{id}\"\nlogin = \"instagram\"\ntoken_file = \"{}\"\npoll_interval = \"10s\"\nhourly_budget = 2000\nrecent_media = 20\nbackfill = false\n\n",
            token_file.display()
        ));
    }
    let mut rules = RULES.to_string();
    let mut model_note = String::from("rules only (--no-model)");
    if let Some(model) = model {
        let models = dir.join("models");
        std::fs::create_dir_all(&models)
            .with_context(|| format!("cannot create {}", models.display()))?;
        match std::fs::copy(&model, models.join("scam.model")) {
            Ok(_) => {
                rules.push_str(MODEL_RULE);
                model_note = format!("rules + the classifier {}", model.display());
            }
            Err(e) => {
                model_note = format!(
                    "rules only: no model at {} ({e}); run from the source tree or pass --model PATH",
                    model.display()
                );
            }
        }
    }
    let db = dir.join("igmod.db");
    let config_path = dir.join("config.toml");
    // The simulator's app signs its webhooks with this secret; igmod receives them on a free
    // loopback port.
    let app_secret = format!("demo-app-secret-{:016x}", rand::random::<u64>());
    sim.set_app("1234567890", &app_secret);
    let secret_file = dir.join("app.secret");
    write_private(&secret_file, &app_secret)?;
    let verify_file = dir.join("verify.token");
    write_private(
        &verify_file,
        &format!("demo-verify-{:016x}", rand::random::<u64>()),
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .context("no free port for the webhook receiver")?;
    let text = format!(
        "# Written by `igmod demo`: the daemon polls a local Graph API simulator, which also\n# delivers webhooks to it.\n[daemon]\ndatabase = \"{}\"\n\n[graph]\nfacebook_base_url = \"{base}\"\ninstagram_base_url = \"{base}\"\napi_version = \"v25.0\"\ntimeout = \"5s\"\n\n[app]\napp_id = \"1234567890\"\napp_secret_file = \"{}\"\n\n[webhook]\nlisten = \"127.0.0.1:{port}\"\npath = \"/webhook\"\nverify_token_file = \"{}\"\n\n{accounts_toml}{rules}",
        db.display(),
        secret_file.display(),
        verify_file.display(),
        base = sim.base_url()
    );
    std::fs::write(&config_path, text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let config =
        config::load(&config_path).map_err(|e| anyhow::anyhow!("demo config is invalid:\n{e}"))?;
    let config_for_report = config.clone();

    println!(
        "igmod demo: simulator on {}, {} accounts, {} posts",
        sim.base_url(),
        ACCOUNTS.len(),
        media.len()
    );
    println!("            config {}", config_path.display());
    println!("            {model_note}");
    println!(
        "            comments arrive for {seconds}s; webhooks bring them at once (1 in 10 is\n            dropped on purpose), polls every 10s reconcile\n"
    );

    // Meta retries a delivery the receiver did not take: the first ones may arrive while the
    // daemon is still starting.
    sim.deliver_webhooks(
        &format!("http://127.0.0.1:{port}/webhook"),
        crate::simulator::WebhookFaults {
            drop: 0.1,
            seed: 7,
            ..Default::default()
        },
    );
    let stop = CancellationToken::new();
    let traffic = tokio::spawn(Traffic::new(7, media).run(
        sim.clone(),
        Duration::from_millis(250),
        stop.clone(),
    ));
    let run_for = Duration::from_secs(seconds);
    // Let the daemon take one more poll after the traffic stops, so every comment is seen.
    let daemon = daemon::run(config, async move {
        tokio::time::sleep(run_for).await;
        stop.cancel();
        tokio::time::sleep(Duration::from_secs(11)).await;
    });
    daemon.await.context("the daemon failed")?;
    let stats = traffic.await.unwrap_or_default();

    let store = Store::open(&db).await?;
    let decided = store.decided_comments(10_000).await?;
    println!(
        "\n{} comments and {} replies were posted; igmod recorded {} comments and decided {}.",
        stats.comments,
        stats.replies,
        store.comment_count("acme").await? + store.comment_count("globex").await?,
        decided.len()
    );
    for (action, status, n) in store.decision_counts().await? {
        let status = status.map(|s| format!(" ({s})")).unwrap_or_default();
        println!("  {action:<8}{status:<10} {n}");
    }
    // Which path found each acted-on comment, and how long it stayed visible.
    let by_webhook = store.webhook_decided().await?;
    let mut latency: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
    for d in &decided {
        let Some(c) = sim.comment(&d.comment_id) else {
            continue;
        };
        if let Some(at) = c.acted_at {
            let i = usize::from(!by_webhook.contains(&d.comment_id));
            latency[i].push((at - c.timestamp).num_milliseconds());
        }
    }
    let median = |v: &mut Vec<i64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    };
    let [mut hooked, mut polled] = latency;
    println!(
        "\nActed on by webhook: {} (median {} from comment to action); by polling: {} (median {}).",
        hooked.len(),
        median(&mut hooked).map_or("-".to_string(), |m| format!("{m} ms")),
        polled.len(),
        median(&mut polled).map_or("-".to_string(), |m| format!("{m} ms")),
    );
    let hooks = sim.webhook_stats();
    println!(
        "Webhooks: {} sent, {} dropped on purpose (the polls found those).",
        hooks.delivered, hooks.dropped
    );
    println!(
        "\nKinds of comment the demo follows (posted → hidden or deleted on Instagram, or flagged: left up for a person):"
    );
    let flagged: std::collections::HashSet<&str> = decided
        .iter()
        .filter(|d| d.action == "flag")
        .map(|d| d.comment_id.as_str())
        .collect();
    for (kind, _) in crate::simulator::KINDS {
        let ids: Vec<&String> = stats
            .followed
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| id)
            .collect();
        let gone = ids
            .iter()
            .filter_map(|id| sim.comment(id))
            .filter(|c| c.hidden || c.deleted)
            .count();
        let flags = ids
            .iter()
            .filter(|id| flagged.contains(id.as_str()))
            .count();
        println!(
            "  {kind}: {} posted, {gone} hidden or deleted, {flags} flagged",
            ids.len()
        );
    }
    println!("\nWhat igmod did (newest first):");
    for d in decided
        .iter()
        .filter(|d| matches!(d.action.as_str(), "delete" | "hide" | "flag"))
        .take(15)
    {
        let gone = sim
            .comment(&d.comment_id)
            .map(|c| {
                if c.deleted {
                    "deleted"
                } else if c.hidden {
                    "hidden"
                } else if d.action == "flag" {
                    "left up for a person"
                } else {
                    "still visible"
                }
            })
            .unwrap_or("?");
        println!(
            "  {:<7} [{}] @{}: {:?} — rule {} ({}) → on Instagram: {gone}",
            d.action,
            d.account,
            d.username.as_deref().unwrap_or("?"),
            crate::evaluate::truncate(d.text.as_deref().unwrap_or(""), 60),
            d.rule,
            d.reason,
        );
    }
    // The report and a /metrics snapshot, next to the audit database.
    let report = dir.join("report.html");
    let now = chrono::Utc::now();
    let html = crate::report::render(
        &config_for_report,
        &store,
        now - chrono::Duration::days(30),
        now,
    )
    .await
    .context("cannot render the report")?;
    std::fs::write(&report, html).with_context(|| format!("cannot write {}", report.display()))?;
    let metrics = dir.join("metrics.txt");
    std::fs::write(&metrics, crate::metrics::get().encode(now.timestamp()))
        .with_context(|| format!("cannot write {}", metrics.display()))?;
    store.close().await;
    println!("\nReport (open in a browser): {}", report.display());
    println!(
        "Metrics snapshot (what /metrics served at the end): {}",
        metrics.display()
    );
    println!("\nAudit database: {}", db.display());
    println!(
        "  sqlite3 {} 'select rule, action, count(*) from decisions group by 1, 2'",
        db.display()
    );
    println!(
        "  sqlite3 {} 'select c.username, c.text, d.rule, a.status from decisions d join comments c on c.id = d.comment_id left join actions a on a.comment_id = d.comment_id limit 20'",
        db.display()
    );
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
