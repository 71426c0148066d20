//! Two nodes of a cluster on loopback, sharing a real Redis from Debian
//! (issue 14): a room opened through either node is one meeting on its home
//! node, with media; clients reaching the other node are sent on (`moved`,
//! 4015); twenty clients racing through both nodes find one home; a room
//! whose home stopped announcing itself is taken over; a meeting goes on
//! while Redis is down and the node claims its rooms again when Redis is
//! back; a new room goes to the less loaded node; a draining node takes no
//! new room and hands its meetings over, and the real binary drains on
//! SIGTERM. Redis never holds a room's name.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::Duration;

use aconfi_core::{Kind, ParticipantId, ServerMsg};
use aconfi_server::directory::{Directory, Home};
use aconfi_server::Server;
use aconfi_testpeer::silent_join;
use common::redis_server::Redis;
use common::{send, until, RealPeer, Ws};

const SECRET: &str = "cluster secret for the tests";

/// A node of the cluster in `redis`, its public URL on its own port.
async fn node(redis: &Redis) -> Server {
    node_with(redis, |_| {}).await
}

/// Like [`node`], with some settings changed.
async fn node_with(redis: &Redis, change: impl FnOnce(&mut aconfi_server::Config)) -> Server {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = common::server_with(|c| {
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.redis_url = Some(redis.url());
        c.public_url = Some(format!("https://localhost:{port}").parse().unwrap());
        c.cluster_secret = Some(SECRET.into());
        change(c);
    })
    .await;
    common::remember_cert(&server);
    server
}

fn url(server: &Server) -> String {
    server.cluster_url().expect("a node of a cluster").to_owned()
}

/// Polls `cond` (what the nodes read from Redis every second) for up to
/// 20 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}

/// Until each node counts the other as alive.
async fn acquainted(a: &Server, b: &Server) {
    eventually("the nodes see each other", || a.cluster_peers() == [url(b)] && b.cluster_peers() == [url(a)]).await;
}

/// Joins `room` through `server`: the connection and id, or the URL the
/// client was sent on to (after which the server closed with 4015).
async fn join_via(server: &Server, room: &str) -> Result<(Ws, ParticipantId), String> {
    let mut ws = common::ws(server).await;
    send(&mut ws, &silent_join(room)).await;
    let answer = until(&mut ws, |m| match m {
        ServerMsg::Joined { you, .. } => Some(Ok(*you)),
        ServerMsg::Moved { url } => Some(Err(url.clone())),
        _ => None,
    })
    .await;
    match answer {
        Ok(you) => Ok((ws, you)),
        Err(url) => {
            assert_eq!(common::close_code(&mut ws).await.0, Some(4015), "moved, then closed with 4015");
            Err(url)
        }
    }
}

/// The node of `nodes` with public URL `url`.
fn by_url<'a>(nodes: &[&'a Server], url: &str) -> &'a Server {
    nodes.iter().find(|n| n.cluster_url() == Some(url)).expect("a node of the cluster")
}

fn assert_no_name(redis: &Redis, room: &str) {
    let dump = redis.dump();
    assert!(dump.iter().all(|(k, v)| !k.contains(room) && !v.contains(room)), "Redis holds the name: {dump:?}");
}

#[tokio::test]
async fn a_room_opened_through_either_node_is_one_meeting_on_its_home_node() {
    let redis = Redis::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    acquainted(&a, &b).await;
    let room = "kelomari-tusefopa-bidanuve";

    let mut first = RealPeer::join(&a, room, Some("Ada")).await;
    let id1 = first.wait_for("joined through a", |s| s.id.is_some()).await.id.unwrap();
    // Through b: sent on to a, the room's home.
    let home = join_via(&b, room).await.expect_err("b is not the room's home");
    assert_eq!(home, url(&a));
    let mut second = RealPeer::join(by_url(&[&a, &b], &home), room, Some("Bo")).await;
    let id2 = second.wait_for("joined at the home", |s| s.id.is_some()).await.id.unwrap();
    first.wait_for("media from the second", |s| s.got(id2, Kind::Audio) >= 25 && s.got(id2, Kind::Video) >= 15).await;
    second.wait_for("media from the first", |s| s.got(id1, Kind::Audio) >= 25 && s.got(id1, Kind::Video) >= 15).await;
    assert!(a.shard_of(room).is_some() && b.shard_of(room).is_none(), "the meeting lives on a alone");

    // Redis: one owner for the room, under a key that is not its name; the
    // two nodes' announcements; the cluster's canary.
    let dump = redis.dump();
    let rooms: Vec<_> = dump.iter().filter(|(k, _)| k.starts_with("aconfi:room:")).collect();
    assert_eq!(rooms.len(), 1, "{dump:?}");
    assert_eq!(rooms[0].1.split(' ').next(), Some(url(&a).as_str()), "the directory names a as the home");
    assert_eq!(dump.len(), 4, "a room, two nodes, a canary: {dump:?}");
    assert!(dump.iter().any(|(k, _)| k == "aconfi:canary"));
    assert_no_name(&redis, room);

    // The meeting ends: its lease goes with it.
    first.leave().await;
    second.leave().await;
    first.wait_for("first closed", |s| s.closed.is_some()).await;
    second.wait_for("second closed", |s| s.closed.is_some()).await;
    eventually("the lease is released", || redis.dump().iter().all(|(k, _)| !k.starts_with("aconfi:room:"))).await;
}

#[tokio::test]
async fn a_joined_client_hears_of_the_other_nodes_and_their_pages_may_connect() {
    let redis = Redis::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    acquainted(&a, &b).await;
    let mut ws = common::ws(&a).await;
    send(&mut ws, &silent_join("room-nodes")).await;
    let urls = until(&mut ws, |m| match m {
        ServerMsg::Nodes { urls } => Some(urls.clone()),
        _ => None,
    })
    .await;
    assert_eq!(urls, [url(&b)]);
    // Pages of a may connect to b (where their clients may be sent): b's
    // URL is in a's connect-src, and b takes a's pages' WebSockets.
    let (_, headers, _) = common::https_request(a.https_addr.port(), "GET", "/room-nodes").await;
    let csp = &headers["content-security-policy"];
    let connect = csp.split(';').find(|d| d.trim().starts_with("connect-src")).unwrap();
    let b_host = url(&b).trim_start_matches("https://").to_owned();
    assert!(connect.contains(&url(&b)) && connect.contains(&format!("wss://{b_host}")), "{csp}");
    // And a itself by its public URL: through a balancer, 'self' is not a.
    assert!(connect.contains(&url(&a)), "{csp}");
    assert!(common::ws_with_origin(&b, Some(&url(&a))).await.is_ok(), "a's pages may open b's WebSocket");
    assert!(common::ws_with_origin(&b, Some("https://evil.example")).await.is_err(), "others' may not");
}

#[tokio::test]
async fn twenty_clients_racing_through_both_nodes_find_one_home() {
    let redis = Redis::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    acquainted(&a, &b).await;
    for round in 0..3 {
        let room = format!("race-room-{round}");
        let joins = (0..20).map(|i| {
            let server = if i % 2 == 0 { &a } else { &b };
            let room = room.clone();
            async move {
                match join_via(server, &room).await {
                    Ok((ws, _)) => (url(server), Some(ws)),
                    Err(home) => (home, None),
                }
            }
        });
        let answers = futures_util::future::join_all(joins).await;
        let homes: BTreeSet<&String> = answers.iter().map(|(home, _)| home).collect();
        assert_eq!(homes.len(), 1, "round {round}: one home for everyone: {homes:?}");
        let on_a = a.shard_of(&room).is_some();
        let on_b = b.shard_of(&room).is_some();
        assert!(on_a != on_b, "round {round}: the meeting is on one node (a: {on_a}, b: {on_b})");
        assert_eq!(homes.into_iter().next(), Some(&url(if on_a { &a } else { &b })));
        assert_no_name(&redis, &room);
    }
}

#[tokio::test]
async fn a_room_whose_home_stopped_announcing_itself_is_taken_over() {
    let redis = Redis::start();
    let b = node(&redis).await;
    // A node that claimed a room and died: its lease stands, but it no
    // longer says it is alive.
    let dead = Directory::connect(
        &redis.url(),
        "https://localhost:9",
        SECRET.as_bytes(),
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(dead.claim("room-orphan").await.unwrap(), Home::Here);
    // Through b: b takes it over instead of sending anyone to the dead node.
    let (_ws, _) = join_via(&b, "room-orphan").await.expect("b takes the room over");
    assert_eq!(dead.claim("room-orphan").await.unwrap(), Home::There(url(&b)), "the directory names b now");
    // A live owner is respected: the same node, announcing itself, keeps its room.
    dead.announce(0, Duration::from_secs(60)).await.unwrap();
    assert_eq!(dead.claim("room-owned").await.unwrap(), Home::Here);
    eventually("b sees the other node", || b.cluster_peers() == ["https://localhost:9"]).await;
    assert_eq!(join_via(&b, "room-owned").await.expect_err("sent to its live owner"), "https://localhost:9");
    // Its pages' clients may come to b, also once it is gone: they have
    // nowhere else to go.
    assert!(common::ws_with_origin(&b, Some("https://localhost:9")).await.is_ok());
    dead.withdraw().await.unwrap();
    eventually("b sees the node gone", || b.cluster_peers().is_empty()).await;
    assert!(common::ws_with_origin(&b, Some("https://localhost:9")).await.is_ok(), "a node seen once stays trusted");
    assert!(common::ws_with_origin(&b, Some("https://localhost:10")).await.is_err(), "one never seen is not");
}

/// A node given another cluster's secret (a typo in one node's settings)
/// would take every valid lease for foreign and take the rooms over: it
/// refuses to start, saying why, and the cluster's lease stands.
#[tokio::test]
async fn a_node_with_another_secret_refuses_to_start() {
    let redis = Redis::start();
    let a = node(&redis).await;
    let (_ws, _) = join_via(&a, "room-safe").await.expect("a holds the room");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = aconfi_server::Config::defaults();
    config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.media_port = 0;
    config.media_bind = Some("127.0.0.1".parse().unwrap());
    config.redis_url = Some(redis.url());
    config.public_url = Some(format!("https://localhost:{port}").parse().unwrap());
    config.cluster_secret = Some("not the secret of this cluster".into());
    let err = aconfi_server::start(config).await.err().expect("it refuses to start");
    assert!(format!("{err:#}").contains("--cluster-secret is not the one the other nodes"), "{err:#}");
    let direct =
        Directory::connect(&redis.url(), &url(&a), SECRET.as_bytes(), Duration::from_secs(60), Duration::from_secs(2))
            .await
            .unwrap();
    assert_eq!(direct.claim("room-safe").await.unwrap(), Home::Here, "the room is still a's");
}

/// Whoever holds the cluster secret (a compromised node, say) can write a
/// lease naming any URL. A node whose renewal finds its room's lease taken
/// sends the participants only to a node that is alive in the cluster;
/// here the lease names one that is not, and nobody is sent anywhere.
#[tokio::test]
async fn a_lease_taken_for_a_url_that_is_no_live_node_sends_nobody_there() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Log {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    // This test's runtime is single-threaded: the cluster's tasks log here.
    let _guard = tracing::subscriber::set_default(subscriber);

    let redis = Redis::start();
    let a = node(&redis).await;
    let (mut ws, _) = join_via(&a, "room-kept").await.expect("a holds the room");
    let forger = Directory::connect(
        &redis.url(),
        "https://evil.example",
        SECRET.as_bytes(),
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    // The forger takes the lease between two of a's renewals.
    let key = forger.room_key("room-kept");
    loop {
        redis.del(&key);
        if forger.claim("room-kept").await.unwrap() == Home::Here {
            break;
        }
    }
    eventually("a finds its lease taken by a URL that is no live node", || {
        String::from_utf8_lossy(&log.0.lock().unwrap()).contains("names a node that is not alive")
    })
    .await;
    // Everything a was told since: no `moved`, and the connection is open.
    while let Ok(Some(msg)) =
        tokio::time::timeout(Duration::from_millis(300), futures_util::StreamExt::next(&mut ws)).await
    {
        let text = msg.expect("the connection stays open").into_text().unwrap_or_default();
        assert!(!text.contains("moved") && !text.contains("evil.example"), "sent on: {text}");
    }
    assert!(a.shard_of("room-kept").is_some(), "the meeting stays on a");
}

#[tokio::test]
async fn without_redis_the_meeting_goes_on_and_the_node_claims_its_rooms_again_when_it_is_back() {
    let mut redis = Redis::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    acquainted(&a, &b).await;
    let mut one = RealPeer::join(&a, "room-during", None).await;
    let mut two = RealPeer::join(&a, "room-during", None).await;
    let id1 = one.wait_for("one joined", |s| s.id.is_some()).await.id.unwrap();
    let id2 = two.wait_for("two joined", |s| s.id.is_some()).await.id.unwrap();
    two.wait_for("media", |s| s.got(id1, Kind::Video) >= 15).await;

    redis.stop();
    // Media goes on: well more than before arrives after.
    let before = two.state.borrow().got(id1, Kind::Video);
    two.wait_for("media without Redis", |s| s.got(id1, Kind::Video) >= before + 60).await;
    one.wait_for("media without Redis", |s| s.got(id2, Kind::Video) >= 60).await;
    // A new room is made here, Redis or not.
    let (_ws, _) = join_via(&a, "room-alone").await.expect("a new room is made locally");

    // Redis back, empty: a announces itself and claims both its rooms again.
    let _back = Redis::start_on(redis.port);
    let a_url = url(&a);
    eventually("a registers again", || {
        let dump = _back.dump();
        let rooms =
            dump.iter().filter(|(k, v)| k.starts_with("aconfi:room:") && v.starts_with(&format!("{a_url} "))).count();
        rooms == 2 && dump.iter().any(|(k, _)| *k == format!("aconfi:node:{a_url}"))
    })
    .await;
    // b too has heard from Redis again (until then it makes rooms alone)
    // and counts a among the live nodes again (it sends nobody to a node
    // it does not see alive).
    eventually("b reaches Redis again", || b.cluster_reachable()).await;
    eventually("b sees a alive again", || b.cluster_peers() == [a_url.clone()]).await;
    // And the cluster works again: through b, the room is a's.
    assert_eq!(join_via(&b, "room-during").await.expect_err("sent to a"), a_url);
    assert_no_name(&_back, "room-during");
}

#[tokio::test]
async fn a_new_room_goes_to_the_less_loaded_node() {
    let redis = Redis::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    acquainted(&a, &b).await;
    let (_w1, _) = join_via(&a, "room-busy").await.unwrap();
    let (_w2, _) = join_via(&a, "room-busy").await.unwrap();
    // a has two participants, b none: a sends a new room to b.
    assert_eq!(join_via(&a, "room-fresh").await.expect_err("sent to b"), url(&b));
    let (_w3, _) = join_via(&b, "room-fresh").await.expect("b is its home");
}

#[tokio::test]
async fn a_draining_node_takes_no_new_room_and_hands_its_meetings_over() {
    let redis = Redis::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    acquainted(&a, &b).await;
    let (mut staying, _) = join_via(&a, "room-old").await.unwrap();
    let checks = async {
        eventually("b no longer counts a", || b.cluster_peers().is_empty()).await;
        assert_eq!(join_via(&a, "room-new").await.expect_err("no new room on a"), url(&b));
        // At the deadline the meeting is sent to b.
        let moved = until(&mut staying, |m| match m {
            ServerMsg::Moved { url } => Some(url.clone()),
            _ => None,
        })
        .await;
        assert_eq!(moved, url(&b));
        assert_eq!(common::close_code(&mut staying).await.0, Some(4015));
        // Its lease was given up: b takes the room when they arrive.
        join_via(&b, "room-old").await.expect("b is the new home");
    };
    tokio::join!(a.drain(Duration::from_secs(3)), checks);
}

#[tokio::test]
async fn the_binary_drains_on_sigterm_then_hands_its_meeting_over_and_exits() {
    let redis = Redis::start();
    let b = node(&redis).await;
    // The real binary as node a, with a certificate of the test's making.
    let dir = std::env::temp_dir().join(format!("aconfi-drain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let der = ck.cert.der().to_vec();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let a_url = format!("https://localhost:{port}");
    let mut a = common::KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_aconfi"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--media-port", "0", "--media-bind", "127.0.0.1"])
            .args(["--shards", "1", "--log", "warn", "--drain-seconds", "2"])
            .arg("--cert")
            .arg(dir.join("cert.pem"))
            .arg("--key")
            .arg(dir.join("key.pem"))
            .args(["--redis-url", &redis.url(), "--public-url", &a_url, "--cluster-secret", SECRET])
            .env_remove("ACONFI_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("runs aconfi"),
    );
    eventually("b sees the binary's node", || b.cluster_peers() == [a_url.clone()]).await;
    let mut staying = common::ws_at(port, der.clone()).await;
    send(&mut staying, &silent_join("room-draining")).await;
    until(&mut staying, |m| matches!(m, ServerMsg::Joined { .. }).then_some(())).await;

    let killed = std::process::Command::new("kill").args(["-TERM", &a.id().to_string()]).status().unwrap();
    assert!(killed.success());
    // Draining: b no longer counts it, it still runs, and sends a new room to b.
    eventually("the node withdraws", || b.cluster_peers().is_empty()).await;
    assert!(a.try_wait().unwrap().is_none(), "still running while its meeting goes on");
    let mut newcomer = common::ws_at(port, der).await;
    send(&mut newcomer, &silent_join("room-after-sigterm")).await;
    let sent = until(&mut newcomer, |m| match m {
        ServerMsg::Moved { url } => Some(url.clone()),
        _ => None,
    })
    .await;
    assert_eq!(sent, url(&b));
    // After --drain-seconds the meeting is sent to b, and the node stops.
    let moved = until(&mut staying, |m| match m {
        ServerMsg::Moved { url } => Some(url.clone()),
        _ => None,
    })
    .await;
    assert_eq!(moved, url(&b));
    eventually("the node exits", || a.try_wait().unwrap().is_some()).await;
    assert_eq!(a.wait().unwrap().code(), Some(0), "a clean exit");
    join_via(&b, "room-draining").await.expect("b takes the meeting");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn metrics_show_the_nodes_alive_and_whether_redis_answers() {
    let mut redis = Redis::start();
    let a = common::server_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let plain = common::samples(&common::scrape(a.metrics_addr.unwrap()).await);
    assert!(!plain.keys().any(|k| k.starts_with("aconfi_cluster")), "one node alone shows none: {plain:?}");
    a.shutdown().await;

    let a = node_with(&redis, |c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let b = node(&redis).await;
    acquainted(&a, &b).await;
    let addr = a.metrics_addr.unwrap();
    let m = common::samples(&common::scrape(addr).await);
    assert_eq!((m.get("aconfi_cluster_nodes"), m.get("aconfi_cluster_redis_reachable")), (Some(&2.0), Some(&1.0)));
    redis.stop();
    let mut reachable = Some(1.0);
    for _ in 0..100 {
        reachable = common::samples(&common::scrape(addr).await).get("aconfi_cluster_redis_reachable").copied();
        if reachable == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reachable, Some(0.0), "Redis stopped: the gauge says so within seconds");
}
