//! The reconnect backoff, and the hold and keepalive timer arithmetic.
//!
//! After each consecutive failure the ConnectRetry delay doubles, from
//! `SessionConfig::connect_retry` up to `max_connect_retry`, and is then jittered down to
//! 75–100 % of itself (RFC 4271 §10) so that many speakers restarting together do not
//! reconnect in lockstep. The jitter comes from an RNG seeded by the caller, so tests are
//! deterministic. Reaching Established resets the backoff.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// Exponential reconnect backoff with jitter.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
    rng: SmallRng,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration, rng_seed: u64) -> Self {
        Backoff {
            base,
            cap: cap.max(base),
            failures: 0,
            rng: SmallRng::seed_from_u64(rng_seed),
        }
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The un-jittered delay for the current failure count.
    pub fn current(&self) -> Duration {
        let factor = 1u32
            .checked_shl(self.failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Notes one more failure and returns the jittered delay before the next attempt.
    pub fn fail(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let delay = self.current();
        let percent: u32 = self.rng.random_range(75..=100);
        delay * percent / 100
    }

    /// Success: start again from the base delay.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The keepalive interval for a negotiated hold time: the configured one, at most a third
/// of the hold time; zero when the hold time is zero (no keepalives).
pub(super) fn keepalive_interval(hold: Duration, configured: Option<Duration>) -> Duration {
    if hold.is_zero() {
        return Duration::ZERO;
    }
    let third = hold / 3;
    configured
        .map_or(third, |k| k.min(third))
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(60), 7);
        let delays: Vec<Duration> = (0..6).map(|_| b.fail()).collect();
        let caps = [5, 10, 20, 40, 60, 60];
        for (d, cap) in delays.iter().zip(caps) {
            let cap = Duration::from_secs(cap);
            assert!(*d <= cap && *d >= cap * 3 / 4, "{d:?} vs {cap:?}");
        }
        b.reset();
        assert_eq!(b.current(), Duration::from_secs(5));
    }

    #[test]
    fn keepalive_is_a_third_of_hold_at_most() {
        let s = Duration::from_secs;
        assert_eq!(keepalive_interval(s(90), None), s(30));
        assert_eq!(keepalive_interval(s(9), Some(s(10))), s(3));
        assert_eq!(keepalive_interval(s(90), Some(s(10))), s(10));
        assert_eq!(keepalive_interval(s(0), Some(s(10))), s(0));
    }
}
