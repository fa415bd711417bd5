//! Log set-up: stderr (journald under systemd) or daily-rotated files; text or JSON.
//! `RUST_LOG` overrides the default filter, which quiets dependencies.

use std::io::IsTerminal;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,hyper=warn,reqwest=warn,tokio_cron_scheduler=warn";

/// Keeps the file writer alive: drop it only when the process ends, or lines are lost.
pub struct LogGuard {
    _file_writer: Option<WorkerGuard>,
}

/// Installs the global subscriber. Call once, early, and keep the guard in `main`.
/// `RUST_LOG` wins over `level`, which wins over the default filter.
pub fn init(format: LogFormat, dir: Option<&Path>, keep: usize, level: Option<&str>) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| level.and_then(|l| EnvFilter::try_new(l).ok()))
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
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
            (
                tracing_subscriber::fmt::writer::BoxMakeWriter::new(w),
                Some(g),
            )
        }
        None => (
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
            None,
        ),
    };
    let ansi = dir.is_none() && std::io::stderr().is_terminal();
    let result = match format {
        LogFormat::Json => builder.json().with_writer(writer).try_init(),
        LogFormat::Text => builder.with_ansi(ansi).with_writer(writer).try_init(),
    };
    if let Err(e) = result {
        eprintln!("igmod: logging already initialised: {e}");
    }
    LogGuard {
        _file_writer: guard,
    }
}
