//! A published track's layers as the server measures them: which are being
//! sent, at what rate, how wide their pictures are, and when each was last
//! asked for a keyframe. A track without simulcast has one layer.

use std::time::{Duration, Instant};

use str0m::media::Rid;

use crate::alloc::LayerRates;
use crate::simulcast::MAX_LAYERS;

/// A layer with no packet for this long is taken as no longer sent (a
/// browser drops its top layers when its own uplink is short).
pub const LAYER_GONE_AFTER: Duration = Duration::from_millis(1500);
/// Rates are measured over windows this long.
const RATE_WINDOW: Duration = Duration::from_millis(1000);
/// A layer is asked for a keyframe at most this often, however many
/// subscribers switch to it.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Default, Clone, Copy)]
struct Layer {
    bytes: u64,
    window_start: Option<Instant>,
    /// Bit/s over the last whole window.
    rate: u64,
    last_packet: Option<Instant>,
    /// Picture width from its latest keyframe (VP8's frame header, H.264's
    /// sequence parameter set).
    width: Option<u32>,
    last_keyframe_request: Option<Instant>,
}

/// The layers of one published track.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    /// The rids from the client's offer (`a=simulcast:send`), lowest layer
    /// first; empty without simulcast.
    rids: Vec<Rid>,
    layers: [Layer; MAX_LAYERS],
}

impl Layers {
    pub fn new(rids: Vec<Rid>) -> Self {
        let mut rids = rids;
        rids.truncate(MAX_LAYERS);
        Layers { rids, layers: Default::default() }
    }

    /// Whether the track is sent in several layers.
    pub fn is_simulcast(&self) -> bool {
        self.rids.len() > 1
    }

    /// The layer of a packet of the stream with `rid`: `None` for a rid
    /// the offer did not announce (or none, where layers were announced).
    pub fn layer_of(&self, rid: Option<Rid>) -> Option<u8> {
        if self.rids.is_empty() {
            return Some(0);
        }
        let rid = rid?;
        self.rids.iter().position(|r| *r == rid).map(|i| i as u8)
    }

    /// The rid of `layer`, for keyframe requests.
    pub fn rid(&self, layer: u8) -> Option<Rid> {
        self.rids.get(usize::from(layer)).copied()
    }

    /// One packet of `layer` arrived. Returns whether the layer starts
    /// with it (its first packet, or the first after [`LAYER_GONE_AFTER`]
    /// of silence): subscribers waiting for it can be given it now.
    pub fn record(&mut self, layer: u8, bytes: usize, width: Option<u32>, now: Instant) -> bool {
        let Some(l) = self.layers.get_mut(usize::from(layer)) else { return false };
        let started = l.last_packet.is_none_or(|t| now.saturating_duration_since(t) >= LAYER_GONE_AFTER);
        l.last_packet = Some(now);
        if width.is_some() {
            l.width = width;
        }
        let start = *l.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            l.rate = l.bytes * 8 * 1000 / (elapsed.as_millis() as u64).max(1);
            l.bytes = 0;
            l.window_start = Some(now);
        }
        l.bytes += bytes as u64;
        started
    }

    /// Rates of the layers being sent (`None` for the others).
    pub fn rates(&self, now: Instant) -> LayerRates {
        let mut rates = [None; MAX_LAYERS];
        let count = self.rids.len().max(1);
        for (i, l) in self.layers.iter().enumerate().take(count) {
            let sent = l.last_packet.is_some_and(|t| now.saturating_duration_since(t) < LAYER_GONE_AFTER);
            if sent {
                rates[i] = Some(l.rate);
            }
        }
        rates
    }

    /// Picture widths, lowest layer first, where known.
    pub fn widths(&self) -> [Option<u32>; MAX_LAYERS] {
        let mut widths = [None; MAX_LAYERS];
        for (w, l) in widths.iter_mut().zip(&self.layers) {
            *w = l.width;
        }
        widths
    }

    /// Whether `layer` may be asked for a keyframe now (and notes it).
    pub fn keyframe_request_due(&mut self, layer: u8, now: Instant) -> bool {
        let Some(l) = self.layers.get_mut(usize::from(layer)) else { return false };
        if l.last_keyframe_request.is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_REQUEST_INTERVAL) {
            return false;
        }
        l.last_keyframe_request = Some(now);
        true
    }
}

/// Whether an RTP payload starts a keyframe, and its width when the
/// payload says (a VP8 keyframe's header, an H.264 sequence parameter
/// set). `codec` is the payload's codec; `vp8` its VP8 payload descriptor,
/// parsed once by the caller (`None`: not VP8, or malformed).
pub(crate) fn keyframe(
    codec: str0m::format::Codec,
    payload: &[u8],
    vp8: Option<&str0m::rtp::Vp8Descriptor>,
) -> (bool, Option<u32>) {
    use str0m::format::Codec;
    match codec {
        Codec::Vp8 => {
            let Some(d) = vp8 else { return (false, None) };
            if !d.starts_keyframe(payload) {
                return (false, None);
            }
            // The VP8 key frame header (RFC 6386 9.1): 3 bytes frame tag,
            // start code 9d 01 2a, then 14-bit width (and scale). The
            // descriptor's length is where the frame begins.
            let header = payload.len() - vp8_frame_len(payload);
            let width = match payload.get(header + 3..header + 8) {
                Some([0x9d, 0x01, 0x2a, lo, hi]) => Some(u32::from(u16::from_le_bytes([*lo, *hi]) & 0x3fff)),
                _ => None,
            };
            (true, width)
        }
        Codec::H264 => {
            let key = h264_keyframe(payload);
            (key, if key { h264_width(payload) } else { None })
        }
        // Audio, and codecs we do not negotiate: every packet may start.
        _ => (true, None),
    }
}

/// Bytes of VP8 frame data after the payload descriptor.
fn vp8_frame_len(payload: &[u8]) -> usize {
    let Some(&b0) = payload.first() else { return 0 };
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = payload.get(i) else { return 0 };
        i += 1;
        if x & 0x80 != 0 {
            // Picture id, 7 or 15 bits.
            let long = payload.get(i).is_some_and(|b| b & 0x80 != 0);
            i += if long { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    payload.len().saturating_sub(i)
}

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;

/// The NAL units whole in an H.264 payload (RFC 6184): the payload itself
/// (a single NAL unit packet) or each unit of an aggregation (STAP-A).
/// Fragments (FU-A) carry no whole unit.
fn h264_units(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let kind = payload.first().map(|b| b & 0x1f);
    let single = matches!(kind, Some(1..=23)).then_some(payload);
    let mut i = 1;
    let aggregated = std::iter::from_fn(move || {
        if kind != Some(H264_STAP_A) {
            return None;
        }
        let len = payload.get(i..i + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))?;
        let unit = payload.get(i + 2..i + 2 + len)?;
        i += 2 + len;
        Some(unit)
    });
    single.into_iter().chain(aggregated).filter(|u| !u.is_empty())
}

/// Whether an H.264 payload (RFC 6184) starts an IDR picture or carries the
/// parameter sets that precede one.
fn h264_keyframe(payload: &[u8]) -> bool {
    if payload.first().is_some_and(|b| b & 0x1f == H264_FU_A) {
        return payload.get(1).is_some_and(|h| h & 0x80 != 0 && h & 0x1f == H264_IDR);
    }
    h264_units(payload).any(|u| matches!(u[0] & 0x1f, H264_IDR | H264_SPS))
}

/// The picture width a sequence parameter set in an H.264 payload gives
/// (after cropping), parsed with `h264-reader`; `None` without one or for
/// one that does not parse.
fn h264_width(payload: &[u8]) -> Option<u32> {
    use h264_reader::nal::sps::SeqParameterSet;
    use h264_reader::rbsp::{decode_nal, BitReader};
    let sps = h264_units(payload).find(|u| u[0] & 0x1f == H264_SPS)?;
    let rbsp = decode_nal(sps).ok()?;
    let (width, _) = SeqParameterSet::from_bits(BitReader::new(&*rbsp)).ok()?.pixel_dimensions().ok()?;
    Some(width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::format::Codec;
    use str0m::rtp::Vp8Descriptor;

    fn keyframe(codec: Codec, payload: &[u8]) -> (bool, Option<u32>) {
        super::keyframe(codec, payload, Vp8Descriptor::parse(payload).ok().as_ref())
    }

    #[test]
    fn vp8_keyframe_and_width() {
        // X, S, PID 0; extension: picture id (15 bit), TL0PICIDX, TID.
        let mut p = vec![0x90, 0xe0, 0x80 | 0x12, 0x34, 0x07, 0x20];
        // Frame tag (P = 0: key frame), start code, width 1280, height 720.
        p.extend_from_slice(&[0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02]);
        assert_eq!(keyframe(Codec::Vp8, &p), (true, Some(1280)));
        p[6] |= 1; // P = 1: an inter frame
        assert_eq!(keyframe(Codec::Vp8, &p), (false, None));
        assert_eq!(keyframe(Codec::Vp8, &[0x90]), (false, None), "truncated");
        p[6] &= !1;
        p[9] = 0; // no start code: a keyframe, its width unknown
        assert_eq!(keyframe(Codec::Vp8, &p), (true, None));
    }

    #[test]
    fn h264_idr_in_each_packetisation() {
        assert!(h264_keyframe(&[0x65, 0x88]), "single IDR NAL");
        assert!(h264_keyframe(&[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce]), "STAP-A with SPS");
        assert!(h264_keyframe(&[0x7c, 0x85, 0x00]), "FU-A start of IDR");
        assert!(!h264_keyframe(&[0x7c, 0x05, 0x00]), "FU-A middle");
        assert!(!h264_keyframe(&[0x41, 0x9a]), "non-IDR slice");
        assert!(!h264_keyframe(&[0x78, 0xff, 0xff]), "STAP-A with a length past the end");
        assert!(!h264_keyframe(&[0x78, 0x00, 0x00, 0x00, 0x02, 0x41, 0x9a]), "STAP-A with an empty unit, then a slice");
    }

    /// Constrained-baseline SPSs (level 3.1, the profile browsers send):
    /// 1280×720 (80×45 macroblocks) and 640×360 (23 macroblock rows,
    /// cropped by 8 lines).
    const SPS_1280X720: [u8; 9] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe4];
    const SPS_640X360: [u8; 10] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0x40];

    #[test]
    fn h264_width_from_the_sps_in_each_packetisation() {
        assert_eq!(h264_width(&SPS_1280X720), Some(1280), "single NAL unit");
        assert_eq!(h264_width(&SPS_640X360), Some(640), "cropped");
        let mut stap = vec![0x78, 0x00, SPS_1280X720.len() as u8];
        stap.extend_from_slice(&SPS_1280X720);
        stap.extend_from_slice(&[0x00, 0x04, 0x68, 0xce, 0x3c, 0x80]);
        assert_eq!(h264_width(&stap), Some(1280), "STAP-A with SPS and PPS");
        assert_eq!(keyframe(Codec::H264, &stap), (true, Some(1280)));
        assert_eq!(h264_width(&[0x65, 0x88, 0x84]), None, "an IDR slice has no SPS");
        assert_eq!(h264_width(&[0x67, 0x42]), None, "an SPS cut short");
    }

    #[test]
    fn garbage_never_panics_the_h264_readers() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2000usize {
            let mut p = Vec::with_capacity(len % 64);
            for _ in 0..len % 64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p.push(x as u8);
            }
            // Half of them look like an SPS or a STAP-A holding one.
            match len % 4 {
                0 => p.insert(0, 0x67),
                1 => p.splice(0..0, [0x78, 0x00, (len % 60) as u8, 0x67]).for_each(drop),
                _ => {}
            }
            let _ = keyframe(Codec::H264, &p);
        }
    }

    #[test]
    fn layers_by_rid_and_rates() {
        let mut l = Layers::new(vec!["q".into(), "h".into(), "f".into()]);
        assert!(l.is_simulcast());
        assert_eq!(l.layer_of(Some("h".into())), Some(1));
        assert_eq!(l.layer_of(Some("x".into())), None);
        assert_eq!(l.layer_of(None), None);
        let t = Instant::now();
        assert!(l.record(2, 1250, None, t), "the first packet starts the layer");
        for i in 1..=100 {
            assert!(!l.record(2, 1250, None, t + Duration::from_millis(i * 10)));
        }
        let r = l.rates(t + Duration::from_millis(1000));
        assert_eq!(r[0], None, "layer 0 never sent");
        assert_eq!(r[2], Some(1_000_000), "100 × 1250 bytes in 1 s");
        assert_eq!(l.rates(t + Duration::from_secs(5))[2], None, "gone after silence");
        assert!(l.record(2, 1250, None, t + Duration::from_secs(5)), "and starts again");
        assert!(l.keyframe_request_due(2, t));
        assert!(!l.keyframe_request_due(2, t + Duration::from_millis(100)));
        assert!(l.keyframe_request_due(2, t + KEYFRAME_REQUEST_INTERVAL));
        assert_eq!(Layers::new(Vec::new()).layer_of(None), Some(0), "no simulcast: one layer");
    }
}
