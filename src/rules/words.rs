//! Word patterns looked up by their first word.
//!
//! In a skeleton without joined letters a word pattern can only match from the start of a
//! word to the end of one, so instead of running an automaton over every byte, each word of
//! the comment is hashed once and looked up among the patterns' first words. A 4 KiB bit
//! filter answers "no" for most words, and the table behind it (some 40 bytes per pattern)
//! is touched only for the rest, where a 1,000-word automaton's table misses the cache on
//! every comment. A skeleton with joined letters (`f r e e`, inside which any position is a boundary) still
//! goes through the automaton.

use std::ops::Range;

use super::normalize::bytes_at;

/// Pattern ids grouped by the hash of their first word, in an open-addressed table.
#[derive(Debug, Clone, Default)]
pub struct WordIndex {
    /// (hash of a first word, start in `ids`, how many); `count == 0` is an empty slot.
    slots: Vec<(u64, u32, u32)>,
    /// Pattern ids, grouped by first word, each group in increasing order.
    ids: Vec<u32>,
    /// One bit per first word's hash (4 KiB, always in cache): most words of a comment are
    /// no pattern's first word, and this says so without touching the table.
    filter: Vec<u64>,
    /// Bounds on a first word's length in bytes: a longer or shorter word is not looked up.
    shortest: usize,
    longest: usize,
}

impl WordIndex {
    /// `patterns[id]` is a pattern's skeleton: words separated by single spaces.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> WordIndex {
        // (hash of the first word, its length, pattern id)
        let mut by_word: Vec<(u64, usize, u32)> = patterns
            .into_iter()
            .enumerate()
            .filter_map(|(id, p)| {
                let first = p.split(' ').next().filter(|w| !w.is_empty())?;
                Some((hash(first.as_bytes()), first.len(), u32::try_from(id).ok()?))
            })
            .collect();
        by_word.sort_unstable_by_key(|&(h, _, id)| (h, id));
        let groups = by_word.chunk_by(|a, b| a.0 == b.0).count();
        let size = (groups * 2).next_power_of_two().max(16);
        let mut index = WordIndex {
            slots: vec![(0, 0, 0); size],
            ids: Vec::with_capacity(by_word.len()),
            filter: vec![0; FILTER_WORDS],
            shortest: by_word.iter().map(|w| w.1).min().unwrap_or(usize::MAX),
            longest: by_word.iter().map(|w| w.1).max().unwrap_or(0),
        };
        for group in by_word.chunk_by(|a, b| a.0 == b.0) {
            let start = index.ids.len() as u32;
            index.ids.extend(group.iter().map(|g| g.2));
            let h = group[0].0;
            let mut slot = h as usize & (size - 1);
            while index.slots[slot].2 != 0 {
                slot = (slot + 1) & (size - 1);
            }
            index.slots[slot] = (h, start, group.len() as u32);
            let (word, bit) = filter_bit(h);
            index.filter[word] |= bit;
        }
        index
    }

    /// The ids of the patterns whose first word may be the word hashed (a hash collision can
    /// add others: the caller compares the text).
    #[inline]
    pub fn candidates(&self, len: usize, h: u64) -> &[u32] {
        if len < self.shortest || len > self.longest {
            return &[];
        }
        let (word, bit) = filter_bit(h);
        if self.filter.get(word).is_none_or(|w| w & bit == 0) {
            return &[];
        }
        let mask = self.slots.len() - 1;
        let mut slot = h as usize & mask;
        loop {
            let Some(&(sh, start, count)) = self.slots.get(slot) else {
                return &[];
            };
            if count == 0 {
                return &[];
            }
            if sh == h {
                return self
                    .ids
                    .get(start as usize..(start + count) as usize)
                    .unwrap_or(&[]);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Calls `found(id, range)` for every pattern whose skeleton `text(id)` starts at a word
    /// of `sk` (words separated by single spaces), word by word. Whether the pattern ends on
    /// a word boundary with long enough runs is the caller's [`super::normalize::Pattern::hits`].
    pub fn each_start<'p>(
        &self,
        sk: &[u8],
        text: impl Fn(usize) -> Option<&'p [u8]>,
        mut found: impl FnMut(usize, Range<usize>),
    ) {
        let mut start = 0;
        while start < sk.len() {
            let (end, hash) = word_at(sk, start);
            for &id in self.candidates(end - start, hash) {
                let id = id as usize;
                if let Some(p) = text(id).filter(|p| sk[start..].starts_with(p)) {
                    found(id, start..start + p.len());
                }
            }
            start = end + 1;
        }
    }
}

/// The order in which an overlapping Aho-Corasick search reports matches: by end, longest
/// first, then by pattern id. Both ways of finding words report the first match in this order.
pub fn reported_before(a: (usize, &Range<usize>), b: (usize, &Range<usize>)) -> bool {
    let key = |(id, r): (usize, &Range<usize>)| (r.end, std::cmp::Reverse(r.len()), id);
    key(a) < key(b)
}

const FILTER_WORDS: usize = 512;

/// A hash's bit in the filter (from the hash's top bits; the table uses the bottom ones).
#[inline]
fn filter_bit(h: u64) -> (usize, u64) {
    let bit = (h >> 49) as usize % (FILTER_WORDS * 64);
    (bit / 64, 1 << (bit % 64))
}

/// The word starting at byte `start` of a skeleton (words separated by single spaces): where
/// it ends, and its hash. Eight bytes at a time: the end is the first space (or the end of the
/// text) found with a bit trick, the hash is FxHash over the 8-byte chunks.
#[inline]
pub fn word_at(sk: &[u8], start: usize) -> (usize, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const SPACES: u64 = 0x2020_2020_2020_2020;
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = 0u64;
    let mut at = start;
    loop {
        // Past the end reads as spaces: the last word ends there.
        let chunk = u64::from_le_bytes(bytes_at::<8>(sk, at, b' '));
        // A high bit in each byte that is a space. Bits above the first such byte may be
        // wrong; only the first is used.
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        let stop = zero(chunk ^ SPACES);
        if stop != 0 {
            let k = (stop.trailing_zeros() / 8) as usize;
            if k > 0 {
                let word = chunk & (u64::MAX >> (64 - 8 * k));
                h = (h.rotate_left(5) ^ word).wrapping_mul(K);
            }
            let end = at + k;
            return (end, h ^ (end - start) as u64);
        }
        h = (h.rotate_left(5) ^ chunk).wrapping_mul(K);
        at += 8;
    }
}

fn hash(word: &[u8]) -> u64 {
    word_at(word, 0).1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words shorter than, as long as and longer than the eight bytes read at a time, at the
    /// start, middle and end of a skeleton: each ends at its space and hashes like the word
    /// alone (which is how the patterns' first words were hashed).
    #[test]
    fn a_word_ends_at_its_space_and_hashes_like_the_word_alone() {
        let sk = "a abcdefgh abcdefghijklmnop abcdefghi crypto é😍x abcdefgh";
        let mut start = 0;
        for word in sk.split(' ') {
            let (end, h) = word_at(sk.as_bytes(), start);
            assert_eq!(&sk[start..end], word);
            assert_eq!(h, hash(word.as_bytes()), "{word}");
            start = end + 1;
        }
        assert_eq!(start, sk.len() + 1);
        assert_ne!(hash(b"abcdefgh"), hash(b"abcdefghi"));
    }

    #[test]
    fn only_patterns_with_that_first_word_are_candidates() {
        let index = WordIndex::new(["free money", "crypto", "free", "money"]);
        let lookup = |w: &str| {
            let (end, h) = word_at(w.as_bytes(), 0);
            index.candidates(end, h).to_vec()
        };
        assert_eq!(lookup("free"), [0, 2]);
        assert_eq!(lookup("crypto"), [1]);
        assert_eq!(lookup("money"), [3]);
        assert_eq!(lookup("fre"), Vec::<u32>::new());
        assert_eq!(lookup("cryptocurrency"), Vec::<u32>::new());
    }
}
