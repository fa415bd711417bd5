//! The `igmod` command line: parses arguments, sets up logging, maps errors to exit codes.
//! No logic lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

mod cli;

use cli::*;
use igmod::config::{self, ConfigError};
use igmod::rules::CommentView;
use igmod::{EX_CONFIG, daemon, demo, evaluate, logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig(arg) => check_config(&arg.config),
        Command::Rules { command } => rules_command(command),
        Command::Status { config, json } => status(&config.config, json),
        Command::Token {
            command: TokenCommand::Status { config },
        } => token_status(&config.config),
        Command::Token {
            command: TokenCommand::Refresh { config, account },
        } => token_refresh(&config.config, account),
        Command::Alerts {
            command: AlertsCommand::Test { config },
        } => alerts_test(&config.config),
        Command::Report {
            config,
            since,
            output,
        } => report(&config.config, since, output),
        Command::Webhook { command } => {
            use igmod::webhook::subscribe::Op;
            let (config, account, op) = match command {
                WebhookCommand::Subscribe { config, account } => (config, account, Op::Subscribe),
                WebhookCommand::Unsubscribe { config, account } => {
                    (config, account, Op::Unsubscribe)
                }
                WebhookCommand::Status { config, account } => (config, account, Op::Status),
            };
            webhook_subscription(&config.config, account, op)
        }
        Command::Undo {
            config,
            comment_id,
            rule,
            since,
        } => undo(&config.config, comment_id, rule, since),
        Command::Audit {
            config,
            account,
            since,
            action,
            rule,
            limit,
            json,
        } => {
            let filter = igmod::store::AuditFilter {
                account,
                since: Some(igmod::timefmt::ago(chrono::Utc::now(), since)),
                action,
                rule,
                limit,
            };
            audit(&config.config, filter, json)
        }
        Command::Run(arg) => run(&arg.config),
        Command::Model { command } => model_command(command),
        Command::Label {
            config,
            comment_id,
            label,
            by,
        } => label_comment(&config.config, comment_id, &label, by),
        Command::Labels {
            command: LabelsCommand::Export { config, output },
        } => labels_export(&config.config, output),
        Command::Init(args) => exit(init(args)),
        Command::Demo {
            seconds,
            dir,
            model,
            no_model,
        } => {
            let _guard = logging::init(
                logging::Destination {
                    format: config::LogFormat::Text,
                    dir: None,
                    keep: 1,
                },
                None,
            );
            exit(
                runtime().and_then(|rt| {
                    rt.block_on(demo::run(seconds, dir, (!no_model).then_some(model)))
                }),
            )
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("igmod: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_failed(e: &ConfigError) -> ExitCode {
    eprintln!("{e}");
    eprintln!(
        "igmod: {} problem(s) in the config; nothing was started",
        e.problems.len()
    );
    ExitCode::from(EX_CONFIG as u8)
}

/// Asks one question on stderr and reads the answer from stdin (a terminal or a pipe). An
/// empty answer takes the default; no answer at all names the flag to pass instead.
fn ask(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    question: &str,
    default: Option<&str>,
    flag: &str,
) -> anyhow::Result<String> {
    match default {
        Some(d) => eprint!("{question} [{d}]: "),
        None => eprint!("{question}: "),
    }
    let answer = match lines.next() {
        Some(line) => line.context("reading the answer")?.trim().to_string(),
        None => anyhow::bail!("no answer on stdin: pass {flag}"),
    };
    match (answer.is_empty(), default) {
        (true, Some(d)) => Ok(d.to_string()),
        (true, None) => anyhow::bail!("an answer is needed (or pass {flag})"),
        (false, _) => Ok(answer),
    }
}

fn init(flags: InitArgs) -> anyhow::Result<()> {
    use igmod::init::{self, Answers, TokenPlace};
    use std::io::BufRead;
    let path = flags.config.config.as_path();
    if path.exists() && !flags.force {
        return Err(init::InitError::Exists(path.to_path_buf()).into());
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let login = match flags.login {
        Some(l) => l,
        None => ask(
            &mut lines,
            "Login type: instagram (a token from Instagram Login) or facebook (Facebook Login, through the Page)",
            Some("instagram"),
            "--login",
        )?,
    };
    let ig_user_id = match flags.ig_user_id {
        Some(id) => id,
        None => ask(
            &mut lines,
            "The account's Instagram user id (digits; GET /me?fields=user_id with its token shows it)",
            None,
            "--ig-user-id",
        )?,
    };
    let token = match (flags.token_env, flags.token_file) {
        (Some(var), _) => TokenPlace::Env(var),
        (None, Some(file)) => TokenPlace::File(file),
        (None, None) => {
            let place = ask(
                &mut lines,
                "Where will the token be? An environment variable's name, or a file path",
                Some(&init::default_token_env(&flags.name)),
                "--token-env or --token-file",
            )?;
            if place.contains('/') {
                TokenPlace::File(place)
            } else {
                TokenPlace::Env(place)
            }
        }
    };
    let model = match (flags.no_model, flags.model) {
        (true, _) => None,
        (false, Some(m)) => Some(std::path::absolute(&m).unwrap_or(m)),
        (false, None) => init::default_model(),
    };
    let answers = Answers {
        name: flags.name,
        login,
        ig_user_id,
        token,
        database: flags.database,
        model,
    };
    let written = match init::write(path, &answers, flags.force) {
        Ok(c) => c,
        Err(init::InitError::Config(e)) => {
            eprintln!("{e}");
            anyhow::bail!("the written config does not check; it is left in place to be fixed");
        }
        Err(e) => return Err(e.into()),
    };
    let rules = if written.rules.names().any(|n| n == "scam-model") {
        "the starter rules and the classifier"
    } else {
        "the starter rules"
    };
    println!(
        "wrote {} (account {:?}, moderated by {rules})",
        path.display(),
        answers.name
    );
    match &answers.token {
        TokenPlace::Env(var) => println!(
            "Put the token in {var}: under systemd, a line {var}=... in /etc/igmod/igmod.env (chmod 600)."
        ),
        TokenPlace::File(file) => {
            println!("Put the token in {file} (chmod 600), or give it as a systemd credential.")
        }
    }
    let c = path.display();
    println!("Then:");
    println!("  igmod check-config -c {c}");
    println!(
        "  igmod rules test -c {c} --account {} \"DM me to earn with crypto signals\"",
        answers.name
    );
    println!("  systemctl enable --now igmod    # or: igmod run -c {c}");
    Ok(())
}

fn check_config(path: &std::path::Path) -> ExitCode {
    let c = match config::load_with(path, config::Secrets::Check) {
        Ok(c) => c,
        Err(e) => return config_failed(&e),
    };
    println!("{}: ok", path.display());
    println!(
        "database: {}{}",
        c.daemon.database,
        if c.daemon.dry_run {
            " (dry run: nothing will be hidden or deleted)"
        } else {
            ""
        }
    );
    if let Some(tls) = c.daemon.database.tls() {
        println!("  sslmode {tls}");
        if let Some(warning) = tls.warning() {
            println!("warning: {warning}");
        }
    }
    match runtime().map(|rt| rt.block_on(igmod::store::Store::migration_status(&c.daemon.database)))
    {
        Ok(Ok(igmod::store::MigrationStatus::Missing)) => {
            println!("  not created yet (the first start creates it)")
        }
        Ok(Ok(igmod::store::MigrationStatus::Exists {
            applied,
            pending,
            unknown,
        })) => {
            if pending.is_empty() {
                println!("  up to date ({applied} migrations applied)");
            } else {
                println!(
                    "  {} migration(s) pending, run at the next start: {}",
                    pending.len(),
                    pending.join(", ")
                );
            }
            if unknown > 0 {
                println!(
                    "warning: the database holds {unknown} migration(s) this igmod does not know (a newer version wrote it): `igmod run` will refuse it; run that version"
                );
            }
        }
        // The daemon could not start without its PostgreSQL server: that is an error here.
        Ok(Err(e)) if c.daemon.database.is_postgres() => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        Ok(Err(e)) => println!("  cannot read it from here ({e})"),
        Err(e) => println!("  cannot look ({e})"),
    }
    println!(
        "graph: api {} timeout {:?}",
        c.graph.api_version, c.graph.timeout
    );
    match &c.app {
        Some(app) => println!(
            "app: {} (secret from {})",
            app.app_id,
            app.secret.describe()
        ),
        None => println!("app: none"),
    }
    match &c.webhook {
        Some(w) => println!(
            "webhook: http://{}{} (verify token from {}; HTTPS goes in front)",
            w.listen,
            w.path,
            w.verify_token.describe()
        ),
        None => println!("webhook: none (polling only)"),
    }
    println!("rules: {}", c.rules.names().collect::<Vec<_>>().join(", "));
    for (path, model) in c.rules.models() {
        let cv = model.cv();
        println!(
            "model {path}: sha256 {}, trained on {} rows; {}-fold cross-validation at score >= {}: precision {:.3}, recall {:.3}, F1 {:.3}",
            &model.checksum()[..16.min(model.checksum().len())],
            model.training().rows,
            cv.folds,
            cv.threshold,
            cv.precision.mean,
            cv.recall.mean,
            cv.f1.mean
        );
    }
    println!("accounts:");
    for a in &c.accounts {
        let schedule = match &a.schedule {
            config::Schedule::Every(d) => format!("every {}", humantime::format_duration(*d)),
            config::Schedule::Cron(e) => format!("cron \"{e}\""),
        };
        println!(
            "  {} (ig user {}, {:?} login, token from {}): {}, budget {} calls/hour, {} newest posts, backfill {}, rules: {}",
            a.name,
            a.ig_user_id,
            a.login,
            a.token.describe(),
            schedule,
            a.hourly_budget,
            a.recent_media,
            if a.backfill { "on" } else { "off" },
            a.rule_names.join(", ")
        );
    }
    for note in c.notes() {
        println!("note: {note}");
    }
    // Variables this shell lacks but the service's environment file gives (systemd loads it for
    // the daemon; `igmod run` from a shell needs them exported).
    if !c.from_env_file.is_empty() {
        println!(
            "from {} (the service's environment file): {}",
            igmod::tokens::service_env_file(path).display(),
            c.from_env_file.join(", ")
        );
    }
    for warning in igmod::tokens::exposed_files(&c) {
        println!("warning: {warning}");
    }
    ExitCode::SUCCESS
}

fn rules_command(command: RulesCommand) -> ExitCode {
    let (path, select) = match &command {
        RulesCommand::Test { config, select, .. } | RulesCommand::Eval { config, select, .. } => {
            (config.config.clone(), Some(select))
        }
        RulesCommand::Replay { config, .. } => (config.config.clone(), None),
    };
    let c = match config::load_with(&path, config::Secrets::NotNeeded) {
        Ok(c) => c,
        Err(e) => return config_failed(&e),
    };
    let selection = match select
        .map(|s| evaluate::Selection::of(&c, s.account.as_deref(), s.all_rules))
        .transpose()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("igmod: {e} in {}", path.display());
            return ExitCode::from(EX_CONFIG as u8);
        }
    };
    match (command, selection) {
        (
            RulesCommand::Test {
                username,
                reply,
                text,
                ..
            },
            Some(selection),
        ) => {
            // The account's username (for impersonation) is read from the database if there is one.
            let account_username = selection
                .account
                .as_ref()
                .filter(|_| c.daemon.database.exists())
                .and_then(|name| {
                    runtime().ok()?.block_on(async {
                        let store = igmod::store::Store::connect(&c.daemon.database)
                            .await
                            .ok()?;
                        let state = store.account_state(name).await.ok();
                        store.close().await;
                        state?.username
                    })
                });
            let view = CommentView {
                is_reply: reply,
                account_username: account_username.as_deref(),
                ..CommentView::new(&text, username.as_deref())
            };
            println!("{}", selection.heading);
            print!("{}", evaluate::explain(&selection.rules, &view));
            ExitCode::SUCCESS
        }
        (
            RulesCommand::Eval {
                text_column,
                label_column,
                sweep,
                cv,
                seed,
                also,
                file,
                ..
            },
            Some(selection),
        ) => exit((|| {
            let read = |path: &PathBuf| read_labeled(path, &text_column, &label_column);
            let rows = evaluate::read_labeled_paths(&file, &text_column, &label_column)?;
            let mut extra = Vec::new();
            for path in &also {
                extra.extend(read(path)?);
            }
            println!("{}", selection.heading);
            match cv {
                Some(k) => print!(
                    "{}",
                    evaluate::cross_validate(&selection.rules, &rows, &extra, k, seed)?
                ),
                None => print!("{}", evaluate::eval_rows(&selection.rules, &rows)),
            }
            if sweep {
                print!("{}", evaluate::sweep(&selection.rules, &rows));
            }
            Ok(())
        })()),
        (RulesCommand::Replay { since, model, .. }, _) => exit((|| {
            let c = match model {
                Some(path) => {
                    let model = igmod::training::load_shared(&path)?;
                    c.with_model(&model)
                }
                None => c,
            };
            runtime()?.block_on(async {
                let store = igmod::store::Store::connect(&c.daemon.database)
                    .await
                    .with_context(|| format!("cannot open {}", c.daemon.database))?;
                let from = igmod::timefmt::ago(chrono::Utc::now(), since);
                let report = evaluate::replay(&c, &store, from).await?;
                store.close().await;
                print!("{report}");
                Ok(())
            })
        })()),
        (_, None) => ExitCode::FAILURE,
    }
}

/// Opens the configured database for reading reports; it must exist already.
async fn open_existing(c: &config::Config) -> anyhow::Result<igmod::store::Store> {
    if !c.daemon.database.exists() {
        anyhow::bail!("no database at {} yet: has igmod run?", c.daemon.database);
    }
    igmod::store::Store::connect(&c.daemon.database)
        .await
        .with_context(|| format!("cannot open {}", c.daemon.database))
}

/// Loads the config, opens the existing database, runs `f` against both and closes it.
/// A labeled CSV file's rows (`rules eval`, `model train`), errors naming the file.
fn read_labeled(
    path: &std::path::Path,
    text_column: &str,
    label_column: &str,
) -> anyhow::Result<Vec<evaluate::LabeledRow>> {
    let input =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    evaluate::labeled_rows(input, text_column, label_column)
        .with_context(|| path.display().to_string())
}

fn with_database<F, Fut>(path: &std::path::Path, secrets: config::Secrets, f: F) -> ExitCode
where
    F: FnOnce(config::Config, igmod::store::Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    with_database_code(path, secrets, |c, store| async move {
        f(c, store).await.map(|()| ExitCode::SUCCESS)
    })
}

/// [`with_database`] for a command that chooses its own exit code.
fn with_database_code<F, Fut>(path: &std::path::Path, secrets: config::Secrets, f: F) -> ExitCode
where
    F: FnOnce(config::Config, igmod::store::Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let c = match config::load_with(path, secrets) {
        Ok(c) => c,
        Err(e) => return config_failed(&e),
    };
    let result = runtime().and_then(|rt| {
        rt.block_on(async {
            let store = open_existing(&c).await?;
            let result = f(c, store.clone()).await;
            store.close().await;
            result
        })
    });
    match result {
        Ok(code) => code,
        Err(e) => exit(Err(e)),
    }
}

/// Prints every account's status. Exit code (Nagios convention, for monitoring): 0 all ok,
/// 1 a token ends within 3 days, 2 an account is stalled or stopped; 78 bad config, 1 also
/// for an unreadable database.
fn status(path: &std::path::Path, json: bool) -> ExitCode {
    with_database_code(path, config::Secrets::NotNeeded, |c, store| async move {
        let rows = igmod::report::status(&c, &store).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            // One instance per SQLite file: the instances matter only on a shared database.
            if store.is_shared() {
                let live = igmod::report::instances(&store, c.daemon.lease_ttl).await?;
                print!("{}", igmod::report::instances_table(&live, &rows));
            }
            print!("{}", igmod::report::status_table(&rows));
        }
        let worst = rows.iter().map(|r| r.health.exit_code()).max().unwrap_or(0);
        Ok(ExitCode::from(worst))
    })
}

fn audit(path: &std::path::Path, filter: igmod::store::AuditFilter, json: bool) -> ExitCode {
    with_database(path, config::Secrets::NotNeeded, |_, store| async move {
        let rows = igmod::report::audit(&store, &filter).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            print!("{}", igmod::report::audit_table(&rows));
        }
        Ok(())
    })
}

fn token_status(path: &std::path::Path) -> ExitCode {
    with_database(path, config::Secrets::NotNeeded, |c, store| async move {
        let now = chrono::Utc::now();
        for a in &c.accounts {
            let record = store.token_record(&a.name).await?;
            let health = store.token_health(&a.name).await?;
            let state = match &health {
                Some(h) if h.status == "invalid" => {
                    format!("INVALID: {}", h.invalid_reason.as_deref().unwrap_or("?"))
                }
                Some(h) if h.expiry_estimated => {
                    "unverified (Meta refused a refresh and never said when it ends)".to_string()
                }
                Some(_) => "ok".to_string(),
                None => "not used yet".to_string(),
            };
            // "DATE (N days left)" for a stored time.
            let until = |stored: Option<&str>| {
                stored.and_then(igmod::timefmt::parse).map(|e| {
                    format!(
                        "{} ({} days left)",
                        igmod::timefmt::format(e),
                        (e - now).num_days()
                    )
                })
            };
            let estimated = health.as_ref().is_some_and(|h| h.expiry_estimated);
            let expiry = match until(record.expires_at.as_deref()) {
                _ if record.never_expires => "never expires (Page token)".to_string(),
                Some(e) if estimated => format!("expires {e} at the latest"),
                Some(e) => format!("expires {e}"),
                None if a.login == config::Login::Facebook && c.app.is_none() => {
                    "expiry unknown (no [app] to ask debug_token)".to_string()
                }
                None => "expiry not known yet".to_string(),
            };
            let data_access = until(
                health
                    .as_ref()
                    .and_then(|h| h.data_access_expires_at.as_deref()),
            )
            .map(|e| format!("; data access until {e}"))
            .unwrap_or_default();
            let refreshed = if record.token.is_some() {
                ", refreshed by igmod"
            } else {
                ""
            };
            println!(
                "{}: {state}; {expiry}{refreshed}{data_access}; from {}",
                a.name,
                a.token.describe()
            );
        }
        Ok(())
    })
}

fn token_refresh(path: &std::path::Path, account: String) -> ExitCode {
    with_database(path, config::Secrets::Required, |c, store| async move {
        let Some(a) = c.accounts.iter().find(|a| a.name == account) else {
            anyhow::bail!("no account named {account:?}");
        };
        if a.login == config::Login::Facebook && c.app.is_none() {
            anyhow::bail!(
                "{account}: a Facebook Login token can only be extended with the app's credentials; add [app] to the config"
            );
        }
        let token = igmod::tokens::current(&store, a).await?;
        let (client, budget) = igmod::daemon::client_and_budget(&c, a, &store).await?;
        let app = c.app.as_ref();
        if igmod::store::Store::token_record(&store, &a.name)
            .await?
            .never_expires
        {
            println!("{account}: a Page token never expires; nothing to refresh");
            return Ok(());
        }
        let cx = igmod::tokens::TokenCtx {
            store: &store,
            budget: &budget,
            client: &client,
            account: a,
            app,
        };
        match igmod::tokens::maybe_refresh(cx, &token, true).await? {
            igmod::tokens::Refresh::Refreshed(_, days) => {
                println!("{account}: token refreshed; it is valid for {days} days");
                Ok(())
            }
            igmod::tokens::Refresh::Refused(why) => {
                anyhow::bail!("{account}: refresh refused: {why}")
            }
            igmod::tokens::Refresh::NotDue => {
                anyhow::bail!(
                    "{account}: cannot refresh now (budget spent, account paused, or the app secret unreadable: see the log)"
                )
            }
        }
    })
}

fn report(path: &std::path::Path, since: std::time::Duration, output: PathBuf) -> ExitCode {
    with_database(path, config::Secrets::NotNeeded, |c, store| async move {
        let now = chrono::Utc::now();
        let started = std::time::Instant::now();
        let html =
            igmod::report_html::render(&c, &store, igmod::timefmt::ago(now, since), now).await?;
        igmod::outfile::write_private(&output, html.as_bytes())?;
        println!(
            "report written to {} ({} KB, {} ms)",
            output.display(),
            html.len() / 1024,
            started.elapsed().as_millis()
        );
        Ok(())
    })
}

fn alerts_test(path: &std::path::Path) -> ExitCode {
    let c = match config::load(path) {
        Ok(c) => c,
        Err(e) => return config_failed(&e),
    };
    if c.alerts.is_empty() {
        eprintln!("igmod: no [[alerts]] in {}", path.display());
        return ExitCode::FAILURE;
    }
    let Ok(rt) = tokio::runtime::Runtime::new() else {
        return ExitCode::FAILURE;
    };
    let failed = rt.block_on(async {
        let http = match igmod::alerts::AlertHttp::new() {
            Ok(h) => h,
            Err(e) => {
                eprintln!("igmod: {e}");
                return c.alerts.len();
            }
        };
        let event = igmod::alerts::Event {
            kind: igmod::alerts::AlertKind::AccountStopped,
            state: "test",
            account: c.accounts.first().map(|a| a.name.clone()),
            summary: "igmod alerts test: if you read this, igmod can reach you".into(),
            at: igmod::timefmt::now(),
        };
        let mut failed = 0;
        for (i, t) in c.alerts.iter().enumerate() {
            let name = igmod::alerts::describe(i, t);
            match igmod::alerts::deliver_with_retries(&http, i, t, &event).await {
                Ok(()) => println!("{name}: sent"),
                Err(e) => {
                    println!("{name}: FAILED: {e}");
                    failed += 1;
                }
            }
        }
        failed
    });
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn webhook_subscription(
    path: &std::path::Path,
    account: String,
    op: igmod::webhook::subscribe::Op,
) -> ExitCode {
    with_database(path, config::Secrets::Required, |c, store| async move {
        let Some(a) = c.accounts.iter().find(|a| a.name == account) else {
            anyhow::bail!("no account named {account:?}");
        };
        let token = igmod::tokens::current(&store, a).await?;
        let (client, budget) = igmod::daemon::client_and_budget(&c, a, &store).await?;
        let said = igmod::webhook::subscribe::run(&client, &budget, &token, a, op).await?;
        println!("{said}");
        if c.webhook.is_none() && op != igmod::webhook::subscribe::Op::Unsubscribe {
            println!(
                "note: this config has no [webhook] section, so this igmod receives no deliveries"
            );
        }
        Ok(())
    })
}

/// Who is at the keyboard: the user sudo was run by, else the login name.
fn operator() -> Option<String> {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

fn label_comment(
    path: &std::path::Path,
    comment_id: String,
    label: &str,
    by: Option<String>,
) -> ExitCode {
    let Some(label) = igmod::store::Label::parse(label) else {
        return ExitCode::FAILURE;
    };
    let who = by.or_else(operator);
    with_database(path, config::Secrets::NotNeeded, |_, store| async move {
        if !store
            .add_label(
                &comment_id,
                label,
                igmod::store::LabelSource::Label,
                who.as_deref(),
            )
            .await?
        {
            anyhow::bail!(
                "no comment {comment_id} in the database: igmod labels only comments it has seen"
            );
        }
        println!("{comment_id}: labeled {}", label.as_str());
        Ok(())
    })
}

fn labels_export(path: &std::path::Path, output: PathBuf) -> ExitCode {
    with_database(path, config::Secrets::NotNeeded, |_, store| async move {
        let labels = store.latest_labels().await?;
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "text",
            "label",
            "comment_id",
            "account",
            "username",
            "source",
            "who",
            "labeled_at",
        ])?;
        let (mut written, mut pruned) = (0, 0);
        for l in &labels {
            let Some(text) = &l.text else {
                pruned += 1;
                continue;
            };
            w.write_record([
                text.as_str(),
                if l.label == "scam" { "1" } else { "0" },
                &l.comment_id,
                &l.account,
                l.username.as_deref().unwrap_or(""),
                &l.source,
                l.who.as_deref().unwrap_or(""),
                &l.labeled_at,
            ])?;
            written += 1;
        }
        igmod::outfile::write_private(&output, &w.into_inner()?)?;
        println!(
            "wrote {written} labeled comments to {}{}",
            output.display(),
            if pruned > 0 {
                format!(" ({pruned} left out: their text was pruned by retain)")
            } else {
                String::new()
            }
        );
        Ok(())
    })
}

fn undo(
    path: &std::path::Path,
    comment_id: Option<String>,
    rule: Option<String>,
    since: std::time::Duration,
) -> ExitCode {
    let since = rule
        .as_ref()
        .map(|_| igmod::timefmt::ago(chrono::Utc::now(), since));
    with_database(path, config::Secrets::Required, |c, store| async move {
        let who = operator();
        let report = igmod::undo::undo(
            &c,
            &store,
            comment_id.as_deref(),
            rule.as_deref(),
            since,
            who.as_deref(),
        )
        .await?;
        for line in &report.lines {
            println!("{line}");
        }
        if report.failed > 0 {
            anyhow::bail!("{} unhide(s) failed", report.failed);
        }
        Ok(())
    })
}

fn model_command(command: ModelCommand) -> ExitCode {
    use igmod::training;
    match command {
        ModelCommand::Info { path } => match training::load_model(&path) {
            Ok(model) => {
                print!("{}", training::describe(&model));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("igmod: {e}");
                ExitCode::from(EX_CONFIG as u8)
            }
        },
        ModelCommand::Train {
            data,
            output,
            text_column,
            label_column,
            cv,
            seed,
            l2,
            also,
            labels_from_db,
            config,
            held_out,
            block_weights,
            hash_bits,
            chars,
            handles,
            no_word_pairs,
        } => exit((|| {
            let started = std::time::Instant::now();
            let read = |path: &PathBuf,
                        source: training::Source|
             -> anyhow::Result<Vec<training::Example>> {
                Ok(read_labeled(path, &text_column, &label_column)?
                    .into_iter()
                    .map(|r| training::Example::new(r.text, r.label, source))
                    .collect())
            };
            let mut examples: Vec<training::Example> =
                evaluate::read_labeled_paths(&data, &text_column, &label_column)?
                    .into_iter()
                    .map(|r| training::Example::new(r.text, r.label, training::Source::Data))
                    .collect();
            for path in &also {
                examples.extend(read(path, training::Source::Extra)?);
            }
            if labels_from_db {
                let c = config::load_with(&config, config::Secrets::NotNeeded)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let labels = runtime()?.block_on(async {
                    let store = open_existing(&c).await?;
                    let labels = store.latest_labels().await;
                    store.close().await;
                    anyhow::Ok(labels?)
                })?;
                let pruned = labels.iter().filter(|l| l.text.is_none()).count();
                let (relabeled, added) = training::merge_labels(
                    &mut examples,
                    labels
                        .into_iter()
                        .filter_map(|l| Some((l.text?, l.label == "scam"))),
                );
                println!(
                    "operators' labels: {added} rows added, {relabeled} rows relabeled{}",
                    if pruned > 0 {
                        format!(", {pruned} skipped (their text was pruned by retain)")
                    } else {
                        String::new()
                    }
                );
            }
            let mut options = training::Options {
                c: l2,
                folds: cv,
                seed,
                ..training::Options::default()
            };
            if let Some(w) = block_weights {
                for (slot, v) in options.settings.weights.iter_mut().zip(w) {
                    *slot = v;
                }
            }
            if let Some(bits) = hash_bits {
                options.settings.hash_bits = bits;
            }
            if let Some(c) = chars {
                options.settings.char_min = c.first().copied().unwrap_or(3);
                options.settings.char_max = c.get(1).copied().unwrap_or(3);
            }
            if let Some(h) = handles {
                options.settings.handle_min = h.first().copied().unwrap_or(2);
                options.settings.handle_max = h.get(1).copied().unwrap_or(5);
            }
            if no_word_pairs {
                options.settings.word_pairs = false;
            }
            let trained = training::train(&examples, &options)?;
            let labels: Vec<bool> = examples.iter().map(|e| e.label).collect();
            print!("{}", training::summary(&trained, &labels));
            if let Some(path) = held_out {
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record(["text", "label", "score", "fold"])?;
                for (i, e) in examples.iter().enumerate() {
                    w.write_record([
                        e.text.as_str(),
                        if e.label { "1" } else { "0" },
                        &format!("{:.4}", trained.held_out[i]),
                        &(trained.fold_of[i] + 1).to_string(),
                    ])?;
                }
                igmod::outfile::write_private(&path, &w.into_inner()?)?;
            }
            let bytes = trained.parts.to_bytes();
            training::write_model(&output, &bytes)
                .with_context(|| format!("cannot write {}", output.display()))?;
            println!(
                "wrote {} ({} bytes, sha256 {}) in {:.1} s",
                output.display(),
                bytes.len(),
                training::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        })()),
    }
}

fn run(path: &std::path::Path) -> ExitCode {
    let c = match config::load(path) {
        Ok(c) => c,
        Err(e) => return config_failed(&e),
    };
    let guard = logging::init(
        logging::Destination::of(&c.daemon),
        c.daemon.log_level.as_deref(),
    );
    exit(runtime().and_then(|rt| {
        rt.block_on(async {
            let (shutdown, reloads) = signals()?;
            daemon::run_with_reload(c, shutdown, reloads, |new| guard.apply(&new.daemon))
                .await
                .map_err(anyhow::Error::from)
        })
    }))
}

/// Signals: the first SIGTERM or SIGINT resolves the returned future (graceful stop); a
/// second one exits at once; each SIGHUP sends a reload request.
fn signals() -> anyhow::Result<(
    impl std::future::Future<Output = ()>,
    tokio::sync::mpsc::Receiver<()>,
)> {
    use futures::StreamExt;
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook_tokio::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("cannot install signal handlers")?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel::<()>(4);
    tokio::spawn(async move {
        let mut tx = Some(tx);
        while let Some(signal) = signals.next().await {
            if signal == SIGHUP {
                tracing::info!(message = "SIGHUP received: reloading the config");
                let _ = reload_tx.try_send(());
                continue;
            }
            match tx.take() {
                Some(tx) => {
                    tracing::info!(message = "stop signal received", signal);
                    let _ = tx.send(());
                }
                None => {
                    tracing::warn!(message = "second stop signal: exiting now");
                    std::process::exit(130);
                }
            }
        }
    });
    Ok((
        async move {
            let _ = rx.await;
        },
        reload_rx,
    ))
}
