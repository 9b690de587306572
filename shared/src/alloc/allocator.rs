//! The allocator proper: the pool set, who holds which address, and the rules for keeping,
//! reclaiming, honouring and freshly choosing addresses.

use super::entries::Entries;
use super::error::{AllocError, SharingReason};
use super::fresh::AutoOrder;
use super::holders::{Holders, Holding};
use super::kept::KeptRequest;
use super::pool::{Claims, Pool, PortSet, Position, ShareTag};
use super::request::{
    Assignment, Family, Plan, PoolDef, PoolStats, Protocol, ServiceKey, ServiceRequest,
    SharingTerms, plan, sharing_conflict, split_ip,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

/// Hands out LoadBalancer addresses from a set of pools. Pure state: no I/O, no clock.
///
/// Every operation is `O(log n)` in pool size (amortized where buggy IPv4 addresses are
/// trimmed lazily), plus `O(pools)` cheap checks when choosing a pool automatically.
#[derive(Debug, Default)]
pub struct Allocator {
    /// Sorted by name, so `pool_stats` and tie-breaks follow names.
    pub(super) pools: Vec<Pool>,
    by_name: BTreeMap<String, usize>,
    /// Which pools automatic allocation tries, in which order.
    pub(super) auto: AutoOrder,
    claims: Claims,
    holders: Holders,
    /// Keyed by a key the holders share. Boxed, so growing the table moves pointers only.
    entries: Entries<Box<Entry>>,
    /// Counts the releases that may let a waiting service in: a holder leaving an address
    /// (which frees it, or frees its ports for sharing). The reconciler retries the Services
    /// that wait for an address when this moves.
    releases: u64,
}

/// A service's assignment and the request it was last checked against (re-checked when the
/// pools change).
#[derive(Debug)]
struct Entry {
    assignment: Assignment,
    request: KeptRequest,
}

/// Where an address lives.
#[derive(Debug, Clone, Copy)]
struct Location {
    pool: usize,
    family: Family,
    at: Position,
}

impl Allocator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the pool set. Existing assignments are re-checked against their stored request:
    /// an address that now lies in another pool the service may use is re-homed to it (same IP,
    /// new pool name); an assignment with an address that left every usable pool is dropped
    /// whole. Returns the dropped keys, sorted, for the caller to re-allocate.
    ///
    /// Pool names should be unique; of duplicates only the first is kept.
    pub fn set_pools(&mut self, pools: Vec<PoolDef>) -> Vec<ServiceKey> {
        let mut defs = pools;
        // Stable, so the first of duplicate names survives `dedup_by`.
        defs.sort_by(|a, b| a.name.cmp(&b.name));
        defs.dedup_by(|later, earlier| later.name == earlier.name);

        let mut claims = Claims::default();
        self.pools = defs
            .into_iter()
            .enumerate()
            .map(|(index, def)| Pool::new(def, index, &mut claims))
            .collect();
        self.claims = claims;
        self.by_name = self
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.to_string(), i))
            .collect();
        self.auto = AutoOrder::new(&self.pools);

        // Rebuild the holdings from scratch against the new pools, in key order so the
        // outcome does not depend on history.
        self.holders.clear();
        let mut dropped = Vec::new();
        for (key, entry) in self.entries.take_sorted() {
            let request = entry.request.to_request(&key, &entry.assignment.ips);
            let kept = plan(&request)
                .ok()
                .and_then(|p| self.keepable(&request, &p, &entry.assignment.ips));
            match kept {
                Some((pool, ips)) => {
                    self.commit(&request, pool, ips);
                }
                None => dropped.push(ServiceKey::clone(&key)),
            }
        }
        dropped
    }

    /// Gives the service addresses, or keeps the ones it has. Idempotent. In order of
    /// preference: (1) its current assignment if still valid for this request; (2)
    /// `previous_ips` if valid; (3) `requested_ips`, all of them or an error; (4) a fresh
    /// allocation.
    ///
    /// A current assignment that no longer fits the request is released before the others are
    /// tried, so after an `Err` the service holds nothing (as MetalLB clears the status).
    pub fn assign(&mut self, req: &ServiceRequest) -> Result<Assignment, AllocError> {
        let plan = match plan(req) {
            Ok(plan) => plan,
            Err(e) => {
                self.release(&req.key);
                return Err(e);
            }
        };
        if let Some(entry) = self.entries.get(&req.key) {
            let current = entry.assignment.ips.clone();
            let claims_as_much = claims_as_much(req.terms(), entry.request.terms());
            let releases = self.releases;
            let kept = self.keepable(req, &plan, &current);
            // Released even when kept, and re-held below, so the stored request and the
            // sharing index follow the new request (its key or ports may have changed).
            self.release(&req.key);
            if let Some((pool, ips)) = kept {
                let assignment = self.commit(req, pool, ips);
                if claims_as_much && assignment.ips == current {
                    // Nothing became available to anyone else.
                    self.releases = releases;
                }
                return Ok(assignment);
            }
        }
        if !req.previous_ips.is_empty()
            && let Some((pool, ips)) = self.keepable(req, &plan, &req.previous_ips)
        {
            return Ok(self.commit(req, pool, ips));
        }
        let (pool, ips) = if plan.requested.is_empty() {
            self.fresh(req, &plan)?
        } else {
            self.place_requested(req, &plan)?
        };
        Ok(self.commit(req, pool, ips))
    }

    /// Frees the service's addresses (each becomes reusable at once unless other services
    /// still share it) and returns what it held.
    pub fn release(&mut self, key: &ServiceKey) -> Option<Assignment> {
        let entry = self.entries.remove(key)?;
        for &ip in &entry.assignment.ips {
            self.unhold(ip, key);
        }
        Some(entry.assignment)
    }

    /// A counter that moves whenever a service leaves an address it held (see the field).
    pub fn releases(&self) -> u64 {
        self.releases
    }

    pub fn assignment(&self, key: &ServiceKey) -> Option<&Assignment> {
        self.entries.get(key).map(|e| &e.assignment)
    }

    /// Every assignment, sorted by service key.
    pub fn assignments(&self) -> impl Iterator<Item = (&ServiceKey, &Assignment)> + '_ {
        self.entries
            .sorted()
            .into_iter()
            .map(|(k, e)| (k, &e.assignment))
    }

    /// Usage of every pool, sorted by pool name.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.pools
            .iter()
            .map(|p| PoolStats {
                name: p.name.to_string(),
                capacity_v4: p.capacity(Family::V4),
                capacity_v6: p.capacity(Family::V6),
                in_use_v4: p.in_use(Family::V4),
                in_use_v6: p.in_use(Family::V6),
            })
            .collect()
    }

    /// The services holding `ip`, sorted.
    pub fn services_on(&self, ip: IpAddr) -> Vec<ServiceKey> {
        self.holders.get(ip).map_or_else(Vec::new, |h| {
            h.services().iter().map(|k| ServiceKey::clone(k)).collect()
        })
    }

    /// The name of the pool owning `ip`, if any.
    pub fn pool_containing(&self, ip: IpAddr) -> Option<&str> {
        self.locate(ip).map(|loc| &*self.pools[loc.pool].name)
    }

    #[cfg(test)]
    pub(crate) fn pools_for_tests(&self) -> &[Pool] {
        &self.pools
    }

    fn locate(&self, ip: IpAddr) -> Option<Location> {
        let (family, value) = split_ip(ip);
        let (pool, segment) = self.claims.locate(family, value)?;
        Some(Location {
            pool,
            family,
            at: (segment, value),
        })
    }

    /// The first holder of `ip` (other than the requester) it may not share with, and why.
    pub(super) fn conflict(
        &self,
        ip: IpAddr,
        req: &ServiceRequest,
    ) -> Option<(ServiceKey, SharingReason)> {
        let holding = self.holders.get(ip)?;
        holding
            .services()
            .iter()
            .filter(|k| ***k != req.key)
            .find_map(|k| {
                let other = &self.entries.get(k.as_ref())?.request;
                sharing_conflict(req.terms(), other.terms())
                    .map(|reason| (ServiceKey::clone(k), reason))
            })
    }

    /// Whether `ips` may be kept (current or previous addresses) under `req`, by the rules for
    /// a requested address: the family set fits, they equal the requested IPs if any, all lie
    /// in one pool the service may use (the named one, if any; `autoAssign: false` does not
    /// matter), none is buggy there, and every other holder shares. Returns the pool and the
    /// IPs in family order.
    fn keepable(
        &self,
        req: &ServiceRequest,
        plan: &Plan,
        ips: &[IpAddr],
    ) -> Option<(usize, Vec<IpAddr>)> {
        let ordered = order_like(plan, ips)?;
        if !plan.requested.is_empty() && ordered != plan.requested {
            return None;
        }
        let mut pool = None;
        for &ip in &ordered {
            let loc = self.locate(ip)?;
            if pool.is_some_and(|p| p != loc.pool) {
                return None;
            }
            pool = Some(loc.pool);
            if self.pools[loc.pool].is_buggy(loc.family, loc.at.1)
                || self.conflict(ip, req).is_some()
            {
                return None;
            }
        }
        let pool = pool?;
        let p = &self.pools[pool];
        p.serves(req).ok()?;
        // `autoAssign` is not checked: it governs new automatic allocations only, and an
        // address the service already holds is judged like a requested one (MetalLB does the
        // same), so turning it off never renumbers a running Service.
        let allowed = req
            .requested_pool
            .as_ref()
            .is_none_or(|name| **name == *p.name);
        allowed.then_some((pool, ordered))
    }

    /// The pool asked for by name, if it exists and admits the service. `autoAssign: false`
    /// does not matter here: asking by name is what such pools are for.
    pub(super) fn named_pool(&self, name: &str, req: &ServiceRequest) -> Result<usize, AllocError> {
        let &pool = self
            .by_name
            .get(name)
            .ok_or_else(|| AllocError::UnknownPool {
                pool: name.to_owned(),
            })?;
        self.pools[pool]
            .serves(req)
            .map_err(|reason| AllocError::PoolNotForService {
                pool: name.to_owned(),
                reason,
            })?;
        Ok(pool)
    }

    /// Honours `plan.requested`: all in one pool usable by the service (the named one if any),
    /// none buggy there, none held by a service it may not share with.
    fn place_requested(
        &self,
        req: &ServiceRequest,
        plan: &Plan,
    ) -> Result<(usize, Vec<IpAddr>), AllocError> {
        let named = match &req.requested_pool {
            Some(name) => Some(self.named_pool(name, req)?),
            None => None,
        };
        let mut chosen: Option<(IpAddr, usize)> = None;
        for &ip in &plan.requested {
            let loc = self
                .locate(ip)
                .filter(|loc| named.is_none_or(|n| n == loc.pool));
            let Some(loc) = loc else {
                return Err(match named {
                    Some(n) => AllocError::IpNotInPool {
                        ip,
                        pool: self.pools[n].name.to_string(),
                    },
                    None => AllocError::IpNotInAnyPool { ip },
                });
            };
            let pool = &self.pools[loc.pool];
            match chosen {
                Some((first, p)) if p != loc.pool => {
                    return Err(AllocError::RequestedIpsInDifferentPools {
                        first,
                        first_pool: self.pools[p].name.to_string(),
                        second: ip,
                        second_pool: pool.name.to_string(),
                    });
                }
                Some(_) => {}
                None => chosen = Some((ip, loc.pool)),
            }
            pool.serves(req)
                .map_err(|reason| AllocError::PoolNotForService {
                    pool: pool.name.to_string(),
                    reason,
                })?;
            if pool.is_buggy(loc.family, loc.at.1) {
                return Err(AllocError::IpNotAllowedBuggy {
                    ip,
                    pool: pool.name.to_string(),
                });
            }
            if let Some((holder, reason)) = self.conflict(ip, req) {
                return Err(AllocError::IpInUse {
                    ip,
                    holder,
                    reason: Box::new(reason),
                });
            }
        }
        match chosen {
            Some((_, pool)) => Ok((pool, plan.requested.clone())),
            // `plan.requested` is non-empty whenever this is called.
            None => Err(AllocError::NoPoolForService {
                skipped: Vec::new(),
            }),
        }
    }

    /// Records the assignment and holds its addresses.
    fn commit(&mut self, req: &ServiceRequest, pool: usize, ips: Vec<IpAddr>) -> Assignment {
        let key = Arc::new(req.key.clone());
        for &ip in &ips {
            self.hold(ip, req, &key);
        }
        let assignment = Assignment {
            pool: self.pools[pool].name.clone(),
            ips,
        };
        self.entries.insert(
            key,
            Box::new(Entry {
                assignment: assignment.clone(),
                request: KeptRequest::new(req),
            }),
        );
        assignment
    }

    fn hold(&mut self, ip: IpAddr, req: &ServiceRequest, key: &Arc<ServiceKey>) {
        let loc = self.locate(ip);
        if let Some(holding) = self.holders.get_mut(ip) {
            holding.add(key);
            if let (_, Some(tag)) = holding.with_tag_mut() {
                let ports = port_union(tag.ports.iter().chain(&req.ports));
                refile(&mut self.pools, loc, tag, ports);
            }
            return;
        }
        let tag = req.sharing().map(|key| ShareTag {
            key: key.to_owned(),
            backend: req.backend_key.clone(),
            ports: port_union(&req.ports),
        });
        if let Some(loc) = loc {
            let pool = &mut self.pools[loc.pool];
            pool.take(loc.family, loc.at);
            if let Some(tag) = &tag {
                pool.file_shared(loc.family, tag, loc.at);
            }
            self.auto.update(loc.pool, pool, loc.family);
        }
        self.holders.insert(ip, Holding::new(key.clone(), tag));
    }

    /// Drops `key` from the holders of `ip`. Called after `key`'s entry is gone, so the ports
    /// still in use are those of the remaining holders' entries.
    fn unhold(&mut self, ip: IpAddr, key: &ServiceKey) {
        let loc = self.locate(ip);
        let Some(holding) = self.holders.get_mut(ip) else {
            return;
        };
        let removed = holding.remove(key);
        if removed {
            self.releases += 1;
        }
        if !(removed && holding.emptied_by_removal()) {
            if let (services, Some(tag)) = holding.with_tag_mut() {
                let entries = &self.entries;
                let ports = port_union(
                    services
                        .iter()
                        .filter_map(|k| entries.get(k.as_ref()))
                        .flat_map(|e| e.request.ports()),
                );
                refile(&mut self.pools, loc, tag, ports);
            }
            return;
        }
        let tag = self.holders.remove(ip).and_then(Holding::into_tag);
        if let Some(loc) = loc {
            let pool = &mut self.pools[loc.pool];
            if let Some(tag) = &tag {
                pool.unfile_shared(loc.family, tag, loc.at);
            }
            pool.put_back(loc.family, loc.at);
            self.auto.update(loc.pool, pool, loc.family);
        }
    }
}

/// Moves a shared address to the sharing-index group of its new port set.
fn refile(pools: &mut [Pool], loc: Option<Location>, tag: &mut ShareTag, ports: PortSet) {
    if ports == tag.ports {
        return;
    }
    if let Some(loc) = loc {
        pools[loc.pool].unfile_shared(loc.family, tag, loc.at);
    }
    tag.ports = ports;
    if let Some(loc) = loc {
        pools[loc.pool].file_shared(loc.family, tag, loc.at);
    }
}

/// Whether `new` claims an address at least as fully as `old` did: same sharing key and
/// backend, and every port `old` used. Then re-holding under `new` frees nothing.
fn claims_as_much(new: SharingTerms<'_>, old: SharingTerms<'_>) -> bool {
    new.key == old.key
        && new.backend == old.backend
        && old.ports.iter().all(|p| new.ports.contains(p))
}

/// The distinct protocol/port pairs of `ports`, sorted.
fn port_union<'a>(ports: impl IntoIterator<Item = &'a (Protocol, u16)>) -> PortSet {
    let set: BTreeSet<(Protocol, u16)> = ports.into_iter().copied().collect();
    set.into_iter().collect()
}

/// `ips` in the order of `plan.families`, if their families are exactly the plan's (or, for
/// PreferDualStack, just one of them). At most one address per family.
fn order_like(plan: &Plan, ips: &[IpAddr]) -> Option<Vec<IpAddr>> {
    let mut by_family: [Option<IpAddr>; 2] = [None, None];
    for &ip in ips {
        let slot = &mut by_family[Family::of(ip).index()];
        if slot.is_some_and(|prev| prev != ip) {
            return None;
        }
        *slot = Some(ip);
    }
    let present = by_family.iter().flatten().count();
    let wanted = if present == plan.families.len() {
        &plan.families[..]
    } else if plan.single_fallback && present == 1 {
        // PreferDualStack settled for one family: whichever the address is of.
        let at = plan
            .families
            .iter()
            .position(|f| by_family[f.index()].is_some())?;
        &plan.families[at..=at]
    } else {
        return None;
    };
    wanted.iter().map(|f| by_family[f.index()]).collect()
}
