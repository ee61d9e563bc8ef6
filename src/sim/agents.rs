//! The on-instance agents of emulated instances, in process: in `simulate` and the demo,
//! what each instance's agent would report comes from the emulator's agent view
//! (`azure_ml_emulator::agent`), not from heartbeat blobs, so no storage account is needed.
//!
//! [`WithAgents`] wraps the run's own hook (accounting, metrics) and fills `obs.agent`
//! between observing and deciding ([`PassHook::observed`]), exactly where the daemon puts
//! what it reads from heartbeats: for every running instance whose policy uses the agent
//! signal, a fresh verdict, or "missing" when the emulated instance has no agent running.

use std::collections::BTreeMap;

use azure_ml_emulator::EmulatorAgents;
use azure_ml_emulator::agent::{AgentReason, AgentView};
use jiff::Timestamp;

use crate::daemon::hook::PassHook;
use crate::daemon::observe::WorkspaceSnapshot;
use crate::daemon::store::Store;
use crate::engine::config::Config;
use crate::engine::heartbeat::{BusyReason, VERDICT_VERSION, Verdict};
use crate::engine::model::{AgentActivity, AgentUnknown};
use crate::engine::report::PassReport;

/// The interval the simulated agents claim: their verdicts are made at each pass's `now`,
/// so they are never stale.
pub const AGENT_INTERVAL_SECS: u64 = 60;

/// A run's hook, plus the emulated agents' verdicts put into every pass's observations.
pub struct WithAgents<H> {
    inner: H,
    agents: EmulatorAgents,
}

impl<H: PassHook> WithAgents<H> {
    /// `inner` keeps seeing every pass; the verdicts come from `agents`.
    pub fn new(inner: H, agents: EmulatorAgents) -> WithAgents<H> {
        WithAgents { inner, agents }
    }
}

impl<H: PassHook> PassHook for WithAgents<H> {
    fn after_pass(&mut self, cfg: &Config, report: &PassReport, store: &mut Store) {
        self.inner.after_pass(cfg, report, store);
    }

    fn observed(&mut self, cfg: &Config, snapshots: &mut [WorkspaceSnapshot], now: Timestamp) {
        self.inner.observed(cfg, snapshots, now);
        // One look at the emulator per pass, and only when some policy asks the agent.
        if !cfg.policies.iter().any(|p| p.signals().agent) {
            return;
        }
        let views: BTreeMap<(String, String), AgentView> = self
            .agents
            .views()
            .into_iter()
            .map(|s| {
                (
                    (
                        s.workspace.to_ascii_lowercase(),
                        s.instance.to_ascii_lowercase(),
                    ),
                    s.view,
                )
            })
            .collect();
        fill(cfg, snapshots, &views, now);
    }
}

/// The config the daemon runs with in process: without `[agent]`, so that it builds no
/// heartbeat readers and never contacts the storage account the file names. The policies
/// keep the agent signal the file gave them (resolved when it was read); [`WithAgents`]
/// supplies the verdicts.
pub fn without_storage(mut cfg: Config) -> Config {
    cfg.agent = None;
    cfg
}

/// Put each governed running instance's verdict into its observation. `views` is keyed
/// by the lowercase Azure workspace and instance names (ARM names ignore case).
pub fn fill(
    cfg: &Config,
    snapshots: &mut [WorkspaceSnapshot],
    views: &BTreeMap<(String, String), AgentView>,
    now: Timestamp,
) {
    for snap in snapshots.iter_mut() {
        let Some(ws) = cfg.workspace(&snap.alias) else {
            continue;
        };
        let azure_name = ws.reference.workspace.to_ascii_lowercase();
        let Ok(instances) = &mut snap.instances else {
            continue;
        };
        for obs in instances.iter_mut() {
            if !crate::daemon::heartbeats::wants_agent(obs, &cfg.policies) {
                continue;
            }
            let key = (azure_name.clone(), obs.name.to_ascii_lowercase());
            obs.agent = match views.get(&key) {
                Some(view) => AgentActivity::Seen(verdict(&obs.name, view, now)),
                // Running on ARM's word but not (yet) in the emulator: no heartbeat so far.
                None => AgentActivity::Unknown(AgentUnknown::Missing),
            };
        }
    }
}

/// The verdict a fresh heartbeat would carry for `view`.
pub fn verdict(instance: &str, view: &AgentView, now: Timestamp) -> Verdict {
    Verdict {
        v: VERDICT_VERSION,
        instance: instance.to_owned(),
        at: now,
        busy: view.busy,
        reasons: view.reasons.iter().map(|r| reason(*r)).collect(),
        last_activity: view.last_activity,
        interval_secs: AGENT_INTERVAL_SECS,
        snooze: None,
    }
}

/// The heartbeat's name for an emulated agent's reason.
pub fn reason(r: AgentReason) -> BusyReason {
    match r {
        AgentReason::KernelBusy => BusyReason::KernelBusy,
        AgentReason::TerminalInput => BusyReason::TerminalInput,
        AgentReason::Gpu => BusyReason::Gpu,
        AgentReason::Vscode => BusyReason::Vscode,
        AgentReason::Job => BusyReason::Job,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_emulated_reason_has_the_heartbeat_name() {
        for r in [
            AgentReason::KernelBusy,
            AgentReason::TerminalInput,
            AgentReason::Gpu,
            AgentReason::Vscode,
            AgentReason::Job,
        ] {
            assert_eq!(reason(r).as_str(), r.name());
        }
    }
}
