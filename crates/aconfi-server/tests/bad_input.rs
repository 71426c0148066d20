//! Malformed, oversized, out-of-order and flooding signaling, and random
//! UDP datagrams, thrown at a server while a meeting is live. Each bad
//! socket is closed with its documented code; the meeting never notices.

mod common;

use aconfi_core::Kind;
use common::{close_code, RealPeer};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

const JOIN: &str = r#"{"type":"join","version":1,"room":"other-room"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_disturbs_a_live_meeting() {
    let server = common::server().await;
    let room = "live-meeting";
    let mut a = RealPeer::join(&server, room, None).await;
    let mut b = RealPeer::join(&server, room, None).await;
    let ia = a.wait_for("a joined", |s| s.id.is_some()).await.id.unwrap();
    let ib = b.wait_for("b joined", |s| s.id.is_some()).await.id.unwrap();
    a.wait_for("media from b", |s| s.got(ib, Kind::Video) > 10).await;
    b.wait_for("media from a", |s| s.got(ia, Kind::Video) > 10).await;

    // (messages to send, expected close code)
    let text = |s: &str| Message::Text(s.to_string().into());
    let cases: Vec<(&str, Vec<Message>, u16)> = vec![
        ("not json", vec![text("hello there")], 4000),
        ("unknown type", vec![text(r#"{"type":"teleport"}"#)], 4000),
        ("unknown field", vec![text(r#"{"type":"leave","x":1}"#)], 4000),
        ("wrong field type", vec![text(r#"{"type":"join","version":"1","room":"abc"}"#)], 4000),
        ("bad room name", vec![text(r#"{"type":"join","version":1,"room":"no spaces allowed"}"#)], 4003),
        (
            "room name too long",
            vec![text(&format!(r#"{{"type":"join","version":1,"room":"{}"}}"#, "a".repeat(65)))],
            4003,
        ),
        ("future version", vec![text(r#"{"type":"join","version":99,"room":"abc"}"#)], 4002),
        ("offer before join", vec![text(r#"{"type":"offer","sdp":"v=0"}"#)], 4001),
        ("answer with nothing offered", vec![text(JOIN), text(r#"{"type":"answer","sdp":"v=0"}"#)], 4001),
        ("join twice", vec![text(JOIN), text(JOIN)], 4001),
        ("garbage sdp", vec![text(JOIN), text(r#"{"type":"offer","sdp":"v=0\r\nthis is not sdp"}"#)], 4004),
        ("binary frame", vec![Message::Binary(vec![0u8, 1, 2, 3].into())], 1003),
        ("oversized", vec![text(&"x".repeat(300 * 1024))], 1009),
        ("flood", (0..200).map(|_| Message::Ping(Default::default())).collect(), 4007),
    ];
    for (what, msgs, want) in cases {
        let mut ws = common::ws(&server).await;
        for m in msgs {
            // The server may close mid-way; later sends may fail.
            if ws.send(m).await.is_err() {
                break;
            }
        }
        let (code, error) = close_code(&mut ws).await;
        assert_eq!(code, Some(want), "{what}");
        if want >= 4000 {
            assert_eq!(error, Some(want), "{what}: an error message precedes the close");
        }
    }

    // Random datagrams, and ones that look like STUN, DTLS and RTP.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = common::media_addr(&server);
    for i in 0..3000u32 {
        let len = 1 + (rand::random::<u32>() % 1400) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
        match i % 4 {
            0 if len > 20 => d[..4].copy_from_slice(&[0x00, 0x01, 0x00, (len - 20) as u8]),
            1 if len > 13 => d[..3].copy_from_slice(&[0x16, 0xfe, 0xfd]),
            2 if len > 12 => d[0] = 0x80,
            _ => {}
        }
        let _ = udp.send_to(&d, target).await;
    }

    // The meeting goes on: both still receive each other…
    let (va, vb) = (a.state.borrow().got(ib, Kind::Video), b.state.borrow().got(ia, Kind::Video));
    a.wait_for("media from b after the garbage", |s| s.got(ib, Kind::Video) > va + 30).await;
    b.wait_for("media from a after the garbage", |s| s.got(ia, Kind::Video) > vb + 30).await;
    // …and a newcomer still gets in and gets media.
    let mut c = RealPeer::join(&server, room, None).await;
    c.wait_for("newcomer gets media from both", |s| s.got(ia, Kind::Audio) > 5 && s.got(ib, Kind::Video) > 5).await;
    server.shutdown().await;
}
