//! The Jupyter probe (issue 13, items 1 and 5): its token goes only to https Azure ML instance
//! hosts, never follows a redirect, comes from its own scope (or the probe is off, and a
//! policy that needs it does not validate); a slow or huge answer fails that probe with a
//! reason, and a pass never waits long on one instance.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::support::{
    ADMIN, EmulatorProcess, FAST, GENEROUS, RG, SUB, WS, fleet, run_lightsout, within,
};

/// A policy that stops everything always and counts Jupyter; an unreadable Jupyter holds.
const HOLD_UNKNOWN: &str = r#"
[[policy]]
name = "closed"
enforcement = "always"
unknown_activity = "hold"
exceptions = [ { from = "2000-01-01T00:00", to = "2100-01-01T00:00", state = "down" } ]
[policy.idle]
signals = ["arm", "jupyter"]
"#;

/// A plain-HTTP ARM in front of the emulator that rewrites instances' Jupyter URLs: `ci-a`'s
/// onto this ARM host itself over http, `ci-b`'s onto a real-shaped instance host over
/// http (which resolves here, to this proxy). Anything not ARM that reaches it is a leak.
struct Arm {
    upstream: String,
    base: String,
    port: u16,
    emulator_port: String,
    http: reqwest::Client,
    /// (path, had an Authorization header) of every request outside /subscriptions.
    strays: Mutex<Vec<(String, bool)>>,
}

async fn arm(State(p): State<Arc<Arm>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if !path.starts_with("/subscriptions/") {
        let auth = req.headers().contains_key("authorization");
        p.strays.lock().unwrap().push((path, auth));
        return Response::builder().status(404).body(Body::empty()).unwrap();
    }
    let url = format!(
        "{}{}",
        p.upstream,
        req.uri().path_and_query().unwrap().as_str()
    );
    let mut up = p.http.request(req.method().clone(), url);
    if let Some(v) = req.headers().get("authorization") {
        up = up.header("authorization", v);
    }
    let r = up.header("content-length", "0").send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let at = |inst: &str| {
        format!(
            "https://{inst}.eastus2.instances.azureml.ms:{}",
            p.emulator_port
        )
    };
    let text = text
        .replace(&at("ci-a"), &format!("{}/instances/{WS}/ci-a", p.base))
        .replace(
            &at("ci-b"),
            &format!("http://ci-b.eastus2.instances.azureml.ms:{}", p.port),
        )
        // nextLink and the like come back through this ARM.
        .replace(&p.upstream, &p.base);
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(text))
        .unwrap()
}

async fn start_arm(emu: &EmulatorProcess) -> Arc<Arm> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let p = Arc::new(Arm {
        upstream: emu.ready.endpoint.clone(),
        base: format!("http://{addr}"),
        port: addr.port(),
        emulator_port: emu.ready.endpoint.rsplit(':').next().unwrap().to_owned(),
        http: emu.http.clone(),
        strays: Mutex::new(Vec::new()),
    });
    let app = Router::new().fallback(arm).with_state(p.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    p
}

/// A daemon config: ARM at `arm`, Entra ID at the emulator, `scope` if given, `policy`.
fn config(
    emu: &EmulatorProcess,
    arm: &str,
    scope: Option<&str>,
    policy: &str,
) -> std::path::PathBuf {
    let r = &emu.ready;
    let scope = scope.map_or(String::new(), |s| format!("jupyter_token_scope = {s:?}\n"));
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
{scope}
[[workspace]]
name = "lab"
subscription_id = "{SUB}"
resource_group = "{RG}"
workspace = "{WS}"
region = "eastus2"
{policy}
"#,
        state = emu.dir.path().join("state-probe").display(),
        ep = r.endpoint,
        ca = r.ca_file,
        tenant = r.tenant_id,
        client = ADMIN.0,
    );
    let path = emu.dir.path().join("probe.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn rows(plan: &crate::support::Run) -> Vec<Value> {
    plan.success().json().as_array().unwrap().clone()
}

/// Item 1: the token never goes to the ARM host, over http, or through a redirect; it is
/// issued for the Jupyter scope (the emulator's instances refuse an ARM token).
#[tokio::test]
async fn the_jupyter_token_goes_only_to_https_instance_hosts_and_never_follows_a_redirect() {
    within(180, async {
        let emu = EmulatorProcess::start(&fleet(
            GENEROUS,
            FAST,
            &[
                ("ci-a", "Running"),
                ("ci-b", "Running"),
                ("ci-c", "Running"),
            ],
        ))
        .await;
        let arm = start_arm(&emu).await;
        // Every Jupyter answer is a 307 to the ARM host: a client that follows it would
        // carry the request (and, same host, the token) there.
        emu.faults(json!({"jupyter_redirect": format!("{}/stolen", arm.base)}))
            .await;
        let cfg = config(
            &emu,
            &arm.base,
            Some("https://ml.azure.com/.default"),
            HOLD_UNKNOWN,
        );
        let plan = emu.run(&cfg, ADMIN.1, &["plan", "--json"]).await;
        for row in rows(&plan) {
            assert_eq!(row["skip"], "activity_unknown", "{row:#}");
        }
        emu.run(&cfg, ADMIN.1, &["run", "--once"]).await.success();
        let doctor = emu.run(&cfg, ADMIN.1, &["doctor"]).await;
        let out = format!("{}{}", doctor.stdout, doctor.stderr);
        assert!(out.contains("a Jupyter URL must be https"), "{out}");
        assert!(out.contains("redirect, not followed"), "{out}");
        assert!(
            arm.strays.lock().unwrap().is_empty(),
            "nothing but ARM requests reach the ARM host: {:?}",
            arm.strays.lock().unwrap()
        );
        // ci-c's real-shaped https host was asked, with a token the instance accepts.
        let calls = emu.calls().await;
        let asked: Vec<&Value> = calls
            .iter()
            .filter(|c| c["host"].as_str().is_some_and(|h| h.starts_with("ci-c.")))
            .collect();
        assert!(!asked.is_empty(), "{calls:#?}");
        // Authenticated there (a principal, so the token's audience was Jupyter's).
        assert!(
            asked
                .iter()
                .all(|c| c["status"] == 307 && c["principal"] == ADMIN.0),
            "{asked:#?}"
        );
        assert!(
            !calls
                .iter()
                .any(|c| c["host"].as_str().is_some_and(|h| !h.starts_with("ci-c."))),
            "only the https instance host was asked: {calls:#?}"
        );
    })
    .await;
}

/// Item 1: without `[azure] jupyter_token_scope` a policy that counts Jupyter does not
/// validate (exit 78, naming file:line:col and the key); with ARM's scope neither.
#[tokio::test]
async fn the_jupyter_signal_without_its_own_scope_is_a_config_error() {
    within(60, async {
        let dir = tempfile::tempdir().unwrap();
        for (scope, expect) in [
            (None, "azure.jupyter_token_scope is not set"),
            (
                Some("https://management.azure.com/.default"),
                "must not be the Azure Resource Manager scope",
            ),
        ] {
            let scope = scope.map_or(String::new(), |s| format!("jupyter_token_scope = {s:?}\n"));
            let text = format!(
                "[azure]\n{scope}\n[[workspace]]\nname = \"lab\"\nsubscription_id = \"{SUB}\"\n\
                 resource_group = \"{RG}\"\nworkspace = \"{WS}\"\n{HOLD_UNKNOWN}"
            );
            let path = dir.path().join("l.toml");
            std::fs::write(&path, text).unwrap();
            let r = run_lightsout(&["validate"], Some(&path), &[]).await;
            r.code(78);
            assert!(r.stderr.contains(expect), "{r:#?}");
            assert!(r.stderr.contains("l.toml:"), "names the file: {r:#?}");
        }
    })
    .await;
}

/// Item 5: a Jupyter that answers slowly fails its probe after 5 s with the reason; forty
/// of them do not hold the pass for long (a per-pass budget), and the decisions say
/// "activity unknown" instead of waiting.
#[tokio::test]
async fn a_slow_jupyter_fails_its_probe_and_does_not_hold_up_the_pass() {
    within(240, async {
        let names: Vec<String> = (0..40).map(|i| format!("ci-{i:02}")).collect();
        let instances: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "Running")).collect();
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &instances)).await;
        emu.faults(json!({"jupyter_latency_ms": 45_000})).await;
        let cfg = config(
            &emu,
            &emu.ready.endpoint,
            Some("https://ml.azure.com/.default"),
            HOLD_UNKNOWN,
        );
        let began = tokio::time::Instant::now();
        emu.run(&cfg, ADMIN.1, &["run", "--once"]).await.success();
        let took = began.elapsed();
        // Each probe gives up after 5 s and the pass's probes after 15 s: well under the
        // 45 s one answer takes (the old client waited 60 s per request, in turn).
        assert!(took < Duration::from_secs(40), "the pass took {took:?}");
        let calls = emu.calls().await;
        assert!(
            !calls
                .iter()
                .any(|c| c["method"] == "POST" && c["path"].as_str().unwrap().ends_with("/stop")),
            "activity unknown holds: {calls:#?}"
        );
        let plan = emu.run(&cfg, ADMIN.1, &["plan", "--json"]).await;
        for row in rows(&plan) {
            assert_eq!(row["skip"], "activity_unknown", "{row:#}");
        }

        // The reason, per instance (one instance is enough to read it).
        let one = fleet(GENEROUS, FAST, &[("ci-a", "Running")]);
        let emu2 = EmulatorProcess::start(&one).await;
        emu2.faults(json!({"jupyter_latency_ms": 45_000})).await;
        let cfg2 = config(
            &emu2,
            &emu2.ready.endpoint,
            Some("https://ml.azure.com/.default"),
            HOLD_UNKNOWN,
        );
        let doctor = emu2.run(&cfg2, ADMIN.1, &["doctor"]).await;
        let out = format!("{}{}", doctor.stdout, doctor.stderr);
        assert!(
            out.contains("jupyter of ci-a") && out.contains("gave up after 5s"),
            "{out}"
        );
    })
    .await;
}

/// Item 5: a huge Jupyter answer (streamed, no length) is refused after 1 MiB with the
/// reason, and the pass goes on.
#[tokio::test]
async fn a_huge_jupyter_answer_is_refused_after_one_mebibyte() {
    within(180, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Running")])).await;
        emu.faults(json!({"jupyter_body_bytes": 64u64 * 1024 * 1024}))
            .await;
        let cfg = config(
            &emu,
            &emu.ready.endpoint,
            Some("https://ml.azure.com/.default"),
            HOLD_UNKNOWN,
        );
        let doctor = emu.run(&cfg, ADMIN.1, &["doctor"]).await;
        let out = format!("{}{}", doctor.stdout, doctor.stderr);
        assert!(out.contains("response larger than 1048576 bytes"), "{out}");
        emu.run(&cfg, ADMIN.1, &["run", "--once"]).await.success();
        let plan = emu.run(&cfg, ADMIN.1, &["plan", "--json"]).await;
        assert_eq!(rows(&plan)[0]["skip"], "activity_unknown");
    })
    .await;
}
