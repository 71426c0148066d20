//! TLS is on by default, even on localhost: browsers only grant camera and
//! microphone to secure origins, and signaling carries SDP with keys'
//! fingerprints that must not be tampered with.
//!
//! The certificate is the operator's (`--cert`/`--key`), one from an ACME
//! CA for `--domain` (rustls-acme: TLS-ALPN-01 on the HTTPS port itself,
//! renewed a third of its lifetime before it ends, in memory unless
//! `--acme-cache`), or one made in memory for localhost.

use std::sync::Arc;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use futures_util::StreamExt;
use rustls_acme::{AcmeConfig, AcmeState};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, LETS_ENCRYPT_STAGING};

/// The ACME protocol name a CA's TLS-ALPN-01 validation offers.
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The TLS setup and, for a generated certificate, its DER bytes (so tests
/// can trust exactly this certificate).
pub struct Tls {
    /// Ready for axum-server.
    pub config: RustlsConfig,
    /// The self-signed certificate, when one was generated.
    pub generated_cert_der: Option<Vec<u8>>,
    /// The operator's leaf certificate (`--cert`), when one was given.
    pub operator_cert_der: Option<Vec<u8>>,
    /// With `--domain`: the certificates' names, and what gets and renews them.
    pub acme: Option<Acme>,
}

/// Certificates from an ACME CA.
pub struct Acme {
    /// The names certified (`--domain`).
    pub domains: Vec<String>,
    /// From a CA whose certificates browsers trust (not Let's Encrypt's staging).
    pub trusted: bool,
    state: AcmeState<std::io::Error, std::io::Error>,
}

/// Loads `--cert/--key`, sets up ACME for `--domain`, or makes a
/// self-signed certificate for localhost in memory.
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
        return Ok(Tls { config, generated_cert_der: None, operator_cert_der: Some(leaf.to_vec()), acme: None });
    }
    if !config.domain.is_empty() {
        return acme(config);
    }
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let ck = rcgen::generate_simple_self_signed(names).context("generating a certificate")?;
    let cert_der = ck.cert.der().to_vec();
    let key_der = ck.signing_key.serialize_der();
    let config =
        RustlsConfig::from_der(vec![cert_der.clone()], key_der).await.context("loading the generated certificate")?;
    Ok(Tls { config, generated_cert_der: Some(cert_der), operator_cert_der: None, acme: None })
}

/// The TLS set-up for `--domain`: a certificate resolver that answers with
/// the ACME certificate (none until the first one is issued) and with the
/// validation certificate to a CA's TLS-ALPN-01 request.
fn acme(config: &Config) -> anyhow::Result<Tls> {
    let contact: Vec<String> = config.acme_email.iter().map(|e| format!("mailto:{e}")).collect();
    let mut acme = AcmeConfig::new(&config.domain).directory(&config.acme_directory).contact(contact).cache_option(
        config.acme_cache.clone().map(crate::acme_cache::PrivateDirCache::new).transpose().context("--acme-cache")?,
    );
    if let Some(ca) = &config.acme_ca {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).context("reading --acme-ca")? {
            roots.add(cert.context("reading --acme-ca")?).context("a certificate of --acme-ca")?;
        }
        let client = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        acme = acme.client_tls_config(Arc::new(client));
    }
    let state = acme.state();
    let mut server = rustls::ServerConfig::builder().with_no_client_auth().with_cert_resolver(state.resolver());
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    Ok(Tls {
        config: RustlsConfig::from_config(Arc::new(server)),
        generated_cert_der: None,
        operator_cert_der: None,
        acme: Some(Acme {
            domains: config.domain.clone(),
            trusted: config.acme_directory != LETS_ENCRYPT_STAGING,
            state,
        }),
    })
}

impl Acme {
    /// Gets the certificate, then renews it, until `cancel`; says what
    /// happened in the log (the names are the operator's, not a meeting's).
    pub async fn run(self, cancel: CancellationToken) {
        let names = self.domains.join(", ");
        let mut state = Box::pin(self.state);
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => return,
                e = state.next() => e,
            };
            match event {
                Some(Ok(ok)) => tracing::info!(domains = %names, event = ?ok, "certificate"),
                Some(Err(e)) => {
                    use rustls_acme::{EventError, OrderError};
                    let why = match &e {
                        EventError::Order(OrderError::BadAuth(_) | OrderError::TooManyAttemptsAuth(_)) => {
                            "the CA could not check the names: does each --domain point at this server, with its \
                             HTTPS port reachable as port 443?"
                        }
                        EventError::Order(OrderError::Acme(_)) => {
                            "talking to the CA failed: is --acme-directory right and reachable from here?"
                        }
                        _ => "see the error",
                    };
                    tracing::error!(domains = %names, error = %e, "could not get a certificate ({why}); trying again");
                }
                None => return,
            }
        }
    }
}
