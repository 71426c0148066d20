//! The A-Confi server: the thin IO shell around `aconfi-core`.
//!
//! One task per media shard owns that shard's SFU core, each on a thread of
//! its own (`shard`: its contract, its sockets, its loop); `shards` keeps
//! the room → shard map;
//! one task per WebSocket (`ws`); axum serves the embedded web client over
//! HTTPS (`web`); live-streaming workers are separate processes run by
//! `stream`. In a cluster of nodes (`--redis-url`), `cluster` keeps this
//! node's rooms in the room directory in Redis (`directory`).

#![forbid(unsafe_code)]

mod acme_cache;
pub mod cluster;
pub mod config;
pub mod directory;
pub mod fd_limit;
mod ice_tcp;
pub mod ingest;
pub mod metrics;
pub mod shard;
pub mod shards;
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
/// stop, errors, and aggregate counts every [`shard::SUMMARY_EVERY`].
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
    /// The media shards and the room → shard map.
    shards: Arc<shards::Shards>,
    next_id: Arc<AtomicU64>,
    cancel: CancellationToken,
    /// Pages that may open the signaling WebSocket.
    origins: web::Origins,
    /// Send Strict-Transport-Security (only with the operator's certificate).
    hsts: bool,
    /// The Content-Security-Policy header, with `--frame-ancestors`.
    csp: axum::http::HeaderValue,
    /// `--frame-ancestors`, for the policy of a cluster's node, which
    /// changes with the nodes alive.
    frame_ancestors: config::FrameAncestors,
    /// This node's part in a cluster, with `--redis-url`.
    cluster: Option<Arc<cluster::Cluster>>,
    /// Open WebSockets, in all and per address.
    connections: Arc<ws::Connections>,
    /// The web client's page, with the operator's settings in it.
    page: axum::body::Bytes,
}

/// A running server.
pub struct Server {
    /// Where HTTPS and the WebSocket listen.
    pub https_addr: SocketAddr,
    /// Addresses advertised for media, every shard's (shard 0's first).
    pub media_addrs: Vec<SocketAddr>,
    /// How many media shards run.
    pub shard_count: usize,
    /// Where `/metrics` is served, if `--metrics-listen` was given.
    pub metrics_addr: Option<SocketAddr>,
    /// The generated self-signed certificate (DER), if no `--cert` was given.
    pub cert_der: Option<Vec<u8>>,
    shards: Arc<shards::Shards>,
    cluster: Option<Arc<cluster::Cluster>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    http: axum_server::Handle<SocketAddr>,
}

/// Binds everything and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    // Made once; `--frame-ancestors` was checked when it was parsed.
    let csp = web::content_security_policy(&config.frame_ancestors, &[]);
    let csp = axum::http::HeaderValue::from_str(&csp).context("the Content-Security-Policy header")?;
    let mut tls = tls::load(&config).await?;
    let acme = tls.acme.take();
    let acme_domains = acme.as_ref().map(|a| a.domains.clone()).unwrap_or_default();
    // Strict-Transport-Security only with a certificate browsers trust: on
    // the generated one it would stop them from letting the user past its
    // warning for a year.
    let hsts = tls.operator_cert_der.is_some() || acme.as_ref().is_some_and(|a| a.trusted);
    let shard_count = config.shard_count();
    let caps = ice_tcp::Caps::default();
    let mut medias = Vec::with_capacity(shard_count);
    for i in 0..shard_count {
        medias.push(shard::sockets::MediaSockets::bind(&config, i, caps.clone()).await?);
    }
    let media_addrs = medias.iter().flat_map(|m| m.candidates()).collect();
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("binding HTTPS port {}", config.listen.port()))?;
    listener.set_nonblocking(true)?;
    let https_addr = listener.local_addr()?;
    // Browsers on networks that let only the web's port out reach media
    // there too, over TCP: every shard offers it, and the connection's
    // first STUN request names its shard.
    let mut https_candidates = Vec::new();
    for m in &mut medias {
        https_candidates = m.share_tcp_port(https_addr);
    }
    let shared_port = ice_tcp::SharedPort::new(medias.iter().map(|m| m.hub()).collect(), https_candidates);
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();

    let mut metrics = metrics::Metrics::default();
    if config.redis_url.is_some() {
        metrics.cluster = Some(metrics::ClusterGauges::default());
    }
    let guess_limits = aconfi_core::address::GuessLimits::default();
    let stream_limits = config.stream_limits();
    let ingest = config.ingest_policy();
    let mut cores = Vec::with_capacity(shard_count);
    let mut starts = Vec::with_capacity(shard_count);
    for (index, media) in medias.into_iter().enumerate() {
        let (tx, rx) = mpsc::channel(1024);
        let stats = Arc::new(shard::ShardStats::default());
        cores.push((tx, stats.clone()));
        let shard = shard::Shard {
            index,
            of: shard_count,
            stats,
            guess_limits: guess_limits.clone(),
            stream_limits: stream_limits.clone(),
            ingest: ingest.clone(),
        };
        starts.push((media, rx, shard));
    }
    let shards = Arc::new(shards::Shards::new(cores));
    // The worker's self-check takes a moment (GStreamer loads its plugins):
    // the shards start after it, and HTTPS before, so a restart is not
    // longer by that for the clients reconnecting (their first messages wait
    // in the channels).
    let worker = config.stream_worker.clone();
    let media_metrics = metrics.clone();
    let media_cancel = cancel.clone();
    let shard_tracker = tracker.clone();
    tracker.spawn(async move {
        let streaming = stream::Availability::probe(worker.as_deref()).await;
        match streaming.reason() {
            None => tracing::info!("live streaming available"),
            Some(r) => tracing::info!(reason = %r, "live streaming unavailable"),
        }
        for (media, rx, shard) in starts {
            let index = shard.index;
            match shard::run::spawn(media, rx, streaming.clone(), media_metrics.clone(), shard, media_cancel.clone()) {
                // Shutdown waits for every shard to stop.
                Ok(done) => drop(shard_tracker.spawn(async move {
                    let _ = done.await;
                })),
                Err(e) => tracing::error!(shard = index, error = %e, "a media shard could not start"),
            }
        }
    });
    tracker.spawn(shards::report(shards.clone(), metrics.clone(), cancel.clone()));
    let cluster = cluster::Cluster::new(&config, shards.clone(), metrics.cluster.clone().unwrap_or_default())?;
    if let Some(c) = &cluster {
        // A node of another cluster's secret must not run: it would take
        // over every valid lease as foreign.
        if let Err(e) = c.check_secret().await {
            cancel.cancel();
            return Err(e);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        shards.on_empty(tx);
        tracker.spawn(c.clone().run(rx, cancel.clone()));
    }

    let state = AppState {
        shards: shards.clone(),
        next_id: Arc::new(AtomicU64::new(1)),
        cancel: cancel.clone(),
        origins: web::Origins::new(tls.operator_cert_der.clone(), acme_domains, &config.origin),
        hsts,
        csp,
        frame_ancestors: config.frame_ancestors.clone(),
        cluster: cluster.clone(),
        connections: Arc::new(ws::Connections::new(
            config.max_connections,
            config.max_connections_per_address,
            metrics.connections.clone(),
        )),
        page: web::index_page(&web::PageSettings { camera_height: config.camera_height })?,
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
    if let Some(acme) = acme {
        tracker.spawn(acme.run(cancel.clone()));
    }
    let metrics_addr = match config.metrics_listen {
        Some(addr) => Some(metrics::serve(addr, metrics, cancel.clone()).await?),
        None => None,
    };
    tracker.close();
    Ok(Server {
        https_addr,
        media_addrs,
        shard_count,
        metrics_addr,
        cert_der: tls.generated_cert_der,
        shards,
        cluster,
        cancel,
        tracker,
        http,
    })
}

impl Server {
    /// Rooms on each media shard, as the shards last reported them (once a
    /// second): counts, no names. For tests and operators' tools.
    pub fn rooms_per_shard(&self) -> Vec<usize> {
        self.shards.rooms_per_shard()
    }

    /// The shard a room is on, if anyone is in it (or at its door).
    pub fn shard_of(&self, room: &str) -> Option<usize> {
        aconfi_core::RoomName::parse(room).ok().and_then(|r| self.shards.shard_of(&r))
    }

    /// This node's public URL, if it is one of a cluster.
    pub fn cluster_url(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.url())
    }

    /// Whether this node's last call to the cluster's Redis was answered.
    pub fn cluster_reachable(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.reachable())
    }

    /// The other live nodes of the cluster, as this node last read them.
    pub fn cluster_peers(&self) -> Vec<String> {
        self.cluster.as_ref().map(|c| c.others()).unwrap_or_default()
    }

    /// In a cluster, a graceful stop: no new room is made here and the
    /// other nodes no longer count this one; the meetings here go on until
    /// they end or `within` has passed, then their participants are sent to
    /// another node. One node alone: returns at once.
    pub async fn drain(&self, within: Duration) {
        let Some(c) = &self.cluster else { return };
        c.start_draining().await;
        if tokio::time::timeout(within, self.shards.until_empty()).await.is_ok() {
            return;
        }
        if c.hand_over().await {
            // They reconnect to their new home at once; those that do not
            // are closed by the shutdown.
            let _ = tokio::time::timeout(Duration::from_secs(5), self.shards.until_empty()).await;
        }
    }

    /// Stops accepting, closes every WebSocket with 1001, ends the media
    /// shards. In a cluster, first gives up this node's place and rooms in
    /// Redis, so other nodes take its rooms at once.
    pub async fn shutdown(self) {
        if let Some(c) = &self.cluster {
            c.leave().await;
        }
        self.cancel.cancel();
        self.http.graceful_shutdown(Some(Duration::from_secs(2)));
        self.tracker.wait().await;
    }
}
