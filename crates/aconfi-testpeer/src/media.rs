//! Synthetic media shaped like a real encoder's: Opus at 50 packets a
//! second, VP8 at a set bitrate and frame rate with periodic keyframes about
//! five times a delta frame, frame sizes jittering ±15 %, each frame cut
//! into RTP payloads of at most 1 100 bytes behind a VP8 payload descriptor.
//! Or H.264 (RFC 6184): each keyframe led by its parameter sets in a STAP-A
//! (a real SPS with the picture's size), each frame one slice in FU-A
//! fragments, the send time at the start of the slice.
//!
//! Every VP8 frame starts with a VP8 frame header (RFC 6386 9.1: a keyframe's
//! has the start code and the picture size, which servers look for before
//! switching simulcast layers) and then carries its send time (µs since the
//! sender's epoch) so a receiver on the same clock can measure one-way
//! latency per frame.

use std::time::{Duration, Instant};

/// How much and how a client sends.
#[derive(Debug, Clone, Copy)]
pub struct MediaConfig {
    /// Target video bitrate, bits per second.
    pub video_bitrate: u32,
    /// Video frames per second.
    pub fps: u32,
    /// A keyframe at least this often (plus on request).
    pub keyframe_every: Duration,
    /// Bytes in one 20 ms Opus frame (80 ≈ 32 kbit/s).
    pub audio_bytes: usize,
    /// Send video in three simulcast layers (rids `q`, `h`, `f`, lowest
    /// first, as the web client does) at a tenth, a third and all of
    /// `video_bitrate`.
    pub simulcast: bool,
    /// Send (and receive) video as H.264 instead of VP8.
    pub h264: bool,
    /// The camera's picture size, which keyframes announce; simulcast
    /// layers divide it (`SIMULCAST_LAYERS`).
    pub camera: (u32, u32),
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            video_bitrate: 500_000,
            fps: 30,
            keyframe_every: Duration::from_secs(2),
            audio_bytes: 80,
            simulcast: false,
            h264: false,
            camera: (1280, 720),
        }
    }
}

/// The simulcast layers: rid, share of the top bitrate (numerator,
/// denominator) and the divisor of the picture size, lowest first.
pub const SIMULCAST_LAYERS: [(&str, u32, u32, u16); 3] = [("q", 1, 10, 4), ("h", 1, 3, 2), ("f", 1, 1, 1)];

/// Opus frame interval.
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// Most payload bytes in one video RTP packet (after the descriptor).
pub const MAX_VIDEO_CHUNK: usize = 1_100;
/// Bytes of the send timestamp in each frame's data.
const STAMP: usize = 8;
/// Bytes of the VP8 frame header before the stamp: the frame tag (3), and
/// in a keyframe the start code (3), width (2) and height (2); a delta
/// frame has fill there.
const VP8_HEADER: usize = 10;

/// One frame's RTP payloads, ready for `write_rtp`.
#[derive(Debug)]
pub struct Frame {
    /// RTP timestamp increment since the previous frame.
    pub rtp_step: u32,
    /// The payloads; the last one carries the marker bit.
    pub payloads: Vec<Vec<u8>>,
    /// Whether this is a keyframe.
    pub keyframe: bool,
}

/// Produces audio frames on a 20 ms cadence.
pub struct AudioSource {
    bytes: usize,
}

impl AudioSource {
    /// A source of `bytes`-sized Opus-like frames.
    pub fn new(bytes: usize) -> Self {
        AudioSource { bytes: bytes.max(STAMP) }
    }

    /// The frame for send time `stamp_us`.
    pub fn frame(&mut self, stamp_us: u64) -> Frame {
        let mut p = vec![0x78u8; self.bytes];
        p[..STAMP].copy_from_slice(&stamp_us.to_be_bytes());
        Frame { rtp_step: 960, payloads: vec![p], keyframe: false }
    }
}

/// Produces VP8-shaped frames at a bitrate.
pub struct VideoSource {
    config: MediaConfig,
    frames: u64,
    last_key: Option<u64>,
    rng: u64,
    /// A keyframe was requested (PLI/FIR) or none was sent yet.
    pub keyframe_wanted: bool,
    /// Fills the frames' bytes after the stamp (else the frame counter):
    /// a simulcast layer's rid, so a receiver can tell which layer a frame
    /// came from.
    pub fill: Option<u8>,
    /// This layer's picture size, which its keyframes announce (VP8's
    /// frame header, H.264's sequence parameter set).
    pub size: (u32, u32),
}

impl VideoSource {
    /// A source; `seed` makes sizes differ between senders yet stay reproducible.
    pub fn new(config: MediaConfig, seed: u64) -> Self {
        VideoSource {
            config,
            frames: 0,
            last_key: None,
            rng: seed | 1,
            keyframe_wanted: true,
            fill: None,
            size: config.camera,
        }
    }

    /// Time between frames.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.config.fps.max(1)
    }

    /// The next frame, stamped `stamp_us`.
    pub fn frame(&mut self, stamp_us: u64) -> Frame {
        let fps = u64::from(self.config.fps.max(1));
        let gop = (self.config.keyframe_every.as_millis() as u64 * fps / 1000).max(1);
        let key = self.keyframe_wanted || self.last_key.is_none_or(|k| self.frames - k >= gop);
        self.keyframe_wanted = false;
        if key {
            self.last_key = Some(self.frames);
        }
        self.frames += 1;
        // Keyframes ≈ 5 delta frames; the mix over a GOP meets the bitrate.
        let avg = u64::from(self.config.video_bitrate) / 8 / fps;
        let delta = avg * gop / (gop + 4);
        let base = if key { delta * 5 } else { delta };
        let jitter = self.next_rand() % 31; // 0..=30 → -15 %..+15 %
        let size = (base * (85 + jitter) / 100).max((VP8_HEADER + STAMP) as u64 + 1) as usize;

        let mut data = vec![self.fill.unwrap_or((self.frames & 0xff) as u8); size];
        if self.config.h264 {
            return Frame {
                rtp_step: 90_000 / self.config.fps.max(1),
                payloads: self.h264(key, stamp_us, data),
                keyframe: key,
            };
        }
        // VP8 frame tag: bit 0 clear means keyframe; shown; partition size 0.
        data[..3].copy_from_slice(&[if key { 0x10 } else { 0x11 }, 0, 0]);
        if key {
            // Start code, then 14-bit width and height (scale 0), little-endian.
            let (w, h) = self.size;
            data[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
            data[6..8].copy_from_slice(&((w & 0x3fff) as u16).to_le_bytes());
            data[8..10].copy_from_slice(&((h & 0x3fff) as u16).to_le_bytes());
        }
        data[VP8_HEADER..VP8_HEADER + STAMP].copy_from_slice(&stamp_us.to_be_bytes());
        let chunks = data.chunks(MAX_VIDEO_CHUNK);
        let payloads = chunks
            .enumerate()
            .map(|(i, c)| {
                let mut p = Vec::with_capacity(c.len() + 1);
                // VP8 payload descriptor (RFC 7741): S bit on the first packet.
                p.push(if i == 0 { 0x10 } else { 0x00 });
                p.extend_from_slice(c);
                p
            })
            .collect();
        Frame { rtp_step: 90_000 / self.config.fps.max(1), payloads, keyframe: key }
    }

    /// One H.264 frame's payloads: on a keyframe a STAP-A with SPS and PPS,
    /// then the slice (IDR or not; `body` after the stamp) in FU-A fragments.
    fn h264(&self, key: bool, stamp_us: u64, mut body: Vec<u8>) -> Vec<Vec<u8>> {
        const NRI: u8 = 0x60;
        let mut payloads = Vec::new();
        if key {
            let sps = sps(self.size);
            let mut stap = vec![NRI | H264_STAP_A];
            for unit in [&sps[..], &PPS[..]] {
                stap.extend_from_slice(&(unit.len() as u16).to_be_bytes());
                stap.extend_from_slice(unit);
            }
            payloads.push(stap);
        }
        body[..STAMP].copy_from_slice(&stamp_us.to_be_bytes());
        let unit_type = if key { 5 } else { 1 };
        let n = body.len().div_ceil(MAX_VIDEO_CHUNK);
        for (i, chunk) in body.chunks(MAX_VIDEO_CHUNK).enumerate() {
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i + 1 == n { 0x40 } else { 0 };
            let mut p = Vec::with_capacity(chunk.len() + 2);
            p.extend_from_slice(&[NRI | H264_FU_A, start | end | unit_type]);
            p.extend_from_slice(chunk);
            payloads.push(p);
        }
        payloads
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64: cheap, reproducible, plenty for size jitter.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;
/// The picture parameter set sent with every SPS (id 0, CAVLC, nothing else set).
const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

/// A constrained-baseline sequence parameter set (NAL unit, emulation
/// prevented) for a picture of `size` (width a multiple of 16; height
/// rounded up to macroblocks and cropped back).
fn sps((width, height): (u32, u32)) -> Vec<u8> {
    let mut bits: Vec<bool> = Vec::new();
    let mut put = |value: u32, n: u32| bits.extend((0..n).rev().map(|i| value >> i & 1 == 1));
    // Exp-Golomb: as many zeros as the value+1 has bits after its first.
    let ue = |put: &mut dyn FnMut(u32, u32), v: u32| {
        let n = 32 - (v + 1).leading_zeros();
        put(0, n - 1);
        put(v + 1, n);
    };
    put(66, 8); // profile: baseline
    put(0xc0, 8); // constraint_set0 and 1: constrained baseline
    put(31, 8); // level 3.1
    ue(&mut put, 0); // seq_parameter_set_id
    ue(&mut put, 0); // log2_max_frame_num_minus4
    ue(&mut put, 2); // pic_order_cnt_type
    ue(&mut put, 1); // max_num_ref_frames
    put(0, 1); // gaps_in_frame_num_value_allowed_flag
    let rows = height.div_ceil(16);
    ue(&mut put, width / 16 - 1);
    ue(&mut put, rows - 1);
    put(1, 1); // frame_mbs_only_flag
    put(1, 1); // direct_8x8_inference_flag
    let crop = (rows * 16 - height) / 2; // in chroma rows (4:2:0)
    put(u32::from(crop > 0), 1);
    if crop > 0 {
        for v in [0, 0, 0, crop] {
            ue(&mut put, v);
        }
    }
    put(0, 1); // vui_parameters_present_flag
    put(1, 1); // rbsp_stop_one_bit
    let mut out = vec![0x67];
    let mut zeros = 0;
    for byte in bits.chunks(8).map(|b| b.iter().enumerate().fold(0u8, |acc, (i, &x)| acc | u8::from(x) << (7 - i))) {
        if zeros >= 2 && byte <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Reads the send stamp from a received RTP payload, if this packet starts
/// a frame (all audio packets; VP8 packets with the S bit; an H.264
/// slice's first fragment).
pub fn stamp_of(kind_is_video: bool, payload: &[u8]) -> Option<u64> {
    // Told apart from VP8 by the NAL unit type (VideoSource's VP8
    // descriptors are 0x10 or 0x00: type 16 or 0).
    if kind_is_video && payload.first()? & 0x1f == H264_STAP_A {
        return None;
    }
    if kind_is_video && payload.first()? & 0x1f == H264_FU_A {
        if payload.get(1)? & 0x80 == 0 {
            return None;
        }
        let b = payload.get(2..2 + STAMP)?;
        return Some(u64::from_be_bytes(b.try_into().ok()?));
    }
    let at = if kind_is_video {
        // One-byte descriptor without extensions (what VideoSource writes);
        // the S bit says a frame starts here; then the frame header.
        if payload.first()? & 0x90 != 0x10 {
            return None;
        }
        1 + VP8_HEADER
    } else {
        0
    };
    let b = payload.get(at..at + STAMP)?;
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// The simulcast layer (index into [`SIMULCAST_LAYERS`]) a received video
/// packet's frame was filled with, if the packet starts a frame and its
/// sender sends simulcast (otherwise the fill is a counter and may read
/// as anything).
pub fn layer_of(payload: &[u8]) -> Option<usize> {
    // VP8 only (an H.264 STAP-A or FU-A indicator has bit 3 set; VP8's
    // reserved bit there is clear).
    if payload.first()? & 0x98 != 0x10 {
        return None;
    }
    let fill = *payload.get(1 + VP8_HEADER + STAMP)?;
    SIMULCAST_LAYERS.iter().position(|(rid, ..)| rid.as_bytes() == [fill])
}

/// Microseconds from `epoch` to `t` (0 if `t` is earlier).
pub fn micros_since(epoch: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(epoch).as_micros() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_meets_its_bitrate_with_periodic_keyframes() {
        let config = MediaConfig { video_bitrate: 1_500_000, ..Default::default() };
        let mut v = VideoSource::new(config, 7);
        let mut bytes = 0usize;
        let mut keys = 0;
        for i in 0..300 {
            let f = v.frame(i);
            keys += usize::from(f.keyframe);
            for p in &f.payloads {
                assert!(p.len() <= MAX_VIDEO_CHUNK + 1);
                bytes += p.len() - 1;
            }
        }
        // 300 frames at 30 fps = 10 s: one keyframe each 2 s.
        assert_eq!(keys, 5);
        let bps = bytes as f64 * 8.0 / 10.0;
        assert!((bps - 1_500_000.0).abs() < 1_500_000.0 * 0.05, "{bps}");
    }

    #[test]
    fn h264_frames_carry_a_readable_sps_and_their_stamp() {
        let config = MediaConfig { h264: true, camera: (640, 360), ..Default::default() };
        let mut v = VideoSource::new(config, 5);
        let key = v.frame(77);
        assert!(key.keyframe);
        // STAP-A: SPS then PPS.
        let stap = &key.payloads[0];
        assert_eq!(stap[0] & 0x1f, H264_STAP_A);
        let len = usize::from(u16::from_be_bytes([stap[1], stap[2]]));
        let sps = &stap[3..3 + len];
        let rbsp = h264_reader::rbsp::decode_nal(sps).expect("rbsp");
        let parsed = h264_reader::nal::sps::SeqParameterSet::from_bits(h264_reader::rbsp::BitReader::new(&*rbsp))
            .expect("a valid SPS");
        assert_eq!(parsed.pixel_dimensions().expect("size"), (640, 360));
        assert_eq!(stamp_of(true, stap), None);
        assert_eq!(stamp_of(true, &key.payloads[1]), Some(77), "the IDR slice's first fragment");
        assert_eq!(key.payloads[1][1] & 0x1f, 5, "IDR");
        let delta = v.frame(78);
        assert!(!delta.keyframe);
        assert_eq!(delta.payloads[0][1] & 0x9f, 0x81, "first fragment of a non-IDR slice");
        assert_eq!(delta.payloads.last().map(|p| p[1] & 0x40), Some(0x40), "the last fragment ends the slice");
        assert_eq!(stamp_of(true, &delta.payloads[0]), Some(78));
    }

    #[test]
    fn a_requested_keyframe_comes_next() {
        let mut v = VideoSource::new(MediaConfig::default(), 1);
        assert!(v.frame(0).keyframe);
        assert!(!v.frame(1).keyframe);
        v.keyframe_wanted = true;
        assert!(v.frame(2).keyframe);
    }

    #[test]
    fn keyframes_carry_the_vp8_start_code_and_picture_size() {
        let mut v = VideoSource::new(MediaConfig::default(), 5);
        v.size = (320, 180);
        v.fill = Some(b'q');
        let key = v.frame(1);
        let p = &key.payloads[0];
        // Descriptor, frame tag (P bit clear), start code, width, height.
        assert_eq!(p[1] & 1, 0);
        assert_eq!(&p[4..7], &[0x9d, 0x01, 0x2a]);
        assert_eq!(u16::from_le_bytes([p[7], p[8]]), 320);
        assert_eq!(u16::from_le_bytes([p[9], p[10]]), 180);
        assert_eq!(layer_of(p), Some(0));
        let delta = v.frame(2);
        assert_eq!(delta.payloads[0][1] & 1, 1);
        assert_eq!(stamp_of(true, &delta.payloads[0]), Some(2));
    }

    #[test]
    fn stamps_survive_packetization() {
        let mut v = VideoSource::new(MediaConfig::default(), 3);
        let f = v.frame(123_456_789);
        assert_eq!(stamp_of(true, &f.payloads[0]), Some(123_456_789));
        if let Some(second) = f.payloads.get(1) {
            assert_eq!(stamp_of(true, second), None, "only the frame's first packet");
        }
        let mut a = AudioSource::new(80);
        assert_eq!(stamp_of(false, &a.frame(42).payloads[0]), Some(42));
    }
}
