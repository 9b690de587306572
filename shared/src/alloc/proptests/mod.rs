//! Property tests: random sequences of service creates/updates/deletes, pool edits and
//! controller restarts, checked against invariants computed independently of the allocator.

use super::*;
use crate::selector::{LabelSelector, Labels};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod model;
use model::*;

/// The address universe: 8 IPv4 blocks of 4, the even ones straddling `.255`/`.0` so that
/// `avoidBuggyIPs` matters, and 4 IPv6 blocks of 4. Small, so services collide and pools run
/// out.
const V4_BLOCKS: usize = 8;
const V6_BLOCKS: usize = 4;
const POOL_NAMES: [&str; 4] = ["a", "b", "c", "d"];
const NAMESPACES: [&str; 2] = ["ns1", "ns2"];
const PORTS: [(Protocol, u16); 3] = [
    (Protocol::Tcp, 80),
    (Protocol::Tcp, 443),
    (Protocol::Udp, 53),
];

/// The `i`-th IPv4 address of the universe (0..32).
fn v4(i: u32) -> IpAddr {
    let (block, offset) = (i / 4, i % 4);
    let low = if block % 2 == 0 { 254 } else { 10 };
    let start = u32::from(Ipv4Addr::new(10, 0, block as u8, low));
    IpAddr::V4(Ipv4Addr::from(start + offset))
}

/// The `i`-th IPv6 address of the universe (0..16).
fn v6(i: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(0xfd00u128 << 112 | u128::from(i)))
}

fn block(i: usize) -> IpRange {
    if i < V4_BLOCKS {
        let base = 4 * i as u32;
        IpRange::new(v4(base), v4(base + 3))
    } else {
        let base = 4 * (i - V4_BLOCKS) as u32;
        IpRange::new(v6(base), v6(base + 3))
    }
}

fn all_addresses() -> Vec<IpAddr> {
    (0..4 * V4_BLOCKS as u32)
        .map(v4)
        .chain((0..4 * V6_BLOCKS as u32).map(v6))
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pool_flags() -> impl Strategy<Value = (bool, bool, u8, Option<i32>)> {
    (
        prop::bool::weighted(0.8),
        any::<bool>(),
        0u8..4,
        prop::option::of(-1i32..3),
    )
}

fn allocation(kind: u8, priority: Option<i32>) -> Option<ServiceAllocation> {
    match kind {
        0 => None,
        1 => Some(ServiceAllocation {
            priority,
            namespaces: vec!["ns1".into()],
            ..Default::default()
        }),
        2 => Some(ServiceAllocation {
            priority,
            service_selectors: vec![LabelSelector {
                match_labels: labels(&[("app", "web")]),
                match_expressions: vec![],
            }],
            ..Default::default()
        }),
        _ => Some(ServiceAllocation {
            priority,
            ..Default::default()
        }),
    }
}

/// Pools over disjoint blocks (as validated config would be), ranges in a random order.
fn pools() -> impl Strategy<Value = Vec<PoolDef>> {
    (
        prop::collection::vec(
            (prop::option::weighted(0.8, 0usize..4), any::<u8>()),
            V4_BLOCKS + V6_BLOCKS,
        ),
        prop::collection::vec(pool_flags(), 4),
    )
        .prop_map(|(owners, flags)| {
            POOL_NAMES
                .iter()
                .enumerate()
                .map(|(p, name)| {
                    let mut blocks: Vec<(u8, usize)> = owners
                        .iter()
                        .enumerate()
                        .filter(|(_, (owner, _))| *owner == Some(p))
                        .map(|(b, (_, order))| (*order, b))
                        .collect();
                    blocks.sort();
                    let (auto_assign, avoid_buggy_ips, alloc, priority) = flags[p];
                    let allocation = allocation(alloc, priority);
                    PoolDef {
                        name: name.to_string(),
                        ranges: blocks.into_iter().map(|(_, b)| block(b)).collect(),
                        auto_assign,
                        avoid_buggy_ips,
                        allocation,
                    }
                })
                .collect()
        })
}

/// A random subset of the three ports.
fn ports() -> impl Strategy<Value = Vec<(Protocol, u16)>> {
    prop::collection::vec(any::<bool>(), 3).prop_map(|mask| {
        PORTS
            .iter()
            .zip(mask)
            .filter(|(_, m)| *m)
            .map(|(p, _)| *p)
            .collect()
    })
}

/// A request for service number `svc` (the key is fixed per number).
fn request(svc: usize) -> impl Strategy<Value = ServiceRequest> {
    let families = prop_oneof![
        Just(vec![]),
        Just(vec![Family::V4]),
        Just(vec![Family::V6]),
        Just(vec![Family::V4, Family::V6]),
        Just(vec![Family::V6, Family::V4]),
    ];
    let policy = prop_oneof![
        Just(FamilyPolicy::SingleStack),
        Just(FamilyPolicy::PreferDualStack),
        Just(FamilyPolicy::RequireDualStack),
    ];
    let requested = prop_oneof![
        6 => Just(vec![]),
        1 => (0..32u32).prop_map(|o| vec![v4(o)]),
        1 => (0..16u32).prop_map(|o| vec![v6(o)]),
        1 => (0..32u32, 0..16u32).prop_map(|(a, b)| vec![v4(a), v6(b)]),
    ];
    let pool = prop_oneof![
        4 => Just(None),
        2 => (0..4usize).prop_map(|p| Some(POOL_NAMES[p].to_string())),
        1 => Just(Some("zz".to_string())),
    ];
    let key = prop_oneof![
        2 => Just(None),
        1 => Just(Some(String::new())),
        2 => Just(Some("k1".to_string())),
        1 => Just(Some("k2".to_string())),
    ];
    let backend = prop_oneof![
        3 => Just(BackendKey::Cluster),
        1 => Just(BackendKey::Local("app=x".into())),
    ];
    // A stale status, as after a restart where another service took the address.
    let previous = prop_oneof![
        4 => Just(Vec::<IpAddr>::new()),
        1 => (0..32u32).prop_map(|o| vec![v4(o)]),
        1 => (0..32u32, 0..16u32).prop_map(|(a, b)| vec![v4(a), v6(b)]),
    ];
    let ports = ports();
    let shape = (families, policy, requested, previous);
    let sharing = (key, backend, ports);
    (shape, pool, sharing, any::<bool>()).prop_map(move |(shape, requested_pool, sharing, web)| {
        let (families, family_policy, requested_ips, previous_ips) = shape;
        let (sharing_key, backend_key, ports) = sharing;
        ServiceRequest {
            key: ServiceKey::new(NAMESPACES[svc % 2], format!("s{svc}")),
            namespace_labels: Default::default(),
            service_labels: if web {
                labels(&[("app", "web")]).into()
            } else {
                Default::default()
            },
            families,
            family_policy,
            requested_ips,
            requested_pool,
            sharing_key,
            backend_key,
            ports,
            previous_ips,
        }
    })
}

#[derive(Clone, Debug)]
enum Op {
    Assign(ServiceRequest),
    Reassign(usize),
    /// Delete and create again: a fresh allocation with nothing to keep.
    Recreate(ServiceRequest),
    /// Service number `.0` asks for the addresses of the `.1`-th assigned service, with a copy
    /// of its request where the sharing key (`.2`), backend (`.3`) and ports (`.4`) may differ.
    Join(usize, usize, bool, bool, Vec<(Protocol, u16)>),
    Delete(usize),
    EditPools(Vec<PoolDef>),
    /// Same ranges, new autoAssign / avoidBuggyIPs / allocation settings.
    EditFlags(Vec<(bool, bool, u8, Option<i32>)>),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..6usize).prop_flat_map(request).prop_map(Op::Assign),
        2 => (0..6usize).prop_map(Op::Reassign),
        4 => (0..6usize).prop_flat_map(request).prop_map(Op::Recreate),
        3 => (0..6usize, 0..6usize, prop::bool::weighted(0.8), prop::bool::weighted(0.8), ports())
            .prop_map(|(svc, target, key, backend, ports)| Op::Join(svc, target, key, backend, ports)),
        3 => (0..6usize).prop_map(Op::Delete),
        1 => pools().prop_map(Op::EditPools),
        1 => prop::collection::vec(pool_flags(), 4).prop_map(Op::EditFlags),
        1 => Just(Op::Restart),
    ]
}

/// The controller's view: the pools and every live Service's latest request.
struct World {
    alloc: Allocator,
    pools: Vec<PoolDef>,
    requests: BTreeMap<ServiceKey, ServiceRequest>,
}

impl World {
    /// Assigns as the controller does: the status (current IPs, if any) goes in as
    /// `previous_ips`. Checks idempotence on the way.
    fn assign(&mut self, mut req: ServiceRequest) -> Result<Assignment, AllocError> {
        if let Some(current) = self.alloc.assignment(&req.key) {
            req.previous_ips = current.ips.clone();
        }
        let first = self.alloc.assign(&req);
        let again = self.alloc.assign(&req);
        assert_eq!(first, again, "assign is not idempotent for {req:?}");
        self.requests.insert(req.key.clone(), req);
        first
    }

    fn restart(&mut self) {
        let mut fresh = Allocator::new();
        assert!(fresh.set_pools(self.pools.clone()).is_empty());
        let (with, without): (Vec<_>, Vec<_>) = self
            .requests
            .values()
            .cloned()
            .partition(|r| self.alloc.assignment(&r.key).is_some());
        for mut req in with {
            let current = self.alloc.assignment(&req.key).cloned();
            req.previous_ips = current.as_ref().map(|a| a.ips.clone()).unwrap_or_default();
            assert_eq!(
                fresh.assign(&req).ok(),
                current,
                "restart changed {}",
                req.key
            );
        }
        for mut req in without {
            req.previous_ips.clear();
            let _ = fresh.assign(&req);
        }
        self.alloc = fresh;
    }
}

/// Edits the pools as the controller would: dropped services are re-allocated at once.
fn edit_pools(w: &mut World, pools: Vec<PoolDef>) {
    let before: BTreeMap<ServiceKey, Assignment> = w
        .alloc
        .assignments()
        .map(|(k, a)| (k.clone(), a.clone()))
        .collect();
    w.pools = pools.clone();
    let dropped = w.alloc.set_pools(pools);
    for (key, old) in &before {
        match w.alloc.assignment(key) {
            Some(now) => assert_eq!(now.ips, old.ips, "{key} moved on a pool edit"),
            None => assert!(dropped.contains(key), "{key} vanished unreported"),
        }
        // Kept exactly when the address is still usable by the rules for a requested one:
        // autoAssign, priorities and selectors the service still matches renumber nothing.
        assert_eq!(
            dropped.contains(key),
            !keeps(&w.pools, &w.requests[key], &old.ips),
            "{key} holding {old:?} under {:?}",
            w.pools
        );
    }
    assert!(dropped.windows(2).all(|p| p[0] < p[1]));
    // The controller re-allocates what was dropped.
    for key in dropped {
        assert!(w.alloc.assignment(&key).is_none());
        let req = w.requests[&key].clone();
        let _ = w.assign(req);
    }
}

fn run(initial: Vec<PoolDef>, ops: Vec<Op>) {
    let mut w = World {
        alloc: Allocator::new(),
        pools: initial.clone(),
        requests: BTreeMap::new(),
    };
    assert!(w.alloc.set_pools(initial).is_empty());
    for op in ops {
        match op {
            Op::Recreate(mut req) => {
                w.alloc.release(&req.key);
                req.previous_ips.clear();
                let expected = req
                    .requested_ips
                    .is_empty()
                    .then(|| reference_allocation(&w, &req));
                let got = w.assign(req.clone());
                if let Some(expected) = expected {
                    assert_eq!(got.as_ref().ok(), expected.as_ref(), "{req:?}");
                }
            }
            Op::Assign(req) => {
                // With nothing to keep or honour, the answer must be the reference model's;
                // with a status to reclaim, it is either reclaimed (then by the keeping rules)
                // or the reference model's answer.
                let fresh = w.alloc.assignment(&req.key).is_none() && req.requested_ips.is_empty();
                let expected = fresh.then(|| reference_allocation(&w, &req));
                let reclaimable = fresh
                    && !req.previous_ips.is_empty()
                    && keeps(&w.pools, &req, &req.previous_ips)
                    && req.previous_ips.iter().all(|ip| may_share(&w, &req, *ip));
                let got = w.assign(req.clone());
                let reclaimed = fresh
                    && got.as_ref().is_ok_and(|a| {
                        let mut held = a.ips.clone();
                        let mut previous = req.previous_ips.clone();
                        held.sort();
                        previous.sort();
                        previous.dedup();
                        held == previous
                    });
                if reclaimed {
                    assert!(reclaimable, "{req:?} reclaimed {got:?}");
                } else if let Some(expected) = expected {
                    assert_eq!(got.as_ref().ok(), expected.as_ref(), "{req:?}");
                }
                // PreferDualStack falls back to one address of either family: if even that
                // failed, a single-stack request for each family fails too.
                let dual = req.families.len() != 1;
                if got.is_err()
                    && req.family_policy == FamilyPolicy::PreferDualStack
                    && req.requested_ips.is_empty()
                    && dual
                {
                    for family in [Family::V4, Family::V6] {
                        let probe = ServiceRequest {
                            key: ServiceKey::new(req.key.namespace.clone(), "zz-probe"),
                            families: vec![family],
                            family_policy: FamilyPolicy::SingleStack,
                            previous_ips: vec![],
                            ..req.clone()
                        };
                        let single = w.alloc.assign(&probe);
                        w.alloc.release(&probe.key);
                        assert!(single.is_err(), "{req:?} failed but {single:?}");
                    }
                }
            }
            Op::Join(svc, target, same_key, same_backend, ports) => {
                let assigned: Vec<(ServiceKey, Assignment)> = w
                    .alloc
                    .assignments()
                    .map(|(k, a)| (k.clone(), a.clone()))
                    .collect();
                if assigned.is_empty() {
                    continue;
                }
                let (target, held) = &assigned[target % assigned.len()];
                let mut req = w.requests[target].clone();
                req.key = ServiceKey::new(NAMESPACES[svc % 2], format!("s{svc}"));
                req.requested_ips = held.ips.clone();
                req.previous_ips.clear();
                req.ports = ports;
                if !same_key {
                    req.sharing_key = Some("k3".into());
                }
                if !same_backend {
                    req.backend_key = match req.backend_key {
                        BackendKey::Cluster => BackendKey::Local("app=x".into()),
                        BackendKey::Local(_) => BackendKey::Cluster,
                    };
                }
                let _ = w.assign(req);
            }
            Op::Reassign(svc) => {
                if let Some(req) = w.requests.values().nth(svc).cloned() {
                    let _ = w.assign(req);
                }
            }
            Op::Delete(svc) => {
                let Some(req) = w.requests.values().nth(svc).cloned() else {
                    continue;
                };
                w.requests.remove(&req.key);
                let released = w.alloc.release(&req.key);
                // Every address the service alone held is reusable at once.
                for ip in released.map(|a| a.ips).unwrap_or_default() {
                    if !w.alloc.services_on(ip).is_empty() {
                        continue;
                    }
                    let probe = ServiceRequest {
                        key: ServiceKey::new(req.key.namespace.clone(), "zz-probe"),
                        families: vec![Family::of(ip)],
                        family_policy: FamilyPolicy::SingleStack,
                        requested_ips: vec![ip],
                        previous_ips: vec![],
                        ..req.clone()
                    };
                    assert_eq!(w.alloc.assign(&probe).map(|a| a.ips), Ok(vec![ip]));
                    w.alloc.release(&probe.key);
                }
            }
            Op::EditFlags(flags) => {
                let mut pools = w.pools.clone();
                for (pool, (auto_assign, avoid, kind, priority)) in pools.iter_mut().zip(flags) {
                    pool.auto_assign = auto_assign;
                    pool.avoid_buggy_ips = avoid;
                    pool.allocation = allocation(kind, priority);
                }
                edit_pools(&mut w, pools);
            }
            Op::EditPools(pools) => edit_pools(&mut w, pools),
            Op::Restart => w.restart(),
        }
        check_invariants(&w);
    }
    // Finally, everything can be released and the pools are empty again.
    let keys: Vec<ServiceKey> = w.requests.keys().cloned().collect();
    for key in keys {
        w.alloc.release(&key);
    }
    assert!(
        w.alloc
            .pool_stats()
            .iter()
            .all(|s| s.in_use_v4 == 0 && s.in_use_v6 == 0)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_the_invariants(
        initial in pools(),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        run(initial, ops);
    }
}
