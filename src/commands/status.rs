//! `igmod status` and `igmod audit`: the tables and JSON of [`crate::status`], printed, with
//! the exit codes monitoring reads.

use std::process::ExitCode;

use super::{with_database, with_database_code};
use crate::config;

/// Prints every account's status. Exit code (Nagios convention, for monitoring): 0 all ok,
/// 1 a token ends within 3 days, 2 an account is stalled or stopped; 78 bad config, 1 also
/// for an unreadable database.
pub fn status(path: &std::path::Path, json: bool) -> ExitCode {
    with_database_code(path, config::Secrets::NotNeeded, |c, store| async move {
        let rows = crate::status::status(&c, &store).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            // One instance per SQLite file: the instances matter only on a shared database.
            if store.is_shared() {
                let live = crate::status::instances(&store, c.daemon.lease_ttl).await?;
                print!("{}", crate::status::instances_table(&live, &rows));
            }
            print!("{}", crate::status::status_table(&rows));
        }
        let worst = rows.iter().map(|r| r.health.exit_code()).max().unwrap_or(0);
        Ok(ExitCode::from(worst))
    })
}

/// Prints the actions and decisions the filter selects (`since` back from now).
pub fn audit(
    path: &std::path::Path,
    account: Option<String>,
    since: std::time::Duration,
    action: Option<String>,
    rule: Option<String>,
    limit: i64,
    json: bool,
) -> ExitCode {
    let filter = crate::store::AuditFilter {
        account,
        since: Some(crate::timefmt::ago(chrono::Utc::now(), since)),
        action,
        rule,
        limit,
    };
    with_database(path, config::Secrets::NotNeeded, |_, store| async move {
        let rows = crate::status::audit(&store, &filter).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            print!("{}", crate::status::audit_table(&rows));
        }
        Ok(())
    })
}
