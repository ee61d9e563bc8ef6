//! The reconcile loop: observe every workspace, decide, act, record; then sleep until the
//! next poll or the next schedule boundary, whichever comes first.
//!
//! Level-triggered: each pass starts again from what Azure says. Memory and the audit log
//! live in the [`Store`]; an action's intent is written (with the memory that makes it
//! "handled") before its request is sent, so a crash never causes a second request for
//! the same transition. A workspace that cannot be observed is left alone for the pass.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::actuate::{Actuator, OperationEnd, SendOutcome};
use crate::azure::{Accepted, ArmClient, AzureError};
use crate::clock::Clock;
use crate::config::Config;
use crate::decide::{
    Decision, Engine, Planned, SkipReason, Verdict, next_change, pending_done, pending_expired,
};
use crate::logmemo::{self, LogMemo, REMINDER};
use crate::memory::InstanceMemory;
use crate::model::{InstanceKey, InstanceObservation, WorkspaceRef};
use crate::observe::observe;
use crate::plan::PlanRow;
use crate::policy::Policy;
use crate::store::{Intent, Outcome, Store, StoreError};

/// How the daemon behaves beyond its config.
#[derive(Debug, Clone, Copy)]
pub struct DaemonOptions {
    /// Decide and record, act on nothing.
    pub dry_run: bool,
    /// Follow each accepted operation to its end in the background (real time). Off in
    /// virtual time, where the passes confirm outcomes from the observed state.
    pub follow_operations: bool,
}

/// An action the daemon requested (or, in a dry run, would have).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionTaken {
    /// When the request was sent (UTC).
    pub at: Timestamp,
    pub workspace: String,
    pub instance: String,
    pub action: &'static str,
    pub reason: &'static str,
    pub policy: String,
    pub catch_up: bool,
    /// What became of the request when it was sent: `accepted`, `refused`, `failed`,
    /// `unknown` (accepted, but its operation cannot be followed) or `dry_run` (for the
    /// `outcome` label of `lightsout_actions_total`; not in JSON output).
    #[serde(skip)]
    pub outcome: &'static str,
    /// A change of native settings (`idle_shutdown`, `schedules`), not a power action.
    #[serde(skip)]
    pub native: bool,
}

/// What one pass saw and did.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// The instant decisions were made at.
    pub at: Option<Timestamp>,
    pub actions: Vec<ActionTaken>,
    /// Every observed instance's decision (shared with the status page, not copied).
    pub rows: Arc<Vec<PlanRow>>,
    /// Workspace aliases that could not be observed.
    pub failed_workspaces: Vec<String>,
    /// Every configured workspace: observed by this pass or not, and since when.
    pub workspaces: Vec<WorkspaceSeen>,
    /// When the next pass should run (poll interval or the next boundary).
    pub next_wake: Option<Timestamp>,
    /// How long the pass took (monotonic clock), for the pass-duration histogram.
    pub duration: Duration,
}

/// One configured workspace as a pass saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceSeen {
    /// The alias from the config.
    pub alias: String,
    /// Listed by this pass.
    pub observed: bool,
    /// The latest pass that listed it; while none has, the daemon's start (or the pass
    /// after the reload that added it).
    pub last_observed: Timestamp,
}

/// Sees every pass: its report, the config in force and the store (cost accounting and
/// metrics). Runs at the end of the pass, inside it, so it must be quick and never wait on
/// the network.
pub trait PassHook: std::marker::Send {
    /// Called once per pass, after its requests were sent and recorded.
    fn after_pass(&mut self, cfg: &Config, report: &PassReport, store: &mut Store);
}

/// Shared view of the loop for the HTTP server and health checks.
#[derive(Debug, Default)]
pub struct Status {
    inner: Mutex<StatusInner>,
}

#[derive(Debug, Default, Clone)]
struct StatusInner {
    last_pass: Option<Timestamp>,
    passes: u64,
    rows: Arc<Vec<PlanRow>>,
    /// Workspaces the latest pass could not observe.
    unobserved: Vec<String>,
    /// The latest write to the state database failed (and none succeeded since).
    store_failing: bool,
}

impl Status {
    /// The latest pass's rows and when it ran.
    pub fn snapshot(&self) -> (Option<Timestamp>, u64, Arc<Vec<PlanRow>>) {
        let s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (s.last_pass, s.passes, s.rows.clone())
    }

    /// Workspaces the latest pass could not observe (empty before the first pass).
    pub fn unobserved(&self) -> Vec<String> {
        let s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        s.unobserved.clone()
    }

    /// Whether the state database could not be written at its latest write: intents
    /// cannot be recorded, so nothing is acted on.
    pub fn store_failing(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .store_failing
    }

    fn set(&self, at: Timestamp, rows: Arc<Vec<PlanRow>>, unobserved: Vec<String>) {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        s.last_pass = Some(at);
        s.passes += 1;
        s.rows = rows;
        s.unobserved = unobserved;
    }

    fn set_store_failing(&self, failing: bool) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .store_failing = failing;
    }
}

/// The end of an operation followed in the background.
#[derive(Debug)]
struct OperationEnded {
    key: InstanceKey,
    audit: crate::store::AuditId,
    result: Result<(), AzureError>,
}

/// A request about to be sent.
struct Send {
    key: InstanceKey,
    audit: crate::store::AuditId,
    workspace: WorkspaceRef,
    planned: Planned,
}

/// A change of native settings about to be sent.
struct NativeSend {
    key: InstanceKey,
    audit: crate::store::AuditId,
    workspace: WorkspaceRef,
    change: crate::native::NativeChange,
    /// Index of its entry in the pass report's actions.
    report_index: usize,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("state store failed")]
    Store(#[source] StoreError),
}

/// The long-running service.
pub struct Daemon {
    cfg: Arc<Config>,
    policies: Arc<Vec<Policy>>,
    client: ArmClient,
    actuator: Actuator,
    store: Store,
    memory: BTreeMap<InstanceKey, InstanceMemory>,
    options: DaemonOptions,
    clock: Arc<dyn Clock>,
    status: Arc<Status>,
    ended_tx: mpsc::UnboundedSender<OperationEnded>,
    ended_rx: mpsc::UnboundedReceiver<OperationEnded>,
    followers: JoinSet<()>,
    started: Timestamp,
    hook: Option<Box<dyn PassHook>>,
    /// When the audit log was last pruned to `[daemon] audit_retention`.
    pruned_at: Option<Timestamp>,
    /// When each workspace was last observed (see [`WorkspaceSeen::last_observed`]).
    last_observed: BTreeMap<String, Timestamp>,
    /// Why each workspace could not be observed, as last logged (said once per change).
    said_blind: LogMemo<String>,
    /// Each instance's decision not to act, as last logged (on change, then hourly).
    said_skip: LogMemo<InstanceKey>,
    /// Each instance's native drift, as last logged (on change, then hourly).
    said_drift: LogMemo<InstanceKey>,
}

impl Daemon {
    /// A daemon on `store`, talking to Azure through `client`.
    pub fn new(
        cfg: Config,
        client: ArmClient,
        store: Store,
        options: DaemonOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Daemon, DaemonError> {
        let memory = store.load_memory().map_err(DaemonError::Store)?;
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let actuator = Actuator::new(client.clone(), cfg.daemon.max_concurrent_actions);
        let started = clock.now();
        Ok(Daemon {
            policies: Arc::new(cfg.policies.clone()),
            cfg: Arc::new(cfg),
            client,
            actuator,
            store,
            memory,
            options,
            clock,
            status: Arc::new(Status::default()),
            ended_tx,
            ended_rx,
            followers: JoinSet::new(),
            started,
            hook: None,
            pruned_at: None,
            last_observed: BTreeMap::new(),
            said_blind: LogMemo::new(None),
            said_skip: LogMemo::new(Some(REMINDER)),
            said_drift: LogMemo::new(Some(REMINDER)),
        })
    }

    /// The shared status (for the HTTP server).
    pub fn status(&self) -> Arc<Status> {
        self.status.clone()
    }

    /// Install the hook that sees every pass (see [`PassHook`]).
    pub fn set_hook(&mut self, hook: Box<dyn PassHook>) {
        self.hook = Some(hook);
    }

    /// The config in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Replace the config (SIGHUP). The client is rebuilt by the caller when `[azure]`
    /// changed; memory and the store carry over.
    pub fn reload(&mut self, cfg: Config, client: Option<ArmClient>) {
        if let Some(client) = client {
            self.actuator = Actuator::new(client.clone(), cfg.daemon.max_concurrent_actions);
            self.client = client;
        } else {
            self.actuator = Actuator::new(self.client.clone(), cfg.daemon.max_concurrent_actions);
        }
        self.policies = Arc::new(cfg.policies.clone());
        self.cfg = Arc::new(cfg);
    }

    /// One full pass: observe, decide, act, record.
    pub async fn pass(&mut self) -> PassReport {
        let began = tokio::time::Instant::now();
        self.drain_ended();
        let snapshots = observe(&self.client, &self.cfg.workspaces, &self.policies).await;
        // Decide at the instant after observing: a pass woken for a boundary must see it.
        let now = self.clock.now();
        let policies = self.policies.clone();
        let engine = Engine::new(&policies, now);
        // Sized once: at 10,000 instances a growing Vec briefly holds two copies.
        let fleet: usize = snapshots
            .iter()
            .map(|s| s.instances.as_ref().map_or(0, Vec::len))
            .sum();
        let mut report = PassReport {
            at: Some(now),
            ..PassReport::default()
        };
        let mut rows = Vec::with_capacity(fleet);
        let mut updates: Vec<(InstanceKey, InstanceMemory)> = Vec::new();
        let mut sends: Vec<Send> = Vec::new();
        let mut native_sends: Vec<NativeSend> = Vec::new();
        let mut observed_ok: BTreeSet<String> = BTreeSet::new();
        let mut seen: BTreeSet<InstanceKey> = BTreeSet::new();
        for snap in &snapshots {
            let instances = match &snap.instances {
                Ok(instances) => instances,
                Err(e) => {
                    self.say_blind(&snap.alias, e, now);
                    continue;
                }
            };
            if self.said_blind.clear(&snap.alias).is_some() {
                tracing::info!(workspace = %snap.alias, "workspace observed again");
            }
            self.last_observed.insert(snap.alias.clone(), now);
            observed_ok.insert(snap.alias.clone());
            let Some(ws) = self.cfg.workspace(&snap.alias).map(|w| w.reference.clone()) else {
                continue;
            };
            for obs in instances {
                let key = InstanceKey::new(&obs.workspace, &obs.name);
                seen.insert(key.clone());
                let mut before = self.memory.get(&key).cloned().unwrap_or_default();
                self.settle_pending(&key, obs, &mut before, now);
                let mut d = engine.decide(obs, &before);
                let native = self.plan_native(obs, &mut d, now);
                let mut row = PlanRow::new(obs, &d);
                row.native_drift = native.drift.iter().map(ToString::to_string).collect();
                if invalid_hold_news(&key, row.invalid_hold.as_deref()) {
                    tracing::warn!(workspace = %obs.workspace, instance = %obs.name,
                        reason = row.invalid_hold.as_deref().unwrap_or_default(),
                        "unreadable hold tag: the instance is held (said once per value)");
                }
                rows.push(row);
                self.log_decision(&key, obs, &d, now);
                self.record_native(
                    &key,
                    &ws,
                    obs,
                    &d,
                    native,
                    now,
                    &mut report,
                    &mut native_sends,
                );
                match d.verdict {
                    Verdict::Act(planned) => {
                        if let Some(send) =
                            self.record_intent(&key, &ws, obs, &d, planned, now, &mut report)
                        {
                            sends.push(send);
                        }
                        continue;
                    }
                    Verdict::Skip {
                        planned,
                        why: SkipReason::Missed,
                    } => {
                        let intent = self.intent(obs, &d, planned, now, false);
                        if let Err(e) = self.store.record_missed(&intent, &d.memory) {
                            tracing::error!(error = %logmemo::chain(&e), "cannot record a missed transition");
                        }
                        self.memory.insert(key, d.memory);
                        continue;
                    }
                    _ => {}
                }
                if self.memory.get(&key) != Some(&d.memory) {
                    updates.push((key.clone(), d.memory.clone()));
                    self.memory.insert(key, d.memory);
                }
            }
            // Saved workspace by workspace (before any request is sent), so the batch stays
            // small however large the fleet.
            if !updates.is_empty()
                && let Err(e) = self.store.save_memory(&updates, now)
            {
                tracing::error!(error = %logmemo::chain(&e), "cannot save memory");
            }
            updates.clear();
        }
        // Instances gone from a workspace we did observe are forgotten.
        let gone: Vec<InstanceKey> = self
            .memory
            .keys()
            .filter(|k| observed_ok.contains(&k.workspace) && !seen.contains(*k))
            .cloned()
            .collect();
        if !gone.is_empty() {
            for k in &gone {
                self.memory.remove(k);
                self.said_skip.clear(k);
                self.said_drift.clear(k);
            }
            if let Err(e) = self.store.forget(&gone) {
                tracing::error!(error = %logmemo::chain(&e), "cannot forget deleted instances");
            }
        }
        self.account_workspaces(&observed_ok, now, &mut report);
        let outcomes = self.send_all(sends, now).await;
        for a in &mut report.actions {
            if let Some((_, o)) = outcomes
                .iter()
                .find(|(k, _)| k.workspace == a.workspace && k.instance == a.instance && !a.native)
            {
                a.outcome = o;
            }
        }
        for (index, label) in self.send_native_all(native_sends, now).await {
            if let Some(a) = report.actions.get_mut(index) {
                a.outcome = label;
            }
        }
        self.prune_audit(now);
        report.next_wake = Some(self.next_wake(now));
        report.rows = Arc::new(rows);
        self.status
            .set(now, report.rows.clone(), report.failed_workspaces.clone());
        report.duration = began.elapsed();
        if let Some(hook) = self.hook.as_mut() {
            hook.after_pass(&self.cfg, &report, &mut self.store);
        }
        // After the hook: its cost accounting is a write too.
        self.status.set_store_failing(!self.store.writable());
        report
    }

    /// At the first pass and then daily: delete final audit records older than the
    /// retention, so the database does not grow forever.
    fn prune_audit(&mut self, now: Timestamp) {
        const EVERY: SignedDuration = SignedDuration::from_hours(24);
        if self
            .pruned_at
            .is_some_and(|t| now.duration_since(t) < EVERY)
        {
            return;
        }
        self.pruned_at = Some(now);
        let retention = SignedDuration::try_from(self.cfg.daemon.audit_retention)
            .unwrap_or(SignedDuration::MAX);
        let Ok(before) = now.checked_sub(retention) else {
            return;
        };
        match self.store.prune_audit(before) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(deleted = n, before = %before, "audit log pruned to its retention")
            }
            Err(e) => tracing::warn!(error = %logmemo::chain(&e), "cannot prune the audit log"),
        }
    }

    /// Log why a workspace cannot be observed: the whole error chain, once per change of
    /// the error (a debug line at the other passes).
    fn say_blind(&mut self, alias: &str, e: &AzureError, now: Timestamp) {
        let cause = logmemo::chain(e);
        let signature = logmemo::signature(e.kind(), &cause);
        if self
            .said_blind
            .due(&alias.to_owned(), &signature, now)
            .is_some()
        {
            tracing::warn!(workspace = %alias, error = %cause, kind = e.kind(),
                "workspace cannot be observed; its instances are left alone until it can be");
        } else {
            tracing::debug!(workspace = %alias, kind = e.kind(), "workspace still cannot be observed");
        }
    }

    /// Every configured workspace into the report: observed or not (a workspace whose
    /// observation task died has no snapshot, and counts as not observed), and since when.
    fn account_workspaces(
        &mut self,
        observed_ok: &BTreeSet<String>,
        now: Timestamp,
        report: &mut PassReport,
    ) {
        let configured: BTreeSet<&str> = self
            .cfg
            .workspaces
            .iter()
            .map(|w| w.name.as_str())
            .collect();
        self.last_observed
            .retain(|alias, _| configured.contains(alias.as_str()));
        self.said_blind
            .retain(|alias| configured.contains(alias.as_str()));
        // Never observed: unseen since the start, or since the reload that added it.
        let baseline = if self.status.snapshot().1 == 0 {
            self.started.min(now)
        } else {
            now
        };
        for ws in &self.cfg.workspaces {
            let observed = observed_ok.contains(&ws.name);
            if !observed {
                report.failed_workspaces.push(ws.name.clone());
            }
            let last_observed = *self
                .last_observed
                .entry(ws.name.clone())
                .or_insert(baseline);
            report.workspaces.push(WorkspaceSeen {
                alias: ws.name.clone(),
                observed,
                last_observed,
            });
        }
    }

    /// Before deciding: close our pending request if its effect shows, or give up on it.
    fn settle_pending(
        &mut self,
        key: &InstanceKey,
        obs: &InstanceObservation,
        mem: &mut InstanceMemory,
        now: Timestamp,
    ) {
        let Some(p) = mem.pending.clone() else {
            return;
        };
        let (outcome, error) = if pending_done(&p, obs) {
            mem.operation_succeeded();
            (Outcome::Succeeded, None)
        } else if pending_expired(&p, now) {
            mem.operation_failed(now);
            (
                Outcome::Failed,
                Some("no effect observed within 30 minutes"),
            )
        } else if p.requested_at < self.started && self.never_sent(key, obs, &p) {
            // Written before a crash, and Azure shows no sign of it: it was not sent.
            mem.operation_failed(now);
            (
                Outcome::Failed,
                Some("not sent: the daemon stopped before the request went out"),
            )
        } else {
            return;
        };
        self.finish_latest_pending(key, outcome, error, now);
    }

    /// An intent recorded by an earlier run, with no request id, that Azure's lastOperation
    /// does not reflect.
    fn never_sent(
        &self,
        key: &InstanceKey,
        obs: &InstanceObservation,
        p: &crate::memory::Pending,
    ) -> bool {
        let accepted = self
            .store
            .pending_intents()
            .map(|v| {
                v.iter().any(|r| {
                    InstanceKey::new(&r.workspace, &r.instance) == *key
                        && !r.action.is_native()
                        && r.request_id.is_some()
                })
            })
            .unwrap_or(true);
        let azure_saw_it = obs
            .last_operation
            .as_ref()
            .is_some_and(|op| op.at >= p.requested_at - SignedDuration::from_mins(1));
        !accepted && !azure_saw_it && !obs.state.is_transitional()
    }

    fn finish_latest_pending(
        &mut self,
        key: &InstanceKey,
        outcome: Outcome,
        error: Option<&str>,
        now: Timestamp,
    ) {
        self.finish_pending(key, |a| !a.is_native(), outcome, error, now);
    }

    /// Close the instance's pending audit rows whose action `wanted` accepts.
    fn finish_pending(
        &mut self,
        key: &InstanceKey,
        wanted: impl Fn(crate::model::Action) -> bool,
        outcome: Outcome,
        error: Option<&str>,
        now: Timestamp,
    ) {
        let pending = match self.store.pending_intents() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %logmemo::chain(&e), "cannot read pending intents");
                return;
            }
        };
        for record in pending
            .iter()
            .filter(|r| InstanceKey::new(&r.workspace, &r.instance) == *key && wanted(r.action))
        {
            if let Err(e) = self
                .store
                .record_outcome(record.id, outcome, None, error, now)
            {
                tracing::warn!(error = %logmemo::chain(&e), audit = %record.id, "cannot record an outcome");
            }
        }
    }

    fn intent(
        &self,
        obs: &InstanceObservation,
        d: &Decision,
        p: Planned,
        now: Timestamp,
        dry_run: bool,
    ) -> Intent {
        Intent {
            at: now,
            workspace: obs.workspace.clone(),
            instance: obs.name.clone(),
            action: p.action,
            reason: p.reason,
            policy: d.policy.clone().unwrap_or_default(),
            catch_up: p.catch_up,
            dry_run,
        }
    }

    /// Write the intent and the memory that marks it handled, before anything is sent.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; a struct would only rename them"
    )]
    fn record_intent(
        &mut self,
        key: &InstanceKey,
        ws: &WorkspaceRef,
        obs: &InstanceObservation,
        d: &Decision,
        planned: Planned,
        now: Timestamp,
        report: &mut PassReport,
    ) -> Option<Send> {
        let dry_run = self.options.dry_run || self.cfg.daemon.dry_run;
        let intent = self.intent(obs, d, planned, now, dry_run);
        let audit = match self.store.record_intent(&intent, &d.memory) {
            Ok(id) => id,
            Err(e) => {
                // Not recorded, so not sent: the audit log never misses an action.
                tracing::error!(error = %logmemo::chain(&e), instance = %obs.name, "cannot record intent; not acting");
                return None;
            }
        };
        self.memory.insert(key.clone(), d.memory.clone());
        report.actions.push(ActionTaken {
            at: now,
            workspace: obs.workspace.clone(),
            instance: obs.name.clone(),
            action: planned.action.as_str(),
            reason: planned.reason.as_str(),
            policy: intent.policy.clone(),
            catch_up: planned.catch_up,
            outcome: if dry_run { "dry_run" } else { "not_sent" },
            native: false,
        });
        if dry_run {
            return None;
        }
        Some(Send {
            key: key.clone(),
            audit,
            workspace: ws.clone(),
            planned,
        })
    }

    /// Compare the instance's native settings with its policy and decide what to send
    /// (see [`crate::native::plan_native`]); the memory of in-flight changes is updated in
    /// `d.memory`, which is written with the intents (or at the end of the pass).
    fn plan_native(
        &self,
        obs: &InstanceObservation,
        d: &mut Decision,
        now: Timestamp,
    ) -> crate::native::NativePlan {
        let policy = if obs.excluded() {
            None
        } else {
            crate::policy::select(&self.policies, &obs.workspace, &obs.name, &obs.tags)
        };
        let Some(policy) =
            policy.filter(|p| p.native.mode != crate::native::types::NativeMode::Off)
        else {
            d.memory.native_pending.clear();
            return crate::native::NativePlan::default();
        };
        let settled = obs.state.is_running() || obs.state.is_stopped();
        crate::native::plan_native(
            &policy.native,
            &obs.native,
            &mut d.memory.native_pending,
            settled,
            now,
        )
    }

    /// Log drift, close the audit rows of changes now seen (or given up on), and record
    /// the intent of each change to send, before anything is sent.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; a struct would only rename them"
    )]
    fn record_native(
        &mut self,
        key: &InstanceKey,
        ws: &WorkspaceRef,
        obs: &InstanceObservation,
        d: &Decision,
        plan: crate::native::NativePlan,
        now: Timestamp,
        report: &mut PassReport,
        sends: &mut Vec<NativeSend>,
    ) {
        if plan.drift.is_empty() {
            self.said_drift.clear(key);
        } else {
            let drift: Vec<String> = plan.drift.iter().map(ToString::to_string).collect();
            if let Some(due) = self.said_drift.due(key, &drift.join("; "), now) {
                for change in &drift {
                    tracing::info!(workspace = %obs.workspace, instance = %obs.name,
                        policy = d.policy.as_deref().unwrap_or("-"), drift = %change,
                        reminder = due.is_reminder(), "native settings differ from policy");
                }
            }
        }
        for (actions, outcome, error) in [
            (&plan.done, Outcome::Succeeded, None),
            (
                &plan.expired,
                Outcome::Failed,
                Some("no effect observed within 10 minutes"),
            ),
        ] {
            if !actions.is_empty() {
                self.finish_native_pending(key, actions, outcome, error, now);
            }
        }
        let dry_run = self.options.dry_run || self.cfg.daemon.dry_run;
        for change in plan.send {
            let intent = Intent {
                at: now,
                workspace: obs.workspace.clone(),
                instance: obs.name.clone(),
                action: change.action(),
                reason: crate::model::Reason::Native,
                policy: d.policy.clone().unwrap_or_default(),
                catch_up: false,
                dry_run,
            };
            let audit = match self.store.record_intent(&intent, &d.memory) {
                Ok(id) => id,
                Err(e) => {
                    tracing::error!(error = %logmemo::chain(&e), instance = %obs.name, "cannot record intent; not acting");
                    continue;
                }
            };
            self.memory.insert(key.clone(), d.memory.clone());
            tracing::info!(workspace = %obs.workspace, instance = %obs.name, change = %change,
                dry_run, "reconciling native settings");
            report.actions.push(ActionTaken {
                at: now,
                workspace: obs.workspace.clone(),
                instance: obs.name.clone(),
                action: change.action().as_str(),
                reason: crate::model::Reason::Native.as_str(),
                policy: intent.policy.clone(),
                catch_up: false,
                outcome: if dry_run { "dry_run" } else { "not_sent" },
                native: true,
            });
            if !dry_run {
                sends.push(NativeSend {
                    key: key.clone(),
                    audit,
                    workspace: ws.clone(),
                    change,
                    report_index: report.actions.len() - 1,
                });
            }
        }
    }

    /// Close the pending audit rows of these native actions of one instance.
    fn finish_native_pending(
        &mut self,
        key: &InstanceKey,
        actions: &[crate::model::Action],
        outcome: Outcome,
        error: Option<&str>,
        now: Timestamp,
    ) {
        self.finish_pending(key, |a| actions.contains(&a), outcome, error, now);
    }

    /// Send the native changes (bounded by the actuator) and record what Azure said. A
    /// change Azure completed at once is `succeeded`; one still running stays `pending`
    /// until an observation shows it. Failed or refused changes stay in flight in memory
    /// until [`crate::native::NATIVE_PENDING_EXPIRY`], then are tried once more.
    async fn send_native_all(
        &mut self,
        sends: Vec<NativeSend>,
        now: Timestamp,
    ) -> Vec<(usize, &'static str)> {
        let mut out = Vec::new();
        // One request per instance: its changes travel in one PUT of the compute.
        let mut groups: BTreeMap<InstanceKey, Vec<NativeSend>> = BTreeMap::new();
        for s in sends {
            groups.entry(s.key.clone()).or_default().push(s);
        }
        let mut tasks = JoinSet::new();
        for (key, group) in groups {
            let actuator = self.actuator.clone();
            tasks.spawn(async move {
                let changes: Vec<_> = group.iter().map(|s| s.change.clone()).collect();
                let workspace = &group[0].workspace;
                let outcome = actuator
                    .send_native(workspace, &key.instance, &changes)
                    .await;
                (group, outcome)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((group, outcome)) = joined else {
                continue;
            };
            let (label, result, request_id, error) = match &outcome {
                SendOutcome::Accepted(op) => (
                    "accepted",
                    if op.is_completed() {
                        Outcome::Succeeded
                    } else {
                        Outcome::Pending
                    },
                    op.request_id().map(str::to_owned),
                    None,
                ),
                SendOutcome::Refused(e) => (
                    "refused",
                    Outcome::Refused,
                    e.request_id().map(str::to_owned),
                    Some(error_text(e)),
                ),
                SendOutcome::Failed(e) => (
                    "failed",
                    Outcome::Failed,
                    e.request_id().map(str::to_owned),
                    Some(error_text(e)),
                ),
                SendOutcome::Unknown(e) => (
                    "unknown",
                    Outcome::Unknown,
                    e.request_id().map(str::to_owned),
                    Some(error_text(e)),
                ),
            };
            for s in group {
                match &error {
                    None => tracing::info!(instance = %s.key, change = %s.change,
                        request_id = request_id.as_deref().unwrap_or("-"), "native settings change accepted"),
                    Some(err) => tracing::warn!(instance = %s.key, change = %s.change,
                        outcome = result.as_str(), error = %err, "native settings change not carried out"),
                }
                if let Err(e) = self.store.record_outcome(
                    s.audit,
                    result,
                    request_id.as_deref(),
                    error.as_deref(),
                    now,
                ) {
                    tracing::error!(error = %logmemo::chain(&e), "cannot record an outcome");
                }
                out.push((s.report_index, label));
            }
        }
        out
    }

    /// Log the decision: an action always; a decision not to act when it changes, and at
    /// most hourly while it holds (it used to be every pass).
    fn log_decision(
        &mut self,
        key: &InstanceKey,
        obs: &InstanceObservation,
        d: &Decision,
        now: Timestamp,
    ) {
        let policy = d.policy.as_deref().unwrap_or("-");
        match d.verdict {
            Verdict::Act(p) => {
                self.said_skip.clear(key);
                tracing::info!(
                    workspace = %obs.workspace, instance = %obs.name, state = %obs.state, policy,
                    action = %p.action, reason = %p.reason, catch_up = p.catch_up,
                    dry_run = self.options.dry_run || self.cfg.daemon.dry_run, "acting"
                );
            }
            Verdict::Skip { planned, why } => {
                let what = format!(
                    "{policy} {} {} {}",
                    planned.action,
                    planned.reason,
                    why.as_str()
                );
                match self.said_skip.due(key, &what, now) {
                    Some(due) => tracing::info!(
                        workspace = %obs.workspace, instance = %obs.name, state = %obs.state, policy,
                        action = %planned.action, reason = %planned.reason, skipped = why.as_str(),
                        reminder = due.is_reminder(), "not acting"
                    ),
                    None => tracing::debug!(
                        workspace = %obs.workspace, instance = %obs.name, skipped = why.as_str(), "still not acting"
                    ),
                }
            }
            Verdict::Wait | Verdict::Quiet { .. } => {
                self.said_skip.clear(key);
                tracing::debug!(
                    workspace = %obs.workspace, instance = %obs.name, state = %obs.state, policy, "nothing to do"
                );
            }
        }
    }

    /// Send every planned request (bounded by the actuator) and record what Azure said.
    async fn send_all(
        &mut self,
        sends: Vec<Send>,
        now: Timestamp,
    ) -> Vec<(InstanceKey, &'static str)> {
        let mut outcomes = Vec::new();
        let mut tasks = JoinSet::new();
        for s in sends {
            let actuator = self.actuator.clone();
            tasks.spawn(async move {
                let outcome = actuator
                    .send(&s.workspace, &s.key.instance, s.planned.action)
                    .await;
                (s, outcome)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((s, outcome)) = joined else {
                continue;
            };
            let label = outcome.label();
            outcomes.push((s.key.clone(), label));
            self.record_send(s, outcome, now);
        }
        outcomes
    }

    fn record_send(&mut self, s: Send, outcome: SendOutcome, now: Timestamp) {
        let mut mem = self.memory.get(&s.key).cloned().unwrap_or_default();
        let (result, request_id, error) = match &outcome {
            SendOutcome::Accepted(op) => {
                (Outcome::Pending, op.request_id().map(str::to_owned), None)
            }
            SendOutcome::Refused(e) => {
                mem.operation_refused(now);
                (
                    Outcome::Refused,
                    e.request_id().map(str::to_owned),
                    Some(error_text(e)),
                )
            }
            SendOutcome::Failed(e) => {
                mem.operation_failed(now);
                (
                    Outcome::Failed,
                    e.request_id().map(str::to_owned),
                    Some(error_text(e)),
                )
            }
            // Accepted, but not followable: memory keeps the pending transition (written with
            // the intent), so the next passes wait for it and confirm it from the observed
            // state, as for an accepted request; nothing is sent again meanwhile.
            SendOutcome::Unknown(e) => (
                Outcome::Unknown,
                e.request_id().map(str::to_owned),
                Some(error_text(e)),
            ),
        };
        match &error {
            None => {
                tracing::info!(instance = %s.key, action = %s.planned.action, request_id = request_id.as_deref().unwrap_or("-"), "request accepted")
            }
            Some(err) if result == Outcome::Unknown => {
                tracing::warn!(instance = %s.key, action = %s.planned.action, request_id = request_id.as_deref().unwrap_or("-"), error = %err, "request accepted but its operation cannot be followed; the next passes confirm it from the instance's state")
            }
            Some(err) => {
                tracing::warn!(instance = %s.key, action = %s.planned.action, outcome = result.as_str(), error = %err, "request not carried out")
            }
        }
        if let Err(e) = self.store.record_outcome(
            s.audit,
            result,
            request_id.as_deref(),
            error.as_deref(),
            now,
        ) {
            tracing::error!(error = %logmemo::chain(&e), "cannot record an outcome");
        }
        if result != Outcome::Pending {
            if let Err(e) = self.store.save_memory(&[(s.key.clone(), mem.clone())], now) {
                tracing::error!(error = %logmemo::chain(&e), "cannot save memory");
            }
            self.memory.insert(s.key, mem);
            return;
        }
        if let (true, SendOutcome::Accepted(op @ Accepted::Pending { .. })) =
            (self.options.follow_operations, outcome)
        {
            let (client, tx, key, audit) =
                (self.client.clone(), self.ended_tx.clone(), s.key, s.audit);
            // Real ARM gives no Retry-After: poll at the configured cadence (15 s by default).
            let every = self.cfg.daemon.operation_poll_interval;
            self.followers.spawn(async move {
                let result = client.wait_operation_every(&op, every, |_| {}).await;
                // The receiver lives as long as the daemon; a closed channel means shutdown.
                drop(tx.send(OperationEnded { key, audit, result }));
            });
        }
    }

    /// Record the ends of operations followed in the background, and reap their finished
    /// tasks: a `JoinSet` keeps each one until joined, which grew the daemon by a few KiB
    /// per action it ever took (found by the fault soak).
    fn drain_ended(&mut self) {
        while let Ok(ended) = self.ended_rx.try_recv() {
            self.record_ended(ended);
        }
        while let Some(joined) = self.followers.try_join_next() {
            if let Err(e) = joined
                && e.is_panic()
            {
                tracing::error!(error = %logmemo::chain(&e), "an operation follower panicked");
            }
        }
    }

    /// Operations being followed in the background right now.
    pub fn following(&self) -> usize {
        self.followers.len()
    }

    fn record_ended(&mut self, ended: OperationEnded) {
        let now = self.clock.now();
        let mut mem = self.memory.get(&ended.key).cloned().unwrap_or_default();
        let (outcome, error) = match &ended.result {
            Ok(()) => {
                mem.operation_succeeded();
                (Outcome::Succeeded, None)
            }
            Err(e @ AzureError::OperationFailed { error, .. }) => {
                match crate::actuate::classify_operation_end(error.as_deref()) {
                    // The instance was in the wrong state: back off as for a 400 refusal.
                    OperationEnd::Refused => {
                        mem.operation_refused(now);
                        (Outcome::Refused, Some(error_text(e)))
                    }
                    OperationEnd::Failed => {
                        mem.operation_failed(now);
                        (Outcome::Failed, Some(error_text(e)))
                    }
                }
            }
            Err(e) => {
                // Lost track (timeout, network): the next passes confirm from the state.
                tracing::warn!(instance = %ended.key, error = %error_text(e), "lost track of an operation");
                return;
            }
        };
        tracing::info!(instance = %ended.key, outcome = outcome.as_str(), error = error.as_deref().unwrap_or("-"), "operation ended");
        if let Err(e) = self
            .store
            .record_outcome(ended.audit, outcome, None, error.as_deref(), now)
        {
            tracing::debug!(error = %logmemo::chain(&e), "outcome already recorded");
        }
        if let Err(e) = self
            .store
            .save_memory(&[(ended.key.clone(), mem.clone())], now)
        {
            tracing::error!(error = %logmemo::chain(&e), "cannot save memory");
        }
        self.memory.insert(ended.key, mem);
    }

    /// The next instant a pass is due: the poll interval, or just after the next schedule
    /// change or cron event of any policy, whichever is sooner.
    pub fn next_wake(&self, now: Timestamp) -> Timestamp {
        let poll = SignedDuration::try_from(self.cfg.daemon.poll_interval)
            .unwrap_or(SignedDuration::from_secs(60));
        let by_poll = now.checked_add(poll).unwrap_or(now);
        self.policies
            .iter()
            .filter_map(|p| next_change(p, now))
            // A hair after the boundary, so the pass is surely on the far side of it.
            .filter_map(|n| n.at.checked_add(SignedDuration::from_millis(50)).ok())
            .fold(by_poll, Timestamp::min)
    }

    /// Run passes until `shutdown` is cancelled; `on_pass` sees each report (readiness,
    /// watchdog). `reload` yields new configs (SIGHUP).
    pub async fn run(
        &mut self,
        shutdown: CancellationToken,
        reload: &mut mpsc::Receiver<(Config, Option<ArmClient>)>,
        mut on_pass: impl FnMut(&PassReport),
    ) {
        loop {
            let report = self.pass().await;
            on_pass(&report);
            let wake = report.next_wake.unwrap_or_else(|| self.clock.now());
            loop {
                let until = wake.duration_since(self.clock.now());
                if until <= SignedDuration::ZERO {
                    break;
                }
                // Sleep in steps of at most a minute: wall-clock jumps and suspends are
                // noticed; the monotonic clock alone would miss them.
                let step = Duration::try_from(until)
                    .unwrap_or_default()
                    .min(Duration::from_secs(60));
                tokio::select! {
                    () = shutdown.cancelled() => return self.drain().await,
                    () = tokio::time::sleep(step) => {}
                    Some(ended) = self.ended_rx.recv() => self.record_ended(ended),
                    Some((cfg, client)) = reload.recv() => {
                        self.reload(cfg, client);
                        tracing::info!("configuration reloaded");
                        break;
                    }
                }
            }
            if shutdown.is_cancelled() {
                return self.drain().await;
            }
        }
    }

    /// Give operations followed in the background a moment to end, then record what is
    /// known. Requests are never abandoned half-sent: `pass` awaits its sends.
    pub async fn drain(&mut self) {
        let grace = Duration::from_secs(5);
        let deadline = tokio::time::Instant::now() + grace;
        while !self.followers.is_empty() {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                Some(ended) = self.ended_rx.recv() => self.record_ended(ended),
                _ = self.followers.join_next() => {}
            }
        }
        self.drain_ended();
        self.followers.abort_all();
        tracing::info!("stopped; pending operations will be confirmed at the next start");
    }
}

/// An error as one line for the audit log and the logs: its ARM code, then the error and
/// every cause under it ([`logmemo::chain`]); never contains a token.
fn error_text(e: &AzureError) -> String {
    match e.arm_code() {
        Some(code) => format!("{code}: {}", logmemo::chain(e)),
        None => logmemo::chain(e),
    }
}

/// Whether an unreadable hold of `key` is news (first seen, or a new value): it is logged
/// once, not every pass; a fixed or removed tag is forgotten, so breaking it again is news.
fn invalid_hold_news(key: &InstanceKey, why: Option<&str>) -> bool {
    static SAID: std::sync::LazyLock<Mutex<BTreeMap<InstanceKey, String>>> =
        std::sync::LazyLock::new(Default::default);
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    match why {
        None => {
            said.remove(key);
            false
        }
        Some(why) if said.get(key).map(String::as_str) == Some(why) => false,
        Some(why) => {
            said.insert(key.clone(), why.to_owned());
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_hold_is_news_once_per_value() {
        let k = InstanceKey::new("lab", "ci-news");
        assert!(invalid_hold_news(&k, Some("a")));
        assert!(!invalid_hold_news(&k, Some("a")));
        assert!(invalid_hold_news(&k, Some("b")));
        assert!(!invalid_hold_news(&k, None));
        assert!(invalid_hold_news(&k, Some("b")), "fixed, then broken again");
    }
}
