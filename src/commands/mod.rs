//! The bodies of igmod's commands, one file per command (or pair of commands), each called
//! with one line by `main.rs`; and what they share: the async runtime, the exit codes, opening
//! the configured database.

pub mod alerts;
pub mod check_config;
pub mod demo;
pub mod init;
pub mod labels;
pub mod model;
pub mod report;
pub mod rules;
pub mod run;
pub mod status;
pub mod token;
pub mod undo;
pub mod webhook;

use std::process::ExitCode;

use anyhow::Context;

use crate::config::{self, ConfigError};
use crate::{EX_CONFIG, evaluate};

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("igmod: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn config_failed(e: &ConfigError) -> ExitCode {
    eprintln!("{e}");
    eprintln!(
        "igmod: {} problem(s) in the config; nothing was started",
        e.problems.len()
    );
    ExitCode::from(EX_CONFIG as u8)
}

/// Opens the configured database for reading reports; it must exist already.
pub async fn open_existing(c: &config::Config) -> anyhow::Result<crate::store::Store> {
    if !c.daemon.database.exists() {
        anyhow::bail!("no database at {} yet: has igmod run?", c.daemon.database);
    }
    crate::store::Store::connect(&c.daemon.database)
        .await
        .with_context(|| format!("cannot open {}", c.daemon.database))
}

/// A labeled CSV file's rows (`rules eval`, `model train`), errors naming the file.
pub fn read_labeled(
    path: &std::path::Path,
    text_column: &str,
    label_column: &str,
) -> anyhow::Result<Vec<evaluate::LabeledRow>> {
    let input =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    evaluate::labeled_rows(input, text_column, label_column)
        .with_context(|| path.display().to_string())
}

/// Loads the config, opens the existing database, runs `f` against both and closes it.
pub fn with_database<F, Fut>(path: &std::path::Path, secrets: config::Secrets, f: F) -> ExitCode
where
    F: FnOnce(config::Config, crate::store::Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    with_database_code(path, secrets, |c, store| async move {
        f(c, store).await.map(|()| ExitCode::SUCCESS)
    })
}

/// [`with_database`] for a command that chooses its own exit code.
pub fn with_database_code<F, Fut>(
    path: &std::path::Path,
    secrets: config::Secrets,
    f: F,
) -> ExitCode
where
    F: FnOnce(config::Config, crate::store::Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let c = match config::load_with(path, secrets) {
        Ok(c) => c,
        Err(e) => return config_failed(&e),
    };
    let result = runtime().and_then(|rt| {
        rt.block_on(async {
            let store = open_existing(&c).await?;
            let result = f(c, store.clone()).await;
            store.close().await;
            result
        })
    });
    match result {
        Ok(code) => code,
        Err(e) => exit(Err(e)),
    }
}

/// Who is at the keyboard: the user sudo was run by, else the login name.
pub fn operator() -> Option<String> {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}
