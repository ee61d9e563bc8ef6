//! `lightsout simulate`: the real daemon against the in-process emulator in virtual time.
//!
//! The very code `lightsout run` uses (observe, decide, act, record) runs pass after pass;
//! between passes the emulator's clock jumps to the daemon's next wake-up (the poll
//! interval or the next schedule boundary), so a month takes seconds. Deterministic: one
//! daemon, one emulator, virtual time, seeded faults. The cost summary integrates prices
//! over the states seen at each pass.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::azure::{ArmClientConfig, CredentialKind, RetryPolicy};
use crate::config::{Config, PricingSettings};
use crate::daemon::{ActionTaken, Daemon, DaemonOptions};
use crate::emulator::{Emulator, EmulatorOptions, Fleet};
use crate::model::InstanceKey;
use crate::plan::PlanRow;
use crate::store::Store;

/// An instance counts as idle for cost once it has been idle this long: short pauses
/// between notebook cells are not waste (15 minutes is also Azure's shortest idle shutdown).
pub const IDLE_COST_GRACE_SECONDS: i64 = 15 * 60;

/// Money over the simulated period, in the config's currency.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostSummary {
    pub currency: String,
    /// Compute while running plus what stopped instances still cost.
    pub spent: f64,
    /// Compute not spent because lightsout stopped the instance (until it next started).
    pub avoided: f64,
    /// Compute spent while running idle (idle for at least 15 minutes).
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
    #[serde(skip)]
    pub passes: usize,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("--to must be after --from")]
    EmptyPeriod,
    #[error("cannot start the emulator")]
    Emulator(#[source] crate::emulator::EmulatorError),
    #[error("the fleet's first principal has no client secret")]
    NoSecret,
    #[error("cannot connect to the emulator")]
    Connect(#[source] crate::connect::ConnectError),
    #[error("cannot create a temporary state directory")]
    TempDir(#[source] std::io::Error),
    #[error("cannot open the simulation's state")]
    Store(#[source] crate::store::StoreError),
    #[error("cannot start the daemon")]
    Daemon(#[source] crate::daemon::DaemonError),
}

/// Prices of one sample, per hour.
fn rates(p: &PricingSettings, vm_size: &str) -> Option<f64> {
    p.vm_hourly.get(&vm_size.to_ascii_lowercase()).copied()
}

/// Add the cost of `row`'s state held for `hours` to `cost`.
fn integrate(
    cost: &mut CostSummary,
    pricing: &PricingSettings,
    row: &PlanRow,
    stopped_by_us: bool,
    hours: f64,
    unpriced: &mut BTreeSet<String>,
) {
    let stopped_rate: f64 = pricing.stopped_hourly.values().sum();
    let Some(compute) = rates(pricing, &row.vm_size) else {
        unpriced.insert(row.vm_size.clone());
        return;
    };
    cost.always_on += compute * hours;
    if row.state == "Stopped" {
        cost.spent += stopped_rate * hours;
        if stopped_by_us {
            cost.avoided += compute * hours;
        }
    } else {
        // Billed as allocated in every other state (running, starting, stopping, …).
        cost.spent += compute * hours;
        if row
            .idle_seconds
            .is_some_and(|s| s >= IDLE_COST_GRACE_SECONDS)
        {
            cost.idle += compute * hours;
        }
    }
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
    let emulator = Emulator::start(EmulatorOptions {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        fleet,
        tls: true,
        virtual_time: true,
        state_dir: Some(temp.join("emulator")),
        page_size: None,
    })
    .await
    .map_err(SimulateError::Emulator)?;
    let result = run(&mut cfg, &emulator, &temp, to, outages).await;
    emulator.shutdown().await;
    if let Err(e) = std::fs::remove_dir_all(&temp) {
        tracing::debug!(error = %e, "cannot remove the simulation's temporary directory");
    }
    result
}

async fn run(
    cfg: &mut Config,
    emulator: &crate::emulator::RunningEmulator,
    temp: &std::path::Path,
    to: Timestamp,
    outages: &[Outage],
) -> Result<Simulation, SimulateError> {
    let ready = emulator.ready();
    let secret = ready.client_secret.clone().ok_or(SimulateError::NoSecret)?;
    let endpoint = url::Url::parse(&ready.endpoint).map_err(|_| SimulateError::NoSecret)?;
    cfg.azure.arm_endpoint = endpoint.clone();
    cfg.azure.authority_host = endpoint;
    cfg.azure.ca_file = emulator.ca_file().map(std::path::Path::to_path_buf);
    cfg.azure.credential = CredentialKind::ClientSecret;
    cfg.azure.tenant_id = Some(ready.tenant_id.clone());
    cfg.azure.client_id = Some(ready.client_id.clone());
    cfg.azure.client_secret_file = None;
    cfg.daemon.dry_run = false;
    let env = move |name: &str| (name == "AZURE_CLIENT_SECRET").then(|| secret.clone());
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
    let client = crate::connect::arm_client_with_env(&cfg.azure, client_config, &env)
        .map_err(SimulateError::Connect)?;
    let store = Store::open(&temp.join("state")).map_err(SimulateError::Store)?;
    let pricing = cfg.pricing.clone();
    let options = DaemonOptions {
        dry_run: false,
        follow_operations: false,
    };
    let mut daemon = Daemon::new(
        cfg.clone(),
        client,
        store,
        options,
        Arc::new(emulator.clock()),
    )
    .map_err(SimulateError::Daemon)?;

    let mut cost = CostSummary {
        currency: pricing.currency.clone(),
        ..CostSummary::default()
    };
    let mut unpriced = BTreeSet::new();
    let mut actions = Vec::new();
    let mut last: Option<(Timestamp, Vec<PlanRow>)> = None;
    let mut stopped_by_us: BTreeSet<InstanceKey> = BTreeSet::new();
    let mut passes = 0usize;
    loop {
        let report = daemon.pass().await;
        passes += 1;
        let now = report.at.unwrap_or_else(|| emulator.now());
        if let Some((then, rows)) = &last {
            let hours = now.duration_since(*then).as_secs_f64() / 3600.0;
            account(
                &mut cost,
                &pricing,
                rows,
                &stopped_by_us,
                hours,
                &mut unpriced,
            );
        }
        for row in &report.rows {
            let key = InstanceKey::new(&row.workspace, &row.instance);
            if row.state != "Stopped" && row.state != "Stopping" {
                stopped_by_us.remove(&key);
            }
        }
        for a in &report.actions {
            if a.action == "stop" {
                stopped_by_us.insert(InstanceKey::new(&a.workspace, &a.instance));
            }
        }
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
        last = Some((now, report.rows));
        if emulator.advance_clock(step).is_err() {
            break;
        }
    }
    Ok(Simulation {
        actions,
        cost: round_cost(cost),
        unpriced: unpriced.into_iter().collect(),
        passes,
    })
}

fn account(
    cost: &mut CostSummary,
    pricing: &PricingSettings,
    rows: &[PlanRow],
    stopped_by_us: &BTreeSet<InstanceKey>,
    hours: f64,
    unpriced: &mut BTreeSet<String>,
) {
    for row in rows {
        let ours = stopped_by_us.contains(&InstanceKey::new(&row.workspace, &row.instance));
        integrate(cost, pricing, row, ours, hours, unpriced);
    }
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
