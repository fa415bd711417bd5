//! How igmod spends an account's Graph API budget, against the simulator.

mod common;

use std::time::Duration;

use common::{ACME, Env, GLOBEX, count, start, text, wait_for};

const T: Duration = Duration::from_secs(20);

fn secs_from_now(stored: &str) -> i64 {
    igmod::timefmt::parse(stored).map_or(0, |t| (t - chrono::Utc::now()).num_seconds())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_account_costs_one_call_per_poll() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    for _ in 0..10 {
        let post = env.sim.add_media(ACME);
        env.sim.add_comment(&post, "fan", "nice");
    }
    let daemon = start(env.config(&accounts, ""));
    // /me at start, a token refresh (expiry unknown), then the first poll reads every post.
    wait_for("first poll read every post", T, || async {
        env.sim.calls_for(ACME) >= 13
    })
    .await;
    let after_first = env.sim.requests().len();
    wait_for("five quiet polls", T, || async {
        env.sim.calls_for(ACME) >= 18
    })
    .await;
    daemon.stop().await;
    let quiet: Vec<_> = env.sim.requests().into_iter().skip(after_first).collect();
    assert!(quiet.len() >= 5);
    assert!(
        quiet
            .iter()
            .all(|r| r.path == format!("/v25.0/{ACME}/media")),
        "{quiet:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_120_comment_burst_is_moderated_within_a_budget_of_30() {
    let env = Env::new().await;
    let accounts = env
        .account("acme", ACME, "backfill = false")
        .replace("hourly_budget = 20000", "hourly_budget = 30");
    let post = env.sim.add_media(ACME);
    env.sim.add_media(ACME);
    env.sim.add_comment(&post, "early", "first!");
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let daemon = start(config.clone());
    wait_for("baseline", T, || async {
        count(
            &db,
            "SELECT COUNT(*) FROM account_state WHERE baseline_done_at IS NOT NULL",
        )
        .await
            == 1
    })
    .await;
    let mut scams = Vec::new();
    for i in 0..120 {
        if i % 10 == 3 {
            scams.push(env.sim.add_comment(
                &post,
                &format!("bot{i}"),
                "forex signals, dm me to earn",
            ));
        } else {
            env.sim.add_comment(&post, &format!("fan{i}"), "lovely");
        }
    }
    // 24 reads an hour (20 % reserve): polls are paced to one every 150 s, so the burst is
    // read by the next poll; shorten the wait by making that poll due now (once the daemon
    // has stopped, so it cannot write its own due time over ours).
    daemon.stop().await;
    sqlx::query("UPDATE account_state SET next_due_at = NULL")
        .execute(&db)
        .await
        .expect("due now");
    let daemon = start(config);
    wait_for("every scam of the burst deleted", T, || async {
        scams
            .iter()
            .all(|s| env.sim.comment(s).is_some_and(|c| c.deleted))
    })
    .await;
    daemon.stop().await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM comments").await, 121);
    let calls = count(&db, "SELECT COUNT(*) FROM api_calls").await;
    // Each start asks /me who the token belongs to (2); the first poll refreshes the token,
    // whose expiry is unknown (1). Baseline: media list + 1 page.
    // Burst: media list + 3 pages (121 comments) + 12 deletes.
    assert_eq!(calls, 2 + 1 + 2 + 4 + 12, "calls spent");
    assert!(calls <= 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_reserve_lets_a_hide_through_when_reads_are_spent() {
    let env = Env::new().await;
    let accounts = env
        .account("acme", ACME, "backfill = true")
        .replace("hourly_budget = 20000", "hourly_budget = 10");
    let mut posts = Vec::new();
    for i in 0..12 {
        let post = env.sim.add_media(ACME);
        env.sim.add_comment(&post, "fan", &format!("nice {i}"));
        posts.push(post);
    }
    // The newest post is read first.
    let rude = env.sim.add_comment(&posts[11], "troll", "idiot");
    let daemon = start(env.config(&accounts, ""));
    wait_for("hide applied", T, || async {
        env.sim.comment(&rude).is_some_and(|c| c.hidden)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    daemon.stop().await;
    let db = env.pool().await;
    // Reads may use 8 of 10 calls: /me at start, the media list and 5 posts (the token
    // refresh counts too); the hide, a write, is the 9th call.
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM api_calls WHERE method = 'GET'").await,
        8
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM api_calls WHERE method = 'POST'").await,
        1
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM media_progress").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_at_100_percent_pauses_for_the_regain_time_while_others_poll() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true")
        + &env.account("globex", GLOBEX, "backfill = true");
    env.sim.add_media(ACME);
    let globex_post = env.sim.add_media(GLOBEX);
    env.sim.set_usage(ACME, Some((100, 2)));
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let daemon = start(config);
    wait_for("acme paused", T, || async {
        count(&db, "SELECT COUNT(*) FROM account_state WHERE account = 'acme' AND paused_until IS NOT NULL").await == 1
    })
    .await;
    let acme_calls = env.sim.calls_for(ACME);
    let scam = env.sim.add_comment(&globex_post, "bot", "forex");
    wait_for("globex still moderates", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    daemon.stop().await;
    assert_eq!(env.sim.calls_for(ACME), acme_calls, "no calls while paused");
    assert_eq!(acme_calls, 1);
    assert_eq!(
        text(&db, "SELECT expires_at FROM tokens WHERE account = 'acme'").await,
        None,
        "a refresh our own pause blocked says nothing about the token's age"
    );
    let until = secs_from_now(
        &text(
            &db,
            "SELECT paused_until FROM account_state WHERE account = 'acme'",
        )
        .await
        .unwrap_or_default(),
    );
    assert!(
        (100..=120).contains(&until),
        "paused for the 2 minutes Meta asked: {until}s left"
    );
    assert_eq!(
        count(
            &db,
            "SELECT usage_pct FROM account_state WHERE account = 'acme'"
        )
        .await,
        100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_without_a_hint_backs_off_exponentially_across_restarts() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    env.sim.add_media(ACME);
    env.sim.throttle_silently(ACME, Duration::from_secs(3600));
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let mut pauses = Vec::new();
    for strike in 1..=3 {
        let daemon = start(config.clone());
        wait_for("throttled", T, || async {
            count(&db, "SELECT COALESCE((SELECT throttle_strikes FROM account_state WHERE account = 'acme'), 0)").await == strike
        })
        .await;
        daemon.stop().await;
        let until = text(&db, "SELECT paused_until FROM account_state")
            .await
            .unwrap_or_default();
        pauses.push(secs_from_now(&until));
        // Time passes: the pause is over.
        sqlx::query("UPDATE account_state SET paused_until = NULL, next_due_at = NULL")
            .execute(&db)
            .await
            .expect("time passes");
    }
    assert!((28..=60).contains(&pauses[0]), "{pauses:?}");
    assert!((58..=120).contains(&pauses[1]), "{pauses:?}");
    assert!((118..=240).contains(&pauses[2]), "{pauses:?}");
    assert_eq!(
        env.sim.calls_for(ACME),
        3,
        "one call per attempt, no retries into a throttle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_usage_at_95_percent_pauses_every_account_of_the_app() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true")
        + &env.account("globex", GLOBEX, "backfill = true");
    env.sim.add_media(ACME);
    let globex_post = env.sim.add_media(GLOBEX);
    // Each account's own entry stays low: only the app as a whole is near its limit.
    env.sim.set_app_usage(Some(96));
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let daemon = start(config);
    wait_for("the app paused", T, || async {
        count(
            &db,
            "SELECT COUNT(*) FROM app_state WHERE paused_until IS NOT NULL",
        )
        .await
            == 1
    })
    .await;
    // An answer already in flight may still land; after that, nobody calls.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = env.sim.requests().len();
    let scam = env.sim.add_comment(&globex_post, "bot", "forex");
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.stop().await;
    assert_eq!(
        env.sim.requests().len(),
        calls,
        "no account calls while the app is paused"
    );
    assert!(env.sim.comment(&scam).is_some_and(|c| !c.deleted));
    assert_eq!(count(&db, "SELECT usage_pct FROM app_state").await, 96);
    let until = secs_from_now(
        &text(&db, "SELECT paused_until FROM app_state")
            .await
            .unwrap_or_default(),
    );
    assert!(
        (280..=300).contains(&until),
        "paused 5 minutes: {until}s left"
    );
    assert_eq!(
        text(&db, "SELECT paused_reason FROM app_state")
            .await
            .as_deref(),
        Some("meta app usage at 96%")
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM account_state WHERE usage_pct >= 95"
        )
        .await,
        0,
        "the accounts' own usage is theirs, not the app's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_entry_in_the_usage_header_does_not_pause_this_one() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    env.sim.set_neighbour_usage(Some(100));
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let daemon = start(config);
    wait_for("first poll", T, || async {
        count(&db, "SELECT COUNT(*) FROM media_progress").await == 1
    })
    .await;
    let scam = env.sim.add_comment(&post, "bot", "forex");
    wait_for("the scam deleted", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    daemon.stop().await;
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM account_state WHERE paused_until IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM app_state WHERE paused_until IS NOT NULL"
        )
        .await,
        0
    );
    let own = count(
        &db,
        "SELECT usage_pct FROM account_state WHERE account = 'acme'",
    )
    .await;
    assert!(own < 95, "acme's own usage, not its neighbour's: {own}");
}
