//! Conformance: the emulator binary answers in the shape real Azure answered, as recorded in
//! `tests/fixtures/azure/recorded/` (loaded at test time; their README gives provenance).
//! Shapes, not values: status codes, which headers are present or absent, body key sets,
//! value formats. Every difference allowed from a recording is listed with its reason.

use std::collections::BTreeSet;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::{ADMIN, EmulatorProcess, READER, RG, SUB, TENANT, WS, within};

/// The api-version of the Dec 2024 recording.
const REC_API: &str = "api-version=2023-08-01-preview";

fn recorded(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/azure/recorded/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    if name.ends_with(".txt") {
        Value::String(text.trim().to_owned())
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

/// The entry of an excerpt whose `what` starts with `what`.
fn entry(file: &Value, what: &str) -> Value {
    file["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["what"].as_str().unwrap_or_default().starts_with(what))
        .unwrap_or_else(|| panic!("no recorded entry '{what}'"))
        .clone()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// Which `x-ms-ratelimit-remaining-*` headers a header map carries (lower case).
fn ratelimit_names<'a>(names: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    names
        .map(str::to_ascii_lowercase)
        .filter(|n| n.starts_with("x-ms-ratelimit-remaining-"))
        .collect()
}

fn recorded_ratelimits(e: &Value) -> BTreeSet<String> {
    ratelimit_names(
        e["ResponseHeaders"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str),
    )
}

fn recorded_has(e: &Value, header: &str) -> bool {
    e["ResponseHeaders"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.eq_ignore_ascii_case(header))
}

/// `2024-12-18T09:05:28.5367156+00:00`: seconds, then up to 7 fraction digits, then +00:00.
fn is_arm_time(s: &str, max_fraction: usize) -> bool {
    let Some(rest) = s.strip_suffix("+00:00") else {
        return false;
    };
    let (main, frac) = rest.split_once('.').unwrap_or((rest, ""));
    jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", main).is_ok()
        && frac.len() <= max_fraction
        && frac.bytes().all(|b| b.is_ascii_digit())
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

struct Arm {
    emu: EmulatorProcess,
}

impl Arm {
    async fn start(fleet: &str) -> Arm {
        Arm {
            emu: EmulatorProcess::start(fleet).await,
        }
    }

    async fn token(&self, who: (&str, &str)) -> String {
        let r = self
            .emu
            .http
            .post(format!(
                "{}/{TENANT}/oauth2/v2.0/token",
                self.emu.ready.endpoint
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([
                        ("grant_type", "client_credentials"),
                        ("client_id", who.0),
                        ("client_secret", who.1),
                        ("scope", "https://management.azure.com/.default"),
                    ])
                    .finish(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        tok: &str,
        body: Option<&Value>,
    ) -> (u16, HeaderMap, String) {
        let url = if path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.emu.ready.endpoint)
        };
        let mut rb = self.emu.http.request(method, url).bearer_auth(tok);
        rb = match body {
            Some(b) => rb.json(b),
            None => rb.header("content-length", "0"),
        };
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }
}

fn parse(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

fn ws_path() -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
    )
}

fn fleet(extra_top: &str, limits: &str, instances: &str) -> String {
    format!(
        r#"tenant_id = "{TENANT}"
page_size = 2
{extra_top}

[[principal]]
client_id = "{}"
client_secret = "{}"
actions = ["Microsoft.MachineLearningServices/workspaces/computes/*"]

[[principal]]
client_id = "{}"
client_secret = "{}"
actions = ["Microsoft.MachineLearningServices/workspaces/computes/read"]

[[principal]]
client_id = "aaaaaaaa-0000-0000-0000-00000000000a"
client_secret = "alice"
object_id = "a11ce000-0000-4000-8000-000000000001"
user = true
actions = []

[[principal]]
client_id = "bbbbbbbb-0000-0000-0000-00000000000b"
client_secret = "bob"
object_id = "b0b00000-0000-4000-8000-000000000002"
user = true
actions = ["Microsoft.MachineLearningServices/workspaces/computes/applicationaccess/action"]

[timing]
create = "1s"
start = "1s"
stop = "1s"
restart = "1s"
delete = "1s"

{limits}

[[workspace]]
subscription_id = "{SUB}"
resource_group = "{RG}"
name = "{WS}"
location = "westus"
{instances}
"#,
        ADMIN.0, ADMIN.1, READER.0, READER.1
    )
}

const TWO: &str = r#"
[[workspace.instance]]
name = "ci-a"
vm_size = "Standard_DS2_v2"
state = "Running"

[[workspace.instance]]
name = "ci-b"
vm_size = "Standard_DS2_v2"
state = "Stopped"
"#;

/// Differences from real-get-running-2024-12.body.json that the emulator may show, each
/// with its reason. (None at present: `idleTimeBeforeShutdown` appears only when set, as in
/// real-get-with-schedules-2023-01.body.json, and these instances have none.)
const ALLOWED_EXTRA_INNER_KEYS: &[(&str, &str)] = &[(
    "idleTimeBeforeShutdown",
    "present when set, as in real-get-with-schedules-2023-01.body.json",
)];

fn check_instance_shape(got: &Value, what: &str) {
    let real = recorded("real-get-running-2024-12.body.json");
    assert_eq!(keys(got), keys(&real), "{what}: top-level keys");
    assert_eq!(
        keys(&got["properties"]),
        keys(&real["properties"]),
        "{what}: properties keys"
    );
    let mut inner = keys(&got["properties"]["properties"]);
    for (k, _why) in ALLOWED_EXTRA_INNER_KEYS {
        inner.remove(*k);
    }
    assert_eq!(
        inner,
        keys(&real["properties"]["properties"]),
        "{what}: properties.properties keys"
    );
    let p = &got["properties"];
    let pp = &p["properties"];
    assert_eq!(
        keys(&pp["createdBy"]),
        keys(&real["properties"]["properties"]["createdBy"])
    );
    assert_eq!(
        keys(&pp["lastOperation"]),
        keys(&real["properties"]["properties"]["lastOperation"])
    );
    assert_eq!(
        keys(&pp["sshSettings"]),
        keys(&real["properties"]["properties"]["sshSettings"])
    );
    assert_eq!(
        keys(&pp["osImageMetadata"]),
        keys(&real["properties"]["properties"]["osImageMetadata"])
    );
    assert_eq!(keys(&got["identity"]), keys(&real["identity"]));
    for t in ["createdOn", "modifiedOn"] {
        let s = p[t].as_str().unwrap();
        assert!(is_arm_time(s, 7), "{what}: {t} = {s}");
    }
    // The recorded operationTime has millisecond precision ("…09:05:40.468+00:00").
    let ot = pp["lastOperation"]["operationTime"].as_str().unwrap();
    assert!(is_arm_time(ot, 3), "{what}: operationTime = {ot}");
    assert_eq!(pp["applicationSharingPolicy"], "Shared");
    assert_eq!(pp["personalComputeInstanceSettings"], Value::Null);
    assert_eq!(pp["computeInstanceAuthorizationType"], "personal");
    assert_eq!(pp["errors"], json!([]));
    let apps = pp["applications"].as_array().unwrap();
    let names: Vec<&str> = apps
        .iter()
        .map(|a| a["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Jupyter", "Jupyter Lab"], "{what}");
    assert!(apps[0]["endpointUri"].as_str().unwrap().ends_with("/tree/"));
    assert!(apps[1]["endpointUri"].as_str().unwrap().ends_with("/lab"));
    // On the instance's own host, shaped as recorded (`https://NAME.REGION.instances.azureml.ms`).
    for a in apps {
        let u = url::Url::parse(a["endpointUri"].as_str().unwrap()).unwrap();
        let host = u.host_str().unwrap();
        assert_eq!(u.scheme(), "https", "{what}");
        assert!(host.ends_with(".instances.azureml.ms"), "{what}: {host}");
        assert_eq!(host.split('.').count(), 5, "{what}: {host}");
    }
    assert!(is_guid(pp["createdBy"]["userId"].as_str().unwrap()));
}

/// Checks the 202 of an action or DELETE against a recorded one.
fn check_accepted(status: u16, h: &HeaderMap, body: &str, rec: &Value, what: &str) -> String {
    assert_eq!(
        u64::from(status),
        rec["StatusCode"].as_u64().unwrap(),
        "{what}"
    );
    assert!(body.is_empty(), "{what}: recorded body is null, got {body}");
    // The Dec 2024 DELETE excerpt kept only some headers; its note (and the 2022 DELETE in
    // py-ml-stop-start-2022-10) shows Azure-AsyncOperation, so presence is asserted directly.
    assert!(h.contains_key("azure-asyncoperation"), "{what}");
    for name in ["Location", "Retry-After"] {
        assert_eq!(
            h.contains_key(name),
            recorded_has(rec, name),
            "{what}: header {name}"
        );
    }
    assert_eq!(
        ratelimit_names(h.keys().map(|k| k.as_str())),
        recorded_ratelimits(rec),
        "{what}: ratelimit counters"
    );
    h["azure-asyncoperation"].to_str().unwrap().to_owned()
}

fn check_ao_url(url: &str, endpoint: &str) {
    let real = recorded("real-ao-url-signed-2024-12.txt");
    let real = url::Url::parse(real.as_str().unwrap()).unwrap();
    assert!(url.len() >= 3000, "AO URL of {} bytes", url.len());
    let u = url::Url::parse(url).unwrap();
    assert!(url.starts_with(endpoint), "{url}");
    let segs: Vec<&str> = u.path_segments().unwrap().collect();
    let real_segs: Vec<&str> = real.path_segments().unwrap().collect();
    assert_eq!(segs.len(), real_segs.len());
    for i in [0, 2, 3, 4, 6] {
        assert_eq!(segs[i], real_segs[i], "path segment {i}");
    }
    assert_eq!(segs[1], SUB);
    assert_eq!(segs[5], "westus");
    assert!(is_guid(segs[7]));
    let names =
        |u: &url::Url| -> Vec<String> { u.query_pairs().map(|(k, _)| k.into_owned()).collect() };
    assert_eq!(names(&u), names(&real));
    let get = |u: &url::Url, k: &str| -> String {
        u.query_pairs()
            .find(|(n, _)| n == k)
            .unwrap()
            .1
            .into_owned()
    };
    assert_eq!(get(&u, "service"), "new");
    let t = get(&u, "t");
    assert!(
        t.len() == 18 && t.bytes().all(|b| b.is_ascii_digit()),
        "t = {t}"
    );
    for k in ["c", "s", "h"] {
        let v = get(&u, k);
        assert_eq!(v.len(), get(&real, k).len(), "length of {k}");
        assert!(
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{k} is not base64url"
        );
    }
}

#[tokio::test]
async fn get_stop_poll_list_delete_put_have_the_recorded_shape() {
    within(120, async {
        let arm = Arm::start(&fleet("", "", TWO)).await;
        let tok = arm.token(ADMIN).await;
        let ep = arm.emu.ready.endpoint.clone();
        let rec = recorded("py-ml-stop-2024-12-signed-ao.excerpt.json");

        // GET of a running instance.
        let rec_get = entry(&rec, "GET compute (Running)");
        let (s, h, body) = arm
            .send(Method::GET, &format!("{}/computes/ci-a?{REC_API}", ws_path()), &tok, None)
            .await;
        assert_eq!(u64::from(s), rec_get["StatusCode"].as_u64().unwrap(), "{body}");
        assert_eq!(ratelimit_names(h.keys().map(|k| k.as_str())), recorded_ratelimits(&rec_get));
        let v = parse(&body);
        check_instance_shape(&v, "GET");
        assert_eq!(v["properties"]["properties"]["state"], "Running");

        // POST stop: 202 with only a signed Azure-AsyncOperation.
        let rec_stop = entry(&rec, "POST stop");
        let (s, h, body) = arm
            .send(Method::POST, &format!("{}/computes/ci-a/stop?{REC_API}", ws_path()), &tok, None)
            .await;
        let ao = check_accepted(s, &h, &body, &rec_stop, "stop");
        check_ao_url(&ao, &ep);

        // Polls: {"status":"InProgress"} then {"status":"Succeeded","percentComplete":100.0}.
        let rec_poll = entry(&rec, "poll stop (+0 s)");
        let rec_done = entry(&rec, "poll stop (+31 s)");
        let (s, h, body) = arm.send(Method::GET, &ao, &tok, None).await;
        assert_eq!(u64::from(s), rec_poll["StatusCode"].as_u64().unwrap());
        let v = parse(&body);
        assert_eq!(keys(&v), keys(&rec_poll["ResponseBody"]), "{v}");
        assert_eq!(v["status"], "InProgress");
        assert!(!h.contains_key("retry-after") && !recorded_has(&rec_poll, "Retry-After"));
        assert_eq!(ratelimit_names(h.keys().map(|k| k.as_str())), recorded_ratelimits(&rec_poll));
        let mut done = Value::Null;
        for _ in 0..60 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let (_, h, body) = arm.send(Method::GET, &ao, &tok, None).await;
            assert!(!h.contains_key("retry-after"));
            let v = parse(&body);
            if v["status"] != "InProgress" {
                done = v;
                break;
            }
        }
        assert_eq!(keys(&done), keys(&rec_done["ResponseBody"]), "{done}");
        assert_eq!(done["status"], rec_done["ResponseBody"]["status"]);
        assert_eq!(done["percentComplete"].as_f64(), Some(100.0));
        assert!(done["percentComplete"].is_f64(), "100.0 as recorded, not 100");

        // The stopped instance keeps its shape (py-ml-stop-start-2022-10: GET after stop).
        let (_, _, body) = arm
            .send(Method::GET, &format!("{}/computes/ci-a?{REC_API}", ws_path()), &tok, None)
            .await;
        let v = parse(&body);
        check_instance_shape(&v, "GET after stop");
        assert_eq!(v["properties"]["properties"]["state"], "Stopped");
        assert_eq!(v["properties"]["properties"]["lastOperation"]["operationName"], "Stop");

        // List: `value` and no `nextLink` key on the last page (real-list-2022-03.body.json).
        let real_list = recorded("real-list-2022-03.body.json");
        let (s, _, body) = arm
            .send(Method::GET, &format!("{}/computes?{REC_API}", ws_path()), &tok, None)
            .await;
        assert_eq!(s, 200);
        let v = parse(&body);
        assert_eq!(keys(&v), keys(&real_list));
        for c in v["value"].as_array().unwrap() {
            check_instance_shape(c, "list item");
        }

        // DELETE: 202, deletes counters.
        let rec_del = entry(&rec, "DELETE");
        let (s, h, body) = arm
            .send(
                Method::DELETE,
                &format!("{}/computes/ci-b?{REC_API}&underlyingResourceAction=Delete", ws_path()),
                &tok,
                None,
            )
            .await;
        let ao = check_accepted(s, &h, &body, &rec_del, "delete");
        check_ao_url(&ao, &ep);

        // PUT with the recorded lower-case schedules: 201, accepted, returned normalised.
        let sched = recorded("cli-ml-ci-with-schedules-2023-01.excerpt.json");
        let mut put = sched["put_request_body"].clone();
        put["location"] = json!("westus");
        let (s, h, body) = arm
            .send(
                Method::PUT,
                &format!("{}/computes/ci-sched?api-version=2022-10-01-preview", ws_path()),
                &tok,
                Some(&put),
            )
            .await;
        assert_eq!(u64::from(s), sched["put_response"]["status"].as_u64().unwrap(), "{body}");
        assert!(h.contains_key("azure-asyncoperation") && !h.contains_key("location"));
        assert!(!h.contains_key("retry-after"));
        let (s, _, body) = arm
            .send(
                Method::GET,
                &format!("{}/computes/ci-sched?api-version=2022-10-01-preview", ws_path()),
                &tok,
                None,
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let v = parse(&body);
        let real_list = &sched["get_response_body"]["properties"]["properties"]["schedules"]
            ["computeStartStop"];
        let got_list = &v["properties"]["properties"]["schedules"]["computeStartStop"];
        let by_action = |l: &Value, a: &str| -> Value {
            l.as_array()
                .unwrap()
                .iter()
                .find(|x| x["action"] == a)
                .unwrap_or_else(|| panic!("no {a} schedule in {l}"))
                .clone()
        };
        for a in ["Start", "Stop"] {
            let (g, r) = (by_action(got_list, a), by_action(real_list, a));
            assert_eq!(keys(&g), keys(&r), "{a} schedule keys");
            assert_eq!(g["triggerType"], r["triggerType"]);
            assert_eq!(g["provisioningStatus"], "Completed");
            assert!(is_guid(g["id"].as_str().unwrap()));
            assert_eq!(g["cron"].is_null(), r["cron"].is_null());
            assert_eq!(g["recurrence"].is_null(), r["recurrence"].is_null());
            if !r["recurrence"].is_null() {
                assert_eq!(g["recurrence"]["frequency"], r["recurrence"]["frequency"]);
                assert_eq!(
                    g["recurrence"]["schedule"]["weekDays"],
                    r["recurrence"]["schedule"]["weekDays"]
                );
            }
        }
        assert_eq!(v["properties"]["properties"]["idleTimeBeforeShutdown"], "PT15M");
    })
    .await;
}

#[tokio::test]
async fn throttling_is_arms() {
    within(60, async {
        // Two reads per principal; the global bucket as large as one principal's, so the
        // reader is throttled by the admin's spending.
        let limits = "[limits]\nread_bucket = 2\nread_refill_per_sec = 0.01\nglobal_factor = 1";
        let arm = Arm::start(&fleet("", limits, TWO)).await;
        let admin = arm.token(ADMIN).await;
        let reader = arm.token(READER).await;
        let path = format!("{}/computes/ci-a?api-version=2025-12-01", ws_path());
        for _ in 0..2 {
            let (s, _, _) = arm.send(Method::GET, &path, &admin, None).await;
            assert_eq!(s, 200);
        }
        for tok in [&admin, &reader] {
            let (s, h, body) = arm.send(Method::GET, &path, tok, None).await;
            assert_eq!(s, 429, "{body}");
            let v = parse(&body);
            assert_eq!(v["error"]["code"], "SubscriptionRequestsThrottled");
            let msg = v["error"]["message"].as_str().unwrap();
            let prefix = format!("Number of 'read' requests for subscription '{SUB}' actor '");
            assert!(msg.starts_with(&prefix), "{msg}");
            assert!(
                msg.contains("' exceeded. Please try again after '")
                    && msg.ends_with("' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling for additional information."),
                "{msg}"
            );
            let ra = h["retry-after"].to_str().unwrap();
            assert!(ra.parse::<u64>().unwrap() >= 1, "Retry-After in seconds: {ra}");
        }
    })
    .await;
}

#[tokio::test]
async fn only_published_api_versions() {
    within(60, async {
        let arm = Arm::start(&fleet("", "", TWO)).await;
        let tok = arm.token(ADMIN).await;
        let c = format!("{}/computes/ci-a", ws_path());
        let cases = [
            (
                Method::GET,
                format!("{c}?api-version=2019-01-01"),
                None,
                400,
                "NoRegisteredProviderFound",
            ),
            (
                Method::GET,
                format!("{c}?api-version=soon"),
                None,
                400,
                "InvalidApiVersionParameter",
            ),
            (
                Method::GET,
                c.clone(),
                None,
                400,
                "MissingApiVersionParameter",
            ),
            (
                Method::POST,
                format!("{c}/updateSchedules?api-version=2025-12-01"),
                Some(json!({"computeStartStop": []})),
                400,
                "NoRegisteredProviderFound",
            ),
            (
                Method::POST,
                format!("{c}/updateIdleShutdownSetting?api-version=2021-07-01"),
                Some(json!({"idleTimeBeforeShutdown": "PT30M"})),
                400,
                "NoRegisteredProviderFound",
            ),
        ];
        for (m, path, body, status, code) in cases {
            let (s, _, text) = arm.send(m, &path, &tok, body.as_ref()).await;
            let v = parse(&text);
            assert_eq!(
                (s, v["error"]["code"].as_str()),
                (status, Some(code)),
                "{path}: {text}"
            );
        }
        // Published ones work: the recorded preview, the client's versions, the SDK's 2020-08-01.
        for v in [
            "2023-08-01-preview",
            "2025-12-01",
            "2020-08-01",
            "2022-10-01-preview",
        ] {
            let (s, _, text) = arm
                .send(Method::GET, &format!("{c}?api-version={v}"), &tok, None)
                .await;
            assert_eq!(s, 200, "{v}: {text}");
        }
        let (s, _, text) = arm
            .send(
                Method::POST,
                &format!("{c}/updateSchedules?api-version=2021-07-01"),
                &tok,
                Some(&json!({"computeStartStop": []})),
            )
            .await;
        assert_eq!(s, 200, "{text}");
    })
    .await;
}

const SHARING: &str = r#"
[[workspace.instance]]
name = "ci-shared"
vm_size = "Standard_DS2_v2"
state = "Running"

[[workspace.instance]]
name = "ci-alice"
vm_size = "Standard_DS2_v2"
state = "Running"
application_sharing_policy = "Personal"
created_by_object_id = "a11ce000-0000-4000-8000-000000000001"
assigned_user = "a11ce000-0000-4000-8000-000000000001"
"#;

const ALICE: (&str, &str) = ("aaaaaaaa-0000-0000-0000-00000000000a", "alice");
const BOB: (&str, &str) = ("bbbbbbbb-0000-0000-0000-00000000000b", "bob");

/// The Jupyter token scope the emulator's instances accept (its default audience).
const JUPYTER_SCOPE: &str = "https://ml.azure.com/.default";

/// `GET /api/status` on the instance's own host, with a token for the Jupyter audience.
async fn jupyter_status(arm: &Arm, who: (&str, &str), inst: &str) -> u16 {
    let tok = arm.emu.token_for(who, JUPYTER_SCOPE).await;
    arm.emu
        .jupyter_get(inst, "westus", "/api/status", &tok)
        .await
        .0
}

#[tokio::test]
async fn jupyter_follows_the_sharing_policy() {
    within(60, async {
        let arm = Arm::start(&fleet("", "", SHARING)).await;
        let admin = arm.token(ADMIN).await;
        // The ARM body names the policy and the assigned user as Azure does.
        let (_, _, body) = arm
            .send(
                Method::GET,
                &format!("{}/computes/ci-alice?api-version=2025-12-01", ws_path()),
                &admin,
                None,
            )
            .await;
        let pp = parse(&body)["properties"]["properties"].clone();
        assert_eq!(pp["applicationSharingPolicy"], "Personal");
        assert_eq!(
            pp["personalComputeInstanceSettings"]["assignedUser"]["objectId"],
            "a11ce000-0000-4000-8000-000000000001"
        );
        // Shared: principals holding computes/applicationaccess/action (the admin's
        // computes/* covers it; bob has it; alice has no action at all).
        assert_eq!(jupyter_status(&arm, ADMIN, "ci-shared").await, 200);
        assert_eq!(jupyter_status(&arm, BOB, "ci-shared").await, 200);
        assert_eq!(jupyter_status(&arm, ALICE, "ci-shared").await, 403);
        // Personal: the assigned user only; not the daemon's service principal.
        assert_eq!(jupyter_status(&arm, ALICE, "ci-alice").await, 200);
        assert_eq!(jupyter_status(&arm, ADMIN, "ci-alice").await, 403);
        assert_eq!(jupyter_status(&arm, BOB, "ci-alice").await, 403);
        // An ARM token is not for instance hosts; Jupyter is not served on the ARM host.
        let (s, _) = arm
            .emu
            .jupyter_get("ci-shared", "westus", "/api/status", &admin)
            .await;
        assert_eq!(s, 401);
        let (s, _, _) = arm
            .send(
                Method::GET,
                &format!("/instances/{WS}/ci-shared/api/status"),
                &admin,
                None,
            )
            .await;
        assert_eq!(s, 404);

        // A gateway that refuses service principals altogether.
        let arm = Arm::start(&fleet(
            "gateway_accepts_service_principals = false",
            "",
            SHARING,
        ))
        .await;
        assert_eq!(jupyter_status(&arm, ADMIN, "ci-shared").await, 403);
        assert_eq!(jupyter_status(&arm, BOB, "ci-shared").await, 200);
    })
    .await;
}
