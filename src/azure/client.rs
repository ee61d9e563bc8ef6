//! [`ArmClient`]: the HTTP client for the Azure ML compute API in Azure Resource Manager.
//!
//! One `ArmClient` is built at start-up from one shared `reqwest::Client`, one long-lived
//! credential and the configured endpoint; it is cheap to clone (an `Arc` inside).
//!
//! Every request carries `Authorization: Bearer`, a fresh `x-ms-client-request-id` and our
//! User-Agent, goes through the classified retry loop (`retry.rs`), is logged at debug level
//! (method, path without query, status, elapsed; never the token) and is reported to an optional
//! [`RequestHook`] for metrics. Per-subscription `x-ms-ratelimit-remaining-subscription-*` headers
//! are remembered ([`ArmClient::rate_limits`]).
//!
//! Mutating calls return [`Accepted`]; [`ArmClient::poll_operation`] and
//! [`ArmClient::wait_operation`] follow long-running operations (`lro.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::{Secret, TokenCredential};
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use tokio::time::{Instant, sleep};
use url::Url;

use super::auth;
use super::error::{AzureError, TransportKind};
use super::lro::{self, Accepted, PollOutcome, PollVia};
use super::retry::{self, RetryDecision, RetryPolicy};
use super::tags::{TAGS_API_VERSION, TagsOperation, TagsPatch, TagsResource};
use super::update::{NativeSetting, UPDATE_API_VERSION};
use super::wire::{
    AsyncOperationStatus, ComputeList, ComputeResource, Permission, PermissionList,
    UnderlyingResourceAction,
};
use crate::engine::model::WorkspaceRef;
use crate::engine::text::snippet;

/// API version of compute list, get, create, delete and power actions (native settings
/// change at [`UPDATE_API_VERSION`], as Microsoft's own client does).
pub const API_VERSION: &str = "2025-12-01";
/// API version of `Microsoft.Authorization/permissions` (what the caller may do at a scope).
pub const PERMISSIONS_API_VERSION: &str = "2022-04-01";
/// Default delay between polls when the server gives no `Retry-After`. Real ARM sends none
/// and compute operations take 30 s to 3.5 min (`recorded/py-ml-stop-start-2022-10.excerpt.json`),
/// so polling faster only spends the read budget.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(15);
/// Default cap on a server-requested poll delay.
pub const DEFAULT_MAX_POLL_INTERVAL: Duration = Duration::from_secs(60);
/// Default deadline for [`ArmClient::wait_operation`].
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default cap on pages followed by one list.
pub const DEFAULT_MAX_PAGES: usize = 1000;

const CLIENT_REQUEST_ID: &str = "x-ms-client-request-id";
const REQUEST_ID: &str = "x-ms-request-id";
const RL_READS: &str = "x-ms-ratelimit-remaining-subscription-reads";
const RL_WRITES: &str = "x-ms-ratelimit-remaining-subscription-writes";
const RL_DELETES: &str = "x-ms-ratelimit-remaining-subscription-deletes";
const RL_GLOBAL_READS: &str = "x-ms-ratelimit-remaining-subscription-global-reads";
const RL_GLOBAL_WRITES: &str = "x-ms-ratelimit-remaining-subscription-global-writes";
const RL_GLOBAL_DELETES: &str = "x-ms-ratelimit-remaining-subscription-global-deletes";

/// The ARM endpoint and the token scope that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmEndpoint {
    base: Url,
    base_str: String,
    scope: String,
}

impl ArmEndpoint {
    /// `base` is the ARM root such as `https://management.azure.com` (http only on loopback,
    /// for local fakes: every request carries a bearer token). The token scope is
    /// `{base}/.default`.
    pub fn new(base: Url) -> Result<Self, AzureError> {
        let refuse = |reason| AzureError::InvalidUrl {
            operation: "configure",
            reason,
            url_prefix: crate::engine::text::truncate_chars(base.as_str(), 100),
        };
        if !matches!(base.scheme(), "http" | "https") {
            return Err(refuse("ARM endpoint must be http or https"));
        }
        if base.host_str().is_none() {
            return Err(refuse("ARM endpoint has no host"));
        }
        if base.scheme() == "http" && !crate::engine::config::auth::is_loopback(&base) {
            return Err(refuse(
                "ARM endpoint must use https (http only on loopback): requests carry a bearer token",
            ));
        }
        if base.query().is_some() || !base.username().is_empty() {
            return Err(refuse("ARM endpoint must not have a query or user info"));
        }
        let base_str = base.as_str().trim_end_matches('/').to_owned();
        let scope = format!("{base_str}/.default");
        Ok(ArmEndpoint {
            base,
            base_str,
            scope,
        })
    }

    /// The ARM root URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The token scope, `{base}/.default`.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// `{base}/{segments…}?{query}`, each segment percent-encoded (a `/`, `?` or `#` in a name
    /// stays inside its segment).
    fn url_segments(
        &self,
        op: &'static str,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Url, AzureError> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| AzureError::InvalidUrl {
                    operation: op,
                    reason: "ARM endpoint cannot take a path",
                    url_prefix: crate::engine::text::truncate_chars(self.base.as_str(), 100),
                })?;
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }
}

/// One finished HTTP exchange, reported to a [`RequestHook`].
#[derive(Debug, Clone)]
pub struct RequestEvent {
    /// Client operation, e.g. `list_computes` (bounded set).
    pub operation: &'static str,
    /// HTTP method.
    pub method: Method,
    /// HTTP status; `None` when no response arrived (transport error).
    pub status: Option<u16>,
    /// Time from send to response headers (or failure).
    pub elapsed: Duration,
}

/// Callback for request metrics. Must be cheap and must not block.
pub type RequestHook = Arc<dyn Fn(&RequestEvent) + Send + Sync>;

/// Tunables of an [`ArmClient`].
#[derive(Clone)]
pub struct ArmClientConfig {
    /// Retry policy for every request.
    pub retry: RetryPolicy,
    /// Delay between polls when the server gives no `Retry-After`.
    pub poll_interval: Duration,
    /// Cap on a server-requested poll delay.
    pub max_poll_interval: Duration,
    /// Deadline for [`ArmClient::wait_operation`].
    pub operation_timeout: Duration,
    /// Most pages one list follows before failing.
    pub max_pages: usize,
    /// User-Agent header value.
    pub user_agent: String,
    /// Optional per-request callback for metrics.
    pub on_request: Option<RequestHook>,
    /// Per-subscription request budgets; `None` turns them off (virtual time).
    pub budget: Option<super::budget::BudgetLimits>,
}

impl Default for ArmClientConfig {
    fn default() -> Self {
        ArmClientConfig {
            retry: RetryPolicy::default(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_poll_interval: DEFAULT_MAX_POLL_INTERVAL,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            max_pages: DEFAULT_MAX_PAGES,
            user_agent: auth::default_user_agent(),
            on_request: None,
            budget: Some(super::budget::BudgetLimits::default()),
        }
    }
}

impl fmt::Debug for ArmClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmClientConfig")
            .field("retry", &self.retry)
            .field("poll_interval", &self.poll_interval)
            .field("max_poll_interval", &self.max_poll_interval)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_pages", &self.max_pages)
            .field("user_agent", &self.user_agent)
            .field("on_request", &self.on_request.as_ref().map(|_| "<hook>"))
            .finish()
    }
}

/// Last seen ARM rate-limit headroom for one subscription.
///
/// ARM counts per principal (`-reads`, `-writes`, `-deletes`) and, since 2024, per
/// subscription across all principals (`-global-*`); a DELETE is counted as a delete, not a
/// write (`recorded/py-ml-stop-2024-12-signed-ao.excerpt.json`, the DELETE entry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitSnapshot {
    /// `x-ms-ratelimit-remaining-subscription-reads`.
    pub reads_remaining: Option<u64>,
    /// `x-ms-ratelimit-remaining-subscription-writes`.
    pub writes_remaining: Option<u64>,
    /// `x-ms-ratelimit-remaining-subscription-deletes`.
    pub deletes_remaining: Option<u64>,
    /// `x-ms-ratelimit-remaining-subscription-global-reads`.
    pub global_reads_remaining: Option<u64>,
    /// `x-ms-ratelimit-remaining-subscription-global-writes`.
    pub global_writes_remaining: Option<u64>,
    /// `x-ms-ratelimit-remaining-subscription-global-deletes`.
    pub global_deletes_remaining: Option<u64>,
}

impl RateLimitSnapshot {
    /// The headroom for requests of `kind`: the lower of the principal's and the
    /// subscription-wide counter, whichever ARM sent.
    pub fn remaining(&self, kind: super::budget::Kind) -> Option<u64> {
        use super::budget::Kind;
        let (own, global) = match kind {
            Kind::Read => (self.reads_remaining, self.global_reads_remaining),
            Kind::Write => (self.writes_remaining, self.global_writes_remaining),
            Kind::Delete => (self.deletes_remaining, self.global_deletes_remaining),
        };
        match (own, global) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes every counter `headers` carries, keeping the others.
    pub fn update(&mut self, headers: &HeaderMap) -> bool {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let mut changed = false;
        for (name, slot) in [
            (RL_READS, &mut self.reads_remaining),
            (RL_WRITES, &mut self.writes_remaining),
            (RL_DELETES, &mut self.deletes_remaining),
            (RL_GLOBAL_READS, &mut self.global_reads_remaining),
            (RL_GLOBAL_WRITES, &mut self.global_writes_remaining),
            (RL_GLOBAL_DELETES, &mut self.global_deletes_remaining),
        ] {
            if let Some(n) = num(name) {
                *slot = Some(n);
                changed = true;
            }
        }
        changed
    }
}

/// Client for the Azure ML compute API. Clone freely.
#[derive(Clone)]
pub struct ArmClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    endpoint: ArmEndpoint,
    config: ArmClientConfig,
    rate_limits: Mutex<HashMap<String, RateLimitSnapshot>>,
    budgets: Option<super::budget::Budgets>,
    /// The Jupyter probe's client and token scope; `None`: the probe is off.
    jupyter: Option<super::jupyter::JupyterAccess>,
}

impl fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmClient")
            .field("endpoint", &self.inner.endpoint)
            .field("credential", &self.inner.credential)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A Jupyter answer longer than the probe reads.
fn too_large(operation: &'static str) -> AzureError {
    AzureError::Protocol {
        operation,
        reason: format!(
            "response larger than {} bytes, not read",
            super::jupyter::MAX_BODY_BYTES
        ),
    }
}

/// A successful (2xx) response.
struct Response {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    request_id: Option<String>,
    retry_after: Option<Duration>,
}

impl ArmClient {
    /// Builds the client. `http` should be the process-wide client (see
    /// `auth::build_http_client`); `credential` a long-lived one (see `auth::build_credential`).
    pub fn new(
        http: reqwest::Client,
        credential: Arc<dyn TokenCredential>,
        endpoint: ArmEndpoint,
        config: ArmClientConfig,
    ) -> Self {
        ArmClient {
            inner: Arc::new(Inner {
                http,
                credential,
                endpoint,
                rate_limits: Mutex::new(HashMap::new()),
                budgets: config.budget.map(super::budget::Budgets::new),
                config,
                jupyter: None,
            }),
        }
    }

    /// Turns the Jupyter probe on: its own client (no redirects, short deadlines) and a
    /// token scope meant for instance hosts. Without it [`ArmClient::jupyter_get`] refuses.
    /// Call it on a client fresh from [`ArmClient::new`]; on one already cloned the probe
    /// stays off (it never falls back to the ARM token).
    pub fn with_jupyter(mut self, access: super::jupyter::JupyterAccess) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.jupyter = Some(access);
        } else {
            tracing::warn!("the Jupyter probe could not be turned on (client already shared)");
        }
        self
    }

    /// Whether the Jupyter probe is on (`[azure] jupyter_token_scope` is set).
    pub fn jupyter_enabled(&self) -> bool {
        self.inner.jupyter.is_some()
    }

    /// The configured endpoint.
    pub fn endpoint(&self) -> &ArmEndpoint {
        &self.inner.endpoint
    }

    /// Every compute of the workspace, following `nextLink` to the end. A failed page fails the
    /// whole list; a `nextLink` seen twice or more than `max_pages` pages is a protocol error.
    pub async fn list_computes(
        &self,
        ws: &WorkspaceRef,
    ) -> Result<Vec<ComputeResource>, AzureError> {
        const OP: &str = "list_computes";
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut next: Option<Url> = None;
        let mut pages = 0usize;
        loop {
            let page = self.list_compute_page(ws, next.as_ref()).await?;
            pages += 1;
            out.extend(page.value);
            let Some(link) = page.next_link.filter(|l| !l.trim().is_empty()) else {
                return Ok(out);
            };
            let url = lro::check_url(OP, link.trim(), self.inner.endpoint.base())?;
            if !seen.insert(url.as_str().to_owned()) {
                return Err(AzureError::Protocol {
                    operation: OP,
                    reason: format!("nextLink loop after {pages} pages"),
                });
            }
            if pages >= self.inner.config.max_pages {
                return Err(AzureError::Protocol {
                    operation: OP,
                    reason: format!("more than {} pages", self.inner.config.max_pages),
                });
            }
            next = Some(url);
        }
    }

    /// One page of the compute list: the first when `next_link` is `None`, else the page at
    /// `next_link` (used verbatim after the same-host check).
    pub async fn list_compute_page(
        &self,
        ws: &WorkspaceRef,
        next_link: Option<&Url>,
    ) -> Result<ComputeList, AzureError> {
        const OP: &str = "list_computes";
        let url = match next_link {
            Some(u) => lro::check_url(OP, u.as_str(), self.inner.endpoint.base())?,
            None => {
                let mut segments = workspace_segments(ws);
                segments.push("computes");
                self.inner
                    .endpoint
                    .url_segments(OP, &segments, &[("api-version", API_VERSION)])?
            }
        };
        let r = self.send(OP, Method::GET, &url, None).await?;
        decode(OP, "compute list page", &r.body)
    }

    /// One compute.
    pub async fn get_compute(
        &self,
        ws: &WorkspaceRef,
        name: &str,
    ) -> Result<ComputeResource, AzureError> {
        const OP: &str = "get_compute";
        let url = self.compute_url(OP, ws, name, "", API_VERSION, &[])?;
        let r = self.send(OP, Method::GET, &url, None).await?;
        decode(OP, "compute resource", &r.body)
    }

    /// Creates or replaces a compute (PUT). Serialise only what you mean to set.
    pub async fn create_compute(
        &self,
        ws: &WorkspaceRef,
        name: &str,
        body: &ComputeResource,
    ) -> Result<Accepted, AzureError> {
        const OP: &str = "create_compute";
        let url = self.compute_url(OP, ws, name, "", API_VERSION, &[])?;
        let body = encode(OP, body)?;
        self.mutate(OP, Method::PUT, &url, Some(body)).await
    }

    /// Deletes (or detaches) a compute.
    pub async fn delete_compute(
        &self,
        ws: &WorkspaceRef,
        name: &str,
        action: UnderlyingResourceAction,
    ) -> Result<Accepted, AzureError> {
        const OP: &str = "delete_compute";
        let url = self.compute_url(
            OP,
            ws,
            name,
            "",
            API_VERSION,
            &[("underlyingResourceAction", action.as_str())],
        )?;
        self.mutate(OP, Method::DELETE, &url, None).await
    }

    /// Starts a compute instance.
    pub async fn start(&self, ws: &WorkspaceRef, name: &str) -> Result<Accepted, AzureError> {
        self.action("start", ws, name, "/start").await
    }

    /// Stops a compute instance.
    pub async fn stop(&self, ws: &WorkspaceRef, name: &str) -> Result<Accepted, AzureError> {
        self.action("stop", ws, name, "/stop").await
    }

    /// Restarts a compute instance.
    pub async fn restart(&self, ws: &WorkspaceRef, name: &str) -> Result<Accepted, AzureError> {
        self.action("restart", ws, name, "/restart").await
    }

    /// Changes one of Azure's own settings of an existing compute instance (idle shutdown or
    /// start/stop schedules) the way Microsoft's current tools do: GET the compute, PUT it
    /// back whole with the one setting changed, both at [`UPDATE_API_VERSION`] (evidence in
    /// [`super::update`]). Needs `computes/read` and `computes/write`.
    pub async fn update_native(
        &self,
        ws: &WorkspaceRef,
        name: &str,
        setting: &NativeSetting,
    ) -> Result<Accepted, AzureError> {
        const OP: &str = "update_native";
        let url = self.compute_url(OP, ws, name, "", UPDATE_API_VERSION, &[])?;
        let read = self.send(OP, Method::GET, &url, None).await?;
        let current: serde_json::Value = decode(OP, "compute resource", &read.body)?;
        let body =
            super::update::put_body(&current, setting).map_err(|reason| AzureError::Protocol {
                operation: OP,
                reason,
            })?;
        let body = encode(OP, &body)?;
        self.mutate(OP, Method::PUT, &url, Some(body)).await
    }

    /// Changes the compute's tags through ARM's generic Tags API
    /// (`PATCH {compute}/providers/Microsoft.Resources/tags/default`, api-version
    /// [`TAGS_API_VERSION`]), which leaves the compute itself alone. `Merge` adds or overwrites
    /// `tags`; `Delete` removes them (name/value pairs: pass the current values). Needs
    /// `Microsoft.Resources/tags/write` on the compute. Returns the compute's tags afterwards.
    pub async fn update_tags(
        &self,
        ws: &WorkspaceRef,
        name: &str,
        operation: TagsOperation,
        tags: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, AzureError> {
        const OP: &str = "update_tags";
        let url = self.compute_url(
            OP,
            ws,
            name,
            "/providers/Microsoft.Resources/tags/default",
            TAGS_API_VERSION,
            &[],
        )?;
        let body = encode(OP, &TagsPatch::new(operation, tags))?;
        let r = self.send(OP, Method::PATCH, &url, Some(body)).await?;
        if r.status != 200 {
            // Newer api-versions may answer 202 and run it in the background; this one does not.
            return Err(AzureError::Protocol {
                operation: OP,
                reason: format!(
                    "expected 200 with the resulting tags, got HTTP {}",
                    r.status
                ),
            });
        }
        decode::<TagsResource>(OP, "tags resource", &r.body).map(TagsResource::into_tags)
    }

    /// Acquires an access token for the ARM scope and drops it: proves the credential works
    /// (`lightsout doctor`). The token is never shown.
    pub async fn check_token(&self) -> Result<(), AzureError> {
        self.bearer("acquire_token", false).await.map(drop)
    }

    /// What the calling identity may do at the workspace's scope:
    /// `GET {workspace}/providers/Microsoft.Authorization/permissions`, following `nextLink`.
    /// Every role assignment that applies (inherited ones included) is one entry.
    pub async fn workspace_permissions(
        &self,
        ws: &WorkspaceRef,
    ) -> Result<Vec<Permission>, AzureError> {
        const OP: &str = "list_permissions";
        let mut segments = workspace_segments(ws);
        segments.extend(["providers", "Microsoft.Authorization", "permissions"]);
        let mut url = self.inner.endpoint.url_segments(
            OP,
            &segments,
            &[("api-version", PERMISSIONS_API_VERSION)],
        )?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for _ in 0..self.inner.config.max_pages {
            let r = self.send(OP, Method::GET, &url, None).await?;
            let page: PermissionList = decode(OP, "permission list", &r.body)?;
            out.extend(page.value);
            let Some(link) = page.next_link.filter(|l| !l.trim().is_empty()) else {
                return Ok(out);
            };
            url = lro::check_url(OP, link.trim(), self.inner.endpoint.base())?;
            if !seen.insert(url.as_str().to_owned()) {
                return Err(AzureError::Protocol {
                    operation: OP,
                    reason: "nextLink loop".to_owned(),
                });
            }
        }
        Err(AzureError::Protocol {
            operation: OP,
            reason: format!("more than {} pages", self.inner.config.max_pages),
        })
    }

    /// Polls a pending operation once. A `Completed` operation reports `Succeeded`.
    ///
    /// For `Location` polling, a final non-retriable 4xx (other than 401/403/404, which say
    /// something about us rather than the operation) is the operation's failure.
    pub async fn poll_operation(&self, op: &Accepted) -> Result<PollOutcome, AzureError> {
        const OP: &str = "poll_operation";
        let Accepted::Pending { poll_url, via, .. } = op else {
            return Ok(PollOutcome::Succeeded);
        };
        // Re-check: `Accepted` is a plain value callers may have built themselves.
        let url = lro::check_url(OP, poll_url.as_str(), self.inner.endpoint.base())?;
        match self.send(OP, Method::GET, &url, None).await {
            Ok(r) => match via {
                PollVia::AzureAsyncOperation => {
                    lro::outcome_from_async_operation(OP, r.status, &r.body, r.retry_after)
                }
                PollVia::Location => Ok(lro::outcome_from_location(r.status, r.retry_after)),
            },
            Err(AzureError::Arm { status, error, .. })
                if *via == PollVia::Location
                    && (400..500).contains(&status)
                    && !matches!(status, 401 | 403 | 404 | 408 | 429) =>
            {
                Ok(PollOutcome::Failed {
                    status: AsyncOperationStatus::Failed,
                    error: Some(error),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Polls until the operation succeeds (`Ok`), fails or is canceled
    /// ([`AzureError::OperationFailed`]), or `operation_timeout` passes ([`AzureError::Timeout`]).
    ///
    /// Waits the server's `Retry-After` (else `poll_interval`, capped at `max_poll_interval`)
    /// before each poll, the first included. `on_poll` sees every outcome.
    pub async fn wait_operation(
        &self,
        op: &Accepted,
        on_poll: impl FnMut(&PollOutcome),
    ) -> Result<(), AzureError> {
        self.wait_operation_every(op, self.inner.config.poll_interval, on_poll)
            .await
    }

    /// [`ArmClient::wait_operation`] polling every `every` when the server gives no
    /// `Retry-After` (real ARM gives none). A status body that cannot be read, or a status we
    /// do not know, keeps the operation in progress; the timeout then says what it last saw.
    pub async fn wait_operation_every(
        &self,
        op: &Accepted,
        every: Duration,
        mut on_poll: impl FnMut(&PollOutcome),
    ) -> Result<(), AzureError> {
        const OP: &str = "wait_operation";
        let Accepted::Pending { retry_after, .. } = op else {
            return Ok(());
        };
        let start = Instant::now();
        let deadline = start + self.inner.config.operation_timeout;
        let mut delay = self.poll_delay(*retry_after, every);
        let mut last_seen: Option<String> = None;
        loop {
            if Instant::now() + delay > deadline {
                return Err(AzureError::Timeout {
                    operation: OP,
                    after: start.elapsed(),
                    last_seen,
                });
            }
            sleep(delay).await;
            let outcome = self.poll_operation(op).await?;
            on_poll(&outcome);
            match outcome {
                PollOutcome::Succeeded => return Ok(()),
                PollOutcome::Failed { status, error } => {
                    return Err(AzureError::OperationFailed { status, error });
                }
                PollOutcome::InProgress {
                    retry_after,
                    status,
                    unreadable,
                } => {
                    last_seen = Some(match (status, unreadable) {
                        (Some(s), _) => format!("status {s}"),
                        (None, Some(body)) => format!("unreadable status body {body:?}"),
                        (None, None) => "in progress, no status".to_owned(),
                    });
                    delay = self.poll_delay(retry_after, every);
                }
            }
        }
    }

    /// Last seen rate-limit headroom for a subscription (case-insensitive id).
    pub fn rate_limits(&self, subscription: &str) -> Option<RateLimitSnapshot> {
        let map = self
            .inner
            .rate_limits
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(&subscription.to_ascii_lowercase()).copied()
    }

    /// The server's `Retry-After` wins (capped at `max_poll_interval`), else `every`.
    fn poll_delay(&self, hint: Option<Duration>, every: Duration) -> Duration {
        hint.map_or(every, |h| h.min(self.inner.config.max_poll_interval))
    }

    fn compute_url(
        &self,
        op: &'static str,
        ws: &WorkspaceRef,
        name: &str,
        suffix: &str,
        api_version: &str,
        extra: &[(&str, &str)],
    ) -> Result<Url, AzureError> {
        // Refused before any request: a name outside Azure's rules is never sent anywhere.
        crate::engine::names::check_instance(name).map_err(|e| AzureError::InvalidName {
            operation: op,
            source: e,
        })?;
        let mut query = vec![("api-version", api_version)];
        query.extend_from_slice(extra);
        let mut segments = workspace_segments(ws);
        segments.extend(["computes", name]);
        segments.extend(suffix.split('/').filter(|s| !s.is_empty()));
        self.inner.endpoint.url_segments(op, &segments, &query)
    }

    async fn action(
        &self,
        op: &'static str,
        ws: &WorkspaceRef,
        name: &str,
        suffix: &str,
    ) -> Result<Accepted, AzureError> {
        let url = self.compute_url(op, ws, name, suffix, API_VERSION, &[])?;
        // ARM wants a Content-Length on POST; an empty body gives `Content-Length: 0`.
        self.mutate(op, Method::POST, &url, Some(Vec::new())).await
    }

    async fn mutate(
        &self,
        op: &'static str,
        method: Method,
        url: &Url,
        body: Option<Vec<u8>>,
    ) -> Result<Accepted, AzureError> {
        let r = self.send(op, method, url, body).await?;
        lro::accepted_from_response(
            op,
            r.status,
            &r.headers,
            r.retry_after,
            r.request_id,
            self.inner.endpoint.base(),
        )
    }

    /// GET a JSON document from an instance's Jupyter server, no retries (a failed probe
    /// means "activity unknown" for this pass). The URL comes from the instance's
    /// `applications`; the token, from `[azure] jupyter_token_scope` and never ARM's, goes
    /// only to an https Azure ML instance host (`super::jupyter`). No redirects, at most
    /// [`super::jupyter::PROBE_TIMEOUT`] and [`super::jupyter::MAX_BODY_BYTES`].
    pub async fn jupyter_get<T: DeserializeOwned>(&self, url: &Url) -> Result<T, AzureError> {
        use super::jupyter::{MAX_BODY_BYTES, PROBE_TIMEOUT, check_instance_url};
        const OP: &str = "jupyter";
        let Some(access) = &self.inner.jupyter else {
            return Err(AzureError::Protocol {
                operation: OP,
                reason: "the Jupyter probe is off: azure.jupyter_token_scope is not set".to_owned(),
            });
        };
        check_instance_url(url).map_err(|reason| AzureError::InvalidUrl {
            operation: OP,
            reason,
            url_prefix: crate::engine::text::truncate_chars(url.as_str(), 80),
        })?;
        let token = self
            .inner
            .credential
            .get_token(&[access.scope.as_str()], None)
            .await
            .map_err(|source| AzureError::Auth {
                operation: OP,
                source,
            })?;
        let mut auth_value = HeaderValue::from_str(&format!("Bearer {}", token.token.secret()))
            .map_err(|_| AzureError::Auth {
                operation: OP,
                source: azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    "access token contains characters not allowed in an HTTP header",
                ),
            })?;
        auth_value.set_sensitive(true);
        drop(token);
        let started = Instant::now();
        let transport = |source: reqwest::Error| match TransportKind::of(&source) {
            TransportKind::Timeout => AzureError::Timeout {
                operation: OP,
                after: PROBE_TIMEOUT,
                last_seen: None,
            },
            kind => AzureError::Transport {
                operation: OP,
                kind,
                source,
            },
        };
        // One deadline over headers and body: the client's timeout covers the same, this
        // one holds even if a server trickles bytes.
        let exchange = async {
            let result = access
                .http
                .get(url.clone())
                .header(header::AUTHORIZATION, auth_value)
                .send()
                .await;
            if let Some(hook) = &self.inner.config.on_request {
                hook(&RequestEvent {
                    operation: OP,
                    method: Method::GET,
                    status: result.as_ref().ok().map(|r| r.status().as_u16()),
                    elapsed: started.elapsed(),
                });
            }
            let mut response = result.map_err(transport)?;
            let status = response.status().as_u16();
            if response
                .content_length()
                .is_some_and(|n| n > MAX_BODY_BYTES as u64)
            {
                return Err(too_large(OP));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport)? {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large(OP));
                }
                body.extend_from_slice(&chunk);
            }
            Ok((status, body))
        };
        let (status, body) = tokio::time::timeout(PROBE_TIMEOUT, exchange)
            .await
            .map_err(|_| AzureError::Timeout {
                operation: OP,
                after: PROBE_TIMEOUT,
                last_seen: None,
            })??;
        if (300..400).contains(&status) {
            return Err(AzureError::Protocol {
                operation: OP,
                reason: format!(
                    "HTTP {status}: a redirect, not followed (the token stays with the instance host)"
                ),
            });
        }
        if !(200..300).contains(&status) {
            return Err(AzureError::Arm {
                operation: OP,
                status,
                request_id: None,
                error: Box::new(super::wire::ArmError::from_body(status, &body)),
                retry_after: None,
            });
        }
        serde_json::from_slice(&body).map_err(|source| AzureError::Decode {
            operation: OP,
            what: "Jupyter response",
            snippet: snippet(&String::from_utf8_lossy(&body)),
            source,
        })
    }

    async fn bearer(&self, op: &'static str, force_refresh: bool) -> Result<Secret, AzureError> {
        let scope = self.inner.endpoint.scope();
        let options = force_refresh.then(auth::force_refresh_options);
        self.inner
            .credential
            .get_token(&[scope], options)
            .await
            .map(|t| t.token)
            .map_err(|source| AzureError::Auth {
                operation: op,
                source,
            })
    }

    /// Sends one logical request through the retry loop; `Ok` only for 2xx.
    async fn send(
        &self,
        op: &'static str,
        method: Method,
        url: &Url,
        body: Option<Vec<u8>>,
    ) -> Result<Response, AzureError> {
        let mut retries: u32 = 0;
        let mut token_refreshed = false;
        let mut force_refresh = false;
        let mut waited = Duration::ZERO;
        loop {
            let token = self.bearer(op, force_refresh).await?;
            force_refresh = false;
            let mut auth_value = HeaderValue::from_str(&format!("Bearer {}", token.secret()))
                .map_err(|_| AzureError::Auth {
                    operation: op,
                    source: azure_core::Error::with_message(
                        azure_core::error::ErrorKind::Credential,
                        "access token contains characters not allowed in an HTTP header",
                    ),
                })?;
            auth_value.set_sensitive(true);
            drop(token);

            let mut req = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .header(header::AUTHORIZATION, auth_value)
                .header(CLIENT_REQUEST_ID, uuid::Uuid::new_v4().to_string())
                .header(header::USER_AGENT, self.inner.config.user_agent.as_str())
                .header(header::ACCEPT, "application/json");
            match &body {
                // hyper omits `Content-Length: 0` for an empty body, and ARM answers 411 to a
                // POST without a length: set it explicitly.
                Some(b) if b.is_empty() => {
                    req = req.header(header::CONTENT_LENGTH, "0");
                }
                Some(b) => {
                    req = req
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(b.clone());
                }
                None => {}
            }

            self.spend_budget(url, &method).await;
            let started = Instant::now();
            let result = req.send().await;
            let elapsed = started.elapsed();

            let resp = match result {
                Ok(resp) => resp,
                Err(source) => {
                    let kind = TransportKind::of(&source);
                    self.report(op, &method, None, elapsed);
                    tracing::debug!(
                        operation = op,
                        method = %method,
                        path = url.path(),
                        error = %kind,
                        elapsed_ms = elapsed.as_millis() as u64,
                        "ARM request failed"
                    );
                    let err = AzureError::Transport {
                        operation: op,
                        kind,
                        source,
                    };
                    // A refused redirect will be refused again: not retried.
                    if !matches!(kind, TransportKind::Build | TransportKind::Redirect)
                        && let Some(delay) = self.next_delay(&mut retries, &mut waited, None)
                    {
                        sleep(delay).await;
                        continue;
                    }
                    return Err(err);
                }
            };

            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            self.report(op, &method, Some(status), elapsed);
            self.record_rate_limits(url, &headers);
            tracing::debug!(
                operation = op,
                method = %method,
                path = url.path(),
                status,
                elapsed_ms = elapsed.as_millis() as u64,
                "ARM request"
            );
            let request_id = headers
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let retry_after = retry::parse_retry_after(&headers, response_now(&headers));

            let body_bytes = match resp.bytes().await {
                Ok(b) => b.to_vec(),
                Err(source) => {
                    let kind = TransportKind::of(&source);
                    let err = AzureError::Transport {
                        operation: op,
                        kind,
                        source,
                    };
                    if let Some(delay) = self.next_delay(&mut retries, &mut waited, None) {
                        sleep(delay).await;
                        continue;
                    }
                    return Err(err);
                }
            };

            if (200..300).contains(&status) {
                return Ok(Response {
                    status,
                    headers,
                    body: body_bytes,
                    request_id,
                    retry_after,
                });
            }

            let err = AzureError::Arm {
                operation: op,
                status,
                request_id,
                error: Box::new(super::wire::ArmError::from_body(status, &body_bytes)),
                retry_after,
            };
            match retry::classify_status(status, token_refreshed) {
                RetryDecision::RefreshTokenAndRetry => {
                    tracing::debug!(
                        operation = op,
                        "ARM answered 401; refreshing the token once"
                    );
                    token_refreshed = true;
                    force_refresh = true;
                }
                RetryDecision::Retry => {
                    match self.next_delay(&mut retries, &mut waited, retry_after) {
                        Some(delay) => sleep(delay).await,
                        None => return Err(err),
                    }
                }
                RetryDecision::Fail => return Err(err),
            }
        }
    }

    /// The wait before the next retry, or `None` when attempts or the wait budget are spent.
    fn next_delay(
        &self,
        retries: &mut u32,
        waited: &mut Duration,
        hint: Option<Duration>,
    ) -> Option<Duration> {
        let policy = &self.inner.config.retry;
        if *retries + 1 >= policy.max_attempts() {
            return None;
        }
        let draw = if policy.jitter() > 0.0 {
            rand::random::<f64>()
        } else {
            0.0
        };
        let delay = policy.delay(*retries, hint, draw);
        // Saturating: the hint is the server's number, and a sum that overflows must mean
        // "too long", not a panic that drops the workspace from the pass.
        let total = waited.saturating_add(delay);
        if total > policy.max_total_wait() {
            return None;
        }
        *retries += 1;
        *waited = total;
        Some(delay)
    }

    fn report(&self, op: &'static str, method: &Method, status: Option<u16>, elapsed: Duration) {
        if let Some(hook) = &self.inner.config.on_request {
            hook(&RequestEvent {
                operation: op,
                method: method.clone(),
                status,
                elapsed,
            });
        }
    }

    /// Wait for the subscription's read, write or delete budget (no-op without budgets).
    async fn spend_budget(&self, url: &Url, method: &Method) {
        let (Some(budgets), Some(sub)) = (&self.inner.budgets, subscription_of(url)) else {
            return;
        };
        let kind = super::budget::Kind::of(method);
        let remaining = self.rate_limits(&sub).and_then(|r| r.remaining(kind));
        budgets.wait(&sub, kind, remaining).await;
    }

    fn record_rate_limits(&self, url: &Url, headers: &HeaderMap) {
        let mut seen = RateLimitSnapshot::default();
        if !seen.update(headers) {
            return;
        }
        let Some(sub) = subscription_of(url) else {
            return;
        };
        let mut map = self
            .inner
            .rate_limits
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(sub).or_default().update(headers);
    }
}

/// The path segments of a workspace, each to be percent-encoded on its own.
fn workspace_segments(ws: &WorkspaceRef) -> Vec<&str> {
    vec![
        "subscriptions",
        &ws.subscription_id,
        "resourceGroups",
        &ws.resource_group,
        "providers",
        "Microsoft.MachineLearningServices",
        "workspaces",
        &ws.workspace,
    ]
}

/// The subscription id in an ARM URL path (`/subscriptions/{id}/...`), lowercased.
fn subscription_of(url: &Url) -> Option<String> {
    let mut segs = url.path_segments()?;
    segs.find(|s| s.eq_ignore_ascii_case("subscriptions"))?;
    segs.next()
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
}

/// "Now" for an HTTP-date `Retry-After`: the response's `Date`, else the system clock.
fn response_now(headers: &HeaderMap) -> jiff::Timestamp {
    // Reading the wall clock here (not through `jiff::Timestamp::now`, which is reserved for
    // clock.rs) only matters when a server sends an HTTP-date Retry-After without a Date header.
    let fallback = jiff::Timestamp::try_from(std::time::SystemTime::now())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    retry::response_now(headers, fallback)
}

fn decode<T: DeserializeOwned>(
    operation: &'static str,
    what: &'static str,
    body: &[u8],
) -> Result<T, AzureError> {
    serde_json::from_slice(body).map_err(|source| AzureError::Decode {
        operation,
        what,
        snippet: snippet(&String::from_utf8_lossy(body)),
        source,
    })
}

fn encode<T: serde::Serialize>(operation: &'static str, body: &T) -> Result<Vec<u8>, AzureError> {
    serde_json::to_vec(body).map_err(|source| AzureError::Decode {
        operation,
        what: "request body (encoding)",
        snippet: String::new(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_scope() {
        let e = ArmEndpoint::new(Url::parse("https://management.azure.com/").unwrap()).unwrap();
        assert_eq!(e.scope(), "https://management.azure.com/.default");
        let e = ArmEndpoint::new(Url::parse("http://127.0.0.1:8080").unwrap()).unwrap();
        assert_eq!(e.scope(), "http://127.0.0.1:8080/.default");
        assert!(ArmEndpoint::new(Url::parse("ftp://x").unwrap()).is_err());
    }

    #[test]
    fn endpoint_urls() {
        let e = ArmEndpoint::new(Url::parse("https://management.azure.com").unwrap()).unwrap();
        let ws = WorkspaceRef {
            subscription_id: "sub".into(),
            resource_group: "rg".into(),
            workspace: "ws".into(),
        };
        let mut segments = workspace_segments(&ws);
        segments.extend(["computes", "ci-1"]);
        let u = e
            .url_segments("t", &segments, &[("api-version", API_VERSION)])
            .unwrap();
        assert_eq!(
            u.as_str(),
            "https://management.azure.com/subscriptions/sub/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/computes/ci-1?api-version=2025-12-01"
        );
        assert_eq!(subscription_of(&u).as_deref(), Some("sub"));
        assert_eq!(u.path(), ws.compute_path("ci-1"));

        // A name cannot leave its segment.
        let mut segments = workspace_segments(&ws);
        segments.extend(["computes", "victim/start?x=#"]);
        let u = e.url_segments("t", &segments, &[]).unwrap();
        assert!(
            u.path().ends_with("/computes/victim%2Fstart%3Fx=%23"),
            "{}",
            u.path()
        );
        assert_eq!(u.query(), None);
    }

    #[test]
    fn http_endpoint_only_on_loopback() {
        for ok in [
            "https://management.azure.com",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:9",
            "http://localhost:1",
        ] {
            assert!(ArmEndpoint::new(Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "http://management.azure.com",
            "http://10.0.0.1",
            "http://127.0.0.1.nip.io",
            "http://localhost.example.com",
        ] {
            let e = ArmEndpoint::new(Url::parse(bad).unwrap()).unwrap_err();
            assert!(e.to_string().contains("https"), "{e}");
        }
    }

    #[test]
    fn config_debug_hides_hook() {
        let c = ArmClientConfig {
            on_request: Some(Arc::new(|_| {})),
            ..ArmClientConfig::default()
        };
        let s = format!("{c:?}");
        assert!(s.contains("<hook>"));
        assert!(c.user_agent.starts_with("lightsout/"));
    }
}
