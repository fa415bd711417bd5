//! The shipped systemd unit: hardened (exposure ≤ 1.5) and valid. Skipped, with a message,
//! where `systemd-analyze` is not installed.

use std::process::Command;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/igmod.service");

fn analyze(args: &[&str]) -> Option<(bool, String)> {
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(UNIT)
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), text))
}

#[test]
fn unit_exposure_is_at_most_1_5() {
    let Some((_, text)) = analyze(&["security", "--offline=true"]) else {
        eprintln!("systemd-analyze not installed: skipped");
        return;
    };
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for igmod.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(score <= 1.5, "exposure {score}:\n{text}");
}

#[test]
fn unit_verifies_clean_apart_from_the_binary_path() {
    let Some((_, text)) = analyze(&["verify"]) else {
        eprintln!("systemd-analyze not installed: skipped");
        return;
    };
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("/usr/local/bin/igmod is not executable"))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}
