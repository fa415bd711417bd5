//! Where an account's access token comes from, and how its health is recorded.
//!
//! Tokens are [`SecretString`] from the moment they are read: their `Debug` prints
//! `[REDACTED]`, and the only code that exposes them is the `Authorization` header in `graph`.
//! Error messages here name the variable or the file, never the value.

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
