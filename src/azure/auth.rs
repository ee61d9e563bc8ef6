//! Authentication: the shared HTTP client and the Entra ID credential.
//!
//! - [`build_http_client`] builds the one `reqwest::Client` of the process (ARM calls and token
//!   requests), adding an optional extra trusted root (`ca_file`) to the system roots.
//! - [`build_credential`] turns [`AuthSettings`] into one long-lived `TokenCredential`. Every
//!   azure_identity credential gets our client as its transport and the configured authority
//!   host (`CloudConfiguration::Custom`), so sovereign clouds and a local https emulator work.
//!   `auto` tries, in order: client secret (when tenant, client id and secret are all available),
//!   workload identity (when `AZURE_FEDERATED_TOKEN_FILE` is set), managed identity, Azure CLI;
//!   it sticks to the first that yields a token and reports every failure if none does.
//!
//! # Forcing a fresh token after a 401
//!
//! azure_identity 1.0 caches tokens inside each credential until 5 minutes before expiry and
//! azure_core 1.1 offers no "bypass the cache" option. So the credential returned here is a
//! [`ChainCredential`] that owns *factories* for its credentials: when `get_token` is called with
//! [`force_refresh_options`] (a [`ForceRefresh`] marker in the request context), it drops its
//! credential instances and rebuilds them, and the new instance, with an empty cache, asks Entra
//! again. Rebuilds are rate-limited to one per [`MIN_REBUILD_INTERVAL`] so that many concurrent
//! 401s cost one refresh. Credentials that don't know the marker simply ignore it.
//!
//! Secrets are read only from `AZURE_CLIENT_SECRET` or the file named by `client_secret_file`
//! (relative names resolve under systemd's `$CREDENTIALS_DIRECTORY` when set); every `Debug`
//! that could reach one prints `<redacted>`. The environment is injected (`env`) for tests.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{ClientMethodOptions, ClientOptions, Context, HttpClient, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use tokio::time::Instant;
use url::Url;

use crate::engine::config::auth::{AuthSettings, CredentialKind};

/// Shortest time between two forced credential rebuilds.
pub const MIN_REBUILD_INTERVAL: Duration = Duration::from_secs(10);

/// Default connect timeout of [`build_http_client`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default whole-request timeout of [`build_http_client`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors building the HTTP client or the credential. Raised at start-up (config time).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A credential needs a tenant id and none was configured.
    #[error("credential {credential} needs a tenant id: set azure.tenant_id or AZURE_TENANT_ID")]
    MissingTenantId {
        /// The credential kind.
        credential: &'static str,
    },
    /// A credential needs a client id and none was configured.
    #[error("credential {credential} needs a client id: set azure.client_id or AZURE_CLIENT_ID")]
    MissingClientId {
        /// The credential kind.
        credential: &'static str,
    },
    /// `client_secret` without any secret source.
    #[error(
        "credential client_secret needs a secret: set AZURE_CLIENT_SECRET or azure.client_secret_file"
    )]
    MissingSecret,
    /// The secret file could not be read.
    #[error("could not read client secret file {path}")]
    SecretFile {
        /// The resolved path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The secret file can be read by its group or by others (ssh refuses such keys too).
    #[error(
        "client secret file {path} is readable by group or others (mode {mode:04o}); run chmod 600 on it"
    )]
    SecretFileMode {
        /// The resolved path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The secret file is empty.
    #[error("client secret file {path} is empty")]
    EmptySecretFile {
        /// The resolved path.
        path: PathBuf,
    },
    /// `workload_identity` without `AZURE_FEDERATED_TOKEN_FILE`.
    #[error("credential workload_identity needs AZURE_FEDERATED_TOKEN_FILE")]
    MissingFederatedTokenFile,
    /// The authority host is not https (azure_identity refuses anything else).
    #[error("authority host {url} must use https")]
    AuthorityHostNotHttps {
        /// The configured URL.
        url: String,
    },
    /// The extra CA file could not be read.
    #[error("could not read CA file {path}")]
    CaFileRead {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The extra CA file holds no usable certificate.
    #[error("CA file {path} is not usable: {reason}")]
    CaFileInvalid {
        /// The configured path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// reqwest refused to build the client.
    #[error("could not build the HTTP client")]
    HttpClient {
        /// The reqwest error.
        #[source]
        source: reqwest::Error,
    },
    /// azure_identity refused the credential's settings.
    #[error("could not set up credential {credential}")]
    Credential {
        /// The credential kind.
        credential: &'static str,
        /// The azure_identity error.
        #[source]
        source: azure_core::Error,
    },
}

impl AuthError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingTenantId { .. } => "missing_tenant_id",
            Self::MissingClientId { .. } => "missing_client_id",
            Self::MissingSecret => "missing_secret",
            Self::SecretFile { .. }
            | Self::EmptySecretFile { .. }
            | Self::SecretFileMode { .. } => "secret_file",
            Self::MissingFederatedTokenFile => "missing_federated_token_file",
            Self::AuthorityHostNotHttps { .. } => "authority_host",
            Self::CaFileRead { .. } | Self::CaFileInvalid { .. } => "ca_file",
            Self::HttpClient { .. } => "http_client",
            Self::Credential { .. } => "credential",
        }
    }

    /// Configuration errors are never fixed by retrying.
    pub fn is_retriable(&self) -> bool {
        false
    }

    /// Never set: these errors are not about server load.
    pub fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// Timeouts of the shared HTTP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// TCP + TLS connect.
    pub connect: Duration,
    /// Whole request, body included.
    pub request: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            request: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// `lightsout/{crate version}`: the User-Agent of every request (ARM, tokens, Jupyter).
pub fn default_user_agent() -> String {
    format!("lightsout/{}", env!("CARGO_PKG_VERSION"))
}

/// Builds the process-wide HTTP client: rustls with the system roots plus the certificates in
/// `ca_file` (PEM, one or more), the given timeouts and our User-Agent.
pub fn build_http_client(
    ca_file: Option<&Path>,
    timeouts: HttpTimeouts,
) -> Result<reqwest::Client, AuthError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .redirect(no_redirects())
        .user_agent(default_user_agent());
    if let Some(path) = ca_file {
        builder = builder.tls_certs_merge(ca_certs(path)?);
        // The certificates are only checked when the TLS config is built; blame the file.
        return builder.build().map_err(|e| AuthError::CaFileInvalid {
            path: path.to_owned(),
            reason: format!("rejected by the TLS stack ({e})"),
        });
    }
    builder
        .build()
        .map_err(|source| AuthError::HttpClient { source })
}

/// The certificates of a `ca_file` (PEM, one or more); none is an error.
pub fn ca_certs(path: &Path) -> Result<Vec<reqwest::Certificate>, AuthError> {
    let pem = std::fs::read(path).map_err(|source| AuthError::CaFileRead {
        path: path.to_owned(),
        source,
    })?;
    let certs =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| AuthError::CaFileInvalid {
            path: path.to_owned(),
            reason: format!("not a PEM certificate bundle ({e})"),
        })?;
    if certs.is_empty() {
        return Err(AuthError::CaFileInvalid {
            path: path.to_owned(),
            reason: "no PEM certificate found".to_owned(),
        });
    }
    Ok(certs)
}

/// The redirect policy of every client that carries a credential: never follow. A 307/308
/// re-sends the body (`client_secret=…`) and the headers to wherever the server points,
/// https → http included; the error says why instead of failing later with a bare 3xx.
pub fn no_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let to = attempt.url();
        let target = format!(
            "{}://{}{}",
            to.scheme(),
            to.host_str().unwrap_or("?"),
            to.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        attempt.error(RedirectRefused { target })
    })
}

/// The error a refused redirect carries (only the target's origin: a path or query could
/// hold anything).
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to follow a redirect to {target}: credentials are never sent on to another location"
)]
pub struct RedirectRefused {
    target: String,
}

/// A secret string whose `Debug` never shows it.
#[derive(Clone)]
struct SecretString(String);

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The marker that asks a [`ChainCredential`] for a token that is not from its cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForceRefresh;

/// Token request options carrying [`ForceRefresh`].
pub fn force_refresh_options() -> TokenRequestOptions<'static> {
    TokenRequestOptions {
        method_options: ClientMethodOptions {
            context: Context::new().with_value(ForceRefresh),
        },
    }
}

/// Whether `options` carry [`ForceRefresh`].
pub fn wants_fresh_token(options: Option<&TokenRequestOptions<'_>>) -> bool {
    options.is_some_and(|o| o.method_options.context.value::<ForceRefresh>().is_some())
}

/// One way to get a token, with what it needs to be (re)built.
#[derive(Debug, Clone)]
enum Source {
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: SecretString,
    },
    WorkloadIdentity {
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    ManagedIdentity {
        client_id: Option<String>,
    },
    AzureCli {
        tenant_id: Option<String>,
    },
    /// A ready-made credential (tests of the chain logic).
    #[cfg(test)]
    Fixed {
        name: &'static str,
        cred: Arc<dyn TokenCredential>,
    },
}

impl Source {
    fn name(&self) -> &'static str {
        match self {
            Source::ClientSecret { .. } => "client_secret",
            Source::WorkloadIdentity { .. } => "workload_identity",
            Source::ManagedIdentity { .. } => "managed_identity",
            Source::AzureCli { .. } => "azure_cli",
            #[cfg(test)]
            Source::Fixed { name, .. } => name,
        }
    }

    fn build(&self, ctx: &BuildContext) -> azure_core::Result<Arc<dyn TokenCredential>> {
        Ok(match self {
            Source::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => ClientSecretCredential::new(
                tenant_id,
                client_id.clone(),
                Secret::new(secret.0.clone()),
                Some(ClientSecretCredentialOptions {
                    client_options: ctx.client_options(),
                }),
            )?,
            Source::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions {
                    client_options: ctx.client_options(),
                },
                client_id: Some(client_id.clone()),
                tenant_id: Some(tenant_id.clone()),
                token_file_path: Some(token_file.clone()),
            }))?,
            Source::ManagedIdentity { client_id } => {
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    client_options: ctx.client_options(),
                }))?
            }
            Source::AzureCli { tenant_id } => {
                AzureCliCredential::new(Some(AzureCliCredentialOptions {
                    tenant_id: tenant_id.clone(),
                    ..AzureCliCredentialOptions::default()
                }))?
            }
            #[cfg(test)]
            Source::Fixed { cred, .. } => cred.clone(),
        })
    }
}

/// What every credential is built with: our HTTP client and the authority host.
struct BuildContext {
    http: reqwest::Client,
    authority_host: Url,
}

impl BuildContext {
    fn client_options(&self) -> ClientOptions {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = self
            .authority_host
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let http: Arc<dyn HttpClient> = Arc::new(IdentityTransport(self.http.clone()));
        ClientOptions {
            transport: Some(Transport::new(http)),
            cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
            ..ClientOptions::default()
        }
    }
}

/// Longest token lifetime we believe (`expires_in`): Entra issues 1 to 24 hours.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 24 * 3600;

/// Our client as azure_identity's transport, with two guards on what comes back:
///
/// - azure_core retries every I/O error, a refused redirect included (a minute of back-off for
///   an answer that will not change): a refused redirect becomes a final error, its reason
///   kept as the source;
/// - azure_identity adds `expires_in` to the clock unchecked, and `9223372036854775807`
///   panics: token lifetimes are clamped to `0..=`[`MAX_TOKEN_LIFETIME_SECS`] first.
#[derive(Debug)]
struct IdentityTransport(reqwest::Client);

#[async_trait::async_trait]
impl HttpClient for IdentityTransport {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        let response = self.0.execute_request(request).await.map_err(|e| {
            if redirect_refused(&e).is_some() {
                azure_core::Error::with_error(ErrorKind::Other, e, "redirect refused")
            } else {
                e
            }
        })?;
        let (status, headers, body) = response.deconstruct();
        let body = body.collect().await?;
        let body = clamp_token_lifetimes(&body).map_or(body, Into::into);
        Ok(azure_core::http::AsyncRawResponse::from_bytes(
            status, headers, body,
        ))
    }
}

/// A token response with `expires_in` (a number, or a string as managed identity sends it)
/// brought into `0..=MAX_TOKEN_LIFETIME_SECS`; `None` when nothing needed changing.
fn clamp_token_lifetimes(body: &[u8]) -> Option<Vec<u8>> {
    use serde_json::Value;
    let mut doc: serde_json::Map<String, Value> = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    for key in ["expires_in", "ext_expires_in", "refresh_in"] {
        let Some(v) = doc.get_mut(key) else { continue };
        let (n, as_string) = match v {
            Value::Number(n) => (n.as_f64()?, false),
            Value::String(s) => (s.trim().parse::<f64>().ok()?, true),
            _ => continue,
        };
        let clamped = n.clamp(0.0, MAX_TOKEN_LIFETIME_SECS as f64) as i64;
        if n.fract() != 0.0 || n != clamped as f64 {
            *v = if as_string {
                Value::String(clamped.to_string())
            } else {
                Value::from(clamped)
            };
            changed = true;
        }
    }
    changed.then(|| serde_json::to_vec(&doc).ok()).flatten()
}

/// An ordered list of credentials that uses the first one that works, and can rebuild its
/// credentials to bypass their token caches (see the module docs).
pub struct ChainCredential {
    sources: Vec<Source>,
    ctx: BuildContext,
    state: Mutex<ChainState>,
}

struct ChainState {
    /// Index of the source that last produced a token.
    selected: Option<usize>,
    /// Built credentials, by source index; `None` = build on next use.
    instances: Vec<Option<Arc<dyn TokenCredential>>>,
    /// When the instances were last dropped for a forced refresh.
    last_rebuild: Option<Instant>,
}

impl fmt::Debug for ChainCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let selected = self
            .state
            .lock()
            .map(|s| s.selected)
            .unwrap_or_else(|p| p.into_inner().selected);
        f.debug_struct("ChainCredential")
            .field("sources", &self.sources)
            .field("authority_host", &self.ctx.authority_host.as_str())
            .field("selected", &selected.map(|i| self.sources[i].name()))
            .finish_non_exhaustive()
    }
}

impl ChainCredential {
    fn new(sources: Vec<Source>, ctx: BuildContext) -> Self {
        let n = sources.len();
        ChainCredential {
            sources,
            ctx,
            state: Mutex::new(ChainState {
                selected: None,
                instances: vec![None; n],
                last_rebuild: None,
            }),
        }
    }

    /// Names of the sources, in the order they are tried.
    pub fn source_names(&self) -> Vec<&'static str> {
        self.sources.iter().map(Source::name).collect()
    }

    /// The source that last produced a token.
    pub fn selected(&self) -> Option<&'static str> {
        let state = self.lock();
        state.selected.map(|i| self.sources[i].name())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ChainState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn instance(&self, i: usize) -> azure_core::Result<Arc<dyn TokenCredential>> {
        let mut state = self.lock();
        if let Some(c) = &state.instances[i] {
            return Ok(c.clone());
        }
        let built = self.sources[i].build(&self.ctx)?;
        state.instances[i] = Some(built.clone());
        Ok(built)
    }

    /// Drops the built credentials so the next token comes from Entra, not a cache. Returns
    /// false when a rebuild happened less than [`MIN_REBUILD_INTERVAL`] ago (nothing done).
    pub fn invalidate(&self) -> bool {
        self.invalidate_at(Instant::now())
    }

    fn invalidate_at(&self, now: Instant) -> bool {
        let mut state = self.lock();
        if state
            .last_rebuild
            .is_some_and(|t| now.duration_since(t) < MIN_REBUILD_INTERVAL)
        {
            return false;
        }
        state.instances.iter_mut().for_each(|c| *c = None);
        state.last_rebuild = Some(now);
        true
    }
}

#[async_trait::async_trait]
impl TokenCredential for ChainCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        if wants_fresh_token(options.as_ref()) && self.invalidate() {
            tracing::debug!("dropping cached credentials to force a fresh token");
        }
        let selected = self.lock().selected;
        if let Some(i) = selected {
            let name = self.sources[i].name();
            let cred = self.instance(i).map_err(|e| wrap(name, e))?;
            return cred
                .get_token(scopes, options)
                .await
                .map_err(|e| wrap(name, e));
        }
        let mut failures = Vec::new();
        for (i, source) in self.sources.iter().enumerate() {
            let cred = match self.instance(i) {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{}: {}", source.name(), e));
                    continue;
                }
            };
            match cred.get_token(scopes, options.clone()).await {
                Ok(token) => {
                    self.lock().selected = Some(i);
                    tracing::debug!(credential = source.name(), "acquired an access token");
                    return Ok(token);
                }
                Err(e) => {
                    tracing::debug!(credential = source.name(), error = %crate::engine::text::chain(&e), "credential failed");
                    // azure_core's retry wording hides the cause; a refused redirect is one
                    // the operator must see.
                    let why = crate::engine::text::chain(&e);
                    match redirect_refused(&e) {
                        Some(r) => failures.push(format!("{}: {why} ({r})", source.name())),
                        None => failures.push(format!("{}: {why}", source.name())),
                    }
                }
            }
        }
        Err(azure_core::Error::with_message(
            ErrorKind::Credential,
            format!("no credential produced a token ({})", failures.join("; ")),
        ))
    }
}

/// The [`RedirectRefused`] somewhere in `e`'s chain of sources, if any.
fn redirect_refused<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a RedirectRefused> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<RedirectRefused>() {
            return Some(r);
        }
        next = err.source();
    }
    None
}

fn wrap(name: &'static str, e: azure_core::Error) -> azure_core::Error {
    azure_core::Error::with_error(
        ErrorKind::Credential,
        e,
        format!("credential {name} failed to get a token"),
    )
}

/// Builds the long-lived credential described by `settings`.
///
/// `http` becomes every credential's transport; `env` reads environment variables (production
/// passes `|k| std::env::var(k).ok()`). Explicit kinds are built eagerly, so bad settings fail
/// here; `auto` builds lazily, on first use.
pub fn build_credential(
    settings: &AuthSettings,
    http: reqwest::Client,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    build_chain(settings, http, env).map(|c| c as Arc<dyn TokenCredential>)
}

/// Like [`build_credential`], returning the concrete chain (to inspect sources or invalidate).
pub fn build_chain(
    settings: &AuthSettings,
    http: reqwest::Client,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<ChainCredential>, AuthError> {
    if settings.authority_host.scheme() != "https" {
        return Err(AuthError::AuthorityHostNotHttps {
            url: settings.authority_host.to_string(),
        });
    }
    let nonempty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let tenant = nonempty(
        settings
            .tenant_id
            .clone()
            .or_else(|| env("AZURE_TENANT_ID")),
    );
    let client = nonempty(
        settings
            .client_id
            .clone()
            .or_else(|| env("AZURE_CLIENT_ID")),
    );
    let token_file = nonempty(env("AZURE_FEDERATED_TOKEN_FILE")).map(PathBuf::from);

    let sources = match settings.credential {
        CredentialKind::ClientSecret => {
            const K: &str = "client_secret";
            vec![Source::ClientSecret {
                tenant_id: tenant.ok_or(AuthError::MissingTenantId { credential: K })?,
                client_id: client.ok_or(AuthError::MissingClientId { credential: K })?,
                secret: read_secret(settings, env)?.ok_or(AuthError::MissingSecret)?,
            }]
        }
        CredentialKind::WorkloadIdentity => {
            const K: &str = "workload_identity";
            vec![Source::WorkloadIdentity {
                token_file: token_file.ok_or(AuthError::MissingFederatedTokenFile)?,
                tenant_id: tenant.ok_or(AuthError::MissingTenantId { credential: K })?,
                client_id: client.ok_or(AuthError::MissingClientId { credential: K })?,
            }]
        }
        CredentialKind::ManagedIdentity => vec![Source::ManagedIdentity { client_id: client }],
        CredentialKind::AzureCli => vec![Source::AzureCli { tenant_id: tenant }],
        CredentialKind::Auto => {
            let mut v = Vec::new();
            let secret = read_secret(settings, env)?;
            if let (Some(t), Some(c), Some(s)) = (&tenant, &client, secret) {
                v.push(Source::ClientSecret {
                    tenant_id: t.clone(),
                    client_id: c.clone(),
                    secret: s,
                });
            }
            if let (Some(f), Some(t), Some(c)) = (&token_file, &tenant, &client) {
                v.push(Source::WorkloadIdentity {
                    tenant_id: t.clone(),
                    client_id: c.clone(),
                    token_file: f.clone(),
                });
            }
            v.push(Source::ManagedIdentity {
                client_id: client.clone(),
            });
            v.push(Source::AzureCli { tenant_id: tenant });
            v
        }
    };
    let chain = ChainCredential::new(
        sources,
        BuildContext {
            http,
            authority_host: settings.authority_host.clone(),
        },
    );
    if settings.credential != CredentialKind::Auto {
        chain.instance(0).map_err(|source| AuthError::Credential {
            credential: settings.credential.as_str(),
            source,
        })?;
    }
    Ok(Arc::new(chain))
}

/// The client secret: the configured file if any (explicit config wins), else
/// `AZURE_CLIENT_SECRET`. A trailing newline is trimmed.
fn read_secret(
    settings: &AuthSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SecretString>, AuthError> {
    if let Some(file) = &settings.client_secret_file {
        let path = crate::engine::config::auth::secret_file_path(file, env);
        let raw = std::fs::read_to_string(&path).map_err(|source| AuthError::SecretFile {
            path: path.clone(),
            source,
        })?;
        if let Some(mode) = crate::engine::config::auth::secret_file_mode_problem(&path, env)
            .map_err(|source| AuthError::SecretFile {
                path: path.clone(),
                source,
            })?
        {
            return Err(AuthError::SecretFileMode { path, mode });
        }
        let secret = raw.trim_end_matches(['\n', '\r']);
        if secret.trim().is_empty() {
            return Err(AuthError::EmptySecretFile { path });
        }
        return Ok(Some(SecretString(secret.to_owned())));
    }
    Ok(env("AZURE_CLIENT_SECRET")
        .filter(|s| !s.is_empty())
        .map(SecretString))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::auth::Cloud;
    use std::collections::HashMap;

    fn settings(kind: CredentialKind) -> AuthSettings {
        AuthSettings {
            credential: kind,
            tenant_id: None,
            client_id: None,
            client_secret_file: None,
            authority_host: Url::parse(Cloud::Public.authority_host()).unwrap(),
            ca_file: None,
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    /// A secret file as it must be: mode 0600.
    fn write_private(path: &Path, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn token_lifetimes_are_clamped() {
        let clamp = |s: &str| {
            clamp_token_lifetimes(s.as_bytes())
                .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
        };
        let max = MAX_TOKEN_LIFETIME_SECS;
        let got = clamp(r#"{"access_token":"t","expires_in":9223372036854775807}"#).unwrap();
        assert_eq!(got["expires_in"], max);
        assert_eq!(got["access_token"], "t");
        let got = clamp(r#"{"expires_in":"99999999999999999999"}"#).unwrap();
        assert_eq!(got["expires_in"], max.to_string());
        let got = clamp(r#"{"expires_in":-9223372036854775808}"#).unwrap();
        assert_eq!(got["expires_in"], 0);
        assert!(clamp(r#"{"access_token":"t","expires_in":3599}"#).is_none());
        assert!(clamp(r#"{"expires_in":"3599"}"#).is_none());
        assert!(clamp("not json").is_none());
    }

    #[test]
    fn secret_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        write_private(&file, "file-secret\n");
        let mut s = settings(CredentialKind::ClientSecret);
        s.tenant_id = Some(TENANT.into());
        s.client_id = Some("cid".into());
        s.client_secret_file = Some(file.clone());
        let env = env_of(&[]);
        assert!(read_secret(&s, &env).is_ok());
        for mode in [0o640, 0o604, 0o644, 0o660] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = build_chain(&s, reqwest::Client::new(), &env).unwrap_err();
            assert_eq!(e.kind(), "secret_file");
            let msg = e.to_string();
            assert!(msg.contains(file.to_str().unwrap()), "{msg}");
            assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
            assert!(!msg.contains("file-secret"), "{msg}");
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read_secret(&s, &env).is_ok());
    }

    #[test]
    fn client_secret_from_env_is_redacted() {
        let env = env_of(&[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", "cid"),
            ("AZURE_CLIENT_SECRET", "s3cr3t-value"),
        ]);
        let chain = build_chain(
            &settings(CredentialKind::ClientSecret),
            reqwest::Client::new(),
            &env,
        )
        .unwrap();
        assert_eq!(chain.source_names(), vec!["client_secret"]);
        let dbg = format!("{chain:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
    }

    #[test]
    fn client_secret_from_file_trims_newline() {
        let dir = tempfile::tempdir().unwrap();
        write_private(&dir.path().join("secret"), "file-secret\n");
        let mut s = settings(CredentialKind::ClientSecret);
        s.tenant_id = Some(TENANT.into());
        s.client_id = Some("cid".into());
        s.client_secret_file = Some(PathBuf::from("secret"));
        let dir_str = dir.path().to_str().unwrap().to_owned();
        let env = env_of(&[("CREDENTIALS_DIRECTORY", &dir_str)]);
        let secret = read_secret(&s, &env).unwrap().unwrap();
        assert_eq!(secret.0, "file-secret");
        assert!(build_chain(&s, reqwest::Client::new(), &env).is_ok());
    }

    #[test]
    fn missing_pieces_are_named() {
        let env = env_of(&[]);
        let e = build_credential(
            &settings(CredentialKind::ClientSecret),
            reqwest::Client::new(),
            &env,
        )
        .unwrap_err();
        assert_eq!(e.kind(), "missing_tenant_id");
        assert!(e.to_string().contains("AZURE_TENANT_ID"));

        let env = env_of(&[("AZURE_TENANT_ID", TENANT), ("AZURE_CLIENT_ID", "c")]);
        let e = build_credential(
            &settings(CredentialKind::ClientSecret),
            reqwest::Client::new(),
            &env,
        )
        .unwrap_err();
        assert_eq!(e.kind(), "missing_secret");

        let e = build_credential(
            &settings(CredentialKind::WorkloadIdentity),
            reqwest::Client::new(),
            &env,
        )
        .unwrap_err();
        assert_eq!(e.kind(), "missing_federated_token_file");

        let mut s = settings(CredentialKind::ClientSecret);
        s.client_secret_file = Some(PathBuf::from("/nonexistent/lightsout-secret"));
        let e = build_credential(&s, reqwest::Client::new(), &env).unwrap_err();
        assert_eq!(e.kind(), "secret_file");
        assert!(e.to_string().contains("/nonexistent/lightsout-secret"));
    }

    #[test]
    fn authority_host_must_be_https() {
        let mut s = settings(CredentialKind::ManagedIdentity);
        s.authority_host = Url::parse("http://127.0.0.1:1234").unwrap();
        let e = build_credential(&s, reqwest::Client::new(), &env_of(&[])).unwrap_err();
        assert_eq!(e.kind(), "authority_host");
    }

    #[test]
    fn auto_chain_order() {
        let env = env_of(&[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", "cid"),
            ("AZURE_CLIENT_SECRET", "x"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ]);
        let chain = build_chain(
            &settings(CredentialKind::Auto),
            reqwest::Client::new(),
            &env,
        )
        .unwrap();
        assert_eq!(
            chain.source_names(),
            vec![
                "client_secret",
                "workload_identity",
                "managed_identity",
                "azure_cli"
            ]
        );
        let chain = build_chain(
            &settings(CredentialKind::Auto),
            reqwest::Client::new(),
            &env_of(&[("AZURE_CLIENT_SECRET", "x")]),
        )
        .unwrap();
        assert_eq!(chain.source_names(), vec!["managed_identity", "azure_cli"]);
    }

    #[test]
    fn force_refresh_marker_roundtrip() {
        assert!(wants_fresh_token(Some(&force_refresh_options())));
        assert!(!wants_fresh_token(Some(&TokenRequestOptions::default())));
        assert!(!wants_fresh_token(None));
    }

    #[tokio::test]
    async fn invalidate_is_rate_limited() {
        let env = env_of(&[]);
        let chain = build_chain(
            &settings(CredentialKind::ManagedIdentity),
            reqwest::Client::new(),
            &env,
        )
        .unwrap();
        assert!(chain.lock().instances[0].is_some());
        let t0 = Instant::now();
        assert!(chain.invalidate_at(t0));
        assert!(chain.lock().instances[0].is_none());
        assert!(!chain.invalidate_at(t0 + MIN_REBUILD_INTERVAL / 2));
        assert!(chain.invalidate_at(t0 + MIN_REBUILD_INTERVAL));
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let e = build_http_client(
            Some(Path::new("/nonexistent/ca.pem")),
            HttpTimeouts::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), "ca_file");
        assert!(e.to_string().contains("/nonexistent/ca.pem"));

        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let e = build_http_client(Some(&bad), HttpTimeouts::default()).unwrap_err();
        assert_eq!(e.kind(), "ca_file");
        assert!(e.to_string().contains("bad.pem"), "{e}");
    }

    #[test]
    fn ca_file_valid_pem_accepted() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, cert.cert.pem()).unwrap();
        assert!(build_http_client(Some(&good), HttpTimeouts::default()).is_ok());
        assert!(build_http_client(None, HttpTimeouts::default()).is_ok());
    }

    #[derive(Debug, Default)]
    struct Scripted {
        ok: bool,
        calls: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl TokenCredential for Scripted {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.ok {
                Ok(AccessToken::new(
                    "tok",
                    azure_core::time::OffsetDateTime::now_utc()
                        + azure_core::time::Duration::hours(1),
                ))
            } else {
                Err(azure_core::Error::with_message(
                    ErrorKind::Credential,
                    "scripted failure",
                ))
            }
        }
    }

    fn fixed_chain(creds: &[(&'static str, Arc<Scripted>)]) -> ChainCredential {
        ChainCredential::new(
            creds
                .iter()
                .map(|(name, c)| Source::Fixed {
                    name,
                    cred: c.clone(),
                })
                .collect(),
            BuildContext {
                http: reqwest::Client::new(),
                authority_host: Url::parse(Cloud::Public.authority_host()).unwrap(),
            },
        )
    }

    fn calls(c: &Scripted) -> usize {
        c.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn chain_uses_first_working_and_sticks_to_it() {
        let bad = Arc::new(Scripted::default());
        let good = Arc::new(Scripted {
            ok: true,
            ..Scripted::default()
        });
        let later = Arc::new(Scripted {
            ok: true,
            ..Scripted::default()
        });
        let chain = fixed_chain(&[
            ("bad", bad.clone()),
            ("good", good.clone()),
            ("later", later.clone()),
        ]);
        chain.get_token(&["s/.default"], None).await.unwrap();
        assert_eq!(chain.selected(), Some("good"));
        chain.get_token(&["s/.default"], None).await.unwrap();
        assert_eq!((calls(&bad), calls(&good), calls(&later)), (1, 2, 0));
        // A forced refresh rebuilds instances but keeps the selection.
        chain
            .get_token(&["s/.default"], Some(force_refresh_options()))
            .await
            .unwrap();
        assert_eq!(chain.selected(), Some("good"));
        assert_eq!((calls(&bad), calls(&good)), (1, 3));
    }

    #[tokio::test]
    async fn chain_reports_every_failure() {
        let chain = fixed_chain(&[
            ("first", Arc::new(Scripted::default())),
            ("second", Arc::new(Scripted::default())),
        ]);
        let e = chain.get_token(&["s/.default"], None).await.unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("first: scripted failure"), "{msg}");
        assert!(msg.contains("second: scripted failure"), "{msg}");
        assert_eq!(chain.selected(), None);
    }
}
