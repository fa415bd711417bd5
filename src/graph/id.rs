//! Meta's object ids, checked wherever one can enter (a webhook payload, a Graph answer) and
//! again where a URL path is built, so that an id from anywhere (the database included) can
//! never become a path, a query or another object: `1/../../me/permissions` would otherwise
//! be sent as `DELETE /me/permissions` with the account's token.
//!
//! Meta's ids are ASCII digits, or digits joined by `_` (`<page>_<post>`); anything else is
//! refused and logged once per source, not per occurrence (a flood of forged ids must not
//! flood the log).

use std::sync::atomic::{AtomicBool, Ordering};

/// Longest id accepted; Meta's are about 17 digits, joined ones about 35.
pub const MAX_ID_LEN: usize = 64;

/// Where an id came from, for the once-per-source refusal log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    /// A webhook delivery's payload.
    Webhook,
    /// A Graph API answer.
    GraphAnswer,
    /// A URL path about to be built (ids from the database or any caller).
    Path,
}

impl IdSource {
    fn as_str(self) -> &'static str {
        match self {
            IdSource::Webhook => "webhook payload",
            IdSource::GraphAnswer => "graph answer",
            IdSource::Path => "graph request path",
        }
    }

    fn logged(self) -> &'static AtomicBool {
        static WEBHOOK: AtomicBool = AtomicBool::new(false);
        static ANSWER: AtomicBool = AtomicBool::new(false);
        static PATH: AtomicBool = AtomicBool::new(false);
        match self {
            IdSource::Webhook => &WEBHOOK,
            IdSource::GraphAnswer => &ANSWER,
            IdSource::Path => &PATH,
        }
    }
}

/// Has Meta's id form: 1 to [`MAX_ID_LEN`] bytes of ASCII digits, optionally in groups
/// joined by single `_` (no leading, trailing or doubled `_`).
pub fn is_meta_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.split('_')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// `id` when it has Meta's form; otherwise `None`, the first refusal of each source logged.
pub fn checked(source: IdSource, id: String) -> Option<String> {
    if is_meta_id(&id) {
        Some(id)
    } else {
        refused(source, &id);
        None
    }
}

/// Logs the first id of `source` that was refused; later ones quietly (debug).
pub fn refused(source: IdSource, id: &str) {
    // The id is hostile input: shown escaped (`{:?}`) and cut short, never raw.
    let shown: String = id.chars().take(40).collect();
    if !source.logged().swap(true, Ordering::Relaxed) {
        tracing::warn!(
            message = "an id not in Meta's form was refused (later ones from this source are logged at debug level)",
            source = source.as_str(),
            id = ?shown
        );
    } else {
        tracing::debug!(message = "an id not in Meta's form was refused", source = source.as_str(), id = ?shown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_metas_id_form_passes() {
        let long = "1".repeat(MAX_ID_LEN);
        let too_long = "1".repeat(MAX_ID_LEN + 1);
        let cases: &[(&str, bool)] = &[
            ("17841400000000001", true),
            ("0", true),
            ("17841400000000001_17900000000000002", true),
            (&long, true),
            (&too_long, false),
            ("", false),
            ("1/../../me/permissions", false),
            ("1%2F..", false),
            ("1?fields=x", false),
            ("1&x=y", false),
            ("1 2", false),
            ("1\n", false),
            (" 1", false),
            ("me", false),
            ("_1", false),
            ("1_", false),
            ("1__2", false),
            ("-1", false),
            ("1.5", false),
            ("１２", false), // full-width digits are not ASCII
            ("1#x", false),
        ];
        for (id, ok) in cases {
            assert_eq!(is_meta_id(id), *ok, "{id:?}");
            assert_eq!(
                checked(IdSource::Path, id.to_string()).is_some(),
                *ok,
                "{id:?}"
            );
        }
    }
}
