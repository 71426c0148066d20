//! ICE over TCP (RFC 6544), for browsers on networks that block UDP: the
//! media port is also a TCP port, advertised as a passive candidate. Each
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

/// Counts connections per client address.
#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Accepts connections on `listener` until `cancel`, each in its own task
/// that reports to `to_core`.
pub async fn accept(
    listener: TcpListener,
    advertised: SocketAddr,
    to_core: mpsc::Sender<TcpIn>,
    cancel: CancellationToken,
) {
    let counts = Arc::new(Mutex::new(Counts::default()));
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        {
            let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
            let from_ip = c.per_ip.get(&peer.ip()).copied().unwrap_or(0);
            if c.total >= MAX_CONNECTIONS || from_ip >= MAX_CONNECTIONS_PER_ADDRESS {
                debug!("ICE-TCP connection refused: too many");
                continue;
            }
            c.total += 1;
            *c.per_ip.entry(peer.ip()).or_default() += 1;
        }
        let _ = stream.set_nodelay(true);
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        if to_core.send(TcpIn::Open { peer, tx }).await.is_err() {
            return;
        }
        let to_core = to_core.clone();
        let counts = counts.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            serve(stream, peer, advertised, rx, &to_core, cancel).await;
            let _ = to_core.send(TcpIn::Closed { peer }).await;
            let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
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
        tokio::spawn(accept(listener, addr, tx, cancel.clone()));
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
