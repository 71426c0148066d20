//! One published track as one subscriber receives it: the outgoing m-line,
//! the payload-type map, and the sequence and timestamp rewriting. The
//! forwarding loop hands every packet to a `DownTrack`; nothing else writes
//! RTP to a subscriber.
//!
//! Offsets are running: `out = in - offset`, and the offset may be moved
//! while the output stays continuous. Today only the first packet sets it
//! (so every outgoing stream, and its SRTP rollover counter, starts near
//! zero); a simulcast layer switch will move both offsets at a keyframe,
//! and its layer choice belongs next to them here.

use std::time::Duration;

use str0m::format::CodecSpec;
use str0m::media::{Mid, Pt};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};
use str0m::Rtc;

use crate::codec::{negotiated_pt, same_codec};
use crate::guard::guarded;
use crate::ids::{ParticipantId, TrackId};
use crate::protocol::{Kind, TrackInfo};

/// Retransmission history per outgoing stream: enough to answer NACKs for
/// round trips up to about half a second, far less memory than str0m's
/// default (1024 packets / 3 s) times every subscriber. Audio is not
/// retransmitted (too late to play).
const RTX_CACHE_VIDEO: (usize, Duration) = (256, Duration::from_millis(1000));
const RTX_CACHE_AUDIO: (usize, Duration) = (0, Duration::from_millis(0));

/// Where the subscriber's m-line for the track stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DownState {
    /// Wanted, not yet in an offer.
    Wanted,
    /// In an offer that is not answered yet.
    Offered(Mid),
    /// Negotiated: packets flow on this m-line.
    Active(Mid),
    /// The publisher left; the m-line (if it got one) is stopped in the next offer.
    Stopping(Option<Mid>),
}

/// A published track as one subscriber receives it.
pub(crate) struct DownTrack {
    track: TrackId,
    publisher: ParticipantId,
    kind: Kind,
    screen: bool,
    state: DownState,
    /// Publisher payload type → ours, learnt on the first packet of each PT.
    pt_map: Vec<(Pt, Option<Pt>)>,
    /// Subtracted from the publisher's extended sequence number; set by the
    /// first packet.
    seq_offset: Option<u64>,
    /// Subtracted from the publisher's RTP timestamp.
    ts_offset: u32,
}

/// What a forwarded packet looks like, computed once for all subscribers.
pub(crate) struct Incoming<'a> {
    pub pkt: &'a RtpPacket,
    pub spec: &'a CodecSpec,
    /// Only what a receiver renders; str0m writes mid and transport-cc itself.
    pub ext: ExtensionValues,
}

impl DownTrack {
    pub fn new(track: TrackId, publisher: ParticipantId, kind: Kind, screen: bool) -> Self {
        DownTrack {
            track,
            publisher,
            kind,
            screen,
            state: DownState::Wanted,
            pt_map: Vec::new(),
            seq_offset: None,
            ts_offset: 0,
        }
    }

    pub fn track(&self) -> TrackId {
        self.track
    }

    pub fn publisher(&self) -> ParticipantId {
        self.publisher
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn state(&self) -> DownState {
        self.state
    }

    /// The subscriber's m-line for it, once it has one.
    pub fn mid(&self) -> Option<Mid> {
        match self.state {
            DownState::Wanted => None,
            DownState::Offered(m) | DownState::Active(m) => Some(m),
            DownState::Stopping(m) => m,
        }
    }

    /// How the client learns whose media an m-line carries.
    pub fn info(&self) -> Option<TrackInfo> {
        Some(TrackInfo {
            mid: self.mid()?.to_string(),
            participant: self.publisher,
            kind: self.kind,
            screen: self.screen,
        })
    }

    pub fn offered(&mut self, mid: Mid) {
        self.state = DownState::Offered(mid);
    }

    /// The publisher left: stop the m-line with the next offer.
    pub fn stop(&mut self) {
        self.state = DownState::Stopping(self.mid());
    }

    /// The subscriber answered the offer that carried this m-line. Returns
    /// whether it is video (and the publisher should send a keyframe).
    pub fn answered(&mut self, rtc: &mut Rtc) -> bool {
        let DownState::Offered(mid) = self.state else { return false };
        self.state = DownState::Active(mid);
        let video = self.kind == Kind::Video;
        let (packets, age) = if video { RTX_CACHE_VIDEO } else { RTX_CACHE_AUDIO };
        // A session str0m cannot configure still forwards; it only loses
        // the smaller retransmission buffer.
        let _ = guarded(|| {
            if let Some(tx) = rtc.direct_api().stream_tx_by_mid(mid, None) {
                tx.set_rtx_cache(packets, age, Some(0.15));
            }
        });
        video
    }

    /// Writes one packet to the subscriber's session. `Ok(true)` when one
    /// was written (the session must be advanced to send it), `Ok(false)`
    /// when this packet is not for it (not negotiated yet, a codec it did
    /// not accept, reordered from before its start), `Err` when str0m broke.
    pub fn write(&mut self, rtc: &mut Rtc, inc: &Incoming<'_>) -> Result<bool, ()> {
        let DownState::Active(mid) = self.state else { return Ok(false) };
        let in_pt = inc.pkt.header.payload_type;
        let out_pt = match self.pt_map.iter().find(|(i, _)| *i == in_pt) {
            Some((_, o)) => *o,
            None => {
                let o = negotiated_pt(rtc, mid, |s| same_codec(s, inc.spec));
                self.pt_map.push((in_pt, o));
                o
            }
        };
        let Some(out_pt) = out_pt else { return Ok(false) };
        let seq = *inc.pkt.seq_no;
        let offset = *self.seq_offset.get_or_insert(seq.saturating_sub(1));
        if seq <= offset {
            // Reordered from before this subscriber's first packet.
            return Ok(false);
        }
        let time = inc.pkt.header.timestamp.wrapping_sub(self.ts_offset);
        // The payload is shared (an `Arc`), not copied, per subscriber.
        let write = RtpWrite::new(out_pt, (seq - offset).into(), time, inc.pkt.timestamp, inc.pkt.payload.clone())
            .marker(inc.pkt.header.marker)
            .ext_vals(inc.ext.clone())
            .nackable(self.kind == Kind::Video);
        guarded(|| {
            if let Some(tx) = rtc.direct_api().stream_tx_by_mid(mid, None) {
                tx.write_rtp(write);
            }
        })?;
        Ok(true)
    }
}
