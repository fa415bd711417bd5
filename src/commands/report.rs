//! `igmod report`: the HTML report of [`crate::report`] written to a private file.

use std::path::PathBuf;
use std::process::ExitCode;

use super::with_database;
use crate::config;

pub fn report(path: &std::path::Path, since: std::time::Duration, output: PathBuf) -> ExitCode {
    with_database(path, config::Secrets::NotNeeded, |c, store| async move {
        let now = chrono::Utc::now();
        let started = std::time::Instant::now();
        let html = crate::report::render(&c, &store, crate::timefmt::ago(now, since), now).await?;
        crate::outfile::write_private(&output, html.as_bytes())?;
        println!(
            "report written to {} ({} KB, {} ms)",
            output.display(),
            html.len() / 1024,
            started.elapsed().as_millis()
        );
        Ok(())
    })
}
