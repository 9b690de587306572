//! Requested and previous addresses, and requests that change.

use super::*;

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
            ip: ip("192.168.0.1")
        })
    );
    let mut wrong_pool = req("wrong-pool", &["10.0.0.8"]);
    wrong_pool.requested_pool = Some("buggy".into());
    assert_eq!(
        a.assign(&wrong_pool),
        Err(AllocError::IpNotInPool {
            ip: ip("10.0.0.8"),
            pool: "buggy".into()
        })
    );
    assert_eq!(
        a.assign(&req("dot-zero", &["10.0.1.0"])),
        Err(AllocError::IpNotAllowedBuggy {
            ip: ip("10.0.1.0"),
            pool: "buggy".into()
        })
    );
    // The same address is fine where buggy addresses are not avoided.
    assert_eq!(one(&mut a, &req("dot-zero-ok", &["10.0.0.0"])), "10.0.0.0");
    assert_eq!(
        a.assign(&req("taken", &["10.0.0.7"])),
        Err(AllocError::IpInUse {
            ip: ip("10.0.0.7"),
            holder: key("ok"),
            reason: Box::new(SharingReason::KeysDiffer {
                ours: None,
                theirs: None
            })
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
    assert_eq!(&*a.assign(&x).unwrap().pool, "b");
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
        Err(AllocError::IpInUse { reason, .. })
            if matches!(*reason, SharingReason::KeysDiffer { .. })
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
