//! The agent's loop (`lightsout agent run`, the `lightsout-agent.service` unit): observe every
//! interval, and keep the heartbeat blob `{container}/{workspace}/{instance}.json` showing the
//! latest observation, the carried `last_activity` and the snooze, written with the
//! instance's managed identity.
//!
//! Three parts share one level: the observer puts each new snapshot in, the snooze socket
//! puts a new snooze in, and the writer writes whatever is latest, retrying with backoff
//! while storage fails (a new snooze cuts the wait short). Nothing queues: a heartbeat that
//! could not be written is replaced by the next. The agent never stops the instance.
//!
//! - [`publish`]: the body and the verdict of one heartbeat (pure), the retry schedule.
//! - [`state`]: the snooze and `last_activity`, kept in `state_dir` across restarts.
//! - [`socket`]: the snooze socket.

pub mod publish;
pub mod socket;
pub mod state;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::agent::collect::{Collector, ObserveOptions};
use crate::agent::snooze::{Answer, snooze_from};
use crate::azure::auth::{HttpTimeouts, build_http_client};
use crate::azure::blob::BlobClient;
use crate::azure::msi::AmlMsiCredential;
use crate::engine::activity::Snapshot;
use crate::engine::config::ConfigError;
use crate::engine::config::agent_file::{self, AgentFile};
use crate::engine::heartbeat::{METADATA_KEY, blob_name};
use publish::{Heartbeat, Identity};
use state::Kept;

/// How long a snooze request waits for the heartbeat that carries it before the agent
/// answers "saved, not yet published".
const PUBLISH_WAIT: Duration = Duration::from_secs(5);

/// `lightsout agent run --config FILE`: runs until SIGTERM or SIGINT.
pub async fn run(config: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(config).map_err(|source| ConfigError::Read {
        path: config.to_path_buf(),
        source,
    })?;
    let file = agent_file::parse(&text, config)?;
    let http = build_http_client(file.ca_file.as_deref(), HttpTimeouts::default())?;
    let credential =
        AmlMsiCredential::from_env(http.clone(), file.client_id.clone(), &|name| {
            std::env::var(name).ok()
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "MSI_ENDPOINT and MSI_SECRET are not set: the agent needs the compute instance's managed identity (the unit reads them from /etc/environment.sso)"
            )
        })?;
    let blob = BlobClient::new(
        http,
        file.account.clone(),
        &file.container,
        Arc::new(credential),
    )?;
    let listener = socket::bind(&file.snooze_socket)?;
    tracing::info!(
        workspace = %file.workspace,
        instance = %file.instance,
        account = %file.account,
        container = %file.container,
        interval_secs = file.interval.as_secs(),
        socket = %file.snooze_socket.display(),
        "lightsout agent started"
    );
    let agent = Agent::new(file, blob);
    tokio::select! {
        () = agent.observe_loop() => {}
        () = agent.write_loop() => {}
        () = agent.serve(listener) => {}
        () = shutdown_signal() => tracing::info!("lightsout agent stopping"),
    }
    Ok(())
}

/// SIGTERM (systemd) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            drop(tokio::signal::ctrl_c().await);
        }
    }
}

/// What the writer publishes: the latest snapshot and the kept state, with a generation
/// counter per change.
#[derive(Debug, Clone, Default)]
struct Latest {
    snapshot: Option<Snapshot>,
    kept: Kept,
    generation: u64,
}

struct Agent {
    file: AgentFile,
    blob: BlobClient,
    /// The persisted state; locked while it is changed and saved, so saves never interleave.
    kept: Mutex<Kept>,
    latest: watch::Sender<Latest>,
    /// The generation of the last heartbeat written.
    written: watch::Sender<u64>,
}

impl Agent {
    fn new(file: AgentFile, blob: BlobClient) -> Arc<Agent> {
        let kept = state::load(&file.state_dir).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "agent state unreadable; starting without a snooze or a last activity");
            Kept::default()
        });
        let (latest, _) = watch::channel(Latest {
            kept: kept.clone(),
            ..Latest::default()
        });
        let (written, _) = watch::channel(0);
        Arc::new(Agent {
            file,
            blob,
            kept: Mutex::new(kept),
            latest,
            written,
        })
    }

    /// Changes the kept state, saves it, and hands it to the writer; returns the generation
    /// that carries it. A failed save is returned (the snooze socket reports it) but the
    /// change is published anyway: the heartbeat is the point.
    fn change(
        &self,
        snapshot: Option<Snapshot>,
        edit: impl FnOnce(&mut Kept),
    ) -> (u64, std::io::Result<()>) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let before = kept.clone();
        edit(&mut kept);
        let saved = if *kept == before {
            Ok(())
        } else {
            state::save(&self.file.state_dir, &kept)
        };
        let mut generation = 0;
        self.latest.send_modify(|l| {
            if snapshot.is_some() {
                l.snapshot = snapshot;
            }
            l.kept = kept.clone();
            l.generation += 1;
            generation = l.generation;
        });
        (generation, saved)
    }

    /// Observes every interval (the first at once) and hands each snapshot to the writer. A
    /// failed observation publishes nothing: the heartbeat ages into "unknown", never idle.
    async fn observe_loop(self: &Arc<Self>) {
        let options = ObserveOptions {
            user: self.file.user.clone(),
            window: self.file.signals.window,
            jupyter_runtime_dir: None,
        };
        let mut collector = None;
        let mut ticker = tokio::time::interval(self.file.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            // Made on first use and again after a failure to make it (the user may not exist
            // yet while the instance is being set up).
            if collector.is_none() {
                match Collector::new(options.clone(), self.file.signals.thresholds.clone()) {
                    Ok(c) => collector = Some(c),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "cannot observe; no heartbeat this interval");
                        continue;
                    }
                }
            }
            let Some(c) = collector.as_mut() else {
                continue;
            };
            let snapshot = match c.observe().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "observation failed; no heartbeat this interval");
                    continue;
                }
            };
            let at = snapshot.at;
            let carried = snapshot.clone();
            let (_, saved) = self.change(Some(snapshot), |k| {
                if k.expire(at) {
                    tracing::info!("snooze ended");
                }
                k.last_activity = state::carry(k.last_activity, &carried);
            });
            if let Err(e) = saved {
                tracing::warn!(error = %e, dir = %self.file.state_dir.display(), "cannot save the agent state");
            }
        }
    }

    /// Writes the latest heartbeat whenever something changed; retries with backoff while
    /// storage fails, cut short when a new snooze arrives.
    async fn write_loop(self: &Arc<Self>) {
        let mut rx = self.latest.subscribe();
        let who = Identity {
            workspace: self.file.workspace.clone(),
            instance: self.file.instance.clone(),
            interval: self.file.interval,
        };
        let name = blob_name(&self.file.workspace, &self.file.instance);
        let mut failures: u32 = 0;
        let mut written_once = false;
        loop {
            let latest = rx.borrow_and_update().clone();
            let Some(snapshot) = &latest.snapshot else {
                if rx.changed().await.is_err() {
                    return;
                }
                continue;
            };
            let hb = publish::heartbeat(
                &who,
                snapshot,
                latest.kept.last_activity,
                latest.kept.snooze.as_ref(),
            );
            match self.write(&name, hb).await {
                Ok(()) => {
                    // Said once, and after a failure: the journal shows the agent works.
                    if !written_once {
                        tracing::info!(blob = %name, busy = snapshot.busy, "first heartbeat written");
                        written_once = true;
                    } else if failures > 0 {
                        tracing::info!(failures, "heartbeat written again");
                    } else {
                        tracing::debug!(busy = snapshot.busy, "heartbeat written");
                    }
                    failures = 0;
                    self.written.send_replace(latest.generation);
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let wait = publish::retry_delay(failures, rand::random::<f64>());
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, failures, retry_in_ms = wait.as_millis() as u64, "cannot write the heartbeat");
                    let snooze = latest.kept.snooze.clone();
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        // A user waits on a new snooze: try at once.
                        _ = rx.wait_for(|l| l.kept.snooze != snooze) => {}
                    }
                }
            }
        }
    }

    async fn write(&self, name: &str, hb: Heartbeat) -> Result<(), String> {
        let meta = hb.verdict.to_metadata();
        self.blob
            .put_block_blob(name, hb.body, "application/json", &[(METADATA_KEY, &meta)])
            .await
            .map_err(|e| crate::engine::text::chain(&e))
    }

    /// Answers snooze requests on the socket, one connection at a time.
    async fn serve(self: &Arc<Self>, listener: UnixListener) {
        loop {
            let mut stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "snooze socket accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let agent = Arc::clone(self);
            tokio::spawn(async move {
                let answer = agent.handle(&mut stream).await;
                if let Err(e) = socket::answer(&mut stream, &answer).await {
                    tracing::debug!(error = %e, "snooze answer not delivered");
                }
            });
        }
    }

    async fn handle(&self, stream: &mut tokio::net::UnixStream) -> Answer {
        let refused = |error: String| Answer {
            snooze: None,
            published: false,
            error: Some(error),
        };
        let (ask, by) = match socket::read_ask(stream).await {
            Ok(x) => x,
            Err(e) => return refused(format!("{e:#}")),
        };
        let snooze = match snooze_from(&ask, crate::clock::now(), Some(by.clone())) {
            Ok(s) => s,
            Err(e) => return refused(e),
        };
        let (generation, saved) = self.change(None, |k| k.snooze = snooze.clone());
        match &snooze {
            Some(s) => {
                tracing::info!(by = %by, until = %s.until, reason = s.reason.as_deref().unwrap_or(""), "snooze set")
            }
            None => tracing::info!(by = %by, "snooze off"),
        }
        if let Err(e) = saved {
            // Published but not kept: say so, an agent restart would forget it.
            tracing::warn!(error = %e, "cannot save the snooze");
        }
        let mut written = self.written.subscribe();
        let published = tokio::time::timeout(PUBLISH_WAIT, written.wait_for(|w| *w >= generation))
            .await
            .is_ok_and(|r| r.is_ok());
        Answer {
            snooze,
            published,
            error: None,
        }
    }
}
