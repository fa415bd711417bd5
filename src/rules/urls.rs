//! Finding links in text: the URL finder of `linkify` 0.10 as the rules configure it (scheme
//! optional, non-ASCII hosts allowed, URLs only), ported to bytes.
//!
//! The finder runs on every comment with a dot or a colon in it, which is most of them
//! (`acme.com`, `@bruno.silva`, `Telegram:`), and linkify decodes every character it looks at
//! and reaches its scanners through dynamic calls. Every character its scanners treat
//! specially is ASCII but the control characters U+0080–U+009F (which end a path, and are
//! told by their two bytes), and any other character is treated alike wherever it appears (a
//! letter of a host, a character a URL may end with), so each decision can be made on one
//! byte: a byte of a multi-byte character is taken as the character, and a scan never stops
//! inside one. A property test holds the port to linkify's answers.
//!
//! Ported from linkify 0.10 (© 2017 Robin Stocker, MIT OR Apache-2.0): the scanners, their
//! decisions and their order are linkify's; linkify stays a dev-dependency for that test.

use std::ops::Range;

/// linkify's shortest text worth scanning for a domain (`g.cn`): a shortcut, as no shorter
/// text has a dot and a two-letter top-level domain.
const MIN_URL_LENGTH: usize = 4;

/// Calls `found` with the byte range of every link in `text`, in order, as linkify's
/// `LinkFinder` with `url_must_have_scheme(false)` and `kinds(&[LinkKind::Url])` finds them.
pub fn each_link(text: &[u8], mut found: impl FnMut(Range<usize>)) {
    // Scanners look back no further than the end of the last link (linkify's `rewind`).
    let mut floor = 0;
    let mut from = 0;
    while let Some(i) = text
        .get(from..)
        .and_then(|rest| memchr::memchr2(b':', b'.', rest))
    {
        let at = from + i;
        let link = if text[at] == b':' {
            url_at(text, floor, at)
        } else {
            domain_at(text, floor, at)
        };
        match link {
            Some(link) => {
                floor = link.end;
                from = link.end.max(at + 1);
                found(link);
            }
            None => from = at + 1,
        }
    }
}

/// A link with a scheme whose `://` starts at `colon`.
fn url_at(text: &[u8], floor: usize, colon: usize) -> Option<Range<usize>> {
    if !text[colon..].starts_with(b"://") {
        return None;
    }
    let after = colon + 3;
    if after >= text.len() {
        return None;
    }
    let (start, quote) = scheme_start(text, floor, colon);
    let start = start?;
    let require_host = matches!(&text[start..colon], b"https" | b"http" | b"ftp" | b"ssh");
    let (authority, _) = authority_end(&text[after..], true, require_host)?;
    let end = url_end(&text[after + authority..], quote);
    if authority == 0 && end == 0 {
        return None;
    }
    Some(start..after + authority + end)
}

/// A link without a scheme around the dot at `dot`.
fn domain_at(text: &[u8], floor: usize, dot: usize) -> Option<Range<usize>> {
    if text.len() - floor < MIN_URL_LENGTH {
        return None;
    }
    let (start, quote) = domain_start(text, floor, dot);
    let start = start?;
    let rest = &text[start..];
    let (authority, Some(_)) = authority_end(rest, false, true)? else {
        return None;
    };
    let end = url_end(&rest[authority..], quote);
    Some(start..start + authority + end)
}

/// Where the scheme before `colon` starts, and the quote before it, if any.
fn scheme_start(text: &[u8], floor: usize, colon: usize) -> (Option<usize>, Option<u8>) {
    let (mut first, mut digit, mut quote) = (None, None, None);
    for i in (floor..colon).rev() {
        match text[i] {
            b'a'..=b'z' | b'A'..=b'Z' => first = Some(i),
            b'0'..=b'9' => digit = Some(i),
            b'+' | b'-' | b'.' => {}
            b'@' => return (None, None),
            q @ (b'\'' | b'"') => {
                quote = Some(q);
                break;
            }
            _ => break,
        }
    }
    // Not `abc://` out of `1abc://`.
    if let (Some(first), Some(digit)) = (first, digit)
        && first > floor
        && first - 1 == digit
    {
        return (None, quote);
    }
    (first, quote)
}

/// Where the domain label before `dot` starts, and the quote before it, if any.
fn domain_start(text: &[u8], floor: usize, dot: usize) -> (Option<usize>, Option<u8>) {
    let (mut first, mut quote) = (None, None);
    for i in (floor..dot).rev() {
        match text[i] {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | 0x80.. => first = Some(i),
            // A link after `/`, `@` or another dot would have been found from there.
            b'/' | b'@' | b'.' => return (None, None),
            b'-' if first.is_none() => return (None, None),
            b'-' => first = Some(i),
            q @ (b'\'' | b'"') => {
                quote = Some(q);
                break;
            }
            _ => break,
        }
    }
    // (A label that starts with `-` is turned down by `authority_end`.)
    (first, quote)
}

/// The end of the authority (`user@host:port`) at the start of `s`, and its host's last dot;
/// `None` if it is not one. (RFC 3986's authority, as linkify reads it.)
fn authority_end(
    s: &[u8],
    mut userinfo_allowed: bool,
    require_host: bool,
) -> Option<(usize, Option<usize>)> {
    let mut end = 0;
    let mut maybe_last_dot = None;
    let mut last_dot = None;
    let mut number_dots = 0;
    let mut dot_allowed = false;
    let mut hyphen_allowed = false;
    let mut all_numeric = true;
    let mut maybe_host = true;
    let mut host_ended = false;
    for (i, &c) in s.iter().enumerate() {
        let can_be_last = match c {
            b'a'..=b'z' | b'A'..=b'Z' | 0x80.. => {
                dot_allowed = true;
                hyphen_allowed = true;
                last_dot = maybe_last_dot;
                all_numeric = false;
                maybe_host &= !host_ended;
                !require_host || !host_ended
            }
            b'0'..=b'9' => {
                dot_allowed = true;
                hyphen_allowed = true;
                if last_dot != maybe_last_dot {
                    last_dot = maybe_last_dot;
                    number_dots += 1;
                }
                maybe_host &= !host_ended;
                !require_host || !host_ended
            }
            b'-' => {
                maybe_host &= hyphen_allowed;
                dot_allowed = false;
                all_numeric = false;
                !require_host
            }
            b'.' => {
                host_ended |= !dot_allowed;
                dot_allowed = false;
                hyphen_allowed = false;
                maybe_last_dot = Some(i);
                false
            }
            b'_' | b'~' => {
                maybe_host = false;
                false
            }
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {
                host_ended = true;
                if !userinfo_allowed && require_host {
                    break;
                }
                false
            }
            b':' => {
                // A port: the host's last dot stays.
                maybe_last_dot = last_dot;
                false
            }
            b'@' => {
                if !userinfo_allowed {
                    return None;
                }
                // What came before was user information: the host starts again.
                userinfo_allowed = false;
                maybe_last_dot = None;
                last_dot = None;
                dot_allowed = false;
                hyphen_allowed = false;
                all_numeric = true;
                maybe_host = true;
                host_ended = false;
                false
            }
            b'/' => {
                if !require_host {
                    end = i;
                }
                break;
            }
            _ => break,
        };
        if can_be_last {
            end = i + 1;
        }
    }
    if !require_host {
        return Some((end, last_dot));
    }
    if !maybe_host {
        return None;
    }
    if all_numeric {
        // An IPv4 address has four numbers.
        if number_dots != 3 {
            return None;
        }
    } else if let Some(dot) = last_dot {
        // A top-level domain starts with two ASCII letters (not `v1.1`).
        let tld = s.get(dot + 1..dot + 3).unwrap_or_default();
        if !(tld.len() == 2 && tld.iter().all(u8::is_ascii_alphabetic)) {
            return None;
        }
    }
    Some((end, last_dot))
}

/// How much of `s` (what follows an authority) belongs to the link: a path or query, without
/// the punctuation that usually ends a sentence, with brackets balanced.
fn url_end(s: &[u8], quote: Option<u8>) -> usize {
    if !s.starts_with(b"/") && !s.starts_with(b"?") {
        return 0;
    }
    let (mut round, mut square, mut curly) = (0i32, 0i32, 0i32);
    let mut single_quote = false;
    let mut previous_can_be_last = true;
    let mut end = 0;
    for (i, &c) in s.iter().enumerate() {
        let can_be_last = match c {
            0x00..=0x1F | b' ' | b'|' | b'"' | b'<' | b'>' | b'`' | 0x7F => break,
            // U+0080..U+009F, control characters.
            0xC2 if s.get(i + 1).is_some_and(|n| (0x80..=0x9F).contains(n)) => break,
            b'?' | b'!' | b'.' | b',' | b':' | b';' | b'*' => false,
            b'/' => previous_can_be_last,
            b'(' | b'[' | b'{' => {
                *match c {
                    b'(' => &mut round,
                    b'[' => &mut square,
                    _ => &mut curly,
                } += 1;
                false
            }
            b')' | b']' | b'}' => {
                let depth = match c {
                    b')' => &mut round,
                    b']' => &mut square,
                    _ => &mut curly,
                };
                *depth -= 1;
                if *depth < 0 {
                    break;
                }
                true
            }
            _ if Some(c) == quote => break,
            b'\'' => {
                single_quote = !single_quote;
                !single_quote
            }
            _ => true,
        };
        if can_be_last {
            end = i + 1;
        }
        previous_can_be_last = can_be_last;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    fn links(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        each_link(text.as_bytes(), |r| out.push(&text[r]));
        out
    }

    fn linkify_links(text: &str) -> Vec<&str> {
        let mut finder = linkify::LinkFinder::new();
        finder.url_must_have_scheme(false);
        finder.kinds(&[linkify::LinkKind::Url]);
        finder.links(text).map(|l| l.as_str()).collect()
    }

    #[test]
    fn links_as_linkify_finds_them() {
        let cases: &[(&str, &[&str])] = &[
            ("see spam-shop.biz now", &["spam-shop.biz"]),
            (
                "https://evil.example.org/x?y=1.",
                &["https://evil.example.org/x?y=1"],
            ),
            ("(see acme.com/shop)", &["acme.com/shop"]),
            ("wiki.org/a_(b) and x", &["wiki.org/a_(b)"]),
            ("@bruno.silva e.g. 3.14 node.js...", &["node.js"]),
            ("mail a@b.com", &[]),
            ("1.2.3.4/x and 1.2.3", &["1.2.3.4/x"]),
            // Not `abc://` out of `1abc://`, and a domain right after `/` is part of that.
            ("1abc://x.com 'ftp://h.io'", &["ftp://h.io"]),
            ("übel.de/ä and über.com", &["übel.de/ä", "über.com"]),
            ("-a.com a-.com a.-b.com", &[]),
            ("x://y", &["x://y"]),
            ("http://", &[]),
            // A top-level domain starts with two ASCII letters; a control character ends a
            // path (U+0085 is two bytes, C2 85).
            ("a.b\u{85}/c a.bc\u{85}/c", &["a.bc\u{85}/c"]),
            ("acme.com/\u{85}x", &["acme.com/"]),
            // The next link is looked for after the last one's end, not across it.
            ("acme.com/\u{85}x.biz", &["acme.com/", "\u{85}x.biz"]),
            // A quote before a link ends it at the same quote.
            ("'x.com/a'b \"y.com/c'd", &["x.com/a", "y.com/c'd"]),
            // A port keeps the host's last dot.
            ("a.bc.:80", &["a.bc.:80"]),
            // User information may hold delimiters, the host may not.
            ("http://a!b@c.com http://c.com!b", &["http://a!b@c.com"]),
            // After user information the host may be an IPv4 address.
            ("http://ab@1.2.3.4", &["http://ab@1.2.3.4"]),
            // A quote before a scheme ends the link at the same quote.
            ("'http://x.com/a'b", &["http://x.com/a"]),
            // A `/` after a character that cannot end a link cannot end it either.
            ("x.com/a./ x.com/a/", &["x.com/a", "x.com/a/"]),
            // An empty authority with a path.
            ("x1:///path", &["x1:///path"]),
        ];
        for (text, want) in cases {
            assert_eq!(links(text), *want, "{text}");
            assert_eq!(linkify_links(text), *want, "linkify on {text}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// The port finds what linkify finds, where linkify finds it, in texts made of the
        /// pieces links are made of and the characters each scanner treats specially.
        #[test]
        fn the_port_finds_what_linkify_finds(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "http", "https", "ftp", "ssh", "x1", "://", "www.", ".com", ".biz",
                        ".c", "acme", "1.2.3.4", "@", "user@", ":8080", "/path", "?q=1", "#f",
                        "é", "😍", "\u{85}", "\u{9f}", "\u{a0}", "..", "--", " ", "'", "\"",
                    ]).prop_map(String::from),
                    "[a-c0-2._~!$&'()*+,;=:@/?#\\[\\]{}<>|`\\- \\t\\x7f]{1,3}",
                ],
                0..12,
            ),
        ) {
            let text = parts.concat();
            proptest::prop_assert_eq!(links(&text), linkify_links(&text), "{:?}", text);
        }
    }
}
