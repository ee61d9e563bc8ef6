//! `lightsout run` against the emulator binary: /metrics, /healthz, /readyz, /v1/status,
//! retail prices from the emulator, avoided money after our stop, counters that resume
//! after a restart, and `lightsout report`.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::support::{ADMIN, BIN, EmulatorProcess, FAST, GENEROUS, fleet, free_port, within};

/// The emulator's config plus a fast poll, the HTTP listener, retail prices and a policy
/// that wants every `ci-stop*` instance down.
fn daemon_config(emu: &EmulatorProcess, port: u16) -> std::path::PathBuf {
    let base = std::fs::read_to_string(emu.config(ADMIN.0)).unwrap();
    let ep = &emu.ready.endpoint;
    let state = emu.dir.path().join("lightsout-state");
    let text = format!(
        r#"{base}
[daemon]
poll_interval = "5s"
state_dir = "{state}"

[http]
listen = "127.0.0.1:{port}"

[pricing]
currency = "USD"
source = "retail_api"
retail_api_endpoint = "{ep}"
[pricing.vm_hourly]
Standard_Odd_v1 = 0.5
[pricing.stopped_hourly]
disk = 0.03

[[policy]]
name = "down"
instances = ["ci-stop*"]
enforcement = "always"
exceptions = [ {{ from = "2020-01-01T00:00", to = "2099-01-01T00:00", state = "down" }} ]
"#,
        state = state.display()
    );
    let path = emu.dir.path().join("daemon.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start_daemon(config: &std::path::Path) -> Child {
    Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .env_clear()
        .env("AZURE_CLIENT_SECRET", ADMIN.1)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn get(http: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let r = http.get(url).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

/// The value of the series whose line starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls `/metrics` until `pred` holds (or fails after `secs`).
async fn metrics_until(
    http: &reqwest::Client,
    base: &str,
    secs: u64,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some((200, text)) = get(http, &format!("{base}/metrics")).await
            && pred(&text)
        {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics condition not met within {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn terminate(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = within(30, child.wait()).await.unwrap();
    assert_eq!(status.code(), Some(0), "the daemon drains and exits 0");
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_serves_metrics_health_status_and_costs() {
    let mut fleet_text = fleet(
        GENEROUS,
        FAST,
        &[
            ("ci-stopme", "Running"),
            ("ci-idle", "Running"),
            ("ci-gone", "Stopped"),
        ],
    );
    fleet_text.push_str(
        "\n[[workspace.instance]]\nname = \"ci-odd\"\nvm_size = \"Standard_Odd_v1\"\nstate = \"Running\"\n",
    );
    let emu = EmulatorProcess::start(&fleet_text).await;
    let port = free_port();
    let config = daemon_config(&emu, port);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let daemon = start_daemon(&config);
    // Ready after the first pass.
    within(30, async {
        loop {
            if let Some((200, body)) = get(&http, &format!("{base}/readyz")).await {
                assert_eq!(body, "ready\n");
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let (status, body) = get(&http, &format!("{base}/healthz")).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // Our stop of ci-stopme shows as an action, then as avoided money once it is stopped.
    let text = metrics_until(&http, &base, 40, |t| {
        sample(
            t,
            r#"lightsout_cost_avoided_total{currency="USD",instance="ci-stopme",workspace="lab"}"#,
        )
        .is_some_and(|v| v > 0.0)
    })
    .await;
    for expected in [
        "lightsout_up 1",
        "lightsout_build_info{version=\"",
        r#"lightsout_actions_total{action="stop",outcome="accepted",reason="outside_window",workspace="lab"} 1"#,
        r#"lightsout_instance_running{instance="ci-idle",vm_size="Standard_DS3_v2",workspace="lab"} 1"#,
        r#"lightsout_instance_running{instance="ci-stopme",vm_size="Standard_DS3_v2",workspace="lab"} 0"#,
        r#"lightsout_instances{state="Stopped",workspace="lab"}"#,
        r#"lightsout_arm_requests_total{operation="list_computes",status="200"}"#,
        r#"lightsout_arm_requests_total{operation="stop",status="202"} 1"#,
        "lightsout_reconcile_duration_seconds_count",
        "lightsout_last_reconcile_timestamp_seconds",
        r#"lightsout_price_requests_total{outcome="ok"}"#,
        "lightsout_unpriced_instances 0",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    // Emulator retail price for DS3 v2 in eastus2 (0.293) plus the disk.
    let burn = sample(
        &text,
        r#"lightsout_hourly_cost{currency="USD",instance="ci-idle",workspace="lab"}"#,
    );
    assert!(
        burn.is_some_and(|b| (b - 0.323).abs() < 1e-9),
        "{burn:?}\n{text}"
    );
    // The config's table price wins for the odd size.
    let odd = sample(
        &text,
        r#"lightsout_hourly_cost{currency="USD",instance="ci-odd",workspace="lab"}"#,
    );
    assert!(odd.is_some_and(|b| (b - 0.53).abs() < 1e-9), "{odd:?}");
    let accrued = sample(
        &text,
        r#"lightsout_cost_accrued_total{currency="USD",instance="ci-idle",workspace="lab"}"#,
    )
    .unwrap();
    assert!(accrued > 0.0);

    // /v1/status: rows with costs.
    let (status, body) = get(&http, &format!("{base}/v1/status")).await.unwrap();
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["currency"], "USD");
    assert!(doc["passes"].as_u64().unwrap() >= 2);
    let stopme = doc["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instance"] == "ci-stopme")
        .unwrap();
    assert_eq!(stopme["state"], "Stopped");
    assert_eq!(stopme["policy"], "down");
    assert_eq!(stopme["stopped_by_lightsout"], true);
    assert!((stopme["hourly_cost"].as_f64().unwrap() - 0.03).abs() < 1e-9);
    assert!(stopme["cost"]["avoided"].as_f64().unwrap() > 0.0);

    // An instance deleted in Azure disappears from the metrics.
    let r = std::process::Command::new(BIN)
        .args([
            "ci",
            "delete",
            "ci-gone",
            "--workspace",
            "lab",
            "--wait",
            "--config",
        ])
        .arg(emu.config(ADMIN.0))
        .env_clear()
        .env("AZURE_CLIENT_SECRET", ADMIN.1)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    metrics_until(&http, &base, 30, |t| !t.contains("instance=\"ci-gone\"")).await;

    // Restart: the counters resume from the state database, neither from zero nor doubled.
    let before = sample(
        &get(&http, &format!("{base}/metrics")).await.unwrap().1,
        r#"lightsout_cost_accrued_total{currency="USD",instance="ci-idle",workspace="lab"}"#,
    )
    .unwrap();
    terminate(daemon).await;
    let daemon = start_daemon(&config);
    let after = metrics_until(&http, &base, 30, |t| {
        t.contains(r#"lightsout_cost_accrued_total{currency="USD",instance="ci-idle""#)
    })
    .await;
    let resumed = sample(
        &after,
        r#"lightsout_cost_accrued_total{currency="USD",instance="ci-idle",workspace="lab"}"#,
    )
    .unwrap();
    // At most a few seconds at 0.323/h were added in between (the cap is 15 s here).
    assert!(resumed >= before, "{resumed} < {before}");
    assert!(
        resumed - before < 0.323 * 20.0 / 3600.0,
        "{resumed} vs {before}"
    );
    terminate(daemon).await;

    // The report reads the same figures.
    let out = std::process::Command::new(BIN)
        .args(["report", "--by", "instance", "--format", "json", "--config"])
        .arg(&config)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let idle = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["instance"] == "ci-idle")
        .unwrap();
    assert!((idle["accrued"].as_f64().unwrap() - resumed).abs() < 0.01);
    let stop = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["instance"] == "ci-stopme")
        .unwrap();
    assert!(stop["avoided"].as_f64().unwrap() > 0.0);
}
