//! How many live streams may run at once: on the whole server, and started
//! from one client address.
//!
//! Every stream is a worker process encoding 720p30 (about a quarter of a
//! core even with every camera off), and the first person in any plain room
//! is its moderator: without a cap a few dozen rooms take the server down.
//! A stream holds a [`StreamSlot`] for as long as it lives; dropping the
//! slot (the stream stopped, failed or its room closed) gives it back. The
//! shards of one process share one [`StreamLimits`], so rooms spread over
//! cores still count against one budget.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::address::AddrKey;

#[derive(Default)]
struct Counts {
    total: usize,
    /// Streams running per starting address; `None`: a connection the
    /// shell gave no address for.
    by_address: HashMap<Option<AddrKey>, usize>,
}

/// The caps and what is in use, shared by every shard. Cloning gives
/// another handle to the same counts.
#[derive(Clone)]
pub struct StreamLimits {
    max: usize,
    per_address: usize,
    counts: Arc<Mutex<Counts>>,
}

/// Why a stream may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRefusal {
    /// The server runs as many streams as it may.
    ServerFull,
    /// This address started as many as it may.
    AddressFull,
}

impl StreamRefusal {
    /// What the moderator is told.
    pub fn text(self) -> &'static str {
        match self {
            StreamRefusal::ServerFull => {
                "this server is already streaming as many meetings as it can; try again when one has ended"
            }
            StreamRefusal::AddressFull => {
                "your network is already streaming as many meetings as this server allows from one address"
            }
        }
    }
}

impl StreamLimits {
    /// At most `max` streams at once, and `per_address` of them started
    /// from one address (IPv4, or IPv6 /64).
    pub fn new(max: usize, per_address: usize) -> Self {
        StreamLimits { max, per_address, counts: Arc::default() }
    }

    /// The default for a machine with `cores` CPU cores: one stream per
    /// two cores (at least one), two per address.
    pub fn for_cores(cores: usize) -> Self {
        StreamLimits::new((cores / 2).max(1), 2)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts are plain integers: a panic elsewhere leaves them whole.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for a stream started from `addr`.
    pub fn take(&self, addr: Option<AddrKey>) -> Result<StreamSlot, StreamRefusal> {
        let mut c = self.lock();
        if c.total >= self.max {
            return Err(StreamRefusal::ServerFull);
        }
        let mine = c.by_address.entry(addr).or_insert(0);
        if *mine >= self.per_address {
            return Err(StreamRefusal::AddressFull);
        }
        *mine += 1;
        c.total += 1;
        Ok(StreamSlot { limits: self.clone(), addr })
    }

    /// Streams holding a slot now.
    pub fn in_use(&self) -> usize {
        self.lock().total
    }

    /// The caps: (server, per address).
    pub fn caps(&self) -> (usize, usize) {
        (self.max, self.per_address)
    }
}

impl Default for StreamLimits {
    /// As [`StreamLimits::for_cores`] on this machine.
    fn default() -> Self {
        StreamLimits::for_cores(std::thread::available_parallelism().map_or(1, usize::from))
    }
}

impl fmt::Debug for StreamLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamLimits {{ max: {}, per_address: {} }}", self.max, self.per_address)
    }
}

/// One running stream's place in the budget, given back when dropped.
pub struct StreamSlot {
    limits: StreamLimits,
    addr: Option<AddrKey>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut c = self.limits.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_address.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                c.by_address.remove(&self.addr);
            }
        }
    }
}

impl fmt::Debug for StreamSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamSlot(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Option<AddrKey> {
        Some(AddrKey::new(s.parse().unwrap()))
    }

    #[test]
    fn caps_per_server_and_per_address_and_slots_come_back_when_dropped() {
        let limits = StreamLimits::new(3, 2);
        let a1 = limits.take(key("192.0.2.1")).unwrap();
        let a2 = limits.take(key("192.0.2.1")).unwrap();
        assert_eq!(limits.take(key("192.0.2.1")).unwrap_err(), StreamRefusal::AddressFull);
        // The same /64 is the same address.
        let v6 = limits.take(key("2001:db8::1")).unwrap();
        assert_eq!(limits.take(key("198.51.100.9")).unwrap_err(), StreamRefusal::ServerFull);
        drop(v6);
        assert!(limits.take(key("2001:db8::2")).is_ok(), "a dropped slot is free again (and dropped here too)");
        drop((a1, a2));
        assert_eq!(limits.in_use(), 0);
        assert!(limits.lock().by_address.is_empty(), "nothing kept about an address with no stream");
        assert_eq!(StreamLimits::for_cores(2).caps(), (1, 2));
        assert_eq!(StreamLimits::for_cores(1).caps(), (1, 2));
        assert_eq!(StreamLimits::for_cores(16).caps(), (8, 2));
    }
}
