//! Log set-up: stderr (journald under systemd) or daily-rotated files; text or JSON.
//! `RUST_LOG` overrides the default filter, which quiets dependencies. A reload can change the
//! level, the format and the destination without a restart.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, reload};

use crate::config::{DaemonConfig, LogFormat};

const DEFAULT_FILTER: &str = "info,sqlx=warn,hyper=warn,reqwest=warn,tokio_cron_scheduler=warn";

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
///
/// Both formatting layers (text and JSON) are installed for the whole run and see every span,
/// so every span carries the fields of both formats whichever was active when it opened; only
/// the active one writes events. (Swapping one layer for another at a reload left the
/// long-lived account spans without the new layer's fields: tracing-subscriber's JSON layer
/// panics on such a span, and the text layer drops its fields.) The destination is a writer
/// both layers share, switched in place.
pub struct LogGuard {
    file_writer: Mutex<Option<WorkerGuard>>,
    current: Mutex<Destination>,
    set_filter: Option<SetFilter>,
    target: Target,
    active: Arc<AtomicU8>,
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
        if (&current.dir, current.keep) != (&wanted.dir, wanted.keep) {
            let (sink, guard) = sink(&wanted);
            self.target.set(sink);
            // The old file writer is flushed when its guard drops, after the switch.
            let old = self
                .file_writer
                .lock()
                .ok()
                .and_then(|mut g| std::mem::replace(&mut *g, guard));
            drop(old);
        }
        self.active.store(wanted.format as u8, Ordering::Relaxed);
        tracing::info!(message = "log output changed", format = ?wanted.format, dir = ?wanted.dir);
        *current = wanted;
    }
}

/// Where log lines go: stderr or a file writer, switched in place by a reload.
#[derive(Clone)]
struct Target(Arc<RwLock<Sink>>);

#[derive(Clone)]
enum Sink {
    Stderr,
    File(NonBlocking),
}

impl Target {
    fn set(&self, sink: Sink) {
        match self.0.write() {
            Ok(mut s) => *s = sink,
            Err(poisoned) => *poisoned.into_inner() = sink,
        }
    }
}

impl<'a> MakeWriter<'a> for Target {
    type Writer = SinkWriter;

    fn make_writer(&'a self) -> SinkWriter {
        let sink = match self.0.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match sink {
            Sink::Stderr => SinkWriter::Stderr(std::io::stderr()),
            Sink::File(w) => SinkWriter::File(w),
        }
    }
}

enum SinkWriter {
    Stderr(std::io::Stderr),
    File(NonBlocking),
}

impl std::io::Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            SinkWriter::Stderr(w) => w.write(buf),
            SinkWriter::File(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            SinkWriter::Stderr(w) => w.flush(),
            SinkWriter::File(w) => w.flush(),
        }
    }
}

/// A formatting layer's filter: every span (so each span records its fields for every
/// format), and events only while its format is the active one.
struct WhenActive {
    format: u8,
    active: Arc<AtomicU8>,
}

impl<S> tracing_subscriber::layer::Filter<S> for WhenActive {
    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        meta.is_span() || self.active.load(Ordering::Relaxed) == self.format
    }

    fn callsite_enabled(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Changes at a reload: never cached.
        tracing::subscriber::Interest::sometimes()
    }
}

fn filter(level: Option<&str>) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| level.and_then(|l| EnvFilter::try_new(l).ok()))
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER))
}

/// The writer for a destination, and the guard of its file writer.
fn sink(d: &Destination) -> (Sink, Option<WorkerGuard>) {
    match &d.dir {
        Some(dir) => match file_writer(dir, d.keep) {
            Ok((w, g)) => (Sink::File(w), Some(g)),
            Err(e) => {
                eprintln!(
                    "igmod: cannot write logs in {}: {e}; logging to stderr",
                    dir.display()
                );
                (Sink::Stderr, None)
            }
        },
        None => (Sink::Stderr, None),
    }
}

/// Daily files `igmod.YYYY-MM-DD.log`, at most `keep` of them, written without dropping lines.
fn file_writer(
    dir: &Path,
    keep: usize,
) -> Result<(NonBlocking, WorkerGuard), tracing_appender::rolling::InitError> {
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("igmod")
        .filename_suffix("log")
        .max_log_files(keep.max(1))
        .build(dir)?;
    let (w, g) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(appender);
    Ok((w, g))
}

/// Installs the global subscriber. Call once, early, and keep the guard in `main`.
/// `RUST_LOG` wins over `level`, which wins over the default filter.
pub fn init(destination: Destination, level: Option<&str>) -> LogGuard {
    let (first, guard) = sink(&destination);
    let target = Target(Arc::new(RwLock::new(first)));
    let active = Arc::new(AtomicU8::new(destination.format as u8));
    // Colours only on a terminal, as started (a reload to a file keeps what was chosen).
    let ansi = destination.dir.is_none() && std::io::stderr().is_terminal();
    let when = |format: LogFormat| WhenActive {
        format: format as u8,
        active: active.clone(),
    };
    let text = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(target.clone())
        .with_filter(when(LogFormat::Text));
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(target.clone())
        .with_filter(when(LogFormat::Json));
    let (filter_layer, filter_handle) = reload::Layer::new(filter(level));
    let installed = tracing_subscriber::registry()
        .with(filter_layer)
        .with(text)
        .with(json)
        .try_init();
    if let Err(e) = &installed {
        eprintln!("igmod: logging already initialised: {e}");
    }
    let ok = installed.is_ok();
    LogGuard {
        file_writer: Mutex::new(guard),
        current: Mutex::new(destination),
        set_filter: ok.then(|| Box::new(move |f| filter_handle.reload(f)) as SetFilter),
        target,
        active,
    }
}
