//! `igmod init`: one account's answers (flags, else questions on stderr) → a checked config.

use std::process::ExitCode;

use anyhow::Context;

use super::exit;
use crate::cli::*;

/// `igmod init`: asks what flags did not say, writes the config and says what comes next.
pub fn init(flags: InitArgs) -> ExitCode {
    exit(write_config(flags))
}

/// Asks one question on stderr and reads the answer from stdin (a terminal or a pipe). An
/// empty answer takes the default; no answer at all names the flag to pass instead.
fn ask(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    question: &str,
    default: Option<&str>,
    flag: &str,
) -> anyhow::Result<String> {
    match default {
        Some(d) => eprint!("{question} [{d}]: "),
        None => eprint!("{question}: "),
    }
    let answer = match lines.next() {
        Some(line) => line.context("reading the answer")?.trim().to_string(),
        None => anyhow::bail!("no answer on stdin: pass {flag}"),
    };
    match (answer.is_empty(), default) {
        (true, Some(d)) => Ok(d.to_string()),
        (true, None) => anyhow::bail!("an answer is needed (or pass {flag})"),
        (false, _) => Ok(answer),
    }
}

fn write_config(flags: InitArgs) -> anyhow::Result<()> {
    use crate::init::{self, Answers, TokenPlace};
    use std::io::BufRead;
    let path = flags.config.config.as_path();
    if path.exists() && !flags.force {
        return Err(init::InitError::Exists(path.to_path_buf()).into());
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let login = match flags.login {
        Some(l) => l,
        None => ask(
            &mut lines,
            "Login type: instagram (a token from Instagram Login) or facebook (Facebook Login, through the Page)",
            Some("instagram"),
            "--login",
        )?,
    };
    let ig_user_id = match flags.ig_user_id {
        Some(id) => id,
        None => ask(
            &mut lines,
            "The account's Instagram user id (digits; GET /me?fields=user_id with its token shows it)",
            None,
            "--ig-user-id",
        )?,
    };
    let token = match (flags.token_env, flags.token_file) {
        (Some(var), _) => TokenPlace::Env(var),
        (None, Some(file)) => TokenPlace::File(file),
        (None, None) => {
            let place = ask(
                &mut lines,
                "Where will the token be? An environment variable's name, or a file path",
                Some(&init::default_token_env(&flags.name)),
                "--token-env or --token-file",
            )?;
            if place.contains('/') {
                TokenPlace::File(place)
            } else {
                TokenPlace::Env(place)
            }
        }
    };
    let model = match (flags.no_model, flags.model) {
        (true, _) => None,
        (false, Some(m)) => Some(std::path::absolute(&m).unwrap_or(m)),
        (false, None) => init::default_model(),
    };
    let answers = Answers {
        name: flags.name,
        login,
        ig_user_id,
        token,
        database: flags.database,
        model,
    };
    let written = match init::write(path, &answers, flags.force) {
        Ok(c) => c,
        Err(init::InitError::Config(e)) => {
            eprintln!("{e}");
            anyhow::bail!("the written config does not check; it is left in place to be fixed");
        }
        Err(e) => return Err(e.into()),
    };
    let rules = if written.rules.names().any(|n| n == "scam-model") {
        "the starter rules and the classifier"
    } else {
        "the starter rules"
    };
    println!(
        "wrote {} (account {:?}, moderated by {rules})",
        path.display(),
        answers.name
    );
    match &answers.token {
        TokenPlace::Env(var) => println!(
            "Put the token in {var}: under systemd, a line {var}=... in /etc/igmod/igmod.env (chmod 600)."
        ),
        TokenPlace::File(file) => {
            println!("Put the token in {file} (chmod 600), or give it as a systemd credential.")
        }
    }
    let c = path.display();
    println!("Then:");
    println!("  igmod check-config -c {c}");
    println!(
        "  igmod rules test -c {c} --account {} \"DM me to earn with crypto signals\"",
        answers.name
    );
    println!("  systemctl enable --now igmod    # or: igmod run -c {c}");
    Ok(())
}
