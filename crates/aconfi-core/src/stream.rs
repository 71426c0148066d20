//! Live streaming, as the core sees it: a room with a stream has one more
//! subscriber, the streaming worker, which gets every published track as
//! plain RTP. These are the values that pass between the core and the
//! shell that runs the worker process (`docs/architecture.md`).

use serde::Serialize;

use crate::ids::RoomId;
use crate::protocol::{StreamStatus, StreamUrl};

/// One stream of one room. A room streams at most once at a time; a
/// restarted stream has a new `serial`, so a late report from the previous
/// worker cannot touch the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamKey {
    /// The room streamed.
    pub room: RoomId,
    /// Which of the room's streams.
    pub serial: u32,
}

/// What the shell must do for a stream.
#[derive(Debug)]
pub enum StreamOut {
    /// Start a worker publishing to `url`. The core keeps no copy of it.
    Start {
        /// Ingest URL with the stream key.
        url: StreamUrl,
    },
    /// The complete set of media the worker composes now.
    Sources(Vec<StreamSource>),
    /// A plain RTP packet for the worker (SSRC, payload type as in its
    /// [`StreamSource`]).
    Rtp(Vec<u8>),
    /// End the worker (stopped, or the room closed).
    Stop,
}

/// A track as the worker sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamSource {
    /// The SSRC its RTP carries (one per track and codec).
    pub ssrc: u32,
    /// Whose it is: a person's audio and video share this.
    pub person: u64,
    /// Their display name, shown on the picture ("" for none).
    pub name: String,
    /// Camera, screen or audio.
    pub kind: SourceKind,
    /// `VP8`, `H264` or `opus`.
    pub codec: &'static str,
    /// Payload type of its RTP.
    pub pt: u8,
    /// RTP clock rate.
    pub clock_rate: u32,
}

/// What a source shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A camera.
    Camera,
    /// A shared screen: shown large.
    Screen,
    /// A microphone: mixed.
    Audio,
}

/// What the shell reports about a stream's worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The worker's state (from the worker; `reason` is its fixed text).
    State {
        /// Where it stands.
        state: StreamStatus,
        /// Why, for a failure.
        reason: Option<String>,
    },
    /// The worker needs a keyframe on this SSRC (a decoder starting).
    Keyframe {
        /// The source's SSRC.
        ssrc: u32,
    },
    /// The worker could not be started, or ended without saying why.
    Exited {
        /// Why (English).
        reason: String,
    },
}

/// The codecs the worker takes, with the payload type and SSRC tag the
/// plain RTP to it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TapCodec {
    Opus = 0,
    Vp8 = 1,
    H264 = 2,
}

impl TapCodec {
    pub fn of(codec: str0m::format::Codec) -> Option<TapCodec> {
        use str0m::format::Codec;
        match codec {
            Codec::Opus => Some(TapCodec::Opus),
            Codec::Vp8 => Some(TapCodec::Vp8),
            Codec::H264 => Some(TapCodec::H264),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TapCodec::Opus => "opus",
            TapCodec::Vp8 => "VP8",
            TapCodec::H264 => "H264",
        }
    }

    pub fn pt(self) -> u8 {
        match self {
            TapCodec::Opus => 111,
            TapCodec::Vp8 => 96,
            TapCodec::H264 => 102,
        }
    }

    pub fn clock_rate(self) -> u32 {
        match self {
            TapCodec::Opus => 48_000,
            _ => 90_000,
        }
    }
}
