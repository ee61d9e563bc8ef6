//! Emulated Jupyter Server API of each instance, at
//! `{endpoint}/instances/{workspace}/{instance}/api/…` (the base of the instance's
//! `applications` URLs). Needs a bearer token the emulator issued; answers only while the
//! VM runs, else 502 as the Azure ML gateway does.
//!
//! Who may open it follows `applicationSharingPolicy` ("If Personal, only the creator can
//! access applications on this compute instance. When Shared, any workspace user can access
//! applications on this instance depending on his/her assigned role": Microsoft's REST and
//! SDK reference): Personal admits only the creator (`createdBy.userId`) and the assigned
//! user (`personalComputeInstanceSettings.assignedUser.objectId`), every other principal
//! including the daemon's service principal gets 403; Shared admits principals holding
//! [`APP_ACCESS_ACTION`]. A fleet may also make the gateway refuse every service principal
//! (`gateway_accepts_service_principals = false`), the case nobody has verified either way.
//! The 403's body is an assumption (the gateway's real answer is not public).

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::authenticate;
use super::http::{Req, json, text};
use super::rbac;
use super::state::{Instance, Shared, jupyter_time};

/// The RBAC data action that opens a shared instance's applications (Azure ML's
/// built-in roles grant it as `…/computes/applicationaccess/action`).
pub const APP_ACCESS_ACTION: &str =
    "Microsoft.MachineLearningServices/workspaces/computes/applicationaccess/action";

/// Whether principal `who` may open the instance's applications.
pub fn may_open(shared: &Shared, inst: &Instance, who: usize) -> bool {
    let Some(p) = shared.fleet.principals.get(who) else {
        return false;
    };
    if !p.user && !shared.fleet.gateway_accepts_service_principals {
        return false;
    }
    if inst.sharing_policy.eq_ignore_ascii_case("Personal") {
        let assigned = inst
            .personal
            .as_ref()
            .and_then(|s| s.pointer("/assignedUser/objectId"))
            .and_then(Value::as_str);
        p.object_id.eq_ignore_ascii_case(&inst.created_by.user_id)
            || assigned.is_some_and(|a| a.eq_ignore_ascii_case(&p.object_id))
    } else {
        rbac::allowed(&p.actions, APP_ACCESS_ACTION)
    }
}

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
    if !may_open(shared, &ws.instances[ii], who) {
        return (
            json(
                StatusCode::FORBIDDEN,
                &json!({"message": "Forbidden: this principal may not open the compute instance's applications.", "reason": null}),
            ),
            Some(who),
        );
    }
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
