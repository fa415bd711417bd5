//! The command line's definition, apart from what the commands do, so that the build script
//! can generate the man pages and shell completions from the same definition.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// What `igmod --version` prints: the version and the git commit it was built from (set by
/// the build script; the build script's own copy of this file has only the version).
pub const VERSION: &str = match option_env!("IGMOD_VERSION_LONG") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

#[derive(Parser)]
#[command(
    name = "igmod",
    version = VERSION,
    about = "Keeps Instagram comment sections clean"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args)]
pub struct ConfigArg {
    /// Config file.
    #[arg(
        short,
        long,
        env = "IGMOD_CONFIG",
        default_value = "/etc/igmod/config.toml"
    )]
    pub config: PathBuf,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run(ConfigArg),
    /// Validate the config and print a summary (secrets are never shown).
    CheckConfig(ConfigArg),
    /// Work with moderation rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Per account: token, polls, effective interval, budget, throttling, last 24 h, last error.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Recent decisions with the comment, rule, reason and action status.
    Audit {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        account: Option<String>,
        /// How far back (e.g. 24h, 7d).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// Only this action (approve, delete, hide, reply, flag).
        #[arg(long)]
        action: Option<String>,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 200)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Access tokens: expiry and refresh.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Write one self-contained HTML report (charts, tables) of what igmod did.
    Report {
        #[command(flatten)]
        config: ConfigArg,
        /// How far back (e.g. 30d, 7d).
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// The HTML file to write.
        #[arg(short, long, default_value = "report.html")]
        output: PathBuf,
    },
    /// Alerts without Prometheus (`[[alerts]]`).
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
    },
    /// Meta's webhooks: subscribe an account so its new comments are pushed to igmod.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Unhide what igmod hid (one comment, or every hide of a rule since a time). Deletes cannot
    /// be undone.
    Undo {
        #[command(flatten)]
        config: ConfigArg,
        /// The comment to unhide.
        #[arg(required_unless_present = "rule")]
        comment_id: Option<String>,
        /// Every comment this rule hid...
        #[arg(long)]
        rule: Option<String>,
        /// ...since this long ago (with --rule).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
    },
    /// Label a stored comment for the classifier: `scam` (it should have been moderated) or
    /// `ok` (it should have been left alone). Retrain with `model train --labels-from-db`.
    Label {
        #[command(flatten)]
        config: ConfigArg,
        comment_id: String,
        /// `scam` or `ok`.
        #[arg(value_parser = ["scam", "ok"])]
        label: String,
        /// Who labels (default: the login name, through sudo too).
        #[arg(long)]
        by: Option<String>,
    },
    /// Operators' labels (from `igmod label` and `igmod undo`).
    Labels {
        #[command(subcommand)]
        command: LabelsCommand,
    },
    /// The comment classifier: train a model, show what a model file holds.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Write a first config for one account (asking for what the flags leave out), check it,
    /// and print the next commands. Never overwrites a config without --force.
    Init(InitArgs),
    /// Run the real daemon against the bundled Graph API simulator and show what it did.
    Demo {
        /// How long to let comments arrive.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Where to put the demo's config and audit database (default: a new temp dir, kept).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The classifier model the demo's rules use (copied into the demo's directory).
        #[arg(long, default_value = "models/scam.model")]
        model: PathBuf,
        /// Run the demo with the rules alone.
        #[arg(long)]
        no_model: bool,
    },
}

#[derive(Subcommand)]
pub enum LabelsCommand {
    /// Write every labeled comment's text and latest label as CSV (text,label,comment_id,
    /// account,username,source,who,labeled_at; label 1 = scam, 0 = ok), ready for
    /// `model train` and `rules eval`.
    Export {
        #[command(flatten)]
        config: ConfigArg,
        /// The CSV file to write.
        output: PathBuf,
    },
}

// Parsed once per process: the size of `Train`'s options costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum ModelCommand {
    /// Train a model on labeled comments, cross-validate it and write the model file.
    Train {
        /// RFC 4180 CSVs with a header row: a text column and a label column (1 = scam or
        /// spam, 0 = leave alone), and a `weight` column if rows should count more or less
        /// than once in the fit (0.01-100, default 1); a folder stands for its `*.csv` files.
        /// Every file's rows are cross-validated together.
        #[arg(required = true)]
        data: Vec<PathBuf>,
        /// Where to write the model (replaced whole, never half-written).
        #[arg(short, long)]
        output: PathBuf,
        /// CSV column holding the comment text.
        #[arg(long, default_value = "text")]
        text_column: String,
        /// CSV column holding the label.
        #[arg(long, default_value = "label")]
        label_column: String,
        /// Folds of cross-validation (2-20): the figures are printed and stored in the
        /// model, and the calibration is fitted on the held-out scores.
        #[arg(long, default_value_t = 5)]
        cv: u32,
        /// Seed of the fold assignment (the same data and seed give the same file).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Inverse strength of the L2 penalty (liblinear's C): larger follows the training
        /// rows more closely.
        #[arg(long, default_value_t = 10.0)]
        l2: f64,
        /// More labeled rows (same columns) that join every fold's training and are never
        /// held out, so the cross-validation figures stay about DATA; repeatable.
        #[arg(long, value_name = "CSV")]
        also: Vec<PathBuf>,
        /// Add the operators' labels (`igmod label`, `igmod undo`) from the config's database;
        /// a label on a text the data holds relabels it.
        #[arg(long)]
        labels_from_db: bool,
        /// The config whose database --labels-from-db reads.
        #[arg(
            short,
            long,
            env = "IGMOD_CONFIG",
            default_value = "/etc/igmod/config.toml"
        )]
        config: PathBuf,
        /// Also write each row's held-out score (CSV: text, label, score, fold) here, to read
        /// what the model gets wrong.
        #[arg(long)]
        held_out: Option<PathBuf>,
        /// Feature block weights (chars, words, handles, signals), for tuning.
        #[arg(long, hide = true, value_delimiter = ',')]
        block_weights: Option<Vec<f32>>,
        /// Hash table size as a power of two, for tuning.
        #[arg(long, hide = true)]
        hash_bits: Option<u8>,
        /// Shortest and longest character n-grams, for tuning.
        #[arg(long, hide = true, value_delimiter = ',')]
        chars: Option<Vec<u8>>,
        /// Shortest and longest handle n-grams, for tuning.
        #[arg(long, hide = true, value_delimiter = ',')]
        handles: Option<Vec<u8>>,
        /// Single words only, no word pairs, for tuning.
        #[arg(long, hide = true)]
        no_word_pairs: bool,
    },
    /// Show what a model file holds: its settings, training set and cross-validation figures.
    Info {
        /// The model file.
        path: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// Send a sample alert to every [[alerts]] target now; exit 1 if one fails.
    Test {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Subscribe the account (Instagram Login: the account; Facebook Login: its Page, which
    /// needs the pages_manage_metadata permission) to the app's webhooks for comments and
    /// live comments.
    Subscribe {
        #[command(flatten)]
        config: ConfigArg,
        account: String,
    },
    /// End the account's subscription (polling alone moderates it then).
    Unsubscribe {
        #[command(flatten)]
        config: ConfigArg,
        account: String,
    },
    /// Which apps the account sends webhooks to, and for which fields.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        account: String,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Per account: where the token comes from, its state and how many days it has left.
    Status {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Refresh an account's Instagram Login token now (stored, then used by the daemon).
    Refresh {
        #[command(flatten)]
        config: ConfigArg,
        account: String,
    },
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Show which rules and conditions match a text, with the matched spans, the decision,
    /// and each classifier's score with the features that pushed it most. No network.
    Test {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        select: Select,
        /// The commenter's username.
        #[arg(long)]
        username: Option<String>,
        /// Treat the text as a reply.
        #[arg(long)]
        reply: bool,
        text: String,
    },
    /// Measure the rules on labeled comments: per-rule hits, precision, recall, F1.
    Eval {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        select: Select,
        /// CSV column holding the comment text.
        #[arg(long, default_value = "text")]
        text_column: String,
        /// CSV column holding the label: 1 = should be moderated, 0 = leave alone.
        #[arg(long, default_value = "label")]
        label_column: String,
        /// Also print, for each classifier the rules use, precision, recall, F1 and counts
        /// at thresholds from 0.1 to 0.99 (with --cv: of the scores held out in its folds).
        #[arg(long)]
        sweep: bool,
        /// Cross-validate instead: judge each of K folds with the rules' models retrained on
        /// the other folds (what the rules would do on comments their models never saw).
        #[arg(long, value_name = "K")]
        cv: Option<u32>,
        /// Seed of the folds of --cv.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// With --cv: more labeled rows that join every fold's training (as `model train
        /// --also` did for the model), never judged; repeatable.
        #[arg(long, value_name = "CSV", requires = "cv")]
        also: Vec<PathBuf>,
        /// Write the rows the rules got wrong (missed, or moderated though labeled 0) to this
        /// CSV: source, lang, label, action, rule, the model's score (held out under --cv),
        /// username, text (a cell a spreadsheet would take for a formula starts with ').
        #[arg(long, value_name = "CSV")]
        mistakes: Option<PathBuf>,
        /// RFC 4180 CSV files with a header row (a folder stands for its `*.csv` files);
        /// results are also given per file and per value of a `source` or `lang` column. A
        /// `weight` column counts in --cv's training only: every row counts once here.
        #[arg(required = true)]
        file: Vec<PathBuf>,
    },
    /// Run today's rules over stored comments and report what would change.
    Replay {
        #[command(flatten)]
        config: ConfigArg,
        /// How far back (e.g. 7d, 24h).
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// Try this model file in place of every model the rules use, before switching to it.
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

/// Which rules `rules test` and `rules eval` run.
#[derive(clap::Args)]
pub struct Select {
    /// Run this account's rules (default: the first account's) and use its known username
    /// for impersonation.
    #[arg(long, conflicts_with = "all_rules")]
    pub account: Option<String>,
    /// Run every rule loaded, whether or not an account selects it.
    #[arg(long)]
    pub all_rules: bool,
}

/// `igmod init`'s flags; questions fill in what they leave out.
#[derive(clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The account's name in logs and audit rows.
    #[arg(long, default_value = "main")]
    pub name: String,
    /// How the token was issued: Instagram Login or Facebook Login (through a Page).
    #[arg(long, value_parser = ["instagram", "facebook"])]
    pub login: Option<String>,
    /// The account's Instagram user id (digits).
    #[arg(long)]
    pub ig_user_id: Option<String>,
    /// The environment variable the token will be in (default IGMOD_TOKEN_<NAME>).
    #[arg(long, conflicts_with = "token_file")]
    pub token_env: Option<String>,
    /// The file the token will be in (or a systemd credential's name).
    #[arg(long)]
    pub token_file: Option<String>,
    /// The audit database.
    #[arg(long, default_value = "/var/lib/igmod/igmod.db")]
    pub database: PathBuf,
    /// The classifier model (default: the packaged one, else ./models/scam.model).
    #[arg(long, conflicts_with = "no_model")]
    pub model: Option<PathBuf>,
    /// Leave the classifier out (the starter rules alone).
    #[arg(long)]
    pub no_model: bool,
    /// Replace an existing config.
    #[arg(long)]
    pub force: bool,
}
