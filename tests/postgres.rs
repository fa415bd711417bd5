//! The PostgreSQL schema (`migrations/postgres`) is the SQLite one (`migrations/sqlite`): the
//! same tables, columns and views, checked on a real PostgreSQL server that this test starts
//! (`initdb` + `pg_ctl` in a temp dir on a free loopback port, as the `postgres` user when run
//! as root). Needs PostgreSQL's server binaries (Debian's `postgresql`; `.ci/run` installs it);
//! without them the test fails saying so.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

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
/// printed), says which migrations the next start runs, then that all are applied, and warns
/// about a password or verify token file others can read; a server that does not answer
/// fails the check, naming the server without the URL's user info and query; a password in
/// the URL is refused, naming where without repeating it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_connects_to_postgres_and_reports_its_migrations() {
    use std::os::unix::fs::PermissionsExt;
    let server = PgServer::start();
    let env = common::Env::new().await;
    let password = env.dir.path().join("db.password");
    std::fs::write(&password, "pg-SECRET-0d9e\n").expect("password file");
    // A client certificate's key (unused: this server has no TLS) is a secret file too.
    let client_key = env.dir.path().join("client.key");
    std::fs::write(&client_key, "KEY-SECRET-19fe\n").expect("client key");
    let verify_token = env.dir.path().join("verify.token");
    std::fs::write(&verify_token, "VERIFY-SECRET-77ab\n").expect("verify token file");
    let readable = std::fs::Permissions::from_mode(0o644);
    for file in [&password, &verify_token, &client_key] {
        std::fs::set_permissions(file, readable.clone()).expect("chmod");
    }
    let accounts = env.account("acme", common::ACME, "")
        + &env.app()
        + &format!(
            "[webhook]\nlisten = \"127.0.0.1:0\"\nverify_token_file = \"{}\"\n\n",
            verify_token.display()
        );
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
    let with_client_key = format!(
        "{}?sslcert={}&sslkey={}",
        server.url(),
        env.dir.path().join("client.crt").display(),
        client_key.display()
    );
    std::fs::write(&path, with_url(&with_client_key)).expect("config");
    let check = || common::run(common::igmod().args(["check-config", "-c"]).arg(&path));
    let (code, out, err) = check();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("migration(s) pending, run at the next start: 1 schema"),
        "{out}"
    );
    let store = igmod::store::Store::connect(
        &igmod::config::database::Database::parse(&server.url(), None).expect("url"),
    )
    .await
    .expect("migrate");
    store.close().await;
    let (code, out, err) = check();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("up to date"), "{out}");
    assert!(!out.contains("pg-SECRET") && !err.contains("pg-SECRET"));
    for file in [&password, &verify_token, &client_key] {
        let warning = format!(
            "warning: {} holds a secret and is readable by group and others (mode 0644)",
            file.display()
        );
        assert!(out.contains(&warning), "{file:?} not warned:\n{out}");
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let (code, out, err) = check();
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("db.password holds")
            && !out.contains("verify.token holds")
            && !out.contains("client.key holds"),
        "{out}"
    );
    assert!(!out.contains("VERIFY-SECRET") && !err.contains("VERIFY-SECRET"));
    // Nothing listens there: the check fails and says where it tried, without the URL's user
    // info or query.
    let port = common::free_port();
    let nowhere = format!(
        "postgres://igmod-user@127.0.0.1:{port}/igmod?sslmode=prefer&sslrootcert=%2Fhidden-dir%2Fca.pem"
    );
    std::fs::write(&path, with_url(&nowhere)).expect("config");
    let (code, out, err) = check();
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains(&format!("postgres://127.0.0.1:{port}/igmod")),
        "{err}"
    );
    assert!(out.contains("sslmode prefer: the URL sets it"), "{out}");
    for shown in [&out, &err] {
        assert!(
            !shown.contains("igmod-user") && !shown.contains("hidden-dir") && !shown.contains('?'),
            "{shown}"
        );
    }
    assert!(!out.contains("pg-SECRET") && !err.contains("pg-SECRET"));
    // A password in the URL is refused, naming the key, without echoing it.
    for (url, key) in [
        (
            format!("postgres://igmod:hunter2@127.0.0.1:{port}/igmod"),
            "user info",
        ),
        (
            format!("postgres://igmod:12/hunter2@127.0.0.1:{port}/igmod"),
            "user info",
        ),
        (
            format!("postgres://igmod:hun%2Fter2@127.0.0.1:{port}/igmod"),
            "user info",
        ),
        (
            format!("postgres://igmod@127.0.0.1:{port}/igmod?password=hunter2"),
            "`password`",
        ),
        (
            format!("postgres://igmod@127.0.0.1:{port}/igmod?passfile=/hunter2/pgpass"),
            "`passfile`",
        ),
    ] {
        std::fs::write(&path, with_url(&url)).expect("config");
        let (code, out, err) = check();
        assert_ne!(code, 0, "{url}: {out}");
        assert!(
            err.contains("daemon.database") && err.contains(key),
            "{url}: {err}"
        );
        assert!(
            !err.contains("hunter2") && !err.contains("ter2") && !out.contains("ter2"),
            "{url}: {err}"
        );
    }
    drop(server);
}

/// A CA of the test's own named `name`, and a certificate it signs for `localhost` and
/// `127.0.0.1`: (CA certificate, server certificate, server key), all PEM.
fn certificates(name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, name);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).expect("CA");
    let key = rcgen::KeyPair::generate().expect("server key");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("server params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).expect("server certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Over `sslmode=verify-full` with the test's CA as `sslrootcert`, the real daemon moderates
/// on a server that refuses plaintext, and every connection of igmod's is encrypted; a CA
/// that did not sign the server's certificate is refused, saying the certificate was not
/// trusted, by `check-config` and by `run`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn igmod_talks_to_postgres_over_verified_tls_and_refuses_an_untrusted_certificate() {
    let (ca, cert, key) = certificates("igmod test CA");
    let (other_ca, _, _) = certificates("another CA");
    let server = PgServer::start_tls(&cert, &key);
    let env = common::Env::new().await;
    let ca_file = env.dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).expect("ca");
    let other_ca_file = env.dir.path().join("other-ca.pem");
    std::fs::write(&other_ca_file, &other_ca).expect("other ca");
    let port = server.port();
    let tls_query = |ca: &Path| {
        format!(
            "sslmode=verify-full&sslrootcert={}",
            url::form_urlencoded::byte_serialize(ca.to_string_lossy().as_bytes())
                .collect::<String>()
        )
    };
    let admin = sqlx::PgPool::connect(&format!(
        "postgres://postgres@127.0.0.1:{port}/postgres?{}",
        tls_query(&ca_file)
    ))
    .await
    .expect("the test connects over TLS");
    // The server really refuses plaintext: an encrypted igmod is not an accident.
    let plain = sqlx::PgPool::connect(&format!(
        "postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    ))
    .await;
    assert!(plain.is_err(), "the server took a plaintext connection");
    for sql in [
        "CREATE ROLE igmod LOGIN PASSWORD 'pg-SECRET-tls-51c2'",
        "CREATE DATABASE igmod OWNER igmod",
    ] {
        sqlx::query(sql).execute(&admin).await.expect(sql);
    }

    // With backfill, a comment there before the first poll is moderated too.
    let accounts = env.account("acme", common::ACME, "backfill = true");
    let post = env.sim.add_media(common::ACME);
    let password = env.dir.path().join("db.password");
    std::fs::write(&password, "pg-SECRET-tls-51c2\n").expect("password file");
    std::fs::set_permissions(
        &password,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let path = env.write_config(
        &accounts,
        &format!("database_password_file = \"{}\"", password.display()),
    );
    let text = std::fs::read_to_string(&path).expect("config");
    let with_ca = |ca: &Path| {
        text.replace(
            &format!("database = \"{}\"", env.db().display()),
            &format!(
                "database = \"postgres://igmod@127.0.0.1:{port}/igmod?{}\"",
                tls_query(ca)
            ),
        )
    };
    std::fs::write(&path, with_ca(&ca_file)).expect("config");
    let (code, out, err) = common::run(common::igmod().args(["check-config", "-c"]).arg(&path));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("sslmode verify-full: the URL sets it"),
        "{out}"
    );
    assert!(!out.contains("ca.pem") && !out.contains("igmod@"), "{out}");

    let log = env.dir.path().join("daemon.log");
    let daemon = common::spawn_daemon(&path, Some(&log));
    let scam = env.sim.add_comment(&post, "bot", "forex signals, dm me");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !env.sim.comment(&scam).is_some_and(|c| c.deleted) {
        assert!(
            std::time::Instant::now() < deadline,
            "the scam was not deleted within 30 s; the daemon's log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connections: Vec<(bool, String)> = sqlx::query_as(
        "SELECT s.ssl, a.application_name::text FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.usename = 'igmod'",
    )
    .fetch_all(&admin)
    .await
    .expect("pg_stat_ssl");
    assert!(!connections.is_empty(), "igmod holds no connection");
    assert!(
        connections.iter().all(|(ssl, app)| *ssl && app == "igmod"),
        "{connections:?}"
    );
    common::kill(daemon.id(), "-TERM");
    assert_eq!(common::wait_exit(daemon).await, Some(0));
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logged.contains("pg-SECRET"), "{logged}");

    // A CA that did not sign the server's certificate.
    std::fs::write(&path, with_ca(&other_ca_file)).expect("config");
    let (code, out, err) = common::run(common::igmod().args(["check-config", "-c"]).arg(&path));
    assert_ne!(code, 0, "{out}");
    println!("check-config with another CA:\n{err}");
    assert!(err.contains("certificate was not trusted"), "{err}");
    let (code, out, err) = common::run(common::igmod().args(["run", "-c"]).arg(&path));
    println!("run with another CA:\n{err}");
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("certificate was not trusted"), "{err}");
    for text in [&out, &err] {
        assert!(
            !text.contains("pg-SECRET") && !text.contains("other-ca.pem"),
            "{text}"
        );
    }
    admin.close().await;
    drop(server);
}

/// A host that is not loopback (0.0.0.0, which Linux connects to this machine) with no
/// sslmode gets verify-full: a server without TLS is refused. With an explicit
/// `sslmode=disable` the daemon connects in plaintext, and warns at its start, as
/// `check-config` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_to_a_host_elsewhere_needs_sslmode_disable_and_is_warned() {
    let server = PgServer::start();
    let env = common::Env::new().await;
    let accounts = env.account("acme", common::ACME, "");
    let path = env.write_config(&accounts, "");
    let text = std::fs::read_to_string(&path).expect("config");
    let with_url = |url: &str| {
        text.replace(
            &format!("database = \"{}\"", env.db().display()),
            &format!("database = \"{url}\""),
        )
    };
    let elsewhere = format!("postgres://postgres@0.0.0.0:{}/postgres", server.port());
    std::fs::write(&path, with_url(&elsewhere)).expect("config");
    let (code, out, err) = common::run(common::igmod().args(["check-config", "-c"]).arg(&path));
    assert_ne!(
        code, 0,
        "a server without TLS was taken for verify-full: {out}"
    );
    assert!(
        out.contains("sslmode verify-full: host is not loopback and the URL sets no sslmode"),
        "{out}"
    );
    println!("check-config, no TLS on the server:\n{err}");
    assert!(err.contains("TLS"), "{err}");

    std::fs::write(&path, with_url(&format!("{elsewhere}?sslmode=disable"))).expect("config");
    let (code, out, err) = common::run(common::igmod().args(["check-config", "-c"]).arg(&path));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("sslmode disable: the URL sets it"), "{out}");
    assert!(
        out.contains("warning: daemon.database: sslmode=disable") && out.contains("plaintext"),
        "{out}"
    );
    let log = env.dir.path().join("daemon.log");
    let daemon = common::spawn_daemon(&path, Some(&log));
    common::wait_for("the daemon started", Duration::from_secs(20), || async {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("igmod started"))
    })
    .await;
    common::kill(daemon.id(), "-TERM");
    assert_eq!(common::wait_exit(daemon).await, Some(0));
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let warning = logged
        .lines()
        .find(|l| l.contains("sslmode=disable"))
        .unwrap_or_default();
    assert!(
        warning.contains("WARN") && warning.contains("plaintext"),
        "{logged}"
    );
    drop(server);
}

/// A fake PostgreSQL server on 127.0.0.1 that refuses TLS and asks for the password in clear
/// text; it records each password message it gets.
async fn fake_cleartext_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SSL_REQUEST: [u8; 4] = 80_877_103u32.to_be_bytes();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                // Untagged messages first: SSLRequest (answered "N": no TLS here), then the
                // startup message, answered with AuthenticationCleartextPassword.
                loop {
                    let Ok(len) = sock.read_u32().await else {
                        return;
                    };
                    let mut body = vec![0; (len as usize).saturating_sub(4).min(10_000)];
                    if sock.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    if body.get(..4) == Some(&SSL_REQUEST[..]) {
                        let _ = sock.write_all(b"N").await;
                        continue;
                    }
                    let _ = sock.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await;
                    break;
                }
                let Ok(b'p') = sock.read_u8().await else {
                    return;
                };
                let Ok(len) = sock.read_u32().await else {
                    return;
                };
                let mut body = vec![0; (len as usize).saturating_sub(4).min(10_000)];
                if sock.read_exact(&mut body).await.is_ok()
                    && let Ok(mut seen) = seen.lock()
                {
                    seen.push(String::from_utf8_lossy(&body).into_owned());
                }
            });
        }
    });
    (port, got)
}

/// The attack of issue 34: a server elsewhere that asks for the password in clear text gets
/// nothing when the URL names no sslmode (verify-full: no TLS, no password); the same fake
/// does get it when the URL asks for `sslmode=prefer`, so the empty result is not the fake's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_elsewhere_asking_for_a_cleartext_password_gets_nothing_by_default() {
    let (port, got) = fake_cleartext_server().await;
    let env = common::Env::new().await;
    let password = env.dir.path().join("db.password");
    std::fs::write(&password, "pg-SECRET-fake-4a1\n").expect("password file");
    let accounts = env.account("acme", common::ACME, "");
    let path = env.write_config(
        &accounts,
        &format!("database_password_file = \"{}\"", password.display()),
    );
    let text = std::fs::read_to_string(&path).expect("config");
    let check = |url: String| {
        let config = text.replace(
            &format!("database = \"{}\"", env.db().display()),
            &format!("database = \"{url}\""),
        );
        std::fs::write(&path, config).expect("config");
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            common::run(common::igmod().args(["check-config", "-c"]).arg(&path))
        })
    };
    // 0.0.0.0 is not loopback to igmod; Linux connects it to this machine.
    let elsewhere = format!("postgres://igmod@0.0.0.0:{port}/igmod");
    let (code, out, err) = check(elsewhere.clone()).await.expect("check-config");
    assert!(
        got.lock().expect("lock").is_empty(),
        "the password went to a server without TLS"
    );
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("TLS"), "{err}");
    let (code, out, _) = check(format!("{elsewhere}?sslmode=prefer"))
        .await
        .expect("check-config");
    assert_ne!(code, 0, "{out}");
    assert!(
        got.lock()
            .expect("lock")
            .iter()
            .any(|p| p.contains("pg-SECRET-fake-4a1")),
        "the fake server never asked for the password: this test proves nothing"
    );
}
