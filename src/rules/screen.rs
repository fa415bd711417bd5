//! A literal screen in front of a regex list: can this text match at all?
//!
//! Every match of a regex begins with one of its prefix literals (`\bwin\d+` begins with
//! `win`, `(dm|msg) me` with `dm` or `msg`). When every pattern of a list has prefix literals
//! of at least three bytes, windows of those literals (three or four bytes) go into a set,
//! and a text in which no window is in the set cannot match. An 8 KiB bit table of the
//! windows' hashes answers for most windows; a sorted list behind it for the rest. Most
//! comments match none of a list's patterns, and the screen says so from memory that stays
//! in cache, where a many-pattern lazy DFA misses the cache on most bytes of the comment.
//!
//! Longer literals let the screen look at every `stride`-th window of the text only: a
//! literal of `width + stride - 1` bytes or more covers, wherever it begins, a window that
//! starts at a multiple of `stride`, at one of its first `stride` offsets, so those windows
//! of every literal go into the set. Literals of six bytes or more (most words) halve or
//! quarter the windows looked up.

use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// The set of a regex list's first bytes of every match.
#[derive(Debug, Clone)]
pub struct Screen {
    /// Bytes per window: 3 or 4.
    width: usize,
    /// Only windows starting at multiples of this are looked up (1 to 4).
    stride: usize,
    /// One bit per window hash.
    bits: Box<[u64]>,
    /// Every window that starts a prefix literal, as a little-endian number, sorted.
    keys: Vec<u32>,
}

const BITS_LOG2: u32 = 16;

/// Literals shorter than this would screen out too little to pay for the scan.
const MIN_WIDTH: usize = 3;

impl Screen {
    /// The screen for these patterns (as the regex engine will compile them), or `None` when
    /// some pattern has no prefix literals of three bytes or more (it may start with a class
    /// like `\w`, a repetition, or match the empty string), and the list must always run.
    pub fn new(patterns: &[String]) -> Option<Screen> {
        let mut extractor = Extractor::new();
        extractor.kind(ExtractKind::Prefix);
        let mut keys = Vec::new();
        let mut shortest = usize::MAX;
        let mut literals = Vec::new();
        for p in patterns {
            let hir = regex_syntax::parse(p).ok()?;
            let seq = extractor.extract(&hir);
            let lits = seq.literals()?;
            if lits.is_empty() {
                // A pattern that can match nothing: it needs no window.
                continue;
            }
            for lit in lits {
                let bytes = lit.as_bytes();
                if bytes.len() < MIN_WIDTH {
                    return None;
                }
                shortest = shortest.min(bytes.len());
                literals.push(bytes.to_vec());
            }
        }
        let (width, stride) = shape(shortest);
        for lit in &literals {
            for offset in 0..stride {
                if let Some(window) = lit.get(offset..offset + width) {
                    keys.push(key(window));
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let mut bits = vec![0u64; 1 << (BITS_LOG2 - 6)].into_boxed_slice();
        for &k in &keys {
            let h = slot(k);
            bits[h >> 6] |= 1 << (h & 63);
        }
        Some(Screen {
            width,
            stride,
            bits,
            keys,
        })
    }

    /// False when no match can begin anywhere in `text`.
    pub fn may_match(&self, text: &[u8]) -> bool {
        if text.len() < self.width {
            return false;
        }
        let hit = |k: u32| {
            let h = slot(k);
            self.bits[h >> 6] >> (h & 63) & 1 != 0 && self.keys.binary_search(&k).is_ok()
        };
        let mask = if self.width == 4 { u32::MAX } else { 0xFF_FFFF };
        let mut at = 0;
        // Four bytes read at a time while four are left; the last window may be shorter.
        while let Some(w) = text.get(at..).and_then(|w| w.first_chunk::<4>()) {
            if hit(u32::from_le_bytes(*w) & mask) {
                return true;
            }
            at += self.stride;
        }
        text.get(at..)
            .is_some_and(|w| w.len() >= self.width && hit(key(&w[..self.width])))
    }
}

/// Window width and stride for literals of at least `shortest` bytes: as many windows
/// skipped as the literals allow (`width + stride - 1 <= shortest`), windows of four bytes
/// once the stride is four (three-byte windows of common words hit more often).
fn shape(shortest: usize) -> (usize, usize) {
    let width = if shortest >= 7 {
        4
    } else {
        MIN_WIDTH.min(shortest)
    };
    (width, (shortest + 1).saturating_sub(width).clamp(1, 4))
}

/// A window of up to four bytes as a number.
#[inline]
fn key(window: &[u8]) -> u32 {
    window
        .iter()
        .rev()
        .fold(0u32, |k, &b| (k << 8) | u32::from(b))
}

/// The window's bit in the table.
#[inline]
fn slot(key: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B1) >> (32 - BITS_LOG2)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn screen(patterns: &[&str]) -> Option<Screen> {
        Screen::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_list_is_screened_only_when_every_pattern_begins_with_three_bytes_or_more() {
        for (patterns, shape) in [
            (&[r"\bwin\d+", r"free\s+money"][..], Some((3, 1))),
            (&[r"free\s+money", r"(?i)giveaway"][..], Some((3, 2))),
            (&[r"(?i)giveaway", r"crypto(currency)?"][..], Some((3, 4))),
            (&[r"(?i)giveaway", r"whatsapp"][..], Some((4, 4))),
            (&[r"\bwin\d+", r"\w+bonus"][..], None),
            (&[r"dm\s+me", r"whatsapp"][..], None),
            (&[r"x*", r"whatsapp"][..], None),
            (&[r"[a-z]{3}\d", r"whatsapp"][..], None),
        ] {
            let got = screen(patterns).map(|s| (s.width, s.stride));
            assert_eq!(got, shape, "{patterns:?}");
        }
    }

    #[test]
    fn text_with_a_pattern_start_passes_and_text_without_is_screened_out() {
        let Some(s) = screen(&[r"\bwin\d+", r"free\s+money", r"(?i)giveaway"]) else {
            panic!("the list has prefix literals");
        };
        for (text, may) in [
            ("you win 100", true),
            ("so free, money back", true),
            ("GIVEAWAY time", true),
            ("wi", false),
            ("", false),
            ("love this colour", false),
            ("winner freedom give away", true),
            // Only the first three bytes of each pattern are looked for.
            ("fre money", true),
            ("fr money", false),
        ] {
            assert_eq!(s.may_match(text.as_bytes()), may, "{text:?}");
        }
    }

    #[test]
    fn a_strided_screen_finds_a_literal_at_every_offset() {
        let Some(s) = screen(&[r"(?i)giveaway", r"whatsapp\b"]) else {
            panic!("the list has prefix literals");
        };
        assert_eq!((s.width, s.stride), (4, 4));
        for lead in 0..9 {
            for word in ["giveaway", "whatsapp"] {
                let text = format!("{}{word}", "x".repeat(lead));
                assert!(s.may_match(text.as_bytes()), "{text:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// A text the screen turns away matches none of the list's patterns.
        #[test]
        fn the_screen_never_turns_away_a_match(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("win"), Just("wi"), Just("n"), Just("12"), Just("free"), Just(" "),
                    Just("money"), Just("mon"), Just("GIVE"), Just("away"), Just("é"),
                    Just("fr"), Just("ee"), Just("x"), Just("crypto"), Just("\u{1F525}"),
                    Just("whats"), Just("app"), Just("bit"), Just("coin"), Just("cur"),
                ],
                0..16,
            ),
        ) {
            let text: String = parts.concat();
            // Windows of three bytes (`win`) at every offset, three bytes at every second
            // offset, three at every fourth, four at every fourth.
            for patterns in [
                &[
                    r"\bwin\d{2,}\b", r"free\s+money", r"(?i)giveaway", r"crypto(currency)?\b",
                    r"(?-u:\b)money(?-u:\b)",
                ][..],
                &[r"free\s+money", r"(?i)giveaway", r"crypto(currency)?\b", r"money"][..],
                &[r"(?i)giveaway", r"crypto(currency)?\b", r"\bbitcoin"][..],
                &[r"(?i)giveaway", r"whatsapp", r"bitcoin\b", r"moneyx?"][..],
            ] {
                let Some(s) = screen(patterns) else {
                    panic!("the list has prefix literals");
                };
                let matches = patterns
                    .iter()
                    .any(|p| regex::Regex::new(p).is_ok_and(|r| r.is_match(&text)));
                prop_assert!(s.may_match(text.as_bytes()) || !matches, "{:?}", text);
            }
        }
    }
}
