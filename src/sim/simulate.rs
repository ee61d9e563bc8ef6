//! `lightsout simulate`: the real daemon against the in-process emulator in virtual time.
//!
//! The very code `lightsout run` uses (observe, decide, act, record) runs pass after pass;
//! between passes the emulator's clock jumps to the daemon's next wake-up (the poll
//! interval or the next schedule boundary), so a month takes seconds. Deterministic: one
//! daemon, one emulator, virtual time, seeded faults. The cost summary is the daemon's own
//! accounting (`accountant::Accountant`) over the run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use azure_ml_emulator::{Emulator, Fleet};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::azure::{ArmClientConfig, RetryPolicy};
use crate::daemon::accountant::Accountant;
use crate::daemon::hook::PassHook;
use crate::daemon::store::Store;
use crate::daemon::{Daemon, DaemonOptions};
use crate::engine::config::Config;
use crate::engine::cost::CostView;
use crate::engine::pricing::PriceBook;
use crate::engine::report::ActionTaken;
use crate::sim::agents::WithAgents;

/// Money over the simulated period, in the config's currency.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostSummary {
    pub currency: String,
    /// Compute while running plus what stopped instances still cost.
    pub spent: f64,
    /// Compute not spent because lightsout stopped the instance (until it next started).
    pub avoided: f64,
    /// Compute spent while running idle (see `cost::IDLE_COST_AFTER`).
    pub idle: f64,
    /// Compute if every instance had run the whole period.
    pub always_on: f64,
}

/// What a simulation did.
#[derive(Debug, Clone, Serialize)]
pub struct Simulation {
    pub actions: Vec<ActionTaken>,
    pub cost: CostSummary,
    /// VM sizes with no price: counted as unpriced, not as free.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unpriced: Vec<String>,
    /// Stops Azure's own idle shutdown carried out on the emulated instances (their
    /// `idle_time_before_shutdown`), oldest first per instance.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub native_stops: Vec<NativeStop>,
    #[serde(skip)]
    pub passes: usize,
    /// The emulator's state at the end (`GET /_emulator/state`), for tests and reports:
    /// shows what the instances' own idle shutdown and schedules did meanwhile.
    #[serde(skip)]
    pub final_state: serde_json::Value,
}

/// A stop the instance's own idle shutdown carried out (not lightsout's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativeStop {
    /// The workspace alias of the config (the Azure name if the config has none for it).
    pub workspace: String,
    pub instance: String,
    pub at: Timestamp,
}

/// The idle shutdowns in the emulator's final state (`native_firings`), by workspace alias.
fn native_stops(cfg: &Config, state: &serde_json::Value) -> Vec<NativeStop> {
    let mut out = Vec::new();
    let empty = Vec::new();
    let list = |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_array()).cloned();
    for ws in list(state, "workspaces").unwrap_or_default() {
        let azure = ws.get("name").and_then(|n| n.as_str()).unwrap_or_default();
        let alias = cfg
            .workspaces
            .iter()
            .find(|w| w.reference.workspace.eq_ignore_ascii_case(azure))
            .map_or(azure, |w| w.name.as_str());
        for inst in list(&ws, "instances").unwrap_or_default() {
            let name = inst
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_default();
            for f in list(&inst, "native_firings").as_ref().unwrap_or(&empty) {
                let idle = f.get("trigger").and_then(|t| t.as_str()) == Some("IdleShutdown")
                    && f.get("operation").and_then(|o| o.as_str()) == Some("Stop");
                let at = f
                    .get("at")
                    .and_then(|t| t.as_str())
                    .and_then(|t| t.parse().ok());
                if let (true, Some(at)) = (idle, at) {
                    out.push(NativeStop {
                        workspace: alias.to_owned(),
                        instance: name.to_owned(),
                        at,
                    });
                }
            }
        }
    }
    out
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("--to must be after --from")]
    EmptyPeriod,
    #[error("cannot start the emulator")]
    Emulator(#[source] azure_ml_emulator::EmulatorError),
    #[error("cannot connect to the emulator")]
    Connect(#[source] crate::daemon::connect::ConnectError),
    #[error("cannot create a temporary state directory")]
    TempDir(#[source] std::io::Error),
    #[error("cannot open the simulation's state")]
    Store(#[source] crate::daemon::store::StoreError),
    #[error("cannot start the daemon")]
    Daemon(#[source] crate::daemon::DaemonError),
}

/// The pass hook of a simulation: the daemon's own accounting ([`Accountant`]) on the
/// table prices, its latest figures kept for the summary.
struct Accounting {
    accountant: Accountant,
    book: PriceBook,
    latest: Arc<Mutex<CostView>>,
}

impl PassHook for Accounting {
    fn after_pass(
        &mut self,
        cfg: &Config,
        report: &crate::engine::report::PassReport,
        store: &mut Store,
    ) {
        let view = match self.accountant.pass(cfg, report, &self.book, store) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %crate::engine::text::chain(&e), "cannot record costs");
                self.accountant.view_with(&self.book)
            }
        };
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = view;
    }
}

/// The summary of the accountant's totals; always-on prices every observed second of
/// every instance at its compute rate.
fn summarize(cfg: &Config, book: &PriceBook, view: &CostView) -> (CostSummary, Vec<String>) {
    let mut cost = CostSummary {
        currency: view.currency.clone(),
        ..CostSummary::default()
    };
    let mut unpriced = BTreeSet::new();
    for (key, c) in &view.instances {
        cost.spent += c.totals.accrued;
        cost.avoided += c.totals.avoided;
        cost.idle += c.totals.idle;
        let region = cfg
            .workspace(&key.workspace)
            .and_then(|w| w.region.as_deref());
        match book.compute_hourly(&c.vm_size, region).known() {
            Some(p) => {
                cost.always_on +=
                    p * (c.totals.running_seconds + c.totals.stopped_seconds) / 3600.0;
            }
            None => {
                unpriced.insert(c.vm_size.clone());
            }
        }
    }
    (round_cost(cost), unpriced.into_iter().collect())
}

/// A period during which the daemon is not running (its memory survives, as across a
/// restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl std::str::FromStr for Outage {
    type Err = String;

    /// `FROM/TO`, both RFC 3339.
    fn from_str(s: &str) -> Result<Outage, String> {
        let (a, b) = s
            .split_once('/')
            .ok_or_else(|| format!("expected FROM/TO (RFC 3339), got {s:?}"))?;
        let from: Timestamp = a
            .parse()
            .map_err(|e| format!("bad outage start {a:?}: {e}"))?;
        let to: Timestamp = b
            .parse()
            .map_err(|e| format!("bad outage end {b:?}: {e}"))?;
        if to <= from {
            return Err(format!("outage {s:?} ends before it starts"));
        }
        Ok(Outage { from, to })
    }
}

/// Run `cfg`'s policies over `fleet` from `from` to `to` in virtual time, with the daemon
/// down during `outages`.
pub async fn simulate(
    mut cfg: Config,
    mut fleet: Fleet,
    from: Timestamp,
    to: Timestamp,
    outages: &[Outage],
) -> Result<Simulation, SimulateError> {
    if to <= from {
        return Err(SimulateError::EmptyPeriod);
    }
    fleet.clock_start = Some(from);
    // The emulator meters throttling in wall-clock time, which means nothing when a month
    // passes in seconds: lift it for the simulation.
    fleet.limits.read_bucket = u32::MAX / 2;
    fleet.limits.read_refill_per_sec = 1e9;
    fleet.limits.write_bucket = u32::MAX / 2;
    fleet.limits.write_refill_per_sec = 1e9;
    let temp = tempdir().map_err(SimulateError::TempDir)?;
    let emulator = Emulator::start_virtual(fleet, temp.join("emulator"))
        .await
        .map_err(SimulateError::Emulator)?;
    let result = run(&mut cfg, &emulator, &temp, to, outages).await;
    emulator.shutdown().await;
    if let Err(e) = std::fs::remove_dir_all(&temp) {
        tracing::debug!(error = %crate::engine::text::chain(&e), "cannot remove the simulation's temporary directory");
    }
    result
}

async fn run(
    cfg: &mut Config,
    emulator: &azure_ml_emulator::RunningEmulator,
    temp: &std::path::Path,
    to: Timestamp,
    outages: &[Outage],
) -> Result<Simulation, SimulateError> {
    cfg.daemon.dry_run = false;
    // Virtual time does not move while a request waits: retry at once, never sleep long.
    let client_config = ArmClientConfig {
        // Real-time request budgets mean nothing when a month passes in seconds.
        budget: None,
        retry: RetryPolicy::try_new(
            3,
            Duration::from_millis(1),
            Duration::from_millis(5),
            0.0,
            Duration::from_secs(1),
        )
        .unwrap_or_else(|_| RetryPolicy::no_retries()),
        ..ArmClientConfig::default()
    };
    let client = crate::sim::emulated::emulator_client(&mut cfg.azure, emulator, client_config)
        .map_err(SimulateError::Connect)?;
    let store = Store::open(&temp.join("state")).map_err(SimulateError::Store)?;
    let book = PriceBook::new(&cfg.pricing);
    let options = DaemonOptions {
        dry_run: false,
        follow_operations: false,
    };
    let mut daemon = Daemon::new(
        crate::sim::agents::without_storage(cfg.clone()),
        client,
        store,
        options,
        Arc::new(emulator.clock()),
    )
    .map_err(SimulateError::Daemon)?;

    let latest = Arc::new(Mutex::new(CostView::default()));
    // The instances' agents report from the emulator, in process (no blob storage).
    daemon.set_hook(Box::new(WithAgents::new(
        Accounting {
            accountant: Accountant::default(),
            book: book.clone(),
            latest: latest.clone(),
        },
        emulator.agents(),
    )));
    let mut actions = Vec::new();
    let mut passes = 0usize;
    loop {
        let report = daemon.pass().await;
        passes += 1;
        let now = report.at.unwrap_or_else(|| emulator.now());
        actions.extend(report.actions.iter().cloned());
        if now >= to {
            break;
        }
        let mut wake = report.next_wake.unwrap_or(to).min(to);
        // A daemon that is down does no pass until the outage ends.
        if let Some(o) = outages.iter().find(|o| o.from <= wake && wake < o.to) {
            wake = o.to.min(to);
        }
        let step = wake.duration_since(now).max(SignedDuration::from_secs(1));
        let Ok(step) = Duration::try_from(step) else {
            break;
        };
        if emulator.advance_clock(step).is_err() {
            break;
        }
    }
    let view = latest.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let (cost, unpriced) = summarize(cfg, &book, &view);
    let final_state = emulator.state();
    Ok(Simulation {
        actions,
        cost,
        unpriced,
        native_stops: native_stops(cfg, &final_state),
        passes,
        final_state,
    })
}

/// Cents are enough for a summary, and rounding makes the JSON stable across platforms.
fn round_cost(c: CostSummary) -> CostSummary {
    let r = |x: f64| (x * 100.0).round() / 100.0;
    CostSummary {
        spent: r(c.spent),
        avoided: r(c.avoided),
        idle: r(c.idle),
        always_on: r(c.always_on),
        ..c
    }
}

/// A fresh private directory under the system temp dir.
fn tempdir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("lightsout-simulate-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Per-instance totals are not part of the contract output but help tests and reports.
pub fn actions_by_instance(sim: &Simulation) -> BTreeMap<String, Vec<&ActionTaken>> {
    let mut out: BTreeMap<String, Vec<&ActionTaken>> = BTreeMap::new();
    for a in &sim.actions {
        out.entry(format!("{}/{}", a.workspace, a.instance))
            .or_default()
            .push(a);
    }
    out
}
