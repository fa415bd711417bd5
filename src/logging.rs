//! Log set-up: stderr (journald under systemd) or daily-rotated files; text or JSON.
//! `RUST_LOG` overrides the default filter, which quiets dependencies. A reload can change the
//! level, the format and the destination without a restart.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::config::{DaemonConfig, LogFormat};

const DEFAULT_FILTER: &str = "info,sqlx=warn,hyper=warn,reqwest=warn,tokio_cron_scheduler=warn";

type Output = Box<dyn Layer<Registry> + Send + Sync>;
type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), reload::Error> + Send + Sync>;

/// Where and how logs are written, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub format: LogFormat,
    pub dir: Option<PathBuf>,
    pub keep: usize,
}

impl Destination {
    pub fn of(daemon: &DaemonConfig) -> Destination {
        Destination {
            format: daemon.log_format,
            dir: daemon.log_dir.clone(),
            keep: daemon.log_keep,
        }
    }
}

/// Keeps the file writer alive (drop it only when the process ends, or lines are lost) and
/// lets a reload change the logs.
pub struct LogGuard {
    file_writer: Mutex<Option<WorkerGuard>>,
    current: Mutex<Destination>,
    set_filter: Option<SetFilter>,
    output: Option<reload::Handle<Output, Registry>>,
}

impl LogGuard {
    /// Applies a reloaded `[daemon]` section: level at once (`RUST_LOG`, when set, still wins),
    /// and format, directory or number of files kept by switching the output.
    pub fn apply(&self, daemon: &DaemonConfig) {
        let set_filter = self
            .set_filter
            .as_ref()
            .filter(|_| std::env::var_os("RUST_LOG").is_none());
        if let Some(Err(e)) = set_filter.map(|set| set(filter(daemon.log_level.as_deref()))) {
            tracing::warn!(message = "cannot change the log level", error = %e);
        }
        let wanted = Destination::of(daemon);
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        if *current == wanted {
            return;
        }
        let Some(handle) = &self.output else { return };
        let (layer, guard) = output(&wanted);
        match handle.reload(layer) {
            Ok(()) => {
                // The old writer is flushed when its guard drops, after the switch.
                let old = self
                    .file_writer
                    .lock()
                    .ok()
                    .and_then(|mut g| std::mem::replace(&mut *g, guard));
                drop(old);
                tracing::info!(message = "log output changed", format = ?wanted.format, dir = ?wanted.dir);
                *current = wanted;
            }
            Err(e) => tracing::warn!(message = "cannot change the log output", error = %e),
        }
    }
}

fn filter(level: Option<&str>) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| level.and_then(|l| EnvFilter::try_new(l).ok()))
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER))
}

/// The formatting layer for a destination, and the guard of its file writer.
fn output(d: &Destination) -> (Output, Option<WorkerGuard>) {
    let (writer, guard) = match &d.dir {
        Some(dir) => match file_writer(dir, d.keep) {
            Ok((w, g)) => (w, Some(g)),
            Err(e) => {
                eprintln!(
                    "igmod: cannot write logs in {}: {e}; logging to stderr",
                    dir.display()
                );
                (BoxMakeWriter::new(std::io::stderr), None)
            }
        },
        None => (BoxMakeWriter::new(std::io::stderr), None),
    };
    let ansi = d.dir.is_none() && std::io::stderr().is_terminal();
    let layer = match d.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
    };
    (layer, guard)
}

/// Daily files `igmod.YYYY-MM-DD.log`, at most `keep` of them, written without dropping lines.
fn file_writer(
    dir: &Path,
    keep: usize,
) -> Result<(BoxMakeWriter, WorkerGuard), tracing_appender::rolling::InitError> {
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("igmod")
        .filename_suffix("log")
        .max_log_files(keep.max(1))
        .build(dir)?;
    let (w, g) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(appender);
    Ok((BoxMakeWriter::new(w), g))
}

/// Installs the global subscriber. Call once, early, and keep the guard in `main`.
/// `RUST_LOG` wins over `level`, which wins over the default filter.
pub fn init(destination: Destination, level: Option<&str>) -> LogGuard {
    let (layer, guard) = output(&destination);
    let (output_layer, output_handle) = reload::Layer::new(layer);
    let (filter_layer, filter_handle) = reload::Layer::new(filter(level));
    let installed = tracing_subscriber::registry()
        .with(output_layer)
        .with(filter_layer)
        .try_init();
    if let Err(e) = &installed {
        eprintln!("igmod: logging already initialised: {e}");
    }
    let ok = installed.is_ok();
    LogGuard {
        file_writer: Mutex::new(guard),
        current: Mutex::new(destination),
        set_filter: ok.then(|| Box::new(move |f| filter_handle.reload(f)) as SetFilter),
        output: ok.then_some(output_handle),
    }
}
