//! Who may come into a room: capacity, lock, end-to-end encryption, the
//! password (throttled, compared in constant time) and the lobby, checked
//! in that order, so only someone who knows the password can knock.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tracing::debug;

use crate::address::{AddrKey, GuessLimits};
use crate::error::SignalError;
use crate::ids::{ParticipantId, RoomId};
use crate::output::Outbox;
use crate::protocol::{CloseCode, ParticipantInfo, ServerMsg, MAX_PASSWORD_CHARS};

/// Most participants in one room. Every participant receives every other's
/// media, so the cost of a room grows with the square of its size.
pub const MAX_PARTICIPANTS_PER_ROOM: usize = 200;
/// Most connections waiting at one room's door (at the password or in the
/// lobby); more are turned away as from a full room. Bounds the memory a
/// stranger can tie up in a room and what its moderators are sent.
pub const MAX_WAITING_PER_ROOM: usize = 200;
/// Wrong guesses allowed per connection in [`GUESS_WINDOW`]; then it
/// waits for the oldest to leave the window (its own typos: a reconnect
/// does not reset the per-address limit, `crate::address`).
pub const MAX_GUESSES_PER_CONNECTION: usize = 5;
/// Wrong guesses per room (from all connections and addresses) in
/// [`GUESS_WINDOW`] after which the room slows guessing down: every guess
/// then waits [`SLOW_DOWN`]. A correct password is never refused for
/// someone else's guessing, only delayed.
pub const MAX_GUESSES_PER_ROOM: usize = 20;
/// The window the guess limits count over.
pub const GUESS_WINDOW: Duration = Duration::from_secs(60);
/// While a room is being guessed at, a connection's guess is checked only
/// this long after it came to the door and after its previous guess.
pub const SLOW_DOWN: Duration = Duration::from_secs(3);

/// A connection at the door: asked for the password, or in the lobby.
struct Waiting {
    info: ParticipantInfo,
    in_lobby: bool,
    /// This connection's wrong guesses in the window.
    failures: VecDeque<Instant>,
    /// When it came to the door.
    since: Instant,
    /// When its last password was checked.
    last_guess: Option<Instant>,
}

/// Someone asking at the door: who, as what, with which password (if
/// any), and whether their link carries an end-to-end key.
pub(crate) struct Joiner {
    pub pid: ParticipantId,
    pub info: ParticipantInfo,
    pub password: Option<String>,
    pub e2ee: bool,
}

/// What the door needs to know of its room: its id (for the log), whether
/// it is end-to-end encrypted, and how many are in.
#[derive(Clone, Copy)]
pub(crate) struct RoomFacts {
    pub id: RoomId,
    pub e2ee: bool,
    pub members: usize,
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
    /// Gave a password to a room that asks for none: told, so the user
    /// decides (this is not the protected meeting they expect).
    NoPassword,
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
    /// The last [`MAX_GUESSES_PER_ROOM`] wrong guesses, from any connection.
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

/// Who guesses: the connection's address (none in tests that do not say)
/// and the process's per-address limits.
pub(crate) struct Guesser<'a> {
    pub addr: Option<AddrKey>,
    pub limits: &'a GuessLimits,
}

fn millis(d: Duration) -> Option<u64> {
    Some(d.as_millis().max(1) as u64)
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

    /// Someone knocks at the door of the room `at` describes.
    pub fn knock(
        &mut self,
        joiner: Joiner,
        at: RoomFacts,
        guesser: Guesser<'_>,
        out: &mut Outbox,
        now: Instant,
    ) -> Result<Knock, SignalError> {
        let Joiner { pid, info, password, e2ee } = joiner;
        let RoomFacts { id: room, e2ee: room_e2ee, members } = at;
        if self.in_lobby(pid) {
            return Err(SignalError::UNEXPECTED);
        }
        if members >= MAX_PARTICIPANTS_PER_ROOM
            || (!self.waiting.contains_key(&pid) && self.waiting.len() >= MAX_WAITING_PER_ROOM)
        {
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
            since: now,
            last_guess: None,
        });
        w.info = info;
        if self.password.is_none() && password.is_some() {
            out.signal(pid, ServerMsg::PasswordNotRequired {});
            self.waiting.insert(pid, w);
            return Ok(Knock::NoPassword);
        }
        if let Some(expected) = &self.password {
            prune(&mut w.failures, now);
            prune(&mut self.wrong_guesses, now);
            let asked = match password {
                None => Some(ServerMsg::PasswordRequired { wrong: false, retry_after_ms: None }),
                Some(given) => match Self::guess_wait(&w, self.wrong_guesses.len(), guesser, now) {
                    Some(wait) => Some(ServerMsg::PasswordRequired { wrong: false, retry_after_ms: millis(wait) }),
                    None => {
                        w.last_guess = Some(now);
                        if password_matches(&given, expected) {
                            None
                        } else {
                            w.failures.push_back(now);
                            self.wrong_guesses.push_back(now);
                            if self.wrong_guesses.len() > MAX_GUESSES_PER_ROOM {
                                self.wrong_guesses.pop_front();
                            }
                            debug!(%room, "wrong room password");
                            Some(ServerMsg::PasswordRequired { wrong: true, retry_after_ms: None })
                        }
                    }
                },
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

    /// How long connection `w` must wait before its guess is checked, if at
    /// all: its own limit first, then the room's slow-down, then its
    /// address's limit (a token is taken only for a guess that is checked).
    fn guess_wait(w: &Waiting, room_wrong: usize, guesser: Guesser<'_>, now: Instant) -> Option<Duration> {
        if w.failures.len() >= MAX_GUESSES_PER_CONNECTION {
            let oldest = w.failures.front().copied().unwrap_or(now);
            return Some(GUESS_WINDOW.saturating_sub(now.saturating_duration_since(oldest)));
        }
        if room_wrong >= MAX_GUESSES_PER_ROOM {
            let from = w.last_guess.map_or(w.since, |l| l.max(w.since));
            let wait = SLOW_DOWN.saturating_sub(now.saturating_duration_since(from));
            if !wait.is_zero() {
                return Some(wait);
            }
        }
        guesser.addr.and_then(|a| guesser.limits.take(a, now))
    }

    /// Lets someone in from the lobby: their info, if they were waiting there.
    pub fn admit(&mut self, pid: ParticipantId) -> Option<ParticipantInfo> {
        if !self.in_lobby(pid) {
            return None;
        }
        self.waiting.remove(&pid).map(|w| w.info)
    }

    /// Everyone in the lobby, longest waiting first.
    pub fn lobby_ids(&self) -> Vec<ParticipantId> {
        let mut ids: Vec<(Instant, ParticipantId)> =
            self.waiting.iter().filter(|(_, w)| w.in_lobby).map(|(id, w)| (w.since, *id)).collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
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
