//! A literal screen in front of a regex list: can this text match at all?
//!
//! Every match of a regex begins with one of its prefix literals (`\bwin\d+` begins with
//! `win`, `(dm|msg) me` with `dm` or `msg`). When every pattern of a list has prefix literals
//! of at least three bytes, windows of those literals (three or four bytes) go into a set,
//! and a text in which no window is in the set cannot match. An 8 KiB bit table of the
//! windows' hashes answers for most windows; where a window's bit is set, the literals it
//! lies in (found through a 4 KiB table of the bit table's words) are compared with the
//! text there, so the screen answers with the first place a literal begins: common words
//! hold windows of the literals (`thi`, `ove`) far more often than the literals themselves,
//! and each such false alarm would run the lazy DFA over the rest of the comment. Most
//! comments match none of a list's patterns, and the screen says so from memory that stays
//! in cache, where a many-pattern lazy DFA misses the cache on most bytes of the comment.
//!
//! The text is the folded one, which has no ASCII capitals: literals are lowercased and
//! deduplicated (`(?i)dm` has four literals, `dm` alone can occur). A list with at most
//! [`FEW`] literals, however short, is screened by searching for each (`memchr::memmem`,
//! vectorised) instead: `(?i)\bdm\s+@\w+` would otherwise start a reverse search of the lazy
//! DFA at every `for` and `to` of the comment.
//!
//! Longer literals let the screen look at every `stride`-th window of the text only: a
//! literal of `width + stride - 1` bytes or more covers, wherever it begins, a window that
//! starts at a multiple of `stride`, at one of its first `stride` offsets, so those windows
//! of every literal go into the set. Literals of four bytes or more halve the windows looked
//! up; of six or more, quarter them.

use regex_syntax::hir::literal::{ExtractKind, Extractor};

use super::normalize::bytes_at;

/// The set of a regex list's first bytes of every match.
#[derive(Debug, Clone)]
pub enum Screen {
    /// A few literals, each searched for.
    Few(Vec<memchr::memmem::Finder<'static>>),
    Windows(Windows),
}

/// Windows of the literals, looked up by hash.
#[derive(Debug, Clone)]
pub struct Windows {
    /// Bytes per window: 3 or 4.
    width: usize,
    /// Only windows starting at multiples of this are looked up (1 to 4).
    stride: usize,
    /// One bit per window hash.
    bits: Box<[u64; WORDS]>,
    /// The windows whose bits are in word `w` of `bits` are `windows[bucket[w]..bucket[w + 1]]`.
    bucket: Box<[u32; WORDS + 1]>,
    /// Every window of a prefix literal that can be looked up, by bucket.
    windows: Vec<Window>,
    /// The prefix literals, lowercase.
    literals: Vec<Vec<u8>>,
}

/// One of a literal's first `stride` windows.
#[derive(Debug, Clone)]
struct Window {
    /// The window's bytes as a little-endian number.
    key: u32,
    /// Where the window begins in the literal.
    offset: u8,
    /// The literal's first eight bytes (fewer if it is shorter, the rest masked off), which
    /// turn most false alarms down without a call to compare the whole literal.
    head: u64,
    mask: u64,
    literal: u32,
}

const BITS_LOG2: u32 = 16;

/// Words of 64 bits in the bit table.
const WORDS: usize = 1 << (BITS_LOG2 - 6);

/// Literals shorter than this would screen out too little to pay for the scan by windows.
const MIN_WIDTH: usize = 3;

/// Up to this many literals are each searched for, whatever their length.
const FEW: usize = 4;

impl Screen {
    /// The screen for these patterns (as the regex engine will compile them, run on folded
    /// text), or `None` when some pattern has no prefix literals (it may start with a class
    /// like `\w`, a repetition, or match the empty string), or more than [`FEW`] literals
    /// have some shorter than three bytes, and the list must always run.
    pub fn new(patterns: &[String]) -> Option<Screen> {
        let mut extractor = Extractor::new();
        extractor.kind(ExtractKind::Prefix);
        let mut literals = Vec::new();
        for p in patterns {
            let hir = regex_syntax::parse(p).ok()?;
            let seq = extractor.extract(&hir);
            // A pattern that can match nothing has no literals and needs no window.
            for lit in seq.literals()? {
                literals.push(lit.as_bytes().to_ascii_lowercase());
            }
        }
        literals.sort_unstable();
        literals.dedup();
        let shortest = literals.iter().map(Vec::len).min().unwrap_or(usize::MAX);
        if shortest == 0 {
            return None;
        }
        if literals.len() <= FEW {
            return Some(Screen::Few(
                literals
                    .iter()
                    .map(|l| memchr::memmem::Finder::new(l).into_owned())
                    .collect(),
            ));
        }
        if shortest < MIN_WIDTH {
            return None;
        }
        Some(Screen::Windows(Windows::new(literals, shortest)))
    }

    /// The first byte of `text` (folded: no ASCII capitals) where a match may begin: none
    /// begins before it, and `None` when none can begin anywhere. The search for a match can
    /// start there instead of at the start of the text.
    pub fn first_start(&self, text: &[u8]) -> Option<usize> {
        match self {
            Screen::Few(finders) => finders.iter().filter_map(|f| f.find(text)).min(),
            Screen::Windows(w) => w.first_start(text),
        }
    }
}

impl Windows {
    fn new(literals: Vec<Vec<u8>>, shortest: usize) -> Windows {
        let mut windows = Vec::new();
        let (width, stride) = shape(shortest);
        for (index, lit) in literals.iter().enumerate() {
            let len = lit.len().min(8);
            let head = u64::from_le_bytes(bytes_at::<8>(lit, 0, 0));
            let mask = u64::MAX >> (8 * (8 - len));
            // `stride` is four at most.
            for offset in 0..stride as u8 {
                let from = usize::from(offset);
                if let Some(window) = lit.get(from..from + width) {
                    windows.push(Window {
                        key: key(window),
                        offset,
                        head,
                        mask,
                        literal: index as u32,
                    });
                }
            }
        }
        windows.sort_by_key(|w| slot(w.key));
        let mut bits = Box::new([0u64; WORDS]);
        let mut bucket = Box::new([0u32; WORDS + 1]);
        for w in &windows {
            let h = slot(w.key);
            bits[h >> 6] |= 1 << (h & 63);
            bucket[(h >> 6) + 1] += 1;
        }
        for w in 0..WORDS {
            bucket[w + 1] += bucket[w];
        }
        Windows {
            width,
            stride,
            bits,
            bucket,
            windows,
            literals,
        }
    }

    /// Where the first literal in `text` begins. A literal that begins at `s` holds the
    /// window at the first multiple of the stride from `s` (its literal is long enough, see
    /// [`shape`]), so windows are looked at in order and, at the first where a literal is
    /// found, the earliest of the literals found there is the first in the text.
    fn first_start(&self, text: &[u8]) -> Option<usize> {
        if text.len() < self.width {
            return None;
        }
        // Every shape `shape` gives, each compiled on its own.
        match (self.width, self.stride) {
            (3, 1) => self.first_start_of::<3, 1>(text),
            (3, 2) => self.first_start_of::<3, 2>(text),
            (3, 3) => self.first_start_of::<3, 3>(text),
            (3, 4) => self.first_start_of::<3, 4>(text),
            (4, 4) => self.first_start_of::<4, 4>(text),
            _ => self.first_start_from(text, 0),
        }
    }

    /// [`Windows::first_start`] for windows of `W` bytes every `S` bytes: the windows that
    /// begin in each eight bytes read are looked up in the bit table together (one read and
    /// one branch for all of them), and the last few bytes one window at a time.
    fn first_start_of<const W: usize, const S: usize>(&self, text: &[u8]) -> Option<usize> {
        let per_read = (8 - W) / S + 1;
        let mask = (1u64 << (8 * W)) - 1;
        let mut at = 0;
        while let Some(read) = text.get(at..).and_then(|t| t.first_chunk::<8>()) {
            let read = u64::from_le_bytes(*read);
            let window = |k: usize| ((read >> (8 * S * k)) & mask) as u32;
            let mut maybe = false;
            for k in 0..per_read {
                maybe |= self.in_table(window(k));
            }
            if maybe
                && let Some(start) =
                    (0..per_read).find_map(|k| self.literal_at(text, at + k * S, window(k)))
            {
                return Some(start);
            }
            at += per_read * S;
        }
        self.first_start_from(text, at)
    }

    /// [`Windows::first_start`] from the window at `at` (a multiple of the stride), one
    /// window at a time.
    fn first_start_from(&self, text: &[u8], mut at: usize) -> Option<usize> {
        let mask = if self.width == 4 { u32::MAX } else { 0xFF_FFFF };
        // Four bytes read at a time while four are left; the last window may be shorter.
        while let Some(w) = text.get(at..).and_then(|w| w.first_chunk::<4>()) {
            if let Some(start) = self.literal_at(text, at, u32::from_le_bytes(*w) & mask) {
                return Some(start);
            }
            at += self.stride;
        }
        text.get(at..)
            .and_then(|w| w.get(..self.width))
            .and_then(|w| self.literal_at(text, at, key(w)))
    }

    /// The window's bit is set in the table: it may be a literal's.
    #[inline]
    fn in_table(&self, window: u32) -> bool {
        let h = slot(window);
        self.bits[h >> 6] >> (h & 63) & 1 != 0
    }

    /// The earliest start of a literal in `text` that holds `window`, the window at `at`, at
    /// one of its first `stride` offsets.
    #[inline]
    fn literal_at(&self, text: &[u8], at: usize, window: u32) -> Option<usize> {
        if !self.in_table(window) {
            return None;
        }
        let word = slot(window) >> 6;
        let (from, to) = (self.bucket[word] as usize, self.bucket[word + 1] as usize);
        self.windows
            .get(from..to)?
            .iter()
            .filter(|w| w.key == window)
            .filter_map(|w| {
                let start = at.checked_sub(usize::from(w.offset))?;
                if u64::from_le_bytes(bytes_at::<8>(text, start, 0)) & w.mask != w.head {
                    return None;
                }
                let literal = self.literals.get(w.literal as usize)?;
                text.get(start..)?.starts_with(literal).then_some(start)
            })
            .min()
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
    use std::sync::LazyLock;

    impl Screen {
        fn may_match(&self, text: &[u8]) -> bool {
            self.first_start(text).is_some()
        }
    }

    fn screen(patterns: &[&str]) -> Option<Screen> {
        Screen::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>())
    }

    /// How a list is screened: `(n, 0, 0)` by searching for n literals, `(0, width, stride)`
    /// by windows.
    fn kind(patterns: &[&str]) -> Option<(usize, usize, usize)> {
        screen(patterns).map(|s| match s {
            Screen::Few(f) => (f.len(), 0, 0),
            Screen::Windows(w) => (0, w.width, w.stride),
        })
    }

    const FIVE_LONG: [&str; 5] = [
        r"(?i)giveaway",
        r"whatsapp\b",
        "telegram",
        "instagram",
        "bitcoins",
    ];

    #[test]
    fn a_list_is_screened_by_few_literals_or_by_windows_of_many() {
        for (patterns, how) in [
            // Few literals, however short; capitals folded away.
            (&[r"(?i)\bdm\s+@\w+\s+(for|to)\b"][..], Some((1, 0, 0))),
            (&[r"\bwin\d+", r"free\s+money"][..], Some((2, 0, 0))),
            (&[r"dm\s+me", r"whatsapp", r"DM\s+me"][..], Some((2, 0, 0))),
            // Many: windows, as long and as far apart as the shortest literal allows.
            (
                &[
                    r"\bwin\d+",
                    r"free\s+money",
                    "giveaway",
                    "crypto",
                    "bitcoin",
                ][..],
                Some((0, 3, 1)),
            ),
            (
                &["free", "giveaway", "crypto", "bitcoin", "money"][..],
                Some((0, 3, 2)),
            ),
            (
                &["giveaway", "crypto", "bitcoin", "whatsapp", "telegram"][..],
                Some((0, 3, 4)),
            ),
            (&FIVE_LONG[..], Some((0, 4, 4))),
            // Not screened: a pattern without literals, or many with a short one.
            (&[r"\bwin\d+", r"\w+bonus"][..], None),
            (&[r"x*", r"whatsapp"][..], None),
            (&[r"[a-z]{3}\d", r"whatsapp"][..], None),
            (
                &["dm", "giveaway", "whatsapp", "telegram", "bitcoin"][..],
                None,
            ),
        ] {
            assert_eq!(kind(patterns), how, "{patterns:?}");
        }
    }

    #[test]
    fn text_with_a_pattern_start_passes_and_text_without_is_screened_out() {
        for patterns in [
            &[r"\bwin\d+", r"free\s+money", r"(?i)giveaway"][..],
            &[
                r"\bwin\d+",
                r"free\s+money",
                r"(?i)giveaway",
                "nomatch",
                "ignored",
            ],
        ] {
            let Some(s) = screen(patterns) else {
                panic!("the list has prefix literals");
            };
            for (text, may) in [
                ("you win 100", true),
                ("so free, money back", true),
                ("giveaway time", true),
                ("wi", false),
                ("", false),
                ("love this colour", false),
                ("winner freedom give away", true),
                // The whole literal must be there, not only its first window.
                ("fre money", false),
                ("fr money", false),
            ] {
                assert_eq!(s.may_match(text.as_bytes()), may, "{text:?} {patterns:?}");
            }
        }
    }

    /// Every shape of window screen finds each literal wherever it begins (in the bytes
    /// read eight at a time or in the last few), at its start, and passes over text without
    /// one, even where the text holds all of a literal but its last byte.
    #[test]
    fn a_window_screen_finds_a_literal_at_every_offset() {
        for (literals, shape) in WORD_LISTS.into_iter().chain([FIVE_LONG]).zip([
            (0, 3, 1),
            (0, 3, 2),
            (0, 3, 3),
            (0, 3, 4),
            (0, 4, 4),
            (0, 4, 4),
        ]) {
            assert_eq!(kind(&literals), Some(shape), "{literals:?}");
            let Some(s) = screen(&literals) else {
                panic!("the list has prefix literals");
            };
            for lead in 0..24 {
                let filler = "x".repeat(lead);
                assert_eq!(s.first_start(filler.as_bytes()), None, "{filler:?}");
                for pattern in literals {
                    // Folded text: `(?i)` literals are matched lowercase.
                    let literal = pattern.trim_start_matches("(?i)").trim_end_matches("\\b");
                    for trail in ["", "y", "yyyyyyy"] {
                        let text = format!("{filler}{literal}{trail}");
                        assert_eq!(s.first_start(text.as_bytes()), Some(lead), "{text:?}");
                        // A plain word is its own literal (`(?i)` gives shorter ones).
                        if pattern == literal {
                            let cut = &literal[..literal.len() - 1];
                            let text = format!("{filler}{cut}.{trail}");
                            assert_eq!(s.first_start(text.as_bytes()), None, "{text:?}");
                        }
                    }
                }
            }
        }
    }

    /// Two literals that share a window at different places in them, both in the text:
    /// the screen starts at the earlier.
    #[test]
    fn literals_sharing_a_window_start_at_the_earlier() {
        let Some(s) = screen(&["xabc", "abcd", "giveaway", "crypto", "bitcoin"]) else {
            panic!("plain words have prefix literals");
        };
        assert_eq!(
            kind(&["xabc", "abcd", "giveaway", "crypto", "bitcoin"]),
            Some((0, 3, 2))
        );
        // The window at 2, `abc`, is the second of `xabc` and the first of `abcd`.
        assert_eq!(s.first_start(b"yxabcd"), Some(1));
        assert_eq!(s.first_start(b"yyabcd"), Some(2));
        assert_eq!(s.first_start(b"yxabcx"), Some(1));
        assert_eq!(s.first_start(b"yxabdd"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// A folded text the screen turns away matches none of the list's patterns.
        #[test]
        fn the_screen_never_turns_away_a_match(
            text in texts(&[
                "win", "wi", "n", "12", "free", " ", "money", "mon", "GIVE", "away", "é", "fr",
                "ee", "x", "crypto", "\u{1F525}", "whats", "app", "bit", "coin", "cur", "dm",
                "DM", " @", "to", "for", "me",
            ], 16),
        ) {
            // Folded text has no ASCII capitals.
            let text = text.to_ascii_lowercase();
            for (patterns, s, regexes) in LISTS.iter() {
                let matches = regexes.iter().any(|r| r.is_match(&text));
                prop_assert!(s.may_match(text.as_bytes()) || !matches, "{:?} {:?}", text, patterns);
                // No match begins before the first start.
                let first = regexes.iter().filter_map(|r| r.find(&text)).map(|m| m.start()).min();
                if let Some(first) = first {
                    let start = s.first_start(text.as_bytes());
                    prop_assert!(start.is_some_and(|s| s <= first), "{:?} {:?} {:?}", text, patterns, start);
                }
            }
        }

        /// For lists of plain words (each its own literal), the screen's first start is
        /// where the first of the words begins in the text: no earlier, no later, and none
        /// where none of them is in the text.
        #[test]
        fn a_word_list_screen_starts_at_the_first_word(
            text in texts(&[
                "win", "wi", "n", "free", " ", "fre", "money", "mone", "give", "away", "é",
                "crypt", "o", "bitco", "in", "s", "whats", "app", "tele", "gram", "insta", "x",
                "\u{1F525}",
            ], 24),
        ) {
            for words in WORD_LISTS {
                let Some(s) = screen(&words) else {
                    panic!("plain words have prefix literals: {words:?}");
                };
                let first = words
                    .iter()
                    .filter_map(|w| text.find(w))
                    .min();
                prop_assert_eq!(s.first_start(text.as_bytes()), first, "{:?} {:?}", text, words);
            }
        }
    }

    /// Texts of fewer than `most` of `fragments`.
    fn texts(fragments: &'static [&'static str], most: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(fragments), 0..most)
            .prop_map(|parts| parts.concat())
    }

    /// A list of plain words for each shape of window screen.
    const WORD_LISTS: [[&str; 5]; 5] = [
        ["win", "free", "giveaway", "crypto", "bitcoin"],
        ["free", "giveaway", "crypto", "bitcoin", "money"],
        ["money", "giveaway", "crypto", "bitcoin", "whatsapp"],
        ["giveaway", "crypto", "bitcoin", "whatsapp", "telegram"],
        ["giveaway", "whatsapp", "telegram", "instagram", "bitcoins"],
    ];

    /// The property's lists, each with its screen and compiled patterns.
    #[allow(clippy::type_complexity)]
    static LISTS: LazyLock<Vec<(&[&str], Screen, Vec<regex::Regex>)>> = LazyLock::new(|| {
        [
            // Searched for: one short literal, two.
            &[r"(?i)\bdm\s+@\w+\s+(for|to)\b"][..],
            &[r"dm\s+me", r"(?i)WHATSAPP"],
            // Windows of three bytes (`win`) at every offset, three bytes at every second
            // offset, three at every fourth, four at every fourth.
            &[
                r"\bwin\d{2,}\b",
                r"free\s+money",
                r"(?i)giveaway",
                r"crypto(currency)?\b",
                r"(?-u:\b)money(?-u:\b)",
            ],
            &[
                r"free\s+money",
                r"(?i)giveaway",
                r"crypto(currency)?\b",
                r"money",
                "coins",
            ],
            &[
                r"(?i)giveaway",
                r"crypto(currency)?\b",
                r"\bbitcoin",
                "currency",
                "whatsapp",
            ],
            &[
                r"(?i)giveaway",
                r"whatsapp",
                r"bitcoin\b",
                r"moneyx?",
                "curable",
            ],
        ]
        .into_iter()
        .map(|patterns| {
            let Some(s) = screen(patterns) else {
                panic!("the list has prefix literals: {patterns:?}");
            };
            let regexes = patterns
                .iter()
                .filter_map(|p| regex::Regex::new(p).ok())
                .collect();
            (patterns, s, regexes)
        })
        .collect()
    });
}
