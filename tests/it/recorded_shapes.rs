//! The daemon and `ci` against answers rewritten into the shapes real Azure recorded,
//! independently of how the emulator imitates them: a proxy between lightsout and the
//! emulator gives every 202 the literal signed `Azure-AsyncOperation` query of
//! `tests/fixtures/azure/recorded/real-ao-url-signed-2024-12.txt` (3.2 KB), drops every
//! `Location` and `Retry-After`. Jupyter is not on the ARM host: the daemon asks each
//! instance's own host (resolved to the emulator, ARM being on loopback), whose gateway
//! refuses every service principal with 403 here (`gateway_accepts_service_principals =
//! false`: a Personal instance's applications, or a gateway that refuses them).
//!
//! The proxy speaks plain HTTP on loopback to lightsout and HTTPS to the emulator.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

use crate::support::{ADMIN, EmulatorProcess, RG, SUB, WS, fleet, within};

/// The recorded signed poll URL's query (after the operation id).
fn recorded_query() -> String {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/azure/recorded/real-ao-url-signed-2024-12.txt"
    ))
    .unwrap();
    let (_, query) = raw.trim().split_once('?').unwrap();
    assert!(query.contains("&c=") && query.contains("&s=") && query.contains("&h="));
    query.to_owned()
}

struct Proxy {
    /// The emulator's endpoint (no trailing slash).
    upstream: String,
    /// This proxy's own base URL.
    base: String,
    http: reqwest::Client,
    query: String,
    /// Operation id → the emulator's own poll URL.
    ops: Mutex<HashMap<String, String>>,
    /// Every request: (method, path).
    seen: Mutex<Vec<(String, String)>>,
    /// The poll URLs handed out.
    handed_out: Mutex<Vec<String>>,
}

async fn handle(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    p.seen
        .lock()
        .unwrap()
        .push((method.to_string(), path.clone()));
    let target = match path.rsplit_once("/computeOperationsStatus/") {
        Some((_, id)) => match p.ops.lock().unwrap().get(id) {
            Some(url) => url.clone(),
            None => return Response::builder().status(404).body(Body::empty()).unwrap(),
        },
        None => format!(
            "{}{path}{}",
            p.upstream,
            query.map(|q| format!("?{q}")).unwrap_or_default()
        ),
    };
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap();
    let mut up = p.http.request(method, &target).body(body.to_vec());
    for name in ["authorization", "content-type", "x-ms-client-request-id"] {
        if let Some(v) = headers.get(name) {
            up = up.header(name, v);
        }
    }
    let r = up.send().await.unwrap();
    let status = r.status();
    let mut out = Response::builder().status(status.as_u16());
    let mut ao = None;
    for (name, value) in r.headers() {
        match name.as_str() {
            "location" | "retry-after" | "content-length" | "transfer-encoding" => {}
            "azure-asyncoperation" => ao = Some(value.to_str().unwrap().to_owned()),
            _ => out = out.header(name, value),
        }
    }
    if let Some(url) = ao {
        let parsed = url::Url::parse(&url).unwrap();
        let id = parsed.path().rsplit('/').next().unwrap().to_owned();
        let loc_path = parsed
            .path()
            .rsplit_once("/computeOperationsStatus/")
            .unwrap()
            .0;
        let signed = format!(
            "{}{loc_path}/computeOperationsStatus/{id}?{}",
            p.base, p.query
        );
        p.ops.lock().unwrap().insert(id, url);
        p.handed_out.lock().unwrap().push(signed.clone());
        out = out.header(
            HeaderName::from_static("azure-asyncoperation"),
            HeaderValue::from_str(&signed).unwrap(),
        );
    }
    // Links inside bodies (nextLink, applications) point back through the proxy.
    let text = r.text().await.unwrap();
    let text = text.replace(&p.upstream, &p.base);
    out.body(Body::from(text)).unwrap()
}

async fn start_proxy(emu: &EmulatorProcess) -> Arc<Proxy> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let proxy = Arc::new(Proxy {
        upstream: emu.ready.endpoint.trim_end_matches('/').to_owned(),
        base: format!("http://{addr}"),
        http: emu.http.clone(),
        query: recorded_query(),
        ops: Mutex::new(HashMap::new()),
        seen: Mutex::new(Vec::new()),
        handed_out: Mutex::new(Vec::new()),
    });
    let app = Router::new().fallback(handle).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    proxy
}

/// A config whose ARM endpoint is the proxy (tokens still come from the emulator's Entra
/// ID over HTTPS), with `policy` and `[daemon]` settings.
fn config(emu: &EmulatorProcess, proxy: &Proxy, policy: &str) -> std::path::PathBuf {
    let r = &emu.ready;
    let text = format!(
        r#"[daemon]
state_dir = "{state}"
poll_interval = "60s"

[http]
listen = "127.0.0.1:0"

[azure]
arm_endpoint = "{arm}"
authority_host = "{ep}"
ca_file = "{ca}"
credential = "client_secret"
tenant_id = "{tenant}"
client_id = "{client}"
jupyter_token_scope = "https://ml.azure.com/.default"

[[workspace]]
name = "lab"
subscription_id = "{SUB}"
resource_group = "{RG}"
workspace = "{WS}"
region = "eastus2"

{policy}
"#,
        state = emu.dir.path().join("state-lightsout").display(),
        arm = proxy.base,
        ep = r.endpoint,
        ca = r.ca_file,
        tenant = r.tenant_id,
        client = ADMIN.0,
    );
    let path = emu.dir.path().join("recorded-shapes.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// An office-hours window in UTC that closed a minute ago (opened two hours before).
fn window_closed_a_minute_ago() -> String {
    let now = lightsout::clock::now().to_zoned(jiff::tz::TimeZone::UTC);
    let open = now
        .checked_sub(jiff::SignedDuration::from_hours(2))
        .unwrap();
    let close = now.checked_sub(jiff::SignedDuration::from_mins(1)).unwrap();
    format!(
        "{} {}-{}",
        open.strftime("%a"),
        open.strftime("%H:%M"),
        close.strftime("%H:%M")
    )
}

#[tokio::test]
async fn lightsout_works_against_answers_in_the_recorded_shapes() {
    within(240, async {
        let timing = "create = \"20s\"\nstart = \"20s\"\nstop = \"20s\"\nrestart = \"20s\"\ndelete = \"20s\"";
        let fleet = fleet(
            crate::support::GENEROUS,
            timing,
            &[
                ("ci-office", "Running"),
                ("ci-notebook", "Running"),
                ("ci-byhand", "Running"),
            ],
        );
        let emu =
            EmulatorProcess::start(&format!("gateway_accepts_service_principals = false\n{fleet}"))
                .await;
        let proxy = start_proxy(&emu).await;
        let window = window_closed_a_minute_ago();
        // A default office-hours policy (no signals named); a second one that opts into
        // Jupyter, which the gateway refuses: neither may be blocked by what it cannot read.
        let policy = format!(
            r#"[[policy]]
name = "notebooks"
instances = ["ci-notebook"]
uptime = ["{window}"]
[policy.idle]
signals = ["arm", "jupyter"]

[[policy]]
name = "office-hours"
instances = ["ci-office"]
uptime = ["{window}"]
"#
        );
        let cfg = config(&emu, &proxy, &policy);

        // 1. One pass stops both instances outside their window.
        emu.run(&cfg, ADMIN.1, &["run", "--once"]).await.success();
        let stops = |seen: &[(String, String)], name: &str| {
            seen.iter()
                .filter(|(m, p)| m == "POST" && p.ends_with(&format!("/{name}/stop")))
                .count()
        };
        {
            let seen = proxy.seen.lock().unwrap().clone();
            assert_eq!(stops(&seen, "ci-office"), 1, "{seen:#?}");
            assert_eq!(stops(&seen, "ci-notebook"), 1, "{seen:#?}");
            assert!(
                seen.iter().all(|(_, p)| !p.starts_with("/instances/") && !p.starts_with("/api/")),
                "Jupyter is never asked on the ARM host: {seen:#?}"
            );
        }
        let calls = emu.calls().await;
        assert!(
            calls.iter().any(|c| c["status"] == 403
                && c["host"]
                    .as_str()
                    .is_some_and(|h| h.starts_with("ci-notebook.eastus2.instances.azureml.ms:"))),
            "Jupyter was asked on the instance's host (and refused): {calls:#?}"
        );
        for url in proxy.handed_out.lock().unwrap().iter() {
            assert!(url.len() > 3000, "the poll URL has the recorded length: {}", url.len());
        }
        // 2. The audit log holds no failed row for an accepted request.
        let audit = emu.run(&cfg, ADMIN.1, &["audit", "--json"]).await;
        let records = audit.json();
        let records = records.as_array().unwrap();
        assert_eq!(records.len(), 2, "{records:#?}");
        for r in records {
            assert_eq!(r["action"], "stop");
            assert_eq!(r["reason"], "outside_window");
            assert!(
                matches!(r["outcome"].as_str(), Some("pending" | "succeeded")),
                "{r:#?}"
            );
        }
        // 3. A second pass sends nothing.
        proxy.seen.lock().unwrap().clear();
        emu.run(&cfg, ADMIN.1, &["run", "--once"]).await.success();
        let seen = proxy.seen.lock().unwrap().clone();
        assert!(
            seen.iter().all(|(m, _)| m == "GET"),
            "a second pass sends nothing: {seen:#?}"
        );

        // 4. `ci stop --wait` follows a 20 s stop to its end in at most 5 status polls.
        proxy.seen.lock().unwrap().clear();
        let run = emu
            .run(
                &cfg,
                ADMIN.1,
                &["ci", "stop", "ci-byhand", "--workspace", "lab", "--wait"],
            )
            .await;
        run.success();
        let seen = proxy.seen.lock().unwrap().clone();
        let polls = seen
            .iter()
            .filter(|(_, p)| p.contains("/computeOperationsStatus/"))
            .count();
        assert!((1..=5).contains(&polls), "{polls} polls: {seen:#?}");
        let text = emu.state().await.to_string();
        assert!(text.contains("ci-byhand"), "{text}");
    })
    .await;
}
