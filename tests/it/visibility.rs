//! A daemon that cannot see, or cannot write, says so (issue 13, items 10 and 11): `lightsout
//! run` (the binary) against the emulator binary with a wrong secret, with an ARM endpoint
//! nothing listens on (then a forwarder appears on that port), with a damaged state file,
//! and with a state database whose writes fail in SQLite (a file-size limit set on the
//! running daemon with `prlimit`: SQLite's own `SQLITE_IOERR_WRITE`, as on a full disk).

#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use lightsout::daemon::store::{Intent, Store};
use lightsout::engine::memory::InstanceMemory;
use lightsout::engine::model::{Action, Reason};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{ADMIN, BIN, EmulatorProcess, FAST, GENEROUS, fleet, free_port, within};

/// The emulator's config with `arm_endpoint` replaced, a 5 s poll, the HTTP listener on
/// `port`, table prices, and `policy`.
fn config(emu: &EmulatorProcess, arm: Option<&str>, port: u16, policy: &str) -> PathBuf {
    let mut base = std::fs::read_to_string(emu.config(ADMIN.0)).unwrap();
    if let Some(arm) = arm {
        base = base.replacen(
            &format!("arm_endpoint = \"{}\"", emu.ready.endpoint),
            &format!("arm_endpoint = \"{arm}\""),
            1,
        );
    }
    let state = emu.dir.path().join("lightsout-state");
    let text = format!(
        "[daemon]\nstate_dir = \"{}\"\npoll_interval = \"5s\"\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n{base}\n{policy}\n",
        state.display()
    );
    let path = emu.dir.path().join(format!("daemon-{port}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A running daemon whose log (JSON lines on a pipe: a file-size limit does not apply to
/// pipes) is collected as it comes.
struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
    base: String,
    http: reqwest::Client,
}

impl Daemon {
    /// `lightsout run` with `secret`, started through `sh` with SIGXFSZ ignored (so that a
    /// file-size limit makes writes fail with EFBIG instead of killing the process).
    fn start(config: &Path, secret: &str, port: u16) -> Daemon {
        let mut child = Command::new("sh")
            .args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\""])
            .arg(BIN)
            .args(["--log-format", "json", "run", "--config"])
            .arg(config)
            .env_clear()
            .env("AZURE_CLIENT_SECRET", secret)
            .env("RUST_LOG", "warn,lightsout=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Daemon {
            child,
            log,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Lines of the log containing `needle`.
    fn count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.ok()?))
    }

    /// The value of the first series starting with `prefix`.
    async fn metric(&self, prefix: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics").await?;
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    async fn passes(&self) -> f64 {
        self.metric("lightsout_reconcile_passes_total ")
            .await
            .unwrap_or(0.0)
    }

    /// Waits until `pred` holds for (status, body) of `path`.
    async fn until(&self, path: &str, secs: u64, pred: impl Fn(u16, &str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some((status, body)) = self.get(path).await
                && pred(status, &body)
            {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never matched; last {:?}; log:\n{}",
                self.get(path).await,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until at least `n` passes are counted.
    async fn passes_at_least(&self, n: f64, secs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while self.passes().await < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fewer than {n} passes; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn stop(mut self) {
        drop(self.child.start_kill());
        drop(self.child.wait().await);
    }
}

/// Forwards TCP connections from `listener` to `to` (the emulator), byte for byte: TLS
/// stays end to end, so the certificate still matches.
fn forward(listener: tokio::net::TcpListener, to: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let to = to.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await {
                    drop(tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await);
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_that_cannot_see_is_not_ready_and_says_why_once() {
    within(240, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Running")])).await;

        // A wrong secret: Entra ID refuses every token.
        let port = free_port();
        let cfg = config(&emu, None, port, "");
        let d = Daemon::start(&cfg, "not-the-secret", port);
        d.passes_at_least(3.0, 60).await;
        let (status, body) = d.get("/readyz").await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("lab"), "{body}");
        assert_eq!(
            d.metric(r#"lightsout_workspace_up{workspace="lab"}"#).await,
            Some(0.0)
        );
        // The cause, once over the passes (it used to be the top line, every pass).
        assert_eq!(d.count("AADSTS7000215"), 1, "{}", d.log());
        assert_eq!(d.count("workspace cannot be observed"), 1, "{}", d.log());
        assert!(!d.log().contains("not-the-secret"));
        d.stop().await;

        // Fixed: the right secret, ready after the first pass.
        let d = Daemon::start(&cfg, ADMIN.1, port);
        d.until("/readyz", 30, |s, b| s == 200 && b == "ready\n")
            .await;
        assert_eq!(
            d.metric(r#"lightsout_workspace_up{workspace="lab"}"#).await,
            Some(1.0)
        );
        d.stop().await;

        // ARM on a port nothing listens on: connection refused at every try.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let arm_port = listener.local_addr().unwrap().port();
        drop(listener);
        let port = free_port();
        let cfg = config(
            &emu,
            Some(&format!("https://127.0.0.1:{arm_port}")),
            port,
            "",
        );
        let d = Daemon::start(&cfg, ADMIN.1, port);
        d.passes_at_least(3.0, 120).await;
        let (status, body) = d.get("/readyz").await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert_eq!(
            d.metric(r#"lightsout_workspace_up{workspace="lab"}"#).await,
            Some(0.0)
        );
        let refused = d.count("onnection refused");
        assert_eq!(refused, 1, "{}", d.log());
        // Healthy all along: the loop runs, only the workspace is out of sight.
        assert_eq!(d.get("/healthz").await.unwrap().0, 200);

        // The port comes to life (a forwarder to the emulator): ready again, said once.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", arm_port))
            .await
            .unwrap();
        let emu_addr = emu.ready.endpoint.trim_start_matches("https://").to_owned();
        let forwarder = forward(listener, emu_addr);
        d.until("/readyz", 60, |s, b| s == 200 && b == "ready\n")
            .await;
        assert_eq!(
            d.metric(r#"lightsout_workspace_up{workspace="lab"}"#).await,
            Some(1.0)
        );
        let seen = d.passes().await;
        d.passes_at_least(seen + 2.0, 30).await;
        assert_eq!(d.count("workspace observed again"), 1, "{}", d.log());
        assert_eq!(d.count("onnection refused"), 1, "{}", d.log());
        d.stop().await;
        forwarder.abort();
    })
    .await;
}

/// Fill a state directory with enough audit rows that its indexes span many pages.
fn fill_state(dir: &Path) {
    let mut store = Store::open(dir).unwrap();
    let at: Timestamp = "2026-03-27T18:00:00Z".parse().unwrap();
    for n in 0..3000 {
        let intent = Intent {
            at,
            workspace: "lab".into(),
            instance: format!("ci-{n:05}"),
            action: Action::Stop,
            reason: Reason::OutsideWindow,
            policy: "closed".into(),
            catch_up: false,
            dry_run: true,
            detail: None,
        };
        store
            .record_intent(&intent, &InstanceMemory::default())
            .unwrap();
    }
}

#[tokio::test]
async fn a_damaged_state_database_refuses_to_start_and_is_left_alone() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Running")])).await;
        let port = free_port();
        let cfg = config(&emu, None, port, "");
        let state = emu.dir.path().join("lightsout-state");
        fill_state(&state);
        let db = state.join("lightsout.db");
        // Overwrite one page of an index with garbage, as a torn write or bad disk would.
        let (page_size, root): (i64, i64) = {
            let c = rusqlite::Connection::open(&db).unwrap();
            (
                c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap(),
                c.query_row(
                    "SELECT rootpage FROM sqlite_master WHERE name = 'audit_by_instance'",
                    [],
                    |r| r.get(0),
                )
                .unwrap(),
            )
        };
        let mut bytes = std::fs::read(&db).unwrap();
        let start = usize::try_from((root - 1) * page_size).unwrap();
        let end = start + usize::try_from(page_size).unwrap();
        for (i, b) in bytes[start..end].iter_mut().enumerate() {
            *b = u8::try_from(i % 251).unwrap();
        }
        std::fs::write(&db, &bytes).unwrap();

        let run = emu.run(&cfg, ADMIN.1, &["run", "--once"]).await;
        assert_ne!(run.code, Some(0), "{run:#?}");
        assert!(run.stderr.contains(&db.display().to_string()), "{run:#?}");
        assert!(run.stderr.contains("damaged"), "{run:#?}");
        // Nothing deleted, nothing rewritten, nothing sent.
        assert_eq!(std::fs::read(&db).unwrap(), bytes);
        assert!(
            emu.calls()
                .await
                .iter()
                .all(|c| c["method"] != "POST"
                    || !c["path"].as_str().unwrap().contains("/computes/")),
        );
    })
    .await;
}

const ALWAYS_DOWN: &str = r#"
[[policy]]
name = "closed"
enforcement = "always"
exceptions = [ { from = "2000-01-01T00:00", to = "2100-01-01T00:00", state = "down" } ]
"#;

/// `prlimit --fsize=SOFT:HARD` on the running daemon (only the soft limit moves: raising a
/// hard limit needs a privilege the test may not have).
fn fsize(pid: u32, limit: &str) {
    let out = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={limit}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_database_that_cannot_write_fails_health_and_is_counted() {
    within(240, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Stopped")])).await;
        let port = free_port();
        let cfg = config(&emu, None, port, ALWAYS_DOWN);
        let d = Daemon::start(&cfg, ADMIN.1, port);
        d.until("/readyz", 30, |s, _| s == 200).await;
        assert_eq!(d.get("/healthz").await.unwrap(), (200, "ok\n".to_owned()));
        let pid = d.child.id().unwrap();

        // Every write past offset 0 now fails: SQLite reports SQLITE_IOERR_WRITE.
        fsize(pid, "0:unlimited");
        let start = emu
            .run(
                &emu.config(ADMIN.0),
                ADMIN.1,
                &["ci", "start", "ci-a", "--workspace", "lab", "--wait"],
            )
            .await;
        start.success();
        let body = d.until("/healthz", 60, |s, _| s == 503).await;
        assert!(body.contains("state database"), "{body}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while d.count("cannot record intent") == 0 {
            assert!(tokio::time::Instant::now() < deadline, "{}", d.log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let log = d.log();
        assert!(log.contains("cannot record intent; not acting"), "{log}");
        assert!(
            log.contains("disk I/O error"),
            "the SQLite cause is logged: {log}"
        );
        let errors = d
            .metric(r#"lightsout_state_errors_total{kind="sql"}"#)
            .await
            .unwrap_or(0.0);
        assert!(errors >= 1.0, "{errors}");
        // Refused, so not sent.
        let stops = emu
            .calls()
            .await
            .into_iter()
            .filter(|c| {
                c["method"] == "POST" && c["path"].as_str().unwrap().ends_with("/ci-a/stop")
            })
            .count();
        assert_eq!(stops, 0);
        assert_eq!(d.get("/readyz").await.unwrap().0, 200, "it still sees");

        // The disk has room again: the next pass records and acts, and health recovers.
        fsize(pid, "unlimited:unlimited");
        d.until("/healthz", 60, |s, b| s == 200 && b == "ok\n")
            .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let state = emu.state().await;
            let a = &state["workspaces"][0]["instances"][0]["resource"]["properties"]["properties"];
            if a["state"] == "Stopped" {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{}", d.log());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        d.stop().await;
        let audit = emu.run(&cfg, ADMIN.1, &["audit", "--json"]).await;
        audit.success();
        let rows = audit.json();
        assert_eq!(rows.as_array().unwrap().len(), 1, "{rows:#}");
        assert_eq!(rows[0]["instance"], "ci-a");
    })
    .await;
}
