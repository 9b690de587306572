//! The reference side of the property test: invariants and a brute-force allocator computed
//! from the pool definitions, never from the allocator's own structures.

use super::*;

/// The pool owning `ip` in the config, computed directly from the definitions.
pub(super) fn owner(pools: &[PoolDef], ip: IpAddr) -> Option<&PoolDef> {
    pools
        .iter()
        .find(|p| p.ranges.iter().any(|r| r.start <= ip && ip <= r.end))
}

pub(super) fn buggy(pool: &PoolDef, ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v) if pool.avoid_buggy_ips && matches!(v.octets()[3], 0 | 255))
}

pub(super) fn admits(pool: &PoolDef, req: &ServiceRequest) -> bool {
    let Some(a) = &pool.allocation else {
        return true;
    };
    let ns = (a.namespaces.is_empty() && a.namespace_selectors.is_empty())
        || a.namespaces.contains(&req.key.namespace)
        || a.namespace_selectors
            .iter()
            .any(|s| s.matches(&req.namespace_labels));
    let svc = a.service_selectors.is_empty()
        || a.service_selectors
            .iter()
            .any(|s| s.matches(&req.service_labels));
    ns && svc
}

pub(super) fn key_of(req: &ServiceRequest) -> Option<&str> {
    req.sharing_key.as_deref().filter(|k| !k.is_empty())
}

pub(super) fn check_invariants(w: &World) {
    let mut holders: BTreeMap<IpAddr, Vec<&ServiceRequest>> = BTreeMap::new();
    let mut in_use: BTreeMap<(&str, Family), BTreeSet<IpAddr>> = BTreeMap::new();
    for (key, asg) in w.alloc.assignments() {
        let req = &w.requests[key];
        let families: BTreeSet<Family> = asg.ips.iter().map(|ip| Family::of(*ip)).collect();
        assert!(
            !asg.ips.is_empty() && families.len() == asg.ips.len(),
            "{asg:?}"
        );
        if req.family_policy == FamilyPolicy::SingleStack {
            assert_eq!(asg.ips.len(), 1, "{key}: {asg:?}");
        }
        if !req.requested_ips.is_empty() {
            let want: BTreeSet<_> = req.requested_ips.iter().collect();
            assert_eq!(
                want,
                asg.ips.iter().collect(),
                "{key} did not get what it asked for"
            );
        }
        for &ip in &asg.ips {
            let pool = owner(&w.pools, ip).unwrap_or_else(|| panic!("{key}: {ip} in no pool"));
            assert_eq!(*pool.name, *asg.pool, "{key}: {ip} is not in its pool");
            assert!(admits(pool, req), "{key} may not use pool {}", pool.name);
            assert!(!buggy(pool, ip), "{key} holds buggy {ip}");
            // A pool with autoAssign off may hold it unasked: the address was kept when the
            // flag was turned off (the fresh allocations and reclaims are checked against the
            // model where they happen).
            if let Some(named) = &req.requested_pool {
                assert_eq!(named, &pool.name);
            }
            holders.entry(ip).or_default().push(req);
            in_use
                .entry((&pool.name, Family::of(ip)))
                .or_default()
                .insert(ip);
        }
    }
    for (ip, reqs) in &holders {
        let keys: Vec<ServiceKey> = reqs.iter().map(|r| r.key.clone()).collect();
        assert_eq!(w.alloc.services_on(*ip), keys);
        if reqs.len() > 1 {
            for (i, a) in reqs.iter().enumerate() {
                for b in &reqs[i + 1..] {
                    assert!(key_of(a).is_some() && key_of(a) == key_of(b), "{ip}: keys");
                    assert_eq!(a.backend_key, b.backend_key, "{ip}: backends");
                    assert!(!a.ports.iter().any(|p| b.ports.contains(p)), "{ip}: ports");
                }
            }
        }
    }
    let stats = w.alloc.pool_stats();
    assert_eq!(stats.len(), w.pools.len());
    for (s, pool) in stats.iter().zip(&w.pools) {
        assert_eq!(s.name, pool.name);
        let count = |f: Family| {
            all_addresses()
                .into_iter()
                .filter(|ip| {
                    Family::of(*ip) == f && owner(&w.pools, *ip) == Some(pool) && !buggy(pool, *ip)
                })
                .count() as u128
        };
        let used = |f: Family| {
            in_use
                .get(&(pool.name.as_str(), f))
                .map_or(0, |s| s.len() as u128)
        };
        assert_eq!(
            (s.capacity_v4, s.capacity_v6),
            (count(Family::V4), count(Family::V6))
        );
        assert_eq!(
            (s.in_use_v4, s.in_use_v6),
            (used(Family::V4), used(Family::V6)),
            "{}",
            s.name
        );
    }
}

/// The pools a fresh allocation tries, as groups in order: the named pool alone; or the
/// auto-assign pools pinned to services that admit this one, by priority (unset last) then
/// name, and then the auto-assign pools open to all, by name. Computed from the definitions.
pub(super) fn candidate_groups<'a>(
    pools: &'a [PoolDef],
    req: &ServiceRequest,
) -> Vec<Vec<&'a PoolDef>> {
    if let Some(name) = &req.requested_pool {
        return vec![
            pools
                .iter()
                .filter(|p| &p.name == name && admits(p, req))
                .collect(),
        ];
    }
    let priority = |p: &PoolDef| p.allocation.as_ref().and_then(|a| a.priority);
    let mut pinned: Vec<&PoolDef> = pools
        .iter()
        .filter(|p| p.auto_assign && p.allocation.is_some() && admits(p, req))
        .collect();
    pinned.sort_by_key(|p| (priority(p).is_none(), priority(p), p.name.clone()));
    let open = pools
        .iter()
        .filter(|p| p.auto_assign && p.allocation.is_none())
        .collect();
    vec![pinned, open]
}

/// Whether a service may keep `ips` after the pools became `pools`: the rules for a requested
/// address, with autoAssign not consulted. All in one pool that admits it (the named one, if
/// any) and none buggy there. (Sharing between the holders does not change on a pool edit.)
pub(super) fn keeps(pools: &[PoolDef], req: &ServiceRequest, ips: &[IpAddr]) -> bool {
    let owners: Option<Vec<&PoolDef>> = ips.iter().map(|ip| owner(pools, *ip)).collect();
    let Some(owners) = owners else {
        return false;
    };
    let Some(first) = owners.first() else {
        return false;
    };
    owners.iter().all(|p| p.name == first.name)
        && admits(first, req)
        && ips.iter().all(|ip| !buggy(first, *ip))
        && req.requested_pool.as_ref().is_none_or(|n| *n == first.name)
}

/// Whether `req` may join every current holder of `ip` (other than itself).
pub(super) fn may_share(w: &World, req: &ServiceRequest, ip: IpAddr) -> bool {
    let holders = w.alloc.services_on(ip);
    holders.iter().filter(|h| **h != req.key).all(|holder| {
        let other = &w.requests[holder];
        key_of(req).is_some()
            && key_of(req) == key_of(other)
            && req.backend_key == other.backend_key
            && !req.ports.iter().any(|p| other.ports.contains(p))
    })
}

/// The first address of `family` in `pool`'s walk (ranges in order, each ascending) that is
/// not buggy and is free or shareable by `req`.
pub(super) fn first_usable_by_walking(
    w: &World,
    pool: &PoolDef,
    family: Family,
    req: &ServiceRequest,
) -> Option<IpAddr> {
    all_addresses()
        .into_iter()
        .filter(|ip| Family::of(*ip) == family && owner(&w.pools, *ip) == Some(pool))
        .filter(|ip| !buggy(pool, *ip) && may_share(w, req, *ip))
        .min_by_key(|ip| {
            let range = pool
                .ranges
                .iter()
                .position(|r| r.start <= *ip && *ip <= r.end);
            (range, *ip)
        })
}

/// A fresh allocation computed the slow, obvious way: the pool groups, within each the family
/// passes, the pools in preference order, every address of each walked.
pub(super) fn reference_allocation(w: &World, req: &ServiceRequest) -> Option<Assignment> {
    let mut families: Vec<Family> = Vec::new();
    for f in &req.families {
        if !families.contains(f) {
            families.push(*f);
        }
    }
    if families.is_empty() {
        families = match req.family_policy {
            FamilyPolicy::SingleStack => vec![Family::V4],
            _ => vec![Family::V4, Family::V6],
        };
    }
    if req.family_policy == FamilyPolicy::SingleStack {
        families.truncate(1);
    }
    // PreferDualStack: the pair, else either family alone, in the service's order.
    let mut passes = vec![families.clone()];
    if req.family_policy == FamilyPolicy::PreferDualStack && families.len() == 2 {
        passes.push(families[..1].to_vec());
        passes.push(families[1..].to_vec());
    }
    let groups = candidate_groups(&w.pools, req);
    groups.iter().find_map(|group| {
        passes.iter().find_map(|pass| {
            group.iter().find_map(|pool| {
                let ips: Option<Vec<IpAddr>> = pass
                    .iter()
                    .map(|f| first_usable_by_walking(w, pool, *f, req))
                    .collect();
                Some(Assignment {
                    pool: pool.name.as_str().into(),
                    ips: ips?,
                })
            })
        })
    })
}
