//! The three family policies.

use super::*;

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
    assert_eq!((&*single.pool, single.ips), ("a-v4", ips(&["10.0.0.0"])));
    let v6 = a.assign(&req("v6", SingleStack, &[V6])).unwrap();
    assert_eq!((&*v6.pool, v6.ips), ("b-dual", ips(&["fd00::"])));
    // Two families listed but SingleStack: the first only.
    assert_eq!(
        got(&mut a, &req("single2", SingleStack, &[V6, V4])),
        ips(&["fd00::1"])
    );
    // Require: both from one pool, skipping pools that have one family only.
    let both = a.assign(&req("require", RequireDualStack, &[])).unwrap();
    assert_eq!(
        (&*both.pool, both.ips),
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
            pools: vec!["a-v4".into(), "c-v6".into()]
        })
    );
    let fallback = b
        .assign(&req("prefer", PreferDualStack, &[V6, V4]))
        .unwrap();
    assert_eq!(
        (&*fallback.pool, &fallback.ips[..]),
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
    assert_eq!(&*a.assign(&req).unwrap().pool, "a");
    req.key.name = "y".into();
    let second = a.assign(&req).unwrap();
    assert_eq!(
        (&*second.pool, second.ips),
        ("b", ips(&["10.1.0.0", "fd01::"]))
    );
    // Nothing of pool a's IPv4 was taken by the failed attempt.
    assert_eq!(stats(&a, "a").in_use_v4, 1);
}

/// MetalLB chooses the pool first and then takes what it offers: pinned pools come before
/// open ones also for PreferDualStack, and within a group a pool with both families beats an
/// earlier one with only the first.
#[test]
fn prefer_dual_stack_stays_in_its_pinned_pools() {
    use Family::{V4, V6};
    let team = ServiceAllocation {
        namespaces: vec!["team-a".into()],
        ..Default::default()
    };
    let mut a = allocator(vec![
        pinned("team-v4", &["10.0.0.0/30"], team.clone()),
        pool("open-dual", &["10.1.0.0/24", "fd00::/120"]),
    ]);
    let req = |ns: &str, name: &str, policy| {
        let mut r = svc(ns, name);
        r.family_policy = policy;
        r
    };
    let prefer = a
        .assign(&req("team-a", "prefer", FamilyPolicy::PreferDualStack))
        .unwrap();
    assert_eq!((&*prefer.pool, prefer.ips), ("team-v4", ips(&["10.0.0.0"])));
    // Another team is not pinned: it gets the pair.
    let other = a
        .assign(&req("team-b", "prefer", FamilyPolicy::PreferDualStack))
        .unwrap();
    assert_eq!(other.ips, ips(&["10.1.0.0", "fd00::"]));
    // RequireDualStack leaves the pinned pools only because none of them can give both.
    let require = a
        .assign(&req("team-a", "require", FamilyPolicy::RequireDualStack))
        .unwrap();
    assert_eq!(
        (&*require.pool, require.ips),
        ("open-dual", ips(&["10.1.0.1", "fd00::1"]))
    );
    // The single address is kept on later calls.
    let again = a
        .assign(&req("team-a", "prefer", FamilyPolicy::PreferDualStack))
        .unwrap();
    assert_eq!(again.ips, ips(&["10.0.0.0"]));

    // Within the pinned group a pool with both families wins over a preferred one with one.
    let first = ServiceAllocation {
        priority: Some(1),
        ..team.clone()
    };
    let second = ServiceAllocation {
        priority: Some(2),
        ..team
    };
    let mut b = allocator(vec![
        pinned("p1-v4", &["10.0.0.0/30"], first),
        pinned("p2-dual", &["10.2.0.0/30", "fd02::/126"], second),
        pool("open-dual", &["10.1.0.0/24", "fd00::/120"]),
    ]);
    let got = b
        .assign(&req("team-a", "x", FamilyPolicy::PreferDualStack))
        .unwrap();
    assert_eq!(
        (&*got.pool, got.ips),
        ("p2-dual", ips(&["10.2.0.0", "fd02::"]))
    );
    // When the pinned pools have none of the first family, the second family is taken from
    // them rather than a pair from the open pool.
    let mut c = allocator(vec![
        pinned(
            "team-v6",
            &["fd03::/126"],
            ServiceAllocation {
                namespaces: vec!["team-a".into()],
                ..Default::default()
            },
        ),
        pool("open-dual", &["10.1.0.0/24", "fd00::/120"]),
    ]);
    let mut v4_first = req("team-a", "y", FamilyPolicy::PreferDualStack);
    v4_first.families = vec![V4, V6];
    let got = c.assign(&v4_first).unwrap();
    assert_eq!((&*got.pool, got.ips), ("team-v6", ips(&["fd03::"])));
    assert_eq!(c.assign(&v4_first).unwrap().ips, ips(&["fd03::"]));
}
