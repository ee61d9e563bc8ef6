//! `lightsout demo`: the emulator and the daemon in one process, on the shipped
//! `config/demo.toml` and `config/demo-fleet.toml`, with the emulated clock running fast.
//!
//! Part one does by hand what the Azure ML SDK v1 does for one instance (create, list,
//! stop, start, restart, delete, with progress). Part two runs the real daemon passes: an
//! idle instance is stopped, a busy one kept, a held one skipped, an opted-out one ignored,
//! and a GPU training in tmux over SSH, which Azure's own idle shutdown would stop, kept on
//! its on-instance agent's word. The agents' verdicts come from the emulator's agent view in
//! process ([`crate::sim::agents`]): the demo needs no storage account.
//! Everything prints as it happens; Ctrl-C ends it cleanly.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use azure_ml_emulator::agent::AgentView;
use azure_ml_emulator::{Emulator, EmulatorAgents, Fleet, RunningEmulator};
use jiff::SignedDuration;
use tokio_util::sync::CancellationToken;

use crate::azure::wire::UnderlyingResourceAction;
use crate::azure::{ArmClient, ArmClientConfig};
use crate::daemon::accountant::Accountant;
use crate::daemon::exporter::{Exporter, Shared};
use crate::daemon::http;
use crate::daemon::metrics::Metrics;
use crate::daemon::price_fetch::SharedBook;
use crate::daemon::store::Store;
use crate::daemon::{Daemon, DaemonOptions};
use crate::engine::config::Config;
use crate::engine::model::WorkspaceRef;
use crate::engine::plan::PlanRow;
use crate::engine::pricing::PriceBook;
use crate::sim::agents::WithAgents;

/// The demo's configuration, as shipped in `config/demo.toml`.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");
/// The demo's fleet, as shipped in `config/demo-fleet.toml`.
pub const DEMO_FLEET: &str = include_str!("../../config/demo-fleet.toml");

/// How the demo runs (`lightsout demo`'s flags).
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How much faster than real time the emulated clock runs.
    pub speed: u32,
    /// How long the daemon part runs, in emulated time.
    pub duration: std::time::Duration,
    /// Skip the by-hand lifecycle part.
    pub skip_lifecycle: bool,
}

/// Real time between two advances of the emulated clock.
const TICK: Duration = Duration::from_millis(250);

/// Run the demo.
pub async fn run(args: DemoOptions) -> anyhow::Result<()> {
    let (mut cfg, _) =
        crate::engine::config::parse(DEMO_CONFIG, std::path::Path::new("config/demo.toml"))?;
    let fleet = Fleet::from_toml_str(DEMO_FLEET, "config/demo-fleet.toml")?;
    let temp = std::env::temp_dir().join(format!("lightsout-demo-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&temp).context("cannot create the demo's temporary directory")?;
    let emulator = Emulator::start_virtual(fleet, temp.join("emulator")).await?;
    let emulator = Arc::new(emulator);
    let stop = crate::daemon::shutdown::install();
    let pacer = spawn_pacer(emulator.clone(), args.speed, stop.clone());
    let result = story(&args, &mut cfg, &emulator, &temp, &stop).await;
    stop.cancel();
    drop(pacer.await);
    if let Ok(emulator) = Arc::try_unwrap(emulator) {
        emulator.shutdown().await;
    }
    if let Err(e) = std::fs::remove_dir_all(&temp) {
        tracing::debug!(error = %crate::engine::text::chain(&e), "cannot remove the demo's temporary directory");
    }
    result
}

/// Moves the emulated clock `speed` times faster than real time.
fn spawn_pacer(
    emulator: Arc<RunningEmulator>,
    speed: u32,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let step = TICK * speed;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(TICK) => {
                    if emulator.advance_clock(step).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// Print a line stamped with the emulated time in Paris, where the demo's team works.
fn say(emulator: &RunningEmulator, text: &str) {
    let zone = jiff::tz::TimeZone::get("Europe/Paris").unwrap_or(jiff::tz::TimeZone::UTC);
    let t = emulator.now().to_zoned(zone);
    println!("[{}] {text}", t.strftime("%a %H:%M"));
}

async fn story(
    args: &DemoOptions,
    cfg: &mut Config,
    emulator: &Arc<RunningEmulator>,
    temp: &std::path::Path,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let ready = emulator.ready();
    let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION"))?);
    let m = metrics.clone();
    let client_config = ArmClientConfig {
        on_request: Some(Arc::new(move |e| m.arm_request(e))),
        ..ArmClientConfig::default()
    };
    let client = crate::sim::emulated::emulator_client(&mut cfg.azure, emulator, client_config)?;
    println!(
        "lightsout demo: an emulated Azure ML workspace at {}, its clock running {}x (Ctrl-C ends it)",
        ready.endpoint, args.speed
    );
    let ws = cfg
        .workspaces
        .first()
        .map(|w| w.reference.clone())
        .context("the demo config names no workspace")?;
    if !args.skip_lifecycle {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            r = lifecycle(&client, &ws, emulator) => r?,
        }
    }
    tokio::select! {
        () = stop.cancelled() => Ok(()),
        r = daemon_part(args, cfg, client, metrics, emulator, temp, stop) => r,
    }
}

/// Part one: one instance by hand, as the Azure ML SDK v1 does.
async fn lifecycle(
    client: &ArmClient,
    ws: &WorkspaceRef,
    emulator: &RunningEmulator,
) -> anyhow::Result<()> {
    say(
        emulator,
        "part 1: one compute instance by hand (what `lightsout ci` does)",
    );
    let name = "ci-demo";
    let body = crate::azure::create::create_body(
        "westeurope",
        "Standard_DS3_v2",
        Some("PT60M".into()),
        false,
        None,
        None,
    );
    let op = client.create_compute(ws, name, &body).await?;
    say(
        emulator,
        &format!("create {name} (Standard_DS3_v2, idle shutdown 60m): accepted"),
    );
    follow(client, ws, name, &op, emulator).await?;
    let all = client.list_computes(ws).await?;
    let names: Vec<String> = all
        .iter()
        .filter_map(|r| {
            Some(format!(
                "{} ({})",
                r.name.as_deref()?,
                r.instance_state()?.as_str()
            ))
        })
        .collect();
    say(emulator, &format!("list: {}", names.join(", ")));
    for verb in ["stop", "start", "restart"] {
        // Each request goes out once the previous operation has ended.
        let op = match verb {
            "stop" => client.stop(ws, name).await?,
            "start" => client.start(ws, name).await?,
            _ => client.restart(ws, name).await?,
        };
        say(emulator, &format!("{verb} {name}: accepted"));
        follow(client, ws, name, &op, emulator).await?;
    }
    let op = client
        .delete_compute(ws, name, UnderlyingResourceAction::Delete)
        .await?;
    say(emulator, &format!("delete {name}: accepted"));
    follow(client, ws, name, &op, emulator).await?;
    Ok(())
}

/// Wait for an operation, printing each new state of the instance.
async fn follow(
    client: &ArmClient,
    ws: &WorkspaceRef,
    name: &str,
    op: &crate::azure::Accepted,
    emulator: &RunningEmulator,
) -> anyhow::Result<()> {
    let mut last = String::new();
    loop {
        let outcome = client.poll_operation(op).await?;
        let state = client
            .get_compute(ws, name)
            .await
            .ok()
            .and_then(|r| r.instance_state().map(|s| s.as_str().to_owned()))
            .unwrap_or_else(|| "deleted".to_owned());
        if state != last {
            say(emulator, &format!("  {name}: {state}"));
            last = state;
        }
        match outcome {
            crate::azure::PollOutcome::InProgress { .. } => {
                tokio::time::sleep(Duration::from_millis(300)).await
            }
            crate::azure::PollOutcome::Succeeded => return Ok(()),
            crate::azure::PollOutcome::Failed { status, .. } => anyhow::bail!("operation {status}"),
        }
    }
}

/// Part two: the daemon's passes, printed when an instance's decision changes.
async fn daemon_part(
    args: &DemoOptions,
    cfg: &Config,
    client: ArmClient,
    metrics: Arc<Metrics>,
    emulator: &Arc<RunningEmulator>,
    temp: &std::path::Path,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    say(
        emulator,
        "part 2: the daemon looks after two workspaces (office hours 08:00-19:00; a batch window 18:00-23:00)",
    );
    say(
        emulator,
        "        windows by lightsout; idleness by Azure's own idle shutdown (45 minutes), which lightsout keeps set",
    );
    let store = Store::open(&temp.join("state"))?;
    let options = DaemonOptions {
        dry_run: false,
        follow_operations: false,
    };
    let accountant = Accountant::load(&store)?;
    let mut daemon = Daemon::new(
        crate::sim::agents::without_storage(cfg.clone()),
        client,
        store,
        options,
        Arc::new(emulator.clock()),
    )?;
    let shared = Shared::new(
        metrics,
        daemon.status(),
        cfg.daemon.poll_interval,
        emulator.now(),
    );
    let book: SharedBook = Arc::new(std::sync::Mutex::new(PriceBook::new(&cfg.pricing)));
    let (seen_tx, _seen_rx) = tokio::sync::watch::channel(Default::default());
    // The instances' agents report from the emulator's agent view, in process: the demo
    // needs no storage account (a real deployment reads their heartbeat blobs).
    daemon.set_hook(Box::new(WithAgents::new(
        Exporter::new(accountant, book, shared.clone(), seen_tx),
        emulator.agents(),
    )));
    // The configured port, or any free one if it is taken (another lightsout, say).
    let listener = match http::bind(cfg.http.listen).await {
        Ok(l) => l,
        Err(_) => http::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?,
    };
    let url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(http::serve(listener, shared.clone(), stop.child_token()));
    say(
        emulator,
        &format!("        metrics at {url}/metrics, decisions at {url}/v1/status"),
    );
    let agents = emulator.agents();
    let mut scene = TmuxScene::new(emulator.fleet());
    let end = emulator.now().checked_add(
        SignedDuration::try_from(args.duration).unwrap_or(SignedDuration::from_hours(2)),
    )?;
    let mut shown: BTreeMap<String, String> = BTreeMap::new();
    let last_rows;
    loop {
        let report = daemon.pass().await;
        let views = agent_views(cfg, &report.rows, &agents);
        scene.tell(cfg, &report.rows, &views, &agents, emulator);
        for row in report.rows.iter() {
            // Print when the decision changes, not every time the idle minutes tick.
            let agent = views.get(&row.instance);
            let (key, line) = (describe(row, false, agent), describe(row, true, agent));
            if shown.get(&row.instance) != Some(&key) {
                say(
                    emulator,
                    &format!("{:<10} {:<11} {line}", row.instance, row.state),
                );
                shown.insert(row.instance.clone(), key);
            }
        }
        let wake = report.next_wake.unwrap_or(end).min(end);
        if emulator.now() >= end || stop.is_cancelled() {
            last_rows = report.rows;
            break;
        }
        while emulator.now() < wake && !stop.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    summary(&last_rows, &agent_views(cfg, &last_rows, &agents), emulator);
    let costs = shared
        .costs
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let total = |f: fn(&crate::engine::cost::Amounts) -> f64| -> f64 {
        costs.instances.values().map(|c| f(&c.totals)).sum()
    };
    println!(
        "  money ({}): spent {:.2}, avoided {:.2}, burned idle {:.2}",
        costs.currency,
        total(|a| a.accrued),
        total(|a| a.avoided),
        total(|a| a.idle)
    );
    server.abort();
    Ok(())
}

/// The agent view of every running instance in `rows` whose policy asks its agent, by
/// instance name.
fn agent_views(
    cfg: &Config,
    rows: &[PlanRow],
    agents: &EmulatorAgents,
) -> BTreeMap<String, AgentView> {
    let wanted: Vec<(String, String)> = rows
        .iter()
        .filter(|r| {
            let policy = r.policy.as_deref();
            cfg.policies
                .iter()
                .any(|p| Some(p.name.as_str()) == policy && p.signals().agent)
        })
        .filter_map(|r| {
            let ws = cfg.workspace(&r.workspace)?;
            Some((
                ws.reference.workspace.to_ascii_lowercase(),
                r.instance.to_ascii_lowercase(),
            ))
        })
        .collect();
    if wanted.is_empty() {
        return BTreeMap::new();
    }
    agents
        .views()
        .into_iter()
        .filter(|s| {
            wanted.contains(&(
                s.workspace.to_ascii_lowercase(),
                s.instance.to_ascii_lowercase(),
            ))
        })
        .map(|s| (s.instance, s.view))
        .collect()
}

/// Azure's own idle shutdown the demo's office-hours policy keeps set (`config/demo.toml`).
const NATIVE_IDLE: Duration = Duration::from_secs(45 * 60);

/// The scene of the tmux training over SSH: said once when it starts, once when Azure's
/// own idle shutdown would have stopped the instance.
struct TmuxScene {
    /// The instances whose script has SSH or GPU activity.
    instances: Vec<String>,
    introduced: bool,
    native_at: Option<jiff::Timestamp>,
    native_said: bool,
}

impl TmuxScene {
    fn new(fleet: &Fleet) -> TmuxScene {
        use azure_ml_emulator::fleet::ActivityKind;
        let instances = fleet
            .workspaces
            .iter()
            .flat_map(|w| &w.instances)
            .filter(|i| {
                i.activity
                    .iter()
                    .any(|a| matches!(a.kind, ActivityKind::Ssh | ActivityKind::GpuBusy))
            })
            .map(|i| i.name.clone())
            .collect();
        TmuxScene {
            instances,
            introduced: false,
            native_at: None,
            native_said: false,
        }
    }

    fn tell(
        &mut self,
        cfg: &Config,
        rows: &[PlanRow],
        views: &BTreeMap<String, AgentView>,
        agents: &EmulatorAgents,
        emulator: &RunningEmulator,
    ) {
        let scene = |r: &&PlanRow| self.instances.contains(&r.instance);
        for row in rows.iter().filter(scene) {
            let Some(ws) = cfg.workspace(&row.workspace) else {
                continue;
            };
            if !self.introduced && views.contains_key(&row.instance) {
                self.introduced = true;
                self.native_at = agents.native_idle_deadline(
                    &ws.reference.workspace,
                    &row.instance,
                    NATIVE_IDLE,
                );
                say(
                    emulator,
                    &format!(
                        "{}: a GPU training in tmux, started over SSH; its agent reports in process (the emulator's agent view, no storage account in the demo)",
                        row.instance
                    ),
                );
                if let Some(at) = self.native_at {
                    say(
                        emulator,
                        &format!(
                            "        Azure's own idle shutdown (45m) sees neither SSH, tmux nor the GPU: it would stop {} at {}",
                            row.instance,
                            paris(at)
                        ),
                    );
                }
            }
            if let Some(at) = self.native_at
                && !self.native_said
                && emulator.now() >= at
                && row.state != "Stopped"
            {
                self.native_said = true;
                let reasons = views
                    .get(&row.instance)
                    .map(reason_list)
                    .unwrap_or_default();
                say(
                    emulator,
                    &format!(
                        "{}: Azure's own idle shutdown would have stopped it at {}, mid-training; lightsout keeps it (agent: {reasons})",
                        row.instance,
                        paris(at)
                    ),
                );
            }
        }
    }
}

/// `HH:MM` in Paris, as the demo's lines are stamped.
fn paris(t: jiff::Timestamp) -> String {
    let zone = jiff::tz::TimeZone::get("Europe/Paris").unwrap_or(jiff::tz::TimeZone::UTC);
    t.to_zoned(zone).strftime("%H:%M").to_string()
}

/// The agent's reasons as the heartbeat names them, e.g. "terminal_input, gpu".
fn reason_list(v: &AgentView) -> String {
    let names: Vec<&str> = v
        .reasons
        .iter()
        .map(|r| crate::sim::agents::reason(*r).as_str())
        .collect();
    names.join(", ")
}

/// One phrase for a decision, as a reader would say it (with the idle time or without);
/// `agent` is what the instance's agent reports, when its policy asks it.
fn describe(row: &PlanRow, with_idle: bool, agent: Option<&AgentView>) -> String {
    let idle = row
        .idle_seconds
        .filter(|_| with_idle)
        .map(|s| format!(", idle {}", crate::engine::plan::short_duration(s)))
        .unwrap_or_default();
    if !row.native_drift.is_empty() {
        return format!(
            "Azure's own settings put in line: {}",
            row.native_drift.join(", ")
        );
    }
    match (row.decision, row.action, row.skip) {
        ("act", Some(a), _) => format!("{a} requested ({}{idle})", row.reason),
        ("skip", Some(_), Some("busy")) | ("none", _, _) if row.state == "JobRunning" => {
            "busy (a job runs): never stopped".to_owned()
        }
        ("skip", Some(_), Some("busy")) | ("none", _, _)
            if let Some(v) = agent.filter(|v| v.busy) =>
        {
            format!("busy by its agent ({}): never stopped", reason_list(v))
        }
        ("skip", Some(a), Some("held")) => {
            format!(
                "held by its owner: not stopped (would {a}: {}{idle})",
                row.reason
            )
        }
        ("skip", Some(_), Some("pending")) => "waiting for the operation".to_owned(),
        ("skip", Some(a), Some(why)) => format!("{a} held back: {why}"),
        ("wait", _, _) => "changing state: waiting".to_owned(),
        _ if row.reason == "excluded" => "opted out (lightsout = \"off\")".to_owned(),
        _ if row.stopped_by == Some("idle_shutdown") => {
            "stopped by Azure's own idle shutdown".to_owned()
        }
        _ if row.state == "Stopped" => "stopped: nothing to do".to_owned(),
        _ if row.idle_seconds.is_none() => "running: nothing due".to_owned(),
        _ => format!("in use or not idle long enough yet{idle}"),
    }
}

fn summary(rows: &[PlanRow], views: &BTreeMap<String, AgentView>, emulator: &RunningEmulator) {
    say(emulator, "done. Final decisions:");
    for row in rows {
        println!(
            "  {:<10} {:<11} {}",
            row.instance,
            row.state,
            describe(row, true, views.get(&row.instance))
        );
    }
}
