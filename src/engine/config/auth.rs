//! The plain settings of Azure authentication: which cloud, which credential, and the
//! `[azure]` values the credential builder needs.
//!
//! Plain data with their config spellings, no I/O: they live with the config so that
//! validating a config needs nothing of the Azure client, which imports them from here.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

crate::engine::text_enum::text_enum! {
    what = "cloud";
    /// An Azure cloud: sets the ARM endpoint and the authority host together.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Cloud {
        /// Azure public cloud.
        Public = "public",
        /// Azure operated by 21Vianet (China).
        China = "china",
        /// Azure US Government.
        UsGov = "usgov",
    }
}

impl Cloud {
    /// The ARM endpoint, without trailing slash.
    pub fn arm_endpoint(&self) -> &'static str {
        match self {
            Cloud::Public => "https://management.azure.com",
            Cloud::China => "https://management.chinacloudapi.cn",
            Cloud::UsGov => "https://management.usgovcloudapi.net",
        }
    }

    /// The Entra ID authority host, without trailing slash.
    pub fn authority_host(&self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com",
            Cloud::China => "https://login.chinacloudapi.cn",
            Cloud::UsGov => "https://login.microsoftonline.us",
        }
    }
}

crate::engine::text_enum::text_enum! {
    what = "credential";
    /// Which credential to use (`azure.credential`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum CredentialKind {
        /// Client secret, then workload identity, then managed identity, then Azure CLI.
        #[default]
        Auto = "auto",
        /// Service principal with a client secret.
        ClientSecret = "client_secret",
        /// Managed identity (IMDS, or App Service via `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`).
        ManagedIdentity = "managed_identity",
        /// Kubernetes workload identity (federated token file).
        WorkloadIdentity = "workload_identity",
        /// `az account get-access-token`.
        AzureCli = "azure_cli",
    }
}

/// Authentication settings (the `[azure]` section minus the endpoints). Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Which credential.
    pub credential: CredentialKind,
    /// Tenant id; else `AZURE_TENANT_ID`.
    pub tenant_id: Option<String>,
    /// Client id; else `AZURE_CLIENT_ID`. For managed identity: a user-assigned identity.
    pub client_id: Option<String>,
    /// File holding the client secret; relative names resolve under `$CREDENTIALS_DIRECTORY`.
    pub client_secret_file: Option<PathBuf>,
    /// Entra ID authority host; must be https.
    pub authority_host: Url,
    /// Extra trusted root (PEM), added to the system roots (used by `azure::auth::build_http_client`).
    pub ca_file: Option<PathBuf>,
}

/// Where `client_secret_file` points: a relative name resolves under `$CREDENTIALS_DIRECTORY`
/// (systemd's `LoadCredential=`) when that is set.
pub fn secret_file_path(file: &Path, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match env("CREDENTIALS_DIRECTORY") {
        Some(dir) if file.is_relative() && !dir.is_empty() => Path::new(&dir).join(file),
        _ => file.to_owned(),
    }
}

/// `Some(mode)` when the file's permissions let its group or others read (or write) it.
/// A symlink is followed (Kubernetes' projected secrets are links).
///
/// One exception, inside `$CREDENTIALS_DIRECTORY`: systemd writes a credential 0400 and
/// grants the service's user read access with an ACL entry, and an ACL's mask shows as the
/// group bits, so `stat` says 0440 although only that user and root can read it. There the
/// group's read bit is tolerated; any other bit is still refused.
pub fn secret_file_mode_problem(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    let systemd =
        env("CREDENTIALS_DIRECTORY").is_some_and(|d| !d.is_empty() && path.starts_with(d));
    let refused = if systemd { 0o037 } else { 0o077 };
    Ok((mode & refused != 0).then_some(mode))
}

/// Whether the URL's host is a loopback address (`127.0.0.0/8`, `::1`) or `localhost`: the
/// only hosts a token may reach over plain http.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_presets() {
        assert_eq!(
            "china".parse::<Cloud>().unwrap().arm_endpoint(),
            "https://management.chinacloudapi.cn"
        );
        assert_eq!(
            Cloud::UsGov.authority_host(),
            "https://login.microsoftonline.us"
        );
        assert_eq!(Cloud::Public.arm_endpoint(), "https://management.azure.com");
        assert!("mars".parse::<Cloud>().is_err());
        for c in [Cloud::Public, Cloud::China, Cloud::UsGov] {
            assert_eq!(c.as_str().parse::<Cloud>().unwrap(), c);
        }
    }

    #[test]
    fn credential_kind_parses() {
        for k in [
            CredentialKind::Auto,
            CredentialKind::ClientSecret,
            CredentialKind::ManagedIdentity,
            CredentialKind::WorkloadIdentity,
            CredentialKind::AzureCli,
        ] {
            assert_eq!(k.as_str().parse::<CredentialKind>().unwrap(), k);
        }
        assert!("default".parse::<CredentialKind>().is_err());
    }
}
