//! The PostgreSQL schema (`migrations/postgres`) is the SQLite one (`migrations/sqlite`): the
//! same tables, columns and views, checked on a real PostgreSQL server that this test starts
//! (`initdb` + `pg_ctl` in a temp dir on a free loopback port, as the `postgres` user when run
//! as root). Needs PostgreSQL's server binaries (Debian's `postgresql`; `.ci/run` installs it);
//! without them the test fails saying so.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::pg::PgServer;

/// Table or view name → its column names.
type Shape = BTreeMap<String, BTreeSet<String>>;

async fn sqlite_shape(kind: &str) -> Shape {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("igmod.db");
    let store = igmod::store::Store::open(&path).await.expect("store");
    store.close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("sqlite");
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = ?1 AND m.name NOT LIKE 'sqlite_%' AND m.name != '_sqlx_migrations'",
    )
    .bind(kind)
    .fetch_all(&pool)
    .await
    .expect("sqlite schema");
    pool.close().await;
    group(rows)
}

async fn postgres_shape(pool: &sqlx::PgPool, kind: &str) -> Shape {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text
         FROM information_schema.columns c
         JOIN information_schema.tables t
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = 'public' AND t.table_type = $1
           AND c.table_name != '_sqlx_migrations'",
    )
    .bind(kind)
    .fetch_all(pool)
    .await
    .expect("postgres schema");
    group(rows)
}

fn group(rows: Vec<(String, String)>) -> Shape {
    let mut shape = Shape::new();
    for (table, column) in rows {
        shape.entry(table).or_default().insert(column);
    }
    shape
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_schema_has_the_sqlite_schemas_tables_columns_and_views() {
    let server = PgServer::start();
    let pool = sqlx::PgPool::connect(&server.url())
        .await
        .expect("connect to the test server");
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let migrator = sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .expect("migrations/postgres");
    migrator.run(&pool).await.expect("postgres migrations");
    // A second run finds nothing to do (a restart of the daemon).
    migrator
        .run(&pool)
        .await
        .expect("postgres migrations again");

    let tables = postgres_shape(&pool, "BASE TABLE").await;
    let views = postgres_shape(&pool, "VIEW").await;
    assert_eq!(tables, sqlite_shape("table").await, "tables differ");
    assert_eq!(views, sqlite_shape("view").await, "views differ");
    assert!(tables.contains_key("actions") && views.contains_key("recent_actions"));
    // Every view runs on PostgreSQL, with rows in it.
    sqlx::query(
        "INSERT INTO comments (id, account, media_id, first_seen_at, disposition)
         VALUES ('c1', 'acme', 'm1', '2026-12-02T10:00:00.000Z', 'evaluated')",
    )
    .execute(&pool)
    .await
    .expect("comment");
    sqlx::query(
        "INSERT INTO decisions (comment_id, account, rule, action, dry_run, reason, decided_at)
         VALUES ('c1', 'acme', 'scam', 'delete', 0, 'word \"forex\"', '2026-12-02T10:00:01.000Z')",
    )
    .execute(&pool)
    .await
    .expect("decision");
    sqlx::query(
        "INSERT INTO api_calls (account, at, method, endpoint, status)
         VALUES ('acme', '2026-12-02T10:00:02.000Z', 'GET', '/v25.0/x', 500)",
    )
    .execute(&pool)
    .await
    .expect("call");
    let hits: (String, i64) = sqlx::query_as("SELECT day, hits FROM rule_hits_daily")
        .fetch_one(&pool)
        .await
        .expect("rule_hits_daily");
    assert_eq!(hits, ("2026-12-02".to_string(), 1));
    let hourly: (String, i64, i64) =
        sqlx::query_as("SELECT hour, calls, failed FROM api_calls_hourly")
            .fetch_one(&pool)
            .await
            .expect("api_calls_hourly");
    assert_eq!(hourly, ("2026-12-02T10:00Z".to_string(), 1, 1));
    let recent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recent_actions")
        .fetch_one(&pool)
        .await
        .expect("recent_actions");
    assert_eq!(recent, 0);
    pool.close().await;
    drop(server);
}

/// `check-config` with a PostgreSQL URL connects (with the password from its file, never
/// printed), says which migrations the next start runs, then that all are applied; a server
/// that does not answer fails the check, naming the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_connects_to_postgres_and_reports_its_migrations() {
    let server = PgServer::start();
    let env = common::Env::new().await;
    let accounts = env.account("acme", common::ACME, "");
    let password = env.dir.path().join("db.password");
    std::fs::write(&password, "pg-SECRET-0d9e\n").expect("password file");
    let path = env.write_config(
        &accounts,
        &format!("database_password_file = \"{}\"", password.display()),
    );
    let text = std::fs::read_to_string(&path).expect("config");
    let with_url = |url: &str| {
        text.replace(
            &format!("database = \"{}\"", env.db().display()),
            &format!("database = \"{url}\""),
        )
    };
    std::fs::write(&path, with_url(&server.url())).expect("config");
    let check = || common::run(common::igmod().args(["check-config", "-c"]).arg(&path));
    let (code, out, err) = check();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("migration(s) pending, run at the next start: 1 schema"),
        "{out}"
    );
    let store = igmod::store::Store::connect(
        &igmod::store::Database::parse(&server.url(), None).expect("url"),
    )
    .await
    .expect("migrate");
    store.close().await;
    let (code, out, err) = check();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("up to date"), "{out}");
    assert!(!out.contains("pg-SECRET") && !err.contains("pg-SECRET"));
    // Nothing listens there: the check fails and says where it tried.
    let port = common::free_port();
    let nowhere = format!("postgres://igmod@127.0.0.1:{port}/igmod");
    std::fs::write(&path, with_url(&nowhere)).expect("config");
    let (code, out, err) = check();
    assert_ne!(code, 0, "{out}");
    assert!(err.contains(&nowhere), "{err}");
    assert!(!out.contains("pg-SECRET") && !err.contains("pg-SECRET"));
    // A password in the URL is refused, naming the key, without echoing it.
    std::fs::write(
        &path,
        with_url(&format!("postgres://igmod:hunter2@127.0.0.1:{port}/igmod")),
    )
    .expect("config");
    let (code, out, err) = check();
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("daemon.database") && err.contains("database_password_env"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    drop(server);
}
