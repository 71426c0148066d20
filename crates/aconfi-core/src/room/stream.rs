//! A room's live stream: the streaming worker as one more subscriber.
//!
//! The worker gets every published track as plain RTP (the server holds the
//! media decrypted already; end-to-end encrypted rooms cannot stream). The
//! forwarding path only copies packets out and notes a track it has not
//! seen; the list of sources the worker composes is sent from the room
//! timer, when someone leaves and when a camera or screen goes on or off.
//! Of a simulcast track the worker gets the best layer being sent (its
//! own [`Switch`], moved with the subscribers' allocation).

use str0m::format::CodecSpec;
use str0m::media::KeyframeRequestKind;
use str0m::rtp::RtpPacket;
use tracing::debug;

use super::{Cx, Room};
use crate::error::SignalError;
use crate::ids::{ParticipantId, TrackId};
use crate::output::Output;
use crate::participant::VideoSource;
use crate::protocol::{Kind, ServerMsg, StreamStatus, StreamUrl};
use crate::simulcast::{Packet, Switch};
use crate::stream::{SourceKind, StreamEvent, StreamKey, StreamOut, StreamSource, TapCodec};
use crate::stream_limits::StreamSlot;
use crate::timers::Key;

/// Longest failure reason passed on from the worker.
const MAX_REASON_CHARS: usize = 200;

pub(crate) struct Tap {
    key: StreamKey,
    /// This stream's place in the server's budget, given back with the tap.
    _slot: StreamSlot,
    status: StreamStatus,
    /// Tracks seen on the forwarding path with their codec and layer
    /// switch, by track.
    feeds: Vec<(TrackId, TapCodec, Switch)>,
    /// A feed was added or changed codec: send the sources again.
    dirty: bool,
}

impl Tap {
    fn ssrc(track: TrackId, codec: TapCodec) -> u32 {
        // Distinct per track and codec, so a publisher switching codec is
        // a new source for the worker rather than a confused decoder.
        ((track.0 << 2) | codec as u64) as u32
    }
}

impl Room {
    /// `stream_start` from a moderator (checked by the caller).
    pub(super) fn start_stream(
        &mut self,
        by: ParticipantId,
        url: StreamUrl,
        cx: &mut Cx<'_>,
    ) -> Result<(), SignalError> {
        if self.e2ee {
            return Err(SignalError::Refused(
                "this meeting is end-to-end encrypted: the server cannot see its media, so it cannot stream it",
            ));
        }
        if cx.stream_unavailable.is_some() {
            return Err(SignalError::Refused("live streaming is not available on this server"));
        }
        if self.tap.as_ref().is_some_and(|t| t.status.is_active()) {
            return Err(SignalError::Refused("the meeting is already being streamed"));
        }
        if !url.is_valid() {
            return Err(SignalError::Refused("the stream address must be an rtmp:// or rtmps:// URL"));
        }
        let slot = cx.stream_limits.take(cx.addresses.get(&by).copied()).map_err(|r| SignalError::Refused(r.text()))?;
        self.next_stream += 1;
        let key = StreamKey { room: self.id, serial: self.next_stream };
        self.tap = Some(Tap { key, _slot: slot, status: StreamStatus::Starting, feeds: Vec::new(), dirty: false });
        debug!(room = %self.id, "live stream started");
        cx.out.push(Output::Stream(key, StreamOut::Start { url }));
        self.send_sources(cx);
        self.broadcast(cx.out, None, ServerMsg::StreamState { state: StreamStatus::Starting, reason: None });
        Ok(())
    }

    /// `stream_stop` from a moderator (checked by the caller).
    pub(super) fn stop_stream(&mut self, cx: &mut Cx<'_>) -> Result<(), SignalError> {
        let Some(tap) = self.tap.take().filter(|t| t.status.is_active()) else {
            return Err(SignalError::Refused("the meeting is not being streamed"));
        };
        debug!(room = %self.id, "live stream stopped");
        cx.out.push(Output::Stream(tap.key, StreamOut::Stop));
        self.broadcast(cx.out, None, ServerMsg::StreamState { state: StreamStatus::Stopped, reason: None });
        Ok(())
    }

    /// The room closes: its worker goes with it.
    pub(super) fn end_stream(&mut self, cx: &mut Cx<'_>) {
        if let Some(tap) = self.tap.take() {
            cx.out.push(Output::Stream(tap.key, StreamOut::Stop));
        }
    }

    /// What a newcomer is told about a stream under way.
    pub(super) fn stream_notice(&self) -> Option<ServerMsg> {
        let tap = self.tap.as_ref().filter(|t| t.status.is_active())?;
        Some(ServerMsg::StreamState { state: tap.status, reason: None })
    }

    /// Whether the meeting is being streamed (what the prejoin screen shows).
    pub fn is_streaming(&self) -> bool {
        self.tap.as_ref().is_some_and(|t| t.status.is_active())
    }

    /// What the shell reports about the worker of stream `key`.
    pub fn on_stream_event(&mut self, key: StreamKey, ev: StreamEvent, cx: &mut Cx<'_>) {
        let Some(tap) = self.tap.as_mut().filter(|t| t.key == key) else { return };
        match ev {
            StreamEvent::Keyframe { ssrc } => {
                let Some((track, _, switch)) = tap.feeds.iter().find(|(t, c, _)| Tap::ssrc(*t, *c) == ssrc) else {
                    return;
                };
                let (track, layer) = (*track, switch.current().or(switch.target()));
                if let Some(publisher) = self.publisher_of(track) {
                    self.request_keyframe(publisher, track, KeyframeRequestKind::Pli, layer, true, cx);
                }
            }
            StreamEvent::State { state, reason } => {
                if state == tap.status && reason.is_none() {
                    return;
                }
                let reason = reason.map(|r| r.chars().filter(|c| !c.is_control()).take(MAX_REASON_CHARS).collect());
                if state.is_active() {
                    tap.status = state;
                } else {
                    // The worker gave up (or claims a stop nobody asked
                    // for): it is gone; a moderator may start again.
                    cx.out.push(Output::Stream(key, StreamOut::Stop));
                    self.tap = None;
                }
                let state = if state == StreamStatus::Stopped { StreamStatus::Failed } else { state };
                self.broadcast(cx.out, None, ServerMsg::StreamState { state, reason });
            }
            StreamEvent::Exited { reason } => {
                self.tap = None;
                debug!(room = %self.id, "live stream worker ended");
                cx.out.push(Output::Stream(key, StreamOut::Stop));
                self.broadcast(
                    cx.out,
                    None,
                    ServerMsg::StreamState { state: StreamStatus::Failed, reason: Some(reason) },
                );
            }
        }
    }

    /// The forwarding path's copy for the worker: a plain RTP packet.
    pub(super) fn tap_packet(
        &mut self,
        track: TrackId,
        spec: &CodecSpec,
        pkt: &RtpPacket,
        packet: &Packet,
        cx: &mut Cx<'_>,
    ) {
        let Some(tap) = self.tap.as_mut() else { return };
        let Some(codec) = TapCodec::of(spec.codec) else { return };
        let i = match tap.feeds.binary_search_by_key(&track, |(t, _, _)| *t) {
            Ok(i) if tap.feeds[i].1 == codec => i,
            found => {
                let i = match found {
                    Ok(i) => {
                        tap.feeds[i].1 = codec;
                        i
                    }
                    Err(i) => {
                        tap.feeds.insert(i, (track, codec, Switch::new(Some(0))));
                        i
                    }
                };
                if !tap.dirty && self.announce.is_empty() {
                    cx.timers.schedule_now(Key::Room(self.id), cx.now);
                }
                tap.dirty = true;
                i
            }
        };
        let Some(out) = tap.feeds[i].2.rewrite(packet) else { return };
        let mut buf = Vec::with_capacity(12 + pkt.payload.len());
        buf.push(0x80);
        buf.push(codec.pt() | if pkt.header.marker { 0x80 } else { 0 });
        buf.extend_from_slice(&(out.seq as u16).to_be_bytes());
        buf.extend_from_slice(&out.timestamp.to_be_bytes());
        buf.extend_from_slice(&Tap::ssrc(track, codec).to_be_bytes());
        buf.extend_from_slice(&pkt.payload);
        cx.out.push(Output::Stream(tap.key, StreamOut::Rtp(buf)));
    }

    /// From the room timer: sources changed on the forwarding path.
    pub(super) fn sources_if_dirty(&mut self, cx: &mut Cx<'_>) {
        if self.tap.as_ref().is_some_and(|t| t.dirty) {
            self.send_sources(cx);
        }
    }

    /// Tells the worker what to compose: every member's tracks it has
    /// seen media on, in join order; cameras that are off and screens no
    /// longer shared are left out (rather than frozen on their last frame).
    pub(super) fn send_sources(&mut self, cx: &mut Cx<'_>) {
        let Some(tap) = self.tap.as_mut() else { return };
        tap.dirty = false;
        let mut sources = Vec::new();
        for (pid, m) in &self.members {
            let info = m.info();
            for (track, kind, screen) in m.tracks() {
                let Ok(i) = tap.feeds.binary_search_by_key(&track, |(t, _, _)| *t) else { continue };
                let codec = tap.feeds[i].1;
                let kind = match (kind, screen) {
                    (Kind::Audio, _) => SourceKind::Audio,
                    (Kind::Video, true) if info.screen_sharing => SourceKind::Screen,
                    (Kind::Video, false) if !info.video_muted => SourceKind::Camera,
                    _ => continue,
                };
                sources.push(StreamSource {
                    ssrc: Tap::ssrc(track, codec),
                    person: pid.0,
                    name: info.name.clone().unwrap_or_default(),
                    kind,
                    codec: codec.name(),
                    pt: codec.pt(),
                    clock_rate: codec.clock_rate(),
                });
            }
        }
        cx.out.push(Output::Stream(tap.key, StreamOut::Sources(sources)));
    }

    /// Someone left: their tracks leave the worker's picture.
    pub(super) fn stream_forget(&mut self, cx: &mut Cx<'_>) {
        let Some(tap) = self.tap.as_mut() else { return };
        let live: Vec<TrackId> = self.members.values().flat_map(|m| m.tracks().map(|(t, _, _)| t)).collect();
        tap.feeds.retain(|(t, _, _)| live.contains(t));
        self.send_sources(cx);
    }

    /// The worker composes at up to 1280×720: it gets the best layer of
    /// each video being sent. Returns the layers it waits for.
    pub(super) fn tap_allocate(&mut self, sources: &[VideoSource]) -> Vec<(TrackId, u8)> {
        let Some(tap) = self.tap.as_mut() else { return Vec::new() };
        let mut awaited = Vec::new();
        for (track, _, switch) in &mut tap.feeds {
            let Ok(s) = sources.binary_search_by_key(track, |s| s.track) else { continue };
            let best = sources[s].rates.iter().rposition(Option::is_some).map(|l| l as u8);
            if best.is_some() && best != switch.target() {
                switch.set_target(best);
            }
            if let (true, Some(l)) = (switch.wants_keyframe(), switch.target()) {
                awaited.push((*track, l));
            }
        }
        awaited
    }

    pub(super) fn publisher_of(&self, track: TrackId) -> Option<ParticipantId> {
        self.members.iter().find(|(_, m)| m.tracks().any(|(t, _, _)| t == track)).map(|(id, _)| *id)
    }
}
