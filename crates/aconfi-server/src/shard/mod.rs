//! A media shard: one SFU core on a thread of its own, with its own media
//! port and rooms. This file is the shard's contract with the rest of the
//! server — what WebSocket tasks send it ([`CoreCmd`]) and get back
//! ([`ToClient`]), what it reports ([`ShardStats`]) and what it is given
//! ([`Shard`]); [`sockets`] holds its UDP and TCP media sockets (with GSO
//! batching), [`run`] its loop and the thread it runs on. Which room is on
//! which shard is `crate::shards`.

pub mod run;
pub mod sockets;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aconfi_core::address::GuessLimits;
use aconfi_core::{ClientMsg, CloseCode, ParticipantId, StreamLimits};
use tokio::sync::{mpsc, oneshot};

use crate::ingest::IngestPolicy;

/// Commands from WebSocket tasks to the core task.
#[derive(Debug)]
pub enum CoreCmd {
    /// A WebSocket opened; messages for it go to `tx`.
    Open { pid: ParticipantId, ip: IpAddr, tx: mpsc::Sender<ToClient> },
    /// A parsed signaling message.
    Signal(ParticipantId, ClientMsg),
    /// The WebSocket closed.
    Closed(ParticipantId),
    /// Whether the meeting of this name is being streamed live (for the
    /// prejoin screen).
    IsStreaming(String, oneshot::Sender<bool>),
}

/// What a WebSocket task should send.
#[derive(Debug)]
pub enum ToClient {
    /// A JSON text message.
    Text(String),
    /// Close the socket with this code.
    Close(CloseCode),
}

/// Messages a slow WebSocket may have queued before it is dropped.
pub const CLIENT_QUEUE: usize = 256;
/// How often each shard reports its rooms, participants and streams (for
/// the metrics' gauges, summed over shards).
pub const GAUGES_EVERY: Duration = Duration::from_secs(1);
/// How often the aggregate counts (rooms, participants, over every shard)
/// are logged.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(15 * 60);

/// Which shard a core task is, and what it shares with the others.
pub struct Shard {
    /// Its number, 0-based.
    pub index: usize,
    /// How many shards the server runs.
    pub of: usize,
    /// Where it reports its counts.
    pub stats: Arc<ShardStats>,
    /// Password guesses per address, one budget for the whole process.
    pub guess_limits: GuessLimits,
    /// Live streams at once, one budget for the whole process.
    pub stream_limits: StreamLimits,
    /// Where streams may go.
    pub ingest: IngestPolicy,
}

/// What a shard reports about itself (counts only), read by the signaling
/// side for the metrics, the summary log and placement.
#[derive(Debug)]
pub struct ShardStats {
    alive: AtomicBool,
    rooms: AtomicUsize,
    participants: AtomicUsize,
    streams: AtomicUsize,
}

impl Default for ShardStats {
    fn default() -> Self {
        ShardStats {
            alive: AtomicBool::new(true),
            rooms: AtomicUsize::new(0),
            participants: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
        }
    }
}

impl ShardStats {
    /// The shard's current counts.
    pub fn set(&self, rooms: usize, participants: usize, streams: usize) {
        self.rooms.store(rooms, Ordering::Relaxed);
        self.participants.store(participants, Ordering::Relaxed);
        self.streams.store(streams, Ordering::Relaxed);
    }

    /// Rooms, participants and streams, as last reported.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.rooms.load(Ordering::Relaxed),
            self.participants.load(Ordering::Relaxed),
            self.streams.load(Ordering::Relaxed),
        )
    }

    /// Whether the shard runs (a shard that panicked or never started gets
    /// no new rooms).
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// The shard stopped for good.
    pub fn dead(&self) {
        self.alive.store(false, Ordering::Relaxed);
    }
}
