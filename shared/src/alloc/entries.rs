//! The allocator's table of Services, by key.
//!
//! Hashed rather than ordered: at a million Services a B-tree lookup was twenty string
//! comparisons, each three pointers away, and lookups were half the time of an allocation.
//! Each slot keeps its key's hash, so growing the table moves slots without reading the keys
//! again (re-hashing them was a sixth of the time). What needs key order sorts.

use super::request::ServiceKey;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;
use std::sync::Arc;

pub(super) struct Entries<V> {
    table: HashTable<Slot<V>>,
    hasher: DefaultHashBuilder,
}

struct Slot<V> {
    hash: u64,
    key: Arc<ServiceKey>,
    value: V,
}

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries {
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for Entries<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.sorted()).finish()
    }
}

impl<V> Entries<V> {
    fn hash(&self, key: &ServiceKey) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(super) fn get(&self, key: &ServiceKey) -> Option<&V> {
        self.table
            .find(self.hash(key), |s| *s.key == *key)
            .map(|s| &s.value)
    }

    /// Sets `key`'s value, returning the one it replaces.
    pub(super) fn insert(&mut self, key: Arc<ServiceKey>, value: V) -> Option<V> {
        let hash = self.hash(&key);
        match self.table.find_mut(hash, |s| s.key == key) {
            Some(slot) => Some(std::mem::replace(&mut slot.value, value)),
            None => {
                self.table
                    .insert_unique(hash, Slot { hash, key, value }, |s| s.hash);
                None
            }
        }
    }

    pub(super) fn remove(&mut self, key: &ServiceKey) -> Option<V> {
        let hash = self.hash(key);
        let found = self.table.find_entry(hash, |s| *s.key == *key).ok()?;
        Some(found.remove().0.value)
    }

    /// Every entry, sorted by key.
    pub(super) fn sorted(&self) -> Vec<(&ServiceKey, &V)> {
        let mut all: Vec<_> = self.table.iter().map(|s| (&*s.key, &s.value)).collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Empties the table, returning what it held sorted by key.
    pub(super) fn take_sorted(&mut self) -> Vec<(Arc<ServiceKey>, V)> {
        let mut all: Vec<_> = std::mem::take(&mut self.table)
            .into_iter()
            .map(|s| (s.key, s.value))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> ServiceKey {
        ServiceKey::new(format!("ns-{}", i % 7), format!("svc-{i}"))
    }

    #[test]
    fn behaves_as_a_map_through_growth() {
        let mut e = Entries::default();
        for i in 0..5000 {
            assert_eq!(e.insert(Arc::new(key(i)), i), None);
        }
        assert_eq!(e.insert(Arc::new(key(42)), 4200), Some(42));
        for i in (0..5000).step_by(2) {
            assert_eq!(e.remove(&key(i)), Some(if i == 42 { 4200 } else { i }));
        }
        assert_eq!(e.remove(&key(0)), None);
        assert_eq!(e.get(&key(3)), Some(&3));
        assert_eq!(e.get(&key(4)), None);
        let sorted = e.sorted();
        assert_eq!(sorted.len(), 2500);
        assert!(sorted.windows(2).all(|w| w[0].0 < w[1].0));
        let taken = e.take_sorted();
        assert_eq!(taken.len(), 2500);
        assert!(taken.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(e.get(&key(3)), None);
    }
}
