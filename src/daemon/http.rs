//! The daemon's HTTP server (`[http] listen`, 127.0.0.1:9464 by default):
//!
//! - `GET /metrics`: every metric, Prometheus text format 0.0.4.
//! - `GET /healthz`: 200 while the loop is alive (last pass, or start-up, younger than
//!   three poll intervals) and the state database takes writes, else 503.
//! - `GET /readyz`: 200 when the latest pass observed every workspace, else 503 (naming
//!   the ones it could not see): a daemon that cannot see acts on nothing.
//! - `GET /v1/status`: JSON: each instance's state, policy, decision, reason, idle time,
//!   next transition, hourly cost and totals.
//!
//! Reads only [`Shared`]; it never touches Azure or the store. Stops with the daemon's
//! cancellation token (graceful: in-flight requests finish). Bounded so that no client can
//! lock the probes out: [`MAX_CONNECTIONS`] (the oldest closed first),
//! [`HEADER_READ_TIMEOUT`] and [`CONNECTION_LIFETIME`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::daemon::exporter::Shared;
use crate::engine::cost::InstanceCost;
use crate::engine::model::InstanceKey;
use crate::engine::plan::PlanRow;

/// Content type of the Prometheus text format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The loop is stuck when no pass completed within this many poll intervals.
const STALE_AFTER_POLLS: u32 = 3;

/// Errors of the HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
}

impl HttpError {
    /// Short stable name for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            HttpError::Bind { .. } => "bind",
            HttpError::Serve(_) => "serve",
        }
    }
}

/// The routes, on `shared`.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/status", get(status))
        .with_state(shared)
}

/// Bind `addr` (before anything else starts, so a taken port fails the start-up).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })
}

/// At most this many connections are open at once. A new one past the cap closes the
/// oldest, so a flood of idle connections can neither exhaust the process's file
/// descriptors nor lock out the kubelet or the scraper: the newest connection is the last
/// to be closed, and a probe needs only milliseconds.
pub const MAX_CONNECTIONS: usize = 128;
/// A client has this long to send a request's headers (first or keep-alive): a slow or
/// silent client (slowloris) is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection lives at most this long, however busy; a scraper reconnects.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// How long open requests may finish after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serve until `shutdown` is cancelled, within [`MAX_CONNECTIONS`],
/// [`HEADER_READ_TIMEOUT`] and [`CONNECTION_LIFETIME`].
pub async fn serve(
    listener: TcpListener,
    shared: Shared,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    let router = router(shared);
    let open = OpenConnections::default();
    let tasks = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Out of descriptors or a connection reset before accept: not fatal; the cap
                // frees descriptors as old connections close.
                Err(e) => {
                    tracing::debug!(error = %crate::engine::text::chain(&e), "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let (evicted, id) = open.admit(MAX_CONNECTIONS);
        let (open, router, shutdown) = (open.clone(), router.clone(), shutdown.clone());
        tasks.spawn(async move {
            serve_connection(stream, router, evicted, shutdown).await;
            open.forget(id);
        });
    }
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// One connection: HTTP/1.1 with a header-read timeout, closed when evicted, at the end of
/// its lifetime, or gracefully at shutdown.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    evicted: CancellationToken,
    shutdown: CancellationToken,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let svc = hyper_util::service::TowerToHyperService::new(router);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %crate::engine::text::chain(&e), "HTTP connection ended with an error");
            }
            return;
        }
        // Dropping the connection closes the socket.
        () = evicted.cancelled() => return,
        () = tokio::time::sleep(CONNECTION_LIFETIME) => {}
        () = shutdown.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    if tokio::time::timeout(SHUTDOWN_GRACE, conn).await.is_err() {
        tracing::debug!("HTTP connection did not close within the grace period");
    }
}

/// The open connections, oldest first, each with the token that closes it.
#[derive(Clone, Default)]
struct OpenConnections {
    /// The next id, and the open connections by id (ids grow, so the first is the oldest).
    inner: Arc<Mutex<(u64, BTreeMap<u64, CancellationToken>)>>,
}

impl OpenConnections {
    /// Register a new connection, closing the oldest ones beyond `cap`.
    fn admit(&self, cap: usize) -> (CancellationToken, u64) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (next, map) = &mut *g;
        while map.len() >= cap {
            match map.pop_first() {
                Some((_, oldest)) => oldest.cancel(),
                None => break,
            }
        }
        let id = *next;
        *next += 1;
        let token = CancellationToken::new();
        map.insert(id, token.clone());
        (token, id)
    }

    /// A connection ended by itself.
    fn forget(&self, id: u64) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.1.remove(&id);
    }
}

async fn metrics(State(s): State<Shared>) -> Response {
    match s.metrics.render_chunks() {
        // Streamed: the text is rendered a chunk at a time as the scraper reads it.
        Ok(chunks) => {
            let body = Body::from_stream(futures_util::stream::iter(
                chunks.map(Ok::<_, std::convert::Infallible>),
            ));
            ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response()
        }
        Err(e) => {
            tracing::error!(error = %crate::engine::text::chain(&e), "cannot render metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render metrics\n").into_response()
        }
    }
}

/// Health at `now`: `Ok` with the age of the last pass, or `Err` with it when stale.
fn health(s: &Shared, now: Timestamp) -> Result<SignedDuration, SignedDuration> {
    let (last, _, _) = s.status.snapshot();
    let age = now.duration_since(last.unwrap_or(s.started));
    let limit = SignedDuration::try_from(s.poll_interval() * STALE_AFTER_POLLS)
        .unwrap_or(SignedDuration::MAX);
    if age < limit { Ok(age) } else { Err(age) }
}

async fn healthz(State(s): State<Shared>) -> Response {
    let (code, body) = healthz_answer(&s, crate::clock::now());
    (code, body).into_response()
}

/// `/healthz` at `now`: a stuck loop, then a state database that refuses writes (every
/// intent, so every action, is refused while it does).
fn healthz_answer(s: &Shared, now: Timestamp) -> (StatusCode, String) {
    match health(s, now) {
        Err(age) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stale: no pass for {}s\n", age.as_secs()),
        ),
        Ok(_) if s.status.store_failing() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "state database cannot be written: no action can be recorded, so none is taken (see the log and lightsout_state_errors_total)\n".to_owned(),
        ),
        Ok(_) => (StatusCode::OK, "ok\n".to_owned()),
    }
}

async fn readyz(State(s): State<Shared>) -> Response {
    let (code, body) = readyz_answer(&s);
    (code, body).into_response()
}

/// `/readyz`: ready only while the latest pass observed every workspace.
fn readyz_answer(s: &Shared) -> (StatusCode, String) {
    let (_, passes, _) = s.status.snapshot();
    if passes == 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "first pass not done\n".to_owned(),
        );
    }
    let unobserved = s.status.unobserved();
    if unobserved.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not observed by the latest pass: {} (see lightsout_workspace_up and the log)\n",
                unobserved.join(", ")
            ),
        )
    }
}

/// `/v1/status`.
#[derive(Debug, Serialize)]
struct StatusDoc {
    last_pass: Option<Timestamp>,
    passes: u64,
    healthy: bool,
    currency: String,
    /// Sum of the known hourly figures.
    hourly_cost: f64,
    instances: Vec<InstanceDoc>,
}

#[derive(Debug, Serialize)]
struct InstanceDoc {
    #[serde(flatten)]
    row: PlanRow,
    /// Current burn per hour; null while the compute price is unknown.
    hourly_cost: Option<f64>,
    unpriced: bool,
    stopped_by_lightsout: bool,
    cost: Option<CostDoc>,
}

#[derive(Debug, Serialize)]
struct CostDoc {
    accrued: f64,
    avoided: f64,
    idle: f64,
}

fn status_doc(s: &Shared, now: Timestamp) -> StatusDoc {
    let (last_pass, passes, rows) = s.status.snapshot();
    let costs = s.costs.read().unwrap_or_else(|p| p.into_inner()).clone();
    let instances: Vec<InstanceDoc> = rows
        .iter()
        .map(|row| {
            let c: Option<&InstanceCost> = costs
                .instances
                .get(&InstanceKey::new(&row.workspace, &row.instance));
            InstanceDoc {
                hourly_cost: c.and_then(|c| c.hourly),
                unpriced: c.is_some_and(|c| c.unpriced),
                stopped_by_lightsout: c.is_some_and(|c| c.stopped_by_lightsout),
                cost: c.map(|c| CostDoc {
                    accrued: c.totals.accrued,
                    avoided: c.totals.avoided,
                    idle: c.totals.idle,
                }),
                row: row.clone(),
            }
        })
        .collect();
    StatusDoc {
        last_pass,
        passes,
        healthy: health(s, now).is_ok() && !s.status.store_failing(),
        currency: costs.currency.clone(),
        hourly_cost: instances.iter().filter_map(|i| i.hourly_cost).sum(),
        instances,
    }
}

async fn status(State(s): State<Shared>) -> Response {
    axum::Json(status_doc(&s, crate::clock::now())).into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::daemon::metrics::Metrics;
    use crate::engine::report::Status;

    #[test]
    fn health_is_relative_to_three_polls() {
        let started: Timestamp = "2026-03-27T12:00:00Z".parse().unwrap();
        let s = Shared::new(
            Arc::new(Metrics::new("test").unwrap()),
            Arc::new(Status::default()),
            Duration::from_secs(60),
            started,
        );
        let at = |secs: i64| {
            started
                .checked_add(SignedDuration::from_secs(secs))
                .unwrap()
        };
        assert!(health(&s, at(179)).is_ok());
        assert_eq!(health(&s, at(180)), Err(SignedDuration::from_secs(180)));
        let doc = status_doc(&s, at(10));
        assert_eq!(doc.passes, 0);
        assert!(doc.healthy);
        assert!(doc.instances.is_empty());
    }

    #[test]
    fn not_ready_before_the_first_pass() {
        let s = Shared::new(
            Arc::new(Metrics::new("test").unwrap()),
            Arc::new(Status::default()),
            Duration::from_secs(60),
            crate::clock::now(),
        );
        assert_eq!(readyz_answer(&s).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(healthz_answer(&s, s.started).0, StatusCode::OK);
    }
}
