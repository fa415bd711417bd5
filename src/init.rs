//! `igmod init`: a first config for one account, written so that it passes `check-config` once
//! the token is in place. The command line asks for what the flags did not give; this module
//! only builds, writes and checks the files.

use std::path::{Path, PathBuf};

use crate::config::{self, ConfigError, Secrets};

/// The starter rules, written beside a new config when none are there yet.
pub const STARTER_RULES: &str = include_str!("../rules/starter.toml");

/// Where the Debian package puts the shipped classifier model.
pub const PACKAGED_MODEL: &str = "/usr/share/igmod/models/scam.model";

/// What the operator told `igmod init`.
#[derive(Debug, Clone)]
pub struct Answers {
    /// The account's name in logs and audit rows.
    pub name: String,
    /// `instagram` or `facebook`.
    pub login: String,
    pub ig_user_id: String,
    pub token: TokenPlace,
    pub database: PathBuf,
    /// The classifier model file; `None` leaves the classifier rule out.
    pub model: Option<PathBuf>,
}

/// Where the account's token will be: never in the config itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenPlace {
    Env(String),
    File(String),
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already exists; igmod init does not overwrite it (use --force to replace it)")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The environment variable a token is read from by default: `IGMOD_TOKEN_<NAME>`.
pub fn default_token_env(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("IGMOD_TOKEN_{upper}")
}

/// The model to use when none is named: the packaged one, else the one in a source checkout.
pub fn default_model() -> Option<PathBuf> {
    let packaged = Path::new(PACKAGED_MODEL);
    if packaged.is_file() {
        return Some(packaged.to_path_buf());
    }
    std::path::absolute("models/scam.model")
        .ok()
        .filter(|p| p.is_file())
}

/// Checks the answers a config cannot hold as they are.
pub fn validate(a: &Answers) -> Result<(), InitError> {
    let bad = |what: &str| Err(InitError::Invalid(what.to_string()));
    if a.name.is_empty()
        || !a
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return bad("the account name must be letters, digits, '-' or '_'");
    }
    if a.login != "instagram" && a.login != "facebook" {
        return bad("the login must be \"instagram\" or \"facebook\"");
    }
    if a.ig_user_id.is_empty() || !a.ig_user_id.chars().all(|c| c.is_ascii_digit()) {
        return bad("the Instagram user id is a number, e.g. 17841400000000001");
    }
    let (TokenPlace::Env(s) | TokenPlace::File(s)) = &a.token;
    if s.is_empty() || s.contains('"') || s.contains('\n') {
        return bad("the token's place must be an environment variable name or a file path");
    }
    Ok(())
}

/// The config text for the answers.
pub fn config_text(a: &Answers) -> String {
    let token = match &a.token {
        TokenPlace::Env(var) => format!(
            "token_env = \"{var}\"                # the token is read from this environment variable\n"
        ),
        TokenPlace::File(path) => format!(
            "token_file = \"{path}\"   # the token is read from this file (mode 0600; a relative name is\n\
             #                          looked up in $CREDENTIALS_DIRECTORY, else beside this config)\n"
        ),
    };
    let (rules, model_rule) = match &a.model {
        Some(model) => (
            "[\"starter\", \"scam-model\", \"scam-model-other-languages\"]",
            format!(
                "\n# The shipped classifier: hides what it scores 0.85 or more, and comments in other languages\n\
                 # than English from 0.8 (cross-validated precision about 0.95 on English comments and\n\
                 # 0.97 on the others, with the starter rules). `igmod rules test --account {name} \"text\"`\n\
                 # shows scores.\n\
                 [[rules]]\n\
                 name = \"scam-model\"\n\
                 action = \"hide\"\n\
                 classifier = {{ model = \"{model}\", min_score = 0.85 }}\n\
                 \n\
                 [[rules]]\n\
                 name = \"scam-model-other-languages\"\n\
                 action = \"hide\"\n\
                 classifier = {{ model = \"{model}\", min_score = 0.8 }}\n\
                 not_languages = [\"en\"]\n",
                name = a.name,
                model = model.display()
            ),
        ),
        None => (
            "[\"starter\"]",
            "\n# No classifier model was found; add one with a [[rules]] table holding\n\
             # classifier = { model = \"/usr/share/igmod/models/scam.model\", min_score = 0.85 }\n"
                .to_string(),
        ),
    };
    format!(
        "# igmod configuration, written by `igmod init`. Every key is explained in\n\
         # config.toml.example (/usr/share/doc/igmod/ in the Debian package). Check it with\n\
         # `igmod check-config -c THIS_FILE`. Durations are written like \"90s\", \"2m\", \"14d\".\n\
         \n\
         # igmod's starter rules against common spam and scams, as the rule set \"starter\".\n\
         include = [\"rules/starter.toml\"]\n\
         \n\
         [daemon]\n\
         database = \"{database}\"   # created with mode 0600 if missing\n\
         dry_run = false                        # true: decide and record, never hide or delete\n\
         \n\
         [[accounts]]\n\
         name = \"{name}\"\n\
         ig_user_id = \"{id}\"\n\
         login = \"{login}\"                    # \"instagram\" or \"facebook\" (Facebook Login, a Page's account)\n\
         {token}\
         poll_interval = \"2m\"\n\
         hourly_budget = 200                    # Graph API calls per rolling hour, all kinds\n\
         recent_media = 20                      # how many newest posts to watch\n\
         backfill = false                       # comments already there at the first poll are recorded, not moderated\n\
         rules = {rules}\n\
         {model_rule}",
        database = a.database.display(),
        name = a.name,
        id = a.ig_user_id,
        login = a.login,
    )
}

/// Writes the config (and the starter rules beside it, when missing) and checks it as
/// `check-config` would, apart from the token, which may not be in place yet.
pub fn write(path: &Path, a: &Answers, force: bool) -> Result<config::Config, InitError> {
    validate(a)?;
    if path.exists() && !force {
        return Err(InitError::Exists(path.to_path_buf()));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let write = |p: &Path, text: &str| -> Result<(), InitError> {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|source| InitError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(p, text).map_err(|source| InitError::Write {
            path: p.to_path_buf(),
            source,
        })
    };
    let rules = dir.join("rules/starter.toml");
    if !rules.exists() {
        write(&rules, STARTER_RULES)?;
    }
    write(path, &config_text(a))?;
    Ok(config::load_with(path, Secrets::NotNeeded)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(dir: &Path) -> Answers {
        Answers {
            name: "acme".into(),
            login: "instagram".into(),
            ig_user_id: "17841400000000001".into(),
            token: TokenPlace::Env("IGMOD_TOKEN_ACME".into()),
            database: dir.join("igmod.db"),
            model: std::path::absolute("models/scam.model").ok(),
        }
    }

    #[test]
    fn a_written_config_loads_with_the_account_and_the_model_rule()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("config.toml");
        let c = write(&path, &answers(dir.path()), false)?;
        assert_eq!(c.accounts.len(), 1);
        assert_eq!(c.accounts[0].name, "acme");
        assert!(c.rules.names().any(|n| n == "scam-model"));
        assert!(dir.path().join("rules/starter.toml").is_file());
        // Never overwritten without --force.
        assert!(matches!(
            write(&path, &answers(dir.path()), false),
            Err(InitError::Exists(_))
        ));
        write(&path, &answers(dir.path()), true)?;
        Ok(())
    }

    #[test]
    fn bad_answers_are_refused_before_anything_is_written() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("config.toml");
        for bad in [
            Answers {
                ig_user_id: "acme".into(),
                ..answers(dir.path())
            },
            Answers {
                login: "tiktok".into(),
                ..answers(dir.path())
            },
            Answers {
                name: "a b".into(),
                ..answers(dir.path())
            },
            Answers {
                token: TokenPlace::File("x\"y".into()),
                ..answers(dir.path())
            },
        ] {
            assert!(matches!(
                write(&path, &bad, false),
                Err(InitError::Invalid(_))
            ));
        }
        assert!(!path.exists());
        Ok(())
    }

    #[test]
    fn the_default_token_variable_is_named_after_the_account() {
        assert_eq!(default_token_env("acme-shop"), "IGMOD_TOKEN_ACME_SHOP");
    }
}
