//! The outbox walk on a real SQLite file, with the real budget and the simulator over
//! loopback: a spent budget stops the walk at the first action it refuses, and a backlog
//! longer than a page is applied in order across pages.
//!
//! The work a walk does is counted from sqlx's own statement log (target `sqlx::query`),
//! caught by a counting subscriber for this whole test binary: statements on the call ledger
//! (`api_calls`, what every budget check reads) and the rows each outbox read returned.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ACME, Env};
use igmod::account::AccountCtx;
use igmod::lease::Leases;
use igmod::store::Store;
use secrecy::SecretString;
use tracing_subscriber::layer::SubscriberExt;

/// What the statement log showed.
#[derive(Default)]
struct Seen {
    ledger_statements: AtomicUsize,
    /// Rows returned by each read of the pending actions.
    outbox_reads: Mutex<Vec<u64>>,
}

struct Count(Arc<Seen>);

#[derive(Default)]
struct Fields {
    statement: String,
    rows_returned: Option<u64>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "db.statement" || field.name() == "summary" {
            self.statement.push_str(value);
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "rows_returned" {
            self.rows_returned = Some(value);
        }
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if field.name() == "rows_returned" {
            self.rows_returned = u64::try_from(value).ok();
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "db.statement" || field.name() == "summary" {
            self.statement.push_str(&format!("{value:?}"));
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        if f.statement.contains("api_calls") {
            self.0.ledger_statements.fetch_add(1, Ordering::SeqCst);
        }
        if f.statement.contains("a.status = 'pending'")
            && let Ok(mut reads) = self.0.outbox_reads.lock()
        {
            reads.push(f.rows_returned.unwrap_or(0));
        }
    }
}

/// The statement counter, installed once for this binary (before anything logs).
fn seen() -> Arc<Seen> {
    static SEEN: std::sync::OnceLock<Arc<Seen>> = std::sync::OnceLock::new();
    SEEN.get_or_init(|| {
        let seen = Arc::new(Seen::default());
        let subscriber = tracing_subscriber::registry().with(Count(seen.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        seen
    })
    .clone()
}

/// One account (`acme`, `hourly_budget` calls an hour), its context wired as the daemon wires
/// it, holding its lease, and `n` pending hides of comments the simulator has.
async fn outbox(env: &Env, hourly_budget: u32, n: usize) -> (AccountCtx, Vec<String>) {
    let table = env.account("acme", ACME, "").replace(
        "hourly_budget = 20000",
        &format!("hourly_budget = {hourly_budget}"),
    );
    let config = env.config(&table, "");
    let account = config.accounts[0].clone();
    let store = Store::open(&env.db()).await.expect("store");
    let (client, budget) = igmod::daemon::client_and_budget(&config, &account, &store)
        .await
        .expect("client and budget");
    let leases = Arc::new(Leases::new(
        store.clone(),
        Duration::from_secs(60),
        Duration::from_secs(20),
    ));
    let now = chrono::Utc::now();
    assert!(
        store
            .claim_lease(
                "acme",
                leases.id(),
                now,
                now + chrono::Duration::seconds(600)
            )
            .await
            .expect("lease")
    );
    let post = env.sim.add_media(ACME);
    let pool = env.pool().await;
    let at = igmod::timefmt::now();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = env
            .sim
            .add_comment(&post, &format!("troll{i}"), "you idiot");
        sqlx::query(
            "INSERT INTO comments (id, account, media_id, username, text, created_at, first_seen_at, disposition)
             VALUES ($1, 'acme', $2, $3, 'you idiot', $4, $4, 'evaluated')",
        )
        .bind(&id)
        .bind(&post)
        .bind(format!("troll{i}"))
        .bind(&at)
        .execute(&pool)
        .await
        .expect("comment");
        sqlx::query(
            "INSERT INTO actions (comment_id, account, action, status, attempts, created_at, updated_at)
             VALUES ($1, 'acme', 'hide', 'pending', 0, $2, $2)",
        )
        .bind(&id)
        .bind(&at)
        .execute(&pool)
        .await
        .expect("action");
        ids.push(id);
    }
    pool.close().await;
    let ctx = AccountCtx {
        config: account,
        client,
        budget,
        store,
        dry_run: false,
        app: None,
        username: Mutex::new(None),
        outbox_empty_at: Mutex::new(None),
        media_seen: Default::default(),
        inbox: Arc::new(tokio::sync::Notify::new()),
        leases,
        raid_reopen_at: Mutex::new(None),
    };
    (ctx, ids)
}

/// Spends the account's whole hour: `n` calls ledgered a minute ago.
async fn spend(env: &Env, n: u32) {
    let pool = env.pool().await;
    let at = igmod::timefmt::format(chrono::Utc::now() - chrono::Duration::minutes(1));
    for _ in 0..n {
        sqlx::query(
            "INSERT INTO api_calls (account, at, method, endpoint, status)
             VALUES ('acme', $1, 'GET', '/v25.0/me/media', 200)",
        )
        .bind(&at)
        .execute(&pool)
        .await
        .expect("ledger row");
    }
    pool.close().await;
}

async fn statuses(env: &Env) -> Vec<(String, String)> {
    let pool = env.pool().await;
    let rows = sqlx::query_as("SELECT comment_id, status FROM actions ORDER BY id")
        .fetch_all(&pool)
        .await
        .expect("actions");
    pool.close().await;
    rows
}

// One test in this binary: the statement counter is global.
#[tokio::test]
async fn the_outbox_walk_stops_at_the_first_action_refused_for_budget_and_pages_in_order() {
    let seen = seen();

    // 1. The hour is spent and 250 hides wait: one budget check, one page read, nothing sent.
    {
        let env = Env::new().await;
        let (ctx, ids) = outbox(&env, 50, 250).await;
        spend(&env, 50).await;
        let token = SecretString::from(Env::token("acme"));
        seen.ledger_statements.store(0, Ordering::SeqCst);
        if let Ok(mut reads) = seen.outbox_reads.lock() {
            reads.clear();
        }
        let done = igmod::actions::apply_pending(&ctx, &token)
            .await
            .expect("walk");
        // Closing the pool waits for its connections, so every statement has been logged.
        ctx.store.close().await;
        let ledger = seen.ledger_statements.load(Ordering::SeqCst);
        let reads = seen
            .outbox_reads
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        println!(
            "figures: spent budget, 250 pending: {ledger} ledger statements, outbox reads returned {reads:?} rows"
        );
        assert_eq!(done, 0);
        // One budget check reads the ledger at most three times (the hour's count, then the
        // count and the call that frees the next slot).
        assert!(
            ledger <= 3,
            "{ledger} ledger statements for a spent budget: the walk went on past the first refusal"
        );
        assert_eq!(reads.len(), 1, "outbox reads: {reads:?}");
        assert!(
            reads[0] <= igmod::actions::PAGE as u64,
            "an outbox read returned {} rows (a page is {})",
            reads[0],
            igmod::actions::PAGE
        );
        assert!(
            statuses(&env).await.iter().all(|(_, s)| s == "pending"),
            "an action changed while the budget was spent"
        );
        for id in &ids {
            assert_eq!(env.sim.comment(id).map(|c| c.hide_calls), Some(0));
        }
    }

    // 2. Room for 103 writes and 105 hides waiting: the first 103, in order, across the
    //    page boundary, then the walk stops and the last two wait.
    {
        let env = Env::new().await;
        let (ctx, ids) = outbox(&env, 103, 105).await;
        let token = SecretString::from(Env::token("acme"));
        let done = igmod::actions::apply_pending(&ctx, &token)
            .await
            .expect("walk");
        ctx.store.close().await;
        assert_eq!(done, 103);
        let statuses = statuses(&env).await;
        let (applied, waiting) = statuses.split_at(103);
        assert!(applied.iter().all(|(_, s)| s == "done"), "{applied:?}");
        assert!(waiting.iter().all(|(_, s)| s == "pending"), "{waiting:?}");
        for (i, id) in ids.iter().enumerate() {
            let c = env.sim.comment(id).expect("comment");
            let want = u32::from(i < 103);
            assert_eq!(c.hide_calls, want, "comment {i}: {} hides", c.hide_calls);
        }
    }
}
