//! Fuzzing on the stable toolchain: proptest drives mutated inputs into the
//! three places a stranger's bytes enter the core — the signaling parser
//! and the room logic behind it, the SDP offer path, and the UDP demux —
//! and checks that nothing panics and nobody else loses anything: the
//! others in the meeting keep their media, and every room is freed when
//! everyone is gone.
//!
//! `ACONFI_FUZZ_CASES` sets the cases per target (the test command runs a
//! short pass; `scripts/fuzz.sh` a long one). A failure prints the shrunk
//! input and proptest keeps it in `tests/fuzz.proptest-regressions`, so it
//! is replayed on every run after.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aconfi_core::protocol::PROTOCOL_VERSION;
use aconfi_core::{ClientMsg, Kind, Output, ParticipantId, Received, ServerMsg, Sfu, SfuConfig};
use aconfi_testpeer::sim::Sim;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("ACONFI_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    }
}

/// Every client message example in docs/protocol.md: the seeds mutations
/// start from.
fn client_examples() -> Vec<String> {
    let doc = include_str!("../../../docs/protocol.md");
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(l) = lines.next() {
        if l.trim() == "```json client" {
            out.push(lines.by_ref().take_while(|l| !l.starts_with("```")).collect::<Vec<_>>().join("\n"));
        }
    }
    assert!(out.len() > 20, "the examples are found");
    out
}

/// A byte-level mutation: flip, insert, delete, or splice a run.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Repeat(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 1usize..64, 1usize..50).prop_map(|(i, n, k)| Mutation::Repeat(i, n, k)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip(i, b) if !bytes.is_empty() => bytes[i % len] ^= b,
            Mutation::Insert(i, b) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Delete(i, n) if !bytes.is_empty() => {
                let at = i % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::Repeat(i, n, k) if !bytes.is_empty() => {
                let at = i % len;
                let end = (at + n).min(bytes.len());
                let run = bytes[at..end].to_vec();
                for _ in 0..*k {
                    bytes.splice(end..end, run.iter().copied());
                }
            }
            _ => {}
        }
    }
    bytes
}

fn drain(sfu: &mut Sfu) {
    while sfu.poll_output().is_some() {}
}

fn join(room: &str) -> ClientMsg {
    ClientMsg::Join {
        version: PROTOCOL_VERSION,
        room: room.into(),
        name: Some("F".into()),
        audio_muted: false,
        video_muted: false,
        password: None,
        e2ee: false,
    }
}

fn server() -> Sfu {
    let addr: SocketAddr = "127.0.0.1:10000".parse().unwrap();
    Sfu::new(SfuConfig { candidates: vec![addr], ..SfuConfig::default() })
}

proptest! {
    #![proptest_config(config(300))]

    /// Mutated client messages, in sequence, from several connections of
    /// one room: the parser never panics, the core never panics, and when
    /// everyone disconnects nothing is left.
    #[test]
    fn signaling(seq in prop::collection::vec((0usize..64, 0u64..4, prop::collection::vec(mutation(), 0..6)), 1..24)) {
        let seeds = client_examples();
        let mut sfu = server();
        let t0 = Instant::now();
        for pid in 1..=3u64 {
            let _ = sfu.handle_signal(ParticipantId(pid), join("fuzz-room"), t0);
        }
        for (n, (seed, pid, muts)) in seq.iter().enumerate() {
            let bytes = mutate(seeds[seed % seeds.len()].clone().into_bytes(), muts);
            let Ok(text) = std::str::from_utf8(&bytes) else { continue };
            if let Ok(msg) = serde_json::from_str::<ClientMsg>(text) {
                let _ = sfu.handle_signal(ParticipantId(*pid), msg, t0 + Duration::from_millis(n as u64));
            }
            drain(&mut sfu);
        }
        sfu.handle_timeout(t0 + Duration::from_secs(1));
        for pid in 0..4 {
            sfu.handle_disconnect(ParticipantId(pid), t0 + Duration::from_secs(2));
        }
        drain(&mut sfu);
        prop_assert_eq!((sfu.room_count(), sfu.participant_count()), (0, 0));
    }

    /// Mutated browser offers (bytes and whole lines): refused or accepted,
    /// never a panic, and the room still takes a real offer afterwards.
    #[test]
    fn sdp_offers(
        firefox in any::<bool>(),
        muts in prop::collection::vec(mutation(), 1..8),
        line_ops in prop::collection::vec((any::<usize>(), 0u8..3), 0..6),
    ) {
        let recorded = if firefox { include_str!("offers/firefox-153esr.json") } else { include_str!("offers/chromium-156-h264-first.json") };
        let ClientMsg::Offer { sdp, .. } = serde_json::from_str(recorded).unwrap() else { unreachable!() };
        let mut lines: Vec<String> = sdp.split("\r\n").map(str::to_string).collect();
        for (i, op) in &line_ops {
            let at = i % lines.len().max(1);
            match op {
                0 => { lines.remove(at); }
                1 => { let l = lines[at].clone(); lines.insert(at, l); }
                _ => {
                    let next = (at + 1) % lines.len();
                    lines.swap(at, next);
                }
            }
            if lines.is_empty() { lines.push(String::new()); }
        }
        let bent = mutate(lines.join("\r\n").into_bytes(), &muts);
        let bent = String::from_utf8_lossy(&bent).into_owned();
        let mut sfu = server();
        let t0 = Instant::now();
        sfu.handle_signal(ParticipantId(1), join("sdp-room"), t0).unwrap();
        let _ = sfu.handle_signal(ParticipantId(1), ClientMsg::Offer { sdp: bent, screen_mid: None }, t0);
        drain(&mut sfu);
        sfu.handle_signal(ParticipantId(2), join("sdp-room"), t0).unwrap();
        let real = sfu.handle_signal(ParticipantId(2), ClientMsg::Offer { sdp, screen_mid: None }, t0);
        prop_assert!(real.is_ok());
        let answered = std::iter::from_fn(|| sfu.poll_output())
            .any(|o| matches!(o, Output::Signal(p, ServerMsg::Answer { .. }) if p == ParticipantId(2)));
        prop_assert!(answered, "the next participant's real offer is answered");
    }
}

/// Datagram templates: what the media port sees from browsers (STUN, DTLS,
/// RTP, RTCP headers) and plain noise; mutated, then sent from strangers
/// and from the participants' own addresses.
fn datagram() -> impl Strategy<Value = Vec<u8>> {
    let stun = {
        let mut d = vec![0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42];
        d.extend_from_slice(&[7u8; 12]);
        d.extend_from_slice(&[0x00, 0x06, 0x00, 0x04, b'a', b'b', b'c', b'd']);
        d
    };
    let dtls = vec![0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 12, 1, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 12];
    let rtp = [vec![0x80, 0x60, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef], vec![0u8; 100]].concat();
    let rtcp = vec![
        0x81, 0xc9, 0x00, 0x07, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0,
    ];
    prop_oneof![
        (Just(stun), prop::collection::vec(mutation(), 0..4)).prop_map(|(d, m)| mutate(d, &m)),
        (Just(dtls), prop::collection::vec(mutation(), 0..4)).prop_map(|(d, m)| mutate(d, &m)),
        (Just(rtp), prop::collection::vec(mutation(), 0..4)).prop_map(|(d, m)| mutate(d, &m)),
        (Just(rtcp), prop::collection::vec(mutation(), 0..4)).prop_map(|(d, m)| mutate(d, &m)),
        prop::collection::vec(any::<u8>(), 0..1500),
    ]
}

proptest! {
    #![proptest_config(config(40))]

    /// Garbage on the media port during a meeting, from strangers and from
    /// the members' own addresses: no panic, and the two members keep
    /// receiving each other's audio and video.
    #[test]
    fn udp_demux(garbage in prop::collection::vec((datagram(), 0u8..3), 1..64)) {
        let mut sim = Sim::new();
        let a = sim.join("udp-room", Some("A"));
        let b = sim.join("udp-room", Some("B"));
        let (pa, pb) = (sim.peers[a].pid, sim.peers[b].pid);
        prop_assert!(sim.run_until(Duration::from_secs(5), |s| s.peers[a].peer.received(pb, Kind::Video) > 5
            && s.peers[b].peer.received(pa, Kind::Video) > 5));
        let server = sim.server_addr();
        for (i, (d, from)) in garbage.iter().enumerate() {
            let source = match from {
                0 => SocketAddr::from(([203, 0, 113, 9], 40000 + i as u16)),
                1 => sim.peers[a].addr,
                _ => sim.peers[b].addr,
            };
            sim.sfu.handle_receive(Received::udp(source, server, d), sim.now);
        }
        let before = [sim.peers[a].peer.received(pb, Kind::Audio), sim.peers[b].peer.received(pa, Kind::Audio)];
        prop_assert!(sim.run_until(Duration::from_secs(5), |s| {
            s.peers[a].peer.received(pb, Kind::Audio) > before[0] + 20 && s.peers[b].peer.received(pa, Kind::Audio) > before[1] + 20
        }), "media goes on after the garbage");
        prop_assert_eq!(sim.sfu.participant_count(), 2);
    }
}
