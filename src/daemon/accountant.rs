//! The daemon's cost bookkeeping: each instance's latest observation and the running
//! totals, integrated at every pass with the pure math of `cost` and mirrored in the store.
//!
//! The rules are in `cost`'s docs; this module carries out the ones that need the shell:
//! the store (**Restarts**: one transaction per pass, nothing advances on a failed write)
//! and the audit log (whether a stopped instance was stopped *by lightsout*).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::Date;

use crate::daemon::store::{Outcome, Store, StoreError};
use crate::engine::config::Config;
use crate::engine::cost::{
    Amounts, Billing, CostView, IDLE_COST_AFTER, InstanceCost, Observed, gap_cap, integrate,
};
use crate::engine::model::{Action, InstanceKey, InstanceState};
use crate::engine::pricing::{Price, PriceBook};
use crate::engine::report::PassReport;

/// The stateful bookkeeper: the latest observation of each instance and the running
/// totals, both mirrored in the store.
#[derive(Debug, Default)]
pub struct Accountant {
    observed: BTreeMap<InstanceKey, Observed>,
    /// Totals by instance and currency.
    totals: BTreeMap<(InstanceKey, String), Amounts>,
    /// (region, vm size) pairs already reported as unpriced.
    warned: BTreeSet<(String, String)>,
}

impl Accountant {
    /// Resume from the store: the latest observations and the sums of the daily amounts.
    pub fn load(store: &Store) -> Result<Accountant, StoreError> {
        Ok(Accountant {
            observed: store.cost_states()?,
            totals: store.cost_totals()?,
            warned: BTreeSet::new(),
        })
    }

    /// Integrate the pass of `report`, write the amounts and observations in one
    /// transaction, and return every observed instance's figures. On a store error nothing
    /// advances (see the module docs).
    pub fn pass(
        &mut self,
        cfg: &Config,
        report: &PassReport,
        book: &PriceBook,
        store: &mut Store,
    ) -> Result<CostView, StoreError> {
        let Some(now) = report.at else {
            return Ok(self.view_with(book));
        };
        let cap = gap_cap(cfg.daemon.poll_interval);
        let currency = book.currency().to_owned();
        let mut days: BTreeMap<(Date, InstanceKey), Amounts> = BTreeMap::new();
        let mut next: BTreeMap<InstanceKey, Observed> = BTreeMap::new();
        for row in report.rows.iter() {
            let key = InstanceKey::new(&row.workspace, &row.instance);
            let prev = self.observed.get(&key);
            if let Some(prev) = prev {
                for (day, a) in integrate(prev, now, cap, book) {
                    *days.entry((day, key.clone())).or_default() += a;
                }
            }
            let state = InstanceState::from_azure(&row.state);
            let billing = Billing::of(&state);
            let started = state.is_running()
                || matches!(state, InstanceState::Starting | InstanceState::Restarting);
            let started_seen = if started {
                Some(now)
            } else {
                prev.and_then(|p| p.started_seen)
            };
            let ours = match billing {
                Billing::Running => false,
                Billing::Stopped => match prev {
                    Some(p) if p.billing == Billing::Stopped => p.ours,
                    _ => stopped_by_us(store, &key, started_seen)?,
                },
            };
            let idle = state == InstanceState::Running
                && row.skip != Some("busy")
                && row
                    .idle_seconds
                    .is_some_and(|s| s >= i64::try_from(IDLE_COST_AFTER.as_secs()).unwrap_or(300));
            let region = cfg
                .workspace(&row.workspace)
                .and_then(|w| w.region.as_ref())
                .map(|r| r.to_ascii_lowercase());
            next.insert(
                key,
                Observed {
                    at: now,
                    billing,
                    vm_size: row.vm_size.clone(),
                    region,
                    currency: currency.clone(),
                    ours,
                    idle,
                    started_seen,
                },
            );
        }
        // Forget instances gone from a workspace that was observed, and workspaces gone
        // from the config; keep those of a workspace that could not be listed.
        let gone: Vec<InstanceKey> = self
            .observed
            .keys()
            .filter(|k| !next.contains_key(*k))
            .filter(|k| {
                cfg.workspace(&k.workspace).is_none()
                    || !report.failed_workspaces.contains(&k.workspace)
            })
            .cloned()
            .collect();
        store.record_costs(&days, &currency, &next, &gone)?;
        for ((_, key), a) in days {
            *self.totals.entry((key, currency.clone())).or_default() += a;
        }
        for k in &gone {
            self.observed.remove(k);
        }
        self.observed.extend(next);
        self.warn_unpriced(book);
        Ok(self.view_with(book))
    }

    /// Log each unpriced (region, size) once.
    fn warn_unpriced(&mut self, book: &PriceBook) {
        for o in self.observed.values() {
            let id = (
                o.region.clone().unwrap_or_default(),
                o.vm_size.to_ascii_lowercase(),
            );
            if book.compute_hourly(&o.vm_size, o.region.as_deref()) == Price::Unknown
                && self.warned.insert(id)
            {
                tracing::warn!(vm_size = %o.vm_size, region = o.region.as_deref().unwrap_or("-"),
                    "no price for this vm size: its compute cost is not counted (unpriced); add it to [pricing.vm_hourly]");
            }
        }
    }

    /// The figures of every instance currently tracked, priced with `book`.
    pub fn view_with(&self, book: &PriceBook) -> CostView {
        let currency = book.currency().to_owned();
        let instances = self
            .observed
            .iter()
            .map(|(k, o)| {
                let compute = book.compute_hourly(&o.vm_size, o.region.as_deref()).known();
                let hourly = match o.billing {
                    Billing::Running => compute.map(|c| c + book.stopped_hourly()),
                    Billing::Stopped => Some(book.stopped_hourly()),
                };
                let totals = self
                    .totals
                    .get(&(k.clone(), currency.clone()))
                    .copied()
                    .unwrap_or_default();
                (
                    k.clone(),
                    InstanceCost {
                        vm_size: o.vm_size.clone(),
                        hourly,
                        unpriced: compute.is_none(),
                        stopped_by_lightsout: o.ours,
                        idle: o.idle,
                        totals,
                    },
                )
            })
            .collect();
        CostView {
            currency,
            instances,
        }
    }
}

/// Whether the instance, now seen stopped, was stopped by lightsout: the latest action of
/// ours on it is a real (not dry-run) stop, accepted or succeeded, sent no earlier than the
/// instance was last seen started.
fn stopped_by_us(
    store: &Store,
    key: &InstanceKey,
    started_seen: Option<Timestamp>,
) -> Result<bool, StoreError> {
    let Some(r) = store.latest_action(key)? else {
        return Ok(false);
    };
    Ok(r.action == Action::Stop
        && matches!(r.outcome, Outcome::Pending | Outcome::Succeeded)
        && started_seen.is_none_or(|s| r.at >= s))
}

#[cfg(test)]
mod tests;
