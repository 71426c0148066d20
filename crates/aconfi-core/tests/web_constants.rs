//! The web client keeps its own copies of a few protocol constants
//! (`web/js/protocol.js`): every close code, the reserved room names and the
//! chat size limit. They must be the server's, or the client would, say,
//! accept a room name the server refuses or reconnect after an unknown code.

use aconfi_core::protocol::MAX_CHAT_BYTES;
use aconfi_core::room_name::RESERVED;
use aconfi_core::CloseCode;
use aconfi_core::MAX_VIEW_TILES;

fn protocol_js() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/js/protocol.js");
    std::fs::read_to_string(path).expect("web/js/protocol.js is readable")
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("protocol.js has `{start}`")) + start.len();
    let len = text[from..].find(end).unwrap_or_else(|| panic!("`{start}` is closed by `{end}`"));
    &text[from..from + len]
}

/// `UnsupportedData` → `UNSUPPORTED_DATA`, the JS naming.
fn screaming(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[test]
fn close_codes_match_by_name_and_number() {
    let js = protocol_js();
    let body = between(&js, "export const CloseCode = Object.freeze({", "});");
    let mut in_js: Vec<(String, u16)> = body
        .split(',')
        .filter_map(|entry| {
            let (name, code) = entry.split_once(':')?;
            Some((name.trim().to_string(), code.trim().parse().expect("a numeric close code")))
        })
        .collect();
    in_js.sort_by_key(|(_, c)| *c);
    let in_rust: Vec<(String, u16)> = CloseCode::ALL.iter().map(|c| (screaming(&format!("{c:?}")), c.code())).collect();
    assert_eq!(in_js, in_rust);
}

#[test]
fn reserved_room_names_match() {
    let js = protocol_js();
    let body = between(&js, "const RESERVED = new Set([", "]);");
    let mut in_js: Vec<String> = body.split(',').map(|s| s.trim().trim_matches('\'').to_string()).collect();
    in_js.sort();
    let mut in_rust: Vec<String> = RESERVED.iter().map(|s| s.to_string()).collect();
    in_rust.sort();
    assert_eq!(in_js, in_rust);
}

#[test]
fn the_chat_limit_matches() {
    let js = protocol_js();
    let value: usize = between(&js, "export const MAX_CHAT_BYTES = ", ";").trim().parse().expect("a number");
    assert_eq!(value, MAX_CHAT_BYTES);
}

#[test]
fn the_view_limit_matches() {
    let js = protocol_js();
    let value: usize = between(&js, "export const MAX_VIEW_TILES = ", ";").trim().parse().expect("a number");
    assert_eq!(value, MAX_VIEW_TILES);
}
