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
