//! Payload types: which number a session negotiated for a codec. The one
//! mapping used by the forwarding path and by the test peers.

use str0m::format::{Codec, CodecSpec};
use str0m::media::{Mid, Pt};
use str0m::Rtc;

/// The payload type `rtc` negotiated on `mid` for a codec `wanted` accepts
/// (the first one the remote side listed, if it listed any).
pub fn negotiated_pt(rtc: &Rtc, mid: Mid, wanted: impl Fn(&CodecSpec) -> bool) -> Option<Pt> {
    let remote: &[Pt] = rtc.media(mid).map(|m| m.remote_pts()).unwrap_or(&[]);
    rtc.codec_config()
        .params()
        .iter()
        .filter(|p| remote.is_empty() || remote.contains(&p.pt()))
        .find(|p| wanted(&p.spec()))
        .map(|p| p.pt())
}

/// The codec and format `pt` stands for in `rtc`'s configuration.
pub(crate) fn spec_of(rtc: &Rtc, pt: Pt) -> Option<CodecSpec> {
    rtc.codec_config().params().iter().find(|p| p.pt() == pt).map(|p| p.spec())
}

/// Whether a packet in format `a` can be forwarded as format `b`.
pub(crate) fn same_codec(a: &CodecSpec, b: &CodecSpec) -> bool {
    if a.codec != b.codec {
        return false;
    }
    if a.codec == Codec::H264 {
        // Same packetization and profile (level may differ; decoders cope).
        return a.format.packetization_mode == b.format.packetization_mode
            && a.format.profile_level_id.map(|x| x >> 8) == b.format.profile_level_id.map(|x| x >> 8);
    }
    true
}
