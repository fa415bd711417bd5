//! The shipped systemd unit: hardened (exposure ≤ 1.5), valid, and reloading only a config
//! that checks. Needs `systemd-analyze` (Debian package `systemd`; `.ci/run` installs it): its
//! absence fails the tests rather than skipping them.

use std::process::Command;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/igmod.service");

fn analyze(args: &[&str]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(UNIT)
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze cannot run ({e}): install the Debian package `systemd`")
        });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn unit_exposure_is_at_most_1_5() {
    let (_, text) = analyze(&["security", "--offline=true"]);
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
    let (_, text) = analyze(&["verify"]);
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("/usr/bin/igmod is not executable"))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_reload_checks_the_config_before_signalling_and_no_setting_is_a_no_op() {
    let unit = std::fs::read_to_string(UNIT).expect("unit");
    let reloads: Vec<&str> = unit
        .lines()
        .filter(|l| l.starts_with("ExecReload="))
        .collect();
    assert_eq!(
        reloads,
        [
            "ExecReload=/usr/bin/igmod check-config --config /etc/igmod/config.toml",
            "ExecReload=/bin/kill -HUP $MAINPID"
        ],
        "systemctl reload must fail on a bad config, before the daemon is signalled"
    );
    // IPAddressDeny=any with IPAddressAllow= of every address filters nothing.
    assert!(!unit.contains("IPAddressDeny") && !unit.contains("IPAddressAllow"));
}

#[test]
fn the_unit_gives_igmod_open_files_for_its_connections() {
    let unit = std::fs::read_to_string(UNIT).expect("unit");
    let limit: Option<u64> = unit
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .and_then(|v| v.trim().parse().ok());
    // The default soft limit of 1,024 let 1,100 idle connections starve the token files.
    assert!(limit.is_some_and(|n| n >= 16_384), "{limit:?}");
}
