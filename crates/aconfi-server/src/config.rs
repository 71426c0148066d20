//! Command-line flags, each also readable from an `ACONFI_*` variable.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use clap::Parser;

/// A-Confi: a private video meeting server in one binary.
///
/// With no options it serves https://localhost:8443 with a self-signed
/// certificate made in memory, and media on UDP port 10000.
#[derive(Debug, Clone, Parser)]
#[command(name = "aconfi", version = VERSION, about, long_about = None)]
pub struct Config {
    /// Address for HTTPS and the signaling WebSocket.
    #[arg(long, env = "ACONFI_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// UDP port for media (every participant of a shard shares it), also
    /// listened on over TCP. With several shards the first of a range:
    /// shard i uses this port + i. 0: each shard picks a free one.
    #[arg(long, env = "ACONFI_MEDIA_PORT", default_value_t = 10000)]
    pub media_port: u16,

    /// Media shards: each its own thread, media port and rooms (a room
    /// lives on one shard). Default: one per CPU core. 1 runs all media on
    /// one thread and one port.
    #[arg(long, env = "ACONFI_SHARDS", value_parser = clap::value_parser!(u16).range(1..=MAX_SHARDS as i64))]
    pub shards: Option<u16>,

    /// Local address to receive media on. Without it (or with 0.0.0.0 or
    /// ::), A-Confi binds every interface address on the media port, each
    /// its own ICE candidate: IPv4 (loopback included) and IPv6 (not
    /// loopback or link-local).
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

    /// Get a trusted certificate for these domain names by itself, from
    /// Let's Encrypt or the CA `--acme-directory` names (ACME, TLS-ALPN-01
    /// on the HTTPS port, which must be reachable as port 443 of each
    /// name), and renew it a third of its lifetime before it ends. Kept in
    /// memory unless `--acme-cache` is given. Comma-separated; instead of
    /// `--cert`/`--key`. docs/deploy.md.
    #[arg(long, env = "ACONFI_DOMAIN", value_delimiter = ',', value_parser = domain_name, conflicts_with = "cert")]
    pub domain: Vec<String>,

    /// The ACME CA for `--domain`: `letsencrypt`, `letsencrypt-staging`
    /// (for trying things out: its certificates are not trusted), or the
    /// https URL of another CA's directory.
    #[arg(long, env = "ACONFI_ACME_DIRECTORY", default_value = "letsencrypt", value_parser = acme_directory)]
    pub acme_directory: String,

    /// An e-mail address the CA may write to about the certificates
    /// (optional).
    #[arg(long, env = "ACONFI_ACME_EMAIL")]
    pub acme_email: Option<String>,

    /// A directory to keep the ACME account and certificate in, so that a
    /// restart does not ask the CA again (its rate limits). The one thing
    /// A-Confi writes, and only when given; nothing about meetings.
    #[arg(long, env = "ACONFI_ACME_CACHE", requires = "domain")]
    pub acme_cache: Option<PathBuf>,

    /// A CA certificate (PEM) to trust for the ACME directory's own HTTPS,
    /// for a private ACME CA; the public roots are trusted anyway.
    #[arg(long, env = "ACONFI_ACME_CA", requires = "domain")]
    pub acme_ca: Option<PathBuf>,

    /// Page origins allowed to open the signaling WebSocket besides those
    /// the certificate is valid for, e.g. `https://meet.example.org` when a
    /// reverse proxy serves A-Confi under its own name. Comma-separated.
    #[arg(long, env = "ACONFI_ORIGIN", value_delimiter = ',')]
    pub origin: Vec<String>,

    /// Sites that may show A-Confi inside a frame (`<iframe>`), as the
    /// Content-Security-Policy's `frame-ancestors`: space-separated, each
    /// `'self'`, `'none'` or an origin such as `https://example.org` or
    /// `https://example.org:8443` (no path, no wildcard). docs/embedding.md.
    #[arg(long, env = "ACONFI_FRAME_ANCESTORS", value_name = "SOURCES", default_value = "'self'")]
    pub frame_ancestors: FrameAncestors,

    /// Most WebSocket connections open at once; more are answered 503.
    #[arg(long, env = "ACONFI_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Most WebSocket connections open at once from one address (IPv4, or
    /// an IPv6 /64): a whole office behind one NAT must fit in a meeting,
    /// one machine must not fill the server.
    #[arg(long, env = "ACONFI_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 300)]
    pub max_connections_per_address: usize,

    /// The camera picture browsers send, by its height in pixels (16:9:
    /// 720 is 1280×720). The smaller simulcast layers are a half and a
    /// quarter of it. Lower costs every sender less CPU and every viewer
    /// less bandwidth, for a less sharp picture; a camera that cannot give
    /// this much sends what it has.
    #[arg(long, env = "ACONFI_CAMERA_HEIGHT", default_value_t = 720,
        value_parser = clap::value_parser!(u16).range(180..=1080))]
    pub camera_height: u16,

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

    /// Most live streams at once on this server (each is an encoder using
    /// about a quarter of a core). Default: one per two CPU cores, at
    /// least one.
    #[arg(long, env = "ACONFI_MAX_STREAMS")]
    pub max_streams: Option<usize>,

    /// Most live streams at once started from one address (IPv4, or an
    /// IPv6 /64).
    #[arg(long, env = "ACONFI_MAX_STREAMS_PER_ADDRESS", default_value_t = 2)]
    pub max_streams_per_address: usize,

    /// Let live streams go to loopback, private, link-local and other
    /// non-public addresses (an ingest on your own network). Off: a
    /// moderator cannot make the server connect into its own network.
    #[arg(long, env = "ACONFI_STREAM_ALLOW_PRIVATE")]
    pub stream_allow_private: bool,

    /// Ingest hosts streamed to wherever they resolve, private addresses
    /// included, as written in the stream URL (comma-separated), e.g.
    /// `ingest.intranet.example`.
    #[arg(long, env = "ACONFI_STREAM_ALLOW_HOST", value_delimiter = ',')]
    pub stream_allow_host: Vec<String>,

    /// Redis (or Valkey) holding the room directory of a cluster of nodes,
    /// e.g. `redis://10.0.0.5:6379/`: each room has one home node, and
    /// clients reaching another node are sent on to it. Needs
    /// `--public-url` and `--cluster-secret`. Without it: one node, no
    /// Redis. docs/scaling.md.
    #[arg(long, env = "ACONFI_REDIS_URL", requires_all = ["public_url", "cluster_secret"])]
    pub redis_url: Option<String>,

    /// This node's own address as browsers reach it, `https://host[:port]`
    /// (not the load balancer's): where clients are sent for rooms homed
    /// here.
    #[arg(long, env = "ACONFI_PUBLIC_URL", requires = "redis_url")]
    pub public_url: Option<PublicUrl>,

    /// A secret shared by every node of the cluster (16 characters or
    /// more): Redis knows rooms only by an HMAC of their name under it.
    #[arg(long, env = "ACONFI_CLUSTER_SECRET", hide_env_values = true, requires = "redis_url",
          value_parser = cluster_secret)]
    pub cluster_secret: Option<String>,

    /// In a cluster, how long a node that got SIGTERM waits for its
    /// meetings to end before it sends their participants to other nodes
    /// and stops; new rooms go to other nodes meanwhile. A second SIGTERM
    /// stops at once.
    #[arg(long, env = "ACONFI_DRAIN_SECONDS", default_value_t = 300)]
    pub drain_seconds: u64,

    /// Log filter (tracing syntax), e.g. `info` or `aconfi=debug`. Logs never
    /// carry IP addresses, names or room names.
    #[arg(long, env = "ACONFI_LOG", default_value = "info")]
    pub log: String,
}

/// What `--version` prints after the name: the version and the commit the
/// binary was built from (build.rs).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("ACONFI_COMMIT"), ")");

/// Most media shards (`--shards`); the default, one per core, is capped
/// here too.
pub const MAX_SHARDS: u16 = 256;

impl Config {
    /// The defaults, as if run with no flags and no environment.
    pub fn defaults() -> Self {
        Config::parse_from(["aconfi"])
    }

    /// How many media shards to run: `--shards`, else one per core.
    /// The live-stream caps these settings give.
    pub fn stream_limits(&self) -> aconfi_core::StreamLimits {
        let default = aconfi_core::StreamLimits::default();
        aconfi_core::StreamLimits::new(self.max_streams.unwrap_or(default.caps().0), self.max_streams_per_address)
    }

    /// Where live streams may go, by these settings.
    pub fn ingest_policy(&self) -> crate::ingest::IngestPolicy {
        crate::ingest::IngestPolicy {
            allow_private: self.stream_allow_private,
            allowed_hosts: self
                .stream_allow_host
                .iter()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    pub fn shard_count(&self) -> usize {
        match self.shards {
            Some(n) => usize::from(n),
            None => std::thread::available_parallelism().map_or(1, usize::from).min(usize::from(MAX_SHARDS)),
        }
    }

    /// The media port of shard `i`: `--media-port` + i (0 stays 0: the
    /// shard picks one), or an error past 65535.
    pub fn media_port_of(&self, i: usize) -> anyhow::Result<u16> {
        if self.media_port == 0 {
            return Ok(0);
        }
        u16::try_from(usize::from(self.media_port) + i).map_err(|_| {
            anyhow::anyhow!(
                "--media-port {} with {} shards needs ports up to {}: choose a lower --media-port",
                self.media_port,
                self.shard_count(),
                usize::from(self.media_port) + self.shard_count() - 1
            )
        })
    }
}

/// Let's Encrypt's production ACME directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging ACME directory (untrusted certificates).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// `--acme-directory`: a keyword or an https URL, as the URL.
fn acme_directory(value: &str) -> Result<String, String> {
    match value {
        "letsencrypt" => Ok(LETS_ENCRYPT.into()),
        "letsencrypt-staging" => Ok(LETS_ENCRYPT_STAGING.into()),
        url if url.starts_with("https://") && url.len() > "https://".len() && !url.contains(char::is_whitespace) => {
            Ok(url.into())
        }
        _ => Err("use letsencrypt, letsencrypt-staging or an https:// URL of an ACME directory".into()),
    }
}

/// `--domain`: a DNS name (not an address: ACME certifies names), lower case.
fn domain_name(value: &str) -> Result<String, String> {
    let name = value.trim().trim_end_matches('.').to_ascii_lowercase();
    if valid_host(&name)
        && name.contains('.')
        && name.parse::<IpAddr>().is_err()
        && name.bytes().any(|b| b.is_ascii_alphabetic())
    {
        Ok(name)
    } else {
        Err(format!("`{value}` is not a domain name like meet.example.org"))
    }
}

/// `--cluster-secret`: long enough not to be guessed.
fn cluster_secret(value: &str) -> Result<String, String> {
    if value.chars().count() < 16 {
        return Err("use 16 characters or more (e.g. `openssl rand -hex 32`)".into());
    }
    Ok(value.to_owned())
}

/// `--public-url`: `https://host` or `https://host:port`, nothing more, so
/// that it can go into a Content-Security-Policy and be compared with an
/// `Origin` header as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// The URL, as an origin (`https://host[:port]`, lower case).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PublicUrl {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let origin = public_origin(value.trim_end_matches('/'))
            .ok_or_else(|| format!("`{value}` is not https://host or https://host:port"))?;
        Ok(PublicUrl(origin))
    }
}

/// `value` as an `https://host[:port]` origin (lower case), if it is one;
/// for a node's URL read from Redis as much as for `--public-url`.
pub fn public_origin(value: &str) -> Option<String> {
    source(value).ok().filter(|o| o.starts_with("https://"))
}

/// `--frame-ancestors`, checked: only the keywords `'self'` and `'none'`
/// and plain origins, so that no value can end the directive and start
/// another (`;`), list several (`,`), or widen it with a wildcard or a
/// scheme alone. Displayed as the directive's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameAncestors(Vec<String>);

impl FromStr for FrameAncestors {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let sources: Vec<String> = value.split_ascii_whitespace().map(source).collect::<Result<_, _>>()?;
        if sources.is_empty() {
            return Err("give at least one source: 'self', 'none' or an origin".into());
        }
        if sources.len() > 1 && sources.iter().any(|s| s == "'none'") {
            return Err("'none' cannot be combined with other sources".into());
        }
        Ok(FrameAncestors(sources))
    }
}

impl fmt::Display for FrameAncestors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// One source of `--frame-ancestors`, lowercased, or why it is refused.
fn source(token: &str) -> Result<String, String> {
    let refused = || {
        format!(
            "`{token}` is not allowed: use 'self', 'none' or an origin such as https://example.org \
             or https://example.org:8443 (scheme and host, an optional port, nothing else)"
        )
    };
    let lower = token.to_ascii_lowercase();
    if lower == "'self'" || lower == "'none'" {
        return Ok(lower);
    }
    let authority = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")).ok_or_else(refused)?;
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']').ok_or_else(refused)?;
            v6.parse::<Ipv6Addr>().map_err(|_| refused())?;
            (None, after)
        }
        // The port keeps its colon, so that a bare `host:` is refused below.
        None => match authority.find(':') {
            Some(colon) => (Some(&authority[..colon]), &authority[colon..]),
            None => (Some(authority), ""),
        },
    };
    if let Some(host) = host {
        if !valid_host(host) {
            return Err(refused());
        }
    }
    if let Some(digits) = port.strip_prefix(':') {
        let valid = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.parse::<u16>().is_ok_and(|p| p != 0);
        if !valid {
            return Err(refused());
        }
    } else if !port.is_empty() {
        return Err(refused());
    }
    Ok(lower)
}

/// A DNS name or IPv4 address: dot-separated labels of letters, digits and
/// inner hyphens (punycode for other scripts).
fn valid_host(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ancestors_take_keywords_and_plain_origins() {
        let ok = |v: &str| v.parse::<FrameAncestors>().map(|f| f.to_string());
        assert_eq!(ok("'self'").as_deref(), Ok("'self'"));
        assert_eq!(ok("'NONE'").as_deref(), Ok("'none'"));
        assert_eq!(
            ok(" 'self'  https://Example.ORG\thttp://127.0.0.1:8080 https://[::1]:8443 https://xn--bcher-kva.de ")
                .as_deref(),
            Ok("'self' https://example.org http://127.0.0.1:8080 https://[::1]:8443 https://xn--bcher-kva.de")
        );
    }

    #[test]
    fn frame_ancestors_refuse_anything_else() {
        for bad in [
            "",
            "   ",
            "https://a.example; script-src *",
            "https://a.example;",
            "https://a.example,https://b.example",
            "https://a.example/",
            "https://a.example/path",
            "https://a.example?x",
            "https://a.example#x",
            "https://*.example.org",
            "*",
            "https:",
            "https://",
            "ftp://a.example",
            "a.example",
            "'unsafe-inline'",
            "self",
            "'self",
            "\"https://a.example\"",
            "https://user@a.example",
            "https://a.example:",
            "https://a.example:0",
            "https://a.example:65536",
            "https://a.example:+80",
            "https://a..example",
            "https://-a.example",
            "https://a.example.",
            "https://[::1",
            "https://[nope]",
            "https://[::1]x",
            "https://a\u{a0}b.example",
            "'none' 'self'",
        ] {
            assert!(bad.parse::<FrameAncestors>().is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn a_public_url_is_an_https_origin_and_nothing_more() {
        let ok = |v: &str| v.parse::<PublicUrl>().map(|u| u.as_str().to_owned());
        assert_eq!(ok("https://Node-B.example/").as_deref(), Ok("https://node-b.example"));
        assert_eq!(ok("https://10.0.0.2:8443").as_deref(), Ok("https://10.0.0.2:8443"));
        for bad in
            ["http://node-b.example", "https://node-b.example/meet", "node-b.example", "https://a.example; x", "'self'"]
        {
            assert!(bad.parse::<PublicUrl>().is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn a_cluster_needs_its_url_and_a_long_secret() {
        let parse = |args: &[&str]| Config::try_parse_from(["aconfi"].iter().chain(args));
        let full = ["--redis-url", "redis://127.0.0.1/", "--public-url", "https://a.example", "--cluster-secret"];
        assert!(parse(&[&full[..], &["0123456789abcdef"]].concat()).is_ok());
        assert!(parse(&[&full[..], &["short"]].concat()).is_err(), "a short secret");
        assert!(parse(&full[..4]).is_err(), "no secret");
        assert!(parse(&["--redis-url", "redis://127.0.0.1/"]).is_err(), "no public URL");
        assert!(parse(&["--public-url", "https://a.example"]).is_err(), "a public URL but no Redis");
        assert!(Config::defaults().redis_url.is_none(), "one node by default");
    }

    #[test]
    fn acme_takes_domain_names_and_known_or_https_directories() {
        assert_eq!(domain_name("Meet.Example.ORG.").as_deref(), Ok("meet.example.org"));
        for bad in ["localhost", "127.0.0.1", "meet", "meet..example.org", "meet.example.org/x", "*.example.org", ""] {
            assert!(domain_name(bad).is_err(), "{bad:?} was taken");
        }
        assert_eq!(acme_directory("letsencrypt").as_deref(), Ok(LETS_ENCRYPT));
        assert_eq!(acme_directory("letsencrypt-staging").as_deref(), Ok(LETS_ENCRYPT_STAGING));
        assert_eq!(acme_directory("https://ca.example/dir").as_deref(), Ok("https://ca.example/dir"));
        for bad in ["http://ca.example/dir", "https://", "staging", "https://ca.example/ dir"] {
            assert!(acme_directory(bad).is_err(), "{bad:?} was taken");
        }
        let parse = |args: &[&str]| Config::try_parse_from(["aconfi"].iter().chain(args));
        assert!(
            parse(&["--domain", "meet.example.org", "--cert", "c.pem", "--key", "k.pem"]).is_err(),
            "one or the other"
        );
        assert!(parse(&["--acme-cache", "/var/lib/aconfi"]).is_err(), "a cache without a domain");
        assert_eq!(
            parse(&["--domain", "a.example.org,b.example.org"]).unwrap().domain,
            ["a.example.org", "b.example.org"]
        );
    }

    #[test]
    fn the_camera_height_is_a_real_cameras() {
        let parse = |args: &[&str]| Config::try_parse_from(["aconfi"].iter().chain(args));
        assert_eq!(Config::defaults().camera_height, 720);
        assert_eq!(parse(&["--camera-height", "360"]).unwrap().camera_height, 360);
        for bad in ["179", "1081", "0", "-360", "720p"] {
            assert!(parse(&["--camera-height", bad]).is_err(), "{bad:?} was taken");
        }
    }
}
