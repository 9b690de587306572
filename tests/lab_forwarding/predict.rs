//! The real server the model in `ferrolb-shared` says a hashing scheduler (sh, mh) picks for
//! a client, so the lab can check each data path against it, not only for consistency.
//!
//! Both data paths make the model's choice: the userspace proxy runs [`Scheduler::pick`]
//! itself, and the kernel hashes the source with `jhash ... mod N seed` into the tables
//! FerroLB rendered from the same model (sh buckets, the Maglev table), which is the hash
//! [`Scheduler::pick`] computes (`ferrolb_shared::ipvs::hash::kernel_bucket`). So one
//! prediction serves both, and a kernel that hashed differently fails the test.

use ferrolb_shared::ipvs::scheduler::{Dest, Flow, Scheduler, SchedulerKind};
use std::net::IpAddr;

/// The real servers of a virtual server as the model identifies them (`addr:port`, IPv6 in
/// brackets), in the order the table builder lists them (by address).
pub fn ids(addrs: &[IpAddr], port: u16) -> Vec<String> {
    let mut addrs = addrs.to_vec();
    addrs.sort();
    addrs
        .iter()
        .map(|a| match a {
            IpAddr::V4(a) => format!("{a}:{port}"),
            IpAddr::V6(a) => format!("[{a}]:{port}"),
        })
        .collect()
}

fn dests(ids: &[String]) -> Vec<Dest> {
    ids.iter()
        .map(|id| Dest {
            id: id.clone(),
            weight: 1,
            active: 0,
            inactive: 0,
        })
        .collect()
}

/// The id either data path picks for a new connection from `src` to `dst`.
pub fn pick(kind: SchedulerKind, ids: &[String], src: IpAddr, dst: IpAddr) -> String {
    let d = dests(ids);
    let mut s = Scheduler::new(kind, &d).expect("scheduler");
    let i = s.pick(&Flow { src, dst }, &d).expect("a real server");
    ids[i].clone()
}
