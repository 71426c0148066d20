//! This worker's side of the JSON-lines control protocol with the A-Confi
//! server, whose lines are defined once in `aconfi-stream-protocol`: reading
//! stdin in bounded lines, checking the sources, writing events.
//!
//! Everything the worker writes goes through [`Emitter`], which only ever
//! serialises the fixed [`Event`]s: no free text from GStreamer can reach
//! stdout, so the ingest URL (which holds the stream key) cannot leak.

use aconfi_stream_protocol::Event;
pub use aconfi_stream_protocol::{Codec, Command, Kind, Reason, Source as RawSource, State};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A control line is at most this long; longer lines are skipped whole, so a
/// runaway writer cannot make the worker buffer without bound.
pub const MAX_LINE: usize = 1 << 20;

/// Keyframe requests for one SSRC are sent at most this often: the server
/// turns each into a PLI to the publisher.
const KEYFRAME_THROTTLE: Duration = Duration::from_millis(500);

/// The `encoding-name` of the RTP caps for `codec`.
pub fn encoding_name(codec: Codec) -> &'static str {
    match codec {
        Codec::Vp8 => "VP8",
        Codec::H264 => "H264",
        Codec::Opus => "OPUS",
    }
}

/// A source as the server describes it ([`RawSource`]) once [`validate`]
/// has accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub ssrc: u32,
    pub person: u64,
    pub name: String,
    pub kind: Kind,
    pub codec: Codec,
    pub pt: u8,
    pub clock_rate: u32,
}

impl Source {
    pub fn is_video(&self) -> bool {
        self.kind != Kind::Audio
    }

    /// Whether a branch built for `self` can keep serving `other` (only the
    /// label may differ).
    pub fn same_media(&self, other: &Source) -> bool {
        self.kind == other.kind
            && self.codec == other.codec
            && self.pt == other.pt
            && self.clock_rate == other.clock_rate
    }

    /// The text drawn on the tile.
    pub fn label(&self) -> String {
        match self.kind {
            Kind::Screen => format!("{} (screen)", self.name),
            _ => self.name.clone(),
        }
    }
}

/// `None` for a source this worker cannot show or mix: an unknown kind, a
/// codec it has no decoder for, or a codec that does not fit the kind.
pub fn validate(raw: RawSource) -> Option<Source> {
    let (kind, codec) = (raw.kind()?, raw.codec()?);
    let fits = match kind {
        Kind::Audio => codec == Codec::Opus,
        Kind::Camera | Kind::Screen => codec != Codec::Opus,
    };
    // RTP payload types are 7 bits; 0 is no clock rate at all.
    if !fits || raw.pt > 127 || raw.clock_rate == 0 {
        return None;
    }
    // Names are shown, never interpreted: drop control characters and
    // keep them short enough to fit a tile.
    let name: String = raw.name.chars().filter(|c| !c.is_control()).take(64).collect();
    Some(Source { ssrc: raw.ssrc, person: raw.person, name, kind, codec, pt: raw.pt, clock_rate: raw.clock_rate })
}

/// Parses the sources list: invalid entries and repeated SSRCs (the first
/// wins) are dropped, the order is kept because it is the layout order.
pub fn validate_sources(raw: Vec<RawSource>) -> Vec<Source> {
    let mut out: Vec<Source> = Vec::with_capacity(raw.len());
    for source in raw.into_iter().filter_map(validate) {
        if !out.iter().any(|s| s.ssrc == source.ssrc) {
            out.push(source);
        }
    }
    out
}

/// One line of stdin, or why there is none.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// A line longer than [`MAX_LINE`] or not UTF-8: skipped.
    Bad,
}

/// Reads one line of at most [`MAX_LINE`] bytes; `None` at end of input (or
/// when reading fails, which for a pipe means the same thing).
pub fn read_line(input: &mut impl BufRead) -> Option<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        if chunk.is_empty() {
            // End of input: a last line without newline still counts.
            return if line.is_empty() && !too_long { None } else { Some(finish(line, too_long)) };
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            let body = if done { &chunk[..take - 1] } else { &chunk[..take] };
            if line.len() + body.len() > MAX_LINE {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(body);
            }
        }
        input.consume(take);
        if done {
            return Some(finish(line, too_long));
        }
    }
}

fn finish(line: Vec<u8>, too_long: bool) -> Line {
    if too_long {
        return Line::Bad;
    }
    match String::from_utf8(line) {
        Ok(s) => Line::Text(s),
        Err(_) => Line::Bad,
    }
}

/// Writes events to stdout, one JSON object per line, flushed. Shared by the
/// controller, the RTP thread and GStreamer's streaming threads.
pub struct Emitter {
    out: Mutex<Box<dyn Write + Send>>,
    last_keyframe: Mutex<HashMap<u32, Instant>>,
}

impl Emitter {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Emitter { out: Mutex::new(out), last_keyframe: Mutex::new(HashMap::new()) }
    }

    fn write(&self, event: Event) {
        let line = event.to_line();
        // A poisoned lock only means another thread panicked mid-write; the
        // writer itself is still usable.
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // Write errors mean the server is gone; stdin EOF will stop us.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }

    pub fn ready(&self, port: u16) {
        self.write(Event::Ready { port });
    }

    pub fn state(&self, state: State, reason: Option<Reason>) {
        self.write(Event::State { state, reason });
    }

    /// Asks for a keyframe on `ssrc` unless one was asked for less than
    /// [`KEYFRAME_THROTTLE`] ago. Returns whether a line was written.
    pub fn keyframe(&self, ssrc: u32) -> bool {
        let now = Instant::now();
        {
            let mut last = self.last_keyframe.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = last.get(&ssrc) {
                if now.duration_since(*t) < KEYFRAME_THROTTLE {
                    return false;
                }
            }
            last.insert(ssrc, now);
        }
        self.write(Event::Keyframe { ssrc });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::Arc;

    #[test]
    fn parses_commands() {
        let start = Command::parse(
            r#"{"cmd":"start","url":"rtmp://h/live/k","connect":"192.0.2.1:1935","peer":"127.0.0.1:4000"}"#,
        )
        .unwrap();
        assert!(matches!(start, Command::Start { peer, .. } if peer.port() == 4000));
        let stop = Command::parse(r#"{"cmd":"stop"}"#).unwrap();
        assert!(matches!(stop, Command::Stop));
        assert!(Command::parse(r#"{"cmd":"dance"}"#).is_err());
    }

    #[test]
    fn validates_sources() {
        let raw = Command::parse(
            r#"{"cmd":"sources","sources":[
                {"ssrc":1,"person":3,"name":"Ada\u0007","kind":"camera","codec":"vp8","pt":96,"clock_rate":90000},
                {"ssrc":2,"person":3,"name":"Ada","kind":"audio","codec":"OPUS","pt":111,"clock_rate":48000},
                {"ssrc":1,"person":9,"name":"Dup","kind":"camera","codec":"VP8","pt":96,"clock_rate":90000},
                {"ssrc":4,"person":3,"name":"Ada","kind":"camera","codec":"AV1","pt":45,"clock_rate":90000},
                {"ssrc":5,"person":3,"name":"Ada","kind":"audio","codec":"VP8","pt":96,"clock_rate":90000},
                {"ssrc":6,"person":4,"name":"Bob","kind":"screen","codec":"H264","pt":102,"clock_rate":90000}
            ]}"#,
        )
        .unwrap();
        let Command::Sources { sources } = raw else { panic!("not a sources command") };
        let sources = validate_sources(sources);
        assert_eq!(sources.iter().map(|s| s.ssrc).collect::<Vec<_>>(), vec![1, 2, 6]);
        assert_eq!(sources[0].name, "Ada");
        assert_eq!(sources[2].label(), "Bob (screen)");
        assert_eq!(sources[2].codec, Codec::H264);
    }

    #[test]
    fn reads_bounded_lines() {
        let mut text = b"one\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        text.extend_from_slice(b"\n\xff\xfe\nlast");
        let mut input = Cursor::new(text);
        assert_eq!(read_line(&mut input), Some(Line::Text("one".into())));
        assert_eq!(read_line(&mut input), Some(Line::Bad));
        assert_eq!(read_line(&mut input), Some(Line::Bad));
        assert_eq!(read_line(&mut input), Some(Line::Text("last".into())));
        assert_eq!(read_line(&mut input), None);
    }

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn emits_lines_and_throttles_keyframes() {
        let sink = Sink::default();
        let emitter = Emitter::new(Box::new(sink.clone()));
        emitter.ready(4000);
        emitter.state(State::Reconnecting, Some(Reason::IngestClosed));
        assert!(emitter.keyframe(7));
        assert!(!emitter.keyframe(7));
        assert!(emitter.keyframe(8));
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0], serde_json::json!({"ev":"ready","port":4000}));
        assert_eq!(
            lines[1],
            serde_json::json!({"ev":"state","state":"reconnecting","reason":"the ingest closed the connection"})
        );
        assert_eq!(lines[2], serde_json::json!({"ev":"keyframe","ssrc":7}));
        assert_eq!(lines.len(), 4);
    }
}
