//! Where a secret comes from: an environment variable, a file (in `$CREDENTIALS_DIRECTORY`
//! under systemd, else beside config.toml), the service's environment file.
//!
//! Below config and store, which both name secrets (tokens, the app secret, the database
//! password) without knowing what they are for; [`crate::tokens`] keeps validation and
//! refresh. Secrets are [`SecretString`] from the first byte read; errors name the variable or
//! the file, never the value.

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

/// Why a token could not be read. All but [`TokenError::Transient`] need a person (and stop
/// the account, saying what); a transient one is tried again and never taken for a dead token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("environment variable {0} is not set or empty")]
    EnvMissing(String),
    /// Missing, not readable by igmod's user, a directory, not text: a person must fix it.
    #[error("cannot read token file {path}: {source}{}", fix(source))]
    FileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file could not be read for a passing reason (out of descriptors, an I/O error,
    /// interrupted, out of memory): tried again, never a verdict on the token.
    #[error("token file {path} cannot be read for now ({source}); it is tried again")]
    Transient {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {0} is empty")]
    FileEmpty(PathBuf),
}

impl TokenError {
    /// A passing failure: try again later, do not stop the account.
    pub fn is_transient(&self) -> bool {
        matches!(self, TokenError::Transient { .. })
    }
}

/// What a person should do about a token file that cannot be read.
fn fix(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => "; put the token there or correct token_file",
        std::io::ErrorKind::PermissionDenied => {
            "; make it readable by the user igmod runs as (under systemd: LoadCredential=)"
        }
        _ => "",
    }
}

/// Whether a failed read says nothing about the file: the process or the system is short of
/// something (descriptors, memory, buffers), the disk or network file system failed this once,
/// or a signal interrupted it. Decided on the OS error number, never on the message.
pub fn is_transient_io(e: &std::io::Error) -> bool {
    if let Some(code) = e.raw_os_error() {
        return matches!(
            code,
            libc::EMFILE
                | libc::ENFILE
                | libc::EIO
                | libc::EINTR
                | libc::EAGAIN
                | libc::ENOMEM
                | libc::ENOBUFS
                | libc::ETIMEDOUT
                | libc::EBUSY
                | libc::ESTALE
                | libc::ENOLCK
        );
    }
    matches!(
        e.kind(),
        std::io::ErrorKind::Interrupted
            | std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::OutOfMemory
    )
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
    read_token_with(path, |p| std::fs::read_to_string(p))
}

/// [`read_token_file`] with the read given (tests inject failures the system gives rarely).
pub fn read_token_with(
    path: &Path,
    read: impl FnOnce(&Path) -> std::io::Result<String>,
) -> Result<SecretString, TokenError> {
    let text = read(path).map_err(|source| {
        let path = path.to_path_buf();
        if is_transient_io(&source) {
            TokenError::Transient { path, source }
        } else {
            TokenError::FileUnreadable { path, source }
        }
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::FileEmpty(path.to_path_buf()));
    }
    Ok(SecretString::from(token.to_string()))
}

/// The systemd environment file the service's tokens come from: `IGMOD_ENV_FILE` (the unit
/// sets it next to `EnvironmentFile=`), else `igmod.env` beside the config.
pub fn service_env_file(config_path: &Path) -> PathBuf {
    match std::env::var_os("IGMOD_ENV_FILE") {
        Some(f) => PathBuf::from(f),
        None => config_path
            .parent()
            .unwrap_or(Path::new("."))
            .join("igmod.env"),
    }
}

/// Whether an environment file (systemd's `EnvironmentFile=` syntax: `KEY=VALUE` lines, `#`
/// and `;` comments, optional quotes) gives `var` a non-empty value. The value itself is never
/// returned: `check-config` only needs to know that the service will have it.
pub fn env_file_defines(file: &Path, var: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else {
        return false;
    };
    text.lines().any(|line| {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        match line.split_once('=') {
            Some((key, value)) if !line.starts_with(['#', ';']) && key.trim() == var => {
                !value.trim().trim_matches(['"', '\'']).trim().is_empty()
            }
            _ => false,
        }
    })
}

/// A fingerprint of an operator-supplied token: a truncated SHA-256, never the token.
pub fn source_hash(token: &SecretString) -> String {
    use secrecy::ExposeSecret;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.expose_secret().as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
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
    fn passing_read_errors_are_transient_and_what_a_person_must_fix_is_not() {
        use std::io::{Error, ErrorKind};
        let os = Error::from_raw_os_error;
        let path = Path::new("/etc/igmod/acme.token");
        let cases: [(Error, bool); 12] = [
            (os(libc::EMFILE), true),
            (os(libc::ENFILE), true),
            (os(libc::EIO), true),
            (os(libc::EINTR), true),
            (os(libc::EAGAIN), true),
            (os(libc::ENOMEM), true),
            (os(libc::ETIMEDOUT), true),
            (Error::from(ErrorKind::Interrupted), true),
            (os(libc::ENOENT), false),
            (os(libc::EACCES), false),
            (os(libc::EISDIR), false),
            (Error::from(ErrorKind::InvalidData), false),
        ];
        for (error, transient) in cases {
            let shown = error.to_string();
            let e = read_token_with(path, |_| Err(error)).err();
            assert_eq!(
                e.as_ref().map(TokenError::is_transient),
                Some(transient),
                "{shown}"
            );
        }
        // A person is told what to do.
        let e = read_token_with(path, |_| Err(os(libc::EACCES))).err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("make it readable by the user igmod runs as"),
            "{text}"
        );
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

    #[test]
    fn an_environment_file_defines_a_variable_only_with_a_value() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("igmod.env");
        std::fs::write(
            &file,
            "# tokens\n; IGMOD_TOKEN_C=commented\nIGMOD_TOKEN_A=\"EAAB\"\nexport IGMOD_TOKEN_B = x\nIGMOD_TOKEN_E=\n",
        )?;
        assert!(env_file_defines(&file, "IGMOD_TOKEN_A"));
        assert!(env_file_defines(&file, "IGMOD_TOKEN_B"));
        assert!(!env_file_defines(&file, "IGMOD_TOKEN_C"));
        assert!(!env_file_defines(&file, "IGMOD_TOKEN_E"));
        assert!(!env_file_defines(&file, "IGMOD_TOKEN"));
        assert!(!env_file_defines(
            &dir.path().join("missing.env"),
            "IGMOD_TOKEN_A"
        ));
        Ok(())
    }
}
