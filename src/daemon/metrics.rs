//! Every Prometheus metric lightsout exports, declared in one place with its help text and
//! base units (seconds, the configured currency).
//!
//! The registry belongs to [`Metrics`], which the app owns and shares (no global registry).
//! Labels are bounded: workspace aliases (from the config), instance names and vm sizes
//! (from Azure, bounded by the fleet), Azure's state names (unknown ones become `Other`),
//! action, reason and outcome words, client operation names, HTTP status codes, currency.
//! No error text, no timestamps.
//!
//! Per-instance series follow the fleet: an instance that is gone from a workspace that
//! was listed successfully loses all its series at that pass; the series of a workspace
//! that could not be listed are left as they were.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::azure::RequestEvent;
use crate::engine::cost::CostView;
use crate::engine::model::InstanceState;
use crate::engine::report::PassReport;

mod instances;

use instances::{InstanceSeries, InstanceText};

/// Errors of the metrics layer.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot register a metric")]
    Register(#[source] prometheus::Error),
    #[error("cannot encode the metrics")]
    Encode(#[source] prometheus::Error),
}

impl MetricsError {
    /// Short stable name for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            MetricsError::Register(_) => "register",
            MetricsError::Encode(_) => "encode",
        }
    }
}

/// Buckets of the pass duration, in seconds.
const PASS_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];
/// Buckets of one ARM request, in seconds.
const REQUEST_BUCKETS: &[f64] = &[0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The registry and every metric in it.
pub struct Metrics {
    /// Everything but the per-instance families; gathered at each scrape.
    registry: Registry,
    /// The per-instance families (one series or more per instance) as plain values, as of
    /// the latest pass: a scrape renders them from this snapshot, a chunk at a time.
    per_instance: RwLock<Arc<InstanceSeries>>,
    /// `lightsout_up`: 1 while the process serves metrics.
    pub up: IntGauge,
    /// `lightsout_build_info{version}`: always 1.
    pub build_info: IntGaugeVec,
    /// `lightsout_instances{workspace,state}`.
    pub instances: IntGaugeVec,
    /// `lightsout_native_drift_instances{workspace}`: instances whose native settings
    /// differ from their policy's `[policy.native]` (report or enforce mode).
    pub native_drift: IntGaugeVec,
    /// `lightsout_unpriced_instances`: how many instances have no known compute price.
    pub unpriced_instances: IntGauge,
    /// `lightsout_invalid_holds`: instances whose `lightsout-hold-until` cannot be read
    /// (held, fail closed, until someone fixes the tag).
    pub invalid_holds: IntGauge,
    /// `lightsout_actions_total{workspace,action,reason,outcome}`.
    pub actions: IntCounterVec,
    /// `lightsout_arm_requests_total{operation,status}`.
    pub arm_requests: IntCounterVec,
    /// `lightsout_arm_request_duration_seconds{operation}`.
    pub arm_request_duration: HistogramVec,
    /// `lightsout_reconcile_duration_seconds`.
    pub reconcile_duration: Histogram,
    /// `lightsout_last_reconcile_timestamp_seconds`.
    pub last_reconcile: Gauge,
    /// `lightsout_poll_interval_seconds`: the configured poll interval (for staleness alerts).
    pub poll_interval: Gauge,
    /// `lightsout_reconcile_passes_total`.
    pub passes: IntCounter,
    /// `lightsout_workspace_observe_failures_total{workspace}`.
    pub observe_failures: IntCounterVec,
    /// `lightsout_workspace_up{workspace}`: 1 when the latest pass observed it, else 0.
    pub workspace_up: IntGaugeVec,
    /// `lightsout_workspace_last_observed_timestamp_seconds{workspace}`.
    pub workspace_last_observed: prometheus::GaugeVec,
    /// `lightsout_prices_age_seconds`.
    pub prices_age: Gauge,
    /// `lightsout_price_requests_total{outcome}`.
    pub price_requests: IntCounterVec,
    /// `lightsout_state_errors_total{kind}`.
    pub state_errors: IntCounterVec,
    /// `lightsout_agent_heartbeats_ignored_total{workspace,reason}`.
    pub agent_ignored: IntCounterVec,
    /// `lightsout_agent_heartbeat_lists_total{workspace,outcome}`: List Blobs operations.
    pub agent_lists: IntCounterVec,
    /// `lightsout_storage_requests_total{account}`: HTTP requests to storage accounts.
    pub storage_requests: IntCounterVec,
    /// `lightsout_agent_heartbeat_age_seconds{workspace,instance}`.
    pub agent_age: prometheus::GaugeVec,
    /// `lightsout_agent_heartbeats{workspace,state}`: instances asked, by heartbeat state.
    pub agent_states: IntGaugeVec,
    /// `lightsout_instance_busy{workspace,instance,reason}`.
    pub instance_busy: IntGaugeVec,
    states: Mutex<BTreeSet<(String, String)>>,
    /// Workspaces with `workspace_up` series (a workspace dropped from the config loses them).
    workspaces: Mutex<BTreeSet<String>>,
    /// Size of the previous process-wide text, to allocate the next one at once.
    last_size: AtomicUsize,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Metrics {
    /// A fresh registry with every metric registered; `lightsout_up` is 1 and
    /// `lightsout_build_info` carries `version`.
    pub fn new(version: &str) -> Result<Metrics, MetricsError> {
        let r = Registry::new();
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.map_err(MetricsError::Register)?;
                r.register(Box::new(m.clone()))
                    .map_err(MetricsError::Register)?;
                m
            }};
        }
        let ic = |n: &str, h: &str, l: &[&str]| IntCounterVec::new(opts(n, h), l);
        let ig = |n: &str, h: &str, l: &[&str]| IntGaugeVec::new(opts(n, h), l);
        let m = Metrics {
            up: reg!(IntGauge::new(
                "lightsout_up",
                "1 while lightsout runs and serves metrics."
            )),
            build_info: reg!(ig(
                "lightsout_build_info",
                "Always 1; the version label says which lightsout runs.",
                &["version"]
            )),
            instances: reg!(ig(
                "lightsout_instances",
                "Compute instances by Azure state, at the latest pass.",
                &["workspace", "state"]
            )),
            native_drift: reg!(ig(
                "lightsout_native_drift_instances",
                "Compute instances whose own idle shutdown or start/stop schedules differ from policy ([policy.native] report or enforce), at the latest pass.",
                &["workspace"]
            )),
            unpriced_instances: reg!(IntGauge::new(
                "lightsout_unpriced_instances",
                "Compute instances whose vm size has no known compute price."
            )),
            invalid_holds: reg!(IntGauge::new(
                "lightsout_invalid_holds",
                "Compute instances whose lightsout-hold-until tag cannot be read, at the latest pass (held until the tag is fixed or removed)."
            )),
            actions: reg!(ic(
                "lightsout_actions_total",
                "Start, stop and restart requests and native settings changes (idle_shutdown, schedules) by lightsout, by outcome when sent (accepted, refused, failed, unknown, dry_run).",
                &["workspace", "action", "reason", "outcome"]
            )),
            arm_requests: reg!(ic(
                "lightsout_arm_requests_total",
                "HTTP requests to Azure Resource Manager by client operation and status code (error: no response).",
                &["operation", "status"]
            )),
            arm_request_duration: reg!(HistogramVec::new(
                HistogramOpts::new(
                    "lightsout_arm_request_duration_seconds",
                    "Time from sending an ARM request to its response headers, in seconds."
                )
                .buckets(REQUEST_BUCKETS.to_vec()),
                &["operation"]
            )),
            reconcile_duration: reg!(Histogram::with_opts(
                HistogramOpts::new(
                    "lightsout_reconcile_duration_seconds",
                    "Duration of one reconcile pass (observe, decide, act, record), in seconds."
                )
                .buckets(PASS_BUCKETS.to_vec())
            )),
            last_reconcile: reg!(Gauge::new(
                "lightsout_last_reconcile_timestamp_seconds",
                "Unix time of the latest completed reconcile pass, in seconds."
            )),
            poll_interval: reg!(Gauge::new(
                "lightsout_poll_interval_seconds",
                "The configured poll interval, in seconds: a pass is due at least this often."
            )),
            passes: reg!(IntCounter::new(
                "lightsout_reconcile_passes_total",
                "Reconcile passes completed."
            )),
            observe_failures: reg!(ic(
                "lightsout_workspace_observe_failures_total",
                "Passes in which a workspace could not be listed (its instances were left alone).",
                &["workspace"]
            )),
            workspace_up: reg!(ig(
                "lightsout_workspace_up",
                "1 when the latest pass observed (listed) the workspace, 0 when it could not: its instances are then neither stopped nor started.",
                &["workspace"]
            )),
            workspace_last_observed: reg!(prometheus::GaugeVec::new(
                opts(
                    "lightsout_workspace_last_observed_timestamp_seconds",
                    "Unix time of the latest pass that observed the workspace (the daemon's start while none has), in seconds."
                ),
                &["workspace"]
            )),
            prices_age: reg!(Gauge::new(
                "lightsout_prices_age_seconds",
                "Age of the oldest retail price in use, in seconds (0 for the table source)."
            )),
            price_requests: reg!(ic(
                "lightsout_price_requests_total",
                "Queries to the Azure Retail Prices API by outcome (ok, or the error kind).",
                &["outcome"]
            )),
            state_errors: reg!(ic(
                "lightsout_state_errors_total",
                "Failed writes (intents, outcomes, memory, cost accounting) and reads of the state database, by error kind.",
                &["kind"]
            )),
            agent_ignored: reg!(ic(
                "lightsout_agent_heartbeats_ignored_total",
                "Heartbeat blobs ignored by reason (bad_name, too_large, no_verdict, bad_verdict, from_the_future, not_governed), counted at every pass that lists them.",
                &["workspace", "reason"]
            )),
            agent_lists: reg!(ic(
                "lightsout_agent_heartbeat_lists_total",
                "Listings of a workspace's heartbeats (one List Blobs per workspace and pass, following its pages), by outcome (ok, error, timeout).",
                &["workspace", "outcome"]
            )),
            storage_requests: reg!(ic(
                "lightsout_storage_requests_total",
                "HTTP requests to Azure Storage accounts (List Blobs pages of 5,000 heartbeats), by account host.",
                &["account"]
            )),
            agent_age: reg!(prometheus::GaugeVec::new(
                opts(
                    "lightsout_agent_heartbeat_age_seconds",
                    "Age of the agent's latest heartbeat of a running instance whose policy counts the agent, in seconds (absent while none was read)."
                ),
                &["workspace", "instance"]
            )),
            agent_states: reg!(ig(
                "lightsout_agent_heartbeats",
                "Running instances whose policy counts the agent, by heartbeat state (seen, missing, stale, rejected, unreachable), at the latest pass.",
                &["workspace", "state"]
            )),
            instance_busy: reg!(ig(
                "lightsout_instance_busy",
                "1 per reason a running instance is busy at the latest pass (the agent's reasons; job: an Azure ML job).",
                &["workspace", "instance", "reason"]
            )),
            states: Mutex::new(BTreeSet::new()),
            workspaces: Mutex::new(BTreeSet::new()),
            last_size: AtomicUsize::new(0),
            registry: r,
            per_instance: RwLock::new(Arc::new(InstanceSeries::default())),
        };
        m.up.set(1);
        m.build_info.with_label_values(&[version]).set(1);
        // At 0 from the start: `increase()` cannot see a series' first sample, so a
        // counter born at 1 by the first failure would never alert.
        m.state_errors.with_label_values(&["sql"]);
        Ok(m)
    }

    /// The registry of the process-wide families (for extra collectors in tests).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The exposition in the Prometheus text format (0.0.4): the process-wide families,
    /// gathered now, then the per-instance families as of the latest pass.
    pub fn render(&self) -> Result<String, MetricsError> {
        Ok(self.render_chunks()?.collect())
    }

    /// [`Metrics::render`] as chunks, for a scrape to stream: the per-instance text (about
    /// 5 MB at 10,000 instances) is rendered a chunk at a time as it is sent, never whole.
    pub fn render_chunks(
        &self,
    ) -> Result<impl Iterator<Item = String> + Send + 'static, MetricsError> {
        let families = self.registry.gather();
        let mut head = String::with_capacity(self.last_size.load(Ordering::Relaxed) + 4096);
        TextEncoder::new()
            .encode_utf8(&families, &mut head)
            .map_err(MetricsError::Encode)?;
        self.last_size.store(head.len(), Ordering::Relaxed);
        let snapshot = self
            .per_instance
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(std::iter::once(head).chain(InstanceText::new(snapshot)))
    }

    /// One finished ARM request (the client's `on_request` hook).
    pub fn arm_request(&self, e: &RequestEvent) {
        let status = e
            .status
            .map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.arm_requests
            .with_label_values(&[e.operation, status.as_str()])
            .inc();
        self.arm_request_duration
            .with_label_values(&[e.operation])
            .observe(e.elapsed.as_secs_f64());
    }

    /// One query to the retail prices API.
    pub fn price_request(&self, outcome: &str) {
        self.price_requests.with_label_values(&[outcome]).inc();
    }

    /// `n` failed reads or writes of the state database.
    pub fn state_error(&self, kind: &str, n: u64) {
        self.state_errors.with_label_values(&[kind]).inc_by(n);
    }

    /// Update everything a pass tells: instance series, actions, costs, loop health.
    pub fn record_pass(&self, report: &PassReport, costs: &CostView, prices_age_seconds: f64) {
        self.passes.inc();
        self.reconcile_duration
            .observe(report.duration.as_secs_f64());
        if let Some(at) = report.at {
            self.last_reconcile.set(at.as_millisecond() as f64 / 1000.0);
        }
        self.prices_age.set(prices_age_seconds);
        for ws in &report.failed_workspaces {
            self.observe_failures
                .with_label_values(&[ws.as_str()])
                .inc();
        }
        for a in &report.actions {
            self.actions
                .with_label_values(&[
                    a.workspace.as_str(),
                    a.action.as_str(),
                    a.reason.as_str(),
                    a.outcome.as_str(),
                ])
                .inc();
        }
        self.record_workspaces(report);
        self.record_states(report);
        self.record_native_drift(report);
        self.invalid_holds.set(
            report
                .rows
                .iter()
                .filter(|r| r.invalid_hold.is_some())
                .count() as i64,
        );
        self.record_instances(report, costs);
        self.record_agent(report);
    }

    /// The agent's series: counters added, gauges set afresh from the pass (an instance no
    /// longer running or asked loses its series).
    fn record_agent(&self, report: &PassReport) {
        for ((ws, reason), n) in &report.agent.ignored {
            self.agent_ignored
                .with_label_values(&[ws.as_str(), reason])
                .inc_by(*n);
        }
        for (ws, outcome) in &report.agent.lists {
            self.agent_lists
                .with_label_values(&[ws.as_str(), outcome])
                .inc();
        }
        for (account, n) in &report.agent.requests {
            self.storage_requests
                .with_label_values(&[account.as_str()])
                .inc_by(*n);
        }
        self.agent_age.reset();
        self.agent_states.reset();
        self.instance_busy.reset();
        for row in report.rows.iter() {
            let (ws, name) = (row.workspace.as_str(), row.instance.as_str());
            if row.state == InstanceState::JobRunning.as_str() {
                self.instance_busy
                    .with_label_values(&[ws, name, "job"])
                    .set(1);
            }
            let Some(agent) = &row.agent else { continue };
            self.agent_states
                .with_label_values(&[ws, agent.heartbeat])
                .inc();
            if let Some(age) = agent.heartbeat_age_seconds {
                self.agent_age
                    .with_label_values(&[ws, name])
                    .set(age as f64);
            }
            if agent.busy == Some(true) {
                for reason in &agent.reasons {
                    self.instance_busy
                        .with_label_values(&[ws, name, reason.as_str()])
                        .set(1);
                }
            }
        }
    }

    /// Whether each configured workspace was observed, and when it last was.
    fn record_workspaces(&self, report: &PassReport) {
        let mut known = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
        let now: BTreeSet<String> = report.workspaces.iter().map(|w| w.alias.clone()).collect();
        for gone in known.difference(&now) {
            drop(self.workspace_up.remove_label_values(&[gone.as_str()]));
            drop(
                self.workspace_last_observed
                    .remove_label_values(&[gone.as_str()]),
            );
        }
        for w in &report.workspaces {
            self.workspace_up
                .with_label_values(&[w.alias.as_str()])
                .set(i64::from(w.observed));
            self.workspace_last_observed
                .with_label_values(&[w.alias.as_str()])
                .set(w.last_observed.as_millisecond() as f64 / 1000.0);
        }
        *known = now;
    }

    /// Every observed workspace gets a value (0 when in line), so alerts can compare.
    fn record_native_drift(&self, report: &PassReport) {
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for row in report.rows.iter() {
            *counts.entry(row.workspace.as_str()).or_default() +=
                i64::from(!row.native_drift.is_empty());
        }
        for (ws, n) in counts {
            self.native_drift.with_label_values(&[ws]).set(n);
        }
    }

    fn record_states(&self, report: &PassReport) {
        let failed: BTreeSet<&str> = report
            .failed_workspaces
            .iter()
            .map(String::as_str)
            .collect();
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for row in report.rows.iter() {
            let state = match InstanceState::from_azure(&row.state) {
                InstanceState::Other(_) => "Other".to_owned(),
                s => s.as_str().to_owned(),
            };
            *counts.entry((row.workspace.clone(), state)).or_default() += 1;
        }
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        // A state no longer seen in a listed workspace drops to 0 (kept, so a dashboard's
        // line ends at 0 rather than vanishing).
        for (ws, state) in states.iter() {
            if !failed.contains(ws.as_str()) && !counts.contains_key(&(ws.clone(), state.clone())) {
                self.instances
                    .with_label_values(&[ws.as_str(), state.as_str()])
                    .set(0);
            }
        }
        for ((ws, state), n) in counts {
            self.instances
                .with_label_values(&[ws.as_str(), state.as_str()])
                .set(n);
            states.insert((ws, state));
        }
    }

    /// Take the pass into the per-instance series, for the scrapes until the next pass.
    fn record_instances(&self, report: &PassReport, costs: &CostView) {
        let previous = self
            .per_instance
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let series = previous.updated(report, costs);
        drop(previous);
        self.unpriced_instances.set(series.unpriced() as i64);
        *self.per_instance.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(series);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cost::{Amounts, InstanceCost};
    use crate::engine::model::InstanceKey;
    use crate::engine::plan::PlanRow;

    pub(super) fn row(ws: &str, instance: &str, state: &str, idle: Option<i64>) -> PlanRow {
        PlanRow {
            workspace: ws.into(),
            instance: instance.into(),
            state: state.into(),
            vm_size: "Standard_DS3_v2".into(),
            policy: None,
            decision: "none",
            action: None,
            reason: "nothing_due",
            skip: None,
            catch_up: false,
            idle_seconds: idle,
            next: None,
            native_drift: Vec::new(),
            stopped_by: None,
            invalid_hold: None,
            agent: None,
        }
    }

    fn costs(keys: &[(&str, &str, bool)]) -> CostView {
        CostView {
            currency: "USD".into(),
            instances: keys
                .iter()
                .map(|(ws, i, unpriced)| {
                    (
                        InstanceKey::new(*ws, *i),
                        InstanceCost {
                            vm_size: "Standard_DS3_v2".into(),
                            hourly: (!unpriced).then_some(0.3),
                            unpriced: *unpriced,
                            stopped_by_lightsout: false,
                            idle: false,
                            totals: Amounts {
                                accrued: 1.5,
                                ..Amounts::default()
                            },
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn workspace_up_follows_the_pass_and_the_config() {
        use crate::engine::report::WorkspaceSeen;
        let m = Metrics::new("test").unwrap();
        let seen = |alias: &str, observed: bool| WorkspaceSeen {
            alias: alias.into(),
            observed,
            last_observed: "2026-03-27T12:00:00Z".parse().unwrap(),
        };
        let report = PassReport {
            workspaces: vec![seen("lab", true), seen("prod", false)],
            ..PassReport::default()
        };
        m.record_pass(&report, &CostView::default(), 0.0);
        let text = m.render().unwrap();
        assert!(
            text.contains("lightsout_workspace_up{workspace=\"lab\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("lightsout_workspace_up{workspace=\"prod\"} 0"),
            "{text}"
        );
        assert!(text.contains(
            "lightsout_workspace_last_observed_timestamp_seconds{workspace=\"prod\"} 1774612800"
        ));
        // `prod` dropped from the config: its series go.
        let report = PassReport {
            workspaces: vec![seen("lab", false)],
            ..PassReport::default()
        };
        m.record_pass(&report, &CostView::default(), 0.0);
        let text = m.render().unwrap();
        assert!(
            text.contains("lightsout_workspace_up{workspace=\"lab\"} 0"),
            "{text}"
        );
        assert!(!text.contains("workspace=\"prod\""), "{text}");
    }

    #[test]
    fn native_drift_gauge_counts_drifting_instances_per_workspace() {
        let m = Metrics::new("test").unwrap();
        let mut a = row("lab", "ci-a", "Running", None);
        a.native_drift = vec!["idle shutdown PT60M -> PT30M".into()];
        let b = row("lab", "ci-b", "Stopped", None);
        let report = PassReport {
            rows: vec![a, b].into(),
            ..PassReport::default()
        };
        m.record_pass(&report, &CostView::default(), 0.0);
        let text = m.render().unwrap();
        assert!(
            text.contains("lightsout_native_drift_instances{workspace=\"lab\"} 1"),
            "{text}"
        );
        let report = PassReport {
            rows: vec![row("lab", "ci-a", "Running", None)].into(),
            ..PassReport::default()
        };
        m.record_pass(&report, &CostView::default(), 0.0);
        assert!(
            m.render()
                .unwrap()
                .contains("lightsout_native_drift_instances{workspace=\"lab\"} 0")
        );
    }

    #[test]
    fn invalid_holds_gauge_counts_unreadable_hold_tags() {
        let m = Metrics::new("test").unwrap();
        let mut a = row("lab", "ci-a", "Running", None);
        a.invalid_hold = Some("lightsout-hold-until = \"2099-01-01\" is not …".into());
        let report = PassReport {
            rows: vec![a, row("lab", "ci-b", "Running", None)].into(),
            ..PassReport::default()
        };
        m.record_pass(&report, &CostView::default(), 0.0);
        assert!(m.render().unwrap().contains("lightsout_invalid_holds 1"));
        m.record_pass(&PassReport::default(), &CostView::default(), 0.0);
        assert!(m.render().unwrap().contains("lightsout_invalid_holds 0"));
    }

    #[test]
    fn agent_series_follow_the_pass() {
        use crate::engine::heartbeat::BusyReason;
        use crate::engine::plan::AgentView;
        let m = Metrics::new("test").unwrap();
        let mut a = row("lab", "ci-a", "Running", None);
        a.agent = Some(AgentView {
            heartbeat: "seen",
            busy: Some(true),
            reasons: vec![BusyReason::Cpu, BusyReason::Gpu],
            last_activity: None,
            heartbeat_at: None,
            heartbeat_age_seconds: Some(42),
            snooze: None,
        });
        let mut b = row("lab", "ci-b", "Running", None);
        b.agent = Some(AgentView::unknown("missing"));
        let job = row("lab", "ci-job", "JobRunning", None);
        let mut report = PassReport {
            rows: vec![a, b, job].into(),
            ..PassReport::default()
        };
        report
            .agent
            .ignored
            .insert(("lab".into(), "not_governed"), 3);
        report.agent.lists.push(("lab".into(), "ok"));
        report
            .agent
            .requests
            .insert("acct.blob.core.windows.net".into(), 2);
        m.record_pass(&report, &CostView::default(), 0.0);
        m.record_pass(&report, &CostView::default(), 0.0);
        let text = m.render().unwrap();
        for want in [
            r#"lightsout_agent_heartbeat_age_seconds{instance="ci-a",workspace="lab"} 42"#,
            r#"lightsout_instance_busy{instance="ci-a",reason="cpu",workspace="lab"} 1"#,
            r#"lightsout_instance_busy{instance="ci-a",reason="gpu",workspace="lab"} 1"#,
            r#"lightsout_instance_busy{instance="ci-job",reason="job",workspace="lab"} 1"#,
            r#"lightsout_agent_heartbeats{state="missing",workspace="lab"} 1"#,
            r#"lightsout_agent_heartbeats{state="seen",workspace="lab"} 1"#,
            r#"lightsout_agent_heartbeats_ignored_total{reason="not_governed",workspace="lab"} 6"#,
            r#"lightsout_agent_heartbeat_lists_total{outcome="ok",workspace="lab"} 2"#,
            r#"lightsout_storage_requests_total{account="acct.blob.core.windows.net"} 4"#,
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        m.record_pass(&PassReport::default(), &CostView::default(), 0.0);
        let text = m.render().unwrap();
        assert!(!text.contains("lightsout_instance_busy{"), "{text}");
        assert!(
            !text.contains("lightsout_agent_heartbeat_age_seconds{"),
            "{text}"
        );
    }

    #[test]
    fn gone_instances_lose_their_series_unless_their_workspace_failed() {
        let m = Metrics::new("1.2.3").unwrap();
        let report = PassReport {
            rows: vec![
                row("a", "x", "Running", Some(400)),
                row("a", "y", "Stopped", None),
                row("b", "z", "Running", None),
            ]
            .into(),
            ..PassReport::default()
        };
        m.record_pass(
            &report,
            &costs(&[("a", "x", false), ("a", "y", true), ("b", "z", false)]),
            0.0,
        );
        let text = m.render().unwrap();
        assert!(text.contains("lightsout_build_info{version=\"1.2.3\"} 1"));
        assert!(
            text.contains(r#"lightsout_instance_idle_seconds{instance="x",workspace="a"} 400"#)
        );
        assert!(text.contains(
            r#"lightsout_cost_accrued_total{currency="USD",instance="y",workspace="a"} 1.5"#
        ));
        assert!(text.contains("lightsout_unpriced_instances 1"));
        assert!(text.contains(r#"lightsout_instances{state="Running",workspace="a"} 1"#));
        // Next pass: y is gone from `a`; `b` could not be listed; x stopped.
        let report = PassReport {
            rows: vec![row("a", "x", "Stopped", None)].into(),
            failed_workspaces: vec!["b".into()],
            ..PassReport::default()
        };
        m.record_pass(&report, &costs(&[("a", "x", false)]), 0.0);
        let text = m.render().unwrap();
        assert!(!text.contains("instance=\"y\""), "{text}");
        assert!(!text.contains("lightsout_instance_idle_seconds{"), "{text}");
        assert!(text.contains("instance=\"z\""), "{text}");
        assert!(text.contains("lightsout_unpriced_instances 0"));
        assert!(text.contains(r#"lightsout_instances{state="Running",workspace="a"} 0"#));
        assert!(text.contains(r#"lightsout_instances{state="Stopped",workspace="a"} 1"#));
        assert!(text.contains(r#"lightsout_workspace_observe_failures_total{workspace="b"} 1"#));
    }

    #[test]
    fn counters_follow_durable_totals_and_never_go_down() {
        let m = Metrics::new("t").unwrap();
        let report = PassReport {
            rows: vec![row("a", "x", "Running", None)].into(),
            ..PassReport::default()
        };
        let mut c = costs(&[("a", "x", false)]);
        m.record_pass(&report, &c, 0.0);
        let accrued = |m: &Metrics| {
            let text = m.render().unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with("lightsout_cost_accrued_total{"))
                .unwrap_or_else(|| panic!("{text}"))
                .to_owned();
            assert_eq!(
                line.split(' ').next(),
                Some(r#"lightsout_cost_accrued_total{currency="USD",instance="x",workspace="a"}"#)
            );
            line.rsplit(' ').next().unwrap().parse::<f64>().unwrap()
        };
        assert_eq!(accrued(&m), 1.5);
        c.instances
            .values_mut()
            .for_each(|i| i.totals.accrued = 2.0);
        m.record_pass(&report, &c, 0.0);
        assert_eq!(accrued(&m), 2.0);
        c.instances
            .values_mut()
            .for_each(|i| i.totals.accrued = 1.0);
        m.record_pass(&report, &c, 0.0);
        assert_eq!(accrued(&m), 2.0);
    }
}
