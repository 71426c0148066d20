//! Who is speaking: a room's dominant speaker, from the audio level
//! browsers write into every audio packet's header (RFC 6464, `ssrc-audio-
//! level`; in the clear also in end-to-end encrypted meetings, where only
//! the payload is encrypted).
//!
//! Each member's [`Meter`] counts, per interval, how many of its audio
//! packets were voice (louder than [`SPEECH_LEVEL`]) and how loud they were.
//! Every [`SPEAKER_INTERVAL`] the room asks [`Speaker::evaluate`]: whoever
//! spoke most in the interval challenges the current speaker and takes over
//! after winning [`TAKE_OVER_AFTER_SILENCE`] intervals in a row, or
//! [`TAKE_OVER_INTERRUPTING`] while the current speaker still talks, so a
//! cough or a short "mhm" does not move the stage. When the room goes
//! quiet the last speaker stays the speaker, as in Jitsi and Meet.
//!
//! Sans-IO: levels and instants in, a new speaker out.

use std::time::{Duration, Instant};

use crate::ids::ParticipantId;

/// How often the speaker is evaluated (driven by packets, not a timer: a
/// room where nobody sends audio has nothing to evaluate).
pub const SPEAKER_INTERVAL: Duration = Duration::from_millis(300);
/// Louder than this (dBov) counts as voice; silence is -127, quiet room
/// noise through a browser's noise suppression about -70 to -60, speech
/// -45 to -20.
pub const SPEECH_LEVEL: i8 = -50;
/// Share of an interval's audio packets, in percent, that must be voice for
/// the interval to count as speaking (speech has pauses between words).
pub const SPEAKING_SHARE_PERCENT: u32 = 30;
/// Intervals in a row a new speaker must win when the current one is
/// silent (or there is none).
pub const TAKE_OVER_AFTER_SILENCE: u8 = 2;
/// Intervals in a row a new speaker must win while the current one still
/// talks.
pub const TAKE_OVER_INTERRUPTING: u8 = 5;

/// One member's audio levels since the last evaluation.
#[derive(Debug, Default, Clone)]
pub(crate) struct Meter {
    packets: u32,
    voiced: u32,
    /// Sum of `127 + level` over voiced packets (0 = silence, 127 = full scale).
    loudness: u64,
}

impl Meter {
    /// One audio packet's level, in dBov (-127 silence … 0 loudest).
    pub fn hear(&mut self, level: i8) {
        self.packets = self.packets.saturating_add(1);
        if level > SPEECH_LEVEL {
            self.voiced = self.voiced.saturating_add(1);
            self.loudness += u64::from((127 + i16::from(level.max(-127))) as u16);
        }
    }

    /// The interval's score, if it was speaking; starts the next interval.
    fn take(&mut self) -> Option<Score> {
        let m = std::mem::take(self);
        let speaking =
            m.packets > 0 && u64::from(m.voiced) * 100 >= u64::from(m.packets) * u64::from(SPEAKING_SHARE_PERCENT);
        speaking.then(|| Score { share: m.voiced * 1000 / m.packets, loudness: m.loudness / u64::from(m.voiced) })
    }
}

/// How much one member spoke in an interval: share of voice first, then
/// how loud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Score {
    share: u32,
    loudness: u64,
}

/// A room's dominant speaker.
#[derive(Debug, Default)]
pub(crate) struct Speaker {
    current: Option<ParticipantId>,
    /// Who is winning intervals against the current speaker, and how many
    /// in a row.
    challenger: Option<(ParticipantId, u8)>,
    next: Option<Instant>,
}

impl Speaker {
    pub fn current(&self) -> Option<ParticipantId> {
        self.current
    }

    /// Whether an evaluation is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.next.is_none_or(|n| now >= n)
    }

    /// Closes the interval: reads (and resets) every member's meter;
    /// returns the new speaker if it changed.
    pub fn evaluate<'a>(
        &mut self,
        meters: impl Iterator<Item = (ParticipantId, &'a mut Meter)>,
        now: Instant,
    ) -> Option<ParticipantId> {
        self.next = Some(now + SPEAKER_INTERVAL);
        let mut best: Option<(ParticipantId, Score)> = None;
        let mut current_speaks = false;
        for (pid, meter) in meters {
            let Some(score) = meter.take() else { continue };
            current_speaks |= Some(pid) == self.current;
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((pid, score));
            }
        }
        let Some((winner, _)) = best else {
            self.challenger = None;
            return None;
        };
        if Some(winner) == self.current {
            self.challenger = None;
            return None;
        }
        let streak = match self.challenger {
            Some((p, n)) if p == winner => n.saturating_add(1),
            _ => 1,
        };
        let needed = if current_speaks { TAKE_OVER_INTERRUPTING } else { TAKE_OVER_AFTER_SILENCE };
        if streak >= needed {
            self.current = Some(winner);
            self.challenger = None;
            Some(winner)
        } else {
            self.challenger = Some((winner, streak));
            None
        }
    }

    /// `pid` left the room.
    pub fn forget(&mut self, pid: ParticipantId) {
        if self.current == Some(pid) {
            self.current = None;
        }
        if self.challenger.is_some_and(|(p, _)| p == pid) {
            self.challenger = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ParticipantId = ParticipantId(1);
    const B: ParticipantId = ParticipantId(2);
    const C: ParticipantId = ParticipantId(3);

    /// A room of three: one interval of 15 packets each (50 packets a
    /// second, 300 ms), at the given level, with `voiced` of them at it and
    /// the rest silent.
    struct Room {
        speaker: Speaker,
        meters: [(ParticipantId, Meter); 3],
        now: Instant,
    }

    impl Room {
        fn new() -> Self {
            Room { speaker: Speaker::default(), meters: [A, B, C].map(|p| (p, Meter::default())), now: Instant::now() }
        }

        /// One interval; `talk` gives (who, level, voiced packets of 15).
        fn interval(&mut self, talk: &[(ParticipantId, i8, u32)]) -> Option<ParticipantId> {
            for (pid, m) in self.meters.iter_mut() {
                let (level, voiced) = talk.iter().find(|t| t.0 == *pid).map_or((-127, 0), |t| (t.1, t.2));
                for i in 0..15 {
                    m.hear(if i < voiced { level } else { -127 });
                }
            }
            self.now += SPEAKER_INTERVAL;
            assert!(self.speaker.due(self.now));
            self.speaker.evaluate(self.meters.iter_mut().map(|(p, m)| (*p, m)), self.now)
        }
    }

    #[test]
    fn a_speaker_takes_the_stage_after_two_intervals_and_keeps_it_in_silence() {
        let mut r = Room::new();
        assert_eq!(r.interval(&[(A, -30, 12)]), None, "one interval could be a cough");
        assert_eq!(r.interval(&[(A, -30, 12)]), Some(A));
        assert_eq!(r.interval(&[(A, -30, 12)]), None, "no news while A goes on");
        for _ in 0..10 {
            assert_eq!(r.interval(&[]), None);
        }
        assert_eq!(r.speaker.current(), Some(A), "the last speaker stays while the room is quiet");
    }

    #[test]
    fn silence_and_room_noise_never_make_a_speaker() {
        let mut r = Room::new();
        for _ in 0..20 {
            // Noise below the speech level, and a word now and then.
            assert_eq!(r.interval(&[(A, -65, 15), (B, -30, 2)]), None);
        }
        assert_eq!(r.speaker.current(), None);
    }

    #[test]
    fn interrupting_takes_longer_than_taking_over_from_silence() {
        let mut r = Room::new();
        r.interval(&[(A, -30, 12)]);
        assert_eq!(r.interval(&[(A, -30, 12)]), Some(A));
        // B talks over A, louder and more: A keeps the stage for a while.
        for _ in 1..TAKE_OVER_INTERRUPTING {
            assert_eq!(r.interval(&[(A, -35, 8), (B, -25, 14)]), None);
        }
        assert_eq!(r.interval(&[(A, -35, 8), (B, -25, 14)]), Some(B));
        // A falls silent, C speaks: two intervals are enough.
        assert_eq!(r.interval(&[(C, -40, 10)]), None);
        assert_eq!(r.interval(&[(C, -40, 10)]), Some(C));
    }

    #[test]
    fn a_challenger_must_win_in_a_row() {
        let mut r = Room::new();
        r.interval(&[(A, -30, 12)]);
        r.interval(&[(A, -30, 12)]);
        // B and C alternate while A is quiet: neither wins twice in a row.
        for i in 0..10 {
            let who = if i % 2 == 0 { B } else { C };
            assert_eq!(r.interval(&[(who, -30, 12)]), None);
        }
        assert_eq!(r.speaker.current(), Some(A));
    }

    #[test]
    fn a_speaker_who_leaves_is_forgotten() {
        let mut r = Room::new();
        r.interval(&[(A, -30, 12)]);
        r.interval(&[(A, -30, 12)]);
        r.speaker.forget(A);
        assert_eq!(r.speaker.current(), None);
        r.interval(&[(B, -30, 12)]);
        assert_eq!(r.interval(&[(B, -30, 12)]), Some(B));
    }

    #[test]
    fn evaluation_waits_for_the_interval() {
        let mut s = Speaker::default();
        let now = Instant::now();
        assert!(s.due(now));
        s.evaluate(std::iter::empty(), now);
        assert!(!s.due(now + SPEAKER_INTERVAL / 2));
        assert!(s.due(now + SPEAKER_INTERVAL));
    }

    #[test]
    fn out_of_range_levels_do_not_overflow() {
        let mut m = Meter::default();
        for l in [i8::MIN, -127, -51, -50, -49, 0, i8::MAX] {
            m.hear(l);
        }
        let s = m.take().expect("3 of 7 voiced is speaking");
        assert_eq!(s.share, 3 * 1000 / 7);
    }
}
