//! The whole pass decided purely: settle what was pending, decide every instance, plan its
//! native settings, and say what to write, send and forget ([`plan_pass`]).
//!
//! No I/O and no clock: the daemon observes, calls [`plan_pass`], writes each
//! [`WorkspaceWrite`] in one transaction, sends the [`Request`]s and records what Azure
//! said. `lightsout plan` calls the same function on the same inputs, so what it shows is
//! what the daemon does. Logging stays in the daemon, driven by [`Decided`].

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};

use crate::engine::audit::{AuditId, AuditRecord, Intent, Outcome};
use crate::engine::config::Config;
use crate::engine::decide::{Decision, Engine, Planned, SkipReason, Verdict};
use crate::engine::decide::{pending_done, pending_expired};
use crate::engine::memory::{InstanceMemory, Pending};
use crate::engine::model::{
    Action, InstanceKey, InstanceObservation, InstanceState, Reason, WorkspaceRef,
};
use crate::engine::native::types::NativeMode;
use crate::engine::native::{NativeChange, NativePlan};
use crate::engine::plan::PlanRow;
use crate::engine::report::{ActionOutcome, ActionTaken};

/// Why a power request left pending is closed as failed after [`crate::engine::decide::PENDING_EXPIRY`].
pub const EXPIRED_ERROR: &str = "no effect observed within 30 minutes";

/// Why a native change left pending is closed as failed after
/// [`crate::engine::native::NATIVE_PENDING_EXPIRY`].
pub const NATIVE_EXPIRED_ERROR: &str = "no effect observed within 10 minutes";

/// Why an intent written before a crash, of which Azure shows no sign, is closed.
pub const NEVER_SENT_ERROR: &str = "not sent: the daemon stopped before the request went out";

/// One configured workspace as observed by this pass.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The alias from the config.
    pub alias: &'a str,
    /// Its instances, or `None` when it could not be listed (its instances are left alone).
    pub instances: Option<&'a [InstanceObservation]>,
}

/// Everything a pass decides from.
#[derive(Debug, Clone, Copy)]
pub struct PassInput<'a> {
    /// The config in force (policies, workspaces).
    pub cfg: &'a Config,
    /// Every workspace the pass tried to list, in order.
    pub observed: &'a [Observed<'a>],
    /// What is remembered of each instance (the store's memory).
    pub memory: &'a BTreeMap<InstanceKey, InstanceMemory>,
    /// The audit rows still `pending`; `None` when they could not be read (then no row is
    /// closed, and no intent is taken for one that never went out).
    pub pending: Option<&'a [AuditRecord]>,
    /// When the daemon started: a pending intent from before it may predate a crash.
    pub started: Timestamp,
    /// The instant decisions are made at (after observing).
    pub now: Timestamp,
    /// Decide and record, send nothing.
    pub dry_run: bool,
}

/// An audit row to close: its id, final outcome and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    pub id: AuditId,
    pub outcome: Outcome,
    pub error: Option<&'static str>,
}

/// An intent to append to the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedIntent {
    pub intent: Intent,
    /// A transition missed by more than `catch_up`: recorded `missed`, never sent.
    pub missed: bool,
}

impl PlannedIntent {
    /// The outcome the row is written with: `missed`, `dry_run` or `pending`.
    pub fn outcome(&self) -> Outcome {
        match (self.missed, self.intent.dry_run) {
            (true, _) => Outcome::Missed,
            (false, true) => Outcome::DryRun,
            (false, false) => Outcome::Pending,
        }
    }
}

/// What to write for one observed workspace, in one transaction, before anything is sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkspaceWrite {
    /// The workspace alias.
    pub alias: String,
    /// Pending rows now settled.
    pub close: Vec<Close>,
    /// New rows, in order (a [`Request`] refers to them by index).
    pub intents: Vec<PlannedIntent>,
    /// Memory of the instances whose memory changed (one entry per instance).
    pub memory: Vec<(InstanceKey, InstanceMemory)>,
    /// Instances gone from the workspace: their memory is dropped.
    pub forget: Vec<InstanceKey>,
}

impl WorkspaceWrite {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.close.is_empty()
            && self.intents.is_empty()
            && self.memory.is_empty()
            && self.forget.is_empty()
    }
}

/// What one request asks of Azure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// Start, stop or restart.
    Power(Action),
    /// Native settings changes of one instance, in one PUT of the compute.
    Native(Vec<NativeChange>),
}

/// One request to send, once its intents are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub key: InstanceKey,
    pub workspace: WorkspaceRef,
    pub kind: RequestKind,
    /// Index of its workspace in [`PassPlan::writes`].
    pub write: usize,
    /// Indices of its intents in that write's `intents` (one per change).
    pub intents: Vec<usize>,
    /// Indices of its entries in [`PassPlan::actions`].
    pub actions: Vec<usize>,
}

/// One instance's decision, for the daemon's log lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub key: InstanceKey,
    pub state: InstanceState,
    pub policy: Option<String>,
    pub verdict: Verdict,
    /// How its native settings differ from its policy.
    pub drift: Vec<NativeChange>,
    /// The native changes planned now (sent unless a dry run).
    pub native: Vec<NativeChange>,
}

/// What one pass does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassPlan {
    /// Every observed instance's decision, for people (`plan`, `/v1/status`).
    pub rows: Vec<PlanRow>,
    /// The same decisions for the log, in the same order.
    pub decided: Vec<Decided>,
    /// One per observed workspace, in order.
    pub writes: Vec<WorkspaceWrite>,
    /// Aliases that could not be observed, in order.
    pub failed: Vec<String>,
    /// Every intent but the missed ones, as the pass report lists it (outcome `dry_run`
    /// or `not_sent` until the request is answered).
    pub actions: Vec<ActionTaken>,
    /// Power requests in decision order, then native ones by instance.
    pub requests: Vec<Request>,
}

/// Decide the whole pass. See the module documentation.
pub fn plan_pass(input: &PassInput<'_>) -> PassPlan {
    let PassInput { cfg, now, .. } = *input;
    let engine = Engine::new(&cfg.policies, now);
    // The pending rows of each instance, looked up once per instance, not per row.
    let mut pending_rows: BTreeMap<InstanceKey, Vec<&AuditRecord>> = BTreeMap::new();
    for r in input.pending.unwrap_or_default() {
        pending_rows
            .entry(InstanceKey::new(&r.workspace, &r.instance))
            .or_default()
            .push(r);
    }
    let fleet: usize = input
        .observed
        .iter()
        .map(|o| o.instances.map_or(0, <[_]>::len))
        .sum();
    let mut plan = PassPlan {
        rows: Vec::with_capacity(fleet),
        decided: Vec::with_capacity(fleet),
        ..PassPlan::default()
    };
    let mut native_requests: Vec<Request> = Vec::new();
    for observed in input.observed {
        let Some(instances) = observed.instances else {
            plan.failed.push(observed.alias.to_owned());
            continue;
        };
        let write_index = plan.writes.len();
        let mut write = WorkspaceWrite {
            alias: observed.alias.to_owned(),
            ..WorkspaceWrite::default()
        };
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        if let Some(ws) = cfg.workspace(observed.alias).map(|w| &w.reference) {
            for obs in instances {
                seen.insert(&obs.name);
                let key = InstanceKey::new(&obs.workspace, &obs.name);
                let rows = pending_rows.get(&key).map_or(&[][..], Vec::as_slice);
                let ctx = InstanceCtx {
                    input,
                    key: &key,
                    obs,
                    rows,
                    ws,
                    write_index,
                };
                ctx.plan(&engine, &mut plan, &mut write, &mut native_requests);
            }
        }
        // Instances gone from a workspace we did observe are forgotten.
        write.forget = input
            .memory
            .keys()
            .filter(|k| k.workspace == observed.alias && !seen.contains(k.instance.as_str()))
            .cloned()
            .collect();
        plan.writes.push(write);
    }
    native_requests.sort_by(|a, b| a.key.cmp(&b.key));
    plan.requests.extend(native_requests);
    plan
}

/// One instance being planned, with what it is planned from.
struct InstanceCtx<'p, 'a> {
    input: &'p PassInput<'a>,
    key: &'p InstanceKey,
    obs: &'p InstanceObservation,
    /// Its audit rows still `pending`.
    rows: &'p [&'a AuditRecord],
    ws: &'p WorkspaceRef,
    write_index: usize,
}

impl InstanceCtx<'_, '_> {
    fn plan(
        &self,
        engine: &Engine<'_>,
        plan: &mut PassPlan,
        write: &mut WorkspaceWrite,
        native_requests: &mut Vec<Request>,
    ) {
        let (key, obs) = (self.key, self.obs);
        let stored = self.input.memory.get(key);
        let mut before = stored.cloned().unwrap_or_default();
        self.settle(&mut before, &mut write.close);
        let mut d = engine.decide(obs, &before);
        let native = self.plan_native(&mut d);
        let mut row = PlanRow::new(obs, &d);
        let max_snooze = d
            .policy
            .as_ref()
            .and_then(|name| self.input.cfg.policies.iter().find(|p| &p.name == name))
            .map_or(crate::engine::policy::DEFAULT_MAX_SNOOZE, |p| p.max_snooze);
        row.agent = crate::engine::plan::AgentView::new(&obs.agent, max_snooze, self.input.now);
        row.native_drift = native.drift.iter().map(ToString::to_string).collect();
        plan.rows.push(row);
        for (actions, outcome, error) in [
            (&native.done, Outcome::Succeeded, None),
            (&native.expired, Outcome::Failed, Some(NATIVE_EXPIRED_ERROR)),
        ] {
            self.close(|a| actions.contains(&a), outcome, error, &mut write.close);
        }
        let mut written = false;
        if !native.send.is_empty() {
            let mut request = self.request(RequestKind::Native(native.send.clone()));
            for change in &native.send {
                let planned = Planned {
                    action: change.action(),
                    reason: Reason::Native,
                    catch_up: false,
                };
                let (intent, action) = self.intent(&d, planned, true, write, plan);
                request.intents.push(intent);
                request.actions.push(action);
            }
            written = true;
            if !self.input.dry_run {
                native_requests.push(request);
            }
        }
        match d.verdict {
            Verdict::Act(planned) => {
                let mut request = self.request(RequestKind::Power(planned.action));
                let (intent, action) = self.intent(&d, planned, false, write, plan);
                request.intents.push(intent);
                request.actions.push(action);
                written = true;
                if !self.input.dry_run {
                    plan.requests.push(request);
                }
            }
            Verdict::Skip {
                planned,
                why: SkipReason::Missed,
            } => {
                write.intents.push(PlannedIntent {
                    intent: self.intent_of(&d, planned, false),
                    missed: true,
                });
                written = true;
            }
            _ => {}
        }
        // An intent is written with the memory that marks it handled; otherwise memory is
        // written only when it changed.
        if written || stored != Some(&d.memory) {
            write.memory.push((key.clone(), d.memory.clone()));
        }
        plan.decided.push(Decided {
            key: key.clone(),
            state: obs.state.clone(),
            policy: d.policy,
            verdict: d.verdict,
            drift: native.drift,
            native: native.send,
        });
    }

    /// Before deciding: close our pending request if its effect shows, or give up on it.
    fn settle(&self, mem: &mut InstanceMemory, close: &mut Vec<Close>) {
        let Some(p) = mem.pending.clone() else {
            return;
        };
        let now = self.input.now;
        let (outcome, error) = if pending_done(&p, self.obs) {
            mem.operation_succeeded();
            (Outcome::Succeeded, None)
        } else if pending_expired(&p, now) {
            mem.operation_failed(now);
            (Outcome::Failed, Some(EXPIRED_ERROR))
        } else if p.requested_at < self.input.started && self.never_sent(&p) {
            // Written before a crash, and Azure shows no sign of it: it was not sent.
            mem.operation_failed(now);
            (Outcome::Failed, Some(NEVER_SENT_ERROR))
        } else {
            return;
        };
        self.close(|a| !a.is_native(), outcome, error, close);
    }

    /// An intent recorded by an earlier run, with no request id, that Azure's lastOperation
    /// does not reflect, on an instance in no transition.
    fn never_sent(&self, p: &Pending) -> bool {
        // Unreadable rows: assume it was accepted, so nothing is sent twice.
        let accepted = self.input.pending.is_none()
            || self
                .rows
                .iter()
                .any(|r| !r.action.is_native() && r.request_id.is_some());
        let azure_saw_it = self
            .obs
            .last_operation
            .as_ref()
            .is_some_and(|op| op.at >= p.requested_at - SignedDuration::from_mins(1));
        !accepted && !azure_saw_it && !self.obs.state.is_transitional()
    }

    /// Close the instance's pending rows whose action `wanted` accepts.
    fn close(
        &self,
        wanted: impl Fn(Action) -> bool,
        outcome: Outcome,
        error: Option<&'static str>,
        close: &mut Vec<Close>,
    ) {
        close.extend(
            self.rows
                .iter()
                .filter(|r| wanted(r.action))
                .map(|r| Close {
                    id: r.id,
                    outcome,
                    error,
                }),
        );
    }

    /// Compare the instance's native settings with its policy (picked again: the decision
    /// names it, the native settings need the policy itself). In-flight changes are kept
    /// in `d.memory`, written with the intents.
    fn plan_native(&self, d: &mut Decision) -> NativePlan {
        let obs = self.obs;
        let policy = if obs.excluded() {
            None
        } else {
            crate::engine::policy::select(
                &self.input.cfg.policies,
                &obs.workspace,
                &obs.name,
                &obs.tags,
            )
        };
        let Some(policy) = policy.filter(|p| p.native.mode != NativeMode::Off) else {
            d.memory.native_pending.clear();
            return NativePlan::default();
        };
        let settled = obs.state.is_running() || obs.state.is_stopped();
        crate::engine::native::plan_native(
            &policy.native,
            &obs.native,
            &mut d.memory.native_pending,
            settled,
            self.input.now,
        )
    }

    fn request(&self, kind: RequestKind) -> Request {
        Request {
            key: self.key.clone(),
            workspace: self.ws.clone(),
            kind,
            write: self.write_index,
            intents: Vec::new(),
            actions: Vec::new(),
        }
    }

    fn intent_of(&self, d: &Decision, p: Planned, dry_run: bool) -> Intent {
        Intent {
            at: self.input.now,
            workspace: self.obs.workspace.clone(),
            instance: self.obs.name.clone(),
            action: p.action,
            reason: p.reason,
            policy: d.policy.clone().unwrap_or_default(),
            catch_up: p.catch_up,
            dry_run,
        }
    }

    /// Plan the intent of a request, and its entry in the pass report; returns their
    /// indices.
    fn intent(
        &self,
        d: &Decision,
        p: Planned,
        native: bool,
        write: &mut WorkspaceWrite,
        plan: &mut PassPlan,
    ) -> (usize, usize) {
        let dry_run = self.input.dry_run;
        let intent = self.intent_of(d, p, dry_run);
        plan.actions.push(ActionTaken {
            at: intent.at,
            workspace: intent.workspace.clone(),
            instance: intent.instance.clone(),
            action: p.action,
            reason: p.reason,
            policy: intent.policy.clone(),
            catch_up: p.catch_up,
            outcome: if dry_run {
                ActionOutcome::DryRun
            } else {
                ActionOutcome::NotSent
            },
            native,
        });
        write.intents.push(PlannedIntent {
            intent,
            missed: false,
        });
        (write.intents.len() - 1, plan.actions.len() - 1)
    }
}

#[cfg(test)]
mod tests;
