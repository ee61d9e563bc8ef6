//! TLS for the emulator: a fresh CA and a server certificate for `127.0.0.1`, `localhost`
//! and the instance hosts of the fleet's regions (`*.{region}.instances.azureml.ms`, where
//! each instance's Jupyter is served) signed by it, made with rcgen; the CA goes to `ca.pem` so clients can
//! trust it. The rustls config uses the aws-lc-rs provider explicitly, never the process
//! default, so it works whatever else the process installed.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Errors while making certificates or the TLS config.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen failed.
    #[error("failed to generate a certificate")]
    Cert(#[source] rcgen::Error),
    /// rustls refused the config.
    #[error("failed to build the TLS server config")]
    Config(#[source] rustls::Error),
    /// `ca.pem` could not be written.
    #[error("failed to write {path}")]
    Write {
        /// The file.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
}

/// Makes the CA and server certificate (with the instance hosts of `regions`), writes
/// `ca.pem` into `dir`, returns the config.
pub fn server_config(dir: &Path, regions: &[String]) -> Result<Arc<ServerConfig>, TlsError> {
    let ca_key = KeyPair::generate().map_err(TlsError::Cert)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(TlsError::Cert)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "lightsout emulator CA");
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "lightsout");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(TlsError::Cert)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(TlsError::Cert)?;
    let mut names = vec!["localhost".to_owned()];
    for r in regions {
        let name = format!("*.{r}.{}", super::state::INSTANCE_DOMAIN);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut leaf = CertificateParams::new(names).map_err(TlsError::Cert)?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V6(
            std::net::Ipv6Addr::LOCALHOST,
        )));
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // Python 3.13's strict X.509 checks require the authority key identifier.
    leaf.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(TlsError::Cert)?;

    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).map_err(|source| TlsError::Write {
        path: ca_path.display().to_string(),
        source,
    })?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
