//! The A-Confi server: the thin IO shell around `aconfi-core`.
//!
//! One task owns the SFU core (`media`), one task per WebSocket (`ws`),
//! axum serves the embedded web client over HTTPS (`web`); live-streaming
//! workers are separate processes run by `stream`.

#![forbid(unsafe_code)]

pub mod config;
pub mod directory;
mod ice_tcp;
pub mod media;
pub mod metrics;
pub mod stream;
pub mod tls;
pub mod web;
pub mod ws;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

/// What the binary logs at `level` (`--log`): A-Confi's own crates at that
/// level, dependencies only warnings, since their debug output may carry
/// addresses. At `info` (the default) nothing is logged per meeting: start,
/// stop, errors, and aggregate counts every [`media::SUMMARY_EVERY`].
pub fn log_filter(level: &str) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    EnvFilter::try_new(format!("warn,aconfi={level},aconfi_server={level},aconfi_core={level}"))
        .unwrap_or_else(|_| EnvFilter::new("warn,aconfi=info,aconfi_server=info,aconfi_core=info"))
}

/// How long a client has to send a request's headers (the TLS handshake has
/// its own 10 s, axum-server's default).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared by every HTTP handler and WebSocket task.
#[derive(Clone)]
pub struct AppState {
    core: mpsc::Sender<media::CoreCmd>,
    next_id: Arc<AtomicU64>,
    cancel: CancellationToken,
    /// Pages that may open the signaling WebSocket.
    origins: web::Origins,
    /// Send Strict-Transport-Security (only with the operator's certificate).
    hsts: bool,
    /// The Content-Security-Policy header, with `--frame-ancestors`.
    csp: axum::http::HeaderValue,
    /// Open WebSockets, in all and per address.
    connections: Arc<ws::Connections>,
}

/// A running server.
pub struct Server {
    /// Where HTTPS and the WebSocket listen.
    pub https_addr: SocketAddr,
    /// Addresses advertised for media.
    pub media_addrs: Vec<SocketAddr>,
    /// Where `/metrics` is served, if `--metrics-listen` was given.
    pub metrics_addr: Option<SocketAddr>,
    /// The generated self-signed certificate (DER), if no `--cert` was given.
    pub cert_der: Option<Vec<u8>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    http: axum_server::Handle<SocketAddr>,
}

/// Binds everything and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    // Made once; `--frame-ancestors` was checked when it was parsed.
    let csp = web::content_security_policy(&config.frame_ancestors);
    let csp = axum::http::HeaderValue::from_str(&csp).context("the Content-Security-Policy header")?;
    let tls = tls::load(&config).await?;
    let mut media = media::MediaSockets::bind(&config).await?;
    let media_addrs = media.candidates();
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("binding HTTPS port {}", config.listen.port()))?;
    listener.set_nonblocking(true)?;
    let https_addr = listener.local_addr()?;
    // Browsers on networks that let only the web's port out reach media
    // there too, over TCP.
    let shared_port = media.share_tcp_port(https_addr);
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();

    let (core_tx, core_rx) = mpsc::channel(1024);
    // The worker's self-check takes a moment (GStreamer loads its plugins):
    // the core starts after it, and HTTPS before, so a restart is not
    // longer by that for the clients reconnecting (their first messages wait
    // in the channel).
    let metrics = metrics::Metrics::default();
    let media_metrics = metrics.clone();
    let worker = config.stream_worker.clone();
    let media_cancel = cancel.clone();
    tracker.spawn(async move {
        let streaming = stream::Availability::probe(worker.as_deref()).await;
        match streaming.reason() {
            None => tracing::info!("live streaming available"),
            Some(r) => tracing::info!(reason = %r, "live streaming unavailable"),
        }
        media::run(media, core_rx, streaming, media_metrics, media_cancel).await;
    });

    let state = AppState {
        core: core_tx,
        next_id: Arc::new(AtomicU64::new(1)),
        cancel: cancel.clone(),
        origins: web::Origins::new(tls.operator_cert_der.clone(), &config.origin),
        hsts: tls.operator_cert_der.is_some(),
        csp,
        connections: Arc::new(ws::Connections::new(
            config.max_connections,
            config.max_connections_per_address,
            metrics.connections.clone(),
        )),
    };
    let app = web::router(state);
    let http = axum_server::Handle::new();
    let mut server =
        axum_server::from_tcp_rustls(listener, tls.config)?.map(|tls| tls.acceptor(shared_port)).handle(http.clone());
    // A request whose headers are not all there in time is dropped: without
    // a timer hyper waits for ever, and half-sent requests pile up.
    server.http_builder().http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    tracker.spawn(async move {
        if let Err(e) = server.serve(app.into_make_service_with_connect_info::<SocketAddr>()).await {
            tracing::error!(error = %e, "HTTPS server stopped");
        }
    });
    let metrics_addr = match config.metrics_listen {
        Some(addr) => Some(metrics::serve(addr, metrics, cancel.clone()).await?),
        None => None,
    };
    tracker.close();
    Ok(Server { https_addr, media_addrs, metrics_addr, cert_der: tls.generated_cert_der, cancel, tracker, http })
}

impl Server {
    /// Stops accepting, closes every WebSocket with 1001, ends the media loop.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.http.graceful_shutdown(Some(Duration::from_secs(2)));
        self.tracker.wait().await;
    }
}
