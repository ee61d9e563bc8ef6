//! The vocabulary of native settings: what a policy wants of them, what an instance carries,
//! and what lightsout has sent and not yet seen.
//!
//! Plain data, below `model`, `policy` and `memory`, which hold these values; the planner
//! that compares and translates them is the parent module (`native`).

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// `[policy.native] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NativeMode {
    /// Native settings are not looked at.
    #[default]
    Off,
    /// Differences are recorded (log, metric, `plan`), nothing is changed.
    Report,
    /// Differences are fixed through the ARM update calls.
    Enforce,
}

impl NativeMode {
    /// Parse `off`, `report` or `enforce`.
    pub fn parse(s: &str) -> Option<NativeMode> {
        match s {
            "off" => Some(NativeMode::Off),
            "report" => Some(NativeMode::Report),
            "enforce" => Some(NativeMode::Enforce),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            NativeMode::Off => "off",
            NativeMode::Report => "report",
            NativeMode::Enforce => "enforce",
        }
    }
}

/// `[policy.native]`, validated: what a governed instance's native settings should be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NativePolicy {
    pub mode: NativeMode,
    /// Wanted `idleTimeBeforeShutdown`, within Azure's bounds and whole minutes; `None`:
    /// the instance's own setting is left alone.
    pub idle_shutdown: Option<Duration>,
    /// Wanted start/stop schedules (`schedules = "mirror"`), already translated; `None`: the
    /// instance's schedules are left alone.
    pub schedules: Option<Vec<NativeSchedule>>,
}

/// A schedule's power action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PowerAction {
    Start,
    Stop,
}

impl PowerAction {
    /// Azure's spelling (`Start`, `Stop`).
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::Start => "Start",
            PowerAction::Stop => "Stop",
        }
    }

    /// Parse Azure's spelling, case-insensitively.
    pub fn parse(s: &str) -> Option<PowerAction> {
        if s.eq_ignore_ascii_case("start") {
            Some(PowerAction::Start)
        } else if s.eq_ignore_ascii_case("stop") {
            Some(PowerAction::Stop)
        } else {
            None
        }
    }
}

/// One enabled Azure start/stop schedule with a cron trigger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NativeSchedule {
    pub action: PowerAction,
    /// Five fields, numbers only (`0 19 * * 1-5`), single spaces.
    pub cron: String,
    /// Windows time zone name (`Romance Standard Time`).
    pub time_zone: String,
}

impl fmt::Display for NativeSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at \"{}\" ({})",
            self.action.as_str().to_ascii_lowercase(),
            self.cron,
            self.time_zone
        )
    }
}

/// What an instance's native settings are, as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NativeObserved {
    /// `idleTimeBeforeShutdown` as Azure reports it (ISO 8601, e.g. `PT60M`).
    pub idle_shutdown: Option<String>,
    /// Enabled cron schedules.
    pub schedules: Vec<NativeSchedule>,
    /// Other schedules (recurrence triggers, disabled ones), described for display.
    pub other_schedules: Vec<String>,
}

/// Which native setting a change sets; the native half of `model::Action` (stored with the
/// same spelling, so a memory written before this type existed reads back the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NativeKind {
    /// `idleTimeBeforeShutdown`.
    IdleShutdown,
    /// The start/stop schedules.
    Schedules,
}

/// A change of native settings in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativePending {
    /// `idle_shutdown` or `schedules` (the field keeps its stored name).
    pub action: NativeKind,
    /// What the change sets (`NativeChange::target`).
    pub target: String,
    /// When the intent was recorded.
    pub requested_at: Timestamp,
}

/// Normalise an observed cron expression: single spaces.
pub fn normalise_cron(expr: &str) -> String {
    expr.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memories stored while the field was a `model::Action` read back unchanged.
    #[test]
    fn native_pending_keeps_its_stored_spelling() {
        let stored =
            r#"{"action":"idle_shutdown","target":"PT60M","requested_at":"2026-01-05T10:00:00Z"}"#;
        let p: NativePending = serde_json::from_str(stored).unwrap();
        assert_eq!(p.action, NativeKind::IdleShutdown);
        assert_eq!(serde_json::to_string(&p).unwrap(), stored);
        let s: NativeKind = serde_json::from_str(r#""schedules""#).unwrap();
        assert_eq!(s, NativeKind::Schedules);
    }
}
