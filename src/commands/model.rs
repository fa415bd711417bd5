//! `igmod model info|train`: a model file described, or trained from labeled CSV (and operators' labels).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::{exit, open_existing, read_labeled, runtime};
use crate::cli::*;
use crate::config;
use crate::{EX_CONFIG, evaluate};

pub fn model_command(command: ModelCommand) -> ExitCode {
    use crate::training;
    match command {
        ModelCommand::Info { path } => match training::load_model(&path) {
            Ok(model) => {
                print!("{}", training::describe(&model));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("igmod: {e}");
                ExitCode::from(EX_CONFIG as u8)
            }
        },
        ModelCommand::Train {
            data,
            output,
            text_column,
            label_column,
            cv,
            seed,
            l2,
            also,
            labels_from_db,
            config,
            held_out,
            block_weights,
            hash_bits,
            chars,
            handles,
            no_word_pairs,
        } => exit((|| {
            let started = std::time::Instant::now();
            let read = |path: &PathBuf,
                        source: training::Source|
             -> anyhow::Result<Vec<training::Example>> {
                Ok(read_labeled(path, &text_column, &label_column)?
                    .iter()
                    .map(|r| r.example(source))
                    .collect())
            };
            let mut examples: Vec<training::Example> =
                evaluate::read_labeled_paths(&data, &text_column, &label_column)?
                    .iter()
                    .map(|r| r.example(training::Source::Data))
                    .collect();
            for path in &also {
                examples.extend(read(path, training::Source::Extra)?);
            }
            if labels_from_db {
                let c = config::load_with(&config, config::Secrets::NotNeeded)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let labels = runtime()?.block_on(async {
                    let store = open_existing(&c).await?;
                    let labels = store.latest_labels().await;
                    store.close().await;
                    anyhow::Ok(labels?)
                })?;
                let pruned = labels.iter().filter(|l| l.text.is_none()).count();
                let (relabeled, added) = training::merge_labels(
                    &mut examples,
                    labels
                        .into_iter()
                        .filter_map(|l| Some((l.text?, l.label == "scam"))),
                );
                println!(
                    "operators' labels: {added} rows added, {relabeled} rows relabeled{}",
                    if pruned > 0 {
                        format!(", {pruned} skipped (their text was pruned by retain)")
                    } else {
                        String::new()
                    }
                );
            }
            let mut options = training::Options {
                c: l2,
                folds: cv,
                seed,
                ..training::Options::default()
            };
            if let Some(w) = block_weights {
                for (slot, v) in options.settings.weights.iter_mut().zip(w) {
                    *slot = v;
                }
            }
            if let Some(bits) = hash_bits {
                options.settings.hash_bits = bits;
            }
            if let Some(c) = chars {
                options.settings.char_min = c.first().copied().unwrap_or(3);
                options.settings.char_max = c.get(1).copied().unwrap_or(3);
            }
            if let Some(h) = handles {
                options.settings.handle_min = h.first().copied().unwrap_or(2);
                options.settings.handle_max = h.get(1).copied().unwrap_or(5);
            }
            if no_word_pairs {
                options.settings.word_pairs = false;
            }
            let trained = training::train(&examples, &options)?;
            let labels: Vec<bool> = examples.iter().map(|e| e.label).collect();
            print!("{}", training::summary(&trained, &labels));
            if let Some(path) = held_out {
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record(["text", "label", "score", "fold"])?;
                for (i, e) in examples.iter().enumerate() {
                    w.write_record([
                        e.text.as_str(),
                        if e.label { "1" } else { "0" },
                        &format!("{:.4}", trained.held_out[i]),
                        &(trained.fold_of[i] + 1).to_string(),
                    ])?;
                }
                crate::outfile::write_private(&path, &w.into_inner()?)?;
            }
            let bytes = trained.parts.to_bytes();
            training::write_model(&output, &bytes)
                .with_context(|| format!("cannot write {}", output.display()))?;
            println!(
                "wrote {} ({} bytes, sha256 {}) in {:.1} s",
                output.display(),
                bytes.len(),
                training::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        })()),
    }
}
