//! Where an account's access token comes from, which token to use, and keeping it alive.
//!
//! Tokens are [`SecretString`] from the moment they are read: their `Debug` prints
//! `[REDACTED]`. They are exposed in three places only: the `Authorization` header in `graph`,
//! the hash of an operator-supplied token (to notice a new one), and storing a refreshed token
//! in the `tokens` table. Error messages here name the variable or the file, never the value.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

/// Where the operator put a token. Never inline in config.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable (e.g. from systemd `EnvironmentFile=`).
    Env(String),
    /// A file; a relative path was resolved in `$CREDENTIALS_DIRECTORY` (systemd
    /// `LoadCredential=`) or else next to config.toml.
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("environment variable {0} is not set or empty")]
    EnvMissing(String),
    #[error("cannot read token file {path}: {source}")]
    FileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {0} is empty")]
    FileEmpty(PathBuf),
}

impl TokenSource {
    /// Reads the token now (sources can change between reads: a new file, a new env).
    pub fn load(&self) -> Result<SecretString, TokenError> {
        match self {
            TokenSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(SecretString::from(v.trim().to_string())),
                _ => Err(TokenError::EnvMissing(var.clone())),
            },
            TokenSource::File(path) => read_token_file(path),
        }
    }

    /// A description safe to print: where the token lives, never what it is.
    pub fn describe(&self) -> String {
        match self {
            TokenSource::Env(var) => format!("env {var}"),
            TokenSource::File(path) => format!("file {}", path.display()),
        }
    }
}

/// Resolves a `token_file` value: absolute as is; relative in `$CREDENTIALS_DIRECTORY` when
/// systemd set it, else beside the config file.
pub fn resolve_token_path(config_path: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        return Path::new(&dir).join(p);
    }
    config_path
        .parent()
        .map_or_else(|| p.to_path_buf(), |d| d.join(p))
}

/// Reads a token file, trimming the trailing newline editors add.
pub fn read_token_file(path: &Path) -> Result<SecretString, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::FileUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::FileEmpty(path.to_path_buf()));
    }
    Ok(SecretString::from(token.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn file_tokens_are_trimmed_and_errors_name_the_file_not_the_value() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let Ok(dir) = dir else { return };
        let path = dir.path().join("tok");
        std::fs::write(&path, "SECRET-TOKEN-VALUE\n").ok();
        let token = read_token_file(&path).map(|t| t.expose_secret().to_string());
        assert_eq!(token.ok().as_deref(), Some("SECRET-TOKEN-VALUE"));
        assert_eq!(
            format!("{:?}", read_token_file(&path).ok()),
            "Some(SecretBox<str>([REDACTED]))"
        );

        std::fs::write(&path, "  \n").ok();
        let err = read_token_file(&path).err().map(|e| e.to_string());
        assert_eq!(err, Some(format!("token file {} is empty", path.display())));
    }

    #[test]
    fn relative_token_files_resolve_beside_the_config() {
        if std::env::var_os("CREDENTIALS_DIRECTORY").is_some() {
            return;
        }
        assert_eq!(
            resolve_token_path(Path::new("/etc/igmod/config.toml"), "acme.token"),
            PathBuf::from("/etc/igmod/acme.token")
        );
        assert_eq!(
            resolve_token_path(Path::new("/etc/igmod/config.toml"), "/run/x"),
            PathBuf::from("/run/x")
        );
    }
}

/// Errors choosing the token to use.
#[derive(Debug, thiserror::Error)]
pub enum CurrentError {
    #[error(transparent)]
    Source(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A fingerprint of an operator-supplied token: a truncated SHA-256, never the token.
pub fn source_hash(token: &SecretString) -> String {
    use secrecy::ExposeSecret;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.expose_secret().as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The token to use now: the one igmod refreshed, unless the operator has since put a
/// different token into the env/file (that one wins, and its expiry is unknown again).
pub async fn current(
    store: &crate::store::Store,
    account: &crate::config::AccountConfig,
) -> Result<SecretString, CurrentError> {
    let supplied = account.token.load()?;
    let hash = source_hash(&supplied);
    let record = store.token_record(&account.name).await?;
    if record.source_hash.as_deref() != Some(hash.as_str()) {
        if record.source_hash.is_some() {
            tracing::info!(message = "a new token was supplied by the operator: using it");
        }
        store.set_token_source(&account.name, &hash).await?;
        return Ok(supplied);
    }
    Ok(record.token.map_or(supplied, SecretString::from))
}

/// What [`maybe_refresh`] did.
#[derive(Debug)]
pub enum Refresh {
    /// A new token, persisted, valid for this many days.
    Refreshed(SecretString, i64),
    /// Not due (or not an Instagram Login token, or the call had to wait for budget or a pause).
    NotDue,
    /// Meta refused; tried again in 24 h.
    Refused(String),
}

/// Instagram Login: refreshes the token when its expiry is unknown or less than
/// `refresh_before` away (or now, with `force`), persisting the new one and its expiry before
/// anyone uses it. A refused refresh (a token younger than 24 h, a transient failure) is
/// retried a day later, never in a loop. Logs louder as the end nears.
pub async fn maybe_refresh(
    store: &crate::store::Store,
    budget: &crate::budget::Budget,
    client: &crate::graph::Client,
    account: &crate::config::AccountConfig,
    token: &SecretString,
    force: bool,
) -> Result<Refresh, crate::store::StoreError> {
    use chrono::Utc;
    if account.login != crate::config::Login::Instagram {
        return Ok(Refresh::NotDue);
    }
    let now = Utc::now();
    let record = store.token_record(&account.name).await?;
    let parse = |s: &Option<String>| s.as_deref().and_then(crate::timefmt::parse);
    if !force && parse(&record.next_check_at).is_some_and(|t| t > now) {
        return Ok(Refresh::NotDue);
    }
    let expires = parse(&record.expires_at);
    let before =
        chrono::Duration::from_std(account.refresh_before).unwrap_or(chrono::Duration::days(10));
    let day = chrono::Duration::days(1);
    if let Some(e) = expires {
        let days_left = (e - now).num_hours() as f64 / 24.0;
        if days_left < 3.0 {
            tracing::error!(
                message = "access token expires in under 3 days; put a new long-lived token in its source and reload",
                days_left, token_source = %account.token.describe()
            );
        } else if days_left < 14.0 {
            tracing::warn!(message = "access token expires in under 14 days", days_left);
        }
        if !force && e - now > before {
            // Look again when the refresh window opens (or tomorrow, for the log).
            store
                .set_token_check(&account.name, (e - before).min(now + day), None)
                .await?;
            return Ok(Refresh::NotDue);
        }
    }
    let refreshed = budget
        .call(crate::budget::CallKind::Write, || {
            client.refresh_instagram_token(token)
        })
        .await;
    match refreshed {
        Ok(reply) => {
            let (new, expires_in) = reply.value;
            let secs = i64::try_from(expires_in).unwrap_or(i64::MAX / 2);
            let expires_at = now + chrono::Duration::seconds(secs);
            {
                use secrecy::ExposeSecret;
                store
                    .store_refreshed_token(&account.name, new.expose_secret(), expires_at)
                    .await?;
            }
            tracing::info!(
                message = "access token refreshed",
                days_left = secs / 86_400
            );
            Ok(Refresh::Refreshed(new, secs / 86_400))
        }
        // Our own gate said no (budget spent, account paused): try again at the next poll.
        Err(
            crate::budget::CallError::Exhausted { .. } | crate::budget::CallError::Paused { .. },
        ) => Ok(Refresh::NotDue),
        Err(e) => {
            // Meta refuses tokens under 24 h old; the expiry is then at most 60 days away.
            tracing::warn!(message = "token refresh refused; trying again in 24 h", error = %e);
            store
                .set_token_check(
                    &account.name,
                    now + day,
                    Some(now + chrono::Duration::days(60)),
                )
                .await?;
            Ok(Refresh::Refused(e.to_string()))
        }
    }
}
