//! What the controller hands the allocator (pool definitions, service requests) and what it
//! gets back, plus the request-level rules that do not depend on allocator state: which
//! families a service wants and whether two services may share an address.

use super::error::{AllocError, SharingReason};
use crate::selector::{LabelSelector, Labels};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// An inclusive address range. The config layer guarantees both ends are of one family and
/// `start <= end`; a range that breaks this is ignored rather than trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpRange {
    pub start: IpAddr,
    pub end: IpAddr,
}

impl IpRange {
    pub fn new(start: IpAddr, end: IpAddr) -> Self {
        Self { start, end }
    }

    /// The range's family and integer bounds, or `None` for a mixed-family or reversed range.
    pub(crate) fn bounds(&self) -> Option<(Family, u128, u128)> {
        let (family, start) = split_ip(self.start);
        let (end_family, end) = split_ip(self.end);
        (family == end_family && start <= end).then_some((family, start, end))
    }
}

/// Every address of a CIDR, network and broadcast addresses included (MetalLB hands those out
/// too unless the pool sets `avoidBuggyIPs`).
impl From<ipnet::IpNet> for IpRange {
    fn from(net: ipnet::IpNet) -> Self {
        Self {
            start: net.network(),
            end: net.broadcast(),
        }
    }
}

/// A pool's `serviceAllocation`: which services may draw from it automatically, and in which
/// order relative to other such pools.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAllocation {
    /// Lower is preferred; unset sorts after every set value.
    pub priority: Option<i32>,
    pub namespaces: Vec<String>,
    pub namespace_selectors: Vec<LabelSelector>,
    pub service_selectors: Vec<LabelSelector>,
}

/// One address pool as the allocator needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolDef {
    pub name: String,
    /// Walked in this order when looking for the lowest free address.
    pub ranges: Vec<IpRange>,
    pub auto_assign: bool,
    pub avoid_buggy_ips: bool,
    pub allocation: Option<ServiceAllocation>,
}

/// A Service's identity. Displays as `namespace/name`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl ServiceKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Index into per-family arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }

    fn other(self) -> Self {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// A Service's `spec.ipFamilyPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FamilyPolicy {
    #[default]
    SingleStack,
    PreferDualStack,
    RequireDualStack,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// Where traffic for the address goes. Services sharing an address must agree on it, because
/// the address is announced from the nodes this selects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKey {
    /// `externalTrafficPolicy: Cluster`.
    #[default]
    Cluster,
    /// `externalTrafficPolicy: Local`, with the Service's pod selector rendered as a string.
    Local(String),
}

impl fmt::Display for BackendKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendKey::Cluster => f.write_str("traffic policy Cluster"),
            BackendKey::Local(selector) => write!(f, "traffic policy Local to {selector:?}"),
        }
    }
}

/// Everything about a Service that bears on its addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceRequest {
    pub key: ServiceKey,
    /// Shared: a namespace's Services have the same, and the allocator keeps them per Service.
    pub namespace_labels: Arc<Labels>,
    /// Shared with the Service they come from.
    pub service_labels: Arc<Labels>,
    /// `spec.ipFamilies` in order; empty means "infer" (see [`FamilyPolicy`] handling in the
    /// module docs).
    pub families: Vec<Family>,
    pub family_policy: FamilyPolicy,
    /// `spec.loadBalancerIP` or the `loadBalancerIPs` annotation: at most one per family.
    pub requested_ips: Vec<IpAddr>,
    /// The `address-pool` annotation.
    pub requested_pool: Option<String>,
    /// The `allow-shared-ip` annotation; `Some("")` is treated as `None`.
    pub sharing_key: Option<String>,
    pub backend_key: BackendKey,
    pub ports: Vec<(Protocol, u16)>,
    /// Addresses in the Service's status, reclaimed after a controller restart.
    pub previous_ips: Vec<IpAddr>,
}

impl ServiceRequest {
    /// The sharing key, with the empty annotation meaning "no sharing".
    pub(crate) fn sharing(&self) -> Option<&str> {
        self.sharing_key.as_deref().filter(|k| !k.is_empty())
    }
}

/// A service's addresses and the pool they came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Assignment {
    /// Shared with the allocator's pool and every other assignment from it.
    pub pool: Arc<str>,
    /// Ordered like the service's families.
    pub ips: Vec<IpAddr>,
}

/// Usage of one pool. `capacity_*` counts usable addresses (without `.0`/`.255` when the pool
/// avoids buggy IPs) and saturates at `u128::MAX`: a full IPv6 /0 really holds 2^128.
/// `in_use_*` counts distinct addresses held, however many services share each.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolStats {
    pub name: String,
    pub capacity_v4: u128,
    pub capacity_v6: u128,
    pub in_use_v4: u128,
    pub in_use_v6: u128,
}

/// The shape of the answer a request needs, resolved from families, policy and requested IPs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// One or two distinct families, in the order the answer's IPs must follow.
    pub families: Vec<Family>,
    /// PreferDualStack: a single address of `families[0]` is acceptable when no pool has both.
    pub single_fallback: bool,
    /// The requested IPs, ordered like `families` (empty: allocate freely).
    pub requested: Vec<IpAddr>,
}

/// Resolves what `req` asks for, or says why it cannot be satisfied by any pool.
pub(crate) fn plan(req: &ServiceRequest) -> Result<Plan, AllocError> {
    let mut families: Vec<Family> = Vec::with_capacity(2);
    for &f in &req.families {
        if !families.contains(&f) {
            families.push(f);
        }
    }
    if families.is_empty() {
        families = match req.family_policy {
            FamilyPolicy::RequireDualStack | FamilyPolicy::PreferDualStack => {
                vec![Family::V4, Family::V6]
            }
            // A single-stack Service without ipFamilies is of the family of the address it
            // asks for or had, so that a restart does not flip it.
            FamilyPolicy::SingleStack => {
                let hint = req.requested_ips.first().or(req.previous_ips.first());
                vec![hint.map_or(Family::V4, |ip| Family::of(*ip))]
            }
        };
    }
    if req.family_policy == FamilyPolicy::SingleStack {
        families.truncate(1);
    }

    let mut by_family: [Option<IpAddr>; 2] = [None, None];
    for &ip in &req.requested_ips {
        let family = Family::of(ip);
        if let Some(first) = by_family[family.index()] {
            if first == ip {
                continue;
            }
            return Err(AllocError::TwoIpsSameFamily {
                family,
                first,
                second: ip,
            });
        }
        if !families.contains(&family) {
            return Err(AllocError::IpFamilyNotInService { ip, families });
        }
        by_family[family.index()] = Some(ip);
    }

    let requested: Vec<IpAddr> = families
        .iter()
        .filter_map(|f| by_family[f.index()])
        .collect();
    if !requested.is_empty() && requested.len() < families.len() {
        // Two families wanted, one address requested.
        let have = Family::of(requested[0]);
        if req.family_policy == FamilyPolicy::RequireDualStack {
            return Err(AllocError::RequestedIpMissingFamily {
                family: have.other(),
                requested,
            });
        }
        // PreferDualStack: the user pinned one address, so the service is single-stack.
        families = vec![have];
    }
    let single_fallback = req.family_policy == FamilyPolicy::PreferDualStack
        && families.len() == 2
        && requested.is_empty();
    Ok(Plan {
        families,
        single_fallback,
        requested,
    })
}

/// What decides whether two services may share an address: the sharing key (empty means
/// none), the backend and the ports.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SharingTerms<'a> {
    pub(crate) key: Option<&'a str>,
    pub(crate) backend: &'a BackendKey,
    pub(crate) ports: &'a [(Protocol, u16)],
}

impl ServiceRequest {
    pub(crate) fn terms(&self) -> SharingTerms<'_> {
        SharingTerms {
            key: self.sharing(),
            backend: &self.backend_key,
            ports: &self.ports,
        }
    }
}

/// Why `ours` may not join `theirs` on one address, or `None` when it may. The rule is
/// MetalLB's: both carry the same non-empty sharing key, agree on the backend (so the address
/// is announced from the same nodes) and have no protocol/port in common.
pub(crate) fn sharing_conflict(
    ours: SharingTerms<'_>,
    theirs: SharingTerms<'_>,
) -> Option<SharingReason> {
    match (ours.key, theirs.key) {
        (Some(a), Some(b)) if a == b => {}
        (a, b) => {
            return Some(SharingReason::KeysDiffer {
                ours: a.map(str::to_owned),
                theirs: b.map(str::to_owned),
            });
        }
    }
    if ours.backend != theirs.backend {
        return Some(SharingReason::BackendsDiffer {
            ours: ours.backend.clone(),
            theirs: theirs.backend.clone(),
        });
    }
    ours.ports
        .iter()
        .find(|p| theirs.ports.contains(p))
        .map(|&(protocol, port)| SharingReason::PortConflict { protocol, port })
}

/// An address as its family and integer value (IPv4 in the low 32 bits).
pub(crate) fn split_ip(ip: IpAddr) -> (Family, u128) {
    match ip {
        IpAddr::V4(v4) => (Family::V4, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (Family::V6, u128::from(v6)),
    }
}

/// The inverse of [`split_ip`]. IPv4 values come from IPv4 ranges, so they fit in 32 bits; the
/// truncation can only ever drop zero bits.
pub(crate) fn join_ip(family: Family, value: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}
