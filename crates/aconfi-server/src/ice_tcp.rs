//! ICE over TCP (RFC 6544), for browsers on networks that block UDP: the
//! media port is also a TCP port, advertised as a passive candidate, and so
//! is the HTTPS port for networks that let only it out ([`SharedPort`]). Each
//! accepted connection carries the same datagrams as UDP (STUN, DTLS, SRTP),
//! each framed by a 16-bit length (RFC 4571). A task per connection
//! unframes what arrives and hands it to the core task; what the core sends
//! to that peer's address goes back framed over the same connection.
//!
//! A connection costs a task, two small buffers and a file descriptor, so
//! they are capped in total and per client address (an IPv6 /64 counting
//! as one, as for WebSockets), counted from the moment they are accepted —
//! before anything is read from them; one that sends nothing usable (a
//! well-formed STUN, DTLS, RTP or RTCP datagram: garbage keeps nothing
//! open) for [`IDLE_TIMEOUT`] is closed, and a frame larger than any
//! datagram we accept closes it. An accept that fails (no file descriptor
//! left) is retried after a pause, never in a tight loop.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aconfi_core::address::AddrKey;

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
/// A connection with nothing usable received for this long is closed (a
/// session sends STUN consent checks every few seconds).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections to the HTTPS port not yet told apart (TLS or ICE), from one
/// address and in all: each waits up to [`FIRST_BYTE_TIMEOUT`].
pub const MAX_UNSORTED_PER_ADDRESS: usize = 32;
/// See [`MAX_UNSORTED_PER_ADDRESS`].
pub const MAX_UNSORTED: usize = 4096;
/// The first pause after a failed accept; it doubles up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
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
    per_addr: HashMap<AddrKey, usize>,
}

impl Counts {
    fn take(&mut self, key: AddrKey, max: usize, per_addr: usize) -> bool {
        let mine = self.per_addr.get(&key).copied().unwrap_or(0);
        if self.total >= max || mine >= per_addr {
            return false;
        }
        self.total += 1;
        *self.per_addr.entry(key).or_default() += 1;
        true
    }

    fn give_back(&mut self, key: AddrKey) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_addr.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.per_addr.remove(&key);
            }
        }
    }
}

/// Connection counts under caps, shared by every hub of the process (one
/// per media shard), so that they hold for the server as a whole.
#[derive(Clone)]
pub struct Caps {
    counts: Arc<Mutex<Counts>>,
    max: usize,
    per_addr: usize,
}

impl Default for Caps {
    /// The caps of ICE-TCP connections.
    fn default() -> Self {
        Caps::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS)
    }
}

impl Caps {
    /// At most `max` at once, `per_addr` from one address.
    pub fn new(max: usize, per_addr: usize) -> Self {
        Caps { counts: Arc::default(), max, per_addr }
    }

    /// A place for a connection from `peer`, if the caps leave one; given
    /// back when the slot is dropped.
    pub fn take(&self, peer: IpAddr) -> Option<Slot> {
        let key = AddrKey::new(peer);
        let taken = self.counts.lock().unwrap_or_else(|e| e.into_inner()).take(key, self.max, self.per_addr);
        taken.then(|| Slot { caps: self.clone(), key })
    }

    /// Connections holding a slot now.
    #[cfg(test)]
    pub fn in_use(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

/// One connection's place under its caps.
pub struct Slot {
    caps: Caps,
    key: AddrKey,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.caps.counts.lock().unwrap_or_else(|e| e.into_inner()).give_back(self.key);
    }
}

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

    /// A slot for a connection from `peer` under this hub's caps.
    pub fn slot(&self, peer: IpAddr) -> Option<Slot> {
        self.counts.take(peer)
    }

    /// Takes over a connection from `peer` to our candidate `advertised`,
    /// which holds `slot`, in a task of its own. `first` is a datagram
    /// already read from it, if any.
    pub async fn admit(
        &self,
        slot: Slot,
        stream: TcpStream,
        peer: SocketAddr,
        advertised: SocketAddr,
        first: Option<Vec<u8>>,
    ) {
        // A dual-stack listener reports IPv4 peers as IPv4-mapped IPv6;
        // the sessions know them as IPv4.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let hub = self.clone();
        let _ = stream.set_nodelay(true);
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        tokio::spawn(async move {
            let _slot = slot;
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
        });
    }
}

/// Accepts connections on `listener` (the media port over TCP), whose
/// candidate is `advertised`, until the hub is cancelled. One over the caps
/// is closed at once.
pub async fn accept(listener: TcpListener, advertised: SocketAddr, hub: Hub) {
    accept_from(|| listener.accept(), advertised, hub).await;
}

/// The accept loop, over whatever yields connections (a listener, or a
/// test's stand-in for one that fails).
async fn accept_from<F, Fut>(mut next: F, advertised: SocketAddr, hub: Hub)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<(TcpStream, SocketAddr)>>,
{
    let mut pause = ACCEPT_BACKOFF;
    loop {
        let accepted = tokio::select! {
            _ = hub.cancel.cancelled() => return,
            accepted = next() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                pause = ACCEPT_BACKOFF;
                a
            }
            Err(e) => {
                // Out of file descriptors (EMFILE), say: it stays so until
                // a connection closes. Waiting lets that happen.
                debug!(error = %e, "accepting an ICE-TCP connection failed; pausing");
                tokio::select! {
                    _ = hub.cancel.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        match hub.slot(peer.ip().to_canonical()) {
            Some(slot) => hub.admit(slot, stream, peer, advertised, None).await,
            None => debug!("ICE-TCP connection refused: too many"),
        }
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
    /// Connections not yet told apart.
    unsorted: Caps,
    /// Per local IP the HTTPS port is reached on: the candidate advertised
    /// for it (the HTTPS port, on the media address of that IP).
    candidates: Arc<Vec<(IpAddr, SocketAddr)>>,
}

impl SharedPort {
    /// Hands non-TLS connections to `hubs` (one per shard), as
    /// `candidates` (local IP, advertised address); one reaching another
    /// local IP is closed.
    pub fn new(hubs: Vec<Hub>, candidates: Vec<(IpAddr, SocketAddr)>) -> Self {
        SharedPort {
            hubs: Arc::new(hubs),
            unsorted: Caps::new(MAX_UNSORTED, MAX_UNSORTED_PER_ADDRESS),
            candidates: Arc::new(candidates),
        }
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
            let (local, peer) = (stream.local_addr()?, stream.peer_addr()?);
            // Counted before anything is read: a crowd of connections that
            // never say what they are holds no more than its share.
            let Some(unsorted) = this.unsorted.take(peer.ip().to_canonical()) else {
                return Err(std::io::Error::other("too many connections from this address"));
            };
            let mut first = [0u8; 1];
            match tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut first)).await {
                // HTTPS: from here the WebSocket caps count it.
                Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => return Ok((stream, service)),
                Ok(Ok(1)) => {}
                _ => return Err(std::io::Error::other("closed before its first byte")),
            }
            let mut stream = stream;
            let Some(advertised) = this.advertised(local) else {
                return Err(std::io::Error::other("ICE over TCP on an address we offer no candidate for"));
            };
            // An ICE-TCP connection: its slot is taken before its first
            // datagram is read (to find its shard), then the sorting one goes.
            let Some(slot) = this.hubs[0].slot(peer.ip().to_canonical()) else {
                return Err(std::io::Error::other("too many ICE-TCP connections"));
            };
            drop(unsorted);
            if let Some((hub, first)) = this.route(&mut stream).await {
                hub.admit(slot, stream, peer, advertised, first).await;
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
        // Moved on only by a datagram of a kind the session takes.
        let mut idle_at = tokio::time::Instant::now() + IDLE_TIMEOUT;
        loop {
            match tokio::time::timeout_at(idle_at, read.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let n = usize::from(u16::from_be_bytes(len));
            if n == 0 || n > MAX_FRAME {
                debug!("ICE-TCP frame of a size no datagram has; closing");
                return;
            }
            let mut contents = vec![0u8; n];
            match tokio::time::timeout_at(idle_at, read.read_exact(&mut contents)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            if !is_media_datagram(&contents) {
                continue;
            }
            idle_at = tokio::time::Instant::now() + IDLE_TIMEOUT;
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

/// Whether a datagram is one a session takes, by the ranges of its first
/// byte that RFC 7983 demultiplexes on, and long enough to be one: STUN
/// (0–3, a 20-byte header), DTLS (20–63, a 13-byte record header), RTP or
/// RTCP (128–191, 12 and 8 bytes).
fn is_media_datagram(d: &[u8]) -> bool {
    match d.first() {
        Some(0..=3) => d.len() >= 20,
        Some(20..=63) => d.len() >= 13,
        Some(128..=191) => d.len() >= 8,
        _ => false,
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
        // Two datagrams (an RTP and an RTCP header's worth) in one write,
        // split anywhere.
        let (rtp, rtcp) = (rtp_like(12), vec![0x81, 200, 0, 1, 0, 0, 0, 9]);
        let mut bytes = framed(&rtp);
        bytes.extend(framed(&rtcp));
        let (one, two) = bytes.split_at(15);
        c.write_all(one).await.expect("written");
        c.write_all(two).await.expect("written");
        for want in [rtp, rtcp] {
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
        let stun = framed_stun("AbCd:xyz");
        ice.write_all(&stun).await.expect("written");
        let (stream, _) = listener.accept().await.expect("accepted");
        assert!(port.accept(stream, ()).await.is_err(), "not for HTTPS");
        let Some(TcpIn::Open { peer, tx }) = rx.recv().await else { panic!("open") };
        assert_eq!(peer, ice.local_addr().expect("bound"));
        let Some(TcpIn::Datagram { contents, local, .. }) = rx.recv().await else { panic!("a datagram") };
        assert_eq!((&contents[..], local), (&stun[2..], advertised));
        assert!(send(&tx, vec![1, 1]));
        let mut got = [0u8; 4];
        ice.read_exact(&mut got).await.expect("read");
        assert_eq!(got, [0, 2, 1, 1]);
    }

    /// `d` as RFC 4571 frames it.
    fn framed(d: &[u8]) -> Vec<u8> {
        let mut f = (d.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(d);
        f
    }

    /// `n` bytes that look like RTP (version 2).
    fn rtp_like(n: usize) -> Vec<u8> {
        let mut d = vec![7u8; n];
        d[0] = 0x80;
        d
    }

    #[test]
    fn caps_count_an_ipv6_64_as_one_address_and_give_slots_back() {
        let caps = Caps::new(4, 2);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = caps.take(ip("2001:db8:1:2::1")).expect("first");
        let _b = caps.take(ip("2001:db8:1:2:ffff::9")).expect("second from the /64");
        assert!(caps.take(ip("2001:db8:1:2::77")).is_none(), "a third from the same /64");
        let _c = caps.take(ip("2001:db8:1:3::1")).expect("another /64");
        let _d = caps.take(ip("::ffff:192.0.2.1")).expect("mapped IPv4 counts as IPv4");
        assert!(caps.take(ip("192.0.2.2")).is_none(), "the total");
        drop(a);
        assert_eq!(caps.in_use(), 3);
        assert!(caps.take(ip("2001:db8:1:2::77")).is_some(), "a slot given back is free");
    }

    #[tokio::test(start_paused = true)]
    async fn only_usable_datagrams_keep_a_connection_open() {
        let (addr, mut rx, cancel) = started().await;
        // Garbage in well-formed frames, every 10 s: closed after IDLE_TIMEOUT
        // all the same, and none of it reaches the core.
        let mut junk = TcpStream::connect(addr).await.expect("connected");
        let Some(TcpIn::Open { tx: _junk_tx, .. }) = rx.recv().await else { panic!("open") };
        let mut live = TcpStream::connect(addr).await.expect("connected");
        let Some(TcpIn::Open { tx: _live_tx, .. }) = rx.recv().await else { panic!("open") };
        let stun = framed_stun("AbCd:xyz");
        for _ in 0..5 {
            // (Once it is closed, writing fails: that is the point.)
            let _ = junk.write_all(&framed(&[0xff; 40])).await;
            let _ = junk.write_all(&framed(&[0x00; 4])).await;
            live.write_all(&stun).await.expect("written");
            tokio::time::sleep(IDLE_TIMEOUT / 3).await;
        }
        // 50 s on: the garbage one is closed, the one sending STUN is not.
        let mut seen = Vec::new();
        while let Ok(m) = rx.try_recv() {
            seen.push(m);
        }
        let datagrams = seen.iter().filter(|m| matches!(m, TcpIn::Datagram { .. })).count();
        let closed = seen.iter().filter(|m| matches!(m, TcpIn::Closed { .. })).count();
        assert_eq!((datagrams, closed), (5, 1), "{seen:?}");
        let mut b = [0u8; 1];
        assert!(matches!(junk.read(&mut b).await, Ok(0) | Err(_)), "closed");
        cancel.cancel();
    }

    #[tokio::test]
    async fn the_https_port_counts_connections_before_it_reads_them() {
        use axum_server::accept::Accept;
        let (port, _, listener, _rx) = shared().await;
        // Silent connections, each waiting to say what it is: from one
        // address, the cap's worth are held ...
        let mut held = Vec::new();
        for _ in 0..MAX_UNSORTED_PER_ADDRESS {
            let c = TcpStream::connect(listener.local_addr().expect("bound")).await.expect("connected");
            let (stream, _) = listener.accept().await.expect("accepted");
            let port = port.clone();
            held.push((c, tokio::spawn(async move { port.accept(stream, ()).await.is_err() })));
        }
        let counted = tokio::time::timeout(FIRST_BYTE_TIMEOUT / 4, async {
            while port.unsorted.in_use() < MAX_UNSORTED_PER_ADDRESS {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        assert!(counted.await.is_ok(), "each is counted as soon as it is accepted");
        // ... and one more is turned away at once, not after the wait.
        let _extra = TcpStream::connect(listener.local_addr().expect("bound")).await.expect("connected");
        let (stream, _) = listener.accept().await.expect("accepted");
        let answer = tokio::time::timeout(FIRST_BYTE_TIMEOUT / 4, port.accept(stream, ())).await;
        assert!(matches!(answer, Ok(Err(_))), "refused before its first byte");
        drop(held);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_accept_is_retried_after_a_pause_not_in_a_loop() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let next = move || {
            // EMFILE, a thousand times; then nothing more comes.
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                if n < 1000 {
                    Err(std::io::Error::from_raw_os_error(24))
                } else {
                    std::future::pending().await
                }
            }
        };
        let (tx, _rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        let hub = Hub::new(tx, cancel.clone(), Caps::default());
        tokio::spawn(accept_from(next, "127.0.0.1:9".parse().unwrap(), hub));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let n = calls.load(std::sync::atomic::Ordering::Relaxed);
        assert!((2..=6).contains(&n), "{n} accepts in a second");
        cancel.cancel();
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
