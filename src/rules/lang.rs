//! Language identification of a comment, for the `languages`/`not_languages` conditions, for
//! `rules test` and for the language stored with each decision.
//!
//! The detector is `whatlang` (trigram profiles of 70 languages, no model file, no IO): see
//! ARCHITECTURE.md for why this crate and what it costs. Comments are short and noisy, so the
//! text is first reduced to its words ([`words_only`]: no handles, hashtags, links, emoji or
//! digits), and below a length floor ([`MIN_LETTERS`]) or a confidence floor
//! ([`MIN_CONFIDENCE`]) the language is *unknown*. Unknown is an answer, not a guess: only
//! its script is known, so "hide what is not in my audience's languages" never hides an
//! emoji, an "ok" or a handle, but does hide a short comment in a script none of the
//! audience's languages is written in.
//!
//! Pure, like the rest of `rules`: no IO, cannot fail. Detection costs tens of microseconds on
//! Latin text, so the rule engine runs it only when a rule asks (once per comment), and the
//! daemon once per decided comment.

use std::fmt;

/// A language the detector knows, named by its ISO 639-1 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Language(whatlang::Lang);

/// Each language the detector knows with its ISO 639-1 code (whatlang names them by
/// ISO 639-3). Its order is whatlang's.
const CODES: &[(whatlang::Lang, &str)] = {
    use whatlang::Lang::*;
    &[
        (Epo, "eo"),
        (Eng, "en"),
        (Rus, "ru"),
        (Cmn, "zh"),
        (Spa, "es"),
        (Por, "pt"),
        (Ita, "it"),
        (Ben, "bn"),
        (Fra, "fr"),
        (Deu, "de"),
        (Ukr, "uk"),
        (Kat, "ka"),
        (Ara, "ar"),
        (Hin, "hi"),
        (Jpn, "ja"),
        (Heb, "he"),
        (Yid, "yi"),
        (Pol, "pl"),
        (Amh, "am"),
        (Jav, "jv"),
        (Kor, "ko"),
        (Nob, "nb"),
        (Dan, "da"),
        (Swe, "sv"),
        (Fin, "fi"),
        (Tur, "tr"),
        (Nld, "nl"),
        (Hun, "hu"),
        (Ces, "cs"),
        (Ell, "el"),
        (Bul, "bg"),
        (Bel, "be"),
        (Mar, "mr"),
        (Kan, "kn"),
        (Ron, "ro"),
        (Slv, "sl"),
        (Hrv, "hr"),
        (Srp, "sr"),
        (Mkd, "mk"),
        (Lit, "lt"),
        (Lav, "lv"),
        (Est, "et"),
        (Tam, "ta"),
        (Vie, "vi"),
        (Urd, "ur"),
        (Tha, "th"),
        (Guj, "gu"),
        (Uzb, "uz"),
        (Pan, "pa"),
        (Aze, "az"),
        (Ind, "id"),
        (Tel, "te"),
        (Pes, "fa"),
        (Mal, "ml"),
        (Ori, "or"),
        (Mya, "my"),
        (Nep, "ne"),
        (Sin, "si"),
        (Khm, "km"),
        (Tuk, "tk"),
        (Aka, "ak"),
        (Zul, "zu"),
        (Sna, "sn"),
        (Afr, "af"),
        (Lat, "la"),
        (Slk, "sk"),
        (Cat, "ca"),
        (Tgl, "tl"),
        (Hye, "hy"),
        (Cym, "cy"),
    ]
};

impl Language {
    /// The language of an ISO 639-1 code (`"es"`; `"no"` is Norwegian Bokmål, the only
    /// Norwegian the detector knows), or `None` for a code the detector does not know.
    pub fn parse(code: &str) -> Option<Language> {
        let code = code.trim().to_ascii_lowercase();
        let code = if code == "no" { "nb" } else { code.as_str() };
        CODES
            .iter()
            .find(|(_, c)| *c == code)
            .map(|(l, _)| Language(*l))
    }

    /// Its ISO 639-1 code.
    pub fn code(self) -> &'static str {
        CODES
            .iter()
            .find(|(l, _)| *l == self.0)
            .map_or("??", |(_, c)| *c)
    }

    /// Its English name.
    pub fn name(self) -> &'static str {
        self.0.eng_name()
    }

    /// Every language the detector knows, in its order.
    pub fn all() -> impl Iterator<Item = Language> {
        CODES.iter().map(|(l, _)| Language(*l))
    }

    /// Every code, comma-separated, for an error message.
    pub fn known_codes() -> String {
        let mut codes: Vec<&str> = CODES.iter().map(|(_, c)| *c).collect();
        codes.sort_unstable();
        codes.join(", ")
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The language of one comment, or unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// `None`: unknown (too short, no words, or the detector was not sure enough).
    pub language: Option<Language>,
    /// The detector's confidence in its best guess, 0 to 1 (0 when there was nothing to guess
    /// from). Kept for unknown too: `rules test` shows how far below the floor a guess was.
    pub confidence: f32,
    /// The script most of its letters are in (`None`: no letters). Known even when the
    /// language is not: "धन्यवाद भाई" is too short to tell Hindi from Marathi, but it is
    /// certainly not English.
    pub script: Option<whatlang::Script>,
    /// For an unknown language: the detector could not tell which language it is, but set
    /// against English alone its best guess wins clearly ("udah aku kirimin pesan kak": Indonesian
    /// or Javanese, not English). English is the one language checked this way: it is what a
    /// short comment is otherwise taken for, and what most audiences' lists name.
    pub not_english: bool,
}

impl Detection {
    const UNKNOWN: Detection = Detection {
        language: None,
        confidence: 0.0,
        script: None,
        not_english: false,
    };

    /// The ISO 639-1 code, or `None` when unknown (what the store writes).
    pub fn code(&self) -> Option<&'static str> {
        self.language.map(Language::code)
    }

    /// Whether the comment is in one of `list`. An unknown language matches when `unknown`
    /// ("und" was listed) and, if `list` names languages too, its script is one of theirs:
    /// `["en", "und"]` reads "English, or cannot tell and could be", so it leaves a short
    /// comment in Devanagari alone.
    pub fn is_in(&self, list: &[Language], unknown: bool) -> bool {
        match self.language {
            Some(l) => list.contains(&l),
            None => unknown && (list.is_empty() || !self.rules_out(list)),
        }
    }

    /// Whether the comment is in none of `list`: its language is known and not listed, or
    /// unknown but every listed language is ruled out, by the script (a short Cyrillic comment
    /// is not English) or, for English, by [`Detection::not_english`]. An unknown comment
    /// with no letters never matches.
    pub fn is_outside(&self, list: &[Language]) -> bool {
        match self.language {
            Some(l) => !list.contains(&l),
            None => self.script.is_some() && self.rules_out(list),
        }
    }

    /// Whether an unknown comment can be in none of `list`.
    fn rules_out(&self, list: &[Language]) -> bool {
        let Some(script) = self.script else {
            return false;
        };
        list.iter().all(|l| {
            !script.langs().contains(&l.0) || (self.not_english && l.0 == whatlang::Lang::Eng)
        })
    }
}

/// `es (0.93)`, `unknown`, or for an unknown language what is known of it: `unknown
/// (Cyrillic)` (another script than Latin), `unknown (not English)`.
impl fmt::Display for Detection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.language, self.script) {
            (Some(l), _) => write!(f, "{l} ({:.2})", self.confidence),
            (None, Some(s)) if s != whatlang::Script::Latin => write!(f, "unknown ({s})"),
            (None, _) if self.not_english => f.write_str("unknown (not English)"),
            (None, _) => f.write_str("unknown"),
        }
    }
}

/// The code a `languages` list names an unknown language by: BCP 47's "undetermined".
pub const UNDETERMINED: &str = "und";

/// Fewer letters than this (after [`words_only`]) and the language is unknown: trigram
/// statistics over a word or two pick a language by chance ("nice pic" scores Romanian). A
/// character of a script that writes a syllable or a word per character (Han, kana, Hangul)
/// counts three.
pub const MIN_LETTERS: usize = 12;

/// Below this confidence the language is unknown. whatlang's confidence measures how far its
/// best guess is ahead of the second; short English comments' wrong guesses stay below it.
pub const MIN_CONFIDENCE: f32 = 0.5;

/// The words read from one comment, in bytes: a few sentences tell the language as well as a
/// whole essay, and whatlang's time grows with the text (a comment can be 2,200 characters).
const MAX_WORDS_BYTES: usize = 400;

/// The language of a comment's text.
pub fn detect(text: &str) -> Detection {
    let (words, letters) = words_only(text);
    // Too little to guess from: only the script is known.
    let unknown = || Detection {
        script: whatlang::detect_script(&words),
        ..Detection::UNKNOWN
    };
    if letters < MIN_LETTERS {
        return unknown();
    }
    let Some(info) = whatlang::detect(&words) else {
        return unknown();
    };
    // A confidence is in 0..=1; a cast of one rounds and cannot overflow.
    let confidence = info.confidence().clamp(0.0, 1.0) as f32;
    let latin = info.script() == whatlang::Script::Latin;
    // Romanised Hindi mixed with English ("booking ke liye card no. dm kro") is read as
    // English: it is not.
    let hindi = latin
        && (confidence < MIN_CONFIDENCE || info.lang() == whatlang::Lang::Eng)
        && romanised_hindi(&words);
    let known = confidence >= MIN_CONFIDENCE && !hindi;
    // Unsure between two others is not unsure about English: ask once more, against English
    // alone (only for the unsure, so the cost is a second pass over a few comments), and
    // take only a clear win (whatlang's full confidence): "i want neha's insta id" beats
    // English by a little.
    let not_english = hindi
        || !known
            && latin
            && info.lang() != whatlang::Lang::Eng
            && whatlang::Detector::with_allowlist(vec![info.lang(), whatlang::Lang::Eng])
                .detect(&words)
                .is_some_and(|two| two.lang() != whatlang::Lang::Eng && two.confidence() >= 1.0);
    Detection {
        language: known.then_some(Language(info.lang())),
        confidence,
        script: Some(info.script()),
        not_english,
    }
}

/// Hindi written in Latin letters ("bhai ye kya hai"), which whatlang has no profile for
/// and reads as anything from Tagalog to English: two different words of this list, which are
/// Hindi's commonest short words and no English word, are enough to rule out English.
fn romanised_hindi(words: &str) -> bool {
    const HINDI: &[&str] = &[
        "aaj", "aap", "aapka", "aapke", "aapki", "abhi", "accha", "acha", "achha", "aur", "baat",
        "bahut", "bhai", "bhi", "bohot", "chahiye", "chalega", "dekh", "dekho", "diya", "dost",
        "gaya", "gayi", "hai", "hain", "hoga", "hogi", "hota", "hoti", "hu", "humari", "jaisa",
        "jaise", "ka", "kaise", "karega", "karke", "karna", "karo", "karoge", "ke", "ki", "kiya",
        "koi", "kr", "kre", "krna", "kro", "krte", "kuch", "kya", "kyu", "kyun", "liya", "liye",
        "mera", "meri", "mujhe", "mujhse", "nahi", "nahin", "nhi", "paisa", "paise", "pe", "raha",
        "rahe", "rahi", "sakta", "sakte", "toh", "tum", "tumhara", "wala", "wale", "wali", "yaar",
        "yaha", "yeh",
    ];
    // Two different words, one of three letters or more: "pe" and "hu" alone are English's too
    // ("my PE teacher… hu knew").
    let mut first: Option<&str> = None;
    for w in words.split(' ') {
        if HINDI.binary_search(&w).is_ok() {
            match first {
                None => first = Some(w),
                Some(f) if f != w && (f.len() >= 3 || w.len() >= 3) => return true,
                Some(f) if w.len() > f.len() => first = Some(w),
                Some(_) => {}
            }
        }
    }
    false
}

/// The words of a comment that say something about its language, separated by single spaces,
/// and how many letters they hold (weighted as [`MIN_LETTERS`] says). Dropped: @handles,
/// #hashtags (brand and trend tags are mostly English whatever the comment's language),
/// links, and every character that is not a letter or a mark (emoji, digits, punctuation);
/// an apostrophe or hyphen inside a word stays. Words after the first [`MAX_WORDS_BYTES`] are
/// not read.
pub fn words_only(text: &str) -> (String, usize) {
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::with_capacity(text.len());
    let mut letters = 0usize;
    // NFKC turns full-width and "fancy font" letters into plain ones; lowercase, because
    // shouting is not a language (whatlang reads ALL CAPS English as Welsh).
    let plain: String = text.nfkc().flat_map(char::to_lowercase).collect();
    for word in plain.split_whitespace() {
        if out.len() >= MAX_WORDS_BYTES {
            break;
        }
        if word.starts_with(['@', '#', '＠', '＃']) || is_link(word) {
            continue;
        }
        let mut pending_space = !out.is_empty();
        let mut prev_letter = false;
        let mut chars = word.chars().peekable();
        while let Some(c) = chars.next() {
            let keep = if c.is_alphabetic() {
                letters = letters.saturating_add(letter_weight(c));
                true
            } else if is_mark(c) {
                prev_letter
            } else if matches!(c, '\'' | '’' | 'ʼ' | '-') {
                prev_letter && chars.peek().is_some_and(|n| n.is_alphabetic())
            } else {
                false
            };
            if keep {
                if pending_space {
                    out.push(' ');
                    pending_space = false;
                }
                // One apostrophe: whatlang's trigrams of the typographic one are French.
                out.push(if matches!(c, '’' | 'ʼ') { '\'' } else { c });
                prev_letter = true;
            } else {
                // Emoji and digits split words: "love😍it" is two words.
                pending_space = !out.is_empty();
                prev_letter = false;
            }
        }
    }
    (out, letters)
}

/// A URL or a bare domain (`http://…`, `www.…`, `shop.example.com/x`, `bit.ly`).
fn is_link(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    if lower.contains("://") || lower.starts_with("www.") {
        return true;
    }
    let host = lower
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .split('/')
        .next()
        .unwrap_or("");
    match host.rsplit_once('.') {
        Some((name, tld)) => {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                && (2..=6).contains(&tld.len())
                && tld.chars().all(|c| c.is_ascii_lowercase())
        }
        None => false,
    }
}

/// Combining marks that belong to the letter before them (Devanagari vowel signs, Arabic
/// harakat, Thai tone marks…): `char::is_alphabetic` says no to some of them.
fn is_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}' | '\u{0591}'..='\u{05C7}' | '\u{0610}'..='\u{061A}'
        | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}'
        | '\u{0900}'..='\u{0903}' | '\u{093A}'..='\u{094F}' | '\u{0951}'..='\u{0957}'
        | '\u{0962}'..='\u{0963}' | '\u{0981}'..='\u{0983}' | '\u{09BC}'..='\u{09D7}'
        | '\u{0E31}' | '\u{0E34}'..='\u{0E3A}' | '\u{0E47}'..='\u{0E4E}')
}

/// How much a letter counts toward [`MIN_LETTERS`].
fn letter_weight(c: char) -> usize {
    match c {
        '\u{3040}'..='\u{30FF}' | '\u{4E00}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7A3}' => 3,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(text, expected code or None for unknown)`: one check for the table below.
    fn check(cases: &[(&str, Option<&str>)]) {
        let mut wrong = Vec::new();
        for (text, want) in cases {
            let got = detect(text);
            if got.code() != *want {
                wrong.push(format!("{text:?}: want {want:?}, got {got}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn detects_the_languages_of_brand_comment_sections() {
        // An order question and a scam of the kind brands get, in each language.
        check(&[
            (
                "Hola, ¿cuándo vuelve a estar disponible la talla pequeña? Gracias",
                Some("es"),
            ),
            (
                "Invierte con el señor Carlos y gana 5000 dólares a la semana",
                Some("es"),
            ),
            (
                "Adorei essa cor, vocês entregam no Brasil? Quero muito comprar uma",
                Some("pt"),
            ),
            (
                "Quanto custa o frete para Portugal? Quero encomendar duas peças",
                Some("pt"),
            ),
            (
                "Saya dapat banyak uang dari investasi ini, hubungi dia lewat WhatsApp sekarang",
                Some("id"),
            ),
            (
                "Kirim pesan ke saya sekarang untuk dapat hadiah gratis dari kami",
                Some("id"),
            ),
            (
                "J'adore cette couleur, est-ce que vous livrez en France ?",
                Some("fr"),
            ),
            (
                "Gagnez de l'argent facilement avec mon conseiller, contactez-le sur Telegram",
                Some("fr"),
            ),
            (
                "Meine Bestellung ist immer noch nicht angekommen, könnt ihr bitte nachsehen?",
                Some("de"),
            ),
            (
                "Ich habe mit diesem Trader tausend Euro verdient, schreibt ihm auf WhatsApp",
                Some("de"),
            ),
            (
                "Ho ordinato due settimane fa e non è ancora arrivato niente, potete controllare?",
                Some("it"),
            ),
            (
                "Adoro questo colore, spedite anche in Italia? Lo voglio comprare subito",
                Some("it"),
            ),
            ("Очень красивый цвет, а есть размер побольше?", Some("ru")),
            (
                "Bu rengi çok sevdim, daha büyük beden var mı? Hemen sipariş vermek istiyorum",
                Some("tr"),
            ),
            (
                "Bu hanımefendi sayesinde çok para kazandım, hemen WhatsApp'tan yazın",
                Some("tr"),
            ),
            (
                "ربحت الكثير من المال مع هذه الشركة، تواصل معي على الواتساب الآن",
                Some("ar"),
            ),
            (
                "مرحبا، أين يمكنني شراء هذا المنتج؟ أريد أن أطلب واحدا لأختي",
                Some("ar"),
            ),
            (
                "यह उत्पाद बहुत अच्छा है और मैं इसे अपनी बहन के लिए खरीदना चाहती हूँ",
                Some("hi"),
            ),
            (
                "मैंने इस निवेश से बहुत पैसा कमाया, अभी उनसे व्हाट्सएप पर बात करें",
                Some("hi"),
            ),
            (
                "Đơn hàng của tôi vẫn chưa được giao, shop kiểm tra giúp tôi với",
                Some("vi"),
            ),
            (
                "Tôi đã kiếm được rất nhiều tiền nhờ chị ấy, nhắn tin Zalo ngay nhé",
                Some("vi"),
            ),
            (
                "Ang ganda ng kulay nito, may mas malaking size po ba kayo?",
                Some("tl"),
            ),
            (
                "Salamat po sa mabilis na delivery, ang ganda talaga ng produkto ninyo",
                Some("tl"),
            ),
            (
                "I ordered two weeks ago and still nothing, please check my order",
                Some("en"),
            ),
            ("とてもかわいい", Some("ja")),
            ("정말 예뻐요", Some("ko")),
            // Handles, links and emoji around the words change nothing.
            (
                "@maria.shop 😍😍 Adorei essa cor, vocês entregam no Brasil? Quero muito comprar uma https://acme.com/x",
                Some("pt"),
            ),
        ]);
    }

    #[test]
    fn unknown_when_there_is_nothing_to_read() {
        check(&[
            ("😍😍", None),
            ("🔥🔥🔥 👏👏", None),
            ("ok", None),
            ("@bruno.silva", None),
            ("@ana @carla_m @bruno.silva 😍", None),
            ("#ootd #style #summer", None),
            ("https://acme.com/shop", None),
            ("100% 5/5 ⭐⭐⭐⭐⭐", None),
            ("", None),
            ("wow", None),
            ("nice pic", None),
            ("so cute", None),
        ]);
    }

    #[test]
    fn handles_links_emoji_and_digits_do_not_count() {
        let (words, letters) =
            words_only("@ana love😍it!! 100% https://x.co/a www.acme.com #ootd it's e-mail");
        assert_eq!(words, "love it it's e-mail");
        assert_eq!(letters, 14);
    }

    #[test]
    fn a_long_comment_is_read_up_to_a_bound() {
        let long = "Ich habe mit diesem Trader tausend Euro verdient, schreibt ihm. ".repeat(100);
        let (words, _) = words_only(&long);
        assert!(
            (MAX_WORDS_BYTES..MAX_WORDS_BYTES + 40).contains(&words.len()),
            "{}",
            words.len()
        );
        assert_eq!(detect(&long).code(), Some("de"));
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_are_refused() {
        for l in Language::all() {
            assert_eq!(Language::parse(l.code()), Some(l), "{}", l.name());
        }
        assert_eq!(Language::all().count(), 70);
        assert_eq!(Language::parse("ES").map(Language::code), Some("es"));
        assert_eq!(Language::parse("no").map(Language::code), Some("nb"));
        for bad in ["xx", "eng", "", "e", "ms"] {
            assert_eq!(Language::parse(bad), None, "{bad}");
        }
    }

    /// An unknown language still says what it can: its script, and whether English is ruled
    /// out (by a second look against English alone, or by romanised Hindi's words).
    #[test]
    fn unknown_keeps_what_rules_english_out() {
        let en = [Language(whatlang::Lang::Eng)];
        let en_id = [en[0], Language(whatlang::Lang::Ind)];
        let hi = [Language(whatlang::Lang::Hin)];
        // (text, shown as, outside [en], outside [en, id], "und" in [en, und])
        let cases: &[(&str, &str, bool, bool, bool)] = &[
            ("धन्यवाद भाई", "unknown (Devanagari)", true, true, false),
            ("Очень красиво", "unknown (Cyrillic)", true, true, false),
            (
                "udah aku kirimin pesan kak, dibaca yaa 😊",
                "unknown (not English)",
                true,
                false,
                false,
            ),
            // Romanised Hindi, which whatlang read as English (0.69).
            (
                "booking hold ke liye card no. + expiry dm kro",
                "unknown (not English)",
                true,
                false,
                false,
            ),
            (
                "bhai ye kya hai yaar",
                "unknown (not English)",
                true,
                false,
                false,
            ),
            // Short English, whose unsure guesses beat English by a little: could be English.
            (
                "i want neha’s insta id..!! 😝",
                "unknown",
                false,
                false,
                true,
            ),
            (
                "I know it old song but (like) if you watching in 2015",
                "unknown",
                false,
                false,
                true,
            ),
            ("nice pic bro love it", "unknown", false, false, true),
            (
                "is this available in size medium",
                "unknown",
                false,
                false,
                true,
            ),
            ("a mere two days, hum along", "unknown", false, false, true),
            (
                "My PE teacher has the same bag, hu knew",
                "unknown",
                false,
                false,
                true,
            ),
            // No letters: nothing is ruled out.
            ("😍😍", "unknown", false, false, true),
            ("@bruno.silva 100%", "unknown", false, false, true),
        ];
        let mut wrong = Vec::new();
        for &(text, shown, out_en, out_en_id, und) in cases {
            let d = detect(text);
            let got = (
                d.to_string(),
                d.is_outside(&en),
                d.is_outside(&en_id),
                d.is_in(&en, true),
            );
            if got != (shown.to_string(), out_en, out_en_id, und) {
                wrong.push(format!("{text:?}: {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        // An unknown comment in a listed language's script is not outside the list, and "und"
        // alone matches every unknown comment.
        let devanagari = detect("धन्यवाद भाई");
        assert!(!devanagari.is_outside(&hi));
        assert!(devanagari.is_in(&hi, true) && devanagari.is_in(&[], true));
        assert!(!devanagari.is_in(&hi, false));
        // A known language is never overruled by its script.
        let ru = detect("Очень красивый цвет, а есть размер побольше?");
        assert!(ru.is_outside(&en) && !ru.is_in(&en, true));
    }

    #[test]
    fn shown_as_code_and_confidence() {
        let d = detect("Очень красивый цвет, а есть размер побольше?");
        assert!(d.to_string().starts_with("ru ("), "{d}");
        assert_eq!(detect("😍😍").to_string(), "unknown");
    }
}
