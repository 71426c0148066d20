//! Identifiers as newtypes, so a participant id is never mistaken for a room.
//!
//! # Scope
//!
//! A [`ParticipantId`] and a [`RoomId`] are unique across a deployment, not
//! just one process: the top bits name the node ([`NodeId`]) that made
//! them, the low [`SERIAL_BITS`] bits count on that node. A room that later
//! lives on another node (or is cascaded to one) keeps ids that cannot clash
//! with that node's own. Both stay below 2^53 so a browser's JSON numbers
//! hold them exactly. A single server is node 0, and its ids are plain
//! counters.
//!
//! A [`TrackId`] is scoped to its room: each room numbers its tracks from 1.
//! Outside a room, name a track by `(RoomId, TrackId)`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Bits of an id that count within one node.
pub const SERIAL_BITS: u32 = 40;
/// Bits of an id that name the node (`SERIAL_BITS + NODE_BITS` = 53).
pub const NODE_BITS: u32 = 13;
const SERIAL_MASK: u64 = (1 << SERIAL_BITS) - 1;

/// One A-Confi server process in a deployment of several; 0 for a single
/// server. Values at or above 2^[`NODE_BITS`] are reduced modulo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub u16);

impl NodeId {
    fn bits(self) -> u64 {
        u64::from(self.0) & ((1 << NODE_BITS) - 1)
    }
}

/// Opaque participant id, unique across the deployment (see the module
/// docs). Safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParticipantId(pub u64);

impl ParticipantId {
    /// The `serial`-th participant id made on `node` (the serial wraps
    /// after 2^40, about 35 years at a thousand joins a second).
    pub fn new(node: NodeId, serial: u64) -> Self {
        ParticipantId(node.bits() << SERIAL_BITS | serial & SERIAL_MASK)
    }

    /// The node that made this id.
    pub fn node(self) -> NodeId {
        NodeId((self.0 >> SERIAL_BITS) as u16)
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// Opaque room id, unique across the deployment (see the module docs).
/// Safe to log, unlike the room's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u64);

impl RoomId {
    /// The `serial`-th room opened on `node`.
    pub fn new(node: NodeId, serial: u64) -> Self {
        RoomId(node.bits() << SERIAL_BITS | serial & SERIAL_MASK)
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// A published track: one participant's audio or video, numbered within
/// its room. Safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u64);

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_node_and_stay_exact_in_javascript() {
        let id = ParticipantId::new(NodeId(7), 42);
        assert_eq!(id.node(), NodeId(7));
        assert_ne!(id, ParticipantId::new(NodeId(8), 42), "same serial, other node");
        let biggest = ParticipantId::new(NodeId(u16::MAX), u64::MAX);
        assert!(biggest.0 < 1 << 53, "a JSON number in a browser holds it exactly");
        // Node 0 keeps the plain counter a single server has always sent.
        assert_eq!(ParticipantId::new(NodeId(0), 5), ParticipantId(5));
        assert_eq!(RoomId::new(NodeId(1), 1).0, (1 << SERIAL_BITS) + 1);
    }
}
