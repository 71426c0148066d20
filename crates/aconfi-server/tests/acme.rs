//! Certificates from a real ACME CA (issue 15): Debian's `pebble`, started
//! here on loopback with `pebble-challtestsrv` as its DNS (every name
//! resolves to 127.0.0.1 unless told otherwise), validating over
//! TLS-ALPN-01 against A-Confi's HTTPS port. A-Confi gets a certificate for
//! its `--domain` that a TLS client trusting pebble's root accepts, serves
//! the meeting page over it, and renews it (pebble issues 30-second
//! certificates here) without dropping a meeting. A domain that points
//! elsewhere gets a clear error in the log.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aconfi_core::ServerMsg;
use aconfi_testpeer::silent_join;
use common::{send, until};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DOMAIN: &str = "meet.aconfi.test";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// pebble and its DNS, stopped on drop.
struct Pebble {
    children: Vec<Child>,
    dir: PathBuf,
    /// The directory URL.
    directory: String,
    /// Its API's certificate (PEM file), for `--acme-ca`.
    api_ca: PathBuf,
    api_der: Vec<u8>,
    management: u16,
    dns_management: u16,
}

impl Pebble {
    /// Validates TLS-ALPN-01 on `tls_port`; issues certificates valid for
    /// `validity` seconds.
    fn start(tls_port: u16, validity: u64) -> Pebble {
        let dir = std::env::temp_dir().join(format!("aconfi-pebble-{}-{tls_port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        std::fs::write(dir.join("api.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.join("api.key"), ck.signing_key.serialize_pem()).unwrap();
        let (api, management, dns, dns_management) = (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{api}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.join("api.pem"),
            "privateKey": dir.join("api.key"),
            "httpPort": 5002,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": validity,
        }});
        std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
        let quiet = || Stdio::null();
        let dns_server = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns}"), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .stdout(quiet())
            .stderr(quiet())
            .spawn()
            .expect("pebble-challtestsrv (Debian package pebble) runs");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(dir.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            // No random waits before validating; no nonces refused at random.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(quiet())
            .stderr(quiet())
            .spawn()
            .expect("pebble (Debian package pebble) runs");
        let p = Pebble {
            children: vec![dns_server, pebble],
            directory: format!("https://localhost:{api}/dir"),
            api_ca: dir.join("api.pem"),
            api_der: ck.cert.der().to_vec(),
            dir,
            management,
            dns_management,
        };
        for port in [api, management, dns_management] {
            let started = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(started.elapsed() < Duration::from_secs(15), "pebble did not listen on {port}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        p
    }

    /// pebble's issuing root (PEM), from its management API.
    async fn root(&self) -> CertificateDer<'static> {
        use rustls::pki_types::pem::PemObject;
        let (status, _, body) =
            common::https_request_with_cert(self.management, &self.api_der, "GET", "/roots/0").await;
        assert_eq!(status, 200, "{body}");
        CertificateDer::from_pem_slice(body.as_bytes()).expect("a PEM certificate").into_owned()
    }

    /// Makes `name` resolve to `ip` in pebble's DNS.
    async fn point(&self, name: &str, ip: &str) {
        let body = serde_json::json!({ "host": format!("{name}."), "addresses": [ip] }).to_string();
        let mut s = TcpStream::connect(("127.0.0.1", self.dns_management)).await.unwrap();
        let req = format!(
            "POST /add-a HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS connection to A-Confi on `port` for `DOMAIN`, trusting only
/// `root`; the certificate it presented. Fails until one is issued.
async fn connect(
    port: u16,
    root: &CertificateDer<'static>,
) -> std::io::Result<(tokio_rustls::client::TlsStream<TcpStream>, Vec<u8>)> {
    let mut config = trusting(root);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let tls =
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(ServerName::try_from(DOMAIN).unwrap(), tcp).await?;
    let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default();
    Ok((tls, leaf))
}

/// A TLS client configuration that trusts `root` and nothing else.
fn trusting(root: &CertificateDer<'static>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()
}

/// A WebSocket to A-Confi on `port` for `DOMAIN`, trusting only `root`.
async fn ws_over(port: u16, root: &CertificateDer<'static>) -> common::Ws {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async_tls_with_config(
        format!("wss://{DOMAIN}:{port}/ws"),
        tcp,
        None,
        Some(tokio_tungstenite::Connector::Rustls(Arc::new(trusting(root)))),
    )
    .await
    .expect("a WebSocket over the ACME certificate");
    ws
}

/// The certificate served once one is: polls (the order takes a moment).
async fn served_cert(port: u16, root: &CertificateDer<'static>, not: Option<&[u8]>) -> Vec<u8> {
    let started = Instant::now();
    loop {
        if let Ok((_, leaf)) = connect(port, root).await {
            if not != Some(leaf.as_slice()) {
                return leaf;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no (new) certificate within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_a_real_acme_ca_serves_the_meeting_and_is_renewed_without_dropping_it() {
    let port = free_port();
    let pebble = Pebble::start(port, 30);
    let server = common::server_with(|c| {
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.domain = vec![DOMAIN.into()];
        c.acme_directory = pebble.directory.clone();
        c.acme_ca = Some(pebble.api_ca.clone());
    })
    .await;
    let root = pebble.root().await;

    // A client that trusts only pebble's root accepts the certificate for
    // the domain, and gets the meeting page over it.
    let first = served_cert(port, &root, None).await;
    let (mut tls, _) = connect(port, &root).await.unwrap();
    tls.write_all(format!("GET /some-room HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut page = Vec::new();
    let _ = tls.read_to_end(&mut page).await;
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("<title>A-Confi"), "{page}");
    assert!(page.to_ascii_lowercase().contains("strict-transport-security"), "a trusted certificate: HSTS");

    // A meeting over the first certificate...
    let mut ws = ws_over(port, &root).await;
    send(&mut ws, &silent_join("renewal-room")).await;
    until(&mut ws, |m| matches!(m, ServerMsg::Joined { .. }).then_some(())).await;

    // ...goes on when the certificate is renewed (a third of its 30 s
    // before it ends): a newcomer over the new one meets the first.
    let renewed = served_cert(port, &root, Some(&first)).await;
    assert_ne!(renewed, first);
    let mut newcomer = ws_over(port, &root).await;
    send(&mut newcomer, &silent_join("renewal-room")).await;
    until(&mut newcomer, |m| matches!(m, ServerMsg::Joined { .. }).then_some(())).await;
    until(&mut ws, |m| matches!(m, ServerMsg::ParticipantJoined { .. }).then_some(())).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_that_points_elsewhere_gets_a_clear_error() {
    let port = free_port();
    let pebble = Pebble::start(port, 3600);
    pebble.point("elsewhere.aconfi.test", "127.0.0.2").await;
    // The real binary, whose log an operator reads.
    let mut aconfi = common::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_aconfi"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--media-port", "0", "--media-bind", "127.0.0.1"])
            .args(["--shards", "1", "--domain", "elsewhere.aconfi.test", "--acme-directory", &pebble.directory])
            .arg("--acme-ca")
            .arg(&pebble.api_ca)
            .env_remove("ACONFI_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs aconfi"),
    );
    let stdout = aconfi.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let error = loop {
        let left = Duration::from_secs(60).saturating_sub(started.elapsed());
        let line = rx.recv_timeout(left).expect("an error about the certificate within 60 s");
        if line.contains("could not get a certificate") {
            break line;
        }
    };
    let _ = aconfi.kill();
    let _ = aconfi.wait();
    assert!(error.contains("ERROR"), "{error}");
    assert!(error.contains("the CA could not check the names: does each --domain point at this server"), "{error}");
    assert!(error.contains("elsewhere.aconfi.test"), "it names the domain: {error}");
}

/// `--acme-cache`: the account and certificate are kept in the directory
/// (the one thing A-Confi writes, readable by its user alone), so a
/// restart serves the same certificate without asking the CA — here the
/// CA is gone by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_acme_cache_a_restart_serves_the_cached_certificate_without_the_ca() {
    use std::os::unix::fs::PermissionsExt;
    let port = free_port();
    let pebble = Pebble::start(port, 3600);
    let cache = std::env::temp_dir().join(format!("aconfi-acme-cache-test-{port}"));
    let _ = std::fs::remove_dir_all(&cache);
    let config = |c: &mut aconfi_server::Config| {
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.domain = vec![DOMAIN.into()];
        c.acme_directory = pebble.directory.clone();
        c.acme_ca = Some(pebble.api_ca.clone());
        c.acme_cache = Some(cache.clone());
    };
    let server = common::server_with(config).await;
    let root = pebble.root().await;
    let first = served_cert(port, &root, None).await;
    // The certificate is served first and cached after: wait for the
    // account and the certificate in the cache, each 0600 (written inside
    // the 0700 directory, then locked down).
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let cached = || -> Vec<(std::path::PathBuf, u32)> {
        std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).map(|p| (p.clone(), mode(&p))).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(cached().len() >= 2 && cached().iter().all(|(_, m)| *m == 0o600)) {
        assert!(Instant::now() < deadline, "an account and a certificate, each 0600: {:?}", cached());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mode(&cache), 0o700, "the cache directory is the service's alone");
    server.shutdown().await;

    // The CA goes away; the restarted server still has its certificate.
    // (pebble's directory goes with it: its API certificate is kept here.)
    let ca = cache.with_extension("ca.pem");
    std::fs::copy(&pebble.api_ca, &ca).unwrap();
    let config = {
        let directory = pebble.directory.clone();
        let ca = ca.clone();
        let cache = cache.clone();
        move |c: &mut aconfi_server::Config| {
            c.listen = format!("127.0.0.1:{port}").parse().unwrap();
            c.domain = vec![DOMAIN.into()];
            c.acme_directory = directory;
            c.acme_ca = Some(ca);
            c.acme_cache = Some(cache);
        }
    };
    drop(pebble);
    let again = common::server_with(config).await;
    let second = served_cert(port, &root, None).await;
    assert_eq!(second, first, "the cached certificate, not a new one");
    again.shutdown().await;
    std::fs::remove_dir_all(&cache).unwrap();
    std::fs::remove_file(&ca).unwrap();
}
