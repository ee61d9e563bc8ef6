//! What a pass saw and did, as the daemon hands it to whoever watches: the cost
//! accountant, the metrics, the status page, `simulate`.
//!
//! A leaf: it names only the model's vocabulary and the display row ([`PlanRow`]), so the
//! pure cost math and the metrics read a pass without importing the daemon that ran it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::engine::model::{Action, Reason};
use crate::engine::plan::PlanRow;

/// An action the daemon requested (or, in a dry run, would have).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionTaken {
    /// When the request was sent (UTC).
    pub at: Timestamp,
    pub workspace: String,
    pub instance: String,
    pub action: Action,
    pub reason: Reason,
    pub policy: String,
    pub catch_up: bool,
    /// What became of the request (the `outcome` label of `lightsout_actions_total`; not
    /// in JSON output).
    #[serde(skip)]
    pub outcome: ActionOutcome,
    /// A change of native settings (`idle_shutdown`, `schedules`), not a power action.
    #[serde(skip)]
    pub native: bool,
}

crate::engine::text_enum::text_enum! {
    what = "action outcome";
    /// What became of a planned request: the `outcome` label of `lightsout_actions_total`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ActionOutcome {
        /// Planned, but not (yet) sent: its intent could not be written, or the send is
        /// still to come.
        NotSent = "not_sent",
        /// A dry run: never sent.
        DryRun = "dry_run",
        /// Azure accepted it; the operation may still be running.
        Accepted = "accepted",
        /// Azure refused it for a reason that retrying will not fix.
        Refused = "refused",
        /// It could not be delivered or Azure failed: worth another try later.
        Failed = "failed",
        /// Accepted, but its operation cannot be followed.
        Unknown = "unknown",
    }
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
    /// What reading the agents' heartbeats did (empty without `[agent]`).
    pub agent: AgentReport,
}

/// The heartbeat side of a pass, for the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentReport {
    /// Heartbeat blobs ignored, per workspace alias and reason (a `heartbeat::Rejected`
    /// label or `not_governed`).
    pub ignored: std::collections::BTreeMap<(String, &'static str), u64>,
    /// List Blobs operations, per workspace alias and outcome (`ok`, `error`, `timeout`).
    pub lists: Vec<(String, &'static str)>,
    /// HTTP requests sent to each storage account (by host) during the pass.
    pub requests: std::collections::BTreeMap<String, u64>,
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

    /// Record a finished pass: when it decided, its rows, what it could not observe.
    pub(crate) fn set(&self, at: Timestamp, rows: Arc<Vec<PlanRow>>, unobserved: Vec<String>) {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        s.last_pass = Some(at);
        s.passes += 1;
        s.rows = rows;
        s.unobserved = unobserved;
    }

    /// Record whether the state database's latest write failed.
    pub(crate) fn set_store_failing(&self, failing: bool) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .store_failing = failing;
    }
}
