//! Three str0m peers meet in one room on a virtual clock: media flows both
//! ways between all of them, a leaver's tracks are renegotiated away, and
//! the room is gone after the last leave.

use std::time::Duration;

use aconfi_core::{Kind, ServerMsg};
use aconfi_testpeer::sim::Sim;

const ROOM: &str = "kelomari-tusefopa-bidanuve";

fn all_receive_from_all(sim: &Sim, idx: &[usize], at_least: u64) -> bool {
    idx.iter().all(|&i| {
        idx.iter().filter(|&&j| j != i).all(|&j| {
            let from = sim.peers[j].pid;
            sim.peers[i].peer.received(from, Kind::Audio) >= at_least
                && sim.peers[i].peer.received(from, Kind::Video) >= at_least
        })
    })
}

#[test]
fn three_peers_exchange_media_and_the_room_dies_with_the_last_leave() {
    let mut sim = Sim::new();
    let a = sim.join(ROOM, Some("Ada"));
    let b = sim.join(ROOM, Some("Bob"));
    let c = sim.join(ROOM, None);

    assert!(
        sim.run_until(Duration::from_secs(10), |s| all_receive_from_all(s, &[a, b, c], 20)),
        "every peer receives audio and video of both others"
    );
    assert_eq!(sim.sfu.room_count(), 1);
    assert_eq!(sim.sfu.participant_count(), 3);
    // Names travel to the others, as given.
    assert_eq!(
        sim.peers[c].peer.participants().get(&sim.peers[a].pid).and_then(|p| p.name.clone()),
        Some("Ada".to_string())
    );

    // C leaves: A and B are told, get a new offer without C's tracks, and
    // keep receiving each other.
    let c_pid = sim.peers[c].pid;
    sim.leave(c);
    assert_eq!(sim.peers[c].closed_with, Some(1000));
    let before = [
        sim.peers[a].peer.received(sim.peers[b].pid, Kind::Video),
        sim.peers[b].peer.received(sim.peers[a].pid, Kind::Video),
    ];
    sim.run_for(Duration::from_secs(2));
    for (i, other) in [(a, b), (b, a)] {
        let p = &sim.peers[i];
        assert!(p.inbox.iter().any(|m| matches!(m, ServerMsg::ParticipantLeft { id } if *id == c_pid)));
        let last_offer = p.inbox.iter().rev().find_map(|m| match m {
            ServerMsg::Offer { sdp, tracks } => Some((sdp.clone(), tracks.clone())),
            _ => None,
        });
        let (sdp, tracks) = last_offer.expect("a renegotiation offer");
        assert!(tracks.iter().all(|t| t.participant != c_pid), "offer still lists the leaver");
        assert_eq!(tracks.len(), 2, "audio and video of the one other peer");
        // The leaver's two m-lines are stopped (port 0), per RFC 8843.
        assert_eq!(sdp.matches("m=audio 0 ").count() + sdp.matches("m=video 0 ").count(), 2, "{sdp}");
        assert!(p.peer.tracks().all(|t| t.participant != c_pid));
        assert!(!p.peer.participants().contains_key(&c_pid));
        let _ = other;
    }
    let after = [
        sim.peers[a].peer.received(sim.peers[b].pid, Kind::Video),
        sim.peers[b].peer.received(sim.peers[a].pid, Kind::Video),
    ];
    assert!(after[0] > before[0] + 30 && after[1] > before[1] + 30, "{before:?} -> {after:?}");
    assert!(sim.sfu.has_room(ROOM));

    sim.leave(a);
    sim.leave(b);
    assert_eq!(sim.sfu.room_count(), 0);
    assert_eq!(sim.sfu.participant_count(), 0);
    assert!(!sim.sfu.has_room(ROOM));
    assert_eq!(sim.sfu.poll_timeout(), None, "nothing left to drive");
}

#[test]
fn a_newcomer_gets_a_picture_at_once() {
    let mut sim = Sim::new();
    let a = sim.join(ROOM, None);
    let b = sim.join(ROOM, None);
    assert!(sim.run_until(Duration::from_secs(10), |s| all_receive_from_all(s, &[a, b], 5)));
    sim.run_for(Duration::from_millis(500));
    // The publisher's periodic keyframe is 2 s away; the newcomer's PLI
    // (relayed by the SFU) must bring video well before that.
    let c = sim.join(ROOM, None);
    let from = sim.peers[a].pid;
    let start = sim.now;
    assert!(sim.run_until(Duration::from_secs(5), |s| s.peers[c].peer.received(from, Kind::Video) > 0));
    assert!(sim.now - start < Duration::from_secs(1), "took {:?}", sim.now - start);
}

/// Renegotiations batch: a newcomer's microphone and camera reach those
/// already there in one offer, and a burst of newcomers costs each member
/// far fewer offers than newcomers' tracks.
#[test]
fn joins_in_a_burst_batch_the_offers() {
    let mut sim = Sim::new();
    let a = sim.join(ROOM, None);
    let b = sim.join(ROOM, None);
    assert!(sim.run_until(Duration::from_secs(10), |s| all_receive_from_all(s, &[a, b], 5)));
    let before = sim.peers[a].peer.offers();
    let c = sim.join(ROOM, None);
    assert!(sim.run_until(Duration::from_secs(10), |s| all_receive_from_all(s, &[a, b, c], 5)));
    assert_eq!(sim.peers[a].peer.offers() - before, 1, "one offer for the newcomer's audio and video");

    // Five more at once: each member present gets at most one offer per
    // newcomer (ten tracks), fewer when they come while an offer is out.
    let before: Vec<u32> = [a, b, c].iter().map(|&i| sim.peers[i].peer.offers()).collect();
    let burst: Vec<usize> = (0..5).map(|_| sim.join(ROOM, None)).collect();
    let everyone: Vec<usize> = [a, b, c].into_iter().chain(burst).collect();
    assert!(sim.run_until(Duration::from_secs(10), |s| all_receive_from_all(s, &everyone, 5)));
    for (i, n) in [a, b, c].iter().zip(before) {
        let offers = sim.peers[*i].peer.offers() - n;
        assert!((1..=5).contains(&offers), "{offers} offers for five newcomers");
    }
}

#[test]
fn rooms_are_separate() {
    let mut sim = Sim::new();
    let a = sim.join("room-one", None);
    let b = sim.join("room-two", None);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.sfu.room_count(), 2);
    assert!(sim.peers[a].peer.participants().is_empty());
    assert!(sim.peers[b].peer.participants().is_empty());
    assert_eq!(sim.peers[a].peer.tracks().count(), 0);
}

#[test]
fn a_full_room_refuses_the_next_joiner_and_others_stay() {
    use aconfi_core::MAX_PARTICIPANTS_PER_ROOM;
    let mut sim = Sim::new();
    for _ in 0..MAX_PARTICIPANTS_PER_ROOM {
        sim.join_viewer("crowded-room");
    }
    sim.flush();
    assert_eq!(sim.sfu.participant_count(), MAX_PARTICIPANTS_PER_ROOM);
    let late = sim.join_viewer("crowded-room");
    sim.flush();
    assert_eq!(sim.peers[late].closed_with, Some(4008));
    assert_eq!(sim.sfu.participant_count(), MAX_PARTICIPANTS_PER_ROOM);
    // Another room is unaffected.
    let other = sim.join_viewer("quiet-room");
    sim.flush();
    assert_eq!(sim.peers[other].closed_with, None);
}

#[test]
fn a_silent_camera_costs_nobody_an_m_line_until_it_sends() {
    let mut sim = Sim::new();
    let a = sim.join(ROOM, None);
    let b = sim.join(ROOM, None);
    sim.peers[b].peer.set_publishing(false);
    let (ia, ib) = (sim.peers[a].pid, sim.peers[b].pid);
    assert!(sim.run_until(Duration::from_secs(10), |s| s.peers[b].peer.received(ia, Kind::Video) > 10));
    assert_eq!(
        sim.peers[a].peer.tracks().filter(|t| t.participant == ib).count(),
        0,
        "nothing offered for a silent publisher"
    );
    sim.peers[b].peer.set_publishing(true);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.peers[a].peer.received(ib, Kind::Video) > 5));
    assert_eq!(sim.peers[a].peer.tracks().filter(|t| t.participant == ib).count(), 2);
}
