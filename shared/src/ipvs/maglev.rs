//! Weighted Maglev consistent hashing (Eisenbud et al., NSDI 2016), the `mh` scheduler.
//!
//! Every node builds the identical lookup table from the same backends, whatever order it
//! learnt them in, because backends are sorted by their identity and hashed with a fixed key.
//! When one of N backends leaves, close to 1/N of the entries change: the ones it owned.

use super::hash::hash64;

/// The default table size: a prime, so every skip value walks the whole table.
pub const DEFAULT_TABLE_SIZE: usize = 65_537;

const OFFSET_SEED: u64 = 0x6d61_676c_6576_3031; // "maglev01"
const SKIP_SEED: u64 = 0x6d61_676c_6576_3032; // "maglev02"

/// One backend: a stable identity (for example `10.244.1.5:8080`) and a weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaglevBackend {
    pub id: String,
    pub weight: u32,
}

/// Why a table cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MaglevError {
    #[error("Maglev table size {0} is not a prime number")]
    NotPrime(usize),
    #[error(
        "Maglev table size {size} is too small for {backends} backends (needs more entries than backends)"
    )]
    TooSmall { size: usize, backends: usize },
}

/// A built table: entry `i` holds the index (into [`MaglevTable::backends`]) of the backend
/// that owns hash bucket `i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaglevTable {
    /// Backends with weight > 0, sorted by id: the order every node agrees on.
    pub backends: Vec<MaglevBackend>,
    pub entries: Vec<u32>,
}

impl MaglevTable {
    /// Build the table of `size` entries (a prime). Backends with weight 0 get no entries;
    /// with no usable backend the table is empty.
    pub fn build(backends: &[MaglevBackend], size: usize) -> Result<Self, MaglevError> {
        if !is_prime(size) {
            return Err(MaglevError::NotPrime(size));
        }
        let mut live: Vec<MaglevBackend> =
            backends.iter().filter(|b| b.weight > 0).cloned().collect();
        live.sort_by(|a, b| a.id.cmp(&b.id));
        live.dedup_by(|a, b| a.id == b.id);
        if live.len() >= size {
            return Err(MaglevError::TooSmall {
                size,
                backends: live.len(),
            });
        }
        if live.is_empty() {
            return Ok(MaglevTable {
                backends: live,
                entries: Vec::new(),
            });
        }
        let m = size as u64;
        let perms: Vec<(u64, u64)> = live
            .iter()
            .map(|b| {
                (
                    hash64(OFFSET_SEED, b.id.as_bytes()) % m,
                    hash64(SKIP_SEED, b.id.as_bytes()) % (m - 1) + 1,
                )
            })
            .collect();
        // Weights are scaled so the largest is the number of turns per round: a backend of
        // weight w places w/max(w) as many entries per round as the heaviest one, on average.
        let max_weight = u64::from(live.iter().map(|b| b.weight).max().unwrap_or(1));
        let mut credit = vec![0u64; live.len()];
        let mut next = vec![0u64; live.len()];
        let mut entries = vec![u32::MAX; size];
        let mut filled = 0usize;
        while filled < size {
            for (i, b) in live.iter().enumerate() {
                credit[i] += u64::from(b.weight);
                if credit[i] < max_weight {
                    continue;
                }
                credit[i] -= max_weight;
                let (offset, skip) = perms[i];
                // Walk this backend's permutation to its next free entry.
                loop {
                    let slot = ((offset + next[i] * skip) % m) as usize;
                    next[i] += 1;
                    if entries[slot] == u32::MAX {
                        entries[slot] = i as u32;
                        filled += 1;
                        break;
                    }
                }
                if filled == size {
                    break;
                }
            }
        }
        Ok(MaglevTable {
            backends: live,
            entries,
        })
    }

    /// The backend for a flow hash, if the table has any backend.
    pub fn lookup(&self, hash: u64) -> Option<&MaglevBackend> {
        if self.entries.is_empty() {
            return None;
        }
        let slot = (hash % self.entries.len() as u64) as usize;
        self.backends.get(self.entries[slot] as usize)
    }

    /// The backend of one slot (`0..entries.len()`).
    pub fn at(&self, slot: usize) -> Option<&MaglevBackend> {
        self.backends.get(*self.entries.get(slot)? as usize)
    }

    /// The backend id of every entry (for comparing tables and measuring disruption).
    pub fn owners(&self) -> Vec<&str> {
        self.entries
            .iter()
            .map(|&i| self.backends[i as usize].id.as_str())
            .collect()
    }
}

/// Fraction of entries whose owner differs between two tables of the same size.
pub fn disruption(before: &MaglevTable, after: &MaglevTable) -> f64 {
    let (a, b) = (before.owners(), after.owners());
    if a.len() != b.len() || a.is_empty() {
        return 1.0;
    }
    a.iter().zip(&b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64
}

fn is_prime(n: usize) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

#[cfg(test)]
mod tests;
