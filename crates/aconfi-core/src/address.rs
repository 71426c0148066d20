//! Limits per client address: how many password guesses one address may
//! make, across every room and every connection it opens.
//!
//! An address is used only in memory and only for these limits: it is kept
//! as an [`AddrKey`] (whose `Debug` prints nothing of it) for as long as a
//! connection from it is open or its guesses still count, and never
//! logged. IPv6 addresses count per /64, since one subscriber (one home or
//! office network) gets a whole /64 and could otherwise pick a fresh
//! address for every guess.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::rate::TokenBucket;

/// Wrong or right, password guesses one address may make at once ...
pub const GUESSES_PER_ADDRESS_BURST: f64 = 10.0;
/// ... and then one every this long (10 a minute).
pub const GUESS_INTERVAL_PER_ADDRESS: Duration = Duration::from_secs(6);

/// A client address as the limits see it: an IPv4 address, or the /64 of
/// an IPv6 one (IPv4-mapped IPv6 counts as IPv4).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrKey(u128);

impl AddrKey {
    /// The key for a client's address.
    pub fn new(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddrKey(u32::from(v4) as u128),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey(u32::from(v4) as u128),
                // The top 64 bits; the low bit set keeps it apart from IPv4.
                None => AddrKey((u128::from(v6) & !((1u128 << 64) - 1)) | 1),
            },
        }
    }
}

impl fmt::Debug for AddrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AddrKey(..)")
    }
}

/// Password guesses per address: a token bucket each, dropped once full
/// again (it then says no more than no entry would).
#[derive(Default)]
pub(crate) struct Guessers {
    buckets: HashMap<AddrKey, TokenBucket>,
}

impl Guessers {
    /// Takes one guess for `addr`: `None` if it may guess now, else how long
    /// until it may.
    pub fn take(&mut self, addr: AddrKey, now: Instant) -> Option<Duration> {
        let per_second = 1.0 / GUESS_INTERVAL_PER_ADDRESS.as_secs_f64();
        let bucket =
            self.buckets.entry(addr).or_insert_with(|| TokenBucket::new(GUESSES_PER_ADDRESS_BURST, per_second, now));
        if bucket.take(now) {
            None
        } else {
            Some(bucket.wait(now))
        }
    }

    /// Forgets every address whose bucket has filled up again; when the
    /// next one will have, if any is left.
    pub fn sweep(&mut self, now: Instant) -> Option<Instant> {
        self.buckets.retain(|_, b| !b.is_full(now));
        self.buckets.values().map(|b| now + b.until_full(now)).min()
    }

    /// Addresses remembered.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// The per-address guess limits of a whole process: the shards (one
/// [`crate::Sfu`] per core) of one server share one, so that spreading
/// guesses over rooms on several shards gains an attacker nothing. Cloning
/// gives another handle to the same limits. The lock is taken only when a
/// password is checked and when forgotten addresses are swept, never for
/// media.
#[derive(Clone, Default)]
pub struct GuessLimits(Arc<Mutex<Guessers>>);

impl GuessLimits {
    fn lock(&self) -> std::sync::MutexGuard<'_, Guessers> {
        // A panic elsewhere while holding it leaves the buckets as they were.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one guess for `addr`: `None` if it may guess now, else how
    /// long until it may.
    pub fn take(&self, addr: AddrKey, now: Instant) -> Option<Duration> {
        self.lock().take(addr, now)
    }

    /// Forgets addresses whose buckets are full again; when the next one
    /// will be, if any is left.
    pub fn sweep(&self, now: Instant) -> Option<Instant> {
        self.lock().sweep(now)
    }

    /// Addresses remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for GuessLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GuessLimits(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(AddrKey::new(a), AddrKey::new(b));
        assert_ne!(AddrKey::new(a), AddrKey::new(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(AddrKey::new(v4), AddrKey::new(mapped));
        assert_ne!(AddrKey::new(v4), AddrKey::new("192.0.2.8".parse().unwrap()));
        assert_eq!(format!("{:?}", AddrKey::new(v4)), "AddrKey(..)");
    }

    #[test]
    fn an_address_gets_a_burst_then_one_guess_per_interval_and_is_then_forgotten() {
        let t0 = Instant::now();
        let mut g = Guessers::default();
        let key = AddrKey::new("192.0.2.7".parse().unwrap());
        for _ in 0..10 {
            assert_eq!(g.take(key, t0), None);
        }
        let wait = g.take(key, t0).expect("the 11th waits");
        assert!(wait <= GUESS_INTERVAL_PER_ADDRESS && wait > Duration::from_secs(5), "{wait:?}");
        assert_eq!(g.take(key, t0 + wait), None);
        // Remembered while it counts, gone once its bucket is full again.
        let next = g.sweep(t0 + wait).expect("still counts");
        assert!(next > t0 + Duration::from_secs(60));
        assert_eq!(g.len(), 1);
        assert_eq!(g.sweep(next), None);
        assert_eq!(g.len(), 0);
    }
}
