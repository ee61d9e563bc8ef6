//! The Jupyter probe's own HTTP client, and where its token may go.
//!
//! The probe sends a bearer token to the URL ARM lists in an instance's `applications`. That
//! URL is data, so the token goes only where an Azure ML compute instance lives: https, a
//! host shaped `NAME.REGION.instances.azureml.{ms,net,cn,us}` (the recorded `endpointUri`s,
//! `tests/fixtures/azure/recorded/`), no user info. The token comes from a scope of its own
//! (`[azure] jupyter_token_scope`), never ARM's, which can start, stop and rewrite every
//! compute. The client follows no redirect (a 3xx would carry the token elsewhere), gives
//! each request [`PROBE_TIMEOUT`] and reads at most [`MAX_BODY_BYTES`] of a body.
//!
//! Against a local emulator (ARM on loopback) the instance hosts resolve to that loopback
//! address, and only then: the names stay real-shaped, the traffic stays on the machine.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::auth::AuthError;

/// Most bytes of one Jupyter answer read; a longer one is refused (the real
/// `/api/status` and `/api/kernels` are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Deadline of one probe request, connect to last byte.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline to connect to an instance host.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The domains of Azure ML compute instance hosts in the public, China and US Government
/// clouds.
pub const INSTANCE_HOST_SUFFIXES: [&str; 4] = [
    ".instances.azureml.ms",
    ".instances.azureml.net",
    ".instances.azureml.cn",
    ".instances.azureml.us",
];

/// Why `url` may not receive the probe's token, or `Ok` when it may.
pub fn check_instance_url(url: &Url) -> Result<(), &'static str> {
    if url.scheme() != "https" {
        return Err("a Jupyter URL must be https");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a Jupyter URL must not carry user info");
    }
    let Some(Host::Domain(host)) = url.host() else {
        return Err("a Jupyter URL must name an Azure ML instance host");
    };
    let host = host.to_ascii_lowercase();
    let Some(prefix) = INSTANCE_HOST_SUFFIXES
        .iter()
        .find_map(|s| host.strip_suffix(s))
    else {
        return Err("a Jupyter URL must be on *.instances.azureml.{ms,net,cn,us}");
    };
    // NAME.REGION: two DNS labels, as every recorded endpointUri has.
    let labels: Vec<&str> = prefix.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if labels.len() != 2 || !labels.iter().all(label_ok) {
        return Err("a Jupyter host must be NAME.REGION.instances.azureml.*");
    }
    Ok(())
}

/// The loopback address to reach instance hosts at when ARM itself is on loopback (a local
/// emulator), else `None` (real DNS).
pub fn loopback_of(arm: &Url) -> Option<IpAddr> {
    match arm.host()? {
        Host::Ipv4(ip) if ip.is_loopback() => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) if ip.is_loopback() => Some(IpAddr::V6(ip)),
        Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
            Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        }
        _ => None,
    }
}

/// Resolves every name to one loopback address (the probe's client asks only for
/// instance hosts, checked before each request).
#[derive(Debug, Clone, Copy)]
struct LoopbackResolver(IpAddr);

impl Resolve for LoopbackResolver {
    fn resolve(&self, _name: Name) -> Resolving {
        let addr = SocketAddr::new(self.0, 0);
        Box::pin(async move { Ok(Box::new(std::iter::once(addr)) as Addrs) })
    }
}

/// The probe's HTTP client: no redirects, [`PROBE_TIMEOUT`], the extra CA of `ca_file`, and
/// instance hosts resolved to `loopback` when given.
pub fn build_client(
    ca_file: Option<&Path>,
    loopback: Option<IpAddr>,
) -> Result<reqwest::Client, AuthError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(PROBE_TIMEOUT)
        .user_agent(super::auth::default_user_agent());
    if let Some(ip) = loopback {
        builder = builder.dns_resolver(Arc::new(LoopbackResolver(ip)));
    }
    if let Some(path) = ca_file {
        builder = builder.tls_certs_merge(super::auth::ca_certs(path)?);
    }
    builder
        .build()
        .map_err(|source| AuthError::HttpClient { source })
}

/// Where the probe may send a token, and the scope that token is for.
#[derive(Debug, Clone)]
pub struct JupyterAccess {
    /// The probe's client ([`build_client`]).
    pub http: reqwest::Client,
    /// `[azure] jupyter_token_scope`.
    pub scope: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &str) -> Result<(), &'static str> {
        check_instance_url(&Url::parse(s).unwrap())
    }

    #[test]
    fn only_https_instance_hosts_get_the_token() {
        for ok in [
            "https://test72249821874.westus.instances.azureml.ms/",
            "https://testcomp007ci3-8787.eastus.instances.azureml.ms/api/status",
            "https://ci-a.chinaeast2.instances.azureml.cn/",
            "https://ci-a.usgovvirginia.instances.azureml.us:8443/",
            "https://CI-A.EASTUS.INSTANCES.AZUREML.NET/",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for bad in [
            // Cleartext, even to a real instance host.
            "http://ci-a.eastus.instances.azureml.ms/",
            // The ARM host, any *.azureml.* host, look-alikes.
            "https://management.azure.com/instances/ws/ci-a/",
            "https://compute123.eastus2.azureml.net/jupyter",
            "https://ci-a.eastus.instances.azureml.ms.evil.example/",
            "https://ci-a.eastus.instancesXazureml.ms/",
            "https://instances.azureml.ms/",
            "https://eastus.instances.azureml.ms/",
            "https://a.b.eastus.instances.azureml.ms/",
            "https://127.0.0.1/",
            "https://user:pw@ci-a.eastus.instances.azureml.ms/",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instance_hosts_go_to_loopback_only_when_arm_is_there() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            loopback_of(&u("https://127.0.0.1:8443")),
            Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        );
        assert!(loopback_of(&u("https://[::1]:8443")).is_some());
        assert!(loopback_of(&u("https://localhost:8443")).is_some());
        assert_eq!(loopback_of(&u("https://management.azure.com")), None);
        assert_eq!(loopback_of(&u("https://10.0.0.1")), None);
    }
}
