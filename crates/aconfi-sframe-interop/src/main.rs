//! `sframe-interop`: SFrame (RFC 9605) operations done by the `sframe`
//! crate, one JSON request per line on stdin, one JSON answer per line on
//! stdout. The web client's test (tests/js/sframe.test.mjs) drives it to
//! check that frames the browser encrypts decrypt here and the other way
//! round. Byte strings are hex; KID and CTR are decimal strings (64-bit).
//!
//! ```text
//! {"op":"encrypt","suite":4,"kid":"7","ctr":"1","base_key":"..","metadata":"..","pt":".."} -> {"ct":".."}
//! {"op":"decrypt","suite":4,"kid":"7","base_key":"..","metadata":"..","ct":".."}          -> {"pt":".."}
//! ```
//! `ct` is the SFrame ciphertext (header ‖ ciphertext ‖ tag) without the
//! metadata, which is authenticated but sent apart. A failure answers
//! `{"error":".."}` and the tool goes on with the next line.

#![forbid(unsafe_code)]

use std::io::{BufRead, Write};

use serde_json::{json, Value};
use sframe::frame::{EncryptedFrameView, MediaFrameView, MonotonicCounter};
use sframe::key::{DecryptionKey, EncryptionKey};
use sframe::CipherSuite;

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let answer = serde_json::from_str::<Value>(&line)
            .map_err(|e| e.to_string())
            .and_then(|req| handle(&req))
            .unwrap_or_else(|e| json!({ "error": e }));
        // A closed stdout ends the tool; nothing else to do then.
        if writeln!(out, "{answer}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
}

fn handle(req: &Value) -> Result<Value, String> {
    let suite = suite(req)?;
    match field(req, "op")? {
        "encrypt" => {
            let key = EncryptionKey::derive_from(suite, number(req, "kid")?, hex(req, "base_key")?).map_err(err)?;
            let ctr = number(req, "ctr")?;
            let mut counter = MonotonicCounter::with_start_value(ctr, u64::MAX);
            let (metadata, pt) = (hex(req, "metadata")?, hex(req, "pt")?);
            let frame = MediaFrameView::try_with_meta_data(&mut counter, &pt, &metadata).map_err(err)?;
            let mut buf = Vec::new();
            let encrypted = frame.encrypt_into(&key, &mut buf).map_err(err)?;
            Ok(json!({ "ct": to_hex(encrypted.sframe_cipher_text()) }))
        }
        "decrypt" => {
            let key = DecryptionKey::derive_from(suite, number(req, "kid")?, hex(req, "base_key")?).map_err(err)?;
            let (metadata, ct) = (hex(req, "metadata")?, hex(req, "ct")?);
            let frame = EncryptedFrameView::try_with_meta_data(&ct, &metadata).map_err(err)?;
            let mut buf = Vec::new();
            let media = frame.decrypt_into(&key, &mut buf).map_err(err)?;
            Ok(json!({ "pt": to_hex(media.payload()) }))
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn field<'a>(req: &'a Value, name: &str) -> Result<&'a str, String> {
    req.get(name).and_then(Value::as_str).ok_or_else(|| format!("missing string field {name:?}"))
}

fn number(req: &Value, name: &str) -> Result<u64, String> {
    field(req, name)?.parse().map_err(|e| format!("{name}: {e}"))
}

/// The crate has no conversion from the registered number; this is the
/// RFC's table.
fn suite(req: &Value) -> Result<CipherSuite, String> {
    match req.get("suite").and_then(Value::as_u64) {
        Some(1) => Ok(CipherSuite::AesCtr128HmacSha256_80),
        Some(2) => Ok(CipherSuite::AesCtr128HmacSha256_64),
        Some(3) => Ok(CipherSuite::AesCtr128HmacSha256_32),
        Some(4) => Ok(CipherSuite::AesGcm128Sha256),
        Some(5) => Ok(CipherSuite::AesGcm256Sha512),
        other => Err(format!("unknown cipher suite {other:?}")),
    }
}

fn hex(req: &Value, name: &str) -> Result<Vec<u8>, String> {
    let s = field(req, name)?;
    if s.len() % 2 != 0 {
        return Err(format!("{name}: odd hex length"));
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("{name}: {e}"))).collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
