//! The agent signal end to end (issue 15): heartbeats written with the library's real
//! `BlobClient` into real Azurite (HTTPS, OAuth), the lightsout binary (`plan`, `run`) reading
//! them with its own credential (a storage-scoped token from the emulator's Entra ID) and
//! deciding against the emulator binary's instances.

#![expect(clippy::unwrap_used, reason = "test code")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use lightsout::azure::blob::{BlobClient, STORAGE_SCOPE};
use lightsout::engine::heartbeat::{
    BusyReason, METADATA_KEY, Snooze, VERDICT_VERSION, Verdict, blob_name,
};
use serde_json::Value;
use tokio::process::{Child, Command};

use super::azurite_support::Azurite;
use super::support::{ADMIN, BIN, EmulatorProcess, FAST, GENEROUS, WS, fleet, free_port, within};

const CONTAINER: &str = "lightsout-heartbeats";

/// The emulator's fleet with running instances started three hours ago.
fn fleet_started(names: &[&str], started: Timestamp) -> String {
    let mut s = fleet(GENEROUS, FAST, &[]);
    for name in names {
        s.push_str(&format!(
            "\n[[workspace.instance]]\nname = \"{name}\"\nvm_size = \"Standard_DS3_v2\"\nstate = \"Running\"\nstarted_at = \"{started}\"\n"
        ));
    }
    s
}

/// Azurite, the emulator with `names` running, and a blob client of the admin (the
/// instances' writer in these tests) on the heartbeat container.
async fn setup(names: &[&str], now: Timestamp) -> (Azurite, EmulatorProcess, BlobClient) {
    let azurite = Azurite::start().await;
    let started = now - SignedDuration::from_hours(3);
    let emu = EmulatorProcess::start(&fleet_started(names, started)).await;
    let client = azurite.client_with(CONTAINER, emu.token_for(ADMIN, STORAGE_SCOPE).await);
    client.create_container_if_missing().await.unwrap();
    (azurite, emu, client)
}

/// The daemon's config: the emulator's, trusting both CAs, with `[agent]` on Azurite, a
/// policy that wants `ci-busy` down at all times and an idle rule of 45 minutes on the
/// default signals (ARM and the agent) for the rest.
fn daemon_config(emu: &EmulatorProcess, azurite: &Azurite, port: u16) -> PathBuf {
    let base = std::fs::read_to_string(emu.config(ADMIN.0)).unwrap();
    let dir = emu.dir.path();
    let bundle = dir.join("cas.pem");
    let mut pem = std::fs::read(&emu.ready.ca_file).unwrap();
    pem.extend(std::fs::read(&azurite.ca_file).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    let base = base.replace(
        &format!("ca_file = \"{}\"", emu.ready.ca_file),
        &format!("ca_file = \"{}\"", bundle.display()),
    );
    let text = format!(
        r#"{base}
[daemon]
poll_interval = "60s"
state_dir = "{state}"

[http]
listen = "127.0.0.1:{port}"

[agent]
account = "{account}"
container = "{CONTAINER}"

[[policy]]
name = "closed"
instances = ["ci-busy"]
enforcement = "always"
exceptions = [ {{ from = "2000-01-01T00:00", to = "2100-01-01T00:00", state = "down" }} ]

[[policy]]
name = "idle"
[policy.idle]
timeout = "45m"
"#,
        state = state_dir(emu).display(),
        account = azurite.account_url(),
    );
    let path = dir.join("daemon.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn state_dir(emu: &EmulatorProcess) -> PathBuf {
    emu.dir.path().join("lightsout-state")
}

/// The daemon has known these instances for three hours: idle time never counts from before
/// the daemon first saw an instance, and a test cannot wait 45 minutes. The memory is
/// written with the daemon's own store.
fn known_for_hours(emu: &EmulatorProcess, names: &[&str], now: Timestamp) {
    let mut store = lightsout::daemon::store::Store::open(&state_dir(emu)).unwrap();
    let memory = lightsout::engine::memory::InstanceMemory {
        first_seen: Some(now - SignedDuration::from_hours(3)),
        ..Default::default()
    };
    let updates: Vec<_> = names
        .iter()
        .map(|n| {
            (
                lightsout::engine::model::InstanceKey::new("lab", *n),
                memory.clone(),
            )
        })
        .collect();
    store.save_memory(&updates, now).unwrap();
}

fn verdict(instance: &str, at: Timestamp, busy: bool, last: Timestamp) -> Verdict {
    Verdict {
        v: VERDICT_VERSION,
        instance: instance.into(),
        at,
        busy,
        reasons: if busy {
            vec![BusyReason::Cpu, BusyReason::TerminalInput]
        } else {
            Vec::new()
        },
        last_activity: Some(last),
        interval_secs: 60,
        snooze: None,
    }
}

/// Writes a heartbeat as the agent does: the snapshot as the body, the verdict in metadata.
async fn beat(client: &BlobClient, instance: &str, meta: &str) {
    client
        .put_block_blob(
            &blob_name(WS, instance),
            b"{}".to_vec(),
            "application/json",
            &[(METADATA_KEY, meta)],
        )
        .await
        .unwrap();
}

fn row<'a>(rows: &'a Value, instance: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["instance"] == instance)
        .unwrap_or_else(|| panic!("no row for {instance}: {rows:#}"))
}

/// `lightsout run`; its stderr is kept (read at the end) only when `log` is set.
fn start_daemon(config: &Path, log: bool) -> Child {
    Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .env_clear()
        .env("AZURE_CLIENT_SECRET", ADMIN.1)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if log { Stdio::piped() } else { Stdio::null() })
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The metrics once the first pass is recorded.
async fn metrics_after_a_pass(http: &reqwest::Client, port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    loop {
        if let Ok(r) = http.get(&url).send().await
            && let Ok(text) = r.text().await
            && text.contains("lightsout_reconcile_passes_total 1")
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGTERM by process id, then wait; returns its stderr.
async fn terminate(child: Child) -> String {
    if let Some(pid) = child.id() {
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stops(calls: &[Value]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c["method"] == "POST")
        .filter_map(|c| c["path"].as_str())
        .filter(|p| p.ends_with("/stop"))
        .map(|p| p.rsplit('/').nth(1).unwrap_or_default().to_owned())
        .collect()
}

/// Busy is never stopped (not even outside its window); idle past the timeout by the agent
/// is; a missing, stale or rejected heartbeat is unknown, never idle; a snooze holds the
/// stop; ignored heartbeats are counted; plan, /v1/status and /metrics say what the agent saw.
#[tokio::test]
async fn the_daemon_decides_on_the_agents_heartbeats() {
    within(300, async {
        let names = [
            "ci-busy",
            "ci-idle",
            "ci-missing",
            "ci-stale",
            "ci-snoozed",
            "ci-rejected",
        ];
        let now = lightsout::clock::now();
        let (azurite, emu, client) = setup(&names, now).await;
        let two_hours_ago = now - SignedDuration::from_hours(2);
        let busy = verdict("ci-busy", now, true, now);
        beat(&client, "ci-busy", &busy.to_metadata()).await;
        let idle = verdict("ci-idle", now, false, two_hours_ago);
        beat(&client, "ci-idle", &idle.to_metadata()).await;
        let stale = verdict(
            "ci-stale",
            now - SignedDuration::from_mins(30),
            false,
            two_hours_ago,
        );
        beat(&client, "ci-stale", &stale.to_metadata()).await;
        let mut snoozed = verdict("ci-snoozed", now, false, two_hours_ago);
        snoozed.snooze = Some(Snooze {
            at: now - SignedDuration::from_mins(10),
            until: now + SignedDuration::from_hours(2),
            reason: Some("training overnight".into()),
            by: Some("azureuser".into()),
        });
        beat(&client, "ci-snoozed", &snoozed.to_metadata()).await;
        beat(&client, "ci-rejected", "{not a verdict").await;
        // For an instance the daemon does not govern (not in the workspace).
        let ghost = verdict("ci-ghost", now, false, now);
        beat(&client, "ci-ghost", &ghost.to_metadata()).await;
        let port = free_port();
        let config = daemon_config(&emu, &azurite, port);
        known_for_hours(&emu, &names, now);

        // `plan` shows the agent's view and what a pass would do.
        let run = emu.run(&config, ADMIN.1, &["plan", "--json"]).await;
        run.success();
        let rows = run.json();
        let r = row(&rows, "ci-busy");
        assert_eq!(
            (r["decision"].as_str(), r["skip"].as_str()),
            (Some("skip"), Some("busy")),
            "{r:#}"
        );
        assert_eq!(r["agent"]["heartbeat"], "seen");
        assert_eq!(r["agent"]["busy"], true);
        assert_eq!(
            r["agent"]["reasons"],
            serde_json::json!(["cpu", "terminal_input"])
        );
        let r = row(&rows, "ci-idle");
        assert_eq!(
            (r["decision"].as_str(), r["reason"].as_str()),
            (Some("act"), Some("idle")),
            "{r:#}"
        );
        assert_eq!(r["agent"]["last_activity"], two_hours_ago.to_string());
        for (name, why) in [
            ("ci-missing", "missing"),
            ("ci-stale", "stale"),
            ("ci-rejected", "rejected"),
        ] {
            let r = row(&rows, name);
            assert_eq!(r["agent"]["heartbeat"], why, "{r:#}");
            assert_eq!(
                (r["decision"].as_str(), r["skip"].as_str()),
                (Some("skip"), Some("activity_unknown")),
                "{r:#}"
            );
            assert!(r["idle_seconds"].is_null(), "{r:#}");
        }
        let age = row(&rows, "ci-stale")["agent"]["heartbeat_age_seconds"]
            .as_i64()
            .unwrap();
        assert!((1800..1900).contains(&age), "{age}");
        let r = row(&rows, "ci-snoozed");
        assert_eq!(
            (r["decision"].as_str(), r["skip"].as_str()),
            (Some("skip"), Some("snoozed")),
            "{r:#}"
        );
        assert_eq!(r["agent"]["snooze"]["by"], "azureuser");
        assert_eq!(r["agent"]["snooze"]["reason"], "training overnight");
        let text = emu.run(&config, ADMIN.1, &["plan"]).await;
        text.success();
        assert!(
            text.stdout
                .contains("lab/ci-busy: busy (cpu, terminal_input)"),
            "{}",
            text.stdout
        );
        assert!(
            text.stdout.contains("lab/ci-missing: heartbeat missing"),
            "{}",
            text.stdout
        );
        assert!(text.stdout.contains("snoozed until"), "{}", text.stdout);
        assert!(stops(&emu.calls().await).is_empty(), "plan acted");
        // doctor: the container can be listed; the instance without a heartbeat is named.
        let doctor = emu.run(&config, ADMIN.1, &["doctor"]).await;
        assert!(
            doctor.stdout.contains("[ ok ] agent heartbeats: 6 listed"),
            "{doctor:#?}"
        );
        assert!(
            doctor
                .stdout
                .contains("agent heartbeats never arrived from 1 running instance: ci-missing"),
            "{doctor:#?}"
        );

        // The daemon: one pass stops ci-idle only.
        let daemon = start_daemon(&config, true);
        let http = reqwest::Client::new();
        let metrics = metrics_after_a_pass(&http, port).await;
        let status: Value = http
            .get(format!("http://127.0.0.1:{port}/v1/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stderr = terminate(daemon).await;
        assert_eq!(
            stops(&emu.calls().await),
            vec!["ci-idle".to_owned()],
            "{stderr}"
        );
        for want in [
            r#"lightsout_agent_heartbeats_ignored_total{reason="bad_verdict",workspace="lab"} 1"#,
            r#"lightsout_agent_heartbeats_ignored_total{reason="not_governed",workspace="lab"} 1"#,
            r#"lightsout_instance_busy{instance="ci-busy",reason="cpu",workspace="lab"} 1"#,
            r#"lightsout_agent_heartbeats{state="missing",workspace="lab"} 1"#,
            r#"lightsout_agent_heartbeat_lists_total{outcome="ok",workspace="lab"} 1"#,
            &format!(
                r#"lightsout_storage_requests_total{{account="127.0.0.1:{}"}} 1"#,
                azurite.port
            ),
        ] {
            assert!(metrics.contains(want), "{want}\n{metrics}");
        }
        assert!(
            metrics.contains(
                r#"lightsout_agent_heartbeat_age_seconds{instance="ci-stale",workspace="lab"} 18"#
            ),
            "{metrics}"
        );
        let instances = status["instances"].as_array().unwrap();
        let snoozed_row = instances
            .iter()
            .find(|i| i["instance"] == "ci-snoozed")
            .unwrap();
        assert_eq!(
            snoozed_row["agent"]["snooze"]["by"], "azureuser",
            "{snoozed_row:#}"
        );
        // Ignored heartbeats are said once, without the verdict's text.
        assert!(stderr.contains("heartbeats ignored"), "{stderr}");
        assert!(!stderr.contains("not a verdict"), "{stderr}");
        // The stop's log line carries the agent's evidence.
        let acting = stderr
            .lines()
            .find(|l| l.contains("acting") && l.contains("ci-idle"))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(
            acting.contains(&format!("idle since {two_hours_ago}")),
            "{acting}"
        );
        // A new snooze is said once, with who asked and why.
        let said: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("snooze from the instance seen"))
            .collect();
        assert_eq!(said.len(), 1, "{stderr}");
        assert!(
            said[0].contains("azureuser") && said[0].contains("training overnight"),
            "{stderr}"
        );

        // The audit log: the snooze once (not again after a restart), the stop with the
        // agent's evidence.
        // A fresh heartbeat with the same snooze, so the restarted daemon sees it again.
        snoozed.at = lightsout::clock::now();
        beat(&client, "ci-snoozed", &snoozed.to_metadata()).await;
        let again = emu.run(&config, ADMIN.1, &["run", "--once"]).await;
        again.success();
        assert!(
            again.stderr.contains("snooze from the instance seen"),
            "{}",
            again.stderr
        );
        let audit = emu.run(&config, ADMIN.1, &["audit", "--json"]).await;
        audit.success();
        let records = audit.json();
        let records = records.as_array().unwrap();
        let snoozes: Vec<&Value> = records.iter().filter(|r| r["action"] == "snooze").collect();
        assert_eq!(snoozes.len(), 1, "{records:#?}");
        let s = snoozes[0];
        assert_eq!(
            (&s["instance"], &s["reason"], &s["outcome"]),
            (
                &Value::from("ci-snoozed"),
                &Value::from("snooze"),
                &Value::from("succeeded")
            ),
            "{s:#}"
        );
        // Asked until now + 2h, within the policy's max_snooze from when it was asked.
        let until = snoozed.snooze.as_ref().unwrap().until;
        let detail = s["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("until {until} (asked until {until}, max_snooze "))
                && detail.ends_with(") by azureuser: training overnight"),
            "{detail}"
        );
        let stops: Vec<&Value> = records.iter().filter(|r| r["action"] == "stop").collect();
        assert_eq!(stops.len(), 1, "{records:#?}");
        assert_eq!(stops[0]["instance"], "ci-idle");
        let detail = stops[0]["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!(
                "agent: idle since {two_hours_ago} (heartbeat {}, ",
                idle.at
            )),
            "{detail}"
        );
        let text = emu.run(&config, ADMIN.1, &["audit"]).await;
        text.success();
        assert!(
            text.stdout.contains("DETAIL")
                && text.stdout.contains("by azureuser: training overnight"),
            "{}",
            text.stdout
        );
    })
    .await;
}

/// Storage that does not answer: every instance's activity is unknown, nothing is stopped
/// by the idle rule, and the pass goes on.
#[tokio::test]
async fn unreachable_storage_is_unknown_never_idle() {
    within(300, async {
        let now = lightsout::clock::now();
        let (mut azurite, emu, client) = setup(&["ci-idle"], now).await;
        let idle = verdict("ci-idle", now, false, now - SignedDuration::from_hours(2));
        beat(&client, "ci-idle", &idle.to_metadata()).await;
        let config = daemon_config(&emu, &azurite, free_port());
        known_for_hours(&emu, &["ci-idle"], now);
        azurite.stop().await;
        let run = emu.run(&config, ADMIN.1, &["run", "--once"]).await;
        run.success();
        assert!(stops(&emu.calls().await).is_empty(), "{run:#?}");
        assert!(
            run.stderr.contains("cannot list the agents' heartbeats"),
            "{}",
            run.stderr
        );
        let run = emu.run(&config, ADMIN.1, &["plan", "--json"]).await;
        let rows = run.json();
        assert_eq!(row(&rows, "ci-idle")["agent"]["heartbeat"], "unreachable");
        let doctor = emu.run(&config, ADMIN.1, &["doctor"]).await;
        assert!(
            doctor
                .stdout
                .contains("[FAIL] agent heartbeats: cannot list"),
            "{doctor:#?}"
        );
        assert!(
            doctor.stdout.contains("Storage Blob Data Reader"),
            "{doctor:#?}"
        );
        // Back: the same heartbeat is read and the instance is stopped.
        azurite.restart().await;
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        assert_eq!(stops(&emu.calls().await), vec!["ci-idle".to_owned()]);
    })
    .await;
}

/// 10,000 heartbeats of one workspace are read by one pass in two List Blobs requests
/// (5,000 a page), counted by the daemon's own storage request counter.
#[tokio::test]
async fn ten_thousand_heartbeats_in_two_requests() {
    use futures_util::StreamExt;
    within(600, async {
        let now = lightsout::clock::now();
        let (azurite, emu, client) = setup(&["ci-idle"], now).await;
        let meta = verdict("ci-idle", now, false, now).to_metadata();
        beat(&client, "ci-idle", &meta).await;
        let client = std::sync::Arc::new(client);
        let results: Vec<_> = futures_util::stream::iter(0..9_999)
            .map(|i| {
                let c = client.clone();
                async move {
                    let name = format!("ci-other-{i:05}");
                    let meta = verdict(&name, now, false, now).to_metadata();
                    c.put_block_blob(
                        &blob_name(WS, &name),
                        Vec::new(),
                        "application/json",
                        &[(METADATA_KEY, &meta)],
                    )
                    .await
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        assert!(results.iter().all(Result::is_ok), "a put failed");
        let port = free_port();
        let config = daemon_config(&emu, &azurite, port);
        let daemon = start_daemon(&config, false);
        let metrics = metrics_after_a_pass(&reqwest::Client::new(), port).await;
        drop(terminate(daemon).await);
        for want in [
            format!(r#"lightsout_storage_requests_total{{account="127.0.0.1:{}"}} 2"#, azurite.port),
            r#"lightsout_agent_heartbeats_ignored_total{reason="not_governed",workspace="lab"} 9999"#.to_owned(),
            r#"lightsout_agent_heartbeats{state="seen",workspace="lab"} 1"#.to_owned(),
        ] {
            assert!(metrics.contains(&want), "{want}\n{metrics}");
        }
    })
    .await;
}
