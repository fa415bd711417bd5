//! How frugal igmod is with the Graph API: `cargo bench --bench budget`.
//!
//! The real daemon (scheduler, HTTP client, SQLite) polls the bundled simulator: 10 accounts ×
//! 25 posts (the newest 10 watched), polling every second — time is compressed: one second of
//! polling stands for one poll interval. Phases: a quiet stretch, steady comments on three hot
//! posts, a burst of 500 comments on one post. The same workload then runs against a naive
//! strategy implemented here (every poll fetches every watched post's comments, all pages, as
//! typical tools do), on a fresh simulator, and the figures are printed side by side.
//!
//! Then igmod runs the same workload once more with its database on a PostgreSQL server that
//! the bench starts (as tests/postgres.rs does), and its throughput is compared with SQLite's:
//! polls answered per second in the quiet stretch, and the seconds the 500-comment burst took
//! to be acted on.

#[path = "../tests/common/pg.rs"]
mod pg;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use igmod::rules::{CommentView, RuleSet};
use igmod::simulator::Simulator;
use tokio_util::sync::CancellationToken;

const ACCOUNTS: usize = 10;
const MEDIA: usize = 25;
const WATCHED: usize = 10;
const BUDGET: u32 = 5000;
const QUIET: Duration = Duration::from_secs(10);
const STEADY: Duration = Duration::from_secs(15);

#[derive(Debug, Default)]
struct Figures {
    quiet_calls: usize,
    quiet_polls: usize,
    steady_calls: usize,
    steady_comments: usize,
    latencies_ms: Vec<i64>,
    burst_reads: usize,
    /// Seconds from the burst's comments being posted to every scam among them deleted.
    burst_secs: f64,
    max_hour_calls: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Run {
    Sqlite,
    Postgres,
    Naive,
}

fn id(i: usize) -> String {
    format!("1784140000000{i:04}")
}

fn token(i: usize) -> String {
    format!("bench-token-{i}")
}

const RULES: &str =
    "[[rules]]\nname = \"scam\"\naction = \"delete\"\nwords = [\"forex\", \"crypto signal\"]\n";

async fn world() -> (Simulator, Vec<Vec<String>>) {
    let sim = Simulator::start().await.expect("simulator");
    let mut media = Vec::new();
    for a in 0..ACCOUNTS {
        sim.add_account(&id(a), &format!("brand{a}"), &token(a));
        let mut posts: Vec<String> = (0..MEDIA).map(|_| sim.add_media(&id(a))).collect();
        for p in &posts {
            sim.add_comment(p, "early", "first!");
        }
        posts.reverse(); // newest first
        media.push(posts);
    }
    (sim, media)
}

enum Strategy {
    Igmod(
        CancellationToken,
        tokio::task::JoinHandle<()>,
        tempfile::TempDir,
        Option<pg::PgServer>,
    ),
    Naive(CancellationToken, tokio::task::JoinHandle<()>),
}

async fn start_igmod(sim: &Simulator, postgres: bool) -> Strategy {
    let dir = tempfile::tempdir().expect("dir");
    let server = postgres.then(pg::PgServer::start);
    let database = match &server {
        Some(server) => server.url(),
        None => dir.path().join("bench.db").display().to_string(),
    };
    let mut accounts = String::new();
    for a in 0..ACCOUNTS {
        let file = dir.path().join(format!("t{a}"));
        std::fs::write(&file, token(a)).expect("token");
        accounts.push_str(&format!(
            "[[accounts]]\nname = \"a{a}\"\nig_user_id = \"{}\"\nlogin = \"instagram\"\ntoken_file = \"{}\"\npoll_interval = \"1s\"\nhourly_budget = {BUDGET}\nrecent_media = {WATCHED}\n\n",
            id(a),
            file.display()
        ));
    }
    let text = format!(
        "[daemon]\ndatabase = \"{database}\"\n[graph]\nfacebook_base_url = \"{b}\"\ninstagram_base_url = \"{b}\"\ntimeout = \"5s\"\n\n{accounts}{RULES}",
        b = sim.base_url()
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("config");
    let config = igmod::config::load(&path).expect("config valid");
    let stop = CancellationToken::new();
    let s = stop.clone();
    let handle = tokio::spawn(async move {
        if let Err(e) = igmod::daemon::run(config, async move { s.cancelled().await }).await {
            eprintln!("daemon: {e}");
        }
    });
    Strategy::Igmod(stop, handle, dir, server)
}

/// The naive strategy: every poll lists the media and pages through every watched post's
/// comments and replies; unseen comments go through the same rules.
async fn start_naive(sim: &Simulator) -> Strategy {
    let base = format!("{}/v25.0", sim.base_url());
    let rules = igmod::config::parse(
        std::path::Path::new("naive.toml"),
        &format!("[[accounts]]\nname = \"n\"\nig_user_id = \"1\"\nlogin = \"instagram\"\ntoken_env = \"PATH\"\npoll_interval = \"1s\"\nhourly_budget = 1\n{RULES}"),
    )
    .expect("rules")
    .rules;
    let stop = CancellationToken::new();
    let s = stop.clone();
    let handle = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut first = true;
        while !s.is_cancelled() {
            for a in 0..ACCOUNTS {
                naive_poll(&http, &base, a, &rules, &mut seen, first).await;
            }
            first = false;
            tokio::select! {
                _ = s.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
    Strategy::Naive(stop, handle)
}

async fn get(
    http: &reqwest::Client,
    url: &str,
    a: usize,
    query: &[(&str, &str)],
) -> serde_json::Value {
    match http
        .get(url)
        .bearer_auth(token(a))
        .query(query)
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

async fn naive_poll(
    http: &reqwest::Client,
    base: &str,
    a: usize,
    rules: &RuleSet,
    seen: &mut HashSet<String>,
    baseline: bool,
) {
    let media = get(
        http,
        &format!("{base}/{}/media", id(a)),
        a,
        &[("fields", "id"), ("limit", "10")],
    )
    .await;
    for m in media["data"].as_array().cloned().unwrap_or_default() {
        let Some(mid) = m["id"].as_str() else {
            continue;
        };
        let mut after: Option<String> = None;
        loop {
            let mut q = vec![
                (
                    "fields",
                    "id,text,username,replies.limit(50){id,text,username}",
                ),
                ("limit", "50"),
            ];
            let cursor;
            if let Some(c) = &after {
                cursor = c.clone();
                q.push(("after", &cursor));
            }
            let page = get(http, &format!("{base}/{mid}/comments"), a, &q).await;
            for c in page["data"].as_array().cloned().unwrap_or_default() {
                let Some(cid) = c["id"].as_str() else {
                    continue;
                };
                if seen.insert(cid.to_string()) && !baseline {
                    let text = c["text"].as_str().unwrap_or("");
                    if rules
                        .decide(&CommentView::new(text, c["username"].as_str()))
                        .is_some()
                    {
                        let _ = http
                            .delete(format!("{base}/{cid}"))
                            .bearer_auth(token(a))
                            .send()
                            .await;
                    }
                }
            }
            match (
                page["paging"]["next"].as_str(),
                page["paging"]["cursors"]["after"].as_str(),
            ) {
                (Some(_), Some(c)) => after = Some(c.to_string()),
                _ => break,
            }
        }
    }
}

fn total_calls(sim: &Simulator) -> usize {
    sim.requests().len()
}

fn media_lists(sim: &Simulator) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path.ends_with("/media"))
        .count()
}

async fn run(which: Run) -> Figures {
    let (sim, media) = world().await;
    let strategy = match which {
        Run::Naive => start_naive(&sim).await,
        Run::Sqlite => start_igmod(&sim, false).await,
        Run::Postgres => start_igmod(&sim, true).await,
    };
    // Let the first poll record what is there.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut f = Figures::default();

    let (c0, p0) = (total_calls(&sim), media_lists(&sim));
    tokio::time::sleep(QUIET).await;
    f.quiet_calls = total_calls(&sim) - c0;
    f.quiet_polls = media_lists(&sim) - p0;

    // Steady: 4 comments a second on the newest post of three accounts, one in five a scam.
    let c0 = total_calls(&sim);
    let start = Instant::now();
    let mut scams = Vec::new();
    let mut n = 0;
    while start.elapsed() < STEADY {
        for posts in media.iter().take(3) {
            let text = if n % 5 == 0 { "forex pays" } else { "lovely" };
            let cid = sim.add_comment(&posts[0], &format!("u{n}"), text);
            if n % 5 == 0 {
                scams.push(cid);
            }
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(750)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    f.steady_calls = total_calls(&sim) - c0;
    f.steady_comments = n;
    for s in &scams {
        if let Some((c, at)) = sim.comment(s).and_then(|c| c.acted_at.map(|at| (c, at))) {
            f.latencies_ms.push((at - c.timestamp).num_milliseconds());
        }
    }

    // Burst: 500 comments at once on one post of account 0.
    let post = media[0][1].clone();
    let reads_before = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&format!("{post}/comments")))
        .count();
    let burst: Vec<String> = (0..500)
        .map(|i| {
            sim.add_comment(
                &post,
                &format!("b{i}"),
                if i % 10 == 0 { "crypto signal" } else { "wow" },
            )
        })
        .collect();
    let burst_at = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline
        && !burst
            .iter()
            .step_by(10)
            .all(|b| sim.comment(b).is_some_and(|c| c.deleted))
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    f.burst_secs = burst_at.elapsed().as_secs_f64();
    f.burst_reads = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&format!("{post}/comments")))
        .count()
        - reads_before;

    match strategy {
        Strategy::Igmod(stop, handle, dir, server) => {
            stop.cancel();
            let _ = handle.await;
            const PER_ACCOUNT: &str =
                "SELECT COUNT(*) FROM api_calls WHERE at > $1 GROUP BY account";
            let hour_ago = igmod::timefmt::format(chrono::Utc::now() - chrono::Duration::hours(1));
            let rows: Vec<(i64,)> = match &server {
                Some(server) => {
                    let pool = sqlx::PgPool::connect(&server.url()).await.expect("db");
                    sqlx::query_as(PER_ACCOUNT)
                        .bind(&hour_ago)
                        .fetch_all(&pool)
                        .await
                        .unwrap_or_default()
                }
                None => {
                    let pool = sqlx::SqlitePool::connect(&format!(
                        "sqlite://{}",
                        dir.path().join("bench.db").display()
                    ))
                    .await
                    .expect("db");
                    sqlx::query_as(PER_ACCOUNT)
                        .bind(&hour_ago)
                        .fetch_all(&pool)
                        .await
                        .unwrap_or_default()
                }
            };
            f.max_hour_calls = rows.iter().map(|r| r.0 as usize).max().unwrap_or(0);
        }
        Strategy::Naive(stop, handle) => {
            stop.cancel();
            let _ = handle.await;
            f.max_hour_calls = (0..ACCOUNTS)
                .map(|a| sim.calls_for(&id(a)))
                .max()
                .unwrap_or(0);
        }
    }
    f
}

fn pct(v: &mut [i64], p: f64) -> i64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut igmod = rt.block_on(run(Run::Sqlite));
    let mut naive = rt.block_on(run(Run::Naive));
    let mut on_pg = rt.block_on(run(Run::Postgres));
    let per = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let minimum_burst = 501usize.div_ceil(50); // pages of 50 over the burst and what was there
    println!(
        "workload: {ACCOUNTS} accounts x {MEDIA} posts ({WATCHED} watched), polls every 1 s; quiet {}s, steady {}s, burst 500",
        QUIET.as_secs(),
        STEADY.as_secs()
    );
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "figure", "igmod", "naive", "ratio"
    );
    let q_i = per(igmod.quiet_calls, igmod.quiet_polls);
    let q_n = per(naive.quiet_calls, naive.quiet_polls);
    println!(
        "{:<44} {:>10.2} {:>10.2} {:>7.1}x",
        "calls per quiet poll",
        q_i,
        q_n,
        q_n / q_i.max(1e-9)
    );
    let s_i = per(igmod.steady_calls, igmod.steady_comments);
    let s_n = per(naive.steady_calls, naive.steady_comments);
    println!(
        "{:<44} {:>10.2} {:>10.2} {:>7.1}x",
        "calls per new comment (steady phase)",
        s_i,
        s_n,
        s_n / s_i.max(1e-9)
    );
    println!(
        "{:<44} {:>10} {:>10}",
        "detection latency p50 (ms)",
        pct(&mut igmod.latencies_ms, 0.5),
        pct(&mut naive.latencies_ms, 0.5)
    );
    println!(
        "{:<44} {:>10} {:>10}",
        "detection latency p99 (ms)",
        pct(&mut igmod.latencies_ms, 0.99),
        pct(&mut naive.latencies_ms, 0.99)
    );
    println!(
        "{:<44} {:>10} {:>10}   (minimum {minimum_burst} pages)",
        "comment-page reads for the 500 burst", igmod.burst_reads, naive.burst_reads
    );
    println!(
        "{:<44} {:>10} {:>10}   (budget {BUDGET})",
        "most calls by one account in the last hour", igmod.max_hour_calls, naive.max_hour_calls
    );
    println!(
        "targets: 1.0 call per quiet poll: {}; burst within 10% of minimum: {}; never above budget: {}; >=10x fewer quiet calls than naive: {}",
        if (q_i - 1.0).abs() < 1e-9 {
            "met"
        } else {
            "NOT met"
        },
        if igmod.burst_reads as f64 <= minimum_burst as f64 * 1.1 {
            "met"
        } else {
            "NOT met"
        },
        if igmod.max_hour_calls <= BUDGET as usize {
            "met"
        } else {
            "NOT met"
        },
        if q_n / q_i.max(1e-9) >= 10.0 {
            "met"
        } else {
            "NOT met"
        },
    );
    // The same igmod, its database on PostgreSQL.
    let polls_per_sec = |f: &Figures| f.quiet_polls as f64 / QUIET.as_secs_f64();
    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "igmod's database", "sqlite", "postgres", "ratio"
    );
    println!(
        "{:<44} {:>10.2} {:>10.2} {:>7.2}x",
        "polls answered per second (quiet)",
        polls_per_sec(&igmod),
        polls_per_sec(&on_pg),
        polls_per_sec(&igmod) / polls_per_sec(&on_pg).max(1e-9)
    );
    println!(
        "{:<44} {:>10.2} {:>10.2} {:>7.2}x",
        "seconds to act on the 500-comment burst",
        igmod.burst_secs,
        on_pg.burst_secs,
        on_pg.burst_secs / igmod.burst_secs.max(1e-9)
    );
    println!(
        "{:<44} {:>10} {:>10}",
        "detection latency p50 (ms)",
        pct(&mut igmod.latencies_ms, 0.5),
        pct(&mut on_pg.latencies_ms, 0.5)
    );
    println!(
        "{:<44} {:>10} {:>10}",
        "calls per quiet poll",
        format!("{:.2}", per(igmod.quiet_calls, igmod.quiet_polls)),
        format!("{:.2}", per(on_pg.quiet_calls, on_pg.quiet_polls))
    );
    let within = polls_per_sec(&on_pg) * 2.0 >= polls_per_sec(&igmod)
        && on_pg.burst_secs <= igmod.burst_secs * 2.0;
    println!(
        "target: single-instance throughput on PostgreSQL within 2x of SQLite: {}",
        if within { "met" } else { "NOT met" }
    );
}
