//! A stateful Graph API simulator on 127.0.0.1, for `igmod demo` and the tests.
//!
//! It follows ../shared/graph-api.md: newest-first comments, at most 50 per page, cursor
//! pagination where `next` is the only end signal and embeds the token, nested field expansion
//! with empty edges omitted, hide/delete, usage headers, and error envelopes with Meta's codes
//! (190, 100/33 and the other shapes of "gone", 80002, 4/2207051 and 368 for one account's
//! writes, bare 429s, transient 2/5xx). docs/graph-contract.md lists each with its source.
//!
//! Architecture invariant: it shares no types or code with `graph`; it writes JSON from its own
//! structures, so a client bug cannot hide behind a struct both sides use.

mod faults;
mod fields;
mod traffic;
mod webhooks;
mod world;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, Uri};
use chrono::Utc;
use tokio_util::sync::CancellationToken;

pub use traffic::{KINDS, Traffic, TrafficStats};
pub use webhooks::{BatchForm, CommentKey, MAX_CHANGES_PER_POST, WebhookFaults, WebhookStats};
pub use world::{Comment, GoneShape, Request, Restriction, Seen, page_id};

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    addr: SocketAddr,
    world: Arc<Mutex<world::World>>,
    stop: CancellationToken,
    webhook_stats: Arc<Mutex<WebhookStats>>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

type Shared = Arc<Mutex<world::World>>;

/// One injected fault: (trace id, kind, request path).
pub type FaultRecord = (String, &'static str, String);

fn lock(world: &Shared) -> MutexGuard<'_, world::World> {
    match world.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Simulator {
    /// Starts on 127.0.0.1 with an OS-chosen port.
    pub async fn start() -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut w = world::World::new();
        w.base_url = format!("http://{addr}");
        let world = Arc::new(Mutex::new(w));
        let stop = CancellationToken::new();
        let app = Router::new().fallback(handle).with_state(world.clone());
        let stopped = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::warn!(message = "simulator stopped", error = %e);
            }
        });
        Ok(Simulator {
            addr,
            world,
            stop,
            webhook_stats: Default::default(),
        })
    }

    /// `http://127.0.0.1:PORT`: use as both base URLs in the config.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_account(&self, ig_user_id: &str, username: &str, token: &str) {
        lock(&self.world).accounts.insert(
            ig_user_id.to_string(),
            world::Account {
                id: ig_user_id.to_string(),
                username: username.to_string(),
                token: token.to_string(),
                token_dead: None,
                throttled_until: None,
                throttle_silent: false,
                usage_override: None,
                other_tokens: Vec::new(),
                revoke_on_refresh: false,
                refresh_too_young: false,
                refreshes: 0,
                facebook: None,
                restricted: None,
            },
        );
    }

    /// The Meta app's credentials (`debug_token`, `fb_exchange_token`).
    pub fn set_app(&self, app_id: &str, secret: &str) {
        lock(&self.world).app = Some((app_id.to_string(), secret.to_string()));
    }

    /// Makes an account a Facebook Login one: `kind` `USER` or `PAGE`, `expires_in_days`
    /// `None` for a token that never expires, the permissions it grants.
    pub fn set_facebook(
        &self,
        ig_user_id: &str,
        kind: &str,
        expires_in_days: Option<i64>,
        data_access_days: i64,
        scopes: &[&str],
    ) {
        let now = Utc::now().timestamp();
        if let Some(a) = lock(&self.world).accounts.get_mut(ig_user_id) {
            a.facebook = Some(world::FacebookToken {
                kind: kind.to_string(),
                expires_at: expires_in_days.map_or(0, |d| now + d * 86_400),
                data_access_expires_at: now + data_access_days * 86_400,
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                exchanges: 0,
                exchange_fails: false,
            });
        }
    }

    /// `fb_exchange_token` calls for the account fail from now on.
    pub fn fail_exchanges(&self, ig_user_id: &str) {
        if let Some(fb) = lock(&self.world)
            .accounts
            .get_mut(ig_user_id)
            .and_then(|a| a.facebook.as_mut())
        {
            fb.exchange_fails = true;
        }
    }

    /// Successful `fb_exchange_token` calls for the account.
    pub fn exchanges(&self, ig_user_id: &str) -> u32 {
        lock(&self.world)
            .accounts
            .get(ig_user_id)
            .and_then(|a| a.facebook.as_ref())
            .map_or(0, |f| f.exchanges)
    }

    /// Requests answered on a path ending with `suffix` (e.g. `/debug_token`).
    pub fn requests_to(&self, suffix: &str) -> usize {
        lock(&self.world)
            .requests
            .iter()
            .filter(|r| r.path.ends_with(suffix))
            .count()
    }

    /// Adds a post (newest so far) and returns its id.
    pub fn add_media(&self, owner: &str) -> String {
        self.add_media_of_type(owner, "FEED")
    }

    /// Adds a live video being broadcast (`media_product_type` `LIVE`) and returns its id: its
    /// comments are delivered as `live_comments` and refuse every moderation write.
    pub fn add_live_media(&self, owner: &str) -> String {
        self.add_media_of_type(owner, world::LIVE)
    }

    fn add_media_of_type(&self, owner: &str, product_type: &str) -> String {
        let mut w = lock(&self.world);
        let id = w.new_id(17_900);
        w.media.push(world::Media {
            id: id.clone(),
            owner: owner.to_string(),
            timestamp: Utc::now(),
            product_type: product_type.into(),
            unlisted: 0,
            comments_enabled: true,
        });
        id
    }

    /// From now on `field` is refused as nonexisting in media listings, whatever the login.
    pub fn refuse_media_field(&self, field: &str) {
        lock(&self.world)
            .refused_media_fields
            .push(field.to_string());
    }

    /// A media's `is_comment_enabled` (`None`: no such media).
    pub fn comments_enabled(&self, media_id: &str) -> Option<bool> {
        lock(&self.world)
            .media
            .iter()
            .find(|m| m.id == media_id)
            .map(|m| m.comments_enabled)
    }

    /// How many comments people tried to post while their media's comments were off.
    pub fn refused_comments(&self) -> u32 {
        lock(&self.world).refused_comments
    }

    /// Makes `comments_count` count `n` more comments that no listing returns (Meta's count
    /// includes restricted users' comments).
    pub fn add_unlisted(&self, media_id: &str, n: usize) {
        if let Some(m) = lock(&self.world)
            .media
            .iter_mut()
            .find(|m| m.id == media_id)
        {
            m.unlisted += n;
        }
    }

    /// Deletes a comment the way its author would (no API call from igmod).
    pub fn remove_comment(&self, id: &str) {
        if let Some(c) = lock(&self.world).comments.iter_mut().find(|c| c.id == id) {
            c.deleted = true;
        }
    }

    /// Adds a top-level comment by someone else (newest so far) and returns its id. On a media
    /// whose comments are off the comment is refused, as Instagram refuses it: nothing is
    /// added, [`Simulator::refused_comments`] counts it, and the id returned is empty.
    pub fn add_comment(&self, media_id: &str, username: &str, text: &str) -> String {
        self.insert(media_id, None, username, None, text)
    }

    /// Adds a reply to a top-level comment.
    pub fn add_reply(&self, parent_id: &str, username: &str, text: &str) -> String {
        let media = lock(&self.world)
            .comments
            .iter()
            .find(|c| c.id == parent_id)
            .map(|c| c.media_id.clone())
            .unwrap_or_default();
        self.insert(&media, Some(parent_id), username, None, text)
    }

    /// Adds a reply from the media's owner account to a comment (as if igmod had posted it).
    pub fn add_owner_reply_for_test(&self, parent_id: &str, text: &str) -> String {
        let (media, owner) = {
            let w = lock(&self.world);
            let media = w
                .comments
                .iter()
                .find(|c| c.id == parent_id)
                .map(|c| c.media_id.clone())
                .unwrap_or_default();
            let owner = w
                .media
                .iter()
                .find(|m| m.id == media)
                .and_then(|m| w.accounts.get(&m.owner))
                .map(|a| (a.id.clone(), a.username.clone()))
                .unwrap_or_default();
            (media, owner)
        };
        self.insert(&media, Some(parent_id), &owner.1, Some(&owner.0), text)
    }

    /// Adds a comment written by the media's owner account.
    pub fn add_owner_comment(&self, media_id: &str, text: &str) -> String {
        let owner = {
            let w = lock(&self.world);
            w.media
                .iter()
                .find(|m| m.id == media_id)
                .and_then(|m| w.accounts.get(&m.owner))
                .map(|a| (a.id.clone(), a.username.clone()))
                .unwrap_or_default()
        };
        self.insert(media_id, None, &owner.1, Some(&owner.0), text)
    }

    fn insert(
        &self,
        media_id: &str,
        parent: Option<&str>,
        username: &str,
        from_id: Option<&str>,
        text: &str,
    ) -> String {
        let mut w = lock(&self.world);
        if w.media
            .iter()
            .any(|m| m.id == media_id && !m.comments_enabled)
        {
            w.refused_comments += 1;
            return String::new();
        }
        let id = w.new_id(18_000);
        // The owner's comments carry its Instagram-scoped id, not its IG user id, in
        // `from.id` (graph-api.md §3, §12), and `user` when read.
        let by_owner = from_id.is_some();
        let from_id = from_id.map_or_else(
            || format!("{}", 9_000_000 + (hash(username) % 1_000_000)),
            world::scoped_id,
        );
        w.comments.push(world::Comment {
            id: id.clone(),
            media_id: media_id.to_string(),
            parent_id: parent.map(str::to_string),
            text: text.to_string(),
            username: username.to_string(),
            from_id,
            by_owner,
            timestamp: Utc::now(),
            hidden: false,
            deleted: false,
            hide_calls: 0,
            delete_calls: 0,
            acted_at: None,
        });
        if let Some(c) = w.comments.last() {
            w.push_webhook(c);
        }
        id
    }

    /// From now on every new comment (and igmod's own replies) is POSTed to `url` as Meta's
    /// webhook, signed with the app secret of [`Simulator::set_app`] (`"sim-app-secret"` when
    /// none is set), with `faults`.
    pub fn deliver_webhooks(&self, url: &str, faults: WebhookFaults) {
        let secret = lock(&self.world)
            .app
            .as_ref()
            .map_or_else(|| "sim-app-secret".to_string(), |(_, s)| s.clone());
        let tx = webhooks::start(url.to_string(), secret, faults, self.webhook_stats.clone());
        lock(&self.world).webhook = Some(tx);
    }

    /// The user of a Facebook Login token manages `n` other Pages, listed before the account's
    /// own in `me/accounts` (25 a page): with 25 or more, the account's Page is on page two.
    pub fn set_other_pages(&self, n: usize) {
        lock(&self.world).other_pages = n;
    }

    /// The comments as Meta batches them: POST bodies of at most 1,000 changes, in entries
    /// of `form.per_entry` changes, keyed and timed as `form` says. Unknown ids are left out.
    pub fn webhook_batches(&self, comment_ids: &[String], form: BatchForm) -> Vec<Vec<u8>> {
        let changes = {
            let w = lock(&self.world);
            comment_ids
                .iter()
                .filter_map(|id| w.webhook_change(id, form.key))
                .collect()
        };
        webhooks::batches(changes, form)
            .into_iter()
            .map(|b| b.to_string().into_bytes())
            .collect()
    }

    /// POSTs one delivery body to `url`, signed as Meta signs it with the app secret of
    /// [`Simulator::set_app`]; the HTTP status, `None` when unanswered.
    pub async fn post_webhook(&self, url: &str, body: &[u8]) -> Option<u16> {
        let secret = lock(&self.world)
            .app
            .as_ref()
            .map_or_else(|| "sim-app-secret".to_string(), |(_, s)| s.clone());
        webhooks::post_once(url, &secret, body).await
    }

    /// What webhook delivery did so far.
    pub fn webhook_stats(&self) -> WebhookStats {
        match self.webhook_stats.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Signs a body as Meta would with `secret` (for tests that POST their own deliveries).
    pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
        webhooks::sign(secret, body)
    }

    /// The fields the node (an Instagram account id, or a Page id) is subscribed to.
    pub fn subscription(&self, node: &str) -> Option<Vec<String>> {
        lock(&self.world).subscriptions.get(node).cloned()
    }

    /// The app is not Live (or lacks Advanced Access): subscriptions are refused with code 200.
    pub fn set_app_not_live(&self, not_live: bool) {
        lock(&self.world).app_not_live = not_live;
    }

    /// "Require App Secret": Facebook Login calls need a right `appsecret_proof`.
    pub fn require_appsecret_proof(&self, on: bool) {
        lock(&self.world).require_proof = on;
    }

    /// The simulator's view of a comment (including deleted ones).
    pub fn comment(&self, id: &str) -> Option<Comment> {
        lock(&self.world)
            .comments
            .iter()
            .find(|c| c.id == id)
            .cloned()
    }

    /// Hides or unhides a comment the way a person in the Instagram app would (no API call).
    pub fn set_hidden_by_person(&self, id: &str, hidden: bool) {
        if let Some(c) = lock(&self.world).comments.iter_mut().find(|c| c.id == id) {
            c.hidden = hidden;
        }
    }

    /// Every comment, oldest first.
    pub fn comments(&self) -> Vec<Comment> {
        lock(&self.world).comments.clone()
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.world).requests.clone()
    }

    /// Requests made with this account's token.
    pub fn calls_for(&self, ig_user_id: &str) -> usize {
        lock(&self.world)
            .requests
            .iter()
            .filter(|r| r.account.as_deref() == Some(ig_user_id))
            .count()
    }

    /// From now on the account's token answers 190 with this subcode (463: expired).
    pub fn kill_token(&self, ig_user_id: &str, subcode: i64) {
        if let Some(a) = lock(&self.world).accounts.get_mut(ig_user_id) {
            a.token_dead = Some(subcode);
        }
    }

    /// The account gets a new working token (and the dead one is forgotten).
    pub fn replace_token(&self, ig_user_id: &str, token: &str) {
        if let Some(a) = lock(&self.world).accounts.get_mut(ig_user_id) {
            a.token = token.to_string();
            a.token_dead = None;
            a.other_tokens.clear();
        }
    }

    /// Another token that works for the account (an operator's replacement).
    pub fn add_token(&self, ig_user_id: &str, token: &str) {
        if let Some(a) = lock(&self.world).accounts.get_mut(ig_user_id) {
            a.other_tokens.push(token.to_string());
        }
    }

    /// The account's current token (after refreshes).
    pub fn token_of(&self, ig_user_id: &str) -> Option<String> {
        lock(&self.world)
            .accounts
            .get(ig_user_id)
            .map(|a| a.token.clone())
    }

    /// Refresh behaviour: whether a refresh revokes the old token, whether it answers "too
    /// young".
    pub fn set_refresh(&self, ig_user_id: &str, revoke_old: bool, too_young: bool) {
        if let Some(a) = lock(&self.world).accounts.get_mut(ig_user_id) {
            a.revoke_on_refresh = revoke_old;
            a.refresh_too_young = too_young;
        }
    }

    /// Successful token refreshes of the account.
    pub fn refreshes(&self, ig_user_id: &str) -> u32 {
        lock(&self.world)
            .accounts
            .get(ig_user_id)
            .map_or(0, |a| a.refreshes)
    }

    /// Switches fault injection on: `transient` and `garbage` are shares of requests (0–1),
    /// `slow` how long a slow answer takes. The same `seed` gives the same faults.
    pub fn inject_faults(
        &self,
        seed: u64,
        transient: f64,
        garbage: f64,
        slow: std::time::Duration,
    ) {
        lock(&self.world).faults = Some(faults::Faults::new(seed, transient, garbage, slow));
    }

    /// Switches fault injection off (what was injected stays readable).
    pub fn stop_faults(&self) {
        if let Some(f) = lock(&self.world).faults.as_mut() {
            f.transient = 0.0;
            f.garbage = 0.0;
        }
    }

    /// Faults injected so far: by kind, and each (trace id, kind, path).
    pub fn faults_injected(&self) -> (BTreeMap<&'static str, u32>, Vec<FaultRecord>) {
        lock(&self.world)
            .faults
            .as_ref()
            .map(|f| (f.injected.clone(), f.log.clone()))
            .unwrap_or_default()
    }

    /// A person deletes the comment just before igmod's next hide or delete of it arrives
    /// (that call then answers 100/33).
    pub fn vanish_before_action(&self, comment_id: &str) {
        lock(&self.world).vanish.insert(comment_id.to_string());
    }

    /// From now on every read of this comment fails transiently (HTTP 500, code 2).
    pub fn fail_reads_of(&self, comment_id: &str) {
        lock(&self.world).unreadable.insert(comment_id.to_string());
    }

    /// The next `n` reads of this comment answer without its `hidden` field (a garbled answer).
    pub fn leave_out_hidden(&self, comment_id: &str, n: u32) {
        lock(&self.world)
            .hidden_left_out
            .insert(comment_id.to_string(), n);
    }

    /// Marks text that the simulator sends with an unpaired UTF-16 surrogate escape in place
    /// of each `\u{E000}`.
    pub const BROKEN_EMOJI: char = '\u{E000}';

    /// Every write (POST, DELETE) takes effect at once but is answered this much later: a
    /// crash in between leaves igmod not knowing whether it happened.
    pub fn set_write_delay(&self, delay: std::time::Duration) {
        lock(&self.world).write_delay = delay;
    }

    /// Every answer from now on waits this long.
    pub fn set_delay(&self, delay: std::time::Duration) {
        lock(&self.world).delay = delay;
    }

    /// The next `n` requests answer HTTP 500 with a transient code 2.
    pub fn fail_next(&self, n: u32) {
        lock(&self.world).fail_next = n;
    }

    /// For the given time the account's writes (hide, delete, reply) are refused as Meta
    /// refuses a restricted (4/2207051) or policy-blocked (368) account's; its reads go on, and
    /// its usage header's `estimated_time_to_regain_access` says when the writes come back.
    pub fn restrict_account(&self, ig_user_id: &str, kind: Restriction, for_: std::time::Duration) {
        if let Some(a) = lock(&self.world).accounts.get_mut(ig_user_id) {
            a.restricted = chrono::Duration::from_std(for_)
                .ok()
                .map(|d| (kind, Utc::now() + d));
        }
    }

    /// From now on a "gone" answer about this comment takes this shape of Meta's.
    pub fn gone_shape(&self, comment_id: &str, shape: GoneShape) {
        lock(&self.world)
            .gone_shapes
            .insert(comment_id.to_string(), shape);
    }

    /// The next `n` requests (`writes_only`: the next `n` hides, deletes and replies) answer a
    /// bare HTTP 429 with an empty body, with a `Retry-After` of this many seconds if given.
    pub fn bare_429(&self, n: u32, retry_after_secs: Option<u64>, writes_only: bool) {
        lock(&self.world).bare_429 = (n, retry_after_secs, writes_only);
    }

    /// The account answers 80002 for the given time.
    pub fn throttle(&self, ig_user_id: &str, for_: std::time::Duration) {
        if let Some(a) = lock(&self.world).accounts.get_mut(ig_user_id) {
            a.throttled_until = chrono::Duration::from_std(for_)
                .ok()
                .map(|d| Utc::now() + d);
            a.throttle_silent = false;
        }
    }

    /// The account answers 80002 for the given time, without any usage header (no hint).
    pub fn throttle_silently(&self, ig_user_id: &str, for_: std::time::Duration) {
        if let Some(a) = lock(&self.world).accounts.get_mut(ig_user_id) {
            a.throttled_until = chrono::Duration::from_std(for_)
                .ok()
                .map(|d| Utc::now() + d);
            a.throttle_silent = true;
        }
    }

    /// From now on every answer carries this app-wide usage (`X-App-Usage`); `None`: computed.
    pub fn set_app_usage(&self, pct: Option<u32>) {
        lock(&self.world).app_usage = pct;
    }

    /// From now on every `X-Business-Use-Case-Usage` header also lists another business
    /// object (not served here) at this percentage, as Meta may.
    pub fn set_neighbour_usage(&self, pct: Option<u32>) {
        lock(&self.world).neighbour_usage = pct;
    }

    /// From now on every answer for the account carries usage headers with this percentage
    /// and minutes to regain access (`None`: computed from the calls made).
    pub fn set_usage(&self, ig_user_id: &str, usage: Option<(u32, u32)>) {
        if let Some(a) = lock(&self.world).accounts.get_mut(ig_user_id) {
            a.usage_override = usage;
        }
    }
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1099511628211)
    })
}

async fn handle(
    State(world): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let delay = lock(&world).delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (answer, write_delay) = {
        let mut w = lock(&world);
        let answer = w.handle(method.as_str(), uri.path(), &query, bearer.as_deref());
        (answer, w.write_delay)
    };
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    if method != Method::GET && !write_delay.is_zero() {
        // The write has taken effect; its answer is still on the way.
        tokio::time::sleep(write_delay).await;
    }
    let mut response = Response::builder().status(answer.status);
    if !answer.headers.iter().any(|(k, _)| *k == "content-type") {
        response = response.header("content-type", "application/json; charset=UTF-8");
    }
    for (k, v) in answer.headers {
        response = response.header(k, v);
    }
    let body = if answer.cut {
        // Half the body, then the connection drops.
        let mut half = answer.body.into_bytes();
        half.truncate(half.len() / 2);
        let parts: Vec<Result<Vec<u8>, std::io::Error>> = vec![
            Ok(half),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "cut",
            )),
        ];
        Body::from_stream(futures::stream::iter(parts))
    } else {
        Body::from(answer.body)
    };
    response
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::from("{}")))
}
