//! Fault injection: the answers Meta gives on a bad day, mixed at chosen rates from a seeded
//! random source (print the seed; the same seed replays the same faults for the same requests).
//!
//! Transient faults replace the answer (500 with code 1 or 2, 502 with an HTML page) or spoil
//! the real one after the request took effect (an answer slower than the client's timeout, a
//! connection cut mid-answer). Garbage spoils a successful JSON answer (cut short, a field
//! missing, null, or of the wrong type). Every faulted answer carries `x-fb-trace-id: FAULT<n>`
//! where there are headers to carry it, so a test can find each fault in igmod's log.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use super::world::{Answer, error};

/// The kinds of fault, as counted in [`Faults::injected`].
pub const KINDS: [&str; 9] = [
    "http 500 code 1",
    "http 500 code 2",
    "http 502 html",
    "slow past timeout",
    "connection cut",
    "truncated json",
    "field missing",
    "field null",
    "field wrong type",
];

/// Fields of a comment Meta may omit: a spoil that drops or nulls them is a valid answer.
const MAY_BE_ABSENT: [&str; 2] = ["text", "username"];

/// Rates and state of the fault injector.
#[derive(Debug)]
pub struct Faults {
    rng: StdRng,
    /// Share of requests given a transient fault.
    pub transient: f64,
    /// Share of the remaining successful answers turned to garbage.
    pub garbage: f64,
    /// How long a slow answer takes (set it past the client's timeout).
    pub slow: Duration,
    /// Faults injected, by kind.
    pub injected: BTreeMap<&'static str, u32>,
    /// Every fault: (trace id, kind, request path).
    pub log: Vec<(String, &'static str, String)>,
}

impl Faults {
    pub fn new(seed: u64, transient: f64, garbage: f64, slow: Duration) -> Faults {
        Faults {
            rng: StdRng::seed_from_u64(seed),
            transient,
            garbage,
            slow,
            injected: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    fn record(&mut self, kind: &'static str, path: &str) -> String {
        let trace = format!("FAULT{}", self.log.len() + 1);
        *self.injected.entry(kind).or_default() += 1;
        self.log.push((trace.clone(), kind, path.to_string()));
        trace
    }

    /// Before routing: a transient fault that replaces the answer (the request does not take
    /// effect), or one to apply after routing (the request takes effect, the answer is lost).
    pub fn before(&mut self, path: &str) -> Before {
        if !self.rng.random_bool(self.transient.clamp(0.0, 1.0)) {
            return Before::Route { spoil: None };
        }
        let kind = KINDS[self.rng.random_range(0..5)];
        let trace = self.record(kind, path);
        let mut answer = match kind {
            "http 500 code 1" => error(500, 1, None, "An unknown error has occurred.", true),
            "http 500 code 2" => error(
                500,
                2,
                None,
                "An unexpected error has occurred. Please retry your request later.",
                true,
            ),
            "http 502 html" => Answer {
                status: 502,
                headers: vec![("content-type", "text/html".into())],
                body: "<html><body><h1>502 Bad Gateway</h1>The server encountered a temporary error.</body></html>".into(),
                ..Answer::default()
            },
            _ => return Before::Route { spoil: Some((kind, trace)) },
        };
        // Meta's error body names the same trace as the header.
        if let Ok(mut body) = serde_json::from_str::<Value>(&answer.body)
            && let Some(error) = body.get_mut("error").and_then(Value::as_object_mut)
        {
            error.insert("fbtrace_id".into(), Value::from(trace.clone()));
            answer.body = body.to_string();
        }
        answer.headers.push(("x-fb-trace-id", trace));
        Before::Answer(answer)
    }

    /// After routing: applies a spoil chosen before, or maybe turns a successful JSON answer
    /// into garbage.
    pub fn after(
        &mut self,
        path: &str,
        spoil: Option<(&'static str, String)>,
        answer: &mut Answer,
    ) {
        if let Some((kind, trace)) = spoil {
            answer.headers.push(("x-fb-trace-id", trace));
            match kind {
                "slow past timeout" => answer.delay = self.slow,
                _ => answer.cut = true,
            }
            return;
        }
        if answer.status != 200 || !self.rng.random_bool(self.garbage.clamp(0.0, 1.0)) {
            return;
        }
        let Ok(mut json) = serde_json::from_str::<Value>(&answer.body) else {
            return;
        };
        let kind = KINDS[self.rng.random_range(5..9)];
        if kind == "truncated json" {
            let cut = answer.body.len() / 2;
            let cut = (0..=cut)
                .rev()
                .find(|i| answer.body.is_char_boundary(*i))
                .unwrap_or(0);
            answer.body.truncate(cut);
        } else {
            // Spoil one field of an object somewhere in the answer (an item of `data` if
            // there is one, else the top level).
            let target = match json.get_mut("data").and_then(Value::as_array_mut) {
                Some(items) if !items.is_empty() => {
                    let i = self.rng.random_range(0..items.len());
                    &mut items[i]
                }
                _ => &mut json,
            };
            let Some(object) = target.as_object_mut() else {
                return;
            };
            // Meta may leave `text` (stickers, GIFs) and `username` (a token without the
            // comments permission) out of a comment, or send them null (`graph-api.md` §12):
            // without them an answer is valid, not garbage, and no client could tell, so those
            // two are only ever given the wrong type.
            let keys: Vec<String> = object
                .keys()
                .filter(|k| kind == "field wrong type" || !MAY_BE_ABSENT.contains(&k.as_str()))
                .cloned()
                .collect();
            if keys.is_empty() {
                return;
            }
            let key = keys[self.rng.random_range(0..keys.len())].clone();
            match kind {
                "field missing" => {
                    object.remove(&key);
                }
                "field null" => {
                    object.insert(key, Value::Null);
                }
                _ => {
                    let wrong = match object.get(&key) {
                        Some(Value::String(_)) => Value::from(12345),
                        _ => Value::from("twelve"),
                    };
                    object.insert(key, wrong);
                }
            }
            answer.body = json.to_string();
        }
        let trace = self.record(kind, path);
        answer.headers.push(("x-fb-trace-id", trace));
    }
}

/// What to do with a request before routing it.
pub enum Before {
    /// Answer this instead (the request has no effect).
    Answer(Answer),
    /// Route it; then spoil the answer this way, if chosen.
    Route {
        spoil: Option<(&'static str, String)>,
    },
}
