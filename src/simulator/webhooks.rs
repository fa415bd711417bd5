//! The simulator's webhook deliveries, sent as Meta sends them: each new comment POSTed to the
//! callback URL as JSON signed with the app secret (`X-Hub-Signature-256`), Instagram Login
//! accounts with `field`/`value` on the entry, Facebook Login ones inside `changes`, retried
//! with back-off while the receiver answers anything but 2xx. Faults on request: a delay,
//! dropped deliveries (never sent), duplicates, reordering (a random extra delay) and forged
//! copies with a wrong signature (which the receiver must refuse).
//!
//! Signing is written here with the `hmac` crate directly: no code is shared with igmod's
//! receiver, so a bug there cannot hide behind a helper both sides use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

/// How deliveries go wrong, on purpose.
#[derive(Debug, Clone)]
pub struct WebhookFaults {
    /// Every delivery waits this long before it is sent.
    pub delay: Duration,
    /// Share of deliveries never sent (0.0–1.0).
    pub drop: f64,
    /// Share sent twice.
    pub duplicate: f64,
    /// Each delivery waits a random extra delay up to this long, so later ones overtake it.
    pub reorder: Duration,
    /// Share followed by a forged copy whose signature is wrong.
    pub forged: f64,
    pub seed: u64,
}

impl Default for WebhookFaults {
    fn default() -> Self {
        WebhookFaults {
            delay: Duration::ZERO,
            drop: 0.0,
            duplicate: 0.0,
            reorder: Duration::ZERO,
            forged: 0.0,
            seed: 1,
        }
    }
}

/// What was delivered, for the tests and the demo.
#[derive(Debug, Clone, Default)]
pub struct WebhookStats {
    /// Comment events handed to delivery.
    pub events: u64,
    /// POSTs answered 2xx.
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    /// Forged POSTs sent, and how many of them the receiver refused with 403.
    pub forged: u64,
    pub forged_refused: u64,
    /// POSTs answered otherwise (each retried).
    pub refused: u64,
    /// Deliveries given up after the last retry.
    pub given_up: u64,
    /// When each comment's first delivery that was answered 2xx was sent.
    pub delivered_at: HashMap<String, DateTime<Utc>>,
}

/// One comment to deliver: its id and the delivery's JSON.
pub struct Event {
    pub comment_id: String,
    pub body: Value,
}

/// The delivery's body for a comment, in the account's login's shape.
#[allow(clippy::too_many_arguments)]
pub fn body(
    owner: &str,
    facebook: bool,
    field: &str,
    comment_id: &str,
    text: &str,
    username: &str,
    from_id: &str,
    media_id: &str,
    product_type: &str,
    parent_id: Option<&str>,
) -> Value {
    let mut from = json!({"id": from_id, "username": username});
    if from_id == owner {
        // The account commenting on its own media.
        from["self_ig_scoped_id"] = json!(format!("7{from_id}"));
    }
    let mut value = json!({
        "id": comment_id,
        "text": text,
        "from": from,
        "media": {"id": media_id, "media_product_type": product_type},
    });
    if let Some(p) = parent_id {
        value["parent_id"] = json!(p);
    }
    let time = Utc::now().timestamp();
    let entry = if facebook {
        json!({"id": owner, "time": time, "changes": [{"field": field, "value": value}]})
    } else {
        json!({"id": owner, "time": time, "field": field, "value": value})
    };
    json!({"object": "instagram", "entry": [entry]})
}

/// Starts delivering to `url`; returns the queue to put events on.
pub fn start(
    url: String,
    secret: String,
    faults: WebhookFaults,
    stats: Arc<Mutex<WebhookStats>>,
) -> mpsc::UnboundedSender<Event> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut rng = StdRng::seed_from_u64(faults.seed);
        while let Some(event) = rx.recv().await {
            let bytes = event.body.to_string().into_bytes();
            let drop = rng.random_bool(faults.drop.clamp(0.0, 1.0));
            let duplicate = rng.random_bool(faults.duplicate.clamp(0.0, 1.0));
            let forged = rng.random_bool(faults.forged.clamp(0.0, 1.0));
            let extra = if faults.reorder.is_zero() {
                Duration::ZERO
            } else {
                faults.reorder.mul_f64(rng.random_range(0.0..1.0))
            };
            {
                let mut s = lock(&stats);
                s.events += 1;
                if drop {
                    s.dropped += 1;
                }
                if duplicate && !drop {
                    s.duplicated += 1;
                }
            }
            if drop {
                continue;
            }
            let (http, url, secret, stats) =
                (http.clone(), url.clone(), secret.clone(), stats.clone());
            let delay = faults.delay + extra;
            tokio::spawn(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if forged {
                    let status = post(&http, &url, &bytes, "sha256=00".to_string()).await;
                    let mut s = lock(&stats);
                    s.forged += 1;
                    if status == Some(403) {
                        s.forged_refused += 1;
                    }
                }
                let signature = sign(&secret, &bytes);
                let copies = if duplicate { 2 } else { 1 };
                for _ in 0..copies {
                    deliver(&http, &url, &bytes, &signature, &event.comment_id, &stats).await;
                }
            });
        }
    });
    tx
}

/// `sha256=` and the hex HMAC-SHA256 of the body under the app secret.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return "sha256=".into(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs until answered 2xx, as Meta retries: 5 attempts, 200 ms doubling.
async fn deliver(
    http: &reqwest::Client,
    url: &str,
    body: &[u8],
    signature: &str,
    comment_id: &str,
    stats: &Mutex<WebhookStats>,
) {
    let mut wait = Duration::from_millis(200);
    for _ in 0..5 {
        let sent = Utc::now();
        let status = post(http, url, body, signature.to_string()).await;
        let delivered = status.is_some_and(|c| (200..300).contains(&c));
        {
            let mut s = lock(stats);
            if delivered {
                s.delivered += 1;
                s.delivered_at.entry(comment_id.to_string()).or_insert(sent);
            } else {
                s.refused += 1;
            }
        }
        if delivered {
            return;
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    lock(stats).given_up += 1;
}

async fn post(http: &reqwest::Client, url: &str, body: &[u8], signature: String) -> Option<u16> {
    http.post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body.to_vec())
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

fn lock(stats: &Mutex<WebhookStats>) -> std::sync::MutexGuard<'_, WebhookStats> {
    match stats.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
