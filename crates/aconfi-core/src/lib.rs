//! A-Confi's sans-IO core: rooms, participants, RTP forwarding and the
//! signaling message types. No sockets, no clock, no randomness in here:
//! the server crate (or a test) feeds inputs with the time and drains
//! outputs. See `docs/protocol.md` for the wire protocol.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod control;
mod forward;
mod negotiation;
pub mod ids;
mod participant;
pub mod protocol;
pub mod rate;
pub mod room_name;
mod sfu;

pub use ids::{ParticipantId, RoomId, TrackId};
pub use protocol::{ClientMsg, CloseCode, Kind, ParticipantInfo, RoomState, ServerMsg, TrackInfo};
pub use room_name::{RoomName, RoomNameError};
pub use sfu::{
    close_reason, Event, Output, Sfu, SfuConfig, SignalError, Transmit, MAX_PARTICIPANTS_PER_ROOM,
    MAX_PUBLISHED_TRACKS,
};

/// Re-exported so the shell and tests use the same str0m as the core.
pub use str0m;
