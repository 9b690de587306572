//! Waiting for a condition, always with a deadline and a message that says what was awaited
//! and what was last seen.

use super::error::{LabError, Result};
use std::time::{Duration, Instant};

/// Poll `check` until it returns `Ok(Ok(value))`. `Ok(Err(seen))` means "not yet" and `seen`
/// describes the current state for the timeout message; `Err(e)` stops at once with `e`.
pub fn wait_until<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Result<std::result::Result<T, String>>,
) -> Result<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        let last = match check()? {
            Ok(v) => return Ok(v),
            Err(seen) => seen,
        };
        if start.elapsed() >= limit {
            return Err(LabError::Timeout {
                what: what.into(),
                after: limit,
                last,
            });
        }
        std::thread::sleep(pause);
        // Fast at first (most conditions come true within milliseconds), then gentler on the
        // machine for the slow ones.
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Poll `check` until it returns `Some`; the timeout message says only what was awaited.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> Result<T> {
    wait_until(what, limit, || {
        Ok(check().ok_or_else(|| "condition still false".to_string()))
    })
}
