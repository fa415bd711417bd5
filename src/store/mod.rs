//! All SQL lives here. The database is the source of truth for what igmod saw, decided and
//! did, and for every piece of scheduling state (due times, per-media progress, the call
//! ledger, pauses, token health), so a restart loses nothing.
//!
//! Two backends, chosen by `daemon.database`: a SQLite file (the default) or a PostgreSQL
//! server shared by several instances. Only this module knows which: each query is written
//! once, with `$N` placeholders (both take them) and SQL both accept, and [`with_pool!`]
//! type-checks it against each backend's pool. SQLite keeps its native driver (no `Any`
//! layer on the hot path); the few dialect differences ask [`Backend::is_postgres`].
//!
//! SQLite write transactions start with `BEGIN IMMEDIATE`: a plain `BEGIN` upgrades to a
//! write lock late and can fail with "database is locked" without waiting for the busy
//! timeout.

/// Runs `body`, a whole async function body, with `pool` bound to the backend's own pool.
/// The body is expanded once per backend, so one SQL text is type-checked against both
/// drivers. The PostgreSQL expansion runs in a boxed future: inline, its larger states would
/// grow every caller's future, and an account's task holds some of those while it waits
/// (10,000 waiting accounts).
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:block) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => Box::pin(async move { $body }).await,
        }
    };
}

/// [`with_pool!`] for a test's statements in the middle of a test (no boxing).
#[cfg(test)]
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:block) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}

mod alerts;
mod comments;
mod connect;
mod labels;
mod leases;
mod ledger;
mod raid;
mod report;
mod review;
mod state;
mod summary;
mod webhooks;

use crate::config::database::Database;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use alerts::AlertState;
pub use comments::{
    ActedComment, Disposition, NewComment, NewDecision, PendingAction, StoredComment, UndoCandidate,
};
pub use labels::{Label, LabelSource, LabeledComment};
pub use leases::{InstanceRow, LeaseRow};
pub use ledger::Pruned;
pub use raid::RaidClosure;
pub use report::{Activity, AuditFilter, AuditRow};
pub use review::{ReviewFacets, ReviewItem, ReviewedItem, Settled, Settlement};
pub use state::{AccountState, AppState, PollEnd, TokenHealth, TokenInfoRow, TokenRecord};
pub use summary::{LanguageStat, RuleStat};
pub use webhooks::{NewWebhookEvent, PendingWebhookEvent, Recorded};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create database file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot connect to PostgreSQL at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error(
        "cannot connect to PostgreSQL at {url}: the server's certificate was not trusted (is sslrootcert the CA that signed it, and is the host a name it was issued for?): {source}"
    )]
    UntrustedCertificate { url: String, source: sqlx::Error },
    #[error("daemon.database is not a PostgreSQL URL")]
    NotPostgres,
    #[error("cannot read the database password: {0}")]
    Password(crate::secrets::TokenError),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

impl StoreError {
    /// The database cannot take writes: read-only, disk full, I/O error, or gone. Polling on
    /// would read comments and call the API without being able to record anything.
    pub fn cannot_write(&self) -> bool {
        let code = match self {
            StoreError::Sql(sqlx::Error::Database(e)) => e.code(),
            StoreError::Sql(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_),
            ) => return true,
            _ => return false,
        };
        // PostgreSQL SQLSTATEs: connection exceptions (08), insufficient resources such as a
        // full disk (53), the server shutting down (57P), a read-only transaction (25006).
        if let Some(state) = code.as_deref().filter(|c| c.len() == 5)
            && (state.starts_with("08")
                || state.starts_with("53")
                || state.starts_with("57P")
                || state == "25006")
        {
            return true;
        }
        // SQLite primary result codes: READONLY 8, IOERR 10, FULL 13, CANTOPEN 14.
        code.and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 8 | 10 | 13 | 14))
    }
}

/// The database as `check-config` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationStatus {
    /// Not created yet: the first start creates it.
    Missing,
    Exists {
        applied: usize,
        /// This version's migrations it lacks ("version description"), run at the next start.
        pending: Vec<String>,
        /// Applied migrations this version does not know: a newer igmod wrote the database.
        unknown: usize,
    },
}

/// The SQLite migrations, embedded at compile time: `Store::open` runs them and
/// `Store::migration_status` compares a database with them.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The PostgreSQL migrations, kept equivalent to the SQLite ones by `tests/postgres.rs`.
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a write waits for a lock held by someone else (an operator's long `sqlite3`
/// query, say) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection pool of whichever backend `daemon.database` chose.
#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// What differs between the backends beyond SQL text both accept.
trait Backend {
    type Db: sqlx::Database;
    /// For the few statements whose dialects differ.
    fn is_postgres(&self) -> bool;
    /// A write transaction, holding the write lock from its start on SQLite.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl Backend for SqlitePool {
    type Db = sqlx::Sqlite;
    fn is_postgres(&self) -> bool {
        false
    }
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl Backend for PgPool {
    type Db = sqlx::Postgres;
    fn is_postgres(&self) -> bool {
        true
    }
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// A handle on the igmod database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// The app-wide row as last read, and when: every call of every account consults it, so
    /// it is read at most once a second (this process's own writes replace it at once).
    app: std::sync::Arc<std::sync::Mutex<Option<(std::time::Instant, state::AppState)>>>,
    /// The app usage this process last wrote, and when (see [`Store::share_app_usage`]).
    app_usage_written: std::sync::Arc<std::sync::Mutex<Option<(u32, std::time::Instant)>>>,
    /// Token records as last read, per account (see [`Store::token_record`]).
    tokens: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, TokenRecord)>>,
    >,
}

impl Store {
    /// Opens and migrates the database `daemon.database` names.
    pub async fn connect(db: &Database) -> Result<Store, StoreError> {
        match db {
            Database::Sqlite(path) => Store::open(path).await,
            Database::Postgres { tls, .. } => {
                // Said at every start, before the connection that it is about.
                if let Some(warning) = tls.warning() {
                    tracing::warn!(message = "the database connection is not verified TLS", %warning);
                }
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(db.pg_options()?)
                    .await
                    .map_err(|source| db.connect_error(source))?;
                PG_MIGRATOR.run(&pool).await?;
                Ok(Store::with_pool(Pool::Postgres(pool)))
            }
        }
    }

    fn with_pool(pool: Pool) -> Store {
        Store {
            pool,
            app: Default::default(),
            app_usage_written: Default::default(),
            tokens: Default::default(),
        }
    }

    /// Opens (creating with mode 0600 if missing) and migrates a SQLite database.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        create_private(path).map_err(|source| StoreError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .auto_vacuum(sqlx::sqlite::SqliteAutoVacuum::Incremental)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        MIGRATOR.run(&pool).await?;
        Ok(Store::with_pool(Pool::Sqlite(pool)))
    }

    /// What `check-config` says of the database, read-only and without migrating: whether
    /// it exists, and which of this version's migrations it still lacks (they run at the next
    /// start) or holds that this version does not know (a newer igmod wrote it).
    pub async fn migration_status(db: &Database) -> Result<MigrationStatus, StoreError> {
        let path = match db {
            Database::Sqlite(path) => path,
            Database::Postgres { .. } => {
                let mut conn = sqlx::ConnectOptions::connect(&db.pg_options()?)
                    .await
                    .map_err(|source| db.connect_error(source))?;
                let has_table: Option<String> =
                    sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                        .fetch_one(&mut conn)
                        .await?;
                let applied: Vec<i64> = match has_table {
                    Some(_) => {
                        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                            .fetch_all(&mut conn)
                            .await?
                    }
                    None => Vec::new(),
                };
                sqlx::Connection::close(conn).await?;
                return Ok(compare_migrations(&PG_MIGRATOR, &applied));
            }
        };
        if !path.exists() {
            return Ok(MigrationStatus::Missing);
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(BUSY_TIMEOUT);
        let mut conn = sqlx::ConnectOptions::connect(&options)
            .await
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let has_table: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&mut conn)
        .await?;
        let applied: Vec<i64> = match has_table {
            Some(_) => {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
                    .fetch_all(&mut conn)
                    .await?
            }
            None => Vec::new(),
        };
        sqlx::Connection::close(conn).await?;
        Ok(compare_migrations(&MIGRATOR, &applied))
    }

    /// A real, committed write, to see whether the database takes writes again.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM _probe").execute(&mut *tx).await?;
            sqlx::query("INSERT INTO _probe (at) VALUES ($1)")
                .bind(crate::timefmt::now())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Closes the pool (on SQLite, checkpointing the WAL).
    pub async fn close(&self) {
        with_pool!(self, |pool| { pool.close().await })
    }

    /// Whether several instances can share this database (PostgreSQL), so that who holds
    /// which account is worth showing.
    pub fn is_shared(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    /// Which backend this is, for operators' messages (`sqlite` or `postgres`).
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }
}

/// A database's applied migrations against this version's.
fn compare_migrations(migrator: &sqlx::migrate::Migrator, applied: &[i64]) -> MigrationStatus {
    let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    let pending = migrator
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| format!("{} {}", m.version, m.description))
        .collect();
    let unknown = applied.iter().filter(|v| !known.contains(v)).count();
    MigrationStatus::Exists {
        applied: applied.len(),
        pending,
        unknown,
    }
}

/// Creates the file with mode 0600 if it does not exist: comment texts are personal data.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The store on both backends, for tests: a SQLite file in `dir`, and a PostgreSQL server of
/// its own (kept alive by the returned handle).
#[cfg(test)]
pub(crate) async fn test_stores(
    dir: &Path,
) -> Result<Vec<(Store, Option<test_pg::PgServer>)>, StoreError> {
    let sqlite = Store::open(&dir.join("test.db")).await?;
    let server = test_pg::PgServer::start();
    let db = Database::parse(&server.url(), None).map_err(|_| StoreError::NotPostgres)?;
    let pg = Store::connect(&db).await?;
    Ok(vec![(sqlite, None), (pg, Some(server))])
}

#[cfg(test)]
#[path = "../../tests/common/pg.rs"]
pub(crate) mod test_pg;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retention_forgets_old_personal_data_and_keeps_the_audit_skeleton()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for (store, _server) in test_stores(dir.path()).await? {
            let backend = store.backend();
            for (id, seen) in [
                ("old", "2026-01-01T00:00:00.000Z"),
                ("new", "2026-11-27T00:00:00.000Z"),
            ] {
                on_pool!(store, |pool| {
                    sqlx::query(
                        "INSERT INTO comments (id, account, media_id, username, text, first_seen_at, disposition)
                         VALUES ($1, 'a', 'm', 'someone', 'some text', $2, 'evaluated')",
                    )
                    .bind(id)
                    .bind(seen)
                    .execute(pool)
                    .await?;
                    sqlx::query(
                        "INSERT INTO decisions (comment_id, account, rule, action, dry_run, reason, decided_at)
                         VALUES ($1, 'a', 'polite', 'reply', 0, 'word \"x\"', $2)",
                    )
                    .bind(id)
                    .bind(seen)
                    .execute(pool)
                    .await?;
                    sqlx::query(
                        "INSERT INTO actions (comment_id, account, action, message, status, created_at, updated_at)
                         VALUES ($1, 'a', 'reply', 'Hi someone', 'done', $2, $2)",
                    )
                    .bind(id)
                    .bind(seen)
                    .execute(pool)
                    .await?;
                    sqlx::query("INSERT INTO api_calls (account, at, method, endpoint, status) VALUES ('a', $1, 'GET', '/x', 200)")
                        .bind(seen)
                        .execute(pool)
                        .await?;
                });
            }
            let cutoff = crate::timefmt::parse("2026-06-01T00:00:00Z").unwrap_or_default();
            let pruned = store.prune(cutoff).await?;
            assert_eq!(
                pruned,
                Pruned {
                    comments: 1,
                    replies: 1,
                    calls: 1,
                    reasons: 1
                },
                "{backend}"
            );
            let rows: Vec<(String, Option<String>, Option<String>)> = on_pool!(store, |pool| {
                sqlx::query_as("SELECT id, username, text FROM comments ORDER BY id")
                    .fetch_all(pool)
                    .await?
            });
            assert_eq!(
                rows,
                vec![
                    (
                        "new".into(),
                        Some("someone".into()),
                        Some("some text".into())
                    ),
                    ("old".into(), None, None)
                ],
                "{backend}"
            );
            let reasons: Vec<(String,)> = on_pool!(store, |pool| {
                sqlx::query_as("SELECT reason FROM decisions ORDER BY comment_id")
                    .fetch_all(pool)
                    .await?
            });
            assert_eq!(
                reasons,
                vec![("word \"x\"".into(),), ("word [pruned]".into(),)],
                "{backend}"
            );
            let kept: Vec<(String, String, String, Option<String>)> = on_pool!(store, |pool| {
                sqlx::query_as(
                    "SELECT d.comment_id, d.rule, a.status, a.message FROM decisions d JOIN actions a USING (comment_id) ORDER BY 1",
                )
                .fetch_all(pool)
                .await?
            });
            assert_eq!(
                kept[1],
                ("old".into(), "polite".into(), "done".into(), None),
                "{backend}"
            );
            assert_eq!(kept[0].3.as_deref(), Some("Hi someone"), "{backend}");
            let calls: (i64,) = on_pool!(store, |pool| {
                sqlx::query_as("SELECT COUNT(*) FROM api_calls")
                    .fetch_one(pool)
                    .await?
            });
            assert_eq!(calls.0, 1, "{backend}");
            // A second run finds nothing more to prune.
            assert_eq!(store.prune(cutoff).await?, Pruned::default(), "{backend}");
            store.close().await;
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_done_hide_keeps_how_long_the_comment_was_up_and_a_reply_does_not()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for (store, _server) in test_stores(dir.path()).await? {
            let backend = store.backend();
            let now = chrono::Utc::now();
            let posted = crate::timefmt::format(now - chrono::Duration::seconds(90));
            let ids: Vec<(i64,)> = on_pool!(store, |pool| {
                sqlx::query(
                    "INSERT INTO comments (id, account, media_id, text, created_at, first_seen_at, disposition)
                     VALUES ('c1', 'a', 'm', 'forex', $1, $1, 'evaluated')",
                )
                .bind(&posted)
                .execute(pool)
                .await?;
                for action in ["hide", "reply"] {
                    sqlx::query(
                        "INSERT INTO actions (comment_id, account, action, status, created_at, updated_at)
                         VALUES ('c1', 'a', $1, 'pending', $2, $2)",
                    )
                    .bind(action)
                    .bind(&posted)
                    .execute(pool)
                    .await?;
                }
                sqlx::query_as("SELECT id FROM actions ORDER BY id")
                    .fetch_all(pool)
                    .await?
            });
            for (id,) in ids {
                store.action_done(id, None).await?;
            }
            let latency = store
                .latency_histograms(now - chrono::Duration::days(1))
                .await?;
            let counts: Vec<(i64, i64)> = latency.into_values().flatten().collect();
            assert_eq!(counts.len(), 1, "{backend}: {counts:?}");
            let (secs, n) = counts[0];
            assert!((90..=95).contains(&secs) && n == 1, "{backend}: {counts:?}");
            store.close().await;
        }
        Ok(())
    }

    #[tokio::test]
    async fn database_is_created_private_and_migrated() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub/igmod.db");
        let store = Store::open(&path).await?;
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        store.close().await;
        let server = test_pg::PgServer::start();
        let pg = Database::parse(&server.url(), None)?;
        for db in [Database::Sqlite(path), pg] {
            let store = Store::connect(&db).await?;
            let names: Vec<String> = on_pool!(store, |pool| {
                sqlx::query_scalar(if pool.is_postgres() {
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = 'public' ORDER BY 1"
                } else {
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                })
                .fetch_all(pool)
                .await?
            });
            for t in [
                "account_state",
                "actions",
                "api_calls",
                "comments",
                "decisions",
                "media_progress",
                "tokens",
            ] {
                assert!(
                    names.iter().any(|n| n == t),
                    "{db}: {t} missing from {names:?}"
                );
            }
            store.close().await;
            // Reopening runs no migration twice.
            Store::connect(&db).await?.close().await;
            assert_eq!(
                Store::migration_status(&db).await?,
                MigrationStatus::Exists {
                    applied: if db.is_postgres() {
                        PG_MIGRATOR.iter().count()
                    } else {
                        MIGRATOR.iter().count()
                    },
                    pending: vec![],
                    unknown: 0
                },
                "{db}"
            );
        }
        Ok(())
    }
}
