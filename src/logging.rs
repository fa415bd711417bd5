//! Log set-up: stderr (journald under systemd) or daily-rotated files; text or JSON.
//! `RUST_LOG` overrides the default filter, which quiets dependencies.

use std::io::IsTerminal;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,hyper=warn,reqwest=warn,tokio_cron_scheduler=warn";

/// Keeps the file writer alive (drop it only when the process ends, or lines are lost) and
/// lets a reload change the log level.
pub struct LogGuard {
    _file_writer: Option<WorkerGuard>,
    level: Option<reload::Handle<EnvFilter, Registry>>,
}

impl LogGuard {
    /// Applies a new `log_level` (a reload). `RUST_LOG`, when set, still wins.
    pub fn set_level(&self, level: Option<&str>) {
        if std::env::var_os("RUST_LOG").is_some() {
            return;
        }
        if let Some(handle) = &self.level {
            let filter = filter(level);
            if let Err(e) = handle.reload(filter) {
                tracing::warn!(message = "cannot change the log level", error = %e);
            }
        }
    }
}

fn filter(level: Option<&str>) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| level.and_then(|l| EnvFilter::try_new(l).ok()))
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER))
}

/// Installs the global subscriber. Call once, early, and keep the guard in `main`.
/// `RUST_LOG` wins over `level`, which wins over the default filter.
pub fn init(format: LogFormat, dir: Option<&Path>, keep: usize, level: Option<&str>) -> LogGuard {
    let (filter, handle) = reload::Layer::new(filter(level));
    let (writer, guard) = match dir {
        Some(dir) => {
            let appender = match tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix("igmod")
                .filename_suffix("log")
                .max_log_files(keep.max(1))
                .build(dir)
            {
                Ok(a) => a,
                Err(e) => {
                    eprintln!(
                        "igmod: cannot write logs in {}: {e}; logging to stderr",
                        dir.display()
                    );
                    return init(format, None, keep, level);
                }
            };
            let (w, g) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(appender);
            (BoxMakeWriter::new(w), Some(g))
        }
        None => (BoxMakeWriter::new(std::io::stderr), None),
    };
    let ansi = dir.is_none() && std::io::stderr().is_terminal();
    let output: Box<dyn Layer<_> + Send + Sync> = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init();
    if let Err(e) = &installed {
        eprintln!("igmod: logging already initialised: {e}");
    }
    LogGuard {
        _file_writer: guard,
        level: installed.is_ok().then_some(handle),
    }
}
