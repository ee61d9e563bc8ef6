//! The sim side's link to the emulator crate (`azure_ml_emulator`): a client pointed at a
//! running emulator, and the emulator's clock as a lightsout [`Clock`]. Used by `demo`,
//! `simulate` and tests; the daemon's own modules never import the emulator.

use azure_ml_emulator::{EmulatorClock, RunningEmulator};
use jiff::Timestamp;

use crate::azure::{ArmClient, ArmClientConfig};
use crate::clock::Clock;
use crate::daemon::connect::{ConnectError, arm_client_with_env};
use crate::engine::config::AzureSettings;

/// A daemon in the emulator's (virtual or real) time reads it through this.
impl Clock for EmulatorClock {
    fn now(&self) -> Timestamp {
        EmulatorClock::now(self)
    }
}

/// Point `settings` at an in-process emulator (its endpoint for ARM and Entra ID, its CA,
/// its first principal) and build a client for it. The secret is handed over directly,
/// never through the process environment.
pub fn emulator_client(
    settings: &mut AzureSettings,
    emulator: &RunningEmulator,
    config: ArmClientConfig,
) -> Result<ArmClient, ConnectError> {
    let ready = emulator.ready();
    let secret = ready.client_secret.clone().ok_or(ConnectError::NoSecret)?;
    let endpoint = url::Url::parse(&ready.endpoint).map_err(|_| ConnectError::NoSecret)?;
    settings.arm_endpoint = endpoint.clone();
    settings.authority_host = endpoint;
    settings.ca_file = emulator.ca_file().map(std::path::Path::to_path_buf);
    settings.credential = crate::engine::config::auth::CredentialKind::ClientSecret;
    settings.tenant_id = Some(ready.tenant_id);
    settings.client_id = Some(ready.client_id);
    settings.client_secret_file = None;
    let env = move |name: &str| (name == "AZURE_CLIENT_SECRET").then(|| secret.clone());
    arm_client_with_env(settings, config, &env)
}
