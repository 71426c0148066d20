//! Tracks and negotiation: what a participant publishes, when the room
//! learns of it, and the server offers that add or stop m-lines.

use std::time::Instant;

use str0m::media::{Direction, KeyframeRequestKind, MediaKind};
use tracing::debug;

use crate::ids::{ParticipantId, TrackId};
use crate::participant::{Participant, Phase, Published, Sub, SubState};
use crate::protocol::{CloseCode, Kind, ServerMsg, TrackInfo};
use crate::sfu::{guarded, Output, Sfu, Track, MAX_PUBLISHED_TRACKS};

impl Sfu {
    /// Sends a server offer when subscriptions changed and nothing is pending.
    pub(crate) fn maybe_offer(&mut self, pid: ParticipantId, now: Instant) {
        let Some(p) = self.participants.get_mut(&pid) else { return };
        if !p.renegotiate || !matches!(p.phase, Phase::Stable) {
            return;
        }
        p.renegotiate = false;
        let Participant { rtc, subs, .. } = p;
        let applied = guarded(|| {
            let mut api = rtc.sdp_api();
            for s in subs.iter_mut() {
                match s.state {
                    SubState::Wanted => {
                        let kind = match s.kind {
                            Kind::Audio => MediaKind::Audio,
                            Kind::Video => MediaKind::Video,
                        };
                        let mid = api.add_media(
                            kind,
                            Direction::SendOnly,
                            Some(s.publisher.to_string()),
                            Some(s.track.to_string()),
                            None,
                        );
                        s.state = SubState::Offered(mid);
                    }
                    SubState::Stopping(Some(mid)) => api.stop_media(mid),
                    _ => {}
                }
            }
            subs.retain(|s| !matches!(s.state, SubState::Stopping(_)));
            api.apply()
        });
        let Ok(applied) = applied else {
            return self.fault(pid, CloseCode::InternalError, now);
        };
        if let Some((offer, pending)) = applied {
            p.phase = Phase::AwaitingAnswer(pending);
            let tracks = p
                .subs
                .iter()
                .filter_map(|s| {
                    s.mid().map(|mid| TrackInfo {
                        mid: mid.to_string(),
                        participant: s.publisher,
                        kind: s.kind,
                        screen: s.screen,
                    })
                })
                .collect();
            self.out.push_back(Output::Signal(
                pid,
                ServerMsg::Offer { sdp: offer.to_sdp_string(), tracks },
            ));
        }
        self.drain(pid, now);
    }

    /// The client's offer added an m-line we receive on; see `announce_track`.
    pub(crate) fn publish(&mut self, pid: ParticipantId, added: str0m::media::MediaAdded) {
        if !added.direction.is_receiving() {
            return;
        }
        let Some(p) = self.participants.get_mut(&pid) else { return };
        if p.published.len() >= MAX_PUBLISHED_TRACKS {
            return;
        }
        let kind = match added.kind {
            MediaKind::Audio => Kind::Audio,
            MediaKind::Video => Kind::Video,
        };
        let screen = p.screen_mid == Some(added.mid) && kind == Kind::Video;
        p.published.insert(added.mid, Published { track: None, kind, screen });
    }

    /// First media on a published m-line: announce the track to the room.
    pub(crate) fn announce_track(&mut self, pid: ParticipantId, mid: str0m::media::Mid, now: Instant) {
        let Some(p) = self.participants.get_mut(&pid) else { return };
        let Some(pubd) = p.published.get_mut(&mid) else { return };
        if pubd.track.is_some() {
            return;
        }
        let track = TrackId(self.next_track);
        self.next_track += 1;
        pubd.track = Some(track);
        let (kind, screen) = (pubd.kind, pubd.screen);
        self.tracks.insert(track, Track { publisher: pid, kind, mid });
        debug!(participant = %pid, %track, ?kind, screen, "track published");
        let members = self.rooms.get(&p.room).map(|r| r.members.clone()).unwrap_or_default();
        for m in members.into_iter().filter(|m| *m != pid) {
            let Some(o) = self.participants.get_mut(&m) else { continue };
            o.subs.push(Sub::new(track, pid, kind, screen));
            o.renegotiate = true;
            self.maybe_offer(m, now);
        }
    }

    /// Asks the publisher of `track` for a keyframe (PLI or FIR).
    pub(crate) fn request_keyframe(&mut self, track: TrackId, kind: KeyframeRequestKind, now: Instant) {
        let Some(t) = self.tracks.get(&track) else { return };
        let (publisher, mid) = (t.publisher, t.mid);
        let Some(p) = self.participants.get_mut(&publisher) else { return };
        let ok = guarded(|| {
            if let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(mid, None) {
                rx.request_keyframe(kind);
            }
        });
        if ok.is_err() {
            return self.fault(publisher, CloseCode::InternalError, now);
        }
        self.drain(publisher, now);
    }
}
