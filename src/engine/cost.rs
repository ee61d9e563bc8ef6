//! Cost accounting: money accrued, avoided and burned idle, integrated between passes.
//!
//! # The rules
//!
//! - **Left-point integration.** At each pass, every instance is charged for the time since
//!   its previous observation at the rates of the state seen *then* (rate × elapsed). The
//!   price is looked up at integration time, so a retail price fetched just after the first
//!   sighting of a size still prices that first interval.
//! - **Rates.** Running (and every state but `Stopped`/`CreateFailed`: starting, stopping,
//!   resizing, unknown… the VM may be allocated) costs the compute price plus
//!   `stopped_hourly`; stopped costs `stopped_hourly` (disk, public IP, load balancer).
//! - **Avoided** is the compute price while the instance is stopped *by lightsout*: it
//!   turned `Stopped` after a stop of ours (the latest action in the audit log, not a dry
//!   run, accepted or succeeded, sent no earlier than the instance was last seen started),
//!   until it is seen starting or running again.
//! - **Idle** is the compute price (what a stop would save; disks cost the same either way)
//!   while the instance is `Running`, not busy, and idle for at least [`IDLE_COST_AFTER`]
//!   by its policy's idle reckoning. An instance no policy governs has no idle time, so no
//!   idle cost; nor has one whose policy cannot tell idleness from use (ARM by default sees
//!   jobs, not notebooks: [`crate::engine::policy::Policy::sees_idleness`]).
//! - **Gaps are capped.** An interval longer than [`gap_cap`] (three poll intervals) is
//!   counted only up to the cap, from the previous observation: when lightsout was down,
//!   or a workspace could not be listed, the unobserved rest is not invented. Undercounting
//!   is the documented choice.
//! - **Unpriced.** A vm size without a price adds no compute money: its time is counted in
//!   `unpriced_seconds` instead, the instance is marked unpriced in the metrics, and the
//!   size is logged once. Never a silent zero.
//! - **Restarts.** Amounts go to the store per UTC day, in one transaction with each
//!   instance's new observation; the counters are sums over the stored days. A restart
//!   resumes from both: nothing is counted twice, nothing restarts at zero. If the write
//!   fails, the in-memory state does not advance either, so the next pass integrates the
//!   whole interval (capped) and the exported counters never run ahead of the store.
//!
//! This module is the pure math ([`integrate`]) and its types: no I/O, no clock, nothing of
//! the store, the metrics or the daemon. The bookkeeping around it (the previous
//! observations, the store, the pass report, "stopped by lightsout" from the audit log) is
//! `accountant::Accountant`.

use std::collections::BTreeMap;
use std::ops::AddAssign;
use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::engine::model::{InstanceKey, InstanceState};
use crate::engine::pricing::PriceBook;

/// Running this long without activity counts as idle for the idle-cost counter.
pub const IDLE_COST_AFTER: Duration = Duration::from_secs(5 * 60);

/// The longest interval one observation is extrapolated over: three poll intervals.
pub fn gap_cap(poll_interval: Duration) -> SignedDuration {
    SignedDuration::try_from(poll_interval.saturating_mul(3)).unwrap_or(SignedDuration::MAX)
}

/// How an instance is billed in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    /// Compute price plus `stopped_hourly`.
    Running,
    /// `stopped_hourly` only.
    Stopped,
}

impl Billing {
    /// `Stopped` and `CreateFailed` are billed as stopped; everything else as running.
    pub fn of(state: &InstanceState) -> Billing {
        match state {
            InstanceState::Stopped | InstanceState::CreateFailed => Billing::Stopped,
            _ => Billing::Running,
        }
    }
}

/// One observation of an instance, the starting point of the next integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// When it was observed (the pass's decision instant).
    pub at: Timestamp,
    pub billing: Billing,
    pub vm_size: String,
    /// Lower-case region of its workspace, for retail prices.
    pub region: Option<String>,
    /// Currency the amounts are counted in.
    pub currency: String,
    /// Stopped by lightsout (and not started since): avoided money accrues.
    pub ours: bool,
    /// Running idle (see the module docs): idle money accrues.
    pub idle: bool,
    /// The latest time it was seen started (`Running`, `JobRunning`, `Starting`,
    /// `Restarting`): a stop of ours must be at least as recent to count.
    #[serde(default)]
    pub started_seen: Option<Timestamp>,
}

/// Money (in one currency) and time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Amounts {
    pub accrued: f64,
    pub avoided: f64,
    pub idle: f64,
    pub running_seconds: f64,
    pub stopped_seconds: f64,
    pub unpriced_seconds: f64,
}

impl AddAssign for Amounts {
    fn add_assign(&mut self, o: Amounts) {
        self.accrued += o.accrued;
        self.avoided += o.avoided;
        self.idle += o.idle;
        self.running_seconds += o.running_seconds;
        self.stopped_seconds += o.stopped_seconds;
        self.unpriced_seconds += o.unpriced_seconds;
    }
}

/// Amounts of one instance on one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayCost {
    pub day: Date,
    pub workspace: String,
    pub instance: String,
    pub currency: String,
    #[serde(flatten)]
    pub amounts: Amounts,
}

/// What `prev` cost from its observation until `now` (at most `cap` of it), split by UTC
/// day. Empty when the currency changed since (amounts in two currencies never mix).
pub fn integrate(
    prev: &Observed,
    now: Timestamp,
    cap: SignedDuration,
    book: &PriceBook,
) -> Vec<(Date, Amounts)> {
    if prev.currency != book.currency() {
        return Vec::new();
    }
    let elapsed = now.duration_since(prev.at).min(cap);
    if elapsed <= SignedDuration::ZERO {
        return Vec::new();
    }
    let compute = book
        .compute_hourly(&prev.vm_size, prev.region.as_deref())
        .known();
    let extras = book.stopped_hourly();
    let Ok(end) = prev.at.checked_add(elapsed) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut start = prev.at;
    while start < end {
        let day = start.to_zoned(TimeZone::UTC).date();
        let midnight = day
            .tomorrow()
            .ok()
            .and_then(|d| d.to_zoned(TimeZone::UTC).ok())
            .map_or(end, |z| z.timestamp());
        let seg_end = end.min(midnight);
        let secs = seg_end.duration_since(start).as_secs_f64();
        let hours = secs / 3600.0;
        let mut a = Amounts::default();
        match prev.billing {
            Billing::Running => {
                a.running_seconds = secs;
                a.accrued = (compute.unwrap_or(0.0) + extras) * hours;
                if prev.idle {
                    a.idle = compute.unwrap_or(0.0) * hours;
                }
                if compute.is_none() {
                    a.unpriced_seconds = secs;
                }
            }
            Billing::Stopped => {
                a.stopped_seconds = secs;
                a.accrued = extras * hours;
                if prev.ours {
                    a.avoided = compute.unwrap_or(0.0) * hours;
                    if compute.is_none() {
                        a.unpriced_seconds = secs;
                    }
                }
            }
        }
        out.push((day, a));
        start = seg_end;
    }
    out
}

/// One instance's figures after a pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceCost {
    pub vm_size: String,
    /// Current burn per hour; `None` when it runs at an unknown compute price.
    pub hourly: Option<f64>,
    /// No compute price is known for its size (yet).
    pub unpriced: bool,
    /// Stopped by lightsout: avoided money accrues.
    pub stopped_by_lightsout: bool,
    /// Counted as running idle.
    pub idle: bool,
    /// Totals since accounting began, in the current currency.
    pub totals: Amounts,
}

/// Every observed instance's figures, for the metrics and `/v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostView {
    pub currency: String,
    pub instances: BTreeMap<InstanceKey, InstanceCost>,
}

#[cfg(test)]
mod tests;
