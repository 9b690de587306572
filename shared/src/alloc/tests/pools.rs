//! Pool choice and walk order: lowest address first, capacities and buggy addresses,
//! priorities, selectors, autoAssign, exhaustion.

use super::*;

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
            pool: "p".into(),
            families: vec![Family::V4]
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
        .map(|i| {
            a.assign(&svc("ns", &format!("s{i}")))
                .unwrap()
                .pool
                .to_string()
        })
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
        r.namespace_labels = labels(ns_labels).into();
        r.service_labels = labels(svc_labels).into();
        r
    };
    assert_eq!(
        &*a.assign(&in_ns("a", "team-a", &[], &[])).unwrap().pool,
        "by-ns"
    );
    let prod = in_ns("b", "other", &[("env", "prod")], &[]);
    assert_eq!(&*a.assign(&prod).unwrap().pool, "by-ns");
    let dev = in_ns("c", "other", &[("env", "dev")], &[]);
    assert_eq!(&*a.assign(&dev).unwrap().pool, "default");
    let web = in_ns("d", "web", &[], &[("app", "web")]);
    assert_eq!(&*a.assign(&web).unwrap().pool, "by-svc");
    // Namespace matches but labels do not: a pinned pool is never used, even by name.
    let mut wrong = in_ns("e", "web", &[], &[("app", "db")]);
    assert_eq!(&*a.assign(&wrong).unwrap().pool, "default");
    wrong.requested_pool = Some("by-svc".into());
    assert_eq!(
        a.assign(&wrong),
        Err(AllocError::PoolNotForService {
            pool: "by-svc".into(),
            reason: PoolMismatch::ServiceLabels
        })
    );
    let mut elsewhere = in_ns("f", "elsewhere", &[], &[]);
    elsewhere.requested_pool = Some("by-ns".into());
    let err = a.assign(&elsewhere).unwrap_err();
    assert_eq!(
        err.to_string(),
        "address pool \"by-ns\" may not be used by this service: namespace \"elsewhere\" is \
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
    assert_eq!(&*a.assign(&named).unwrap().pool, "a-manual");
    let mut pinned_ip = svc("ns", "pinned");
    pinned_ip.requested_ips = ips(&["10.0.0.3"]);
    assert_eq!(&*a.assign(&pinned_ip).unwrap().pool, "a-manual");

    let mut only_manual = allocator(vec![manual]);
    assert_eq!(
        only_manual.assign(&svc("ns", "x")),
        Err(AllocError::NoPoolForService {
            skipped: vec![SkippedPool {
                pool: "a-manual".into(),
                why: SkipReason::ManualOnly
            }]
        })
    );
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
            need: FamilyNeed::One(Family::V4),
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
            family: Family::V6,
            pool: None
        })
    );
    let mut unknown = svc("ns", "u");
    unknown.requested_pool = Some("zz".into());
    assert_eq!(
        a.assign(&unknown),
        Err(AllocError::UnknownPool { pool: "zz".into() })
    );
}
