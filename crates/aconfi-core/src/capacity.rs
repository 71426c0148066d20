//! What one subscriber's downlink carries, as the allocation (alloc.rs)
//! uses it: str0m's TWCC estimate, read with care.
//!
//! The estimate is delay-based: it drops whenever queues grow on the way,
//! on a congested link but also when the receiving machine is busy (a
//! browser decoding on a loaded laptop stamps its packets late), and then
//! climbs back at some 8 % a second. Small dips are noise that would cost
//! the viewer a layer drop and a keyframe each, so the capacity follows the
//! estimate up at once, and down only as far as the best estimate of the
//! last [`HOLD`] — but never above what str0m's pacer lets out at the
//! newest estimate ([`paced`], 1.1 times it): a layer planned above that
//! waits in the pacer's queue, which delays that viewer's video by up to
//! seconds (the load generator measured p99 1.6–6 s at nxn 12 with the
//! hold uncapped). Unless the link is losing packets too ([`LOSSY`] or
//! more, by the subscriber's transport-wide feedback): then the estimate
//! counts as it is, until the loss has been gone for [`HOLD`]. Only a link
//! losing [`CONGESTED`] or more may have videos paused (participant.rs):
//! below that, as in Google's congestion control, loss is taken for the
//! link's noise, which retransmission repairs.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a higher estimate still counts, and a loss.
pub const HOLD: Duration = Duration::from_secs(4);
/// The share of packets lost over the last second from which the
/// estimate counts as it is.
pub const LOSSY: f32 = 0.02;
/// The share from which the link counts as congested: videos may pause.
pub const CONGESTED: f32 = 0.10;

/// What str0m's pacer lets out at an estimate: 1.1 times it (its
/// `PACING_FACTOR`). More than that waits in the pacer's queue, up to
/// seconds: a held estimate above it would buy a layer with delay.
fn paced(estimate: u64) -> u64 {
    estimate + estimate / 10
}

/// A subscriber's downlink capacity (bit/s).
#[derive(Debug, Default)]
pub struct Capacity {
    /// Estimates of the last [`HOLD`], oldest first (the newest is always
    /// kept).
    recent: VecDeque<(Instant, u64)>,
    /// Until when the link counts as losing packets.
    lossy_until: Option<Instant>,
    /// Until when it counts as congested.
    congested_until: Option<Instant>,
    /// When the last report of congestion came.
    last_congestion: Option<Instant>,
}

impl Capacity {
    /// A new estimate, and the loss over the last second (if known).
    pub fn observe(&mut self, now: Instant, estimate: u64, loss: Option<f32>) {
        if loss.is_some_and(|l| l >= LOSSY) {
            self.lossy_until = Some(now + HOLD);
        }
        if loss.is_some_and(|l| l >= CONGESTED) {
            self.congested_until = Some(now + HOLD);
            self.last_congestion = Some(now);
        }
        self.recent.push_back((now, estimate));
        while self.recent.len() > 1
            && self.recent.front().is_some_and(|(t, _)| now.saturating_duration_since(*t) > HOLD)
        {
            self.recent.pop_front();
        }
    }

    /// What the allocation may spend at `now`; `None` before any estimate.
    pub fn get(&self, now: Instant) -> Option<u64> {
        let newest = self.recent.back()?.1;
        if self.lossy_until.is_some_and(|t| now < t) {
            return Some(newest);
        }
        let held = self
            .recent
            .iter()
            .filter(|(t, _)| now.saturating_duration_since(*t) <= HOLD)
            .map(|e| e.1)
            .max()
            .unwrap_or(newest);
        Some(held.min(paced(newest)))
    }

    /// Whether the link lost packets lately.
    pub fn is_lossy(&self, now: Instant) -> bool {
        self.lossy_until.is_some_and(|t| now < t)
    }

    /// Whether the link lost [`CONGESTED`] or more lately.
    pub fn is_congested(&self, now: Instant) -> bool {
        self.congested_until.is_some_and(|t| now < t)
    }

    /// Whether a report of congestion came after `t`.
    pub fn congested_after(&self, t: Instant) -> bool {
        self.last_congestion.is_some_and(|l| l > t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn nothing_before_an_estimate() {
        assert_eq!(Capacity::default().get(Instant::now()), None);
    }

    #[test]
    fn knows_whether_congestion_was_reported_after_a_moment() {
        let t = Instant::now();
        let mut c = Capacity::default();
        c.observe(t, 500_000, Some(0.2));
        assert!(!c.congested_after(t), "not after the moment it came");
        c.observe(t + S, 400_000, Some(0.05));
        assert!(!c.congested_after(t), "5 % is the link's noise");
        assert!(c.is_lossy(t + S) && c.is_congested(t + S), "both from the first report");
        c.observe(t + 2 * S, 300_000, Some(0.2));
        assert!(c.congested_after(t + S));
        c.observe(t + 7 * S, 300_000, Some(0.05));
        assert!(c.is_lossy(t + 7 * S), "5 % still counts for the estimate");
        assert!(!c.is_congested(t + 7 * S), "but not as congestion, HOLD after the last");
    }

    #[test]
    fn follows_the_estimate_up_at_once() {
        let t = Instant::now();
        let mut c = Capacity::default();
        c.observe(t, 500_000, Some(0.0));
        c.observe(t + S, 2_000_000, Some(0.0));
        assert_eq!(c.get(t + S), Some(2_000_000));
    }

    #[test]
    fn a_small_dip_is_ridden_out_a_deep_one_followed_as_far_as_the_pacer() {
        let t = Instant::now();
        let mut c = Capacity::default();
        c.observe(t, 2_500_000, Some(0.0));
        c.observe(t + S, 2_400_000, Some(0.0));
        assert_eq!(c.get(t + S), Some(2_500_000), "a dip of 4 %: the pacer lets 2.64 Mbit/s out");
        c.observe(t + 2 * S, 900_000, Some(0.0));
        assert_eq!(c.get(t + 2 * S), Some(990_000), "deeper: what the pacer lets out, 1.1 times the estimate");
        c.observe(t + 3 * S, 1_000_000, None);
        assert_eq!(c.get(t + 3 * S), Some(1_100_000));
        // Nothing older than HOLD counts even with no new estimate.
        let mut quiet = Capacity::default();
        quiet.observe(t, 650_000, None);
        quiet.observe(t + S, 600_000, None);
        assert_eq!(quiet.get(t + S), Some(650_000));
        assert_eq!(quiet.get(t + 10 * S), Some(600_000));
    }

    #[test]
    fn with_loss_the_estimate_counts_as_it_is_until_the_loss_has_gone() {
        let t = Instant::now();
        let mut c = Capacity::default();
        c.observe(t, 2_500_000, Some(0.0));
        c.observe(t + S, 400_000, Some(0.08));
        assert_eq!(c.get(t + S), Some(400_000));
        assert!(c.is_lossy(t + S));
        // The loss stops; for HOLD the newest estimate still counts.
        c.observe(t + 2 * S, 300_000, Some(0.0));
        c.observe(t + 3 * S, 350_000, Some(0.0));
        assert_eq!(c.get(t + 3 * S), Some(350_000));
        // Then the best of the last HOLD again: all after the drop.
        c.observe(t + 6 * S, 320_000, Some(0.0));
        assert!(!c.is_lossy(t + 6 * S));
        assert_eq!(c.get(t + 6 * S), Some(350_000));
    }

    #[test]
    fn a_loss_below_the_threshold_is_not_congestion() {
        let t = Instant::now();
        let mut c = Capacity::default();
        c.observe(t, 2_000_000, Some(0.01));
        c.observe(t + S, 1_900_000, Some(0.01));
        assert_eq!(c.get(t + S), Some(2_000_000), "held, not taken as it is");
    }
}
