//! `lightsout agent run` and `lightsout snooze` (issue 15): the failures an operator meets
//! first, with the real binary: a bad config (exit 78, positioned), no managed identity, no
//! agent listening, a reason that is not ASCII.

use std::path::Path;

use super::support::{Run, run_lightsout, within};

async fn snooze(sock: &Path, args: &[&str]) -> Run {
    let mut a = vec!["snooze"];
    a.extend_from_slice(args);
    a.extend(["--socket", sock.to_str().unwrap()]);
    run_lightsout(&a, None, &[("TZ", "UTC")]).await
}

#[tokio::test]
async fn a_bad_config_exits_78_and_no_identity_or_no_agent_is_said_plainly() {
    within(60, async {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("agent.toml");
        std::fs::write(&config, "workspace = \"ws\"\ninterval = \"1s\"\n").unwrap();
        let r = run_lightsout(&["agent", "run", "--config", config.to_str().unwrap()], None, &[]).await;
        r.code(78);
        assert!(r.stderr.contains(&format!("{}:2:12: interval: must be between 5s and 5m", config.display())), "{r:#?}");
        assert!(r.stderr.contains("instance: missing"), "{r:#?}");

        std::fs::write(
            &config,
            format!(
                "resource_group = \"rg\"\nworkspace = \"ws\"\ninstance = \"ci\"\naccount = \"https://acct.blob.core.windows.net\"\ncontainer = \"heartbeats\"\nsnooze_socket = \"{}\"\nstate_dir = \"{}\"\n",
                dir.path().join("s.sock").display(),
                dir.path().join("state").display()
            ),
        )
        .unwrap();
        let r = run_lightsout(&["agent", "run", "--config", config.to_str().unwrap()], None, &[]).await;
        r.code(1);
        assert!(r.stderr.contains("MSI_ENDPOINT and MSI_SECRET are not set"), "{r:#?}");

        let r = snooze(&dir.path().join("nobody.sock"), &["2h"]).await;
        r.code(1);
        assert!(r.stderr.contains("no lightsout agent is listening at"), "{r:#?}");
        let r = snooze(&dir.path().join("nobody.sock"), &["2h", "--reason", "résumé"]).await;
        r.code(1);
        assert!(r.stderr.contains("plain ASCII"), "{r:#?}");
        // Not a duration, or out of bounds: a usage error (exit 2) before anything else.
        let r = snooze(&dir.path().join("nobody.sock"), &["banana"]).await;
        r.code(2);
        assert!(r.stderr.contains(r#""banana" is not a duration (try 2h, 90m or off)"#), "{r:#?}");
        let r = snooze(&dir.path().join("nobody.sock"), &["8d"]).await;
        r.code(2);
        assert!(r.stderr.contains("a snooze lasts from 1m to 7days"), "{r:#?}");
        assert!(!r.stderr.contains("max_snooze"), "no warning for a refused value: {r:#?}");
    })
    .await;
}
