//! Every running Jupyter server of the user, found through the runtime files each one writes
//! (`jpserver-<pid>.json`; classic Notebook: `nbserver-<pid>.json`) and removes on exit
//! (AGENT.md 1.3, [J3]). Each is polled for kernels, terminals and sessions with
//! `?no_track_activity=1`, so the agent's own polling does not look like use.
//!
//! The token from the runtime file goes only to a loopback address, in a header marked
//! sensitive, with redirects off; it is never logged, printed or put in an error. A file that
//! cannot be read, is half-written, points elsewhere, or whose server does not answer within
//! [`SERVER_TIMEOUT`] is skipped and said once per path.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::engine::activity::{JupyterSeen, JupyterServerSeen, JupyterTerminalSeen, KernelSeen};

/// The longest one server may take for all its answers.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(2);
/// A runtime file is a few hundred bytes.
const MAX_RUNTIME_FILE_BYTES: u64 = 64 * 1024;
/// The largest answer read (a server with thousands of kernels says a few MB).
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// The runtime files already warned about: a broken file is said once, not every interval.
static SAID: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Warns about `path` unless already done in this process; true if it warned.
fn say_once(path: &Path, why: &str) -> bool {
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    let first = said.get_or_insert_default().insert(path.to_owned());
    if first {
        tracing::warn!(file = %path.display(), "skipping a Jupyter runtime file: {why}");
    }
    first
}

/// The fields of a runtime file the agent uses (it also holds `root_dir`, `password`, …).
#[derive(Deserialize)]
struct RuntimeFile {
    url: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    sock: String,
}

/// Polls the servers; keeps one HTTP client across observations.
pub struct JupyterPoller {
    http: reqwest::Client,
}

impl JupyterPoller {
    pub fn new() -> anyhow::Result<JupyterPoller> {
        let http = reqwest::Client::builder()
            // A 3xx would carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(SERVER_TIMEOUT)
            .timeout(SERVER_TIMEOUT)
            // No proxy from the environment: the answer must come from this machine.
            .no_proxy()
            .build()
            .context("building the Jupyter HTTP client")?;
        Ok(JupyterPoller { http })
    }

    /// Every server whose runtime file is in `dir`, polled at once.
    pub async fn poll(&self, dir: &Path) -> JupyterSeen {
        let files = match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut files: Vec<PathBuf> = entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| is_runtime_file(p))
                    .collect();
                files.sort();
                files
            }
            // No Jupyter here (yet): nothing to say.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(e) => {
                say_once(dir, &format!("cannot list the directory: {e}"));
                vec![]
            }
        };
        let answers = futures_util::future::join_all(files.iter().map(|f| self.server(f))).await;
        let mut seen = JupyterSeen::default();
        for (file, answer) in files.iter().zip(answers) {
            match answer {
                Ok(server) => seen.servers.push(server),
                Err(why) => {
                    seen.skipped += 1;
                    say_once(file, &why);
                }
            }
        }
        seen
    }

    /// One server, or why it is skipped (text free of the token).
    async fn server(&self, file: &Path) -> Result<JupyterServerSeen, String> {
        // The directory is the user's: a FIFO or a device there must not hang the root agent.
        let meta = std::fs::metadata(file).map_err(|e| format!("unreadable: {e}"))?;
        if !meta.is_file() || meta.len() > MAX_RUNTIME_FILE_BYTES {
            return Err("not a regular file of a runtime file's size".into());
        }
        let text = std::fs::read_to_string(file).map_err(|e| format!("unreadable: {e}"))?;
        let rt: RuntimeFile =
            serde_json::from_str(&text).map_err(|e| format!("not a complete runtime file: {e}"))?;
        if !rt.sock.is_empty() {
            return Err("the server listens on a Unix socket (not supported)".into());
        }
        let base = local_url(&rt.url)?;
        let polled = tokio::time::timeout(SERVER_TIMEOUT, async {
            let (kernels, terminals, sessions) = tokio::join!(
                self.get::<Vec<KernelAnswer>>(&base, "api/kernels", &rt.token),
                self.get::<Vec<TerminalAnswer>>(&base, "api/terminals", &rt.token),
                self.get::<Vec<serde_json::Value>>(&base, "api/sessions", &rt.token),
            );
            // Kernels are the point; a server without the terminals extension says 404.
            Ok::<_, String>((
                kernels?,
                terminals.unwrap_or_default(),
                sessions.unwrap_or_default(),
            ))
        })
        .await
        .map_err(|_| format!("no answer from {base} within {SERVER_TIMEOUT:?}"))??;
        let (kernels, terminals, sessions) = polled;
        Ok(JupyterServerSeen {
            url: base.to_string(),
            kernels: kernels.into_iter().map(KernelAnswer::seen).collect(),
            terminals: terminals
                .into_iter()
                .map(|t| JupyterTerminalSeen {
                    name: t.name,
                    last_activity: t.last_activity.and_then(|s| s.parse().ok()),
                })
                .collect(),
            sessions: u32::try_from(sessions.len()).unwrap_or(u32::MAX),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        base: &url::Url,
        path: &str,
        token: &str,
    ) -> Result<T, String> {
        let mut url = base.join(path).map_err(|e| format!("bad URL: {e}"))?;
        url.set_query(Some("no_track_activity=1"));
        let mut req = self.http.get(url.clone());
        if !token.is_empty() {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("token {token}"))
                .map_err(|_| "the token is not a valid header value".to_owned())?;
            value.set_sensitive(true);
            req = req.header(reqwest::header::AUTHORIZATION, value);
        }
        // reqwest's errors name the URL, which holds no token.
        let mut resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url} answered {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER_BYTES {
                return Err(format!(
                    "{url}: answer larger than {MAX_ANSWER_BYTES} bytes"
                ));
            }
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: unexpected answer: {e}"))
    }
}

fn is_runtime_file(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        (n.starts_with("jpserver-") || n.starts_with("nbserver-")) && n.ends_with(".json")
    })
}

/// The server's base URL if it is on this machine's loopback (`localhost`, 127.0.0.0/8,
/// `::1`): the token goes nowhere else. `localhost` becomes 127.0.0.1, so no name lookup can
/// send it away either.
fn local_url(url: &str) -> Result<url::Url, String> {
    let mut u = url::Url::parse(url).map_err(|_| "the url field is not a URL".to_owned())?;
    if u.scheme() != "http" {
        return Err(format!(
            "scheme {} is not supported (http only)",
            u.scheme()
        ));
    }
    let local = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    if !local {
        return Err("the server is not on a loopback address".into());
    }
    if matches!(u.host(), Some(url::Host::Domain(_))) {
        u.set_host(Some("127.0.0.1"))
            .map_err(|_| "cannot rewrite the host".to_owned())?;
    }
    u.set_query(None);
    u.set_fragment(None);
    if !u.path().ends_with('/') {
        let path = format!("{}/", u.path());
        u.set_path(&path);
    }
    Ok(u)
}

#[derive(Deserialize)]
struct KernelAnswer {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    execution_state: String,
    #[serde(default)]
    last_activity: Option<String>,
    #[serde(default)]
    connections: u32,
}

impl KernelAnswer {
    fn seen(self) -> KernelSeen {
        KernelSeen {
            id: self.id,
            name: self.name,
            execution_state: self.execution_state,
            last_activity: self.last_activity.and_then(|s| s.parse().ok()),
            connections: self.connections,
        }
    }
}

#[derive(Deserialize)]
struct TerminalAnswer {
    name: String,
    #[serde(default)]
    last_activity: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_polled() {
        let ok = [
            ("http://localhost:8888/", "http://127.0.0.1:8888/"),
            (
                "http://127.0.0.1:8888/lab?token=x",
                "http://127.0.0.1:8888/lab/",
            ),
            ("http://[::1]:9999/base/", "http://[::1]:9999/base/"),
        ];
        for (from, to) in ok {
            assert_eq!(local_url(from).unwrap().as_str(), to, "{from}");
        }
        for bad in [
            "http://10.0.0.4:8888/",
            "http://example.com:8888/",
            "http://localhost.example.com/",
            "https://localhost:8888/",
            "not a url",
        ] {
            assert!(local_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_broken_file_is_skipped_every_time_and_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jpserver-1.json");
        std::fs::write(&file, r#"{"url": "http://127.0.0.1:1"#).unwrap();
        let poller = JupyterPoller::new().unwrap();
        for _ in 0..2 {
            let seen = poller.poll(dir.path()).await;
            assert_eq!((seen.servers.len(), seen.skipped), (0, 1));
        }
        assert!(!say_once(&file, "again"), "said twice");
        assert!(say_once(&dir.path().join("jpserver-2.json"), "new"));
    }

    #[test]
    fn runtime_files_are_jpserver_and_nbserver_json() {
        assert!(is_runtime_file(Path::new("/r/jpserver-12.json")));
        assert!(is_runtime_file(Path::new("/r/nbserver-12.json")));
        assert!(!is_runtime_file(Path::new("/r/jpserver-12-open.html")));
        assert!(!is_runtime_file(Path::new("/r/kernel-abc.json")));
    }
}
