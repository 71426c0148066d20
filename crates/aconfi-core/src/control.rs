//! Who may come in and what moderators may do: password (throttled,
//! compared in constant time), lobby, lock, mute, remove, end, moderator
//! hand-over; plus chat and raised hands. Every rule is enforced here, in
//! the server, whatever a client's buttons show.
//!
//! Order at the door: a full or locked room refuses; then a joiner whose
//! link does not match the room's end-to-end encryption (a key for a plain
//! room, or none for an encrypted one); then the password; then the lobby.
//! So only someone who knows the password can knock.
//!
//! In an end-to-end encrypted room the server relays the clients' key
//! exchange (`e2ee`) and sealed chat as opaque strings it cannot read.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tracing::info;

use crate::ids::ParticipantId;
use crate::rate::TokenBucket;
use crate::protocol::{
    ClientMsg, CloseCode, ParticipantInfo, ServerMsg, MAX_CHAT_BYTES, MAX_E2EE_BYTES, MAX_PASSWORD_CHARS,
    MAX_SEALED_CHAT_BYTES,
};
use crate::room_name::RoomName;
use crate::sfu::{close_reason, Output, Sfu, SignalError, MAX_PARTICIPANTS_PER_ROOM};

/// Wrong guesses allowed per connection in [`GUESS_WINDOW`].
pub const MAX_GUESSES_PER_CONNECTION: usize = 5;
/// Wrong guesses allowed per room (from all connections) in [`GUESS_WINDOW`].
pub const MAX_GUESSES_PER_ROOM: usize = 20;
/// The window the guess limits count over.
pub const GUESS_WINDOW: Duration = Duration::from_secs(60);
/// Chat: a burst of this many messages…
const CHAT_BURST: f64 = 5.0;
/// …then this many per second.
const CHAT_PER_SECOND: f64 = 1.0;
/// Key exchange: bytes a participant may relay at once (a new key wrapped
/// for each of a full room, several times over)…
const E2EE_BURST_BYTES: f64 = 256.0 * 1024.0;
/// …then this many bytes per second.
const E2EE_BYTES_PER_SECOND: f64 = 64.0 * 1024.0;

/// A connection at the door.
pub(crate) struct Pending {
    room: RoomName,
    info: ParticipantInfo,
    stage: Stage,
    /// This connection's wrong guesses in the window.
    failures: VecDeque<Instant>,
    /// Its link had an end-to-end key.
    e2ee: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Password,
    Lobby,
}

/// A fresh chat rate limit.
pub(crate) fn chat_bucket(now: Instant) -> TokenBucket {
    TokenBucket::new(CHAT_BURST, CHAT_PER_SECOND, now)
}

/// A fresh byte budget for relayed key exchange.
pub(crate) fn e2ee_bucket(now: Instant) -> TokenBucket {
    TokenBucket::new(E2EE_BURST_BYTES, E2EE_BYTES_PER_SECOND, now)
}

/// Drops entries older than the window.
fn prune(q: &mut VecDeque<Instant>, now: Instant) {
    while q.front().is_some_and(|t| now.saturating_duration_since(*t) >= GUESS_WINDOW) {
        q.pop_front();
    }
}

/// Constant time for equal lengths; the length itself may leak, which
/// says little about a password.
fn password_matches(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

const NOT_MODERATOR: SignalError = SignalError::Refused("only moderators may do that");
const NOT_HERE: SignalError = SignalError::Refused("that participant is not in this meeting");

impl Sfu {
    /// A `join`: capacity, lock, end-to-end encryption, password and lobby
    /// are checked in that order.
    pub(crate) fn request_join(
        &mut self,
        pid: ParticipantId,
        room: RoomName,
        info: ParticipantInfo,
        password: Option<String>,
        e2ee: bool,
        now: Instant,
    ) -> Result<(), SignalError> {
        if self.pending.get(&pid).is_some_and(|p| p.stage == Stage::Lobby) {
            return Err(SignalError::Unexpected);
        }
        let Some(r) = self.rooms.get_mut(&room) else {
            self.pending.remove(&pid);
            self.join(pid, room, info, e2ee, now);
            return Ok(());
        };
        if r.members.len() >= MAX_PARTICIPANTS_PER_ROOM {
            return Err(SignalError::RoomFull);
        }
        if r.locked {
            return Err(SignalError::Locked);
        }
        // Never a silent downgrade or a joiner who could only see noise.
        match (r.e2ee, e2ee) {
            (true, false) => return Err(SignalError::E2eeRequired),
            (false, true) => return Err(SignalError::NotE2ee),
            _ => {}
        }
        let entry = self.pending.entry(pid).or_insert_with(|| Pending {
            room: room.clone(),
            info: info.clone(),
            stage: Stage::Password,
            failures: VecDeque::new(),
            e2ee,
        });
        entry.room = room.clone();
        entry.info = info.clone();
        entry.e2ee = e2ee;
        if let Some(expected) = &r.password {
            prune(&mut entry.failures, now);
            prune(&mut r.wrong_guesses, now);
            let throttled = entry.failures.len() >= MAX_GUESSES_PER_CONNECTION
                || r.wrong_guesses.len() >= MAX_GUESSES_PER_ROOM;
            if throttled {
                // Wait until the oldest counted guess leaves the window.
                let oldest = if entry.failures.len() >= MAX_GUESSES_PER_CONNECTION {
                    entry.failures.front()
                } else {
                    r.wrong_guesses.front()
                };
                let wait = oldest.map(|t| GUESS_WINDOW.saturating_sub(now.saturating_duration_since(*t)));
                let retry_after_ms = Some(wait.unwrap_or(GUESS_WINDOW).as_millis() as u64);
                self.out.push_back(Output::Signal(pid, ServerMsg::PasswordRequired { wrong: false, retry_after_ms }));
                return Ok(());
            }
            match password {
                Some(given) if password_matches(&given, expected) => {}
                Some(_) => {
                    entry.failures.push_back(now);
                    r.wrong_guesses.push_back(now);
                    info!(room = %r.id, "wrong room password");
                    self.out.push_back(Output::Signal(pid, ServerMsg::PasswordRequired { wrong: true, retry_after_ms: None }));
                    return Ok(());
                }
                None => {
                    self.out.push_back(Output::Signal(pid, ServerMsg::PasswordRequired { wrong: false, retry_after_ms: None }));
                    return Ok(());
                }
            }
        }
        if r.lobby {
            entry.stage = Stage::Lobby;
            self.out.push_back(Output::Signal(pid, ServerMsg::InLobby {}));
            self.to_moderators(&room, ServerMsg::LobbyRequest { id: pid, name: info.name.clone() });
            return Ok(());
        }
        self.pending.remove(&pid);
        self.join(pid, room, info, e2ee, now);
        Ok(())
    }

    /// Forgets a connection at the door (gone, admitted or refused).
    pub(crate) fn drop_pending(&mut self, pid: ParticipantId) {
        if let Some(p) = self.pending.remove(&pid) {
            if p.stage == Stage::Lobby {
                self.to_moderators(&p.room, ServerMsg::LobbyLeft { id: pid });
            }
        }
    }

    /// Sends away everyone at the door of `room`.
    pub(crate) fn close_pending_of(&mut self, room: &RoomName, code: CloseCode) {
        let ids: Vec<ParticipantId> =
            self.pending.iter().filter(|(_, p)| &p.room == room).map(|(id, _)| *id).collect();
        for id in ids {
            self.pending.remove(&id);
            self.close_with(id, code);
        }
    }

    fn close_with(&mut self, pid: ParticipantId, code: CloseCode) {
        self.out.push_back(Output::Signal(
            pid,
            ServerMsg::Error { code: code.code(), message: close_reason(code).to_string() },
        ));
        self.out.push_back(Output::Close(pid, code));
    }

    /// After someone left: if no moderator remains, the one present
    /// longest becomes moderator.
    pub(crate) fn ensure_moderator(&mut self, room: &RoomName) {
        let Some(r) = self.rooms.get(room) else { return };
        let members = r.members.clone();
        if members.iter().any(|m| self.participants.get(m).is_some_and(|p| p.info.moderator)) {
            return;
        }
        let Some(first) = members.first().copied() else { return };
        if let Some(p) = self.participants.get_mut(&first) {
            p.info.moderator = true;
            let info = p.info.clone();
            self.broadcast(room, None, ServerMsg::ParticipantUpdated { participant: info });
        }
    }

    fn to_moderators(&mut self, room: &RoomName, msg: ServerMsg) {
        let Some(r) = self.rooms.get(room) else { return };
        for m in &r.members {
            if self.participants.get(m).is_some_and(|p| p.info.moderator) {
                self.out.push_back(Output::Signal(*m, msg.clone()));
            }
        }
    }

    /// The caller's room, if the caller is a participant and a moderator.
    fn moderator_room(&self, pid: ParticipantId) -> Result<RoomName, SignalError> {
        let p = self.participants.get(&pid).ok_or(SignalError::Unexpected)?;
        if !p.info.moderator {
            return Err(NOT_MODERATOR);
        }
        Ok(p.room.clone())
    }

    /// Sends `msg` from `from` to `to` alone (told it is private), which
    /// must be someone else in `room`; or, without `to`, to everyone else in
    /// `room`.
    fn relay(
        &mut self,
        from: ParticipantId,
        room: &RoomName,
        to: Option<ParticipantId>,
        not_to_self: &'static str,
        msg: impl FnOnce(bool) -> ServerMsg,
    ) -> Result<(), SignalError> {
        match to {
            Some(t) if t == from => Err(SignalError::Refused(not_to_self)),
            Some(t) => {
                self.member_of(room, t)?;
                self.out.push_back(Output::Signal(t, msg(true)));
                Ok(())
            }
            None => {
                self.broadcast(room, Some(from), msg(false));
                Ok(())
            }
        }
    }

    fn room_of(&self, pid: ParticipantId) -> Option<&crate::sfu::Room> {
        self.participants.get(&pid).and_then(|p| self.rooms.get(&p.room))
    }

    fn member_of(&self, room: &RoomName, id: ParticipantId) -> Result<(), SignalError> {
        match self.participants.get(&id) {
            Some(p) if &p.room == room => Ok(()),
            _ => Err(NOT_HERE),
        }
    }

    fn room_updated(&mut self, room: &RoomName) {
        if let Some(state) = self.rooms.get(room).map(|r| r.state()) {
            self.broadcast(room, None, ServerMsg::RoomUpdated { room: state });
        }
    }

    fn update_participant(&mut self, id: ParticipantId, f: impl FnOnce(&mut crate::participant::Participant)) {
        let Some(p) = self.participants.get_mut(&id) else { return };
        f(p);
        let (info, room) = (p.info.clone(), p.room.clone());
        self.broadcast(&room, None, ServerMsg::ParticipantUpdated { participant: info });
    }

    fn mute(&mut self, by: ParticipantId, id: ParticipantId) {
        self.update_participant(id, |p| {
            p.info.audio_muted = true;
            p.force_muted = true;
        });
        self.out.push_back(Output::Signal(id, ServerMsg::MutedBy { by }));
    }

    fn admit(&mut self, id: ParticipantId, now: Instant) {
        if let Some(p) = self.pending.remove(&id) {
            self.to_moderators(&p.room, ServerMsg::LobbyLeft { id });
            self.join(id, p.room, p.info, p.e2ee, now);
        }
    }

    fn waiting_in(&self, room: &RoomName, id: ParticipantId) -> Result<(), SignalError> {
        match self.pending.get(&id) {
            Some(p) if &p.room == room && p.stage == Stage::Lobby => Ok(()),
            _ => Err(SignalError::Refused("nobody by that id waits in the lobby")),
        }
    }

    /// Chat, hands and the moderator's controls.
    pub(crate) fn handle_control(&mut self, pid: ParticipantId, msg: ClientMsg, now: Instant) -> Result<(), SignalError> {
        match msg {
            ClientMsg::Chat { text, to, sealed } => {
                let e2ee_room = self.room_of(pid).is_some_and(|r| r.e2ee);
                let p = self.participants.get_mut(&pid).ok_or(SignalError::Unexpected)?;
                match (e2ee_room, sealed) {
                    (true, false) => {
                        return Err(SignalError::Refused("this meeting is end-to-end encrypted: chat must be sealed"))
                    }
                    (false, true) => return Err(SignalError::Refused("sealed chat needs an end-to-end encrypted meeting")),
                    _ => {}
                }
                if text.len() > if sealed { MAX_SEALED_CHAT_BYTES } else { MAX_CHAT_BYTES } {
                    return Err(SignalError::Refused("chat message too long (at most 4 KiB)"));
                }
                if text.trim().is_empty() {
                    return Err(SignalError::Refused("empty chat message"));
                }
                if !p.chat.take(now) {
                    return Err(SignalError::Refused("too many chat messages; wait a moment"));
                }
                let room = p.room.clone();
                self.relay(pid, &room, to, "cannot send a private message to yourself", |private| {
                    ServerMsg::Chat { from: pid, text, private, sealed }
                })
            }
            ClientMsg::E2ee { to, data } => {
                let e2ee_room = self.room_of(pid).is_some_and(|r| r.e2ee);
                let p = self.participants.get_mut(&pid).ok_or(SignalError::Unexpected)?;
                if !e2ee_room {
                    return Err(SignalError::Refused("key exchange needs an end-to-end encrypted meeting"));
                }
                if data.len() > MAX_E2EE_BYTES {
                    return Err(SignalError::Refused("key exchange message too long (at most 64 KiB)"));
                }
                if !p.e2ee_bytes.take_n(data.len() as f64, now) {
                    return Err(SignalError::Refused("too much key exchange; wait a moment"));
                }
                let room = p.room.clone();
                self.relay(pid, &room, to, "cannot send key exchange to yourself", |_| ServerMsg::E2ee { from: pid, data })
            }
            ClientMsg::RaiseHand { raised } => {
                if !self.participants.contains_key(&pid) {
                    return Err(SignalError::Unexpected);
                }
                self.update_participant(pid, |p| p.info.hand_raised = raised);
                Ok(())
            }
            ClientMsg::GrantModerator { id } => {
                let room = self.moderator_room(pid)?;
                self.member_of(&room, id)?;
                self.update_participant(id, |p| p.info.moderator = true);
                Ok(())
            }
            ClientMsg::Mute { id } => {
                let room = self.moderator_room(pid)?;
                self.member_of(&room, id)?;
                self.mute(pid, id);
                Ok(())
            }
            ClientMsg::MuteAll {} => {
                let room = self.moderator_room(pid)?;
                let members = self.rooms.get(&room).map(|r| r.members.clone()).unwrap_or_default();
                for m in members.into_iter().filter(|m| *m != pid) {
                    self.mute(pid, m);
                }
                Ok(())
            }
            ClientMsg::AskUnmute { id } => {
                let room = self.moderator_room(pid)?;
                self.member_of(&room, id)?;
                self.out.push_back(Output::Signal(id, ServerMsg::UnmuteRequest { by: pid }));
                Ok(())
            }
            ClientMsg::Remove { id } => {
                let room = self.moderator_room(pid)?;
                self.member_of(&room, id)?;
                if id == pid {
                    return Err(SignalError::Refused("leave instead of removing yourself"));
                }
                info!(participant = %id, by = %pid, "removed by moderator");
                self.remove(id, now);
                self.close_with(id, CloseCode::Removed);
                Ok(())
            }
            ClientMsg::SetLock { locked } => {
                let room = self.moderator_room(pid)?;
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.locked = locked;
                }
                self.room_updated(&room);
                Ok(())
            }
            ClientMsg::SetPassword { password } => {
                let room = self.moderator_room(pid)?;
                let password = match password {
                    None => None,
                    Some(p) if p.is_empty() || p.chars().count() > MAX_PASSWORD_CHARS => {
                        return Err(SignalError::Refused("a password has 1 to 128 characters"));
                    }
                    Some(p) => Some(p),
                };
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.password = password;
                    r.wrong_guesses.clear();
                }
                self.room_updated(&room);
                Ok(())
            }
            ClientMsg::SetLobby { enabled } => {
                let room = self.moderator_room(pid)?;
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.lobby = enabled;
                }
                if !enabled {
                    let waiting: Vec<ParticipantId> = self
                        .pending
                        .iter()
                        .filter(|(_, p)| p.room == room && p.stage == Stage::Lobby)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in waiting {
                        self.admit(id, now);
                    }
                }
                self.room_updated(&room);
                Ok(())
            }
            ClientMsg::Admit { id } => {
                let room = self.moderator_room(pid)?;
                self.waiting_in(&room, id)?;
                self.admit(id, now);
                Ok(())
            }
            ClientMsg::Refuse { id } => {
                let room = self.moderator_room(pid)?;
                self.waiting_in(&room, id)?;
                self.pending.remove(&id);
                self.to_moderators(&room, ServerMsg::LobbyLeft { id });
                self.close_with(id, CloseCode::LobbyRefused);
                Ok(())
            }
            ClientMsg::EndMeeting {} => {
                let room = self.moderator_room(pid)?;
                let members = self.rooms.get(&room).map(|r| r.members.clone()).unwrap_or_default();
                info!(by = %pid, "meeting ended by moderator");
                for m in members {
                    self.remove(m, now);
                    self.close_with(m, CloseCode::Ended);
                }
                self.close_pending_of(&room, CloseCode::Ended);
                Ok(())
            }
            ClientMsg::Join { .. }
            | ClientMsg::Offer { .. }
            | ClientMsg::Answer { .. }
            | ClientMsg::MediaState { .. }
            | ClientMsg::Leave {} => Err(SignalError::Unexpected),
        }
    }
}
