//! `igmod check-config`: loads the config with its secrets and says what the daemon would run.

use std::process::ExitCode;

use super::{config_failed, runtime};
use crate::config;

pub fn check_config(path: &std::path::Path) -> ExitCode {
    let c = match config::load_with(path, config::Secrets::Check) {
        Ok(c) => c,
        Err(e) => return config_failed(&e),
    };
    println!("{}: ok", path.display());
    println!(
        "database: {}{}",
        c.daemon.database,
        if c.daemon.dry_run {
            " (dry run: nothing will be hidden or deleted)"
        } else {
            ""
        }
    );
    if let Some(tls) = c.daemon.database.tls() {
        println!("  sslmode {tls}");
        if let Some(warning) = tls.warning() {
            println!("warning: {warning}");
        }
    }
    match runtime().map(|rt| rt.block_on(crate::store::Store::migration_status(&c.daemon.database)))
    {
        Ok(Ok(crate::store::MigrationStatus::Missing)) => {
            println!("  not created yet (the first start creates it)")
        }
        Ok(Ok(crate::store::MigrationStatus::Exists {
            applied,
            pending,
            unknown,
        })) => {
            if pending.is_empty() {
                println!("  up to date ({applied} migrations applied)");
            } else {
                println!(
                    "  {} migration(s) pending, run at the next start: {}",
                    pending.len(),
                    pending.join(", ")
                );
            }
            if unknown > 0 {
                println!(
                    "warning: the database holds {unknown} migration(s) this igmod does not know (a newer version wrote it): `igmod run` will refuse it; run that version"
                );
            }
        }
        // The daemon could not start without its PostgreSQL server: that is an error here.
        Ok(Err(e)) if c.daemon.database.is_postgres() => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        Ok(Err(e)) => println!("  cannot read it from here ({e})"),
        Err(e) => println!("  cannot look ({e})"),
    }
    println!(
        "graph: api {} timeout {:?}",
        c.graph.api_version, c.graph.timeout
    );
    match &c.app {
        Some(app) => println!(
            "app: {} (secret from {})",
            app.app_id,
            app.secret.describe()
        ),
        None => println!("app: none"),
    }
    match &c.webhook {
        Some(w) => println!(
            "webhook: http://{}{} (verify token from {}; HTTPS goes in front)",
            w.listen,
            w.path,
            w.verify_token.describe()
        ),
        None => println!("webhook: none (polling only)"),
    }
    println!("rules: {}", c.rules.names().collect::<Vec<_>>().join(", "));
    for (path, model) in c.rules.models() {
        let cv = model.cv();
        println!(
            "model {path}: sha256 {}, trained on {} rows; {}-fold cross-validation at score >= {}: precision {:.3}, recall {:.3}, F1 {:.3}",
            &model.checksum()[..16.min(model.checksum().len())],
            model.training().rows,
            cv.folds,
            cv.threshold,
            cv.precision.mean,
            cv.recall.mean,
            cv.f1.mean
        );
    }
    println!("accounts:");
    for a in &c.accounts {
        let schedule = match &a.schedule {
            config::Schedule::Every(d) => format!("every {}", humantime::format_duration(*d)),
            config::Schedule::Cron(e) => format!("cron \"{e}\""),
        };
        println!(
            "  {} (ig user {}, {:?} login, token from {}): {}, budget {} calls/hour, {} newest posts, backfill {}, rules: {}",
            a.name,
            a.ig_user_id,
            a.login,
            a.token.describe(),
            schedule,
            a.hourly_budget,
            a.recent_media,
            if a.backfill { "on" } else { "off" },
            a.rule_names.join(", ")
        );
    }
    for note in c.notes() {
        println!("note: {note}");
    }
    // Variables this shell lacks but the service's environment file gives (systemd loads it for
    // the daemon; `igmod run` from a shell needs them exported).
    if !c.from_env_file.is_empty() {
        println!(
            "from {} (the service's environment file): {}",
            crate::secrets::service_env_file(path).display(),
            c.from_env_file.join(", ")
        );
    }
    for warning in crate::tokens::exposed_files(&c) {
        println!("warning: {warning}");
    }
    ExitCode::SUCCESS
}
