//! One observation pass: list every configured workspace (one list call per page, never a
//! GET per instance) and ask the Jupyter servers of running instances whose policy counts
//! Jupyter activity.
//!
//! I/O through [`ArmClient`]. A workspace that cannot be listed is reported as such and
//! its instances are left out: nothing is decided on partial data.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::azure::convert::{instance_observation, jupyter_base};
use crate::azure::{ArmClient, AzureError};
use crate::engine::config::Workspace;
use crate::engine::model::{InstanceObservation, JupyterActivity};
use crate::engine::policy::Policy;

/// Workspaces listed at once.
pub const WORKSPACE_PARALLELISM: usize = 8;
/// Jupyter servers asked at once.
pub const JUPYTER_PARALLELISM: usize = 16;
/// How long a pass waits for Jupyter probes, from its start (at least one probe's
/// deadline after a workspace is listed): a probe not done by then counts as "activity
/// unknown" for this pass, so a few slow servers never hold up the decisions.
pub const JUPYTER_PASS_BUDGET: Duration = Duration::from_secs(15);

/// What one workspace looked like.
#[derive(Debug)]
pub struct WorkspaceSnapshot {
    /// The workspace alias.
    pub alias: String,
    /// Its compute instances, or why they could not be listed.
    pub instances: Result<Vec<InstanceObservation>, AzureError>,
}

/// `GET /api/status` of a Jupyter server.
#[derive(Debug, Deserialize)]
struct JupyterStatus {
    last_activity: Option<jiff::Timestamp>,
}

/// One entry of `GET /api/kernels`.
#[derive(Debug, Deserialize)]
struct JupyterKernel {
    execution_state: Option<String>,
    last_activity: Option<jiff::Timestamp>,
}

/// Observe every workspace; the result is in the order of `workspaces`.
pub async fn observe(
    client: &ArmClient,
    workspaces: &[Workspace],
    policies: &Arc<Vec<Policy>>,
) -> Vec<WorkspaceSnapshot> {
    let gate = Arc::new(Semaphore::new(WORKSPACE_PARALLELISM));
    let jupyter_gate = Arc::new(Semaphore::new(JUPYTER_PARALLELISM));
    let probes_until = Instant::now() + JUPYTER_PASS_BUDGET;
    let mut tasks = JoinSet::new();
    for (index, ws) in workspaces.iter().cloned().enumerate() {
        let (client, gate, jupyter_gate, policies) = (
            client.clone(),
            gate.clone(),
            jupyter_gate.clone(),
            policies.clone(),
        );
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let instances =
                observe_workspace(&client, &ws, &policies, &jupyter_gate, probes_until).await;
            (
                index,
                WorkspaceSnapshot {
                    alias: ws.name,
                    instances,
                },
            )
        });
    }
    let mut out: Vec<Option<WorkspaceSnapshot>> = workspaces.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, snap)) => {
                if let Some(slot) = out.get_mut(index) {
                    *slot = Some(snap);
                }
            }
            Err(e) => {
                tracing::error!(error = %crate::engine::text::chain(&e), "observation task failed")
            }
        }
    }
    out.into_iter().flatten().collect()
}

async fn observe_workspace(
    client: &ArmClient,
    ws: &Workspace,
    policies: &[Policy],
    jupyter_gate: &Arc<Semaphore>,
    probes_until: Instant,
) -> Result<Vec<InstanceObservation>, AzureError> {
    let resources = client.list_computes(&ws.reference).await?;
    let mut instances = Vec::with_capacity(resources.len());
    let mut probes = JoinSet::new();
    for r in &resources {
        let Some(mut obs) = instance_observation(&ws.name, r) else {
            continue;
        };
        let wants_jupyter = obs.state.is_running()
            && crate::engine::policy::select(policies, &obs.workspace, &obs.name, &obs.tags)
                .is_some_and(|p| p.signals().jupyter);
        if wants_jupyter {
            // Unknown until a probe answers in time.
            obs.jupyter = JupyterActivity::Unavailable;
            let index = instances.len();
            let (client, gate, base) = (client.clone(), jupyter_gate.clone(), jupyter_base(r));
            probes.spawn(async move {
                let _permit = gate.acquire_owned().await;
                (index, probe_jupyter(&client, base).await)
            });
        }
        instances.push(obs);
    }
    // Each workspace gets at least one probe's deadline after its listing.
    let until = probes_until.max(Instant::now() + crate::azure::jupyter::PROBE_TIMEOUT);
    loop {
        match tokio::time::timeout_at(until, probes.join_next()).await {
            Ok(Some(Ok((index, activity)))) => {
                if let Some(obs) = instances.get_mut(index) {
                    obs.jupyter = activity;
                }
            }
            Ok(Some(Err(_))) => {}
            Ok(None) => break,
            Err(_) => {
                tracing::debug!(workspace = %ws.name, left = probes.len(),
                    "Jupyter probes not done within the pass budget; activity unknown this pass");
                probes.abort_all();
                break;
            }
        }
    }
    Ok(instances)
}

/// Ask a Jupyter server for its activity; any failure means "unavailable" for this pass.
async fn probe_jupyter(client: &ArmClient, base: Option<url::Url>) -> JupyterActivity {
    let Some(base) = base else {
        return JupyterActivity::Unavailable;
    };
    let probe = tokio::time::timeout(
        crate::azure::jupyter::PROBE_TIMEOUT,
        probe_jupyter_once(client, &base),
    );
    match probe.await.unwrap_or_else(|_| {
        Err(AzureError::Timeout {
            operation: "jupyter",
            after: crate::azure::jupyter::PROBE_TIMEOUT,
            last_seen: None,
        })
    }) {
        Ok(activity) => activity,
        Err(e) => {
            if probe_log_due(&base, crate::clock::now()) {
                tracing::debug!(error = %crate::engine::text::chain(&e), status = ?e.status(), url = %base,
                    "Jupyter server did not answer (said once an hour per instance)");
            }
            JupyterActivity::Unavailable
        }
    }
}

/// Ask the Jupyter Server API under `base` for its kernels and last activity; the error
/// says why it could not be read (`lightsout doctor` shows it per instance).
pub async fn probe_jupyter_once(
    client: &ArmClient,
    base: &url::Url,
) -> Result<JupyterActivity, AzureError> {
    // `no_track_activity` keeps our own polling from counting as use (jupyter_server).
    let url = |path: &str| {
        base.join(path).map_err(|e| AzureError::Protocol {
            operation: "jupyter",
            reason: format!("bad Jupyter URL: {e}"),
        })
    };
    let status = client
        .jupyter_get::<JupyterStatus>(&url("api/status?no_track_activity=1")?)
        .await?;
    let kernels = client
        .jupyter_get::<Vec<JupyterKernel>>(&url("api/kernels?no_track_activity=1")?)
        .await?;
    let kernel_busy = kernels
        .iter()
        .any(|k| k.execution_state.as_deref() == Some("busy"));
    let last_activity = kernels
        .iter()
        .filter_map(|k| k.last_activity)
        .chain(status.last_activity)
        .max();
    Ok(JupyterActivity::Seen {
        last_activity,
        kernel_busy,
    })
}

/// How often a failing probe of one instance is logged. On real Azure a refusal (403) is
/// the normal answer wherever the daemon's identity may not open the instance's
/// applications; saying so every pass would bury everything else.
pub const PROBE_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whether a failed probe of `base` should be logged now (at most once per
/// [`PROBE_LOG_EVERY`] per instance); remembers that it was.
fn probe_log_due(base: &url::Url, now: jiff::Timestamp) -> bool {
    static LAST: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<String, jiff::Timestamp>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let every = jiff::SignedDuration::try_from(PROBE_LOG_EVERY).unwrap_or_default();
    match last.get(base.as_str()) {
        Some(at) if now.duration_since(*at) < every => false,
        _ => {
            last.insert(base.as_str().to_owned(), now);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_probe_is_logged_once_an_hour_per_instance() {
        let a = url::Url::parse("https://a.example/instances/ws/ci-a/").unwrap();
        let b = url::Url::parse("https://a.example/instances/ws/ci-b/").unwrap();
        let t: jiff::Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        assert!(probe_log_due(&a, t));
        assert!(!probe_log_due(&a, t + jiff::SignedDuration::from_mins(59)));
        assert!(probe_log_due(&b, t + jiff::SignedDuration::from_mins(59)));
        assert!(probe_log_due(&a, t + jiff::SignedDuration::from_mins(61)));
    }
}
