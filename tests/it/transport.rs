//! Issue 13, transport and input hardening: the binary (or the real HTTP client) against
//! small local fakes on 127.0.0.1, with tokens from the emulator binary where a request must
//! really be authorised.
//!
//! - no redirect is followed where a credential travels (a 307/308 from the authority or ARM);
//! - ARM over http only on loopback; a group- or world-readable secret file is refused;
//! - durations from outside are clamped (`Retry-After: 18446744073709551615`), config
//!   durations bounded;
//! - names outside Azure's rules never reach a URL; ARM's text is escaped and cut.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Fake, FakeCredential, Reply, client_with, test_config};
use crate::support::{
    ADMIN, EmulatorProcess, FAST, GENEROUS, RG, Run, SUB, WS, fleet, run_lightsout,
};
use lightsout::azure::{
    ArmClient, ArmEndpoint, AzureError, HttpTimeouts, TransportKind, build_http_client,
};
use lightsout::engine::model::WorkspaceRef;

const SECRET: &str = "SECRET-must-stay-home-7f3a";

fn ws() -> WorkspaceRef {
    WorkspaceRef {
        subscription_id: SUB.into(),
        resource_group: RG.into(),
        workspace: WS.into(),
    }
}

/// A plain-http server that records whatever reaches it: where a stolen credential would land.
async fn thief() -> Fake {
    Fake::start(|_, _, _| Reply::json(200, r#"{"access_token":"x","expires_in":3600}"#)).await
}

// ---- item 2: no redirects where credentials travel --------------------------------------------

/// An HTTPS fake authority on 127.0.0.1 answering every request with a redirect to `location`.
async fn redirecting_authority(dir: &Path, status: u16, location: String) -> (String, PathBuf) {
    tls_fake(
        dir,
        status,
        vec![("location".to_owned(), location)],
        String::new(),
    )
    .await
}

/// An HTTPS fake on 127.0.0.1 (the emulator's CA and certificate) answering every request with
/// `status`, `headers` and `body`. Returns its base URL and the CA file.
async fn tls_fake(
    dir: &Path,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
) -> (String, PathBuf) {
    let tls = azure_ml_emulator::tls::server_config(dir, &[]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, headers, body) = (acceptor.clone(), headers.clone(), body.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    move |_req: hyper::Request<hyper::body::Incoming>| {
                        let (headers, body) = (headers.clone(), body.clone());
                        async move {
                            let mut r = hyper::Response::builder().status(status);
                            for (k, v) in headers {
                                r = r.header(k, v);
                            }
                            r.body(axum::body::Body::from(body))
                        }
                    },
                );
                // A client that hangs up is no concern of the test.
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await
                    .ok();
            });
        }
    });
    (base, dir.join("ca.pem"))
}

/// A 307 or 308 from the authority host must not re-post `client_secret=…` to the host it
/// names (reqwest follows both by default, body included); the command fails saying why.
#[tokio::test]
async fn a_redirect_from_the_authority_never_carries_the_secret_away() {
    for status in [307u16, 308] {
        let thief = thief().await;
        let dir = tempfile::tempdir().unwrap();
        let (authority, ca) =
            redirecting_authority(dir.path(), status, format!("{}stolen", thief.base)).await;
        let cfg = dir.path().join("lightsout.toml");
        std::fs::write(
            &cfg,
            format!(
                r#"[azure]
arm_endpoint = "{arm}"
authority_host = "{authority}"
ca_file = "{ca}"
credential = "client_secret"
tenant_id = "00000000-0000-0000-0000-0000000000aa"
client_id = "{client}"

[[workspace]]
name = "lab"
subscription_id = "{SUB}"
resource_group = "{RG}"
workspace = "{WS}"
"#,
                arm = thief.base,
                ca = ca.display(),
                client = ADMIN.0,
            ),
        )
        .unwrap();
        let run = run_lightsout(
            &["ci", "list", "--workspace", "lab"],
            Some(&cfg),
            &[("AZURE_CLIENT_SECRET", SECRET)],
        )
        .await;
        assert_eq!(run.code, Some(1), "{status}: {run:#?}");
        assert_eq!(
            thief.count(),
            0,
            "{status}: the redirect target was reached: {:#?}",
            thief.seen()
        );
        assert!(
            run.stderr.contains("refusing to follow a redirect"),
            "{status}: the error must say why: {run:#?}"
        );
        assert!(!run.stderr.contains(SECRET) && !run.stdout.contains(SECRET));
    }
}

/// The process-wide client itself: a POST with a secret body answered by 307/308 (to another
/// local host, plain http) is not sent on; the error names the refusal.
#[tokio::test]
async fn the_shared_http_client_follows_no_redirect() {
    let thief = thief().await;
    let target = format!("{}token", thief.base);
    let authority = Fake::start(move |_, nth, _| {
        let status = if nth % 2 == 0 { 307 } else { 308 };
        Reply::empty(status).header("location", target.clone())
    })
    .await;
    let http = build_http_client(None, HttpTimeouts::default()).unwrap();
    for _ in 0..2 {
        let err = http
            .post(format!("{}tenant/oauth2/v2.0/token", authority.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_secret={SECRET}"
            ))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_redirect(), "{err:?}");
        let msg = lightsout::engine::text::chain(&err);
        assert!(msg.contains("refusing to follow a redirect"), "{msg}");
        assert!(!msg.contains(SECRET), "{msg}");
    }
    assert_eq!(authority.count(), 2);
    assert_eq!(thief.count(), 0, "{:#?}", thief.seen());
}

/// ARM answering a redirect: the bearer token stays home, the error is a refused redirect and
/// is not retried.
#[tokio::test]
async fn a_redirect_from_arm_never_carries_the_token_away() {
    let thief = thief().await;
    let target = format!("{}elsewhere", thief.base);
    let arm =
        Fake::start(move |_, _, _| Reply::empty(307).header("location", target.clone())).await;
    let client = ArmClient::new(
        build_http_client(None, HttpTimeouts::default()).unwrap(),
        Arc::new(FakeCredential::default()),
        ArmEndpoint::new(arm.base.clone()).unwrap(),
        test_config(),
    );
    let err = client.get_compute(&ws(), "ci-1").await.unwrap_err();
    assert!(
        matches!(
            err,
            AzureError::Transport {
                kind: TransportKind::Redirect,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retriable());
    assert!(err.to_string().contains("redirect refused"), "{err}");
    assert_eq!(arm.count(), 1, "a refused redirect is not retried");
    assert_eq!(thief.count(), 0, "{:#?}", thief.seen());
}

/// `healthcheck` answers for the address it was given: a redirect to a healthy server
/// elsewhere is not health.
#[tokio::test]
async fn healthcheck_follows_no_redirect() {
    let healthy = Fake::start(|_, _, _| Reply::json(200, "ok")).await;
    let target = format!("{}healthz", healthy.base);
    let moved =
        Fake::start(move |_, _, _| Reply::empty(302).header("location", target.clone())).await;
    let url = format!("{}healthz", moved.base);
    let run = run_lightsout(&["healthcheck", "--url", &url], None, &[]).await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr.contains("refusing to follow a redirect"),
        "{run:#?}"
    );
    assert_eq!(healthy.count(), 0);
}

// ---- items 3, 4, 7: validate exits 78 naming FILE:LINE:COL and the key ------------------------

/// Writes `text` as a config and runs `lightsout ARGS --config it` with `env`.
async fn with_config(
    dir: &Path,
    text: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (PathBuf, Run) {
    let path = dir.join("lightsout.toml");
    std::fs::write(&path, text).unwrap();
    let run = run_lightsout(args, Some(&path), env).await;
    (path, run)
}

const WORKSPACE: &str = "[[workspace]]\nname = \"lab\"\nsubscription_id = \"34adfa4f-cedf-4dc0-ba29-b6d1a69ab345\"\nresource_group = \"rg\"\nworkspace = \"mlw\"\n";

#[tokio::test]
async fn plain_http_endpoints_are_refused_unless_loopback() {
    let dir = tempfile::tempdir().unwrap();
    for (key, url) in [
        ("arm_endpoint", "http://management.azure.com"),
        ("arm_endpoint", "http://10.1.2.3:8080"),
        ("authority_host", "http://login.microsoftonline.com"),
    ] {
        let text = format!("[azure]\n{key} = \"{url}\"\n\n{WORKSPACE}");
        let (path, run) = with_config(dir.path(), &text, &["validate"], &[]).await;
        run.code(78);
        let want = format!(
            "{}:2:{}: azure.{key}: must use https",
            path.display(),
            key.len() + 4
        );
        assert!(run.stderr.contains(&want), "want {want:?}: {run:#?}");
    }
    let text = format!("[azure]\narm_endpoint = \"http://127.0.0.1:8080\"\n\n{WORKSPACE}");
    with_config(dir.path(), &text, &["validate"], &[])
        .await
        .1
        .success();
}

fn write_secret(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn a_secret_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("client-secret");
    let text = format!(
        "[daemon]\nstate_dir = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n[azure]\ncredential = \"client_secret\"\nclient_secret_file = \"{}\"\n\n{WORKSPACE}",
        dir.path().join("state").display(),
        secret.display()
    );
    for mode in [0o644, 0o640, 0o604] {
        write_secret(&secret, mode);
        for args in [&["validate"][..], &["run"][..]] {
            let (path, run) = with_config(dir.path(), &text, args, &[]).await;
            run.code(78);
            let want = format!(
                "{}:7:22: azure.client_secret_file: {} is readable by group or others (mode {mode:04o})",
                path.display(),
                secret.display()
            );
            assert!(
                run.stderr.contains(&want),
                "{args:?} want {want:?}: {run:#?}"
            );
            assert!(!run.stderr.contains(SECRET));
        }
    }
    // Relative names resolve under systemd's $CREDENTIALS_DIRECTORY.
    let text = format!("[azure]\nclient_secret_file = \"client-secret\"\n\n{WORKSPACE}");
    let creds = dir.path().to_str().unwrap();
    let (_, run) = with_config(
        dir.path(),
        &text,
        &["validate"],
        &[("CREDENTIALS_DIRECTORY", creds)],
    )
    .await;
    run.code(78);
    assert!(run.stderr.contains("mode 0604"), "{run:#?}");
    // What systemd writes there: 0400 plus a read ACL for the service's user, which `stat`
    // shows as 0440. Accepted there only.
    write_secret(&secret, 0o440);
    with_config(
        dir.path(),
        &text,
        &["validate"],
        &[("CREDENTIALS_DIRECTORY", creds)],
    )
    .await
    .1
    .success();
    write_secret(&secret, 0o600);
    with_config(
        dir.path(),
        &text,
        &["validate"],
        &[("CREDENTIALS_DIRECTORY", creds)],
    )
    .await
    .1
    .success();
}

#[tokio::test]
async fn config_durations_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let policy = "[[policy]]\nname = \"p\"\nuptime = [\"Mon-Fri 08:00-18:00\"]\n";
    for (text, want) in [
        (
            format!("[daemon]\npoll_interval = \"100000000d\"\n{WORKSPACE}"),
            "2:17: daemon.poll_interval: must be at most 3650d",
        ),
        (
            format!("[daemon]\npoll_interval = \"2h\"\n{WORKSPACE}"),
            "2:17: daemon.poll_interval: must be between 5s and 1h",
        ),
        (
            format!("{WORKSPACE}{policy}catch_up = \"100000000d\"\n"),
            "9:12: policy[0] (p).catch_up: must be at most 3650d",
        ),
        (
            format!("{WORKSPACE}{policy}[policy.idle]\nsignals = [\"arm\"]\ntimeout = \"1000d\"\n"),
            "11:11: policy[0] (p).idle.timeout: must be at most 90d",
        ),
    ] {
        let (path, run) = with_config(dir.path(), &text, &["validate"], &[]).await;
        run.code(78);
        let want = format!("{}:{want}", path.display());
        assert!(run.stderr.contains(&want), "want {want:?}: {run:#?}");
    }
}

// ---- item 7: a server's delay is clamped, never a panic ---------------------------------------

/// A token whose `expires_in` is `i64::MAX`: azure_identity added it to the clock and the
/// process panicked. Now the lifetime is clamped and the command works.
#[tokio::test]
async fn an_absurd_token_lifetime_is_clamped_not_a_panic() {
    let arm = Fake::start(|_, _, _| Reply::json(200, r#"{"value":[]}"#)).await;
    let dir = tempfile::tempdir().unwrap();
    let (authority, ca) = tls_fake(
        dir.path(),
        200,
        vec![("content-type".to_owned(), "application/json".to_owned())],
        r#"{"token_type":"Bearer","access_token":"tok","expires_in":9223372036854775807}"#
            .to_owned(),
    )
    .await;
    let cfg = dir.path().join("lightsout.toml");
    std::fs::write(
        &cfg,
        format!(
            "[azure]\narm_endpoint = \"{}\"\nauthority_host = \"{authority}\"\nca_file = \"{}\"\ncredential = \"client_secret\"\ntenant_id = \"00000000-0000-0000-0000-0000000000aa\"\nclient_id = \"{}\"\n\n{WORKSPACE}",
            arm.base,
            ca.display(),
            ADMIN.0
        ),
    )
    .unwrap();
    let run = run_lightsout(
        &["ci", "list", "--workspace", "lab"],
        Some(&cfg),
        &[("AZURE_CLIENT_SECRET", SECRET)],
    )
    .await;
    run.success();
    assert_eq!(arm.count(), 1, "{run:#?}");
    assert_eq!(arm.seen()[0].authorization.as_deref(), Some("Bearer tok"));
}

/// A 503 (waited a second) then a 429 with `Retry-After: 18446744073709551615`: adding that
/// to the time already waited overflowed and panicked the task, and the workspace dropped out
/// of the pass without a word. Now it is "too long to wait": the 429 comes back as the error.
#[tokio::test]
async fn an_absurd_retry_after_is_an_error_not_a_panic() {
    for header in ["retry-after", "retry-after-ms", "x-ms-retry-after-ms"] {
        let arm = Fake::start(move |_, nth, _| match nth {
            // One second already waited: the sum with the absurd delay overflows.
            0 => Reply::json(503, r#"{"error":{"code":"ServerBusy","message":"busy"}}"#)
                .header("retry-after", "1"),
            _ => Reply::json(
                429,
                r#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#,
            )
            .header(header, "18446744073709551615"),
        })
        .await;
        let client = client_with(
            &arm.base,
            Arc::new(FakeCredential::default()),
            test_config(),
        );
        let err = tokio::spawn(async move { client.get_compute(&ws(), "ci-1").await })
            .await
            .expect("the request task must not panic")
            .unwrap_err();
        assert_eq!(err.status(), Some(429), "{header}: {err:?}");
        assert_eq!(
            err.retry_after(),
            Some(lightsout::azure::retry::MAX_SERVER_DELAY),
            "{header}"
        );
        assert_eq!(arm.count(), 2, "{header}");
    }
}

// ---- items 8 and 9: names and ARM text --------------------------------------------------------

/// The emulator (for tokens only) and a config whose ARM endpoint is `arm`.
async fn emulator_and_config(arm: &Fake) -> (EmulatorProcess, PathBuf) {
    let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-1", "Running")])).await;
    let r = &emu.ready;
    let text = format!(
        r#"[azure]
arm_endpoint = "{arm}"
authority_host = "{ep}"
ca_file = "{ca}"
credential = "client_secret"
tenant_id = "{tenant}"
client_id = "{client}"

[[workspace]]
name = "lab"
subscription_id = "{SUB}"
resource_group = "{RG}"
workspace = "{WS}"
"#,
        arm = arm.base,
        ep = r.endpoint,
        ca = r.ca_file,
        tenant = r.tenant_id,
        client = ADMIN.0,
    );
    let path = emu.dir.path().join("transport.toml");
    std::fs::write(&path, text).unwrap();
    (emu, path)
}

/// `ci start 'victim/start?x='` once became a request on another path. Now neither `ci` nor
/// `hold` sends anything for a name outside Azure's rules, and they say which rule.
#[tokio::test]
async fn crafted_instance_names_never_reach_arm() {
    let arm = Fake::start(|_, _, _| Reply::json(202, "{}")).await;
    let (_emu, cfg) = emulator_and_config(&arm).await;
    let env = [("AZURE_CLIENT_SECRET", ADMIN.1)];
    for name in [
        "victim/start?x=",
        "victim%2Fstop",
        "../../x",
        "ci-1#frag",
        "ci_1",
        "x",
    ] {
        for args in [
            vec!["ci", "start", name, "--workspace", "lab"],
            vec!["ci", "stop", name, "--workspace", "lab"],
            vec!["ci", "delete", name, "--workspace", "lab"],
            vec!["ci", "show", name, "--workspace", "lab"],
            vec!["hold", name, "--for", "2h", "--workspace", "lab"],
            vec!["release", name, "--workspace", "lab"],
        ] {
            let run = run_lightsout(&args, Some(&cfg), &env).await;
            // A usage error (exit 2) that states Azure's rule.
            assert_eq!(run.code, Some(2), "{args:?}: {run:#?}");
            assert!(
                run.stderr
                    .contains("3 to 24 characters: letters, digits and hyphens"),
                "{args:?}: {run:#?}"
            );
        }
    }
    assert_eq!(arm.count(), 0, "{:#?}", arm.seen());
    // A wait longer than the clock can hold panicked when added to it; bounded now.
    let args = [
        "ci",
        "start",
        "ci-1",
        "-w",
        "lab",
        "--wait",
        "--timeout",
        "200000000000000d",
    ];
    let run = run_lightsout(&args, Some(&cfg), &env).await;
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("100ms to 7d"), "{run:#?}");
    assert_eq!(arm.count(), 0, "{:#?}", arm.seen());
    // The same config and a good name do reach ARM: the refusal is about the name.
    let run = run_lightsout(
        &["ci", "start", "ci-1", "--workspace", "lab"],
        Some(&cfg),
        &env,
    )
    .await;
    assert!(arm.count() >= 1, "{run:#?}");
}

/// ARM's error text with escape sequences, newlines and 5 MB of message: `ci` prints it on one
/// line, escaped, cut to a few KiB with a marker.
#[tokio::test]
async fn arm_error_text_is_escaped_and_cut() {
    let message = format!(
        "evil\u{1b}[2J\u{1b}]0;owned\u{7}\nFAKE: line\r{}",
        "x".repeat(5 * 1024 * 1024)
    );
    let body =
        serde_json::json!({"error": {"code": "Bad\u{1b}[31mCode", "message": message}}).to_string();
    let arm = Fake::start(move |_, _, _| Reply::json(400, body.clone())).await;
    let (_emu, cfg) = emulator_and_config(&arm).await;
    let run = run_lightsout(
        &["ci", "show", "ci-1", "--workspace", "lab"],
        Some(&cfg),
        &[("AZURE_CLIENT_SECRET", ADMIN.1)],
    )
    .await;
    assert_eq!(
        run.code,
        Some(1),
        "{:?}",
        &run.stderr[..run.stderr.len().min(500)]
    );
    assert!(arm.count() >= 1);
    let err = &run.stderr;
    assert!(!err.contains('\u{1b}') && !err.contains('\r') && !err.contains('\u{7}'));
    assert!(!err.contains("\nFAKE"), "{err}");
    assert!(
        err.contains("\\u{1b}[2J") && err.contains("\\nFAKE"),
        "{err}"
    );
    assert!(err.len() < 16 * 1024, "{} bytes", err.len());
    assert!(err.contains("more characters]"), "{err}");
    // A body without a code (a proxy's page) is shown escaped too, and the request id.
    let page = format!("<html>\u{1b}[2J\nFAKE{}</html>", "y".repeat(100_000));
    let arm2 = Fake::start(move |_, _, _| {
        Reply::json(502, page.clone()).header("x-ms-request-id", "id\u{1b}[0m")
    })
    .await;
    let cfg2 = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(arm.base.as_str(), arm2.base.as_str());
    std::fs::write(&cfg, cfg2).unwrap();
    let run = run_lightsout(
        &["ci", "show", "ci-1", "--workspace", "lab"],
        Some(&cfg),
        &[("AZURE_CLIENT_SECRET", ADMIN.1)],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(arm2.count() >= 1);
    assert!(!run.stderr.contains('\u{1b}'), "{run:#?}");
    assert!(!run.stderr.contains("\nFAKE"), "{run:#?}");
    assert!(run.stderr.len() < 4096, "{run:#?}");
    // Same for the client's error as the daemon logs it.
    let client = client_with(
        &arm.base,
        Arc::new(FakeCredential::default()),
        test_config(),
    );
    let shown = client
        .get_compute(&ws(), "ci-1")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\n'),
        "{shown}"
    );
    assert!(shown.len() < 16 * 1024);
    tokio::time::sleep(Duration::ZERO).await;
}
