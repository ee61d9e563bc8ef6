//! Shipping: `lightsout doctor` against the emulator binary (a full-rights and a read-only
//! principal), `lightsout healthcheck` against a tiny local server, and the generated
//! completions and man page.

#![expect(clippy::unwrap_used, reason = "test helpers")]

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    ADMIN, EmulatorProcess, FAST, GENEROUS, READER, fleet, run_lightsout, within,
};

const START: &str = "Microsoft.MachineLearningServices/workspaces/computes/start/action";
const STOP: &str = "Microsoft.MachineLearningServices/workspaces/computes/stop/action";
const READ: &str = "Microsoft.MachineLearningServices/workspaces/computes/read";

/// The emulator's config for `client_id`, plus a policy that starts instances when a window
/// opens (so start/action is needed) and restarts them weekly.
fn config_with_policy(emu: &EmulatorProcess, client_id: &str) -> PathBuf {
    let path = emu.config(client_id);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(
        r#"
[[policy]]
name = "office"
uptime = ["Mon-Fri 08:00-19:00"]
start = "window"

[[policy.event]]
cron = "0 3 * * Sun"
action = "restart"
"#,
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn doctor_full_rights_all_green() {
    within(90, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-alice", "Running")])).await;
        let cfg = config_with_policy(&emu, ADMIN.0);
        let r = emu.run(&cfg, ADMIN.1, &["doctor"]).await;
        r.success();
        assert!(!r.stdout.contains("[FAIL]"), "{r:#?}");
        for action in [READ, STOP, START] {
            assert!(
                r.stdout.contains(&format!("[ ok ] {action}")),
                "{action}: {r:#?}"
            );
        }
        assert!(r.stdout.contains("[ ok ] token: acquired"), "{r:#?}");
        assert!(r.stdout.contains("list computes: 1 found"), "{r:#?}");
        assert!(r.stdout.contains("all checks passed"), "{r:#?}");
        // It asked Azure, at the workspace scope, in the real API version.
        let calls = emu.calls().await;
        assert!(
            calls.iter().any(|c| c["path"].as_str().unwrap().ends_with(
                "/workspaces/workspaces123/providers/Microsoft.Authorization/permissions"
            ) && c["status"] == 200),
            "{calls:#?}"
        );
    })
    .await;
}

#[tokio::test]
async fn doctor_read_only_principal_fails_with_the_fix() {
    within(90, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-alice", "Running")])).await;
        let cfg = config_with_policy(&emu, READER.0);
        let r = emu.run(&cfg, READER.1, &["doctor"]).await;
        r.code(1);
        assert!(r.stdout.contains(&format!("[ ok ] {READ}")), "{r:#?}");
        for action in [STOP, START] {
            assert!(
                r.stdout.contains(&format!("[FAIL] {action} missing, needed for")),
                "{action}: {r:#?}"
            );
        }
        assert!(
            r.stdout.contains(&format!(
                "az role assignment create --assignee {} --role \"lightsout compute scheduler\" --scope /subscriptions/",
                READER.0
            )),
            "{r:#?}"
        );
        assert!(r.stderr.contains("checks failed"), "{r:#?}");
    })
    .await;
}

#[tokio::test]
async fn doctor_without_policies_only_needs_read_and_stop() {
    within(90, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[])).await;
        // The read-only principal still lacks stop: a failure even with no policy.
        let cfg = emu.config(READER.0);
        let r = emu.run(&cfg, READER.1, &["doctor"]).await;
        r.code(1);
        assert!(
            r.stdout
                .contains(&format!("[FAIL] {STOP} missing, needed for")),
            "{r:#?}"
        );
        assert!(
            r.stdout
                .contains(&format!("[ ok ] {START} not granted, not needed")),
            "{r:#?}"
        );
        assert!(r.stdout.contains("less than the minimal role"), "{r:#?}");
    })
    .await;
}

/// Least privilege (issue 13, item 14): an identity with write and application access that
/// this config does not use is told to drop them, and what it holds is named.
#[tokio::test]
async fn doctor_warns_about_write_granted_but_unused() {
    within(90, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[])).await;
        let cfg = emu.config(ADMIN.0);
        let r = emu.run(&cfg, ADMIN.1, &["doctor"]).await;
        let write = "Microsoft.MachineLearningServices/workspaces/computes/write";
        assert!(
            r.stdout
                .contains(&format!("[warn] {write} granted but unused")),
            "{r:#?}"
        );
        assert!(
            r.stdout
                .contains("remove the role \"lightsout native settings\""),
            "{r:#?}"
        );
        assert!(
            r.stdout
                .contains("the identity has the minimal role's actions"),
            "{r:#?}"
        );
    })
    .await;
}

#[tokio::test]
async fn doctor_bad_secret_fails_at_the_token() {
    within(90, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[])).await;
        let cfg = emu.config(ADMIN.0);
        let r = emu.run(&cfg, "wrong", &["doctor"]).await;
        r.code(1);
        assert!(r.stdout.contains("[FAIL] token (client_secret)"), "{r:#?}");
        assert!(r.stdout.contains("fix: service principal"), "{r:#?}");
    })
    .await;
}

#[tokio::test]
async fn doctor_bad_config_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[daemon]\npoll_interval = \"soon\"\n").unwrap();
    let r = run_lightsout(&["doctor"], Some(&path), &[]).await;
    r.code(78);
    assert!(r.stdout.contains("[FAIL] config"), "{r:#?}");
}

/// A one-shot HTTP server on loopback answering every request with `status`.
async fn serve(status: u16) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await.unwrap();
            let body = if status == 200 { "ok" } else { "stale" };
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(reply.as_bytes()).await.unwrap();
        }
    });
    format!("http://{addr}/healthz")
}

fn config_listening_on(dir: &Path, url: &str) -> PathBuf {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/healthz");
    let path = dir.join("lightsout.toml");
    std::fs::write(&path, format!("[http]\nlisten = \"{addr}\"\n")).unwrap();
    path
}

#[tokio::test]
async fn healthcheck_exit_codes() {
    let healthy = serve(200).await;
    let r = run_lightsout(&["healthcheck", "--url", &healthy], None, &[]).await;
    r.success();
    assert!(r.stdout.contains("healthy"), "{r:#?}");

    // From the config's [http] listen.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_listening_on(dir.path(), &healthy);
    run_lightsout(&["healthcheck"], Some(&cfg), &[])
        .await
        .success();

    let sick = serve(503).await;
    let r = run_lightsout(&["healthcheck", "--url", &sick], None, &[]).await;
    r.code(1);
    assert!(r.stderr.contains("503"), "{r:#?}");

    // Nothing listening: 1, quickly.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let r = run_lightsout(
        &[
            "healthcheck",
            "--timeout",
            "1s",
            "--url",
            &format!("http://{closed}/healthz"),
        ],
        None,
        &[],
    )
    .await;
    r.code(1);

    // A bad config is "unhealthy" (1), not 78: Docker reserves other codes.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "nonsense = 1\n").unwrap();
    run_lightsout(&["healthcheck"], Some(&bad), &[])
        .await
        .code(1);
}

#[tokio::test]
async fn completions_and_man_page() {
    let r = run_lightsout(&["completions", "bash"], None, &[]).await;
    r.success();
    assert!(r.stdout.contains("complete -F"), "{r:#?}");
    assert!(r.stdout.contains("doctor"), "{r:#?}");
    let r = run_lightsout(&["manpage"], None, &[]).await;
    r.success();
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH lightsout 1"),
        "{r:#?}"
    );
    assert!(r.stdout.contains("healthcheck"), "{r:#?}");
    let r = run_lightsout(&["--version"], None, &[]).await;
    r.success();
    assert!(r.stdout.starts_with("lightsout "), "{r:#?}");
}
