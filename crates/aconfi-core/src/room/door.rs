//! Who may come into a room: capacity, lock, end-to-end encryption, the
//! password (throttled, compared in constant time) and the lobby, checked
//! in that order, so only someone who knows the password can knock.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tracing::info;

use crate::error::SignalError;
use crate::ids::{ParticipantId, RoomId};
use crate::output::Outbox;
use crate::protocol::{CloseCode, ParticipantInfo, ServerMsg, MAX_PASSWORD_CHARS};

/// Most participants in one room. Every participant receives every other's
/// media, so the cost of a room grows with the square of its size.
pub const MAX_PARTICIPANTS_PER_ROOM: usize = 200;
/// Wrong guesses allowed per connection in [`GUESS_WINDOW`].
pub const MAX_GUESSES_PER_CONNECTION: usize = 5;
/// Wrong guesses allowed per room (from all connections) in [`GUESS_WINDOW`].
pub const MAX_GUESSES_PER_ROOM: usize = 20;
/// The window the guess limits count over.
pub const GUESS_WINDOW: Duration = Duration::from_secs(60);

/// A connection at the door: asked for the password, or in the lobby.
struct Waiting {
    info: ParticipantInfo,
    in_lobby: bool,
    /// This connection's wrong guesses in the window.
    failures: VecDeque<Instant>,
}

/// What became of a knock.
pub(crate) enum Knock {
    /// Come in.
    Enter(ParticipantInfo),
    /// Asked for the password (again); already told.
    Password,
    /// Waits in the lobby under this name; already told, the moderators
    /// are not yet.
    Lobby(Option<String>),
}

/// The room's door and everyone waiting at it.
#[derive(Default)]
pub(crate) struct Door {
    /// No new joins.
    pub locked: bool,
    /// Newcomers wait to be admitted.
    pub lobby: bool,
    /// Never logged, never sent.
    password: Option<String>,
    /// Wrong password guesses in the last minute, from any connection.
    wrong_guesses: VecDeque<Instant>,
    waiting: HashMap<ParticipantId, Waiting>,
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

impl Door {
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// A moderator sets (or clears) the password; old guesses stop counting.
    pub fn set_password(&mut self, password: Option<String>) -> Result<(), SignalError> {
        if password.as_ref().is_some_and(|p| p.is_empty() || p.chars().count() > MAX_PASSWORD_CHARS) {
            return Err(SignalError::Refused("a password has 1 to 128 characters"));
        }
        self.password = password;
        self.wrong_guesses.clear();
        Ok(())
    }

    /// Whether `pid` waits in the lobby (rather than at the password).
    pub fn in_lobby(&self, pid: ParticipantId) -> bool {
        self.waiting.get(&pid).is_some_and(|w| w.in_lobby)
    }

    pub fn is_waiting(&self, pid: ParticipantId) -> bool {
        self.waiting.contains_key(&pid)
    }

    /// Someone knocks. `members` is how many are in; `e2ee` whether the
    /// joiner's link has a key and `room_e2ee` whether the room needs one.
    #[allow(clippy::too_many_arguments)]
    pub fn knock(
        &mut self,
        room: RoomId,
        pid: ParticipantId,
        info: ParticipantInfo,
        password: Option<String>,
        (e2ee, room_e2ee): (bool, bool),
        members: usize,
        out: &mut Outbox,
        now: Instant,
    ) -> Result<Knock, SignalError> {
        if self.in_lobby(pid) {
            return Err(SignalError::UNEXPECTED);
        }
        if members >= MAX_PARTICIPANTS_PER_ROOM {
            return Err(SignalError::Close(CloseCode::RoomFull));
        }
        if self.locked {
            return Err(SignalError::Close(CloseCode::Locked));
        }
        // Never a silent downgrade or a joiner who could only see noise.
        match (room_e2ee, e2ee) {
            (true, false) => return Err(SignalError::Close(CloseCode::E2eeRequired)),
            (false, true) => return Err(SignalError::Close(CloseCode::NotE2ee)),
            _ => {}
        }
        // Off the door while it is decided; back on unless it enters.
        let mut w = self.waiting.remove(&pid).unwrap_or(Waiting {
            info: info.clone(),
            in_lobby: false,
            failures: VecDeque::new(),
        });
        w.info = info;
        if let Some(expected) = &self.password {
            prune(&mut w.failures, now);
            prune(&mut self.wrong_guesses, now);
            let mine = w.failures.len() >= MAX_GUESSES_PER_CONNECTION;
            let asked = if mine || self.wrong_guesses.len() >= MAX_GUESSES_PER_ROOM {
                // Wait until the oldest counted guess leaves the window.
                let oldest = if mine { w.failures.front() } else { self.wrong_guesses.front() };
                let wait = oldest.map(|t| GUESS_WINDOW.saturating_sub(now.saturating_duration_since(*t)));
                let retry_after_ms = Some(wait.unwrap_or(GUESS_WINDOW).as_millis() as u64);
                Some(ServerMsg::PasswordRequired { wrong: false, retry_after_ms })
            } else {
                match password {
                    Some(given) if password_matches(&given, expected) => None,
                    Some(_) => {
                        w.failures.push_back(now);
                        self.wrong_guesses.push_back(now);
                        info!(%room, "wrong room password");
                        Some(ServerMsg::PasswordRequired { wrong: true, retry_after_ms: None })
                    }
                    None => Some(ServerMsg::PasswordRequired { wrong: false, retry_after_ms: None }),
                }
            };
            if let Some(msg) = asked {
                out.signal(pid, msg);
                self.waiting.insert(pid, w);
                return Ok(Knock::Password);
            }
        }
        if self.lobby {
            w.in_lobby = true;
            out.signal(pid, ServerMsg::InLobby {});
            let name = w.info.name.clone();
            self.waiting.insert(pid, w);
            return Ok(Knock::Lobby(name));
        }
        Ok(Knock::Enter(w.info))
    }

    /// Lets someone in from the lobby: their info, if they were waiting there.
    pub fn admit(&mut self, pid: ParticipantId) -> Option<ParticipantInfo> {
        if !self.in_lobby(pid) {
            return None;
        }
        self.waiting.remove(&pid).map(|w| w.info)
    }

    /// Everyone in the lobby, in no particular order.
    pub fn lobby_ids(&self) -> Vec<ParticipantId> {
        self.waiting.iter().filter(|(_, w)| w.in_lobby).map(|(id, _)| *id).collect()
    }

    /// Forgets a connection at the door; whether it was in the lobby.
    pub fn leave(&mut self, pid: ParticipantId) -> bool {
        self.waiting.remove(&pid).is_some_and(|w| w.in_lobby)
    }

    /// Everyone at the door, taken off it (the room is closing).
    pub fn clear(&mut self) -> Vec<ParticipantId> {
        self.waiting.drain().map(|(id, _)| id).collect()
    }
}
