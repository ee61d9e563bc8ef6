//! Emulated Jupyter Server API of each instance, on its own real-shaped host
//! `{instance}.{region}.instances.azureml.ms` (the emulator's port; the base of the instance's
//! `applications` URLs, as recorded), never on the ARM host. Needs a bearer token the
//! emulator issued for the Jupyter audience (`jupyter_audience` in the fleet; an ARM token
//! gets 401); answers only while the VM runs, else 502 as the Azure ML gateway does.
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
use super::state::{INSTANCE_DOMAIN, Instance, Shared, jupyter_time};

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

/// `(instance, region)` of a request's `Host` when it is an instance host
/// (`{instance}.{region}.instances.azureml.ms[:port]`).
pub fn instance_host(req: &Req) -> Option<(String, String)> {
    let host = req.header("host")?.to_ascii_lowercase();
    let host = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
    let prefix = host.strip_suffix(&format!(".{INSTANCE_DOMAIN}"))?;
    let (name, region) = prefix.split_once('.')?;
    (!name.is_empty() && !region.is_empty() && !region.contains('.'))
        .then(|| (name.to_owned(), region.to_owned()))
}

/// Whether the request's token was issued for `audience` (trailing `/` aside); `Ok(principal)`.
fn authenticate_for(shared: &Shared, req: &Req, audience: &str) -> Result<usize, &'static str> {
    let who = authenticate(shared, req).map_err(|_| "no valid token")?;
    let tok = match req.bearer() {
        super::http::Bearer::Token(t) => t,
        _ => return Err("no valid token"),
    };
    let inner = shared.lock();
    let aud = inner.tokens.get(tok).map(|t| t.audience.clone());
    let trim = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    match aud {
        Some(a) if trim(&a) == trim(audience) => Ok(who),
        _ => Err("the token is not for this audience"),
    }
}

/// Serves a request to the instance host of `(name, region)`; returns the response and the
/// principal.
pub fn handle(shared: &Shared, req: &Req, name: &str, region: &str) -> (Response, Option<usize>) {
    let who = match authenticate_for(shared, req, &shared.fleet.jupyter_audience) {
        Ok(i) => i,
        Err(reason) => {
            return (
                json(
                    StatusCode::UNAUTHORIZED,
                    &json!({"message": "Unauthorized", "reason": reason}),
                ),
                None,
            );
        }
    };
    let now = shared.clock.now();
    let mut inner = shared.lock();
    inner.settle(now);
    // Instance names are unique per region, as on Azure.
    let found = inner.workspaces.iter().enumerate().find_map(|(wi, ws)| {
        let here = ws.spec.location.to_ascii_lowercase().replace(' ', "") == region;
        here.then(|| ws.find(name).map(|ii| (wi, ii))).flatten()
    });
    let Some((wi, ii)) = found else {
        return (not_found(), Some(who));
    };
    let ws = &inner.workspaces[wi];
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
    let rest: Vec<&str> = req.segs.iter().map(String::as_str).collect();
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
                        "last_activity": jupyter_time(if k.busy && !k.silent { now } else { k.last_activity }),
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
