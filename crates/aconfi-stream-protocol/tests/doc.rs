//! Every JSON example in the worker's protocol description
//! (`crates/aconfi-stream/README.md`, "Control protocol") parses into
//! [`Command`] or [`Event`] and serializes back to the same JSON, byte for
//! byte; every command, event and state has an example, and every reason
//! is quoted there. So the description cannot drift from the code.

use std::collections::BTreeSet;

use aconfi_stream_protocol::{Command, Event, Reason, State};
use serde_json::Value;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../aconfi-stream/README.md");

fn doc() -> String {
    std::fs::read_to_string(DOC).expect("crates/aconfi-stream/README.md exists")
}

/// The ```json blocks: (what follows `json`, the body).
fn examples(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(l) = lines.next() {
        if let Some(tag) = l.strip_prefix("```json") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
            out.push((tag.trim().to_string(), body.join("\n")));
        }
    }
    out
}

/// The wire tag of each command. A new variant fails to compile here: give
/// it a name and an example in the doc.
fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Start { .. } => "start",
        Command::Sources { .. } => "sources",
        Command::Stop => "stop",
    }
}
const COMMANDS: &[&str] = &["start", "sources", "stop"];

/// The wire tag of each event; as for [`command_name`].
fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Ready { .. } => "ready",
        Event::State { .. } => "state",
        Event::Keyframe { .. } => "keyframe",
    }
}
const EVENTS: &[&str] = &["ready", "state", "keyframe"];

#[test]
fn every_example_round_trips_and_every_line_has_one() {
    let doc = doc();
    let examples = examples(&doc);
    assert!(!examples.is_empty(), "no ```json blocks in {DOC}");
    let (mut commands, mut events, mut states) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
    for (side, json) in examples {
        let original: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        let (back, line) = match side.as_str() {
            "command" => {
                let c = Command::parse(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
                assert_eq!(original["cmd"], command_name(&c), "the tag names the variant");
                commands.insert(command_name(&c));
                (serde_json::to_value(&c).unwrap(), c.to_line())
            }
            "event" => {
                let e = Event::parse(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
                assert_eq!(original["ev"], event_name(&e), "the tag names the variant");
                events.insert(event_name(&e));
                if let Event::State { state, .. } = e {
                    states.push(state);
                }
                (serde_json::to_value(&e).unwrap(), e.to_line())
            }
            other => panic!("a json block must be marked command or event, not {other:?}"),
        };
        assert_eq!(back, original, "round trip changed the line");
        assert_eq!(line, json.trim(), "the example is not the bytes on the wire");
    }
    assert_eq!(commands, COMMANDS.iter().copied().collect(), "every command has an example");
    assert_eq!(events, EVENTS.iter().copied().collect(), "every event has an example");
    for state in State::ALL {
        assert!(states.contains(&state), "{state:?} has no example");
    }
    for reason in Reason::ALL {
        assert!(doc.contains(&format!("\"{}\"", reason.as_str())), "the doc does not list {:?}", reason.as_str());
    }
}
