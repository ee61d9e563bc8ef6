//! The control API under `/_emulator/` (no auth): state, scripted activity, faults, the
//! call log, the virtual clock and token expiry. For tests and demos.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{Req, json};
use super::machine::{Kernel, State};
use super::state::{Faults, Shared, arm_time, instance_json, jupyter_time};

fn err(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json(
        status,
        &json!({"error": {"code": code, "message": message.into()}}),
    )
}

#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
fn body<T: for<'de> Deserialize<'de>>(req: &Req) -> Result<T, Response> {
    serde_json::from_slice(&req.body).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            e.to_string(),
        )
    })
}

/// Serves `/_emulator/…`.
pub fn handle(shared: &Shared, req: &Req) -> Response {
    let what = req.seg_lc(1).unwrap_or_default();
    let sub = req.seg_lc(2);
    match (&req.method, what.as_str(), sub.as_deref()) {
        (&Method::GET, "state", None) => state(shared),
        (&Method::POST, "activity", None) => activity(shared, req),
        (&Method::GET, "faults", None) => json(StatusCode::OK, &json!(shared.lock().faults)),
        (&Method::POST, "faults", None) => faults(shared, req),
        (&Method::GET, "calls", None) => {
            let inner = shared.lock();
            json(StatusCode::OK, &json!(inner.calls))
        }
        (&Method::DELETE, "calls", None) => {
            shared.lock().calls.clear();
            json(StatusCode::OK, &json!({"cleared": true}))
        }
        (&Method::GET, "clock", None) => clock_json(shared),
        (&Method::POST, "clock", None) => clock(shared, req),
        (&Method::POST, "tokens", Some("expire")) => {
            let wall = shared.clock.wall();
            let mut inner = shared.lock();
            let n = inner.tokens.len();
            for t in inner.tokens.values_mut() {
                t.expires = t.expires.min(wall);
            }
            json(StatusCode::OK, &json!({"expired": n}))
        }
        (&Method::POST, "tokens", Some("revoke")) => {
            let mut inner = shared.lock();
            let n = inner.tokens.len();
            inner.tokens.clear();
            json(StatusCode::OK, &json!({"revoked": n}))
        }
        _ => err(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no control endpoint {} {}", req.method, req.path),
        ),
    }
}

fn clock_json(shared: &Shared) -> Response {
    json(
        StatusCode::OK,
        &json!({"now": shared.clock.now().to_string(), "virtual_time": shared.clock.is_virtual()}),
    )
}

fn state(shared: &Shared) -> Response {
    json(StatusCode::OK, &state_value(shared))
}

/// The body of `GET /_emulator/state`: every instance as the emulator sees it now.
pub fn state_value(shared: &Shared) -> Value {
    let now = shared.clock.now();
    let mut inner = shared.lock();
    inner.settle(now);
    let workspaces: Vec<Value> = inner
        .workspaces
        .iter()
        .map(|ws| {
            let instances: Vec<Value> = ws
                .instances
                .iter()
                .map(|i| {
                    let m = &i.machine;
                    json!({
                        "name": i.name,
                        "state": m.shown_state(now),
                        "vm_size": i.vm_size,
                        "tags": i.tags,
                        "job_running": m.job_running(now),
                        "started_at": m.started_at.map(|t| t.to_string()),
                        "last_activity": jupyter_time(m.last_activity_at(now)),
                        "kernels": m.kernels_at(now).iter().map(|k| json!({"id": k.id, "busy": k.busy})).collect::<Vec<_>>(),
                        "pending": m.pending.as_ref().map(|p| json!({
                            "operation": p.kind.name(), "id": p.id,
                            "ends": p.ends.to_string(), "fails": p.fails,
                        })),
                        "idle_time_before_shutdown": i.idle_time_before_shutdown,
                        "native_firings": m.native_log.iter().map(|f| json!({
                            "at": f.at.to_string(), "operation": f.kind.name(),
                            "trigger": f.trigger.name(),
                        })).collect::<Vec<_>>(),
                        "resource": instance_json(&shared.endpoint, ws, i, now),
                    })
                })
                .collect();
            json!({
                "subscription_id": ws.spec.subscription_id,
                "resource_group": ws.spec.resource_group,
                "name": ws.spec.name,
                "location": ws.spec.location,
                "instances": instances,
            })
        })
        .collect();
    json!({
        "now": now.to_string(),
        "now_arm": arm_time(now),
        "virtual_time": shared.clock.is_virtual(),
        "endpoint": shared.endpoint,
        "tenant_id": shared.fleet.tenant_id,
        "workspaces": workspaces,
        "faults": inner.faults,
        "calls": inner.calls.len(),
        "tokens": inner.tokens.len(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityReq {
    workspace: String,
    instance: String,
    kind: String,
}

fn activity(shared: &Shared, req: &Req) -> Response {
    let a: ActivityReq = match body(req) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let now = shared.clock.now();
    let mut inner = shared.lock();
    inner.settle(now);
    let Some(wi) = inner.find_ws_by_name(&a.workspace) else {
        return err(
            StatusCode::NOT_FOUND,
            "WorkspaceNotFound",
            format!("no workspace '{}'", a.workspace),
        );
    };
    let Some(ii) = inner.workspaces[wi].find(&a.instance) else {
        return err(
            StatusCode::NOT_FOUND,
            "InstanceNotFound",
            format!("no instance '{}'", a.instance),
        );
    };
    let m = &mut inner.workspaces[wi].instances[ii].machine;
    let running = m.state == State::Running;
    match a.kind.as_str() {
        "job_start" | "kernel_busy" | "touch" if !running => {
            return err(
                StatusCode::CONFLICT,
                "InstanceNotRunning",
                format!(
                    "instance '{}' is {}, not Running",
                    a.instance,
                    m.shown_state(now)
                ),
            );
        }
        "job_start" => m.manual_job = true,
        "job_end" => {
            if m.manual_job {
                m.last_activity = m.last_activity.max(now);
            }
            m.manual_job = false;
        }
        "kernel_busy" => {
            if m.kernels.is_empty() {
                m.kernels.push(Kernel {
                    id: uuid::Uuid::new_v4().to_string(),
                    name: "python3".to_owned(),
                    busy: true,
                    last_activity: now,
                    silent: false,
                });
            }
            for k in &mut m.kernels {
                k.busy = true;
                k.last_activity = now;
            }
        }
        "kernel_idle" => {
            for k in &mut m.kernels {
                if k.busy {
                    k.busy = false;
                    k.last_activity = now;
                }
            }
        }
        "touch" => m.last_activity = m.last_activity.max(now),
        other => {
            return err(
                StatusCode::BAD_REQUEST,
                "InvalidKind",
                format!(
                    "unknown kind '{other}', expected job_start, job_end, kernel_busy, kernel_idle or touch"
                ),
            );
        }
    }
    let ws = &inner.workspaces[wi];
    let i = &ws.instances[ii];
    json(
        StatusCode::OK,
        &json!({
            "workspace": ws.spec.name,
            "instance": i.name,
            "state": i.machine.shown_state(now),
            "last_activity": jupyter_time(i.machine.last_activity_at(now)),
        }),
    )
}

fn faults(shared: &Shared, req: &Req) -> Response {
    let mut f: Faults = match body(req) {
        Ok(f) => f,
        Err(r) => return r,
    };
    for (name, r) in [
        ("error_rate", f.error_rate),
        ("throttle_rate", f.throttle_rate),
        ("reset_rate", f.reset_rate),
        ("lro_fail_rate", f.lro_fail_rate),
    ] {
        if !(0.0..=1.0).contains(&r) {
            return err(
                StatusCode::BAD_REQUEST,
                "InvalidRate",
                format!("{name} must be between 0 and 1, got {r}"),
            );
        }
    }
    if f.statuses.is_empty() {
        f.statuses = vec![500, 503];
    }
    if let Some(bad) = f.statuses.iter().find(|s| !(400..=599).contains(*s)) {
        return err(
            StatusCode::BAD_REQUEST,
            "InvalidStatus",
            format!("status {bad} is not an error status"),
        );
    }
    let mut inner = shared.lock();
    let seed = f.seed.unwrap_or(shared.fleet.seed);
    inner.rng = StdRng::seed_from_u64(seed);
    inner.faults = f;
    tracing::info!(faults = ?inner.faults, "Fault injection changed.");
    json(StatusCode::OK, &json!(inner.faults))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockReq {
    advance: String,
}

fn clock(shared: &Shared, req: &Req) -> Response {
    let c: ClockReq = match body(req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let by = match humantime::parse_duration(&c.advance) {
        Ok(d) => d,
        Err(e) => {
            return err(
                StatusCode::BAD_REQUEST,
                "InvalidDuration",
                format!("invalid duration '{}': {e}", c.advance),
            );
        }
    };
    match shared.clock.advance(by) {
        Ok(now) => {
            shared.lock().settle(now);
            clock_json(shared)
        }
        Err(e) => err(StatusCode::CONFLICT, "NotVirtualTime", e.to_string()),
    }
}
