//! The forwarding hot path: one publisher's RTP packet in, the same packet
//! out to N subscribers (SRTP decrypt once, rewrite + encrypt N times).
//! Everything in memory, sessions really negotiated and connected first.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aconfi_core::{Kind, Output, Received};
use aconfi_testpeer::sim::Sim;
use aconfi_testpeer::ClientOutput;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// A room with one publisher and `n` viewers (they publish nothing, so each
/// subscriber session carries just the publisher's two m-lines).
fn room(n: usize) -> (Sim, usize) {
    let mut sim = Sim::new();
    let p = sim.join("bench-room", None);
    let subs: Vec<usize> = (0..n).map(|_| sim.join_viewer("bench-room")).collect();
    let pid = sim.peers[p].pid;
    let ready = sim.run_until(Duration::from_secs(120), |s| {
        subs.iter()
            .all(|&i| s.peers[i].peer.received(pid, Kind::Audio) > 0 && s.peers[i].peer.received(pid, Kind::Video) > 0)
    });
    assert!(ready, "all {n} subscribers receive the publisher");
    sim.peers[p].peer.set_publishing(false);
    sim.run_for(Duration::from_millis(200));
    (sim, p)
}

/// Makes `count` fresh SRTP packets of `kind` from the publisher (fresh,
/// because the SFU's replay protection rightly drops repeats).
fn packets(sim: &mut Sim, p: usize, kind: Kind, count: usize) -> Vec<(Instant, Vec<u8>)> {
    let mut out = Vec::with_capacity(count);
    let mut now = sim.now;
    while out.len() < count {
        now += Duration::from_micros(20);
        sim.peers[p].peer.send_frame(kind, now).expect("publisher writes");
        while let Some(o) = sim.peers[p].peer.poll_output() {
            if let ClientOutput::Transmit(d) = o {
                out.push((now, d.contents));
            }
        }
    }
    out.truncate(count);
    out
}

fn forward(c: &mut Criterion) {
    for kind in [Kind::Audio, Kind::Video] {
        let mut group = c.benchmark_group(format!("forward_{kind:?}").to_lowercase());
        group.measurement_time(Duration::from_secs(5));
        group.sample_size(30);
        for n in [1usize, 10, 100] {
            let (mut sim, p) = room(n);
            let from = sim.peers[p].addr;
            let to = sim.server_addr();
            group.throughput(Throughput::Elements(1));
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter_custom(|iters| {
                    let batch = packets(&mut sim, p, kind, iters as usize);
                    let start = Instant::now();
                    let mut sent = 0usize;
                    for (t, d) in &batch {
                        // As the server does for a batch of one datagram.
                        sim.sfu.handle_receive(Received::udp(from, to, d), *t);
                        if sim.sfu.poll_timeout().is_some_and(|due| due <= *t) {
                            sim.sfu.handle_timeout(*t);
                        }
                        while let Some(o) = sim.sfu.poll_output() {
                            if let Output::Transmit(t) = o {
                                sent += black_box(t.contents.len());
                            }
                        }
                    }
                    let elapsed = start.elapsed();
                    black_box(sent);
                    // Keep every session alive (STUN, RTCP) outside the timing.
                    sim.now = batch.last().map(|b| b.0).unwrap_or(sim.now);
                    sim.run_for(Duration::from_millis(50));
                    elapsed
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, forward);
criterion_main!(benches);
