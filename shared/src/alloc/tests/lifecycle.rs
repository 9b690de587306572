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
    assert_eq!(dropped, std::slice::from_ref(&x.key));
    let mut a = allocator(vec![pool("a", &["10.0.0.0/24"])]);
    assert_eq!(one(&mut a, &x), "10.0.0.0");
    let mut avoid = pool("a", &["10.0.0.0/24"]);
    avoid.avoid_buggy_ips = true;
    assert_eq!(a.set_pools(vec![avoid]), std::slice::from_ref(&x.key));
    // Turning autoAssign off drops addresses the service did not ask for by name or IP.
    let mut a = allocator(vec![pool("a", &["10.0.0.0/24"])]);
    let mut named = svc("ns", "named");
    named.requested_pool = Some("a".into());
    a.assign(&x).unwrap();
    a.assign(&named).unwrap();
    let mut manual = pool("a", &["10.0.0.0/24"]);
    manual.auto_assign = false;
    assert_eq!(a.set_pools(vec![manual]), std::slice::from_ref(&x.key));
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
