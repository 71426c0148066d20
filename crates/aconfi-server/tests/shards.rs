//! Media shards over loopback (`--shards 2`): rooms spread over both shards
//! with media flowing in each, a room that ends and is re-created at once
//! stays one room, and the per-address password budget holds across
//! shards.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use aconfi_core::{ClientMsg, Kind, ParticipantId, ServerMsg};
use aconfi_testpeer::silent_join;
use common::{send, until, RealPeer, Ws};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

async fn two_shards() -> aconfi_server::Server {
    common::server_with(|c| c.shards = Some(2)).await
}

/// Joins `room` on a new connection: the connection, its id and who else
/// was there.
async fn join(server: &aconfi_server::Server, room: &str) -> (Ws, ParticipantId, Vec<ParticipantId>) {
    let mut ws = common::ws(server).await;
    send(&mut ws, &silent_join(room)).await;
    let (you, others) = until(&mut ws, |m| match m {
        ServerMsg::Joined { you, participants, .. } => Some((*you, participants.iter().map(|p| p.id).collect())),
        _ => None,
    })
    .await;
    (ws, you, others)
}

/// Polls the shards' own counts (reported once a second) until `cond`.
async fn rooms_until(server: &aconfi_server::Server, what: &str, cond: impl Fn(&[usize]) -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !cond(&server.rooms_per_shard()) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{what}: rooms per shard {:?}", server.rooms_per_shard());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_rooms_land_on_both_shards_and_media_flows_in_each() {
    let server = two_shards().await;
    assert_eq!(server.shard_count, 2);
    let ports: HashSet<u16> = server.media_addrs.iter().map(|a| a.port()).collect();
    assert_eq!(ports.len(), 2, "a media port per shard: {:?}", server.media_addrs);

    let rooms = ["shard-room-one", "shard-room-two", "shard-room-three", "shard-room-four"];
    let mut peers = Vec::new();
    for room in rooms {
        let mut a = RealPeer::join(&server, room, Some("A")).await;
        let ida = a.wait_for("a joined", |s| s.id.is_some()).await.id.unwrap();
        let mut b = RealPeer::join(&server, room, Some("B")).await;
        let idb = b.wait_for("b joined", |s| s.id.is_some()).await.id.unwrap();
        peers.push((a, ida, b, idb));
    }
    // Placed by the signaling side on the least loaded shard in turn...
    let placed: Vec<usize> = rooms.iter().map(|r| server.shard_of(r).expect("placed")).collect();
    assert_eq!(placed.iter().filter(|s| **s == 0).count(), 2, "{placed:?}");
    assert_eq!(placed.iter().filter(|s| **s == 1).count(), 2, "{placed:?}");
    // ... and that is where the shards hold them.
    rooms_until(&server, "two rooms on each shard", |r| r == [2, 2]).await;

    for (a, ida, b, idb) in &mut peers {
        let (ida, idb) = (*ida, *idb);
        a.wait_for("media from b", |s| s.got(idb, Kind::Audio) >= 25 && s.got(idb, Kind::Video) >= 15).await;
        b.wait_for("media from a", |s| s.got(ida, Kind::Audio) >= 25 && s.got(ida, Kind::Video) >= 15).await;
    }
    for (a, _, b, _) in &mut peers {
        a.leave().await;
        b.leave().await;
        a.wait_for("a closed", |s| s.closed.is_some()).await;
        b.wait_for("b closed", |s| s.closed.is_some()).await;
    }
    for room in rooms {
        assert_eq!(server.shard_of(room), None, "the map forgets a room that ended");
    }
    rooms_until(&server, "every room gone", |r| r == [0, 0]).await;
    server.shutdown().await;
}

/// The classic hostile pattern: the last person leaves a room while two
/// others join it. Whatever the order, the two must end up in one room,
/// on one shard — never one in a room being torn down on one shard and
/// the other in a fresh one on the other. The room's shard is made the
/// busier one first, so that a fresh placement would pick the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_left_and_re_created_at_once_is_one_room() {
    let server = two_shards().await;
    let room = "leave-and-recreate";
    // Some load on the shard the room will not be on, then the room, then
    // more load on its shard.
    let mut fillers = Vec::new();
    for _ in 0..3 {
        fillers.push(join(&server, "filler-one").await.0);
    }
    let (first, _, _) = join(&server, room).await;
    let home = server.shard_of(room).expect("placed");
    assert_ne!(Some(home), server.shard_of("filler-one"));
    for _ in 0..4 {
        fillers.push(join(&server, "filler-two").await.0);
    }
    assert_eq!(server.shard_of("filler-two"), Some(home));

    let mut last = first;
    for _ in 0..20 {
        // The one in the room leaves as two others join.
        let leaving = async move {
            leave_and_be_closed(&mut last).await;
        };
        let ((), (mut b, idb, b_saw), (mut c, idc, c_saw)) =
            tokio::join!(leaving, join(&server, room), join(&server, room));
        // One of them came second and found the other, or hears of them.
        if !b_saw.contains(&idc) {
            until(&mut b, |m| {
                matches!(m, ServerMsg::ParticipantJoined { participant } if participant.id == idc).then_some(())
            })
            .await;
        }
        if !c_saw.contains(&idb) {
            until(&mut c, |m| {
                matches!(m, ServerMsg::ParticipantJoined { participant } if participant.id == idb).then_some(())
            })
            .await;
        }
        // One stays for the next round; the other goes.
        leave_and_be_closed(&mut c).await;
        last = b;
    }
    drop(last);
    drop(fillers);
    rooms_until(&server, "every room gone", |r| r == [0, 0]).await;
    server.shutdown().await;
}

/// Sends `leave`; the server closes the connection within 5 s.
async fn leave_and_be_closed(ws: &mut Ws) {
    ws.send(Message::Text(serde_json::to_string(&ClientMsg::Leave {}).unwrap().into())).await.expect("leave sent");
    tokio::time::timeout(Duration::from_secs(5), async { while ws.next().await.is_some() {} })
        .await
        .expect("the server closes after leave");
}

fn join_with(room: &str, password: Option<&str>) -> ClientMsg {
    let mut join = silent_join(room);
    if let ClientMsg::Join { password: p, .. } = &mut join {
        *p = password.map(str::to_string);
    }
    join
}

/// One address's password guesses count against one budget whichever
/// shard the rooms are on: ten, spread over rooms on both shards, then it
/// waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_budget_per_address_spans_the_shards() {
    let server = two_shards().await;
    let rooms = ["guarded-one", "guarded-two"];
    let mut moderators = Vec::new();
    for room in rooms {
        let mut m = common::ws(&server).await;
        send(&mut m, &join_with(room, Some("the-right-one"))).await;
        until(&mut m, |x| matches!(x, ServerMsg::Joined { room, .. } if room.password).then_some(())).await;
        moderators.push(m);
    }
    let shards: HashSet<usize> = rooms.iter().map(|r| server.shard_of(r).expect("placed")).collect();
    assert_eq!(shards.len(), 2, "one room on each shard");

    // Ten wrong guesses from 127.0.0.1, five at each room, each on a fresh
    // connection (one connection may make five).
    let mut guessers = Vec::new();
    for i in 0..aconfi_core::address::GUESSES_PER_ADDRESS_BURST as usize {
        let mut g = common::ws(&server).await;
        send(&mut g, &join_with(rooms[i % 2], Some("wrong"))).await;
        let retry = until(&mut g, |x| match x {
            ServerMsg::PasswordRequired { wrong: true, retry_after_ms } => Some(*retry_after_ms),
            _ => None,
        })
        .await;
        assert_eq!(retry, None, "guess {i} is checked");
        guessers.push(g);
    }
    // The eleventh waits, at either room.
    for room in rooms {
        let mut g = common::ws(&server).await;
        send(&mut g, &join_with(room, Some("wrong"))).await;
        let retry = until(&mut g, |x| match x {
            ServerMsg::PasswordRequired { retry_after_ms, .. } => Some(*retry_after_ms),
            _ => None,
        })
        .await;
        assert!(retry.is_some(), "the address's budget is spent on every shard");
    }
    drop(guessers);
    drop(moderators);
    server.shutdown().await;
}
