//! Cron events (`0 3 * * Sun`, five POSIX fields) evaluated on local wall-clock time.
//!
//! Pure. croner searches civil (wall-clock) times; each civil occurrence is then placed on
//! the time line with the same DST rule as windows (a time in a spring-forward gap moves
//! later by the gap, a time in an autumn fold means its first occurrence), so an event
//! fires once per matching local time and never twice in a repeated hour.

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::resolve_local;

crate::engine::text_enum::text_enum! {
    what = "event action";
    /// What a cron event does.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
    #[serde(rename_all = "lowercase")]
    pub enum EventAction {
        Start = "start",
        Stop = "stop",
        Restart = "restart",
    }
}

/// A parsed five-field cron expression.
#[derive(Debug, Clone)]
pub struct CronExpr {
    source: String,
    cron: Cron,
}

impl CronExpr {
    /// Parse five fields: minute hour day-of-month month day-of-week. Names (`Mon`, `Jan`),
    /// ranges, steps and lists are accepted; day-of-month and day-of-week combine with OR,
    /// as in POSIX cron.
    pub fn parse(s: &str) -> Result<CronExpr, String> {
        let fields = s.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "invalid cron {s:?}: expected 5 fields (minute hour day-of-month month day-of-week), got {fields}"
            ));
        }
        let parser = CronParser::builder().seconds(Seconds::Disallowed).build();
        let cron = parser
            .parse(s)
            .map_err(|e| format!("invalid cron {s:?}: {e}"))?;
        if !fires_at_all(&cron) {
            return Err(format!(
                "invalid cron {s:?}: it never fires (no minute, hour or date matches all fields)"
            ));
        }
        Ok(CronExpr {
            source: s.to_owned(),
            cron,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Instants in `(after, until]` at which the expression fires in `tz`, ascending and
    /// without duplicates.
    pub fn fire_times(&self, tz: &TimeZone, after: Timestamp, until: Timestamp) -> Vec<Timestamp> {
        let mut out: Vec<Timestamp> = Vec::new();
        if until <= after {
            return out;
        }
        // Start a day early in civil time: a gap-shifted occurrence can land after `after`
        // although its civil time is before it.
        let start = tz
            .to_datetime(after)
            .saturating_sub(jiff::Span::new().days(1));
        let end = tz
            .to_datetime(until)
            .saturating_add(jiff::Span::new().days(1));
        for civil in self.cron.iter_after::<DateTime>(start) {
            if civil > end {
                break;
            }
            let Some(at) = resolve_local(tz, civil) else {
                continue;
            };
            if at > after && at <= until && out.last() != Some(&at) {
                out.push(at);
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Days in the span [`fires_at_all`] checks: 28 years, the cycle after which dates fall on
/// the same weekdays again (2000 is a leap year, so the span has seven 29 Februaries).
const CYCLE_START: (i16, i8, i8) = (2000, 1, 1);
const CYCLE_YEARS: i16 = 28;

/// Whether the expression matches at least one minute: some minute, some hour, and some
/// date of a full 28-year calendar cycle. croner accepts expressions that never fire (an
/// empty list item such as `,`, or 31 February) and then searches up to the year 5000 for
/// an occurrence, which took 2 to 60 seconds per search when fuzzing (issue 8): each pass
/// of the daemon would have stalled on it. Checking the fields separately costs about
/// 10,000 date tests, once, at parse time.
fn fires_at_all(cron: &Cron) -> bool {
    let p = &cron.pattern;
    let Some(minute) = (0..60).find(|m| p.minute_match(*m).unwrap_or(false)) else {
        return false;
    };
    let Some(hour) = (0..24).find(|h| p.hour_match(*h).unwrap_or(false)) else {
        return false;
    };
    let (y, m, d) = CYCLE_START;
    let Ok(start) = jiff::civil::Date::new(y, m, d) else {
        return false;
    };
    // Minute and hour match independently of the date, so one time of day is enough.
    let Ok(at) = jiff::civil::Time::new(hour as i8, minute as i8, 0, 0) else {
        return false;
    };
    let mut day = start;
    while day.year() < y + CYCLE_YEARS {
        if cron.is_time_matching(&day.to_datetime(at)).unwrap_or(false) {
            return true;
        }
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn five_fields_with_names() {
        assert!(CronExpr::parse("0 3 * * Sun").is_ok());
        assert!(CronExpr::parse("*/15 8-18 * Jan-Mar Mon,Wed,Fri").is_ok());
        let e = CronExpr::parse("0 0 3 * * Sun").unwrap_err();
        assert!(e.contains("expected 5 fields"), "{e}");
        let e = CronExpr::parse("61 3 * * *").unwrap_err();
        assert!(e.contains("invalid cron"), "{e}");
    }

    #[test]
    fn sunday_3am_fires_once_across_autumn_change_in_paris() {
        // 2026-10-25 is the Sunday when Paris goes from +02:00 to +01:00 at 03:00 local.
        let tz = TimeZone::get("Europe/Paris").unwrap();
        let e = CronExpr::parse("0 3 * * Sun").unwrap();
        let fires = e.fire_times(&tz, ts("2026-10-17T00:00:00Z"), ts("2026-11-02T00:00:00Z"));
        assert_eq!(
            fires,
            vec![
                ts("2026-10-18T01:00:00Z"),
                ts("2026-10-25T02:00:00Z"),
                ts("2026-11-01T02:00:00Z")
            ]
        );
    }

    #[test]
    fn fold_time_fires_on_first_occurrence_only() {
        // 02:30 happens twice in Paris on 2026-10-25; the first is at +02:00.
        let tz = TimeZone::get("Europe/Paris").unwrap();
        let e = CronExpr::parse("30 2 * * *").unwrap();
        let fires = e.fire_times(&tz, ts("2026-10-24T12:00:00Z"), ts("2026-10-25T12:00:00Z"));
        assert_eq!(fires, vec![ts("2026-10-25T00:30:00Z")]);
    }

    #[test]
    fn gap_time_moves_later_by_the_gap() {
        // 02:30 does not exist in Paris on 2026-03-29; RFC 5545 puts it at 03:30 +02:00.
        let tz = TimeZone::get("Europe/Paris").unwrap();
        let e = CronExpr::parse("30 2 * * *").unwrap();
        let fires = e.fire_times(&tz, ts("2026-03-28T12:00:00Z"), ts("2026-03-29T12:00:00Z"));
        assert_eq!(fires, vec![ts("2026-03-29T01:30:00Z")]);
    }

    /// Issue 8, found by fuzzing (`fuzz/fuzz_targets/cron.rs`): croner accepted these and
    /// then searched for seconds to a minute per call, up to the year 5000, because they
    /// never fire. They are config errors now, and parsing them is instant.
    #[test]
    fn expressions_that_never_fire_are_rejected() {
        for s in [
            ", 9 L * 1",
            ", 9 * * 1",
            "0 , * * *",
            ",, 9 * * 1",
            "0 0 31 2 *",
            "0 0 30 2 *",
            "0 0 31 4,6,9,11 *",
        ] {
            let err = CronExpr::parse(s).expect_err(s);
            assert!(err.contains("never fires"), "{s}: {err}");
        }
    }

    #[test]
    fn rare_expressions_still_parse() {
        // 29 February, the fifth Monday of February (2044 and every 28 years), last day.
        for s in ["0 0 29 2 *", "0 9 * 2 Mon#5", "0 9 L * *", "0 0 31 * *"] {
            assert!(CronExpr::parse(s).is_ok(), "{s}");
        }
        let e = CronExpr::parse("0 0 29 2 *").unwrap();
        let after = ts("2027-01-01T00:00:00Z");
        let until = ts("2029-01-01T00:00:00Z");
        assert_eq!(
            e.fire_times(&TimeZone::UTC, after, until),
            vec![ts("2028-02-29T00:00:00Z")]
        );
    }
}
