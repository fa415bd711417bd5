//! igmod keeps Instagram business accounts' comment sections clean.
//!
//! Map of the crate, in layers: a module imports only modules further down this list, never
//! up (`tests/layers.rs` fails on any import cycle; ARCHITECTURE.md draws the layers).
//!
//! Operator commands:
//! - [`commands`]: the body of each `igmod` command; `main.rs` parses [`cli`] and calls one.
//! - [`demo`]: `igmod demo`: the simulator, the real daemon, and a summary.
//! - [`undo`]: `igmod undo`: unhide what igmod hid, recorded like every action.
//! - [`init`]: `igmod init`: one account's answers → a commented, checked config.
//! - [`status`]: `igmod status` and `igmod audit`, as tables or JSON.
//! - [`report`]: `igmod report`: one HTML file of charts and tables.
//! - [`logging`]: tracing subscriber set-up (stderr/journald or rotated files, text or JSON).
//!
//! The daemon:
//! - [`daemon`]: wiring. Starts one task per account, the maintenance jobs, and stops them on shutdown.
//! - [`review`]: the review queue in the browser (`[review]`): reviewers' verdicts become labels
//!   and, through the outbox, at most one write each.
//! - [`evaluate`]: `rules test`, `rules eval` (precision/recall on labeled CSV), `rules replay`
//!   (the review queue shows a candidate model's replay).
//! - [`scheduler`]: one account's loop: sleep until the due time stored in SQLite, poll, store the next due time.
//! - [`webhook`]: Meta's deliveries: the receiver, their payloads, the account's inbox, subscriptions.
//! - [`poller`]: one poll of one account: media list, new comments, rules, decisions, then [`actions`].
//! - [`raid`]: the raid guard: a post flooded by a bot wave gets its comments switched off for a while.
//! - [`actions`]: the outbox. Pending rows are written before a Graph API write and closed after it;
//!   outcomes unknown at a crash are reconciled by reading the comment back first.
//! - [`account`]: one account's context ([`account::AccountCtx`]) and what stops its work
//!   ([`account::PollError`]), shared by all of the above.
//! - [`tokens`]: which token an account uses, its validation, and its refresh before expiry.
//! - [`budget`]: the per-account call gate: rolling-hour ledger in SQLite, pacing, retries, pauses.
//! - [`alerts`]: `[[alerts]]`: conditions, dedupe, delivery to commands and URLs.
//! - [`lease`]: which accounts this instance may work on.
//! - [`http`]: the one hardened HTTP server (timeouts, connection cap) the receiver and metrics run on.
//! - [`metrics`]: the process's Prometheus metrics, `/metrics`, `/healthz`, `/readyz`.
//!
//! Data and pure logic:
//! - [`store`]: the only code that contains SQL; it connects to the [`config::database::Database`] configured.
//! - [`config`]: `config.toml` → validated [`config::Config`], every problem with file:line:col.
//! - [`training`]: training the comment classifier: features, L-BFGS, cross-validation, calibration.
//! - [`rules`]: pure moderation rules: comment in, decision and evidence out. No IO.
//! - [`graph`]: the only code that knows Graph API URLs, headers, JSON shapes and error codes.
//! - [`secrets`]: where a secret comes from (env, files, credentials, the service's env file).
//! - [`simulator`]: a stateful Graph API simulator for the demo and the tests. Shares no types with [`graph`].
//! - [`outfile`]: files the operator's commands write: owner-only, never through a symlink.
//! - [`timefmt`]: the one timestamp format used in SQLite, and tolerant parsing of Meta's.
//! - [`cli`]: the command line's definition (clap), also read by `build.rs` for man pages.

pub mod account;
pub mod actions;
pub mod alerts;
pub mod budget;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod evaluate;
pub mod graph;
pub mod http;
pub mod init;
pub mod lease;
pub mod logging;
pub mod metrics;
pub mod outfile;
pub mod poller;
pub mod raid;
pub mod report;
pub mod review;
pub mod rules;
pub mod scheduler;
pub mod secrets;
pub mod simulator;
pub mod status;
pub mod store;
pub mod timefmt;
pub mod tokens;
pub mod training;
pub mod undo;
pub mod webhook;

/// Exit code for configuration errors (sysexits.h `EX_CONFIG`), so systemd's
/// `RestartPreventExitStatus=78` stops a crash loop on a bad config.
pub const EX_CONFIG: i32 = 78;
