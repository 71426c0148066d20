//! A-Confi's sans-IO core: rooms, participants, RTP forwarding and the
//! signaling message types. No sockets, no clock, no randomness in here:
//! the server crate (or a test) feeds inputs with the time and drains
//! outputs. `docs/architecture.md` is the map; `docs/protocol.md` the wire
//! protocol.
//!
//! Modules, each importing only those below it:
//! `sfu` (the shard: finds the room) → `room` (members, door, control,
//! forwarding) → `participant` (one session) → `downtrack` (one track to one
//! subscriber); `endpoint` (datagram demux), `timers`, `output`, `error`,
//! `codec`, `protocol`, `ids`; `simulcast` (layer switching), `alloc`
//! (bandwidth allocation), `capacity` (what a subscriber's allocation may
//! spend, from its estimate and loss) and `layers` (a published track's
//! layers); `stream` (what passes to and from a room's streaming worker);
//! `speaker`, `address`, `rate`, `room_name`, `stream_limits`, `guard`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod alloc;
pub mod capacity;
pub mod codec;
mod downtrack;
mod endpoint;
mod error;
mod guard;
pub mod ids;
mod layers;
mod output;
mod participant;
pub mod protocol;
pub mod rate;
mod room;
pub mod room_name;
mod sfu;
pub mod simulcast;
mod speaker;
pub mod stream;
pub mod stream_limits;
mod timers;

pub use endpoint::{Received, MAX_ADDRS_PER_PARTICIPANT};
pub use error::SignalError;
pub use ids::{NodeId, ParticipantId, RoomId, TrackId};
pub use output::{Datagram, Output};
pub use participant::{CONNECT_DEADLINE, MAX_OFFER_BYTES, MAX_OFFER_MLINES, MAX_PUBLISHED_TRACKS, MAX_VIEW_TILES};
pub use protocol::{
    ClientMsg, CloseCode, Kind, ParticipantInfo, RoomState, ServerMsg, StreamStatus, StreamUrl, TrackInfo, ViewTile,
};
pub use room::UNCONFIRMED_E2EE_MESSAGES;
pub use room::{
    GUESS_WINDOW, MAX_GUESSES_PER_CONNECTION, MAX_GUESSES_PER_ROOM, MAX_PARTICIPANTS_PER_ROOM, MAX_WAITING_PER_ROOM,
    SLOW_DOWN,
};
pub use room_name::{RoomName, RoomNameError};
pub use sfu::{shard_named_by_stun, Sfu, SfuConfig};
pub use stream::{SourceKind, StreamEvent, StreamKey, StreamOut, StreamSource};
pub use stream_limits::{StreamLimits, StreamRefusal};

/// Re-exported so the shell and tests use the same str0m as the core.
pub use str0m;
