//! One pool's state: its ranges as disjoint segments in walk order, the free addresses of each,
//! usage counters, and an index of shared addresses by sharing key, backend and ports in use.
//!
//! Also [`Claims`], the map from an address to the single pool segment that owns it.

use super::error::PoolMismatch;
use super::range_set::{RangeSet, is_buggy_v4, usable_count};
use super::request::{BackendKey, Family, PoolDef, Protocol, ServiceAllocation, ServiceRequest};
use crate::selector::any_matches;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A position in a pool's walk order: segment index, then address value. Comparing two of these
/// compares which address the walk reaches first.
pub(crate) type Position = (usize, u128);

/// The protocol/port pairs in use on an address: the union over its holders, sorted, no
/// duplicates.
pub(crate) type PortSet = Vec<(Protocol, u16)>;

/// How a held address with a sharing key is filed in its pool's sharing index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ShareTag {
    pub(crate) key: String,
    pub(crate) backend: BackendKey,
    pub(crate) ports: PortSet,
}

/// Which pool segment owns each address, per family.
///
/// Overlapping ranges are a configuration error that validation rejects, but the allocator must
/// still behave: an address belongs to the first pool (by name) and the first range (in list
/// order) that lists it, and later ranges simply lack it. That keeps "one address, one pool"
/// true, so an address is never free in one pool while held through another.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    by_family: [BTreeMap<u128, Claim>; 2],
}

#[derive(Debug, Clone, Copy)]
struct Claim {
    end: u128,
    pool: usize,
    segment: usize,
}

impl Claims {
    /// The `(pool, segment)` owning `value`.
    pub(crate) fn locate(&self, family: Family, value: u128) -> Option<(usize, usize)> {
        let (_, claim) = self.by_family[family.index()].range(..=value).next_back()?;
        (claim.end >= value).then_some((claim.pool, claim.segment))
    }

    /// The parts of `start..=end` nobody owns yet, ascending.
    fn unclaimed(&self, family: Family, start: u128, end: u128) -> Vec<(u128, u128)> {
        let map = &self.by_family[family.index()];
        let mut parts = Vec::new();
        let mut cursor = start;
        if let Some((_, c)) = map.range(..start).next_back()
            && c.end >= start
        {
            if c.end >= end {
                return parts;
            }
            cursor = c.end + 1;
        }
        for (&s, c) in map.range(start..=end) {
            if s > cursor {
                parts.push((cursor, s - 1));
            }
            if c.end >= end {
                return parts;
            }
            // `c.end < end`, so this cannot overflow.
            cursor = cursor.max(c.end + 1);
        }
        parts.push((cursor, end));
        parts
    }

    fn claim(&mut self, family: Family, start: u128, end: u128, pool: usize, segment: usize) {
        self.by_family[family.index()].insert(start, Claim { end, pool, segment });
    }
}

/// One family's part of a pool.
#[derive(Debug, Default)]
struct FamilyPool {
    /// Free addresses per segment, segments in walk order.
    segments: Vec<RangeSet>,
    /// Segments whose free set is non-empty, so the lowest free address is found without
    /// stepping over exhausted segments. A listed segment may hold only buggy addresses until
    /// [`RangeSet::lowest`] trims them.
    with_free: BTreeSet<usize>,
    capacity: u128,
    in_use: u128,
    /// Held addresses whose holders carry a sharing key, by key, backend and ports in use.
    /// A newcomer may join exactly the addresses under its key and backend whose ports are
    /// disjoint from its own, so grouping by port set lets it check one address per group
    /// (the lowest) instead of every shared address: many services under one key with the
    /// same ports form a single group.
    shared: BTreeMap<String, BTreeMap<BackendKey, BTreeMap<PortSet, BTreeSet<Position>>>>,
}

#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) name: Arc<str>,
    pub(crate) auto_assign: bool,
    avoid_buggy: bool,
    allocation: Option<ServiceAllocation>,
    families: [FamilyPool; 2],
}

impl Pool {
    /// Builds pool number `index`, claiming its addresses in `claims`. Invalid ranges
    /// (mixed-family or reversed) are skipped; already-claimed parts are left out.
    pub(crate) fn new(def: PoolDef, index: usize, claims: &mut Claims) -> Self {
        let mut families: [FamilyPool; 2] = Default::default();
        for range in &def.ranges {
            let Some((family, start, end)) = range.bounds() else {
                continue;
            };
            let avoid = def.avoid_buggy_ips && family == Family::V4;
            let fam = &mut families[family.index()];
            for (s, e) in claims.unclaimed(family, start, end) {
                let segment = fam.segments.len();
                claims.claim(family, s, e, index, segment);
                fam.segments.push(RangeSet::full(s, e));
                fam.with_free.insert(segment);
                fam.capacity = fam.capacity.saturating_add(usable_count(s, e, avoid));
            }
        }
        Self {
            name: def.name.into(),
            auto_assign: def.auto_assign,
            avoid_buggy: def.avoid_buggy_ips,
            allocation: def.allocation,
            families,
        }
    }

    pub(crate) fn priority(&self) -> Option<i32> {
        self.allocation.as_ref().and_then(|a| a.priority)
    }

    pub(crate) fn has_allocation(&self) -> bool {
        self.allocation.is_some()
    }

    /// Whether the pool's `serviceAllocation` (if any) admits the service.
    pub(crate) fn serves(&self, req: &ServiceRequest) -> Result<(), PoolMismatch> {
        let Some(alloc) = &self.allocation else {
            return Ok(());
        };
        let any_namespace = alloc.namespaces.is_empty() && alloc.namespace_selectors.is_empty();
        let namespace_ok = any_namespace
            || alloc.namespaces.contains(&req.key.namespace)
            || alloc
                .namespace_selectors
                .iter()
                .any(|s| s.matches(&req.namespace_labels));
        if !namespace_ok {
            return Err(PoolMismatch::Namespace {
                namespace: req.key.namespace.clone(),
            });
        }
        if !any_matches(&alloc.service_selectors, &req.service_labels) {
            return Err(PoolMismatch::ServiceLabels);
        }
        Ok(())
    }

    /// Whether the pool has any range of `family`.
    pub(crate) fn has_family(&self, family: Family) -> bool {
        !self.families[family.index()].segments.is_empty()
    }

    /// `O(1)`: whether some usable address of `family` is free.
    pub(crate) fn has_free(&self, family: Family) -> bool {
        let fam = &self.families[family.index()];
        fam.in_use < fam.capacity
    }

    /// Whether some address of `family` is held under `sharing` (key, backend).
    pub(crate) fn has_shared(&self, family: Family, key: &str, backend: &BackendKey) -> bool {
        self.families[family.index()]
            .shared
            .get(key)
            .is_some_and(|by_backend| by_backend.contains_key(backend))
    }

    pub(crate) fn is_buggy(&self, family: Family, value: u128) -> bool {
        self.avoid_buggy && family == Family::V4 && is_buggy_v4(value)
    }

    pub(crate) fn capacity(&self, family: Family) -> u128 {
        self.families[family.index()].capacity
    }

    pub(crate) fn in_use(&self, family: Family) -> u128 {
        self.families[family.index()].in_use
    }

    /// The first free usable address in walk order. Amortized `O(log n)`: exhausted segments
    /// leave `with_free` as soon as they are seen empty.
    pub(crate) fn lowest_free(&mut self, family: Family) -> Option<Position> {
        if !self.has_free(family) {
            return None;
        }
        let avoid = self.avoid_buggy && family == Family::V4;
        let fam = &mut self.families[family.index()];
        while let Some(&segment) = fam.with_free.first() {
            let free = fam.segments.get_mut(segment)?;
            if let Some(value) = free.lowest(avoid) {
                return Some((segment, value));
            }
            fam.with_free.remove(&segment);
        }
        None
    }

    /// The first address in walk order that a service with this key, backend and ports may
    /// join. `O(g log n)` for `g` distinct port sets in use under the key and backend.
    pub(crate) fn lowest_shareable(
        &self,
        family: Family,
        key: &str,
        backend: &BackendKey,
        ports: &[(Protocol, u16)],
    ) -> Option<Position> {
        self.families[family.index()]
            .shared
            .get(key)?
            .get(backend)?
            .iter()
            .filter(|(used, _)| !used.iter().any(|p| ports.contains(p)))
            .filter_map(|(_, positions)| positions.first().copied())
            .min()
    }

    /// Marks an address held: no longer free, and counted in use.
    pub(crate) fn take(&mut self, family: Family, at: Position) {
        let buggy = self.is_buggy(family, at.1);
        let fam = &mut self.families[family.index()];
        let (segment, value) = at;
        if let Some(free) = fam.segments.get_mut(segment)
            && free.remove(value)
        {
            if free.is_empty() {
                fam.with_free.remove(&segment);
            }
            if !buggy {
                fam.in_use += 1;
            }
        }
    }

    /// The inverse of [`Pool::take`]: the address is free again at once.
    pub(crate) fn put_back(&mut self, family: Family, at: Position) {
        let buggy = self.is_buggy(family, at.1);
        let fam = &mut self.families[family.index()];
        let (segment, value) = at;
        if let Some(free) = fam.segments.get_mut(segment)
            && free.insert(value)
        {
            fam.with_free.insert(segment);
            if !buggy {
                fam.in_use = fam.in_use.saturating_sub(1);
            }
        }
    }

    /// Files a held address in the sharing index under `tag`.
    pub(crate) fn file_shared(&mut self, family: Family, tag: &ShareTag, at: Position) {
        self.families[family.index()]
            .shared
            .entry(tag.key.clone())
            .or_default()
            .entry(tag.backend.clone())
            .or_default()
            .entry(tag.ports.clone())
            .or_default()
            .insert(at);
    }

    /// Removes an address filed under `tag`, pruning emptied levels so lookups stay exact.
    pub(crate) fn unfile_shared(&mut self, family: Family, tag: &ShareTag, at: Position) {
        let shared = &mut self.families[family.index()].shared;
        let Some(by_backend) = shared.get_mut(&tag.key) else {
            return;
        };
        if let Some(by_ports) = by_backend.get_mut(&tag.backend) {
            if let Some(positions) = by_ports.get_mut(&tag.ports) {
                positions.remove(&at);
                if positions.is_empty() {
                    by_ports.remove(&tag.ports);
                }
            }
            if by_ports.is_empty() {
                by_backend.remove(&tag.backend);
            }
        }
        if by_backend.is_empty() {
            shared.remove(&tag.key);
        }
    }

    #[cfg(test)]
    pub(crate) fn free_interval_count(&self, family: Family) -> usize {
        self.families[family.index()]
            .segments
            .iter()
            .map(RangeSet::interval_count)
            .sum()
    }

    #[cfg(test)]
    pub(crate) fn free_count(&self, family: Family) -> u128 {
        self.families[family.index()]
            .segments
            .iter()
            .map(RangeSet::count)
            .fold(0, u128::saturating_add)
    }
}
