//! `lightsout agent observe --json` (the binary) against real work on this machine: a CPU
//! burner, a pty with input, a detached tmux, a real jupyter_server with a busy kernel, bad
//! runtime files and a server that never answers. Each test makes its own throwaway user
//! (`useradd`, removed at the end), so tests running side by side do not see each other's
//! work; it needs root, and says so and passes without it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};

use crate::support::{free_port, run_lightsout};

/// A user made for one test; its processes (started by the test, by pid) and home go at drop.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    /// `None` (after saying why) when not root: useradd needs it.
    fn create() -> Option<TestUser> {
        let id = std::process::Command::new("id").arg("-u").output().unwrap();
        if String::from_utf8_lossy(&id.stdout).trim() != "0" {
            eprintln!("SKIPPED: agent_observe tests need root (useradd, runuser)");
            return None;
        }
        let name = format!("lo-agent-test-{:08x}", rand::random::<u32>());
        // useradd locks /etc/passwd; tests running side by side may meet on the lock.
        let mut ok = false;
        for _ in 0..50 {
            let out = std::process::Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", &name])
                .output()
                .unwrap();
            if out.status.success() {
                ok = true;
                break;
            }
            std::process::Command::new("sleep")
                .arg("0.2")
                .status()
                .unwrap();
        }
        assert!(ok, "useradd {name} failed");
        let num = |flag: &str| -> u32 {
            let out = std::process::Command::new("id")
                .args([flag, &name])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        Some(TestUser {
            uid: num("-u"),
            gid: num("-g"),
            name,
        })
    }

    /// A command run as this user (set uid and gid directly: the pid is the program's own).
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.uid(self.uid)
            .gid(self.gid)
            .env_clear()
            .env("HOME", format!("/home/{}", self.name))
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    async fn observe(&self, window: &str, env: &[(&str, &str)]) -> Value {
        let run = run_lightsout(
            &[
                "agent", "observe", "--json", "--user", &self.name, "--window", window,
            ],
            None,
            env,
        )
        .await;
        run.success();
        run.json()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Retried: the test's processes (killed on drop) may take a moment to go, and tests
        // side by side meet on the /etc/passwd lock. 0 = removed, 6 = no such user.
        for _ in 0..100 {
            let code = std::process::Command::new("userdel")
                .args(["-r", &self.name])
                .stderr(Stdio::null())
                .status()
                .ok()
                .and_then(|s| s.code());
            if matches!(code, Some(0 | 6) | None) {
                return;
            }
            drop(std::process::Command::new("sleep").arg("0.1").status());
        }
        eprintln!("userdel {} kept failing", self.name);
    }
}

fn reasons(snap: &Value) -> Vec<String> {
    snap["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

async fn kill(child: &mut Child) {
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

/// Two shell loops of the user, each its own process (killed by pid), at high priority:
/// this 2-core machine is shared, and a burner at normal priority may get only a slice of a
/// core. With the scheduler's autogroups, priority is per session: `setsid` gives the loop
/// its own, whose nice it then gets. `setsid` and `setpriv` exec in turn, so the pid is the
/// loop's.
fn burn(user: &TestUser) -> Vec<Child> {
    (0..2)
        .map(|_| {
            let child = Command::new("setsid")
                .arg("setpriv")
                .arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .args(["--clear-groups", "sh", "-c", "while :; do :; done"])
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let pid = child.id().unwrap();
            // Once it runs the loop (after setsid), its autogroup is its own.
            for _ in 0..200 {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"));
                if comm.is_ok_and(|c| c.trim() == "sh") {
                    break;
                }
                std::process::Command::new("sleep")
                    .arg("0.01")
                    .status()
                    .unwrap();
            }
            // Best effort: without autogroups (the file is absent) plain nice would do, and
            // the loop still runs.
            drop(std::fs::write(format!("/proc/{pid}/autogroup"), "-15"));
            child
        })
        .collect()
}

/// The user's one pty, once the observation shows it.
async fn the_pty(user: &TestUser) -> String {
    for _ in 0..50 {
        let snap = user.observe("1s", &[]).await;
        if let Some(t) = snap["signals"]["terminals"].as_array().unwrap().first() {
            return t["tty"].as_str().unwrap().to_owned();
        }
    }
    panic!("no pty of {} seen", user.name);
}

/// Moves the pty's last input an hour back, as if nobody typed since.
fn age(tty: &str) {
    let ok = std::process::Command::new("touch")
        .args(["-a", "-d", "1 hour ago", &format!("/dev/{tty}")])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test]
async fn a_cpu_burner_of_the_user_is_busy_and_not_after_it_is_killed() {
    let Some(user) = TestUser::create() else {
        return;
    };
    let mut burners = burn(&user);
    let pids: Vec<u32> = burners.iter().map(|b| b.id().unwrap()).collect();

    let snap = user.observe("2s", &[]).await;
    assert_eq!(snap["busy"], true, "{snap:#}");
    assert!(reasons(&snap).contains(&"cpu".to_owned()), "{snap:#}");
    assert!(snap["signals"]["cpu"]["user_total_pct"].as_f64().unwrap() >= 50.0);
    let top = snap["signals"]["cpu"]["processes"][0]["pid"]
        .as_u64()
        .unwrap();
    assert!(pids.contains(&(top as u32)), "{snap:#}");
    assert_eq!(snap["last_activity"], snap["at"]);

    for b in &mut burners {
        kill(b).await;
    }
    let snap = user.observe("2s", &[]).await;
    assert_eq!(snap["busy"], false, "{snap:#}");
    assert_eq!(snap["signals"]["cpu"]["user_total_pct"], 0.0, "{snap:#}");
}

#[tokio::test]
async fn input_on_a_pty_of_the_user_is_terminal_input() {
    let Some(user) = TestUser::create() else {
        return;
    };
    // script(1) runs `cat` on a new pty and copies its own stdin to it.
    let mut script = user.command("script");
    let mut script = script
        .args(["-qfc", "cat", "/dev/null"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let tty = the_pty(&user).await;
    age(&tty);

    let snap = user.observe("1s", &[]).await;
    assert_eq!(snap["busy"], false, "an hour-old input: {snap:#}");
    let last = snap["last_activity"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>();
    assert!(last.unwrap() < lightsout::clock::now() - jiff::SignedDuration::from_mins(59));

    let stdin = script.stdin.as_mut().unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    stdin.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let snap = user.observe("1s", &[]).await;
    assert_eq!(reasons(&snap), ["terminal_input"], "{snap:#}");
    let seen = &snap["signals"]["terminals"][0];
    assert_eq!(seen["tty"], tty.as_str());
    // The evidence is the device's access time: moved from an hour ago to now.
    let input: jiff::Timestamp = seen["last_input"].as_str().unwrap().parse().unwrap();
    assert!(input > lightsout::clock::now() - jiff::SignedDuration::from_mins(1));
    kill(&mut script).await;
}

#[tokio::test]
async fn a_detached_tmux_of_the_user_counts_its_input() {
    let Some(user) = TestUser::create() else {
        return;
    };
    let tmux = |args: &[&str]| {
        let mut cmd = user.command("tmux");
        cmd.args(args);
        cmd
    };
    let ok = tmux(&["new-session", "-d", "-s", "t", "cat"])
        .status()
        .await
        .unwrap();
    assert!(ok.success());
    let tty = the_pty(&user).await;
    age(&tty);
    let snap = user.observe("1s", &[]).await;
    assert_eq!(snap["busy"], false, "{snap:#}");

    let ok = tmux(&["send-keys", "-t", "t", "hello", "Enter"])
        .status()
        .await
        .unwrap();
    assert!(ok.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let snap = user.observe("1s", &[]).await;
    assert_eq!(reasons(&snap), ["terminal_input"], "{snap:#}");
    drop(tmux(&["kill-server"]).status().await);
}

/// A file in the runtime dir.
fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test]
async fn a_busy_kernel_of_a_real_jupyter_server_is_kernel_busy_and_bad_files_are_skipped() {
    let Some(user) = TestUser::create() else {
        return;
    };
    // CI installs it from tests/python/requirements.txt: missing is a failure, not a skip.
    let import = std::process::Command::new("python3")
        .args(["-c", "import jupyter_server, ipykernel, jupyter_client"])
        .status()
        .unwrap();
    assert!(
        import.success(),
        "jupyter_server is not importable: pip install -r tests/python/requirements.txt"
    );
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let token = format!("tok{:032x}", rand::random::<u128>());
    let port = free_port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            &format!("--port={port}"),
            &format!("--ServerApp.token={token}"),
            &format!("--ServerApp.root_dir={}", dir.path().display()),
        ])
        .env("JUPYTER_RUNTIME_DIR", &runtime)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..300 {
        let files = std::fs::read_dir(&runtime).unwrap().flatten();
        if files
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .any(|n| n.starts_with("jpserver-") && n.ends_with(".json"))
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "jupyter_server wrote no runtime file");

    let helper = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/jupyter_busy_kernel.py"
    );
    let out = Command::new("python3")
        .args([helper, &format!("http://127.0.0.1:{port}/"), &token])
        .arg(&runtime)
        .arg("120")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let kernel = String::from_utf8_lossy(&out.stdout).trim().to_owned();

    // Beside it: a half-written file, a dead server, an unreadable one (a directory), one
    // pointing off the machine (whose token must not leave), a FIFO, and a file that is not
    // a runtime file.
    write(
        &runtime,
        "jpserver-1.json",
        r#"{"url": "http://127.0.0.1:88"#,
    );
    let dead = free_port();
    write(
        &runtime,
        "jpserver-2.json",
        &format!(r#"{{"url": "http://127.0.0.1:{dead}/", "token": "{token}"}}"#),
    );
    std::fs::create_dir(runtime.join("jpserver-3.json")).unwrap();
    // A FIFO nobody writes: reading it would block forever.
    let fifo = std::process::Command::new("mkfifo")
        .arg(runtime.join("jpserver-6.json"))
        .status()
        .unwrap();
    assert!(fifo.success());
    write(
        &runtime,
        "nbserver-4.json",
        &format!(r#"{{"url": "http://192.0.2.7:8888/", "token": "{token}"}}"#),
    );
    write(&runtime, "jpserver-5-open.html", "<html/>");

    let env = [("JUPYTER_RUNTIME_DIR", runtime.to_str().unwrap())];
    let run = run_lightsout(
        &[
            "agent", "observe", "--json", "--user", &user.name, "--window", "2s",
        ],
        None,
        &env,
    )
    .await;
    run.success();
    assert!(!run.stdout.contains(&token), "token in stdout");
    assert!(!run.stderr.contains(&token), "token in stderr");
    let snap = run.json();
    assert_eq!(reasons(&snap), ["kernel_busy"], "{snap:#}");
    let jupyter = &snap["signals"]["jupyter"];
    assert_eq!(jupyter["skipped"], 5, "{snap:#}");
    assert_eq!(jupyter["servers"].as_array().unwrap().len(), 1);
    let k = &jupyter["servers"][0]["kernels"][0];
    assert_eq!(k["id"], kernel.as_str());
    assert_eq!(k["execution_state"], "busy");
    assert_eq!(jupyter["servers"][0]["sessions"], 0);
    // Each skipped file is said (once: one observation here).
    for f in [
        "jpserver-1.json",
        "jpserver-2.json",
        "jpserver-3.json",
        "nbserver-4.json",
    ] {
        assert_eq!(run.stderr.matches(f).count(), 1, "{f}: {}", run.stderr);
    }
    kill(&mut server).await;
}

#[tokio::test]
async fn a_jupyter_server_that_never_answers_does_not_hold_the_observation() {
    let Some(user) = TestUser::create() else {
        return;
    };
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "jpserver-7.json",
        &format!(r#"{{"url": "http://localhost:{port}/", "token": "never-shown-7"}}"#),
    );
    let env = [("JUPYTER_RUNTIME_DIR", dir.path().to_str().unwrap())];
    let started = tokio::time::Instant::now();
    let run = run_lightsout(
        &[
            "agent", "observe", "--json", "--user", &user.name, "--window", "1s",
        ],
        None,
        &env,
    )
    .await;
    let took = started.elapsed();
    run.success();
    // Window 1 s, the server's 2 s bound running beside it, plus a slow shared machine.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let snap = run.json();
    assert_eq!(snap["signals"]["jupyter"]["skipped"], 1, "{snap:#}");
    assert!(!run.stderr.contains("never-shown-7"));
    hold.abort();
}

#[tokio::test]
async fn without_nvidia_the_gpu_signal_is_unavailable_not_busy() {
    let Some(user) = TestUser::create() else {
        return;
    };
    if Path::new("/dev/nvidiactl").exists() {
        eprintln!("SKIPPED: this machine has an NVIDIA driver");
        return;
    }
    let snap = user.observe("1s", &[]).await;
    assert_eq!(snap["signals"]["gpu"]["status"], "unavailable", "{snap:#}");
    assert_eq!(snap["busy"], false, "{snap:#}");
}

#[tokio::test]
async fn an_unknown_user_is_an_error() {
    let run = run_lightsout(
        &[
            "agent",
            "observe",
            "--json",
            "--user",
            "lo-no-such-user-x",
            "--window",
            "1s",
        ],
        None,
        &[],
    )
    .await;
    run.code(1);
    assert!(run.stderr.contains("lo-no-such-user-x"), "{}", run.stderr);
}

#[tokio::test]
async fn a_vscode_window_counts_only_with_work() {
    let Some(user) = TestUser::create() else {
        return;
    };
    // An extension host's command line, as VS Code's newer layout runs it (AGENT.md 1.4).
    let fork = format!(
        "/home/{}/.vscode-server/cli/servers/Stable-abc/server/out/bootstrap-fork",
        user.name
    );
    let mut host = user.command("python3");
    let mut host = host
        .args([
            "-c",
            "import time; time.sleep(600)",
            &fork,
            "--type=extensionHost",
        ])
        .spawn()
        .unwrap();
    let snap = user.observe("1s", &[]).await;
    assert_eq!(snap["signals"]["vscode"]["windows"], 1, "{snap:#}");
    assert_eq!(snap["busy"], false, "a window alone: {snap:#}");

    let mut burners = burn(&user);
    let snap = user.observe("2s", &[]).await;
    assert_eq!(reasons(&snap), ["cpu", "vscode"], "{snap:#}");
    for b in &mut burners {
        kill(b).await;
    }
    kill(&mut host).await;
}
