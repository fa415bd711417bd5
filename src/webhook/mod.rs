//! Meta's webhooks: a comment acted on within a second of being written, polling staying the
//! reconciler (deliveries can be missed, delayed or switched off, and cannot be replayed).
//!
//! The receiver ([`server`]) checks each delivery's signature, writes it to `webhook_events`
//! before answering 200 (503 when it cannot, so Meta retries), and wakes the account's task;
//! the task ([`inbox`]) decides the comment through the same path as a polled one and applies
//! the action through the same budget gate. Nothing is read from Meta for such a comment.

pub mod inbox;
pub mod payload;
pub mod server;
pub mod subscribe;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

/// Which account's task to wake for a delivery's entry id (the Instagram account id). Shared by
/// the receiver and the daemon, which registers each account's task as it starts.
#[derive(Debug, Clone, Default)]
pub struct Inboxes(Arc<RwLock<HashMap<String, Inbox>>>);

/// An account's name and its task's wake-up.
type Inbox = (String, Arc<Notify>);

impl Inboxes {
    /// Routes the account's deliveries to `notify` (replacing a previous task's).
    pub fn register(&self, ig_user_id: &str, account: &str, notify: Arc<Notify>) {
        if let Ok(mut map) = self.0.write() {
            // An account whose id changed on reload no longer answers to the old one.
            map.retain(|_, (name, _)| name != account);
            map.insert(ig_user_id.to_string(), (account.to_string(), notify));
        }
    }

    /// Stops routing to an account (removed from the config).
    pub fn remove_account(&self, account: &str) {
        if let Ok(mut map) = self.0.write() {
            map.retain(|_, (name, _)| name != account);
        }
    }

    /// Wakes an account's task by name (another instance recorded a delivery for it); `None`
    /// wakes every task. A task that does not hold its account's lease ignores it.
    pub fn wake_account(&self, account: Option<&str>) {
        if let Ok(map) = self.0.read() {
            for (name, notify) in map.values() {
                if account.is_none_or(|a| a == name) {
                    notify.notify_one();
                }
            }
        }
    }

    /// The account name and its task's wake-up for an entry id.
    pub fn lookup(&self, ig_user_id: &str) -> Option<Inbox> {
        self.0.read().ok()?.get(ig_user_id).cloned()
    }
}
