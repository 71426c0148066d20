//! `/metrics`: off unless asked for, on its own address, aggregate figures
//! that follow a real meeting over loopback, and nothing that names a room,
//! a person or an address.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use aconfi_core::Kind;
use common::{samples, scrape, RealPeer};

const ROOM: &str = "metrics-meeting-room";

/// Scrapes until `cond` holds (gauges are updated once a second).
async fn until(addr: SocketAddr, what: &str, cond: impl Fn(&HashMap<String, f64>) -> bool) -> String {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let body = scrape(addr).await;
            if cond(&samples(&body)) {
                return body;
            }
            tokio::time::sleep(aconfi_server::shard::GAUGES_EVERY / 4).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("metrics never showed {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_meeting_and_name_nothing() {
    let plain = common::server().await;
    assert_eq!(plain.metrics_addr, None, "off by default");
    plain.shutdown().await;

    let server = common::server_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let addr = server.metrics_addr.expect("metrics served");
    assert_ne!(addr.port(), server.https_addr.port(), "on its own port");

    let mut a = RealPeer::join(&server, ROOM, Some("Alice Metrics")).await;
    let mut b = RealPeer::join(&server, ROOM, Some("Bob Metrics")).await;
    let ib = b.wait_for("b in", |s| s.id.is_some()).await.id.unwrap();
    let ia = a.wait_for("a in", |s| s.id.is_some()).await.id.unwrap();
    a.wait_for("media from b", |s| s.got(ib, Kind::Video) >= 10).await;
    b.wait_for("media from a", |s| s.got(ia, Kind::Video) >= 10).await;

    let body = until(addr, "one room with two people", |m| {
        m.get("aconfi_rooms") == Some(&1.0)
            && m.get("aconfi_participants") == Some(&2.0)
            && m.get("aconfi_connections") == Some(&2.0)
    })
    .await;
    let m = samples(&body);
    for counter in [
        "aconfi_media_datagrams_received_total",
        "aconfi_media_received_bytes_total",
        "aconfi_media_datagrams_sent_total",
        "aconfi_media_sent_bytes_total",
        "aconfi_process_cpu_seconds_total",
        "aconfi_process_resident_memory_bytes",
    ] {
        assert!(m.get(counter).is_some_and(|v| *v > 0.0), "{counter} in:\n{body}");
    }
    assert!(m.contains_key("aconfi_media_datagrams_dropped_total"), "{body}");
    assert_eq!(m.get("aconfi_streams"), Some(&0.0));
    // No labels at all, so no name, id or address can be in one.
    assert!(!body.contains('{'), "a labelled metric:\n{body}");
    for secret in [ROOM, "Alice", "Bob", "127.0.0.1"] {
        assert!(!body.contains(secret), "{secret} in:\n{body}");
    }

    a.leave().await;
    b.leave().await;
    until(addr, "everyone gone", |m| {
        m.get("aconfi_rooms") == Some(&0.0)
            && m.get("aconfi_participants") == Some(&0.0)
            && m.get("aconfi_connections") == Some(&0.0)
    })
    .await;
    server.shutdown().await;
}

/// A half-sent request to the metrics port is dropped once the header
/// timeout is over, as on the HTTPS port, and not before.
#[tokio::test]
async fn a_half_sent_scrape_is_dropped_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = common::server_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let addr = server.metrics_addr.expect("metrics served");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
    let mut buf = Vec::new();
    let ended = tokio::time::timeout(aconfi_server::HEADER_READ_TIMEOUT * 2, s.read_to_end(&mut buf)).await;
    assert!(ended.is_ok(), "the metrics port hung up within twice the header timeout");
    assert!(
        started.elapsed() >= aconfi_server::HEADER_READ_TIMEOUT - std::time::Duration::from_millis(200),
        "not before the timeout: {:?}",
        started.elapsed()
    );
    // A whole scrape still works.
    assert!(scrape(addr).await.contains("aconfi_rooms"));
    server.shutdown().await;
}
