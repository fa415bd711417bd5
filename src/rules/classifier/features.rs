//! The classifier's features: what a comment looks like to the model, as hashed keys in four
//! blocks. One function ([`extract`]) serves training, scoring and explaining: it hands each
//! feature's hash to a [`Sink`], with a closure that names it (called only by explanations).
//!
//! - **chars**: character n-grams of the normalised skeleton with a space at each end (the
//!   skeleton is the rule engine's: `𝓬𝓻𝔂𝓹𝓽𝓸`, `cr¥pto`, `c r y p t 0` all read `crypto`);
//! - **words**: the skeleton's words and word pairs, and each emoji as a word of its own;
//! - **handles**: character n-grams of the parts of each @mention and #hashtag (`earn`,
//!   `with`, `grace`, `fx` in `@earn_with_grace.fx`): scam testimonials name made-up handles;
//! - **signals**: what the detectors see (links and their domains, contact kinds, mentions,
//!   hashtags, emoji, numbers, currency, length, capitals), as indicator keys.
//!
//! The hash is fixed by the model file's format version: a key's bucket must not move between
//! the build that trained a model and the build that serves it.
//!
//! Whole on purpose: training, scoring and explaining must hash every feature the same way.

use super::super::detect::{self, ContactKind, Links};
use super::super::normalize::{Normalized, classes_word};

/// The feature blocks. Each is normalised on its own (so one long block cannot drown the
/// others) and scaled by its weight in [`Settings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    Chars = 0,
    Words = 1,
    Handles = 2,
    Signals = 3,
}

impl Block {
    pub const ALL: [Block; 4] = [Block::Chars, Block::Words, Block::Handles, Block::Signals];

    pub fn as_str(self) -> &'static str {
        match self {
            Block::Chars => "chars",
            Block::Words => "words",
            Block::Handles => "handles",
            Block::Signals => "signals",
        }
    }

    fn seed(self) -> u64 {
        // Distinct odd constants: the same text in two blocks is two features.
        match self {
            Block::Chars => 0x243F_6A88_85A3_08D3,
            Block::Words => 0x1319_8A2E_0370_7345,
            Block::Handles => 0xA409_3822_299F_31D1,
            Block::Signals => 0x082E_FA98_EC4E_6C89,
        }
    }
}

/// How a model turns a comment into features; stored in the model file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// The hash table has `1 << hash_bits` buckets.
    pub hash_bits: u8,
    /// Character n-grams of the skeleton, `char_min..=char_max` characters long.
    pub char_min: u8,
    pub char_max: u8,
    /// Character n-grams of handle parts.
    pub handle_min: u8,
    pub handle_max: u8,
    /// Word pairs as well as single words.
    pub word_pairs: bool,
    /// Each block's scale, in [`Block`] order.
    pub weights: [f32; 4],
    /// Which features there are: 1, the first release's; 2 adds the signals that carry
    /// across languages and scripts ([`cross_script`]); 3 finds the same signals in one pass
    /// over the lead bytes and in the words already hashed ([`cross_script_3`]), which costs
    /// a quarter of the work per comment. The model file's format version: a model is scored
    /// with the features it was trained with.
    pub feature_set: u8,
}

/// The newest feature set, which training uses.
pub const FEATURE_SET: u8 = 3;

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            hash_bits: 18,
            char_min: 3,
            char_max: 3,
            handle_min: 3,
            handle_max: 3,
            word_pairs: true,
            weights: [0.5, 1.5, 1.5, 0.3],
            feature_set: FEATURE_SET,
        }
    }
}

impl Settings {
    pub fn buckets(&self) -> usize {
        1usize << self.hash_bits
    }

    /// The bucket of a feature hash.
    #[inline]
    pub fn bucket(&self, hash: u64) -> usize {
        // Every feature hash ends with a multiplication, whose top bits depend on every bit
        // mixed in: they are the bucket.
        (hash >> (64 - u32::from(self.hash_bits))) as usize
    }

    /// What is wrong with these settings, if anything (a model file could hold anything).
    pub fn problem(&self) -> Option<String> {
        if !(10..=24).contains(&self.hash_bits) {
            return Some(format!("hash bits {} outside 10..=24", self.hash_bits));
        }
        let range = |min: u8, max: u8| (1..=8).contains(&min) && (min..=8).contains(&max);
        if !range(self.char_min, self.char_max) || !range(self.handle_min, self.handle_max) {
            return Some("n-gram lengths outside 1..=8".into());
        }
        if !(1..=FEATURE_SET).contains(&self.feature_set) {
            return Some(format!(
                "feature set {} outside 1..={FEATURE_SET}",
                self.feature_set
            ));
        }
        if self.weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Some("block weights must be finite and not negative".into());
        }
        None
    }
}

/// One step of the feature hash (FxHash's mix, 64-bit): fixed here, as the format needs.
#[inline]
fn mix(h: u64, x: u64) -> u64 {
    (h.rotate_left(5) ^ x).wrapping_mul(0x517C_C1B7_2722_0A95)
}

/// A byte string's hash: eight bytes (little-endian, the last chunk zero-padded) per step,
/// then the length, so `a` and `a\0` differ. Inlined: a signal's name is a literal, and its
/// hash is then computed once, when compiling.
#[inline(always)]
fn mix_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = mix(h, u64::from_le_bytes(word));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // Byte by byte: a copy of a variable length would be a call to memcpy.
        let word = rest
            .iter()
            .enumerate()
            .fold(0u64, |w, (i, &b)| w | u64::from(b) << (8 * i));
        h = mix(h, word);
    }
    mix(h, bytes.len() as u64)
}

/// Where features go: a hash for each, and a way to name it that only explanations call.
pub trait Sink {
    fn add(&mut self, block: Block, hash: u64, name: impl FnOnce() -> String);

    /// Whether the names are read (explanations); scoring and training only sum hashes.
    fn names_wanted(&self) -> bool {
        true
    }

    /// Many features of one block at once; `name(i)` names `hashes[i]`. The scoring sink sums
    /// them in one tight loop (its sums stay in registers, and the table loads, whose
    /// addresses are all known, overlap).
    fn add_all(&mut self, block: Block, hashes: &[u64], name: impl Fn(usize) -> String) {
        for (i, &h) in hashes.iter().enumerate() {
            self.add(block, h, || name(i));
        }
    }
}

/// Buffers a thread reuses from one comment to the next, as the normaliser does: the
/// padded skeleton, the handle parts and the links.
#[derive(Default)]
struct Scratch {
    hashes: Vec<u64>,
    bytes: Vec<u8>,
    chars: Vec<char>,
    parts: Vec<char>,
    links: Links,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// A buffer larger than this is freed, not kept: one long comment should not pin memory.
const SCRATCH_MAX: usize = 16 * 1024;

/// Every feature of one comment. `text` is the comment as written; `n` its normalised forms.
pub fn extract(settings: &Settings, text: &str, n: &Normalized<'_>, sink: &mut impl Sink) {
    extract_with_links(settings, text, n, None, sink);
}

/// [`extract`], given the comment's links when the caller found them already (the rule
/// engine's scan: [`detect::links_into`] of the same normalised text).
pub fn extract_with_links(
    settings: &Settings,
    text: &str,
    n: &Normalized<'_>,
    links: Option<&Links>,
    sink: &mut impl Sink,
) {
    let mut scratch: Scratch = super::super::take_spare(&SCRATCH);
    let skeleton = n.skeleton();
    if skeleton.is_ascii() {
        let padded = &mut scratch.bytes;
        padded.clear();
        padded.push(b' ');
        padded.extend_from_slice(skeleton);
        padded.push(b' ');
        let range = (settings.char_min, settings.char_max);
        ngrams(Block::Chars, range, padded, &mut scratch.hashes, sink);
    } else if (settings.char_min, settings.char_max) == (3, 3) {
        char_trigrams(skeleton, &mut scratch.hashes, sink);
    } else {
        let padded = &mut scratch.chars;
        padded.clear();
        padded.push(' ');
        padded.extend(n.skeleton_str().chars());
        padded.push(' ');
        let range = (settings.char_min, settings.char_max);
        ngrams(Block::Chars, range, padded, &mut scratch.hashes, sink);
    }
    let seen = words(settings, skeleton, text, &mut scratch.hashes, sink);
    // The other blocks through the English twins (see [`Twin`]): a no-op but for English
    // comments in feature set 3.
    let sink = &mut Twin {
        sink,
        english: seen.english,
    };
    let counts = AsciiCounts::of(text);
    // Numbers are read from the folded text, where invisible characters inside them are gone
    // and other digits are ASCII; currency signs (which folding turns into letters, `€` → `e`)
    // from the text as written.
    let digits = n.folded.len() != text.len() || counts.digits > 0;
    let amounts = Amounts {
        longest: if digits { numbers(&n.folded, sink) } else { 0 },
        currency: has_currency(text),
    };
    let handles = handles(settings, &n.folded, &mut scratch, sink);
    let links = match links {
        Some(links) => links,
        None => {
            detect::links_into(n, None, &mut scratch.links);
            &scratch.links
        }
    };
    let messenger_link = signals(n, &handles, &amounts, &counts, links, sink);
    if counts.mostly_capitals() {
        signal(sink, "mostly capitals", ALONE);
    }
    match settings.feature_set {
        2 => cross_script(n, text, amounts.currency, &counts, sink),
        3.. => {
            let messenger = seen.messenger || messenger_link;
            cross_script_3(n, text, amounts.currency, &counts, messenger, sink);
        }
        _ => {}
    }
    if scratch.bytes.capacity() <= SCRATCH_MAX
        && scratch.chars.capacity() <= SCRATCH_MAX
        && scratch.hashes.capacity() <= SCRATCH_MAX
    {
        super::super::keep_spare(&SCRATCH, |kept| *kept = scratch);
    }
}

/// A character of the skeleton, as a byte (ASCII) or a `char`.
trait Unit: Copy {
    fn code(self) -> u64;
    fn show(units: &[Self]) -> String;
}

impl Unit for u8 {
    fn code(self) -> u64 {
        u64::from(self)
    }
    fn show(units: &[u8]) -> String {
        String::from_utf8_lossy(units).into_owned()
    }
}

impl Unit for char {
    fn code(self) -> u64 {
        u64::from(u32::from(self))
    }
    fn show(units: &[char]) -> String {
        units.iter().collect()
    }
}

/// An n-gram's hash: its first three characters (or fewer) packed into one word, 21 bits
/// each (every code point fits), mixed once with a seed for that many; then one mix per
/// further character. A trigram costs one multiplication, and sliding the packed word along
/// the text makes every trigram's from the last. ([`ngrams`] computes it in place; this is
/// the definition its test holds it to.)
#[cfg(test)]
fn ngram_hash<U: Unit>(seed: u64, units: &[U]) -> u64 {
    let head = units.len().min(3);
    let packed = units[..head]
        .iter()
        .enumerate()
        .fold(0u64, |p, (i, u)| p | u.code() << (21 * i));
    let mut h = mix(seed.wrapping_add(head as u64), packed);
    for u in &units[head..] {
        h = mix(h, u.code());
    }
    h
}

/// N-grams of `padded` (text with a space before and after, so that word starts and ends
/// are features), `min..=max` long, hashed by [`ngram_hash`]: first every hash into
/// `hashes`, then all of them to the sink.
#[inline(never)]
fn ngrams<U: Unit>(
    block: Block,
    (min, max): (u8, u8),
    padded: &[U],
    hashes: &mut Vec<u64>,
    sink: &mut impl Sink,
) {
    let (min, max) = (usize::from(min), usize::from(max));
    let len = padded.len();
    // Sized first and written by index: a push per n-gram would store the length each time.
    let count = (min..=max).map(|size| len.saturating_sub(size - 1)).sum();
    hashes.clear();
    hashes.resize(count, 0);
    if (min, max) == (3, 3) {
        // Trigrams only (the default): the packed window slides one character a step.
        let seed = block.seed().wrapping_add(3);
        let mut packed = 0u64;
        for (i, unit) in padded.iter().enumerate() {
            packed = (packed >> 21) | unit.code() << 42;
            if let Some(slot) = i.checked_sub(2).and_then(|k| hashes.get_mut(k)) {
                *slot = mix(seed, packed);
            }
        }
    } else {
        // Each start's n-grams as they grow, as `ngram_hash` defines them.
        let mut k = 0;
        for start in 0..len {
            let window = &padded[start..len.min(start + max)];
            let (mut packed, mut h) = (0u64, 0u64);
            for (i, unit) in window.iter().enumerate() {
                if i < 3 {
                    packed |= unit.code() << (21 * i);
                    // Shorter heads are mixed only when they are n-grams themselves.
                    if i + 1 >= min.min(3) {
                        h = mix(block.seed().wrapping_add(i as u64 + 1), packed);
                    }
                } else {
                    h = mix(h, unit.code());
                }
                if i + 1 >= min {
                    if let Some(slot) = hashes.get_mut(k) {
                        *slot = h;
                    }
                    k += 1;
                }
            }
        }
    }
    let what = match block {
        Block::Handles => "handle chars",
        _ => "chars",
    };
    sink.add_all(block, hashes, |i| {
        // The i-th n-gram, counted the way they were made (explanations only).
        let mut k = 0;
        for start in 0..padded.len() {
            for size in min..=max.min(padded.len() - start) {
                if k == i {
                    return format!("{what} {:?}", U::show(&padded[start..start + size]));
                }
                k += 1;
            }
        }
        String::new()
    });
}

/// [`ngrams`]' trigrams of a skeleton with other characters than ASCII, read straight from
/// its bytes (decoding only the non-ASCII characters): copying the characters out first cost
/// as much as hashing them, and most of such a skeleton is still ASCII. The skeleton is
/// UTF-8 by construction, so it is decoded without being checked first (a check was a pass
/// of its own); a sequence cut short ends the text. The padded text has as many trigrams as
/// the skeleton has characters, so they are written by index into room for one per byte,
/// ASCII runs in a loop of their own.
#[inline(never)]
fn char_trigrams(skeleton: &[u8], hashes: &mut Vec<u64>, sink: &mut impl Sink) {
    let seed = Block::Chars.seed().wrapping_add(3);
    let bytes = skeleton;
    hashes.clear();
    hashes.resize(bytes.len(), 0);
    let out = hashes.as_mut_slice();
    // The leading space, then the first character: no trigram is complete before the second.
    let mut packed = u64::from(b' ') << 42;
    let first = match bytes.first() {
        None => None,
        Some(&b) if b.is_ascii() => Some((u64::from(b), 1)),
        Some(_) => decode_utf8(bytes, 0),
    };
    let mut k = 0;
    if let Some((code, len)) = first {
        packed = (packed >> 21) | code << 42;
        let mut i = len;
        loop {
            while let Some(&b) = bytes.get(i).filter(|b| b.is_ascii()) {
                packed = (packed >> 21) | u64::from(b) << 42;
                if let Some(slot) = out.get_mut(k) {
                    *slot = mix(seed, packed);
                }
                k += 1;
                i += 1;
            }
            let Some((code, len)) = decode_utf8(bytes, i) else {
                break;
            };
            packed = (packed >> 21) | code << 42;
            if let Some(slot) = out.get_mut(k) {
                *slot = mix(seed, packed);
            }
            k += 1;
            i += len;
        }
        // The trailing space.
        packed = (packed >> 21) | u64::from(b' ') << 42;
        if let Some(slot) = out.get_mut(k) {
            *slot = mix(seed, packed);
        }
        k += 1;
    }
    hashes.truncate(k);
    sink.add_all(Block::Chars, hashes, |i| {
        let text = String::from_utf8_lossy(skeleton);
        let padded = std::iter::once(' ').chain(text.chars()).chain([' ']);
        let gram: String = padded.skip(i).take(3).collect();
        format!("chars {gram:?}")
    });
}

/// The code point of the multi-byte UTF-8 sequence at `at`, and its length (none if cut
/// short). Continuation bytes are not checked: the caller's text is valid UTF-8.
#[inline]
fn decode_utf8(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let lead = *bytes.get(at)?;
    let (len, bits) = match lead {
        0xC0..=0xDF => (2, lead & 0x1F),
        0xE0..=0xEF => (3, lead & 0x0F),
        _ => (4, lead & 0x07),
    };
    let rest = bytes.get(at + 1..at + len)?;
    let code = rest
        .iter()
        .fold(u64::from(bits), |c, b| (c << 6) | u64::from(b & 0x3F));
    Some((code, len))
}

/// What [`words`] saw, for the other blocks (feature set 3).
#[derive(Default)]
struct WordsSeen {
    /// A word names a messaging app.
    messenger: bool,
    /// A quarter of the words are English's commonest.
    english: bool,
}

/// The skeleton's words and pairs of neighbouring words, and the emoji of the original;
/// in feature set 3, an English comment's also as twins (see [`Twin`]).
fn words(
    settings: &Settings,
    skeleton: &[u8],
    text: &str,
    hashes: &mut Vec<u64>,
    sink: &mut impl Sink,
) -> WordsSeen {
    let pair_seed = Block::Words.seed().rotate_left(17);
    hashes.clear();
    let lists = (settings.feature_set >= 3)
        .then(|| WordList::messengers().zip(WordList::english()))
        .flatten();
    let mut seen = WordsSeen::default();
    let (mut count, mut common) = (0usize, 0usize);
    let mut previous: Option<u64> = None;
    for word in skeleton_words(skeleton) {
        let h = mix_bytes(Block::Words.seed(), word);
        hashes.push(h);
        if settings.word_pairs
            && let Some(ph) = previous
        {
            hashes.push(mix(mix(pair_seed, ph), h));
        }
        if let Some((apps, english)) = lists {
            seen.messenger |= apps.holds(word);
            common += usize::from(english.holds(word));
        }
        count += 1;
        previous = Some(h);
    }
    seen.english = common > 0 && common * 4 >= count;
    let plain = hashes.len();
    if seen.english {
        hashes.extend_from_within(..);
        for h in &mut hashes[plain..] {
            *h = mix(*h, ENGLISH);
        }
    }
    sink.add_all(Block::Words, hashes, |i| {
        if i >= plain {
            return format!("{} (English)", word_name(settings, skeleton, i - plain));
        }
        word_name(settings, skeleton, i)
    });
    let mut sink = Twin {
        sink,
        english: seen.english,
    };
    for c in emoji(text) {
        let h = mix(Block::Words.seed() ^ 0x0E, u64::from(u32::from(c)));
        sink.add(Block::Words, h, || format!("emoji {c}"));
    }
    seen
}

/// The name of the i-th word feature, counted the way [`words`] makes them (explanations
/// only).
fn word_name(settings: &Settings, skeleton: &[u8], i: usize) -> String {
    let mut k = 0;
    let mut before: Option<&[u8]> = None;
    for word in skeleton_words(skeleton) {
        let show = |w: &[u8]| String::from_utf8_lossy(w).into_owned();
        if k == i {
            return format!("word {:?}", show(word));
        }
        k += 1;
        if let Some(b) = before.filter(|_| settings.word_pairs) {
            if k == i {
                return format!("words \"{} {}\"", show(b), show(word));
            }
            k += 1;
        }
        before = Some(word);
    }
    String::new()
}

/// The words of the skeleton (separated by single spaces).
fn skeleton_words(skeleton: &[u8]) -> impl Iterator<Item = &[u8]> {
    skeleton.split(|&b| b == b' ').filter(|w| !w.is_empty())
}

/// Money symbols: a number next to one of these is an amount.
fn is_currency(c: char) -> bool {
    matches!(c, '$' | '€' | '£' | '¥' | '₹' | '₦' | '₿' | '₱')
}

/// A currency sign anywhere: `$`, or at a lead byte of the others (C2: £ ¥; E2: € ₹ ₦ ₿ ₱).
fn has_currency(text: &str) -> bool {
    memchr::memchr3_iter(b'$', 0xC2, 0xE2, text.as_bytes()).any(|at| {
        text.get(at..)
            .and_then(|t| t.chars().next())
            .is_some_and(is_currency)
    })
}

/// What [`numbers`] saw, for the signals.
struct Amounts {
    /// Digits in the longest number.
    longest: usize,
    /// A currency sign anywhere in the text.
    currency: bool,
}

/// Each number of the folded text as its shape (`$30k` → `$99k`, `$4,000` → `$9,999`): the
/// skeleton reads digits next to letters as leetspeak (`30k` → `eok`), which says nothing
/// about an amount. Digits grouped by spaces, commas or dots are one number; a `$` before
/// and a `k`/`m` after are kept. Returns the digits of the longest.
fn numbers(folded: &str, sink: &mut impl Sink) -> usize {
    let text = folded;
    let bytes = text.as_bytes();
    let mut longest = 0;
    let mut shape = String::new();
    let mut i = 0;
    while let Some(at) = next_digit(bytes, i) {
        i = at;
        shape.clear();
        if text[..i].chars().next_back().is_some_and(is_currency) {
            shape.push('$');
        }
        let mut j = i;
        let mut digits = 0;
        while let Some(&b) = bytes.get(j) {
            let grouped = matches!(b, b',' | b'.' | b' ')
                && j > i
                && bytes.get(j + 1).is_some_and(u8::is_ascii_digit);
            if b.is_ascii_digit() {
                shape.push('9');
                digits += 1;
            } else if grouped {
                shape.push(char::from(b));
            } else {
                break;
            }
            j += 1;
        }
        let mut after = text[j..].chars();
        match (after.next(), after.next()) {
            (Some(c @ ('k' | 'K' | 'm' | 'M')), next) if !next.is_some_and(char::is_alphabetic) => {
                shape.push(c.to_ascii_lowercase());
            }
            (Some(c), _) if is_currency(c) => shape.push('$'),
            _ => {}
        }
        let h = mix_bytes(Block::Words.seed() ^ 0x99, shape.as_bytes());
        sink.add(Block::Words, h, || format!("number {shape}"));
        longest = longest.max(digits);
        i = j;
    }
    longest
}

/// The index of the first ASCII digit at or after `from`, skipping eight bytes without one at
/// a time (the byte-by-byte search was a tenth of [`extract`]'s own time): a byte's high bit
/// is set in `found` only if its low seven bits lie in `0x30..=0x39` and its own high bit is
/// clear (Bit Twiddling Hacks' `hasbetween`, no carry crossing bytes); a chunk that has one
/// is then read byte by byte.
fn next_digit(bytes: &[u8], mut from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = ONES * 0x7F;
    const HIGH: u64 = ONES * 0x80;
    while let Some(chunk) = bytes.get(from..from.wrapping_add(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let low = x & LOW7;
        let found = (ONES * (127 + 0x3A)).wrapping_sub(low)
            & !x
            & low.wrapping_add(ONES * (127 - 0x2F))
            & HIGH;
        if found != 0 {
            break;
        }
        from += 8;
    }
    bytes
        .get(from..)?
        .iter()
        .position(u8::is_ascii_digit)
        .map(|p| from + p)
}

/// The emoji of a text. Every emoji is encoded with a lead byte of E2, E3 or F0 (as
/// `detect::emojis` relies on): only those are decoded.
fn emoji(text: &str) -> impl Iterator<Item = char> + '_ {
    memchr::memchr3_iter(0xE2, 0xE3, 0xF0, text.as_bytes())
        .filter_map(|at| text.get(at..).and_then(|t| t.chars().next()))
        .filter(|c| super::super::normalize::is_emoji(*c))
}

/// Whether a character continues a handle.
fn in_handle(c: char) -> bool {
    c == '_' || c == '.' || classes_word(c)
}

/// Each @mention and #hashtag of the folded text, without its sigil and trailing dots, then
/// each bare word with an underscore (`mrs_slivia_whitney`: a handle written without `@`),
/// with `_` for its sigil.
fn each_handle(folded: &str, mut f: impl FnMut(char, &str)) {
    let bytes = folded.as_bytes();
    let handle_at = |start: usize| {
        let rest = &folded[start..];
        let len: usize = rest
            .chars()
            .take_while(|c| in_handle(*c))
            .map(char::len_utf8)
            .sum();
        rest[..len].trim_end_matches('.')
    };
    for at in memchr::memchr2_iter(b'@', b'#', bytes) {
        let before = folded[..at].chars().next_back();
        if before.is_some_and(|c| classes_word(c) || c == '@' || c == '#') {
            continue;
        }
        let handle = handle_at(at + 1);
        if handle.chars().any(char::is_alphanumeric) {
            f(char::from(bytes[at]), handle);
        }
    }
    let mut covered = 0;
    for at in memchr::memchr_iter(b'_', bytes) {
        if at < covered {
            continue;
        }
        let start = folded[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| in_handle(*c))
            .last()
            .map_or(at, |(i, _)| i);
        let handle = handle_at(start);
        covered = start + handle.len().max(1);
        let sigil = folded[..start].chars().next_back();
        if !sigil.is_some_and(|c| c == '@' || c == '#') && handle.chars().any(char::is_alphanumeric)
        {
            f('_', handle);
        }
    }
}

/// What [`handles`] saw, for the signals.
#[derive(Default)]
struct Handles {
    mentions: usize,
    hashtags: usize,
    bare: usize,
    digits: bool,
    underscores: bool,
    dots: bool,
}

/// Each handle whole, n-grams of its letter runs (` earn with grace fx `), and its shape.
fn handles(
    settings: &Settings,
    folded: &str,
    scratch: &mut Scratch,
    sink: &mut impl Sink,
) -> Handles {
    let Scratch {
        parts,
        bytes,
        hashes,
        ..
    } = scratch;
    let mut seen = Handles::default();
    if memchr::memchr3(b'@', b'#', b'_', folded.as_bytes()).is_none() {
        return seen;
    }
    each_handle(folded, |sigil, handle| {
        match sigil {
            '@' => seen.mentions += 1,
            '#' => seen.hashtags += 1,
            _ => seen.bare += 1,
        }
        seen.digits |= handle.bytes().any(|b| b.is_ascii_digit());
        // Byte pairs, not `str::contains`: a substring searcher's set-up outweighs a handle.
        seen.underscores |=
            handle.as_bytes().windows(2).any(|w| w == b"__") || handle.ends_with('_');
        seen.dots |= handle.contains('.');
        let whole = mix_bytes(Block::Handles.seed() ^ 0xA11, handle.as_bytes());
        sink.add(Block::Handles, whole, || format!("handle {handle:?}"));
        let range = (settings.handle_min, settings.handle_max);
        // Letter runs between spaces; as bytes when ASCII (the same hashes, less work).
        if handle.is_ascii() {
            letter_runs(handle.bytes(), u8::is_ascii_alphabetic, b' ', bytes);
            ngrams(Block::Handles, range, bytes, hashes, sink);
        } else {
            letter_runs(handle.chars(), |c| c.is_alphabetic(), ' ', parts);
            ngrams(Block::Handles, range, parts, hashes, sink);
        }
    });
    seen
}

/// `units`' letters, each run of others one space, with a space before and after.
fn letter_runs<U: Unit + PartialEq>(
    units: impl Iterator<Item = U>,
    letter: impl Fn(&U) -> bool,
    space: U,
    out: &mut Vec<U>,
) {
    out.clear();
    out.push(space);
    for u in units {
        if letter(&u) {
            out.push(u);
        } else if out.last() != Some(&space) {
            out.push(space);
        }
    }
    if out.last() != Some(&space) {
        out.push(space);
    }
}

/// The signal keys: fixed names, some with a small number or a domain.
#[inline(always)]
fn signal(sink: &mut impl Sink, name: &'static str, value: u64) {
    let h = mix(mix_bytes(Block::Signals.seed(), name.as_bytes()), value);
    sink.add(Block::Signals, h, || {
        if value == u64::MAX {
            name.to_string()
        } else {
            format!("{name} {value}")
        }
    });
}

/// `n` in buckets 0, 1, 2, 3 ("3 or more").
fn few(n: usize) -> u64 {
    n.min(3) as u64
}

/// `n` on a log scale: 0, 1, 2–3, 4–7, … (the bit length), capped at `cap`.
fn log2_bucket(n: usize, cap: u64) -> u64 {
    u64::from(usize::BITS - n.leading_zeros()).min(cap)
}

const ALONE: u64 = u64::MAX;

/// The detectors' signals. Returns whether a link goes to a messaging app (`wa.me`,
/// `t.me`…), which feature set 3 counts as naming one.
fn signals(
    n: &Normalized<'_>,
    handles: &Handles,
    amounts: &Amounts,
    counts: &AsciiCounts,
    links: &Links,
    sink: &mut impl Sink,
) -> bool {
    let folded = n.folded.as_str();
    // Mentions and hashtags: how many, where, and what their names look like.
    signal(sink, "mentions", few(handles.mentions));
    signal(sink, "hashtags", few(handles.hashtags));
    if handles.bare > 0 {
        signal(sink, "bare handles", few(handles.bare));
    }
    if handles.digits {
        signal(sink, "handle with digits", ALONE);
    }
    if handles.underscores {
        signal(sink, "handle with __ or a trailing _", ALONE);
    }
    if handles.dots {
        signal(sink, "handle with a dot", ALONE);
    }
    let trimmed = folded.trim_matches(|c: char| !in_handle(c) && c != '@');
    if trimmed.starts_with('@') {
        signal(sink, "starts with a mention", ALONE);
    }
    if let Some(at) = trimmed.rfind('@')
        && trimmed[at + 1..].chars().all(in_handle)
    {
        signal(sink, "ends with a mention", ALONE);
    }

    // Links and their domains.
    let mut count = 0usize;
    let mut messenger = false;
    for (host, _) in links.iter() {
        count += 1;
        let host = host.strip_prefix("www.").unwrap_or(host);
        let domain = psl::domain_str(host).unwrap_or(host);
        messenger |= MESSENGER_DOMAINS.contains(&domain);
        let h = mix_bytes(Block::Signals.seed() ^ 0xD0, domain.as_bytes());
        sink.add(Block::Signals, h, || format!("link to {domain}"));
    }
    signal(sink, "links", few(count));
    if count > 0 && memchr::memchr(b'?', folded.as_bytes()).is_some() && folded.contains('=') {
        signal(sink, "link with a query", ALONE);
    }

    // Contact details.
    // WhatsApp and Telegram are words (`whatsapp`) and link domains (`wa.me`), features
    // already: only phone numbers and e-mail addresses are looked for here.
    for kind in [ContactKind::Email, ContactKind::Phone] {
        // Quick tests first. An address is mostly written with a letter or digit right before
        // its `@` (or as `(at)`); a mention never is, and most comments with an `@` hold
        // mentions. A phone number has nine ASCII digits. (An address spaced around its `@`,
        // or a number in other digits, is left to the rules' `contact`.)
        let possible = match kind {
            ContactKind::Email => address_sign(n),
            _ => counts.digits >= 9,
        };
        if possible && detect::has_contact(n, kind) {
            signal(sink, "contact", kind as u64);
        }
    }

    // Emoji, numbers, money, length, capitals.
    signal(sink, "emoji", log2_bucket(n.emojis(), 4));
    signal(sink, "longest number", amounts.longest.min(8) as u64);
    if amounts.currency {
        signal(sink, "currency sign", ALONE);
    }
    // Lengths of the skeleton, which spacing, look-alikes and invisible characters do not
    // change.
    let skeleton = n.skeleton();
    signal(sink, "skeleton bytes", log2_bucket(skeleton.len(), 10));
    let words = if skeleton.is_empty() {
        0
    } else {
        memchr::memchr_iter(b' ', skeleton).count() + 1
    };
    signal(sink, "words", log2_bucket(words, 8));
    messenger
}

/// Messaging apps by name, in the scripts and spellings comments use: "write me on WhatsApp"
/// is the same bait in every language, and one feature lets what the model learned in one
/// carry to the others. Matched in the folded text (so the patterns are folded the same way).
const MESSENGERS: &[&str] = &[
    "whatsapp",
    "whatsap",
    "watsap",
    "watsapp",
    "wa.me",
    "telegram",
    "telegrama",
    "t.me/",
    "viber",
    "zalo",
    "wechat",
    "signal app",
    "ватсап",
    "вотсап",
    "вацап",
    "телеграм",
    "телеграмм",
    "вайбер",
    "واتساب",
    "واتس اب",
    "الواتس",
    "تلغرام",
    "تيليجرام",
    "تليجرام",
    "व्हाट्सएप",
    "व्हाट्सऐप",
    "वॉट्सऐप",
    "टेलीग्राम",
    "วอทส์แอพ",
    "ไลน์",
];

/// The finder of [`MESSENGERS`] (none only if the automaton could not be built, which a
/// fixed list of short patterns never meets).
fn messengers() -> Option<&'static aho_corasick::AhoCorasick> {
    static FINDER: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>> =
        std::sync::OnceLock::new();
    FINDER
        .get_or_init(|| {
            let folded: Vec<String> = MESSENGERS
                .iter()
                .map(|m| Normalized::new(m).folded.clone())
                .collect();
            aho_corasick::AhoCorasick::new(folded).ok()
        })
        .as_ref()
}

/// A sign of the Unicode block of currency signs (U+20A0–U+20BF: ₽ ₺ ₫ ₩ ₴ ₪ ₸ and the
/// rest, encoded E2 82 A0–BF), which the first feature set's `$ € £ ¥ ₹ ₦ ₿ ₱` left out.
fn has_currency_block(text: &[u8]) -> bool {
    memchr::memchr_iter(0xE2, text)
        .any(|at| text.get(at + 1) == Some(&0x82) && text.get(at + 2).is_some_and(|b| *b >= 0xA0))
}

/// Feature set 2's signals: the script, a messaging app named in any script, a currency
/// sign of any country, a long number in another script's digits, a phone number with a
/// country code.
fn cross_script(
    n: &Normalized<'_>,
    text: &str,
    currency: bool,
    counts: &AsciiCounts,
    sink: &mut impl Sink,
) {
    let folded = n.folded.as_str();
    let ascii_digits = counts.digits;
    if !text.is_ascii() {
        let (script, _) = scripts_and_digits(text.as_bytes(), counts.upper + counts.lower);
        if let Some(name) = script {
            let h = mix_bytes(Block::Signals.seed() ^ 0x5C, name.as_bytes());
            sink.add(Block::Signals, h, || format!("script {name}"));
        }
        if !currency && has_currency_block(text.as_bytes()) {
            signal(sink, "currency sign", ALONE);
        }
    }
    if messengers().is_some_and(|m| m.is_match(folded)) {
        signal(sink, "messenger app", ALONE);
    }
    // Digits of other scripts (Arabic-Indic, Devanagari…) stay as they are in the folded
    // text: counted here, since a phone number written in them is as much a contact.
    let other_digits = if text.is_ascii() {
        0
    } else {
        text.chars()
            .filter(|c| !c.is_ascii_digit() && c.is_numeric())
            .count()
    };
    phone_signals(n, ascii_digits, other_digits, sink);
}

/// Link domains of messaging apps: a link to one names the app (feature set 3).
const MESSENGER_DOMAINS: &[&str] = &[
    "wa.me",
    "whatsapp.com",
    "whatsapp.net",
    "t.me",
    "telegram.me",
    "telegram.org",
    "telegram.dog",
    "viber.com",
    "zalo.me",
    "wechat.com",
    "line.me",
];

/// Messaging apps as the first letters of a word of the skeleton, in the scripts and
/// spellings comments use (feature set 3): `telegram` also finds `telegramchannel`, and
/// `телеграм` the inflected `телеграме`. Links to them are [`MESSENGER_DOMAINS`].
const MESSENGER_STEMS: &[&str] = &[
    "whatsap",
    "whatsaap",
    "watsap",
    "wasap",
    "wpp",
    "zapzap",
    "telegram",
    "telegrm",
    "viber",
    "zalo",
    "wechat",
    "ватсап",
    "вотсап",
    "вацап",
    "телеграм",
    "телегу",
    "вайбер",
    "واتس",
    "الواتس",
    "بالواتس",
    "للواتس",
    "والواتس",
    "عالواتس",
    "وواتس",
    "تلغرام",
    "تيليجرام",
    "تليجرام",
    "व्हाट्सएप",
    "व्हाट्सऐप",
    "वॉट्सऐप",
    "टेलीग्राम",
    "วอทส์แอพ",
    "ไลน์",
];

/// English's commonest words, which other languages' comments seldom hold (`a`, `i`, `me`,
/// `in`, `no`, `so` are words of theirs too): a comment of which they make a quarter is
/// read as English (feature set 3; see [`Twin`]).
const ENGLISH_WORDS: &[&str] = &[
    "the", "you", "your", "to", "and", "is", "are", "this", "that", "it", "my", "for", "of",
    "with", "on", "what", "how", "just", "have", "has", "be", "was", "will", "can", "not", "all",
    "get", "from", "out", "about", "they", "we", "he", "she", "if", "do", "who", "when", "why",
    "there", "their", "would", "really", "please", "thanks", "love", "want", "know", "make", "got",
    "im", "dont", "its", "our", "here", "now", "more", "been", "check",
];

/// A short list of words in skeleton form, found by a word's first two bytes: one table
/// load per word, and a comparison only for the few words that start like one (the
/// substring search of feature set 2 cost a pass over every comment).
struct WordList {
    /// For each bucket of a word's first two bytes, the entries (bits) that start so.
    by_start: [u64; 256],
    entries: Vec<Vec<u8>>,
    /// Whole words, or stems a word may start with.
    whole: bool,
}

impl WordList {
    fn bucket(word: &[u8]) -> Option<usize> {
        match word {
            [a, b, ..] => Some(usize::from(a.wrapping_mul(31) ^ b)),
            _ => None,
        }
    }

    /// The table of at most 64 words (none only if an entry's skeleton were shorter than
    /// two bytes, which the fixed lists never are).
    fn build(words: &[&str], whole: bool) -> Option<WordList> {
        let mut table = WordList {
            by_start: [0; 256],
            entries: Vec::new(),
            whole,
        };
        for (i, word) in words.iter().enumerate().take(64) {
            let skeleton = Normalized::new(word).skeleton().to_vec();
            table.by_start[WordList::bucket(&skeleton)?] |= 1 << i;
            table.entries.push(skeleton);
        }
        Some(table)
    }

    /// [`MESSENGER_STEMS`].
    fn messengers() -> Option<&'static WordList> {
        static TABLE: std::sync::OnceLock<Option<WordList>> = std::sync::OnceLock::new();
        TABLE
            .get_or_init(|| WordList::build(MESSENGER_STEMS, false))
            .as_ref()
    }

    /// [`ENGLISH_WORDS`].
    fn english() -> Option<&'static WordList> {
        static TABLE: std::sync::OnceLock<Option<WordList>> = std::sync::OnceLock::new();
        TABLE
            .get_or_init(|| WordList::build(ENGLISH_WORDS, true))
            .as_ref()
    }

    /// Whether a word of the skeleton is (or starts with) an entry.
    #[inline]
    fn holds(&self, word: &[u8]) -> bool {
        let Some(mut bits) = WordList::bucket(word).map(|b| self.by_start[b]) else {
            return false;
        };
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            let hit = self.entries.get(i).is_some_and(|e| {
                if self.whole {
                    word == e.as_slice()
                } else {
                    word.starts_with(e)
                }
            });
            if hit {
                return true;
            }
            bits &= bits - 1;
        }
        false
    }
}

/// The seed an English twin's hash is mixed with.
const ENGLISH: u64 = 0x3C6E_F372_FE94_F82B;

/// Feature set 3 gives the words, handles and signals of an English comment a twin of
/// each, hashed apart ("frustratingly easy domain adaptation", Daumé 2007): what a word or
/// a handle says in English (`check dm`, `@name` at the end of a testimonial) and what it
/// says in the other languages' comments (a friend tagged, a loanword) are learnt apart,
/// and what they share is learnt once.
struct Twin<'a, S: Sink> {
    sink: &'a mut S,
    english: bool,
}

impl<S: Sink> Sink for Twin<'_, S> {
    #[inline]
    fn add(&mut self, block: Block, hash: u64, name: impl FnOnce() -> String) {
        if !self.english {
            self.sink.add(block, hash, name);
        } else if self.sink.names_wanted() {
            let name = name();
            let twin = format!("{name} (English)");
            self.sink.add(block, hash, || name);
            self.sink.add(block, mix(hash, ENGLISH), || twin);
        } else {
            self.sink.add(block, hash, String::new);
            self.sink.add(block, mix(hash, ENGLISH), String::new);
        }
    }

    fn add_all(&mut self, block: Block, hashes: &[u64], name: impl Fn(usize) -> String) {
        if !self.english {
            return self.sink.add_all(block, hashes, name);
        }
        for (i, &h) in hashes.iter().enumerate() {
            self.add(block, h, || name(i));
        }
    }

    fn names_wanted(&self) -> bool {
        self.sink.names_wanted()
    }
}

/// What one pass over a text's UTF-8 lead bytes finds (both feature sets read it): the script
/// most of its letters are in, when that is not Latin and outnumbers its ASCII letters (a
/// model learns how each script's comments lean, which helps where it has few rows of a
/// language; read from the text as written, since folding turns some letters into Latin
/// look-alikes), and how many decimal digits of
/// the Arabic, Persian, Devanagari, Bengali and Thai scripts it holds, the other scripts'
/// digits that phone numbers are written in (and that folding leaves as they are).
fn scripts_and_digits(text: &[u8], ascii_letters: usize) -> (Option<&'static str>, usize) {
    /// A character's length in bytes by its first byte's high four bits (a table, not
    /// branches: scripts mix within a comment).
    const UTF8_LEN: [u8; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    const NAMES: [&str; 6] = ["cyrillic", "greek", "arabic", "devanagari", "thai", "cjk"];
    /// A lead byte's script (0–5), 6 for none; 8 added where the next bytes must be read
    /// (Indic and Thai letters, and digits).
    const LEAD: [u8; 256] = {
        let mut t = [6u8; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = match b {
                0xD0..=0xD4 => 0,
                0xCE..=0xCF => 1,
                0xD9 | 0xDB => 2 + 8,
                0xD8..=0xDB => 2,
                0xE0 => 6 + 8,
                0xE3..=0xED => 5,
                _ => 6,
            };
            b += 1;
        }
        t
    };
    let mut counts = [0usize; 7];
    let mut digits = 0usize;
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        // Eight ASCII bytes at a time are skipped: they are in no script counted here.
        if let Some(chunk) = text.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok())
            && u64::from_le_bytes(chunk) & 0x8080_8080_8080_8080 == 0
        {
            i += 8;
            continue;
        }
        let at = i;
        // On to the next character: its continuation bytes are in no script counted here.
        i += usize::from(UTF8_LEN[usize::from(b >> 4)]);
        let lead = LEAD[usize::from(b)];
        counts[usize::from(lead & 7)] += 1;
        if lead < 8 {
            continue;
        }
        let next = text.get(at + 1).copied().unwrap_or(0);
        let last = text.get(at + 2).copied().unwrap_or(0);
        match (b, next) {
            // Arabic-Indic ٠–٩ (U+0660–0669) and Persian ۰–۹ (U+06F0–06F9).
            (0xD9, 0xA0..=0xA9) | (0xDB, 0xB0..=0xB9) => digits += 1,
            // Devanagari letters, and its digits ० –९ (U+0966–096F).
            (0xE0, 0xA4) => counts[3] += 1,
            (0xE0, 0xA5) => {
                counts[3] += 1;
                digits += usize::from((0xA6..=0xAF).contains(&last));
            }
            // Bengali digits (U+09E6–09EF).
            (0xE0, 0xA7) => digits += usize::from((0xA6..=0xAF).contains(&last)),
            // Thai letters, and its digits (U+0E50–0E59).
            (0xE0, 0xB8) => counts[4] += 1,
            (0xE0, 0xB9) => {
                counts[4] += 1;
                digits += usize::from((0x90..=0x99).contains(&last));
            }
            _ => {}
        }
    }
    let script = counts[..6]
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
        .and_then(|(best, &n)| (n > 0 && n >= ascii_letters).then(|| NAMES[best]));
    (script, digits)
}

/// The digits of a text that are not ASCII as written: the scripts' own that folding leaves as
/// they are (`digits`, from [`scripts_and_digits`]), and those folding made ASCII (`𝟬𝟱𝟱𝟱`,
/// fullwidth `０５５５`, `⑤`), which filters are dodged with.
fn other_script_digits(n: &Normalized<'_>, digits: usize, ascii_digits: usize) -> usize {
    let folded = n.folded.bytes().filter(u8::is_ascii_digit).count();
    digits + folded.saturating_sub(ascii_digits)
}

/// Feature set 3's signals across languages and scripts: the same keys as [`cross_script`],
/// with the script and the other scripts' digits from one pass over the lead bytes, and a
/// messaging app named by a word or a link (`messenger`).
fn cross_script_3(
    n: &Normalized<'_>,
    text: &str,
    currency: bool,
    counts: &AsciiCounts,
    messenger: bool,
    sink: &mut impl Sink,
) {
    let ascii_digits = counts.digits;
    let mut other_digits = 0;
    if !text.is_ascii() {
        let (script, digits) = scripts_and_digits(text.as_bytes(), counts.upper + counts.lower);
        if let Some(name) = script {
            let h = mix_bytes(Block::Signals.seed() ^ 0x5C, name.as_bytes());
            sink.add(Block::Signals, h, || format!("script {name}"));
        }
        if !currency && has_currency_block(text.as_bytes()) {
            signal(sink, "currency sign", ALONE);
        }
        other_digits = other_script_digits(n, digits, ascii_digits);
    }
    if messenger {
        signal(sink, "messenger app", ALONE);
    }
    phone_signals(n, ascii_digits, other_digits, sink);
}

/// The signals of phone numbers that feature sets 2 and 3 share: digits of another script,
/// a country code, and a number in other digits than ASCII that the contact detector finds.
fn phone_signals(
    n: &Normalized<'_>,
    ascii_digits: usize,
    other_digits: usize,
    sink: &mut impl Sink,
) {
    if other_digits >= 9 {
        signal(sink, "digits of another script", ALONE);
    }
    let digits = ascii_digits + other_digits;
    if digits >= 8 {
        let folded = n.folded.as_str();
        let country_code = memchr::memchr_iter(b'+', folded.as_bytes()).any(|at| {
            folded
                .get(at + 1..)
                .and_then(|rest| rest.trim_start().chars().next())
                .is_some_and(char::is_numeric)
        });
        if country_code {
            signal(sink, "phone with a country code", ALONE);
        }
        if ascii_digits < 9 && digits >= 9 && detect::has_contact(n, ContactKind::Phone) {
            signal(sink, "contact", ContactKind::Phone as u64);
        }
    }
}

/// Whether an `@` follows a letter or digit (or `(at)`/`[at]` is written), as every e-mail
/// address the contact detector finds has it.
fn address_sign(n: &Normalized<'_>) -> bool {
    let folded = n.folded.as_str();
    let b = folded.as_bytes();
    memchr::memchr_iter(b'@', b).any(|at| at > 0 && b[at - 1].is_ascii_alphanumeric())
        || (n.may_have(b'(') && folded.contains("(at)"))
        || (n.may_have(b'[') && folded.contains("[at]"))
}

/// ASCII capitals, small letters and digits, counted in one pass that compiles to vector code.
struct AsciiCounts {
    upper: usize,
    lower: usize,
    digits: usize,
}

impl AsciiCounts {
    fn of(text: &str) -> AsciiCounts {
        let mut c = AsciiCounts {
            upper: 0,
            lower: 0,
            digits: 0,
        };
        // Byte counters over chunks of up to 255 bytes: the loop then works on 16 or 32
        // bytes an instruction (with `usize` counters it widened every byte to 64 bits).
        for chunk in text.as_bytes().chunks(255) {
            let (mut upper, mut lower, mut digits) = (0u8, 0u8, 0u8);
            for &b in chunk {
                upper += u8::from(b.wrapping_sub(b'A') < 26);
                lower += u8::from(b.wrapping_sub(b'a') < 26);
                digits += u8::from(b.wrapping_sub(b'0') < 10);
            }
            c.upper += usize::from(upper);
            c.lower += usize::from(lower);
            c.digits += usize::from(digits);
        }
        c
    }

    /// More than half of the ASCII letters are capitals (of eight or more). Only ASCII is
    /// counted: the training file, lower-cased, gives this signal no weight anyway until
    /// operators' labels (which keep their capitals) are trained on.
    fn mostly_capitals(&self) -> bool {
        let letters = self.upper + self.lower;
        letters >= 8 && self.upper * 2 > letters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects feature names by block.
    #[derive(Default)]
    struct Names(Vec<(Block, String)>);

    impl Sink for Names {
        fn add(&mut self, block: Block, _hash: u64, name: impl FnOnce() -> String) {
            self.0.push((block, name()));
        }
    }

    fn names(text: &str) -> Vec<(Block, String)> {
        let n = Normalized::new(text);
        let mut sink = Names::default();
        extract(&Settings::default(), text, &n, &mut sink);
        sink.0
    }

    fn has(features: &[(Block, String)], block: Block, name: &str) -> bool {
        features.iter().any(|(b, n)| *b == block && n == name)
    }

    #[test]
    fn every_block_sees_what_it_is_for() {
        let f = names("I got $4,000 from @Earn_With_Grace.fx 💰 visit spam-site.com");
        let cases: &[(Block, &str)] = &[
            (Block::Chars, "chars \" go\""),
            (Block::Chars, "chars \"got\""),
            (Block::Words, "word \"got\""),
            (Block::Words, "words \"i got\""),
            (Block::Words, "emoji 💰"),
            (Block::Handles, "handle chars \" fx\""),
            (Block::Handles, "handle chars \"ear\""),
            (Block::Signals, "mentions 1"),
            (Block::Signals, "handle with a dot"),
            (Block::Signals, "link to spam-site.com"),
            (Block::Signals, "links 1"),
            (Block::Signals, "currency sign"),
            (Block::Signals, "longest number 4"),
            (Block::Signals, "emoji 1"),
        ];
        for (block, name) in cases {
            assert!(has(&f, *block, name), "{name} in {f:?}");
        }
        // Case is folded: capitals change nothing but the capitals signal.
        let lower = names("i got $4,000 from @earn_with_grace.fx 💰 visit spam-site.com");
        assert_eq!(f, lower);
    }

    /// The eight-at-a-time digit search finds what a byte-by-byte one finds: every byte value
    /// at every place of a chunk and of the tail, after bytes on both sides of the digits.
    #[test]
    fn next_digit_is_the_first_digit() {
        let naive = |b: &[u8], from: usize| (from..b.len()).find(|&i| b[i].is_ascii_digit());
        for filler in [b'a', b'/', b':', 0x7F, 0x80, 0xB0, 0xB9, 0xFF] {
            for len in 0..20 {
                for at in 0..=len {
                    for probe in 0..=255u8 {
                        let mut b = vec![filler; len];
                        if at < len {
                            b[at] = probe;
                        }
                        for from in [0, 1, 7, 8, 9] {
                            assert_eq!(next_digit(&b, from), naive(&b, from), "{b:?} from {from}");
                        }
                    }
                }
            }
        }
        assert_eq!(
            names("a 12")
                .iter()
                .filter(|(_, n)| n == "number 99")
                .count(),
            1
        );
    }

    /// The same bait in three scripts shares its language-free signals; a first-feature-set
    /// model does not see them.
    #[test]
    fn cross_script_signals_are_shared_by_languages() {
        let cases: &[(&str, &[&str])] = &[
            (
                "Напиши мне в ватсап +7 900 000-41-17 💋",
                &[
                    "script cyrillic",
                    "messenger app",
                    "phone with a country code",
                ],
            ),
            (
                "للتواصل واتساب ٠٥٥٥٠٠٠٣١٢ 📲",
                &["script arabic", "messenger app", "digits of another script"],
            ),
            (
                "व्हाट्सएप पर मैसेज करें 90000 31208, सिर्फ ₹99",
                &["script devanagari", "messenger app", "currency sign"],
            ),
            ("1000 подписчиков за 299 ₽", &["currency sign"]),
            ("write me on WhatsApp +1 555 0100 200", &["messenger app"]),
        ];
        for (text, expected) in cases {
            let f = names(text);
            for name in *expected {
                assert!(has(&f, Block::Signals, name), "{name} in {text}: {f:?}");
            }
        }
        let plain = names("lovely shoes, what size is this?");
        assert!(
            !plain
                .iter()
                .any(|(_, n)| n.starts_with("script") || n == "messenger app")
        );
        let n = Normalized::new("Напиши мне в ватсап +7 900 000-41-17");
        let mut first = Names::default();
        let v1 = Settings {
            feature_set: 1,
            ..Settings::default()
        };
        extract(&v1, "Напиши мне в ватсап +7 900 000-41-17", &n, &mut first);
        assert!(
            !first.0.iter().any(|(_, n)| n == "messenger app"),
            "{:?}",
            first.0
        );
    }

    /// Feature set 3 finds the messaging apps in words (inflected too) and links, and the
    /// script and other scripts' digits in one pass, as set 2 found them by searching.
    #[test]
    fn the_third_feature_set_finds_what_the_second_searched_for() {
        let v2 = Settings {
            feature_set: 2,
            ..Settings::default()
        };
        let signals = |settings: &Settings, text: &str| {
            let n = Normalized::new(text);
            let mut sink = Names::default();
            extract(settings, text, &n, &mut sink);
            let mut found: Vec<String> = sink
                .0
                .into_iter()
                .filter(|(b, n)| *b == Block::Signals && !n.ends_with("(English)"))
                .map(|(_, n)| n)
                .collect();
            found.sort();
            found
        };
        for text in [
            "Напиши мне в ватсап +7 900 000-41-17 💋",
            "للتواصل واتساب ٠٥٥٥٠٠٠٣١٢ 📲",
            "व्हाट्सएप पर मैसेज करें ९०००० ३१२०८, सिर्फ ₹99",
            "write me on WhatsApp +1 555 0100 200",
            "привет, где купить? 🙂",
            "ＬＩＮＥ １２３４５６７８９０ 連絡ください",
            "lovely shoes, what size is this?",
        ] {
            assert_eq!(
                signals(&v2, text),
                signals(&Settings::default(), text),
                "{text}"
            );
        }
        let messenger = |text: &str| {
            signals(&Settings::default(), text)
                .iter()
                .any(|n| n == "messenger app")
        };
        assert!(messenger("пишите мне в телеграме, всё расскажу"));
        assert!(messenger("تواصل معي بالواتساب الآن"));
        assert!(messenger("join here: t.me/cryptosignals_vip"));
        assert!(messenger("chat: https://wa.me/15550100200"));
        assert!(messenger("W.h.a.t.s.a.p.p me for the details"));
        assert!(!messenger("what's up, love the telescope ad"));
        assert!(!messenger("@anna you should buy these"));
    }

    /// An English comment's words, handles and signals get twins that are learnt apart from
    /// what the same words say in other languages; its character n-grams do not, and a
    /// comment in another language gets none.
    #[test]
    fn english_comments_get_twins_of_their_words_handles_and_signals() {
        let twins = |text: &str| {
            names(text)
                .into_iter()
                .filter(|(_, n)| n.ends_with("(English)"))
                .map(|(b, _)| b)
                .collect::<Vec<_>>()
        };
        let english = twins("check your dm for the prize from @acme.giveaway_official");
        for block in [Block::Words, Block::Handles, Block::Signals] {
            assert!(english.contains(&block), "{block:?} in {english:?}");
        }
        assert!(!english.contains(&Block::Chars));
        assert!(has(
            &names("check your dm"),
            Block::Words,
            "word \"dm\" (English)"
        ));
        for other in [
            "revisa tu dm para el premio de @acme.giveaway_official",
            "cek dm kak, hadiahnya dari @acme.giveaway_official",
            "Напиши мне в ватсап",
            "🔥🔥🔥",
        ] {
            assert!(twins(other).is_empty(), "{other}: {:?}", names(other));
        }
        let v2 = Settings {
            feature_set: 2,
            ..Settings::default()
        };
        let n = Normalized::new("check your dm");
        let mut sink = Names::default();
        extract(&v2, "check your dm", &n, &mut sink);
        assert!(!sink.0.iter().any(|(_, n)| n.ends_with("(English)")));
    }

    #[test]
    fn other_scripts_digits_are_counted_by_their_lead_bytes() {
        for (text, digits) in [
            ("٠٥٥٥٠٠٠٣١٢", 10),
            ("۰۹۱۲ ۰۰۰ ۱۲۳۴", 11),
            ("९०००० ३१२०८", 10),
            ("১২৩", 3),
            ("๐๘๑", 3),
            ("0555 ½ ² x", 0),
        ] {
            assert_eq!(scripts_and_digits(text.as_bytes(), 0).1, digits, "{text}");
        }
        // With the digits folding makes ASCII, each non-ASCII digit counts once.
        for (text, digits) in [
            ("٠٥٥٥٠٠٠٣١٢", 10),
            ("९०००० ३१२०८", 10),
            ("１２３ and 45", 3),
            ("𝟬𝟱𝟱𝟱 𝟬𝟬𝟬 𝟯𝟭𝟮𝟰 ok 7", 11),
            ("plain 0555 000 3124", 0),
        ] {
            let n = Normalized::new(text);
            let ascii = text.bytes().filter(u8::is_ascii_digit).count();
            let own = scripts_and_digits(text.as_bytes(), 0).1;
            assert_eq!(other_script_digits(&n, own, ascii), digits, "{text}");
        }
        assert_eq!(
            scripts_and_digits("Привет мир".as_bytes(), 0).0,
            Some("cyrillic")
        );
        assert_eq!(
            scripts_and_digits("नमस्ते".as_bytes(), 0).0,
            Some("devanagari")
        );
        assert_eq!(scripts_and_digits("สวัสดี".as_bytes(), 0).0, Some("thai"));
        assert_eq!(scripts_and_digits("مرحبا".as_bytes(), 0).0, Some("arabic"));
        assert_eq!(scripts_and_digits("é".as_bytes(), 5).0, None);
    }

    #[test]
    fn look_alikes_and_spacing_give_the_same_words() {
        for text in ["𝓬𝓻𝔂𝓹𝓽𝓸 signals", "cr¥pto signals", "c r y p t o signals"] {
            let f = names(text);
            assert!(has(&f, Block::Words, "word \"crypto\""), "{text}: {f:?}");
            assert!(has(&f, Block::Chars, "chars \"ryp\""), "{text}: {f:?}");
        }
    }

    #[test]
    fn handles_need_a_sigil_at_a_word_start() {
        let f = names("mail me at bob@example.com #ad");
        assert!(has(&f, Block::Signals, "mentions 0"), "{f:?}");
        assert!(has(&f, Block::Signals, "hashtags 1"), "{f:?}");
        assert!(has(&f, Block::Signals, "contact 0"), "email: {f:?}");
        assert!(
            !f.iter()
                .any(|(_, n)| n.contains("example") && n.starts_with("handle"))
        );
    }

    /// The sliding trigram loop gives each trigram the hash the general definition gives it.
    #[test]
    fn sliding_trigrams_hash_as_defined() {
        struct Hashes(Vec<u64>);
        impl Sink for Hashes {
            fn add(&mut self, _: Block, hash: u64, _: impl FnOnce() -> String) {
                self.0.push(hash);
            }
        }
        for text in [
            " ab ",
            " crypto signals ",
            " 𝓬𝓻𝔂 ",
            " é日本語 x ",
            "  ",
            " x ",
            " 日 ",
            " ab😀cd ",
            " 😀 ",
            " éé ",
        ] {
            let chars: Vec<char> = text.chars().collect();
            // The general path, for other lengths.
            let mut general = Hashes(Vec::new());
            ngrams(
                Block::Handles,
                (2, 5),
                &chars,
                &mut Vec::new(),
                &mut general,
            );
            let mut expected = Vec::new();
            for start in 0..chars.len() {
                for size in 2..=5.min(chars.len() - start) {
                    expected.push(ngram_hash(
                        Block::Handles.seed(),
                        &chars[start..start + size],
                    ));
                }
            }
            assert_eq!(general.0, expected, "{text}");
            let mut sink = Hashes(Vec::new());
            ngrams(Block::Chars, (3, 3), &chars, &mut Vec::new(), &mut sink);
            let expected: Vec<u64> = chars
                .windows(3)
                .map(|w| ngram_hash(Block::Chars.seed(), w))
                .collect();
            assert_eq!(sink.0, expected, "{text}");
            // Straight from the characters (a padded text's inside).
            let mut straight = Hashes(Vec::new());
            char_trigrams(
                &text.as_bytes()[1..text.len() - 1],
                &mut Vec::new(),
                &mut straight,
            );
            assert_eq!(straight.0, expected, "from chars: {text}");
            if text.is_ascii() {
                let mut bytes = Hashes(Vec::new());
                ngrams(
                    Block::Chars,
                    (3, 3),
                    text.as_bytes(),
                    &mut Vec::new(),
                    &mut bytes,
                );
                assert_eq!(bytes.0, expected, "bytes and chars agree: {text}");
            }
        }
    }

    #[test]
    fn buckets_stay_in_range_for_any_hash() {
        let s = Settings::default();
        for h in [0u64, 1, u64::MAX, 0x8000_0000_0000_0000] {
            assert!(s.bucket(h) < s.buckets());
        }
    }
}
