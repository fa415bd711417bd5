//! Tokens that never lapse: refresh, persistence, operator replacement, "too young".

mod common;

use std::time::Duration;

use common::{ACME, ALL_SCOPES, Env, GLOBEX, INITECH, count, start, text, wait_for};

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
        let hash = igmod::secrets::source_hash(&secrecy::SecretString::from(token));
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
    let hash = igmod::secrets::source_hash(&secrecy::SecretString::from(replacement.to_string()));
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
    // That expiry is only Meta's documented bound: status must not call the token "ok".
    let path = env.dir.path().join("config.toml");
    let (_, out, _) = common::run(common::igmod().args(["status", "-c"]).arg(&path));
    assert!(
        out.contains("  token:      unverified: Meta refused a refresh and never said when it ends; at most 5"),
        "{out}"
    );
    let (_, out, _) = common::run(common::igmod().args(["token", "status", "-c"]).arg(&path));
    assert!(
        out.starts_with("acme: unverified (Meta refused a refresh")
            && out.contains("at the latest"),
        "{out}"
    );
}

async fn token_row(db: &sqlx::SqlitePool, account: &str, column: &str) -> Option<String> {
    text(
        db,
        &format!("SELECT CAST({column} AS TEXT) FROM tokens WHERE account = '{account}'"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_facebook_page_token_is_introspected_and_never_refreshed() {
    let env = Env::new().await;
    let accounts = env.app()
        + &env.facebook_account("acme", ACME, "PAGE", None, &ALL_SCOPES, "backfill = true");
    let post = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&post, "bot", "forex");
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let daemon = start(config.clone());
    wait_for("moderated through graph.facebook.com", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    // A few more polls: still no exchange, no refresh.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    daemon.stop().await;
    assert_eq!(
        env.sim.exchanges(ACME),
        0,
        "a Page token is never exchanged"
    );
    assert_eq!(env.sim.requests_to("/refresh_access_token"), 0);
    assert_eq!(
        env.sim.requests_to("/debug_token"),
        1,
        "validated once at start"
    );
    assert_eq!(
        token_row(&db, "acme", "token_type").await.as_deref(),
        Some("PAGE")
    );
    assert_eq!(
        token_row(&db, "acme", "never_expires").await.as_deref(),
        Some("1")
    );
    assert_eq!(token_row(&db, "acme", "expires_at").await, None);
    assert_eq!(
        token_row(&db, "acme", "scopes").await.as_deref(),
        Some(ALL_SCOPES.join(",").as_str())
    );
    let data_access = token_row(&db, "acme", "data_access_expires_at")
        .await
        .unwrap_or_default();
    assert!(
        (79..=80).contains(&days_from_now(&data_access)),
        "{data_access}"
    );

    // What the operator sees.
    let store = igmod::store::Store::open(&env.db()).await.expect("store");
    let rows = igmod::status::status(&config, &store)
        .await
        .expect("status");
    let table = igmod::status::status_table(&rows);
    assert!(
        table.contains("token:      ok, never expires (Page token); data access 79 days left"),
        "{table}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_facebook_user_token_near_its_end_is_exchanged_and_the_new_one_is_used() {
    let env = Env::new().await;
    let accounts = env.app()
        + &env.facebook_account(
            "acme",
            ACME,
            "USER",
            Some(5),
            &ALL_SCOPES,
            "backfill = true",
        )
        + &env.facebook_account(
            "globex",
            GLOBEX,
            "USER",
            Some(40),
            &ALL_SCOPES,
            "backfill = true",
        );
    let post = env.sim.add_media(ACME);
    env.sim.add_media(GLOBEX);
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let daemon = start(config);
    wait_for("acme's token exchanged", T, || async {
        env.sim.exchanges(ACME) == 1
    })
    .await;
    // Only the exchanged token works from now on.
    let new = env.sim.token_of(ACME).unwrap_or_default();
    env.sim.replace_token(ACME, &new);
    let scam = env.sim.add_comment(&post, "bot", "forex");
    wait_for("polling with the exchanged token", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    daemon.stop().await;
    assert_eq!(token_row(&db, "acme", "token").await, Some(new));
    let expires = token_row(&db, "acme", "expires_at")
        .await
        .unwrap_or_default();
    assert!((59..=60).contains(&days_from_now(&expires)), "{expires}");
    assert_eq!(
        env.sim.exchanges(GLOBEX),
        0,
        "40 days left is more than refresh_before"
    );
    assert_eq!(token_row(&db, "globex", "token").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_accounts_failing_refresh_and_missing_permission_leave_the_others_alone() {
    let env = Env::new().await;
    let accounts = env.app()
        // acme: a user token 2 days from its end whose exchange Meta refuses.
        + &env.facebook_account("acme", ACME, "USER", Some(2), &ALL_SCOPES, "backfill = true")
        // globex: an Instagram Login token of unknown expiry, refreshed normally.
        + &env.account("globex", GLOBEX, "backfill = true")
        // initech: a token without instagram_manage_comments.
        + &env.facebook_account(
            "initech",
            INITECH,
            "PAGE",
            None,
            &["instagram_basic", "pages_show_list"],
            "backfill = true",
        );
    env.sim.fail_exchanges(ACME);
    let posts = [ACME, GLOBEX, INITECH].map(|a| env.sim.add_media(a));
    let config = env.config(&accounts, "");
    let db = env.pool().await;
    let daemon = start(config);
    let scams = posts
        .iter()
        .map(|p| env.sim.add_comment(p, "bot", "forex"))
        .collect::<Vec<_>>();
    wait_for("acme and globex moderate", T, || async {
        scams[..2]
            .iter()
            .all(|id| env.sim.comment(id).is_some_and(|c| c.deleted))
    })
    .await;
    wait_for("globex refreshed", T, || async {
        env.sim.refreshes(GLOBEX) == 1
    })
    .await;
    daemon.stop().await;
    // acme: one attempt (Meta's code 1 is transient: 4 tries with backoff), then the next
    // tomorrow, not at every poll; still moderating with its token.
    assert_eq!(env.sim.exchanges(ACME), 0);
    let exchange_calls = "SELECT COUNT(*) FROM api_calls WHERE account = 'acme' AND endpoint LIKE '%/oauth/access_token'";
    assert_eq!(count(&db, exchange_calls).await, 4);
    let next = token_row(&db, "acme", "next_check_at")
        .await
        .unwrap_or_default();
    assert!(
        igmod::timefmt::parse(&next).is_some_and(|t| (t - chrono::Utc::now()).num_hours() >= 23),
        "{next}"
    );
    assert_eq!(
        token_row(&db, "acme", "status").await.as_deref(),
        Some("ok")
    );
    // initech: stopped, saying which permission is missing; nothing of it was moderated.
    assert_eq!(
        token_row(&db, "initech", "status").await.as_deref(),
        Some("invalid")
    );
    let reason = token_row(&db, "initech", "invalid_reason")
        .await
        .unwrap_or_default();
    assert!(
        reason.contains("lacks the permission instagram_manage_comments"),
        "{reason}"
    );
    assert!(env.sim.comment(&scams[2]).is_some_and(|c| !c.deleted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_check_job_revalidates_between_polls_and_stops_a_dead_token() {
    let env = Env::new().await;
    let accounts = env.app()
        + &env
            .facebook_account("acme", ACME, "PAGE", None, &ALL_SCOPES, "backfill = true")
            .replace("poll_interval = \"1s\"", "poll_interval = \"1h\"")
        + &env.account("globex", GLOBEX, "backfill = true");
    env.sim.add_media(ACME);
    let globex_post = env.sim.add_media(GLOBEX);
    // Every second instead of every six hours.
    let config = env.config(&accounts, "token_check = \"* * * * * *\"");
    let db = env.pool().await;
    let daemon = start(config);
    wait_for("three validations", T, || async {
        env.sim.requests_to("/debug_token") >= 3
    })
    .await;
    // acme's first poll has finished (on a busy machine it can outlast three validations,
    // and a poll still running would notice the dead token itself).
    wait_for("acme's first poll to finish", T, || async {
        count(
            &db,
            "SELECT COUNT(*) FROM account_state WHERE account = 'acme' AND last_poll_at IS NOT NULL",
        )
        .await
            == 1
    })
    .await;
    let media_lists = env.sim.requests_to(&format!("/{ACME}/media"));
    assert_eq!(media_lists, 1, "validations do not poll: one poll an hour");
    // The Page token dies (a password change); acme does not poll again for an hour, so only
    // the token check can notice.
    env.sim.kill_token(ACME, 460);
    wait_for("acme stopped by the token check", T, || async {
        token_row(&db, "acme", "status").await.as_deref() == Some("invalid")
    })
    .await;
    let reason = token_row(&db, "acme", "invalid_reason")
        .await
        .unwrap_or_default();
    // The check asks debug_token, then reads the account with the token: the token can die
    // between the two, and then the read's error names the cause instead.
    assert!(
        reason.contains("Facebook says the token is not valid")
            || reason == "token invalidated by a password change (code 190, subcode 460)",
        "{reason}"
    );
    assert_eq!(
        env.sim.requests_to(&format!("/{ACME}/media")),
        1,
        "acme did not poll: the token check noticed"
    );
    // globex goes on.
    let scam = env.sim.add_comment(&globex_post, "bot", "forex");
    wait_for("globex still moderates", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    let checks = env.sim.requests_to("/debug_token");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        env.sim.requests_to("/debug_token"),
        checks,
        "a stopped account is not checked in a loop"
    );
    daemon.stop().await;
}

/// Runs `igmod` with its stdout and stderr in files.
fn spawn_igmod(
    config: &std::path::Path,
    out: &std::path::Path,
    err: &std::path::Path,
) -> common::KillOnDrop {
    let file = |p: &std::path::Path| std::fs::File::create(p).expect("output file");
    common::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_igmod"))
            .env_remove("RUST_LOG")
            .args(["run", "-c"])
            .arg(config)
            .stdout(file(out))
            .stderr(file(err)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_app_secret_leaks_through_refreshes_a_190_transient_errors_and_paging() {
    let env = Env::new().await;
    let accounts = env.app()
        // acme: Instagram Login, expiry unknown → refreshed; 60 comments → a paging.next URL.
        + &env.account("acme", ACME, "backfill = true")
        // globex: Facebook Login user token 5 days from its end → debug_token and exchanged.
        + &env.facebook_account("globex", GLOBEX, "USER", Some(5), &ALL_SCOPES, "backfill = true")
        // initech: its token is dead from the start (code 190).
        + &env.account("initech", INITECH, "backfill = true");
    // The webhook receiver with its verify token; Facebook Login calls must carry their
    // appsecret_proof.
    let port = common::free_port();
    let verify_token = "VERIFY-SECRET-3d9b7a";
    let verify_file = env.dir.path().join("verify.token");
    std::fs::write(&verify_file, verify_token).expect("verify token");
    let accounts = format!(
        "[webhook]\nlisten = \"127.0.0.1:{port}\"\nverify_token_file = \"{}\"\n\n{accounts}",
        verify_file.display()
    );
    env.sim.require_appsecret_proof(true);
    env.sim.kill_token(INITECH, 463);
    let post = env.sim.add_media(ACME);
    for i in 0..60 {
        env.sim.add_comment(&post, &format!("fan{i}"), "lovely");
    }
    env.sim.add_comment(&post, "bot", "forex");
    env.sim.add_media(GLOBEX);
    env.sim.fail_next(2);
    let log_dir = env.dir.path().join("logs");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    let config = env
        .config(
            &accounts,
            &format!(
                "log_level = \"debug,sqlx=warn\"\nlog_dir = \"{}\"",
                log_dir.display()
            ),
        )
        .path;
    let (out, err) = (env.dir.path().join("stdout"), env.dir.path().join("stderr"));
    let child = spawn_igmod(&config, &out, &err);
    let db = env.pool().await;
    wait_for(
        "refresh, exchange, dead token and every comment",
        T,
        || async {
            env.sim.refreshes(ACME) == 1
                && env.sim.exchanges(GLOBEX) == 1
                && count(
                    &db,
                    "SELECT COUNT(*) FROM tokens WHERE account = 'initech' AND status = 'invalid'",
                )
                .await
                    == 1
                && count(&db, "SELECT COUNT(*) FROM comments").await == 61
        },
    )
    .await;
    // Webhooks: verification right and wrong, a forged and a signed delivery.
    let hook = format!("http://127.0.0.1:{port}/webhook");
    let http = reqwest::Client::new();
    for token in [verify_token, "wrong-token"] {
        let _ = http
            .get(format!(
                "{hook}?hub.mode=subscribe&hub.challenge=42&hub.verify_token={token}"
            ))
            .send()
            .await;
    }
    let scam = env.sim.add_comment(&post, "bot2", "forex again");
    let body = serde_json::json!({"object": "instagram", "entry": [{"id": ACME, "time": chrono::Utc::now().timestamp(),
        "field": "comments", "value": {"id": scam, "text": "forex again",
        "from": {"id": "9", "username": "bot2"}, "media": {"id": post}}}]})
    .to_string();
    for signature in [
        "sha256=00".to_string(),
        igmod::simulator::Simulator::sign_webhook(Env::APP_SECRET, body.as_bytes()),
    ] {
        let status = http
            .post(&hook)
            .header("x-hub-signature-256", signature)
            .body(body.clone())
            .send()
            .await
            .map(|r| r.status().as_u16());
        assert!(matches!(status, Ok(200 | 403)), "{status:?}");
    }
    wait_for("the webhook's scam deleted", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    common::kill(child.id(), "-TERM");
    assert_eq!(common::wait_exit(child).await, Some(0));

    let secrets = [
        Env::token("acme"),
        Env::token("globex"),
        Env::token("initech"),
        Env::APP_SECRET.to_string(),
        verify_token.to_string(),
    ];
    let mut outputs = vec![
        (
            "stdout".to_string(),
            std::fs::read_to_string(&out).expect("stdout"),
        ),
        (
            "stderr".to_string(),
            std::fs::read_to_string(&err).expect("stderr"),
        ),
    ];
    for entry in std::fs::read_dir(&log_dir).expect("logs").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        outputs.push((entry.path().display().to_string(), text));
    }
    let logs: String = outputs.iter().map(|(_, t)| t.as_str()).collect();
    // The run did go through everything the leak check is about.
    for expected in [
        "access token refreshed",
        "token validated",
        "transient graph api error, retrying",
        "ACCOUNT STOPPED",
        "code 190, subcode 463",
        "webhook receiver listening",
        "webhook callback verified by meta",
        "webhook requests refused",
        "webhook comments taken",
        "shutting down",
    ] {
        assert!(
            logs.contains(expected),
            "missing {expected:?} in the logs:\n{logs}"
        );
    }
    assert!(!logs.contains("panicked"), "{logs}");
    for (name, text) in &outputs {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{secret} leaked into {name}"
            );
        }
        assert!(
            !text.contains("access_token="),
            "a URL with a token leaked into {name}"
        );
        assert!(
            !text.contains("client_secret"),
            "a token exchange URL leaked into {name}"
        );
        assert!(
            !text.contains("appsecret_proof="),
            "a URL with an appsecret_proof leaked into {name}"
        );
    }
    // The database: refreshed tokens in tokens.token, nothing anywhere else; never the app
    // secret or the dead token.
    let holders = common::secret_holders(&db, &secrets).await;
    assert_eq!(
        holders,
        [
            format!("tokens.token: {}", Env::token("acme")),
            format!("tokens.token: {}", Env::token("globex")),
        ],
        "where secrets are stored"
    );
}

/// The simulator refuses a token in the query except on the three token calls whose
/// documented form carries it, so any igmod call that put it there would fail the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_refuses_a_token_in_the_query_outside_the_token_calls() {
    let env = Env::new().await;
    let _ = env.account("acme", ACME, "");
    let token = Env::token("acme");
    let http = reqwest::Client::new();
    let me = format!("{}/v25.0/me", env.sim.base_url());
    let in_query = http
        .get(&me)
        .query(&[("access_token", token.as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(in_query.status().as_u16(), 400);
    let body = in_query.text().await.expect("body");
    assert!(body.contains("Authorization header"), "{body}");
    let in_header = http
        .get(&me)
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(in_header.status().as_u16(), 200);
}
