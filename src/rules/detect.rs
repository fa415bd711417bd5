//! Detectors behind the non-word conditions: links, contact details, mentions, emoji, capitals,
//! look-alike usernames. Pure functions over the text and its normalised forms.

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;

use super::normalize::{Normalized, Pattern, fold_confusable};

/// A link found in a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Lowercased host, e.g. `spam.biz`.
    pub host: String,
    /// Span in the original text when it could be mapped (not for de-obfuscated links).
    pub span: Option<Range<usize>>,
}

fn re(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

/// Every URL or bare domain with a real top-level domain, including obfuscated ones
/// (`site(dot)com`, `site [.] com`, `site dot com`).
pub fn links(n: &Normalized) -> Vec<Link> {
    let mut out = Vec::new();
    find_links(&n.folded, |host, r| {
        out.push(Link {
            host,
            span: Some(n.folded_to_original(r)),
        })
    });
    static OBFUSCATED: OnceLock<Option<Regex>> = OnceLock::new();
    let obfuscated = re(
        &OBFUSCATED,
        r"\s*(?:[\(\[\{<]\s*(?:dot|\.)\s*[\)\]\}>]|\s(?:dot)\s)\s*",
    );
    if let Some(ob) = obfuscated.filter(|ob| ob.is_match(&n.folded)) {
        let plain = ob.replace_all(&n.folded, ".");
        find_links(&plain, |host, _| {
            if !out.iter().any(|l| l.host == host) {
                out.push(Link { host, span: None });
            }
        });
    }
    out
}

fn find_links(text: &str, mut found: impl FnMut(String, Range<usize>)) {
    if !text.contains('.') {
        return;
    }
    let mut finder = linkify::LinkFinder::new();
    finder.url_must_have_scheme(false);
    finder.kinds(&[linkify::LinkKind::Url]);
    for link in finder.links(text) {
        let s = link.as_str();
        let has_scheme = s.contains("://");
        if let Some(host) = host_of(s).filter(|h| has_scheme || known_tld(h)) {
            found(host, link.start()..link.end());
        }
    }
}

fn host_of(link: &str) -> Option<String> {
    let rest = link.split_once("://").map_or(link, |(_, r)| r);
    let host = rest
        .split(['/', '?', '#'])
        .next()?
        .rsplit('@')
        .next()?
        .split(':')
        .next()?
        .trim_end_matches('.')
        .to_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Whether the host ends in a top-level domain of the public suffix list.
fn known_tld(host: &str) -> bool {
    let Some(tld) = host.rsplit('.').next() else {
        return false;
    };
    if tld.is_empty() || !host.contains('.') {
        return false;
    }
    psl::suffix(tld.as_bytes()).is_some_and(|s| s.is_known())
}

/// `host` is `domain` or one of its subdomains.
pub fn domain_matches(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|p| p.ends_with('.'))
}

/// Kinds of contact details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContactKind {
    Email,
    Phone,
    Whatsapp,
    Telegram,
}

impl ContactKind {
    pub const ALL: [ContactKind; 4] = [
        ContactKind::Email,
        ContactKind::Phone,
        ContactKind::Whatsapp,
        ContactKind::Telegram,
    ];

    pub fn parse(s: &str) -> Option<ContactKind> {
        match s {
            "email" => Some(ContactKind::Email),
            "phone" => Some(ContactKind::Phone),
            "whatsapp" => Some(ContactKind::Whatsapp),
            "telegram" => Some(ContactKind::Telegram),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Email => "email",
            ContactKind::Phone => "phone",
            ContactKind::Whatsapp => "whatsapp",
            ContactKind::Telegram => "telegram",
        }
    }
}

/// The first contact detail of the given kind: (what was found, original span).
pub fn contact(n: &Normalized, kind: ContactKind) -> Option<(String, Option<Range<usize>>)> {
    static EMAIL: OnceLock<Option<Regex>> = OnceLock::new();
    static PHONE: OnceLock<Option<Regex>> = OnceLock::new();
    static WA_LINK: OnceLock<Option<Regex>> = OnceLock::new();
    static TG_LINK: OnceLock<Option<Regex>> = OnceLock::new();
    let folded = |r: Option<&Regex>| {
        r.and_then(|r| r.find(&n.folded)).map(|m| {
            (
                m.as_str().to_string(),
                Some(n.folded_to_original(m.range())),
            )
        })
    };
    static WA_WORDS: OnceLock<Vec<(&'static str, Pattern)>> = OnceLock::new();
    static TG_WORDS: OnceLock<Vec<(&'static str, Pattern)>> = OnceLock::new();
    let skeleton_word = |cell: &'static OnceLock<Vec<(&'static str, Pattern)>>,
                         words: &[&'static str]| {
        cell.get_or_init(|| words.iter().map(|w| (*w, Pattern::new(w))).collect())
            .iter()
            .find_map(|(w, p)| {
                n.skeleton
                    .match_indices(&p.skeleton)
                    .find_map(|(at, s)| p.verify(n, at..at + s.len()))
                    .map(|span| (w.to_string(), Some(span)))
            })
    };
    match kind {
        ContactKind::Email => folded(re(
            &EMAIL,
            r"[\w.+-]+\s*(?:@|\(at\)|\[at\])\s*[\w-]+(?:\s*(?:\.|\(dot\)|\[dot\])\s*[a-z]{2,})+",
        )),
        ContactKind::Phone => folded(re(&PHONE, r"\+?\(?\d(?:[\s().-]{0,2}\d){8,14}")),
        ContactKind::Whatsapp => folded(re(&WA_LINK, r"\bwa\.me/\S*")).or_else(|| {
            skeleton_word(
                &WA_WORDS,
                &["whatsapp", "whats app", "watsapp", "whatsap", "watsap"],
            )
        }),
        ContactKind::Telegram => folded(re(&TG_LINK, r"\bt\.me/\S*"))
            .or_else(|| skeleton_word(&TG_WORDS, &["telegram", "telegrm", "tg me"])),
    }
}

/// Number of @mentions.
pub fn mentions(text: &str) -> usize {
    static MENTION: OnceLock<Option<Regex>> = OnceLock::new();
    re(&MENTION, r"(?:^|[^\w@])@[\w.]+").map_or(0, |r| r.find_iter(text).count())
}

/// The text is only @mentions (and spaces/punctuation).
pub fn mentions_only(text: &str) -> bool {
    static MENTION: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(r) = re(&MENTION, r"@[\w.]+") else {
        return false;
    };
    mentions(text) > 0 && !r.replace_all(text, "").chars().any(char::is_alphanumeric)
}

/// Whether a character is (part of) an emoji.
fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F300..=0x1F3FA | 0x1F400..=0x1FAFF | 0x1F000..=0x1F2FF | 0x2600..=0x27BF
        | 0x2B00..=0x2BFF | 0x2300..=0x23FF | 0x3030 | 0x303D | 0x3297 | 0x3299)
}

/// Emoji characters (skin-tone modifiers, joiners and variation selectors not counted).
pub fn emojis(text: &str) -> usize {
    text.chars().filter(|c| is_emoji(*c)).count()
}

/// Only emoji and whitespace.
pub fn emoji_only(text: &str) -> bool {
    emojis(text) > 0
        && text.chars().all(|c| {
            is_emoji(c)
                || c.is_whitespace()
                || matches!(
                    c as u32,
                    0x200D | 0xFE0F | 0xFE0E | 0x1F3FB..=0x1F3FF | 0x20E3
                )
        })
}

/// Share of capitals among cased letters; `None` under 8 letters (too short to shout).
pub fn caps_ratio(text: &str) -> Option<f64> {
    let (mut upper, mut cased) = (0u32, 0u32);
    for c in text.chars() {
        if c.is_uppercase() {
            upper += 1;
            cased += 1;
        } else if c.is_lowercase() {
            cased += 1;
        }
    }
    (cased >= 8).then(|| f64::from(upper) / f64::from(cased))
}

/// A username reduced to the letters it looks like: confusables and leet folded, separators
/// (`_`, `.`) and repeats dropped.
pub fn username_skeleton(name: &str) -> String {
    let n = Normalized::new(&name.replace(['_', '.', '-'], ""));
    // Multi-letter look-alikes: `rn` reads as `m`, `vv` as `w`.
    let joined: String = n.skeleton.chars().filter(|c| c.is_alphanumeric()).collect();
    let joined = joined.replace("rn", "m").replace("vv", "w");
    let mut out = String::new();
    for c in joined.chars() {
        let c = fold_confusable(c);
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// Words impersonators add to a brand name.
const OFFICIAL_SUFFIXES: &[&str] = &[
    "official", "oficial", "support", "help", "helpdesk", "care", "team", "service", "hq", "real",
    "giveaway", "promo", "promos", "rewards", "winner", "admin", "customer", "assist",
];

/// Whether `username` looks like `brand` without being it: its skeleton is within
/// `max_distance` edits of the brand's, or is the brand plus an "official"-sounding word.
pub fn impersonates(username: &str, brand: &str, max_distance: usize) -> bool {
    if username.eq_ignore_ascii_case(brand) {
        return false;
    }
    let (u, b) = (username_skeleton(username), username_skeleton(brand));
    if b.len() < 3 {
        return false;
    }
    if u == b || levenshtein(&u, &b) <= max_distance {
        return true;
    }
    let rest = u
        .strip_prefix(&b)
        .or_else(|| u.strip_suffix(&b))
        .unwrap_or("");
    !rest.is_empty()
        && OFFICIAL_SUFFIXES
            .iter()
            .any(|s| rest == username_skeleton(s).as_str())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(text: &str) -> Vec<String> {
        links(&Normalized::new(text))
            .into_iter()
            .map(|l| l.host)
            .collect()
    }

    #[test]
    fn link_detection() {
        let cases: &[(&str, &[&str])] = &[
            ("see spam-shop.biz now", &["spam-shop.biz"]),
            ("https://evil.example.org/x?y=1", &["evil.example.org"]),
            ("visit site(dot)com today", &["site.com"]),
            ("visit site [.] com today", &["site.com"]),
            ("visit cheapfollowers dot net", &["cheapfollowers.net"]),
            ("node.js and e.g. this", &[]),
            ("i.e. nothing", &[]),
            ("3.14 is pi", &[]),
            ("polka dot dress", &[]),
            // An e-mail address is a contact, not a link.
            ("mail me a@b.com", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(hosts(text), *expected, "{text}");
        }
        assert!(domain_matches("shop.acme.com", "acme.com"));
        assert!(!domain_matches("notacme.com", "acme.com"));
    }

    #[test]
    fn contact_detection() {
        let found = |text: &str, kind| contact(&Normalized::new(text), kind).map(|f| f.0);
        use ContactKind::*;
        let cases = [
            (
                "write to john.doe@gmail.com",
                Email,
                Some("john.doe@gmail.com"),
            ),
            (
                "john (at) gmail (dot) com",
                Email,
                Some("john (at) gmail (dot) com"),
            ),
            ("call +1 (555) 010-9999", Phone, Some("+1 (555) 010-9999")),
            ("in 2024 we sold 300", Phone, None),
            ("wh@tsapp me", Whatsapp, Some("whatsapp")),
            ("W.H.A.T.S.A.P.P +44", Whatsapp, Some("whatsapp")),
            ("chat wa.me/4477", Whatsapp, Some("wa.me/4477")),
            ("what's up", Whatsapp, None),
            ("join t.me/cryptoking", Telegram, Some("t.me/cryptoking")),
            ("Telegram: @fx_mentor", Telegram, Some("telegram")),
        ];
        for (text, kind, expected) in cases {
            assert_eq!(found(text, kind).as_deref(), expected, "{text}");
        }
    }

    #[test]
    fn counters() {
        assert_eq!(mentions("@a @b.c hi @d"), 3);
        assert_eq!(mentions("mail a@b.com"), 0);
        assert!(mentions_only("@a @b!!"));
        assert!(!mentions_only("@a look"));
        assert_eq!(emojis("🔥🔥👍🏽 hi ❤️"), 4);
        assert!(emoji_only("🔥 👍🏽❤️"));
        assert!(!emoji_only("🔥 ok"));
        assert_eq!(caps_ratio("BUY NOW CHEAP"), Some(1.0));
        assert_eq!(caps_ratio("OK"), None);
    }

    #[test]
    fn impersonation() {
        let cases = [
            ("acme", "acme", false),
            ("ACME", "acme", false),
            ("acme_support", "acme", true),
            ("acme.official", "acme", true),
            ("аcmе", "acme", true),
            ("acnne", "acme", true),
            ("acme_fan_club", "acme", false),
            ("acmes", "acme", true),
            ("bob", "acme", false),
            ("nike", "acme", false),
        ];
        for (user, brand, expected) in cases {
            assert_eq!(impersonates(user, brand, 1), expected, "{user} vs {brand}");
        }
    }
}
