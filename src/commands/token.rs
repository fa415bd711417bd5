//! `igmod token status|refresh`: each account's token as stored, and a refresh on demand.

use std::process::ExitCode;

use super::with_database;
use crate::config;

pub fn token_status(path: &std::path::Path) -> ExitCode {
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
                stored.and_then(crate::timefmt::parse).map(|e| {
                    format!(
                        "{} ({} days left)",
                        crate::timefmt::format(e),
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

pub fn token_refresh(path: &std::path::Path, account: String) -> ExitCode {
    with_database(path, config::Secrets::Required, |c, store| async move {
        let Some(a) = c.accounts.iter().find(|a| a.name == account) else {
            anyhow::bail!("no account named {account:?}");
        };
        if a.login == config::Login::Facebook && c.app.is_none() {
            anyhow::bail!(
                "{account}: a Facebook Login token can only be extended with the app's credentials; add [app] to the config"
            );
        }
        let token = crate::tokens::current(&store, a).await?;
        let (client, budget) = crate::daemon::client_and_budget(&c, a, &store).await?;
        let app = c.app.as_ref();
        if crate::store::Store::token_record(&store, &a.name)
            .await?
            .never_expires
        {
            println!("{account}: a Page token never expires; nothing to refresh");
            return Ok(());
        }
        let cx = crate::tokens::TokenCtx {
            store: &store,
            budget: &budget,
            client: &client,
            account: a,
            app,
        };
        match crate::tokens::maybe_refresh(cx, &token, true).await? {
            crate::tokens::Refresh::Refreshed(_, days) => {
                println!("{account}: token refreshed; it is valid for {days} days");
                Ok(())
            }
            crate::tokens::Refresh::Refused(why) => {
                anyhow::bail!("{account}: refresh refused: {why}")
            }
            crate::tokens::Refresh::NotDue => {
                anyhow::bail!(
                    "{account}: cannot refresh now (budget spent, account paused, or the app secret unreadable: see the log)"
                )
            }
        }
    })
}
