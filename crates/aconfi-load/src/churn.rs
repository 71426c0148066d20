//! The churn soak: many small rooms where people keep joining and leaving,
//! some vanishing without a word (their task dropped: the sockets close with
//! no `leave`), while garbage datagrams hit the media port. It measures
//! nothing about media quality; it is there to find leaks, panics and
//! state left behind. `scripts/soak.sh` runs it against a real server and
//! checks afterwards that every room is freed and memory is back.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::participant::{self, Setup};
use crate::procstat;

/// Most people in one churned room.
const ROOM_MAX: usize = 4;
/// Garbage datagrams sent per second.
const GARBAGE_PER_SECOND: usize = 50;

/// What the soak did and what the server's memory did meanwhile.
#[derive(Debug, Default, Serialize)]
pub struct ChurnReport {
    pub rooms: usize,
    pub seconds: u64,
    pub joins: u64,
    pub leaves: u64,
    pub vanished: u64,
    /// Participants that ended with an error of their own (the server
    /// closed them, or a connection failed).
    pub errors: u64,
    pub garbage_datagrams: u64,
    pub rss_kib_start: Option<u64>,
    pub rss_kib_peak: Option<u64>,
    pub rss_kib_end: Option<u64>,
}

struct Member {
    leave: CancellationToken,
    task: JoinHandle<anyhow::Result<participant::Outcome>>,
}

/// xorshift64: repeatable choices without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Runs the churn for `seconds` over `rooms` rooms; `make(i, room,
/// publish)` describes participant `i`.
pub async fn run(
    rooms: usize,
    seconds: u64,
    garbage_to: Option<SocketAddr>,
    server_pid: Option<u32>,
    make: impl Fn(usize, String, bool) -> Setup,
) -> anyhow::Result<ChurnReport> {
    let tck = procstat::clk_tck();
    let rss = || server_pid.and_then(|p| procstat::sample(p, tck)).map(|s| s.rss_kib);
    let mut report = ChurnReport { rooms, seconds, rss_kib_start: rss(), ..ChurnReport::default() };
    let mut peak = report.rss_kib_start;
    let garbage = UdpSocket::bind("127.0.0.1:0").await?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut members: Vec<Vec<Member>> = (0..rooms).map(|_| Vec::new()).collect();
    let mut next = 0usize;
    let (_reset_tx, reset_rx) = watch::channel(0u64);
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut join = |room: usize, members: &mut Vec<Member>, report: &mut ChurnReport| {
        // The first in a room publishes audio and video; the others watch.
        let setup = make(next, format!("churn-room-{room}"), members.is_empty());
        next += 1;
        let (tx, _rx) = watch::channel(participant::Progress::default());
        let leave = CancellationToken::new();
        let task = tokio::spawn(participant::run_aconfi(setup, tx, reset_rx.clone(), leave.clone()));
        members.push(Member { leave, task });
        report.joins += 1;
    };
    while Instant::now() < end {
        tick.tick().await;
        for (room, list) in members.iter_mut().enumerate() {
            // Those that ended by themselves: errors (a leave ends none).
            let before = list.len();
            list.retain(|m| !m.task.is_finished());
            report.errors += (before - list.len()) as u64;
            match rng.below(4) {
                _ if list.len() < 2 => join(room, list, &mut report),
                0 if list.len() < ROOM_MAX => join(room, list, &mut report),
                1 => {
                    let m = list.remove(rng.below(list.len() as u64) as usize);
                    m.leave.cancel();
                    report.leaves += 1;
                }
                2 => {
                    let m = list.remove(rng.below(list.len() as u64) as usize);
                    m.task.abort();
                    report.vanished += 1;
                }
                _ => {}
            }
        }
        if let Some(to) = garbage_to {
            for _ in 0..GARBAGE_PER_SECOND {
                let len = rng.below(1200) as usize;
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let _ = garbage.send_to(&bytes, to).await;
                report.garbage_datagrams += 1;
            }
        }
        peak = peak.max(rss());
    }
    // Everyone left leaves properly.
    for m in members.into_iter().flatten() {
        m.leave.cancel();
        report.leaves += 1;
        let _ = m.task.await;
    }
    report.rss_kib_peak = peak;
    report.rss_kib_end = rss();
    Ok(report)
}
