//! Chaos: the real binary killed with SIGKILL at random moments, the simulator answering with
//! faults and garbage, hostile comment text, a database that cannot be written or is locked.
//! Each test prints its seed (set `IGMOD_CHAOS_SEED` to replay) and its figures.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::outcomes::{Expect, TEXTS, check_outcomes};
use common::{ACME, Env, GLOBEX, count, kill, spawn_daemon, wait_exit, wait_for};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn seed() -> u64 {
    std::env::var("IGMOD_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_no_decision_and_repeats_no_action() {
    let seed = seed();
    println!("chaos seed {seed} (replay with IGMOD_CHAOS_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true")
        + &env.account("globex", GLOBEX, "backfill = true");
    let posts = [
        env.sim.add_media(ACME),
        env.sim.add_media(ACME),
        env.sim.add_media(GLOBEX),
    ];
    // Every request takes a little while, and a write's answer comes 250 ms after it took
    // effect, so kills land mid-call, and mid-write with the outcome unknown to igmod.
    env.sim.set_delay(Duration::from_millis(30));
    env.sim.set_write_delay(Duration::from_millis(250));
    let config = env.config(&accounts, "").path;
    let log = env.dir.path().join("igmod.log");

    // Comment traffic for as long as the kills go on.
    let mut expected: Vec<(String, Expect)> = Vec::new();
    let mut traffic = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut add_comment = |expected: &mut Vec<(String, Expect)>| {
        let (text, expect) = TEXTS[traffic.random_range(0..TEXTS.len())];
        let post = &posts[traffic.random_range(0..posts.len())];
        let id = env
            .sim
            .add_comment(post, &format!("user{}", expected.len()), text);
        expected.push((id, expect));
    };

    let kills = 24;
    let started = Instant::now();
    for i in 1..=kills {
        let child = spawn_daemon(&config, Some(&log));
        let after = Duration::from_millis(rng.random_range(150..1600));
        let alive = Instant::now();
        while alive.elapsed() < after {
            add_comment(&mut expected);
            let pause = rng
                .random_range(30..120)
                .min(after.saturating_sub(alive.elapsed()).as_millis() as u64);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        kill(child.id(), "-KILL");
        let code = wait_exit(child).await;
        println!(
            "kill {i:2}: SIGKILL after {:4} ms (exit {code:?})",
            after.as_millis()
        );
    }

    // One last clean run finishes whatever the kills interrupted.
    let child = spawn_daemon(&config, Some(&log));
    let db = env.pool().await;
    let total = expected.len() as i64;
    wait_for(
        "every comment decided and every action closed",
        Duration::from_secs(90),
        || async {
            count(&db, "SELECT COUNT(*) FROM comments").await == total
                && count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'pending'").await == 0
        },
    )
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));

    // Exactly once in the database: every comment recorded once, one decision for each that
    // a rule matched, none for the others.
    let matched = expected.iter().filter(|(_, e)| *e != Expect::Leave).count() as i64;
    assert_eq!(
        count(&db, "SELECT COUNT(DISTINCT id) FROM comments").await,
        total
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM decisions").await, matched);
    assert_eq!(
        count(&db, "SELECT COUNT(DISTINCT comment_id) FROM decisions").await,
        matched
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'failed'").await,
        0
    );
    // Exactly once on Instagram, and nothing innocent touched.
    let (moderated, duplicates, reconciled) = check_outcomes(&env, &expected, &log);
    assert_eq!(
        duplicates, 0,
        "writes repeated without reading the comment back"
    );
    // The ledger holds every request the simulator answered (a call is ledgered before it is
    // sent, so a kill can only over-count) and stays within the budget.
    for (name, id) in [("acme", ACME), ("globex", GLOBEX)] {
        let answered = env
            .sim
            .requests()
            .iter()
            .filter(|r| r.account.as_deref() == Some(id))
            .count() as i64;
        let ledgered = count(
            &db,
            &format!("SELECT COUNT(*) FROM api_calls WHERE account = '{name}'"),
        )
        .await;
        assert!(
            ledgered >= answered,
            "{name}: ledger {ledgered} < {answered} answered"
        );
        // An account sends one request at a time, so each kill leaves at most one ledgered
        // call the simulator never answered.
        assert!(
            ledgered <= answered + kills as i64,
            "{name}: ledger {ledgered} holds more than {answered} answered + {kills} cut short"
        );
    }
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logs.contains("panicked"), "{logs}");
    let read_backs = logs.matches("action reconciled").count();
    println!(
        "figures: {kills} SIGKILLs survived in {:.0} s; {total} comments, {moderated} moderated, \
         {duplicates} duplicate writes, {read_backs} interrupted actions closed by reading the \
         comment back, {reconciled} writes repeated after a read-back",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_20_percent_transient_faults_and_5_percent_garbage_every_comment_is_moderated_once() {
    let seed = seed();
    println!("fault seed {seed} (replay with IGMOD_CHAOS_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true")
        + &env.account("globex", GLOBEX, "backfill = true");
    let posts = [env.sim.add_media(ACME), env.sim.add_media(GLOBEX)];
    let mut expected: Vec<(String, Expect)> = Vec::new();
    // Hostile text: 100 KB comments, an unpaired surrogate, RTL, combining marks.
    let long_innocent = "so nice and cozy ".repeat(6_000);
    let long_scam = format!("{}forex", "lorem ".repeat(17_000));
    for (text, expect) in [
        (long_innocent.as_str(), Expect::Leave),
        (long_scam.as_str(), Expect::Delete),
    ] {
        expected.push((env.sim.add_comment(&posts[0], "longwriter", text), expect));
    }
    let config = env.config(&accounts, "").path;
    // Answers slower than 1 s are timed out.
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("timeout = \"3s\"", "timeout = \"1s\""),
    )
    .expect("config");
    env.sim
        .inject_faults(seed, 0.20, 0.05, Duration::from_millis(1500));
    let log = env.dir.path().join("igmod.log");
    let mut child = spawn_daemon(&config, Some(&log));
    let started = Instant::now();
    for i in 0..250 {
        let (text, expect) = TEXTS[rng.random_range(0..TEXTS.len())];
        let post = &posts[rng.random_range(0..posts.len())];
        expected.push((env.sim.add_comment(post, &format!("user{i}"), text), expect));
        tokio::time::sleep(Duration::from_millis(rng.random_range(10..80))).await;
    }
    let db = env.pool().await;
    let total = expected.len() as i64;
    wait_for(
        "every comment recorded and every action closed",
        Duration::from_secs(120),
        || async {
            count(&db, "SELECT COUNT(*) FROM comments").await == total
                && count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'pending'").await == 0
        },
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        child.try_wait().ok().flatten().is_none(),
        "the daemon exited under faults"
    );
    env.sim.stop_faults();
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));

    let (moderated, duplicates, reconciled) = check_outcomes(&env, &expected, &log);
    assert_eq!(
        duplicates, 0,
        "writes repeated without reading the comment back"
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'failed'").await,
        0
    );
    // No spinning: requests per second stay at a poller's pace.
    let requests = env.sim.requests().len();
    let rate = requests as f64 / elapsed;
    assert!(rate < 40.0, "{requests} requests in {elapsed:.0} s");

    // Each fault igmod could see shows up in the log once, with what igmod did about it.
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logs.contains("panicked"), "{logs}");
    let (by_kind, faults) = env.sim.faults_injected();
    let mut logged_twice = Vec::new();
    let mut unlogged: std::collections::BTreeMap<&str, u32> = Default::default();
    let mut unlogged_paths: Vec<String> = Vec::new();
    for (trace, kind, path) in &faults {
        // The trace id, not followed by another digit (FAULT1 is not FAULT12).
        let names = |l: &str| {
            l.match_indices(trace.as_str())
                .any(|(at, t)| !l[at + t.len()..].starts_with(|c: char| c.is_ascii_digit()))
        };
        let lines: Vec<&str> = logs.lines().filter(|l| names(l)).collect();
        if lines.len() > 1 {
            logged_twice.push(format!("{trace} {kind} {path}: {lines:#?}"));
        }
        if lines.is_empty() {
            *unlogged.entry(kind).or_default() += 1;
            unlogged_paths.push(format!("{trace} {kind} {path}"));
        }
        if let Some(line) = lines.first() {
            assert!(
                [
                    "retrying",
                    "skipping post",
                    "poll failed",
                    "action will be retried",
                    "refused",
                    "cannot validate",
                    "used the rest"
                ]
                .iter()
                .any(|did| line.contains(did)),
                "{trace} ({kind}) is logged without what igmod did: {line}"
            );
        }
    }
    assert!(
        logged_twice.is_empty(),
        "faults logged more than once: {logged_twice:#?}"
    );
    // A timed-out answer never reaches igmod, and a connection cut before the answer's head
    // leaves nothing to read: neither carries a trace id, so count those log lines by kind.
    let untraced = |what: &str| {
        logs.lines()
            .filter(|l| l.contains(what) && !l.contains("FAULT"))
            .count() as u32
    };
    let injected = |kind: &str| by_kind.get(kind).copied().unwrap_or(0);
    let missing = |kind: &str| unlogged.get(kind).copied().unwrap_or(0);
    assert_eq!(
        untraced("timed out"),
        injected("slow past timeout"),
        "each timeout logged once"
    );
    assert_eq!(
        untraced("connection closed before message completed"),
        missing("connection cut"),
        "each cut connection logged once"
    );
    let others: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("error=") && !l.contains("FAULT"))
        .filter(|l| !l.contains("timed out") && !l.contains("connection closed before"))
        .collect();
    assert!(
        others.is_empty(),
        "errors that no injected fault explains: {others:#?}"
    );
    // A missing or null field igmod can do without (an optional one: `user`, `media_type`,
    // a post's newest comment…) changes nothing and so leaves no trace; on a field igmod
    // needs, the decode error is logged with the fault's trace id.
    for (kind, n) in &unlogged {
        assert!(
            matches!(
                *kind,
                "slow past timeout" | "connection cut" | "field missing" | "field null"
            ),
            "{n} faults of kind {kind} left no trace in the log: {unlogged_paths:#?}"
        );
    }
    println!(
        "figures: {total} comments ({moderated} to moderate) in {elapsed:.0} s, {requests} requests \
         ({rate:.1}/s); faults injected: {by_kind:?}; without a trace id in the log (timeouts and \
         early cuts, counted by message; a missing field igmod can do without): {unlogged:?}; duplicate writes \
         {duplicates}; writes repeated after a read-back {reconciled}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_deleted_between_listing_and_action_is_closed_as_gone_once() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&post, "bot", "forex");
    let rude = env.sim.add_comment(&post, "troll", "idiot");
    env.sim.vanish_before_action(&scam);
    env.sim.vanish_before_action(&rude);
    let config = env.config(&accounts, "").path;
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    let db = env.pool().await;
    wait_for("both actions closed", Duration::from_secs(20), || async {
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'done'").await == 2
    })
    .await;
    // A few more polls: nothing is tried again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let writes = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && (r.path.ends_with(&scam) || r.path.ends_with(&rude)))
        .count();
    assert_eq!(writes, 2, "one write each, answered 100/33, never repeated");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'done' AND last_error = 'comment already gone'").await,
        2
    );
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(logs.matches("comment already gone").count(), 2, "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_polling_clearly_and_nothing_is_done_without_a_record() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let first = env.sim.add_comment(&post, "bot", "forex");
    let config = env.config(&accounts, "").path;
    let db = env.pool().await;
    let log = env.dir.path().join("igmod.log");
    // The database may not grow past 1 MB: the file size limit makes SQLite's writes fail with
    // "database or disk is full", exactly as a full disk does (SIGXFSZ ignored, as a full
    // disk sends no signal).
    let script = format!(
        "trap '' XFSZ; ulimit -f 1024; exec {} run -c {}",
        env!("CARGO_BIN_EXE_igmod"),
        config.display()
    );
    let stderr = std::fs::File::create(&log).expect("log");
    let child = common::spawn(
        Command::new("sh")
            .args(["-c", &script])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(stderr),
    );
    wait_for(
        "the first scam deleted",
        Duration::from_secs(20),
        || async { env.sim.comment(&first).is_some_and(|c| c.deleted) },
    )
    .await;
    // Comments of 100 KB fill the megabyte within a few polls.
    let big: Vec<String> = (0..12)
        .map(|i| {
            env.sim.add_comment(
                &post,
                &format!("fan{i}"),
                &format!("{} forex", "lorem ".repeat(17_000)),
            )
        })
        .collect();
    wait_for(
        "igmod saying the database cannot be written",
        Duration::from_secs(30),
        || async {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("DATABASE CANNOT BE WRITTEN")
        },
    )
    .await;
    // Polling has stopped: no more calls to the API while the database cannot record them.
    let calls = env.sim.calls_for(ACME);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.sim.calls_for(ACME),
        calls,
        "polling goes on without a record"
    );
    let mut child = child;
    assert!(child.try_wait().ok().flatten().is_none(), "igmod exited");
    // Nothing was acted on that is not recorded as decided.
    for id in &big {
        let acted = env.sim.comment(id).is_some_and(|c| c.deleted);
        let recorded = count(
            &db,
            &format!("SELECT COUNT(*) FROM decisions WHERE comment_id = '{id}'"),
        )
        .await;
        assert!(
            !acted || recorded == 1,
            "{id} deleted without a recorded decision"
        );
    }
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        logs.matches("DATABASE CANNOT BE WRITTEN").count(),
        1,
        "said once: {logs}"
    );
    assert!(logs.contains("full"), "{logs}");
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
}

#[test]
fn a_database_that_cannot_be_created_is_refused_at_start_with_the_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let token = dir.path().join("t");
    std::fs::write(&token, "EAAG-x").expect("token");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndatabase = \"/proc/igmod/igmod.db\"\n\n[[accounts]]\nname = \"acme\"\nig_user_id = \"1\"\nlogin = \"instagram\"\ntoken_file = \"{}\"\npoll_interval = \"1m\"\nhourly_budget = 100\n\n[[rules]]\nname = \"r\"\naction = \"flag\"\nwords = [\"x\"]\n",
            token.display()
        ),
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_igmod"))
        .args(["run", "-c"])
        .arg(&config)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("/proc/igmod/igmod.db"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_an_operator_makes_igmod_wait_not_fail() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let config = env.config(&accounts, "").path;
    let log = env.dir.path().join("igmod.log");
    let child = spawn_daemon(&config, Some(&log));
    let db = env.pool().await;
    wait_for("first poll", Duration::from_secs(20), || async {
        count(
            &db,
            "SELECT COUNT(*) FROM account_state WHERE last_poll_at IS NOT NULL",
        )
        .await
            == 1
    })
    .await;
    // An operator holds the write lock (as a long `sqlite3` session with BEGIN IMMEDIATE
    // does) for 4 seconds while a scam arrives.
    let mut conn = db.acquire().await.expect("connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .expect("lock");
    let scam = env.sim.add_comment(&post, "bot", "forex");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let deleted_while_locked = env.sim.comment(&scam).is_some_and(|c| c.deleted);
    sqlx::query("ROLLBACK")
        .execute(&mut *conn)
        .await
        .expect("unlock");
    drop(conn);
    wait_for(
        "the scam deleted once the lock is gone",
        Duration::from_secs(20),
        || async { env.sim.comment(&scam).is_some_and(|c| c.deleted) },
    )
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    assert!(
        !deleted_while_locked,
        "acted before the decision could be recorded"
    );
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logs.contains("database is locked"), "{logs}");
    assert!(!logs.contains("ERROR"), "{logs}");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM decisions WHERE action = 'delete'"
        )
        .await,
        1
    );
}
