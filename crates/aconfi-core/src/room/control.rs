//! What members may do besides media: chat, raised hands, relayed key
//! exchange, and the moderator's controls (mute, remove, lock, password,
//! lobby, end). Every rule is enforced here, in the server, whatever a
//! client's buttons show.
//!
//! In an end-to-end encrypted room the server relays the clients' key
//! exchange (`e2ee`) and sealed chat as opaque strings it cannot read.

use tracing::debug;

use super::{Cx, Room, MAX_PARTICIPANTS_PER_ROOM};
use crate::error::SignalError;
use crate::ids::ParticipantId;
use crate::output::Outbox;
use crate::participant::Participant;
use crate::protocol::{ClientMsg, CloseCode, ServerMsg, MAX_CHAT_BYTES, MAX_E2EE_BYTES, MAX_SEALED_CHAT_BYTES};

const NOT_MODERATOR: SignalError = SignalError::Refused("only moderators may do that");
const NOT_HERE: SignalError = SignalError::Refused("that participant is not in this meeting");
const NOT_CONFIRMED: SignalError = SignalError::Refused(
    "in an end-to-end encrypted meeting only someone whose link the others confirmed may moderate",
);
const NOT_IN_LOBBY: SignalError = SignalError::Refused("nobody by that id waits in the lobby");

impl Room {
    /// Chat, hands, key exchange and the moderator's controls.
    pub(super) fn handle_control(
        &mut self,
        pid: ParticipantId,
        msg: ClientMsg,
        cx: &mut Cx<'_>,
    ) -> Result<(), SignalError> {
        let e2ee = self.e2ee;
        let now = cx.now;
        let confirmed = self.is_confirmed(pid);
        let me = self.members.get_mut(&pid).ok_or(SignalError::UNEXPECTED)?;
        match msg {
            ClientMsg::Chat { text, to, sealed } => {
                match (e2ee, sealed) {
                    (true, false) => {
                        return Err(SignalError::Refused("this meeting is end-to-end encrypted: chat must be sealed"))
                    }
                    (false, true) => {
                        return Err(SignalError::Refused("sealed chat needs an end-to-end encrypted meeting"))
                    }
                    _ => {}
                }
                if text.len() > if sealed { MAX_SEALED_CHAT_BYTES } else { MAX_CHAT_BYTES } {
                    return Err(SignalError::Refused("chat message too long (at most 4 KiB)"));
                }
                if text.trim().is_empty() {
                    return Err(SignalError::Refused("empty chat message"));
                }
                if !me.take_chat(now) {
                    return Err(SignalError::Refused("too many chat messages; wait a moment"));
                }
                self.relay(cx.out, pid, to, "cannot send a private message to yourself", |private| ServerMsg::Chat {
                    from: pid,
                    text,
                    private,
                    sealed,
                })
            }
            ClientMsg::E2ee { to, data } => {
                if !e2ee {
                    return Err(SignalError::Refused("key exchange needs an end-to-end encrypted meeting"));
                }
                if data.len() > MAX_E2EE_BYTES {
                    return Err(SignalError::Refused("key exchange message too long (at most 64 KiB)"));
                }
                if !me.take_e2ee_bytes(data.len(), now) {
                    return Err(SignalError::Refused("too much key exchange; wait a moment"));
                }
                if !confirmed && !self.confirmations.take_unconfirmed(pid) {
                    return Err(SignalError::Refused(
                        "no key exchange relayed until someone in the meeting confirms your link",
                    ));
                }
                self.relay(cx.out, pid, to, "cannot send key exchange to yourself", |_| ServerMsg::E2ee {
                    from: pid,
                    data,
                })
            }
            ClientMsg::E2eeConfirm { id } => {
                if !e2ee {
                    return Err(SignalError::Refused("key exchange needs an end-to-end encrypted meeting"));
                }
                if id == pid {
                    return Err(SignalError::Refused("cannot confirm your own link"));
                }
                self.member(id)?;
                self.confirmations.confirm(pid, id);
                Ok(())
            }
            ClientMsg::RaiseHand { raised } => {
                self.update(cx.out, pid, |p| p.set_hand(raised));
                Ok(())
            }
            // Everything below is for moderators only, and in an encrypted
            // meeting for those whose link the others confirmed.
            _ if !me.is_moderator() => Err(NOT_MODERATOR),
            _ if !confirmed => Err(NOT_CONFIRMED),
            ClientMsg::GrantModerator { id } => {
                self.member(id)?;
                if !self.is_confirmed(id) {
                    return Err(NOT_CONFIRMED);
                }
                self.update(cx.out, id, |p| p.set_moderator(true));
                Ok(())
            }
            ClientMsg::Mute { id } => {
                self.member(id)?;
                self.mute(cx.out, pid, id);
                Ok(())
            }
            ClientMsg::MuteAll {} => {
                let others: Vec<ParticipantId> = self.members.keys().copied().filter(|m| *m != pid).collect();
                for m in others {
                    self.mute(cx.out, pid, m);
                }
                Ok(())
            }
            ClientMsg::AskUnmute { id } => {
                self.member(id)?;
                cx.out.signal(id, ServerMsg::UnmuteRequest { by: pid });
                Ok(())
            }
            ClientMsg::Remove { id } => {
                self.member(id)?;
                if id == pid {
                    return Err(SignalError::Refused("leave instead of removing yourself"));
                }
                debug!(participant = %id, by = %pid, "removed by moderator");
                self.remove(id, cx);
                cx.out.close(id, CloseCode::Removed);
                Ok(())
            }
            ClientMsg::SetLock { locked } => {
                self.door.locked = locked;
                self.room_updated(cx.out);
                Ok(())
            }
            ClientMsg::SetPassword { password } => {
                self.door.set_password(password)?;
                self.room_updated(cx.out);
                Ok(())
            }
            ClientMsg::SetLobby { enabled } => {
                self.door.lobby = enabled;
                // Moderators clear their list on this (no `lobby_left` for
                // each: a full lobby would flood them).
                self.room_updated(cx.out);
                if !enabled {
                    // Longest waiting first, as far as the room has space
                    // and is open; the others are told why not.
                    for id in self.door.lobby_ids() {
                        let refusal = if self.door.locked {
                            Some(CloseCode::Locked)
                        } else if self.members.len() >= MAX_PARTICIPANTS_PER_ROOM {
                            Some(CloseCode::RoomFull)
                        } else {
                            None
                        };
                        match refusal {
                            None => self.admit(id, false, cx),
                            Some(code) => {
                                self.door.leave(id);
                                cx.departed.push(id);
                                cx.out.close(id, code);
                            }
                        }
                    }
                }
                Ok(())
            }
            ClientMsg::Admit { id } => {
                if !self.door.in_lobby(id) {
                    return Err(NOT_IN_LOBBY);
                }
                if self.door.locked {
                    return Err(SignalError::Refused("the room is locked: unlock it to admit anyone"));
                }
                if self.members.len() >= MAX_PARTICIPANTS_PER_ROOM {
                    return Err(SignalError::Refused("the room is full"));
                }
                self.admit(id, true, cx);
                Ok(())
            }
            ClientMsg::Refuse { id } => {
                if !self.door.in_lobby(id) {
                    return Err(NOT_IN_LOBBY);
                }
                self.leave_door(id, cx);
                cx.out.close(id, CloseCode::LobbyRefused);
                Ok(())
            }
            ClientMsg::EndMeeting {} => {
                debug!(by = %pid, "meeting ended by moderator");
                let all: Vec<ParticipantId> = self.members.keys().copied().collect();
                for m in all {
                    self.remove(m, cx);
                    cx.out.close(m, CloseCode::Ended);
                }
                // The room is empty now: the shard closes it, and with it
                // sends away anyone still at the door.
                Ok(())
            }
            ClientMsg::StreamStart { url } => self.start_stream(pid, url, cx),
            ClientMsg::StreamStop {} => self.stop_stream(cx),
            ClientMsg::Join { .. }
            | ClientMsg::Offer { .. }
            | ClientMsg::Answer { .. }
            | ClientMsg::MediaState { .. }
            | ClientMsg::View { .. }
            | ClientMsg::Leave {} => Err(SignalError::UNEXPECTED),
        }
    }

    /// Sends `msg` from `from` to `to` alone (told it is private), who must
    /// be someone else in the room; or, without `to`, to everyone else.
    fn relay(
        &self,
        out: &mut Outbox,
        from: ParticipantId,
        to: Option<ParticipantId>,
        not_to_self: &'static str,
        msg: impl FnOnce(bool) -> ServerMsg,
    ) -> Result<(), SignalError> {
        match to {
            Some(t) if t == from => Err(SignalError::Refused(not_to_self)),
            Some(t) => {
                self.member(t)?;
                out.signal(t, msg(true));
                Ok(())
            }
            None => {
                self.broadcast(out, Some(from), msg(false));
                Ok(())
            }
        }
    }

    fn member(&self, id: ParticipantId) -> Result<(), SignalError> {
        if self.is_member(id) {
            Ok(())
        } else {
            Err(NOT_HERE)
        }
    }

    fn room_updated(&self, out: &mut Outbox) {
        self.broadcast(out, None, ServerMsg::RoomUpdated { room: self.state() });
    }

    /// Changes a member and tells everyone.
    fn update(&mut self, out: &mut Outbox, id: ParticipantId, f: impl FnOnce(&mut Participant)) {
        let Some(p) = self.members.get_mut(&id) else { return };
        f(p);
        let info = p.info().clone();
        self.broadcast(out, None, ServerMsg::ParticipantUpdated { participant: info });
    }

    fn mute(&mut self, out: &mut Outbox, by: ParticipantId, id: ParticipantId) {
        self.update(out, id, Participant::force_mute);
        out.signal(id, ServerMsg::MutedBy { by });
    }

    /// Lets `id` in from the lobby; `tell` the moderators it left the lobby.
    fn admit(&mut self, id: ParticipantId, tell: bool, cx: &mut Cx<'_>) {
        if let Some(info) = self.door.admit(id) {
            if tell {
                self.to_moderators(cx.out, ServerMsg::LobbyLeft { id });
            }
            self.enter(id, info, cx);
        }
    }
}
