//! Simulcast forwarding, sans-IO: which of a publisher's layers one
//! subscriber receives, and how the layers' packets are rewritten into one
//! continuous stream.
//!
//! A browser sends each layer (lowest first: `q`, `h`, `f`) as its own RTP
//! stream with its own SSRC, sequence numbers, timestamps and VP8 picture
//! ids. A subscriber has one m-line per track and must see one stream:
//! [`Switch`] forwards one layer at a time, moves to another layer only at a
//! keyframe of that layer (anything else would not decode), and keeps the
//! output continuous across switches: sequence numbers go on by one, the
//! timestamp moves by the time that passed (from the layers' RTCP sender
//! reports when both have one, else from arrival times), VP8 picture id and
//! TL0PICIDX go on by one. A pause (no layer fits the subscriber's
//! bandwidth, or its tile is hidden) stops at once; resuming is a switch.
//!
//! Everything here is plain numbers in, plain numbers out, so the
//! decisions are tested without a session (tests below).

use std::time::{Instant, SystemTime};

/// Most simulcast layers a track may have.
pub const MAX_LAYERS: usize = 3;

/// A timestamp more than this far ahead of the last one after a switch
/// (or behind it) is not believed: the sender reports disagree with the
/// clock, and the arrival time is used instead.
const MAX_SWITCH_JUMP_SECS: u32 = 5;

/// What the switch needs to know of one incoming packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packet {
    /// Its layer (0 = lowest); 0 for a track without simulcast.
    pub layer: u8,
    /// Extended sequence number, in its layer's sequence space.
    pub seq: u64,
    /// RTP timestamp, in its layer's timestamp space.
    pub timestamp: u32,
    /// When it arrived.
    pub arrival: Instant,
    /// The codec's clock rate (90 000 for video).
    pub clock_rate: u32,
    /// Whether it starts a keyframe (always true for audio: any packet
    /// may start it).
    pub keyframe: bool,
    /// VP8 picture id and TL0PICIDX, if the payload descriptor has them,
    /// with whether the picture id is the 15-bit form.
    pub vp8: Option<Vp8Ids>,
    /// Its layer's latest RTCP sender report: (SSRC, NTP time, RTP time).
    pub sender_report: Option<(u32, SystemTime, u32)>,
}

/// The VP8 ids in a payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Vp8Ids {
    pub picture_id: Option<u16>,
    pub long_picture_id: bool,
    pub tl0_pic_idx: Option<u8>,
}

/// How a forwarded packet leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rewritten {
    pub seq: u64,
    pub timestamp: u32,
    /// New picture id and TL0PICIDX when they differ from the incoming ones.
    pub vp8: Option<(Option<u16>, Option<u8>)>,
}

/// One track's layer choice and rewriting for one subscriber.
#[derive(Debug)]
pub(crate) struct Switch {
    /// The layer the subscriber should get; `None` = paused.
    target: Option<u8>,
    /// The layer being forwarded.
    current: Option<u8>,
    /// Anything forwarded yet (then the output must continue, not restart).
    started: bool,
    /// Packets of the current layer before this one are not forwarded.
    start_seq: u64,
    seq_offset: u64,
    ts_offset: u32,
    picture_offset: u16,
    tl0_offset: u8,
    last_seq: u64,
    last_timestamp: u32,
    last_arrival: Option<Instant>,
    last_picture: u16,
    last_tl0: u8,
    /// The current layer's latest sender report.
    sender_report: Option<(u32, SystemTime, u32)>,
}

impl Switch {
    pub fn new(target: Option<u8>) -> Self {
        Switch {
            target,
            current: None,
            started: false,
            start_seq: 0,
            seq_offset: 0,
            ts_offset: 0,
            picture_offset: 0,
            tl0_offset: 0,
            last_seq: 0,
            last_timestamp: 0,
            last_arrival: None,
            last_picture: 0,
            last_tl0: 0,
            sender_report: None,
        }
    }

    /// The layer the subscriber should get (`None` = paused).
    pub fn target(&self) -> Option<u8> {
        self.target
    }

    /// The layer being forwarded, if any.
    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// Whether a keyframe of the target layer is awaited.
    pub fn wants_keyframe(&self) -> bool {
        self.target.is_some() && self.target != self.current
    }

    /// Sets the wanted layer. A pause takes effect at once; a layer takes
    /// effect at its next keyframe (until then the current one goes on).
    pub fn set_target(&mut self, target: Option<u8>) {
        self.target = target;
        if target.is_none() {
            self.current = None;
        }
    }

    /// The decision for one packet: `None` when it is not forwarded.
    pub fn rewrite(&mut self, p: &Packet) -> Option<Rewritten> {
        if self.current != Some(p.layer) {
            if self.target != Some(p.layer) || !p.keyframe {
                return None;
            }
            self.switch_to(p);
        }
        if p.seq < self.start_seq {
            // From before the switch (reordered).
            return None;
        }
        let seq = p.seq.wrapping_sub(self.seq_offset);
        let timestamp = p.timestamp.wrapping_sub(self.ts_offset);
        if seq > self.last_seq {
            self.last_seq = seq;
            self.last_timestamp = timestamp;
            self.last_arrival = Some(p.arrival);
        }
        if p.sender_report.is_some() {
            self.sender_report = p.sender_report;
        }
        let vp8 = p.vp8.and_then(|ids| self.vp8_ids(ids));
        Some(Rewritten { seq, timestamp, vp8 })
    }

    /// Starts forwarding `p`'s layer at `p` (a keyframe).
    fn switch_to(&mut self, p: &Packet) {
        if self.started {
            self.seq_offset = p.seq.wrapping_sub(self.last_seq + 1);
            let timestamp = self.continued_timestamp(p);
            self.ts_offset = p.timestamp.wrapping_sub(timestamp);
            if let Some(ids) = p.vp8 {
                let modulus = if ids.long_picture_id { 0x8000 } else { 0x80 };
                if let Some(pic) = ids.picture_id {
                    let next = (self.last_picture.wrapping_add(1)) % modulus;
                    self.picture_offset = pic.wrapping_sub(next) % modulus;
                }
                if let Some(tl0) = ids.tl0_pic_idx {
                    self.tl0_offset = tl0.wrapping_sub(self.last_tl0.wrapping_add(1));
                }
            }
        } else {
            // The first packet: the output starts at sequence number 1 (so
            // its SRTP rollover counter starts at zero), with the
            // publisher's own timestamps and picture ids.
            self.seq_offset = p.seq.wrapping_sub(1);
            self.started = true;
        }
        self.start_seq = p.seq;
        self.current = Some(p.layer);
        self.sender_report = p.sender_report;
        // The packet is the newest from now on, whatever came before.
        self.last_seq = p.seq.wrapping_sub(self.seq_offset).wrapping_sub(1);
    }

    /// The output timestamp for the first packet of a new layer: the last
    /// one plus the time between them — measured between the two layers'
    /// sender reports when both are known, else between arrivals.
    fn continued_timestamp(&self, p: &Packet) -> u32 {
        let by_arrival = {
            let elapsed = self.last_arrival.map_or(0, |a| p.arrival.saturating_duration_since(a).as_micros());
            let ticks = (elapsed * u128::from(p.clock_rate) / 1_000_000) as u32;
            self.last_timestamp.wrapping_add(ticks.max(1))
        };
        let (Some((old_ssrc, old_ntp, old_rtp)), Some((new_ssrc, new_ntp, new_rtp))) =
            (self.sender_report, p.sender_report)
        else {
            return by_arrival;
        };
        if old_ssrc == new_ssrc {
            return by_arrival;
        }
        let rate = i128::from(p.clock_rate);
        // The packet's capture time, in nanoseconds since its layer's report…
        let since_new = i128::from(p.timestamp.wrapping_sub(new_rtp) as i32) * 1_000_000_000 / rate;
        // …and since the old layer's report.
        let between = match new_ntp.duration_since(old_ntp) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        let since_old = between + since_new;
        // That instant on the old layer's clock, then in the output's.
        let old_clock = old_rtp.wrapping_add((since_old * rate / 1_000_000_000) as i64 as u32);
        let out = old_clock.wrapping_sub(self.ts_offset);
        let ahead = out.wrapping_sub(self.last_timestamp);
        if ahead == 0 || ahead > MAX_SWITCH_JUMP_SECS * p.clock_rate {
            return by_arrival;
        }
        out
    }

    /// The VP8 ids to write, if they must change.
    fn vp8_ids(&mut self, ids: Vp8Ids) -> Option<(Option<u16>, Option<u8>)> {
        let modulus = if ids.long_picture_id { 0x8000 } else { 0x80 };
        let picture = ids.picture_id.map(|p| p.wrapping_sub(self.picture_offset) % modulus);
        let tl0 = ids.tl0_pic_idx.map(|t| t.wrapping_sub(self.tl0_offset));
        if let Some(p) = picture {
            self.last_picture = p;
        }
        if let Some(t) = tl0 {
            self.last_tl0 = t;
        }
        (self.picture_offset != 0 || self.tl0_offset != 0).then_some((picture, tl0))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A publisher's three layers on a virtual clock: each layer has its own
    /// sequence numbers, timestamps, picture ids and SSRC, as a browser sends.
    struct Layers {
        start: Instant,
        wall: SystemTime,
        seq: [u64; 3],
        ts_base: [u32; 3],
        picture: [u16; 3],
        tl0: [u8; 3],
    }

    impl Layers {
        fn new() -> Self {
            Layers {
                start: Instant::now(),
                wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                seq: [100, 40_000, 65_000],
                ts_base: [1_000, 3_000_000_000, 4_294_000_000],
                picture: [5, 20_000, 32_760],
                tl0: [7, 100, 250],
            }
        }

        /// The next frame (one packet) of `layer` at `ms` milliseconds.
        fn frame(&mut self, layer: usize, ms: u64, keyframe: bool) -> Packet {
            self.seq[layer] += 1;
            self.picture[layer] = (self.picture[layer] + 1) % 0x8000;
            self.tl0[layer] = self.tl0[layer].wrapping_add(1);
            let ts = self.ts_base[layer].wrapping_add((ms * 90) as u32);
            Packet {
                layer: layer as u8,
                seq: self.seq[layer],
                timestamp: ts,
                arrival: self.start + Duration::from_millis(ms),
                clock_rate: 90_000,
                keyframe,
                vp8: Some(Vp8Ids {
                    picture_id: Some(self.picture[layer]),
                    long_picture_id: true,
                    tl0_pic_idx: Some(self.tl0[layer]),
                }),
                // Each layer's report: its base timestamp at the epoch.
                sender_report: Some((layer as u32 + 1, self.wall, self.ts_base[layer])),
            }
        }
    }

    fn out_ids(p: &Packet, r: &Rewritten) -> (u16, u8) {
        let ids = p.vp8.unwrap();
        match r.vp8 {
            Some((pic, tl0)) => (pic.unwrap(), tl0.unwrap()),
            None => (ids.picture_id.unwrap(), ids.tl0_pic_idx.unwrap()),
        }
    }

    #[test]
    fn a_layer_starts_only_at_its_keyframe() {
        let mut l = Layers::new();
        let mut s = Switch::new(Some(0));
        assert!(s.rewrite(&l.frame(0, 0, false)).is_none(), "no start on a delta frame");
        assert!(s.rewrite(&l.frame(1, 0, true)).is_none(), "not the target layer");
        let first = s.rewrite(&l.frame(0, 33, true)).expect("starts at its keyframe");
        assert_eq!(first.seq, 1);
        assert!(s.rewrite(&l.frame(0, 66, false)).is_some(), "then every packet of it");
    }

    #[test]
    fn switching_waits_for_the_target_keyframe_and_stays_continuous() {
        let mut l = Layers::new();
        let mut s = Switch::new(Some(0));
        let mut last: Option<(u64, u32, u16, u8, Instant)> = None;
        let mut check = |p: Packet, r: Option<Rewritten>| {
            let Some(r) = r else { return false };
            let (pic, tl0) = out_ids(&p, &r);
            if let Some((seq, ts, lpic, ltl0, arrival)) = last {
                assert_eq!(r.seq, seq + 1, "sequence numbers go on by one");
                let step = r.timestamp.wrapping_sub(ts);
                if arrival == p.arrival {
                    // The new layer's picture of the same instant: a new
                    // frame all the same, so one tick later.
                    assert_eq!(step, 1);
                } else {
                    assert!((2_900..=3_100).contains(&step), "timestamp moves by one frame (33 ms), moved {step}");
                }
                assert_eq!(pic, (lpic + 1) % 0x8000, "picture id goes on by one");
                assert_eq!(tl0, ltl0.wrapping_add(1), "TL0PICIDX goes on by one");
            }
            last = Some((r.seq, r.timestamp, pic, tl0, p.arrival));
            true
        };
        let mut ms = 0;
        let mut forwarded_layers = Vec::new();
        // Layer 0 from its keyframe, then layer 2 wanted: layer 0 goes on
        // until layer 2's keyframe, then only layer 2; then back down to 1.
        for step in 0..40 {
            if step == 10 {
                s.set_target(Some(2));
            }
            if step == 25 {
                s.set_target(Some(1));
            }
            let key = |layer| match layer {
                0 => step == 0,
                2 => step == 15,
                _ => step == 30,
            };
            for layer in 0..3 {
                let p = l.frame(layer, ms, key(layer));
                let r = s.rewrite(&p);
                if check(p, r) {
                    forwarded_layers.push((step, layer));
                }
            }
            ms += 33;
        }
        for (step, layer) in forwarded_layers {
            let expected = if step < 15 || (step == 15 && layer == 0) {
                // Layer 0's packet of step 15 arrives before layer 2's keyframe.
                0
            } else if step < 30 {
                2
            } else {
                1
            };
            assert_eq!(layer, expected, "step {step} forwarded layer {layer}");
        }
    }

    #[test]
    fn without_sender_reports_the_arrival_time_continues_the_timestamp() {
        let mut l = Layers::new();
        let mut s = Switch::new(Some(0));
        let mut p = l.frame(0, 0, true);
        p.sender_report = None;
        let a = s.rewrite(&p).unwrap();
        s.set_target(Some(1));
        let mut q = l.frame(1, 100, true);
        q.sender_report = None;
        let b = s.rewrite(&q).unwrap();
        assert_eq!(b.seq, a.seq + 1);
        assert_eq!(b.timestamp.wrapping_sub(a.timestamp), 9_000, "100 ms at 90 kHz");
    }

    #[test]
    fn a_pause_stops_at_once_and_resuming_continues() {
        let mut l = Layers::new();
        let mut s = Switch::new(Some(1));
        let a = s.rewrite(&l.frame(1, 0, true)).unwrap();
        s.set_target(None);
        assert!(!s.wants_keyframe());
        assert!(s.rewrite(&l.frame(1, 33, false)).is_none(), "paused");
        assert!(s.rewrite(&l.frame(1, 66, true)).is_none(), "a keyframe does not resume a pause");
        s.set_target(Some(1));
        assert!(s.wants_keyframe());
        assert!(s.rewrite(&l.frame(1, 99, false)).is_none(), "resumes only at a keyframe");
        let b = s.rewrite(&l.frame(1, 132, true)).unwrap();
        assert_eq!(b.seq, a.seq + 1, "no gap a receiver would NACK");
        assert!(!s.wants_keyframe());
    }

    #[test]
    fn reordered_packets_from_before_a_switch_are_dropped() {
        let mut l = Layers::new();
        let mut s = Switch::new(Some(0));
        let early = l.frame(0, 0, false);
        s.rewrite(&l.frame(0, 33, true)).unwrap();
        assert!(s.rewrite(&early).is_none());
    }

    #[test]
    fn short_picture_ids_wrap_at_seven_bits() {
        let mut s = Switch::new(Some(0));
        let t0 = Instant::now();
        let pkt = |layer: u8, seq: u64, pic: u16, key: bool| Packet {
            layer,
            seq,
            timestamp: seq as u32 * 3000,
            arrival: t0 + Duration::from_millis(seq * 33),
            clock_rate: 90_000,
            keyframe: key,
            vp8: Some(Vp8Ids { picture_id: Some(pic), long_picture_id: false, tl0_pic_idx: None }),
            sender_report: None,
        };
        s.rewrite(&pkt(0, 1, 127, true)).unwrap();
        s.set_target(Some(1));
        let r = s.rewrite(&pkt(1, 2, 40, true)).unwrap();
        assert_eq!(r.vp8, Some((Some(0), None)), "127 + 1 wraps to 0 in 7 bits");
    }
}
