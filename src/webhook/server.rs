//! The receiver: plain HTTP on `[webhook] listen` (a TLS proxy in front, since Meta only calls
//! HTTPS), one path answering Meta's verification (GET) and deliveries (POST).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use axum::response::{IntoResponse, Response};

use super::Inboxes;
use super::payload::{self, is_comment_field, is_test_entry};
use crate::http::BODY_TIMEOUT;
use crate::store::{NewWebhookEvent, Recorded, Store};

/// Bodies larger than this are refused (413) before they are read in full. Meta batches up
/// to 1,000 changes in one delivery (graph-api.md §12) and retries a refused one for 36 hours,
/// so the limit must hold its largest batch: a comment is at most 2,200 characters (counted
/// in UTF-16 units, as Instagram's apps count them — unverified), and the JSON-escaped worst
/// case is `\uXXXX`, 6 bytes, for each: 13,200 bytes of text, plus at most ~1 KiB of the rest
/// of a change (ids, a 30-character username escaped, `from`, `media`, field names) — about
/// 14.2 KB a change, 14.2 MB for 1,000. 16 MiB leaves room (16.7 KB a change).
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Bodies up to this size (most deliveries: a few comments) read in the small lane.
const SMALL_BODY: usize = 1024 * 1024;
/// At most one log line per this long about refused deliveries (with a count), so a flood of
/// forged requests cannot flood the journal.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);
/// Unknown entry ids remembered (each logged once); past this, no more are remembered.
const UNKNOWN_IDS_KEPT: usize = 1000;
/// Bodies read at once, in two lanes so memory stays bounded (slots × limit) and a flood of
/// big bodies cannot hold up the small deliveries that are most of Meta's: up to this many
/// of at most [`SMALL_BODY`] (64 MiB)...
const READING_AT_ONCE: usize = 64;
/// ...and this many larger ones (declared over [`SMALL_BODY`], or without a Content-Length),
/// of at most [`BODY_LIMIT`] (32 MiB): at most 96 MiB of bodies in memory, the others wait in
/// their sockets. Only requests whose signature header has the right form take a slot, and
/// each is held at most [`BODY_TIMEOUT`]: a few slow bodies cannot stall deliveries.
const LARGE_AT_ONCE: usize = 2;
/// Entries whose `time` is older than this are not acted on (outcome `stale`): Meta retries a
/// failed delivery for up to 36 hours; two more hours for clocks and queues. Older, it is a
/// captured delivery replayed (the digest of the ones still on record refuses them sooner).
pub const MAX_AGE: Duration = Duration::from_secs((36 + 2) * 3600);

/// What the receiver needs; secrets are read once, at start.
pub struct Receiver {
    pub store: Store,
    pub app_secret: SecretString,
    pub verify_token: SecretString,
    pub inboxes: Inboxes,
    refusals: Refusals,
    unknown: Mutex<HashSet<String>>,
    reading: tokio::sync::Semaphore,
    reading_large: tokio::sync::Semaphore,
}

impl Receiver {
    pub fn new(
        store: Store,
        app_secret: SecretString,
        verify_token: SecretString,
        inboxes: Inboxes,
    ) -> Receiver {
        Receiver {
            store,
            app_secret,
            verify_token,
            inboxes,
            refusals: Refusals::default(),
            unknown: Mutex::new(HashSet::new()),
            reading: tokio::sync::Semaphore::new(READING_AT_ONCE),
            reading_large: tokio::sync::Semaphore::new(LARGE_AT_ONCE),
        }
    }
}

/// The router: `path` for Meta; other paths are 404.
pub fn router(path: &str, receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route(path, get(verify).post(deliver))
        .with_state(receiver)
}

/// Meta's verification request: the challenge echoed when mode and token match, else 403.
async fn verify(
    State(r): State<Arc<Receiver>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> (StatusCode, String) {
    let mode_ok = q.get("hub.mode").map(String::as_str) == Some("subscribe");
    let token_ok = q.get("hub.verify_token").is_some_and(|t| {
        bool::from(
            t.as_bytes()
                .ct_eq(r.verify_token.expose_secret().as_bytes()),
        )
    });
    match q.get("hub.challenge") {
        Some(challenge) if mode_ok && token_ok => {
            crate::metrics::get().webhook("verified");
            tracing::info!(message = "webhook callback verified by meta");
            (StatusCode::OK, challenge.clone())
        }
        _ => {
            crate::metrics::get().webhook("verify_refused");
            r.refusals.refuse("verification with a wrong token or mode");
            (StatusCode::FORBIDDEN, "forbidden\n".into())
        }
    }
}

/// The digest an `X-Hub-Signature-256` header carries, if it has the form Meta sends:
/// `sha256=` and exactly 64 hex digits. Checked before a body is read.
pub fn signature_form(header: Option<&str>) -> Option<[u8; 32]> {
    let hex_sig = header?.trim().strip_prefix("sha256=")?;
    let mut sig = [0u8; 32];
    hex::decode_to_slice(hex_sig, &mut sig).ok()?;
    Some(sig)
}

/// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`, compared in
/// constant time.
pub fn signature_ok(secret: &SecretString, header: Option<&str>, body: &[u8]) -> bool {
    signature_form(header).is_some_and(|sig| signature_matches(secret, &sig, body))
}

fn signature_matches(secret: &SecretString, sig: &[u8; 32], body: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(sig).is_ok()
}

/// An answer after which the connection is closed: the request's body may be unread (or
/// still on its way), and waiting for it is what a slow client wants.
fn closing(status: StatusCode, text: &'static str) -> Response {
    (status, [(axum::http::header::CONNECTION, "close")], text).into_response()
}

/// A delivery: refused unless signed; written to SQLite before the 200; a delivery already on
/// record (same body digest) or an entry older than [`MAX_AGE`] is not acted on again.
async fn deliver(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let deadline = tokio::time::Instant::now() + BODY_TIMEOUT;
    // Too large by its own account: refused before a byte of it is read.
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        crate::metrics::get().webhook("too_large");
        r.refusals.refuse("body larger than 16 MiB");
        return closing(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
    }
    // Without a signature of the right form, nothing more is read.
    let header = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    let Some(signature) = signature_form(header) else {
        crate::metrics::get().webhook("bad_signature");
        r.refusals.refuse(if header.is_none() {
            "missing X-Hub-Signature-256"
        } else {
            "X-Hub-Signature-256 is not sha256= and 64 hex digits"
        });
        return closing(StatusCode::FORBIDDEN, "bad signature\n");
    };
    let body: Bytes = {
        // Waiting for a slot counts against the body's time: a slot is never held longer.
        let (lane, limit) = match declared.and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n <= SMALL_BODY => (&r.reading, n),
            Some(n) => (&r.reading_large, n),
            None => (&r.reading_large, BODY_LIMIT),
        };
        let _permit = match tokio::time::timeout_at(deadline, lane.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return closing(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
            Err(_) => return r.too_slow(),
        };
        match tokio::time::timeout_at(deadline, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => {
                crate::metrics::get().webhook("too_large");
                r.refusals
                    .refuse("body larger than 16 MiB (or its Content-Length) or cut short");
                return closing(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
            }
            Err(_) => return r.too_slow(),
        }
    };
    if !signature_matches(&r.app_secret, &signature, &body) {
        crate::metrics::get().webhook("bad_signature");
        r.refusals
            .refuse("X-Hub-Signature-256 does not match the body and the app secret");
        return (StatusCode::FORBIDDEN, "bad signature\n").into_response();
    }
    let delivery = match payload::parse(&body) {
        Ok(d) => d,
        Err(e) => {
            crate::metrics::get().webhook("malformed");
            tracing::warn!(message = "webhook delivery refused: malformed body", error = %e);
            return (StatusCode::BAD_REQUEST, "malformed body\n").into_response();
        }
    };
    let oldest = chrono::Utc::now()
        .timestamp()
        .saturating_sub(i64::try_from(MAX_AGE.as_secs()).unwrap_or(i64::MAX));
    let digest = hex::encode(Sha256::digest(&body));
    let instagram = delivery.object.as_deref() == Some("instagram");
    let mut rows = Vec::new();
    let mut wake = Vec::new();
    for change in &delivery.changes {
        let field = change.field.clone();
        let comment_field = instagram && field.as_deref().is_some_and(is_comment_field);
        let mut row = NewWebhookEvent {
            account: None,
            ig_user_id: change.entry_id.clone(),
            field,
            comment_id: None,
            outcome: "ignored",
            payload: None,
        };
        if !comment_field {
            rows.push(row);
            continue;
        }
        row.comment_id = change
            .value
            .as_ref()
            .and_then(payload::comment)
            .map(|c| c.id);
        if is_test_entry(change.entry_id.as_deref()) {
            row.outcome = "test";
        } else if change.time.is_some_and(|t| t < oldest) {
            // Signed by Meta once, sent again long after: not acted on.
            row.outcome = "stale";
            r.refusals
                .refuse("an entry older than 38 hours (a replayed delivery); recorded as stale, not acted on");
        } else if let Some((account, notify)) = change
            .entry_id
            .as_deref()
            .and_then(|id| r.inboxes.lookup(id))
        {
            row.account = Some(account);
            if row.comment_id.is_some() {
                row.outcome = "pending";
                row.payload = change.value.as_ref().map(|v| {
                    // `time` of the entry stands in for the comment's time (the payload has none).
                    let mut v = v.clone();
                    if let (Some(obj), Some(t)) = (v.as_object_mut(), change.time) {
                        obj.insert("_entry_time".into(), t.into());
                    }
                    v.to_string()
                });
                wake.push(notify);
            } else {
                row.outcome = "refused: no comment id";
            }
        } else {
            row.outcome = "unknown_account";
            r.unknown_account(change.entry_id.as_deref().unwrap_or("-"));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        rows.push(NewWebhookEvent {
            account: None,
            ig_user_id: None,
            field: None,
            comment_id: None,
            outcome: "ignored",
            payload: None,
        });
    }
    match r.store.record_webhook_delivery(&digest, &rows).await {
        Ok(Recorded::New) => {}
        Ok(Recorded::Again) => {
            // Meta's retry of a delivery whose 200 it missed, or a captured one replayed:
            // either way it was acted on once. 200, so that Meta stops.
            crate::metrics::get().webhook("replayed");
            r.refusals.refuse(
                "a delivery already on record (a retry or a replay); answered 200, not acted on again",
            );
            return (StatusCode::OK, "ok\n").into_response();
        }
        Err(e) => {
            tracing::error!(
                message = "webhook delivery not recorded; answered 503 so that meta retries it",
                error = %e
            );
            crate::metrics::get().webhook("unwritable");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again later\n").into_response();
        }
    }
    crate::metrics::get().webhook("accepted");
    for notify in wake {
        notify.notify_one();
    }
    (StatusCode::OK, "ok\n").into_response()
}

impl Receiver {
    /// A body that did not arrive within [`BODY_TIMEOUT`] of its head: 408, connection closed.
    fn too_slow(&self) -> Response {
        crate::metrics::get().webhook("body_timeout");
        crate::metrics::get().http_refused("webhook", "body_timeout");
        self.refusals
            .refuse("body not received within 10 s of the request's head");
        closing(StatusCode::REQUEST_TIMEOUT, "body too slow\n")
    }

    fn unknown_account(&self, id: &str) {
        let first = self
            .unknown
            .lock()
            .map(|mut seen| seen.len() < UNKNOWN_IDS_KEPT && seen.insert(id.to_string()))
            .unwrap_or(false);
        if first {
            tracing::warn!(
                message = "webhook for an instagram account that is not configured here; ignored (logged once per id)",
                ig_user_id = %id
            );
        }
    }
}

/// Refused requests, logged at most once per [`REFUSAL_LOG_EVERY`] with how many there were.
#[derive(Default)]
struct Refusals {
    since_line: AtomicU64,
    last_line: Mutex<Option<Instant>>,
}

impl Refusals {
    fn refuse(&self, why: &str) {
        let n = self.since_line.fetch_add(1, Ordering::Relaxed) + 1;
        let due = match self.last_line.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY);
                if due {
                    *last = Some(Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if due {
            self.since_line.store(0, Ordering::Relaxed);
            tracing::warn!(
                message = "webhook requests refused; at most one such line a minute",
                reason = %why,
                refused = n
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_over_the_raw_body() {
        let secret = SecretString::from("s3cret");
        let body = br#"{"object":"instagram","entry":[]}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap_or_else(|_| unreachable!());
        mac.update(body);
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(signature_ok(&secret, Some(&good), body));
        assert!(!signature_ok(&secret, None, body));
        assert!(!signature_ok(
            &secret,
            Some(&good.replace("sha256=", "sha1=")),
            body
        ));
        let mut altered = body.to_vec();
        altered[3] ^= 1;
        assert!(!signature_ok(&secret, Some(&good), &altered));
        assert!(!signature_ok(
            &SecretString::from("other"),
            Some(&good),
            body
        ));
        assert!(!signature_ok(&secret, Some("sha256=zz"), body));
    }

    #[test]
    fn only_sha256_and_64_hex_digits_is_a_signature_worth_reading_a_body_for() {
        let hex64 = "ab".repeat(32);
        for (header, form) in [
            (Some(format!("sha256={hex64}")), true),
            (Some(format!(" sha256={hex64} ")), true),
            (None, false),
            (Some(String::new()), false),
            (Some(format!("sha1={hex64}")), false),
            (Some(format!("sha256={}", &hex64[..62])), false),
            (Some(format!("sha256={hex64}00")), false),
            (Some(format!("sha256={}zz", &hex64[..62])), false),
            (Some(format!("sha256= {hex64}")), false),
        ] {
            assert_eq!(
                signature_form(header.as_deref()).is_some(),
                form,
                "{header:?}"
            );
        }
    }
}
