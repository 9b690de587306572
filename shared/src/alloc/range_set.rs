//! A set of `u128` values kept as disjoint inclusive intervals.
//!
//! Each pool range's free addresses live in one of these, so a pool as large as an IPv6 /64
//! (or a whole /0) costs one map entry until it is fragmented, and every operation is
//! `O(log k)` in the number `k` of intervals, never in the number of addresses.

use std::collections::BTreeMap;

/// Disjoint inclusive intervals, keyed by start. Adjacent intervals are merged on insert, but
/// not necessarily after [`RangeSet::lowest`] trims buggy addresses: the set's *content* is what
/// matters, not its exact interval layout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    intervals: BTreeMap<u128, u128>,
}

impl RangeSet {
    /// The set holding every value of `start..=end` (empty when `start > end`).
    pub(crate) fn full(start: u128, end: u128) -> Self {
        let mut intervals = BTreeMap::new();
        if start <= end {
            intervals.insert(start, end);
        }
        Self { intervals }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// The interval holding `value`, if any.
    fn interval_of(&self, value: u128) -> Option<(u128, u128)> {
        let (&start, &end) = self.intervals.range(..=value).next_back()?;
        (end >= value).then_some((start, end))
    }

    pub(crate) fn contains(&self, value: u128) -> bool {
        self.interval_of(value).is_some()
    }

    /// The lowest value in the set. With `avoid_buggy`, values whose low byte is 0 or 255 (IPv4
    /// `.0`/`.255`) are dropped from the set as they reach the front, so each buggy address is
    /// discarded at most once per time it enters the set: amortized `O(log k)`.
    pub(crate) fn lowest(&mut self, avoid_buggy: bool) -> Option<u128> {
        loop {
            let (&start, &end) = self.intervals.first_key_value()?;
            if !avoid_buggy {
                return Some(start);
            }
            match skip_buggy(start) {
                Some(usable) if usable == start => return Some(start),
                Some(usable) if usable <= end => {
                    self.intervals.remove(&start);
                    self.intervals.insert(usable, end);
                    return Some(usable);
                }
                _ => {
                    self.intervals.remove(&start);
                }
            }
        }
    }

    /// Removes `value`, splitting its interval. Returns whether it was present.
    pub(crate) fn remove(&mut self, value: u128) -> bool {
        let Some((start, end)) = self.interval_of(value) else {
            return false;
        };
        self.intervals.remove(&start);
        // `start < value` implies `value > 0` and `value < end` implies `value < u128::MAX`,
        // so neither arithmetic step can overflow.
        if start < value {
            self.intervals.insert(start, value - 1);
        }
        if value < end {
            self.intervals.insert(value + 1, end);
        }
        true
    }

    /// Inserts `value`, merging it with the intervals just below and above. Returns whether it
    /// was absent.
    pub(crate) fn insert(&mut self, value: u128) -> bool {
        if self.contains(value) {
            return false;
        }
        let mut start = value;
        let mut end = value;
        if let Some((&below_start, &below_end)) = self.intervals.range(..value).next_back()
            && below_end.checked_add(1) == Some(value)
        {
            self.intervals.remove(&below_start);
            start = below_start;
        }
        if let Some(above) = value.checked_add(1)
            && let Some(above_end) = self.intervals.remove(&above)
        {
            end = above_end;
        }
        self.intervals.insert(start, end);
        true
    }

    /// Number of values, saturating at `u128::MAX` (a full /0 holds 2^128).
    #[cfg(test)]
    pub(crate) fn count(&self) -> u128 {
        self.intervals.iter().fold(0u128, |n, (s, e)| {
            n.saturating_add((e - s).saturating_add(1))
        })
    }

    #[cfg(test)]
    pub(crate) fn interval_count(&self) -> usize {
        self.intervals.len()
    }
}

/// Whether an IPv4 address (as an integer) ends in `.0` or `.255`, which some old clients and
/// routers mistake for network or broadcast addresses even inside a larger CIDR.
pub(crate) fn is_buggy_v4(value: u128) -> bool {
    matches!(value & 0xff, 0 | 0xff)
}

/// The first non-buggy value at or after `value`.
fn skip_buggy(value: u128) -> Option<u128> {
    match value & 0xff {
        0 => value.checked_add(1),
        0xff => value.checked_add(2),
        _ => Some(value),
    }
}

/// How many values of `start..=end` are usable, saturating at `u128::MAX` (a full IPv6 /0 has
/// 2^128 addresses, one more than `u128` holds). With `avoid_buggy` (IPv4 only), `.0` and `.255`
/// addresses are not counted.
pub(crate) fn usable_count(start: u128, end: u128, avoid_buggy: bool) -> u128 {
    if start > end {
        return 0;
    }
    let total = (end - start).saturating_add(1);
    if !avoid_buggy {
        return total;
    }
    total - count_with_low_byte(start, end, 0) - count_with_low_byte(start, end, 0xff)
}

/// How many values of `start..=end` have `value & 0xff == low`.
fn count_with_low_byte(start: u128, end: u128, low: u128) -> u128 {
    // Values in 0..=n with that low byte.
    let up_to = |n: u128| if n < low { 0 } else { (n - low) / 256 + 1 };
    up_to(end) - start.checked_sub(1).map_or(0, up_to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_splits_and_insert_merges() {
        let mut s = RangeSet::full(10, 20);
        assert!(s.remove(15));
        assert!(!s.remove(15));
        assert_eq!(s.interval_count(), 2);
        assert_eq!(s.count(), 10);
        assert!(s.remove(10));
        assert!(s.remove(20));
        assert_eq!(s.lowest(false), Some(11));
        assert!(s.insert(15));
        assert!(!s.insert(15));
        assert_eq!(s.interval_count(), 1);
        assert!(s.insert(10));
        assert!(s.insert(20));
        assert_eq!(s, RangeSet::full(10, 20));
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut s = RangeSet::full(0, u128::MAX);
        assert_eq!(s.count(), u128::MAX);
        assert!(s.remove(0));
        assert!(s.remove(u128::MAX));
        assert_eq!(s.lowest(false), Some(1));
        assert!(s.insert(u128::MAX));
        assert!(s.insert(0));
        assert_eq!(s, RangeSet::full(0, u128::MAX));
        assert_eq!(usable_count(0, u128::MAX, false), u128::MAX);
    }

    #[test]
    fn lowest_trims_buggy_values() {
        // 10.0.0.254 ..= 10.0.1.1 as low bytes 254, 255, 0, 1.
        let base = 0x0a00_0000u128;
        let mut s = RangeSet::full(base + 254, base + 257);
        assert_eq!(s.lowest(true), Some(base + 254));
        assert!(s.remove(base + 254));
        assert_eq!(s.lowest(true), Some(base + 257));
        assert!(s.remove(base + 257));
        assert_eq!(s.lowest(true), None);
        assert!(s.is_empty());
    }

    #[test]
    fn counts_buggy_values_arithmetically() {
        let base = 0x0a00_0000u128;
        assert_eq!(usable_count(base, base + 511, false), 512);
        assert_eq!(usable_count(base, base + 511, true), 508);
        assert_eq!(usable_count(base + 250, base + 261, false), 12);
        assert_eq!(usable_count(base + 250, base + 261, true), 10);
        assert_eq!(usable_count(0, 0, true), 0);
        assert_eq!(usable_count(5, 4, false), 0);
    }
}
