//! `lightsout plan`: observe every instance once, decide, print; acts on nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;

use super::validate::config_path;
use crate::azure::{ArmClient, ArmClientConfig};
use crate::cli::PlanArgs;
use crate::clock::Clock;
use crate::engine::config::Config;
use crate::engine::pass::{Observed, PassInput, plan_pass};
use crate::engine::plan::{PlanRow, next_cell, short_duration};
use crate::{clock, daemon::connect, daemon::observe, engine::config};

/// Print every instance's decision; exit 1 if a workspace could not be observed.
pub async fn plan(args: &PlanArgs) -> anyhow::Result<()> {
    let path = config_path(&args.config);
    let (cfg, _) = config::load(&path)?;
    let client = connect::arm_client(&cfg.azure, ArmClientConfig::default())?;
    let (now, rows, failed) = rows(&cfg, &client, &clock::WallClock).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", table(&rows, now));
    }
    for (alias, error) in &failed {
        eprintln!("error: workspace {alias} could not be observed: {error}");
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} workspaces could not be observed",
            failed.len(),
            cfg.workspaces.len()
        );
    }
    Ok(())
}

/// Every observed instance's row at `clock`'s instant after observing, and the workspaces
/// that could not be observed with why. Decided by [`plan_pass`] from what the daemon
/// remembers and has in flight, if it has run here: the pass a daemon starting now would
/// make, settling included, by the daemon's own function.
pub async fn rows(
    cfg: &Config,
    client: &ArmClient,
    clock: &dyn Clock,
) -> (Timestamp, Vec<PlanRow>, Vec<(String, String)>) {
    let policies = Arc::new(cfg.policies.clone());
    let mut snapshots = observe::observe(client, &cfg.workspaces, &policies).await;
    let mut stale_at = BTreeMap::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    if cfg.agent.is_some() {
        match connect::heartbeats(cfg) {
            Ok(Some(readers)) => {
                // After ARM: plan lists only the workspaces that need it.
                let read = readers
                    .read(
                        &mut snapshots,
                        &cfg.workspaces,
                        &policies,
                        Default::default(),
                        readers.request_counts(),
                        clock.now(),
                    )
                    .await;
                stale_at = read.stale_at;
                for (alias, error) in read.unreachable {
                    failed.push((alias, format!("agents' heartbeats: {error}")));
                }
            }
            Ok(None) => {}
            Err(e) => failed.push((
                "(agent)".to_owned(),
                format!("agents' heartbeats: {}", crate::engine::text::chain(&e)),
            )),
        }
    }
    let now = clock.now();
    let (memory, pending) = match crate::daemon::store::Store::open_read_only(&cfg.daemon.state_dir)
    {
        Ok(store) => (
            store.load_memory().unwrap_or_default(),
            store.pending_intents().ok(),
        ),
        Err(_) => (BTreeMap::new(), Some(Vec::new())),
    };
    let observed: Vec<Observed<'_>> = snapshots
        .iter()
        .map(|s| Observed {
            alias: &s.alias,
            instances: s.instances.as_deref().ok(),
        })
        .collect();
    let mut rows = plan_pass(&PassInput {
        cfg,
        observed: &observed,
        memory: &memory,
        pending: pending.as_deref(),
        started: now,
        now,
        dry_run: true,
    })
    .rows;
    for row in &mut rows {
        let key = crate::engine::model::InstanceKey::new(&row.workspace, &row.instance);
        if let (Some(view), Some(at)) = (row.agent.as_mut(), stale_at.get(&key)) {
            view.set_stale_at(*at, now);
        }
    }
    let unobserved: Vec<(String, String)> = snapshots
        .iter()
        .filter_map(|s| {
            s.instances
                .as_ref()
                .err()
                .map(|e| (s.alias.clone(), crate::engine::text::chain(e)))
        })
        .collect();
    // Heartbeats that could not be read are said, but do not fail the plan: the rows show
    // the agent as unreachable (never idle).
    for (alias, error) in failed {
        eprintln!("warning: workspace {alias}: {error}");
    }
    (now, rows, unobserved)
}

fn table(rows: &[PlanRow], now: jiff::Timestamp) -> String {
    let header = [
        "WORKSPACE",
        "INSTANCE",
        "STATE",
        "POLICY",
        "DECISION",
        "REASON",
        "IDLE",
        "NEXT",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let decision = match (r.decision, r.action) {
                ("act", Some(a)) => a.to_owned(),
                ("skip", Some(a)) => format!("{a} (held: {})", r.skip.unwrap_or("?")),
                (d, _) => d.to_owned(),
            };
            let reason = if r.catch_up {
                format!("{} (catch-up)", r.reason)
            } else {
                r.reason.to_owned()
            };
            [
                r.workspace.clone(),
                r.instance.clone(),
                r.state.clone(),
                r.policy.clone().unwrap_or_else(|| "-".into()),
                decision,
                reason,
                r.idle_seconds.map_or_else(|| "-".into(), short_duration),
                next_cell(r.next.as_ref(), now),
            ]
        })
        .collect();
    let table_rows: Vec<Vec<String>> = cells.into_iter().map(Vec::from).collect();
    let mut out = crate::cli::table::render(&header, &table_rows);
    // Native settings that differ from policy, below the table: one line per change.
    let drifting: Vec<&PlanRow> = rows.iter().filter(|r| !r.native_drift.is_empty()).collect();
    if !drifting.is_empty() {
        out.push_str("\nNATIVE SETTINGS DIFFERING FROM POLICY\n");
        for r in drifting {
            for d in &r.native_drift {
                out.push_str(&format!("{}/{}: {d}\n", r.workspace, r.instance));
            }
        }
    }
    // What the on-instance agents said, for the instances whose policy counts them.
    let agents: Vec<&PlanRow> = rows.iter().filter(|r| r.agent.is_some()).collect();
    if !agents.is_empty() {
        out.push_str("\nAGENT\n");
        for r in agents {
            if let Some(a) = &r.agent {
                out.push_str(&format!(
                    "{}/{}: {}\n",
                    r.workspace,
                    r.instance,
                    a.summary()
                ));
            }
        }
    }
    // Holds that cannot be read (they hold): say why, so someone fixes the tag.
    let unreadable: Vec<&PlanRow> = rows.iter().filter(|r| r.invalid_hold.is_some()).collect();
    if !unreadable.is_empty() {
        out.push_str("\nUNREADABLE HOLDS (held until fixed)\n");
        for r in unreadable {
            if let Some(why) = &r.invalid_hold {
                out.push_str(&format!("{}/{}: {why}\n", r.workspace, r.instance));
            }
        }
    }
    out
}
