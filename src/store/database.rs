//! Where the database lives, as `daemon.database` says: a SQLite file, or a PostgreSQL server
//! that several instances share. The PostgreSQL password never sits in the URL (which is
//! printed in messages): it comes from `database_password_env` or `database_password_file`.

use std::path::PathBuf;
use std::str::FromStr;

use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;

use super::StoreError;
use crate::tokens::TokenSource;

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("{0:?} is not a PostgreSQL URL: {1}")]
    BadUrl(String, String),
    #[error("the URL holds a password: put it in database_password_env or database_password_file")]
    InlinePassword,
}

/// The database `daemon.database` names.
#[derive(Clone, PartialEq)]
pub enum Database {
    /// A SQLite file, created with mode 0600 if missing.
    Sqlite(PathBuf),
    /// `postgres://user@host[:port]/db[?sslmode=…]`, password kept apart.
    Postgres {
        url: String,
        password: Option<TokenSource>,
    },
}

impl Database {
    /// Reads `daemon.database`: a `postgres://` or `postgresql://` URL selects PostgreSQL;
    /// anything else is a SQLite path.
    pub fn parse(value: &str, password: Option<TokenSource>) -> Result<Database, DatabaseError> {
        let lower = value.to_ascii_lowercase();
        if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
            return Ok(Database::Sqlite(PathBuf::from(value)));
        }
        let authority = value
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
            .unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && userinfo.contains(':')
        {
            return Err(DatabaseError::InlinePassword);
        }
        // A URL the driver cannot read is refused now, not at the first connection.
        PgConnectOptions::from_str(value)
            .map_err(|e| DatabaseError::BadUrl(value.to_string(), e.to_string()))?;
        Ok(Database::Postgres {
            url: value.to_string(),
            password,
        })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Database::Postgres { .. })
    }

    /// Whether there is a database to read yet: a SQLite file may not have been created; a
    /// PostgreSQL server is asked when connecting.
    pub fn exists(&self) -> bool {
        match self {
            Database::Sqlite(path) => path.exists(),
            Database::Postgres { .. } => true,
        }
    }

    /// The driver's options, with the password read now (it may have been rotated).
    pub(super) fn pg_options(&self) -> Result<PgConnectOptions, StoreError> {
        let Database::Postgres { url, password } = self else {
            return Err(StoreError::NotPostgres);
        };
        let options = PgConnectOptions::from_str(url)
            .map_err(|source| StoreError::Connect {
                url: url.clone(),
                source,
            })?
            .application_name("igmod");
        match password {
            Some(source) => {
                let secret = source.load().map_err(StoreError::Password)?;
                Ok(options.password(secret.expose_secret()))
            }
            None => Ok(options),
        }
    }
}

/// The path or the URL; never the password (the URL cannot hold one).
impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres { url, .. } => f.write_str(url),
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres { url, password } => f
                .debug_struct("Postgres")
                .field("url", url)
                .field("password", &password.as_ref().map(TokenSource::describe))
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_selects_postgres_and_anything_else_is_a_sqlite_path() {
        for url in [
            "postgres://igmod@db.internal/igmod",
            "postgresql://igmod@127.0.0.1:5433/igmod?sslmode=require",
        ] {
            assert!(
                Database::parse(url, None).is_ok_and(|d| d.is_postgres()),
                "{url}"
            );
        }
        let db = Database::parse("/var/lib/igmod/igmod.db", None);
        assert!(
            matches!(db, Ok(Database::Sqlite(p)) if p == std::path::Path::new("/var/lib/igmod/igmod.db"))
        );
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_repeating_it() {
        let err = Database::parse("postgres://igmod:hunter2@db/igmod", None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("database_password_env"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
