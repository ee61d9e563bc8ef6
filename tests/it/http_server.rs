//! The daemon's HTTP server under abuse (issue 13, item 13): a flood of idle connections
//! and a client that never finishes its headers must not make `/healthz` unreachable.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::support::{ADMIN, BIN, EmulatorProcess, FAST, GENEROUS, fleet, free_port, within};

/// How many descriptors this test process may open (`/proc/self/limits`), so the flood
/// stays within the test's own limit on any machine.
fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// One plain HTTP/1.1 GET on a fresh connection: the status line's code.
async fn get_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connection_flood_and_slow_headers_do_not_lock_out_healthz() {
    let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Stopped")])).await;
    let port = free_port();
    let base = std::fs::read_to_string(emu.config(ADMIN.0)).unwrap();
    let state = emu.dir.path().join("state");
    let config = emu.dir.path().join("daemon.toml");
    std::fs::write(
        &config,
        format!(
            "{base}\n[daemon]\npoll_interval = \"5s\"\nstate_dir = \"{}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
            state.display()
        ),
    )
    .unwrap();
    // systemd's default soft limit of open files: the flood below outnumbers it.
    let _daemon = Command::new("prlimit")
        .args(["--nofile=1024:1024", BIN, "run", "--config"])
        .arg(&config)
        .env_clear()
        .env("AZURE_CLIENT_SECRET", ADMIN.1)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    within(30, async {
        while get_status(port, "/readyz").await != Some(200) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;

    // 1,100 connections that never send a byte (fewer if this process may not open them).
    let flood = 1_100.min(open_files_limit().saturating_sub(200));
    let mut idle = Vec::with_capacity(flood);
    for _ in 0..flood {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect #{} failed: {e}", idle.len()),
        }
    }
    // With the flood still open, a probe gets its answer.
    let status = within(10, get_status(port, "/healthz")).await;
    assert_eq!(
        status,
        Some(200),
        "/healthz answers while {flood} idle connections are open"
    );

    // Past the cap, the oldest connections were closed by the daemon: reading one ends.
    let mut oldest = idle.remove(0);
    let mut byte = [0u8; 1];
    let n = within(10, oldest.read(&mut byte)).await;
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "the oldest idle connection is closed"
    );
    drop(idle);

    // A client that starts a request and never finishes its headers is closed too.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = within(30, slow.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the server closes a connection whose headers never end"
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "an unfinished request is not answered"
    );
    assert_eq!(get_status(port, "/healthz").await, Some(200));
}
