//! What lightsout remembers about each instance between passes: only what Azure cannot
//! tell it.
//!
//! Pure data. Losing it must never cause mass actions: every field is a hint that makes
//! the engine *more* willing to wait when missing (idle time counts from the first
//! sighting, a transition already answered by a later operation in Azure is not repeated).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::Action;

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
}

/// A request lightsout sent and has not yet seen the effect of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub action: Action,
    /// When the intent was recorded (just before the request went out).
    pub requested_at: Timestamp,
}
