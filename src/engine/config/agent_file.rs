//! The on-instance agent's own config file, `/etc/lightsout/agent.toml`, written by the setup
//! script from `CI_RESOURCE_GROUP`, `CI_WORKSPACE` and `CI_NAME` (which only setup scripts
//! see: AGENT.md section 2.4).
//!
//! Same two stages as the daemon's config: [`RawAgentFile`] mirrors the TOML and rejects
//! unknown keys; [`parse`] checks it and reports every problem at once with its line and
//! column. Pure: the agent reads the file and hands the text over.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::validate::line_col;
use super::{ConfigError, Diagnostic};
use crate::engine::activity::Thresholds;

/// Where `lightsout agent run` reads its config by default.
pub const DEFAULT_AGENT_CONFIG: &str = "/etc/lightsout/agent.toml";
/// How often the agent observes and writes its heartbeat (AGENT.md section 5.4: 60 s).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Bounds of `interval`: faster only costs storage transactions; slower than five minutes
/// makes a heartbeat stale (three intervals) after a quarter of an hour.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// See [`MIN_INTERVAL`].
pub const MAX_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// How long CPU and GPU are sampled per observation.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// The local socket `lightsout snooze` talks to; its directory is the unit's
/// `RuntimeDirectory=lightsout-agent`.
pub const DEFAULT_SNOOZE_SOCKET: &str = "/run/lightsout-agent/snooze.sock";
/// Where the agent keeps its snooze and `last_activity` across restarts (on the OS disk,
/// which survives a stop; `/mnt` does not: AGENT.md section 1.1).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lightsout-agent";
/// The instance's interactive user (`CI_LOCAL_UBUNTU_USER` "points to azureuser").
pub const DEFAULT_USER: &str = "azureuser";

/// The file exactly as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentFile {
    pub subscription_id: Option<Spanned<String>>,
    pub resource_group: Option<Spanned<String>>,
    pub workspace: Option<Spanned<String>>,
    pub instance: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub account: Option<Spanned<String>>,
    pub container: Option<Spanned<String>>,
    pub interval: Option<Spanned<String>>,
    pub client_id: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    pub snooze_socket: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub signals: RawAgentSignals,
}

/// `[signals]`: the collector's knobs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentSignals {
    pub window: Option<Spanned<String>>,
    pub cpu_core_pct: Option<Spanned<f64>>,
    pub container_core_pct: Option<Spanned<f64>>,
    pub gpu_util_pct: Option<Spanned<f64>>,
    pub terminal_input_window: Option<Spanned<String>>,
    pub vscode_counts_alone: Option<bool>,
}

/// The validated agent config.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentFile {
    /// Not needed to write a heartbeat; recorded for people (no `CI_*` variable carries it).
    pub subscription_id: Option<String>,
    pub resource_group: String,
    /// The Azure ML workspace's own name (`CI_WORKSPACE`): the heartbeat's folder.
    pub workspace: String,
    /// The compute instance's name (`CI_NAME`): the heartbeat's blob name.
    pub instance: String,
    pub user: String,
    /// The blob service endpoint, `https://ACCOUNT.blob.core.windows.net`.
    pub account: Url,
    pub container: String,
    pub interval: Duration,
    /// The managed identity's client id; else `DEFAULT_IDENTITY_CLIENT_ID`.
    pub client_id: Option<String>,
    /// Extra trusted certificates (PEM), for a storage emulator.
    pub ca_file: Option<PathBuf>,
    pub snooze_socket: PathBuf,
    pub state_dir: PathBuf,
    pub signals: AgentSignals,
}

/// `[signals]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSignals {
    /// How long CPU and GPU are sampled; shorter than `interval`.
    pub window: Duration,
    /// Where use begins, per signal (`engine::activity`).
    pub thresholds: Thresholds,
}

struct Checker<'a> {
    text: &'a str,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, span: Option<std::ops::Range<usize>>, message: String) {
        let (line, column) = span.map_or((0, 0), |s| line_col(self.text, s.start));
        self.out.push(Diagnostic {
            line,
            column,
            message,
            warning: false,
        });
    }

    /// A required key's value, or an error naming it.
    fn required<'v>(
        &mut self,
        v: &'v Option<Spanned<String>>,
        key: &str,
        what: &str,
    ) -> Option<&'v Spanned<String>> {
        if v.is_none() {
            self.error(None, format!("{key}: missing ({what})"));
        }
        v.as_ref()
    }

    fn duration(
        &mut self,
        key: &str,
        v: &Spanned<String>,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        match humantime::parse_duration(v.get_ref()) {
            Ok(d) if (min..=max).contains(&d) => Some(d),
            Ok(_) => {
                self.error(
                    Some(v.span()),
                    format!(
                        "{key}: must be between {} and {}, got {:?}",
                        humantime::format_duration(min),
                        humantime::format_duration(max),
                        v.get_ref()
                    ),
                );
                None
            }
            Err(e) => {
                self.error(
                    Some(v.span()),
                    format!(
                        "{key}: invalid duration {:?} ({e}); use e.g. \"60s\"",
                        v.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn absolute(&mut self, key: &str, v: &Option<Spanned<String>>, default: &str) -> PathBuf {
        match v {
            Some(p) if !Path::new(p.get_ref()).is_absolute() => {
                self.error(
                    Some(p.span()),
                    format!("{key}: must be an absolute path, got {:?}", p.get_ref()),
                );
                PathBuf::from(default)
            }
            Some(p) => PathBuf::from(p.get_ref()),
            None => PathBuf::from(default),
        }
    }
}

/// A name that becomes part of a blob path: printable ASCII, no `/`, 1 to 255 characters.
fn name_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() || s.len() > 255 {
        Some("must be 1 to 255 characters")
    } else if s.contains('/') || s.contains('\\') {
        Some("must not contain a slash")
    } else if !s.bytes().all(|b| b.is_ascii_graphic()) {
        Some("must be printable ASCII without spaces")
    } else {
        None
    }
}

/// `account`: the blob endpoint, an https URL with a host and without a query (the token goes
/// there). Also `lightsout agent setup-script --account`'s rule, so a script never writes an
/// account the agent refuses.
pub fn account_url(s: &str) -> Result<Url, String> {
    match Url::parse(s) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() && u.query().is_none() => Ok(u),
        Ok(_) => Err(format!(
            "must be an https URL without a query (the token goes there), got {s:?}"
        )),
        Err(e) => Err(format!("not a URL ({e}): {s:?}")),
    }
}

/// Azure's container naming rules: 3 to 63 lower-case letters, digits and single hyphens,
/// starting and ending with a letter or digit ("Naming and Referencing Containers").
pub fn container_problem(s: &str) -> Option<&'static str> {
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !(3..=63).contains(&s.len()) || !ok_chars {
        Some("must be 3 to 63 lower-case letters, digits and hyphens")
    } else if s.starts_with('-') || s.ends_with('-') || s.contains("--") {
        Some("must start and end with a letter or digit, without double hyphens")
    } else {
        None
    }
}

/// `[signals]` thresholds over [`Thresholds::default`].
fn check_thresholds(c: &mut Checker<'_>, raw: &RawAgentSignals) -> Thresholds {
    let mut t = Thresholds::default();
    for (key, value, slot) in [
        (
            "signals.cpu_core_pct",
            &raw.cpu_core_pct,
            &mut t.cpu_core_pct,
        ),
        (
            "signals.container_core_pct",
            &raw.container_core_pct,
            &mut t.container_core_pct,
        ),
        (
            "signals.gpu_util_pct",
            &raw.gpu_util_pct,
            &mut t.gpu_util_pct,
        ),
    ] {
        if let Some(v) = value {
            // Above 0 (zero would call every instance busy), at most 100 of one core.
            if *v.get_ref() > 0.0 && *v.get_ref() <= 100.0 {
                *slot = *v.get_ref();
            } else {
                c.error(
                    Some(v.span()),
                    format!(
                        "{key}: must be above 0 and at most 100, got {}",
                        v.get_ref()
                    ),
                );
            }
        }
    }
    if let Some(v) = &raw.terminal_input_window
        && let Some(d) = c.duration(
            "signals.terminal_input_window",
            v,
            Duration::from_secs(60),
            Duration::from_secs(24 * 3600),
        )
    {
        t.terminal_input_window = d;
    }
    if let Some(b) = raw.vscode_counts_alone {
        t.vscode_counts_alone = b;
    }
    t
}

/// Checks the text of an agent config; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<AgentFile, ConfigError> {
    let invalid = |diagnostics| ConfigError::Invalid {
        path: path.to_path_buf(),
        diagnostics,
    };
    let raw: RawAgentFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
        invalid(vec![Diagnostic {
            line,
            column,
            message: e.message().trim().to_owned(),
            warning: false,
        }])
    })?;
    let mut c = Checker {
        text,
        out: Vec::new(),
    };
    let mut names = Vec::new();
    for (key, value, what) in [
        ("resource_group", &raw.resource_group, "CI_RESOURCE_GROUP"),
        (
            "workspace",
            &raw.workspace,
            "the workspace's name, CI_WORKSPACE",
        ),
        (
            "instance",
            &raw.instance,
            "the compute instance's name, CI_NAME",
        ),
    ] {
        let got = c
            .required(value, key, what)
            .and_then(|v| match name_problem(v.get_ref()) {
                Some(p) => {
                    c.error(Some(v.span()), format!("{key}: {p}, got {:?}", v.get_ref()));
                    None
                }
                None => Some(v.get_ref().clone()),
            });
        names.push(got.unwrap_or_default());
    }
    let account = c
        .required(
            &raw.account,
            "account",
            "the blob endpoint, https://ACCOUNT.blob.core.windows.net",
        )
        .and_then(|v| match account_url(v.get_ref()) {
            Ok(u) => Some(u),
            Err(p) => {
                c.error(Some(v.span()), format!("account: {p}"));
                None
            }
        });
    let container = c
        .required(&raw.container, "container", "the heartbeat container")
        .and_then(|v| match container_problem(v.get_ref()) {
            Some(p) => {
                c.error(
                    Some(v.span()),
                    format!("container: {p}, got {:?}", v.get_ref()),
                );
                None
            }
            None => Some(v.get_ref().clone()),
        });
    let interval = raw
        .interval
        .as_ref()
        .and_then(|v| c.duration("interval", v, MIN_INTERVAL, MAX_INTERVAL))
        .unwrap_or(DEFAULT_INTERVAL);
    let window = match &raw.signals.window {
        Some(v) => match c.duration(
            "signals.window",
            v,
            Duration::from_secs(1),
            Duration::from_secs(300),
        ) {
            // The sample must end before the next observation is due.
            Some(w) if w >= interval => {
                c.error(
                    Some(v.span()),
                    format!(
                        "signals.window: must be shorter than interval ({}), got {:?}",
                        humantime::format_duration(interval),
                        v.get_ref()
                    ),
                );
                DEFAULT_WINDOW
            }
            Some(w) => w,
            None => DEFAULT_WINDOW,
        },
        None => DEFAULT_WINDOW.min(interval / 2),
    };
    let thresholds = check_thresholds(&mut c, &raw.signals);
    let user = match &raw.user {
        Some(v) if name_problem(v.get_ref()).is_some() || v.get_ref().starts_with('-') => {
            c.error(
                Some(v.span()),
                format!("user: not a user name: {:?}", v.get_ref()),
            );
            DEFAULT_USER.to_owned()
        }
        Some(v) => v.get_ref().clone(),
        None => DEFAULT_USER.to_owned(),
    };
    let mut optional_id = |key: &str, v: &Option<Spanned<String>>| match v {
        Some(v) if v.get_ref().is_empty() => None,
        Some(v) if name_problem(v.get_ref()).is_some() => {
            c.error(
                Some(v.span()),
                format!("{key}: must be printable ASCII, got {:?}", v.get_ref()),
            );
            None
        }
        Some(v) => Some(v.get_ref().clone()),
        None => None,
    };
    let subscription_id = optional_id("subscription_id", &raw.subscription_id);
    let client_id = optional_id("client_id", &raw.client_id);
    let ca_file = raw.ca_file.as_ref().map(|v| PathBuf::from(v.get_ref()));
    let snooze_socket = c.absolute("snooze_socket", &raw.snooze_socket, DEFAULT_SNOOZE_SOCKET);
    let state_dir = c.absolute("state_dir", &raw.state_dir, DEFAULT_STATE_DIR);
    match (account, container) {
        (Some(account), Some(container)) if c.out.is_empty() => {
            let [resource_group, workspace, instance]: [String; 3] =
                names.try_into().unwrap_or_default();
            Ok(AgentFile {
                subscription_id,
                resource_group,
                workspace,
                instance,
                user,
                account,
                container,
                interval,
                client_id,
                ca_file,
                snooze_socket,
                state_dir,
                signals: AgentSignals { window, thresholds },
            })
        }
        _ => Err(invalid(c.out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"resource_group = "rg"
workspace = "ws-1"
instance = "ci-alice"
account = "https://acct.blob.core.windows.net"
container = "lightsout-heartbeats"
"#;

    fn errors(text: &str) -> String {
        match parse(text, Path::new("agent.toml")) {
            Ok(f) => panic!("accepted: {f:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_minimal_file_gets_the_defaults() {
        let f = parse(GOOD, Path::new("agent.toml")).expect("valid");
        assert_eq!(f.instance, "ci-alice");
        assert_eq!(f.workspace, "ws-1");
        assert_eq!(f.user, "azureuser");
        assert_eq!(f.interval, Duration::from_secs(60));
        assert_eq!(f.signals.window, Duration::from_secs(10));
        assert_eq!(f.snooze_socket, PathBuf::from(DEFAULT_SNOOZE_SOCKET));
        assert_eq!(f.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(f.client_id, None);
        assert_eq!(f.signals.thresholds, Thresholds::default());
    }

    #[test]
    fn thresholds_are_read_and_bounded() {
        let f = parse(
            &format!("{GOOD}[signals]\ncpu_core_pct = 30.0\nterminal_input_window = \"30m\"\nvscode_counts_alone = true\n"),
            Path::new("agent.toml"),
        )
        .expect("valid");
        assert_eq!(f.signals.thresholds.cpu_core_pct, 30.0);
        assert_eq!(
            f.signals.thresholds.terminal_input_window,
            Duration::from_secs(1800)
        );
        assert!(f.signals.thresholds.vscode_counts_alone);
        let e = errors(&format!(
            "{GOOD}[signals]\ngpu_util_pct = 0.0\nterminal_input_window = \"5s\"\n"
        ));
        assert!(
            e.contains("agent.toml:7:16: signals.gpu_util_pct: must be above 0"),
            "{e}"
        );
        assert!(
            e.contains(
                "agent.toml:8:25: signals.terminal_input_window: must be between 1m and 1day"
            ),
            "{e}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_position() {
        let text = r#"resource_group = "rg"
workspace = "a/b"
account = "http://acct.blob.core.windows.net"
container = "Heartbeats"
interval = "2s"
state_dir = "relative"
"#;
        let e = errors(text);
        assert!(e.contains("agent.toml: instance: missing"), "{e}");
        assert!(
            e.contains("agent.toml:2:13: workspace: must not contain a slash"),
            "{e}"
        );
        assert!(
            e.contains("agent.toml:3:11: account: must be an https URL"),
            "{e}"
        );
        assert!(
            e.contains("agent.toml:4:13: container: must be 3 to 63"),
            "{e}"
        );
        assert!(
            e.contains("agent.toml:5:12: interval: must be between 5s and 5m"),
            "{e}"
        );
        assert!(
            e.contains("agent.toml:6:13: state_dir: must be an absolute path"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_and_a_window_as_long_as_the_interval_are_refused() {
        let e = errors(&format!("{GOOD}colour = \"blue\"\n"));
        assert!(e.contains("agent.toml:6:1: unknown field `colour`"), "{e}");
        let e = errors(&format!(
            "{GOOD}interval = \"10s\"\n[signals]\nwindow = \"10s\"\n"
        ));
        assert!(
            e.contains("agent.toml:8:10: signals.window: must be shorter than interval"),
            "{e}"
        );
    }

    #[test]
    fn container_names_follow_azure_rules() {
        for good in ["abc", "lightsout-heartbeats", "a1-b2"] {
            assert_eq!(container_problem(good), None, "{good}");
        }
        for bad in ["ab", "-abc", "abc-", "a--b", "ABC", "a_b", &"a".repeat(64)] {
            assert!(container_problem(bad).is_some(), "{bad}");
        }
    }
}
