//! One published track as one subscriber receives it: the outgoing m-line,
//! the payload-type map, and the sequence and timestamp rewriting. The
//! forwarding loop hands every packet to a `DownTrack`; nothing else writes
//! RTP to a subscriber.
//!
//! Which layer of a simulcast track it gets, and how the layers become one
//! continuous stream, is its [`Switch`] (simulcast.rs); video starts (and
//! changes layer) only at a keyframe.

use std::time::Duration;

use str0m::format::CodecSpec;
use str0m::media::{Mid, Pt};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Vp8Descriptor};
use str0m::Rtc;

use crate::codec::{negotiated_pt, same_codec};
use crate::guard::guarded;
use crate::ids::{ParticipantId, TrackId};
use crate::protocol::{Kind, TrackInfo};
use crate::simulcast::{Packet, Switch};

/// Retransmission history per outgoing stream: enough to answer NACKs for
/// round trips up to about half a second, far less memory than str0m's
/// default (1024 packets / 3 s) times every subscriber. Audio is not
/// retransmitted (too late to play).
const RTX_CACHE_VIDEO: (usize, Duration) = (256, Duration::from_millis(1000));
const RTX_CACHE_AUDIO: (usize, Duration) = (0, Duration::from_millis(0));

/// The longest a video packet waits in str0m's pacer before its stream is
/// let out unpaced until its queue is empty. The pacer sends 1.1 times the
/// estimate and the allocation plans 0.9 of it (alloc.rs): a keyframe at a
/// layer switch drains at the 0.2 left over, with every video of that
/// viewer behind it — at a 12-person meeting's start the load generator
/// measured p99 0.3–0.5 s of it, and `tests/simulcast.rs` 0.7–0.9 s at 8
/// (docs/benchmarks.md). Past this wait the backlog leaves at once, as a
/// browser's own pacer (2.5 times the estimate) would have sent it by then;
/// steady media stays paced.
const MAX_PACER_WAIT: Duration = Duration::from_millis(15);

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
    /// Layer choice and sequence/timestamp/picture-id rewriting.
    switch: Switch,
    /// Whether its stream is let out unpaced to drain a backlog
    /// ([`MAX_PACER_WAIT`]).
    draining: bool,
}

/// What a forwarded packet looks like, computed once for all subscribers.
pub(crate) struct Incoming<'a> {
    pub pkt: &'a RtpPacket,
    pub spec: &'a CodecSpec,
    /// Only what a receiver renders; str0m writes mid and transport-cc itself.
    pub ext: ExtensionValues,
    /// What the layer switch needs of it.
    pub packet: Packet,
    /// Its VP8 payload descriptor, when it is VP8 (for picture id rewriting).
    pub vp8: Option<Vp8Descriptor>,
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
            // Video starts at the lowest layer, which every publisher
            // sends; the allocator moves it up within a second.
            switch: Switch::new(Some(0)),
            draining: false,
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

    pub fn is_screen(&self) -> bool {
        self.screen
    }

    /// The layer it should get, `None` when paused.
    pub fn set_target(&mut self, layer: Option<u8>) {
        if self.switch.target() != layer {
            self.switch.set_target(layer);
        }
    }

    /// The layer it should get (`None`: paused).
    pub fn target(&self) -> Option<u8> {
        self.switch.target()
    }

    /// The layer it waits to switch to (the publisher is asked for a
    /// keyframe of it), if any.
    pub fn awaited_layer(&self) -> Option<u8> {
        if !matches!(self.state, DownState::Active(_)) || !self.switch.wants_keyframe() {
            return None;
        }
        self.switch.target()
    }

    /// The layer it receives now (for its own keyframe requests).
    pub fn current_layer(&self) -> Option<u8> {
        self.switch.current()
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

    /// The subscriber answered the offer that carried this m-line.
    pub fn answered(&mut self, rtc: &mut Rtc) {
        let DownState::Offered(mid) = self.state else { return };
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
        let Some(out) = self.switch.rewrite(&inc.packet) else { return Ok(false) };
        // The payload is shared (an `Arc`), not copied, per subscriber.
        let mut write =
            RtpWrite::new(out_pt, out.seq.into(), out.timestamp, inc.pkt.timestamp, inc.pkt.payload.clone())
                .marker(inc.pkt.header.marker)
                .ext_vals(inc.ext.clone())
                .nackable(self.kind == Kind::Video);
        if let (Some((picture, tl0)), Some(d)) = (out.vp8, inc.vp8) {
            let mut patch = d.patch();
            if let Some(p) = picture {
                patch = patch.picture_id(p);
            }
            if let Some(t) = tl0 {
                patch = patch.tl0_pic_idx(t);
            }
            if let Ok(p) = patch.build() {
                write = write.vp8_patch(p);
            }
        }
        let video = self.kind == Kind::Video;
        let draining = &mut self.draining;
        guarded(|| {
            if let Some(tx) = rtc.direct_api().stream_tx_by_mid(mid, None) {
                if video {
                    // The queue as str0m last looked at it: its oldest
                    // packet waited too long, or the backlog is gone.
                    let waited = tx
                        .queue_info()
                        .and_then(|q| q.first_unsent())
                        .map(|t| inc.pkt.timestamp.saturating_duration_since(t));
                    let drain = waited.is_some_and(|w| w > MAX_PACER_WAIT) || (*draining && waited.is_some());
                    if drain != *draining {
                        tx.set_unpaced(drain);
                        *draining = drain;
                    }
                }
                tx.write_rtp(write);
            }
        })?;
        Ok(true)
    }
}
