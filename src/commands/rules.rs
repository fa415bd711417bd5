//! `igmod rules test|eval|replay`: a rule set tried on one comment, on labeled rows, or on stored comments.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::{config_failed, exit, read_labeled, runtime};
use crate::cli::*;
use crate::config;
use crate::rules::CommentView;
use crate::{EX_CONFIG, evaluate};

pub fn rules_command(command: RulesCommand) -> ExitCode {
    let (path, select) = match &command {
        RulesCommand::Test { config, select, .. } | RulesCommand::Eval { config, select, .. } => {
            (config.config.clone(), Some(select))
        }
        RulesCommand::Replay { config, .. } => (config.config.clone(), None),
    };
    let c = match config::load_with(&path, config::Secrets::NotNeeded) {
        Ok(c) => c,
        Err(e) => return config_failed(&e),
    };
    let selection = match select
        .map(|s| evaluate::Selection::of(&c, s.account.as_deref(), s.all_rules))
        .transpose()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("igmod: {e} in {}", path.display());
            return ExitCode::from(EX_CONFIG as u8);
        }
    };
    match (command, selection) {
        (
            RulesCommand::Test {
                username,
                reply,
                text,
                ..
            },
            Some(selection),
        ) => {
            // The account's username (for impersonation) is read from the database if there is one.
            let account_username = selection
                .account
                .as_ref()
                .filter(|_| c.daemon.database.exists())
                .and_then(|name| {
                    runtime().ok()?.block_on(async {
                        let store = crate::store::Store::connect(&c.daemon.database)
                            .await
                            .ok()?;
                        let state = store.account_state(name).await.ok();
                        store.close().await;
                        state?.username
                    })
                });
            let view = CommentView {
                is_reply: reply,
                account_username: account_username.as_deref(),
                ..CommentView::new(&text, username.as_deref())
            };
            println!("{}", selection.heading);
            print!("{}", evaluate::explain(&selection.rules, &view));
            ExitCode::SUCCESS
        }
        (
            RulesCommand::Eval {
                text_column,
                label_column,
                sweep,
                cv,
                seed,
                also,
                mistakes,
                file,
                ..
            },
            Some(selection),
        ) => exit((|| {
            let read = |path: &PathBuf| read_labeled(path, &text_column, &label_column);
            let rows = evaluate::read_labeled_paths(&file, &text_column, &label_column)?;
            let mut extra = Vec::new();
            for path in &also {
                extra.extend(read(path)?);
            }
            println!("{}", selection.heading);
            let (report, held_out) = match cv {
                Some(k) => {
                    let cv = evaluate::cross_validate(&selection.rules, &rows, &extra, k, seed)?;
                    print!("{cv}");
                    (cv.pooled, Some(cv.held_out))
                }
                None => {
                    let report = evaluate::eval_rows(&selection.rules, &rows);
                    print!("{report}");
                    (report, None)
                }
            };
            if let Some(path) = mistakes {
                // Written after the inputs were read, so a slip of the argument would replace
                // a labeled file with its mistakes: refused.
                let inputs = file.iter().chain(&also);
                if let Ok(target) = std::fs::canonicalize(&path)
                    && inputs
                        .filter_map(|p| std::fs::canonicalize(p).ok())
                        .any(|p| target.starts_with(&p))
                {
                    anyhow::bail!(
                        "--mistakes {} is one of the labeled files read: choose another path",
                        path.display()
                    );
                }
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record(evaluate::Mistake::HEADER)?;
                for m in &report.mistakes {
                    w.write_record(m.record())?;
                }
                crate::outfile::write_private(&path, &w.into_inner()?)?;
                eprintln!(
                    "{} rows the rules got wrong written to {}",
                    report.mistakes.len(),
                    path.display()
                );
            }
            if sweep {
                // Under --cv, each row's score by the model that did not train on it: the
                // shipped model's own scores of its training rows would flatter it.
                match &held_out {
                    Some(scores) => print!(
                        "{}",
                        evaluate::sweep_scores(scores, &rows, " (held out, --cv)")
                    ),
                    None => print!("{}", evaluate::sweep(&selection.rules, &rows)),
                }
            }
            Ok(())
        })()),
        (RulesCommand::Replay { since, model, .. }, _) => exit((|| {
            let c = match model {
                Some(path) => {
                    let model = crate::training::load_shared(&path)?;
                    c.with_model(&model)
                }
                None => c,
            };
            runtime()?.block_on(async {
                let store = crate::store::Store::connect(&c.daemon.database)
                    .await
                    .with_context(|| format!("cannot open {}", c.daemon.database))?;
                let from = crate::timefmt::ago(chrono::Utc::now(), since);
                let report = evaluate::replay(&c, &store, from).await?;
                store.close().await;
                print!("{report}");
                Ok(())
            })
        })()),
        (_, None) => ExitCode::FAILURE,
    }
}
