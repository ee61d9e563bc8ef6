//! Installing the agent (issue 15): `lightsout agent setup-script` run by bash under a fake
//! root (`LIGHTSOUT_PREFIX`: systemctl skipped) with the `CI_*` variables Azure ML gives setup
//! scripts, twice (the startup script runs at every start), and without them; shellcheck when
//! it is installed; `ci create --setup-script` attaching it inline, echoed by the emulator.

use std::path::Path;
use std::process::Stdio;

use base64::Engine as _;
use serde_json::Value;
use tokio::process::Command;

use crate::support::{ADMIN, BIN, EmulatorProcess, FAST, GENEROUS, RG, SUB, WS, fleet, within};

/// The script `lightsout agent setup-script` prints, installing from this test's binary.
async fn setup_script(dir: &Path) -> std::path::PathBuf {
    let out = Command::new(BIN)
        .args([
            "agent",
            "setup-script",
            "--from",
            BIN,
            "--account",
            "https://acct.blob.core.windows.net",
            "--container",
            "lightsout-heartbeats",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let path = dir.join("setup.sh");
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// Runs the script with bash under `prefix`, with only `env` (and PATH) set.
async fn run_script(script: &Path, prefix: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new("bash")
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("LIGHTSOUT_PREFIX", prefix)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const CI_ENV: [(&str, &str); 4] = [
    ("CI_RESOURCE_GROUP", "rg-ml"),
    ("CI_WORKSPACE", "ws-ml"),
    ("CI_NAME", "ci-alice"),
    ("CI_LOCAL_UBUNTU_USER", "azureuser"),
];

#[tokio::test]
async fn the_setup_script_installs_binary_unit_and_config_and_is_idempotent() {
    within(60, async {
        let dir = tempfile::tempdir().unwrap();
        let script = setup_script(dir.path()).await;
        let check = Command::new("bash")
            .arg("-n")
            .arg(&script)
            .output()
            .await
            .unwrap();
        assert!(check.status.success(), "bash -n: {check:?}");
        let prefix = dir.path().join("root");

        let (code, log) = run_script(&script, &prefix, &CI_ENV).await;
        assert_eq!(code, 0, "{log}");
        assert!(
            log.contains("LIGHTSOUT_PREFIX is set: systemctl skipped"),
            "{log}"
        );
        let bin = prefix.join("usr/local/bin/lightsout");
        let v = Command::new(&bin).arg("--version").output().await.unwrap();
        assert!(v.status.success() && String::from_utf8_lossy(&v.stdout).contains("lightsout"));
        let unit =
            std::fs::read_to_string(prefix.join("etc/systemd/system/lightsout-agent.service"))
                .unwrap();
        assert!(
            unit.contains(
                "ExecStart=/usr/local/bin/lightsout agent run --config /etc/lightsout/agent.toml\n"
            ),
            "{unit}"
        );
        assert!(
            unit.contains("EnvironmentFile=-/etc/environment.sso\n"),
            "{unit}"
        );
        let conf_path = prefix.join("etc/lightsout/agent.toml");
        let conf = std::fs::read_to_string(&conf_path).unwrap();
        let parsed = lightsout::engine::config::agent_file::parse(&conf, &conf_path)
            .unwrap_or_else(|e| panic!("{e}\n{conf}"));
        assert_eq!(
            (
                parsed.resource_group.as_str(),
                parsed.workspace.as_str(),
                parsed.instance.as_str(),
                parsed.user.as_str()
            ),
            ("rg-ml", "ws-ml", "ci-alice", "azureuser")
        );
        assert_eq!(
            parsed.account.as_str(),
            "https://acct.blob.core.windows.net/"
        );
        assert_eq!(parsed.container, "lightsout-heartbeats");

        // The startup script runs again at every start: nothing changes.
        let (code, log) = run_script(&script, &prefix, &CI_ENV).await;
        assert_eq!(code, 0, "{log}");
        for what in ["binary unchanged", "unit unchanged", "config unchanged"] {
            assert!(log.contains(what), "{what}: {log}");
        }
        assert_eq!(std::fs::read_to_string(&conf_path).unwrap(), conf);
    })
    .await;
}

#[tokio::test]
async fn the_setup_script_never_fails_provisioning() {
    within(60, async {
        let dir = tempfile::tempdir().unwrap();
        let script = setup_script(dir.path()).await;
        let prefix = dir.path().join("root");
        // Not an Azure ML setup script run: no CI_NAME.
        let (code, log) = run_script(&script, &prefix, &CI_ENV[..2]).await;
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("$CI_NAME is missing or unusable"), "{log}");
        assert!(log.contains("the instance runs without the agent"), "{log}");
        assert!(!prefix.join("etc/lightsout/agent.toml").exists());
        // A value that would break the TOML string.
        let mut env = CI_ENV.to_vec();
        env[2] = ("CI_NAME", "ci\"x");
        let (code, log) = run_script(&script, &prefix, &env).await;
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("$CI_NAME is missing or unusable"), "{log}");
        // A binary source that is not there.
        let text = std::fs::read_to_string(&script)
            .unwrap()
            .replace(&format!("from='{BIN}'"), "from='/nonexistent/lightsout'");
        std::fs::write(&script, text).unwrap();
        let (code, log) = run_script(&script, &prefix, &CI_ENV).await;
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("cannot copy /nonexistent/lightsout"), "{log}");
        assert!(!prefix.join("usr/local/bin/lightsout").exists());
    })
    .await;
}

/// `lightsout agent setup-script ARGS…`: exit code, stdout, stderr.
async fn setup_script_with(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["agent", "setup-script"])
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn setup_script_refuses_what_the_agent_would_refuse() {
    // Each would have made an agent that exits 78 on the instance, where nobody looks.
    for (args, flag, says) in [
        (
            &["--account", "http://acct.blob.core.windows.net"][..],
            "--account",
            "must be an https URL",
        ),
        (
            &["--account", "acct", "--container", "Bad_Name"][..],
            "--container",
            "lower-case letters",
        ),
        (
            &[
                "--account",
                "acct",
                "--from",
                "http://example.com/lightsout",
            ][..],
            "--from",
            "plain http is refused",
        ),
        (
            &["--account", "acct", "--from", "bin/lightsout"][..],
            "--from",
            "an https URL or an absolute path",
        ),
    ] {
        let (code, out, err) = setup_script_with(args).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(flag) && err.contains(says), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn setup_script_expands_a_bare_account_name_and_shows_its_defaults() {
    let (code, out, err) = setup_script_with(&["--account", "mlwstorage123"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("account = \"https://mlwstorage123.blob.core.windows.net/\"\n"),
        "{out}"
    );
    assert!(out.contains("from='./lightsout'\n"), "{out}");
    let (code, help, err) = setup_script_with(&["--help"]).await;
    assert_eq!(code, 0, "{err}");
    for default in ["[default: ./lightsout]", "[default: lightsout-heartbeats]"] {
        assert!(help.contains(default), "{default}: {help}");
    }
}

#[tokio::test]
async fn shellcheck_finds_nothing_in_the_setup_script() {
    let Ok(version) = Command::new("shellcheck").arg("--version").output().await else {
        eprintln!("shellcheck is not installed (apt-get install shellcheck): skipped");
        return;
    };
    assert!(version.status.success());
    let dir = tempfile::tempdir().unwrap();
    let script = setup_script(dir.path()).await;
    let out = Command::new("shellcheck")
        .arg(&script)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn ci_create_attaches_the_setup_script_inline() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[])).await;
        let cfg = emu.config(ADMIN.0);
        let script = setup_script(emu.dir.path()).await;
        let script_arg = script.to_str().unwrap();
        let r = emu
            .run(
                &cfg,
                ADMIN.1,
                &["ci", "create", "ci-agent", "--workspace", "lab", "--setup-script", script_arg, "--wait", "--json"],
            )
            .await;
        r.success();
        // The generated script is over the 4,096 inline characters Azure is reported to
        // refuse; the emulator does not check that (kinder than Azure), so the user is warned.
        assert!(r.stderr.contains("Azure is reported to refuse more than 4096"), "{r:#?}");

        // Read back through GET: the echo is the emulator's assumption (every recording shows
        // `setupScripts: null`); what this checks is the body lightsout sent.
        let token = emu.token_for(ADMIN, "https://management.azure.com/.default").await;
        let url = format!(
            "{}/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}/computes/ci-agent?api-version=2025-12-01",
            emu.ready.endpoint
        );
        let v: Value = emu.http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        let creation = &v["properties"]["properties"]["setupScripts"]["scripts"]["creationScript"];
        assert_eq!(creation["scriptSource"], "inline", "{v:#}");
        let data = base64::engine::general_purpose::STANDARD
            .decode(creation["scriptData"].as_str().unwrap())
            .unwrap();
        assert_eq!(data, std::fs::read(&script).unwrap());

        // Not a script: refused before anything is sent.
        let bad = emu.dir.path().join("notes.txt");
        std::fs::write(&bad, "hello").unwrap();
        let r = emu
            .run(&cfg, ADMIN.1, &["ci", "create", "ci-other", "--workspace", "lab", "--setup-script", bad.to_str().unwrap()])
            .await;
        r.code(1);
        assert!(r.stderr.contains("is not a script"), "{r:#?}");
    })
    .await;
}
