//! Timestamps: one fixed-width RFC 3339 UTC format in SQLite (so text comparison is time
//! comparison), and tolerant parsing of Meta's `2017-05-19T23:27:28+0000`.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a time the way every SQLite column stores it: `2026-11-28T17:00:00.123Z`.
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The current time in the stored format.
pub fn now() -> String {
    format(Utc::now())
}

/// Parses a stored timestamp (or any RFC 3339 one).
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a Graph API timestamp. Meta writes the offset without a colon (`+0000`);
/// RFC 3339 forms are accepted too. `None` for anything else: a bad timestamp is not fatal.
pub fn parse_graph(s: &str) -> Option<DateTime<Utc>> {
    parse(s).or_else(|| {
        DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_timestamps_parse_with_and_without_colon() {
        for (input, expected) in [
            ("2017-05-19T23:27:28+0000", Some("2017-05-19T23:27:28.000Z")),
            (
                "2017-05-19T23:27:28+00:00",
                Some("2017-05-19T23:27:28.000Z"),
            ),
            ("2017-05-20T01:27:28+0200", Some("2017-05-19T23:27:28.000Z")),
            ("2017-05-19T23:27:28Z", Some("2017-05-19T23:27:28.000Z")),
            ("yesterday", None),
            ("", None),
        ] {
            assert_eq!(
                parse_graph(input).map(format).as_deref(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn stored_format_sorts_as_time() {
        let a = parse("2026-01-01T00:00:09Z").map(format);
        let b = parse("2026-01-01T00:00:10.5Z").map(format);
        assert!(a < b);
    }
}

/// `t` moved back by `d`, stopping at the earliest time chrono can hold: the durations come
/// from the config, the command line and Meta, and `DateTime - TimeDelta` panics on overflow.
pub fn ago(t: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `t` moved on by `d`, stopping at the latest time chrono can hold (see [`ago`]).
pub fn later(t: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod overflow_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any duration, from any representable time: no panic, and the order holds.
        #[test]
        fn ago_and_later_never_panic(secs in any::<u64>(), nanos in 0u32..1_000_000_000, at in any::<i64>()) {
            let t = DateTime::from_timestamp(at % 200_000_000_000, 0).unwrap_or_else(Utc::now);
            let d = std::time::Duration::new(secs, nanos);
            prop_assert!(ago(t, d) <= t);
            prop_assert!(later(t, d) >= t);
        }

        /// Whatever `expires_in` Meta sends, the token's end is a real time after now, at most
        /// a year away.
        #[test]
        fn any_expires_in_gives_a_sane_expiry(expires_in in proptest::option::of(any::<u64>())) {
            let now = Utc::now();
            let (at, secs) = crate::tokens::expiry(now, expires_in);
            prop_assert!(at >= now && at <= later(now, std::time::Duration::from_secs(366 * 86_400)));
            prop_assert!((0..=366 * 86_400).contains(&secs));
        }
    }
}
