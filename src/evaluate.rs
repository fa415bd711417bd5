//! Offline evaluation of rules: `rules test` (explain one text), `rules eval` (precision and
//! recall on a labeled CSV), `rules replay` (today's rules over stored comments).
//!
//! Whole on purpose: test, eval, sweep, CV and replay share one row reader and one tally.

use std::fmt::{self, Write as _};
use std::io::Read;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::rules::{CommentView, Match, RuleSet, pick};
use crate::store::{Store, StoreError};
use crate::training::{Counts, SWEEP};

/// The rules `rules test` and `rules eval` run, and the line that says which.
pub struct Selection {
    pub rules: RuleSet,
    /// The account whose rules these are, if any.
    pub account: Option<String>,
    pub heading: String,
}

impl Selection {
    /// `account`'s rules; without one, the first account's (what the daemon runs for it);
    /// with `all`, every rule loaded.
    pub fn of(config: &Config, account: Option<&str>, all: bool) -> Result<Selection, String> {
        if all {
            return Ok(Selection {
                heading: format!(
                    "rules: every rule loaded ({}), as with --all-rules",
                    config.rules.len()
                ),
                rules: config.rules.clone(),
                account: None,
            });
        }
        let first = account.is_none();
        let a = match account {
            Some(name) => config.accounts.iter().find(|a| a.name == name),
            None => config.accounts.first(),
        }
        .ok_or_else(|| match account {
            Some(name) => format!("no account named {name:?}"),
            None => "no account configured".to_string(),
        })?;
        let heading = if first {
            format!(
                "rules: account {:?}'s ({} rules; the first account: --account NAME for another, --all-rules for every rule loaded)",
                a.name,
                a.rules.len()
            )
        } else {
            format!("rules: account {:?}'s ({} rules)", a.name, a.rules.len())
        };
        Ok(Selection {
            rules: RuleSet::clone(&a.rules),
            account: Some(a.name.clone()),
            heading,
        })
    }
}

/// Explains every rule that matches a text, with the matched spans, and the decision; the
/// text's detected language; for each model the rules use, its score and the features that
/// pushed it most, both ways.
pub fn explain(rules: &RuleSet, view: &CommentView<'_>) -> String {
    let matches = rules.matches(view);
    let mut out = String::new();
    // What `languages`/`not_languages` see, and what the daemon stores with a decision.
    let _ = writeln!(out, "language: {}", crate::rules::lang::detect(view.text));
    for (path, model) in rules.models() {
        let e = model.explain(view.text, 5);
        let _ = writeln!(out, "classifier {path}: score {:.3}", e.score);
        let show = |pushes: &[(String, f64)]| {
            pushes
                .iter()
                .map(|(name, push)| format!("{name} {push:+.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !e.towards_scam.is_empty() {
            let _ = writeln!(out, "  towards scam: {}", show(&e.towards_scam));
        }
        if !e.towards_ok.is_empty() {
            let _ = writeln!(out, "  towards ok:   {}", show(&e.towards_ok));
        }
    }
    if matches.is_empty() {
        out.push_str("no rule matches: igmod leaves this comment alone\n");
        return out;
    }
    for m in &matches {
        let dry = if m.dry_run { ", dry run" } else { "" };
        let _ = writeln!(
            out,
            "matched rule {:?} ({}{dry})",
            m.rule,
            m.action.as_str()
        );
        for e in &m.evidence {
            match e
                .span
                .clone()
                .and_then(|r| view.text.get(r.clone()).map(|t| (r, t)))
            {
                Some((r, t)) => {
                    let _ = writeln!(out, "  - {}: {t:?} at {}..{}", e.detail, r.start, r.end);
                }
                None => {
                    let _ = writeln!(out, "  - {}", e.detail);
                }
            }
        }
        if let Some(reply) = &m.reply {
            let _ = writeln!(out, "  reply: {reply:?}");
        }
    }
    if let Some(win) = pick(matches) {
        let _ = writeln!(
            out,
            "decision: {} (rule {:?})",
            win.action.as_str(),
            win.rule
        );
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The file's name before what went wrong in it (the inner error is part of the message,
    /// not a `source`, so a chain printed whole does not say it twice).
    #[error("{path}: {inner}")]
    InFile { path: String, inner: Box<EvalError> },
    #[error("csv has no column {0:?} (columns: {1})")]
    MissingColumn(String, String),
    #[error("csv line {line}: label {label:?} is not 0 or 1")]
    BadLabel { line: u64, label: String },
    #[error("csv line {line}: weight {weight:?} is not a number from 0.01 to 100")]
    BadWeight { line: u64, weight: String },
}

/// Per-rule counts: how often it matched, on rows labeled 1 and labeled 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleHits {
    pub rule: String,
    pub hits: u64,
    pub true_positives: u64,
    pub false_positives: u64,
}

/// The outcome of `rules eval`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalReport {
    pub rows: u64,
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tn: u64,
    pub rules: Vec<RuleHits>,
    /// Per value of the rows' `source` and `lang` columns (empty when no row has one).
    pub groups: Vec<Group>,
    /// The rows the rules got wrong, in the order read (`rules eval --mistakes`).
    pub mistakes: Vec<Mistake>,
}

/// A row the rules got wrong: labeled 1 and left alone, or labeled 0 and moderated. What an
/// operator reads to see which rule to narrow or which comments the model misses.
#[derive(Debug, Clone, PartialEq)]
pub struct Mistake {
    /// Its place among the rows judged (0-based, in the order read).
    pub index: usize,
    pub row: LabeledRow,
    /// The rule that decided, and its action (`None`: no rule matched).
    pub decided: Option<(String, crate::rules::Action)>,
    /// The score of the first model the rules use (under `--cv`, the model that never saw
    /// the row); `None` when they use none.
    pub score: Option<f32>,
}

impl Mistake {
    /// The CSV header [`Mistake::record`] fills.
    pub const HEADER: [&'static str; 8] = [
        "source", "lang", "label", "action", "rule", "score", "username", "text",
    ];

    /// One CSV record (the score to 3 decimals). The file is meant to be read, often in a
    /// spreadsheet, and its texts and usernames are commenters': a cell that would start a
    /// formula there (`=`, `+`, `-`, `@`, a tab or a carriage return) is written after a `'`.
    pub fn record(&self) -> [String; 8] {
        let (rule, action) = self
            .decided
            .as_ref()
            .map_or((String::new(), String::new()), |(r, a)| {
                (r.clone(), a.as_str().to_string())
            });
        [
            inert(self.row.source.as_deref().unwrap_or_default()),
            inert(self.row.lang.as_deref().unwrap_or_default()),
            if self.row.label { "1" } else { "0" }.to_string(),
            action,
            rule,
            self.score.map(|s| format!("{s:.3}")).unwrap_or_default(),
            inert(self.row.username.as_deref().unwrap_or_default()),
            inert(&self.row.text),
        ]
    }
}

/// `s`, after a `'` if a spreadsheet would read it as a formula (OWASP's advice for CSV
/// files that people open).
fn inert(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// The counts of the rows that share a value of a grouping column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// `source` or `lang`.
    pub column: &'static str,
    /// The value (`(none)` for rows without one).
    pub value: String,
    pub counts: Counts,
    /// Rows labeled 0 that a rule hid or deleted (flagged ones stay up).
    pub honest_removed: u64,
    /// Rows labeled 1 that a rule hid or deleted: the catches that are not left up for a
    /// person (a flag counts as caught in the recall, but the comment stays up until then).
    pub scams_removed: u64,
}

/// What the rules did to one row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Outcome {
    /// Hidden, deleted or flagged.
    moderated: bool,
    /// Hidden or deleted: gone from the comment section.
    removed: bool,
}

/// The [`Group`]s of rows judged as `outcomes`: one per value of each grouping column that
/// some row has, in order of value.
fn groups<'r>(judged: impl Iterator<Item = (&'r LabeledRow, Outcome)> + Clone) -> Vec<Group> {
    let mut out = Vec::new();
    type Column = (&'static str, fn(&LabeledRow) -> Option<&str>);
    let columns: [Column; 2] = [
        ("source", |r| r.source.as_deref()),
        ("lang", |r| r.lang.as_deref()),
    ];
    for (column, get) in columns {
        let mut by: std::collections::BTreeMap<String, Group> = std::collections::BTreeMap::new();
        let mut any = false;
        for (row, o) in judged.clone() {
            any |= get(row).is_some();
            let value = get(row).unwrap_or("(none)").to_string();
            let g = by.entry(value.clone()).or_insert_with(|| Group {
                column,
                value,
                ..Group::default()
            });
            g.counts.add(row.label, o.moderated);
            match (row.label, o.removed) {
                (false, true) => g.honest_removed += 1,
                (true, true) => g.scams_removed += 1,
                _ => {}
            }
        }
        if any {
            out.extend(by.into_values());
        }
    }
    out
}

/// The group tables: per column, precision, recall and the honest rows moderated and removed.
fn show_groups(f: &mut impl fmt::Write, groups: &[Group]) -> fmt::Result {
    let mut column = "";
    let width = groups
        .iter()
        .map(|g| g.value.len())
        .max()
        .unwrap_or(5)
        .max(5);
    for g in groups {
        if g.column != column {
            column = g.column;
            writeln!(f, "by {column}:")?;
            writeln!(
                f,
                "  {:<width$}  {:>5}  {:>6}  {:>9}  {:>6}  {:>9}  {:>6}  {:>14}",
                column, "rows", "scams", "precision", "recall", "TP/gone", "FN", "honest FP/gone"
            )?;
        }
        let c = &g.counts;
        writeln!(
            f,
            "  {:<width$}  {:>5}  {:>6}  {:>9.3}  {:>6.3}  {:>9}  {:>6}  {:>14}",
            g.value,
            c.tp + c.fp + c.fn_ + c.tn,
            c.tp + c.fn_,
            c.precision(),
            c.recall(),
            format!("{}/{}", c.tp, g.scams_removed),
            c.fn_,
            format!("{}/{}", c.fp, g.honest_removed)
        )?;
    }
    if !groups.is_empty() {
        writeln!(
            f,
            "  (TP/gone, honest FP/gone: rows labeled 1, 0 moderated / of them hidden or deleted; a flag leaves the comment up for a person)"
        )?;
    }
    Ok(())
}

impl EvalReport {
    fn counts(&self) -> crate::training::Counts {
        crate::training::Counts {
            tp: self.tp,
            fp: self.fp,
            fn_: self.fn_,
            tn: self.tn,
        }
    }

    pub fn precision(&self) -> f64 {
        self.counts().precision()
    }

    pub fn recall(&self) -> f64 {
        self.counts().recall()
    }

    pub fn f1(&self) -> f64 {
        self.counts().f1()
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rows: {} ({} labeled 1, {} labeled 0)",
            self.rows,
            self.tp + self.fn_,
            self.fp + self.tn
        )?;
        let width = self
            .rules
            .iter()
            .map(|r| r.rule.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "{:<width$}  {:>6}  {:>6}  {:>6}",
            "rule", "hits", "TP", "FP"
        )?;
        for r in &self.rules {
            writeln!(
                f,
                "{:<width$}  {:>6}  {:>6}  {:>6}",
                r.rule, r.hits, r.true_positives, r.false_positives
            )?;
        }
        writeln!(f, "confusion matrix (moderated = hide, delete or flag):")?;
        writeln!(f, "              moderated  left alone")?;
        writeln!(f, "  labeled 1  {:>9}  {:>10}", self.tp, self.fn_)?;
        writeln!(f, "  labeled 0  {:>9}  {:>10}", self.fp, self.tn)?;
        writeln!(f, "precision {:.3}", self.precision())?;
        writeln!(f, "recall {:.3}", self.recall())?;
        writeln!(f, "F1 {:.3}", self.f1())?;
        show_groups(f, &self.groups)
    }
}

/// One row of a labeled CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledRow {
    pub text: String,
    /// `1`: should be moderated (scam, spam, abuse); `0`: leave alone.
    pub label: bool,
    /// From a `username` column, when the file has one.
    pub username: Option<String>,
    /// From a `lang` column, when the file has one: results are also given per language.
    pub lang: Option<String>,
    /// From a `source` column, else the file (or folder) the row was read from: results are
    /// also given per source.
    pub source: Option<String>,
    /// From a `weight` column, else 1: how much the row counts when a model is trained on
    /// it (`model train`, `rules eval --cv`); every row counts once in the figures.
    pub weight: f64,
}

impl LabeledRow {
    /// The row as a training example.
    pub fn example(&self, source: crate::training::Source) -> crate::training::Example {
        crate::training::Example::new(self.text.clone(), self.label, source).weighted(self.weight)
    }
}

/// Reads labeled CSVs: each path a file, or a folder whose `*.csv` files are read in order
/// of name. A row without a `source` column is given its file's path, or its folder's.
pub fn read_labeled_paths(
    paths: &[std::path::PathBuf],
    text_column: &str,
    label_column: &str,
) -> Result<Vec<LabeledRow>, EvalError> {
    let io = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| EvalError::Io { path, source }
    };
    let mut rows = Vec::new();
    for path in paths {
        let files = if path.is_dir() {
            let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(path)
                .map_err(io(path))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "csv"))
                .collect();
            files.sort();
            files
        } else {
            vec![path.clone()]
        };
        let shown = path.display().to_string();
        for file in files {
            let input = std::fs::File::open(&file).map_err(io(&file))?;
            let read =
                labeled_rows(input, text_column, label_column).map_err(|e| EvalError::InFile {
                    path: file.display().to_string(),
                    inner: Box::new(e),
                })?;
            rows.extend(read.into_iter().map(|mut r| {
                r.source.get_or_insert_with(|| shown.clone());
                r
            }));
        }
    }
    Ok(rows)
}

/// Reads a labeled CSV (RFC 4180, UTF-8, header row): the text and label columns, and
/// `username`, `lang` and `source` columns if there are. A label other than 0 or 1 names its line.
pub fn labeled_rows(
    input: impl Read,
    text_column: &str,
    label_column: &str,
) -> Result<Vec<LabeledRow>, EvalError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let headers = reader.headers()?.clone();
    let find = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                EvalError::MissingColumn(
                    name.to_string(),
                    headers.iter().collect::<Vec<_>>().join(", "),
                )
            })
    };
    let (text_at, label_at) = (find(text_column)?, find(label_column)?);
    let optional = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (username_at, lang_at, source_at, weight_at) = (
        optional("username"),
        optional("lang"),
        optional("source"),
        optional("weight"),
    );
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        let line = record.position().map_or(0, |p| p.line());
        let label = match record.get(label_at).unwrap_or("").trim() {
            "1" => true,
            "0" => false,
            other => {
                return Err(EvalError::BadLabel {
                    line,
                    label: other.to_string(),
                });
            }
        };
        let get = |at: Option<usize>| {
            at.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
        };
        let weight = match get(weight_at) {
            None => 1.0,
            Some(w) => w
                .parse::<f64>()
                .ok()
                .filter(|w| (0.01..=100.0).contains(w))
                .ok_or(EvalError::BadWeight { line, weight: w })?,
        };
        rows.push(LabeledRow {
            text: record.get(text_at).unwrap_or("").to_string(),
            label,
            username: get(username_at),
            lang: get(lang_at),
            source: get(source_at),
            weight,
        });
    }
    Ok(rows)
}

/// Evaluates rules against a labeled CSV (RFC 4180, UTF-8, header row).
pub fn eval(
    rules: &RuleSet,
    input: impl Read,
    text_column: &str,
    label_column: &str,
) -> Result<EvalReport, EvalError> {
    let rows = labeled_rows(input, text_column, label_column)?;
    Ok(eval_rows(rules, &rows))
}

/// [`eval`] over rows already read.
pub fn eval_rows(rules: &RuleSet, rows: &[LabeledRow]) -> EvalReport {
    let (mut report, outcomes) = judge(rules, rows);
    report.groups = groups(rows.iter().zip(outcomes));
    report
}

/// The report (without groups) and what happened to each row.
fn judge(rules: &RuleSet, rows: &[LabeledRow]) -> (EvalReport, Vec<Outcome>) {
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut report = EvalReport {
        rules: rules
            .names()
            .map(|r| RuleHits {
                rule: r.to_string(),
                ..RuleHits::default()
            })
            .collect(),
        ..EvalReport::default()
    };
    // The model a mistake's score is read from (scored only for the rows got wrong).
    let model = rules.models().into_iter().next().map(|(_, m)| m);
    for (index, row) in rows.iter().enumerate() {
        let positive = row.label;
        let matches: Vec<Match> =
            rules.matches(&CommentView::new(&row.text, row.username.as_deref()));
        for m in &matches {
            if let Some(r) = report.rules.iter_mut().find(|r| r.rule == m.rule) {
                r.hits += 1;
                if positive {
                    r.true_positives += 1;
                } else {
                    r.false_positives += 1;
                }
            }
        }
        let decided = pick(matches).map(|m| (m.rule, m.action));
        let action = decided.as_ref().map(|(_, a)| *a);
        let moderated = action.is_some_and(|a| a.moderates());
        if positive != moderated {
            report.mistakes.push(Mistake {
                index,
                row: row.clone(),
                decided,
                score: model.as_ref().map(|m| m.score(&row.text)),
            });
        }
        outcomes.push(Outcome {
            moderated,
            removed: matches!(
                action,
                Some(crate::rules::Action::Hide | crate::rules::Action::Delete)
            ),
        });
        report.rows += 1;
        match (positive, moderated) {
            (true, true) => report.tp += 1,
            (false, true) => report.fp += 1,
            (true, false) => report.fn_ += 1,
            (false, false) => report.tn += 1,
        }
    }
    (report, outcomes)
}

/// For each model the rules use: counts at each of [`SWEEP`]'s thresholds of "score at least
/// the threshold" over labeled rows (the model alone, whatever the rules around it do).
/// These are the shipped model's own scores: on rows it was trained on they flatter it, which
/// is why `--cv` sweeps [`CvReport::held_out`] instead.
pub fn sweep(rules: &RuleSet, rows: &[LabeledRow]) -> String {
    let scored: Vec<ModelScores> = rules
        .models()
        .into_iter()
        .map(|(path, model)| ModelScores {
            scores: rows.iter().map(|r| model.score(&r.text)).collect(),
            path,
        })
        .collect();
    sweep_scores(&scored, rows, "")
}

/// The sweep's tables for scores already computed, one per row of `rows` for each model;
/// `what` qualifies the scores in the headings.
pub fn sweep_scores(models: &[ModelScores], rows: &[LabeledRow], what: &str) -> String {
    let mut out = String::new();
    for ModelScores { path, scores } in models {
        let table = |keep: &dyn Fn(&LabeledRow) -> bool| -> Vec<(f64, Counts)> {
            SWEEP
                .iter()
                .map(|&t| {
                    let mut c = Counts::default();
                    for (row, s) in rows.iter().zip(scores).filter(|(r, _)| keep(r)) {
                        c.add(row.label, f64::from(*s) >= t);
                    }
                    (t, c)
                })
                .collect()
        };
        let _ = writeln!(out, "classifier {path} alone{what}, by threshold:");
        out.push_str(&crate::training::sweep_table(&table(&|_| true)));
        let all = vec![Outcome::default(); rows.len()];
        for g in groups(rows.iter().zip(all)) {
            let _ = writeln!(
                out,
                "classifier {path} alone{what}, {} {}:",
                g.column, g.value
            );
            out.push_str(&crate::training::sweep_table(&table(&|r| in_group(r, &g))));
        }
    }
    if out.is_empty() {
        out.push_str("no rule uses a classifier: nothing to sweep\n");
    }
    out
}

/// One model's scores, one per labeled row (its own, or under `--cv` each fold model's).
#[derive(Debug, Clone)]
pub struct ModelScores {
    /// The model's path as the rules name it.
    pub path: String,
    pub scores: Vec<f32>,
}

/// Whether a row belongs to a group.
fn in_group(row: &LabeledRow, g: &Group) -> bool {
    let value = match g.column {
        "source" => row.source.as_deref(),
        _ => row.lang.as_deref(),
    };
    value.unwrap_or("(none)") == g.value
}

/// What cross-validating a set of rules measured: per fold and pooled.
#[derive(Debug, Clone)]
pub struct CvReport {
    pub folds: Vec<EvalReport>,
    pub pooled: EvalReport,
    /// Models retrained per fold (0: the rules have no classifier, and every fold is the
    /// same rules on other rows).
    pub models: usize,
    /// Each model's score of every row by the model retrained without that row's fold.
    pub held_out: Vec<ModelScores>,
    /// `--also` rows with the very text of a judged row: every fold trained on them, so the
    /// judged row's figure is flattered (said, not hidden).
    pub extra_repeats: usize,
}

impl fmt::Display for CvReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}-fold cross-validation: each fold's rows judged by the rules with {} retrained on the other folds' rows",
            self.folds.len(),
            if self.models == 0 {
                "no model".to_string()
            } else {
                format!("{} model(s)", self.models)
            }
        )?;
        for (k, r) in self.folds.iter().enumerate() {
            writeln!(
                f,
                "  fold {}: precision {:.3}  recall {:.3}  F1 {:.3}  (TP {} FP {} FN {})",
                k + 1,
                r.precision(),
                r.recall(),
                r.f1(),
                r.tp,
                r.fp,
                r.fn_
            )?;
        }
        let spread = |g: fn(&EvalReport) -> f64| {
            let v: Vec<f64> = self.folds.iter().map(g).collect();
            let n = v.len().max(1) as f64;
            let mean = v.iter().sum::<f64>() / n;
            let sd =
                (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
            format!("{mean:.3} ± {sd:.3}")
        };
        writeln!(
            f,
            "  mean: precision {}  recall {}  F1 {}",
            spread(EvalReport::precision),
            spread(EvalReport::recall),
            spread(EvalReport::f1)
        )?;
        if self.extra_repeats > 0 {
            writeln!(
                f,
                "  note: {} --also row(s) have the text of a judged row: every fold trained on them, which flatters those rows' figures",
                self.extra_repeats
            )?;
        }
        writeln!(f, "pooled over every fold:")?;
        write!(f, "{}", self.pooled)
    }
}

/// Cross-validates rules on labeled rows: the rows are split into folds (grouped by text,
/// stratified by label, by `seed`), and each fold is judged by the rules with every model
/// they use retrained, with its own settings, on the other folds' rows (and on `extra`, rows
/// that are never judged). What the rules would do on comments their models never saw.
pub fn cross_validate(
    rules: &RuleSet,
    rows: &[LabeledRow],
    extra: &[LabeledRow],
    folds: u32,
    seed: u64,
) -> Result<CvReport, crate::training::TrainError> {
    use crate::training::{self, Example};
    let examples: Vec<Example> = rows
        .iter()
        .map(|r| r.example(training::Source::Data))
        .collect();
    let fold_of = training::assign_folds(&examples, folds, seed)?;
    let judged_texts: std::collections::HashSet<&str> =
        rows.iter().map(|r| r.text.as_str()).collect();
    let extra_repeats = extra
        .iter()
        .filter(|r| judged_texts.contains(r.text.as_str()))
        .count();
    let models = rules.models();
    let mut reports = Vec::new();
    let mut judged: Vec<Outcome> = vec![Outcome::default(); rows.len()];
    let mut pooled_mistakes = Vec::new();
    let mut held_out: Vec<ModelScores> = models
        .iter()
        .map(|(path, _)| ModelScores {
            path: path.clone(),
            scores: vec![f32::NAN; rows.len()],
        })
        .collect();
    for k in 0..folds {
        let train: Vec<Example> = (0..rows.len())
            .filter(|&i| fold_of[i] != k)
            .map(|i| examples[i].clone())
            .chain(extra.iter().map(|r| r.example(training::Source::Extra)))
            .collect();
        let mut retrained = Vec::new();
        for (_, model) in &models {
            let options = training::Options {
                settings: *model.settings(),
                c: model.training().c,
                folds: model.cv().folds,
                seed,
                threshold: model.cv().threshold,
            };
            let parts = training::train(&train, &options)?.parts;
            let fresh = std::sync::Arc::new(crate::rules::Model::from_parts(
                &parts,
                format!("fold {} of {}", k + 1, model.checksum()),
            ));
            retrained.push((model.checksum().to_string(), fresh));
        }
        let fold_rules = rules.with_models(|m| {
            retrained
                .iter()
                .find(|(sum, _)| sum == m.checksum())
                .map_or_else(|| m.clone(), |(_, fresh)| fresh.clone())
        });
        let held_at: Vec<usize> = (0..rows.len()).filter(|&i| fold_of[i] == k).collect();
        let held: Vec<LabeledRow> = held_at.iter().map(|&i| rows[i].clone()).collect();
        for (scored, (_, fresh)) in held_out.iter_mut().zip(&retrained) {
            for &i in &held_at {
                if let (Some(slot), Some(row)) = (scored.scores.get_mut(i), rows.get(i)) {
                    *slot = fresh.score(&row.text);
                }
            }
        }
        let (report, outcomes) = judge(&fold_rules, &held);
        for (&i, o) in held_at.iter().zip(outcomes) {
            judged[i] = o;
        }
        // Each fold's mistakes, placed among all the rows.
        pooled_mistakes.extend(report.mistakes.iter().filter_map(|m| {
            let index = *held_at.get(m.index)?;
            Some(Mistake { index, ..m.clone() })
        }));
        reports.push(report);
    }
    let mut pooled = EvalReport {
        rules: reports.first().map(|r| r.rules.clone()).unwrap_or_default(),
        ..EvalReport::default()
    };
    for r in &reports {
        pooled.rows += r.rows;
        pooled.tp += r.tp;
        pooled.fp += r.fp;
        pooled.fn_ += r.fn_;
        pooled.tn += r.tn;
    }
    pooled_mistakes.sort_by_key(|m: &Mistake| m.index);
    pooled.mistakes = pooled_mistakes;
    for (i, hits) in pooled.rules.iter_mut().enumerate() {
        let sum = |g: fn(&RuleHits) -> u64| {
            reports
                .iter()
                .filter_map(|r| r.rules.get(i))
                .map(g)
                .sum::<u64>()
        };
        hits.hits = sum(|h| h.hits);
        hits.true_positives = sum(|h| h.true_positives);
        hits.false_positives = sum(|h| h.false_positives);
    }
    pooled.groups = groups(rows.iter().zip(judged));
    Ok(CvReport {
        folds: reports,
        pooled,
        models: models.len(),
        held_out,
        extra_repeats,
    })
}

/// One stored comment whose decision would change under today's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub comment_id: String,
    pub account: String,
    pub text: String,
    /// (rule, action) then and now.
    pub before: Option<(String, String)>,
    pub after: Option<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub comments: u64,
    pub unchanged: u64,
    pub changes: Vec<Change>,
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} stored comments replayed: {} unchanged, {} would change",
            self.comments,
            self.unchanged,
            self.changes.len()
        )?;
        let show = |d: &Option<(String, String)>| {
            d.as_ref()
                .map_or_else(|| "nothing".to_string(), |(r, a)| format!("{a} ({r})"))
        };
        for c in &self.changes {
            writeln!(
                f,
                "  [{}] {} {:?}: {} → {}",
                c.account,
                c.comment_id,
                truncate(&c.text, 60),
                show(&c.before),
                show(&c.after)
            )?;
        }
        Ok(())
    }
}

/// The first `n` characters, with an ellipsis when cut.
pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Runs each account's current rules over its comments first seen since `since` that were
/// evaluated when seen, and compares with what was decided then.
pub async fn replay(
    config: &Config,
    store: &Store,
    since: DateTime<Utc>,
) -> Result<ReplayReport, StoreError> {
    let mut report = ReplayReport::default();
    for account in &config.accounts {
        let username = store.account_state(&account.name).await?.username;
        for c in store.evaluated_comments_since(&account.name, since).await? {
            let text = c.text.as_deref().unwrap_or("");
            let at = c.at.timestamp();
            let history = match (account.rules.history_window(), &c.text_key) {
                (Some(window), Some(key)) => {
                    let from = crate::timefmt::ago(c.at, window);
                    let mut h = store.same_text_since(&account.name, key, from).await?;
                    h.retain(|s| s.at < at);
                    h
                }
                _ => Vec::new(),
            };
            let view = CommentView {
                text,
                username: c.username.as_deref(),
                is_reply: c.parent_id.is_some(),
                media_id: Some(&c.media_id),
                media_type: None,
                account_username: username.as_deref(),
                at,
                history: &history,
            };
            let now = account
                .rules
                .decide(&view)
                .map(|m| (m.rule, m.action.as_str().to_string()));
            let then = c.rule.clone().zip(c.action.clone());
            report.comments += 1;
            if now == then {
                report.unchanged += 1;
            } else {
                report.changes.push(Change {
                    comment_id: c.id.clone(),
                    account: account.name.clone(),
                    text: text.to_string(),
                    before: then,
                    after: now,
                });
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Action, ConditionSpec, RuleSpec};

    #[test]
    fn eval_counts_on_a_labeled_fixture() -> Result<(), EvalError> {
        let rules = RuleSet::compile(&[
            RuleSpec::new(
                "scam",
                Action::Delete,
                ConditionSpec {
                    words: vec!["forex".into()],
                    ..ConditionSpec::default()
                },
            ),
            RuleSpec::new(
                "rude",
                Action::Hide,
                ConditionSpec {
                    words: vec!["idiot".into()],
                    ..ConditionSpec::default()
                },
            ),
            RuleSpec::new(
                "fans",
                Action::Approve,
                ConditionSpec {
                    words: vec!["love".into()],
                    ..ConditionSpec::default()
                },
            ),
        ])
        .unwrap_or_default();
        let csv = "id,text,label\n\
                   1,FOREX pays,1\n\
                   2,\"you idiot, \"\"really\"\"\",1\n\
                   3,\"multi\nline forex\",1\n\
                   4,crypto signals,1\n\
                   5,I love forex,0\n\
                   6,forex is my job,0\n\
                   7,nice colour,0\n\
                   8,ünïcödé ok,0\n";
        let r = eval(&rules, csv.as_bytes(), "text", "label")?;
        // TP: rows 1, 2, 3. FN: 4. FP: 6 (row 5 is approved). TN: 5, 7, 8.
        assert_eq!((r.rows, r.tp, r.fn_, r.fp, r.tn), (8, 3, 1, 1, 3));
        assert_eq!(
            r.rules[0],
            RuleHits {
                rule: "scam".into(),
                hits: 4,
                true_positives: 2,
                false_positives: 2
            }
        );
        assert!((r.precision() - 0.75).abs() < 1e-9);
        assert!((r.recall() - 0.75).abs() < 1e-9);
        assert!((r.f1() - 0.75).abs() < 1e-9);
        let shown = r.to_string();
        assert!(
            shown.contains("precision 0.750\nrecall 0.750\nF1 0.750"),
            "{shown}"
        );

        let bad = eval(&rules, "text,label\nx,maybe\n".as_bytes(), "text", "label");
        assert_eq!(
            bad.err().map(|e| e.to_string()).as_deref(),
            Some("csv line 2: label \"maybe\" is not 0 or 1")
        );
        // A weight counts in training only; one that is not a sane number names its line.
        let weighted = labeled_rows(
            "text,label,weight\nx,1,0.5\ny,0,\n".as_bytes(),
            "text",
            "label",
        )?;
        let weights: Vec<f64> = weighted.iter().map(|r| r.weight).collect();
        assert_eq!(weights, [0.5, 1.0]);
        for bad in ["0", "-1", "NaN", "1e9", "half"] {
            let rows = format!("text,label,weight\nx,1,1\ny,0,{bad}\n");
            let err = labeled_rows(rows.as_bytes(), "text", "label").err();
            assert_eq!(
                err.map(|e| e.to_string()),
                Some(format!(
                    "csv line 3: weight {bad:?} is not a number from 0.01 to 100"
                ))
            );
        }
        let missing = eval(&rules, "body,label\nx,1\n".as_bytes(), "text", "label");
        assert_eq!(
            missing.err().map(|e| e.to_string()).as_deref(),
            Some("csv has no column \"text\" (columns: body, label)")
        );
        Ok(())
    }
}
