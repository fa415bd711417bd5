//! `igmod label` and `igmod labels export`: operators' labels written to and read from the database.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{operator, with_database};
use crate::config;

pub fn label_comment(
    path: &std::path::Path,
    comment_id: String,
    label: &str,
    by: Option<String>,
) -> ExitCode {
    let Some(label) = crate::store::Label::parse(label) else {
        return ExitCode::FAILURE;
    };
    let who = by.or_else(operator);
    with_database(path, config::Secrets::NotNeeded, |_, store| async move {
        if !store
            .add_label(
                &comment_id,
                label,
                crate::store::LabelSource::Label,
                who.as_deref(),
            )
            .await?
        {
            anyhow::bail!(
                "no comment {comment_id} in the database: igmod labels only comments it has seen"
            );
        }
        println!("{comment_id}: labeled {}", label.as_str());
        Ok(())
    })
}

pub fn labels_export(path: &std::path::Path, output: PathBuf) -> ExitCode {
    with_database(path, config::Secrets::NotNeeded, |_, store| async move {
        let labels = store.latest_labels().await?;
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "text",
            "label",
            "comment_id",
            "account",
            "username",
            "source",
            "who",
            "labeled_at",
        ])?;
        let (mut written, mut pruned) = (0, 0);
        for l in &labels {
            let Some(text) = &l.text else {
                pruned += 1;
                continue;
            };
            w.write_record([
                text.as_str(),
                if l.label == "scam" { "1" } else { "0" },
                &l.comment_id,
                &l.account,
                l.username.as_deref().unwrap_or(""),
                &l.source,
                l.who.as_deref().unwrap_or(""),
                &l.labeled_at,
            ])?;
            written += 1;
        }
        crate::outfile::write_private(&output, &w.into_inner()?)?;
        println!(
            "wrote {written} labeled comments to {}{}",
            output.display(),
            if pruned > 0 {
                format!(" ({pruned} left out: their text was pruned by retain)")
            } else {
                String::new()
            }
        );
        Ok(())
    })
}
