//! Hostile clients against the real server over loopback: what one person
//! with many connections can and cannot do to a meeting.

mod common;

use std::time::Duration;

use aconfi_core::protocol::PROTOCOL_VERSION;
use aconfi_core::{ClientMsg, ServerMsg, MAX_PARTICIPANTS_PER_ROOM, MAX_WAITING_PER_ROOM};
use common::Ws;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

async fn send(ws: &mut Ws, msg: &ClientMsg) {
    ws.send(Message::Text(serde_json::to_string(msg).unwrap().into())).await.unwrap();
}

fn join(room: &str) -> ClientMsg {
    ClientMsg::Join {
        version: PROTOCOL_VERSION,
        room: room.into(),
        name: None,
        audio_muted: true,
        video_muted: true,
        password: None,
        e2ee: false,
    }
}

/// How a connection's visit ended, as far as the test cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    InLobby,
    Joined,
    Closed(u16),
}

/// Reads `ws` until `stop` says so; every message passes `seen`.
async fn read_until(ws: &mut Ws, mut stop: impl FnMut(&Option<ServerMsg>, Option<u16>) -> bool) {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if stop(&serde_json::from_str(t.as_str()).ok(), None) {
                        return;
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    stop(&None, Some(f.map(|f| u16::from(f.code)).unwrap_or(1005)));
                    return;
                }
                Some(Ok(_)) => {}
                _ => {
                    stop(&None, Some(1006));
                    return;
                }
            }
        }
    })
    .await
    .expect("within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_off_a_crowded_lobby_keeps_the_cap_and_the_moderator() {
    let server = common::server().await;
    let room = "crowded-lobby";
    let mut moderator = common::ws(&server).await;
    send(&mut moderator, &join(room)).await;
    read_until(&mut moderator, |m, _| matches!(m, Some(ServerMsg::Joined { .. }))).await;
    send(&mut moderator, &ClientMsg::SetLobby { enabled: true }).await;
    read_until(&mut moderator, |m, _| matches!(m, Some(ServerMsg::RoomUpdated { room }) if room.lobby)).await;

    // 250 strangers knock. Each one's socket is read by its own task, which
    // reports the first thing that decides its fate, then the last.
    const KNOCKS: usize = 250;
    let (tx, mut fates) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..KNOCKS {
        let mut ws = common::ws(&server).await;
        send(&mut ws, &join(room)).await;
        let tx = tx.clone();
        tokio::spawn(async move {
            read_until(&mut ws, |m, closed| {
                let fate = match (m, closed) {
                    (_, Some(code)) => Some(Fate::Closed(code)),
                    (Some(ServerMsg::InLobby {}), _) => Some(Fate::InLobby),
                    (Some(ServerMsg::Joined { .. }), _) => Some(Fate::Joined),
                    _ => None,
                };
                if let Some(f) = fate {
                    let _ = tx.send((i, f));
                }
                matches!(fate, Some(Fate::Closed(_)))
            })
            .await;
        });
    }
    drop(tx);
    let mut first = vec![None; KNOCKS];
    while first.iter().any(Option::is_none) {
        let (i, f) = fates.recv().await.expect("every knock is answered");
        first[i].get_or_insert(f);
    }
    let waiting = first.iter().filter(|f| **f == Some(Fate::InLobby)).count();
    let turned_away = first.iter().filter(|f| **f == Some(Fate::Closed(4008))).count();
    assert_eq!(waiting, MAX_WAITING_PER_ROOM, "the lobby holds at most {MAX_WAITING_PER_ROOM}");
    assert_eq!(turned_away, KNOCKS - MAX_WAITING_PER_ROOM, "the rest are told the room is full");

    // The moderator was asked about each one; now turns the lobby off.
    let mut requests = 0;
    read_until(&mut moderator, |m, _| {
        requests += usize::from(matches!(m, Some(ServerMsg::LobbyRequest { .. })));
        requests == MAX_WAITING_PER_ROOM
    })
    .await;
    send(&mut moderator, &ClientMsg::SetLobby { enabled: false }).await;

    // Everyone waiting is let in up to the cap, and the others told why not.
    let mut last = first.clone();
    let mut decided = 0;
    while decided < waiting {
        let (i, f) = fates.recv().await.expect("everyone waiting hears");
        if last[i] == Some(Fate::InLobby) {
            decided += 1;
        }
        last[i] = Some(f);
    }
    let inside = last.iter().filter(|f| **f == Some(Fate::Joined)).count();
    assert_eq!(inside, MAX_PARTICIPANTS_PER_ROOM - 1, "the moderator and 199 others: the cap holds");
    assert_eq!(last.iter().filter(|f| **f == Some(Fate::Closed(4008))).count(), KNOCKS - inside);

    // The moderator is still connected and served: they saw everyone come
    // in, and their own messages still work.
    let mut joined = 0;
    read_until(&mut moderator, |m, closed| {
        assert_eq!(closed, None, "the moderator was dropped");
        joined += usize::from(matches!(m, Some(ServerMsg::ParticipantJoined { .. })));
        joined == inside
    })
    .await;
    send(&mut moderator, &ClientMsg::SetLock { locked: true }).await;
    read_until(&mut moderator, |m, closed| {
        assert_eq!(closed, None, "the moderator was dropped");
        matches!(m, Some(ServerMsg::RoomUpdated { room }) if room.locked)
    })
    .await;
    server.shutdown().await;
}
