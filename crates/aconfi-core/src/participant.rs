//! One participant: its WebRTC session, what it publishes, what it receives,
//! and where its SDP negotiation stands.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::SdpPendingOffer;
use str0m::media::{Mid, Pt};
use str0m::Rtc;

use crate::ids::{ParticipantId, TrackId};
use crate::protocol::{Kind, ParticipantInfo};
use crate::room_name::RoomName;

/// Where a participant's SDP negotiation stands. The client offers exactly
/// once (what it publishes); every later change is a server offer, so there
/// is never glare.
pub(crate) enum Phase {
    /// Joined; waiting for the client's offer.
    AwaitingOffer,
    /// Nothing outstanding: the server may offer.
    Stable,
    /// A server offer is out; waiting for the answer.
    AwaitingAnswer(SdpPendingOffer),
}

/// A track this participant receives from someone else.
pub(crate) struct Sub {
    pub track: TrackId,
    pub publisher: ParticipantId,
    pub kind: Kind,
    pub screen: bool,
    pub state: SubState,
    /// Subtracted from the publisher's extended sequence number, so every
    /// outgoing stream starts near zero and its SRTP rollover counter with it.
    pub seq_base: Option<u64>,
    /// Publisher payload type → ours, learnt on the first packet of each PT.
    pub pt_map: Vec<(Pt, Option<Pt>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubState {
    /// Wanted, not yet in an offer.
    Wanted,
    /// In an offer that is not answered yet; `mid` is its m-line.
    Offered(Mid),
    /// Negotiated: packets flow on `mid`.
    Active(Mid),
    /// The publisher left; the m-line is stopped in the next offer.
    Stopping(Option<Mid>),
}

impl Sub {
    pub fn new(track: TrackId, publisher: ParticipantId, kind: Kind, screen: bool) -> Self {
        Sub { track, publisher, kind, screen, state: SubState::Wanted, seq_base: None, pt_map: Vec::new() }
    }

    pub fn mid(&self) -> Option<Mid> {
        match self.state {
            SubState::Wanted => None,
            SubState::Offered(m) | SubState::Active(m) => Some(m),
            SubState::Stopping(m) => m,
        }
    }
}

/// An m-line this participant publishes on. The track is announced to
/// the others only once media arrives on it: a camera that is off, or a
/// screen that is not shared, costs nobody an m-line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Published {
    pub track: Option<TrackId>,
    pub kind: Kind,
    pub screen: bool,
}

pub(crate) struct Participant {
    pub id: ParticipantId,
    pub room: RoomName,
    pub info: ParticipantInfo,
    pub rtc: Rtc,
    pub phase: Phase,
    /// What the client publishes, by the m-line it arrives on.
    pub published: HashMap<Mid, Published>,
    /// What it receives, in the order the tracks appeared.
    pub subs: Vec<Sub>,
    /// Subscriptions changed since the last offer.
    pub renegotiate: bool,
    /// Remote addresses learnt for this participant (for the address map).
    pub addrs: Vec<SocketAddr>,
    /// When str0m next wants `Input::Timeout`.
    pub timeout: Instant,
    /// A moderator muted the microphone: its audio is not forwarded until
    /// the participant unmutes themselves.
    pub force_muted: bool,
    /// Chat rate limit.
    pub chat: crate::rate::TokenBucket,
    /// Bytes of end-to-end key exchange this participant may still relay.
    pub e2ee_bytes: crate::rate::TokenBucket,
    /// The client's screen-share m-line, if it offered one.
    pub screen_mid: Option<Mid>,
    /// Our ICE username fragment for this session.
    pub ufrag: String,
    /// Packets were written that only advancing the session releases.
    pub release_due: bool,
}

impl Participant {
    pub fn sub_by_mid(&self, mid: Mid) -> Option<&Sub> {
        self.subs.iter().find(|s| s.mid() == Some(mid))
    }
}
