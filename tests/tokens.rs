//! Tokens that never lapse: refresh, persistence, operator replacement, "too young".

mod common;

use std::time::Duration;

use common::{ACME, Env, GLOBEX, count, start, text, wait_for};

const T: Duration = Duration::from_secs(20);

fn days_from_now(stored: &str) -> i64 {
    igmod::timefmt::parse(stored).map_or(-1, |t| (t - chrono::Utc::now()).num_days())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_expiry_is_refreshed_once_and_the_new_token_is_used_across_restarts() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    // After a refresh the old token stops working: only the refreshed one can poll.
    env.sim.set_refresh(ACME, true, false);
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let daemon = start(config.clone());
    wait_for("refreshed", T, || async { env.sim.refreshes(ACME) == 1 }).await;
    let scam = env.sim.add_comment(&post, "bot", "forex");
    wait_for("polling with the new token", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    daemon.stop().await;
    let expires = text(&db, "SELECT expires_at FROM tokens WHERE account = 'acme'")
        .await
        .unwrap_or_default();
    assert!((59..=60).contains(&days_from_now(&expires)), "{expires}");
    assert_eq!(
        text(&db, "SELECT token FROM tokens WHERE account = 'acme'").await,
        env.sim.token_of(ACME),
        "the refreshed token is persisted"
    );

    // A restart uses the stored token (the operator's is revoked) and does not refresh again:
    // 60 days left is more than refresh_before (10 days).
    let daemon = start(config);
    let later = env.sim.add_comment(&post, "bot", "crypto signal");
    wait_for("restart polls with the stored token", T, || async {
        env.sim.comment(&later).is_some_and(|c| c.deleted)
    })
    .await;
    daemon.stop().await;
    assert_eq!(env.sim.refreshes(ACME), 1);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM tokens WHERE status = 'invalid'").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_near_its_end_is_refreshed_and_one_far_from_it_is_not() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true")
        + &env.account("globex", GLOBEX, "backfill = true");
    env.sim.add_media(ACME);
    env.sim.add_media(GLOBEX);
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    // Both tokens are known: acme's ends in 5 days (under refresh_before), globex's in 30.
    for (account, token, days) in [
        ("acme", Env::token("acme"), 5),
        ("globex", Env::token("globex"), 30),
    ] {
        let hash = igmod::tokens::source_hash(&secrecy::SecretString::from(token));
        let expires = igmod::timefmt::format(chrono::Utc::now() + chrono::Duration::days(days));
        sqlx::query("INSERT INTO tokens (account, status, checked_at, source_hash, expires_at) VALUES (?1, 'ok', ?2, ?3, ?4)")
            .bind(account)
            .bind(igmod::timefmt::now())
            .bind(hash)
            .bind(expires)
            .execute(&db)
            .await
            .expect("seed");
    }
    let daemon = start(config);
    wait_for("acme refreshed", T, || async {
        env.sim.refreshes(ACME) == 1
    })
    .await;
    let polls = env.sim.calls_for(GLOBEX);
    wait_for("globex polls on", T, || async {
        env.sim.calls_for(GLOBEX) >= polls + 2
    })
    .await;
    daemon.stop().await;
    assert_eq!(env.sim.refreshes(GLOBEX), 0, "30 days left: no refresh yet");
    let expires = text(&db, "SELECT expires_at FROM tokens WHERE account = 'acme'")
        .await
        .unwrap_or_default();
    assert!(days_from_now(&expires) >= 59);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_operator_replaces_wins_over_the_refreshed_one() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let daemon = start(config.clone());
    wait_for("refreshed", T, || async { env.sim.refreshes(ACME) == 1 }).await;
    daemon.stop().await;
    assert!(text(&db, "SELECT token FROM tokens").await.is_some());

    // The operator puts a new token in the file.
    let replacement = "EAAG-SECRET-operator-new";
    env.sim.add_token(ACME, replacement);
    std::fs::write(env.dir.path().join("acme.token"), replacement).expect("token file");
    env.sim.set_refresh(ACME, false, true); // the new token is too young to refresh
    let daemon = start(config);
    let scam = env.sim.add_comment(&post, "bot", "forex");
    wait_for("polling", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    daemon.stop().await;
    assert_eq!(
        text(&db, "SELECT token FROM tokens").await,
        None,
        "the refreshed token is dropped"
    );
    let hash = igmod::tokens::source_hash(&secrecy::SecretString::from(replacement.to_string()));
    assert_eq!(
        text(&db, "SELECT source_hash FROM tokens").await,
        Some(hash)
    );
    // Too young: expiry recorded as at most 60 days away, next try in a day, no busy loop.
    let expires = text(&db, "SELECT expires_at FROM tokens")
        .await
        .unwrap_or_default();
    assert!((59..=60).contains(&days_from_now(&expires)), "{expires}");
    let next = text(&db, "SELECT next_check_at FROM tokens")
        .await
        .unwrap_or_default();
    assert!(
        igmod::timefmt::parse(&next).is_some_and(|t| (t - chrono::Utc::now()).num_hours() >= 23),
        "{next}"
    );
    let refresh_calls = count(
        &db,
        "SELECT COUNT(*) FROM api_calls WHERE endpoint = '/refresh_access_token'",
    )
    .await;
    assert_eq!(refresh_calls, 2, "one refresh, then one refused attempt");
}
