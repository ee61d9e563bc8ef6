//! `lightsout healthcheck`: GET the running daemon's `/healthz` and turn the answer into an
//! exit code (0 healthy, 1 not), for container `HEALTHCHECK`s and probes that have no shell,
//! curl or wget.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::cli::HealthcheckArgs;
use crate::engine::config;

use super::validate::config_path;

/// The URL to probe for a listen address: an unspecified address (`0.0.0.0`, `[::]`) is
/// reached through loopback.
pub fn healthz_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/healthz", SocketAddr::new(ip, listen.port()))
}

/// Probe and report on stdout. Every failure, a bad config included, is exit 1 (Docker reads
/// any other non-zero code as "reserved").
pub async fn healthcheck(args: &HealthcheckArgs) -> anyhow::Result<()> {
    probe(args)
        .await
        .map_err(|e| anyhow::anyhow!("unhealthy: {e:#}"))
}

async fn probe(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let url = match &args.url {
        Some(u) => u.to_string(),
        None => {
            let path = config_path(&args.config);
            let (cfg, _) = config::load(&path)?;
            healthz_url(cfg.http.listen)
        }
    };
    // No redirects: a probe answers for the address it was given, and no client of ours
    // follows one (see `azure::auth::no_redirects`).
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(crate::azure::auth::no_redirects())
        .timeout(args.timeout)
        .connect_timeout(args.timeout)
        .build()?;
    let response = client.get(&url).send().await?;
    let status = response.status();
    if status.is_success() {
        println!("healthy: {url} answered {}", status.as_u16());
        Ok(())
    } else {
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        anyhow::bail!("{url} answered {}: {}", status.as_u16(), body.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_goes_through_loopback() {
        let url = |s: &str| healthz_url(s.parse().unwrap());
        assert_eq!(url("0.0.0.0:9464"), "http://127.0.0.1:9464/healthz");
        assert_eq!(url("[::]:9464"), "http://[::1]:9464/healthz");
        assert_eq!(url("10.1.2.3:80"), "http://10.1.2.3:80/healthz");
        assert_eq!(url("127.0.0.1:9464"), "http://127.0.0.1:9464/healthz");
    }
}
