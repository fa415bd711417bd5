//! What the default model costs in memory: `cargo bench --bench memory`.
//!
//! The real binary (`igmod run`) polls the bundled simulator, once with the example's rules
//! and once with the same rules plus the example's classifier rule (the shipped model). Each
//! run polls every second for a warm-up, takes a few comments, then sits idle while its
//! resident set (`VmRSS` from `/proc`) is sampled; the runs alternate, three each, and the
//! medians are compared with the model file's size. Target: the idle RSS grows by no more
//! than the model's size.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use igmod::simulator::Simulator;

mod proc;
use proc::{median, status_kib};

const ID: &str = "17841400000000001";
const TOKEN: &str = "bench-memory-token";
const RUNS: usize = 3;

fn model_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/scam.model")
}

/// Writes a config (with the model rule if `model`) into a fresh dir.
fn write_config(sim: &Simulator, dir: &Path, model: bool) -> PathBuf {
    let mut rules = igmod::demo::RULES.to_string();
    if model {
        std::fs::create_dir_all(dir.join("models")).expect("models dir");
        std::fs::copy(model_path(), dir.join("models/scam.model")).expect("model copy");
        rules.push_str(igmod::demo::MODEL_RULE);
    }
    let path = dir.join("config.toml");
    let text = format!(
        "[daemon]\ndatabase = \"{db}\"\n\n[graph]\nfacebook_base_url = \"{base}\"\ninstagram_base_url = \"{base}\"\napi_version = \"v25.0\"\ntimeout = \"3s\"\n\n[[accounts]]\nname = \"acme\"\nig_user_id = \"{ID}\"\nlogin = \"instagram\"\ntoken_env = \"IGMOD_TOKEN_BENCH\"\npoll_interval = \"1s\"\nhourly_budget = 20000\nbackfill = true\n\n{rules}",
        db = dir.join("igmod.db").display(),
        base = sim.base_url()
    );
    std::fs::write(&path, text).expect("config");
    path
}

/// One run: the daemon's median idle RSS in KiB.
async fn run_once(sim: &Simulator, media: &str, model: bool) -> u64 {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(sim, dir.path(), model);
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_igmod"))
        .env_remove("IGMOD_CONFIG")
        .env_remove("RUST_LOG")
        .env("IGMOD_TOKEN_BENCH", TOKEN)
        .args(["run", "-c"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn igmod");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..20 {
        let text = if i % 4 == 0 {
            "I invested $500 with @mrs_anna_fx and got $9,000 back, message her"
        } else {
            "love these shoes, ordering a second pair"
        };
        sim.add_comment(media, &format!("user{i}"), text);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut samples = Vec::new();
    for _ in 0..10 {
        if let Some(kib) = status_kib(child.id(), "VmRSS:") {
            samples.push(kib);
        }
        if std::env::var_os("BENCH_DETAIL").is_some() {
            let anon = status_kib(child.id(), "RssAnon:");
            let file = status_kib(child.id(), "RssFile:");
            println!("model {model}: anon {anon:?} file {file:?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let alive = child.try_wait().ok().flatten().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        alive && !samples.is_empty(),
        "the daemon died during the run"
    );
    median(samples)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sim = Simulator::start().await.expect("simulator");
    sim.add_account(ID, "acme", TOKEN);
    let media = sim.add_media(ID);
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        without.push(run_once(&sim, &media, false).await);
        with.push(run_once(&sim, &media, true).await);
    }
    let model_kib = std::fs::metadata(model_path())
        .map(|m| m.len() / 1024)
        .unwrap_or(0);
    let (a, b) = (median(without.clone()), median(with.clone()));
    let growth = b.saturating_sub(a);
    println!("idle RSS of `igmod run`, rules only:       {a} KiB (runs: {without:?})");
    println!("idle RSS of `igmod run`, rules + model:    {b} KiB (runs: {with:?})");
    println!(
        "growth {growth} KiB; model file {model_kib} KiB; target growth <= model size: {}",
        if growth <= model_kib {
            "met"
        } else {
            "NOT met"
        }
    );
}
