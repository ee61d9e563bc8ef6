//! The emulator over real HTTPS: tokens, paging, long-running operations, ARM errors,
//! throttling, Jupyter, prices and the control API.

// Helpers outside `#[test]` functions are test code too; a failed unwrap is a failed test.
#![expect(clippy::unwrap_used, reason = "test helpers")]

use std::time::Duration;

use azure_ml_emulator::{Emulator, EmulatorOptions, Fleet, RunningEmulator};
use serde_json::{Value, json};

const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
const ADMIN: (&str, &str) = ("11111111-1111-1111-1111-111111111111", "s3cret");
const READER: (&str, &str) = ("22222222-2222-2222-2222-222222222222", "readonly");
const WS: &str = "/subscriptions/34adfa4f-cedf-4dc0-ba29-b6d1a69ab345/resourceGroups/testrg123/providers/Microsoft.MachineLearningServices/workspaces/workspaces123";
const API: &str = "api-version=2025-12-01";

fn fleet(extra_top: &str, timing: &str) -> Fleet {
    let text = format!(
        r#"
tenant_id = "{TENANT}"
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
client_id = "33333333-3333-3333-3333-333333333333"
managed_identity = true
actions = ["*"]

[timing]
{timing}

[[workspace]]
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "testrg123"
name = "workspaces123"
location = "eastus2"

[[workspace.instance]]
name = "ci-a"
vm_size = "Standard_DS3_v2"
state = "Running"
[[workspace.instance]]
name = "ci-b"
vm_size = "Standard_DS3_v2"
state = "Stopped"
[[workspace.instance]]
name = "ci-c"
vm_size = "Standard_DS3_v2"
state = "Stopped"
[[workspace.instance]]
name = "ci-d"
vm_size = "Standard_DS11_v2"
state = "Running"
[[workspace.instance]]
name = "ci-e"
vm_size = "Standard_E4ds_v4"
state = "Running"
"#,
        ADMIN.0, ADMIN.1, READER.0, READER.1
    );
    Fleet::from_toml_str(&text, "test fleet").unwrap()
}

struct Env {
    emu: RunningEmulator,
    http: reqwest::Client,
}

impl Env {
    async fn start(fleet: Fleet, virtual_time: bool, page_size: Option<usize>) -> Env {
        let emu = Emulator::start(EmulatorOptions {
            fleet,
            virtual_time,
            page_size,
            ..EmulatorOptions::default()
        })
        .await
        .unwrap();
        let pem = std::fs::read(emu.ca_file().unwrap()).unwrap();
        let addr: std::net::SocketAddr = emu
            .endpoint()
            .trim_start_matches("https://")
            .parse()
            .unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            // ci-a's Jupyter lives on its own host, as on Azure; here that is the emulator.
            .resolve("ci-a.eastus2.instances.azureml.ms", addr)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Env { emu, http }
    }

    /// The base of ci-a's Jupyter API on its real-shaped host.
    fn jupyter_api(&self) -> String {
        let port = self.emu.endpoint().rsplit(':').next().unwrap().to_owned();
        format!("https://ci-a.eastus2.instances.azureml.ms:{port}/api")
    }

    async fn jupyter_token(&self, who: (&str, &str)) -> String {
        let r = self
            .http
            .post(self.url(&format!("/{TENANT}/oauth2/v2.0/token")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("client_id", who.0),
                ("client_secret", who.1),
                ("scope", "https://ml.azure.com/.default"),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.endpoint())
    }

    async fn token(&self, who: (&str, &str)) -> String {
        let r = self
            .http
            .post(self.url(&format!("/{TENANT}/oauth2/v2.0/token")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("client_id", who.0),
                ("client_secret", who.1),
                ("scope", "https://management.azure.com/.default"),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], 3599);
        v["access_token"].as_str().unwrap().to_owned()
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        tok: Option<&str>,
        body: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            self.url(path)
        };
        let mut rb = self.http.request(method, url);
        if let Some(t) = tok {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_owned());
        } else {
            rb = rb.header("content-length", "0");
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, v)
    }

    async fn get(&self, path: &str, tok: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::GET, path, tok, None).await
    }

    async fn post(
        &self,
        path: &str,
        tok: Option<&str>,
        body: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::POST, path, tok, body).await
    }

    async fn state_of(&self, tok: &str, name: &str) -> String {
        let (s, _, v) = self
            .get(&format!("{WS}/computes/{name}?{API}"), Some(tok))
            .await;
        assert_eq!(s, 200, "{v}");
        v["properties"]["properties"]["state"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn fast() -> &'static str {
    "create = \"300ms\"\nstart = \"300ms\"\nstop = \"300ms\"\nrestart = \"300ms\"\ndelete = \"300ms\""
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn token_then_list_pages_through_next_links() {
    let env = Env::start(fleet("", fast()), false, Some(2)).await;
    let tok = env.token(ADMIN).await;
    let mut names = Vec::new();
    let mut next = format!("{WS}/computes?{API}");
    let mut pages = 0;
    loop {
        let (s, h, v) = env.get(&next, Some(&tok)).await;
        assert_eq!(s, 200, "{v}");
        assert!(!header(&h, "x-ms-request-id").is_empty());
        assert!(!header(&h, "x-ms-correlation-request-id").is_empty());
        assert!(!header(&h, "x-ms-ratelimit-remaining-subscription-reads").is_empty());
        pages += 1;
        for c in v["value"].as_array().unwrap() {
            assert_eq!(
                c["type"],
                "Microsoft.MachineLearningServices/workspaces/computes"
            );
            names.push(c["name"].as_str().unwrap().to_owned());
        }
        match v.get("nextLink").and_then(Value::as_str) {
            Some(n) => {
                assert!(n.starts_with(env.emu.endpoint()), "{n}");
                assert!(n.contains("api-version=") && n.contains("$skip="), "{n}");
                next = n.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["ci-a", "ci-b", "ci-c", "ci-d", "ci-e"]);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn start_is_accepted_then_polled_to_running() {
    let env = Env::start(fleet("", fast()), false, None).await;
    let tok = env.token(ADMIN).await;
    let (s, h, _) = env
        .post(&format!("{WS}/computes/ci-b/start?{API}"), Some(&tok), None)
        .await;
    assert_eq!(s, 202);
    let status_url = header(&h, "azure-asyncoperation").to_owned();
    assert!(
        status_url.contains("/computeOperationsStatus/"),
        "{status_url}"
    );
    // Real Azure: only Azure-AsyncOperation (recorded/py-ml-stop-2024-12-signed-ao).
    assert!(h.get("location").is_none());
    assert!(h.get("retry-after").is_none());
    assert_eq!(env.state_of(&tok, "ci-b").await, "Starting");
    let (_, ph, v) = env.get(&status_url, Some(&tok)).await;
    assert_eq!(v, json!({"status": "InProgress"}));
    assert!(ph.get("retry-after").is_none());
    let mut done = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, _, v) = env.get(&status_url, Some(&tok)).await;
        if v["status"] == "Succeeded" {
            done = true;
            break;
        }
    }
    assert!(done);
    assert_eq!(env.state_of(&tok, "ci-b").await, "Running");
    // The status URL must come back verbatim.
    let tampered = status_url.replacen("&t=", "&t=1", 1);
    let (s, _, v) = env.get(&tampered, Some(&tok)).await;
    assert_eq!(s, 400, "{v}");
    let (_, _, v) = env
        .get(&format!("{WS}/computes/ci-b?{API}"), Some(&tok))
        .await;
    let lo = &v["properties"]["properties"]["lastOperation"];
    assert_eq!(lo["operationName"], "Start");
    assert_eq!(lo["operationStatus"], "Succeeded");
    assert_eq!(lo["operationTrigger"], "User");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn arm_errors() {
    let env = Env::start(fleet("", "start = \"5s\""), false, None).await;
    let admin = env.token(ADMIN).await;
    let reader = env.token(READER).await;

    // 401 without a token, with the challenge.
    let (s, h, v) = env.get(&format!("{WS}/computes?{API}"), None).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["code"], "AuthenticationFailed");
    assert!(header(&h, "www-authenticate").starts_with("Bearer authorization_uri="));
    let (s, _, v) = env
        .get(&format!("{WS}/computes?{API}"), Some("not-a-token"))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("AuthenticationFailed"))
    );

    // 403 for the read-only principal, in ARM's words.
    let (s, _, v) = env
        .get(&format!("{WS}/computes/ci-a?{API}"), Some(&reader))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = env
        .post(
            &format!("{WS}/computes/ci-a/stop?{API}"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(v["error"]["code"], "AuthorizationFailed");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("does not have authorization to perform action 'Microsoft.MachineLearningServices/workspaces/computes/stop/action' over scope"), "{msg}");

    // api-version.
    let (s, _, v) = env.get(&format!("{WS}/computes"), Some(&admin)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("MissingApiVersionParameter"))
    );
    let (s, _, v) = env
        .get(&format!("{WS}/computes?api-version=soon"), Some(&admin))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("InvalidApiVersionParameter"))
    );

    // 404s.
    let (s, _, v) = env
        .get(&format!("{WS}/computes/nope?{API}"), Some(&admin))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );

    // Start when running: accepted, then the operation fails with the refusal (as clients
    // reported it); the same at a synchronous api-version is a 400. 409 mid-operation.
    let (s, h, _) = env
        .post(
            &format!("{WS}/computes/ci-a/start?{API}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 202);
    let ao = header(&h, "azure-asyncoperation");
    let poll = ao.strip_prefix(env.emu.endpoint()).unwrap_or(ao).to_owned();
    let (s, _, v) = env.get(&poll, Some(&admin)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "Failed", "{v}");
    assert_eq!(
        v["error"]["code"],
        "StartComputeInstanceOnlyAllowedInStoppedState"
    );
    assert_eq!(
        v["error"]["message"],
        "Start Azure ML Compute Instance is only allowed when the instance ci-a is in 'stopped' state"
    );
    let (s, _, v) = env
        .post(
            &format!("{WS}/computes/ci-a/start?api-version=2020-08-01"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("StartComputeInstanceOnlyAllowedInStoppedState"))
    );
    let (s, _, _) = env
        .post(
            &format!("{WS}/computes/ci-b/start?{API}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 202);
    let (s, _, v) = env
        .post(
            &format!("{WS}/computes/ci-b/stop?{API}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("Conflict")));
    let (s, _, _) = env
        .send(
            reqwest::Method::DELETE,
            &format!("{WS}/computes/ci-b?{API}&underlyingResourceAction=Delete"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 409);

    // Malformed and bad bodies.
    let (s, _, v) = env
        .send(
            reqwest::Method::PUT,
            &format!("{WS}/computes/ci-new?{API}"),
            Some(&admin),
            Some("{not json"),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("InvalidRequestContent"))
    );
    let (s, _, v) = env
        .send(
            reqwest::Method::PUT,
            &format!("{WS}/computes/ci-new?{API}"),
            Some(&admin),
            Some(r#"{"properties":{"computeType":"ComputeInstance","properties":{}}}"#),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("vmSize"));
    let (s, _, v) = env
        .post(
            &format!("{WS}/computes/ci-a/updateIdleShutdownSetting?{API}"),
            Some(&admin),
            Some(r#"{"idleTimeBeforeShutdown":"soon"}"#),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, _, _) = env
        .send(
            reqwest::Method::DELETE,
            &format!("{WS}/computes/ci-a?{API}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 400);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn throttled_reads_get_429_with_retry_after() {
    let limits = "[limits]\nread_bucket = 3\nread_refill_per_sec = 0.01";
    let env = Env::start(fleet(limits, fast()), false, None).await;
    let tok = env.token(ADMIN).await;
    for left in [2, 1, 0] {
        let (s, h, _) = env
            .get(&format!("{WS}/computes/ci-a?{API}"), Some(&tok))
            .await;
        assert_eq!(s, 200);
        assert_eq!(
            header(&h, "x-ms-ratelimit-remaining-subscription-reads"),
            left.to_string()
        );
    }
    let (s, h, v) = env
        .get(&format!("{WS}/computes/ci-a?{API}"), Some(&tok))
        .await;
    assert_eq!(s, 429);
    assert_eq!(v["error"]["code"], "SubscriptionRequestsThrottled");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Number of 'read' requests for subscription '34adfa4f-cedf-4dc0-ba29-b6d1a69ab345' actor '")
            && msg.ends_with("Refer to https://aka.ms/arm-throttling for additional information."),
        "{msg}"
    );
    assert!(header(&h, "retry-after").parse::<u64>().unwrap() >= 1);
    // Writes have their own bucket.
    let (s, _, _) = env
        .post(&format!("{WS}/computes/ci-a/stop?{API}"), Some(&tok), None)
        .await;
    assert_eq!(s, 202);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn updates_create_and_delete() {
    let env = Env::start(fleet("", fast()), false, None).await;
    let tok = env.token(ADMIN).await;
    let (s, _, _) = env
        .post(
            &format!("{WS}/computes/ci-a/updateIdleShutdownSetting?{API}"),
            Some(&tok),
            Some(r#"{"idleTimeBeforeShutdown":"PT120M"}"#),
        )
        .await;
    assert_eq!(s, 200);
    let sched = r#"{"computeStartStop":[{"status":"Enabled","action":"Start","triggerType":"Recurrence","recurrence":{"frequency":"Day","interval":1,"startTime":"2021-04-23T01:30:00","timeZone":"Pacific Standard Time","schedule":{"hours":[18],"minutes":[30],"weekDays":null}}}]}"#;
    let (s, _, _) = env
        .post(
            &format!("{WS}/computes/ci-a/updateSchedules?api-version=2021-07-01"),
            Some(&tok),
            Some(sched),
        )
        .await;
    assert_eq!(s, 200);
    let (_, _, v) = env
        .get(&format!("{WS}/computes/ci-a?{API}"), Some(&tok))
        .await;
    let p = &v["properties"]["properties"];
    assert_eq!(p["idleTimeBeforeShutdown"], "PT120M");
    assert_eq!(p["schedules"]["computeStartStop"][0]["action"], "Start");

    let body = json!({"location": "eastus2", "tags": {"x": "y"}, "properties": {"computeType": "ComputeInstance", "properties": {"vmSize": "Standard_DS3_v2"}}});
    let (s, h, v) = env
        .send(
            reqwest::Method::PUT,
            &format!("{WS}/computes/ci-new?{API}"),
            Some(&tok),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["properties"]["provisioningState"], "Creating");
    assert!(!header(&h, "azure-asyncoperation").is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(env.state_of(&tok, "ci-new").await, "Running");
    // A PUT of an existing compute: 201 with an operation to follow (recorded for an
    // AmlCompute update), and a replace: what it leaves out is reset.
    let (s, h, v) = env
        .send(
            reqwest::Method::PUT,
            &format!("{WS}/computes/ci-new?{API}"),
            Some(&tok),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(header(&h, "azure-asyncoperation").len() > 3000);
    assert_eq!(v["tags"]["x"], "y");
    let bare = json!({"location": "eastus2", "properties": {"computeType": "ComputeInstance", "properties": {"vmSize": "Standard_DS3_v2"}}});
    let (s, _, v) = env
        .send(
            reqwest::Method::PUT,
            &format!("{WS}/computes/ci-new?{API}"),
            Some(&tok),
            Some(&bare.to_string()),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["tags"], json!({}), "tags left out are reset: {v}");
    let (s, h, _) = env
        .send(
            reqwest::Method::DELETE,
            &format!("{WS}/computes/ci-new?{API}&underlyingResourceAction=Delete"),
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(s, 202);
    assert!(!header(&h, "azure-asyncoperation").is_empty());
    assert!(h.get("location").is_none());
    assert!(!header(&h, "x-ms-ratelimit-remaining-subscription-deletes").is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (s, _, _) = env
        .get(&format!("{WS}/computes/ci-new?{API}"), Some(&tok))
        .await;
    assert_eq!(s, 404);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn virtual_time_jupyter_and_activity() {
    let env = Env::start(
        fleet("clock_start = \"2026-03-30T09:00:00Z\"", "stop = \"10m\""),
        true,
        None,
    )
    .await;
    let tok = env.token(ADMIN).await;
    let jtok = env.jupyter_token(ADMIN).await;
    let jup = env.jupyter_api();
    // An ARM token is not for instance hosts.
    let (s, _, _) = env.get(&format!("{jup}/status"), Some(&tok)).await;
    assert_eq!(s, 401);
    let (s, _, v) = env.get(&format!("{jup}/status"), Some(&jtok)).await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v["started"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-30T08:00:00")
    );
    let (s, _, _) = env.get(&format!("{jup}/kernels"), None).await;
    assert_eq!(s, 401);

    let act = |kind: &str| {
        json!({"workspace": "workspaces123", "instance": "ci-a", "kind": kind}).to_string()
    };
    let (s, _, _) = env
        .post("/_emulator/activity", None, Some(&act("kernel_busy")))
        .await;
    assert_eq!(s, 200);
    let (_, _, v) = env.get(&format!("{jup}/kernels"), Some(&jtok)).await;
    assert_eq!(v[0]["execution_state"], "busy");
    let (s, _, _) = env
        .post("/_emulator/activity", None, Some(&act("job_start")))
        .await;
    assert_eq!(s, 200);
    assert_eq!(env.state_of(&tok, "ci-a").await, "JobRunning");
    env.post("/_emulator/activity", None, Some(&act("job_end")))
        .await;

    let (s, _, _) = env
        .post(&format!("{WS}/computes/ci-a/stop?{API}"), Some(&tok), None)
        .await;
    assert_eq!(s, 202);
    let (s, _, v) = env
        .post("/_emulator/clock", None, Some(r#"{"advance":"9m"}"#))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(env.state_of(&tok, "ci-a").await, "Stopping");
    env.post("/_emulator/clock", None, Some(r#"{"advance":"1m"}"#))
        .await;
    assert_eq!(env.state_of(&tok, "ci-a").await, "Stopped");
    let (s, _, _) = env.get(&format!("{jup}/status"), Some(&jtok)).await;
    assert_eq!(s, 502);

    let (_, _, calls) = env.get("/_emulator/calls", None).await;
    let calls = calls.as_array().unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c["status"] == 202 && c["principal"] == ADMIN.0)
    );
    let (_, _, st) = env.get("/_emulator/state", None).await;
    assert_eq!(st["now"], "2026-03-30T09:10:00Z");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_and_managed_identity() {
    let env = Env::start(fleet("", fast()), false, None).await;
    let tok = env.token(ADMIN).await;
    let (s, _, _) = env.get(&format!("{WS}/computes?{API}"), Some(&tok)).await;
    assert_eq!(s, 200);
    env.post("/_emulator/tokens/expire", None, None).await;
    let (s, _, v) = env.get(&format!("{WS}/computes?{API}"), Some(&tok)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("ExpiredAuthenticationToken"))
    );

    let r = env
        .http
        .get(env.url("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/"))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let mi = v["access_token"].as_str().unwrap().to_owned();
    let (s, _, _) = env.get(&format!("{WS}/computes?{API}"), Some(&mi)).await;
    assert_eq!(s, 200);
    let r = env
        .http
        .get(env.url("/msi/token?api-version=2019-08-01&resource=https://management.azure.com/"))
        .header("X-IDENTITY-HEADER", "x")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["expires_on"].as_str().unwrap().parse::<i64>().is_ok());

    let r = env
        .http
        .post(env.url(&format!("/{TENANT}/oauth2/v2.0/token")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ADMIN.0),
            ("client_secret", "wrong"),
            ("scope", "x/.default"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215")
    );
    env.emu.shutdown().await;
}

#[tokio::test]
async fn prices_filter_and_faults() {
    let env = Env::start(fleet("", fast()), false, None).await;
    let (s, _, v) = env
        .get("/api/retail/prices?currencyCode='EUR'&$filter=serviceName eq 'Virtual Machines' and armRegionName eq 'eastus2' and armSkuName eq 'Standard_DS3_v2' and priceType eq 'Consumption'", None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["BillingCurrency"], "EUR");
    let items = v["Items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|i| i["meterName"] == "DS3 v2"
                && i["productName"] == "Virtual Machines DSv2 Series")
    );
    assert!(items.iter().all(|i| i["armRegionName"] == "eastus2"));
    let (_, _, all) = env.get("/api/retail/prices", None).await;
    let next = all["NextPageLink"].as_str().unwrap().to_owned();
    let (s, _, page2) = env.get(&next, None).await;
    assert_eq!(s, 200);
    assert_eq!(all["Count"], 100);
    assert_ne!(page2["Items"][0], all["Items"][0]);

    let tok = env.token(ADMIN).await;
    let (s, _, _) = env
        .post(
            "/_emulator/faults",
            None,
            Some(r#"{"error_rate":1.0,"statuses":[503]}"#),
        )
        .await;
    assert_eq!(s, 200);
    let (s, h, _) = env.get(&format!("{WS}/computes?{API}"), Some(&tok)).await;
    assert_eq!(s, 503);
    assert!(!header(&h, "retry-after").is_empty());
    env.post("/_emulator/faults", None, Some(r#"{"reset_rate":1.0}"#))
        .await;
    let r = env
        .http
        .get(env.url(&format!("{WS}/computes?{API}")))
        .bearer_auth(&tok)
        .send()
        .await;
    assert!(r.is_err(), "a reset must drop the connection");
    env.post("/_emulator/faults", None, Some("{}")).await;
    let (s, _, _) = env.get(&format!("{WS}/computes?{API}"), Some(&tok)).await;
    assert_eq!(s, 200);
    env.emu.shutdown().await;
}
