//! What the server logs during a meeting, with the binary's own log filter:
//! at the default level (`info`) nothing about any meeting — only start,
//! stop, errors and aggregate counts; per-room and per-participant events
//! only at `debug`, and even there no name, room name, chat text, password
//! or address.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use aconfi_core::protocol::PROTOCOL_VERSION;
use aconfi_core::{ClientMsg, Kind, ServerMsg};
use common::{send, until, RealPeer};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

const ROOM: &str = "quarterly-numbers";
const SECRET_ROOM: &str = "secret-board";
const NAMES: [&str; 4] = ["Alice Example", "Bob Example", "Mona Moderator", "Gus Guesser"];
const PASSWORD: &str = "tangerine-falcon";
const WRONG: &str = "wrong-guess-123";
const CHAT: &str = "the launch code is 8812";

/// Everything written to it, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn join(room: &str, name: &str, password: Option<&str>) -> ClientMsg {
    ClientMsg::Join {
        version: PROTOCOL_VERSION,
        room: room.into(),
        name: Some(name.into()),
        audio_muted: false,
        video_muted: false,
        password: password.map(str::to_string),
        e2ee: false,
    }
}

/// A meeting with media, a password guessed wrong then right, a chat
/// message, a malformed message, everyone leaving, and the server stopping.
async fn meeting() {
    let server = common::server().await;
    let mut a = RealPeer::join(&server, ROOM, Some(NAMES[0])).await;
    let mut b = RealPeer::join(&server, ROOM, Some(NAMES[1])).await;
    let (ia, ib) = (
        a.wait_for("a in", |s| s.id.is_some()).await.id.unwrap(),
        b.wait_for("b in", |s| s.id.is_some()).await.id.unwrap(),
    );
    a.wait_for("media from b", |s| s.got(ib, Kind::Video) >= 10).await;
    b.wait_for("media from a", |s| s.got(ia, Kind::Video) >= 10).await;

    let mut m = common::ws(&server).await;
    send(&mut m, &join(SECRET_ROOM, NAMES[2], None)).await;
    until(&mut m, |x| matches!(x, ServerMsg::Joined { .. }).then_some(())).await;
    send(&mut m, &ClientMsg::SetPassword { password: Some(PASSWORD.into()) }).await;
    until(&mut m, |x| matches!(x, ServerMsg::RoomUpdated { room } if room.password).then_some(())).await;
    let mut g = common::ws(&server).await;
    send(&mut g, &join(SECRET_ROOM, NAMES[3], Some(WRONG))).await;
    until(&mut g, |x| matches!(x, ServerMsg::PasswordRequired { wrong: true, .. }).then_some(())).await;
    send(&mut g, &join(SECRET_ROOM, NAMES[3], Some(PASSWORD))).await;
    until(&mut g, |x| matches!(x, ServerMsg::Joined { .. }).then_some(())).await;
    send(&mut m, &ClientMsg::Chat { text: CHAT.into(), to: None, sealed: false }).await;
    until(&mut g, |x| matches!(x, ServerMsg::Chat { .. }).then_some(())).await;

    let mut bad = common::ws(&server).await;
    bad.send(Message::Text("{\"type\": \"nonsense\"".into())).await.unwrap();
    assert!(common::close_code(&mut bad).await.0.is_some());

    for ws in [&mut m, &mut g] {
        send(ws, &ClientMsg::Leave {}).await;
        common::close_code(ws).await;
    }
    a.leave().await;
    b.leave().await;
    a.wait_for("a closed", |s| s.closed.is_some()).await;
    b.wait_for("b closed", |s| s.closed.is_some()).await;
    server.shutdown().await;
}

/// Runs the meeting with the binary's filter at `level`; the log.
async fn log_of_meeting(level: &str) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(aconfi_server::log_filter(level))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // This test's runtime is single-threaded: every task logs through it.
    let guard = tracing::subscriber::set_default(subscriber);
    meeting().await;
    drop(guard);
    captured.text()
}

/// Nothing that identifies a meeting or a person, at any level.
fn assert_no_secrets(log: &str) {
    for secret in [ROOM, SECRET_ROOM, PASSWORD, WRONG, CHAT, "launch code", "127.0.0.1"].iter().chain(NAMES.iter()) {
        assert!(!log.contains(secret), "the log contains {secret:?}:\n{log}");
    }
    for name in NAMES {
        for word in name.split(' ') {
            assert!(!log.contains(word), "the log contains {word:?}:\n{log}");
        }
    }
}

#[tokio::test]
async fn at_the_default_level_nothing_about_a_meeting_is_logged() {
    let log = log_of_meeting("info").await;
    assert_no_secrets(&log);
    // Every line is one of the few the server says about itself.
    const ALLOWED: [&str; 5] = [
        "live streaming available",
        "live streaming unavailable",
        "media is reachable on loopback only",
        "media loop stopped",
        " in use",
    ];
    for line in log.lines() {
        assert!(ALLOWED.iter().any(|a| line.contains(a)), "not allowed at the default level: {line}");
        for word in ["room", "participant", "joined", "left", "password"] {
            // The allowed lines carry counts only (`rooms=0`), no ids.
            assert!(!line.contains(&format!("{word}=")), "per-meeting field in: {line}");
        }
    }
    assert!(log.contains("media loop stopped"), "the test sees the server's log:\n{log}");
}

#[tokio::test]
async fn at_debug_per_meeting_events_appear_with_opaque_ids_only() {
    let log = log_of_meeting("debug").await;
    assert_no_secrets(&log);
    for event in ["room opened", "joined", "left", "room closed", "wrong room password"] {
        assert!(log.contains(event), "{event:?} is logged at debug:\n{log}");
    }
}

/// What a log line says, without its values: level, message and field
/// names, as `docs/privacy.md` lists them (`INFO in use: rooms, participants`).
fn event_of(line: &str) -> Option<String> {
    // `<time>  <LEVEL> <target>: <message> <field>=<value> ...`
    let mut words = line.split_whitespace();
    let _time = words.next()?;
    let level = words.next()?;
    let _target = words.next()?;
    let rest: Vec<&str> = words.collect();
    let is_field = |w: &str| {
        w.split_once('=').is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    };
    let first_field = rest.iter().position(|w| is_field(w)).unwrap_or(rest.len());
    let message = rest[..first_field].join(" ");
    let fields: Vec<&str> =
        rest[first_field..].iter().filter(|w| is_field(w)).map(|w| w.split('=').next().unwrap_or("")).collect();
    Some(format!("{level} {message}: {}", fields.join(", ")).trim_end_matches(": ").to_string())
}

/// The events a privacy doc lists, from its `log-inventory` block.
fn inventory(doc: &str) -> Vec<String> {
    let path = format!("{}/../../docs/{doc}", env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let block =
        doc.split("```text log-inventory\n").nth(1).expect("a log-inventory block").split("```").next().unwrap_or("");
    block.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

fn documented() -> Vec<String> {
    inventory("privacy.md")
}

#[test]
fn the_german_privacy_doc_lists_the_same_log_events() {
    assert_eq!(inventory("privacy.de.md"), documented());
}

#[tokio::test]
async fn the_privacy_doc_lists_every_log_event_a_meeting_produces() {
    let documented = documented();
    let mut missing = std::collections::BTreeSet::new();
    for level in ["info", "debug"] {
        let log = log_of_meeting(level).await;
        for event in log.lines().filter_map(event_of) {
            if !documented.contains(&event) {
                missing.insert(event);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "log events docs/privacy.md does not list:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// Every log call in the server's and the core's code, as (LEVEL, message):
/// a scan of the source for `trace!`/`debug!`/`info!`/`warn!`/`error!`,
/// taking the call's message (its first string literal when it starts with
/// one, else its last: fields come first). Test modules are left out.
fn log_calls() -> Vec<(String, String, String)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut files = Vec::new();
    for dir in ["aconfi-server/src", "aconfi-core/src"] {
        let mut stack = vec![std::path::PathBuf::from(root).join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "rs") {
                    files.push(p);
                }
            }
        }
    }
    let mut calls = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        let b = code.as_bytes();
        for level in ["trace", "debug", "info", "warn", "error"] {
            let pat = format!("{level}!(");
            let mut from = 0;
            while let Some(at) = code[from..].find(&pat) {
                let start = from + at + pat.len();
                from = start;
                // Not part of a longer name (`my_debug!(`).
                if at + from - start > 0
                    && (b[from - pat.len() - 1].is_ascii_alphanumeric() || b[from - pat.len() - 1] == b'_')
                {
                    continue;
                }
                let (mut depth, mut i, mut in_str, mut lits, mut cur) = (1, start, false, Vec::new(), String::new());
                while depth > 0 && i < b.len() {
                    let c = b[i] as char;
                    if in_str {
                        match c {
                            '\\' => {
                                cur.push(b[i + 1] as char);
                                i += 1;
                            }
                            '"' => {
                                in_str = false;
                                lits.push(std::mem::take(&mut cur));
                            }
                            _ => cur.push(c),
                        }
                    } else {
                        match c {
                            '"' => in_str = true,
                            '(' => depth += 1,
                            ')' => depth -= 1,
                            _ => {}
                        }
                    }
                    i += 1;
                }
                let starts_with_message = code[start..].trim_start().starts_with('"');
                let message = if starts_with_message { lits.first() } else { lits.last() };
                if let Some(m) = message {
                    // A message written over several lines with `\` goes on
                    // with the next line's text.
                    let m = m.split('\n').map(str::trim_start).collect::<Vec<_>>().join("");
                    let m = m.split_whitespace().collect::<Vec<_>>().join(" ");
                    calls.push((level.to_uppercase(), m, file.file_name().unwrap().to_string_lossy().into_owned()));
                }
            }
        }
    }
    calls
}

/// Whether an inventory line documents a call: its level, then the
/// message's text (each `{…}` in it standing for whatever the line shows).
fn documents(line: &str, level: &str, message: &str) -> bool {
    let Some(rest) = line.strip_prefix(level).and_then(|r| r.strip_prefix(' ')) else { return false };
    let mut at = 0;
    for (i, piece) in message.split(['{', '}']).enumerate() {
        if i % 2 == 1 || piece.is_empty() {
            continue;
        }
        match rest[at..].find(piece) {
            Some(p) if i > 0 || p == 0 => at += p + piece.len(),
            _ => return false,
        }
    }
    true
}

#[test]
fn the_privacy_doc_lists_every_log_call_in_the_code() {
    let documented = documented();
    let calls = log_calls();
    assert!(calls.len() > 30, "the scan finds the log calls: {calls:?}");
    let missing: Vec<String> = calls
        .iter()
        .filter(|(level, message, _)| !documented.iter().any(|d| documents(d, level, message)))
        .map(|(level, message, file)| format!("{level} {message}   ({file})"))
        .collect();
    assert!(missing.is_empty(), "log calls docs/privacy.md does not list:\n{}", missing.join("\n"));
}
