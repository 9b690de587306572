//! A set kept as a sorted vector, for the many small sets a large state holds (the addresses
//! and Services of one BGP route, the peers of one Service): a `BTreeSet`'s first node has
//! room for eleven elements whatever it holds (~0.3-0.6 KB), this holds what it holds.
//! Lookups are binary searches; an insert shifts the elements after it and grows the vector
//! by one, which for the sizes here (mostly one or two) is cheaper than a tree. A large set
//! is built some other way and collected ([`FromIterator`]: one sort).

use std::fmt;

/// A set of `T` in ascending order, without repeats.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SmallSet<T>(Vec<T>);

impl<T> Default for SmallSet<T> {
    fn default() -> Self {
        SmallSet(Vec::new())
    }
}

impl<T: Ord> SmallSet<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `value`; `false` if it was there already. Grows by one element at a time: the
    /// sets are small and mostly built once.
    pub fn insert(&mut self, value: T) -> bool {
        match self.0.binary_search(&value) {
            Ok(_) => false,
            Err(at) => {
                self.0.reserve_exact(1);
                self.0.insert(at, value);
                true
            }
        }
    }

    pub fn contains(&self, value: &T) -> bool {
        self.0.binary_search(value).is_ok()
    }
}

impl<T> SmallSet<T> {
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
}

impl<T: Ord> Extend<T> for SmallSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for value in iter {
            self.insert(value);
        }
    }
}

impl<T: Ord> FromIterator<T> for SmallSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut values: Vec<T> = iter.into_iter().collect();
        values.sort();
        values.dedup();
        values.shrink_to_fit();
        SmallSet(values)
    }
}

impl<T: Ord, const N: usize> From<[T; N]> for SmallSet<T> {
    fn from(values: [T; N]) -> Self {
        values.into_iter().collect()
    }
}

impl<'a, T> IntoIterator for &'a SmallSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T> IntoIterator for SmallSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<T: fmt::Debug> fmt::Debug for SmallSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        /// Whatever is inserted, in whatever order, it holds what a `BTreeSet` would, in the
        /// same order, and answers the same.
        #[test]
        fn behaves_as_a_btree_set(values in proptest::collection::vec(0u8..32, 0..40), probe in 0u8..32) {
            let mut small = SmallSet::new();
            let mut tree = BTreeSet::new();
            for v in &values {
                prop_assert_eq!(small.insert(*v), tree.insert(*v));
            }
            let expected: Vec<u8> = tree.iter().copied().collect();
            prop_assert_eq!(small.as_slice(), expected.as_slice());
            prop_assert_eq!(small.contains(&probe), tree.contains(&probe));
            prop_assert_eq!(small.len(), tree.len());
            let collected: SmallSet<u8> = values.iter().copied().collect();
            prop_assert_eq!(collected, small);
        }
    }

    #[test]
    fn holds_only_what_it_holds() {
        let mut s = SmallSet::new();
        s.insert("one".to_string());
        assert_eq!(s.0.capacity(), 1);
        assert_eq!(format!("{s:?}"), r#"{"one"}"#);
    }
}
