//! The cluster's room directory (src/directory.rs) against a real Redis
//! from Debian, started on a free port for each test: a room has one home
//! however many nodes race to claim it; only the owner renews or releases;
//! a lease that is not renewed ends and another node may take the room;
//! Redis holds no room name; nodes are listed least loaded first and
//! vanish when they stop announcing; a Redis that goes away gives errors
//! in bounded time, and the directory works again when it is back.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use aconfi_server::directory::{Directory, Home};
use common::redis_server::Redis;

const SECRET: &[u8] = b"cluster secret for the tests";
const TIMEOUT: Duration = Duration::from_secs(2);

async fn node(redis: &Redis, url: &str, lease: Duration) -> Directory {
    Directory::connect(&redis.url(), url, SECRET, lease, TIMEOUT).await.expect("connects")
}

#[tokio::test]
async fn a_room_has_one_home_and_redis_never_holds_its_name() {
    let redis = Redis::start();
    let a = node(&redis, "https://node-a.example", Duration::from_secs(30)).await;
    let b = node(&redis, "https://node-b.example", Duration::from_secs(30)).await;
    let room = "kelomari-tusefopa-bidanuve";
    assert_eq!(a.claim(room).await.unwrap(), Home::Here);
    assert_eq!(a.claim(room).await.unwrap(), Home::Here, "asking again, still ours");
    assert_eq!(b.claim(room).await.unwrap(), Home::There("https://node-a.example".into()));
    // Only the owner renews or releases.
    assert!(a.renew(room).await.unwrap());
    assert!(!b.renew(room).await.unwrap());
    b.release(room).await.unwrap();
    assert_eq!(b.claim(room).await.unwrap(), Home::There("https://node-a.example".into()), "b's release did nothing");
    // Redis holds a key per room that says nothing of its name, with a TTL.
    let dump = redis.dump();
    assert_eq!(dump.len(), 1, "{dump:?}");
    assert!(dump.iter().all(|(k, v)| !k.contains("kelomari") && !v.contains("kelomari")), "{dump:?}");
    let mut c = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(&dump[0].0).query(&mut c).unwrap();
    assert!(ttl > 0 && ttl <= 30_000, "the lease expires: {ttl} ms");
    // The room ends at its home: gone from Redis, and free for anyone.
    a.release(room).await.unwrap();
    assert!(redis.dump().is_empty());
    assert_eq!(b.claim(room).await.unwrap(), Home::Here);
}

#[tokio::test]
async fn twenty_racing_claims_through_two_nodes_find_one_owner() {
    let redis = Redis::start();
    let a = node(&redis, "https://node-a.example", Duration::from_secs(30)).await;
    let b = node(&redis, "https://node-b.example", Duration::from_secs(30)).await;
    for round in 0..5 {
        let room = format!("race-room-{round}");
        let claims = (0..20).map(|i| {
            let d = if i % 2 == 0 { a.clone() } else { b.clone() };
            let room = room.clone();
            tokio::spawn(async move { (d.url().to_owned(), d.claim(&room).await.unwrap()) })
        });
        let mut owners = std::collections::BTreeSet::new();
        for c in claims {
            let (asker, home) = c.await.unwrap();
            owners.insert(match home {
                Home::Here => asker,
                Home::There(url) => url,
            });
        }
        assert_eq!(owners.len(), 1, "round {round}: every claim names the same home: {owners:?}");
    }
}

#[tokio::test]
async fn a_lease_not_renewed_ends_and_another_node_takes_the_room() {
    let redis = Redis::start();
    let lease = Duration::from_millis(300);
    let a = node(&redis, "https://node-a.example", lease).await;
    let b = node(&redis, "https://node-b.example", lease).await;
    assert_eq!(a.claim("room-x").await.unwrap(), Home::Here);
    // a stops renewing (it died): b gets the room once the lease runs out.
    let started = Instant::now();
    while b.claim("room-x").await.unwrap() != Home::Here {
        assert!(started.elapsed() < Duration::from_secs(5), "the lease never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(200), "not before the lease ran out");
    // a, back, cannot renew what is b's now.
    assert!(!a.renew("room-x").await.unwrap());
    assert_eq!(a.claim("room-x").await.unwrap(), Home::There("https://node-b.example".into()));
}

#[tokio::test]
async fn nodes_are_listed_least_loaded_first_and_vanish_when_silent() {
    let redis = Redis::start();
    let a = node(&redis, "https://node-a.example", Duration::from_secs(30)).await;
    let b = node(&redis, "https://node-b.example", Duration::from_secs(30)).await;
    a.announce(7, Duration::from_secs(30)).await.unwrap();
    b.announce(2, Duration::from_millis(300)).await.unwrap();
    let live = a.live_nodes().await.unwrap();
    assert_eq!(
        live.iter().map(|n| (n.url.as_str(), n.load)).collect::<Vec<_>>(),
        [("https://node-b.example", 2), ("https://node-a.example", 7)]
    );
    // b falls silent: gone once its announcement expires.
    let started = Instant::now();
    while a.live_nodes().await.unwrap().len() != 1 {
        assert!(started.elapsed() < Duration::from_secs(5), "b never vanished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.live_nodes().await.unwrap()[0].url, "https://node-a.example");
}

#[tokio::test]
async fn without_redis_calls_fail_in_bounded_time_and_work_again_when_it_is_back() {
    let mut redis = Redis::start();
    let a = node(&redis, "https://node-a.example", Duration::from_secs(30)).await;
    assert_eq!(a.claim("room-y").await.unwrap(), Home::Here);
    redis.stop();
    let started = Instant::now();
    assert!(a.claim("room-z").await.is_err(), "no Redis, no claim");
    assert!(started.elapsed() < TIMEOUT * 4, "the error came in {:?}", started.elapsed());
    // Redis is back (empty: it persists nothing): the directory reconnects.
    let _back = Redis::start_on(redis.port);
    let started = Instant::now();
    loop {
        match a.claim("room-z").await {
            Ok(home) => {
                assert_eq!(home, Home::Here);
                break;
            }
            Err(e) => {
                assert!(started.elapsed() < Duration::from_secs(15), "never reconnected: {e:#}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // A connect to a Redis that is not there fails, within its timeout.
    let started = Instant::now();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = Directory::connect(
        &format!("redis://127.0.0.1:{dead}/"),
        "https://c.example",
        SECRET,
        Duration::from_secs(1),
        TIMEOUT,
    )
    .await;
    assert!(err.is_err());
    assert!(started.elapsed() < TIMEOUT * 4);
}

#[tokio::test]
async fn values_not_signed_with_the_cluster_secret_are_no_values() {
    let redis = Redis::start();
    let a = node(&redis, "https://node-a.example", Duration::from_secs(30)).await;
    let mut c = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    // Someone who can write to Redis but has not the secret names their own
    // site as a room's home and as a live node.
    let key = a.room_key("room-forged");
    let _: () = redis::cmd("SET").arg(&key).arg("https://evil.example 00").query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("aconfi:node:https://evil.example").arg("0 00").query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("aconfi:node:https://bare.example").arg("0").query(&mut c).unwrap();
    // The room is a's to claim; no such node is alive.
    assert_eq!(a.claim("room-forged").await.unwrap(), Home::Here);
    assert!(a.renew("room-forged").await.unwrap(), "and a holds it now");
    assert!(a.live_nodes().await.unwrap().is_empty());
    // A genuine value, copied to another room's key, names no one there either.
    let other = a.room_key("room-other");
    let genuine: String = redis::cmd("GET").arg(&key).query(&mut c).unwrap();
    let b = node(&redis, "https://node-b.example", Duration::from_secs(30)).await;
    let _: () = redis::cmd("SET").arg(&other).arg(&genuine).query(&mut c).unwrap();
    assert_eq!(b.claim("room-other").await.unwrap(), Home::Here);
    // Another cluster's node (another secret) cannot be taken for one of ours.
    let foreign = Directory::connect(
        &redis.url(),
        "https://node-f.example",
        b"another cluster's secret",
        Duration::from_secs(30),
        TIMEOUT,
    )
    .await
    .unwrap();
    foreign.announce(1, Duration::from_secs(30)).await.unwrap();
    a.announce(2, Duration::from_secs(30)).await.unwrap();
    let live: Vec<String> = b.live_nodes().await.unwrap().into_iter().map(|n| n.url).collect();
    assert_eq!(live, ["https://node-a.example"]);
}

/// A node's announcement says when it ends, under the tag: copied back by
/// someone who can write to Redis (without the secret), without the TTL
/// Redis gave it, it cannot keep a dead node alive, nor stop another node
/// taking that node's rooms over.
#[tokio::test]
async fn an_announcement_replayed_without_its_expiry_keeps_no_node_alive() {
    let redis = Redis::start();
    let dead = node(&redis, "https://node-dead.example", Duration::from_secs(30)).await;
    let b = node(&redis, "https://node-b.example", Duration::from_secs(30)).await;
    assert_eq!(dead.claim("room-pinned").await.unwrap(), Home::Here);
    dead.announce(3, Duration::from_millis(300)).await.unwrap();
    let mut c = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let key = "aconfi:node:https://node-dead.example";
    let value: String = redis::cmd("GET").arg(key).query(&mut c).unwrap();
    assert_eq!(b.live_nodes().await.unwrap().len(), 1, "alive while its announcement lasts");
    // Written back without a TTL: Redis would keep it for ever.
    let _: () = redis::cmd("SET").arg(key).arg(&value).query(&mut c).unwrap();
    let started = Instant::now();
    while !b.live_nodes().await.unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(5), "the replayed announcement kept the node alive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kept: Option<String> = redis::cmd("GET").arg(key).query(&mut c).unwrap();
    assert_eq!(kept.as_deref(), Some(value.as_str()), "the value is still there: it is its expiry that counts");
    assert!(b.take_over("room-pinned", "https://node-dead.example", "https://node-b.example").await.unwrap());
    assert_eq!(dead.claim("room-pinned").await.unwrap(), Home::There("https://node-b.example".into()));
    // A live node's room is not taken over.
    b.announce(0, Duration::from_secs(30)).await.unwrap();
    assert!(!dead.take_over("room-pinned", "https://node-b.example", "https://node-dead.example").await.unwrap());
}

/// The canary: the first node writes it, a node with the same secret
/// finds it matches, one with another secret finds it does not.
#[tokio::test]
async fn the_canary_tells_a_node_whether_its_secret_is_the_clusters() {
    use aconfi_server::directory::Canary;
    let redis = Redis::start();
    let a = node(&redis, "https://node-a.example", Duration::from_secs(30)).await;
    assert_eq!(a.check_canary().await.unwrap(), Canary::Written);
    let b = node(&redis, "https://node-b.example", Duration::from_secs(30)).await;
    assert_eq!(b.check_canary().await.unwrap(), Canary::Matches);
    let wrong =
        Directory::connect(&redis.url(), "https://node-w.example", b"a wrong secret", Duration::from_secs(30), TIMEOUT)
            .await
            .unwrap();
    assert_eq!(wrong.check_canary().await.unwrap(), Canary::Differs);
    let dump = redis.dump();
    let canary = dump.iter().find(|(k, _)| k == "aconfi:canary").expect("a canary");
    assert!(!canary.1.contains("secret"), "the canary holds a tag, not the secret: {}", canary.1);
}
