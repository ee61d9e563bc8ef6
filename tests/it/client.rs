//! HTTP-level tests of `ArmClient` against a tiny scripted ARM fake on `127.0.0.1:0`.
//!
//! Each test gives the fake a closure `(request, nth request on this path) -> reply` and checks
//! both the client's result and what the fake saw. Real time, millisecond backoffs (STYLE H10:
//! no paused time with real sockets).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use lightsout::azure::auth::wants_fresh_token;
use lightsout::azure::wire::{
    ComputeInstanceState, ComputePowerAction, ComputeSchedules, ComputeStartStopSchedule,
    CronTrigger, ScheduleStatus, TriggerType, UnderlyingResourceAction,
};
use lightsout::azure::{
    Accepted, ArmClient, ArmClientConfig, ArmEndpoint, AzureError, NativeSetting, PollOutcome,
    PollVia, RetryPolicy,
};
use lightsout::engine::model::WorkspaceRef;
use tokio::time::Instant;
use url::Url;

// ---------------------------------------------------------------------------------------------
// The fake ARM server
// ---------------------------------------------------------------------------------------------

/// What the fake saw.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) authorization: Option<String>,
    pub(crate) client_request_id: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) content_length: Option<String>,
    pub(crate) body: String,
}

/// What the fake answers.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    pub(crate) fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: String::new(),
        }
    }

    pub(crate) fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.to_owned(), v.into()));
        self
    }
}

type Script = Box<dyn Fn(&Seen, usize, &str) -> Reply + Send + Sync>;

struct Shared {
    base: String,
    script: Script,
    seen: Mutex<Vec<Seen>>,
}

pub(crate) struct Fake {
    pub(crate) base: Url,
    shared: Arc<Shared>,
}

impl Fake {
    /// Starts the fake; `script(request, nth request on its path, base URL)` answers.
    pub(crate) async fn start(
        script: impl Fn(&Seen, usize, &str) -> Reply + Send + Sync + 'static,
    ) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake");
        let addr = listener.local_addr().expect("fake address");
        let base = format!("http://{addr}");
        let shared = Arc::new(Shared {
            base: base.clone(),
            script: Box::new(script),
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve the fake");
        });
        Fake {
            base: Url::parse(&base).expect("fake base URL"),
            shared,
        }
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("log lock").clone()
    }

    pub(crate) fn count(&self) -> usize {
        self.shared.seen.lock().expect("log lock").len()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("request body");
    let h = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        authorization: h("authorization"),
        client_request_id: h("x-ms-client-request-id"),
        user_agent: h("user-agent"),
        content_length: h("content-length"),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let nth = {
        let mut log = shared.seen.lock().expect("log lock");
        let nth = log.iter().filter(|s| s.path == seen.path).count();
        log.push(seen.clone());
        nth
    };
    let reply = (shared.script)(&seen, nth, &shared.base);
    let mut resp = Response::new(Body::from(reply.body));
    *resp.status_mut() = StatusCode::from_u16(reply.status).expect("status");
    for (k, v) in reply.headers {
        resp.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(&v).expect("header value"),
        );
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// A fake credential
// ---------------------------------------------------------------------------------------------

/// Hands out `token-{n}` where n counts forced refreshes; counts every call.
#[derive(Debug, Default)]
pub(crate) struct FakeCredential {
    calls: AtomicUsize,
    forced: AtomicUsize,
    fail: bool,
}

#[async_trait::async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(scopes.len(), 1);
        assert!(scopes[0].ends_with("/.default"), "{scopes:?}");
        if self.fail {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "fake credential refuses",
            ));
        }
        if wants_fresh_token(options.as_ref()) {
            self.forced.fetch_add(1, Ordering::SeqCst);
        }
        let n = self.forced.load(Ordering::SeqCst);
        Ok(AccessToken::new(
            format!("token-{n}"),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const SUB: &str = "00000000-0000-0000-0000-0000000000aa";

fn ws() -> WorkspaceRef {
    WorkspaceRef {
        subscription_id: SUB.into(),
        resource_group: "rg".into(),
        workspace: "ws".into(),
    }
}

pub(crate) fn test_config() -> ArmClientConfig {
    ArmClientConfig {
        retry: RetryPolicy::try_new(
            4,
            Duration::from_millis(1),
            Duration::from_millis(10),
            0.0,
            Duration::from_secs(5),
        )
        .expect("policy"),
        poll_interval: Duration::from_millis(5),
        max_poll_interval: Duration::from_millis(50),
        operation_timeout: Duration::from_secs(5),
        ..ArmClientConfig::default()
    }
}

fn client_for(base: &Url, cred: Arc<FakeCredential>) -> ArmClient {
    client_with(base, cred, test_config())
}

pub(crate) fn client_with(
    base: &Url,
    cred: Arc<FakeCredential>,
    config: ArmClientConfig,
) -> ArmClient {
    ArmClient::new(
        reqwest::Client::new(),
        cred,
        ArmEndpoint::new(base.clone()).expect("endpoint"),
        config,
    )
}

fn compute_json(name: &str, state: &str) -> String {
    format!(
        r#"{{"id":"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/computes/{name}","name":"{name}","type":"Microsoft.MachineLearningServices/workspaces/computes","location":"westeurope","properties":{{"computeType":"ComputeInstance","provisioningState":"Succeeded","properties":{{"state":"{state}","vmSize":"STANDARD_DS3_V2"}}}}}}"#
    )
}

fn computes_path() -> String {
    ws().computes_path()
}

// ---------------------------------------------------------------------------------------------
// Listing and paging
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn list_follows_next_link_across_three_pages() {
    let server = Fake::start(move |seen, _, base| {
        match seen.path.as_str() {
            "/page2" => Reply::json(
                200,
                format!(
                    r#"{{"value":[{}],"nextLink":"{base}/page3?$skiptoken=abc%3D&api-version=2025-12-01"}}"#,
                    compute_json("ci-2", "Stopped")
                ),
            ),
            "/page3" => Reply::json(
                200,
                format!(r#"{{"value":[{}]}}"#, compute_json("ci-3", "Starting")),
            ),
            _ => Reply::json(
                200,
                format!(
                    r#"{{"value":[{}],"nextLink":"{base}/page2?$skip=1"}}"#,
                    compute_json("ci-1", "Running")
                ),
            )
            .header("x-ms-ratelimit-remaining-subscription-reads", "11998"),
        }
    })
    .await;
    let cred = Arc::new(FakeCredential::default());
    let client = client_for(&server.base, cred.clone());

    let all = client.list_computes(&ws()).await.unwrap();
    let names: Vec<_> = all.iter().map(|c| c.name.clone().unwrap()).collect();
    assert_eq!(names, ["ci-1", "ci-2", "ci-3"]);
    assert_eq!(
        all[1].instance_state(),
        Some(&ComputeInstanceState::Stopped)
    );

    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].path, computes_path());
    assert_eq!(seen[0].query.as_deref(), Some("api-version=2025-12-01"));
    // Next links are followed verbatim.
    assert_eq!(seen[1].query.as_deref(), Some("$skip=1"));
    assert_eq!(
        seen[2].query.as_deref(),
        Some("$skiptoken=abc%3D&api-version=2025-12-01")
    );
    for s in &seen {
        assert_eq!(s.method, "GET");
        assert_eq!(s.authorization.as_deref(), Some("Bearer token-0"));
        let id = s.client_request_id.as_deref().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert!(s.user_agent.as_deref().unwrap().starts_with("lightsout/"));
    }
    let ids: std::collections::HashSet<_> =
        seen.iter().map(|s| s.client_request_id.clone()).collect();
    assert_eq!(ids.len(), 3, "a fresh client request id per request");
    assert_eq!(
        client.rate_limits(SUB).unwrap().reads_remaining,
        Some(11998)
    );
    assert_eq!(client.rate_limits("other"), None);
}

#[tokio::test]
async fn a_failed_page_fails_the_whole_list() {
    let server = Fake::start(move |seen, _, base| match seen.path.as_str() {
        "/page2" => Reply::json(
            400,
            r#"{"error":{"code":"InvalidSkipToken","message":"bad token"}}"#,
        ),
        _ => Reply::json(
            200,
            format!(
                r#"{{"value":[{}],"nextLink":"{}/page2"}}"#,
                compute_json("ci-1", "Running"),
                base
            ),
        ),
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let err = client.list_computes(&ws()).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.arm_code(), Some("InvalidSkipToken"));
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn next_link_loop_is_detected() {
    let server = Fake::start(move |_, _, base| {
        Reply::json(200, format!(r#"{{"value":[],"nextLink":"{}/same"}}"#, base))
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let err = client.list_computes(&ws()).await.unwrap_err();
    assert_eq!(err.kind(), "protocol", "{err}");
    assert!(server.count() <= 3);
}

#[tokio::test]
async fn next_link_to_another_host_is_refused() {
    let server = Fake::start(|_, _, _| {
        Reply::json(
            200,
            r#"{"value":[],"nextLink":"https://evil.example.com/steal"}"#,
        )
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let err = client.list_computes(&ws()).await.unwrap_err();
    assert_eq!(err.kind(), "invalid_url");
    assert_eq!(server.count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn throttled_429_honours_retry_after() {
    let server = Fake::start(|_, nth, _| {
        if nth == 0 {
            Reply::json(
                429,
                r#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#,
            )
            .header("retry-after", "1")
        } else {
            Reply::json(200, compute_json("ci-1", "Running"))
        }
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let started = Instant::now();
    let c = client.get_compute(&ws(), "ci-1").await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(c.name.as_deref(), Some("ci-1"));
    assert_eq!(server.count(), 2);
    assert!(
        elapsed >= Duration::from_millis(950),
        "waited only {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "waited {elapsed:?}");
}

#[tokio::test]
async fn retry_after_ms_header_is_honoured() {
    let server = Fake::start(|_, nth, _| {
        if nth == 0 {
            Reply::empty(429).header("x-ms-retry-after-ms", "300")
        } else {
            Reply::json(200, compute_json("ci-1", "Running"))
        }
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let started = Instant::now();
    client.get_compute(&ws(), "ci-1").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(280));
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn retry_after_beyond_budget_returns_the_error_with_the_delay() {
    let server = Fake::start(|_, _, _| Reply::empty(429).header("retry-after", "3600")).await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let err = client.get_compute(&ws(), "ci-1").await.unwrap_err();
    assert_eq!(err.kind(), "throttled");
    assert!(err.is_retriable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let server = Fake::start(|_, nth, _| {
        if nth < 2 {
            Reply::empty(503)
        } else {
            Reply::json(200, compute_json("ci-1", "Running"))
        }
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    client.get_compute(&ws(), "ci-1").await.unwrap();
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn persistent_server_errors_stop_after_max_attempts() {
    let server = Fake::start(|_, _, _| {
        Reply::json(
            500,
            r#"{"error":{"code":"InternalServerError","message":"oops"}}"#,
        )
        .header("x-ms-request-id", "req-123")
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let err = client.get_compute(&ws(), "ci-1").await.unwrap_err();
    assert_eq!(err.kind(), "server_error");
    assert_eq!(err.request_id(), Some("req-123"));
    assert_eq!(server.count(), 4);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (status, body) in [
        (400, r#"{"error":{"code":"BadRequest","message":"no"}}"#),
        (
            404,
            r#"{"error":{"code":"ResourceNotFound","message":"gone"}}"#,
        ),
        (
            403,
            r#"{"error":{"code":"AuthorizationFailed","message":"The client 'x' with object id 'x' does not have authorization to perform action 'Microsoft.MachineLearningServices/workspaces/computes/stop/action' over scope '/subscriptions/s' or the scope is invalid."}}"#,
        ),
        (501, r#"{"error":{"code":"NotImplemented","message":"no"}}"#),
    ] {
        let server = Fake::start(move |_, _, _| Reply::json(status, body)).await;
        let client = client_for(&server.base, Arc::new(FakeCredential::default()));
        let err = client.stop(&ws(), "ci-1").await.unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert!(!err.is_retriable());
        assert_eq!(server.count(), 1, "status {status} must not be retried");
        if status == 403 {
            assert_eq!(
                err.missing_action().as_deref(),
                Some("Microsoft.MachineLearningServices/workspaces/computes/stop/action")
            );
        }
        if status == 404 {
            assert!(err.is_not_found());
        }
    }
}

#[tokio::test]
async fn unauthorized_refreshes_the_token_once_then_succeeds() {
    let server = Fake::start(|seen, _, _| {
        if seen.authorization.as_deref() == Some("Bearer token-0") {
            Reply::json(
                401,
                r#"{"error":{"code":"ExpiredAuthenticationToken","message":"expired"}}"#,
            )
        } else {
            Reply::json(200, compute_json("ci-1", "Running"))
        }
    })
    .await;
    let cred = Arc::new(FakeCredential::default());
    let client = client_for(&server.base, cred.clone());
    client.get_compute(&ws(), "ci-1").await.unwrap();
    assert_eq!(cred.forced.load(Ordering::SeqCst), 1);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer token-1"));
}

#[tokio::test]
async fn unauthorized_twice_is_an_error() {
    let server = Fake::start(|_, _, _| {
        Reply::json(
            401,
            r#"{"error":{"code":"InvalidAuthenticationToken","message":"no"}}"#,
        )
    })
    .await;
    let cred = Arc::new(FakeCredential::default());
    let client = client_for(&server.base, cred.clone());
    let err = client.get_compute(&ws(), "ci-1").await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.kind(), "unauthorized");
    assert_eq!(cred.forced.load(Ordering::SeqCst), 1);
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn token_failure_is_an_auth_error_and_sends_nothing() {
    let server = Fake::start(|_, _, _| Reply::empty(200)).await;
    let cred = Arc::new(FakeCredential {
        fail: true,
        ..FakeCredential::default()
    });
    let client = client_for(&server.base, cred);
    let err = client.get_compute(&ws(), "ci-1").await.unwrap_err();
    assert_eq!(err.kind(), "auth");
    assert!(!err.is_retriable());
    // The credential's message is in the source chain, not repeated in Display.
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("fake credential refuses"));
    assert!(!err.to_string().contains("fake credential refuses"));
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn malformed_json_is_a_decode_error() {
    let server = Fake::start(|_, _, _| Reply::json(200, r#"{"value": [ {"name": "ci-1", "#)).await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let err = client.list_computes(&ws()).await.unwrap_err();
    assert_eq!(err.kind(), "decode");
    let msg = err.to_string();
    assert!(msg.contains("list_computes"), "{msg}");
    assert!(msg.contains("compute list page"), "{msg}");
    let err = client.get_compute(&ws(), "ci-1").await.unwrap_err();
    assert_eq!(err.kind(), "decode");
}

#[tokio::test]
async fn huge_html_error_body_is_truncated() {
    let html = format!("<html><body>{}</body></html>", "gateway ".repeat(2000));
    let server = Fake::start(move |_, _, _| Reply {
        status: 502,
        headers: vec![("content-type".into(), "text/html".into())],
        body: html.clone(),
    })
    .await;
    let client = client_with(
        &server.base,
        Arc::new(FakeCredential::default()),
        ArmClientConfig {
            retry: RetryPolicy::no_retries(),
            ..test_config()
        },
    );
    let err = client.get_compute(&ws(), "ci-1").await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(err.to_string().len() < 400, "{err}");
}

#[tokio::test]
async fn unreachable_endpoint_is_a_transport_error() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let client = client_for(&base, Arc::new(FakeCredential::default()));
    let err = client.get_compute(&ws(), "ci-1").await.unwrap_err();
    assert!(matches!(err, AzureError::Transport { .. }), "{err:?}");
    assert_eq!(err.kind(), "transport");
    assert!(err.is_retriable());
}

// ---------------------------------------------------------------------------------------------
// Long-running operations
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn lro_via_azure_async_operation() {
    let server = Fake::start(move |seen, nth, base| {
        if seen.path.ends_with("/stop") {
            Reply::empty(202)
                .header(
                    "azure-asyncoperation",
                    format!("{}/operations/op-1?api-version=2025-12-01", base),
                )
                .header("location", format!("{}/results/op-1", base))
                .header("retry-after", "0")
                .header("x-ms-request-id", "rid-stop")
                .header("x-ms-ratelimit-remaining-subscription-writes", "1199")
        } else if seen.path == "/operations/op-1" {
            if nth < 2 {
                Reply::json(200, r#"{"status":"InProgress"}"#).header("retry-after", "0")
            } else {
                Reply::json(200, r#"{"status":"Succeeded"}"#)
            }
        } else {
            Reply::empty(500)
        }
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let op = client.stop(&ws(), "ci-1").await.unwrap();
    match &op {
        Accepted::Pending {
            via,
            retry_after,
            request_id,
            ..
        } => {
            assert_eq!(*via, PollVia::AzureAsyncOperation);
            assert_eq!(*retry_after, Some(Duration::ZERO));
            assert_eq!(request_id.as_deref(), Some("rid-stop"));
        }
        other => panic!("{other:?}"),
    }
    let mut outcomes = Vec::new();
    client
        .wait_operation(&op, |o| outcomes.push(o.clone()))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[2], PollOutcome::Succeeded);

    let seen = server.seen();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, format!("{}/stop", ws().compute_path("ci-1")));
    assert_eq!(seen[0].query.as_deref(), Some("api-version=2025-12-01"));
    assert_eq!(seen[0].content_length.as_deref(), Some("0"));
    assert_eq!(seen.len(), 4);
    assert!(seen[1..].iter().all(|s| s.path == "/operations/op-1"));
    assert_eq!(
        client.rate_limits(SUB).unwrap().writes_remaining,
        Some(1199)
    );
}

#[tokio::test]
async fn lro_failure_carries_the_error() {
    let server = Fake::start(move |seen, _, base| {
        if seen.path.ends_with("/start") {
            Reply::empty(202).header("azure-asyncoperation", format!("{}/operations/op-2", base))
        } else {
            Reply::json(
                200,
                r#"{"status":"Failed","error":{"code":"ComputeStartFailed","message":"quota"}}"#,
            )
        }
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let op = client.start(&ws(), "ci-1").await.unwrap();
    let err = client.wait_operation(&op, |_| {}).await.unwrap_err();
    assert_eq!(err.kind(), "operation_failed");
    assert_eq!(err.arm_code(), Some("ComputeStartFailed"));
}

#[tokio::test]
async fn lro_via_location() {
    let server = Fake::start(move |seen, nth, base| {
        if seen.method == "DELETE" {
            Reply::empty(202).header("location", format!("{}/results/del-1", base))
        } else if nth == 0 {
            Reply::empty(202)
        } else {
            Reply::empty(204)
        }
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let op = client
        .delete_compute(&ws(), "ci-1", UnderlyingResourceAction::Delete)
        .await
        .unwrap();
    assert!(matches!(
        op,
        Accepted::Pending {
            via: PollVia::Location,
            ..
        }
    ));
    assert!(!client.poll_operation(&op).await.unwrap().is_terminal());
    assert_eq!(
        client.poll_operation(&op).await.unwrap(),
        PollOutcome::Succeeded
    );
    let seen = server.seen();
    assert_eq!(
        seen[0].query.as_deref(),
        Some("api-version=2025-12-01&underlyingResourceAction=Delete")
    );
    assert_eq!(seen.len(), 3);
}

#[tokio::test]
async fn poll_url_on_another_host_is_refused() {
    let server = Fake::start(|_, _, _| {
        Reply::empty(202).header("azure-asyncoperation", "https://evil.example.com/op")
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let err = client.restart(&ws(), "ci-1").await.unwrap_err();
    assert_eq!(err.kind(), "untracked");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn absurd_poll_url_is_a_clear_error() {
    let server = Fake::start(|_, _, _| {
        Reply::empty(202).header(
            "location",
            format!(
                "http://127.0.0.1/{}",
                "x".repeat(lightsout::azure::lro::MAX_URL_LEN)
            ),
        )
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let err = client.stop(&ws(), "ci-1").await.unwrap_err();
    // Accepted all the same: not a failure to retry.
    assert_eq!(err.kind(), "untracked");
    assert!(err.to_string().contains("16 KiB"), "{err}");
    assert!(err.to_string().len() < 400, "{err}");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn wait_operation_times_out() {
    let server = Fake::start(move |seen, _, base| {
        if seen.path.ends_with("/stop") {
            Reply::empty(202).header("azure-asyncoperation", format!("{}/operations/slow", base))
        } else {
            Reply::json(200, r#"{"status":"Running"}"#)
        }
    })
    .await;
    let client = client_with(
        &server.base,
        Arc::new(FakeCredential::default()),
        ArmClientConfig {
            operation_timeout: Duration::from_millis(60),
            ..test_config()
        },
    );
    let op = client.stop(&ws(), "ci-1").await.unwrap();
    let err = client.wait_operation(&op, |_| {}).await.unwrap_err();
    assert_eq!(err.kind(), "timeout");
}

/// A native setting changes as Microsoft's current tools change it: GET the compute, PUT it
/// back whole (read-only parts out) at 2023-08-01-preview; a 200 is done at once.
#[tokio::test]
async fn native_settings_change_by_get_and_put_of_the_whole_compute() {
    let recorded = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/azure/recorded/real-get-running-2024-12.body.json"),
    )
    .unwrap();
    let server = Fake::start(move |seen, _, _| {
        if seen.method == "GET" {
            Reply::json(200, recorded.clone())
        } else {
            Reply::json(200, seen.body.clone())
        }
    })
    .await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let op = client
        .update_native(&ws(), "ci-1", &NativeSetting::idle("PT60M"))
        .await
        .unwrap();
    assert!(op.is_completed());
    client
        .wait_operation(&op, |_| panic!("no poll"))
        .await
        .unwrap();
    let seen = server.seen();
    assert_eq!(
        seen.iter().map(|s| s.method.as_str()).collect::<Vec<_>>(),
        ["GET", "PUT"]
    );
    for s in &seen {
        assert_eq!(s.path, ws().compute_path("ci-1"));
        assert_eq!(s.query.as_deref(), Some("api-version=2023-08-01-preview"));
    }
    let put: serde_json::Value = serde_json::from_str(&seen[1].body).unwrap();
    let inst = &put["properties"]["properties"];
    assert_eq!(inst["idleTimeBeforeShutdown"], "PT60M");
    assert_eq!(inst["vmSize"], "Standard_DS2_v2");
    assert!(inst.get("state").is_none() && inst.get("applications").is_none());

    // Schedules: the list given replaces what was there.
    let schedules = ComputeSchedules {
        compute_start_stop: Some(vec![ComputeStartStopSchedule {
            status: Some(ScheduleStatus::Enabled),
            action: Some(ComputePowerAction::Stop),
            trigger_type: Some(TriggerType::Cron),
            cron: Some(CronTrigger {
                expression: Some("0 18 * * *".into()),
                start_time: None,
                time_zone: Some("UTC".into()),
            }),
            ..ComputeStartStopSchedule::default()
        }]),
    };
    client
        .update_native(
            &ws(),
            "ci-1",
            &NativeSetting::schedules(serde_json::to_value(&schedules).unwrap()),
        )
        .await
        .unwrap();
    let seen = server.seen();
    let put: serde_json::Value = serde_json::from_str(&seen[3].body).unwrap();
    assert_eq!(
        put["properties"]["properties"]["schedules"].to_string(),
        r#"{"computeStartStop":[{"action":"Stop","cron":{"expression":"0 18 * * *","timeZone":"UTC"},"status":"Enabled","triggerType":"Cron"}]}"#
    );
}

#[tokio::test]
async fn get_compute_parses_the_recorded_example() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/azure/2025-12-01/Compute/get/ComputeInstance.json");
    let example: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let body = example["responses"]["200"]["body"].to_string();
    let server = Fake::start(move |_, _, _| Reply::json(200, body.clone())).await;
    let client = client_for(&server.base, Arc::new(FakeCredential::default()));
    let c = client.get_compute(&ws(), "compute123").await.unwrap();
    assert_eq!(c.instance_state(), Some(&ComputeInstanceState::Running));
    assert_eq!(
        c.instance().unwrap().vm_size.as_deref(),
        Some("STANDARD_NC6")
    );
}

#[tokio::test]
async fn request_hook_counts_by_operation_and_status() {
    let server = Fake::start(|_, nth, _| {
        if nth == 0 {
            Reply::empty(503)
        } else {
            Reply::json(200, compute_json("ci-1", "Running"))
        }
    })
    .await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let client = client_with(
        &server.base,
        Arc::new(FakeCredential::default()),
        ArmClientConfig {
            on_request: Some(Arc::new(move |e| {
                sink.lock().unwrap().push((e.operation, e.status));
            })),
            ..test_config()
        },
    );
    client.get_compute(&ws(), "ci-1").await.unwrap();
    assert_eq!(
        *events.lock().unwrap(),
        vec![("get_compute", Some(503)), ("get_compute", Some(200))]
    );
}
