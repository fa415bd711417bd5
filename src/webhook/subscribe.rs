//! `igmod webhook subscribe|unsubscribe|status ACCOUNT`: the account's side of the webhook
//! subscription (the app's side, the callback URL and verify token, is set once in Meta's App
//! Dashboard). Instagram Login subscribes `me`; Facebook Login subscribes the Page linked to
//! the Instagram account (found through every page of `me/accounts`), with the Page's token,
//! which needs `pages_manage_metadata` for it.

use secrecy::SecretString;

use crate::budget::{Budget, CallError, CallKind};
use crate::config::{AccountConfig, Login};
use crate::graph::{self, ErrorKind, GraphError, SubscribedApp};

/// The fields asked for on Instagram Login (comments, and comments on live videos).
pub const INSTAGRAM_FIELDS: &str = "comments,live_comments";
/// Facebook Login: the Page's subscription only needs to be on (the Instagram fields are
/// chosen in the App Dashboard); `feed` is the field Meta's guides use.
pub const PAGE_FIELDS: &str = "feed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Subscribe,
    Unsubscribe,
    Status,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("{0}")]
    Call(#[from] CallError),
    #[error("{account}: {explanation} (Meta said: {error})")]
    Refused {
        account: String,
        explanation: &'static str,
        error: GraphError,
    },
    #[error(
        "{account}: no Facebook Page this token manages is linked to Instagram account {ig_user_id}; the Page must be connected to the professional account and the token must be its admin's"
    )]
    NoPage { account: String, ig_user_id: String },
}

/// What Meta's refusals mean for a subscription, in plain words.
fn explain(e: &GraphError, login: Login) -> &'static str {
    match (e.kind, login) {
        // Meta names the permission it misses (code 200, graph-api.md §12).
        (ErrorKind::Permission, Login::Facebook) if e.lacks_permission("pages_manage_metadata") => {
            "Meta refused the subscription: the token lacks pages_manage_metadata, which Meta requires to subscribe a Page to webhooks (Facebook Login); log in again granting pages_manage_metadata, then put the new token in the account's token file"
        }
        (ErrorKind::Permission, Login::Instagram) => {
            "Meta refused the subscription: the app lacks access. Webhooks reach only apps in Live mode with Advanced Access to instagram_business_manage_comments, and the token must grant that permission"
        }
        (ErrorKind::Permission, Login::Facebook) => {
            "Meta refused the subscription: the app lacks access. It needs to be Live with Advanced Access to instagram_manage_comments and pages_manage_metadata, and the Page token must grant them"
        }
        (ErrorKind::TokenInvalid { .. }, _) => {
            "the account's token is dead; a person must log in again"
        }
        (ErrorKind::AppSecretProof, _) => {
            "the app requires appsecret_proof: add [app] with the app secret to the config"
        }
        (ErrorKind::BadRequest, _) => {
            "Meta refused the request; usually the app has no Instagram webhook set up (App Dashboard → Webhooks → Instagram: callback URL, verify token, and the comments field subscribed)"
        }
        (ErrorKind::Throttled { .. }, _) => "Meta is rate limiting this account; try later",
        _ => "Meta could not be reached or answered oddly; try again",
    }
}

/// Runs one operation and returns what to print.
pub async fn run(
    client: &graph::Client,
    budget: &Budget,
    token: &SecretString,
    account: &AccountConfig,
    op: Op,
) -> Result<String, SubscribeError> {
    let refused = |e: CallError| match e {
        CallError::Graph(g) => SubscribeError::Refused {
            account: account.name.clone(),
            explanation: explain(&g, account.login),
            error: g,
        },
        other => SubscribeError::Call(other),
    };
    let (node, node_token, fields, what) = match account.login {
        Login::Instagram => (
            "me".to_string(),
            token.clone(),
            INSTAGRAM_FIELDS,
            "the Instagram account".to_string(),
        ),
        Login::Facebook => {
            let (page, page_token) =
                page_of(client, budget, token, account)
                    .await
                    .map_err(|e| match e {
                        PageError::Call(c) => refused(c),
                        PageError::Missing => SubscribeError::NoPage {
                            account: account.name.clone(),
                            ig_user_id: account.ig_user_id.clone(),
                        },
                    })?;
            (
                page.clone(),
                page_token,
                PAGE_FIELDS,
                format!("Page {page}"),
            )
        }
    };
    match op {
        Op::Subscribe => {
            budget
                .call_once(CallKind::Write, || {
                    client.subscribe_app(&node_token, &node, fields)
                })
                .await
                .map_err(refused)?;
            Ok(format!(
                "{}: {what} now sends this app's webhooks ({fields})",
                account.name
            ))
        }
        Op::Unsubscribe => {
            budget
                .call_once(CallKind::Write, || {
                    client.unsubscribe_app(&node_token, &node)
                })
                .await
                .map_err(refused)?;
            Ok(format!(
                "{}: {what} no longer sends this app's webhooks; polling alone moderates it",
                account.name
            ))
        }
        Op::Status => {
            let apps = budget
                .call(CallKind::Read, || {
                    client.subscribed_apps(&node_token, &node)
                })
                .await
                .map_err(refused)?
                .value;
            Ok(describe(&account.name, &what, &apps))
        }
    }
}

fn describe(account: &str, what: &str, apps: &[SubscribedApp]) -> String {
    if apps.is_empty() {
        return format!(
            "{account}: {what} is not subscribed to any app's webhooks (`igmod webhook subscribe {account}`)"
        );
    }
    let list: Vec<String> = apps
        .iter()
        .map(|a| {
            format!(
                "{} ({})",
                a.name.as_deref().or(a.id.as_deref()).unwrap_or("an app"),
                if a.fields.is_empty() {
                    "no fields".to_string()
                } else {
                    a.fields.join(", ")
                }
            )
        })
        .collect();
    format!("{account}: {what} is subscribed: {}", list.join("; "))
}

enum PageError {
    Call(CallError),
    Missing,
}

/// The Page linked to the account and a token that speaks for it: the user's Pages when the
/// token is a user token, else the token's own node when it is the Page's.
async fn page_of(
    client: &graph::Client,
    budget: &Budget,
    token: &SecretString,
    account: &AccountConfig,
) -> Result<(String, SecretString), PageError> {
    // `me/accounts` is paged (graph-api.md §12): a person who manages many Pages may have
    // the account's on a later page. Read until it is found or Meta says there is no more.
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES_READ {
        let listed = budget
            .call(CallKind::Read, || client.pages(token, after.as_deref()))
            .await;
        let page = match listed {
            Ok(reply) => reply.value,
            // A Page token has no `accounts` edge: the token's own node is the Page.
            Err(CallError::Graph(g)) if g.kind == ErrorKind::BadRequest && after.is_none() => {
                return page_token_node(client, budget, token, account).await;
            }
            Err(e) => return Err(PageError::Call(e)),
        };
        if let Some(found) = page
            .items
            .into_iter()
            .find(|p| p.ig_user_id.as_deref() == Some(account.ig_user_id.as_str()))
        {
            let page_token = found.page_token.unwrap_or_else(|| token.clone());
            return Ok((found.page_id, page_token));
        }
        match page.after {
            // A cursor that does not move would loop: the list ends there.
            Some(next) if after.as_deref() != Some(next.as_str()) => after = Some(next),
            _ => break,
        }
    }
    Err(PageError::Missing)
}

/// Pages of `me/accounts` read at most (25 Pages each): a bound against an answer whose
/// cursor never ends, far past any real person's Pages.
const MAX_PAGES_READ: usize = 400;

/// A Page token: its own node is the Page, linked (or not) to the account.
async fn page_token_node(
    client: &graph::Client,
    budget: &Budget,
    token: &SecretString,
    account: &AccountConfig,
) -> Result<(String, SecretString), PageError> {
    let me = budget
        .call(CallKind::Read, || client.page_me(token))
        .await
        .map_err(PageError::Call)?
        .value;
    if me.ig_user_id.as_deref() == Some(account.ig_user_id.as_str()) {
        Ok((me.page_id, token.clone()))
    } else {
        Err(PageError::Missing)
    }
}
