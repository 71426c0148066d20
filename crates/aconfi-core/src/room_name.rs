//! Room names: what may be typed, and unguessable ones for "Start meeting".
//!
//! A room name is the only secret an unprotected meeting has, so a generated
//! one carries more than 64 bits of entropy yet stays readable aloud:
//! twelve consonant-vowel syllables in three dash-separated words
//! (`log2(80^12)` ≈ 75.9 bits). Never log a room name; log its `RoomId`.

use std::fmt;

use thiserror::Error;

/// Shortest accepted room name.
pub const MIN_LEN: usize = 3;
/// Longest accepted room name.
pub const MAX_LEN: usize = 64;

/// Names that are paths of the server itself and so cannot be rooms.
pub const RESERVED: &[&str] = &["new", "ws", "static", "healthz", "favicon.ico", "robots.txt"];

const CONSONANTS: &[u8; 16] = b"bdfgjklmnprstvwz";
const VOWELS: &[u8; 5] = b"aeiou";
const SYLLABLES_PER_WORD: usize = 4;
const WORDS: usize = 3;

/// Why a room name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoomNameError {
    /// Fewer than [`MIN_LEN`] or more than [`MAX_LEN`] characters.
    #[error("a room name has {MIN_LEN} to {MAX_LEN} characters")]
    Length,
    /// A character outside `a-z`, `0-9`, `-`, `_` (after lower-casing).
    #[error("a room name may contain only letters a-z, digits, '-' and '_'")]
    Characters,
    /// A name the server uses for itself.
    #[error("that name is reserved")]
    Reserved,
}

/// A validated, lower-cased room name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(String);

impl RoomName {
    /// Validates a typed name. ASCII letters are lower-cased so that
    /// `Team-Sync` and `team-sync` are the same meeting.
    pub fn parse(input: &str) -> Result<Self, RoomNameError> {
        if input.len() < MIN_LEN || input.len() > MAX_LEN {
            return Err(RoomNameError::Length);
        }
        let lower = input.to_ascii_lowercase();
        let valid = lower.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            return Err(RoomNameError::Characters);
        }
        if RESERVED.contains(&lower.as_str()) {
            return Err(RoomNameError::Reserved);
        }
        Ok(Self(lower))
    }

    /// Builds a readable, unguessable name from 16 random bytes supplied by
    /// the caller (the core takes no randomness of its own).
    pub fn generate(random: [u8; 16]) -> Self {
        // 80^12 < 2^76, so the bias of taking a u128 modulo it is below 2^-52.
        let mut n = u128::from_le_bytes(random);
        let mut out = String::with_capacity(WORDS * (SYLLABLES_PER_WORD * 2 + 1));
        for word in 0..WORDS {
            if word > 0 {
                out.push('-');
            }
            for _ in 0..SYLLABLES_PER_WORD {
                let s = (n % 80) as usize;
                n /= 80;
                out.push(CONSONANTS[s / 5] as char);
                out.push(VOWELS[s % 5] as char);
            }
        }
        Self(out)
    }

    /// The name as text. Do not log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Deliberately hides the name so `{:?}` in a log line cannot leak it.
impl fmt::Debug for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomName(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_names_are_validated() {
        assert_eq!(RoomName::parse("Team-Sync").unwrap().as_str(), "team-sync");
        assert_eq!(RoomName::parse("ab"), Err(RoomNameError::Length));
        assert_eq!(RoomName::parse(&"a".repeat(65)), Err(RoomNameError::Length));
        assert_eq!(RoomName::parse("a b c"), Err(RoomNameError::Characters));
        assert_eq!(RoomName::parse("<script>"), Err(RoomNameError::Characters));
        assert_eq!(RoomName::parse("räume"), Err(RoomNameError::Characters));
        assert_eq!(RoomName::parse("WS"), Err(RoomNameError::Length));
        assert_eq!(RoomName::parse("new"), Err(RoomNameError::Reserved));
    }

    #[test]
    fn generated_names_are_valid_distinct_and_readable() {
        let a = RoomName::generate([0; 16]);
        let b = RoomName::generate([0xff; 16]);
        let c = RoomName::generate(*b"0123456789abcdef");
        assert_ne!(a, b);
        assert_ne!(b, c);
        for n in [&a, &b, &c] {
            assert_eq!(RoomName::parse(n.as_str()).as_ref(), Ok(n));
            assert_eq!(n.as_str().len(), 26);
            assert_eq!(n.as_str().matches('-').count(), 2);
        }
    }

    #[test]
    fn generated_names_carry_at_least_64_bits() {
        let bits = (WORDS * SYLLABLES_PER_WORD) as f64 * ((CONSONANTS.len() * VOWELS.len()) as f64).log2();
        assert!(bits >= 64.0, "{bits}");
    }

    #[test]
    fn debug_does_not_reveal_the_name() {
        let n = RoomName::parse("secret-board-meeting").unwrap();
        assert!(!format!("{n:?}").contains("secret"));
    }
}
