//! The model file: a fixed little-endian layout, versioned and checksummed, written from the
//! exact numbers training produced so the same data and seed give the same bytes.
//!
//! ```text
//! magic "IGMODCLS" · version u16
//! settings: hash_bits u8 · char_min u8 · char_max u8 · handle_min u8 · handle_max u8 ·
//!           word_pairs u8 · block weights 4×f32
//! training: rows u64 · positives u64 · rows from operators' labels u64 · rows never held
//!           out u64 · SHA-256 of the training set [32] · L2 strength (C) f64
//! cv:       folds u32 · seed u64 · threshold f64 · precision mean, sd · recall mean, sd ·
//!           F1 mean, sd (f64)
//! scoring:  bias f64 · calibration slope f64 · calibration intercept f64
//! tables:   buckets u32 · idf buckets×f32 · weights buckets×f32
//! SHA-256 of every byte above [32]
//! ```

use sha2::{Digest, Sha256};

use super::features::Settings;

pub const MAGIC: &[u8; 8] = b"IGMODCLS";
/// Bumped whenever the layout or the features' hashing changes. The layout of versions 1
/// to 3 is the same; the version names the feature set (`Settings::feature_set`) the model
/// was trained with, so a model of an older version is scored as it always was.
pub const VERSION: u16 = 3;

/// Mean and standard deviation over the folds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub sd: f64,
}

/// What the model was trained on.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Training {
    pub rows: u64,
    pub positives: u64,
    /// Rows that came from operators' labels (`--labels-from-db`).
    pub from_labels: u64,
    /// Rows in every fold's training, never held out (`--also`).
    pub extra: u64,
    /// SHA-256 of the training rows as trained on (text, NUL, label, newline, in order).
    pub sha256: [u8; 32],
    /// The L2 penalty's strength (C, as in liblinear: larger is weaker).
    pub c: f64,
}

/// Cross-validation figures at `threshold` on the calibrated score.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CvFigures {
    pub folds: u32,
    pub seed: u64,
    pub threshold: f64,
    pub precision: Spread,
    pub recall: Spread,
    pub f1: Spread,
}

/// Everything a model file holds, as training produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelParts {
    pub settings: Settings,
    pub training: Training,
    pub cv: CvFigures,
    pub bias: f64,
    /// Platt scaling of the margin: `p = 1 / (1 + exp(-(slope * margin + intercept)))`.
    pub slope: f64,
    pub intercept: f64,
    pub idf: Vec<f32>,
    pub weights: Vec<f32>,
}

/// Why bytes are not a model this build can use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error("not an igmod model file (it does not start with \"IGMODCLS\")")]
    NotAModel,
    #[error(
        "model format version {found}, but this igmod reads versions 1 to {VERSION}: retrain it with `igmod model train`"
    )]
    WrongVersion { found: u16 },
    #[error("truncated: {have} bytes where the header needs {need}")]
    Truncated { have: usize, need: usize },
    #[error("checksum mismatch: the file is corrupt")]
    Checksum,
    #[error("invalid model: {0}")]
    Invalid(String),
}

/// Bytes before the tables.
const HEADER: usize = 8 + 2 + 6 + 16 + 8 * 4 + 32 + 8 + 4 + 8 + 8 * 7 + 8 * 3 + 4;

impl ModelParts {
    pub fn to_bytes(&self) -> Vec<u8> {
        let s = &self.settings;
        let mut out = Vec::with_capacity(HEADER + self.idf.len() * 8 + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&u16::from(s.feature_set).to_le_bytes());
        out.extend_from_slice(&[
            s.hash_bits,
            s.char_min,
            s.char_max,
            s.handle_min,
            s.handle_max,
            u8::from(s.word_pairs),
        ]);
        for w in s.weights {
            out.extend_from_slice(&w.to_le_bytes());
        }
        let t = &self.training;
        for v in [t.rows, t.positives, t.from_labels, t.extra] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&t.sha256);
        out.extend_from_slice(&t.c.to_le_bytes());
        let cv = &self.cv;
        out.extend_from_slice(&cv.folds.to_le_bytes());
        out.extend_from_slice(&cv.seed.to_le_bytes());
        for v in [
            cv.threshold,
            cv.precision.mean,
            cv.precision.sd,
            cv.recall.mean,
            cv.recall.sd,
            cv.f1.mean,
            cv.f1.sd,
            self.bias,
            self.slope,
            self.intercept,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let buckets = u32::try_from(self.idf.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&buckets.to_le_bytes());
        for v in self.idf.iter().chain(&self.weights) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<ModelParts, FormatError> {
        let (mut parts, tables) = ModelParts::header_and_tables(bytes)?;
        parts.idf = tables.idf().collect();
        parts.weights = tables.weights().collect();
        Ok(parts)
    }

    /// A checked file's numbers, its tables left in place: loading builds the scoring table
    /// straight from them, so no copy of the tables outlives the load or fragments the heap.
    pub fn header_and_tables(bytes: &[u8]) -> Result<(ModelParts, Tables<'_>), FormatError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(FormatError::NotAModel);
        }
        let mut r = Reader {
            bytes,
            at: MAGIC.len(),
        };
        let truncated = FormatError::Truncated {
            have: bytes.len(),
            need: HEADER + 32,
        };
        let version = u16::from_le_bytes(r.array().ok_or(truncated.clone())?);
        if !(1..=VERSION).contains(&version) {
            return Err(FormatError::WrongVersion { found: version });
        }
        if bytes.len() < HEADER + 32 {
            return Err(truncated);
        }
        let mut header = read_header(&mut r).ok_or(truncated)?;
        header.parts.settings.feature_set = u8::try_from(version).unwrap_or(u8::MAX);
        let buckets = header.buckets as usize;
        let need = HEADER + buckets.saturating_mul(8) + 32;
        if bytes.len() != need {
            return Err(if bytes.len() < need {
                FormatError::Truncated {
                    have: bytes.len(),
                    need,
                }
            } else {
                FormatError::Invalid(format!(
                    "{} bytes where the header says {need}",
                    bytes.len()
                ))
            });
        }
        let (body, sum) = bytes.split_at(need - 32);
        if Sha256::digest(body)[..] != *sum {
            return Err(FormatError::Checksum);
        }
        let parts = header.parts;
        if let Some(problem) = parts.settings.problem() {
            return Err(FormatError::Invalid(problem));
        }
        if buckets != parts.settings.buckets() {
            return Err(FormatError::Invalid(format!(
                "{buckets} buckets for {} hash bits",
                parts.settings.hash_bits
            )));
        }
        let invalid = || FormatError::Invalid("unreadable tables".into());
        let idf = body.get(r.at..r.at + buckets * 4).ok_or_else(invalid)?;
        let weights = body
            .get(r.at + buckets * 4..r.at + buckets * 8)
            .ok_or_else(invalid)?;
        let tables = Tables { idf, weights };
        let finite = [parts.bias, parts.slope, parts.intercept]
            .iter()
            .all(|v| v.is_finite())
            && tables.idf().chain(tables.weights()).all(f32::is_finite);
        if !finite || tables.idf().any(|v| v < 0.0) {
            return Err(FormatError::Invalid(
                "a weight or idf is not a finite number".into(),
            ));
        }
        Ok((parts, tables))
    }
}

/// A checked file's two tables, as the little-endian bytes they are stored as.
pub struct Tables<'a> {
    idf: &'a [u8],
    weights: &'a [u8],
}

impl Tables<'_> {
    pub fn idf(&self) -> impl Iterator<Item = f32> + '_ {
        floats(self.idf)
    }

    pub fn weights(&self) -> impl Iterator<Item = f32> + '_ {
        floats(self.weights)
    }
}

fn floats(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

struct Header {
    parts: ModelParts,
    buckets: u32,
}

fn read_header(r: &mut Reader<'_>) -> Option<Header> {
    let [
        hash_bits,
        char_min,
        char_max,
        handle_min,
        handle_max,
        word_pairs,
    ] = r.array()?;
    let mut weights = [0f32; 4];
    for w in &mut weights {
        *w = f32::from_le_bytes(r.array()?);
    }
    let settings = Settings {
        hash_bits,
        char_min,
        char_max,
        handle_min,
        handle_max,
        word_pairs: word_pairs != 0,
        weights,
        // The file's version says which: set by the caller.
        feature_set: 0,
    };
    let u64v = |r: &mut Reader<'_>| r.array().map(u64::from_le_bytes);
    let f64v = |r: &mut Reader<'_>| r.array().map(f64::from_le_bytes);
    let training = Training {
        rows: u64v(r)?,
        positives: u64v(r)?,
        from_labels: u64v(r)?,
        extra: u64v(r)?,
        sha256: r.array()?,
        c: f64v(r)?,
    };
    let folds = u32::from_le_bytes(r.array()?);
    let seed = u64v(r)?;
    let threshold = f64v(r)?;
    let spread = |r: &mut Reader<'_>| {
        Some(Spread {
            mean: f64v(r)?,
            sd: f64v(r)?,
        })
    };
    let cv = CvFigures {
        folds,
        seed,
        threshold,
        precision: spread(r)?,
        recall: spread(r)?,
        f1: spread(r)?,
    };
    let (bias, slope, intercept) = (f64v(r)?, f64v(r)?, f64v(r)?);
    let buckets = u32::from_le_bytes(r.array()?);
    Some(Header {
        parts: ModelParts {
            settings,
            training,
            cv,
            bias,
            slope,
            intercept,
            idf: Vec::new(),
            weights: Vec::new(),
        },
        buckets,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let end = self.at.checked_add(N)?;
        let out = self.bytes.get(self.at..end)?.try_into().ok()?;
        self.at = end;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> ModelParts {
        let settings = Settings {
            hash_bits: 10,
            ..Settings::default()
        };
        let n = settings.buckets();
        ModelParts {
            settings,
            training: Training {
                rows: 3,
                positives: 1,
                from_labels: 0,
                extra: 0,
                sha256: [7; 32],
                c: 10.0,
            },
            cv: CvFigures {
                folds: 5,
                seed: 1,
                threshold: 0.5,
                precision: Spread { mean: 0.9, sd: 0.1 },
                recall: Spread { mean: 0.8, sd: 0.1 },
                f1: Spread {
                    mean: 0.85,
                    sd: 0.1,
                },
            },
            bias: -1.0,
            slope: 2.0,
            intercept: 0.5,
            idf: (0..n).map(|i| 1.0 + i as f32 / 100.0).collect(),
            weights: (0..n).map(|i| i as f32 / 1000.0 - 0.5).collect(),
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let p = parts();
        let bytes = p.to_bytes();
        assert_eq!(ModelParts::from_bytes(&bytes), Ok(p.clone()));
        assert_eq!(bytes, p.to_bytes(), "the same parts give the same bytes");
    }

    /// Each kind of damage gets its own answer.
    /// A model of the first feature set is written and read back as version 1, so it is
    /// scored with the features it was trained with.
    #[test]
    fn the_version_names_the_feature_set() {
        let mut p = parts();
        assert_eq!(p.to_bytes()[8..10], VERSION.to_le_bytes());
        p.settings.feature_set = 1;
        let bytes = p.to_bytes();
        assert_eq!(bytes[8..10], [1, 0]);
        assert_eq!(ModelParts::from_bytes(&bytes), Ok(p));
    }

    #[test]
    fn damaged_files_are_refused_with_the_reason() {
        let bytes = parts().to_bytes();
        let err = |b: &[u8]| ModelParts::from_bytes(b).err();
        assert_eq!(err(b"hello"), Some(FormatError::NotAModel));
        assert_eq!(err(&[]), Some(FormatError::NotAModel));
        assert!(matches!(
            err(&bytes[..bytes.len() - 100]),
            Some(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            err(&bytes[..20]),
            Some(FormatError::Truncated { .. })
        ));
        let mut version = bytes.clone();
        version[8] = 9;
        assert_eq!(err(&version), Some(FormatError::WrongVersion { found: 9 }));
        let mut flipped = bytes.clone();
        let middle = bytes.len() / 2;
        flipped[middle] ^= 1;
        assert_eq!(err(&flipped), Some(FormatError::Checksum));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(err(&longer), Some(FormatError::Invalid(_))));
    }

    #[test]
    fn a_checksummed_file_with_impossible_values_is_still_refused() {
        let mut p = parts();
        p.weights[3] = f32::NAN;
        assert!(matches!(
            ModelParts::from_bytes(&p.to_bytes()),
            Err(FormatError::Invalid(_))
        ));
        let mut p = parts();
        p.settings.char_max = 0;
        assert!(matches!(
            ModelParts::from_bytes(&p.to_bytes()),
            Err(FormatError::Invalid(_))
        ));
    }
}
