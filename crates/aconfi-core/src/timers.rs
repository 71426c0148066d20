//! When the core next needs the shell to call `handle_timeout`: a min-heap
//! of deadlines, so finding the next one never scans every participant.
//!
//! Each key has at most one live deadline, its earliest. A later deadline
//! for a key that already has an earlier one is not queued: the earlier one
//! fires, and its owner (which knows its real deadline) schedules again.
//! Entries overtaken by an earlier one stay in the heap until they reach
//! the top and are dropped there.

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
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Key)>>,
    live: HashMap<Key, Instant>,
}

impl Timers {
    /// Wants `key` handled at `at` (or earlier, if it already is).
    pub fn schedule(&mut self, key: Key, at: Instant) {
        match self.live.get_mut(&key) {
            Some(t) if *t <= at => {}
            Some(t) => {
                *t = at;
                self.heap.push(Reverse((at, key)));
            }
            None => {
                self.live.insert(key, at);
                self.heap.push(Reverse((at, key)));
            }
        }
    }

    /// Forgets `key` (its owner is gone).
    pub fn cancel(&mut self, key: Key) {
        self.live.remove(&key);
    }

    /// The earliest live deadline.
    pub fn next(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, key))) = self.heap.peek() {
            if self.live.get(key) == Some(at) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }

    /// A key whose deadline is at or before `now`, taken off the schedule.
    pub fn pop_due(&mut self, now: Instant) -> Option<Key> {
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_earliest_deadline_per_key_fires_once() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let (a, b) = (Key::Session(ParticipantId(1)), Key::Room(RoomId(1)));
        let mut t = Timers::default();
        t.schedule(a, ms(50));
        t.schedule(a, ms(80)); // later: the earlier one stands
        t.schedule(b, ms(30));
        t.schedule(a, ms(10)); // earlier: overtakes
        assert_eq!(t.next(), Some(ms(10)));
        assert_eq!(t.pop_due(ms(5)), None);
        assert_eq!(t.pop_due(ms(40)), Some(a));
        assert_eq!(t.pop_due(ms(40)), Some(b));
        assert_eq!(t.pop_due(ms(100)), None, "the overtaken 50 ms entry is dropped");
        assert_eq!(t.len(), 0);

        t.schedule(a, ms(10));
        t.cancel(a);
        assert_eq!(t.next(), None);
    }
}
