//! Where the round-robin schedulers (rr, wrr) keep their real servers: in maps shared by many
//! virtual servers, keyed by the virtual server and the scheduler's counter, rather than in an
//! anonymous map per virtual server; and the rule that picks from them.
//!
//! ```text
//! map be-<proto>-XX  (daddr . dport . n) -> addr . port    XX: a hash of the server (256 maps)
//! rule  [mark] dnat to daddr . <proto> dport . numgen inc mod N map @be-<proto>-XX
//! ```
//!
//! The rule sits in the virtual server's own chain ([`super::RoundRobin::PerService`]: its
//! own counter, IPVS's exact rotation) or in a chain shared by every virtual server with the
//! same protocol, slot count, marking and map ([`super::RoundRobin::Shared`], `rr-<proto>-<N>
//! [-masq]-XX`: the rule reads the packet's own destination to find the virtual server's
//! elements, and the counter is shared). (One family of maps per protocol: nft 1.0's `typeof th
//! dport` cannot be read back from the kernel to add a rule later, `tcp dport` can.)
//!
//! Why shared maps: the kernel pays for every set with walks over all the sets of the table
//! (name lookups, the numbering of anonymous sets) and over the whole transaction (binding an
//! anonymous set), so one set per virtual server made a 10,000-Service program quadratic (14 s
//! for 10,000 virtual servers). One map for all would make every element insertion walk every
//! rule bound to it (10,000 with a chain per virtual server). 256 maps keep both walks short.
//! A real server change then touches a few elements, not rules. The hashing schedulers (sh,
//! dh, mh, ranges of a 256- or 65,537-entry table) and client affinity keep their per-server
//! sets: they are the exception, not the rule.
//!
//! Elements are written at the end of a script, one command per map: nft handles one long
//! element list far faster than thousands of short commands.

use super::{Family, TABLE, element};
use crate::ipvs::hash::hash64;
use crate::ipvs::model::{Proto, RealServer, VirtualServer, VsKey};
use crate::ipvs::scheduler::SchedulerKind;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

/// How many shared maps (per protocol) the virtual servers are spread over.
pub const MAPS: u64 = 256;
/// A weighted server list longer than this (the sum of the weights) keeps the per-server
/// anonymous map with ranges instead of one element per counter value.
pub const MAX_SPREAD: u32 = 4096;
const SEED: u64 = 0x6265_2d6d_6170_7331; // "be-maps1"

/// The number of counter slots of a virtual server kept in a shared map (servers for rr, the
/// sum of the weights for wrr), without building the list; `None` for the others.
pub(super) fn slots(vs: &VirtualServer) -> Option<u32> {
    if vs.affinity.is_some() || vs.real_servers.is_empty() {
        return None;
    }
    match vs.scheduler {
        SchedulerKind::Rr => u32::try_from(vs.real_servers.len()).ok(),
        SchedulerKind::Wrr => {
            let total: u32 = vs.real_servers.iter().map(|r| r.weight.max(1)).sum();
            (total <= MAX_SPREAD).then_some(total)
        }
        _ => None,
    }
}

/// The real server (index into `vs.real_servers`) for each value of the scheduler's counter,
/// for the schedulers kept in shared maps; `None` for the others.
pub(super) fn spread(vs: &VirtualServer) -> Option<Vec<usize>> {
    slots(vs)?;
    let weights = vs.real_servers.iter().map(|r| match vs.scheduler {
        SchedulerKind::Wrr => r.weight.max(1) as usize,
        _ => 1,
    });
    let owners = weights
        .enumerate()
        .flat_map(|(i, w)| std::iter::repeat_n(i, w));
    Some(owners.collect())
}

/// The shared map holding a virtual server's real servers.
pub fn map_name(key: &VsKey) -> String {
    map_of(key.proto, bucket(key))
}

/// Which of its protocol's maps holds a virtual server's real servers.
pub(super) fn bucket(key: &VsKey) -> u8 {
    (hash64(SEED, super::chain_name(key).as_bytes()) % MAPS) as u8
}

/// The shared backend map `bucket` of `proto`.
pub(super) fn map_of(proto: Proto, bucket: u8) -> String {
    format!("be-{proto}-{bucket:02x}")
}

/// A virtual server's element for counter value `n` (its map is per protocol).
fn key(k: &VsKey, n: usize) -> String {
    format!("{} . {} . {n}", k.addr, k.port)
}

/// Append `item` to a comma-separated element list.
fn push(list: &mut String, item: std::fmt::Arguments<'_>) {
    if !list.is_empty() {
        list.push_str(", ");
    }
    let _ = list.write_fmt(item);
}

/// Append `key : real server` for one counter slot.
fn push_entry(list: &mut String, slot: &Slot, to: &SocketAddr) {
    let (addr, port, n) = (slot.addr, slot.port, slot.n);
    let (ip, to_port) = (to.ip(), to.port());
    push(
        list,
        format_args!("{addr} . {port} . {n} : {ip} . {to_port}"),
    );
}

/// The round-robin rule: pick counter slot `n` of the packet's own virtual server in `map`,
/// DNAT to its real server.
pub(super) fn rule(
    family: Family,
    proto: Proto,
    slots: u32,
    masquerade: bool,
    map: &str,
) -> String {
    let (f, mark) = (family.name(), super::masquerade_mark(masquerade));
    format!(
        "{mark}meta l4proto {proto} dnat {f} to {f} daddr . {proto} dport . numgen inc mod {slots} map @{map}"
    )
}

/// Element additions collected while a program is rendered, as data: written as `nft` text
/// at the end of a script ([`Self::finish`]), or handed to a driver that writes them through
/// netlink ([`Self::into_data`]).
#[derive(Default)]
pub(super) struct Elements {
    services: Vec<(VsKey, String)>,
    backends: BTreeMap<String, Vec<(Slot, SocketAddr)>>,
    /// Maps known to exist in the kernel already: no declaration needed (nft resolves one
    /// declaration against the whole cached ruleset, a few ms in a large table).
    existing: std::collections::BTreeSet<String>,
}

impl Elements {
    /// `key → goto chain` in the services map.
    pub fn service(&mut self, key: &VsKey, chain: String) {
        self.services.push((*key, chain));
    }

    /// `map` exists in the kernel already: it needs no declaration.
    pub fn exists(&mut self, map: String) {
        self.existing.insert(map);
    }

    /// Every counter value of `vs` in its shared map.
    pub fn backends(&mut self, vs: &VirtualServer, owners: &[usize]) {
        let list = self.backends.entry(map_name(&vs.key)).or_default();
        for (n, i) in owners.iter().enumerate() {
            list.push(entry(vs, n, &vs.real_servers[*i]));
        }
    }

    /// The declarations of the shared maps used (before any rule that reads them; `add` of an
    /// existing map is a no-op), and the element additions (after everything else).
    pub fn finish(self, family: Family) -> (String, String) {
        let (decls, services, backends) = self.finish_parts(family);
        (decls, services + &backends.concat())
    }

    /// [`Self::finish`] with the additions apart: those of the services map, and one command
    /// per shared backend map.
    pub fn finish_parts(self, family: Family) -> (String, String, Vec<String>) {
        let f = family.name();
        let decls = self.declarations(family);
        let mut services = String::new();
        let mut list = String::new();
        for (key, chain) in &self.services {
            push(&mut list, format_args!("{} : goto {chain}", element(key)));
        }
        if !list.is_empty() {
            let _ = writeln!(services, "add element {f} {TABLE} services {{ {list} }}");
        }
        let backends = self.backends.iter().map(|(map, slots)| {
            let mut list = String::new();
            for (slot, to) in slots {
                push_entry(&mut list, slot, to);
            }
            format!("add element {f} {TABLE} {map} {{ {list} }}\n")
        });
        (decls, services, backends.collect())
    }

    /// The declarations as text; the services map's and the backend maps' elements as data.
    pub fn into_data(self, family: Family) -> (String, Vec<(VsKey, String)>, Vec<Replacement>) {
        let decls = self.declarations(family);
        let backends = self.backends.into_iter();
        let backends = backends.map(|(map, slots)| Replacement { map, slots });
        (decls, self.services, backends.collect())
    }

    fn declarations(&self, family: Family) -> String {
        let f = family.name();
        let mut decls = String::new();
        for map in self.backends.keys().filter(|m| !self.existing.contains(*m)) {
            // `be-<proto>-XX`
            let p = map.split('-').nth(1).unwrap_or("tcp");
            let _ = writeln!(
                decls,
                "add map {f} {TABLE} {map} {{ typeof {f} daddr . {p} dport . numgen inc mod 2 : {f} daddr . {p} dport; }}"
            );
        }
        decls
    }
}

/// Counter value `n` of `vs`, going to real server `r`.
fn entry(vs: &VirtualServer, n: usize, r: &RealServer) -> (Slot, SocketAddr) {
    let slot = Slot {
        addr: vs.key.addr,
        port: vs.key.port,
        n: n as u32,
    };
    (slot, SocketAddr::new(r.addr, r.port))
}

/// Delete every counter value of `vs` from its shared map, if it uses one.
pub(super) fn remove(s: &mut String, family: Family, vs: &VirtualServer) {
    let Some(owners) = spread(vs).filter(|_| !vs.drop) else {
        return;
    };
    let keys: Vec<String> = (0..owners.len()).map(|n| key(&vs.key, n)).collect();
    let _ = writeln!(
        s,
        "delete element {} {TABLE} {} {{ {} }}",
        family.name(),
        map_name(&vs.key),
        keys.join(", ")
    );
}

/// The counter values of `vs` whose real server differs from `was`'s, when the change keeps
/// the rule (same counter range, same marking); `None` when the rule must change.
fn moved(was: &VirtualServer, vs: &VirtualServer) -> Option<(Vec<usize>, Vec<usize>)> {
    let (before, after) = (spread(was)?, spread(vs)?);
    if before.len() != after.len() || was.masquerade != vs.masquerade || was.drop || vs.drop {
        return None;
    }
    let moved = |n: &usize| {
        let (a, b) = (&was.real_servers[before[*n]], &vs.real_servers[after[*n]]);
        (a.addr, a.port) != (b.addr, b.port)
    };
    let changed = (0..after.len()).filter(moved).collect();
    Some((changed, after))
}

/// A change of real servers that keeps the rule: only the elements whose real server changed
/// are replaced. Returns false when the rule must change.
pub(super) fn update_in_place(
    s: &mut String,
    e: &mut Elements,
    family: Family,
    (was, vs): (&VirtualServer, &VirtualServer),
) -> bool {
    let Some((changed, after)) = moved(was, vs) else {
        return false;
    };
    if changed.is_empty() {
        return true;
    }
    let keys: Vec<String> = changed.iter().map(|n| key(&vs.key, *n)).collect();
    let map = map_name(&vs.key);
    let _ = writeln!(
        s,
        "delete element {} {TABLE} {map} {{ {} }}",
        family.name(),
        keys.join(", ")
    );
    // `was` is programmed, so its map exists.
    e.existing.insert(map.clone());
    let list = e.backends.entry(map).or_default();
    for n in changed {
        list.push(entry(vs, n, &vs.real_servers[after[n]]));
    }
    true
}

/// One element of a shared backend map: a virtual server's address and port and a value of
/// its scheduler's counter (the map name holds the protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub addr: IpAddr,
    pub port: u16,
    pub n: u32,
}

/// Elements of one shared backend map, each with its real server, as data for a driver that
/// talks to the kernel without `nft`. In a change, each replaces the element of the same slot
/// (the old one goes and the new one comes, in one transaction: what [`update_in_place`]
/// writes as a script); in a first program ([`super::FirstProgram`]) they are added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replacement {
    pub map: String,
    pub slots: Vec<(Slot, SocketAddr)>,
}

/// [`update_in_place`]'s change as data: `None` when the rule must change, an empty list
/// when nothing does.
pub(super) fn replacement(was: &VirtualServer, vs: &VirtualServer) -> Option<Replacement> {
    let (changed, after) = moved(was, vs)?;
    let slots = changed.into_iter();
    let slots = slots.map(|n| entry(vs, n, &vs.real_servers[after[n]]));
    Some(Replacement {
        map: map_name(&vs.key),
        slots: slots.collect(),
    })
}
