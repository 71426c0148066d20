//! Whole media frames out of received RTP packets, as a decoder would get
//! them: Opus packets are frames; VP8 frames are the payloads of one RTP
//! timestamp in sequence order, each without its VP8 payload descriptor
//! (RFC 7741); H.264 frames are their NAL units in Annex B form (each
//! behind a start code), out of single, STAP-A and FU-A packets (RFC 6184). Used to look at exactly what the server forwards (say, that
//! an end-to-end encrypted meeting's frames are ciphertext).

use std::collections::{BTreeMap, HashMap, VecDeque};

use aconfi_core::str0m::media::Mid;
use aconfi_core::Kind;

/// One reassembled frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The m-line it arrived on.
    pub mid: Mid,
    /// Audio or video.
    pub kind: Kind,
    /// The frame's bytes.
    pub data: Vec<u8>,
}

/// Packets of one video frame not yet complete: seq → (first of frame, payload).
type Pending = BTreeMap<u64, (bool, Vec<u8>)>;

/// Collects packets into frames.
#[derive(Debug, Default)]
pub struct FrameCapture {
    /// Per m-line, per RTP timestamp.
    video: HashMap<Mid, BTreeMap<u32, Pending>>,
    frames: VecDeque<Frame>,
    /// Video is H.264, not VP8.
    h264: bool,
}

/// Frames kept unread at most; older ones are dropped.
const MAX_QUEUED: usize = 4096;
/// Incomplete video frames kept per m-line at most.
const MAX_PENDING: usize = 64;

impl FrameCapture {
    /// A capture of VP8 video, or (`h264`) of H.264.
    pub fn new(h264: bool) -> Self {
        FrameCapture { h264, ..Default::default() }
    }

    /// One received packet. Video packets whose descriptor does not parse
    /// are ignored.
    pub fn push(&mut self, mid: Mid, kind: Kind, seq: u64, timestamp: u32, marker: bool, payload: &[u8]) {
        if kind == Kind::Audio {
            self.emit(Frame { mid, kind, data: payload.to_vec() });
            return;
        }
        let parsed = if self.h264 { h264_payload(payload) } else { vp8_payload(payload).map(|(s, b)| (s, b.to_vec())) };
        let Some((start, body)) = parsed else { return };
        let by_ts = self.video.entry(mid).or_default();
        by_ts.entry(timestamp).or_default().insert(seq, (start, body));
        let mut done = None;
        if marker {
            done = by_ts.remove(&timestamp).and_then(|pending| assemble(&pending));
            // Frames before this one that never completed will not now.
            by_ts.retain(|ts, _| ts.wrapping_sub(timestamp) < u32::MAX / 2);
        }
        while by_ts.len() > MAX_PENDING {
            by_ts.pop_first();
        }
        if let Some(data) = done {
            self.emit(Frame { mid, kind, data });
        }
    }

    /// The next complete frame.
    pub fn poll(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }

    fn emit(&mut self, f: Frame) {
        if self.frames.len() >= MAX_QUEUED {
            self.frames.pop_front();
        }
        self.frames.push_back(f);
    }
}

/// A frame from its packets: consecutive sequence numbers, the first marked
/// as a frame's start.
fn assemble(pending: &Pending) -> Option<Vec<u8>> {
    let (&first, (start, _)) = pending.first_key_value()?;
    if !start {
        return None;
    }
    let mut data = Vec::new();
    for (i, (&seq, (_, body))) in pending.iter().enumerate() {
        if seq != first + i as u64 {
            return None;
        }
        data.extend_from_slice(body);
    }
    Some(data)
}

/// Splits a VP8 RTP payload into (starts a frame, frame bytes), skipping
/// the payload descriptor: X|R|N|S|R|PID, then when X the I|L|T|K byte
/// and the picture id (7 or 15 bits), TL0PICIDX and TID/KEYIDX bytes it
/// announces.
pub fn vp8_payload(p: &[u8]) -> Option<(bool, &[u8])> {
    let first = *p.first()?;
    let start = first & 0x10 != 0 && first & 0x07 == 0;
    let mut at = 1;
    if first & 0x80 != 0 {
        let ext = *p.get(at)?;
        at += 1;
        if ext & 0x80 != 0 {
            let pic = *p.get(at)?;
            at += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1;
        }
        if ext & 0x30 != 0 {
            at += 1;
        }
    }
    (at <= p.len()).then(|| (start, &p[at..]))
}

/// An H.264 RTP payload as (starts a frame, Annex B bytes): a single NAL
/// unit or an aggregation (STAP-A) starts a frame, as does a fragment
/// (FU-A) that starts its unit; a STAP-A ahead of the slice (parameter
/// sets) makes the slice's first fragment not the frame's start, which
/// the caller sees from the sequence numbers.
pub fn h264_payload(p: &[u8]) -> Option<(bool, Vec<u8>)> {
    const START: [u8; 4] = [0, 0, 0, 1];
    let first = *p.first()?;
    let mut out = Vec::with_capacity(p.len() + 8);
    match first & 0x1f {
        1..=23 => {
            out.extend_from_slice(&START);
            out.extend_from_slice(p);
            Some((true, out))
        }
        24 => {
            let mut i = 1;
            while i < p.len() {
                let len = usize::from(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]));
                out.extend_from_slice(&START);
                out.extend_from_slice(p.get(i + 2..i + 2 + len)?);
                i += 2 + len;
            }
            Some((true, out))
        }
        28 => {
            let header = *p.get(1)?;
            let start = header & 0x80 != 0;
            if start {
                out.extend_from_slice(&START);
                out.push(first & 0xe0 | header & 0x1f);
            }
            out.extend_from_slice(&p[2..]);
            Some((start, out))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_of_every_shape_are_skipped() {
        // S=1, no extension.
        assert_eq!(vp8_payload(&[0x10, 9, 9]), Some((true, &[9u8, 9][..])));
        // X with a 15-bit picture id, TL0PICIDX and TID: 5 descriptor bytes.
        assert_eq!(vp8_payload(&[0x90, 0xe0, 0x81, 0x02, 0x03, 0x40, 7]), Some((true, &[7u8][..])));
        // X with a 7-bit picture id, not a start.
        assert_eq!(vp8_payload(&[0x80, 0x80, 0x05, 1, 2]), Some((false, &[1u8, 2][..])));
        // A later partition's start is not a frame start.
        assert_eq!(vp8_payload(&[0x11, 1]).map(|x| x.0), Some(false));
        assert_eq!(vp8_payload(&[0x90, 0x80]), None, "cut short");
        assert_eq!(vp8_payload(&[]), None);
    }

    #[test]
    fn h264_units_come_out_in_annex_b_form() {
        let mut c = FrameCapture::new(true);
        let mid = Mid::from("1");
        // STAP-A (SPS 67 01, PPS 68 02), then an IDR slice in two fragments.
        c.push(mid, Kind::Video, 10, 900, false, &[0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 2]);
        c.push(mid, Kind::Video, 11, 900, false, &[0x7c, 0x85, 7, 7]);
        c.push(mid, Kind::Video, 12, 900, true, &[0x7c, 0x45, 8]);
        let f = c.poll().expect("a frame");
        assert_eq!(f.data, [0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 7, 7, 8]);
        // A delta slice missing its first fragment is no frame.
        c.push(mid, Kind::Video, 14, 1800, true, &[0x7c, 0x41, 9]);
        assert_eq!(c.poll(), None);
        assert_eq!(h264_payload(&[0x78, 0, 9, 1]), None, "a unit longer than the packet");
    }

    #[test]
    fn a_frame_is_its_packets_in_order_and_gaps_drop_it() {
        let mid = Mid::from("1");
        let mut c = FrameCapture::default();
        // Out of order, completed by the marker.
        c.push(mid, Kind::Video, 11, 900, false, &[0x00, b'b']);
        c.push(mid, Kind::Video, 10, 900, false, &[0x10, b'a']);
        c.push(mid, Kind::Video, 12, 900, true, &[0x00, b'c']);
        assert_eq!(c.poll().map(|f| f.data), Some(b"abc".to_vec()));
        // A lost middle packet: no frame.
        c.push(mid, Kind::Video, 13, 1800, false, &[0x10, b'x']);
        c.push(mid, Kind::Video, 15, 1800, true, &[0x00, b'z']);
        assert_eq!(c.poll(), None);
        // Audio packets are frames.
        c.push(mid, Kind::Audio, 1, 960, false, &[0xfc, 1, 2]);
        assert_eq!(c.poll().map(|f| (f.kind, f.data)), Some((Kind::Audio, vec![0xfc, 1, 2])));
    }
}
