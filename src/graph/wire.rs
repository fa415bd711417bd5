//! The Graph API's JSON shapes. They stay inside `graph`; every field is optional and
//! ids may arrive as strings or numbers, so an odd answer degrades instead of failing.
//!
//! Whole on purpose: about 500 lines of shapes and their lenient readers; the rest is tests.

use serde::Deserialize;
use serde_json::Value;

use super::id::{IdSource, checked};
use super::{CallInfo, Comment as DomainComment, GraphError, Media as DomainMedia, Reply, Thread};

#[derive(Deserialize)]
pub struct Paged<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default, deserialize_with = "lenient")]
    pub paging: Option<Paging>,
}

#[derive(Deserialize, Default)]
pub struct Paging {
    #[serde(default, deserialize_with = "lenient")]
    cursors: Option<Cursors>,
    /// Embeds the access token: only its presence is used.
    #[serde(default)]
    next: Option<Value>,
}

#[derive(Deserialize, Default)]
struct Cursors {
    #[serde(default, deserialize_with = "lenient")]
    after: Option<String>,
}

/// A nested object or typed value that is null or of the wrong type reads as absent (and
/// [`odd_fields`] names it) instead of refusing the whole answer: one odd comment must not
/// block its post's page.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

impl<T> Paged<T> {
    /// The `after` cursor when there is a next page. `next` is the only end signal; a page
    /// can be short, or empty, and still have one.
    pub fn next_after(&self) -> Option<String> {
        let paging = self.paging.as_ref()?;
        paging.next.as_ref().filter(|n| !n.is_null())?;
        paging
            .cursors
            .as_ref()?
            .after
            .clone()
            .filter(|a| !a.is_empty())
    }
}

#[derive(Deserialize)]
pub struct Media {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    comments_count: Option<Value>,
    #[serde(default)]
    media_product_type: Option<String>,
    #[serde(default)]
    media_type: Option<Value>,
    /// Omitted entirely when the post has no comments.
    #[serde(default, deserialize_with = "lenient")]
    comments: Option<Paged<Comment>>,
}

impl Media {
    /// Has what the poller needs: an id and a numeric comment count.
    pub fn complete(&self) -> bool {
        is_id(self.id.as_ref()) && self.comments_count.as_ref().and_then(as_i64).is_some()
    }

    pub fn into_domain(self) -> Option<DomainMedia> {
        Some(DomainMedia {
            id: id_string(self.id?)?,
            // A negative count from the wire means nothing: read as none.
            comments_count: self
                .comments_count
                .as_ref()
                .and_then(as_i64)
                .unwrap_or(0)
                .max(0),
            product_type: self.media_product_type,
            media_type: self.media_type.and_then(text),
            newest_comment: self
                .comments
                .and_then(|c| c.data.into_iter().next())
                .and_then(|c| c.id)
                .and_then(id_string),
        })
    }
}

#[derive(Deserialize)]
pub struct Comment {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    text: Option<Value>,
    #[serde(default)]
    username: Option<Value>,
    #[serde(default, deserialize_with = "lenient")]
    from: Option<From>,
    #[serde(default)]
    parent_id: Option<Value>,
    #[serde(default)]
    timestamp: Option<Value>,
    #[serde(default)]
    hidden: Option<Value>,
    /// Only on the app user's own comments.
    #[serde(default, deserialize_with = "lenient")]
    user: Option<From>,
    /// An empty edge may be omitted entirely.
    #[serde(default, deserialize_with = "lenient")]
    replies: Option<Paged<Comment>>,
}

#[derive(Deserialize)]
struct From {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    username: Option<Value>,
}

impl Comment {
    /// Has what recording it needs: an id, and a `text` that is text if there is one (and so
    /// do its inline replies). Meta leaves out `username` when the token lacks the comments
    /// permission and `text` for stickers and GIFs, for good: such a comment is recorded as
    /// incomplete and decided on what is there, since refusing the page would refuse it (and
    /// the post's other comments) for ever. A `text` of another type is a spoilt answer, not
    /// a sticker: read as absent, a scam would be recorded unread and never moderated, so the
    /// page is refused and read again.
    pub fn complete(&self) -> bool {
        is_id(self.id.as_ref())
            && self
                .text
                .as_ref()
                .is_none_or(|t| t.is_string() || t.is_null())
            && self
                .replies
                .as_ref()
                .is_none_or(|r| r.data.iter().all(Comment::complete))
    }

    pub fn into_thread(self) -> Option<Thread> {
        let more_replies = self.replies.as_ref().and_then(Paged::next_after);
        let replies = self
            .replies
            .map(|r| {
                r.data
                    .into_iter()
                    .filter_map(|c| c.into_thread().map(|t| t.comment))
                    .collect()
            })
            .unwrap_or_default();
        let (from_id, from_username) = match self.from {
            Some(f) => (f.id.and_then(id_string), f.username.and_then(text)),
            None => (None, None),
        };
        Some(Thread {
            comment: DomainComment {
                id: id_string(self.id?)?,
                text: self.text.and_then(text),
                username: self.username.and_then(text).or(from_username),
                from_id,
                parent_id: self.parent_id.and_then(id_string),
                timestamp: self.timestamp.and_then(text),
                hidden: self.hidden.and_then(|h| h.as_bool()),
                user_id: self.user.and_then(|u| u.id).and_then(id_string),
            },
            replies,
            more_replies,
        })
    }
}

/// `{"id":"…","is_comment_enabled":false}`: a post's comment switch.
#[derive(Deserialize)]
pub struct MediaSwitch {
    #[serde(default)]
    pub is_comment_enabled: Option<bool>,
}

#[derive(Deserialize)]
pub struct Success {
    #[serde(default)]
    success: Option<Value>,
}

impl Success {
    /// `{"success":true}`; anything else is a write whose outcome is unknown.
    pub fn check(self, call: CallInfo) -> Result<Reply<()>, GraphError> {
        if self.success.as_ref().and_then(Value::as_bool) == Some(true) {
            Ok(Reply { value: (), call })
        } else {
            Err(GraphError {
                kind: super::ErrorKind::WriteUncertain,
                code: None,
                subcode: None,
                message: "write answered without success:true".into(),
                fbtrace_id: call.trace.clone(),
                call: Box::new(call),
            })
        }
    }
}

/// `{"access_token":"...","token_type":"bearer","expires_in":5183944}`
#[derive(Deserialize)]
pub struct Refreshed {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
}

impl Refreshed {
    /// A refreshed Instagram token: without `expires_in`, the documented 60 days.
    pub fn into_domain(self) -> Option<(secrecy::SecretString, u64)> {
        self.into_exchanged()
            .map(|(token, expires_in)| (token, expires_in.unwrap_or(60 * 86_400)))
    }
}

impl Refreshed {
    /// An exchanged token: `expires_in` may be missing (a token that does not expire).
    pub fn into_exchanged(self) -> Option<(secrecy::SecretString, Option<u64>)> {
        let token = self.access_token.filter(|t| !t.is_empty())?;
        let expires_in = self
            .expires_in
            .as_ref()
            .and_then(as_i64)
            .and_then(|s| u64::try_from(s).ok());
        Some((secrecy::SecretString::from(token), expires_in))
    }
}

/// `{"data":{"app_id","type","is_valid","expires_at","data_access_expires_at","scopes",...}}`
#[derive(Deserialize)]
pub struct DebugToken {
    #[serde(default)]
    data: Option<Value>,
}

/// What `debug_token` says about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub is_valid: bool,
    /// `USER`, `PAGE`, …
    pub kind: Option<String>,
    /// Unix seconds; `Some(0)`: never expires; `None`: not said.
    pub expires_at: Option<i64>,
    pub data_access_expires_at: Option<i64>,
    pub scopes: Vec<String>,
    /// Meta's reason when the token is not valid.
    pub error: Option<String>,
}

impl DebugToken {
    pub fn into_domain(self) -> Option<TokenInfo> {
        let data = self.data?;
        let data = data.as_object()?;
        let int = |k: &str| data.get(k).and_then(as_i64);
        Some(TokenInfo {
            is_valid: data
                .get("is_valid")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            kind: data.get("type").and_then(Value::as_str).map(str::to_string),
            expires_at: int("expires_at"),
            data_access_expires_at: int("data_access_expires_at"),
            scopes: strings(data.get("scopes")),
            error: data
                .get("error")
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

#[derive(Deserialize)]
pub struct Me {
    #[serde(default)]
    user_id: Option<Value>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    username: Option<Value>,
}

impl Me {
    pub fn into_domain(self) -> Option<(String, Option<String>)> {
        let id = self
            .user_id
            .and_then(id_string)
            .or_else(|| self.id.and_then(id_string))?;
        Some((id, self.username.and_then(text)))
    }
}

#[derive(Deserialize)]
pub struct Created {
    #[serde(default)]
    id: Option<Value>,
}

impl Created {
    /// `{"id":"..."}`; without an id the write's outcome is unknown.
    pub fn check(self, call: CallInfo) -> Result<Reply<String>, GraphError> {
        match self.id.and_then(id_string) {
            Some(id) => Ok(Reply { value: id, call }),
            None => Err(GraphError {
                kind: super::ErrorKind::WriteUncertain,
                code: None,
                subcode: None,
                message: "write answered without an id".into(),
                fbtrace_id: call.trace.clone(),
                call: Box::new(call),
            }),
        }
    }
}

#[derive(Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub code: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub is_transient: Option<bool>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: ErrorBody,
}

/// Meta's error envelope, if the body is one.
pub fn error_envelope(body: &[u8]) -> Option<ErrorBody> {
    serde_json::from_slice::<Envelope>(body)
        .ok()
        .map(|e| e.error)
}

fn lenient_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(as_i64))
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Meta's ids are numeric strings; a number where an id belongs is a corrupted answer (and a
/// large one may have lost digits on the way).
fn is_id(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

/// An id of a Graph answer, when it has Meta's form (a number is taken too); one of another
/// form is refused (see [`super::id`]), so its object is left out of the answer.
fn id_string(v: Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => checked(IdSource::GraphAnswer, s),
        Value::Number(n) => checked(IdSource::GraphAnswer, n.to_string()),
        _ => None,
    }
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Fields of an answer whose value is null or of a type Meta never sends for them
/// (`"text": 7`), as `key: what`. igmod reads what it can; these are logged, not silently
/// defaulted.
pub fn odd_fields(body: &[u8]) -> Vec<String> {
    fn expected(key: &str) -> Option<&'static str> {
        Some(match key {
            "id" | "user_id" | "parent_id" => "id",
            "text" | "username" | "timestamp" | "media_type" | "media_product_type"
            | "permalink" | "after" | "before" | "next" | "access_token" | "token_type" => "string",
            "comments_count" | "like_count" | "expires_in" => "number",
            "hidden" | "success" | "is_comment_enabled" => "bool",
            "from"
            | "user"
            | "replies"
            | "comments"
            | "paging"
            | "cursors"
            | "media"
            | "instagram_business_account" => "object",
            // A page's items, or `debug_token`'s object.
            "data" => "array or object",
            _ => return None,
        })
    }
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    let fits = match expected(key) {
                        None => true,
                        Some("id") => v.is_string(),
                        Some("string") => v.is_string(),
                        Some("number") => as_i64(v).is_some(),
                        Some("bool") => v.is_boolean(),
                        Some("object") => v.is_object(),
                        Some(_) => v.is_array() || v.is_object(),
                    };
                    if !fits {
                        let what = if v.is_null() { "null" } else { "wrong type" };
                        let entry = format!("{key}: {what}");
                        if !out.contains(&entry) {
                            out.push(entry);
                        }
                    }
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        walk(&value, &mut out);
    }
    out
}

/// Replaces `\\u` escapes of unpaired UTF-16 surrogates with U+FFFD. Such escapes are valid
/// JSON text but not valid Unicode, and serde_json refuses the whole answer over one of them:
/// one comment written with a broken emoji would block its post for good.
pub fn repair_surrogates(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let lower = memchr::memmem::find(body, b"\\ud").is_some();
    let upper = memchr::memmem::find(body, b"\\uD").is_some();
    if !lower && !upper {
        return std::borrow::Cow::Borrowed(body);
    }
    let hex = |at: usize| -> Option<u16> {
        let digits = body.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    let unicode_escape = |at: usize| -> Option<u16> {
        (body.get(at) == Some(&b'\\') && body.get(at + 1) == Some(&b'u'))
            .then(|| hex(at + 2))
            .flatten()
    };
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        match unicode_escape(i) {
            Some(0xD800..=0xDBFF) => match unicode_escape(i + 6) {
                Some(0xDC00..=0xDFFF) => {
                    out.extend_from_slice(&body[i..i + 12]);
                    i += 12;
                }
                _ => {
                    out.extend_from_slice(b"\\ufffd");
                    i += 6;
                }
            },
            Some(0xDC00..=0xDFFF) => {
                out.extend_from_slice(b"\\ufffd");
                i += 6;
            }
            Some(_) => {
                out.extend_from_slice(&body[i..i + 6]);
                i += 6;
            }
            // Any other escape (`\\\\`, `\\"`, …): copy both bytes so an escaped backslash
            // is never read as the start of an escape.
            None => {
                out.extend_from_slice(&body[i..(i + 2).min(body.len())]);
                i += 2;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_ends_only_without_next() {
        let cases = [
            (r#"{"data":[]}"#, None),
            (r#"{"data":[],"paging":{"cursors":{"after":"A"}}}"#, None),
            (
                r#"{"data":[],"paging":{"cursors":{"after":"A"},"next":"https://x/?access_token=T&after=A"}}"#,
                Some("A"),
            ),
            (
                r#"{"data":[{"id":"1"}],"paging":{"next":"https://x"}}"#,
                None,
            ),
        ];
        for (json, expected) in cases {
            let page: Result<Paged<Comment>, _> = serde_json::from_str(json);
            assert_eq!(
                page.ok().and_then(|p| p.next_after()).as_deref(),
                expected,
                "{json}"
            );
        }
    }

    #[test]
    fn odd_comments_degrade() {
        let json = r#"{"data":[
            {"id":"1","text":"hi","from":{"id":"9","username":"bob"},"replies":{"data":[{"id":"2","text":null}],"paging":{"cursors":{"after":"R"},"next":"u"}}},
            {"id":17,"text":5,"hidden":"yes"},
            {"text":"no id"}
        ]}"#;
        let page: Option<Paged<Comment>> = serde_json::from_str(json).ok();
        let threads: Vec<Thread> = page
            .map(|p| {
                p.data
                    .into_iter()
                    .filter_map(Comment::into_thread)
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(threads.len(), 2);
        assert_eq!(threads[0].comment.username.as_deref(), Some("bob"));
        assert_eq!(threads[0].comment.from_id.as_deref(), Some("9"));
        assert_eq!(threads[0].replies.len(), 1);
        assert_eq!(threads[0].more_replies.as_deref(), Some("R"));
        assert_eq!(threads[1].comment.id, "17");
        assert_eq!(threads[1].comment.text, None);
        assert_eq!(threads[1].comment.hidden, None);
    }

    #[test]
    fn error_envelopes() {
        let e = error_envelope(br#"{"error":{"message":"m","type":"OAuthException","code":"190","error_subcode":463,"fbtrace_id":"F"}}"#);
        let e = e.map(|e| (e.code, e.error_subcode, e.fbtrace_id));
        assert_eq!(e, Some((Some(190), Some(463), Some("F".to_string()))));
        assert!(error_envelope(b"<html>502</html>").is_none());
        assert!(error_envelope(br#"{"data":[]}"#).is_none());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "\\PC{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("data".to_string()),
                        Just("id".to_string()),
                        Just("paging".to_string()),
                        Just("replies".to_string()),
                        Just("from".to_string()),
                        Just("error".to_string()),
                        Just("next".to_string()),
                        Just("cursors".to_string()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn lone_surrogates_become_replacement_characters_and_pairs_survive() {
        let cases = [
            (r#"{"text":"a\ud83d b"}"#, "a\u{fffd} b"),
            (r#"{"text":"\udc00x\ud800"}"#, "\u{fffd}x\u{fffd}"),
            (r#"{"text":"\ud83d\udd25"}"#, "🔥"),
            (r#"{"text":"\\ud800 is text"}"#, "\\ud800 is text"),
            (r#"{"text":"plain"}"#, "plain"),
        ];
        for (body, text) in cases {
            let value: Value =
                serde_json::from_slice(&repair_surrogates(body.as_bytes())).unwrap_or(Value::Null);
            assert_eq!(value["text"].as_str(), Some(text), "{body}");
        }
    }

    #[test]
    fn nulls_and_wrong_types_are_named_by_key_never_by_value() {
        let mut odd = odd_fields(
            br#"{"data":[{"id":"1","text":"hi","username":null,"timestamp":7,"hidden":"no"}],
                "paging":{"cursors":{"after":"QV"}},"error_subcode":null}"#,
        );
        odd.sort();
        assert_eq!(
            odd,
            [
                "hidden: wrong type",
                "timestamp: wrong type",
                "username: null"
            ]
        );
        assert!(odd_fields(br#"{"data":[{"id":"17","comments_count":"3"}]}"#).is_empty());
        assert_eq!(odd_fields(br#"{"data":[{"id":17}]}"#), ["id: wrong type"]);
        assert!(odd_fields(b"not json").is_empty());
        assert!(odd_fields(br#"{"data":{"is_valid":true,"scopes":[]}}"#).is_empty());
    }

    /// A field asked for but unknown to `odd_fields` would be spoiled without a trace (the
    /// chaos test found `user` and `media_type` so).
    #[test]
    fn every_field_asked_for_is_checked_for_its_type() {
        let asked = super::super::COMMENT_FIELDS
            .split(',')
            .chain(super::super::media_fields(true))
            .chain(["is_comment_enabled", "instagram_business_account"]);
        for field in asked {
            let body = format!(r#"{{"data":[{{"{field}":[true]}}]}}"#);
            assert_eq!(
                odd_fields(body.as_bytes()),
                [format!("{field}: wrong type")],
                "{field}"
            );
        }
    }

    #[test]
    fn only_items_without_an_id_or_with_a_text_of_another_type_are_refused() {
        let complete =
            |json: &str| serde_json::from_str::<Comment>(json).is_ok_and(|c| c.complete());
        assert!(complete(r#"{"id":"1","text":"hi","username":"a"}"#));
        assert!(complete(
            r#"{"id":"1","text":"","from":{"id":"2","username":"a"}}"#
        ));
        // A sticker (no text) and a comment read without the comments permission (no
        // username) are recorded as they are.
        assert!(complete(r#"{"id":"1","username":"a"}"#));
        assert!(complete(r#"{"id":"1","text":null,"username":"a"}"#));
        assert!(complete(r#"{"id":"1","text":"hi"}"#));
        assert!(complete(
            r#"{"id":"1","text":"hi","username":"a","replies":{"data":[{"id":"2","username":"b"}]}}"#
        ));
        assert!(!complete(r#"{"text":"hi","username":"a"}"#));
        assert!(!complete(r#"{"id":"1","text":12345,"username":"a"}"#));
        assert!(!complete(
            r#"{"id":"1","text":"hi","replies":{"data":[{"id":"2","text":["x"]}]}}"#
        ));
        assert!(!complete(
            r#"{"id":"1","text":"hi","replies":{"data":[{"text":"no id"}]}}"#
        ));
        let media = |json: &str| serde_json::from_str::<Media>(json).is_ok_and(|m| m.complete());
        assert!(media(r#"{"id":"1","comments_count":3}"#));
        assert!(!media(r#"{"id":"1"}"#));
        assert!(!media(r#"{"id":"1","comments_count":"many"}"#));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn decoders_never_panic_on_arbitrary_json(value in json()) {
            let bytes = serde_json::to_vec(&value).unwrap_or_default();
            if let Ok(page) = serde_json::from_slice::<Paged<Comment>>(&bytes) {
                let _ = page.next_after();
                let _: Vec<_> = page.data.into_iter().filter_map(Comment::into_thread).collect();
            }
            if let Ok(page) = serde_json::from_slice::<Paged<Media>>(&bytes) {
                let _: Vec<_> = page.data.into_iter().filter_map(Media::into_domain).collect();
            }
            let _ = error_envelope(&bytes);
        }

        /// Comment pages shaped as Meta sends them, with any field null, of the wrong type or
        /// left out, and broken emoji in the texts: the page always decodes through the
        /// client's own steps (`repair_surrogates`, then serde), every well-typed value comes
        /// through, a comment is complete unless its text is of another type, and
        /// `odd_fields` names exactly the odd keys, never a value.
        #[test]
        fn comment_pages_of_any_shape_decode_what_is_there(page in page()) {
            let body = page.body();
            let repaired = repair_surrogates(body.as_bytes());
            // Repairing twice changes nothing more, and a body without a broken emoji is
            // left as it was.
            prop_assert_eq!(&*repair_surrogates(&repaired), &*repaired);
            if !page.broken_emoji() {
                prop_assert_eq!(&*repaired, body.as_bytes());
            }
            let decoded = serde_json::from_slice::<Paged<Comment>>(&repaired);
            prop_assert!(decoded.is_ok(), "page refused: {:?}", decoded.err());
            let Ok(decoded) = decoded else { return Ok(()) };
            prop_assert_eq!(decoded.next_after().is_some(), page.has_next);
            let complete: Vec<bool> = decoded.data.iter().map(Comment::complete).collect();
            let readable: Vec<bool> = page.comments.iter().map(|c| !c.text_spoilt()).collect();
            prop_assert_eq!(complete, readable);
            let threads: Vec<Thread> = decoded.data.into_iter().filter_map(Comment::into_thread).collect();
            prop_assert_eq!(threads.len(), page.comments.len());
            for (thread, made) in threads.iter().zip(&page.comments) {
                made.check(&thread.comment)?;
                let sent = if made.replies_sent() { made.replies.len() } else { 0 };
                prop_assert_eq!(thread.replies.len(), sent);
                for (reply, made) in thread.replies.iter().zip(&made.replies) {
                    made.check(reply)?;
                }
            }
            let mut odd = odd_fields(&repaired);
            odd.sort();
            prop_assert_eq!(odd, page.odd());
        }
    }

    /// How a generated field is sent.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Shape {
        Good,
        Null,
        Wrong,
        Absent,
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            8 => Just(Shape::Good),
            1 => Just(Shape::Null),
            1 => Just(Shape::Wrong),
            1 => Just(Shape::Absent),
        ]
    }

    #[derive(Debug, Clone)]
    struct MadeComment {
        id: u64,
        /// `\u{E000}` stands for an unpaired surrogate escape in the body.
        text: String,
        username: String,
        hidden: bool,
        /// text, username, timestamp, hidden, from.
        shapes: [Shape; 5],
        replies: Vec<MadeComment>,
        replies_shape: Shape,
    }

    const TEXT: usize = 0;
    const USERNAME: usize = 1;
    const TIMESTAMP: usize = 2;
    const HIDDEN: usize = 3;
    const FROM: usize = 4;
    const NAMES: [&str; 5] = ["text", "username", "timestamp", "hidden", "from"];

    impl MadeComment {
        fn json(&self) -> Value {
            let mut map = serde_json::Map::new();
            map.insert("id".into(), Value::from(self.id.to_string()));
            let good: [Value; 5] = [
                Value::from(self.text.clone()),
                Value::from(self.username.clone()),
                Value::from("2026-12-01T10:00:00+0000"),
                Value::from(self.hidden),
                serde_json::json!({"id": (self.id + 7).to_string(), "username": self.username}),
            ];
            let wrong: [Value; 5] = [
                Value::from(7),
                serde_json::json!(["x"]),
                Value::from(false),
                Value::from("no"),
                Value::from("someone"),
            ];
            for (i, name) in NAMES.iter().enumerate() {
                let v = match self.shapes[i] {
                    Shape::Good => good[i].clone(),
                    Shape::Null => Value::Null,
                    Shape::Wrong => wrong[i].clone(),
                    Shape::Absent => continue,
                };
                map.insert((*name).into(), v);
            }
            let replies = serde_json::json!({
                "data": self.replies.iter().map(MadeComment::json).collect::<Vec<_>>()
            });
            match self.replies_shape {
                Shape::Good => {
                    map.insert("replies".into(), replies);
                }
                Shape::Null => {
                    map.insert("replies".into(), Value::Null);
                }
                Shape::Wrong => {
                    map.insert("replies".into(), Value::from(3));
                }
                Shape::Absent => {}
            }
            Value::Object(map)
        }

        fn replies_sent(&self) -> bool {
            self.replies_shape == Shape::Good
        }

        /// The decoded comment holds every well-typed value, and nothing for the others.
        fn check(&self, c: &super::DomainComment) -> Result<(), TestCaseError> {
            let good = |i: usize| self.shapes[i] == Shape::Good;
            prop_assert_eq!(&c.id, &self.id.to_string());
            let text = self.text.replace('\u{E000}', "\u{FFFD}");
            prop_assert_eq!(c.text.as_deref(), good(TEXT).then_some(text.as_str()));
            let username = (good(USERNAME) || good(FROM)).then_some(self.username.as_str());
            prop_assert_eq!(c.username.as_deref(), username);
            let from_id = (self.id + 7).to_string();
            prop_assert_eq!(c.from_id.as_deref(), good(FROM).then_some(from_id.as_str()));
            prop_assert_eq!(c.timestamp.is_some(), good(TIMESTAMP));
            prop_assert_eq!(c.hidden, good(HIDDEN).then_some(self.hidden));
            Ok(())
        }

        /// Whether its text, or an inline reply's, is of another type: a spoilt answer the
        /// client refuses.
        fn text_spoilt(&self) -> bool {
            self.shapes[TEXT] == Shape::Wrong
                || (self.replies_sent() && self.replies.iter().any(MadeComment::text_spoilt))
        }

        fn odd(&self, out: &mut Vec<String>) {
            for (i, name) in NAMES.iter().enumerate() {
                let what = match self.shapes[i] {
                    Shape::Null => "null",
                    Shape::Wrong => "wrong type",
                    _ => continue,
                };
                out.push(format!("{name}: {what}"));
            }
            match self.replies_shape {
                Shape::Null => out.push("replies: null".into()),
                Shape::Wrong => out.push("replies: wrong type".into()),
                _ => {}
            }
            if self.replies_sent() {
                for r in &self.replies {
                    r.odd(out);
                }
            }
        }
    }

    fn comment(depth: u32) -> BoxedStrategy<MadeComment> {
        let replies = if depth == 0 {
            prop::collection::vec(comment(1), 0..4).boxed()
        } else {
            Just(Vec::new()).boxed()
        };
        (
            1u64..u64::MAX / 2,
            ("\\PC{0,20}", any::<bool>()).prop_map(|(t, broken)| {
                if broken { format!("{t}\u{E000}!") } else { t }
            }),
            "[a-z_.]{1,12}",
            any::<bool>(),
            [shape(), shape(), shape(), shape(), shape()],
            replies,
            shape(),
        )
            .prop_map(
                move |(id, text, username, hidden, shapes, replies, replies_shape)| MadeComment {
                    id,
                    text,
                    username,
                    hidden,
                    shapes,
                    // Inline replies have no replies of their own.
                    replies_shape: if depth == 0 {
                        replies_shape
                    } else {
                        Shape::Absent
                    },
                    replies,
                },
            )
            .boxed()
    }

    #[derive(Debug, Clone)]
    struct MadePage {
        comments: Vec<MadeComment>,
        has_next: bool,
    }

    impl MadePage {
        fn body(&self) -> String {
            let mut page = serde_json::json!({
                "data": self.comments.iter().map(MadeComment::json).collect::<Vec<_>>(),
            });
            if self.has_next {
                page["paging"] = serde_json::json!({
                    "cursors": {"after": "QVFI"},
                    "next": "https://graph.instagram.com/v25.0/1/comments?after=QVFI"
                });
            }
            serde_json::to_string(&page)
                .unwrap_or_default()
                .replace('\u{E000}', "\\ud83d")
        }

        fn broken_emoji(&self) -> bool {
            self.body().contains("\\ud83d")
        }

        fn odd(&self) -> Vec<String> {
            let mut out = Vec::new();
            for c in &self.comments {
                c.odd(&mut out);
            }
            out.sort();
            out.dedup();
            out
        }
    }

    fn page() -> impl Strategy<Value = MadePage> {
        (prop::collection::vec(comment(0), 0..6), any::<bool>())
            .prop_map(|(comments, has_next)| MadePage { comments, has_next })
    }
}

/// `{"data":[...]}` of an edge read whole (`subscribed_apps`).
#[derive(Deserialize)]
pub struct Listed {
    #[serde(default, deserialize_with = "lenient")]
    data: Option<Vec<Value>>,
}

impl Listed {
    /// The apps subscribed to the node's webhooks: `(id, name, subscribed_fields)`.
    pub fn into_subscriptions(self) -> Vec<super::SubscribedApp> {
        self.data
            .unwrap_or_default()
            .iter()
            .map(|v| super::SubscribedApp {
                id: v.get("id").and_then(|v| id_of(v, IdSource::GraphAnswer)),
                name: v.get("name").and_then(Value::as_str).map(str::to_string),
                fields: strings(v.get("subscribed_fields")),
            })
            .collect()
    }
}

/// The user's Pages (`me/accounts`): `(page id, linked Instagram account id, the Page's
/// token)`; an item without a usable id is left out.
pub fn into_pages(data: Vec<Value>) -> Vec<super::PageLink> {
    data.iter()
        .filter_map(|v| {
            Some(super::PageLink {
                page_id: v.get("id").and_then(|v| id_of(v, IdSource::GraphAnswer))?,
                ig_user_id: v
                    .get("instagram_business_account")
                    .and_then(|a| a.get("id"))
                    .and_then(|v| id_of(v, IdSource::GraphAnswer)),
                page_token: v
                    .get("access_token")
                    .and_then(Value::as_str)
                    .map(|t| secrecy::SecretString::from(t.to_string())),
            })
        })
        .collect()
}

/// A Page read as `/me?fields=id,instagram_business_account` (a Page token's own node).
#[derive(Deserialize)]
pub struct PageNode {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    instagram_business_account: Option<Value>,
}

impl PageNode {
    pub fn into_domain(self) -> Option<super::PageLink> {
        Some(super::PageLink {
            page_id: self
                .id
                .as_ref()
                .and_then(|v| id_of(v, IdSource::GraphAnswer))?,
            ig_user_id: self
                .instagram_business_account
                .as_ref()
                .and_then(|a| a.get("id"))
                .and_then(|v| id_of(v, IdSource::GraphAnswer)),
            page_token: None,
        })
    }
}

/// The strings of a JSON array (others skipped); empty when it is not an array.
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Meta's ids are numeric strings; a number is taken too (the webhook payloads use this).
/// One not in Meta's form is refused and logged once for its `source`.
pub fn id_of(v: &Value, source: IdSource) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => checked(source, s.clone()),
        Value::Number(n) => checked(source, n.to_string()),
        _ => None,
    }
}
