//! The shard: the rooms of one core, the media port's demux and the timers,
//! driven entirely from outside (sans-IO).
//!
//! Inputs are `handle_*` calls with the current time; outputs are drained
//! with [`Sfu::poll_output`] and the next deadline read with
//! [`Sfu::poll_timeout`]. Nothing in here reads a clock, opens a socket or
//! draws a random number. The room logic lives in [`crate::room`]; this
//! type only finds the room a datagram, message or timer belongs to.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use tracing::debug;

use crate::address::{AddrKey, GuessLimits};
use crate::endpoint::{Endpoint, Received};
use crate::error::SignalError;
use crate::ids::{NodeId, ParticipantId, RoomId};
use crate::output::{Outbox, Output};
use crate::protocol::{ClientMsg, CloseCode, ParticipantInfo, MAX_NAME_CHARS, PROTOCOL_VERSION};
use crate::room::{Cx, Joiner, Room, GUESS_WINDOW};
use crate::room_name::RoomName;
use crate::stream::{StreamEvent, StreamKey};
use crate::stream_limits::StreamLimits;
use crate::timers::{Key, Timers};

/// Static configuration of the SFU.
#[derive(Debug, Clone, Default)]
pub struct SfuConfig {
    /// Addresses put into ICE candidates: where browsers send media.
    pub candidates: Vec<SocketAddr>,
    /// Passive ICE-TCP candidates (RFC 6544): where browsers that may not
    /// use UDP connect over TCP, each datagram framed as in RFC 4571 by the
    /// shell, which passes them in with [`Sfu::handle_receive_tcp`].
    pub tcp_candidates: Vec<SocketAddr>,
    /// This server in a deployment of several (its ids carry it).
    pub node: NodeId,
    /// Why meetings cannot be streamed live here (no worker, GStreamer
    /// missing); `None` when they can.
    pub stream_unavailable: Option<String>,
    /// This shard's number when one process runs several `Sfu`s (one per
    /// core). It starts every session's ICE username fragment (`<shard>+`),
    /// so a shell with one port shared by the shards (ICE over TCP on the
    /// HTTPS port) finds a STUN request's shard without asking
    /// ([`shard_named_by_stun`]). `None`: str0m's fragment as it is.
    pub shard: Option<u16>,
    /// Password guesses per client address. Shards of one process share
    /// one (clones of the same [`GuessLimits`]): guesses spread over rooms
    /// on several shards still count against one budget.
    pub guess_limits: GuessLimits,
    /// Live streams at once, on the server and per starting address;
    /// shared by the shards of one process like `guess_limits`.
    pub stream_limits: StreamLimits,
}

/// Which shard a STUN request is for, from the ICE username fragment it
/// names (see [`SfuConfig::shard`]); `None` if it is no STUN request or
/// names no shard.
pub fn shard_named_by_stun(contents: &[u8]) -> Option<u16> {
    let msg = str0m::ice::StunMessage::parse(contents).ok()?;
    let (local, _) = msg.split_username()?;
    local.split_once('+')?.0.parse().ok()
}

/// The SFU state machine for a set of rooms.
pub struct Sfu {
    config: SfuConfig,
    names: HashMap<RoomName, RoomId>,
    rooms: HashMap<RoomId, Room>,
    /// Which room each connection is in (or at the door of).
    directory: HashMap<ParticipantId, RoomId>,
    endpoint: Endpoint,
    timers: Timers,
    out: Outbox,
    /// Scratch: connections a room let go of during one call.
    departed: Vec<ParticipantId>,
    /// Scratch: the timers one `handle_timeout` drives.
    due: Vec<Key>,
    next_room: u64,
    /// Each open connection's address, for the per-address limits only.
    addresses: HashMap<ParticipantId, AddrKey>,
    /// When they are next swept, if any are kept.
    sweep_at: Option<Instant>,
}

impl Sfu {
    /// A new SFU with no rooms.
    pub fn new(config: SfuConfig) -> Self {
        Sfu {
            config,
            names: HashMap::new(),
            rooms: HashMap::new(),
            directory: HashMap::new(),
            endpoint: Endpoint::default(),
            timers: Timers::default(),
            out: Outbox::default(),
            departed: Vec::new(),
            due: Vec::new(),
            next_room: 1,
            addresses: HashMap::new(),
            sweep_at: None,
        }
    }

    /// A connection opened from `ip`. Optional: a connection the shell says
    /// nothing about is not limited per address. The address is kept only
    /// as an [`AddrKey`], and only until the connection closes.
    pub fn handle_connect(&mut self, pid: ParticipantId, ip: IpAddr) {
        self.addresses.insert(pid, AddrKey::new(ip));
    }

    /// Client addresses the shard remembers now: open connections' and
    /// those whose guesses still count (for tests of "nothing is kept").
    pub fn remembered_addresses(&self) -> usize {
        self.addresses.len() + self.config.guess_limits.len()
    }

    /// Number of rooms in memory.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Number of participants in memory (joined, in any room).
    pub fn participant_count(&self) -> usize {
        self.rooms.values().map(Room::len).sum()
    }

    /// Whether a room of this name exists.
    pub fn has_room(&self, name: &str) -> bool {
        RoomName::parse(name).is_ok_and(|n| self.names.contains_key(&n))
    }

    /// Whether the meeting of this name is being streamed live, for the
    /// prejoin screen (the stream is public anyway).
    pub fn is_streaming(&self, name: &str) -> bool {
        RoomName::parse(name)
            .ok()
            .and_then(|n| self.names.get(&n))
            .and_then(|id| self.rooms.get(id))
            .is_some_and(Room::is_streaming)
    }

    /// What the shell learnt about a stream's worker.
    pub fn handle_stream(&mut self, key: StreamKey, ev: StreamEvent, now: Instant) {
        self.with_room(key.room, now, |r, cx| r.on_stream_event(key, ev, cx));
    }

    /// Next output for the shell, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop()
    }

    /// When [`Sfu::handle_timeout`] should next be called. After a
    /// forwarded packet this is "now": call `handle_timeout` once the
    /// datagrams at hand are handled, so forwarded packets leave together.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.timers.next()
    }

    /// A signaling message from connection `pid`. On an `Err` that closes
    /// (see [`SignalError::close_code`]) the connection is forgotten and
    /// its `error` and `Close` are queued; otherwise a `refused` is.
    pub fn handle_signal(&mut self, pid: ParticipantId, msg: ClientMsg, now: Instant) -> Result<(), SignalError> {
        let request = msg.type_name();
        let res = match msg {
            ClientMsg::Join { version, room, name, audio_muted, video_muted, password, e2ee } => {
                let info = ParticipantInfo {
                    id: pid,
                    name: clean_name(name.as_deref()),
                    audio_muted,
                    video_muted,
                    moderator: false,
                    hand_raised: false,
                    screen_sharing: false,
                };
                let res = self.join(version, &room, Joiner { pid, info, password, e2ee }, now);
                // Forget addresses whose guesses no longer count, later.
                if self.sweep_at.is_none() && !self.config.guess_limits.is_empty() {
                    let at = now + GUESS_WINDOW;
                    self.sweep_at = Some(at);
                    self.timers.schedule(Key::Sweep, at);
                }
                res
            }
            other => match self.directory.get(&pid).copied() {
                Some(room) => {
                    self.with_room(room, now, |r, cx| r.handle(pid, other, cx)).unwrap_or(Err(SignalError::UNEXPECTED))
                }
                None => Err(SignalError::UNEXPECTED),
            },
        };
        if let Err(e) = &res {
            match e.close_code() {
                Some(code) => {
                    debug!(participant = %pid, error = %e, "signaling error");
                    self.forget(pid, now);
                    self.out.close_with(pid, code, e.to_msg(request));
                }
                None => self.out.signal(pid, e.to_msg(request)),
            }
        }
        res
    }

    /// A `join` of protocol `version` into the room named `room`.
    fn join(&mut self, version: u32, room: &str, joiner: Joiner, now: Instant) -> Result<(), SignalError> {
        let pid = joiner.pid;
        // A second `join` only from someone answering the password prompt,
        // and then it may name another room.
        let current = self.directory.get(&pid).copied();
        if current.is_some_and(|c| !self.rooms.get(&c).is_some_and(|r| r.may_knock_again(pid))) {
            return Err(SignalError::UNEXPECTED);
        }
        if version != PROTOCOL_VERSION {
            return Err(SignalError::Close(CloseCode::UnsupportedVersion));
        }
        let name = RoomName::parse(room)?;
        if let Some(c) = current.filter(|c| self.names.get(&name) != Some(c)) {
            self.with_room(c, now, |r, cx| r.leave_door(pid, cx));
        }
        let id = match self.names.get(&name) {
            Some(id) => *id,
            None => {
                // Someone who comes back with the password (after the room
                // emptied, or the server restarted) opens it protected by
                // that password again, so the others get in with it and a
                // stranger does not.
                let mut room = Room::new(RoomId::new(self.config.node, self.next_room), name.clone(), joiner.e2ee);
                if joiner.password.is_some() {
                    room.set_password(joiner.password.clone())?;
                }
                let id = room.id();
                self.next_room += 1;
                self.names.insert(name, id);
                self.rooms.insert(id, room);
                id
            }
        };
        self.directory.insert(pid, id);
        let addr = self.addresses.get(&pid).copied();
        let res = self.with_room(id, now, |r, cx| {
            if r.is_empty() {
                r.enter(pid, joiner.info, cx);
                Ok(())
            } else {
                r.knock(joiner, addr, cx)
            }
        });
        res.unwrap_or(Err(SignalError::UNEXPECTED))
    }

    /// Takes a connection out of its room, or off its door, silently.
    fn forget(&mut self, pid: ParticipantId, now: Instant) {
        let Some(room) = self.directory.get(&pid).copied() else { return };
        self.with_room(room, now, |r, cx| if r.is_member(pid) { r.remove(pid, cx) } else { r.leave_door(pid, cx) });
        self.directory.remove(&pid);
    }

    /// Lends room `room` and the shard's shared parts to `f`, then settles
    /// what the call changed (departures, an emptied room). None if there
    /// is no such room.
    fn with_room<R>(&mut self, room: RoomId, now: Instant, f: impl FnOnce(&mut Room, &mut Cx<'_>) -> R) -> Option<R> {
        let result = self.rooms.get_mut(&room).map(|r| {
            let mut cx = Cx {
                now,
                out: &mut self.out,
                timers: &mut self.timers,
                endpoint: &mut self.endpoint,
                candidates: &self.config.candidates,
                tcp_candidates: &self.config.tcp_candidates,
                departed: &mut self.departed,
                stream_unavailable: self.config.stream_unavailable.as_deref(),
                guessers: &self.config.guess_limits,
                stream_limits: &self.config.stream_limits,
                addresses: &self.addresses,
                shard: self.config.shard,
            };
            f(r, &mut cx)
        });
        self.settle(room, now);
        result
    }

    /// After a call into `room`: forget who it let go of; close it if empty.
    fn settle(&mut self, room: RoomId, now: Instant) {
        // A room only empties when someone leaves it: a call that let nobody
        // go (every datagram, nearly every timer) has nothing to settle.
        if self.departed.is_empty() {
            return;
        }
        for pid in self.departed.drain(..) {
            if self.directory.get(&pid) == Some(&room) {
                self.directory.remove(&pid);
            }
        }
        if !self.rooms.get(&room).is_some_and(Room::is_empty) {
            return;
        }
        if let Some(mut r) = self.rooms.remove(&room) {
            self.names.remove(r.name());
            let mut cx = Cx {
                now,
                out: &mut self.out,
                timers: &mut self.timers,
                endpoint: &mut self.endpoint,
                candidates: &self.config.candidates,
                tcp_candidates: &self.config.tcp_candidates,
                departed: &mut self.departed,
                stream_unavailable: self.config.stream_unavailable.as_deref(),
                guessers: &self.config.guess_limits,
                stream_limits: &self.config.stream_limits,
                addresses: &self.addresses,
                shard: self.config.shard,
            };
            r.close(&mut cx);
            for pid in self.departed.drain(..) {
                self.directory.remove(&pid);
            }
        }
    }

    /// The connection closed (or the shell gave up on it).
    pub fn handle_disconnect(&mut self, pid: ParticipantId, now: Instant) {
        self.forget(pid, now);
        self.addresses.remove(&pid);
    }

    /// A datagram arrived, over UDP or ICE-TCP ([`Received`]). Garbage is
    /// dropped. What the core sends back to a peer that reached it over
    /// TCP must go over that connection.
    pub fn handle_receive(&mut self, d: Received<'_>, now: Instant) {
        // A known address is one lookup. A new one is claimed only by a STUN
        // request naming a session's ICE username (looked up, not searched
        // for) that the session accepts; anything else costs one parse.
        let (route, claim) = match self.endpoint.route(d.source, now) {
            Some(r) => (r, false),
            None => match self.endpoint.named_by_stun(d.contents) {
                Some(r) => (r, true),
                None => return,
            },
        };
        self.with_room(route.room, now, |r, cx| r.receive(route.pid, d, claim, cx));
    }

    /// Time passed: drive every session and room whose deadline is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Take the due keys first: a session that asks again for `now` is
        // driven by the next call, never in a loop inside this one.
        let mut due = std::mem::take(&mut self.due);
        while let Some(key) = self.timers.pop_due(now) {
            due.push(key);
        }
        for key in due.drain(..) {
            match key {
                Key::Session(pid) => {
                    if let Some(room) = self.directory.get(&pid).copied() {
                        self.with_room(room, now, |r, cx| r.on_timer(pid, cx));
                    }
                }
                Key::Room(room) => {
                    self.with_room(room, now, |r, cx| r.on_room_timer(cx));
                }
                Key::Sweep => {
                    self.sweep_at = self.config.guess_limits.sweep(now);
                    if let Some(at) = self.sweep_at {
                        self.timers.schedule(Key::Sweep, at);
                    }
                }
            }
        }
        self.due = due;
    }
}

/// Combining marks kept on one character: enough for any script, too few
/// to stack a name over its neighbours' lines ("Zalgo").
const MAX_MARKS_PER_CHAR: usize = 3;

/// A display name as others will see it: no control or format characters
/// (bidi overrides that reverse how it reads, zero-width characters that
/// make two names look alike, tags), no line breaks, every run of spaces
/// one plain space, at most [`MAX_MARKS_PER_CHAR`] combining marks on a
/// character, trimmed, at most [`MAX_NAME_CHARS`] characters.
fn clean_name(name: Option<&str>) -> Option<String> {
    use unicode_properties::{GeneralCategory as G, GeneralCategoryGroup, UnicodeGeneralCategory};
    let mut out = String::new();
    let (mut chars, mut marks, mut space) = (0, 0, false);
    for c in name?.chars() {
        let category = c.general_category();
        match category {
            G::Control | G::Format | G::Surrogate | G::PrivateUse | G::Unassigned => continue,
            G::SpaceSeparator | G::LineSeparator | G::ParagraphSeparator => {
                space = !out.is_empty();
                continue;
            }
            _ => {}
        }
        if c.general_category_group() == GeneralCategoryGroup::Mark {
            if out.is_empty() || space || marks >= MAX_MARKS_PER_CHAR {
                continue;
            }
            marks += 1;
            out.push(c);
            continue;
        }
        if chars + usize::from(space) + 1 > MAX_NAME_CHARS {
            break;
        }
        if space {
            out.push(' ');
            chars += 1;
            space = false;
        }
        out.push(c);
        chars += 1;
        marks = 0;
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_what_could_disguise_them() {
        // Bidi overrides and isolates, zero-width characters, BOM, tags.
        assert_eq!(clean_name(Some("Ad\u{202e}nimda")), Some("Adnimda".to_string()));
        assert_eq!(clean_name(Some("\u{2067}Eve\u{2069}")), Some("Eve".to_string()));
        assert_eq!(clean_name(Some("Bo\u{200b}b\u{200d}\u{feff}")), Some("Bob".to_string()));
        assert_eq!(clean_name(Some("Eve\u{e0041}")), Some("Eve".to_string()));
        // Line breaks and odd spaces become one plain space.
        assert_eq!(clean_name(Some("Ada\u{2028}\u{3000}  Lovelace\n")), Some("Ada Lovelace".to_string()));
        // Letters with their accents stay; a stack of marks does not.
        assert_eq!(clean_name(Some("Zoë Ångström")), Some("Zoë Ångström".to_string()));
        assert_eq!(
            clean_name(Some("Z\u{301}\u{301}\u{301}\u{301}\u{301}a")),
            Some("Z\u{301}\u{301}\u{301}a".to_string())
        );
        assert_eq!(clean_name(Some("\u{301}\u{301}")), None);
        assert_eq!(clean_name(Some("\u{202e}\u{200b}")), None);
        // Scripts and emoji are names too.
        assert_eq!(clean_name(Some("李小龍")), Some("李小龍".to_string()));
        assert_eq!(clean_name(Some("Ana 🎉")), Some("Ana 🎉".to_string()));
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name(Some("  Ada\u{0007} ")), Some("Ada".to_string()));
        assert_eq!(clean_name(Some("   ")), None);
        assert_eq!(clean_name(None), None);
        assert_eq!(clean_name(Some(&"x".repeat(100))).map(|n| n.chars().count()), Some(MAX_NAME_CHARS));
    }
}
