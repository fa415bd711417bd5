//! `igmod demo`: the simulator, the real daemon and a summary, logging to the terminal.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{exit, runtime};
use crate::config;
use crate::{demo, logging};

/// `igmod demo`: logs as text to stderr, then [`crate::demo::run`].
pub fn demo(seconds: u64, dir: Option<PathBuf>, model: PathBuf, no_model: bool) -> ExitCode {
    let _guard = logging::init(
        logging::Destination {
            format: config::LogFormat::Text,
            dir: None,
            keep: 1,
        },
        None,
    );
    exit(
        runtime().and_then(|rt| rt.block_on(demo::run(seconds, dir, (!no_model).then_some(model)))),
    )
}
