//! Emulated Entra ID: the v2.0 token endpoint (client credentials with a secret or a
//! client assertion), OpenID discovery, and the managed-identity endpoints (IMDS and
//! App Service forms). Also checks bearer tokens for the other services.
//!
//! Tokens are JWT-shaped but the emulator does not sign them: it remembers every token it
//! issued and accepts only those. Expiry is judged on the wall clock, as clients judge it.
//! Secrets and tokens are never logged.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use serde_json::{Value, json};

use super::fleet::Principal;
use super::http::{Bearer, Req, json, set_header};
use super::state::{IssuedToken, Shared};

/// The assertion type of the JWT-bearer client-credentials flow.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The resource ARM tokens are for, when a request names none.
const ARM_RESOURCE: &str = "https://management.azure.com/";

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// Not a bearer token, or not one the emulator issued (or revoked).
    Invalid,
    /// Issued but expired.
    Expired(Timestamp),
}

/// Checks the request's bearer token; `Ok(principal index)`.
pub fn authenticate(shared: &Shared, req: &Req) -> Result<usize, AuthFailure> {
    let tok = match req.bearer() {
        Bearer::Token(t) => t,
        Bearer::Missing => return Err(AuthFailure::Missing),
        Bearer::Malformed => return Err(AuthFailure::Invalid),
    };
    let inner = shared.lock();
    let issued = inner.tokens.get(tok).ok_or(AuthFailure::Invalid)?;
    if issued.expires <= shared.clock.wall() {
        return Err(AuthFailure::Expired(issued.expires));
    }
    Ok(issued.principal)
}

/// The ARM 401 for a failed authentication, with its `WWW-Authenticate` challenge.
pub fn arm_unauthorized(shared: &Shared, f: AuthFailure, now: Timestamp) -> Response {
    let (code, message, desc) = match f {
        AuthFailure::Missing => (
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".to_owned(),
            "The authentication failed because of missing 'Authorization' header.",
        ),
        AuthFailure::Invalid => (
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format or the access token is not valid.".to_owned(),
            "The access token is invalid.",
        ),
        AuthFailure::Expired(at) => (
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                at.strftime("%-m/%-d/%Y %-I:%M:%S %p"),
                now.strftime("%-m/%-d/%Y %-I:%M:%S %p"),
            ),
            "The access token has expired.",
        ),
    };
    let mut r = json(
        StatusCode::UNAUTHORIZED,
        &json!({"error": {"code": code, "message": message}}),
    );
    let challenge = format!(
        "Bearer authorization_uri=\"{}/{}\", error=\"invalid_token\", error_description=\"{desc}\"",
        shared.endpoint, shared.fleet.tenant_id
    );
    set_header(&mut r, "www-authenticate", &challenge);
    r
}

/// Whether `segs` is an Entra ID path this module serves.
pub fn is_entra_path(req: &Req) -> bool {
    let s: Vec<String> = req.segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let s: Vec<&str> = s.iter().map(String::as_str).collect();
    matches!(
        s.as_slice(),
        [_, "oauth2", "v2.0", "token"]
            | [_, "oauth2", "token"]
            | [_, "v2.0", ".well-known", "openid-configuration"]
            | [_, ".well-known", "openid-configuration"]
            | ["common", "discovery", "instance"]
            | ["metadata", "identity", "oauth2", "token"]
            | ["msi", "token"]
    )
}

/// Serves an Entra ID or managed-identity request. Returns the response and the principal
/// a token was issued to, if any.
pub fn handle(shared: &Shared, req: &Req) -> (Response, Option<usize>) {
    let s: Vec<String> = req.segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let s: Vec<&str> = s.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["metadata", "identity", "oauth2", "token"] => managed_identity(shared, req, true),
        ["msi", "token"] => managed_identity(shared, req, false),
        ["common", "discovery", "instance"] => (instance_discovery(shared, req), None),
        [_, "oauth2", "v2.0", "token"] | [_, "oauth2", "token"] => token(shared, req),
        _ => (openid_configuration(shared, req), None),
    }
}

fn aad_error(
    status: StatusCode,
    error: &str,
    code: u32,
    description: &str,
    now: Timestamp,
) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    let corr = uuid::Uuid::new_v4().to_string();
    json(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {corr} Timestamp: {}Z",
                now.strftime("%Y-%m-%d %H:%M:%S")
            ),
            "error_codes": [code],
            "timestamp": format!("{}Z", now.strftime("%Y-%m-%d %H:%M:%S")),
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

fn token(shared: &Shared, req: &Req) -> (Response, Option<usize>) {
    let now = shared.clock.wall();
    match authorize(shared, req, now) {
        Ok((idx, resource)) => (token_response(shared, idx, &resource, now), Some(idx)),
        Err(refusal) => (refusal, None),
    }
}

/// The client-credentials checks, one step after another as Entra ID makes them (the first
/// failure answers): the endpoint, the form, the client, its credential. Returns the
/// principal and the resource the token is for.
#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
fn authorize(shared: &Shared, req: &Req, now: Timestamp) -> Result<(usize, String), Response> {
    check_endpoint(shared, req, now)?;
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let (client_id, scope) = client_credentials(&form, now)?;
    let Some((idx, principal)) = shared.principal(client_id) else {
        return Err(aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                shared.fleet.tenant_id
            ),
            now,
        ));
    };
    check_credential(&form, principal, client_id, now)?;
    let resource = scope
        .split(' ')
        .next()
        .unwrap_or(ARM_RESOURCE)
        .trim_end_matches(".default")
        .to_owned();
    Ok((idx, resource))
}

/// A form field's value (the first, if repeated).
fn field<'a>(form: &'a [(String, String)], k: &str) -> Option<&'a str> {
    form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// Entra ID refuses a token request that is not a POST to the fleet's tenant before it
/// reads the form.
#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
fn check_endpoint(shared: &Shared, req: &Req, now: Timestamp) -> Result<(), Response> {
    let tenant = req.segs.first().map(String::as_str).unwrap_or_default();
    if req.method != axum::http::Method::POST {
        return Err(aad_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
            now,
        ));
    }
    if !tenant.eq_ignore_ascii_case(&shared.fleet.tenant_id) {
        return Err(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
            now,
        ));
    }
    Ok(())
}

/// Only the client-credentials grant is served, and it needs a client id and a scope;
/// returns those two.
#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
fn client_credentials(form: &[(String, String)], now: Timestamp) -> Result<(&str, &str), Response> {
    let missing = |name: &str| {
        aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{name}'."),
            now,
        )
    };
    match field(form, "grant_type") {
        Some("client_credentials") => {}
        Some(other) => {
            return Err(aad_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
                now,
            ));
        }
        None => return Err(missing("grant_type")),
    }
    let client_id = field(form, "client_id").ok_or_else(|| missing("client_id"))?;
    let scope = field(form, "scope").ok_or_else(|| missing("scope"))?;
    Ok((client_id, scope))
}

/// The client proves who it is with its secret or, failing that, a JWT-bearer client
/// assertion (its form and claims; the signature is not verified).
#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
fn check_credential(
    form: &[(String, String)],
    principal: &Principal,
    client_id: &str,
    now: Timestamp,
) -> Result<(), Response> {
    if let Some(secret) = field(form, "client_secret") {
        if principal.client_secret.as_deref() != Some(secret) {
            return Err(aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
                now,
            ));
        }
        return Ok(());
    }
    let Some(assertion) = field(form, "client_assertion") else {
        return Err(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            now,
        ));
    };
    if field(form, "client_assertion_type") != Some(JWT_BEARER) {
        return Err(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            700024,
            "Client assertion type is missing or not supported. Expected 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
            now,
        ));
    }
    if let Err(why) = check_assertion(assertion, client_id, now) {
        return Err(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            50027,
            &format!("JWT token is invalid or malformed: {why}."),
            now,
        ));
    }
    Ok(())
}

/// The v2.0 token endpoint's answer: a fresh bearer token for `resource`.
fn token_response(shared: &Shared, idx: usize, resource: &str, now: Timestamp) -> Response {
    let (tok, expires_in) = issue(shared, idx, resource, now);
    json(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": tok,
        }),
    )
}

/// Checks a client assertion's form and claims (the signature is not verified: the emulator
/// has no registered certificates).
fn check_assertion(a: &str, client_id: &str, now: Timestamp) -> Result<(), &'static str> {
    let parts: Vec<&str> = a.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err("expected three base64url parts");
    }
    let decode = |p: &str| -> Result<Value, &'static str> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p.trim_end_matches('='))
            .map_err(|_| "a part is not base64url")?;
        serde_json::from_slice(&bytes).map_err(|_| "a part is not JSON")
    };
    let header = decode(parts[0])?;
    if header.get("alg").and_then(Value::as_str).is_none() {
        return Err("header has no alg");
    }
    let claims = decode(parts[1])?;
    for k in ["iss", "sub"] {
        if claims.get(k).and_then(Value::as_str) != Some(client_id) {
            return Err("iss and sub must be the client id");
        }
    }
    if claims.get("aud").is_none() {
        return Err("no aud claim");
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp > now.as_second() => Ok(()),
        Some(_) => Err("the assertion has expired"),
        None => Err("no exp claim"),
    }
}

/// Issues a token; returns it and its lifetime in seconds (one less than configured, as
/// Entra ID reports 3599 for an hour).
pub(crate) fn issue(shared: &Shared, idx: usize, resource: &str, now: Timestamp) -> (String, i64) {
    let lifetime = SignedDuration::try_from(shared.fleet.limits.token_lifetime)
        .unwrap_or(SignedDuration::from_hours(1));
    let expires = now.checked_add(lifetime).unwrap_or(Timestamp::MAX);
    let p = &shared.fleet.principals[idx];
    let tid = &shared.fleet.tenant_id;
    let header = json!({"typ": "JWT", "alg": "RS256", "x5t": "lightsout-emulator", "kid": "lightsout-emulator"});
    let mut sig = [0u8; 64];
    let mut uti = [0u8; 16];
    {
        let mut rng = rand::rng();
        rng.fill_bytes(&mut sig);
        rng.fill_bytes(&mut uti);
    }
    let claims = json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{tid}/"),
        "iat": now.as_second(),
        "nbf": now.as_second(),
        "exp": expires.as_second(),
        "appid": p.client_id,
        "appidacr": "1",
        "idp": format!("https://sts.windows.net/{tid}/"),
        "idtyp": "app",
        "oid": p.object_id,
        "sub": p.object_id,
        "tid": tid,
        "uti": URL_SAFE_NO_PAD.encode(uti),
        "ver": "1.0",
    });
    let tok = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(sig)
    );
    shared.lock().tokens.insert(
        tok.clone(),
        IssuedToken {
            principal: idx,
            expires,
            audience: resource.to_owned(),
        },
    );
    (tok, lifetime.as_secs() - 1)
}

fn managed_identity(shared: &Shared, req: &Req, imds: bool) -> (Response, Option<usize>) {
    let now = shared.clock.wall();
    let err = |status: StatusCode, error: &str, desc: &str| {
        json(status, &json!({"error": error, "error_description": desc}))
    };
    if imds {
        if !req
            .header("metadata")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return (
                err(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Required metadata header not specified",
                ),
                None,
            );
        }
    } else if req
        .header("x-identity-header")
        .is_none_or(|v| v.trim().is_empty())
    {
        return (
            err(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required header X-IDENTITY-HEADER not specified",
            ),
            None,
        );
    }
    if req.q("api-version").is_none() {
        return (
            err(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required query variable 'api-version' is missing",
            ),
            None,
        );
    }
    let Some(resource) = req.q("resource") else {
        return (
            err(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required query variable 'resource' is missing",
            ),
            None,
        );
    };
    let wanted = req
        .q("client_id")
        .or_else(|| req.q("clientid"))
        .or_else(|| req.q("principal_id"))
        .or_else(|| req.q("object_id"));
    let found = shared.fleet.principals.iter().enumerate().find(|(_, p)| {
        p.managed_identity
            && wanted.is_none_or(|w| {
                p.client_id.eq_ignore_ascii_case(w) || p.object_id.eq_ignore_ascii_case(w)
            })
    });
    let Some((idx, p)) = found else {
        return (
            err(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Identity not found",
            ),
            None,
        );
    };
    let (tok, expires_in) = issue(shared, idx, resource, now);
    let expires_on = (now.as_second() + expires_in + 1).to_string();
    let body = if imds {
        json!({
            "access_token": tok,
            "client_id": p.client_id,
            "expires_in": (expires_in + 1).to_string(),
            "expires_on": expires_on,
            "ext_expires_in": (expires_in + 1).to_string(),
            "not_before": now.as_second().to_string(),
            "resource": resource,
            "token_type": "Bearer",
        })
    } else {
        json!({
            "access_token": tok,
            "expires_on": expires_on,
            "resource": resource,
            "token_type": "Bearer",
            "client_id": p.client_id,
        })
    };
    (json(StatusCode::OK, &body), Some(idx))
}

fn openid_configuration(shared: &Shared, req: &Req) -> Response {
    let tenant = req.segs.first().cloned().unwrap_or_default();
    if !tenant.eq_ignore_ascii_case(&shared.fleet.tenant_id)
        && !["common", "organizations"].contains(&tenant.to_ascii_lowercase().as_str())
    {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found."),
            shared.clock.wall(),
        );
    }
    let e = &shared.endpoint;
    let t = &shared.fleet.tenant_id;
    json(
        StatusCode::OK,
        &json!({
            "token_endpoint": format!("{e}/{t}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{e}/{t}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{e}/{t}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": format!("{e}/oidc/userinfo"),
            "authorization_endpoint": format!("{e}/{t}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{e}/{t}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{e}/{t}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid"],
            "kerberos_endpoint": format!("{e}/{t}/kerberos"),
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }),
    )
}

fn instance_discovery(shared: &Shared, req: &Req) -> Response {
    let e = &shared.endpoint;
    let host = e.split("://").nth(1).unwrap_or(e);
    let t = req
        .q("authorization_endpoint")
        .and_then(|a| a.split('/').nth(3))
        .unwrap_or(&shared.fleet.tenant_id)
        .to_owned();
    json(
        StatusCode::OK,
        &json!({
            "tenant_discovery_endpoint": format!("{e}/{t}/v2.0/.well-known/openid-configuration"),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }),
    )
}
