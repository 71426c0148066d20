//! A shard's loop: the task that owns its SFU core reads the media
//! sockets, wakes on the core's deadline, takes signaling from WebSocket
//! tasks over a channel, and carries out the core's outputs — no locks on
//! this path — and [`spawn`], the thread it runs on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use aconfi_core::{CloseCode, Output, ParticipantId, Received, ServerMsg, Sfu, SfuConfig};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::sockets::{Arrival, Batch, MediaSockets};
use super::{CoreCmd, Shard, ToClient, GAUGES_EVERY};
use crate::ice_tcp::{self, TcpIn};
use crate::metrics::Metrics;
use crate::stream::{Availability, Report, Streams};

/// Datagrams taken from the sockets in one go before forwarded packets are
/// released.
const RECV_BATCH: usize = 32;

/// Runs shard `shard.index` on a thread of its own (a current-thread tokio
/// runtime), logging to the dispatcher that is current here. Completes the
/// returned channel when the shard has stopped, by `cancel` or by a panic.
///
/// A panic ends only that shard: it is logged (its number, nothing about a
/// meeting), the shard is marked dead so no new room goes there, and
/// everything it held is dropped — its WebSocket tasks see their channel
/// from the core close and close their clients (4006, "internal error"),
/// who rejoin by themselves onto a live shard; its streaming workers are
/// killed with their handles. The other shards go on.
pub fn spawn(
    media: MediaSockets,
    cmds: mpsc::Receiver<CoreCmd>,
    streaming: Availability,
    metrics: Metrics,
    shard: Shard,
    cancel: CancellationToken,
) -> std::io::Result<oneshot::Receiver<()>> {
    let (done_tx, done) = oneshot::channel();
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let index = shard.index;
    let stats = shard.stats.clone();
    std::thread::Builder::new().name(format!("aconfi-shard-{index}")).spawn(move || {
        let _log = tracing::dispatcher::set_default(&dispatch);
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => {
                let run = run(media, cmds, streaming, metrics, shard, cancel);
                if std::panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(run))).is_err() {
                    stats.dead();
                    error!(shard = index, "a media shard stopped unexpectedly; its meetings were closed");
                }
                // Ends what the shard spawned (its ICE-TCP connections).
                drop(rt);
            }
            Err(e) => {
                stats.dead();
                error!(shard = index, error = %e, "a media shard could not start");
            }
        }
        stats.set(0, 0, 0);
        let _ = done_tx.send(());
    })?;
    Ok(done)
}

/// Runs one shard's core until `cancel` fires.
pub async fn run(
    mut media: MediaSockets,
    mut cmds: mpsc::Receiver<CoreCmd>,
    streaming: Availability,
    metrics: Metrics,
    shard: Shard,
    cancel: CancellationToken,
) {
    if let Err(e) = media.register_here() {
        error!(shard = shard.index, error = %e, "a media shard could not take over its sockets");
        shard.stats.dead();
        return;
    }
    media.count_into(metrics.clone());
    let sfu = Sfu::new(SfuConfig {
        candidates: media.candidates(),
        tcp_candidates: media.tcp_candidates(),
        stream_unavailable: streaming.reason(),
        // One shard: session credentials exactly as str0m makes them.
        shard: (shard.of > 1).then_some(shard.index as u16),
        guess_limits: shard.guess_limits.clone(),
        stream_limits: shard.stream_limits.clone(),
        ..SfuConfig::default()
    });
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let streams = Streams::new(streaming, shard.ingest.clone(), reports_tx);
    // ICE-TCP: connection tasks report here; datagrams for a peer that
    // reached us over TCP go back over its connection.
    let (mut tcp_rx, _tcp) = media.start_tcp();
    let mut core =
        Core { sfu, media, streams, metrics, clients: HashMap::new(), tcp_peers: HashMap::new(), batch: None };
    let mut buf = vec![0u8; 2048];
    let far = Duration::from_secs(3600);
    // The shard's counts, once a second (counting participants walks the
    // rooms: not for every datagram); the signaling side sums them into
    // the metrics and the summary log.
    let mut gauges = tokio::time::interval(GAUGES_EVERY);
    loop {
        let deadline = core.sfu.poll_timeout().unwrap_or_else(|| Instant::now() + far);
        let recv = std::future::poll_fn(|cx| core.media.poll_recv(cx, &mut buf));
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            first = recv => core.on_datagrams(first, &mut buf),
            cmd = cmds.recv() => match cmd {
                Some(cmd) => core.on_command(cmd),
                None => break,
            },
            Some(ev) = tcp_rx.recv() => core.on_tcp(ev),
            Some((key, report)) = reports.recv() => match report {
                Report::Ready(port) => core.streams.ready(key, port),
                Report::Event(ev) => core.sfu.handle_stream(key, ev, Instant::now()),
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                core.sfu.handle_timeout(Instant::now());
            }
            _ = gauges.tick() => {
                shard.stats.set(core.sfu.room_count(), core.sfu.participant_count(), core.streams.running());
            }
        }
        core.drain_outputs();
    }
    let (rooms, participants) = (core.sfu.room_count(), core.sfu.participant_count());
    info!(shard = shard.index, rooms, participants, "media loop stopped");
    core.streams.shutdown().await;
}

/// What the loop owns besides its channels: the core and everything its
/// outputs go to.
struct Core {
    sfu: Sfu,
    media: MediaSockets,
    streams: Streams,
    metrics: Metrics,
    /// Each open WebSocket's queue.
    clients: HashMap<ParticipantId, mpsc::Sender<ToClient>>,
    /// Peers that reached us over ICE-TCP, and their connection's queue.
    tcp_peers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    /// Datagrams for one destination gathered into one send.
    batch: Option<Batch>,
}

impl Core {
    /// The datagram that woke the loop (in `buf`), and whatever else is
    /// already queued, before the forwarded packets are released: a burst
    /// then costs one release per subscriber (see `Sfu::poll_timeout`).
    fn on_datagrams(&mut self, first: Arrival, buf: &mut [u8]) {
        let now = Instant::now();
        self.receive(Received::udp(first.source, first.destination, &buf[..first.len]), now);
        for _ in 0..RECV_BATCH {
            let Some(more) = self.media.try_recv(buf) else { break };
            self.receive(Received::udp(more.source, more.destination, &buf[..more.len]), now);
        }
        self.release();
    }

    fn receive(&mut self, d: Received<'_>, now: Instant) {
        self.metrics.datagrams_received.inc();
        self.metrics.bytes_received.inc_by(d.contents.len() as u64);
        self.sfu.handle_receive(d, now);
    }

    /// The forwarded packets leave now, not when the datagrams came in:
    /// the bandwidth estimator times them from this.
    fn release(&mut self) {
        let now = Instant::now();
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            self.sfu.handle_timeout(now);
        }
    }

    fn on_command(&mut self, cmd: CoreCmd) {
        match cmd {
            CoreCmd::Open { pid, ip, tx } => {
                self.sfu.handle_connect(pid, ip);
                self.clients.insert(pid, tx);
            }
            CoreCmd::Signal(pid, msg) => {
                // Errors are already turned into `error` + `Close` outputs.
                let _ = self.sfu.handle_signal(pid, msg, Instant::now());
            }
            CoreCmd::Closed(pid) => {
                self.clients.remove(&pid);
                self.sfu.handle_disconnect(pid, Instant::now());
            }
            CoreCmd::IsStreaming(name, tx) => {
                let _ = tx.send(self.sfu.is_streaming(&name));
            }
        }
    }

    fn on_tcp(&mut self, ev: TcpIn) {
        match ev {
            TcpIn::Open { peer, tx } => {
                self.tcp_peers.insert(peer, tx);
            }
            TcpIn::Datagram { peer, local, contents } => {
                self.receive(Received::tcp(peer, local, &contents), Instant::now());
                self.release();
            }
            TcpIn::Closed { peer } => {
                self.tcp_peers.remove(&peer);
            }
        }
    }

    /// Carries out everything the core has to say, then sends what was
    /// batched.
    fn drain_outputs(&mut self) {
        while let Some(out) = self.sfu.poll_output() {
            match out {
                Output::Transmit(t) => match self.tcp_peers.get(&t.destination) {
                    Some(tx) => {
                        let n = t.contents.len() as u64;
                        if ice_tcp::send(tx, t.contents) {
                            self.metrics.datagrams_sent.inc();
                            self.metrics.bytes_sent.inc_by(n);
                        } else {
                            self.metrics.datagrams_dropped.inc();
                        }
                    }
                    None => self.media.send(&mut self.batch, t.source, t.destination, t.contents),
                },
                Output::Signal(pid, msg) => self.signal(pid, &msg),
                Output::Close(pid, code) => {
                    if let Some(tx) = self.clients.remove(&pid) {
                        let _ = tx.try_send(ToClient::Close(code));
                    }
                }
                Output::Stream(key, o) => self.streams.handle(key, o),
            }
        }
        self.media.flush(&mut self.batch);
    }

    /// A message for one WebSocket; one too slow to take it is dropped
    /// rather than stall the room.
    fn signal(&mut self, pid: ParticipantId, msg: &ServerMsg) {
        let Some(tx) = self.clients.get(&pid) else { return };
        let text = match serde_json::to_string(msg) {
            Ok(t) => t,
            Err(e) => {
                warn!(error = %e, "could not serialize a server message");
                return;
            }
        };
        if tx.try_send(ToClient::Text(text)).is_err() {
            debug!(participant = %pid, "client queue full; dropping");
            let _ = tx.try_send(ToClient::Close(CloseCode::InternalError));
            self.clients.remove(&pid);
            self.sfu.handle_disconnect(pid, Instant::now());
        }
    }
}
