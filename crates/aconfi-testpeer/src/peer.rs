//! One WebRTC session in RTP mode with synthetic senders and counting
//! receivers: the media half of a client, whatever server it talks to.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use aconfi_core::codec::negotiated_pt;
use aconfi_core::str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use aconfi_core::str0m::format::Codec;
use aconfi_core::str0m::media::{Direction, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer};
use aconfi_core::str0m::net::{Protocol, Receive};
use aconfi_core::str0m::rtp::{ExtensionValues, RtpWrite};
use aconfi_core::str0m::{Candidate, Event, Input, Output, Rtc};
use aconfi_core::{Datagram, Kind};

use crate::capture::{Frame, FrameCapture};
use crate::media::{
    layer_of, micros_since, stamp_of, AudioSource, MediaConfig, VideoSource, AUDIO_INTERVAL, SIMULCAST_LAYERS,
};
use crate::stats::TrackStats;
use crate::ClientError;

struct Sender {
    mid: Mid,
    /// The simulcast layer it sends, if any.
    rid: Option<Rid>,
    seq: u64,
    rtp_time: u32,
    next_due: Instant,
    pt: Option<Pt>,
}

/// The media half of a client.
pub struct MediaPeer {
    rtc: Rtc,
    out: VecDeque<Datagram>,
    timeout: Instant,
    epoch: Instant,
    pending: Option<SdpPendingOffer>,
    audio: Option<(Sender, AudioSource)>,
    /// One sender per simulcast layer (lowest first), or one.
    video: Vec<(Sender, VideoSource)>,
    recv: HashMap<Mid, (Kind, TrackStats)>,
    publishing: bool,
    config: MediaConfig,
    seed: u64,
    /// Whole received frames, when asked for.
    capture: Option<FrameCapture>,
    /// The level (dBov) written into each audio packet's header, as a
    /// browser does (RFC 6464); none by default.
    audio_level: Option<i8>,
}

impl MediaPeer {
    /// A session bound to `local`; latency stamps count from `epoch`, which
    /// every peer measuring against each other must share.
    pub fn new(local: SocketAddr, now: Instant, epoch: Instant, config: MediaConfig, seed: u64) -> Self {
        let builder = Rtc::builder().set_rtp_mode(true).clear_codecs().enable_opus(true, false);
        let mut rtc = if config.h264 { builder.enable_h264(true) } else { builder.enable_vp8(true) }.build(now);
        if let Ok(c) = Candidate::host(local, "udp") {
            rtc.add_local_candidate(c);
        }
        MediaPeer {
            rtc,
            out: VecDeque::new(),
            timeout: now,
            epoch,
            pending: None,
            audio: None,
            video: Vec::new(),
            recv: HashMap::new(),
            publishing: true,
            config,
            seed,
            capture: None,
            audio_level: None,
        }
    }

    /// Our offer: audio and video to publish, or (`publish` false) a single
    /// receive-only m-line so the offer is not empty.
    pub fn create_offer(&mut self, publish: bool, now: Instant) -> Result<String, ClientError> {
        let mut api = self.rtc.sdp_api();
        if publish {
            let a = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
            let layers: Vec<(Option<Rid>, u32, u16)> = if self.config.simulcast {
                SIMULCAST_LAYERS
                    .iter()
                    .map(|(rid, num, den, scale)| {
                        (Some(Rid::from(*rid)), self.config.video_bitrate * num / den, *scale)
                    })
                    .collect()
            } else {
                vec![(None, self.config.video_bitrate, 1)]
            };
            let simulcast = self.config.simulcast.then(|| {
                let mut s = Simulcast::new();
                for (rid, ..) in &layers {
                    s.add_send_layer(SimulcastLayer::new(&rid.map(|r| r.to_string()).unwrap_or_default()));
                }
                s
            });
            let v = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, simulcast);
            let sender = |mid, rid| Sender { mid, rid, seq: 1, rtp_time: 0, next_due: now, pt: None };
            self.audio = Some((sender(a, None), AudioSource::new(self.config.audio_bytes)));
            self.video = layers
                .into_iter()
                .enumerate()
                .map(|(i, (rid, bitrate, scale))| {
                    let config = MediaConfig { video_bitrate: bitrate, ..self.config };
                    let mut source = VideoSource::new(config, self.seed.wrapping_add(i as u64));
                    let scale = u32::from(scale);
                    source.size = (config.camera.0 / scale, config.camera.1 / scale);
                    source.fill = rid.and_then(|r| r.to_string().bytes().next());
                    (sender(v, rid), source)
                })
                .collect();
        } else {
            self.publishing = false;
            api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        }
        let (offer, pending) = api.apply().ok_or(ClientError::Unexpected("no offer"))?;
        self.pending = Some(pending);
        let sdp = offer.to_sdp_string();
        self.drain(now)?;
        Ok(sdp)
    }

    /// The answer to our offer.
    pub fn accept_answer(&mut self, sdp: &str, now: Instant) -> Result<(), ClientError> {
        let pending = self.pending.take().ok_or(ClientError::Unexpected("answer"))?;
        let answer = SdpAnswer::from_sdp_string(sdp)?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        self.drain(now)
    }

    /// A remote offer; returns our answer.
    pub fn accept_offer(&mut self, sdp: &str, now: Instant) -> Result<String, ClientError> {
        let offer = SdpOffer::from_sdp_string(sdp)?;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        self.drain(now)?;
        Ok(answer.to_sdp_string())
    }

    /// From now on, audio packets say they are this loud (dBov, -127
    /// silence … 0 loudest), or carry no level.
    pub fn set_audio_level(&mut self, level: Option<i8>) {
        self.audio_level = level;
    }

    /// Stops or resumes sending on the timer (`send_frame` still works).
    pub fn set_publishing(&mut self, on: bool) {
        self.publishing = on;
    }

    /// Receive statistics by m-line.
    pub fn recv_stats(&self) -> &HashMap<Mid, (Kind, TrackStats)> {
        &self.recv
    }

    /// Forgets latency samples and layer counts so far on every track
    /// (start of a measurement window).
    pub fn start_window(&mut self) {
        for (_, st) in self.recv.values_mut() {
            st.start_window();
        }
    }

    /// Keeps every received frame whole, for [`MediaPeer::poll_frame`].
    pub fn enable_capture(&mut self) {
        let h264 = self.config.h264;
        self.capture.get_or_insert_with(|| FrameCapture::new(h264));
    }

    /// The next received frame, if capturing.
    pub fn poll_frame(&mut self) -> Option<Frame> {
        self.capture.as_mut()?.poll()
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.out.pop_front()
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.timeout;
        if self.publishing && self.rtc.is_connected() {
            for s in self.audio.iter().map(|a| &a.0).chain(self.video.first().map(|v| &v.0)) {
                t = t.min(s.next_due);
            }
        }
        t
    }

    /// A datagram from the server.
    pub fn handle_receive(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
        now: Instant,
    ) -> Result<(), ClientError> {
        let Ok(r) = Receive::new(Protocol::Udp, source, destination, contents) else {
            return Ok(());
        };
        self.rtc.handle_input(Input::Receive(now, r))?;
        self.drain(now)
    }

    /// Time passed: drive str0m and send what is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ClientError> {
        self.rtc.handle_input(Input::Timeout(now))?;
        self.drain(now)?;
        if !self.publishing || !self.rtc.is_connected() {
            return Ok(());
        }
        if self.audio.as_ref().is_some_and(|a| a.0.next_due <= now) {
            self.send_frame(Kind::Audio, now)?;
        }
        if self.video.first().is_some_and(|v| v.0.next_due <= now) {
            self.send_frame(Kind::Video, now)?;
        }
        Ok(())
    }

    /// Sends one frame of `kind` now (of every simulcast layer).
    pub fn send_frame(&mut self, kind: Kind, now: Instant) -> Result<(), ClientError> {
        let stamp = micros_since(self.epoch, now);
        let mut frames = Vec::new();
        match kind {
            Kind::Audio => {
                let Some((s, src)) = self.audio.as_mut() else { return Ok(()) };
                s.next_due += AUDIO_INTERVAL;
                frames.push((0, src.frame(stamp)));
            }
            Kind::Video => {
                for (i, (s, src)) in self.video.iter_mut().enumerate() {
                    s.next_due += src.interval();
                    frames.push((i, src.frame(stamp)));
                }
            }
        }
        let codec = match kind {
            Kind::Video if self.config.h264 => Codec::H264,
            Kind::Video => Codec::Vp8,
            Kind::Audio => Codec::Opus,
        };
        for (i, frame) in frames {
            let sender = match kind {
                Kind::Audio => match self.audio.as_mut() {
                    Some((s, _)) => s,
                    None => continue,
                },
                Kind::Video => &mut self.video[i].0,
            };
            // A timer that fell far behind (a stalled process) does not burst.
            if sender.next_due < now {
                sender.next_due = now;
            }
            if sender.pt.is_none() {
                // H.264: the fragmenting mode (1), as browsers send.
                sender.pt = negotiated_pt(&self.rtc, sender.mid, |s| {
                    s.codec == codec && (codec != Codec::H264 || s.format.packetization_mode == Some(1))
                });
            }
            let Some(pt) = sender.pt else { continue };
            let (mid, rid) = (sender.mid, sender.rid);
            sender.rtp_time = sender.rtp_time.wrapping_add(frame.rtp_step);
            let rtp_time = sender.rtp_time;
            let n = frame.payloads.len();
            let first = sender.seq;
            sender.seq += n as u64;
            for (seq, (i, payload)) in (first..).zip(frame.payloads.into_iter().enumerate()) {
                let mut write = RtpWrite::new(pt, seq.into(), rtp_time, now, payload)
                    .marker(i + 1 == n)
                    .nackable(kind == Kind::Video);
                if kind == Kind::Audio {
                    let voice_activity = self.audio_level.map(|l| l > -50);
                    write = write.ext_vals(ExtensionValues {
                        audio_level: self.audio_level,
                        voice_activity,
                        ..Default::default()
                    });
                }
                if let Some(tx) = self.rtc.direct_api().stream_tx_by_mid(mid, rid) {
                    tx.write_rtp(write);
                }
                self.drain(now)?;
            }
        }
        // str0m holds written packets until time advances: release them.
        self.rtc.handle_input(Input::Timeout(now))?;
        self.drain(now)
    }

    fn drain(&mut self, now: Instant) -> Result<(), ClientError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => {
                    self.timeout = t.max(now);
                    return Ok(());
                }
                Output::Transmit(t) => self.out.push_back(Datagram {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.into(),
                }),
                Output::Event(Event::RtpPacket(p)) => {
                    let Some(mid) = self.rtc.direct_api().stream_rx(&p.header.ssrc).map(|s| s.mid()) else {
                        continue;
                    };
                    let kind = match self.rtc.media(mid).map(|m| m.kind()) {
                        Some(MediaKind::Video) => Kind::Video,
                        _ => Kind::Audio,
                    };
                    let video = kind == Kind::Video;
                    if let Some(c) = self.capture.as_mut() {
                        c.push(mid, kind, *p.seq_no, p.header.timestamp, p.header.marker, &p.payload);
                    }
                    let (_, st) = self.recv.entry(mid).or_insert_with(|| (kind, TrackStats::default()));
                    let fresh = st.record_packet(*p.seq_no, p.payload.len(), !video || p.header.marker, p.timestamp);
                    if fresh {
                        if let Some(stamp) = stamp_of(video, &p.payload) {
                            st.record_latency(micros_since(self.epoch, p.timestamp).saturating_sub(stamp));
                        }
                        if let Some(layer) = layer_of(&p.payload).filter(|_| video) {
                            st.record_layer(layer);
                        }
                    }
                }
                Output::Event(Event::KeyframeRequest(r)) => {
                    for (s, v) in &mut self.video {
                        if r.rid.is_none() || r.rid == s.rid {
                            v.keyframe_wanted = true;
                        }
                    }
                }
                Output::Event(_) => {}
            }
        }
    }
}
