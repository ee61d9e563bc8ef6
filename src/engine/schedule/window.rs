//! The uptime-window grammar: `Mon-Fri 08:00-19:00`, `Sat,Sun 10:00-14:00`,
//! `Fri 22:00-06:00` (crosses midnight), `daily 00:00-24:00`.
//!
//! Pure parsing. The days name the local day a window *opens*; a close time at or before
//! the open time means the window closes on the following day.

use std::fmt;

use jiff::civil::{Time, Weekday};

/// A set of weekdays, Monday = bit 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DaySet(u8);

const DAY_NAMES: [(&str, &str, Weekday); 7] = [
    ("mon", "monday", Weekday::Monday),
    ("tue", "tuesday", Weekday::Tuesday),
    ("wed", "wednesday", Weekday::Wednesday),
    ("thu", "thursday", Weekday::Thursday),
    ("fri", "friday", Weekday::Friday),
    ("sat", "saturday", Weekday::Saturday),
    ("sun", "sunday", Weekday::Sunday),
];

impl DaySet {
    /// Every day of the week.
    pub const ALL: DaySet = DaySet(0x7f);

    fn bit(day: Weekday) -> u8 {
        1 << (day.to_monday_zero_offset() as u8)
    }

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & Self::bit(day) != 0
    }

    fn insert(&mut self, day: Weekday) {
        self.0 |= Self::bit(day);
    }

    /// True when no day is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Days in both sets.
    pub fn intersects(self, other: DaySet) -> bool {
        self.0 & other.0 != 0
    }
}

fn parse_day(s: &str) -> Option<Weekday> {
    let lower = s.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .find(|(short, long, _)| lower == *short || lower == *long)
        .map(|(_, _, d)| *d)
}

/// Parse `Mon-Fri`, `Sat,Sun`, `Fri-Mon` (wraps), `daily`.
fn parse_days(s: &str) -> Result<DaySet, String> {
    let lower = s.to_ascii_lowercase();
    if lower == "daily" || lower == "*" {
        return Ok(DaySet::ALL);
    }
    let mut set = DaySet::default();
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (Some(from), Some(to)) = (parse_day(a.trim()), parse_day(b.trim())) else {
                    return Err(format!("unknown day range {part:?}; use e.g. Mon-Fri"));
                };
                let mut d = from;
                loop {
                    set.insert(d);
                    if d == to {
                        break;
                    }
                    d = d.next();
                }
            }
            None => match parse_day(part) {
                Some(d) => set.insert(d),
                None => {
                    return Err(format!(
                        "unknown day {part:?}; use Mon, Tue, Wed, Thu, Fri, Sat, Sun or daily"
                    ));
                }
            },
        }
    }
    Ok(set)
}

/// A clock time of day, `HH:MM`; `24:00` is allowed as a close time meaning midnight.
fn parse_clock(s: &str, allow_24: bool) -> Result<Time, String> {
    let bad = || format!("invalid time {s:?}; use HH:MM, e.g. 08:00");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    if allow_24 && h == 24 && m == 0 {
        return Ok(Time::midnight());
    }
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

/// One uptime window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Local days on which the window opens.
    pub days: DaySet,
    /// Local opening time.
    pub open: Time,
    /// Local closing time; at or before `open` means the next day.
    pub close: Time,
}

impl Window {
    /// Whether the window closes on the day after it opens.
    pub fn crosses_midnight(&self) -> bool {
        self.close <= self.open
    }
}

impl std::str::FromStr for Window {
    type Err = String;

    fn from_str(s: &str) -> Result<Window, String> {
        let s = s.trim();
        let (days, times) = s.rsplit_once(char::is_whitespace).ok_or_else(|| {
            format!("invalid window {s:?}; expected DAYS HH:MM-HH:MM, e.g. \"Mon-Fri 08:00-19:00\"")
        })?;
        let days = parse_days(days.trim())?;
        let (open, close) = times
            .split_once('-')
            .ok_or_else(|| format!("invalid hours {times:?}; expected HH:MM-HH:MM"))?;
        let open = parse_clock(open, false)?;
        let close = parse_clock(close, true)?;
        Ok(Window { days, open, close })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        for (short, _, d) in DAY_NAMES {
            if self.days.contains(d) {
                let mut c = short.chars();
                if let Some(first) = c.next() {
                    names.push(format!("{}{}", first.to_ascii_uppercase(), c.as_str()));
                }
            }
        }
        write!(
            f,
            "{} {}-{}",
            names.join(","),
            self.open.strftime("%H:%M"),
            self.close.strftime("%H:%M")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_lists_and_wraps() {
        let w: Window = "Mon-Fri 08:00-19:00".parse().unwrap();
        assert!(w.days.contains(Weekday::Monday) && w.days.contains(Weekday::Friday));
        assert!(!w.days.contains(Weekday::Saturday));
        assert!(!w.crosses_midnight());
        let w: Window = "Fri-Mon 22:00-06:00".parse().unwrap();
        assert!(w.days.contains(Weekday::Sunday) && !w.days.contains(Weekday::Tuesday));
        assert!(w.crosses_midnight());
        let w: Window = "sat,Sunday 10:00-14:00".parse().unwrap();
        assert_eq!(w.to_string(), "Sat,Sun 10:00-14:00");
        let w: Window = "daily 00:00-24:00".parse().unwrap();
        assert_eq!(w.days, DaySet::ALL);
        assert!(
            w.crosses_midnight(),
            "a 24-hour window closes the next midnight"
        );
    }

    #[test]
    fn rejects_bad_windows_with_reasons() {
        for (input, needle) in [
            ("Mon-Fri", "expected DAYS HH:MM-HH:MM"),
            ("Mon-Fry 08:00-19:00", "unknown day range"),
            ("Mon 8-19", "invalid time \"8\""),
            ("Mon 08:00", "expected HH:MM-HH:MM"),
            ("Mon 25:00-26:00", "invalid time \"25:00\""),
            ("Mon 08:61-09:00", "invalid time"),
            ("Mon 24:00-09:00", "invalid time \"24:00\""),
        ] {
            let err = input.parse::<Window>().unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }
}
