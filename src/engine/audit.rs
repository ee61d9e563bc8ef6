//! The audit log's vocabulary: an intent about to be acted on, a record of it, its id and
//! where it stands. Plain data: the pass plans intents and closes records
//! (`engine::pass`); `daemon::store` keeps them in SQLite.

use std::fmt;

use jiff::Timestamp;
use serde::Serialize;

use crate::engine::model::{Action, InstanceKey, Reason};

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
}
