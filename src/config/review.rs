//! `[review]`: the review queue in the browser (`src/review/`). Reviewers' passwords come from
//! the environment or a file, like tokens: never inline, never logged.

use std::ops::Range;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;
use toml::Spanned;

use super::Validator;
use crate::secrets::TokenSource;

/// The shortest reviewer password igmod accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Where the review queue listens unless `listen` says otherwise (the webhook receiver has
/// 8787, the metrics 9464).
pub const DEFAULT_REVIEW_LISTEN: &str = "127.0.0.1:8790";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReview {
    listen: Option<Spanned<String>>,
    public_url: Option<Spanned<String>>,
    #[serde(default)]
    users: Vec<Spanned<RawUser>>,
    min_score: Option<Spanned<f64>>,
    max_score: Option<Spanned<f64>>,
    remove: Option<Spanned<String>>,
    session_ttl: Option<Spanned<String>>,
    #[serde(default)]
    training_data: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
}

/// `[review]`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewConfig {
    pub listen: std::net::SocketAddr,
    /// The address reviewers type (`https://…` behind a TLS proxy): with https, cookies are
    /// `Secure`.
    pub public_url: Option<url::Url>,
    pub users: Vec<Reviewer>,
    /// Hides and deletes whose classifier score is in `min_score..max_score` are doubtful.
    pub min_score: f32,
    pub max_score: f32,
    /// What **remove** does to a flagged comment: `hide` (default) or `delete`.
    pub remove: RemoveAction,
    /// How long a session lasts without a request.
    pub session_ttl: Duration,
    /// Labeled CSV files (`text`, `label`) a candidate model trains on, with the labels in
    /// the database; empty: no candidate can be trained from the page.
    pub training_data: Vec<std::path::PathBuf>,
}

impl ReviewConfig {
    /// Whether reviewers reach it over https (cookies get `Secure`).
    pub fn https(&self) -> bool {
        self.public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https")
    }

    /// What works but is unsafe, for `check-config` and the start-up log.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.listen.ip().is_loopback() {
            notes.push(format!(
                "review.listen {} is not loopback: passwords and session cookies cross the network in plain HTTP; listen on 127.0.0.1 with a TLS proxy in front (README, \"The review queue\")",
                self.listen
            ));
        }
        if self
            .public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "http")
        {
            notes.push(
                "review.public_url is http: session cookies are not Secure; put TLS in front and make it https"
                    .to_string(),
            );
        }
        notes
    }
}

/// One reviewer: a name (recorded with each label) and where the password lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    pub name: String,
    pub password: TokenSource,
}

/// What **remove** asks of Instagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveAction {
    Hide,
    Delete,
}

impl RemoveAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RemoveAction::Hide => "hide",
            RemoveAction::Delete => "delete",
        }
    }
}

impl Validator {
    pub(super) fn review(&mut self, raw: Spanned<RawReview>) -> Option<ReviewConfig> {
        let span = raw.span();
        let raw = raw.into_inner();
        let listen = self.address("review.listen", raw.listen.as_ref(), DEFAULT_REVIEW_LISTEN);
        let public_url = match &raw.public_url {
            None => Some(None),
            Some(u) => match url::Url::parse(u.get_ref()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Some(Some(url)),
                _ => {
                    self.problem(
                        &u.span(),
                        format!(
                            "review.public_url: {:?} is not an http(s) address like \"https://review.example.com/\"",
                            u.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let min_score = self.score("review.min_score", raw.min_score.as_ref(), 0.4);
        let max_score = self.score("review.max_score", raw.max_score.as_ref(), 0.8);
        if let (Some(min), Some(max)) = (min_score, max_score)
            && min >= max
        {
            let at = raw.min_score.as_ref().map_or(span.clone(), |s| s.span());
            self.problem(
                &at,
                format!("review.min_score: {min} must be below max_score {max}"),
            );
        }
        let remove = match &raw.remove {
            None => Some(RemoveAction::Hide),
            Some(r) => match r.get_ref().as_str() {
                "hide" => Some(RemoveAction::Hide),
                "delete" => Some(RemoveAction::Delete),
                other => {
                    self.problem(
                        &r.span(),
                        format!("review.remove: {other:?} must be \"hide\" or \"delete\""),
                    );
                    None
                }
            },
        };
        let session_ttl = self.bounded_duration(
            "review.session_ttl",
            raw.session_ttl.as_ref(),
            Duration::from_secs(12 * 3600),
            (Duration::from_secs(60), Duration::from_secs(30 * 86_400)),
            "1m and 30days",
        );
        let users = self.reviewers(raw.users, &span);
        let base = self
            .path()
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf();
        let mut training_data = Vec::new();
        for file in &raw.training_data {
            let path = base.join(file.get_ref());
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => training_data.push(path),
                Ok(_) => self.problem(
                    &file.span(),
                    format!("review.training_data: {} is not a file", path.display()),
                ),
                Err(e) => self.problem(
                    &file.span(),
                    format!("review.training_data: cannot read {}: {e}", path.display()),
                ),
            }
        }
        Some(ReviewConfig {
            listen: listen?,
            public_url: public_url?,
            users: users?,
            min_score: min_score? as f32,
            max_score: max_score? as f32,
            remove: remove?,
            session_ttl: session_ttl?,
            training_data,
        })
    }

    fn score(&mut self, key: &str, value: Option<&Spanned<f64>>, default: f64) -> Option<f64> {
        let Some(v) = value else {
            return Some(default);
        };
        let s = *v.get_ref();
        if !(0.0..=1.0).contains(&s) {
            self.problem(&v.span(), format!("{key}: {s} must be between 0 and 1"));
            return None;
        }
        Some(s)
    }

    fn reviewers(
        &mut self,
        raw: Vec<Spanned<RawUser>>,
        section: &Range<usize>,
    ) -> Option<Vec<Reviewer>> {
        if raw.is_empty() {
            self.problem(
                section,
                "review.users: [review] needs at least one reviewer, like users = [{ name = \"ana\", password_env = \"IGMOD_REVIEW_ANA\" }]"
                    .to_string(),
            );
            return None;
        }
        let mut ok = true;
        let mut users: Vec<Reviewer> = Vec::new();
        for u in raw {
            let span = u.span();
            let u = u.into_inner();
            let name = u.name.get_ref().trim();
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
            {
                self.problem(
                    &u.name.span(),
                    format!(
                        "review.users.name: {:?} must be 1 to 64 letters, digits, '.', '_', '-' or '@'",
                        u.name.get_ref()
                    ),
                );
                ok = false;
                continue;
            }
            if users.iter().any(|r| r.name == name) {
                self.problem(
                    &u.name.span(),
                    format!("review.users.name: duplicate reviewer {name:?}"),
                );
                ok = false;
                continue;
            }
            let password = self.secret_source(
                "review.users.password_env",
                "review.users.password_file",
                u.password_env,
                u.password_file,
                &span,
                "review.users: each reviewer needs password_env or password_file",
            );
            // A short password falls to guessing despite the slow-down (one per 15 minutes
            // per address, from as many addresses as an attacker has). Checked when igmod can
            // read it now (not for a variable only in the service's environment file).
            let short = password.as_ref().and_then(|p| {
                if self.secrets == super::Secrets::NotNeeded {
                    return None;
                }
                let len = p.load().ok()?.expose_secret().chars().count();
                (len < MIN_PASSWORD_CHARS).then_some(len)
            });
            if let Some(len) = short {
                self.problem(
                    &span,
                    format!(
                        "review.users: {name:?}'s password ({}) is {len} characters; use at least {MIN_PASSWORD_CHARS}, e.g. from `openssl rand -base64 24`",
                        password.as_ref().map(TokenSource::describe).unwrap_or_default()
                    ),
                );
                // Kept, so a duplicate name after it is still reported.
                ok = false;
            }
            match password {
                Some(password) => users.push(Reviewer {
                    name: name.to_string(),
                    password,
                }),
                None => ok = false,
            }
        }
        ok.then_some(users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secrets, parse_with};

    const ACCOUNT: &str = "[daemon]\ndatabase = \"/tmp/igmod-review-never.db\"\n\n[[accounts]]\nname = \"acme\"\nig_user_id = \"1784\"\nlogin = \"instagram\"\ntoken_env = \"IGMOD_TEST_TOKEN\"\npoll_interval = \"2m\"\nhourly_budget = 200\n";

    fn review(section: &str) -> Result<Option<ReviewConfig>, String> {
        parse_with(
            std::path::Path::new("/etc/igmod/config.toml"),
            &format!("{section}\n\n{ACCOUNT}"),
            Secrets::NotNeeded,
        )
        .map(|c| c.review)
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_https() {
        assert_eq!(review(""), Ok(None));
        let r = review("[review]\nusers = [{ name = \"ana\", password_file = \"ana.pw\" }]")
            .unwrap()
            .unwrap();
        assert_eq!(r.listen.to_string(), DEFAULT_REVIEW_LISTEN);
        assert_eq!((r.min_score, r.max_score), (0.4, 0.8));
        assert_eq!(r.remove, RemoveAction::Hide);
        assert_eq!(r.session_ttl, Duration::from_secs(12 * 3600));
        assert!(!r.https());
        assert_eq!(r.users[0].name, "ana");
        assert!(
            matches!(&r.users[0].password, TokenSource::File(p) if p.ends_with("ana.pw")),
            "{:?}",
            r.users[0].password
        );
        let r = review(
            "[review]\npublic_url = \"https://review.example.com/\"\nremove = \"delete\"\nusers = [{ name = \"ana\", password_env = \"X\" }]",
        )
        .unwrap()
        .unwrap();
        assert!(r.https());
        assert_eq!(r.remove, RemoveAction::Delete);
        assert!(r.notes().is_empty());
        let r = review(
            "[review]\nlisten = \"0.0.0.0:8790\"\npublic_url = \"http://review.example.com/\"\nusers = [{ name = \"ana\", password_env = \"X\" }]",
        )
        .unwrap()
        .unwrap();
        let notes = r.notes();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].starts_with("review.listen 0.0.0.0:8790 is not loopback"));
    }

    #[test]
    fn short_passwords_are_refused_without_being_shown() {
        let var = "IGMOD_TEST_REVIEW_SHORT_PASSWORD";
        // SAFETY: this test alone uses this variable.
        unsafe { std::env::set_var(var, "hunter2") };
        let section = format!("[review]\nusers = [{{ name = \"ana\", password_env = \"{var}\" }}]");
        let load = |section: &str| {
            parse_with(
                std::path::Path::new("/etc/igmod/config.toml"),
                &format!("{section}\n\n{ACCOUNT}").replace("IGMOD_TEST_TOKEN", var),
                Secrets::Required,
            )
            .map(|c| c.review.is_some())
            .map_err(|e| e.to_string())
        };
        let e = load(&section).unwrap_err();
        assert!(
            e.contains("/etc/igmod/config.toml:2:10: review.users: \"ana\"'s password (env IGMOD_TEST_REVIEW_SHORT_PASSWORD) is 7 characters; use at least 12"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        unsafe { std::env::set_var(var, "correct horse battery") };
        assert_eq!(load(&section), Ok(true));
    }

    #[test]
    fn problems_name_file_line_and_key() {
        for (section, want) in [
            (
                "[review]\nusers = [{ name = \"a b\", password_env = \"X\" }]",
                "/etc/igmod/config.toml:2:19: review.users.name: \"a b\" must be",
            ),
            (
                "[review]\nmax_score = 1.5\nusers = [{ name = \"ana\", password_env = \"X\" }]",
                "/etc/igmod/config.toml:2:13: review.max_score: 1.5 must be between 0 and 1",
            ),
            (
                "[review]\nsession_ttl = \"5s\"\nusers = [{ name = \"ana\", password_env = \"X\" }]",
                "/etc/igmod/config.toml:2:15: review.session_ttl: must be between 1m and 30days",
            ),
            (
                "[review]\nusers = [{ name = \"ana\" }]",
                "/etc/igmod/config.toml:2:10: review.users: each reviewer needs password_env or password_file",
            ),
        ] {
            let e = review(section).unwrap_err();
            assert!(e.starts_with(want), "{e}\nwanted {want}");
        }
    }
}
