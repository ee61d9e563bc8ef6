//! ISO 8601 durations as ARM writes them (`PT60M`, `PT1H30M`, `P1DT2H`), read with jiff's
//! ISO 8601 parser. Pure.

use std::time::Duration;

/// Parses the day/time subset of ISO 8601 durations (no years, months or weeks,
/// which have no fixed length; days of 24 hours). Returns `None` on anything else,
/// a negative duration, or more than a century.
pub fn parse_duration(text: &str) -> Option<Duration> {
    // The text may come from a client: a number too large (or a century) is not a duration
    // we can use.
    const MAX: Duration = Duration::from_secs(100 * 366 * 86_400);
    let span = jiff::fmt::temporal::SpanParser::new()
        .parse_span(text)
        .ok()?;
    if span.get_years() != 0 || span.get_months() != 0 || span.get_weeks() != 0 {
        return None;
    }
    let signed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .ok()?;
    Duration::try_from(signed).ok().filter(|d| *d <= MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_values_are_refused_not_a_panic() {
        assert_eq!(parse_duration("P99999999999999999999999D"), None);
        assert_eq!(parse_duration(&format!("PT{}S", "9".repeat(400))), None);
        assert_eq!(
            parse_duration("P36500D"),
            Some(Duration::from_secs(36_500 * 86_400))
        );
    }

    #[test]
    fn parses_arm_forms() {
        assert_eq!(parse_duration("PT60M"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("PT1H30M"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("P1DT2H"), Some(Duration::from_secs(93_600)));
        assert_eq!(parse_duration("PT15S"), Some(Duration::from_secs(15)));
    }

    #[test]
    fn rejects_junk() {
        for s in [
            "", "P", "PT", "60M", "PT5X", "PT5", "P1Y", "P1W", "-PT5M", "5m",
        ] {
            assert_eq!(parse_duration(s), None, "{s}");
        }
    }
}
