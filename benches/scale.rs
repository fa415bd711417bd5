//! What igmod costs with many accounts: `cargo bench --bench scale`.
//!
//! The real binary (`igmod run`) polls the bundled simulator (in this process, over loopback),
//! each account with its own token file, one post and the example's rules with the shipped
//! model. Three phases, each
//! a fresh daemon and database:
//! - 10 accounts polled every minute, idle: the resident set (`VmRSS`, median of samples);
//! - 2,000 accounts polled every minute: once every account has polled, a two-minute window
//!   measures the daemon's CPU time (`utime + stime` from `/proc/PID/stat`) as a share of one
//!   core, its resident set, and the polls the simulator answered in that window;
//! - 10,000 accounts configured (polled every 10 minutes): the resident set once all have
//!   polled.
//!
//! Targets (issue 22): ≤ 20 MB idle with 10 accounts; ≤ 60 MB and ≤ 5 % of a core with 2,000
//! accounts polled each minute; ≤ 120 MB with 10,000 configured.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use igmod::simulator::Simulator;

mod proc;
use proc::{cpu_time, median, polled_accounts, status_kib, stop, ticks_per_sec};

fn id(i: usize) -> String {
    format!("178414{i:011}")
}

fn token(i: usize) -> String {
    format!("bench-scale-token-{i}")
}

fn write_config(
    sim: &Simulator,
    dir: &Path,
    accounts: usize,
    interval: &str,
) -> std::path::PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("tokens dir");
    let mut text = format!(
        "[daemon]\ndatabase = \"{db}\"\n\n[graph]\nfacebook_base_url = \"{base}\"\ninstagram_base_url = \"{base}\"\napi_version = \"v25.0\"\ntimeout = \"10s\"\n\n",
        db = dir.join("igmod.db").display(),
        base = sim.base_url()
    );
    for a in 0..accounts {
        let file = tokens.join(format!("t{a}"));
        std::fs::write(&file, token(a)).expect("token");
        text.push_str(&format!(
            "[[accounts]]\nname = \"brand{a}\"\nig_user_id = \"{}\"\nlogin = \"instagram\"\ntoken_file = \"{}\"\npoll_interval = \"{interval}\"\nhourly_budget = 200\nbackfill = true\n\n",
            id(a),
            file.display()
        ));
    }
    text.push_str(igmod::demo::RULES);
    // The shipped model, as the example config runs it (loaded once, shared by every account).
    std::fs::create_dir_all(dir.join("models")).expect("models dir");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/scam.model"),
        dir.join("models/scam.model"),
    )
    .expect("model copy");
    text.push_str(igmod::demo::MODEL_RULE);
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("config");
    path
}

/// The daemon at its default log level (info: a line per poll), its log discarded;
/// `IGMOD_SCALE_LOG=FILTER` writes it to `scale-<pid>.log` at that filter instead.
fn spawn(config: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_igmod"));
    cmd.env_remove("IGMOD_CONFIG")
        .env_remove("RUST_LOG")
        .args(["run", "-c"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Ok(filter) = std::env::var("IGMOD_SCALE_LOG") {
        let log = std::fs::File::create(format!("scale-{}.log", std::process::id())).expect("log");
        cmd.env("RUST_LOG", filter).stderr(log);
    }
    cmd.spawn().expect("igmod runs")
}

/// Waits until the simulator has answered a media listing for every account.
async fn wait_all_polled(sim: &Simulator, accounts: usize, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let polled = polled_accounts(sim);
        if polled >= accounts {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "only {polled} of {accounts} accounts polled in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct Phase {
    rss_kib: u64,
    hwm_kib: u64,
    /// (total, user, system) as percentages of one core.
    cpu_pct: Option<(f64, f64, f64)>,
    polls: usize,
    window: Duration,
    startup: Duration,
}

async fn phase(accounts: usize, interval: &str, window: Duration, measure_cpu: bool) -> Phase {
    let sim = Simulator::start().await.expect("simulator");
    for a in 0..accounts {
        sim.add_account(&id(a), &format!("brand{a}"), &token(a));
        let post = sim.add_media(&id(a));
        sim.add_comment(&post, "fan", "love this");
    }
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(&sim, dir.path(), accounts, interval);
    let child = spawn(&config);
    let pid = child.id();
    let startup = wait_all_polled(&sim, accounts, Duration::from_secs(600)).await;
    // Let the start-up burst (token checks, first reads) settle.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let ticks = ticks_per_sec();
    let polls_before = sim.requests_to("/media");
    let cpu_before = cpu_time(pid, ticks);
    let started = Instant::now();
    let mut rss = Vec::new();
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Some(kib) = status_kib(pid, "VmRSS:") {
            rss.push(kib);
        }
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu_time(pid, ticks);
    let polls = sim.requests_to("/media") - polls_before;
    let hwm_kib = status_kib(pid, "VmHWM:").unwrap_or(0);
    // Where the resident set is: the heap and stacks, or the binary's own pages.
    if let (Some(anon), Some(file)) = (status_kib(pid, "RssAnon:"), status_kib(pid, "RssFile:")) {
        println!(
            "  ({accounts} accounts: RssAnon {:.1} MB, RssFile {:.1} MB)",
            mb(anon),
            mb(file)
        );
    }
    stop(child);
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / elapsed.as_secs_f64();
    let cpu_pct = match (measure_cpu, cpu_before, cpu_after) {
        (true, Some(b), Some(a)) => Some((
            pct(a.0.saturating_sub(b.0) + a.1.saturating_sub(b.1)),
            pct(a.0.saturating_sub(b.0)),
            pct(a.1.saturating_sub(b.1)),
        )),
        _ => None,
    };
    Phase {
        rss_kib: median(rss),
        hwm_kib,
        cpu_pct,
        polls,
        window: elapsed,
        startup,
    }
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench --bench scale -- 2000` runs only that phase.
    let Some(phases) = proc::phases(&["10", "2000", "10000"]) else {
        return;
    };
    let runs = |phase: &str| phases.contains(&phase);
    if runs("10") {
        let idle = phase(10, "60s", Duration::from_secs(20), false).await;
        println!(
            "10 accounts, idle:            RSS {:6.1} MB (peak {:.1} MB)          target ≤ 20 MB",
            mb(idle.rss_kib),
            mb(idle.hwm_kib)
        );
    }
    if runs("2000") {
        let busy = phase(2_000, "60s", Duration::from_secs(120), true).await;
        println!(
            "2,000 accounts, every minute: RSS {:6.1} MB (peak {:.1} MB), CPU {:.1} % of a core (user {:.1} %, system {:.1} %), {} polls in {:.0} s ({:.0}/min; all first polls in {:.0} s)   targets ≤ 60 MB, ≤ 5 %",
            mb(busy.rss_kib),
            mb(busy.hwm_kib),
            busy.cpu_pct.map_or(f64::NAN, |c| c.0),
            busy.cpu_pct.map_or(f64::NAN, |c| c.1),
            busy.cpu_pct.map_or(f64::NAN, |c| c.2),
            busy.polls,
            busy.window.as_secs_f64(),
            busy.polls as f64 * 60.0 / busy.window.as_secs_f64(),
            busy.startup.as_secs_f64()
        );
    }
    if runs("10000") {
        let many = phase(10_000, "10m", Duration::from_secs(20), false).await;
        println!(
            "10,000 accounts configured:   RSS {:6.1} MB (peak {:.1} MB; all first polls in {:.0} s)   target ≤ 120 MB",
            mb(many.rss_kib),
            mb(many.hwm_kib),
            many.startup.as_secs_f64()
        );
    }
}
