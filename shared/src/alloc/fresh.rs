//! Fresh allocation: which pools to try, in which order, and which address each offers.

use super::allocator::Allocator;
use super::error::AllocError;
use super::pool::Pool;
use super::request::{Family, Plan, ServiceRequest, join_ip};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// The pools eligible for automatic allocation, in preference order, and which of them have a
/// free address of each family, so exhausted pools are skipped without being looked at.
#[derive(Debug, Default)]
pub(super) struct AutoOrder {
    /// Rank to pool: first the auto-assign pools with a `serviceAllocation`, by priority (unset
    /// last) then name; then the auto-assign pools without one, by name. Whether a pinned pool
    /// admits a given service is checked per request.
    pub(super) order: Vec<usize>,
    /// Pool to rank, for pools in `order`.
    rank_of: Vec<Option<usize>>,
    /// Per family, the ranks of pools with a free usable address of that family.
    room: [BTreeSet<usize>; 2],
}

impl AutoOrder {
    pub(super) fn new(pools: &[Pool]) -> Self {
        let mut order: Vec<usize> = (0..pools.len())
            .filter(|&i| pools[i].auto_assign && pools[i].has_allocation())
            .collect();
        // Pools are sorted by name, so the index breaks priority ties by name.
        order.sort_by_key(|&i| (pools[i].priority().is_none(), pools[i].priority(), i));
        order.extend(
            (0..pools.len()).filter(|&i| pools[i].auto_assign && !pools[i].has_allocation()),
        );

        let mut rank_of = vec![None; pools.len()];
        let mut room: [BTreeSet<usize>; 2] = Default::default();
        for (rank, &pool) in order.iter().enumerate() {
            rank_of[pool] = Some(rank);
            for family in [Family::V4, Family::V6] {
                if pools[pool].has_free(family) {
                    room[family.index()].insert(rank);
                }
            }
        }
        Self {
            order,
            rank_of,
            room,
        }
    }

    /// Records whether `pool` still has room for `family`, after an address was taken or put back.
    pub(super) fn update(&mut self, pool_index: usize, pool: &Pool, family: Family) {
        let Some(Some(rank)) = self.rank_of.get(pool_index) else {
            return;
        };
        if pool.has_free(family) {
            self.room[family.index()].insert(*rank);
        } else {
            self.room[family.index()].remove(rank);
        }
    }

    /// The next pool to try at or after `from_rank`, as `(rank, pool)`. Without a sharing key
    /// only pools with room for the first family qualify, found in `O(log pools)`; with one,
    /// every pool does, since a full pool may still hold a shareable address.
    fn next_candidate(
        &self,
        from_rank: usize,
        families: &[Family],
        req: &ServiceRequest,
    ) -> Option<(usize, usize)> {
        let rank = match (req.sharing(), families.first()) {
            (None, Some(first)) => *self.room[first.index()].range(from_rank..).next()?,
            _ => from_rank,
        };
        self.order.get(rank).map(|&pool| (rank, pool))
    }
}

impl Allocator {
    /// A fresh allocation: the named pool, or the first eligible pool in preference order that
    /// can give every family; for PreferDualStack, a second pass asks for the first family only.
    pub(super) fn fresh(
        &mut self,
        req: &ServiceRequest,
        plan: &Plan,
    ) -> Result<(usize, Vec<IpAddr>), AllocError> {
        let all: &[Family] = &plan.families;
        let first = all.get(..1).unwrap_or_default();
        let passes: &[&[Family]] = if plan.single_fallback {
            &[all, first]
        } else {
            &[all]
        };
        let last = passes.last().copied().unwrap_or_default();

        if let Some(name) = &req.requested_pool {
            let pool = self.named_pool(name, req)?;
            for families in passes {
                if let Some(ips) = self.try_pool(pool, families, req) {
                    return Ok((pool, ips));
                }
            }
            return Err(self.explain(&[pool], last, req));
        }

        for families in passes {
            let mut from_rank = 0;
            while let Some((rank, pool)) = self.auto.next_candidate(from_rank, families, req) {
                from_rank = rank + 1;
                // The room check comes before the selectors, so full pools cost next to nothing.
                if !self.might_serve(pool, families, req) || self.pools[pool].serves(req).is_err() {
                    continue;
                }
                if let Some(ips) = self.try_pool(pool, families, req) {
                    return Ok((pool, ips));
                }
            }
        }

        let candidates: Vec<usize> = self
            .auto
            .order
            .iter()
            .copied()
            .filter(|&p| self.pools[p].serves(req).is_ok())
            .collect();
        if candidates.is_empty() {
            return Err(AllocError::NoPoolForService {
                service: req.key.clone(),
            });
        }
        Err(self.explain(&candidates, last, req))
    }

    /// Cheap pre-check: every family has a free address or an address shared under the
    /// request's key.
    fn might_serve(&self, pool: usize, families: &[Family], req: &ServiceRequest) -> bool {
        let p = &self.pools[pool];
        families.iter().all(|&f| {
            p.has_free(f)
                || req
                    .sharing()
                    .is_some_and(|key| p.has_shared(f, key, &req.backend_key))
        })
    }

    /// One address per family from `pool`, or `None` if any family has nothing to give.
    /// Nothing is taken yet.
    fn try_pool(
        &mut self,
        pool: usize,
        families: &[Family],
        req: &ServiceRequest,
    ) -> Option<Vec<IpAddr>> {
        families
            .iter()
            .map(|&family| self.pick(pool, family, req))
            .collect()
    }

    /// The first address of `family` in `pool`'s walk order that is free or held only by
    /// services the request may share with.
    fn pick(&mut self, pool: usize, family: Family, req: &ServiceRequest) -> Option<IpAddr> {
        let lowest = self.pools.get_mut(pool)?.lowest_free(family);
        // A shareable address wins if the walk reaches it before the lowest free one.
        if let Some(key) = req.sharing()
            && let Some(at) =
                self.pools[pool].lowest_shareable(family, key, &req.backend_key, &req.ports)
            && lowest.is_none_or(|l| at < l)
        {
            return Some(join_ip(family, at.1));
        }
        lowest.map(|(_, value)| join_ip(family, value))
    }

    /// The most specific reason none of `candidates` could serve `families`.
    fn explain(
        &mut self,
        candidates: &[usize],
        families: &[Family],
        req: &ServiceRequest,
    ) -> AllocError {
        let names = |this: &Self| -> Vec<String> {
            candidates
                .iter()
                .map(|&p| this.pools[p].name.clone())
                .collect()
        };
        let complete =
            |this: &Self, p: usize| families.iter().all(|&f| this.pools[p].has_family(f));
        if !candidates.iter().any(|&p| complete(self, p)) {
            if let [only] = candidates {
                let pool = &self.pools[*only];
                if let Some(&family) = families.iter().find(|&&f| !pool.has_family(f)) {
                    return AllocError::FamilyUnavailable {
                        family,
                        pool: Some(pool.name.clone()),
                    };
                }
            }
            if families.len() == 2 {
                return AllocError::DualStackUnavailable { pools: names(self) };
            }
            if let Some(&family) = families.first() {
                return AllocError::FamilyUnavailable { family, pool: None };
            }
        }
        if let [only] = candidates {
            for &family in families {
                if self.pick(*only, family, req).is_none() {
                    return AllocError::PoolExhausted {
                        pool: self.pools[*only].name.clone(),
                        family,
                    };
                }
            }
        }
        AllocError::NoAddressAvailable {
            families: families.to_vec(),
            pools: names(self),
        }
    }
}
