//! Local emulator of the Azure endpoints lightsout uses.
//!
//! One listener (HTTPS with a generated CA, or plain HTTP) serves, as Azure does:
//! ARM for `Microsoft.MachineLearningServices` computes ([`arm`]), Entra ID tokens and
//! managed identity ([`auth`]), each instance's Jupyter Server API ([`jupyter`]), the Retail
//! Prices API ([`prices`]) and a control API for tests under `/_emulator/` ([`control`]).
//! What it serves comes from a [`Fleet`] file. Instance life cycles are pure functions of
//! the emulator clock ([`machine`]), which follows the wall clock or, in virtual time, moves
//! only when the control API advances it.
//!
//! Choices a client should know about. By default the emulator imitates real Azure as
//! recorded in `tests/fixtures/azure/recorded/` (the recordings win over the REST spec;
//! `tests/it/conformance.rs` compares the shapes); each point names its evidence or says it
//! is an assumption:
//! - Long-running operations (PUT create 201, `start`/`stop`/`restart`/DELETE 202) answer
//!   with **only** `Azure-AsyncOperation`: no `Location`, no `Retry-After`
//!   (py-ml-stop-2024-12-signed-ao, py-ml-stop-start-2022-10, cli-ml-ci-with-schedules-2023-01).
//!   Its value is a signed URL of about 3.2 KB, `…/locations/{loc}/computeOperationsStatus/{id}
//!   ?api-version={v}&service=new&t=…&c=…&s=…&h=…` (real-ao-url-signed-2024-12.txt; see
//!   [`opurl`]). A poll must send it back verbatim; an altered one gets 400
//!   `InvalidAsyncOperationSignature` (assumption: ARM's real answer is not public). Polls
//!   answer `{"status":"InProgress"}` then `{"status":"Succeeded","percentComplete":100.0}`,
//!   without `Retry-After`, so clients poll at their own pace (the Python SDK's 30 s in the
//!   recordings). A failed operation's body, `{"status":"Failed","error":{…}}`, is an
//!   assumption (none recorded).
//! - `start`/`stop`/`restart` at api-versions before 2021-01-01 answer 200 (the 2020-08-01
//!   SDK accepts only 200 there); the operation takes its time either way.
//! - Operation times are real Azure's magnitude unless the fleet's `[timing]` says otherwise:
//!   create 3 min, start 2 min, stop 45 s (recorded 31–61 s and ≤31 s), restart 2 min 45 s and
//!   delete 1 min (assumptions; no recording polls them to the end).
//! - api-versions: each compute operation accepts only the versions whose spec or published
//!   example has it (list/get/PUT/DELETE: the stable versions from 2018-11-19 to 2025-12-01
//!   and evidenced previews; start/stop/restart from 2020-08-01; `updateIdleShutdownSetting`
//!   2023-04-01, 2025-12-01 and the 2023/2024 previews; `updateSchedules` 2021-07-01 only);
//!   others get ARM's 400 `NoRegisteredProviderFound` with the supported list
//!   (Azure/azure-sdk-for-js#4097), a malformed one 400 `InvalidApiVersionParameter`.
//! - Throttling: token buckets per (subscription, principal) for reads, writes and deletes,
//!   plus a global per-subscription bucket 15 times as large (Microsoft's "Request limits and
//!   throttling"; the recorded counters agree). A GET answers
//!   `x-ms-ratelimit-remaining-subscription-reads` and `-global-reads`, a PUT/POST `-writes`
//!   and `-global-writes`, a DELETE `-deletes` and `-global-deletes`, and only those
//!   (py-ml-stop-2024-12-signed-ao). An empty bucket answers 429 `SubscriptionRequestsThrottled`
//!   with ARM's message and `Retry-After` in seconds (velero-io/velero#9171).
//! - Compute bodies have the recorded key set (real-get-running-2024-12.body.json):
//!   `createdBy` has `userOrgId` and `userId` but no `userName`; `applications` are "Jupyter"
//!   (`{endpoint}/instances/{workspace}/{instance}/tree/`) and "Jupyter Lab" (`…/lab`); the
//!   Jupyter Server API is under that base, e.g. `…/{instance}/api/status`. Instances are
//!   `Shared` with null `personalComputeInstanceSettings` unless the fleet or the PUT says so.
//! - Schedules are accepted in any letter case and returned in Azure's (`stop` → `Stop`,
//!   `week` → `Week`, `monday` → `Monday`), each with an `id`, `provisioningStatus:
//!   "Completed"` and the unused trigger as null (cli-ml-ci-with-schedules-2023-01).
//! - Jupyter follows `applicationSharingPolicy` (Microsoft's REST reference): Personal opens
//!   for the creator and the assigned user only (403 for everyone else, the daemon's service
//!   principal included); Shared for principals holding
//!   `Microsoft.MachineLearningServices/workspaces/computes/applicationaccess/action`. A fleet
//!   may make the gateway refuse every service principal. The 403 body is an assumption.
//! - An action in the wrong state is accepted (202) and its operation fails with
//!   `StartComputeInstanceOnlyAllowedInStoppedState` and Azure's wording, as clients
//!   reported it (microsoft/vscode-tools-for-ai#2096, #1100, #2439); api-versions before
//!   2021-01-01 (synchronous actions) get it as a 400. 409 mid-operation (#2673 there). The
//!   stop/restart codes (`StopComputeInstanceOnlyAllowedInRunningState`, …) are assumptions.
//! - RBAC actions: `computes/read`, `computes/write` (PUT, `updateIdleShutdownSetting`,
//!   `updateSchedules`), `computes/delete`, `computes/{start,stop,restart}/action`,
//!   `workspaces/read`. `underlyingResourceAction=Detach` removes the instance like `Delete`.
//! - A compute's tags also change through ARM's Tags API ([`tags`]):
//!   `PATCH {compute}/providers/Microsoft.Resources/tags/default` (`Merge`, `Replace`,
//!   `Delete`), RBAC action `Microsoft.Resources/tags/write`.
//! - Tokens are JWT-shaped, unsigned, and accepted only if this emulator issued them; client
//!   assertions are checked for form and claims, not signature. The App Service MSI form
//!   accepts any non-empty `X-IDENTITY-HEADER`. `POST /_emulator/tokens/expire` and
//!   `/_emulator/tokens/revoke` invalidate every issued token. A fleet's user principals
//!   (`user = true`) get tokens through the same client-credentials form (a shortcut).
//! - A compute instance's `MSI_ENDPOINT` ([`msi`]): `GET /MSI/auth`, api-version 2017-09-01,
//!   header `secret`, for the fleet's `[[instance_identity]]` entries (what MSAL and
//!   azure-identity send and read); its error answers (401 wrong secret, 400 otherwise) are
//!   assumptions.
//! - The native idle shutdown counts what Microsoft's definition of idle names (kernel
//!   sessions, Jupyter terminals, Azure ML runs, VS Code connections): a scripted `ssh` or
//!   `gpu_busy` window does not hold it off (SSH is not tracked, `how-to-create-compute-instance.md`),
//!   nor does a `silent_kernel` (assumption: the check is taken to read Jupyter's
//!   `last_activity`, which a silent cell freezes). See the README's "Activity kinds".
//!
//! ```no_run
//! # async fn f() -> Result<(), azure_ml_emulator::EmulatorError> {
//! use azure_ml_emulator::{Emulator, EmulatorOptions};
//! let running = Emulator::start(EmulatorOptions::default()).await?;
//! println!("{}", serde_json::to_string(&running.ready()).unwrap_or_default());
//! running.shutdown().await;
//! # Ok(()) }
//! ```

pub mod agent;
pub mod arm;
pub mod auth;
pub mod bucket;
pub mod clock;
pub mod control;
pub mod cron;
pub mod fleet;
pub mod http;
pub mod iso8601;
pub mod jupyter;
pub mod machine;
pub mod msi;
pub mod opurl;
pub mod prices;
pub mod rbac;
pub mod state;
pub mod tags;
pub mod tls;
pub mod zones;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

pub use fleet::{Fleet, FleetError};

/// One running instance's agent view ([`EmulatorAgents::views`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSeen {
    /// The Azure workspace name.
    pub workspace: String,
    /// The compute instance name.
    pub instance: String,
    /// What its agent would report.
    pub view: agent::AgentView,
}

use self::clock::{Clock, ClockError};
use self::http::{Req, set_header};
use self::state::{CallRecord, Inner, Shared};

/// Largest request body accepted, in bytes.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How long open connections get to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to run the emulator.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// What to serve.
    pub fleet: Fleet,
    /// Serve HTTPS with a generated CA (written to `state_dir/ca.pem`).
    pub tls: bool,
    /// Run the emulator clock in virtual time (moved by `POST /_emulator/clock`).
    pub virtual_time: bool,
    /// Where `ca.pem` goes; default a fresh temporary directory, removed on shutdown.
    pub state_dir: Option<PathBuf>,
    /// Compute list page size; default the fleet's `page_size`, else 50.
    pub page_size: Option<usize>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fleet: Fleet::demo(),
            tls: true,
            virtual_time: false,
            state_dir: None,
            page_size: None,
        }
    }
}

/// Errors starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listen address could not be bound.
    #[error("failed to listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The state directory could not be created.
    #[error("failed to create state directory {path}")]
    StateDir {
        /// The directory.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// Certificates or TLS config failed.
    #[error("failed to set up TLS")]
    Tls(#[from] tls::TlsError),
    /// A clock operation failed.
    #[error("clock operation failed")]
    Clock(#[from] ClockError),
}

impl EmulatorError {
    /// A short stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            EmulatorError::Bind { .. } => "bind",
            EmulatorError::StateDir { .. } => "state_dir",
            EmulatorError::Tls(_) => "tls",
            EmulatorError::Clock(_) => "clock",
        }
    }
}

/// The line the CLI prints when the emulator is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadyLine {
    /// Always `"ready"`.
    pub event: &'static str,
    /// `https://127.0.0.1:PORT` (or `http://`).
    pub endpoint: String,
    /// Path of `ca.pem`, with TLS.
    pub ca_file: Option<String>,
    /// Tenant id.
    pub tenant_id: String,
    /// Client id of the fleet's first principal.
    pub client_id: String,
    /// Its secret (null for a managed identity without one).
    pub client_secret: Option<String>,
    /// `{endpoint}/MSI/auth`, the compute instances' `MSI_ENDPOINT`, when the fleet has
    /// `[[instance_identity]]` entries (their secrets are in the fleet file, not here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msi_endpoint: Option<String>,
}

/// Starts emulators.
pub struct Emulator;

impl Emulator {
    /// An in-process emulator for a daemon in virtual time (`simulate`, `demo`): loopback,
    /// TLS (the credentials insist on https), its clock starting at the fleet's
    /// `clock_start`, state (the CA) under `state_dir`.
    pub async fn start_virtual(
        fleet: Fleet,
        state_dir: PathBuf,
    ) -> Result<RunningEmulator, EmulatorError> {
        Emulator::start(EmulatorOptions {
            listen: SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
            fleet,
            tls: true,
            virtual_time: true,
            state_dir: Some(state_dir),
            page_size: None,
        })
        .await
    }

    /// Binds, generates certificates if asked, and starts serving in the background.
    pub async fn start(opts: EmulatorOptions) -> Result<RunningEmulator, EmulatorError> {
        let listener =
            TcpListener::bind(opts.listen)
                .await
                .map_err(|source| EmulatorError::Bind {
                    addr: opts.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: opts.listen,
                source,
            })?;
        let scheme = if opts.tls { "https" } else { "http" };
        let host = match addr.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            ip => ip.to_string(),
        };
        let endpoint = format!("{scheme}://{host}:{}", addr.port());

        let (state_dir, temp_dir) = match &opts.state_dir {
            Some(d) => (d.clone(), None),
            None => {
                let d = std::env::temp_dir()
                    .join(format!("lightsout-emulator-{}", uuid::Uuid::new_v4()));
                (d.clone(), Some(d))
            }
        };
        let acceptor = if opts.tls {
            std::fs::create_dir_all(&state_dir).map_err(|source| EmulatorError::StateDir {
                path: state_dir.display().to_string(),
                source,
            })?;
            // The regions' instance hosts, where each instance's Jupyter answers.
            let regions: Vec<String> = opts
                .fleet
                .workspaces
                .iter()
                .map(|w| w.location.to_ascii_lowercase().replace(' ', ""))
                .collect();
            Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
                &state_dir, &regions,
            )?))
        } else {
            None
        };
        let ca_file = opts.tls.then(|| state_dir.join("ca.pem"));

        let clock = if opts.virtual_time {
            Clock::virtual_at(opts.fleet.clock_start.unwrap_or_else(clock::wall_now))
        } else {
            Clock::real()
        };
        let page_size = opts
            .page_size
            .or(opts.fleet.page_size)
            .unwrap_or(fleet::DEFAULT_PAGE_SIZE)
            .max(1);
        let inner = Inner::new(&opts.fleet, clock.now());
        let shared = Arc::new(Shared {
            fleet: opts.fleet,
            endpoint: endpoint.clone(),
            clock,
            page_size,
            signer: opurl::Signer::new(),
            inner: Mutex::new(inner),
        });
        let router = Router::new().fallback(dispatch).with_state(shared.clone());
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(accept_loop(
            listener,
            acceptor,
            router,
            token.clone(),
            tracker.clone(),
        ));
        tracing::info!(endpoint = %endpoint, tls = opts.tls, virtual_time = shared.clock.is_virtual(), "Emulator listening.");
        Ok(RunningEmulator {
            endpoint,
            addr,
            ca_file,
            temp_dir,
            shared,
            token,
            tracker,
        })
    }
}

/// A handle on the emulator's clock (virtual or real, as started), for a client that runs
/// in the emulator's time. The crate defines no clock trait of its client's: the client
/// adapts this handle to its own (lightsout implements its `Clock` for it).
#[derive(Clone)]
pub struct EmulatorClock(Arc<Shared>);

impl EmulatorClock {
    /// The emulator clock's current time.
    pub fn now(&self) -> jiff::Timestamp {
        self.0.clock.now()
    }
}

/// What the on-instance agents of the emulated instances would report ([`agent`]): a
/// cheap handle that outlives borrows of the [`RunningEmulator`], for a daemon's hook.
#[derive(Clone)]
pub struct EmulatorAgents(Arc<Shared>);

impl EmulatorAgents {
    /// What the on-instance agent of every running instance would report now (settled
    /// first), in fleet order: see [`agent::view`].
    pub fn views(&self) -> Vec<AgentSeen> {
        let now = self.0.clock.now();
        let mut inner = self.0.lock();
        inner.settle(now);
        let mut out = Vec::new();
        for ws in &inner.workspaces {
            for i in &ws.instances {
                if let Some(view) = agent::view(&i.machine, now) {
                    out.push(AgentSeen {
                        workspace: ws.spec.name.clone(),
                        instance: i.name.clone(),
                        view,
                    });
                }
            }
        }
        out
    }

    /// When Azure's own idle shutdown, set to `idle`, would stop the running instance
    /// `workspace/instance` as things stand now: its last activity that the native check
    /// counts, plus `idle` (a time in the past: it would have stopped it then). `None` if
    /// the instance is unknown or not running, or a job or busy kernel started by hand
    /// holds it.
    pub fn native_idle_deadline(
        &self,
        workspace: &str,
        instance: &str,
        idle: Duration,
    ) -> Option<jiff::Timestamp> {
        let now = self.0.clock.now();
        let mut inner = self.0.lock();
        inner.settle(now);
        let ws = inner
            .workspaces
            .iter()
            .find(|w| w.spec.name.eq_ignore_ascii_case(workspace))?;
        let i = ws
            .instances
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(instance))?;
        if i.machine.state != machine::State::Running {
            return None;
        }
        let mut m = i.machine.clone();
        // As if set when the instance started: the deadline may lie in the past.
        m.native_from = m.started_at.unwrap_or(now);
        m.native.idle_set_at = None;
        m.idle_deadline(idle)
    }
}

impl std::fmt::Debug for EmulatorAgents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorAgents").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for EmulatorClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorClock").finish_non_exhaustive()
    }
}

/// A started emulator. Dropping it stops serving; [`RunningEmulator::shutdown`] also
/// waits for open connections.
pub struct RunningEmulator {
    endpoint: String,
    addr: SocketAddr,
    ca_file: Option<PathBuf>,
    temp_dir: Option<PathBuf>,
    shared: Arc<Shared>,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl RunningEmulator {
    /// `https://127.0.0.1:PORT` (or `http://` without TLS).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The ready line (names the fleet's first principal).
    pub fn ready(&self) -> ReadyLine {
        let p = self.shared.fleet.principals.first();
        ReadyLine {
            event: "ready",
            endpoint: self.endpoint.clone(),
            ca_file: self.ca_file.as_ref().map(|p| p.display().to_string()),
            tenant_id: self.shared.fleet.tenant_id.clone(),
            client_id: p.map(|p| p.client_id.clone()).unwrap_or_default(),
            client_secret: p.and_then(|p| p.client_secret.clone()),
            msi_endpoint: (!self.shared.fleet.instance_identities.is_empty())
                .then(|| format!("{}/MSI/auth", self.endpoint)),
        }
    }

    /// Path of `ca.pem`, with TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The fleet being served.
    pub fn fleet(&self) -> &Fleet {
        &self.shared.fleet
    }

    /// The emulator clock's current time.
    pub fn now(&self) -> jiff::Timestamp {
        self.shared.clock.now()
    }

    /// A handle on the emulator's clock, for a daemon running in its virtual time.
    pub fn clock(&self) -> EmulatorClock {
        EmulatorClock(self.shared.clone())
    }

    /// What `GET /_emulator/state` shows: every instance now (settled).
    pub fn state(&self) -> serde_json::Value {
        control::state_value(&self.shared)
    }

    /// A handle on the agent views of the emulated instances, for a daemon's hook.
    pub fn agents(&self) -> EmulatorAgents {
        EmulatorAgents(self.shared.clone())
    }

    /// Advances virtual time (as `POST /_emulator/clock` does); returns the new time.
    pub fn advance_clock(&self, by: Duration) -> Result<jiff::Timestamp, EmulatorError> {
        let now = self.shared.clock.advance(by)?;
        self.shared.lock().settle(now);
        Ok(now)
    }

    /// Stops accepting, lets open connections finish (up to a grace period), removes the
    /// temporary state directory if the emulator made one.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("Emulator connections did not finish within the grace period.");
        }
        if let Some(d) = &self.temp_dir
            && let Err(e) = std::fs::remove_dir_all(d)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %d.display(), error = %e, "Could not remove the emulator's temporary directory.");
        }
        tracing::info!("Emulator stopped.");
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Marks a connection to drop without a response (the `reset_rate` fault).
#[derive(Clone)]
struct ConnKill(CancellationToken);

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "Accept failed.");
                // Back off briefly: accept errors (e.g. too many open files) repeat at once.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (router, token, acceptor) = (router.clone(), token.clone(), acceptor.clone());
        tracker.spawn(async move {
            match acceptor {
                Some(a) => {
                    let tls = tokio::select! {
                        _ = token.cancelled() => return,
                        r = a.accept(tcp) => r,
                    };
                    match tls {
                        Ok(s) => serve_conn(TokioIo::new(s), router, token).await,
                        Err(e) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed.")
                        }
                    }
                }
                None => serve_conn(TokioIo::new(tcp), router, token).await,
            }
        });
    }
}

async fn serve_conn<I>(io: I, router: Router, token: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let kill = CancellationToken::new();
    let k = kill.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnKill(k.clone()));
        router.clone().oneshot(req.map(Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, svc);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "Connection ended with an error.");
            }
        }
        // Dropping the connection closes the socket without a response.
        _ = kill.cancelled() => {}
        _ = token.cancelled() => {
            conn.as_mut().graceful_shutdown();
            if tokio::time::timeout(SHUTDOWN_GRACE, conn).await.is_err() {
                tracing::debug!("Connection did not close in time.");
            }
        }
    }
}

/// Routes every request by its first path segment and records it in the call log.
async fn dispatch(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let kill = req.extensions().get::<ConnKill>().cloned();
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => Bytes::new(),
    };
    let req = Req::new(
        parts.method,
        parts.uri.path(),
        parts.uri.query(),
        parts.headers,
        body,
    );
    let request_id = uuid::Uuid::new_v4().to_string();
    let first = req.seg_lc(0).unwrap_or_default();
    let instance_host = jupyter::instance_host(&req);

    let (mut resp, principal) = if let Some((name, region)) = &instance_host {
        jupyter_with_faults(&shared, &req, name, region).await
    } else if arm::is_arm_path(&req) {
        match arm::handle(&shared, &req).await {
            arm::Outcome::Respond(r, p) => (r, p),
            arm::Outcome::Reset(p) => {
                record(&shared, &req, 0, p, &request_id);
                tracing::debug!(method = %req.method, path = %req.path, "Dropping connection (injected fault).");
                if let Some(k) = kill {
                    k.0.cancel();
                    // The connection task drops the connection; this response is never sent.
                    std::future::pending::<()>().await;
                }
                return http::empty(StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
    } else if first == "_emulator" {
        (control::handle(&shared, &req), None)
    } else if first == "api" && req.seg_lc(1).as_deref() == Some("retail") {
        (prices::handle(&shared, &req), None)
    } else if msi::is_msi_path(&req) {
        msi::handle(&shared, &req)
    } else if auth::is_entra_path(&req) {
        auth::handle(&shared, &req)
    } else {
        (
            http::arm_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("The emulator serves nothing at '{}'.", req.path),
            ),
            None,
        )
    };

    let correlation = req
        .header("x-ms-correlation-request-id")
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    set_header(&mut resp, "x-ms-request-id", &request_id);
    set_header(&mut resp, "x-ms-correlation-request-id", &correlation);
    if let Some(c) = req.header("x-ms-client-request-id").map(str::to_owned) {
        set_header(&mut resp, "x-ms-client-request-id", &c);
    }
    let status = resp.status().as_u16();
    tracing::debug!(method = %req.method, path = %req.path, status, "Request served.");
    let is_call_log = first == "_emulator" && req.seg_lc(1).as_deref() == Some("calls");
    if !is_call_log {
        record(&shared, &req, status, principal, &request_id);
    }
    resp
}

/// A Jupyter answer as the injected faults shape it: late, a 307 elsewhere, or a huge body.
async fn jupyter_with_faults(
    shared: &Shared,
    req: &Req,
    name: &str,
    region: &str,
) -> (Response, Option<usize>) {
    let faults = shared.lock().faults.clone();
    if faults.jupyter_latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.jupyter_latency_ms)).await;
    }
    let (resp, who) = jupyter::handle(shared, req, name, region);
    if let Some(to) = faults.jupyter_redirect {
        let mut r = http::empty(StatusCode::TEMPORARY_REDIRECT);
        set_header(&mut r, "location", &to);
        return (r, who);
    }
    if faults.jupyter_body_bytes > 0 {
        // Streamed without a length, so a client cannot refuse it by its header alone.
        static CHUNK: [u8; 64 * 1024] = [b' '; 64 * 1024];
        let total = faults.jupyter_body_bytes;
        let chunks = total.div_ceil(CHUNK.len() as u64);
        let stream = futures_util::stream::iter((0..chunks).map(move |i| {
            let left = total - i * CHUNK.len() as u64;
            let n = usize::try_from(left.min(CHUNK.len() as u64)).unwrap_or(CHUNK.len());
            Ok::<_, std::io::Error>(Bytes::from_static(&CHUNK[..n]))
        }));
        let mut r = Response::new(Body::from_stream(stream));
        set_header(&mut r, "content-type", "application/json");
        return (r, who);
    }
    (resp, who)
}

fn record(shared: &Shared, req: &Req, status: u16, principal: Option<usize>, request_id: &str) {
    let time = shared.clock.now();
    let principal = principal
        .and_then(|i| shared.fleet.principals.get(i))
        .map(|p| p.client_id.clone());
    shared.lock().record_call(CallRecord {
        seq: 0,
        time,
        method: req.method.to_string(),
        path: req.path.clone(),
        query: req.raw_query.clone(),
        status,
        principal,
        request_id: request_id.to_owned(),
        host: jupyter::instance_host(req)
            .map(|_| req.header("host").unwrap_or_default().to_owned()),
    });
}
