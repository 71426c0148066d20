//! Where a live stream may go: the ingest URL's host is resolved here and
//! every address checked before a worker starts, and the worker is given
//! the one address that passed, to which alone it connects (so a name that
//! resolves differently the second time cannot send it elsewhere).
//!
//! Anyone can open a plain room and moderate it, and a stream makes the
//! server connect where the moderator says: without this check a stream is
//! a port scanner of the operator's own network (closed ports fail at once,
//! open ones hang) and a way into whatever listens there. Loopback,
//! private, link-local, unique-local, shared (CGNAT), multicast, reserved,
//! documentation and unspecified addresses are refused, IPv4 and IPv6
//! alike (an IPv4 address inside IPv6 counts as that IPv4 address), unless
//! the operator allows them (`--stream-allow-private`, or the host by name
//! in `--stream-allow-host`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long resolving an ingest host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the operator allows beyond public addresses.
#[derive(Debug, Clone, Default)]
pub struct IngestPolicy {
    /// Any address, private ones included (an ingest on the operator's own
    /// network, or tests).
    pub allow_private: bool,
    /// Hosts (names or addresses, as written in the URL) streamed to
    /// wherever they resolve.
    pub allowed_hosts: Vec<String>,
}

/// The checked destination of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingest {
    /// The host as the URL names it (the TLS name of an `rtmps://` ingest).
    pub host: String,
    /// The port the URL names, or the scheme's.
    pub port: u16,
    /// The one address the worker may connect to.
    pub addr: SocketAddr,
}

/// Why a stream may not go where it was asked to.
pub const NOT_PUBLIC: &str = "the stream address is on a loopback, private or other non-public network, \
     which this server does not stream to (its operator can allow it with --stream-allow-private)";
/// Said alike whether a name does not resolve or resolves only to
/// non-public addresses: a moderator must not learn the operator's
/// internal names by trying them.
pub const NO_PUBLIC_ADDRESS: &str = "the stream address's host has no public address this server may stream to";
const BAD_URL: &str = "the stream address must be an rtmp:// or rtmps:// URL with a host";

impl IngestPolicy {
    fn allows_host(&self, host: &str) -> bool {
        self.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Resolves `url`'s host and picks the address to connect to, or says
    /// why the stream may not go there.
    pub async fn check(&self, url: &str) -> Result<Ingest, &'static str> {
        let (host, port) = host_and_port(url).ok_or(BAD_URL)?;
        let anything = self.allow_private || self.allows_host(&host);
        if let Some(ip) = literal(&host) {
            if !anything && !is_public(ip) {
                return Err(NOT_PUBLIC);
            }
            return Ok(Ingest { host, port, addr: SocketAddr::new(ip, port) });
        }
        let lookup = tokio::net::lookup_host((host.as_str(), port));
        let addrs: Vec<SocketAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => addrs.collect(),
            _ => return Err(NO_PUBLIC_ADDRESS),
        };
        let addr = pick(&addrs, |ip| anything || is_public(ip)).ok_or(NO_PUBLIC_ADDRESS)?;
        Ok(Ingest { host, port, addr })
    }
}

/// The one address of a resolved name the worker connects to: the first
/// IPv4 address `allowed`, else the first IPv6 one. The worker cannot fall
/// back to another address (it connects only to the checked one), and
/// getaddrinfo lists IPv6 first wherever the machine has an IPv6 address
/// — loopback counts — whether or not IPv6 reaches the ingest; every
/// ingest we know of (YouTube's included) has IPv4. (`localhost` is
/// `::1` first on a machine whose /etc/hosts lists it so.)
fn pick(addrs: &[SocketAddr], allowed: impl Fn(IpAddr) -> bool) -> Option<SocketAddr> {
    let mut ok = addrs.iter().copied().filter(|a| allowed(a.ip()));
    let first = ok.next()?;
    Some(if first.is_ipv4() { first } else { ok.find(SocketAddr::is_ipv4).unwrap_or(first) })
}

/// The URL's host (without brackets around IPv6) and port (the scheme's
/// default if none: 1935 for RTMP, 443 for RTMPS).
fn host_and_port(url: &str) -> Option<(String, u16)> {
    let parsed = url::Url::parse(url).ok()?;
    let default = match parsed.scheme() {
        "rtmp" => 1935,
        "rtmps" => 443,
        _ => return None,
    };
    let host = match parsed.host()? {
        url::Host::Domain(d) if !d.is_empty() => d.to_string(),
        url::Host::Domain(_) => return None,
        url::Host::Ipv4(v4) => v4.to_string(),
        url::Host::Ipv6(v6) => v6.to_string(),
    };
    Some((host, parsed.port().unwrap_or(default)))
}

/// The host as an address, if it is written as one.
fn literal(host: &str) -> Option<IpAddr> {
    host.parse().ok()
}

/// Whether a stream may go to `ip` without the operator's leave.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", unspecified
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // An IPv4 address inside IPv6 (mapped, the old compatible form, NAT64's
    // well-known prefix, 6to4) reaches that IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    if s[..6] == [0; 6] {
        // ::, ::1 and the deprecated IPv4-compatible addresses.
        return false;
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
    }
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    // Global unicast is 2000::/3; within it Teredo (2001::/32),
    // benchmarking (2001:2::/48), ORCHID (2001:10::/28, 2001:20::/28) and
    // documentation (2001:db8::/32, 3fff::/20) are not places to stream to.
    (s[0] & 0xe000) == 0x2000
        && !(s[0] == 0x2001 && (s[1] == 0 || s[1] == 0xdb8 || s[1] == 2 || (0x10..0x30).contains(&s[1])))
        && !(s[0] == 0x3fff && s[1] < 0x1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        let refused = [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
            "3fff::1",
        ];
        for ip in refused {
            assert!(!is_public(ip.parse().unwrap()), "{ip} must be refused");
        }
        let allowed = [
            "8.8.8.8",
            "142.250.185.78",
            "172.32.0.1",
            "100.128.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2a00:1450:4001:80b::200e",
            "2606:4700::1111",
        ];
        for ip in allowed {
            assert!(is_public(ip.parse().unwrap()), "{ip} must be allowed");
        }
    }

    #[test]
    fn a_resolved_name_is_reached_over_ipv4_when_it_has_an_ipv4_address() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let any = |_: IpAddr| true;
        // localhost where /etc/hosts lists ::1 first.
        assert_eq!(pick(&[a("[::1]:1935"), a("127.0.0.1:1935")], any), Some(a("127.0.0.1:1935")));
        let v6 = a("[2a00:1450:4001:80b::200e]:443");
        assert_eq!(pick(&[v6, a("8.8.8.8:443")], is_public), Some(a("8.8.8.8:443")));
        assert_eq!(pick(&[v6], is_public), Some(v6), "IPv6 when that is all there is");
        // Only allowed addresses are candidates, whatever their family.
        assert_eq!(pick(&[v6, a("10.0.0.1:443")], is_public), Some(v6));
        assert_eq!(pick(&[a("10.0.0.1:443"), a("[::1]:443")], is_public), None);
    }

    #[test]
    fn the_host_and_port_come_from_the_url() {
        let hp = |u: &str| host_and_port(u);
        assert_eq!(hp("rtmps://a.rtmps.youtube.com/live2/key"), Some(("a.rtmps.youtube.com".into(), 443)));
        assert_eq!(hp("rtmp://a.rtmp.youtube.com/live2/key"), Some(("a.rtmp.youtube.com".into(), 1935)));
        assert_eq!(hp("rtmp://user:pw@127.0.0.1:6379/x"), Some(("127.0.0.1".into(), 6379)));
        assert_eq!(hp("rtmp://[::ffff:127.0.0.1]:80/x"), Some(("::ffff:127.0.0.1".into(), 80)));
        assert_eq!(hp("RTMP://Ingest.Example:1/x").map(|(_, p)| p), Some(1));
        assert_eq!(hp("http://example.com/"), None);
        assert_eq!(hp("rtmp:///x"), None);
        assert_eq!(hp("rtmp:x"), None);
    }

    #[tokio::test]
    async fn names_are_checked_after_resolving_and_literals_at_once() {
        let strict = IngestPolicy::default();
        assert_eq!(strict.check("rtmp://127.0.0.1:6379/live/k").await, Err(NOT_PUBLIC));
        assert_eq!(strict.check("rtmp://[::1]:1935/live/k").await, Err(NOT_PUBLIC));
        assert_eq!(strict.check("rtmp://[::ffff:169.254.169.254]/live/k").await, Err(NOT_PUBLIC));
        // Names that resolve to loopback (getaddrinfo also reads a bare
        // number as an IPv4 address) are refused after resolving.
        assert_eq!(strict.check("rtmp://localhost:6379/live/k").await, Err(NO_PUBLIC_ADDRESS));
        assert_eq!(strict.check("rtmp://2130706433:6379/live/k").await, Err(NO_PUBLIC_ADDRESS));
        assert_eq!(strict.check("rtmp://nothing.invalid/live/k").await, Err(NO_PUBLIC_ADDRESS));
        assert_eq!(strict.check("rtmp:///live/k").await, Err(BAD_URL));
        let public = strict.check("rtmps://8.8.8.8/live2/k").await.unwrap();
        assert_eq!(public.addr, "8.8.8.8:443".parse().unwrap());

        let private = IngestPolicy { allow_private: true, ..IngestPolicy::default() };
        let local = private.check("rtmp://localhost:6379/live/k").await.unwrap();
        assert!(local.addr.ip().is_loopback() && local.addr.port() == 6379 && local.host == "localhost");
        let listed = IngestPolicy { allowed_hosts: vec!["LOCALHOST".into()], ..IngestPolicy::default() };
        assert!(listed.check("rtmp://localhost/live/k").await.is_ok());
        assert_eq!(listed.check("rtmp://127.0.0.1/live/k").await, Err(NOT_PUBLIC), "only the host named");
    }
}
