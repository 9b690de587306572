//! Address sharing: keys, backends, ports, and reuse by automatic allocation.

use super::*;

/// Why `r`, asking for 10.0.0.1, may not have it.
fn in_use_reason(a: &mut Allocator, mut r: ServiceRequest) -> SharingReason {
    r.requested_ips = ips(&["10.0.0.1"]);
    match a.assign(&r) {
        Err(AllocError::IpInUse { reason, .. }) => *reason,
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
        Err(AllocError::IpInUse { reason, .. })
            if matches!(*reason, SharingReason::BackendsDiffer { .. })
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
fn ports_of_a_departed_sharer_can_be_reused() {
    let mut a = allocator(vec![pool("p", &["10.0.0.1-10.0.0.20"])]);
    assert_eq!(one(&mut a, &shared("a", "k", 80)), "10.0.0.1");
    assert_eq!(one(&mut a, &shared("b", "k", 443)), "10.0.0.1");
    assert_eq!(one(&mut a, &shared("c", "k", 443)), "10.0.0.2");
    a.release(&ServiceKey::new("default", "b"));
    // .1 now only serves port 80, so another 443 service joins it.
    assert_eq!(one(&mut a, &shared("d", "k", 443)), "10.0.0.1");
    // A service changing its ports moves the address to the right group too.
    let mut d = shared("d", "k", 22);
    d.requested_ips = ips(&["10.0.0.1"]);
    assert_eq!(one(&mut a, &d), "10.0.0.1");
    assert_eq!(one(&mut a, &shared("e", "k", 443)), "10.0.0.1");
    assert_eq!(one(&mut a, &shared("f", "k", 22)), "10.0.0.2");
}

/// Many services under one key with the same port: none can share, and each pick checks one
/// group instead of every shared address.
#[test]
fn one_key_everywhere_stays_fast() {
    let n = if cfg!(debug_assertions) {
        5_000
    } else {
        50_000
    };
    let mut a = allocator(vec![pool("p", &["10.0.0.0/8"])]);
    let start = std::time::Instant::now();
    for i in 0..n {
        a.assign(&shared(&format!("s{i}"), "true", 80)).unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(a.pool_stats()[0].in_use_v4, n as u128);
    assert!(
        elapsed.as_secs_f64() < 5.0,
        "{n} allocations took {elapsed:?}"
    );
}
