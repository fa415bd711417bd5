//! The Graph API client: the only code that knows URLs, headers, JSON shapes and error codes.
//!
//! Tokens travel in the `Authorization: Bearer` header, never in a URL. Pagination is rebuilt
//! from `paging.cursors.after`; the `paging.next` URL Meta returns embeds the token, so it is
//! read only to know whether a next page exists and is never stored or logged.
//! Every call returns a [`CallInfo`] (method, path, HTTP status, usage headers) for the ledger,
//! whether it succeeded or not.
//!
//! Whole on purpose: every endpoint shares one send/decode/error path of one Client.

mod error;
pub mod id;
mod usage;
mod wire;

use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

pub use error::{ErrorKind, GraphError, scrub};
pub use id::{IdSource, is_meta_id};
pub use usage::{ObjectUsage, Usage};
pub use wire::{TokenInfo, id_of};

/// Comment fields asked for on every listing. `from` and `hidden` are asked inside `replies{}`
/// too: leaving them out there is a classic mistake (graph-api.md §10).
/// `user` comes back only on comments the app user (the account) made: the surest own-comment
/// marker (graph-api.md §3, §12).
const COMMENT_FIELDS: &str = "id,text,timestamp,username,from,hidden,parent_id,user";
/// Media fields the IG Media reference documents for Facebook Login only (graph-api.md §1,
/// §12): an Instagram Login token may be refused them ("nonexisting field").
pub const FACEBOOK_LOGIN_ONLY_MEDIA_FIELDS: [&str; 1] = ["media_product_type"];

/// The media fields asked for on a login, as documented for it: `media_type` on both,
/// `media_product_type` (which tells a live video, `LIVE`) on Facebook Login only.
pub fn media_fields(facebook: bool) -> Vec<&'static str> {
    let mut fields = vec!["id", "timestamp", "comments_count", "media_type"];
    if facebook {
        fields.extend(FACEBOOK_LOGIN_ONLY_MEDIA_FIELDS);
    }
    fields
}

/// Comments per page: the API's maximum.
pub const COMMENTS_PAGE: u32 = 50;
/// Replies asked for inline per top-level comment: nested edges in every comment of a 50-comment
/// page weigh on Meta's `total_cputime`, so few inline; longer threads are paged on their own
/// (graph-api.md §11).
pub const INLINE_REPLIES: u32 = 10;

/// The process's HTTP clients, one per timeout (the only setting they differ in). reqwest keeps
/// a connection pool per host inside each, so every account of a host shares its connections.
fn shared_http(timeout: Duration) -> Result<reqwest::Client, GraphError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CLIENTS: OnceLock<Mutex<HashMap<Duration, reqwest::Client>>> = OnceLock::new();
    let clients = CLIENTS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut clients = match clients.lock() {
        Ok(c) => c,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(http) = clients.get(&timeout) {
        return Ok(http.clone());
    }
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("igmod/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| GraphError {
            kind: ErrorKind::BadRequest,
            code: None,
            subcode: None,
            message: error::scrub(&e.without_url().to_string()),
            fbtrace_id: None,
            call: Box::new(CallInfo {
                method: "INIT",
                endpoint: String::new(),
                status: None,
                usage: Usage::default(),
                trace: None,
                odd: Vec::new(),
            }),
        })?;
    clients.insert(timeout, http.clone());
    Ok(http)
}

/// What one HTTP request was, for the ledger and for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub method: &'static str,
    /// Path only (`/v25.0/1784.../media`): no query string, no token.
    pub endpoint: String,
    /// `None` when no response arrived.
    pub status: Option<u16>,
    pub usage: Usage,
    /// Meta's `x-fb-trace-id` response header: names the answer in a log line even when its
    /// body was not JSON.
    pub trace: Option<String>,
    /// Fields of a successful answer that were null or of the wrong type (see
    /// [`wire::odd_fields`]); the budget layer logs them.
    pub odd: Vec<String>,
}

/// A successful call's value and what the call was.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    pub value: T,
    pub call: CallInfo,
}

impl<T> Reply<T> {
    /// The wire value turned into its domain form, or a decode error saying what was
    /// `missing` (retried like any malformed answer).
    fn convert<U>(
        self,
        f: impl FnOnce(T) -> Option<U>,
        missing: &str,
    ) -> Result<Reply<U>, GraphError> {
        match f(self.value) {
            Some(value) => Ok(Reply {
                value,
                call: self.call,
            }),
            None => Err(decode_error(self.call, missing)),
        }
    }
}

/// A post, as far as moderation cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub id: String,
    /// Top-level comments and replies. A hint, not the truth: it can count comments the API
    /// never returns.
    pub comments_count: i64,
    /// `media_product_type` (`FEED`, `REELS`, `LIVE`, …), asked on Facebook Login only.
    pub product_type: Option<String>,
    /// `media_type` (`IMAGE`, `VIDEO`, `CAROUSEL_ALBUM`), documented on both logins.
    pub media_type: Option<String>,
    /// The newest top-level comment's id, asked for inline (`comments.limit(1){id}`) at no
    /// extra call: a changed newest comment reveals new comments even when deletions kept the
    /// count unchanged.
    pub newest_comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: String,
    pub text: Option<String>,
    pub username: Option<String>,
    pub from_id: Option<String>,
    pub parent_id: Option<String>,
    /// Meta's timestamp string, unparsed.
    pub timestamp: Option<String>,
    pub hidden: Option<bool>,
    /// `user.id`: present only when the app user (the account) made the comment.
    pub user_id: Option<String>,
}

/// A top-level comment with the replies that came inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub comment: Comment,
    pub replies: Vec<Comment>,
    /// Cursor for the rest of the replies when the inline edge had a next page.
    pub more_replies: Option<String>,
}

/// One page of a cursor-paged edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The `after` cursor, present only when Meta said there is a next page.
    pub after: Option<String>,
}

/// An app subscribed to a node's webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribedApp {
    pub id: Option<String>,
    pub name: Option<String>,
    pub fields: Vec<String>,
}

/// A Facebook Page and the Instagram account linked to it (Facebook Login).
#[derive(Debug, Clone)]
pub struct PageLink {
    pub page_id: String,
    pub ig_user_id: Option<String>,
    /// The Page's own token, when listed through the user's `me/accounts`.
    pub page_token: Option<SecretString>,
}

/// The Meta app's id and secret (Facebook Login introspection and exchange).
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub id: String,
    pub secret: SecretString,
}

/// A Graph API client bound to one host and version.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `https://graph.instagram.com/v25.0`
    base: String,
    /// `/v25.0`, the path prefix used in ledger endpoints.
    prefix: String,
    /// `https://graph.instagram.com`: the token endpoints are not versioned.
    root: String,
    /// The app secret, when calls carry `appsecret_proof` (Facebook Login with `[app]`).
    proof_key: Option<SecretString>,
}

impl Client {
    /// A client for one host and version. Every client with the same timeout shares one HTTP
    /// client (one connection pool, one TLS configuration): one per account cost ~180 KB each.
    pub fn new(base_url: &str, api_version: &str, timeout: Duration) -> Result<Client, GraphError> {
        Ok(Client {
            http: shared_http(timeout)?,
            base: format!("{}/{}", base_url.trim_end_matches('/'), api_version),
            prefix: format!("/{api_version}"),
            root: base_url.trim_end_matches('/').to_string(),
            proof_key: None,
        })
    }

    /// Every call with a token then carries `appsecret_proof` (HMAC-SHA256 of the token keyed
    /// with the app secret), which apps with "Require App Secret" on demand.
    pub fn with_appsecret_proof(mut self, app_secret: SecretString) -> Client {
        self.proof_key = Some(app_secret);
        self
    }

    /// Meta's `appsecret_proof` for a token: hex HMAC-SHA256, keyed with the app secret.
    pub fn appsecret_proof(app_secret: &SecretString, token: &SecretString) -> Option<String> {
        use hmac::Mac;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(app_secret.expose_secret().as_bytes())
                .ok()?;
        mac.update(token.expose_secret().as_bytes());
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// The newest `limit` media of an account, with their comment counts and `fields` (from
    /// [`media_fields`]). One call.
    pub async fn list_media(
        &self,
        token: &SecretString,
        ig_user_id: &str,
        limit: u32,
        fields: &[&str],
    ) -> Result<Reply<Vec<Media>>, GraphError> {
        let limit = limit.to_string();
        let fields = format!("{},comments.limit(1){{id}}", fields.join(","));
        let reply = self
            .send::<wire::Paged<wire::Media>>(
                Method::GET,
                token,
                Node::Id(ig_user_id),
                Some("media"),
                &[("fields", &fields), ("limit", &limit)],
            )
            .await?;
        if !reply.value.data.iter().all(wire::Media::complete) {
            return Err(decode_error(reply.call, INCOMPLETE));
        }
        Ok(Reply {
            value: reply
                .value
                .data
                .into_iter()
                .filter_map(wire::Media::into_domain)
                .collect(),
            call: reply.call,
        })
    }

    /// Refreshes a long-lived Instagram Login token (GET only; the token must be at least 24
    /// hours old and not expired). Returns the new token and its lifetime in seconds.
    pub async fn refresh_instagram_token(
        &self,
        token: &SecretString,
    ) -> Result<Reply<(SecretString, u64)>, GraphError> {
        // Meta documents the token in the query for this endpoint only; the header is not
        // documented to work here, so the documented form is used.
        let reply = self
            .send_to::<wire::Refreshed>(
                Method::GET,
                None,
                format!("{}/refresh_access_token", self.root),
                "/refresh_access_token".to_string(),
                &[
                    ("grant_type", "ig_refresh_token"),
                    ("access_token", token.expose_secret()),
                ],
            )
            .await?;
        reply.convert(|v| v.into_domain(), "refresh answered without a token")
    }

    /// Facebook Login: what Meta knows about a token (`debug_token`, with the app token).
    pub async fn debug_token(
        &self,
        app: &AppCredentials,
        token: &SecretString,
    ) -> Result<Reply<wire::TokenInfo>, GraphError> {
        // The app token is as secret as the app secret it contains.
        let app_token = SecretString::from(format!("{}|{}", app.id, app.secret.expose_secret()));
        let reply = self
            .send_to::<wire::DebugToken>(
                Method::GET,
                None,
                format!("{}/debug_token", self.base),
                format!("{}/debug_token", self.prefix),
                &[
                    ("input_token", token.expose_secret()),
                    ("access_token", app_token.expose_secret()),
                ],
            )
            .await?;
        reply.convert(|v| v.into_domain(), "debug_token answered without data")
    }

    /// Facebook Login: exchanges a user token for a long-lived one (`fb_exchange_token`).
    /// Returns the new token and its lifetime in seconds, when Meta says.
    pub async fn exchange_facebook_token(
        &self,
        app: &AppCredentials,
        token: &SecretString,
    ) -> Result<Reply<(SecretString, Option<u64>)>, GraphError> {
        let reply = self
            .send_to::<wire::Refreshed>(
                Method::GET,
                None,
                format!("{}/oauth/access_token", self.base),
                format!("{}/oauth/access_token", self.prefix),
                &[
                    ("grant_type", "fb_exchange_token"),
                    ("client_id", &app.id),
                    ("client_secret", app.secret.expose_secret()),
                    ("fb_exchange_token", token.expose_secret()),
                ],
            )
            .await?;
        reply.convert(
            |v| v.into_exchanged(),
            "token exchange answered without a token",
        )
    }

    /// Facebook Login: whether the token can see the Instagram account, and its username.
    pub async fn ig_account(
        &self,
        token: &SecretString,
        ig_user_id: &str,
    ) -> Result<Reply<(String, Option<String>)>, GraphError> {
        let reply = self
            .send::<wire::Me>(
                Method::GET,
                token,
                Node::Id(ig_user_id),
                None,
                &[("fields", "id,username")],
            )
            .await?;
        reply.convert(|v| v.into_domain(), "the account answered without an id")
    }

    /// Who the token belongs to (Instagram Login): `(user_id, username)`.
    pub async fn me(
        &self,
        token: &SecretString,
    ) -> Result<Reply<(String, Option<String>)>, GraphError> {
        let reply = self
            .send::<wire::Me>(
                Method::GET,
                token,
                Node::Me,
                None,
                &[("fields", "user_id,username")],
            )
            .await?;
        reply.convert(|v| v.into_domain(), "/me answered without a user id")
    }

    /// One page of a media's top-level comments (newest first), replies inline.
    pub async fn comments_page(
        &self,
        token: &SecretString,
        media_id: &str,
        after: Option<&str>,
    ) -> Result<Reply<Page<Thread>>, GraphError> {
        let fields =
            format!("{COMMENT_FIELDS},replies.limit({INLINE_REPLIES}){{{COMMENT_FIELDS}}}");
        let limit = COMMENTS_PAGE.to_string();
        let mut query = vec![("fields", fields.as_str()), ("limit", limit.as_str())];
        if let Some(a) = after {
            query.push(("after", a));
        }
        let reply = self
            .send::<wire::Paged<wire::Comment>>(
                Method::GET,
                token,
                Node::Id(media_id),
                Some("comments"),
                &query,
            )
            .await?;
        if !reply.value.data.iter().all(wire::Comment::complete) {
            return Err(decode_error(reply.call, INCOMPLETE));
        }
        let after = reply.value.next_after();
        let items = reply
            .value
            .data
            .into_iter()
            .filter_map(wire::Comment::into_thread)
            .collect();
        Ok(Reply {
            value: Page { items, after },
            call: reply.call,
        })
    }

    /// One page of a comment's replies.
    pub async fn replies_page(
        &self,
        token: &SecretString,
        comment_id: &str,
        after: Option<&str>,
    ) -> Result<Reply<Page<Comment>>, GraphError> {
        let limit = COMMENTS_PAGE.to_string();
        let mut query = vec![("fields", COMMENT_FIELDS), ("limit", limit.as_str())];
        if let Some(a) = after {
            query.push(("after", a));
        }
        let reply = self
            .send::<wire::Paged<wire::Comment>>(
                Method::GET,
                token,
                Node::Id(comment_id),
                Some("replies"),
                &query,
            )
            .await?;
        if !reply.value.data.iter().all(wire::Comment::complete) {
            return Err(decode_error(reply.call, INCOMPLETE));
        }
        let after = reply.value.next_after();
        let items = reply
            .value
            .data
            .into_iter()
            .filter_map(|c| c.into_thread().map(|t| t.comment))
            .collect();
        Ok(Reply {
            value: Page { items, after },
            call: reply.call,
        })
    }

    /// Reads one comment back (to reconcile a write whose outcome is unknown).
    pub async fn comment(
        &self,
        token: &SecretString,
        comment_id: &str,
    ) -> Result<Reply<Comment>, GraphError> {
        let reply = self
            .send::<wire::Comment>(
                Method::GET,
                token,
                Node::Id(comment_id),
                None,
                &[("fields", COMMENT_FIELDS)],
            )
            .await?;
        reply.convert(
            |v| v.into_thread().map(|t| t.comment),
            "comment without an id",
        )
    }

    /// Whether a comment is hidden, read back after a hide or unhide whose answer was lost. An
    /// answer without a usable `hidden` is a decode error (retried), never "visible": taking
    /// it so would repeat a write that took effect.
    pub async fn comment_hidden(
        &self,
        token: &SecretString,
        comment_id: &str,
    ) -> Result<Reply<bool>, GraphError> {
        self.comment(token, comment_id)
            .await?
            .convert(|c| c.hidden, "comment without its hidden field")
    }

    /// Hides (or unhides) a comment.
    pub async fn set_hidden(
        &self,
        token: &SecretString,
        comment_id: &str,
        hidden: bool,
    ) -> Result<Reply<()>, GraphError> {
        let reply = self
            .send::<wire::Success>(
                Method::POST,
                token,
                Node::Id(comment_id),
                None,
                &[("hide", if hidden { "true" } else { "false" })],
            )
            .await?;
        reply.value.check(reply.call)
    }

    /// Replies to a comment from the account; returns the new comment's id. A reply to a
    /// reply lands on the top-level thread.
    pub async fn reply(
        &self,
        token: &SecretString,
        comment_id: &str,
        message: &str,
    ) -> Result<Reply<String>, GraphError> {
        let reply = self
            .send::<wire::Created>(
                Method::POST,
                token,
                Node::Id(comment_id),
                Some("replies"),
                &[("message", message)],
            )
            .await?;
        reply.value.check(reply.call)
    }

    /// Deletes a comment.
    pub async fn delete(
        &self,
        token: &SecretString,
        comment_id: &str,
    ) -> Result<Reply<()>, GraphError> {
        let reply = self
            .send::<wire::Success>(Method::DELETE, token, Node::Id(comment_id), None, &[])
            .await?;
        reply.value.check(reply.call)
    }

    /// Turns a post's comments off or back on (`POST /{media-id}?comment_enabled=…`, both
    /// logins; Meta refuses it on live video).
    pub async fn set_comments_enabled(
        &self,
        token: &SecretString,
        media_id: &str,
        enabled: bool,
    ) -> Result<Reply<()>, GraphError> {
        let reply = self
            .send::<wire::Success>(
                Method::POST,
                token,
                Node::Id(media_id),
                None,
                &[("comment_enabled", if enabled { "true" } else { "false" })],
            )
            .await?;
        reply.value.check(reply.call)
    }

    /// Whether a post's comments are on (`is_comment_enabled`), read back after a switch whose
    /// answer was lost.
    pub async fn comments_enabled(
        &self,
        token: &SecretString,
        media_id: &str,
    ) -> Result<Reply<bool>, GraphError> {
        self.send::<wire::MediaSwitch>(
            Method::GET,
            token,
            Node::Id(media_id),
            None,
            &[("fields", "id,is_comment_enabled")],
        )
        .await?
        .convert(|m| m.is_comment_enabled, "media without is_comment_enabled")
    }

    /// The apps subscribed to a node's webhooks (`me` for Instagram Login, the Page for
    /// Facebook Login).
    pub async fn subscribed_apps(
        &self,
        token: &SecretString,
        node: &str,
    ) -> Result<Reply<Vec<SubscribedApp>>, GraphError> {
        let reply = self
            .send::<wire::Listed>(
                Method::GET,
                token,
                Node::me_or_id(node),
                Some("subscribed_apps"),
                &[],
            )
            .await?;
        reply.convert(|v| Some(v.into_subscriptions()), "")
    }

    /// Subscribes the app to the node's webhooks for `fields` (comma-separated).
    pub async fn subscribe_app(
        &self,
        token: &SecretString,
        node: &str,
        fields: &str,
    ) -> Result<Reply<()>, GraphError> {
        let reply = self
            .send::<wire::Success>(
                Method::POST,
                token,
                Node::me_or_id(node),
                Some("subscribed_apps"),
                &[("subscribed_fields", fields)],
            )
            .await?;
        reply.value.check(reply.call)
    }

    /// Ends the app's webhook subscription on the node.
    pub async fn unsubscribe_app(
        &self,
        token: &SecretString,
        node: &str,
    ) -> Result<Reply<()>, GraphError> {
        let reply = self
            .send::<wire::Success>(
                Method::DELETE,
                token,
                Node::me_or_id(node),
                Some("subscribed_apps"),
                &[],
            )
            .await?;
        reply.value.check(reply.call)
    }

    /// Facebook Login with a user token: one page of the user's Pages with their linked
    /// Instagram accounts and Page tokens. `me/accounts` is paged (graph-api.md §12): the
    /// next page is asked for with the `after` cursor, never the `next` URL (it embeds the
    /// token).
    pub async fn pages(
        &self,
        token: &SecretString,
        after: Option<&str>,
    ) -> Result<Reply<Page<PageLink>>, GraphError> {
        let mut query = vec![("fields", "id,access_token,instagram_business_account")];
        if let Some(a) = after {
            query.push(("after", a));
        }
        let reply = self
            .send::<wire::Paged<serde_json::Value>>(
                Method::GET,
                token,
                Node::Me,
                Some("accounts"),
                &query,
            )
            .await?;
        let after = reply.value.next_after();
        let items = wire::into_pages(reply.value.data);
        Ok(Reply {
            value: Page { items, after },
            call: reply.call,
        })
    }

    /// Facebook Login with a Page token: the Page itself and its linked Instagram account.
    pub async fn page_me(&self, token: &SecretString) -> Result<Reply<PageLink>, GraphError> {
        let reply = self
            .send::<wire::PageNode>(
                Method::GET,
                token,
                Node::Me,
                None,
                &[("fields", "id,instagram_business_account")],
            )
            .await?;
        reply.convert(|v| v.into_domain(), "/me answered without an id")
    }

    /// The one place a versioned path is built: a node's id is checked for Meta's form here,
    /// whatever it came from (a webhook, an answer, the database), so no id can add path
    /// segments, a query or a fragment to a request sent with the account's token.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        token: &SecretString,
        node: Node<'_>,
        edge: Option<&'static str>,
        query: &[(&str, &str)],
    ) -> Result<Reply<T>, GraphError> {
        let path = match node.path(edge) {
            Ok(path) => path,
            Err(refused) => {
                return Err(GraphError {
                    kind: ErrorKind::BadRequest,
                    code: None,
                    subcode: None,
                    message: "an id not in Meta's form was refused; nothing was sent".into(),
                    fbtrace_id: None,
                    call: Box::new(CallInfo {
                        method: method_name(&method),
                        endpoint: format!("{}{refused}", self.prefix),
                        status: None,
                        usage: Usage::default(),
                        trace: None,
                        odd: Vec::new(),
                    }),
                });
            }
        };
        let (url, endpoint) = (
            format!("{}{path}", self.base),
            format!("{}{path}", self.prefix),
        );
        self.send_to(method, Some(token), url, endpoint, query)
            .await
    }

    /// Sends one request. `bearer`: the token for the `Authorization` header; `None` for the
    /// token endpoints, whose documented form carries the credentials in the query (the URL is
    /// never logged, and reqwest errors are stripped of it).
    async fn send_to<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        bearer: Option<&SecretString>,
        url: String,
        endpoint: String,
        query: &[(&str, &str)],
    ) -> Result<Reply<T>, GraphError> {
        let mut call = CallInfo {
            method: method_name(&method),
            endpoint,
            status: None,
            usage: Usage::default(),
            trace: None,
            odd: Vec::new(),
        };
        let mut request = self.http.request(method, url).query(query);
        if let Some(token) = bearer {
            request = request.bearer_auth(token.expose_secret());
            if let Some(proof) = self
                .proof_key
                .as_ref()
                .and_then(|key| Client::appsecret_proof(key, token))
            {
                request = request.query(&[("appsecret_proof", proof)]);
            }
        }
        let result = request.send().await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                return Err(GraphError {
                    kind: ErrorKind::Transient,
                    code: None,
                    subcode: None,
                    // without_url(): reqwest's Display includes the full URL with its query.
                    message: error::scrub(&error_chain(&e.without_url())),
                    fbtrace_id: None,
                    call: Box::new(call),
                });
            }
        };
        let status = response.status().as_u16();
        call.status = Some(status);
        call.usage = usage::parse(response.headers());
        let retry_after = retry_after(response.headers());
        call.trace = response
            .headers()
            .get("x-fb-trace-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(64)
                    .collect()
            });
        let body = match read_capped(response, MAX_BODY).await {
            Ok(b) => b,
            Err(BodyError::Read(e)) => {
                return Err(GraphError {
                    kind: ErrorKind::Transient,
                    code: None,
                    subcode: None,
                    message: error::scrub(&error_chain(&e.without_url())),
                    fbtrace_id: call.trace.clone(),
                    call: Box::new(call),
                });
            }
            Err(BodyError::TooLarge) => {
                return Err(decode_error(
                    call,
                    &format!("answer larger than {} MiB", MAX_BODY / (1024 * 1024)),
                ));
            }
        };
        if let Some(err) = wire::error_envelope(&body) {
            let kind = error::classify(
                err.code,
                err.error_subcode,
                err.message.as_deref(),
                err.is_transient.unwrap_or(false),
                status,
                call.usage.regain(),
            );
            return Err(GraphError {
                kind,
                code: err.code,
                subcode: err.error_subcode,
                message: error::scrub(err.message.as_deref().unwrap_or("")),
                fbtrace_id: err.fbtrace_id.or_else(|| call.trace.clone()),
                call: Box::new(call),
            });
        }
        if !(200..300).contains(&status) {
            let kind = error::classify(
                None,
                None,
                None,
                false,
                status,
                retry_after.or(call.usage.regain()),
            );
            return Err(GraphError {
                kind,
                code: None,
                subcode: None,
                message: format!("unexpected response of {} bytes", body.len()),
                fbtrace_id: call.trace.clone(),
                call: Box::new(call),
            });
        }
        let body = wire::repair_surrogates(&body);
        match serde_json::from_slice::<T>(&body) {
            Ok(value) => {
                call.odd = wire::odd_fields(&body);
                Ok(Reply { value, call })
            }
            Err(e) => Err(decode_error(
                call,
                &format!("malformed response body: {}", describe_decode_error(&e)),
            )),
        }
    }
}

/// `Retry-After` in seconds (a bare 429 may carry it), capped at a day; an HTTP date or
/// garbage is no hint.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.clamp(1, 86_400)))
}

/// Largest answer body read: Meta's pages are a few hundred KiB at most; a bigger one is a bad
/// answer (retried like a malformed one), never a reason to hold unbounded memory.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("answer body could not be read")]
    Read(#[source] reqwest::Error),
    #[error("answer body larger than the cap")]
    TooLarge,
}

/// Reads a body chunk by chunk, stopping at `cap` bytes (a `Content-Length` over it is refused
/// before anything is read).
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > cap))
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if chunk.len() > cap.saturating_sub(body.len()) {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        _ => "GET",
    }
}

/// The node a versioned path starts with: the token's own (`me`) or an object by its id.
#[derive(Debug, Clone, Copy)]
enum Node<'a> {
    Me,
    Id(&'a str),
}

impl<'a> Node<'a> {
    /// A subscription's node: the token's own (`me`, Instagram Login) or a Page by id.
    fn me_or_id(node: &'a str) -> Node<'a> {
        if node == "me" {
            Node::Me
        } else {
            Node::Id(node)
        }
    }

    /// `/node` or `/node/edge`; `Err` with a path naming no id when the id is not in Meta's
    /// form (logged once, see [`id`]).
    fn path(self, edge: Option<&'static str>) -> Result<String, String> {
        let edge = edge.map(|e| format!("/{e}")).unwrap_or_default();
        match self {
            Node::Me => Ok(format!("/me{edge}")),
            Node::Id(id) if id::is_meta_id(id) => Ok(format!("/{id}{edge}")),
            Node::Id(id) => {
                id::refused(IdSource::Path, id);
                Err(format!("/(refused id){edge}"))
            }
        }
    }
}

/// What was wrong with a body, without the value: serde's own message quotes the bad value of
/// a typed field (`invalid type: string "…", expected u64`), and values can be personal data
/// or secrets. Keeps what was expected, the missing field's name and the position.
fn describe_decode_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let at = format!("at line {} column {}", e.line(), e.column());
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        return format!("missing field `{field}` {at}");
    }
    if let Some(expected) = message
        .split(", expected ")
        .nth(1)
        .map(|rest| rest.split(" at line ").next().unwrap_or(rest))
    {
        return format!("a value is not {expected} {at}");
    }
    let kind = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "cut short",
    };
    format!("{kind} {at}")
}

/// A list answer with an item missing what igmod needs to decide on it. Skipping the item would
/// lose the comment for good (the post's count would say it was read), so the call is retried.
const INCOMPLETE: &str =
    "an item in the answer lacks its id, text, username or count; asking again";

fn decode_error(call: CallInfo, message: &str) -> GraphError {
    let message = if call.odd.is_empty() {
        message.to_string()
    } else {
        format!("{message} ({})", call.odd.join(", "))
    };
    GraphError {
        kind: ErrorKind::Transient,
        code: None,
        subcode: None,
        message: error::scrub(&message),
        fbtrace_id: call.trace.clone(),
        call: Box::new(call),
    }
}

/// An error and its sources on one line (the caller strips URLs first).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod decode_error_tests {
    use super::{CallInfo, ErrorKind, GraphError, Usage, media_fields};
    #[test]
    fn fields_by_login_and_the_refused_field() {
        assert!(!media_fields(false).contains(&"media_product_type"));
        assert!(media_fields(true).contains(&"media_product_type"));
        let err = |code: i64, subcode: Option<i64>, message: &str| GraphError {
            kind: if code == 100 && subcode.is_none() {
                ErrorKind::BadRequest
            } else {
                ErrorKind::Gone
            },
            code: Some(code),
            subcode,
            message: message.into(),
            fbtrace_id: None,
            call: Box::new(CallInfo {
                method: "GET",
                endpoint: String::new(),
                status: Some(400),
                usage: Usage::default(),
                trace: None,
                odd: Vec::new(),
            }),
        };
        let cases = [
            (
                100,
                None,
                "(#100) Tried accessing nonexisting field (media_product_type) on node type (Media)",
                Some("media_product_type"),
            ),
            (
                100,
                None,
                "(#100) Tried accessing nonexisting field () on node type (Media)",
                None,
            ),
            (100, None, "(#100) Missing or invalid hide parameter", None),
            (100, Some(33), "nonexisting field (x)", None),
        ];
        for (code, subcode, message, want) in cases {
            assert_eq!(
                err(code, subcode, message).refused_field(),
                want,
                "{message}"
            );
        }
    }

    #[test]
    fn a_decode_error_names_what_was_expected_never_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Typed {
            n: u64,
            id: String,
        }
        for (body, wanted) in [
            (
                r#"{"n":"EAAG-SECRET-1","id":"x"}"#,
                "a value is not u64 at line 1",
            ),
            (r#"{"n":1}"#, "missing field `id` at line 1"),
            (r#"{"n":1,"id":"EAAG-SECRET-2""#, "cut short at line 1"),
            (r#"{"n":1,"id":EAAG-SECRET-3}"#, "not JSON at line 1"),
        ] {
            let e = serde_json::from_str::<Typed>(body).expect_err("bad body");
            let shown = super::describe_decode_error(&e);
            assert!(shown.starts_with(wanted), "{body}: {shown}");
            assert!(!shown.contains("SECRET"), "{body}: {shown}");
        }
    }
}

#[cfg(test)]
mod boundary_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A loopback server answering every request with `answer()`; counts requests and keeps
    /// their paths.
    async fn server(
        answer: fn() -> axum::response::Response,
    ) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let paths: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let (h, p) = (hits.clone(), paths.clone());
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (h, p) = (h.clone(), p.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut p) = p.lock() {
                    p.push(uri.path().to_string());
                }
                answer()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), hits, paths)
    }

    fn big_json() -> Vec<u8> {
        // A valid comment padded past the cap: only its size is wrong.
        let mut body = br#"{"id":"17900000000000001","text":""#.to_vec();
        body.resize(MAX_BODY + 10, b'a');
        body.extend_from_slice(br#""}"#);
        body
    }

    fn client(base: &str) -> Client {
        Client::new(base, "v25.0", Duration::from_secs(10)).expect("client")
    }

    fn token() -> SecretString {
        SecretString::from("EAAG-TEST-TOKEN".to_string())
    }

    #[tokio::test]
    async fn an_answer_over_the_cap_is_a_bad_answer_with_or_without_a_length() {
        use axum::response::IntoResponse;
        let sized: fn() -> axum::response::Response = || big_json().into_response();
        let chunked: fn() -> axum::response::Response = || {
            let chunks = big_json()
                .chunks(64 * 1024)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>();
            axum::body::Body::from_stream(futures::stream::iter(chunks)).into_response()
        };
        for answer in [sized, chunked] {
            let (base, hits, _) = server(answer).await;
            let e = client(&base)
                .comment(&token(), "17900000000000001")
                .await
                .expect_err("over the cap");
            assert_eq!(e.kind, ErrorKind::Transient, "{e}");
            assert!(e.message.contains("larger than 8 MiB"), "{}", e.message);
            assert_eq!(hits.load(Ordering::SeqCst), 1);
        }
        // Just under the cap is read.
        let under: fn() -> axum::response::Response = || {
            let mut body = br#"{"id":"17900000000000001","text":""#.to_vec();
            body.resize(MAX_BODY - 10, b'a');
            body.extend_from_slice(br#""}"#);
            body.into_response()
        };
        let (base, _, _) = server(under).await;
        let c = client(&base)
            .comment(&token(), "17900000000000001")
            .await
            .expect("under the cap");
        assert_eq!(c.value.id, "17900000000000001");
    }

    #[tokio::test]
    async fn an_id_not_in_metas_form_never_reaches_a_url() {
        use axum::response::IntoResponse;
        let ok: fn() -> axum::response::Response = || r#"{"success":true}"#.into_response();
        let (base, hits, paths) = server(ok).await;
        let c = client(&base);
        for bad in [
            "1/../../me/permissions",
            "1%2F..",
            "1?fields=x",
            "1&x=y",
            "1 2",
            "1\n",
            "",
            "me",
            "1#x",
        ] {
            let e = c.delete(&token(), bad).await.expect_err(bad);
            assert_eq!(e.kind, ErrorKind::BadRequest, "{bad:?}");
            assert!(!e.call.endpoint.contains(bad) || bad.is_empty(), "{bad:?}");
            let e = c.set_hidden(&token(), bad, true).await.expect_err(bad);
            assert_eq!(e.kind, ErrorKind::BadRequest, "{bad:?}");
            assert!(
                c.replies_page(&token(), bad, None).await.is_err(),
                "{bad:?}"
            );
            assert!(
                c.list_media(&token(), bad, 5, &media_fields(false))
                    .await
                    .is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "{:?}",
            paths.lock().map(|p| p.clone())
        );
        // A subscription's node may be the token's own (`me`), and only that word.
        for bad in ["me/../1", "me?x=1", "ME"] {
            assert!(
                c.subscribe_app(&token(), bad, "comments").await.is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        // Good ids go through, as their own path.
        c.delete(&token(), "17900000000000001_2")
            .await
            .expect("good id");
        c.subscribe_app(&token(), "me", "comments")
            .await
            .expect("me");
        assert_eq!(
            paths.lock().map(|p| p.clone()).unwrap_or_default(),
            ["/v25.0/17900000000000001_2", "/v25.0/me/subscribed_apps"]
        );
    }
}
