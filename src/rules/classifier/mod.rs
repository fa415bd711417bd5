//! The comment classifier: a logistic regression over hashed features of the comment
//! ([`features`]), in the file format of [`format`]. Scoring is pure like the rest of
//! `rules`: no IO, no clock, cannot fail; a model that could not be read never gets here.
//!
//! A comment's score: per feature block, the sum of `weight × idf` over its features divided
//! by the root of the sum of `idf²` (TF-IDF with each block normalised on its own, counting a
//! repeated feature each time it occurs, so no set of seen features is needed), times the
//! block's scale; plus the bias; then Platt scaling into a calibrated probability. The table
//! holds `(weight × idf, idf²)` per bucket, so a feature costs one lookup.

pub mod features;
pub mod format;

use std::collections::HashMap;
use std::fmt;

pub use features::{Block, Settings};
pub use format::{CvFigures, FormatError, ModelParts, Spread, Training};

use super::normalize::Normalized;

/// A loaded model, ready to score.
pub struct Model {
    settings: Settings,
    training: Training,
    cv: CvFigures,
    bias: f64,
    slope: f64,
    intercept: f64,
    /// Per bucket: (weight × idf, idf²), as bfloat16: half the memory of `f32` (the table is
    /// most of a model's), and a relative error of 2⁻⁹ per entry, far below what moves a score.
    table: Box<[[u16; 2]]>,
    /// SHA-256 of the file, hex: what tells two models apart.
    checksum: String,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("checksum", &self.checksum)
            .field("buckets", &self.table.len())
            .finish()
    }
}

/// Why a comment scored as it did: the features that pushed it most, each way.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub score: f32,
    /// (feature, push in calibrated log-odds), strongest first.
    pub towards_scam: Vec<(String, f64)>,
    pub towards_ok: Vec<(String, f64)>,
}

impl Model {
    /// Reads a model file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, FormatError> {
        use sha2::Digest;
        let (parts, tables) = ModelParts::header_and_tables(bytes)?;
        let checksum = sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let table = entries(tables.idf().zip(tables.weights()));
        Ok(Model::with_table(&parts, table, checksum))
    }

    /// A model from training's numbers (`checksum` names it).
    pub fn from_parts(parts: &ModelParts, checksum: String) -> Model {
        let table = entries(parts.idf.iter().copied().zip(parts.weights.iter().copied()));
        Model::with_table(parts, table, checksum)
    }

    fn with_table(parts: &ModelParts, table: Box<[[u16; 2]]>, checksum: String) -> Model {
        Model {
            settings: parts.settings,
            training: parts.training,
            cv: parts.cv,
            bias: parts.bias,
            slope: parts.slope,
            intercept: parts.intercept,
            table,
            checksum,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn training(&self) -> &Training {
        &self.training
    }

    pub fn cv(&self) -> &CvFigures {
        &self.cv
    }

    /// SHA-256 of the model file, hex.
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// Memory the scoring table takes.
    pub fn table_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.table)
    }

    /// The calibrated probability that the comment is a scam or spam, in 0..=1.
    pub fn score(&self, text: &str) -> f32 {
        self.score_normalized(text, &Normalized::new(text))
    }

    /// [`Model::score`] for a comment already normalised (the rule engine's scan has it).
    pub fn score_normalized(&self, text: &str, n: &Normalized<'_>) -> f32 {
        self.score_with_links(text, n, None)
    }

    /// [`Model::score_normalized`], given the comment's links if they were found already.
    pub(crate) fn score_with_links(
        &self,
        text: &str,
        n: &Normalized<'_>,
        links: Option<&super::detect::Links>,
    ) -> f32 {
        let mut sums = Sums {
            table: &self.table,
            settings: self.settings,
            num: [0.0; 4],
            den: [0.0; 4],
        };
        features::extract_with_links(&self.settings, text, n, links, &mut sums);
        let mut margin = self.bias;
        for b in Block::ALL {
            let i = b as usize;
            if sums.den[i] > 0.0 {
                margin += f64::from(self.settings.weights[i]) * f64::from(sums.num[i])
                    / f64::from(sums.den[i]).sqrt();
            }
        }
        self.calibrate(margin)
    }

    fn calibrate(&self, margin: f64) -> f32 {
        let z = self.slope * margin + self.intercept;
        let p = 1.0 / (1.0 + (-z).exp());
        if p.is_finite() { p as f32 } else { 0.5 }
    }

    fn entry(&self, hash: u64) -> [f32; 2] {
        self.table
            .get(self.settings.bucket(hash))
            .map_or([0.0; 2], |&e| unpack(e))
    }

    /// The score and the `top` features that pushed it most towards scam and towards ok.
    pub fn explain(&self, text: &str, top: usize) -> Explanation {
        let n = Normalized::new(text);
        let mut seen = Named {
            model: self,
            features: Vec::new(),
            den: [0.0; 4],
        };
        features::extract(&self.settings, text, &n, &mut seen);
        let mut pushes: HashMap<String, f64> = HashMap::new();
        for (block, wi, name) in seen.features {
            let i = block as usize;
            let den = f64::from(seen.den[i]);
            if den > 0.0 {
                let push =
                    self.slope * f64::from(self.settings.weights[i]) * f64::from(wi) / den.sqrt();
                *pushes.entry(name).or_default() += push;
            }
        }
        let mut sorted: Vec<(String, f64)> =
            pushes.into_iter().filter(|(_, p)| *p != 0.0).collect();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let towards_scam = sorted
            .iter()
            .filter(|(_, p)| *p > 0.0)
            .take(top)
            .cloned()
            .collect();
        let towards_ok = sorted
            .iter()
            .rev()
            .filter(|(_, p)| *p < 0.0)
            .take(top)
            .cloned()
            .collect();
        Explanation {
            score: self.score_normalized(text, &n),
            towards_scam,
            towards_ok,
        }
    }
}

/// The scoring table's entries, `(weight × idf, idf²)` per bucket, rounded to bfloat16.
fn entries(tables: impl Iterator<Item = (f32, f32)>) -> Box<[[u16; 2]]> {
    tables
        .map(|(idf, w)| [bf16(w * idf), bf16(idf * idf)])
        .collect()
}

/// `x` rounded to the nearest bfloat16 (ties to even): its top 16 bits.
fn bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    let round = 0x7FFF + ((bits >> 16) & 1);
    (bits.saturating_add(round) >> 16) as u16
}

#[inline]
fn unpack([a, b]: [u16; 2]) -> [f32; 2] {
    [
        f32::from_bits(u32::from(a) << 16),
        f32::from_bits(u32::from(b) << 16),
    ]
}

/// The scoring sink: per block, the sums of `weight × idf` and of `idf²`. It holds the
/// table and settings themselves, not the model, so its sums cannot alias them and stay in
/// registers through the feature loops.
struct Sums<'m> {
    table: &'m [[u16; 2]],
    settings: Settings,
    num: [f32; 4],
    den: [f32; 4],
}

impl features::Sink for Sums<'_> {
    #[inline]
    fn add(&mut self, block: Block, hash: u64, _name: impl FnOnce() -> String) {
        let [wi, q] = self
            .table
            .get(self.settings.bucket(hash))
            .map_or([0.0; 2], |&e| unpack(e));
        let i = block as usize;
        self.num[i] += wi;
        self.den[i] += q;
    }

    fn names_wanted(&self) -> bool {
        false
    }

    fn add_all(&mut self, block: Block, hashes: &[u64], _name: impl Fn(usize) -> String) {
        let (mut num, mut den) = (0.0f32, 0.0f32);
        // A power of two long (checked at load): masking the bucket proves every index in
        // range, so the loop has no bounds checks.
        let Some(mask) = self.table.len().checked_sub(1) else {
            return;
        };
        let table = &self.table[..=mask];
        for &h in hashes {
            let [wi, q] = unpack(table[self.settings.bucket(h) & mask]);
            num += wi;
            den += q;
        }
        let i = block as usize;
        self.num[i] += num;
        self.den[i] += den;
    }
}

/// The explaining sink: every feature with its name.
struct Named<'m> {
    model: &'m Model,
    features: Vec<(Block, f32, String)>,
    den: [f32; 4],
}

impl features::Sink for Named<'_> {
    fn add(&mut self, block: Block, hash: u64, name: impl FnOnce() -> String) {
        let [wi, q] = self.model.entry(hash);
        self.den[block as usize] += q;
        self.features.push((block, wi, name()));
    }
}
