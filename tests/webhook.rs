//! Meta's webhooks, through the real binary over loopback: verification, signatures, both
//! payload shapes, test events, own comments, unknown accounts, duplicates, the body limit, a
//! database that cannot be written, a crash after the 200, subscriptions, appsecret_proof.

mod common;

use std::time::Duration;

use common::hook::{VERIFY_TOKEN, hook_config, one_hour_account, wait_listening};
use common::*;
use igmod::simulator::{Simulator, WebhookFaults};
use serde_json::json;

async fn post(url: &str, body: &[u8], signature: Option<&str>) -> u16 {
    let mut req = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client")
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

async fn post_signed(url: &str, body: &[u8]) -> u16 {
    post(
        url,
        body,
        Some(&Simulator::sign_webhook(Env::APP_SECRET, body)),
    )
    .await
}

/// Now, in Unix seconds (as Meta's `time`).
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Meta's Instagram Login shape (`field`/`value` on the entry).
fn flat(owner: &str, id: &str, media: &str, username: &str, from: &str, text: &str) -> Vec<u8> {
    json!({"object": "instagram", "entry": [{"id": owner, "time": now(),
        "field": "comments", "value": {"id": id, "text": text,
        "from": {"id": from, "username": username},
        "media": {"id": media, "media_product_type": "FEED"}}}]})
    .to_string()
    .into_bytes()
}

/// Meta's `changes` shape.
fn changes(owner: &str, field: &str, id: &str, media: &str, text: &str) -> Vec<u8> {
    json!({"object": "instagram", "entry": [{"id": owner, "time": now(),
        "changes": [{"field": field, "value": {"id": id, "text": text,
        "from": {"id": "555", "username": "someone"},
        "media": {"id": media, "media_product_type": "FEED"}}}]}]})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_echoes_the_challenge_only_for_the_right_token() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let child = spawn_daemon(&hook.config, Some(&hook.log));
    wait_listening(&hook.url).await;
    let http = reqwest::Client::new();
    let get = |mode: &str, token: &str| {
        let url = format!(
            "{}?hub.mode={mode}&hub.challenge=1158201444&hub.verify_token={token}",
            hook.url
        );
        let http = http.clone();
        async move {
            let r = http.get(url).send().await.expect("get");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    assert_eq!(
        get("subscribe", VERIFY_TOKEN).await,
        (200, "1158201444".into())
    );
    assert_eq!(get("subscribe", "wrong").await.0, 403);
    assert_eq!(get("unsubscribe", VERIFY_TOKEN).await.0, 403);
    let other = http
        .get(hook.url.replace("/hooks/meta", "/other"))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(other.ok(), Some(404));
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let logs = std::fs::read_to_string(&hook.log).unwrap_or_default();
    assert!(
        !logs.contains(VERIFY_TOKEN),
        "verify token in the log:\n{logs}"
    );
    assert!(!logs.contains(Env::APP_SECRET), "app secret in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_delivery_is_acted_on_at_once_and_forged_ones_are_refused() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let post_id = env.sim.add_media(ACME);
    let (child, db) = hook.start_polled(&env).await;
    let reads_before = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    let scam = env
        .sim
        .add_comment(&post_id, "bot", "forex signals dm me now");
    let body = flat(
        ACME,
        &scam,
        &post_id,
        "bot",
        "9001",
        "forex signals dm me now",
    );
    // Forged: no signature, the legacy prefix, a wrong secret, a body altered by one byte.
    assert_eq!(post(&hook.url, &body, None).await, 403);
    let good = Simulator::sign_webhook(Env::APP_SECRET, &body);
    assert_eq!(
        post(&hook.url, &body, Some(&good.replace("sha256=", "sha1="))).await,
        403
    );
    let wrong = Simulator::sign_webhook("not-the-secret", &body);
    assert_eq!(post(&hook.url, &body, Some(&wrong)).await, 403);
    let mut altered = body.clone();
    let at = altered.len() - 10;
    altered[at] ^= 0x01;
    assert_eq!(post(&hook.url, &altered, Some(&good)).await, 403);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM webhook_events").await, 0);
    assert!(!env.sim.comment(&scam).is_some_and(|c| c.deleted));
    // The real one.
    assert_eq!(post(&hook.url, &body, Some(&good)).await, 200);
    wait_for(
        "the scam deleted by webhook",
        Duration::from_secs(5),
        || async { env.sim.comment(&scam).is_some_and(|c| c.deleted) },
    )
    .await;
    let reads_after = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(
        reads_after, reads_before,
        "no read for a comment that came by webhook"
    );
    assert_eq!(
        text(
            &db,
            &format!("SELECT outcome FROM webhook_events WHERE comment_id = '{scam}'")
        )
        .await
        .as_deref(),
        Some("decided")
    );
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let logs = std::fs::read_to_string(&hook.log).unwrap_or_default();
    // One line for the four refusals (at most one a minute), without the body.
    assert_eq!(
        logs.matches("webhook requests refused").count(),
        1,
        "{logs}"
    );
    assert!(
        !logs.contains("forex signals"),
        "the body was logged:\n{logs}"
    );
    assert!(!logs.contains(Env::APP_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_shapes_test_events_own_comments_unknown_accounts_and_duplicates() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let media = env.sim.add_media(ACME);
    let (child, db) = hook.start_polled(&env).await;
    // `changes` shape; a live video's comment is decided like a comment but never written
    // (Meta supports no moderation of live comments: docs/graph-contract.md).
    let live_video = env.sim.add_live_media(ACME);
    let live = env
        .sim
        .add_comment(&live_video, "bot2", "crypto signal giveaway");
    assert_eq!(
        post_signed(
            &hook.url,
            &changes(
                ACME,
                "live_comments",
                &live,
                &live_video,
                "crypto signal giveaway"
            )
        )
        .await,
        200
    );
    // The account's own comment, recognised by self_ig_scoped_id, with a scam-looking text.
    let own = env.sim.add_owner_comment(&media, "forex signals giveaway");
    let own_body =
        json!({"object": "instagram", "entry": [{"id": ACME, "time": now(), "field": "comments",
        "value": {"id": own, "text": "forex signals giveaway",
        "from": {"id": "42", "username": "brand_alias", "self_ig_scoped_id": "77"},
        "media": {"id": media, "media_product_type": "FEED"}}}]})
        .to_string();
    assert_eq!(post_signed(&hook.url, own_body.as_bytes()).await, 200);
    // Meta's dashboard test event (entry id 0), an unknown account, an unknown field and
    // object: all 200, none acted on.
    assert_eq!(
        post_signed(
            &hook.url,
            &flat("0", "17865799348089039", "123", "test", "1", "forex")
        )
        .await,
        200
    );
    assert_eq!(
        post_signed(
            &hook.url,
            &flat("17841499999999999", "123456", "9", "x", "1", "forex")
        )
        .await,
        200
    );
    assert_eq!(
        post_signed(
            &hook.url,
            &changes(ACME, "mentions", "777", &media, "forex")
        )
        .await,
        200
    );
    let page = json!({"object": "page", "entry": [{"id": "1", "changes": [{"field": "feed", "value": {}}]}]}).to_string();
    assert_eq!(post_signed(&hook.url, page.as_bytes()).await, 200);
    // A duplicate delivery of a scam, three times: answered 200 each time (Meta stops
    // retrying), written and acted on once.
    let dup = env.sim.add_comment(&media, "bot3", "forex signals dm me");
    let dup_body = flat(ACME, &dup, &media, "bot3", "9003", "forex signals dm me");
    for _ in 0..3 {
        assert_eq!(post_signed(&hook.url, &dup_body).await, 200);
    }
    wait_for("the scam deleted", Duration::from_secs(10), || async {
        env.sim.comment(&dup).is_some_and(|c| c.deleted)
    })
    .await;
    wait_for("every event taken", Duration::from_secs(10), || async {
        count(
            &db,
            "SELECT COUNT(*) FROM webhook_events WHERE outcome = 'pending'",
        )
        .await
            == 0
    })
    .await;
    let outcome = |id: String| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT group_concat(outcome, ',') FROM (SELECT outcome FROM webhook_events WHERE comment_id = ?1 ORDER BY id)",
            )
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap_or_default()
        }
    };
    assert_eq!(outcome(live.clone()).await, "decided");
    assert!(
        env.sim
            .comment(&live)
            .is_some_and(|c| !c.deleted && c.delete_calls == 0),
        "a live comment is never written"
    );
    assert_eq!(outcome(own.clone()).await, "own");
    assert_eq!(outcome(dup.clone()).await, "decided");
    assert_eq!(outcome("17865799348089039".into()).await, "test");
    assert_eq!(outcome("123456".into()).await, "unknown_account");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM webhook_events WHERE outcome = 'ignored'"
        )
        .await,
        2
    );
    assert!(
        !env.sim.comment(&own).is_some_and(|c| c.deleted || c.hidden),
        "own comment left alone"
    );
    assert_eq!(
        env.sim.comment(&dup).map(|c| c.delete_calls),
        Some(1),
        "decided once, deleted once"
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM decisions WHERE comment_id = '{dup}'")
        )
        .await,
        1
    );
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let logs = std::fs::read_to_string(&hook.log).unwrap_or_default();
    assert_eq!(logs.matches("not configured here").count(), 1, "{logs}");
    // status shows the last webhook.
    let (code, out, _) = run(igmod().args(["status", "-c"]).arg(&hook.config));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("webhooks:   last 20"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_bodies_are_refused_and_nothing_is_written() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let child = spawn_daemon(&hook.config, Some(&hook.log));
    let db = env.pool().await;
    wait_listening(&hook.url).await;
    // 2 MiB is within the limit (16 MiB, Meta's largest batch; past it, 413: see
    // tests/contract_webhooks.rs): read, then refused as malformed.
    let big = vec![b'x'; 2 * 1024 * 1024];
    assert_eq!(post_signed(&hook.url, &big).await, 400);
    assert_eq!(
        post_signed(&hook.url, b"{\"object\": \"instagram\", \"entry\": [").await,
        400
    );
    assert_eq!(post_signed(&hook.url, b"[]").await, 400);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM webhook_events").await, 0);
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_answered_200_is_acted_on_after_a_crash() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let media = env.sim.add_media(ACME);
    let scam = env
        .sim
        .add_comment(&media, "bot", "forex signals dm me now");
    let db = env.pool().await;
    // Every Graph answer takes 15 s: the account's task is still validating its token when the
    // delivery is answered, and the process is killed right after the 200.
    env.sim.set_delay(Duration::from_secs(15));
    let child = spawn_daemon(&hook.config, Some(&hook.log));
    wait_listening(&hook.url).await;
    let body = flat(
        ACME,
        &scam,
        &media,
        "bot",
        "9001",
        "forex signals dm me now",
    );
    assert_eq!(post_signed(&hook.url, &body).await, 200);
    kill(child.id(), "-KILL");
    assert_eq!(wait_exit(child).await, None);
    assert_eq!(
        text(&db, "SELECT outcome FROM webhook_events")
            .await
            .as_deref(),
        Some("pending"),
        "written before the 200"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM decisions").await, 0);
    assert!(!env.sim.comment(&scam).is_some_and(|c| c.deleted));
    env.sim.set_delay(Duration::ZERO);
    let child = spawn_daemon(&hook.config, Some(&hook.log));
    wait_for(
        "the scam deleted after the restart",
        Duration::from_secs(20),
        || async { env.sim.comment(&scam).is_some_and(|c| c.deleted) },
    )
    .await;
    // Taken from the inbox (before the first poll could find it).
    assert_eq!(
        text(&db, "SELECT outcome FROM webhook_events")
            .await
            .as_deref(),
        Some("decided")
    );
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_be_written_answers_503_so_meta_retries() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let media = env.sim.add_media(ACME);
    let _ = env.pool().await;
    // The database may not grow past 1 MB (as a full disk: writes fail, no signal).
    let script = format!(
        "trap '' XFSZ; ulimit -f 1024; exec {} run -c {}",
        env!("CARGO_BIN_EXE_igmod"),
        hook.config.display()
    );
    let child = spawn(
        std::process::Command::new("sh")
            .args(["-c", &script])
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&hook.log).expect("log")),
    );
    wait_listening(&hook.url).await;
    // Deliveries of 200 KB comments until one cannot be written.
    let mut statuses = Vec::new();
    for i in 0..12 {
        let text = format!("{} hello {i}", "lorem ".repeat(34_000));
        let body = flat(
            ACME,
            &format!("1800000000{i:02}"),
            &media,
            "fan",
            "9",
            &text,
        );
        statuses.push(post_signed(&hook.url, &body).await);
        if statuses.last() == Some(&503) {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&503), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    kill(child.id(), "-TERM");
    let _ = wait_exit(child).await;
    let logs = std::fs::read_to_string(&hook.log).unwrap_or_default();
    assert!(
        logs.contains("answered 503 so that meta retries it"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_delivers_signed_webhooks_with_faults_and_every_scam_is_still_acted_on() {
    let env = Env::new().await;
    // Polling every 3 s reconciles what the dropped deliveries missed.
    let accounts = env
        .account("acme", ACME, "backfill = true")
        .replace("poll_interval = \"1s\"", "poll_interval = \"3s\"");
    let hook = hook_config(&env, &accounts);
    let media = env.sim.add_media(ACME);
    let (child, db) = hook.start_polled(&env).await;
    env.sim.deliver_webhooks(
        &hook.url,
        WebhookFaults {
            delay: Duration::from_millis(20),
            drop: 0.3,
            duplicate: 0.3,
            reorder: Duration::from_millis(300),
            forged: 0.2,
            seed: 7,
        },
    );
    let scams: Vec<String> = (0..30)
        .map(|i| {
            env.sim.add_comment(
                &media,
                &format!("bot{i}"),
                &format!("forex signals dm me {i}"),
            )
        })
        .collect();
    let fans: Vec<String> = (0..10)
        .map(|i| {
            env.sim
                .add_comment(&media, &format!("fan{i}"), "love this colour")
        })
        .collect();
    wait_for("every scam deleted", Duration::from_secs(30), || async {
        scams
            .iter()
            .all(|id| env.sim.comment(id).is_some_and(|c| c.deleted))
    })
    .await;
    let stats = env.sim.webhook_stats();
    assert!(
        stats.dropped > 0 && stats.duplicated > 0 && stats.forged > 0,
        "{stats:?}"
    );
    assert_eq!(
        stats.forged_refused, stats.forged,
        "every forged delivery refused"
    );
    for id in &scams {
        assert_eq!(
            env.sim.comment(id).map(|c| c.delete_calls),
            Some(1),
            "one write for {id}"
        );
    }
    for id in &fans {
        assert!(!env.sim.comment(id).is_some_and(|c| c.deleted || c.hidden));
    }
    let outcomes: Vec<(String, i64)> =
        sqlx::query_as("SELECT outcome, COUNT(*) FROM webhook_events GROUP BY outcome")
            .fetch_all(&db)
            .await
            .unwrap_or_default();
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM webhook_events WHERE outcome = 'decided'"
        )
        .await
            > 0,
        "{outcomes:?} {stats:?}"
    );
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_unsubscribe_and_status_through_the_cli() {
    let env = Env::new().await;
    // Subscribing a Page needs pages_manage_metadata (docs/graph-contract.md).
    let mut scopes = ALL_SCOPES.to_vec();
    scopes.push("pages_manage_metadata");
    let accounts = format!(
        "{}{}",
        env.account("acme", ACME, ""),
        env.facebook_account("globex", GLOBEX, "USER", Some(50), &scopes, "")
    );
    let hook = hook_config(&env, &accounts);
    let cli = |args: &[&str]| run(igmod().args(args).arg("-c").arg(&hook.config));
    let (code, out, _) = cli(&["check-config"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("webhook: {} (verify token from file", hook.url)),
        "{out}"
    );
    assert!(!out.contains(VERIFY_TOKEN));
    let (code, out, err) = cli(&["webhook", "subscribe", "acme"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        env.sim.subscription(ACME),
        Some(vec!["comments".to_string(), "live_comments".to_string()])
    );
    let (code, out, _) = cli(&["webhook", "status", "acme"]);
    assert_eq!(code, 0);
    assert!(out.contains("comments, live_comments"), "{out}");
    // Facebook Login: the Page linked to the account is subscribed, with its own token.
    let (code, out, err) = cli(&["webhook", "subscribe", "globex"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        env.sim
            .subscription(&igmod::simulator::page_id(GLOBEX))
            .is_some()
    );
    let (code, _, _) = cli(&["webhook", "unsubscribe", "acme"]);
    assert_eq!(code, 0);
    assert_eq!(env.sim.subscription(ACME), None);
    let (_, out, _) = cli(&["webhook", "status", "acme"]);
    assert!(out.contains("not subscribed"), "{out}");
    // An app that is not Live: Meta's refusal in plain words.
    env.sim.set_app_not_live(true);
    let (code, out, err) = cli(&["webhook", "subscribe", "acme"]);
    assert_ne!(code, 0);
    assert!(err.contains("Live mode with Advanced Access"), "{out}{err}");
    for secret in [
        Env::token("acme"),
        Env::token("globex"),
        Env::APP_SECRET.to_string(),
    ] {
        assert!(!out.contains(&secret) && !err.contains(&secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facebook_login_calls_carry_appsecret_proof_and_its_absence_is_explained() {
    let env = Env::new().await;
    env.sim.require_appsecret_proof(true);
    let globex = env.facebook_account(
        "globex",
        GLOBEX,
        "PAGE",
        None,
        &ALL_SCOPES,
        "backfill = true",
    );
    // With [app]: every call carries the proof and moderation works.
    let with_app = format!("{}{globex}", env.app());
    let config = env.write_config(&with_app, "");
    create_db(&env.db());
    let media = env.sim.add_media(GLOBEX);
    let scam = env.sim.add_comment(&media, "bot", "forex signals dm me");
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    wait_for("the scam deleted", Duration::from_secs(20), || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    assert!(
        env.sim.requests().iter().all(|r| r.status == 200),
        "a call went without its proof"
    );
    // Without [app]: the refusal gets its own explanation.
    let config = env.write_config(&globex, "");
    let log2 = env.dir.path().join("igmod2.log");
    let child = spawn_daemon(&config, Some(&log2));
    wait_for("the refusal explained", Duration::from_secs(20), || async {
        std::fs::read_to_string(&log2)
            .unwrap_or_default()
            .contains("the app requires appsecret_proof")
    })
    .await;
    kill(child.id(), "-TERM");
    let _ = wait_exit(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_comments_came_by_webhook_costs_the_polls_no_paging() {
    let env = Env::new().await;
    let hook = hook_config(
        &env,
        &env.account("acme", ACME, "backfill = true")
            .replace("poll_interval = \"1s\"", "poll_interval = \"2s\""),
    );
    let media = env.sim.add_media(ACME);
    env.sim.add_comment(&media, "fan", "first!");
    let child = spawn_daemon(&hook.config, Some(&hook.log));
    let db = env.pool().await;
    wait_listening(&hook.url).await;
    wait_for(
        "the first comment read",
        Duration::from_secs(20),
        || async { count(&db, "SELECT COUNT(*) FROM comments").await == 1 },
    )
    .await;
    env.sim
        .deliver_webhooks(&hook.url, WebhookFaults::default());
    // Right after a poll, so the deliveries (milliseconds) come well before the next one.
    let listed = env.sim.requests_to("/media");
    wait_for("a poll", Duration::from_secs(10), || async {
        env.sim.requests_to("/media") > listed
    })
    .await;
    let pages_before = env.sim.requests_to("/comments");
    let scam = env.sim.add_comment(&media, "bot", "forex signals dm me");
    let fan = env.sim.add_comment(&media, "fan2", "lovely colour");
    let reply = env.sim.add_reply(&fan, "fan3", "agreed!");
    wait_for("the scam deleted", Duration::from_secs(10), || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    wait_for("all three taken", Duration::from_secs(10), || async {
        count(
            &db,
            "SELECT COUNT(*) FROM webhook_events WHERE outcome IN ('decided', 'passed')",
        )
        .await
            == 3
    })
    .await;
    // Several polls (every 2 s) list the post; none pages its comments.
    wait_more_polls(&db, 3, Duration::from_secs(15)).await;
    assert_eq!(
        env.sim.requests_to("/comments"),
        pages_before,
        "a poll paged comments that came by webhook"
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM comments WHERE id = '{reply}' AND parent_id = '{fan}'")
        )
        .await,
        1
    );
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}

/// The receiver's `host:port`.
fn addr(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A connection that sends `head` and nothing more.
async fn half_sent(url: &str, head: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr(url))
        .await
        .expect("connect");
    s.write_all(head.as_bytes()).await.expect("send the head");
    s
}

/// What the server sent before it closed the connection; `None` if it is still open after
/// `limit`.
async fn until_closed(s: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_and_idle_connections_are_closed_within_the_header_timeout() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let child = spawn_daemon(&hook.config, Some(&hook.log));
    wait_listening(&hook.url).await;
    let started = std::time::Instant::now();
    let mut half = half_sent(
        &hook.url,
        "POST /hooks/meta HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl",
    )
    .await;
    // A complete request, then the connection kept alive and idle.
    let mut idle = half_sent(
        &hook.url,
        "GET /hooks/meta?hub.mode=subscribe&hub.challenge=7&hub.verify_token=x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .await;
    let (half, idle) = tokio::join!(
        until_closed(&mut half, Duration::from_secs(20)),
        until_closed(&mut idle, Duration::from_secs(20)),
    );
    let took = started.elapsed();
    assert!(half.is_some(), "a half-sent request still open after 20 s");
    let idle = idle.expect("an idle kept-alive connection still open after 20 s");
    assert!(idle.starts_with("HTTP/1.1 403"), "{idle}");
    // The header timeout is 10 s: closed then, with a margin for a loaded machine.
    assert!(took < Duration::from_secs(15), "closed after {took:?}");
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_with_well_formed_wrong_signatures_do_not_stop_a_signed_delivery() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let media = env.sim.add_media(ACME);
    let (child, _db) = hook.start_polled(&env).await;
    // Twice as many as the old receiver's body-read slots: each sends its head with a
    // signature of the right form (wrong secret) and 9 bytes of a 1,000-byte body.
    let wrong = Simulator::sign_webhook("not-the-secret", b"{}");
    let mut slow = Vec::new();
    for _ in 0..8 {
        slow.push(
            half_sent(
                &hook.url,
                &format!(
                    "POST /hooks/meta HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {wrong}\r\nContent-Length: 1000\r\n\r\n{{\"object\""
                ),
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let scam = env
        .sim
        .add_comment(&media, "bot", "forex signals dm me now");
    let body = flat(
        ACME,
        &scam,
        &media,
        "bot",
        "9001",
        "forex signals dm me now",
    );
    let signed = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
        .post(&hook.url)
        .header(
            "x-hub-signature-256",
            Simulator::sign_webhook(Env::APP_SECRET, &body),
        )
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(
        signed.ok(),
        Some(200),
        "the signed delivery was not answered"
    );
    wait_for("the scam deleted", Duration::from_secs(5), || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    // The slow bodies are cut off (body timeout, 10 s): 408, connection closed.
    for s in &mut slow {
        let answer = until_closed(s, Duration::from_secs(20)).await;
        let answer = answer.expect("a slow body still held after 20 s");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_malformed_signature_is_refused_before_the_body_is_sent() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let child = spawn_daemon(&hook.config, Some(&hook.log));
    wait_listening(&hook.url).await;
    let good_form = Simulator::sign_webhook("whatever", b"{}");
    for header in [
        String::new(),
        "X-Hub-Signature-256: sha256=abc\r\n".into(),
        format!(
            "X-Hub-Signature-256: {}\r\n",
            good_form.replace("sha256=", "sha1=")
        ),
        format!("X-Hub-Signature-256: {}0\r\n", good_form),
        format!("X-Hub-Signature-256: {}\r\n", good_form.replace('a', "g")),
    ] {
        // The head announces 100 bytes of body; none is sent.
        let mut s = half_sent(
            &hook.url,
            &format!(
                "POST /hooks/meta HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n{header}\r\n"
            ),
        )
        .await;
        let answer = until_closed(&mut s, Duration::from_secs(5)).await;
        let answer = answer.unwrap_or_else(|| panic!("no answer without a body for {header:?}"));
        assert!(answer.starts_with("HTTP/1.1 403"), "{header:?}: {answer}");
    }
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_stale_deliveries_are_not_acted_on_and_millisecond_times_are_read() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let media = env.sim.add_media(ACME);
    let (child, db) = hook.start_polled(&env).await;
    let events = "SELECT COUNT(*) FROM webhook_events";
    // Delivered, then the same signed bytes again (a replay, or Meta's retry): 200, nothing
    // written the second time.
    let fan = env.sim.add_comment(&media, "fan", "love this colour");
    let body = flat(ACME, &fan, &media, "fan", "9002", "love this colour");
    assert_eq!(post_signed(&hook.url, &body).await, 200);
    assert_eq!(count(&db, events).await, 1);
    assert_eq!(post_signed(&hook.url, &body).await, 200);
    assert_eq!(count(&db, events).await, 1, "the replay was written");
    // A captured delivery of a scam, replayed 39 hours later (its `time` is then): recorded
    // as stale, not acted on.
    let old = env
        .sim
        .add_comment(&media, "bot", "forex signals dm me now");
    let mut stale: serde_json::Value = serde_json::from_slice(&flat(
        ACME,
        &old,
        &media,
        "bot",
        "9001",
        "forex signals dm me now",
    ))
    .expect("json");
    stale["entry"][0]["time"] = json!(now() - 39 * 3600);
    assert_eq!(
        post_signed(&hook.url, stale.to_string().as_bytes()).await,
        200
    );
    // Then a fresh one whose `time` is in milliseconds: acted on. The task takes its events
    // in order, so the stale one was looked at before this one is done.
    let scam = env.sim.add_comment(&media, "bot2", "forex signals dm me");
    let mut fresh: serde_json::Value = serde_json::from_slice(&flat(
        ACME,
        &scam,
        &media,
        "bot2",
        "9003",
        "forex signals dm me",
    ))
    .expect("json");
    fresh["entry"][0]["time"] = json!(now() * 1000);
    assert_eq!(
        post_signed(&hook.url, fresh.to_string().as_bytes()).await,
        200
    );
    wait_for(
        "the fresh scam deleted",
        Duration::from_secs(10),
        || async { env.sim.comment(&scam).is_some_and(|c| c.deleted) },
    )
    .await;
    assert_eq!(
        text(
            &db,
            &format!("SELECT outcome FROM webhook_events WHERE comment_id = '{old}'")
        )
        .await
        .as_deref(),
        Some("stale")
    );
    assert!(!env.sim.comment(&old).is_some_and(|c| c.deleted || c.hidden));
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM decisions WHERE comment_id = '{old}'")
        )
        .await,
        0
    );
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let logs = std::fs::read_to_string(&hook.log).unwrap_or_default();
    assert!(!logs.contains("ACCOUNT STOPPED"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_half_sent_requests_never_stops_an_account_whose_token_is_in_a_file() {
    let env = Env::new().await;
    // Polls every second, reading its token file each time; health on the receiver's port.
    let accounts = format!(
        "{}[metrics]\nlisten = \"LISTEN\"\n\n",
        env.account("acme", ACME, "backfill = true")
    );
    let hook = hook_config(&env, &accounts);
    let listen = addr(&hook.url);
    let config = std::fs::read_to_string(&hook.config)
        .expect("config")
        .replace("LISTEN", &listen);
    std::fs::write(&hook.config, config).expect("config");
    let media = env.sim.add_media(ACME);
    // 200 open files, soft and hard (igmod cannot raise it): the flood is twice that.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_igmod"));
    cmd.env_remove("IGMOD_CONFIG")
        .env_remove("RUST_LOG")
        .args(["run", "-c"])
        .arg(&hook.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&hook.log).expect("log"));
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 200,
                    rlim_max: 200,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = spawn(&mut cmd);
    let db = env.pool().await;
    wait_listening(&hook.url).await;
    wait_polled(&db, 1).await;
    let mut flood = Vec::new();
    for _ in 0..400 {
        // A server that no longer accepts (the kernel's backlog full) ends the flood early.
        let connect = tokio::time::timeout(
            Duration::from_secs(2),
            half_sent(
                &hook.url,
                "POST /hooks/meta HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Len",
            ),
        );
        match connect.await {
            Ok(s) => flood.push(s),
            Err(_) => break,
        }
    }
    assert!(flood.len() > 200, "only {} connections", flood.len());
    // While they hang: polls go on (each reads the token file), health answers, and a signed
    // delivery is acted on.
    wait_more_polls(&db, 3, Duration::from_secs(20)).await;
    let health = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
        .get(format!("http://{listen}/healthz"))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(health.ok(), Some(200));
    // What the cap refused is counted.
    let metrics = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    let capped = metrics
        .lines()
        .find(|l| {
            l.starts_with("igmod_http_refused_total{")
                && l.contains("server=\"webhook\"")
                && l.contains("reason=\"connection_cap\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok());
    assert!(capped.is_some_and(|n| n >= 100.0), "{metrics}");
    let scam = env
        .sim
        .add_comment(&media, "bot", "forex signals dm me now");
    let body = flat(
        ACME,
        &scam,
        &media,
        "bot",
        "9001",
        "forex signals dm me now",
    );
    assert_eq!(post_signed(&hook.url, &body).await, 200);
    wait_for("the scam deleted", Duration::from_secs(10), || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    drop(flood);
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let logs = std::fs::read_to_string(&hook.log).unwrap_or_default();
    assert!(!logs.contains("ACCOUNT STOPPED"), "{logs}");
    assert_eq!(
        logs.matches("connection cap reached").count(),
        1,
        "one line for the cap:\n{logs}"
    );
}
