//! Meta's usage headers: whole-number percentages of the allowance. `X-App-Usage` speaks for
//! the whole app (every account), `X-Business-Use-Case-Usage` for each business object id it
//! lists; only the entry of the account called for concerns that account (graph-api.md §11).

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;

/// What the last response said about how close the app and the account are to throttling.
/// Absent headers mean "unknown", not 0 %.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Largest of call_count / total_time / total_cputime in `X-App-Usage`: the app's.
    pub app_pct: Option<u32>,
    /// One entry per business object id of `X-Business-Use-Case-Usage`.
    pub objects: Vec<ObjectUsage>,
}

/// One business object's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectUsage {
    pub id: String,
    /// Largest percentage over the object's entries (one per type).
    pub pct: Option<u32>,
    /// Largest `estimated_time_to_regain_access` (given in minutes).
    pub regain: Option<Duration>,
}

impl Usage {
    /// The usage of one business object (the account called for), if the header named it.
    pub fn object(&self, id: &str) -> Option<&ObjectUsage> {
        self.objects.iter().find(|o| o.id == id)
    }

    /// The longest regain hint of any object: for an error answer, where Meta says how long
    /// the call's own limit lasts.
    pub fn regain(&self) -> Option<Duration> {
        self.objects.iter().filter_map(|o| o.regain).max()
    }
}

#[derive(Deserialize, Default)]
struct Counters {
    #[serde(default)]
    call_count: Option<f64>,
    #[serde(default)]
    total_time: Option<f64>,
    #[serde(default)]
    total_cputime: Option<f64>,
    #[serde(default)]
    estimated_time_to_regain_access: Option<f64>,
}

impl Counters {
    fn max_pct(&self) -> Option<u32> {
        [self.call_count, self.total_time, self.total_cputime]
            .into_iter()
            .flatten()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v.min(10_000.0) as u32)
            .max()
    }
}

/// Parses both headers; malformed ones are ignored.
pub fn parse(headers: &HeaderMap) -> Usage {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let mut usage = Usage::default();
    if let Some(app) = header("x-app-usage").and_then(|s| serde_json::from_str::<Counters>(s).ok())
    {
        usage.app_pct = app.max_pct();
    }
    if let Some(buc) = header("x-business-use-case-usage").and_then(|s| {
        serde_json::from_str::<std::collections::HashMap<String, Vec<Counters>>>(s).ok()
    }) {
        for (id, entries) in buc {
            let mut object = ObjectUsage {
                id,
                ..ObjectUsage::default()
            };
            for entry in &entries {
                object.pct = object.pct.max(entry.max_pct());
                if let Some(m) = entry
                    .estimated_time_to_regain_access
                    .filter(|m| m.is_finite() && *m > 0.0)
                {
                    let d = Duration::from_secs_f64(m.min(24.0 * 60.0) * 60.0);
                    object.regain = object.regain.max(Some(d));
                }
            }
            usage.objects.push(object);
        }
        usage.objects.sort_by(|a, b| a.id.cmp(&b.id));
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("valid header"));
        }
        h
    }

    #[test]
    fn usage_headers() {
        let cases: &[(&[(&'static str, &str)], Usage)] = &[
            (&[], Usage::default()),
            (
                &[(
                    "x-app-usage",
                    r#"{"call_count":28,"total_time":25,"total_cputime":31}"#,
                )],
                Usage {
                    app_pct: Some(31),
                    ..Usage::default()
                },
            ),
            (
                &[(
                    "x-business-use-case-usage",
                    r#"{"1784":[{"type":"instagram","call_count":12,"total_cputime":3,"total_time":4,"estimated_time_to_regain_access":0}],"99":[{"type":"pages","call_count":100,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":2}]}"#,
                )],
                Usage {
                    objects: vec![
                        ObjectUsage {
                            id: "1784".into(),
                            pct: Some(12),
                            regain: None,
                        },
                        ObjectUsage {
                            id: "99".into(),
                            pct: Some(100),
                            regain: Some(Duration::from_secs(120)),
                        },
                    ],
                    ..Usage::default()
                },
            ),
            (&[("x-app-usage", "not json")], Usage::default()),
            (
                &[("x-business-use-case-usage", r#"{"1":"x"}"#)],
                Usage::default(),
            ),
        ];
        for (h, expected) in cases {
            assert_eq!(parse(&headers(h)), *expected, "{h:?}");
        }
    }
}
