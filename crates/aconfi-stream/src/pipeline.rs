//! The GStreamer pipeline: a black canvas and silence that never stop, one
//! branch per source composited and mixed onto them, H.264 + AAC in FLV out
//! to `rtmp2sink`.
//!
//! Nothing here logs or returns GStreamer's own texts: errors become fixed
//! variants, so the URL cannot leak through them.

use crate::layout::{self, Rect};
use crate::protocol::{encoding_name, Codec, Emitter, Source};
use crate::rtp::{Route, Routes};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every element the pipeline can use, with the Debian package that has it.
pub const ELEMENTS: &[(&str, &str)] = &[
    ("appsrc", "gstreamer1.0-plugins-base"),
    ("audioconvert", "gstreamer1.0-plugins-base"),
    ("audiomixer", "gstreamer1.0-plugins-base"),
    ("audioresample", "gstreamer1.0-plugins-base"),
    ("audiotestsrc", "gstreamer1.0-plugins-base"),
    ("compositor", "gstreamer1.0-plugins-base"),
    ("opusdec", "gstreamer1.0-plugins-base"),
    ("videoconvert", "gstreamer1.0-plugins-base"),
    ("videoscale", "gstreamer1.0-plugins-base"),
    ("videotestsrc", "gstreamer1.0-plugins-base"),
    ("textoverlay", "gstreamer1.0-x"),
    ("aacparse", "gstreamer1.0-plugins-good"),
    ("flvmux", "gstreamer1.0-plugins-good"),
    ("rtph264depay", "gstreamer1.0-plugins-good"),
    ("rtpjitterbuffer", "gstreamer1.0-plugins-good"),
    ("rtpopusdepay", "gstreamer1.0-plugins-good"),
    ("rtpvp8depay", "gstreamer1.0-plugins-good"),
    ("vp8dec", "gstreamer1.0-plugins-good"),
    ("h264parse", "gstreamer1.0-plugins-bad"),
    ("rtmp2sink", "gstreamer1.0-plugins-bad"),
    ("voaacenc", "gstreamer1.0-plugins-bad"),
    ("x264enc", "gstreamer1.0-plugins-ugly"),
    ("avdec_h264", "gstreamer1.0-libav"),
    ("capsfilter", "libgstreamer1.0-0"),
    ("queue", "libgstreamer1.0-0"),
];

/// How long the jitter buffers wait for late or reordered packets.
const JITTER_LATENCY_MS: u32 = 200;
/// What the compositor and mixer assume branches may add in latency, so
/// that a branch plugged in later is not late by definition: jitter buffer
/// plus decoding, with room to spare.
const BRANCH_LATENCY: gst::ClockTime = gst::ClockTime::from_mseconds(600);
/// Size of a hidden tile: it is still decoded, so keep it cheap.
const HIDDEN: Rect = Rect { x: 0, y: 0, w: 160, h: 90 };

/// Why building or changing the pipeline failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// An element is missing or refused a setting.
    Element,
    /// The ingest URL is not one `rtmp2sink` accepts.
    Url,
    /// Elements would not link.
    Link,
}

impl From<glib::BoolError> for BuildError {
    fn from(_: glib::BoolError) -> Self {
        BuildError::Element
    }
}

impl From<gst::PadLinkError> for BuildError {
    fn from(_: gst::PadLinkError) -> Self {
        BuildError::Link
    }
}

/// Where a pipeline error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// One source's branch: drop that tile, keep streaming.
    Branch(u32),
    /// The FLV muxer or the RTMP sink: the ingest side.
    Output,
    /// Anything else (encoders, mixers, base sources).
    Other,
    /// An element that is no longer part of this pipeline.
    Stale,
}

struct Branch {
    source: Source,
    bin: gst::Bin,
    /// The compositor or mixer pad this branch feeds.
    mixer_pad: gst::Pad,
    /// Video only: the scaler's output size and the name label.
    size: Option<gst::Element>,
    label: Option<gst::Element>,
    rect: Option<Rect>,
}

pub struct Output {
    pub pipeline: gst::Pipeline,
    compositor: gst::Element,
    mixer: gst::Element,
    mux: gst::Element,
    sink: gst::Element,
    branches: HashMap<u32, Branch>,
    /// Bins are named uniquely so that a late message from a removed branch
    /// is never taken for its successor.
    serial: u64,
}

fn make(factory: &str) -> Result<gst::Element, BuildError> {
    Ok(gst::ElementFactory::make(factory).build()?)
}

fn capsfilter(caps: gst::Caps) -> Result<gst::Element, BuildError> {
    Ok(gst::ElementFactory::make("capsfilter").property("caps", caps).build()?)
}

fn video_caps(w: i32, h: i32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("width", w)
        .field("height", h)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build()
}

fn link_all(elements: &[&gst::Element]) -> Result<(), BuildError> {
    gst::Element::link_many(elements).map_err(|_| BuildError::Link)
}

/// Only `rtmp://` and `rtmps://` URLs are published to.
pub fn url_ok(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("rtmp://") || lower.starts_with("rtmps://")
}

impl Output {
    /// Builds the base pipeline (not yet playing). `insecure_tls` turns off
    /// certificate validation for RTMPS: tests only.
    pub fn new(url: &str, insecure_tls: bool) -> Result<Output, BuildError> {
        if !url_ok(url) {
            return Err(BuildError::Url);
        }
        let pipeline = gst::Pipeline::with_name("aconfi-stream");

        let canvas = gst::ElementFactory::make("videotestsrc")
            .property("is-live", true)
            .property_from_str("pattern", "black")
            .build()?;
        // The output frame, I420 all the way into the encoder: no
        // conversion of the full frame. The canvas is made in it too.
        let frame = gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", layout::WIDTH)
            .field("height", layout::HEIGHT)
            .field("framerate", gst::Fraction::new(30, 1))
            .build();
        let canvas_caps = capsfilter(frame.clone())?;
        let compositor = gst::ElementFactory::make("compositor")
            .property_from_str("background", "black")
            .property("ignore-inactive-pads", true)
            .property("min-upstream-latency", BRANCH_LATENCY.nseconds())
            .build()?;
        let out_caps = capsfilter(frame)?;
        let vconvert = make("videoconvert")?;
        let x264 = gst::ElementFactory::make("x264enc")
            .property_from_str("tune", "zerolatency")
            .property_from_str("speed-preset", "veryfast")
            .property("bitrate", 2500u32)
            // A keyframe every 2 s, and only then (YouTube's requirement).
            .property("key-int-max", 60u32)
            .property("option-string", "scenecut=0:nal-hrd=cbr")
            .build()?;
        let h264parse = make("h264parse")?;
        let vqueue = make("queue")?;

        let silence = gst::ElementFactory::make("audiotestsrc")
            .property("is-live", true)
            .property_from_str("wave", "silence")
            .property("samplesperbuffer", 960i32)
            .build()?;
        let audio_caps = gst::Caps::builder("audio/x-raw")
            .field("format", "S16LE")
            .field("layout", "interleaved")
            .field("rate", 48000i32)
            .field("channels", 2i32)
            .build();
        let silence_caps = capsfilter(audio_caps.clone())?;
        let mixer = gst::ElementFactory::make("audiomixer")
            .property("ignore-inactive-pads", true)
            .property("min-upstream-latency", BRANCH_LATENCY.nseconds())
            .build()?;
        let mixer_caps = capsfilter(audio_caps)?;
        let aconvert = make("audioconvert")?;
        let aresample = make("audioresample")?;
        let aac = gst::ElementFactory::make("voaacenc").property("bitrate", 128_000i32).build()?;
        let aacparse = make("aacparse")?;
        let aqueue = make("queue")?;

        let mux = gst::ElementFactory::make("flvmux").property("streamable", true).build()?;
        let sink = make("rtmp2sink")?;
        // Set through the URI handler: a bad URL is an error here instead of
        // a silent fallback to the element's default location.
        sink.dynamic_cast_ref::<gst::URIHandler>()
            .ok_or(BuildError::Element)?
            .set_uri(url)
            .map_err(|_| BuildError::Url)?;
        if insecure_tls {
            sink.set_property_from_str("tls-validation-flags", "no-flags");
        }

        pipeline.add_many([
            &canvas,
            &canvas_caps,
            &compositor,
            &out_caps,
            &vconvert,
            &x264,
            &h264parse,
            &vqueue,
            &silence,
            &silence_caps,
            &mixer,
            &mixer_caps,
            &aconvert,
            &aresample,
            &aac,
            &aacparse,
            &aqueue,
            &mux,
            &sink,
        ])?;
        link_all(&[&canvas, &canvas_caps])?;
        let base = compositor.request_pad_simple("sink_%u").ok_or(BuildError::Link)?;
        base.set_property("zorder", 0u32);
        canvas_caps.static_pad("src").ok_or(BuildError::Link)?.link(&base)?;
        link_all(&[&compositor, &out_caps, &vconvert, &x264, &h264parse, &vqueue, &mux])?;
        link_all(&[&silence, &silence_caps])?;
        let base = mixer.request_pad_simple("sink_%u").ok_or(BuildError::Link)?;
        silence_caps.static_pad("src").ok_or(BuildError::Link)?.link(&base)?;
        link_all(&[&mixer, &mixer_caps, &aconvert, &aresample, &aac, &aacparse, &aqueue, &mux, &sink])?;

        Ok(Output { pipeline, compositor, mixer, mux, sink, branches: HashMap::new(), serial: 0 })
    }

    /// Starts the pipeline. The clock and base time are fixed on every
    /// element first: when they are left to the state change, GStreamer
    /// 1.22's aggregators can run once with the clock already set but base
    /// time still 0, take that for a huge timeout and send EOS at once (the
    /// stream then has no audio, or never starts).
    pub fn play(&self) -> bool {
        let clock = gst::SystemClock::obtain();
        self.pipeline.use_clock(Some(&clock));
        // No start time: the state change keeps the base time set here.
        self.pipeline.set_start_time(gst::ClockTime::NONE);
        let base = clock.time();
        self.pipeline.set_base_time(base);
        for element in self.pipeline.iterate_recurse().into_iter().flatten() {
            element.set_base_time(base);
            element.set_start_time(gst::ClockTime::NONE);
        }
        self.pipeline.set_state(gst::State::Playing).is_ok()
    }

    /// Bytes the RTMP connection has sent. `rtmp2sink` only has a connection
    /// once the ingest accepted the publish, so growth here is real.
    pub fn bytes_out(&self) -> u64 {
        let stats = self.sink.property::<Option<gst::Structure>>("stats");
        stats.and_then(|s| s.get::<u64>("out-bytes-total").ok()).unwrap_or(0)
    }

    pub fn has_branch(&self, ssrc: u32) -> bool {
        self.branches.contains_key(&ssrc)
    }

    pub fn branch_ssrcs(&self) -> Vec<u32> {
        self.branches.keys().copied().collect()
    }

    /// The source a branch was built for.
    pub fn branch_source(&self, ssrc: u32) -> Option<&Source> {
        self.branches.get(&ssrc).map(|b| &b.source)
    }

    /// Adds the branch for `source`, routes its RTP to it, and asks for a
    /// keyframe if it is video.
    pub fn add(&mut self, source: &Source, routes: &Routes, emitter: &Arc<Emitter>) -> Result<(), BuildError> {
        self.serial += 1;
        let bin = gst::Bin::with_name(&format!("branch-{}-{}", source.ssrc, self.serial));
        let caps = gst::Caps::builder("application/x-rtp")
            .field("media", if source.is_video() { "video" } else { "audio" })
            .field("encoding-name", encoding_name(source.codec))
            .field("clock-rate", source.clock_rate as i32)
            .field("payload", source.pt as i32)
            .build();
        let appsrc = gst_app::AppSrc::builder()
            .caps(&caps)
            .is_live(true)
            .do_timestamp(true)
            .format(gst::Format::Time)
            .max_bytes(2 << 20)
            // Never block the RTP reader: drop the oldest packets instead.
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .build();
        let jitter = gst::ElementFactory::make("rtpjitterbuffer")
            .property("latency", JITTER_LATENCY_MS)
            .property("do-lost", true)
            .build()?;
        let mut chain: Vec<gst::Element> = vec![appsrc.clone().upcast(), jitter];
        let (mut size, mut label) = (None, None);
        match source.codec {
            Codec::Vp8 | Codec::H264 => {
                let (depay, dec) =
                    if source.codec == Codec::Vp8 { ("rtpvp8depay", "vp8dec") } else { ("rtph264depay", "avdec_h264") };
                chain.push(
                    gst::ElementFactory::make(depay)
                        .property("request-keyframe", true)
                        .property("wait-for-keyframe", true)
                        .build()?,
                );
                if source.codec == Codec::H264 {
                    chain.push(make("h264parse")?);
                }
                // A corrupt stream costs frames, not the whole output: the
                // decoder drops what it cannot decode and asks for a keyframe.
                chain.push(
                    gst::ElementFactory::make(dec)
                        .property("max-errors", -1i32)
                        .property("discard-corrupted-frames", true)
                        .property("automatic-request-sync-points", true)
                        .build()?,
                );
                chain.push(make("videoconvert")?);
                // The scaler letterboxes into the tile, so the label is drawn
                // at the size it is seen.
                chain.push(make("videoscale")?);
                let caps = capsfilter(video_caps(HIDDEN.w, HIDDEN.h))?;
                chain.push(caps.clone());
                size = Some(caps);
                let text = gst::ElementFactory::make("textoverlay")
                    .property("text", source.label())
                    .property("font-desc", "Sans Bold 18")
                    .property_from_str("valignment", "bottom")
                    .property_from_str("halignment", "left")
                    .property("shaded-background", true)
                    .property("auto-resize", false)
                    .property("xpad", 8i32)
                    .property("ypad", 6i32)
                    .build()?;
                chain.push(text.clone());
                label = Some(text);
            }
            Codec::Opus => {
                chain.push(make("rtpopusdepay")?);
                chain.push(gst::ElementFactory::make("opusdec").property("plc", true).build()?);
                chain.push(make("audioconvert")?);
                chain.push(make("audioresample")?);
            }
        }
        // Decouples decoding from the mixer; old frames go first when the
        // mixer falls behind.
        chain.push(
            gst::ElementFactory::make("queue")
                .property("max-size-buffers", 8u32)
                .property("max-size-bytes", 0u32)
                .property("max-size-time", 0u64)
                .property_from_str("leaky", "downstream")
                .build()?,
        );
        bin.add_many(&chain)?;
        gst::Element::link_many(&chain).map_err(|_| BuildError::Link)?;
        let last = chain.last().ok_or(BuildError::Link)?;
        let ghost = gst::GhostPad::with_target(&last.static_pad("src").ok_or(BuildError::Link)?)?;
        bin.add_pad(&ghost)?;

        if source.is_video() {
            // Depayloaders and decoders ask upstream for keyframes; the server
            // turns our request into a PLI to the publisher.
            let (emitter, ssrc) = (emitter.clone(), source.ssrc);
            let pad = appsrc.static_pad("src").ok_or(BuildError::Link)?;
            pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                if let Some(gst::PadProbeData::Event(event)) = &info.data {
                    if event.structure().is_some_and(|s| s.name() == "GstForceKeyUnit") {
                        emitter.keyframe(ssrc);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }

        let aggregator = if source.is_video() { &self.compositor } else { &self.mixer };
        let mixer_pad = aggregator.request_pad_simple("sink_%u").ok_or(BuildError::Link)?;
        if source.is_video() {
            mixer_pad.set_property("zorder", 1u32);
            mixer_pad.set_property_from_str("sizing-policy", "keep-aspect-ratio");
            mixer_pad.set_property("alpha", 0.0f64);
        }
        let added = self.pipeline.add(&bin).map_err(BuildError::from).and_then(|()| Ok(ghost.link(&mixer_pad)?));
        if let Err(e) = added {
            aggregator.release_request_pad(&mixer_pad);
            let _ = self.pipeline.remove(&bin);
            return Err(e);
        }
        bin.sync_state_with_parent()?;
        // Branches add latency: let the pipeline take it into account.
        let _ = self.pipeline.recalculate_latency();

        let route = Route { appsrc, video: source.is_video(), seen: AtomicBool::new(false) };
        routes.write().unwrap_or_else(|e| e.into_inner()).insert(source.ssrc, route);
        self.branches.insert(source.ssrc, Branch { source: source.clone(), bin, mixer_pad, size, label, rect: None });
        if source.is_video() {
            emitter.keyframe(source.ssrc);
        }
        Ok(())
    }

    /// Removes a branch without interrupting the output.
    pub fn remove(&mut self, ssrc: u32, routes: &Routes) {
        routes.write().unwrap_or_else(|e| e.into_inner()).remove(&ssrc);
        let Some(branch) = self.branches.remove(&ssrc) else { return };
        let ghost = branch.bin.static_pad("src");
        if let Some(ghost) = &ghost {
            // Whatever is still flowing is dropped quietly instead of hitting
            // an unlinked pad, which the queue would report as an error.
            ghost.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST, |_, _| {
                gst::PadProbeReturn::Drop
            });
        }
        let aggregator = if branch.source.is_video() { &self.compositor } else { &self.mixer };
        // Releasing the pad flushes it, which also frees a push blocked in it.
        aggregator.release_request_pad(&branch.mixer_pad);
        let _ = branch.bin.set_state(gst::State::Null);
        let _ = self.pipeline.remove(&branch.bin);
    }

    /// Updates every video branch's tile and label.
    pub fn apply_layout(&mut self, order: &[Source]) {
        let videos: Vec<(u32, crate::protocol::Kind)> = order
            .iter()
            .filter(|s| s.is_video() && self.branches.contains_key(&s.ssrc))
            .map(|s| (s.ssrc, s.kind))
            .collect();
        for (ssrc, rect) in layout::layout(&videos) {
            let Some(branch) = self.branches.get_mut(&ssrc) else { continue };
            if let Some(label) = &branch.label {
                label.set_property("text", branch.source.label());
            }
            if branch.rect == rect && branch.rect.is_some() {
                continue;
            }
            let tile = rect.unwrap_or(HIDDEN);
            if let Some(size) = &branch.size {
                size.set_property("caps", video_caps(tile.w, tile.h));
            }
            if let Some(label) = &branch.label {
                label.set_property("font-desc", format!("Sans Bold {}", layout::font_size(tile.h)));
            }
            let pad = &branch.mixer_pad;
            pad.set_property("xpos", tile.x);
            pad.set_property("ypos", tile.y);
            pad.set_property("width", tile.w);
            pad.set_property("height", tile.h);
            pad.set_property("alpha", if rect.is_some() { 1.0f64 } else { 0.0 });
            branch.rect = rect;
        }
    }

    /// Updates the label of a branch whose source changed only its name.
    pub fn relabel(&mut self, source: &Source) {
        if let Some(branch) = self.branches.get_mut(&source.ssrc) {
            branch.source = source.clone();
        }
    }

    /// Where the element that posted a message sits.
    pub fn classify(&self, src: Option<&gst::Object>) -> ErrorSource {
        let Some(src) = src else { return ErrorSource::Other };
        let mut node: Option<gst::Object> = Some(src.clone());
        while let Some(obj) = node {
            if let Some((ssrc, _)) = self.branches.iter().find(|(_, b)| b.bin.upcast_ref::<gst::Object>() == &obj) {
                return ErrorSource::Branch(*ssrc);
            }
            if obj == *self.sink.upcast_ref::<gst::Object>() || obj == *self.mux.upcast_ref::<gst::Object>() {
                return ErrorSource::Output;
            }
            if obj == *self.pipeline.upcast_ref::<gst::Object>() {
                return ErrorSource::Other;
            }
            node = obj.parent();
        }
        // Its chain of parents does not reach this pipeline: a removed branch.
        ErrorSource::Stale
    }

    /// Ends the stream cleanly (EOS through the muxer, so the ingest sees the
    /// publish end) within `timeout`, then stops everything.
    pub fn shutdown(self, routes: &Routes, timeout: Duration) {
        routes.write().unwrap_or_else(|e| e.into_inner()).clear();
        let bus = self.pipeline.bus();
        if self.pipeline.send_event(gst::event::Eos::new()) {
            if let Some(bus) = bus {
                let deadline = Instant::now() + timeout;
                while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                    let msg = bus.timed_pop_filtered(
                        gst::ClockTime::from_nseconds(left.as_nanos() as u64),
                        &[gst::MessageType::Eos, gst::MessageType::Error],
                    );
                    match msg.as_ref().map(|m| m.view()) {
                        Some(gst::MessageView::Error(e)) if self.classify(e.src()) != ErrorSource::Output => continue,
                        _ => break,
                    }
                }
            }
        }
        self.stop();
    }

    /// Stops at once (for rebuilds, where the connection is gone anyway).
    pub fn stop(self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
