//! Real Azure's recorded answers (`tests/fixtures/azure/recorded/`) served over HTTP to the real
//! [`ArmClient`]: status, headers and bodies as recorded, with the `Azure-AsyncOperation` host
//! rewritten to the local server (and nothing else: the signed query is kept byte for byte).
//! The pure readers are checked entry by entry in `src/azure/replay_tests.rs`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightsout::azure::wire::UnderlyingResourceAction;
use lightsout::azure::{Accepted, ArmClientConfig, PollOutcome, PollVia};
use lightsout::daemon::store::{AuditFilter, Outcome, Store};
use lightsout::daemon::{Daemon, DaemonOptions};
use lightsout::engine::model::{InstanceState, WorkspaceRef};
use serde_json::Value;
use tokio::time::Instant;

use crate::client::{Fake, FakeCredential, Reply, client_with, test_config};

/// The recorder's ARM host in the AO header (the request host was sanitised, this one not).
const ARM: &str = "https://management.azure.com";
/// The instance of the December 2024 recording.
const NAME: &str = "test72249821874";

fn recorded(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/azure/recorded")
        .join(name)
}

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(recorded(name)).unwrap()).unwrap()
}

/// The workspace of the recordings (ids as the recorder sanitised them).
fn ws() -> WorkspaceRef {
    WorkspaceRef {
        subscription_id: "00000000-0000-0000-0000-000000000".into(),
        resource_group: "00000".into(),
        workspace: "00000".into(),
    }
}

/// A recorded entry as a reply: its status, headers (AO host moved to `base`; the recorded
/// Content-Length describes the recorded body, not ours) and body.
fn replay(entry: &Value, base: &str) -> Reply {
    let status = u16::try_from(entry["StatusCode"].as_u64().unwrap()).unwrap();
    let mut reply = match &entry["ResponseBody"] {
        Value::Null => Reply::empty(status),
        body => Reply::json(status, body.to_string()),
    };
    for (k, v) in entry["ResponseHeaders"].as_object().unwrap() {
        let v = v.as_str().unwrap();
        match k.to_ascii_lowercase().as_str() {
            "content-length" | "content-type" => {}
            "azure-asyncoperation" => reply = reply.header(k, v.replacen(ARM, base, 1)),
            _ => reply = reply.header(k, v),
        }
    }
    reply
}

/// Serves the December 2024 stop recording: GET, POST stop (202, the signed AO URL only),
/// polls answering `InProgress` until `op_takes` after the POST, then `Succeeded`; DELETE
/// (202 with the delete counters); and the March 2022 list page.
async fn replay_server(op_takes: Duration) -> (Fake, Arc<Mutex<Option<Instant>>>) {
    let rec = load("py-ml-stop-2024-12-signed-ao.excerpt.json");
    let entries: Vec<Value> = rec["entries"].as_array().unwrap().clone();
    let list = std::fs::read_to_string(recorded("real-list-2022-03.body.json")).unwrap();
    let accepted_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let at = accepted_at.clone();
    let server = Fake::start(move |seen, _, base| {
        let by_what = |w: &str| {
            entries
                .iter()
                .find(|e| e["what"].as_str().unwrap().starts_with(w))
                .unwrap()
        };
        match seen.method.as_str() {
            "POST" if seen.path.ends_with("/stop") => {
                *at.lock().unwrap() = Some(Instant::now());
                replay(by_what("POST stop"), base)
            }
            "GET" if seen.path.contains("/computeOperationsStatus/") => {
                let started = at.lock().unwrap().expect("polled before the POST");
                if started.elapsed() >= op_takes {
                    replay(by_what("poll stop (+31 s) -> Succeeded"), base)
                } else {
                    replay(by_what("poll stop (+0 s)"), base)
                }
            }
            "GET" if seen.path.ends_with("/computes") => Reply::json(200, list.clone()),
            "GET" => replay(by_what("GET compute"), base),
            "DELETE" => replay(by_what("DELETE"), base),
            _ => Reply::empty(404),
        }
    })
    .await;
    (server, accepted_at)
}

#[tokio::test]
async fn signed_async_operation_followed_end_to_end_at_the_configured_cadence() {
    // A 20 s operation polled every 5 s without Retry-After, scaled down 10 times (real
    // sockets and paused time do not mix: STYLE.md H10).
    let (op_takes, every) = (Duration::from_secs(2), Duration::from_millis(500));
    let (server, _) = replay_server(op_takes).await;
    let client = client_with(
        &server.base,
        Arc::new(FakeCredential::default()),
        ArmClientConfig {
            operation_timeout: Duration::from_secs(20),
            ..test_config()
        },
    );
    let signed = std::fs::read_to_string(recorded("real-ao-url-signed-2024-12.txt")).unwrap();
    let want = signed
        .trim()
        .replacen(ARM, server.base.as_str().trim_end_matches('/'), 1);

    let op = client.stop(&ws(), NAME).await.unwrap();
    match &op {
        Accepted::Pending {
            poll_url,
            via,
            retry_after,
            ..
        } => {
            assert_eq!(poll_url.as_str(), want, "kept verbatim");
            assert_eq!(*via, PollVia::AzureAsyncOperation);
            assert_eq!(*retry_after, None);
        }
        other => panic!("{other:?}"),
    }
    let mut outcomes = Vec::new();
    let started = Instant::now();
    client
        .wait_operation_every(&op, every, |o| outcomes.push(o.clone()))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(outcomes.last(), Some(&PollOutcome::Succeeded));
    assert!(
        (3..=5).contains(&outcomes.len()),
        "{} polls for a 20 s operation at 5 s: {outcomes:?}",
        outcomes.len()
    );
    assert!(took >= op_takes, "{took:?}");

    // Every poll went to the signed URL, path and query byte for byte, with the token (the
    // local server stands for ARM here).
    let polls: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("/computeOperationsStatus/"))
        .collect();
    assert_eq!(polls.len(), outcomes.len());
    let want_url = url::Url::parse(&want).unwrap();
    for p in &polls {
        assert_eq!(p.path, want_url.path());
        assert_eq!(p.query.as_deref(), want_url.query());
        assert!(p.authorization.as_deref().unwrap().starts_with("Bearer "));
    }
    // The accepting POST's counters: the lower of the principal's and the global one.
    let limits = client.rate_limits(&ws().subscription_id).unwrap();
    assert_eq!(limits.writes_remaining, Some(799));
    assert_eq!(limits.global_writes_remaining, Some(11999));
}

#[tokio::test]
async fn recorded_get_list_and_delete_through_the_client() {
    let (server, _) = replay_server(Duration::ZERO).await;
    let client = client_with(
        &server.base,
        Arc::new(FakeCredential::default()),
        test_config(),
    );
    let r = client.get_compute(&ws(), NAME).await.unwrap();
    let o = lightsout::azure::convert::instance_observation("lab", &r).unwrap();
    assert_eq!(o.state, InstanceState::Running);
    assert_eq!(
        lightsout::azure::convert::jupyter_base(&r)
            .unwrap()
            .as_str(),
        "https://test72249821874.westus.instances.azureml.ms/"
    );
    let limits = client.rate_limits(&ws().subscription_id).unwrap();
    assert_eq!(limits.reads_remaining, Some(1099));
    assert_eq!(limits.global_reads_remaining, Some(16499));

    // One page, no nextLink: one request, three computes.
    let before = server.count();
    let list = client.list_computes(&ws()).await.unwrap();
    assert_eq!(server.count(), before + 1);
    assert_eq!(list.len(), 3);

    // The DELETE's 202 (the excerpt kept no AO header): completed, and counted as a delete.
    let op = client
        .delete_compute(&ws(), NAME, UnderlyingResourceAction::Delete)
        .await
        .unwrap();
    assert!(op.is_completed());
    let limits = client.rate_limits(&ws().subscription_id).unwrap();
    assert_eq!(limits.deletes_remaining, Some(799));
    assert_eq!(limits.global_deletes_remaining, Some(11999));
    assert_eq!(limits.writes_remaining, None, "no write was made");
}

#[tokio::test]
async fn unrewritten_signed_url_is_accepted_but_untracked() {
    // The recorded header as is: management.azure.com is not the configured (local) endpoint,
    // so the token must not follow it; the stop was accepted all the same.
    let rec = load("py-ml-stop-2024-12-signed-ao.excerpt.json");
    let post = rec["entries"][1].clone();
    let server = Fake::start(move |_, _, _| replay(&post, ARM)).await;
    let client = client_with(
        &server.base,
        Arc::new(FakeCredential::default()),
        test_config(),
    );
    let err = client.stop(&ws(), NAME).await.unwrap_err();
    assert_eq!(err.kind(), "untracked");
    assert!(!err.is_retriable());
    assert!(err.to_string().len() < 400, "{err}");
    assert_eq!(server.count(), 1, "never polled, never re-sent");
    assert!(matches!(
        lightsout::daemon::actuate::classify(err),
        lightsout::daemon::actuate::SendOutcome::Unknown(_)
    ));
}

#[tokio::test]
async fn wrong_state_failure_after_a_202_is_a_refusal() {
    let server = Fake::start(|seen, _, base| {
        if seen.method == "POST" {
            Reply::empty(202).header("azure-asyncoperation", format!("{base}/operations/op-1"))
        } else {
            // The shape vscode-tools-for-ai#2096 reported (see the recordings' README).
            Reply::json(
                200,
                r#"{"status":"Failed","error":{"code":"StartComputeInstanceOnlyAllowedInStoppedState","message":"Start Azure ML Compute Instance is only allowed when the instance ci-1 is in 'stopped' state"}}"#,
            )
        }
    })
    .await;
    let client = client_with(
        &server.base,
        Arc::new(FakeCredential::default()),
        test_config(),
    );
    let op = client.start(&ws(), "ci-1").await.unwrap();
    let err = client.wait_operation(&op, |_| {}).await.unwrap_err();
    assert_eq!(err.kind(), "operation_failed");
    assert!(err.is_wrong_state());
    assert_eq!(
        lightsout::daemon::actuate::classify_operation_end(err.arm_error()),
        lightsout::daemon::actuate::OperationEnd::Refused
    );
}

#[tokio::test]
async fn unreadable_status_bodies_are_followed_to_the_deadline() {
    let server = Fake::start(|seen, _, base| {
        if seen.method == "POST" {
            Reply::empty(202).header("azure-asyncoperation", format!("{base}/operations/op-2"))
        } else {
            Reply::json(200, "<html>upstream gateway hiccup</html>")
        }
    })
    .await;
    let client = client_with(
        &server.base,
        Arc::new(FakeCredential::default()),
        ArmClientConfig {
            operation_timeout: Duration::from_millis(200),
            ..test_config()
        },
    );
    let op = client.stop(&ws(), "ci-1").await.unwrap();
    let mut polls = 0;
    let err = client
        .wait_operation_every(&op, Duration::from_millis(20), |_| polls += 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "timeout");
    assert!(polls >= 3, "kept following: {polls}");
    let msg = err.to_string();
    assert!(msg.contains("upstream gateway hiccup"), "{msg}");
}

/// A daemon against `server` whose one policy wants every instance down, its state in `dir`.
fn closed_daemon(server: &Fake, dir: &std::path::Path, daemon_extra: &str) -> Daemon {
    let config = format!(
        "[daemon]\nstate_dir = \"{}\"\n{daemon_extra}\n[[workspace]]\nname = \"lab\"\nsubscription_id = \"00000000-0000-0000-0000-000000000001\"\nresource_group = \"rg\"\nworkspace = \"ws1\"\n\n[[policy]]\nname = \"closed\"\nenforcement = \"always\"\nexceptions = [ {{ from = \"2000-01-01T00:00\", to = \"2100-01-01T00:00\", state = \"down\" }} ]\n",
        dir.join("state").display(),
    );
    let (cfg, _) = lightsout::engine::config::validate::from_str(&config).unwrap();
    let client = client_with(
        &server.base,
        Arc::new(FakeCredential::default()),
        test_config(),
    );
    let store = Store::open(&dir.join("state")).unwrap();
    let options = DaemonOptions {
        dry_run: false,
        follow_operations: true,
    };
    Daemon::new(
        cfg,
        client,
        store,
        options,
        Arc::new(lightsout::clock::WallClock),
    )
    .unwrap()
}

#[tokio::test]
async fn daemon_records_an_unfollowable_accept_as_unknown_and_waits_for_the_state() {
    // The recorded running instance, listed; the recorded 202 with its AO URL left on
    // management.azure.com, which is not the (local) endpoint: accepted, not followable.
    let rec = load("py-ml-stop-2024-12-signed-ao.excerpt.json");
    let post = rec["entries"][1].clone();
    let mut instance = load("real-get-running-2024-12.body.json");
    // Its Jupyter (on *.instances.azureml.ms) cannot be reached from here; activity is not what
    // this test is about.
    instance["properties"]["properties"]["applications"] = Value::Null;
    let state = Arc::new(Mutex::new("Running".to_owned()));
    let s = state.clone();
    let server = Fake::start(move |seen, _, _| match seen.method.as_str() {
        "POST" if seen.path.ends_with("/stop") => {
            *s.lock().unwrap() = "Stopping".to_owned();
            replay(&post, ARM)
        }
        "GET" if seen.path.ends_with("/computes") => {
            let mut now = instance.clone();
            now["properties"]["properties"]["state"] = Value::from(s.lock().unwrap().clone());
            Reply::json(200, serde_json::json!({ "value": [now] }).to_string())
        }
        _ => Reply::empty(404),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = closed_daemon(&server, dir.path(), "");
    let report = daemon.pass().await;
    assert_eq!(report.actions.len(), 1, "{report:#?}");
    assert_eq!(report.actions[0].outcome, "unknown");
    assert_eq!(daemon.following(), 0, "nothing to follow");
    let audit = Store::open_read_only(&dir.path().join("state"))
        .unwrap()
        .audit(&AuditFilter::default())
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].outcome, Outcome::Unknown);
    assert!(
        audit[0]
            .error
            .as_deref()
            .unwrap()
            .contains("not on the configured ARM endpoint's host"),
        "{audit:?}"
    );
    // While it stops, and once stopped: nothing is sent again.
    assert!(daemon.pass().await.actions.is_empty());
    *state.lock().unwrap() = "Stopped".to_owned();
    assert!(daemon.pass().await.actions.is_empty());
    let posts = server.seen().iter().filter(|s| s.method == "POST").count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn daemon_records_a_wrong_state_operation_end_as_refused() {
    let mut instance = load("real-get-running-2024-12.body.json");
    instance["properties"]["properties"]["applications"] = Value::Null;
    let server = Fake::start(move |seen, _, base| match seen.method.as_str() {
        // Real ARM's shape: 202 with only Azure-AsyncOperation, no Retry-After.
        "POST" => {
            Reply::empty(202).header("azure-asyncoperation", format!("{base}/operations/op-9"))
        }
        "GET" if seen.path.ends_with("/computes") => {
            Reply::json(200, serde_json::json!({ "value": [instance.clone()] }).to_string())
        }
        "GET" if seen.path.starts_with("/operations/") => Reply::json(
            200,
            r#"{"status":"Failed","error":{"code":"StopComputeInstanceOnlyAllowedInRunningState","message":"Stop Azure ML Compute Instance is only allowed when the instance is in 'running' state"}}"#,
        ),
        _ => Reply::empty(404),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = closed_daemon(&server, dir.path(), "operation_poll_interval = \"1s\"\n");
    let report = daemon.pass().await;
    assert_eq!(report.actions.len(), 1, "{report:#?}");
    assert_eq!(report.actions[0].outcome, "accepted");
    let started = Instant::now();
    while daemon.following() > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        daemon.pass().await;
        assert!(started.elapsed() < Duration::from_secs(10), "never ended");
    }
    // Polled at the configured second, not the client's 5 ms test default.
    let polls = server
        .seen()
        .iter()
        .filter(|s| s.path.starts_with("/operations/"))
        .count();
    assert_eq!(polls, 1);
    let audit = Store::open_read_only(&dir.path().join("state"))
        .unwrap()
        .audit(&AuditFilter::default())
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].outcome, Outcome::Refused, "{audit:?}");
    // Refusal backoff: the next pass does not send it again at once.
    let report = daemon.pass().await;
    assert!(report.actions.is_empty(), "{report:#?}");
    assert_eq!(report.rows[0].skip, Some("backoff"), "{report:#?}");
}
