//! Moderation rules: a comment and its context in, a decision with evidence out.
//!
//! Architecture invariant: this module does no IO, reads no clock and cannot fail at evaluation
//! time. Everything that can go wrong (a bad regex, an unknown action) is caught by
//! [`RuleSet::compile`], which the config loader runs, so a running daemon never meets it.

mod normalize;

use aho_corasick::AhoCorasick;
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

pub use normalize::Normalized;

/// What a rule does to the comments it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Allowlist: a comment matched by an `approve` rule is never moderated by any other rule.
    Approve,
    Delete,
    Hide,
    /// Record only.
    Flag,
}

impl Action {
    /// Higher wins when several rules match.
    fn priority(self) -> u8 {
        match self {
            Action::Approve => 4,
            Action::Delete => 3,
            Action::Hide => 2,
            Action::Flag => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Delete => "delete",
            Action::Hide => "hide",
            Action::Flag => "flag",
        }
    }

    /// Whether this action needs a Graph API write.
    pub fn is_write(self) -> bool {
        matches!(self, Action::Delete | Action::Hide)
    }
}

/// A rule as the operator wrote it (already type-checked by the config loader).
#[derive(Debug, Clone, Default)]
pub struct RuleSpec {
    pub name: String,
    pub action: Option<Action>,
    /// Whole words or phrases, case- and accent-insensitive. Any one matches.
    pub words: Vec<String>,
    /// Regexes over the folded text (lowercased, accents stripped). Any one matches.
    pub regex: Vec<String>,
    /// Any URL or bare domain not under `allow_domains`.
    pub links: bool,
    pub allow_domains: Vec<String>,
    /// More than this many @mentions.
    pub max_mentions: Option<u32>,
    /// Regexes matched against the whole username, case-insensitive. Any one matches.
    pub usernames: Vec<String>,
}

/// Which part of a spec failed to compile, so the config loader can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub rule: usize,
    /// The config key (`regex`, `usernames`, …); `None` for the rule as a whole.
    pub key: Option<&'static str>,
    /// Index inside the key's list.
    pub item: Option<usize>,
    pub message: String,
}

/// Largest compiled size of one operator-written regex: big enough for any sane pattern,
/// small enough that a pathological one cannot take the daemon's memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone)]
enum Condition {
    Words {
        matcher: AhoCorasick,
        words: Vec<String>,
    },
    Regex {
        set: RegexSet,
        patterns: Vec<String>,
    },
    Links {
        allow: Vec<String>,
    },
    MaxMentions(u32),
    Usernames {
        set: RegexSet,
        patterns: Vec<String>,
    },
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    action: Action,
    conditions: Vec<Condition>,
}

/// The compiled rules, in config order (the order breaks ties between equal actions).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

/// What the rules see of a comment.
#[derive(Debug, Clone, Copy)]
pub struct CommentView<'a> {
    pub text: &'a str,
    pub username: Option<&'a str>,
}

/// One rule that matched, with the evidence for each of its conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub rule: String,
    pub action: Action,
    /// E.g. `word "forex"`; several conditions are joined with ` and `.
    pub reason: String,
}

impl RuleSet {
    /// Compiles every spec, returning every problem rather than the first.
    pub fn compile(specs: &[RuleSpec]) -> Result<RuleSet, Vec<CompileError>> {
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            match compile_rule(index, spec) {
                Ok(rule) => rules.push(rule),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(RuleSet { rules })
        } else {
            Err(errors)
        }
    }

    /// The rules whose names are listed, in config order.
    pub fn select(&self, names: &[String]) -> RuleSet {
        RuleSet {
            rules: self
                .rules
                .iter()
                .filter(|r| names.iter().any(|n| n == &r.name))
                .cloned()
                .collect(),
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every rule that matches, in config order.
    pub fn matches(&self, comment: &CommentView<'_>) -> Vec<Match> {
        let normalized = Normalized::new(comment.text);
        self.rules
            .iter()
            .filter_map(|rule| {
                rule.check(comment, &normalized).map(|reason| Match {
                    rule: rule.name.clone(),
                    action: rule.action,
                    reason,
                })
            })
            .collect()
    }

    /// The decision: `approve` wins, then delete > hide > flag; ties go to the earlier rule.
    pub fn decide(&self, comment: &CommentView<'_>) -> Option<Match> {
        pick(self.matches(comment))
    }
}

/// The winning match among several.
pub fn pick(matches: Vec<Match>) -> Option<Match> {
    let mut best: Option<Match> = None;
    for m in matches {
        if best
            .as_ref()
            .is_none_or(|b| m.action.priority() > b.action.priority())
        {
            best = Some(m);
        }
    }
    best
}

impl Rule {
    /// The reason when every condition holds, `None` otherwise.
    fn check(&self, comment: &CommentView<'_>, n: &Normalized) -> Option<String> {
        let mut reasons = Vec::with_capacity(self.conditions.len());
        for condition in &self.conditions {
            reasons.push(condition.check(comment, n)?);
        }
        Some(reasons.join(" and "))
    }
}

impl Condition {
    fn check(&self, comment: &CommentView<'_>, n: &Normalized) -> Option<String> {
        match self {
            Condition::Words { matcher, words } => matcher
                .find(&n.words)
                .map(|m| format!("word \"{}\"", words[m.pattern().as_usize()])),
            Condition::Regex { set, patterns } => set
                .matches(&n.folded)
                .iter()
                .next()
                .map(|i| format!("regex \"{}\"", patterns[i])),
            Condition::Links { allow } => find_links(comment.text)
                .into_iter()
                .find(|host| !domain_allowed(host, allow))
                .map(|host| format!("link \"{host}\"")),
            Condition::MaxMentions(max) => {
                let count = count_mentions(comment.text);
                (count > *max as usize).then(|| format!("{count} mentions (more than {max})"))
            }
            Condition::Usernames { set, patterns } => {
                let username = comment.username?;
                set.matches(username)
                    .iter()
                    .next()
                    .map(|i| format!("username \"{username}\" matches \"{}\"", patterns[i]))
            }
        }
    }
}

fn compile_rule(index: usize, spec: &RuleSpec) -> Result<Rule, Vec<CompileError>> {
    let mut errors = Vec::new();
    let err = |key: Option<&'static str>, item: Option<usize>, message: String| CompileError {
        rule: index,
        key,
        item,
        message,
    };
    let mut conditions = Vec::new();

    if !spec.words.is_empty() {
        let mut patterns = Vec::new();
        for (i, w) in spec.words.iter().enumerate() {
            let form = normalize::word_form(&normalize::fold(w));
            if form.trim().is_empty() {
                errors.push(err(
                    Some("words"),
                    Some(i),
                    format!("word {w:?} has no letters or digits"),
                ));
            }
            patterns.push(form);
        }
        match AhoCorasick::new(&patterns) {
            Ok(matcher) => conditions.push(Condition::Words {
                matcher,
                words: spec.words.clone(),
            }),
            Err(e) => errors.push(err(Some("words"), None, e.to_string())),
        }
    }
    if !spec.regex.is_empty() {
        match compile_set("regex", &spec.regex, |p| p.to_string()) {
            Ok(set) => conditions.push(Condition::Regex {
                set,
                patterns: spec.regex.clone(),
            }),
            Err((i, m)) => errors.push(err(Some("regex"), Some(i), m)),
        }
    }
    if spec.links {
        conditions.push(Condition::Links {
            allow: spec
                .allow_domains
                .iter()
                .map(|d| d.trim_start_matches('.').to_lowercase())
                .collect(),
        });
    } else if !spec.allow_domains.is_empty() {
        errors.push(err(
            Some("allow_domains"),
            None,
            "allow_domains needs links = true".to_string(),
        ));
    }
    if let Some(max) = spec.max_mentions {
        conditions.push(Condition::MaxMentions(max));
    }
    if !spec.usernames.is_empty() {
        match compile_set("usernames", &spec.usernames, |p| format!("(?i)^(?:{p})$")) {
            Ok(set) => conditions.push(Condition::Usernames {
                set,
                patterns: spec.usernames.clone(),
            }),
            Err((i, m)) => errors.push(err(Some("usernames"), Some(i), m)),
        }
    }

    let action = match spec.action {
        Some(a) => a,
        None => {
            errors.push(err(
                None,
                None,
                format!("rule {:?} has no action", spec.name),
            ));
            Action::Flag
        }
    };
    if conditions.is_empty() && errors.is_empty() {
        errors.push(err(
            None,
            None,
            format!(
                "rule {:?} has no condition (words, regex, links, max_mentions or usernames)",
                spec.name
            ),
        ));
    }
    if errors.is_empty() {
        Ok(Rule {
            name: spec.name.clone(),
            action,
            conditions,
        })
    } else {
        Err(errors)
    }
}

/// Compiles each pattern alone first (to name the bad one), then the set.
fn compile_set(
    key: &str,
    patterns: &[String],
    wrap: impl Fn(&str) -> String,
) -> Result<RegexSet, (usize, String)> {
    let wrapped: Vec<String> = patterns.iter().map(|p| wrap(p)).collect();
    for (i, p) in wrapped.iter().enumerate() {
        RegexBuilder::new(p)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                (
                    i,
                    format!("invalid {key} pattern {:?}: {}", patterns[i], one_line(&e)),
                )
            })?;
    }
    RegexSetBuilder::new(&wrapped)
        .size_limit(REGEX_SIZE_LIMIT * patterns.len().max(1))
        .build()
        .map_err(|e| (0, format!("invalid {key} patterns: {}", one_line(&e))))
}

/// The regex crate's syntax errors span several lines (pattern, caret, message); a config
/// problem is one line, so keep the message.
fn one_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(|| text.replace('\n', " "), str::to_string)
}

/// Hosts of every URL or bare domain in the text, lowercased.
fn find_links(text: &str) -> Vec<String> {
    let mut finder = linkify::LinkFinder::new();
    finder.url_must_have_scheme(false);
    finder.kinds(&[linkify::LinkKind::Url]);
    finder
        .links(text)
        .filter_map(|link| host_of(link.as_str()))
        .collect()
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

fn domain_allowed(host: &str, allow: &[String]) -> bool {
    allow.iter().any(|d| {
        host == d
            || host
                .strip_suffix(d.as_str())
                .is_some_and(|p| p.ends_with('.'))
    })
}

fn count_mentions(text: &str) -> usize {
    static MENTION: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    MENTION
        .get_or_init(|| Regex::new(r"(?:^|[^\w@])@[\w.]+").ok())
        .as_ref()
        .map_or(0, |re| re.find_iter(text).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, action: Action) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            action: Some(action),
            ..RuleSpec::default()
        }
    }

    fn example() -> RuleSet {
        let specs = vec![
            RuleSpec {
                usernames: vec!["acme_support".into(), "acme".into()],
                ..spec("trusted", Action::Approve)
            },
            RuleSpec {
                words: vec![
                    "crypto signal".into(),
                    "forex".into(),
                    "dm me to earn".into(),
                ],
                ..spec("scam", Action::Delete)
            },
            RuleSpec {
                regex: vec![r"(?i)\bdm\s+@\w+\s+(for|to)\b".into()],
                ..spec("scam-dm", Action::Delete)
            },
            RuleSpec {
                words: vec!["idiot".into(), "scumbag".into()],
                ..spec("profanity", Action::Hide)
            },
            RuleSpec {
                links: true,
                allow_domains: vec!["acme.com".into()],
                ..spec("links", Action::Hide)
            },
            RuleSpec {
                max_mentions: Some(3),
                ..spec("mention-spam", Action::Hide)
            },
        ];
        match RuleSet::compile(&specs) {
            Ok(set) => set,
            Err(e) => panic!("example rules must compile: {e:?}"),
        }
    }

    /// (text, username, expected rule and action or None)
    #[test]
    fn decisions_on_the_example_rules() {
        let rules = example();
        type Case<'a> = (&'a str, Option<&'a str>, Option<(&'a str, Action)>);
        let cases: &[Case] = &[
            ("Love this colour!", Some("fan1"), None),
            ("FOREX!", Some("x"), Some(("scam", Action::Delete))),
            (
                "Forex trading pays",
                Some("x"),
                Some(("scam", Action::Delete)),
            ),
            ("forexample this", Some("x"), None),
            (
                "join my CRYPTO   SIGNAL group",
                Some("x"),
                Some(("scam", Action::Delete)),
            ),
            ("crypto signals", Some("x"), None),
            ("Fórex is great", Some("x"), Some(("scam", Action::Delete))),
            (
                "dm @bob for info",
                Some("x"),
                Some(("scam-dm", Action::Delete)),
            ),
            ("you idiot", Some("x"), Some(("profanity", Action::Hide))),
            ("idiotic plan", Some("x"), None),
            (
                "see spam-shop.biz now",
                Some("x"),
                Some(("links", Action::Hide)),
            ),
            (
                "https://evil.example.org/x?y=1",
                Some("x"),
                Some(("links", Action::Hide)),
            ),
            ("see https://acme.com/sale", Some("x"), None),
            ("see shop.acme.com", Some("x"), None),
            ("see notacme.com", Some("x"), Some(("links", Action::Hide))),
            ("@a @b @c", Some("x"), None),
            (
                "@a @b @c @d",
                Some("x"),
                Some(("mention-spam", Action::Hide)),
            ),
            ("mail me a@b.com", Some("x"), None),
            // Delete beats hide when both match.
            ("idiot, forex", Some("x"), Some(("scam", Action::Delete))),
            // Approve beats everything.
            (
                "forex idiot",
                Some("acme_support"),
                Some(("trusted", Action::Approve)),
            ),
            (
                "forex idiot",
                Some("ACME"),
                Some(("trusted", Action::Approve)),
            ),
            (
                "forex",
                Some("acme_supporter"),
                Some(("scam", Action::Delete)),
            ),
            ("forex", None, Some(("scam", Action::Delete))),
        ];
        for (text, username, expected) in cases {
            let got = rules.decide(&CommentView {
                text,
                username: *username,
            });
            assert_eq!(
                got.as_ref().map(|m| (m.rule.as_str(), m.action)),
                *expected,
                "{text:?} by {username:?}"
            );
        }
    }

    #[test]
    fn reasons_name_the_condition() {
        let rules = example();
        let cases = [
            ("FOREX!", "word \"forex\""),
            (
                "dm @bob to win",
                "regex \"(?i)\\bdm\\s+@\\w+\\s+(for|to)\\b\"",
            ),
            ("go to Spam.biz/now", "link \"spam.biz\""),
            ("@a @b @c @d @e", "5 mentions (more than 3)"),
        ];
        for (text, reason) in cases {
            let m = rules.decide(&CommentView {
                text,
                username: Some("x"),
            });
            assert_eq!(m.map(|m| m.reason).as_deref(), Some(reason), "{text}");
        }
    }

    #[test]
    fn conditions_in_one_rule_combine_with_and() {
        let rules = RuleSet::compile(&[RuleSpec {
            words: vec!["giveaway".into()],
            max_mentions: Some(1),
            ..spec("both", Action::Flag)
        }])
        .unwrap_or_default();
        let decide = |text| {
            rules
                .decide(&CommentView {
                    text,
                    username: None,
                })
                .map(|m| m.reason)
        };
        assert_eq!(decide("giveaway"), None);
        assert_eq!(decide("@a @b"), None);
        assert_eq!(
            decide("giveaway @a @b").as_deref(),
            Some("word \"giveaway\" and 2 mentions (more than 1)")
        );
    }

    #[test]
    fn compile_reports_every_problem() {
        let specs = vec![
            RuleSpec {
                regex: vec!["ok".into(), "(unclosed".into()],
                ..spec("a", Action::Hide)
            },
            spec("empty", Action::Hide),
            RuleSpec {
                words: vec!["!!!".into()],
                ..spec("c", Action::Hide)
            },
            RuleSpec {
                usernames: vec!["[".into()],
                ..spec("d", Action::Hide)
            },
        ];
        let errors = RuleSet::compile(&specs).err().unwrap_or_default();
        let located: Vec<_> = errors.iter().map(|e| (e.rule, e.key, e.item)).collect();
        assert_eq!(
            located,
            vec![
                (0, Some("regex"), Some(1)),
                (1, None, None),
                (2, Some("words"), Some(0)),
                (3, Some("usernames"), Some(0)),
            ]
        );
    }

    #[test]
    fn select_keeps_config_order() {
        let rules = example().select(&["profanity".into(), "trusted".into()]);
        assert_eq!(rules.names().collect::<Vec<_>>(), ["trusted", "profanity"]);
    }
}
