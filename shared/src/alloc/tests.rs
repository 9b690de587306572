//! Unit tests: one or more per rule in the module docs.

use super::*;
use crate::selector::{LabelSelector, Labels};
use std::net::IpAddr;
use std::time::Instant;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

/// `"a-b"` or a CIDR.
fn range(s: &str) -> IpRange {
    match s.split_once('-') {
        Some((a, b)) => IpRange::new(ip(a), ip(b)),
        None => s.parse::<ipnet::IpNet>().unwrap().into(),
    }
}

fn pool(name: &str, ranges: &[&str]) -> PoolDef {
    PoolDef {
        name: name.into(),
        ranges: ranges.iter().map(|r| range(r)).collect(),
        auto_assign: true,
        avoid_buggy_ips: false,
        allocation: None,
    }
}

fn pinned(name: &str, ranges: &[&str], alloc: ServiceAllocation) -> PoolDef {
    PoolDef {
        allocation: Some(alloc),
        ..pool(name, ranges)
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: vec![],
    }
}

fn svc(ns: &str, name: &str) -> ServiceRequest {
    ServiceRequest {
        key: ServiceKey::new(ns, name),
        ports: vec![(Protocol::Tcp, 80)],
        ..Default::default()
    }
}

fn shared(name: &str, key: &str, port: u16) -> ServiceRequest {
    ServiceRequest {
        sharing_key: Some(key.into()),
        ports: vec![(Protocol::Tcp, port)],
        ..svc("default", name)
    }
}

fn allocator(pools: Vec<PoolDef>) -> Allocator {
    let mut a = Allocator::new();
    assert!(a.set_pools(pools).is_empty());
    a
}

fn got(a: &mut Allocator, req: &ServiceRequest) -> Vec<IpAddr> {
    a.assign(req).unwrap().ips
}

fn one(a: &mut Allocator, req: &ServiceRequest) -> String {
    let ips = got(a, req);
    assert_eq!(ips.len(), 1, "{ips:?}");
    ips[0].to_string()
}

fn stats(a: &Allocator, name: &str) -> PoolStats {
    a.pool_stats().into_iter().find(|s| s.name == name).unwrap()
}

#[test]
fn lowest_address_first_and_ranges_in_list_order() {
    let mut a = allocator(vec![pool(
        "p",
        &["10.0.0.10-10.0.0.11", "10.0.0.1-10.0.0.2"],
    )]);
    let order: Vec<String> = (0..4)
        .map(|i| one(&mut a, &svc("ns", &format!("s{i}"))))
        .collect();
    assert_eq!(order, ["10.0.0.10", "10.0.0.11", "10.0.0.1", "10.0.0.2"]);
    assert_eq!(
        a.assign(&svc("ns", "s4")),
        Err(AllocError::PoolExhausted {
            service: ServiceKey::new("ns", "s4"),
            pool: "p".into(),
            family: Family::V4
        })
    );
}

#[test]
fn capacity_with_and_without_buggy_ips() {
    let cases = [
        ("10.0.0.0/23", 512, 508),
        ("10.0.0.0/24", 256, 254),
        ("10.0.0.250-10.0.1.5", 12, 10),
    ];
    for (r, plain, avoiding) in cases {
        let mut buggy = pool("b", &[r]);
        buggy.avoid_buggy_ips = true;
        // Separate allocators: the two pools would overlap.
        assert_eq!(
            stats(&allocator(vec![pool("a", &[r])]), "a").capacity_v4,
            plain,
            "{r}"
        );
        assert_eq!(
            stats(&allocator(vec![buggy]), "b").capacity_v4,
            avoiding,
            "{r}"
        );
    }
    let mut v6 = pool("b", &["fd00::/120"]);
    v6.avoid_buggy_ips = true;
    let a = allocator(vec![pool("a", &["fd00:1::/120"]), v6]);
    assert_eq!(stats(&a, "a").capacity_v6, 256);
    assert_eq!(stats(&a, "b").capacity_v6, 256);
    assert_eq!(stats(&a, "b").capacity_v4, 0);
}

#[test]
fn avoid_buggy_ips_skips_dot_zero_and_dot_255() {
    let mut p = pool("p", &["10.0.0.254-10.0.1.1"]);
    p.avoid_buggy_ips = true;
    let mut a = allocator(vec![p]);
    assert_eq!(one(&mut a, &svc("ns", "a")), "10.0.0.254");
    assert_eq!(one(&mut a, &svc("ns", "b")), "10.0.1.1");
    assert!(matches!(
        a.assign(&svc("ns", "c")),
        Err(AllocError::PoolExhausted { .. })
    ));
    assert_eq!(stats(&a, "p").in_use_v4, 2);
    // A released buggy-adjacent address comes back, the buggy ones never do.
    a.release(&ServiceKey::new("ns", "a"));
    assert_eq!(one(&mut a, &svc("ns", "c")), "10.0.0.254");
}

#[test]
fn avoid_buggy_ips_never_applies_to_ipv6() {
    let mut p = pool("p", &["fd00::ff-fd00::100"]);
    p.avoid_buggy_ips = true;
    let mut a = allocator(vec![p]);
    let mut req = svc("ns", "a");
    req.families = vec![Family::V6];
    assert_eq!(one(&mut a, &req), "fd00::ff");
}

#[test]
fn pinned_pools_by_priority_with_unset_last_then_plain_pools() {
    let any = |priority| ServiceAllocation {
        priority,
        ..Default::default()
    };
    let mut a = allocator(vec![
        pool("a-plain", &["10.0.0.1/32"]),
        pinned("b-unset", &["10.0.0.2/32"], any(None)),
        pinned("c-five", &["10.0.0.3/32"], any(Some(5))),
        pinned("d-one", &["10.0.0.4/32"], any(Some(1))),
        pinned("e-five", &["10.0.0.5/32"], any(Some(5))),
        pinned("f-negative", &["10.0.0.6/32"], any(Some(-3))),
        pool("0-plain", &["10.0.0.7/32"]),
    ]);
    let pools: Vec<String> = (0..7)
        .map(|i| a.assign(&svc("ns", &format!("s{i}"))).unwrap().pool)
        .collect();
    assert_eq!(
        pools,
        [
            "f-negative",
            "d-one",
            "c-five",
            "e-five",
            "b-unset",
            "0-plain",
            "a-plain"
        ]
    );
}

#[test]
fn service_allocation_namespaces_and_selectors() {
    let mut a = allocator(vec![
        pinned(
            "by-ns",
            &["10.0.1.0/24"],
            ServiceAllocation {
                namespaces: vec!["team-a".into()],
                namespace_selectors: vec![selector(&[("env", "prod")])],
                ..Default::default()
            },
        ),
        pinned(
            "by-svc",
            &["10.0.2.0/24"],
            ServiceAllocation {
                priority: Some(1),
                namespaces: vec!["web".into()],
                service_selectors: vec![selector(&[("app", "web")])],
                ..Default::default()
            },
        ),
        pool("default", &["10.0.3.0/24"]),
    ]);
    let in_ns = |name: &str, ns: &str, ns_labels: &[(&str, &str)], svc_labels: &[(&str, &str)]| {
        let mut r = svc(ns, name);
        r.namespace_labels = labels(ns_labels);
        r.service_labels = labels(svc_labels);
        r
    };
    assert_eq!(
        a.assign(&in_ns("a", "team-a", &[], &[])).unwrap().pool,
        "by-ns"
    );
    let prod = in_ns("b", "other", &[("env", "prod")], &[]);
    assert_eq!(a.assign(&prod).unwrap().pool, "by-ns");
    let dev = in_ns("c", "other", &[("env", "dev")], &[]);
    assert_eq!(a.assign(&dev).unwrap().pool, "default");
    let web = in_ns("d", "web", &[], &[("app", "web")]);
    assert_eq!(a.assign(&web).unwrap().pool, "by-svc");
    // Namespace matches but labels do not: a pinned pool is never used, even by name.
    let mut wrong = in_ns("e", "web", &[], &[("app", "db")]);
    assert_eq!(a.assign(&wrong).unwrap().pool, "default");
    wrong.requested_pool = Some("by-svc".into());
    assert_eq!(
        a.assign(&wrong),
        Err(AllocError::PoolNotForService {
            service: wrong.key.clone(),
            pool: "by-svc".into(),
            reason: PoolMismatch::ServiceLabels
        })
    );
    let mut elsewhere = in_ns("f", "elsewhere", &[], &[]);
    elsewhere.requested_pool = Some("by-ns".into());
    let err = a.assign(&elsewhere).unwrap_err();
    assert_eq!(
        err.to_string(),
        "address pool \"by-ns\" may not be used by elsewhere/f: namespace \"elsewhere\" is \
         neither in its namespaces nor matched by its namespaceSelectors"
    );
}

#[test]
fn auto_assign_false_pools_only_by_name_or_requested_ip() {
    let mut manual = pool("a-manual", &["10.0.0.0/30"]);
    manual.auto_assign = false;
    let mut a = allocator(vec![manual.clone(), pool("b-auto", &["10.0.1.0/30"])]);
    assert_eq!(one(&mut a, &svc("ns", "auto")), "10.0.1.0");
    let mut named = svc("ns", "named");
    named.requested_pool = Some("a-manual".into());
    assert_eq!(a.assign(&named).unwrap().pool, "a-manual");
    let mut pinned_ip = svc("ns", "pinned");
    pinned_ip.requested_ips = ips(&["10.0.0.3"]);
    assert_eq!(a.assign(&pinned_ip).unwrap().pool, "a-manual");

    let mut only_manual = allocator(vec![manual]);
    assert_eq!(
        only_manual.assign(&svc("ns", "x")),
        Err(AllocError::NoPoolForService {
            service: ServiceKey::new("ns", "x")
        })
    );
}

#[test]
fn requested_ips_are_honoured_or_refused_with_the_reason() {
    let mut buggy = pool("buggy", &["10.0.1.0/24"]);
    buggy.avoid_buggy_ips = true;
    let mut a = allocator(vec![pool("a", &["10.0.0.0/24", "fd00::/120"]), buggy]);
    let req = |name: &str, list: &[&str]| {
        let mut r = svc("ns", name);
        r.requested_ips = ips(list);
        r
    };
    let key = |name: &str| ServiceKey::new("ns", name);

    assert_eq!(one(&mut a, &req("ok", &["10.0.0.7"])), "10.0.0.7");
    assert_eq!(
        a.assign(&req("nowhere", &["192.168.0.1"])),
        Err(AllocError::IpNotInAnyPool {
            service: key("nowhere"),
            ip: ip("192.168.0.1")
        })
    );
    let mut wrong_pool = req("wrong-pool", &["10.0.0.8"]);
    wrong_pool.requested_pool = Some("buggy".into());
    assert_eq!(
        a.assign(&wrong_pool),
        Err(AllocError::IpNotInPool {
            service: key("wrong-pool"),
            ip: ip("10.0.0.8"),
            pool: "buggy".into()
        })
    );
    assert_eq!(
        a.assign(&req("dot-zero", &["10.0.1.0"])),
        Err(AllocError::IpNotAllowedBuggy {
            service: key("dot-zero"),
            ip: ip("10.0.1.0"),
            pool: "buggy".into()
        })
    );
    // The same address is fine where buggy addresses are not avoided.
    assert_eq!(one(&mut a, &req("dot-zero-ok", &["10.0.0.0"])), "10.0.0.0");
    assert_eq!(
        a.assign(&req("taken", &["10.0.0.7"])),
        Err(AllocError::IpInUse {
            service: key("taken"),
            ip: ip("10.0.0.7"),
            holder: key("ok"),
            reason: SharingReason::KeysDiffer {
                ours: None,
                theirs: None
            }
        })
    );
    assert!(matches!(
        a.assign(&req("two", &["10.0.0.9", "10.0.0.10"])),
        Err(AllocError::TwoIpsSameFamily {
            family: Family::V4,
            ..
        })
    ));
    let mut dual = req("split", &["10.0.0.9", "fd00::9"]);
    assert!(matches!(
        a.assign(&dual),
        Err(AllocError::IpFamilyNotInService { .. })
    ));
    dual.family_policy = FamilyPolicy::RequireDualStack;
    dual.families = vec![Family::V6, Family::V4];
    dual.requested_ips = ips(&["10.0.1.9", "fd00::9"]);
    assert_eq!(
        a.assign(&dual),
        Err(AllocError::RequestedIpsInDifferentPools {
            service: key("split"),
            first: ip("fd00::9"),
            first_pool: "a".into(),
            second: ip("10.0.1.9"),
            second_pool: "buggy".into()
        })
    );
    dual.requested_ips = ips(&["10.0.0.9"]);
    assert!(matches!(
        a.assign(&dual),
        Err(AllocError::RequestedIpMissingFamily {
            family: Family::V6,
            ..
        })
    ));
    dual.requested_ips = ips(&["10.0.0.9", "fd00::9"]);
    assert_eq!(got(&mut a, &dual), ips(&["fd00::9", "10.0.0.9"]));
}

#[test]
fn in_use_message_names_service_ip_holder_and_reason() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let mut web = svc("default", "web");
    web.requested_ips = ips(&["10.0.0.5"]);
    a.assign(&web).unwrap();
    let mut other = shared("b", "a", 443);
    other.requested_ips = ips(&["10.0.0.5"]);
    assert_eq!(
        a.assign(&other).unwrap_err().to_string(),
        "10.0.0.5 requested by default/b is in use by default/web and does not share: sharing \
         keys differ (\"a\" vs none)"
    );
}

/// Why `r`, asking for 10.0.0.1, may not have it.
fn in_use_reason(a: &mut Allocator, mut r: ServiceRequest) -> SharingReason {
    r.requested_ips = ips(&["10.0.0.1"]);
    match a.assign(&r) {
        Err(AllocError::IpInUse { reason, .. }) => reason,
        other => panic!("{other:?}"),
    }
}

#[test]
fn sharing_rules() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let pin = |mut r: ServiceRequest| {
        r.requested_ips = ips(&["10.0.0.1"]);
        r
    };
    a.assign(&pin(shared("http", "k", 80))).unwrap();
    // Same key, other port: shares.
    a.assign(&pin(shared("https", "k", 443))).unwrap();
    assert_eq!(
        a.services_on(ip("10.0.0.1")),
        [
            ServiceKey::new("default", "http"),
            ServiceKey::new("default", "https")
        ]
    );
    assert_eq!(
        in_use_reason(&mut a, shared("clash", "k", 80)),
        SharingReason::PortConflict {
            protocol: Protocol::Tcp,
            port: 80
        }
    );
    // Same number, other protocol: no clash.
    let mut udp = shared("dns", "k", 80);
    udp.ports = vec![(Protocol::Udp, 80)];
    a.assign(&pin(udp)).unwrap();
    assert_eq!(
        in_use_reason(&mut a, shared("other-key", "j", 8080)),
        SharingReason::KeysDiffer {
            ours: Some("j".into()),
            theirs: Some("k".into())
        }
    );
    let mut local = shared("local", "k", 8080);
    local.backend_key = BackendKey::Local("app=x".into());
    assert_eq!(
        in_use_reason(&mut a, local),
        SharingReason::BackendsDiffer {
            ours: BackendKey::Local("app=x".into()),
            theirs: BackendKey::Cluster
        }
    );
    // An empty key is no key.
    assert_eq!(
        in_use_reason(&mut a, shared("empty", "", 8080)),
        SharingReason::KeysDiffer {
            ours: None,
            theirs: Some("k".into())
        }
    );
    // Two Local services with the same selector share; a different selector does not.
    let mut b = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let local = |name: &str, sel: &str, port| {
        let mut r = pin(shared(name, "k", port));
        r.backend_key = BackendKey::Local(sel.into());
        r
    };
    b.assign(&local("l1", "app=x", 80)).unwrap();
    b.assign(&local("l2", "app=x", 81)).unwrap();
    assert!(matches!(
        b.assign(&local("l3", "app=y", 82)),
        Err(AllocError::IpInUse {
            reason: SharingReason::BackendsDiffer { .. },
            ..
        })
    ));
    assert_eq!(b.pool_stats()[0].in_use_v4, 1);
}

#[test]
fn automatic_allocation_reuses_a_lower_compatible_shared_address() {
    let mut a = allocator(vec![pool("p", &["10.0.0.1-10.0.0.20"])]);
    assert_eq!(one(&mut a, &shared("a", "k", 80)), "10.0.0.1");
    assert_eq!(one(&mut a, &svc("default", "plain")), "10.0.0.2");
    // Compatible: joins .1 rather than taking the free .3.
    assert_eq!(one(&mut a, &shared("b", "k", 443)), "10.0.0.1");
    // Port clash at .1: takes the lowest free.
    assert_eq!(one(&mut a, &shared("c", "k", 80)), "10.0.0.3");
    // Joins .3, the first compatible: .1 has 443.
    assert_eq!(one(&mut a, &shared("d", "k", 443)), "10.0.0.3");
    // Other key: never joins.
    assert_eq!(one(&mut a, &shared("e", "j", 22)), "10.0.0.4");
    // Another backend under the same key: never joins.
    let mut local = shared("f", "k", 22);
    local.backend_key = BackendKey::Local("x".into());
    assert_eq!(one(&mut a, &local), "10.0.0.5");
    assert_eq!(stats(&a, "p").in_use_v4, 5);
    // A shared address stays held until its last holder leaves.
    a.release(&ServiceKey::new("default", "a"));
    assert_eq!(one(&mut a, &svc("default", "g")), "10.0.0.6");
    a.release(&ServiceKey::new("default", "b"));
    assert_eq!(one(&mut a, &svc("default", "h")), "10.0.0.1");
}

#[test]
fn shared_address_can_be_found_in_an_exhausted_pool() {
    let mut a = allocator(vec![pool("p", &["10.0.0.1/32"])]);
    assert_eq!(one(&mut a, &shared("a", "k", 80)), "10.0.0.1");
    assert_eq!(one(&mut a, &shared("b", "k", 443)), "10.0.0.1");
    assert!(matches!(
        a.assign(&shared("c", "k", 80)),
        Err(AllocError::PoolExhausted { .. })
    ));
}

#[test]
fn dual_stack_policies() {
    let mut a = allocator(vec![
        pool("a-v4", &["10.0.0.0/24"]),
        pool("b-dual", &["10.1.0.0/24", "fd00::/120"]),
        pool("c-v6", &["fd01::/120"]),
    ]);
    let req = |name: &str, policy, families: &[Family]| {
        let mut r = svc("ns", name);
        r.family_policy = policy;
        r.families = families.to_vec();
        r
    };
    use Family::{V4, V6};
    use FamilyPolicy::*;
    let single = a.assign(&req("single", SingleStack, &[])).unwrap();
    assert_eq!(
        (single.pool.as_str(), single.ips),
        ("a-v4", ips(&["10.0.0.0"]))
    );
    let v6 = a.assign(&req("v6", SingleStack, &[V6])).unwrap();
    assert_eq!((v6.pool.as_str(), v6.ips), ("b-dual", ips(&["fd00::"])));
    // Two families listed but SingleStack: the first only.
    assert_eq!(
        got(&mut a, &req("single2", SingleStack, &[V6, V4])),
        ips(&["fd00::1"])
    );
    // Require: both from one pool, skipping pools that have one family only.
    let both = a.assign(&req("require", RequireDualStack, &[])).unwrap();
    assert_eq!(
        (both.pool.as_str(), both.ips),
        ("b-dual", ips(&["10.1.0.0", "fd00::2"]))
    );
    assert_eq!(
        got(
            &mut a,
            &req("require-v6-first", RequireDualStack, &[V6, V4])
        ),
        ips(&["fd00::3", "10.1.0.1"])
    );
    // One family listed: one address whatever the policy.
    assert_eq!(
        got(&mut a, &req("require-one", RequireDualStack, &[V6])),
        ips(&["fd00::4"])
    );
    let prefer = a.assign(&req("prefer", PreferDualStack, &[])).unwrap();
    assert_eq!(prefer.ips, ips(&["10.1.0.2", "fd00::5"]));

    // Without a dual-stack pool: Require fails, Prefer falls back to one address.
    let mut b = allocator(vec![
        pool("a-v4", &["10.0.0.0/24"]),
        pool("c-v6", &["fd01::/120"]),
    ]);
    assert_eq!(
        b.assign(&req("require", RequireDualStack, &[])),
        Err(AllocError::DualStackUnavailable {
            service: ServiceKey::new("ns", "require"),
            pools: vec!["a-v4".into(), "c-v6".into()]
        })
    );
    let fallback = b
        .assign(&req("prefer", PreferDualStack, &[V6, V4]))
        .unwrap();
    assert_eq!(
        (fallback.pool.as_str(), &fallback.ips[..]),
        ("c-v6", &ips(&["fd01::"])[..])
    );
    // Idempotent, and the single address is kept (not churned) on later calls.
    assert_eq!(
        b.assign(&req("prefer", PreferDualStack, &[V6, V4]))
            .unwrap(),
        fallback
    );

    // A named single-family pool cannot give dual-stack.
    let mut named = req("named", RequireDualStack, &[]);
    named.requested_pool = Some("c-v6".into());
    assert_eq!(
        b.assign(&named),
        Err(AllocError::FamilyUnavailable {
            service: named.key.clone(),
            family: V4,
            pool: Some("c-v6".into())
        })
    );
    // Prefer with one requested address is single-stack.
    let mut pinned_prefer = req("pinned-prefer", PreferDualStack, &[]);
    pinned_prefer.requested_ips = ips(&["fd01::9"]);
    assert_eq!(got(&mut b, &pinned_prefer), ips(&["fd01::9"]));
    // SingleStack without families takes the family of the requested address.
    let mut inferred = req("inferred", SingleStack, &[]);
    inferred.requested_ips = ips(&["fd01::8"]);
    assert_eq!(got(&mut b, &inferred), ips(&["fd01::8"]));
}

#[test]
fn dual_stack_exhaustion_of_one_family_moves_on() {
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/24", "fd00::/128"]),
        pool("b", &["10.1.0.0/24", "fd01::/120"]),
    ]);
    let mut req = svc("ns", "x");
    req.family_policy = FamilyPolicy::RequireDualStack;
    assert_eq!(a.assign(&req).unwrap().pool, "a");
    req.key.name = "y".into();
    let second = a.assign(&req).unwrap();
    assert_eq!(
        (second.pool.as_str(), second.ips),
        ("b", ips(&["10.1.0.0", "fd01::"]))
    );
    // Nothing of pool a's IPv4 was taken by the failed attempt.
    assert_eq!(stats(&a, "a").in_use_v4, 1);
}

#[test]
fn pool_edits_rehome_or_drop() {
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/24"]),
        pool("b", &["10.0.1.0/24"]),
    ]);
    let x = svc("ns", "x");
    let y = svc("ns", "y");
    assert_eq!(one(&mut a, &x), "10.0.0.0");
    assert_eq!(one(&mut a, &y), "10.0.0.1");
    // .0 moves to b, .1 disappears.
    let dropped = a.set_pools(vec![
        pool("a", &["10.0.0.2-10.0.0.255"]),
        pool("b", &["10.0.1.0/24", "10.0.0.0/32"]),
    ]);
    assert_eq!(dropped, [y.key.clone()]);
    assert_eq!(
        a.assignment(&x.key),
        Some(&Assignment {
            pool: "b".into(),
            ips: ips(&["10.0.0.0"])
        })
    );
    assert_eq!(a.assignment(&y.key), None);
    assert!(a.services_on(ip("10.0.0.1")).is_empty());
    assert_eq!(stats(&a, "a").in_use_v4, 0);
    assert_eq!(stats(&a, "b").in_use_v4, 1);
    // The re-homed assignment is kept by later calls.
    assert_eq!(a.assign(&x).unwrap().pool, "b");

    // Moving into a pool the service may not use drops it; so does becoming buggy.
    let dropped = a.set_pools(vec![pinned(
        "b",
        &["10.0.0.0/23"],
        ServiceAllocation {
            namespaces: vec!["other".into()],
            ..Default::default()
        },
    )]);
    assert_eq!(dropped, [x.key.clone()]);
    let mut a = allocator(vec![pool("a", &["10.0.0.0/24"])]);
    assert_eq!(one(&mut a, &x), "10.0.0.0");
    let mut avoid = pool("a", &["10.0.0.0/24"]);
    avoid.avoid_buggy_ips = true;
    assert_eq!(a.set_pools(vec![avoid]), [x.key.clone()]);
    // Turning autoAssign off drops addresses the service did not ask for by name or IP.
    let mut a = allocator(vec![pool("a", &["10.0.0.0/24"])]);
    let mut named = svc("ns", "named");
    named.requested_pool = Some("a".into());
    a.assign(&x).unwrap();
    a.assign(&named).unwrap();
    let mut manual = pool("a", &["10.0.0.0/24"]);
    manual.auto_assign = false;
    assert_eq!(a.set_pools(vec![manual]), [x.key.clone()]);
}

#[test]
fn release_makes_the_address_reusable() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let x = svc("ns", "x");
    assert_eq!(one(&mut a, &x), "10.0.0.0");
    assert_eq!(one(&mut a, &svc("ns", "y")), "10.0.0.1");
    assert_eq!(a.services_on(ip("10.0.0.0")), [x.key.clone()]);
    let released = a.release(&x.key).unwrap();
    assert_eq!(released.ips, ips(&["10.0.0.0"]));
    assert_eq!(a.release(&x.key), None);
    assert!(a.services_on(ip("10.0.0.0")).is_empty());
    assert_eq!(stats(&a, "p").in_use_v4, 1);
    assert_eq!(one(&mut a, &svc("ns", "z")), "10.0.0.0");
}

#[test]
fn exhaustion_across_pools() {
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/31"]),
        pool("b", &["10.0.1.0/32"]),
    ]);
    for i in 0..3 {
        a.assign(&svc("ns", &format!("s{i}"))).unwrap();
    }
    assert_eq!(
        a.assign(&svc("ns", "s3")),
        Err(AllocError::NoAddressAvailable {
            service: ServiceKey::new("ns", "s3"),
            families: vec![Family::V4],
            pools: vec!["a".into(), "b".into()]
        })
    );
    assert_eq!(
        a.pool_stats(),
        [
            PoolStats {
                name: "a".into(),
                capacity_v4: 2,
                capacity_v6: 0,
                in_use_v4: 2,
                in_use_v6: 0
            },
            PoolStats {
                name: "b".into(),
                capacity_v4: 1,
                capacity_v6: 0,
                in_use_v4: 1,
                in_use_v6: 0
            }
        ]
    );
    let mut v6 = svc("ns", "v6");
    v6.families = vec![Family::V6];
    assert_eq!(
        a.assign(&v6),
        Err(AllocError::FamilyUnavailable {
            service: v6.key.clone(),
            family: Family::V6,
            pool: None
        })
    );
    let mut unknown = svc("ns", "u");
    unknown.requested_pool = Some("zz".into());
    assert_eq!(
        a.assign(&unknown),
        Err(AllocError::UnknownPool {
            service: unknown.key.clone(),
            pool: "zz".into()
        })
    );
}

#[test]
fn idempotent_and_keeps_the_current_assignment() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let mut x = svc("ns", "x");
    let first = a.assign(&x).unwrap();
    assert_eq!(a.assign(&x).unwrap(), first);
    // Stale status does not move it; new ports that still fit do not either.
    x.previous_ips = ips(&["10.0.0.9"]);
    x.ports = vec![(Protocol::Udp, 53)];
    assert_eq!(a.assign(&x).unwrap(), first);
    assert_eq!(stats(&a, "p").in_use_v4, 1);
}

#[test]
fn previous_ips_are_reclaimed_when_valid() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let mut x = svc("ns", "x");
    x.previous_ips = ips(&["10.0.0.7"]);
    assert_eq!(one(&mut a, &x), "10.0.0.7");
    // Held by a non-sharing service: a fresh address instead.
    let mut y = svc("ns", "y");
    y.previous_ips = ips(&["10.0.0.7"]);
    assert_eq!(one(&mut a, &y), "10.0.0.0");
    // Outside every pool: a fresh address.
    let mut z = svc("ns", "z");
    z.previous_ips = ips(&["192.168.0.1"]);
    assert_eq!(one(&mut a, &z), "10.0.0.1");
    // Requested IPs win over previous ones.
    let mut w = svc("ns", "w");
    w.previous_ips = ips(&["10.0.0.20"]);
    w.requested_ips = ips(&["10.0.0.30"]);
    assert_eq!(one(&mut a, &w), "10.0.0.30");
}

#[test]
fn changed_requests_move_the_service() {
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/24"]),
        pool("b", &["10.0.1.0/24"]),
    ]);
    let mut x = shared("x", "k", 80);
    assert_eq!(one(&mut a, &x), "10.0.0.0");
    x.requested_pool = Some("b".into());
    assert_eq!(a.assign(&x).unwrap().pool, "b");
    assert_eq!(stats(&a, "a").in_use_v4, 0);
    x.requested_pool = None;
    x.requested_ips = ips(&["10.0.1.9"]);
    assert_eq!(one(&mut a, &x), "10.0.1.9");
    // y shares x's address; when x's key changes x must leave.
    let mut y = shared("y", "k", 443);
    y.requested_ips = ips(&["10.0.1.9"]);
    assert_eq!(one(&mut a, &y), "10.0.1.9");
    x.requested_ips.clear();
    x.sharing_key = Some("other".into());
    assert_eq!(one(&mut a, &x), "10.0.0.0");
    assert_eq!(a.services_on(ip("10.0.1.9")), [y.key.clone()]);
    // A sole holder may change its key and keep its address; others then join by the new key.
    y.sharing_key = Some("new".into());
    assert_eq!(one(&mut a, &y), "10.0.1.9");
    let mut joiner = shared("joiner", "new", 22);
    joiner.requested_ips = ips(&["10.0.1.9"]);
    assert_eq!(one(&mut a, &joiner), "10.0.1.9");
    let mut old_key = shared("old-key", "k", 23);
    old_key.requested_ips = ips(&["10.0.1.9"]);
    assert!(matches!(
        a.assign(&old_key),
        Err(AllocError::IpInUse {
            reason: SharingReason::KeysDiffer { .. },
            ..
        })
    ));
    // Automatic allocation under the new key: the free 10.0.1.0 is lower than the shared .9.
    let mut auto_b = shared("auto-b", "new", 24);
    auto_b.requested_pool = Some("b".into());
    assert_eq!(one(&mut a, &auto_b), "10.0.1.0");
    let mut auto_b2 = shared("auto-b2", "new", 25);
    auto_b2.requested_pool = Some("b".into());
    assert_eq!(one(&mut a, &auto_b2), "10.0.1.0");
    // A failed assign leaves the service without addresses.
    let mut broken = joiner.clone();
    broken.requested_pool = Some("missing".into());
    assert!(a.assign(&broken).is_err());
    assert_eq!(a.assignment(&joiner.key), None);
    assert_eq!(a.services_on(ip("10.0.1.9")), [y.key.clone()]);
}

#[test]
fn restart_reproduces_assignments() {
    let pools = vec![
        pool("a", &["10.0.0.0/29", "fd00::/125"]),
        pool("b", &["10.0.1.0/29"]),
    ];
    let mut a = allocator(pools.clone());
    let mut reqs = vec![];
    for i in 0..10 {
        let mut r = shared(
            &format!("s{i}"),
            if i % 3 == 0 { "k" } else { "" },
            80 + i % 2,
        );
        if i % 4 == 1 {
            r.family_policy = FamilyPolicy::PreferDualStack;
        }
        reqs.push(r);
    }
    for r in &reqs {
        a.assign(r).unwrap();
    }
    a.release(&reqs[2].key);
    a.release(&reqs[5].key);
    let mut b = allocator(pools);
    for r in &reqs {
        if let Some(current) = a.assignment(&r.key) {
            let mut r = r.clone();
            r.previous_ips = current.ips.clone();
            assert_eq!(b.assign(&r).as_ref(), Ok(current));
        }
    }
    assert_eq!(a.pool_stats(), b.pool_stats());
}

#[test]
fn ipv6_slash_64_allocates_and_releases_without_per_address_memory() {
    let mut a = allocator(vec![pool("v6", &["fd00::/64"])]);
    let req = |i: usize| {
        let mut r = svc("ns", &format!("s{i}"));
        r.families = vec![Family::V6];
        r
    };
    for i in 0..2000 {
        assert_eq!(got(&mut a, &req(i)), [ip(&format!("fd00::{i:x}"))]);
    }
    for i in (0..2000).step_by(2) {
        a.release(&req(i).key);
    }
    let s = stats(&a, "v6");
    assert_eq!((s.capacity_v6, s.in_use_v6), (1 << 64, 1000));
    // The lowest released address comes back first.
    assert_eq!(got(&mut a, &req(5000)), [ip("fd00::")]);
    let pools = &a.pools_for_tests();
    assert!(pools[0].free_interval_count(Family::V6) <= 1001);
    assert_eq!(pools[0].free_count(Family::V6), (1u128 << 64) - 1001);
}

#[test]
fn whole_ipv6_space_saturates_capacity() {
    let mut a = allocator(vec![pool("all", &["::/0"])]);
    let mut r = svc("ns", "x");
    r.families = vec![Family::V6];
    assert_eq!(got(&mut a, &r), [ip("::")]);
    r.key.name = "y".into();
    r.requested_ips = ips(&["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]);
    a.assign(&r).unwrap();
    let s = stats(&a, "all");
    assert_eq!((s.capacity_v6, s.in_use_v6), (u128::MAX, 2));
    a.release(&r.key);
    assert_eq!(stats(&a, "all").in_use_v6, 1);
}

#[test]
fn invalid_pool_input_does_not_panic() {
    let mut a = Allocator::new();
    let dropped = a.set_pools(vec![
        PoolDef {
            ranges: vec![
                IpRange::new(ip("10.0.0.9"), ip("10.0.0.1")),
                IpRange::new(ip("10.0.0.1"), ip("fd00::1")),
                range("10.0.0.0/30"),
            ],
            ..pool("b", &[])
        },
        // Duplicate name: ignored.
        pool("b", &["10.9.0.0/24"]),
        // Overlaps b: the overlapping part belongs to "a" (first by name).
        pool("a", &["10.0.0.2-10.0.0.5"]),
        // Overlapping ranges within one pool: counted once.
        pool("c", &["10.1.0.0/30", "10.1.0.0/31"]),
    ]);
    assert!(dropped.is_empty());
    assert_eq!(stats(&a, "a").capacity_v4, 4);
    assert_eq!(stats(&a, "b").capacity_v4, 2);
    assert_eq!(stats(&a, "c").capacity_v4, 4);
    assert_eq!(a.pool_stats().len(), 3);
    assert_eq!(a.pool_containing(ip("10.0.0.3")), Some("a"));
    assert_eq!(a.pool_containing(ip("10.0.0.1")), Some("b"));
    assert_eq!(a.pool_containing(ip("10.9.0.1")), None);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..10 {
        if let Ok(asg) = a.assign(&svc("ns", &format!("s{i}"))) {
            assert!(seen.insert(asg.ips[0]), "{asg:?} handed out twice");
        }
    }
    assert_eq!(seen.len(), 10);
}

/// 100,000 allocations across a handful of pools, then releases and re-allocations. The
/// budget is generous for debug builds; `cargo test --release` shows the real speed.
#[test]
fn many_allocations_are_fast() {
    let n = if cfg!(debug_assertions) {
        20_000
    } else {
        100_000
    };
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/20"]),
        pool("b", &["10.1.0.0/18"]),
        pool("c", &["10.4.0.0/14"]),
        pool("d", &["fd00::/64"]),
    ]);
    let reqs: Vec<ServiceRequest> = (0..n).map(|i| svc("ns", &format!("s{i}"))).collect();
    let start = Instant::now();
    for r in &reqs {
        a.assign(r).unwrap();
    }
    for r in reqs.iter().step_by(3) {
        a.release(&r.key);
    }
    for r in reqs.iter().step_by(3) {
        a.assign(r).unwrap();
    }
    let elapsed = start.elapsed();
    let used: u128 = a.pool_stats().iter().map(|s| s.in_use_v4).sum();
    assert_eq!(used, n as u128);
    assert!(
        elapsed.as_secs_f64() < 5.0,
        "{n} allocations took {elapsed:?}"
    );
    eprintln!("{n} allocations (+{} churn) took {elapsed:?}", n / 3);
}

/// 1,000 single-address pools: exhausted pools are skipped by an O(1) check.
#[test]
fn many_pools_are_fast() {
    let pools = (0..1000u32)
        .map(|i| {
            pool(
                &format!("p{i:04}"),
                &[&format!("10.{}.{}.1/32", i / 256, i % 256)],
            )
        })
        .chain([pool("zz-big", &["10.200.0.0/16"])])
        .collect();
    let mut a = allocator(pools);
    let n = if cfg!(debug_assertions) {
        5_000
    } else {
        50_000
    };
    let start = Instant::now();
    for i in 0..n {
        a.assign(&svc("ns", &format!("s{i}"))).unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(stats(&a, "zz-big").in_use_v4, n as u128 - 1000);
    assert!(
        elapsed.as_secs_f64() < 5.0,
        "{n} allocations took {elapsed:?}"
    );
    eprintln!("{n} allocations over 1001 pools took {elapsed:?}");
}
