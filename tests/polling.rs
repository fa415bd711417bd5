//! What a poll reads when Meta's counts do not tell the whole story, against the simulator.

mod common;

use std::time::Duration;

use common::{ACME, Env, GLOBEX, count, start, wait_for};

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_that_never_matches_costs_a_bounded_number_of_pages() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true\nsweep_posts = 0");
    let post = env.sim.add_media(ACME);
    for i in 0..600 {
        env.sim.add_comment(&post, &format!("fan_{i}"), "lovely");
    }
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let daemon = start(config);
    wait_for("the first poll read all 600", T, || async {
        count(
            &db,
            "SELECT COUNT(*) FROM media_progress WHERE comments_count = 600",
        )
        .await
            == 1
    })
    .await;
    let first = env.sim.requests_to(&format!("/{post}/comments"));
    assert_eq!(first, 12, "50 a page");
    // Meta counts three comments it never lists, and one real one arrives.
    env.sim.add_unlisted(&post, 3);
    let scam = env.sim.add_comment(&post, "bot", "forex");
    wait_for("the new comment acted on", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    wait_for("the count stored", T, || async {
        count(
            &db,
            "SELECT COUNT(*) FROM media_progress WHERE comments_count = 603",
        )
        .await
            == 1
    })
    .await;
    let after_change = env.sim.requests_to(&format!("/{post}/comments"));
    // Quiet polls: the stored count matches, nothing more is paged.
    common::wait_more_polls(&db, 3, T).await;
    daemon.stop().await;
    let spent = after_change - first;
    assert!(
        (1..=5).contains(&spent),
        "the page with the new comment and at most 4 more, not all 12: {spent}"
    );
    assert_eq!(
        env.sim.requests_to(&format!("/{post}/comments")),
        after_change,
        "the mismatch is not paged again every poll"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_on_an_older_thread_with_the_count_unchanged_is_found_by_the_sweep() {
    let env = Env::new().await;
    // Same story on two accounts: acme sweeps every 2 s, globex never does.
    let accounts = env.account("acme", ACME, "backfill = true\nsweep_interval = \"2s\"")
        + &env.account("globex", GLOBEX, "backfill = true\nsweep_posts = 0");
    let mut scams = Vec::new();
    let mut posts = Vec::new();
    for id in [ACME, GLOBEX] {
        let post = env.sim.add_media(id);
        let old_thread = env.sim.add_comment(&post, "fan", "great shot");
        let doomed = env.sim.add_comment(&post, "fan_2", "love it");
        env.sim.add_comment(&post, "fan_3", "newest top-level");
        posts.push((post, old_thread, doomed));
    }
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let daemon = start(config);
    wait_for("both read", T, || async {
        count(&db, "SELECT COUNT(*) FROM comments").await == 6
    })
    .await;
    // Between two polls: one comment deleted by its author, one reply on an older thread.
    // The count and the newest top-level comment are the same as before.
    for (_, old_thread, doomed) in &posts {
        env.sim.remove_comment(doomed);
        scams.push(env.sim.add_reply(old_thread, "bot", "forex"));
    }
    wait_for("the sweep found acme's reply and acted", T, || async {
        env.sim.comment(&scams[0]).is_some_and(|c| c.deleted)
    })
    .await;
    // globex polled many times meanwhile; without a sweep the reply stays unseen.
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.stop().await;
    assert!(env.sim.comment(&scams[1]).is_some_and(|c| !c.deleted));
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM comments WHERE id = '{}'", scams[1])
        )
        .await,
        0
    );
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM account_state WHERE account = 'acme' AND swept_at IS NOT NULL"
        )
        .await
            == 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_reply_in_a_long_thread_is_paged_on_its_own() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true\nsweep_posts = 0");
    let post = env.sim.add_media(ACME);
    let thread = env.sim.add_comment(&post, "fan", "giveaway?");
    for i in 0..25 {
        env.sim.add_reply(&thread, &format!("fan_{i}"), "me too");
    }
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let daemon = start(config);
    wait_for("all 26 read", T, || async {
        count(&db, "SELECT COUNT(*) FROM comments").await == 26
    })
    .await;
    let scam = env.sim.add_reply(&thread, "bot", "forex");
    wait_for("the new reply acted on", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    daemon.stop().await;
    // Ten replies come inline; the rest of the thread is paged separately.
    assert!(env.sim.requests_to(&format!("/{thread}/replies")) >= 2);
}
