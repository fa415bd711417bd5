//! Cron expressions of `schedule = { cron = "…" }`: parsed here so that config validates them
//! and the scheduler computes due times from the same parse.

use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// Parses a cron expression with seconds (six or seven fields).
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(format!(
            "cron expression {expr:?} has {fields} fields; igmod needs 6 or 7 (seconds first, e.g. \"0 */2 * * * *\")"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .build()
        .parse(expr)
        .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_needs_seconds() {
        assert!(parse_cron("0 */2 * * * *").is_ok());
        assert!(parse_cron("0 0 */2 * * * 2030").is_ok());
        let five = parse_cron("*/2 * * * *").err().unwrap_or_default();
        assert!(five.contains("has 5 fields"), "{five}");
        assert!(parse_cron("x y z a b c").is_err());
    }
}
