//! `lightsout run`: the daemon, with signals (drain, reload), systemd notifications,
//! `--once` / `--dry-run`, and (except with `--once`) the HTTP server for metrics, health
//! and status. Cost accounting runs after every pass, `--once` included.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::validate::config_path;
use crate::azure::{ArmClient, ArmClientConfig, HttpTimeouts, build_http_client};
use crate::cli::RunArgs;
use crate::clock::WallClock;
use crate::daemon::accountant::Accountant;
use crate::daemon::exporter::{Exporter, Shared};
use crate::daemon::metrics::Metrics;
use crate::daemon::price_fetch::{self, SharedBook};
use crate::daemon::store::Store;
use crate::daemon::systemd::Notifier;
use crate::daemon::{Daemon, DaemonOptions};
use crate::engine::config::PriceSource;
use crate::engine::config::{self, Config};
use crate::engine::pricing::PriceBook;
use crate::engine::report::PassReport;
use crate::{daemon::connect, daemon::http, daemon::shutdown};

/// How long the HTTP server may take to finish its requests after the daemon stopped.
const HTTP_GRACE: Duration = Duration::from_secs(5);

/// The ARM client settings, with request metrics.
fn client_config(metrics: &Arc<Metrics>) -> ArmClientConfig {
    let m = metrics.clone();
    ArmClientConfig {
        on_request: Some(Arc::new(move |e| m.arm_request(e))),
        ..ArmClientConfig::default()
    }
}

/// Load the config, logging its warnings.
fn load(path: &Path) -> Result<Config, config::ConfigError> {
    let (cfg, warnings) = config::load(path)?;
    for w in &warnings {
        tracing::warn!(warning = %w.render(path), "config warning");
    }
    Ok(cfg)
}

/// Run the daemon until SIGTERM/SIGINT (or for one pass with `--once`).
pub async fn run(args: &RunArgs) -> anyhow::Result<()> {
    let path = config_path(&args.config);
    let cfg = load(&path)?;
    let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION"))?);
    let client = connect::arm_client(&cfg.azure, client_config(&metrics))?;
    let store = Store::open(&cfg.daemon.state_dir).with_context(|| {
        format!(
            "cannot open the state in {}",
            cfg.daemon.state_dir.display()
        )
    })?;
    let accountant = Accountant::load(&store).context("cannot read the cost accounting state")?;
    let mut book = PriceBook::new(&cfg.pricing);
    if cfg.pricing.source == PriceSource::RetailApi {
        price_fetch::load_cache(&mut book, &cfg.daemon.state_dir);
    }
    let book: SharedBook = Arc::new(Mutex::new(book));
    let prices_http = build_http_client(cfg.azure.ca_file.as_deref(), HttpTimeouts::default())
        .context("cannot build the HTTP client for prices")?;
    let state_dir = cfg.daemon.state_dir.clone();
    let listen = cfg.http.listen;
    let poll = cfg.daemon.poll_interval;
    let options = DaemonOptions {
        dry_run: args.dry_run,
        follow_operations: true,
    };
    let mut daemon = Daemon::new(cfg, client, store, options, Arc::new(WallClock))?;
    let shared = Shared::new(metrics.clone(), daemon.status(), poll, crate::clock::now());
    let (seen_tx, seen_rx) = tokio::sync::watch::channel(BTreeSet::new());
    daemon.set_hook(Box::new(Exporter::new(
        accountant,
        book.clone(),
        shared.clone(),
        seen_tx,
    )));
    tracing::info!(
        config = %path.display(),
        workspaces = daemon.config().workspaces.len(),
        policies = daemon.config().policies.len(),
        dry_run = options.dry_run || daemon.config().daemon.dry_run,
        "lightsout started"
    );

    if args.once {
        let report = daemon.pass().await;
        daemon.drain().await;
        summarize(&report);
        // Fill the price cache for the next run (this one priced from the cache).
        let pairs = seen_rx.borrow().clone();
        let never = tokio_util::sync::CancellationToken::new();
        price_fetch::refresh_round(&book, &prices_http, &state_dir, &pairs, &metrics, &never).await;
        if !report.failed_workspaces.is_empty() {
            anyhow::bail!(
                "{} workspaces could not be observed: {}",
                report.failed_workspaces.len(),
                report.failed_workspaces.join(", ")
            );
        }
        return Ok(());
    }

    let token = shutdown::install();
    let listener = http::bind(listen).await?;
    tracing::info!(listen = %listen, "serving /metrics, /healthz, /readyz and /v1/status");
    let server = tokio::spawn(http::serve(listener, shared, token.clone()));
    let refresher = price_fetch::spawn_refresher(
        book,
        prices_http,
        state_dir,
        seen_rx,
        metrics.clone(),
        token.clone(),
    );
    let notifier = Notifier::from_env();
    let (reload_tx, mut reload_rx) = mpsc::channel::<(Config, Option<ArmClient>)>(1);
    spawn_reloader(
        path.clone(),
        daemon.config().azure.clone(),
        reload_tx,
        notifier.clone(),
        metrics.clone(),
    );
    if let Some(every) = notifier.watchdog_interval() {
        spawn_watchdog(
            notifier.clone(),
            daemon.status(),
            daemon.config().daemon.poll_interval,
            every,
        );
    }
    let mut first = true;
    daemon
        .run(token, &mut reload_rx, |report| {
            summarize(report);
            if first {
                notifier.ready();
                first = false;
            }
            notifier.status(&format!(
                "{} instances, {} actions in the last pass",
                report.rows.len(),
                report.actions.len()
            ));
        })
        .await;
    notifier.stopping();
    refresher.abort();
    match tokio::time::timeout(HTTP_GRACE, server).await {
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %crate::engine::text::chain(&e), "HTTP server ended with an error")
        }
        Ok(_) => {}
        Err(_) => tracing::warn!("HTTP server did not stop in time"),
    }
    Ok(())
}

fn summarize(report: &PassReport) {
    tracing::info!(
        instances = report.rows.len(),
        actions = report.actions.len(),
        failed_workspaces = report.failed_workspaces.len(),
        next_pass = %report.next_wake.map(|t| t.to_string()).unwrap_or_default(),
        "pass done"
    );
}

/// SIGHUP: load the config again; a bad one is reported and the running one kept.
fn spawn_reloader(
    path: std::path::PathBuf,
    mut azure: config::AzureSettings,
    tx: mpsc::Sender<(Config, Option<ArmClient>)>,
    notifier: Notifier,
    metrics: Arc<Metrics>,
) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload disabled");
            return;
        };
        while hup.recv().await.is_some() {
            notifier.reloading();
            match load(&path) {
                Err(e) => {
                    tracing::error!(error = %crate::engine::text::chain(&e), "new configuration rejected; keeping the running one")
                }
                Ok(cfg) => {
                    let client = if cfg.azure == azure {
                        None
                    } else {
                        match connect::arm_client(&cfg.azure, client_config(&metrics)) {
                            Ok(c) => Some(c),
                            Err(e) => {
                                tracing::error!(error = %crate::engine::text::chain(&e), "new [azure] settings rejected; keeping the running configuration");
                                notifier.ready();
                                continue;
                            }
                        }
                    };
                    azure = cfg.azure.clone();
                    if tx.send((cfg, client)).await.is_err() {
                        return;
                    }
                }
            }
            notifier.ready();
        }
    });
}

/// Ping systemd's watchdog while passes keep happening (not stuck).
fn spawn_watchdog(
    notifier: Notifier,
    status: Arc<crate::engine::report::Status>,
    poll: std::time::Duration,
    every: std::time::Duration,
) {
    tokio::spawn(async move {
        let stale = jiff::SignedDuration::try_from(poll * 3).unwrap_or(jiff::SignedDuration::MAX);
        loop {
            tokio::time::sleep(every).await;
            let (last, _, _) = status.snapshot();
            let fresh = last.is_none_or(|t| crate::clock::now().duration_since(t) < stale);
            if fresh {
                notifier.watchdog();
            }
        }
    });
}
