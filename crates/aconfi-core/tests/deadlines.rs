//! Connections that never become a working participant do not stay: one
//! that joins and never offers, or offers and never completes ICE, is
//! closed with 4005 after `CONNECT_DEADLINE`, and the room it was alone in
//! is freed; one whose media connects stays.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aconfi_core::{ClientMsg, CloseCode, Kind, Output, ParticipantId, Sfu, SfuConfig, CONNECT_DEADLINE};
use aconfi_testpeer::silent_join as join;
use aconfi_testpeer::sim::Sim;

/// Drives the SFU's timers up to `until`; the connections it closed.
fn run(sfu: &mut Sfu, until: Instant) -> Vec<(ParticipantId, CloseCode)> {
    let mut closed = Vec::new();
    loop {
        while let Some(o) = sfu.poll_output() {
            if let Output::Close(pid, code) = o {
                closed.push((pid, code));
            }
        }
        match sfu.poll_timeout() {
            Some(t) if t <= until => sfu.handle_timeout(t),
            _ => break,
        }
    }
    closed
}

#[test]
fn joined_but_never_offering_is_closed_after_the_deadline_and_its_room_freed() {
    let server: SocketAddr = "127.0.0.1:10000".parse().unwrap();
    let mut sfu = Sfu::new(SfuConfig { candidates: vec![server], ..SfuConfig::default() });
    let t0 = Instant::now();
    // A thousand such connections used to stay for ever; a few show it.
    for i in 1..=5 {
        sfu.handle_signal(ParticipantId(i), join(&format!("idle-room-{i}")), t0).unwrap();
    }
    // One offers and never completes ICE (its offer is a real browser's,
    // its candidates unreachable).
    let offer: ClientMsg = serde_json::from_str(include_str!("offers/firefox-153esr.json")).expect("a recorded offer");
    sfu.handle_signal(ParticipantId(1), offer, t0).unwrap();
    assert_eq!(sfu.participant_count(), 5);

    assert!(run(&mut sfu, t0 + CONNECT_DEADLINE - Duration::from_millis(1)).is_empty(), "nobody closed early");
    assert_eq!(sfu.participant_count(), 5);
    let closed = run(&mut sfu, t0 + CONNECT_DEADLINE + Duration::from_secs(1));
    let mut ids: Vec<u64> = closed.iter().map(|(p, _)| p.0).collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    assert!(closed.iter().all(|(_, c)| *c == CloseCode::MediaFailed));
    assert_eq!((sfu.participant_count(), sfu.room_count()), (0, 0), "everything freed");
}

#[test]
fn a_participant_whose_media_connects_stays_past_the_deadline() {
    let mut sim = Sim::new();
    let a = sim.join("connected-room", Some("A"));
    let b = sim.join("connected-room", Some("B"));
    let from = sim.peers[a].pid;
    assert!(sim.run_until(Duration::from_secs(5), |s| s.peers[b].peer.received(from, Kind::Audio) > 5));
    sim.run_for(CONNECT_DEADLINE + Duration::from_secs(5));
    assert_eq!(sim.sfu.participant_count(), 2);
    assert!(sim.peers.iter().all(|p| p.open && p.closed_with.is_none()));
}

#[test]
fn an_offer_with_too_many_m_lines_or_bytes_is_refused_before_it_is_parsed() {
    let server: SocketAddr = "127.0.0.1:10000".parse().unwrap();
    let mut sfu = Sfu::new(SfuConfig { candidates: vec![server], ..SfuConfig::default() });
    let t0 = Instant::now();
    let ClientMsg::Offer { sdp, .. } =
        serde_json::from_str(include_str!("offers/firefox-153esr.json")).expect("a recorded offer")
    else {
        panic!("an offer")
    };
    // The recorded offer with its first m-section repeated: 1600 m-lines.
    let start = sdp.find("m=").unwrap();
    let end = start + sdp[start + 2..].find("m=").unwrap() + 2;
    let huge = format!("{}{}", sdp, sdp[start..end].repeat(1597));
    assert!(huge.len() > 200_000);
    // Just over the m-line cap, and just over the size cap.
    let section = &sdp[start..end];
    let extra: String = (0..aconfi_core::MAX_OFFER_MLINES - 2)
        .map(|n| section.replace("a=mid:0\r\n", &format!("a=mid:x{n}\r\n")))
        .collect();
    let over_lines = format!("{sdp}{extra}");
    let over_bytes = sdp.replacen("a=sendrecv\r\n", &format!("a=x-pad:{}\r\na=sendrecv\r\n", "x".repeat(40_000)), 1);
    for (i, bad) in [huge, over_lines, over_bytes].into_iter().enumerate() {
        let pid = ParticipantId(i as u64 + 1);
        sfu.handle_signal(pid, join("offer-room"), t0).unwrap();
        let err = sfu.handle_signal(pid, ClientMsg::Offer { sdp: bad, screen_mid: None }, t0).unwrap_err();
        assert_eq!(err.close_code(), Some(CloseCode::BadSdp), "offer {i}");
    }
    // The real offer is fine.
    sfu.handle_signal(ParticipantId(9), join("offer-room"), t0).unwrap();
    sfu.handle_signal(ParticipantId(9), ClientMsg::Offer { sdp, screen_mid: None }, t0).unwrap();
}
