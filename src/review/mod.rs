//! The review queue in the browser (`[review]`): reviewers log in, settle the comments the
//! model doubts (flags, and hides or deletes scored in a band), and each click becomes a label
//! with the reviewer's name and, where it changes something on Instagram, one write queued in
//! the outbox (applied by the account's task, like every other action).
//!
//! - [`auth`]: passwords, sessions, CSRF tokens, login throttling;
//! - [`queue`]: what is doubtful and what each verdict records (pure);
//! - [`candidate`]: a model trained with the labels, and its replay figures;
//! - [`pages`]: the HTML.
//!
//! Served by [`crate::http::serve`] like the webhook receiver and the metrics. A client
//! without a session gets the login page, whatever it asks for.
//!
//! Whole on purpose: the routes and the guards every route passes (session, CSRF, headers) read as one.

pub mod auth;
pub mod candidate;
pub mod pages;
pub mod queue;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::RngCore;

use crate::config::{Config, ReviewConfig};
use crate::rules::Model;
use crate::store::{Settled, Settlement, Store};
use auth::{Auth, LoginRefused, Session};
use queue::Verdict;

/// Connections the review server keeps open at most (a few reviewers' browsers): the
/// descriptors stay with the webhook receiver, the metrics and the database.
pub const CONNECTIONS_MAX: usize = 64;
/// The session cookie's name (over https, [`cookie_name`] adds the `__Host-` prefix).
const COOKIE: &str = "igmod_review";
/// The login form's pre-session CSRF cookie: `SameSite=Strict`, so a form posted from
/// another site arrives without it and is refused (no login CSRF).
const LOGIN_COOKIE: &str = "igmod_login";
/// How long a login page's form stays valid.
const LOGIN_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
/// The longest search term taken (longer ones are cut): each search scans the decisions.
const SEARCH_MAX: usize = 200;
/// Rows the queue page shows at once.
const PAGE_ROWS: usize = 20;
/// Decisions read to find the doubtful ones (newest first).
const SCAN: i64 = 5000;
/// The largest form igmod accepts.
const FORM_MAX: usize = 16 * 1024;

/// Everything the review server needs.
pub struct Review {
    config: ReviewConfig,
    store: Store,
    auth: Auth,
    inboxes: crate::webhook::Inboxes,
    /// The running model (the first the rules use) and its path as written.
    model: Option<(String, Arc<Model>)>,
    /// The config, for the candidate's replay.
    full: Arc<Config>,
    candidates: Arc<candidate::Candidates>,
    /// Whether the log already said the proxy sends no `X-Forwarded-For` (said once).
    warned_forwarded: std::sync::atomic::AtomicBool,
}

impl Review {
    pub fn new(
        config: &Config,
        review: &ReviewConfig,
        store: Store,
        inboxes: crate::webhook::Inboxes,
    ) -> Arc<Review> {
        Arc::new(Review {
            auth: Auth::new(review.users.clone(), review.session_ttl),
            config: review.clone(),
            store,
            inboxes,
            model: config.rules.models().into_iter().next(),
            full: Arc::new(config.clone()),
            candidates: Arc::default(),
            warned_forwarded: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

/// The review server's routes; every path answers the login page without a session.
pub fn router(review: Arc<Review>) -> axum::Router {
    axum::Router::new().fallback(move |req: Request| {
        let review = review.clone();
        async move { review.handle(req).await }
    })
}

/// A fresh CSP nonce.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// An HTML answer with the security headers every page carries.
fn page(status: StatusCode, nonce: &str, markup: maud::Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h, nonce);
    r
}

fn secure_headers(h: &mut HeaderMap, nonce: &str) {
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // No other site's window keeps a handle on ours, nor embeds what we answer.
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// A 303 to `to` (after a POST), with the security headers.
fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(r.headers_mut(), &nonce());
    r
}

/// `Set-Cookie` for a session id (empty: cleared); `Secure` when reviewers come over https.
fn session_cookie(id: &str, ttl: std::time::Duration, https: bool) -> HeaderValue {
    cookie_value(&cookie_name(COOKIE, https), id, ttl, https)
}

/// A cookie's name: over https with the `__Host-` prefix, which browsers keep only when set
/// `Secure` by this very host for `Path=/` — a sibling subdomain cannot plant one (no
/// session swap, no login token chosen by another site of the same domain).
fn cookie_name(name: &str, https: bool) -> String {
    if https {
        format!("__Host-{name}")
    } else {
        name.to_string()
    }
}

/// `Set-Cookie` for `name`: HttpOnly, SameSite=Strict, `Secure` over https; empty: cleared.
fn cookie_value(name: &str, id: &str, ttl: std::time::Duration, https: bool) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    let age = if id.is_empty() {
        "; Max-Age=0".to_string()
    } else {
        format!("; Max-Age={}", ttl.as_secs())
    };
    HeaderValue::from_str(&format!(
        "{name}={id}; HttpOnly; SameSite=Strict; Path=/{secure}{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("igmod_review=; Max-Age=0"))
}

/// The session cookie's value in a request.
fn cookie(headers: &HeaderMap, https: bool) -> Option<String> {
    named_cookie(headers, &cookie_name(COOKIE, https))
}

/// The login form's token from its cookie, when it has the shape of one of ours.
fn login_cookie(headers: &HeaderMap, https: bool) -> Option<String> {
    named_cookie(headers, &cookie_name(LOGIN_COOKIE, https))
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A cookie's value in a request.
fn named_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The client's address: the peer, or behind a proxy on this host (the peer is loopback,
/// also as `::ffff:127.0.0.1` on a dual-stack listener) the last address of the last
/// `X-Forwarded-For` line, which that proxy wrote (a proxy that adds its own line, like
/// HAProxy, leaves the client's forged lines before it).
fn client(req: &Request) -> IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip().to_canonical());
    if !peer.is_loopback() {
        return peer;
    }
    req.headers()
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(peer)
}

/// A query string or form body as a map (the last value of a repeated key wins).
fn pairs(bytes: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// A form's fields, read within the server's body deadline and size limit.
async fn read_form(body: Body) -> Option<HashMap<String, String>> {
    let read = axum::body::to_bytes(body, FORM_MAX);
    match tokio::time::timeout(crate::http::BODY_TIMEOUT, read).await {
        Ok(Ok(bytes)) => Some(pairs(&bytes)),
        _ => None,
    }
}

/// The queue's filters, each a non-empty value or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Filters {
    account: Option<String>,
    rule: Option<String>,
    lang: Option<String>,
}

impl Filters {
    const KEYS: [&'static str; 3] = ["account", "rule", "lang"];

    fn from_query(q: &HashMap<String, String>) -> Filters {
        let get = |key: &str| q.get(key).filter(|v| !v.is_empty()).cloned();
        Filters {
            account: get("account"),
            rule: get("rule"),
            lang: get("lang"),
        }
    }

    fn values(&self) -> [Option<&str>; 3] {
        [
            self.account.as_deref(),
            self.rule.as_deref(),
            self.lang.as_deref(),
        ]
    }
}

/// The queue's address with its filters (and a note), for redirects and the `back` field.
fn queue_url(filters: &Filters, note: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in Filters::KEYS.iter().zip(filters.values()) {
        if let Some(v) = value {
            q.append_pair(key, v);
        }
    }
    if let Some(n) = note {
        q.append_pair("note", n);
    }
    let q = q.finish();
    if q.is_empty() {
        "/".to_string()
    } else {
        format!("/?{q}")
    }
}

/// Notes the queue shows after a click, by code (never text from the request).
fn note_text(code: &str) -> Option<&'static str> {
    match code {
        "settled" => Some("Recorded."),
        "queued" => Some("Recorded; the change is queued for Instagram."),
        "already" => Some("Someone settled that comment first; nothing more was done."),
        "gone" => Some("That comment is no longer in the queue."),
        _ => None,
    }
}

/// The doubtful comments among `items` (newest first): the first [`PAGE_ROWS`] with their
/// score and strongest features by `model`, and how many there are in all.
fn select(
    items: Vec<crate::store::ReviewItem>,
    model: Option<&Model>,
    min: f32,
    max: f32,
) -> (Vec<pages::Row>, usize) {
    let mut waiting = 0usize;
    let mut rows = Vec::new();
    for item in items {
        let text = item.text.as_deref().unwrap_or("");
        let score = match item.action.as_str() {
            "flag" => None,
            _ => model.map(|m| m.score(text)),
        };
        if !queue::doubtful(&item, score, min, max) {
            continue;
        }
        waiting = waiting.saturating_add(1);
        if rows.len() < PAGE_ROWS {
            let ex = model.map(|m| m.explain(text, 3));
            let names = |v: &[(String, f64)]| v.iter().map(|(n, _)| n.clone()).collect();
            rows.push(pages::Row {
                score: ex.as_ref().map(|e| e.score),
                towards_scam: ex
                    .as_ref()
                    .map_or_else(Vec::new, |e| names(&e.towards_scam)),
                towards_ok: ex.as_ref().map_or_else(Vec::new, |e| names(&e.towards_ok)),
                item,
            });
        }
    }
    (rows, waiting)
}

impl Review {
    async fn handle(self: Arc<Self>, req: Request) -> Response {
        let nonce = nonce();
        let https = self.config.https();
        let session =
            cookie(req.headers(), https).and_then(|id| self.auth.session(&id).map(|s| (id, s)));
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let Some((id, session)) = session else {
            let token = login_cookie(req.headers(), https);
            return match (method.as_str(), path.as_str()) {
                ("POST", "/login") => self.login(req, &nonce).await,
                ("GET" | "HEAD", _) => self.login_page(StatusCode::OK, &nonce, token, None),
                _ => self.login_page(StatusCode::FORBIDDEN, &nonce, token, Some("Log in first.")),
            };
        };
        let query = pairs(req.uri().query().unwrap_or("").as_bytes());
        if method == "POST" {
            let Some(form) = read_form(req.into_body()).await else {
                return self.refuse(
                    &nonce,
                    &session,
                    StatusCode::BAD_REQUEST,
                    "That form could not be read.",
                );
            };
            let token = form.get("csrf").map(String::as_str).unwrap_or("");
            if !auth::same_secret(token.as_bytes(), session.csrf.as_bytes()) {
                tracing::warn!(message = "review POST refused: missing or wrong CSRF token", reviewer = %session.user, path = %path);
                return self.refuse(&nonce, &session, StatusCode::FORBIDDEN, "This form has expired or did not come from this page. Go back, reload and try again.");
            }
            return match path.as_str() {
                "/settle" => self.settle(&session, &form).await,
                "/model/candidate" => match &self.model {
                    Some((_, base)) if !self.config.training_data.is_empty() => {
                        let started = self.candidates.start(
                            self.full.clone(),
                            self.store.clone(),
                            self.config.training_data.clone(),
                            base.clone(),
                        );
                        tracing::info!(message = "review: candidate model requested", reviewer = %session.user, started);
                        see_other("/model")
                    }
                    _ => self.refuse(
                        &nonce,
                        &session,
                        StatusCode::CONFLICT,
                        "A candidate needs a classifier rule and [review] training_data.",
                    ),
                },
                "/logout" => {
                    self.auth.logout(&id);
                    let mut r = see_other("/");
                    r.headers_mut()
                        .insert(header::SET_COOKIE, self.cookie_header(""));
                    r
                }
                "/login" => see_other("/"),
                _ => self.refuse(&nonce, &session, StatusCode::NOT_FOUND, "No such page."),
            };
        }
        if method != "GET" && method != "HEAD" {
            return self.refuse(
                &nonce,
                &session,
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed.",
            );
        }
        let answer = match path.as_str() {
            "/" => self.queue(&nonce, &session, &query).await,
            "/recent" => self.store.recent_reviews(100).await.map(|items| {
                page(
                    StatusCode::OK,
                    &nonce,
                    pages::recent(&nonce, &session.user, &session.csrf, &items),
                )
            }),
            "/search" => {
                let q = query.get("q").map(|q| q.trim()).unwrap_or("");
                let q = match q.char_indices().nth(SEARCH_MAX) {
                    Some((end, _)) => &q[..end],
                    None => q,
                };
                let items = if q.is_empty() {
                    None
                } else {
                    Some(self.store.search_reviews(q, 100).await)
                };
                match items.transpose() {
                    Ok(items) => Ok(page(
                        StatusCode::OK,
                        &nonce,
                        pages::search(&nonce, &session.user, &session.csrf, q, items.as_deref()),
                    )),
                    Err(e) => Err(e),
                }
            }
            "/model" => self.model_page(&nonce, &session).await,
            "/login" => Ok(see_other("/")),
            _ => Ok(self.refuse(&nonce, &session, StatusCode::NOT_FOUND, "No such page.")),
        };
        answer.unwrap_or_else(|e| {
            tracing::error!(message = "review page failed", path = %path, error = %e);
            self.refuse(
                &nonce,
                &session,
                StatusCode::SERVICE_UNAVAILABLE,
                "The database did not answer; try again in a moment.",
            )
        })
    }

    fn refuse(&self, nonce: &str, s: &Session, status: StatusCode, text: &str) -> Response {
        let title = status.canonical_reason().unwrap_or("Refused");
        page(
            status,
            nonce,
            pages::message(nonce, &s.user, &s.csrf, title, text),
        )
    }

    fn cookie_header(&self, id: &str) -> HeaderValue {
        session_cookie(id, self.config.session_ttl, self.config.https())
    }

    /// With `public_url` set (reviewers come through a proxy), a login from a loopback peer
    /// without `X-Forwarded-For` means the proxy does not send it: every reviewer then shares
    /// one address for the slow-down. Said once in the log, for the operator.
    fn check_forwarded(&self, req: &Request) {
        let loopback = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|c| c.0.ip().to_canonical().is_loopback());
        if self.config.public_url.is_some()
            && loopback
            && !req.headers().contains_key("x-forwarded-for")
            && !self
                .warned_forwarded
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                message = "review: a login came through a proxy on this host without X-Forwarded-For; every reviewer shares one address for the login slow-down: make the proxy set it (README, \"The review queue\")"
            );
        }
    }

    /// The login page, its form carrying the pre-session token that `token` (the request's
    /// login cookie, kept so two tabs agree) or a fresh one sets.
    fn login_page(
        &self,
        status: StatusCode,
        nonce: &str,
        token: Option<String>,
        message: Option<&str>,
    ) -> Response {
        let token = token.unwrap_or_else(auth::random_token);
        let mut r = page(status, nonce, pages::login(nonce, &token, message));
        r.headers_mut().append(
            header::SET_COOKIE,
            cookie_value(
                &cookie_name(LOGIN_COOKIE, self.config.https()),
                &token,
                LOGIN_TTL,
                self.config.https(),
            ),
        );
        r
    }

    async fn login(&self, req: Request, nonce: &str) -> Response {
        let client = client(&req);
        self.check_forwarded(&req);
        let cookie_token = login_cookie(req.headers(), self.config.https());
        let Some(form) = read_form(req.into_body()).await else {
            return self.login_page(
                StatusCode::BAD_REQUEST,
                nonce,
                cookie_token,
                Some("That form could not be read."),
            );
        };
        // Login CSRF: the form's token must match the SameSite=Strict cookie its page set.
        let field = form.get("login_csrf").map(String::as_str).unwrap_or("");
        let matches = cookie_token
            .as_deref()
            .is_some_and(|c| auth::same_secret(c.as_bytes(), field.as_bytes()));
        if !matches {
            tracing::warn!(message = "review login refused: missing or wrong login form token", client = %client);
            return self.login_page(
                StatusCode::FORBIDDEN,
                nonce,
                None,
                Some("This login form has expired or did not come from this page. Try again."),
            );
        }
        let user = form.get("user").map(String::as_str).unwrap_or("");
        let password = form.get("password").map(String::as_str).unwrap_or("");
        match self.auth.login(client, user, password) {
            Ok((id, _)) => {
                let mut r = see_other("/");
                r.headers_mut()
                    .insert(header::SET_COOKIE, self.cookie_header(&id));
                // The login form's token has served: cleared.
                r.headers_mut().append(
                    header::SET_COOKIE,
                    cookie_value(
                        &cookie_name(LOGIN_COOKIE, self.config.https()),
                        "",
                        LOGIN_TTL,
                        self.config.https(),
                    ),
                );
                r
            }
            Err(LoginRefused::Wrong) => self.login_page(
                StatusCode::UNAUTHORIZED,
                nonce,
                cookie_token,
                Some("Wrong name or password."),
            ),
            Err(LoginRefused::SlowDown(wait)) => {
                let secs = wait.as_secs().max(1);
                let mut r = self.login_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    nonce,
                    cookie_token,
                    Some(&format!(
                        "Too many failed logins from here: try again in {secs} s."
                    )),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                r
            }
        }
    }

    async fn queue(
        &self,
        nonce: &str,
        s: &Session,
        query: &HashMap<String, String>,
    ) -> Result<Response, crate::store::StoreError> {
        let filters = Filters::from_query(query);
        let [account, rule, lang] = filters.values();
        let items = self.store.review_queue(account, rule, lang, SCAN).await?;
        let (min, max) = (self.config.min_score, self.config.max_score);
        // Scoring thousands of texts is CPU work: off the async threads.
        let model = self.model.as_ref().map(|(_, m)| m.clone());
        let selected =
            tokio::task::spawn_blocking(move || select(items, model.as_deref(), min, max)).await;
        let (rows, waiting) = match selected {
            Ok(selected) => selected,
            Err(e) => {
                tracing::error!(message = "review: scoring the queue failed", error = %e);
                return Ok(self.refuse(
                    nonce,
                    s,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The queue could not be scored; try again.",
                ));
            }
        };
        let facets = self.store.review_facets().await?;
        let back = queue_url(&filters, None);
        let p = pages::QueuePage {
            user: &s.user,
            csrf: &s.csrf,
            rows: &rows,
            waiting,
            facets: &facets,
            account,
            rule,
            lang,
            note: query.get("note").and_then(|n| note_text(n)),
            band: (min, max),
        };
        Ok(page(StatusCode::OK, nonce, pages::queue(nonce, &p, &back)))
    }

    async fn settle(&self, s: &Session, form: &HashMap<String, String>) -> Response {
        let nonce = nonce();
        let comment = form.get("comment").map(String::as_str).unwrap_or("");
        let Some(verdict) = form.get("verdict").and_then(|v| Verdict::parse(v)) else {
            return self.refuse(
                &nonce,
                s,
                StatusCode::BAD_REQUEST,
                "Choose right, wrong or remove.",
            );
        };
        // Back to the queue with its filters (only a path of ours: never an open redirect).
        let back_query = form
            .get("back")
            .and_then(|b| b.strip_prefix("/?"))
            .map(|q| pairs(q.as_bytes()))
            .unwrap_or_default();
        let filters = Filters::from_query(&back_query);
        let back = |note: &str| see_other(&queue_url(&filters, Some(note)));
        let item = match self.store.review_item(comment).await {
            Ok(Some(item)) => item,
            Ok(None) => return back("gone"),
            Err(e) => {
                tracing::error!(message = "review: cannot read the comment", comment_id = %comment, error = %e);
                return self.refuse(
                    &nonce,
                    s,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database did not answer; try again in a moment.",
                );
            }
        };
        // Only what the queue shows can be settled: a forged id of a comment outside the
        // score band is refused like a gone one.
        if !self.in_queue(&item).await {
            tracing::warn!(message = "review: settle refused, the comment is not in the queue", reviewer = %s.user, comment_id = %item.comment_id);
            return back("gone");
        }
        let plan = match queue::plan(&item, verdict, self.config.remove, self.full.daemon.dry_run) {
            Ok(plan) => plan,
            Err(why) => return self.refuse(&nonce, s, StatusCode::BAD_REQUEST, &why),
        };
        let settled = self
            .store
            .settle_review(Settlement {
                comment_id: &item.comment_id,
                account: &item.account,
                verdict: verdict.as_str(),
                who: &s.user,
                label: plan.label,
                write: plan.write,
            })
            .await;
        match settled {
            Ok(Settled::Done { queued }) => {
                tracing::info!(
                    message = "review: comment settled",
                    reviewer = %s.user,
                    comment_id = %item.comment_id,
                    account = %item.account,
                    verdict = verdict.as_str(),
                    label = plan.label.as_str(),
                    write = plan.write.unwrap_or("-"),
                    queued
                );
                if queued {
                    self.inboxes.wake_account(Some(&item.account));
                    back("queued")
                } else {
                    back("settled")
                }
            }
            Ok(Settled::Already { who }) => {
                tracing::info!(message = "review: already settled", reviewer = %s.user, comment_id = %item.comment_id, by = %who);
                back("already")
            }
            Err(e) => {
                tracing::error!(message = "review: cannot record the verdict", comment_id = %item.comment_id, error = %e);
                self.refuse(
                    &nonce,
                    s,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database did not answer; nothing was recorded. Try again in a moment.",
                )
            }
        }
    }

    /// Whether the queue would show `item`: doubtful by the running model (scored off the
    /// async threads).
    async fn in_queue(&self, item: &crate::store::ReviewItem) -> bool {
        let model = self.model.as_ref().map(|(_, m)| m.clone());
        let (min, max) = (self.config.min_score, self.config.max_score);
        let item = item.clone();
        tokio::task::spawn_blocking(move || {
            let score = match (item.action.as_str(), model) {
                ("flag", _) | (_, None) => None,
                (_, Some(m)) => Some(m.score(item.text.as_deref().unwrap_or(""))),
            };
            queue::doubtful(&item, score, min, max)
        })
        .await
        .unwrap_or(false)
    }

    async fn model_page(
        &self,
        nonce: &str,
        s: &Session,
    ) -> Result<Response, crate::store::StoreError> {
        let labeled = self.store.labeled_comments().await?;
        let p = pages::ModelPage {
            user: &s.user,
            csrf: &s.csrf,
            model: self.model.as_ref().map(|(p, _)| p.as_str()),
            labeled,
            trained_on_labels: self.model.as_ref().map(|(_, m)| m.training().from_labels),
            can_train: self.model.is_some() && !self.config.training_data.is_empty(),
            candidate: self.candidates.state(),
        };
        Ok(page(StatusCode::OK, nonce, pages::model(nonce, &p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_behind_https() {
        let ttl = std::time::Duration::from_secs(3600);
        assert_eq!(
            session_cookie("ab12", ttl, false),
            "igmod_review=ab12; HttpOnly; SameSite=Strict; Path=/; Max-Age=3600"
        );
        assert_eq!(
            session_cookie("ab12", ttl, true),
            "__Host-igmod_review=ab12; HttpOnly; SameSite=Strict; Path=/; Secure; Max-Age=3600"
        );
        assert_eq!(
            session_cookie("", ttl, true),
            "__Host-igmod_review=; HttpOnly; SameSite=Strict; Path=/; Secure; Max-Age=0"
        );
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; igmod_review=abc; b=2"),
        );
        assert_eq!(cookie(&h, false).as_deref(), Some("abc"));
        // Over https only the `__Host-` cookie counts: one planted by a subdomain does not.
        assert_eq!(cookie(&h, true), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("igmod_review=planted; __Host-igmod_review=mine"),
        );
        assert_eq!(cookie(&h, true).as_deref(), Some("mine"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("igmod_reviewx=abc"),
        );
        assert_eq!(cookie(&h, false), None);
    }

    fn request(peer: &str, forwarded: &[&str]) -> Request {
        let mut req = Request::new(Body::empty());
        let peer: SocketAddr = peer.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        for f in forwarded {
            req.headers_mut()
                .append("x-forwarded-for", HeaderValue::from_str(f).unwrap());
        }
        req
    }

    #[test]
    fn the_client_is_the_proxys_last_forwarded_hop_and_only_behind_loopback() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // No proxy: the peer, whatever it claims.
        assert_eq!(
            client(&request("198.51.100.9:5000", &["10.0.0.1"])),
            ip("198.51.100.9")
        );
        // A proxy on this host that appends to the client's header.
        assert_eq!(
            client(&request("127.0.0.1:5000", &["10.0.0.1, 203.0.113.5"])),
            ip("203.0.113.5")
        );
        // A proxy that adds its own line after the client's forged one.
        assert_eq!(
            client(&request("127.0.0.1:5000", &["10.0.0.1", "203.0.113.5"])),
            ip("203.0.113.5")
        );
        // The proxy reaching a dual-stack listener: its address is IPv4-mapped loopback.
        assert_eq!(
            client(&request("[::ffff:127.0.0.1]:5000", &["203.0.113.5"])),
            ip("203.0.113.5")
        );
        // Without the header (or with garbage), the loopback peer.
        assert_eq!(client(&request("[::1]:5000", &[])), ip("::1"));
        assert_eq!(
            client(&request("127.0.0.1:5000", &["not an address"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_queue_address_keeps_its_filters_and_only_known_notes_show() {
        assert_eq!(queue_url(&Filters::default(), None), "/");
        let filters = Filters {
            account: Some("shop".into()),
            rule: Some("a b&c".into()),
            lang: Some("es".into()),
        };
        assert_eq!(
            queue_url(&filters, Some("queued")),
            "/?account=shop&rule=a+b%26c&lang=es&note=queued"
        );
        let query = pairs(b"account=&rule=r&lang=pt&evil=1");
        assert_eq!(
            Filters::from_query(&query),
            Filters {
                account: None,
                rule: Some("r".into()),
                lang: Some("pt".into()),
            }
        );
        assert!(note_text("<script>").is_none());
    }
}
