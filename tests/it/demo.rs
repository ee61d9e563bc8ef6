//! `lightsout demo`: the binary tells the whole story on the shipped demo config.

use std::process::Command;

#[test]
fn demo_stops_the_idle_keeps_the_busy_skips_the_held() {
    let out = Command::new(env!("CARGO_BIN_EXE_lightsout"))
        .args(["demo", "--speed", "600", "--duration", "60m"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "create ci-demo",
        "ci-demo: Running",
        "ci-demo: Stopped",
        "ci-demo: deleted",
        "ci-dave    Running     stop requested (idle",
        "gpu-carol  JobRunning  busy (a job runs): never stopped",
        "ci-erin    Running     held by its owner: not stopped",
        "ci-frank   Running     opted out",
        "ci-dave    Stopped",
        "metrics at http://127.0.0.1:",
        "money (USD): spent ",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("gpu-carol  JobRunning  stop requested"));
}
