//! The alert kinds (`on = [...]` in `[[alerts]]`) and which URLs may be alert targets: what
//! config validates about alerts. Delivery and the conditions live in [`crate::alerts`].

use serde::Serialize;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    TokenExpiring,
    AccountStopped,
    BudgetExhausted,
    ActionFailed,
    ScamWave,
    /// No poll of the account ended for three poll intervals (a hung poll, a stuck task).
    Stalled,
    /// Meta refuses the account's writes for a while (restricted 4/2207051, policy block 368).
    Restricted,
    /// The raid guard holds some of the account's posts' comments off.
    Raid,
}

/// The one table of kinds and their names (in `on = [...]`, the JSON sent, the state table).
const KINDS: [(AlertKind, &str); 8] = [
    (AlertKind::TokenExpiring, "token_expiring"),
    (AlertKind::AccountStopped, "account_stopped"),
    (AlertKind::BudgetExhausted, "budget_exhausted"),
    (AlertKind::ActionFailed, "action_failed"),
    (AlertKind::ScamWave, "scam_wave"),
    (AlertKind::Stalled, "stalled"),
    (AlertKind::Restricted, "restricted"),
    (AlertKind::Raid, "raid"),
];

impl AlertKind {
    pub const NAMES: [&'static str; KINDS.len()] = {
        let mut names = [""; KINDS.len()];
        let mut i = 0;
        while i < KINDS.len() {
            names[i] = KINDS[i].1;
            i += 1;
        }
        names
    };

    pub fn parse(s: &str) -> Option<AlertKind> {
        KINDS.iter().find(|(_, name)| *name == s).map(|(k, _)| *k)
    }

    pub fn as_str(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("unknown", |(_, name)| name)
    }
}

impl Serialize for AlertKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a URL cannot be an alert target (refused at config load, or at delivery for
/// `url_env`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("not an http(s) URL")]
    NotHttp,
    #[error(
        "http:// is allowed only to loopback (127.0.0.1, ::1, localhost); use https:// (alerts carry account names and may carry a secret in the URL)"
    )]
    PlainHttp,
}

/// An alert URL must be https, or http to loopback (a receiver on the same host).
pub fn check_url(url: &str) -> Result<(), UrlRefusal> {
    let parsed = url::Url::parse(url).map_err(|_| UrlRefusal::NotHttp)?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(UrlRefusal::PlainHttp),
        _ => Err(UrlRefusal::NotHttp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_name_both_ways() {
        for (kind, name) in KINDS {
            assert_eq!(kind.as_str(), name);
            assert_eq!(AlertKind::parse(name), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::Value::from(name))
            );
        }
        assert_eq!(AlertKind::NAMES.len(), KINDS.len());
        assert_eq!(AlertKind::parse("stalled"), Some(AlertKind::Stalled));
        assert_eq!(AlertKind::parse("Stalled"), None);
    }

    #[test]
    fn only_https_or_loopback_http_urls_are_targets() {
        for (url, want) in [
            ("https://hooks.slack.com/services/T/B/x", Ok(())),
            ("https://ntfy.sh/ops", Ok(())),
            ("http://127.0.0.1:8080/hook", Ok(())),
            ("http://127.9.9.9/hook", Ok(())),
            ("http://[::1]:9/hook", Ok(())),
            ("http://localhost/hook", Ok(())),
            ("http://LOCALHOST/hook", Ok(())),
            ("http://alerts.example.com/hook", Err(UrlRefusal::PlainHttp)),
            ("http://10.0.0.1/hook", Err(UrlRefusal::PlainHttp)),
            ("http://localhost.example.com/", Err(UrlRefusal::PlainHttp)),
            ("http://127.0.0.1.nip.io/", Err(UrlRefusal::PlainHttp)),
            ("ftp://127.0.0.1/", Err(UrlRefusal::NotHttp)),
            ("file:///etc/passwd", Err(UrlRefusal::NotHttp)),
            ("not a url", Err(UrlRefusal::NotHttp)),
        ] {
            assert_eq!(check_url(url), want, "{url}");
        }
    }
}
