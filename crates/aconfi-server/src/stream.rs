//! Live streaming workers: one `aconfi-stream` process per streamed
//! meeting. The core says when to start and stop one and what it composes;
//! this module runs the process, talks JSON lines over its stdin/stdout
//! (those of `aconfi-stream-protocol`, which the worker reads and writes
//! too) and sends it plain RTP from a loopback socket connected to the
//! worker's (so nobody else can feed it, and it listens nowhere else).
//!
//! The server never links GStreamer: the worker is a separate binary,
//! found next to `aconfi` or on `PATH` (or named by `--stream-worker`) and
//! asked at start whether it can work (`aconfi-stream --check`). A worker
//! that crashes ends only its stream. The ingest URL (with its key) goes to
//! the worker on stdin — never argv, which every local user can read — and
//! is scrubbed from anything the worker prints before it reaches the log.

use std::collections::HashMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use aconfi_core::{SourceKind, StreamEvent, StreamKey, StreamOut, StreamSource, StreamStatus, StreamUrl};
use aconfi_stream_protocol::{self as protocol, Event};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::ingest::IngestPolicy;

/// The worker binary's name.
pub const WORKER: &str = "aconfi-stream";

/// How long a stopping worker may take to end its publish cleanly.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Longest line read from a worker (a longer one ends it).
const MAX_LINE: usize = 4096;

/// Whether streaming can work here, decided once at start.
#[derive(Debug, Clone)]
pub enum Availability {
    /// The worker at this path passed its self-check.
    Ready(PathBuf),
    /// Why not (shown to moderators).
    Unavailable(String),
}

impl Availability {
    /// Finds the worker and runs its self-check (GStreamer and every
    /// element it needs present).
    pub async fn probe(configured: Option<&Path>) -> Availability {
        let Some(path) = configured.map(Path::to_path_buf).or_else(find_worker) else {
            return Availability::Unavailable(format!(
                "the streaming worker ({WORKER}) is not installed next to this server; build it with \
                 `cargo build --release --bin {WORKER}` (it needs GStreamer, see the README)"
            ));
        };
        let check = Command::new(&path).arg("--check").stdin(Stdio::null()).kill_on_drop(true).output();
        match tokio::time::timeout(Duration::from_secs(20), check).await {
            Ok(Ok(out)) if out.status.success() => Availability::Ready(path),
            Ok(Ok(out)) => {
                let said: String = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(300)
                    .collect();
                Availability::Unavailable(if said.is_empty() {
                    format!("the streaming worker's self-check failed ({})", out.status)
                } else {
                    said
                })
            }
            Ok(Err(e)) => Availability::Unavailable(format!("the streaming worker could not be run: {e}")),
            Err(_) => Availability::Unavailable("the streaming worker's self-check did not finish".into()),
        }
    }

    /// The reason to give moderators, if streaming is unavailable.
    pub fn reason(&self) -> Option<String> {
        match self {
            Availability::Ready(_) => None,
            Availability::Unavailable(r) => Some(r.clone()),
        }
    }
}

/// `aconfi-stream` next to our own executable, else on `PATH`.
fn find_worker() -> Option<PathBuf> {
    let beside = std::env::current_exe().ok()?.parent()?.join(WORKER);
    if beside.is_file() {
        return Some(beside);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(WORKER)).find(|p| p.is_file())
}

/// A worker's report, as the media task receives it.
#[derive(Debug)]
pub enum Report {
    /// Its RTP socket is bound at this loopback port.
    Ready(u16),
    /// Something for the core.
    Event(StreamEvent),
}

/// A source as the worker's `sources` command carries it.
fn wire_source(s: StreamSource) -> protocol::Source {
    let kind = match s.kind {
        SourceKind::Camera => protocol::Kind::Camera,
        SourceKind::Screen => protocol::Kind::Screen,
        SourceKind::Audio => protocol::Kind::Audio,
    };
    protocol::Source {
        clock_rate: s.clock_rate,
        // The core names the codecs it taps (`VP8`, `H264`, `opus`), as
        // `protocol::Codec::name` does.
        codec: s.codec.to_string(),
        kind: kind.name().to_string(),
        name: s.name,
        person: s.person,
        pt: s.pt,
        ssrc: s.ssrc,
    }
}

/// A worker's state as the core knows it.
fn status(state: protocol::State) -> StreamStatus {
    match state {
        protocol::State::Starting => StreamStatus::Starting,
        protocol::State::Live => StreamStatus::Live,
        protocol::State::Reconnecting => StreamStatus::Reconnecting,
        protocol::State::Failed => StreamStatus::Failed,
    }
}

struct Worker {
    /// Sends plain RTP; connected to the worker's socket once it is ready.
    socket: UdpSocket,
    ready: bool,
    /// Commands for its stdin; dropping this closes stdin, which stops it.
    stdin: mpsc::UnboundedSender<protocol::Command>,
}

/// The running workers of this server, owned by the media task.
pub struct Streams {
    availability: Availability,
    policy: IngestPolicy,
    workers: HashMap<StreamKey, Worker>,
    reports: mpsc::UnboundedSender<(StreamKey, Report)>,
    tracker: TaskTracker,
}

impl Streams {
    /// No workers yet; their reports will arrive on `reports`.
    pub fn new(
        availability: Availability,
        policy: IngestPolicy,
        reports: mpsc::UnboundedSender<(StreamKey, Report)>,
    ) -> Self {
        Streams { availability, policy, workers: HashMap::new(), reports, tracker: TaskTracker::new() }
    }

    /// Workers running now.
    pub fn running(&self) -> usize {
        self.workers.len()
    }

    /// Carries out one of the core's stream outputs.
    pub fn handle(&mut self, key: StreamKey, out: StreamOut) {
        match out {
            StreamOut::Rtp(packet) => {
                if let Some(w) = self.workers.get(&key).filter(|w| w.ready) {
                    // A full socket buffer drops the packet: the worker's
                    // jitter buffer and a keyframe request recover, and the
                    // meeting never waits for the stream.
                    let _ = w.socket.send(&packet);
                }
            }
            StreamOut::Sources(sources) => {
                if let Some(w) = self.workers.get(&key) {
                    let sources = sources.into_iter().map(wire_source).collect();
                    let _ = w.stdin.send(protocol::Command::Sources { sources });
                }
            }
            StreamOut::Start { url } => {
                if let Err(reason) = self.start(key, url) {
                    let _ = self.reports.send((key, Report::Event(StreamEvent::Exited { reason })));
                }
            }
            StreamOut::Stop => {
                if let Some(w) = self.workers.remove(&key) {
                    let _ = w.stdin.send(protocol::Command::Stop);
                    // Dropping `w` closes stdin once that line is written.
                }
            }
        }
    }

    /// A worker said it is ready: connect our socket to its.
    pub fn ready(&mut self, key: StreamKey, port: u16) {
        let Some(w) = self.workers.get_mut(&key) else { return };
        match w.socket.connect((Ipv4Addr::LOCALHOST, port)) {
            Ok(()) => w.ready = true,
            Err(e) => warn!(error = %e, "could not connect to the streaming worker"),
        }
    }

    /// Stops every worker and waits (briefly) for them to end their publish.
    pub async fn shutdown(mut self) {
        for (key, _) in std::mem::take(&mut self.workers) {
            debug!(room = %key.room, "stopping stream worker at shutdown");
        }
        self.tracker.close();
        let _ = tokio::time::timeout(STOP_GRACE + Duration::from_secs(1), self.tracker.wait()).await;
    }

    /// Opens the loopback socket at once (RTP for the stream is sent as
    /// soon as the worker is ready) and, on a task, checks where the stream
    /// goes and only then starts the worker; a refusal ends the stream with
    /// its reason, and no connection is made anywhere.
    fn start(&mut self, key: StreamKey, url: StreamUrl) -> Result<(), String> {
        let Availability::Ready(path) = &self.availability else {
            return Err(self.availability.reason().unwrap_or_default());
        };
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|_| "could not open a loopback socket for the stream".to_string())?;
        let peer = socket.local_addr().map_err(|_| "could not open a loopback socket for the stream".to_string())?;
        let (stdin_tx, stdin_rx) = mpsc::unbounded_channel();
        let (path, policy, reports) = (path.clone(), self.policy.clone(), self.reports.clone());
        self.tracker.spawn(async move {
            let ingest = match policy.check(&url.0).await {
                Ok(ingest) => ingest,
                Err(reason) => {
                    debug!(room = %key.room, "stream refused: its ingest address is not allowed");
                    let _ = reports.send((key, Report::Event(StreamEvent::Exited { reason: reason.into() })));
                    return;
                }
            };
            if stdin_rx.is_closed() {
                // Stopped (or its room closed) while the address was checked.
                return;
            }
            let child = Command::new(&path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn();
            let Ok(child) = child else {
                let reason = "the streaming worker could not be started".to_string();
                let _ = reports.send((key, Report::Event(StreamEvent::Exited { reason })));
                return;
            };
            // The first line: where to publish, the one address to connect
            // to, and where RTP comes from. Sent before anything queued.
            let first = protocol::Command::Start { connect: ingest.addr, peer, url: url.0.clone() };
            debug!(room = %key.room, "stream worker started");
            supervise(key, child, first, stdin_rx, reports, url).await;
        });
        self.workers.insert(key, Worker { socket, ready: false, stdin: stdin_tx });
        Ok(())
    }
}

/// Runs one worker process: feeds its stdin, reads its reports and its
/// log, and reports its end unless it said why itself. Once it is asked to
/// stop (or its stream is dropped) it has [`STOP_GRACE`] to finish.
async fn supervise(
    key: StreamKey,
    mut child: Child,
    first: protocol::Command,
    mut stdin_rx: mpsc::UnboundedReceiver<protocol::Command>,
    reports: mpsc::UnboundedSender<(StreamKey, Report)>,
    url: StreamUrl,
) {
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return;
    };
    let secrets = Secrets::new(&url.0);
    drop(url);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            debug!(room = %key.room, "stream worker: {}", secrets.scrub(&line));
        }
    });
    let writer = tokio::spawn(async move {
        let mut next = Some(first);
        loop {
            let command = match next.take() {
                Some(first) => first,
                None => match stdin_rx.recv().await {
                    Some(command) => command,
                    None => break,
                },
            };
            let line = command.to_line();
            if stdin.write_all(line.as_bytes()).await.is_err() || stdin.write_all(b"\n").await.is_err() {
                return;
            }
            let _ = stdin.flush().await;
            if matches!(command, protocol::Command::Stop) {
                break;
            }
        }
        // Dropping stdin here closes it: EOF stops the worker too.
    });
    let deadline = async move {
        let _ = writer.await;
        tokio::time::sleep(STOP_GRACE).await;
    };
    tokio::pin!(deadline);
    let mut out = BufReader::new(stdout);
    let mut line = String::new();
    let mut said_end = false;
    loop {
        line.clear();
        let mut limited = (&mut out).take(MAX_LINE as u64);
        let read = tokio::select! {
            r = limited.read_line(&mut line) => r,
            _ = &mut deadline => break,
        };
        if !matches!(read, Ok(n) if n > 0) {
            break;
        }
        let report = match Event::parse(&line) {
            Ok(Event::Ready { port }) => Report::Ready(port),
            Ok(Event::State { state, reason }) => {
                let state = status(state);
                said_end |= !state.is_active();
                Report::Event(StreamEvent::State { state, reason: reason.map(|r| r.as_str().to_string()) })
            }
            Ok(Event::Keyframe { ssrc }) => Report::Event(StreamEvent::Keyframe { ssrc }),
            Err(_) => continue,
        };
        let _ = reports.send((key, report));
    }
    // Its stdout closed (it is ending) or its time is up.
    let status = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(s) => s.ok(),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    debug!(room = %key.room, ?status, "stream worker ended");
    if !said_end {
        // An error, said without which meeting it was.
        warn!("a streaming worker stopped unexpectedly");
        // Ignored by the core if the stream was stopped meanwhile.
        let reason = "the streaming worker stopped unexpectedly".to_string();
        let _ = reports.send((key, Report::Event(StreamEvent::Exited { reason })));
    }
}

/// The URL and its stream key, to be cut out of anything a worker prints.
struct Secrets(Vec<String>);

impl Secrets {
    fn new(url: &str) -> Self {
        let mut parts = vec![url.to_string()];
        // The key is the last path segment; a query string may carry one
        // too. Short pieces are left alone: cutting out every "live" would
        // blank the worker's own words.
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let last = path.rsplit('/').next().unwrap_or("");
        let values = query.split('&').filter_map(|kv| kv.split_once('=').map(|(_, v)| v));
        parts.extend(std::iter::once(last).chain(values).filter(|p| p.len() >= 6).map(str::to_string));
        Secrets(parts)
    }

    fn scrub(&self, line: &str) -> String {
        let mut s = line.to_string();
        for p in &self.0 {
            s = s.replace(p.as_str(), "<redacted>");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_output_never_carries_the_url_or_key() {
        let s = Secrets::new("rtmps://a.rtmps.youtube.com/live2/abcd-efgh-ijkl?pw=hunter22");
        let line = "connecting to rtmps://a.rtmps.youtube.com/live2/abcd-efgh-ijkl?pw=hunter22 (key abcd-efgh-ijkl)";
        let scrubbed = s.scrub(line);
        assert!(!scrubbed.contains("abcd-efgh-ijkl"), "{scrubbed}");
        assert!(!scrubbed.contains("hunter22"), "{scrubbed}");
        assert_eq!(s.scrub("aconfi-stream: live"), "aconfi-stream: live", "the worker's own words stay");
    }

    /// The `sources` line is the bytes the server wrote before the protocol
    /// crate: the core's sources serialized as they are.
    #[test]
    fn sources_line_is_the_cores_sources_as_before() {
        let sources = vec![
            StreamSource {
                ssrc: 1,
                person: 3,
                name: "Ada".into(),
                kind: SourceKind::Camera,
                codec: "VP8",
                pt: 96,
                clock_rate: 90000,
            },
            StreamSource {
                ssrc: 2,
                person: 3,
                name: "Ada".into(),
                kind: SourceKind::Screen,
                codec: "H264",
                pt: 102,
                clock_rate: 90000,
            },
            StreamSource {
                ssrc: 3,
                person: 3,
                name: "Ada".into(),
                kind: SourceKind::Audio,
                codec: "opus",
                pt: 111,
                clock_rate: 48000,
            },
        ];
        let before = serde_json::json!({ "cmd": "sources", "sources": sources }).to_string();
        let wire: Vec<protocol::Source> = sources.into_iter().map(wire_source).collect();
        assert!(wire.iter().all(|s| s.kind().is_some() && s.codec().is_some()), "{wire:?}");
        assert_eq!(protocol::Command::Sources { sources: wire }.to_line(), before);
    }
}
