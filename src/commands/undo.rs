//! `igmod undo`: unhides what igmod hid ([`crate::undo`]), one line per comment.

use std::process::ExitCode;

use super::{operator, with_database};
use crate::config;

pub fn undo(
    path: &std::path::Path,
    comment_id: Option<String>,
    rule: Option<String>,
    since: std::time::Duration,
) -> ExitCode {
    let since = rule
        .as_ref()
        .map(|_| crate::timefmt::ago(chrono::Utc::now(), since));
    with_database(path, config::Secrets::Required, |c, store| async move {
        let who = operator();
        let report = crate::undo::undo(
            &c,
            &store,
            comment_id.as_deref(),
            rule.as_deref(),
            since,
            who.as_deref(),
        )
        .await?;
        for line in &report.lines {
            println!("{line}");
        }
        if report.failed > 0 {
            anyhow::bail!("{} unhide(s) failed", report.failed);
        }
        Ok(())
    })
}
