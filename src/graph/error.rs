//! Graph API errors, classified by `code` and `error_subcode` (never by `type` or HTTP status
//! alone), as ../shared/graph-api.md §6 tabulates them.
//!
//! Meta's message text is read here and nowhere else, and only for the shapes whose code
//! carries nothing more: code 100 naming `appsecret_proof`, code 100 saying an object does not
//! exist ([`says_gone`]), the field refused as nonexisting ([`GraphError::refused_field`]) and
//! the permission a code-200 refusal names ([`GraphError::lacks_permission`]). Callers decide
//! on [`ErrorKind`] and these typed answers.

use std::fmt;
use std::time::Duration;

use super::CallInfo;

/// What the daemon should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Retry with backoff (codes 1, 2, -1, `is_transient`, 5xx, timeouts, bad JSON).
    Transient,
    /// Stop calling for this account (or, `app_wide`, the whole app) for a while.
    Throttled {
        regain: Option<Duration>,
        app_wide: bool,
    },
    /// Code 190: the token is dead; stop the account until its token changes.
    TokenInvalid { subcode: Option<i64> },
    /// Codes 3, 10, 200–299: a permission is missing.
    Permission,
    /// The object is gone or inaccessible: code 100 subcode 33, a top-level code 33, or code
    /// 100 without a subcode whose message says so ([`says_gone`]).
    Gone,
    /// Other code 100 and anything unrecognised: a bug or unsupported field; do not retry.
    BadRequest,
    /// Code 368: this account's writes are blocked by policy for a while.
    PolicyBlock,
    /// Code 4 subcode 2207051: Meta restricts this account's activity (not the app-wide
    /// code-4 throttle); its writes wait.
    Restricted,
    /// Code 20 (1772107): the write probably happened; re-read, do not repeat.
    WriteUncertain,
    /// Code 100 naming `appsecret_proof`: the app has "Require App Secret" on and the call
    /// carried no (or a wrong) proof. Not retried: the configuration must change.
    AppSecretProof,
}

impl ErrorKind {
    /// A short name for metrics labels.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Throttled { .. } => "throttled",
            ErrorKind::TokenInvalid { .. } => "token_invalid",
            ErrorKind::Permission => "permission",
            ErrorKind::Gone => "gone",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::PolicyBlock => "policy_block",
            ErrorKind::Restricted => "restricted",
            ErrorKind::WriteUncertain => "write_uncertain",
            ErrorKind::AppSecretProof => "appsecret_proof",
        }
    }

    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Transient)
    }

    /// Meta refuses this one account's writes for a while (4/2207051, 368): they wait.
    pub fn blocks_writes(self) -> bool {
        matches!(self, ErrorKind::Restricted | ErrorKind::PolicyBlock)
    }

    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient error",
            ErrorKind::Throttled { .. } => "rate limited",
            ErrorKind::TokenInvalid { .. } => "access token invalid or expired",
            ErrorKind::Permission => "permission missing",
            ErrorKind::Gone => "object gone or inaccessible",
            ErrorKind::BadRequest => "request rejected",
            ErrorKind::PolicyBlock => "blocked by policy",
            ErrorKind::Restricted => "account restricted by meta",
            ErrorKind::WriteUncertain => "write outcome uncertain",
            ErrorKind::AppSecretProof => {
                "the app requires appsecret_proof (\"Require App Secret\" is on): give igmod the app secret in [app] (app_id with app_secret_env or app_secret_file) so that it signs its facebook login calls"
            }
        }
    }
}

/// A failed Graph API call. Its `Display` names the call (method and path, never a query
/// string) and Meta's code, subcode and `fbtrace_id`, never a token.
#[derive(Debug, Clone)]
pub struct GraphError {
    pub kind: ErrorKind,
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    /// Meta's message, or the transport error, with any URL query removed.
    pub message: String,
    pub fbtrace_id: Option<String>,
    /// Boxed: errors travel through many `Result`s and should stay small.
    pub call: Box<CallInfo>,
}

impl std::error::Error for GraphError {}

impl GraphError {
    /// The field Meta refused as nonexisting (`(#100) Tried accessing nonexisting field (X) on
    /// node type (Media)`), when the error is that one.
    pub fn refused_field(&self) -> Option<&str> {
        if self.kind != ErrorKind::BadRequest || self.code != Some(100) {
            return None;
        }
        let rest = self.message.split("nonexisting field (").nth(1)?;
        let field = rest.split(')').next()?;
        (!field.is_empty()).then_some(field)
    }

    /// A permission refusal naming `permission` as the one missing (Meta names it in the
    /// message of code 200, graph-api.md §12).
    pub fn lacks_permission(&self, permission: &str) -> bool {
        self.kind == ErrorKind::Permission && self.message.contains(permission)
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.call.method,
            self.call.endpoint,
            self.kind.describe()
        )?;
        let mut details = Vec::new();
        if let Some(s) = self.call.status {
            details.push(format!("http {s}"));
        }
        if let Some(c) = self.code {
            details.push(format!("code {c}"));
        }
        if let Some(s) = self.subcode {
            details.push(format!("subcode {s}"));
        }
        if let Some(t) = &self.fbtrace_id {
            details.push(format!("fbtrace_id {t}"));
        }
        if !details.is_empty() {
            write!(f, " ({})", details.join(", "))?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Account restriction: code 4 with this subcode is about one account, not the app.
pub const SUBCODE_RESTRICTED: i64 = 2207051;

/// Classifies Meta's error envelope (`code`, `subcode`, `message` as Meta sent them; all `None`
/// for an answer without a JSON error). `regain` is the hint of the usage headers or of
/// `Retry-After`.
pub fn classify(
    code: Option<i64>,
    subcode: Option<i64>,
    message: Option<&str>,
    is_transient: bool,
    http_status: u16,
    regain: Option<Duration>,
) -> ErrorKind {
    match code {
        Some(190) => ErrorKind::TokenInvalid { subcode },
        Some(4) if subcode == Some(SUBCODE_RESTRICTED) => ErrorKind::Restricted,
        Some(4) => ErrorKind::Throttled {
            regain,
            app_wide: true,
        },
        Some(17 | 32 | 341 | 613 | 80001 | 80002) => ErrorKind::Throttled {
            regain,
            app_wide: false,
        },
        // Meta gives this shape no subcode of its own: its message names the proof.
        Some(100) if message.is_some_and(|m| m.contains("appsecret_proof")) => {
            ErrorKind::AppSecretProof
        }
        Some(100) if subcode == Some(33) => ErrorKind::Gone,
        Some(100) if subcode.is_none() && message.is_some_and(says_gone) => ErrorKind::Gone,
        Some(33) => ErrorKind::Gone,
        // A bare 429 (no JSON error): throttling of this account, not a bad request (§12).
        None if http_status == 429 => ErrorKind::Throttled {
            regain,
            app_wide: false,
        },
        Some(20) => ErrorKind::WriteUncertain,
        Some(368) => ErrorKind::PolicyBlock,
        Some(3 | 10 | 200..=299) => ErrorKind::Permission,
        Some(1 | 2 | -1) => ErrorKind::Transient,
        _ if is_transient || http_status >= 500 => ErrorKind::Transient,
        _ => ErrorKind::BadRequest,
    }
}

/// Whether a code-100 message without a subcode says the object does not exist. The only
/// decision taken on Meta's words, because that shape carries nothing else: Meta answers
/// "Object with ID '…' does not exist, cannot be loaded due to missing permissions, or does
/// not support this operation" (../shared/graph-api.md §12; Meta's Graph API error reference,
/// "Handling Errors"; docs/graph-contract.md). "Tried accessing nonexisting field" (a field
/// this login lacks) is not this, and stays a bad request.
pub fn says_gone(message: &str) -> bool {
    const PHRASES: [&str; 2] = [
        "does not exist, cannot be loaded",
        "does not exist or cannot be loaded",
    ];
    let lower = message.to_ascii_lowercase();
    PHRASES.iter().any(|p| lower.contains(p))
}

/// Removes every URL query (`?...` up to whitespace or a quote) from a message, so that a
/// token in a query string can never be echoed into a log, and bounds its length.
pub fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(300));
    let mut in_query = false;
    for c in message.chars() {
        if in_query {
            if c.is_whitespace() || c == '"' || c == '\'' || c == ')' {
                in_query = false;
                out.push(c);
            }
            continue;
        }
        if c == '?' {
            in_query = true;
            out.push_str("?…");
            continue;
        }
        out.push(c);
        if out.len() >= 300 {
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let regain = Some(Duration::from_secs(60));
        let cases = [
            (
                Some(190),
                Some(463),
                false,
                400,
                ErrorKind::TokenInvalid { subcode: Some(463) },
            ),
            (
                Some(190),
                None,
                false,
                401,
                ErrorKind::TokenInvalid { subcode: None },
            ),
            (
                Some(80002),
                None,
                false,
                400,
                ErrorKind::Throttled {
                    regain,
                    app_wide: false,
                },
            ),
            (
                Some(4),
                None,
                false,
                400,
                ErrorKind::Throttled {
                    regain,
                    app_wide: true,
                },
            ),
            (
                Some(613),
                None,
                false,
                400,
                ErrorKind::Throttled {
                    regain,
                    app_wide: false,
                },
            ),
            (Some(100), Some(33), false, 400, ErrorKind::Gone),
            (Some(100), None, false, 400, ErrorKind::BadRequest),
            (Some(2), None, false, 500, ErrorKind::Transient),
            (Some(1), None, false, 400, ErrorKind::Transient),
            (Some(9999), None, true, 400, ErrorKind::Transient),
            (None, None, false, 502, ErrorKind::Transient),
            (Some(10), None, false, 403, ErrorKind::Permission),
            (Some(200), None, false, 403, ErrorKind::Permission),
            (Some(368), None, false, 400, ErrorKind::PolicyBlock),
            (
                Some(20),
                Some(1772107),
                false,
                400,
                ErrorKind::WriteUncertain,
            ),
            (None, None, false, 404, ErrorKind::BadRequest),
        ];
        for (code, sub, transient, status, expected) in cases {
            assert_eq!(
                classify(code, sub, None, transient, status, regain),
                expected,
                "{code:?}/{sub:?}"
            );
        }
    }

    #[test]
    fn account_errors_gone_shapes_and_bare_429() {
        let regain = Some(Duration::from_secs(7));
        let missing = "Unsupported request - method type: delete. Object with ID '18001' does not exist, cannot be loaded due to missing permissions, or does not support this operation.";
        let cases = [
            (Some(4), Some(2207051), None, 400, ErrorKind::Restricted),
            (Some(368), None, None, 400, ErrorKind::PolicyBlock),
            (Some(100), None, Some(missing), 400, ErrorKind::Gone),
            (Some(100), Some(33), Some(missing), 400, ErrorKind::Gone),
            (
                Some(33),
                None,
                Some("(#33) This object does not exist or does not support this action"),
                400,
                ErrorKind::Gone,
            ),
            (
                Some(100),
                None,
                Some(
                    "(#100) Tried accessing nonexisting field (media_product_type) on node type (IGMedia)",
                ),
                400,
                ErrorKind::BadRequest,
            ),
            (
                Some(100),
                Some(2207008),
                Some(missing),
                400,
                ErrorKind::BadRequest,
            ),
            (
                Some(100),
                None,
                Some("(#100) appsecret_proof argument must be provided"),
                400,
                ErrorKind::AppSecretProof,
            ),
            (
                None,
                None,
                None,
                429,
                ErrorKind::Throttled {
                    regain,
                    app_wide: false,
                },
            ),
        ];
        for (code, sub, message, status, expected) in cases {
            assert_eq!(
                classify(code, sub, message, false, status, regain),
                expected,
                "{code:?}/{sub:?}/{message:?}"
            );
        }
    }

    #[test]
    fn scrub_removes_queries() {
        assert_eq!(
            scrub("error sending request for url (http://h/v1/x?access_token=SECRET&a=b)"),
            "error sending request for url (http://h/v1/x?…)"
        );
        assert_eq!(scrub("plain message"), "plain message");
        assert!(scrub(&"x".repeat(1000)).chars().count() <= 302);
    }
}
