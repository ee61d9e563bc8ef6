//! The agent's judgement, pure: from what it measured on the instance (CPU per process and
//! core, terminal input times, Jupyter kernels, GPUs, VS Code, containers) and `now`, whether
//! the instance is in use, why, and since when.
//!
//! STUB: `Snapshot` is the contract (CONTRACT section 0: `lightsout agent observe --json`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::engine::heartbeat::BusyReason;

/// What the agent measured, per signal (the `signals` object of a snapshot).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignalsSeen {}

/// One observation: `{"at", "busy", "reasons": [...], "last_activity", "signals": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub at: Timestamp,
    pub busy: bool,
    pub reasons: Vec<BusyReason>,
    pub last_activity: Option<Timestamp>,
    pub signals: SignalsSeen,
}
