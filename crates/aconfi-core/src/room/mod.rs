//! A room: its members and their sessions, the tracks they publish, the
//! door, moderators, chat and hands, and when a member's session must be
//! renegotiated. Rooms share no mutable state; what a room needs from its
//! shard (the outbox, the timers, the address map) comes in a [`Cx`].
//!
//! Media path: a member's session is drained ([`Room::drain`]); each RTP
//! packet goes to [`Room::forward`], which hands it to every other
//! member's [`DownTrack`](crate::downtrack::DownTrack) and does nothing
//! else. The first packet of a new track is queued ([`Room::announce`]
//! runs it after the batch, from a room timer).

mod confirm;
pub use confirm::UNCONFIRMED_E2EE_MESSAGES;
mod control;
mod door;
mod stream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::net::Receive;
use str0m::rtp::{ExtensionValues, RtpPacket};
use str0m::Input;
use tracing::debug;

pub use door::{
    GUESS_WINDOW, MAX_GUESSES_PER_CONNECTION, MAX_GUESSES_PER_ROOM, MAX_PARTICIPANTS_PER_ROOM, MAX_WAITING_PER_ROOM,
    SLOW_DOWN,
};

use crate::address::{AddrKey, GuessLimits};
use crate::downtrack::{DownTrack, Incoming};
use crate::endpoint::{Endpoint, Received, Route};
use crate::error::SignalError;
use crate::ids::{ParticipantId, RoomId, TrackId};
use crate::output::Outbox;
use crate::participant::{Participant, SessionEvent, Source, VideoSource};
use crate::protocol::{ClientMsg, CloseCode, ParticipantInfo, RoomState, ServerMsg, MAX_NAME_CHARS, PROTOCOL_VERSION};
use crate::room_name::RoomName;
use crate::simulcast::{Packet, Vp8Ids};
use crate::speaker::Speaker;
use crate::stream_limits::StreamLimits;
use crate::timers::{Key, Timers};
pub(crate) use door::Joiner;
use door::{Door, Guesser, Knock, RoomFacts};

/// What a room may touch outside itself, lent by its shard for one call.
pub(crate) struct Cx<'a> {
    pub now: Instant,
    pub out: &'a mut Outbox,
    pub timers: &'a mut Timers,
    pub endpoint: &'a mut Endpoint,
    /// Addresses put into ICE candidates.
    pub candidates: &'a [SocketAddr],
    /// Passive ICE-TCP candidates.
    pub tcp_candidates: &'a [SocketAddr],
    /// Connections this room let go of (left, removed, refused at the door).
    pub departed: &'a mut Vec<ParticipantId>,
    /// Why this server cannot stream live, if it cannot.
    pub stream_unavailable: Option<&'a str>,
    /// Password guesses per client address, across rooms and shards.
    pub guessers: &'a GuessLimits,
    /// Live streams at once, across rooms and shards.
    pub stream_limits: &'a StreamLimits,
    /// Each open connection's address (for the per-address limits only).
    pub addresses: &'a HashMap<ParticipantId, AddrKey>,
    /// This shard's number, if the process runs several (the front of
    /// every new session's ICE username fragment).
    pub shard: Option<u16>,
}

pub(crate) struct Room {
    id: RoomId,
    name: RoomName,
    /// In join order (the longest present is first).
    members: IndexMap<ParticipantId, Participant>,
    door: Door,
    /// End-to-end encrypted: set by the first joiner's link, for the room's
    /// life. The server never holds a key.
    e2ee: bool,
    next_track: u64,
    /// New tracks seen by the forwarding path, announced after the batch.
    announce: Vec<(ParticipantId, Mid)>,
    /// Reused between drains, so draining allocates nothing.
    events: Vec<SessionEvent>,
    /// Whose link the others confirmed (end-to-end encrypted rooms).
    confirmations: confirm::Confirmations,
    /// The live stream, while there is one.
    tap: Option<stream::Tap>,
    /// Streams started so far (each gets the next serial).
    next_stream: u32,
    /// Who is speaking.
    speaker: Speaker,
    /// When the subscribers' layers are next chosen (`None`: at once).
    next_allocation: Option<Instant>,
}

/// How often each subscriber's layers are chosen again (driven by packets,
/// like the speaker: a room without video has nothing to allocate).
pub const ALLOCATION_INTERVAL: Duration = Duration::from_millis(500);

impl Room {
    pub fn new(id: RoomId, name: RoomName, e2ee: bool) -> Self {
        debug!(room = %id, "room opened");
        Room {
            id,
            name,
            members: IndexMap::new(),
            door: Door::default(),
            e2ee,
            next_track: 1,
            announce: Vec::new(),
            events: Vec::new(),
            confirmations: confirm::Confirmations::default(),
            tap: None,
            next_stream: 0,
            speaker: Speaker::default(),
            next_allocation: None,
        }
    }

    pub fn name(&self) -> &RoomName {
        &self.name
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn id(&self) -> RoomId {
        self.id
    }

    /// Sets (or clears) the password, as a moderator's `set_password` does.
    pub fn set_password(&mut self, password: Option<String>) -> Result<(), SignalError> {
        self.door.set_password(password)
    }

    /// `name`, or `name (2)`, `name (3)` … if someone in the room already
    /// goes by it (ignoring case), so nobody can pass for someone else by
    /// taking their name.
    fn unique_name(&self, name: String) -> String {
        let taken = |n: &str| {
            let n = n.to_lowercase();
            self.members.values().any(|m| m.info().name.as_deref().is_some_and(|o| o.to_lowercase() == n))
        };
        if !taken(&name) {
            return name;
        }
        (2..)
            .map(|i| {
                let suffix = format!(" ({i})");
                let base: String = name.chars().take(MAX_NAME_CHARS - suffix.chars().count()).collect();
                format!("{}{suffix}", base.trim_end())
            })
            .find(|n| !taken(n))
            .unwrap_or(name)
    }

    /// Nobody in: the shard closes the room.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn is_member(&self, pid: ParticipantId) -> bool {
        self.members.contains_key(&pid)
    }

    fn state(&self) -> RoomState {
        RoomState {
            locked: self.door.locked,
            lobby: self.door.lobby,
            password: self.door.has_password(),
            e2ee: self.e2ee,
        }
    }

    // ---- coming and going ----

    /// A `join` at this room's door, from an address whose guesses count
    /// as `addr`'s.
    pub fn knock(&mut self, joiner: Joiner, addr: Option<AddrKey>, cx: &mut Cx<'_>) -> Result<(), SignalError> {
        let pid = joiner.pid;
        let guesser = Guesser { addr, limits: cx.guessers };
        let at = RoomFacts { id: self.id, e2ee: self.e2ee, members: self.members.len() };
        let knock = self.door.knock(joiner, at, guesser, cx.out, cx.now)?;
        match knock {
            Knock::Enter(info) => self.enter(pid, info, cx),
            Knock::Password | Knock::NoPassword => {}
            Knock::Lobby(name) => self.to_moderators(cx.out, ServerMsg::LobbyRequest { id: pid, name }),
        }
        Ok(())
    }

    /// Whether `pid` may send another `join` (it waits at the password, not
    /// in the lobby, and is not in).
    pub fn may_knock_again(&self, pid: ParticipantId) -> bool {
        !self.is_member(pid) && !self.door.in_lobby(pid)
    }

    /// Puts `pid` in: a fresh session, the tracks already published, and
    /// everyone told.
    pub fn enter(&mut self, pid: ParticipantId, mut info: ParticipantInfo, cx: &mut Cx<'_>) {
        // The first participant of an empty room is its moderator.
        info.moderator = self.members.is_empty();
        info.name = info.name.map(|n| self.unique_name(n));
        let mut p = Participant::new(pid, info.clone(), cx.candidates, cx.tcp_candidates, cx.shard, cx.now);
        cx.endpoint.register(p.ufrag().to_string(), Route { room: self.id, pid });
        // The newcomer receives every track already published, in id order.
        let mut tracks: Vec<DownTrack> = self
            .members
            .iter()
            .flat_map(|(id, o)| o.tracks().map(|(t, kind, screen)| DownTrack::new(t, *id, kind, screen)))
            .collect();
        tracks.sort_by_key(DownTrack::track);
        for d in tracks {
            p.subscribe(d);
        }
        let participants = self.members.values().map(|o| o.info().clone()).collect();
        cx.out.signal(
            pid,
            ServerMsg::Joined {
                version: PROTOCOL_VERSION,
                you: pid,
                participants,
                moderator: info.moderator,
                room: self.state(),
                stream_unavailable: cx.stream_unavailable.map(str::to_string),
            },
        );
        if let Some(notice) = self.stream_notice() {
            cx.out.signal(pid, notice);
        }
        if let Some(participant) = self.speaker.current() {
            cx.out.signal(pid, ServerMsg::ActiveSpeaker { participant });
        }
        self.broadcast(cx.out, None, ServerMsg::ParticipantJoined { participant: info });
        debug!(participant = %pid, room = %self.id, "joined");
        self.members.insert(pid, p);
        self.drain(pid, cx);
    }

    /// Forgets a member; tells the others; stops their tracks from it.
    /// The shard closes the room when it empties.
    pub fn remove(&mut self, pid: ParticipantId, cx: &mut Cx<'_>) {
        let Some(p) = self.members.shift_remove(&pid) else { return };
        cx.endpoint.forget(pid, p.ufrag());
        cx.timers.cancel(Key::Session(pid));
        cx.departed.push(pid);
        self.announce.retain(|(from, _)| *from != pid);
        self.speaker.forget(pid);
        self.confirmations.forget(pid);
        debug!(participant = %pid, room = %self.id, "left");
        if self.members.is_empty() {
            return;
        }
        self.stream_forget(cx);
        self.ensure_moderator(cx.out);
        let ids: Vec<ParticipantId> = self.members.keys().copied().collect();
        for m in ids {
            cx.out.signal(m, ServerMsg::ParticipantLeft { id: pid });
            if let Some(o) = self.members.get_mut(&m) {
                o.unsubscribe_from(pid);
            }
            self.offer_if_due(m, cx);
        }
    }

    /// Takes `pid` off the door (it went away or was turned away).
    pub fn leave_door(&mut self, pid: ParticipantId, cx: &mut Cx<'_>) {
        if self.door.leave(pid) {
            self.to_moderators(cx.out, ServerMsg::LobbyLeft { id: pid });
        }
        cx.departed.push(pid);
    }

    /// The room emptied: everyone still at the door is sent away.
    pub fn close(&mut self, cx: &mut Cx<'_>) {
        for pid in self.door.clear() {
            cx.out.close(pid, CloseCode::Ended);
            cx.departed.push(pid);
        }
        self.end_stream(cx);
        cx.timers.cancel(Key::Room(self.id));
        debug!(room = %self.id, "room closed");
    }

    /// A member's session broke: drop it, tell it why, keep the room.
    fn fault(&mut self, pid: ParticipantId, code: CloseCode, cx: &mut Cx<'_>) {
        if !self.is_member(pid) {
            return;
        }
        debug!(participant = %pid, ?code, "participant dropped");
        self.remove(pid, cx);
        cx.out.close(pid, code);
    }

    // ---- signaling ----

    /// A message from a member (or someone at the door) other than `join`.
    pub fn handle(&mut self, pid: ParticipantId, msg: ClientMsg, cx: &mut Cx<'_>) -> Result<(), SignalError> {
        match msg {
            ClientMsg::Leave {} => {
                if self.is_member(pid) {
                    self.remove(pid, cx);
                } else if self.door.is_waiting(pid) {
                    self.leave_door(pid, cx);
                } else {
                    return Err(SignalError::UNEXPECTED);
                }
                cx.out.close(pid, CloseCode::Normal);
                Ok(())
            }
            ClientMsg::Offer { sdp, screen_mid } => {
                let p = self.members.get_mut(&pid).ok_or(SignalError::UNEXPECTED)?;
                let answer = p.accept_offer(&sdp, screen_mid.as_deref())?;
                cx.out.signal(pid, answer);
                self.drain(pid, cx);
                self.offer_if_due(pid, cx);
                Ok(())
            }
            ClientMsg::Answer { sdp } => {
                let p = self.members.get_mut(&pid).ok_or(SignalError::UNEXPECTED)?;
                p.accept_answer(&sdp)?;
                self.drain(pid, cx);
                // Its new videos get their layers at once, and each
                // publisher is asked for a keyframe of exactly that layer,
                // unthrottled: a newcomer must not wait for another's.
                self.allocate(Some(pid), false, cx);
                self.offer_if_due(pid, cx);
                Ok(())
            }
            ClientMsg::MediaState { audio_muted, video_muted, screen_sharing } => {
                let p = self.members.get_mut(&pid).ok_or(SignalError::UNEXPECTED)?;
                let pictures = (p.info().video_muted, p.info().screen_sharing);
                p.set_media_state(audio_muted, video_muted, screen_sharing);
                let info = p.info().clone();
                self.broadcast(cx.out, Some(pid), ServerMsg::ParticipantUpdated { participant: info });
                if pictures != (video_muted, screen_sharing) {
                    self.send_sources(cx);
                }
                Ok(())
            }
            ClientMsg::View { tiles } => {
                // From someone still at the door (a layout change racing
                // the join): nothing to show yet, nothing to say.
                let Some(p) = self.members.get_mut(&pid) else { return Ok(()) };
                p.set_view(&tiles)?;
                self.allocate(Some(pid), true, cx);
                Ok(())
            }
            ClientMsg::Join { .. } => Err(SignalError::UNEXPECTED),
            other => self.handle_control(pid, other, cx),
        }
    }

    /// Sends a server offer to `pid` if its down tracks changed and no
    /// offer is out.
    fn offer_if_due(&mut self, pid: ParticipantId, cx: &mut Cx<'_>) {
        let Some(p) = self.members.get_mut(&pid) else { return };
        match p.offer_if_due() {
            Ok(Some(offer)) => cx.out.signal(pid, offer),
            Ok(None) => return,
            Err(code) => return self.fault(pid, code, cx),
        }
        self.drain(pid, cx);
    }

    // ---- media ----

    /// A datagram for member `pid`. `claim` is set when it comes from an
    /// address not yet known: it is taken only if the session accepts it.
    pub fn receive(&mut self, pid: ParticipantId, d: Received<'_>, claim: bool, cx: &mut Cx<'_>) {
        let Ok(receive) = Receive::new(d.proto, d.source, d.destination, d.contents) else { return };
        let input = Input::Receive(cx.now, receive);
        let Some(p) = self.members.get_mut(&pid) else { return };
        if claim {
            if !p.accepts(&input) {
                return;
            }
            cx.endpoint.claim(d.source, Route { room: self.id, pid }, cx.now);
        }
        if let Err(code) = p.handle_input(input) {
            return self.fault(pid, code, cx);
        }
        self.drain(pid, cx);
    }

    /// A session's timer fired: advance it if it is due, else wait again.
    pub fn on_timer(&mut self, pid: ParticipantId, cx: &mut Cx<'_>) {
        let Some(p) = self.members.get_mut(&pid) else { return };
        if !p.is_due(cx.now) {
            cx.timers.schedule(Key::Session(pid), p.deadline());
            return;
        }
        if let Err(code) = p.advance(cx.now) {
            return self.fault(pid, code, cx);
        }
        self.drain(pid, cx);
    }

    /// Polls one member's session until its next deadline and handles what
    /// it reports: media is forwarded, keyframe requests passed on.
    fn drain(&mut self, pid: ParticipantId, cx: &mut Cx<'_>) {
        let Some(p) = self.members.get_mut(&pid) else { return };
        let mut events = std::mem::take(&mut self.events);
        let polled = p.poll(cx.out, &mut events);
        cx.timers.schedule(Key::Session(pid), p.deadline());
        if let Err(code) = polled {
            events.clear();
            self.events = events;
            return self.fault(pid, code, cx);
        }
        for ev in events.drain(..) {
            match ev {
                SessionEvent::Rtp(pkt) => self.forward(pid, &pkt, cx),
                SessionEvent::KeyframeRequest { mid, kind } => {
                    let wanted = self.members.get(&pid).and_then(|p| p.received_on(mid));
                    if let Some((track, publisher, layer)) = wanted {
                        self.request_keyframe(publisher, track, kind, layer, true, cx);
                    }
                }
            }
        }
        self.events = events;
    }

    /// The hot path: one packet from `from` to every other member. No
    /// control work here: a new track is only queued.
    fn forward(&mut self, from: ParticipantId, pkt: &RtpPacket, cx: &mut Cx<'_>) {
        let Some(p) = self.members.get_mut(&from) else { return };
        let (track, spec, layer, keyframe, vp8) = match p.classify(pkt, cx.now) {
            None => return,
            Some(Source::New(mid)) => {
                if self.announce.is_empty() {
                    cx.timers.schedule_now(Key::Room(self.id), cx.now);
                }
                self.announce.push((from, mid));
                return;
            }
            Some(Source::Track { track, spec, layer, keyframe, vp8, started }) => {
                // A video layer starting (a new track's first packets come
                // after its subscribers answered, often): allocate with
                // this packet, not at the next round, up to 500 ms later.
                if started {
                    self.next_allocation = None;
                }
                (track, spec, layer, keyframe, vp8)
            }
        };
        let packet = Packet {
            layer,
            seq: *pkt.seq_no,
            timestamp: pkt.header.timestamp,
            arrival: pkt.timestamp,
            clock_rate: spec.clock_rate.get(),
            keyframe,
            vp8: vp8.map(|d| Vp8Ids {
                picture_id: d.picture_id(),
                // The picture id's first byte has the M bit for 15 bits.
                long_picture_id: pkt.payload.get(2).is_some_and(|b| b & 0x80 != 0),
                tl0_pic_idx: d.tl0_pic_idx(),
            }),
            sender_report: pkt.last_sender_info.map(|s| (*s.ssrc, s.ntp_time, s.rtp_time.numer() as u32)),
        };
        let inc = Incoming {
            pkt,
            spec: &spec,
            ext: ExtensionValues {
                audio_level: pkt.header.ext_vals.audio_level,
                voice_activity: pkt.header.ext_vals.voice_activity,
                video_orientation: pkt.header.ext_vals.video_orientation,
                ..Default::default()
            },
            packet,
            vp8,
        };
        // Allocated only if a session breaks.
        let mut broken = Vec::new();
        for (id, m) in self.members.iter_mut() {
            if *id == from {
                continue;
            }
            match m.forward(track, &inc) {
                // str0m holds written packets until the session's time
                // advances: one advance per subscriber per batch sends them.
                Ok(true) => cx.timers.schedule_now(Key::Session(*id), cx.now),
                Ok(false) => {}
                Err(()) => broken.push(*id),
            }
        }
        for id in broken {
            self.fault(id, CloseCode::InternalError, cx);
        }
        self.tap_packet(track, &spec, pkt, &inc.packet, cx);
        if self.speaker.due(cx.now) {
            self.elect_speaker(cx);
        }
        if self.next_allocation.is_none_or(|t| cx.now >= t) {
            self.next_allocation = Some(cx.now + ALLOCATION_INTERVAL);
            self.allocate(None, true, cx);
        }
    }

    /// Chooses the layers every member (or only `only`) receives, from its
    /// tiles and who speaks; asks publishers for the keyframes the switches
    /// wait for (`throttle`: at most one per layer per 500 ms).
    fn allocate(&mut self, only: Option<ParticipantId>, throttle: bool, cx: &mut Cx<'_>) {
        let mut sources: Vec<VideoSource> = self.members.values().flat_map(|p| p.video_sources(cx.now)).collect();
        sources.sort_by_key(|s| s.track);
        let speaker = self.speaker.current();
        let mut keyframes = Vec::new();
        for (id, m) in self.members.iter_mut().filter(|(id, _)| only.is_none_or(|o| o == **id)) {
            keyframes.extend(m.allocate(&sources, speaker, cx.now));
            if let Some(msg) = m.take_paused() {
                cx.out.signal(*id, msg);
            }
        }
        if only.is_none() {
            for (track, layer) in self.tap_allocate(&sources) {
                keyframes.extend(self.publisher_of(track).map(|p| (p, track, layer)));
            }
        }
        keyframes.sort_unstable();
        keyframes.dedup();
        for (publisher, track, layer) in keyframes {
            self.request_keyframe(publisher, track, KeyframeRequestKind::Pli, Some(layer), throttle, cx);
        }
    }

    /// Closes a speaker interval; tells everyone when the speaker changed.
    /// Not logged, not even at debug: who spoke when is the meeting itself.
    fn elect_speaker(&mut self, cx: &mut Cx<'_>) {
        let meters = self.members.iter_mut().map(|(id, p)| (*id, p.speech()));
        if let Some(participant) = self.speaker.evaluate(meters, cx.now) {
            self.broadcast(cx.out, None, ServerMsg::ActiveSpeaker { participant });
        }
    }

    /// Control work the forwarding path queued: announce new tracks, so
    /// every other member subscribes, then gets one offer for all of them
    /// (a newcomer's microphone and camera together, not the camera in a
    /// second offer a round trip later).
    pub fn on_room_timer(&mut self, cx: &mut Cx<'_>) {
        let announce = std::mem::take(&mut self.announce);
        if !announce.is_empty() {
            for (pid, mid) in announce {
                self.announce_track(pid, mid);
            }
            let ids: Vec<ParticipantId> = self.members.keys().copied().collect();
            for m in ids {
                self.offer_if_due(m, cx);
            }
        }
        self.sources_if_dirty(cx);
    }

    /// A new track of `pid`: every other member subscribes (the caller
    /// sends the offers).
    fn announce_track(&mut self, pid: ParticipantId, mid: Mid) {
        let track = TrackId(self.next_track);
        let Some((kind, screen)) = self.members.get_mut(&pid).and_then(|p| p.announced(mid, track)) else {
            return;
        };
        self.next_track += 1;
        debug!(participant = %pid, %track, ?kind, screen, "track published");
        for (_, o) in self.members.iter_mut().filter(|(m, _)| **m != pid) {
            o.subscribe(DownTrack::new(track, pid, kind, screen));
        }
    }

    /// Asks `publisher` for a keyframe of `track` (of one simulcast
    /// `layer`, or all); the request leaves with its session's next
    /// advance, scheduled now. `throttle`d requests go at most once per
    /// layer per 500 ms.
    fn request_keyframe(
        &mut self,
        publisher: ParticipantId,
        track: TrackId,
        kind: KeyframeRequestKind,
        layer: Option<u8>,
        throttle: bool,
        cx: &mut Cx<'_>,
    ) {
        let Some(p) = self.members.get_mut(&publisher) else { return };
        match p.request_keyframe(track, kind, layer, throttle.then_some(cx.now)) {
            Ok(true) => cx.timers.schedule_now(Key::Session(publisher), cx.now),
            Ok(false) => {}
            Err(code) => self.fault(publisher, code, cx),
        }
    }

    // ---- messages to members ----

    fn broadcast(&self, out: &mut Outbox, except: Option<ParticipantId>, msg: ServerMsg) {
        for m in self.members.keys().filter(|m| Some(**m) != except) {
            out.signal(*m, msg.clone());
        }
    }

    /// Whether `pid` may moderate as far as end-to-end encryption goes:
    /// always in a plain room; in an encrypted one, if its link was
    /// confirmed by someone present (or it is alone).
    fn is_confirmed(&self, pid: ParticipantId) -> bool {
        if !self.e2ee {
            return true;
        }
        let ids: Vec<ParticipantId> = self.members.keys().copied().collect();
        self.confirmations.is_confirmed(pid, &ids)
    }

    fn to_moderators(&self, out: &mut Outbox, msg: ServerMsg) {
        for (id, _) in self.members.iter().filter(|(_, p)| p.is_moderator()) {
            out.signal(*id, msg.clone());
        }
    }

    /// After someone left: if no moderator remains, the one present
    /// longest becomes moderator (in an end-to-end encrypted room, the one
    /// present longest whose link the others confirmed, if anyone's is).
    fn ensure_moderator(&mut self, out: &mut Outbox) {
        if self.members.values().any(Participant::is_moderator) {
            return;
        }
        let ids: Vec<ParticipantId> = self.members.keys().copied().collect();
        let chosen = ids.iter().position(|id| self.is_confirmed(*id)).unwrap_or(0);
        let Some((_, first)) = self.members.get_index_mut(chosen) else { return };
        first.set_moderator(true);
        let info = first.info().clone();
        self.broadcast(out, None, ServerMsg::ParticipantUpdated { participant: info });
    }
}
