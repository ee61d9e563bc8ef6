//! Azurite, Microsoft's Azure Storage emulator (npm `azurite`, pinned in tests/azurite), as a
//! real process for the blob tests: blob service only, HTTPS with a certificate for 127.0.0.1
//! made here with rcgen, OAuth on (`--oauth basic`: token shape, lifetime, issuer and
//! audience are checked, the signature is not), blobs on disk in a temp dir so a restart
//! keeps them. Killed by process id on drop.
//!
//! Install it with `make azurite-deps` (CI does; a missing Azurite fails, never skips).

#![expect(clippy::unwrap_used, reason = "test helpers")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tokio::process::{Child, Command};

/// Azurite's one built-in account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// How long Azurite may take to answer after start (node loads ~450 packages).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The azurite-blob launcher installed by `make azurite-deps`.
pub fn azurite_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/azurite/node_modules/.bin/azurite-blob")
}

/// A running Azurite blob service.
pub struct Azurite {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// The CA that signed Azurite's certificate (PEM), for `ca_file`.
    pub ca_file: PathBuf,
    /// A client trusting `ca_file`, with our redirect policy.
    pub http: reqwest::Client,
}

impl Azurite {
    /// Starts Azurite on a free loopback port and waits until it answers.
    pub async fn start() -> Azurite {
        let bin = azurite_bin();
        assert!(
            bin.exists(),
            "{} is missing: run make azurite-deps (npm ci --prefix tests/azurite)",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let ca_file = write_certs(dir.path());
        let http = lightsout::azure::build_http_client(
            Some(&ca_file),
            lightsout::azure::HttpTimeouts {
                connect: Duration::from_secs(5),
                request: Duration::from_secs(60),
            },
        )
        .unwrap();
        let mut a = Azurite {
            child: None,
            port: super::support::free_port(),
            dir,
            ca_file,
            http,
        };
        a.spawn().await;
        a
    }

    /// `https://127.0.0.1:PORT/devstoreaccount1`.
    pub fn account_url(&self) -> url::Url {
        url::Url::parse(&format!("https://127.0.0.1:{}/{ACCOUNT}", self.port)).unwrap()
    }

    /// `host:port` as errors name it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops Azurite: SIGTERM by pid (it saves its metadata database on the way out, which
    /// it otherwise does only every 5 s), SIGKILL if it is still there after 10 s.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = c.id() {
                drop(
                    Command::new("kill")
                        .args(["-TERM", &pid.to_string()])
                        .status()
                        .await,
                );
            }
            if tokio::time::timeout(Duration::from_secs(10), c.wait())
                .await
                .is_err()
            {
                drop(c.start_kill());
                drop(c.wait().await);
            }
        }
    }

    /// Stops and starts again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    /// A PEM bundle of Azurite's CA and `other` (e.g. the emulator's `ca.pem`): one
    /// `ca_file` for a process that talks to both, as the daemon does.
    pub fn ca_bundle_with(&self, other: &Path) -> PathBuf {
        let mut pem = std::fs::read(&self.ca_file).unwrap();
        pem.extend(std::fs::read(other).unwrap());
        let path = self.dir.path().join("bundle.pem");
        std::fs::write(&path, pem).unwrap();
        path
    }

    /// Azurite's output so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("azurite.log")).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let d = self.dir.path();
        let data = d.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("azurite.log"))
            .unwrap();
        let child = Command::new(azurite_bin())
            .args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(self.port.to_string())
            .args(["--oauth", "basic", "--disableTelemetry"])
            .arg("--cert")
            .arg(d.join("azurite-cert.pem"))
            .arg("--key")
            .arg(d.join("azurite-key.pem"))
            .arg("--location")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Ready = it answers HTTPS on the account (403 without a token is an answer).
        let url = format!("{}?restype=service&comp=properties", self.account_url());
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if self.http.get(&url).send().await.is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("azurite exited ({status}) at start:\n{}", self.log());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "azurite did not answer within {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            drop(c.start_kill());
        }
    }
}

/// Writes a CA (`ca.pem`) and Azurite's certificate and key for 127.0.0.1 signed by it.
fn write_certs(dir: &Path) -> PathBuf {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "lightsout test CA (azurite)");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("azurite-cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("azurite-key.pem"), key.serialize_pem()).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    ca_path
}

/// A credential that hands out one token obtained elsewhere (from the emulator's Entra ID),
/// so a test controls exactly which token Azurite sees.
#[derive(Debug)]
pub struct FixedToken(pub String);

#[async_trait::async_trait]
impl TokenCredential for FixedToken {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            Secret::new(self.0.clone()),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

impl Azurite {
    /// A client on `container` that sends `token` (a storage token from the emulator).
    pub fn client_with(
        &self,
        container: &str,
        token: String,
    ) -> lightsout::azure::blob::BlobClient {
        lightsout::azure::blob::BlobClient::new(
            self.http.clone(),
            self.account_url(),
            container,
            fixed(token),
        )
        .unwrap()
    }
}

/// `FixedToken` behind an `Arc<dyn TokenCredential>`.
pub fn fixed(token: String) -> Arc<dyn TokenCredential> {
    Arc::new(FixedToken(token))
}
