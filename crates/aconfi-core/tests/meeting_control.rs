//! Every meeting-control rule, enforced by the server: moderators,
//! password (with throttling), lobby, lock, mute, remove, end, chat.

use std::time::Duration;

use std::net::IpAddr;

use aconfi_core::address::{GUESSES_PER_ADDRESS_BURST, GUESS_INTERVAL_PER_ADDRESS};
use aconfi_core::protocol::PROTOCOL_VERSION;
use aconfi_core::{ClientMsg, Kind, ParticipantId, ServerMsg, SLOW_DOWN};
use aconfi_testpeer::sim::Sim;

const ROOM: &str = "board-meeting";

fn join_msg(password: Option<&str>) -> ClientMsg {
    ClientMsg::Join {
        version: PROTOCOL_VERSION,
        room: ROOM.into(),
        name: Some("Guest".into()),
        audio_muted: false,
        video_muted: false,
        password: password.map(str::to_string),
        e2ee: false,
    }
}

/// The last message of a kind peer `i` received.
fn last<T>(sim: &Sim, i: usize, f: impl Fn(&ServerMsg) -> Option<T>) -> Option<T> {
    sim.peers[i].inbox.iter().rev().find_map(f)
}

fn refused(sim: &Sim, i: usize) -> Option<String> {
    last(sim, i, |m| match m {
        ServerMsg::Refused { message, .. } => Some(message.clone()),
        _ => None,
    })
}

fn count(sim: &Sim, i: usize, f: impl Fn(&ServerMsg) -> bool) -> usize {
    sim.peers[i].inbox.iter().filter(|m| f(m)).count()
}

fn joined(sim: &Sim, i: usize) -> bool {
    count(sim, i, |m| matches!(m, ServerMsg::Joined { .. })) > 0
}

fn is_moderator(sim: &Sim, i: usize) -> bool {
    let id = sim.peers[i].pid;
    sim.peers.iter().any(|p| {
        p.inbox.iter().rev().find_map(|m| match m {
            ServerMsg::Joined { you, moderator, .. } if *you == id => Some(*moderator),
            ServerMsg::ParticipantUpdated { participant } | ServerMsg::ParticipantJoined { participant }
                if participant.id == id =>
            {
                Some(participant.moderator)
            }
            _ => None,
        }) == Some(true)
    })
}

/// A room with a moderator (index 0) and `n - 1` others, media flowing.
fn room(n: usize) -> Sim {
    let mut sim = Sim::new();
    for _ in 0..n {
        sim.join(ROOM, Some("Member"));
        sim.flush();
    }
    let first = sim.peers[0].pid;
    assert!(
        sim.run_until(Duration::from_secs(10), |s| (1..n).all(|i| s.peers[i].peer.received(first, Kind::Audio) > 5))
    );
    sim
}

#[test]
fn the_first_is_moderator_and_others_are_not() {
    let sim = room(3);
    assert!(is_moderator(&sim, 0));
    assert!(!is_moderator(&sim, 1));
    assert!(!is_moderator(&sim, 2));
}

#[test]
fn non_moderators_are_refused_everything_a_moderator_may_do() {
    let mut sim = room(3);
    let (a, c) = (sim.peers[0].pid, sim.peers[2].pid);
    let attempts = [
        ClientMsg::Remove { id: a },
        ClientMsg::Mute { id: a },
        ClientMsg::MuteAll {},
        ClientMsg::AskUnmute { id: a },
        ClientMsg::SetLock { locked: true },
        ClientMsg::SetPassword { password: Some("x".into()) },
        ClientMsg::SetLobby { enabled: true },
        ClientMsg::GrantModerator { id: c },
        ClientMsg::Admit { id: c },
        ClientMsg::Refuse { id: c },
        ClientMsg::EndMeeting {},
    ];
    for m in attempts {
        let before = count(&sim, 1, |m| matches!(m, ServerMsg::Refused { .. }));
        sim.send(1, m.clone());
        assert_eq!(count(&sim, 1, |m| matches!(m, ServerMsg::Refused { .. })), before + 1, "{m:?}");
        assert_eq!(refused(&sim, 1).as_deref(), Some("only moderators may do that"), "{m:?}");
        assert!(sim.peers[1].open, "a refusal keeps the connection: {m:?}");
    }
    // Nothing happened: everyone is still in, nothing muted, room open.
    assert_eq!(sim.sfu.participant_count(), 3);
    assert!(sim.peers.iter().all(|p| p.open));
    assert!(!is_moderator(&sim, 2));
    let joiner = sim.join(ROOM, None);
    sim.flush();
    assert!(joined(&sim, joiner), "room neither locked, protected nor in lobby mode");
}

#[test]
fn moderator_mutes_one_and_everyone_and_only_the_owner_unmutes() {
    let mut sim = room(3);
    let (b, c) = (sim.peers[1].pid, sim.peers[2].pid);
    sim.send(0, ClientMsg::Mute { id: b });
    assert_eq!(
        last(&sim, 1, |m| if let ServerMsg::MutedBy { by } = m { Some(*by) } else { None }),
        Some(sim.peers[0].pid)
    );
    // Its audio is no longer forwarded.
    sim.run_for(Duration::from_millis(300));
    let heard = sim.peers[2].peer.received(b, Kind::Audio);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.peers[2].peer.received(b, Kind::Audio), heard, "a muted microphone is not forwarded");
    // The moderator can only ask; the owner unmutes and is heard again.
    sim.send(0, ClientMsg::AskUnmute { id: b });
    assert!(count(&sim, 1, |m| matches!(m, ServerMsg::UnmuteRequest { .. })) == 1);
    sim.send(1, ClientMsg::MediaState { audio_muted: false, video_muted: false, screen_sharing: false });
    sim.run_for(Duration::from_secs(1));
    assert!(sim.peers[2].peer.received(b, Kind::Audio) > heard + 20);
    // Mute all: everyone but the moderator.
    sim.send(0, ClientMsg::MuteAll {});
    assert_eq!(count(&sim, 1, |m| matches!(m, ServerMsg::MutedBy { .. })), 2);
    assert_eq!(count(&sim, 2, |m| matches!(m, ServerMsg::MutedBy { .. })), 1);
    assert_eq!(count(&sim, 0, |m| matches!(m, ServerMsg::MutedBy { .. })), 0);
    let muted_c = last(&sim, 0, |m| match m {
        ServerMsg::ParticipantUpdated { participant } if participant.id == c => Some(participant.audio_muted),
        _ => None,
    });
    assert_eq!(muted_c, Some(true), "others see the mute");
}

#[test]
fn removed_participant_is_out_and_a_locked_room_refuses_joins() {
    let mut sim = room(3);
    let b = sim.peers[1].pid;
    sim.send(0, ClientMsg::Remove { id: b });
    assert_eq!(sim.peers[1].closed_with, Some(4009));
    assert_eq!(sim.sfu.participant_count(), 2);
    assert!(sim.peers[2].inbox.iter().any(|m| matches!(m, ServerMsg::ParticipantLeft { id } if *id == b)));

    sim.send(0, ClientMsg::SetLock { locked: true });
    assert!(sim.peers[2].inbox.iter().any(|m| matches!(m, ServerMsg::RoomUpdated { room } if room.locked)));
    let again = sim.join(ROOM, None);
    sim.flush();
    assert_eq!(sim.peers[again].closed_with, Some(4010));
    assert!(!joined(&sim, again));

    sim.send(0, ClientMsg::SetLock { locked: false });
    let later = sim.join(ROOM, None);
    sim.flush();
    assert!(joined(&sim, later));
}

#[test]
fn moderator_hand_over_goes_to_the_longest_present() {
    let mut sim = room(3);
    sim.leave(0);
    assert!(is_moderator(&sim, 1), "second to join becomes moderator");
    assert!(!is_moderator(&sim, 2));
    // The new moderator's powers are real.
    sim.send(1, ClientMsg::SetLock { locked: true });
    assert_eq!(refused(&sim, 1), None);
    // Granting works too, and then both are moderators.
    sim.send(1, ClientMsg::GrantModerator { id: sim.peers[2].pid });
    assert!(is_moderator(&sim, 2));
}

#[test]
fn password_is_asked_before_anything_is_revealed_and_checked() {
    let mut sim = room(2);
    sim.send(0, ClientMsg::SetPassword { password: Some("correct horse".into()) });
    assert!(sim.peers[1].inbox.iter().any(|m| matches!(m, ServerMsg::RoomUpdated { room } if room.password)));

    let x = sim.join(ROOM, Some("Eve"));
    sim.flush();
    assert_eq!(sim.peers[x].inbox, vec![ServerMsg::PasswordRequired { wrong: false, retry_after_ms: None }]);
    // Nobody inside learns of the visitor.
    assert_eq!(count(&sim, 0, |m| matches!(m, ServerMsg::ParticipantJoined { .. })), 1);

    // A layout report racing the join, from the door: ignored, the
    // connection stays and nothing is revealed.
    sim.send(x, ClientMsg::View { tiles: Vec::new() });
    assert!(sim.peers[x].open);
    assert_eq!(sim.peers[x].inbox.len(), 1);

    sim.send(x, join_msg(Some("wrong horse")));
    assert_eq!(sim.peers[x].inbox.last(), Some(&ServerMsg::PasswordRequired { wrong: true, retry_after_ms: None }));
    assert!(sim.peers[x].open);
    assert!(!joined(&sim, x));

    sim.send(x, join_msg(Some("correct horse")));
    assert!(joined(&sim, x));
    let from = sim.peers[0].pid;
    assert!(sim.run_until(Duration::from_secs(10), |s| s.peers[x].peer.received(from, Kind::Video) > 5));

    // Removing the password opens the room again.
    sim.send(0, ClientMsg::SetPassword { password: None });
    let y = sim.join(ROOM, None);
    sim.flush();
    assert!(joined(&sim, y));
}

#[test]
fn password_guessing_is_throttled_per_connection() {
    let mut sim = room(1);
    sim.send(0, ClientMsg::SetPassword { password: Some("s3cret".into()) });
    let x = sim.join(ROOM, None);
    sim.flush();
    for _ in 0..5 {
        sim.send(x, join_msg(Some("guess")));
    }
    assert_eq!(count(&sim, x, |m| matches!(m, ServerMsg::PasswordRequired { wrong: true, .. })), 5);
    // The sixth try is not even checked, right password or not.
    sim.send(x, join_msg(Some("s3cret")));
    let wait = last(&sim, x, |m| match m {
        ServerMsg::PasswordRequired { retry_after_ms, .. } => Some(*retry_after_ms),
        _ => None,
    });
    assert!(matches!(wait, Some(Some(ms)) if ms > 50_000 && ms <= 60_000), "{wait:?}");
    assert!(!joined(&sim, x));
    // After the window it works.
    sim.run_for(Duration::from_secs(61));
    sim.send(x, join_msg(Some("s3cret")));
    assert!(joined(&sim, x));
}

/// The password `retry_after_ms` peer `i` was last told, if any.
fn retry_after(sim: &Sim, i: usize) -> Option<u64> {
    last(sim, i, |m| match m {
        ServerMsg::PasswordRequired { retry_after_ms, .. } => Some(*retry_after_ms),
        _ => None,
    })
    .flatten()
}

#[test]
fn many_guessers_slow_the_room_down_but_never_lock_out_the_password() {
    let mut sim = room(1);
    sim.send(0, ClientMsg::SetPassword { password: Some("s3cret".into()) });
    // Four connections, each from its own address, five wrong guesses each.
    for _ in 0..4 {
        let g = sim.join(ROOM, None);
        sim.flush();
        for _ in 0..5 {
            sim.send(g, join_msg(Some("nope")));
        }
        assert_eq!(count(&sim, g, |m| matches!(m, ServerMsg::PasswordRequired { wrong: true, .. })), 5);
    }
    // Someone with the password is asked to wait a moment, not a minute ...
    let honest = sim.join(ROOM, None);
    sim.flush();
    sim.send(honest, join_msg(Some("s3cret")));
    assert!(!joined(&sim, honest));
    let wait = retry_after(&sim, honest).expect("told to wait");
    assert!(wait <= SLOW_DOWN.as_millis() as u64, "{wait} ms");
    // ... and is in when they try again after it, the guessing going on.
    let g = sim.join(ROOM, None);
    sim.flush();
    sim.run_for(Duration::from_millis(wait));
    sim.send(g, join_msg(Some("still nope")));
    sim.send(honest, join_msg(Some("s3cret")));
    assert!(joined(&sim, honest), "the right password is admitted within {wait} ms");
    // A guesser gets no more than one check per slow-down period.
    sim.send(g, join_msg(Some("nope again")));
    assert!(retry_after(&sim, g).is_some_and(|ms| ms > 2_000));
}

#[test]
fn one_address_gets_ten_guesses_a_minute_however_many_connections_it_opens() {
    let mut sim = room(1);
    sim.send(0, ClientMsg::SetPassword { password: Some("s3cret".into()) });
    let mallory: IpAddr = "192.0.2.66".parse().unwrap();
    let mut checked = 0;
    let mut told_to_wait = 0;
    // Reconnecting after every two guesses resets nothing.
    for _ in 0..6 {
        let g = sim.join(ROOM, None);
        sim.sfu.handle_connect(sim.peers[g].pid, mallory);
        sim.flush();
        for _ in 0..2 {
            sim.send(g, join_msg(Some("guess")));
        }
        checked += count(&sim, g, |m| matches!(m, ServerMsg::PasswordRequired { wrong: true, .. }));
        told_to_wait += count(&sim, g, |m| matches!(m, ServerMsg::PasswordRequired { retry_after_ms: Some(_), .. }));
        sim.leave(g);
    }
    assert_eq!(checked, GUESSES_PER_ADDRESS_BURST as usize);
    assert_eq!(told_to_wait, 2);
    // Another address is not held up by it.
    let other = sim.join(ROOM, None);
    sim.flush();
    sim.send(other, join_msg(Some("s3cret")));
    assert!(joined(&sim, other));
    // The address is forgotten once its guesses no longer count.
    assert!(sim.sfu.remembered_addresses() > 0);
    sim.run_for(Duration::from_secs(61));
    let open = sim.peers.iter().filter(|p| p.open).count();
    sim.run_for(GUESS_INTERVAL_PER_ADDRESS * GUESSES_PER_ADDRESS_BURST as u32);
    assert_eq!(sim.sfu.remembered_addresses(), open, "only the open connections' addresses are left");
}

#[test]
fn a_password_for_a_room_that_asks_for_none_is_not_used_silently() {
    // The room emptied; a stranger opened it again, with no password.
    let mut sim = Sim::new();
    let stranger = sim.join(ROOM, Some("Stranger"));
    sim.flush();
    assert!(joined(&sim, stranger));
    // A member's client comes back with the old password: warned, not in.
    let member = sim.join(ROOM, None);
    sim.peers[member].peer.set_password(Some("s3cret"));
    sim.flush();
    assert!(!joined(&sim, member));
    assert_eq!(sim.peers[member].inbox.last(), Some(&ServerMsg::PasswordNotRequired {}));
    assert_eq!(count(&sim, stranger, |m| matches!(m, ServerMsg::ParticipantJoined { .. })), 0);
    // Going in anyway is the user's choice.
    sim.send(member, join_msg(None));
    assert!(joined(&sim, member));
}

#[test]
fn whoever_comes_back_first_with_the_password_opens_the_room_protected_again() {
    let mut sim = Sim::new();
    let first = sim.join(ROOM, None);
    sim.peers[first].peer.set_password(Some("s3cret"));
    sim.flush();
    assert!(joined(&sim, first) && is_moderator(&sim, first));
    assert!(last(&sim, first, |m| match m {
        ServerMsg::Joined { room, .. } => Some(room.password),
        _ => None,
    })
    .expect("joined"));
    let stranger = sim.join(ROOM, None);
    sim.flush();
    assert!(!joined(&sim, stranger));
    assert!(matches!(sim.peers[stranger].inbox.last(), Some(ServerMsg::PasswordRequired { .. })));
    let second = sim.join(ROOM, None);
    sim.peers[second].peer.set_password(Some("s3cret"));
    sim.flush();
    assert!(joined(&sim, second));
}

#[test]
fn nobody_can_take_a_name_already_in_the_room_or_disguise_one() {
    let mut sim = Sim::new();
    let ada = sim.join(ROOM, Some("Ada"));
    sim.flush();
    let ada_id = sim.peers[ada].pid;
    let names: Vec<Option<String>> = ["ada", "Ada", "A\u{200b}da", "\u{202e}adA"]
        .iter()
        .map(|n| {
            let i = sim.join(ROOM, Some(n));
            sim.flush();
            let id = sim.peers[i].pid;
            sim.peers[ada].peer.participants().get(&id).and_then(|p| p.name.clone())
        })
        .collect();
    let names: Vec<&str> = names.iter().map(|n| n.as_deref().unwrap_or("?")).collect();
    // "\u{202e}adA" shows as "Ada" (the override reverses it); cleaned it
    // is "adA", the same name but for case.
    assert_eq!(names, ["ada (2)", "Ada (3)", "Ada (4)", "adA (5)"]);
    assert_eq!(sim.peers[ada].peer.participants().get(&ada_id), None, "ourselves are not in the list");
    assert!(sim
        .peers
        .iter()
        .skip(1)
        .all(|p| p.peer.participants().get(&ada_id).and_then(|i| i.name.as_deref()) == Some("Ada")));
}

#[test]
fn lobby_admit_and_refuse() {
    let mut sim = room(2);
    sim.send(0, ClientMsg::SetLobby { enabled: true });
    let x = sim.join(ROOM, Some("Grace"));
    let y = sim.join(ROOM, Some("Mallory"));
    sim.flush();
    assert_eq!(sim.peers[x].inbox, vec![ServerMsg::InLobby {}]);
    let (xid, yid) = (sim.peers[x].pid, sim.peers[y].pid);
    // Moderators are asked, with the name; others are not.
    assert!(sim.peers[0]
        .inbox
        .iter()
        .any(|m| matches!(m, ServerMsg::LobbyRequest { id, name } if *id == xid && name.as_deref() == Some("Grace"))));
    assert_eq!(count(&sim, 1, |m| matches!(m, ServerMsg::LobbyRequest { .. })), 0);
    // A non-moderator cannot admit.
    sim.send(1, ClientMsg::Admit { id: xid });
    assert!(!joined(&sim, x));

    sim.send(0, ClientMsg::Admit { id: xid });
    assert!(joined(&sim, x));
    let from = sim.peers[0].pid;
    assert!(sim.run_until(Duration::from_secs(10), |s| s.peers[x].peer.received(from, Kind::Video) > 5));

    sim.send(0, ClientMsg::Refuse { id: yid });
    assert_eq!(sim.peers[y].closed_with, Some(4012));
    assert!(!joined(&sim, y));
    assert!(sim.peers[0].inbox.iter().any(|m| matches!(m, ServerMsg::LobbyLeft { id } if *id == yid)));
}

#[test]
fn a_locked_room_admits_nobody_from_the_lobby() {
    let mut sim = room(1);
    sim.send(0, ClientMsg::SetLobby { enabled: true });
    let x = sim.join(ROOM, Some("Grace"));
    let y = sim.join(ROOM, Some("Heidi"));
    sim.flush();
    sim.send(0, ClientMsg::SetLock { locked: true });
    sim.send(0, ClientMsg::Admit { id: sim.peers[x].pid });
    assert!(!joined(&sim, x));
    assert_eq!(refused(&sim, 0).as_deref(), Some("the room is locked: unlock it to admit anyone"));
    // Turning the lobby off while locked sends those waiting away, saying why.
    sim.send(0, ClientMsg::SetLobby { enabled: false });
    assert_eq!((sim.peers[x].closed_with, sim.peers[y].closed_with), (Some(4010), Some(4010)));
    assert!(!joined(&sim, x) && !joined(&sim, y));
    assert_eq!(count(&sim, 0, |m| matches!(m, ServerMsg::LobbyLeft { .. })), 0, "cleared by room_updated");
}

#[test]
fn password_comes_before_the_lobby() {
    let mut sim = room(1);
    sim.send(0, ClientMsg::SetPassword { password: Some("pw".into()) });
    sim.send(0, ClientMsg::SetLobby { enabled: true });
    let x = sim.join(ROOM, None);
    sim.flush();
    assert_eq!(count(&sim, 0, |m| matches!(m, ServerMsg::LobbyRequest { .. })), 0, "no knock without the password");
    sim.send(x, join_msg(Some("pw")));
    assert_eq!(sim.peers[x].inbox.last(), Some(&ServerMsg::InLobby {}));
    assert_eq!(count(&sim, 0, |m| matches!(m, ServerMsg::LobbyRequest { .. })), 1);
}

#[test]
fn those_waiting_are_sent_away_when_the_room_empties() {
    let mut sim = room(1);
    sim.send(0, ClientMsg::SetLobby { enabled: true });
    let x = sim.join(ROOM, None);
    sim.flush();
    sim.leave(0);
    assert_eq!(sim.peers[x].closed_with, Some(4011));
    assert_eq!(sim.sfu.room_count(), 0);
}

#[test]
fn end_meeting_closes_everyone_and_frees_the_room() {
    let mut sim = room(3);
    sim.send(0, ClientMsg::EndMeeting {});
    assert!(sim.peers.iter().all(|p| p.closed_with == Some(4011)));
    assert_eq!(sim.sfu.room_count(), 0);
    assert_eq!(sim.sfu.participant_count(), 0);
}

#[test]
fn chat_reaches_only_where_it_should_with_limits() {
    let mut sim = room(3);
    let (a, b) = (sim.peers[0].pid, sim.peers[1].pid);
    let chats = |sim: &Sim, i: usize| -> Vec<(ParticipantId, String, bool)> {
        sim.peers[i]
            .inbox
            .iter()
            .filter_map(|m| match m {
                ServerMsg::Chat { from, text, private, .. } => Some((*from, text.clone(), *private)),
                _ => None,
            })
            .collect()
    };
    sim.send(0, ClientMsg::Chat { text: "hello <img src=x onerror=alert(1)>".into(), to: None, sealed: false });
    assert_eq!(chats(&sim, 1), vec![(a, "hello <img src=x onerror=alert(1)>".into(), false)]);
    assert_eq!(chats(&sim, 2).len(), 1);
    assert!(chats(&sim, 0).is_empty(), "not echoed to the sender");

    sim.send(0, ClientMsg::Chat { text: "just for you".into(), to: Some(b), sealed: false });
    assert_eq!(chats(&sim, 1).last(), Some(&(a, "just for you".into(), true)));
    assert_eq!(chats(&sim, 2).len(), 1, "a private message reaches no one else");

    sim.send(1, ClientMsg::Chat { text: "x".repeat(4097), to: None, sealed: false });
    assert!(refused(&sim, 1).unwrap().contains("too long"));
    sim.send(1, ClientMsg::Chat { text: "   ".into(), to: None, sealed: false });
    assert!(refused(&sim, 1).unwrap().contains("empty"));
    sim.send(1, ClientMsg::Chat { text: "psst".into(), to: Some(ParticipantId(999)), sealed: false });
    assert!(refused(&sim, 1).unwrap().contains("not in this meeting"));

    // A burst of 5, then refused until time passes.
    for i in 0..6 {
        sim.send(2, ClientMsg::Chat { text: format!("m{i}"), to: None, sealed: false });
    }
    assert_eq!(chats(&sim, 0).iter().filter(|(f, _, _)| *f == sim.peers[2].pid).count(), 5);
    assert!(refused(&sim, 2).unwrap().contains("too many"));
    sim.run_for(Duration::from_secs(2));
    sim.send(2, ClientMsg::Chat { text: "later".into(), to: None, sealed: false });
    assert_eq!(chats(&sim, 0).last().map(|c| c.1.clone()), Some("later".into()));
    assert!(sim.peers.iter().all(|p| p.open));
}

#[test]
fn raised_hands_are_shown_to_all() {
    let mut sim = room(2);
    sim.send(1, ClientMsg::RaiseHand { raised: true });
    let b = sim.peers[1].pid;
    assert!(sim.peers[0].inbox.iter().any(
        |m| matches!(m, ServerMsg::ParticipantUpdated { participant } if participant.id == b && participant.hand_raised)
    ));
}
