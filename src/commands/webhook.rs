//! `igmod webhook subscribe|unsubscribe|status`: the account's webhook subscription at Meta.

use std::process::ExitCode;

use super::with_database;
use crate::cli::*;
use crate::config;

/// `igmod webhook subscribe|unsubscribe|status --account NAME`.
pub fn webhook(command: WebhookCommand) -> ExitCode {
    use crate::webhook::subscribe::Op;
    let (config, account, op) = match command {
        WebhookCommand::Subscribe { config, account } => (config, account, Op::Subscribe),
        WebhookCommand::Unsubscribe { config, account } => (config, account, Op::Unsubscribe),
        WebhookCommand::Status { config, account } => (config, account, Op::Status),
    };
    webhook_subscription(&config.config, account, op)
}

fn webhook_subscription(
    path: &std::path::Path,
    account: String,
    op: crate::webhook::subscribe::Op,
) -> ExitCode {
    with_database(path, config::Secrets::Required, |c, store| async move {
        let Some(a) = c.accounts.iter().find(|a| a.name == account) else {
            anyhow::bail!("no account named {account:?}");
        };
        let token = crate::tokens::current(&store, a).await?;
        let (client, budget) = crate::daemon::client_and_budget(&c, a, &store).await?;
        let said = crate::webhook::subscribe::run(&client, &budget, &token, a, op).await?;
        println!("{said}");
        if c.webhook.is_none() && op != crate::webhook::subscribe::Op::Unsubscribe {
            println!(
                "note: this config has no [webhook] section, so this igmod receives no deliveries"
            );
        }
        Ok(())
    })
}
