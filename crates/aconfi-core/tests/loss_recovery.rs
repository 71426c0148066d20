//! Lost packets are recovered hop by hop: the SFU asks the publisher again
//! (NACK) for what it missed and retransmits (RTX) what a subscriber missed,
//! so video arrives whole despite loss on both legs.

use std::time::Duration;

use aconfi_core::Kind;
use aconfi_testpeer::sim::Sim;

#[test]
fn video_survives_loss_on_both_legs() {
    let mut sim = Sim::new();
    let a = sim.join("lossy-room", None);
    let b = sim.join("lossy-room", None);
    let from = sim.peers[a].pid;
    assert!(sim.run_until(Duration::from_secs(10), |s| s.peers[b].peer.received(from, Kind::Video) > 10));

    // One RTP packet in 20 lost, upstream and downstream alike, for 10 s;
    // then a moment without loss for the last retransmissions to land.
    sim.set_rtp_loss(Some(20));
    sim.run_for(Duration::from_secs(10));
    sim.set_rtp_loss(None);
    sim.run_for(Duration::from_millis(500));

    let stats = sim.peers[b].peer.media().recv_stats();
    let (_, video) = stats.values().find(|(k, _)| *k == Kind::Video).expect("a video track");
    let (_, audio) = stats.values().find(|(k, _)| *k == Kind::Audio).expect("an audio track");
    assert!(video.expected() > 500, "{video:?}");
    assert_eq!(video.lost(), 0, "every lost video packet is retransmitted: {video:?}");
    // Audio is not retransmitted (too late to be useful): loss shows, which
    // proves the loss was real on this path.
    assert!(audio.lost() > 10, "{audio:?}");
}
