//! The life cycle of one compute instance, as pure functions of `now`.
//!
//! An operation (start, stop, …) is accepted by [`Machine::begin`], which puts the instance
//! in its transitional state and records when the operation ends and whether it fails.
//! [`Machine::settle`] applies every operation whose end time has passed. Nothing here
//! reads a clock or does I/O; the server calls `settle(now)` before it looks at an instance.
//!
//! The instance also carries out Azure's own settings ([`NativeSettings`]) by itself, as a
//! real compute instance does while nobody watches: after `idleTimeBeforeShutdown` with no
//! Jupyter or job activity it stops (trigger `IdleShutdown`), and its enabled cron
//! schedules start and stop it (trigger `Schedule`). `settle` replays every such firing
//! between the last settle and `now` in time order, each at its exact instant, so virtual
//! time may jump by a week and still see each firing. A schedule fires at its cron times in
//! its zone, with the DST rule the emulator assumes of Azure ([`crate::cron`]); a firing that
//! finds the instance mid-operation or already in the target state does nothing.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::cron::NativeCron;
use super::fleet::{Activity, ActivityKind};

/// One enabled native cron schedule, ready to evaluate.
#[derive(Debug, Clone)]
pub struct NativeRule {
    /// `Start` or `Stop`.
    pub kind: OpKind,
    /// The schedule's expression.
    pub cron: NativeCron,
    /// The IANA zone its Windows time zone stands for.
    pub tz: jiff::tz::TimeZone,
}

impl PartialEq for NativeRule {
    fn eq(&self, other: &NativeRule) -> bool {
        self.kind == other.kind
            && self.cron == other.cron
            && self.tz.iana_name() == other.tz.iana_name()
    }
}

/// Azure's own settings the instance carries out by itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NativeSettings {
    /// `idleTimeBeforeShutdown`.
    pub idle: Option<Duration>,
    /// When `idle` was last set: idle time counts from no earlier than this, so an
    /// instance idle for hours does not stop the instant its setting appears (or the
    /// emulator starts).
    pub idle_set_at: Option<Timestamp>,
    /// Enabled cron schedules.
    pub schedules: Vec<NativeRule>,
    /// How long a start it triggers takes.
    pub start_takes: Duration,
    /// How long a stop it triggers takes.
    pub stop_takes: Duration,
}

/// Most steps of the idle-deadline search (each skips past one activity).
const IDLE_SEARCH_STEPS: usize = 256;

/// A long-running operation on an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// PUT of a new instance.
    Create,
    /// POST start.
    Start,
    /// POST stop.
    Stop,
    /// POST restart.
    Restart,
    /// DELETE.
    Delete,
}

impl OpKind {
    /// `lastOperation.operationName`.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "Create",
            OpKind::Start => "Start",
            OpKind::Stop => "Stop",
            OpKind::Restart => "Restart",
            OpKind::Delete => "Delete",
        }
    }

    /// The RBAC action the operation needs.
    pub fn action(self) -> &'static str {
        match self {
            OpKind::Create => "Microsoft.MachineLearningServices/workspaces/computes/write",
            OpKind::Start => "Microsoft.MachineLearningServices/workspaces/computes/start/action",
            OpKind::Stop => "Microsoft.MachineLearningServices/workspaces/computes/stop/action",
            OpKind::Restart => {
                "Microsoft.MachineLearningServices/workspaces/computes/restart/action"
            }
            OpKind::Delete => "Microsoft.MachineLearningServices/workspaces/computes/delete",
        }
    }
}

/// Who asked for an operation (`lastOperation.operationTrigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A user or API call.
    User,
    /// A native schedule.
    Schedule,
    /// The native idle shutdown.
    IdleShutdown,
}

impl Trigger {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::User => "User",
            Trigger::Schedule => "Schedule",
            Trigger::IdleShutdown => "IdleShutdown",
        }
    }
}

/// The settled (non-derived) state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Being created.
    Creating,
    /// Creation failed.
    CreateFailed,
    /// Running (shown as `JobRunning` while a job runs).
    Running,
    /// Stopped.
    Stopped,
    /// Starting.
    Starting,
    /// Stopping.
    Stopping,
    /// Restarting.
    Restarting,
    /// Being deleted.
    Deleting,
    /// Gone; the server removes it.
    Deleted,
    /// A state the emulator never leaves by itself (`SettingUp`, `Unusable`, …).
    Stuck(&'static str),
}

impl State {
    /// Parses a fleet state name (`JobRunning` maps to `Running` plus a job).
    pub fn from_fleet(name: &str) -> State {
        match name {
            "Running" | "JobRunning" => State::Running,
            "Stopped" => State::Stopped,
            "Starting" => State::Starting,
            "Stopping" => State::Stopping,
            "Restarting" => State::Restarting,
            "Creating" => State::Creating,
            "CreateFailed" => State::CreateFailed,
            "SettingUp" => State::Stuck("SettingUp"),
            "UserSettingUp" => State::Stuck("UserSettingUp"),
            "Resizing" => State::Stuck("Resizing"),
            "Unusable" => State::Stuck("Unusable"),
            _ => State::Stuck("Unknown"),
        }
    }

    /// The ARM `properties.properties.state` name (without the job overlay).
    pub fn name(self) -> &'static str {
        match self {
            State::Creating => "Creating",
            State::CreateFailed => "CreateFailed",
            State::Running => "Running",
            State::Stopped => "Stopped",
            State::Starting => "Starting",
            State::Stopping => "Stopping",
            State::Restarting => "Restarting",
            State::Deleting => "Deleting",
            State::Deleted => "Deleted",
            State::Stuck(s) => s,
        }
    }
}

/// Final outcome of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpStatus {
    /// Not finished yet.
    InProgress,
    /// Finished well.
    Succeeded,
    /// Finished badly.
    Failed,
}

/// An operation that has been accepted and not yet applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// Operation id (the last segment of the status URL).
    pub id: String,
    /// What it does.
    pub kind: OpKind,
    /// When it was accepted.
    pub started: Timestamp,
    /// When it completes.
    pub ends: Timestamp,
    /// Whether it will fail (decided up front, from the fault settings).
    pub fails: bool,
    /// Who asked.
    pub trigger: Trigger,
    /// State to return to on failure.
    pub previous: State,
}

/// `lastOperation` of the instance.
#[derive(Debug, Clone, PartialEq)]
pub struct LastOperation {
    /// What it was.
    pub kind: OpKind,
    /// When it was accepted.
    pub time: Timestamp,
    /// How it went.
    pub status: OpStatus,
    /// Who asked.
    pub trigger: Trigger,
}

impl LastOperation {
    /// `operationStatus` on the wire: `InProgress`, `Succeeded` or `{Name}Failed`.
    pub fn status_name(&self) -> String {
        match self.status {
            OpStatus::InProgress => "InProgress".to_owned(),
            OpStatus::Succeeded => "Succeeded".to_owned(),
            OpStatus::Failed => format!("{}Failed", self.kind.name()),
        }
    }
}

/// A Jupyter kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    /// Kernel id (a UUID).
    pub id: String,
    /// Kernel spec name.
    pub name: String,
    /// Whether it executes code right now.
    pub busy: bool,
    /// Last time it did something.
    pub last_activity: Timestamp,
    /// Busy without a sound (a silent cell): its `last_activity` stays frozen while busy.
    pub silent: bool,
}

/// A native firing the instance carried out by itself (idle shutdown, schedule), kept so
/// that a simulation can say what Azure's own settings did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeFiring {
    /// When it fired.
    pub at: Timestamp,
    /// `Start` or `Stop`.
    pub kind: OpKind,
    /// `IdleShutdown` or `Schedule`.
    pub trigger: Trigger,
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another operation is in progress (HTTP 409).
    Busy {
        /// The running operation.
        running: OpKind,
    },
    /// The instance is not in the state the operation needs (HTTP 400).
    WrongState {
        /// The refused operation.
        wanted: OpKind,
        /// The current state, as shown on the wire.
        current: &'static str,
    },
}

/// The life-cycle state of one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// Settled state.
    pub state: State,
    /// The operation in progress, if any.
    pub pending: Option<Pending>,
    /// The last operation, if any.
    pub last_operation: Option<LastOperation>,
    /// When the instance last became Running (for Jupyter `started`).
    pub started_at: Option<Timestamp>,
    /// A job started through the control API and not yet ended.
    pub manual_job: bool,
    /// Last Jupyter activity.
    pub last_activity: Timestamp,
    /// Jupyter kernels started through the control API.
    pub kernels: Vec<Kernel>,
    /// Scripted activity windows from the fleet, sorted by `from`.
    pub script: Vec<Activity>,
    /// Azure's own idle shutdown and schedules.
    pub native: NativeSettings,
    /// Native firings up to this instant have been carried out.
    pub native_from: Timestamp,
    /// Owner starts (`start = true` windows) opening at or before this instant are done.
    pub user_starts_until: Timestamp,
    /// Index in `script` before which no owner start is due any more.
    pub next_user_start: usize,
    /// Every native operation the instance began by itself, oldest first.
    pub native_log: Vec<NativeFiring>,
}

/// What a finished operation did, for the server's bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Operation id.
    pub id: String,
    /// Operation kind.
    pub kind: OpKind,
    /// Whether it failed.
    pub failed: bool,
}

impl Machine {
    /// An instance in `state` at `now`, as the fleet describes it. A transitional fleet
    /// state becomes an operation in progress that ends after its full duration.
    pub fn new(state: State, now: Timestamp, started_at: Option<Timestamp>) -> Machine {
        Machine {
            state,
            pending: None,
            last_operation: None,
            started_at: (state == State::Running).then(|| started_at.unwrap_or(now)),
            manual_job: false,
            last_activity: started_at.unwrap_or(now),
            kernels: Vec::new(),
            script: Vec::new(),
            native: NativeSettings::default(),
            native_from: now,
            // A window opening exactly at creation is still due.
            user_starts_until: now
                .checked_sub(SignedDuration::from_nanos(1))
                .unwrap_or(now),
            next_user_start: 0,
            native_log: Vec::new(),
        }
    }

    /// A new instance being created by a PUT.
    pub fn creating(now: Timestamp, took: Duration, id: String, fails: bool) -> Machine {
        let mut m = Machine::new(State::Creating, now, None);
        m.pending = Some(Pending {
            id,
            kind: OpKind::Create,
            started: now,
            ends: add(now, took),
            fails,
            trigger: Trigger::User,
            previous: State::Creating,
        });
        m.last_operation = Some(LastOperation {
            kind: OpKind::Create,
            time: now,
            status: OpStatus::InProgress,
            trigger: Trigger::User,
        });
        m
    }

    /// Accepts an operation at `now` that takes `took`, or says why not.
    pub fn begin(
        &mut self,
        kind: OpKind,
        now: Timestamp,
        took: Duration,
        id: String,
        fails: bool,
        trigger: Trigger,
    ) -> Result<(), Refusal> {
        self.settle(now);
        self.start_op(kind, now, took, id, fails, trigger)
    }

    /// [`Machine::begin`] without settling first (for firings inside `settle`).
    fn start_op(
        &mut self,
        kind: OpKind,
        now: Timestamp,
        took: Duration,
        id: String,
        fails: bool,
        trigger: Trigger,
    ) -> Result<(), Refusal> {
        if let Some(p) = &self.pending {
            return Err(Refusal::Busy { running: p.kind });
        }
        let next = match (kind, self.state) {
            (OpKind::Start, State::Stopped) => State::Starting,
            (OpKind::Stop, State::Running) => State::Stopping,
            (OpKind::Restart, State::Running) => State::Restarting,
            (OpKind::Delete, State::Deleting | State::Deleted) => {
                return Err(Refusal::Busy {
                    running: OpKind::Delete,
                });
            }
            (OpKind::Delete, _) => State::Deleting,
            (wanted, _) => {
                return Err(Refusal::WrongState {
                    wanted,
                    current: self.shown_state(now),
                });
            }
        };
        self.pending = Some(Pending {
            id,
            kind,
            started: now,
            ends: add(now, took),
            fails,
            trigger,
            previous: self.state,
        });
        self.state = next;
        self.last_operation = Some(LastOperation {
            kind,
            time: now,
            status: OpStatus::InProgress,
            trigger,
        });
        Ok(())
    }

    /// Applies, in time order, the pending operation if it has ended by `now` and every
    /// native firing (idle shutdown, schedules) due by `now`. Returns the last operation
    /// that finished.
    pub fn settle(&mut self, now: Timestamp) -> Option<Finished> {
        let mut finished = None;
        loop {
            if let Some(p) = &self.pending {
                if p.ends > now {
                    break;
                }
                let ends = p.ends;
                finished = self.apply_pending();
                // Firings while the operation ran found the instance busy: skipped.
                self.native_from = self.native_from.max(ends);
                continue;
            }
            let Some((at, kind, trigger)) = self.next_native(now) else {
                break;
            };
            self.native_from = at;
            let took = match kind {
                OpKind::Start => self.native.start_takes,
                _ => self.native.stop_takes,
            };
            let wanted = match kind {
                OpKind::Start => self.state == State::Stopped,
                _ => self.state == State::Running,
            };
            if wanted {
                let id = format!(
                    "native-{}-{}",
                    kind.name().to_ascii_lowercase(),
                    at.as_second()
                );
                // Cannot be refused: nothing is pending and the state fits.
                let _refused = self.start_op(kind, at, took, id, false, trigger);
                self.native_log.push(NativeFiring { at, kind, trigger });
            }
        }
        self.native_from = self.native_from.max(now);
        finished
    }

    /// The first native firing in `(native_from, now]` (an overdue idle shutdown fires at
    /// `native_from`), if nothing is pending.
    fn next_native(&self, now: Timestamp) -> Option<(Timestamp, OpKind, Trigger)> {
        if self.pending.is_some() {
            return None;
        }
        let mut best: Option<(Timestamp, OpKind, Trigger)> = None;
        if let Some(idle) = self.native.idle
            && self.state == State::Running
            && let Some(deadline) = self.idle_deadline(idle)
        {
            let at = deadline.max(self.native_from);
            if at <= now {
                best = Some((at, OpKind::Stop, Trigger::IdleShutdown));
            }
        }
        for rule in &self.native.schedules {
            if let Some(at) = rule.cron.first_fire(&rule.tz, self.native_from, now)
                && best.is_none_or(|(b, _, _)| at < b)
            {
                best = Some((at, rule.kind, Trigger::Schedule));
            }
        }
        best
    }

    /// When the running instance will have been idle for `idle`: counting from its latest
    /// activity that Azure's idle shutdown counts ([`Machine::native_activity_at`]) or from
    /// when the setting was made, whichever is later, skipping past activity that comes
    /// before the deadline. `None` while a job started by hand runs or a kernel started by
    /// hand is busy.
    pub fn idle_deadline(&self, idle: Duration) -> Option<Timestamp> {
        if self.manual_job || self.kernels.iter().any(|k| k.busy) {
            return None;
        }
        let since = |t: Timestamp| {
            let active = self.native_activity_at(t);
            self.native
                .idle_set_at
                .map_or(active, |set| active.max(set))
        };
        let mut deadline = add(since(self.native_from), idle);
        for _ in 0..IDLE_SEARCH_STEPS {
            let next = add(since(deadline), idle);
            if next <= deadline {
                return Some(deadline);
            }
            deadline = next;
        }
        None
    }

    /// Applies the pending operation, ended or not.
    fn apply_pending(&mut self) -> Option<Finished> {
        let p = self.pending.take()?;
        let ok = !p.fails;
        self.state = match (p.kind, ok) {
            (OpKind::Create | OpKind::Start | OpKind::Restart, true) => {
                self.started_at = Some(p.ends);
                self.last_activity = p.ends;
                self.kernels.clear();
                State::Running
            }
            (OpKind::Stop, true) => {
                self.manual_job = false;
                self.kernels.clear();
                self.started_at = None;
                State::Stopped
            }
            (OpKind::Delete, true) => State::Deleted,
            (OpKind::Create, false) => State::CreateFailed,
            (OpKind::Start, false) => State::Stopped,
            (OpKind::Stop | OpKind::Restart, false) => State::Running,
            (OpKind::Delete, false) => p.previous,
        };
        if let Some(lo) = &mut self.last_operation {
            lo.status = if ok {
                OpStatus::Succeeded
            } else {
                OpStatus::Failed
            };
        }
        Some(Finished {
            id: p.id,
            kind: p.kind,
            failed: !ok,
        })
    }

    /// [`Machine::settle`], then the owner starts of `start = true` windows due by `now`, in
    /// time order: a window opening on a stopped instance starts it (trigger `User`, taking
    /// `start_took`) at the window's start, or when a stop in progress at that time ends.
    /// Runs on every request for every instance, so it walks `script` (sorted by `from`)
    /// from a cursor instead of scanning it.
    pub fn settle_scripted(&mut self, now: Timestamp, start_took: Duration) {
        loop {
            let ended = self.pending.as_ref().map(|p| p.ends).filter(|e| *e <= now);
            self.settle(now);
            if self.pending.is_some() {
                // Still in progress: a due start waits for it.
                return;
            }
            let from = loop {
                match self.script.get(self.next_user_start) {
                    None => return,
                    Some(a) if !a.start || a.from <= self.user_starts_until => {
                        self.next_user_start += 1;
                    }
                    Some(a) if a.from > now => return,
                    Some(a) => break a.from,
                }
            };
            self.next_user_start += 1;
            self.user_starts_until = from;
            if self.state == State::Stopped {
                let at = ended.map_or(from, |e| e.max(from));
                let id = format!("user-start-{}", from.as_second());
                // Cannot be refused: the instance is stopped with nothing pending.
                drop(self.begin(OpKind::Start, at, start_took, id, false, Trigger::User));
            }
        }
    }

    /// Whether a job runs at `now` (started by hand or scripted), on a running instance.
    pub fn job_running(&self, now: Timestamp) -> bool {
        self.state == State::Running
            && (self.manual_job || self.in_window(ActivityKind::Job, now).is_some())
    }

    /// The state shown on the wire at `now` (call [`Machine::settle`] first).
    pub fn shown_state(&self, now: Timestamp) -> &'static str {
        if self.job_running(now) {
            "JobRunning"
        } else {
            self.state.name()
        }
    }

    /// Whether the Jupyter server answers (the VM is up).
    pub fn jupyter_up(&self) -> bool {
        self.state == State::Running
    }

    /// Kernels at `now`: the ones started by hand plus one per scripted kernel window
    /// (`kernel` or `silent_kernel`) open now.
    pub fn kernels_at(&self, now: Timestamp) -> Vec<Kernel> {
        let mut ks = self.kernels.clone();
        for (i, a) in self.script.iter().enumerate() {
            let silent = a.kind == ActivityKind::SilentKernel;
            if (silent || a.kind == ActivityKind::Kernel) && a.from <= now && now < a.to {
                ks.push(Kernel {
                    id: format!("00000000-0000-4000-8000-{i:012}"),
                    name: "python3".to_owned(),
                    busy: true,
                    last_activity: a.from.max(self.started_at.unwrap_or(a.from)),
                    silent,
                });
            }
        }
        ks
    }

    /// Jupyter `last_activity` at `now`: the latest of touches, kernel activity, scripted
    /// windows the Jupyter server notices ([`ActivityKind::moves_jupyter`]) that have
    /// passed (their end) or are open (now).
    pub fn last_activity_at(&self, now: Timestamp) -> Timestamp {
        let mut t = self.last_activity;
        for k in &self.kernels {
            t = t.max(if k.busy { now } else { k.last_activity });
        }
        t.max(self.script_activity_at(now, ActivityKind::moves_jupyter))
            .min(now)
    }

    /// The last activity Azure's own idle shutdown counts at `now`: the Jupyter server's
    /// plus the scripted windows it also counts ([`ActivityKind::counts_natively`], VS Code
    /// connections).
    pub fn native_activity_at(&self, now: Timestamp) -> Timestamp {
        self.last_activity_at(now)
            .max(self.script_activity_at(now, ActivityKind::counts_natively))
            .min(now)
    }

    /// The latest moment, up to `now`, of a scripted window whose kind `counts`: the end of
    /// a window that has passed, `now` for an open one; `Timestamp::MIN` if none.
    pub fn script_activity_at(
        &self,
        now: Timestamp,
        counts: fn(ActivityKind) -> bool,
    ) -> Timestamp {
        let mut t = Timestamp::MIN;
        for a in &self.script {
            if a.from <= now && counts(a.kind) {
                t = t.max(a.to.min(now));
            }
        }
        t
    }

    fn in_window(&self, kind: ActivityKind, now: Timestamp) -> Option<(usize, &Activity)> {
        self.script
            .iter()
            .enumerate()
            .find(|(_, a)| a.kind == kind && a.from <= now && now < a.to)
    }
}

/// The status of an operation at `now`, from its recorded end and outcome.
pub fn op_status(ends: Timestamp, fails: bool, now: Timestamp) -> OpStatus {
    if now < ends {
        OpStatus::InProgress
    } else if fails {
        OpStatus::Failed
    } else {
        OpStatus::Succeeded
    }
}

/// `now + took`, saturating at the end of time (a fleet could name absurd durations).
pub fn add(now: Timestamp, took: Duration) -> Timestamp {
    SignedDuration::try_from(took)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }
    fn t0() -> Timestamp {
        t("2026-03-30T09:00:00Z")
    }
    const TWO: Duration = Duration::from_secs(2);

    #[test]
    fn start_runs_through_starting_to_running() {
        let mut m = Machine::new(State::Stopped, t0(), None);
        m.begin(OpKind::Start, t0(), TWO, "op1".into(), false, Trigger::User)
            .unwrap();
        assert_eq!(m.shown_state(t0()), "Starting");
        assert_eq!(m.settle(t("2026-03-30T09:00:01Z")), None);
        assert_eq!(m.state, State::Starting);
        let f = m.settle(t("2026-03-30T09:00:02Z")).unwrap();
        assert_eq!(f.kind, OpKind::Start);
        assert!(!f.failed);
        assert_eq!(m.state, State::Running);
        assert_eq!(m.started_at, Some(t("2026-03-30T09:00:02Z")));
        let lo = m.last_operation.as_ref().unwrap();
        assert_eq!(lo.status_name(), "Succeeded");
        assert_eq!(lo.time, t0());
    }

    #[test]
    fn stop_then_start_cycle() {
        let mut m = Machine::new(State::Running, t0(), None);
        m.begin(OpKind::Stop, t0(), TWO, "a".into(), false, Trigger::User)
            .unwrap();
        assert_eq!(m.state, State::Stopping);
        m.settle(t("2026-03-30T09:00:05Z"));
        assert_eq!(m.state, State::Stopped);
        m.begin(
            OpKind::Start,
            t("2026-03-30T09:00:05Z"),
            TWO,
            "b".into(),
            false,
            Trigger::Schedule,
        )
        .unwrap();
        assert_eq!(
            m.last_operation.as_ref().unwrap().trigger,
            Trigger::Schedule
        );
    }

    #[test]
    fn begin_settles_first() {
        let mut m = Machine::new(State::Running, t0(), None);
        m.begin(OpKind::Stop, t0(), TWO, "a".into(), false, Trigger::User)
            .unwrap();
        // Two seconds later the stop is done, so a start is allowed without a settle call.
        m.begin(
            OpKind::Start,
            t("2026-03-30T09:00:02Z"),
            TWO,
            "b".into(),
            false,
            Trigger::User,
        )
        .unwrap();
        assert_eq!(m.state, State::Starting);
    }

    #[test]
    fn busy_refuses_with_conflict() {
        let mut m = Machine::new(State::Stopped, t0(), None);
        m.begin(OpKind::Start, t0(), TWO, "a".into(), false, Trigger::User)
            .unwrap();
        let e = m
            .begin(OpKind::Stop, t0(), TWO, "b".into(), false, Trigger::User)
            .unwrap_err();
        assert_eq!(
            e,
            Refusal::Busy {
                running: OpKind::Start
            }
        );
        let e = m
            .begin(OpKind::Delete, t0(), TWO, "c".into(), false, Trigger::User)
            .unwrap_err();
        assert!(matches!(e, Refusal::Busy { .. }));
    }

    #[test]
    fn start_only_when_stopped() {
        let mut m = Machine::new(State::Running, t0(), None);
        let e = m
            .begin(OpKind::Start, t0(), TWO, "a".into(), false, Trigger::User)
            .unwrap_err();
        assert_eq!(
            e,
            Refusal::WrongState {
                wanted: OpKind::Start,
                current: "Running"
            }
        );
    }

    #[test]
    fn stop_and_restart_only_when_running() {
        let mut m = Machine::new(State::Stopped, t0(), None);
        for k in [OpKind::Stop, OpKind::Restart] {
            assert!(matches!(
                m.begin(k, t0(), TWO, "a".into(), false, Trigger::User),
                Err(Refusal::WrongState {
                    current: "Stopped",
                    ..
                })
            ));
        }
    }

    #[test]
    fn failed_start_returns_to_stopped_with_start_failed() {
        let mut m = Machine::new(State::Stopped, t0(), None);
        m.begin(OpKind::Start, t0(), TWO, "a".into(), true, Trigger::User)
            .unwrap();
        let f = m.settle(t("2026-03-30T10:00:00Z")).unwrap();
        assert!(f.failed);
        assert_eq!(m.state, State::Stopped);
        assert_eq!(
            m.last_operation.as_ref().unwrap().status_name(),
            "StartFailed"
        );
    }

    #[test]
    fn restart_and_delete() {
        let mut m = Machine::new(State::Running, t0(), None);
        m.begin(OpKind::Restart, t0(), TWO, "a".into(), false, Trigger::User)
            .unwrap();
        assert_eq!(m.shown_state(t0()), "Restarting");
        m.settle(t("2026-03-30T09:00:03Z"));
        assert_eq!(m.state, State::Running);
        m.begin(
            OpKind::Delete,
            t("2026-03-30T09:00:03Z"),
            TWO,
            "b".into(),
            false,
            Trigger::User,
        )
        .unwrap();
        assert_eq!(m.state, State::Deleting);
        m.settle(t("2026-03-30T09:00:09Z"));
        assert_eq!(m.state, State::Deleted);
    }

    #[test]
    fn create_then_running_or_failed() {
        let mut m = Machine::creating(t0(), TWO, "c".into(), false);
        assert_eq!(m.shown_state(t0()), "Creating");
        m.settle(t("2026-03-30T09:00:02Z"));
        assert_eq!(m.state, State::Running);
        let mut m = Machine::creating(t0(), TWO, "c".into(), true);
        m.settle(t("2026-03-30T09:00:02Z"));
        assert_eq!(m.state, State::CreateFailed);
        assert_eq!(
            m.last_operation.as_ref().unwrap().status_name(),
            "CreateFailed"
        );
    }

    #[test]
    fn job_overlay_and_stop_ends_job() {
        let mut m = Machine::new(State::Running, t0(), None);
        m.manual_job = true;
        assert_eq!(m.shown_state(t0()), "JobRunning");
        m.begin(OpKind::Stop, t0(), TWO, "a".into(), false, Trigger::User)
            .unwrap();
        m.settle(t("2026-03-30T09:00:02Z"));
        assert_eq!(m.shown_state(t("2026-03-30T09:00:02Z")), "Stopped");
        assert!(!m.manual_job);
    }

    #[test]
    fn scripted_windows() {
        let mut m = Machine::new(State::Running, t0(), None);
        m.script = vec![
            Activity {
                kind: ActivityKind::Job,
                from: t("2026-03-30T10:00:00Z"),
                to: t("2026-03-30T11:00:00Z"),
                start: false,
            },
            Activity {
                kind: ActivityKind::Kernel,
                from: t("2026-03-30T12:00:00Z"),
                to: t("2026-03-30T12:30:00Z"),
                start: false,
            },
        ];
        assert_eq!(m.shown_state(t("2026-03-30T09:59:59Z")), "Running");
        assert_eq!(m.shown_state(t("2026-03-30T10:00:00Z")), "JobRunning");
        assert_eq!(m.shown_state(t("2026-03-30T11:00:00Z")), "Running");
        assert_eq!(
            m.last_activity_at(t("2026-03-30T11:30:00Z")),
            t("2026-03-30T11:00:00Z")
        );
        assert_eq!(m.kernels_at(t("2026-03-30T12:10:00Z")).len(), 1);
        assert!(m.kernels_at(t("2026-03-30T12:10:00Z"))[0].busy);
        assert_eq!(
            m.last_activity_at(t("2026-03-30T12:10:00Z")),
            t("2026-03-30T12:10:00Z")
        );
        assert!(m.kernels_at(t("2026-03-30T13:00:00Z")).is_empty());
    }

    fn native(idle: Option<u64>, rules: &[(OpKind, &str, &str)]) -> NativeSettings {
        NativeSettings {
            idle: idle.map(|m| Duration::from_secs(m * 60)),
            idle_set_at: None,
            schedules: rules
                .iter()
                .map(|(kind, cron, tz)| NativeRule {
                    kind: *kind,
                    cron: NativeCron::parse(cron).unwrap(),
                    tz: jiff::tz::TimeZone::get(tz).unwrap(),
                })
                .collect(),
            start_takes: TWO,
            stop_takes: TWO,
        }
    }

    fn last(m: &Machine) -> (OpKind, Timestamp, Trigger, &'static str) {
        let lo = m.last_operation.as_ref().unwrap();
        (lo.kind, lo.time, lo.trigger, m.state.name())
    }

    #[test]
    fn idle_shutdown_stops_after_the_idle_time_without_activity() {
        // Started at 09:00, idle 30 minutes: stops itself at 09:30 (trigger IdleShutdown),
        // even when nobody looks until much later.
        let mut m = Machine::new(State::Running, t0(), Some(t0()));
        m.native = native(Some(30), &[]);
        m.settle(t("2026-03-30T09:29:59Z"));
        assert_eq!(m.state, State::Running);
        m.settle(t("2026-03-30T12:00:00Z"));
        assert_eq!(
            last(&m),
            (
                OpKind::Stop,
                t("2026-03-30T09:30:00Z"),
                Trigger::IdleShutdown,
                "Stopped"
            )
        );
        assert_eq!(
            m.last_operation.as_ref().unwrap().status_name(),
            "Succeeded"
        );
    }

    #[test]
    fn activity_and_jobs_put_the_idle_shutdown_off() {
        let mut m = Machine::new(State::Running, t0(), Some(t0()));
        m.native = native(Some(30), &[]);
        m.script = vec![
            Activity {
                kind: ActivityKind::Kernel,
                from: t("2026-03-30T09:20:00Z"),
                to: t("2026-03-30T09:25:00Z"),
                start: false,
            },
            Activity {
                kind: ActivityKind::Job,
                from: t("2026-03-30T09:50:00Z"),
                to: t("2026-03-30T11:00:00Z"),
                start: false,
            },
        ];
        // Kernel busy until 09:25: idle from then, the job starts at 09:50 (< 09:55), ends
        // at 11:00: the native shutdown comes at 11:30.
        m.settle(t("2026-03-30T13:00:00Z"));
        assert_eq!(
            last(&m),
            (
                OpKind::Stop,
                t("2026-03-30T11:30:00Z"),
                Trigger::IdleShutdown,
                "Stopped"
            )
        );
        // A job started by hand or a busy kernel: never idle.
        let mut m = Machine::new(State::Running, t0(), Some(t0()));
        m.native = native(Some(15), &[]);
        m.manual_job = true;
        m.settle(t("2026-03-31T09:00:00Z"));
        assert_eq!(m.state, State::Running);
        // Idle for hours when the setting is made (at 09:00): counts from the setting.
        let mut m = Machine::new(State::Running, t0(), Some(t("2026-03-30T06:00:00Z")));
        m.native = native(Some(60), &[]);
        m.native.idle_set_at = Some(t0());
        m.settle(t("2026-03-30T09:59:59Z"));
        assert_eq!(m.state, State::Running);
        m.settle(t("2026-03-30T11:00:00Z"));
        assert_eq!(
            last(&m),
            (
                OpKind::Stop,
                t("2026-03-30T10:00:00Z"),
                Trigger::IdleShutdown,
                "Stopped"
            )
        );
    }

    #[test]
    fn schedules_start_and_stop_at_their_local_times() {
        // 08:00 start and 19:00 stop on weekdays in Paris (UTC+2 from 2026-03-29).
        let mut m = Machine::new(State::Stopped, t0(), None);
        m.native = native(
            None,
            &[
                (OpKind::Start, "0 8 * * 1-5", "Europe/Paris"),
                (OpKind::Stop, "0 19 * * 1-5", "Europe/Paris"),
            ],
        );
        // t0 is Monday 11:00 Paris: nothing until 19:00 (stop on a stopped instance: no-op).
        m.settle(t("2026-03-31T05:59:59Z"));
        assert_eq!(m.state, State::Stopped);
        m.settle(t("2026-03-31T06:00:05Z"));
        assert_eq!(
            last(&m),
            (
                OpKind::Start,
                t("2026-03-31T06:00:00Z"),
                Trigger::Schedule,
                "Running"
            )
        );
        // Jump a whole day: the stop at 19:00 and the next morning's start both happened.
        m.settle(t("2026-04-01T12:00:00Z"));
        assert_eq!(
            last(&m),
            (
                OpKind::Start,
                t("2026-04-01T06:00:00Z"),
                Trigger::Schedule,
                "Running"
            )
        );
    }

    #[test]
    fn schedules_across_dst_changes_follow_the_assumed_rule() {
        // `crate::cron`: a skipped wall time fires later by the gap, a repeated one once, at
        // its first occurrence. Paris, 2026-03-29: 02:00 jumps to 03:00, so 02:30 is 03:30
        // +02:00 (01:30 UTC).
        let mut m = Machine::new(State::Running, t("2026-03-28T12:00:00Z"), None);
        m.native = native(None, &[(OpKind::Stop, "30 2 * * *", "Europe/Paris")]);
        m.settle(t("2026-03-29T01:29:59Z"));
        assert_eq!(m.state, State::Running);
        m.settle(t("2026-03-29T02:00:00Z"));
        assert_eq!(
            last(&m),
            (
                OpKind::Stop,
                t("2026-03-29T01:30:00Z"),
                Trigger::Schedule,
                "Stopped"
            )
        );
        // 2026-10-25: 03:00 falls back to 02:00. The stop at 02:30 and the start at 02:45
        // fire on the first pass through the hour (00:30 and 00:45 UTC); the second 02:30
        // (01:30 UTC) stops nothing.
        let mut m = Machine::new(State::Running, t("2026-10-24T12:00:00Z"), None);
        m.native = native(
            None,
            &[
                (OpKind::Stop, "30 2 * * *", "Europe/Paris"),
                (OpKind::Start, "45 2 * * *", "Europe/Paris"),
            ],
        );
        m.settle(t("2026-10-25T00:40:00Z"));
        assert_eq!(
            last(&m),
            (
                OpKind::Stop,
                t("2026-10-25T00:30:00Z"),
                Trigger::Schedule,
                "Stopped"
            )
        );
        m.settle(t("2026-10-25T03:00:00Z"));
        assert_eq!(
            last(&m),
            (
                OpKind::Start,
                t("2026-10-25T00:45:00Z"),
                Trigger::Schedule,
                "Running"
            )
        );
    }

    #[test]
    fn a_firing_during_an_operation_is_skipped() {
        let mut m = Machine::new(State::Running, t0(), Some(t0()));
        m.native = native(None, &[(OpKind::Stop, "0 10 * * *", "UTC")]);
        // A user restart from 09:59:59 to 10:00:02 spans the 10:00 stop: it does nothing.
        m.begin(
            OpKind::Restart,
            t("2026-03-30T09:59:59Z"),
            Duration::from_secs(3),
            "r".into(),
            false,
            Trigger::User,
        )
        .unwrap();
        m.settle(t("2026-03-30T10:30:00Z"));
        assert_eq!(
            last(&m),
            (
                OpKind::Restart,
                t("2026-03-30T09:59:59Z"),
                Trigger::User,
                "Running"
            )
        );
    }

    #[test]
    fn op_status_from_time() {
        let e = t("2026-03-30T09:00:02Z");
        assert_eq!(op_status(e, false, t0()), OpStatus::InProgress);
        assert_eq!(op_status(e, false, e), OpStatus::Succeeded);
        assert_eq!(op_status(e, true, e), OpStatus::Failed);
    }

    #[test]
    fn owner_starts_a_stopped_instance_when_a_start_window_opens() {
        let mut m = Machine::new(State::Stopped, t0(), None);
        m.script = vec![
            Activity {
                kind: ActivityKind::Kernel,
                from: t("2026-03-30T10:00:00Z"),
                to: t("2026-03-30T11:00:00Z"),
                start: true,
            },
            Activity {
                kind: ActivityKind::Job,
                from: t("2026-03-30T12:00:00Z"),
                to: t("2026-03-30T13:00:00Z"),
                start: false,
            },
        ];
        m.settle_scripted(t("2026-03-30T09:59:59Z"), TWO);
        assert_eq!(m.state, State::Stopped);
        // A jump past the window's start and the start's duration: running since 10:00:02.
        m.settle_scripted(t("2026-03-30T10:05:00Z"), TWO);
        assert_eq!(m.state, State::Running);
        assert_eq!(m.started_at, Some(t("2026-03-30T10:00:02Z")));
        assert_eq!(m.last_operation.as_ref().unwrap().trigger, Trigger::User);
        // Stopped again; a window without `start` does not start it.
        m.begin(
            OpKind::Stop,
            t("2026-03-30T11:30:00Z"),
            TWO,
            "s".into(),
            false,
            Trigger::User,
        )
        .unwrap();
        m.settle_scripted(t("2026-03-30T12:30:00Z"), TWO);
        assert_eq!(m.state, State::Stopped);
        assert!(!m.job_running(t("2026-03-30T12:30:00Z")));
    }

    #[test]
    fn owner_start_waits_for_a_stop_in_progress() {
        let mut m = Machine::new(State::Running, t0(), None);
        m.script = vec![Activity {
            kind: ActivityKind::Kernel,
            from: t("2026-03-30T10:00:01Z"),
            to: t("2026-03-30T11:00:00Z"),
            start: true,
        }];
        m.begin(
            OpKind::Stop,
            t("2026-03-30T10:00:00Z"),
            TWO,
            "s".into(),
            false,
            Trigger::User,
        )
        .unwrap();
        m.settle_scripted(t("2026-03-30T10:00:01Z"), TWO);
        assert_eq!(m.state, State::Stopping, "the start waits");
        m.settle_scripted(t("2026-03-30T10:10:00Z"), TWO);
        assert_eq!(m.state, State::Running);
        // Stop ended 10:00:02, start took two seconds.
        assert_eq!(m.started_at, Some(t("2026-03-30T10:00:04Z")));
    }
}
