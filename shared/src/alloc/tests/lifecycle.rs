//! Pool edits, release, idempotence, restarts and invalid pool input.

use super::*;

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
    assert_eq!(dropped, std::slice::from_ref(&y.key));
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
    assert_eq!(&*a.assign(&x).unwrap().pool, "b");

    // Moving into a pool the service may not use drops it; so does becoming buggy.
    let dropped = a.set_pools(vec![pinned(
        "b",
        &["10.0.0.0/23"],
        ServiceAllocation {
            namespaces: vec!["other".into()],
            ..Default::default()
        },
    )]);
    assert_eq!(dropped, std::slice::from_ref(&x.key));
    let mut a = allocator(vec![pool("a", &["10.0.0.0/24"])]);
    assert_eq!(one(&mut a, &x), "10.0.0.0");
    let mut avoid = pool("a", &["10.0.0.0/24"]);
    avoid.avoid_buggy_ips = true;
    assert_eq!(a.set_pools(vec![avoid]), std::slice::from_ref(&x.key));
}

/// MetalLB's rule: `autoAssign` governs new automatic allocations only. An address a Service
/// already holds is re-checked like a requested one, so turning autoAssign off, changing a
/// priority or adding selectors that still admit the Service never renumbers it.
#[test]
fn pool_edits_that_keep_the_address_usable_do_not_renumber() {
    let mut a = allocator(vec![
        pool("a", &["1.2.3.0/31"]),
        pool("b", &["10.0.0.0/24"]),
    ]);
    let x = svc("ns", "x");
    let mut web = svc("ns", "web");
    web.service_labels = labels(&[("app", "web")]).into();
    assert_eq!(one(&mut a, &x), "1.2.3.0");
    assert_eq!(one(&mut a, &web), "1.2.3.1");
    let held = |a: &Allocator, r: &ServiceRequest| a.assignment(&r.key).cloned();
    let (x_before, web_before) = (held(&a, &x), held(&a, &web));

    let mut manual = pool("a", &["1.2.3.0/31"]);
    manual.auto_assign = false;
    assert!(
        a.set_pools(vec![manual.clone(), pool("b", &["10.0.0.0/24"])])
            .is_empty()
    );
    assert_eq!(
        (held(&a, &x), held(&a, &web)),
        (x_before.clone(), web_before.clone())
    );
    // Later calls keep it too (the controller re-assigns on every Service event) ...
    assert_eq!(Some(a.assign(&x).unwrap()), x_before);
    // ... and after a restart, from the status.
    let mut restarted = allocator(vec![manual.clone(), pool("b", &["10.0.0.0/24"])]);
    let mut from_status = x.clone();
    from_status.previous_ips = ips(&["1.2.3.0"]);
    assert_eq!(Some(restarted.assign(&from_status).unwrap()), x_before);
    // New automatic allocations no longer come from it.
    a.release(&x.key);
    assert_eq!(one(&mut a, &svc("ns", "new")), "10.0.0.0");

    // A priority and a selector the Service still matches: kept.
    let mut a = allocator(vec![
        pool("a", &["1.2.3.0/31"]),
        pool("b", &["10.0.0.0/24"]),
    ]);
    a.assign(&web).unwrap();
    let still_web = pinned(
        "a",
        &["1.2.3.0/31"],
        ServiceAllocation {
            priority: Some(5),
            service_selectors: vec![selector(&[("app", "web")])],
            ..Default::default()
        },
    );
    let open_first = pinned(
        "b",
        &["10.0.0.0/24"],
        ServiceAllocation {
            priority: Some(1),
            ..Default::default()
        },
    );
    assert!(a.set_pools(vec![still_web, open_first]).is_empty());
    assert_eq!(a.assignment(&web.key).unwrap().ips, ips(&["1.2.3.0"]));
    // A selector it no longer matches: dropped, for the caller to re-allocate.
    let not_web = pinned(
        "a",
        &["1.2.3.0/31"],
        ServiceAllocation {
            service_selectors: vec![selector(&[("app", "db")])],
            ..Default::default()
        },
    );
    assert_eq!(
        a.set_pools(vec![not_web, pool("b", &["10.0.0.0/24"])]),
        std::slice::from_ref(&web.key)
    );
}

#[test]
fn release_makes_the_address_reusable() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let x = svc("ns", "x");
    assert_eq!(one(&mut a, &x), "10.0.0.0");
    assert_eq!(one(&mut a, &svc("ns", "y")), "10.0.0.1");
    assert_eq!(a.services_on(ip("10.0.0.0")), std::slice::from_ref(&x.key));
    let released = a.release(&x.key).unwrap();
    assert_eq!(released.ips, ips(&["10.0.0.0"]));
    assert_eq!(a.release(&x.key), None);
    assert!(a.services_on(ip("10.0.0.0")).is_empty());
    assert_eq!(stats(&a, "p").in_use_v4, 1);
    assert_eq!(one(&mut a, &svc("ns", "z")), "10.0.0.0");
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
