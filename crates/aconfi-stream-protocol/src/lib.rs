//! The control protocol between the A-Confi server and its live-streaming
//! worker (`aconfi-stream`): one JSON object per line, [`Command`]s on the
//! worker's stdin, [`Event`]s on its stdout. Both binaries read and write
//! these lines only through this crate ([`Command::to_line`],
//! [`Command::parse`], [`Event::to_line`], [`Event::parse`]).
//!
//! The lines are described, with an example of each, in
//! `crates/aconfi-stream/README.md` ("Control protocol"); `tests/doc.rs`
//! checks every example there against these types and that every command
//! and event has one.
//!
//! Fields are declared in alphabetical order, after the tag: serde writes
//! them in declaration order, and these are the bytes the server and the
//! worker wrote before this crate existed (with `serde_json::json!`, whose
//! objects sort their keys).
//!
//! A crate of its own, with serde and serde_json only: the worker must not
//! build the core (str0m, aws-lc) to speak it, and the server must not link
//! GStreamer.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A line the server writes to the worker's stdin.
///
/// Unknown fields are ignored; an unknown `cmd` does not parse.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Command {
    /// Publish to `url`, first and once.
    Start {
        /// The one address the server checked for the URL's host, to which
        /// alone the worker connects.
        connect: SocketAddr,
        /// Where the server's plain RTP comes from (a loopback address).
        peer: SocketAddr,
        /// The ingest URL, with the stream key: a secret. [`Command`]'s
        /// `Debug` prints none of it.
        url: String,
    },
    /// The complete set of media the worker composes now, in layout order.
    Sources {
        /// Every source; the worker ignores those it cannot show or mix.
        sources: Vec<Source>,
    },
    /// End the publish cleanly and exit.
    Stop,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Start { connect, peer, url: _ } => f
                .debug_struct("Start")
                .field("connect", connect)
                .field("peer", peer)
                .field("url", &format_args!("<redacted>"))
                .finish(),
            Command::Sources { sources } => f.debug_struct("Sources").field("sources", sources).finish(),
            Command::Stop => f.write_str("Stop"),
        }
    }
}

/// A source in a [`Command::Sources`] list, as the server describes it.
///
/// `kind` and `codec` are strings on the wire, read case-insensitively
/// ([`Source::kind`], [`Source::codec`]): an entry the worker cannot use
/// drops only that entry, not the whole list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// RTP clock rate (0 is invalid).
    pub clock_rate: u32,
    /// A [`Codec`]'s name: `VP8`, `H264` or `opus`.
    pub codec: String,
    /// A [`Kind`]'s name: `camera`, `screen` or `audio`.
    pub kind: String,
    /// The display name shown on the tile ("" for none).
    #[serde(default)]
    pub name: String,
    /// Whose it is: a person's audio and video share this.
    #[serde(default)]
    pub person: u64,
    /// Payload type of its RTP (above 127 is invalid).
    pub pt: u8,
    /// The SSRC its RTP carries.
    pub ssrc: u32,
}

impl Source {
    /// Its kind, if it is one this protocol knows.
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_name(&self.kind)
    }

    /// Its codec, if it is one this protocol knows.
    pub fn codec(&self) -> Option<Codec> {
        Codec::from_name(&self.codec)
    }
}

/// What a source shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A camera.
    Camera,
    /// A shared screen.
    Screen,
    /// A microphone.
    Audio,
}

impl Kind {
    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Camera => "camera",
            Kind::Screen => "screen",
            Kind::Audio => "audio",
        }
    }

    /// The kind of this name, in any case.
    pub fn from_name(name: &str) -> Option<Kind> {
        [Kind::Camera, Kind::Screen, Kind::Audio].into_iter().find(|k| k.name().eq_ignore_ascii_case(name))
    }
}

/// A source's codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// VP8 video.
    Vp8,
    /// H.264 video.
    H264,
    /// Opus audio.
    Opus,
}

impl Codec {
    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Vp8 => "VP8",
            Codec::H264 => "H264",
            Codec::Opus => "opus",
        }
    }

    /// The codec of this name, in any case.
    pub fn from_name(name: &str) -> Option<Codec> {
        [Codec::Vp8, Codec::H264, Codec::Opus].into_iter().find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

/// A line the worker writes to its stdout.
///
/// Unknown fields are ignored; an unknown `ev`, state or reason does not
/// parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// Its RTP socket is bound at this loopback port.
    Ready {
        /// The port.
        port: u16,
    },
    /// Where it stands now (sent only when that changes).
    State {
        /// Why, for `reconnecting` and `failed`; omitted otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
        /// The state.
        state: State,
    },
    /// A video branch wants a keyframe on this SSRC.
    Keyframe {
        /// The source's SSRC.
        ssrc: u32,
    },
}

/// The worker's states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Connecting to the ingest.
    Starting,
    /// The ingest is receiving the stream.
    Live,
    /// A live stream broke; retrying with back-off.
    Reconnecting,
    /// Given up; the worker exits.
    Failed,
}

impl State {
    /// Every state.
    pub const ALL: [State; 4] = [State::Starting, State::Live, State::Reconnecting, State::Failed];
}

/// Why a stream reconnects or failed: fixed texts, written by the worker,
/// never taken from GStreamer (whose messages can contain the URL). On the
/// wire as the text of [`Reason::as_str`]; no other text parses, so only
/// these can reach the meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The ingest did not take the connection or the publish.
    CouldNotConnect,
    /// The ingest ended the connection.
    IngestClosed,
    /// The ingest stopped reading.
    IngestStalled,
    /// An encoder or mixer failed.
    EncoderFailed,
    /// `start`'s `peer` is not a loopback address.
    BadPeer,
    /// `start`'s `url` is not a valid `rtmp://` or `rtmps://` URL.
    BadUrl,
    /// The RTP socket could not be opened.
    SocketFailed,
    /// The pipeline could not be built.
    PipelineFailed,
}

impl Reason {
    /// Every reason.
    pub const ALL: [Reason; 8] = [
        Reason::CouldNotConnect,
        Reason::IngestClosed,
        Reason::IngestStalled,
        Reason::EncoderFailed,
        Reason::BadPeer,
        Reason::BadUrl,
        Reason::SocketFailed,
        Reason::PipelineFailed,
    ];

    /// Its text (English), as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CouldNotConnect => "could not connect to the ingest",
            Reason::IngestClosed => "the ingest closed the connection",
            Reason::IngestStalled => "the ingest stopped accepting data",
            Reason::EncoderFailed => "the encoder failed",
            Reason::BadPeer => "the peer address is not a loopback address",
            Reason::BadUrl => "the ingest URL is not a valid rtmp:// or rtmps:// URL",
            Reason::SocketFailed => "could not open the RTP socket",
            Reason::PipelineFailed => "the media pipeline could not be built",
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| serde::de::Error::custom("not one of the worker's reasons"))
    }
}

/// Serializes one line, without its newline. Cannot fail for these types
/// (no maps, no fallible `Serialize`).
fn to_line(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("a protocol line always serializes")
}

impl Command {
    /// The command as one line of JSON, without the newline.
    pub fn to_line(&self) -> String {
        to_line(self)
    }

    /// Reads one line (surrounding whitespace, a newline included, is
    /// allowed).
    pub fn parse(line: &str) -> Result<Command, serde_json::Error> {
        serde_json::from_str(line)
    }
}

impl Event {
    /// The event as one line of JSON, without the newline.
    pub fn to_line(&self) -> String {
        to_line(self)
    }

    /// Reads one line (surrounding whitespace, a newline included, is
    /// allowed).
    pub fn parse(line: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Command {
        Command::Start {
            connect: "192.0.2.1:443".parse().unwrap(),
            peer: "127.0.0.1:40123".parse().unwrap(),
            url: "rtmps://a.rtmps.youtube.com/live2/abcd-efgh-ijkl".into(),
        }
    }

    /// The exact bytes the `json!` macros wrote before this crate: sorted
    /// keys, no spaces, `reason` omitted when there is none.
    #[test]
    fn lines_are_the_bytes_written_before() {
        assert_eq!(
            start().to_line(),
            r#"{"cmd":"start","connect":"192.0.2.1:443","peer":"127.0.0.1:40123","url":"rtmps://a.rtmps.youtube.com/live2/abcd-efgh-ijkl"}"#
        );
        let sources = Command::Sources {
            sources: vec![Source {
                clock_rate: 90000,
                codec: Codec::Vp8.name().into(),
                kind: Kind::Camera.name().into(),
                name: "Ada".into(),
                person: 3,
                pt: 96,
                ssrc: 1,
            }],
        };
        assert_eq!(
            sources.to_line(),
            r#"{"cmd":"sources","sources":[{"clock_rate":90000,"codec":"VP8","kind":"camera","name":"Ada","person":3,"pt":96,"ssrc":1}]}"#
        );
        assert_eq!(Command::Stop.to_line(), r#"{"cmd":"stop"}"#);
        assert_eq!(Event::Ready { port: 4000 }.to_line(), r#"{"ev":"ready","port":4000}"#);
        assert_eq!(Event::State { state: State::Live, reason: None }.to_line(), r#"{"ev":"state","state":"live"}"#);
        assert_eq!(
            Event::State { state: State::Reconnecting, reason: Some(Reason::IngestClosed) }.to_line(),
            r#"{"ev":"state","reason":"the ingest closed the connection","state":"reconnecting"}"#
        );
        assert_eq!(Event::Keyframe { ssrc: 7 }.to_line(), r#"{"ev":"keyframe","ssrc":7}"#);
    }

    #[test]
    fn every_line_parses_back() {
        for command in [start(), Command::Sources { sources: vec![] }, Command::Stop] {
            assert_eq!(Command::parse(&command.to_line()).unwrap(), command);
        }
        for state in State::ALL {
            for reason in Reason::ALL.map(Some).into_iter().chain([None]) {
                let event = Event::State { state, reason };
                assert_eq!(Event::parse(&format!("{}\n", event.to_line())).unwrap(), event);
            }
        }
    }

    #[test]
    fn the_url_is_in_no_debug_output() {
        let shown = format!("{:?}", start());
        assert!(!shown.contains("abcd-efgh-ijkl") && !shown.contains("youtube"), "{shown}");
        assert!(shown.contains("192.0.2.1:443"), "{shown}");
    }

    #[test]
    fn strangers_are_refused_and_missing_defaults_filled() {
        assert!(Command::parse(r#"{"cmd":"dance"}"#).is_err());
        assert!(Command::parse(r#"{"cmd":"sources","sources":42}"#).is_err());
        assert!(Event::parse(r#"{"ev":"state","state":"stopped"}"#).is_err());
        assert!(Event::parse(r#"{"ev":"state","state":"failed","reason":"connecting to rtmp://h/k failed"}"#).is_err());
        assert_eq!(
            Event::parse(r#"{"ev":"state","state":"live","reason":null}"#).unwrap(),
            Event::State { state: State::Live, reason: None }
        );
        let Command::Sources { sources } = Command::parse(
            r#"{"cmd":"sources","sources":[{"ssrc":9,"kind":"Camera","codec":"AV1","pt":45,"clock_rate":90000}]}"#,
        )
        .unwrap() else {
            panic!("not sources")
        };
        assert_eq!((sources[0].person, sources[0].name.as_str()), (0, ""));
        assert_eq!((sources[0].kind(), sources[0].codec()), (Some(Kind::Camera), None));
        assert_eq!(Codec::from_name("OPUS"), Some(Codec::Opus));
    }

    /// `ALL` lists every variant: a new one fails to compile here until it
    /// is added to the list (and, through `tests/doc.rs`, to the doc).
    #[test]
    fn all_lists_every_variant() {
        for (i, r) in Reason::ALL.into_iter().enumerate() {
            let at = match r {
                Reason::CouldNotConnect => 0,
                Reason::IngestClosed => 1,
                Reason::IngestStalled => 2,
                Reason::EncoderFailed => 3,
                Reason::BadPeer => 4,
                Reason::BadUrl => 5,
                Reason::SocketFailed => 6,
                Reason::PipelineFailed => 7,
            };
            assert_eq!(at, i);
        }
        for (i, s) in State::ALL.into_iter().enumerate() {
            let at = match s {
                State::Starting => 0,
                State::Live => 1,
                State::Reconnecting => 2,
                State::Failed => 3,
            };
            assert_eq!(at, i);
        }
    }
}
