//! A shard's media sockets: UDP on every address the media port is bound
//! to (each its own ICE candidate), passive ICE-TCP beside them and on the
//! HTTPS port, and the sending side's batching (consecutive datagrams for
//! one peer go out in one GSO `sendmsg`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::task::Poll;

use anyhow::Context;
use quinn_udp::{Transmit, UdpSocketState};
use tokio::io::{Interest, ReadBuf};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::warn;

use crate::config::Config;
use crate::ice_tcp::{self, TcpIn};
use crate::metrics::Metrics;

/// A datagram read from one of the sockets into the caller's buffer: who
/// sent it, the address of ours it came to (as advertised), its length.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub len: usize,
}

/// The bound media sockets and the addresses advertised for them.
pub struct MediaSockets {
    sockets: Vec<UdpSocket>,
    /// Per socket: quinn-udp's state for batched (GSO) sends.
    states: Vec<UdpSocketState>,
    /// Per socket: the address str0m knows it by (its ICE candidate).
    advertised: Vec<SocketAddr>,
    /// The same addresses over TCP (ICE-TCP, passive), with the address
    /// advertised for each.
    tcp: Vec<(TcpListener, SocketAddr)>,
    /// Passive TCP candidates on the HTTPS port (`share_tcp_port`).
    https_tcp: Vec<SocketAddr>,
    /// Where every ICE-TCP connection reports, and what it reports to.
    hub: ice_tcp::Hub,
    tcp_in: Option<mpsc::Receiver<TcpIn>>,
    /// Ends the ICE-TCP connections with the media loop.
    tcp_cancel: CancellationToken,
    /// Datagrams and bytes sent and dropped.
    metrics: Metrics,
}

/// Consecutive datagrams for one destination, of one size (the last may be
/// shorter), sent with one `sendmsg` where the kernel segments them (UDP
/// GSO). A subscriber's session releases a video frame's packets together,
/// so these runs are common.
pub(super) struct Batch {
    socket: usize,
    destination: SocketAddr,
    segment: usize,
    count: usize,
    /// Closed to more: its last datagram was shorter than `segment`.
    closed: bool,
    buf: Vec<u8>,
}

/// GSO sends carry at most 64 KiB.
const MAX_BATCH_BYTES: usize = 60_000;

impl MediaSockets {
    /// Binds shard `shard`'s media port as configured (`--media-port` +
    /// `shard`); its ICE-TCP connections count against `caps`.
    pub(crate) async fn bind(config: &Config, shard: usize, caps: ice_tcp::Caps) -> anyhow::Result<Self> {
        let ips = bind_addresses(config, interface_ips);
        let port = config.media_port_of(shard)?;
        // A picked port (0) must be free over TCP as well; a given one is
        // used as it is, without TCP where TCP is taken (with a warning).
        const PICKS: usize = 8;
        let mut attempt = 0;
        let (sockets, mut tcp_listeners) = loop {
            attempt += 1;
            let sockets = bind_one_port(&ips, port).await?;
            let locals = sockets.iter().map(UdpSocket::local_addr).collect::<std::io::Result<Vec<_>>>()?;
            if port == 0 && attempt < PICKS {
                if let Some(listeners) = ice_tcp::bind_all(&locals).await {
                    break (sockets, listeners.into_iter().map(Some).collect::<Vec<_>>());
                }
                continue;
            }
            let mut listeners = Vec::new();
            for local in locals {
                listeners.push(ice_tcp::bind(&[local]).await.pop());
            }
            break (sockets, listeners);
        };
        let mut advertised = Vec::new();
        for s in &sockets {
            let local = s.local_addr()?;
            let addr = match config.public_ip.iter().find(|p| p.is_ipv4() == local.is_ipv4()) {
                Some(p) => SocketAddr::new(*p, local.port()),
                None => local,
            };
            advertised.push(addr);
        }
        if advertised.iter().all(|a| a.ip().is_loopback()) {
            // Firefox never sends WebRTC media over loopback: on a machine
            // with no other address, only Chromium-based browsers connect.
            warn!(
                "media is reachable on loopback only: Firefox cannot connect; \
                 give the machine a network address or pass --media-bind/--public-ip"
            );
        }
        let states = sockets
            .iter()
            .map(|s| UdpSocketState::new(s.into()))
            .collect::<std::io::Result<Vec<_>>>()
            .context("preparing the media sockets")?;
        let tcp = tcp_listeners.drain(..).zip(&advertised).filter_map(|(l, adv)| Some((l?, *adv))).collect();
        Ok(MediaSockets::new(sockets, states, advertised, tcp, caps))
    }

    fn new(
        sockets: Vec<UdpSocket>,
        states: Vec<UdpSocketState>,
        advertised: Vec<SocketAddr>,
        tcp: Vec<(TcpListener, SocketAddr)>,
        caps: ice_tcp::Caps,
    ) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        let tcp_cancel = CancellationToken::new();
        MediaSockets {
            sockets,
            states,
            advertised,
            tcp,
            https_tcp: Vec::new(),
            hub: ice_tcp::Hub::new(tx, tcp_cancel.clone(), caps),
            tcp_in: Some(rx),
            tcp_cancel,
            metrics: Metrics::default(),
        }
    }

    /// ICE over TCP on the HTTPS port too, which `listen` is bound to: a
    /// passive candidate there for each media address that listener also
    /// covers (same IP, or it listens on all). Returns what the HTTPS
    /// listener needs to hand such connections over: per local IP, the
    /// candidate (every shard binds the same IPs, so they agree).
    pub fn share_tcp_port(&mut self, listen: SocketAddr) -> Vec<(IpAddr, SocketAddr)> {
        let mut candidates = Vec::new();
        for (s, adv) in self.sockets.iter().zip(&self.advertised) {
            let Ok(local) = s.local_addr() else { continue };
            let covered = match listen.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => local.is_ipv4(),
                // Linux's IPv6 wildcard takes IPv4 too (bindv6only=0).
                IpAddr::V6(ip) if ip.is_unspecified() => true,
                ip => ip == local.ip() || (local.ip().is_unspecified() && local.is_ipv4() == ip.is_ipv4()),
            };
            if covered {
                let advertised = SocketAddr::new(adv.ip(), listen.port());
                candidates.push((local.ip(), advertised));
                self.https_tcp.push(advertised);
            }
        }
        candidates
    }

    /// Moves the sockets to the IO driver of the runtime this is called
    /// on: the shard's own. They are bound on the signaling runtime (so a
    /// bind error stops the start), where tokio registered them; left
    /// there, every datagram's readiness woke that runtime's worker, which
    /// then woke the shard thread (12 000 switches a second at nxn 12 on
    /// one core, docs/benchmarks.md).
    pub(super) fn register_here(&mut self) -> std::io::Result<()> {
        // `into_std` takes a socket off the driver it was registered with
        // (and leaves it non-blocking); `from_std` registers it here.
        self.sockets = std::mem::take(&mut self.sockets)
            .into_iter()
            .map(|s| UdpSocket::from_std(s.into_std()?))
            .collect::<std::io::Result<_>>()?;
        self.tcp = std::mem::take(&mut self.tcp)
            .into_iter()
            .map(|(l, a)| Ok((TcpListener::from_std(l.into_std()?)?, a)))
            .collect::<std::io::Result<_>>()?;
        Ok(())
    }

    /// Counts what the sockets send and drop into `metrics`.
    pub(super) fn count_into(&mut self, metrics: Metrics) {
        self.metrics = metrics;
    }

    /// Starts accepting ICE-TCP connections (on the current runtime): what
    /// they carry comes out of the returned channel, until the guard is
    /// dropped, which ends them all.
    pub(super) fn start_tcp(&mut self) -> (mpsc::Receiver<TcpIn>, DropGuard) {
        for (listener, advertised) in std::mem::take(&mut self.tcp) {
            tokio::spawn(ice_tcp::accept(listener, advertised, self.hub.clone()));
        }
        let rx = self.tcp_in.take().unwrap_or_else(|| mpsc::channel(1).1);
        (rx, self.tcp_cancel.clone().drop_guard())
    }

    /// Where this shard's ICE-TCP connections go.
    pub(crate) fn hub(&self) -> ice_tcp::Hub {
        self.hub.clone()
    }

    /// The addresses put into ICE candidates.
    pub fn candidates(&self) -> Vec<SocketAddr> {
        self.advertised.clone()
    }

    /// The addresses put into passive ICE-TCP candidates.
    pub fn tcp_candidates(&self) -> Vec<SocketAddr> {
        self.tcp.iter().map(|(_, a)| *a).chain(self.https_tcp.iter().copied()).collect()
    }

    /// Waits for a datagram on any socket.
    pub(super) fn poll_recv(&self, cx: &mut std::task::Context<'_>, buf: &mut [u8]) -> Poll<Arrival> {
        for (i, s) in self.sockets.iter().enumerate() {
            let mut rb = ReadBuf::new(buf);
            match s.poll_recv_from(cx, &mut rb) {
                Poll::Ready(Ok(from)) => {
                    return Poll::Ready(Arrival {
                        source: from,
                        destination: self.advertised[i],
                        len: rb.filled().len(),
                    })
                }
                // ICMP errors surface here on Linux; they concern one peer only.
                Poll::Ready(Err(_)) => cx.waker().wake_by_ref(),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }

    /// A datagram already queued on any socket, without waiting.
    pub(super) fn try_recv(&self, buf: &mut [u8]) -> Option<Arrival> {
        self.sockets.iter().zip(&self.advertised).find_map(|(s, local)| {
            s.try_recv_from(buf).ok().map(|(len, source)| Arrival { source, destination: *local, len })
        })
    }

    /// Queues a datagram: it joins the open batch if it can, else the batch
    /// is sent and a new one begins.
    pub(super) fn send(
        &self,
        batch: &mut Option<Batch>,
        source: SocketAddr,
        destination: SocketAddr,
        contents: Vec<u8>,
    ) {
        let socket = self.advertised.iter().position(|a| *a == source).unwrap_or(0);
        if let Some(b) = batch.as_mut() {
            let fits = b.socket == socket
                && b.destination == destination
                && !b.closed
                && contents.len() <= b.segment
                && b.count < self.states[socket].max_gso_segments()
                && b.buf.len() + contents.len() <= MAX_BATCH_BYTES;
            if fits {
                b.buf.extend_from_slice(&contents);
                b.count += 1;
                b.closed = contents.len() < b.segment;
                return;
            }
        }
        self.flush(batch);
        // The first datagram's own buffer becomes the batch: a datagram that
        // stays alone is never copied.
        let segment = contents.len();
        *batch = Some(Batch { socket, destination, segment, count: 1, closed: false, buf: contents });
    }

    /// Sends the open batch: one datagram with a plain `sendto`, a run
    /// with one GSO `sendmsg`.
    pub(super) fn flush(&self, batch: &mut Option<Batch>) {
        let Some(b) = batch.take() else { return };
        let socket = &self.sockets[b.socket];
        // UDP: a full socket buffer drops the datagrams, as the network would.
        let sent =
            if b.count == 1 { socket.try_send_to(&b.buf, b.destination).is_ok() } else { self.send_batch(socket, &b) };
        if sent {
            self.metrics.datagrams_sent.inc_by(b.count as u64);
            self.metrics.bytes_sent.inc_by(b.buf.len() as u64);
        } else {
            self.metrics.datagrams_dropped.inc_by(b.count as u64);
        }
    }

    /// One GSO `sendmsg` for a run; whether it went.
    fn send_batch(&self, socket: &UdpSocket, b: &Batch) -> bool {
        let transmit = Transmit {
            destination: b.destination,
            ecn: None,
            contents: &b.buf,
            segment_size: Some(b.segment),
            src_ip: None,
        };
        socket.try_io(Interest::WRITABLE, || self.states[b.socket].try_send(socket.into(), &transmit)).is_ok()
    }
}

/// Binds `port` on every address in `ips`. With port 0 the first socket
/// picks one and the others follow it, so the server keeps one media port;
/// if another program holds that port on one of the other addresses, a
/// few fresh picks are tried before giving up.
async fn bind_one_port(ips: &[IpAddr], port: u16) -> anyhow::Result<Vec<UdpSocket>> {
    const PICKS: usize = 8;
    let mut attempt = 0;
    'pick: loop {
        attempt += 1;
        let mut sockets = Vec::new();
        let mut chosen = port;
        for ip in ips {
            match UdpSocket::bind(SocketAddr::new(*ip, chosen)).await {
                Ok(s) => {
                    chosen = s.local_addr()?.port();
                    sockets.push(s);
                }
                Err(e) if port == 0 && attempt < PICKS && e.kind() == std::io::ErrorKind::AddrInUse => {
                    continue 'pick;
                }
                Err(e) => return Err(e).with_context(|| format!("binding UDP media port {chosen}")),
            }
        }
        return Ok(sockets);
    }
}

/// The local addresses to bind the media port on. A wildcard bind (or none)
/// without `--public-ip` means every interface address, each its own
/// socket and ICE candidate: a candidate of 0.0.0.0 is no address at all,
/// and browsers on this machine need a real one (Firefox uses only its
/// non-loopback interfaces). With `--public-ip` one wildcard socket suffices,
/// since the public address is what is advertised.
fn bind_addresses(config: &Config, interfaces: impl FnOnce() -> Vec<IpAddr>) -> Vec<IpAddr> {
    match config.media_bind {
        Some(ip) if !ip.is_unspecified() => vec![ip],
        Some(ip) if !config.public_ip.is_empty() => vec![ip],
        None if !config.public_ip.is_empty() => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        _ => interfaces(),
    }
}

/// This machine's interface addresses: IPv4 (loopback included, so
/// https://localhost works out of the box) and IPv6 other than loopback and
/// link-local (a browser with IPv6 can then reach us without IPv4).
fn interface_ips() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> =
        if_addrs::get_if_addrs().unwrap_or_default().into_iter().map(|i| i.ip()).filter(usable_for_media).collect();
    ips.sort();
    ips.dedup();
    if ips.is_empty() {
        ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    ips
}

/// Whether an interface address makes a useful host candidate.
fn usable_for_media(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(v6) => {
            !v6.is_loopback() && !v6.is_unspecified() && !v6.is_multicast() && !v6.is_unicast_link_local()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(args: &[&str]) -> Config {
        use clap::Parser;
        Config::parse_from(std::iter::once("aconfi").chain(args.iter().copied()))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn a_wildcard_bind_means_every_interface_address() {
        let here = || vec![ip("127.0.0.1"), ip("192.0.2.2")];
        for args in [&[][..], &["--media-bind", "0.0.0.0"][..]] {
            assert_eq!(bind_addresses(&config(args), here), here(), "{args:?}");
        }
        assert_eq!(bind_addresses(&config(&["--media-bind", "192.0.2.2"]), here), vec![ip("192.0.2.2")]);
    }

    #[tokio::test]
    async fn every_address_gets_the_same_media_port() {
        let ips = [ip("127.0.0.1"), ip("127.0.0.2")];
        let sockets = bind_one_port(&ips, 0).await.expect("bound");
        let ports: Vec<u16> = sockets.iter().map(|s| s.local_addr().expect("bound").port()).collect();
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0], ports[1]);
        // A port given explicitly and taken is an error naming it, not a retry.
        let taken = ports[0];
        let err = bind_one_port(&ips, taken).await.expect_err("port in use");
        assert!(err.to_string().contains(&taken.to_string()), "{err}");
    }

    #[tokio::test]
    async fn batched_datagrams_arrive_whole_and_in_order() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bound");
        let state = UdpSocketState::new((&socket).into()).expect("socket state");
        let source = socket.local_addr().expect("bound");
        let media = MediaSockets::new(vec![socket], vec![state], vec![source], Vec::new(), ice_tcp::Caps::default());
        let rx = UdpSocket::bind("127.0.0.1:0").await.expect("bound");
        let other = UdpSocket::bind("127.0.0.1:0").await.expect("bound");
        let (to, to_other) = (rx.local_addr().expect("bound"), other.local_addr().expect("bound"));
        // A frame of five full packets and a short one, a datagram for
        // someone else, then a longer one: four sends, eight datagrams.
        let mut sent: Vec<(SocketAddr, Vec<u8>)> = (0..5u8).map(|i| (to, vec![i; 1200])).collect();
        sent.push((to, vec![5; 300]));
        sent.push((to_other, vec![6; 1200]));
        sent.push((to, vec![7; 1300]));
        // As in the media loop, sends are tried only on a socket known writable.
        media.sockets[0].writable().await.expect("writable");
        let mut batch = None;
        for (dest, d) in &sent {
            media.send(&mut batch, source, *dest, d.clone());
        }
        media.flush(&mut batch);
        let mut buf = vec![0u8; 2048];
        for (dest, d) in &sent {
            let sock = if *dest == to { &rx } else { &other };
            let recv = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf));
            let (n, from) = recv.await.expect("a datagram in time").expect("received");
            assert_eq!((from, &buf[..n]), (source, &d[..]));
        }
    }

    #[test]
    fn ipv6_addresses_are_candidates_but_not_loopback_or_link_local() {
        for (addr, usable) in [
            ("127.0.0.1", true),
            ("192.0.2.2", true),
            ("169.254.1.1", false),
            ("2001:db8::2", true),
            ("fd00::2", true),
            ("::1", false),
            ("fe80::1", false),
            ("::", false),
        ] {
            assert_eq!(usable_for_media(&ip(addr)), usable, "{addr}");
        }
    }

    #[test]
    fn behind_nat_one_wildcard_socket_is_advertised_as_the_public_address() {
        let none = || -> Vec<IpAddr> { panic!("interfaces are not needed behind NAT") };
        let c = config(&["--public-ip", "203.0.113.7"]);
        assert_eq!(bind_addresses(&c, none), vec![ip("0.0.0.0")]);
        let c = config(&["--public-ip", "203.0.113.7", "--media-bind", "0.0.0.0"]);
        assert_eq!(bind_addresses(&c, none), vec![ip("0.0.0.0")]);
    }
}
