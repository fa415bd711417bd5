//! Webhooks against the real binary: `cargo bench --bench webhook`.
//!
//! The bundled simulator (in this process) delivers signed webhooks over loopback to `igmod
//! run`. Three phases, each a fresh daemon and database:
//! - latency: 50 comments/s across 10 accounts for 20 s (a third of them scams); for each acted
//!   on, the time from the delivery's POST to the hide/delete reaching the simulator; and the
//!   Graph reads made for those comments (the accounts poll only at start);
//! - faults: 30 % of deliveries dropped, 30 % duplicated, reordered within 500 ms, polling every
//!   5 s: every scam acted on, and no comment written twice;
//! - abuse: 10,000 POSTs with a bad signature or an oversized body: all refused, the resident
//!   set before and after, events written, and log lines about them;
//! - attack (issue 34): the daemon started with 1,024 soft / 524,288 hard open files, two
//!   accounts whose tokens are files (one polled hourly, acted on by webhook; one polled every
//!   2 s); for 30 s, 4 slow bodies with well-formed (wrong) signature headers and 1,100
//!   half-sent requests, each reopened as soon as the daemon closes it. Every 2 s meanwhile a
//!   signed delivery of a scam (POST → deleted) and `/healthz` are timed; then whether an
//!   account stopped, the resident set's growth, and whether polling still moderates after.
//!
//! Targets (issue 23): p50 ≤ 100 ms and p99 ≤ 1 s; 0 reads for webhook comments; every scam
//! acted on with 30 % dropped and 0 duplicate writes; the 10,000 refused within 10 MB of idle
//! RSS, nothing written, no log flood. Issue 34: during the attack a signed delivery acted on
//! within 2 s and `/healthz` answered within 2 s, RSS ≤ +50 MB, no account stopped, polling
//! moderating afterwards.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use igmod::simulator::{Simulator, WebhookFaults};

mod proc;
use proc::{free_port, polled_accounts, status_kib};

const SECRET: &str = "bench-app-secret";

fn id(i: usize) -> String {
    format!("178414{i:011}")
}

struct Daemon {
    child: Child,
    url: String,
    log: PathBuf,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

fn start(sim: &Simulator, accounts: usize, interval: &str) -> Daemon {
    start_with(sim, accounts, interval, None)
}

/// [`start`]; with `attack: Some(hard)`, `/healthz` on the receiver's port, the last account
/// polled every 2 s, and the daemon's open files limited to 1,024 soft / `hard` (systemd's
/// defaults are 1,024 / 524,288).
fn start_with(sim: &Simulator, accounts: usize, interval: &str, attack: Option<u64>) -> Daemon {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    std::fs::write(dir.path().join("secret"), SECRET).expect("secret");
    std::fs::write(dir.path().join("verify"), "bench-verify").expect("verify");
    sim.set_app("1234567890", SECRET);
    let db = dir.path().join("igmod.db");
    let mut text = format!(
        "[daemon]\ndatabase = \"{}\"\n\n[graph]\nfacebook_base_url = \"{base}\"\ninstagram_base_url = \"{base}\"\napi_version = \"v25.0\"\ntimeout = \"10s\"\n\n[app]\napp_id = \"1234567890\"\napp_secret_file = \"{}\"\n\n[webhook]\nlisten = \"127.0.0.1:{port}\"\nverify_token_file = \"{}\"\n\n",
        db.display(),
        dir.path().join("secret").display(),
        dir.path().join("verify").display(),
        base = sim.base_url()
    );
    if attack.is_some() {
        text.push_str(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n"));
    }
    for a in 0..accounts {
        let token = format!("bench-webhook-token-{a}");
        sim.add_account(&id(a), &format!("brand{a}"), &token);
        let file = dir.path().join(format!("t{a}"));
        std::fs::write(&file, &token).expect("token");
        text.push_str(&format!(
            "[[accounts]]\nname = \"brand{a}\"\nig_user_id = \"{}\"\nlogin = \"instagram\"\ntoken_file = \"{}\"\npoll_interval = \"{}\"\nhourly_budget = 5000\nbackfill = true\n\n",
            id(a),
            file.display(),
            if attack.is_some() && a + 1 == accounts {
                "2s"
            } else {
                interval
            }
        ));
    }
    text.push_str(igmod::demo::RULES);
    let config = dir.path().join("config.toml");
    std::fs::write(&config, text).expect("config");
    let log = dir.path().join("igmod.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_igmod"));
    cmd.env_remove("IGMOD_CONFIG")
        .env_remove("RUST_LOG")
        .args(["run", "-c"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"));
    if let Some(hard) = attack {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: 1024,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    return Ok(());
                }
                // Without CAP_SYS_RESOURCE the hard limit cannot rise: keep it, soft 1,024
                // (the figures print the limits in force).
                let mut now = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                now.rlim_cur = now.rlim_max.min(1024);
                if libc::setrlimit(libc::RLIMIT_NOFILE, &now) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = cmd.spawn().expect("igmod runs");
    Daemon {
        child,
        url: format!("http://127.0.0.1:{port}/webhook"),
        log,
        db,
        _dir: dir,
    }
}

impl Daemon {
    async fn ready(&self, sim: &Simulator, accounts: usize) {
        let started = Instant::now();
        loop {
            let polled = polled_accounts(sim);
            let listening = reqwest::get(&self.url).await.is_ok();
            if polled >= accounts && listening {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "daemon not ready"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn stop(self) -> String {
        proc::stop(self.child);
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn events(&self) -> i64 {
        let Ok(pool) = sqlx::SqlitePool::connect(&format!("sqlite://{}", self.db.display())).await
        else {
            return -1;
        };
        let n = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM webhook_events")
            .fetch_one(&pool)
            .await
            .unwrap_or(-1);
        pool.close().await;
        n
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Adds `per_sec` comments a second for `secs` across the posts, every third a scam.
async fn traffic(sim: &Simulator, posts: &[String], per_sec: u32, secs: u32) -> Vec<String> {
    let mut scams = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_sec);
    for n in 0..(per_sec * secs) as usize {
        tick.tick().await;
        let post = &posts[n % posts.len()];
        if n % 3 == 0 {
            scams.push(sim.add_comment(post, &format!("bot{n}"), &format!("forex signals {n}")));
        } else {
            sim.add_comment(post, &format!("fan{n}"), "love the colour");
        }
    }
    scams
}

async fn latency() {
    let sim = Simulator::start().await.expect("simulator");
    let daemon = start(&sim, 10, "1h");
    let posts: Vec<String> = (0..10).map(|a| sim.add_media(&id(a))).collect();
    daemon.ready(&sim, 10).await;
    let reads_before = sim.requests().iter().filter(|r| r.method == "GET").count();
    sim.deliver_webhooks(&daemon.url, WebhookFaults::default());
    let scams = traffic(&sim, &posts, 50, 20).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = sim.webhook_stats();
    let mut ms: Vec<f64> = scams
        .iter()
        .filter_map(|id| {
            let acted = sim.comment(id)?.acted_at?;
            let sent = stats.delivered_at.get(id)?;
            Some((acted - *sent).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let reads = sim.requests().iter().filter(|r| r.method == "GET").count() - reads_before;
    let acted = ms.len();
    daemon.stop();
    println!(
        "latency: {} comments in 20 s across 10 accounts, {acted} of {} scams acted on; POST → action p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; Graph reads meanwhile {reads}   targets p50 ≤ 100 ms, p99 ≤ 1000 ms, 0 reads",
        stats.delivered,
        scams.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN),
    );
}

async fn faults() {
    let sim = Simulator::start().await.expect("simulator");
    let daemon = start(&sim, 10, "5s");
    let posts: Vec<String> = (0..10).map(|a| sim.add_media(&id(a))).collect();
    daemon.ready(&sim, 10).await;
    sim.deliver_webhooks(
        &daemon.url,
        WebhookFaults {
            drop: 0.3,
            duplicate: 0.3,
            reorder: Duration::from_millis(500),
            seed: 23,
            ..Default::default()
        },
    );
    let scams = traffic(&sim, &posts, 50, 10).await;
    // Two poll intervals for the reconciler.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let acted = scams
        .iter()
        .filter(|id| sim.comment(id).is_some_and(|c| c.deleted || c.hidden))
        .count();
    let twice = sim
        .comments()
        .iter()
        .filter(|c| c.delete_calls + c.hide_calls > 1)
        .count();
    let stats = sim.webhook_stats();
    daemon.stop();
    println!(
        "faults: {} deliveries, {} dropped, {} duplicated, reordered ≤ 500 ms; {acted} of {} scams acted on within two polls; comments written twice: {twice}   targets all acted on, 0 written twice",
        stats.events,
        stats.dropped,
        stats.duplicated,
        scams.len()
    );
}

async fn abuse() {
    let sim = Simulator::start().await.expect("simulator");
    let daemon = start(&sim, 10, "1h");
    daemon.ready(&sim, 10).await;
    let pid = daemon.child.id();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = status_kib(pid, "VmRSS:").unwrap_or(0);
    // No connection reuse: igmod closes a connection whose oversized body it did not read.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let small = br#"{"object":"instagram","entry":[{"id":"17841400000000000","field":"comments","value":{"id":"1","text":"forex"}}]}"#.to_vec();
    let big = vec![b'{'; 1024 * 1024 + 1];
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::new();
    let mut peak = idle;
    for batch in 0..100 {
        let mut tasks = Vec::new();
        for i in 0..100 {
            let http = http.clone();
            let url = daemon.url.clone();
            // One in ten oversized (signed right), the rest signed wrong.
            let (body, signature) = if i % 10 == 0 {
                (big.clone(), Simulator::sign_webhook(SECRET, &big))
            } else {
                (small.clone(), format!("sha256={:064x}", batch * 100 + i))
            };
            tasks.push(tokio::spawn(async move {
                http.post(url)
                    .header("x-hub-signature-256", signature)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }));
        }
        for t in tasks {
            *statuses.entry(t.await.unwrap_or(0)).or_insert(0u32) += 1;
        }
        peak = peak.max(status_kib(pid, "VmRSS:").unwrap_or(0));
    }
    let took = started.elapsed();
    let after = status_kib(pid, "VmRSS:").unwrap_or(0);
    let events = daemon.events().await;
    let log = daemon.stop();
    let lines = log.lines().filter(|l| l.contains("refused")).count();
    // 0: the connection was closed while the client still sent an oversized body.
    println!(
        "abuse: 10,000 POSTs in {:.1} s, answered {statuses:?} (0: connection closed mid-body); RSS idle {:.1} MB, after {:.1} MB, peak {:.1} MB (+{:.1} MB); events written {events}; log lines about them {lines}   targets all refused, ≤ +10 MB, 0 written, no flood",
        took.as_secs_f64(),
        idle as f64 / 1024.0,
        after as f64 / 1024.0,
        peak as f64 / 1024.0,
        (peak.saturating_sub(idle)) as f64 / 1024.0,
    );
}

/// Opens connections to `addr` that send `head` (and, with `drip`, one more byte of body every
/// second), each reopened as soon as the daemon closes it, until `stop`. Returns how many
/// times the daemon closed one.
async fn hold(
    addr: String,
    head: String,
    drip: bool,
    stop: tokio_util::sync::CancellationToken,
) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut closed = 0;
    while !stop.is_cancelled() {
        let Ok(Ok(mut s)) = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(&addr),
        )
        .await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if s.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        let mut buf = [0u8; 1024];
        loop {
            tokio::select! {
                _ = stop.cancelled() => return closed,
                read = s.read(&mut buf) => match read {
                    Ok(0) | Err(_) => { closed += 1; break; }
                    Ok(_) => {}
                },
                _ = tokio::time::sleep(Duration::from_secs(1)), if drip => {
                    if s.write_all(b" ").await.is_err() {
                        closed += 1;
                        break;
                    }
                }
            }
        }
    }
    closed
}

async fn attack(hard: u64) {
    let sim = Simulator::start().await.expect("simulator");
    let daemon = start_with(&sim, 2, "1h", Some(hard));
    let hooked = sim.add_media(&id(0));
    let polled = sim.add_media(&id(1));
    daemon.ready(&sim, 2).await;
    let pid = daemon.child.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| {
            l.split_whitespace()
                .skip(3)
                .take(2)
                .collect::<Vec<_>>()
                .join(" soft, ")
                + " hard"
        })
        .unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = status_kib(pid, "VmRSS:").unwrap_or(0);
    let addr = daemon
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let stop = tokio_util::sync::CancellationToken::new();
    let wrong = Simulator::sign_webhook("not-the-secret", b"{}");
    let mut attackers = Vec::new();
    for _ in 0..4 {
        let head = format!(
            "POST /webhook HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {wrong}\r\nContent-Length: 1000000\r\n\r\n{{"
        );
        attackers.push(tokio::spawn(hold(addr.clone(), head, true, stop.clone())));
    }
    for _ in 0..1100 {
        let head = format!("POST /webhook HTTP/1.1\r\nHost: {addr}\r\nContent-Le");
        attackers.push(tokio::spawn(hold(addr.clone(), head, false, stop.clone())));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let started = Instant::now();
    let mut acted = Vec::new();
    let mut health = Vec::new();
    let mut peak = idle;
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        n += 1;
        let t = Instant::now();
        let ok = http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        health.push(if ok {
            t.elapsed().as_secs_f64()
        } else {
            f64::INFINITY
        });
        let scam = sim.add_comment(&hooked, &format!("bot{n}"), &format!("forex signals {n}"));
        let body = serde_json::json!({"object": "instagram", "entry": [{"id": id(0),
            "time": chrono::Utc::now().timestamp(), "field": "comments",
            "value": {"id": scam, "text": format!("forex signals {n}"),
                "from": {"id": "9001", "username": format!("bot{n}")},
                "media": {"id": hooked, "media_product_type": "FEED"}}}]})
        .to_string()
        .into_bytes();
        let t = Instant::now();
        let answered = http
            .post(&daemon.url)
            .header(
                "x-hub-signature-256",
                Simulator::sign_webhook(SECRET, &body),
            )
            .body(body)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let mut secs = f64::INFINITY;
        while answered && t.elapsed() < Duration::from_secs(20) {
            if sim.comment(&scam).is_some_and(|c| c.deleted) {
                secs = t.elapsed().as_secs_f64();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        acted.push(secs);
        peak = peak.max(status_kib(pid, "VmRSS:").unwrap_or(0));
    }
    stop.cancel();
    let mut closed = 0;
    for a in attackers {
        closed += a.await.unwrap_or(0);
    }
    // Afterwards: a scam no webhook announces, found by the 2-second account's polls.
    let t = Instant::now();
    let scam = sim.add_comment(&polled, "botafter", "forex signals after");
    let mut after = f64::INFINITY;
    while t.elapsed() < Duration::from_secs(30) {
        if sim.comment(&scam).is_some_and(|c| c.deleted) {
            after = t.elapsed().as_secs_f64();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = daemon.stop();
    let stopped = log
        .lines()
        .filter(|l| l.contains("ACCOUNT STOPPED"))
        .count();
    let cap_lines = log
        .lines()
        .filter(|l| l.contains("connection cap reached"))
        .count();
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let mut sorted = acted.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "attack: asked for 1,024 soft / {hard} hard open files, in force {open_files}; 30 s of 4 slow bodies (well-formed wrong signatures) + 1,100 half-sent requests, closed by igmod {closed} times; signed delivery → deleted: median {:.2} s, max {:.2} s over {}; /healthz max {:.3} s; RSS idle {:.1} MB, peak {:.1} MB (+{:.1} MB); accounts stopped {stopped}; cap log lines {cap_lines}; after the attack a polled scam deleted in {after:.1} s   targets ≤ 2 s, ≤ 2 s, ≤ +50 MB, 0 stopped, polling moderates",
        percentile(&sorted, 0.5),
        max(&acted),
        acted.len(),
        max(&health),
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
        (peak.saturating_sub(idle)) as f64 / 1024.0,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(phases) = proc::phases(&["latency", "faults", "abuse", "attack"]) else {
        return;
    };
    let runs = |p: &str| phases.contains(&p);
    if runs("latency") {
        latency().await;
    }
    if runs("faults") {
        faults().await;
    }
    if runs("abuse") {
        abuse().await;
    }
    if runs("attack") {
        // systemd's default limits; then a hard limit igmod cannot raise (as under the
        // shipped unit's syscall filter without LimitNOFILE=): the connection cap at 384.
        attack(524_288).await;
        attack(1024).await;
    }
}
