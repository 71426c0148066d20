//! The signaling protocol spoken over the WebSocket, as Rust types.
//!
//! `docs/protocol.md` is the spec; a test parses every JSON example there and
//! round-trips it through these types, so the two cannot drift apart.

use serde::{Deserialize, Serialize};

use crate::ids::ParticipantId;

/// Version of the signaling protocol. A client names it in `join`; a server
/// that does not speak it closes with [`CloseCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest WebSocket text message the server reads. SDP with a few dozen
/// m-lines fits easily; anything bigger is abuse.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Longest display name, in characters, after trimming.
pub const MAX_NAME_CHARS: usize = 64;

/// Media kind of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Opus audio.
    Audio,
    /// VP8 or H.264 video.
    Video,
}

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// First message on a connection: which room, under which name.
    Join {
        /// Protocol version the client speaks.
        version: u32,
        /// Room name (validated, see `RoomName`).
        room: String,
        /// Optional display name shown to the others. Never logged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Whether the microphone starts muted.
        #[serde(default)]
        audio_muted: bool,
        /// Whether the camera starts off.
        #[serde(default)]
        video_muted: bool,
        /// The room password, when the room has one. Never logged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// The client holds a key for an end-to-end encrypted meeting (its
        /// link had one). The first joiner decides whether the room is
        /// end-to-end encrypted; later joiners must match. The key itself
        /// never reaches the server.
        #[serde(default, skip_serializing_if = "is_false")]
        e2ee: bool,
    },
    /// The client's one offer, carrying what it publishes. Sent once after `joined`.
    Offer {
        /// SDP offer.
        sdp: String,
        /// The m-line that carries a screen share (sent on only while
        /// sharing), if the client offers one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        screen_mid: Option<String>,
    },
    /// Answer to a server `offer`.
    Answer {
        /// SDP answer.
        sdp: String,
    },
    /// The client muted or unmuted its microphone or camera.
    MediaState {
        /// Microphone muted.
        audio_muted: bool,
        /// Camera off.
        video_muted: bool,
        /// Sharing a screen or window.
        #[serde(default, skip_serializing_if = "is_false")]
        screen_sharing: bool,
    },
    /// The client leaves the room. The server closes the socket normally.
    /// (A struct variant so that unknown fields are refused here too.)
    Leave {},
    /// A chat message to the room, or privately to one participant. At most
    /// [`MAX_CHAT_BYTES`]; delivered to those present, never stored.
    Chat {
        /// The text (rendered as text by clients, never as HTML), or, when
        /// `sealed`, its ciphertext as the client encrypted it.
        text: String,
        /// Private recipient; absent for the whole room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<ParticipantId>,
        /// End-to-end encrypted (required in an end-to-end encrypted room,
        /// refused elsewhere). At most [`MAX_SEALED_CHAT_BYTES`].
        #[serde(default, skip_serializing_if = "is_false")]
        sealed: bool,
    },
    /// End-to-end encryption key exchange: an opaque message the server
    /// relays to one participant or, without `to`, to everyone else in the
    /// room. Only in end-to-end encrypted rooms; at most
    /// [`MAX_E2EE_BYTES`]. Never logged, never stored.
    E2ee {
        /// Recipient; absent for everyone else in the room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<ParticipantId>,
        /// Opaque to the server.
        data: String,
    },
    /// End-to-end encrypted rooms: the key exchange with participant `id`
    /// checked out under the link's secret (it has the link). The server
    /// lets only confirmed participants moderate (room/confirm.rs).
    E2eeConfirm {
        /// Whom this client confirms.
        id: ParticipantId,
    },
    /// Raise or lower one's hand.
    RaiseHand {
        /// Raised.
        raised: bool,
    },
    /// Moderator: make another participant moderator too.
    GrantModerator {
        /// Who.
        id: ParticipantId,
    },
    /// Moderator: mute one participant's microphone. They may unmute themselves.
    Mute {
        /// Who.
        id: ParticipantId,
    },
    /// Moderator: mute everyone else's microphone.
    MuteAll {},
    /// Moderator: ask a muted participant to unmute (only they can).
    AskUnmute {
        /// Who.
        id: ParticipantId,
    },
    /// Moderator: remove a participant from the meeting.
    Remove {
        /// Who.
        id: ParticipantId,
    },
    /// Moderator: lock (no new joins) or unlock the room.
    SetLock {
        /// Locked.
        locked: bool,
    },
    /// Moderator: set, change (a string) or remove (null) the room password.
    SetPassword {
        /// The new password, or null. Never logged.
        password: Option<String>,
    },
    /// Moderator: turn the lobby on or off (off admits everyone waiting).
    SetLobby {
        /// Lobby on.
        enabled: bool,
    },
    /// Moderator: let someone waiting in the lobby in.
    Admit {
        /// Who.
        id: ParticipantId,
    },
    /// Moderator: refuse someone waiting in the lobby.
    Refuse {
        /// Who.
        id: ParticipantId,
    },
    /// Moderator: end the meeting for everyone.
    EndMeeting {},
    /// Moderator: stream the meeting live to an RTMP(S) ingest (YouTube's,
    /// say). Refused in end-to-end encrypted meetings and where the server
    /// has no streaming worker.
    StreamStart {
        /// `rtmp://` or `rtmps://` URL including the stream key. Never
        /// logged, stored or sent to anyone.
        url: StreamUrl,
    },
    /// Moderator: stop the live stream.
    StreamStop {},
    /// Which received videos the client shows, and how large: the server
    /// sends nothing for a tile not listed, and no layer larger than a tile
    /// can show. Sent whenever the layout changes; until the first one,
    /// every video counts as visible and large.
    View {
        /// The visible video tiles.
        tiles: Vec<ViewTile>,
    },
}

/// One visible video tile, in a `view`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewTile {
    /// The m-line the video arrives on (as in the server offer's `tracks`).
    pub mid: String,
    /// Size on screen, in device pixels.
    pub width: u32,
    /// Height in device pixels.
    pub height: u32,
    /// On the stage (pinned or shown large): served before other tiles.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stage: bool,
}

/// Longest stream URL accepted, in bytes.
pub const MAX_STREAM_URL_BYTES: usize = 2048;

/// An ingest URL with its stream key: a secret. Its `Debug` prints no part
/// of it, so no log line can carry it by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamUrl(pub String);

impl std::fmt::Debug for StreamUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamUrl(<redacted>)")
    }
}

impl StreamUrl {
    /// Whether this can be handed to the worker: `rtmp://` or `rtmps://`
    /// with a host, no whitespace or control characters, not too long.
    pub fn is_valid(&self) -> bool {
        let s = self.0.as_str();
        let rest = s.strip_prefix("rtmps://").or_else(|| s.strip_prefix("rtmp://"));
        s.len() <= MAX_STREAM_URL_BYTES
            && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    }
}

/// Where a meeting's live stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamStatus {
    /// A moderator started it; the worker is connecting to the ingest.
    Starting,
    /// The ingest is receiving the meeting.
    Live,
    /// The ingest connection dropped; the worker retries with back-off.
    Reconnecting,
    /// A moderator stopped it.
    Stopped,
    /// It ended on its own; `reason` says why.
    Failed,
}

impl StreamStatus {
    /// Whether a stream is under way (a new `stream_start` is refused).
    pub fn is_active(self) -> bool {
        matches!(self, StreamStatus::Starting | StreamStatus::Live | StreamStatus::Reconnecting)
    }
}

impl ClientMsg {
    /// The message's `type`, as on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMsg::Join { .. } => "join",
            ClientMsg::Offer { .. } => "offer",
            ClientMsg::Answer { .. } => "answer",
            ClientMsg::MediaState { .. } => "media_state",
            ClientMsg::Leave {} => "leave",
            ClientMsg::Chat { .. } => "chat",
            ClientMsg::E2ee { .. } => "e2ee",
            ClientMsg::E2eeConfirm { .. } => "e2ee_confirm",
            ClientMsg::RaiseHand { .. } => "raise_hand",
            ClientMsg::GrantModerator { .. } => "grant_moderator",
            ClientMsg::Mute { .. } => "mute",
            ClientMsg::MuteAll {} => "mute_all",
            ClientMsg::AskUnmute { .. } => "ask_unmute",
            ClientMsg::Remove { .. } => "remove",
            ClientMsg::SetLock { .. } => "set_lock",
            ClientMsg::SetPassword { .. } => "set_password",
            ClientMsg::SetLobby { .. } => "set_lobby",
            ClientMsg::Admit { .. } => "admit",
            ClientMsg::Refuse { .. } => "refuse",
            ClientMsg::EndMeeting {} => "end_meeting",
            ClientMsg::StreamStart { .. } => "stream_start",
            ClientMsg::StreamStop {} => "stream_stop",
            ClientMsg::View { .. } => "view",
        }
    }
}

/// Longest chat message, in bytes of UTF-8.
pub const MAX_CHAT_BYTES: usize = 4096;

/// Longest sealed (end-to-end encrypted) chat message: a 4 KiB text's
/// ciphertext with its key id, nonce and tag, base64url-encoded.
pub const MAX_SEALED_CHAT_BYTES: usize = 6 * 1024;

/// Longest end-to-end key exchange message: a sender's new key wrapped for
/// each of a full room's participants fits well within it.
pub const MAX_E2EE_BYTES: usize = 64 * 1024;

/// Longest room password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// The room's settings, as everyone in it sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomState {
    /// No new joins.
    pub locked: bool,
    /// Newcomers wait to be admitted.
    pub lobby: bool,
    /// A password is set (never the password itself).
    pub password: bool,
    /// Media and chat are end-to-end encrypted (never the key itself).
    pub e2ee: bool,
}

/// What the room knows of one participant, as shown to the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantInfo {
    /// Opaque id, unique per server run.
    pub id: ParticipantId,
    /// Display name, if the participant gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Microphone muted.
    pub audio_muted: bool,
    /// Camera off.
    pub video_muted: bool,
    /// Moderator of the room.
    #[serde(default)]
    pub moderator: bool,
    /// Hand raised.
    #[serde(default)]
    pub hand_raised: bool,
    /// Sharing a screen or window.
    #[serde(default, skip_serializing_if = "is_false")]
    pub screen_sharing: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Which participant and kind a server-offered m-line carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackInfo {
    /// The m-line's media id in the SDP.
    pub mid: String,
    /// Whose media it carries.
    pub participant: ParticipantId,
    /// Audio or video.
    pub kind: Kind,
    /// A screen share rather than a camera.
    #[serde(default, skip_serializing_if = "is_false")]
    pub screen: bool,
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMsg {
    /// Answer to `join`: who you are and who is already there.
    Joined {
        /// Protocol version the server speaks.
        version: u32,
        /// The joiner's own id.
        you: ParticipantId,
        /// Everyone else in the room, in join order.
        participants: Vec<ParticipantInfo>,
        /// Whether the joiner is moderator (the first in an empty room is).
        moderator: bool,
        /// The room's settings.
        room: RoomState,
        /// Why this server cannot stream meetings live, when it cannot
        /// (no streaming worker, GStreamer missing).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream_unavailable: Option<String>,
    },
    /// The live stream's state changed (and, to a newcomer, that the
    /// meeting is being streamed). Sent to everyone in the room.
    StreamState {
        /// Where it stands.
        state: StreamStatus,
        /// Why it failed (English), for `failed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The room's settings changed.
    RoomUpdated {
        /// As they are now.
        room: RoomState,
    },
    /// The room has a password: send `join` again with it. Nothing about
    /// the room is revealed before. `wrong` when one was given and did not
    /// match; `retry_after_ms` when too many wrong guesses were made.
    PasswordRequired {
        /// The password given was wrong.
        wrong: bool,
        /// Wait this long before the next try.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// You sent a password, but this room asks for none: it is not the
    /// protected meeting you expected (it may have ended and been opened
    /// again by someone else). Nothing else is revealed. Send `join`
    /// without a password to go in anyway, or leave.
    PasswordNotRequired {},
    /// You wait in the lobby until a moderator admits or refuses you.
    InLobby {},
    /// To moderators: someone waits in the lobby.
    LobbyRequest {
        /// Who (a connection id; becomes their participant id).
        id: ParticipantId,
        /// The name they gave.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// To moderators: someone no longer waits (admitted, refused or gone).
    LobbyLeft {
        /// Who.
        id: ParticipantId,
    },
    /// A moderator muted your microphone; you may unmute yourself.
    MutedBy {
        /// The moderator.
        by: ParticipantId,
    },
    /// A moderator asks you to unmute.
    UnmuteRequest {
        /// The moderator.
        by: ParticipantId,
    },
    /// A chat message.
    Chat {
        /// Sender.
        from: ParticipantId,
        /// Text (render as text), or its ciphertext when `sealed`.
        text: String,
        /// Sent to you alone.
        private: bool,
        /// End-to-end encrypted by the sender.
        #[serde(default, skip_serializing_if = "is_false")]
        sealed: bool,
    },
    /// An end-to-end key exchange message from another participant, as
    /// they sent it.
    E2ee {
        /// Sender.
        from: ParticipantId,
        /// Opaque to the server.
        data: String,
    },
    /// A request was refused; the connection stays open.
    Refused {
        /// The request's `type`.
        request: String,
        /// Why (English).
        message: String,
    },
    /// Someone joined the room.
    ParticipantJoined {
        /// The newcomer.
        participant: ParticipantInfo,
    },
    /// Someone changed their mute state.
    ParticipantUpdated {
        /// The participant as it is now.
        participant: ParticipantInfo,
    },
    /// Who is speaking: sent to everyone when the room's dominant speaker
    /// changes, and to a newcomer on joining. The speaker stays the
    /// speaker while the room is quiet, until someone else speaks.
    ActiveSpeaker {
        /// The speaker (possibly the receiver).
        participant: ParticipantId,
    },
    /// The videos this client is not sent because its downlink has no
    /// room for them (see `view`), by m-line; sent when that changes,
    /// empty once every visible video is sent again.
    VideoPaused {
        /// The m-lines (`mid`s of the offer's tracks) paused.
        mids: Vec<String>,
    },
    /// Someone left the room (or was dropped).
    ParticipantLeft {
        /// Who left.
        id: ParticipantId,
    },
    /// Answer to the client's `offer`.
    Answer {
        /// SDP answer.
        sdp: String,
    },
    /// A server offer: media of others was added or removed.
    Offer {
        /// SDP offer.
        sdp: String,
        /// Every m-line the server sends on, with its owner.
        tracks: Vec<TrackInfo>,
    },
    /// In a cluster: this room's home is another node; connect there (its
    /// `/ws`) and send the same `join`. Close 4015 follows. Sent instead of
    /// any answer to the `join`.
    Moved {
        /// The home node's public URL, `https://host[:port]`.
        url: String,
    },
    /// In a cluster, after the `join` was taken: the other live nodes'
    /// public URLs, to reconnect through if this one stops answering.
    Nodes {
        /// `https://host[:port]` each.
        urls: Vec<String>,
    },
    /// Sent just before the server closes the socket for an error.
    Error {
        /// The close code that follows.
        code: u16,
        /// Human-readable reason (English).
        message: String,
    },
}

/// WebSocket close codes the server uses (4000–4999 is the private range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum CloseCode {
    /// Normal close after `leave`.
    Normal = 1000,
    /// The server is shutting down.
    GoingAway = 1001,
    /// A binary frame: this protocol is text only.
    UnsupportedData = 1003,
    /// A message over [`MAX_MESSAGE_BYTES`].
    TooBig = 1009,
    /// Not JSON, or not a known message.
    Malformed = 4000,
    /// A valid message at the wrong moment (e.g. `offer` before `join`).
    UnexpectedMessage = 4001,
    /// The client's protocol version is not spoken here.
    UnsupportedVersion = 4002,
    /// The room name is not valid.
    InvalidRoomName = 4003,
    /// SDP that could not be parsed or applied.
    BadSdp = 4004,
    /// This participant's media connection failed or timed out.
    MediaFailed = 4005,
    /// An internal fault in this participant's connection; the room goes on.
    InternalError = 4006,
    /// Too many messages too fast.
    RateLimited = 4007,
    /// The room already has the most participants it may have.
    RoomFull = 4008,
    /// A moderator removed this participant.
    Removed = 4009,
    /// The room is locked.
    Locked = 4010,
    /// A moderator ended the meeting.
    Ended = 4011,
    /// A moderator refused entry from the lobby.
    LobbyRefused = 4012,
    /// The meeting is end-to-end encrypted and the joiner has no key: it
    /// needs the full link.
    E2eeRequired = 4013,
    /// The joiner's link is for an end-to-end encrypted meeting, but the
    /// meeting of that name is not one.
    NotE2ee = 4014,
    /// The room lives on another node: `moved` said which.
    Moved = 4015,
}

impl CloseCode {
    /// Every close code, in numeric order (for tests and the web client's copy).
    pub const ALL: [CloseCode; 20] = [
        CloseCode::Normal,
        CloseCode::GoingAway,
        CloseCode::UnsupportedData,
        CloseCode::TooBig,
        CloseCode::Malformed,
        CloseCode::UnexpectedMessage,
        CloseCode::UnsupportedVersion,
        CloseCode::InvalidRoomName,
        CloseCode::BadSdp,
        CloseCode::MediaFailed,
        CloseCode::InternalError,
        CloseCode::RateLimited,
        CloseCode::RoomFull,
        CloseCode::Removed,
        CloseCode::Locked,
        CloseCode::Ended,
        CloseCode::LobbyRefused,
        CloseCode::E2eeRequired,
        CloseCode::NotE2ee,
        CloseCode::Moved,
    ];

    /// The numeric close code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The English reason sent with it (in the `error` message and the
    /// close frame). The one place these texts live.
    pub fn reason(self) -> &'static str {
        match self {
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
            CloseCode::Moved => "the meeting is on another node",
        }
    }

    /// The `error` message that goes before closing with this code.
    pub fn error_msg(self) -> ServerMsg {
        ServerMsg::Error { code: self.code(), message: self.reason().to_string() }
    }
}
