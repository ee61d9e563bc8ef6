//! The configuration file exactly as written: serde structs mirroring the TOML.
//!
//! Every struct rejects unknown keys. Values that stage two checks keep their source span
//! (`Spanned`) so an error can name the line and column. No validation happens here beyond
//! what serde's types enforce; see `validate.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub daemon: RawDaemon,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub azure: RawAzure,
    #[serde(default)]
    pub workspace: Vec<RawWorkspace>,
    #[serde(default)]
    pub pricing: Option<RawPricing>,
    #[serde(default)]
    pub policy: Vec<RawPolicy>,
    pub agent: Option<Spanned<RawAgent>>,
}

/// `[agent]`, the daemon's side: where the on-instance agents' heartbeats are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub account: Option<Spanned<String>>,
    pub container: Option<Spanned<String>>,
    pub interval: Option<Spanned<String>>,
    pub staleness: Option<Spanned<String>>,
}

/// `[daemon]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub poll_interval: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
    pub dry_run: Option<bool>,
    pub max_concurrent_actions: Option<Spanned<i64>>,
    pub operation_poll_interval: Option<Spanned<String>>,
    pub audit_retention: Option<Spanned<String>>,
}

/// `[http]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub listen: Option<Spanned<String>>,
}

/// `[azure]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAzure {
    pub cloud: Option<Spanned<String>>,
    pub arm_endpoint: Option<Spanned<String>>,
    pub authority_host: Option<Spanned<String>>,
    pub credential: Option<Spanned<String>>,
    pub tenant_id: Option<Spanned<String>>,
    pub client_id: Option<Spanned<String>>,
    pub client_secret_file: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    pub jupyter_token_scope: Option<Spanned<String>>,
    /// Present only to give a pointed error: secrets never live in the config file.
    pub client_secret: Option<Spanned<toml::Value>>,
}

/// One `[[workspace]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkspace {
    pub name: Spanned<String>,
    pub subscription_id: Spanned<String>,
    pub resource_group: Spanned<String>,
    pub workspace: Spanned<String>,
    pub region: Option<Spanned<String>>,
    /// The storage account of this workspace's heartbeats, instead of `[agent] account`.
    pub agent_account: Option<Spanned<String>>,
}

/// `[pricing]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPricing {
    pub currency: Option<Spanned<String>>,
    pub source: Option<Spanned<String>>,
    pub retail_api_endpoint: Option<Spanned<String>>,
    #[serde(default)]
    pub vm_hourly: BTreeMap<String, Spanned<f64>>,
    #[serde(default)]
    pub stopped_hourly: BTreeMap<String, Spanned<f64>>,
}

/// One `[[policy]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub name: Spanned<String>,
    pub workspaces: Option<Vec<Spanned<String>>>,
    pub instances: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub tags: BTreeMap<String, Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub uptime: Option<Vec<Spanned<String>>>,
    pub start: Option<Spanned<String>>,
    #[serde(default)]
    pub holidays: Vec<Spanned<String>>,
    #[serde(default)]
    pub exceptions: Vec<Spanned<RawException>>,
    pub enforcement: Option<Spanned<String>>,
    pub catch_up: Option<Spanned<String>>,
    pub unknown_activity: Option<Spanned<String>>,
    pub max_snooze: Option<Spanned<String>>,
    pub idle: Option<RawIdle>,
    #[serde(default)]
    pub event: Vec<RawEvent>,
    pub native: Option<RawNative>,
}

/// `[policy.native]`: Azure ML's own idle shutdown and schedules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNative {
    pub mode: Option<Spanned<String>>,
    pub idle_shutdown: Option<Spanned<String>>,
    pub schedules: Option<Spanned<String>>,
}

/// `exceptions = [ { from, to, state } ]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawException {
    pub from: Spanned<String>,
    pub to: Spanned<String>,
    pub state: Spanned<String>,
}

/// `[policy.idle]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdle {
    pub timeout: Option<Spanned<String>>,
    pub min_uptime: Option<Spanned<String>>,
    pub max_uptime: Option<Spanned<String>>,
    pub signals: Option<Vec<Spanned<String>>>,
}

/// One `[[policy.event]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    pub cron: Spanned<String>,
    pub action: Spanned<String>,
}
