//! Build-time work:
//! - rebuild when a migration changes (`sqlx::migrate!` embeds them at compile time);
//! - the git commit `igmod --version` prints;
//! - the files the Debian package ships beside the binary, generated, never written by hand:
//!   man pages and bash/zsh/fish completions from the CLI's definition (`src/cli.rs`), and
//!   the packaged `/etc/igmod/config.toml` from `config.toml.example` (its account commented
//!   out, the model path made absolute).
//!
//! Those files go to `target/<profile>/pkg/`: cargo-deb cannot read a build script's
//! `OUT_DIR` (its path holds a hash), and it maps asset paths that start with
//! `target/release/` to the real target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;

#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=config.toml.example");
    println!("cargo:rerun-if-env-changed=IGMOD_GIT_COMMIT");
    commit();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or(std::io::ErrorKind::NotFound)?);
    // OUT_DIR is target/<profile>/build/igmod-<hash>/out.
    let Some(profile_dir) = out.ancestors().nth(3) else {
        return Err(std::io::ErrorKind::NotFound.into());
    };
    let pkg = profile_dir.join("pkg");
    let man = pkg.join("man");
    let completions = pkg.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    // One page per (sub)command, gzipped as Debian ships man pages (mtime 0: reproducible).
    for entry in std::fs::read_dir(&man)? {
        std::fs::remove_file(entry?.path())?;
    }
    clap_mangen::generate_to(cli::Cli::command(), &man)?;
    for entry in std::fs::read_dir(&man)? {
        let page = entry?.path();
        if page.extension().is_some_and(|e| e == "1") {
            let text = std::fs::read(&page)?;
            let mut gz = flate2::GzBuilder::new().write(
                std::fs::File::create(page.with_extension("1.gz"))?,
                flate2::Compression::best(),
            );
            std::io::Write::write_all(&mut gz, &text)?;
            gz.finish()?;
            std::fs::remove_file(&page)?;
        }
    }
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cli::Cli::command(), "igmod", &completions)?;
    }
    let example = std::fs::read_to_string("config.toml.example")?;
    std::fs::write(pkg.join("config.toml"), packaged_config(&example))?;
    Ok(())
}

/// The commit `igmod --version` names: `IGMOD_GIT_COMMIT` if set (a build from a tarball),
/// else `git rev-parse`, else "unknown".
fn commit() {
    let from_git = || {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = std::env::var("IGMOD_GIT_COMMIT")
        .ok()
        .or_else(from_git)
        .unwrap_or_else(|| "unknown".into());
    println!(
        "cargo:rustc-env=IGMOD_VERSION_LONG={} (commit {commit})",
        env!("CARGO_PKG_VERSION")
    );
    if Path::new(".git/HEAD").exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        println!("cargo:rerun-if-changed=.git/refs/heads");
    }
}

/// `config.toml.example` as the package installs it: every `[[accounts]]` table commented out
/// (a fresh install has nothing to moderate and says so), the shipped model's path absolute.
fn packaged_config(example: &str) -> String {
    let mut out = String::new();
    let mut in_account = false;
    for line in example.lines() {
        if line.trim() == "[[accounts]]" {
            in_account = true;
            out.push_str(
                "# No account yet: igmod starts nothing until you uncomment this table (remove the\n\
                 # leading \"# \" of each line), set ig_user_id and put the token where token_env or\n\
                 # token_file says. Then: igmod check-config && systemctl start igmod\n",
            );
        } else if line.trim().is_empty() {
            in_account = false;
        }
        if in_account {
            out.push_str("# ");
        }
        out.push_str(&line.replace(
            "model = \"models/scam.model\"",
            "model = \"/usr/share/igmod/models/scam.model\"",
        ));
        out.push('\n');
    }
    out
}
