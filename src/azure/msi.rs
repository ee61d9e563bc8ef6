//! The managed identity of an Azure ML compute instance: `MSI_ENDPOINT` + `MSI_SECRET`
//! (api-version 2017-09-01, header `secret`), which azure_identity refuses ("Azure ML managed
//! identity isn't supported"; AGENT.md section 2).
//!
//! The protocol is de facto ("Could not find protocol docs", MSAL's maintainers); this follows
//! what Microsoft's clients send and read (AGENT.md section 2.1):
//! - `GET {MSI_ENDPOINT}?api-version=2017-09-01&resource=R&clientid=C`, header `secret`, plus
//!   `Metadata: true` as MSAL.NET sends it ([R5] `MachineLearningManagedIdentitySource.cs`);
//!   `clientid`, not `client_id`: "Workaround for a known bug in Azure ML 2017 API" ([R6]
//!   MSAL Python `_obtain_token_on_machine_learning`);
//! - the client id is the caller's (a user-assigned identity, by client id only [R5]), else
//!   `DEFAULT_IDENTITY_CLIENT_ID` (the system-assigned one, "always set" [R5]), else omitted;
//! - the answer is `{access_token, expires_on, resource, token_type}`, `expires_on` epoch
//!   seconds as a string or an integer ([R6] `int(payload["expires_on"])`; [R7] azure-identity
//!   `azure_ml.py`: Azure ML "returns expires_on as an integer").
//!
//! Microsoft's stand-in for the endpoint is `mock-msi.py` (Azure/azureml-examples,
//! setup-ci/security-scanner/tests, @3d5ed46a), a GET-anything server on 127.0.0.1:46808.
//!
//! The endpoint is `http://127.0.0.1:PORT/MSI/auth` on a real instance: http is allowed on
//! loopback only, https anywhere. Tokens are cached per resource and refreshed 5 minutes
//! before they expire (azure_identity's rule); the lifetime is clamped to 24 hours as
//! `auth.rs` clamps `expires_in`. The secret never appears in `Debug`, errors or logs.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use serde::Deserialize;
use url::Url;

use super::auth::{MAX_TOKEN_LIFETIME_SECS, wants_fresh_token};

/// The api-version every client sends to this endpoint.
pub const API_VERSION: &str = "2017-09-01";

/// A cached token is used until this long before it expires.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Largest token answer read.
const MAX_BODY: usize = 64 * 1024;

/// A token credential for the compute instance's managed identity.
pub struct AmlMsiCredential {
    http: reqwest::Client,
    /// The endpoint, or why `MSI_ENDPOINT` cannot be used (reported by `get_token`).
    endpoint: Result<Url, String>,
    secret: String,
    client_id: Option<String>,
    /// Per resource: the token and its expiry (epoch seconds).
    cache: tokio::sync::Mutex<HashMap<String, (Secret, i64)>>,
}

impl fmt::Debug for AmlMsiCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmlMsiCredential")
            .field("endpoint", &self.endpoint.as_ref().map(Url::as_str))
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl AmlMsiCredential {
    /// From `MSI_ENDPOINT`, `MSI_SECRET` and the client id (`client_id`, else
    /// `DEFAULT_IDENTITY_CLIENT_ID`) read through `env`; `None` when the pair is absent.
    /// An unusable `MSI_ENDPOINT` (not a URL, http off loopback) still gives a credential,
    /// whose every `get_token` says what is wrong with it.
    pub fn from_env(
        http: reqwest::Client,
        client_id: Option<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<AmlMsiCredential> {
        let nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let endpoint = nonempty("MSI_ENDPOINT")?;
        let secret = nonempty("MSI_SECRET")?;
        let client_id = client_id
            .filter(|c| !c.trim().is_empty())
            .or_else(|| nonempty("DEFAULT_IDENTITY_CLIENT_ID"));
        Some(AmlMsiCredential {
            http,
            endpoint: check_endpoint(endpoint.trim()),
            secret,
            client_id,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The endpoint in use, when it is usable.
    pub fn endpoint(&self) -> Option<&Url> {
        self.endpoint.as_ref().ok()
    }

    /// The client id sent as `clientid`, if any.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// Asks the endpoint for a token for `resource`; returns it with its expiry (epoch s).
    async fn fetch(&self, resource: &str, now: i64) -> azure_core::Result<(Secret, i64)> {
        let endpoint = self
            .endpoint
            .as_ref()
            .map_err(|why| cred_err(why.clone()))?;
        let host = origin(endpoint);
        let mut url = endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", API_VERSION)
                .append_pair("resource", resource);
            if let Some(c) = &self.client_id {
                q.append_pair("clientid", c);
            }
        }
        let resp = self
            .http
            .get(url)
            .header("secret", &self.secret)
            .header("Metadata", "true")
            .send()
            .await
            .map_err(|e| {
                cred_err(format!(
                    "managed identity endpoint {host}: transport failure: {}",
                    chain(&e.without_url())
                ))
            })?;
        let status = resp.status().as_u16();
        let body = read_capped(resp).await;
        if status != 200 {
            let detail = body
                .as_deref()
                .and_then(|b| serde_json::from_slice::<ErrorBody>(b).ok())
                .map(|e| {
                    let text = [e.error, e.error_description]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": ");
                    // Never repeat the secret, whatever the endpoint echoes.
                    let text = text.replace(&self.secret, "<redacted>");
                    format!(": {}", text.chars().take(300).collect::<String>())
                })
                .unwrap_or_default();
            return Err(cred_err(format!(
                "managed identity endpoint {host}: HTTP {status} for resource {resource}{detail}"
            )));
        }
        let body = body.ok_or_else(|| {
            cred_err(format!(
                "managed identity endpoint {host}: answer unreadable or over {MAX_BODY} bytes"
            ))
        })?;
        let t: TokenBody = serde_json::from_slice(&body).map_err(|e| {
            cred_err(format!(
                // Only the category: serde's message may quote the token.
                "managed identity endpoint {host}: not a token answer ({:?} error)",
                e.classify()
            ))
        })?;
        let expires = match (
            t.expires_on.as_ref().and_then(epoch),
            t.expires_in.as_ref().and_then(epoch),
        ) {
            (Some(on), _) => on,
            (None, Some(secs)) => now.saturating_add(secs),
            (None, None) => {
                return Err(cred_err(format!(
                    "managed identity endpoint {host}: token answer without expires_on"
                )));
            }
        };
        // A lifetime outside 0..=24 h is garbage, not a reason to overflow or cache forever.
        let expires = expires.clamp(now, now.saturating_add(MAX_TOKEN_LIFETIME_SECS));
        if t.access_token.is_empty() {
            return Err(cred_err(format!(
                "managed identity endpoint {host}: empty access_token"
            )));
        }
        Ok((Secret::new(t.access_token), expires))
    }
}

#[async_trait]
impl TokenCredential for AmlMsiCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let [scope] = scopes else {
            return Err(cred_err(format!(
                "managed identity: exactly one scope, got {}",
                scopes.len()
            )));
        };
        // The 2017 API takes a resource, not a v2 scope.
        let resource = scope.trim_end_matches("/.default");
        let now = wall_seconds();
        let fresh = wants_fresh_token(options.as_ref());
        // One fetch at a time: concurrent callers wait for it instead of stampeding.
        let mut cache = self.cache.lock().await;
        if !fresh
            && let Some((tok, exp)) = cache.get(resource)
            && *exp - now > REFRESH_BEFORE_EXPIRY.as_secs() as i64
        {
            return Ok(access_token(tok.clone(), *exp));
        }
        let (tok, exp) = self.fetch(resource, now).await?;
        cache.insert(resource.to_owned(), (tok.clone(), exp));
        Ok(access_token(tok, exp))
    }
}

#[derive(Deserialize)]
struct TokenBody {
    #[serde(default)]
    access_token: String,
    expires_on: Option<serde_json::Value>,
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

/// Epoch seconds from a number or a numeric string.
fn epoch(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| {
            // Longer than i64 is still "far future", clamped by the caller.
            (!s.trim().is_empty() && s.trim().bytes().all(|b| b.is_ascii_digit()))
                .then_some(i64::MAX)
        }),
        _ => None,
    }
}

fn access_token(tok: Secret, expires: i64) -> AccessToken {
    let at = azure_core::time::OffsetDateTime::from_unix_timestamp(expires)
        .unwrap_or(azure_core::time::OffsetDateTime::UNIX_EPOCH);
    AccessToken::new(tok, at)
}

/// The wall clock in epoch seconds (token expiries are wall-clock instants): `azure` may not
/// name `clock` (tests/it/architecture.rs), so as `client.rs` does, from `SystemTime`.
fn wall_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `https://host[:port]`, or why `MSI_ENDPOINT` is refused.
fn check_endpoint(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("MSI_ENDPOINT is not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => return Err("MSI_ENDPOINT has no host".to_owned()),
    };
    match url.scheme() {
        "https" => Ok(url),
        // The real endpoint: http://127.0.0.1:46808/MSI/auth ([R4], mock-msi.py).
        "http" if loopback => Ok(url),
        "http" => Err(format!(
            "MSI_ENDPOINT {} uses http off loopback: the secret would cross the network in clear",
            origin(&url)
        )),
        other => Err(format!("MSI_ENDPOINT scheme {other} is not http(s)")),
    }
}

/// `scheme://host[:port]` (no path or query: a query could carry anything).
fn origin(url: &Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or("?"),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    )
}

/// The body, or `None` when unreadable or over [`MAX_BODY`].
async fn read_capped(mut resp: reqwest::Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_BODY {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// An error and its sources, `: `-joined (reqwest's own text is only "error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn cred_err(message: String) -> azure_core::Error {
    azure_core::Error::with_message(ErrorKind::Credential, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn cred(pairs: &[(&str, &str)], client_id: Option<&str>) -> Option<AmlMsiCredential> {
        AmlMsiCredential::from_env(
            reqwest::Client::new(),
            client_id.map(str::to_owned),
            &env_of(pairs),
        )
    }

    #[test]
    fn needs_both_variables() {
        assert!(cred(&[], None).is_none());
        assert!(cred(&[("MSI_ENDPOINT", "http://127.0.0.1:46808/MSI/auth")], None).is_none());
        assert!(cred(&[("MSI_SECRET", "s")], None).is_none());
        assert!(cred(&[("MSI_ENDPOINT", " "), ("MSI_SECRET", "s")], None).is_none());
    }

    #[test]
    fn client_id_argument_then_default_identity() {
        let env = [
            ("MSI_ENDPOINT", "http://127.0.0.1:46808/MSI/auth"),
            ("MSI_SECRET", "s"),
            ("DEFAULT_IDENTITY_CLIENT_ID", "sys"),
        ];
        assert_eq!(cred(&env, Some("uami")).unwrap().client_id(), Some("uami"));
        assert_eq!(cred(&env, None).unwrap().client_id(), Some("sys"));
        assert_eq!(cred(&env[..2], None).unwrap().client_id(), None);
    }

    #[test]
    fn http_only_on_loopback() {
        for ok in [
            "http://127.0.0.1:46808/MSI/auth",
            "http://[::1]:1/MSI/auth",
            "http://localhost:1/x",
            "https://msi.example.net/MSI/auth",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.4:46808/MSI/auth",
            "ftp://127.0.0.1/",
            "not a url",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn refused_endpoint_is_reported_and_secret_hidden() {
        let c = cred(
            &[
                ("MSI_ENDPOINT", "http://10.1.2.3:46808/MSI/auth"),
                ("MSI_SECRET", "hunter2-secret"),
            ],
            None,
        )
        .unwrap();
        let e = c
            .get_token(&["https://storage.azure.com/.default"], None)
            .await;
        let text = format!("{:?}", e.unwrap_err());
        assert!(text.contains("http off loopback"), "{text}");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn expiry_as_string_or_number() {
        assert_eq!(epoch(&serde_json::json!("1700000000")), Some(1_700_000_000));
        assert_eq!(
            epoch(&serde_json::json!(1_700_000_000)),
            Some(1_700_000_000)
        );
        assert_eq!(
            epoch(&serde_json::json!("99999999999999999999999")),
            Some(i64::MAX)
        );
        assert_eq!(epoch(&serde_json::json!("soon")), None);
        assert_eq!(epoch(&serde_json::json!(null)), None);
    }
}
