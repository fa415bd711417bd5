//! Moderation rules: a comment and its context in, every matching rule with evidence and one
//! decision out.
//!
//! Architecture invariant: this module does no IO, reads no clock and cannot fail at evaluation
//! time. Everything that can go wrong (a bad regex, a rule without a condition) is caught by
//! [`RuleSet::compile`], which the config loader runs, so a running daemon never meets it.
//! State that rules need (earlier comments with the same text, the account's username) comes in
//! through [`CommentView`].
//!
//! Speed: a comment is normalised once ([`normalize`]); the words of every `words`/`not_words`
//! list of every rule are looked up together, each word of the comment once ([`words`]; an
//! Aho-Corasick automaton over all of them when spaced-out letters were joined), so the cost of
//! a comment barely grows with the number of word lists. A `regex` list on the normalised text
//! is one multi-pattern regex (the `regex` crate's own engine, `regex_automata::meta`, which is
//! what a `RegexSet` wraps, here without its literal prefilter: linear time, size-limited), run
//! only when a rule reaches it (its cheaper conditions held), at most once per comment, and
//! only when [`screen`] finds the first bytes of one of its patterns in the text (a list of
//! one pattern is screened too).
//!
//! Whole on purpose: compilation and evaluation share the private compiled forms; tests: tests.rs.

pub mod classifier;
mod detect;
pub mod lang;
mod normalize;
mod screen;
mod urls;
mod words;

use std::collections::HashSet;
use std::ops::Range;
use std::time::Duration;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

pub use classifier::Model;
pub use detect::ContactKind;
pub use lang::{Detection, Language, UNDETERMINED};
pub use normalize::Normalized;

/// What a rule does to the comments it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Allowlist: a comment matched by an `approve` rule is never moderated by any other rule.
    Approve,
    Delete,
    Hide,
    /// A polite public reply from the account, rendered from the rule's template.
    Reply,
    /// Record only.
    Flag,
}

impl Action {
    /// Higher wins when several rules match: approve > delete > hide > reply > flag.
    fn priority(self) -> u8 {
        match self {
            Action::Approve => 5,
            Action::Delete => 4,
            Action::Hide => 3,
            Action::Reply => 2,
            Action::Flag => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Delete => "delete",
            Action::Hide => "hide",
            Action::Reply => "reply",
            Action::Flag => "flag",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "approve" => Some(Action::Approve),
            "delete" => Some(Action::Delete),
            "hide" => Some(Action::Hide),
            "reply" => Some(Action::Reply),
            "flag" => Some(Action::Flag),
            _ => None,
        }
    }

    /// Whether this action needs a Graph API write.
    pub fn is_write(self) -> bool {
        matches!(self, Action::Delete | Action::Hide | Action::Reply)
    }

    /// Whether this action takes the comment out of view ("moderated" for evaluation).
    pub fn moderates(self) -> bool {
        matches!(self, Action::Delete | Action::Hide | Action::Flag)
    }
}

/// Which text a regex runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextForm {
    /// Lowercased, accents stripped, confusables folded, invisible characters removed.
    #[default]
    Normalized,
    /// The comment exactly as written.
    Original,
}

/// `impersonation = { brands = [...], max_distance = 1 }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpersonationSpec {
    pub brands: Vec<String>,
    pub max_distance: usize,
}

/// `repeated = { per_user = 3, users = 5, window = "1h" }`: either threshold triggers.
#[derive(Debug, Clone, PartialEq)]
pub struct RepeatedSpec {
    pub per_user: Option<u32>,
    pub users: Option<u32>,
    pub window: Duration,
}

/// A set of conditions that must all hold (a rule's top level, or one entry of its `any`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConditionSpec {
    pub words: Vec<String>,
    pub not_words: Vec<String>,
    pub regex: Vec<String>,
    pub not_regex: Vec<String>,
    pub regex_on: TextForm,
    pub links: bool,
    pub allow_domains: Vec<String>,
    pub deny_domains: Vec<String>,
    /// The brand's own domains: a link that imitates one without being it or under it.
    pub lookalike_domains: Vec<String>,
    pub contact: Vec<ContactKind>,
    pub max_mentions: Option<u32>,
    pub mentions_only: bool,
    pub max_emojis: Option<u32>,
    pub emoji_only: bool,
    pub max_caps_ratio: Option<f64>,
    pub min_length: Option<u32>,
    pub max_length: Option<u32>,
    pub usernames: Vec<String>,
    pub not_usernames: Vec<String>,
    pub impersonation: Option<ImpersonationSpec>,
    pub repeated: Option<RepeatedSpec>,
    pub is_reply: Option<bool>,
    /// Media ids or product types (`FEED`, `REELS`, `AD`, …).
    pub media: Vec<String>,
    /// The classifier's score in a range.
    pub classifier: Option<ClassifierSpec>,
    /// ISO 639-1 codes: the comment's detected language is one of them; `"und"` in the list
    /// matches an unknown language (one that could be a listed language, if any is listed).
    pub languages: Vec<String>,
    /// ISO 639-1 codes: the comment's language is none of them (known, or unknown in a script
    /// none of them is written in).
    pub not_languages: Vec<String>,
}

/// `classifier = { model = "models/scam.model", min_score = 0.9, max_score = 0.98 }`: the
/// model's calibrated score is at least `min_score` and below `max_score`.
#[derive(Debug, Clone)]
pub struct ClassifierSpec {
    /// The model as loaded (shared by every rule and account that names the same file).
    pub model: std::sync::Arc<classifier::Model>,
    /// The path as written, for evidence and messages.
    pub path: String,
    pub min_score: f32,
    pub max_score: Option<f32>,
}

/// Two specs are the same when they name the same file with the same content (checksum) and
/// thresholds: a reload with a retrained model restarts the accounts that use it.
impl PartialEq for ClassifierSpec {
    fn eq(&self, other: &ClassifierSpec) -> bool {
        self.path == other.path
            && self.model.checksum() == other.model.checksum()
            && self.min_score == other.min_score
            && self.max_score == other.max_score
    }
}

/// A rule as the operator wrote it (already type-checked by the config loader).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    pub action: Action,
    /// The reply template for `action = "reply"`: `{{username}}`, `{{match}}`.
    pub reply: Option<String>,
    /// Record "would have" without acting.
    pub dry_run: bool,
    /// Conditions that must all hold.
    pub all: ConditionSpec,
    /// If not empty, at least one of these groups must hold too.
    pub any: Vec<ConditionSpec>,
}

impl RuleSpec {
    pub fn new(name: &str, action: Action, all: ConditionSpec) -> RuleSpec {
        RuleSpec {
            name: name.to_string(),
            action,
            reply: None,
            dry_run: false,
            all,
            any: Vec::new(),
        }
    }
}

/// Which part of a spec failed to compile, so the config loader can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub rule: usize,
    /// `None`: the rule's top level; `Some(i)`: its `any[i]`.
    pub group: Option<usize>,
    /// The config key (`regex`, `usernames`, …); `None` for the rule as a whole.
    pub key: Option<&'static str>,
    /// Index inside the key's list.
    pub item: Option<usize>,
    pub message: String,
}

/// Largest compiled size of one operator-written regex: big enough for any sane pattern,
/// small enough that a pathological one cannot take the daemon's memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What the rules see of a comment.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommentView<'a> {
    pub text: &'a str,
    pub username: Option<&'a str>,
    pub is_reply: bool,
    pub media_id: Option<&'a str>,
    pub media_type: Option<&'a str>,
    /// The moderated account's own username, when known.
    pub account_username: Option<&'a str>,
    /// When the comment was written (unix seconds).
    pub at: i64,
    /// Earlier comments with the same [`RuleSet::text_key`], for `repeated`.
    pub history: &'a [Seen],
}

impl<'a> CommentView<'a> {
    pub fn new(text: &'a str, username: Option<&'a str>) -> CommentView<'a> {
        CommentView {
            text,
            username,
            ..CommentView::default()
        }
    }
}

/// An earlier comment with the same normalised text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub username: String,
    pub at: i64,
}

/// Why one condition held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// E.g. `word "forex"`.
    pub detail: String,
    /// The matched span of the original text, where there is one.
    pub span: Option<Range<usize>>,
}

/// One rule that matched, with the evidence for each of its conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub rule: String,
    pub action: Action,
    pub dry_run: bool,
    /// Evidence details joined with ` and `.
    pub reason: String,
    pub evidence: Vec<Evidence>,
    /// The rendered reply for `action = "reply"`.
    pub reply: Option<String>,
}

// ------------------------------------------------------------------ compiled form

#[derive(Debug, Clone)]
enum Cond {
    /// Index into the word lists; `negate` for `not_words`.
    Words {
        list: usize,
        negate: bool,
    },
    Regex {
        list: usize,
        form: TextForm,
        negate: bool,
    },
    Links {
        allow: detect::Domains,
    },
    DenyDomains(detect::Domains),
    Lookalike(detect::Lookalikes),
    /// Each kind, with the word list of its [`detect::contact_words`] (looked for by the
    /// rule set's word automaton with every other word, instead of by a search of its own).
    Contact(Vec<(ContactKind, Option<usize>)>),
    MaxMentions(u32),
    MentionsOnly,
    MaxEmojis(u32),
    EmojiOnly,
    MaxCaps(f64),
    MinLength(u32),
    MaxLength(u32),
    Usernames {
        set: RegexSet,
        /// The patterns as plain text, when they are (see [`detect::plain_usernames`]).
        plain: Option<Vec<Vec<u8>>>,
        patterns: Vec<String>,
        negate: bool,
    },
    Impersonation {
        max_distance: usize,
        /// Each brand with its username skeleton.
        brands: Vec<(String, String)>,
    },
    Repeated(RepeatedSpec),
    IsReply(bool),
    Media(Vec<String>),
    Classifier(ClassifierSpec),
    /// `languages` (`negate: false`) or `not_languages`: for an unknown language, see
    /// [`lang::Detection::is_in`] (`unknown`: "und" was listed) and `is_outside`.
    Languages {
        list: Vec<Language>,
        unknown: bool,
        negate: bool,
    },
}

#[derive(Debug, Clone)]
struct Group {
    conds: Vec<Cond>,
    /// Indices into `conds`, cheapest test first: a comment is usually ruled out by a
    /// precomputed word result before a regex or detector runs.
    order: Vec<usize>,
    /// A classifier condition's index: once a rule before this one scored the comment, the
    /// score is the cheapest test there is, and it goes first.
    scored: Option<usize>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    action: Action,
    reply: Option<String>,
    dry_run: bool,
    all: Group,
    any: Vec<Group>,
    /// The rule's first test (in `all.conds`) when it is a word condition (most rules):
    /// [`RuleSet::decide`] answers it before entering the rule. (Only a word condition: it is
    /// answered inline; any other would be tested twice when it holds.)
    gate: Option<usize>,
}

/// A regex list: its patterns, each compiled, and (on the normalised text) all of them as one
/// set, which answers "does any match" in one pass.
#[derive(Debug, Clone)]
struct RegexList {
    patterns: Vec<String>,
    compiled: Vec<Regex>,
    set: Option<regex_automata::meta::Regex>,
    /// In front of `set`: whether the text holds a window that can begin a match.
    screen: Option<screen::Screen>,
}

/// The compiled rules, in config order (the order breaks ties between equal actions).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Indices into `rules`, by action (approve, delete, hide, reply, flag), in written order
    /// within one action: the first rule that holds in this order is the decision, so no rule
    /// that could not win is tested (a flag rule's language detection, once a hide held).
    by_priority: Vec<usize>,
    /// Every word list's patterns (skeleton form) and originals.
    word_lists: Vec<Vec<String>>,
    /// One automaton over every word of every list; pattern id → (list, index).
    words: Option<AhoCorasick>,
    word_ids: Vec<(usize, usize, normalize::Pattern)>,
    /// The same patterns by first word, for skeletons without joined letters.
    word_index: words::WordIndex,
    /// The word lists holding each contact kind's words, among the others.
    contact_lists: Vec<(ContactKind, usize)>,
    /// The word list holding "dot" (for the link detector's `site dot com`), once a link
    /// condition needs it.
    dot_list: Option<usize>,
    regex_lists: Vec<RegexList>,
}

/// `rules`' indices by action, strongest first, in written order within one action.
fn by_priority(rules: &[Rule]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rules.len()).collect();
    // A stable sort keeps the written order among rules of one action.
    order.sort_by_key(|&i| std::cmp::Reverse(rules.get(i).map_or(0, |r| r.action.priority())));
    order
}

/// A word list's first verified match: (word index, pattern id, skeleton range).
type WordHit = Option<(usize, usize, Range<usize>)>;

/// Per-comment results shared by every rule.
struct Scan<'a> {
    n: &'a Normalized<'a>,
    /// Per word list: the first verified match.
    words: Vec<WordHit>,
    /// Per regex list on the normalised text, once a rule asked: the first matching pattern.
    regex: Vec<Option<Option<usize>>>,
    /// Detector results, computed by the first rule that asks (the links into the last
    /// comment's buffers, once `links_found`).
    links: detect::Links,
    links_found: bool,
    mentions: Option<usize>,
    /// Per contact kind (`ContactKind as usize`), once a rule asked: several rules ask the
    /// same (the contact-bait rules and their exemptions).
    contacts: [Option<bool>; detect::ContactKind::ALL.len()],
    /// Each model's score, once a rule asked (by the model's address: most rule sets use one).
    scores: Vec<(*const classifier::Model, f32)>,
    /// The comment's language, once a rule asked: a rule set without a language condition
    /// never pays for detection.
    lang: Option<Detection>,
}

/// The per-list vectors of this thread's last [`Scan`], for the next one (a comment is
/// judged before the next, as with the normaliser's buffers).
#[derive(Default)]
struct ScanSpare {
    words: Vec<WordHit>,
    regex: Vec<Option<Option<usize>>>,
    links: detect::Links,
    scores: Vec<(*const classifier::Model, f32)>,
}

thread_local! {
    static SCAN_SPARE: std::cell::RefCell<ScanSpare> =
        std::cell::RefCell::new(ScanSpare::default());
}

/// What a thread keeps in `key` for the next comment, taken (an empty value if nothing is
/// kept, or if the thread is exiting or the value is in use).
fn take_spare<T: Default>(key: &'static std::thread::LocalKey<std::cell::RefCell<T>>) -> T {
    key.try_with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)))
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

/// Hands `key`'s kept value to `keep` to update for the next comment (nothing happens if the
/// thread is exiting or the value is in use).
fn keep_spare<T>(
    key: &'static std::thread::LocalKey<std::cell::RefCell<T>>,
    keep: impl FnOnce(&mut T),
) {
    let _ = key.try_with(|s| {
        if let Ok(mut kept) = s.try_borrow_mut() {
            keep(&mut kept);
        }
    });
}

impl Drop for Scan<'_> {
    fn drop(&mut self) {
        let spare = ScanSpare {
            words: std::mem::take(&mut self.words),
            regex: std::mem::take(&mut self.regex),
            links: std::mem::take(&mut self.links),
            scores: std::mem::take(&mut self.scores),
        };
        keep_spare(&SCAN_SPARE, |kept| *kept = spare);
    }
}

impl Scan<'_> {
    fn links(&mut self, set: &RuleSet) -> &detect::Links {
        if !self.links_found {
            let dot_word = set.dot_list.map(|list| self.words[list].is_some());
            detect::links_into(self.n, dot_word, &mut self.links);
            self.links_found = true;
        }
        &self.links
    }

    fn emojis(&self) -> usize {
        self.n.emojis()
    }

    /// The comment's language, detected once.
    fn lang(&mut self, text: &str) -> Detection {
        *self.lang.get_or_insert_with(|| lang::detect(text))
    }

    /// The model's score for the comment if a rule asked for it already.
    fn known_score(&self, model: &classifier::Model) -> Option<f32> {
        let key: *const classifier::Model = model;
        self.scores.iter().find(|(m, _)| *m == key).map(|(_, s)| *s)
    }

    /// The model's score for the comment, computed once per model. The model reads the
    /// links the rules find (found here if no rule asked yet), not a second search.
    fn score(&mut self, model: &classifier::Model, text: &str, set: &RuleSet) -> f32 {
        if let Some(s) = self.known_score(model) {
            return s;
        }
        let n = self.n;
        let s = model.score_with_links(text, n, Some(self.links(set)));
        self.scores.push((model, s));
        s
    }

    fn mentions(&mut self, text: &str) -> usize {
        let n = self.n;
        *self.mentions.get_or_insert_with(|| {
            // No `@` in the folded text, none in the original.
            if n.may_have(b'@') {
                detect::mentions(text)
            } else {
                0
            }
        })
    }

    /// The first pattern of a normalised-text regex list that matches. Most lists match
    /// nothing in most comments, and "any match" is a faster search than "which ones".
    fn regex(&mut self, set: &RuleSet, list: usize) -> Option<usize> {
        let n = self.n;
        let folded = &n.folded;
        *self.regex[list].get_or_insert_with(|| {
            let regexes = set.regex_lists.get(list)?;
            // No match begins before the screen's first start: the search starts there.
            let from = match &regexes.screen {
                Some(screen) => screen.first_start(folded.as_bytes())?,
                None => 0,
            };
            let rest = regex_automata::Input::new(folded).range(from..);
            match &regexes.set {
                Some(s) if s.is_match(rest) => {
                    let mut which = regex_automata::PatternSet::new(s.pattern_len());
                    s.which_overlapping_matches(&regex_automata::Input::new(folded), &mut which);
                    which.iter().next().map(|p| p.as_usize())
                }
                Some(_) => None,
                None => regexes.compiled.iter().position(|r| r.is_match(folded)),
            }
        })
    }
}

impl RuleSet {
    /// Compiles every spec, returning every problem rather than the first.
    pub fn compile(specs: &[RuleSpec]) -> Result<RuleSet, Vec<CompileError>> {
        let mut set = RuleSet::default();
        let mut errors = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            let errors_before = errors.len();
            let mut compile_group = |group: Option<usize>, c: &ConditionSpec, set: &mut RuleSet| {
                let mut ctx = GroupCompiler {
                    rule: index,
                    group,
                    errors: &mut errors,
                    set,
                };
                ctx.compile(c)
            };
            let all = compile_group(None, &spec.all, &mut set);
            let any: Vec<Group> = spec
                .any
                .iter()
                .enumerate()
                .map(|(i, c)| compile_group(Some(i), c, &mut set))
                .collect();
            let err = |message: String| CompileError {
                rule: index,
                group: None,
                key: None,
                item: None,
                message,
            };
            let positive = |g: &Group| g.conds.iter().any(Cond::is_positive);
            if errors.len() == errors_before && !positive(&all) && !any.iter().any(positive) {
                errors.push(err(format!(
                    "rule {:?} has no condition that can match (a rule of only not_… conditions would match everything)",
                    spec.name
                )));
            }
            if any.iter().any(|g| g.conds.is_empty()) {
                errors.push(err(format!(
                    "rule {:?} has an empty group in any",
                    spec.name
                )));
            }
            match (spec.action, &spec.reply) {
                (Action::Reply, None) => errors.push(CompileError {
                    key: Some("reply"),
                    ..err(format!(
                        "rule {:?} has action \"reply\" but no reply template",
                        spec.name
                    ))
                }),
                (Action::Reply, Some(t)) if t.trim().is_empty() => errors.push(CompileError {
                    key: Some("reply"),
                    ..err("the reply template is empty".into())
                }),
                (a, Some(_)) if a != Action::Reply => errors.push(CompileError {
                    key: Some("reply"),
                    ..err(format!(
                        "a reply template needs action = \"reply\", not {:?}",
                        a.as_str()
                    ))
                }),
                _ => {}
            }
            let gate = all
                .order
                .first()
                .copied()
                .filter(|&i| matches!(all.conds.get(i), Some(Cond::Words { .. })));
            set.rules.push(Rule {
                name: spec.name.clone(),
                action: spec.action,
                reply: spec.reply.clone(),
                dry_run: spec.dry_run,
                all,
                any,
                gate,
            });
        }
        let all_words: Vec<&str> = set
            .word_ids
            .iter()
            .map(|(_, _, p)| p.skeleton.as_str())
            .collect();
        set.word_index = words::WordIndex::new(all_words.iter().copied());
        if !all_words.is_empty() {
            match AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                // A full DFA: one table lookup per byte, worth its memory for a list that is
                // searched in every comment.
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(&all_words)
            {
                Ok(ac) => set.words = Some(ac),
                Err(e) => errors.push(CompileError {
                    rule: 0,
                    group: None,
                    key: Some("words"),
                    item: None,
                    message: e.to_string(),
                }),
            }
        }
        if errors.is_empty() {
            set.by_priority = by_priority(&set.rules);
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// The rules whose names are listed, in config order.
    pub fn select(&self, names: &[String]) -> RuleSet {
        let rules: Vec<Rule> = self
            .rules
            .iter()
            .filter(|r| names.iter().any(|n| n == &r.name))
            .cloned()
            .collect();
        RuleSet {
            by_priority: by_priority(&rules),
            rules,
            ..self.clone()
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

    /// Every model a rule's `classifier` condition names, once each (path as written).
    pub fn models(&self) -> Vec<(String, std::sync::Arc<classifier::Model>)> {
        let mut out: Vec<(String, std::sync::Arc<classifier::Model>)> = Vec::new();
        for cond in self.conds() {
            if let Cond::Classifier(spec) = cond
                && !out
                    .iter()
                    .any(|(_, m)| std::sync::Arc::ptr_eq(m, &spec.model))
            {
                out.push((spec.path.clone(), spec.model.clone()));
            }
        }
        out
    }

    /// These rules with every classifier condition's model replaced by `replace(model)`
    /// (`rules replay --model`, and cross-validation of an account's rules).
    pub fn with_models(
        &self,
        mut replace: impl FnMut(&std::sync::Arc<classifier::Model>) -> std::sync::Arc<classifier::Model>,
    ) -> RuleSet {
        let mut set = self.clone();
        for rule in &mut set.rules {
            for group in std::iter::once(&mut rule.all).chain(&mut rule.any) {
                for cond in &mut group.conds {
                    if let Cond::Classifier(spec) = cond {
                        spec.model = replace(&spec.model);
                    }
                }
            }
        }
        set
    }

    fn conds(&self) -> impl Iterator<Item = &Cond> {
        self.rules
            .iter()
            .flat_map(|r| std::iter::once(&r.all).chain(&r.any))
            .flat_map(|g| &g.conds)
    }

    /// The longest `repeated` window of any rule: how much history the caller should pass.
    pub fn history_window(&self) -> Option<Duration> {
        self.conds()
            .filter_map(|c| match c {
                Cond::Repeated(r) => Some(r.window),
                _ => None,
            })
            .max()
    }

    /// The key under which comments with the same normalised text are grouped for `repeated`.
    pub fn text_key(text: &str) -> String {
        use sha2::Digest;
        let n = Normalized::new(text);
        let digest = sha2::Sha256::digest(n.skeleton());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// Every rule that matches, in config order.
    pub fn matches(&self, comment: &CommentView<'_>) -> Vec<Match> {
        let normalized = Normalized::new(comment.text);
        let mut scan = self.scan(&normalized);
        self.rules
            .iter()
            .filter_map(|rule| rule.check(comment, &mut scan, self))
            .collect()
    }

    /// The decision: `approve` wins, then delete > hide > reply > flag; ties go to the earlier
    /// rule. The same as [`pick`] over [`RuleSet::matches`], but a rule that could not beat
    /// the one found so far is not tested, and evidence is built for the winner alone.
    pub fn decide(&self, comment: &CommentView<'_>) -> Option<Match> {
        self.decide_scored(comment).0
    }

    /// [`RuleSet::decide`], with the score of the first model a rule asked for (for the score
    /// histogram); `None` when no classifier condition was evaluated.
    pub fn decide_scored(&self, comment: &CommentView<'_>) -> (Option<Match>, Option<f32>) {
        let normalized = Normalized::new(comment.text);
        let mut scan = self.scan(&normalized);
        self.decide_in(comment, &mut scan)
    }

    /// [`RuleSet::decide_scored`], with the comment's language (what the daemon stores): the
    /// one a language condition already detected, or detected here, once.
    pub fn decide_with_language(
        &self,
        comment: &CommentView<'_>,
    ) -> (Option<Match>, Option<f32>, Detection) {
        let normalized = Normalized::new(comment.text);
        let mut scan = self.scan(&normalized);
        let (decided, score) = self.decide_in(comment, &mut scan);
        (decided, score, scan.lang(comment.text))
    }

    fn decide_in(
        &self,
        comment: &CommentView<'_>,
        scan: &mut Scan<'_>,
    ) -> (Option<Match>, Option<f32>) {
        // Approve wins, then delete > hide > reply > flag, and the rule written first among
        // equals: in `by_priority`'s order that is the first rule that holds.
        let mut best: Option<&Rule> = None;
        for rule in self.by_priority.iter().filter_map(|&i| self.rules.get(i)) {
            if let Some(gate) = rule.gate.and_then(|i| rule.all.conds.get(i))
                && !gate.holds(comment, scan, self)
            {
                continue;
            }
            if rule.holds(comment, scan, self) {
                best = Some(rule);
                break;
            }
        }
        let decided = best.and_then(|b| b.check(comment, scan, self));
        (decided, scan.scores.first().map(|(_, s)| *s))
    }

    fn scan<'a>(&self, n: &'a Normalized<'a>) -> Scan<'a> {
        let ScanSpare {
            mut words,
            mut regex,
            links,
            mut scores,
        } = take_spare(&SCAN_SPARE);
        scores.clear();
        words.clear();
        words.resize(self.word_lists.len(), None);
        if n.joined() {
            self.words_by_automaton(n, &mut words);
        } else {
            self.words_by_index(n, &mut words);
        }
        regex.clear();
        regex.resize(self.regex_lists.len(), None);
        Scan {
            n,
            words,
            regex,
            links,
            links_found: false,
            mentions: None,
            contacts: Default::default(),
            scores,
            lang: None,
        }
    }

    /// Per word list, the first verified match (word index, pattern id, skeleton range):
    /// the one that ends first, the longest of those, the first listed of those (the order
    /// in which the automaton reports them).
    fn words_by_automaton(&self, n: &Normalized<'_>, words: &mut [WordHit]) {
        if let Some(ac) = &self.words {
            for m in ac.find_overlapping_iter(n.skeleton()) {
                let Some((list, index, pattern)) = self.word_ids.get(m.pattern().as_usize()) else {
                    continue;
                };
                let (list, index) = (*list, *index);
                if words[list].is_some() {
                    continue;
                }
                if pattern.hits(n, m.range()) {
                    words[list] = Some((index, m.pattern().as_usize(), m.range()));
                }
            }
        }
    }

    /// [`RuleSet::words_by_automaton`] for a skeleton without joined letters, where every
    /// match starts at a word: each word is looked up among the patterns' first words.
    fn words_by_index(&self, n: &Normalized<'_>, words: &mut [WordHit]) {
        let text = |id: usize| self.word_ids.get(id).map(|w| w.2.skeleton.as_bytes());
        self.word_index.each_start(n.skeleton(), text, |id, hit| {
            let Some((list, index, pattern)) = self.word_ids.get(id) else {
                return;
            };
            let better = words[*list].as_ref().is_none_or(|(_, best_id, best)| {
                words::reported_before((id, &hit), (*best_id, best))
            });
            if better && pattern.hits(n, hit.clone()) {
                words[*list] = Some((*index, id, hit));
            }
        });
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

/// Renders `{{username}}` and `{{match}}` (the first matched span of the original text).
/// Both come from the commenter, and the reply is the brand's own public words: `{{match}}`
/// is defanged ([`defang`]) so the reply never reposts a live link, mention or hashtag, and
/// `{{username}}` keeps only the characters an Instagram handle can have.
fn render(template: &str, comment: &CommentView<'_>, evidence: &[Evidence]) -> String {
    let matched = evidence
        .iter()
        .find_map(|e| e.span.clone())
        .and_then(|r| comment.text.get(r))
        .unwrap_or("");
    let username: String = comment
        .username
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_'))
        .take(REPLY_USERNAME_MAX)
        .collect();
    template
        .replace("{{username}}", &username)
        .replace("{{match}}", &defang(matched))
}

/// Instagram handles are at most 30 characters.
const REPLY_USERNAME_MAX: usize = 30;
/// `{{match}}` is cut to this many characters (an ellipsis marks the cut).
const REPLY_MATCH_MAX: usize = 40;

/// The matched text made inert for a public reply, the way security writing "defangs"
/// indicators: dots become `[.]` and a colon before `/` becomes `[:]` (no client links them), `@` becomes
/// `(at)` and `#` is dropped (no mention, no hashtag), control and format characters (bidi
/// overrides, zero-width joiners) and line breaks go, and the result is cut to
/// [`REPLY_MATCH_MAX`] characters.
pub fn defang(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut kept = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if kept >= REPLY_MATCH_MAX {
            out.push('…');
            break;
        }
        match c {
            '.' | '\u{3002}' | '\u{FF0E}' => out.push_str("[.]"),
            ':' if chars.peek() == Some(&'/') => {
                out.push_str("[:]");
            }
            '@' | '\u{FF20}' => out.push_str("(at)"),
            '#' | '\u{FF03}' => {}
            c if c.is_whitespace() => out.push(' '),
            c if c.is_control() || is_format_char(c) => {}
            c => out.push(c),
        }
        kept = kept.saturating_add(1);
    }
    out
}

/// Unicode format characters (category Cf) that change how text reads without showing:
/// bidi controls, zero-width spaces and joiners, the BOM, and tag characters.
fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{E0000}'..='\u{E007F}')
}

impl Rule {
    /// Whether the rule matches, without evidence.
    #[inline]
    fn holds(&self, c: &CommentView<'_>, scan: &mut Scan<'_>, set: &RuleSet) -> bool {
        self.all.holds(c, scan, set)
            && (self.any.is_empty() || self.any.iter().any(|g| g.holds(c, scan, set)))
    }

    /// The match, if the rule matches. Evidence (spans, text) is built only for a rule known
    /// to match: most comments match nothing, and a span can cost more than the test.
    fn check(&self, c: &CommentView<'_>, scan: &mut Scan<'_>, set: &RuleSet) -> Option<Match> {
        if !self.all.holds(c, scan, set) {
            return None;
        }
        let group = if self.any.is_empty() {
            None
        } else {
            Some(self.any.iter().find(|g| g.holds(c, scan, set))?)
        };
        let mut evidence = self.all.check(c, scan, set)?;
        if let Some(g) = group {
            evidence.extend(g.check(c, scan, set)?);
        }
        Some(Match {
            rule: self.name.clone(),
            action: self.action,
            dry_run: self.dry_run,
            reason: evidence
                .iter()
                .map(|e| e.detail.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            reply: self.reply.as_ref().map(|t| render(t, c, &evidence)),
            evidence,
        })
    }
}

impl Group {
    #[inline]
    fn holds(&self, c: &CommentView<'_>, scan: &mut Scan<'_>, set: &RuleSet) -> bool {
        if let Some(Cond::Classifier(spec)) = self.scored.and_then(|i| self.conds.get(i))
            && scan
                .known_score(&spec.model)
                .is_some_and(|s| !spec.holds(s))
        {
            return false;
        }
        self.order.iter().all(|&i| {
            self.conds
                .get(i)
                .is_some_and(|cond| cond.holds(c, scan, set))
        })
    }

    fn check(
        &self,
        c: &CommentView<'_>,
        scan: &mut Scan<'_>,
        set: &RuleSet,
    ) -> Option<Vec<Evidence>> {
        let mut evidence = Vec::new();
        for cond in &self.conds {
            if let Some(e) = cond.check(c, scan, set)? {
                evidence.push(e);
            }
        }
        Some(evidence)
    }
}

/// `text.chars().count() >= n`, without counting when the byte length decides it (a
/// character is one to four bytes).
fn length_at_least(text: &str, n: usize) -> bool {
    if text.len() < n {
        false
    } else if text.len() >= n.saturating_mul(4) {
        true
    } else {
        text.chars().count() >= n
    }
}

fn ev(detail: String, span: Option<Range<usize>>) -> Option<Option<Evidence>> {
    Some(Some(Evidence { detail, span }))
}

/// Evidence that points at no span of the text (counts, lengths, context).
fn unspanned(detail: String) -> Option<Evidence> {
    Some(Evidence { detail, span: None })
}

impl ClassifierSpec {
    fn holds(&self, score: f32) -> bool {
        score >= self.min_score && self.max_score.is_none_or(|max| score < max)
    }

    /// `classifier 0.973 (models/scam.model, at least 0.90)`.
    fn describe(&self, score: f32) -> String {
        let range = match self.max_score {
            Some(max) => format!("{:.2} to below {max:.2}", self.min_score),
            None => format!("at least {:.2}", self.min_score),
        };
        format!("classifier {score:.3} ({}, {range})", self.path)
    }
}

impl Cond {
    /// Rough cost of [`Cond::holds`], for ordering a group's tests.
    fn cost(&self) -> u8 {
        match self {
            Cond::IsReply(_) | Cond::Media(_) | Cond::Words { .. } => 0,
            Cond::MinLength(_) | Cond::MaxLength(_) | Cond::Usernames { .. } => 1,
            Cond::Regex {
                form: TextForm::Normalized,
                ..
            }
            | Cond::MaxMentions(_)
            | Cond::MaxEmojis(_)
            | Cond::Repeated(_) => 2,
            Cond::MentionsOnly | Cond::EmojiOnly | Cond::MaxCaps(_) => 3,
            Cond::Contact(_) | Cond::Impersonation { .. } => 4,
            Cond::Links { .. } | Cond::DenyDomains(_) | Cond::Lookalike(_) => 5,
            Cond::Regex {
                form: TextForm::Original,
                ..
            } => 6,
            Cond::Classifier(_) => 7,
            // Tens of microseconds on Latin text: after everything else.
            Cond::Languages { .. } => 8,
        }
    }

    /// Whether the condition holds, without building its evidence. Must agree with
    /// [`Cond::check`] returning `Some` (a test runs both over every condition).
    ///
    /// A word condition, the first test of most rules and false for most comments, is
    /// answered here, inlined into the rule loop; the rest go through one call. (A single
    /// function for every condition spent some sixty instructions per rule setting up for
    /// arms that mostly never ran.)
    #[inline]
    fn holds(&self, c: &CommentView<'_>, scan: &mut Scan<'_>, set: &RuleSet) -> bool {
        match self {
            Cond::Words { list, negate } => scan.words[*list].is_some() != *negate,
            _ => self.holds_other(c, scan, set),
        }
    }

    #[inline(never)]
    fn holds_other(&self, c: &CommentView<'_>, scan: &mut Scan<'_>, set: &RuleSet) -> bool {
        match self {
            Cond::Words { list, negate } => scan.words[*list].is_some() != *negate,
            Cond::Regex { list, form, negate } => {
                let hit = match form {
                    TextForm::Normalized => scan.regex(set, *list).is_some(),
                    TextForm::Original => set.regex_lists[*list]
                        .compiled
                        .iter()
                        .any(|r| r.is_match(c.text)),
                };
                hit != *negate
            }
            Cond::Links { allow } => {
                let n = scan.n;
                first_not_allowed(scan.links(set), allow, c.text, n).is_some()
            }
            Cond::DenyDomains(deny) => scan.links(set).iter().any(|(h, _)| deny.holds(h)),
            Cond::Lookalike(own) => {
                let n = scan.n;
                first_imitation(scan.links(set), own, c.text, n).is_some()
            }
            Cond::Contact(kinds) => kinds.iter().any(|&(k, words)| {
                let i = k as usize;
                if let Some(&Some(known)) = scan.contacts.get(i) {
                    return known;
                }
                let found = match words {
                    Some(list) => {
                        detect::has_contact_given_words(scan.n, k, scan.words[list].is_some())
                    }
                    None => detect::has_contact(scan.n, k),
                };
                if let Some(slot) = scan.contacts.get_mut(i) {
                    *slot = Some(found);
                }
                found
            }),
            Cond::MaxMentions(max) => scan.mentions(c.text) > *max as usize,
            Cond::MentionsOnly => scan.n.may_have(b'@') && detect::mentions_only(c.text),
            Cond::MaxEmojis(max) => scan.emojis() > *max as usize,
            Cond::EmojiOnly => scan.emojis() > 0 && detect::emoji_only(c.text),
            Cond::MaxCaps(max) => detect::caps_ratio(c.text).is_some_and(|r| r > *max),
            Cond::MinLength(min) => length_at_least(c.text, *min as usize),
            Cond::MaxLength(max) => !length_at_least(c.text, *max as usize + 1),
            Cond::Usernames {
                set, plain, negate, ..
            } => {
                let name = c.username.unwrap_or("");
                let hit = match plain {
                    Some(plain) if name.is_ascii() => {
                        detect::plain_username_matches(plain, name.as_bytes())
                    }
                    _ => set.is_match(name),
                };
                hit != *negate
            }
            Cond::Impersonation { brands, .. }
                if brands.is_empty() && c.account_username.is_none() =>
            {
                false
            }
            Cond::IsReply(want) => c.is_reply == *want,
            Cond::Media(list) => list.iter().any(|m| {
                c.media_id == Some(m.as_str())
                    || c.media_type.is_some_and(|t| t.eq_ignore_ascii_case(m))
            }),
            Cond::Impersonation { .. } | Cond::Repeated(_) => self.check(c, scan, set).is_some(),
            Cond::Classifier(spec) => spec.holds(scan.score(&spec.model, c.text, set)),
            Cond::Languages {
                list,
                unknown,
                negate,
            } => {
                let found = scan.lang(c.text);
                if *negate {
                    found.is_outside(list)
                } else {
                    found.is_in(list, *unknown)
                }
            }
        }
    }

    fn is_positive(&self) -> bool {
        !matches!(
            self,
            Cond::Words { negate: true, .. }
                | Cond::Regex { negate: true, .. }
                | Cond::Usernames { negate: true, .. }
        )
    }

    /// `None`: the condition fails. `Some(None)`: it holds without evidence (a negative
    /// condition). `Some(Some(e))`: it holds, because of `e`.
    fn check(
        &self,
        c: &CommentView<'_>,
        scan: &mut Scan<'_>,
        set: &RuleSet,
    ) -> Option<Option<Evidence>> {
        match self {
            Cond::Words { list, negate } => match (&scan.words[*list], negate) {
                (Some((i, id, at)), false) => ev(
                    format!("word \"{}\"", set.word_lists[*list][*i]),
                    set.word_ids
                        .get(*id)
                        .and_then(|(_, _, p)| p.span(scan.n, at.clone())),
                ),
                (None, true) => Some(None),
                _ => None,
            },
            Cond::Regex { list, form, negate } => {
                let regexes = &set.regex_lists[*list];
                let hit = match form {
                    TextForm::Normalized => scan.regex(set, *list).map(|i| {
                        let span = regexes.compiled[i]
                            .find(&scan.n.folded)
                            .map(|m| scan.n.folded_to_original(m.range()));
                        (i, span)
                    }),
                    TextForm::Original => regexes
                        .compiled
                        .iter()
                        .enumerate()
                        .find_map(|(i, r)| r.find(c.text).map(|m| (i, Some(m.range())))),
                };
                match (hit, negate) {
                    (Some((i, span)), false) => {
                        ev(format!("regex \"{}\"", regexes.patterns[i]), span)
                    }
                    (None, true) => Some(None),
                    _ => None,
                }
            }
            Cond::Links { allow } => {
                let n = scan.n;
                let (host, span) = first_not_allowed(scan.links(set), allow, c.text, n)?;
                ev(
                    format!("link \"{host}\""),
                    span.map(|r| n.folded_to_original(r)),
                )
            }
            Cond::DenyDomains(deny) => {
                let n = scan.n;
                let (host, span) = scan.links(set).iter().find(|(h, _)| deny.holds(h))?;
                ev(
                    format!("denied domain \"{host}\""),
                    span.map(|r| n.folded_to_original(r)),
                )
            }
            Cond::Lookalike(own) => {
                let n = scan.n;
                let (host, span, domain) = first_imitation(scan.links(set), own, c.text, n)?;
                ev(
                    format!("link \"{host}\" imitates \"{domain}\""),
                    span.map(|r| n.folded_to_original(r)),
                )
            }
            Cond::Contact(kinds) => kinds.iter().find_map(|(k, _)| {
                detect::contact(scan.n, *k).map(|(what, span)| {
                    Some(Evidence {
                        detail: format!("{} contact \"{what}\"", k.as_str()),
                        span,
                    })
                })
            }),
            Cond::MaxMentions(max) => {
                let count = scan.mentions(c.text);
                (count > *max as usize).then(|| {
                    let noun = if count == 1 { "mention" } else { "mentions" };
                    unspanned(format!("{count} {noun} (more than {max})"))
                })
            }
            Cond::MentionsOnly => {
                detect::mentions_only(c.text).then(|| unspanned("only mentions".into()))
            }
            Cond::MaxEmojis(max) => {
                let count = scan.emojis();
                (count > *max as usize)
                    .then(|| unspanned(format!("{count} emoji (more than {max})")))
            }
            Cond::EmojiOnly => {
                let any = scan.emojis() > 0;
                (any && detect::emoji_only(c.text)).then(|| unspanned("only emoji".into()))
            }
            Cond::MaxCaps(max) => {
                let ratio = detect::caps_ratio(c.text)?;
                (ratio > *max).then(|| {
                    unspanned(format!(
                        "{:.0}% capitals (more than {:.0}%)",
                        ratio * 100.0,
                        max * 100.0
                    ))
                })
            }
            Cond::MinLength(min) => {
                let len = c.text.chars().count();
                (len >= *min as usize).then(|| unspanned(format!("length {len} (at least {min})")))
            }
            Cond::MaxLength(max) => {
                let len = c.text.chars().count();
                (len <= *max as usize).then(|| unspanned(format!("length {len} (at most {max})")))
            }
            Cond::Usernames {
                set,
                patterns,
                negate,
                ..
            } => {
                let username = c.username.unwrap_or("");
                let hit = set.matches(username).iter().next();
                match (hit, negate) {
                    (Some(i), false) => ev(
                        format!("username \"{username}\" matches \"{}\"", patterns[i]),
                        None,
                    ),
                    (None, true) => Some(None),
                    _ => None,
                }
            }
            Cond::Impersonation {
                max_distance,
                brands,
            } => {
                let username = c.username?;
                if c.account_username
                    .is_some_and(|a| a.eq_ignore_ascii_case(username))
                {
                    return None;
                }
                let u = detect::username_skeleton(username);
                let own = c
                    .account_username
                    .map(|a| (a.to_string(), detect::username_skeleton(a)));
                let (brand, _) = own.iter().chain(brands).find(|(b, skel)| {
                    detect::impersonates_skeleton(username, &u, b, skel, *max_distance)
                })?;
                ev(
                    format!("username \"{username}\" impersonates \"{brand}\""),
                    None,
                )
            }
            Cond::Repeated(spec) => {
                let since =
                    c.at.saturating_sub(i64::try_from(spec.window.as_secs()).unwrap_or(i64::MAX));
                let window = humantime::format_duration(spec.window);
                let recent = c.history.iter().filter(|s| s.at >= since && s.at <= c.at);
                if let (Some(n), Some(user)) = (spec.per_user, c.username) {
                    let same = 1 + recent.clone().filter(|s| s.username == user).count();
                    if same >= n as usize {
                        return ev(
                            format!("same text {same} times from @{user} within {window}"),
                            None,
                        );
                    }
                }
                if let Some(k) = spec
                    .users
                    .filter(|k| recent.clone().count() + 1 >= *k as usize)
                {
                    let mut users: HashSet<&str> = recent.map(|s| s.username.as_str()).collect();
                    if let Some(u) = c.username {
                        users.insert(u);
                    }
                    if users.len() >= k as usize {
                        return ev(
                            format!("same text from {} users within {window}", users.len()),
                            None,
                        );
                    }
                }
                None
            }
            Cond::IsReply(want) => (c.is_reply == *want).then(|| {
                unspanned(
                    if *want {
                        "is a reply"
                    } else {
                        "is not a reply"
                    }
                    .into(),
                )
            }),
            Cond::Media(list) => {
                let hit = list.iter().find(|m| {
                    c.media_id == Some(m.as_str())
                        || c.media_type.is_some_and(|t| t.eq_ignore_ascii_case(m))
                })?;
                ev(format!("media {hit}"), None)
            }
            Cond::Classifier(spec) => {
                let score = scan.score(&spec.model, c.text, set);
                spec.holds(score).then(|| unspanned(spec.describe(score)))
            }
            Cond::Languages {
                list,
                unknown,
                negate,
            } => {
                let found = scan.lang(c.text);
                let mut codes = list.iter().map(|l| l.code()).collect::<Vec<_>>();
                if *unknown {
                    codes.push(UNDETERMINED);
                }
                let codes = codes.join(", ");
                if *negate {
                    found
                        .is_outside(list)
                        .then(|| unspanned(format!("language {found}, not one of {codes}")))
                } else {
                    found
                        .is_in(list, *unknown)
                        .then(|| unspanned(format!("language {found}, one of {codes}")))
                }
            }
        }
    }
}

struct GroupCompiler<'a> {
    rule: usize,
    group: Option<usize>,
    errors: &'a mut Vec<CompileError>,
    set: &'a mut RuleSet,
}

impl GroupCompiler<'_> {
    fn error(&mut self, key: &'static str, item: Option<usize>, message: String) {
        self.errors.push(CompileError {
            rule: self.rule,
            group: self.group,
            key: Some(key),
            item,
            message,
        });
    }

    fn words(&mut self, key: &'static str, words: &[String]) -> Option<usize> {
        if words.is_empty() {
            return None;
        }
        // A list written again (one rule's `not_words` another's `words`) is looked up once:
        // its first match is the same for every rule that names it.
        if let Some(list) = self.set.word_lists.iter().position(|l| l == words) {
            return Some(list);
        }
        let list = self.set.word_lists.len();
        for (i, w) in words.iter().enumerate() {
            let p = normalize::Pattern::new(w);
            if p.skeleton.trim().is_empty() {
                self.error(key, Some(i), format!("word {w:?} has no letters or digits"));
                continue;
            }
            // A phrase also matches written as one word: hashtags (#cryptosignals) and
            // spaced-out letters (c r y p t o s i g n a l s) drop the spaces.
            if p.skeleton.contains(' ') {
                let joined = normalize::Pattern::new(&p.skeleton.replace(' ', ""));
                self.set.word_ids.push((list, i, joined));
            }
            self.set.word_ids.push((list, i, p));
        }
        self.set.word_lists.push(words.to_vec());
        Some(list)
    }

    /// Adds the word "dot" to the rule set's word lookup (once), for the link detector.
    fn dot_word(&mut self) {
        if self.set.dot_list.is_none() {
            self.set.dot_list = Some(self.internal_words(&["dot"]));
        }
    }

    /// The word list of a contact kind's words, added once per rule set.
    fn contact_words(&mut self, kind: ContactKind) -> Option<usize> {
        let words = detect::contact_words(kind);
        if words.is_empty() {
            return None;
        }
        if let Some(&(_, list)) = self.set.contact_lists.iter().find(|(k, _)| *k == kind) {
            return Some(list);
        }
        let list = self.internal_words(words);
        self.set.contact_lists.push((kind, list));
        Some(list)
    }

    /// A word list that no rule names, for a detector: found with every rule's words.
    fn internal_words(&mut self, words: &[&str]) -> usize {
        let list = self.set.word_lists.len();
        for (i, w) in words.iter().enumerate() {
            self.set
                .word_ids
                .push((list, i, normalize::Pattern::new(w)));
        }
        self.set
            .word_lists
            .push(words.iter().map(|w| w.to_string()).collect());
        list
    }

    fn regexes(&mut self, key: &'static str, patterns: &[String], form: TextForm) -> Option<usize> {
        if patterns.is_empty() {
            return None;
        }
        let mut compiled = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            match RegexBuilder::new(&ascii_word_boundaries(p))
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
            {
                Ok(r) => compiled.push(r),
                Err(e) => self.error(
                    key,
                    Some(i),
                    format!("invalid regex pattern {p:?}: {}", one_line(&e)),
                ),
            }
        }
        if compiled.len() != patterns.len() {
            return None;
        }
        // One regex is its own set; several on the normalised text become one set. Either
        // way, a screen goes in front on the normalised text.
        let wrapped: Vec<String> = patterns.iter().map(|p| ascii_word_boundaries(p)).collect();
        let screen = match form {
            TextForm::Normalized => screen::Screen::new(&wrapped),
            TextForm::Original => None,
        };
        let set = if form == TextForm::Normalized && patterns.len() > 1 {
            match regex_automata::meta::Regex::builder()
                .configure(
                    regex_automata::meta::Config::new()
                        // Every pattern that matches, as a `RegexSet` does: leftmost-first
                        // would let an earlier match of a later pattern hide the first one.
                        .match_kind(regex_automata::MatchKind::All)
                        .auto_prefilter(false)
                        .nfa_size_limit(Some(REGEX_SIZE_LIMIT * patterns.len()))
                        // The regex crate's default (2 MiB): one list's lazy DFA takes no more.
                        .hybrid_cache_capacity(REGEX_SIZE_LIMIT * 2),
                )
                .build_many(&wrapped)
            {
                Ok(s) => Some(s),
                Err(e) => {
                    self.error(
                        key,
                        None,
                        format!("the list's regexes together are too large: {e}"),
                    );
                    return None;
                }
            }
        } else {
            None
        };
        let list = self.set.regex_lists.len();
        self.set.regex_lists.push(RegexList {
            patterns: patterns.to_vec(),
            compiled,
            set,
            screen,
        });
        Some(list)
    }

    fn usernames(&mut self, key: &'static str, patterns: &[String], negate: bool) -> Option<Cond> {
        if patterns.is_empty() {
            return None;
        }
        let wrapped: Vec<String> = patterns.iter().map(|p| format!("(?i)^(?:{p})$")).collect();
        for (i, w) in wrapped.iter().enumerate() {
            if let Err(e) = RegexBuilder::new(w).size_limit(REGEX_SIZE_LIMIT).build() {
                self.error(
                    key,
                    Some(i),
                    format!(
                        "invalid username pattern {:?}: {}",
                        patterns[i],
                        one_line(&e)
                    ),
                );
                return None;
            }
        }
        match RegexSetBuilder::new(&wrapped)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
        {
            Ok(set) => Some(Cond::Usernames {
                set,
                plain: detect::plain_usernames(patterns),
                patterns: patterns.to_vec(),
                negate,
            }),
            Err(e) => {
                self.error(key, None, one_line(&e));
                None
            }
        }
    }

    /// A `languages`/`not_languages` list: each an ISO 639-1 code the detector knows, and in
    /// `languages` also `"und"` (undetermined, as in BCP 47) for a comment whose language is
    /// unknown. The list, and whether it holds `"und"`.
    fn languages(&mut self, key: &'static str, codes: &[String]) -> Option<(Vec<Language>, bool)> {
        if codes.is_empty() {
            return None;
        }
        let mut list = Vec::with_capacity(codes.len());
        // Each "und" in `languages` (listed twice it is still one condition).
        let mut unds = 0;
        for (i, code) in codes.iter().enumerate() {
            if code.trim().eq_ignore_ascii_case(UNDETERMINED) {
                if key == "languages" {
                    unds += 1;
                } else {
                    self.error(
                        key,
                        Some(i),
                        format!(
                            "{UNDETERMINED:?} (an unknown language) goes in `languages`: `not_languages` already decides for an unknown language by its script"
                        ),
                    );
                }
                continue;
            }
            match Language::parse(code) {
                Some(l) => list.push(l),
                None => self.error(
                    key,
                    Some(i),
                    format!(
                        "unknown language code {code:?}: an ISO 639-1 code of a language igmod detects ({}), or {UNDETERMINED:?} for an unknown language",
                        Language::known_codes()
                    ),
                ),
            }
        }
        // Every item read, or an error said which one was not.
        (list.len() + unds == codes.len()).then_some((list, unds > 0))
    }

    fn compile(&mut self, c: &ConditionSpec) -> Group {
        let mut conds = Vec::new();
        if let Some(list) = self.words("words", &c.words) {
            conds.push(Cond::Words {
                list,
                negate: false,
            });
        }
        if let Some(list) = self.words("not_words", &c.not_words) {
            conds.push(Cond::Words { list, negate: true });
        }
        if let Some(list) = self.regexes("regex", &c.regex, c.regex_on) {
            conds.push(Cond::Regex {
                list,
                form: c.regex_on,
                negate: false,
            });
        }
        if let Some(list) = self.regexes("not_regex", &c.not_regex, c.regex_on) {
            conds.push(Cond::Regex {
                list,
                form: c.regex_on,
                negate: true,
            });
        }
        let domains = |v: &[String]| {
            detect::Domains::new(
                v.iter()
                    .map(|d| d.trim().trim_start_matches('.').to_lowercase())
                    .collect(),
            )
        };
        if c.links || !c.deny_domains.is_empty() {
            self.dot_word();
        }
        if c.links {
            conds.push(Cond::Links {
                allow: domains(&c.allow_domains),
            });
        } else if !c.allow_domains.is_empty() {
            self.error(
                "allow_domains",
                None,
                "allow_domains needs links = true".into(),
            );
        }
        if !c.deny_domains.is_empty() {
            conds.push(Cond::DenyDomains(domains(&c.deny_domains)));
        }
        if !c.lookalike_domains.is_empty() {
            self.dot_word();
            match detect::Lookalikes::new(&c.lookalike_domains) {
                Ok(own) => conds.push(Cond::Lookalike(own)),
                Err(e) => self.error("lookalike_domains", Some(e.item), e.message),
            }
        }
        if !c.contact.is_empty() {
            let kinds = c
                .contact
                .iter()
                .map(|&k| (k, self.contact_words(k)))
                .collect();
            conds.push(Cond::Contact(kinds));
        }
        if let Some(m) = c.max_mentions {
            conds.push(Cond::MaxMentions(m));
        }
        if c.mentions_only {
            conds.push(Cond::MentionsOnly);
        }
        if let Some(m) = c.max_emojis {
            conds.push(Cond::MaxEmojis(m));
        }
        if c.emoji_only {
            conds.push(Cond::EmojiOnly);
        }
        if let Some(r) = c.max_caps_ratio {
            if !(0.0..1.0).contains(&r) {
                self.error(
                    "max_caps_ratio",
                    None,
                    format!("max_caps_ratio {r} must be at least 0 and below 1"),
                );
            }
            conds.push(Cond::MaxCaps(r));
        }
        if let Some(m) = c.min_length {
            conds.push(Cond::MinLength(m));
        }
        if let Some(m) = c.max_length {
            conds.push(Cond::MaxLength(m));
        }
        if let Some(u) = self.usernames("usernames", &c.usernames, false) {
            conds.push(u);
        }
        if let Some(u) = self.usernames("not_usernames", &c.not_usernames, true) {
            conds.push(u);
        }
        if let Some(i) = &c.impersonation {
            conds.push(Cond::Impersonation {
                max_distance: i.max_distance,
                brands: i
                    .brands
                    .iter()
                    .map(|b| (b.clone(), detect::username_skeleton(b)))
                    .collect(),
            });
        }
        if let Some(r) = &c.repeated {
            if r.per_user.is_none() && r.users.is_none() {
                self.error("repeated", None, "repeated needs per_user or users".into());
            }
            if r.per_user == Some(0) || r.users == Some(0) {
                self.error(
                    "repeated",
                    None,
                    "repeated thresholds must be at least 1".into(),
                );
            }
            conds.push(Cond::Repeated(r.clone()));
        }
        if let Some(r) = c.is_reply {
            conds.push(Cond::IsReply(r));
        }
        if !c.media.is_empty() {
            conds.push(Cond::Media(c.media.clone()));
        }
        if let Some(spec) = &c.classifier {
            let valid = (0.0..=1.0).contains(&spec.min_score)
                && spec
                    .max_score
                    .is_none_or(|max| max > spec.min_score && max <= 1.0);
            if !valid {
                self.error(
                    "classifier",
                    None,
                    "min_score must be between 0 and 1, and max_score above it and at most 1"
                        .into(),
                );
            }
            conds.push(Cond::Classifier(spec.clone()));
        }
        if let Some((list, unknown)) = self.languages("languages", &c.languages) {
            conds.push(Cond::Languages {
                list,
                unknown,
                negate: false,
            });
        }
        if let Some((list, _)) = self.languages("not_languages", &c.not_languages) {
            conds.push(Cond::Languages {
                list,
                unknown: false,
                negate: true,
            });
        }
        let mut order: Vec<usize> = (0..conds.len()).collect();
        order.sort_by_key(|&i| conds[i].cost());
        let scored = conds.iter().position(|c| matches!(c, Cond::Classifier(_)));
        Group {
            conds,
            order,
            scored,
        }
    }
}

/// The first link whose host an allow list does not allow ([`detect::Domains::allows`]),
/// with its span in the folded text.
fn first_not_allowed<'l>(
    links: &'l detect::Links,
    allow: &detect::Domains,
    text: &str,
    n: &Normalized<'_>,
) -> Option<(&'l str, Option<Range<usize>>)> {
    links
        .indexed()
        .find(|(i, h, span)| {
            !allow.allows(h, || {
                links.written_in_ascii(*i, || host_written_in_ascii(text, n, h, span))
            })
        })
        .map(|(_, h, span)| (h, span))
}

/// The first link that imitates a listed domain ([`detect::Lookalikes::imitated`]), with its
/// span in the folded text and the domain.
fn first_imitation<'l, 'o>(
    links: &'l detect::Links,
    own: &'o detect::Lookalikes,
    text: &str,
    n: &Normalized<'_>,
) -> Option<(&'l str, Option<Range<usize>>, &'o str)> {
    links.indexed().find_map(|(i, h, span)| {
        let ascii = || links.written_in_ascii(i, || host_written_in_ascii(text, n, h, &span));
        own.imitated(h, folded_link(n, &span), ascii)
            .map(|domain| (h, span.clone(), domain))
    })
}

/// A found link in the folded text, or "" when it has no span.
fn folded_link<'n>(n: &'n Normalized<'_>, span: &Option<Range<usize>>) -> &'n str {
    span.as_ref()
        .and_then(|r| n.folded.get(r.clone()))
        .unwrap_or("")
}

/// Whether a found link's host (`host`, in the folded text) was written in ASCII letters
/// ([`detect::host_reads_as_ascii`]). Usually answered without finding the link as written
/// (a map of the folded text back to the original, costly for a text with other scripts):
/// when the text is ASCII, or holds the host (lowercase, as folded) as often as the folded
/// text does, every occurrence was written so.
fn host_written_in_ascii(
    text: &str,
    n: &Normalized<'_>,
    host: &str,
    span: &Option<Range<usize>>,
) -> bool {
    if text.is_ascii() {
        return true;
    }
    // Counted (overlapping) from the places of the host's first dot, which few comments have
    // many of: a host is a few bytes, and a substring searcher's set-up cost more than the
    // search.
    let count = |hay: &str| {
        let (hay, host) = (hay.as_bytes(), host.as_bytes());
        let dot = memchr::memchr(b'.', host).unwrap_or(0);
        let Some(&key) = host.get(dot) else {
            return 0;
        };
        memchr::memchr_iter(key, hay)
            .filter(|&i| {
                i.checked_sub(dot)
                    .and_then(|start| hay.get(start..))
                    .is_some_and(|from| from.starts_with(host))
            })
            .count()
    };
    if !host.is_empty() && count(text) >= count(&n.folded) {
        return true;
    }
    detect::host_reads_as_ascii(written_link(text, n, span))
}

/// A found link as the comment wrote it (before folding), or "" when it has no span.
fn written_link<'t>(text: &'t str, n: &Normalized<'_>, span: &Option<Range<usize>>) -> &'t str {
    span.as_ref()
        .and_then(|r| text.get(n.folded_to_original(r.clone())))
        .unwrap_or("")
}

/// Rewrites `\b`/`\B` to their ASCII forms. A Unicode word boundary makes the regex crate
/// leave its fast lazy DFA for a slow engine on any non-ASCII haystack (measured: 500 µs
/// instead of 0.6 µs per comment for 50 patterns); the folded text is Latin letters anyway.
fn ascii_word_boundaries(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    // Inside a character class `\b` is a backspace and stays as written.
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '[' => class_depth += 1,
            ']' => class_depth = class_depth.saturating_sub(1),
            '\\' => {
                match chars.next() {
                    Some(b @ ('b' | 'B')) if class_depth == 0 => {
                        out.push_str("(?-u:\\");
                        out.push(b);
                        out.push(')');
                    }
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => out.push('\\'),
                }
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
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

#[cfg(test)]
mod tests;
