//! The raid guard against the strict simulator: a bot wave on one post switches its comments
//! off (`POST /{media-id}?comment_enabled=false`, graph-api.md §5 and §12) and back on after
//! `close_for`, through the real daemon (in-process or the built binary) and a real SQLite file.

mod common;

use common::{ACME, Env};

/// The simulator keeps Meta's contract for the switch (docs/graph-contract.md, "Raid guard").
#[tokio::test]
async fn the_simulator_switches_comments_as_meta_documents() {
    let env = Env::new().await;
    let token = Env::token("acme");
    env.sim.add_account(ACME, "acme", &token);
    let other_token = Env::token("globex");
    env.sim.add_account(common::GLOBEX, "globex", &other_token);
    let post = env.sim.add_media(ACME);
    let live = env.sim.add_live_media(ACME);
    let base = env.sim.base_url();
    let http = reqwest::Client::new();
    let post_switch = |media: &str, value: &str, token: &str| {
        http.post(format!("{base}/v25.0/{media}"))
            .query(&[("comment_enabled", value)])
            .bearer_auth(token)
            .send()
    };
    let json = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.expect("json");
        (status, body)
    };

    let (status, body) = json(post_switch(&post, "false", &token).await.expect("send")).await;
    assert_eq!((status, body["success"].as_bool()), (200, Some(true)));
    assert_eq!(env.sim.comments_enabled(&post), Some(false));
    let read = http
        .get(format!("{base}/v25.0/{post}"))
        .query(&[("fields", "id,is_comment_enabled")])
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    let (status, body) = json(read).await;
    assert_eq!(
        (status, body["is_comment_enabled"].as_bool()),
        (200, Some(false))
    );
    // Instagram refuses comments on a post whose comments are off.
    assert_eq!(env.sim.add_comment(&post, "someone", "hello"), "");
    assert_eq!(env.sim.refused_comments(), 1);

    let (status, body) = json(post_switch(&post, "true", &token).await.expect("send")).await;
    assert_eq!((status, body["success"].as_bool()), (200, Some(true)));
    assert!(!env.sim.add_comment(&post, "someone", "hello").is_empty());

    // Refused: on live video, for another account's post, without a valid value.
    let (status, body) = json(post_switch(&live, "false", &token).await.expect("send")).await;
    assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(100)));
    assert_eq!(env.sim.comments_enabled(&live), Some(true));
    let (_, body) = json(
        post_switch(&post, "false", &other_token)
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (
            body["error"]["code"].as_i64(),
            body["error"]["error_subcode"].as_i64()
        ),
        (Some(100), Some(33))
    );
    assert_eq!(env.sim.comments_enabled(&post), Some(true));
    let (_, body) = json(post_switch(&post, "off", &token).await.expect("send")).await;
    assert_eq!(body["error"]["code"].as_i64(), Some(100));
    assert_eq!(env.sim.comments_enabled(&post), Some(true));
}
