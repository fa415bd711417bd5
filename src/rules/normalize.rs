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
//! A word pattern goes through the same pipeline, and matches where its skeleton appears on
//! word boundaries with every run at least as long as the pattern's: `free` matches
//! `FREEEE` and `f.r.e.e` but not `fre`; `ass` does not match `as`, `class` or `assassin`.

use std::ops::Range;

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
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    /// NFKD, marks and format characters dropped, lowercased, confusables folded.
    pub folded: String,
    /// For each char of `folded`: (byte offset in `folded`, original byte range).
    folded_map: Vec<(u32, u32, u32)>,
    /// Words separated by single spaces, leet undone, repeats collapsed.
    pub skeleton: String,
    /// One entry per char of `skeleton` (spaces included).
    pub skel: Vec<SkelChar>,
    /// Byte offset in `skeleton` → index in `skel`.
    skel_index: Vec<u32>,
}

impl Normalized {
    pub fn new(text: &str) -> Self {
        let mut n = Normalized::default();
        n.fold(text);
        n.build_skeleton();
        n
    }

    fn fold(&mut self, text: &str) {
        self.folded.reserve(text.len());
        for (at, ch) in text.char_indices() {
            let end = (at + ch.len_utf8()) as u32;
            let at = at as u32;
            if ch.is_ascii() {
                let c = ch.to_ascii_lowercase();
                self.folded_map.push((self.folded.len() as u32, at, end));
                self.folded.push(c);
                continue;
            }
            let (folded, map) = (&mut self.folded, &mut self.folded_map);
            decompose_compatible(ch, |d| {
                if is_combining_mark(d) || is_format(d) {
                    return;
                }
                for l in d.to_lowercase() {
                    map.push((folded.len() as u32, at, end));
                    folded.push(fold_confusable(l));
                }
            });
        }
    }

    /// Original byte range of a byte range of `folded`.
    pub fn folded_to_original(&self, r: Range<usize>) -> Range<usize> {
        let find = |b: usize| self.folded_map.partition_point(|m| (m.0 as usize) < b);
        let first = find(r.start);
        let last = find(r.end).saturating_sub(1).max(first);
        match (self.folded_map.get(first), self.folded_map.get(last)) {
            (Some(a), Some(b)) => a.1 as usize..b.2 as usize,
            _ => 0..0,
        }
    }

    fn build_skeleton(&mut self) {
        let chars: Vec<(char, (u32, u32))> = self
            .folded
            .chars()
            .zip(self.folded_map.iter().map(|m| (m.1, m.2)))
            .collect();
        self.skeleton.reserve(self.folded.len());
        self.skel.reserve(chars.len());
        self.skel_index.reserve(self.folded.len() + 1);
        // 5. words, as ranges of `chars`
        let mut words: Vec<(usize, usize)> = Vec::with_capacity(chars.len() / 4 + 1);
        let mut start: Option<usize> = None;
        for (i, &(c, _)) in chars.iter().enumerate() {
            let wordy = c.is_alphanumeric()
                || match c {
                    // `@` inside a word is a letter; at the start it begins a mention.
                    '@' => start.is_some() && next_is_alnum(&chars, i),
                    // `$` before a letter is an `s` (`$cam`, `ca$h`).
                    '$' => next_is_alnum(&chars, i),
                    _ => false,
                };
            if wordy {
                start.get_or_insert(i);
            } else if let Some(s) = start.take() {
                words.push((s, i));
            }
        }
        if let Some(s) = start {
            words.push((s, chars.len()));
        }
        // 6. runs of three or more single-character words become one word
        let mut i = 0;
        while i < words.len() {
            let mut j = i;
            while j < words.len() && words[j].1 - words[j].0 == 1 {
                j += 1;
            }
            if i > 0 {
                self.push_skel(' ', (0, 0), true, true);
            }
            if j - i >= 3 {
                self.emit(&chars, words[i..j].iter().map(|w| w.0), true);
                i = j;
            } else {
                self.emit(&chars, words[i].0..words[i].1, false);
                i += 1;
            }
        }
        self.skel_index.push(self.skel.len() as u32);
    }

    /// 7 + 8: one word into the skeleton: leet undone (if it has a letter), `l` folded into
    /// `i`, repeats collapsed into runs.
    fn emit(
        &mut self,
        chars: &[(char, (u32, u32))],
        word: impl Iterator<Item = usize> + Clone,
        spaced: bool,
    ) {
        let has_letter = word.clone().any(|k| chars[k].0.is_alphabetic());
        let start = self.skel.len();
        let mut last: Option<char> = None;
        for k in word {
            let (c, orig) = chars[k];
            let c = if has_letter { unleet(c) } else { c };
            if last == Some(c) {
                if let Some(prev) = self.skel.last_mut() {
                    prev.run = prev.run.saturating_add(1);
                    prev.orig.1 = orig.1;
                }
            } else {
                self.push_skel(c, orig, spaced, spaced);
                last = Some(c);
            }
        }
        if let Some(first) = self.skel.get_mut(start) {
            first.start_ok = true;
        }
        if let Some(end) = self.skel.last_mut() {
            end.end_ok = true;
        }
    }

    fn push_skel(&mut self, c: char, orig: (u32, u32), start_ok: bool, end_ok: bool) {
        for _ in 0..c.len_utf8() {
            self.skel_index.push(self.skel.len() as u32);
        }
        self.skeleton.push(c);
        self.skel.push(SkelChar {
            orig,
            run: 1,
            start_ok,
            end_ok,
        });
    }

    /// Index in `skel` of a byte offset in `skeleton`.
    pub fn skel_at(&self, byte: usize) -> usize {
        self.skel_index.get(byte).copied().unwrap_or(0) as usize
    }
}

fn next_is_alnum(chars: &[(char, (u32, u32))], i: usize) -> bool {
    chars.get(i + 1).is_some_and(|(c, _)| c.is_alphanumeric())
}

/// Invisible format characters that spammers put inside words.
fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

/// Leetspeak inside a word that has letters; `l` joins `i` and `1`.
fn unleet(c: char) -> char {
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
}

impl Pattern {
    pub fn new(word: &str) -> Pattern {
        let n = Normalized::new(word);
        Pattern {
            runs: n.skel.iter().map(|s| s.run).collect(),
            skeleton: n.skeleton,
        }
    }

    /// Whether an occurrence of this pattern's skeleton at `bytes` of `n.skeleton` is a real
    /// match: on word boundaries, with every run at least as long. Returns the original span.
    pub fn verify(&self, n: &Normalized, bytes: Range<usize>) -> Option<Range<usize>> {
        let first = n.skel_at(bytes.start);
        let last = first + self.runs.len().checked_sub(1)?;
        let (a, b) = (n.skel.get(first)?, n.skel.get(last)?);
        if !a.start_ok || !b.end_ok {
            return None;
        }
        let runs_ok = self
            .runs
            .iter()
            .zip(&n.skel[first..=last])
            .all(|(want, got)| got.run >= *want);
        runs_ok.then_some(a.orig.0 as usize..b.orig.1 as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("", "", ""),
        ];
        for (input, folded, skeleton) in cases {
            let n = Normalized::new(input);
            assert_eq!(n.folded, folded, "{input}");
            assert_eq!(n.skeleton, skeleton, "{input}");
        }
    }

    #[test]
    fn spans_map_back_to_the_original() {
        let text = "Get ＦＲＥＥ stuff";
        let n = Normalized::new(text);
        let p = Pattern::new("free");
        let at = n.skeleton.find(&p.skeleton).unwrap_or(0);
        let span = p.verify(&n, at..at + p.skeleton.len());
        assert_eq!(span.map(|r| &text[r]), Some("ＦＲＥＥ"));
        let f = n.folded.find("stuff").unwrap_or(0);
        assert_eq!(&text[n.folded_to_original(f..f + 5)], "stuff");
    }
}
