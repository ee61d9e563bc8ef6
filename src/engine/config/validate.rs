//! Stage two of config loading: raw TOML structs into validated settings.
//!
//! Pure: takes the file's text, returns the typed [`Config`] or every problem found, each
//! with its position and the key path, quoting the bad value. Never stops at the first
//! error (vector's config compiler does the same).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use globset::GlobMatcher;
use toml::Spanned;
use url::Url;

use super::Diagnostic;
use super::auth::{AuthSettings, Cloud, CredentialKind};
use super::raw::{
    RawAgent, RawAzure, RawConfig, RawDaemon, RawException, RawHttp, RawIdle, RawNative, RawPolicy,
    RawPricing, RawWorkspace,
};
use crate::engine::model::WorkspaceRef;
use crate::engine::native::types::{NativeMode, NativePolicy};
use crate::engine::native::{MAX_IDLE_SHUTDOWN, MIN_IDLE_SHUTDOWN};
use crate::engine::policy::{
    DEFAULT_CATCH_UP, DEFAULT_MAX_SNOOZE, Enforcement, Event, IdleRule, MAX_MAX_SNOOZE, Policy,
    Signals, StartMode, UnknownActivity,
};
use crate::engine::schedule::{CronExpr, Desired, EventAction, Exception, Schedule, Window};

/// Poll interval when `[daemon] poll_interval` is absent.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);
/// Shortest poll interval accepted: below this ARM's read budget drains for no benefit.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// State directory when `[daemon] state_dir` is absent.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lightsout";
/// `[http] listen` default: loopback only, so metrics are not exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// How often the daemon polls an accepted operation when Azure sends no `Retry-After` (real
/// ARM sends none; operations take 30 s to 3.5 min: `tests/fixtures/azure/recorded/`).
pub const DEFAULT_OPERATION_POLL_INTERVAL: Duration = Duration::from_secs(15);
/// Bounds of `[daemon] operation_poll_interval`: faster only spends ARM's read budget (short
/// values are for emulators with second-long operations); slower than 5 minutes loses the
/// point of following at all.
pub const MIN_OPERATION_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// See [`MIN_OPERATION_POLL_INTERVAL`].
pub const MAX_OPERATION_POLL_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// `[daemon] audit_retention` default: more than a year, so a year-on-year question can be
/// answered from the audit log.
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(400 * 86_400);
/// Bounds of `[daemon] audit_retention`: at least a day (the daemon prunes daily), at most
/// ten years (every config duration's ceiling).
pub const MIN_AUDIT_RETENTION: Duration = Duration::from_secs(86_400);
/// See [`MIN_AUDIT_RETENTION`].
pub const MAX_AUDIT_RETENTION: Duration = MAX_CONFIG_DURATION;
/// `[daemon] max_concurrent_actions` default.
pub const DEFAULT_MAX_CONCURRENT_ACTIONS: usize = 8;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonSettings,
    pub http: HttpSettings,
    pub azure: AzureSettings,
    /// In file order; aliases are unique.
    pub workspaces: Vec<Workspace>,
    pub pricing: PricingSettings,
    /// In file order: an instance is governed by the first that matches it.
    pub policies: Vec<Policy>,
    /// `[agent]`: where the on-instance agents' heartbeats are; `None`: no agent signal.
    pub agent: Option<AgentSettings>,
}

/// `[agent] container` default.
pub const DEFAULT_AGENT_CONTAINER: &str = "lightsout-heartbeats";
/// `[agent] interval` default: the agents beat once a minute.
pub const DEFAULT_AGENT_INTERVAL: Duration = Duration::from_secs(60);
/// Bounds of `[agent] interval`.
pub const MIN_AGENT_INTERVAL: Duration = Duration::from_secs(10);
/// See [`MIN_AGENT_INTERVAL`].
pub const MAX_AGENT_INTERVAL: Duration = Duration::from_secs(3600);
/// Longest `[agent] staleness`: a heartbeat older than a day says nothing about now.
pub const MAX_AGENT_STALENESS: Duration = Duration::from_secs(86_400);

/// `[agent]`, the daemon's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    /// The container of the heartbeats in every account.
    pub container: String,
    /// The agents' interval.
    pub interval: Duration,
    /// A heartbeat older than this (or than three of its own intervals, if longer) is stale:
    /// activity unknown. At least `interval`; default three intervals.
    pub staleness: Duration,
}

impl Config {
    /// The workspace with this alias.
    pub fn workspace(&self, alias: &str) -> Option<&Workspace> {
        self.workspaces.iter().find(|w| w.name == alias)
    }
}

/// `[daemon]`.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    pub poll_interval: Duration,
    pub state_dir: PathBuf,
    pub dry_run: bool,
    /// At least 1.
    pub max_concurrent_actions: usize,
    /// Delay between polls of an accepted operation when Azure gives no `Retry-After`
    /// (a `Retry-After` wins, capped at a minute).
    pub operation_poll_interval: Duration,
    /// Final audit records older than this are deleted (pending ones never are).
    pub audit_retention: Duration,
}

/// `[http]`.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub listen: SocketAddr,
}

/// `[azure]`. Holds no secret: the client secret comes from the environment or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureSettings {
    pub cloud: Cloud,
    pub arm_endpoint: Url,
    pub authority_host: Url,
    pub credential: CredentialKind,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// Token scope for the instances' Jupyter servers (`jupyter` signal); no default: the
    /// probe sends it to every instance host, so it must never be ARM's.
    pub jupyter_token_scope: Option<String>,
}

impl AzureSettings {
    /// What the credential builder needs (everything but the ARM endpoint).
    pub fn auth(&self) -> AuthSettings {
        AuthSettings {
            credential: self.credential,
            tenant_id: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            client_secret_file: self.client_secret_file.clone(),
            authority_host: self.authority_host.clone(),
            ca_file: self.ca_file.clone(),
        }
    }
}

impl Default for AzureSettings {
    fn default() -> Self {
        let cloud = Cloud::Public;
        AzureSettings {
            cloud,
            arm_endpoint: parse_known_url(cloud.arm_endpoint()),
            authority_host: parse_known_url(cloud.authority_host()),
            credential: CredentialKind::Auto,
            tenant_id: None,
            client_id: None,
            client_secret_file: None,
            ca_file: None,
            jupyter_token_scope: None,
        }
    }
}

/// One `[[workspace]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// The alias used by policies, the CLI and metric labels.
    pub name: String,
    pub reference: WorkspaceRef,
    /// Azure region, for prices and for creating instances.
    pub region: Option<String>,
    /// The blob endpoint of the storage account holding this workspace's heartbeats
    /// (`[[workspace]] agent_account`, else `[agent] account`); `None` without `[agent]`.
    pub agent_account: Option<Url>,
}

/// Where prices come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    Table,
    RetailApi,
}

/// `[pricing]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PricingSettings {
    /// ISO 4217 code, upper case.
    pub currency: String,
    pub source: PriceSource,
    pub retail_api_endpoint: Url,
    /// Compute price per hour, keyed by lower-cased vm size.
    pub vm_hourly: BTreeMap<String, f64>,
    /// What a stopped instance still costs per hour, by component.
    pub stopped_hourly: BTreeMap<String, f64>,
}

impl Default for PricingSettings {
    fn default() -> Self {
        PricingSettings {
            currency: "USD".to_owned(),
            source: PriceSource::Table,
            retail_api_endpoint: parse_known_url("https://prices.azure.com"),
            vm_hourly: BTreeMap::new(),
            stopped_hourly: BTreeMap::new(),
        }
    }
}

/// Parse a URL written in this file as a literal; they are all valid.
fn parse_known_url(s: &str) -> Url {
    Url::parse(s).unwrap_or_else(|e| unreachable!("built-in URL {s} is invalid: {e}"))
}

/// Collects diagnostics with positions computed from byte spans of the source text.
struct Checker<'a> {
    text: &'a str,
    out: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    fn at(&mut self, span: Range<usize>, message: String, warning: bool) {
        let (line, column) = line_col(self.text, span.start);
        self.out.push(Diagnostic {
            line,
            column,
            message,
            warning,
        });
    }

    fn error(&mut self, span: Range<usize>, message: String) {
        self.at(span, message, false);
    }

    fn warn(&mut self, span: Range<usize>, message: String) {
        self.at(span, message, true);
    }

    fn error_count(&self) -> usize {
        self.out.iter().filter(|d| !d.warning).count()
    }

    fn has_errors(&self) -> bool {
        self.out.iter().any(|d| !d.warning)
    }
}

/// 1-based line and character column of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Parse and validate config text.
pub fn from_str(text: &str) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
            return Err(vec![Diagnostic {
                line,
                column,
                message: e.message().trim().to_owned(),
                warning: false,
            }]);
        }
    };
    let mut c = Checker {
        text,
        out: Vec::new(),
    };
    let daemon = check_daemon(&mut c, &raw.daemon);
    let http = check_http(&mut c, &raw.http);
    let azure = check_azure(&mut c, &raw.azure);
    let (agent, agent_account) = match &raw.agent {
        Some(a) => {
            let (settings, account) = check_agent(&mut c, a.get_ref(), azure.cloud);
            (Some(settings), account)
        }
        None => (None, None),
    };
    let mut workspaces = check_workspaces(&mut c, &raw.workspace);
    check_agent_accounts(&mut c, &raw, &mut workspaces, agent_account, azure.cloud);
    let pricing = raw
        .pricing
        .as_ref()
        .map_or_else(PricingSettings::default, |p| check_pricing(&mut c, p));
    let policies = check_policies(&mut c, &raw, &workspaces, agent.is_some());
    check_jupyter_needs_scope(&mut c, &raw, &azure);
    if c.has_errors() {
        return Err(c.out);
    }
    Ok((
        Config {
            daemon,
            http,
            azure,
            workspaces,
            pricing,
            policies,
            agent,
        },
        c.out,
    ))
}

/// Longest duration any key accepts: beyond it a value is a typo, and sums with it overflow.
pub const MAX_CONFIG_DURATION: Duration = Duration::from_secs(3650 * 86_400);
/// Longest `[daemon] poll_interval`: a daemon that looks less often than hourly cannot keep
/// a schedule, and its watchdog works in multiples of it.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(3600);
/// Longest idle `timeout`, `min_uptime`, `max_uptime` and `catch_up`.
pub const MAX_POLICY_DURATION: Duration = Duration::from_secs(90 * 86_400);

/// The checks that look at the file system (not pure: [`super::load`] runs them after
/// [`from_str`]): `azure.client_secret_file` must not be readable by group or others, as ssh
/// insists for keys. A file that does not exist yet is left to the daemon's start.
pub fn check_files(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<Diagnostic> {
    let Ok(raw) = toml::from_str::<RawConfig>(text) else {
        return Vec::new();
    };
    let mut c = Checker {
        text,
        out: Vec::new(),
    };
    if let Some(v) = &raw.azure.client_secret_file {
        let path = super::auth::secret_file_path(std::path::Path::new(v.get_ref()), env);
        if let Ok(Some(mode)) = super::auth::secret_file_mode_problem(&path, env) {
            c.error(
                v.span(),
                format!(
                    "azure.client_secret_file: {} is readable by group or others (mode {mode:04o}); run chmod 600 on it",
                    path.display()
                ),
            );
        }
    }
    c.out
}

/// A config duration (`"90s"`, `"45m"`, `"2h 30m"`, `"400d"`, `"2days"`). Read by humantime,
/// not jiff: jiff's friendly format reads into a `SignedDuration` only units up to hours, so
/// `"400d"` (an audit retention) and `"3days"` (an idle shutdown) would stop parsing.
fn duration(c: &mut Checker<'_>, key: &str, v: &Spanned<String>) -> Option<Duration> {
    match humantime::parse_duration(v.get_ref()) {
        Ok(d) if d > MAX_CONFIG_DURATION => {
            c.error(
                v.span(),
                format!("{key}: must be at most 3650d, got {:?}", v.get_ref()),
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            c.error(
                v.span(),
                format!(
                    "{key}: invalid duration {:?} ({e}); use e.g. \"90s\", \"45m\", \"12h\"",
                    v.get_ref()
                ),
            );
            None
        }
    }
}

/// A policy duration, at most [`MAX_POLICY_DURATION`].
fn policy_duration(c: &mut Checker<'_>, key: &str, v: &Spanned<String>) -> Option<Duration> {
    let d = duration(c, key, v)?;
    if d > MAX_POLICY_DURATION {
        c.error(
            v.span(),
            format!("{key}: must be at most 90d, got {:?}", v.get_ref()),
        );
        return None;
    }
    Some(d)
}

fn check_daemon(c: &mut Checker<'_>, raw: &RawDaemon) -> DaemonSettings {
    let mut poll_interval = DEFAULT_POLL_INTERVAL;
    if let Some(v) = &raw.poll_interval
        && let Some(d) = duration(c, "daemon.poll_interval", v)
    {
        if !(MIN_POLL_INTERVAL..=MAX_POLL_INTERVAL).contains(&d) {
            c.error(
                v.span(),
                format!(
                    "daemon.poll_interval: must be between 5s and 1h, got {:?}",
                    v.get_ref()
                ),
            );
        } else {
            poll_interval = d;
        }
    }
    let mut max_concurrent_actions = DEFAULT_MAX_CONCURRENT_ACTIONS;
    if let Some(v) = &raw.max_concurrent_actions {
        match usize::try_from(*v.get_ref()) {
            Ok(n) if (1..=256).contains(&n) => max_concurrent_actions = n,
            _ => c.error(
                v.span(),
                format!(
                    "daemon.max_concurrent_actions: must be between 1 and 256, got {}",
                    v.get_ref()
                ),
            ),
        }
    }
    let mut operation_poll_interval = DEFAULT_OPERATION_POLL_INTERVAL;
    if let Some(v) = &raw.operation_poll_interval
        && let Some(d) = duration(c, "daemon.operation_poll_interval", v)
    {
        if (MIN_OPERATION_POLL_INTERVAL..=MAX_OPERATION_POLL_INTERVAL).contains(&d) {
            operation_poll_interval = d;
        } else {
            c.error(
                v.span(),
                format!(
                    "daemon.operation_poll_interval: must be between 1s and 5m, got {:?}",
                    v.get_ref()
                ),
            );
        }
    }
    let mut audit_retention = DEFAULT_AUDIT_RETENTION;
    if let Some(v) = &raw.audit_retention
        && let Some(d) = duration(c, "daemon.audit_retention", v)
    {
        if (MIN_AUDIT_RETENTION..=MAX_AUDIT_RETENTION).contains(&d) {
            audit_retention = d;
        } else {
            c.error(
                v.span(),
                format!(
                    "daemon.audit_retention: must be between 1d and 3650d, got {:?}",
                    v.get_ref()
                ),
            );
        }
    }
    let state_dir = match &raw.state_dir {
        Some(v) if v.get_ref().is_empty() => {
            c.error(v.span(), "daemon.state_dir: must not be empty".to_owned());
            PathBuf::from(DEFAULT_STATE_DIR)
        }
        Some(v) => PathBuf::from(v.get_ref()),
        None => PathBuf::from(DEFAULT_STATE_DIR),
    };
    DaemonSettings {
        poll_interval,
        state_dir,
        dry_run: raw.dry_run.unwrap_or(false),
        max_concurrent_actions,
        operation_poll_interval,
        audit_retention,
    }
}

fn check_http(c: &mut Checker<'_>, raw: &RawHttp) -> HttpSettings {
    let default: SocketAddr = DEFAULT_LISTEN
        .parse()
        .unwrap_or_else(|e| unreachable!("built-in listen address is invalid: {e}"));
    let listen = match &raw.listen {
        Some(v) => v.get_ref().parse().unwrap_or_else(|_| {
            c.error(
                v.span(),
                format!(
                    "http.listen: expected IP:PORT such as \"127.0.0.1:9464\", got {:?}",
                    v.get_ref()
                ),
            );
            default
        }),
        None => default,
    };
    HttpSettings { listen }
}

fn url_field(c: &mut Checker<'_>, key: &str, v: &Spanned<String>) -> Option<Url> {
    match Url::parse(v.get_ref()) {
        Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {
            if u.scheme() == "http" && key == "azure.authority_host" {
                // azure_identity refuses plain-http authorities; say so now, not at first token.
                c.error(
                    v.span(),
                    format!("{key}: must use https, got {:?}", v.get_ref()),
                );
                return None;
            }
            if u.scheme() == "http" && key == "azure.arm_endpoint" && !super::auth::is_loopback(&u)
            {
                // Every ARM request carries a bearer token: cleartext only to this machine.
                c.error(
                    v.span(),
                    format!(
                        "{key}: must use https (http only on loopback: 127.0.0.1, ::1, localhost), got {:?}",
                        v.get_ref()
                    ),
                );
                return None;
            }
            Some(u)
        }
        _ => {
            c.error(
                v.span(),
                format!(
                    "{key}: expected an absolute http(s) URL, got {:?}",
                    v.get_ref()
                ),
            );
            None
        }
    }
}

fn check_azure(c: &mut Checker<'_>, raw: &RawAzure) -> AzureSettings {
    let mut s = AzureSettings::default();
    if let Some(v) = &raw.cloud {
        match v.get_ref().parse::<Cloud>() {
            Ok(cloud) => {
                s.cloud = cloud;
                s.arm_endpoint = parse_known_url(cloud.arm_endpoint());
                s.authority_host = parse_known_url(cloud.authority_host());
            }
            Err(_) => c.error(
                v.span(),
                format!(
                    "azure.cloud: expected one of public, china, usgov, got {:?}",
                    v.get_ref()
                ),
            ),
        }
    }
    if let Some(v) = &raw.arm_endpoint
        && let Some(u) = url_field(c, "azure.arm_endpoint", v)
    {
        s.arm_endpoint = u;
    }
    if let Some(v) = &raw.authority_host
        && let Some(u) = url_field(c, "azure.authority_host", v)
    {
        s.authority_host = u;
    }
    if let Some(v) = &raw.credential {
        match v.get_ref().parse::<CredentialKind>() {
            Ok(k) => s.credential = k,
            Err(_) => c.error(
                v.span(),
                format!(
                    "azure.credential: expected one of auto, client_secret, managed_identity, workload_identity, azure_cli, got {:?}",
                    v.get_ref()
                ),
            ),
        }
    }
    if let Some(v) = &raw.client_secret {
        // Never quote the value: it is a secret.
        c.error(
            v.span(),
            "azure.client_secret: secrets are not read from the config file; set AZURE_CLIENT_SECRET or azure.client_secret_file".to_owned(),
        );
    }
    for (key, field, out) in [
        ("azure.tenant_id", &raw.tenant_id, &mut s.tenant_id),
        ("azure.client_id", &raw.client_id, &mut s.client_id),
    ] {
        if let Some(v) = field {
            if v.get_ref().trim().is_empty() {
                c.error(v.span(), format!("{key}: must not be empty"));
            } else {
                *out = Some(v.get_ref().clone());
            }
        }
    }
    s.client_secret_file = raw
        .client_secret_file
        .as_ref()
        .map(|v| PathBuf::from(v.get_ref()));
    s.ca_file = raw.ca_file.as_ref().map(|v| PathBuf::from(v.get_ref()));
    if let Some(v) = &raw.jupyter_token_scope {
        match jupyter_scope(v.get_ref(), &s.arm_endpoint) {
            Ok(scope) => s.jupyter_token_scope = Some(scope),
            Err(why) => c.error(
                v.span(),
                format!("azure.jupyter_token_scope: {why}, got {:?}", v.get_ref()),
            ),
        }
    }
    s
}

/// A scope for tokens sent to instance hosts: `{audience}/.default`, and never ARM's (an
/// ARM token can start, stop and rewrite every compute; an instance host must not get it).
fn jupyter_scope(v: &str, arm: &Url) -> Result<String, &'static str> {
    let Some(audience) = v.strip_suffix("/.default") else {
        return Err(
            "expected an audience followed by /.default (e.g. https://ml.azure.com/.default)",
        );
    };
    if audience.is_empty() || v.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
        return Err("expected an audience followed by /.default, without spaces");
    }
    let host = Url::parse(audience)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    let arm_host = arm.host_str().map(str::to_ascii_lowercase);
    if host.is_some()
        && (host == arm_host
            || host
                .as_deref()
                .is_some_and(|h| h.starts_with("management.")))
    {
        return Err(
            "must not be the Azure Resource Manager scope: that token could start, stop and change every compute, and the probe sends it to every instance host",
        );
    }
    Ok(v.to_owned())
}

/// A policy that counts Jupyter activity needs `[azure] jupyter_token_scope`: without it
/// the probe would have no token it may send to instance hosts.
fn check_jupyter_needs_scope(c: &mut Checker<'_>, raw: &RawConfig, azure: &AzureSettings) {
    if azure.jupyter_token_scope.is_some() {
        return;
    }
    for (i, p) in raw.policy.iter().enumerate() {
        let signals = p.idle.as_ref().and_then(|idle| idle.signals.as_ref());
        for s in signals.into_iter().flatten() {
            if s.get_ref() == "jupyter" {
                c.error(
                    s.span(),
                    format!(
                        "policy[{i}] ({}).idle.signals: names jupyter, but azure.jupyter_token_scope is not set; \
                         the probe sends a token to every instance's Jupyter host, and it must come from a scope meant for that, never ARM's \
                         (set azure.jupyter_token_scope, e.g. \"https://ml.azure.com/.default\", see docs/operations.md, or remove \"jupyter\")",
                        p.name.get_ref()
                    ),
                );
            }
        }
    }
}

/// `[agent]`: the container, the agents' interval and the staleness limit (with their
/// bounds), and the default account's blob endpoint.
fn check_agent(c: &mut Checker<'_>, raw: &RawAgent, cloud: Cloud) -> (AgentSettings, Option<Url>) {
    let account = raw
        .account
        .as_ref()
        .and_then(|v| agent_account(c, "agent.account", v, cloud));
    let mut container = DEFAULT_AGENT_CONTAINER.to_owned();
    if let Some(v) = &raw.container {
        match check_container_name(v.get_ref()) {
            Ok(()) => container = v.get_ref().clone(),
            Err(why) => c.error(
                v.span(),
                format!("agent.container: {why}, got {:?}", v.get_ref()),
            ),
        }
    }
    let mut interval = DEFAULT_AGENT_INTERVAL;
    if let Some(v) = &raw.interval
        && let Some(d) = duration(c, "agent.interval", v)
    {
        if (MIN_AGENT_INTERVAL..=MAX_AGENT_INTERVAL).contains(&d) {
            interval = d;
        } else {
            c.error(
                v.span(),
                format!(
                    "agent.interval: must be between 10s and 1h, got {:?}",
                    v.get_ref()
                ),
            );
        }
    }
    let mut staleness = interval.saturating_mul(3);
    if let Some(v) = &raw.staleness
        && let Some(d) = duration(c, "agent.staleness", v)
    {
        if d < interval {
            // Shorter than one beat: every heartbeat would be stale before the next one.
            c.error(
                v.span(),
                format!(
                    "agent.staleness: must be at least agent.interval ({}), got {:?}",
                    humantime::format_duration(interval),
                    v.get_ref()
                ),
            );
        } else if d > MAX_AGENT_STALENESS {
            c.error(
                v.span(),
                format!("agent.staleness: must be at most 1d, got {:?}", v.get_ref()),
            );
        } else {
            staleness = d;
        }
    }
    (
        AgentSettings {
            container,
            interval,
            staleness,
        },
        account,
    )
}

/// The blob endpoint of a storage account: an https URL (`https://NAME.blob.core.windows.net`,
/// or an emulator's `https://127.0.0.1:10000/devstoreaccount1`) or a bare account name, which
/// becomes that account's endpoint in the configured cloud. Never http: every request carries
/// a bearer token.
fn agent_account(c: &mut Checker<'_>, key: &str, v: &Spanned<String>, cloud: Cloud) -> Option<Url> {
    let text = v.get_ref();
    if is_storage_account_name(text) {
        return storage_account_endpoint(text, cloud);
    }
    match Url::parse(text) {
        Ok(u)
            if u.scheme() == "https"
                && u.host_str().is_some()
                && u.query().is_none()
                && u.fragment().is_none()
                && u.username().is_empty()
                && u.password().is_none() =>
        {
            Some(u)
        }
        _ => {
            c.error(
                v.span(),
                format!(
                    "{key}: expected a storage account name (3 to 24 lower-case letters and digits) \
                     or its https blob endpoint such as \"https://NAME.blob.core.windows.net\", got {text:?}"
                ),
            );
            None
        }
    }
}

/// The blob endpoint of the storage account `name` in `cloud`
/// (`https://NAME.blob.core.windows.net` in the public cloud); `None` when `name` is not a
/// storage account name. Also used by `lightsout agent setup-script --account NAME`.
pub(crate) fn storage_account_endpoint(name: &str, cloud: Cloud) -> Option<Url> {
    if !is_storage_account_name(name) {
        return None;
    }
    let suffix = match cloud {
        Cloud::Public => "core.windows.net",
        Cloud::China => "core.chinacloudapi.cn",
        Cloud::UsGov => "core.usgovcloudapi.net",
    };
    Url::parse(&format!("https://{name}.blob.{suffix}")).ok()
}

/// Azure's rule for storage account names: 3 to 24 lower-case letters and digits.
fn is_storage_account_name(s: &str) -> bool {
    (3..=24).contains(&s.len())
        && s.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
}

/// Azure's rule for container names (Blob service REST reference, "Naming and referencing
/// containers"): 3 to 63 characters, lower-case letters, digits and single hyphens, starting
/// and ending with a letter or digit.
fn check_container_name(s: &str) -> Result<(), &'static str> {
    let ok_chars = s
        .chars()
        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
    if !(3..=63).contains(&s.len())
        || !ok_chars
        || s.starts_with('-')
        || s.ends_with('-')
        || s.contains("--")
    {
        return Err(
            "expected 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit",
        );
    }
    Ok(())
}

/// Every workspace's heartbeat account: its own `agent_account`, else `[agent] account`.
/// With `[agent]`, every workspace needs one; without it, `agent_account` is an error.
fn check_agent_accounts(
    c: &mut Checker<'_>,
    raw: &RawConfig,
    workspaces: &mut [Workspace],
    default: Option<Url>,
    cloud: Cloud,
) {
    for (i, w) in raw.workspace.iter().enumerate() {
        let key = format!("workspace[{i}].agent_account");
        let own = match (&w.agent_account, &raw.agent) {
            (Some(v), None) => {
                c.error(
                    v.span(),
                    format!("{key}: set, but there is no [agent] section; add one (see docs/operations.md, \"The on-instance agent: daemon side\") or remove it"),
                );
                continue;
            }
            (Some(v), Some(_)) => agent_account(c, &key, v, cloud),
            (None, _) => None,
        };
        let Some(agent) = &raw.agent else { continue };
        let account = own.or_else(|| default.clone());
        if account.is_none() && w.agent_account.is_none() && agent.get_ref().account.is_none() {
            c.error(
                agent.span(),
                format!(
                    "agent.account: missing, and workspace[{i}] ({}) has no agent_account; \
                     name the storage account of the heartbeats (e.g. account = \"mlwstorage123\")",
                    w.name.get_ref()
                ),
            );
        }
        if let Some(ws) = workspaces
            .iter_mut()
            .find(|ws| ws.name == *w.name.get_ref())
        {
            ws.agent_account = account;
        }
    }
}

fn check_workspaces(c: &mut Checker<'_>, raw: &[RawWorkspace]) -> Vec<Workspace> {
    let mut out: Vec<Workspace> = Vec::new();
    for (i, w) in raw.iter().enumerate() {
        let key = |k: &str| format!("workspace[{i}].{k}");
        let mut ok = true;
        for (k, v) in [
            ("name", &w.name),
            ("subscription_id", &w.subscription_id),
            ("resource_group", &w.resource_group),
            ("workspace", &w.workspace),
        ] {
            if v.get_ref().trim().is_empty() {
                c.error(v.span(), format!("{}: must not be empty", key(k)));
                ok = false;
            }
        }
        // These go into every ARM URL path: Azure's own rules, checked before any request.
        for (k, v, check) in [
            (
                "resource_group",
                &w.resource_group,
                crate::engine::names::check_resource_group
                    as fn(&str) -> Result<(), crate::engine::names::NameError>,
            ),
            (
                "workspace",
                &w.workspace,
                crate::engine::names::check_workspace,
            ),
        ] {
            if !v.get_ref().trim().is_empty()
                && let Err(e) = check(v.get_ref())
            {
                c.error(v.span(), format!("{}: {e}", key(k)));
                ok = false;
            }
        }
        if !is_guid(w.subscription_id.get_ref()) {
            c.error(
                w.subscription_id.span(),
                format!(
                    "{}: expected a subscription GUID, got {:?}",
                    key("subscription_id"),
                    w.subscription_id.get_ref()
                ),
            );
            ok = false;
        }
        if out.iter().any(|o| o.name == *w.name.get_ref()) {
            c.error(
                w.name.span(),
                format!(
                    "{}: duplicate workspace alias {:?}",
                    key("name"),
                    w.name.get_ref()
                ),
            );
            ok = false;
        }
        if ok {
            out.push(Workspace {
                name: w.name.get_ref().clone(),
                reference: WorkspaceRef {
                    subscription_id: w.subscription_id.get_ref().clone(),
                    resource_group: w.resource_group.get_ref().clone(),
                    workspace: w.workspace.get_ref().clone(),
                },
                region: w.region.as_ref().map(|r| r.get_ref().clone()),
                agent_account: None,
            });
        }
    }
    out
}

/// 8-4-4-4-12 hex digits.
fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.chars().all(|ch| ch.is_ascii_hexdigit()))
}

fn check_pricing(c: &mut Checker<'_>, raw: &RawPricing) -> PricingSettings {
    let mut p = PricingSettings::default();
    if let Some(v) = &raw.currency {
        let cur = v.get_ref();
        if cur.len() == 3 && cur.chars().all(|ch| ch.is_ascii_alphabetic()) {
            p.currency = cur.to_ascii_uppercase();
        } else {
            c.error(
                v.span(),
                format!("pricing.currency: expected an ISO 4217 code such as \"USD\", got {cur:?}"),
            );
        }
    }
    if let Some(v) = &raw.source {
        let choices = [
            ("table", PriceSource::Table),
            ("retail_api", PriceSource::RetailApi),
        ];
        if let Some(source) = enum_key(c, "pricing.source", v, &choices) {
            p.source = source;
        }
    }
    if let Some(v) = &raw.retail_api_endpoint
        && let Some(u) = url_field(c, "pricing.retail_api_endpoint", v)
    {
        p.retail_api_endpoint = u;
    }
    for (table, raw_map, out) in [
        ("vm_hourly", &raw.vm_hourly, &mut p.vm_hourly),
        ("stopped_hourly", &raw.stopped_hourly, &mut p.stopped_hourly),
    ] {
        for (k, v) in raw_map {
            let price = *v.get_ref();
            if !price.is_finite() || price < 0.0 {
                c.error(
                    v.span(),
                    format!("pricing.{table}.{k}: must be a non-negative number, got {price}"),
                );
            } else {
                out.insert(k.to_ascii_lowercase(), price);
            }
        }
    }
    p
}

/// The value of an enum-valued key: the one of `choices` (spelling, value) that `v` spells,
/// or an error naming them all (`KEY: expected a, b or c, got "x"`) and `None`.
fn enum_key<T: Copy>(
    c: &mut Checker<'_>,
    key: &str,
    v: &Spanned<String>,
    choices: &[(&str, T)],
) -> Option<T> {
    if let Some((_, value)) = choices.iter().find(|(name, _)| name == v.get_ref()) {
        return Some(*value);
    }
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    let expected = match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    c.error(
        v.span(),
        format!("{key}: expected {expected}, got {:?}", v.get_ref()),
    );
    None
}

/// Every `[[policy]]`, in order; a policy with an error is left out (the config is
/// rejected anyway), so that later checks see only whole policies.
fn check_policies(
    c: &mut Checker<'_>,
    raw: &RawConfig,
    ws: &[Workspace],
    agent: bool,
) -> Vec<Policy> {
    let mut out: Vec<Policy> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, p) in raw.policy.iter().enumerate() {
        let errors_before = c.error_count();
        let name = p.name.get_ref();
        if name.trim().is_empty() {
            c.error(
                p.name.span(),
                format!("policy[{i}].name: must not be empty"),
            );
        } else if names.contains(name) {
            c.error(
                p.name.span(),
                format!("policy[{i}].name: duplicate policy name {name:?}"),
            );
        }
        names.push(name.clone());
        let policy = check_policy(c, &format!("policy[{i}] ({name})"), p, ws, agent);
        if let Some(earlier) = out.iter().find(|e| governs_everything_of(e, &policy)) {
            c.warn(
                p.name.span(),
                format!(
                    "policy[{i}] ({name}): can never match: policy {:?} above it matches every instance it would",
                    earlier.name
                ),
            );
        }
        if c.error_count() == errors_before {
            out.push(policy);
        }
    }
    out
}

/// One `[[policy]]` (`at` names it in messages: `policy[0] (office)`), section by section.
fn check_policy(
    c: &mut Checker<'_>,
    at: &str,
    p: &RawPolicy,
    ws: &[Workspace],
    agent: bool,
) -> Policy {
    let key = |k: &str| format!("{at}.{k}");
    let instances = check_selectors(c, at, p, ws);
    let schedule = check_schedule(c, at, p);
    let start = match &p.start {
        None => StartMode::Never,
        Some(v) => {
            let choices = [("never", StartMode::Never), ("window", StartMode::Window)];
            let start = enum_key(c, &key("start"), v, &choices).unwrap_or(StartMode::Never);
            if start == StartMode::Window && p.uptime.as_ref().is_none_or(Vec::is_empty) {
                c.error(
                    v.span(),
                    format!("{}: \"window\" needs uptime windows to open", key("start")),
                );
            }
            start
        }
    };
    let enforcement = p
        .enforcement
        .as_ref()
        .and_then(|v| {
            let choices = [
                ("transition", Enforcement::Transition),
                ("always", Enforcement::Always),
            ];
            enum_key(c, &key("enforcement"), v, &choices)
        })
        .unwrap_or(Enforcement::Transition);
    let catch_up = p
        .catch_up
        .as_ref()
        .and_then(|v| policy_duration(c, &key("catch_up"), v))
        .unwrap_or(DEFAULT_CATCH_UP);
    let unknown_activity = p
        .unknown_activity
        .as_ref()
        .and_then(|v| {
            let choices = [
                ("proceed", UnknownActivity::Proceed),
                ("hold", UnknownActivity::Hold),
            ];
            enum_key(c, &key("unknown_activity"), v, &choices)
        })
        .unwrap_or_default();
    let max_snooze = match &p.max_snooze {
        Some(v) => match duration(c, &key("max_snooze"), v) {
            Some(d) if d > MAX_MAX_SNOOZE => {
                c.error(
                    v.span(),
                    format!(
                        "{}: must be at most 7d, got {:?}",
                        key("max_snooze"),
                        v.get_ref()
                    ),
                );
                DEFAULT_MAX_SNOOZE
            }
            Some(d) => d,
            None => DEFAULT_MAX_SNOOZE,
        },
        None => DEFAULT_MAX_SNOOZE,
    };
    let idle = p
        .idle
        .as_ref()
        .map(|raw_idle| check_idle(c, &key("idle"), p, raw_idle, agent));
    let events = check_events(c, at, p);
    let no_windows = p.uptime.as_ref().is_none_or(Vec::is_empty);
    if no_windows
        && p.idle.is_none()
        && p.event.is_empty()
        && p.exceptions.is_empty()
        && p.holidays.is_empty()
    {
        c.error(
            p.name.span(),
            format!("{at}: does nothing: it has no uptime window, no [policy.idle] rule and no [[policy.event]]"),
        );
    }
    let native = p
        .native
        .as_ref()
        .map(|raw| check_native(c, &key("native"), p, raw, &schedule, start, &events))
        .unwrap_or_default();
    Policy {
        name: p.name.get_ref().clone(),
        workspaces: p
            .workspaces
            .as_ref()
            .map(|l| l.iter().map(|s| s.get_ref().clone()).collect()),
        instances,
        tags: p
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect(),
        schedule,
        start,
        enforcement,
        catch_up,
        unknown_activity,
        max_snooze,
        default_signals: Signals::default_with(agent),
        idle: idle.flatten(),
        events,
        native,
    }
}

/// `workspaces` (known aliases) and `instances` (globs, compiled).
fn check_selectors(
    c: &mut Checker<'_>,
    at: &str,
    p: &RawPolicy,
    ws: &[Workspace],
) -> Vec<GlobMatcher> {
    let key = |k: &str| format!("{at}.{k}");
    if let Some(list) = &p.workspaces {
        if list.is_empty() {
            c.warn(
                p.name.span(),
                format!(
                    "{}: empty list: the policy can never match",
                    key("workspaces")
                ),
            );
        }
        for alias in list {
            if !ws.iter().any(|w| w.name == *alias.get_ref()) {
                c.error(
                    alias.span(),
                    format!(
                        "{}: unknown workspace alias {:?} (no [[workspace]] has that name)",
                        key("workspaces"),
                        alias.get_ref()
                    ),
                );
            }
        }
    }
    let mut instances = Vec::new();
    if let Some(list) = &p.instances {
        if list.is_empty() {
            c.warn(
                p.name.span(),
                format!(
                    "{}: empty list: the policy can never match",
                    key("instances")
                ),
            );
        }
        for g in list {
            match globset::Glob::new(g.get_ref()) {
                Ok(glob) => instances.push(glob.compile_matcher()),
                Err(e) => c.error(
                    g.span(),
                    format!(
                        "{}: invalid glob {:?}: {}",
                        key("instances"),
                        g.get_ref(),
                        e.kind()
                    ),
                ),
            }
        }
    }
    instances
}

/// `timezone`, `uptime` windows, `holidays` and `exceptions`: the policy's [`Schedule`].
fn check_schedule(c: &mut Checker<'_>, at: &str, p: &RawPolicy) -> Schedule {
    let key = |k: &str| format!("{at}.{k}");
    let tz = match &p.timezone {
        Some(v) => match jiff::tz::TimeZone::get(v.get_ref()) {
            Ok(tz) => tz,
            Err(_) => {
                c.error(
                    v.span(),
                    format!(
                        "{}: unknown IANA time zone {:?}; use a name such as \"Europe/Paris\"",
                        key("timezone"),
                        v.get_ref()
                    ),
                );
                jiff::tz::TimeZone::UTC
            }
        },
        None => jiff::tz::TimeZone::UTC,
    };
    let mut schedule = Schedule::new(tz);
    for w in p.uptime.iter().flatten() {
        match w.get_ref().parse::<Window>() {
            Ok(win) => {
                if win.open == win.close {
                    c.warn(
                        w.span(),
                        format!(
                            "{}: {:?} opens and closes at the same time; it is a 24-hour window",
                            key("uptime"),
                            w.get_ref()
                        ),
                    );
                }
                if let Some(other) = schedule.windows.iter().find(|o| windows_overlap(o, &win)) {
                    c.warn(
                        w.span(),
                        format!(
                            "{}: {:?} overlaps {:?}",
                            key("uptime"),
                            w.get_ref(),
                            other.to_string()
                        ),
                    );
                }
                schedule.windows.push(win);
            }
            Err(e) => c.error(w.span(), format!("{}: {e}", key("uptime"))),
        }
    }
    if p.uptime.as_ref().is_some_and(Vec::is_empty) {
        c.warn(
            p.name.span(),
            format!(
                "{}: empty list: no schedule, instances may run at any time",
                key("uptime")
            ),
        );
    }
    for h in &p.holidays {
        match h.get_ref().parse::<jiff::civil::Date>() {
            Ok(d) => {
                schedule.holidays.insert(d);
            }
            Err(_) => c.error(
                h.span(),
                format!(
                    "{}: invalid date {:?}; use YYYY-MM-DD",
                    key("holidays"),
                    h.get_ref()
                ),
            ),
        }
    }
    for e in &p.exceptions {
        if let Some(exception) = check_exception(c, at, e) {
            schedule.exceptions.push(exception);
        }
    }
    schedule
}

/// One of `exceptions`: local times that parse, in order, and a state.
fn check_exception(c: &mut Checker<'_>, at: &str, e: &Spanned<RawException>) -> Option<Exception> {
    let key = |k: &str| format!("{at}.{k}");
    let raw_e = e.get_ref();
    let mut parse_dt =
        |v: &Spanned<String>, k: &str| match v.get_ref().parse::<jiff::civil::DateTime>() {
            Ok(dt) => Some(dt),
            Err(_) => {
                c.error(
                    v.span(),
                    format!(
                        "{}: invalid local time {:?}; use YYYY-MM-DDTHH:MM",
                        key(k),
                        v.get_ref()
                    ),
                );
                None
            }
        };
    let from = parse_dt(&raw_e.from, "exceptions.from");
    let to = parse_dt(&raw_e.to, "exceptions.to");
    let choices = [("up", Desired::Up), ("down", Desired::Down)];
    let state = enum_key(c, &key("exceptions.state"), &raw_e.state, &choices);
    let (from, to, state) = (from?, to?, state?);
    if to <= from {
        c.error(
            e.span(),
            format!(
                "{}: ends ({:?}) before it begins ({:?})",
                key("exceptions"),
                raw_e.to.get_ref(),
                raw_e.from.get_ref()
            ),
        );
        return None;
    }
    Some(Exception { from, to, state })
}

/// `[[policy.event]]`: a cron expression and an action each.
fn check_events(c: &mut Checker<'_>, at: &str, p: &RawPolicy) -> Vec<Event> {
    let key = |k: &str| format!("{at}.{k}");
    let mut events = Vec::new();
    for ev in &p.event {
        let cron = CronExpr::parse(ev.cron.get_ref())
            .map_err(|e| c.error(ev.cron.span(), format!("{}: {e}", key("event.cron"))))
            .ok();
        let choices = [
            ("start", EventAction::Start),
            ("stop", EventAction::Stop),
            ("restart", EventAction::Restart),
        ];
        let action = enum_key(c, &key("event.action"), &ev.action, &choices);
        if let (Some(cron), Some(action)) = (cron, action) {
            events.push(Event { cron, action });
        }
    }
    events
}

fn check_idle(
    c: &mut Checker<'_>,
    key: &str,
    p: &RawPolicy,
    raw: &RawIdle,
    agent: bool,
) -> Option<IdleRule> {
    let d = |c: &mut Checker<'_>, k: &str, v: &Option<Spanned<String>>| {
        v.as_ref()
            .and_then(|v| policy_duration(c, &format!("{key}.{k}"), v))
    };
    let timeout = d(c, "timeout", &raw.timeout);
    let min_uptime = d(c, "min_uptime", &raw.min_uptime).unwrap_or(Duration::ZERO);
    let max_uptime = d(c, "max_uptime", &raw.max_uptime);
    let mut signals = Signals::default();
    match &raw.signals {
        None if agent => {
            // With `[agent]` the default sees interactive use: ARM's jobs and the agent.
            signals = Signals::default_with(true);
        }
        None => {
            signals = Signals::DEFAULT;
            // ARM only sees jobs: an idle timeout on that alone would stop an instance
            // someone is typing in. Naming the sources is the user's statement that this
            // is what they want (CONTRACT section 0).
            if let Some(t) = &raw.timeout {
                c.error(
                    t.span(),
                    format!(
                        "{key}.timeout: an idle rule needs a source that sees interactive use, and the default signals (arm) see only jobs; \
                         configure [agent] (the on-instance agent: the default becomes [\"arm\", \"agent\"]), \
                         name signals = [\"arm\"] for job-only instances, add \"jupyter\" where the daemon's identity may open the instances' Jupyter (Shared instances), \
                         or leave idleness to Azure's own idle shutdown with [policy.native] idle_shutdown = \"{}\" and mode = \"enforce\"",
                        t.get_ref()
                    ),
                );
            }
        }
        Some(list) => {
            if list.is_empty() {
                // An empty list would stand for "ARM only" without saying so.
                let span = raw.timeout.as_ref().map_or(p.name.span(), Spanned::span);
                c.error(
                    span,
                    format!(
                        "{key}.signals: empty list; name arm (jobs), jupyter, agent, or several"
                    ),
                );
            }
            for s in list {
                match s.get_ref().as_str() {
                    "arm" => signals.arm = true,
                    "jupyter" => signals.jupyter = true,
                    "agent" if agent => signals.agent = true,
                    "agent" => c.error(
                        s.span(),
                        format!(
                            "{key}.signals: names agent, but there is no [agent] section: the daemon would not know where the heartbeats are \
                             (add [agent] with account = \"STORAGE_ACCOUNT\", see docs/operations.md, or remove \"agent\")"
                        ),
                    ),
                    other => c.error(
                        s.span(),
                        format!("{key}.signals: unknown activity source {other:?}; expected arm, jupyter or agent"),
                    ),
                }
            }
        }
    }
    // Without timeout or max_uptime the section only tunes the stops of the schedule and
    // events (signals, min_uptime); on a policy with neither it would never act.
    let schedules_or_events = p.uptime.as_ref().is_some_and(|w| !w.is_empty())
        || !p.event.is_empty()
        || !p.exceptions.is_empty();
    if raw.timeout.is_none() && raw.max_uptime.is_none() && !schedules_or_events {
        c.error(
            p.name.span(),
            format!(
                "{key}: needs timeout or max_uptime (without a schedule or events, an idle rule without either never acts)"
            ),
        );
    }
    if let (Some(v), Some(t)) = (&raw.timeout, timeout)
        && t < MIN_IDLE_TIMEOUT
    {
        c.error(
            v.span(),
            format!("{key}.timeout: must be at least 5m, got {:?}", v.get_ref()),
        );
    }
    if let (Some(v), Some(max)) = (&raw.max_uptime, max_uptime)
        && max <= min_uptime
    {
        c.error(
            v.span(),
            format!(
                "{key}.max_uptime: must be longer than min_uptime, got {:?}",
                v.get_ref()
            ),
        );
    }
    Some(IdleRule {
        timeout,
        min_uptime,
        max_uptime,
        signals,
        signals_named: raw.signals.is_some(),
    })
}

/// `[policy.native]`: the mode, Azure's bounds on the idle shutdown, and (with
/// `schedules = "mirror"` and a mode other than off) every part of the policy that native
/// schedules cannot carry, each as its own error.
fn check_native(
    c: &mut Checker<'_>,
    key: &str,
    p: &RawPolicy,
    raw: &RawNative,
    schedule: &Schedule,
    start: StartMode,
    events: &[Event],
) -> NativePolicy {
    let mut out = NativePolicy::default();
    if let Some(v) = &raw.mode {
        let choices = [
            ("off", NativeMode::Off),
            ("report", NativeMode::Report),
            ("enforce", NativeMode::Enforce),
        ];
        if let Some(mode) = enum_key(c, &format!("{key}.mode"), v, &choices) {
            out.mode = mode;
        }
    }
    if let Some(v) = &raw.idle_shutdown
        && let Some(d) = duration(c, &format!("{key}.idle_shutdown"), v)
    {
        if !(MIN_IDLE_SHUTDOWN..=MAX_IDLE_SHUTDOWN).contains(&d) {
            c.error(
                v.span(),
                format!(
                    "{key}.idle_shutdown: Azure accepts 15m to 3days, got {:?}",
                    v.get_ref()
                ),
            );
        } else if d.as_secs() % 60 != 0 {
            c.error(
                v.span(),
                format!(
                    "{key}.idle_shutdown: must be whole minutes, got {:?}",
                    v.get_ref()
                ),
            );
        } else {
            out.idle_shutdown = Some(d);
        }
    }
    if let Some(v) = &raw.schedules {
        if v.get_ref() != "mirror" {
            c.error(
                v.span(),
                format!(
                    "{key}.schedules: expected \"mirror\" (or leave it out), got {:?}",
                    v.get_ref()
                ),
            );
        } else {
            match crate::engine::native::mirror(schedule, start, events) {
                Ok(list) => out.schedules = Some(list),
                Err(problems) if out.mode != NativeMode::Off => {
                    for problem in problems {
                        c.error(
                            v.span(),
                            format!("{key}.schedules: policy cannot be mirrored: {problem}"),
                        );
                    }
                }
                // Off: nothing is mirrored, so nothing needs to be expressible yet.
                Err(_) => {}
            }
        }
    }
    if out.mode != NativeMode::Off && raw.idle_shutdown.is_none() && raw.schedules.is_none() {
        c.warn(
            p.name.span(),
            format!(
                "{key}: mode {:?} manages nothing: set idle_shutdown or schedules = \"mirror\"",
                out.mode.as_str()
            ),
        );
    }
    out
}

/// Shortest idle timeout: activity sources report with minute granularity.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Whether `earlier` matches at least every instance `later` matches (so `later` is dead).
fn governs_everything_of(earlier: &Policy, later: &Policy) -> bool {
    let ws_ok = match (&earlier.workspaces, &later.workspaces) {
        (None, _) => true,
        (Some(e), Some(l)) => l.iter().all(|w| e.contains(w)),
        (Some(_), None) => false,
    };
    let inst_ok = earlier.instances.is_empty();
    let tags_ok = earlier
        .tags
        .iter()
        .all(|(k, v)| later.tags.get(k) == Some(v));
    ws_ok && inst_ok && tags_ok
}

/// Whether two windows are open at the same time on some day of a week (minute of week).
fn windows_overlap(a: &Window, b: &Window) -> bool {
    const WEEK: u32 = 7 * 24 * 60;
    let spans = |w: &Window| -> Vec<(u32, u32)> {
        let open = u32::from(w.open.hour() as u8) * 60 + u32::from(w.open.minute() as u8);
        let close = u32::from(w.close.hour() as u8) * 60 + u32::from(w.close.minute() as u8);
        let len = if close > open {
            close - open
        } else {
            24 * 60 - open + close
        };
        jiff::civil::Weekday::Monday
            .cycle_forward()
            .take(7)
            .filter(|d| w.days.contains(*d))
            .map(|d| {
                let start = u32::from(d.to_monday_zero_offset() as u8) * 24 * 60 + open;
                (start, start + len)
            })
            .collect()
    };
    let (sa, sb) = (spans(a), spans(b));
    sa.iter().any(|&(a0, a1)| {
        sb.iter().any(|&(b0, b1)| {
            // Compare on the circle of the week: shift b by -WEEK, 0, +WEEK.
            [0i64, -i64::from(WEEK), i64::from(WEEK)]
                .iter()
                .any(|&shift| {
                    let (b0, b1) = (i64::from(b0) + shift, i64::from(b1) + shift);
                    i64::from(a0) < b1 && b0 < i64::from(a1)
                })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[daemon]
poll_interval = "30s"
state_dir = "/tmp/lo"

[azure]
cloud = "china"
credential = "client_secret"
tenant_id = "t"
client_id = "c"

[[workspace]]
name = "research"
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "rg"
workspace = "mlw"
region = "westeurope"

[pricing]
currency = "eur"
[pricing.vm_hourly]
Standard_DS3_v2 = 0.293

[[policy]]
name = "office"
workspaces = ["research"]
uptime = ["Mon-Fri 08:00-19:00"]
"#;

    #[test]
    fn good_config_validates_with_cloud_presets() {
        let (cfg, warnings) = from_str(GOOD).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(cfg.daemon.poll_interval, Duration::from_secs(30));
        assert_eq!(
            cfg.azure.arm_endpoint.as_str(),
            "https://management.chinacloudapi.cn/"
        );
        assert_eq!(cfg.azure.credential, CredentialKind::ClientSecret);
        assert_eq!(
            cfg.workspace("research").unwrap().reference.workspace,
            "mlw"
        );
        assert_eq!(cfg.pricing.currency, "EUR");
        assert_eq!(cfg.pricing.vm_hourly.get("standard_ds3_v2"), Some(&0.293));
        assert_eq!(cfg.policies[0].name, "office");
    }

    #[test]
    fn operation_poll_interval_is_bounded() {
        let (cfg, _) = from_str("[daemon]\noperation_poll_interval = \"2s\"\n").unwrap();
        assert_eq!(cfg.daemon.operation_poll_interval, Duration::from_secs(2));
        for bad in ["500ms", "6m", "0s"] {
            let errs =
                from_str(&format!("[daemon]\noperation_poll_interval = \"{bad}\"\n")).unwrap_err();
            assert_eq!(errs.len(), 1, "{bad}");
            assert!(
                errs[0]
                    .message
                    .contains("daemon.operation_poll_interval: must be between 1s and 5m"),
                "{}",
                errs[0].message
            );
        }
    }

    #[test]
    fn audit_retention_defaults_to_400_days_and_is_bounded() {
        let (cfg, _) = from_str("").unwrap();
        assert_eq!(
            cfg.daemon.audit_retention,
            Duration::from_secs(400 * 86_400)
        );
        let (cfg, _) = from_str("[daemon]\naudit_retention = \"30d\"\n").unwrap();
        assert_eq!(cfg.daemon.audit_retention, Duration::from_secs(30 * 86_400));
        for bad in ["1h", "0s"] {
            let errs = from_str(&format!("[daemon]\naudit_retention = \"{bad}\"\n")).unwrap_err();
            assert_eq!(errs.len(), 1, "{bad}");
            assert!(
                errs[0]
                    .message
                    .contains("daemon.audit_retention: must be between 1d and 3650d"),
                "{}",
                errs[0].message
            );
            assert_eq!(errs[0].line, 2);
        }
    }

    #[test]
    fn empty_file_gives_defaults() {
        let (cfg, _) = from_str("").unwrap();
        assert_eq!(cfg.daemon.poll_interval, DEFAULT_POLL_INTERVAL);
        assert_eq!(
            cfg.daemon.operation_poll_interval,
            DEFAULT_OPERATION_POLL_INTERVAL
        );
        assert_eq!(cfg.http.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(cfg.azure.credential, CredentialKind::Auto);
    }

    #[test]
    fn unknown_key_is_reported_with_position() {
        let errs = from_str("[daemon]\npoll_intervall = \"1m\"\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!((errs[0].line, errs[0].column), (2, 1));
        assert!(
            errs[0].message.contains("unknown field `poll_intervall`"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn every_error_is_collected_with_key_and_value() {
        let text = "[daemon]\npoll_interval = \"soon\"\nmax_concurrent_actions = 0\n[azure]\ncredential = \"magic\"\nauthority_host = \"http://x\"\n[[workspace]]\nname = \"a\"\nsubscription_id = \"nope\"\nresource_group = \"rg\"\nworkspace = \"mlw\"\n[[policy]]\nname = \"p\"\nworkspaces = [\"b\"]\nuptime = [\"Mon 08:00-09:00\"]\n";
        let errs = from_str(text).unwrap_err();
        let msgs: Vec<String> = errs
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect();
        assert_eq!(msgs.len(), 6, "{msgs:#?}");
        assert!(
            msgs[0].starts_with("2:17: daemon.poll_interval: invalid duration \"soon\""),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].starts_with("3:26: daemon.max_concurrent_actions"),
            "{}",
            msgs[1]
        );
        assert!(
            msgs[2].contains("azure.authority_host: must use https"),
            "{}",
            msgs[2]
        );
        assert!(
            msgs[3].contains("azure.credential: expected one of"),
            "{}",
            msgs[3]
        );
        assert!(
            msgs[4].starts_with("9:19: workspace[0].subscription_id"),
            "{}",
            msgs[4]
        );
        assert!(
            msgs[5].contains("unknown workspace alias \"b\""),
            "{}",
            msgs[5]
        );
    }

    #[test]
    fn secret_in_config_is_refused_without_quoting_it() {
        let errs = from_str("[azure]\nclient_secret = \"hunter2\"\n").unwrap_err();
        assert!(errs[0].message.contains("AZURE_CLIENT_SECRET"));
        assert!(!errs[0].message.contains("hunter2"));
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("", 5), (1, 1));
    }

    fn messages(text: &str) -> Vec<String> {
        match from_str(text) {
            Ok((_, warnings)) => warnings
                .iter()
                .map(|d| format!("{}:{}: warning: {}", d.line, d.column, d.message))
                .collect(),
            Err(errs) => errs
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect(),
        }
    }

    #[test]
    fn policy_errors_name_key_and_value() {
        let text = r#"
[[policy]]
name = "bad"
timezone = "Europe/Pariss"
uptime = ["Mon-Fri 8:00-19:00", "Mon-Fri 08:00-25:00"]
instances = ["ci-[a"]
holidays = ["2026-13-01"]
exceptions = [ { from = "2026-12-27T00:00", to = "2026-12-24T00:00", state = "down" }, { from = "x", to = "2026-12-24T00:00", state = "sideways" } ]
start = "always"
enforcement = "sometimes"
catch_up = "2 fortnights"
[policy.idle]
timeout = "1m"
min_uptime = "2h"
max_uptime = "1h"
signals = ["arm", "telepathy"]
[[policy.event]]
cron = "0 3 * *"
action = "reboot"
"#;
        let m = messages(text);
        let want = [
            "6:14: policy[0] (bad).instances: invalid glob \"ci-[a\"",
            "4:12: policy[0] (bad).timezone: unknown IANA time zone \"Europe/Pariss\"",
            "5:33: policy[0] (bad).uptime: invalid time \"25:00\"",
            "7:13: policy[0] (bad).holidays: invalid date \"2026-13-01\"",
            "8:16: policy[0] (bad).exceptions: ends (\"2026-12-24T00:00\") before it begins (\"2026-12-27T00:00\")",
            "8:97: policy[0] (bad).exceptions.from: invalid local time \"x\"",
            "8:135: policy[0] (bad).exceptions.state: expected up or down, got \"sideways\"",
            "9:9: policy[0] (bad).start: expected never or window, got \"always\"",
            "10:15: policy[0] (bad).enforcement: expected transition or always, got \"sometimes\"",
            "11:12: policy[0] (bad).catch_up: invalid duration \"2 fortnights\"",
            "16:19: policy[0] (bad).idle.signals: unknown activity source \"telepathy\"",
            "13:11: policy[0] (bad).idle.timeout: must be at least 5m, got \"1m\"",
            "15:14: policy[0] (bad).idle.max_uptime: must be longer than min_uptime, got \"1h\"",
            "18:8: policy[0] (bad).event.cron: invalid cron \"0 3 * *\": expected 5 fields",
            "19:10: policy[0] (bad).event.action: expected start, stop or restart, got \"reboot\"",
        ];
        for w in want {
            assert!(
                m.iter().any(|line| line.starts_with(w)),
                "missing {w:?} in\n{}",
                m.join("\n")
            );
        }
    }

    #[test]
    fn a_policy_that_does_nothing_is_an_error() {
        let m = messages("[[policy]]\nname = \"idle-less\"\ninstances = [\"*\"]\n");
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].starts_with("2:8: policy[0] (idle-less): does nothing"),
            "{}",
            m[0]
        );
        let m = messages(
            "[[policy]]\nname = \"s\"\nstart = \"window\"\n[policy.idle]\ntimeout = \"1h\"\n",
        );
        assert!(
            m[0].contains("start: \"window\" needs uptime windows"),
            "{m:?}"
        );
    }

    #[test]
    fn idle_section_without_timeout_needs_a_schedule_or_events() {
        let ws = "[[workspace]]\nname = \"w\"\nsubscription_id = \"34adfa4f-cedf-4dc0-ba29-b6d1a69ab345\"\nresource_group = \"r\"\nworkspace = \"mlw\"\n";
        let alone = format!("{ws}[[policy]]\nname = \"p\"\n[policy.idle]\nsignals = [\"arm\"]\n");
        let m = messages(&alone);
        assert!(
            m.iter()
                .any(|l| l.starts_with("7:8: policy[0] (p).idle: needs timeout or max_uptime")),
            "{m:?}"
        );
        let with_windows = format!(
            "{ws}[[policy]]\nname = \"p\"\nuptime = [\"Mon-Fri 08:00-18:00\"]\n[policy.idle]\nsignals = [\"arm\"]\n"
        );
        let (cfg, _) = from_str(&with_windows).unwrap();
        assert_eq!(
            cfg.policies[0].signals(),
            Signals {
                arm: true,
                jupyter: false,
                agent: false
            }
        );
    }

    #[test]
    fn overlaps_shadowing_and_empty_lists_warn() {
        let text = r#"
[[policy]]
name = "all"
uptime = ["Mon-Fri 08:00-19:00", "Fri 18:00-02:00", "Sun 23:00-01:00", "Mon 00:30-00:45"]

[[policy]]
name = "dead"
instances = ["ci-*"]
uptime = ["Mon 08:00-08:00"]

[[policy]]
name = "never"
instances = []
[policy.idle]
timeout = "1h"
signals = ["arm"]
"#;
        let m = messages(text);
        assert!(m.iter().any(|l| l.starts_with("4:34: warning: policy[0] (all).uptime: \"Fri 18:00-02:00\" overlaps \"Mon,Tue,Wed,Thu,Fri 08:00-19:00\"")), "{m:#?}");
        assert!(m.iter().any(|l| l.starts_with("4:72: warning: policy[0] (all).uptime: \"Mon 00:30-00:45\" overlaps \"Sun 23:00-01:00\"")), "{m:#?}");
        assert!(
            m.iter()
                .any(|l| l
                    .contains("warning: policy[1] (dead): can never match: policy \"all\" above")),
            "{m:#?}"
        );
        assert!(
            m.iter()
                .any(|l| l.contains("\"Mon 08:00-08:00\" opens and closes at the same time")),
            "{m:#?}"
        );
        assert!(
            m.iter()
                .any(|l| l.contains("policy[2] (never).instances: empty list")),
            "{m:#?}"
        );
    }

    /// An idle rule on ARM alone sees only jobs: it must be asked for by name, and the
    /// error says the three ways out.
    #[test]
    fn idle_rule_on_default_signals_is_an_error_that_says_how_to_fix_it() {
        let m = messages(
            "[[policy]]\nname = \"p\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n[policy.idle]\ntimeout = \"45m\"\n",
        );
        assert_eq!(m.len(), 1, "{m:#?}");
        let line = &m[0];
        assert!(line.starts_with("5:11: policy[0] (p).idle.timeout: an idle rule needs a source that sees interactive use"), "{line}");
        for fix in [
            "configure [agent]",
            "signals = [\"arm\"]",
            "\"jupyter\"",
            "[policy.native] idle_shutdown = \"45m\"",
        ] {
            assert!(line.contains(fix), "{fix} missing: {line}");
        }
        // An empty list is not a way around it.
        let m = messages(
            "[[policy]]\nname = \"p\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n[policy.idle]\ntimeout = \"45m\"\nsignals = []\n",
        );
        assert_eq!(
            m,
            [
                "5:11: policy[0] (p).idle.signals: empty list; name arm (jobs), jupyter, agent, or several"
            ]
        );
        // Named explicitly, or with Jupyter, or max_uptime only: fine.
        for ok in [
            "[policy.idle]\ntimeout = \"45m\"\nsignals = [\"arm\"]\n",
            "[policy.idle]\ntimeout = \"45m\"\nsignals = [\"arm\", \"jupyter\"]\n",
            "[policy.idle]\nmax_uptime = \"12h\"\n",
        ] {
            let text = format!(
                "[azure]\njupyter_token_scope = \"https://ml.azure.com/.default\"\n\
                 [[policy]]\nname = \"p\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n{ok}"
            );
            assert!(from_str(&text).is_ok(), "{ok}: {:#?}", messages(&text));
        }
    }

    /// The Jupyter probe sends a token to every instance host: a policy that counts Jupyter
    /// needs a scope of its own for that, never ARM's, and there is no default.
    #[test]
    fn jupyter_signal_needs_its_own_token_scope() {
        let policy = "[[policy]]\nname = \"p\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n\
                      [policy.idle]\nsignals = [\"arm\", \"jupyter\"]\n";
        let m = messages(policy);
        assert_eq!(m.len(), 1, "{m:#?}");
        assert!(
            m[0].starts_with("5:19: policy[0] (p).idle.signals: names jupyter, but azure.jupyter_token_scope is not set"),
            "{m:#?}"
        );
        for (scope, why) in [
            (
                "https://management.azure.com/.default",
                "must not be the Azure Resource Manager scope",
            ),
            (
                "https://management.core.windows.net/.default",
                "must not be the Azure Resource Manager scope",
            ),
            ("https://ml.azure.com", "followed by /.default"),
            ("/.default", "without spaces"),
            ("https://ml.azure.com /.default", "without spaces"),
        ] {
            let m = messages(&format!(
                "[azure]\njupyter_token_scope = {scope:?}\n{policy}"
            ));
            assert!(
                m.iter()
                    .any(|l| l.starts_with("2:23: azure.jupyter_token_scope: ") && l.contains(why)),
                "{scope}: {m:#?}"
            );
        }
        // The emulator's ARM endpoint is not a valid audience either.
        let m = messages(&format!(
            "[azure]\narm_endpoint = \"https://127.0.0.1:8443\"\njupyter_token_scope = \"https://127.0.0.1:8443/.default\"\n{policy}"
        ));
        assert!(
            m.iter()
                .any(|l| l.contains("must not be the Azure Resource Manager scope")),
            "{m:#?}"
        );
        let text =
            format!("[azure]\njupyter_token_scope = \"api://lightsout-probe/.default\"\n{policy}");
        let (cfg, _) = from_str(&text).unwrap();
        assert_eq!(
            cfg.azure.jupyter_token_scope.as_deref(),
            Some("api://lightsout-probe/.default")
        );
    }

    #[test]
    fn unknown_activity_is_proceed_or_hold() {
        let text = |v: &str| {
            format!(
                "[[policy]]\nname = \"p\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\nunknown_activity = \"{v}\"\n"
            )
        };
        let (cfg, _) = from_str(&text("hold")).unwrap();
        assert_eq!(cfg.policies[0].unknown_activity, UnknownActivity::Hold);
        let (cfg, _) = from_str(&text("proceed")).unwrap();
        assert_eq!(cfg.policies[0].unknown_activity, UnknownActivity::Proceed);
        let (cfg, _) =
            from_str("[[policy]]\nname = \"p\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n").unwrap();
        assert_eq!(cfg.policies[0].unknown_activity, UnknownActivity::Proceed);
        assert_eq!(
            messages(&text("wait")),
            ["4:20: policy[0] (p).unknown_activity: expected proceed or hold, got \"wait\""]
        );
    }

    #[test]
    fn native_section_is_checked() {
        let m = messages(
            "[[policy]]\nname = \"n\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n[policy.native]\nmode = \"always\"\nidle_shutdown = \"4days\"\nschedules = \"copy\"\n",
        );
        for want in [
            "5:8: policy[0] (n).native.mode: expected off, report or enforce, got \"always\"",
            "6:17: policy[0] (n).native.idle_shutdown: Azure accepts 15m to 3days, got \"4days\"",
            "7:13: policy[0] (n).native.schedules: expected \"mirror\" (or leave it out), got \"copy\"",
        ] {
            assert!(
                m.iter().any(|l| l.starts_with(want)),
                "missing {want:?} in {m:#?}"
            );
        }
        let m = messages(
            "[[policy]]\nname = \"n\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n[policy.native]\nmode = \"report\"\nidle_shutdown = \"90s\"\n",
        );
        assert!(m[0].contains("Azure accepts 15m to 3days"), "{m:?}");
        let m = messages(
            "[[policy]]\nname = \"n\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n[policy.native]\nmode = \"report\"\nidle_shutdown = \"30m 30s\"\n",
        );
        assert!(m[0].contains("must be whole minutes"), "{m:?}");
        let m = messages(
            "[[policy]]\nname = \"n\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n[policy.native]\nmode = \"enforce\"\n",
        );
        assert!(
            m[0].contains("warning: policy[0] (n).native: mode \"enforce\" manages nothing"),
            "{m:?}"
        );
        let (cfg, _) = from_str(
            "[[policy]]\nname = \"n\"\ntimezone = \"Europe/Paris\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n[policy.native]\nmode = \"enforce\"\nidle_shutdown = \"1h\"\nschedules = \"mirror\"\n",
        )
        .unwrap();
        let native = &cfg.policies[0].native;
        assert_eq!(native.mode, NativeMode::Enforce);
        assert_eq!(native.idle_shutdown, Some(Duration::from_secs(3600)));
        assert_eq!(native.schedules.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn example_config_in_repo_validates_cleanly() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/lightsout.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let (cfg, warnings) = from_str(&text).unwrap_or_else(|e| panic!("{e:#?}"));
        assert!(warnings.is_empty(), "{warnings:#?}");
        assert!(!cfg.policies.is_empty());
        assert!(!cfg.workspaces.is_empty());
    }

    const AGENT_WS: &str = "[[workspace]]\nname = \"research\"\nsubscription_id = \"34adfa4f-cedf-4dc0-ba29-b6d1a69ab345\"\nresource_group = \"rg\"\nworkspace = \"mlw\"\n";

    #[test]
    fn agent_section_defaults_and_accounts() {
        let text = format!(
            "[azure]\ncloud = \"china\"\n[agent]\naccount = \"mlwstorage\"\n{AGENT_WS}\n[[workspace]]\nname = \"other\"\nsubscription_id = \"34adfa4f-cedf-4dc0-ba29-b6d1a69ab345\"\nresource_group = \"rg\"\nworkspace = \"mlw2\"\nagent_account = \"https://127.0.0.1:10000/devstoreaccount1\"\n[[policy]]\nname = \"p\"\n[policy.idle]\ntimeout = \"45m\"\n"
        );
        let (cfg, warnings) = from_str(&text).unwrap_or_else(|e| panic!("{e:#?}"));
        assert!(warnings.is_empty(), "{warnings:?}");
        let agent = cfg.agent.expect("agent");
        assert_eq!(agent.container, "lightsout-heartbeats");
        assert_eq!(agent.interval, Duration::from_secs(60));
        assert_eq!(agent.staleness, Duration::from_secs(180));
        assert_eq!(
            cfg.workspaces[0].agent_account.as_ref().map(Url::as_str),
            Some("https://mlwstorage.blob.core.chinacloudapi.cn/")
        );
        assert_eq!(
            cfg.workspaces[1].agent_account.as_ref().map(Url::as_str),
            Some("https://127.0.0.1:10000/devstoreaccount1")
        );
        // The idle rule without named signals: ARM and the agent, and no error for it.
        let p = &cfg.policies[0];
        assert!(p.signals().agent && p.signals().arm);
        assert_eq!(p.max_snooze, Duration::from_secs(12 * 3600));
        let (cfg, _) = from_str(&format!(
            "[agent]\naccount = \"https://acct.blob.core.windows.net\"\ncontainer = \"beats-1\"\ninterval = \"30s\"\nstaleness = \"5m\"\n{AGENT_WS}"
        ))
        .unwrap_or_else(|e| panic!("{e:#?}"));
        let agent = cfg.agent.expect("agent");
        assert_eq!(
            (agent.interval, agent.staleness),
            (Duration::from_secs(30), Duration::from_secs(300))
        );
        assert_eq!(agent.container, "beats-1");
    }

    #[test]
    fn agent_errors_are_positioned_and_bounded() {
        let cases: Vec<(String, &str)> = vec![
            (
                format!("[agent]\naccount = \"http://acct.blob.core.windows.net\"\n{AGENT_WS}"),
                "2:11: agent.account: expected a storage account name",
            ),
            (
                format!("[agent]\naccount = \"Bad_Name\"\n{AGENT_WS}"),
                "2:11: agent.account: expected",
            ),
            (
                format!("[agent]\naccount = \"acct\"\ncontainer = \"A--b\"\n{AGENT_WS}"),
                "3:13: agent.container: expected 3 to 63",
            ),
            (
                format!("[agent]\naccount = \"acct\"\ninterval = \"5s\"\n{AGENT_WS}"),
                "3:12: agent.interval: must be between 10s and 1h",
            ),
            (
                format!(
                    "[agent]\naccount = \"acct\"\ninterval = \"2m\"\nstaleness = \"1m\"\n{AGENT_WS}"
                ),
                "4:13: agent.staleness: must be at least agent.interval (2m)",
            ),
            (
                format!("[agent]\naccount = \"acct\"\nstaleness = \"2d\"\n{AGENT_WS}"),
                "3:13: agent.staleness: must be at most 1d",
            ),
            (
                format!("[agent]\ncontainer = \"beats\"\n{AGENT_WS}"),
                "agent.account: missing, and workspace[0] (research) has no agent_account",
            ),
            (
                format!("{AGENT_WS}agent_account = \"acct\"\n"),
                "6:17: workspace[0].agent_account: set, but there is no [agent] section",
            ),
            (
                format!("[agent]\naccount = \"acct\"\nbogus = 1\n{AGENT_WS}"),
                "unknown field `bogus`",
            ),
            (
                format!(
                    "{AGENT_WS}[[policy]]\nname = \"p\"\n[policy.idle]\ntimeout = \"1h\"\nsignals = [\"arm\", \"agent\"]\n"
                ),
                "10:19: policy[0] (p).idle.signals: names agent, but there is no [agent] section",
            ),
            (
                format!(
                    "[agent]\naccount = \"acct\"\n{AGENT_WS}[[policy]]\nname = \"p\"\nmax_snooze = \"8d\"\n[policy.idle]\ntimeout = \"1h\"\n"
                ),
                "10:14: policy[0] (p).max_snooze: must be at most 7d",
            ),
        ];
        for (text, want) in cases {
            let m = messages(&text);
            assert!(m.iter().any(|l| l.contains(want)), "{want}\n{m:#?}\n{text}");
            assert!(from_str(&text).is_err(), "{text}");
        }
        // Without [agent], an idle timeout on the default signals is still refused.
        let m = messages(&format!(
            "{AGENT_WS}[[policy]]\nname = \"p\"\n[policy.idle]\ntimeout = \"1h\"\n"
        ));
        assert!(
            m[0].contains("the default signals (arm) see only jobs"),
            "{m:?}"
        );
    }

    #[test]
    fn example_agent_section_validates_when_uncommented() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/lightsout.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let keys = [
            "[agent]",
            "account =",
            "container =",
            "interval =",
            "staleness =",
            "agent_account =",
        ];
        let text: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if keys.iter().any(|k| rest.starts_with(k)) => format!("{rest}\n"),
                _ => format!("{l}\n"),
            })
            .collect();
        assert!(text.contains("\n[agent]\n"), "{text}");
        let (cfg, warnings) = from_str(&text).unwrap_or_else(|e| panic!("{e:#?}"));
        assert!(warnings.is_empty(), "{warnings:#?}");
        let agent = cfg.agent.expect("agent");
        assert_eq!(agent.staleness, Duration::from_secs(180));
        assert_eq!(
            cfg.workspaces[0].agent_account.as_ref().map(Url::as_str),
            Some("https://mlwresearch123.blob.core.windows.net/")
        );
        assert_eq!(cfg.policies[0].max_snooze, Duration::from_secs(12 * 3600));
    }
}
