//! Unit tests, one file per area; one or more tests per rule in the module docs.

use super::*;
use crate::selector::{LabelSelector, Labels};
use std::net::IpAddr;

mod dual_stack;
mod lifecycle;
mod messages;
mod pools;
mod requests;
mod scale;
mod sharing;

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
