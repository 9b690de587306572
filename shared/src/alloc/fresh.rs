//! Fresh allocation: which pools to try, in which order, and which address each offers.
//!
//! Pools are tried in two groups: first the pools pinned to services (a `serviceAllocation`)
//! that admit this one, by priority; then the pools open to every service. A group is searched
//! whole before the next is looked at, and within a group the pool comes first, the family
//! fallback second: for PreferDualStack the first pool of the group that can give every family
//! wins, else the first that can give the first family, else the first that can give the
//! second. So a team's pinned IPv4-only pool gives its PreferDualStack Services one IPv4
//! address rather than sending them to an unpinned dual-stack pool, as MetalLB does.

use super::allocator::Allocator;
use super::error::{AllocError, FamilyNeed, SkipReason, SkippedPool};
use super::pool::Pool;
use super::request::{Family, Plan, ServiceRequest, join_ip};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::ops::Range;

/// The pools eligible for automatic allocation, in preference order, and which of them have a
/// free address of each family, so exhausted pools are skipped without being looked at.
#[derive(Debug, Default)]
pub(super) struct AutoOrder {
    /// Rank to pool: first the auto-assign pools with a `serviceAllocation`, by priority (unset
    /// last) then name; then the auto-assign pools without one, by name. Whether a pinned pool
    /// admits a given service is checked per request.
    pub(super) order: Vec<usize>,
    /// Ranks `0..pinned` are the pinned pools, the rest the open ones.
    pinned: usize,
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
        let pinned = order.len();
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
            pinned,
            rank_of,
            room,
        }
    }

    /// The rank ranges of the two groups: pinned pools, then open pools.
    fn groups(&self) -> [Range<usize>; 2] {
        [0..self.pinned, self.pinned..self.order.len()]
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

    /// The next pool to try in `ranks`, as `(rank, pool)`. Without a sharing key only pools
    /// with room for the first family qualify, found in `O(log pools)`; with one, every pool
    /// does, since a full pool may still hold a shareable address.
    fn next_candidate(
        &self,
        ranks: Range<usize>,
        families: &[Family],
        req: &ServiceRequest,
    ) -> Option<(usize, usize)> {
        let rank = match (req.sharing(), families.first()) {
            (None, Some(first)) => *self.room[first.index()].range(ranks).next()?,
            _ => Some(ranks.start).filter(|r| ranks.contains(r))?,
        };
        self.order.get(rank).map(|&pool| (rank, pool))
    }
}

/// The family sets to ask a pool for, best first: every family of the plan, then, for
/// PreferDualStack, each family alone in the service's order.
fn passes(plan: &Plan) -> Vec<&[Family]> {
    let all: &[Family] = &plan.families;
    let mut passes = vec![all];
    if plan.single_fallback {
        passes.extend(all.chunks(1));
    }
    passes
}

impl Allocator {
    /// A fresh allocation: the named pool, or the first eligible pool by group and preference
    /// order (see the module documentation).
    pub(super) fn fresh(
        &mut self,
        req: &ServiceRequest,
        plan: &Plan,
    ) -> Result<(usize, Vec<IpAddr>), AllocError> {
        let passes = passes(plan);
        if let Some(name) = &req.requested_pool {
            let pool = self.named_pool(name, req)?;
            for families in &passes {
                if let Some(ips) = self.try_pool(pool, families, req) {
                    return Ok((pool, ips));
                }
            }
            return Err(self.explain(&[pool], plan, req));
        }

        for group in self.auto.groups() {
            for families in &passes {
                let mut ranks = group.clone();
                while let Some((rank, pool)) =
                    self.auto.next_candidate(ranks.clone(), families, req)
                {
                    ranks.start = rank + 1;
                    // The room check comes before the selectors, so full pools cost next to
                    // nothing.
                    if !self.might_serve(pool, families, req)
                        || self.pools[pool].serves(req).is_err()
                    {
                        continue;
                    }
                    if let Some(ips) = self.try_pool(pool, families, req) {
                        return Ok((pool, ips));
                    }
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
                skipped: self.skipped_pools(req),
            });
        }
        Err(self.explain(&candidates, plan, req))
    }

    /// Every pool, by name, with the reason automatic allocation may not use it for `req`.
    fn skipped_pools(&self, req: &ServiceRequest) -> Vec<SkippedPool> {
        self.pools
            .iter()
            .map(|p| SkippedPool {
                pool: p.name.to_string(),
                why: match p.serves(req) {
                    Err(mismatch) => SkipReason::NotForService(mismatch),
                    Ok(()) => SkipReason::ManualOnly,
                },
            })
            .collect()
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

    /// The most specific reason none of `candidates` could serve the plan: a family no
    /// candidate has a range of, else which families ran out.
    fn explain(&mut self, candidates: &[usize], plan: &Plan, req: &ServiceRequest) -> AllocError {
        let families = &plan.families[..];
        let names = |this: &Self| -> Vec<String> {
            candidates
                .iter()
                .map(|&p| this.pools[p].name.to_string())
                .collect()
        };
        // Whether pool `p` has ranges for what the plan needs: every family, or for
        // PreferDualStack any one of them.
        let fits = |this: &Self, p: usize| {
            let has = |f: &Family| this.pools[p].has_family(*f);
            if plan.single_fallback {
                families.iter().any(has)
            } else {
                families.iter().all(has)
            }
        };
        if !candidates.iter().any(|&p| fits(self, p)) {
            if let [only] = candidates {
                let pool = &self.pools[*only];
                if let Some(&family) = families.iter().find(|&&f| !pool.has_family(f)) {
                    return AllocError::FamilyUnavailable {
                        family,
                        pool: Some(pool.name.to_string()),
                    };
                }
            }
            if families.len() == 2 && !plan.single_fallback {
                return AllocError::DualStackUnavailable { pools: names(self) };
            }
            if let Some(&family) = families.first() {
                return AllocError::FamilyUnavailable { family, pool: None };
            }
        }
        if let [only] = candidates {
            // The families of the pool that ran out: for PreferDualStack every family the pool
            // has (one free would have done), otherwise the ones missing from a full answer.
            let pool = *only;
            let mut exhausted = Vec::new();
            for &family in families {
                if self.pools[pool].has_family(family) && self.pick(pool, family, req).is_none() {
                    exhausted.push(family);
                }
            }
            if !exhausted.is_empty() {
                return AllocError::PoolExhausted {
                    pool: self.pools[pool].name.to_string(),
                    families: exhausted,
                };
            }
        }
        let need = match *families {
            [a, b] if plan.single_fallback => FamilyNeed::Either(a, b),
            [a, b] => FamilyNeed::Both(a, b),
            [a, ..] => FamilyNeed::One(a),
            [] => FamilyNeed::One(Family::V4),
        };
        AllocError::NoAddressAvailable {
            need,
            pools: names(self),
        }
    }
}
