//! The reconcile loop: observe every workspace, plan the pass ([`crate::engine::pass::plan_pass`]),
//! write, send, record; then sleep until the next poll or the next schedule boundary,
//! whichever comes first.
//!
//! Level-triggered: each pass starts again from what Azure says. Memory and the audit log
//! live in the [`Store`]; each workspace's intents are written (with the memory that makes
//! them "handled") in one transaction before any request is sent, so a crash never causes
//! a second request for the same transition. A workspace that cannot be observed is left
//! alone for the pass. What to do is decided purely in [`crate::engine::pass`]; this file is the
//! shell around it: I/O, log lines, and following operations.

pub mod accountant;
pub mod actuate;
mod agent_view;
pub mod connect;
pub mod exporter;
pub mod heartbeats;
pub mod hook;
pub mod http;
pub mod logmemo;
pub mod metrics;
pub mod observe;
pub mod passlog;
pub mod price_fetch;
pub mod shutdown;
pub mod store;
pub mod systemd;
pub mod telemetry;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::azure::{Accepted, ArmClient, AzureError};
use crate::clock::Clock;
use crate::daemon::actuate::{Actuator, OperationEnd, SendOutcome};
use crate::daemon::observe::WorkspaceSnapshot;
use crate::daemon::passlog::PassLog;
use crate::daemon::store::{AuditId, Outcome, Store, StoreError};
use crate::engine::config::Config;
use crate::engine::decide::next_change;
use crate::engine::memory::InstanceMemory;
use crate::engine::model::InstanceKey;
use crate::engine::pass::{Observed, PassInput, PassPlan, Request, RequestKind, plan_pass};
use crate::engine::policy::Policy;

use crate::daemon::hook::PassHook;
use crate::engine::report::{ActionOutcome, PassReport, Status, WorkspaceSeen};

/// How the daemon behaves beyond its config.
#[derive(Debug, Clone, Copy)]
pub struct DaemonOptions {
    /// Decide and record, act on nothing.
    pub dry_run: bool,
    /// Follow each accepted operation to its end in the background (real time). Off in
    /// virtual time, where the passes confirm outcomes from the observed state.
    pub follow_operations: bool,
}

/// The end of an operation followed in the background.
#[derive(Debug)]
struct OperationEnded {
    key: InstanceKey,
    audit: AuditId,
    result: Result<(), AzureError>,
}

/// A planned request whose intents are written: what is sent, and the audit rows that
/// record what became of it.
struct Outgoing {
    request: Request,
    /// One per intent of the request (one per native change), in order.
    audits: Vec<AuditId>,
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
    /// What it said last about each workspace and instance.
    said: PassLog,
    /// The agents' heartbeat readers (`[agent]`); `None` without it, or when they could not
    /// be built (then the agent's view is unknown, never idle).
    heartbeats: Option<heartbeats::Heartbeats>,
    /// Ignored heartbeats already said (once per workspace and reason), and unreachable
    /// accounts (again when the error changes).
    said_ignored: logmemo::LogMemo<(String, String)>,
    /// Snoozes already said and recorded (each new or changed snooze once).
    said_snooze: logmemo::LogMemo<InstanceKey>,
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
        let heartbeats = agent_view::build_heartbeats(&cfg);
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
            said: PassLog::default(),
            heartbeats,
            said_ignored: logmemo::LogMemo::new(None),
            said_snooze: logmemo::LogMemo::new(None),
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
        // `[agent]`, the accounts or the credential may have changed: built again.
        self.heartbeats = agent_view::build_heartbeats(&cfg);
        self.cfg = Arc::new(cfg);
    }

    /// One full pass: observe, plan, write, send, record.
    pub async fn pass(&mut self) -> PassReport {
        let began = tokio::time::Instant::now();
        self.drain_ended();
        let (mut snapshots, agent) = self.observe_with_heartbeats().await;
        // Decide at the instant after observing: a pass woken for a boundary must see it.
        let now = self.clock.now();
        if let Some(hook) = self.hook.as_mut() {
            hook.observed(&self.cfg, &mut snapshots, now);
        }
        let mut plan = self.plan(&snapshots, now);
        let dry_run = self.options.dry_run || self.cfg.daemon.dry_run;
        self.agent_rows(&mut plan.rows, &snapshots, &agent, dry_run, now);
        for snap in &snapshots {
            match &snap.instances {
                Err(e) => self.said.blind(&snap.alias, e, now),
                Ok(_) => {
                    self.said.seen(&snap.alias);
                    self.last_observed.insert(snap.alias.clone(), now);
                }
            }
        }
        let observed_ok: BTreeSet<String> = plan.writes.iter().map(|w| w.alias.clone()).collect();
        for (row, decided) in plan.rows.iter().zip(&plan.decided) {
            self.said.instance(row, decided, dry_run, now);
        }
        let PassPlan {
            rows,
            writes,
            failed: _,
            mut actions,
            requests,
            ..
        } = plan;
        let mut recorded = vec![true; actions.len()];
        let audits = self.write_all(writes, &mut recorded, now);
        let outgoing = requests
            .into_iter()
            .filter_map(|request| {
                let ids = audits.get(request.write)?.as_ref()?;
                let audits = request.intents.iter().map(|&i| ids.get(i).copied());
                let audits = audits.collect::<Option<Vec<_>>>()?;
                Some(Outgoing { request, audits })
            })
            .collect();
        let mut report = PassReport {
            at: Some(now),
            agent: self.agent_report(agent, now),
            ..PassReport::default()
        };
        self.account_workspaces(&observed_ok, now, &mut report);
        for (index, label) in self.send_all(outgoing, now).await {
            if let Some(a) = actions.get_mut(index) {
                a.outcome = label;
            }
        }
        // Actions whose intent could not be written were neither sent nor recorded.
        report.actions = actions
            .into_iter()
            .zip(recorded)
            .filter_map(|(a, recorded)| recorded.then_some(a))
            .collect();
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

    /// Decide the pass from what was observed, what is remembered and what is in flight.
    fn plan(&self, snapshots: &[WorkspaceSnapshot], now: Timestamp) -> PassPlan {
        // Read only when something is in flight: most passes have nothing to settle.
        let in_flight = self
            .memory
            .values()
            .any(|m| m.pending.is_some() || !m.native_pending.is_empty());
        let pending = if in_flight {
            self.store
                .pending_intents()
                .map_err(
                    |e| tracing::error!(error = %crate::engine::text::chain(&e), "cannot read pending intents"),
                )
                .ok()
        } else {
            Some(Vec::new())
        };
        let observed: Vec<Observed<'_>> = snapshots
            .iter()
            .map(|s| Observed {
                alias: &s.alias,
                instances: s.instances.as_deref().ok(),
            })
            .collect();
        plan_pass(&PassInput {
            cfg: &self.cfg,
            observed: &observed,
            memory: &self.memory,
            pending: pending.as_deref(),
            started: self.started,
            now,
            dry_run: self.options.dry_run || self.cfg.daemon.dry_run,
        })
    }

    /// Write each workspace's part of the plan in one transaction and take its memory.
    /// Returns the new audit ids per workspace (`None`: not written, so nothing of it is
    /// sent). `recorded` (one per report entry) turns false for the intents not written.
    fn write_all(
        &mut self,
        writes: Vec<crate::engine::pass::WorkspaceWrite>,
        recorded: &mut [bool],
        now: Timestamp,
    ) -> Vec<Option<Vec<AuditId>>> {
        let mut out = Vec::with_capacity(writes.len());
        let mut next_action = 0;
        for w in writes {
            let sent = w.intents.iter().filter(|i| !i.missed).count();
            let written = if w.is_empty() {
                Ok(Vec::new())
            } else {
                let closes: Vec<_> = w.close.iter().map(|c| (c.id, c.outcome, c.error)).collect();
                let intents: Vec<_> = w.intents.iter().map(|i| (&i.intent, i.outcome())).collect();
                self.store
                    .write_workspace(&closes, &intents, &w.memory, &w.forget, now)
            };
            // An instance with an intent not written keeps its old memory, so the next pass
            // decides again; other memory is kept in the process even when the disk fails.
            let unwritten: BTreeSet<InstanceKey> = match &written {
                Ok(_) => BTreeSet::new(),
                Err(e) => {
                    if sent > 0 {
                        tracing::error!(error = %crate::engine::text::chain(e), workspace = %w.alias, "cannot record intent; not acting");
                    } else {
                        tracing::error!(error = %crate::engine::text::chain(e), workspace = %w.alias, "cannot save memory");
                    }
                    for r in recorded.iter_mut().skip(next_action).take(sent) {
                        *r = false;
                    }
                    w.intents
                        .iter()
                        .filter(|i| !i.missed)
                        .map(|i| i.intent.key())
                        .collect()
                }
            };
            next_action += sent;
            for (key, mem) in w.memory {
                if !unwritten.contains(&key) {
                    self.memory.insert(key, mem);
                }
            }
            for k in &w.forget {
                self.memory.remove(k);
                self.said.forget(k);
            }
            out.push(written.ok());
        }
        out
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
            Err(e) => {
                tracing::warn!(error = %crate::engine::text::chain(&e), "cannot prune the audit log")
            }
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
        self.said
            .retain_workspaces(|alias| configured.contains(alias));
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

    /// Send every planned request, power and native alike (bounded by the actuator), and
    /// record what Azure said. Returns each report entry's outcome label by index.
    async fn send_all(
        &mut self,
        sends: Vec<Outgoing>,
        now: Timestamp,
    ) -> Vec<(usize, ActionOutcome)> {
        let mut out = Vec::new();
        let mut tasks = JoinSet::new();
        for s in sends {
            let actuator = self.actuator.clone();
            tasks.spawn(async move {
                let (ws, instance) = (&s.request.workspace, &s.request.key.instance);
                let outcome = match &s.request.kind {
                    RequestKind::Power(action) => actuator.send(ws, instance, *action).await,
                    RequestKind::Native(changes) => {
                        actuator.send_native(ws, instance, changes).await
                    }
                };
                (s, outcome)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((s, outcome)) = joined else {
                continue;
            };
            let label = outcome.label();
            out.extend(s.request.actions.iter().map(|&i| (i, label)));
            self.record_send(s, outcome, now);
        }
        out
    }

    /// Record what Azure said to one request: its audit rows, and for a power action the
    /// instance's memory (backoff after a refusal or failure) and the operation to follow.
    ///
    /// A power action Azure accepted stays `pending` until an observation shows its effect.
    /// A native change Azure completed at once is `succeeded`; one still running stays
    /// `pending` until an observation shows it. Failed or refused native changes stay in
    /// flight in memory until [`crate::engine::native::NATIVE_PENDING_EXPIRY`], then are tried once
    /// more.
    fn record_send(&mut self, s: Outgoing, outcome: SendOutcome, now: Timestamp) {
        let key = &s.request.key;
        let (result, request_id, error) = match &outcome {
            SendOutcome::Accepted(op) => {
                let done = op.is_completed() && matches!(s.request.kind, RequestKind::Native(_));
                let result = if done {
                    Outcome::Succeeded
                } else {
                    Outcome::Pending
                };
                (result, op.request_id().map(str::to_owned), None)
            }
            SendOutcome::Refused(e) => (
                Outcome::Refused,
                e.request_id().map(str::to_owned),
                Some(error_text(e)),
            ),
            SendOutcome::Failed(e) => (
                Outcome::Failed,
                e.request_id().map(str::to_owned),
                Some(error_text(e)),
            ),
            // Accepted, but not followable: memory keeps the pending transition (written with
            // the intent), so the next passes wait for it and confirm it from the observed
            // state, as for an accepted request; nothing is sent again meanwhile.
            SendOutcome::Unknown(e) => (
                Outcome::Unknown,
                e.request_id().map(str::to_owned),
                Some(error_text(e)),
            ),
        };
        let rid = request_id.as_deref().unwrap_or("-");
        match (&s.request.kind, &error) {
            (RequestKind::Power(action), None) => {
                tracing::info!(instance = %key, action = %action, request_id = rid, "request accepted")
            }
            (RequestKind::Power(action), Some(err)) if result == Outcome::Unknown => {
                tracing::warn!(instance = %key, action = %action, request_id = rid, error = %err, "request accepted but its operation cannot be followed; the next passes confirm it from the instance's state")
            }
            (RequestKind::Power(action), Some(err)) => {
                tracing::warn!(instance = %key, action = %action, outcome = result.as_str(), error = %err, "request not carried out")
            }
            (RequestKind::Native(changes), error) => {
                for change in changes {
                    match error {
                        None => tracing::info!(instance = %key, change = %change,
                            request_id = rid, "native settings change accepted"),
                        Some(err) => tracing::warn!(instance = %key, change = %change,
                            outcome = result.as_str(), error = %err, "native settings change not carried out"),
                    }
                }
            }
        }
        for &audit in &s.audits {
            if let Err(e) = self.store.record_outcome(
                audit,
                result,
                request_id.as_deref(),
                error.as_deref(),
                now,
            ) {
                tracing::error!(error = %crate::engine::text::chain(&e), "cannot record an outcome");
            }
        }
        let RequestKind::Power(_) = s.request.kind else {
            return;
        };
        if matches!(result, Outcome::Refused | Outcome::Failed) {
            let mut mem = self.memory.get(key).cloned().unwrap_or_default();
            if result == Outcome::Refused {
                mem.operation_refused(now);
            } else {
                mem.operation_failed(now);
            }
            self.save_one(key.clone(), mem, now);
            return;
        }
        if let (true, SendOutcome::Accepted(op @ Accepted::Pending { .. })) =
            (self.options.follow_operations, outcome)
        {
            let (client, tx) = (self.client.clone(), self.ended_tx.clone());
            let Some(&audit) = s.audits.first() else {
                return;
            };
            let key = s.request.key;
            // Real ARM gives no Retry-After: poll at the configured cadence (15 s by default).
            let every = self.cfg.daemon.operation_poll_interval;
            self.followers.spawn(async move {
                let result = client.wait_operation_every(&op, every, |_| {}).await;
                // The receiver lives as long as the daemon; a closed channel means shutdown.
                drop(tx.send(OperationEnded { key, audit, result }));
            });
        }
    }

    /// Save one instance's memory, on disk and in the process.
    fn save_one(&mut self, key: InstanceKey, mem: InstanceMemory, now: Timestamp) {
        if let Err(e) = self.store.save_memory(&[(key.clone(), mem.clone())], now) {
            tracing::error!(error = %crate::engine::text::chain(&e), "cannot save memory");
        }
        self.memory.insert(key, mem);
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
                tracing::error!(error = %crate::engine::text::chain(&e), "an operation follower panicked");
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
                match crate::daemon::actuate::classify_operation_end(error.as_deref()) {
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
            tracing::debug!(error = %crate::engine::text::chain(&e), "outcome already recorded");
        }
        if let Err(e) = self
            .store
            .save_memory(&[(ended.key.clone(), mem.clone())], now)
        {
            tracing::error!(error = %crate::engine::text::chain(&e), "cannot save memory");
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

/// An error as one line, with its chain and ARM code; never contains a token.
fn error_text(e: &AzureError) -> String {
    match e.arm_code() {
        Some(code) => format!("{code}: {}", crate::engine::text::chain(e)),
        None => crate::engine::text::chain(e),
    }
}
