//! The IPVS data path's pure core: the kernel table FerroLB wants, computed from the node's
//! virtual server table, and the requests that turn what the kernel holds into it. No socket
//! and no clock: the driver reads the kernel's table, passes the time, and sends the requests.
//!
//! Rules (kube-proxy's IPVS mode):
//! - one IPVS virtual server per FerroLB virtual server, with its scheduler, and
//!   `sessionAffinity: ClientIP` as persistence (timeout in seconds, one client address);
//! - real servers masqueraded (NAT), with their weights; a virtual server that must drop
//!   (Local policy, no local endpoint) has none;
//! - a TCP real server that leaves is removed gracefully: first its weight goes to 0 (no new
//!   connections, the established ones go on), then it is deleted once the kernel counts no
//!   active or inactive connection to it, or after [`DRAIN_LIMIT`] at the latest; if it comes
//!   back meanwhile, its weight is simply restored; UDP and SCTP real servers are deleted at
//!   once, as kube-proxy does (a flow moves on with its next datagram);
//! - only virtual servers FerroLB owns are ever changed or deleted: the caller says which
//!   (those it wants, and those a previous FerroLB left, which it remembers); anything another
//!   tool created is left alone.

pub mod companion;

use super::genl::{
    Command, Dest, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, Service, ServiceId,
    whole_address_netmask,
};
use super::model::{Proto, Table, VirtualServer, VsKey};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long a removed real server may keep its connections before it is deleted anyway.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Flags the kernel adds to what it reports (`IP_VS_SVC_F_HASHED`): not part of a request.
const KERNEL_FLAGS: u32 = 0x2;

/// A virtual server as FerroLB wants it in the kernel: its settings and its real servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub service: Service,
    pub dests: BTreeMap<(IpAddr, u16), Dest>,
}

/// A virtual server as the kernel holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub service: Service,
    pub dests: BTreeMap<(IpAddr, u16), HeldDest>,
}

/// A real server as the kernel holds it, with its connection counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldDest {
    pub dest: Dest,
    pub connections: u32,
}

/// One request to the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Service(Command, Service),
    Dest(Command, ServiceId, Dest),
}

/// The kernel table FerroLB wants for `table`.
pub fn wanted(table: &Table) -> BTreeMap<ServiceId, Wanted> {
    table
        .servers
        .values()
        .map(|vs| {
            let w = wanted_server(vs);
            (w.service.id, w)
        })
        .collect()
}

/// The kernel's identity of a FerroLB virtual server.
pub fn service_id(key: &VsKey) -> ServiceId {
    ServiceId::Addr {
        proto: key.proto,
        addr: key.addr,
        port: key.port,
    }
}

/// The kernel virtual server FerroLB wants for one of its virtual servers.
pub fn wanted_server(vs: &VirtualServer) -> Wanted {
    let id = service_id(&vs.key);
    let (flags, timeout) = match vs.affinity {
        Some(t) => (
            SVC_F_PERSISTENT,
            t.as_secs().clamp(1, u64::from(u32::MAX)) as u32,
        ),
        None => (0, 0),
    };
    // The sh/mh options are the kernel's scheduler flags 1 (fallback) and 2 (port).
    let sched_flags = [
        (vs.scheduler_flags.fallback, SVC_F_SCHED1),
        (vs.scheduler_flags.port, SVC_F_SCHED2),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .fold(0, |acc, (_, bit)| acc | bit);
    let service = Service {
        id,
        scheduler: vs.scheduler.name().into(),
        flags: flags | sched_flags,
        timeout,
        netmask: whole_address_netmask(vs.key.addr.is_ipv6()),
    };
    let dests = if vs.drop {
        BTreeMap::new()
    } else {
        vs.real_servers
            .iter()
            .map(|r| ((r.addr, r.port), Dest::masq(r.addr, r.port, r.weight)))
            .collect()
    };
    Wanted { service, dests }
}

/// Real servers being drained: since when, per virtual server and real server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Draining(BTreeMap<(ServiceId, IpAddr, u16), Instant>);

impl Draining {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The virtual servers with a real server draining: the driver refreshes their
    /// connection counts before planning.
    pub fn services(&self) -> BTreeSet<ServiceId> {
        self.0.keys().map(|(id, ..)| *id).collect()
    }

    /// When the next drained real server may be deleted at the latest (for the driver's
    /// timer), if any is draining.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.0.values().min().map(|since| *since + DRAIN_LIMIT)
    }
}

/// The requests that turn `held` into `wanted`, in an order the kernel accepts (a virtual
/// server before its real servers, real servers before their virtual server goes). `owned`
/// says which held virtual servers FerroLB may change or delete; `draining` remembers the
/// real servers on their way out. Both maps may be the same part of the whole tables (the
/// virtual servers a change touched): what is in neither is not looked at.
pub fn plan(
    wanted: &BTreeMap<ServiceId, Wanted>,
    held: &BTreeMap<ServiceId, Held>,
    owned: &BTreeSet<ServiceId>,
    draining: &mut Draining,
    now: Instant,
) -> Vec<Request> {
    let mut out = Vec::new();
    for (id, w) in wanted {
        match held.get(id) {
            None => {
                out.push(Request::Service(Command::NewService, w.service.clone()));
                for d in w.dests.values() {
                    out.push(Request::Dest(Command::NewDest, *id, *d));
                }
            }
            Some(h) => {
                if !same_settings(&h.service, &w.service) {
                    out.push(Request::Service(Command::SetService, w.service.clone()));
                }
                dests(&mut out, *id, &w.dests, &h.dests, draining, now);
            }
        }
    }
    for (id, h) in held {
        if wanted.contains_key(id) || !owned.contains(id) {
            continue;
        }
        // A virtual server that goes takes its connections with it, as kube-proxy's does.
        draining.0.retain(|(s, ..), _| s != id);
        out.push(Request::Service(Command::DelService, h.service.clone()));
    }
    // Forget drains of virtual servers that went (a plan over part of the table leaves the
    // drains of the rest alone).
    draining
        .0
        .retain(|(s, ..), _| wanted.contains_key(s) || !held.contains_key(s));
    out
}

/// The real server requests of one virtual server that stays.
fn dests(
    out: &mut Vec<Request>,
    id: ServiceId,
    wanted: &BTreeMap<(IpAddr, u16), Dest>,
    held: &BTreeMap<(IpAddr, u16), HeldDest>,
    draining: &mut Draining,
    now: Instant,
) {
    for (at, d) in wanted {
        draining.0.remove(&(id, at.0, at.1));
        match held.get(at) {
            None => out.push(Request::Dest(Command::NewDest, id, *d)),
            Some(h) if h.dest != *d => out.push(Request::Dest(Command::SetDest, id, *d)),
            Some(_) => {}
        }
    }
    for (at, h) in held {
        if wanted.contains_key(at) {
            continue;
        }
        let key = (id, at.0, at.1);
        if !drains(id) {
            draining.0.remove(&key);
            out.push(Request::Dest(Command::DelDest, id, h.dest));
            continue;
        }
        if h.dest.weight > 0 {
            out.push(Request::Dest(
                Command::SetDest,
                id,
                Dest {
                    weight: 0,
                    ..h.dest
                },
            ));
            draining.0.entry(key).or_insert(now);
            continue;
        }
        let since = *draining.0.entry(key).or_insert(now);
        if h.connections == 0 || now.duration_since(since) >= DRAIN_LIMIT {
            draining.0.remove(&key);
            out.push(Request::Dest(Command::DelDest, id, h.dest));
        }
    }
}

/// Whether a real server of this virtual server that leaves is drained (TCP) or deleted at
/// once (UDP and SCTP, as kube-proxy does: their flows have no end to wait for, and with
/// `expire_nodest_conn` the next datagram of a flow finds a live real server).
fn drains(id: ServiceId) -> bool {
    matches!(
        id,
        ServiceId::Addr {
            proto: Proto::Tcp,
            ..
        }
    )
}

/// What the kernel holds after it accepted `request`: lets a driver keep its copy of the
/// kernel's table without reading it back after every change (new real servers start with
/// no connections).
pub fn record(held: &mut BTreeMap<ServiceId, Held>, request: &Request) {
    match request {
        Request::Service(Command::NewService, svc) => {
            held.insert(
                svc.id,
                Held {
                    service: svc.clone(),
                    dests: BTreeMap::new(),
                },
            );
        }
        Request::Service(Command::SetService, svc) => {
            if let Some(h) = held.get_mut(&svc.id) {
                h.service = svc.clone();
            }
        }
        Request::Service(Command::DelService, svc) => {
            held.remove(&svc.id);
        }
        Request::Dest(cmd, id, dest) => {
            let Some(h) = held.get_mut(id) else { return };
            let at = (dest.addr, dest.port);
            match cmd {
                Command::DelDest => {
                    h.dests.remove(&at);
                }
                _ => {
                    let connections = h.dests.get(&at).map_or(0, |d| d.connections);
                    h.dests.insert(
                        at,
                        HeldDest {
                            dest: *dest,
                            connections,
                        },
                    );
                }
            }
        }
        Request::Service(..) => {}
    }
}

/// Whether a held virtual server's settings are what is wanted (the kernel's own flags and,
/// without persistence, the timeout and netmask it ignores, aside).
fn same_settings(held: &Service, wanted: &Service) -> bool {
    let flags = held.flags & !KERNEL_FLAGS;
    let persistent = wanted.flags & SVC_F_PERSISTENT != 0;
    held.scheduler == wanted.scheduler
        && flags == wanted.flags
        && (!persistent || (held.timeout == wanted.timeout && held.netmask == wanted.netmask))
}

#[cfg(test)]
mod tests;
