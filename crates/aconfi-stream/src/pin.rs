//! The worker connects to the ingest only at the address the server checked.
//!
//! `rtmp2sink` resolves the ingest host itself (through GIO) and would
//! connect wherever the name points by then: a name that resolved to a
//! public address when the server checked it may point into the operator's
//! network a moment later. So GIO is made to connect through a proxy of
//! ours: the worker listens on a loopback port, points GIO's proxy settings
//! (`http_proxy` and friends, which GIO's proxy resolver reads) at it as a
//! SOCKS5 proxy, and answers exactly one kind of request — CONNECT to the
//! URL's host and port — by connecting to the checked address. GIO still
//! does TLS itself over that connection, with the URL's host name for SNI
//! and for checking the certificate, as without a proxy. `--check` proves
//! that GIO on this machine does go through the proxy (see [`self_test`]);
//! where it would not, streaming is unavailable rather than unpinned.
//!
//! Only the part of SOCKS5 (RFC 1928) that GIO uses is spoken: no
//! authentication, CONNECT, a domain name or an IPv4/IPv6 address; every
//! other request is refused. Written here rather than taken from a crate:
//! the SOCKS server crates are general async servers (authentication, UDP,
//! BIND) for which this is a one-line policy hook, and the subset is small.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the ingest may take to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to say what it wants.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where connections may go: the URL's host and port, and the address the
/// server checked for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub addr: SocketAddr,
}

impl Target {
    /// `url`'s host and port (the scheme's default port if it names none),
    /// pinned to `addr`. `None` if the URL has no host.
    pub fn of(url: &str, addr: SocketAddr) -> Option<Target> {
        let (scheme, rest) = url.split_once("://")?;
        let default = match scheme.to_ascii_lowercase().as_str() {
            "rtmp" => 1935,
            "rtmps" => 443,
            _ => return None,
        };
        let authority = rest.split(['/', '?', '#']).next()?;
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        (!host.is_empty()).then(|| Target { host: host.to_string(), port, addr })
    }

    /// Whether a SOCKS request for `host`:`port` is for this target.
    fn matches(&self, host: &Host, port: u16) -> bool {
        port == self.port
            && match host {
                Host::Name(name) => name.eq_ignore_ascii_case(&self.host),
                Host::Ip(ip) => self.host.parse::<IpAddr>().is_ok_and(|mine| mine == *ip),
            }
    }
}

/// A proxy's loopback listener and what it will connect to.
pub struct Pin {
    listener: TcpListener,
    target: Arc<Mutex<Option<Target>>>,
}

impl Pin {
    /// Listens on a free loopback port; nothing is allowed yet.
    pub fn bind() -> io::Result<Pin> {
        Ok(Pin { listener: TcpListener::bind(("127.0.0.1", 0))?, target: Arc::default() })
    }

    /// The proxy URL for GIO's proxy settings.
    pub fn proxy_url(&self) -> io::Result<String> {
        Ok(format!("socks5://{}", self.listener.local_addr()?))
    }

    /// From now on, connections go to `target`.
    pub fn allow(&self, target: Target) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = Some(target);
    }

    /// Serves connections on a thread of its own until the process ends.
    pub fn spawn(self) -> io::Result<()> {
        std::thread::Builder::new().name("ingest-pin".into()).spawn(move || {
            for conn in self.listener.incoming().flatten() {
                let target = self.target.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let _ = std::thread::Builder::new().name("ingest-conn".into()).spawn(move || serve(conn, target));
            }
        })?;
        Ok(())
    }
}

enum Host {
    Name(String),
    Ip(IpAddr),
}

/// One client: the handshake, then bytes both ways until either side ends.
fn serve(mut client: TcpStream, target: Option<Target>) {
    let Ok((host, port)) = handshake(&mut client) else { return };
    let Some(target) = target.filter(|t| t.matches(&host, port)) else {
        // 0x02: connection not allowed by ruleset.
        let _ = reply(&mut client, 0x02);
        return;
    };
    let Ok(ingest) = TcpStream::connect_timeout(&target.addr, CONNECT_TIMEOUT) else {
        // 0x05: connection refused (or not reached).
        let _ = reply(&mut client, 0x05);
        return;
    };
    if reply(&mut client, 0x00).is_err() {
        return;
    }
    let _ = client.set_read_timeout(None);
    let _ = ingest.set_nodelay(true);
    splice(client, ingest);
}

/// Reads the greeting and the request; answers the greeting.
fn handshake(client: &mut TcpStream) -> io::Result<(Host, u16)> {
    client.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let bad = || io::Error::from(io::ErrorKind::InvalidData);
    let mut head = [0u8; 2];
    client.read_exact(&mut head)?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods)?;
    if head[0] != 5 || !methods.contains(&0) {
        // 0xff: no acceptable method (we take only "no authentication").
        let _ = client.write_all(&[5, 0xff]);
        return Err(bad());
    }
    client.write_all(&[5, 0])?;
    let mut req = [0u8; 4];
    client.read_exact(&mut req)?;
    if req[0] != 5 || req[1] != 1 {
        // 0x07: command not supported (only CONNECT).
        let _ = reply(client, 0x07);
        return Err(bad());
    }
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a)?;
            Host::Ip(IpAddr::from(a))
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name)?;
            Host::Name(String::from_utf8(name).map_err(|_| bad())?)
        }
        4 => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a)?;
            Host::Ip(IpAddr::from(a))
        }
        _ => {
            // 0x08: address type not supported.
            let _ = reply(client, 0x08);
            return Err(bad());
        }
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port)?;
    Ok((host, u16::from_be_bytes(port)))
}

/// A reply with an all-zero bound address (GIO does not use it).
fn reply(client: &mut TcpStream, code: u8) -> io::Result<()> {
    client.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0])
}

/// Copies both ways; when one direction ends, the other side is told.
fn splice(client: TcpStream, ingest: TcpStream) {
    let (Ok(client_w), Ok(ingest_r)) = (client.try_clone(), ingest.try_clone()) else { return };
    let back = std::thread::Builder::new().name("ingest-back".into()).spawn(move || copy(ingest_r, client_w));
    copy(client, ingest);
    if let Ok(back) = back {
        let _ = back.join();
    }
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Checks that GIO here sends a connection through the proxy that the
/// environment names (set by [`crate::route_gio_through`] beforehand): it
/// asks GIO to connect to a name that exists nowhere and waits for the
/// request to reach our listener. Without this, a GIO that ignored the
/// proxy would connect wherever DNS says.
pub fn self_test(pin: Pin) -> Result<(), String> {
    use gio::prelude::*;
    const PROBE: &str = "aconfi-pin-check.invalid";
    let listener = pin.listener;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let asked = handshake(&mut conn).ok().map(|(h, p)| matches!(h, Host::Name(n) if n == PROBE) && p == 1935);
            let _ = reply(&mut conn, 0x02);
            let _ = tx.send(asked == Some(true));
        }
    });
    // On a thread of its own: a GIO that ignores the proxy may wait on DNS.
    std::thread::spawn(|| {
        let _ = gio::SocketClient::new().connect_to_host(PROBE, 1935, gio::Cancellable::NONE);
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(true) => Ok(()),
        _ => Err("GIO does not send connections through the proxy the worker sets, so a stream could not be held \
                  to the address the server checked (Debian: glib-networking with libproxy)"
            .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socks_request(proxy: SocketAddr, host: &str, port: u16) -> io::Result<(u8, TcpStream)> {
        let mut s = TcpStream::connect(proxy)?;
        s.write_all(&[5, 1, 0])?;
        let mut greet = [0u8; 2];
        s.read_exact(&mut greet)?;
        assert_eq!(greet, [5, 0]);
        let mut req = vec![5, 1, 0, 3, host.len() as u8];
        req.extend_from_slice(host.as_bytes());
        req.extend_from_slice(&port.to_be_bytes());
        s.write_all(&req)?;
        let mut rep = [0u8; 10];
        s.read_exact(&mut rep)?;
        Ok((rep[1], s))
    }

    #[test]
    fn the_target_comes_from_the_url() {
        let a: SocketAddr = "192.0.2.1:443".parse().unwrap();
        let t = |u: &str| Target::of(u, a).map(|t| (t.host, t.port));
        assert_eq!(t("rtmps://a.rtmps.youtube.com/live2/k"), Some(("a.rtmps.youtube.com".into(), 443)));
        assert_eq!(t("rtmp://u:p@Ingest.Example:1936/app?x=1"), Some(("Ingest.Example".into(), 1936)));
        assert_eq!(t("rtmp://[2001:db8::1]:1937/app"), Some(("2001:db8::1".into(), 1937)));
        assert_eq!(t("rtmp://[2001:db8::1]/app"), Some(("2001:db8::1".into(), 1935)));
        assert_eq!(t("rtmp:///app"), None);
        assert_eq!(t("http://x/app"), None);
    }

    #[test]
    fn only_the_urls_host_is_connected_and_only_to_the_checked_address() {
        let ingest = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ingest.local_addr().unwrap();
        let pin = Pin::bind().unwrap();
        let proxy: SocketAddr = pin.listener.local_addr().unwrap();
        pin.allow(Target { host: "ingest.example".into(), port: 1935, addr });
        pin.spawn().unwrap();
        // Another host, or another port of the right one: refused, and
        // nothing reaches the ingest.
        assert_eq!(socks_request(proxy, "other.example", 1935).unwrap().0, 0x02);
        assert_eq!(socks_request(proxy, "ingest.example", 6379).unwrap().0, 0x02);
        ingest.set_nonblocking(true).unwrap();
        assert!(ingest.accept().is_err(), "no connection for refused requests");
        ingest.set_nonblocking(false).unwrap();
        // The URL's host (in any case) reaches the checked address, and
        // bytes flow both ways.
        let (code, mut s) = socks_request(proxy, "INGEST.example", 1935).unwrap();
        assert_eq!(code, 0);
        let (mut server, _) = ingest.accept().unwrap();
        s.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        server.write_all(b"back").unwrap();
        let mut back = [0u8; 4];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"back");
    }
}
