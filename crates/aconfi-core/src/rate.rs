//! A token bucket: `burst` at once, then `per_second`. Time is passed in.

use std::time::{Duration, Instant};

/// Allows a burst, then a steady rate.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: f64, per_second: f64, now: Instant) -> Self {
        TokenBucket { burst, per_second, tokens: burst, last: now }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.take_n(1.0, now)
    }

    /// Tokens there would be at `now` (never more than the burst).
    fn level(&self, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + dt * self.per_second).min(self.burst)
    }

    /// How long until one token is there (zero if one is).
    pub fn wait(&self, now: Instant) -> Duration {
        self.wait_for(1.0, now)
    }

    /// How long until the bucket is full again.
    pub fn until_full(&self, now: Instant) -> Duration {
        self.wait_for(self.burst, now)
    }

    /// Whether the bucket is full: it then says no more than a new one.
    pub fn is_full(&self, now: Instant) -> bool {
        self.level(now) >= self.burst
    }

    fn wait_for(&self, n: f64, now: Instant) -> Duration {
        let missing = (n - self.level(now)).max(0.0);
        if missing == 0.0 || self.per_second <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(missing / self.per_second)
    }

    /// Takes `n` tokens (a budget of bytes, say) if there are that many;
    /// takes nothing otherwise.
    pub fn take_n(&mut self, n: f64, now: Instant) -> bool {
        self.tokens = self.level(now);
        self.last = now.max(self.last);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3.0, 2.0, t0);
        assert!((0..3).all(|_| b.take(t0)));
        assert!(!b.take(t0));
        assert!(b.take(t0 + Duration::from_millis(500)));
        assert!(!b.take(t0 + Duration::from_millis(500)));
        // Never more than the burst, however long the pause.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| b.take(later)).count(), 3);
    }

    #[test]
    fn a_byte_budget_refuses_what_does_not_fit_and_keeps_the_rest() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000.0, 100.0, t0);
        assert!(b.take_n(800.0, t0));
        assert!(!b.take_n(300.0, t0), "only 200 left");
        assert!(b.take_n(200.0, t0), "a refused take took nothing");
        assert!(b.take_n(100.0, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn it_says_how_long_until_a_token_and_until_full() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2.0, 0.5, t0);
        assert_eq!(b.wait(t0), Duration::ZERO);
        assert!(b.is_full(t0));
        assert!(b.take(t0) && b.take(t0));
        assert_eq!(b.wait(t0), Duration::from_secs(2));
        assert_eq!(b.until_full(t0), Duration::from_secs(4));
        assert!(!b.is_full(t0 + Duration::from_secs(3)));
        assert!(b.is_full(t0 + Duration::from_secs(4)));
    }
}
