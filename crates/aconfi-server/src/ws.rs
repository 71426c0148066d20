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
use crate::shard::{CoreCmd, ToClient, CLIENT_QUEUE};
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

/// What one step of a connection's loop leads to.
enum Step {
    /// Go on.
    Next,
    /// Stop and close, with this code (None: without one, the socket is
    /// gone or closed by the client).
    End(Option<CloseCode>),
    /// The core closed the connection (its close frame is sent): done.
    Closed,
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// One connection's side of the loop: what the handlers share.
struct Conn {
    pid: ParticipantId,
    ip: IpAddr,
    state: AppState,
    sink: Sink,
    /// Opened on a shard with the first message; until then the core's
    /// sender for this connection waits here (and `rx` cannot end).
    opening: Option<mpsc::Sender<ToClient>>,
    route: Route,
    /// Per connection: cheap, and enough against a client that floods.
    bucket: TokenBucket,
    said_anything: bool,
}

/// Drives one WebSocket until either side closes it.
/// `ip` is the client's address: it goes to the core for the per-address
/// limits, and nowhere else.
pub async fn connection(socket: WebSocket, ip: IpAddr, slot: Slot, state: AppState) {
    let _slot = slot;
    let serial = state.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = ParticipantId::new(NodeId::default(), serial);
    let (tx, mut rx) = mpsc::channel(CLIENT_QUEUE);
    let (sink, mut stream) = socket.split();
    let mut moves = state.cluster.as_ref().map(|c| c.subscribe());
    let mut c = Conn {
        pid,
        ip,
        state,
        sink,
        opening: Some(tx),
        route: Route { shard: None, placement: None },
        bucket: TokenBucket::new(BURST, MESSAGES_PER_SECOND, Instant::now()),
        said_anything: false,
    };
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut read_broken = false;
    let join_by = tokio::time::sleep(JOIN_DEADLINE);
    tokio::pin!(join_by);
    let close_code = loop {
        let step = tokio::select! {
            moved = next_move(&mut moves) => c.on_move(moved).await,
            _ = &mut join_by, if !c.said_anything => Step::End(Some(CloseCode::UnexpectedMessage)),
            incoming = stream.next() => match incoming {
                None => Step::End(None),
                Some(Err(e)) => {
                    read_broken = true;
                    Step::End(is_too_big(e).then_some(CloseCode::TooBig))
                }
                Some(Ok(m)) => c.on_frame(m).await,
            },
            out = rx.recv() => c.on_core(out).await,
            _ = ping.tick() => match c.sink.send(Message::Ping(Default::default())).await {
                Ok(()) => Step::Next,
                Err(_) => Step::End(None),
            },
            _ = c.state.cancel.cancelled() => Step::End(Some(CloseCode::GoingAway)),
        };
        match step {
            Step::Next => {}
            Step::End(code) => break code,
            Step::Closed => {
                c.route.closed(pid, &c.state.shards).await;
                return;
            }
        }
    };
    // The room learns at once; the closing handshake below may take a moment.
    c.route.closed(pid, &c.state.shards).await;
    if let Some(code) = close_code {
        close(c.sink, stream, code, read_broken).await;
    }
}

impl Conn {
    /// A room moved to another node: its participants here follow it.
    async fn on_move(&mut self, moved: Move) -> Step {
        let Some(room) = self.route.placement.as_ref().map(|p| p.room()) else { return Step::Next };
        if moved.room.as_ref().is_some_and(|r| r != room) {
            return Step::Next;
        }
        self.send_moved(moved.url).await
    }

    /// `nodes`, then `moved` to `url`, then close 4015: the page follows
    /// `moved` only to a node its own server named.
    async fn send_moved(&mut self, url: String) -> Step {
        let nodes = self.state.cluster.as_ref().map(|c| c.others()).unwrap_or_default();
        if send_msg(&mut self.sink, &ServerMsg::Nodes { urls: nodes }).await.is_err()
            || send_msg(&mut self.sink, &ServerMsg::Moved { url }).await.is_err()
        {
            return Step::End(None);
        }
        Step::End(Some(CloseCode::Moved))
    }

    /// A frame from the client: rate, size and kind checked, text parsed.
    async fn on_frame(&mut self, msg: Message) -> Step {
        if !self.bucket.take(Instant::now()) {
            return Step::End(Some(CloseCode::RateLimited));
        }
        self.said_anything |= matches!(msg, Message::Text(_));
        match msg {
            Message::Text(text) if text.len() > MAX_MESSAGE_BYTES => Step::End(Some(CloseCode::TooBig)),
            Message::Text(text) => match serde_json::from_str::<ClientMsg>(text.as_str()) {
                Ok(m) => self.on_message(m).await,
                Err(_) => Step::End(Some(CloseCode::Malformed)),
            },
            Message::Binary(_) => Step::End(Some(CloseCode::UnsupportedData)),
            Message::Close(_) => {
                // Finish the closing handshake (tungstenite queued the
                // echo) so the client sees its own close code; bounded, for
                // a client that stops reading.
                let _ = tokio::time::timeout(CLOSE_LINGER, self.sink.close()).await;
                Step::End(None)
            }
            Message::Ping(_) | Message::Pong(_) => Step::Next,
        }
    }

    /// A message for the core: to the room's shard (placed with the
    /// `join`), or elsewhere in a cluster.
    async fn on_message(&mut self, m: ClientMsg) -> Step {
        let was_placed = self.route.placement.is_some();
        let shard = match self.route.shard_for(&m, &self.state.shards, self.state.cluster.as_deref()).await {
            Routed::Shard(s) => s,
            Routed::Elsewhere => return Step::End(Some(CloseCode::UnexpectedMessage)),
            Routed::Moved(url) => return self.send_moved(url).await,
        };
        // Just placed, in a cluster: where to come back through.
        if let (Some(c), false, true) = (&self.state.cluster, was_placed, self.route.placement.is_some()) {
            if send_msg(&mut self.sink, &ServerMsg::Nodes { urls: c.others() }).await.is_err() {
                return Step::End(None);
            }
        }
        let core = self.state.shards.core(shard);
        if let Some(tx) = self.opening.take() {
            if core.send(CoreCmd::Open { pid: self.pid, ip: self.ip, tx }).await.is_err() {
                return Step::End(Some(CloseCode::GoingAway));
            }
        }
        if core.send(CoreCmd::Signal(self.pid, m)).await.is_err() {
            return Step::End(Some(CloseCode::GoingAway));
        }
        Step::Next
    }

    /// What the core sends this client.
    async fn on_core(&mut self, out: Option<ToClient>) -> Step {
        match out {
            Some(ToClient::Text(t)) => match self.sink.send(Message::Text(t.into())).await {
                Ok(()) => Step::Next,
                Err(_) => Step::End(None),
            },
            Some(ToClient::Close(code)) => {
                let _ = self.sink.send(close_frame(code)).await;
                // Already closed by the core; nothing more to send.
                let _ = self.sink.close().await;
                Step::Closed
            }
            // The core stops at shutdown, maybe before this task sees the
            // cancellation: that is still the server going away.
            None if self.state.cancel.is_cancelled() => Step::End(Some(CloseCode::GoingAway)),
            None => Step::End(Some(CloseCode::InternalError)),
        }
    }
}

/// Closes with `code`: its `error` message first (unless the close says
/// it all), the close frame, then the closing handshake. Waits for the
/// client's close before closing the connection: closing with unread
/// bytes (the rest of an oversized message, say) makes the kernel reset
/// it, and the client would never see our close code. Bounded in time and
/// frames.
async fn close(
    mut sink: Sink,
    mut stream: futures_util::stream::SplitStream<WebSocket>,
    code: CloseCode,
    mut read_broken: bool,
) {
    if !matches!(code, CloseCode::GoingAway | CloseCode::Normal | CloseCode::Moved) {
        if let Ok(t) = serde_json::to_string(&code.error_msg()) {
            let _ = sink.send(Message::Text(t.into())).await;
        }
    }
    let _ = sink.send(close_frame(code)).await;
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
