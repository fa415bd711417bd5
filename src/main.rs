//! The `igmod` command line: parses arguments and calls the command's body in
//! [`igmod::commands`]. No logic lives here.

use std::process::ExitCode;

use clap::Parser;

use igmod::cli::*;
use igmod::commands;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckConfig(arg) => commands::check_config::check_config(&arg.config),
        Command::Rules { command } => commands::rules::rules_command(command),
        Command::Status { config, json } => commands::status::status(&config.config, json),
        Command::Token {
            command: TokenCommand::Status { config },
        } => commands::token::token_status(&config.config),
        Command::Token {
            command: TokenCommand::Refresh { config, account },
        } => commands::token::token_refresh(&config.config, account),
        Command::Alerts {
            command: AlertsCommand::Test { config },
        } => commands::alerts::alerts_test(&config.config),
        Command::Report {
            config,
            since,
            output,
        } => commands::report::report(&config.config, since, output),
        Command::Webhook { command } => commands::webhook::webhook(command),
        Command::Undo {
            config,
            comment_id,
            rule,
            since,
        } => commands::undo::undo(&config.config, comment_id, rule, since),
        Command::Audit {
            config,
            account,
            since,
            action,
            rule,
            limit,
            json,
        } => commands::status::audit(&config.config, account, since, action, rule, limit, json),
        Command::Run(arg) => commands::run::run(&arg.config),
        Command::Model { command } => commands::model::model_command(command),
        Command::Label {
            config,
            comment_id,
            label,
            by,
        } => commands::labels::label_comment(&config.config, comment_id, &label, by),
        Command::Labels {
            command: LabelsCommand::Export { config, output },
        } => commands::labels::labels_export(&config.config, output),
        Command::Init(args) => commands::init::init(args),
        Command::Demo {
            seconds,
            dir,
            model,
            no_model,
        } => commands::demo::demo(seconds, dir, model, no_model),
    }
}
