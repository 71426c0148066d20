//! The RTP socket: one loopback UDP socket connected to the server, read on
//! a thread that hands each packet to the `appsrc` of its SSRC.

use crate::protocol::Emitter;
use gstreamer as gst;
use gstreamer_app as gst_app;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Where the packets of one SSRC go.
pub struct Route {
    pub appsrc: gst_app::AppSrc,
    /// Video routes ask for a keyframe when their first packet arrives: the
    /// request sent when the branch was made may have come before the
    /// publisher was sending at all.
    pub video: bool,
    pub seen: AtomicBool,
}

/// SSRC → route, shared between the controller (which adds and removes
/// branches) and the reader thread.
pub type Routes = Arc<RwLock<HashMap<u32, Route>>>;

/// Binds a UDP socket on the loopback address of `peer`'s family and connects
/// it to `peer`, so that the kernel drops datagrams from anyone else.
pub fn open(peer: SocketAddr) -> io::Result<UdpSocket> {
    let local: IpAddr = match peer {
        SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    };
    let socket = UdpSocket::bind((local, 0))?;
    socket.connect(peer)?;
    // The reader wakes up now and then to notice that it should stop.
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(socket)
}

/// The SSRC of an RTP packet, or `None` for RTCP (RFC 5761 section 4) and
/// anything that is not RTP version 2.
pub fn rtp_ssrc(packet: &[u8]) -> Option<u32> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    if (64..96).contains(&(packet[1] & 0x7f)) {
        return None;
    }
    Some(u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]))
}

/// Starts the reader thread; it runs until `stop` is set.
pub fn spawn_reader(
    socket: UdpSocket,
    routes: Routes,
    emitter: Arc<Emitter>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("rtp-reader".into()).spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                // Timeouts, and ICMP port-unreachable from the server's side
                // of a connected socket: neither ends the stream.
                Err(_) => continue,
            };
            let packet = &buf[..n];
            let Some(ssrc) = rtp_ssrc(packet) else { continue };
            let routes = routes.read().unwrap_or_else(|e| e.into_inner());
            // RTP for an SSRC the server has not described is dropped.
            let Some(route) = routes.get(&ssrc) else { continue };
            if route.video && !route.seen.swap(true, Ordering::Relaxed) {
                emitter.keyframe(ssrc);
            }
            // The appsrc is leaky and never blocks; a full or flushing
            // queue loses the packet, which the jitter buffer copes with.
            let _ = route.appsrc.push_buffer(gst::Buffer::from_slice(packet.to_vec()));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ssrc() {
        let mut p = [0u8; 12];
        p[0] = 0x80;
        p[1] = 96;
        p[8..12].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        assert_eq!(rtp_ssrc(&p), Some(0xdead_beef));
        p[1] = 0x80 | 96;
        assert_eq!(rtp_ssrc(&p), Some(0xdead_beef));
        // RTCP sender report
        p[1] = 200;
        assert_eq!(rtp_ssrc(&p), None);
        p[1] = 96;
        p[0] = 0x40;
        assert_eq!(rtp_ssrc(&p), None);
        assert_eq!(rtp_ssrc(&p[..11]), None);
    }

    #[test]
    fn connected_socket_ignores_strangers() {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let socket = open(peer.local_addr().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        stranger.send_to(b"stranger", addr).unwrap();
        peer.send_to(b"peer", addr).unwrap();
        let mut buf = [0u8; 16];
        let n = socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"peer");
    }
}
