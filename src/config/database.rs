//! Where the database lives, as `daemon.database` says: a SQLite file, or a PostgreSQL server
//! that several instances share. Connecting is [`crate::store`]'s; this is the setting and its
//! checks.
//!
//! A PostgreSQL URL is read here, once, with the `url` crate, and checked before the driver
//! sees it: no password in it (user info, `password`, `passfile`: the password comes from
//! `database_password_env` or `database_password_file`), no parameter igmod does not know (the
//! driver would log an unknown one with its value). What is shown anywhere (messages, logs,
//! `check-config`, `Debug`) is only scheme, host, port and database, never the user info or
//! the query. TLS follows libpq's `sslmode`, except that a host that is not loopback gets
//! `verify-full` when the URL names no mode (libpq and sqlx would say `prefer`, which a man in
//! the middle turns into plaintext and a cleartext password prompt).

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::secrets::TokenSource;

/// The URL parameters igmod passes to the driver (libpq's names).
const KNOWN_PARAMETERS: [&str; 9] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
];

/// What is wrong with a PostgreSQL URL. No variant holds the URL or any value from it, since
/// a mistyped URL may still carry a password.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("not a PostgreSQL URL: {0}")]
    BadUrl(String),
    #[error(
        "the URL's {0} holds a password: put it in database_password_env or database_password_file"
    )]
    InlinePassword(&'static str),
    #[error(
        "the URL's `passfile` parameter names a password file: use database_password_file instead"
    )]
    PassFile,
    #[error("the URL's parameter {0:?} is not one igmod reads (it reads {known})", known = KNOWN_PARAMETERS.join(", "))]
    UnknownParameter(String),
    #[error("the URL gives the parameter {0:?} twice")]
    RepeatedParameter(String),
    #[error("sslmode must be disable, allow, prefer, require, verify-ca or verify-full")]
    BadSslMode,
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    pub(crate) fn driver(self) -> PgSslMode {
        match self {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Allow => PgSslMode::Allow,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        }
    }
}

impl FromStr for SslMode {
    type Err = DatabaseError;

    fn from_str(s: &str) -> Result<SslMode, DatabaseError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return Err(DatabaseError::BadSslMode),
        })
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TLS mode a PostgreSQL connection uses, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tls {
    pub mode: SslMode,
    /// The URL said `sslmode`; otherwise igmod chose from where the server is.
    pub explicit: bool,
    /// The server is on this machine: a loopback address, `localhost` or a Unix socket.
    pub local: bool,
}

impl Tls {
    /// Why a connection to a server elsewhere is weaker than `verify-full`, or `None`.
    pub fn warning(&self) -> Option<String> {
        if self.local {
            return None;
        }
        let what = match self.mode {
            SslMode::Disable => {
                "the connection is plaintext: the password, tokens and comments cross the network readable"
            }
            SslMode::Allow | SslMode::Prefer => {
                "a man in the middle can make the connection plaintext and read the password, tokens and comments"
            }
            SslMode::Require => {
                "the connection is encrypted but the server's certificate is not checked: a man in the middle can read it"
            }
            SslMode::VerifyCa | SslMode::VerifyFull => return None,
        };
        Some(format!(
            "daemon.database: sslmode={} to a server that is not on this machine: {what}; use sslmode=verify-full (with sslrootcert for a private CA)",
            self.mode
        ))
    }
}

/// "verify-full: host is not loopback and the URL sets no sslmode".
impl std::fmt::Display for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match (self.explicit, self.local) {
            (true, _) => "the URL sets it",
            (false, false) => "host is not loopback and the URL sets no sslmode",
            (false, true) => "host is loopback or a Unix socket and the URL sets no sslmode",
        };
        write!(f, "{}: {why}", self.mode)
    }
}

/// The database `daemon.database` names.
#[derive(Clone, PartialEq)]
pub enum Database {
    /// A SQLite file, created with mode 0600 if missing.
    Sqlite(PathBuf),
    /// `postgres://user@host[:port]/db[?sslmode=…]`, password kept apart.
    Postgres {
        /// The checked URL, without `sslmode` (in `tls`) and with no password in it.
        url: String,
        password: Option<TokenSource>,
        tls: Tls,
        /// What messages show: `postgres://host:port/db`.
        shown: String,
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
        check_user_info(value)?;
        let mut url = url::Url::parse(value).map_err(|e| DatabaseError::BadUrl(e.to_string()))?;
        if url.password().is_some() {
            return Err(DatabaseError::InlinePassword("user info"));
        }
        if url.fragment().is_some() {
            return Err(DatabaseError::BadUrl("it has a #fragment".into()));
        }
        let mut seen: Vec<String> = Vec::new();
        let mut kept: Vec<(String, String)> = Vec::new();
        let mut mode = None;
        for (key, v) in url.query_pairs() {
            match &*key {
                "password" => return Err(DatabaseError::InlinePassword("`password` parameter")),
                "passfile" => return Err(DatabaseError::PassFile),
                k if !KNOWN_PARAMETERS.contains(&k) => {
                    return Err(DatabaseError::UnknownParameter(
                        k.chars().take(40).collect(),
                    ));
                }
                k if seen.iter().any(|s| s == k) => {
                    return Err(DatabaseError::RepeatedParameter(k.to_string()));
                }
                _ => {}
            }
            seen.push(key.to_string());
            match &*key {
                "sslmode" => mode = Some(v.parse::<SslMode>()?),
                // libpq's "the system's roots": here the Mozilla roots compiled in, which the
                // driver trusts anyway; it would read "system" as a file name.
                "sslrootcert" if v == "system" => {}
                _ => kept.push((key.into_owned(), v.into_owned())),
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        // What the driver makes of it (environment defaults such as PGHOST included), so that
        // "local" is decided on where it will really connect.
        let options = PgConnectOptions::from_str(url.as_str())
            .map_err(|e| DatabaseError::BadUrl(e.to_string()))?;
        let local = match options.get_socket() {
            Some(_) => true,
            None => is_local_host(options.get_host()),
        };
        let tls = Tls {
            mode: mode.unwrap_or(if local {
                SslMode::Prefer
            } else {
                SslMode::VerifyFull
            }),
            explicit: mode.is_some(),
            local,
        };
        Ok(Database::Postgres {
            shown: shown(url.scheme(), &options),
            url: url.into(),
            password,
            tls,
        })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Database::Postgres { .. })
    }

    /// Files holding a secret of the connection: the password file and the client
    /// certificate's key (`sslkey`), for the check that others cannot read them.
    pub fn secret_files(&self) -> Vec<PathBuf> {
        let Database::Postgres { url, password, .. } = self else {
            return Vec::new();
        };
        let key = url::Url::parse(url).ok().and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "sslkey")
                .map(|(_, v)| PathBuf::from(v.into_owned()))
        });
        let file = match password {
            Some(TokenSource::File(path)) => Some(path.clone()),
            _ => None,
        };
        file.into_iter().chain(key).collect()
    }

    /// The TLS mode of a PostgreSQL database (`None` for SQLite).
    pub fn tls(&self) -> Option<Tls> {
        match self {
            Database::Sqlite(_) => None,
            Database::Postgres { tls, .. } => Some(*tls),
        }
    }

    /// Whether there is a database to read yet: a SQLite file may not have been created; a
    /// PostgreSQL server is asked when connecting.
    pub fn exists(&self) -> bool {
        match self {
            Database::Sqlite(path) => path.exists(),
            Database::Postgres { .. } => true,
        }
    }
}

/// Refuses a password in the user info before any parser splits the URL: `user:pa/ss@host`
/// would otherwise read as host `user`, port `pa`, and `user:12#x@host` as a fragment, with
/// the password spread over parts that are shown. Only one literal `@` may appear, ending the
/// user name; a `:` before it is a password.
fn check_user_info(value: &str) -> Result<(), DatabaseError> {
    let rest = value.split_once("://").map_or(value, |(_, rest)| rest);
    let mut ats = rest.match_indices('@');
    let Some((at, _)) = ats.next() else {
        return Ok(());
    };
    let user_info = rest.get(..at).unwrap_or(rest);
    if user_info.contains(':') {
        return Err(DatabaseError::InlinePassword(
            "user info (a ':' before its '@'; an @ elsewhere is written %40)",
        ));
    }
    if ats.next().is_some() || user_info.contains(['/', '?', '#']) {
        return Err(DatabaseError::BadUrl(
            "an @ may only end the user name: write any other @ as %40".into(),
        ));
    }
    Ok(())
}

/// A loopback address, `localhost`, or a Unix socket directory (the driver's default host
/// can be one).
fn is_local_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.starts_with('/')
        || bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `postgres://host:port/db`, the socket directory percent-encoded as libpq writes it.
fn shown(scheme: &str, options: &PgConnectOptions) -> String {
    let host = match options.get_socket() {
        Some(dir) => dir.display().to_string(),
        None => options.get_host().to_string(),
    };
    let host = if host.starts_with('/') {
        url::form_urlencoded::byte_serialize(host.as_bytes()).collect()
    } else {
        host
    };
    format!(
        "{scheme}://{host}:{}/{}",
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

/// The path, or where the server is; never the user info or the query (nor the password,
/// which the URL cannot hold).
impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres { shown, .. } => f.write_str(shown),
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres {
                shown,
                password,
                tls,
                ..
            } => f
                .debug_struct("Postgres")
                .field("url", shown)
                .field("password", &password.as_ref().map(TokenSource::describe))
                .field("tls", tls)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(url: &str) -> Option<Tls> {
        Database::parse(url, None).ok().and_then(|d| d.tls())
    }

    fn refusal(url: &str) -> String {
        match Database::parse(url, None) {
            Ok(db) => panic!("{url} was accepted as {db:?}"),
            Err(e) => e.to_string(),
        }
    }

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
    fn a_host_elsewhere_without_sslmode_gets_verify_full_and_a_local_one_prefer() {
        let full = |explicit, local| {
            Some(Tls {
                mode: SslMode::VerifyFull,
                explicit,
                local,
            })
        };
        let prefer_local = Some(Tls {
            mode: SslMode::Prefer,
            explicit: false,
            local: true,
        });
        for (url, expected) in [
            ("postgres://igmod@db.internal/igmod", full(false, false)),
            ("postgres://igmod@10.0.0.5:5432/igmod", full(false, false)),
            ("postgres://igmod@[2001:db8::1]/igmod", full(false, false)),
            // Looks local, is not.
            (
                "postgres://igmod@127.0.0.1.example.com/igmod",
                full(false, false),
            ),
            (
                "postgres://igmod@localhost.evil.example/igmod",
                full(false, false),
            ),
            // A host parameter overrides the URL's host.
            (
                "postgres://igmod@127.0.0.1/igmod?host=db.internal",
                full(false, false),
            ),
            ("postgres://igmod@127.0.0.1:5433/igmod", prefer_local),
            ("postgres://igmod@127.8.0.1/igmod", prefer_local),
            ("postgres://igmod@localhost/igmod", prefer_local),
            ("postgres://igmod@[::1]:5432/igmod", prefer_local),
            (
                "postgres://igmod@[::ffff:127.0.0.1]:5432/igmod",
                prefer_local,
            ),
            // Linux connects 0.0.0.0 to this machine, but nobody means it as "local".
            ("postgres://igmod@0.0.0.0/igmod", full(false, false)),
            ("postgres://igmod@%2Frun%2Fpostgresql/igmod", prefer_local),
            ("postgres:///igmod?host=/run/postgresql", prefer_local),
            (
                "postgres://igmod@127.0.0.1/igmod?sslmode=verify-full",
                full(true, true),
            ),
            (
                "postgres://igmod@db.internal/igmod?sslmode=disable",
                Some(Tls {
                    mode: SslMode::Disable,
                    explicit: true,
                    local: false,
                }),
            ),
        ] {
            assert_eq!(tls(url), expected, "{url}");
        }
    }

    #[test]
    fn check_config_says_which_sslmode_applies_and_why() {
        let shown = |url: &str| tls(url).map(|t| t.to_string()).unwrap_or_default();
        assert_eq!(
            shown("postgres://igmod@db.internal/igmod"),
            "verify-full: host is not loopback and the URL sets no sslmode"
        );
        assert_eq!(
            shown("postgres://igmod@127.0.0.1/igmod"),
            "prefer: host is loopback or a Unix socket and the URL sets no sslmode"
        );
        assert_eq!(
            shown("postgres://igmod@db.internal/igmod?sslmode=require"),
            "require: the URL sets it"
        );
    }

    #[test]
    fn only_a_weak_sslmode_to_a_host_elsewhere_is_warned() {
        let warning = |url: &str| tls(url).and_then(|t| t.warning());
        let disable = warning("postgres://igmod@db.internal/igmod?sslmode=disable");
        assert!(
            disable
                .as_deref()
                .is_some_and(|w| w.contains("sslmode=disable") && w.contains("plaintext")),
            "{disable:?}"
        );
        for url in [
            "postgres://igmod@db.internal/igmod?sslmode=prefer",
            "postgres://igmod@db.internal/igmod?sslmode=allow",
            "postgres://igmod@db.internal/igmod?sslmode=require",
        ] {
            assert!(warning(url).is_some(), "{url}");
        }
        for url in [
            "postgres://igmod@db.internal/igmod",
            "postgres://igmod@db.internal/igmod?sslmode=verify-ca",
            "postgres://igmod@127.0.0.1/igmod?sslmode=disable",
        ] {
            assert_eq!(warning(url), None, "{url}");
        }
    }

    #[test]
    fn a_password_in_the_url_is_refused_naming_the_key_without_the_value() {
        for (url, key) in [
            ("postgres://igmod:hunter2@db/igmod", "user info"),
            ("postgres://igmod:hun/ter2@db/igmod", "user info"),
            ("postgres://igmod:12/hunter2@db/igmod", "user info"),
            ("postgres://igmod:12?hunter2@db/igmod", "user info"),
            ("postgres://igmod:12#hunter2@db/igmod", "user info"),
            ("postgres://igmod:hun%2Fter2@db/igmod", "user info"),
            ("postgres://igmod:hun%40ter2@db/igmod", "user info"),
            ("postgres://igmod:hun@ter2@db/igmod", "user info"),
            ("postgres://igmod:@db/igmod", "user info"),
            ("postgres://igmod@db/igmod?password=hunter2", "`password`"),
            (
                "postgres://igmod@db/igmod?sslmode=require&pass%77ord=hunter2",
                "`password`",
            ),
            (
                "postgres://igmod@db/igmod?passfile=/home/hunter2",
                "`passfile`",
            ),
        ] {
            let err = refusal(url);
            assert!(err.contains(key), "{url}: {err}");
            assert!(
                !err.contains("hunter2") && !err.contains("ter2"),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn other_bad_urls_are_refused_without_repeating_them() {
        for (url, says) in [
            (
                "postgres://igmod@db/igmod?sslmode=verify_full",
                "sslmode must be",
            ),
            (
                "postgres://igmod@db/igmod?hunter2=1",
                "is not one igmod reads",
            ),
            (
                "postgres://igmod@db/igmod?sslmode=disable&sslmode=verify-full",
                "twice",
            ),
            ("postgres://ig/hunter2@db/igmod", "%40"),
            ("postgres://db/igmod?sslrootcert=/etc/a@hunter2", "%40"),
            ("postgres://igmod@db:99999/igmod", "not a PostgreSQL URL"),
        ] {
            let err = refusal(url);
            assert!(err.contains(says), "{url}: {err}");
            assert!(
                !err.contains("hunter2=") && !err.contains("@db"),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn a_shown_url_has_no_user_info_and_no_query() {
        let db = Database::parse(
            "postgres://igmod-user@db.internal:5433/igmod?sslmode=verify-full&sslrootcert=/etc/igmod/ca.pem",
            None,
        )
        .expect("url");
        assert_eq!(db.to_string(), "postgres://db.internal:5433/igmod");
        let debug = format!("{db:?}");
        assert!(
            !debug.contains("igmod-user") && !debug.contains("ca.pem"),
            "{debug}"
        );
        let socket =
            Database::parse("postgresql://igmod@%2Frun%2Fpostgresql/igmod", None).expect("url");
        assert_eq!(
            socket.to_string(),
            "postgresql://%2Frun%2Fpostgresql:5432/igmod"
        );
    }

    #[test]
    fn the_password_file_and_the_client_key_are_secret_files() {
        let db = Database::parse(
            "postgres://igmod@db.internal/igmod?sslcert=/etc/igmod/client.crt&sslkey=%2Fetc%2Figmod%2Fclient.key",
            Some(TokenSource::File(PathBuf::from("/etc/igmod/db-password"))),
        )
        .expect("url");
        assert_eq!(
            db.secret_files(),
            vec![
                PathBuf::from("/etc/igmod/db-password"),
                PathBuf::from("/etc/igmod/client.key")
            ]
        );
        let db = Database::parse(
            "postgres://igmod@db.internal/igmod",
            Some(TokenSource::Env("IGMOD_DATABASE_PASSWORD".into())),
        )
        .expect("url");
        assert!(db.secret_files().is_empty());
    }

    #[test]
    fn sslrootcert_reaches_the_driver_and_system_means_the_built_in_roots() {
        let db = Database::parse(
            "postgres://igmod@db.internal/igmod?sslrootcert=system&sslmode=verify-full",
            None,
        )
        .expect("url");
        assert!(
            matches!(&db, Database::Postgres { url, .. } if !url.contains("sslrootcert") && !url.contains("sslmode")),
            "{db:?}"
        );
        let db = Database::parse(
            "postgres://igmod@db.internal/igmod?sslrootcert=%2Fetc%2Figmod%2Fca.pem",
            None,
        )
        .expect("url");
        assert!(
            matches!(&db, Database::Postgres { url, .. } if url.contains("sslrootcert=%2Fetc%2Figmod%2Fca.pem")),
            "{db:?}"
        );
    }
}
