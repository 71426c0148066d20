//! Simulcast through real str0m sessions on a virtual clock: a publisher
//! sends three layers (rids q, h, f at 150 k, 500 k, 1.5 Mbit/s, like the
//! web client); what a subscriber receives follows the size of its tile
//! (`view`). Every change of layer starts at a keyframe, and the
//! subscriber's stream stays continuous: no sequence number is missing
//! across the switches.

use std::time::Duration;

use aconfi_core::{ClientMsg, Kind, ViewTile};
use aconfi_testpeer::sim::Sim;
use aconfi_testpeer::MediaConfig;

const ROOM: &str = "simulcast-room";

/// Bytes per second peer `i` receives of video from `from` over `d`.
fn video_rate(sim: &mut Sim, i: usize, from: usize, d: Duration) -> u64 {
    let bytes = |sim: &Sim| -> u64 {
        let mid = sim.peers[i].peer.tracks().find(|t| t.participant == sim.peers[from].pid && t.kind == Kind::Video);
        let mid = mid.map(|t| t.mid.clone()).expect("a video track");
        sim.peers[i]
            .peer
            .media()
            .recv_stats()
            .iter()
            .find(|(m, _)| m.to_string() == mid)
            .map_or(0, |(_, (_, s))| s.bytes)
    };
    let before = bytes(sim);
    sim.run_for(d);
    (bytes(sim) - before) * 1000 / d.as_millis() as u64
}

fn view(sim: &mut Sim, i: usize, from: usize, width: u32) {
    let pid = sim.peers[from].pid;
    let mid =
        sim.peers[i].peer.tracks().find(|t| t.participant == pid && t.kind == Kind::Video).expect("track").mid.clone();
    let tiles = vec![ViewTile { mid, width, height: width * 9 / 16, stage: false }];
    sim.send(i, ClientMsg::View { tiles });
}

/// Bytes per second of `from`'s video at peer `i` once its tile of it is
/// `width` pixels wide (a second to switch, then two measured).
fn rate_at_width(sim: &mut Sim, i: usize, from: usize, width: u32) -> u64 {
    view(sim, i, from, width);
    sim.run_for(Duration::from_secs(1));
    video_rate(sim, i, from, Duration::from_secs(2))
}

/// Publisher `A` (with `config`) and viewer `B` (with `viewer`, else a
/// plain peer), B capturing frames, once B has received A's video.
fn publisher_and_viewer(sim: &mut Sim, config: MediaConfig, viewer: Option<MediaConfig>) -> (usize, usize) {
    let a = sim.join_with(ROOM, Some("A"), config);
    let b = match viewer {
        Some(v) => sim.join_with(ROOM, Some("B"), v),
        None => sim.join(ROOM, Some("B")),
    };
    sim.peers[b].peer.enable_capture();
    let from = sim.peers[a].pid;
    assert!(sim.run_until(Duration::from_secs(10), |s| s.peers[b].peer.received(from, Kind::Video) > 30));
    (a, b)
}

/// Not one sequence number of peer `i`'s video missing.
fn assert_continuous(sim: &Sim, i: usize) {
    let stats = sim.peers[i].peer.media().recv_stats();
    let (_, video) = stats.values().find(|(k, _)| *k == Kind::Video).expect("video");
    assert_eq!(video.lost(), 0, "{video:?}");
}

#[test]
fn the_layer_follows_the_tile_switching_at_keyframes_without_gaps() {
    let mut sim = Sim::new();
    let config = MediaConfig { video_bitrate: 1_500_000, simulcast: true, ..MediaConfig::default() };
    let (a, b) = publisher_and_viewer(&mut sim, config, None);

    // No view yet: every video counts as large, the top layer (~190 KB/s).
    let top = video_rate(&mut sim, b, a, Duration::from_secs(2));
    assert!(top > 140_000, "top layer: {top} B/s");
    // A 160-pixel tile: the lowest layer (~19 KB/s).
    let low = rate_at_width(&mut sim, b, a, 160);
    assert!(low < 30_000 && low > 8_000, "lowest layer: {low} B/s");
    // 600 pixels: the middle layer (~62 KB/s).
    let mid = rate_at_width(&mut sim, b, a, 600);
    assert!(mid > 40_000 && mid < 90_000, "middle layer: {mid} B/s");
    // Hidden: nothing.
    sim.send(b, ClientMsg::View { tiles: Vec::new() });
    sim.run_for(Duration::from_millis(200));
    assert_eq!(video_rate(&mut sim, b, a, Duration::from_secs(1)), 0, "a hidden tile gets no video");
    // Large again: the top layer.
    let again = rate_at_width(&mut sim, b, a, 1280);
    assert!(again > 140_000, "top layer again: {again} B/s");

    // Continuous: not one sequence number missing over all the switches.
    assert_continuous(&sim, b);
    // Every change of layer starts at a keyframe (VP8 frame tag: P bit clear).
    assert_eq!(layer_changes(&mut sim, b, |f| f[0] & 1 == 0), "fqhf", "top, lowest, middle, (hidden), top");
}

/// The layers of the video frames peer `i` received, in the order it got
/// them, one letter (rid) per run of frames of one layer; asserts that each
/// change starts at a frame `keyframe` accepts. The test publisher fills
/// each frame with its layer's rid, so a frame's last byte names its layer.
fn layer_changes(sim: &mut Sim, i: usize, keyframe: impl Fn(&[u8]) -> bool) -> String {
    let mut frames = Vec::new();
    while let Some((t, data)) = sim.peers[i].peer.poll_frame() {
        if t.kind == Kind::Video {
            frames.push(data);
        }
    }
    let layer = |f: &Vec<u8>| *f.last().expect("frame bytes");
    let mut order = vec![layer(&frames[0])];
    for pair in frames.windows(2) {
        if layer(&pair[0]) != layer(&pair[1]) {
            order.push(layer(&pair[1]));
            assert!(keyframe(&pair[1]), "a switch starts at a keyframe");
        }
    }
    String::from_utf8_lossy(&order).into_owned()
}

/// H.264 (a sender without VP8): the same choice of layer, switched at IDR
/// pictures, the stream continuous; and the layers' widths are read from
/// their sequence parameter sets. A 960×540 camera's layers are 240, 480
/// and 960 wide, so a 600-pixel tile needs the top layer: had the widths
/// been guessed (1280, 640, 320), it would get the middle one.
#[test]
fn h264_layers_follow_the_tile_by_the_widths_their_sps_gives() {
    let mut sim = Sim::new();
    let h264 = MediaConfig { h264: true, ..MediaConfig::default() };
    let config = MediaConfig { video_bitrate: 1_500_000, simulcast: true, camera: (960, 540), ..h264 };
    let (a, b) = publisher_and_viewer(&mut sim, config, Some(h264));

    let top = video_rate(&mut sim, b, a, Duration::from_secs(2));
    assert!(top > 140_000, "top layer: {top} B/s");
    let low = rate_at_width(&mut sim, b, a, 160);
    assert!(low < 30_000 && low > 8_000, "lowest layer: {low} B/s");
    let wide = rate_at_width(&mut sim, b, a, 600);
    assert!(wide > 140_000, "a 600-pixel tile gets the 960 layer: {wide} B/s");
    let mid = rate_at_width(&mut sim, b, a, 400);
    assert!(mid > 40_000 && mid < 90_000, "a 400-pixel tile gets the 480 layer: {mid} B/s");

    assert_continuous(&sim, b);
    // An IDR picture begins with its sequence parameter set (Annex B: a
    // four-byte start code, then the NAL unit header, type 7).
    assert_eq!(layer_changes(&mut sim, b, |f| f.get(4).is_some_and(|h| h & 0x1f == 7)), "fqfh");
}

/// A new publisher's layers begin only after it is announced, and its
/// subscribers often answer the offer for it before the first packet of
/// any layer: they get a layer when the layer begins, not at the next
/// allocation round (every 500 ms).
#[test]
fn a_new_publishers_video_reaches_those_already_there_without_waiting_for_a_round() {
    let mut sim = Sim::new();
    let config = MediaConfig { video_bitrate: 1_500_000, simulcast: true, ..MediaConfig::default() };
    let mut present = Vec::new();
    for name in ["B", "C", "D"] {
        present.push(sim.join_with(ROOM, Some(name), config));
    }
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        present
            .iter()
            .all(|&i| present.iter().all(|&j| i == j || s.peers[i].peer.received(s.peers[j].pid, Kind::Video) > 0))
    }));
    // Into the room's allocation cycle: A comes at every point of it.
    for offset in [0, 100, 200, 300, 400] {
        sim.run_for(Duration::from_millis(offset));
        let joined = sim.now;
        let a = sim.join_with(ROOM, Some("A"), config);
        let from = sim.peers[a].pid;
        assert!(sim.run_until(Duration::from_secs(5), |s| present
            .iter()
            .all(|&i| s.peers[i].peer.received(from, Kind::Video) > 0)));
        let took = sim.now - joined;
        assert!(took < Duration::from_millis(300), "A's video reached everyone {took:?} after A joined");
        sim.leave(a);
        sim.run_for(Duration::from_millis(50));
    }
}

/// Eight people with simulcast join at once and want every video at its
/// top layer (no tile sizes told), more than a newcomer's starting
/// estimate carries: as the estimates climb and the layers switch up, each
/// at a keyframe, no video packet waits in the server's pacer for long.
/// (str0m's pacer sends 1.1 times the estimate; a keyframe over what the
/// allocation planned used to drain at the difference, holding every
/// video of that viewer behind it: the load generator's p99 at nxn 12 was
/// 0.3–0.5 s, docs/benchmarks.md.)
#[test]
fn video_is_not_held_in_the_pacer_while_a_meeting_starts() {
    let mut sim = Sim::new();
    let config = MediaConfig { video_bitrate: 1_500_000, simulcast: true, ..MediaConfig::default() };
    let peers: Vec<usize> = (0..8).map(|i| sim.join_with(ROOM, Some(&format!("P{i}")), config)).collect();
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        peers
            .iter()
            .all(|&i| peers.iter().all(|&j| i == j || s.peers[i].peer.received(s.peers[j].pid, Kind::Video) > 0))
    }));
    sim.run_for(Duration::from_secs(6));
    let mut worst = Vec::new();
    for &i in &peers {
        for (kind, st) in sim.peers[i].peer.media().recv_stats().values() {
            if *kind == Kind::Video {
                worst.push(st.latency().value_at_quantile(0.99));
            }
        }
    }
    worst.sort_unstable();
    eprintln!("video p99 per track, µs: {worst:?}");
    assert_eq!(worst.len(), 8 * 7);
    assert!(worst.last().is_some_and(|w| *w < 50_000), "some video waited: p99 per track {worst:?} µs");
}
