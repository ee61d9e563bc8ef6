//! Emulated Azure Resource Manager for `Microsoft.MachineLearningServices` computes.
//!
//! Order of checks, as ARM does it: injected faults, authentication (401), throttling
//! (429), `api-version` (400), RBAC on the request scope (403), then the resource provider
//! (404, 409, 400, success). Fixed path segments match case-insensitively.
//!
//! Also `GET {workspace}/providers/Microsoft.Authorization/permissions`: the caller's own
//! `actions` from the fleet, as ARM's permissions API answers (`lightsout doctor` asks it).

use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use rand::Rng;
use serde_json::{Value, json};

use super::auth::{arm_unauthorized, authenticate};
use super::bucket::TokenBucket;
use super::http::{Req, arm_error, arm_error_target, empty, json, set_header};
use super::iso8601;
use super::machine::{Machine, OpKind, OpStatus, Refusal, Trigger, op_status};
use super::rbac;
use super::state::{
    CreatedBy, Inner, Instance, OpRecord, RateKind, Shared, WsState, duration_of, instance_json,
};

/// Provider namespace, as ARM spells it.
const NS: &str = "Microsoft.MachineLearningServices";
/// First api-version whose start/stop/restart are long-running (202): the specs read from
/// 2021-07-01 on mark them `x-ms-long-running-operation` with 202 (native-research notes
/// §2). Before it they answer 200: Microsoft's azure-mgmt-machinelearningservices 1.0.1
/// (2020-08-01) accepts only 200 there (tests/python). The exact first version is an
/// assumption.
const FIRST_LRO_ACTION_API: &str = "2021-01-01";
/// Smallest and largest idle shutdown ARM accepts.
const MIN_IDLE: Duration = Duration::from_secs(15 * 60);
const MAX_IDLE: Duration = Duration::from_secs(3 * 24 * 3600);
/// Most start/stop schedules per instance. An assumption: no recording shows ARM refusing a
/// fifth; lightsout's native planner assumes the same limit, so a change must change both.
const MAX_SCHEDULES: usize = 4;

/// What the ARM handler decided.
pub enum Outcome {
    /// Send this response; the principal, if authenticated.
    Respond(Response, Option<usize>),
    /// Drop the connection without a response (injected fault).
    Reset(Option<usize>),
}

/// Whether the path belongs to ARM.
pub fn is_arm_path(req: &Req) -> bool {
    req.seg_lc(0).as_deref() == Some("subscriptions")
}

/// Serves one ARM request.
pub async fn handle(shared: &Shared, req: &Req) -> Outcome {
    let principal = authenticate(shared, req);
    let who = principal.ok();
    let kind = RateKind::of(&req.method);

    // Faults first: they stand for the network and the front door.
    let (latency, roll) = {
        let mut inner = shared.lock();
        let f = inner.faults.clone();
        let reset = chance(&mut inner, f.reset_rate);
        let error = chance(&mut inner, f.error_rate);
        let throttle = chance(&mut inner, f.throttle_rate);
        let status = if f.statuses.is_empty() {
            let pick = inner.rng.random_range(0..2usize);
            [500u16, 503][pick]
        } else {
            let pick = inner.rng.random_range(0..f.statuses.len());
            f.statuses[pick]
        };
        (f.latency_ms, (reset, error.then_some(status), throttle))
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    match roll {
        (true, _, _) => return Outcome::Reset(who),
        (_, Some(status), _) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = match status.as_u16() {
                502 => "BadGateway",
                503 => "ServiceUnavailable",
                504 => "GatewayTimeout",
                408 => "RequestTimeout",
                429 => "TooManyRequests",
                _ => "InternalServerError",
            };
            let mut r = arm_error(
                status,
                code,
                "The server encountered an internal error. Please retry the request. (injected fault)",
            );
            if status.as_u16() == 503 || status.as_u16() == 429 {
                set_header(&mut r, "retry-after", "1");
            }
            return Outcome::Respond(r, who);
        }
        (_, _, true) => {
            let sub = req.segs.get(1).map(String::as_str).unwrap_or_default();
            let actor = who
                .and_then(|i| shared.fleet.principals.get(i))
                .map(|p| p.object_id.as_str())
                .unwrap_or_default();
            return Outcome::Respond(too_many(1, kind, sub, actor), who);
        }
        _ => {}
    }

    let idx = match principal {
        Ok(i) => i,
        Err(f) => {
            return Outcome::Respond(arm_unauthorized(shared, f, shared.clock.wall()), None);
        }
    };
    let p = &shared.fleet.principals[idx];
    let sub = req.segs.get(1).cloned().unwrap_or_default();
    let limits = shared.fleet.limits;
    let wall = shared.clock.wall();
    let taken = {
        let mut inner = shared.lock();
        let sub_lc = sub.to_ascii_lowercase();
        let mut take = |who: Option<String>, (cap, refill): (u32, f64)| {
            inner
                .buckets
                .entry((sub_lc.clone(), who, kind))
                .or_insert_with(|| TokenBucket::new(cap, refill, wall))
                .take(wall)
        };
        // Both budgets are spent; either one empty throttles ("Request limits and
        // throttling": per principal, and globally per subscription).
        let mine = take(
            Some(p.client_id.to_ascii_lowercase()),
            limits.per_principal(kind),
        );
        let global = take(None, limits.global(kind));
        match (mine, global) {
            (Ok(m), Ok(g)) => Ok((m, g)),
            (Err(w), _) | (_, Err(w)) => Err(w),
        }
    };
    let (mine, global) = match taken {
        Ok(n) => n,
        Err(wait) => {
            return Outcome::Respond(too_many(wait, kind, &sub, &p.object_id), Some(idx));
        }
    };

    let mut resp = route(shared, req, idx);
    // Only the counters of the request's own kind, as recorded (a GET answers reads and
    // global-reads, a POST writes and global-writes, a DELETE deletes and global-deletes:
    // py-ml-stop-2024-12-signed-ao.excerpt.json).
    let (h_mine, h_global) = kind.headers();
    set_header(&mut resp, h_mine, &mine.to_string());
    set_header(&mut resp, h_global, &global.to_string());
    Outcome::Respond(resp, Some(idx))
}

fn chance(inner: &mut Inner, rate: f64) -> bool {
    rate > 0.0 && inner.rng.random_bool(rate.min(1.0))
}

/// ARM's throttling answer: 429, code `SubscriptionRequestsThrottled`, its message, and
/// `Retry-After` in seconds (velero-io/velero#9171 quotes a real one; Microsoft's "Request
/// limits and throttling" page). The actor is the caller's object id (an assumption: the
/// quoted message shows a GUID there).
fn too_many(wait: u64, kind: RateKind, sub: &str, actor: &str) -> Response {
    let mut r = arm_error(
        StatusCode::TOO_MANY_REQUESTS,
        "SubscriptionRequestsThrottled",
        format!(
            "Number of '{}' requests for subscription '{sub}' actor '{actor}' exceeded. Please try again after '{wait}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling for additional information.",
            kind.word()
        ),
    );
    set_header(&mut r, "retry-after", &wait.to_string());
    r
}

/// Stable api-versions of `Microsoft.MachineLearningServices` that publish the compute
/// resource (list, get, PUT, DELETE): the stable folders of azure-rest-api-specs
/// (`specification/machinelearningservices/resource-manager/…/stable/`, as surveyed in
/// /work/notes/native-research.md §2).
const COMPUTE_STABLE: &[&str] = &[
    "2018-11-19",
    "2019-05-01",
    "2019-06-01",
    "2019-11-01",
    "2020-01-01",
    "2020-03-01",
    "2020-04-01",
    "2020-06-01",
    "2020-08-01",
    "2021-01-01",
    "2021-04-01",
    "2021-07-01",
    "2022-05-01",
    "2022-10-01",
    "2023-04-01",
    "2023-10-01",
    "2024-04-01",
    "2024-10-01",
    "2025-12-01",
];
/// Preview api-versions with evidence: 2022-10-01-preview and 2023-08-01-preview in the
/// recordings, 2021-03-01-preview in ARM's own list (microsoft/vscode-tools-for-ai#940),
/// 2024-04-01-preview and 2024-10-01-preview in azure-ai-ml's generated clients.
const COMPUTE_PREVIEW: &[&str] = &[
    "2021-03-01-preview",
    "2022-10-01-preview",
    "2023-08-01-preview",
    "2024-04-01-preview",
    "2024-10-01-preview",
];
/// `updateIdleShutdownSetting`: the three previews' specs, and the published examples of
/// 2023-04-01 and 2025-12-01 (the recorded README: "the 2025-12-01 spec has
/// updateIdleShutdownSetting").
const IDLE_SETTING_VERSIONS: &[&str] = &[
    "2023-04-01",
    "2025-12-01",
    "2023-08-01-preview",
    "2024-04-01-preview",
    "2024-10-01-preview",
];
/// `updateSchedules`: only the 2021-07-01 example publishes it.
const SCHEDULES_VERSIONS: &[&str] = &["2021-07-01"];
/// start/stop/restart: assumption for the stable versions before 2020-08-01 (the earliest
/// one we have a client of: azure-mgmt-machinelearningservices 1.0.1 calls them there).
const FIRST_ACTION_API: &str = "2020-08-01";

/// The api-versions that publish compute operation `op` (`""` for the resource itself and
/// the operation-status URL; else the lower-case action name).
fn compute_versions(op: &str) -> Vec<&'static str> {
    let all = || COMPUTE_STABLE.iter().chain(COMPUTE_PREVIEW).copied();
    match op {
        "updateidleshutdownsetting" => IDLE_SETTING_VERSIONS.to_vec(),
        "updateschedules" => SCHEDULES_VERSIONS.to_vec(),
        "start" | "stop" | "restart" => all().filter(|v| *v >= FIRST_ACTION_API).collect(),
        _ => all().collect(),
    }
}

/// ARM's answer to a well-formed but unpublished api-version: 400 `NoRegisteredProviderFound`
/// with the supported versions (quoted in Azure/azure-sdk-for-js#4097 and
/// Azure/azure-cli#28496). For an action unpublished at a version the resource type has,
/// the same answer is an assumption.
#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
fn check_compute_version(op: &str, v: &str, location: &str) -> Result<(), Response> {
    let versions = compute_versions(op);
    if versions.iter().any(|x| x.eq_ignore_ascii_case(v)) {
        return Ok(());
    }
    let rtype = if op.is_empty() {
        "workspaces/computes".to_owned()
    } else {
        format!("workspaces/computes/{op}")
    };
    Err(arm_error(
        StatusCode::BAD_REQUEST,
        "NoRegisteredProviderFound",
        format!(
            "No registered resource provider found for location '{location}' and API version '{v}' for type '{rtype}'. The supported api-versions are '{}'. The supported locations are '{location}'.",
            versions.join(", ")
        ),
    ))
}

/// The region of a workspace, for error messages (the path's own words if unknown).
fn location_of(shared: &Shared, sub: &str, rg: &str, wsn: &str) -> String {
    let inner = shared.lock();
    inner
        .find_ws(sub, rg, wsn)
        .map(|wi| inner.workspaces[wi].spec.location.clone())
        .unwrap_or_else(|| "global".to_owned())
}

/// Checks and returns the api-version, or the ARM 400.
#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
fn api_version(req: &Req) -> Result<&str, Response> {
    let Some(v) = req.q("api-version") else {
        return Err(arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    if valid_api_version(v) {
        Ok(v)
    } else {
        Err(arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{v}' is invalid. The supported versions are '{}'.",
                COMPUTE_STABLE
                    .iter()
                    .rev()
                    .copied()
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ))
    }
}

/// `YYYY-MM-DD` with an optional `-preview`-style suffix.
fn valid_api_version(v: &str) -> bool {
    let (date, suffix) = match v.get(..10) {
        Some(d) => (d, &v[10..]),
        None => return false,
    };
    let date_ok = jiff::civil::Date::strptime("%Y-%m-%d", date).is_ok()
        && date.as_bytes().get(4) == Some(&b'-');
    let suffix_ok = suffix.is_empty()
        || (suffix.starts_with('-')
            && suffix.len() > 1
            && suffix[1..].chars().all(|c| c.is_ascii_alphanumeric()));
    date_ok && suffix_ok
}

pub(super) fn forbidden(shared: &Shared, idx: usize, action: &str, scope: &str) -> Response {
    let oid = &shared.fleet.principals[idx].object_id;
    arm_error(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        format!(
            "The client '{oid}' with object id '{oid}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
        ),
    )
}

pub(super) fn not_found_resource(rtype: &str, rg: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "The Resource '{rtype}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

/// Routes an authenticated, unthrottled request.
fn route(shared: &Shared, req: &Req, idx: usize) -> Response {
    let v = match api_version(req) {
        Ok(v) => v.to_owned(),
        Err(r) => return r,
    };
    let sl: Vec<String> = req.segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let s: Vec<&str> = sl.iter().map(String::as_str).collect();
    let ns = NS.to_ascii_lowercase();
    let ws_route = s.len() >= 8
        && s[2] == "resourcegroups"
        && s[4] == "providers"
        && s[5] == ns
        && s[6] == "workspaces";
    if ws_route && super::tags::is_tags_path(&s) {
        return super::tags::handle(shared, req, idx, &v);
    }
    if ws_route {
        return workspace_route(shared, req, idx, &v);
    }
    if s.len() == 8
        && s[2] == "providers"
        && s[3] == ns
        && s[4] == "locations"
        && s[6] == "computeoperationsstatus"
    {
        if let Err(r) = check_compute_version("", &v, &req.segs[5]) {
            return r;
        }
        return operation_status(shared, req);
    }
    let rtype = req.segs.get(4..).map(|x| x.join("/")).unwrap_or_default();
    arm_error(
        StatusCode::NOT_FOUND,
        "InvalidResourceType",
        format!("The resource type '{rtype}' could not be found for api version '{v}'."),
    )
}

pub(super) fn method_not_allowed(req: &Req) -> Response {
    arm_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!(
            "The requested method '{}' is not allowed on this resource.",
            req.method
        ),
    )
}

fn workspace_route(shared: &Shared, req: &Req, idx: usize, v: &str) -> Response {
    let (sub, rg, wsn) = (&req.segs[1], &req.segs[3], &req.segs[7]);
    let ws_scope =
        format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{NS}/workspaces/{wsn}");
    let n = req.segs.len();
    if n == 11
        && req.segs[8].eq_ignore_ascii_case("providers")
        && req.segs[9].eq_ignore_ascii_case("Microsoft.Authorization")
        && req.segs[10].eq_ignore_ascii_case("permissions")
    {
        return permissions(shared, req, idx, sub, rg, wsn);
    }
    let computes = n >= 9 && req.segs[8].eq_ignore_ascii_case("computes");
    if n > 8 && !computes || n > 11 {
        return arm_error(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            format!(
                "The resource type 'workspaces/{}' could not be found in the namespace '{NS}' for api version '{v}'.",
                req.segs[8..].join("/")
            ),
        );
    }
    let action = match (n, &req.method) {
        (8, &Method::GET) => "Microsoft.MachineLearningServices/workspaces/read".to_owned(),
        (9 | 10, &Method::GET) => {
            "Microsoft.MachineLearningServices/workspaces/computes/read".to_owned()
        }
        (10, &Method::PUT) => OpKind::Create.action().to_owned(),
        (10, &Method::DELETE) => OpKind::Delete.action().to_owned(),
        (11, &Method::POST) => match req.segs[10].to_ascii_lowercase().as_str() {
            "start" => OpKind::Start.action().to_owned(),
            "stop" => OpKind::Stop.action().to_owned(),
            "restart" => OpKind::Restart.action().to_owned(),
            // Both change the compute's settings; ARM checks them as writes.
            "updateidleshutdownsetting" | "updateschedules" => OpKind::Create.action().to_owned(),
            other => {
                return arm_error(
                    StatusCode::NOT_FOUND,
                    "InvalidResourceType",
                    format!(
                        "The resource type 'workspaces/computes/{other}' could not be found in the namespace '{NS}' for api version '{v}'."
                    ),
                );
            }
        },
        _ => return method_not_allowed(req),
    };
    // ARM checks the api-version of the resource type before RBAC.
    if n >= 9 {
        let op = if n == 11 {
            req.segs[10].to_ascii_lowercase()
        } else {
            String::new()
        };
        if let Err(r) = check_compute_version(&op, v, &location_of(shared, sub, rg, wsn)) {
            return r;
        }
    }
    let scope = match n {
        8 | 9 => ws_scope.clone(),
        _ => format!("{ws_scope}/computes/{}", req.segs[9]),
    };
    if !rbac::allowed(&shared.fleet.principals[idx].actions, &action) {
        return forbidden(shared, idx, &action, &scope);
    }

    let now = shared.clock.now();
    let mut inner = shared.lock();
    inner.settle(now);
    let Some(wi) = inner.find_ws(sub, rg, wsn) else {
        let known_sub = inner
            .workspaces
            .iter()
            .any(|w| w.spec.subscription_id.eq_ignore_ascii_case(sub));
        let known_rg = inner.workspaces.iter().any(|w| {
            w.spec.subscription_id.eq_ignore_ascii_case(sub)
                && w.spec.resource_group.eq_ignore_ascii_case(rg)
        });
        return if !known_sub {
            arm_error(
                StatusCode::NOT_FOUND,
                "SubscriptionNotFound",
                format!("The subscription '{sub}' could not be found."),
            )
        } else if !known_rg {
            arm_error(
                StatusCode::NOT_FOUND,
                "ResourceGroupNotFound",
                format!("Resource group '{rg}' could not be found."),
            )
        } else {
            not_found_resource(&format!("{NS}/workspaces/{wsn}"), rg)
        };
    };
    match n {
        8 => json(StatusCode::OK, &workspace_json(&inner.workspaces[wi])),
        9 => list(shared, req, &inner.workspaces[wi], v, now),
        10 => match req.method {
            Method::GET => {
                let ws = &inner.workspaces[wi];
                match ws.find(&req.segs[9]) {
                    Some(ii) => json(
                        StatusCode::OK,
                        &instance_json(&shared.endpoint, ws, &ws.instances[ii], now),
                    ),
                    None => not_found_resource(
                        &format!("{NS}/workspaces/{}/computes/{}", ws.spec.name, req.segs[9]),
                        &ws.spec.resource_group,
                    ),
                }
            }
            Method::PUT => put(shared, &mut inner, req, wi, idx, v, now),
            _ => delete(shared, &mut inner, req, wi, v, now),
        },
        _ => post(shared, &mut inner, req, wi, v, now),
    }
}

/// `GET {workspace}/providers/Microsoft.Authorization/permissions`: the caller's own
/// permissions at the workspace scope, from its fleet `actions`, in ARM's shape. Any
/// authenticated principal may ask about itself (no RBAC check, as in Azure, where listing
/// one's own permissions needs no role).
fn permissions(shared: &Shared, req: &Req, idx: usize, sub: &str, rg: &str, wsn: &str) -> Response {
    if req.method != Method::GET {
        return method_not_allowed(req);
    }
    let known = {
        let inner = shared.lock();
        inner.find_ws(sub, rg, wsn).is_some()
    };
    if !known {
        return not_found_resource(&format!("{NS}/workspaces/{wsn}"), rg);
    }
    let actions = &shared.fleet.principals[idx].actions;
    let value = if actions.is_empty() {
        Vec::new()
    } else {
        vec![json!({
            "actions": actions,
            "notActions": [],
            "dataActions": [],
            "notDataActions": [],
        })]
    };
    json(StatusCode::OK, &json!({ "value": value }))
}

fn workspace_json(ws: &WsState) -> Value {
    json!({
        "id": ws.id(),
        "name": ws.spec.name,
        "type": "Microsoft.MachineLearningServices/workspaces",
        "location": ws.spec.location,
        "tags": {},
        "kind": "Default",
        "sku": {"name": "Basic", "tier": "Basic"},
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "friendlyName": ws.spec.name,
            "provisioningState": "Succeeded",
            "hbiWorkspace": false,
            "publicNetworkAccess": "Enabled",
            "discoveryUrl": format!("https://{}.api.azureml.ms/discovery", ws.spec.location),
            "workspaceId": uuid_from(&ws.id()),
        }
    })
}

fn uuid_from(s: &str) -> String {
    let h = super::state::fnv(s.as_bytes());
    let h2 = super::state::fnv(&h.to_be_bytes());
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) as u16,
        h & 0xfff,
        h2 & 0xfff,
        (h2 >> 16) & 0xffff_ffff_ffff
    )
}

fn list(shared: &Shared, req: &Req, ws: &WsState, v: &str, now: Timestamp) -> Response {
    let skip_raw = req.q("$skip").or_else(|| req.q("$skipToken"));
    let skip = match skip_raw.map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidSkipToken",
                "The continuation token in the request is invalid.",
            );
        }
    };
    let size = shared.page_size.max(1);
    let items: Vec<Value> = ws
        .instances
        .iter()
        .skip(skip)
        .take(size)
        .map(|i| instance_json(&shared.endpoint, ws, i, now))
        .collect();
    let mut body = json!({"value": items});
    if skip + size < ws.instances.len() {
        body["nextLink"] = Value::from(format!(
            "{}{}/computes?api-version={v}&$skip={}",
            shared.endpoint,
            ws.id(),
            skip + size
        ));
    }
    json(StatusCode::OK, &body)
}

#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
pub(super) fn parse_body(req: &Req) -> Result<Value, Response> {
    if req.body.is_empty() {
        return Err(arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'The request body is empty.'.",
        ));
    }
    serde_json::from_slice::<Value>(&req.body).map_err(|e| {
        arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            format!(
                "The request content was invalid and could not be deserialized: '{e}. Path '', line {}, position {}.'.",
                e.line(),
                e.column()
            ),
        )
    })
}

fn bad(message: impl Into<String>, target: &str) -> Response {
    arm_error_target(StatusCode::BAD_REQUEST, "BadRequest", message, target)
}

/// `sshSettings` of an instance created without any (recorded: real-get-running-2024-12,
/// with `adminPublicKey` null when no key was given as in py-ml-stop-start-2022-10).
pub(super) fn default_ssh_settings() -> Value {
    json!({"sshPublicAccess": "Disabled", "adminUserName": "azureuser", "sshPort": 50000, "adminPublicKey": null})
}

fn valid_compute_name(n: &str) -> bool {
    let len_ok = (3..=24).contains(&n.len());
    let first_ok = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let chars_ok = n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    len_ok && first_ok && chars_ok && !n.ends_with('-')
}

/// The headers of a 202 (or a create's 201): only `Azure-AsyncOperation`, a signed status
/// URL; no `Location`, no `Retry-After` (py-ml-stop-2024-12-signed-ao.excerpt.json: stop and
/// DELETE; py-ml-stop-start-2022-10.excerpt.json: stop, start and DELETE;
/// cli-ml-ci-with-schedules-2023-01.excerpt.json: PUT 201).
fn lro_headers(shared: &Shared, r: &mut Response, sub: &str, loc: &str, id: &str, v: &str) {
    let path =
        format!("/subscriptions/{sub}/providers/{NS}/locations/{loc}/computeOperationsStatus/{id}");
    let url = shared
        .signer
        .url(&shared.endpoint, &path, v, shared.clock.now());
    set_header(r, "azure-asyncoperation", &url);
}

/// A checked PUT body: everything a create or an update of a compute instance reads.
struct PutBody {
    /// `properties.properties` (null when absent).
    inner_props: Value,
    tags: Option<std::collections::BTreeMap<String, String>>,
    idle: Option<String>,
    schedules: Option<Value>,
    description: Option<String>,
}

/// A PUT of a compute instance: the body checked first, then an update of the instance if
/// it exists, else a create.
fn put(
    shared: &Shared,
    inner: &mut Inner,
    req: &Req,
    wi: usize,
    idx: usize,
    v: &str,
    now: Timestamp,
) -> Response {
    let body = match put_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = req.segs[9].clone();
    match inner.workspaces[wi].find(&name) {
        Some(ii) => update(shared, inner, wi, ii, name, body, v, now),
        None => create(shared, inner, wi, idx, name, body, v, now),
    }
}

/// Check a PUT body the same way for a create and an update, before anything changes:
/// a compute instance's `properties`, string tags, a valid idle shutdown and schedules.
#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
fn put_body(req: &Req) -> Result<PutBody, Response> {
    let body = parse_body(req)?;
    let Some(props) = body.get("properties").filter(|p| p.is_object()) else {
        return Err(bad(
            "The request body must contain 'properties'.",
            "properties",
        ));
    };
    match props.get("computeType").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("ComputeInstance") => {}
        Some(t) => {
            return Err(bad(
                format!(
                    "Compute type '{t}' is not supported by the emulator; only 'ComputeInstance' is."
                ),
                "properties.computeType",
            ));
        }
        None => {
            return Err(bad(
                "The property 'computeType' is required.",
                "properties.computeType",
            ));
        }
    }
    let inner_props = props.get("properties").cloned().unwrap_or(Value::Null);
    if !inner_props.is_object() && !inner_props.is_null() {
        return Err(bad(
            "'properties.properties' must be an object.",
            "properties.properties",
        ));
    }
    let tags = put_tags(body.get("tags"))?;
    let idle = inner_props
        .get("idleTimeBeforeShutdown")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(i) = &idle {
        check_idle(i)?;
    }
    let schedules = match inner_props.get("schedules").filter(|s| !s.is_null()) {
        None => None,
        Some(s) => {
            let list = normalize_schedules(s.get("computeStartStop").unwrap_or(&Value::Null));
            check_schedules(&list)?;
            Some(json!({"computeStartStop": list}))
        }
    };
    let description = props
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(PutBody {
        inner_props,
        tags,
        idle,
        schedules,
        description,
    })
}

/// A PUT's `tags`: absent or null is none, else an object of strings (ARM tags are).
#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
fn put_tags(
    tags: Option<&Value>,
) -> Result<Option<std::collections::BTreeMap<String, String>>, Response> {
    match tags {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            let mut t = std::collections::BTreeMap::new();
            for (k, val) in m {
                match val.as_str() {
                    Some(s) => {
                        t.insert(k.clone(), s.to_owned());
                    }
                    None => return Err(bad(format!("Tag '{k}' must be a string."), "tags")),
                }
            }
            Ok(Some(t))
        }
        Some(_) => Err(bad("'tags' must be an object.", "tags")),
    }
}

/// A PUT of an existing instance: its settings replaced in place, answered as Azure
/// answers an update (201 and an operation that is already done).
#[expect(
    clippy::too_many_arguments,
    reason = "the one update path of the PUT handler, whose arguments it passes on"
)]
fn update(
    shared: &Shared,
    inner: &mut Inner,
    wi: usize,
    ii: usize,
    name: String,
    body: PutBody,
    v: &str,
    now: Timestamp,
) -> Response {
    let location = inner.workspaces[wi].spec.location.clone();
    let sub = inner.workspaces[wi].spec.subscription_id.clone();
    let inst = &mut inner.workspaces[wi].instances[ii];
    if let Some(p) = &inst.machine.pending
        && p.kind == OpKind::Delete
    {
        return arm_error(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Compute '{}' is being deleted; it cannot be updated.",
                inst.name
            ),
        );
    }
    // A PUT replaces: what it leaves out is reset (the ML CLI 2.39.0 changelog fixes
    // "compute update which caused Enable SSO property to reset"), so a client that
    // changes one setting must send the compute whole, as `az ml compute update` does.
    inst.tags = body.tags.unwrap_or_default();
    inst.description = body.description;
    inst.idle_time_before_shutdown = body.idle;
    inst.schedules = body.schedules;
    inst.refresh_native(&shared.fleet, now);
    inst.modified_on = now;
    // Recorded answer to a PUT of an existing compute (an AmlCompute: no recording shows
    // one of an instance): 201 with `Azure-AsyncOperation`, one poll to `Succeeded`
    // (azure-cli-extensions test_compute_aml.yaml, commit cfc11d8e). The settings take
    // effect at once and the operation is done at once: an assumption.
    let id = uuid::Uuid::new_v4().to_string();
    inner.ops.insert(
        id.clone(),
        OpRecord {
            // Only named in a failure's text, and an update never fails here.
            kind: OpKind::Create,
            started: now,
            ends: now,
            fails: false,
            workspace: wi,
            instance: name,
            location: location.clone(),
            error: None,
        },
    );
    let ws = &inner.workspaces[wi];
    let mut r = json(
        StatusCode::CREATED,
        &instance_json(&shared.endpoint, ws, &ws.instances[ii], now),
    );
    lro_headers(shared, &mut r, &sub, &location, &id, v);
    r
}

/// A PUT of a new instance: a valid name and a VM size, then an instance that is
/// `Creating` for the fleet's create time (and may fail, by the fault rate).
#[expect(
    clippy::too_many_arguments,
    reason = "the one create path of the PUT handler, whose arguments it passes on"
)]
fn create(
    shared: &Shared,
    inner: &mut Inner,
    wi: usize,
    idx: usize,
    name: String,
    body: PutBody,
    v: &str,
    now: Timestamp,
) -> Response {
    let location = inner.workspaces[wi].spec.location.clone();
    let sub = inner.workspaces[wi].spec.subscription_id.clone();
    if !valid_compute_name(&name) {
        return bad(
            format!(
                "Compute name '{name}' is invalid: use 3 to 24 letters, digits or hyphens, starting with a letter and not ending with a hyphen."
            ),
            "computeName",
        );
    }
    let inner_props = &body.inner_props;
    let Some(vm_size) = inner_props.get("vmSize").and_then(Value::as_str) else {
        return bad(
            "The property 'vmSize' is required for a ComputeInstance.",
            "properties.properties.vmSize",
        );
    };
    let took = duration_of(&shared.fleet, OpKind::Create);
    let fails = {
        let rate = inner.faults.lro_fail_rate;
        chance(inner, rate)
    };
    let id = uuid::Uuid::new_v4().to_string();
    let p = &shared.fleet.principals[idx];
    // Null unless the request names an assigned user: the recorded instances were created
    // without one and show null (real-get-running-2024-12.body.json).
    let personal = inner_props
        .get("personalComputeInstanceSettings")
        .filter(|s| !s.is_null())
        .cloned();
    let private_ip = inner.alloc_ip();
    let mut inst = Instance {
        name: name.clone(),
        vm_size: vm_size.to_owned(),
        tags: body.tags.unwrap_or_default(),
        description: body.description,
        idle_time_before_shutdown: body.idle,
        schedules: body.schedules,
        ssh_settings: ssh_settings(inner_props),
        subnet: inner_props.get("subnet").filter(|s| !s.is_null()).cloned(),
        personal,
        // The REST spec's default is "Shared"; Azure's own spelling whatever case came in.
        sharing_policy: match inner_props
            .get("applicationSharingPolicy")
            .and_then(Value::as_str)
        {
            Some(x) if x.eq_ignore_ascii_case("Personal") => "Personal".to_owned(),
            _ => "Shared".to_owned(),
        },
        created_by: CreatedBy {
            user_org_id: shared.fleet.tenant_id.clone(),
            user_id: p.object_id.clone(),
        },
        created_on: now,
        modified_on: now,
        private_ip,
        // Kept only to be echoed: setup scripts are not run (assumption: Azure shows them
        // back on GET as sent). Kinder than Azure: nothing is checked — not the 4,096
        // characters of inline `scriptData` a public note reports Azure refuses beyond
        // (lightsout's `azure::create::INLINE_SCRIPT_LIMIT`), not the timeout format; a
        // value that is not an object is dropped.
        setup_scripts: inner_props
            .get("setupScripts")
            .filter(|s| s.is_object())
            .cloned(),
        machine: Machine::creating(now, took, id.clone(), fails),
    };
    inst.refresh_native(&shared.fleet, now);
    inner.ops.insert(
        id.clone(),
        OpRecord {
            kind: OpKind::Create,
            started: now,
            ends: super::machine::add(now, took),
            fails,
            workspace: wi,
            instance: name.clone(),
            location: location.clone(),
            error: None,
        },
    );
    inner.workspaces[wi].instances.push(inst);
    let ws = &inner.workspaces[wi];
    let Some(ii) = ws.find(&name) else {
        return empty(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let mut r = json(
        StatusCode::CREATED,
        &instance_json(&shared.endpoint, ws, &ws.instances[ii], now),
    );
    lro_headers(shared, &mut r, &sub, &location, &id, v);
    r
}

/// A new instance's `sshSettings`: the request's, with what it leaves out filled in as
/// Azure fills it, else the defaults.
fn ssh_settings(inner_props: &Value) -> Value {
    inner_props
        .get("sshSettings")
        .filter(|s| s.is_object())
        .cloned()
        .map(|mut s| {
            if s.get("adminUserName").is_none() {
                s["adminUserName"] = Value::from("azureuser");
            }
            if s.get("sshPort").is_none() {
                s["sshPort"] = Value::from(50000);
            }
            if s.get("adminPublicKey").is_none() {
                s["adminPublicKey"] = Value::Null;
            }
            s
        })
        .unwrap_or_else(default_ssh_settings)
}

#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
fn check_idle(i: &str) -> Result<Duration, Response> {
    match iso8601::parse_duration(i) {
        Some(d) if (MIN_IDLE..=MAX_IDLE).contains(&d) => Ok(d),
        Some(_) => Err(bad(
            format!(
                "idleTimeBeforeShutdown '{i}' is out of range: it must be between PT15M and P3D."
            ),
            "idleTimeBeforeShutdown",
        )),
        None => Err(bad(
            format!("idleTimeBeforeShutdown '{i}' is not an ISO 8601 duration such as 'PT60M'."),
            "idleTimeBeforeShutdown",
        )),
    }
}

/// Enum values of a schedule in Azure's spelling, whatever case they came in: Azure accepted
/// `stop`, `start`, `week`, `monday` and returned `Stop`, `Start`, `Week`, `Monday`, each
/// entry with an `id`, `provisioningStatus: "Completed"` and the unused trigger as null
/// (cli-ml-ci-with-schedules-2023-01.excerpt.json). Values it does not know stay as given,
/// for [`check_schedules`] to refuse. A non-array comes back unchanged.
fn normalize_schedules(list: &Value) -> Value {
    const ACTIONS: &[&str] = &["Start", "Stop"];
    const TRIGGERS: &[&str] = &["Recurrence", "Cron"];
    const STATUSES: &[&str] = &["Enabled", "Disabled"];
    // ComputeRecurrenceFrequency and ComputeWeekDay of the REST spec.
    const FREQUENCIES: &[&str] = &["Minute", "Hour", "Day", "Week", "Month"];
    const DAYS: &[&str] = &[
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    fn canon(v: &mut Value, key: &str, allowed: &[&str]) {
        if let Some(x) = v.get(key).and_then(Value::as_str)
            && let Some(c) = allowed.iter().find(|a| a.eq_ignore_ascii_case(x))
        {
            v[key] = Value::from(*c);
        }
    }
    let Some(items) = list.as_array() else {
        return list.clone();
    };
    let out = items
        .iter()
        .map(|item| {
            let mut s = item.clone();
            if !s.is_object() {
                return s;
            }
            canon(&mut s, "action", ACTIONS);
            canon(&mut s, "triggerType", TRIGGERS);
            if s.get("status").is_none_or(Value::is_null) {
                s["status"] = Value::from("Enabled");
            }
            canon(&mut s, "status", STATUSES);
            if let Some(r) = s.get_mut("recurrence").filter(|r| r.is_object()) {
                canon(r, "frequency", FREQUENCIES);
                if let Some(days) = r
                    .get_mut("schedule")
                    .and_then(|x| x.get_mut("weekDays"))
                    .and_then(Value::as_array_mut)
                {
                    for d in days.iter_mut() {
                        if let Some(c) = d
                            .as_str()
                            .and_then(|x| DAYS.iter().find(|a| a.eq_ignore_ascii_case(x)))
                        {
                            *d = Value::from(*c);
                        }
                    }
                }
            }
            for k in ["cron", "recurrence"] {
                if s.get(k).is_none() {
                    s[k] = Value::Null;
                }
            }
            if !s.get("id").is_some_and(Value::is_string) {
                s["id"] = Value::from(uuid::Uuid::new_v4().to_string());
            }
            s["provisioningStatus"] = Value::from("Completed");
            s
        })
        .collect();
    Value::Array(out)
}

#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
fn check_schedules(list: &Value) -> Result<(), Response> {
    let Some(items) = list.as_array() else {
        return Err(bad(
            "'computeStartStop' must be an array.",
            "computeStartStop",
        ));
    };
    for (i, s) in items.iter().enumerate() {
        let target = format!("computeStartStop[{i}]");
        if !s.is_object() {
            return Err(bad("Each schedule must be an object.", &target));
        }
        let action = s.get("action").and_then(Value::as_str);
        if !matches!(action, Some("Start" | "Stop")) {
            return Err(bad(
                "'action' must be 'Start' or 'Stop'.",
                &format!("{target}.action"),
            ));
        }
        let trigger = s.get("triggerType").and_then(Value::as_str);
        match trigger {
            Some("Recurrence") if s.get("recurrence").is_some_and(Value::is_object) => {}
            Some("Cron") if s.get("cron").is_some_and(Value::is_object) => {}
            _ => {
                return Err(bad(
                    "'triggerType' must be 'Recurrence' with a 'recurrence' object or 'Cron' with a 'cron' object.",
                    &format!("{target}.triggerType"),
                ));
            }
        }
        if let Some(st) = s.get("status")
            && !matches!(st.as_str(), Some("Enabled" | "Disabled"))
        {
            return Err(bad(
                "'status' must be 'Enabled' or 'Disabled'.",
                &format!("{target}.status"),
            ));
        }
        if let Err(message) = super::state::native_rule(s) {
            return Err(bad(message, &format!("{target}.cron")));
        }
    }
    if items.len() > MAX_SCHEDULES {
        return Err(bad(
            format!("At most {MAX_SCHEDULES} schedules are allowed per compute instance."),
            "computeStartStop",
        ));
    }
    Ok(())
}

fn delete(
    shared: &Shared,
    inner: &mut Inner,
    req: &Req,
    wi: usize,
    v: &str,
    now: Timestamp,
) -> Response {
    match req.q("underlyingResourceAction") {
        Some(a) if a.eq_ignore_ascii_case("Delete") || a.eq_ignore_ascii_case("Detach") => {}
        Some(a) => {
            return bad(
                format!(
                    "The value '{a}' of 'underlyingResourceAction' is invalid; use 'Delete' or 'Detach'."
                ),
                "underlyingResourceAction",
            );
        }
        None => {
            return bad(
                "The query parameter 'underlyingResourceAction' is required.",
                "underlyingResourceAction",
            );
        }
    }
    let Some(ii) = inner.workspaces[wi].find(&req.segs[9]) else {
        // ARM answers a DELETE of a missing resource with 204.
        return empty(StatusCode::NO_CONTENT);
    };
    begin_op(shared, inner, wi, ii, OpKind::Delete, v, now, true)
}

fn post(
    shared: &Shared,
    inner: &mut Inner,
    req: &Req,
    wi: usize,
    v: &str,
    now: Timestamp,
) -> Response {
    let ws = &inner.workspaces[wi];
    let Some(ii) = ws.find(&req.segs[9]) else {
        return not_found_resource(
            &format!("{NS}/workspaces/{}/computes/{}", ws.spec.name, req.segs[9]),
            &ws.spec.resource_group,
        );
    };
    let action = req.segs[10].to_ascii_lowercase();
    let kind = match action.as_str() {
        "start" => OpKind::Start,
        "stop" => OpKind::Stop,
        "restart" => OpKind::Restart,
        "updateidleshutdownsetting" => {
            let body = match parse_body(req) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let Some(i) = body.get("idleTimeBeforeShutdown").and_then(Value::as_str) else {
                return bad(
                    "The property 'idleTimeBeforeShutdown' is required.",
                    "idleTimeBeforeShutdown",
                );
            };
            if let Err(r) = check_idle(i) {
                return r;
            }
            let inst = &mut inner.workspaces[wi].instances[ii];
            inst.idle_time_before_shutdown = Some(i.to_owned());
            inst.refresh_native(&shared.fleet, now);
            inst.modified_on = now;
            return empty(StatusCode::OK);
        }
        _ => {
            let body = match parse_body(req) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let list = normalize_schedules(body.get("computeStartStop").unwrap_or(&Value::Null));
            if let Err(r) = check_schedules(&list) {
                return r;
            }
            let inst = &mut inner.workspaces[wi].instances[ii];
            inst.schedules = Some(json!({"computeStartStop": list}));
            inst.refresh_native(&shared.fleet, now);
            inst.modified_on = now;
            return empty(StatusCode::OK);
        }
    };
    let lro = v >= FIRST_LRO_ACTION_API;
    begin_op(shared, inner, wi, ii, kind, v, now, lro)
}

#[expect(
    clippy::too_many_arguments,
    reason = "internal helper with one purpose"
)]
fn begin_op(
    shared: &Shared,
    inner: &mut Inner,
    wi: usize,
    ii: usize,
    kind: OpKind,
    v: &str,
    now: Timestamp,
    lro: bool,
) -> Response {
    let took = duration_of(&shared.fleet, kind);
    let fails = {
        let rate = inner.faults.lro_fail_rate;
        chance(inner, rate)
    };
    let id = uuid::Uuid::new_v4().to_string();
    let location = inner.workspaces[wi].spec.location.clone();
    let sub = inner.workspaces[wi].spec.subscription_id.clone();
    let inst = &mut inner.workspaces[wi].instances[ii];
    let name = inst.name.clone();
    if let Err(refusal) = inst
        .machine
        .begin(kind, now, took, id.clone(), fails, Trigger::User)
    {
        // A long-running action in the wrong state is accepted, then its operation fails
        // with the refusal: clients reported `StartComputeInstanceOnlyAllowedInStoppedState`
        // as a failed long-running operation (microsoft/vscode-tools-for-ai#2096, #1100,
        // #2439; recorded/README.md). Whether ARM may also answer 400 at once is not shown by
        // any recording; older api-versions (200 answers) get the 400. A conflict with an
        // operation in progress stays a 409 (#2673 there).
        if let (true, Refusal::WrongState { wanted, current }) = (lro, &refusal) {
            let (code, message) = wrong_state(&name, *wanted, current);
            inner.ops.insert(
                id.clone(),
                OpRecord {
                    kind,
                    started: now,
                    ends: now,
                    fails: true,
                    workspace: wi,
                    instance: name,
                    location: location.clone(),
                    error: Some((code.to_owned(), message)),
                },
            );
            let mut r = empty(StatusCode::ACCEPTED);
            lro_headers(shared, &mut r, &sub, &location, &id, v);
            return r;
        }
        return refused(&name, kind, refusal);
    }
    inst.modified_on = now;
    inner.ops.insert(
        id.clone(),
        OpRecord {
            kind,
            started: now,
            ends: super::machine::add(now, took),
            fails,
            workspace: wi,
            instance: name,
            location: location.clone(),
            error: None,
        },
    );
    if !lro {
        return empty(StatusCode::OK);
    }
    let mut r = empty(StatusCode::ACCEPTED);
    lro_headers(shared, &mut r, &sub, &location, &id, v);
    r
}

/// The code and message of an action refused for the instance's state. Start's are as
/// clients reported them (microsoft/vscode-tools-for-ai#2096: "Start Azure ML Compute
/// Instance is only allowed when the instance {name} is in 'stopped' state"); stop's and
/// restart's are assumptions in the same form (no public evidence).
fn wrong_state(name: &str, wanted: OpKind, current: &str) -> (&'static str, String) {
    let (code, verb, needed) = match wanted {
        OpKind::Start => (
            "StartComputeInstanceOnlyAllowedInStoppedState",
            "Start",
            "stopped",
        ),
        OpKind::Stop => (
            "StopComputeInstanceOnlyAllowedInRunningState",
            "Stop",
            "running",
        ),
        OpKind::Restart => (
            "RestartComputeInstanceOnlyAllowedInRunningState",
            "Restart",
            "running",
        ),
        OpKind::Create | OpKind::Delete => {
            return (
                "BadRequest",
                format!("Compute instance '{name}' is in state '{current}'."),
            );
        }
    };
    (
        code,
        format!(
            "{verb} Azure ML Compute Instance is only allowed when the instance {name} is in '{needed}' state"
        ),
    )
}

fn refused(name: &str, kind: OpKind, r: Refusal) -> Response {
    match r {
        Refusal::Busy { running } => arm_error(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation '{}' cannot be performed on compute '{name}' because operation '{}' is in progress. Retry after it completes.",
                kind.name(),
                running.name()
            ),
        ),
        Refusal::WrongState { wanted, current } => {
            let (code, message) = wrong_state(name, wanted, current);
            arm_error(StatusCode::BAD_REQUEST, code, message)
        }
    }
}

/// `GET …/computeOperationsStatus/{id}?…`: the signed URL must come back verbatim; the body
/// is as recorded, `{"status":"InProgress"}` then `{"status":"Succeeded","percentComplete":100.0}`,
/// with no `Retry-After` (py-ml-stop-2024-12-signed-ao.excerpt.json,
/// py-ml-stop-start-2022-10.excerpt.json).
fn operation_status(shared: &Shared, req: &Req) -> Response {
    let raw_query = req.raw_query.as_deref().unwrap_or_default();
    if let Err(why) = shared.signer.verify(&req.path, raw_query) {
        // Assumption: no public recording shows ARM's answer to an altered signed URL.
        let detail = match why {
            super::opurl::Rejected::NotVerbatim => {
                "is not the URL the service returned (parameters missing, reordered or re-encoded)"
            }
            super::opurl::Rejected::BadSignature => "has a signature that does not match",
        };
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidAsyncOperationSignature",
            format!(
                "The operation status URL {detail}. Poll the Azure-AsyncOperation URL exactly as returned."
            ),
        );
    }
    let id = req.segs[7].to_ascii_lowercase();
    let now = shared.clock.now();
    let mut inner = shared.lock();
    inner.settle(now);
    let Some(op) = inner.ops.get(&id).cloned() else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            format!("The operation '{}' could not be found.", req.segs[7]),
        );
    };
    let body = match op_status(op.ends, op.fails, now) {
        OpStatus::InProgress => json!({"status": "InProgress"}),
        OpStatus::Succeeded => json!({"status": "Succeeded", "percentComplete": 100.0}),
        // Assumption: no recording holds a failed compute operation; this is ARM's
        // documented status-resource form (status plus an error object).
        OpStatus::Failed if op.error.is_some() => {
            let (code, message) = op.error.clone().unwrap_or_default();
            json!({"status": "Failed", "error": {"code": code, "message": message}})
        }
        OpStatus::Failed => json!({
            "status": "Failed",
            "error": {
                "code": format!("{}Failed", op.kind.name()),
                "message": format!(
                    "The {} operation on compute '{}' failed: the emulator injected an operation failure.",
                    op.kind.name().to_ascii_lowercase(),
                    op.instance
                ),
            },
        }),
    };
    json(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions() {
        for ok in ["2025-12-01", "2020-08-01", "2025-07-01-preview"] {
            assert!(valid_api_version(ok), "{ok}");
        }
        for bad in [
            "",
            "2025",
            "banana",
            "2025-13-01",
            "2025-12-01preview",
            "2025-12-01-",
        ] {
            assert!(!valid_api_version(bad), "{bad}");
        }
    }

    #[test]
    fn compute_names() {
        assert!(valid_compute_name("ci-alice"));
        assert!(!valid_compute_name("1abc"));
        assert!(!valid_compute_name("ab"));
        assert!(!valid_compute_name("ab_c"));
    }
}
