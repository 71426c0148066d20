//! An in-memory meeting: one [`Sfu`] and N [`ClientPeer`]s joined by a
//! perfect network and a virtual clock. Each step picks the earliest
//! deadline, advances the clock to it and delivers everything queued, so a
//! test runs seconds of meeting in milliseconds, the same way every time.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use aconfi_core::{ClientMsg, Output, ParticipantId, Received, ServerMsg, Sfu, SfuConfig, StreamKey, StreamOut};

use crate::{ClientOutput, ClientPeer};

/// The SFU's media address inside the simulation.
pub const SERVER_ADDR: &str = "127.0.0.1:10000";

/// One simulated participant.
pub struct SimPeer {
    /// The client state machine.
    pub peer: ClientPeer,
    /// Its connection id at the SFU.
    pub pid: ParticipantId,
    /// Its media address.
    pub addr: SocketAddr,
    /// Whether its WebSocket is still open.
    pub open: bool,
    /// Close code the server sent, if it closed us.
    pub closed_with: Option<u16>,
    /// Every server message received, in order.
    pub inbox: Vec<ServerMsg>,
}

/// The simulated meeting.
pub struct Sim {
    /// The SFU under test.
    pub sfu: Sfu,
    /// The peers, by index.
    pub peers: Vec<SimPeer>,
    /// Virtual now.
    pub now: Instant,
    server: SocketAddr,
    next_pid: u64,
    to_server: VecDeque<(SocketAddr, Vec<u8>)>,
    signals_up: VecDeque<(ParticipantId, ClientMsg)>,
    /// Drop about one in n RTP datagrams (None: no loss), chosen by a
    /// seeded generator so runs repeat exactly without aliasing with the
    /// regular audio/video packet pattern.
    rtp_loss_one_in: Option<u64>,
    rng: u64,
    /// Everything the SFU asked of streaming workers, in order (a test
    /// plays the worker).
    pub stream_out: Vec<(StreamKey, StreamOut)>,
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Sim {
    /// An empty meeting server.
    pub fn new() -> Self {
        Self::with_config(SfuConfig::default())
    }

    /// An empty meeting server with this configuration (its candidates are
    /// the simulation's server address).
    pub fn with_config(config: SfuConfig) -> Self {
        let server: SocketAddr = SERVER_ADDR.parse().expect("constant address parses");
        Sim {
            sfu: Sfu::new(SfuConfig { candidates: vec![server], ..config }),
            peers: Vec::new(),
            now: Instant::now(),
            server,
            next_pid: 1,
            to_server: VecDeque::new(),
            signals_up: VecDeque::new(),
            rtp_loss_one_in: None,
            rng: 0x9e37_79b9_7f4a_7c15,
            stream_out: Vec::new(),
        }
    }

    /// From now on, lose about one in `n` RTP datagrams in each direction
    /// (STUN, DTLS and RTCP, NACKs and PLIs included, always pass). `None`
    /// stops the loss.
    pub fn set_rtp_loss(&mut self, one_in: Option<u64>) {
        self.rtp_loss_one_in = one_in;
    }

    /// Whether this datagram is lost.
    fn lose(&mut self, d: &[u8]) -> bool {
        let Some(n) = self.rtp_loss_one_in else { return false };
        // RTP: version 2, and not RTCP, whose second byte (marker bit and
        // payload type together) is 192–223 (RFC 5761: SR, RR, SDES, BYE, APP,
        // and the feedback messages that carry NACK and PLI).
        let is_rtp = d.len() > 12 && d[0] >> 6 == 2 && !(192..=223).contains(&d[1]);
        if !is_rtp {
            return false;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng.is_multiple_of(n)
    }

    /// The SFU's media address.
    pub fn server_addr(&self) -> SocketAddr {
        self.server
    }

    /// Adds a peer that joins `room`; returns its index.
    pub fn join(&mut self, room: &str, name: Option<&str>) -> usize {
        let addr = self.next_addr();
        let peer = ClientPeer::new(room, name, addr, self.now);
        self.add(peer, addr)
    }

    /// Adds a peer that joins `room` sending media as `config` says (for
    /// example in simulcast layers); returns its index.
    pub fn join_with(&mut self, room: &str, name: Option<&str>, config: crate::MediaConfig) -> usize {
        let addr = self.next_addr();
        let peer = ClientPeer::with_media(room, name, addr, self.now, self.now, config, true, addr.port().into());
        self.add(peer, addr)
    }

    /// Adds a viewer (publishes nothing) that joins `room`; returns its index.
    pub fn join_viewer(&mut self, room: &str) -> usize {
        let addr = self.next_addr();
        let peer = ClientPeer::new_viewer(room, addr, self.now);
        self.add(peer, addr)
    }

    fn next_addr(&self) -> SocketAddr {
        let i = self.peers.len();
        SocketAddr::from(([127, 0, 0, 2], 20000 + i as u16))
    }

    fn add(&mut self, peer: ClientPeer, addr: SocketAddr) -> usize {
        let i = self.peers.len();
        let pid = ParticipantId(self.next_pid);
        self.next_pid += 1;
        // Each peer connects from its own address unless a test says
        // otherwise (`Sfu::handle_connect` again before the first flush).
        self.sfu.handle_connect(pid, IpAddr::from([10, 0, (i >> 8) as u8, i as u8]));
        self.peers.push(SimPeer { peer, pid, addr, open: true, closed_with: None, inbox: Vec::new() });
        i
    }

    /// Peer `i` sends `leave`.
    pub fn leave(&mut self, i: usize) {
        let pid = self.peers[i].pid;
        self.signals_up.push_back((pid, ClientMsg::Leave {}));
        self.flush();
    }

    /// Sends a raw client message as peer `i` (for refusal tests).
    pub fn send(&mut self, i: usize, msg: ClientMsg) {
        let pid = self.peers[i].pid;
        self.signals_up.push_back((pid, msg));
        self.flush();
    }

    /// Delivers everything queued, repeatedly, until the network is quiet.
    pub fn flush(&mut self) {
        loop {
            let mut busy = false;
            for idx in 0..self.peers.len() {
                while let Some(o) = self.peers[idx].peer.poll_output() {
                    busy = true;
                    match o {
                        ClientOutput::Transmit(d) => {
                            if self.peers[idx].open {
                                self.to_server.push_back((d.source, d.contents));
                            }
                        }
                        ClientOutput::Signal(m) => {
                            if self.peers[idx].open {
                                self.signals_up.push_back((self.peers[idx].pid, m));
                            }
                        }
                    }
                }
            }
            while let Some((pid, m)) = self.signals_up.pop_front() {
                busy = true;
                // Errors come back as `error` + `Close` or `refused` outputs.
                let _ = self.sfu.handle_signal(pid, m, self.now);
            }
            while let Some((from, data)) = self.to_server.pop_front() {
                busy = true;
                if self.lose(&data) {
                    continue;
                }
                self.sfu.handle_receive(Received::udp(from, self.server, &data), self.now);
            }
            while let Some(o) = self.sfu.poll_output() {
                busy = true;
                match o {
                    Output::Transmit(t) => {
                        if self.lose(&t.contents) {
                            continue;
                        }
                        if let Some(p) = self.peers.iter_mut().find(|p| p.addr == t.destination && p.open) {
                            // A client error here is a test failure: surface it.
                            p.peer
                                .handle_receive(t.source, t.destination, &t.contents, self.now)
                                .expect("client accepts server datagram");
                        }
                    }
                    Output::Signal(pid, m) => {
                        if let Some(p) = self.peers.iter_mut().find(|p| p.pid == pid && p.open) {
                            p.inbox.push(m.clone());
                            if let Err(e) = p.peer.handle_server_msg(m, self.now) {
                                // Errors are the server's `error` message; the close follows.
                                let _ = e;
                            }
                        }
                    }
                    Output::Close(pid, code) => self.close(pid, code.code()),
                    Output::Stream(key, o) => self.stream_out.push((key, o)),
                }
            }
            if !busy {
                return;
            }
        }
    }

    fn close(&mut self, pid: ParticipantId, code: u16) {
        if let Some(p) = self.peers.iter_mut().find(|p| p.pid == pid) {
            p.open = false;
            p.closed_with = Some(code);
        }
        // As the server's shell does once the socket is closed.
        self.sfu.handle_disconnect(pid, self.now);
    }

    /// Advances the virtual clock to the next deadline and handles it.
    pub fn step(&mut self) {
        self.flush();
        let mut next = self.sfu.poll_timeout().unwrap_or(self.now + Duration::from_millis(10));
        for p in self.peers.iter().filter(|p| p.open) {
            next = next.min(p.peer.poll_timeout());
        }
        // Never stand still: a deadline in the past still moves time a little.
        self.now = next.max(self.now + Duration::from_micros(100));
        for p in self.peers.iter_mut().filter(|p| p.open) {
            if p.peer.poll_timeout() <= self.now {
                p.peer.handle_timeout(self.now).expect("client handles its timeout");
            }
        }
        if self.sfu.poll_timeout().is_some_and(|t| t <= self.now) {
            self.sfu.handle_timeout(self.now);
        }
        self.flush();
    }

    /// Runs the meeting for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// Runs until `cond` holds, for at most `limit` of virtual time.
    /// Returns whether it held.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if cond(self) {
                return true;
            }
            self.step();
        }
        cond(self)
    }
}
