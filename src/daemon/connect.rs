//! Build the ARM client from validated settings: one shared HTTP client, one credential.
//!
//! The only place the process environment is read for credentials (`AZURE_*`), so the
//! rest of the code receives a ready [`ArmClient`].

use crate::azure::blob::{BlobClient, BlobError};
use crate::azure::{
    ArmClient, ArmClientConfig, ArmEndpoint, AuthError, AzureError, HttpTimeouts, build_credential,
    build_http_client,
};
use crate::daemon::heartbeats::Heartbeats;
use crate::engine::config::{AzureSettings, Config};

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot set up Azure authentication")]
    Auth(#[source] AuthError),
    #[error("invalid ARM endpoint")]
    Endpoint(#[source] AzureError),
    #[error("the emulator's first principal has no client secret")]
    NoSecret,
    #[error("cannot set up the heartbeat storage client")]
    Storage(#[source] BlobError),
}

/// A client for the ARM endpoint of `settings`, authenticated as they say, with
/// credentials from the process environment.
pub fn arm_client(
    settings: &AzureSettings,
    config: ArmClientConfig,
) -> Result<ArmClient, ConnectError> {
    arm_client_with_env(settings, config, &|name: &str| std::env::var(name).ok())
}

/// [`arm_client`] with the environment given (e.g. `simulate`, which supplies the
/// emulator's secret without touching the process environment).
pub fn arm_client_with_env(
    settings: &AzureSettings,
    config: ArmClientConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ArmClient, ConnectError> {
    let http = build_http_client(settings.ca_file.as_deref(), HttpTimeouts::default())
        .map_err(ConnectError::Auth)?;
    let credential =
        build_credential(&settings.auth(), http.clone(), env).map_err(ConnectError::Auth)?;
    let endpoint =
        ArmEndpoint::new(settings.arm_endpoint.clone()).map_err(ConnectError::Endpoint)?;
    let client = ArmClient::new(http, credential, endpoint, config);
    // The Jupyter probe gets its own client and token scope, or stays off.
    let Some(scope) = settings.jupyter_token_scope.clone() else {
        return Ok(client);
    };
    let loopback = crate::azure::jupyter::loopback_of(&settings.arm_endpoint);
    let http = crate::azure::jupyter::build_client(settings.ca_file.as_deref(), loopback)
        .map_err(ConnectError::Auth)?;
    Ok(client.with_jupyter(crate::azure::jupyter::JupyterAccess { http, scope }))
}

/// The heartbeat readers of `[agent]`: one Blob Storage client per distinct account, with
/// the daemon's own credential (asked for the storage scope) and the same trusted CAs as
/// the ARM client. `None` without `[agent]`.
pub fn heartbeats(cfg: &Config) -> Result<Option<Heartbeats>, ConnectError> {
    heartbeats_with_env(cfg, &|name: &str| std::env::var(name).ok())
}

/// [`heartbeats`] with the environment given.
pub fn heartbeats_with_env(
    cfg: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Heartbeats>, ConnectError> {
    let Some(agent) = &cfg.agent else {
        return Ok(None);
    };
    let http = build_http_client(cfg.azure.ca_file.as_deref(), HttpTimeouts::default())
        .map_err(ConnectError::Auth)?;
    let credential =
        build_credential(&cfg.azure.auth(), http.clone(), env).map_err(ConnectError::Auth)?;
    let mut clients = std::collections::BTreeMap::new();
    for account in cfg
        .workspaces
        .iter()
        .filter_map(|w| w.agent_account.as_ref())
    {
        if clients.contains_key(account.as_str()) {
            continue;
        }
        let client = BlobClient::new(
            http.clone(),
            account.clone(),
            &agent.container,
            credential.clone(),
        )
        .map_err(ConnectError::Storage)?;
        clients.insert(account.as_str().to_owned(), client);
    }
    Ok(Some(Heartbeats::new(agent.clone(), clients)))
}
