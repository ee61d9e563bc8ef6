//! A pass's decisions as rows for people and scripts (`lightsout plan`, `/v1/status`,
//! `simulate`). Pure.

use jiff::Timestamp;
use serde::Serialize;

use crate::engine::decide::{Decision, NextChange, Verdict};
use crate::engine::heartbeat::BusyReason;
use crate::engine::model::{AgentActivity, AgentUnknown, InstanceObservation};

/// One instance's decision, flattened for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanRow {
    pub workspace: String,
    pub instance: String,
    pub state: String,
    pub vm_size: String,
    pub policy: Option<String>,
    /// `act`, `skip`, `wait` or `none`.
    pub decision: &'static str,
    /// `start`, `stop` or `restart` when an action is planned or held back.
    pub action: Option<&'static str>,
    /// Why the action (`outside_window`, `idle`, …) or why nothing (`no_policy`, …).
    pub reason: &'static str,
    /// Why a due action is held back (`busy`, `held`, …).
    pub skip: Option<&'static str>,
    pub catch_up: bool,
    pub idle_seconds: Option<i64>,
    pub next: Option<NextChange>,
    /// How the instance's native settings differ from its policy's `[policy.native]`
    /// (mode report or enforce), one entry per change; empty when in line or unmanaged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub native_drift: Vec<String>,
    /// Who stopped a stopped instance last, when Azure says it was not a person:
    /// `idle_shutdown` or `schedule` (Azure's own settings at work).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<&'static str>,
    /// Why the instance's `lightsout-hold-until` cannot be read (such a hold holds: a due
    /// stop shows skip `invalid_hold`); absent when there is no tag or it reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_hold: Option<String>,
    /// What the on-instance agent's heartbeat said, when the policy counts the agent and
    /// the instance runs; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentView>,
}

/// The agent's view of one instance as `plan` and `/v1/status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentView {
    /// `seen`, or why unknown: `missing`, `stale`, `rejected`, `unreachable`.
    pub heartbeat: &'static str,
    /// The agent's verdict (only when seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<BusyReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<Timestamp>,
    /// When the agent observed (seen or stale).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_age_seconds: Option<i64>,
    /// A snooze in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snooze: Option<SnoozeView>,
}

/// A snooze in force, as the daemon honours it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnoozeView {
    /// Until when it holds: what was asked, bounded by the policy's `max_snooze`.
    pub until: Timestamp,
    /// What the user asked for.
    pub asked_until: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl AgentView {
    /// A view that knows nothing but why: `heartbeat` is `missing`, `stale`, `rejected` or
    /// `unreachable`.
    pub fn unknown(heartbeat: &'static str) -> AgentView {
        AgentView {
            heartbeat,
            busy: None,
            reasons: Vec::new(),
            last_activity: None,
            heartbeat_at: None,
            heartbeat_age_seconds: None,
            snooze: None,
        }
    }

    /// The view of `activity` at `now` under `max_snooze`; `None` when not observed.
    pub fn new(
        activity: &AgentActivity,
        max_snooze: std::time::Duration,
        now: Timestamp,
    ) -> Option<AgentView> {
        let unknown = AgentView::unknown;
        Some(match activity {
            AgentActivity::NotObserved => return None,
            AgentActivity::Unknown(why) => unknown(match why {
                AgentUnknown::Missing => "missing",
                AgentUnknown::Stale => "stale",
                AgentUnknown::Rejected => "rejected",
                AgentUnknown::Unreachable => "unreachable",
            }),
            AgentActivity::Seen(v) => AgentView {
                heartbeat: "seen",
                busy: Some(v.busy),
                reasons: v.reasons.clone(),
                last_activity: v.last_activity,
                heartbeat_at: Some(v.at),
                heartbeat_age_seconds: Some(now.duration_since(v.at).as_secs().max(0)),
                snooze: v.snooze.as_ref().and_then(|s| {
                    let until = s.effective_until(max_snooze);
                    (until > now).then(|| SnoozeView {
                        until,
                        asked_until: s.until,
                        reason: s
                            .reason
                            .as_deref()
                            .map(|r| crate::engine::text::display_text(r, 200)),
                        by: s
                            .by
                            .as_deref()
                            .map(|b| crate::engine::text::display_text(b, 64)),
                    })
                }),
            },
        })
    }

    /// A stale heartbeat's time (known to the reader, not to the decision).
    pub fn set_stale_at(&mut self, at: Timestamp, now: Timestamp) {
        self.heartbeat_at = Some(at);
        self.heartbeat_age_seconds = Some(now.duration_since(at).as_secs().max(0));
    }

    /// One line for `plan`'s text output: `busy (cpu, terminal_input), heartbeat 40s ago`,
    /// `idle since 09:12:00Z, heartbeat 20s ago`, `heartbeat missing`, `snoozed until …`.
    pub fn summary(&self) -> String {
        let mut out = match (self.heartbeat, self.busy) {
            ("seen", Some(true)) => {
                let reasons: Vec<&str> = self.reasons.iter().map(|r| r.as_str()).collect();
                format!("busy ({})", reasons.join(", "))
            }
            ("seen", _) => match self.last_activity {
                Some(t) => format!("idle since {t}"),
                None => "no activity since the agent started".to_owned(),
            },
            (why, _) => format!("heartbeat {why}"),
        };
        if let Some(age) = self.heartbeat_age_seconds {
            out.push_str(&format!(", heartbeat {} ago", short_duration(age)));
        }
        if let Some(s) = &self.snooze {
            out.push_str(&format!(", snoozed until {}", s.until));
            if let Some(by) = &s.by {
                out.push_str(&format!(" by {by}"));
            }
            if let Some(reason) = &s.reason {
                out.push_str(&format!(" ({reason})"));
            }
        }
        out
    }
}

impl PlanRow {
    /// The row for an observation and its decision.
    pub fn new(obs: &InstanceObservation, d: &Decision) -> PlanRow {
        let (decision, action, reason, skip, catch_up) = match d.verdict {
            Verdict::Act(p) => (
                "act",
                Some(p.action.as_str()),
                p.reason.as_str(),
                None,
                p.catch_up,
            ),
            Verdict::Skip { planned, why } => (
                "skip",
                Some(planned.action.as_str()),
                planned.reason.as_str(),
                Some(why.as_str()),
                planned.catch_up,
            ),
            Verdict::Wait => ("wait", None, "transitional", None, false),
            Verdict::Quiet { why } => (
                "none",
                None,
                match why {
                    crate::engine::decide::Quiet::Excluded => "excluded",
                    crate::engine::decide::Quiet::NoPolicy => "no_policy",
                    crate::engine::decide::Quiet::NothingDue => "nothing_due",
                },
                None,
                false,
            ),
        };
        PlanRow {
            workspace: obs.workspace.clone(),
            instance: obs.name.clone(),
            state: obs.state.to_string(),
            vm_size: obs.vm_size.clone(),
            policy: d.policy.clone(),
            decision,
            action,
            reason,
            skip,
            catch_up,
            idle_seconds: d.idle_for.map(|s| s.as_secs()),
            next: d.next,
            native_drift: Vec::new(),
            stopped_by: stopped_by(obs),
            invalid_hold: (!obs.excluded()).then(|| obs.invalid_hold()).flatten(),
            agent: None,
        }
    }
}

/// Azure's own idle shutdown or schedule, when it made the last stop of a stopped instance.
fn stopped_by(obs: &InstanceObservation) -> Option<&'static str> {
    use crate::engine::model::{OperationKind, OperationTrigger};
    let op = obs.last_operation.as_ref()?;
    if !obs.state.is_stopped() || op.kind != OperationKind::Stop || !op.succeeded {
        return None;
    }
    match op.trigger {
        OperationTrigger::IdleShutdown => Some("idle_shutdown"),
        OperationTrigger::Schedule => Some("schedule"),
        _ => None,
    }
}

/// Human duration, e.g. `1h05m`, `12m`, `40s`.
pub fn short_duration(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A `next` cell: `down at 2026-03-27T18:00:00Z`.
pub fn next_cell(next: Option<&NextChange>, _now: Timestamp) -> String {
    next.map_or_else(|| "-".to_owned(), |n| format!("{} at {}", n.what, n.at))
}
