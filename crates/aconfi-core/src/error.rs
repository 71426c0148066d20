//! Why a signaling message was refused, and what the connection hears.
//! The English texts live with the close codes ([`CloseCode::reason`]) and,
//! for requests refused without closing, at the place that refuses.

use crate::protocol::{CloseCode, ServerMsg};
use crate::room_name::RoomNameError;

/// Why a signaling message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// The connection is closed with this code.
    #[error("{}", .0.reason())]
    Close(CloseCode),
    /// A bad room name: closed with [`CloseCode::InvalidRoomName`], and the
    /// message says what is wrong with the name.
    #[error("invalid room name: {0}")]
    RoomName(#[from] RoomNameError),
    /// Not allowed or not possible; the connection stays open and hears a
    /// `refused` with this text.
    #[error("{0}")]
    Refused(&'static str),
}

impl SignalError {
    /// The message is not valid in the connection's current state.
    pub const UNEXPECTED: SignalError = SignalError::Close(CloseCode::UnexpectedMessage);
    /// SDP that could not be parsed or applied.
    pub const SDP: SignalError = SignalError::Close(CloseCode::BadSdp);

    /// The close code, for an error that closes the connection; `None` for
    /// a [`SignalError::Refused`], which does not.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            SignalError::Close(code) => Some(*code),
            SignalError::RoomName(_) => Some(CloseCode::InvalidRoomName),
            SignalError::Refused(_) => None,
        }
    }

    /// What the client hears: `error` before a close, else `refused`.
    pub(crate) fn to_msg(&self, request: &str) -> ServerMsg {
        match self.close_code() {
            Some(code) => ServerMsg::Error { code: code.code(), message: self.to_string() },
            None => ServerMsg::Refused { request: request.to_string(), message: self.to_string() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_keeps_the_connection_and_texts_come_from_one_table() {
        assert_eq!(SignalError::Refused("no").close_code(), None);
        assert_eq!(SignalError::UNEXPECTED.close_code(), Some(CloseCode::UnexpectedMessage));
        assert_eq!(SignalError::Close(CloseCode::RoomFull).to_string(), CloseCode::RoomFull.reason());
        let e = SignalError::RoomName(RoomNameError::Reserved);
        assert_eq!(
            e.to_msg("join"),
            ServerMsg::Error { code: 4003, message: "invalid room name: that name is reserved".into() }
        );
    }
}
