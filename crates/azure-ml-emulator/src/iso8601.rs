//! ISO 8601 durations as ARM writes them (`PT60M`, `PT1H30M`, `P1DT2H`). Pure.

use std::time::Duration;

/// Parses the day/time subset of ISO 8601 durations (no years, months or weeks,
/// which have no fixed length). Returns `None` on anything else.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let rest = text.strip_prefix('P').or_else(|| text.strip_prefix('p'))?;
    let (date, time) = match rest.find(['T', 't']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut secs = 0f64;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let mult = units
                    .iter()
                    .find(|(u, _)| u.eq_ignore_ascii_case(&c))
                    .map(|(_, m)| *m)?;
                let n: f64 = num.parse().ok()?;
                secs += n * mult;
                num.clear();
                any = true;
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('D', 86_400.0)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        take(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    // The text may come from ARM: a number too large for a Duration (or a century) is not a
    // duration we can use, and must not panic `from_secs_f64`.
    const MAX_SECS: f64 = 100.0 * 366.0 * 86_400.0;
    if !any || !(0.0..=MAX_SECS).contains(&secs) {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
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
        for s in ["", "P", "PT", "60M", "PT5X", "PT5", "P1Y"] {
            assert_eq!(parse_duration(s), None, "{s}");
        }
    }
}
