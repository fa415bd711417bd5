//! A candidate model trained with the reviewers' labels, on demand: the running model's
//! settings and L2 strength, `[review] training_data` plus every label in the database, then
//! `igmod rules replay --model` over the stored comments. Only figures come out: the candidate
//! is never written nor switched on (that stays a person's command).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;
use crate::rules::Model;
use crate::store::Store;
use crate::training;

/// How far back the candidate's replay looks (as `rules replay` by default).
pub const REPLAY_SINCE: Duration = Duration::from_secs(7 * 86_400);
/// Lines of the replay's report kept for the page.
const REPORT_LINES: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum CandidateError {
    #[error("cannot read training data {path}: {message}")]
    Data { path: PathBuf, message: String },
    #[error(transparent)]
    Train(#[from] training::TrainError),
    #[error("cannot read the model trained: {0}")]
    Model(#[from] crate::rules::classifier::format::FormatError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("training stopped: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The last candidate, as the model page shows it.
#[derive(Debug, Clone, Default)]
pub enum State {
    #[default]
    None,
    Training,
    Done(String),
    Failed(String),
}

/// One candidate at a time.
#[derive(Debug, Default)]
pub struct Candidates(Mutex<State>);

impl Candidates {
    pub fn state(&self) -> State {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Starts training unless one is under way; whether it started.
    pub fn start(
        self: &Arc<Self>,
        config: Arc<Config>,
        store: Store,
        data: Vec<PathBuf>,
        base: Arc<Model>,
    ) -> bool {
        {
            let Ok(mut s) = self.0.lock() else {
                return false;
            };
            if matches!(*s, State::Training) {
                return false;
            }
            *s = State::Training;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let outcome = run(&config, &store, data, &base).await;
            let state = match outcome {
                Ok(figures) => State::Done(figures),
                Err(e) => {
                    tracing::warn!(message = "review: the candidate model failed", error = %e);
                    State::Failed(e.to_string())
                }
            };
            if let Ok(mut s) = me.0.lock() {
                *s = state;
            }
        });
        true
    }
}

/// Trains the candidate (on a blocking thread: it takes seconds of CPU) and replays with it.
async fn run(
    config: &Config,
    store: &Store,
    data: Vec<PathBuf>,
    base: &Model,
) -> Result<String, CandidateError> {
    let labels = store.latest_labels().await?;
    let settings = *base.settings();
    let c = base.training().c;
    let started = std::time::Instant::now();
    let (summary, model) = tokio::task::spawn_blocking(move || {
        let mut examples = Vec::new();
        for path in &data {
            let rows = std::fs::File::open(path)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    crate::evaluate::labeled_rows(f, "text", "label").map_err(|e| e.to_string())
                })
                .map_err(|message| CandidateError::Data {
                    path: path.clone(),
                    message,
                })?;
            examples.extend(rows.iter().map(|r| r.example(training::Source::Data)));
        }
        let (relabeled, added) = training::merge_labels(
            &mut examples,
            labels
                .into_iter()
                .filter_map(|l| Some((l.text?, l.label == "scam"))),
        );
        let options = training::Options {
            settings,
            c,
            ..training::Options::default()
        };
        let trained = training::train(&examples, &options)?;
        let truth: Vec<bool> = examples.iter().map(|e| e.label).collect();
        let summary = format!(
            "labels: {added} rows added, {relabeled} rows relabeled\n{}",
            training::summary(&trained, &truth)
        );
        let model = Model::from_bytes(&trained.parts.to_bytes())?;
        Ok::<_, CandidateError>((summary, Arc::new(model)))
    })
    .await??;
    let since = crate::timefmt::ago(chrono::Utc::now(), REPLAY_SINCE);
    let report = crate::evaluate::replay(&config.with_model(&model), store, since).await?;
    let mut replay: Vec<String> = report.to_string().lines().map(str::to_string).collect();
    if replay.len() > REPORT_LINES {
        let more = replay.len() - REPORT_LINES;
        replay.truncate(REPORT_LINES);
        replay.push(format!(
            "  … and {more} more lines (igmod rules replay --model shows all)"
        ));
    }
    Ok(format!(
        "{summary}\nreplay of the last 7 days with the candidate:\n{}\ntrained and replayed in {:.1} s",
        replay.join("\n"),
        started.elapsed().as_secs_f64()
    ))
}
