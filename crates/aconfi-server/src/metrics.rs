//! `/metrics` for Prometheus, on its own listen address and off by default
//! (`--metrics-listen 127.0.0.1:9100`). Aggregate figures only: how many
//! rooms, participants, connections and live streams there are, datagrams
//! and bytes in and out of the media port and those dropped, and this
//! process's CPU time and memory. No metric carries a label: no room name,
//! no id, no address can appear, by construction.
//!
//! prometheus-client (the Prometheus project's own Rust client) does the
//! text format; the counters are atomics the media task bumps.

use std::net::SocketAddr;

use anyhow::Context;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio_util::sync::CancellationToken;

/// Every figure, shared by the tasks that count and the endpoint.
#[derive(Clone, Default)]
pub struct Metrics {
    pub rooms: Gauge,
    pub participants: Gauge,
    pub connections: Gauge,
    pub streams: Gauge,
    pub datagrams_received: Counter,
    pub bytes_received: Counter,
    pub datagrams_sent: Counter,
    pub bytes_sent: Counter,
    pub datagrams_dropped: Counter,
    cpu_seconds: Counter<f64>,
    resident_bytes: Gauge,
    /// In a cluster (shown only there): the nodes this one counts as
    /// alive, itself included, and whether Redis answered last time.
    pub cluster: Option<ClusterGauges>,
}

/// A cluster node's own figures.
#[derive(Clone, Default)]
pub struct ClusterGauges {
    pub nodes: Gauge,
    pub redis_reachable: Gauge,
}

impl Metrics {
    fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("aconfi");
        r.register("rooms", "Rooms with someone in them", self.rooms.clone());
        r.register("participants", "Participants in a room (not counting those at a door)", self.participants.clone());
        r.register("connections", "Open signaling WebSockets", self.connections.clone());
        r.register("streams", "Meetings being streamed live", self.streams.clone());
        r.register(
            "media_datagrams_received",
            "UDP datagrams received on the media port",
            self.datagrams_received.clone(),
        );
        r.register_with_unit(
            "media_received",
            "Bytes received on the media port",
            Unit::Bytes,
            self.bytes_received.clone(),
        );
        r.register(
            "media_datagrams_sent",
            "UDP datagrams sent from the media port (forwarded media and its control)",
            self.datagrams_sent.clone(),
        );
        r.register_with_unit("media_sent", "Bytes sent from the media port", Unit::Bytes, self.bytes_sent.clone());
        r.register(
            "media_datagrams_dropped",
            "Datagrams that could not be sent (socket buffer full): lost as on a congested network",
            self.datagrams_dropped.clone(),
        );
        r.register_with_unit("process_cpu", "CPU time used by this process", Unit::Seconds, self.cpu_seconds.clone());
        r.register_with_unit(
            "process_resident_memory",
            "Resident memory of this process",
            Unit::Bytes,
            self.resident_bytes.clone(),
        );
        if let Some(c) = &self.cluster {
            r.register("cluster_nodes", "Nodes of the cluster alive, this one included", c.nodes.clone());
            r.register(
                "cluster_redis_reachable",
                "1 if Redis answered this node's last call, else 0",
                c.redis_reachable.clone(),
            );
        }
        r
    }

    /// The text exposition, with the process figures read now.
    pub fn render(&self) -> String {
        if let Some((cpu, rss)) = process_usage() {
            let before = self.cpu_seconds.get();
            if cpu > before {
                self.cpu_seconds.inc_by(cpu - before);
            }
            self.resident_bytes.set(rss as i64);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry());
        out
    }
}

/// This process's CPU seconds and resident bytes (Linux `/proc`).
fn process_usage() -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // utime and stime, in clock ticks of 1/100 s (USER_HZ on Linux).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kb: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some((ticks as f64 / 100.0, rss_kb * 1024))
}

/// Serves `/metrics` over plain HTTP on `addr` until `cancel`; the bound
/// address. Plain HTTP: it is meant for a scraper on the same machine or a
/// private network, and says nothing about any meeting.
pub async fn serve(addr: SocketAddr, metrics: Metrics, cancel: CancellationToken) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics port {}", addr.port()))?;
    let bound = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.render())
                    .into_response()
            }
        }),
    );
    // Half-sent requests are dropped after the same header timeout as on
    // the HTTPS port: a scraper's connection costs little, a pile of
    // stalled ones would not.
    let handle = axum_server::Handle::new();
    let mut server = axum_server::from_tcp(listener.into_std()?)?.handle(handle.clone());
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(crate::HEADER_READ_TIMEOUT);
    tokio::spawn(async move {
        cancel.cancelled().await;
        handle.shutdown();
    });
    tokio::spawn(async move {
        let _ = server.serve(app.into_make_service()).await;
    });
    Ok(bound)
}
