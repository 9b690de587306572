//! Per-requester reply rate limiting: a token bucket per source MAC.
//!
//! Each interface's receive thread owns one [`RateLimiter`] (no locking). A host flooding
//! questions gets `rate` replies a second after an initial burst; others are unaffected. The
//! table is bounded: when it is full, idle buckets (full again, so forgetting them changes
//! nothing) are dropped, and if every bucket is busy, newcomers share one overflow bucket, so
//! random source MACs cannot grow memory or buy unlimited replies.

use std::collections::HashMap;
use std::time::Instant;

use ferrolb_shared::l2::packet::MacAddr;

/// The most requesters tracked separately per interface.
pub(super) const MAX_SOURCES: usize = 4096;

/// A token bucket: `burst` tokens at most, refilled at `rate` a second.
#[derive(Clone, Copy, Debug)]
pub(super) struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(super) fn full(burst: f64, now: Instant) -> Self {
        TokenBucket {
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
    }

    /// Takes a token if there is one.
    pub(super) fn take(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        self.refill(rate, burst, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn is_full_at(&self, rate: f64, burst: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * rate >= burst
    }
}

/// Token buckets per source MAC, with [`MAX_SOURCES`] entries at most.
#[derive(Debug)]
pub(super) struct RateLimiter {
    /// Replies a second per source; 0 disables limiting.
    rate: f64,
    burst: f64,
    max_sources: usize,
    buckets: HashMap<MacAddr, TokenBucket>,
    overflow: Option<TokenBucket>,
}

impl RateLimiter {
    /// `rate` replies a second per source, with a burst of twice that.
    pub(super) fn new(rate_per_source: u32) -> Self {
        Self::with_capacity(rate_per_source, MAX_SOURCES)
    }

    pub(super) fn with_capacity(rate_per_source: u32, max_sources: usize) -> Self {
        let rate = f64::from(rate_per_source);
        RateLimiter {
            rate,
            burst: (2.0 * rate).max(1.0),
            max_sources,
            buckets: HashMap::new(),
            overflow: None,
        }
    }

    /// Whether a reply to `source` may go out now (and if so, it is counted).
    pub(super) fn allow(&mut self, source: MacAddr, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let (rate, burst) = (self.rate, self.burst);
        if !self.buckets.contains_key(&source) && self.buckets.len() >= self.max_sources {
            self.buckets.retain(|_, b| !b.is_full_at(rate, burst, now));
            if self.buckets.len() >= self.max_sources {
                return self
                    .overflow
                    .get_or_insert_with(|| TokenBucket::full(burst, now))
                    .take(rate, burst, now);
            }
        }
        self.buckets
            .entry(source)
            .or_insert_with(|| TokenBucket::full(burst, now))
            .take(rate, burst, now)
    }

    #[cfg(test)]
    pub(super) fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn mac(n: u32) -> MacAddr {
        let [a, b, c, d] = n.to_be_bytes();
        MacAddr([2, 0, a, b, c, d])
    }

    fn allowed(limiter: &mut RateLimiter, source: MacAddr, now: Instant, tries: u32) -> u32 {
        (0..tries).filter(|_| limiter.allow(source, now)).count() as u32
    }

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(50);
        assert_eq!(allowed(&mut limiter, mac(1), t0, 500), 100);
        // 100 ms later: 5 more tokens.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(allowed(&mut limiter, mac(1), t1, 500), 5);
        // Refill is capped at the burst.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(allowed(&mut limiter, mac(1), t2, 500), 100);
    }

    #[test]
    fn sources_are_independent() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(1);
        assert_eq!(allowed(&mut limiter, mac(1), t0, 10), 2);
        assert_eq!(allowed(&mut limiter, mac(2), t0, 10), 2);
        assert!(!limiter.allow(mac(1), t0));
    }

    #[test]
    fn zero_disables_limiting() {
        let mut limiter = RateLimiter::new(0);
        assert_eq!(
            allowed(&mut limiter, mac(1), Instant::now(), 10_000),
            10_000
        );
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn the_table_is_bounded_and_newcomers_share_an_overflow_bucket() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::with_capacity(1, 3);
        for n in 0..3 {
            assert!(limiter.allow(mac(n), t0));
        }
        // Every bucket is busy (not full), so newcomers share the overflow bucket (burst 2).
        assert!(limiter.allow(mac(100), t0));
        assert!(limiter.allow(mac(101), t0));
        assert!(!limiter.allow(mac(102), t0));
        assert_eq!(limiter.tracked(), 3);
        // Once the old buckets are full again they are forgotten and make room.
        let later = t0 + Duration::from_secs(5);
        assert!(limiter.allow(mac(103), later));
        assert_eq!(limiter.tracked(), 1);
    }
}
