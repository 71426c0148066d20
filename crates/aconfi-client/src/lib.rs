//! A sans-IO A-Confi client on str0m, standing in for a browser where a
//! browser is too heavy: in the core's deterministic tests, the server's
//! loopback tests and the load generator. It speaks the real protocol and
//! real WebRTC (ICE, DTLS-SRTP); only the media is synthetic: 20 ms Opus-sized
//! audio frames and VP8-shaped video frames with a keyframe on request.

#![forbid(unsafe_code)]

pub mod sim;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aconfi_core::protocol::PROTOCOL_VERSION;
use aconfi_core::str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use aconfi_core::str0m::format::Codec;
use aconfi_core::str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use aconfi_core::str0m::net::{Protocol, Receive};
use aconfi_core::str0m::{Candidate, Event, Input, Output, Rtc};
use aconfi_core::{ClientMsg, Kind, ParticipantId, ParticipantInfo, ServerMsg, TrackInfo};

/// Audio frame interval (Opus default).
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// Video frame interval (30 fps).
pub const VIDEO_INTERVAL: Duration = Duration::from_millis(33);
/// Bytes in one synthetic audio frame (about 32 kbit/s).
const AUDIO_BYTES: usize = 80;
/// Bytes in one synthetic video delta frame; keyframes are four times that.
const VIDEO_BYTES: usize = 1_500;

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server sent a message this client did not expect now.
    #[error("unexpected server message: {0}")]
    Unexpected(&'static str),
    /// str0m refused SDP or input.
    #[error("webrtc: {0}")]
    Rtc(#[from] aconfi_core::str0m::RtcError),
    /// Unparseable SDP from the server.
    #[error("sdp: {0}")]
    Sdp(#[from] aconfi_core::str0m::error::SdpError),
    /// The server said it is closing us.
    #[error("server error {code}: {message}")]
    Server {
        /// Close code.
        code: u16,
        /// Reason.
        message: String,
    },
}

/// What the shell around the client must do.
#[derive(Debug)]
pub enum ClientOutput {
    /// Send a datagram to the server's media port.
    Transmit {
        /// From.
        source: SocketAddr,
        /// To.
        destination: SocketAddr,
        /// Bytes.
        contents: Vec<u8>,
    },
    /// Send a signaling message on the WebSocket.
    Signal(ClientMsg),
}

/// One simulated participant.
pub struct ClientPeer {
    rtc: Rtc,
    join: Option<ClientMsg>,
    id: Option<ParticipantId>,
    out: VecDeque<ClientOutput>,
    pending: Option<SdpPendingOffer>,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    /// The server's m-lines and whose media they carry.
    tracks: HashMap<Mid, TrackInfo>,
    participants: BTreeMap<ParticipantId, ParticipantInfo>,
    /// Frames received per (sender, kind).
    received: HashMap<(ParticipantId, Kind), u64>,
    timeout: Instant,
    next_audio: Instant,
    next_video: Instant,
    audio_time: u64,
    video_time: u64,
    frames: u64,
    keyframe_wanted: bool,
    publishing: bool,
    /// Whether the offer carries audio and video to publish (false: a viewer).
    offer_media: bool,
}

impl ClientPeer {
    /// A client that will join `room` from the local address `local`.
    pub fn new(room: &str, name: Option<&str>, local: SocketAddr, now: Instant) -> Self {
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        // A candidate the str0m test harness can route; the server learns the
        // real source from STUN anyway.
        if let Ok(c) = Candidate::host(local, "udp") {
            rtc.add_local_candidate(c);
        }
        let join = ClientMsg::Join {
            version: PROTOCOL_VERSION,
            room: room.to_string(),
            name: name.map(str::to_string),
            audio_muted: false,
            video_muted: false,
        };
        let mut out = VecDeque::new();
        out.push_back(ClientOutput::Signal(join.clone()));
        ClientPeer {
            rtc,
            join: Some(join),
            id: None,
            out,
            pending: None,
            audio_mid: None,
            video_mid: None,
            tracks: HashMap::new(),
            participants: BTreeMap::new(),
            received: HashMap::new(),
            timeout: now,
            next_audio: now,
            next_video: now,
            audio_time: 0,
            video_time: 0,
            frames: 0,
            keyframe_wanted: true,
            publishing: true,
            offer_media: true,
        }
    }

    /// A viewer: receives everyone, publishes nothing (its offer has one
    /// receive-only m-line so it is not empty).
    pub fn new_viewer(room: &str, local: SocketAddr, now: Instant) -> Self {
        let mut p = Self::new(room, None, local, now);
        p.offer_media = false;
        p.publishing = false;
        p
    }

    /// Our id, once joined.
    pub fn id(&self) -> Option<ParticipantId> {
        self.id
    }

    /// Whether ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.rtc.is_connected()
    }

    /// Others in the room, as the server last described them.
    pub fn participants(&self) -> &BTreeMap<ParticipantId, ParticipantInfo> {
        &self.participants
    }

    /// The server's current m-lines towards us.
    pub fn tracks(&self) -> impl Iterator<Item = &TrackInfo> {
        self.tracks.values()
    }

    /// Frames received from `from` of `kind`.
    pub fn received(&self, from: ParticipantId, kind: Kind) -> u64 {
        self.received.get(&(from, kind)).copied().unwrap_or(0)
    }

    /// Video frames written so far.
    pub fn video_frames_sent(&self) -> u64 {
        self.frames
    }

    /// Frames received, per (sender, kind).
    pub fn received_counts(&self) -> &HashMap<(ParticipantId, Kind), u64> {
        &self.received
    }

    /// Next output, if any.
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.out.pop_front()
    }

    /// When `handle_timeout` should next be called: the earlier of str0m's
    /// deadline and the next media frame.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.timeout;
        if self.rtc.is_connected() && self.publishing {
            t = t.min(self.next_audio).min(self.next_video);
        }
        t
    }

    /// A message from the server.
    pub fn handle_server_msg(&mut self, msg: ServerMsg, now: Instant) -> Result<(), ClientError> {
        match msg {
            ServerMsg::Joined { you, participants, .. } => {
                if self.join.take().is_none() {
                    return Err(ClientError::Unexpected("joined"));
                }
                self.id = Some(you);
                self.participants = participants.into_iter().map(|p| (p.id, p)).collect();
                let mut api = self.rtc.sdp_api();
                if self.offer_media {
                    self.audio_mid = Some(api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
                    self.video_mid = Some(api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None));
                } else {
                    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
                }
                let (offer, pending) = api.apply().ok_or(ClientError::Unexpected("no offer"))?;
                self.pending = Some(pending);
                self.out.push_back(ClientOutput::Signal(ClientMsg::Offer { sdp: offer.to_sdp_string() }));
            }
            ServerMsg::Answer { sdp } => {
                let pending = self.pending.take().ok_or(ClientError::Unexpected("answer"))?;
                let answer = SdpAnswer::from_sdp_string(&sdp)?;
                self.rtc.sdp_api().accept_answer(pending, answer)?;
            }
            ServerMsg::Offer { sdp, tracks } => {
                let offer = SdpOffer::from_sdp_string(&sdp)?;
                let answer = self.rtc.sdp_api().accept_offer(offer)?;
                self.tracks = tracks
                    .into_iter()
                    .map(|t| (Mid::from(t.mid.as_str()), t))
                    .collect();
                self.out.push_back(ClientOutput::Signal(ClientMsg::Answer { sdp: answer.to_sdp_string() }));
            }
            ServerMsg::ParticipantJoined { participant } | ServerMsg::ParticipantUpdated { participant } => {
                self.participants.insert(participant.id, participant);
            }
            ServerMsg::ParticipantLeft { id } => {
                self.participants.remove(&id);
            }
            ServerMsg::Error { code, message } => return Err(ClientError::Server { code, message }),
        }
        self.drain(now)
    }

    /// A datagram from the server.
    pub fn handle_receive(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
        now: Instant,
    ) -> Result<(), ClientError> {
        let Ok(r) = Receive::new(Protocol::Udp, source, destination, contents) else {
            return Ok(());
        };
        self.rtc.handle_input(Input::Receive(now, r))?;
        self.drain(now)
    }

    /// Time passed: drive str0m and send the media frames that are due.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ClientError> {
        self.rtc.handle_input(Input::Timeout(now))?;
        self.drain(now)?;
        if !self.rtc.is_connected() {
            return Ok(());
        }
        if !self.publishing {
            return Ok(());
        }
        if now >= self.next_audio {
            self.next_audio += AUDIO_INTERVAL;
            self.send_frame(Kind::Audio, now)?;
        }
        if now >= self.next_video {
            self.next_video += VIDEO_INTERVAL;
            self.send_frame(Kind::Video, now)?;
        }
        Ok(())
    }

    /// Stops (or resumes) sending media on the timer, like a browser with
    /// microphone and camera off; `send_frame` still works.
    pub fn set_publishing(&mut self, on: bool) {
        self.publishing = on;
    }

    /// Writes one frame of `kind` now: 20 ms of audio, or one video frame
    /// (a keyframe when one was requested, or every 60th).
    pub fn send_frame(&mut self, kind: Kind, now: Instant) -> Result<(), ClientError> {
        match kind {
            Kind::Audio => {
                self.audio_time += 960;
                let t = MediaTime::new(self.audio_time, Frequency::FORTY_EIGHT_KHZ);
                match self.audio_mid {
                    Some(mid) => self.write(mid, Codec::Opus, t, vec![0x78; AUDIO_BYTES], now),
                    None => Ok(()),
                }
            }
            Kind::Video => {
                self.video_time += 3000;
                self.frames += 1;
                let key = self.keyframe_wanted || self.frames % 60 == 0;
                self.keyframe_wanted = false;
                let t = MediaTime::new(self.video_time, Frequency::NINETY_KHZ);
                match self.video_mid {
                    Some(mid) => self.write(mid, Codec::Vp8, t, vp8_frame(key, self.frames), now),
                    None => Ok(()),
                }
            }
        }
    }

    fn write(&mut self, mid: Mid, codec: Codec, t: MediaTime, data: Vec<u8>, now: Instant) -> Result<(), ClientError> {
        let Some(w) = self.rtc.writer(mid) else { return Ok(()) };
        let Some(pt) = w.payload_params().find(|p| p.spec().codec == codec).map(|p| p.pt()) else {
            return Ok(());
        };
        w.write(pt, now, t, data)?;
        self.drain(now)?;
        // Release what the pacer queued for `now` so the next write is allowed.
        self.rtc.handle_input(Input::Timeout(now))?;
        self.drain(now)
    }

    fn drain(&mut self, now: Instant) -> Result<(), ClientError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => {
                    self.timeout = t.max(now);
                    return Ok(());
                }
                Output::Transmit(t) => self.out.push_back(ClientOutput::Transmit {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.into(),
                }),
                Output::Event(Event::MediaData(d)) => {
                    if let Some(t) = self.tracks.get(&d.mid) {
                        *self.received.entry((t.participant, t.kind)).or_default() += 1;
                    }
                }
                Output::Event(Event::KeyframeRequest(_)) => self.keyframe_wanted = true,
                Output::Event(_) => {}
            }
        }
    }
}

/// A VP8-shaped frame: the first byte's low bit says key (0) or delta (1),
/// which is all an SFU or str0m's depacketizer looks at.
fn vp8_frame(key: bool, n: u64) -> Vec<u8> {
    let len = if key { VIDEO_BYTES * 4 } else { VIDEO_BYTES };
    let mut v = vec![(n & 0xff) as u8; len];
    v[0] = if key { 0x10 } else { 0x11 };
    v
}
