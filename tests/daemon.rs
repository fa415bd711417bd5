//! The real daemon loop (scheduler, HTTP client, SQLite file) against the simulator.

mod common;

use std::time::Duration;

use common::{ACME, Env, GLOBEX, count, start, text, wait_for};
use igmod::rules::Action;
use igmod::store::{Disposition, NewComment, NewDecision, Store};

const T: Duration = Duration::from_secs(20);

/// Writes the state a crash between "call started" and "outcome recorded" leaves: the comment,
/// its decision and a pending action with one attempt.
async fn crashed_mid_action(
    env: &Env,
    media_id: &str,
    comment_id: &str,
    rule: &str,
    action: Action,
    message: Option<&str>,
) {
    let store = Store::open(&env.db()).await.expect("store");
    let c = NewComment {
        id: comment_id.to_string(),
        account: "acme".into(),
        media_id: media_id.to_string(),
        parent_id: None,
        username: Some("x".into()),
        from_id: None,
        text: Some("x".into()),
        created_at: None,
        text_key: None,
    };
    let d = NewDecision {
        rule: rule.into(),
        action,
        reason: "test".into(),
        dry_run: false,
        message: message.map(str::to_string),
        not_written: false,
    };
    assert!(
        store
            .record_comment(&c, Disposition::Evaluated, Some(&d))
            .await
            .expect("record")
    );
    for a in store
        .pending_actions("acme", 0, i64::MAX)
        .await
        .expect("pending")
    {
        if a.comment_id == comment_id {
            store.action_started(a.id, None).await.expect("started");
        }
    }
    store.close().await;
}

fn deleted(env: &Env, id: &str) -> bool {
    env.sim.comment(id).is_some_and(|c| c.deleted)
}

fn hidden(env: &Env, id: &str) -> bool {
    env.sim.comment(id).is_some_and(|c| c.hidden)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderates_scam_profanity_links_and_replies_and_leaves_the_rest() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let friendly = env.sim.add_comment(&post, "fan_1", "Love this colour!");
    let scam = env
        .sim
        .add_comment(&post, "wealth.mentor", "Join my FOREX team 💰");
    let scam_dm = env
        .sim
        .add_comment(&post, "bot77", "dm @queen_22 for signals");
    let rude = env.sim.add_comment(&post, "angry", "what an idiot idea");
    let link = env
        .sim
        .add_comment(&post, "promo", "cheap followers at spamfollowers.biz");
    let own_link = env
        .sim
        .add_comment(&post, "fan_2", "bought it at https://acme.com/shop");
    let trusted = env
        .sim
        .add_comment(&post, "acme_support", "sorry, idiot autocorrect! DM us");
    let owner = env.sim.add_owner_comment(&post, "you idiots are the best");
    let rude_reply = env.sim.add_reply(&friendly, "troll", "you scumbag");
    let nice_reply = env.sim.add_reply(&friendly, "fan_3", "agreed!");
    let classic = env
        .sim
        .add_comment(&post, "fan_4", "a classic forexample of style");

    let daemon = start(env.config(&accounts, ""));
    wait_for("scam deleted and profanity hidden", T, || async {
        deleted(&env, &scam)
            && deleted(&env, &scam_dm)
            && hidden(&env, &rude)
            && hidden(&env, &link)
            && hidden(&env, &rude_reply)
    })
    .await;
    daemon.stop().await;

    for untouched in [
        &friendly,
        &own_link,
        &trusted,
        &owner,
        &nice_reply,
        &classic,
    ] {
        let c = env.sim.comment(untouched).expect("exists");
        assert!(
            !c.hidden && !c.deleted && c.hide_calls == 0 && c.delete_calls == 0,
            "{} was touched",
            c.text
        );
    }
    for acted in [&scam, &scam_dm, &rude, &link, &rude_reply] {
        let c = env.sim.comment(acted).expect("exists");
        assert_eq!(c.hide_calls + c.delete_calls, 1, "{} acted on once", c.text);
    }

    let db = env.pool().await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM comments").await,
        11,
        "every comment recorded once"
    );
    let reason = |id: &str| {
        format!(
            "SELECT rule || ': ' || action || ': ' || reason FROM decisions WHERE comment_id = '{id}'"
        )
    };
    let expected = [
        (&scam, Some("scam: delete: word \"forex\"")),
        (&rude, Some("profanity: hide: word \"idiot\"")),
        (&link, Some("links: hide: link \"spamfollowers.biz\"")),
        (&rude_reply, Some("profanity: hide: word \"scumbag\"")),
        (
            &trusted,
            Some("trusted: approve: username \"acme_support\" matches \"acme_support\""),
        ),
        (&friendly, None),
    ];
    for (id, decision) in expected {
        assert_eq!(text(&db, &reason(id)).await.as_deref(), decision, "{id}");
    }
    assert_eq!(
        text(
            &db,
            &format!("SELECT disposition FROM comments WHERE id = '{owner}'")
        )
        .await
        .as_deref(),
        Some("own")
    );
    assert_eq!(
        text(
            &db,
            &format!("SELECT parent_id FROM comments WHERE id = '{rude_reply}'")
        )
        .await
        .as_deref(),
        Some(friendly.as_str())
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'done'").await,
        5
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM actions WHERE status != 'done'").await,
        0
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM decisions").await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_fifty_new_comments_on_one_post_are_all_seen_in_three_pages() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let quiet = env.sim.add_media(ACME);
    env.sim.add_comment(&quiet, "fan", "nice");
    let mut scams = Vec::new();
    for i in 0..123 {
        if i % 10 == 0 {
            scams.push(env.sim.add_comment(&post, &format!("bot{i}"), "forex pays"));
        } else {
            env.sim.add_comment(&post, &format!("fan{i}"), "lovely");
        }
    }
    let db_env = &env;
    let daemon = start(env.config(&accounts, ""));
    wait_for("every scam deleted", T, || async {
        scams.iter().all(|s| deleted(db_env, s))
    })
    .await;
    daemon.stop().await;

    let db = env.pool().await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM comments").await, 124);
    let comment_pages = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == format!("/v25.0/{post}/comments"))
        .count();
    assert_eq!(comment_pages, 3, "123 comments at 50 a page");
    for s in &scams {
        assert_eq!(env.sim.comment(s).map(|c| c.delete_calls), Some(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_decided_or_acted_on_twice_across_polls_and_a_restart() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let scam = env
        .sim
        .add_comment(&post, "bot", "crypto signal group, dm me to earn");
    let rude = env.sim.add_comment(&post, "troll", "scumbag");
    let config = env.config(&accounts, "");

    let daemon = start(config.clone());
    wait_for("first actions", T, || async {
        deleted(&env, &scam) && hidden(&env, &rude)
    })
    .await;
    // A person unhides what igmod hid: igmod must leave it alone from now on.
    env.sim.set_hidden_by_person(&rude, false);
    let seen = env.sim.calls_for(ACME);
    wait_for("three more polls", T, || async {
        env.sim.calls_for(ACME) >= seen + 3
    })
    .await;
    daemon.stop().await;

    // Quiet polls cost exactly one call: the media list.
    let after: Vec<_> = env.sim.requests().into_iter().skip(seen).collect();
    assert!(
        after
            .iter()
            .all(|r| r.path == format!("/v25.0/{ACME}/media")),
        "{after:?}"
    );

    let daemon = start(config);
    let later = env.sim.add_comment(&post, "bot2", "FOREX");
    wait_for("new scam after restart", T, || async {
        deleted(&env, &later)
    })
    .await;
    daemon.stop().await;

    for id in [&scam, &later] {
        assert_eq!(env.sim.comment(id).map(|c| c.delete_calls), Some(1));
    }
    let r = env.sim.comment(&rude).expect("exists");
    assert_eq!(
        (r.hide_calls, r.hidden),
        (1, false),
        "the person's unhide stands"
    );
    let db = env.pool().await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM decisions").await, 3);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM actions").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_off_records_existing_comments_and_moderates_only_new_ones() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = false")
        + &env.account("globex", GLOBEX, "backfill = true");
    let acme_post = env.sim.add_media(ACME);
    let globex_post = env.sim.add_media(GLOBEX);
    let old_acme = env.sim.add_comment(&acme_post, "bot", "forex");
    let old_globex = env.sim.add_comment(&globex_post, "bot", "forex");

    let daemon = start(env.config(&accounts, ""));
    let db = env.pool().await;
    wait_for("backfilled scam deleted and acme baseline done", T, || async {
        deleted(&env, &old_globex)
            && count(&db, "SELECT COUNT(*) FROM account_state WHERE account = 'acme' AND baseline_done_at IS NOT NULL").await == 1
    })
    .await;
    let new_acme = env.sim.add_comment(&acme_post, "bot", "forex");
    wait_for("new acme scam deleted", T, || async {
        deleted(&env, &new_acme)
    })
    .await;
    daemon.stop().await;

    let old = env.sim.comment(&old_acme).expect("exists");
    assert!(!old.deleted && old.delete_calls == 0);
    assert_eq!(
        text(
            &db,
            &format!("SELECT disposition FROM comments WHERE id = '{old_acme}'")
        )
        .await
        .as_deref(),
        Some("baseline")
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM decisions WHERE comment_id = '{old_acme}'")
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_decides_and_records_but_acts_on_nothing() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&post, "bot", "forex");
    let rude = env.sim.add_comment(&post, "troll", "idiot");
    let daemon = start(env.config(&accounts, "dry_run = true"));
    let db = env.pool().await;
    wait_for("two decisions", T, || async {
        count(&db, "SELECT COUNT(*) FROM decisions").await == 2
    })
    .await;
    let seen = env.sim.calls_for(ACME);
    wait_for("another poll", T, || async {
        env.sim.calls_for(ACME) > seen
    })
    .await;
    daemon.stop().await;

    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM decisions WHERE dry_run = 1").await,
        2
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM actions").await, 0);
    for id in [&scam, &rude] {
        let c = env.sim.comment(id).expect("exists");
        assert!(!c.deleted && !c.hidden && c.hide_calls == 0 && c.delete_calls == 0);
    }
    assert!(env.sim.requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_budget_holds_across_a_restart() {
    let env = Env::new().await;
    // No action reserve: reads may use all five calls.
    let accounts = env
        .account("acme", ACME, "backfill = true\naction_reserve = 0")
        .replace("hourly_budget = 20000", "hourly_budget = 5");
    for _ in 0..3 {
        let post = env.sim.add_media(ACME);
        for i in 0..60 {
            env.sim.add_comment(&post, &format!("fan{i}"), "nice");
        }
    }
    let config = env.config(&accounts, "");
    let daemon = start(config.clone());
    wait_for("five calls", T, || async { env.sim.calls_for(ACME) >= 5 }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    daemon.stop().await;
    assert_eq!(env.sim.calls_for(ACME), 5);

    let daemon = start(config);
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.stop().await;
    assert_eq!(
        env.sim.calls_for(ACME),
        5,
        "a restart does not reset the budget"
    );
    let db = env.pool().await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM api_calls WHERE account = 'acme'").await,
        5
    );
    assert!(
        text(
            &db,
            "SELECT next_due_at FROM account_state WHERE account = 'acme'"
        )
        .await
        .unwrap_or_default()
            > igmod::timefmt::format(chrono::Utc::now() + chrono::Duration::minutes(50)),
        "the next poll waits for the budget to free up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_token_stops_only_its_account() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true")
        + &env.account("globex", GLOBEX, "backfill = true");
    let acme_post = env.sim.add_media(ACME);
    let globex_post = env.sim.add_media(GLOBEX);
    let acme_scam = env.sim.add_comment(&acme_post, "bot", "forex");
    let globex_scam = env.sim.add_comment(&globex_post, "bot", "forex");
    env.sim.kill_token(ACME, 463);

    let daemon = start(env.config(&accounts, ""));
    let db = env.pool().await;
    wait_for(
        "acme token marked invalid, globex scam deleted",
        T,
        || async {
            deleted(&env, &globex_scam)
                && count(
                    &db,
                    "SELECT COUNT(*) FROM tokens WHERE account = 'acme' AND status = 'invalid'",
                )
                .await
                    == 1
        },
    )
    .await;
    let acme_calls = env.sim.calls_for(ACME);
    let later = env.sim.add_comment(&globex_post, "bot", "crypto signal");
    wait_for("globex keeps working", T, || async {
        deleted(&env, &later)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    daemon.stop().await;

    assert_eq!(
        env.sim.calls_for(ACME),
        acme_calls,
        "no retries on a dead token"
    );
    assert_eq!(acme_calls, 1, "one call found the token dead");
    assert!(!deleted(&env, &acme_scam));
    let reason = text(
        &db,
        "SELECT invalid_reason FROM tokens WHERE account = 'acme'",
    )
    .await
    .unwrap_or_default();
    assert!(reason.contains("subcode 463"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_and_ledgered() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&post, "bot", "forex");
    env.sim.fail_next(3);
    let daemon = start(env.config(&accounts, ""));
    wait_for("scam deleted despite 500s", T, || async {
        deleted(&env, &scam)
    })
    .await;
    daemon.stop().await;
    let db = env.pool().await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM api_calls WHERE status = 500").await,
        3
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM api_calls").await as usize,
        env.sim.requests().len(),
        "every request is in the ledger"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_account_pauses_while_the_other_keeps_polling() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true")
        + &env.account("globex", GLOBEX, "backfill = true");
    let globex_post = env.sim.add_media(GLOBEX);
    env.sim.add_media(ACME);
    env.sim.throttle(ACME, Duration::from_secs(120));
    let daemon = start(env.config(&accounts, ""));
    let db = env.pool().await;
    wait_for("acme paused", T, || async {
        count(&db, "SELECT COUNT(*) FROM account_state WHERE account = 'acme' AND paused_until IS NOT NULL").await == 1
    })
    .await;
    let acme_calls = env.sim.calls_for(ACME);
    let scam = env.sim.add_comment(&globex_post, "bot", "forex");
    wait_for("globex still moderates", T, || async {
        deleted(&env, &scam)
    })
    .await;
    daemon.stop().await;
    assert_eq!(
        env.sim.calls_for(ACME),
        acme_calls,
        "a paused account makes no calls"
    );
    let until = text(
        &db,
        "SELECT paused_until FROM account_state WHERE account = 'acme'",
    )
    .await
    .unwrap_or_default();
    assert!(
        until > igmod::timefmt::format(chrono::Utc::now() + chrono::Duration::seconds(90)),
        "{until}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_interrupted_by_a_crash_are_reconciled_by_reading_first() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let hidden_already = env.sim.add_comment(&post, "troll", "idiot");
    let not_deleted_yet = env.sim.add_comment(&post, "bot", "forex");
    let config = env.config(&accounts, "");

    // The state a crash leaves: decisions recorded, calls started (attempts = 1), outcome unknown.
    crashed_mid_action(
        &env,
        &post,
        &hidden_already,
        "profanity",
        Action::Hide,
        None,
    )
    .await;
    crashed_mid_action(&env, &post, &not_deleted_yet, "scam", Action::Delete, None).await;
    // The hide had reached Instagram before the crash; the delete had not.
    env.sim.set_hidden_by_person(&hidden_already, true);

    let daemon = start(config);
    wait_for("delete applied", T, || async {
        deleted(&env, &not_deleted_yet)
    })
    .await;
    let db = env.pool().await;
    wait_for("both actions done", T, || async {
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'done'").await == 2
    })
    .await;
    daemon.stop().await;

    assert_eq!(
        env.sim.comment(&hidden_already).map(|c| c.hide_calls),
        Some(0),
        "no second hide"
    );
    assert_eq!(
        env.sim.comment(&not_deleted_yet).map(|c| c.delete_calls),
        Some(1)
    );
    let reads: Vec<_> = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == format!("/v25.0/{hidden_already}") && r.method == "GET")
        .collect();
    assert_eq!(reads.len(), 1, "read back before deciding");
    assert_eq!(
        text(
            &db,
            &format!("SELECT last_error FROM actions WHERE comment_id = '{hidden_already}'")
        )
        .await
        .as_deref(),
        Some("already hidden when reconciled")
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM decisions").await,
        2,
        "no comment decided twice"
    );
}

const RULES_V2: &str = r#"
[[rules]]
name = "staff"
action = "approve"
usernames = ["acme_support"]

[[rules]]
name = "wa-bait"
action = "delete"
contact = ["whatsapp"]
any = [{ contact = ["phone"] }, { regex = ['@[\w.]{3,}'] }]

[[rules]]
name = "lookalike"
action = "hide"
impersonation = { brands = ["acmeshoes"] }

[[rules]]
name = "wave"
action = "hide"
repeated = { users = 3, window = "1h" }
min_length = 10

[[rules]]
name = "refund-help"
action = "reply"
reply = "Hi @{{username}}, sorry about your {{match}}! Please DM us your order number."
words = ["refund", "broken"]
is_reply = false

[[rules]]
name = "reels-only-flag"
action = "flag"
words = ["cringe"]
media = ["REELS"]

[[rules]]
name = "trial-caps"
action = "hide"
dry_run = true
max_caps_ratio = 0.8
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_action_and_context_condition_works_through_the_daemon() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let wa = env
        .sim
        .add_comment(&post, "deals", "wh@tsapp me +44 7700 900123");
    let wa_innocent = env
        .sim
        .add_comment(&post, "fan", "my whatsapp group loves these");
    let fake = env
        .sim
        .add_comment(&post, "acme.shoes.official", "DM us to claim your gift");
    let staff = env
        .sim
        .add_comment(&post, "acme_support", "whatsapp us at +44 7700 900123");
    let wave: Vec<String> = ["bot_a", "bot_b", "bot_c"]
        .iter()
        .map(|u| env.sim.add_comment(&post, u, "Amazing post, visit my page"))
        .collect();
    let refund = env.sim.add_comment(
        &post,
        "sad_customer",
        "my shoes arrived BROKEN, I want a refund",
    );
    let refund_reply = env.sim.add_reply(&refund, "other", "same, refund please");
    let cringe = env.sim.add_comment(&post, "critic", "cringe");
    let shout = env
        .sim
        .add_comment(&post, "loud", "THIS IS THE BEST SHOE EVER");

    let daemon = start(env.config_with_rules(&accounts, "", RULES_V2));
    let db = env.pool().await;
    wait_for("every decision acted on", T, || async {
        deleted(&env, &wa)
            && hidden(&env, &fake)
            && hidden(&env, &wave[2])
            && count(
                &db,
                "SELECT COUNT(*) FROM actions WHERE action = 'reply' AND status = 'done'",
            )
            .await
                == 1
    })
    .await;
    let polls = env.sim.calls_for(ACME);
    wait_for("two more polls", T, || async {
        env.sim.calls_for(ACME) >= polls + 2
    })
    .await;
    daemon.stop().await;

    // The reply was posted once, by the account, on the thread, with the template rendered.
    let replies: Vec<_> = env
        .sim
        .comments()
        .into_iter()
        .filter(|c| c.parent_id.as_deref() == Some(refund.as_str()) && c.by_owner)
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(
        replies[0].text,
        "Hi @sad_customer, sorry about your BROKEN! Please DM us your order number."
    );
    // The account's own reply is recorded as its own and not moderated.
    assert_eq!(
        text(
            &db,
            &format!(
                "SELECT disposition FROM comments WHERE id = '{}'",
                replies[0].id
            )
        )
        .await
        .as_deref(),
        Some("own")
    );
    // Its id, as Meta returned it, is kept with the action: a later read recognises it
    // even without its author.
    assert_eq!(
        text(&db, "SELECT result_id FROM actions WHERE action = 'reply'")
            .await
            .as_deref(),
        Some(replies[0].id.as_str())
    );
    // A wave needs three users: the first two were seen alone.
    assert!(!hidden(&env, &wave[0]) && !hidden(&env, &wave[1]));
    let rule_of = |id: &str| {
        format!(
            "SELECT rule || '/' || action || '/' || dry_run FROM decisions WHERE comment_id = '{id}'"
        )
    };
    let expected = [
        (&wave[2], Some("wave/hide/0"), "the third user of a wave"),
        (&fake, Some("lookalike/hide/0"), "impersonation"),
        (&staff, Some("staff/approve/0"), "approve"),
        (&wa_innocent, None, "whatsapp mentioned without a number"),
        (&refund_reply, None, "is_reply = false"),
        (&cringe, None, "not a reel"),
        (&shout, Some("trial-caps/hide/1"), "per-rule dry run"),
    ];
    for (id, decision, why) in expected {
        assert_eq!(text(&db, &rule_of(id)).await.as_deref(), decision, "{why}");
    }
    assert!(!hidden(&env, &shout));
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM actions WHERE comment_id = '{shout}'")
        )
        .await,
        0
    );
    assert_eq!(count(&db, "SELECT SUM(hits) FROM rule_hits_daily").await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_whose_outcome_is_unknown_is_never_sent_twice() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let asked = env.sim.add_comment(&post, "c1", "refund?");
    let config = env.config_with_rules(&accounts, "", RULES_V2);
    // The state a crash after a successful reply leaves: pending, one attempt, reply posted.
    let message = "Hi @c1, sorry about your refund! Please DM us your order number.";
    crashed_mid_action(
        &env,
        &post,
        &asked,
        "refund-help",
        Action::Reply,
        Some(message),
    )
    .await;
    env.sim.add_owner_reply_for_test(&asked, message);

    let daemon = start(config);
    let db = env.pool().await;
    wait_for("reply action reconciled", T, || async {
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'done'").await == 1
    })
    .await;
    daemon.stop().await;
    let ours = env
        .sim
        .comments()
        .into_iter()
        .filter(|c| c.by_owner)
        .count();
    assert_eq!(ours, 1, "the reply exists once");
    assert_eq!(
        text(&db, "SELECT last_error FROM actions").await.as_deref(),
        Some("reply found when reconciled")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhide_interrupted_by_a_crash_is_completed_by_the_daemon() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let rude = env.sim.add_comment(&post, "troll", "idiot");
    let config = env.config(&accounts, "");
    let daemon = start(config.clone());
    wait_for("hidden", T, || async { hidden(&env, &rude) }).await;
    daemon.stop().await;
    // `igmod undo` recorded its unhide and started the call, then died.
    let store = Store::open(&env.db()).await.expect("store");
    let id = store.record_unhide("acme", &rude).await.expect("unhide");
    store.action_started(id, None).await.expect("started");
    store.close().await;

    let daemon = start(config);
    wait_for("unhidden", T, || async {
        env.sim.comment(&rude).is_some_and(|c| !c.hidden)
    })
    .await;
    daemon.stop().await;
    let db = env.pool().await;
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM actions WHERE action = 'unhide' AND status = 'done'"
        )
        .await,
        1
    );
    assert_eq!(
        env.sim.comment(&rude).map(|c| c.hide_calls),
        Some(1),
        "never hidden again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_another_account_stops_that_account_at_start_and_names_both_ids() {
    let env = Env::new().await;
    // acme's config points at globex's user id: a copy-paste mistake.
    let accounts = env
        .account("acme", ACME, "backfill = true")
        .replace(ACME, GLOBEX)
        + &env.account("other", "17841400000000009", "backfill = true");
    env.sim.add_account(GLOBEX, "globex", "unused-token");
    let post = env.sim.add_media("17841400000000009");
    let scam = env.sim.add_comment(&post, "bot", "forex");
    let daemon = start(env.config(&accounts, ""));
    let db = env.pool().await;
    wait_for("acme stopped, other works", T, || async {
        deleted(&env, &scam)
            && count(
                &db,
                "SELECT COUNT(*) FROM tokens WHERE account = 'acme' AND status = 'invalid'",
            )
            .await
                == 1
    })
    .await;
    daemon.stop().await;
    let reason = text(
        &db,
        "SELECT invalid_reason FROM tokens WHERE account = 'acme'",
    )
    .await
    .unwrap_or_default();
    assert_eq!(
        reason,
        format!(
            "the token belongs to Instagram user {ACME}, but the account is configured with ig_user_id {GLOBEX} (asked 3 times)"
        )
    );
    // /me, asked three times before the mismatch is believed (one garbled answer must not
    // stop an account), and nothing else.
    assert_eq!(env.sim.calls_for(ACME), 3, "only /me");
    // /me also taught the other account its own username (for impersonation checks).
    assert_eq!(
        text(
            &db,
            "SELECT username FROM account_state WHERE account = 'other'"
        )
        .await
        .as_deref(),
        Some("other")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_newest_recent_media_posts_are_watched() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true\nrecent_media = 2");
    let oldest = env.sim.add_media(ACME);
    let middle = env.sim.add_media(ACME);
    let newest = env.sim.add_media(ACME);
    let ignored = env.sim.add_comment(&oldest, "bot", "forex");
    let watched: Vec<String> = [&middle, &newest]
        .iter()
        .map(|p| env.sim.add_comment(p, "bot", "forex"))
        .collect();
    let daemon = start(env.config(&accounts, ""));
    wait_for("scams on the two newest posts deleted", T, || async {
        watched.iter().all(|c| deleted(&env, c))
    })
    .await;
    let polls = env.sim.calls_for(ACME);
    wait_for("another poll", T, || async {
        env.sim.calls_for(ACME) > polls
    })
    .await;
    daemon.stop().await;
    assert!(
        !deleted(&env, &ignored),
        "the third-newest post is not watched"
    );
    assert!(
        env.sim
            .requests()
            .iter()
            .all(|r| r.path != format!("/v25.0/{oldest}/comments"))
    );
}

/// A delete whose answer was lost (outcome unknown) and whose read-back then keeps failing is
/// not retried for ever: after a bounded number of attempts it is `failed`, with the reason,
/// in `status` and `audit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_whose_read_back_keeps_failing_is_given_up_with_the_reason() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    // Answered after the client's 3 s timeout: igmod cannot know whether the delete happened.
    env.sim.set_write_delay(Duration::from_secs(5));
    let scam = env.sim.add_comment(&post, "bot", "forex");
    env.sim.fail_reads_of(&scam);
    let config = env.config(&accounts, "");
    let daemon = start(config);
    let db = env.pool().await;
    wait_for("the action given up", Duration::from_secs(150), || async {
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'failed'").await == 1
    })
    .await;
    daemon.stop().await;
    let attempts = count(&db, "SELECT MAX(attempts) FROM actions").await;
    assert!((2..=8).contains(&attempts), "attempts {attempts}");
    let path = env.dir.path().join("config.toml");
    let (code, out, err) = common::run(common::igmod().args(["status", "-c"]).arg(&path));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 pending, 1 failed"), "{out}");
    let (_, out, _) = common::run(common::igmod().args(["audit", "-c"]).arg(&path));
    assert!(
        out.contains(&format!("{scam} delete (failed: gave up after 8 attempts:")),
        "{out}"
    );
}

/// A hide whose answer was lost is read back before anything else; a read-back answer without
/// the `hidden` field (garbled) proves nothing, so it is read again rather than taken as
/// "visible" and the hide sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbled_read_back_is_read_again_not_taken_as_visible() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    // The hide takes effect but is answered after the client's 3 s timeout.
    env.sim.set_write_delay(Duration::from_secs(5));
    let rude = env.sim.add_comment(&post, "troll", "you idiot");
    env.sim.leave_out_hidden(&rude, 2);
    let config = env.config(&accounts, "");
    let daemon = start(config);
    let db = env.pool().await;
    wait_for("the hide closed", Duration::from_secs(60), || async {
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'done'").await == 1
    })
    .await;
    daemon.stop().await;
    let requests = env.sim.requests();
    let to_comment: Vec<&str> = requests
        .iter()
        .filter(|r| r.path.ends_with(&format!("/{rude}")))
        .map(|r| r.method.as_str())
        .collect();
    assert_eq!(
        to_comment.iter().filter(|m| **m == "POST").count(),
        1,
        "the hide was sent again: {to_comment:?}"
    );
    assert!(
        to_comment.iter().filter(|m| **m == "GET").count() >= 3,
        "two garbled read-backs and a clean one: {to_comment:?}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM actions WHERE last_error = 'already hidden when reconciled'"
        )
        .await,
        1
    );
}

/// A sticker (no text) and comments Meta sends without the username (a token without the
/// comments permission) no longer fail their page for ever: they are recorded as incomplete,
/// decided on what is there, the post's other comments are moderated, and the likely cause
/// is logged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_without_text_or_username_are_recorded_and_the_page_is_not_refused() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    // Empty stands for "left out by Meta" in the simulator.
    let sticker = env.sim.add_comment(&post, "fan", "");
    let anonymous: Vec<String> = (0..3)
        .map(|i| env.sim.add_comment(&post, "", &format!("forex {i}")))
        .collect();
    let scam = env.sim.add_comment(&post, "bot", "forex");
    let config = env.write_config(&accounts, "");
    let logs = env.dir.path().join("stderr.log");
    let child = common::spawn_daemon(&config, Some(&logs));
    wait_for("every scam deleted", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
            && anonymous
                .iter()
                .all(|id| env.sim.comment(id).is_some_and(|c| c.deleted))
    })
    .await;
    common::kill(child.id(), "-TERM");
    assert_eq!(common::wait_exit(child).await, Some(0));
    let db = env.pool().await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM comments WHERE incomplete = 1").await,
        4,
        "the sticker and the three comments without a username"
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM decisions WHERE comment_id = '{sticker}'")
        )
        .await,
        0,
        "nothing to decide on without text"
    );
    assert!(
        !env.sim
            .comment(&sticker)
            .is_some_and(|c| c.hidden || c.deleted)
    );
    let log = std::fs::read_to_string(&logs).expect("log");
    assert_eq!(
        log.matches("comments arrive without their author's username")
            .count(),
        1,
        "{log}"
    );
    assert!(log.contains("instagram_business_manage_comments"), "{log}");
}

/// A comment under the account's own username is its own even when Meta's `from.id` does
/// not match (or is missing): never hidden or deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_under_the_accounts_username_is_its_own() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let own = env
        .sim
        .add_comment(&post, "ACME", "idiot-proof shoes, as you idiots asked");
    let rude = env.sim.add_comment(&post, "troll", "idiot");
    let daemon = start(env.config(&accounts, ""));
    wait_for("the rude comment hidden", T, || async {
        env.sim.comment(&rude).is_some_and(|c| c.hidden)
    })
    .await;
    daemon.stop().await;
    assert!(!env.sim.comment(&own).is_some_and(|c| c.hidden || c.deleted));
    let db = env.pool().await;
    assert_eq!(
        text(
            &db,
            &format!("SELECT disposition FROM comments WHERE id = '{own}'")
        )
        .await,
        Some("own".into())
    );
}
