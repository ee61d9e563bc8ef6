//! The daemon's side of the on-instance agent: reading the heartbeats of a pass, saying
//! what was ignored or unreachable, and recording the snoozes honoured in the audit log.
//! Kept apart from the reconcile loop in `daemon.rs`.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::Daemon;
use super::heartbeats;
use super::observe::{WorkspaceSnapshot, observe};
use crate::engine::audit::{Intent, snooze_detail};
use crate::engine::config::Config;
use crate::engine::heartbeat::Snooze;
use crate::engine::model::{Action, AgentActivity, InstanceKey, Reason};
use crate::engine::plan::PlanRow;

impl Daemon {
    /// Replace the heartbeat readers (tests and `simulate` bring their own).
    pub fn set_heartbeats(&mut self, heartbeats: Option<heartbeats::Heartbeats>) {
        self.heartbeats = heartbeats;
    }

    /// Observes ARM and, alongside it, lists the agents' heartbeats of every workspace a
    /// policy counting the agent may govern; then gives each governed running instance its
    /// agent's view. Without readers (they could not be built), every instance that needs
    /// the agent is unknown: never idle.
    pub(super) async fn observe_with_heartbeats(
        &self,
    ) -> (Vec<WorkspaceSnapshot>, heartbeats::AgentPass) {
        let arm = observe(&self.client, &self.cfg.workspaces, &self.policies);
        let readers = self
            .heartbeats
            .as_ref()
            .filter(|_| self.cfg.agent.is_some());
        let Some(readers) = readers else {
            let mut snapshots = arm.await;
            if self.cfg.agent.is_some() {
                for snap in snapshots.iter_mut() {
                    if let Ok(instances) = &mut snap.instances {
                        for obs in instances.iter_mut() {
                            if heartbeats::wants_agent(obs, &self.policies) {
                                obs.agent = crate::engine::model::AgentActivity::Unknown(
                                    crate::engine::model::AgentUnknown::Unreachable,
                                );
                            }
                        }
                    }
                }
            }
            return (snapshots, heartbeats::AgentPass::default());
        };
        let before = readers.request_counts();
        let (mut snapshots, prefetched) =
            tokio::join!(arm, readers.prefetch(&self.cfg.workspaces, &self.policies));
        let now = self.clock.now();
        let pass = readers
            .read(
                &mut snapshots,
                &self.cfg.workspaces,
                &self.policies,
                prefetched,
                before,
                now,
            )
            .await;
        (snapshots, pass)
    }

    /// Counts for the metrics; ignored blobs and unreachable accounts said in the log
    /// (ignored blobs once per workspace and reason, an account when its error changes).
    pub(super) fn agent_report(
        &mut self,
        agent: heartbeats::AgentPass,
        now: Timestamp,
    ) -> crate::engine::report::AgentReport {
        let mut report = crate::engine::report::AgentReport {
            lists: agent.lists,
            requests: agent.requests,
            ..Default::default()
        };
        for (alias, error) in &agent.unreachable {
            if self
                .said_ignored
                .due(&(alias.clone(), String::new()), error, now)
                .is_some()
            {
                tracing::warn!(workspace = %alias, error = %error,
                    "cannot list the agents' heartbeats; their activity is unknown this pass (never idle)");
            }
        }
        let mut examples: BTreeMap<(String, &'static str), Vec<String>> = BTreeMap::new();
        for ignored in agent.ignored {
            *report
                .ignored
                .entry((ignored.workspace.clone(), ignored.reason))
                .or_default() += 1;
            let list = examples
                .entry((ignored.workspace, ignored.reason))
                .or_default();
            if list.len() < 3 {
                list.push(crate::engine::text::display_text(&ignored.blob, 200));
            }
        }
        // Said once per workspace and reason (a fleet may have thousands); counted always.
        for ((workspace, reason), blobs) in examples {
            let count = report.ignored.get(&(workspace.clone(), reason)).copied();
            if self
                .said_ignored
                .due(&(workspace.clone(), reason.to_owned()), "", now)
                .is_some()
            {
                tracing::info!(workspace = %workspace, reason, count, examples = %blobs.join(", "),
                    "heartbeats ignored (counted in lightsout_agent_heartbeats_ignored_total; said once per workspace and reason)");
            }
        }
        report
    }

    /// What the agent's rows need after planning: a stale heartbeat's time, and each
    /// snooze in force recorded in the audit log when first seen and when it changes (one
    /// `snooze` row, not again after a restart: the instance's latest snooze row is looked
    /// at first). A snooze is not an action: recorded the same in a dry run.
    pub(super) fn agent_rows(
        &mut self,
        rows: &mut [PlanRow],
        snapshots: &[WorkspaceSnapshot],
        agent: &heartbeats::AgentPass,
        dry_run: bool,
        now: Timestamp,
    ) {
        let mut snoozes: BTreeMap<InstanceKey, &Snooze> = BTreeMap::new();
        for obs in snapshots
            .iter()
            .filter_map(|s| s.instances.as_ref().ok())
            .flatten()
        {
            if let AgentActivity::Seen(v) = &obs.agent
                && let Some(s) = &v.snooze
            {
                snoozes.insert(InstanceKey::new(&obs.workspace, &obs.name), s);
            }
        }
        for row in rows {
            let key = InstanceKey::new(&row.workspace, &row.instance);
            if let (Some(view), Some(at)) = (row.agent.as_mut(), agent.stale_at.get(&key)) {
                view.set_stale_at(*at, now);
            }
            // Only a snooze in force (the row's view drops one that has ended).
            let in_force = row.agent.as_ref().is_some_and(|a| a.snooze.is_some());
            let (true, Some(snooze)) = (in_force, snoozes.get(&key)) else {
                continue;
            };
            let policy = row.policy.clone().unwrap_or_default();
            let max_snooze = self
                .policies
                .iter()
                .find(|p| p.name == policy)
                .map_or(crate::engine::policy::DEFAULT_MAX_SNOOZE, |p| p.max_snooze);
            let detail = snooze_detail(snooze, max_snooze);
            if self.said_snooze.due(&key, &detail, now).is_none() {
                continue;
            }
            // A snooze asked on the instance is a hold nobody asked Azure for: said when
            // first seen (and when it changes), with who asked and why.
            tracing::info!(instance = %key, detail = %detail,
                "snooze from the instance seen: its stops are held until then");
            match self.store.latest_snooze(&key) {
                // Recorded before a restart.
                Ok(Some(last)) if last == detail => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %crate::engine::text::chain(&e), "cannot read the audit log");
                    self.said_snooze.clear(&key);
                    continue;
                }
            }
            let intent = Intent {
                at: now,
                workspace: key.workspace.clone(),
                instance: key.instance.clone(),
                action: Action::Snooze,
                reason: Reason::Snooze,
                policy,
                catch_up: false,
                dry_run,
                detail: Some(detail),
            };
            if let Err(e) = self.store.record_snooze(&intent) {
                tracing::error!(error = %crate::engine::text::chain(&e), "cannot record a snooze");
                // Tried again at the next pass.
                self.said_snooze.clear(&key);
            }
        }
    }
}

/// The heartbeat readers of `cfg` (see [`super::connect::heartbeats`]); a failure is logged and
/// leaves none, so the agent's view is unknown rather than missing.
pub(super) fn build_heartbeats(cfg: &Config) -> Option<heartbeats::Heartbeats> {
    match super::connect::heartbeats(cfg) {
        Ok(readers) => readers,
        Err(e) => {
            tracing::error!(error = %crate::engine::text::chain(&e),
                "cannot set up reading the agents' heartbeats; their activity is unknown (never idle)");
            None
        }
    }
}
