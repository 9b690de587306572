//! Which chain the `services` map sends a virtual server to: one shared by every virtual
//! server with the same rule, or one of its own.
//!
//! Shared: `dropped` (no endpoint, or Local policy without a local one) and, with
//! [`RoundRobin::Shared`], the round-robin chains `rr-<proto>-<N>[-masq]-XX` of the kernel path
//! ([`super::backends`]). Own: round robin with [`RoundRobin::PerService`], the hashing
//! schedulers, client affinity, long weighted lists, and the userspace path's redirects (each
//! to its listener's port). A shared chain exists while some virtual server of the program
//! uses it.

use super::backends;
use super::{Prog, RoundRobin, Target, dropping};
use crate::ipvs::model::{Proto, Table, VirtualServer};
use std::collections::BTreeSet;

/// A chain several virtual servers jump to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum SharedChain {
    Dropped,
    RoundRobin(RoundRobinChain),
}

/// What the virtual servers of a shared round-robin chain have in common.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct RoundRobinChain {
    pub proto: Proto,
    pub slots: u32,
    pub masquerade: bool,
    /// The backend map ([`backends::bucket`]).
    pub map: u8,
}

impl SharedChain {
    /// Its name: short, stable, and not an nft keyword.
    pub fn name(self) -> String {
        match self {
            SharedChain::Dropped => "dropped".to_string(),
            SharedChain::RoundRobin(c) => {
                let masq = if c.masquerade { "-masq" } else { "" };
                format!("rr-{}-{}{masq}-{:02x}", c.proto, c.slots, c.map)
            }
        }
    }

    /// Its one rule.
    pub fn rule(self, p: Prog<'_>) -> String {
        match self {
            SharedChain::Dropped => "counter drop".to_string(),
            SharedChain::RoundRobin(c) => {
                let map = backends::map_of(c.proto, c.map);
                backends::rule(p.family, c.proto, c.slots, c.masquerade, &map)
            }
        }
    }
}

/// Where a virtual server's chain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    Shared(SharedChain),
    Own,
}

/// The chain `vs` jumps to in program `p` (a virtual server `p` supports).
pub(super) fn place(p: Prog<'_>, vs: &VirtualServer) -> Place {
    if dropping(vs) {
        return Place::Shared(SharedChain::Dropped);
    }
    match (p.target, backends::slots(vs)) {
        (Target::Kernel(RoundRobin::Shared), Some(slots)) => {
            Place::Shared(SharedChain::RoundRobin(RoundRobinChain {
                proto: vs.key.proto,
                slots,
                masquerade: vs.masquerade,
                map: backends::bucket(&vs.key),
            }))
        }
        _ => Place::Own,
    }
}

/// The shared chains the program of `table` uses.
pub(super) fn shared_chains(table: &Table, p: Prog<'_>) -> BTreeSet<SharedChain> {
    let servers = table.servers.values().filter(|v| p.supports(v));
    servers
        .filter_map(|v| match place(p, v) {
            Place::Shared(c) => Some(c),
            Place::Own => None,
        })
        .collect()
}
