//! Schedules: when instances of a policy should be up, and when that changes.
//!
//! Pure: every function takes the instant it is asked about; nothing reads the clock or
//! does I/O. All arithmetic is in the policy's time zone through jiff, with one DST rule
//! everywhere (RFC 5545): a local time that does not exist (spring forward) is moved later
//! by the length of the gap; a local time that occurs twice (fall back) means its first
//! occurrence.
//!
//! Precedence at an instant: an exception covering it, else a holiday on its local date
//! (down), else the uptime windows (up inside one, down outside); a schedule with no
//! windows has no opinion outside exceptions and holidays.

pub mod cron;
pub mod window;

use std::collections::BTreeSet;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

pub use cron::{CronExpr, EventAction};
pub use window::{DaySet, Window};

/// What a schedule wants at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    Up,
    Down,
}

/// A fixed local period overriding the windows (`exceptions = [{from, to, state}]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// Local start, inclusive.
    pub from: DateTime,
    /// Local end, exclusive.
    pub to: DateTime,
    pub state: Desired,
}

/// A change of the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Transition {
    /// When the new state begins.
    pub at: Timestamp,
    /// Desired state just before `at` (`None`: no opinion).
    pub from: Option<Desired>,
    /// Desired state from `at` on.
    pub to: Option<Desired>,
}

/// One policy's calendar: windows, holidays and exceptions in one time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub tz: TimeZone,
    pub windows: Vec<Window>,
    pub holidays: BTreeSet<Date>,
    pub exceptions: Vec<Exception>,
}

/// How far ahead transitions are searched for before giving up (a schedule whose only
/// change is a holiday next year still reports it).
const SEARCH_HORIZON_DAYS: i64 = 400;
/// First, cheap search step: almost every schedule changes within a week.
const FIRST_SEARCH_DAYS: i64 = 8;

/// Place a local date-time on the time line with the RFC 5545 rule (see module docs).
pub fn resolve_local(tz: &TimeZone, civil: DateTime) -> Option<Timestamp> {
    tz.to_ambiguous_timestamp(civil).compatible().ok()
}

impl Schedule {
    /// A schedule with no windows, holidays or exceptions in `tz`.
    pub fn new(tz: TimeZone) -> Schedule {
        Schedule {
            tz,
            windows: Vec::new(),
            holidays: BTreeSet::new(),
            exceptions: Vec::new(),
        }
    }

    /// The local date of an instant.
    pub fn local_date(&self, t: Timestamp) -> Date {
        self.tz.to_datetime(t).date()
    }

    fn resolve(&self, civil: DateTime) -> Option<Timestamp> {
        resolve_local(&self.tz, civil)
    }

    /// The `[open, close)` instants of `w` when it opens on local day `day`, if it does.
    fn window_on(&self, w: &Window, day: Date) -> Option<(Timestamp, Timestamp)> {
        if !w.days.contains(day.weekday()) {
            return None;
        }
        let open = self.resolve(day.to_datetime(w.open))?;
        let close_day = if w.crosses_midnight() {
            day.tomorrow().ok()?
        } else {
            day
        };
        let close = self.resolve(close_day.to_datetime(w.close))?;
        Some((open, close))
    }

    fn exception_bounds(&self, e: &Exception) -> Option<(Timestamp, Timestamp)> {
        Some((self.resolve(e.from)?, self.resolve(e.to)?))
    }

    /// The desired state at `t` (`None`: this schedule has no opinion then).
    pub fn desired_at(&self, t: Timestamp) -> Option<Desired> {
        for e in &self.exceptions {
            if let Some((from, to)) = self.exception_bounds(e)
                && from <= t
                && t < to
            {
                return Some(e.state);
            }
        }
        let today = self.local_date(t);
        if self.holidays.contains(&today) {
            return Some(Desired::Down);
        }
        if self.windows.is_empty() {
            return None;
        }
        let yesterday = today.yesterday().unwrap_or(today);
        let inside = self.windows.iter().any(|w| {
            [yesterday, today].into_iter().any(|day| {
                self.window_on(w, day)
                    .is_some_and(|(open, close)| open <= t && t < close)
            })
        });
        Some(if inside { Desired::Up } else { Desired::Down })
    }

    /// Every instant in `[from, to]` at which the desired state may change, ascending.
    fn candidates(&self, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
        let mut out = Vec::new();
        let first = self
            .local_date(from)
            .yesterday()
            .unwrap_or(self.local_date(from));
        let last = self
            .local_date(to)
            .tomorrow()
            .unwrap_or(self.local_date(to));
        let mut day = first;
        while day <= last {
            for w in &self.windows {
                if let Some((open, close)) = self.window_on(w, day) {
                    out.extend([open, close]);
                }
            }
            if self.holidays.contains(&day) {
                out.extend(self.start_of_day(day));
                out.extend(day.tomorrow().ok().and_then(|d| self.start_of_day(d)));
            }
            match day.tomorrow() {
                Ok(d) => day = d,
                Err(_) => break,
            }
        }
        for e in &self.exceptions {
            if let Some((a, b)) = self.exception_bounds(e) {
                out.extend([a, b]);
            }
        }
        out.retain(|c| *c >= from && *c <= to);
        out.sort();
        out.dedup();
        out
    }

    /// The first instant of a local day (midnight may itself fall in a gap).
    fn start_of_day(&self, day: Date) -> Option<Timestamp> {
        day.to_zoned(self.tz.clone()).ok().map(|z| z.timestamp())
    }

    /// Every change of the desired state in `(after, until]`, in order.
    pub fn transitions(&self, after: Timestamp, until: Timestamp) -> Vec<Transition> {
        let mut state = self.desired_at(after);
        let mut out = Vec::new();
        for c in self.candidates(after, until) {
            if c <= after {
                continue;
            }
            let s = self.desired_at(c);
            if s != state {
                out.push(Transition {
                    at: c,
                    from: state,
                    to: s,
                });
                state = s;
            }
        }
        out
    }

    /// The next change after `t`, within the search horizon.
    pub fn next_transition(&self, t: Timestamp) -> Option<Transition> {
        for days in [FIRST_SEARCH_DAYS, SEARCH_HORIZON_DAYS] {
            let until = t.saturating_add(Span::new().hours(days * 24)).ok()?;
            if let Some(first) = self.transitions(t, until).into_iter().next() {
                return Some(first);
            }
        }
        None
    }

    /// The latest change at or before `t`, within the search horizon.
    pub fn previous_transition(&self, t: Timestamp) -> Option<Transition> {
        for days in [FIRST_SEARCH_DAYS, SEARCH_HORIZON_DAYS] {
            let since = t.saturating_sub(Span::new().hours(days * 24)).ok()?;
            if let Some(last) = self.transitions(since, t).into_iter().last() {
                return Some(last);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
