//! Offers captured from real browsers (the `offer` message as the web client
//! sent it, candidates removed) are accepted, and the answer makes every
//! browser send what every other can decode: Opus, and VP8 first — also
//! for a browser that prefers H.264, as Safari's offers do (captured from a
//! Chromium told to put H.264 first). Firefox's offer has its own shape:
//! bundle-only m-lines with port 0, ssrc-group FID lines, its own extmap
//! ids and payload types. The web client's camera is offered in three
//! simulcast layers (rids `q`, `h`, `f`) by both browsers: the answer
//! takes all three.

use std::net::SocketAddr;
use std::time::Instant;

use aconfi_core::protocol::PROTOCOL_VERSION;
use aconfi_core::{ClientMsg, Output, ParticipantId, ServerMsg, Sfu, SfuConfig};

const OFFERS: &[(&str, &str)] = &[
    ("firefox-153esr", include_str!("offers/firefox-153esr.json")),
    ("chromium-156-h264-first", include_str!("offers/chromium-156-h264-first.json")),
    ("chromium-156-simulcast", include_str!("offers/chromium-156-simulcast.json")),
    ("firefox-153esr-simulcast", include_str!("offers/firefox-153esr-simulcast.json")),
];

/// Joins one participant and hands it `offer`; returns the answer's SDP.
fn answer_to(offer: ClientMsg) -> String {
    let addr: SocketAddr = "192.0.2.1:10000".parse().expect("test address");
    answer_with(SfuConfig { candidates: vec![addr], ..SfuConfig::default() }, offer)
}

fn answer_with(config: SfuConfig, offer: ClientMsg) -> String {
    let mut sfu = Sfu::new(config);
    let pid = ParticipantId(1);
    let now = Instant::now();
    let join = ClientMsg::Join {
        version: PROTOCOL_VERSION,
        room: "interop-check".into(),
        name: None,
        audio_muted: false,
        video_muted: false,
        password: None,
        e2ee: false,
    };
    sfu.handle_signal(pid, join, now).expect("joined");
    sfu.handle_signal(pid, offer, now).expect("offer accepted");
    std::iter::from_fn(|| sfu.poll_output())
        .find_map(|o| match o {
            Output::Signal(_, ServerMsg::Answer { sdp }) => Some(sdp),
            _ => None,
        })
        .expect("an answer")
}

/// Per m-line: kind, mid, direction, and the codec of its first payload type.
fn media_lines(sdp: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for section in sdp.split("\r\nm=").skip(1) {
        let mut lines = section.split("\r\n");
        let m = lines.next().unwrap_or_default();
        let mut fields = m.split(' ');
        let kind = fields.next().unwrap_or_default().to_string();
        let first_pt = fields.nth(2).unwrap_or_default().to_string();
        let attrs: Vec<&str> = lines.collect();
        let attr = |name: &str| attrs.iter().find_map(|a| a.strip_prefix(name)).unwrap_or_default().to_string();
        let direction = ["sendrecv", "sendonly", "recvonly", "inactive"]
            .into_iter()
            .find(|d| attrs.contains(&format!("a={d}").as_str()))
            .unwrap_or_default()
            .to_string();
        let codec = attr(&format!("a=rtpmap:{first_pt} "));
        out.push((kind, attr("a=mid:"), direction, codec.split('/').next().unwrap_or_default().to_string()));
    }
    out
}

#[test]
fn browser_offers_get_answers_every_browser_can_decode() {
    for (browser, json) in OFFERS {
        let offer: ClientMsg = serde_json::from_str(json).unwrap_or_else(|e| panic!("{browser}: {e}"));
        let ClientMsg::Offer { sdp, screen_mid } = &offer else { panic!("{browser}: not an offer") };
        assert!(screen_mid.is_some(), "{browser}: the client names its screen m-line");
        let offered = media_lines(sdp);
        let answer = answer_to(offer.clone());
        let answered = media_lines(&answer);

        let kinds: Vec<&str> = answered.iter().map(|(k, ..)| k.as_str()).collect();
        assert_eq!(kinds, ["audio", "video", "video"], "{browser}: microphone, camera, screen");
        for ((kind, mid, direction, codec), (_, offered_mid, ..)) in answered.iter().zip(&offered) {
            assert_eq!(mid, offered_mid, "{browser}: m-lines answered in order");
            assert_eq!(direction, "recvonly", "{browser}: the server receives what the browser sends");
            let want = if kind == "audio" { "opus" } else { "VP8" };
            assert_eq!(codec, want, "{browser}: first codec of {kind} m-line {mid}\n{answer}");
        }
        // Opus RED would carry earlier frames inside later ones, around
        // the frame encryption of end-to-end encrypted meetings: never
        // accepted, though browsers offer it.
        assert!(!answer.to_ascii_lowercase().contains(" red/"), "{browser}: no RED in the answer\n{answer}");
    }
}

#[test]
fn the_h264_first_offer_really_prefers_h264() {
    // Otherwise the test above would prove nothing about H.264-first browsers.
    let (_, json) = OFFERS[1];
    let ClientMsg::Offer { sdp, .. } = serde_json::from_str(json).expect("offer") else { panic!("not an offer") };
    let video: Vec<String> = media_lines(&sdp).into_iter().filter(|(k, ..)| k == "video").map(|(.., c)| c).collect();
    assert_eq!(video, ["H264", "H264"]);
}

#[test]
fn simulcast_layers_are_received_lowest_first() {
    for (browser, json) in &OFFERS[2..] {
        let offer: ClientMsg = serde_json::from_str(json).unwrap_or_else(|e| panic!("{browser}: {e}"));
        let ClientMsg::Offer { sdp, .. } = &offer else { panic!("{browser}: not an offer") };
        assert!(sdp.contains("a=simulcast:send q;h;f"), "{browser}: the client offers three layers");
        let answer = answer_to(offer.clone());
        assert!(answer.contains("a=simulcast:recv q;h;f"), "{browser}: the server takes them\n{answer}");
        for rid in ["q", "h", "f"] {
            assert!(answer.contains(&format!("a=rid:{rid} recv")), "{browser}: rid {rid}\n{answer}");
        }
        // Only the camera: the screen m-line is sent as one stream.
        assert_eq!(answer.matches("a=simulcast:").count(), 1, "{browser}\n{answer}");
    }
}

#[test]
fn the_answer_offers_ice_over_tcp_where_the_server_listens_for_it() {
    // Distinct addresses, so each candidate must come from its own list.
    let udp: SocketAddr = "192.0.2.1:10000".parse().expect("test address");
    let tcp: SocketAddr = "198.51.100.7:443".parse().expect("test address");
    let offer: ClientMsg = serde_json::from_str(OFFERS[0].1).expect("offer");
    let config = SfuConfig { candidates: vec![udp], tcp_candidates: vec![tcp], ..SfuConfig::default() };
    let answer = answer_with(config, offer.clone());
    let candidates: Vec<&str> = answer.split("\r\n").filter(|l| l.starts_with("a=candidate:")).collect();
    assert!(candidates.iter().any(|c| c.contains(" udp ") && c.contains("192.0.2.1 10000 typ host")), "{answer}");
    assert!(
        candidates.iter().any(|c| c.contains(" tcp ") && c.contains("198.51.100.7 443 typ host tcptype passive")),
        "a passive TCP candidate (RFC 6544) at the TCP address\n{answer}"
    );
    assert!(!candidates.iter().any(|c| c.contains(" udp ") && c.contains("198.51.100.7")), "no UDP at the TCP address");
    assert!(!candidates.iter().any(|c| c.contains(" tcp ") && c.contains("192.0.2.1")), "no TCP at the UDP address");
    // Without TCP candidates configured, none.
    assert!(!answer_to(offer).contains(" tcp "), "no TCP candidate unless configured");
}
