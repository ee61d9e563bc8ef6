//! The decision: given the policies, what is observed of an instance, what lightsout
//! remembers of it and the time now, what should happen and why.
//!
//! Pure: no I/O, no clock. `now` is an argument; the same inputs always give the same
//! decision. Rules (CONTRACT section 3): busy wins; transitional states wait; a
//! transition is acted on once, within `catch_up`; idle time counts from the latest of the
//! last successful start, the last activity seen and the end of a hold.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::engine::memory::{InstanceMemory, Pending};
use crate::engine::model::{
    Action, AgentActivity, InstanceObservation, JupyterActivity, OperationKind, OperationTrigger,
    Reason,
};
use crate::engine::policy::{Enforcement, Policy, Signals, StartMode, UnknownActivity};
use crate::engine::schedule::{Desired, EventAction, Transition};

crate::engine::text_enum::text_enum! {
    what = "skip reason";
    /// Why something that was due is not done now.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum SkipReason {
        /// A job, a busy kernel or the agent's busy verdict: never stopped. Carried out once
        /// no longer busy, if still due.
        Busy = "busy",
        /// Starting, stopping, creating…: the decision waits for a settled state.
        Transitional = "transitional",
        /// `lightsout-hold-until` is in the future.
        Held = "held",
        /// `lightsout-hold-until` is set but cannot be read: held (fail closed) until fixed.
        InvalidHold = "invalid_hold",
        /// A snooze asked on the instance (`lightsout snooze`) is in force, within the
        /// policy's `max_snooze`.
        Snoozed = "snoozed",
        /// Started less than `min_uptime` ago; carried out later if still due.
        MinUptime = "min_uptime",
        /// lightsout's own request for this instance is still in flight.
        Pending = "pending",
        /// The transition or event was missed by more than `catch_up` (daemon was down).
        Missed = "missed",
        /// The Jupyter or agent signal is configured but could not be read: idle time is
        /// unknown.
        ActivityUnknown = "activity_unknown",
        /// Decided but not acted on: dry run.
        DryRun = "dry_run",
        /// A previous operation failed; waiting before trying again.
        Backoff = "backoff",
        /// Operations failed repeatedly; given up until the instance changes.
        GaveUp = "gave_up",
    }
}

/// An action and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Planned {
    pub action: Action,
    pub reason: Reason,
    /// Acted on late, after downtime, within `catch_up`.
    pub catch_up: bool,
}

/// Why nothing is due for an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quiet {
    /// The `lightsout = "off"` tag.
    Excluded,
    /// No policy matches the instance.
    NoPolicy,
    /// Nothing is due.
    NothingDue,
}

/// What to do about one instance now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Act(Planned),
    Skip {
        #[serde(flatten)]
        planned: Planned,
        why: SkipReason,
    },
    /// A transitional state: nothing is considered.
    Wait,
    Quiet {
        why: Quiet,
    },
}

/// The decision for one instance, with what the engine worked out on the way.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Name of the governing policy.
    pub policy: Option<String>,
    pub verdict: Verdict,
    /// Idle time, when the instance runs and has an idle rule or signals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_for: Option<SignedDuration>,
    /// The next schedule change or cron event of the policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<NextChange>,
    /// Memory to keep for the instance if this decision is carried out (the intent of an
    /// action is recorded with it, before the request is sent).
    #[serde(skip)]
    pub memory: InstanceMemory,
}

/// The next thing a policy's calendar will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NextChange {
    pub at: Timestamp,
    /// `up`/`down` for a schedule change, the event's action for a cron event.
    pub what: &'static str,
}

/// Gap after a transition beyond which acting on it counts as catching up. The daemon
/// wakes within a second of a boundary; a poll interval late means it was not running.
pub const CATCH_UP_MARK: Duration = Duration::from_secs(60);

/// A request in flight is given up on (and may be planned again) after this long.
pub const PENDING_EXPIRY: Duration = Duration::from_secs(30 * 60);

fn span(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// Whether the observation shows the effect of our pending request.
pub fn pending_done(p: &Pending, obs: &InstanceObservation) -> bool {
    match p.action {
        Action::Stop => obs.state.is_stopped(),
        Action::Start => obs.state.is_running(),
        // A restart passes through Restarting; Running again with a newer lastOperation.
        Action::Restart => {
            obs.state.is_running()
                && obs.last_operation.as_ref().is_some_and(|op| {
                    // A minute of slack for clock skew between Azure and us.
                    op.kind == OperationKind::Restart
                        && op.at >= p.requested_at - SignedDuration::from_mins(1)
                })
        }
        // Native changes are never the power `pending`; their effect is seen as no drift.
        Action::IdleShutdown | Action::Schedules => true,
    }
}

/// Whether our pending request has had no visible effect for too long.
pub fn pending_expired(p: &Pending, now: Timestamp) -> bool {
    now.duration_since(p.requested_at) > span(PENDING_EXPIRY)
}

fn busy(obs: &InstanceObservation, signals: Signals) -> bool {
    obs.state == crate::engine::model::InstanceState::JobRunning
        || (signals.jupyter
            && matches!(
                obs.jupyter,
                JupyterActivity::Seen {
                    kernel_busy: true,
                    ..
                }
            ))
        || (signals.agent && matches!(&obs.agent, AgentActivity::Seen(v) if v.busy))
}

/// Whether a configured activity signal could not be read this pass (Jupyter unavailable,
/// or the agent's heartbeat missing, stale, rejected or unreachable).
fn activity_unknown(obs: &InstanceObservation, signals: Signals) -> bool {
    (signals.jupyter && obs.jupyter == JupyterActivity::Unavailable)
        || (signals.agent && matches!(obs.agent, AgentActivity::Unknown(_)))
}

/// Until when a snooze asked on the instance holds it, when one is in force at `now`
/// (bounded by the policy's `max_snooze` from the moment it was asked).
pub fn snoozed_until(
    policy: &Policy,
    obs: &InstanceObservation,
    now: Timestamp,
) -> Option<Timestamp> {
    if !policy.signals().agent {
        return None;
    }
    let AgentActivity::Seen(v) = &obs.agent else {
        return None;
    };
    let until = v.snooze.as_ref()?.effective_until(policy.max_snooze);
    (until > now).then_some(until)
}

/// When the current run began: Azure's last successful start/restart/create, else the
/// first sighting of this run.
fn running_since(obs: &InstanceObservation, mem: &InstanceMemory) -> Option<Timestamp> {
    let from_azure = obs.last_operation.as_ref().and_then(|op| {
        let starts = matches!(
            op.kind,
            OperationKind::Start | OperationKind::Restart | OperationKind::Create
        );
        (starts && op.succeeded).then_some(op.at)
    });
    from_azure.or(mem.running_since_seen)
}

/// Whether someone (a user, a native schedule) acted on the instance after `t`: a
/// transition before that is answered and must not be acted on again.
fn superseded(obs: &InstanceObservation, t: Timestamp, mem: &InstanceMemory) -> bool {
    obs.last_operation.as_ref().is_some_and(|op| {
        let ours = mem
            .pending
            .as_ref()
            .is_some_and(|p| op.at >= p.requested_at)
            // Our own request that failed: not a person's override (it did not succeed).
            || (!op.succeeded && mem.failed_request_at.is_some_and(|r| op.at >= r));
        op.at > t && !ours && !matches!(op.trigger, OperationTrigger::Other(_))
    })
}

/// What a policy's calendar says at one instant: the same for every instance it governs,
/// so it is worked out once per pass.
#[derive(Debug, Clone)]
struct Calendar {
    desired: Option<Desired>,
    previous: Option<Transition>,
    next: Option<NextChange>,
    /// Cron firings within `catch_up` before now, ascending.
    recent_events: Vec<(Timestamp, EventAction)>,
}

impl Calendar {
    fn at(policy: &Policy, now: Timestamp) -> Calendar {
        let mut recent_events = Vec::new();
        if let Ok(since) = now.checked_sub(span(policy.catch_up)) {
            for ev in &policy.events {
                for at in ev.cron.fire_times(&policy.schedule.tz, since, now) {
                    recent_events.push((at, ev.action));
                }
            }
        }
        recent_events.sort_by_key(|(at, _)| *at);
        Calendar {
            desired: policy.schedule.desired_at(now),
            previous: policy.schedule.previous_transition(now),
            next: next_change(policy, now),
            recent_events,
        }
    }
}

/// Decisions for many instances at one instant: policy calendars are computed once, on
/// first use, and shared.
pub struct Engine<'a> {
    policies: &'a [Policy],
    now: Timestamp,
    calendars: Vec<std::sync::OnceLock<Calendar>>,
    /// Every policy's instance globs in one set (one scan per name instead of one per
    /// glob); `glob_owner[i]` is the policy of glob `i`. `None` if the set cannot be built.
    names: Option<(globset::GlobSet, Vec<usize>)>,
}

impl<'a> Engine<'a> {
    /// An engine for `policies` at `now`.
    pub fn new(policies: &'a [Policy], now: Timestamp) -> Engine<'a> {
        let mut builder = globset::GlobSetBuilder::new();
        let mut owners = Vec::new();
        for (i, p) in policies.iter().enumerate() {
            for g in &p.instances {
                builder.add(g.glob().clone());
                owners.push(i);
            }
        }
        Engine {
            policies,
            now,
            calendars: policies
                .iter()
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            names: builder.build().ok().map(|set| (set, owners)),
        }
    }

    /// Index of the first policy governing the instance.
    fn select(&self, obs: &InstanceObservation) -> Option<usize> {
        let candidate = globset::Candidate::new(&obs.name);
        let Some((set, owners)) = &self.names else {
            return self
                .policies
                .iter()
                .position(|p| p.matches_candidate(&obs.workspace, &candidate, &obs.tags));
        };
        let mut name_ok = vec![false; self.policies.len()];
        for glob in set.matches_candidate(&candidate) {
            if let Some(&owner) = owners.get(glob)
                && let Some(slot) = name_ok.get_mut(owner)
            {
                *slot = true;
            }
        }
        self.policies.iter().enumerate().position(|(i, p)| {
            (p.instances.is_empty() || name_ok[i])
                && p.matches_except_name(&obs.workspace, &obs.tags)
        })
    }

    /// Decide for one instance (see [`decide`]).
    pub fn decide(&self, obs: &InstanceObservation, memory: &InstanceMemory) -> Decision {
        decide_with(self, obs, memory)
    }

    fn calendar(&self, index: usize) -> Option<&Calendar> {
        let cell = self.calendars.get(index)?;
        let policy = self.policies.get(index)?;
        Some(cell.get_or_init(|| Calendar::at(policy, self.now)))
    }
}

/// Decide for one instance at `now`. For many instances at once, use [`Engine`], which
/// works out each policy's calendar once.
pub fn decide(
    policies: &[Policy],
    obs: &InstanceObservation,
    memory: &InstanceMemory,
    now: Timestamp,
) -> Decision {
    Engine::new(policies, now).decide(obs, memory)
}

/// The decision for one instance: the memory of what was seen, the policy, then (for a
/// settled instance) what is due, whether it is held back, and the memory that results.
fn decide_with(
    engine: &Engine<'_>,
    obs: &InstanceObservation,
    memory: &InstanceMemory,
) -> Decision {
    let now = engine.now;
    let mut mem = seen(obs, memory, now);
    let quiet = |why, mem| Decision {
        policy: None,
        verdict: Verdict::Quiet { why },
        idle_for: None,
        next: None,
        memory: mem,
    };
    if obs.excluded() {
        return quiet(Quiet::Excluded, mem);
    }
    let Some(index) = engine.select(obs) else {
        return quiet(Quiet::NoPolicy, mem);
    };
    let (policy, Some(cal)) = (&engine.policies[index], engine.calendar(index)) else {
        return quiet(Quiet::NoPolicy, mem);
    };
    let signals = policy.signals();
    let is_busy = busy(obs, signals);
    if is_busy {
        mem.last_busy_seen = Some(now);
    }
    let idle_for = (obs.state.is_running() && policy.sees_idleness())
        .then(|| idle_since(policy, obs, &mem, signals, now).map(|since| now.duration_since(since)))
        .flatten();

    // Our own request still in flight: its effect ends it. (One that never shows an effect
    // is given up on by the daemon, which records that as a failure.)
    if mem.pending.as_ref().is_some_and(|p| pending_done(p, obs)) {
        mem.pending = None;
    }
    let verdict = if obs.state.is_transitional() {
        Verdict::Wait
    } else {
        settled_verdict(policy, cal, obs, &mut mem, now, idle_for, is_busy)
    };
    Decision {
        policy: Some(policy.name.clone()),
        verdict,
        idle_for,
        next: cal.next,
        memory: mem,
    }
}

/// `memory` updated with what this observation shows, whatever is decided: when the
/// instance was first seen, and since when it has been seen running.
fn seen(obs: &InstanceObservation, memory: &InstanceMemory, now: Timestamp) -> InstanceMemory {
    let mut mem = memory.clone();
    mem.first_seen.get_or_insert(now);
    if obs.state.is_running() {
        mem.running_since_seen.get_or_insert(now);
    } else if obs.state.is_stopped() {
        mem.running_since_seen = None;
    }
    mem
}

/// The verdict for an instance in a settled state: the first of the schedule, an event and
/// the uptime rules that is due ([`schedule_due`], [`event_due`], [`uptime_due`]), held back
/// or acted on; `mem` records which transition or event was handled or deferred.
fn settled_verdict(
    policy: &Policy,
    cal: &Calendar,
    obs: &InstanceObservation,
    mem: &mut InstanceMemory,
    now: Timestamp,
    idle_for: Option<SignedDuration>,
    is_busy: bool,
) -> Verdict {
    let due = schedule_due(policy, cal, obs, mem, now)
        .or_else(|| event_due(cal, obs, mem, now))
        .or_else(|| uptime_due(policy, obs, mem, now, idle_for));
    let Some((planned, source)) = due else {
        // Nothing due: earlier failures no longer matter.
        mem.failures = 0;
        mem.retry_at = None;
        return nothing_due(policy, obs);
    };
    if let Due::Missed = source {
        return Verdict::Skip {
            planned,
            why: SkipReason::Missed,
        };
    }
    match held_back(policy, obs, mem, planned.action, is_busy, now) {
        Some(why) => {
            // Held back, not forgotten: a blocked transition or event stays due.
            match source {
                Due::Transition(at) => mem.deferred_transition = Some(at),
                Due::Event(at) => mem.deferred_event = Some(at),
                Due::Rule | Due::Missed => {}
            }
            Verdict::Skip { planned, why }
        }
        None => {
            let (mut transition, mut event) = (None, None);
            match source {
                Due::Transition(at) => {
                    mem.handled_transition = Some(at);
                    mem.deferred_transition = None;
                    transition = Some(at);
                }
                Due::Event(at) => {
                    mem.handled_event = Some(at);
                    mem.deferred_event = None;
                    event = Some(at);
                }
                Due::Rule | Due::Missed => {}
            }
            mem.pending = Some(Pending {
                action: planned.action,
                requested_at: now,
                transition,
                event,
            });
            Verdict::Act(planned)
        }
    }
}

/// The verdict when nothing is due: quiet, unless an idle rule cannot tell because the
/// Jupyter or agent signal it needs did not answer (said, so that the operator knows why nothing
/// stops).
fn nothing_due(policy: &Policy, obs: &InstanceObservation) -> Verdict {
    match (
        &policy.idle,
        obs.state.is_running(),
        activity_unknown(obs, policy.signals()),
    ) {
        (Some(rule), true, true) if rule.timeout.is_some() => Verdict::Skip {
            planned: Planned {
                action: Action::Stop,
                reason: Reason::Idle,
                catch_up: false,
            },
            why: SkipReason::ActivityUnknown,
        },
        _ => Verdict::Quiet {
            why: Quiet::NothingDue,
        },
    }
}

/// Why a due `action` is not sent now, if something holds it back: our own request in
/// flight, failures, use, an unreadable signal the policy will not stop without, a hold,
/// or the idle rule's minimum uptime. A start is held back only by the first three.
fn held_back(
    policy: &Policy,
    obs: &InstanceObservation,
    mem: &InstanceMemory,
    action: Action,
    is_busy: bool,
    now: Timestamp,
) -> Option<SkipReason> {
    if mem.pending.is_some() {
        Some(SkipReason::Pending)
    } else if mem.failures >= crate::engine::memory::MAX_FAILURES {
        Some(SkipReason::GaveUp)
    } else if mem.retry_at.is_some_and(|t| t > now) {
        Some(SkipReason::Backoff)
    } else if action == Action::Start {
        None
    } else if is_busy {
        Some(SkipReason::Busy)
    } else if activity_unknown(obs, policy.signals())
        && policy.unknown_activity == UnknownActivity::Hold
    {
        // The policy asked not to stop what it cannot see. By default an unreadable signal
        // does not block a schedule, event or max-uptime stop: on real Azure the probe is
        // refused wherever the daemon may not open the instance's applications, and a
        // default that blocks there stops nothing. (An idle stop never gets here unseen:
        // without the signal the idle time is unknown.)
        Some(SkipReason::ActivityUnknown)
    } else if let Some(hold) = obs.hold_until()
        && !hold.as_ref().is_ok_and(|until| *until <= now)
    {
        // An unreadable hold holds too: stopping what someone asked to keep, because of a
        // typo in the tag, is the worse mistake.
        Some(match hold {
            Ok(_) => SkipReason::Held,
            Err(_) => SkipReason::InvalidHold,
        })
    } else if snoozed_until(policy, obs, now).is_some() {
        // A snooze is a hold asked from the instance, with no Azure permission.
        Some(SkipReason::Snoozed)
    } else if policy.idle.as_ref().is_some_and(|rule| {
        running_since(obs, mem)
            .is_some_and(|since| now.duration_since(since) < span(rule.min_uptime))
    }) {
        Some(SkipReason::MinUptime)
    } else {
        None
    }
}

/// Where a due action comes from, for the memory update.
#[derive(Debug, Clone, Copy)]
enum Due {
    Transition(Timestamp),
    Event(Timestamp),
    /// Idle or max uptime: a condition, not a moment.
    Rule,
    /// Found missed (older than `catch_up`); already marked handled.
    Missed,
}

fn is_late(now: Timestamp, at: Timestamp) -> bool {
    now.duration_since(at) > span(CATCH_UP_MARK)
}

fn schedule_due(
    policy: &Policy,
    cal: &Calendar,
    obs: &InstanceObservation,
    mem: &mut InstanceMemory,
    now: Timestamp,
) -> Option<(Planned, Due)> {
    let desired = cal.desired?;
    let action = match desired {
        Desired::Down if obs.state.is_running() => Some(Action::Stop),
        Desired::Up if obs.state.is_stopped() && policy.start == StartMode::Window => {
            Some(Action::Start)
        }
        _ => None,
    };
    let reason = match desired {
        Desired::Down => Reason::OutsideWindow,
        Desired::Up => Reason::WindowOpen,
    };
    if policy.enforcement == Enforcement::Always {
        return action.map(|action| {
            (
                Planned {
                    action,
                    reason,
                    catch_up: false,
                },
                Due::Rule,
            )
        });
    }
    let prev: Transition = cal.previous?;
    if prev.to != Some(desired) || mem.handled_transition.is_some_and(|h| h >= prev.at) {
        return None;
    }
    let Some(action) = action else {
        // Already in the desired state: nothing to do for this transition.
        mem.handled_transition = Some(prev.at);
        return None;
    };
    if superseded(obs, prev.at, mem) {
        mem.handled_transition = Some(prev.at);
        return None;
    }
    let deferred = mem.deferred_transition == Some(prev.at);
    let planned = Planned {
        action,
        reason,
        catch_up: !deferred && is_late(now, prev.at),
    };
    if deferred || now.duration_since(prev.at) <= span(policy.catch_up) {
        Some((planned, Due::Transition(prev.at)))
    } else {
        mem.handled_transition = Some(prev.at);
        Some((planned, Due::Missed))
    }
}

fn event_due(
    cal: &Calendar,
    obs: &InstanceObservation,
    mem: &mut InstanceMemory,
    now: Timestamp,
) -> Option<(Planned, Due)> {
    // The latest firing in the catch-up window that is not yet handled.
    let (at, ev_action) = *cal
        .recent_events
        .iter()
        .rev()
        .find(|(at, _)| mem.handled_event.is_none_or(|h| *at > h))?;
    let action = match ev_action {
        EventAction::Start if obs.state.is_stopped() => Action::Start,
        EventAction::Stop if obs.state.is_running() => Action::Stop,
        EventAction::Restart if obs.state.is_running() => Action::Restart,
        _ => {
            mem.handled_event = Some(at);
            return None;
        }
    };
    if superseded(obs, at, mem) {
        mem.handled_event = Some(at);
        return None;
    }
    let deferred = mem.deferred_event == Some(at);
    Some((
        Planned {
            action,
            reason: Reason::Event,
            catch_up: !deferred && is_late(now, at),
        },
        Due::Event(at),
    ))
}

fn uptime_due(
    policy: &Policy,
    obs: &InstanceObservation,
    mem: &InstanceMemory,
    now: Timestamp,
    idle_for: Option<SignedDuration>,
) -> Option<(Planned, Due)> {
    let rule = policy.idle.as_ref()?;
    if !obs.state.is_running() {
        return None;
    }
    let stop = |reason| {
        Some((
            Planned {
                action: Action::Stop,
                reason,
                catch_up: false,
            },
            Due::Rule,
        ))
    };
    if let (Some(max), Some(since)) = (rule.max_uptime, running_since(obs, mem))
        && now.duration_since(since) >= span(max)
    {
        return stop(Reason::MaxUptime);
    }
    if let (Some(timeout), Some(idle)) = (rule.timeout, idle_for)
        && idle >= span(timeout)
    {
        return stop(Reason::Idle);
    }
    None
}

/// Start of the current idle period, or `None` when it cannot be known (a configured
/// Jupyter or agent signal that could not be read).
///
/// The agent's `last_activity` counts like Jupyter's. When it is `None` (no use seen since
/// the agent started) idle counts from the latest of the start of the run, the first
/// sighting and the last busy verdict seen: an instance up past the timeout with no activity
/// at all is idle, and one that was just started or just busy is not.
fn idle_since(
    policy: &Policy,
    obs: &InstanceObservation,
    mem: &InstanceMemory,
    signals: Signals,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut since = running_since(obs, mem);
    let mut take = |t: Option<Timestamp>| {
        if let Some(t) = t {
            since = Some(since.map_or(t, |s| s.max(t)));
        }
    };
    take(mem.first_seen);
    take(mem.last_busy_seen);
    if signals.jupyter {
        match obs.jupyter {
            JupyterActivity::Seen {
                last_activity,
                kernel_busy,
            } => {
                take(last_activity.map(|t| t.min(now)));
                if kernel_busy {
                    take(Some(now));
                }
            }
            JupyterActivity::Unavailable => return None,
            JupyterActivity::NotObserved => {}
        }
    }
    if signals.agent {
        match &obs.agent {
            AgentActivity::Seen(v) => {
                take(v.last_activity.map(|t| t.min(now)));
                if v.busy {
                    take(Some(now));
                }
                // A snooze that ended restarts the idle time, as the end of a hold does.
                if let Some(s) = &v.snooze {
                    let until = s.effective_until(policy.max_snooze);
                    if until <= now {
                        take(Some(until));
                    }
                }
            }
            AgentActivity::Unknown(_) => return None,
            AgentActivity::NotObserved => {}
        }
    }
    if let Some(Ok(hold)) = obs.hold_until()
        && hold <= now
    {
        take(Some(hold));
    }
    since
}

/// The next schedule change or cron event of a policy after `now`.
pub fn next_change(policy: &Policy, now: Timestamp) -> Option<NextChange> {
    let schedule = policy.schedule.next_transition(now).map(|t| NextChange {
        at: t.at,
        what: match t.to {
            Some(Desired::Up) => "up",
            Some(Desired::Down) => "down",
            None => "any",
        },
    });
    let horizon = now.checked_add(SignedDuration::from_hours(8 * 24)).ok();
    let event = horizon.and_then(|until| {
        policy
            .events
            .iter()
            .filter_map(|ev| {
                ev.cron
                    .fire_times(&policy.schedule.tz, now, until)
                    .first()
                    .map(|at| NextChange {
                        at: *at,
                        what: ev.action.as_str(),
                    })
            })
            .min_by_key(|n| n.at)
    });
    match (schedule, event) {
        (Some(s), Some(e)) => Some(if e.at < s.at { e } else { s }),
        (s, e) => s.or(e),
    }
}

#[cfg(test)]
mod tests;
