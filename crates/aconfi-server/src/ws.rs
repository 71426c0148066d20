//! One task per WebSocket: parse and size-check client messages, hand them
//! to the core task of the room's shard, write what the core sends back.
//!
//! The room is known only from the `join`: that is when the connection is
//! placed ([`crate::shards::Shards::place`]) and opened on its shard. A
//! connection stays on that shard; a later `join` (the answer to a password
//! prompt, which may name another room) naming a room on another shard is
//! closed as unexpected.
//!
//! In a cluster, a `join` for a room on no shard here first asks
//! [`crate::cluster::Cluster::home`]; a room homed on another node gets
//! `moved` and close 4015 instead of an answer, and so do the participants
//! of a room handed to another node later. A placed connection is told the
//! other live nodes (`nodes`), to come back through if this one stops.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aconfi_core::address::AddrKey;
use aconfi_core::protocol::MAX_MESSAGE_BYTES;
use aconfi_core::rate::TokenBucket;
use aconfi_core::{ClientMsg, CloseCode, NodeId, ParticipantId, RoomName, ServerMsg};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;

use crate::cluster::{Cluster, Move, Where};
use crate::media::{CoreCmd, ToClient, CLIENT_QUEUE};
use crate::shards::{Placement, Shards};
use crate::AppState;

/// Messages one connection may send per second, sustained; bursts of twice
/// that are allowed. Far above what the protocol needs.
const MESSAGES_PER_SECOND: f64 = 20.0;
const BURST: f64 = 40.0;
/// Keep-alive so dead peers (and NAT bindings) are noticed.
const PING_EVERY: Duration = Duration::from_secs(20);
/// How long to wait for the client's close frame after ours.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// A connection must send its first message (`join`) this soon after it
/// opened; the client sends it at once.
pub const JOIN_DEADLINE: Duration = Duration::from_secs(10);

/// Counts open WebSockets, in all and per address, against their caps.
/// Addresses are held (as opaque keys) only while a connection from them
/// is open.
pub struct Connections {
    max: usize,
    max_per_address: usize,
    /// The open count, for `/metrics`.
    gauge: Gauge,
    open: Mutex<(usize, HashMap<AddrKey, usize>)>,
}

/// One counted connection; uncounted when dropped.
pub struct Slot {
    connections: Arc<Connections>,
    key: AddrKey,
}

impl Connections {
    pub fn new(max: usize, max_per_address: usize, gauge: Gauge) -> Self {
        Connections { max, max_per_address, gauge, open: Mutex::new((0, HashMap::new())) }
    }

    /// A slot for a connection from `ip`, if both caps allow one.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let key = AddrKey::new(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = open.1.get(&key).copied().unwrap_or(0);
        if open.0 >= self.max || mine >= self.max_per_address {
            return None;
        }
        open.0 += 1;
        open.1.insert(key, mine + 1);
        self.gauge.set(open.0 as i64);
        Some(Slot { connections: self.clone(), key })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        self.connections.gauge.set(open.0 as i64);
        if let Some(n) = open.1.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.key);
            }
        }
    }
}

/// Drives one WebSocket until either side closes it.
/// `ip` is the client's address: it goes to the core for the per-address
/// limits, and nowhere else.
pub async fn connection(socket: WebSocket, ip: IpAddr, slot: Slot, state: AppState) {
    let _slot = slot;
    let serial = state.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = ParticipantId::new(NodeId::default(), serial);
    let (tx, mut rx) = mpsc::channel(CLIENT_QUEUE);
    // Opened on a shard with the first message; until then the sender waits
    // here (and `rx` cannot end).
    let mut opening = Some(tx);
    let mut route = Route { shard: None, placement: None };
    let (mut sink, mut stream) = socket.split();
    // Per connection: cheap, and enough against a client that floods.
    let mut bucket = TokenBucket::new(BURST, MESSAGES_PER_SECOND, Instant::now());
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;

    let mut read_broken = false;
    let join_by = tokio::time::sleep(JOIN_DEADLINE);
    tokio::pin!(join_by);
    let mut said_anything = false;
    let mut moves = state.cluster.as_ref().map(|c| c.subscribe());
    let close_code: Option<CloseCode> = loop {
        tokio::select! {
            moved = next_move(&mut moves) => {
                let Some(room) = route.placement.as_ref().map(|p| p.room()) else { continue };
                if moved.room.as_ref().is_none_or(|r| r == room) {
                    let nodes = state.cluster.as_ref().map(|c| c.others()).unwrap_or_default();
                    if send_msg(&mut sink, &ServerMsg::Nodes { urls: nodes }).await.is_err()
                        || send_msg(&mut sink, &ServerMsg::Moved { url: moved.url }).await.is_err()
                    {
                        break None;
                    }
                    break Some(CloseCode::Moved);
                }
            }
            _ = &mut join_by, if !said_anything => break Some(CloseCode::UnexpectedMessage),
            incoming = stream.next() => {
                let msg = match incoming {
                    None => break None,
                    Some(Err(e)) => {
                        read_broken = true;
                        break is_too_big(e).then_some(CloseCode::TooBig);
                    }
                    Some(Ok(m)) => m,
                };
                if !bucket.take(Instant::now()) {
                    break Some(CloseCode::RateLimited);
                }
                said_anything |= matches!(msg, Message::Text(_));
                match msg {
                    Message::Text(text) => {
                        if text.len() > MAX_MESSAGE_BYTES {
                            break Some(CloseCode::TooBig);
                        }
                        match serde_json::from_str::<ClientMsg>(text.as_str()) {
                            Ok(m) => {
                                let was_placed = route.placement.is_some();
                                let shard = match route.shard_for(&m, &state.shards, state.cluster.as_deref()).await {
                                    Routed::Shard(s) => s,
                                    Routed::Elsewhere => break Some(CloseCode::UnexpectedMessage),
                                    Routed::Moved(url) => {
                                        // The live nodes first: the page follows
                                        // `moved` only to one its own server named.
                                        let nodes = state.cluster.as_ref().map(|c| c.others()).unwrap_or_default();
                                        if send_msg(&mut sink, &ServerMsg::Nodes { urls: nodes }).await.is_err()
                                            || send_msg(&mut sink, &ServerMsg::Moved { url }).await.is_err()
                                        {
                                            break None;
                                        }
                                        break Some(CloseCode::Moved);
                                    }
                                };
                                if let (Some(c), false, true) = (&state.cluster, was_placed, route.placement.is_some()) {
                                    if send_msg(&mut sink, &ServerMsg::Nodes { urls: c.others() }).await.is_err() {
                                        break None;
                                    }
                                }
                                let core = state.shards.core(shard);
                                if let Some(tx) = opening.take() {
                                    if core.send(CoreCmd::Open { pid, ip, tx }).await.is_err() {
                                        break Some(CloseCode::GoingAway);
                                    }
                                }
                                if core.send(CoreCmd::Signal(pid, m)).await.is_err() {
                                    break Some(CloseCode::GoingAway);
                                }
                            }
                            Err(_) => break Some(CloseCode::Malformed),
                        }
                    }
                    Message::Binary(_) => break Some(CloseCode::UnsupportedData),
                    Message::Close(_) => {
                        // Finish the closing handshake (tungstenite queued
                        // the echo) so the client sees its own close code;
                        // bounded, for a client that stops reading.
                        let _ = tokio::time::timeout(CLOSE_LINGER, sink.close()).await;
                        break None;
                    }
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            out = rx.recv() => match out {
                Some(ToClient::Text(t)) => {
                    if sink.send(Message::Text(t.into())).await.is_err() {
                        break None;
                    }
                }
                Some(ToClient::Close(code)) => {
                    let _ = sink.send(close_frame(code)).await;
                    // Already closed by the core; nothing more to send.
                    let _ = sink.close().await;
                    route.closed(pid, &state.shards).await;
                    return;
                }
                // The core stops at shutdown, maybe before this task sees
                // the cancellation: that is still the server going away.
                None if state.cancel.is_cancelled() => break Some(CloseCode::GoingAway),
                None => break Some(CloseCode::InternalError),
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            _ = state.cancel.cancelled() => break Some(CloseCode::GoingAway),
        }
    };
    // The room learns at once; the closing handshake below may take a moment.
    route.closed(pid, &state.shards).await;
    if let Some(code) = close_code {
        if !matches!(code, CloseCode::GoingAway | CloseCode::Normal | CloseCode::Moved) {
            if let Ok(t) = serde_json::to_string(&code.error_msg()) {
                let _ = sink.send(Message::Text(t.into())).await;
            }
        }
        let _ = sink.send(close_frame(code)).await;
        // Closing handshake: wait for the client's close before closing the
        // connection. Closing with unread bytes (the rest of an oversized
        // message, say) makes the kernel reset it, and the client would
        // never see our close code. Bounded in time and frames.
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            let mut frames = 0;
            loop {
                if read_broken {
                    // The stream ends after a read error; hold the socket so
                    // the client has time to read our close.
                    std::future::pending::<()>().await
                }
                match stream.next().await {
                    Some(Ok(Message::Close(_))) | None => return,
                    Some(Ok(_)) if frames < 4096 => frames += 1,
                    Some(Ok(_)) => return,
                    Some(Err(_)) => read_broken = true,
                }
            }
        })
        .await;
        let _ = sink.close().await;
    }
}

/// The next move of rooms to other nodes (never, outside a cluster).
async fn next_move(moves: &mut Option<tokio::sync::broadcast::Receiver<Move>>) -> Move {
    use tokio::sync::broadcast::error::RecvError;
    let Some(rx) = moves else { return std::future::pending().await };
    loop {
        match rx.recv().await {
            Ok(m) => return m,
            // Moves are rare; one missed under a burst is caught again by
            // the next renewal.
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return std::future::pending().await,
        }
    }
}

async fn send_msg<S>(sink: &mut S, msg: &ServerMsg) -> Result<(), ()>
where
    S: futures_util::Sink<Message> + Unpin,
{
    let text = serde_json::to_string(msg).map_err(|_| ())?;
    sink.send(Message::Text(text.into())).await.map_err(|_| ())
}

/// Where a message goes.
enum Routed {
    /// To this shard.
    Shard(usize),
    /// Nowhere: a `join` for a room on another shard than the connection's.
    Elsewhere,
    /// To another node: the room's home.
    Moved(String),
}

/// Where one connection's messages go.
struct Route {
    /// The shard it was opened on, once it sent its first message.
    shard: Option<usize>,
    /// The room it is counted in, once it sent a valid `join`.
    placement: Option<Placement>,
}

impl Route {
    /// The shard for message `m`, placing the connection on its first
    /// valid `join`; `Elsewhere` if the `join` names a room on another
    /// shard than the connection's, `Moved` if on another node.
    async fn shard_for(&mut self, m: &ClientMsg, shards: &Arc<Shards>, cluster: Option<&Cluster>) -> Routed {
        let room = match m {
            ClientMsg::Join { room, .. } => RoomName::parse(room).ok(),
            _ => None,
        };
        let Some(room) = room else {
            // Not a join, or an invalid name: the shard it is on (or any)
            // answers it as the core answers such a message.
            return Routed::Shard(*self.shard.get_or_insert_with(|| shards.unplaced()));
        };
        if let (Some(p), Some(shard)) = (&self.placement, self.shard) {
            if *p.room() == room {
                return Routed::Shard(shard);
            }
        }
        if let Some(cluster) = cluster {
            if shards.shard_of(&room).is_none() {
                if let Where::There(url) = cluster.home(&room).await {
                    return Routed::Moved(url);
                }
            }
        }
        // A new room follows the connection to its shard; an existing one
        // elsewhere cannot take it.
        let placement = shards.place(&room, self.shard);
        if self.shard.is_some_and(|s| s != placement.shard()) {
            return Routed::Elsewhere;
        }
        let shard = placement.shard();
        self.shard = Some(shard);
        // Counted in the new room before leaving the old one's count.
        self.placement = Some(placement);
        Routed::Shard(shard)
    }

    /// Tells the shard the connection closed. The placement is released
    /// only after, when this is dropped: the shard reads the `Closed`
    /// before anything sent after the room's entry may go.
    async fn closed(&self, pid: ParticipantId, shards: &Shards) {
        if let Some(shard) = self.shard {
            let _ = shards.core(shard).send(CoreCmd::Closed(pid)).await;
        }
    }
}

/// Whether a read failed because a message or frame was over the size limit.
fn is_too_big(e: axum::Error) -> bool {
    use tungstenite::error::{CapacityError, Error};
    // tungstenite reports an oversized frame and an oversized message alike.
    matches!(e.into_inner().downcast_ref::<Error>(), Some(Error::Capacity(CapacityError::MessageTooLong { .. })))
}

fn close_frame(code: CloseCode) -> Message {
    Message::Close(Some(CloseFrame { code: code.code(), reason: Utf8Bytes::from_static(code.reason()) }))
}
