//! Command-line flags, each also readable from an `ACONFI_*` variable.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;

/// A-Confi: a private video meeting server in one binary.
///
/// With no options it serves https://localhost:8443 with a self-signed
/// certificate made in memory, and media on UDP port 10000.
#[derive(Debug, Clone, Parser)]
#[command(name = "aconfi", version, about, long_about = None)]
pub struct Config {
    /// Address for HTTPS and the signaling WebSocket.
    #[arg(long, env = "ACONFI_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// UDP port for all media (every participant shares it). 0 picks a free one.
    #[arg(long, env = "ACONFI_MEDIA_PORT", default_value_t = 10000)]
    pub media_port: u16,

    /// Local address to receive media on. Without it (or with 0.0.0.0 or
    /// ::), A-Confi binds every IPv4 interface address on the media port:
    /// media is IPv4 only for now.
    #[arg(long, env = "ACONFI_MEDIA_BIND")]
    pub media_bind: Option<IpAddr>,

    /// Address browsers should send media to, put into ICE candidates: the
    /// server's public address when it sits behind NAT. Repeat or separate
    /// with commas for several.
    #[arg(long, env = "ACONFI_PUBLIC_IP", value_delimiter = ',')]
    pub public_ip: Vec<IpAddr>,

    /// TLS certificate chain (PEM). Without it a self-signed one is made in memory.
    #[arg(long, env = "ACONFI_CERT", requires = "key")]
    pub cert: Option<PathBuf>,

    /// TLS private key (PEM) for --cert.
    #[arg(long, env = "ACONFI_KEY", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Page origins allowed to open the signaling WebSocket besides those
    /// the certificate is valid for, e.g. `https://meet.example.org` when a
    /// reverse proxy serves A-Confi under its own name. Comma-separated.
    #[arg(long, env = "ACONFI_ORIGIN", value_delimiter = ',')]
    pub origin: Vec<String>,

    /// Most WebSocket connections open at once; more are answered 503.
    #[arg(long, env = "ACONFI_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Most WebSocket connections open at once from one address (IPv4, or
    /// an IPv6 /64): a whole office behind one NAT must fit in a meeting,
    /// one machine must not fill the server.
    #[arg(long, env = "ACONFI_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 300)]
    pub max_connections_per_address: usize,

    /// Serve Prometheus metrics (aggregate figures only: no room, id or
    /// address) over plain HTTP at this address, e.g. 127.0.0.1:9100.
    /// Off by default.
    #[arg(long, env = "ACONFI_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// The live-streaming worker (`aconfi-stream`). Default: next to this
    /// binary, else on PATH. Without a working one, streaming is offered as
    /// unavailable, with the reason.
    #[arg(long, env = "ACONFI_STREAM_WORKER")]
    pub stream_worker: Option<PathBuf>,

    /// Log filter (tracing syntax), e.g. `info` or `aconfi=debug`. Logs never
    /// carry IP addresses, names or room names.
    #[arg(long, env = "ACONFI_LOG", default_value = "info")]
    pub log: String,
}

impl Config {
    /// The defaults, as if run with no flags and no environment.
    pub fn defaults() -> Self {
        Config::parse_from(["aconfi"])
    }
}
