//! The node's virtual server table: what the forwarding layer must do, computed from Services,
//! EndpointSlices and this node's addresses with kube-proxy's semantics.

use super::scheduler::{SchedulerFlags, SchedulerKind};
use crate::alloc::ServiceKey;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// A transport protocol the forwarding layer handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// Kubernetes' spelling (`TCP` when unset).
    pub fn from_k8s(p: Option<&str>) -> Option<Proto> {
        match p.unwrap_or("TCP") {
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            "SCTP" => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// The IP protocol number (`IPPROTO_*`).
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }

    /// The nftables / kernel name.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What identifies a virtual server: traffic to this protocol, address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VsKey {
    pub proto: Proto,
    pub addr: IpAddr,
    pub port: u16,
}

impl fmt::Display for VsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{}/{a}:{}", self.proto, self.port),
            IpAddr::V6(a) => write!(f, "{}/[{a}]:{}", self.proto, self.port),
        }
    }
}

/// How traffic reached the virtual server, which decides the traffic policy that applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Frontend {
    ClusterIp,
    NodePort,
    LoadBalancer,
    ExternalIp,
}

impl Frontend {
    /// Whether `externalTrafficPolicy` (rather than `internalTrafficPolicy`) governs it.
    pub fn is_external(self) -> bool {
        !matches!(self, Frontend::ClusterIp)
    }
}

/// Endpoint condition the real server was chosen under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointState {
    Ready,
    /// Serving but terminating: used only when no endpoint is ready.
    Terminating,
}

/// One backend of a virtual server.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealServer {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    /// On this node.
    pub local: bool,
    pub state: EndpointState,
    /// The endpoint's pod or target name, for logs and tests.
    pub name: String,
}

impl RealServer {
    /// The scheduler's view of this real server, with no connections yet.
    pub fn dest(&self) -> super::scheduler::Dest {
        super::scheduler::Dest {
            id: self.id(),
            weight: self.weight,
            active: 0,
            inactive: 0,
        }
    }

    /// The identity the hashing schedulers use.
    pub fn id(&self) -> String {
        match self.addr {
            IpAddr::V4(a) => format!("{a}:{}", self.port),
            IpAddr::V6(a) => format!("[{a}]:{}", self.port),
        }
    }
}

/// One virtual server with everything the data paths need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServer {
    pub key: VsKey,
    pub service: ServiceKey,
    /// The Service port's name (empty when unnamed).
    pub port_name: String,
    pub frontend: Frontend,
    pub scheduler: SchedulerKind,
    /// sh and mh options (`ferrolb.io/scheduler-flags`); empty for the other schedulers.
    pub scheduler_flags: SchedulerFlags,
    /// `sessionAffinity: ClientIP`: keep a client on one real server for this long.
    pub affinity: Option<Duration>,
    /// Rewrite the source to the node (Cluster policy for external traffic) so replies return
    /// through this node; `false` keeps the client address (Local policy).
    pub masquerade: bool,
    /// The policy is Local and this node has no endpoint: drop rather than forward.
    pub drop: bool,
    pub real_servers: Vec<RealServer>,
}

/// The health-check node port of a Service with `externalTrafficPolicy: Local`: it answers
/// 200 when this node has a local endpoint and 503 otherwise, so load balancers skip the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub port: u16,
    pub service: ServiceKey,
    pub local_endpoints: usize,
}

/// Everything the forwarding layer programs on one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub servers: BTreeMap<VsKey, VirtualServer>,
    pub health_checks: BTreeMap<u16, HealthCheck>,
}

/// One difference between two tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Add(VirtualServer),
    Update(VirtualServer),
    Remove(VsKey),
}

impl Table {
    /// What turns `self` into `next`, touching only the virtual servers that differ.
    pub fn diff(&self, next: &Table) -> Vec<Change> {
        self.diff_matching(next, |_| true)
    }

    /// [`Table::diff`] for the virtual servers named by `keys` only (those an incremental
    /// build reported as touched): the cost follows the change, not the table.
    pub fn diff_keys<'a>(
        &self,
        next: &Table,
        keys: impl IntoIterator<Item = &'a VsKey>,
    ) -> Vec<Change> {
        keys.into_iter()
            .filter_map(|k| match (self.servers.get(k), next.servers.get(k)) {
                (None, Some(v)) => Some(Change::Add(v.clone())),
                (Some(_), None) => Some(Change::Remove(*k)),
                (Some(was), Some(is)) if was != is => Some(Change::Update(is.clone())),
                _ => None,
            })
            .collect()
    }

    /// Makes `self` what `next` is in the virtual servers named by `keys` (and in the health
    /// checks): how a data path keeps its copy of what it programmed, at the cost of a change.
    pub fn follow<'a>(&mut self, next: &Table, keys: impl IntoIterator<Item = &'a VsKey>) {
        for key in keys {
            match next.servers.get(key) {
                Some(vs) => self.servers.insert(*key, vs.clone()),
                None => self.servers.remove(key),
            };
        }
        self.health_checks.clone_from(&next.health_checks);
    }

    /// [`Table::diff`] restricted to the virtual servers whose key passes `keep` (one address
    /// family, say). One ordered walk over both tables: only servers with the same key are
    /// compared, so a large table with a few changes costs one pass and no lookups.
    pub fn diff_matching(&self, next: &Table, keep: impl Fn(&VsKey) -> bool) -> Vec<Change> {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let mut changes = Vec::new();
        let mut old = self.servers.iter().filter(|(k, _)| keep(k)).peekable();
        let mut new = next.servers.iter().filter(|(k, _)| keep(k)).peekable();
        loop {
            let order = match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some(_), None) => Less,
                (None, Some(_)) => Greater,
                (Some((a, _)), Some((b, _))) => a.cmp(b),
            };
            match order {
                Less => changes.push(Change::Remove(*old.next().expect("peeked").0)),
                Greater => changes.push(Change::Add(new.next().expect("peeked").1.clone())),
                Equal => {
                    let (was, is) = (old.next().expect("peeked").1, new.next().expect("peeked").1);
                    if was != is {
                        changes.push(Change::Update(is.clone()));
                    }
                }
            }
        }
        changes
    }
}
