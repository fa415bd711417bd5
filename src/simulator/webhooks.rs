//! The simulator's webhook deliveries, sent as Meta sends them: each new comment POSTed to the
//! callback URL as JSON signed with the app secret (`X-Hub-Signature-256`), Instagram Login
//! accounts with `field`/`value` on the entry and the comment keyed `id`, Facebook Login ones
//! inside `changes` and keyed `comment_id`, and, on request, in batches of up to 1,000 changes
//! in several entries, with `time` in seconds or milliseconds (docs/graph-contract.md); retried
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

/// How a change names its comment: Meta's Instagram Login sample keys it `id`, its Facebook
/// Login sample `comment_id` (graph-api.md §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentKey {
    Id,
    CommentId,
}

impl CommentKey {
    /// The key of the account's login's sample.
    pub fn of_login(facebook: bool) -> CommentKey {
        if facebook {
            CommentKey::CommentId
        } else {
            CommentKey::Id
        }
    }

    fn name(self) -> &'static str {
        match self {
            CommentKey::Id => "id",
            CommentKey::CommentId => "comment_id",
        }
    }
}

/// Most changes Meta puts in one POST (graph-api.md §12: "up to 1,000 changes in one POST").
pub const MAX_CHANGES_PER_POST: usize = 1000;

/// The shape of a batched delivery.
#[derive(Debug, Clone, Copy)]
pub struct BatchForm {
    /// `None`: each account's login's key.
    pub key: Option<CommentKey>,
    /// `entry.time` in milliseconds instead of seconds (graph-api.md §12: both are seen).
    pub millis: bool,
    /// Changes per entry (several entries per POST for one account, as Meta batches).
    pub per_entry: usize,
}

impl Default for BatchForm {
    fn default() -> Self {
        BatchForm {
            key: None,
            millis: false,
            per_entry: 100,
        }
    }
}

/// One change to deliver: the account it concerns, its field and its `value`.
pub struct Change {
    pub owner: String,
    pub field: &'static str,
    pub value: Value,
}

/// A comment change's `value`, keyed as `key` says.
#[allow(clippy::too_many_arguments)]
pub fn value(
    owner: &str,
    key: CommentKey,
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
        key.name(): comment_id,
        "text": text,
        "from": from,
        "media": {"id": media_id, "media_product_type": product_type},
    });
    if let Some(p) = parent_id {
        value["parent_id"] = json!(p);
    }
    value
}

/// The delivery's body for one change, in the account's login's shape: Instagram Login with
/// `field`/`value` on the entry, Facebook Login inside `changes`.
pub fn body(facebook: bool, change: Change) -> Value {
    let time = Utc::now().timestamp();
    let entry = if facebook {
        json!({"id": change.owner, "time": time, "changes": [{"field": change.field, "value": change.value}]})
    } else {
        json!({"id": change.owner, "time": time, "field": change.field, "value": change.value})
    };
    json!({"object": "instagram", "entry": [entry]})
}

/// Batched deliveries, as Meta batches them: at most [`MAX_CHANGES_PER_POST`] changes per
/// POST, consecutive changes of one account grouped in entries of `form.per_entry` changes.
pub fn batches(changes: Vec<Change>, form: BatchForm) -> Vec<Value> {
    let time = if form.millis {
        Utc::now().timestamp_millis()
    } else {
        Utc::now().timestamp()
    };
    let per_entry = form.per_entry.max(1);
    let mut posts = Vec::new();
    let mut changes = changes.into_iter().peekable();
    while changes.peek().is_some() {
        let mut entries: Vec<Value> = Vec::new();
        let mut in_post = 0;
        let mut current: Option<(String, Vec<Value>)> = None;
        while in_post < MAX_CHANGES_PER_POST {
            let Some(c) = changes.next() else { break };
            in_post += 1;
            let item = json!({"field": c.field, "value": c.value});
            match &mut current {
                Some((owner, list)) if *owner == c.owner && list.len() < per_entry => {
                    list.push(item);
                }
                _ => {
                    if let Some((owner, list)) = current.take() {
                        entries.push(json!({"id": owner, "time": time, "changes": list}));
                    }
                    current = Some((c.owner, vec![item]));
                }
            }
        }
        if let Some((owner, list)) = current.take() {
            entries.push(json!({"id": owner, "time": time, "changes": list}));
        }
        posts.push(json!({"object": "instagram", "entry": entries}));
    }
    posts
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

/// One signed POST of `body`, as Meta sends it; the status, `None` when unanswered.
pub async fn post_once(url: &str, secret: &str, body: &[u8]) -> Option<u16> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .ok()?;
    post(&http, url, body, sign(secret, body)).await
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

#[cfg(test)]
mod tests {
    use super::*;

    fn change(owner: &str, i: usize) -> Change {
        Change {
            owner: owner.to_string(),
            field: "comments",
            value: value(
                owner,
                CommentKey::of_login(true),
                &format!("1786{i:011}"),
                "hi",
                "bob",
                "555",
                "17900000000000001",
                "FEED",
                None,
            ),
        }
    }

    /// graph-api.md §12: up to 1,000 changes in one POST, batched in entries; `time` in
    /// seconds or milliseconds; Facebook Login's sample keys the comment `comment_id`.
    #[test]
    fn batches_hold_at_most_1000_changes_in_entries_of_one_account() {
        let mut changes: Vec<Change> = (0..1500).map(|i| change("17841400000000001", i)).collect();
        changes.extend((0..1000).map(|i| change("17841400000000002", 5000 + i)));
        let posts = batches(
            changes,
            BatchForm {
                key: None,
                millis: true,
                per_entry: 300,
            },
        );
        let counts: Vec<usize> = posts
            .iter()
            .map(|p| {
                p["entry"]
                    .as_array()
                    .map(|e| {
                        e.iter()
                            .map(|e| e["changes"].as_array().map_or(0, Vec::len))
                            .sum()
                    })
                    .unwrap_or(0)
            })
            .collect();
        assert_eq!(counts, vec![1000, 1000, 500]);
        for post in &posts {
            assert_eq!(post["object"], "instagram");
            for entry in post["entry"].as_array().into_iter().flatten() {
                assert!(entry["changes"].as_array().is_some_and(|c| c.len() <= 300));
                assert!(entry["time"].as_i64().is_some_and(|t| t > 100_000_000_000));
                let owner = entry["id"].as_str().unwrap_or_default();
                for c in entry["changes"].as_array().into_iter().flatten() {
                    assert!(c["value"]["comment_id"].is_string());
                    assert!(c["value"].get("id").is_none());
                    let n: usize = c["value"]["comment_id"]
                        .as_str()
                        .and_then(|s| s.get(4..))
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    assert_eq!(owner.ends_with('2'), n >= 5000, "one account per entry");
                }
            }
        }
    }
}
