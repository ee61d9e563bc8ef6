//! Azure ML's own idle shutdown and start/stop schedules ("native settings"), kept in line
//! with policy (`[policy.native]`).
//!
//! Pure: no I/O, no clock. This module is the planner; the values it works on (policy,
//! observed settings, changes in flight) are plain data in [`types`], below `model`,
//! `policy` and `memory`, so those need nothing of the planner. Three parts:
//! - [`mirror`] translates a policy's uptime windows and start/stop cron events into at most
//!   [`MAX_SCHEDULES`] Azure `computeStartStop` schedules (trigger `Cron`, 5-field cron, the
//!   Windows name of the policy's IANA zone, from CLDR via [`windows_zones`]). What cannot be
//!   expressed is returned as [`Unmirrorable`] items, each naming the part of the policy that
//!   Azure cannot carry, never silently dropped; config validation turns them into errors.
//! - [`NativeObserved`] is what an instance carries today (filled by `azure::convert`).
//! - [`drift`] compares the two and lists the [`NativeChange`]s that would bring the instance
//!   in line; the daemon sends an instance's changes in one PUT of the compute
//!   (`azure::update`).
//!
//! How windows become schedules: the windows are laid on the 10,080 minutes of a local week;
//! every minute where "inside some window" turns false is a stop and every minute where it
//! turns true is a start. Stops (and starts) at the same local time of day become one cron
//! schedule whose day-of-week field lists the days. So a window crossing midnight, or two
//! windows that touch (`Mon-Fri 00:00-24:00`), give exactly the changes `lightsout preview`
//! shows; any set of weekdays fits cron's day-of-week list. Starts are mirrored only when the
//! policy starts instances itself (`start = "window"`).

pub mod types;
pub mod windows_zones;

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use self::types::{
    NativeKind, NativeMode, NativeObserved, NativePending, NativePolicy, NativeSchedule,
    PowerAction,
};
use crate::engine::model::Action;
use crate::engine::policy::{Event, StartMode};
use crate::engine::schedule::{EventAction, Schedule};

/// Azure allows at most this many start/stop schedules per compute instance.
pub const MAX_SCHEDULES: usize = 4;
/// Shortest `idleTimeBeforeShutdown` Azure accepts.
pub const MIN_IDLE_SHUTDOWN: Duration = Duration::from_secs(15 * 60);
/// Longest `idleTimeBeforeShutdown` Azure accepts.
pub const MAX_IDLE_SHUTDOWN: Duration = Duration::from_secs(3 * 24 * 3600);
/// A native change sent and not yet seen in an observation is not sent again before this
/// long (then it counts as lost and may be sent once more).
pub const NATIVE_PENDING_EXPIRY: Duration = Duration::from_secs(10 * 60);

/// Minutes in a week.
const WEEK_MINUTES: usize = 7 * 24 * 60;
/// Minutes in a day.
const DAY_MINUTES: usize = 24 * 60;

/// Part of a policy that Azure's native schedules cannot carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmirrorable {
    /// Native schedules have no dates to skip.
    Holidays { count: usize },
    /// Native schedules have no one-off periods.
    Exceptions { count: usize },
    /// Native schedules only start or stop.
    RestartEvent { cron: String },
    /// The event's cron uses syntax Azure's cron does not accept.
    CronSyntax { cron: String, reason: String },
    /// The policy needs more schedules than Azure allows.
    TooMany { needed: Vec<NativeSchedule> },
    /// CLDR maps the policy's zone to no Windows zone.
    NoWindowsZone { iana: String },
    /// The zone has a Windows name, but that Windows zone keeps different rules.
    RulesDiffer { iana: String, windows: String },
}

impl fmt::Display for Unmirrorable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unmirrorable::Holidays { count } => write!(
                f,
                "holidays ({count}) cannot be mirrored: Azure schedules cannot skip dates"
            ),
            Unmirrorable::Exceptions { count } => write!(
                f,
                "exceptions ({count}) cannot be mirrored: Azure schedules have no one-off periods"
            ),
            Unmirrorable::RestartEvent { cron } => write!(
                f,
                "event \"{cron}\" (restart) cannot be mirrored: Azure schedules only start or stop"
            ),
            Unmirrorable::CronSyntax { cron, reason } => {
                write!(f, "event \"{cron}\" cannot be mirrored: {reason}")
            }
            Unmirrorable::TooMany { needed } => {
                let list: Vec<String> = needed.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "needs {} native schedules, Azure allows at most {MAX_SCHEDULES}: {}",
                    needed.len(),
                    list.join("; ")
                )
            }
            Unmirrorable::NoWindowsZone { iana } => write!(
                f,
                "time zone {iana:?} has no Windows time zone (Unicode CLDR windowsZones); Azure schedules need one"
            ),
            Unmirrorable::RulesDiffer { iana, windows } => write!(
                f,
                "time zone {iana:?} maps to the Windows zone {windows:?}, whose DST rules differ; schedules would fire at other times"
            ),
        }
    }
}

/// The native schedules that carry `schedule`'s windows and the start/stop `events`, in a
/// stable order (stops first, then by time); or every part that cannot be carried.
pub fn mirror(
    schedule: &Schedule,
    start: StartMode,
    events: &[Event],
) -> Result<Vec<NativeSchedule>, Vec<Unmirrorable>> {
    let mut problems = Vec::new();
    if !schedule.holidays.is_empty() {
        problems.push(Unmirrorable::Holidays {
            count: schedule.holidays.len(),
        });
    }
    if !schedule.exceptions.is_empty() {
        problems.push(Unmirrorable::Exceptions {
            count: schedule.exceptions.len(),
        });
    }
    let time_zone = match windows_zone_of(&schedule.tz) {
        Ok(w) => w,
        Err(p) => {
            problems.push(p);
            String::new()
        }
    };
    let mut out = window_schedules(schedule, start, &time_zone);
    for ev in events {
        let action = match ev.action {
            EventAction::Start => PowerAction::Start,
            EventAction::Stop => PowerAction::Stop,
            EventAction::Restart => {
                problems.push(Unmirrorable::RestartEvent {
                    cron: ev.cron.as_str().to_owned(),
                });
                continue;
            }
        };
        match azure_cron(ev.cron.as_str()) {
            Ok(cron) => out.push(NativeSchedule {
                action,
                cron,
                time_zone: time_zone.clone(),
            }),
            Err(reason) => problems.push(Unmirrorable::CronSyntax {
                cron: ev.cron.as_str().to_owned(),
                reason,
            }),
        }
    }
    out.dedup();
    if out.len() > MAX_SCHEDULES {
        problems.push(Unmirrorable::TooMany {
            needed: out.clone(),
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The Windows zone of a policy's zone, checked to keep the same rules.
fn windows_zone_of(tz: &TimeZone) -> Result<String, Unmirrorable> {
    let iana = tz.iana_name().unwrap_or("UTC");
    let windows = windows_zones::windows_name(iana).ok_or_else(|| Unmirrorable::NoWindowsZone {
        iana: iana.to_owned(),
    })?;
    // Azure (and the emulator) read a Windows zone as its CLDR default zone.
    let same = windows_zones::iana_name(windows)
        .and_then(|d| TimeZone::get(d).ok())
        .is_some_and(|d| same_rules(tz, &d));
    if same {
        Ok(windows.to_owned())
    } else {
        Err(Unmirrorable::RulesDiffer {
            iana: iana.to_owned(),
            windows: windows.to_owned(),
        })
    }
}

/// First instant of the period over which two zones must agree (see [`same_rules`]).
const RULES_FROM: &str = "2020-01-01T00:00:00Z";
/// End of that period.
const RULES_UNTIL: &str = "2040-01-01T00:00:00Z";

/// Whether two zones have the same UTC offset at every instant of 2020-2039 (compared at
/// both zones' transitions). Fixed dates keep validation pure; the span covers any
/// schedule lightsout will run.
pub fn same_rules(a: &TimeZone, b: &TimeZone) -> bool {
    let (Ok(from), Ok(until)) = (
        RULES_FROM.parse::<Timestamp>(),
        RULES_UNTIL.parse::<Timestamp>(),
    ) else {
        return false;
    };
    if a.to_offset(from) != b.to_offset(from) {
        return false;
    }
    [a, b].iter().all(|z| {
        z.following(from)
            .take_while(|t| t.timestamp() < until)
            .all(|t| a.to_offset(t.timestamp()) == b.to_offset(t.timestamp()))
    })
}

/// Stop (and, with `start = "window"`, start) schedules from the windows' weekly pattern.
fn window_schedules(schedule: &Schedule, start: StartMode, time_zone: &str) -> Vec<NativeSchedule> {
    if schedule.windows.is_empty() {
        return Vec::new();
    }
    let mut inside = vec![false; WEEK_MINUTES];
    for w in &schedule.windows {
        let open = minute_of_day(w.open);
        let close = minute_of_day(w.close);
        let len = if close > open {
            close - open
        } else {
            DAY_MINUTES - open + close
        };
        for day in 0..7usize {
            if !w.days.contains(weekday_of(day)) {
                continue;
            }
            let begin = day * DAY_MINUTES + open;
            for m in begin..begin + len {
                if let Some(slot) = inside.get_mut(m % WEEK_MINUTES) {
                    *slot = true;
                }
            }
        }
    }
    // (action, minute of day) -> days (Monday = 0), in order of first appearance.
    let mut groups: Vec<(PowerAction, usize, [bool; 7])> = Vec::new();
    for m in 0..WEEK_MINUTES {
        let prev = inside[(m + WEEK_MINUTES - 1) % WEEK_MINUTES];
        let now = inside[m];
        let action = match (prev, now) {
            (true, false) => PowerAction::Stop,
            (false, true) if start == StartMode::Window => PowerAction::Start,
            _ => continue,
        };
        let (day, minute) = (m / DAY_MINUTES, m % DAY_MINUTES);
        match groups
            .iter_mut()
            .find(|(a, mm, _)| *a == action && *mm == minute)
        {
            Some((_, _, days)) => days[day] = true,
            None => {
                let mut days = [false; 7];
                days[day] = true;
                groups.push((action, minute, days));
            }
        }
    }
    let mut out: Vec<NativeSchedule> = groups
        .into_iter()
        .map(|(action, minute, days)| NativeSchedule {
            action,
            cron: format!("{} {} * * {}", minute % 60, minute / 60, cron_days(days)),
            time_zone: time_zone.to_owned(),
        })
        .collect();
    // Stops first, then by expression: a stable order for comparisons and display.
    out.sort_by(|a, b| b.action.cmp(&a.action).then_with(|| a.cron.cmp(&b.cron)));
    out
}

fn minute_of_day(t: jiff::civil::Time) -> usize {
    usize::from(t.hour().unsigned_abs()) * 60 + usize::from(t.minute().unsigned_abs())
}

fn weekday_of(monday_zero: usize) -> jiff::civil::Weekday {
    let mut d = jiff::civil::Weekday::Monday;
    for _ in 0..monday_zero {
        d = d.next();
    }
    d
}

/// Cron's day-of-week field (Sunday = 0) for days given Monday first: `*`, or a list of
/// numbers and ranges such as `1-5` or `0,6`.
fn cron_days(monday_first: [bool; 7]) -> String {
    if monday_first.iter().all(|d| *d) {
        return "*".to_owned();
    }
    // Sunday first, as cron numbers them.
    let sunday_first: Vec<bool> = (0..7).map(|i| monday_first[(i + 6) % 7]).collect();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < 7 {
        if !sunday_first[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < 7 && sunday_first[i + 1] {
            i += 1;
        }
        parts.push(if i > start {
            format!("{start}-{i}")
        } else {
            start.to_string()
        });
        i += 1;
    }
    parts.join(",")
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// A policy cron expression as Azure's cron accepts it: five fields of numbers, `*`, `,`,
/// `-` and `/` only (month and day names become numbers, day 7 becomes 0). Refuses the
/// extensions Azure's cron does not document (`L`, `W`, `#`, `?`) and a day-of-month
/// together with a day-of-week (cron dialects disagree on whether they combine with OR).
pub fn azure_cron(expr: &str) -> Result<String, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected 5 fields, got {}", fields.len()));
    }
    let mut out = Vec::with_capacity(5);
    for (index, field) in fields.iter().enumerate() {
        let lower = field.to_ascii_lowercase();
        // `Fri-Sun` ends its range at Sunday: cron's 7.
        let mut text = if index == 4 {
            lower.replace("-sun", "-7")
        } else {
            lower.clone()
        };
        let names: &[&str] = match index {
            3 => &MONTHS,
            4 => &DAYS,
            _ => &[],
        };
        for (i, name) in names.iter().enumerate() {
            let number = if index == 3 { i + 1 } else { i };
            text = text.replace(name, &number.to_string());
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_digit() || matches!(c, '*' | ',' | '-' | '/')))
        {
            return Err(format!(
                "{bad:?} in {:?} is not in Azure's cron (use numbers, *, lists, ranges and steps)",
                field
            ));
        }
        if index == 4 {
            let mut parts = Vec::new();
            for part in text.split(',') {
                if part == "7" {
                    parts.push("0".to_owned());
                } else if let Some(from) = part.strip_suffix("-7") {
                    // Sunday as 7 is not in every cron: `5-7` becomes `5-6,0`.
                    parts.push(format!("{from}-6"));
                    parts.push("0".to_owned());
                } else if part.contains("-7/") {
                    return Err(format!(
                        "{field:?} steps over a range ending at 7; write the days out"
                    ));
                } else {
                    parts.push(part.to_owned());
                }
            }
            text = parts.join(",");
        }
        out.push(text);
    }
    if out[2] != "*" && out[4] != "*" {
        return Err(
            "it sets both day-of-month and day-of-week, which cron dialects combine differently"
                .to_owned(),
        );
    }
    Ok(out.join(" "))
}

/// One change of native settings: one ARM request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeChange {
    /// `idleTimeBeforeShutdown` to `to` (ISO 8601).
    IdleShutdown { from: Option<String>, to: String },
    /// `schedules` replaced by `to`.
    Schedules {
        from: Vec<String>,
        to: Vec<NativeSchedule>,
    },
}

impl NativeChange {
    /// Which setting the change sets.
    pub fn kind(&self) -> NativeKind {
        match self {
            NativeChange::IdleShutdown { .. } => NativeKind::IdleShutdown,
            NativeChange::Schedules { .. } => NativeKind::Schedules,
        }
    }

    /// The audit action of the request.
    pub fn action(&self) -> Action {
        self.kind().into()
    }

    /// What the change sets, as text: equal for the same wanted settings (used to tell a
    /// change already sent from a new one).
    pub fn target(&self) -> String {
        match self {
            NativeChange::IdleShutdown { to, .. } => to.clone(),
            NativeChange::Schedules { to, .. } => {
                let list: Vec<String> = to.iter().map(ToString::to_string).collect();
                list.join("; ")
            }
        }
    }
}

impl fmt::Display for NativeChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NativeChange::IdleShutdown { from, to } => write!(
                f,
                "idle shutdown {} -> {to}",
                from.as_deref().unwrap_or("none")
            ),
            NativeChange::Schedules { from, to } => {
                let from = if from.is_empty() {
                    "none".to_owned()
                } else {
                    from.join("; ")
                };
                let to = if to.is_empty() {
                    "none".to_owned()
                } else {
                    self.target()
                };
                write!(f, "schedules [{from}] -> [{to}]")
            }
        }
    }
}

/// ISO 8601 form of an idle shutdown in whole minutes, as the Azure examples write it
/// (`PT120M`).
pub fn iso_minutes(d: Duration) -> String {
    format!("PT{}M", d.as_secs() / 60)
}

/// Reads ARM's `idleTimeBeforeShutdown` (`PT15M`, `PT120M`, `P1DT2H`): ISO 8601 with days
/// and time units only, days of 24 hours (years, months and weeks have no fixed length).
/// `None` for anything else: another form, a negative value, or more than a century (text
/// from ARM must not make an absurd duration).
fn parse_idle_shutdown(text: &str) -> Option<Duration> {
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

/// What must change for `observed` to match `policy` (empty: in line, or mode off).
pub fn drift(policy: &NativePolicy, observed: &NativeObserved) -> Vec<NativeChange> {
    let mut out = Vec::new();
    if policy.mode == NativeMode::Off {
        return out;
    }
    if let Some(want) = policy.idle_shutdown {
        let have = observed
            .idle_shutdown
            .as_deref()
            .and_then(parse_idle_shutdown);
        if have != Some(want) {
            out.push(NativeChange::IdleShutdown {
                from: observed.idle_shutdown.clone(),
                to: iso_minutes(want),
            });
        }
    }
    if let Some(want) = &policy.schedules {
        let mut have = observed.schedules.clone();
        have.sort();
        let mut wanted = want.clone();
        wanted.sort();
        let same = observed.other_schedules.is_empty()
            && have.len() == wanted.len()
            && have.iter().zip(&wanted).all(|(h, w)| {
                h.action == w.action
                    && h.cron == w.cron
                    && h.time_zone.eq_ignore_ascii_case(&w.time_zone)
            });
        if !same {
            let mut from: Vec<String> =
                observed.schedules.iter().map(ToString::to_string).collect();
            from.extend(observed.other_schedules.iter().cloned());
            out.push(NativeChange::Schedules {
                from,
                to: want.clone(),
            });
        }
    }
    out
}

/// What one pass does about an instance's native settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NativePlan {
    /// Every difference from policy (shown by `plan`, counted by the metric).
    pub drift: Vec<NativeChange>,
    /// The changes to send now (enforce mode, settled state, not already in flight).
    pub send: Vec<NativeChange>,
    /// Changes in flight that the observation now shows done.
    pub done: Vec<Action>,
    /// Changes in flight that had no visible effect within [`NATIVE_PENDING_EXPIRY`].
    pub expired: Vec<Action>,
}

/// Compare, and decide what to send: one request per change, none when nothing differs,
/// never a second one for a change still in flight. `pending` (the instance's memory) is
/// updated: finished and expired entries leave it, the changes to send join it. `settled`:
/// the instance is running or stopped (Azure refuses updates mid-operation).
pub fn plan_native(
    policy: &NativePolicy,
    observed: &NativeObserved,
    pending: &mut Vec<NativePending>,
    settled: bool,
    now: Timestamp,
) -> NativePlan {
    let drift = drift(policy, observed);
    let mut plan = NativePlan::default();
    let expiry = jiff::SignedDuration::try_from(NATIVE_PENDING_EXPIRY)
        .unwrap_or(jiff::SignedDuration::from_mins(10));
    pending.retain(|p| {
        let still = drift
            .iter()
            .any(|c| c.kind() == p.action && c.target() == p.target);
        if !still {
            plan.done.push(p.action.into());
            return false;
        }
        if now.duration_since(p.requested_at) >= expiry {
            plan.expired.push(p.action.into());
            return false;
        }
        true
    });
    if policy.mode == NativeMode::Enforce && settled {
        for change in &drift {
            let in_flight = pending
                .iter()
                .any(|p| p.action == change.kind() && p.target == change.target());
            if !in_flight {
                pending.push(NativePending {
                    action: change.kind(),
                    target: change.target(),
                    requested_at: now,
                });
                plan.send.push(change.clone());
            }
        }
    }
    plan.drift = drift;
    plan
}

#[cfg(test)]
mod tests;
