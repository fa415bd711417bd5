//! Meta's deliveries and set-up as Meta documents them (docs/graph-contract.md, "Deliveries
//! and set-up"), through the real binary against the strict simulator: batches of 1,000
//! changes, the body limit, `comment_id`-keyed changes with millisecond times,
//! `pages_manage_metadata` for a Page's subscription, and a paged `me/accounts`.

mod common;

use std::time::Duration;

use common::hook::{hook_config, one_hour_account, wait_listening};
use common::*;
use igmod::simulator::{BatchForm, CommentKey, MAX_CHANGES_PER_POST, page_id};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `start` followed by `filler` repeated, cut at exactly 2,200 characters (Instagram's most).
fn long_comment(start: &str, filler: &str) -> String {
    let mut text = start.to_string();
    while text.chars().count() < 2200 {
        text.push_str(filler);
    }
    text.chars().take(2200).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_batch_of_1000_long_comments_is_accepted_and_every_comment_decided() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let media = env.sim.add_media(ACME);
    let (child, db) = hook.start_polled(&env).await;
    let mut ids = Vec::new();
    let mut scams = Vec::new();
    for i in 0..1000 {
        let scam = i % 10 == 0;
        let text = if scam {
            long_comment(
                &format!("forex signals dm me now {i} "),
                "ça rapporte gros 💰 ",
            )
        } else {
            long_comment(&format!("what a lovely photo {i} "), "ça va très bien 😀 ")
        };
        let id = env.sim.add_comment(&media, &format!("user{i}"), &text);
        if scam {
            scams.push(id.clone());
        }
        ids.push(id);
    }
    // As Meta batches: several entries, many changes each, all in one POST.
    let bodies = env.sim.webhook_batches(&ids, BatchForm::default());
    assert_eq!(bodies.len(), 1, "1,000 changes fit one POST");
    assert!(
        bodies[0].len() > 2 * 1024 * 1024,
        "the batch is {} bytes",
        bodies[0].len()
    );
    let sent = std::time::Instant::now();
    assert_eq!(env.sim.post_webhook(&hook.url, &bodies[0]).await, Some(200));
    let answered = sent.elapsed();
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(DISTINCT comment_id) FROM webhook_events WHERE account = 'acme'"
        )
        .await,
        1000,
        "every change of the batch recorded"
    );
    wait_for(
        "every comment of the batch decided",
        Duration::from_secs(120),
        || async {
            count(
                &db,
                "SELECT COUNT(*) FROM webhook_events WHERE account = 'acme' AND outcome IN ('decided', 'passed')",
            )
            .await
                == 1000
        },
    )
    .await;
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM comments WHERE account = 'acme' AND disposition = 'evaluated'"
        )
        .await,
        1000
    );
    wait_for("every scam deleted", Duration::from_secs(120), || async {
        scams
            .iter()
            .all(|id| env.sim.comment(id).is_some_and(|c| c.deleted))
    })
    .await;
    // Figures, not assertions (docs/benchmarks.md).
    println!(
        "1,000-change batch: {} bytes, answered 200 in {answered:?}, every comment decided and every scam deleted {:?} after it was sent",
        bodies[0].len(),
        sent.elapsed()
    );
    let deleted = env.sim.comments().iter().filter(|c| c.deleted).count();
    assert_eq!(deleted, scams.len(), "only the scams were deleted");
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metas_largest_batch_fits_the_body_limit_and_a_larger_body_gets_413() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    // Another account of the app, not configured here: its changes are recorded, not acted on.
    env.sim.add_account(GLOBEX, "globex", &Env::token("globex"));
    let media = env.sim.add_media(GLOBEX);
    let child = spawn_daemon(&hook.config, Some(&hook.log));
    let db = env.pool().await;
    wait_listening(&hook.url).await;
    // The JSON-escaped worst case: every character of 2,200 written as `\u00XX`.
    let worst = "\u{1}".repeat(2200);
    let ids: Vec<String> = (0..MAX_CHANGES_PER_POST)
        .map(|i| env.sim.add_comment(&media, &format!("user{i}"), &worst))
        .collect();
    let bodies = env.sim.webhook_batches(
        &ids,
        BatchForm {
            per_entry: 1000,
            ..BatchForm::default()
        },
    );
    assert_eq!(bodies.len(), 1);
    assert!(
        bodies[0].len() > 13_200_000,
        "the worst case is {} bytes",
        bodies[0].len()
    );
    let sent = std::time::Instant::now();
    assert_eq!(env.sim.post_webhook(&hook.url, &bodies[0]).await, Some(200));
    let answered = sent.elapsed();
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM webhook_events WHERE outcome = 'unknown_account'"
        )
        .await,
        1000
    );
    // Figures, not assertions (docs/benchmarks.md): the answer's time and the daemon's peak
    // resident memory after the batch.
    let peak = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .map(str::to_string)
        .unwrap_or_default();
    println!(
        "worst-case batch: {} bytes, answered 200 in {answered:?}; daemon {peak}",
        bodies[0].len()
    );
    // Past the limit (16 MiB): refused on its head, before a byte of it is read (the
    // connection is closed, so the answer is read from a raw socket that sends only the head).
    let signature = igmod::simulator::Simulator::sign_webhook(Env::APP_SECRET, b"{}");
    let head = format!(
        "POST /hooks/meta HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\n\r\n",
        16 * 1024 * 1024 + 1
    );
    let addr = hook
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port")
        .to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    socket.write_all(head.as_bytes()).await.expect("head sent");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM webhook_events").await,
        1000
    );
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_id_keyed_change_with_a_millisecond_time_is_acted_on() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let media = env.sim.add_media(ACME);
    let (child, db) = hook.start_polled(&env).await;
    let scam = env
        .sim
        .add_comment(&media, "bot", "forex signals dm me now");
    let bodies = env.sim.webhook_batches(
        std::slice::from_ref(&scam),
        BatchForm {
            key: Some(CommentKey::CommentId),
            millis: true,
            per_entry: 1,
        },
    );
    let body = String::from_utf8_lossy(&bodies[0]).to_string();
    assert!(body.contains("\"comment_id\""), "{body}");
    assert_eq!(env.sim.post_webhook(&hook.url, &bodies[0]).await, Some(200));
    wait_for("the scam deleted", Duration::from_secs(20), || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_a_page_needs_pages_manage_metadata_and_says_so() {
    let env = Env::new().await;
    let globex = env.facebook_account("globex", GLOBEX, "USER", Some(50), &ALL_SCOPES, "");
    let hook = hook_config(&env, &globex);
    let cli = |args: &[&str]| run(igmod().args(args).arg("-c").arg(&hook.config));
    let (code, out, err) = cli(&["webhook", "subscribe", "globex"]);
    assert_ne!(
        code, 0,
        "subscribed without pages_manage_metadata: {out}{err}"
    );
    assert!(
        err.contains("the token lacks pages_manage_metadata"),
        "{out}{err}"
    );
    assert_eq!(env.sim.subscription(&page_id(GLOBEX)), None);
    // The person logs in again granting it.
    let mut scopes = ALL_SCOPES.to_vec();
    scopes.push("pages_manage_metadata");
    env.sim.set_facebook(GLOBEX, "USER", Some(50), 80, &scopes);
    let (code, out, err) = cli(&["webhook", "subscribe", "globex"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(env.sim.subscription(&page_id(GLOBEX)).is_some());
    for secret in [Env::token("globex"), Env::APP_SECRET.to_string()] {
        assert!(!out.contains(&secret) && !err.contains(&secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_the_second_page_of_me_accounts_is_found() {
    let env = Env::new().await;
    let mut scopes = ALL_SCOPES.to_vec();
    scopes.push("pages_manage_metadata");
    let globex = env.facebook_account("globex", GLOBEX, "USER", Some(50), &scopes, "");
    // 30 other Pages first: the account's is the 31st, on the second page of 25.
    env.sim.set_other_pages(30);
    let hook = hook_config(&env, &globex);
    let cli = |args: &[&str]| run(igmod().args(args).arg("-c").arg(&hook.config));
    let (code, out, err) = cli(&["webhook", "subscribe", "globex"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(env.sim.subscription(&page_id(GLOBEX)).is_some());
    let (code, out, err) = cli(&["webhook", "status", "globex"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is subscribed"), "{out}");
    // Two reads of `me/accounts` each time, the second with the cursor, not the `next` URL
    // (which embeds the token: the simulator refuses a query token).
    assert_eq!(env.sim.requests_to("me/accounts"), 4);
    assert!(
        env.sim
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("me/accounts"))
            .all(|r| r.status == 200)
    );
    for secret in [Env::token("globex"), Env::APP_SECRET.to_string()] {
        assert!(!out.contains(&secret) && !err.contains(&secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_slow_bodies_hold_only_their_own_lane_and_a_small_delivery_goes_through() {
    let env = Env::new().await;
    let hook = hook_config(&env, &one_hour_account(&env));
    let media = env.sim.add_media(ACME);
    let (child, _db) = hook.start_polled(&env).await;
    // More big bodies than the large lane's slots, each with a signature of the right form
    // (wrong secret) and one byte of a declared 10 MiB: they hold their lane for 10 s.
    let wrong = igmod::simulator::Simulator::sign_webhook("not-the-secret", b"{}");
    let addr = hook
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port")
        .to_string();
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let head = format!(
            "POST /hooks/meta HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {wrong}\r\nContent-Length: {}\r\n\r\n{{",
            10 * 1024 * 1024
        );
        s.write_all(head.as_bytes()).await.expect("head sent");
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let scam = env
        .sim
        .add_comment(&media, "bot", "forex signals dm me now");
    let bodies = env
        .sim
        .webhook_batches(std::slice::from_ref(&scam), BatchForm::default());
    // Not 408: a small delivery does not wait behind the big ones.
    assert_eq!(env.sim.post_webhook(&hook.url, &bodies[0]).await, Some(200));
    wait_for("the scam deleted", Duration::from_secs(10), || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    drop(slow);
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}
