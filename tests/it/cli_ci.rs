//! `lightsout ci …`: the real binary against the emulator binary over HTTPS, authenticated with
//! a client secret. Lifecycle, paging, throttling, retries, ARM errors and auth failures; the
//! emulator's call log (`/_emulator/calls`) shows what went over the wire.

#![expect(clippy::unwrap_used, reason = "test helpers")]

use serde_json::{Value, json};

use crate::support::{
    ADMIN, EmulatorProcess, FAST, GENEROUS, READER, RG, SUB, WS, fleet, run_lightsout, within,
};

/// Requests whose method is `method` and whose path ends with `suffix` (case-insensitive).
fn matching<'a>(calls: &'a [Value], method: &str, suffix: &str) -> Vec<&'a Value> {
    let suffix = suffix.to_ascii_lowercase();
    calls
        .iter()
        .filter(|c| c["method"] == method)
        .filter(|c| {
            c["path"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase()
                .ends_with(&suffix)
        })
        .collect()
}

fn statuses(calls: &[&Value]) -> Vec<u64> {
    calls
        .iter()
        .map(|c| c["status"].as_u64().unwrap())
        .collect()
}

/// Only calls to ARM (not the token endpoint or the control API).
fn arm(calls: &[Value]) -> Vec<Value> {
    calls
        .iter()
        .filter(|c| c["path"].as_str().unwrap().starts_with("/subscriptions/"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn lifecycle_create_reuse_list_show_stop_start_restart_delete() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-alice", "Running")])).await;
        let cfg = emu.config(ADMIN.0);
        let ci = |args: Vec<&'static str>| {
            let cfg = cfg.clone();
            let emu = &emu;
            async move {
                let mut a = vec!["ci"];
                a.extend(args);
                a.extend(["--workspace", "lab"]);
                emu.run(&cfg, ADMIN.1, &a).await
            }
        };

        // Create, following the operation; the location comes from the config's region.
        let r = ci(vec![
            "create",
            "ci-new",
            "--vm-size",
            "Standard_DS11_v2",
            "--idle-time-before-shutdown",
            "30m",
            "--wait",
            "--json",
        ])
        .await;
        let v = r.success().json();
        assert_eq!(v["instance"], "ci-new");
        assert_eq!(v["action"], "create");
        assert_eq!(v["status"], "Succeeded");
        assert_eq!(v["state"], "Running");
        assert_eq!(v["existing"], false);
        assert!(v["request_id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(v["elapsed_seconds"].as_f64().unwrap() >= 0.5);

        // Again: reused, not recreated.
        let r = ci(vec!["create", "ci-new", "--vm-size", "Standard_DS11_v2"]).await;
        r.success();
        assert!(
            r.stdout.contains("Found existing instance ci-new (Running"),
            "{r:#?}"
        );
        let r = ci(vec!["create", "ci-new", "--json"]).await;
        let v = r.success().json();
        assert_eq!(
            (v["existing"].clone(), v["state"].clone()),
            (json!(true), json!("Running"))
        );
        let calls = emu.calls().await;
        let puts = matching(&calls, "PUT", "/computes/ci-new");
        assert_eq!(puts.len(), 1, "one PUT only: {puts:#?}");

        // List: both instances, as JSON and as a table.
        let v = ci(vec!["list", "--json"]).await.success().json();
        let names: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["ci-alice", "ci-new"]);
        let r = ci(vec!["list"]).await;
        let header = r.success().stdout.lines().next().unwrap().to_owned();
        for col in [
            "NAME",
            "STATE",
            "VM SIZE",
            "LAST OPERATION",
            "IDLE SHUTDOWN",
            "USER",
        ] {
            assert!(header.contains(col), "{header}");
        }
        assert!(
            r.stdout.contains("ci-new") && r.stdout.contains("30m"),
            "{r:#?}"
        );

        // Show: what create asked for.
        let v = ci(vec!["show", "ci-new", "--json"]).await.success().json();
        assert_eq!(v["vm_size"], "Standard_DS11_v2");
        assert_eq!(v["idle_time_before_shutdown"], "PT30M");
        assert_eq!(v["location"], "eastus2");
        assert_eq!(v["state"], "Running");
        assert_eq!(v["last_operation"]["name"], "Create");
        assert!(v["schedules"].is_array());
        assert!(!v["applications"].as_array().unwrap().is_empty());
        let r = ci(vec!["show", "ci-new"]).await;
        assert!(
            r.success().stdout.contains("idle shutdown   30m (PT30M)"),
            "{r:#?}"
        );

        // Stop, with plain progress lines on stderr (not a terminal) and JSON on stdout.
        let r = ci(vec!["stop", "ci-new", "--wait", "--json"]).await;
        let v = r.success().json();
        assert_eq!(
            (v["status"].clone(), v["state"].clone()),
            (json!("Succeeded"), json!("Stopped"))
        );
        assert_eq!(v["action"], "stop");
        assert!(r.stderr.contains("ci-new: Stopping ("), "{r:#?}");
        assert!(r.stderr.contains("ci-new: Stopped after "), "{r:#?}");

        let v = ci(vec!["start", "ci-new", "--wait", "--json"])
            .await
            .success()
            .json();
        assert_eq!(
            (v["status"].clone(), v["state"].clone()),
            (json!("Succeeded"), json!("Running"))
        );

        // Text mode: the final line is the result on stdout.
        let r = ci(vec!["restart", "ci-new", "--wait"]).await;
        assert!(
            r.success().stdout.contains("ci-new: Running after "),
            "{r:#?}"
        );
        let v = ci(vec!["show", "ci-new", "--json"]).await.success().json();
        assert_eq!(v["last_operation"]["name"], "Restart");
        assert_eq!(v["last_operation"]["status"], "Succeeded");

        // Without --wait: accepted only.
        let v = ci(vec!["stop", "ci-alice", "--json"])
            .await
            .success()
            .json();
        assert_eq!(v["status"], "Accepted");
        assert!(v["request_id"].is_string());

        let v = ci(vec!["delete", "ci-new", "--wait", "--json"])
            .await
            .success()
            .json();
        assert_eq!(
            (v["status"].clone(), v["state"].clone()),
            (json!("Succeeded"), json!("Deleted"))
        );
        let calls = emu.calls().await;
        let deletes = matching(&calls, "DELETE", "/computes/ci-new");
        assert_eq!(deletes.len(), 1);
        assert!(
            deletes[0]["query"]
                .as_str()
                .unwrap()
                .contains("underlyingResourceAction=Delete")
        );

        // Deleting it again: nothing there, nothing to do.
        let r = ci(vec!["delete", "ci-new"]).await;
        assert!(
            r.success()
                .stdout
                .contains("ci-new: not found in workspace 'lab'"),
            "{r:#?}"
        );

        let r = ci(vec!["show", "ci-new"]).await;
        r.code(1);
        assert!(
            r.stderr
                .contains("compute instance 'ci-new' was not found in workspace 'lab'"),
            "{r:#?}"
        );
        assert!(r.stderr.contains("ResourceNotFound"), "{r:#?}");
        assert!(r.stderr.contains("(request id: "), "{r:#?}");
    })
    .await;
}

#[tokio::test]
async fn list_follows_every_page() {
    within(60, async {
        let names = ["ci-1", "ci-2", "ci-3", "ci-4", "ci-5"];
        let instances: Vec<(&str, &str)> = names.iter().map(|n| (*n, "Stopped")).collect();
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &instances)).await;
        let cfg = emu.config(ADMIN.0);
        emu.clear_calls().await;
        // The three ids instead of an alias, with [azure] from the config.
        let args = [
            "ci",
            "list",
            "--json",
            "--subscription",
            SUB,
            "--resource-group",
            RG,
            "--workspace-name",
            WS,
        ];
        let v = emu.run(&cfg, ADMIN.1, &args).await.success().json();
        let got: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(got, names);
        let calls = emu.calls().await;
        let lists = matching(&calls, "GET", "/computes");
        assert_eq!(lists.len(), names.len().div_ceil(2), "{lists:#?}");
        assert_eq!(statuses(&lists), [200, 200, 200]);
        assert!(lists[1]["query"].as_str().unwrap().contains("$skip=2"));
    })
    .await;
}

#[tokio::test]
async fn throttling_is_waited_out() {
    within(90, async {
        let names = ["ci-1", "ci-2", "ci-3", "ci-4", "ci-5"];
        let instances: Vec<(&str, &str)> = names.iter().map(|n| (*n, "Running")).collect();
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &instances)).await;
        let cfg = emu.config(ADMIN.0);
        // Half of all ARM requests get 429 with Retry-After: 1. The seed makes the storm the
        // same on every run.
        emu.faults(json!({"throttle_rate": 0.5, "seed": 7})).await;
        emu.clear_calls().await;
        let v = emu
            .run(&cfg, ADMIN.1, &["ci", "list", "--json", "-w", "lab"])
            .await
            .success()
            .json();
        assert_eq!(v.as_array().unwrap().len(), names.len());
        let calls = arm(&emu.calls().await);
        let st: Vec<u64> = calls
            .iter()
            .map(|c| c["status"].as_u64().unwrap())
            .collect();
        assert!(st.contains(&429), "no 429 in {st:?}");
        // Every throttled request was eventually answered: same path and query, later, 200.
        for (i, c) in calls.iter().enumerate() {
            if c["status"] == 429 {
                assert!(
                    calls[i + 1..].iter().any(|d| d["path"] == c["path"]
                        && d["query"] == c["query"]
                        && d["status"] == 200),
                    "429 at {i} never followed by a 200: {st:?}"
                );
            }
        }
        assert_eq!(st.iter().filter(|s| **s == 200).count(), 3, "{st:?}");
    })
    .await;
}

#[tokio::test]
async fn server_errors_are_retried() {
    within(90, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-alice", "Running")])).await;
        let cfg = emu.config(ADMIN.0);
        emu.faults(json!({"error_rate": 0.4, "statuses": [503], "seed": 3}))
            .await;
        emu.clear_calls().await;
        let r = emu
            .run(
                &cfg,
                ADMIN.1,
                &["ci", "stop", "ci-alice", "-w", "lab", "--wait", "--json"],
            )
            .await;
        let v = r.success().json();
        assert_eq!(
            (v["status"].clone(), v["state"].clone()),
            (json!("Succeeded"), json!("Stopped"))
        );
        let calls = arm(&emu.calls().await);
        let st: Vec<u64> = calls
            .iter()
            .map(|c| c["status"].as_u64().unwrap())
            .collect();
        let first_503 = st
            .iter()
            .position(|s| *s == 503)
            .expect("a 503 was injected");
        assert!(
            st[first_503..].iter().any(|s| (200..300).contains(s)),
            "no success after the 503: {st:?}"
        );
        let posts = matching(&calls, "POST", "/computes/ci-alice/stop");
        assert_eq!(*statuses(&posts).last().unwrap(), 202, "{st:?}");
    })
    .await;
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    within(60, async {
        // A slow stop, so the instance is still mid-operation for the conflict below.
        let timing = "stop = \"5s\"";
        let emu = EmulatorProcess::start(&fleet(
            GENEROUS,
            timing,
            &[("ci-alice", "Running"), ("ci-carol", "Running")],
        ))
        .await;
        let cfg = emu.config(ADMIN.0);
        emu.clear_calls().await;

        // Start on a running instance: accepted, then refused by its operation (as real
        // Azure reported it). With --wait: shown as refused with its code, sent once.
        let r = emu
            .run(
                &cfg,
                ADMIN.1,
                &[
                    "ci",
                    "start",
                    "ci-alice",
                    "-w",
                    "lab",
                    "--wait",
                    "--poll-interval",
                    "1s",
                ],
            )
            .await;
        r.code(1);
        assert!(
            r.stderr
                .contains("StartComputeInstanceOnlyAllowedInStoppedState"),
            "{r:#?}"
        );
        assert!(r.stderr.contains("refused"), "{r:#?}");
        let calls = emu.calls().await;
        let posts = matching(&calls, "POST", "/computes/ci-alice/start");
        assert_eq!(statuses(&posts), [202]);

        // --timeout ends the wait, not the operation.
        let r = emu
            .run(
                &cfg,
                ADMIN.1,
                &[
                    "ci",
                    "stop",
                    "ci-carol",
                    "-w",
                    "lab",
                    "--wait",
                    "--timeout",
                    "300ms",
                    "--json",
                ],
            )
            .await;
        r.code(1);
        assert!(
            r.stderr
                .contains("gave up waiting for the stop of ci-carol after 300ms"),
            "{r:#?}"
        );
        assert!(r.stderr.contains("carries on in Azure"), "{r:#?}");
        assert_eq!(r.json()["status"], "Accepted");

        // 409: an operation on an instance that is mid-operation.
        let r = emu
            .run(&cfg, ADMIN.1, &["ci", "restart", "ci-carol", "-w", "lab"])
            .await;
        r.code(1);
        assert!(r.stderr.contains("error: Conflict: "), "{r:#?}");
        let calls = emu.calls().await;
        let posts = matching(&calls, "POST", "/computes/ci-carol/restart");
        assert_eq!(statuses(&posts), [409]);

        // 404 on an action.
        let r = emu
            .run(&cfg, ADMIN.1, &["ci", "stop", "ci-nobody", "-w", "lab"])
            .await;
        r.code(1);
        assert!(
            r.stderr
                .contains("'ci-nobody' was not found in workspace 'lab'"),
            "{r:#?}"
        );
    })
    .await;
}

#[tokio::test]
async fn failed_operation_exits_1_with_its_code() {
    within(60, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-alice", "Running")])).await;
        let cfg = emu.config(ADMIN.0);
        emu.faults(json!({"lro_fail_rate": 1.0})).await;
        let r = emu
            .run(
                &cfg,
                ADMIN.1,
                &["ci", "stop", "ci-alice", "-w", "lab", "--wait", "--json"],
            )
            .await;
        r.code(1);
        let v = r.json();
        assert_eq!(v["status"], "Failed");
        assert_eq!(v["error"]["code"], "StopFailed");
        assert!(
            r.stderr.contains("error: stop of ci-alice failed after "),
            "{r:#?}"
        );
        assert!(r.stderr.contains("StopFailed: "), "{r:#?}");
    })
    .await;
}

#[tokio::test]
async fn read_only_principal_can_list_but_not_stop() {
    within(60, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-alice", "Running")])).await;
        let cfg = emu.config(READER.0);
        let r = emu
            .run(&cfg, READER.1, &["ci", "stop", "ci-alice", "-w", "lab"])
            .await;
        r.code(1);
        assert!(r.stderr.contains("error: AuthorizationFailed: "), "{r:#?}");
        assert!(
            r.stderr.contains(
                "(missing permission: Microsoft.MachineLearningServices/workspaces/computes/stop/action)"
            ),
            "{r:#?}"
        );
        let calls = emu.calls().await;
        assert_eq!(
            statuses(&matching(&calls, "POST", "/computes/ci-alice/stop")),
            [403]
        );

        let v = emu
            .run(&cfg, READER.1, &["ci", "list", "--json", "-w", "lab"])
            .await
            .success()
            .json();
        assert_eq!(v[0]["name"], "ci-alice");
        assert_eq!(v[0]["state"], "Running");
    })
    .await;
}

#[tokio::test]
async fn wrong_secret_is_a_clear_auth_error() {
    within(60, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-alice", "Running")])).await;
        let cfg = emu.config(ADMIN.0);
        let wrong = "not-the-secret-9f8e7d";
        let r = emu.run(&cfg, wrong, &["ci", "list", "-w", "lab"]).await;
        r.code(1);
        assert!(r.stderr.contains("could not get an access token"), "{r:#?}");
        assert!(r.stderr.contains("Invalid client secret"), "{r:#?}");
        assert!(
            !r.stderr.contains(wrong) && !r.stdout.contains(wrong),
            "{r:#?}"
        );
        // Nothing reached ARM.
        assert!(arm(&emu.calls().await).is_empty());
    })
    .await;
}

#[tokio::test]
async fn config_problems_exit_78_and_usage_errors_exit_2() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let r = run_lightsout(&["ci", "list", "-w", "lab"], Some(&missing), &[]).await;
        r.code(78);
        assert!(r.stderr.contains("cannot read config file"), "{r:#?}");

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[azure]\nnot_a_key = 1\n").unwrap();
        run_lightsout(&["ci", "list", "-w", "lab"], Some(&bad), &[])
            .await
            .code(78);

        let empty = dir.path().join("empty.toml");
        std::fs::write(&empty, "").unwrap();
        let r = run_lightsout(&["ci", "list", "-w", "nope"], Some(&empty), &[]).await;
        r.code(1);
        assert!(r.stderr.contains("no workspace 'nope'"), "{r:#?}");

        run_lightsout(&["ci", "list"], None, &[]).await.code(2);
        let r = run_lightsout(
            &[
                "ci",
                "create",
                "ci-x",
                "-w",
                "lab",
                "--idle-time-before-shutdown",
                "5m",
            ],
            Some(&empty),
            &[],
        )
        .await;
        r.code(2);
        assert!(r.stderr.contains("between 15m and 3days"), "{r:#?}");
    })
    .await;
}
