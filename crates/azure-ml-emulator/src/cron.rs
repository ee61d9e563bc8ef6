//! The cron expression of a native `computeStartStop` schedule, and when it fires. Pure.
//!
//! ARM takes five POSIX fields (minute hour day-of-month month day-of-week) and a Windows
//! time zone (cli-ml-ci-with-schedules-2023-01: `"expression": "0 18 * * *"`,
//! `"timeZone": "Pacific Standard Time"`). The fields are read on the wall clock of that
//! zone with croner, names and ranges included, day-of-month and day-of-week combined with
//! OR as POSIX cron does.
//!
//! What Azure does when the zone's clocks change is not recorded anywhere we have, so the
//! emulator **assumes** the rule of RFC 5545 (iCalendar, §3.3.5) and of jiff's `compatible`
//! disambiguation:
//! - a wall time that a spring-forward change skips fires once, later by the length of the
//!   gap (`30 2 * * *` in Paris on 2026-03-29, when 02:00 jumps to 03:00, fires at 03:30
//!   local, 01:30 UTC);
//! - a wall time that an autumn change repeats fires once, at its first occurrence
//!   (`30 2 * * *` in Paris on 2026-10-25 fires at 02:30 +02:00, 00:30 UTC, not again an
//!   hour later).
//!
//! lightsout's own calendar follows the same rule, by its own code: if Azure turns out to
//! differ, this module is where the emulator changes, and the tests comparing its firings
//! with `lightsout preview` then show the difference.

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

/// A parsed five-field cron expression of a native schedule.
#[derive(Debug, Clone)]
pub struct NativeCron {
    source: String,
    cron: Cron,
}

impl PartialEq for NativeCron {
    fn eq(&self, other: &NativeCron) -> bool {
        self.source == other.source
    }
}

impl NativeCron {
    /// Parses exactly five fields; refuses an expression that never fires (croner would
    /// search up to the year 5000 for it, stalling every request that settles the
    /// instance).
    pub fn parse(expr: &str) -> Result<NativeCron, String> {
        let fields = expr.split_whitespace().count();
        if fields != 5 {
            return Err(format!("expected 5 fields, got {fields}"));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| e.to_string())?;
        if !ever_fires(&cron) {
            return Err("it never fires".to_owned());
        }
        Ok(NativeCron {
            source: expr.to_owned(),
            cron,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first instant in `(after, until]` at which the expression fires in `tz`, under
    /// the module's DST assumption.
    pub fn first_fire(
        &self,
        tz: &TimeZone,
        after: Timestamp,
        until: Timestamp,
    ) -> Option<Timestamp> {
        if until <= after {
            return None;
        }
        // A skipped wall time fires later than it reads, by up to the gap (at most a day
        // in any zone's history): start the civil search a day early.
        let from = tz
            .to_datetime(after)
            .saturating_sub(jiff::Span::new().days(1));
        let to = tz
            .to_datetime(until)
            .saturating_add(jiff::Span::new().days(1));
        let mut best: Option<Timestamp> = None;
        for civil in self.cron.iter_after::<DateTime>(from) {
            if civil > to {
                break;
            }
            let Ok(at) = tz.to_ambiguous_timestamp(civil).compatible() else {
                continue;
            };
            // Gap-shifted times can come out of order: keep the earliest in range.
            if at > after && at <= until && best.is_none_or(|b| at < b) {
                best = Some(at);
            }
        }
        best
    }
}

/// Whether some minute of some hour of some day of a 28-year cycle (after which weekdays
/// and leap days repeat) matches every field.
fn ever_fires(cron: &Cron) -> bool {
    let p = &cron.pattern;
    let minute = (0..60).find(|m| p.minute_match(*m).unwrap_or(false));
    let hour = (0..24).find(|h| p.hour_match(*h).unwrap_or(false));
    let (Some(minute), Some(hour)) = (minute, hour) else {
        return false;
    };
    let Ok(time) = Time::new(hour as i8, minute as i8, 0, 0) else {
        return false;
    };
    let Ok(first) = Date::new(2000, 1, 1) else {
        return false;
    };
    let mut day = first;
    while day.year() < 2028 {
        if cron
            .is_time_matching(&day.to_datetime(time))
            .unwrap_or(false)
        {
            return true;
        }
        let Ok(next) = day.tomorrow() else {
            return false;
        };
        day = next;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    #[test]
    fn parses_five_fields_only() {
        assert!(NativeCron::parse("0 18 * * *").is_ok());
        assert!(NativeCron::parse("*/15 8-18 * Jan-Mar Mon,Wed,Fri").is_ok());
        assert!(NativeCron::parse("0 0 18 * * *").is_err());
        assert!(NativeCron::parse("61 3 * * *").is_err());
        assert_eq!(
            NativeCron::parse("0 0 31 2 *").unwrap_err(),
            "it never fires"
        );
    }

    #[test]
    fn spring_gap_fires_once_later_by_the_gap() {
        // Paris, 2026-03-29: 02:00 +01:00 jumps to 03:00 +02:00; 02:30 does not exist.
        let cron = NativeCron::parse("30 2 * * *").unwrap();
        let after = ts("2026-03-28T12:00:00Z");
        let first = cron.first_fire(&paris(), after, ts("2026-03-30T12:00:00Z"));
        assert_eq!(first, Some(ts("2026-03-29T01:30:00Z")), "03:30 +02:00");
        let next = cron.first_fire(&paris(), first.unwrap(), ts("2026-03-30T12:00:00Z"));
        assert_eq!(
            next,
            Some(ts("2026-03-30T00:30:00Z")),
            "02:30 +02:00, once a day"
        );
    }

    #[test]
    fn autumn_fold_fires_once_at_the_first_occurrence() {
        // Paris, 2026-10-25: 03:00 +02:00 falls back to 02:00 +01:00; 02:30 happens twice.
        let cron = NativeCron::parse("30 2 * * *").unwrap();
        let until = ts("2026-10-26T12:00:00Z");
        let first = cron.first_fire(&paris(), ts("2026-10-24T12:00:00Z"), until);
        assert_eq!(first, Some(ts("2026-10-25T00:30:00Z")), "02:30 +02:00");
        let next = cron.first_fire(&paris(), first.unwrap(), until);
        assert_eq!(
            next,
            Some(ts("2026-10-26T01:30:00Z")),
            "not 01:30Z on the 25th"
        );
    }

    #[test]
    fn interval_is_open_at_the_start_closed_at_the_end() {
        // 18:00 in Paris in January is 17:00 UTC.
        let cron = NativeCron::parse("0 18 * * *").unwrap();
        let fire = ts("2026-01-05T17:00:00Z");
        assert_eq!(cron.first_fire(&paris(), fire, fire), None);
        assert_eq!(
            cron.first_fire(&paris(), fire, ts("2026-01-06T16:59:00Z")),
            None
        );
        assert_eq!(
            cron.first_fire(&paris(), ts("2026-01-05T16:00:00Z"), fire),
            Some(fire)
        );
    }
}
