//! Exponential backoff for watch streams (and the controller's failed writes).

use std::time::Duration;

/// Doubling delays from `min` up to `max`. As a [`kube::runtime::utils::Backoff`] it is reset
/// by the watch stream whenever an event gets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchBackoff {
    pub min: Duration,
    pub max: Duration,
    attempt: u32,
}

impl WatchBackoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        WatchBackoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }
}

impl Default for WatchBackoff {
    /// kube-runtime's default: 0.8 s doubling to 30 s.
    fn default() -> Self {
        WatchBackoff::new(Duration::from_millis(800), Duration::from_secs(30))
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let d = delay(self.attempt, self.min, self.max);
        self.attempt = self.attempt.saturating_add(1);
        Some(d)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// The delay before retry number `attempt` (0-based): `min * 2^attempt`, at most `max`.
pub fn delay(attempt: u32, min: Duration, max: Duration) -> Duration {
    min.checked_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::utils::Backoff;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = WatchBackoff::new(ms(100), ms(1000));
        let got: Vec<_> = b.by_ref().take(6).collect();
        assert_eq!(
            got,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        b.reset();
        assert_eq!(b.next(), Some(ms(100)));
    }

    #[test]
    fn never_overflows() {
        let max = Duration::from_secs(30);
        assert_eq!(delay(u32::MAX, Duration::from_secs(1), max), max);
        assert_eq!(delay(40, Duration::from_secs(u64::MAX / 2), max), max);
    }
}
