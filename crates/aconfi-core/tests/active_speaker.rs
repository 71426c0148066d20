//! Active speaker: the room names who is speaking, from the audio levels
//! in the packets' headers (RFC 6464), on a virtual clock with real str0m
//! peers.

use std::time::Duration;

use aconfi_core::{ClientMsg, ParticipantId, ServerMsg};
use aconfi_testpeer::sim::Sim;

const ROOM: &str = "speaker-room";

/// The speakers peer `i` was told of, in order.
fn speakers(sim: &Sim, i: usize) -> Vec<ParticipantId> {
    sim.peers[i]
        .inbox
        .iter()
        .filter_map(|m| match m {
            ServerMsg::ActiveSpeaker { participant } => Some(*participant),
            _ => None,
        })
        .collect()
}

fn level(sim: &mut Sim, i: usize, dbov: i8) {
    sim.peers[i].peer.media_mut().set_audio_level(Some(dbov));
}

/// Runs until every peer's last speaker is `who`; false after 5 s.
fn all_told(sim: &mut Sim, who: ParticipantId) -> bool {
    sim.run_until(Duration::from_secs(5), |s| (0..s.peers.len()).all(|i| speakers(s, i).last() == Some(&who)))
}

fn meeting_of_three() -> (Sim, [ParticipantId; 3]) {
    let mut sim = Sim::new();
    let ids = [sim.join(ROOM, Some("A")), sim.join(ROOM, Some("B")), sim.join(ROOM, Some("C"))];
    for i in ids {
        level(&mut sim, i, -127);
    }
    // Everyone's audio reaches everyone.
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.peers.iter().all(|p| {
            s.peers.iter().filter(|o| o.pid != p.pid).all(|o| p.peer.received(o.pid, aconfi_core::Kind::Audio) > 20)
        })
    }));
    let pids = ids.map(|i| sim.peers[i].pid);
    (sim, pids)
}

#[test]
fn silence_names_nobody_then_the_one_who_speaks_is_named_to_everyone() {
    let (mut sim, [a, _, _]) = meeting_of_three();
    sim.run_for(Duration::from_secs(3));
    assert!((0..3).all(|i| speakers(&sim, i).is_empty()), "a silent room has no speaker");

    level(&mut sim, 0, -30);
    assert!(all_told(&mut sim, a), "everyone, A too, is told A speaks");
    // Once: no repeats while A goes on, nor when A falls silent.
    level(&mut sim, 0, -127);
    sim.run_for(Duration::from_secs(3));
    assert!((0..3).all(|i| speakers(&sim, i) == [a]), "{:?}", (0..3).map(|i| speakers(&sim, i)).collect::<Vec<_>>());
}

#[test]
fn the_speaker_moves_when_someone_else_speaks_and_a_newcomer_learns_who_it_is() {
    let (mut sim, [a, b, _]) = meeting_of_three();
    level(&mut sim, 0, -30);
    assert!(all_told(&mut sim, a));
    level(&mut sim, 0, -127);
    level(&mut sim, 1, -25);
    assert!(all_told(&mut sim, b), "B takes over once A is quiet");

    let d = sim.join(ROOM, Some("D"));
    assert!(sim.run_until(Duration::from_secs(5), |s| speakers(s, d) == [b]), "the newcomer is told B speaks");

    // The speaker leaves: nobody is named until someone speaks.
    level(&mut sim, 1, -127);
    sim.leave(1);
    level(&mut sim, 0, -35);
    assert!(sim.run_until(Duration::from_secs(5), |s| [0, 2, d].iter().all(|&i| speakers(s, i).last() == Some(&a))));
}

#[test]
fn a_muted_microphone_never_makes_its_owner_the_speaker() {
    let (mut sim, [a, b, _]) = meeting_of_three();
    // B says it is muted but its packets claim to be loud (comfort noise,
    // or a client that lies): they do not count.
    sim.send(1, ClientMsg::MediaState { audio_muted: true, video_muted: false, screen_sharing: false });
    level(&mut sim, 1, -10);
    sim.run_for(Duration::from_secs(3));
    assert!((0..3).all(|i| speakers(&sim, i).is_empty()), "a muted participant is never named");
    // A, quieter than B's packets, is named.
    level(&mut sim, 0, -40);
    assert!(all_told(&mut sim, a));
    assert!(!speakers(&sim, 2).contains(&b));
}
