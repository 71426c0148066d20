//! Lost packets are recovered hop by hop: the SFU asks the publisher again
//! (NACK) for what it missed and retransmits (RTX) what a subscriber missed,
//! so video arrives whole despite loss on both legs.

use std::time::Duration;

use aconfi_client::sim::Sim;
use aconfi_core::Kind;

#[test]
fn video_survives_loss_on_both_legs() {
    let mut sim = Sim::new();
    let a = sim.join("lossy-room", None);
    let b = sim.join("lossy-room", None);
    let from = sim.peers[a].pid;
    assert!(sim.run_until(Duration::from_secs(10), |s| s.peers[b].peer.received(from, Kind::Video) > 10));

    // Every 20th RTP packet lost upstream and, separately, downstream: about
    // 10 % of two-packet frames would be lost on each leg without recovery.
    sim.set_rtp_loss_every(20);
    let sent0 = sim.peers[a].peer.video_frames_sent();
    let got0 = sim.peers[b].peer.received(from, Kind::Video);
    sim.run_for(Duration::from_secs(10));
    // Stop losing and let the last retransmissions land.
    sim.set_rtp_loss_every(u64::MAX);
    let sent = sim.peers[a].peer.video_frames_sent() - sent0;
    sim.run_for(Duration::from_millis(500));
    let got = sim.peers[b].peer.received(from, Kind::Video) - got0;
    assert!(sent > 250, "{sent}");
    assert!(got * 100 >= sent * 98, "received {got} of {sent} frames");
}
