//! The selective forwarding unit: rooms, participants and their WebRTC
//! sessions, driven entirely from outside (sans-IO).
//!
//! Inputs are `handle_*` calls with the current time; outputs are drained
//! with [`Sfu::poll_output`] and the next deadline read with
//! [`Sfu::poll_timeout`]. Nothing in here reads a clock, opens a socket or
//! draws a random number.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::KeyframeRequestKind;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, IceConnectionState, Input, Output as RtcOutput, Rtc};
use tracing::{debug, info, warn};

use crate::forward;
use crate::ids::{ParticipantId, RoomId, TrackId};
use crate::participant::{Participant, Phase, Sub, SubState};
use crate::protocol::{
    ClientMsg, CloseCode, Kind, ParticipantInfo, RoomState, ServerMsg, MAX_NAME_CHARS,
    PROTOCOL_VERSION,
};
use crate::room_name::RoomName;

/// Most tracks one participant may publish (microphone, camera, and room for
/// a screen share with its audio).
pub const MAX_PUBLISHED_TRACKS: usize = 4;

/// Retransmission history per outgoing stream: enough to answer NACKs for
/// round trips up to about half a second, far less memory than str0m's
/// default (1024 packets / 3 s) times every subscriber. Audio is not
/// retransmitted (too late to play).
const RTX_CACHE_VIDEO: (usize, std::time::Duration) = (256, std::time::Duration::from_millis(1000));
const RTX_CACHE_AUDIO: (usize, std::time::Duration) = (0, std::time::Duration::from_millis(0));
const SEND_BUFFER_VIDEO: usize = 256;

/// Most participants in one room. Every participant receives every other's
/// media, so the cost of a room grows with the square of its size.
pub const MAX_PARTICIPANTS_PER_ROOM: usize = 200;

/// Static configuration of the SFU.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Addresses put into ICE candidates: where browsers send media.
    pub candidates: Vec<SocketAddr>,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Local address to send from.
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}

/// Something the core reports that is not addressed to one participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A room was created by its first join.
    RoomOpened(RoomId),
    /// The last participant left; everything about the room is gone.
    RoomClosed(RoomId),
}

/// What the IO shell must do.
#[derive(Debug)]
pub enum Output {
    /// Send a UDP datagram.
    Transmit(Transmit),
    /// Send a signaling message to one participant's WebSocket.
    Signal(ParticipantId, ServerMsg),
    /// Close that participant's WebSocket with this code. The core has
    /// already forgotten the participant.
    Close(ParticipantId, CloseCode),
    /// For metrics and tests.
    Event(Event),
}

pub(crate) struct Room {
    pub(crate) id: RoomId,
    /// In join order.
    pub(crate) members: Vec<ParticipantId>,
    /// No new joins.
    pub(crate) locked: bool,
    /// Newcomers wait to be admitted.
    pub(crate) lobby: bool,
    /// Never logged, never sent.
    pub(crate) password: Option<String>,
    /// Wrong password guesses in the last minute, from any connection.
    pub(crate) wrong_guesses: VecDeque<Instant>,
    /// End-to-end encrypted: set by the first joiner's link, for the room's
    /// life. The server never holds a key.
    pub(crate) e2ee: bool,
}

impl Room {
    fn new(id: RoomId, e2ee: bool) -> Self {
        Room {
            id,
            members: Vec::new(),
            locked: false,
            lobby: false,
            password: None,
            wrong_guesses: VecDeque::new(),
            e2ee,
        }
    }

    pub(crate) fn state(&self) -> RoomState {
        RoomState { locked: self.locked, lobby: self.lobby, password: self.password.is_some(), e2ee: self.e2ee }
    }
}

pub(crate) struct Track {
    pub(crate) publisher: ParticipantId,
    pub(crate) kind: Kind,
    /// The publisher's m-line it arrives on.
    pub(crate) mid: str0m::media::Mid,
}

/// Why a signaling message was refused. The shell closes the socket with
/// [`SignalError::close_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// Message not valid in the current state.
    #[error("unexpected message")]
    Unexpected,
    /// Unsupported protocol version.
    #[error("unsupported protocol version")]
    Version,
    /// Bad room name.
    #[error("invalid room name: {0}")]
    RoomName(#[from] crate::room_name::RoomNameError),
    /// SDP that could not be parsed or applied.
    #[error("invalid SDP")]
    Sdp,
    /// The room is at [`MAX_PARTICIPANTS_PER_ROOM`].
    #[error("the meeting is full")]
    RoomFull,
    /// The room is locked.
    #[error("the meeting is locked")]
    Locked,
    /// The room is end-to-end encrypted and the joiner has no key.
    #[error("this meeting is end-to-end encrypted: open it with the full link")]
    E2eeRequired,
    /// The joiner has a key, but the room is not end-to-end encrypted.
    #[error("this meeting is not end-to-end encrypted, but the link is for an encrypted one")]
    NotE2ee,
    /// Not allowed or not possible; the connection stays open.
    #[error("{0}")]
    Refused(&'static str),
}

impl SignalError {
    /// The documented close code for this error.
    pub fn close_code(&self) -> CloseCode {
        match self {
            SignalError::Unexpected => CloseCode::UnexpectedMessage,
            SignalError::Version => CloseCode::UnsupportedVersion,
            SignalError::RoomName(_) => CloseCode::InvalidRoomName,
            SignalError::Sdp => CloseCode::BadSdp,
            SignalError::RoomFull => CloseCode::RoomFull,
            SignalError::Locked => CloseCode::Locked,
            SignalError::E2eeRequired => CloseCode::E2eeRequired,
            SignalError::NotE2ee => CloseCode::NotE2ee,
            // Not closed; see `is_fatal`.
            SignalError::Refused(_) => CloseCode::UnexpectedMessage,
        }
    }

    /// Whether the connection is closed for it (everything but `Refused`).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, SignalError::Refused(_))
    }
}

/// The SFU state machine.
pub struct Sfu {
    pub(crate) config: SfuConfig,
    pub(crate) rooms: HashMap<RoomName, Room>,
    pub(crate) participants: HashMap<ParticipantId, Participant>,
    /// Remote address → participant, learnt from the first STUN request.
    pub(crate) by_addr: HashMap<SocketAddr, ParticipantId>,
    /// Our ICE username fragment of each session → its participant.
    by_ufrag: HashMap<String, ParticipantId>,
    pub(crate) tracks: HashMap<TrackId, Track>,
    next_room: u64,
    pub(crate) next_track: u64,
    pub(crate) out: VecDeque<Output>,
    /// Events from one participant's session that touch others, handled
    /// after its session is drained (str0m's single-mutation rule).
    work: VecDeque<(ParticipantId, RtcEvent)>,
    /// Connections that asked to join but are not in yet (password or lobby).
    pub(crate) pending: HashMap<ParticipantId, crate::control::Pending>,
}

impl Sfu {
    /// A new SFU with no rooms.
    pub fn new(config: SfuConfig) -> Self {
        Sfu {
            config,
            rooms: HashMap::new(),
            participants: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            tracks: HashMap::new(),
            next_room: 1,
            next_track: 1,
            out: VecDeque::new(),
            work: VecDeque::new(),
            pending: HashMap::new(),
        }
    }

    /// Number of rooms in memory.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Number of participants in memory (joined, in any room).
    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// Whether a room of this name exists.
    pub fn has_room(&self, name: &str) -> bool {
        RoomName::parse(name).map(|n| self.rooms.contains_key(&n)).unwrap_or(false)
    }

    /// Next output for the shell, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Sfu::handle_timeout`] should next be called. After a
    /// forwarded packet this is "now": call `handle_timeout` once the
    /// datagrams at hand are handled, so forwarded packets leave.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.participants.values().map(|p| p.timeout).min()
    }

    /// A signaling message from connection `pid`. On `Err` the participant
    /// is gone and an `error` message and a `Close` are already queued.
    pub fn handle_signal(
        &mut self,
        pid: ParticipantId,
        msg: ClientMsg,
        now: Instant,
    ) -> Result<(), SignalError> {
        let request = msg.type_name();
        let res = self.dispatch_signal(pid, msg, now);
        match &res {
            Err(e) if e.is_fatal() => {
                debug!(participant = %pid, error = %e, "signaling error");
                let code = e.close_code();
                self.remove(pid, now);
                self.drop_pending(pid);
                self.out.push_back(Output::Signal(pid, ServerMsg::Error { code: code.code(), message: e.to_string() }));
                self.out.push_back(Output::Close(pid, code));
            }
            Err(e) => self.out.push_back(Output::Signal(
                pid,
                ServerMsg::Refused { request: request.to_string(), message: e.to_string() },
            )),
            Ok(()) => {}
        }
        self.process_work(now);
        res
    }

    fn dispatch_signal(
        &mut self,
        pid: ParticipantId,
        msg: ClientMsg,
        now: Instant,
    ) -> Result<(), SignalError> {
        match msg {
            ClientMsg::Join { version, room, name, audio_muted, video_muted, password, e2ee } => {
                if self.participants.contains_key(&pid) {
                    return Err(SignalError::Unexpected);
                }
                if version != PROTOCOL_VERSION {
                    return Err(SignalError::Version);
                }
                let room = RoomName::parse(&room)?;
                let info = ParticipantInfo {
                    id: pid,
                    name: clean_name(name.as_deref()),
                    audio_muted,
                    video_muted,
                    moderator: false,
                    hand_raised: false,
                    screen_sharing: false,
                };
                self.request_join(pid, room, info, password, e2ee, now)
            }
            ClientMsg::Offer { sdp, screen_mid } => {
                let p = self.participants.get_mut(&pid).ok_or(SignalError::Unexpected)?;
                if !matches!(p.phase, Phase::AwaitingOffer) {
                    return Err(SignalError::Unexpected);
                }
                p.screen_mid = screen_mid.as_deref().map(str0m::media::Mid::from);
                let offer = SdpOffer::from_sdp_string(&sdp).map_err(|_| SignalError::Sdp)?;
                let answer = guarded(|| p.rtc.sdp_api().accept_offer(offer))
                    .map_err(|_| SignalError::Sdp)?
                    .map_err(|_| SignalError::Sdp)?;
                p.phase = Phase::Stable;
                self.out.push_back(Output::Signal(pid, ServerMsg::Answer { sdp: answer.to_sdp_string() }));
                self.drain(pid, now);
                self.maybe_offer(pid, now);
                Ok(())
            }
            ClientMsg::Answer { sdp } => {
                let p = self.participants.get_mut(&pid).ok_or(SignalError::Unexpected)?;
                let Phase::AwaitingAnswer(_) = p.phase else {
                    return Err(SignalError::Unexpected);
                };
                let answer = SdpAnswer::from_sdp_string(&sdp).map_err(|_| SignalError::Sdp)?;
                let Phase::AwaitingAnswer(pending) = std::mem::replace(&mut p.phase, Phase::Stable)
                else {
                    unreachable!("checked above");
                };
                guarded(|| p.rtc.sdp_api().accept_answer(pending, answer))
                    .map_err(|_| SignalError::Sdp)?
                    .map_err(|_| SignalError::Sdp)?;
                let mut keyframes = Vec::new();
                let Participant { rtc, subs, .. } = &mut *p;
                for s in subs.iter_mut() {
                    if let SubState::Offered(mid) = s.state {
                        s.state = SubState::Active(mid);
                        let video = s.kind == Kind::Video;
                        if video {
                            keyframes.push(s.track);
                        }
                        let _ = guarded(|| {
                            if let Some(tx) = rtc.direct_api().stream_tx_by_mid(mid, None) {
                                let (packets, age) = if video { RTX_CACHE_VIDEO } else { RTX_CACHE_AUDIO };
                                tx.set_rtx_cache(packets, age, Some(0.15));
                            }
                        });
                    }
                }
                self.drain(pid, now);
                for t in keyframes {
                    self.request_keyframe(t, KeyframeRequestKind::Pli, now);
                }
                self.maybe_offer(pid, now);
                Ok(())
            }
            ClientMsg::MediaState { audio_muted, video_muted, screen_sharing } => {
                let p = self.participants.get_mut(&pid).ok_or(SignalError::Unexpected)?;
                p.info.audio_muted = audio_muted;
                p.info.video_muted = video_muted;
                p.info.screen_sharing = screen_sharing;
                // Unmuting oneself lifts a moderator's mute.
                if !audio_muted {
                    p.force_muted = false;
                }
                let info = p.info.clone();
                let room = p.room.clone();
                self.broadcast(&room, Some(pid), ServerMsg::ParticipantUpdated { participant: info });
                Ok(())
            }
            ClientMsg::Leave {} => {
                if !self.participants.contains_key(&pid) && !self.pending.contains_key(&pid) {
                    return Err(SignalError::Unexpected);
                }
                self.remove(pid, now);
                self.drop_pending(pid);
                self.out.push_back(Output::Close(pid, CloseCode::Normal));
                Ok(())
            }
            other => self.handle_control(pid, other, now),
        }
    }

    /// The connection closed (or the shell gave up on it).
    pub fn handle_disconnect(&mut self, pid: ParticipantId, now: Instant) {
        self.remove(pid, now);
        self.drop_pending(pid);
        self.process_work(now);
    }

    /// A UDP datagram arrived on the media socket. Garbage is dropped.
    pub fn handle_receive(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
        now: Instant,
    ) {
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            return;
        };
        let input = Input::Receive(now, receive);
        let pid = match self.by_addr.get(&source) {
            Some(pid) => *pid,
            None => {
                // A new address: only a STUN request naming a participant's
                // ICE username (looked up, not searched for) and accepted by
                // that session is claimed; anything else costs one parse.
                let named = str0m::ice::StunMessage::parse(contents)
                    .ok()
                    .and_then(|m| m.split_username().and_then(|(local, _)| self.by_ufrag.get(local).copied()));
                let Some(pid) = named else { return };
                let accepted = self
                    .participants
                    .get(&pid)
                    .is_some_and(|p| guarded(|| p.rtc.accepts(&input)).unwrap_or(false));
                if !accepted {
                    return;
                }
                self.by_addr.insert(source, pid);
                if let Some(p) = self.participants.get_mut(&pid) {
                    p.addrs.push(source);
                }
                pid
            }
        };
        let Some(p) = self.participants.get_mut(&pid) else { return };
        match guarded(|| p.rtc.handle_input(input)) {
            Ok(Ok(())) => {}
            // str0m refuses packets it cannot use (bad SRTP, wrong state):
            // the session stays usable.
            Ok(Err(e)) => debug!(%pid, error = %e, "datagram refused"),
            Err(()) => return self.fault(pid, CloseCode::InternalError, now),
        }
        self.drain(pid, now);
        self.process_work(now);
    }

    /// Time passed: drive every session whose deadline is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<ParticipantId> =
            self.participants.values().filter(|p| p.timeout <= now).map(|p| p.id).collect();
        for pid in due {
            self.advance(pid, now);
        }
        self.process_work(now);
    }

    /// Moves one session's clock to `now` and drains what that releases.
    fn advance(&mut self, pid: ParticipantId, now: Instant) {
        let Some(p) = self.participants.get_mut(&pid) else { return };
        p.release_due = false;
        match guarded(|| p.rtc.handle_input(Input::Timeout(now))) {
            Ok(Ok(())) => self.drain(pid, now),
            Ok(Err(_)) => self.fault(pid, CloseCode::MediaFailed, now),
            Err(()) => self.fault(pid, CloseCode::InternalError, now),
        }
    }

    /// Puts `pid` into `room`, opening it (end-to-end encrypted if `e2ee`)
    /// when it does not exist.
    pub(crate) fn join(
        &mut self,
        pid: ParticipantId,
        room: RoomName,
        mut info: ParticipantInfo,
        e2ee: bool,
        now: Instant,
    ) {
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true)
            // Holding space between write and send, and the NACK source:
            // str0m's default of 1000 video packets per session is several
            // seconds of video and most of a subscriber's memory.
            .set_send_buffer_video(SEND_BUFFER_VIDEO)
            .build(now);
        for addr in &self.config.candidates {
            if let Ok(c) = Candidate::host(*addr, "udp") {
                rtc.add_local_candidate(c);
            }
        }

        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        self.by_ufrag.insert(ufrag.clone(), pid);

        let next_room = &mut self.next_room;
        let entry = self.rooms.entry(room.clone()).or_insert_with(|| {
            let id = RoomId(*next_room);
            *next_room += 1;
            Room::new(id, e2ee)
        });
        if entry.members.is_empty() {
            info!(room = %entry.id, "room opened");
            self.out.push_back(Output::Event(Event::RoomOpened(entry.id)));
        }
        let room_id = entry.id;
        let others: Vec<ParticipantId> = entry.members.clone();
        entry.members.push(pid);
        // The first participant of an empty room is its moderator.
        info.moderator = others.is_empty();
        let room_state = entry.state();

        // The newcomer receives every track already published in the room.
        let mut subs = Vec::new();
        for other in &others {
            if let Some(o) = self.participants.get(other) {
                for pubd in o.published.values() {
                    if let Some(track) = pubd.track {
                        subs.push(Sub::new(track, *other, pubd.kind, pubd.screen));
                    }
                }
            }
        }
        subs.sort_by_key(|s| s.track);

        let participants: Vec<ParticipantInfo> = others
            .iter()
            .filter_map(|o| self.participants.get(o).map(|p| p.info.clone()))
            .collect();
        self.out.push_back(Output::Signal(
            pid,
            ServerMsg::Joined {
                version: PROTOCOL_VERSION,
                you: pid,
                participants,
                moderator: info.moderator,
                room: room_state,
            },
        ));
        for o in &others {
            self.out.push_back(Output::Signal(
                *o,
                ServerMsg::ParticipantJoined { participant: info.clone() },
            ));
        }
        info!(participant = %pid, room = %room_id, "joined");

        let renegotiate = !subs.is_empty();
        self.participants.insert(
            pid,
            Participant {
                id: pid,
                room,
                info,
                rtc,
                phase: Phase::AwaitingOffer,
                published: HashMap::new(),
                subs,
                renegotiate,
                addrs: Vec::new(),
                timeout: now,
                force_muted: false,
                chat: crate::control::chat_bucket(now),
                e2ee_bytes: crate::control::e2ee_bucket(now),
                screen_mid: None,
                ufrag,
                release_due: false,
            },
        );
        self.drain(pid, now);
    }

    /// Forget a participant; tell the room; free the room when empty.
    pub(crate) fn remove(&mut self, pid: ParticipantId, now: Instant) {
        let Some(p) = self.participants.remove(&pid) else { return };
        for a in &p.addrs {
            self.by_addr.remove(a);
        }
        self.by_ufrag.remove(&p.ufrag);
        let gone_tracks: Vec<TrackId> = p.published.values().filter_map(|x| x.track).collect();
        for t in &gone_tracks {
            self.tracks.remove(t);
        }
        self.work.retain(|(from, _)| *from != pid);
        let Some(room) = self.rooms.get_mut(&p.room) else { return };
        room.members.retain(|m| *m != pid);
        let room_id = room.id;
        info!(participant = %pid, room = %room_id, "left");
        if room.members.is_empty() {
            self.rooms.remove(&p.room);
            info!(room = %room_id, "room closed");
            self.out.push_back(Output::Event(Event::RoomClosed(room_id)));
            // Nobody is left to admit those still waiting.
            self.close_pending_of(&p.room, CloseCode::Ended);
            return;
        }
        let members = room.members.clone();
        self.ensure_moderator(&p.room);
        for m in members {
            self.out.push_back(Output::Signal(m, ServerMsg::ParticipantLeft { id: pid }));
            let Some(o) = self.participants.get_mut(&m) else { continue };
            let mut changed = false;
            for s in &mut o.subs {
                if s.publisher == pid {
                    s.state = SubState::Stopping(s.mid());
                    changed = true;
                }
            }
            if changed {
                o.renegotiate = true;
                self.maybe_offer(m, now);
            }
        }
    }

    /// A participant's session broke: drop it, tell it why, keep the room.
    pub(crate) fn fault(&mut self, pid: ParticipantId, code: CloseCode, now: Instant) {
        if !self.participants.contains_key(&pid) {
            return;
        }
        warn!(participant = %pid, ?code, "participant dropped");
        self.out.push_back(Output::Signal(
            pid,
            ServerMsg::Error { code: code.code(), message: close_reason(code).to_string() },
        ));
        self.remove(pid, now);
        self.out.push_back(Output::Close(pid, code));
    }

    /// Polls one session until its next timeout. Transmits go out; events
    /// that concern others are queued for [`Sfu::process_work`].
    pub(crate) fn drain(&mut self, pid: ParticipantId, now: Instant) {
        let Some(p) = self.participants.get_mut(&pid) else { return };
        loop {
            match guarded(|| p.rtc.poll_output()) {
                Ok(Ok(RtcOutput::Timeout(t))) => {
                    // str0m's deadline does not count packets written and not
                    // yet released: keep a session marked due until advanced.
                    p.timeout = if p.release_due { t.min(now) } else { t };
                    break;
                }
                Ok(Ok(RtcOutput::Transmit(t))) => self.out.push_back(Output::Transmit(Transmit {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.into(),
                })),
                Ok(Ok(RtcOutput::Event(e))) => match e {
                    RtcEvent::RtpPacket(_)
                    | RtcEvent::KeyframeRequest(_)
                    | RtcEvent::MediaAdded(_) => self.work.push_back((pid, e)),
                    RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        return self.fault(pid, CloseCode::MediaFailed, now);
                    }
                    RtcEvent::Connected => debug!(participant = %pid, "media connected"),
                    _ => {}
                },
                Ok(Err(_)) => return self.fault(pid, CloseCode::MediaFailed, now),
                Err(()) => return self.fault(pid, CloseCode::InternalError, now),
            }
        }
        if !p.rtc.is_alive() {
            self.fault(pid, CloseCode::MediaFailed, now);
        }
    }

    fn process_work(&mut self, now: Instant) {
        while let Some((pid, event)) = self.work.pop_front() {
            match event {
                RtcEvent::RtpPacket(pkt) => forward::forward(self, pid, pkt, now),
                RtcEvent::KeyframeRequest(req) => {
                    let track = self
                        .participants
                        .get(&pid)
                        .and_then(|p| p.sub_by_mid(req.mid))
                        .map(|s| s.track);
                    if let Some(t) = track {
                        self.request_keyframe(t, req.kind, now);
                    }
                }
                RtcEvent::MediaAdded(added) => self.publish(pid, added),
                _ => {}
            }
        }
    }

    pub(crate) fn broadcast(&mut self, room: &RoomName, except: Option<ParticipantId>, msg: ServerMsg) {
        let Some(r) = self.rooms.get(room) else { return };
        for m in &r.members {
            if Some(*m) != except {
                self.out.push_back(Output::Signal(*m, msg.clone()));
            }
        }
    }

    // ---- used by `forward` ----

    pub(crate) fn participant_mut(&mut self, pid: ParticipantId) -> Option<&mut Participant> {
        self.participants.get_mut(&pid)
    }

    pub(crate) fn room_members(&self, pid: ParticipantId) -> Option<&[ParticipantId]> {
        let p = self.participants.get(&pid)?;
        self.rooms.get(&p.room).map(|r| r.members.as_slice())
    }

    /// Makes the session due at `now` so the next `handle_timeout` releases
    /// what was written to it.
    pub(crate) fn mark_due(&mut self, pid: ParticipantId, now: Instant) {
        if let Some(p) = self.participants.get_mut(&pid) {
            p.release_due = true;
            p.timeout = p.timeout.min(now);
        }
    }

    pub(crate) fn push_fault(&mut self, pid: ParticipantId, now: Instant) {
        self.fault(pid, CloseCode::InternalError, now);
    }
}

/// Runs `f`, turning a panic inside str0m into `Err(())` so one broken
/// session cannot take down the room or the server.
pub(crate) fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, ()> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| ())
}

/// Trims a display name, drops control characters, caps its length.
fn clean_name(name: Option<&str>) -> Option<String> {
    let cleaned: String = name?
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// English reason sent with an `error` message.
pub fn close_reason(code: CloseCode) -> &'static str {
    match code {
        CloseCode::Normal => "bye",
        CloseCode::GoingAway => "the server is shutting down",
        CloseCode::UnsupportedData => "binary messages are not supported",
        CloseCode::TooBig => "message too big",
        CloseCode::Malformed => "malformed message",
        CloseCode::UnexpectedMessage => "unexpected message",
        CloseCode::UnsupportedVersion => "unsupported protocol version",
        CloseCode::InvalidRoomName => "invalid room name",
        CloseCode::BadSdp => "invalid SDP",
        CloseCode::MediaFailed => "media connection failed",
        CloseCode::InternalError => "internal error in this connection",
        CloseCode::RateLimited => "too many messages",
        CloseCode::RoomFull => "the meeting is full",
        CloseCode::Removed => "a moderator removed you from the meeting",
        CloseCode::Locked => "the meeting is locked",
        CloseCode::Ended => "the meeting has ended",
        CloseCode::LobbyRefused => "a moderator did not let you in",
        CloseCode::E2eeRequired => "this meeting is end-to-end encrypted: open it with the full link",
        CloseCode::NotE2ee => "this meeting is not end-to-end encrypted, but the link is for an encrypted one",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name(Some("  Ada\u{0007} ")), Some("Ada".to_string()));
        assert_eq!(clean_name(Some("   ")), None);
        assert_eq!(clean_name(None), None);
        assert_eq!(clean_name(Some(&"x".repeat(100))).unwrap().chars().count(), MAX_NAME_CHARS);
    }
}
