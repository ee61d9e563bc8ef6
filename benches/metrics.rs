//! Benchmark: render `/metrics` for 10,000 instances (every per-instance series set, as
//! after a pass with costs).
//!
//! Prints the render time of a whole scrape (median and worst of the measured renders; the
//! server streams the same text in chunks), the response size, the largest chunk, and the
//! time to record a pass. Run with `cargo bench --bench metrics`. Not a test: nothing is
//! asserted.

use std::hint::black_box;
use std::time::Duration;

use lightsout::daemon::metrics::Metrics;
use lightsout::engine::cost::{Amounts, CostView, InstanceCost};
use lightsout::engine::model::{Action, InstanceKey, Reason};
use lightsout::engine::plan::PlanRow;
use lightsout::engine::report::{ActionOutcome, ActionTaken, PassReport};

const INSTANCES: usize = 10_000;
const WORKSPACES: usize = 20;
const RENDERS: usize = 30;

fn main() {
    let metrics = Metrics::new("bench").unwrap_or_else(|e| panic!("{e}"));
    let states = ["Running", "Stopped", "JobRunning", "Starting"];
    let at: jiff::Timestamp = "2026-03-27T18:00:00Z".parse().unwrap_or_default();
    let mut report = PassReport {
        at: Some(at),
        duration: Duration::from_millis(420),
        ..PassReport::default()
    };
    let mut costs = CostView {
        currency: "USD".into(),
        ..CostView::default()
    };
    let mut rows = Vec::with_capacity(INSTANCES);
    for i in 0..INSTANCES {
        let workspace = format!("ws{}", i % WORKSPACES);
        let instance = format!("ci-user{i:05}");
        let state = states[i % states.len()];
        rows.push(PlanRow {
            workspace: workspace.clone(),
            instance: instance.clone(),
            state: state.into(),
            vm_size: "Standard_DS3_v2".into(),
            policy: Some("office-hours".into()),
            decision: "none",
            action: None,
            reason: "nothing_due",
            skip: None,
            catch_up: false,
            idle_seconds: (state == "Running").then_some(1200 + i as i64),
            next: None,
            native_drift: Vec::new(),
            stopped_by: None,
            invalid_hold: None,
            agent: None,
        });
        if i % 50 == 0 {
            report.actions.push(ActionTaken {
                at,
                workspace: workspace.clone(),
                instance: instance.clone(),
                action: Action::Stop,
                reason: Reason::Idle,
                policy: "office-hours".into(),
                catch_up: false,
                outcome: ActionOutcome::Accepted,
                native: false,
            });
        }
        costs.instances.insert(
            InstanceKey::new(&workspace, &instance),
            InstanceCost {
                vm_size: "Standard_DS3_v2".into(),
                hourly: Some(0.3234),
                unpriced: i % 1000 == 0,
                stopped_by_lightsout: state == "Stopped",
                idle: state == "Running",
                totals: Amounts {
                    accrued: 12.345_678 + i as f64,
                    avoided: 3.21 * (i % 7) as f64,
                    idle: 1.5,
                    ..Amounts::default()
                },
            },
        );
    }
    report.rows = rows.into();
    let record = tokio::time::Instant::now();
    metrics.record_pass(&report, &costs, 3600.0);
    let record_time = record.elapsed();

    let mut times = Vec::with_capacity(RENDERS);
    let mut size = 0;
    for _ in 0..RENDERS {
        let start = tokio::time::Instant::now();
        let text = metrics.render().unwrap_or_else(|e| panic!("{e}"));
        times.push(start.elapsed());
        size = black_box(text).len();
    }
    times.sort();
    let largest_chunk = metrics
        .render_chunks()
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|c| c.len())
        .max()
        .unwrap_or(0);
    let series = {
        let text = metrics.render().unwrap_or_default();
        text.lines().filter(|l| !l.starts_with('#')).count()
    };
    println!(
        "metrics: {INSTANCES} instances, {series} series: render median {:?}, worst {:?}; response {} bytes ({:.1} MiB), streamed in chunks of at most {} bytes; recording the pass (updating every series, done once per pass) took {:?}",
        times[times.len() / 2],
        times[times.len() - 1],
        size,
        size as f64 / (1024.0 * 1024.0),
        largest_chunk,
        record_time
    );
}
