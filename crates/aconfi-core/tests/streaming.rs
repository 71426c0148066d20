//! Live streaming as the core decides it: who may start and stop a stream,
//! what everyone is told, what the worker receives (plain RTP of every
//! track, the sources to compose), and that a stream ends with its room.
//! The test plays the worker; the real one is tested in `aconfi-stream`
//! and in the browser tests.

use std::collections::HashMap;
use std::time::Duration;

use aconfi_core::protocol::PROTOCOL_VERSION;
use aconfi_core::{
    ClientMsg, Kind, ServerMsg, SfuConfig, SourceKind, StreamEvent, StreamKey, StreamLimits, StreamOut, StreamSource,
    StreamStatus, StreamUrl,
};
use aconfi_testpeer::sim::Sim;
use std::net::IpAddr;

const ROOM: &str = "town-hall";
const URL: &str = "rtmps://a.rtmps.youtube.com/live2/k3y-s3cr3t-0042";

fn start() -> ClientMsg {
    ClientMsg::StreamStart { url: StreamUrl(URL.into()) }
}

/// A meeting of `n` (index 0 moderates), everyone's media flowing.
fn meeting(mut sim: Sim, n: usize) -> Sim {
    for i in 0..n {
        sim.join(ROOM, Some(["Ada", "Bob", "Cy", "Di"][i % 4]));
        sim.flush();
    }
    let first = sim.peers[0].pid;
    let ok =
        sim.run_until(Duration::from_secs(10), |s| (1..n).all(|i| s.peers[i].peer.received(first, Kind::Video) > 5));
    assert!(ok, "media flows before the stream starts");
    sim
}

fn states(sim: &Sim, i: usize) -> Vec<(StreamStatus, Option<String>)> {
    sim.peers[i]
        .inbox
        .iter()
        .filter_map(|m| match m {
            ServerMsg::StreamState { state, reason } => Some((*state, reason.clone())),
            _ => None,
        })
        .collect()
}

fn refused(sim: &Sim, i: usize) -> Option<String> {
    sim.peers[i].inbox.iter().rev().find_map(|m| match m {
        ServerMsg::Refused { message, .. } => Some(message.clone()),
        _ => None,
    })
}

fn starts(sim: &Sim) -> Vec<(StreamKey, String)> {
    sim.stream_out
        .iter()
        .filter_map(|(k, o)| match o {
            StreamOut::Start { url } => Some((*k, url.0.clone())),
            _ => None,
        })
        .collect()
}

fn stops(sim: &Sim) -> Vec<StreamKey> {
    sim.stream_out.iter().filter_map(|(k, o)| matches!(o, StreamOut::Stop).then_some(*k)).collect()
}

fn last_sources(sim: &Sim, key: StreamKey) -> Vec<StreamSource> {
    sim.stream_out
        .iter()
        .rev()
        .find_map(|(k, o)| match o {
            StreamOut::Sources(s) if *k == key => Some(s.clone()),
            _ => None,
        })
        .expect("sources were sent")
}

/// The plain RTP packets the worker got, in order.
fn rtp(sim: &Sim, key: StreamKey) -> Vec<&[u8]> {
    sim.stream_out
        .iter()
        .filter_map(|(k, o)| match o {
            StreamOut::Rtp(p) if *k == key => Some(p.as_slice()),
            _ => None,
        })
        .collect()
}

fn ssrc(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[8], p[9], p[10], p[11]])
}

fn is_vp8_keyframe_start(p: &[u8]) -> bool {
    // The test peers' VP8: a one-byte descriptor with the S bit, then the
    // frame tag, whose bit 0 is clear on a keyframe.
    p.len() > 13 && p[12] == 0x10 && p[13] & 1 == 0
}

#[test]
fn a_moderator_streams_everyone_is_told_and_the_worker_gets_every_track_as_plain_rtp() {
    let mut sim = meeting(Sim::new(), 2);
    sim.send(0, start());
    sim.flush();
    let started = starts(&sim);
    let [(key, url)] = &started[..] else { panic!("one worker started: {started:?}") };
    let key = *key;
    assert_eq!(url, URL, "the worker gets the URL as given");
    for i in 0..2 {
        assert_eq!(states(&sim, i), [(StreamStatus::Starting, None)], "peer {i} told");
    }
    assert!(sim.sfu.is_streaming(ROOM));

    sim.run_for(Duration::from_secs(2));
    let sources = last_sources(&sim, key);
    let mut kinds: Vec<(String, SourceKind)> = sources.iter().map(|s| (s.name.clone(), s.kind)).collect();
    kinds.sort_by_key(|(n, k)| (n.clone(), *k as u8));
    assert_eq!(
        kinds,
        [
            ("Ada".into(), SourceKind::Camera),
            ("Ada".into(), SourceKind::Audio),
            ("Bob".into(), SourceKind::Camera),
            ("Bob".into(), SourceKind::Audio)
        ]
    );
    let by_ssrc: HashMap<u32, &StreamSource> = sources.iter().map(|s| (s.ssrc, s)).collect();
    assert_eq!(by_ssrc.len(), 4, "one SSRC per track");

    // Every packet is RTP version 2 on a listed SSRC with its payload type,
    // and each source's sequence numbers run on without gaps.
    let packets = rtp(&sim, key);
    assert!(packets.len() > 100, "media reaches the worker: {}", packets.len());
    let mut last_seq: HashMap<u32, u16> = HashMap::new();
    let mut seen = HashMap::<u32, usize>::new();
    for p in &packets {
        assert_eq!(p[0], 0x80, "RTP v2, no padding, extensions or CSRCs");
        let s = ssrc(p);
        if let Some(src) = by_ssrc.get(&s) {
            assert_eq!(p[1] & 0x7f, src.pt);
            *seen.entry(s).or_default() += 1;
        }
        let seq = u16::from_be_bytes([p[2], p[3]]);
        if let Some(prev) = last_seq.insert(s, seq) {
            assert_eq!(seq, prev.wrapping_add(1), "no gap on a lossless link");
        }
    }
    assert_eq!(seen.len(), 4, "all four tracks reach the worker: {seen:?}");

    // The worker reports live: everyone hears it, and so does a newcomer.
    sim.sfu.handle_stream(key, StreamEvent::State { state: StreamStatus::Live, reason: None }, sim.now);
    sim.flush();
    assert_eq!(states(&sim, 1).last(), Some(&(StreamStatus::Live, None)));
    let late = sim.join(ROOM, Some("Late"));
    sim.flush();
    assert_eq!(states(&sim, late), [(StreamStatus::Live, None)], "a newcomer learns the meeting is live");
    let joined_at = sim.peers[late].inbox.iter().position(|m| matches!(m, ServerMsg::Joined { .. }));
    let told_at = sim.peers[late].inbox.iter().position(|m| matches!(m, ServerMsg::StreamState { .. }));
    assert!(joined_at < told_at, "after joined");
}

#[test]
fn only_moderators_start_or_stop_a_stream() {
    let mut sim = meeting(Sim::new(), 2);
    sim.send(1, start());
    sim.flush();
    assert_eq!(refused(&sim, 1).as_deref(), Some("only moderators may do that"));
    assert!(starts(&sim).is_empty(), "no worker for a non-moderator");
    assert!(states(&sim, 0).is_empty(), "nobody told of a stream");

    sim.send(0, start());
    sim.flush();
    sim.send(1, ClientMsg::StreamStop {});
    sim.flush();
    assert_eq!(refused(&sim, 1).as_deref(), Some("only moderators may do that"));
    assert!(stops(&sim).is_empty());
    assert!(sim.sfu.is_streaming(ROOM));
}

/// Every stream is a 720p30 encoder: a server runs only so many at once,
/// and one address (a moderator opening room after room) only some of
/// them; a slot comes back when its stream ends, however it ends.
#[test]
fn streams_are_capped_per_server_and_per_address_and_slots_come_back() {
    let limits = StreamLimits::new(2, 1);
    let mut sim = Sim::with_config(SfuConfig { stream_limits: limits.clone(), ..SfuConfig::default() });
    // Four rooms, each with its first (moderator) participant; rooms 0 and
    // 1 are opened from one address.
    let rooms = ["room-zero", "room-one", "room-two", "room-three"];
    for room in rooms {
        sim.join(room, Some("Mo"));
    }
    let same: IpAddr = "203.0.113.7".parse().unwrap();
    for i in [0, 1] {
        sim.sfu.handle_connect(sim.peers[i].pid, same);
    }
    sim.flush();
    sim.send(0, start());
    sim.flush();
    assert_eq!(starts(&sim).len(), 1, "the first stream starts");
    sim.send(1, start());
    sim.flush();
    let why = refused(&sim, 1).expect("a second stream from one address is refused");
    assert!(why.contains("from one address"), "{why}");
    sim.send(2, start());
    sim.flush();
    assert_eq!(starts(&sim).len(), 2, "another address may stream");
    sim.send(3, start());
    sim.flush();
    let why = refused(&sim, 3).expect("a third stream on the server is refused");
    assert!(why.contains("as many meetings as it can"), "{why}");
    assert!(states(&sim, 3).is_empty(), "nobody is told of a stream that never started");
    assert_eq!(limits.in_use(), 2);

    // A worker that dies gives its slot back; so does a stop, and a room
    // that closes with its stream running.
    let (first, _) = starts(&sim)[0].clone();
    sim.sfu.handle_stream(first, StreamEvent::Exited { reason: "gone".into() }, sim.now);
    sim.flush();
    sim.send(3, start());
    sim.flush();
    assert_eq!(starts(&sim).len(), 3, "the freed slot is taken");
    sim.send(3, ClientMsg::StreamStop {});
    sim.flush();
    assert_eq!(limits.in_use(), 1);
    sim.leave(2);
    sim.flush();
    assert_eq!(limits.in_use(), 0, "the room that closed gave its slot back");
    sim.send(1, start());
    sim.flush();
    assert_eq!(starts(&sim).len(), 4, "the address may stream again once its stream ended");
}

#[test]
fn end_to_end_encrypted_meetings_are_not_streamed() {
    let mut sim = Sim::new();
    let i = sim.join(ROOM, Some("Ada"));
    sim.peers[i].peer.set_e2ee(true);
    sim.flush();
    sim.run_for(Duration::from_secs(1));
    sim.send(i, start());
    sim.flush();
    let why = refused(&sim, i).expect("refused");
    assert!(why.contains("end-to-end encrypted"), "{why}");
    assert!(starts(&sim).is_empty());
}

#[test]
fn a_server_without_a_worker_says_why_and_refuses() {
    let reason = "GStreamer element x264enc is missing (Debian: gstreamer1.0-plugins-ugly)";
    let sim = Sim::with_config(SfuConfig { stream_unavailable: Some(reason.into()), ..SfuConfig::default() });
    let mut sim = meeting(sim, 1);
    let told = sim.peers[0].inbox.iter().find_map(|m| match m {
        ServerMsg::Joined { stream_unavailable, .. } => Some(stream_unavailable.clone()),
        _ => None,
    });
    assert_eq!(told, Some(Some(reason.to_string())));
    sim.send(0, start());
    sim.flush();
    assert_eq!(refused(&sim, 0).as_deref(), Some("live streaming is not available on this server"));
    assert!(starts(&sim).is_empty());
}

#[test]
fn only_rtmp_and_rtmps_urls_are_accepted() {
    let mut sim = meeting(Sim::new(), 1);
    let long = format!("rtmp://host/{}", "k".repeat(3000));
    for bad in ["http://example.org/live/key", "rtmp://", "rtmp:///nohost", "rtmps://host/live/a key", "", &long] {
        sim.send(0, ClientMsg::StreamStart { url: StreamUrl(bad.into()) });
        sim.flush();
        assert_eq!(
            refused(&sim, 0).as_deref(),
            Some("the stream address must be an rtmp:// or rtmps:// URL"),
            "{bad:.40}"
        );
    }
    assert!(starts(&sim).is_empty());
    sim.send(0, ClientMsg::StreamStart { url: StreamUrl("rtmp://127.0.0.1:1935/live/x".into()) });
    sim.flush();
    assert_eq!(starts(&sim).len(), 1);
    sim.send(0, start());
    sim.flush();
    assert_eq!(refused(&sim, 0).as_deref(), Some("the meeting is already being streamed"));
    assert_eq!(starts(&sim).len(), 1, "one stream at a time");
}

#[test]
fn stop_ends_the_worker_and_a_late_report_from_it_changes_nothing() {
    let mut sim = meeting(Sim::new(), 2);
    sim.send(0, start());
    sim.flush();
    let first = starts(&sim)[0].0;
    sim.send(0, ClientMsg::StreamStop {});
    sim.flush();
    assert_eq!(stops(&sim), [first]);
    assert_eq!(states(&sim, 1).last(), Some(&(StreamStatus::Stopped, None)));
    assert!(!sim.sfu.is_streaming(ROOM));
    sim.send(0, ClientMsg::StreamStop {});
    sim.flush();
    assert_eq!(refused(&sim, 0).as_deref(), Some("the meeting is not being streamed"));

    // Started again: a new worker; the old one's late words are ignored.
    sim.send(0, start());
    sim.flush();
    let second = starts(&sim)[1].0;
    assert_ne!(first, second);
    let told = states(&sim, 1).len();
    sim.sfu.handle_stream(first, StreamEvent::State { state: StreamStatus::Live, reason: None }, sim.now);
    sim.sfu.handle_stream(first, StreamEvent::Exited { reason: "gone".into() }, sim.now);
    sim.flush();
    assert_eq!(states(&sim, 1).len(), told, "nothing said about the old worker");
    assert!(sim.sfu.is_streaming(ROOM));
    let before = rtp(&sim, second).len();
    sim.run_for(Duration::from_millis(500));
    assert!(rtp(&sim, second).len() > before, "the new worker is fed");
    assert!(rtp(&sim, first).len() < 5, "the old one is not");
}

#[test]
fn the_stream_ends_when_the_meeting_does() {
    let mut sim = meeting(Sim::new(), 2);
    sim.send(0, start());
    sim.flush();
    let key = starts(&sim)[0].0;
    sim.leave(0);
    sim.flush();
    assert!(stops(&sim).is_empty(), "the meeting goes on without its moderator, and so does the stream");
    sim.leave(1);
    sim.flush();
    assert_eq!(stops(&sim), [key], "the last one out ends the worker");
    assert!(!sim.sfu.is_streaming(ROOM));
    assert_eq!(sim.sfu.room_count(), 0);

    // A new meeting of the same name does not inherit it.
    let mut sim2 = sim;
    let i = sim2.join(ROOM, Some("New"));
    sim2.flush();
    assert!(states(&sim2, i).is_empty());
    assert!(!sim2.sfu.is_streaming(ROOM));
}

#[test]
fn a_failed_worker_is_shown_with_its_reason_and_streaming_can_start_again() {
    let mut sim = meeting(Sim::new(), 2);
    sim.send(0, start());
    sim.flush();
    let key = starts(&sim)[0].0;
    let reason = "could not connect to the ingest";
    sim.sfu.handle_stream(
        key,
        StreamEvent::State { state: StreamStatus::Failed, reason: Some(reason.into()) },
        sim.now,
    );
    sim.flush();
    assert_eq!(states(&sim, 1).last(), Some(&(StreamStatus::Failed, Some(reason.into()))));
    assert!(!sim.sfu.is_streaming(ROOM));
    sim.send(0, start());
    sim.flush();
    let again = starts(&sim)[1].0;
    sim.sfu.handle_stream(again, StreamEvent::Exited { reason: "crashed".into() }, sim.now);
    sim.flush();
    assert_eq!(states(&sim, 0).last(), Some(&(StreamStatus::Failed, Some("crashed".into()))));
    assert!(stops(&sim).contains(&again), "whatever is left of it is stopped");
}

#[test]
fn a_keyframe_the_worker_asks_for_comes_from_the_publisher() {
    let mut sim = meeting(Sim::new(), 2);
    sim.send(0, start());
    sim.flush();
    let key = starts(&sim)[0].0;
    sim.run_for(Duration::from_millis(500));
    let camera = last_sources(&sim, key).into_iter().find(|s| s.kind == SourceKind::Camera && s.name == "Bob");
    let camera = camera.expect("Bob's camera").ssrc;
    // Wait for a periodic keyframe; the next is due 2 s later.
    let keys = |sim: &Sim| rtp(sim, key).iter().filter(|p| ssrc(p) == camera && is_vp8_keyframe_start(p)).count();
    let before = keys(&sim);
    assert!(sim.run_until(Duration::from_secs(3), |s| keys(s) > before));
    sim.run_for(Duration::from_millis(300));
    let periodic = keys(&sim);
    sim.sfu.handle_stream(key, StreamEvent::Keyframe { ssrc: camera }, sim.now);
    sim.flush();
    assert!(
        sim.run_until(Duration::from_millis(600), |s| keys(s) > periodic),
        "a keyframe well before the next periodic one"
    );
}

#[test]
fn cameras_turned_off_and_people_who_left_leave_the_picture() {
    let mut sim = meeting(Sim::new(), 3);
    sim.send(0, start());
    sim.flush();
    let key = starts(&sim)[0].0;
    sim.run_for(Duration::from_millis(500));
    let names = |sim: &Sim, kind: SourceKind| {
        let mut v: Vec<String> =
            last_sources(sim, key).into_iter().filter(|s| s.kind == kind).map(|s| s.name).collect();
        v.sort();
        v
    };
    assert_eq!(names(&sim, SourceKind::Camera), ["Ada", "Bob", "Cy"]);
    sim.send(1, ClientMsg::MediaState { audio_muted: false, video_muted: true, screen_sharing: false });
    sim.flush();
    assert_eq!(names(&sim, SourceKind::Camera), ["Ada", "Cy"], "a camera turned off is not frozen on screen");
    assert_eq!(names(&sim, SourceKind::Audio), ["Ada", "Bob", "Cy"], "still heard");
    sim.leave(2);
    sim.flush();
    assert_eq!(names(&sim, SourceKind::Camera), ["Ada"]);
    assert_eq!(names(&sim, SourceKind::Audio), ["Ada", "Bob"]);
}

#[test]
fn the_stream_key_never_shows_in_debug_output() {
    let msg = start();
    let out = StreamOut::Start { url: StreamUrl(URL.into()) };
    for text in [format!("{msg:?}"), format!("{out:?}"), format!("{:?}", StreamUrl(URL.into()))] {
        assert!(!text.contains("k3y-s3cr3t"), "{text}");
        assert!(!text.contains("youtube"), "{text}");
    }
    // It still travels intact where it must.
    let json = serde_json::to_string(&msg).expect("serializes");
    assert_eq!(json, format!(r#"{{"type":"stream_start","url":"{URL}"}}"#));
    let _ = PROTOCOL_VERSION;
}
