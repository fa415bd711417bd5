//! The `[[rules]]` tables of config.toml and of the files it includes
//! (`include = ["rules/*.toml"]`), turned into [`RuleSpec`]s and compiled, with every problem
//! located in the file it came from.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Validator;
use crate::rules::{
    Action, ClassifierSpec, ConditionSpec, ContactKind, ImpersonationSpec, RepeatedSpec, RuleSet,
    RuleSpec, TextForm,
};

/// `contact = true` or `contact = ["email", "phone", "whatsapp", "telegram"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawContact {
    All(bool),
    Kinds(Vec<String>),
}

/// `impersonation = true` (the account's own username) or a table with brands.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawImpersonation {
    On(bool),
    Table {
        #[serde(default)]
        brands: Vec<String>,
        max_distance: Option<usize>,
    },
}

/// `classifier = { model = "models/scam.model", min_score = 0.9, max_score = 0.98 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClassifier {
    model: Spanned<String>,
    min_score: Option<Spanned<f64>>,
    max_score: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRepeated {
    per_user: Option<u32>,
    users: Option<u32>,
    window: String,
}

/// Declares a struct with every condition key (plus `extra` fields), so a rule's top level and
/// the groups of its `any` accept the same keys and both reject unknown ones. (Serde's
/// `flatten` would lose the spans and `deny_unknown_fields`.)
macro_rules! with_conditions {
    ($(#[$meta:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($extra)*
            #[serde(default)]
            words: Vec<Spanned<String>>,
            #[serde(default)]
            not_words: Vec<Spanned<String>>,
            #[serde(default)]
            regex: Vec<Spanned<String>>,
            #[serde(default)]
            not_regex: Vec<Spanned<String>>,
            regex_on: Option<TextForm>,
            #[serde(default)]
            links: bool,
            #[serde(default)]
            allow_domains: Vec<Spanned<String>>,
            #[serde(default)]
            deny_domains: Vec<Spanned<String>>,
            #[serde(default)]
            lookalike_domains: Vec<Spanned<String>>,
            contact: Option<Spanned<RawContact>>,
            max_mentions: Option<u32>,
            #[serde(default)]
            mentions_only: bool,
            max_emojis: Option<u32>,
            #[serde(default)]
            emoji_only: bool,
            max_caps_ratio: Option<Spanned<f64>>,
            min_length: Option<u32>,
            max_length: Option<u32>,
            #[serde(default)]
            usernames: Vec<Spanned<String>>,
            #[serde(default)]
            not_usernames: Vec<Spanned<String>>,
            impersonation: Option<Spanned<RawImpersonation>>,
            repeated: Option<Spanned<RawRepeated>>,
            is_reply: Option<bool>,
            #[serde(default)]
            media: Vec<String>,
            classifier: Option<Spanned<RawClassifier>>,
            #[serde(default)]
            languages: Vec<Spanned<String>>,
            #[serde(default)]
            not_languages: Vec<Spanned<String>>,
        }

        impl $name {
            fn conditions(&self, v: &mut Validator) -> ConditionSpec {
                let strings = |l: &[Spanned<String>]| l.iter().map(|s| s.get_ref().clone()).collect();
                ConditionSpec {
                    words: strings(&self.words),
                    not_words: strings(&self.not_words),
                    regex: strings(&self.regex),
                    not_regex: strings(&self.not_regex),
                    regex_on: self.regex_on.unwrap_or_default(),
                    links: self.links,
                    allow_domains: strings(&self.allow_domains),
                    deny_domains: strings(&self.deny_domains),
                    lookalike_domains: strings(&self.lookalike_domains),
                    contact: contact(v, self.contact.as_ref()),
                    max_mentions: self.max_mentions,
                    mentions_only: self.mentions_only,
                    max_emojis: self.max_emojis,
                    emoji_only: self.emoji_only,
                    max_caps_ratio: self.max_caps_ratio.as_ref().map(|r| *r.get_ref()),
                    min_length: self.min_length,
                    max_length: self.max_length,
                    usernames: strings(&self.usernames),
                    not_usernames: strings(&self.not_usernames),
                    impersonation: self.impersonation.as_ref().and_then(|i| impersonation(i.get_ref())),
                    repeated: self.repeated.as_ref().and_then(|r| repeated(v, r)),
                    is_reply: self.is_reply,
                    media: self.media.iter().map(|m| m.to_uppercase()).collect(),
                    classifier: self.classifier.as_ref().and_then(|c| classifier(v, c)),
                    languages: strings(&self.languages),
                    not_languages: strings(&self.not_languages),
                }
            }

            /// Where a compile error about `key` (item `item`) points.
            fn span_of(&self, key: &str, item: Option<usize>) -> Option<Range<usize>> {
                let list = match key {
                    "words" => &self.words,
                    "not_words" => &self.not_words,
                    "regex" => &self.regex,
                    "not_regex" => &self.not_regex,
                    "allow_domains" => &self.allow_domains,
                    "lookalike_domains" => &self.lookalike_domains,
                    "usernames" => &self.usernames,
                    "not_usernames" => &self.not_usernames,
                    "languages" => &self.languages,
                    "not_languages" => &self.not_languages,
                    "max_caps_ratio" => return self.max_caps_ratio.as_ref().map(|s| s.span()),
                    "repeated" => return self.repeated.as_ref().map(|s| s.span()),
                    "classifier" => return self.classifier.as_ref().map(|s| s.span()),
                    _ => return None,
                };
                item.and_then(|i| list.get(i)).or(list.first()).map(|s| s.span())
            }
        }
    };
}

with_conditions!(
    /// One `[[rules]]` table.
    RawRule {
        name: Spanned<String>,
        action: Spanned<Action>,
        reply: Option<Spanned<String>>,
        #[serde(default)]
        dry_run: bool,
        /// The rule set this rule belongs to (default: an included file's stem).
        set: Option<Spanned<String>>,
        #[serde(default)]
        any: Vec<RawGroup>,
    }
);

with_conditions!(
    /// One table of a rule's `any = [...]`.
    RawGroup {}
);

/// A file named by `include`: only `[[rules]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRulesFile {
    #[serde(default)]
    rules: Vec<RawRule>,
}

fn contact(v: &mut Validator, raw: Option<&Spanned<RawContact>>) -> Vec<ContactKind> {
    let Some(raw) = raw else { return Vec::new() };
    match raw.get_ref() {
        RawContact::All(true) => ContactKind::ALL.to_vec(),
        RawContact::All(false) => Vec::new(),
        RawContact::Kinds(kinds) => kinds
            .iter()
            .filter_map(|k| {
                let kind = ContactKind::parse(k);
                if kind.is_none() {
                    v.problem(
                        &raw.span(),
                        format!(
                            "rules.contact: unknown kind {k:?} (email, phone, whatsapp, telegram)"
                        ),
                    );
                }
                kind
            })
            .collect(),
    }
}

fn impersonation(raw: &RawImpersonation) -> Option<ImpersonationSpec> {
    match raw {
        RawImpersonation::On(false) => None,
        RawImpersonation::On(true) => Some(ImpersonationSpec {
            brands: Vec::new(),
            max_distance: 1,
        }),
        RawImpersonation::Table {
            brands,
            max_distance,
        } => Some(ImpersonationSpec {
            brands: brands.clone(),
            max_distance: max_distance.unwrap_or(1),
        }),
    }
}

/// The classifier condition: thresholds in range, and the model file (relative to config.toml)
/// read and checked, once per file however many rules name it.
fn classifier(v: &mut Validator, raw: &Spanned<RawClassifier>) -> Option<ClassifierSpec> {
    let r = raw.get_ref();
    let before = v.problems.len();
    let min = r.min_score.as_ref().map_or(0.5, |m| *m.get_ref());
    if let Some(m) = &r.min_score
        && !(0.0..=1.0).contains(&min)
    {
        v.problem(
            &m.span(),
            format!("rules.classifier.min_score: {min} must be between 0 and 1"),
        );
    }
    let max = r.max_score.as_ref().map(|m| *m.get_ref());
    if let (Some(m), Some(value)) = (&r.max_score, max)
        && !(value > min && value <= 1.0)
    {
        v.problem(
            &m.span(),
            format!(
                "rules.classifier.max_score: {value} must be above min_score ({min}) and at most 1"
            ),
        );
    }
    let model = v.model(&r.model);
    if v.problems.len() != before {
        return None;
    }
    Some(ClassifierSpec {
        model: model?,
        path: r.model.get_ref().clone(),
        min_score: min as f32,
        max_score: max.map(|m| m as f32),
    })
}

fn repeated(v: &mut Validator, raw: &Spanned<RawRepeated>) -> Option<RepeatedSpec> {
    let r = raw.get_ref();
    match humantime::parse_duration(&r.window) {
        Ok(window) if window > Duration::from_secs(366 * 86_400) => {
            v.problem(
                &raw.span(),
                "rules.repeated: window must be at most 1year".into(),
            );
            None
        }
        Ok(window) if window >= Duration::from_secs(1) => Some(RepeatedSpec {
            per_user: r.per_user,
            users: r.users,
            window,
        }),
        Ok(_) => {
            v.problem(
                &raw.span(),
                "rules.repeated: window must be at least 1s".into(),
            );
            None
        }
        Err(e) => {
            v.problem(
                &raw.span(),
                format!("rules.repeated: invalid window {:?}: {e}", r.window),
            );
            None
        }
    }
}

/// Rule names and rule sets, for resolving an account's `rules = [...]`.
#[derive(Debug, Default)]
pub struct RuleNames {
    /// Every rule, in order.
    pub rules: Vec<String>,
    /// Set name → its rules, in order.
    sets: Vec<(String, Vec<String>)>,
    /// Sets of included files that failed to parse: already reported, so naming them is not
    /// reported again.
    broken: Vec<String>,
    /// Every rule as written, in order (a reload compares them).
    pub specs: Vec<RuleSpec>,
}

impl RuleNames {
    /// The rules a name stands for: the rule itself, or every rule of the set.
    pub fn resolve(&self, name: &str) -> Option<Vec<String>> {
        if self.rules.iter().any(|r| r == name) {
            return Some(vec![name.to_string()]);
        }
        self.sets
            .iter()
            .find(|(s, _)| s == name)
            .map(|(_, rules)| rules.clone())
            .or_else(|| self.broken.iter().any(|b| b == name).then(Vec::new))
    }

    pub fn set_names(&self) -> Vec<&str> {
        self.sets.iter().map(|(s, _)| s.as_str()).collect()
    }
}

impl Validator {
    /// Reads included rule files, then compiles every rule (config.toml's first).
    pub(super) fn rules(
        &mut self,
        main: Vec<RawRule>,
        include: &[Spanned<String>],
    ) -> (Option<RuleSet>, RuleNames) {
        // (file index, default set, rule)
        let mut all: Vec<(usize, Option<String>, RawRule)> =
            main.into_iter().map(|r| (0, None, r)).collect();
        let mut broken = Vec::new();
        for pattern in include {
            let files = match expand(self.path(), pattern.get_ref()) {
                Ok(files) if !files.is_empty() => files,
                Ok(_) => {
                    self.problem(
                        &pattern.span(),
                        format!("include: {:?} matches no file", pattern.get_ref()),
                    );
                    continue;
                }
                Err(e) => {
                    self.problem(&pattern.span(), format!("include: {e}"));
                    continue;
                }
            };
            for path in files {
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        self.problem(
                            &pattern.span(),
                            format!("include: cannot read {}: {e}", path.display()),
                        );
                        continue;
                    }
                };
                let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                self.files.push((path, text));
                let index = self.files.len() - 1;
                self.file = index;
                match toml::from_str::<RawRulesFile>(&self.files[index].1) {
                    Ok(f) => all.extend(f.rules.into_iter().map(|r| (index, stem.clone(), r))),
                    Err(e) => {
                        let span = e.span().unwrap_or(0..0);
                        self.problem(&span, e.message().trim().to_string());
                        broken.extend(stem);
                    }
                }
                self.file = 0;
            }
        }

        let mut names = RuleNames {
            broken,
            ..RuleNames::default()
        };
        let mut seen: HashMap<String, ()> = HashMap::new();
        let mut specs = Vec::new();
        // Rules whose conditions were already refused (a model that cannot be read): the
        // compiler's "no condition that can match" would only repeat that.
        let mut refused = Vec::new();
        for (index, (file, default_set, rule)) in all.iter().enumerate() {
            self.file = *file;
            let name = rule.name.get_ref();
            if name.trim().is_empty() {
                self.problem(&rule.name.span(), "rules.name: must not be empty".into());
            } else if seen.insert(name.clone(), ()).is_some() {
                self.problem(
                    &rule.name.span(),
                    format!("rules.name: duplicate rule name {name:?}"),
                );
            }
            names.rules.push(name.clone());
            let set = rule
                .set
                .as_ref()
                .map(|s| s.get_ref().clone())
                .or_else(|| default_set.clone());
            if let Some(set) = set {
                if set == *name {
                    self.problem(
                        &rule.name.span(),
                        format!("rules.set: rule set {set:?} has the same name as a rule"),
                    );
                }
                match names.sets.iter_mut().find(|(s, _)| *s == set) {
                    Some((_, rules)) => rules.push(name.clone()),
                    None => names.sets.push((set, vec![name.clone()])),
                }
            }
            let before = self.problems.len();
            let all_conditions = rule.conditions(self);
            let any = rule.any.iter().map(|g| g.conditions(self)).collect();
            if self.problems.len() != before {
                refused.push(index);
            }
            specs.push(RuleSpec {
                name: name.clone(),
                action: *rule.action.get_ref(),
                reply: rule.reply.as_ref().map(|r| r.get_ref().clone()),
                dry_run: rule.dry_run,
                all: all_conditions,
                any,
            });
        }
        self.file = 0;
        let compiled = match RuleSet::compile(&specs) {
            Ok(set) => Some(set),
            Err(errors) => {
                for e in errors {
                    if e.key.is_none() && refused.contains(&e.rule) {
                        continue;
                    }
                    let (file, _, rule) = &all[e.rule];
                    self.file = *file;
                    let located = match (e.group, e.key) {
                        (_, Some("reply")) => rule.reply.as_ref().map(|r| r.span()),
                        (None, Some(key)) => rule.span_of(key, e.item),
                        (Some(g), Some(key)) => {
                            rule.any.get(g).and_then(|g| g.span_of(key, e.item))
                        }
                        (_, None) => None,
                    };
                    let key = e
                        .key
                        .map_or_else(|| "rules".to_string(), |k| format!("rules.{k}"));
                    let span = located.unwrap_or_else(|| rule.name.span());
                    self.problem(&span, format!("{key}: {}", e.message));
                }
                self.file = 0;
                None
            }
        };
        names.specs = specs;
        (compiled, names)
    }
}

/// Expands an include pattern relative to the config file's directory. Only the file name
/// may contain `*` (e.g. `rules/*.toml`); matches are sorted.
fn expand(config: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let base = config.parent().unwrap_or(Path::new("."));
    let full = base.join(pattern);
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        return Ok(if full.exists() {
            vec![full]
        } else {
            Vec::new()
        });
    }
    let dir = full.parent().unwrap_or(base);
    if dir.to_string_lossy().contains('*') {
        return Err(format!("{pattern:?}: only the file name may contain '*'"));
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| wildcard(&name, &n.to_string_lossy()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| wildcard(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards() {
        assert!(wildcard("*.toml", "starter.toml"));
        assert!(wildcard("s*r.toml", "starter.toml"));
        assert!(!wildcard("*.toml", "starter.toml.bak"));
        assert!(wildcard("*", ""));
    }
}
