//! Huge pools and many allocations.

use super::*;
use std::time::Instant;

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
        elapsed.as_secs_f64() < 20.0,
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
        elapsed.as_secs_f64() < 20.0,
        "{n} allocations took {elapsed:?}"
    );
    eprintln!("{n} allocations over 1001 pools took {elapsed:?}");
}
