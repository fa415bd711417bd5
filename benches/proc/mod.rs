//! What the benches that run the binary share: what `/proc` says about it, how it is
//! stopped, and how many of the simulator's accounts it has polled.

#![allow(dead_code)] // each bench uses its part

use std::process::Command;
use std::time::Duration;

/// A `kB` field of `/proc/PID/status` (`VmRSS:`, `VmHWM:`), in KiB.
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// CPU time (user, system) the process used so far.
pub fn cpu_time(pid: u32, ticks_per_sec: f64) -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((
        Duration::from_secs_f64(utime / ticks_per_sec),
        Duration::from_secs_f64(stime / ticks_per_sec),
    ))
}

pub fn ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Stops a benchmarked daemon (SIGTERM) and waits for it.
pub fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// How many accounts the simulator has answered a media listing for.
pub fn polled_accounts(sim: &igmod::simulator::Simulator) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path.ends_with("/media"))
        .filter_map(|r| r.account.clone())
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// The phases named on the command line (every one of `known` when none is), or `None` for
/// `--list` (how cargo's harness probes a bench).
pub fn phases(known: &[&'static str]) -> Option<Vec<&'static str>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return None;
    }
    let named: Vec<&'static str> = known
        .iter()
        .copied()
        .filter(|k| args.iter().any(|a| a == k))
        .collect();
    Some(if named.is_empty() {
        known.to_vec()
    } else {
        named
    })
}
