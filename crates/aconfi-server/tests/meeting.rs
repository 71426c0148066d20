//! A meeting over the real server: WebSocket signaling on HTTPS, media on
//! one UDP port, three str0m clients.

mod common;

use aconfi_core::Kind;
use common::RealPeer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_meet_over_loopback_and_the_room_empties() {
    let server = common::server().await;
    let room = "loopback-meeting";
    let mut a = RealPeer::join(&server, room, Some("A")).await;
    let mut b = RealPeer::join(&server, room, Some("B")).await;
    let mut c = RealPeer::join(&server, room, None).await;
    let ids = [
        a.wait_for("a joined", |s| s.id.is_some()).await.id.unwrap(),
        b.wait_for("b joined", |s| s.id.is_some()).await.id.unwrap(),
        c.wait_for("c joined", |s| s.id.is_some()).await.id.unwrap(),
    ];
    for (i, p) in [&mut a, &mut b, &mut c].into_iter().enumerate() {
        let others: Vec<_> = ids.iter().copied().filter(|x| *x != ids[i]).collect();
        p.wait_for("media from both others", |s| {
            others.iter().all(|o| s.got(*o, Kind::Audio) >= 25 && s.got(*o, Kind::Video) >= 15)
        })
        .await;
    }

    c.leave().await;
    let gone = ids[2];
    c.wait_for("c closed normally", |s| s.closed == Some(1000)).await;
    for p in [&mut a, &mut b] {
        p.wait_for("c gone, tracks renegotiated away", |s| {
            s.left.contains(&gone)
                && !s.participants.contains(&gone)
                && s.tracks.iter().all(|t| t.participant != gone)
                && s.tracks.len() == 2
        })
        .await;
    }
    // A and B keep receiving each other.
    let before = a.state.borrow().got(ids[1], Kind::Video);
    a.wait_for("media after the leave", |s| s.got(ids[1], Kind::Video) > before + 20).await;

    a.leave().await;
    b.leave().await;
    a.wait_for("a closed", |s| s.closed.is_some()).await;
    b.wait_for("b closed", |s| s.closed.is_some()).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_over_ipv6() {
    let server = common::server_with(|c| c.media_bind = Some("::1".parse().unwrap())).await;
    assert!(server.media_addrs.iter().all(|a| a.is_ipv6()), "{:?}", server.media_addrs);
    let v6 = "::1".parse().unwrap();
    let mut a = RealPeer::join_from(&server, "over-ipv6", Some("A"), v6).await;
    let mut b = RealPeer::join_from(&server, "over-ipv6", Some("B"), v6).await;
    let ida = a.wait_for("a joined", |s| s.id.is_some()).await.id.unwrap();
    let idb = b.wait_for("b joined", |s| s.id.is_some()).await.id.unwrap();
    a.wait_for("media from b", |s| s.got(idb, Kind::Audio) >= 25 && s.got(idb, Kind::Video) >= 15).await;
    b.wait_for("media from a", |s| s.got(ida, Kind::Audio) >= 25 && s.got(ida, Kind::Video) >= 15).await;
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_room_link_gets_an_error_page_and_new_meeting_redirects() {
    let server = common::server().await;
    common::remember_cert(&server);
    let port = server.https_addr.port();
    let get = |path: &str| {
        let path = path.to_string();
        async move { common::https_get(port, &path).await }
    };
    let (status, body) = get("/bad%20name!").await;
    assert_eq!(status, 400);
    assert!(body.contains("not valid"), "{body}");
    assert!(!body.contains("bad name"), "input is not echoed back");
    let (status, _, body) =
        common::https_request_with(port, "GET", "/bad%20name!", "Accept-Language: de-DE,de;q=0.9\r\n").await;
    assert_eq!(status, 400);
    assert!(body.contains("nicht gültig") && body.contains("lang=\"de\""), "{body}");
    let (status, body) = get("/some-meeting").await;
    assert_eq!(status, 200);
    assert!(body.contains("/static/js/app.js"));
    let (status, headers) = common::https_head(port, "/new").await;
    assert_eq!(status, 303);
    let loc = headers.get("location").expect("redirect target");
    let name = loc.trim_start_matches('/');
    assert!(aconfi_core::RoomName::parse(name).is_ok(), "{loc}");
    assert!(name.len() >= 20);
    // What browsers and crawlers ask for by themselves is answered.
    let (status, headers, body) = common::https_request_with(port, "GET", "/favicon.ico", "").await;
    assert_eq!((status, headers.get("content-type").map(String::as_str)), (200, Some("image/svg+xml")));
    assert!(body.starts_with("<svg"), "{body}");
    let (status, body) = get("/robots.txt").await;
    assert_eq!(status, 200);
    assert!(body.contains("Disallow: /"), "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn websockets_from_other_sites_are_refused() {
    let server = common::server().await;
    let port = server.https_addr.port();
    let own = format!("https://localhost:{port}");
    assert!(common::ws_with_origin(&server, Some(&own)).await.is_ok());
    let err = common::ws_with_origin(&server, Some("https://evil.example")).await.expect_err("refused");
    assert!(err.to_string().contains("403"), "{err}");
    // Same host, but a page not served over HTTPS is not ours either.
    let err = common::ws_with_origin(&server, Some(&format!("http://localhost:{port}"))).await.expect_err("refused");
    assert!(err.to_string().contains("403"), "{err}");
    // Non-browser clients send no Origin and are let in.
    assert!(common::ws_with_origin(&server, None).await.is_ok());
    server.shutdown().await;
}
