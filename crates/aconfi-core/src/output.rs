//! What the core asks its shell to do.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::ids::ParticipantId;
use crate::protocol::{CloseCode, ServerMsg};
use crate::stream::{StreamKey, StreamOut};

/// A UDP datagram, in either direction. The one datagram type of the
/// workspace: the core's transmits and the test peers' use it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Local address it leaves from (or, received, the sender).
    pub source: SocketAddr,
    /// Where it goes.
    pub destination: SocketAddr,
    /// The bytes.
    pub contents: Vec<u8>,
}

/// What the IO shell must do.
#[derive(Debug)]
pub enum Output {
    /// Send a UDP datagram.
    Transmit(Datagram),
    /// Send a signaling message to one participant's WebSocket.
    Signal(ParticipantId, ServerMsg),
    /// Close that participant's WebSocket with this code. The core has
    /// already forgotten the participant.
    Close(ParticipantId, CloseCode),
    /// Something for a room's streaming worker: start or stop it, its
    /// sources, a plain RTP packet.
    Stream(StreamKey, StreamOut),
}

/// The queue outputs wait in until the shell polls them.
#[derive(Default)]
pub(crate) struct Outbox(VecDeque<Output>);

impl Outbox {
    pub fn signal(&mut self, to: ParticipantId, msg: ServerMsg) {
        self.0.push_back(Output::Signal(to, msg));
    }

    pub fn transmit(&mut self, d: Datagram) {
        self.0.push_back(Output::Transmit(d));
    }

    /// The one way a connection is closed: the `error` message explaining
    /// `code` (unless it is a normal close), then the close.
    pub fn close(&mut self, to: ParticipantId, code: CloseCode) {
        if code != CloseCode::Normal {
            self.signal(to, code.error_msg());
        }
        self.0.push_back(Output::Close(to, code));
    }

    /// Like [`Outbox::close`], with a message that says more than the
    /// code's reason (which room name was wrong, say).
    pub fn close_with(&mut self, to: ParticipantId, code: CloseCode, msg: ServerMsg) {
        self.signal(to, msg);
        self.0.push_back(Output::Close(to, code));
    }

    pub fn push(&mut self, o: Output) {
        self.0.push_back(o);
    }

    pub fn pop(&mut self) -> Option<Output> {
        self.0.pop_front()
    }
}
