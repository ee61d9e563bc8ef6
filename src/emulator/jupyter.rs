//! Emulated Jupyter Server API of each instance, at
//! `{endpoint}/instances/{workspace}/{instance}/api/…` (the base of the instance's
//! `applications` URLs). Needs a bearer token the emulator issued; answers only while the
//! VM runs, else 502 as the Azure ML gateway does.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::authenticate;
use super::http::{Req, json, text};
use super::state::{Shared, jupyter_time};

/// Serves `/instances/{ws}/{inst}/…`; returns the response and the principal.
pub fn handle(shared: &Shared, req: &Req) -> (Response, Option<usize>) {
    let who = match authenticate(shared, req) {
        Ok(i) => i,
        Err(_) => {
            return (
                json(
                    StatusCode::UNAUTHORIZED,
                    &json!({"message": "Unauthorized", "reason": null}),
                ),
                None,
            );
        }
    };
    let (Some(wsn), Some(name)) = (req.segs.get(1), req.segs.get(2)) else {
        return (not_found(), Some(who));
    };
    let now = shared.clock.now();
    let mut inner = shared.lock();
    inner.settle(now);
    let Some(wi) = inner.find_ws_by_name(wsn) else {
        return (not_found(), Some(who));
    };
    let ws = &inner.workspaces[wi];
    let Some(ii) = ws.find(name) else {
        return (not_found(), Some(who));
    };
    let m = &ws.instances[ii].machine;
    if !m.jupyter_up() {
        return (
            text(
                StatusCode::BAD_GATEWAY,
                "502 Bad Gateway: the compute instance is not running",
            ),
            Some(who),
        );
    }
    let rest: Vec<&str> = req.segs[3..].iter().map(String::as_str).collect();
    if req.method != Method::GET {
        return (
            json(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"message": "Method Not Allowed", "reason": null}),
            ),
            Some(who),
        );
    }
    let kernels = m.kernels_at(now);
    let started = m.started_at.unwrap_or(now);
    let body = match rest.as_slice() {
        ["api"] => json!({"version": "2.14.2"}),
        ["api", "status"] => json!({
            "started": jupyter_time(started),
            "last_activity": jupyter_time(m.last_activity_at(now)),
            "connections": usize::from(!kernels.is_empty()),
            "kernels": kernels.len(),
        }),
        ["api", "kernels"] => Value::Array(
            kernels
                .iter()
                .map(|k| {
                    json!({
                        "id": k.id,
                        "name": k.name,
                        "last_activity": jupyter_time(if k.busy { now } else { k.last_activity }),
                        "execution_state": if k.busy { "busy" } else { "idle" },
                        "connections": 1,
                    })
                })
                .collect(),
        ),
        ["api", "terminals"] => json!([]),
        ["api", "sessions"] => json!([]),
        _ => return (not_found(), Some(who)),
    };
    (json(StatusCode::OK, &body), Some(who))
}

fn not_found() -> Response {
    json(
        StatusCode::NOT_FOUND,
        &json!({"message": "Not Found", "reason": null}),
    )
}
