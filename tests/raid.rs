//! The raid guard against the strict simulator: a bot wave on one post switches its comments
//! off (`POST /{media-id}?comment_enabled=false`, graph-api.md §5 and §12) and back on after
//! `close_for`, through the real daemon (in-process or the built binary) and a real SQLite file.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::{ACME, Env, count, igmod, kill, run, spawn_daemon, start, text, wait_for};
use igmod::store::Store;

/// More than 10 removals on one post within a minute close it for 10 s (the shortest allowed).
const GUARD: &str = "raid_guard = { max_comments = 10, within = \"1m\", close_for = \"10s\" }";
const CLOSE_FOR: Duration = Duration::from_secs(10);

fn scam(i: usize) -> String {
    format!("crypto signal group {i}, join now")
}

/// How many `comment_enabled` switches igmod sent for `media_id`.
fn switches(env: &Env, media_id: &str) -> usize {
    env.sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(&format!("/{media_id}")))
        .count()
}

fn deleted_on(env: &Env, media_id: &str) -> Vec<igmod::simulator::Comment> {
    let mut gone: Vec<_> = env
        .sim
        .comments()
        .into_iter()
        .filter(|c| c.media_id == media_id && c.deleted)
        .collect();
    gone.sort_by_key(|c| c.acted_at);
    gone
}

/// Waits for the account's first poll (the baseline), so the wave is moderated.
async fn first_poll(env: &Env) {
    let pool = env.pool().await;
    common::wait_polled(&pool, 1).await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_wave_closes_its_post_within_10_s_holds_nothing_else_up_and_reopens_after_close_for()
{
    let env = Env::new().await;
    let accounts = env.account("wave", ACME, GUARD);
    let raided = env.sim.add_media(ACME);
    let other = env.sim.add_media(ACME);
    let config = env.config(&accounts, "");
    let daemon = start(config);
    first_poll(&env).await;

    // 30 scams in 6 s on one post.
    let mut closed_seen: Option<chrono::DateTime<Utc>> = None;
    for i in 0..30 {
        env.sim.add_comment(&raided, &format!("bot{i}"), &scam(i));
        tokio::time::sleep(Duration::from_millis(200)).await;
        if closed_seen.is_none() && env.sim.comments_enabled(&raided) == Some(false) {
            closed_seen = Some(Utc::now());
        }
    }
    if closed_seen.is_none() {
        wait_for(
            "the raided post's comments off",
            Duration::from_secs(20),
            || async { env.sim.comments_enabled(&raided) == Some(false) },
        )
        .await;
        closed_seen = Some(Utc::now());
    }
    let closed_seen = closed_seen.expect("closed");
    // The threshold is crossed by the 11th removal.
    let gone = deleted_on(&env, &raided);
    assert!(gone.len() > 10, "only {} scams deleted", gone.len());
    let crossed = gone[10].acted_at.expect("deleted at");
    let lag = (closed_seen - crossed).num_milliseconds();
    println!("raid guard: comments off {lag} ms after the threshold was crossed");
    assert!(
        lag <= 10_000,
        "comments switched off {lag} ms after the threshold was crossed"
    );

    // While it is closed: new comments on it are refused by Instagram, a scam on another post
    // of the same account is still deleted, the closure is in the audit table, the alert holds.
    let refused = env.sim.refused_comments();
    assert_eq!(env.sim.add_comment(&raided, "late_bot", &scam(99)), "");
    assert_eq!(env.sim.refused_comments(), refused + 1);
    let elsewhere = env
        .sim
        .add_comment(&other, "spammer", "dm me to earn 500/day");
    wait_for(
        "the scam on the other post deleted",
        Duration::from_secs(8),
        || async { env.sim.comment(&elsewhere).is_some_and(|c| c.deleted) },
    )
    .await;
    assert_eq!(
        env.sim.comments_enabled(&raided),
        Some(false),
        "the other post's scam was deleted only after the raided post reopened"
    );
    let pool = env.pool().await;
    assert_eq!(
        text(&pool, "SELECT status FROM raid_closures")
            .await
            .as_deref(),
        Some("closed")
    );
    let store = Store::open(&env.db()).await.expect("store");
    let alerts = igmod::alerts::conditions(&store, Utc::now())
        .await
        .expect("alert conditions");
    let raid = alerts
        .get("raid/wave")
        .expect("a raid alert for the account");
    assert!(raid.2.contains(&raided), "{}", raid.2);
    let metrics = igmod::metrics::get().encode(Utc::now().timestamp());
    assert!(
        metrics.contains("igmod_raid_closures_total{account=\"wave\"} 1"),
        "{metrics}"
    );

    // Reopened after close_for, by itself.
    wait_for(
        "the raided post's comments back on",
        Duration::from_secs(25),
        || async { env.sim.comments_enabled(&raided) == Some(true) },
    )
    .await;
    let reopened_seen = Utc::now();
    assert!(
        (reopened_seen - closed_seen).num_milliseconds() >= 9_000,
        "reopened {} ms after closing, before close_for",
        (reopened_seen - closed_seen).num_milliseconds()
    );
    wait_for_reopened_row(&pool, Duration::from_secs(5)).await;
    let row = text(
        &pool,
        "SELECT status || ' ' || closed_at || ' ' || reopen_at || ' ' || reopened_at FROM raid_closures",
    )
    .await
    .expect("a closure row");
    let parts: Vec<&str> = row.split(' ').collect();
    assert_eq!(parts[0], "reopened", "{row}");
    assert!(parts[3] >= parts[2], "reopened before reopen_at: {row}");
    assert_eq!(switches(&env, &raided), 2, "one switch off, one on");
    let metrics = igmod::metrics::get().encode(Utc::now().timestamp());
    assert!(
        metrics.contains("igmod_raid_reopens_total{account=\"wave\"} 1"),
        "{metrics}"
    );
    assert!(!alerts_after(&store).await.contains_key("raid/wave"));
    store.close().await;
    daemon.stop().await;
}

async fn alerts_after(
    store: &Store,
) -> std::collections::HashMap<String, (igmod::config::alert_kind::AlertKind, Option<String>, String)>
{
    igmod::alerts::conditions(store, Utc::now())
        .await
        .expect("alert conditions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_closed_at_most_once_per_close_for() {
    let env = Env::new().await;
    let accounts = env.account("twice", ACME, GUARD);
    let raided = env.sim.add_media(ACME);
    let config = env.config(&accounts, "");
    let daemon = start(config);
    first_poll(&env).await;
    for i in 0..12 {
        env.sim.add_comment(&raided, &format!("bot{i}"), &scam(i));
    }
    wait_for("the post closed", Duration::from_secs(20), || async {
        env.sim.comments_enabled(&raided) == Some(false)
    })
    .await;
    wait_for("the post reopened", Duration::from_secs(25), || async {
        env.sim.comments_enabled(&raided) == Some(true)
    })
    .await;
    // A second wave right after the reopening: moderated, but the post stays open.
    let second: Vec<String> = (12..24)
        .map(|i| env.sim.add_comment(&raided, &format!("bot{i}"), &scam(i)))
        .collect();
    wait_for(
        "the second wave deleted",
        Duration::from_secs(20),
        || async {
            second
                .iter()
                .all(|id| env.sim.comment(id).is_some_and(|c| c.deleted))
        },
    )
    .await;
    let pool = env.pool().await;
    common::wait_more_polls(&pool, 3, Duration::from_secs(20)).await;
    assert_eq!(env.sim.comments_enabled(&raided), Some(true));
    assert_eq!(switches(&env, &raided), 2, "closed again within close_for");
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM raid_closures").await, 1);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_video_is_never_closed() {
    let env = Env::new().await;
    let accounts = env.account("live", ACME, GUARD);
    let live = env.sim.add_live_media(ACME);
    let config = env.config(&accounts, "");
    let daemon = start(config);
    first_poll(&env).await;
    for i in 0..14 {
        env.sim.add_comment(&live, &format!("bot{i}"), &scam(i));
    }
    let pool = env.pool().await;
    // Whatever igmod does with live comments (delete them, or only record its decisions),
    // more than max_comments of them are decided.
    wait_for("the live wave decided", Duration::from_secs(20), || async {
        count(
            &pool,
            "SELECT COUNT(*) FROM decisions WHERE action = 'delete'",
        )
        .await
            > 10
    })
    .await;
    common::wait_more_polls(&pool, 3, Duration::from_secs(20)).await;
    assert_eq!(
        switches(&env, &live),
        0,
        "a switch was sent for a live video"
    );
    assert_eq!(env.sim.comments_enabled(&live), Some(true));
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM raid_closures").await, 0);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_closes_nothing_and_logs_what_it_would_do() {
    let env = Env::new().await;
    let accounts = env.account("dry", ACME, GUARD);
    let raided = env.sim.add_media(ACME);
    let config = env.write_config(&accounts, "dry_run = true");
    common::create_db(&env.db());
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    first_poll(&env).await;
    for i in 0..12 {
        env.sim.add_comment(&raided, &format!("bot{i}"), &scam(i));
    }
    let pool = env.pool().await;
    wait_for(
        "the wave decided in dry run",
        Duration::from_secs(20),
        || async { count(&pool, "SELECT COUNT(*) FROM decisions WHERE dry_run = 1").await > 10 },
    )
    .await;
    wait_for(
        "the dry-run closure logged",
        Duration::from_secs(15),
        || async {
            std::fs::read_to_string(&log).is_ok_and(|l| {
                l.contains("raid guard (dry run): would switch the post's comments off")
            })
        },
    )
    .await;
    assert_eq!(switches(&env, &raided), 0);
    assert_eq!(env.sim.comments_enabled(&raided), Some(true));
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM raid_closures").await, 0);
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains(&raided), "{logged}");
    kill(child.id(), "-TERM");
    let _ = common::wait_exit(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_post_is_shown_and_reopened_after_a_crash_and_restart() {
    let env = Env::new().await;
    let accounts = env.account("crash", ACME, GUARD);
    let raided = env.sim.add_media(ACME);
    let config = env.write_config(&accounts, "");
    common::create_db(&env.db());
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    first_poll(&env).await;
    for i in 0..12 {
        env.sim.add_comment(&raided, &format!("bot{i}"), &scam(i));
    }
    wait_for("the post closed", Duration::from_secs(20), || async {
        env.sim.comments_enabled(&raided) == Some(false)
    })
    .await;
    let closed_at = Instant::now();

    // `igmod status` and the HTML report show it.
    let (_, out, err) = run(igmod().args(["status", "-c"]).arg(&config));
    assert!(
        out.contains("raid guard: comments off on 1 post(s) until") && out.contains(&raided),
        "{out}{err}"
    );
    let html = env.dir.path().join("report.html");
    let (code, out, err) = run(igmod()
        .args(["report", "-c"])
        .arg(&config)
        .arg("-o")
        .arg(&html));
    assert_eq!(code, 0, "{out}{err}");
    let page = std::fs::read_to_string(&html).expect("report");
    let section = page
        .split("<h2>Raid guard</h2>")
        .nth(1)
        .expect("a raid section");
    assert!(
        section.contains(&raided) && section.contains("closed"),
        "{section}"
    );

    // A crash while closed; igmod is down past close_for: nobody reopens the post.
    kill(child.id(), "-KILL");
    let _ = common::wait_exit(child).await;
    let wait = CLOSE_FOR.saturating_sub(closed_at.elapsed()) + Duration::from_secs(1);
    tokio::time::sleep(wait).await;
    assert_eq!(env.sim.comments_enabled(&raided), Some(false));

    // Started again, it reopens the post it closed.
    let child = spawn_daemon(&config, Some(&log));
    wait_for(
        "the post reopened after the restart",
        Duration::from_secs(20),
        || async { env.sim.comments_enabled(&raided) == Some(true) },
    )
    .await;
    let pool = env.pool().await;
    wait_for_reopened_row(&pool, Duration::from_secs(10)).await;
    let (_, out, _) = run(igmod().args(["status", "-c"]).arg(&config));
    assert!(!out.contains("raid guard: comments off"), "{out}");
    kill(child.id(), "-TERM");
    let _ = common::wait_exit(child).await;
}

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

/// One closure's life in the store, the same on both backends.
async fn closure_round_trip(store: &Store) {
    use igmod::rules::Action;
    use igmod::store::{Disposition, NewComment, NewDecision};
    const POST: &str = "17900000000001";
    const QUIET: &str = "17900000000002";
    for (i, media) in [POST, POST, POST, QUIET].iter().enumerate() {
        let c = NewComment {
            id: format!("1800000000{i}"),
            account: "acme".into(),
            media_id: media.to_string(),
            parent_id: None,
            username: Some("bot".into()),
            from_id: None,
            text: Some(scam(i)),
            created_at: None,
            text_key: None,
        };
        let d = NewDecision {
            rule: "scam".into(),
            action: Action::Delete,
            reason: "test".into(),
            dry_run: false,
            message: None,
            not_written: false,
        };
        store
            .record_comment(&c, Disposition::Evaluated, Some(&d))
            .await
            .expect("record");
    }
    for a in store
        .pending_actions("acme", 0, 100)
        .await
        .expect("pending")
    {
        store.action_done(a.id, None).await.expect("done");
    }
    let since = Utc::now() - chrono::Duration::minutes(1);
    assert_eq!(
        store
            .raid_removals("acme", since, false, 2)
            .await
            .expect("count"),
        vec![(POST.to_string(), 3)]
    );
    assert!(
        store
            .raid_removals("acme", since, true, 0)
            .await
            .expect("count")
            .is_empty()
    );
    let reopen_at = Utc::now() - chrono::Duration::seconds(1);
    let id = store
        .raid_decide("acme", POST, 3, reopen_at)
        .await
        .expect("decide");
    let due = store.raid_due("acme", Utc::now()).await.expect("due");
    assert_eq!((due.len(), due[0].status.as_str()), (1, "closing"));
    store.raid_attempt(id).await.expect("attempt");
    store.raid_closed(id).await.expect("closed");
    assert_eq!(store.raid_open_closures(None).await.expect("open").len(), 1);
    assert_eq!(
        store
            .raid_open_closures(Some("acme"))
            .await
            .expect("open")
            .len(),
        1
    );
    assert!(
        store
            .raid_open_closures(Some("other"))
            .await
            .expect("open")
            .is_empty()
    );
    let due = store.raid_due("acme", Utc::now()).await.expect("due");
    assert_eq!((due.len(), due[0].status.as_str()), (1, "closed"));
    assert!(
        store
            .raid_due("acme", reopen_at - chrono::Duration::seconds(5))
            .await
            .expect("due")
            .is_empty()
    );
    store.raid_reopening(id).await.expect("reopening");
    store.raid_reopened(id).await.expect("reopened");
    assert!(
        store
            .raid_open_closures(None)
            .await
            .expect("open")
            .is_empty()
    );
    let last = store
        .raid_last_closure("acme", POST)
        .await
        .expect("last")
        .expect("a row");
    assert_eq!(last.status, "reopened");
    assert!(last.closed_at.is_some() && last.reopened_at.is_some());
    assert_eq!(
        store.raid_closures_since(since).await.expect("since").len(),
        1
    );
}

#[tokio::test]
async fn closures_are_stored_alike_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().expect("dir");
    let sqlite = Store::open(&dir.path().join("igmod.db"))
        .await
        .expect("sqlite");
    closure_round_trip(&sqlite).await;
    sqlite.close().await;
    let server = common::pg::PgServer::start();
    let pg = Store::connect(
        &igmod::config::database::Database::parse(&server.url(), None).expect("url"),
    )
    .await
    .expect("postgres");
    closure_round_trip(&pg).await;
    pg.close().await;
}

/// Webhooks deliver the wave and the account polls hourly: the closure does not wait for a poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wave_delivered_by_webhooks_closes_the_post_and_reopens_it_without_waiting_for_a_poll() {
    let env = Env::new().await;
    let accounts = env
        .account("hooked", ACME, GUARD)
        .replace("poll_interval = \"1s\"", "poll_interval = \"1h\"");
    let raided = env.sim.add_media(ACME);
    let hook = common::hook::hook_config(&env, &accounts);
    let (config, log) = (hook.config, hook.log);
    let child = spawn_daemon(&config, Some(&log));
    first_poll(&env).await;
    env.sim
        .deliver_webhooks(&hook.url, igmod::simulator::WebhookFaults::default());
    for i in 0..12 {
        env.sim.add_comment(&raided, &format!("bot{i}"), &scam(i));
    }
    wait_for("the post closed", Duration::from_secs(20), || async {
        env.sim.comments_enabled(&raided) == Some(false)
    })
    .await;
    let closed = std::time::Instant::now();
    // Polled hourly, the account still wakes for the reopening it owes after close_for.
    wait_for(
        "the post reopened after close_for, between polls",
        Duration::from_secs(30),
        || async { env.sim.comments_enabled(&raided) == Some(true) },
    )
    .await;
    let after = closed.elapsed();
    println!("reopened {:.1} s after closing", after.as_secs_f64());
    assert!(
        after >= Duration::from_secs(8),
        "reopened too early: {after:?}"
    );
    kill(child.id(), "-TERM");
    let _ = common::wait_exit(child).await;
}

/// Waits for the closure's audit row to say `reopened` (status and `reopened_at` are written
/// in one update). The daemon writes it once Meta's call that reopened returned, so the
/// simulator can show the post open a moment before.
async fn wait_for_reopened_row(pool: &sqlx::SqlitePool, timeout: Duration) {
    wait_for("the closure recorded as reopened", timeout, || async {
        text(pool, "SELECT status FROM raid_closures")
            .await
            .as_deref()
            == Some("reopened")
    })
    .await;
}
