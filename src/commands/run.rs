//! `lightsout run`: the daemon, with signals (drain, reload), systemd notifications and
//! `--once` / `--dry-run`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::validate::config_path;
use crate::azure::{ArmClient, ArmClientConfig};
use crate::cli::RunArgs;
use crate::clock::WallClock;
use crate::config::{self, Config};
use crate::daemon::{Daemon, DaemonOptions, PassReport};
use crate::store::Store;
use crate::systemd::Notifier;
use crate::{connect, shutdown};

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
    let client = connect::arm_client(&cfg.azure, ArmClientConfig::default())?;
    let store = Store::open(&cfg.daemon.state_dir).with_context(|| {
        format!(
            "cannot open the state in {}",
            cfg.daemon.state_dir.display()
        )
    })?;
    let options = DaemonOptions {
        dry_run: args.dry_run,
        follow_operations: true,
    };
    let mut daemon = Daemon::new(cfg, client, store, options, Arc::new(WallClock))?;
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
    let notifier = Notifier::from_env();
    let (reload_tx, mut reload_rx) = mpsc::channel::<(Config, Option<ArmClient>)>(1);
    spawn_reloader(
        path.clone(),
        daemon.config().azure.clone(),
        reload_tx,
        notifier.clone(),
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
                    tracing::error!(error = %e, "new configuration rejected; keeping the running one")
                }
                Ok(cfg) => {
                    let client = if cfg.azure == azure {
                        None
                    } else {
                        match connect::arm_client(&cfg.azure, ArmClientConfig::default()) {
                            Ok(c) => Some(c),
                            Err(e) => {
                                tracing::error!(error = %format!("{e:#}"), "new [azure] settings rejected; keeping the running configuration");
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
    status: Arc<crate::daemon::Status>,
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
