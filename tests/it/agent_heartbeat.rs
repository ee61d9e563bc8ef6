//! `lightsout agent run` and `lightsout snooze` end to end (issue 15), the real binaries: the
//! agent against real Azurite (OAuth, HTTPS) with the emulator's compute-instance managed
//! identity, observing this machine; snooze over the agent's socket, published at once;
//! Azurite restarted and the agent restarted mid-run without losing the snooze; snooze off.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lightsout::azure::blob::{BlobClient, STORAGE_SCOPE};
use lightsout::engine::heartbeat::{Listed, METADATA_KEY, Verdict, read};
use tokio::process::{Child, Command};

use super::azurite_support::Azurite;
use super::support::{ADMIN, BIN, EmulatorProcess, RG, WS, fleet, run_lightsout, within};

const CONTAINER: &str = "lightsout-heartbeats";
const INSTANCE: &str = "ci-alice";

/// The user this test runs as (whose processes the agent observes).
fn current_user() -> String {
    let uid = std::fs::metadata("/proc/self").unwrap();
    let uid = std::os::unix::fs::MetadataExt::uid(&uid);
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_owned())
        })
        .unwrap()
}

/// Writes the agent's config: Azurite's account, both CAs, a 60 s interval (so a heartbeat
/// that arrives sooner was not the next interval's) and a 1 s sampling window.
fn agent_config(dir: &Path, azurite: &Azurite, emu: &EmulatorProcess) -> PathBuf {
    let mut pem = std::fs::read_to_string(&azurite.ca_file).unwrap();
    pem.push_str(&std::fs::read_to_string(&emu.ready.ca_file).unwrap());
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let text = format!(
        r#"resource_group = "{RG}"
workspace = "{WS}"
instance = "{INSTANCE}"
user = "{user}"
account = "{account}"
container = "{CONTAINER}"
interval = "60s"
ca_file = "{ca}"
snooze_socket = "{sock}"
state_dir = "{state}"

[signals]
window = "1s"
"#,
        user = current_user(),
        account = azurite.account_url(),
        ca = ca.display(),
        sock = dir.join("snooze.sock").display(),
        state = dir.join("state").display(),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The instance's managed identity and its `MSI_SECRET`.
const MI: &str = "55555555-5555-5555-5555-555555555555";
const MSI_SECRET: &str = "agent-msi-s3cret-never-printed";

/// A fleet with instance `ci-alice` and its managed identity behind `/MSI/auth`.
fn msi_fleet() -> String {
    fleet(
        &format!(
            r#"
[[principal]]
client_id = "{MI}"
managed_identity = true
actions = ["Microsoft.MachineLearningServices/workspaces/computes/read"]

[[instance_identity]]
instance = "{INSTANCE}"
client_id = "{MI}"
secret = "{MSI_SECRET}"
"#
        ),
        "",
        &[(INSTANCE, "Running")],
    )
}

/// The environment the unit gives the agent from `/etc/environment.sso` on a compute
/// instance: `MSI_ENDPOINT`, `MSI_SECRET`, `DEFAULT_IDENTITY_CLIENT_ID`.
fn msi_env(emu: &EmulatorProcess) -> Vec<(String, String)> {
    vec![
        (
            "MSI_ENDPOINT".into(),
            format!("{}/MSI/auth", emu.ready.endpoint),
        ),
        ("MSI_SECRET".into(), MSI_SECRET.into()),
        ("DEFAULT_IDENTITY_CLIENT_ID".into(), MI.into()),
    ]
}

/// Starts `lightsout agent run`; its log goes to `dir/agent.log`.
fn spawn_agent(config: &Path, dir: &Path, env: &[(String, String)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("agent.log"))
        .unwrap();
    Command::new(BIN)
        .args(["agent", "run", "--config"])
        .arg(config)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Stops the agent by its process id (SIGTERM: it exits cleanly).
async fn stop_agent(child: &mut Child) {
    if let Some(pid) = child.id() {
        drop(
            Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await,
        );
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        drop(child.start_kill());
        drop(child.wait().await);
    }
}

/// The heartbeat's verdict as the daemon reads it, if the blob is there.
async fn verdict(reader: &BlobClient) -> Option<Verdict> {
    let listed = reader.list(&format!("{WS}/")).await.ok()?;
    let blob = listed
        .iter()
        .find(|b| b.name == format!("{WS}/{INSTANCE}.json"))?;
    let v = read(
        Listed {
            name: &blob.name,
            size: blob.size,
            verdict: blob.metadata.get(METADATA_KEY).map(String::as_str),
        },
        &format!("{WS}/"),
        lightsout::clock::now(),
    )
    .expect("a heartbeat the daemon accepts");
    Some(v)
}

/// Polls until the verdict satisfies `want` (or panics with the agent's log after `secs`).
async fn wait_for(
    reader: &BlobClient,
    dir: &Path,
    secs: u64,
    want: impl Fn(&Verdict) -> bool,
) -> Verdict {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = verdict(reader).await
            && want(&v)
        {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such heartbeat within {secs}s; last {:?}\nagent log:\n{}",
            verdict(reader).await,
            std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn snooze(sock: &Path, args: &[&str]) -> super::support::Run {
    let mut a = vec!["snooze"];
    a.extend_from_slice(args);
    a.extend(["--socket", sock.to_str().unwrap()]);
    run_lightsout(&a, None, &[("TZ", "UTC")]).await
}

#[tokio::test]
async fn heartbeats_snooze_at_once_and_survive_storage_and_agent_restarts() {
    within(240, async {
        let mut azurite = Azurite::start().await;
        let emu = EmulatorProcess::start(&msi_fleet()).await;
        let reader = azurite.client_with(CONTAINER, emu.token_for(ADMIN, STORAGE_SCOPE).await);
        reader.create_container_if_missing().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = agent_config(dir.path(), &azurite, &emu);
        let sock = dir.path().join("snooze.sock");
        let env = msi_env(&emu);
        let mut agent = spawn_agent(&config, dir.path(), &env);

        // The first observation is written at once, with the verdict in the metadata.
        let first = wait_for(&reader, dir.path(), 60, |_| true).await;
        assert_eq!(first.instance, INSTANCE);
        assert_eq!(first.interval_secs, 60);
        assert_eq!(first.snooze, None);

        // A snooze goes out at once: the same observation, now with the snooze.
        let r = snooze(&sock, &["2h", "--reason", "training run"]).await;
        r.success();
        assert!(
            r.stdout.contains("snoozed until") && r.stdout.contains("UTC"),
            "{r:#?}"
        );
        // "published in the heartbeat" unless the write took longer than the agent's 5 s wait
        // (a loaded machine); the blob below shows it went out before the next observation.
        assert!(
            r.stdout.contains("published in the heartbeat")
                || r.stdout.contains("saved by the agent"),
            "{r:#?}"
        );
        let snoozed = wait_for(&reader, dir.path(), 30, |v| v.snooze.is_some()).await;
        assert_eq!(snoozed.at, first.at, "written before the next observation");
        let s = snoozed.snooze.clone().unwrap();
        assert_eq!(s.reason.as_deref(), Some("training run"));
        assert_eq!(s.by.as_deref(), Some(current_user().as_str()));
        assert_eq!(s.until.duration_since(s.at).as_secs(), 7200);

        // Storage goes away; a new snooze is saved, not lost: not even by an agent restart.
        azurite.stop().await;
        let r = snooze(&sock, &["3h", "--reason", "during the outage"]).await;
        r.success();
        assert!(r.stdout.contains("saved by the agent"), "{r:#?}");
        stop_agent(&mut agent).await;
        let mut agent = spawn_agent(&config, dir.path(), &env);
        tokio::time::sleep(Duration::from_secs(3)).await;
        azurite.restart().await;
        let back = wait_for(&reader, dir.path(), 90, |v| {
            v.snooze.as_ref().and_then(|s| s.reason.as_deref()) == Some("during the outage")
        })
        .await;
        assert!(back.at > first.at, "a new agent's observation");
        let log = std::fs::read_to_string(dir.path().join("agent.log")).unwrap();
        assert!(log.contains("cannot write the heartbeat"), "{log}");
        assert!(
            !log.contains(MSI_SECRET),
            "the MSI secret must never be logged"
        );

        // Off: the next heartbeat carries no snooze.
        let r = snooze(&sock, &["off"]).await;
        r.success();
        assert!(r.stdout.contains("snooze off"), "{r:#?}");
        wait_for(&reader, dir.path(), 30, |v| v.snooze.is_none()).await;
        stop_agent(&mut agent).await;
    })
    .await;
}
