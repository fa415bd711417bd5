//! Meta's contract for live video, replies, own comments and fields by login
//! (docs/graph-contract.md, "Live video, replies, own comments, fields by login"), held against
//! the strict simulator through the real daemon and binary.

mod common;

use std::time::Duration;

use common::*;
use igmod::rules::Action;
use igmod::simulator::WebhookFaults;
use igmod::store::{Disposition, NewComment, NewDecision, Store};

const T: Duration = Duration::from_secs(30);

const RULES: &str = r#"
[[rules]]
name = "scam"
action = "delete"
words = ["forex"]

[[rules]]
name = "refund-help"
action = "reply"
reply = "Hi @{{username}}, please DM us your order number."
words = ["refund"]
"#;

const LIVE_REASON: &str = "live video: Meta supports no moderation of live comments";

/// Every write igmod sent to a comment (hide, unhide, delete, reply), as the simulator saw it.
fn comment_writes(env: &Env) -> Vec<String> {
    env.sim
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path.ends_with("subscribed_apps"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

async fn get(url: &str) -> String {
    match reqwest::get(url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_comments_polled_and_pushed_are_decided_but_never_written() {
    let env = Env::new().await;
    // acme (Facebook Login) is polled; globex (Instagram Login) gets live_comments webhooks
    // after its first poll, and polls no more.
    let acme = env.facebook_account("acme", ACME, "PAGE", None, &ALL_SCOPES, "backfill = true");
    let globex = env
        .account("globex", GLOBEX, "backfill = true")
        .replace("poll_interval = \"1s\"", "poll_interval = \"1h\"");
    let port = free_port();
    let metrics_port = free_port();
    let verify = env.dir.path().join("verify.token");
    std::fs::write(&verify, "VERIFY-7e1\n").expect("verify token");
    let tables = format!(
        "{}[webhook]\nlisten = \"127.0.0.1:{port}\"\npath = \"/hooks/meta\"\nverify_token_file = \"{}\"\n\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n{acme}{globex}",
        env.app(),
        verify.display()
    );
    let config = env.write_config_with_rules(&tables, "", RULES);
    create_db(&env.db());
    let polled_live = env.sim.add_live_media(ACME);
    let polled: Vec<String> = (0..3)
        .map(|i| {
            env.sim
                .add_comment(&polled_live, &format!("bot{i}"), "forex signals here")
        })
        .collect();
    let pushed_live = env.sim.add_live_media(GLOBEX);

    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    let db = env.pool().await;
    let url = format!("http://127.0.0.1:{port}/hooks/meta");
    wait_for("the receiver", T, || async {
        reqwest::get(&url).await.is_ok()
    })
    .await;
    wait_polled(&db, 2).await;
    env.sim.deliver_webhooks(&url, WebhookFaults::default());
    let pushed: Vec<String> = (0..3)
        .map(|i| {
            env.sim
                .add_comment(&pushed_live, &format!("spam{i}"), "forex signals here")
        })
        .collect();
    wait_for("six scam decisions", T, || async {
        count(&db, "SELECT COUNT(*) FROM decisions WHERE rule = 'scam'").await == 6
    })
    .await;
    // Time for any write the daemon would have queued.
    wait_more_polls(&db, 3, T).await;
    let (_, audit, _) = run(igmod().args(["audit", "-c"]).arg(&config));
    let metrics = get(&format!("http://127.0.0.1:{metrics_port}/metrics")).await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));

    assert_eq!(comment_writes(&env), Vec::<String>::new(), "no write sent");
    for id in polled.iter().chain(&pushed) {
        let c = env.sim.comment(id).expect("comment");
        assert!(
            !c.deleted && c.delete_calls == 0 && c.hide_calls == 0,
            "{c:?}"
        );
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM actions").await, 0);
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM decisions WHERE rule = 'scam' AND action = 'delete' AND reason LIKE '%{LIVE_REASON}%'")
        )
        .await,
        6
    );
    assert_eq!(audit.matches(LIVE_REASON).count(), 6, "{audit}");
    assert!(
        metrics.contains("igmod_live_comments_total{outcome=\"not_written\"} 6"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instagram_login_account_moderates_without_facebook_only_fields() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&post, "bot", "forex signals here");
    let daemon = start(env.config_with_rules(&accounts, "", RULES));
    wait_for("the scam deleted", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    daemon.stop().await;
    // The strict simulator refuses media_product_type to Instagram Login tokens: no listing
    // failed, so none asked for it.
    let refused = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/media") && r.status != 200)
        .count();
    assert_eq!(refused, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_field_is_dropped_logged_once_and_polling_goes_on() {
    let env = Env::new().await;
    let accounts = env.facebook_account("acme", ACME, "PAGE", None, &ALL_SCOPES, "backfill = true");
    let config = env.write_config_with_rules(&accounts, "", RULES);
    create_db(&env.db());
    env.sim.refuse_media_field("media_product_type");
    let post = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&post, "bot", "forex signals here");
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    let db = env.pool().await;
    wait_for("the scam deleted", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    wait_more_polls(&db, 3, T).await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let log = std::fs::read_to_string(&log).expect("log");
    let named: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refused a media field") && l.contains("media_product_type"))
        .collect();
    assert_eq!(named.len(), 1, "{log}");
    let refused = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/media") && r.status != 200)
        .count();
    assert_eq!(refused, 1, "asked once, then never again");
}

/// The state a crash after "reply started" leaves: the comment, its decision, a pending reply
/// with one attempt.
async fn crashed_mid_reply(env: &Env, media_id: &str, comment_id: &str, message: &str) {
    let store = Store::open(&env.db()).await.expect("store");
    let c = NewComment {
        id: comment_id.to_string(),
        account: "acme".into(),
        media_id: media_id.to_string(),
        parent_id: None,
        username: Some("c1".into()),
        from_id: None,
        text: Some("refund?".into()),
        created_at: None,
        text_key: None,
    };
    let d = NewDecision {
        rule: "refund-help".into(),
        action: Action::Reply,
        reason: "test".into(),
        dry_run: false,
        message: Some(message.to_string()),
        not_written: false,
    };
    assert!(
        store
            .record_comment(&c, Disposition::Evaluated, Some(&d))
            .await
            .expect("record")
    );
    for a in store
        .pending_actions("acme", 0, i64::MAX)
        .await
        .expect("pending")
    {
        store.action_started(a.id, None).await.expect("started");
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_reply_is_found_by_user_though_from_id_is_scoped() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let asked = env.sim.add_comment(&post, "c1", "refund?");
    let config = env.config_with_rules(&accounts, "", RULES);
    let message = "Hi @c1, please DM us your order number.";
    crashed_mid_reply(&env, &post, &asked, message).await;
    let posted = env.sim.add_owner_reply_for_test(&asked, message);
    // Meta's IG-scoped id, not the account id, is what a read shows in `from.id`.
    assert_ne!(
        env.sim.comment(&posted).map(|c| c.from_id),
        Some(ACME.into())
    );
    let daemon = start(config);
    let db = env.pool().await;
    wait_for("the reply reconciled", T, || async {
        count(
            &db,
            "SELECT COUNT(*) FROM actions WHERE status != 'pending'",
        )
        .await
            == 1
    })
    .await;
    wait_more_polls(&db, 2, T).await;
    daemon.stop().await;
    let ours = env
        .sim
        .comments()
        .into_iter()
        .filter(|c| c.by_owner)
        .count();
    assert_eq!(ours, 1, "the reply exists once");
    assert_eq!(
        text(&db, "SELECT status || ': ' || last_error FROM actions")
            .await
            .as_deref(),
        Some("done: reply found when reconciled")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_of_unknown_outcome_is_left_to_a_person_never_sent_again() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let asked = env.sim.add_comment(&post, "c1", "refund?");
    let config = env.config_with_rules(&accounts, "", RULES);
    crashed_mid_reply(
        &env,
        &post,
        &asked,
        "Hi @c1, please DM us your order number.",
    )
    .await;
    let daemon = start(config);
    let db = env.pool().await;
    wait_for("the reply closed", T, || async {
        count(
            &db,
            "SELECT COUNT(*) FROM actions WHERE status != 'pending'",
        )
        .await
            == 1
    })
    .await;
    wait_more_polls(&db, 2, T).await;
    daemon.stop().await;
    assert_eq!(comment_writes(&env), Vec::<String>::new(), "no reply sent");
    assert_eq!(
        text(&db, "SELECT status || ': ' || last_error FROM actions")
            .await
            .as_deref(),
        Some("failed: outcome unknown: check the thread")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_rule_on_a_hidden_comment_calls_no_api() {
    let env = Env::new().await;
    // Facebook Login: the listing asks media_product_type, so only the reply is at stake.
    let accounts = env.facebook_account("acme", ACME, "PAGE", None, &ALL_SCOPES, "backfill = true");
    let post = env.sim.add_media(ACME);
    let asked = env.sim.add_comment(&post, "c1", "refund please");
    env.sim.set_hidden_by_person(&asked, true);
    let daemon = start(env.config_with_rules(&accounts, "", RULES));
    let db = env.pool().await;
    wait_for("the decision", T, || async {
        count(
            &db,
            "SELECT COUNT(*) FROM decisions WHERE rule = 'refund-help'",
        )
        .await
            == 1
    })
    .await;
    wait_more_polls(&db, 3, T).await;
    daemon.stop().await;
    assert_eq!(comment_writes(&env), Vec::<String>::new(), "no reply sent");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM actions").await, 0);
    assert!(
        text(&db, "SELECT reason FROM decisions")
            .await
            .is_some_and(|r| r.contains("Meta allows no reply to a hidden comment"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_rule_firing_on_a_reply_posts_on_the_top_level_comment() {
    let env = Env::new().await;
    // Facebook Login: the listing asks media_product_type, so only the reply is at stake.
    let accounts = env.facebook_account("acme", ACME, "PAGE", None, &ALL_SCOPES, "backfill = true");
    let post = env.sim.add_media(ACME);
    let top = env.sim.add_comment(&post, "fan", "nice shoes");
    let asked = env.sim.add_reply(&top, "c1", "mine broke, refund?");
    let daemon = start(env.config_with_rules(&accounts, "", RULES));
    let db = env.pool().await;
    wait_for("the reply sent", T, || async {
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'done'").await == 1
    })
    .await;
    daemon.stop().await;
    assert_eq!(
        comment_writes(&env),
        vec![format!("POST /v25.0/{top}/replies")],
        "the reply went to the top-level comment, not to {asked}"
    );
}
