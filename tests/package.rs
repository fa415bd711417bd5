//! The Debian package, installed on this machine as an operator would: `cargo deb` builds it,
//! `dpkg -i` installs it, the installed binary, config and unit are checked, then `dpkg --remove`
//! keeps the operator's data and `dpkg --purge` leaves nothing behind.
//!
//! Needs root (dpkg), cargo-deb and systemd-analyze; `.ci/run` installs them. Without them the
//! test fails saying what is missing: it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a command: (exit code, stdout, stderr).
fn sh(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let (code, out, err) = sh(cmd);
    assert_eq!(code, 0, "{shown} failed:\n{out}\n{err}");
    out
}

/// Builds the package with `cargo deb` (a release build, in its own target directory so it
/// never waits on the test build's lock) and returns its path.
fn build_package() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = root.join("target/package");
    let (code, _, _) = sh(Command::new("cargo").args(["deb", "--version"]));
    assert_eq!(
        code, 0,
        "cargo-deb is missing: cargo install cargo-deb (.ci/run does)"
    );
    // Test runners pass the build script's `rustc-env` values on to the test; cargo would take
    // IGMOD_VERSION_LONG as a changed input and rebuild the release that scripts/test built.
    let out = ok(Command::new("cargo")
        .args(["deb", "--quiet", "--output"])
        .arg(target.join("debian"))
        .current_dir(root)
        .env_remove("IGMOD_VERSION_LONG")
        .env_remove("OUT_DIR")
        .env("CARGO_TARGET_DIR", &target));
    let deb = PathBuf::from(out.trim().lines().last().unwrap_or_default());
    assert!(deb.is_file(), "cargo deb printed {out:?}");
    deb
}

#[test]
fn the_deb_installs_checks_and_purges_without_a_trace() {
    let (_, uid, _) = sh(Command::new("id").arg("-u"));
    assert_eq!(
        uid.trim(),
        "0",
        "installing the package needs root (CI runs as root)"
    );
    let deb = build_package();
    let name = deb.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(name, format!("igmod_{version}_amd64.deb"));
    let size = std::fs::metadata(&deb).map(|m| m.len()).unwrap_or(0);
    println!(
        "package {name}: {:.1} MB (target ≤ 15 MB)",
        size as f64 / 1e6
    );
    assert!(size <= 15_000_000, "{size} bytes");

    // A leftover from an earlier run goes first.
    let _ = sh(Command::new("dpkg").args(["--purge", "igmod"]));
    let out = ok(Command::new("dpkg")
        .args(["-i", "--force-confold"])
        .arg(&deb)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    // A fresh install starts nothing and says why.
    assert!(out.contains("has no account yet"), "{out}");
    let files = ok(Command::new("dpkg").args(["-L", "igmod"]));
    for path in [
        "/usr/bin/igmod",
        "/lib/systemd/system/igmod.service",
        "/etc/igmod/config.toml",
        "/etc/igmod/rules/starter.toml",
        "/usr/share/igmod/models/scam.model",
        "/usr/share/doc/igmod/README.md",
        "/usr/share/doc/igmod/copyright",
        "/usr/share/doc/igmod/LICENSE.scamspot",
        "/usr/share/man/man1/igmod.1.gz",
        "/usr/share/man/man1/igmod-init.1.gz",
        "/usr/share/bash-completion/completions/igmod",
        "/usr/share/zsh/vendor-completions/_igmod",
        "/usr/share/fish/vendor_completions.d/igmod.fish",
    ] {
        assert!(
            files.lines().any(|l| l == path),
            "{path} not in the package"
        );
        assert!(Path::new(path).exists(), "{path} not installed");
    }
    let conffiles =
        std::fs::read_to_string("/var/lib/dpkg/info/igmod.conffiles").unwrap_or_default();
    assert!(conffiles.contains("/etc/igmod/config.toml"), "{conffiles}");
    // Enabled, not started.
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/igmod.service").exists(),
        "the unit is not enabled"
    );
    let env_file = std::fs::metadata("/etc/igmod/igmod.env").expect("igmod.env created");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&env_file.permissions()) & 0o777,
        0o600
    );

    // The version and the commit it was built from.
    let version_line = ok(Command::new("/usr/bin/igmod").arg("--version"));
    assert!(
        version_line.starts_with(&format!("igmod {version} (commit ")),
        "{version_line}"
    );
    if let (0, commit, _) = sh(Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR")))
    {
        assert!(version_line.contains(commit.trim()), "{version_line}");
    }

    // The installed config: refused until it has an account, with the line to edit.
    let (code, _, err) =
        sh(Command::new("/usr/bin/igmod").args(["check-config", "-c", "/etc/igmod/config.toml"]));
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("/etc/igmod/config.toml:") && err.contains("no [[accounts]] configured"),
        "{err}"
    );
    // The operator's edit: the example account uncommented, its token in place. Then the
    // config checks, its rules and the packaged model included.
    let text = std::fs::read_to_string("/etc/igmod/config.toml").expect("config");
    let mut in_account = false;
    let edited: String = text
        .lines()
        .map(|l| {
            if l.trim() == "# [[accounts]]" {
                in_account = true;
            } else if l.trim().is_empty() {
                in_account = false;
            }
            let line = match (in_account, l.strip_prefix("# ")) {
                (true, Some(rest)) => rest,
                _ => l,
            };
            format!("{line}\n")
        })
        .collect();
    std::fs::write("/etc/igmod/config.toml", &edited).expect("edit");
    // The token goes into the packaged environment file, as the README says; check-config
    // finds it there, as the service will.
    std::fs::write(
        "/etc/igmod/igmod.env",
        "IGMOD_TOKEN_ACME=EAAB-package-test\n",
    )
    .expect("token");
    let out = ok(Command::new("/usr/bin/igmod")
        .args(["check-config", "-c", "/etc/igmod/config.toml"])
        .env_remove("IGMOD_TOKEN_ACME")
        .env_remove("IGMOD_ENV_FILE"));
    assert!(out.contains("/usr/share/igmod/models/scam.model"), "{out}");
    assert!(out.contains("/etc/igmod/igmod.env"), "{out}");
    assert!(!out.contains("EAAB-package-test"), "{out}");

    // The installed unit: valid, and hardened.
    let (code, out, err) =
        sh(Command::new("systemd-analyze").args(["verify", "/lib/systemd/system/igmod.service"]));
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, err) = sh(Command::new("systemd-analyze").args([
        "security",
        "--offline=true",
        "/lib/systemd/system/igmod.service",
    ]));
    let text = format!("{out}{err}");
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for igmod.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    println!("installed unit exposure {exposure} (target ≤ 1.5)");
    assert!(exposure <= 1.5, "{text}");

    // Reinstalling (an upgrade's path) keeps the operator's config.
    ok(Command::new("dpkg")
        .args(["-i", "--force-confold"])
        .arg(&deb)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    assert_eq!(
        std::fs::read_to_string("/etc/igmod/config.toml").expect("config"),
        edited
    );

    // What the daemon would have written (its StateDirectory) survives a removal…
    std::fs::create_dir_all("/var/lib/private/igmod").expect("state dir");
    std::fs::write("/var/lib/private/igmod/igmod.db", "audit").expect("state");
    ok(Command::new("dpkg").args(["--remove", "igmod"]));
    assert!(!Path::new("/usr/bin/igmod").exists());
    assert!(
        Path::new("/etc/igmod/config.toml").exists(),
        "config removed"
    );
    assert!(
        Path::new("/var/lib/private/igmod/igmod.db").exists(),
        "state removed"
    );
    // …and a purge leaves nothing behind, the operator's credential files included.
    std::fs::create_dir_all("/etc/igmod/credentials").expect("credentials dir");
    std::fs::write("/etc/igmod/credentials/acme", "EAAB-package-test\n").expect("credential");
    ok(Command::new("dpkg").args(["--purge", "igmod"]));
    let mut left: Vec<&str> = files.lines().filter(|p| Path::new(p).is_file()).collect();
    for path in [
        "/etc/igmod",
        "/var/lib/igmod",
        "/var/lib/private/igmod",
        "/usr/share/igmod",
        "/usr/share/doc/igmod",
        "/etc/systemd/system/multi-user.target.wants/igmod.service",
        "/var/lib/systemd/deb-systemd-helper-enabled/igmod.service.dsh-also",
    ] {
        if Path::new(path).exists() {
            left.push(path);
        }
    }
    assert!(left.is_empty(), "left after purge: {left:#?}");
    let (code, _, _) = sh(Command::new("dpkg").args(["-s", "igmod"]));
    assert_ne!(code, 0, "dpkg still knows igmod");
}
