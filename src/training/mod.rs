//! Training the comment classifier: labeled rows in, a model file's parts out, with
//! cross-validation figures and a calibration fitted on the out-of-fold scores.
//!
//! - Features: [`crate::rules::classifier::features`], the same function that scores.
//! - Fitting: L2-regularised logistic regression (the loss liblinear and scikit-learn
//!   minimise, with liblinear's `C`), by L-BFGS ([`lbfgs`]) over the columns the training
//!   rows use; the bias is not penalised.
//! - Cross-validation: folds stratified by label and grouped by text (a text and its exact
//!   repeats are held out together, as the kept-back data was split), assigned by a hash of
//!   the seed and the text. No random number generator is involved, so the same rows and
//!   seed give the same model file, byte for byte.
//! - Calibration: Platt scaling (Lin, Lin and Weng's algorithm) of the held-out margins, so
//!   a score is a probability.
//!
//! Whole on purpose: the fit, the folds and the calibration share one view of the rows.

pub mod lbfgs;

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::rules::Normalized;
use crate::rules::classifier::features::{self, Block, Settings, Sink};
use crate::rules::classifier::{CvFigures, Model, ModelParts, Spread, Training};

/// One labeled comment.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    /// True: scam or spam.
    pub label: bool,
    pub source: Source,
    /// How much the row counts in the fit's loss (1 unless its file gave a `weight`).
    pub weight: f64,
}

/// Where a training row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The training file: cross-validated.
    Data,
    /// A file given with `--also`: in every fold's training, never held out, so the figures
    /// stay about the training file.
    Extra,
    /// An operator's label from the database: cross-validated like the file's rows.
    Label,
}

impl Example {
    pub fn new(text: impl Into<String>, label: bool, source: Source) -> Example {
        Example {
            text: text.into(),
            label,
            source,
            weight: 1.0,
        }
    }

    /// The row counting `weight` times in the loss.
    pub fn weighted(self, weight: f64) -> Example {
        Example { weight, ..self }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub settings: Settings,
    /// Inverse L2 strength (liblinear's `C`).
    pub c: f64,
    pub folds: u32,
    pub seed: u64,
    /// The threshold the cross-validation figures are given at.
    pub threshold: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            settings: Settings::default(),
            c: 10.0,
            folds: 5,
            seed: 1,
            threshold: 0.5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error("{0} rows: too few to train on (at least 10)")]
    TooFew(usize),
    #[error("every row has the same label: a classifier needs both scam (1) and ok (0) rows")]
    OneClass,
    #[error("--cv {folds}: needs 2 to 20 folds, and at least as many distinct texts of each label")]
    Folds { folds: u32 },
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error("C {0} must be a positive number")]
    C(f64),
    #[error("row weight {0} must be a positive number")]
    Weight(f64),
}

/// Counts at one threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tn: u64,
}

impl Counts {
    pub fn add(&mut self, positive: bool, flagged: bool) {
        match (positive, flagged) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// The feature settings, as `model train` and `model info` print them.
fn features_line(s: &Settings) -> String {
    format!(
        "features (set {}): 2^{} buckets; chars {}-{}, words{}, emoji, handles {}-{}, signals{}; block weights {:?}",
        s.feature_set,
        s.hash_bits,
        s.char_min,
        s.char_max,
        if s.word_pairs { " and pairs" } else { "" },
        s.handle_min,
        s.handle_max,
        match s.feature_set {
            0 | 1 => "",
            2 => " (with script, messenger apps, currencies and numbers in any script)",
            _ => {
                " (with script, messenger apps, currencies and numbers in any script); English twins of words, handles and signals"
            }
        },
        s.weights,
    )
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The fold of a row that is never held out.
pub const NEVER: u32 = u32::MAX;

/// A trained model with what cross-validation measured.
#[derive(Debug, Clone)]
pub struct Trained {
    pub parts: ModelParts,
    /// Per fold, at the options' threshold.
    pub folds: Vec<Counts>,
    /// Each row's calibrated score from the model that did not see it (NaN for rows never
    /// held out).
    pub held_out: Vec<f64>,
    /// Each row's fold ([`NEVER`] for rows never held out).
    pub fold_of: Vec<u32>,
    /// L-BFGS iterations of the final fit.
    pub iterations: usize,
}

/// The thresholds of the tables `--cv` and `rules eval --sweep` print.
pub const SWEEP: [f64; 12] = [
    0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99,
];

impl Trained {
    /// Counts over every held-out score at each of [`SWEEP`]'s thresholds.
    pub fn sweep(&self, labels: &[bool]) -> Vec<(f64, Counts)> {
        SWEEP
            .iter()
            .map(|&t| {
                let mut c = Counts::default();
                for (s, &l) in self.held_out.iter().zip(labels) {
                    if !s.is_nan() {
                        c.add(l, *s >= t);
                    }
                }
                (t, c)
            })
            .collect()
    }
}

/// Adds operators' labels (oldest first) to the rows: a label on a text the rows already
/// hold (compared without case) relabels those rows, since the operator's word is the later
/// one; any other becomes a row of its own. Returns (rows relabeled, rows added).
pub fn merge_labels(
    examples: &mut Vec<Example>,
    labels: impl IntoIterator<Item = (String, bool)>,
) -> (usize, usize) {
    let mut by_text: std::collections::HashMap<String, Vec<usize>> =
        std::collections::HashMap::new();
    for (i, e) in examples.iter().enumerate() {
        by_text.entry(e.text.to_lowercase()).or_default().push(i);
    }
    let (mut relabeled, mut added) = (0, 0);
    for (text, label) in labels {
        let key = text.to_lowercase();
        match by_text.get(&key) {
            Some(rows) => {
                // An operator's label counts once, whatever the file's row weighed.
                for &i in rows {
                    if examples[i].label != label {
                        relabeled += 1;
                    }
                    examples[i].label = label;
                    examples[i].weight = 1.0;
                }
            }
            None => {
                by_text.insert(key, vec![examples.len()]);
                examples.push(Example::new(text, label, Source::Label));
                added += 1;
            }
        }
    }
    (relabeled, added)
}

/// SHA-256 of the rows as trained on (a weight other than 1 is part of its row).
pub fn data_hash(examples: &[Example]) -> [u8; 32] {
    let mut h = Sha256::new();
    for e in examples {
        h.update(e.text.as_bytes());
        h.update([0, if e.label { b'1' } else { b'0' }]);
        if e.weight != 1.0 {
            h.update(format!(" x{}", e.weight).as_bytes());
        }
        h.update([b'\n']);
    }
    h.finalize().into()
}

/// A comment's features as (block, bucket) occurrences.
pub fn occurrences(settings: &Settings, text: &str) -> Vec<(u8, u32)> {
    struct Collect<'s> {
        settings: &'s Settings,
        out: Vec<(u8, u32)>,
    }
    impl Sink for Collect<'_> {
        fn add(&mut self, block: Block, hash: u64, _name: impl FnOnce() -> String) {
            let bucket = self.settings.bucket(hash) as u32;
            self.out.push((block as u8, bucket));
        }

        fn names_wanted(&self) -> bool {
            false
        }
    }
    let n = Normalized::new(text);
    let mut c = Collect {
        settings,
        out: Vec::new(),
    };
    features::extract(settings, text, &n, &mut c);
    c.out
}

/// Trains on every row, after cross-validating on `options.folds` folds.
pub fn train(examples: &[Example], options: &Options) -> Result<Trained, TrainError> {
    let settings = options.settings;
    if let Some(p) = settings.problem() {
        return Err(TrainError::Settings(p));
    }
    if !(options.c.is_finite() && options.c > 0.0) {
        return Err(TrainError::C(options.c));
    }
    if examples.len() < 10 {
        return Err(TrainError::TooFew(examples.len()));
    }
    let labels: Vec<bool> = examples.iter().map(|e| e.label).collect();
    let row_weights: Vec<f64> = examples.iter().map(|e| e.weight).collect();
    if let Some(bad) = row_weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
        return Err(TrainError::Weight(*bad));
    }
    if labels.iter().all(|l| *l) || labels.iter().all(|l| !*l) {
        return Err(TrainError::OneClass);
    }
    let docs: Vec<Vec<(u8, u32)>> = examples
        .iter()
        .map(|e| occurrences(&settings, &e.text))
        .collect();
    // Rows of `--also` files are never held out (fold `NEVER`).
    let checked: Vec<usize> = (0..examples.len())
        .filter(|&i| examples[i].source != Source::Extra)
        .collect();
    let checked_rows: Vec<Example> = checked.iter().map(|&i| examples[i].clone()).collect();
    let mut fold_of = vec![NEVER; examples.len()];
    for (&i, fold) in checked
        .iter()
        .zip(assign_folds(&checked_rows, options.folds, options.seed)?)
    {
        fold_of[i] = fold;
    }

    let mut margins = vec![f64::NAN; examples.len()];
    for k in 0..options.folds {
        let train_rows: Vec<usize> = (0..docs.len()).filter(|&i| fold_of[i] != k).collect();
        let fit = fit(
            &docs,
            &labels,
            &row_weights,
            &train_rows,
            &settings,
            options.c,
        );
        for i in (0..docs.len()).filter(|&i| fold_of[i] == k) {
            margins[i] = fit.margin(&settings, &docs[i]);
        }
    }
    let checked_margins: Vec<f64> = checked.iter().map(|&i| margins[i]).collect();
    let checked_labels: Vec<bool> = checked.iter().map(|&i| labels[i]).collect();
    let (slope, intercept) = platt(&checked_margins, &checked_labels);
    let held_out: Vec<f64> = margins
        .iter()
        .map(|m| sigmoid(slope * m + intercept))
        .collect();
    let mut folds = vec![Counts::default(); options.folds as usize];
    for &i in &checked {
        if let Some(c) = folds.get_mut(fold_of[i] as usize) {
            c.add(labels[i], held_out[i] >= options.threshold);
        }
    }
    let spread = |f: fn(&Counts) -> f64| mean_sd(&folds.iter().map(f).collect::<Vec<_>>());

    let all: Vec<usize> = (0..docs.len()).collect();
    let fit = fit(&docs, &labels, &row_weights, &all, &settings, options.c);
    let positives = labels.iter().filter(|l| **l).count() as u64;
    let parts = ModelParts {
        settings,
        training: Training {
            rows: examples.len() as u64,
            positives,
            from_labels: examples
                .iter()
                .filter(|e| e.source == Source::Label)
                .count() as u64,
            extra: examples
                .iter()
                .filter(|e| e.source == Source::Extra)
                .count() as u64,
            sha256: data_hash(examples),
            c: options.c,
        },
        cv: CvFigures {
            folds: options.folds,
            seed: options.seed,
            threshold: options.threshold,
            precision: spread(Counts::precision),
            recall: spread(Counts::recall),
            f1: spread(Counts::f1),
        },
        bias: fit.bias,
        slope,
        intercept,
        idf: fit.idf,
        weights: fit.weights,
    };
    Ok(Trained {
        parts,
        folds,
        held_out,
        fold_of,
        iterations: fit.iterations,
    })
}

fn mean_sd(values: &[f64]) -> Spread {
    let n = values.len() as f64;
    if values.is_empty() {
        return Spread::default();
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Spread {
        mean,
        sd: var.sqrt(),
    }
}

/// A 64-bit hash of the seed and a text (splitmix64's finaliser over FNV-1a).
fn text_hash(seed: u64, text: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Each row's fold: texts grouped (repeats together), each label's groups ordered by a hash
/// of the seed and the text and dealt out in turn.
pub fn assign_folds(examples: &[Example], folds: u32, seed: u64) -> Result<Vec<u32>, TrainError> {
    let mut groups: BTreeMap<&str, (bool, Vec<usize>)> = BTreeMap::new();
    for (i, e) in examples.iter().enumerate() {
        groups
            .entry(e.text.as_str())
            .or_insert((e.label, Vec::new()))
            .1
            .push(i);
    }
    let mut by_label: [Vec<(u64, &str)>; 2] = [Vec::new(), Vec::new()];
    for (text, (label, _)) in &groups {
        by_label[usize::from(*label)].push((text_hash(seed, text), text));
    }
    let enough = by_label.iter().all(|l| l.len() >= folds as usize);
    if !(2..=20).contains(&folds) || !enough {
        return Err(TrainError::Folds { folds });
    }
    let mut fold_of = vec![0u32; examples.len()];
    for list in &mut by_label {
        list.sort_unstable();
        for (position, (_, text)) in list.iter().enumerate() {
            let fold = (position % folds as usize) as u32;
            for &i in groups.get(text).map(|g| g.1.as_slice()).unwrap_or(&[]) {
                fold_of[i] = fold;
            }
        }
    }
    Ok(fold_of)
}

/// One fit's numbers, per bucket.
struct Fit {
    idf: Vec<f32>,
    weights: Vec<f32>,
    bias: f64,
    iterations: usize,
}

impl Fit {
    /// The margin (before calibration), as [`crate::rules::classifier::Model`] computes it.
    fn margin(&self, settings: &Settings, doc: &[(u8, u32)]) -> f64 {
        let mut num = [0.0f64; 4];
        let mut den = [0.0f64; 4];
        for &(block, bucket) in doc {
            let (b, i) = (usize::from(block), bucket as usize);
            let idf = f64::from(self.idf[i]);
            num[b] += f64::from(self.weights[i]) * idf;
            den[b] += idf * idf;
        }
        let mut m = self.bias;
        for b in 0..4 {
            if den[b] > 0.0 {
                m += f64::from(settings.weights[b]) * num[b] / den[b].sqrt();
            }
        }
        m
    }
}

fn fit(
    docs: &[Vec<(u8, u32)>],
    labels: &[bool],
    row_weights: &[f64],
    rows: &[usize],
    s: &Settings,
    c: f64,
) -> Fit {
    let buckets = s.buckets();
    let mut df = vec![0u32; buckets];
    let mut seen: Vec<u32> = Vec::new();
    for &r in rows {
        seen.clear();
        seen.extend(docs[r].iter().map(|(_, b)| *b));
        seen.sort_unstable();
        seen.dedup();
        for &b in &seen {
            df[b as usize] += 1;
        }
    }
    let n = rows.len() as f64;
    let idf: Vec<f32> = df
        .iter()
        .map(|&d| (((1.0 + n) / (1.0 + f64::from(d))).ln() + 1.0) as f32)
        .collect();
    // Compact columns: the buckets the training rows use.
    let mut column = vec![u32::MAX; buckets];
    let mut columns = 0u32;
    for (b, &d) in df.iter().enumerate() {
        if d > 0 {
            column[b] = columns;
            columns += 1;
        }
    }
    let mut ptr = Vec::with_capacity(rows.len() + 1);
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    ptr.push(0);
    for &r in rows {
        let mut den = [0.0f64; 4];
        for &(block, bucket) in &docs[r] {
            den[usize::from(block)] += f64::from(idf[bucket as usize]).powi(2);
        }
        for &(block, bucket) in &docs[r] {
            let b = usize::from(block);
            let scale = f64::from(s.weights[b]);
            if den[b] > 0.0 && scale > 0.0 {
                cols.push(column[bucket as usize]);
                vals.push(scale * f64::from(idf[bucket as usize]) / den[b].sqrt());
            }
        }
        ptr.push(cols.len());
    }
    let targets: Vec<f64> = rows
        .iter()
        .map(|&r| if labels[r] { 1.0 } else { 0.0 })
        .collect();
    let in_loss: Vec<f64> = rows.iter().map(|&r| row_weights[r]).collect();
    let mut objective = Logistic {
        ptr: &ptr,
        cols: &cols,
        vals: &vals,
        targets: &targets,
        weights: &in_loss,
        c,
        residual: vec![0.0; rows.len()],
    };
    let mut x = vec![0.0; columns as usize + 1];
    let outcome = lbfgs::minimize(&mut objective, &mut x, lbfgs::Options::default());
    let bias = x.last().copied().unwrap_or(0.0);
    let weights = column
        .iter()
        .map(|&col| {
            if col == u32::MAX {
                0.0
            } else {
                x[col as usize] as f32
            }
        })
        .collect();
    Fit {
        idf,
        weights,
        bias,
        iterations: outcome.iterations,
    }
}

/// The L2-regularised logistic loss over a sparse matrix (rows in CSR form); the last
/// coordinate of `x` is the unpenalised bias.
struct Logistic<'a> {
    ptr: &'a [usize],
    cols: &'a [u32],
    vals: &'a [f64],
    targets: &'a [f64],
    /// Each row's weight in the loss.
    weights: &'a [f64],
    c: f64,
    residual: Vec<f64>,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^z)` without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

impl lbfgs::Objective for Logistic<'_> {
    fn eval(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        let Some((&bias, w)) = x.split_last() else {
            return 0.0;
        };
        let mut loss = 0.0;
        for (row, window) in self.ptr.windows(2).enumerate() {
            let mut m = bias;
            for j in window[0]..window[1] {
                m += self.vals[j] * w[self.cols[j] as usize];
            }
            let (t, weight) = (self.targets[row], self.weights[row]);
            loss += weight * if t > 0.5 { softplus(-m) } else { softplus(m) };
            self.residual[row] = weight * (sigmoid(m) - t);
        }
        let (gb, gw) = match grad.split_last_mut() {
            Some((gb, gw)) => (gb, gw),
            None => return loss,
        };
        for (g, wi) in gw.iter_mut().zip(w) {
            *g = wi / self.c;
        }
        *gb = 0.0;
        for (row, window) in self.ptr.windows(2).enumerate() {
            let r = self.residual[row];
            *gb += r;
            for j in window[0]..window[1] {
                gw[self.cols[j] as usize] += r * self.vals[j];
            }
        }
        loss + w.iter().map(|v| v * v).sum::<f64>() / (2.0 * self.c)
    }
}

/// Platt scaling: `(slope, intercept)` with `P(scam) = sigmoid(slope × margin + intercept)`,
/// fitted by Newton's method with backtracking (Lin, Lin and Weng 2007, as LIBSVM does), on
/// smoothed targets so that separable data cannot push the slope to infinity.
pub fn platt(margins: &[f64], labels: &[bool]) -> (f64, f64) {
    let prior1 = labels.iter().filter(|l| **l).count() as f64;
    let prior0 = labels.len() as f64 - prior1;
    let hi = (prior1 + 1.0) / (prior1 + 2.0);
    let lo = 1.0 / (prior0 + 2.0);
    let t: Vec<f64> = labels.iter().map(|l| if *l { hi } else { lo }).collect();
    // LIBSVM's form: P = 1 / (1 + exp(A f + B)).
    let (mut a, mut b) = (0.0f64, ((prior0 + 1.0) / (prior1 + 1.0)).ln());
    let objective = |a: f64, b: f64| -> f64 {
        margins
            .iter()
            .zip(&t)
            .map(|(f, ti)| {
                let z = f * a + b;
                if z >= 0.0 {
                    ti * z + (-z).exp().ln_1p()
                } else {
                    (ti - 1.0) * z + z.exp().ln_1p()
                }
            })
            .sum()
    };
    let mut value = objective(a, b);
    for _ in 0..100 {
        let (mut h11, mut h22, mut h21, mut g1, mut g2) = (1e-12, 1e-12, 0.0, 0.0, 0.0);
        for (f, ti) in margins.iter().zip(&t) {
            let z = f * a + b;
            let (p, q) = if z >= 0.0 {
                let e = (-z).exp();
                (e / (1.0 + e), 1.0 / (1.0 + e))
            } else {
                let e = z.exp();
                (1.0 / (1.0 + e), e / (1.0 + e))
            };
            let d2 = p * q;
            h11 += f * f * d2;
            h22 += d2;
            h21 += f * d2;
            let d1 = ti - p;
            g1 += f * d1;
            g2 += d1;
        }
        if g1.abs() < 1e-5 && g2.abs() < 1e-5 {
            break;
        }
        let det = h11 * h22 - h21 * h21;
        let da = -(h22 * g1 - h21 * g2) / det;
        let db = -(-h21 * g1 + h11 * g2) / det;
        let gd = g1 * da + g2 * db;
        let mut step = 1.0;
        let mut moved = false;
        while step >= 1e-10 {
            let (na, nb) = (a + step * da, b + step * db);
            let nv = objective(na, nb);
            if nv < value + 1e-4 * step * gd {
                (a, b, value) = (na, nb, nv);
                moved = true;
                break;
            }
            step /= 2.0;
        }
        if !moved {
            break;
        }
    }
    (-a, -b)
}

/// Why a model file could not be used: the path and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("model {path}: cannot read it: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("model {path}: {source}")]
    Format {
        path: String,
        source: crate::rules::classifier::FormatError,
    },
}

/// Reads and checks a model file.
pub fn load_model(path: &Path) -> Result<Model, LoadError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: shown.clone(),
        source,
    })?;
    Model::from_bytes(&bytes).map_err(|source| LoadError::Format {
        path: shown,
        source,
    })
}

/// [`load_model`], shared: a model with the same content as one already loaded (by another
/// rule, or before a reload) is that one, so the daemon holds each model once however often
/// the config is reloaded.
pub fn load_shared(path: &Path) -> Result<std::sync::Arc<Model>, LoadError> {
    use std::sync::{Arc, Mutex, Weak};
    static LOADED: Mutex<Vec<Weak<Model>>> = Mutex::new(Vec::new());
    let model = load_model(path)?;
    let Ok(mut loaded) = LOADED.lock() else {
        return Ok(Arc::new(model));
    };
    loaded.retain(|w| w.strong_count() > 0);
    if let Some(same) = loaded
        .iter()
        .filter_map(Weak::upgrade)
        .find(|m| m.checksum() == model.checksum())
    {
        return Ok(same);
    }
    let model = Arc::new(model);
    loaded.push(Arc::downgrade(&model));
    Ok(model)
}

/// Writes a model file whole or not at all (a temp file beside it, then a rename), so a
/// daemon reloading at that moment reads the old file or the new one, never half of one.
pub fn write_model(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // Readable by the service's user: a model holds no secret (the temp file starts 0600).
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// What `igmod model train` prints: the data, the settings, each fold and the threshold table.
pub fn summary(trained: &Trained, labels: &[bool]) -> String {
    use std::fmt::Write as _;
    let p = &trained.parts;
    let s = &p.settings;
    let t = &p.training;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trained on {} rows ({} labeled 1{}{}), data sha256 {}",
        t.rows,
        t.positives,
        if t.from_labels > 0 {
            format!(", {} from operators' labels", t.from_labels)
        } else {
            String::new()
        },
        if t.extra > 0 {
            format!(", {} from --also files, never held out", t.extra)
        } else {
            String::new()
        },
        hex(&t.sha256)
    );
    let _ = writeln!(out, "{}; C {}", features_line(s), t.c);
    let cv = &p.cv;
    let _ = writeln!(
        out,
        "{}-fold cross-validation (seed {}, folds grouped by text), at score >= {}:",
        cv.folds, cv.seed, cv.threshold
    );
    for (k, c) in trained.folds.iter().enumerate() {
        let _ = writeln!(
            out,
            "  fold {}: precision {:.3}  recall {:.3}  F1 {:.3}  (TP {} FP {} FN {})",
            k + 1,
            c.precision(),
            c.recall(),
            c.f1(),
            c.tp,
            c.fp,
            c.fn_
        );
    }
    let _ = writeln!(
        out,
        "  mean: precision {:.3} ± {:.3}  recall {:.3} ± {:.3}  F1 {:.3} ± {:.3}",
        cv.precision.mean, cv.precision.sd, cv.recall.mean, cv.recall.sd, cv.f1.mean, cv.f1.sd
    );
    let _ = writeln!(
        out,
        "calibration: P(scam) = 1 / (1 + exp(-({:.4} × margin + {:.4})))",
        p.slope, p.intercept
    );
    out.push_str(
        "threshold table (every row scored by the fold model that did not see it):
",
    );
    out.push_str(&sweep_table(&trained.sweep(labels)));
    out
}

/// `score >=  precision  recall  F1  TP  FP  FN` rows.
pub fn sweep_table(rows: &[(f64, Counts)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "  score >=  precision  recall     F1     TP     FP     FN
",
    );
    for (t, c) in rows {
        let _ = writeln!(
            out,
            "  {t:>8.2}  {:>9.3}  {:>6.3}  {:>5.3}  {:>5}  {:>5}  {:>5}",
            c.precision(),
            c.recall(),
            c.f1(),
            c.tp,
            c.fp,
            c.fn_
        );
    }
    out
}

/// What `igmod model info` prints.
pub fn describe(model: &Model) -> String {
    let s = model.settings();
    let t = model.training();
    let cv = model.cv();
    format!(
        "sha256 {}\nformat version {}\n{}\ntrained on {} rows ({} labeled 1, {} from operators' labels, {} from --also files), data sha256 {}, C {}\n{}-fold cross-validation (seed {}), at score >= {}: precision {:.3} ± {:.3}, recall {:.3} ± {:.3}, F1 {:.3} ± {:.3}\nscoring table: {} bytes in memory\n",
        model.checksum(),
        crate::rules::classifier::format::VERSION,
        features_line(s),
        t.rows,
        t.positives,
        t.from_labels,
        t.extra,
        hex(&t.sha256),
        t.c,
        cv.folds,
        cv.seed,
        cv.threshold,
        cv.precision.mean,
        cv.precision.sd,
        cv.recall.mean,
        cv.recall.sd,
        cv.f1.mean,
        cv.f1.sd,
        model.table_bytes()
    )
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, label: bool) -> Example {
        Example::new(text, label, Source::Data)
    }

    /// A small set a linear model can learn: scams name money and a handle.
    fn toy() -> Vec<Example> {
        let mut v = Vec::new();
        for i in 0..30 {
            v.push(ex(
                &format!("i made ${i}000 with @trader_{i}fx thanks to her"),
                true,
            ));
            v.push(ex(&format!("lovely photo number {i}, the colours!"), false));
            v.push(ex(&format!("where is this place {i}? looks calm"), false));
        }
        v
    }

    #[test]
    fn folds_group_repeats_and_balance_labels() {
        let mut rows = toy();
        rows.push(ex("i made $1000 with @trader_1fx thanks to her", true));
        let folds = match assign_folds(&rows, 5, 7) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        // The repeat of row 3 is in its fold.
        assert_eq!(folds[rows.len() - 1], folds[3]);
        for k in 0..5 {
            let pos = (0..rows.len())
                .filter(|&i| folds[i] == k && rows[i].label)
                .count();
            assert!((6..=7).contains(&pos), "fold {k}: {pos} positives");
        }
        assert!(matches!(
            assign_folds(&rows[..12], 5, 1),
            Err(TrainError::Folds { .. })
        ));
    }

    #[test]
    fn learns_a_separable_toy_set_and_is_calibrated() {
        let rows = toy();
        let trained = match train(&rows, &Options::default()) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        let labels: Vec<bool> = rows.iter().map(|r| r.label).collect();
        let at_half = trained
            .sweep(&labels)
            .into_iter()
            .find(|(t, _)| *t == 0.5)
            .map(|(_, c)| c)
            .unwrap_or_default();
        assert!(at_half.f1() > 0.95, "{at_half:?}");
        assert!(
            trained.parts.slope > 0.0,
            "a higher margin means more likely scam"
        );
        let model = crate::rules::classifier::Model::from_parts(&trained.parts, String::new());
        let scam = model.score("I MADE $7000 with @trader_fx, thanks to her!");
        let fine = model.score("lovely colours in this photo");
        assert!(scam > 0.8 && fine < 0.2, "{scam} {fine}");
    }

    /// A weighted row counts as much as its weight says: the same rows weighted 10 move the
    /// model further than weighted 0.1; weight 1 changes nothing; 0 is refused.
    #[test]
    fn a_rows_weight_is_how_much_it_counts() {
        let with = |weight: f64| {
            let mut rows = toy();
            for i in 0..4 {
                let text = format!("visit my shop number {i} for more");
                rows.push(Example::new(text, true, Source::Extra).weighted(weight));
            }
            rows
        };
        let score = |rows: &[Example]| match train(rows, &Options::default()) {
            Ok(t) => crate::rules::classifier::Model::from_parts(&t.parts, String::new())
                .score("visit my shop for more"),
            Err(e) => panic!("{e}"),
        };
        let (light, heavy) = (score(&with(0.1)), score(&with(10.0)));
        assert!(heavy > light + 0.2, "weighted 10: {heavy}, 0.1: {light}");
        // Weight 1 hashes as a row never weighted.
        let ones: Vec<Example> = toy().into_iter().map(|e| e.weighted(1.0)).collect();
        assert_eq!(data_hash(&ones), data_hash(&toy()));
        assert_ne!(data_hash(&with(0.5)), data_hash(&with(1.0)));
        assert!(matches!(
            train(&with(0.0), &Options::default()),
            Err(TrainError::Weight(_))
        ));
        // An operator's label on a weighted row counts once.
        let mut rows = with(0.5);
        let relabeled = merge_labels(
            &mut rows,
            [("visit my shop number 2 for more".into(), false)],
        );
        assert_eq!(relabeled, (1, 0));
        let row = rows
            .iter()
            .find(|r| r.text == "visit my shop number 2 for more");
        assert_eq!(row.map(|r| (r.label, r.weight)), Some((false, 1.0)));
    }

    #[test]
    fn same_rows_and_seed_give_the_same_model() {
        let rows = toy();
        let a = train(&rows, &Options::default()).map(|t| t.parts.to_bytes());
        let b = train(&rows, &Options::default()).map(|t| t.parts.to_bytes());
        assert!(a.is_ok());
        assert_eq!(a, b);
    }

    #[test]
    fn bad_inputs_are_refused() {
        let rows = toy();
        let one: Vec<Example> = rows.iter().filter(|r| r.label).cloned().collect();
        assert_eq!(
            train(&one, &Options::default()).err(),
            Some(TrainError::OneClass)
        );
        assert_eq!(
            train(&rows[..5], &Options::default()).err(),
            Some(TrainError::TooFew(5))
        );
        let bad_c = Options {
            c: -1.0,
            ..Options::default()
        };
        assert_eq!(train(&rows, &bad_c).err(), Some(TrainError::C(-1.0)));
    }

    #[test]
    fn platt_scaling_recovers_a_known_calibration() {
        // Labels drawn so that P(1 | m) = sigmoid(2m - 1) exactly in expectation.
        let mut margins = Vec::new();
        let mut labels = Vec::new();
        for i in 0..2000 {
            let m = (i as f64 / 2000.0) * 6.0 - 3.0;
            let p = sigmoid(2.0 * m - 1.0);
            // A deterministic "coin": the fractional part of a scrambled index.
            let u = (text_hash(3, &i.to_string()) >> 11) as f64 / (1u64 << 53) as f64;
            margins.push(m);
            labels.push(u < p);
        }
        let (slope, intercept) = platt(&margins, &labels);
        assert!((slope - 2.0).abs() < 0.3, "{slope}");
        assert!((intercept + 1.0).abs() < 0.3, "{intercept}");
    }
}
