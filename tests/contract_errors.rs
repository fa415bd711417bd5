//! Errors Meta really sends (../shared/graph-api.md §5, §6, §12; docs/graph-contract.md),
//! answered by the strict simulator to the real binary: an account restriction (4/2207051) or
//! a policy block (368) pauses that account's writes only, every shape of "gone" closes the
//! action as done, and a bare HTTP 429 is throttling, not a bad request.

mod common;

use std::time::Duration;

use common::*;
use igmod::simulator::{GoneShape, Restriction};

/// A loopback receiver keeping every alert POSTed to it.
async fn receiver() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    let bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let kept = kept.clone();
            async move {
                if let Ok(v) = serde_json::from_str(&body) {
                    kept.lock().expect("lock").push(v);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), bodies)
}

async fn status_of(db: &sqlx::SqlitePool, comment: &str) -> Option<String> {
    text(
        db,
        &format!("SELECT status FROM actions WHERE comment_id = '{comment}'"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_or_policy_blocked_account_waits_while_a_healthy_one_is_moderated() {
    let env = Env::new().await;
    let (hook, alerts) = receiver().await;
    // (account, id, how Meta refuses its writes, what `status` and the alert must say)
    let refused = [
        (
            "acme",
            ACME,
            Restriction::Account,
            "account restricted by meta: code 4/2207051",
        ),
        (
            "globex",
            GLOBEX,
            Restriction::Policy,
            "policy block by meta: code 368",
        ),
    ];
    let mut accounts = format!("[[alerts]]\non = [\"restricted\"]\nurl = \"{hook}\"\n\n");
    for (name, id, _, _) in &refused {
        accounts.push_str(&env.account(name, id, "backfill = true"));
    }
    accounts.push_str(&env.account("initech", INITECH, "backfill = true"));
    let mut scams = Vec::new();
    for (_, id, kind, _) in &refused {
        let post = env.sim.add_media(id);
        scams.push(env.sim.add_comment(&post, "bot", "forex"));
        // Meta lets the writes back after 5 s; its usage header says "1 minute".
        env.sim.restrict_account(id, *kind, Duration::from_secs(5));
    }
    let healthy_post = env.sim.add_media(INITECH);
    let config = env.config(&accounts, "alert_check = \"1s\"").path;
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    let db = env.pool().await;
    wait_polled(&db, 3).await;
    wait_for(
        "both refused accounts' writes refused",
        Duration::from_secs(10),
        || async {
            scams.iter().all(|s| {
                env.sim
                    .requests()
                    .iter()
                    .any(|r| r.method != "GET" && r.path.ends_with(s.as_str()) && r.status == 400)
            })
        },
    )
    .await;
    // A scam on the healthy account, posted now, is deleted within a few seconds.
    let healthy_scam = env.sim.add_comment(&healthy_post, "bot", "forex");
    wait_for(
        "the healthy account's scam deleted",
        Duration::from_secs(6),
        || async { env.sim.comment(&healthy_scam).is_some_and(|c| c.deleted) },
    )
    .await;
    wait_for(
        "both refused accounts alerted",
        Duration::from_secs(15),
        || async {
            let b = alerts.lock().expect("lock").clone();
            refused.iter().all(|(name, _, _, _)| {
                b.iter().any(|e| {
                    e["kind"] == "restricted" && e["state"] == "firing" && e["account"] == *name
                })
            })
        },
    )
    .await;
    for ((name, id, _, why), scam) in refused.iter().zip(&scams) {
        assert_eq!(
            status_of(&db, scam).await.as_deref(),
            Some("pending"),
            "{name}"
        );
        assert!(!env.sim.comment(scam).is_some_and(|c| c.deleted), "{name}");
        let b = alerts.lock().expect("lock").clone();
        let alert = b
            .iter()
            .find(|e| e["kind"] == "restricted" && e["account"] == *name)
            .map(|e| e["summary"].to_string())
            .unwrap_or_default();
        assert!(alert.contains(why), "{alert}");
        // Polling goes on while writes wait.
        let before = env.sim.calls_for(id);
        wait_for(
            "more reads of the refused account",
            Duration::from_secs(10),
            || async { env.sim.calls_for(id) > before + 2 },
        )
        .await;
    }
    let (_, out, _) = run(igmod().args(["status", "-c"]).arg(&config));
    for (_, _, _, why) in &refused {
        assert!(out.contains("writes:     paused until"), "{out}");
        assert!(out.contains(why), "{out}");
    }
    // One refused write each, not one per poll.
    for ((name, _, _, _), scam) in refused.iter().zip(&scams) {
        let writes = env
            .sim
            .requests()
            .iter()
            .filter(|r| r.method != "GET" && r.path.ends_with(scam.as_str()))
            .count();
        assert_eq!(writes, 1, "{name}");
    }
    // After the pause (the regain hint's minute) the waiting actions are applied.
    wait_for(
        "the refused accounts' scams deleted after the pause",
        Duration::from_secs(100),
        || async {
            scams
                .iter()
                .all(|s| env.sim.comment(s).is_some_and(|c| c.deleted))
        },
    )
    .await;
    wait_for("their actions done", Duration::from_secs(10), || async {
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'done'").await == 3
    })
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'failed'").await,
        0
    );
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        logs.matches("meta refuses this account's writes").count(),
        2,
        "logged once per account: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_of_gone_closes_the_action_done_without_a_retry() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let shapes = [
        GoneShape::Subcode33,
        GoneShape::NoSubcode,
        GoneShape::Code33,
    ];
    let mut scams = Vec::new();
    for shape in shapes {
        let scam = env.sim.add_comment(&post, "bot", "forex");
        env.sim.gone_shape(&scam, shape);
        // Its author deletes it just before igmod's delete arrives.
        env.sim.vanish_before_action(&scam);
        scams.push((shape, scam));
    }
    let config = env.config(&accounts, "").path;
    let child = spawn_daemon(&config, None);
    let db = env.pool().await;
    wait_for("every action closed", Duration::from_secs(20), || async {
        count(
            &db,
            "SELECT COUNT(*) FROM actions WHERE status <> 'pending'",
        )
        .await
            == 3
    })
    .await;
    // A few more polls: nothing is tried again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    for (shape, scam) in &scams {
        let row = text(
            &db,
            &format!("SELECT status || ':' || COALESCE(last_error, '') FROM actions WHERE comment_id = '{scam}'"),
        )
        .await;
        assert_eq!(
            row.as_deref(),
            Some("done:comment already gone"),
            "{shape:?}"
        );
        let writes = env
            .sim
            .requests()
            .iter()
            .filter(|r| r.method != "GET" && r.path.ends_with(scam.as_str()))
            .count();
        assert_eq!(writes, 1, "{shape:?}: one write, never repeated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_429s_on_the_first_writes_lose_no_scam() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let scams: Vec<String> = (0..8)
        .map(|i| env.sim.add_comment(&post, &format!("bot{i}"), "forex"))
        .collect();
    // The first 8 writes answer HTTP 429 with an empty body, saying "retry after 1 s".
    env.sim.bare_429(8, Some(1), true);
    let config = env.config(&accounts, "").path;
    let child = spawn_daemon(&config, None);
    let db = env.pool().await;
    wait_for("all 8 scams deleted", Duration::from_secs(60), || async {
        scams
            .iter()
            .all(|s| env.sim.comment(s).is_some_and(|c| c.deleted))
    })
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let throttled = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(throttled, 8, "the 429s were answered");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'done'").await,
        8
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'failed'").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_pause_survives_a_restart_and_polling_goes_on() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&post, "bot", "forex");
    // Restricted for 10 minutes: the hint says so; the test ends long before.
    env.sim
        .restrict_account(ACME, Restriction::Account, Duration::from_secs(600));
    let config = env.config(&accounts, "").path;
    let child = spawn_daemon(&config, None);
    let db = env.pool().await;
    let writes = || {
        env.sim
            .requests()
            .iter()
            .filter(|r| r.method != "GET" && r.path.ends_with(scam.as_str()))
            .count()
    };
    wait_for("the write refused", Duration::from_secs(10), || async {
        writes() == 1
    })
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let child = spawn_daemon(&config, None);
    // The new process polls on and does not try the write again.
    wait_more_polls(&db, 3, Duration::from_secs(15)).await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    assert_eq!(writes(), 1, "the stored pause held after the restart");
    assert_eq!(status_of(&db, &scam).await.as_deref(), Some("pending"));
    let (_, out, _) = run(igmod().args(["status", "-c"]).arg(&config));
    assert!(
        out.contains("writes:     paused until")
            && out.contains("account restricted by meta: code 4/2207051"),
        "{out}"
    );
}

/// The write pause's statements on both backends: stored, never shortened, listed while it
/// lasts, strikes counted and reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_pause_is_stored_the_same_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().expect("dir");
    let server = common::pg::PgServer::start();
    let stores = [
        igmod::store::Store::open(&dir.path().join("w.db"))
            .await
            .expect("sqlite"),
        igmod::store::Store::connect(
            &igmod::config::database::Database::parse(&server.url(), None).expect("url"),
        )
        .await
        .expect("postgres"),
    ];
    let now = chrono::Utc::now();
    for store in stores {
        let later = now + chrono::Duration::hours(2);
        store
            .set_writes_paused("acme", later, "account restricted by meta: code 4/2207051")
            .await
            .expect("pause");
        // A shorter pause does not shorten it.
        store
            .set_writes_paused(
                "acme",
                now + chrono::Duration::hours(1),
                "policy block by meta: code 368",
            )
            .await
            .expect("shorter");
        let state = store.account_state("acme").await.expect("state");
        assert_eq!(
            state.writes_paused_reason.as_deref(),
            Some("account restricted by meta: code 4/2207051")
        );
        assert_eq!(
            state.writes_paused_until.as_deref(),
            Some(igmod::timefmt::format(later).as_str())
        );
        let listed = store.writes_paused(now).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert!(store.writes_paused(later).await.expect("after").is_empty());
        assert_eq!(store.write_block_strike("acme", false).await.expect("1"), 1);
        assert_eq!(store.write_block_strike("acme", false).await.expect("2"), 2);
        assert_eq!(
            store.write_block_strike("acme", true).await.expect("reset"),
            0
        );
        store.close().await;
    }
    drop(server);
}
