//! One participant: its WebRTC session (str0m), what it publishes, what it
//! receives (its [`DownTrack`]s) and where its SDP negotiation stands.
//! The room decides; the participant carries it out on its own session.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::{Codec, CodecSpec};
use str0m::media::{Direction, KeyframeRequestKind, MediaAdded, MediaKind, Mid};
use str0m::net::TcpType;
use str0m::rtp::{RtpPacket, Vp8Descriptor};
use str0m::{Candidate, Event as RtcEvent, IceConnectionState, Input, Output as RtcOutput, Rtc};
use tracing::debug;

use crate::alloc::{self, max_layer_for, LayerRates, Priority, Want};
use crate::capacity::Capacity;
use crate::codec::spec_of;
use crate::downtrack::{DownState, DownTrack, Incoming};
use crate::error::SignalError;
use crate::guard::guarded;
use crate::ids::{ParticipantId, TrackId};
use crate::layers::{self, Layers};
use crate::output::{Datagram, Outbox};
use crate::protocol::{CloseCode, Kind, ParticipantInfo, ServerMsg, ViewTile};
use crate::rate::TokenBucket;
use crate::speaker::Meter;

/// Most tracks one participant may publish (microphone, camera, and room for
/// a screen share with its audio).
pub const MAX_PUBLISHED_TRACKS: usize = 4;

/// Holding space between write and send, and the NACK source: str0m's
/// default of 1000 video packets per session is several seconds of video
/// and most of a subscriber's memory.
const SEND_BUFFER_VIDEO: usize = 256;
/// Most m-lines in a client's offer: a browser offers its microphone,
/// camera and screen (and Firefox one more to receive on); more is refused
/// unparsed (4004).
pub const MAX_OFFER_MLINES: usize = 8;
/// Largest client offer: real ones are 4–10 KB.
pub const MAX_OFFER_BYTES: usize = 32 * 1024;
/// A participant whose media has not connected this long after joining
/// (no offer, or ICE never completes) is closed with 4005: a connection
/// that will never carry media must not hold its session for ever.
/// Browsers connect in well under a second; 30 s leaves room for slow
/// networks and for the user answering a permission prompt first.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(30);

/// Chat: a burst of this many messages, then one a second.
const CHAT_BURST: f64 = 5.0;
const CHAT_PER_SECOND: f64 = 1.0;
/// Key exchange: bytes a participant may relay at once (a new key wrapped
/// for each of a full room, several times over), then per second.
const E2EE_BURST_BYTES: f64 = 256.0 * 1024.0;
const E2EE_BYTES_PER_SECOND: f64 = 64.0 * 1024.0;

/// Where a participant's SDP negotiation stands. The client offers exactly
/// once (what it publishes); every later change is a server offer, so there
/// is never glare.
enum Phase {
    /// Joined; waiting for the client's offer.
    AwaitingOffer,
    /// Nothing outstanding: the server may offer.
    Stable,
    /// A server offer is out; waiting for the answer.
    AwaitingAnswer(SdpPendingOffer),
}

/// What the session reported that concerns the room.
// Nearly every event is a packet, kept in a reused buffer: boxing it would
// allocate once per packet to save space that is not wasted.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SessionEvent {
    /// Media from this participant.
    Rtp(RtpPacket),
    /// This participant wants a keyframe on an m-line it receives.
    KeyframeRequest { mid: Mid, kind: KeyframeRequestKind },
}

/// An m-line this participant publishes on. Its track is announced to the
/// others only once media arrives: a camera that is off, or a screen that
/// is not shared, costs nobody an m-line.
#[derive(Debug)]
struct Published {
    mid: Mid,
    kind: Kind,
    screen: bool,
    state: PubState,
    /// Its simulcast layers (one without simulcast), as measured.
    layers: Layers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PubState {
    /// No media yet.
    Silent,
    /// Media arrived; the room announces it after the current batch.
    Announcing,
    Track(TrackId),
}

/// Most tiles a `view` may describe.
pub const MAX_VIEW_TILES: usize = 64;
/// Tile sizes are capped at this (device pixels per side).
const MAX_TILE_PIXELS: u32 = 8192;
/// What an audio track is reckoned to cost (Opus speech with headers).
const AUDIO_RATE: u64 = 40_000;
/// What str0m's bandwidth estimator assumes a fresh session carries, until
/// feedback says otherwise: enough for a speaker's top layer and a few
/// small tiles, the start LiveKit and libwebrtc use too.
const INITIAL_ESTIMATE: Bitrate = Bitrate::kbps(2_500);
/// What str0m's loss fraction covers: a report this long after a change
/// is about the traffic after it.
const LOSS_REPORT_SPAN: Duration = Duration::from_millis(1500);
/// How often str0m reports the estimate and the loss (capacity.rs).
const STATS_INTERVAL: Duration = Duration::from_millis(500);

/// One published video track's layers, for the subscribers' allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VideoSource {
    pub track: TrackId,
    pub rates: LayerRates,
    pub widths: [Option<u32>; crate::simulcast::MAX_LAYERS],
    /// Sent in several layers.
    pub simulcast: bool,
}

/// What an incoming RTP packet is, for the forwarding path.
pub(crate) enum Source {
    /// Media of an announced track: its layer (0 without simulcast),
    /// whether the packet starts a keyframe, its VP8 payload descriptor
    /// (parsed once here, used again for picture-id rewriting), and
    /// whether it starts a video layer (layers.rs).
    Track { track: TrackId, spec: CodecSpec, layer: u8, keyframe: bool, vp8: Option<Vp8Descriptor>, started: bool },
    /// The first media on this m-line: the room must announce it.
    New(Mid),
}

pub(crate) struct Participant {
    id: ParticipantId,
    info: ParticipantInfo,
    rtc: Rtc,
    /// Our ICE username fragment for this session.
    ufrag: String,
    phase: Phase,
    /// What the client publishes (at most [`MAX_PUBLISHED_TRACKS`]).
    published: Vec<Published>,
    /// What it receives, ordered by track id (tracks of a room are numbered
    /// in the order they appear, so a push keeps the order).
    down: Vec<DownTrack>,
    /// Its down tracks changed since the last offer.
    renegotiate: bool,
    /// The client's screen-share m-line, if it offered one.
    screen_mid: Option<Mid>,
    /// When str0m next wants `Input::Timeout`.
    timeout: Instant,
    /// Until media connects: when the participant is given up on.
    connect_by: Option<Instant>,
    /// Packets (or a keyframe request) were written that only advancing
    /// the session releases.
    release_due: bool,
    /// A moderator muted the microphone: its audio is not forwarded until
    /// the participant unmutes themselves.
    force_muted: bool,
    chat: TokenBucket,
    e2ee_bytes: TokenBucket,
    /// How much its microphone carried voice in the current interval.
    speech: Meter,
    /// Its visible tiles (m-line, width, height in device pixels, on
    /// stage), from its last `view`; `None` before one: all visible.
    view: Option<Vec<(Mid, u32, u32, bool)>>,
    /// What its downlink carries, from str0m's TWCC estimate.
    capacity: Capacity,
    /// The (minimum, desired) rates last given to the estimator.
    bwe_rates: (u64, u64),
    /// Since when every visible video is paused (capacity.rs).
    audio_only_since: Option<Instant>,
    /// The link loses packets even with audio alone: one picture stays.
    keep_one_picture: bool,
    /// The m-lines whose video it is not sent for want of bandwidth, as
    /// last told; `Some` when that changed and is still to be told.
    paused: (Vec<Mid>, Option<ServerMsg>),
}

impl Participant {
    /// A fresh session offering `candidates`; on shard `shard` of several,
    /// its ICE username fragment starts with `<shard>+`.
    pub fn new(
        id: ParticipantId,
        info: ParticipantInfo,
        candidates: &[SocketAddr],
        tcp_candidates: &[SocketAddr],
        shard: Option<u16>,
        now: Instant,
    ) -> Self {
        let mut builder = Rtc::builder();
        if let Some(shard) = shard {
            // str0m's random fragment (alphanumeric), behind the shard's
            // number: '+' is an ICE character that str0m never draws.
            let mut creds = str0m::IceCreds::new();
            creds.ufrag = format!("{shard}+{}", creds.ufrag);
            builder = builder.set_local_ice_credentials(creds);
        }
        let mut rtc = builder
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true)
            .set_send_buffer_video(SEND_BUFFER_VIDEO)
            .enable_bwe(Some(INITIAL_ESTIMATE))
            .set_stats_interval(Some(STATS_INTERVAL))
            .build(now);
        for addr in candidates {
            if let Ok(c) = Candidate::host(*addr, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        // Browsers prefer UDP pairs; these are for networks that block UDP.
        for addr in tcp_candidates {
            if let Ok(c) = Candidate::builder().tcp().host(*addr).tcptype(TcpType::Passive).build() {
                rtc.add_local_candidate(c);
            }
        }
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        Participant {
            id,
            info,
            rtc,
            ufrag,
            phase: Phase::AwaitingOffer,
            published: Vec::new(),
            down: Vec::new(),
            renegotiate: false,
            screen_mid: None,
            timeout: now,
            connect_by: Some(now + CONNECT_DEADLINE),
            release_due: false,
            force_muted: false,
            chat: TokenBucket::new(CHAT_BURST, CHAT_PER_SECOND, now),
            e2ee_bytes: TokenBucket::new(E2EE_BURST_BYTES, E2EE_BYTES_PER_SECOND, now),
            speech: Meter::default(),
            view: None,
            capacity: Capacity::default(),
            bwe_rates: (0, 0),
            audio_only_since: None,
            keep_one_picture: false,
            paused: (Vec::new(), None),
        }
    }

    // ---- who they are ----

    pub fn info(&self) -> &ParticipantInfo {
        &self.info
    }

    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    pub fn is_moderator(&self) -> bool {
        self.info.moderator
    }

    pub fn set_moderator(&mut self, on: bool) {
        self.info.moderator = on;
    }

    pub fn set_hand(&mut self, raised: bool) {
        self.info.hand_raised = raised;
    }

    /// The client's own microphone, camera and screen state. Unmuting
    /// oneself lifts a moderator's mute.
    pub fn set_media_state(&mut self, audio_muted: bool, video_muted: bool, screen_sharing: bool) {
        self.info.audio_muted = audio_muted;
        self.info.video_muted = video_muted;
        self.info.screen_sharing = screen_sharing;
        if !audio_muted {
            self.force_muted = false;
        }
    }

    /// A moderator muted them: their audio stops until they unmute.
    pub fn force_mute(&mut self) {
        self.info.audio_muted = true;
        self.force_muted = true;
    }

    /// Takes a chat token; false when they chat too fast.
    pub fn take_chat(&mut self, now: Instant) -> bool {
        self.chat.take(now)
    }

    /// Takes `n` bytes of key-exchange budget; false when over it.
    pub fn take_e2ee_bytes(&mut self, n: usize, now: Instant) -> bool {
        self.e2ee_bytes.take_n(n as f64, now)
    }

    // ---- the session ----

    /// Whether the session would take this datagram (a STUN request for
    /// its ICE credentials), before its address is known.
    pub fn accepts(&self, input: &Input<'_>) -> bool {
        guarded(|| self.rtc.accepts(input)).unwrap_or(false)
    }

    /// A datagram for this session.
    pub fn handle_input(&mut self, input: Input<'_>) -> Result<(), CloseCode> {
        match guarded(|| self.rtc.handle_input(input)) {
            Ok(Ok(())) => Ok(()),
            // str0m refuses packets it cannot use (bad SRTP, wrong state):
            // the session stays usable.
            Ok(Err(e)) => {
                debug!(participant = %self.id, error = %e, "datagram refused");
                Ok(())
            }
            Err(()) => Err(CloseCode::InternalError),
        }
    }

    /// Moves the session's clock to `now`; polling then releases what it holds.
    pub fn advance(&mut self, now: Instant) -> Result<(), CloseCode> {
        self.release_due = false;
        if self.connect_by.is_some_and(|by| now >= by) {
            debug!(participant = %self.id, "media did not connect in time");
            return Err(CloseCode::MediaFailed);
        }
        match guarded(|| self.rtc.handle_input(Input::Timeout(now))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(CloseCode::MediaFailed),
            Err(()) => Err(CloseCode::InternalError),
        }
    }

    /// Whether the session wants advancing at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.release_due || self.deadline() <= now
    }

    /// When the session next wants advancing, if nothing is written to it.
    pub fn deadline(&self) -> Instant {
        self.connect_by.map_or(self.timeout, |by| self.timeout.min(by))
    }

    /// Drains the session: datagrams go to `out`, what concerns the room to
    /// `events`. An m-line the client added to publish on is noted here.
    pub fn poll(&mut self, out: &mut Outbox, events: &mut Vec<SessionEvent>) -> Result<(), CloseCode> {
        loop {
            let polled = guarded(|| self.rtc.poll_output());
            match polled {
                Ok(Ok(RtcOutput::Timeout(t))) => {
                    self.timeout = t;
                    break;
                }
                Ok(Ok(RtcOutput::Transmit(t))) => {
                    out.transmit(Datagram { source: t.source, destination: t.destination, contents: t.contents.into() })
                }
                Ok(Ok(RtcOutput::Event(e))) => match e {
                    RtcEvent::RtpPacket(p) => events.push(SessionEvent::Rtp(p)),
                    RtcEvent::KeyframeRequest(r) => {
                        events.push(SessionEvent::KeyframeRequest { mid: r.mid, kind: r.kind })
                    }
                    RtcEvent::MediaAdded(added) => self.publish(added),
                    RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        return Err(CloseCode::MediaFailed);
                    }
                    RtcEvent::PeerStats(stats) => {
                        if let Some(estimate) = stats.bwe_tx {
                            self.capacity.observe(stats.timestamp, estimate.as_u64(), stats.egress_loss_fraction);
                        }
                    }
                    RtcEvent::Connected => {
                        self.connect_by = None;
                        debug!(participant = %self.id, "media connected");
                    }
                    _ => {}
                },
                Ok(Err(_)) => return Err(CloseCode::MediaFailed),
                Err(()) => return Err(CloseCode::InternalError),
            }
        }
        if self.rtc.is_alive() {
            Ok(())
        } else {
            Err(CloseCode::MediaFailed)
        }
    }

    // ---- what it publishes ----

    /// The client's offer added an m-line we receive on.
    fn publish(&mut self, added: MediaAdded) {
        if !added.direction.is_receiving() || self.published.len() >= MAX_PUBLISHED_TRACKS {
            return;
        }
        let kind = match added.kind {
            MediaKind::Audio => Kind::Audio,
            MediaKind::Video => Kind::Video,
        };
        let screen = self.screen_mid == Some(added.mid) && kind == Kind::Video;
        // The offer lists its layers lowest first (docs/protocol.md).
        let rids = match (&added.simulcast, kind) {
            (Some(s), Kind::Video) => {
                let layers = if s.recv.is_empty() { &s.send } else { &s.recv };
                layers.iter().map(|l| l.rid).collect()
            }
            _ => Vec::new(),
        };
        self.published.push(Published {
            mid: added.mid,
            kind,
            screen,
            state: PubState::Silent,
            layers: Layers::new(rids),
        });
    }

    /// What an RTP packet from this participant is. `None` for packets of
    /// m-lines it does not publish on, codecs it did not negotiate, media
    /// already waiting to be announced, and a moderator-muted microphone.
    pub fn classify(&mut self, pkt: &RtpPacket, now: Instant) -> Option<Source> {
        let ssrc = pkt.header.ssrc;
        // The layer comes from the receive stream's rid: browsers stop
        // sending the rid header extension once str0m has learnt the SSRC.
        let (mid, rid) = guarded(|| self.rtc.direct_api().stream_rx(&ssrc).map(|s| (s.mid(), s.rid()))).ok()??;
        let published = self.published.iter_mut().find(|p| p.mid == mid)?;
        let layer = published.layers.layer_of(rid)?;
        match published.state {
            PubState::Silent => {
                published.state = PubState::Announcing;
                Some(Source::New(mid))
            }
            PubState::Announcing => None,
            PubState::Track(_) if published.kind == Kind::Audio && self.force_muted => None,
            PubState::Track(track) => {
                let spec = spec_of(&self.rtc, pkt.header.payload_type)?;
                let vp8 = (spec.codec == Codec::Vp8).then(|| Vp8Descriptor::parse(&pkt.payload).ok()).flatten();
                let (keyframe, width) = layers::keyframe(spec.codec, &pkt.payload, vp8.as_ref());
                let started =
                    published.kind == Kind::Video && published.layers.record(layer, pkt.payload.len(), width, now);
                // A muted microphone may still send comfort noise: it
                // never makes anyone the speaker.
                if let (Kind::Audio, false, Some(level)) =
                    (published.kind, self.info.audio_muted, pkt.header.ext_vals.audio_level)
                {
                    self.speech.hear(level);
                }
                Some(Source::Track { track, spec, layer, keyframe, vp8, started })
            }
        }
    }

    /// Its microphone's levels in the current speaker interval.
    pub fn speech(&mut self) -> &mut Meter {
        &mut self.speech
    }

    /// Gives the m-line announced as `track` its id; returns its kind and
    /// whether it is a screen share.
    pub fn announced(&mut self, mid: Mid, track: TrackId) -> Option<(Kind, bool)> {
        let p = self.published.iter_mut().find(|p| p.mid == mid && p.state == PubState::Announcing)?;
        p.state = PubState::Track(track);
        Some((p.kind, p.screen))
    }

    /// Its announced video tracks' layers as measured now.
    pub fn video_sources(&self, now: Instant) -> impl Iterator<Item = VideoSource> + '_ {
        self.published.iter().filter(|p| p.kind == Kind::Video).filter_map(move |p| match p.state {
            PubState::Track(track) => Some(VideoSource {
                track,
                rates: p.layers.rates(now),
                widths: p.layers.widths(),
                simulcast: p.layers.is_simulcast(),
            }),
            _ => None,
        })
    }

    /// Its announced tracks: (track, kind, screen).
    pub fn tracks(&self) -> impl Iterator<Item = (TrackId, Kind, bool)> + '_ {
        self.published.iter().filter_map(|p| match p.state {
            PubState::Track(t) => Some((t, p.kind, p.screen)),
            _ => None,
        })
    }

    /// Asks the client for a keyframe of `track`, of its simulcast `layer`
    /// (`None`: every layer). `throttled` requests (layer switches) are
    /// sent at most every [`layers::KEYFRAME_REQUEST_INTERVAL`] per layer.
    /// The PLI leaves when the session is next advanced: `Ok(true)` when
    /// the caller must schedule that (nothing else made the session due yet).
    pub fn request_keyframe(
        &mut self,
        track: TrackId,
        kind: KeyframeRequestKind,
        layer: Option<u8>,
        throttled: Option<Instant>,
    ) -> Result<bool, CloseCode> {
        let Some(p) = self.published.iter_mut().find(|p| p.state == PubState::Track(track)) else {
            return Ok(false);
        };
        if let (Some(l), Some(now)) = (layer, throttled) {
            if !p.layers.keyframe_request_due(l, now) {
                return Ok(false);
            }
        }
        let mid = p.mid;
        let rids: Vec<Option<str0m::media::Rid>> = match layer {
            _ if !p.layers.is_simulcast() => vec![None],
            Some(l) => vec![p.layers.rid(l)],
            None => (0..crate::simulcast::MAX_LAYERS as u8).filter_map(|l| p.layers.rid(l)).map(Some).collect(),
        };
        guarded(|| {
            for rid in rids {
                if let Some(rx) = self.rtc.direct_api().stream_rx_by_mid(mid, rid) {
                    rx.request_keyframe(kind);
                }
            }
        })
        .map_err(|()| CloseCode::InternalError)?;
        Ok(!std::mem::replace(&mut self.release_due, true))
    }

    // ---- what it receives ----

    /// Starts receiving a track (offered with the next server offer).
    pub fn subscribe(&mut self, down: DownTrack) {
        debug_assert!(self.down.last().is_none_or(|d| d.track() < down.track()), "tracks in id order");
        self.down.push(down);
        self.renegotiate = true;
    }

    /// Stops receiving everything `publisher` sent (they left).
    pub fn unsubscribe_from(&mut self, publisher: ParticipantId) {
        for d in self.down.iter_mut().filter(|d| d.publisher() == publisher) {
            d.stop();
            self.renegotiate = true;
        }
    }

    /// The track it receives on `mid`, with its publisher and the layer it
    /// gets (or waits for).
    pub fn received_on(&self, mid: Mid) -> Option<(TrackId, ParticipantId, Option<u8>)> {
        let d = self.down.iter().find(|d| d.mid() == Some(mid))?;
        Some((d.track(), d.publisher(), d.current_layer().or(d.awaited_layer())))
    }

    /// Its tiles as its client last described them (`view`).
    pub fn set_view(&mut self, tiles: &[ViewTile]) -> Result<(), SignalError> {
        if tiles.len() > MAX_VIEW_TILES {
            return Err(SignalError::Refused("too many tiles"));
        }
        let view = tiles
            .iter()
            .filter_map(|t| {
                // Mids are at most 16 bytes; a longer one names no m-line.
                let wanted = (t.mid.len() <= 16).then(|| Mid::from(t.mid.as_str()))?;
                let mid = self.down.iter().find_map(|d| d.mid().filter(|m| *m == wanted))?;
                Some((mid, t.width.min(MAX_TILE_PIXELS), t.height.min(MAX_TILE_PIXELS), t.stage))
            })
            .collect();
        self.view = Some(view);
        Ok(())
    }

    /// Chooses the layer of every video track it receives from its tiles
    /// and who speaks (alloc.rs). `sources` are the room's video tracks in
    /// track order. Returns the layers it now waits for (the publishers are
    /// asked for keyframes).
    ///
    /// The budget is str0m's TWCC estimate of the session's downlink
    /// (docs/architecture.md).
    pub fn allocate(
        &mut self,
        sources: &[VideoSource],
        speaker: Option<ParticipantId>,
        now: Instant,
    ) -> Vec<(ParticipantId, TrackId, u8)> {
        let mut wants = Vec::new();
        let mut index = Vec::new();
        let mut audio = 0;
        let congested = self.capacity.is_congested(now);
        for (i, d) in self.down.iter().enumerate() {
            let Some(mid) = d.mid().filter(|_| matches!(d.state(), DownState::Active(_))) else { continue };
            if d.kind() == Kind::Audio {
                audio += AUDIO_RATE;
                continue;
            }
            let Ok(s) = sources.binary_search_by_key(&d.track(), |s| s.track) else { continue };
            let source = &sources[s];
            if source.rates.iter().all(Option::is_none) {
                // Nothing measured yet (just announced): keep what it has.
                continue;
            }
            let tile = match &self.view {
                None => Some((0, 1, false)),
                Some(v) => v.iter().find(|t| t.0 == mid).map(|t| (t.1, u64::from(t.1) * u64::from(t.2), t.3)),
            };
            let priority = match tile {
                _ if d.is_screen() => Priority::Screen,
                Some((_, _, true)) => Priority::Stage,
                _ if Some(d.publisher()) == speaker => Priority::Speaker,
                _ => Priority::Other,
            };
            let max_layer = match tile {
                Some((width, _, _)) if width > 0 => max_layer_for(width, &source.widths),
                _ => (crate::simulcast::MAX_LAYERS - 1) as u8,
            };
            // A delay-based estimate also dips when the viewer's machine is
            // merely busy, and a few lost packets are the link's noise;
            // either may cost layers, but blanking a tile takes a congested
            // link (capacity.rs). A track already paused stays pausable: it
            // comes back when the estimate has room for it.
            let pausable = source.simulcast && (congested || d.target().is_none());
            wants.push(Want { priority, area: tile.map(|t| t.1.max(1)), max_layer, rates: source.rates, pausable });
            index.push(i);
        }
        // Before str0m's first estimate its pacer already lets out only 1.1
        // times the starting one: a plan above that (every tile at its
        // best, as "not known" used to mean) only queues, and the queue is
        // then let out in one burst (downtrack.rs, MAX_PACER_WAIT), which a
        // browser's feedback at its start reads as congestion: its
        // estimate fell and the top layers took ~30 s in two runs of four
        // (docs/benchmarks.md). The start is planned on what the pacer
        // sends; probing raises it from there.
        let capacity = Some(self.capacity.get(now).unwrap_or(INITIAL_ESTIMATE.as_u64()));
        // Random loss (a bad radio link) reads to the estimator like a
        // narrow link: at 20 % its estimate sinks towards nothing and
        // every video pauses. Told apart by that: a link that still loses
        // packets with only audio on it (reports covering a second) is
        // lossy, not narrow, and the viewer keeps one picture, the most
        // important, at its lowest layer for as long as the loss lasts.
        let loss_without_video =
            self.audio_only_since.is_some_and(|t| self.capacity.congested_after(t + LOSS_REPORT_SPAN));
        self.keep_one_picture = congested && (self.keep_one_picture || loss_without_video);
        if self.keep_one_picture {
            if let Some(i) = alloc::most_important(&wants) {
                wants[i].pausable = false;
            }
        }
        let a = alloc::allocate(capacity, audio, &wants);
        // str0m probes towards what every tile could show, and pads up to
        // the rate of the next step up (capped by its estimate): the
        // estimate grows until that step fits, with no padding at all
        // once everyone has the best their tile shows. Rounded, so that
        // measuring noise does not reconfigure it every time; the desired
        // rate never below the starting estimate, as str0m probes up to
        // twice the desired rate, and a probe capped at a newcomer's
        // first, still unmeasured allocation would pull its estimate down
        // to that.
        let round = |r: u64| r.div_ceil(100_000) * 100_000;
        let desired = round(a.desired + audio).max(INITIAL_ESTIMATE.as_u64());
        let minimum = if a.next > a.rate { round(a.next + audio).min(desired) } else { 0 };
        if (minimum, desired) != self.bwe_rates {
            self.bwe_rates = (minimum, desired);
            self.rtc.bwe().set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired));
        }
        // Visible videos with no layer: paused for bandwidth (the client
        // says so on their tiles).
        let paused: Vec<Mid> = index
            .iter()
            .zip(&a.layers)
            .zip(&wants)
            .filter(|((_, l), w)| l.is_none() && w.area.is_some())
            .filter_map(|((i, _), _)| self.down[*i].mid())
            .collect();
        // Every visible video paused: the viewer has audio only.
        let audio_only = !paused.is_empty() && paused.len() == wants.iter().filter(|w| w.area.is_some()).count();
        self.audio_only_since = if audio_only { self.audio_only_since.or(Some(now)) } else { None };
        if paused != self.paused.0 {
            let mids = paused.iter().map(ToString::to_string).collect();
            self.paused = (paused, Some(ServerMsg::VideoPaused { mids }));
        }
        let before: Vec<Option<u8>> = index.iter().map(|i| self.down[*i].target()).collect();
        if before != a.layers {
            debug!(participant = %self.id, layers = ?a.layers, ?capacity, "layers chosen");
        }
        let mut keyframes = Vec::new();
        for (i, layer) in index.iter().zip(&a.layers) {
            let d = &mut self.down[*i];
            d.set_target(*layer);
            if let Some(l) = d.awaited_layer() {
                keyframes.push((d.publisher(), d.track(), l));
            }
        }
        keyframes
    }

    /// `video_paused` for its client, when the videos paused for want of
    /// bandwidth changed since it was last told.
    pub fn take_paused(&mut self) -> Option<ServerMsg> {
        self.paused.1.take()
    }

    /// The hot path: one packet of `track` to this subscriber. `Ok(true)`
    /// when it is the first written since the session was last advanced
    /// (the caller schedules the advance that sends it).
    pub fn forward(&mut self, track: TrackId, inc: &Incoming<'_>) -> Result<bool, ()> {
        let Ok(i) = self.down.binary_search_by_key(&track, DownTrack::track) else { return Ok(false) };
        let written = self.down[i].write(&mut self.rtc, inc)?;
        let first = written && !self.release_due;
        self.release_due |= written;
        Ok(first)
    }

    // ---- negotiation ----

    /// The client's one offer: what it publishes. Returns our answer.
    pub fn accept_offer(&mut self, sdp: &str, screen_mid: Option<&str>) -> Result<ServerMsg, SignalError> {
        if !matches!(self.phase, Phase::AwaitingOffer) {
            return Err(SignalError::UNEXPECTED);
        }
        // Bounded before anything parses it: a huge offer costs the one task
        // every room's media runs on.
        if sdp.len() > MAX_OFFER_BYTES || sdp.match_indices("\nm=").count() > MAX_OFFER_MLINES {
            return Err(SignalError::SDP);
        }
        self.screen_mid = screen_mid.map(Mid::from);
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|_| SignalError::SDP)?;
        let answer = guarded(|| self.rtc.sdp_api().accept_offer(offer))
            .map_err(|()| SignalError::SDP)?
            .map_err(|_| SignalError::SDP)?;
        self.phase = Phase::Stable;
        Ok(ServerMsg::Answer { sdp: answer.to_sdp_string() })
    }

    /// The client's answer to our offer: the m-lines it carried become
    /// active (their video waits for a keyframe of its layer; the room's
    /// allocation asks for it).
    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), SignalError> {
        if !matches!(self.phase, Phase::AwaitingAnswer(_)) {
            return Err(SignalError::UNEXPECTED);
        }
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|_| SignalError::SDP)?;
        let Phase::AwaitingAnswer(pending) = std::mem::replace(&mut self.phase, Phase::Stable) else {
            return Err(SignalError::UNEXPECTED);
        };
        guarded(|| self.rtc.sdp_api().accept_answer(pending, answer))
            .map_err(|()| SignalError::SDP)?
            .map_err(|_| SignalError::SDP)?;
        for d in &mut self.down {
            d.answered(&mut self.rtc);
        }
        Ok(())
    }

    /// A server offer, when its down tracks changed and no offer is out:
    /// new m-lines for wanted tracks, stopped ones for tracks whose
    /// publisher left.
    pub fn offer_if_due(&mut self) -> Result<Option<ServerMsg>, CloseCode> {
        if !self.renegotiate || !matches!(self.phase, Phase::Stable) {
            return Ok(None);
        }
        self.renegotiate = false;
        let Participant { rtc, down, .. } = self;
        let applied = guarded(|| {
            let mut api = rtc.sdp_api();
            for d in down.iter_mut() {
                match d.state() {
                    DownState::Wanted => {
                        let kind = match d.kind() {
                            Kind::Audio => MediaKind::Audio,
                            Kind::Video => MediaKind::Video,
                        };
                        let stream = Some(d.publisher().to_string());
                        let mid = api.add_media(kind, Direction::SendOnly, stream, Some(d.track().to_string()), None);
                        d.offered(mid);
                    }
                    DownState::Stopping(Some(mid)) => api.stop_media(mid),
                    _ => {}
                }
            }
            down.retain(|d| !matches!(d.state(), DownState::Stopping(_)));
            api.apply()
        })
        .map_err(|()| CloseCode::InternalError)?;
        let Some((offer, pending)) = applied else { return Ok(None) };
        self.phase = Phase::AwaitingAnswer(pending);
        let tracks = self.down.iter().filter_map(DownTrack::info).collect();
        Ok(Some(ServerMsg::Offer { sdp: offer.to_sdp_string(), tracks }))
    }
}
