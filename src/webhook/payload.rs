//! What a delivery says, read leniently: Meta sends two shapes (`entry[].changes[]` and, in its
//! Instagram Login examples, `field`/`value` on the entry itself), batches several entries, and
//! adds fields over time. Only a body that is not JSON, or not an object with an `entry` list,
//! is refused.

use serde_json::Value;

use crate::graph::{IdSource, id_of};

/// Every id of a payload is checked at this boundary (Meta's form, see [`crate::graph::id`]).
fn webhook_id(v: &Value) -> Option<String> {
    id_of(v, IdSource::Webhook)
}

/// One change of a delivery, with the entry it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The entry's `id`: the Instagram account the change concerns.
    pub entry_id: Option<String>,
    /// The entry's `time` in Unix seconds: when Meta sent it (Meta sends seconds or, in some
    /// products, milliseconds; both are read as seconds).
    pub time: Option<i64>,
    pub field: Option<String>,
    pub value: Option<Value>,
}

/// A delivery's `object` and its changes, in the order they came.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub object: Option<String>,
    pub changes: Vec<Change>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("body is not JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("body is not an object with an \"entry\" list")]
    Shape,
}

/// Reads a delivery's body.
pub fn parse(body: &[u8]) -> Result<Delivery, PayloadError> {
    let json: Value = serde_json::from_slice(body).map_err(|e| PayloadError::NotJson {
        line: e.line(),
        column: e.column(),
    })?;
    let Value::Object(root) = json else {
        return Err(PayloadError::Shape);
    };
    let Some(Value::Array(entries)) = root.get("entry") else {
        return Err(PayloadError::Shape);
    };
    let object = root
        .get("object")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut changes = Vec::new();
    for entry in entries {
        let entry_id = entry.get("id").and_then(webhook_id);
        let time = entry.get("time").and_then(Value::as_i64).map(unix_seconds);
        match entry.get("changes") {
            Some(Value::Array(list)) => {
                for c in list {
                    changes.push(Change {
                        entry_id: entry_id.clone(),
                        time,
                        field: c.get("field").and_then(Value::as_str).map(str::to_string),
                        value: c.get("value").cloned(),
                    });
                }
            }
            _ => changes.push(Change {
                entry_id,
                time,
                field: entry
                    .get("field")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                value: entry.get("value").cloned(),
            }),
        }
    }
    Ok(Delivery { object, changes })
}

/// Past this, a `time` is in milliseconds: as seconds it would be after the year 5000.
const MILLIS_FROM: i64 = 100_000_000_000;

/// A Unix time in seconds, whether Meta sent seconds or milliseconds.
pub fn unix_seconds(t: i64) -> i64 {
    if t >= MILLIS_FROM || t <= -MILLIS_FROM {
        t / 1000
    } else {
        t
    }
}

/// The fields a comment (or live comment) change carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedComment {
    pub id: String,
    pub text: Option<String>,
    pub from_id: Option<String>,
    pub username: Option<String>,
    /// `from.self_ig_scoped_id` is present: the account commented on its own media.
    pub self_scoped: bool,
    pub media_id: Option<String>,
    pub media_type: Option<String>,
    pub parent_id: Option<String>,
}

/// Reads a comment change's `value`; `None` without a comment id. Meta's Instagram Login
/// sample keys the comment `id`, its Facebook Login sample `comment_id` (graph-api.md §12).
pub fn comment(value: &Value) -> Option<PushedComment> {
    let id = value
        .get("id")
        .and_then(webhook_id)
        .or_else(|| value.get("comment_id").and_then(webhook_id))?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let from = value.get("from");
    let media = value.get("media");
    Some(PushedComment {
        id,
        text: text(value.get("text")),
        from_id: from.and_then(|f| f.get("id")).and_then(webhook_id),
        username: text(from.and_then(|f| f.get("username"))),
        self_scoped: from
            .and_then(|f| f.get("self_ig_scoped_id"))
            .and_then(webhook_id)
            .is_some(),
        media_id: media.and_then(|m| m.get("id")).and_then(webhook_id),
        media_type: text(media.and_then(|m| m.get("media_product_type"))),
        parent_id: value.get("parent_id").and_then(webhook_id),
    })
}

/// The fields whose changes are comments to moderate.
pub fn is_comment_field(field: &str) -> bool {
    matches!(field, "comments" | "live_comments")
}

/// Meta's dashboard "Test" button sends sample payloads for entry id `0`.
pub fn is_test_entry(entry_id: Option<&str>) -> bool {
    entry_id == Some("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_are_read() {
        let changes = br#"{"object":"instagram","entry":[{"id":"1784","time":5,"changes":[
            {"field":"comments","value":{"id":"1790001","text":"hi","from":{"id":"9","username":"u"},
             "media":{"id":"1780001","media_product_type":"FEED"},"parent_id":"1790000"}}]}]}"#;
        let flat = br#"{"object":"instagram","entry":[{"id":"1784","time":5,
            "field":"comments","value":{"id":"1790001","text":"hi","from":{"id":"9","username":"u"},
             "media":{"id":"1780001","media_product_type":"FEED"},"parent_id":"1790000"}}]}"#;
        let a = parse(changes).ok();
        let b = parse(flat).ok();
        assert!(a.is_some());
        assert_eq!(a, b);
        let d = a.unwrap_or(Delivery {
            object: None,
            changes: vec![],
        });
        assert_eq!(d.changes.len(), 1);
        let c = d.changes[0].value.as_ref().and_then(comment);
        assert_eq!(
            c,
            Some(PushedComment {
                id: "1790001".into(),
                text: Some("hi".into()),
                from_id: Some("9".into()),
                username: Some("u".into()),
                self_scoped: false,
                media_id: Some("1780001".into()),
                media_type: Some("FEED".into()),
                parent_id: Some("1790000".into()),
            })
        );
    }

    #[test]
    fn bad_bodies_are_refused_and_odd_fields_tolerated() {
        assert!(matches!(
            parse(b"{not json"),
            Err(PayloadError::NotJson { .. })
        ));
        assert_eq!(parse(b"[1,2]"), Err(PayloadError::Shape));
        assert_eq!(
            parse(br#"{"object":"instagram"}"#),
            Err(PayloadError::Shape)
        );
        // Wrong types inside an entry make fields absent, not the delivery refused.
        let d = parse(br#"{"entry":[{"id":[],"time":"x","changes":[{"field":3,"value":null}]}]}"#);
        assert_eq!(
            d.map(|d| d.changes),
            Ok(vec![Change {
                entry_id: None,
                time: None,
                field: None,
                value: Some(Value::Null),
            }])
        );
        assert_eq!(comment(&serde_json::json!({"text": "no id"})), None);
    }

    #[test]
    fn ids_not_in_metas_form_are_refused_at_the_boundary() {
        let good = serde_json::json!({"id": "1790001", "media": {"id": 1780001},
            "from": {"id": "9"}, "parent_id": "1790000_2"});
        let c = comment(&good);
        assert_eq!(c.as_ref().map(|c| c.id.as_str()), Some("1790001"));
        assert_eq!(c.and_then(|c| c.media_id), Some("1780001".into()));
        for bad in [
            "1/../../me/permissions",
            "1%2F..",
            "1?fields=x",
            "1&x=y",
            "1 2",
            "1\n",
            "",
        ] {
            assert_eq!(comment(&serde_json::json!({"id": bad})), None, "{bad:?}");
            let c = comment(&serde_json::json!({"id": "1790001", "media": {"id": bad},
                "from": {"id": bad}, "parent_id": bad}));
            assert_eq!(
                c.map(|c| (c.media_id, c.from_id, c.parent_id)),
                Some((None, None, None)),
                "{bad:?}"
            );
            let body = serde_json::json!({"entry": [{"id": bad, "field": "comments"}]});
            let d = parse(body.to_string().as_bytes());
            assert_eq!(
                d.map(|d| d.changes[0].entry_id.clone()),
                Ok(None),
                "{bad:?}"
            );
        }
        assert_eq!(comment(&serde_json::json!({"id": -1})), None);
        assert_eq!(comment(&serde_json::json!({"id": 1.5})), None);
    }
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn a_comment_keyed_comment_id_is_read_as_facebook_logins_sample_sends_it() {
        let value: Value = serde_json::from_str(
            r#"{"comment_id":"17865799348089039","text":"hi","from":{"id":"9","username":"bob"},"media":{"id":"17900000000000001"}}"#,
        )
        .unwrap_or_default();
        assert_eq!(
            comment(&value).map(|c| c.id),
            Some("17865799348089039".to_string())
        );
        let both: Value =
            serde_json::from_str(r#"{"id":"17865799348089040","comment_id":"17865799348089039"}"#)
                .unwrap_or_default();
        assert_eq!(
            comment(&both).map(|c| c.id),
            Some("17865799348089040".to_string())
        );
    }

    #[test]
    fn entry_times_in_seconds_or_milliseconds_are_read_as_seconds() {
        for (sent, read) in [
            (1_765_000_000_i64, 1_765_000_000_i64),
            (1_765_000_000_123, 1_765_000_000),
            (0, 0),
            (1, 1),
        ] {
            let body = format!(r#"{{"entry":[{{"id":"1","time":{sent},"field":"comments"}}]}}"#);
            let d = parse(body.as_bytes()).map(|d| d.changes[0].time);
            assert_eq!(d, Ok(Some(read)), "{sent}");
        }
    }
}
