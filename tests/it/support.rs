//! Binary-level test support: the emulator *binary* over HTTPS, and the lightsout binary run
//! against it with a config file and a client secret in its environment.
//!
//! Every process gets an outer timeout and the emulator is killed on drop, so a hung test fails
//! instead of hanging the suite.

// Helpers outside `#[test]` functions are test code too; a failed unwrap is a failed test.
#![expect(clippy::unwrap_used, reason = "test helpers")]
#![expect(dead_code, reason = "each test module uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_lightsout");
/// How long the emulator may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one lightsout command may run.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

pub const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
pub const ADMIN: (&str, &str) = ("11111111-1111-1111-1111-111111111111", "s3cret");
pub const READER: (&str, &str) = ("22222222-2222-2222-2222-222222222222", "readonly");
pub const SUB: &str = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345";
pub const RG: &str = "testrg123";
pub const WS: &str = "workspaces123";

/// The emulator's ready line.
#[derive(Debug, Clone, Deserialize)]
pub struct Ready {
    pub endpoint: String,
    pub ca_file: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Option<String>,
}

/// A fleet file: both principals (full and read-only), fast operations, generous limits unless
/// `extra` overrides them, `page_size = 2`, and one workspace with `instances` (name, state).
pub fn fleet(extra: &str, timing: &str, instances: &[(&str, &str)]) -> String {
    let mut s = format!(
        r#"tenant_id = "{TENANT}"
page_size = 2

[[principal]]
client_id = "{}"
client_secret = "{}"
actions = ["Microsoft.MachineLearningServices/workspaces/computes/*"]

[[principal]]
client_id = "{}"
client_secret = "{}"
actions = ["Microsoft.MachineLearningServices/workspaces/computes/read"]

[timing]
{timing}

{extra}

[[workspace]]
subscription_id = "{SUB}"
resource_group = "{RG}"
name = "{WS}"
location = "eastus2"
"#,
        ADMIN.0, ADMIN.1, READER.0, READER.1
    );
    for (name, state) in instances {
        s.push_str(&format!(
            "\n[[workspace.instance]]\nname = \"{name}\"\nvm_size = \"Standard_DS3_v2\"\nstate = \"{state}\"\nidle_time_before_shutdown = \"PT60M\"\n"
        ));
    }
    s
}

/// Every operation takes one second.
pub const FAST: &str =
    "create = \"1s\"\nstart = \"1s\"\nstop = \"1s\"\nrestart = \"1s\"\ndelete = \"1s\"";
/// Buckets no test drains by accident.
pub const GENEROUS: &str = "[limits]\nread_bucket = 10000\nread_refill_per_sec = 1000.0\nwrite_bucket = 10000\nwrite_refill_per_sec = 1000.0";

/// A running `lightsout emulator --tls` process; killed on drop.
pub struct EmulatorProcess {
    child: Child,
    pub ready: Ready,
    pub dir: tempfile::TempDir,
    /// A client trusting the emulator's CA.
    pub http: reqwest::Client,
}

/// One finished lightsout run.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit 0, showing both streams otherwise.
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        self
    }

    /// Asserts this exit code.
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "expected exit {code}: {self:#?}");
        self
    }

    /// stdout parsed as one JSON value.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

impl EmulatorProcess {
    /// Writes `fleet` and starts the emulator binary on a free port with TLS.
    pub async fn start(fleet: &str) -> EmulatorProcess {
        let dir = tempfile::tempdir().unwrap();
        let fleet_path = dir.path().join("fleet.toml");
        std::fs::write(&fleet_path, fleet).unwrap();
        let log = std::fs::File::create(dir.path().join("emulator.log")).unwrap();
        let mut child = Command::new(BIN)
            .args(["emulator", "--listen", "127.0.0.1:0", "--tls", "--fleet"])
            .arg(&fleet_path)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(READY_TIMEOUT, lines.next_line())
            .await
            .expect("emulator ready line in time")
            .unwrap()
            .expect("emulator printed a ready line");
        let ready: Ready = serde_json::from_str(&line).unwrap();
        // Keep reading stdout so the emulator never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let pem = std::fs::read(&ready.ca_file).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        EmulatorProcess {
            child,
            ready,
            dir,
            http,
        }
    }

    /// A config pointing at the emulator for `client_id`, with workspace alias `lab`.
    pub fn config(&self, client_id: &str) -> PathBuf {
        let r = &self.ready;
        let text = format!(
            r#"[azure]
arm_endpoint = "{ep}"
authority_host = "{ep}"
ca_file = "{ca}"
credential = "client_secret"
tenant_id = "{tenant}"
client_id = "{client_id}"
jupyter_token_scope = "https://ml.azure.com/.default"

[[workspace]]
name = "lab"
subscription_id = "{SUB}"
resource_group = "{RG}"
workspace = "{WS}"
region = "eastus2"
"#,
            ep = r.endpoint,
            ca = r.ca_file,
            tenant = r.tenant_id,
        );
        let path = self.dir.path().join(format!("lightsout-{client_id}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `lightsout ARGS --config CONFIG` with `secret` as `AZURE_CLIENT_SECRET`.
    pub async fn run(&self, config: &Path, secret: &str, args: &[&str]) -> Run {
        run_lightsout(args, Some(config), &[("AZURE_CLIENT_SECRET", secret)]).await
    }

    /// `GET /_emulator/calls`: every request the emulator saw.
    pub async fn calls(&self) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!("{}/_emulator/calls", self.ready.endpoint))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().unwrap().clone()
    }

    /// `GET /_emulator/state`: every instance as the emulator holds it.
    pub async fn state(&self) -> Value {
        self.http
            .get(format!("{}/_emulator/state", self.ready.endpoint))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `DELETE /_emulator/calls`.
    pub async fn clear_calls(&self) {
        let r = self
            .http
            .delete(format!("{}/_emulator/calls", self.ready.endpoint))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// `POST /_emulator/faults`.
    pub async fn faults(&self, faults: Value) {
        let r = self
            .http
            .post(format!("{}/_emulator/faults", self.ready.endpoint))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }

    /// A token for `who` with `scope` from the emulator's Entra ID.
    pub async fn token_for(&self, who: (&str, &str), scope: &str) -> String {
        let r = self
            .http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                self.ready.endpoint, self.ready.tenant_id
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([
                        ("grant_type", "client_credentials"),
                        ("client_id", who.0),
                        ("client_secret", who.1),
                        ("scope", scope),
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

    /// `GET {path}` on the Jupyter of `instance` at its real-shaped host
    /// (`{instance}.{region}.instances.azureml.ms`), which resolves to the emulator here.
    pub async fn jupyter_get(
        &self,
        instance: &str,
        region: &str,
        path: &str,
        token: &str,
    ) -> (u16, String) {
        let host = format!("{instance}.{region}.instances.azureml.ms");
        let addr: std::net::SocketAddr = self
            .ready
            .endpoint
            .trim_start_matches("https://")
            .parse()
            .unwrap();
        let pem = std::fs::read(&self.ready.ca_file).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .resolve(&host, addr)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let r = http
            .get(format!("https://{host}:{}{path}", addr.port()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The emulator's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("emulator.log")).unwrap_or_default()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        // kill_on_drop would do it too; be explicit, it is the point of this type.
        drop(self.child.start_kill());
    }
}

/// Runs the lightsout binary with a clean environment plus `env`.
pub async fn run_lightsout(args: &[&str], config: Option<&Path>, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    // No AZURE_* or LIGHTSOUT_CONFIG from the developer's shell may leak in.
    cmd.env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("lightsout {args:?} did not finish within {RUN_TIMEOUT:?}"))
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Fails the test if `f` takes longer than `secs`.
pub async fn within<F: std::future::Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test finished in time")
}

/// A free local port (bound then released; the process under test binds it a moment later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
