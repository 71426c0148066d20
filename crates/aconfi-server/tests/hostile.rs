//! Hostile clients against the real server over loopback: what one person
//! with many connections can and cannot do to a meeting.

mod common;

use std::time::Duration;

use aconfi_core::{ClientMsg, ServerMsg, MAX_PARTICIPANTS_PER_ROOM, MAX_WAITING_PER_ROOM};
use aconfi_testpeer::silent_join as join;
use common::{send, Ws};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

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

/// Opens a WebSocket by hand over TLS to 127.0.0.1 (trusting `cert`, SNI
/// `sni`), with the `Host` and `Origin` a browser page would send; the
/// HTTP status the server answers.
async fn upgrade_status(port: u16, cert: &[u8], sni: &str, host: &str, origin: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(cert.to_vec())).unwrap();
    let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[tokio::test]
async fn with_the_operators_certificate_only_its_names_may_open_the_websocket() {
    // An operator's certificate for meet.example.test (and localhost, to
    // reach it here), in files as an operator would pass them.
    let ck = rcgen::generate_simple_self_signed(vec!["meet.example.test".into(), "localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("aconfi-cert-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, ck.cert.pem()).unwrap();
    std::fs::write(&key_path, ck.signing_key.serialize_pem()).unwrap();
    let mut config = aconfi_server::Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.media_port = 0;
    config.media_bind = Some("127.0.0.1".parse().unwrap());
    config.cert = Some(cert_path);
    config.key = Some(key_path);
    config.origin = vec!["https://proxy.example.test".into()];
    let server = aconfi_server::start(config).await.expect("server starts");
    std::fs::remove_dir_all(&dir).unwrap();
    let port = server.https_addr.port();
    let der = ck.cert.der().to_vec();
    let status = |host: String, origin: String| {
        let der = der.clone();
        async move { upgrade_status(port, &der, "localhost", &host, &origin).await }
    };

    // Pages on a name of the certificate, any port, and --origin: let in.
    assert_eq!(status(format!("localhost:{port}"), "https://meet.example.test".into()).await, 101);
    assert_eq!(status(format!("localhost:{port}"), "https://meet.example.test:443".into()).await, 101);
    assert_eq!(status(format!("localhost:{port}"), "https://proxy.example.test".into()).await, 101);
    // A page on a name that resolves here (DNS rebinding) sends a Host that
    // matches its Origin: refused all the same, the certificate is not for it.
    assert_eq!(status("evil.example:443".into(), "https://evil.example:443".into()).await, 403);
    // The scheme counts.
    assert_eq!(status(format!("localhost:{port}"), "http://meet.example.test".into()).await, 403);

    // With a real certificate, browsers are told to use HTTPS only.
    let (code, headers, _) = common::https_request_with_cert(port, &der, "GET", "/").await;
    assert_eq!(code, 200);
    assert_eq!(headers.get("strict-transport-security").map(String::as_str), Some("max-age=31536000"));
    assert_eq!(headers.get("cross-origin-opener-policy").map(String::as_str), Some("same-origin"));
    server.shutdown().await;
}

#[tokio::test]
async fn the_generated_certificate_gets_no_hsts_and_pages_no_other_powers() {
    let server = common::server().await;
    common::remember_cert(&server);
    let (code, headers) = common::https_head(server.https_addr.port(), "/").await;
    assert_eq!(code, 200);
    // HSTS would keep browsers from letting the user past the warning.
    assert_eq!(headers.get("strict-transport-security"), None);
    assert_eq!(headers.get("cross-origin-opener-policy").map(String::as_str), Some("same-origin"));
    let policy = headers.get("permissions-policy").expect("a permissions policy");
    for granted in ["camera=(self)", "microphone=(self)", "display-capture=(self)"] {
        assert!(policy.contains(granted), "{policy}");
    }
    for denied in ["geolocation=()", "usb=()", "payment=()", "serial=()", "midi=()"] {
        assert!(policy.contains(denied), "{policy}");
    }
    // Meeting links are secrets: no page sends its address on, to anyone.
    for path in ["/", "/some-room-name", "/api/stream/some-room-name", "/static/js/app.js"] {
        let (_, headers) = common::https_head(server.https_addr.port(), path).await;
        assert_eq!(headers.get("referrer-policy").map(String::as_str), Some("no-referrer"), "{path}");
    }
    server.shutdown().await;
}

/// `--max-connections` holds for the server as a whole, below the
/// per-address cap: the fourth WebSocket is answered 503.
#[tokio::test]
async fn the_server_as_a_whole_takes_no_more_connections_than_its_cap() {
    let server = common::server_with(|c| {
        c.max_connections = 3;
        c.max_connections_per_address = 100;
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(common::ws(&server).await);
    }
    let err = common::ws_with_origin(&server, None).await.expect_err("the fourth is refused");
    assert!(err.to_string().contains("503"), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_open_more_connections_than_its_cap() {
    let server = common::server_with(|c| c.max_connections_per_address = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(common::ws(&server).await);
    }
    let err = common::ws_with_origin(&server, None).await.expect_err("the fourth is refused");
    assert!(err.to_string().contains("503"), "{err}");
    // One closes: there is room again once the server has let it go.
    let mut gone = open.pop().unwrap();
    gone.close(None).await.unwrap();
    while gone.next().await.is_some() {}
    let again = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(ws) = common::ws_with_origin(&server, None).await {
                return ws;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(again.is_ok(), "a slot is free again after a close");
    server.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_never_joins_is_closed() {
    let server = common::server().await;
    let mut ws = common::ws(&server).await;
    let started = std::time::Instant::now();
    let code = tokio::time::timeout(aconfi_server::ws::JOIN_DEADLINE * 2, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    })
    .await
    .expect("closed within twice the deadline");
    assert_eq!(code, Some(4001));
    assert!(
        started.elapsed() >= aconfi_server::ws::JOIN_DEADLINE - Duration::from_millis(100),
        "not before the deadline"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_half_sent_request_is_dropped_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = common::server().await;
    let cert = server.cert_der.clone().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(cert)).unwrap();
    let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls));
    let tcp = tokio::net::TcpStream::connect(server.https_addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    let started = std::time::Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
    let mut buf = Vec::new();
    let ended = tokio::time::timeout(aconfi_server::HEADER_READ_TIMEOUT * 2, s.read_to_end(&mut buf)).await;
    assert!(ended.is_ok(), "the server hung up within twice the header timeout");
    assert!(
        started.elapsed() >= aconfi_server::HEADER_READ_TIMEOUT - Duration::from_millis(200),
        "not before the header timeout: {:?}",
        started.elapsed()
    );
    server.shutdown().await;
}

/// A server stopping (SIGTERM) tells everyone it is going away, so pages say
/// "restarting" and come back; never "internal error", whichever of the
/// core or the connection notices the shutdown first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_shutdown_every_participant_hears_going_away() {
    let server = common::server().await;
    let mut conns = Vec::new();
    for i in 0..60 {
        let mut ws = common::ws(&server).await;
        send(&mut ws, &join(&format!("shutdown-{}", i % 3))).await;
        let mut joined = false;
        read_until(&mut ws, |m, _| {
            joined = matches!(m, Some(ServerMsg::Joined { .. }));
            joined
        })
        .await;
        assert!(joined, "connection {i} joined");
        conns.push(ws);
    }
    server.shutdown().await;
    for (i, ws) in conns.iter_mut().enumerate() {
        let mut code = None;
        read_until(ws, |_, c| {
            code = c;
            c.is_some()
        })
        .await;
        assert_eq!(code, Some(1001), "connection {i} was told the server is going away");
    }
}

/// The prejoin screen's "this meeting is live" question tells someone who
/// is not in a meeting nothing about whether it exists: a room with people
/// in it, not streamed, answers exactly as a room that does not exist.
#[tokio::test]
async fn asking_whether_a_meeting_is_live_does_not_tell_whether_it_exists() {
    let server = common::server().await;
    common::remember_cert(&server);
    let mut m = common::ws(&server).await;
    send(&mut m, &join("existing-room")).await;
    common::until(&mut m, |x| matches!(x, ServerMsg::Joined { .. }).then_some(())).await;
    let port = server.https_addr.port();
    let answer = |room: &'static str| async move {
        let (code, mut headers, body) = common::https_request(port, "GET", &format!("/api/stream/{room}")).await;
        headers.remove("date");
        (code, headers, body)
    };
    let existing = answer("existing-room").await;
    let absent = answer("absent-room-of-nobody").await;
    assert_eq!(existing.0, 200);
    assert_eq!(existing, absent, "the same status, headers and body");
    assert_eq!(existing.2, r#"{"live":false}"#);
    server.shutdown().await;
}
