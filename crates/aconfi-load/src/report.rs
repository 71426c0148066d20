//! Turning per-participant results into the figures of one run.

use std::time::{Duration, Instant};

use aconfi_testpeer::stats::{percentiles, Percentiles};
use aconfi_testpeer::TrackStats;
use serde::Serialize;

/// One remote track as a participant saw it.
#[derive(Debug, Clone)]
pub struct TrackResult {
    /// Its statistics (with when its first packet came).
    pub stats: TrackStats,
    /// Who sent it: the A-Confi participant id or the Janus feed id, if known.
    pub publisher: Option<u64>,
}

/// From the receiver's signaling connection opening to each track's first
/// packet (`tracks`: each with its receiver's opening).
pub fn join_from_receiver(tracks: &[(Instant, TrackResult)]) -> Vec<Option<Duration>> {
    tracks
        .iter()
        .map(|(receiver, t)| t.stats.first_packet_at.map(|at| at.saturating_duration_since(*receiver)))
        .collect()
}

/// From the later of the receiver's and the publisher's signaling
/// connection opening to the track's first packet: what the server took
/// once both were there (a track cannot flow before its publisher came).
/// `opened` maps a publisher to its opening; an unknown publisher counts
/// from the receiver's.
pub fn join_after_both(
    tracks: &[(Instant, TrackResult)],
    opened: &std::collections::HashMap<u64, Instant>,
) -> Vec<Option<Duration>> {
    tracks
        .iter()
        .map(|(receiver, t)| {
            let publisher = t.publisher.and_then(|p| opened.get(&p)).copied();
            let from = publisher.map_or(*receiver, |p| p.max(*receiver));
            t.stats.first_packet_at.map(|at| at.saturating_duration_since(from))
        })
        .collect()
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// "aconfi" or "janus".
    pub target: String,
    /// "nxn" or "fanout".
    pub scenario: String,
    /// Participants (nxn) or viewers (fanout).
    pub participants: usize,
    /// Remote tracks received across all participants.
    pub tracks: usize,
    /// Measurement window, seconds.
    pub window_s: f64,
    /// Packets received by all participants in the window (forwarded copies).
    pub forwarded_packets: u64,
    /// Their payload bytes.
    pub forwarded_bytes: u64,
    /// Packets lost over the whole run / packets expected, in percent.
    pub loss_percent: f64,
    /// One-way latency in the window, µs (sender to receiver, same clock).
    pub latency_us: LatencyReport,
    /// Signaling open → first packet of each remote track, ms.
    pub join_ms: JoinReport,
    /// The later of the receiver's and the publisher's signaling open →
    /// first packet of each remote track, ms (equal to `join_ms` for a
    /// fan-out, whose publisher comes first).
    pub join_after_both_ms: JoinReport,
    /// Server CPU time in the window / forwarded packets, µs.
    pub cpu_us_per_packet: Option<f64>,
    /// Server CPU use in the window, percent of one core.
    pub cpu_percent: Option<f64>,
    /// Server resident memory at the end, KiB.
    pub rss_kib: Option<u64>,
    /// (RSS at the end − RSS before any client) / receiving participants, KiB.
    pub rss_kib_per_subscriber: Option<f64>,
    /// With simulcast: video frames received in the window by the layer
    /// they came from (q, h, f), over all tracks.
    pub video_layer_frames: Option<[u64; 3]>,
}

/// Latency percentiles (µs).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencyReport {
    /// Samples.
    pub samples: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

impl From<Percentiles> for LatencyReport {
    fn from(p: Percentiles) -> Self {
        LatencyReport { samples: p.count, p50: p.p50, p99: p.p99, p999: p.p999, max: p.max }
    }
}

/// Join-time percentiles (ms).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct JoinReport {
    /// Tracks measured.
    pub tracks: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Maximum.
    pub max: f64,
}

/// Loss over all tracks in percent: lost / expected.
pub fn loss_percent<'a>(tracks: impl IntoIterator<Item = &'a TrackStats>) -> f64 {
    let (mut lost, mut expected) = (0u64, 0u64);
    for t in tracks {
        lost += t.lost();
        expected += t.expected();
    }
    if expected == 0 {
        return 100.0;
    }
    lost as f64 * 100.0 / expected as f64
}

/// Latency over all tracks.
pub fn latency<'a>(tracks: impl IntoIterator<Item = &'a TrackStats>) -> LatencyReport {
    percentiles(tracks.into_iter().map(|t| t.latency())).into()
}

/// Join times: nearest-rank percentiles over the tracks that got a packet.
pub fn join_times(times: &[Option<Duration>]) -> JoinReport {
    let mut ms: Vec<f64> = times.iter().flatten().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| -> f64 {
        if ms.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len());
        ms[rank - 1]
    };
    JoinReport { tracks: ms.len(), p50: at(0.50), p95: at(0.95), max: ms.last().copied().unwrap_or(f64::NAN) }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn loss_is_lost_over_expected_across_tracks() {
        let now = Instant::now();
        let mut a = TrackStats::default();
        let mut b = TrackStats::default();
        for s in 0..100 {
            if s != 50 {
                a.record_packet(s, 1, true, now);
            }
        }
        for s in 0..100 {
            b.record_packet(s, 1, true, now);
        }
        // 1 lost of 200 expected.
        assert!((loss_percent([&a, &b]) - 0.5).abs() < 1e-9);
        assert_eq!(loss_percent(std::iter::empty()), 100.0, "no data is total loss, not none");
    }

    #[test]
    fn join_after_both_counts_from_the_later_opening() {
        let t0 = Instant::now();
        let ms = |n| Duration::from_millis(n);
        let track = |publisher, first: Option<u64>| {
            let mut stats = TrackStats::default();
            stats.first_packet_at = first.map(|f| t0 + ms(f));
            TrackResult { stats, publisher }
        };
        // Publisher 7 opened at 100 ms, publisher 8 at 10 ms.
        let opened = [(7, t0 + ms(100)), (8, t0 + ms(10))].into_iter().collect();
        let tracks = [
            (t0 + ms(20), track(Some(7), Some(150))), // publisher later: 50
            (t0 + ms(20), track(Some(8), Some(150))), // receiver later: 130
            (t0 + ms(20), track(None, Some(150))),    // unknown: receiver's, 130
            (t0 + ms(20), track(Some(7), None)),      // nothing came
        ];
        assert_eq!(join_after_both(&tracks, &opened), vec![Some(ms(50)), Some(ms(130)), Some(ms(130)), None]);
        assert_eq!(join_from_receiver(&tracks), vec![Some(ms(130)), Some(ms(130)), Some(ms(130)), None]);
    }

    #[test]
    fn join_time_percentiles_use_nearest_rank() {
        let times: Vec<Option<Duration>> = (1..=20).map(|ms| Some(Duration::from_millis(ms))).chain([None]).collect();
        let j = join_times(&times);
        assert_eq!(j.tracks, 20);
        assert_eq!(j.p50, 10.0);
        assert_eq!(j.p95, 19.0);
        assert_eq!(j.max, 20.0);
    }
}
