//! The on-instance agents' heartbeats, read for a pass: per workspace with a running instance
//! whose policy counts the agent, ONE List Blobs of `{workspace}/` (the client follows
//! `NextMarker`, 5,000 blobs a page), never a GET per instance; each governed running
//! instance gets what its heartbeat says ([`AgentActivity`]).
//!
//! Silence is never idleness: no blob, a stale one or a rejected one is `Unknown`, and a
//! storage account that does not answer makes every instance of the workspace `Unknown`.
//! Blobs that are ignored (rejected, or for an instance the daemon does not govern) are
//! counted per workspace and reason, and said once per blob and reason.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::task::JoinSet;

use crate::azure::blob::{BlobClient, ListedBlob};
use crate::daemon::observe::WorkspaceSnapshot;
use crate::engine::config::Workspace;
use crate::engine::config::validate::AgentSettings;
use crate::engine::heartbeat::{self, Listed, METADATA_KEY};
use crate::engine::model::{AgentActivity, AgentUnknown, InstanceKey, InstanceObservation};
use crate::engine::policy::Policy;

/// Storage accounts listed at once.
pub const LIST_PARALLELISM: usize = 8;
/// How long one workspace's listing may take before its instances count as unreachable
/// this pass (10,000 heartbeats are two pages).
pub const LIST_BUDGET: Duration = Duration::from_secs(20);

/// The label of a blob for an instance the daemon does not govern.
pub const NOT_GOVERNED: &str = "not_governed";

/// The heartbeat readers: the agent settings and one client per distinct storage account.
#[derive(Clone)]
pub struct Heartbeats {
    settings: AgentSettings,
    /// Keyed by the account's blob endpoint.
    clients: BTreeMap<String, BlobClient>,
}

/// One heartbeat blob ignored this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredBlob {
    /// The workspace alias.
    pub workspace: String,
    /// The blob's name (bounded for logs by the caller).
    pub blob: String,
    /// A [`heartbeat::Rejected`] label or [`NOT_GOVERNED`].
    pub reason: &'static str,
}

/// What reading the heartbeats did this pass, for metrics and logs.
#[derive(Debug, Clone, Default)]
pub struct AgentPass {
    pub ignored: Vec<IgnoredBlob>,
    /// List Blobs operations per workspace alias and outcome (`ok`, `error`, `timeout`).
    pub lists: Vec<(String, &'static str)>,
    /// When each stale heartbeat was written (the decision only knows "stale").
    pub stale_at: BTreeMap<InstanceKey, Timestamp>,
    /// Why a workspace's storage account could not be listed, by alias.
    pub unreachable: Vec<(String, String)>,
    /// HTTP requests sent to each storage account this pass (pages of List Blobs), by the
    /// account's host.
    pub requests: BTreeMap<String, u64>,
}

/// One workspace's List Blobs, or the deadline it missed.
pub type Listing =
    Result<Result<Vec<ListedBlob>, crate::azure::blob::BlobError>, tokio::time::error::Elapsed>;

/// Listings made at the start of a pass ([`Heartbeats::prefetch`]), by workspace alias.
#[derive(Debug, Default)]
pub struct Prefetched {
    listings: BTreeMap<String, Listing>,
}

impl Heartbeats {
    /// Every account's request count now, to count what a pass sends (see [`AgentPass`]).
    pub fn request_counts(&self) -> Vec<(String, u64)> {
        self.clients
            .values()
            .map(|c| (account_host(c), c.requests()))
            .collect()
    }

    /// Readers for `settings`: `clients` maps each account's blob endpoint to its client.
    pub fn new(settings: AgentSettings, clients: BTreeMap<String, BlobClient>) -> Heartbeats {
        Heartbeats { settings, clients }
    }

    /// The settings in force.
    pub fn settings(&self) -> &AgentSettings {
        &self.settings
    }

    /// The client of a workspace's heartbeat account.
    pub fn client_for(&self, ws: &Workspace) -> Option<&BlobClient> {
        self.clients.get(ws.agent_account.as_ref()?.as_str())
    }

    /// Lists, at the start of a pass and alongside ARM, every workspace a policy counting
    /// the agent may govern: the heartbeats do not wait for the ARM listing (at 10,000
    /// instances the two take about as long), and [`Heartbeats::read`] takes them from here.
    /// A workspace whose instances turn out not to need them was listed for nothing: one
    /// List Blobs call, cheaper than a second round trip after ARM.
    pub async fn prefetch(&self, workspaces: &[Workspace], policies: &[Policy]) -> Prefetched {
        let gate = Arc::new(tokio::sync::Semaphore::new(LIST_PARALLELISM));
        let mut tasks = JoinSet::new();
        for ws in workspaces {
            let counts_agent = policies.iter().any(|p| {
                p.signals().agent
                    && p.workspaces
                        .as_ref()
                        .is_none_or(|names| names.iter().any(|n| n == &ws.name))
            });
            let Some(client) = self.client_for(ws).filter(|_| counts_agent).cloned() else {
                continue;
            };
            let (alias, prefix) = (
                ws.name.clone(),
                heartbeat::workspace_prefix(&ws.reference.workspace),
            );
            let gate = gate.clone();
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let listed = tokio::time::timeout(LIST_BUDGET, client.list(&prefix)).await;
                (alias, listed)
            });
        }
        let mut out = Prefetched::default();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((alias, listed)) = joined {
                out.listings.insert(alias, listed);
            }
        }
        out
    }

    /// Fill in the agent's view of every governed running instance of `snapshots` (in the
    /// order of `workspaces`), from `prefetched` or, for a workspace not in it, listing it
    /// once now.
    pub async fn read(
        &self,
        snapshots: &mut [WorkspaceSnapshot],
        workspaces: &[Workspace],
        policies: &[Policy],
        mut prefetched: Prefetched,
        before: Vec<(String, u64)>,
        now: Timestamp,
    ) -> AgentPass {
        let mut pass = AgentPass::default();
        let gate = Arc::new(tokio::sync::Semaphore::new(LIST_PARALLELISM));
        let mut tasks = JoinSet::new();
        let mut ready = Vec::new();
        for (index, snap) in snapshots.iter_mut().enumerate() {
            let Ok(instances) = &mut snap.instances else {
                continue;
            };
            let wants: Vec<bool> = instances.iter().map(|o| wants_agent(o, policies)).collect();
            if !wants.contains(&true) {
                continue;
            }
            let ws = workspaces.iter().find(|w| w.name == snap.alias);
            let Some((ws, client)) = ws.and_then(|w| Some((w, self.client_for(w)?.clone()))) else {
                // No account for this workspace (cannot happen with a validated config).
                mark(instances, &wants, AgentUnknown::Unreachable);
                continue;
            };
            let prefix = heartbeat::workspace_prefix(&ws.reference.workspace);
            if let Some(listed) = prefetched.listings.remove(&snap.alias) {
                ready.push((index, prefix, wants, listed));
                continue;
            }
            let gate = gate.clone();
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let listed = tokio::time::timeout(LIST_BUDGET, client.list(&prefix)).await;
                (index, prefix, wants, listed)
            });
        }
        let mut late = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(one) = joined {
                late.push(one);
            }
        }
        for (index, prefix, wants, listed) in ready.into_iter().chain(late) {
            let Some(snap) = snapshots.get_mut(index) else {
                continue;
            };
            let alias = snap.alias.clone();
            let Ok(instances) = &mut snap.instances else {
                continue;
            };
            match listed {
                Ok(Ok(blobs)) => {
                    pass.lists.push((alias.clone(), "ok"));
                    let known: Vec<bool> = instances
                        .iter()
                        .map(|o| {
                            !o.excluded()
                                && crate::engine::policy::select(
                                    policies,
                                    &o.workspace,
                                    &o.name,
                                    &o.tags,
                                )
                                .is_some()
                        })
                        .collect();
                    let found = assign(
                        &blobs,
                        &prefix,
                        instances,
                        &wants,
                        &known,
                        self.settings.staleness,
                        now,
                    );
                    pass.stale_at.extend(found.stale_at);
                    pass.ignored
                        .extend(found.ignored.into_iter().map(|(blob, reason)| IgnoredBlob {
                            workspace: alias.clone(),
                            blob,
                            reason,
                        }));
                }
                Ok(Err(e)) => {
                    pass.lists.push((alias.clone(), "error"));
                    pass.unreachable
                        .push((alias, crate::engine::text::chain(&e)));
                    mark(instances, &wants, AgentUnknown::Unreachable);
                }
                Err(_) => {
                    pass.lists.push((alias.clone(), "timeout"));
                    pass.unreachable.push((
                        alias,
                        format!(
                            "List Blobs did not finish within {}s",
                            LIST_BUDGET.as_secs()
                        ),
                    ));
                    mark(instances, &wants, AgentUnknown::Unreachable);
                }
            }
        }
        for ((host, then), client) in before.into_iter().zip(self.clients.values()) {
            let sent = client.requests().saturating_sub(then);
            if sent > 0 {
                *pass.requests.entry(host).or_default() += sent;
            }
        }
        pass
    }
}

/// The host (and port) of a client's account: the `account` label of the storage metrics.
fn account_host(client: &BlobClient) -> String {
    let url = client.container_url();
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => String::new(),
    }
}

/// Whether the daemon asks the agent about this instance: running, not excluded, and its
/// policy counts the agent.
pub fn wants_agent(obs: &InstanceObservation, policies: &[Policy]) -> bool {
    obs.state.is_running()
        && !obs.excluded()
        && crate::engine::policy::select(policies, &obs.workspace, &obs.name, &obs.tags)
            .is_some_and(|p| p.signals().agent)
}

fn mark(instances: &mut [InstanceObservation], wants: &[bool], why: AgentUnknown) {
    for (obs, _) in instances.iter_mut().zip(wants).filter(|(_, w)| **w) {
        obs.agent = AgentActivity::Unknown(why);
    }
}

/// What [`assign`] found besides the instances' activity.
#[derive(Debug, Default)]
pub struct Assigned {
    /// Ignored blobs: name and reason.
    pub ignored: Vec<(String, &'static str)>,
    /// When each stale heartbeat was written.
    pub stale_at: BTreeMap<InstanceKey, Timestamp>,
}

/// Map one workspace's listing (`prefix` = `{workspace}/`) onto its instances. Pure.
///
/// `wants[i]`: instance `i` is asked (running, its policy counts the agent); it gets
/// `Seen`, or `Unknown(Missing | Stale | Rejected)`. `known[i]`: instance `i` is governed
/// by some policy; a blob for an instance neither listed nor governed is ignored as
/// [`NOT_GOVERNED`], one for a governed instance that is not asked (stopped, another
/// policy) is skipped silently. Rejected blobs are ignored with their reason.
pub fn assign(
    blobs: &[ListedBlob],
    prefix: &str,
    instances: &mut [InstanceObservation],
    wants: &[bool],
    known: &[bool],
    staleness: Duration,
    now: Timestamp,
) -> Assigned {
    let mut out = Assigned::default();
    let index: HashMap<&str, usize> = instances
        .iter()
        .enumerate()
        .map(|(i, o)| (o.name.as_str(), i))
        .collect();
    let mut verdicts: Vec<Option<Result<heartbeat::Verdict, heartbeat::Rejected>>> =
        vec![None; instances.len()];
    for blob in blobs {
        let listed = Listed {
            name: &blob.name,
            size: blob.size,
            verdict: blob.metadata.get(METADATA_KEY).map(String::as_str),
        };
        let read = heartbeat::read(listed, prefix, now);
        let name = blob
            .name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(".json"));
        let slot = name.and_then(|n| index.get(n).copied());
        let governed = slot.is_some_and(|i| known.get(i).copied().unwrap_or(false));
        match (&read, slot) {
            (Err(r), _) => out.ignored.push((blob.name.clone(), r.as_str())),
            (Ok(_), _) if !governed => out.ignored.push((blob.name.clone(), NOT_GOVERNED)),
            (Ok(_), _) => {}
        }
        if let Some(i) = slot
            && wants.get(i).copied().unwrap_or(false)
        {
            verdicts[i] = Some(read);
        }
    }
    for (i, obs) in instances.iter_mut().enumerate() {
        if !wants.get(i).copied().unwrap_or(false) {
            continue;
        }
        obs.agent = match verdicts[i].take() {
            None => AgentActivity::Unknown(AgentUnknown::Missing),
            Some(Err(_)) => AgentActivity::Unknown(AgentUnknown::Rejected),
            Some(Ok(v)) if is_stale(&v, staleness, now) => {
                out.stale_at
                    .insert(InstanceKey::new(&obs.workspace, &obs.name), v.at);
                AgentActivity::Unknown(AgentUnknown::Stale)
            }
            Some(Ok(v)) => AgentActivity::Seen(v),
        };
    }
    out
}

/// Older than three of its intervals, or than the configured staleness if longer.
pub fn is_stale(v: &heartbeat::Verdict, staleness: Duration, now: Timestamp) -> bool {
    let limit = jiff::SignedDuration::try_from(v.stale_after(staleness))
        .unwrap_or(jiff::SignedDuration::MAX);
    now.duration_since(v.at) > limit
}

#[cfg(test)]
mod tests;
