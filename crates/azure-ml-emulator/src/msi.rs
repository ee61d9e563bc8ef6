//! The managed-identity endpoint of an Azure ML compute instance (`MSI_ENDPOINT`,
//! api-version 2017-09-01, header `secret`), served at `GET /MSI/auth` for the fleet's
//! `[[instance_identity]]` entries.
//!
//! Evidence (lightsout's docs, AGENT.md section 2): the path `/MSI/auth` on 127.0.0.1:46808
//! is what a real instance's `MSI_ENDPOINT` named [R4]; the query (`api-version=2017-09-01`,
//! `resource`, `clientid` — not `client_id`) and the `secret` header are what MSAL.NET
//! (`MachineLearningManagedIdentitySource.cs`), MSAL Python (`_obtain_token_on_machine_learning`)
//! and azure-identity's `azure_ml.py` send [R5][R6][R7]; the answer `{access_token,
//! expires_on, resource, token_type}` is what they read, with `expires_on` an integer as
//! azure-identity's comment says Azure ML returns it [R7]. Microsoft's own stand-in,
//! `mock-msi.py` in Azure/azureml-examples (setup-ci/security-scanner/tests), answers every
//! GET on 127.0.0.1:46808 with `{"access_token": …}` and checks nothing.
//!
//! Assumptions (UNVERIFIED in every source: MSAL marks the error path "TODO: To be tested"):
//! a missing or wrong `secret` gets 401 `{"error": "unauthorized", …}`; a missing
//! `api-version` or `resource`, another api-version or an unknown `clientid` gets 400 in the
//! shape of the emulator's other managed-identity errors; any method but GET gets 405. No
//! answer repeats the secret. Served on the emulator's https listener, where a real instance
//! serves plain http on 127.0.0.1:46808, so a client's http-on-loopback path is not exercised.
//!
//! Tokens are the emulator's usual JWT-shaped tokens (`auth::issue`): `aud` = the resource,
//! `iss` = `https://sts.windows.net/{tenant}/` (a prefix Azurite's `--oauth basic` accepts),
//! `iat`/`nbf`/`exp` on the wall clock.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::auth::issue;
use super::http::{Req, json};
use super::state::Shared;

/// The only api-version real clients send to this endpoint [R5][R6][R7].
pub const API_VERSION: &str = "2017-09-01";

/// Whether `req` is for `/MSI/auth`.
pub fn is_msi_path(req: &Req) -> bool {
    req.segs.len() == 2
        && req.segs[0].eq_ignore_ascii_case("msi")
        && req.segs[1].eq_ignore_ascii_case("auth")
}

/// Serves `/MSI/auth`: the response and the principal a token was issued to, if any.
pub fn handle(shared: &Shared, req: &Req) -> (Response, Option<usize>) {
    let err = |status: StatusCode, error: &str, desc: &str| {
        (
            json(status, &json!({"error": error, "error_description": desc})),
            None,
        )
    };
    if req.method != axum::http::Method::GET {
        return err(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "Only GET is served",
        );
    }
    // The secret selects the instance; constant-time comparison is not needed in a test
    // emulator, but the secret is never echoed.
    let Some(secret) = req.header("secret").filter(|s| !s.is_empty()) else {
        return err(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Required header 'secret' not specified",
        );
    };
    let ids: Vec<_> = shared
        .fleet
        .instance_identities
        .iter()
        .filter(|i| i.secret == secret)
        .collect();
    if ids.is_empty() {
        return err(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "The 'secret' header does not match this instance",
        );
    }
    match req.q("api-version") {
        None => {
            return err(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required query variable 'api-version' is missing",
            );
        }
        Some(v) if v != API_VERSION => {
            return err(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Unsupported api-version (this endpoint serves 2017-09-01)",
            );
        }
        Some(_) => {}
    }
    let Some(resource) = req.q("resource").filter(|r| !r.is_empty()) else {
        return err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    // No clientid: the instance's first identity (its system-assigned one, by fleet order).
    // Assumption: MSAL Python and azure-identity send no clientid for a system-assigned
    // identity [R6][R7]; which identity Azure then picks is not shown anywhere.
    let chosen = match req.q("clientid") {
        None => ids.first().copied(),
        Some(c) => ids.iter().copied().find(|i| {
            shared.fleet.principals[i.principal]
                .client_id
                .eq_ignore_ascii_case(c)
        }),
    };
    let Some(id) = chosen else {
        return err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    };
    let now = shared.clock.wall();
    let (token, expires_in) = issue(shared, id.principal, resource, now);
    let body = json!({
        "access_token": token,
        "expires_on": now.as_second() + expires_in + 1,
        "resource": resource,
        "token_type": "Bearer",
    });
    (json(StatusCode::OK, &body), Some(id.principal))
}
