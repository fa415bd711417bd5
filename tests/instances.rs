//! Two real igmod daemons on one real PostgreSQL server (started by the test), sharing 20
//! accounts of the simulator through per-account leases: they split the accounts, take over
//! from each other when one is killed, act on no comment twice, and stop acting (and resume)
//! when the database goes away. Each test prints its figures. Two tests run the daemons as the
//! shipped systemd unit sees the machine (own users, /proc mounted `subset=pid,hidepid=invisible`,
//! no `IGMOD_HOSTNAME`; they need root): live neighbours are never taken for dead, and a
//! restarted one takes its accounts back at once.
//!
//! Lease times are shortened (`lease_ttl = 6s`, `lease_renew = 2s`) so that the run shows
//! many takeovers; the targets are stated in those terms. The chaos run lasts until it has
//! killed [`KILLS`] daemons at random moments (about 2 minutes); `IGMOD_INSTANCES_SECS` makes it run
//! at least that long (300 s is the five minutes), with as many more kills as fit.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::outcomes::{Expect, TEXTS, check_outcomes};
use common::pg::PgServer;
use common::{Env, KillOnDrop, kill, wait_exit, wait_for};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;

const TTL_SECS: u64 = 6;
const POLL_SECS: u64 = 3;
const BUDGET: i64 = 20_000;
/// SIGKILLs in the chaos run: as many as its five-minute version made (12 in 318 s, 20 s of
/// traffic before each). What it proves is per kill (a takeover within lease_ttl + one interval, no
/// comment lost or acted on twice), so the traffic between kills is shortened instead.
const KILLS: u32 = 12;

/// Registers `n` accounts and writes a config that points at the PostgreSQL server.
fn setup(env: &Env, server: &PgServer, n: usize) -> (PathBuf, Vec<(String, String)>) {
    let mut tables = String::new();
    let mut accounts = Vec::new();
    for i in 0..n {
        let name = format!("acct{i:02}");
        let id = format!("178414000001{i:03}");
        tables += &env
            .account(&name, &id, "")
            .replace(
                "poll_interval = \"1s\"",
                &format!("poll_interval = \"{POLL_SECS}s\""),
            )
            .replace(
                "hourly_budget = 20000",
                &format!("hourly_budget = {BUDGET}"),
            );
        accounts.push((name, id));
    }
    let path = env.write_config(
        &tables,
        &format!("lease_ttl = \"{TTL_SECS}s\"\nlease_renew = \"2s\""),
    );
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text.replace(
        &format!("database = \"{}\"", env.db().display()),
        &format!("database = \"{}\"", server.url()),
    );
    std::fs::write(&path, text).expect("config");
    (path, accounts)
}

/// The real `igmod run`, as if on host `host` (each daemon of these tests is on a host of its
/// own, so a dead one is found only by its leases expiring, as across machines).
fn spawn_daemon(config: &Path, log: &Path, host: &str) -> KillOnDrop {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut cmd = common::igmod();
    cmd.env("IGMOD_HOSTNAME", host)
        .args(["run", "-c"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(log);
    common::spawn(&mut cmd)
}

async fn scalar(db: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap_or(-1)
}

/// Leases held now, per live holder.
async fn split(db: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT holder, COUNT(*) FROM account_leases
         WHERE expires_at > to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')
         GROUP BY holder ORDER BY holder",
    )
    .fetch_all(db)
    .await
    .unwrap_or_default()
}

/// Waits until every one of `n` accounts has made its first complete poll: a comment posted
/// before it is baseline (`backfill = false`), never moderated, so traffic that a test counts
/// must start after it (a loaded machine can take longer than the lease split does).
async fn wait_for_first_polls(db: &PgPool, n: i64) {
    wait_for(
        "every account's first poll (its baseline) done",
        Duration::from_secs(60),
        || async {
            scalar(
                db,
                "SELECT COUNT(*) FROM account_state WHERE baseline_done_at IS NOT NULL",
            )
            .await
                == n
        },
    )
    .await;
}

/// The instance id of a daemon process.
async fn instance_of(db: &PgPool, pid: u32) -> Option<String> {
    sqlx::query_scalar("SELECT id FROM instances WHERE pid = $1")
        .bind(i64::from(pid))
        .fetch_optional(db)
        .await
        .ok()
        .flatten()
}

async fn connect(server: &PgServer) -> PgPool {
    PgPool::connect(&server.url()).await.expect("connect")
}

fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_split_the_accounts_take_over_when_one_is_killed_and_act_once() {
    let secs: u64 = std::env::var("IGMOD_INSTANCES_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let server = PgServer::start();
    let env = Env::new().await;
    let (config, accounts) = setup(&env, &server, 20);
    let posts: Vec<String> = accounts
        .iter()
        .map(|(_, id)| env.sim.add_media(id))
        .collect();
    let logs = [log_path(env.dir.path(), "a"), log_path(env.dir.path(), "b")];
    let mut daemons = [
        Some(spawn_daemon(&config, &logs[0], "host-a")),
        Some(spawn_daemon(&config, &logs[1], "host-b")),
    ];
    tokio::time::sleep(Duration::from_secs(1)).await;
    let db = connect(&server).await;

    // Both alive: the 20 accounts split 10/10 (within one).
    wait_for(
        "two holders with 20 leases split within one",
        Duration::from_secs(30),
        || async {
            let s = split(&db).await;
            s.len() == 2
                && s.iter().map(|(_, n)| n).sum::<i64>() == 20
                && (s[0].1 - s[1].1).abs() <= 1
        },
    )
    .await;
    let first_split = split(&db).await;
    println!("split with both alive: {first_split:?}");
    wait_for_first_polls(&db, 20).await;

    let mut expected: Vec<(String, Expect)> = Vec::new();
    let add_comment = |rng: &mut StdRng, expected: &mut Vec<(String, Expect)>| {
        let (text, expect) = TEXTS[rng.random_range(0..TEXTS.len())];
        let post = &posts[rng.random_range(0..posts.len())];
        let id = env
            .sim
            .add_comment(post, &format!("user{}", expected.len()), text);
        expected.push((id, expect));
    };

    let started = Instant::now();
    let mut kills = 0;
    let mut worst_repoll = Duration::ZERO;
    let mut victim = 0;
    while kills < KILLS || started.elapsed() < Duration::from_secs(secs) {
        // 1 to 4 s of traffic (on top of the traffic while the last victim's accounts were
        // taken over), then SIGKILL one daemon, at a random moment, and restart it at once.
        let round = Instant::now();
        let traffic = Duration::from_millis(rng.random_range(1_000..4_000));
        while round.elapsed() < traffic {
            add_comment(&mut rng, &mut expected);
            tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
        }
        let Some(child) = daemons[victim].take() else {
            continue;
        };
        let pid = child.id();
        let holder = instance_of(&db, pid).await.unwrap_or_default();
        let held: Vec<String> = sqlx::query_scalar(
            "SELECT account FROM account_leases WHERE holder = $1 AND expires_at <> ''",
        )
        .bind(&holder)
        .fetch_all(&db)
        .await
        .unwrap_or_default();
        let killed_at = chrono::Utc::now();
        let killed = Instant::now();
        kill(pid, "-KILL");
        let _ = wait_exit(child).await;
        kills += 1;
        // Restarted as a new machine would be: nothing tells it the old one died.
        let host = format!("host-{victim}-{kills}");
        daemons[victim] = Some(spawn_daemon(&config, &logs[victim], &host));
        // Every account the dead daemon held is polled again (by either daemon) within
        // lease_ttl + one interval.
        let since = igmod::timefmt::format(killed_at);
        let limit = Duration::from_secs(TTL_SECS + POLL_SECS);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM account_state
                 WHERE account = ANY($1) AND (last_poll_at IS NULL OR last_poll_at <= $2)",
            )
            .bind(&held)
            .bind(&since)
            .fetch_one(&db)
            .await
            .unwrap_or(-1);
            if waiting == 0 {
                break;
            }
            if killed.elapsed() > Duration::from_secs(60) {
                let leases: Vec<(String, String, String)> =
                    sqlx::query_as("SELECT account, holder, expires_at FROM account_leases")
                        .fetch_all(&db)
                        .await
                        .unwrap_or_default();
                let states: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT account, last_poll_at, next_due_at FROM account_state ORDER BY 1",
                )
                .fetch_all(&db)
                .await
                .unwrap_or_default();
                let lines: Vec<String> = logs
                    .iter()
                    .flat_map(|l| {
                        std::fs::read_to_string(l)
                            .unwrap_or_default()
                            .lines()
                            .map(String::from)
                            .collect::<Vec<_>>()
                    })
                    .filter(|l| l.contains("lease") || l.contains("ERROR") || l.contains("WARN"))
                    .collect();
                panic!(
                    "{waiting} of the dead daemon's accounts ({held:?}) not polled again after 60 s (killed {since})\nleases {leases:#?}\nstates {states:#?}\nlog {lines:#?}"
                );
            }
            add_comment(&mut rng, &mut expected);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let repoll = killed.elapsed();
        worst_repoll = worst_repoll.max(repoll);
        println!(
            "kill {kills}: daemon {victim} held {} accounts; all polled again after {:.1} s (limit {} s)",
            held.len(),
            repoll.as_secs_f64(),
            limit.as_secs()
        );
        assert!(
            repoll <= limit,
            "accounts of a dead daemon waited {repoll:?} (> lease_ttl + interval = {limit:?})"
        );
        victim = 1 - victim;
    }

    // Both alive again: every comment decided, every action closed, the split even again.
    let total = expected.len() as i64;
    wait_for(
        "every comment decided and every action closed",
        Duration::from_secs(90),
        || async {
            scalar(&db, "SELECT COUNT(*) FROM comments").await == total
                && scalar(&db, "SELECT COUNT(*) FROM actions WHERE status = 'pending'").await == 0
        },
    )
    .await;
    wait_for("the split even again", Duration::from_secs(30), || async {
        let s = split(&db).await;
        s.len() == 2 && (s[0].1 - s[1].1).abs() <= 1
    })
    .await;
    let last_split = split(&db).await;
    for daemon in daemons.iter_mut() {
        if let Some(child) = daemon.take() {
            kill(child.id(), "-TERM");
            assert_eq!(wait_exit(child).await, Some(0));
        }
    }

    let matched = expected.iter().filter(|(_, e)| *e != Expect::Leave).count() as i64;
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM decisions").await, matched);
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM actions WHERE status = 'failed'").await,
        0
    );
    let both_logs = env.dir.path().join("both.log");
    let text = logs
        .iter()
        .map(|l| std::fs::read_to_string(l).unwrap_or_default())
        .collect::<String>();
    std::fs::write(&both_logs, &text).expect("log");
    assert!(!text.contains("panicked"), "a daemon panicked");
    let sql_errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("error returned from database"))
        .collect();
    assert!(
        sql_errors.is_empty(),
        "SQL PostgreSQL refused: {sql_errors:#?}"
    );
    let (moderated, duplicates, _) = check_outcomes(&env, &expected, &both_logs);
    assert_eq!(duplicates, 0, "writes repeated without reading back");
    // The budget is shared: the one ledger holds every call either daemon made.
    let mut worst_calls = 0;
    for (name, id) in &accounts {
        let answered = env.sim.calls_for(id) as i64;
        let ledgered: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_calls WHERE account = $1")
            .bind(name)
            .fetch_one(&db)
            .await
            .unwrap_or(-1);
        assert!(
            ledgered >= answered,
            "{name}: ledger {ledgered} < {answered}"
        );
        assert!(
            ledgered <= BUDGET,
            "{name}: {ledgered} calls > budget {BUDGET}"
        );
        worst_calls = worst_calls.max(ledgered);
    }
    let hours = started.elapsed().as_secs_f64() / 3600.0;
    println!(
        "figures: {:.0} s, {kills} SIGKILLs, 20 accounts on 2 daemons; split {first_split:?} at start, {last_split:?} at the end; \
         {total} comments, {moderated} moderated, {duplicates} duplicate writes, 0 left pending; \
         worst re-poll after a death {:.1} s (lease_ttl {TTL_SECS} s + interval {POLL_SECS} s); \
         busiest account {worst_calls} calls in {:.2} h (budget {BUDGET}/h)",
        started.elapsed().as_secs_f64(),
        worst_repoll.as_secs_f64(),
        hours
    );
    drop(server);
}

/// The config with a `[metrics]` listener of its own (two daemons on one host).
fn with_metrics(config: &Path, name: &str) -> (PathBuf, String) {
    let port = common::free_port();
    let text = std::fs::read_to_string(config).expect("config");
    let text = text.replacen(
        "[graph]",
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[graph]"),
        1,
    );
    let path = config.with_file_name(format!("{name}.toml"));
    std::fs::write(&path, text).expect("config");
    (path, format!("http://127.0.0.1:{port}"))
}

async fn http_get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_hands_the_accounts_over_within_a_second() {
    let server = PgServer::start();
    let env = Env::new().await;
    let (config, _) = setup(&env, &server, 6);
    let (config_a, metrics_a) = with_metrics(&config, "a");
    let (config_b, metrics_b) = with_metrics(&config, "b");
    let a = spawn_daemon(&config_a, &log_path(env.dir.path(), "a"), "host-a");
    let b = spawn_daemon(&config_b, &log_path(env.dir.path(), "b"), "host-b");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let db = connect(&server).await;
    wait_for("a 3/3 split", Duration::from_secs(30), || async {
        split(&db).await.iter().map(|(_, n)| *n).collect::<Vec<_>>() == vec![3, 3]
    })
    .await;
    // Each instance is ready with its own three accounts polled, reports the other three as
    // held elsewhere, and finds no problem in them.
    for base in [&metrics_a, &metrics_b] {
        wait_for("ready, 3 elsewhere", Duration::from_secs(20), || async {
            let ready = http_get(&format!("{base}/readyz")).await.0 == 200;
            let (_, metrics) = http_get(&format!("{base}/metrics")).await;
            ready
                && metrics.contains("igmod_accounts{status=\"elsewhere\"} 3")
                && metrics.contains("igmod_accounts{status=\"ok\"} 3")
                && !metrics.contains("igmod_account_problem{")
        })
        .await;
    }
    let survivor = instance_of(&db, b.id()).await.expect("b's instance row");
    let stopped = Instant::now();
    kill(a.id(), "-TERM");
    wait_for("b holds all 6", Duration::from_secs(10), || async {
        split(&db).await == vec![(survivor.clone(), 6)]
    })
    .await;
    let handover = stopped.elapsed();
    assert_eq!(wait_exit(a).await, Some(0));
    println!(
        "figures: SIGTERM to the other daemon holding all 6 accounts: {:.2} s",
        handover.as_secs_f64()
    );
    assert!(handover <= Duration::from_millis(1500), "{handover:?}");
    kill(b.id(), "-TERM");
    assert_eq!(wait_exit(b).await, Some(0));
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_stopped_for_30_s_both_daemons_stop_acting_say_so_once_and_resume() {
    let server = PgServer::start();
    let env = Env::new().await;
    let (config, accounts) = setup(&env, &server, 4);
    let posts: Vec<String> = accounts
        .iter()
        .map(|(_, id)| env.sim.add_media(id))
        .collect();
    let logs = [log_path(env.dir.path(), "a"), log_path(env.dir.path(), "b")];
    let a = spawn_daemon(&config, &logs[0], "host-a");
    let b = spawn_daemon(&config, &logs[1], "host-b");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let db = connect(&server).await;
    wait_for("a 2/2 split", Duration::from_secs(30), || async {
        split(&db).await.iter().map(|(_, n)| *n).collect::<Vec<_>>() == vec![2, 2]
    })
    .await;
    let before = env
        .sim
        .add_comment(&posts[0], "spammer", "forex signals, dm me");
    wait_for(
        "the first scam deleted",
        Duration::from_secs(20),
        || async { env.sim.comment(&before).is_some_and(|c| c.deleted) },
    )
    .await;
    db.close().await;

    server.stop();
    let down = Instant::now();
    let mut during = Vec::new();
    for (i, post) in posts.iter().enumerate() {
        during.push(
            env.sim
                .add_comment(post, &format!("spam{i}"), "join my crypto signal group"),
        );
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    // Nothing acted while nothing could be recorded.
    for id in &during {
        let c = env.sim.comment(id).expect("comment");
        assert!(
            c.delete_calls == 0 && c.hide_calls == 0,
            "{id} acted on while the database was down"
        );
    }
    server.restart();
    let back = Instant::now();
    let db = connect(&server).await;
    wait_for(
        "the scams posted during the outage deleted",
        Duration::from_secs(60),
        || async {
            during
                .iter()
                .all(|id| env.sim.comment(id).is_some_and(|c| c.deleted))
        },
    )
    .await;
    let resumed = back.elapsed();
    for id in during.iter().chain([&before]) {
        let c = env.sim.comment(id).expect("comment");
        assert_eq!(c.delete_calls, 1, "{id} deleted more than once");
    }
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM decisions").await,
        1 + during.len() as i64,
        "a decision lost or doubled"
    );
    for child in [a, b] {
        kill(child.id(), "-TERM");
        assert_eq!(wait_exit(child).await, Some(0));
    }
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let said = text.matches("cannot renew leases").count();
        assert_eq!(said, 1, "the outage said {said} times in {}", log.display());
        assert!(text.contains("lease database reachable again"));
    }
    println!(
        "figures: PostgreSQL down {:.0} s: 0 actions while down, outage logged once per daemon; \
         the {} scams posted meanwhile deleted {:.1} s after it came back, once each",
        back.duration_since(down).as_secs_f64(),
        during.len(),
        resumed.as_secs_f64()
    );
    drop(server);
}

/// Everything an operator runs against the database works on PostgreSQL too: status (with the
/// instance and its accounts), audit, the HTML report, token status, undo, labels, replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_commands_read_and_write_a_postgres_database() {
    let server = PgServer::start();
    let env = Env::new().await;
    let (config, accounts) = setup(&env, &server, 2);
    let post = env.sim.add_media(&accounts[0].1);
    let daemon = spawn_daemon(&config, &log_path(env.dir.path(), "a"), "host-a");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let db = connect(&server).await;
    wait_for("both accounts polled", Duration::from_secs(30), || async {
        scalar(
            &db,
            "SELECT COUNT(*) FROM account_state WHERE last_poll_at IS NOT NULL",
        )
        .await
            == 2
    })
    .await;
    let scam = env.sim.add_comment(&post, "bot", "forex signals, dm me");
    let insult = env.sim.add_comment(&post, "troll", "you idiot");
    wait_for("both acted on", Duration::from_secs(30), || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
            && env.sim.comment(&insult).is_some_and(|c| c.hidden)
    })
    .await;
    let igmod = |args: &[&str]| {
        let (code, out, err) = common::run(common::igmod().args(args).arg("-c").arg(&config));
        assert!(
            !out.contains("EAAG-SECRET") && !err.contains("EAAG-SECRET"),
            "a token in the output of {args:?}"
        );
        (code, out, err)
    };
    let (code, out, err) = igmod(&["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("instances: 1 live"), "{out}");
    assert!(
        out.contains("host-a:") && out.contains("): 2 account(s)"),
        "{out}"
    );
    assert!(out.contains("instance:   host-a:"), "{out}");
    let (code, out, err) = igmod(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(
        rows[0]["held_by"]
            .as_str()
            .is_some_and(|h| h.starts_with("host-a:"))
    );
    let (code, out, err) = igmod(&["audit", "--since", "1h"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&scam) && out.contains(&insult), "{out}");
    let report = env.dir.path().join("report.html");
    let (code, _, err) = igmod(&["report", "--since", "1d", "-o", &report.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(&report).is_ok_and(|h| h.contains("<svg")));
    let (code, out, err) = igmod(&["token", "status"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = igmod(&["rules", "replay", "--since", "1h"]);
    assert_eq!(code, 0, "{out}{err}");
    // Undo goes through the outbox on the shared database, and leaves an `ok` label.
    let (code, out, err) = igmod(&["undo", &insult]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(env.sim.comment(&insult).is_some_and(|c| !c.hidden));
    let (code, out, err) = igmod(&["label", &scam, "scam"]);
    assert_eq!(code, 0, "{out}{err}");
    let labels = env.dir.path().join("labels.csv");
    let (code, out, err) = igmod(&["labels", "export", &labels.to_string_lossy()]);
    assert_eq!(code, 0, "{out}{err}");
    let csv = std::fs::read_to_string(&labels).expect("labels");
    assert!(
        csv.contains("forex signals") && csv.contains("you idiot"),
        "{csv}"
    );
    kill(daemon.id(), "-TERM");
    assert_eq!(wait_exit(daemon).await, Some(0));
    let text = std::fs::read_to_string(log_path(env.dir.path(), "a")).unwrap_or_default();
    assert!(
        !text.contains("error returned from database"),
        "SQL PostgreSQL refused: {text}"
    );
    drop(server);
}

/// Meta delivers every webhook to one callback URL, so one instance receives deliveries for
/// accounts the other holds: PostgreSQL's notification wakes the holder, which acts at once
/// (the accounts poll hourly here: only the webhook can act within the test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_received_by_one_instance_is_acted_on_by_the_holder_at_once() {
    let server = PgServer::start();
    let env = Env::new().await;
    let (config, accounts) = setup(&env, &server, 2);
    let posts: Vec<String> = accounts
        .iter()
        .map(|(_, id)| env.sim.add_media(id))
        .collect();
    // Hourly polls; daemon A alone serves the webhook receiver.
    let text = std::fs::read_to_string(&config).expect("config").replace(
        &format!("poll_interval = \"{POLL_SECS}s\""),
        "poll_interval = \"1h\"",
    );
    std::fs::write(&config, &text).expect("config");
    let port = common::free_port();
    let verify = env.dir.path().join("verify.token");
    std::fs::write(&verify, "VERIFY-TOKEN-8c1e2f\n").expect("verify token");
    let receiving = config.with_file_name("receiving.toml");
    std::fs::write(
        &receiving,
        text.replacen(
            "[graph]",
            &format!(
                "{}[webhook]\nlisten = \"127.0.0.1:{port}\"\npath = \"/hook\"\nverify_token_file = \"{}\"\n\n[graph]",
                env.app(),
                verify.display()
            ),
            1,
        ),
    )
    .expect("config");
    let a = spawn_daemon(&receiving, &log_path(env.dir.path(), "a"), "host-a");
    let b = spawn_daemon(&config, &log_path(env.dir.path(), "b"), "host-b");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let db = connect(&server).await;
    wait_for(
        "a 1/1 split, both polled once",
        Duration::from_secs(30),
        || async {
            split(&db).await.iter().map(|(_, n)| *n).collect::<Vec<_>>() == vec![1, 1]
                && scalar(
                    &db,
                    "SELECT COUNT(*) FROM account_state WHERE last_poll_at IS NOT NULL",
                )
                .await
                    == 2
        },
    )
    .await;
    let b_id = instance_of(&db, b.id()).await.expect("b's row");
    let held_by_b: String =
        sqlx::query_scalar("SELECT account FROM account_leases WHERE holder = $1")
            .bind(&b_id)
            .fetch_one(&db)
            .await
            .expect("b holds one");
    let i = accounts
        .iter()
        .position(|(n, _)| *n == held_by_b)
        .expect("account");
    let (owner, post) = (&accounts[i].1, &posts[i]);
    let scam = env.sim.add_comment(post, "bot", "forex signals, dm me");
    let body =
        serde_json::json!({"object": "instagram", "entry": [{"id": owner, "time": chrono::Utc::now().timestamp(),
        "field": "comments", "value": {"id": scam, "text": "forex signals, dm me",
        "from": {"id": "9001", "username": "bot"},
        "media": {"id": post, "media_product_type": "FEED"}}}]})
        .to_string();
    let url = format!("http://127.0.0.1:{port}/hook");
    wait_for("the receiver", Duration::from_secs(20), || async {
        reqwest::get(&url).await.is_ok()
    })
    .await;
    let sent = Instant::now();
    let status = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            igmod::simulator::Simulator::sign_webhook(Env::APP_SECRET, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert_eq!(status, 200);
    wait_for("the scam deleted by B", Duration::from_secs(15), || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    let took = sent.elapsed();
    assert_eq!(
        sqlx::query_scalar::<_, String>("SELECT outcome FROM webhook_events WHERE comment_id = $1")
            .bind(&scam)
            .fetch_one(&db)
            .await
            .expect("event"),
        "decided"
    );
    println!(
        "figures: a delivery received by A for B's account deleted by B {:.2} s after it was sent",
        took.as_secs_f64()
    );
    for child in [a, b] {
        kill(child.id(), "-TERM");
        assert_eq!(wait_exit(child).await, Some(0));
    }
    drop(server);
}

/// Creates (once) a system user for a daemon of the unit test below; its uid and gid.
fn system_user(name: &str) -> (u32, u32) {
    let id = |flag: &str| {
        std::process::Command::new("id")
            .args([flag, name])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            })
    };
    if id("-u").is_none() {
        // Another test process may create it at the same moment: only the result counts.
        let _ = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(name)
            .status();
    }
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) => (uid, gid),
        _ => panic!("cannot create the system user {name} (useradd --system)"),
    }
}

/// A copy of the config and token files in a directory only `uid` can read (mode 0700, files
/// 0600), as each host of a real deployment has its own.
fn private_config(env: &Env, config: &Path, name: &str, uid: u32, gid: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = env.dir.path().join(name);
    std::fs::create_dir(&dir).expect("dir");
    let from = env.dir.path().display().to_string();
    let to = dir.display().to_string();
    for entry in std::fs::read_dir(env.dir.path()).expect("read dir") {
        let path = entry.expect("entry").path();
        let is_token = path.extension().is_some_and(|e| e == "token");
        if is_token {
            let copy = dir.join(path.file_name().expect("name"));
            std::fs::copy(&path, &copy).expect("copy token");
        }
    }
    let text = std::fs::read_to_string(config)
        .expect("config")
        .replace(&from, &to);
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("config");
    for entry in std::fs::read_dir(&dir).expect("read dir") {
        let path = entry.expect("entry").path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown");
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown");
    path
}

/// The real `igmod run` as the shipped unit runs it: as its own user (the unit's
/// `DynamicUser=yes`), seeing a /proc mounted `subset=pid,hidepid=invisible` (its
/// `ProcSubset=pid` and `ProtectProc=invisible`: no /proc/sys, no other user's processes), and
/// with no `IGMOD_HOSTNAME`. Needs root (CI runs as root).
fn spawn_as_unit(config: &Path, log: &Path, uid: u32, gid: u32) -> KillOnDrop {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            "mount -t proc -o subset=pid,hidepid=invisible proc /proc && \
             exec setpriv --reuid=\"$1\" --regid=\"$2\" --clear-groups --pdeathsig=KILL -- \"$3\" run -c \"$4\"",
        )
        .arg("sh")
        .arg(uid.to_string())
        .arg(gid.to_string())
        .arg(env!("CARGO_BIN_EXE_igmod"))
        .arg(config)
        .env_remove("IGMOD_HOSTNAME")
        .env_remove("IGMOD_CONFIG")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(log);
    common::spawn(&mut cmd)
}

/// Issue 34: two instances on one host under the shipped unit. /proc/sys is hidden there and
/// so is the other daemon's process; each daemon must still tell it apart from a dead one, so
/// leases stay put and every scam is acted on once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_seeing_proc_as_the_shipped_unit_does_keep_their_leases() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    assert!(
        root,
        "this test mounts /proc and switches users: run it as root (CI does)"
    );
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let server = PgServer::start();
    let env = Env::new().await;
    let (config, accounts) = setup(&env, &server, 6);
    let posts: Vec<String> = accounts
        .iter()
        .map(|(_, id)| env.sim.add_media(id))
        .collect();
    {
        use std::os::unix::fs::PermissionsExt;
        // The users traverse the test's dir to their own; they cannot list it.
        std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o711))
            .expect("chmod");
    }
    let users = [system_user("igmod-test-a"), system_user("igmod-test-b")];
    let logs = [log_path(env.dir.path(), "a"), log_path(env.dir.path(), "b")];
    let mut daemons = Vec::new();
    for (i, (uid, gid)) in users.iter().enumerate() {
        let own = private_config(&env, &config, ["a", "b"][i], *uid, *gid);
        daemons.push(spawn_as_unit(&own, &logs[i], *uid, *gid));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let db = connect(&server).await;
    wait_for("both daemons up", Duration::from_secs(30), || async {
        scalar(&db, "SELECT COUNT(*) FROM instances").await == 2
    })
    .await;
    // Both name the machine as the kernel does (not "localhost", which /proc gave under the
    // unit): checked at the end, after what the operator sees.
    let kernel = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let hosts: Vec<String> = sqlx::query_scalar("SELECT host FROM instances ORDER BY id")
        .fetch_all(&db)
        .await
        .expect("instances");

    wait_for_first_polls(&db, 6).await;
    // 35 s of traffic: comments of every kind on random accounts.
    let mut expected: Vec<(String, Expect)> = Vec::new();
    let traffic = Instant::now();
    while traffic.elapsed() < Duration::from_secs(35) {
        let (text, expect) = TEXTS[rng.random_range(0..TEXTS.len())];
        let post = &posts[rng.random_range(0..posts.len())];
        let id = env
            .sim
            .add_comment(post, &format!("user{}", expected.len()), text);
        expected.push((id, expect));
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..900))).await;
    }
    let total = expected.len() as i64;
    // Every comment decided and every action closed (judged once the figures are printed).
    let settle = Instant::now();
    let mut settled = false;
    while !settled && settle.elapsed() < Duration::from_secs(60) {
        settled = scalar(&db, "SELECT COUNT(*) FROM comments").await == total
            && scalar(&db, "SELECT COUNT(*) FROM actions WHERE status = 'pending'").await == 0;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ran = started.elapsed();
    let last_split = split(&db).await;
    let decided = scalar(&db, "SELECT COUNT(*) FROM comments").await;
    let pending = scalar(&db, "SELECT COUNT(*) FROM actions WHERE status = 'pending'").await;
    for child in daemons {
        kill(child.id(), "-TERM");
        assert_eq!(
            wait_exit(child).await,
            Some(0),
            "a daemon did not stop cleanly"
        );
    }

    let texts: Vec<String> = logs
        .iter()
        .map(|l| std::fs::read_to_string(l).unwrap_or_default())
        .collect();
    let taken: Vec<usize> = texts
        .iter()
        .map(|t| t.matches("lease taken").count())
        .collect();
    let reaped: Vec<usize> = texts
        .iter()
        .map(|t| t.matches("an instance on this host died").count())
        .collect();
    println!(
        "figures: 6 accounts, 2 daemons as the unit runs them (own users, /proc subset=pid, \
         hidepid=invisible), {:.0} s: leases taken {taken:?}, live neighbours reaped {reaped:?}, \
         split at the end {last_split:?}; {decided} of {total} comments decided, \
         {pending} actions pending",
        ran.as_secs_f64()
    );
    assert_eq!(
        reaped,
        vec![0, 0],
        "a live instance was taken for a dead one"
    );
    // At most all 6 at start, then the 3 given back stay with the other one.
    for (i, n) in taken.iter().enumerate() {
        assert!(*n <= 6, "daemon {i} took leases {n} times in {ran:?}");
    }
    assert!(
        settled,
        "{decided} of {total} comments decided, {pending} actions pending after 60 s"
    );
    let both_logs = env.dir.path().join("both.log");
    std::fs::write(&both_logs, texts.concat()).expect("log");
    let (moderated, duplicates, _) = check_outcomes(&env, &expected, &both_logs);
    println!("figures: {moderated} moderated, {duplicates} duplicate writes");
    assert_eq!(duplicates, 0, "writes repeated without reading back");
    assert_eq!(
        last_split.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        vec![3, 3],
        "the split at the end"
    );
    assert!(
        texts.iter().all(|t| !t.contains("panicked")),
        "a daemon panicked"
    );
    assert_eq!(
        hosts,
        vec![kernel.clone(), kernel],
        "host names as the instances recorded them"
    );
    drop(server);
}

/// The other side of the same rule: one daemon under the unit's view of /proc, SIGKILLed and
/// started again as the same user on the same host, finds its predecessor certainly gone
/// (kill(pid, 0): no such process) and takes the accounts back at once instead of waiting for
/// `lease_ttl`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_restarted_under_the_shipped_unit_takes_its_accounts_back_at_once() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    assert!(
        root,
        "this test mounts /proc and switches users: run it as root (CI does)"
    );
    let server = PgServer::start();
    let env = Env::new().await;
    // Leases that would outlast the test's patience if it had to wait for them.
    let (config, _) = setup(&env, &server, 4);
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("lease_ttl = \"6s\"", "lease_ttl = \"60s\"");
    std::fs::write(&config, text).expect("config");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o711))
            .expect("chmod");
    }
    let (uid, gid) = system_user("igmod-test-a");
    let own = private_config(&env, &config, "a", uid, gid);
    let log = log_path(env.dir.path(), "a");
    let first = spawn_as_unit(&own, &log, uid, gid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let db = connect(&server).await;
    wait_for("all 4 leases held", Duration::from_secs(30), || async {
        split(&db).await.iter().map(|(_, n)| *n).sum::<i64>() == 4
    })
    .await;
    let old = instance_of(&db, first.id()).await.expect("instance row");
    kill(first.id(), "-KILL");
    let _ = wait_exit(first).await;
    let killed = Instant::now();
    let second = spawn_as_unit(&own, &log, uid, gid);
    let pid = second.id();
    wait_for(
        "the restarted daemon holding all 4",
        Duration::from_secs(30),
        || async {
            match instance_of(&db, pid).await {
                Some(new) => split(&db).await == vec![(new, 4)],
                None => false,
            }
        },
    )
    .await;
    let back = killed.elapsed();
    kill(pid, "-TERM");
    assert_eq!(wait_exit(second).await, Some(0));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    println!(
        "figures: SIGKILL then restart under the unit's /proc: all 4 accounts held again after {:.1} s (lease_ttl 60 s)",
        back.as_secs_f64()
    );
    assert!(
        text.contains("an instance on this host died") && text.contains(&old),
        "the predecessor {old} was not found dead"
    );
    assert!(
        back < Duration::from_secs(15),
        "took {back:?}: waited for the lease to expire"
    );
    drop(server);
}
