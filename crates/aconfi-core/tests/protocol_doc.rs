//! Every JSON example in docs/protocol.md parses into our types and
//! serializes back to the same JSON; every message type has an example.

use std::collections::BTreeSet;

use aconfi_core::{ClientMsg, ServerMsg};
use serde_json::Value;

fn examples() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md"))
        .expect("docs/protocol.md exists");
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

const CLIENT_TYPES: &[&str] = &[
    "join",
    "offer",
    "answer",
    "media_state",
    "leave",
    "chat",
    "e2ee_confirm",
    "e2ee",
    "raise_hand",
    "grant_moderator",
    "mute",
    "mute_all",
    "ask_unmute",
    "remove",
    "set_lock",
    "set_password",
    "set_lobby",
    "admit",
    "refuse",
    "end_meeting",
    "stream_start",
    "stream_stop",
    "view",
];
const SERVER_TYPES: &[&str] = &[
    "joined",
    "stream_state",
    "participant_joined",
    "participant_updated",
    "participant_left",
    "answer",
    "offer",
    "error",
    "room_updated",
    "password_required",
    "password_not_required",
    "in_lobby",
    "lobby_request",
    "lobby_left",
    "muted_by",
    "unmute_request",
    "chat",
    "e2ee",
    "refused",
    "active_speaker",
    "video_paused",
    "moved",
    "nodes",
];

#[test]
fn every_example_round_trips_and_every_message_has_one() {
    let mut seen_client = BTreeSet::new();
    let mut seen_server = BTreeSet::new();
    let examples = examples();
    assert!(examples.len() >= CLIENT_TYPES.len() + SERVER_TYPES.len());
    for (side, json) in examples {
        let original: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        let back = match side.as_str() {
            "client" => {
                let m: ClientMsg = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
                assert_eq!(original["type"], m.type_name(), "type_name() names the wire type");
                seen_client.insert(m.type_name().to_string());
                serde_json::to_value(&m).unwrap()
            }
            "server" => {
                let m: ServerMsg = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
                seen_server.insert(original["type"].as_str().unwrap_or_default().to_string());
                serde_json::to_value(&m).unwrap()
            }
            other => panic!("a json block must be marked client or server, not {other:?}"),
        };
        assert_eq!(back, original, "round trip changed the message");
    }
    assert_eq!(seen_client, CLIENT_TYPES.iter().map(|t| t.to_string()).collect());
    assert_eq!(seen_server, SERVER_TYPES.iter().map(|t| t.to_string()).collect());
}

#[test]
fn unknown_types_and_fields_are_refused() {
    for bad in [
        r#"{"type":"teleport"}"#,
        r#"{"type":"leave","extra":1}"#,
        r#"{"type":"media_state","audio_muted":true}"#,
        r#"{"type":"join","version":"1","room":"abc"}"#,
        r#"{"version":1,"room":"abc"}"#,
    ] {
        assert!(serde_json::from_str::<ClientMsg>(bad).is_err(), "{bad}");
    }
}
