//! What a receiver counts per incoming track: packets and bytes, loss from
//! sequence numbers, frames, and one-way latency from the stamps the
//! sender put into each frame.

use std::time::Instant;

use hdrhistogram::Histogram;

/// Receive statistics of one track.
#[derive(Clone)]
pub struct TrackStats {
    /// Unique packets received (retransmitted duplicates are not counted).
    pub packets: u64,
    /// Payload bytes of those packets.
    pub bytes: u64,
    /// Frames: audio packets, or video packets carrying the marker bit.
    pub frames: u64,
    /// When the first packet arrived.
    pub first_packet_at: Option<Instant>,
    /// Video frames begun since the window started, by the simulcast layer
    /// (q, h, f) whose rid their sender filled them with; meaningless
    /// unless the sender sends simulcast.
    pub layer_frames: [u64; 3],
    first_seq: Option<u64>,
    highest: u64,
    /// Bit i set: `highest - i` was received (i < 128).
    window: u128,
    latency_us: Histogram<u64>,
}

impl Default for TrackStats {
    fn default() -> Self {
        TrackStats {
            packets: 0,
            bytes: 0,
            frames: 0,
            first_packet_at: None,
            layer_frames: [0; 3],
            first_seq: None,
            highest: 0,
            window: 0,
            // 1 µs .. 60 s at 3 significant digits; bounds are constants.
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
        }
    }
}

impl std::fmt::Debug for TrackStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackStats")
            .field("packets", &self.packets)
            .field("expected", &self.expected())
            .field("lost", &self.lost())
            .field("frames", &self.frames)
            .field("latency_samples", &self.latency_us.len())
            .finish()
    }
}

impl TrackStats {
    /// Records one packet with extended sequence number `seq`. Returns
    /// false for a duplicate (already counted).
    pub fn record_packet(&mut self, seq: u64, payload_len: usize, frame_end: bool, now: Instant) -> bool {
        match self.first_seq {
            None => {
                self.first_seq = Some(seq);
                self.highest = seq;
                self.window = 1;
                self.first_packet_at = Some(now);
            }
            Some(first) if seq < first => return false,
            Some(_) if seq > self.highest => {
                let shift = seq - self.highest;
                self.window = if shift >= 128 { 0 } else { self.window << shift };
                self.window |= 1;
                self.highest = seq;
            }
            Some(_) => {
                let age = self.highest - seq;
                if age >= 128 {
                    // Too old to tell apart from a duplicate; a packet this
                    // late is useless to a real receiver anyway.
                    return false;
                }
                let bit = 1u128 << age;
                if self.window & bit != 0 {
                    return false;
                }
                self.window |= bit;
            }
        }
        self.packets += 1;
        self.bytes += payload_len as u64;
        self.frames += u64::from(frame_end);
        true
    }

    /// Forgets latency samples and layer counts so far (start of a
    /// measurement window).
    pub fn start_window(&mut self) {
        self.latency_us.reset();
        self.layer_frames = [0; 3];
    }

    /// Counts a video frame of simulcast layer `layer` (0 lowest).
    pub fn record_layer(&mut self, layer: usize) {
        if let Some(n) = self.layer_frames.get_mut(layer) {
            *n += 1;
        }
    }

    /// Records a latency sample, in microseconds.
    pub fn record_latency(&mut self, us: u64) {
        let _ = self.latency_us.record(us.clamp(1, 60_000_000));
    }

    /// Packets the sender sent between the first and the highest seen.
    pub fn expected(&self) -> u64 {
        self.first_seq.map(|f| self.highest - f + 1).unwrap_or(0)
    }

    /// Packets missing among those expected.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.packets)
    }

    /// The latency histogram (µs).
    pub fn latency(&self) -> &Histogram<u64> {
        &self.latency_us
    }
}

/// Latency percentiles over many tracks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median, µs.
    pub p50: u64,
    /// 99th percentile, µs.
    pub p99: u64,
    /// 99.9th percentile, µs.
    pub p999: u64,
    /// Largest, µs.
    pub max: u64,
}

/// Merges histograms and reads the percentiles.
pub fn percentiles<'a>(hists: impl IntoIterator<Item = &'a Histogram<u64>>) -> Percentiles {
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
    for h in hists {
        let _ = all.add(h);
    }
    Percentiles {
        count: all.len(),
        p50: all.value_at_quantile(0.50),
        p99: all.value_at_quantile(0.99),
        p999: all.value_at_quantile(0.999),
        max: all.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_is_counted_from_sequence_gaps() {
        let now = Instant::now();
        let mut s = TrackStats::default();
        for seq in [100, 101, 103, 104, 107] {
            assert!(s.record_packet(seq, 10, false, now));
        }
        assert_eq!(s.expected(), 8);
        assert_eq!(s.packets, 5);
        assert_eq!(s.lost(), 3);
        // A late arrival (retransmission) fills a gap…
        assert!(s.record_packet(102, 10, false, now));
        assert_eq!(s.lost(), 2);
        // …a duplicate does not count twice.
        assert!(!s.record_packet(102, 10, false, now));
        assert!(!s.record_packet(107, 10, false, now));
        assert_eq!(s.packets, 6);
        assert_eq!(s.bytes, 60);
    }

    #[test]
    fn a_long_jump_clears_the_window_and_counts_the_gap() {
        let now = Instant::now();
        let mut s = TrackStats::default();
        s.record_packet(1, 1, true, now);
        s.record_packet(1000, 1, true, now);
        assert_eq!(s.expected(), 1000);
        assert_eq!(s.lost(), 998);
        assert_eq!(s.frames, 2);
        assert!(!s.record_packet(0, 1, false, now), "before the first packet");
    }

    #[test]
    fn percentiles_merge_tracks() {
        let mut a = TrackStats::default();
        let mut b = TrackStats::default();
        for us in 1..=900 {
            a.record_latency(us);
        }
        for us in 0..100 {
            b.record_latency(10_000 + us);
        }
        let p = percentiles([a.latency(), b.latency()]);
        assert_eq!(p.count, 1000);
        // The 500th of 1000 samples is 500; the 990th is b's 90th, 10 089
        // (three significant digits: within ±0.1 %).
        assert!((499..=501).contains(&p.p50), "{p:?}");
        assert!((10_079..=10_099).contains(&p.p99), "{p:?}");
        assert!(p.max >= 10_099, "{p:?}");
    }
}
