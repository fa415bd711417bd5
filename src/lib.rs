//! igmod keeps Instagram business accounts' comment sections clean.
//!
//! Map of the crate (dependencies point down this list, never up):
//!
//! - [`daemon`]: wiring. Starts one task per account, the maintenance jobs, and stops them on shutdown.
//! - [`scheduler`]: one account's loop: sleep until the due time stored in SQLite, poll, store the next due time.
//! - [`poller`]: one poll of one account: media list, new comments, rules, decisions, then [`actions`].
//! - [`raid`]: the raid guard: a post flooded by a bot wave gets its comments switched off for a while.
//! - [`actions`]: the outbox. Pending rows are written before a Graph API write and closed after it;
//!   outcomes unknown at a crash are reconciled by reading the comment back first.
//! - [`tokens`]: where an account's token comes from, which one to use, and its refresh before expiry.
//! - [`budget`]: the per-account call gate: rolling-hour ledger in SQLite, pacing, retries, pauses.
//! - [`graph`]: the only code that knows Graph API URLs, headers, JSON shapes and error codes.
//! - [`rules`]: pure moderation rules: comment in, decision and evidence out. No IO.
//! - [`store`]: the only code that contains SQL.
//! - [`http`]: the one hardened HTTP server (timeouts, connection cap) the receiver and metrics run on.
//! - [`config`]: `config.toml` → validated [`config::Config`], every problem with file:line:col.
//! - [`simulator`]: a stateful Graph API simulator for the demo and the tests. Shares no types with [`graph`].
//! - [`demo`]: `igmod demo`: the simulator, the real daemon, and a summary.
//! - [`training`]: training the comment classifier: features, L-BFGS, cross-validation, calibration.
//! - [`evaluate`]: `rules test`, `rules eval` (precision/recall on labeled CSV), `rules replay`.
//! - [`undo`]: `igmod undo`: unhide what igmod hid, recorded like every action.
//! - [`status`]: `igmod status` and `igmod audit`, as tables or JSON.
//! - [`outfile`]: files the operator's commands write: owner-only, never through a symlink.
//! - [`logging`]: tracing subscriber set-up (stderr/journald or rotated files, text or JSON).
//! - [`timefmt`]: the one timestamp format used in SQLite, and tolerant parsing of Meta's.

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
pub mod report_html;
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
