//! Normalisation: runs once per comment and produces the forms conditions match against,
//! each mapped back to byte ranges of the original text for evidence.
//!
//! Pipeline, per original character:
//! 1. compatibility decomposition (NFKD: `𝓬`, `ⓒ`, `ｃ`, `ᶜ` → `c`; `é` → `e` + accent);
//! 2. drop combining marks (accent-insensitive) and invisible format characters (zero-width
//!    space and joiner, bidi controls, soft hyphen, tags);
//! 3. lowercase;
//! 4. fold confusables to their Latin skeleton (Cyrillic and Greek look-alikes, small capitals,
//!    regional-indicator letters, `¥ € ¢ ß ø ł`…).
//!
//! That is the **folded** text (punctuation kept; regexes run here). The **skeleton** goes on:
//! 5. split into words on anything but letters, digits, and `@`/`$` inside a word (`wh@tsapp`);
//! 6. join runs of three or more single-character words (`f r e e`, `f.r.e.e`) into one word,
//!    inside which any position may start or end a match;
//! 7. in words that contain a letter, undo leetspeak (`0→o 1→i 3→e 4→a 5→s 7→t @→a $→s`) and fold
//!    `l` into `i` (so `1`, `l` and `i` are one letter);
//! 8. collapse repeated letters to one, remembering each run's length (`freeeee` = `fre` with
//!    an `e` run of 5).
//!
//! The pipeline is written twice: `Stream`, one pass that every comment goes through, and the
//! generic `fold` + `skeletonize`, which also record the maps back to the original and run
//! only when evidence needs a span. A property test holds the two equal. (A whole word's span
//! in text without joined letters needs no map: `Stream` notes where each word begins and
//! ends as it writes it.)
//!
//! A word pattern goes through the same pipeline, and matches where its skeleton appears on
//! word boundaries with every run at least as long as the pattern's: `free` matches
//! `FREEEE` and `f.r.e.e` but not `fre`; `ass` does not match `as`, `class` or `assassin`.
//!
//! Whole on purpose: the one-pass stream and the generic pipeline share tables and must agree.

use std::cell::{OnceCell, RefCell};
use std::ops::Range;
use std::sync::LazyLock;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// One character of the skeleton.
#[derive(Debug, Clone, Copy)]
pub struct SkelChar {
    /// Byte range in the original text.
    pub orig: (u32, u32),
    /// How many times the letter repeated.
    pub run: u16,
    /// A match may start here.
    pub start_ok: bool,
    /// A match may end after this.
    pub end_ok: bool,
}

/// A comment's text in every form the conditions use.
///
/// Only the two strings are built up front. The maps back to the original text are needed
/// only for evidence and word verification, which touch a small share of comments, so they
/// are built on first use by running the same pipeline again with bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct Normalized<'t> {
    /// Borrowed: the comment outlives its evaluation, and a copy would cost an allocation
    /// per comment for the few that need evidence.
    original: &'t str,
    /// NFKD, marks and format characters dropped, lowercased, confusables folded.
    pub folded: String,
    /// Words separated by single spaces, leet undone, repeats collapsed: UTF-8, kept as bytes
    /// so that the normaliser can write a word in one store (every matcher reads bytes).
    skeleton: Vec<u8>,
    /// Some single letters were joined into a word (`f r e e`), inside which any position is a
    /// word boundary.
    joined: bool,
    /// Emoji in the original text (every character is decoded here anyway).
    emojis: usize,
    /// A bit (`1 << (b % 64)`) for each ASCII byte `b` in `folded` that is neither a letter
    /// nor a digit: detectors ask whether a `.`, `@` or bracket may be there at all before
    /// searching (each search is a call that costs more than the normaliser's noting of every
    /// such byte it meets anyway). Bytes 64 apart share a bit, which can only say "maybe".
    punctuation: u64,
    /// The skeleton characters that repeated: (byte offset in `skeleton`, times), in order.
    /// Most characters do not repeat, so only those that do are listed.
    repeats: Vec<(u32, u16)>,
    /// For each char of `folded`: (byte offset in `folded`, original byte range). Built on
    /// first use (evidence for a regex, link or contact needs only this one).
    folded_map: OnceCell<Vec<(u32, u32, u32)>>,
    detail: OnceCell<Detail>,
    /// Each skeleton word's original byte range, noted as the words are written (right only
    /// when no letters were joined). A word's evidence in such text needs only this: noting
    /// costs a few instructions per word, where a second pass for the evidence of the one
    /// comment in seven that a rule matches cost more than that per comment.
    word_spans: Vec<(u32, u32)>,
    /// The normaliser's list of single-character words, kept only to be handed back with the
    /// other buffers (see [`Spare`]).
    singles: Vec<usize>,
}

/// The buffers of the last [`Normalized`] dropped on this thread, for the next one to write
/// into. A comment is normalised, judged and dropped before the next one, so one set is
/// enough, and five allocations and frees per comment (some 1,000 instructions) go away.
#[derive(Default)]
struct Spare {
    folded: String,
    skeleton: Vec<u8>,
    repeats: Vec<(u32, u16)>,
    spans: Vec<(u32, u32)>,
    singles: Vec<usize>,
}

thread_local! {
    static SPARE: RefCell<Spare> = RefCell::new(Spare::default());
}

/// A buffer bigger than this is freed, not kept: one long text should not pin its memory.
const SPARE_MAX_BYTES: usize = 64 * 1024;

impl Spare {
    /// This thread's spare buffers (empty ones if there are none).
    fn take() -> Spare {
        super::take_spare(&SPARE)
    }

    /// Keeps each buffer for the next comment unless the one kept is bigger, or it is too big.
    fn keep(mut self) {
        fn swap<T>(kept: &mut Vec<T>, mine: &mut Vec<T>) {
            let bytes = mine.capacity() * std::mem::size_of::<T>();
            if mine.capacity() > kept.capacity() && bytes <= SPARE_MAX_BYTES {
                std::mem::swap(kept, mine);
            }
        }
        super::keep_spare(&SPARE, |kept| {
            if self.folded.capacity() > kept.folded.capacity()
                && self.folded.capacity() <= SPARE_MAX_BYTES
            {
                std::mem::swap(&mut kept.folded, &mut self.folded);
            }
            swap(&mut kept.skeleton, &mut self.skeleton);
            swap(&mut kept.repeats, &mut self.repeats);
            swap(&mut kept.spans, &mut self.spans);
            swap(&mut kept.singles, &mut self.singles);
        });
    }
}

impl Drop for Normalized<'_> {
    fn drop(&mut self) {
        Spare {
            folded: std::mem::take(&mut self.folded),
            skeleton: std::mem::take(&mut self.skeleton),
            repeats: std::mem::take(&mut self.repeats),
            spans: std::mem::take(&mut self.word_spans),
            singles: std::mem::take(&mut self.singles),
        }
        .keep();
    }
}

#[derive(Debug, Clone, Default)]
struct Detail {
    /// One entry per char of `skeleton` (spaces included).
    skel: Vec<SkelChar>,
    /// Byte offset in `skeleton` → index in `skel`.
    skel_index: Vec<u32>,
}

impl<'t> Normalized<'t> {
    pub fn new(text: &'t str) -> Self {
        let (folded, skeleton, spans, singles) = Stream::new(text, Spare::take()).run();
        let mut n = Normalized::from_parts(text, folded, skeleton, spans);
        n.singles = singles;
        n
    }

    fn from_parts(
        text: &'t str,
        folded: String,
        skeleton: Plain,
        word_spans: Vec<(u32, u32)>,
    ) -> Self {
        Normalized {
            original: text,
            folded,
            skeleton: skeleton.text,
            joined: skeleton.joined,
            emojis: skeleton.emojis,
            punctuation: skeleton.punctuation,
            repeats: skeleton.repeats,
            folded_map: OnceCell::new(),
            detail: OnceCell::new(),
            word_spans,
            singles: Vec::new(),
        }
    }

    /// Some single letters were joined into a word (`f r e e`): a word match may start or end
    /// inside a word.
    pub fn joined(&self) -> bool {
        self.joined
    }

    /// The skeleton's bytes: what the word matchers search.
    pub fn skeleton(&self) -> &[u8] {
        &self.skeleton
    }

    /// The skeleton as text, checked (for the few callers that need characters).
    pub fn skeleton_str(&self) -> &str {
        // Written from `char`s and ASCII bytes only, so always valid UTF-8 (the property tests
        // compare it as text with the generic pipeline's, where an empty string would show).
        std::str::from_utf8(&self.skeleton).unwrap_or_default()
    }

    /// The skeleton, owned.
    pub fn into_skeleton(mut self) -> String {
        String::from_utf8(std::mem::take(&mut self.skeleton)).unwrap_or_default()
    }

    /// How many emoji the original text has.
    pub fn emojis(&self) -> usize {
        self.emojis
    }

    /// False when the folded text has no such byte (ASCII, neither a letter nor a digit);
    /// true when it may have one. (The original has it only if the folded text does.)
    pub(crate) fn may_have(&self, b: u8) -> bool {
        self.punctuation & punctuation_bit(b) != 0
    }

    /// How many times the skeleton character at byte `at` repeated.
    fn run_at(&self, at: usize) -> u16 {
        self.repeats
            .binary_search_by_key(&at, |r| r.0 as usize)
            .map_or(1, |i| self.repeats[i].1)
    }

    /// [`Normalized::new`] through the generic pipeline only (the oracle for the fast path).
    #[cfg(test)]
    pub(crate) fn the_long_way(text: &'t str) -> Self {
        let mut folded = String::with_capacity(text.len());
        let mut map = Vec::new();
        fold(text, &mut folded, &mut map);
        let mut skeleton = Plain::new(Vec::new(), Vec::new());
        skeletonize(&folded, &mut skeleton);
        skeleton.emojis = text.chars().filter(|c| is_emoji(*c)).count();
        skeleton.punctuation = folded
            .bytes()
            .filter(|b| b.is_ascii() && !b.is_ascii_alphanumeric())
            .fold(0, |m, b| m | punctuation_bit(b));
        Normalized::from_parts(text, folded, skeleton, Vec::new())
    }

    /// For tests comparing the fast and generic pipelines.
    #[cfg(test)]
    pub(crate) fn plain_parts(&self) -> (&str, &str, bool, &[(u32, u16)], u64) {
        let p = self.punctuation;
        (
            &self.folded,
            self.skeleton_str(),
            self.joined,
            &self.repeats,
            p,
        )
    }

    fn folded_map(&self) -> &[(u32, u32, u32)] {
        self.folded_map.get_or_init(|| {
            let mut folded = String::with_capacity(self.folded.len());
            let mut folded_map = Vec::with_capacity(self.folded.len());
            fold(self.original, &mut folded, &mut folded_map);
            debug_assert_eq!(folded, self.folded);
            folded_map
        })
    }

    fn detail(&self) -> &Detail {
        self.detail.get_or_init(|| {
            let folded = &self.folded;
            let folded_map = self.folded_map();
            let mut sink = Mapped {
                map: folded_map,
                cursor: 0,
                skeleton: String::with_capacity(self.skeleton.len()),
                skel: Vec::with_capacity(folded_map.len()),
                skel_index: Vec::with_capacity(self.skeleton.len() + 1),
            };
            skeletonize(folded, &mut sink);
            sink.skel_index.push(sink.skel.len() as u32);
            debug_assert_eq!(sink.skeleton.as_bytes(), self.skeleton);
            Detail {
                skel: sink.skel,
                skel_index: sink.skel_index,
            }
        })
    }

    /// The original byte range of skeleton bytes `bytes` that start and end on word
    /// boundaries, in text without joined letters: from the first word's start to the last
    /// word's end, from the spans the one-pass normaliser noted (far cheaper than the maps).
    pub fn word_span(&self, bytes: Range<usize>) -> Option<Range<usize>> {
        if self.joined {
            return None;
        }
        let spans = &self.word_spans;
        let sk = &self.skeleton;
        let first = memchr::memchr_iter(b' ', sk.get(..bytes.start)?).count();
        let last = first + memchr::memchr_iter(b' ', sk.get(bytes.clone())?).count();
        Some(spans.get(first)?.0 as usize..spans.get(last)?.1 as usize)
    }

    /// One entry per char of `skeleton` (spaces included).
    pub fn skel(&self) -> &[SkelChar] {
        &self.detail().skel
    }

    /// Original byte range of a byte range of `folded`. Where the original is ASCII up to
    /// the range's end, each byte folded to one byte and the range is the same: no map is
    /// built (building one folds the whole text again, for the one comment in seven whose
    /// winning rule points at a link or a regex match).
    pub fn folded_to_original(&self, r: Range<usize>) -> Range<usize> {
        let ascii = self
            .original
            .as_bytes()
            .get(..r.end)
            .is_some_and(<[u8]>::is_ascii);
        if r.start < r.end && ascii {
            return r;
        }
        self.mapped_to_original(r)
    }

    /// [`Normalized::folded_to_original`] through the map.
    fn mapped_to_original(&self, r: Range<usize>) -> Range<usize> {
        let map = self.folded_map();
        let find = |b: usize| map.partition_point(|m| (m.0 as usize) < b);
        let first = find(r.start);
        let last = find(r.end).saturating_sub(1).max(first);
        match (map.get(first), map.get(last)) {
            (Some(a), Some(b)) => a.1 as usize..b.2 as usize,
            _ => 0..0,
        }
    }

    /// Index in `skel` of a byte offset in `skeleton`.
    pub fn skel_at(&self, byte: usize) -> usize {
        self.detail().skel_index.get(byte).copied().unwrap_or(0) as usize
    }
}

/// Steps 1–4 for the whole text; `map` records, per folded char, its byte offset in `folded`
/// and the original char's byte range.
fn fold(text: &str, folded: &mut String, map: &mut Vec<(u32, u32, u32)>) {
    for (at, ch) in text.char_indices() {
        let mut push = |c: char| {
            map.push((folded.len() as u32, at as u32, (at + ch.len_utf8()) as u32));
            folded.push(c);
        };
        if ch.is_ascii() {
            push(ch.to_ascii_lowercase());
            continue;
        }
        match lookup(ch) {
            Some(entry) if entry & DROP != 0 => {}
            Some(entry) if entry & SLOW == 0 => {
                push(char::from_u32(entry & CHAR).unwrap_or(ch));
            }
            None if is_pictograph(ch) => push(ch),
            _ => fold_slow(ch, push),
        }
    }
}

/// The full steps 1–4 for one character.
fn fold_slow(ch: char, mut push: impl FnMut(char)) {
    decompose_compatible(ch, |d| {
        if is_combining_mark(d) || is_format(d) {
            return;
        }
        for l in d.to_lowercase() {
            push(fold_confusable(l));
        }
    });
}

// Table entries: the folded char in the low bits, then flags.
const CHAR: u32 = 0x1F_FFFF;
const ALNUM: u32 = 1 << 24;
const ALPHA: u32 = 1 << 25;
const UPPER: u32 = 1 << 26;
const LOWER: u32 = 1 << 27;
/// Folds to nothing.
const DROP: u32 = 1 << 28;
/// Folds to several characters: take the slow path.
const SLOW: u32 = 1 << 29;
/// An emoji (see [`is_emoji`]).
const EMOJI: u32 = 1 << 30;
/// What [`Stream::other_run`] may do without the general path: a letter (not ASCII) that
/// folds to itself,
const SAME_LETTER: u32 = 1 << 31;
/// a character that folds to a lowercase ASCII letter,
const ASCII_LETTER: u32 = 1 << 23;
/// and a character (not ASCII) that is neither letter nor digit and folds to itself.
const SAME_OTHER: u32 = 1 << 22;

/// Steps 1–4 and the character classes for every character of the Basic Multilingual Plane,
/// computed once: per character, the Unicode tables are binary searches, and a comment in a
/// non-Latin script would otherwise pay several of them per character.
static TABLE: LazyLock<Box<[u32]>> = LazyLock::new(|| {
    (0..0x1_0000u32)
        .map(|u| {
            let Some(c) = char::from_u32(u) else {
                return SLOW;
            };
            // Hangul syllables stay composed, as NFKC keeps them: decomposing them into jamo
            // would only make Korean text three times longer.
            let hangul = (0xAC00..=0xD7A3).contains(&u);
            let mut out = [None; 2];
            let mut n = 0;
            fold_slow(c, |f| {
                if let Some(slot) = out.get_mut(n) {
                    *slot = Some(f);
                }
                n += 1;
            });
            let folded = match (n, out[0]) {
                _ if hangul => Some(c),
                (1, Some(f)) => Some(f),
                _ => None,
            };
            let classes = unicode_classes(c);
            let fast = match folded {
                Some(f) if f == c && !c.is_ascii() => {
                    if classes & ALNUM == 0 {
                        SAME_OTHER
                    } else if classes & ALPHA != 0 {
                        SAME_LETTER
                    } else {
                        0
                    }
                }
                Some(f) if f.is_ascii_lowercase() => ASCII_LETTER,
                _ => 0,
            };
            let entry = match (folded, n) {
                (Some(f), _) => f as u32,
                (None, 0) => DROP,
                _ => SLOW,
            };
            entry | classes | fast | if is_emoji(c) { EMOJI } else { 0 }
        })
        .collect()
});

/// The table entry of a BMP character; `None` above it.
fn lookup(c: char) -> Option<u32> {
    TABLE.get(c as usize).copied()
}

/// The character that begins at byte `at` of valid UTF-8, and its length: what
/// `str::chars` gives, without checking the encoding again.
#[inline]
fn decode_at(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    let lead = u32::from(*bytes.get(at)?);
    let cont = |k: usize| bytes.get(at + k).map(|&b| u32::from(b) & 0x3F);
    let (c, len) = match lead {
        0..=0x7F => (lead, 1),
        0x80..=0xDF => ((lead & 0x1F) << 6 | cont(1)?, 2),
        0xE0..=0xEF => ((lead & 0x0F) << 12 | cont(1)? << 6 | cont(2)?, 3),
        _ => (
            (lead & 0x07) << 18 | cont(1)? << 12 | cont(2)? << 6 | cont(3)?,
            4,
        ),
    };
    Some((char::from_u32(c)?, len))
}

/// Whether a character is (part of) an emoji: what `max_emojis` and `emoji_only` count.
pub(crate) fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F300..=0x1F3FA | 0x1F400..=0x1FAFF | 0x1F000..=0x1F2FF | 0x2600..=0x27BF
        | 0x2B00..=0x2BFF | 0x2300..=0x23FF | 0x3030 | 0x303D | 0x3297 | 0x3299)
}

/// Emoji and pictographs outside the BMP: no letters, no case, nothing to fold.
fn is_pictograph(c: char) -> bool {
    matches!(c as u32, 0x1F300..=0x1FAFF)
}

/// Character classes through the table (`ALNUM | ALPHA | UPPER | LOWER` bits).
#[inline]
pub(crate) fn classes(c: char) -> u32 {
    if c.is_ascii() {
        return ASCII_CLASSES[c as usize];
    }
    classes_non_ascii(c)
}

const ASCII_CLASSES: [u32; 128] = {
    let mut t = [0u32; 128];
    let mut b = 0u8;
    while b < 128 {
        let mut f = 0;
        if b.is_ascii_alphanumeric() {
            f |= ALNUM;
        }
        if b.is_ascii_alphabetic() {
            f |= ALPHA;
        }
        if b.is_ascii_uppercase() {
            f |= UPPER;
        }
        if b.is_ascii_lowercase() {
            f |= LOWER;
        }
        t[b as usize] = f;
        b += 1;
    }
    t
};

fn classes_non_ascii(c: char) -> u32 {
    if let Some(entry) = lookup(c) {
        return entry & (ALNUM | ALPHA | UPPER | LOWER);
    }
    if is_pictograph(c) {
        return 0;
    }
    unicode_classes(c)
}

/// The class bits from the Unicode tables (the slow way, behind the table).
fn unicode_classes(c: char) -> u32 {
    let mut f = 0;
    for (yes, flag) in [
        (c.is_alphanumeric(), ALNUM),
        (c.is_alphabetic(), ALPHA),
        (c.is_uppercase(), UPPER),
        (c.is_lowercase(), LOWER),
    ] {
        if yes {
            f |= flag;
        }
    }
    f
}

#[inline]
pub(crate) fn is_upper(c: char) -> bool {
    classes(c) & UPPER != 0
}

#[inline]
pub(crate) fn is_lower(c: char) -> bool {
    classes(c) & LOWER != 0
}

/// A regex `\\w` character: a letter, digit or `_`.
#[inline]
pub(crate) fn classes_word(c: char) -> bool {
    c == '_' || is_alnum(c)
}

#[inline]
fn is_alnum(c: char) -> bool {
    classes(c) & ALNUM != 0
}

#[inline]
fn is_alpha(c: char) -> bool {
    classes(c) & ALPHA != 0
}

/// Where steps 5–8 put the skeleton: the plain string, or the string with maps for evidence.
trait SkelSink {
    /// A new skeleton char from folded char `at`.
    fn push(&mut self, c: char, at: usize, start_ok: bool, end_ok: bool);
    /// The last skeleton char repeats once more, at folded char `at`.
    fn extend_run(&mut self, at: usize);
    /// Number of skeleton chars so far.
    fn len(&self) -> usize;
    /// Marks a word as `[start, len())`.
    fn word(&mut self, start: usize);
}

/// The skeleton without maps: its text, the characters that repeated, whether letters were
/// joined.
struct Plain {
    /// UTF-8 (see [`Normalized::skeleton`]).
    text: Vec<u8>,
    repeats: Vec<(u32, u16)>,
    joined: bool,
    /// Emoji in the original text.
    emojis: usize,
    /// See [`Normalized::may_have`].
    punctuation: u64,
}

/// A point in a [`Plain`] skeleton to go back to: its length in bytes.
type Mark = usize;

impl Plain {
    fn new(text: Vec<u8>, repeats: Vec<(u32, u16)>) -> Plain {
        Plain {
            text,
            repeats,
            joined: false,
            emojis: 0,
            punctuation: 0,
        }
    }

    #[inline]
    fn add(&mut self, c: char) {
        if c.is_ascii() {
            self.text.push(c as u8);
        } else {
            // Four bytes stored and the unused ones dropped: a copy of the encoded length
            // would be a `memcpy` call.
            let mut bytes = [0; 4];
            let len = c.encode_utf8(&mut bytes).len();
            let at = self.text.len();
            self.text.extend_from_slice(&bytes);
            self.text.truncate(at + len);
        }
    }

    /// The run of ASCII letters and digits `bytes` starts with, written while its end is found
    /// as the skeleton writes them before leet is undone (lowercase, `l` as `i`), repeats
    /// collapsed, continuing after `last`, the word's last character so far (`'\0'` for a new
    /// word). Returns the run's length, the classes of its bytes and the new last character.
    #[inline]
    fn add_alnum_run(&mut self, bytes: &[u8], mut last: char) -> (usize, u8, char) {
        let mut seen = 0;
        for (k, &b) in bytes.iter().enumerate() {
            let class = BYTE[usize::from(b)];
            if class & B_ALNUM == 0 {
                return (k, seen, last);
            }
            seen |= class;
            // An ASCII byte (the table maps letters and digits to letters and digits).
            let c = SKELETON_BYTE[usize::from(b)];
            if u32::from(c) == u32::from(last) {
                self.repeat_at((self.text.len() - 1) as u32);
            } else {
                self.text.push(c);
                last = char::from(c);
            }
        }
        (bytes.len(), seen, last)
    }

    /// The word at the start of `rest` (the rest of the original from a letter or digit) in
    /// one step, without a branch per byte, if it is an ordinary word: 2 to 7 ASCII letters
    /// followed by a plain ASCII separator (so the word ends here and has no digit), no
    /// letter repeated once `l` is written as `i`. Writes the space before it and the word,
    /// and returns its length and whether it has capitals; returns `None` and writes nothing
    /// for any other word.
    #[inline]
    fn add_plain_word(&mut self, rest: &[u8]) -> Option<(usize, bool)> {
        // Past the end reads as NUL, a separator that is not in `rest`.
        let chunk = u64::from_le_bytes(bytes_at::<8>(rest, 0, 0));
        // Per byte (no borrow crosses a byte): the high bit of each byte that is at least `n`,
        // and of each byte that is zero.
        let at_least = |v: u64, n: u8| ((v | HIGH) - ONES * u64::from(n)) & HIGH;
        let zero = |v: u64| !((v | HIGH) - ONES) & HIGH;
        // With the 0x20 bit set, capitals are lowercase and no other ASCII byte becomes a
        // letter. Bytes of other scripts are compared by their value less 0x80, so some lead
        // bytes pass for letters: a continuation byte follows each, which is neither a letter
        // nor a separator, so such a word is turned down.
        let lower = chunk | CASE;
        let letters = at_least(lower, b'a') & !at_least(lower, b'z' + 1);
        let len = ((!letters & HIGH).trailing_zeros() / 8) as usize;
        if !(2..8).contains(&len) || !separator_at(rest, len) {
            return None;
        }
        let in_word = (1u64 << (8 * len)) - 1;
        // `l` as `i`, then a byte equal to the one before it is a repeat.
        let word = lower - (zero(lower ^ (ONES * u64::from(b'l'))) >> 7) * u64::from(b'l' - b'i');
        if zero(word ^ (word << 8)) & in_word != 0 {
            return None;
        }
        // The space and the word in one store (seven letters at most), the rest dropped.
        let at = self.text.len();
        let spaced = if at == 0 {
            word
        } else {
            word << 8 | u64::from(b' ')
        };
        self.text.extend_from_slice(&spaced.to_le_bytes());
        self.text.truncate(at + len + usize::from(at != 0));
        // A capital is a letter without the 0x20 bit.
        Some((len, !chunk & CASE & in_word != 0))
    }

    /// The character at byte `at` repeats once more.
    #[inline]
    fn repeat_at(&mut self, at: u32) {
        match self.repeats.last_mut() {
            Some((i, run)) if *i == at => *run = run.saturating_add(1),
            _ => self.repeats.push((at, 2)),
        }
    }

    /// The last character repeats once more.
    #[inline]
    fn repeat(&mut self) {
        // The last character's first byte is the last one that is not a continuation byte.
        let last = self
            .text
            .iter()
            .rev()
            .position(|&b| b & 0xC0 != 0x80)
            .map_or(0, |k| k + 1);
        self.repeat_at((self.text.len() - last) as u32);
    }

    fn mark(&self) -> Mark {
        self.text.len()
    }

    fn truncate(&mut self, bytes: Mark) {
        self.text.truncate(bytes);
        while self.repeats.last().is_some_and(|r| r.0 as usize >= bytes) {
            self.repeats.pop();
        }
    }
}

impl SkelSink for Plain {
    fn push(&mut self, c: char, at: usize, start_ok: bool, _: bool) {
        self.joined |= start_ok && at != SPACE;
        self.add(c);
    }
    fn extend_run(&mut self, _: usize) {
        self.repeat();
    }
    fn len(&self) -> usize {
        0
    }
    fn word(&mut self, _: usize) {}
}

struct Mapped<'a> {
    map: &'a [(u32, u32, u32)],
    /// Where the last lookup ended: the skeleton visits folded chars in order.
    cursor: usize,
    skeleton: String,
    skel: Vec<SkelChar>,
    skel_index: Vec<u32>,
}

impl Mapped<'_> {
    /// The map entry of the folded char at byte `at`. Lookups come in increasing order, so
    /// a cursor walks the map once instead of a binary search per char.
    fn find(&mut self, at: usize) -> Option<(u32, u32, u32)> {
        if at == SPACE {
            return None;
        }
        if self.map.get(self.cursor).is_some_and(|m| m.0 as usize > at) {
            self.cursor = 0;
        }
        while self
            .map
            .get(self.cursor)
            .is_some_and(|m| (m.0 as usize) < at)
        {
            self.cursor += 1;
        }
        self.map
            .get(self.cursor)
            .filter(|m| m.0 as usize == at)
            .copied()
    }
}

impl SkelSink for Mapped<'_> {
    fn push(&mut self, c: char, at: usize, start_ok: bool, end_ok: bool) {
        for _ in 0..c.len_utf8() {
            self.skel_index.push(self.skel.len() as u32);
        }
        self.skeleton.push(c);
        let orig = self.find(at).map_or((0, 0), |m| (m.1, m.2));
        self.skel.push(SkelChar {
            orig,
            run: 1,
            start_ok,
            end_ok,
        });
    }
    fn extend_run(&mut self, at: usize) {
        let end = self.find(at).map(|m| m.2);
        if let Some(prev) = self.skel.last_mut() {
            prev.run = prev.run.saturating_add(1);
            if let Some(end) = end {
                prev.orig.1 = end;
            }
        }
    }
    fn len(&self) -> usize {
        self.skel.len()
    }
    fn word(&mut self, start: usize) {
        if let Some(first) = self.skel.get_mut(start) {
            first.start_ok = true;
        }
        if let Some(end) = self.skel.last_mut() {
            end.end_ok = true;
        }
    }
}

/// Separator between words; maps to no original text.
const SPACE: usize = usize::MAX;

/// Steps 5–8 over the folded text.
fn skeletonize(folded: &str, sink: &mut impl SkelSink) {
    // 5. words, as byte ranges of `folded`, with their length in chars
    let mut words: Vec<(usize, usize, bool)> = Vec::with_capacity(folded.len() / 4 + 1);
    let mut start: Option<usize> = None;
    let mut chars_in_word = 0usize;
    let next_is_alnum = |i: usize| folded[i + 1..].chars().next().is_some_and(is_alnum);
    for (i, c) in folded.char_indices() {
        let wordy = is_alnum(c)
            || match c {
                // `@` inside a word is a letter; at the start it begins a mention.
                '@' => start.is_some() && next_is_alnum(i),
                // `$` before a letter is an `s` (`$cam`, `ca$h`).
                '$' => next_is_alnum(i),
                _ => false,
            };
        if wordy {
            start.get_or_insert(i);
            chars_in_word += 1;
        } else if let Some(s) = start.take() {
            words.push((s, i, chars_in_word == 1));
            chars_in_word = 0;
        }
    }
    if let Some(s) = start {
        words.push((s, folded.len(), chars_in_word == 1));
    }
    // 6. runs of three or more single-character words become one word
    let mut i = 0;
    while i < words.len() {
        let mut j = i;
        while j < words.len() && words[j].2 {
            j += 1;
        }
        if i > 0 {
            sink.push(' ', SPACE, true, true);
        }
        if j - i >= 3 {
            let joined = words[i..j]
                .iter()
                .filter_map(|w| folded[w.0..].chars().next().map(|c| (w.0, c)));
            emit(joined, true, sink);
            i = j;
        } else {
            let (a, b, _) = words[i];
            emit(
                folded[a..b].char_indices().map(|(k, c)| (a + k, c)),
                false,
                sink,
            );
            i += 1;
        }
    }
}

/// Steps 1–8 in one pass for [`Normalized::new`]: the same result as [`fold`] then
/// [`skeletonize`] into a [`Plain`] sink, but each character is decoded once, ASCII goes
/// through byte tables, and the skeleton is written as the folded text grows. The rare cases
/// that need hindsight (a word with leet digits in it, three single letters in a row) rewrite
/// the end of the skeleton when they are recognised.
///
/// The folded text is written lazily: most of a comment folds to itself (ASCII, but for its
/// capitals, and the letters of other scripts), so such text is left in the original until
/// something else must be written after it or a rewrite must read it, and is then copied in
/// one piece ([`Stream::catch_up`]). A folded offset past the end of `folded` is one in that
/// waiting text.
struct Stream<'t> {
    text: &'t str,
    folded: String,
    /// Original bytes `copied..` (up to where the pass has read) fold to themselves, ASCII
    /// capitals lowercased, and are not in `folded` yet.
    copied: usize,
    /// Text with ASCII capitals was copied: `folded` is lowercased once, at the end (the few
    /// readers before that lowercase what they read). Noted by the word loops, which classify
    /// every letter anyway.
    capitals: bool,
    out: Plain,
    /// Folded byte offset where the current word began, if inside one.
    word: Option<usize>,
    /// Where the current word begins in the skeleton.
    word_at: Mark,
    word_chars: usize,
    /// Folded byte offset just after the current word's last character.
    word_end: usize,
    word_letter: bool,
    /// The word has a character leetspeak would change (a digit, `@`, `$`).
    word_leet: bool,
    /// The last skeleton character of the current word (for collapsing repeats).
    last: char,
    /// `@` or `$` waiting for the next character to know whether it is part of a word, with
    /// its original byte range.
    held: Option<(u8, usize, (u32, u32))>,
    /// The original byte range of the character being processed.
    cur: (u32, u32),
    /// Each word's original byte range, in skeleton order (right only when no letters were
    /// joined).
    spans: Vec<(u32, u32)>,
    /// Single-character words in a row: their folded offsets, and where the first began in
    /// the skeleton.
    singles: Vec<usize>,
    singles_at: Mark,
}

impl<'t> Stream<'t> {
    /// A normaliser for `text`, writing into `spare`'s buffers.
    fn new(text: &'t str, spare: Spare) -> Stream<'t> {
        let len = text.len();
        let Spare {
            mut folded,
            mut skeleton,
            mut repeats,
            mut spans,
            mut singles,
        } = spare;
        folded.clear();
        folded.reserve(len);
        skeleton.clear();
        skeleton.reserve(len);
        repeats.clear();
        // A word and its separator take two bytes at least: never grown.
        spans.clear();
        spans.reserve(len / 2 + 1);
        singles.clear();
        Stream {
            text,
            folded,
            copied: 0,
            capitals: false,
            out: Plain::new(skeleton, repeats),
            word: None,
            word_at: 0,
            word_chars: 0,
            word_end: 0,
            word_letter: false,
            word_leet: false,
            last: '\0',
            held: None,
            cur: (0, 0),
            spans,
            singles,
            singles_at: 0,
        }
    }

    /// Normalises `text`: the folded text, the skeleton, the word spans, and the buffer of
    /// single-character words (to be handed back).
    fn run(mut self) -> (String, Plain, Vec<(u32, u32)>, Vec<usize>) {
        let text = self.text;
        let bytes = text.as_bytes();
        let table: &[u32] = &TABLE;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if BYTE[usize::from(b)] & B_PLAIN != 0 && self.held.is_none() {
                i = self.ascii_stretch(i);
                continue;
            }
            if b.is_ascii() {
                self.cur = (i as u32, i as u32 + 1);
                // Folds to itself (lowercased): left waiting.
                let at = self.folded_at(i);
                self.capitals |= b.is_ascii_uppercase();
                self.ascii(b.to_ascii_lowercase(), at);
                i += 1;
                continue;
            }
            if self.held.is_none() {
                let to = self.other_run(i, table);
                if to != i {
                    i = to;
                    continue;
                }
            }
            let Some((ch, len)) = decode_at(bytes, i) else {
                break;
            };
            self.cur = (i as u32, (i + len) as u32);
            // Written out below (what it folds to): everything before it first.
            self.catch_up(i);
            i += len;
            let entry = table.get(ch as usize).copied();
            // Counted here, where every character is decoded anyway, for `max_emojis`.
            self.out.emojis += match entry {
                Some(entry) => (entry & EMOJI != 0) as usize,
                None => is_emoji(ch) as usize,
            };
            match entry {
                Some(entry) if entry & DROP != 0 => {}
                Some(entry) if entry & SLOW == 0 => {
                    let f = char::from_u32(entry & CHAR).unwrap_or(ch);
                    self.char(f, entry & ALNUM != 0 && f == ch, entry & ALPHA != 0);
                }
                None if is_pictograph(ch) => self.char(ch, false, false),
                _ => fold_slow(ch, |c| {
                    let cl = classes(c);
                    self.char(c, cl & ALNUM != 0, cl & ALPHA != 0)
                }),
            }
            self.copied = i;
        }
        self.release_held(false);
        self.end_word();
        self.end_singles(None);
        self.catch_up(text.len());
        if self.capitals {
            self.folded.make_ascii_lowercase();
        }
        (self.folded, self.out, self.spans, self.singles)
    }

    /// Characters other than ASCII from byte `from` for as long as the table marks them as
    /// common cases (a letter that folds to itself or to an ASCII letter, a character that
    /// folds to nothing, a pictograph or other non-letter that folds to itself): the same
    /// result as [`Stream::char`] for each, without decoding into a `char` and encoding it
    /// again; the characters that fold to themselves are left waiting (see [`Stream`]).
    /// Returns where it stopped (at ASCII, or at a character for the
    /// general path). Nothing may be held (`@`/`$`).
    fn other_run(&mut self, from: usize, table: &[u32]) -> usize {
        let bytes = self.text.as_bytes();
        let mut i = from;
        let mut last = u32::from(self.last);
        while let Some(&lead) = bytes.get(i) {
            if lead < 0x80 {
                break;
            }
            let w = bytes_at::<4>(bytes, i, 0);
            let cont = |k: usize| u32::from(w[k] & 0x3F);
            let (u, len) = if lead < 0xE0 {
                (u32::from(lead & 0x1F) << 6 | cont(1), 2)
            } else if lead < 0xF0 {
                (u32::from(lead & 0x0F) << 12 | cont(1) << 6 | cont(2), 3)
            } else {
                let u = u32::from(lead & 0x07) << 18 | cont(1) << 12 | cont(2) << 6 | cont(3);
                if !(0x1F300..=0x1FAFF).contains(&u) {
                    break;
                }
                // A pictograph (see `is_pictograph`): neither letter nor digit.
                self.out.emojis += char::from_u32(u).is_some_and(is_emoji) as usize;
                if self.word.is_some() {
                    self.set_last(last);
                    self.end_word();
                }
                i += 4;
                continue;
            };
            let Some(&entry) = table.get(u as usize) else {
                break;
            };
            if entry & (SAME_LETTER | ASCII_LETTER | SAME_OTHER | DROP) == 0 {
                break;
            }
            self.out.emojis += (entry & EMOJI != 0) as usize;
            if entry & DROP != 0 {
                self.catch_up(i);
                i += len;
                self.copied = i;
                continue;
            }
            if entry & SAME_OTHER != 0 {
                if self.word.is_some() {
                    self.set_last(last);
                    self.end_word();
                }
                i += len;
                continue;
            }
            let ascii = entry & ASCII_LETTER != 0;
            if ascii {
                // Not copied as it is: everything before it goes first.
                self.catch_up(i);
            }
            // Folded byte offset of this character.
            let at = self.folded_at(i);
            let (c, folded_len) = if ascii { (entry & CHAR, 1) } else { (u, len) };
            // What `Stream::wordy` does, for a letter (no leet to note; `l` is written as `i`
            // through the skeleton table).
            if self.word.is_none() {
                self.cur = (i as u32, (i + len) as u32);
                self.start_word(at);
                last = 0;
            }
            if ascii {
                self.folded.push(char::from(c as u8 & 0x7F));
                self.copied = i + len;
            }
            self.word_chars += 1;
            if self.word_chars == 2 && !self.singles.is_empty() {
                // Not a single letter: the single letters before it end here.
                self.set_last(last);
                self.join_singles(self.word);
                last = u32::from(self.last);
            }
            self.word_end = at + folded_len;
            self.word_letter = true;
            let skel = if ascii {
                u32::from(SKELETON_BYTE[(c & 0x7F) as usize])
            } else {
                c
            };
            if skel == last {
                self.out
                    .repeat_at((self.out.text.len() - folded_len) as u32);
            } else {
                let end = self.out.text.len() + folded_len;
                if ascii {
                    self.out.text.push(skel as u8);
                } else {
                    self.out.text.extend_from_slice(&w);
                    self.out.text.truncate(end);
                }
                last = skel;
            }
            if let Some(span) = self.spans.last_mut() {
                span.1 = (i + len) as u32;
            }
            i += len;
        }
        self.set_last(last);
        i
    }

    /// For [`Stream::other_run`]: stores the word's last character (kept as a number there),
    /// so that the general path sees it.
    #[inline]
    fn set_last(&mut self, last: u32) {
        self.last = char::from_u32(last).unwrap_or(self.last);
    }

    /// The folded offset of original byte `at`, which the pass has reached (so everything
    /// from `copied` to it is waiting, folding to itself).
    #[inline]
    fn folded_at(&self, at: usize) -> usize {
        self.folded.len() + (at - self.copied)
    }

    /// Writes the waiting text up to original byte `to` into `folded` (capitals and all: see
    /// `capitals`).
    #[inline]
    fn catch_up(&mut self, to: usize) {
        if self.copied < to
            && let Some(waiting) = self.text.get(self.copied..to)
        {
            self.folded.push_str(waiting);
        }
        self.copied = to;
    }

    /// Makes `folded` hold its bytes up to `end` (a folded offset the pass has reached).
    fn materialise(&mut self, end: usize) {
        if end > self.folded.len() {
            self.catch_up(self.copied + (end - self.folded.len()));
        }
    }

    /// Makes `folded` hold the character at folded offset `at`.
    fn materialise_char(&mut self, at: usize) {
        if at >= self.folded.len() {
            let from = self.copied + (at - self.folded.len());
            let len = self
                .text
                .get(from..)
                .and_then(|t| t.chars().next())
                .map_or(0, char::len_utf8);
            self.catch_up(from + len);
        }
    }

    /// ASCII text without `@` or `$` from byte `from` (most of a comment): left waiting to be
    /// folded (it folds to itself, lowercased), and written to the skeleton word by word.
    /// Returns where the stretch ends.
    ///
    /// Not inlined into the pass: on its own its loop keeps more of its state in registers
    /// (116 fewer instructions a comment).
    #[inline(never)]
    fn ascii_stretch(&mut self, from: usize) -> usize {
        let bytes = self.text.as_bytes();
        // Folds to itself (lowercased): left waiting.
        let base = self.folded_at(from);
        // The rest of the text: the stretch ends at the first byte that is not plain ASCII,
        // found as a separator (a word's end needs no look past it).
        let stretch = bytes.get(from..).unwrap_or_default();
        let mut i = 0;
        while let Some(&b) = stretch.get(i) {
            if BYTE[usize::from(b)] & B_ALNUM == 0 {
                if BYTE[usize::from(b)] & B_PLAIN == 0 {
                    break;
                }
                self.out.punctuation |= punctuation_bit(b);
                self.end_word();
                i += 1;
                continue;
            }
            let rest = &stretch[i..];
            if self.word.is_some() || self.singles.len() >= 3 {
                // Continuing a word begun before the stretch, or joining single letters: the
                // general path.
                i += self.ascii_word(base + i, from + i, rest);
                continue;
            }
            if let Some((len, capitals)) = self.out.add_plain_word(rest) {
                // Most words: letters only, short, nothing repeated; a whole word at once.
                self.capitals |= capitals;
                self.singles.clear();
                let at = (from + i) as u32;
                self.spans.push((at, at + len as u32));
                // The separator after it (plain, see `add_plain_word`) ends nothing: no word
                // is open.
                if let Some(&sep) = stretch.get(i + len) {
                    self.out.punctuation |= punctuation_bit(sep);
                }
                i += len + 1;
                continue;
            }
            // Any other new word: written as it is scanned (one loop, one mispredicted exit).
            if !self.out.text.is_empty() {
                self.out.add(' ');
            }
            let word_at = self.out.mark();
            let (len, seen, last) = self.out.add_alnum_run(rest, '\0');
            self.capitals |= seen & B_UPPER != 0;
            let at = (from + i) as u32;
            self.spans.push((at, at + len as u32));
            let leet = seen & B_ALPHA != 0 && seen & B_LEET != 0;
            if len >= 2 {
                // Not a single character: fewer than three singles before it stay apart.
                self.singles.clear();
            }
            if len < 2 || !plain_at(rest, len) || leet {
                // A single character (it may be joined), a word that may go on after the
                // stretch, or leet to undo when the word ends: remember the word.
                self.cur = (at, at + len as u32);
                self.word = Some(base + i);
                self.word_at = word_at;
                self.word_chars = len;
                self.word_end = base + i + len;
                self.word_letter = seen & B_ALPHA != 0;
                self.word_leet = seen & B_LEET != 0;
                self.last = last;
            }
            // Otherwise (most words) it ends at a separator in this stretch, with nothing
            // to undo or join, and nothing about it needs remembering.
            i += len;
            // The separator after it (never a letter or digit), taken here when plain: what
            // the loop's first test would do with it, where that test would mispredict.
            if let Some(&sep) = stretch.get(i)
                && BYTE[usize::from(sep)] & B_PLAIN != 0
            {
                self.out.punctuation |= punctuation_bit(sep);
                self.end_word();
                i += 1;
            }
        }
        from + i
    }

    /// The run of ASCII letters and digits at the start of `rest`, at byte `orig` of the
    /// original and folded offset `at` (waiting to be copied): what [`Stream::wordy`] does for
    /// each character, in one loop. Returns the run's length.
    fn ascii_word(&mut self, at: usize, orig: usize, rest: &[u8]) -> usize {
        if self.word.is_none() {
            if rest
                .get(1)
                .is_some_and(|&b| BYTE[usize::from(b)] & B_ALNUM != 0)
            {
                // Not a single character: the singles before it end here.
                self.end_singles(None);
            }
            self.cur = (orig as u32, orig as u32 + 1);
            self.start_word(at);
        } else if self.word_chars == 1 {
            self.end_singles(self.word);
        }
        let (len, seen, last) = self.out.add_alnum_run(rest, self.last);
        self.capitals |= seen & B_UPPER != 0;
        self.last = last;
        self.word_chars += len;
        self.word_end = at + len;
        self.word_letter |= seen & B_ALPHA != 0;
        self.word_leet |= seen & B_LEET != 0;
        self.cur.1 = (orig + len) as u32;
        self.extend_span();
        len
    }

    /// The current word reaches to the end of the character being processed.
    #[inline]
    fn extend_span(&mut self) {
        if let Some(last) = self.spans.last_mut() {
            last.1 = self.cur.1;
        }
    }

    /// One folded ASCII character, at folded offset `at` (written there, or waiting).
    #[inline]
    fn ascii(&mut self, b: u8, at: usize) {
        if self.held.is_some() {
            self.release_held(b.is_ascii_alphanumeric());
        }
        if b.is_ascii_alphanumeric() {
            self.wordy(char::from(b), at, b.is_ascii_alphabetic());
        } else {
            self.out.punctuation |= punctuation_bit(b);
            if b == b'@' || b == b'$' {
                self.held = Some((b, at, self.cur));
            } else {
                self.end_word();
            }
        }
    }

    /// One folded character from a non-ASCII one. `alnum`/`alpha` are its classes, when the
    /// table's classes (of the original character) are known to be the folded character's own.
    fn char(&mut self, c: char, alnum: bool, alpha: bool) {
        if c.is_ascii() {
            // A look-alike folded to ASCII behaves as if typed so (`@`, `$` included).
            let at = self.folded.len();
            self.folded.push(c);
            self.ascii(c as u8, at);
            return;
        }
        let (alnum, alpha) = if alnum {
            (alnum, alpha)
        } else {
            let cl = classes(c);
            (cl & ALNUM != 0, cl & ALPHA != 0)
        };
        if self.held.is_some() {
            self.release_held(alnum);
        }
        let at = self.folded.len();
        self.folded.push(c);
        if alnum {
            self.wordy(c, at, alpha);
        } else {
            self.end_word();
        }
    }

    /// Decides a held `@`/`$` now that the next character is known.
    fn release_held(&mut self, next_alnum: bool) {
        let Some((b, at, orig)) = self.held.take() else {
            return;
        };
        // `@` inside a word is a letter (at the start it begins a mention); `$` before a
        // letter or digit is an `s`.
        let wordy = next_alnum && (b == b'$' || self.word.is_some());
        if wordy {
            let cur = std::mem::replace(&mut self.cur, orig);
            self.wordy(char::from(b), at, false);
            self.cur = cur;
        } else {
            self.end_word();
        }
    }

    #[inline]
    fn start_word(&mut self, at: usize) {
        self.word = Some(at);
        if !self.out.text.is_empty() {
            self.out.add(' ');
        }
        self.word_at = self.out.mark();
        self.spans.push(self.cur);
        self.word_chars = 0;
        self.word_letter = false;
        self.word_leet = false;
        self.last = '\0';
    }

    fn wordy(&mut self, c: char, at: usize, alpha: bool) {
        if self.word.is_none() {
            self.start_word(at);
        }
        self.word_chars += 1;
        if self.word_chars == 2 {
            // Not a single character after all: the singles before it end here.
            self.end_singles(self.word);
        }
        self.word_end = at + c.len_utf8();
        self.word_letter |= alpha;
        let c = l_as_i(c);
        self.word_leet |= matches!(c, '0' | '1' | '3' | '4' | '5' | '7' | '@' | '$');
        if c == self.last {
            self.out.repeat();
        } else {
            self.out.add(c);
            self.last = c;
        }
        self.extend_span();
    }

    #[inline]
    fn end_word(&mut self) {
        if let Some(start) = self.word.take() {
            // Most words need nothing more (the call is for the few that do).
            if (self.word_letter && self.word_leet) || self.word_chars == 1 {
                self.finish_word(start);
            }
        }
    }

    fn finish_word(&mut self, start: usize) {
        if self.word_letter && self.word_leet {
            // Undo leetspeak now that the word is known to have a letter: write it again.
            self.materialise(self.word_end);
            self.out.truncate(self.word_at);
            let folded = std::mem::take(&mut self.folded);
            let chars = folded[start..self.word_end]
                .char_indices()
                .map(|(k, c)| (start + k, c.to_ascii_lowercase()));
            emit(chars, false, &mut self.out);
            self.folded = folded;
        }
        if self.word_chars == 1 {
            if self.singles.is_empty() {
                self.singles_at = self.word_at;
            }
            self.singles.push(start);
        }
    }

    /// Three or more single characters in a row become one word. `current`: the folded
    /// offset of the first character of a word begun after them (already written).
    #[inline]
    fn end_singles(&mut self, current: Option<usize>) {
        if !self.singles.is_empty() {
            self.join_singles(current);
        }
    }

    fn join_singles(&mut self, current: Option<usize>) {
        if self.singles.len() >= 3 {
            if let Some(at) = current.or(self.singles.last().copied()) {
                self.materialise_char(at);
            }
            let folded = std::mem::take(&mut self.folded);
            self.out.truncate(self.singles_at);
            let joined = self.singles.iter().filter_map(|&at| {
                folded[at..]
                    .chars()
                    .next()
                    .map(|c| (at, c.to_ascii_lowercase()))
            });
            emit(joined, true, &mut self.out);
            if let Some(at) = current {
                // Write the current word's first character again after the joined word.
                self.out.add(' ');
                self.word_at = self.out.mark();
                let c = l_as_i(
                    folded[at..]
                        .chars()
                        .next()
                        .unwrap_or(' ')
                        .to_ascii_lowercase(),
                );
                self.out.add(c);
                self.last = c;
            }
            self.folded = folded;
        }
        self.singles.clear();
    }
}

/// The part of [`unleet`] the one-pass normaliser applies as it writes: `l` is always in a
/// word with a letter (itself), so it can be undone before the word is known.
#[inline]
fn l_as_i(c: char) -> char {
    if c == 'l' { 'i' } else { c }
}

/// 7 + 8: one word (chars with their byte offsets in `folded`) into the skeleton: leet undone
/// (if it has a letter), `l` folded into `i`, repeats collapsed into runs.
fn emit(word: impl Iterator<Item = (usize, char)> + Clone, spaced: bool, sink: &mut impl SkelSink) {
    let has_letter = word.clone().any(|(_, c)| is_alpha(c));
    let start = sink.len();
    let mut last: Option<char> = None;
    for (at, c) in word {
        let c = if has_letter { unleet(c) } else { c };
        if last == Some(c) {
            sink.extend_run(at);
        } else {
            sink.push(c, at, spaced, spaced);
            last = Some(c);
        }
    }
    sink.word(start);
}

/// The `N` bytes from `at` (`fill` past the end): one fixed-size load, where a slice of a
/// varying length would be a `memcpy` call.
#[inline]
pub(crate) fn bytes_at<const N: usize>(bytes: &[u8], at: usize, fill: u8) -> [u8; N] {
    match bytes.get(at..).and_then(|r| r.first_chunk::<N>()) {
        Some(w) => *w,
        None => {
            let mut w = [fill; N];
            let rest = bytes.get(at..).unwrap_or_default();
            if let Some(head) = w.get_mut(..rest.len()) {
                head.copy_from_slice(rest);
            }
            w
        }
    }
}

/// A byte's bit in [`Normalized::may_have`]'s set.
#[inline]
fn punctuation_bit(b: u8) -> u64 {
    1 << (b % 64)
}

/// Invisible format characters that spammers put inside words.
fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

/// An ASCII letter or digit as the skeleton writes it before leet is undone: lowercase,
/// `l` as `i`.
const SKELETON_BYTE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = (b as u8).to_ascii_lowercase();
        t[b] = if c == b'l' { b'i' } else { c };
        b += 1;
    }
    t
};

/// Whether byte `at` of `bytes` is there and is ASCII other than `@` and `$` (which wait for
/// the next character).
#[inline]
fn plain_at(bytes: &[u8], at: usize) -> bool {
    bytes
        .get(at)
        .is_some_and(|&b| BYTE[usize::from(b)] & B_PLAIN != 0)
}

/// Whether byte `at` of `bytes` is there and is a plain separator: ASCII other than letters,
/// digits, `@` and `$`.
#[inline]
fn separator_at(bytes: &[u8], at: usize) -> bool {
    bytes
        .get(at)
        .is_some_and(|&b| BYTE[usize::from(b)] & (B_PLAIN | B_ALNUM) == B_PLAIN)
}

/// Eight bytes at a time: a one in every byte, and every byte's high bit.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = ONES * 0x80;
/// Every byte's 0x20 bit: set in ASCII lowercase letters, clear in capitals.
const CASE: u64 = ONES * 0x20;

/// ASCII classes for the byte loops: a letter or digit, a letter, a digit leetspeak uses.
const BYTE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            t[b] |= B_ALNUM;
        }
        if c.is_ascii_alphabetic() {
            t[b] |= B_ALPHA;
        }
        if matches!(c, b'0' | b'1' | b'3' | b'4' | b'5' | b'7') {
            t[b] |= B_LEET;
        }
        if c != b'@' && c != b'$' {
            t[b] |= B_PLAIN;
        }
        if c.is_ascii_uppercase() {
            t[b] |= B_UPPER;
        }
        b += 1;
    }
    t
};
const B_ALNUM: u8 = 1;
const B_ALPHA: u8 = 2;
const B_LEET: u8 = 4;
/// ASCII other than `@` and `$` (which wait for the next character).
const B_PLAIN: u8 = 8;
const B_UPPER: u8 = 16;

/// Leetspeak inside a word that has letters; `l` joins `i` and `1`.
pub(crate) fn unleet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | 'l' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        other => other,
    }
}

/// Folds a lowercase character that looks like a Latin letter to that letter.
pub fn fold_confusable(c: char) -> char {
    match c {
        // Cyrillic
        'а' | 'ӑ' | 'ӓ' => 'a',
        'в' | 'ь' | 'ъ' => 'b',
        'с' | 'ҫ' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' | 'є' | 'ҽ' => 'e',
        'һ' | 'н' | 'ћ' => 'h',
        'і' | 'ї' | 'ӏ' => 'i',
        'ј' => 'j',
        'к' | 'ҝ' => 'k',
        'м' => 'm',
        'п' | 'ո' => 'n',
        'о' | 'ӧ' | 'ө' => 'o',
        'р' => 'p',
        'ԛ' => 'q',
        'г' => 'r',
        'ѕ' => 's',
        'т' => 't',
        'ц' | 'ս' => 'u',
        'ѵ' => 'v',
        'ԝ' | 'ш' | 'щ' => 'w',
        'х' | 'ҳ' => 'x',
        'у' | 'ү' | 'ў' => 'y',
        // Greek
        'α' | 'ά' => 'a',
        'β' => 'b',
        'ε' | 'έ' => 'e',
        'η' | 'ή' => 'n',
        'ι' | 'ί' | 'ϊ' => 'i',
        'κ' => 'k',
        'μ' => 'u',
        'ν' => 'v',
        'ο' | 'ό' | 'σ' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' | 'ύ' => 'u',
        'χ' => 'x',
        'ω' | 'ώ' => 'w',
        'γ' => 'y',
        'ς' => 'c',
        'ζ' => 'z',
        // Latin small capitals and other look-alikes
        'ᴀ' | 'ɑ' | 'æ' => 'a',
        'ʙ' => 'b',
        'ᴄ' | '¢' | 'ç' => 'c',
        'ᴅ' | 'đ' | 'ð' => 'd',
        'ᴇ' | '€' | 'ə' => 'e',
        'ꜰ' | 'ƒ' => 'f',
        'ɢ' | 'ɡ' => 'g',
        'ʜ' | 'ħ' => 'h',
        'ɪ' | 'ı' | 'ɩ' => 'i',
        'ᴊ' | 'ȷ' => 'j',
        'ᴋ' => 'k',
        'ʟ' | 'ł' | '£' => 'l',
        'ᴍ' => 'm',
        'ɴ' => 'n',
        'ᴏ' | 'ø' | 'ɵ' => 'o',
        'ᴘ' => 'p',
        'ʀ' => 'r',
        'ꜱ' | 'ß' => 's',
        'ᴛ' => 't',
        'ᴜ' => 'u',
        'ᴠ' => 'v',
        'ᴡ' => 'w',
        'ʏ' | '¥' => 'y',
        'ᴢ' => 'z',
        // Regional indicators 🇦..🇿 used as letters.
        '\u{1F1E6}'..='\u{1F1FF}' => char::from_u32(c as u32 - 0x1F1E6 + 'a' as u32).unwrap_or(c),
        other => other,
    }
}

/// A word or phrase pattern in skeleton form.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub skeleton: String,
    pub runs: Vec<u16>,
    /// The letters that repeat: (byte offset in `skeleton`, times).
    repeats: Vec<(usize, u16)>,
}

impl Pattern {
    pub fn new(word: &str) -> Pattern {
        let n = Normalized::new(word);
        let runs: Vec<u16> = n.skel().iter().map(|s| s.run).collect();
        let repeats = n
            .skeleton_str()
            .char_indices()
            .zip(&runs)
            .filter(|(_, run)| **run > 1)
            .map(|((at, _), run)| (at, *run))
            .collect();
        Pattern {
            runs,
            repeats,
            skeleton: n.skeleton_str().to_string(),
        }
    }

    /// Whether an occurrence of this pattern's skeleton at `bytes` of `n.skeleton` is a real
    /// match: on word boundaries, with every run at least as long. Returns the original span.
    pub fn verify(&self, n: &Normalized<'_>, bytes: Range<usize>) -> Option<Range<usize>> {
        if self.hits(n, bytes.clone()) {
            self.span(n, bytes)
        } else {
            None
        }
    }

    /// [`Pattern::verify`] without the span. The maps are built only when joined letters or
    /// a repeated letter in the pattern need them.
    pub fn hits(&self, n: &Normalized<'_>, bytes: Range<usize>) -> bool {
        if !n.joined {
            // Without joined letters a boundary is a space or an end.
            let sk = n.skeleton();
            let start_ok = bytes.start == 0 || sk.get(bytes.start - 1) == Some(&b' ');
            let end_ok = bytes.end >= sk.len() || sk.get(bytes.end) == Some(&b' ');
            if !start_ok || !end_ok {
                return false;
            }
            // The hit is this pattern's skeleton, byte for byte: its repeated letters sit at
            // the same offsets from the hit's start.
            return self
                .repeats
                .iter()
                .all(|(at, want)| n.run_at(bytes.start + at) >= *want);
        }
        let first = n.skel_at(bytes.start);
        let Some(last) = self.runs.len().checked_sub(1).map(|l| first + l) else {
            return false;
        };
        let skel = n.skel();
        let (Some(a), Some(b)) = (skel.get(first), skel.get(last)) else {
            return false;
        };
        a.start_ok
            && b.end_ok
            && self
                .runs
                .iter()
                .zip(&skel[first..=last])
                .all(|(want, got)| got.run >= *want)
    }

    /// The original span of a hit at `bytes` of `n.skeleton`.
    pub fn span(&self, n: &Normalized<'_>, bytes: Range<usize>) -> Option<Range<usize>> {
        if !n.joined {
            return n.word_span(bytes);
        }
        let first = n.skel_at(bytes.start);
        let last = first + self.runs.len().checked_sub(1)?;
        let skel = n.skel();
        let (a, b) = (skel.get(first)?, skel.get(last)?);
        Some(a.orig.0 as usize..b.orig.1 as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The ASCII shortcut gives the range the map gives, for every range of whole
        /// folded characters.
        #[test]
        fn folded_ranges_map_to_the_original_with_or_without_the_map(
            text in "[a-zA-Z .:/@]{0,6}[éＡ😍ß\u{301}\u{200b}İ]{0,2}[a-zA-Z .]{0,6}",
        ) {
            let n = Normalized::new(&text);
            let ends: Vec<usize> = n.folded.char_indices().map(|(at, _)| at).chain([n.folded.len()]).collect();
            for (i, &start) in ends.iter().enumerate() {
                for &end in &ends[i..] {
                    proptest::prop_assert_eq!(
                        n.folded_to_original(start..end),
                        n.mapped_to_original(start..end),
                        "{:?} {}..{}", text, start, end
                    );
                }
            }
        }
    }

    #[test]
    fn folded_and_skeleton_forms() {
        let cases = [
            ("FOREX!", "forex!", "forex"),
            ("Crème  Brûlée", "creme  brulee", "creme bruie"),
            ("ＦＯＲＥＸ", "forex", "forex"),
            ("dm   me... to-earn", "dm   me... to-earn", "dm me to earn"),
            ("𝓬𝓻𝔂𝓹𝓽𝓸", "crypto", "crypto"),
            ("c r y p t 0", "c r y p t 0", "crypto"),
            ("cr¥pto", "crypto", "crypto"),
            ("wh@tsapp me", "wh@tsapp me", "whatsap me"),
            ("f.r.e.e", "f.r.e.e", "fre"),
            ("freeeee", "freeeee", "fre"),
            ("сrурtо", "crypto", "crypto"),
            ("ᴄʀʏᴘᴛᴏ", "crypto", "crypto"),
            ("ⓒⓡⓨⓟⓣⓞ", "crypto", "crypto"),
            ("fr\u{200B}ee", "free", "fre"),
            ("$cam 2024", "$cam 2024", "scam 2024"),
            ("@bob hi", "@bob hi", "bob hi"),
            // Single letters on both sides of a non-ASCII one are joined across it.
            ("so a b ç d", "so a b c d", "so abcd"),
            ("x y, Ok!! z", "x y, ok!! z", "x y ok z"),
            ("@carla_m ok", "@carla_m ok", "caria m ok"),
            // A long ASCII stretch, with a run of letters.
            (
                "one two three four five six seven eight nine ten eleven twelvvvve",
                "one two three four five six seven eight nine ten eleven twelvvvve",
                "one two thre four five six seven eight nine ten eieven tweive",
            ),
            ("", "", ""),
        ];
        for (input, folded, skeleton) in cases {
            let n = Normalized::new(input);
            assert_eq!(n.folded, folded, "{input}");
            assert_eq!(n.skeleton_str(), skeleton, "{input}");
        }
    }

    /// Fixed-size reads from any offset of texts shorter than, as long as and longer than
    /// the read: the text's own bytes, then the fill.
    #[test]
    fn bytes_read_past_the_end_are_the_fill() {
        for text in [
            "",
            "a",
            "abc",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "abcdefghijklmnopq",
        ] {
            for at in 0..=text.len() + 1 {
                let mut want = *b"________";
                for (w, &b) in want
                    .iter_mut()
                    .zip(text.as_bytes().get(at..).unwrap_or_default())
                {
                    *w = b;
                }
                assert_eq!(
                    bytes_at::<8>(text.as_bytes(), at, b'_'),
                    want,
                    "{text:?} {at}"
                );
                assert_eq!(
                    bytes_at::<4>(text.as_bytes(), at, b'_'),
                    want[..4],
                    "{text:?} {at}"
                );
            }
        }
    }

    /// Ordinary words (read eight bytes at a time) right before characters of other scripts
    /// whose bytes the eight-byte test takes for letters, capitals or digits (`ᰰ` is E1 B0
    /// B0, `ö` C3 B6, `😍` F0 9F 98 8D), and before `@` and `$`: the same as the long way.
    #[test]
    fn ordinary_words_next_to_other_scripts() {
        for next in ["ᰰ", "ö", "Ö", "😍", "ー", "é", "@", "$", "ᰰ ", "ö.", "😍x"] {
            for word in ["ab", "Love", "abcdefg", "ABCDEF"] {
                for text in [format!("{word}{next}"), format!("x {word}{next} y")] {
                    assert_eq!(
                        Normalized::new(&text).plain_parts(),
                        Normalized::the_long_way(&text).plain_parts(),
                        "{text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn spans_map_back_to_the_original() {
        let text = "Get ＦＲＥＥ stuff";
        let n = Normalized::new(text);
        let p = Pattern::new("free");
        let at = n.skeleton_str().find(&p.skeleton).unwrap_or(0);
        let span = p.verify(&n, at..at + p.skeleton.len());
        assert_eq!(span.map(|r| &text[r]), Some("ＦＲＥＥ"));
        let f = n.folded.find("stuff").unwrap_or(0);
        assert_eq!(&text[n.folded_to_original(f..f + 5)], "stuff");
    }
}
