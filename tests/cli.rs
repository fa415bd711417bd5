//! The real `igmod` binary: config checking, rule testing, the daemon under signals, the demo.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{ACME, Env, count, igmod, kill, run, wait_exit, wait_for};

const T: Duration = Duration::from_secs(20);
const EXAMPLE: &str = include_str!("../config.toml.example");
const STARTER: &str = include_str!("../rules/starter.toml");
/// The example account's rule selection, as the example writes it.
const EXAMPLE_RULES: &str = "rules = [\"trusted\", \"starter\", \"scam-model\", \"scam-model-unsure-language\", \"lookalike-links\", \"review-links-elsewhere\", \"review-self-promotion\", \"review-no-reply\", \"scam-model-unknown-language\", \"scam-model-other-languages\"]";

/// The example with its account's rule selection replaced by `rules`: fails, rather than
/// testing the whole example, when the example no longer writes [`EXAMPLE_RULES`].
fn example_selecting(rules: &str) -> String {
    assert!(
        EXAMPLE.contains(EXAMPLE_RULES),
        "config.toml.example's selection changed: update EXAMPLE_RULES"
    );
    EXAMPLE.replace(EXAMPLE_RULES, rules)
}

/// A temp dir holding `config.toml` with `text`, the starter pack it includes and the
/// default model its `scam-model` rule reads.
fn example_dir(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("rules")).expect("rules dir");
    std::fs::write(dir.path().join("rules/starter.toml"), STARTER).expect("starter");
    std::fs::create_dir_all(dir.path().join("models")).expect("models dir");
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/scam.model");
    std::fs::copy(model, dir.path().join("models/scam.model")).expect("model");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

/// 1-based line of the first line of `text` starting with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .map_or(0, |i| i + 1)
}

#[test]
fn the_example_config_is_valid_and_its_summary_shows_no_secret() {
    let (_dir, path) = example_dir(EXAMPLE);
    let (code, out, err) = run(igmod()
        .args(["check-config", "-c"])
        .arg(&path)
        .env("IGMOD_TOKEN_ACME", "EAAG-SECRET-example"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("acme (ig user 17841400000000001, Instagram login, token from env IGMOD_TOKEN_ACME): every 2m, budget 200 calls/hour, 20 newest posts, backfill off"), "{out}");
    assert!(
        out.contains("rules: scam-model, scam-model-unsure-language, lookalike-links, review-links-elsewhere, review-self-promotion, review-no-reply, scam-model-unknown-language, scam-model-other-languages, scam, scam-dm, profanity, links, mention-spam, trusted"),
        "{out}"
    );
    // The account runs the starter pack and the default model, whose figures are shown.
    assert!(
        out.contains("backfill off, rules: scam-model, scam-model-unsure-language, lookalike-links, review-links-elsewhere, review-self-promotion, review-no-reply, scam-model-unknown-language, scam-model-other-languages, trusted, starter-investment-scam,"),
        "{out}"
    );
    assert!(
        out.contains("\nmodel models/scam.model: sha256 ")
            && out.contains("5-fold cross-validation at score >= 0.5: precision 0.9"),
        "{out}"
    );
    assert!(!out.contains("EAAG-SECRET") && !err.contains("EAAG-SECRET"));

    // The same file through IGMOD_CONFIG.
    let (code, _, _) = run(igmod()
        .arg("check-config")
        .env("IGMOD_CONFIG", &path)
        .env("IGMOD_TOKEN_ACME", "x"));
    assert_eq!(code, 0);
}

#[test]
fn a_bad_config_is_refused_with_every_problem_located_and_exit_78() {
    let bad = EXAMPLE
        .replace("hourly_budget = 200", "hourly_budget = 0")
        .replace("poll_interval = \"2m\"", "poll_interval = \"2 fortnights\"")
        .replace(
            r"regex = ['(?i)\bdm\s+@\w+\s+(for|to)\b']",
            "regex = ['(unclosed']",
        );
    let (_dir, path) = example_dir(&bad);
    let p = path.display().to_string();
    for sub in [&["check-config"][..], &["run"][..]] {
        let (code, out, err) = run(igmod()
            .args(sub)
            .arg("-c")
            .arg(&path)
            .env("IGMOD_TOKEN_ACME", "x"));
        assert_eq!(code, 78, "{sub:?}: {out}{err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with(&p)).collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert!(
            lines[0].starts_with(&format!(
                "{p}:{}:17: accounts.poll_interval: invalid duration \"2 fortnights\"",
                line_of(&bad, "poll_interval")
            )),
            "{err}"
        );
        assert_eq!(
            lines[1],
            format!(
                "{p}:{}:17: accounts.hourly_budget: 0 must be between 1 and 1000000",
                line_of(&bad, "hourly_budget")
            )
        );
        assert_eq!(
            lines[2],
            format!(
                "{p}:{}:10: rules.regex: invalid regex pattern \"(unclosed\": unclosed group",
                line_of(&bad, "regex = ['(unclosed")
            )
        );
    }
    // A missing token variable is a config error too.
    let (code, _, err) = run(igmod()
        .args(["check-config", "-c"])
        .arg(&path)
        .env_remove("IGMOD_TOKEN_ACME"));
    assert_eq!(code, 78);
    let expected = format!(
        ":{}:13: accounts.token_env: environment variable IGMOD_TOKEN_ACME is not set",
        line_of(&bad, "token_env")
    );
    assert!(err.contains(&expected), "{err}");
    // A syntax error.
    std::fs::write(&path, "[daemon\n").expect("write");
    let (code, _, err) = run(igmod().args(["check-config", "-c"]).arg(&path));
    assert_eq!(code, 78);
    assert!(err.starts_with(&format!("{p}:1:8: ")), "{err}");
}

#[test]
fn rules_test_explains_decisions_on_the_example_rules() {
    // The example's own rules, selected by an account as an operator would.
    let own =
        "rules = [\"trusted\", \"scam\", \"scam-dm\", \"profanity\", \"links\", \"mention-spam\"]";
    let (_dir, path) = example_dir(&example_selecting(own));
    let heading = "rules: account \"acme\"'s (6 rules; the first account: --account NAME for another, --all-rules for every rule loaded)\n";
    let cases: &[(&[&str], &str)] = &[
        (
            &["FOREX!"],
            "matched rule \"scam\" (delete)\n  - word \"forex\": \"FOREX\" at 0..5\ndecision: delete (rule \"scam\")\n",
        ),
        (
            &["--username", "acme_support", "idiot"],
            "matched rule \"profanity\" (hide)\n  - word \"idiot\": \"idiot\" at 0..5\nmatched rule \"trusted\" (approve)\n  - username \"acme_support\" matches \"acme_support\"\ndecision: approve (rule \"trusted\")\n",
        ),
        (
            &["--account", "acme", "see https://shop.acme.com/x"],
            "no rule matches: igmod leaves this comment alone\n",
        ),
        (
            &["see cheap.biz and @a @b @c @d"],
            "matched rule \"links\" (hide)\n  - link \"cheap.biz\": \"cheap.biz\" at 4..13\nmatched rule \"mention-spam\" (hide)\n  - 4 mentions (more than 3)\ndecision: hide (rule \"links\")\n",
        ),
        (
            &["dm @bob to get rich"],
            "matched rule \"scam-dm\" (delete)\n  - regex \"(?i)\\bdm\\s+@\\w+\\s+(for|to)\\b\": \"dm @bob to\" at 0..10\ndecision: delete (rule \"scam-dm\")\n",
        ),
        (
            &["Join my 𝓯𝓸𝓻𝓮𝔁 team"],
            "matched rule \"scam\" (delete)\n  - word \"forex\": \"𝓯𝓸𝓻𝓮𝔁\" at 8..28\ndecision: delete (rule \"scam\")\n",
        ),
    ];
    for (args, expected) in cases {
        let (code, out, err) = run(igmod()
            .args(["rules", "test", "-c"])
            .arg(&path)
            .args(*args)
            .env("IGMOD_TOKEN_ACME", "x"));
        assert_eq!(code, 0, "{err}");
        let heading = if args.contains(&"--account") {
            "rules: account \"acme\"'s (6 rules)\n"
        } else {
            heading
        };
        // None of these is long enough for its language to be known.
        assert_eq!(
            out,
            format!("{heading}language: unknown\n{expected}"),
            "{args:?}"
        );
    }
}

/// The example hides links dressed up as the brand's site, and says which site they imitate;
/// the brand's own links stay up.
#[test]
fn the_example_hides_links_that_imitate_the_brands_domain() {
    let (_dir, path) = example_dir(EXAMPLE);
    let test = |text: &str| {
        let (code, out, err) = run(igmod()
            .args(["rules", "test", "-c"])
            .arg(&path)
            .arg(text)
            .env("IGMOD_TOKEN_ACME", "x"));
        assert_eq!(code, 0, "{err}");
        out
    };
    for (text, host) in [
        (
            "Refund desk for late orders: acme-support.com/claim",
            "acme-support.com",
        ),
        (
            "winners list 🎉 https://acme.com.prize-center.shop/list",
            "acme.com.prize-center.shop",
        ),
        ("claim at аcme.com/win", "acme.com"),
    ] {
        let out = test(text);
        assert!(
            out.contains(&format!(
                "matched rule \"lookalike-links\" (hide)\n  - link \"{host}\" imitates \"acme.com\""
            )),
            "{text}: {out}"
        );
        assert!(
            out.contains("\ndecision: hide") || out.contains("\ndecision: delete"),
            "{out}"
        );
    }
    for text in [
        "Ordered at https://acme.com/shop, arrived fast",
        "help.acme.com/returns worked",
    ] {
        let out = test(text);
        assert!(!out.contains("lookalike-links"), "{text}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_moderates_stops_cleanly_on_sigterm_and_resumes_without_repeats() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&post, "bot", "forex");
    let rude = env.sim.add_comment(&post, "troll", "idiot");
    env.sim.fail_next(1);
    let config = env.write_config(&accounts, "");
    let logs = env.dir.path().join("stderr.log");

    let start = || common::spawn_daemon(&config, Some(&logs));
    let child = start();
    wait_for("first actions", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
            && env.sim.comment(&rude).is_some_and(|c| c.hidden)
    })
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0), "SIGTERM exits 0");

    let child = start();
    let later = env.sim.add_comment(&post, "bot", "crypto signal");
    wait_for("new scam after restart", T, || async {
        env.sim.comment(&later).is_some_and(|c| c.deleted)
    })
    .await;
    kill(child.id(), "-INT");
    assert_eq!(wait_exit(child).await, Some(0), "SIGINT exits 0");

    for id in [&scam, &later] {
        assert_eq!(env.sim.comment(id).map(|c| c.delete_calls), Some(1));
    }
    assert_eq!(env.sim.comment(&rude).map(|c| c.hide_calls), Some(1));
    let db = env.pool().await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM decisions").await, 3);

    // The token never leaves the process: not in the logs, and in the database only the token
    // igmod refreshed, in the `tokens` table. (The simulator's refreshed tokens start with the
    // original, so one search finds both.)
    let token = Env::token("acme");
    let log = std::fs::read_to_string(&logs).expect("logs");
    assert!(log.contains("action applied"), "{log}");
    assert!(log.contains("transient graph api error, retrying"), "{log}");
    assert!(log.contains("access token refreshed"), "{log}");
    assert!(!log.contains(&token), "token leaked into the log");
    assert!(
        !log.contains("access_token"),
        "a paging URL leaked into the log"
    );
    let holders = common::secret_holders(&db, std::slice::from_ref(&token)).await;
    assert_eq!(
        holders,
        [format!("tokens.token: {token}")],
        "where tokens are stored"
    );
    db.close().await;
}

#[test]
fn the_demo_shows_comments_being_moderated() {
    let dir = tempfile::tempdir().expect("dir");
    let (code, out, err) = run(igmod()
        .args(["demo", "--seconds", "4", "--dir"])
        .arg(dir.path()));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("What igmod did"), "{out}");
    assert!(out.contains("→ on Instagram: deleted"), "{out}");
    assert!(out.contains("→ on Instagram: hidden"), "{out}");
    // The first comments are a scam in another language, self-promotion and an honest
    // comment in another language: the first two caught (hidden or deleted, or in another
    // language flagged for a person, as the example config does), the last left alone.
    for (kind, gone) in [
        ("scams in other languages", true),
        ("self-promotion spam", true),
        ("honest comments in other languages", false),
    ] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{kind}: ")))
            .unwrap_or_else(|| panic!("no line for {kind}: {out}"));
        let numbers: Vec<usize> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        let [posted, removed, flagged] = numbers[..] else {
            panic!("{line}")
        };
        assert!(posted >= 1, "{line}");
        assert_eq!(removed + flagged, if gone { posted } else { 0 }, "{line}");
    }
    assert!(dir.path().join("igmod.db").exists());
    // Most comments came by webhook; the polls found those whose delivery was dropped.
    let hooked: usize = out
        .split("Acted on by webhook: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(hooked > 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_schedule_json_logs_and_log_dir_work_in_the_binary() {
    let env = Env::new().await;
    let accounts = env
        .account("acme", ACME, "backfill = true")
        .replace("poll_interval = \"1s\"", "poll_cron = \"* * * * * *\"");
    let post = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&post, "bot", "forex");
    let log_dir = env.dir.path().join("logs");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    let config = env.write_config(
        &accounts,
        &format!("log_format = \"json\"\nlog_dir = \"{}\"", log_dir.display()),
    );
    let mut child = common::spawn(
        igmod()
            .args(["run", "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    wait_for("scam deleted on a cron schedule", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    let polls = env.sim.calls_for(ACME);
    wait_for("two more cron polls", T, || async {
        env.sim.calls_for(ACME) >= polls + 2
    })
    .await;
    kill(child.id(), "-TERM");
    let stderr = child.stderr.take();
    assert_eq!(wait_exit(child).await, Some(0));
    let mut err = String::new();
    if let Some(mut s) = stderr {
        std::io::Read::read_to_string(&mut s, &mut err).expect("stderr");
    }
    assert!(
        err.trim().is_empty(),
        "with log_dir nothing goes to stderr: {err}"
    );

    let files: Vec<_> = std::fs::read_dir(&log_dir)
        .expect("logs")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(name, format!("igmod.{today}.log"), "daily file name");
    let text = std::fs::read_to_string(&files[0]).expect("log");
    let applied: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("every line is JSON"))
        .filter(|v| v["fields"]["message"] == "action applied")
        .collect();
    assert_eq!(applied.len(), 1, "{text}");
    assert_eq!(applied[0]["span"]["comment_id"], scam.as_str());
    assert_eq!(applied[0]["spans"][0]["account"], "acme");
}

#[test]
fn problems_in_included_rule_files_are_located_in_those_files() {
    let text = example_selecting("rules = [\"trusted\", \"starter\", \"nosuchset\"]");
    let (dir, path) = example_dir(&text);
    let starter = dir.path().join("rules/starter.toml");
    let broken = STARTER
        .replacen("max_emojis = 20", "max_emojis = 20\nemoji_count = 3", 1)
        .replacen(
            "max_mentions = 5",
            "max_mentions = 5\nregex = ['[unclosed']",
            1,
        );
    std::fs::write(&starter, &broken).expect("write");
    let (code, _, err) = run(igmod()
        .args(["check-config", "-c"])
        .arg(&path)
        .env("IGMOD_TOKEN_ACME", "x"));
    assert_eq!(code, 78, "{err}");
    let s = starter.display().to_string();
    let broken_line = |needle: &str| {
        broken
            .lines()
            .position(|l| l.starts_with(needle))
            .map_or(0, |i| i + 1)
    };
    // A syntax-level problem stops that file's parse; config.toml's own problems are still listed.
    assert!(
        err.contains(&format!(
            "{s}:{}:1: unknown field `emoji_count`",
            broken_line("emoji_count")
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            ":{}:32: accounts.rules: no rule or rule set named \"nosuchset\"",
            line_of(&text, "rules = [")
        )),
        "{err}"
    );
    assert!(
        !err.contains("named \"starter\""),
        "the broken file's set is not reported again: {err}"
    );

    std::fs::write(
        &starter,
        STARTER.replacen(
            "max_mentions = 5",
            "max_mentions = 5\nregex = ['[unclosed']",
            1,
        ),
    )
    .expect("write");
    let (code, _, err) = run(igmod()
        .args(["check-config", "-c"])
        .arg(&path)
        .env("IGMOD_TOKEN_ACME", "x"));
    assert_eq!(code, 78);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].ends_with("accounts.rules: no rule or rule set named \"nosuchset\" (rules: scam-model, scam-model-unsure-language, lookalike-links, review-links-elsewhere, review-self-promotion, review-no-reply, scam-model-unknown-language, scam-model-other-languages, scam, scam-dm, profanity, links, mention-spam, trusted, starter-investment-scam, starter-testimonial-scam, starter-money-handle, starter-contact-bait, starter-contact-bait-question, starter-contact-disguised, starter-check-my-bio, starter-link-in-bio, starter-bare-link, starter-fake-giveaway, starter-fake-giveaway-doubt, starter-fund-recovery, starter-follower-selling, starter-link-drop, starter-emoji-flood, starter-impersonation, starter-bot-wave, starter-mention-flood, starter-self-promo, starter-money-bait, starter-testimony, starter-money-bait-amounts, starter-first-people, starter-self-promo-en, starter-follow-exchange, starter-romance-bait, starter-follower-selling-intl, starter-fake-giveaway-intl, starter-fund-recovery-intl, starter-contact-bait-intl; rule sets: starter, starter-floods)"), "{err}");
    assert_eq!(
        lines[1],
        format!(
            "{s}:{}:10: rules.regex: invalid regex pattern \"[unclosed\": unclosed character class",
            // The line after the mention flood's `max_mentions = 5`.
            STARTER
                .lines()
                .position(|l| l == "max_mentions = 5")
                .map_or(0, |at| at + 2)
        )
    );
}

#[test]
fn an_account_can_take_the_starter_set_by_name() {
    let text = example_selecting("rules = [\"trusted\", \"starter\"]");
    let (_dir, path) = example_dir(&text);
    let (code, out, err) = run(igmod()
        .args(["check-config", "-c"])
        .arg(&path)
        .env("IGMOD_TOKEN_ACME", "x"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rules: trusted, starter-investment-scam, starter-testimonial-scam"),
        "{out}"
    );
    let (_, out, _) = run(igmod()
        .args(["rules", "test", "--account", "acme", "-c"])
        .arg(&path)
        .arg("FOREX!")
        .env("IGMOD_TOKEN_ACME", "x"));
    assert_eq!(
        out,
        "rules: account \"acme\"'s (29 rules)
language: unknown
no rule matches: igmod leaves this comment alone
",
        "the example's scam rule is not selected"
    );
}

/// `rules test` says which language the comment is in (what `languages`/`not_languages`
/// see), and a `not_languages` rule's evidence names it.
#[test]
fn rules_test_shows_the_comments_language() {
    // The example's commented rule, uncommented and selected.
    let commented = "# [[rules]]\n# name = \"not-our-languages\"\n# action = \"flag\"\n# not_languages = [\"en\", \"es\"]\n";
    assert!(EXAMPLE.contains(commented), "the example shows the rule");
    let text = example_selecting("rules = [\"not-our-languages\"]")
        .replace(commented, &commented.replace("# ", ""));
    let (_dir, path) = example_dir(&text);
    let heading = "rules: account \"acme\"'s (1 rules; the first account: --account NAME for another, --all-rules for every rule loaded)\n";
    let cases: &[(&str, &str)] = &[
        (
            "Очень красивый цвет, а есть размер побольше?",
            "language: ru (1.00)\nmatched rule \"not-our-languages\" (flag)\n  - language ru (1.00), not one of en, es\ndecision: flag (rule \"not-our-languages\")\n",
        ),
        (
            "Hola, ¿cuándo vuelve a estar disponible la talla pequeña? Gracias",
            "language: es (1.00)\nno rule matches: igmod leaves this comment alone\n",
        ),
        // Too short to tell, but in a script neither language is written in.
        (
            "Очень красиво",
            "language: unknown (Cyrillic)\nmatched rule \"not-our-languages\" (flag)\n  - language unknown (Cyrillic), not one of en, es\ndecision: flag (rule \"not-our-languages\")\n",
        ),
        // Unknown that could be English or Spanish never matches: emoji, a handle, a word.
        (
            "😍😍",
            "language: unknown\nno rule matches: igmod leaves this comment alone\n",
        ),
        (
            "@bruno.silva ok",
            "language: unknown\nno rule matches: igmod leaves this comment alone\n",
        ),
    ];
    for (comment, expected) in cases {
        let (code, out, err) = run(igmod()
            .args(["rules", "test", "-c"])
            .arg(&path)
            .arg(comment)
            .env("IGMOD_TOKEN_ACME", "x"));
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, format!("{heading}{expected}"), "{comment:?}");
    }
}

/// `rules eval`'s group tables tell flags from removals on both sides: a flagged scam counts
/// as caught in the recall but stays up (TP/gone), and a flagged honest comment is not one
/// removed (honest FP/gone).
#[test]
fn rules_eval_groups_count_flagged_scams_as_caught_but_not_gone() {
    let commented = "# [[rules]]\n# name = \"not-our-languages\"\n# action = \"flag\"\n# not_languages = [\"en\", \"es\"]\n";
    let text = example_selecting("rules = [\"scam\", \"not-our-languages\"]")
        .replace(commented, &commented.replace("# ", ""));
    let (dir, path) = example_dir(&text);
    let csv = dir.path().join("labeled.csv");
    std::fs::write(
        &csv,
        "text,label,lang\n\
         forex signals every day,1,en\n\
         lovely colour on the new boots,0,en\n\
         Escreva para mim no direct e eu te ensino a ganhar dinheiro com cripto todos os dias,1,pt\n\
         \"Очень красивый цвет, а есть размер побольше?\",0,ru\n",
    )
    .expect("csv");
    let (code, out, err) = run(igmod()
        .args(["rules", "eval", "-c"])
        .arg(&path)
        .arg(&csv)
        .env("IGMOD_TOKEN_ACME", "x"));
    assert_eq!(code, 0, "{err}");
    let row = |lang: &str| -> Vec<String> {
        out.lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .find(|cols| cols.first().map(String::as_str) == Some(lang))
            .unwrap_or_else(|| panic!("no row for {lang}: {out}"))
    };
    // lang, rows, scams, precision, recall, TP/gone, FN, honest FP/gone
    let en = row("en");
    assert_eq!((en[5].as_str(), en[7].as_str()), ("1/1", "0/0"), "{out}");
    let pt = row("pt");
    assert_eq!((pt[4].as_str(), pt[5].as_str()), ("1.000", "1/0"), "{out}");
    let ru = row("ru");
    assert_eq!(ru[7], "1/0", "{out}");
}

#[test]
fn rules_eval_reports_precision_and_recall_on_labeled_comments() {
    let (_dir, path) = example_dir(EXAMPLE);
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/labeled.csv");
    let (code, out, err) = run(igmod()
        .args(["rules", "eval", "-c"])
        .arg(&path)
        .arg(fixture)
        .env("IGMOD_TOKEN_ACME", "x"));
    assert_eq!(code, 0, "{err}");
    // Without --account: what the first account runs (trusted, the starter pack, the model),
    // and the first line says so.
    assert!(
        out.starts_with("rules: account \"acme\"'s (37 rules; the first account"),
        "{out}"
    );
    assert!(out.contains("\nscam-model "), "{out}");
    assert!(!out.contains("\nprofanity "), "not selected: {out}");
    assert!(
        out.contains("  labeled 0          0          20\n"),
        "no innocent row touched: {out}"
    );
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["starter-contact-bait", "3", "3", "0"]),
        "{out}"
    );
    // --all-rules: every rule loaded. Of 20 spam rows only #17 (a vague "collab" message) is
    // missed; of 20 innocent rows the example's own rules hit #26 ("forex trader") and #37
    // ("no idiot would…").
    let (code, out, err) = run(igmod()
        .args(["rules", "eval", "--all-rules", "-c"])
        .arg(&path)
        .arg(fixture)
        .env("IGMOD_TOKEN_ACME", "x"));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("rules: every rule loaded (44)"), "{out}");
    assert!(
        out.contains("  labeled 1         19           1\n  labeled 0          2          18\n"),
        "{out}"
    );
    assert!(
        out.contains("precision 0.905\nrecall 0.950\nF1 0.927\n"),
        "{out}"
    );
    // --mistakes: those three rows, in the order read, with what decided and the score.
    let wrong = tempfile::tempdir().expect("dir");
    let mistakes = wrong.path().join("mistakes.csv");
    // `rules eval ARGS --mistakes OUT -c CONFIG INPUT`.
    let eval_to = |args: &[&str], out: &std::path::Path, input: &std::path::Path| {
        run(igmod()
            .args(["rules", "eval"])
            .args(args)
            .arg("--mistakes")
            .arg(out)
            .arg("-c")
            .arg(&path)
            .arg(input)
            .env("IGMOD_TOKEN_ACME", "x"))
    };
    let fixture = std::path::Path::new(fixture);
    let (code, _, err) = eval_to(&["--all-rules"], &mistakes, fixture);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("3 rows the rules got wrong written to"),
        "{err}"
    );
    let mut reader = csv::Reader::from_path(&mistakes).expect("mistakes csv");
    assert_eq!(
        reader.headers().expect("header"),
        vec![
            "source", "lang", "label", "action", "rule", "score", "username", "text"
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.expect("row").iter().map(str::to_string).collect())
        .collect();
    let summary: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| (r[2].as_str(), r[3].as_str(), r[4].as_str(), r[7].as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "1",
                "",
                "",
                "amazing content, we should collab, I sent you a message"
            ),
            (
                "0",
                "delete",
                "scam",
                "I'm a forex trader by day and I still buy your shoes haha"
            ),
            (
                "0",
                "hide",
                "profanity",
                "This is the best brand, no idiot would say otherwise"
            ),
        ],
        "{rows:?}"
    );
    for r in &rows {
        let score: f32 = r[5].parse().expect("the model's score");
        assert!((0.0..=1.0).contains(&score), "{r:?}");
        assert!(r[0].ends_with("labeled.csv"), "{r:?}");
    }
    // Under --cv: every fold's mistakes, as many as the pooled matrix counts, each scored by
    // the model that never saw it (a row the model hid scores at least its threshold).
    let (code, out, err) = eval_to(&["--cv", "2"], &mistakes, fixture);
    assert_eq!(code, 0, "{err}");
    let pooled = out.split("pooled over every fold:").nth(1).expect("pooled");
    let count = |line: &str| -> Vec<u64> {
        let row = pooled
            .lines()
            .find(|l| l.trim_start().starts_with(line))
            .unwrap_or_else(|| panic!("{line}: {pooled}"));
        row.split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    let (missed, wrongly) = (count("labeled 1")[2], count("labeled 0")[1]);
    let rows: Vec<csv::StringRecord> = csv::Reader::from_path(&mistakes)
        .expect("mistakes csv")
        .records()
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(
        rows.iter().filter(|r| &r[2] == "1").count() as u64,
        missed,
        "{out}"
    );
    assert_eq!(
        rows.iter().filter(|r| &r[2] == "0").count() as u64,
        wrongly,
        "{out}"
    );
    // Each row's score is its fold model's: a row a model rule acted on scores at least the
    // lowest of their thresholds (0.5), and a scam missed scores under what would have hidden
    // it (0.85 in English). An honest emoji-only comment the shipped example once hid at a
    // held-out 0.946 ("🔥🔥🔥") is no longer moderated on a score alone.
    for r in &rows {
        let score: f32 = r[5].parse().expect("score");
        if r[4].starts_with("scam-model") {
            assert!(score >= 0.5, "{r:?}");
        }
        if &r[2] == "1" {
            assert!(score < 0.85 || !r[3].is_empty(), "{r:?}");
        }
    }
    assert!(missed > 0, "{out}");
    assert!(!rows.iter().any(|r| &r[7] == "🔥🔥🔥"), "{out}");
    // The file is for reading, often in a spreadsheet: a commenter's text that would be a
    // formula there is written inert. And it never replaces a labeled file it read.
    let labeled = wrong.path().join("labeled.csv");
    std::fs::write(
        &labeled,
        "username,text,label\n@x,\"=HYPERLINK(\"\"http://evil\"\")\",1\n",
    )
    .expect("csv");
    let (code, _, err) = eval_to(&[], &mistakes, &labeled);
    assert_eq!(code, 0, "{err}");
    let written = std::fs::read_to_string(&mistakes).expect("mistakes");
    assert!(
        written.ends_with(",'@x,\"'=HYPERLINK(\"\"http://evil\"\")\"\n"),
        "{written}"
    );
    let (code, _, err) = eval_to(&[], &labeled, &labeled);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is one of the labeled files read"), "{err}");
    assert!(
        std::fs::read_to_string(&labeled)
            .expect("labeled")
            .contains("HYPERLINK"),
        "the labeled file is intact"
    );
    // Columns can be renamed; a bad label names its line.
    let dir = tempfile::tempdir().expect("dir");
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "body,is_spam\n\"multi\nline FOREX\",1\nhello,2\n").expect("csv");
    let (code, _, err) = run(igmod()
        .args([
            "rules",
            "eval",
            "--text-column",
            "body",
            "--label-column",
            "is_spam",
            "-c",
        ])
        .arg(&path)
        .arg(&csv)
        .env("IGMOD_TOKEN_ACME", "x"));
    assert_eq!(code, 1);
    assert!(
        err.contains("csv line 4: label \"2\" is not 0 or 1"),
        "{err}"
    );
    assert_eq!(err.matches("is not 0 or 1").count(), 1, "said once: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_replay_reports_what_todays_rules_would_change() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&post, "bot", "forex");
    env.sim.add_comment(&post, "fan", "lovely shoes");
    let later_rude = env.sim.add_comment(&post, "critic", "these are trash");
    let config = env.config(&accounts, "");
    let daemon = common::start(config);
    wait_for("scam deleted", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    daemon.stop().await;

    // What operators read after a real run: status and audit, as tables and JSON.
    let path = env.dir.path().join("config.toml");
    let (code, out, err) = run(igmod().args(["status", "-c"]).arg(&path));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!(
            "acme (ig user {ACME})\n  health:     ok\n  token:      ok, 59 days left"
        )),
        "{out}"
    );
    assert!(out.contains("last 24 h:  3 comments seen, 1 decided (delete 1), 1 actions applied, 0 pending, 0 failed"), "{out}");
    let (_, out, _) = run(igmod().args(["status", "--json", "-c"]).arg(&path));
    let json: serde_json::Value = serde_json::from_str(&out).expect("status json");
    assert_eq!(json[0]["account"], "acme");
    assert_eq!(json[0]["hourly_budget"], 20000);
    assert!(
        json[0]["calls_last_hour"].as_i64().is_some_and(|c| c >= 3),
        "{out}"
    );
    let (code, out, _) = run(igmod()
        .args(["audit", "--action", "delete", "-c"])
        .arg(&path));
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "[acme] {scam} delete (done) rule scam: word \"forex\" — @bot: \"forex\""
        )),
        "{out}"
    );
    let (_, out, _) = run(igmod()
        .args(["audit", "--json", "--rule", "profanity", "-c"])
        .arg(&path));
    assert_eq!(out.trim(), "[]");
    let db = env.pool().await;
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM recent_actions WHERE status = 'done'"
        )
        .await,
        1
    );
    db.close().await;

    // The operator adds a word to the profanity rule and replays.
    let text = std::fs::read_to_string(&path).expect("config").replace(
        "words = [\"idiot\", \"scumbag\"]",
        "words = [\"idiot\", \"scumbag\", \"trash\"]",
    );
    std::fs::write(&path, text).expect("write");
    let (code, out, err) = run(igmod()
        .args(["rules", "replay", "--since", "1h", "-c"])
        .arg(&path));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("3 stored comments replayed: 2 unchanged, 1 would change\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "[acme] {later_rude} \"these are trash\": nothing → hide (profanity)"
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_shows_a_commenters_escape_sequences_without_obeying_them() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    // A clear-screen and a window-title sequence in the username and the text.
    let scam = env.sim.add_comment(
        &post,
        "bot\u{1b}[2J\u{1b}]0;pwned\u{7}",
        "forex \u{1b}[31mred\u{202e}",
    );
    let daemon = common::start(env.config(&accounts, ""));
    wait_for("scam deleted", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    daemon.stop().await;
    let path = env.dir.path().join("config.toml");
    let (code, out, err) = run(igmod().args(["audit", "-c"]).arg(&path));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&scam), "{out}");
    for c in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(!out.contains(c), "{c:?} reached the terminal: {out:?}");
    }
    assert!(
        out.contains("@bot\\u{1b}[2J\\u{1b}]0;pwned\\u{7}"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_it_reports_ready_feeds_the_watchdog_and_says_stopping() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    env.sim.add_media(ACME);
    let config = env.write_config(&accounts, "");
    let socket_path = env.dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let child = common::spawn(
        igmod()
            .args(["run", "-c"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "1000000")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let mut messages = Vec::new();
    let mut buf = [0u8; 512];
    while messages
        .iter()
        .filter(|m: &&String| m.contains("WATCHDOG=1"))
        .count()
        < 2
    {
        let n = socket.recv(&mut buf).expect("a notification");
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    kill(child.id(), "-TERM");
    loop {
        let n = socket.recv(&mut buf).expect("a notification");
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        let stopping = m.contains("STOPPING=1");
        messages.push(m);
        if stopping {
            break;
        }
    }
    assert_eq!(wait_exit(child).await, Some(0));
    assert_eq!(
        messages[0], "READY=1\nSTATUS=polling 1 account(s)\n",
        "{messages:?}"
    );
    assert!(
        messages
            .last()
            .is_some_and(|m| m.starts_with("STOPPING=1\n")),
        "{messages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_and_removes_accounts_and_a_broken_config_keeps_the_old_one() {
    let env = Env::new().await;
    let acme = env.account("acme", ACME, "backfill = true");
    let globex = env.account("globex", common::GLOBEX, "backfill = true");
    let acme_post = env.sim.add_media(ACME);
    let globex_post = env.sim.add_media(common::GLOBEX);
    let globex_scam = env.sim.add_comment(&globex_post, "bot", "forex");
    let config = env.write_config(&acme, "");
    let logs = env.dir.path().join("stderr.log");
    let child = common::spawn_daemon(&config, Some(&logs));
    wait_for("acme polled", T, || async { env.sim.calls_for(ACME) >= 2 }).await;
    assert_eq!(env.sim.calls_for(common::GLOBEX), 0);

    // Add globex.
    env.write_config(&(acme.clone() + &globex), "");
    kill(child.id(), "-HUP");
    wait_for("globex polled after reload", T, || async {
        env.sim.comment(&globex_scam).is_some_and(|c| c.deleted)
    })
    .await;

    // Remove acme: its polls stop.
    env.write_config(&globex, "");
    kill(child.id(), "-HUP");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acme_calls = env.sim.calls_for(ACME);
    let acme_scam = env.sim.add_comment(&acme_post, "bot", "forex");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.sim.calls_for(ACME),
        acme_calls,
        "a removed account is not polled"
    );
    assert!(env.sim.comment(&acme_scam).is_some_and(|c| !c.deleted));

    // A broken config is refused; globex keeps running on the old one.
    let path = env.write_config(
        &globex.replace("hourly_budget = 20000", "hourly_budget = -1"),
        "",
    );
    kill(child.id(), "-HUP");
    let later = env.sim.add_comment(&globex_post, "bot", "crypto signal");
    wait_for("globex still moderates", T, || async {
        env.sim.comment(&later).is_some_and(|c| c.deleted)
    })
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let log = std::fs::read_to_string(&logs).expect("log");
    assert!(
        log.contains("reload refused, keeping the running config"),
        "{log}"
    );
    assert!(
        log.contains(&format!("{}:", path.display())),
        "the problem names file:line:col: {log}"
    );
    assert!(
        log.contains("accounts.hourly_budget: -1 must be between 1 and 1000000"),
        "{log}"
    );
    assert!(
        log.contains("reload: account added account=globex"),
        "{log}"
    );
    assert!(
        log.contains("reload: account removed; it stops after its in-flight poll account=acme"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_unhides_what_a_rule_hid_and_says_deletes_cannot_come_back() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let rude1 = env.sim.add_comment(&post, "a", "idiot");
    let rude2 = env.sim.add_comment(&post, "b", "scumbag");
    let scam = env.sim.add_comment(&post, "c", "forex");
    let config = env.write_config(&accounts, "");
    let daemon = common::start(igmod::config::load(&config).expect("config"));
    wait_for("actions applied", T, || async {
        [&rude1, &rude2]
            .iter()
            .all(|id| env.sim.comment(id).is_some_and(|c| c.hidden))
            && env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    daemon.stop().await;

    let (code, out, err) = run(igmod().args(["undo", "-c"]).arg(&config).arg(&rude1));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("{rude1}: unhidden (was hidden by rule profanity)\n")
    );
    assert!(env.sim.comment(&rude1).is_some_and(|c| !c.hidden));
    assert!(
        env.sim.comment(&rude2).is_some_and(|c| c.hidden),
        "only the named comment"
    );

    let (code, out, _) = run(igmod()
        .args(["undo", "--rule", "profanity", "--since", "1h", "-c"])
        .arg(&config));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!("{rude1}: already unhidden\n{rude2}: unhidden (was hidden by rule profanity)\n")
    );
    let (_, out, _) = run(igmod().args(["undo", "-c"]).arg(&config).arg(&scam));
    assert_eq!(
        out,
        format!("{scam}: deleted by rule scam; deletes cannot be undone\n")
    );

    let db = env.pool().await;
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM actions WHERE action = 'unhide' AND status = 'done'"
        )
        .await,
        2
    );
    // The daemon leaves unhidden comments alone: a comment is decided once.
    let daemon = common::start(igmod::config::load(&config).expect("config"));
    let polls = env.sim.calls_for(ACME);
    wait_for("two more polls", T, || async {
        env.sim.calls_for(ACME) >= polls + 2
    })
    .await;
    daemon.stop().await;
    assert!(
        env.sim
            .comment(&rude2)
            .is_some_and(|c| !c.hidden && c.hide_calls == 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_files_are_named_by_day_and_capped_at_log_keep() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    env.sim.add_media(ACME);
    let log_dir = env.dir.path().join("logs");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    // Written in day order: tracing-appender ages files by creation time (by the date in the
    // name where the file system keeps no creation time).
    for day in 1..=6 {
        std::fs::write(log_dir.join(format!("igmod.2026-01-0{day}.log")), "old\n")
            .expect("old log");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(log_dir.join("unrelated.txt"), "keep me\n").expect("other file");
    let config = env.write_config(
        &accounts,
        &format!("log_dir = \"{}\"\nlog_keep = 3", log_dir.display()),
    );
    let child = common::spawn_daemon(&config, None);
    wait_for("a poll", T, || async { env.sim.calls_for(ACME) >= 1 }).await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let mut names: Vec<String> = std::fs::read_dir(&log_dir)
        .expect("logs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(
        names,
        vec![
            "igmod.2026-01-05.log".to_string(),
            "igmod.2026-01-06.log".to_string(),
            format!("igmod.{today}.log"),
            "unrelated.txt".to_string()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_poll_lets_it_finish_and_exits_0() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&post, "bot", "forex");
    env.sim.set_delay(Duration::from_millis(700));
    let config = env.write_config(&accounts, "");
    let child = common::spawn_daemon(&config, None);
    // The media list has been answered (after /me and the token refresh): the poll is under way.
    let media = format!("/v25.0/{ACME}/media");
    wait_for("poll under way", T, || async {
        env.sim.requests().iter().any(|r| r.path == media)
    })
    .await;
    let stopped_at = std::time::Instant::now();
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    assert!(
        stopped_at.elapsed() < igmod::daemon::SHUTDOWN_GRACE,
        "within the grace period"
    );
    // The in-flight poll finished: the scam it had read was deleted, and recorded as done.
    assert!(
        env.sim
            .comment(&scam)
            .is_some_and(|c| c.deleted && c.delete_calls == 1)
    );
    let db = env.pool().await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'done'").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_changes_the_log_level_format_and_destination() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    env.sim.add_media(ACME);
    env.write_config(&accounts, "log_level = \"warn\"");
    let config = env.dir.path().join("config.toml");
    let logs = env.dir.path().join("stderr.log");
    let child = common::spawn_daemon(&config, Some(&logs));
    wait_for("three polls", T, || async { env.sim.calls_for(ACME) >= 3 }).await;
    let quiet = std::fs::read_to_string(&logs).expect("log");
    assert!(
        !quiet.contains("poll done"),
        "warn level hides info lines: {quiet}"
    );
    env.write_config(&accounts, "log_level = \"info\"");
    kill(child.id(), "-HUP");
    let polls = env.sim.calls_for(ACME);
    wait_for("two more polls", T, || async {
        env.sim.calls_for(ACME) >= polls + 2
    })
    .await;
    let loud = std::fs::read_to_string(&logs).expect("log");
    assert!(
        loud.contains("poll done"),
        "info level after reload: {loud}"
    );

    // Another reload moves the logs into daily JSON files.
    let log_dir = env.dir.path().join("logs");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    env.write_config(
        &accounts,
        &format!(
            "log_level = \"info\"\nlog_format = \"json\"\nlog_dir = \"{}\"",
            log_dir.display()
        ),
    );
    kill(child.id(), "-HUP");
    let polls = env.sim.calls_for(ACME);
    wait_for("two more polls", T, || async {
        env.sim.calls_for(ACME) >= polls + 2
    })
    .await;
    kill(child.id(), "-TERM");
    let _ = wait_exit(child).await;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let file =
        std::fs::read_to_string(log_dir.join(format!("igmod.{today}.log"))).expect("log file");
    let polls_logged = file
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON lines"))
        .filter(|v| v["fields"]["message"] == "poll done")
        .count();
    assert!(polls_logged >= 2, "{file}");
    assert!(file.contains("log output changed"), "{file}");
}

/// Every switch of log format, level and destination by reload, each followed by a scam that
/// must still be deleted and logged with its account: a reload from text to JSON once made
/// every account task panic while the process stayed up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_reload_keeps_moderating_and_keeps_the_account_in_the_lines() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    env.write_config(&accounts, "log_level = \"info\"");
    let config = env.dir.path().join("config.toml");
    let stderr = env.dir.path().join("stderr.log");
    let child = common::spawn_daemon(&config, Some(&stderr));
    let log_dir = env.dir.path().join("logs");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let file_log = log_dir.join(format!("igmod.{today}.log"));
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    let dir = format!("log_dir = \"{}\"", log_dir.display());
    // (daemon lines, where the lines go, their format; None: warn level, no info lines)
    let steps: Vec<(String, bool, Option<&str>)> = vec![
        ("log_level = \"info\"".into(), false, Some("text")),
        ("log_format = \"json\"".into(), false, Some("json")),
        ("log_format = \"text\"".into(), false, Some("text")),
        (format!("log_format = \"json\"\n{dir}"), true, Some("json")),
        (format!("log_format = \"text\"\n{dir}"), true, Some("text")),
        ("log_level = \"warn\"".into(), false, None),
        ("log_format = \"json\"".into(), false, Some("json")),
        ("log_level = \"info\"".into(), false, Some("text")),
    ];
    for (i, (daemon, to_file, format)) in steps.iter().enumerate() {
        let path = if *to_file { &file_log } else { &stderr };
        let before = read(path).len();
        if i > 0 {
            env.write_config(&accounts, daemon);
            kill(child.id(), "-HUP");
            // The reload is applied between polls: wait for one to pass.
            let calls = env.sim.calls_for(ACME);
            wait_for("a poll after the reload", T, || async {
                env.sim.calls_for(ACME) >= calls + 2
            })
            .await;
        }
        let scam = env.sim.add_comment(&post, "bot", &format!("forex {i}"));
        wait_for(&format!("step {i} ({daemon}): scam deleted"), T, || async {
            env.sim.comment(&scam).is_some_and(|c| c.deleted)
        })
        .await;
        // Give a non-blocking file writer a moment to write the line.
        let applied = |text: &str| text.contains(&scam) && text.contains("action applied");
        wait_for(&format!("step {i}: the action logged"), T, || async {
            format.is_none() || applied(&read(path)[before.min(read(path).len())..])
        })
        .await;
        let all = read(path);
        let new = &all[before.min(all.len())..];
        assert!(!new.contains("panicked"), "step {i} ({daemon}): {new}");
        let line = new
            .lines()
            .find(|l| l.contains(&scam) && l.contains("action applied"));
        match format {
            None => assert!(line.is_none(), "warn level hides info lines: {new}"),
            Some("json") => {
                let line = line.unwrap_or_else(|| panic!("step {i}: no line in {new}"));
                let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
                assert_eq!(v["spans"][0]["account"], "acme", "step {i}: {line}");
            }
            Some(_) => {
                let line = line.unwrap_or_else(|| panic!("step {i}: no line in {new}"));
                assert!(line.contains("account{account=acme}"), "step {i}: {line}");
            }
        }
    }
    let exited = child_exit_after_term(child).await;
    assert_eq!(
        exited,
        Some(0),
        "the daemon stopped cleanly after every reload"
    );
}

async fn child_exit_after_term(child: common::KillOnDrop) -> Option<i32> {
    kill(child.id(), "-TERM");
    wait_exit(child).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_dead_token_a_new_token_and_a_reload_bring_the_account_back() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let post = env.sim.add_media(ACME);
    env.sim.kill_token(ACME, 463);
    env.config(&accounts, ""); // also creates the database, so the test can read it
    let config = env.dir.path().join("config.toml");
    let child = common::spawn_daemon(&config, None);
    let db = env.pool().await;
    wait_for("token marked invalid", T, || async {
        count(&db, "SELECT COUNT(*) FROM tokens WHERE status = 'invalid'").await == 1
    })
    .await;
    // No busy loop on a dead token.
    let calls = env.sim.calls_for(ACME);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.sim.calls_for(ACME), calls);

    env.sim.replace_token(ACME, "EAAG-SECRET-fresh-login");
    std::fs::write(
        env.dir.path().join("acme.token"),
        "EAAG-SECRET-fresh-login\n",
    )
    .expect("token");
    kill(child.id(), "-HUP");
    let scam = env.sim.add_comment(&post, "bot", "forex");
    wait_for("polling again", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.deleted)
    })
    .await;
    kill(child.id(), "-TERM");
    let _ = wait_exit(child).await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM tokens WHERE status = 'ok'").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_status_and_token_refresh_for_operators() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    env.sim.add_media(ACME);
    env.config(&accounts, "");
    let config = env.dir.path().join("config.toml");
    let (code, out, err) = run(igmod().args(["token", "status", "-c"]).arg(&config));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "acme: not used yet; expiry not known yet; from file {}\n",
            env.dir.path().join("acme.token").display()
        )
    );
    let (code, out, err) = run(igmod()
        .args(["token", "refresh", "acme", "-c"])
        .arg(&config));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "acme: token refreshed; it is valid for 59 days\n");
    assert_eq!(env.sim.refreshes(ACME), 1);
    let (_, out, _) = run(igmod().args(["token", "status", "-c"]).arg(&config));
    assert!(out.starts_with("acme: ok; expires "), "{out}");
    assert!(
        out.contains("(59 days left), refreshed by igmod; from file"),
        "{out}"
    );
    assert!(!out.contains("EAAG"), "no token in the output: {out}");
    // Meta refuses: the command says so and fails.
    env.sim.set_refresh(ACME, false, true);
    let (code, _, err) = run(igmod()
        .args(["token", "refresh", "acme", "-c"])
        .arg(&config));
    assert_eq!(code, 1);
    assert!(
        err.contains("acme: refresh refused: GET /refresh_access_token: request rejected"),
        "{err}"
    );
    assert!(!err.contains("EAAG"), "no token in the error: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_says_what_is_lost_without_app_and_which_files_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new().await;
    let accounts = env
        .account("acme", ACME, "")
        .replace("login = \"instagram\"", "login = \"facebook\"");
    let config = env.write_config(&accounts, "");
    let token_file = env.dir.path().join("acme.token");
    let chmod = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    chmod(&config, 0o644);
    chmod(&token_file, 0o640);
    let (code, out, err) = run(igmod().args(["check-config", "-c"]).arg(&config));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("app: none"), "{out}");
    assert!(
        out.contains("note: no [app] section: the Facebook Login tokens of acme cannot be introspected or extended"),
        "{out}"
    );
    // config.toml holds no secret: the service must be able to read it, so no advice to
    // close it (following such advice stopped the DynamicUser service with exit 78).
    let config_shown = config.display().to_string();
    assert!(
        !out.lines()
            .any(|l| l.starts_with("warning:") && l.contains(&config_shown)),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "warning: {} holds a secret and is readable by its group (mode 0640); run: chmod 600 {}, and under systemd pass it with LoadCredential=",
            token_file.display(),
            token_file.display()
        )),
        "{out}"
    );

    // With [app] and private files: no note, no warning.
    let accounts = env.app() + &accounts;
    let config = env.write_config(&accounts, "");
    for p in [&config, &token_file, &env.dir.path().join("app.secret")] {
        chmod(p, 0o600);
    }
    let (code, out, err) = run(igmod().args(["check-config", "-c"]).arg(&config));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("app: {} (secret from file", Env::APP_ID)),
        "{out}"
    );
    assert!(!out.contains("note:") && !out.contains("warning:"), "{out}");
    assert!(!out.contains(Env::APP_SECRET), "{out}");

    // A missing app secret is a config error like a missing token.
    let broken = accounts.replace(
        "app_secret_file",
        "app_secret_env = \"IGMOD_NO_SUCH_SECRET\"\n#",
    );
    let config = env.write_config(&broken, "");
    let (code, _, err) = run(igmod().args(["check-config", "-c"]).arg(&config));
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains(
            "app.app_secret_env: environment variable IGMOD_NO_SUCH_SECRET is not set or empty"
        ),
        "{err}"
    );
}

/// `status`, `audit`, `token status`, `rules …` and `labels export` read the database or run
/// the rules: they work from a shell where the service's tokens are not (sudo drops the
/// variables; `LoadCredential` files exist only inside the service). What calls Meta, and
/// `check-config`, still refuse a missing token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_commands_need_no_token() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    env.sim.add_media(ACME);
    env.config(&accounts, ""); // creates the database
    let path = env.dir.path().join("config.toml");
    std::fs::remove_file(env.dir.path().join("acme.token")).expect("token gone");
    let export = env.dir.path().join("labels.csv");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/labeled.csv");
    let read_only: Vec<Vec<&str>> = vec![
        vec!["status"],
        vec!["audit"],
        vec!["token", "status"],
        vec!["rules", "test", "forex"],
        vec!["rules", "eval", fixture],
        vec!["rules", "replay"],
        vec!["labels", "export", export.to_str().expect("path")],
        // A --since beyond the clock's range reads everything instead of panicking.
        vec!["audit", "--since", "300000years"],
        vec!["rules", "replay", "--since", "300000years"],
    ];
    for args in &read_only {
        let (code, out, err) = run(igmod().args(args).arg("-c").arg(&path));
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    }
    for args in [vec!["check-config"], vec!["token", "refresh", "acme"]] {
        let (code, _, err) = run(igmod().args(&args).arg("-c").arg(&path));
        assert_eq!(code, 78, "{args:?}: {err}");
        assert!(err.contains("accounts.token_file"), "{args:?}: {err}");
    }
}

/// `igmod status` says per account whether moderation runs, and exits for monitoring: 0 all
/// ok, 1 a token ends within 3 days, 2 an account stalled (last poll older than 3 intervals)
/// or stopped (dead token). The states are written into the real database as a stalled
/// daemon or an ageing token would leave them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_marks_stalled_stopped_and_ending_accounts_and_exits_for_monitoring() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    env.sim.add_media(ACME);
    let daemon = common::start(env.config(&accounts, ""));
    wait_for("two polls", T, || async { env.sim.calls_for(ACME) >= 2 }).await;
    daemon.stop().await;
    let path = env.dir.path().join("config.toml");
    let db = env.pool().await;
    let status = || run(igmod().args(["status", "-c"]).arg(&path));
    let set = |sql: &'static str, value: String| {
        let db = db.clone();
        async move {
            sqlx::query(sql)
                .bind(value)
                .execute(&db)
                .await
                .expect("update");
        }
    };
    let at = |d: chrono::TimeDelta| igmod::timefmt::format(chrono::Utc::now() + d);

    set(
        "UPDATE account_state SET last_poll_at = ?1",
        at(chrono::TimeDelta::zero()),
    )
    .await;
    let (code, out, err) = status();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("  health:     ok\n"), "{out}");

    // A loop that stopped polling: its last poll is 10 minutes old, the interval 1 s.
    set(
        "UPDATE account_state SET last_poll_at = ?1",
        at(chrono::TimeDelta::minutes(-10)),
    )
    .await;
    let (code, out, _) = status();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("  health:     STALLED\n"), "{out}");
    let (code, json, _) = run(igmod().args(["status", "--json", "-c"]).arg(&path));
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v[0]["health"], "STALLED", "{json}");

    // Polling again, but the token ends in two days.
    set(
        "UPDATE account_state SET last_poll_at = ?1",
        at(chrono::TimeDelta::zero()),
    )
    .await;
    set(
        "UPDATE tokens SET expires_at = ?1",
        at(chrono::TimeDelta::hours(50)),
    )
    .await;
    let (code, out, _) = status();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("  health:     TOKEN ENDING\n"), "{out}");

    // A dead token stops the account.
    set("UPDATE tokens SET status = ?1", "invalid".into()).await;
    let (code, out, _) = status();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("  health:     STOPPED\n"), "{out}");
}

/// `igmod init` asks what the flags leave out (answers piped, as from a terminal), writes a
/// config that checks once the token is in place, prints the next commands, and never
/// overwrites a config without --force.
#[test]
fn init_writes_a_config_that_checks_and_never_overwrites_without_force() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("etc/config.toml");
    let answer = |input: &str, extra: &[&str]| {
        let mut child = common::spawn(
            igmod()
                .arg("init")
                .arg("-c")
                .arg(&path)
                .arg("--database")
                .arg(dir.path().join("igmod.db"))
                .arg("--model")
                .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/scam.model"))
                .args(extra)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("answers");
        let out = child.output_within(common::RUN_LIMIT, "igmod init");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // No answers at all: the missing flag is named and nothing is written.
    let (code, _, err) = answer("", &[]);
    assert_ne!(code, Some(0));
    assert!(err.contains("pass --login"), "{err}");
    assert!(!path.exists());
    // Login type, user id, and the default token variable (an empty answer).
    let (code, out, err) = answer("facebook\n17841400000000001\n\n", &["--name", "acme"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("IGMOD_TOKEN_ACME"), "{out}");
    for next in [
        "igmod check-config -c",
        "igmod rules test -c",
        "--account acme",
        "systemctl enable --now igmod",
    ] {
        assert!(out.contains(next), "{next:?} missing from:\n{out}");
    }
    let written = std::fs::read_to_string(&path).expect("config written");
    assert!(written.contains("login = \"facebook\""), "{written}");
    assert!(dir.path().join("etc/rules/starter.toml").is_file());
    // Without the token, check-config names what is missing; with it, the config is clean.
    let (code, _, err) = run(igmod().args(["check-config", "-c"]).arg(&path));
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("IGMOD_TOKEN_ACME"), "{err}");
    let (code, out, err) = run(igmod()
        .args(["check-config", "-c"])
        .arg(&path)
        .env("IGMOD_TOKEN_ACME", "EAAB-test-token"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("acme"), "{out}");
    // The token in the service's environment file, where the README puts it: check-config
    // finds it there though the shell lacks it (systemd loads that file for the daemon), says
    // so, and never prints it. An empty value is still missing.
    let env_file = dir.path().join("etc/igmod.env");
    std::fs::write(&env_file, "# igmod's tokens\nIGMOD_TOKEN_ACME=\n").expect("env file");
    let (code, _, err) = run(igmod().args(["check-config", "-c"]).arg(&path));
    assert_eq!(code, 78, "{err}");
    std::fs::write(
        &env_file,
        "# igmod's tokens\nIGMOD_TOKEN_ACME=\"EAAB-from-env-file\"\n",
    )
    .expect("env file");
    let (code, out, err) = run(igmod().args(["check-config", "-c"]).arg(&path));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("igmod.env (the service's environment file): IGMOD_TOKEN_ACME"),
        "{out}"
    );
    assert!(!out.contains("EAAB-from-env-file") && !err.contains("EAAB-from-env-file"));
    // `run` from a shell still needs it exported: the daemon reads its environment.
    let (code, _, err) = run(igmod().args(["run", "-c"]).arg(&path));
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("IGMOD_TOKEN_ACME"), "{err}");
    // The rules the account selects moderate a scam.
    let (code, out, err) = run(igmod().args(["rules", "test", "-c"]).arg(&path).args([
        "--account",
        "acme",
        "DM me to earn with crypto signals, 500% profit daily",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("hide") || out.contains("delete"), "{out}");
    // A second init refuses and leaves the file alone; --force replaces it.
    let (code, _, err) = answer("instagram\n17841400000000002\n\n", &["--name", "acme"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("config"), written);
    let (code, _, err) = answer(
        "",
        &[
            "--name",
            "acme",
            "--login",
            "instagram",
            "--ig-user-id",
            "17841400000000002",
            "--token-file",
            "acme",
            "--force",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let replaced = std::fs::read_to_string(&path).expect("config");
    assert!(replaced.contains("token_file = \"acme\""), "{replaced}");
}

/// `check-config` says whether the database exists, whether this version's migrations are all
/// applied (and which are pending otherwise), and warns when a newer igmod wrote it: what an
/// operator wants to know before a start or after an upgrade. It never creates or migrates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_reports_the_databases_migrations_without_touching_it() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "");
    let config = env.write_config(&accounts, "");
    let db_path = env.db();
    let check = || {
        let (code, out, err) = run(igmod().args(["check-config", "-c"]).arg(&config));
        assert_eq!(code, 0, "{err}");
        out
    };
    assert!(check().contains("not created yet"));
    assert!(!db_path.exists(), "check-config created the database");
    igmod::store::Store::open(&db_path)
        .await
        .expect("store")
        .close()
        .await;
    let db = env.pool().await;
    let applied = count(&db, "SELECT COUNT(*) FROM _sqlx_migrations").await;
    assert!(check().contains(&format!("up to date ({applied} migrations applied)")));
    // As after an upgrade: the newest migration not applied yet (named from the table, so a
    // new migration does not break this test).
    let newest = common::text(
        &db,
        "SELECT version || ' ' || description FROM _sqlx_migrations ORDER BY version DESC LIMIT 1",
    )
    .await
    .unwrap_or_default();
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .execute(&db)
    .await
    .expect("delete");
    let out = check();
    assert!(
        !newest.is_empty()
            && out.contains(&format!(
                "1 migration(s) pending, run at the next start: {newest}"
            )),
        "{out}"
    );
    // As after a downgrade: a migration this version does not know.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time)
         VALUES (9999, 'from the future', CURRENT_TIMESTAMP, 1, x'00', 0)",
    )
    .execute(&db)
    .await
    .expect("insert");
    let out = check();
    assert!(
        out.contains("1 migration(s) this igmod does not know"),
        "{out}"
    );
}
