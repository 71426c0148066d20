//! TLS is on by default, even on localhost: browsers only grant camera and
//! microphone to secure origins, and signaling carries SDP with keys'
//! fingerprints that must not be tampered with.

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;

use crate::config::Config;

/// The TLS setup and, for a generated certificate, its DER bytes (so tests
/// can trust exactly this certificate).
pub struct Tls {
    /// Ready for axum-server.
    pub config: RustlsConfig,
    /// The self-signed certificate, when one was generated.
    pub generated_cert_der: Option<Vec<u8>>,
    /// The operator's leaf certificate (`--cert`), when one was given.
    pub operator_cert_der: Option<Vec<u8>>,
}

/// Loads `--cert/--key`, or makes a self-signed certificate for localhost in memory.
pub async fn load(config: &Config) -> anyhow::Result<Tls> {
    // str0m and rustls both bring aws-lc-rs; make it rustls' process default.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if let (Some(cert), Some(key)) = (&config.cert, &config.key) {
        use rustls::pki_types::pem::PemObject;
        let config = RustlsConfig::from_pem_file(cert, key).await.with_context(|| "reading --cert/--key")?;
        let leaf = rustls::pki_types::CertificateDer::pem_file_iter(cert)
            .ok()
            .and_then(|mut certs| certs.next())
            .and_then(Result::ok)
            .context("reading the first certificate of --cert")?;
        return Ok(Tls { config, generated_cert_der: None, operator_cert_der: Some(leaf.to_vec()) });
    }
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let ck = rcgen::generate_simple_self_signed(names).context("generating a certificate")?;
    let cert_der = ck.cert.der().to_vec();
    let key_der = ck.signing_key.serialize_der();
    let config =
        RustlsConfig::from_der(vec![cert_der.clone()], key_der).await.context("loading the generated certificate")?;
    Ok(Tls { config, generated_cert_der: Some(cert_der), operator_cert_der: None })
}
