//! What lightsout remembers about each instance between passes: only what Azure cannot
//! tell it.
//!
//! Pure data. Losing it must never cause mass actions: every field is a hint that makes
//! the engine *more* willing to wait when missing (idle time counts from the first
//! sighting, a transition already answered by a later operation in Azure is not repeated).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::engine::model::Action;
use crate::engine::native::types::NativePending;

/// Memory of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceMemory {
    /// When lightsout first observed the instance; idle time never counts from before it.
    pub first_seen: Option<Timestamp>,
    /// When lightsout first saw the current run (fallback when Azure's lastOperation
    /// does not say when the instance started).
    pub running_since_seen: Option<Timestamp>,
    /// The latest time the instance was seen busy (a job or a busy kernel); Azure does not
    /// say when a job ended.
    pub last_busy_seen: Option<Timestamp>,
    /// The latest schedule transition dealt with (acted on, found done, missed, superseded).
    pub handled_transition: Option<Timestamp>,
    /// A transition seen in time but held back (busy, min uptime): still due later.
    pub deferred_transition: Option<Timestamp>,
    /// The latest cron event firing dealt with.
    pub handled_event: Option<Timestamp>,
    /// A cron event firing seen in time but held back (busy): still due later.
    pub deferred_event: Option<Timestamp>,
    /// lightsout's own request in flight, if any.
    pub pending: Option<Pending>,
    /// Operations of ours that failed in a row (reset when nothing is due).
    #[serde(default)]
    pub failures: u32,
    /// After a failure, no new request before this instant.
    #[serde(default)]
    pub retry_at: Option<Timestamp>,
    /// Native settings changes sent (or about to be) and not yet seen in an observation:
    /// the same change is not sent again while one is here (see
    /// `native::NATIVE_PENDING_EXPIRY`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub native_pending: Vec<NativePending>,
    /// When our latest failed request was made: Azure's lastOperation then shows *our*
    /// failed operation, which is not a person overriding the schedule (issue 8: the fault
    /// soak found failed stops never retried because of it).
    #[serde(default)]
    pub failed_request_at: Option<Timestamp>,
}

/// A request lightsout sent and has not yet seen the effect of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub action: Action,
    /// When the intent was recorded (just before the request went out).
    pub requested_at: Timestamp,
    /// The schedule transition this request answers, so a failure can make it due again.
    #[serde(default)]
    pub transition: Option<Timestamp>,
    /// The cron firing this request answers.
    #[serde(default)]
    pub event: Option<Timestamp>,
}

/// Pause after Azure refused a request before the same condition may ask again.
pub const REFUSAL_BACKOFF: jiff::SignedDuration = jiff::SignedDuration::from_mins(15);

/// Consecutive failed operations after which lightsout stops retrying until the instance
/// changes or nothing is due any more.
pub const MAX_FAILURES: u32 = 3;

impl InstanceMemory {
    /// Our operation failed (or could not be sent) at `now`: make what it answered due
    /// again, after a backoff that grows with each failure (1, 5, 15 minutes).
    pub fn operation_failed(&mut self, now: Timestamp) {
        if let Some(p) = self.pending.take() {
            self.failed_request_at = Some(p.requested_at);
            if let Some(t) = p.transition
                && self.handled_transition == Some(t)
            {
                self.handled_transition = None;
                self.deferred_transition = Some(t);
            }
            if let Some(e) = p.event
                && self.handled_event == Some(e)
            {
                self.handled_event = None;
                self.deferred_event = Some(e);
            }
        }
        self.failures = self.failures.saturating_add(1);
        let backoff_mins: i64 = match self.failures {
            0 | 1 => 1,
            2 => 5,
            _ => 15,
        };
        self.retry_at = now
            .checked_add(jiff::SignedDuration::from_mins(backoff_mins))
            .ok();
    }

    /// Azure refused our request for a known reason (conflict, wrong state, permission):
    /// not retried blindly. What it answered stays handled; a condition that stays due (an
    /// idle rule, `enforcement = "always"`) is asked again only after a long pause, and
    /// given up after [`MAX_FAILURES`] refusals in a row.
    pub fn operation_refused(&mut self, now: Timestamp) {
        self.pending = None;
        self.failures = self.failures.saturating_add(1);
        self.retry_at = now.checked_add(REFUSAL_BACKOFF).ok();
    }

    /// Our operation finished well.
    pub fn operation_succeeded(&mut self) {
        self.pending = None;
        self.failures = 0;
        self.retry_at = None;
        self.failed_request_at = None;
    }
}
