//! The audit log's vocabulary: an intent about to be acted on, a record of it, its id and
//! where it stands. Plain data: the pass plans intents and closes records
//! (`engine::pass`); `daemon::store` keeps them in SQLite.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::engine::heartbeat::Snooze;
use crate::engine::model::{
    Action, AgentActivity, AgentUnknown, InstanceKey, InstanceObservation, JupyterActivity, Reason,
};
use crate::engine::text::display_text;

/// Id of an audit record: assigned by the store, strictly increasing, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AuditId(pub i64);

impl fmt::Display for AuditId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

crate::engine::text_enum::text_enum! {
    what = "outcome";
    /// Where an audit record stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Outcome {
        /// Recorded before the request was sent; the operation has not ended (or the daemon
        /// stopped before it learned the end). `request_id` is set once Azure accepted it.
        Pending = "pending",
        /// The operation ended successfully.
        Succeeded = "succeeded",
        /// The request or the operation failed (`error` says why).
        Failed = "failed",
        /// Azure refused the request (a 4xx such as 400 or 409, or an accepted operation that
        /// ended saying the instance was in the wrong state): nothing was done.
        Refused = "refused",
        /// Azure accepted the request but lightsout could not follow the operation (its poll URL
        /// was refused: another host, plain http, too long). Final for the audit log; the
        /// instance's observed state tells whether it took effect, and it is never sent again
        /// blindly.
        Unknown = "unknown",
        /// The transition was missed by more than `catch_up` and deliberately not acted on.
        Missed = "missed",
        /// Decided during a dry run; nothing was sent.
        DryRun = "dry_run",
    }
}

impl Outcome {
    /// Every outcome but `pending` is final.
    pub fn is_final(self) -> bool {
        self != Outcome::Pending
    }
}

/// An action about to be taken (or recorded as missed), as the audit log describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// When the request is sent (or, for a missed transition, when that was noticed).
    pub at: Timestamp,
    /// Workspace alias from the config.
    pub workspace: String,
    pub instance: String,
    pub action: Action,
    pub reason: Reason,
    /// Name of the policy that decided it.
    pub policy: String,
    /// Acted on late, after downtime, within `catch_up`.
    pub catch_up: bool,
    /// Decided during a dry run: recorded with outcome `dry_run`, never `pending`.
    pub dry_run: bool,
    /// The evidence the decision rested on (see [`evidence`], [`snooze_detail`]).
    pub detail: Option<String>,
}

impl Intent {
    /// The instance this intent is about.
    pub fn key(&self) -> InstanceKey {
        InstanceKey::new(&self.workspace, &self.instance)
    }
}

/// One row of the audit log. Serialises as the record `lightsout audit --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub id: AuditId,
    /// When the request was sent (UTC).
    pub at: Timestamp,
    pub workspace: String,
    pub instance: String,
    pub action: Action,
    /// snake_case reason (`outside_window`, `idle`, …), kept as text so that a record
    /// written by a newer version still reads.
    pub reason: String,
    pub policy: String,
    pub catch_up: bool,
    pub outcome: Outcome,
    /// Why it failed or was refused; free of secrets (the caller's duty).
    pub error: Option<String>,
    pub dry_run: bool,
    /// Azure's request id (`x-ms-request-id`) once the request was answered.
    pub request_id: Option<String>,
    /// When the outcome became final.
    pub finished_at: Option<Timestamp>,
    /// The evidence the decision rested on: the agent's (and Jupyter's) view for an action,
    /// a snooze's terms for a `snooze` row. Contains user text, escaped and bounded.
    pub detail: Option<String>,
}

/// What the agent's heartbeat and the Jupyter server said of `obs` at `now`, for the
/// `detail` of an action decided on it: `agent: idle since … (heartbeat …, 40s old)`,
/// `agent: unknown (stale heartbeat)`; `None` when neither signal was observed.
pub fn evidence(obs: &InstanceObservation, now: Timestamp) -> Option<String> {
    let mut parts = Vec::new();
    match &obs.agent {
        AgentActivity::NotObserved => {}
        AgentActivity::Unknown(why) => parts.push(format!(
            "agent: unknown ({})",
            match why {
                AgentUnknown::Missing => "no heartbeat",
                AgentUnknown::Stale => "stale heartbeat",
                AgentUnknown::Rejected => "heartbeat rejected",
                AgentUnknown::Unreachable => "storage unreachable",
            }
        )),
        AgentActivity::Seen(v) => {
            let view = if v.busy {
                let reasons: Vec<&str> = v.reasons.iter().map(|r| r.as_str()).collect();
                format!("busy ({})", reasons.join(", "))
            } else {
                match v.last_activity {
                    Some(t) => format!("idle since {t}"),
                    None => "no activity since the agent started".to_owned(),
                }
            };
            let age = now.duration_since(v.at).as_secs().max(0);
            parts.push(format!(
                "agent: {view} (heartbeat {}, {} old)",
                v.at,
                crate::engine::plan::short_duration(age)
            ));
        }
    }
    match &obs.jupyter {
        JupyterActivity::NotObserved => {}
        JupyterActivity::Unavailable => parts.push("jupyter: unavailable".to_owned()),
        JupyterActivity::Seen {
            last_activity,
            kernel_busy,
        } => parts.push(match (kernel_busy, last_activity) {
            (true, _) => "jupyter: kernel busy".to_owned(),
            (false, Some(t)) => format!("jupyter: idle since {t}"),
            (false, None) => "jupyter: no activity".to_owned(),
        }),
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The `detail` of a `snooze` row: `until <effective> (asked until <asked>, max_snooze <d>)
/// by <user>: <reason>`. The user's name and reason are escaped and bounded.
pub fn snooze_detail(snooze: &Snooze, max_snooze: Duration) -> String {
    let mut out = format!(
        "until {} (asked until {}, max_snooze {})",
        snooze.effective_until(max_snooze),
        snooze.until,
        humantime::format_duration(max_snooze)
    );
    if let Some(by) = &snooze.by {
        out.push_str(&format!(" by {}", display_text(by, 64)));
    }
    if let Some(reason) = &snooze.reason {
        out.push_str(&format!(": {}", display_text(reason, 200)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::heartbeat::{BusyReason, VERDICT_VERSION, Verdict};
    use crate::engine::model::InstanceState;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn obs(agent: AgentActivity, jupyter: JupyterActivity) -> InstanceObservation {
        InstanceObservation {
            workspace: "research".into(),
            name: "ci-alice".into(),
            state: InstanceState::Running,
            vm_size: "Standard_DS3_v2".into(),
            tags: Default::default(),
            last_operation: None,
            jupyter,
            agent,
            native: Default::default(),
        }
    }

    fn verdict(busy: bool) -> Verdict {
        Verdict {
            v: VERDICT_VERSION,
            instance: "ci-alice".into(),
            at: ts("2026-12-07T10:01:00Z"),
            busy,
            reasons: if busy {
                vec![BusyReason::Cpu]
            } else {
                Vec::new()
            },
            last_activity: Some(ts("2026-12-07T09:12:00Z")),
            interval_secs: 60,
            snooze: None,
        }
    }

    #[test]
    fn evidence_names_what_the_agent_and_jupyter_saw() {
        let now = ts("2026-12-07T10:01:40Z");
        let none = JupyterActivity::NotObserved;
        let idle = obs(AgentActivity::Seen(verdict(false)), none);
        assert_eq!(
            evidence(&idle, now).as_deref(),
            Some(
                "agent: idle since 2026-12-07T09:12:00Z (heartbeat 2026-12-07T10:01:00Z, 40s old)"
            )
        );
        let busy = obs(AgentActivity::Seen(verdict(true)), none);
        assert_eq!(
            evidence(&busy, now).as_deref(),
            Some("agent: busy (cpu) (heartbeat 2026-12-07T10:01:00Z, 40s old)")
        );
        let stale = obs(AgentActivity::Unknown(AgentUnknown::Stale), none);
        assert_eq!(
            evidence(&stale, now).as_deref(),
            Some("agent: unknown (stale heartbeat)")
        );
        let both = obs(
            AgentActivity::Unknown(AgentUnknown::Missing),
            JupyterActivity::Seen {
                last_activity: Some(ts("2026-12-07T08:00:00Z")),
                kernel_busy: false,
            },
        );
        assert_eq!(
            evidence(&both, now).as_deref(),
            Some("agent: unknown (no heartbeat); jupyter: idle since 2026-12-07T08:00:00Z")
        );
        assert_eq!(evidence(&obs(AgentActivity::NotObserved, none), now), None);
    }

    #[test]
    fn a_snooze_detail_says_its_bound_and_escapes_the_users_text() {
        let snooze = Snooze {
            at: ts("2026-12-07T09:00:00Z"),
            until: ts("2026-12-08T09:00:00Z"),
            reason: Some("training\x1b[31m run".into()),
            by: Some("azureuser".into()),
        };
        assert_eq!(
            snooze_detail(&snooze, Duration::from_secs(12 * 3600)),
            "until 2026-12-07T21:00:00Z (asked until 2026-12-08T09:00:00Z, max_snooze 12h) \
             by azureuser: training\\u{1b}[31m run"
        );
        let anonymous = Snooze {
            reason: None,
            by: None,
            ..snooze
        };
        assert_eq!(
            snooze_detail(&anonymous, Duration::from_secs(48 * 3600)),
            "until 2026-12-08T09:00:00Z (asked until 2026-12-08T09:00:00Z, max_snooze 2days)"
        );
    }
}
