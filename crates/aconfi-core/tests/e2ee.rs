//! The server's part of end-to-end encryption: a room opened by a link with
//! a key is end-to-end encrypted for its whole life; joiners whose link does
//! not match are refused before they learn anything; the key exchange and
//! sealed chat are relayed as opaque strings, only where they belong and
//! within limits. (The cryptography itself is the browser's: see
//! docs/e2ee.md and the JavaScript tests.)

use std::time::Duration;

use aconfi_core::protocol::{MAX_E2EE_BYTES, MAX_SEALED_CHAT_BYTES};
use aconfi_core::UNCONFIRMED_E2EE_MESSAGES;
use aconfi_core::{ClientMsg, Kind, ParticipantId, ServerMsg};
use aconfi_testpeer::sim::Sim;

const ROOM: &str = "sealed-room";

/// Adds a participant whose link has (or has not) a key; returns its index.
fn join(sim: &mut Sim, e2ee: bool) -> usize {
    let i = sim.join(ROOM, Some("Member"));
    sim.peers[i].peer.set_e2ee(e2ee);
    sim.flush();
    i
}

fn joined_room_e2ee(sim: &Sim, i: usize) -> Option<bool> {
    sim.peers[i].inbox.iter().find_map(|m| match m {
        ServerMsg::Joined { room, .. } => Some(room.e2ee),
        _ => None,
    })
}

fn refused(sim: &Sim, i: usize) -> Option<String> {
    sim.peers[i].inbox.iter().rev().find_map(|m| match m {
        ServerMsg::Refused { message, .. } => Some(message.clone()),
        _ => None,
    })
}

fn e2ee_received(sim: &Sim, i: usize) -> Vec<(ParticipantId, String)> {
    sim.peers[i]
        .inbox
        .iter()
        .filter_map(|m| match m {
            ServerMsg::E2ee { from, data } => Some((*from, data.clone())),
            _ => None,
        })
        .collect()
}

fn chats(sim: &Sim, i: usize) -> Vec<(String, bool, bool)> {
    sim.peers[i]
        .inbox
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Chat { text, private, sealed, .. } => Some((text.clone(), *private, *sealed)),
            _ => None,
        })
        .collect()
}

/// `n` participants with keys, media flowing from the first to the others.
fn e2ee_room(n: usize) -> Sim {
    let mut sim = Sim::new();
    for _ in 0..n {
        join(&mut sim, true);
    }
    let first = sim.peers[0].pid;
    assert!(
        sim.run_until(Duration::from_secs(10), |s| (1..n).all(|i| s.peers[i].peer.received(first, Kind::Audio) > 5))
    );
    sim
}

#[test]
fn a_room_opened_with_a_key_refuses_joiners_without_one_before_they_learn_anything() {
    let mut sim = e2ee_room(2);
    assert_eq!(joined_room_e2ee(&sim, 0), Some(true), "the first joiner's link decides");
    assert_eq!(joined_room_e2ee(&sim, 1), Some(true));

    let stranger = join(&mut sim, false);
    sim.run_for(Duration::from_secs(2));
    let s = &sim.peers[stranger];
    assert_eq!(s.closed_with, Some(4013));
    assert!(matches!(s.inbox.as_slice(), [ServerMsg::Error { code: 4013, .. }]), "only the refusal: {:?}", s.inbox);
    assert_eq!(s.peer.received_counts().values().sum::<u64>(), 0, "no media");
    let stranger_id = s.pid;
    for i in 0..2 {
        assert!(
            !sim.peers[i]
                .inbox
                .iter()
                .any(|m| matches!(m, ServerMsg::ParticipantJoined { participant } if participant.id == stranger_id)),
            "the room never heard of the stranger"
        );
    }
}

#[test]
fn a_link_with_a_key_cannot_join_a_room_that_is_not_encrypted() {
    let mut sim = Sim::new();
    let plain = join(&mut sim, false);
    assert_eq!(joined_room_e2ee(&sim, plain), Some(false));
    let keyed = join(&mut sim, true);
    assert_eq!(sim.peers[keyed].closed_with, Some(4014), "never a silent downgrade");
    assert_eq!(joined_room_e2ee(&sim, keyed), None);
}

#[test]
fn the_encryption_check_comes_before_the_password() {
    let mut sim = e2ee_room(1);
    sim.send(0, ClientMsg::SetPassword { password: Some("open sesame".into()) });
    let stranger = join(&mut sim, false);
    assert_eq!(sim.peers[stranger].closed_with, Some(4013));
    assert!(!sim.peers[stranger].inbox.iter().any(|m| matches!(m, ServerMsg::PasswordRequired { .. })));
    // With the key the door asks for the password as usual.
    let member = join(&mut sim, true);
    assert!(sim.peers[member].inbox.iter().any(|m| matches!(m, ServerMsg::PasswordRequired { .. })));
}

#[test]
fn the_flag_ends_with_the_room() {
    let mut sim = e2ee_room(1);
    sim.leave(0);
    assert_eq!(sim.sfu.room_count(), 0);
    let next = join(&mut sim, false);
    assert_eq!(joined_room_e2ee(&sim, next), Some(false), "a new room, opened by a link without a key");
}

#[test]
fn key_exchange_is_relayed_as_it_is_to_one_or_to_all_others() {
    let mut sim = e2ee_room(3);
    let [a, b, c] = [0, 1, 2].map(|i| sim.peers[i].pid);
    sim.send(0, ClientMsg::E2ee { to: None, data: "opaque-to-everyone".into() });
    sim.send(1, ClientMsg::E2ee { to: Some(c), data: "opaque-to-c".into() });
    assert_eq!(e2ee_received(&sim, 0), vec![]);
    assert_eq!(e2ee_received(&sim, 1), vec![(a, "opaque-to-everyone".into())]);
    assert_eq!(e2ee_received(&sim, 2), vec![(a, "opaque-to-everyone".into()), (b, "opaque-to-c".into())]);

    sim.send(1, ClientMsg::E2ee { to: Some(b), data: "me".into() });
    assert!(refused(&sim, 1).is_some_and(|m| m.contains("yourself")));
    sim.send(1, ClientMsg::E2ee { to: Some(ParticipantId(999)), data: "nobody".into() });
    assert!(refused(&sim, 1).is_some_and(|m| m.contains("not in this meeting")));
    sim.send(1, ClientMsg::E2ee { to: None, data: "x".repeat(MAX_E2EE_BYTES + 1) });
    assert!(refused(&sim, 1).is_some_and(|m| m.contains("too long")));
    assert_eq!(e2ee_received(&sim, 2).len(), 2, "nothing refused was relayed");
    assert!(sim.peers.iter().all(|p| p.open), "refusals keep the connection");
}

#[test]
fn key_exchange_has_a_byte_budget() {
    let mut sim = e2ee_room(2);
    let big = "k".repeat(MAX_E2EE_BYTES);
    for _ in 0..4 {
        sim.send(0, ClientMsg::E2ee { to: None, data: big.clone() });
    }
    assert_eq!(refused(&sim, 0), None, "256 KiB at once is fine");
    sim.send(0, ClientMsg::E2ee { to: None, data: big.clone() });
    assert!(refused(&sim, 0).is_some_and(|m| m.contains("wait")));
    assert_eq!(e2ee_received(&sim, 1).len(), 4);
    sim.run_for(Duration::from_secs(1));
    sim.send(0, ClientMsg::E2ee { to: None, data: big });
    assert_eq!(e2ee_received(&sim, 1).len(), 5, "the budget refills at 64 KiB a second");
}

#[test]
fn key_exchange_is_refused_outside_encrypted_rooms_and_before_joining() {
    let mut sim = Sim::new();
    let plain = join(&mut sim, false);
    let other = join(&mut sim, false);
    sim.send(plain, ClientMsg::E2ee { to: None, data: "x".into() });
    assert!(refused(&sim, plain).is_some_and(|m| m.contains("end-to-end encrypted meeting")));
    assert_eq!(e2ee_received(&sim, other), vec![]);
}

#[test]
fn chat_in_an_encrypted_room_must_be_sealed_and_is_relayed_as_ciphertext() {
    let mut sim = e2ee_room(3);
    let c = sim.peers[2].pid;
    sim.send(0, ClientMsg::Chat { text: "plain words".into(), to: None, sealed: false });
    assert!(refused(&sim, 0).is_some_and(|m| m.contains("must be sealed")));
    assert!(chats(&sim, 1).is_empty() && chats(&sim, 2).is_empty(), "plain text never relayed");

    sim.send(0, ClientMsg::Chat { text: "Y2lwaGVydGV4dA".into(), to: None, sealed: true });
    sim.send(0, ClientMsg::Chat { text: "cHJpdmF0ZQ".into(), to: Some(c), sealed: true });
    assert_eq!(chats(&sim, 1), vec![("Y2lwaGVydGV4dA".into(), false, true)]);
    assert_eq!(chats(&sim, 2), vec![("Y2lwaGVydGV4dA".into(), false, true), ("cHJpdmF0ZQ".into(), true, true)]);

    sim.run_for(Duration::from_secs(5));
    sim.send(1, ClientMsg::Chat { text: "s".repeat(MAX_SEALED_CHAT_BYTES + 1), to: None, sealed: true });
    assert!(refused(&sim, 1).is_some_and(|m| m.contains("too long")));
}

#[test]
fn sealed_chat_is_refused_where_nobody_could_open_it() {
    let mut sim = Sim::new();
    let a = join(&mut sim, false);
    let b = join(&mut sim, false);
    sim.send(a, ClientMsg::Chat { text: "Y2lwaGVy".into(), to: None, sealed: true });
    assert!(refused(&sim, a).is_some_and(|m| m.contains("sealed chat")));
    assert!(chats(&sim, b).is_empty());
}

fn is_moderator(sim: &Sim, i: usize) -> bool {
    let me = sim.peers[i].pid;
    let mut moderator = false;
    for m in &sim.peers[i].inbox {
        match m {
            ServerMsg::Joined { moderator: was, .. } => moderator = *was,
            ServerMsg::ParticipantUpdated { participant } if participant.id == me => moderator = participant.moderator,
            _ => {}
        }
    }
    moderator
}

/// The server cannot see who holds the link; the participants say whose
/// key exchange checked out (`e2ee_confirm`). Someone nobody confirmed — a
/// modified client that says it has the key — cannot moderate, is not made
/// moderator, is passed over when the moderator leaves, and has its key
/// exchange relayed only up to a small budget.
#[test]
fn in_an_encrypted_meeting_only_participants_whose_link_was_confirmed_moderate() {
    let mut sim = e2ee_room(1);
    let (a, x, b) = (0, join(&mut sim, true), join(&mut sim, true));
    let [pa, px, pb] = [a, x, b].map(|i| sim.peers[i].pid);
    // Others are here and nobody confirmed a yet: its controls wait.
    sim.send(a, ClientMsg::SetLock { locked: true });
    assert!(refused(&sim, a).is_some_and(|m| m.contains("confirmed")), "{:?}", refused(&sim, a));
    // a and b have the link and confirm each other; x, without it, is
    // confirmed by nobody (what it says of others changes nothing for it).
    sim.send(b, ClientMsg::E2eeConfirm { id: pa });
    sim.send(a, ClientMsg::E2eeConfirm { id: pb });
    sim.send(x, ClientMsg::E2eeConfirm { id: pa });
    sim.send(x, ClientMsg::E2eeConfirm { id: px });
    assert!(refused(&sim, x).is_some_and(|m| m.contains("your own")));
    let before = sim.peers[a].inbox.len();
    sim.send(a, ClientMsg::SetLock { locked: false });
    assert!(sim.peers[a].inbox[before..].iter().all(|m| !matches!(m, ServerMsg::Refused { .. })), "a moderates now");
    sim.send(a, ClientMsg::GrantModerator { id: px });
    assert!(refused(&sim, a).is_some_and(|m| m.contains("confirmed")), "x is not made moderator");
    assert!(!is_moderator(&sim, x));
    // x's key exchange: a budget, then nothing more reaches anyone.
    for n in 0..UNCONFIRMED_E2EE_MESSAGES {
        sim.send(x, ClientMsg::E2ee { to: None, data: format!("garbage {n}") });
    }
    assert_eq!(refused(&sim, x).as_deref(), Some("cannot confirm your own link"), "the budget's worth relayed");
    sim.send(x, ClientMsg::E2ee { to: None, data: "one too many".into() });
    assert!(refused(&sim, x).is_some_and(|m| m.contains("until someone in the meeting confirms")));
    let from_x = e2ee_received(&sim, b).iter().filter(|(f, _)| *f == px).count();
    assert_eq!(from_x, usize::from(UNCONFIRMED_E2EE_MESSAGES));
    // b, confirmed, is not limited so.
    for n in 0..(UNCONFIRMED_E2EE_MESSAGES + 10) {
        sim.send(b, ClientMsg::E2ee { to: Some(pa), data: format!("{n}") });
    }
    assert!(refused(&sim, b).is_none());
    // a leaves: x has been here longest, but b takes over.
    sim.leave(a);
    sim.flush();
    assert!(is_moderator(&sim, b) && !is_moderator(&sim, x), "the hand-over passes over x");
    sim.send(x, ClientMsg::SetLock { locked: true });
    assert!(refused(&sim, x).is_some_and(|m| m.contains("only moderators")));
}
