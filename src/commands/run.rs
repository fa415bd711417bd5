//! `igmod run`: the daemon in the foreground, with logging, signals (stop, second stop, reload).

use std::process::ExitCode;

use anyhow::Context;

use super::{config_failed, exit, runtime};
use crate::config;
use crate::{daemon, logging};

pub fn run(path: &std::path::Path) -> ExitCode {
    let c = match config::load(path) {
        Ok(c) => c,
        Err(e) => return config_failed(&e),
    };
    let guard = logging::init(
        logging::Destination::of(&c.daemon),
        c.daemon.log_level.as_deref(),
    );
    exit(runtime().and_then(|rt| {
        rt.block_on(async {
            let (shutdown, reloads) = signals()?;
            daemon::run_with_reload(c, shutdown, reloads, |new| guard.apply(&new.daemon))
                .await
                .map_err(anyhow::Error::from)
        })
    }))
}

/// Signals: the first SIGTERM or SIGINT resolves the returned future (graceful stop); a
/// second one exits at once; each SIGHUP sends a reload request.
pub fn signals() -> anyhow::Result<(
    impl std::future::Future<Output = ()>,
    tokio::sync::mpsc::Receiver<()>,
)> {
    use futures::StreamExt;
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook_tokio::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("cannot install signal handlers")?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel::<()>(4);
    tokio::spawn(async move {
        let mut tx = Some(tx);
        while let Some(signal) = signals.next().await {
            if signal == SIGHUP {
                tracing::info!(message = "SIGHUP received: reloading the config");
                let _ = reload_tx.try_send(());
                continue;
            }
            match tx.take() {
                Some(tx) => {
                    tracing::info!(message = "stop signal received", signal);
                    let _ = tx.send(());
                }
                None => {
                    tracing::warn!(message = "second stop signal: exiting now");
                    std::process::exit(130);
                }
            }
        }
    });
    Ok((
        async move {
            let _ = rx.await;
        },
        reload_rx,
    ))
}
