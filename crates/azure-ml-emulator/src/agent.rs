//! The agent view: what an on-instance agent (lightsout's `agent`) would report of an
//! emulated instance at `now`, as a pure function of its scripted and hand-made activity.
//!
//! No storage and no heartbeat here: a simulation or the demo asks for the view in process
//! and hands it to the daemon as if a fresh heartbeat had said it. Unlike Azure's own idle
//! shutdown ([`crate::fleet::ActivityKind::counts_natively`]), the agent sees every kind:
//! it reads kernels by `execution_state`, terminal and SSH input by tty times, GPUs
//! through NVML and VS Code by its server's processes (AGENT.md section 5.2).

use jiff::Timestamp;

use crate::fleet::ActivityKind;
use crate::machine::{Machine, State};

/// Why the agent calls an instance busy. The names are those of lightsout's heartbeat
/// (`engine::heartbeat::BusyReason`); the emulator states them itself (it does not depend
/// on lightsout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentReason {
    /// A Jupyter kernel is busy (a silent cell included).
    KernelBusy,
    /// Fresh input on a terminal: a Jupyter terminal, SSH, a tmux pane.
    TerminalInput,
    /// A GPU computes.
    Gpu,
    /// A VS Code window is connected.
    Vscode,
    /// An Azure ML job runs.
    Job,
}

impl AgentReason {
    /// The reason's name in a heartbeat (`kernel_busy`, `terminal_input`, `gpu`, `vscode`,
    /// `job`).
    pub fn name(self) -> &'static str {
        match self {
            AgentReason::KernelBusy => "kernel_busy",
            AgentReason::TerminalInput => "terminal_input",
            AgentReason::Gpu => "gpu",
            AgentReason::Vscode => "vscode",
            AgentReason::Job => "job",
        }
    }

    /// What the agent sees of a scripted activity kind.
    pub fn of(kind: ActivityKind) -> AgentReason {
        match kind {
            ActivityKind::Job => AgentReason::Job,
            ActivityKind::Kernel | ActivityKind::SilentKernel => AgentReason::KernelBusy,
            ActivityKind::GpuBusy => AgentReason::Gpu,
            ActivityKind::TerminalInput | ActivityKind::Ssh => AgentReason::TerminalInput,
            ActivityKind::VscodeConnected => AgentReason::Vscode,
        }
    }
}

/// What the agent on one instance would report at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentView {
    /// When it looked.
    pub at: Timestamp,
    /// Some activity is going on now.
    pub busy: bool,
    /// Which (sorted, no duplicates; empty when not busy).
    pub reasons: Vec<AgentReason>,
    /// The last moment of any activity since the instance started; `None`: none since then
    /// (the agent starts with the instance and knows nothing earlier).
    pub last_activity: Option<Timestamp>,
}

/// The agent's view of `m` at `now`; `None` when the instance is not running (no agent runs,
/// so no heartbeat is written).
pub fn view(m: &Machine, now: Timestamp) -> Option<AgentView> {
    if m.state != State::Running {
        return None;
    }
    let since = m.started_at.unwrap_or(now);
    let mut reasons = Vec::new();
    let mut last: Option<Timestamp> = None;
    let mut saw = |t: Timestamp| {
        if t > since {
            last = Some(last.map_or(t, |l| l.max(t)));
        }
    };
    for a in &m.script {
        if a.from > now || a.to <= since {
            continue;
        }
        if now < a.to {
            reasons.push(AgentReason::of(a.kind));
            saw(now);
        } else {
            saw(a.to);
        }
    }
    if m.manual_job {
        reasons.push(AgentReason::Job);
        saw(now);
    }
    for k in &m.kernels {
        if k.busy {
            reasons.push(AgentReason::KernelBusy);
            saw(now);
        } else {
            saw(k.last_activity);
        }
    }
    // A touch through the control API is Jupyter use after the start.
    saw(m.last_activity.min(now));
    reasons.sort();
    reasons.dedup();
    Some(AgentView {
        at: now,
        busy: !reasons.is_empty(),
        reasons,
        last_activity: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Activity;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn window(kind: ActivityKind, from: &str, to: &str) -> Activity {
        Activity {
            kind,
            from: t(from),
            to: t(to),
            start: false,
        }
    }

    /// A tmux training over SSH: typing for ten minutes, then the GPU for three hours.
    fn tmux_training() -> Machine {
        let mut m = Machine::new(State::Running, t("2026-03-26T09:00:00Z"), None);
        m.script = vec![
            window(
                ActivityKind::Ssh,
                "2026-03-26T10:00:00Z",
                "2026-03-26T10:10:00Z",
            ),
            window(
                ActivityKind::GpuBusy,
                "2026-03-26T10:05:00Z",
                "2026-03-26T13:05:00Z",
            ),
        ];
        m
    }

    #[test]
    fn the_agent_sees_the_ssh_session_then_the_gpu() {
        let m = tmux_training();
        let v = view(&m, t("2026-03-26T10:07:00Z")).unwrap();
        assert!(v.busy);
        assert_eq!(v.reasons, [AgentReason::TerminalInput, AgentReason::Gpu]);
        assert_eq!(v.last_activity, Some(t("2026-03-26T10:07:00Z")));
        let v = view(&m, t("2026-03-26T12:00:00Z")).unwrap();
        assert_eq!(v.reasons, [AgentReason::Gpu]);
        let v = view(&m, t("2026-03-26T14:00:00Z")).unwrap();
        assert!(!v.busy);
        assert!(v.reasons.is_empty());
        assert_eq!(v.last_activity, Some(t("2026-03-26T13:05:00Z")));
    }

    #[test]
    fn before_any_activity_the_agent_knows_none_and_a_stopped_instance_has_no_agent() {
        let m = tmux_training();
        let v = view(&m, t("2026-03-26T09:30:00Z")).unwrap();
        assert_eq!((v.busy, v.last_activity), (false, None));
        let stopped = Machine::new(State::Stopped, t("2026-03-26T09:00:00Z"), None);
        assert_eq!(view(&stopped, t("2026-03-26T10:07:00Z")), None);
    }

    #[test]
    fn native_idle_shutdown_does_not_see_the_tmux_training_but_sees_vscode() {
        let mut m = tmux_training();
        // Last native-visible activity: the start at 09:00. Idle 30 minutes: due at 09:30.
        assert_eq!(
            m.idle_deadline(std::time::Duration::from_secs(1800)),
            Some(t("2026-03-26T09:30:00Z"))
        );
        m.script.push(window(
            ActivityKind::VscodeConnected,
            "2026-03-26T09:10:00Z",
            "2026-03-26T12:00:00Z",
        ));
        assert_eq!(
            m.idle_deadline(std::time::Duration::from_secs(1800)),
            Some(t("2026-03-26T12:30:00Z"))
        );
    }

    #[test]
    fn a_silent_cell_is_a_busy_kernel_whose_activity_is_frozen() {
        let mut m = Machine::new(State::Running, t("2026-03-26T09:00:00Z"), None);
        m.script = vec![window(
            ActivityKind::SilentKernel,
            "2026-03-26T09:20:00Z",
            "2026-03-26T12:00:00Z",
        )];
        let now = t("2026-03-26T11:00:00Z");
        let ks = m.kernels_at(now);
        assert_eq!(ks.len(), 1);
        assert!(ks[0].busy && ks[0].silent);
        assert_eq!(ks[0].last_activity, t("2026-03-26T09:20:00Z"));
        // Jupyter's server-wide activity does not move, so native idle counts from the start.
        assert_eq!(m.last_activity_at(now), t("2026-03-26T09:00:00Z"));
        assert_eq!(
            m.idle_deadline(std::time::Duration::from_secs(3600)),
            Some(t("2026-03-26T10:00:00Z"))
        );
        assert_eq!(view(&m, now).unwrap().reasons, [AgentReason::KernelBusy]);
    }

    #[test]
    fn every_kind_has_a_reason_and_a_name() {
        for k in ActivityKind::ALL {
            assert_eq!(ActivityKind::parse(k.name()), Some(k));
            assert!(!AgentReason::of(k).name().is_empty());
        }
        assert!(!ActivityKind::Ssh.counts_natively());
        assert!(!ActivityKind::GpuBusy.counts_natively());
        assert!(!ActivityKind::SilentKernel.counts_natively());
        assert!(ActivityKind::TerminalInput.counts_natively());
        assert!(ActivityKind::VscodeConnected.counts_natively());
    }
}
