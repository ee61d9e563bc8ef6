//! Policies as the engine uses them: which instances they govern and what they want.
//!
//! Pure data and matching. Built from the config by `config::validate`; read by `decide`.

use std::collections::BTreeMap;
use std::time::Duration;

use globset::GlobMatcher;

use crate::engine::schedule::{CronExpr, EventAction, Schedule};

/// Whether instances are started when a window opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// lightsout only stops; people start their instances.
    Never,
    /// Stopped instances are started when a window opens.
    Window,
}

/// How the schedule is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// Act when the desired state changes, once; people may override until the next change.
    Transition,
    /// Keep the desired state: stop whatever runs outside a window at every pass.
    Always,
}

/// Which activity sources count as use of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signals {
    /// ARM state `JobRunning`.
    pub arm: bool,
    /// Jupyter Server kernels and `last_activity`.
    pub jupyter: bool,
    /// The on-instance agent's heartbeat (`lightsout agent`).
    pub agent: bool,
}

impl Signals {
    /// The default, also for a policy without `[policy.idle]`: ARM's `JobRunning`, which
    /// every instance reports. Jupyter is an opt-in: on real Azure a personal instance's
    /// applications open to its assigned user only, so the daemon's identity is refused
    /// there (Microsoft's reference for `applicationSharingPolicy`; CONTRACT section 0).
    pub const DEFAULT: Signals = Signals {
        arm: true,
        jupyter: false,
        agent: false,
    };

    /// The default of a policy that does not name its signals: [`Signals::DEFAULT`], and
    /// the agent too when `[agent]` is configured (the agent sees interactive use).
    pub const fn default_with(agent: bool) -> Signals {
        Signals {
            arm: true,
            jupyter: false,
            agent,
        }
    }
}

crate::engine::text_enum::text_enum! {
    what = "unknown_activity value";
    /// What a stop does when a configured activity signal cannot be read.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum UnknownActivity {
        /// Schedule, event and max-uptime stops go ahead; what lightsout does know (a running
        /// job, a hold) still blocks them. An idle stop needs a known idle time either way.
        #[default]
        Proceed = "proceed",
        /// Every stop waits until the signal can be read again (skip `activity_unknown`).
        Hold = "hold",
    }
}

/// `[policy.idle]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleRule {
    /// Stop a running instance idle this long; `None`: no idle stop (max_uptime only).
    pub timeout: Option<Duration>,
    /// Never stop within this long after the instance started.
    pub min_uptime: Duration,
    /// Stop after this long running even if active, unless busy.
    pub max_uptime: Option<Duration>,
    pub signals: Signals,
    /// `signals` was written out: the user said these sources tell use from idleness (ARM
    /// alone on job-only instances).
    pub signals_named: bool,
}

/// A cron event: an action at cron times in the policy's time zone.
#[derive(Debug, Clone)]
pub struct Event {
    pub cron: CronExpr,
    pub action: EventAction,
}

/// One `[[policy]]`, validated.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    /// Workspace aliases; `None`: every workspace.
    pub workspaces: Option<Vec<String>>,
    /// Instance-name globs; empty: every instance.
    pub instances: Vec<GlobMatcher>,
    /// Tags that must all be present with these values.
    pub tags: BTreeMap<String, String>,
    pub schedule: Schedule,
    pub start: StartMode,
    pub enforcement: Enforcement,
    /// A transition missed by at most this much is still acted on.
    pub catch_up: Duration,
    /// What a stop does when a configured signal cannot be read.
    pub unknown_activity: UnknownActivity,
    /// The longest snooze honoured, counted from when it was asked on the instance.
    pub max_snooze: Duration,
    /// The signals of a policy without `[policy.idle]` (with the agent when `[agent]` is set).
    pub default_signals: Signals,
    pub idle: Option<IdleRule>,
    pub events: Vec<Event>,
    /// `[policy.native]`: what the instances' own idle shutdown and schedules should be.
    pub native: crate::engine::native::types::NativePolicy,
}

/// Default `catch_up` when a policy does not set one.
pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(2 * 3600);
/// Default `max_snooze`: a working day, so a forgotten snooze ends by the next morning.
pub const DEFAULT_MAX_SNOOZE: Duration = Duration::from_secs(12 * 3600);
/// Longest `max_snooze` accepted.
pub const MAX_MAX_SNOOZE: Duration = Duration::from_secs(7 * 86_400);

impl Policy {
    /// The activity sources that make an instance busy (and, for the idle rule, active).
    pub fn signals(&self) -> Signals {
        self.idle
            .as_ref()
            .map_or(self.default_signals, |rule| rule.signals)
    }

    /// Whether the policy can tell an idle instance from one in use: with Jupyter or the
    /// agent as a signal, or with sources the user named (`signals = ["arm"]` on job-only
    /// instances). ARM by default sees jobs only, so there idle time is unknown, not "since
    /// the last job".
    pub fn sees_idleness(&self) -> bool {
        let signals = self.signals();
        signals.jupyter || signals.agent || self.idle.as_ref().is_some_and(|r| r.signals_named)
    }

    /// Whether this policy governs an instance with this workspace alias, name and tags.
    pub fn matches(
        &self,
        workspace: &str,
        instance: &str,
        tags: &BTreeMap<String, String>,
    ) -> bool {
        self.matches_candidate(workspace, &globset::Candidate::new(instance), tags)
    }

    /// [`Policy::matches`] with the instance name prepared once for many policies.
    pub fn matches_candidate(
        &self,
        workspace: &str,
        instance: &globset::Candidate<'_>,
        tags: &BTreeMap<String, String>,
    ) -> bool {
        if let Some(ws) = &self.workspaces
            && !ws.iter().any(|w| w == workspace)
        {
            return false;
        }
        if !self.instances.is_empty()
            && !self
                .instances
                .iter()
                .any(|g| g.is_match_candidate(instance))
        {
            return false;
        }
        self.matches_except_name(workspace, tags)
    }

    /// The workspace and tag conditions only (the name is matched elsewhere).
    pub fn matches_except_name(&self, workspace: &str, tags: &BTreeMap<String, String>) -> bool {
        if let Some(ws) = &self.workspaces
            && !ws.iter().any(|w| w == workspace)
        {
            return false;
        }
        self.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }
}

/// The first policy that governs the instance, as CONTRACT section 2 says.
pub fn select<'a>(
    policies: &'a [Policy],
    workspace: &str,
    instance: &str,
    tags: &BTreeMap<String, String>,
) -> Option<&'a Policy> {
    policies
        .iter()
        .find(|p| p.matches(workspace, instance, tags))
}
