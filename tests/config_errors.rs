//! Hostile configs: each broken file is refused by the real binary with exit 78 and a message
//! naming the file, line, column and key.

use std::process::Command;

const BASE: &str = r#"[daemon]
database = "/tmp/igmod-never-created.db"

[graph]
timeout = "30s"

[[accounts]]
name = "acme"
ig_user_id = "1784"
login = "instagram"
token_env = "IGMOD_TEST_TOKEN"
poll_interval = "2m"
hourly_budget = 200
rules = ["scam"]

[[rules]]
name = "scam"
action = "delete"
words = ["forex"]

[[rules]]
name = "polite"
action = "flag"
usernames = ["x"]
any = [{ words = ["y"] }]
"#;

/// (what to replace, with what, the key the message must name, a text on the line it must point at)
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "[daemon]",
        "[daemon",
        "unclosed table, expected `]`",
        "[daemon",
    ),
    (
        "database = \"/tmp",
        "database = \"/tmp\n",
        "key with no value",
        "igmod-never-created",
    ),
    // Durations too long for the clock arithmetic (or for sense) are refused, not clamped.
    (
        "database =",
        "retain = \"99999999999years\"\ndatabase =",
        "daemon.retain: must be at most 100years",
        "retain",
    ),
    // The raid guard closes a post for at least 10 s (a shorter closure only flaps).
    (
        "rules = [\"scam\"]",
        "rules = [\"scam\"]\nraid_guard = { max_comments = 10, within = \"1m\", close_for = \"5s\" }",
        "accounts.raid_guard.close_for: must be between 10s and 7d",
        "raid_guard",
    ),
    (
        "rules = [\"scam\"]",
        "rules = [\"scam\"]\nraid_guard = { max_comments = 0, within = \"1m\", close_for = \"10m\" }",
        "accounts.raid_guard.max_comments: 0 must be between 1 and 10000",
        "raid_guard",
    ),
    (
        "poll_interval = \"2m\"",
        "poll_interval = \"25h\"",
        "accounts.poll_interval: must be between 1s and 24h",
        "poll_interval",
    ),
    (
        "words = [\"forex\"]",
        "repeated = { users = 3, window = \"500000years\" }",
        "rules.repeated: window must be at most 1year",
        "repeated",
    ),
    (
        "[daemon]",
        "colour = \"red\"\n[daemon]",
        "unknown field `colour`",
        "colour",
    ),
    (
        "database =",
        "verbose = true\ndatabase =",
        "unknown field `verbose`",
        "verbose",
    ),
    (
        "timeout = \"30s\"",
        "timeout = \"30s\"\nretries = 3",
        "unknown field `retries`",
        "retries",
    ),
    (
        "hourly_budget = 200",
        "hourly_budget = 200\nbudget = 3",
        "unknown field `budget`",
        "budget = 3",
    ),
    (
        "words = [\"forex\"]",
        "words = [\"forex\"]\nmax_links = 2",
        "unknown field `max_links`",
        "max_links",
    ),
    (
        "any = [{ words = [\"y\"] }]",
        "any = [{ wordz = [\"y\"] }]",
        "unknown field `wordz`",
        "wordz",
    ),
    // Language codes are ISO 639-1 codes of a language the detector knows; the message
    // points at the bad item (here on its own line), in a rule and in an `any` group.
    (
        "words = [\"forex\"]",
        "words = [\"forex\"]\nnot_languages = [\n  \"en\",\n  \"xx\",\n]",
        "rules.not_languages: unknown language code \"xx\"",
        "\"xx\"",
    ),
    (
        "words = [\"forex\"]",
        "words = [\"forex\"]\nlanguages = [\"english\"]",
        "rules.languages: unknown language code \"english\"",
        "languages",
    ),
    (
        "any = [{ words = [\"y\"] }]",
        "any = [{ words = [\"y\"] },\n  { not_languages = [\"es\", \"spa\"] }]",
        "rules.not_languages: unknown language code \"spa\"",
        "spa",
    ),
    // A look-alike domain needs a name to compare hosts with: a public suffix has none.
    (
        "words = [\"forex\"]",
        "words = [\"forex\"]\nlookalike_domains = [\"acme.com\", \"co.uk\"]",
        "rules.lookalike_domains: \"co.uk\" is a public suffix",
        "co.uk",
    ),
    // "und" (an unknown language) belongs in `languages`; `not_languages` never matches it.
    (
        "words = [\"forex\"]",
        "words = [\"forex\"]\nnot_languages = [\"en\", \"und\"]",
        "rules.not_languages: \"und\" (an unknown language) goes in `languages`",
        "und",
    ),
    (
        "hourly_budget = 200",
        "hourly_budget = \"200\"",
        "invalid type",
        "hourly_budget",
    ),
    (
        "database = \"/tmp/igmod-never-created.db\"",
        "database = \"/tmp/x.db\"\ndry_run = \"yes\"",
        "invalid type",
        "dry_run",
    ),
    (
        "words = [\"forex\"]",
        "words = \"forex\"",
        "invalid type",
        "words = \"forex\"",
    ),
    (
        "rules = [\"scam\"]\n",
        "rules = [\"scam\"]\n\n[[accounts]]\nname = \"acme\"\nig_user_id = \"1\"\nlogin = \"instagram\"\ntoken_env = \"IGMOD_TEST_TOKEN\"\npoll_interval = \"1m\"\nhourly_budget = 1\n",
        "accounts.name: duplicate account name",
        "name = \"acme\"\nig_user_id = \"1\"",
    ),
    (
        "name = \"polite\"",
        "name = \"scam\"",
        "rules.name: duplicate rule name",
        "name = \"scam\"\naction = \"flag\"",
    ),
    (
        "poll_interval = \"2m\"",
        "poll_interval = \"2 minutes please\"",
        "accounts.poll_interval: invalid duration",
        "poll_interval",
    ),
    (
        "timeout = \"30s\"",
        "timeout = \"soon\"",
        "graph.timeout: invalid duration",
        "timeout",
    ),
    (
        "poll_interval = \"2m\"",
        "poll_interval = \"500ms\"",
        "accounts.poll_interval: must be between 1s and 24h",
        "poll_interval",
    ),
    (
        "words = [\"forex\"]",
        "regex = ['(forex']",
        "rules.regex: invalid regex pattern",
        "regex",
    ),
    (
        "usernames = [\"x\"]",
        "usernames = [\"x(\"]",
        "rules.usernames: invalid username pattern",
        "usernames",
    ),
    (
        "poll_interval = \"2m\"",
        "poll_cron = \"*/2 * * * *\"",
        "accounts.poll_cron: cron expression \"*/2 * * * *\" has 5 fields",
        "poll_cron",
    ),
    (
        "poll_interval = \"2m\"",
        "poll_cron = \"a b c d e f\"",
        "accounts.poll_cron: invalid cron expression",
        "poll_cron",
    ),
    (
        "poll_interval = \"2m\"",
        "poll_interval = \"2m\"\npoll_cron = \"0 * * * * *\"",
        "accounts.poll_interval: set either poll_interval or poll_cron",
        "poll_interval",
    ),
    (
        "poll_interval = \"2m\"\n",
        "",
        "accounts: account \"acme\" needs poll_interval or poll_cron",
        "name = \"acme\"",
    ),
    (
        "token_env = \"IGMOD_TEST_TOKEN\"",
        "token_env = \"IGMOD_SURELY_MISSING\"",
        "accounts.token_env: environment variable IGMOD_SURELY_MISSING is not set",
        "token_env",
    ),
    (
        "token_env = \"IGMOD_TEST_TOKEN\"",
        "token_file = \"/nonexistent/acme.token\"",
        "accounts.token_file: cannot read token file /nonexistent/acme.token",
        "token_file",
    ),
    (
        "token_env = \"IGMOD_TEST_TOKEN\"",
        "token_env = \"IGMOD_TEST_TOKEN\"\ntoken_file = \"/x\"",
        "accounts.token_env: set either token_env or token_file",
        "token_env",
    ),
    (
        "rules = [\"scam\"]",
        "rules = [\"scam\", \"starter\"]",
        "accounts.rules: no rule or rule set named \"starter\"",
        "rules = [",
    ),
    (
        "hourly_budget = 200",
        "hourly_budget = 0",
        "accounts.hourly_budget: 0 must be between",
        "hourly_budget",
    ),
    (
        "hourly_budget = 200",
        "hourly_budget = 200\nrecent_media = 500",
        "accounts.recent_media: 500 must be between 1 and 100",
        "recent_media",
    ),
    (
        "hourly_budget = 200",
        "hourly_budget = 200\nsweep_interval = \"30d\"",
        "accounts.sweep_interval: must be between 1s and 7d",
        "sweep_interval",
    ),
    (
        "hourly_budget = 200",
        "hourly_budget = 200\nsweep_posts = 50",
        "accounts.sweep_posts: 50 must be between 0 and 20",
        "sweep_posts",
    ),
    (
        "action = \"delete\"",
        "action = \"nuke\"",
        "unknown variant `nuke`",
        "action = \"nuke\"",
    ),
    (
        "login = \"instagram\"",
        "login = \"twitter\"",
        "unknown variant `twitter`",
        "login",
    ),
    (
        "timeout = \"30s\"",
        "timeout = \"30s\"\napi_version = \"25\"",
        "graph.api_version: \"25\" is not a version",
        "api_version",
    ),
    (
        "timeout = \"30s\"",
        "timeout = \"30s\"\ninstagram_base_url = \"ftp://x\"",
        "graph.instagram_base_url: \"ftp://x\" is not an http(s) URL",
        "instagram_base_url",
    ),
    (
        "hourly_budget = 200",
        "hourly_budget = 200\naction_reserve = 95",
        "accounts.action_reserve: 95 must be a percentage between 0 and 90",
        "action_reserve",
    ),
    (
        "action = \"flag\"",
        "action = \"reply\"",
        "rules.reply: rule \"polite\" has action \"reply\" but no reply template",
        "name = \"polite\"",
    ),
    (
        "usernames = [\"x\"]",
        "usernames = [\"x\"]\nmax_caps_ratio = 1.5",
        "rules.max_caps_ratio: max_caps_ratio 1.5 must be at least 0 and below 1",
        "max_caps_ratio",
    ),
    (
        "[daemon]",
        "include = [\"rules/nothing-here.toml\"]\n[daemon]",
        "include: \"rules/nothing-here.toml\" matches no file",
        "include",
    ),
    (
        "ig_user_id = \"1784\"",
        "ig_user_id = \"abc\"",
        "accounts.ig_user_id: \"abc\" must be a numeric id",
        "ig_user_id",
    ),
    (
        "database = \"/tmp/igmod-never-created.db\"",
        "database = \"/tmp/x.db\"\nlog_format = \"xml\"",
        "unknown variant `xml`",
        "log_format",
    ),
    (
        "words = [\"forex\"]",
        "words = [\"forex\"]\nrepeated = { users = 3, window = \"often\" }",
        "rules.repeated: invalid window \"often\"",
        "repeated",
    ),
    (
        "words = [\"forex\"]",
        "words = [\"forex\"]\ncontact = [\"fax\"]",
        "rules.contact: unknown kind \"fax\"",
        "contact",
    ),
    (
        "words = [\"forex\"]",
        "words = [\"!!!\"]",
        "rules.words: word \"!!!\" has no letters or digits",
        "words",
    ),
    (
        "database = \"/tmp/igmod-never-created.db\"",
        "database = \"/tmp/x.db\"\nretain = \"1h\"",
        "daemon.retain: must be at least 1d",
        "retain",
    ),
    (
        "[graph]",
        "[app]\napp_id = \"my-app\"\napp_secret_env = \"IGMOD_TEST_TOKEN\"\n\n[graph]",
        "app.app_id",
        "my-app",
    ),
    (
        "[graph]",
        "[app]\napp_id = \"42\"\napp_secret_env = \"IGMOD_SURELY_MISSING\"\n\n[graph]",
        "app.app_secret_env",
        "IGMOD_SURELY_MISSING",
    ),
    (
        "[graph]",
        "[app]\napp_id = \"42\"\napp_secret = \"inline-secret\"\n\n[graph]",
        "unknown field `app_secret`",
        "inline-secret",
    ),
    (
        "database =",
        "token_check = \"0 */6 * * *\"\ndatabase =",
        "daemon.token_check",
        "token_check",
    ),
    // Alerts name known events and exactly one target; commands run without a shell.
    (
        "[graph]",
        "[[alerts]]\non = [\"token_expirng\"]\nurl = \"https://ntfy.sh/ops\"\n\n[graph]",
        "alerts.on",
        "token_expirng",
    ),
    (
        "[graph]",
        "[[alerts]]\non = [\"scam_wave\"]\ncommand = \"notify-send\"\n\n[graph]",
        "alerts.command: must start with an absolute path",
        "notify-send",
    ),
    (
        "[graph]",
        "[[alerts]]\non = [\"scam_wave\"]\nurl = \"https://ntfy.sh/ops\"\ncommand = \"/bin/true\"\n\n[graph]",
        "alerts: give exactly one of command, url or url_env",
        "[[alerts]]",
    ),
    (
        "database =",
        "alert_check = \"2h\"\ndatabase =",
        "daemon.alert_check: must be between 1s and 1h",
        "alert_check",
    ),
    // PostgreSQL: the password never inline; password keys only with a postgres:// URL;
    // leases renewed at least twice per lease.
    (
        "database = \"/tmp/igmod-never-created.db\"",
        "database = \"postgres://igmod:hunter2@db/igmod\"",
        "database_password_env",
        "postgres://",
    ),
    (
        "database = \"/tmp/igmod-never-created.db\"",
        "database = \"mysql://igmod@db/igmod\"",
        "only postgres:// and postgresql://",
        "mysql://",
    ),
    (
        "database =",
        "database_password_env = \"IGMOD_DB_PASSWORD\"\ndatabase =",
        "daemon.database_password_*: only for a postgres:// database",
        "database_password_env",
    ),
    (
        "database = \"/tmp/igmod-never-created.db\"",
        "database = \"postgres://igmod@db/igmod\"\ndatabase_password_env = \"IGMOD_SURELY_MISSING\"",
        "daemon.database_password_env: environment variable IGMOD_SURELY_MISSING is not set",
        "IGMOD_SURELY_MISSING",
    ),
    (
        "database =",
        "lease_ttl = \"10s\"\nlease_renew = \"6s\"\ndatabase =",
        "daemon.lease_renew: 6s must be at most half of lease_ttl (10s)",
        "lease_renew",
    ),
    (
        "database =",
        "lease_ttl = \"1s\"\ndatabase =",
        "daemon.lease_ttl: must be between 3s and 10min",
        "lease_ttl",
    ),
    (
        "[graph]",
        "[metrics]\nlisten = \"9464\"\n\n[graph]",
        "metrics.listen",
        "9464",
    ),
    // Webhooks need the app secret, an address, a path and a verify token.
    (
        "[graph]",
        "[webhook]\nverify_token_env = \"IGMOD_TEST_TOKEN\"\n\n[graph]",
        "webhook: needs [app]",
        "[webhook]",
    ),
    (
        "[graph]",
        "[app]\napp_id = \"42\"\napp_secret_env = \"IGMOD_TEST_TOKEN\"\n\n[webhook]\nlisten = \"localhost\"\nverify_token_env = \"IGMOD_TEST_TOKEN\"\n\n[graph]",
        "webhook.listen",
        "localhost",
    ),
    (
        "[graph]",
        "[app]\napp_id = \"42\"\napp_secret_env = \"IGMOD_TEST_TOKEN\"\n\n[webhook]\npath = \"webhook?x=1\"\nverify_token_env = \"IGMOD_TEST_TOKEN\"\n\n[graph]",
        "webhook.path",
        "webhook?x=1",
    ),
    (
        "[graph]",
        "[app]\napp_id = \"42\"\napp_secret_env = \"IGMOD_TEST_TOKEN\"\n\n[webhook]\nverify_token_env = \"IGMOD_SURELY_MISSING\"\n\n[graph]",
        "webhook.verify_token_env",
        "IGMOD_SURELY_MISSING",
    ),
    (
        "[graph]",
        "[app]\napp_id = \"42\"\napp_secret_env = \"IGMOD_TEST_TOKEN\"\n\n[webhook]\nverify_token = \"inline\"\n\n[graph]",
        "unknown field `verify_token`",
        "inline",
    ),
    // The review queue: reviewers with passwords from the environment or a file, never inline.
    (
        "[graph]",
        "[review]\nlisten = \"127.0.0.1:8790\"\n\n[graph]",
        "review.users: [review] needs at least one reviewer",
        "[review]",
    ),
    (
        "[graph]",
        "[review]\nusers = [{ name = \"ana\", password_env = \"IGMOD_NO_SUCH_REVIEW_PASSWORD\" }]\n\n[graph]",
        "review.users.password_env: environment variable IGMOD_NO_SUCH_REVIEW_PASSWORD is not set",
        "IGMOD_NO_SUCH_REVIEW_PASSWORD",
    ),
    (
        "[graph]",
        "[review]\nusers = [{ name = \"ana\", password = \"hunter2\" }]\n\n[graph]",
        "unknown field `password`",
        "hunter2",
    ),
    (
        "[graph]",
        "[review]\nmin_score = 0.9\nmax_score = 0.5\nusers = [{ name = \"ana\", password_env = \"IGMOD_TEST_TOKEN\" }]\n\n[graph]",
        "review.min_score: 0.9 must be below max_score 0.5",
        "min_score",
    ),
    (
        "[graph]",
        "[review]\nremove = \"ban\"\nusers = [{ name = \"ana\", password_env = \"IGMOD_TEST_TOKEN\" }]\n\n[graph]",
        "review.remove: \"ban\" must be \"hide\" or \"delete\"",
        "ban",
    ),
    (
        "[graph]",
        "[review]\npublic_url = \"review.example.com\"\nusers = [{ name = \"ana\", password_env = \"IGMOD_TEST_TOKEN\" }]\n\n[graph]",
        "review.public_url",
        "review.example.com",
    ),
    (
        "[graph]",
        "[review]\nusers = [{ name = \"ana\", password_env = \"IGMOD_TEST_TOKEN\" }, { name = \"ana\", password_env = \"IGMOD_TEST_TOKEN\" }]\n\n[graph]",
        "review.users.name: duplicate reviewer \"ana\"",
        "users",
    ),
];

#[test]
fn every_broken_config_is_refused_with_file_line_column_and_key() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, BASE).expect("write");
    let ok = Command::new(env!("CARGO_BIN_EXE_igmod"))
        .args(["check-config", "-c"])
        .arg(&path)
        .env("IGMOD_TEST_TOKEN", "t")
        .output()
        .expect("run");
    assert!(
        ok.status.success(),
        "the base config is valid: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(CASES.len() >= 30);
    let p = path.display().to_string();
    for (i, (from, to, key, marker)) in CASES.iter().enumerate() {
        assert!(BASE.contains(from), "case {i}: {from:?} not in the base");
        assert!(
            !key.is_empty(),
            "case {i}: an empty key would match any line"
        );
        let text = BASE.replacen(from, to, 1);
        std::fs::write(&path, &text).expect("write");
        for sub in ["check-config", "run"] {
            let out = Command::new(env!("CARGO_BIN_EXE_igmod"))
                .args([sub, "-c"])
                .arg(&path)
                .env("IGMOD_TEST_TOKEN", "t")
                .env_remove("IGMOD_SURELY_MISSING")
                .output()
                .expect("run");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(78),
                "case {i} ({to:?}) with {sub}: {err}"
            );
            let line = text
                .find(marker)
                .map_or(0, |at| text[..at].matches('\n').count() + 1);
            let problem = err
                .lines()
                .find(|l| l.contains(key))
                .unwrap_or_else(|| panic!("case {i}: no line names {key:?}:\n{err}"));
            let rest = problem
                .strip_prefix(&format!("{p}:{line}:"))
                .unwrap_or_else(|| panic!("case {i}: expected {p}:{line}:COL in {problem:?}"));
            let col = rest.split(':').next().and_then(|c| c.parse::<usize>().ok());
            assert!(
                col.is_some_and(|c| c >= 1),
                "case {i}: column in {problem:?}"
            );
        }
    }
}
