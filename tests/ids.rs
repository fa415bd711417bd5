//! Ids that cannot become paths: signed webhook deliveries whose comment id is not in Meta's
//! form (a path, a query, whitespace, empty), through the real binary against the simulator,
//! cause no Graph request and are recorded as refused.

mod common;

use std::time::Duration;

use common::hook::{hook_config, wait_listening};
use common::*;
use igmod::simulator::Simulator;
use serde_json::json;

async fn post_signed(url: &str, body: &[u8]) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            Simulator::sign_webhook(Env::APP_SECRET, body),
        )
        .body(body.to_vec())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// A comment delivery in Meta's Instagram Login shape, a scam the rules delete.
fn scam(owner: &str, id: &str, media: &str) -> Vec<u8> {
    json!({"object": "instagram", "entry": [{"id": owner, "time": chrono::Utc::now().timestamp(),
        "field": "comments", "value": {"id": id, "text": "forex signals dm me now",
        "from": {"id": "9001", "username": "bot"},
        "media": {"id": media, "media_product_type": "FEED"}}}]})
    .to_string()
    .into_bytes()
}

const BAD_IDS: [&str; 8] = [
    "1/../../me/permissions",
    "1%2F..%2F..%2Fme",
    "1?fields=x",
    "1&x=y",
    "1 2",
    "1\n",
    "",
    "../17841400000000001",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_delivery_with_an_id_that_is_a_path_sends_nothing_and_is_refused() {
    let env = Env::new().await;
    // Polls once at start, then hourly: only the webhooks can cause requests in the test.
    let account = env
        .account("acme", ACME, "backfill = true")
        .replace("poll_interval = \"1s\"", "poll_interval = \"1h\"");
    let hook = hook_config(&env, &account);
    let (url, config, log) = (hook.url, hook.config, hook.log);
    let media = env.sim.add_media(ACME);
    let child = spawn_daemon(&config, Some(&log));
    let db = env.pool().await;
    wait_listening(&url).await;
    wait_polled(&db, 1).await;
    let before = env.sim.requests().len();
    for bad in BAD_IDS {
        assert_eq!(
            post_signed(&url, &scam(ACME, bad, &media)).await,
            200,
            "{bad:?}"
        );
    }
    // Then a real scam: once it is deleted, every delivery before it has been taken.
    let real = env
        .sim
        .add_comment(&media, "bot", "forex signals dm me now");
    assert_eq!(post_signed(&url, &scam(ACME, &real, &media)).await, 200);
    wait_for("the real scam deleted", Duration::from_secs(10), || async {
        env.sim.comment(&real).is_some_and(|c| c.deleted)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent: Vec<(String, String)> = env.sim.requests()[before..]
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    // What the real delivery alone causes: its delete, nothing else.
    assert_eq!(
        sent,
        [("DELETE".to_string(), format!("/v25.0/{real}"))],
        "requests caused by the deliveries"
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM webhook_events WHERE outcome LIKE 'refused%'"
        )
        .await,
        i64::try_from(BAD_IDS.len()).unwrap_or(0)
    );
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM comments")
        .fetch_all(&db)
        .await
        .expect("comment ids");
    assert!(
        ids.iter()
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit() || b == b'_')),
        "a refused id was recorded as a comment: {ids:?}"
    );
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    // Refused and logged once for the source, not once per delivery.
    assert_eq!(
        logs.matches("an id not in Meta's form was refused").count(),
        1,
        "{logs}"
    );
}
