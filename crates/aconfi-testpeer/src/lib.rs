//! A synthetic, sans-IO A-Confi participant on str0m (a test peer, not the
//! users' client, which is `web/`), standing in for a browser where a
//! browser is too heavy: in the core's deterministic tests, the server's
//! loopback tests and the load generator. It speaks the real protocol and
//! real WebRTC (ICE, DTLS-SRTP); only the media is synthetic (see `media`),
//! and every received packet is counted (see `stats`).

#![forbid(unsafe_code)]

pub mod capture;
pub mod janus;
pub mod media;
pub mod peer;
pub mod sim;
pub mod stats;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use aconfi_core::protocol::PROTOCOL_VERSION;
use aconfi_core::str0m::media::Mid;
use aconfi_core::{ClientMsg, Datagram, Kind, ParticipantId, ParticipantInfo, ServerMsg, TrackInfo};

pub use media::MediaConfig;
pub use peer::MediaPeer;
pub use stats::TrackStats;

/// The `join` of a client that says nothing and shows nothing: no name,
/// microphone and camera muted, no password, not end-to-end encrypted.
/// For tests that only need someone in (or knocking at) a room.
pub fn silent_join(room: &str) -> ClientMsg {
    ClientMsg::Join {
        version: PROTOCOL_VERSION,
        room: room.into(),
        name: None,
        audio_muted: true,
        video_muted: true,
        password: None,
        e2ee: false,
    }
}

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
    Transmit(Datagram),
    /// Send a signaling message on the WebSocket.
    Signal(ClientMsg),
}

/// One simulated A-Confi participant.
pub struct ClientPeer {
    media: MediaPeer,
    join: Option<ClientMsg>,
    id: Option<ParticipantId>,
    signals: VecDeque<ClientMsg>,
    publish: bool,
    /// The server's m-lines and whose media they carry.
    tracks: HashMap<Mid, TrackInfo>,
    participants: BTreeMap<ParticipantId, ParticipantInfo>,
    /// Server offers answered.
    offers: u32,
}

impl ClientPeer {
    /// A publishing client that will join `room` from `local`, with default
    /// media; latency stamps count from `now`.
    pub fn new(room: &str, name: Option<&str>, local: SocketAddr, now: Instant) -> Self {
        Self::with_media(room, name, local, now, now, MediaConfig::default(), true, local.port().into())
    }

    /// A viewer: receives everyone, publishes nothing.
    pub fn new_viewer(room: &str, local: SocketAddr, now: Instant) -> Self {
        Self::with_media(room, None, local, now, now, MediaConfig::default(), false, local.port().into())
    }

    /// Full control: `epoch` is the clock origin shared by every peer whose
    /// latency is compared; `publish` false makes a viewer.
    #[allow(clippy::too_many_arguments)]
    pub fn with_media(
        room: &str,
        name: Option<&str>,
        local: SocketAddr,
        now: Instant,
        epoch: Instant,
        config: MediaConfig,
        publish: bool,
        seed: u64,
    ) -> Self {
        let join = ClientMsg::Join {
            version: PROTOCOL_VERSION,
            room: room.to_string(),
            name: name.map(str::to_string),
            audio_muted: false,
            video_muted: false,
            password: None,
            e2ee: false,
        };
        ClientPeer {
            media: MediaPeer::new(local, now, epoch, config, seed),
            join: Some(join.clone()),
            id: None,
            signals: VecDeque::from([join]),
            publish,
            tracks: HashMap::new(),
            participants: BTreeMap::new(),
            offers: 0,
        }
    }

    /// Joins with this room password (before the `join` has gone out).
    pub fn set_password(&mut self, password: Option<&str>) {
        for msg in self.join.iter_mut().chain(self.signals.iter_mut()) {
            if let ClientMsg::Join { password: p, .. } = msg {
                *p = password.map(str::to_string);
            }
        }
    }

    /// Our id, once joined.
    pub fn id(&self) -> Option<ParticipantId> {
        self.id
    }

    /// Others in the room, as the server last described them.
    pub fn participants(&self) -> &BTreeMap<ParticipantId, ParticipantInfo> {
        &self.participants
    }

    /// How many server offers it has answered.
    pub fn offers(&self) -> u32 {
        self.offers
    }

    /// Whose media the server sends on m-line `mid`.
    pub fn track(&self, mid: Mid) -> Option<&TrackInfo> {
        self.tracks.get(&mid)
    }

    /// The server's current m-lines towards us.
    pub fn tracks(&self) -> impl Iterator<Item = &TrackInfo> {
        self.tracks.values()
    }

    /// The media half (statistics, sending).
    pub fn media(&self) -> &MediaPeer {
        &self.media
    }

    /// The media half, mutable (e.g. to reset latency at a window start).
    pub fn media_mut(&mut self) -> &mut MediaPeer {
        &mut self.media
    }

    /// Frames received from `from` of `kind` (audio packets; video frames
    /// by their marker packet).
    pub fn received(&self, from: ParticipantId, kind: Kind) -> u64 {
        self.received_counts().get(&(from, kind)).copied().unwrap_or(0)
    }

    /// Frames received, per (sender, kind).
    pub fn received_counts(&self) -> HashMap<(ParticipantId, Kind), u64> {
        let mut out = HashMap::new();
        for (mid, (kind, st)) in self.media.recv_stats() {
            if let Some(t) = self.tracks.get(mid) {
                *out.entry((t.participant, *kind)).or_default() += st.frames;
            }
        }
        out
    }

    /// Keeps every received frame whole, for [`ClientPeer::poll_frame`].
    pub fn enable_capture(&mut self) {
        self.media.enable_capture();
    }

    /// The next received frame with the track it belongs to (frames of
    /// m-lines the server has not described are skipped).
    pub fn poll_frame(&mut self) -> Option<(TrackInfo, Vec<u8>)> {
        while let Some(f) = self.media.poll_frame() {
            if let Some(t) = self.tracks.get(&f.mid) {
                return Some((t.clone(), f.data));
            }
        }
        None
    }

    /// Stops (or resumes) sending media on the timer.
    pub fn set_publishing(&mut self, on: bool) {
        self.media.set_publishing(on);
    }

    /// Writes one frame of `kind` now.
    pub fn send_frame(&mut self, kind: Kind, now: Instant) -> Result<(), ClientError> {
        self.media.send_frame(kind, now)
    }

    /// Next output, if any.
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        if let Some(m) = self.signals.pop_front() {
            return Some(ClientOutput::Signal(m));
        }
        self.media.poll_transmit().map(ClientOutput::Transmit)
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Instant {
        self.media.poll_timeout()
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
                let sdp = self.media.create_offer(self.publish, now)?;
                self.signals.push_back(ClientMsg::Offer { sdp, screen_mid: None });
            }
            ServerMsg::Answer { sdp } => self.media.accept_answer(&sdp, now)?,
            ServerMsg::Offer { sdp, tracks } => {
                // Set the mapping first: media may flow as soon as we answer.
                self.tracks = tracks.into_iter().map(|t| (Mid::from(t.mid.as_str()), t)).collect();
                let sdp = self.media.accept_offer(&sdp, now)?;
                self.signals.push_back(ClientMsg::Answer { sdp });
                self.offers += 1;
            }
            ServerMsg::ParticipantJoined { participant } | ServerMsg::ParticipantUpdated { participant } => {
                self.participants.insert(participant.id, participant);
            }
            ServerMsg::ParticipantLeft { id } => {
                self.participants.remove(&id);
            }
            ServerMsg::Error { code, message } => return Err(ClientError::Server { code, message }),
            // The rest concern a user interface; tests read them from the
            // simulation's inbox.
            _ => {}
        }
        Ok(())
    }

    /// Joins as a client whose link carries an end-to-end key (the key
    /// itself is the browser's business; this peer only says it has one).
    pub fn set_e2ee(&mut self, on: bool) {
        for m in self.join.iter_mut().chain(self.signals.iter_mut()) {
            if let ClientMsg::Join { e2ee, .. } = m {
                *e2ee = on;
            }
        }
    }

    /// A datagram from the server.
    pub fn handle_receive(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
        now: Instant,
    ) -> Result<(), ClientError> {
        self.media.handle_receive(source, destination, contents, now)
    }

    /// Time passed: drive str0m and send the media frames that are due.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ClientError> {
        self.media.handle_timeout(now)
    }
}
