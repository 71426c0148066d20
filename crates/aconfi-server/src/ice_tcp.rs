//! ICE over TCP (RFC 6544), for browsers on networks that block UDP: the
//! media port is also a TCP port, advertised as a passive candidate, and so
//! is the HTTPS port for networks that let only it out ([`SharedPort`]). Each
//! accepted connection carries the same datagrams as UDP (STUN, DTLS, SRTP),
//! each framed by a 16-bit length (RFC 4571). A task per connection
//! unframes what arrives and hands it to the core task; what the core sends
//! to that peer's address goes back framed over the same connection.
//!
//! A connection costs a task and two small buffers, so they are capped in
//! total and per client address, one that sends nothing usable for
//! [`IDLE_TIMEOUT`] is closed, and a frame larger than any datagram we
//! accept closes it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Largest datagram taken from a connection (as the UDP receive buffer).
pub const MAX_FRAME: usize = 2048;
/// Most ICE-TCP connections at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// Most ICE-TCP connections from one client address (a browser opens one
/// per candidate pair it tries).
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 16;
/// A connection with nothing received for this long is closed (a session
/// sends STUN consent checks every few seconds).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames queued for one connection before more are dropped, as a full UDP
/// socket buffer would.
const SEND_QUEUE: usize = 512;

/// What the connection tasks report to the core task.
#[derive(Debug)]
pub enum TcpIn {
    /// A new connection: datagrams for `peer` go to `tx`.
    Open { peer: SocketAddr, tx: mpsc::Sender<Vec<u8>> },
    /// One unframed datagram from `peer` to our candidate `local`.
    Datagram { peer: SocketAddr, local: SocketAddr, contents: Vec<u8> },
    /// The connection ended.
    Closed { peer: SocketAddr },
}

/// Binds TCP on each of the UDP media addresses (same IP and port). An
/// address where the TCP port is taken is left out, with a warning.
pub async fn bind(locals: &[SocketAddr]) -> Vec<TcpListener> {
    let mut listeners = Vec::new();
    for addr in locals {
        match TcpListener::bind(addr).await {
            Ok(l) => listeners.push(l),
            Err(e) => tracing::warn!(%addr, error = %e, "ICE over TCP is not available on this address"),
        }
    }
    listeners
}

/// Binds TCP on every one of `locals`, or on none (`None` if any is taken).
pub async fn bind_all(locals: &[SocketAddr]) -> Option<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for addr in locals {
        listeners.push(TcpListener::bind(addr).await.ok()?);
    }
    Some(listeners)
}

/// Counts connections per client address.
#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// The connection caps, shared by every hub of the process (one per media
/// shard), so that they hold for the server as a whole.
#[derive(Clone, Default)]
pub struct Caps(Arc<Mutex<Counts>>);

/// Where accepted connections go, from every listener of one shard (its
/// media port's, and the HTTPS port's for that shard's sessions): that
/// shard's core task, under the process's caps.
#[derive(Clone)]
pub struct Hub {
    to_core: mpsc::Sender<TcpIn>,
    counts: Caps,
    cancel: CancellationToken,
}

impl Hub {
    /// Connections report to `to_core` until `cancel`, counted in `caps`.
    pub fn new(to_core: mpsc::Sender<TcpIn>, cancel: CancellationToken, caps: Caps) -> Self {
        Hub { to_core, counts: caps, cancel }
    }

    /// Takes over a connection from `peer` to our candidate `advertised`,
    /// in a task of its own; one over the caps is closed at once. `first`
    /// is a datagram already read from it, if any.
    pub async fn admit(&self, stream: TcpStream, peer: SocketAddr, advertised: SocketAddr, first: Option<Vec<u8>>) {
        // A dual-stack listener reports IPv4 peers as IPv4-mapped IPv6;
        // the sessions know them as IPv4.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        {
            let mut c = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
            let from_ip = c.per_ip.get(&peer.ip()).copied().unwrap_or(0);
            if c.total >= MAX_CONNECTIONS || from_ip >= MAX_CONNECTIONS_PER_ADDRESS {
                debug!("ICE-TCP connection refused: too many");
                return;
            }
            c.total += 1;
            *c.per_ip.entry(peer.ip()).or_default() += 1;
        }
        let hub = self.clone();
        let _ = stream.set_nodelay(true);
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        tokio::spawn(async move {
            let opened = hub.to_core.send(TcpIn::Open { peer, tx }).await.is_ok();
            let first_taken = match first {
                Some(contents) => hub.to_core.send(TcpIn::Datagram { peer, local: advertised, contents }).await.is_ok(),
                None => true,
            };
            if opened && first_taken {
                serve(stream, peer, advertised, rx, &hub.to_core, hub.cancel.clone()).await;
            }
            if opened {
                let _ = hub.to_core.send(TcpIn::Closed { peer }).await;
            }
            let mut c = hub.counts.0.lock().unwrap_or_else(|e| e.into_inner());
            c.total -= 1;
            if let Some(n) = c.per_ip.get_mut(&peer.ip()) {
                *n -= 1;
                if *n == 0 {
                    c.per_ip.remove(&peer.ip());
                }
            }
        });
    }
}

/// Accepts connections on `listener` (the media port over TCP), whose
/// candidate is `advertised`, until the hub is cancelled.
pub async fn accept(listener: TcpListener, advertised: SocketAddr, hub: Hub) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = hub.cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        hub.admit(stream, peer, advertised, None).await;
    }
}

/// The first byte of a TLS connection (a handshake record).
const TLS_HANDSHAKE: u8 = 22;
/// How long a connection to the HTTPS port may stay silent before it is
/// told apart (as long as a TLS handshake may take).
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTPS port, shared with ICE over TCP, for networks that let only
/// the web's port out (axum-server runs it before the TLS handshake). A
/// connection that starts with a TLS handshake record (byte 22) goes on to
/// HTTPS; any other is ICE over TCP: its first bytes are an RFC 4571
/// length, and no datagram we take is anywhere near 22 × 256 bytes long.
///
/// Every shard's sessions offer this port, so with several shards the
/// connection's first datagram (the browser's STUN request) is read here:
/// the ICE username it names starts with its shard's number
/// ([`aconfi_core::shard_named_by_stun`]), and the connection goes to that
/// shard's hub. One that names no shard is closed.
#[derive(Clone)]
pub struct SharedPort {
    /// One per shard.
    hubs: Arc<Vec<Hub>>,
    /// Per local IP the HTTPS port is reached on: the candidate advertised
    /// for it (the HTTPS port, on the media address of that IP).
    candidates: Arc<Vec<(IpAddr, SocketAddr)>>,
}

impl SharedPort {
    /// Hands non-TLS connections to `hubs` (one per shard), as
    /// `candidates` (local IP, advertised address); one reaching another
    /// local IP is closed.
    pub fn new(hubs: Vec<Hub>, candidates: Vec<(IpAddr, SocketAddr)>) -> Self {
        SharedPort { hubs: Arc::new(hubs), candidates: Arc::new(candidates) }
    }

    /// The shard hub for a connection, and its first datagram if it had to
    /// be read to tell (several shards).
    async fn route(&self, stream: &mut TcpStream) -> Option<(&Hub, Option<Vec<u8>>)> {
        if self.hubs.len() == 1 {
            return Some((&self.hubs[0], None));
        }
        let first = tokio::time::timeout(FIRST_BYTE_TIMEOUT, async {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await.ok()?;
            let n = usize::from(u16::from_be_bytes(len));
            if n == 0 || n > MAX_FRAME {
                return None;
            }
            let mut contents = vec![0u8; n];
            stream.read_exact(&mut contents).await.ok()?;
            Some(contents)
        })
        .await
        .ok()??;
        let shard = usize::from(aconfi_core::shard_named_by_stun(&first)?);
        Some((self.hubs.get(shard)?, Some(first)))
    }

    fn advertised(&self, local: SocketAddr) -> Option<SocketAddr> {
        let ip = local.ip().to_canonical();
        self.candidates
            .iter()
            .find(|(l, _)| *l == ip || (l.is_unspecified() && l.is_ipv4() == ip.is_ipv4()))
            .map(|c| c.1)
    }
}

impl<S: Send + 'static> axum_server::accept::Accept<TcpStream, S> for SharedPort {
    type Stream = TcpStream;
    type Service = S;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<(TcpStream, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let mut first = [0u8; 1];
            match tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut first)).await {
                Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => return Ok((stream, service)),
                Ok(Ok(1)) => {}
                _ => return Err(std::io::Error::other("closed before its first byte")),
            }
            let (local, peer) = (stream.local_addr()?, stream.peer_addr()?);
            let mut stream = stream;
            if let Some(advertised) = this.advertised(local) {
                if let Some((hub, first)) = this.route(&mut stream).await {
                    hub.admit(stream, peer, advertised, first).await;
                }
            }
            Err(std::io::Error::other("ICE over TCP, not HTTPS"))
        })
    }
}

/// One connection: unframes what arrives, frames what the core sends.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    mut from_core: mpsc::Receiver<Vec<u8>>,
    to_core: &mpsc::Sender<TcpIn>,
    cancel: CancellationToken,
) {
    let (mut read, mut write) = stream.into_split();
    let reader = async {
        let mut len = [0u8; 2];
        loop {
            match tokio::time::timeout(IDLE_TIMEOUT, read.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let n = usize::from(u16::from_be_bytes(len));
            if n == 0 || n > MAX_FRAME {
                debug!("ICE-TCP frame of a size no datagram has; closing");
                return;
            }
            let mut contents = vec![0u8; n];
            match tokio::time::timeout(IDLE_TIMEOUT, read.read_exact(&mut contents)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            if to_core.send(TcpIn::Datagram { peer, local, contents }).await.is_err() {
                return;
            }
        }
    };
    let writer = async {
        let mut buf = Vec::with_capacity(MAX_FRAME + 2);
        while let Some(d) = from_core.recv().await {
            buf.clear();
            buf.extend_from_slice(&(d.len() as u16).to_be_bytes());
            buf.extend_from_slice(&d);
            // Whatever else is queued goes in the same write.
            while buf.len() < 16 * 1024 {
                let Ok(more) = from_core.try_recv() else { break };
                buf.extend_from_slice(&(more.len() as u16).to_be_bytes());
                buf.extend_from_slice(&more);
            }
            if write.write_all(&buf).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = reader => {}
        _ = writer => {}
    }
}

/// Frames for a peer's connection: queued without waiting (a full queue
/// drops the datagram, as a full UDP buffer would); whether it was queued.
pub fn send(tx: &mpsc::Sender<Vec<u8>>, contents: Vec<u8>) -> bool {
    contents.len() <= usize::from(u16::MAX) && tx.try_send(contents).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn started() -> (SocketAddr, mpsc::Receiver<TcpIn>, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let addr = listener.local_addr().expect("bound");
        let (tx, rx) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        tokio::spawn(accept(listener, addr, Hub::new(tx, cancel.clone(), Caps::default())));
        (addr, rx, cancel)
    }

    #[tokio::test]
    async fn frames_in_and_out() {
        let (addr, mut rx, cancel) = started().await;
        let mut c = TcpStream::connect(addr).await.expect("connected");
        let Some(TcpIn::Open { peer, tx }) = rx.recv().await else { panic!("open first") };
        assert_eq!(peer, c.local_addr().expect("bound"));
        // Two datagrams in one write, split anywhere.
        c.write_all(&[0, 3, 1, 2, 3, 0, 1]).await.expect("written");
        c.write_all(&[9]).await.expect("written");
        for want in [vec![1u8, 2, 3], vec![9]] {
            let Some(TcpIn::Datagram { contents, local, .. }) = rx.recv().await else { panic!("a datagram") };
            assert_eq!((contents, local), (want, addr));
        }
        assert!(send(&tx, vec![7, 7]));
        let mut got = [0u8; 4];
        c.read_exact(&mut got).await.expect("read");
        assert_eq!(got, [0, 2, 7, 7]);
        cancel.cancel();
    }

    /// The HTTPS port's acceptor, and a connection to it as accepted.
    async fn shared() -> (SharedPort, SocketAddr, TcpListener, mpsc::Receiver<TcpIn>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let advertised: SocketAddr = "192.0.2.7:443".parse().expect("address");
        let (tx, rx) = mpsc::channel(64);
        let port = SharedPort::new(
            vec![Hub::new(tx, CancellationToken::new(), Caps::default())],
            vec![("127.0.0.1".parse().expect("ip"), advertised)],
        );
        (port, advertised, listener, rx)
    }

    #[tokio::test]
    async fn the_https_port_passes_tls_on_and_takes_ice_over_tcp() {
        use axum_server::accept::Accept;
        let (port, advertised, listener, mut rx) = shared().await;
        // A TLS ClientHello starts with a handshake record: HTTPS's.
        let mut tls = TcpStream::connect(listener.local_addr().expect("bound")).await.expect("connected");
        tls.write_all(&[22, 3, 1, 0, 5]).await.expect("written");
        let (stream, _) = listener.accept().await.expect("accepted");
        let (mut stream, ()) = port.accept(stream, ()).await.expect("handed on");
        let mut record = [0u8; 5];
        stream.read_exact(&mut record).await.expect("nothing was consumed");
        assert_eq!(record, [22, 3, 1, 0, 5]);
        assert!(rx.try_recv().is_err(), "not ICE");
        // A framed STUN message: ICE over TCP, as the advertised candidate.
        let mut ice = TcpStream::connect(listener.local_addr().expect("bound")).await.expect("connected");
        ice.write_all(&[0, 2, 0, 1]).await.expect("written");
        let (stream, _) = listener.accept().await.expect("accepted");
        assert!(port.accept(stream, ()).await.is_err(), "not for HTTPS");
        let Some(TcpIn::Open { peer, tx }) = rx.recv().await else { panic!("open") };
        assert_eq!(peer, ice.local_addr().expect("bound"));
        let Some(TcpIn::Datagram { contents, local, .. }) = rx.recv().await else { panic!("a datagram") };
        assert_eq!((contents, local), (vec![0, 1], advertised));
        assert!(send(&tx, vec![1, 1]));
        let mut got = [0u8; 4];
        ice.read_exact(&mut got).await.expect("read");
        assert_eq!(got, [0, 2, 1, 1]);
    }

    /// A STUN binding request naming `username` (as RFC 4571 frames it).
    fn framed_stun(username: &str) -> Vec<u8> {
        let mut attr = vec![0, 6];
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        // PRIORITY and MESSAGE-INTEGRITY, which a binding request must
        // carry to parse (the integrity is the session's to check).
        attr.extend_from_slice(&[0, 0x24, 0, 4, 0x6e, 0, 0x1e, 0xff]);
        attr.extend_from_slice(&[0, 8, 0, 20]);
        attr.extend_from_slice(&[0; 20]);
        let mut msg = vec![0, 1];
        msg.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        msg.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attr);
        let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&msg);
        framed
    }

    #[tokio::test]
    async fn with_several_shards_the_https_port_routes_by_the_shard_the_stun_request_names() {
        use axum_server::accept::Accept;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let advertised: SocketAddr = "192.0.2.7:443".parse().expect("address");
        let (caps, cancel) = (Caps::default(), CancellationToken::new());
        let (mut hubs, mut rxs) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            let (tx, rx) = mpsc::channel(64);
            hubs.push(Hub::new(tx, cancel.clone(), caps.clone()));
            rxs.push(rx);
        }
        let port = SharedPort::new(hubs, vec![("127.0.0.1".parse().expect("ip"), advertised)]);
        // Shard 1's session's fragment, as the browser names it.
        let first = framed_stun("1+AbCd:xyz");
        let mut ice = TcpStream::connect(listener.local_addr().expect("bound")).await.expect("connected");
        ice.write_all(&first).await.expect("written");
        let (stream, _) = listener.accept().await.expect("accepted");
        assert!(port.accept(stream, ()).await.is_err(), "not for HTTPS");
        let within = Duration::from_secs(10);
        // The core keeps the connection's sender (dropping it closes it).
        let Ok(Some(TcpIn::Open { tx: _tx, .. })) = tokio::time::timeout(within, rxs[1].recv()).await else {
            panic!("open on shard 1")
        };
        let Ok(Some(TcpIn::Datagram { contents, local, .. })) = tokio::time::timeout(within, rxs[1].recv()).await
        else {
            panic!("its request")
        };
        assert_eq!((&contents[..], local), (&first[2..], advertised));
        assert!(rxs[0].try_recv().is_err(), "nothing for shard 0");
        // Naming no shard (or one that does not exist): closed, nobody told.
        for name in ["AbCd:xyz", "7+AbCd:xyz"] {
            let mut stray = TcpStream::connect(listener.local_addr().expect("bound")).await.expect("connected");
            stray.write_all(&framed_stun(name)).await.expect("written");
            let (stream, _) = listener.accept().await.expect("accepted");
            assert!(port.accept(stream, ()).await.is_err());
            let mut b = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(10), stray.read(&mut b)).await;
            assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{name}: closed");
        }
        assert!(rxs[0].try_recv().is_err() && rxs[1].try_recv().is_err());
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_to_the_https_port_is_dropped() {
        use axum_server::accept::Accept;
        let (port, _, listener, mut rx) = shared().await;
        let _silent = TcpStream::connect(listener.local_addr().expect("bound")).await.expect("connected");
        let (stream, _) = listener.accept().await.expect("accepted");
        let told = tokio::time::timeout(FIRST_BYTE_TIMEOUT * 2, port.accept(stream, ())).await;
        assert!(matches!(told, Ok(Err(_))), "dropped after FIRST_BYTE_TIMEOUT, not held");
        assert!(rx.try_recv().is_err(), "and not taken for ICE");
    }

    #[tokio::test]
    async fn an_oversized_frame_closes_the_connection() {
        let (addr, mut rx, cancel) = started().await;
        let mut c = TcpStream::connect(addr).await.expect("connected");
        let Some(TcpIn::Open { tx: _tx, .. }) = rx.recv().await else { panic!("open first") };
        c.write_all(&(MAX_FRAME as u16 + 1).to_be_bytes()).await.expect("written");
        let Some(TcpIn::Closed { .. }) = rx.recv().await else { panic!("closed") };
        let mut b = [0u8; 1];
        assert_eq!(c.read(&mut b).await.expect("eof"), 0, "the server closed it");
        cancel.cancel();
    }

    #[tokio::test]
    async fn connections_from_one_address_are_capped() {
        let (addr, mut rx, cancel) = started().await;
        // The core keeps each connection's sender (dropping it closes the
        // connection).
        let mut open = Vec::new();
        for _ in 0..MAX_CONNECTIONS_PER_ADDRESS {
            let c = TcpStream::connect(addr).await.expect("connected");
            let Some(TcpIn::Open { tx, .. }) = rx.recv().await else { panic!("open") };
            open.push((c, tx));
        }
        let mut extra = TcpStream::connect(addr).await.expect("the kernel accepts");
        let mut b = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(10), extra.read(&mut b)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the extra one is closed at once");
        // One closes: there is room again.
        drop(open.pop());
        let Some(TcpIn::Closed { .. }) = rx.recv().await else { panic!("closed") };
        let _again = TcpStream::connect(addr).await.expect("connected");
        let Some(TcpIn::Open { tx: _tx, .. }) = rx.recv().await else { panic!("open again") };
        cancel.cancel();
    }
}
