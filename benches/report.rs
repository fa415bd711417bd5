//! `igmod report` over a million stored decisions: `cargo bench --bench report`.
//!
//! A database is filled (by SQL, in one transaction per table) with 1,000,000 comments over 30
//! days across 10 accounts, each decided (10 rules, a third by the classifier) and acted on, 100,000
//! ledger rows over the last 7 days and 1,000 labels; then the report over 30 days is rendered
//! three times. Targets (issue 24): ≤ 3 s, HTML ≤ 2 MB.

use std::path::Path;
use std::time::Instant;

const N: i64 = 1_000_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("igmod.db");
    let store = igmod::store::Store::open(&db).await.expect("db");
    store.close().await;
    let fill = Instant::now();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("pool");
    let seq = format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {})",
        N - 1
    );
    let time = |offset: &str| {
        format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (i % 2592000) || ' seconds'{offset})")
    };
    for sql in [
        format!("{seq} INSERT INTO comments (id, account, media_id, username, text, created_at, first_seen_at, disposition)
                 SELECT 'c' || i, 'brand' || (i % 10), 'm' || (i % 500), 'user' || (i % 20000), 'forex signals', {t}, {t}, 'evaluated' FROM n",
                t = time("")),
        format!("{seq} INSERT INTO decisions (comment_id, account, rule, action, dry_run, reason, decided_at)
                 SELECT 'c' || i, 'brand' || (i % 10), 'rule' || (i % 10), CASE WHEN i % 2 = 0 THEN 'hide' ELSE 'delete' END, 0,
                        CASE WHEN i % 3 = 0 THEN 'classifier 0.' || (550 + i % 450) || ' (models/scam.model, at least 0.55)' ELSE 'word \"forex\"' END,
                        {t} FROM n", t = time("")),
        format!("{seq} INSERT INTO actions (comment_id, account, action, status, attempts, created_at, updated_at, detect_secs)
                 SELECT 'c' || i, 'brand' || (i % 10), CASE WHEN i % 2 = 0 THEN 'hide' ELSE 'delete' END, 'done', 1, {t}, {u}, i % 90 FROM n",
                t = time(""), u = time(", '+' || (i % 90) || ' seconds'")),
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
         INSERT INTO api_calls (account, at, method, endpoint, status)
         SELECT 'brand' || (i % 10), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (i * 6) || ' seconds'), 'GET', '/v25.0/x/media', 200 FROM n".to_string(),
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
         INSERT INTO labels (comment_id, account, label, source, labeled_at)
         SELECT 'c' || (i * 997), 'brand' || ((i * 997) % 10), CASE WHEN i % 4 = 0 THEN 'ok' ELSE 'scam' END, 'label', strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM n".to_string(),
    ] {
        // Built from constants in this file: no outside input.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .expect("fill");
    }
    pool.close().await;
    println!(
        "filled 1,000,000 decisions in {:.1} s",
        fill.elapsed().as_secs_f64()
    );
    let mut text = String::from("[daemon]\ndatabase = \"igmod.db\"\n\n");
    for a in 0..10 {
        text.push_str(&format!(
            "[[accounts]]\nname = \"brand{a}\"\nig_user_id = \"17841400000000{a:03}\"\nlogin = \"instagram\"\ntoken_env = \"UNUSED\"\npoll_interval = \"2m\"\nhourly_budget = 200\n\n"
        ));
    }
    text.push_str(igmod::demo::RULES);
    let config = igmod::config::parse_with(
        &dir.path().join("config.toml"),
        &text,
        igmod::config::Secrets::NotNeeded,
    )
    .expect("config");
    let store = igmod::store::Store::open(&db).await.expect("db");
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let now = chrono::Utc::now();
        let html = igmod::report::render(&config, &store, now - chrono::Duration::days(30), now)
            .await
            .expect("report");
        times.push(started.elapsed().as_secs_f64());
        size = html.len();
        std::fs::write(Path::new(dir.path()).join("report.html"), html).expect("write");
    }
    println!(
        "report over 1,000,000 decisions: {:.2} s, {:.2} s, {:.2} s; HTML {:.0} KB   targets ≤ 3 s, ≤ 2 MB",
        times[0],
        times[1],
        times[2],
        size as f64 / 1024.0
    );
}
