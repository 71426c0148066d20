//! The hot path: one incoming RTP packet out to every subscriber, at the RTP
//! level (no depacketizing). Per subscriber we rewrite the payload type to
//! what that session negotiated and rebase the sequence number so each
//! outgoing stream starts near zero.

use std::time::Instant;

use str0m::format::{Codec, CodecSpec};
use str0m::media::{Mid, Pt};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};
use str0m::Rtc;

use crate::ids::ParticipantId;
use crate::participant::{Participant, SubState};
use crate::protocol::Kind;
use crate::sfu::{guarded, Sfu};

pub(crate) fn forward(sfu: &mut Sfu, from: ParticipantId, pkt: RtpPacket, now: Instant) {
    let Some(p) = sfu.participant_mut(from) else { return };
    let ssrc = pkt.header.ssrc;
    let Ok(Some(mid)) = guarded(|| p.rtc.direct_api().stream_rx(&ssrc).map(|s| s.mid())) else {
        return;
    };
    let Some(published) = p.published.get(&mid).copied() else { return };
    let Some(track) = published.track else {
        // First media on this m-line: the room learns of the track now and
        // receives from the next packet on, once it has negotiated it.
        return sfu.announce_track(from, mid, now);
    };
    let force_muted = p.force_muted;
    let in_pt = pkt.header.payload_type;
    let Some(spec) = p.rtc.codec_config().params().iter().find(|x| x.pt() == in_pt).map(|x| x.spec())
    else {
        return;
    };
    // A moderator muted this microphone: nobody hears it until its owner unmutes.
    if force_muted && sfu.tracks.get(&track).map(|t| t.kind) == Some(Kind::Audio) {
        return;
    }
    let Some(members) = sfu.room_members(from).map(|m| m.to_vec()) else { return };

    // Only what a receiver renders; str0m writes mid and transport-cc itself.
    let ext = ExtensionValues {
        audio_level: pkt.header.ext_vals.audio_level,
        voice_activity: pkt.header.ext_vals.voice_activity,
        video_orientation: pkt.header.ext_vals.video_orientation,
        ..Default::default()
    };
    let seq = *pkt.seq_no;

    for m in members.into_iter().filter(|m| *m != from) {
        let Some(s) = sfu.participant_mut(m) else { continue };
        let Participant { rtc, subs, .. } = &mut *s;
        let Some(sub) = subs.iter_mut().find(|x| x.track == track) else { continue };
        let SubState::Active(out_mid) = sub.state else { continue };
        let out_pt = match sub.pt_map.iter().find(|(i, _)| *i == in_pt) {
            Some((_, o)) => *o,
            None => {
                let o = map_pt(rtc, out_mid, &spec);
                sub.pt_map.push((in_pt, o));
                o
            }
        };
        let Some(out_pt) = out_pt else { continue };
        let base = *sub.seq_base.get_or_insert(seq.saturating_sub(1));
        if seq <= base {
            // Reordered from before this subscriber's first packet.
            continue;
        }
        let write = RtpWrite::new(out_pt, (seq - base).into(), pkt.header.timestamp, pkt.timestamp, pkt.payload.clone())
            .marker(pkt.header.marker)
            .ext_vals(ext.clone())
            .nackable(sub.kind == Kind::Video);
        let res = guarded(|| {
            if let Some(tx) = rtc.direct_api().stream_tx_by_mid(out_mid, None) {
                tx.write_rtp(write);
            }
        });
        if res.is_err() {
            sfu.push_fault(m, now);
            continue;
        }
        sfu.drain(m, now);
        // str0m holds written packets until the session's time advances.
        // Mark the session due instead of advancing it per packet: the
        // shell calls `handle_timeout` after each batch of datagrams, so a
        // burst (a video frame is several packets) costs one advance per
        // subscriber, not one per packet.
        sfu.mark_due(m, now);
    }
}

/// The payload type this session negotiated for the same codec, if any.
fn map_pt(rtc: &Rtc, mid: Mid, spec: &CodecSpec) -> Option<Pt> {
    let remote: &[Pt] = rtc.media(mid).map(|m| m.remote_pts()).unwrap_or(&[]);
    rtc.codec_config()
        .params()
        .iter()
        .filter(|p| remote.is_empty() || remote.contains(&p.pt()))
        .find(|p| same_codec(&p.spec(), spec))
        .map(|p| p.pt())
}

fn same_codec(a: &CodecSpec, b: &CodecSpec) -> bool {
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
