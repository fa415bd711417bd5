//! Text normalisation shared by every condition. Runs once per comment; the original text is
//! kept beside it for evidence.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// A comment's text in the forms the conditions match against.
#[derive(Debug, Clone)]
pub struct Normalized {
    /// Compatibility-decomposed, accents stripped, lowercased; punctuation kept. Regexes run here.
    pub folded: String,
    /// `folded` reduced to its words: letters and digits, single spaces, with a leading and a
    /// trailing space so that ` word ` only ever matches a whole word.
    pub words: String,
}

impl Normalized {
    pub fn new(text: &str) -> Self {
        let folded = fold(text);
        let words = word_form(&folded);
        Normalized { folded, words }
    }
}

/// NFKD (so full-width and ligature forms become plain letters), drop combining marks
/// (accent-insensitive), lowercase.
pub fn fold(text: &str) -> String {
    text.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Reduces folded text to ` word word ` form.
pub fn word_form(folded: &str) -> String {
    let mut out = String::with_capacity(folded.len() + 2);
    out.push(' ');
    for c in folded.chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        for (input, folded, words) in [
            ("FOREX!", "forex!", " forex "),
            ("Crème  Brûlée", "creme  brulee", " creme brulee "),
            ("ＦＯＲＥＸ", "forex", " forex "),
            (
                "dm   me... to-earn",
                "dm   me... to-earn",
                " dm me to earn ",
            ),
            ("", "", " "),
        ] {
            let n = Normalized::new(input);
            assert_eq!(n.folded, folded, "{input}");
            assert_eq!(n.words, words, "{input}");
        }
    }
}
