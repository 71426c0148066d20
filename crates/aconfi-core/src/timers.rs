//! When the core next needs the shell to call `handle_timeout`: a min-heap
//! of deadlines, so finding the next one never scans every participant.
//!
//! Each key has at most one live deadline, its latest: rescheduling a key
//! (earlier or later) pushes a new entry and makes the old one stale, and
//! stale entries are dropped when they reach the top. So the shell is never
//! woken for a deadline a session has since moved on from. Work wanted at
//! once (packets written to a session) goes in a plain list instead, so the
//! forwarding path never touches the heap.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use crate::ids::{ParticipantId, RoomId};

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Key {
    /// A participant's WebRTC session wants time to advance (str0m's
    /// deadline, or packets written to it that advancing releases).
    Session(ParticipantId),
    /// A room has control work queued by the forwarding path.
    Room(RoomId),
    /// Per-address limits to forget once they no longer count.
    Sweep,
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Key)>>,
    live: HashMap<Key, Instant>,
    /// Keys wanted at once (packets written to a session, a room's queued
    /// control work): a plain list, so the forwarding path, which asks this
    /// for every subscriber of every batch, never touches the heap.
    soon: Vec<Key>,
    /// When the oldest of `soon` was asked for.
    soon_since: Option<Instant>,
}

impl Timers {
    /// Wants `key` handled as soon as the current batch is done. The caller
    /// asks once per batch (it keeps its own "due" flag).
    pub fn schedule_now(&mut self, key: Key, now: Instant) {
        self.soon.push(key);
        self.soon_since.get_or_insert(now);
    }

    /// Wants `key` handled at `at`, instead of whenever it was wanted before.
    pub fn schedule(&mut self, key: Key, at: Instant) {
        if self.live.insert(key, at) != Some(at) {
            self.heap.push(Reverse((at, key)));
        }
    }

    /// Forgets `key`'s deadline and any wish to handle it at once (its
    /// owner is gone).
    pub fn cancel(&mut self, key: Key) {
        self.live.remove(&key);
        self.soon.retain(|k| *k != key);
        if self.soon.is_empty() {
            self.soon_since = None;
        }
    }

    /// The earliest deadline.
    pub fn next(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, key))) = self.heap.peek() {
            if self.live.get(key) == Some(at) {
                return Some(self.soon_since.map_or(*at, |s| s.min(*at)));
            }
            self.heap.pop();
        }
        self.soon_since
    }

    /// A key whose deadline is at or before `now`, taken off the schedule.
    pub fn pop_due(&mut self, now: Instant) -> Option<Key> {
        if let Some(key) = self.soon.pop() {
            return Some(key);
        }
        self.soon_since = None;
        if self.next()? > now {
            return None;
        }
        // `next` left the live top entry on the heap.
        let Reverse((_, key)) = self.heap.pop()?;
        self.live.remove(&key);
        Some(key)
    }

    /// Entries in the heap, live or overtaken (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keys asked for at once and not yet popped (for tests).
    #[cfg(test)]
    fn soon_len(&self) -> usize {
        self.soon.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_latest_deadline_per_key_fires_once() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let (a, b) = (Key::Session(ParticipantId(1)), Key::Room(RoomId(1)));
        let mut t = Timers::default();
        t.schedule(a, ms(10));
        t.schedule(a, ms(50)); // moved later: nobody is woken at 10 ms
        t.schedule(b, ms(30));
        assert_eq!(t.next(), Some(ms(30)));
        t.schedule(a, ms(20)); // moved earlier
        assert_eq!(t.next(), Some(ms(20)));
        assert_eq!(t.pop_due(ms(5)), None);
        assert_eq!(t.pop_due(ms(40)), Some(a));
        assert_eq!(t.pop_due(ms(40)), Some(b));
        assert_eq!(t.pop_due(ms(100)), None, "the 50 ms entry was overtaken and is dropped");
        assert_eq!(t.len(), 0);

        t.schedule(a, ms(10));
        t.cancel(a);
        assert_eq!(t.next(), None);
    }

    #[test]
    fn wanted_at_once_comes_first_and_never_grows_the_heap() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let (a, b) = (Key::Session(ParticipantId(1)), Key::Session(ParticipantId(2)));
        let mut t = Timers::default();
        t.schedule(a, ms(50));
        for _ in 0..1000 {
            t.schedule_now(b, ms(20));
            assert_eq!(t.next(), Some(ms(20)));
            assert_eq!(t.pop_due(ms(20)), Some(b));
            assert_eq!(t.pop_due(ms(20)), None, "a's deadline is later");
        }
        assert_eq!((t.len(), t.soon_len()), (1, 0), "only a's deadline is queued");
        assert_eq!(t.next(), Some(ms(50)));
        assert_eq!(t.pop_due(ms(50)), Some(a));
    }
}
