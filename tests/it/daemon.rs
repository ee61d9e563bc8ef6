//! `lightsout run` (the binary) against the emulator binary: passes act on policy, record
//! before sending, never repeat a request across restarts or crashes, honour signals and
//! act within a second of a schedule boundary.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::support::{ADMIN, BIN, EmulatorProcess, FAST, GENEROUS, WS, fleet, within};

/// The emulator's config plus a state dir and `policy` (TOML).
fn daemon_config(emu: &EmulatorProcess, policy: &str, poll: &str) -> PathBuf {
    let base = std::fs::read_to_string(emu.config(ADMIN.0)).unwrap();
    let state = emu.dir.path().join("lightsout-state");
    let text = format!(
        "[daemon]\nstate_dir = \"{}\"\npoll_interval = \"{poll}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n{base}\n{policy}\n",
        state.display()
    );
    let path = emu.dir.path().join("daemon.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Stop everything, always (an exception covering all time), and idle after 45 minutes.
const ALWAYS_DOWN: &str = r#"
[[policy]]
name = "closed"
enforcement = "always"
exceptions = [ { from = "2000-01-01T00:00", to = "2100-01-01T00:00", state = "down" } ]
"#;

fn posts<'a>(calls: &'a [Value], suffix: &str) -> Vec<&'a Value> {
    calls
        .iter()
        .filter(|c| {
            c["method"] == "POST" && c["path"].as_str().is_some_and(|p| p.ends_with(suffix))
        })
        .collect()
}

async fn audit(emu: &EmulatorProcess, config: &Path) -> Vec<Value> {
    let run = emu.run(config, ADMIN.1, &["audit", "--json"]).await;
    run.success();
    run.json().as_array().unwrap().clone()
}

#[tokio::test]
async fn once_acts_on_policy_and_records_it() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(
            GENEROUS,
            FAST,
            &[
                ("ci-a", "Running"),
                ("ci-b", "JobRunning"),
                ("ci-c", "Stopped"),
            ],
        ))
        .await;
        let config = daemon_config(&emu, ALWAYS_DOWN, "60s");
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        let calls = emu.calls().await;
        assert_eq!(posts(&calls, "/ci-a/stop").len(), 1, "{calls:#?}");
        assert!(
            posts(&calls, "/ci-b/stop").is_empty(),
            "a busy instance is never stopped"
        );
        assert!(
            posts(&calls, "/ci-c/stop").is_empty(),
            "a stopped instance is not stopped again"
        );
        // One list call per page (2 per page, 3 instances): never a GET per instance.
        let gets: Vec<_> = calls
            .iter()
            .filter(|c| c["method"] == "GET" && c["path"].as_str().unwrap().ends_with("/computes"))
            .collect();
        assert_eq!(gets.len(), 2, "{gets:#?}");
        let records = audit(&emu, &config).await;
        assert_eq!(records.len(), 1, "{records:#?}");
        let r = &records[0];
        assert_eq!(
            (
                r["instance"].as_str(),
                r["action"].as_str(),
                r["reason"].as_str()
            ),
            (Some("ci-a"), Some("stop"), Some("outside_window"))
        );
        assert_eq!(r["policy"], "closed");
        assert!(
            matches!(r["outcome"].as_str(), Some("pending" | "succeeded")),
            "{r:#?}"
        );
        assert!(
            r["request_id"].is_string(),
            "the accepted request's id is kept: {r:#?}"
        );
    })
    .await;
}

/// A schedule policy that opts into the Jupyter signal asks each running instance's Jupyter
/// server: the notebook busy at closing time is kept, the idle one is stopped.
#[tokio::test]
async fn a_schedule_stop_spares_a_busy_notebook() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(
            GENEROUS,
            FAST,
            &[("ci-idle", "Running"), ("ci-notebook", "Running")],
        ))
        .await;
        let r = emu
            .http
            .post(format!("{}/_emulator/activity", emu.ready.endpoint))
            .json(&serde_json::json!({"workspace": WS, "instance": "ci-notebook", "kind": "kernel_busy"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let policy = format!("{ALWAYS_DOWN}[policy.idle]\nsignals = [\"arm\", \"jupyter\"]\n");
        let config = daemon_config(&emu, &policy, "60s");
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        let calls = emu.calls().await;
        assert_eq!(posts(&calls, "/ci-idle/stop").len(), 1, "{calls:#?}");
        assert!(
            posts(&calls, "/ci-notebook/stop").is_empty(),
            "a busy kernel is never stopped when Jupyter is a signal"
        );
        assert!(
            calls.iter().any(|c| c["path"] == "/api/kernels"
                && c["host"]
                    .as_str()
                    .is_some_and(|h| h.starts_with("ci-notebook.eastus2.instances.azureml.ms:"))),
            "Jupyter was asked on the instance's host: {calls:#?}"
        );
        let plan = emu.run(&config, ADMIN.1, &["plan", "--json"]).await;
        plan.success();
        let text = plan.stdout.clone();
        assert!(text.contains("busy"), "{text}");
    })
    .await;
}

#[tokio::test]
async fn dry_run_decides_and_records_but_sends_nothing() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Running")])).await;
        let config = daemon_config(&emu, ALWAYS_DOWN, "60s");
        emu.run(&config, ADMIN.1, &["run", "--once", "--dry-run"])
            .await
            .success();
        let calls = emu.calls().await;
        assert!(posts(&calls, "/stop").is_empty(), "{calls:#?}");
        let records = audit(&emu, &config).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["outcome"], "dry_run");
        assert_eq!(records[0]["dry_run"], true);
    })
    .await;
}

/// A window that closed a few minutes ago: one transition, within catch-up.
fn just_closed() -> String {
    let now = lightsout::clock::now().to_zoned(jiff::tz::TimeZone::UTC);
    let from = now.checked_sub(jiff::SignedDuration::from_mins(3)).unwrap();
    format!(
        "[[policy]]\nname = \"evening\"\ncatch_up = \"1h\"\nexceptions = [ {{ from = \"{}\", to = \"2100-01-01T00:00\", state = \"down\" }} ]\n",
        from.strftime("%Y-%m-%dT%H:%M")
    )
}

#[tokio::test]
async fn one_transition_one_request_across_restarts_and_a_user_override() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Running")])).await;
        let config = daemon_config(&emu, &just_closed(), "60s");
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        let first = emu.audit_of(&config).await;
        assert_eq!(first.len(), 1);
        assert_eq!(
            first[0]["catch_up"], true,
            "acted 3 minutes late: a catch-up"
        );
        // Restart at once (operation maybe still running) and again after it ended.
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        // The user starts it again: the transition is answered; no new stop.
        emu.run(
            &config,
            ADMIN.1,
            &["ci", "start", "ci-a", "--workspace", "lab", "--wait"],
        )
        .await
        .success();
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        let calls = emu.calls().await;
        assert_eq!(posts(&calls, "/ci-a/stop").len(), 1, "{calls:#?}");
        let records = emu.audit_of(&config).await;
        assert_eq!(records.len(), 1, "{records:#?}");
        assert_eq!(records[0]["outcome"], "succeeded");
    })
    .await;
}

impl EmulatorProcess {
    async fn audit_of(&self, config: &Path) -> Vec<Value> {
        audit(self, config).await
    }
}

fn spawn_run(config: &Path, log: &Path) -> Child {
    Command::new(BIN)
        .args(["--log-format", "json", "run", "--config"])
        .arg(config)
        .env_clear()
        .env("AZURE_CLIENT_SECRET", ADMIN.1)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn signal(child: &Child, sig: &str) {
    let pid = child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

async fn wait_for_log(log: &Path, needle: &str) {
    // Up to 90 s: a schedule boundary can be a minute away.
    for _ in 0..900 {
        if std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains(needle)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{needle:?} never appeared in the log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test]
async fn sighup_with_a_bad_config_keeps_the_old_one_and_sigterm_drains() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Stopped")])).await;
        let config = daemon_config(&emu, ALWAYS_DOWN, "5s");
        let good = std::fs::read_to_string(&config).unwrap();
        let log = emu.dir.path().join("daemon.log");
        let mut child = spawn_run(&config, &log);
        wait_for_log(&log, "pass done").await;
        std::fs::write(&config, format!("{good}\n[daemon]\nbogus = 1\n")).unwrap();
        signal(&child, "HUP").await;
        wait_for_log(&log, "new configuration rejected").await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "still running after a bad reload"
        );
        std::fs::write(&config, &good).unwrap();
        signal(&child, "HUP").await;
        wait_for_log(&log, "configuration reloaded").await;
        signal(&child, "TERM").await;
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(0));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!text.contains(ADMIN.1), "the secret never appears in logs");
    })
    .await;
}

#[tokio::test]
async fn sigkill_after_intent_does_not_repeat_the_request() {
    within(120, async {
        // Slow operations: the daemon is killed while its stop is still running in Azure.
        let slow =
            "create = \"1s\"\nstart = \"1s\"\nstop = \"20s\"\nrestart = \"1s\"\ndelete = \"1s\"";
        let emu = EmulatorProcess::start(&fleet(GENEROUS, slow, &[("ci-a", "Running")])).await;
        let config = daemon_config(&emu, ALWAYS_DOWN, "5s");
        let log = emu.dir.path().join("daemon.log");
        let mut child = spawn_run(&config, &log);
        wait_for_log(&log, "request accepted").await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        // Restarted while the stop still runs (Stopping), and again once it has ended.
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        let calls = emu.calls().await;
        assert_eq!(posts(&calls, "/ci-a/stop").len(), 1, "{calls:#?}");
        let records = audit(&emu, &config).await;
        assert_eq!(records.len(), 1, "{records:#?}");
    })
    .await;
}

#[tokio::test]
async fn a_boundary_is_acted_on_within_a_second() {
    within(150, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Running")])).await;
        // The next whole minute at least 5 s away: a `down` exception begins then.
        let now = lightsout::clock::now();
        let mut boundary = now.to_zoned(jiff::tz::TimeZone::UTC).round(jiff::Unit::Minute).unwrap().timestamp();
        while boundary.duration_since(now) < jiff::SignedDuration::from_secs(5) {
            boundary = boundary.checked_add(jiff::SignedDuration::from_mins(1)).unwrap();
        }
        let local = boundary.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%dT%H:%M").to_string();
        let policy = format!(
            "[[policy]]\nname = \"boundary\"\nexceptions = [ {{ from = \"{local}\", to = \"2100-01-01T00:00\", state = \"down\" }} ]\n"
        );
        // A poll interval far longer than the wait: only the boundary can wake the daemon.
        let config = daemon_config(&emu, &policy, "300s");
        let log = emu.dir.path().join("daemon.log");
        let mut child = spawn_run(&config, &log);
        wait_for_log(&log, "request accepted").await;
        signal(&child, "TERM").await;
        child.wait().await.unwrap();
        let calls = emu.calls().await;
        let stops = posts(&calls, "/ci-a/stop");
        assert_eq!(stops.len(), 1);
        let at: jiff::Timestamp = stops[0]["time"].as_str().unwrap().parse().unwrap();
        let late = at.duration_since(boundary);
        eprintln!("boundary latency: {late:?}");
        assert!(late >= jiff::SignedDuration::ZERO && late < jiff::SignedDuration::from_secs(1), "stop sent {late:?} after the boundary");
    })
    .await;
}

#[tokio::test]
async fn a_failed_operation_is_recorded_and_not_hammered() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Running")])).await;
        emu.faults(serde_json::json!({"lro_fail_rate": 1.0})).await;
        let config = daemon_config(&emu, ALWAYS_DOWN, "5s");
        let log = emu.dir.path().join("daemon.log");
        let mut child = spawn_run(&config, &log);
        wait_for_log(&log, "operation ended").await;
        // Two more passes (5 s apart): the retry waits a minute, so nothing new is sent.
        tokio::time::sleep(Duration::from_secs(11)).await;
        signal(&child, "TERM").await;
        child.wait().await.unwrap();
        let calls = emu.calls().await;
        assert_eq!(posts(&calls, "/ci-a/stop").len(), 1, "{calls:#?}");
        let records = audit(&emu, &config).await;
        assert_eq!(records.len(), 1, "{records:#?}");
        assert_eq!(records[0]["outcome"], "failed");
        assert!(
            records[0]["error"].as_str().unwrap().contains("Failed"),
            "{records:#?}"
        );
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("\"skipped\":\"backoff\""),
            "the next passes say why they wait"
        );
    })
    .await;
}

#[tokio::test]
async fn under_faults_every_due_action_happens_once() {
    within(200, async {
        let names: Vec<String> = (0..8).map(|i| format!("ci-{i}")).collect();
        let instances: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "Running")).collect();
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &instances)).await;
        // 30% errors (500/503), 20% throttled, 5% connection resets.
        emu.faults(serde_json::json!({"error_rate": 0.3, "statuses": [500, 503], "throttle_rate": 0.2, "reset_rate": 0.05, "latency_ms": 20})).await;
        let config = daemon_config(&emu, ALWAYS_DOWN, "5s");
        let log = emu.dir.path().join("daemon.log");
        let mut child = spawn_run(&config, &log);
        tokio::time::sleep(Duration::from_secs(30)).await;
        emu.faults(serde_json::json!({})).await;
        // Faults off: every instance is stopped, at the latest when the one-minute backoff
        // after a request that failed through all its retries has passed.
        let mut stopped = false;
        for _ in 0..80 {
            let run = emu.run(&config, ADMIN.1, &["ci", "list", "--workspace", "lab", "--json"]).await;
            let all = run.json();
            if all.as_array().unwrap().iter().all(|i| i["state"] == "Stopped") {
                stopped = true;
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        signal(&child, "TERM").await;
        child.wait().await.unwrap();
        assert!(stopped, "not every instance was stopped:\n{}", std::fs::read_to_string(&log).unwrap());
        let calls = emu.calls().await;
        let faulted = calls.iter().filter(|c| c["status"] == 0 || c["status"].as_u64().is_some_and(|s| s >= 429)).count();
        eprintln!("fault run: {} ARM requests, {faulted} answered by a fault or a reset", calls.len());
        assert!(faulted > 0, "the faults were felt");
        let sent: Vec<_> = posts(&calls, "/stop");
        let accepted = sent.iter().filter(|c| c["status"] == 202).count();
        eprintln!(
            "fault run: {} stop requests sent, {} accepted, {} answered by an injected fault",
            sent.len(),
            accepted,
            sent.len() - accepted
        );
        for n in &names {
            let ok: Vec<_> = posts(&calls, &format!("/{n}/stop")).into_iter().filter(|c| c["status"] == 202).collect();
            assert_eq!(ok.len(), 1, "{n}: exactly one stop carried out: {ok:#?}");
        }
        let records = audit(&emu, &config).await;
        for n in &names {
            let mine: Vec<_> = records.iter().filter(|r| r["instance"] == n.as_str()).collect();
            assert!(!mine.is_empty(), "{n}: every action is in the audit log");
            assert_eq!(mine.iter().filter(|r| r["outcome"] == "succeeded").count(), 1, "{n}: {mine:#?}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_read_only_principal_is_reported_not_retried_in_a_loop() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Running")])).await;
        // ARM signals only: a read-only principal lacks computes/applicationaccess/action,
        // so a Shared instance's Jupyter answers it 403, as Azure's would.
        let policy = format!("{ALWAYS_DOWN}\n[policy.idle]\nsignals = [\"arm\"]\n");
        let base = std::fs::read_to_string(daemon_config(&emu, &policy, "5s")).unwrap();
        let config = emu.dir.path().join("reader.toml");
        std::fs::write(&config, base.replace(ADMIN.0, crate::support::READER.0)).unwrap();
        let log = emu.dir.path().join("daemon.log");
        let mut child = Command::new(BIN)
            .args(["--log-format", "json", "run", "--config"])
            .arg(&config)
            .env_clear()
            .env("AZURE_CLIENT_SECRET", crate::support::READER.1)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        wait_for_log(&log, "request not carried out").await;
        // Three more passes.
        tokio::time::sleep(Duration::from_secs(16)).await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "the daemon keeps running"
        );
        signal(&child, "TERM").await;
        child.wait().await.unwrap();
        let calls = emu.calls().await;
        assert_eq!(
            posts(&calls, "/ci-a/stop").len(),
            1,
            "refused once, not asked again every pass"
        );
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("AuthorizationFailed"), "{text}");
        assert!(
            text.contains("computes/stop/action"),
            "the missing permission is named: {text}"
        );
        let run = crate::support::run_lightsout(&["audit", "--json"], Some(&config), &[]).await;
        let records = run.json();
        assert_eq!(records[0]["outcome"], "refused");
    })
    .await;
}

/// A long-running daemon keeps no task per action it ever took: each operation followed in
/// the background is reaped at the first pass after it ended.
#[tokio::test]
async fn followed_operations_are_reaped_once_they_end() {
    use azure_ml_emulator::{Emulator, EmulatorOptions, Fleet};
    use lightsout::daemon::{Daemon, DaemonOptions};
    within(60, async {
        let text = fleet(GENEROUS, FAST, &[("ci-a", "Running"), ("ci-b", "Running")]);
        let emu = Emulator::start(EmulatorOptions {
            fleet: Fleet::from_toml_str(&text, "test fleet").unwrap(),
            ..EmulatorOptions::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[daemon]\nstate_dir = \"{}\"\n\n[[workspace]]\nname = \"lab\"\nsubscription_id = \"{}\"\nresource_group = \"{}\"\nworkspace = \"{WS}\"\n{ALWAYS_DOWN}",
            dir.path().join("state").display(),
            crate::support::SUB,
            crate::support::RG,
        );
        let (mut cfg, _) = lightsout::engine::config::validate::from_str(&config).unwrap();
        let client = lightsout::sim::emulated::emulator_client(
            &mut cfg.azure,
            &emu,
            lightsout::azure::ArmClientConfig::default(),
        )
        .unwrap();
        let store = lightsout::daemon::store::Store::open(&dir.path().join("state")).unwrap();
        let options = DaemonOptions {
            dry_run: false,
            follow_operations: true,
        };
        let mut daemon = Daemon::new(
            cfg,
            client,
            store,
            options,
            std::sync::Arc::new(lightsout::clock::WallClock),
        )
        .unwrap();
        let report = daemon.pass().await;
        assert_eq!(report.actions.len(), 2, "{report:#?}");
        assert_eq!(daemon.following(), 2);
        // Stops take a second here; then the next pass reaps both followers.
        let mut passes = 0;
        while daemon.following() > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            daemon.pass().await;
            passes += 1;
            assert!(passes < 40, "followers never reaped");
        }
        assert!(daemon.pass().await.actions.is_empty(), "stopped once, not again");
    })
    .await;
}

/// An ARM front on plain http (loopback) that passes every request to the emulator except
/// `POST …/stop`, whose connection it resets (RST) once the request is read: the daemon sees
/// the instance, decides to stop it, and its request fails in transport.
async fn resetting_stop_front(emu: &EmulatorProcess) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let upstream = emu.ready.endpoint.trim_end_matches('/').to_owned();
    let http = emu.http.clone();
    let front = base.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (http, upstream, front) = (http.clone(), upstream.clone(), front.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let head_end = loop {
                    let mut chunk = [0u8; 4096];
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let mut request_line = lines.next().unwrap_or_default().split(' ');
                let method = request_line.next().unwrap_or_default().to_owned();
                let target = request_line.next().unwrap_or_default().to_owned();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    let mut chunk = [0u8; 4096];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let path = target.split('?').next().unwrap_or_default();
                if method == "POST" && path.ends_with("/stop") {
                    // A reset, not a response: the OS tells the daemon "connection reset".
                    stream.set_zero_linger().unwrap();
                    return;
                }
                let mut up = http
                    .request(method.parse().unwrap(), format!("{upstream}{target}"))
                    .body(buf[head_end..head_end + length].to_vec());
                for (k, v) in &headers {
                    if matches!(k.as_str(), "authorization" | "content-type") {
                        up = up.header(k, v);
                    }
                }
                let r = up.send().await.unwrap();
                let status = r.status().as_u16();
                let body = r.text().await.unwrap().replace(&upstream, &front);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                if let Err(e) = stream.write_all(reply.as_bytes()).await {
                    eprintln!("front: the daemon hung up: {e}");
                }
            });
        }
    });
    base
}

/// Issue 14, item 5: the audit log's `error` column says why a request failed, down to the
/// cause at the bottom of the chain (the OS's "connection reset"), not only the top line
/// ("stop: connection broken talking to Azure Resource Manager").
#[tokio::test]
async fn a_transport_failure_is_audited_with_its_cause() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Running")])).await;
        let front = resetting_stop_front(&emu).await;
        let config = daemon_config(&emu, ALWAYS_DOWN, "5s");
        let text = std::fs::read_to_string(&config).unwrap().replacen(
            &format!("arm_endpoint = \"{}\"", emu.ready.endpoint),
            &format!("arm_endpoint = \"{front}\""),
            1,
        );
        assert!(text.contains(&front), "{text}");
        std::fs::write(&config, text).unwrap();
        emu.run(&config, ADMIN.1, &["run", "--once"]).await;
        assert!(
            posts(&emu.calls().await, "/ci-a/stop").is_empty(),
            "the stop never reached the emulator"
        );
        let records = audit(&emu, &config).await;
        assert_eq!(records.len(), 1, "{records:#?}");
        let error = records[0]["error"].as_str().unwrap_or_default();
        eprintln!("audited error: {error}");
        assert!(
            error.starts_with("stop: ") && error.contains("talking to Azure Resource Manager"),
            "{records:#?}"
        );
        assert!(
            error.contains("(os error ") && error.to_lowercase().contains("reset"),
            "the cause is in the audit row: {records:#?}"
        );
        assert!(!error.contains('\n'), "{error:?}");
    })
    .await;
}

/// A clock stopped at one instant, so two passes decide at the same `now`.
struct Stopped(jiff::Timestamp);

impl lightsout::clock::Clock for Stopped {
    fn now(&self) -> jiff::Timestamp {
        self.0
    }
}

/// `lightsout plan` and the daemon decide through one function: on the same state (a
/// request from 40 minutes ago still pending, whose effect never showed), `plan` shows
/// the rows the daemon's pass decides, settling included; the daemon then closes the
/// stale request as failed. (`plan` once decided without settling, so it showed the
/// request as still in flight.)
#[tokio::test]
async fn plan_shows_the_rows_the_daemon_decides_settling_included() {
    use azure_ml_emulator::{Emulator, EmulatorOptions, Fleet};
    use lightsout::daemon::store::{AuditFilter, Intent, Store};
    use lightsout::daemon::{Daemon, DaemonOptions};
    use lightsout::engine::memory::{InstanceMemory, Pending};
    within(60, async {
        let text = fleet(GENEROUS, FAST, &[("ci-a", "Running"), ("ci-b", "Stopped")]);
        let emu = Emulator::start(EmulatorOptions {
            fleet: Fleet::from_toml_str(&text, "test fleet").unwrap(),
            ..EmulatorOptions::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let config = format!(
            "[daemon]\nstate_dir = \"{}\"\n\n[[workspace]]\nname = \"lab\"\nsubscription_id = \"{}\"\nresource_group = \"{}\"\nworkspace = \"{WS}\"\n{ALWAYS_DOWN}",
            state.display(),
            crate::support::SUB,
            crate::support::RG,
        );
        let (mut cfg, _) = lightsout::engine::config::validate::from_str(&config).unwrap();
        let client = lightsout::sim::emulated::emulator_client(
            &mut cfg.azure,
            &emu,
            lightsout::azure::ArmClientConfig::default(),
        )
        .unwrap();
        let now = lightsout::clock::now();
        let asked = now - jiff::SignedDuration::from_mins(40);
        let mut store = Store::open(&state).unwrap();
        let intent = Intent {
            at: asked,
            workspace: "lab".into(),
            instance: "ci-a".into(),
            action: lightsout::engine::model::Action::Stop,
            reason: lightsout::engine::model::Reason::OutsideWindow,
            policy: "closed".into(),
            catch_up: false,
            dry_run: false,
            detail: None,
        };
        let memory = InstanceMemory {
            first_seen: Some(asked),
            pending: Some(Pending {
                action: lightsout::engine::model::Action::Stop,
                requested_at: asked,
                transition: None,
                event: None,
            }),
            ..InstanceMemory::default()
        };
        store.record_intent(&intent, &memory).unwrap();

        let clock = Stopped(now);
        let (_, plan_rows, failed) =
            lightsout::cli::commands::plan_rows(&cfg, &client, &clock).await;
        assert!(failed.is_empty(), "{failed:?}");
        let options = DaemonOptions {
            dry_run: false,
            follow_operations: false,
        };
        let mut daemon =
            Daemon::new(cfg, client, store, options, std::sync::Arc::new(clock)).unwrap();
        let report = daemon.pass().await;
        assert_eq!(plan_rows.len(), 2);
        assert_eq!(plan_rows, *report.rows, "plan shows what the daemon decides");
        drop(daemon);
        let audit = Store::open_read_only(&state)
            .unwrap()
            .audit(&AuditFilter::default())
            .unwrap();
        assert_eq!(audit[0].outcome.as_str(), "failed", "{audit:#?}");
        assert_eq!(
            audit[0].error.as_deref(),
            Some("no effect observed within 30 minutes")
        );
    })
    .await;
}
