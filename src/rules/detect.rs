//! Detectors behind the non-word conditions: links, contact details, mentions, emoji, capitals,
//! look-alike usernames. Pure functions over the text and its normalised forms.
//!
//! Whole on purpose: about 510 lines of detectors; the rest is their tests.

use std::ops::Range;
use std::sync::{LazyLock, OnceLock};

use regex::Regex;

use super::normalize::{
    Normalized, Pattern, classes_word, fold_confusable, is_emoji, is_lower, is_upper, unleet,
};

/// The links found in a comment: each one's host (lowercased, e.g. `spam.biz`) and its span
/// in the folded text (none for a de-obfuscated link; mapped to the original only for
/// evidence, since most links found are allowed ones). The hosts share one buffer, and a
/// rule set's scan keeps both buffers for the next comment: finding links allocates nothing
/// once they have grown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    hosts: String,
    /// (host's range in `hosts`, span in the folded text)
    list: Vec<(Range<usize>, Option<Range<usize>>)>,
    /// Per link, once asked: whether its host was written in ASCII (several rules ask of
    /// the same link, and the answer can cost a map of the text).
    ascii: Vec<std::cell::Cell<Option<bool>>>,
}

impl Links {
    /// Each link's host and span in the folded text, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<Range<usize>>)> {
        self.list
            .iter()
            .map(|(host, span)| (self.hosts.get(host.clone()).unwrap_or(""), span.clone()))
    }

    /// [`Links::iter`] with each link's index, for [`Links::written_in_ascii`].
    pub fn indexed(&self) -> impl Iterator<Item = (usize, &str, Option<Range<usize>>)> {
        self.iter().enumerate().map(|(i, (h, s))| (i, h, s))
    }

    /// Whether link `i`'s host was written in ASCII: `find` answers the first time.
    pub fn written_in_ascii(&self, i: usize, find: impl FnOnce() -> bool) -> bool {
        let Some(cell) = self.ascii.get(i) else {
            return find();
        };
        if let Some(known) = cell.get() {
            return known;
        }
        let found = find();
        cell.set(Some(found));
        found
    }

    fn clear(&mut self) {
        self.hosts.clear();
        self.list.clear();
        self.ascii.clear();
    }

    fn push(&mut self, host: &str, span: Option<Range<usize>>) {
        let at = self.hosts.len();
        self.hosts.push_str(host);
        self.list.push((at..self.hosts.len(), span));
        self.ascii.push(std::cell::Cell::new(None));
    }

    fn has(&self, host: &str) -> bool {
        self.iter().any(|(h, _)| h == host)
    }
}

/// Substrings the detectors look for before running a regex, with their searchers built once.
type Needle = LazyLock<memchr::memmem::Finder<'static>>;
static AT_ROUND: Needle = LazyLock::new(|| memchr::memmem::Finder::new("(at)"));
static AT_SQUARE: Needle = LazyLock::new(|| memchr::memmem::Finder::new("[at]"));

fn contains(haystack: &str, needle: &Needle) -> bool {
    needle.find(haystack.as_bytes()).is_some()
}

fn re(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

/// Every URL or bare domain with a real top-level domain, including obfuscated ones
/// (`site(dot)com`, `site [.] com`, `site dot com`), into `out` (cleared first).
/// `dot_word`: whether the skeleton has the word "dot", if the caller's word lookup already
/// knows (else it is searched for here).
pub fn links_into(n: &Normalized<'_>, dot_word: Option<bool>, out: &mut Links) {
    links_with(n, dot_word, true, out);
}

/// [`links_into`]; `screen`: rule texts out first by what every link or obfuscation needs
/// (the tests compare with and without).
fn links_with(n: &Normalized<'_>, dot_word: Option<bool>, screen: bool, out: &mut Links) {
    out.clear();
    let dot = !screen || n.may_have(b'.');
    find_links(&n.folded, dot, screen, |host, r| out.push(host, Some(r)));
    static OBFUSCATED: OnceLock<Option<Regex>> = OnceLock::new();
    let obfuscated = re(
        &OBFUSCATED,
        r"\s*(?:[\(\[\{<]\s*(?:dot|\.)\s*[\)\]\}>]|\s(?:dot)\s)\s*",
    );
    // Every obfuscation has an opening bracket, or "dot" between spaces, which makes it a
    // word of the skeleton; most comments have neither.
    let maybe = !screen
        || b"([{<".iter().any(|&b| n.may_have(b))
        || dot_word.unwrap_or_else(|| has_dot_word(n.skeleton()));
    if let Some(ob) = obfuscated.filter(|ob| maybe && ob.is_match(&n.folded)) {
        let plain = ob.replace_all(&n.folded, ".");
        let dot = memchr::memchr(b'.', plain.as_bytes()).is_some();
        find_links(&plain, dot, screen, |host, _| {
            if !out.has(host) {
                out.push(host, None);
            }
        });
    }
}

/// Whether the skeleton (words separated by single spaces) has the word "dot".
pub(super) fn has_dot_word(sk: &[u8]) -> bool {
    static DOT: Needle = LazyLock::new(|| memchr::memmem::Finder::new("dot"));
    DOT.find_iter(sk)
        .any(|at| (at == 0 || sk[at - 1] == b' ') && sk.get(at + 3).is_none_or(|&b| b == b' '))
}

/// `dot`: whether the text has a dot (text without one has no link). Calls `found` with
/// each link's host and span.
fn find_links(text: &str, dot: bool, screen: bool, mut found: impl FnMut(&str, Range<usize>)) {
    if !dot {
        return;
    }
    let bytes = text.as_bytes();
    // A bare host needs a dot with a letter or digit after it ("..." and "end." do not
    // count); a link with a scheme counts whatever its host.
    let dotted = || {
        memchr::memchr_iter(b'.', bytes).any(|at| {
            text[at + 1..]
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric)
        })
    };
    let schemed = || memchr::memchr_iter(b':', bytes).any(|at| bytes[at + 1..].starts_with(b"//"));
    if screen && !(dotted() || schemed()) {
        return;
    }
    super::urls::each_link(bytes, |link| {
        let Some(s) = text.get(link.clone()) else {
            return;
        };
        let (host, has_scheme) = host_of(s);
        if let Some(host) = host.filter(|h| has_scheme || known_tld(h)) {
            found(host, link);
        }
    });
}

/// Where a link's part after `://` begins, if it has a scheme.
fn after_scheme(link: &[u8]) -> Option<usize> {
    link.windows(3).position(|w| w == b"://").map(|at| at + 3)
}

/// The host of a link (after the scheme and any `user@`, before the port, path or query,
/// without trailing dots), and whether the link has a scheme. (A fragment cannot follow a
/// host directly: the link finder ends a link before a `#` that is not in its path.) Byte
/// loops: every delimiter is ASCII, and links are short (a search call per delimiter cost
/// more).
fn host_of(link: &str) -> (Option<&str>, bool) {
    let (start, authority, scheme) = authority_of(link);
    let user = authority
        .iter()
        .rposition(|&c| c == b'@')
        .map_or(0, |at| at + 1);
    let host = &authority[user..];
    let host = &host[..host.iter().position(|&c| c == b':').unwrap_or(host.len())];
    // The folded text is lowercase already (folding it again changes nothing).
    let dots = host.iter().rev().take_while(|&&c| c == b'.').count();
    let from = start + user;
    let host = link
        .get(from..from + host.len() - dots)
        .filter(|h| !h.is_empty());
    (host, scheme)
}

/// Where a link's authority begins, its bytes (after the scheme, before the path or query),
/// and whether the link has a scheme.
fn authority_of(link: &str) -> (usize, &[u8], bool) {
    let b = link.as_bytes();
    let scheme = after_scheme(b);
    let start = scheme.unwrap_or(0);
    let rest = b.get(start..).unwrap_or_default();
    let end = rest
        .iter()
        .position(|c| matches!(c, b'/' | b'?'))
        .unwrap_or(rest.len());
    (start, &rest[..end], scheme.is_some())
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

/// An `allow_domains` or `deny_domains` list. Each domain's last two bytes are kept as a
/// number beside it: a host can only be the domain or under it if it ends in the same two
/// bytes, and most hosts (`acme.com` against a list of link shorteners) are ruled out by that
/// one comparison per domain instead of a string comparison.
#[derive(Debug, Clone, Default)]
pub struct Domains {
    names: Vec<String>,
    /// Per name: its last two bytes, or 0 for a one-byte name (always compared in full).
    tails: Vec<u16>,
}

/// The last two bytes of a name as a number; 0 for a shorter one.
fn tail(name: &str) -> u16 {
    name.as_bytes()
        .last_chunk::<2>()
        .map_or(0, |t| u16::from_le_bytes(*t))
}

impl Domains {
    pub fn new(names: Vec<String>) -> Domains {
        let tails = names.iter().map(|n| tail(n)).collect();
        Domains { names, tails }
    }

    /// [`Domains::holds`] for an allow list: a host written with letters of another script
    /// (`аcme.com` with a Cyrillic `а`, which folding reads as `acme.com`) is another site,
    /// never an allowed one. `written_in_ascii` ([`host_reads_as_ascii`] of the link as the
    /// comment wrote it) is asked only when the host is allowed: finding the written link
    /// can cost a map of the text.
    pub fn allows(&self, host: &str, written_in_ascii: impl FnOnce() -> bool) -> bool {
        self.holds(host) && written_in_ascii()
    }

    /// Whether `host` is one of the domains or under one (as [`domain_matches`]).
    pub fn holds(&self, host: &str) -> bool {
        let t = tail(host);
        self.tails
            .iter()
            .zip(&self.names)
            .any(|(&dt, d)| (dt == t || dt == 0) && domain_matches(host, d))
    }
}

/// A `lookalike_domains` list: the domains the brand registered, each with its name (`acme`
/// for `acme.co.uk`) and that name's skeleton, against which a link's host is read.
#[derive(Debug, Clone, Default)]
pub struct Lookalikes {
    domains: Vec<Listed>,
}

#[derive(Debug, Clone)]
struct Listed {
    /// As listed, lowercased.
    domain: String,
    /// The name, as written (`acme`).
    name: String,
    /// The name's skeleton (leetspeak, look-alike letters and repeats folded).
    skeleton: String,
}

/// A brand name shorter than this has too many honest neighbours ("ac", "go") to read hosts
/// against.
pub const LOOKALIKE_MIN_NAME: usize = 3;

/// From this long, a name one edit away also counts ("lunashoess"); shorter names have
/// honest words one edit away ("acme": "acne").
const LOOKALIKE_FUZZY_FROM: usize = 5;

/// Words a fake site puts beside the brand's name (`acme-support`, `acmeofficial`,
/// `shop-acme`): what it pretends to be. Other words (`acme-brick`, `acme-tech`, and `care`
/// and `team`, which honest organisations use: `acmecare.org`, `acmeteam.de`) are left
/// alone, as is the bare name on another host (`acme.zendesk.com`, `acme.co.uk`, another
/// company's `acme.org`), which is too often honest to hide.
#[rustfmt::skip]
const LOOKALIKE_BAIT: &[&str] = &[
    "official", "oficial", "support", "help", "helpdesk", "service", "services", "giveaway",
    "giveaways", "promo", "promos", "reward", "rewards", "winner", "winners", "admin",
    "customer", "customers", "assist", "refund", "refunds", "claim", "claims", "prize",
    "prizes", "verify", "verification", "login", "signin", "secure", "security", "account",
    "accounts", "billing", "payment", "payments", "outlet", "deal", "deals", "sale", "sales",
    "discount", "discounts", "gift", "gifts", "giftcard", "bonus", "contest", "desk", "center",
    "centre", "recovery", "free", "offer", "offers", "shop", "store", "lottery", "raffle",
    "cashback", "minigame", "spin", "win", "confirmation",
    // ...and in the languages of the written data: prize, gift, draw, official, verify.
    "premio", "premios", "premi", "premiacao", "regalo", "regalos", "sorteo", "sorteos",
    "sorteio", "sorteios", "brinde", "brindes", "cupom", "cupon", "bono", "resgate",
    "confirmacao", "verificacion", "cadeau", "cadeaux", "officiel", "gewinn", "gewinnspiel",
    "offiziell", "ufficiale", "hadiah", "resmi", "verifikasi", "cekilis", "hediye", "destek",
    "iade", "quatang", "trungthuong", "inaam", "kyc",
];

/// Why a `lookalike_domains` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookalikeError {
    pub item: usize,
    pub message: String,
}

impl Lookalikes {
    /// The list, or the first entry that is not a domain the brand could have registered.
    pub fn new(domains: &[String]) -> Result<Lookalikes, LookalikeError> {
        let mut out = Vec::with_capacity(domains.len());
        for (item, raw) in domains.iter().enumerate() {
            let refuse = |why: String| LookalikeError {
                item,
                message: format!("{raw:?} {why}"),
            };
            let d = raw.trim().trim_end_matches('.').to_lowercase();
            if d.is_empty()
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                return Err(refuse(
                    "is not a domain name alone, such as \"acme.com\" (no scheme, path, port or wildcard; an internationalised name in its xn-- form)".into(),
                ));
            }
            if d.parse::<std::net::Ipv4Addr>().is_ok() {
                return Err(refuse("is an IP address: it has no name to imitate".into()));
            }
            let registrable = psl::domain(d.as_bytes()).filter(|r| r.suffix().is_known());
            let Some(registrable) = registrable else {
                let whole_suffix = psl::suffix(d.as_bytes())
                    .is_some_and(|s| s.is_known() && s.as_bytes() == d.as_bytes());
                return Err(refuse(if whole_suffix {
                    "is a public suffix (like com or co.uk): it has no name to imitate".into()
                } else {
                    "does not end in a known top-level domain (public suffix list)".into()
                }));
            };
            let suffix_len = registrable.suffix().as_bytes().len();
            let registrable = std::str::from_utf8(registrable.as_bytes()).unwrap_or_default();
            if registrable != d {
                return Err(refuse(format!(
                    "is a name under {registrable:?}: list the domain the brand registered (its subdomains are never look-alikes)"
                )));
            }
            let name = d
                .get(..d.len().saturating_sub(suffix_len + 1))
                .unwrap_or_default()
                .to_string();
            let skeleton = username_skeleton(&name);
            if skeleton.chars().count() < LOOKALIKE_MIN_NAME {
                return Err(refuse(format!(
                    "has no name of {LOOKALIKE_MIN_NAME} letters or more to compare links with"
                )));
            }
            out.push(Listed {
                domain: d,
                name,
                skeleton,
            });
        }
        Ok(Lookalikes { domains: out })
    }

    /// The listed domain that a link imitates, if any: `host` and `link` as the links
    /// detector found them (in the folded text); `written_in_ascii` says whether the link's
    /// host, as the comment wrote it, reads as ASCII ([`host_reads_as_ascii`]), and is asked
    /// only when the host is a listed domain. A host imitates a listed domain, without being
    /// it or under it, when:
    /// - it is the domain written with another script's letters (`аcme.com`, a Cyrillic
    ///   `а`; or its `xn--` form), which folding reads as the domain;
    /// - the domain is inside it (`acme.com.deals-outlet.shop`), or before an `@` in the
    ///   link (`https://acme.com@evil.example`: the browser goes to `evil.example`);
    /// - a label is the name spelled differently (`4cme.com`, `acrne.com`), or, for a name of
    ///   five letters or more, one letter off or two swapped (`lunashoess.com`);
    /// - a label is the name with a word of what a fake site pretends to be, hyphenated or
    ///   not (`acme-support.com`, `shop-acme.com`, `acmeofficial.net`; see
    ///   [`LOOKALIKE_BAIT`]).
    pub fn imitated(
        &self,
        host: &str,
        link: &str,
        written_in_ascii: impl Fn() -> bool,
    ) -> Option<&str> {
        let host = clean_host(host);
        if host.is_empty() {
            return None;
        }
        let decoded = host.split('.').any(|l| l.starts_with("xn--")).then(|| {
            let (unicode, _) = idna::domain_to_unicode(host);
            let n = super::Normalized::new(&unicode);
            (clean_host(&n.folded).to_string(), !nfkc_ascii(&unicode))
        });
        // The labels before the public suffix, and their skeleton: once per link, for every
        // listed domain, when asked (a link to the listed domain itself never asks).
        let labels = std::cell::OnceCell::new();
        let labels = || {
            *labels.get_or_init(|| {
                psl::suffix(host.as_bytes()).map(|suffix| {
                    host.get(..host.len().saturating_sub(suffix.as_bytes().len()))
                        .unwrap_or("")
                })
            })
        };
        let skeleton = std::cell::OnceCell::new();
        self.domains
            .iter()
            .find(|listed| {
                if let Some((folded, foreign)) = &decoded
                    && *foreign
                    && domain_matches(folded, &listed.domain)
                {
                    return true;
                }
                if domain_matches(host, &listed.domain) {
                    // The real domain, unless its letters are not the ones it reads as.
                    return !written_in_ascii();
                }
                inside(host, &listed.domain)
                    || userinfo(link).is_some_and(|u| {
                        let u = clean_host(u);
                        domain_matches(u, &listed.domain) || inside(u, &listed.domain)
                    })
                    || labels().is_some_and(|labels| {
                        let skeleton = skeleton.get_or_init(|| username_skeleton(labels));
                        labels_imitate(labels, skeleton, listed)
                    })
            })
            .map(|l| l.domain.as_str())
    }
}

/// The host without what the link finder took in around it: symbols and emoji before
/// (`👉acme.com`), and a run of other text glued after a Latin host (`acme.comで購入`).
fn clean_host(host: &str) -> &str {
    // Most hosts are clean already: ASCII letters, digits, dots and hyphens between two
    // letters or digits.
    let b = host.as_bytes();
    if b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
    {
        return host;
    }
    let host = host.trim_matches(|c: char| !c.is_alphanumeric());
    let latin = host
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        .map_or(host, |end| &host[..end]);
    if latin.contains('.') && latin.len() < host.len() {
        latin.trim_end_matches(['.', '-'])
    } else {
        host
    }
}

/// Whether a link's host, as the comment wrote it, reads as ASCII: once cut from what the
/// link finder took in around it and with compatibility forms folded (`ｗｗｗ.acme.com`
/// does; `аcme.com` with a Cyrillic `а` does not).
pub fn host_reads_as_ascii(written_link: &str) -> bool {
    nfkc_ascii(clean_host(host_of(written_link).0.unwrap_or_default()))
}

/// Whether text is ASCII once compatibility forms are folded (full-width `ｗｗｗ` is `www`,
/// as browsers read it; a Cyrillic `а` stays what it is).
fn nfkc_ascii(text: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    text.nfkc().all(|c| c.is_ascii())
}

/// Whether `domain` is a run of whole labels inside `host` other than its end.
fn inside(host: &str, domain: &str) -> bool {
    host.match_indices(domain).any(|(at, _)| {
        let before = at == 0 || host.as_bytes().get(at - 1) == Some(&b'.');
        let after = host.as_bytes().get(at + domain.len()) == Some(&b'.');
        before && after
    })
}

/// The user part of a link's authority (`acme.com` in `https://acme.com@evil.example/x`).
fn userinfo(link: &str) -> Option<&str> {
    let (start, authority, _) = authority_of(link);
    let at = authority.iter().rposition(|&c| c == b'@')?;
    link.get(start..start + at)
}

/// The label rules of [`Lookalikes::imitated`], over the labels before the public suffix
/// (`labels`, and `skeleton`, theirs as a whole).
fn labels_imitate(labels: &str, skeleton: &str, listed: &Listed) -> bool {
    static BAIT: LazyLock<Vec<String>> = LazyLock::new(|| {
        LOOKALIKE_BAIT
            .iter()
            .map(|w| username_skeleton(w))
            .collect()
    });
    let is_bait = |s: &str| BAIT.iter().any(|b| b == s);
    let name = listed.skeleton.as_str();
    let fuzzy = name.chars().count() >= LOOKALIKE_FUZZY_FROM;
    // Most links name another site: unless a name of five letters or more can be one edit
    // off, a host whose skeleton does not hold the name is ruled out in one pass.
    if !fuzzy && !skeleton.contains(name) {
        return false;
    }
    labels.split('.').filter(|l| !l.is_empty()).any(|label| {
        let parts: Vec<(&str, String)> = label
            .split('-')
            .filter(|p| !p.is_empty())
            .map(|p| (p, username_skeleton(p)))
            .collect();
        let named = |(raw, skel): &(&str, String)| {
            skel == name && *raw != listed.name
                || fuzzy && skel != name && edits_with_swaps(skel, name) <= 1
        };
        if parts.iter().any(named) {
            return true;
        }
        // Country codes and numbers beside the name say nothing either way
        // (`premios-acme-br`, `acme-2025-prize`).
        let filler =
            |(raw, _): &&(&str, String)| raw.len() <= 2 || raw.bytes().all(|b| b.is_ascii_digit());
        let words: Vec<&(&str, String)> = parts.iter().filter(|p| !filler(p)).collect();
        if words.len() > 1
            && words.iter().any(|(_, s)| s == name)
            && words.iter().all(|(_, s)| s == name || is_bait(s))
        {
            return true;
        }
        let joined = username_skeleton(&label.replace('-', ""));
        let rest = joined
            .strip_prefix(name)
            .or_else(|| joined.strip_suffix(name))
            .unwrap_or("");
        !rest.is_empty() && is_bait(rest)
    })
}

/// Edit distance that counts swapping two neighbouring letters as one edit (optimal string
/// alignment): "amce" is one swap from "acme".
fn edits_with_swaps(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        d[i * width] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// Username patterns (regexes matched against the whole username, ignoring case) that are
/// plain text, with `.` for any character: every username is tested on every comment, and a
/// comparison of a few bytes is far cheaper than a regex set's search. `None` when some
/// pattern uses other regex syntax (the set is used then), and the comparison is only made
/// for ASCII usernames (Instagram's are), where ignoring case means ignoring ASCII case.
pub fn plain_usernames(patterns: &[String]) -> Option<Vec<Vec<u8>>> {
    patterns
        .iter()
        .map(|p| {
            let plain = p.bytes().all(|b| {
                b.is_ascii() && (b == b'.' || !regex_syntax::is_meta_character(char::from(b)))
            });
            plain.then(|| p.as_bytes().to_vec())
        })
        .collect()
}

/// Whether an ASCII username is one of [`plain_usernames`]' patterns, as the regex
/// `(?i)^(?:pattern)$` would say.
pub fn plain_username_matches(patterns: &[Vec<u8>], username: &[u8]) -> bool {
    patterns.iter().any(|p| {
        p.len() == username.len()
            && p.iter().zip(username).all(|(&p, &u)| {
                if p == b'.' {
                    u != b'\n'
                } else {
                    p.eq_ignore_ascii_case(&u)
                }
            })
    })
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
pub fn contact(n: &Normalized<'_>, kind: ContactKind) -> Option<(String, Option<Range<usize>>)> {
    find_contact(n, kind, true)
}

/// Whether there is a contact detail of the given kind ([`contact`] without the span, which
/// would map the folded text back to the original).
pub fn has_contact(n: &Normalized<'_>, kind: ContactKind) -> bool {
    find_contact(n, kind, false).is_some()
}

/// Words that name WhatsApp or Telegram, matched on the skeleton like a rule's `words` (but
/// a phrase does not also match written as one word).
pub fn contact_words(kind: ContactKind) -> &'static [&'static str] {
    match kind {
        ContactKind::Whatsapp => &["whatsapp", "whats app", "watsapp", "whatsap", "watsap"],
        ContactKind::Telegram => &["telegram", "telegrm", "tg me"],
        ContactKind::Email | ContactKind::Phone => &[],
    }
}

/// [`has_contact`] for a kind with [`contact_words`], when whether one of the words is in
/// the skeleton is already known (the rule set's word automaton looks for them with its own
/// words, in the same pass): only the `wa.me/`/`t.me/` links are left to find.
pub fn has_contact_given_words(n: &Normalized<'_>, kind: ContactKind, word_found: bool) -> bool {
    word_found
        || match kind {
            ContactKind::Whatsapp | ContactKind::Telegram => contact_link(n, kind).is_some(),
            ContactKind::Email | ContactKind::Phone => has_contact(n, kind),
        }
}

/// The `wa.me/…` or `t.me/…` link of a WhatsApp or Telegram contact in the folded text.
fn contact_link<'n>(n: &'n Normalized<'_>, kind: ContactKind) -> Option<regex::Match<'n>> {
    let (host, cell, pattern) = match kind {
        ContactKind::Whatsapp => (&b"wa"[..], &WA_LINK, WA_LINK_PATTERN),
        ContactKind::Telegram => (&b"t"[..], &TG_LINK, TG_LINK_PATTERN),
        ContactKind::Email | ContactKind::Phone => return None,
    };
    let folded = n.folded.as_str();
    if !(n.may_have(b'.') && n.may_have(b'/') && me_link(folded, host)) {
        return None;
    }
    re(cell, pattern)?.find(folded)
}

/// Whether `text` has `host.me/` (`wa.me/`, `t.me/`), which the link patterns need: found
/// from the dots, which are few, rather than by a substring search of the whole text.
fn me_link(text: &str, host: &[u8]) -> bool {
    let b = text.as_bytes();
    memchr::memchr_iter(b'.', b)
        .any(|at| b[at + 1..].starts_with(b"me/") && b[..at].ends_with(host))
}

const WA_LINK_PATTERN: &str = r"\bwa\.me/\S*";
const TG_LINK_PATTERN: &str = r"\bt\.me/\S*";
static WA_LINK: OnceLock<Option<Regex>> = OnceLock::new();
static TG_LINK: OnceLock<Option<Regex>> = OnceLock::new();

fn find_contact(
    n: &Normalized<'_>,
    kind: ContactKind,
    spans: bool,
) -> Option<(String, Option<Range<usize>>)> {
    static EMAIL: OnceLock<Option<Regex>> = OnceLock::new();
    static PHONE: OnceLock<Option<Regex>> = OnceLock::new();
    let found = |m: regex::Match<'_>| {
        (
            m.as_str().to_string(),
            spans.then(|| n.folded_to_original(m.range())),
        )
    };
    let folded = |r: Option<&Regex>| r.and_then(|r| r.find(&n.folded)).map(found);
    static WA_WORDS: OnceLock<Words> = OnceLock::new();
    static TG_WORDS: OnceLock<Words> = OnceLock::new();
    let skeleton_word = |cell: &'static OnceLock<Words>, words: &[&'static str]| {
        let words = cell.get_or_init(|| Words::new(words));
        if !words.maybe_in(n.skeleton()) {
            return None;
        }
        let ac = words.ac.as_ref()?;
        ac.find_overlapping_iter(n.skeleton()).find_map(|m| {
            let (w, p) = words.patterns.get(m.pattern().as_usize())?;
            if !spans {
                return p.hits(n, m.range()).then(|| (w.to_string(), None));
            }
            p.verify(n, m.range())
                .map(|span| (w.to_string(), Some(span)))
        })
    };
    // Cheap tests that rule a kind out before its regex runs: an address needs an `@` or an
    // "at", a phone number nine digits.
    let f = &n.folded;
    match kind {
        ContactKind::Email
            if memchr::memchr(b'@', f.as_bytes()).is_none()
                && !contains(f, &AT_ROUND)
                && !contains(f, &AT_SQUARE) =>
        {
            None
        }
        ContactKind::Phone if f.bytes().filter(u8::is_ascii_digit).count() < 9 => None,
        ContactKind::Email => folded(re(
            &EMAIL,
            r"[\w.+-]+\s*(?:@|\(at\)|\[at\])\s*[\w-]+(?:\s*(?:\.|\(dot\)|\[dot\])\s*[a-z]{2,})+",
        )),
        ContactKind::Phone => folded(re(&PHONE, r"\+?\(?[0-9](?:[\s().-]{0,2}[0-9]){8,14}")),
        ContactKind::Whatsapp | ContactKind::Telegram => {
            let words = if kind == ContactKind::Whatsapp {
                &WA_WORDS
            } else {
                &TG_WORDS
            };
            contact_link(n, kind)
                .map(found)
                .or_else(|| skeleton_word(words, contact_words(kind)))
        }
    }
}

/// A fixed word list in skeleton form, searched in one pass.
struct Words {
    patterns: Vec<(&'static str, Pattern)>,
    ac: Option<aho_corasick::AhoCorasick>,
    /// The last three bytes of each pattern: a skeleton holding none of them cannot match,
    /// and most comments are ruled out by a few vectorised substring searches.
    tails: Vec<memchr::memmem::Finder<'static>>,
}

impl Words {
    fn new(words: &[&'static str]) -> Words {
        let patterns: Vec<_> = words.iter().map(|w| (*w, Pattern::new(w))).collect();
        let ac = aho_corasick::AhoCorasick::new(patterns.iter().map(|(_, p)| &p.skeleton)).ok();
        let mut tails: Vec<Vec<u8>> = patterns
            .iter()
            .map(|(_, p)| {
                let b = p.skeleton.as_bytes();
                b[b.len().saturating_sub(3)..].to_vec()
            })
            .collect();
        tails.sort();
        tails.dedup();
        Words {
            patterns,
            ac,
            tails: tails
                .into_iter()
                .map(|t| memchr::memmem::Finder::new(&t).into_owned())
                .collect(),
        }
    }

    fn maybe_in(&self, skeleton: &[u8]) -> bool {
        self.tails.iter().any(|t| t.find(skeleton).is_some())
    }
}

/// Number of @mentions.
pub fn mentions(text: &str) -> usize {
    // Counting needs only each mention's first character, not its end.
    memchr::memchr_iter(b'@', text.as_bytes())
        .filter(|&at| mention_at(text, at))
        .count()
}

/// Byte ranges of the @mentions: an `@` not preceded by a word character or another `@`,
/// followed by word characters and dots.
fn mention_spans(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    memchr::memchr_iter(b'@', text.as_bytes())
        .filter(|&at| mention_at(text, at))
        .map(|at| {
            let len: usize = text[at + 1..]
                .chars()
                .take_while(|c| in_mention(*c))
                .map(char::len_utf8)
                .sum();
            at..at + 1 + len
        })
}

/// Whether the `@` at byte `at` begins a mention.
fn mention_at(text: &str, at: usize) -> bool {
    let before = text[..at].chars().next_back();
    !before.is_some_and(|c| c == '@' || classes_word(c))
        && text[at + 1..].chars().next().is_some_and(in_mention)
}

fn in_mention(c: char) -> bool {
    c == '.' || classes_word(c)
}

/// The text is only @mentions (and spaces/punctuation).
pub fn mentions_only(text: &str) -> bool {
    let mut rest_start = 0;
    let mut any = false;
    for span in mention_spans(text) {
        if text[rest_start..span.start]
            .chars()
            .any(char::is_alphanumeric)
        {
            return false;
        }
        rest_start = span.end;
        any = true;
    }
    any && !text[rest_start..].chars().any(char::is_alphanumeric)
}

/// Emoji characters (skin-tone modifiers, joiners and variation selectors not counted).
pub fn emojis(text: &str) -> usize {
    // Every emoji range is encoded with a lead byte of E2, E3 or F0: decode only there. Under
    // E3 (U+3000–U+3FFF, where Japanese and Chinese text lives) only U+3000–U+303F and
    // U+3280–U+32BF hold emoji: the second byte rules the rest out without decoding.
    let bytes = text.as_bytes();
    memchr::memchr3_iter(0xE2, 0xE3, 0xF0, bytes)
        .filter(|&at| bytes[at] != 0xE3 || matches!(bytes.get(at + 1), Some(0x80 | 0x8A)))
        .filter(|at| {
            text.get(*at..)
                .and_then(|s| s.chars().next())
                .is_some_and(is_emoji)
        })
        .count()
}

#[cfg(test)]
fn emojis_by_char(text: &str) -> usize {
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
        if is_upper(c) {
            upper += 1;
            cased += 1;
        } else if is_lower(c) {
            cased += 1;
        }
    }
    (cased >= 8).then(|| f64::from(upper) / f64::from(cased))
}

/// A username reduced to the letters it looks like: confusables and leet folded, separators
/// (`_`, `.`) and repeats dropped.
pub fn username_skeleton(name: &str) -> String {
    let stripped: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '.' | '-'))
        .collect();
    let skeleton = ascii_word_skeleton(&stripped)
        .unwrap_or_else(|| Normalized::new(&stripped).into_skeleton());
    if skeleton.bytes().all(|b| b.is_ascii_alphanumeric())
        && !skeleton.contains("rn")
        && !skeleton.contains("vv")
    {
        // Already letters and digits, runs collapsed, nothing below to fold.
        return skeleton;
    }
    // Multi-letter look-alikes: `rn` reads as `m`, `vv` as `w`.
    let joined: String = skeleton.chars().filter(|c| c.is_alphanumeric()).collect();
    let joined = joined.replace("rn", "m").replace("vv", "w");
    let mut out = String::with_capacity(joined.len());
    for c in joined.chars() {
        let c = fold_confusable(c);
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// The skeleton of one ASCII word, the common username, without building every form;
/// `None` for anything else.
fn ascii_word_skeleton(word: &str) -> Option<String> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let has_letter = word.bytes().any(|b| b.is_ascii_alphabetic());
    let mut out = String::with_capacity(word.len());
    for b in word.bytes() {
        let c = char::from(b.to_ascii_lowercase());
        let c = if has_letter { unleet(c) } else { c };
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    Some(out)
}

/// Words impersonators add to a brand name.
const OFFICIAL_SUFFIXES: &[&str] = &[
    "official", "oficial", "support", "help", "helpdesk", "care", "team", "service", "hq", "real",
    "giveaway", "promo", "promos", "rewards", "winner", "admin", "customer", "assist",
];

/// Whether `username` looks like `brand` without being it: its skeleton is within
/// `max_distance` edits of the brand's, or is the brand plus an "official"-sounding word.
#[cfg(test)]
pub fn impersonates(username: &str, brand: &str, max_distance: usize) -> bool {
    let u = username_skeleton(username);
    let b = username_skeleton(brand);
    impersonates_skeleton(username, &u, brand, &b, max_distance)
}

/// [`impersonates`] with both skeletons already computed (a rule computes its brands' once).
pub fn impersonates_skeleton(
    username: &str,
    u: &str,
    brand: &str,
    b: &str,
    max_distance: usize,
) -> bool {
    if username.eq_ignore_ascii_case(brand) || b.len() < 3 {
        return false;
    }
    if u == b || levenshtein(u, b) <= max_distance {
        return true;
    }
    static SUFFIXES: LazyLock<Vec<String>> = LazyLock::new(|| {
        OFFICIAL_SUFFIXES
            .iter()
            .map(|s| username_skeleton(s))
            .collect()
    });
    let rest = u
        .strip_prefix(b)
        .or_else(|| u.strip_suffix(b))
        .unwrap_or("");
    !rest.is_empty() && SUFFIXES.iter().any(|s| rest == s)
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

    fn links(n: &Normalized<'_>, dot_word: Option<bool>, screen: bool) -> Links {
        let mut out = Links::default();
        links_with(n, dot_word, screen, &mut out);
        out
    }

    fn hosts(text: &str) -> Vec<String> {
        links(&Normalized::new(text), None, true)
            .iter()
            .map(|(host, _)| host.to_string())
            .collect()
    }

    #[test]
    fn link_detection() {
        let cases: &[(&str, &[&str])] = &[
            ("see spam-shop.biz now", &["spam-shop.biz"]),
            ("https://evil.example.org/x?y=1", &["evil.example.org"]),
            // The host alone: no user, port, query or fragment.
            ("https://user@spam.biz:8080/x", &["spam.biz"]),
            (
                "go https://spam.biz?x=1 or http://evil.biz#top",
                &["spam.biz", "evil.biz"],
            ),
            ("visit site(dot)com today", &["site.com"]),
            ("visit site [.] com today", &["site.com"]),
            ("visit cheapfollowers dot net", &["cheapfollowers.net"]),
            ("node.js and e.g. this", &[]),
            ("i.e. nothing", &[]),
            ("3.14 is pi", &[]),
            ("the end... really.", &[]),
            // With a scheme any host counts, even one cut short before its TLD.
            ("open https://intranet. now", &["intranet"]),
            ("open https://intranet.:80/x now", &["intranet"]),
            // A de-obfuscated link to a host already found is not listed twice.
            ("acme.com or acme(dot)com", &["acme.com"]),
            ("polka dot dress", &[]),
            // An e-mail address is a contact, not a link.
            ("mail me a@b.com", &[]),
            // Hosts come out lowercase, look-alikes folded.
            (
                "Visit HTTPS://Spam.BIZ/X and ＥＶＩＬ．ＣＯＭ",
                &["spam.biz", "evil.com"],
            ),
            ("VISIT SITE(DOT)COM", &["site.com"]),
        ];
        for (text, expected) in cases {
            assert_eq!(hosts(text), *expected, "{text}");
        }
        assert!(domain_matches("shop.acme.com", "acme.com"));
        assert!(!domain_matches("notacme.com", "acme.com"));
        let list = Domains::new(vec!["x".into(), "bit.ly".into(), "acme.com".into()]);
        for (host, holds) in [
            ("shop.acme.com", true),
            ("acme.com", true),
            ("notacme.com", false),
            ("bit.ly", true),
            ("a.bit.ly", true),
            ("abit.ly", false),
            ("x", true),
            ("a.x", true),
            ("ax", false),
            ("y", false),
        ] {
            assert_eq!(list.holds(host), holds, "{host}");
        }
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
        for text in [
            "🔥🔥👍🏽 hi ❤️",
            "⏰ ⭐ ☀ 〰 ㊗ 🀄 🃏 🅰",
            "plain",
            "é ü ñ 中文 ☺",
        ] {
            assert_eq!(emojis(text), emojis_by_char(text), "{text}");
            assert_eq!(
                Normalized::new(text).emojis(),
                emojis_by_char(text),
                "{text}"
            );
        }
        assert_eq!(mentions("@a@b .@c email@x.com @"), 2);
        assert!(mentions_only("@ana, @bruno.silva!"));
        assert!(emoji_only("🔥 👍🏽❤️"));
        assert!(!emoji_only("🔥 ok"));
        assert_eq!(caps_ratio("BUY NOW CHEAP"), Some(1.0));
        assert_eq!(caps_ratio("OK"), None);
    }

    /// `username_skeleton` without its shortcuts: the whole pipeline, every time.
    fn username_skeleton_the_long_way(name: &str) -> String {
        let plain = name.replace(['_', '.', '-'], "");
        let n = Normalized::new(&plain);
        let joined: String = n
            .skeleton_str()
            .chars()
            .filter(|c| c.is_alphanumeric())
            .collect();
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

    proptest::proptest! {
        #[test]
        fn ascii_usernames_take_a_shortcut_to_the_same_skeleton(word in "[a-zA-Z0-9]{1,16}") {
            proptest::prop_assert_eq!(
                ascii_word_skeleton(&word),
                Some(Normalized::new(&word).into_skeleton())
            );
        }

        #[test]
        fn username_skeletons_match_the_long_way(name in "[a-zA-Z0-9_.\\-]{0,16}|\\PC{0,12}") {
            proptest::prop_assert_eq!(username_skeleton(&name), username_skeleton_the_long_way(&name));
        }
    }

    proptest::proptest! {
        /// The byte shortcuts count exactly the emoji a walk over every character counts.
        #[test]
        fn emoji_counts_agree_with_counting_every_character(
            text in "\\PC{0,60}|[\u{2000}-\u{2BFF}\u{3000}-\u{33FF}\u{1F300}-\u{1FAFF}😍 a]{0,40}",
        ) {
            proptest::prop_assert_eq!(emojis(&text), emojis_by_char(&text));
            // The normaliser counts them as it goes.
            proptest::prop_assert_eq!(Normalized::new(&text).emojis(), emojis_by_char(&text));
        }
    }

    proptest::proptest! {
        /// Counting mentions by their first character counts what walking each mention
        /// to its end (and keeping those with a name) counts.
        #[test]
        fn mentions_are_counted_as_their_spans_are_found(text in "[@a._ é\u{1F525}]{0,16}") {
            let by_walk = memchr::memchr_iter(b'@', text.as_bytes())
                .filter(|&at| {
                    let before = text[..at].chars().next_back();
                    let name = text[at + 1..].chars().take_while(|c| *c == '.' || classes_word(*c));
                    !before.is_some_and(|c| c == '@' || classes_word(c)) && name.count() > 0
                })
                .count();
            proptest::prop_assert_eq!(mentions(&text), by_walk);
            proptest::prop_assert_eq!(mention_spans(&text).count(), by_walk);
        }
    }

    proptest::proptest! {
        /// The two-byte comparison in front of each domain never hides a match.
        #[test]
        fn a_domain_list_holds_what_comparing_every_domain_holds(
            host in "[ab.]{0,6}",
            names in proptest::collection::vec("[ab.]{1,4}", 0..6),
        ) {
            let every = names.iter().any(|d| domain_matches(&host, d));
            proptest::prop_assert_eq!(Domains::new(names).holds(&host), every);
        }
    }

    proptest::proptest! {
        /// Plain username patterns match an ASCII username exactly when the regex the rule
        /// compiles them to does: capitals either side, `.` for any character but a newline.
        #[test]
        fn plain_username_patterns_match_as_their_regexes_do(
            patterns in proptest::collection::vec("[aAkK_.1s]{1,4}", 1..4),
            username in "[aAkK_.1s\n]{0,5}",
        ) {
            let Some(plain) = plain_usernames(&patterns) else {
                panic!("the patterns are plain: {patterns:?}");
            };
            let regex = patterns
                .iter()
                .any(|p| Regex::new(&format!("(?i)^(?:{p})$")).is_ok_and(|r| r.is_match(&username)));
            proptest::prop_assert_eq!(plain_username_matches(&plain, username.as_bytes()), regex);
        }
    }

    #[test]
    fn only_patterns_without_other_regex_syntax_are_plain() {
        let plain =
            |ps: &[&str]| plain_usernames(&ps.iter().map(|p| p.to_string()).collect::<Vec<_>>());
        assert!(plain(&["acme", "acme_support", "acme.official", "Acme 1"]).is_some());
        // `.` is any character but a newline.
        assert!(plain_username_matches(&[b"a.b".to_vec()], b"AxB"));
        assert!(!plain_username_matches(&[b"a.b".to_vec()], b"a\nb"));
        for other in [
            "acme.*", "acme|x", "^acme", "ac[m]e", "acm\\e", "acme?", "ａcme",
        ] {
            assert_eq!(plain(&["acme", other]), None, "{other}");
        }
    }

    proptest::proptest! {
        /// The quick test for `wa.me/` and `t.me/` links says yes wherever their patterns match.
        #[test]
        fn me_links_are_never_missed(text in "[wat.me/ x]{0,24}") {
            for (host, pattern) in [(&b"wa"[..], WA_LINK_PATTERN), (b"t", TG_LINK_PATTERN)] {
                let matches = Regex::new(pattern).is_ok_and(|r| r.is_match(&text));
                proptest::prop_assert!(!matches || me_link(&text, host), "{:?} in {:?}", pattern, text);
            }
        }
    }

    proptest::proptest! {
        /// The quick tests in front of the link finder and the de-obfuscating regex never hide
        /// a link: the same links, in the same order, as running both on every comment.
        #[test]
        fn screening_for_links_hides_none(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "acme.com", "@bruno.silva", "3.14", "https://intranet.", "http://a.b/c",
                    "site(dot)com", "site [.] com", "site < . > net", "dot", "polka", "d0t",
                    "e.g.", ".com", "com", ":", "//", "(", ")", "[", "-", ".", "x.io:80",
                    "\u{3000}dot\u{3000}", "\tdot\n", "{dot}",
                ]),
                0..8,
            ),
            noise in "[a-z.:/()\\[\\]<>{} -]{0,12}",
        ) {
            let text = format!("{} {noise}", parts.join(" "));
            let n = Normalized::new(&text);
            proptest::prop_assert_eq!(links(&n, None, true), links(&n, None, false), "{}", text);
        }
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
