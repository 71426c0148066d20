//! Datagram demux: which participant a datagram on the shared media port
//! belongs to. Nothing else lives here.
//!
//! A remote address is claimed by a participant when a STUN request names
//! that participant's ICE username fragment and its session accepts it
//! (message integrity checked with the ICE password, which only that
//! participant's browser knows). Known addresses are then a hash lookup.
//! Each participant holds at most [`MAX_ADDRS_PER_PARTICIPANT`] addresses;
//! claiming one more forgets the one it used least recently, so a client
//! that roams (or a hostile one that claims address after address) costs a
//! bounded amount of memory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::net::Protocol;

use crate::ids::{ParticipantId, RoomId};

/// A datagram as the shell hands it in: how it came (UDP, or ICE-TCP with
/// the RFC 4571 framing removed), who sent it, the address of ours it
/// came to (as advertised in our candidates), and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// UDP or TCP: what the core sends back to `source` goes the same way.
    pub proto: Protocol,
    /// The remote address.
    pub source: SocketAddr,
    /// Our address it came to.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: &'a [u8],
}

impl<'a> Received<'a> {
    /// A datagram from a UDP media socket.
    pub fn udp(source: SocketAddr, destination: SocketAddr, contents: &'a [u8]) -> Self {
        Received { proto: Protocol::Udp, source, destination, contents }
    }

    /// A datagram from an ICE-TCP connection.
    pub fn tcp(source: SocketAddr, destination: SocketAddr, contents: &'a [u8]) -> Self {
        Received { proto: Protocol::Tcp, source, destination, contents }
    }
}

/// Remote addresses one participant may be known by at once (a browser
/// tries a pair per local interface, and moves when its network changes).
pub const MAX_ADDRS_PER_PARTICIPANT: usize = 4;

/// Where a datagram goes: the participant and the room it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub room: RoomId,
    pub pid: ParticipantId,
}

struct Claim {
    route: Route,
    last_seen: Instant,
}

/// The address and ICE username maps.
#[derive(Default)]
pub(crate) struct Endpoint {
    by_addr: HashMap<SocketAddr, Claim>,
    by_ufrag: HashMap<String, Route>,
    /// Each participant's addresses, for the cap and for forgetting them.
    addrs: HashMap<ParticipantId, Vec<SocketAddr>>,
}

impl Endpoint {
    /// The participant known by `source`, if any; marks the address used.
    pub fn route(&mut self, source: SocketAddr, now: Instant) -> Option<Route> {
        let claim = self.by_addr.get_mut(&source)?;
        claim.last_seen = now;
        Some(claim.route)
    }

    /// Whom a STUN request from an unknown address names. The caller checks
    /// with that session before [`Endpoint::claim`]ing the address.
    pub fn named_by_stun(&self, contents: &[u8]) -> Option<Route> {
        let msg = str0m::ice::StunMessage::parse(contents).ok()?;
        let (local, _) = msg.split_username()?;
        self.by_ufrag.get(local).copied()
    }

    /// A new session: its ICE username fragment names it from now on.
    pub fn register(&mut self, ufrag: String, route: Route) {
        self.by_ufrag.insert(ufrag, route);
    }

    /// `source` is `route`'s (its session accepted a STUN request from it).
    pub fn claim(&mut self, source: SocketAddr, route: Route, now: Instant) {
        if let Some(old) = self.by_addr.insert(source, Claim { route, last_seen: now }) {
            // Another participant's address now (a NAT reused the port).
            if old.route.pid != route.pid {
                if let Some(list) = self.addrs.get_mut(&old.route.pid) {
                    list.retain(|a| *a != source);
                }
            }
        }
        let list = self.addrs.entry(route.pid).or_default();
        if list.contains(&source) {
            return;
        }
        if list.len() >= MAX_ADDRS_PER_PARTICIPANT {
            let by_addr = &self.by_addr;
            let stalest =
                list.iter().enumerate().min_by_key(|(_, a)| by_addr.get(a).map(|c| c.last_seen)).map(|(i, _)| i);
            if let Some(i) = stalest {
                let gone = list.swap_remove(i);
                self.by_addr.remove(&gone);
            }
        }
        list.push(source);
    }

    /// Forgets everything about a participant that left.
    pub fn forget(&mut self, pid: ParticipantId, ufrag: &str) {
        self.by_ufrag.remove(ufrag);
        for a in self.addrs.remove(&pid).unwrap_or_default() {
            self.by_addr.remove(&a);
        }
    }

    /// Addresses known (for tests of the cap).
    #[cfg(test)]
    fn known(&self, pid: ParticipantId) -> usize {
        self.addrs.get(&pid).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn the_least_recently_used_address_makes_room_and_leaving_forgets_all() {
        let t0 = Instant::now();
        let mut e = Endpoint::default();
        let r = Route { room: RoomId(1), pid: ParticipantId(1) };
        e.register("abcd".into(), r);
        for port in 0..MAX_ADDRS_PER_PARTICIPANT as u16 {
            e.claim(addr(port), r, t0 + Duration::from_millis(port.into()));
        }
        // The first address is in use; the second is the stalest.
        assert_eq!(e.route(addr(0), t0 + Duration::from_secs(1)), Some(r));
        e.claim(addr(99), r, t0 + Duration::from_secs(2));
        assert_eq!(e.known(r.pid), MAX_ADDRS_PER_PARTICIPANT);
        assert_eq!(e.route(addr(1), t0), None, "stalest forgotten");
        assert_eq!(e.route(addr(0), t0), Some(r), "the one in use kept");
        assert_eq!(e.route(addr(99), t0), Some(r));

        // A NAT hands the port to someone else: it moves, nobody keeps a ghost.
        let other = Route { room: RoomId(1), pid: ParticipantId(2) };
        e.claim(addr(99), other, t0);
        assert_eq!(e.known(r.pid), MAX_ADDRS_PER_PARTICIPANT - 1);
        e.forget(r.pid, "abcd");
        assert_eq!(e.route(addr(0), t0), None);
        assert_eq!(e.route(addr(99), t0), Some(other));
        assert!(e.by_ufrag.is_empty());
    }
}
