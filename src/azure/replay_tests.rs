//! Every response real Azure gave in `tests/fixtures/azure/recorded/` (see its README), fed to
//! the client's pure readers: bodies into wire types and the engine's observations, 201/202
//! headers into [`Accepted`], poll bodies into [`PollOutcome`], rate-limit headers into the
//! budget snapshot. The recordings are the reference, above the REST spec and our emulator.
//! The same exchanges over HTTP, through the real client, are in `tests/it/replay.rs`.

use std::path::{Path, PathBuf};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use url::Url;

use super::budget::Kind;
use super::client::RateLimitSnapshot;
use super::convert::{instance_observation, jupyter_base};
use super::lro::{Accepted, PollOutcome, PollVia, accepted_from_response};
use super::retry::{parse_retry_after, response_now};
use super::wire::{AsyncOperationStatus, ComputeList, ComputeResource};
use crate::engine::model::{InstanceState, OperationKind};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/azure/recorded")
}

fn load(name: &str) -> Value {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn endpoint() -> Url {
    Url::parse("https://management.azure.com").unwrap()
}

fn headers(obj: &Value) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in obj.as_object().unwrap() {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v.as_str().unwrap()).unwrap(),
        );
    }
    h
}

/// What one recorded response turned into.
#[derive(Debug)]
enum Read {
    Compute(Box<ComputeResource>),
    Poll(PollOutcome),
    Accepted(Accepted),
}

/// Reads one recorded exchange the way the client reads a live one.
fn read_entry(e: &Value) -> Read {
    let method = e["RequestMethod"].as_str().unwrap();
    let status = u16::try_from(e["StatusCode"].as_u64().unwrap()).unwrap();
    let h = headers(&e["ResponseHeaders"]);
    let uri = e["RequestUri"].as_str().unwrap_or_default();
    match method {
        "GET" if uri.contains("/computeOperationsStatus/") => {
            let body = serde_json::to_vec(&e["ResponseBody"]).unwrap();
            let retry = parse_retry_after(&h, response_now(&h, jiff::Timestamp::UNIX_EPOCH));
            Read::Poll(
                super::lro::outcome_from_async_operation("poll_operation", status, &body, retry)
                    .unwrap(),
            )
        }
        "GET" => Read::Compute(Box::new(
            serde_json::from_value(e["ResponseBody"].clone()).unwrap(),
        )),
        "POST" | "PUT" | "DELETE" => {
            let retry = parse_retry_after(&h, response_now(&h, jiff::Timestamp::UNIX_EPOCH));
            Read::Accepted(
                accepted_from_response("replay", status, &h, retry, None, &endpoint()).unwrap(),
            )
        }
        other => panic!("unexpected method {other}"),
    }
}

fn snapshot(h: &HeaderMap) -> RateLimitSnapshot {
    let mut s = RateLimitSnapshot::default();
    s.update(h);
    s
}

#[test]
fn stop_2024_12_with_a_signed_async_operation_url() {
    let rec = load("py-ml-stop-2024-12-signed-ao.excerpt.json");
    let entries = rec["entries"].as_array().unwrap();
    let signed = std::fs::read_to_string(dir().join("real-ao-url-signed-2024-12.txt")).unwrap();
    let signed = signed.trim();
    assert_eq!(signed.len(), 3231);
    let mut seen = Vec::new();
    for e in entries {
        let what = e["what"].as_str().unwrap();
        let read = read_entry(e);
        let h = headers(&e["ResponseHeaders"]);
        match (e["RequestMethod"].as_str().unwrap(), &read) {
            ("GET", Read::Compute(r)) => {
                let o = instance_observation("lab", r).unwrap();
                assert_eq!(o.state, InstanceState::Running, "{what}");
                assert_eq!(o.vm_size, "Standard_DS2_v2", "{what}");
                let op = o.last_operation.unwrap();
                assert_eq!((op.kind, op.succeeded), (OperationKind::Create, true));
                assert_eq!(
                    jupyter_base(r).unwrap().as_str(),
                    "https://test72249821874.westus.instances.azureml.ms/"
                );
                // Both counters of a read; the headroom is the lower one.
                let s = snapshot(&h);
                assert_eq!(s.reads_remaining, Some(1099));
                assert_eq!(s.global_reads_remaining, Some(16499));
                assert_eq!(s.remaining(Kind::Read), Some(1099));
            }
            ("POST", Read::Accepted(a)) => match a {
                Accepted::Pending {
                    poll_url,
                    via,
                    retry_after,
                    ..
                } => {
                    // Kept byte for byte: its signature covers the query.
                    assert_eq!(poll_url.as_str(), signed);
                    assert_eq!(*via, PollVia::AzureAsyncOperation);
                    assert_eq!(*retry_after, None, "no Retry-After: {what}");
                    assert!(h.get("location").is_none());
                    let s = snapshot(&h);
                    assert_eq!(s.writes_remaining, Some(799));
                    assert_eq!(s.global_writes_remaining, Some(11999));
                    assert_eq!(s.remaining(Kind::Write), Some(799));
                }
                other => panic!("{what}: {other:?}"),
            },
            ("GET", Read::Poll(p)) => {
                // The poll went to the header's URL, verbatim (apart from the recorder's host).
                let uri = e["RequestUri"].as_str().unwrap();
                assert_eq!(
                    uri.replacen(
                        "https://Sanitized.azure.com",
                        "https://management.azure.com",
                        1
                    ),
                    signed
                );
                if what.contains("Succeeded") {
                    assert_eq!(*p, PollOutcome::Succeeded, "{what}");
                } else {
                    assert!(
                        matches!(
                            p,
                            PollOutcome::InProgress {
                                status: Some(AsyncOperationStatus::InProgress),
                                retry_after: None,
                                unreadable: None,
                            }
                        ),
                        "{what}: {p:?}"
                    );
                }
            }
            ("DELETE", Read::Accepted(a)) => {
                // The excerpt kept this DELETE's headers without its (same-shaped) AO URL: a
                // 202 with nothing to poll is "completed", left to the next observation.
                assert_eq!(
                    *a,
                    Accepted::Completed {
                        status: 202,
                        request_id: None
                    }
                );
                // Deletes count against the delete counters, not the write ones.
                let s = snapshot(&h);
                assert_eq!(s.deletes_remaining, Some(799));
                assert_eq!(s.global_deletes_remaining, Some(11999));
                assert_eq!(s.writes_remaining, None);
                assert_eq!(s.remaining(Kind::Delete), Some(799));
                assert_eq!(s.remaining(Kind::Write), None);
            }
            (m, r) => panic!("{what}: unexpected {m} {r:?}"),
        }
        seen.push(e["RequestMethod"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        seen,
        ["GET", "POST", "GET", "GET", "DELETE"],
        "every entry read"
    );
}

#[test]
fn stop_start_2022_10_every_entry() {
    let rec = load("py-ml-stop-start-2022-10.excerpt.json");
    let entries = rec["entries"].as_array().unwrap();
    let mut states = Vec::new();
    let mut polls = Vec::new();
    let mut accepted = 0;
    let mut snap = RateLimitSnapshot::default();
    for e in entries {
        let what = e["what"].as_str().unwrap();
        snap.update(&headers(&e["ResponseHeaders"]));
        match read_entry(e) {
            Read::Compute(r) => {
                let o = instance_observation("lab", &r).unwrap();
                assert!(jupyter_base(&r).is_some(), "{what}");
                // Millisecond-precision operation times parse.
                assert!(o.last_operation.is_some(), "{what}");
                states.push(o.state);
            }
            Read::Poll(p) => polls.push(p.is_terminal()),
            Read::Accepted(Accepted::Pending {
                poll_url,
                via,
                retry_after,
                ..
            }) => {
                assert_eq!(via, PollVia::AzureAsyncOperation, "{what}");
                assert_eq!(retry_after, None, "{what}");
                assert!(poll_url.as_str().contains("/computeOperationsStatus/"));
                accepted += 1;
            }
            Read::Accepted(other) => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(
        states,
        [
            InstanceState::Running,
            InstanceState::Stopped,
            InstanceState::Running
        ]
    );
    // stop: InProgress, InProgress, Succeeded; start: Succeeded; delete: InProgress.
    assert_eq!(polls, [false, false, true, true, false]);
    assert_eq!(accepted, 3, "stop, start, delete");
    assert_eq!(snap.deletes_remaining, Some(14998));
    assert_eq!(
        snap.writes_remaining,
        Some(1198),
        "the DELETE did not touch writes"
    );
}

#[test]
fn list_2022_03_one_page_without_next_link() {
    let list: ComputeList = serde_json::from_value(load("real-list-2022-03.body.json")).unwrap();
    // No `nextLink` key at all: the list ends with this page.
    assert_eq!(list.next_link, None);
    assert_eq!(list.value.len(), 3);
    let seen: Vec<_> = list
        .value
        .iter()
        .map(|r| instance_observation("lab", r).map(|o| (o.name, o.state)))
        .collect();
    assert_eq!(
        seen,
        [
            None, // cpu-cluster, an AmlCompute: not an instance, skipped
            Some(("testcomp007ci3".to_owned(), InstanceState::Running)),
            Some(("testcomp007ci4".to_owned(), InstanceState::Deleting)),
        ]
    );
    // The deleting instance's schedules: a recurrence with `cron: null` (described, not taken
    // for a cron schedule) and a cron with `recurrence: null` (kept).
    let deleting = instance_observation("lab", &list.value[2]).unwrap();
    assert_native_2023_schedules(&deleting.native);
    assert!(deleting.state.is_transitional());
    for r in &list.value[1..] {
        assert!(jupyter_base(r).is_some());
    }
}

/// A weekly recurrence start (with `cron: null`) and a cron stop (with `recurrence: null`).
fn assert_native_2023_schedules(n: &crate::engine::native::types::NativeObserved) {
    assert_eq!(
        n.schedules,
        [crate::engine::native::types::NativeSchedule {
            action: crate::engine::native::types::PowerAction::Stop,
            cron: "0 18 * * *".into(),
            time_zone: "Pacific Standard Time".into(),
        }]
    );
    assert_eq!(n.other_schedules, ["enabled recurrence schedule (Start)"]);
}

#[test]
fn instance_with_schedules_2023_01() {
    let r: ComputeResource =
        serde_json::from_value(load("real-get-with-schedules-2023-01.body.json")).unwrap();
    let o = instance_observation("lab", &r).unwrap();
    assert_eq!(o.state, InstanceState::Running);
    assert!(jupyter_base(&r).is_some());
    assert_native_2023_schedules(&o.native);
    assert_eq!(o.native.idle_shutdown.as_deref(), Some("PT15M"));

    let rec = load("cli-ml-ci-with-schedules-2023-01.excerpt.json");
    let same: ComputeResource = serde_json::from_value(rec["get_response_body"].clone()).unwrap();
    assert_eq!(same, r);
    // The PUT's 201 with Azure-AsyncOperation: pending.
    let put = &rec["put_response"];
    let mut h = HeaderMap::new();
    for k in [
        "azure-asyncoperation",
        "x-ms-ratelimit-remaining-subscription-writes",
    ] {
        h.insert(k, HeaderValue::from_str(put[k].as_str().unwrap()).unwrap());
    }
    let a = accepted_from_response("create_compute", 201, &h, None, None, &endpoint()).unwrap();
    assert!(matches!(
        a,
        Accepted::Pending {
            via: PollVia::AzureAsyncOperation,
            ..
        }
    ));
    assert_eq!(snapshot(&h).writes_remaining, Some(1199));
}

#[test]
fn running_instance_2024_12() {
    let r: ComputeResource =
        serde_json::from_value(load("real-get-running-2024-12.body.json")).unwrap();
    let o = instance_observation("lab", &r).unwrap();
    assert_eq!(o.state, InstanceState::Running);
    assert_eq!(
        jupyter_base(&r).unwrap().as_str(),
        "https://test72249821874.westus.instances.azureml.ms/"
    );
}

#[test]
fn entra_token_response_2022_09() {
    // The fields a client-credentials token response must carry (azure_identity reads them;
    // it only talks to an https authority, so the HTTP replay cannot drive it).
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        token_type: String,
        expires_in: u64,
        access_token: String,
        #[serde(default)]
        refresh_in: Option<u64>,
    }
    let rec = load("entra-token-2022-09.excerpt.json");
    assert_eq!(rec["response"]["status"], 200);
    let t: TokenResponse = serde_json::from_value(rec["response"]["body"].clone()).unwrap();
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.expires_in, 86399);
    assert_eq!(t.refresh_in, Some(43199));
    assert!(!t.access_token.is_empty());
}

#[test]
fn every_recorded_file_is_covered() {
    // A new recording must get its own test above.
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "README.md",
            "cli-ml-ci-with-schedules-2023-01.excerpt.json",
            // The YAML cassette's one response body is `real-list-2022-03.body.json`.
            "cli-ml-test_compute_list.yaml",
            "entra-token-2022-09.excerpt.json",
            "py-ml-stop-2024-12-signed-ao.excerpt.json",
            "py-ml-stop-start-2022-10.excerpt.json",
            "real-ao-url-signed-2024-12.txt",
            "real-get-running-2024-12.body.json",
            "real-get-with-schedules-2023-01.body.json",
            "real-list-2022-03.body.json",
        ]
    );
    // The cassette and the extracted body are the same list.
    let yaml = std::fs::read_to_string(dir().join("cli-ml-test_compute_list.yaml")).unwrap();
    for name in [
        "cpu-cluster",
        "testcomp007ci3",
        "testcomp007ci4",
        "Jupyter Lab",
    ] {
        assert!(yaml.contains(name), "{name}");
    }
    assert!(!yaml.contains("\"nextLink\""));
}
