//! A literal screen in front of a regex list: can this text match at all?
//!
//! Every match of a regex begins with one of its prefix literals (`\bwin\d+` begins with
//! `win`, `(dm|msg) me` with `dm` or `msg`). When every pattern of a list has prefix literals
//! of at least three bytes, their first bytes (three or four: the shortest literal's length,
//! at most four) go into a set, and a text in which no window of that many bytes is in the
//! set cannot match. An 8 KiB bit table of the windows' hashes answers for most windows; a
//! sorted list behind it for the rest. Most comments match none of a list's patterns, and the
//! screen says so from memory that stays in cache, where a many-pattern lazy DFA misses the
//! cache on most bytes of the comment.

use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// The set of a regex list's first bytes of every match.
#[derive(Debug, Clone)]
pub struct Screen {
    /// Bytes per window: 3 or 4.
    width: usize,
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
        let mut width = 4;
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
                width = width.min(bytes.len());
                literals.push(bytes.to_vec());
            }
        }
        for lit in &literals {
            keys.push(key(&lit[..width]));
        }
        keys.sort_unstable();
        keys.dedup();
        let mut bits = vec![0u64; 1 << (BITS_LOG2 - 6)].into_boxed_slice();
        for &k in &keys {
            let h = slot(k);
            bits[h >> 6] |= 1 << (h & 63);
        }
        Some(Screen { width, bits, keys })
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
        if self.width == 4 {
            text.windows(4)
                .any(|w| <[u8; 4]>::try_from(w).is_ok_and(|w| hit(u32::from_le_bytes(w))))
        } else {
            text.windows(3).any(|w| hit(key(w)))
        }
    }
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
        for (patterns, width) in [
            (&[r"\bwin\d+", r"free\s+money"][..], Some(3)),
            (&[r"(?i)giveaway", r"crypto(currency)?"][..], Some(4)),
            (&[r"\bwin\d+", r"\w+bonus"][..], None),
            (&[r"dm\s+me", r"whatsapp"][..], None),
            (&[r"x*", r"whatsapp"][..], None),
            (&[r"[a-z]{3}\d", r"whatsapp"][..], None),
        ] {
            assert_eq!(screen(patterns).map(|s| s.width), width, "{patterns:?}");
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
                ],
                0..16,
            ),
        ) {
            let text: String = parts.concat();
            // Windows of three bytes (`win`), and of four.
            for patterns in [
                &[
                    r"\bwin\d{2,}\b", r"free\s+money", r"(?i)giveaway", r"crypto(currency)?\b",
                    r"(?-u:\b)money(?-u:\b)",
                ][..],
                &[r"free\s+money", r"(?i)giveaway", r"crypto(currency)?\b", r"money"][..],
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
