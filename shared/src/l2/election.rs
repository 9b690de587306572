//! Which node announces each LoadBalancer IP in layer 2 mode, as a pure function of the
//! speaker's [`Snapshot`] and of which nodes are alive.
//!
//! There are no election messages: every speaker runs [`elect`] on its own view and acts on
//! the rows with its own name. So the answer must depend on nothing but the inputs: no map
//! iteration order, no per-process hash seed, no notion of "this node". Given equal snapshots
//! and liveness, every speaker computes the same owner for every IP; what makes failover fast
//! is how quickly they agree that a node is dead, which is the caller's business.
//!
//! # Rules (MetalLB's, made precise)
//!
//! For every address in the status of a Service of ours (`type: LoadBalancer`, our
//! `loadBalancerClass`):
//!
//! * **Pool.** The pool whose ranges contain the address (validated pools never overlap). The
//!   controller's [`POOL_ANNOTATION`] is checked against it and a disagreement is a warning;
//!   an address in no pool is not announced (the controller will take it back).
//! * **Advertisements.** The L2Advertisements whose `pools` include that pool. None: the
//!   address is not announced in layer 2 (it may be BGP-only).
//! * **Eligible nodes.** Node objects that are not [`Liveness::Dead`], not excluded (label
//!   [`EXCLUDE_LABEL`] with any value, or condition `NetworkUnavailable=True`), and selected
//!   by at least one of those advertisements (no `nodeSelectors` selects every node).
//! * **Endpoints**, counted per address family (a v4 address needs v4 endpoints: the data
//!   path forwards within one family). Ready endpoints count; serving-terminating ones only
//!   when no endpoint of the Service in that family is ready (as in
//!   [`crate::ipvs::build`]). The "no ready one" test is Service-wide even for `Local`, so
//!   during a rollout the address moves to a node with a ready pod instead of staying on a
//!   node whose pods are draining.
//! * **Per Service candidates.** `externalTrafficPolicy: Local`: eligible nodes with a
//!   serving endpoint of the Service (by the endpoint's `nodeName`). `Cluster`: every
//!   eligible node, but only if the Service has a serving endpoint somewhere: otherwise no
//!   node announces it, as in MetalLB (attracting traffic that can only be dropped helps no
//!   one, and the withdrawal tells clients something is wrong).
//! * **Shared addresses: one owner per IP, period.** Services sharing an address are elected
//!   together, not one by one, so they can never split across nodes. Services without a
//!   serving endpoint take no part (so an idle Service cannot take its neighbour's address
//!   down). The candidates are the nodes that can serve at least one of the others, ranked
//!   first by how many they serve: when the per-Service candidate sets intersect this is the
//!   intersection, and when they do not (which the controller's sharing rules prevent) the
//!   address still has one owner, plus a [`ElectionWarning::SharedIpSplit`].
//! * **Ranking.** Then nodes in [`Liveness::HeldDown`] after the others (a returning node does
//!   not take addresses back at once, but still announces one nobody else can), then higher
//!   [`PREFERENCE_ANNOTATION`] first (an integer, default 0; anything else counts as 0 with a
//!   warning), then the lower [`election_hash`] of (node name, IP), then the name. The first
//!   announces. The hash spreads addresses over nodes and keeps most of them in place when a
//!   node joins or leaves.
//! * **Interfaces.** Those of the advertisements that selected the owner, merged:
//!   [`Interfaces::All`] if any of them names none.

pub(crate) mod endpoints;

use crate::alloc::ServiceKey;
use crate::config::Config;
use crate::config::validate::L2Adv;
use crate::ipvs::hash::hash64;
use crate::selector::Labels;
use crate::service::Service;
use crate::service::{POOL_ANNOTATION, is_ours, service_key, status_ips, status_pool};
use crate::snapshot::Snapshot;
use endpoints::Serving;
use k8s_openapi::api::core::v1::Node;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Node label that keeps a node out of every LoadBalancer (any value).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// Node annotation: layer 2 preference weight, an integer; higher wins, default 0.
pub const PREFERENCE_ANNOTATION: &str = "ferrolb.io/l2-preference";
/// Seed of [`election_hash`]. Changing it moves addresses between nodes during an upgrade.
const ELECTION_SEED: u64 = 0x004c_3245_4c45_4354; // "L2ELECT"

/// What the caller knows about a node's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Liveness {
    Alive,
    /// Alive, but recently back from the dead (see `l2::handover::LivenessView`): ranked after every
    /// [`Liveness::Alive`] candidate.
    HeldDown,
    /// Never a candidate.
    Dead,
}

impl From<bool> for Liveness {
    fn from(alive: bool) -> Self {
        if alive {
            Liveness::Alive
        } else {
            Liveness::Dead
        }
    }
}

/// Where the owner announces an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interfaces {
    /// Every usable interface.
    All,
    /// Only these.
    Named(BTreeSet<String>),
}

impl Interfaces {
    pub fn contains(&self, interface: &str) -> bool {
        match self {
            Interfaces::All => true,
            Interfaces::Named(names) => names.contains(interface),
        }
    }
}

/// One node that could announce an address, with what it was ranked by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub node: String,
    /// How many of the address's Services this node can serve.
    pub serves: usize,
    pub held_down: bool,
    pub preference: i64,
    pub hash: u64,
}

/// The node that announces one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub node: String,
    /// The pool the address belongs to.
    pub pool: String,
    /// The Services on this address that the owner serves, sorted.
    pub services: Vec<ServiceKey>,
    pub interfaces: Interfaces,
    /// Every candidate, best first (`candidates[0]` is the owner).
    pub candidates: Vec<Candidate>,
}

/// Why an address is not announced by anyone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No configured pool contains it.
    NoPool,
    /// Its pool has no L2Advertisement.
    NoAdvertisement { pool: String },
    /// None of its Services has a serving endpoint in its family.
    NoServingEndpoint,
    /// No node is alive, not excluded, selected by an advertisement and (for `Local`) hosts an
    /// endpoint.
    NoCandidate,
}

/// An address nobody announces, for status and debugging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unannounced {
    pub services: Vec<ServiceKey>,
    pub reason: Reason,
}

/// Something odd in the inputs that the election worked around.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
pub enum ElectionWarning {
    #[error("node {node}: annotation {PREFERENCE_ANNOTATION}={value:?} is not an integer; using 0")]
    BadPreference { node: String, value: String },
    #[error(
        "{ip} of service {service}: annotation {POOL_ANNOTATION} names pool {annotated:?}, which does not contain it; using {}",
        .actual.as_deref().unwrap_or("no pool")
    )]
    PoolMismatch {
        ip: IpAddr,
        service: ServiceKey,
        annotated: String,
        actual: Option<String>,
    },
    #[error(
        "{ip}: no node can serve every service sharing it; {node} announces it, so {} get no traffic there",
        list(.unserved)
    )]
    SharedIpSplit {
        ip: IpAddr,
        node: String,
        unserved: Vec<ServiceKey>,
    },
}

fn list(keys: &[ServiceKey]) -> String {
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The outcome of one election. Every collection is sorted, so equal inputs give equal values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Election {
    pub assignments: BTreeMap<IpAddr, Assignment>,
    pub unannounced: BTreeMap<IpAddr, Unannounced>,
    /// Sorted, without duplicates.
    pub warnings: Vec<ElectionWarning>,
}

impl Election {
    /// The addresses `node` announces, in address order.
    pub fn owned_by<'a>(&'a self, node: &'a str) -> impl Iterator<Item = (IpAddr, &'a Assignment)> {
        self.assignments
            .iter()
            .filter(move |(_, a)| a.node == node)
            .map(|(ip, a)| (*ip, a))
    }
}

/// The fixed hash that orders equally preferred nodes for one address. Keyless and stable
/// across versions and processes, so every speaker ranks alike.
pub fn election_hash(node: &str, ip: IpAddr) -> u64 {
    let mut bytes = Vec::with_capacity(node.len() + 17);
    bytes.extend_from_slice(node.as_bytes());
    bytes.push(0); // node names never contain NUL, so (name, ip) pairs cannot collide
    match ip {
        IpAddr::V4(a) => bytes.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => bytes.extend_from_slice(&a.octets()),
    }
    hash64(ELECTION_SEED, &bytes)
}

/// Elect an owner for every LoadBalancer address in `snapshot` (see the module docs).
/// `lb_class` is the `loadBalancerClass` whose Services are ours (`None`: Services without
/// one); `liveness` says which nodes are alive, the caller's combined view of gossip,
/// Kubernetes and the hold-down (`l2::handover::LivenessView`).
pub fn elect(
    snapshot: &Snapshot,
    lb_class: Option<&str>,
    liveness: impl Fn(&str) -> Liveness,
) -> Election {
    let mut out = Election::default();
    let Some(config) = snapshot.config.as_deref() else {
        return out; // nothing is configured, so nothing is ours to announce
    };
    let nodes: Vec<NodeFacts<'_>> = snapshot
        .nodes
        .iter()
        .map(|(name, n)| NodeFacts::of(name, n, &liveness, &mut out.warnings))
        .collect();
    let mut by_ip: BTreeMap<IpAddr, Vec<&Service>> = BTreeMap::new();
    for svc in snapshot.services.values() {
        if is_ours(svc, lb_class) {
            for ip in status_ips(svc).iter().copied().collect::<BTreeSet<_>>() {
                by_ip.entry(ip).or_default().push(svc);
            }
        }
    }
    for (ip, services) in by_ip {
        let keys: Vec<ServiceKey> = services.iter().map(|s| service_key(s)).collect();
        match elect_ip(snapshot, config, &nodes, ip, &services, &mut out.warnings) {
            Ok(a) => {
                out.assignments.insert(ip, a);
            }
            Err(reason) => {
                out.unannounced.insert(
                    ip,
                    Unannounced {
                        services: keys,
                        reason,
                    },
                );
            }
        }
    }
    out.warnings.sort();
    out.warnings.dedup();
    out
}

/// What the election needs to know about one node.
pub(crate) struct NodeFacts<'a> {
    name: &'a str,
    pub(crate) labels: Labels,
    /// Not dead and not excluded.
    pub(crate) usable: bool,
    held_down: bool,
    preference: i64,
}

impl<'a> NodeFacts<'a> {
    pub(crate) fn of(
        name: &'a str,
        node: &'a Node,
        liveness: &impl Fn(&str) -> Liveness,
        warnings: &mut Vec<ElectionWarning>,
    ) -> Self {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let network_unavailable = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True");
        let live = liveness(name);
        let annotation = node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PREFERENCE_ANNOTATION));
        let preference = match annotation.map(|v| v.trim().parse::<i64>()) {
            None => 0,
            Some(Ok(p)) => p,
            Some(Err(_)) => {
                warnings.push(ElectionWarning::BadPreference {
                    node: name.to_string(),
                    value: annotation.cloned().unwrap_or_default(),
                });
                0
            }
        };
        NodeFacts {
            name,
            usable: live != Liveness::Dead
                && !labels.contains_key(EXCLUDE_LABEL)
                && !network_unavailable,
            labels,
            held_down: live == Liveness::HeldDown,
            preference,
        }
    }
}

/// Elect the owner of one address held by `services` (sorted by key, at least one).
fn elect_ip(
    snapshot: &Snapshot,
    config: &Config,
    nodes: &[NodeFacts<'_>],
    ip: IpAddr,
    services: &[&Service],
    warnings: &mut Vec<ElectionWarning>,
) -> Result<Assignment, Reason> {
    let pool = pool_of(config, ip, services, warnings).ok_or(Reason::NoPool)?;
    let advs: Vec<&L2Adv> = config
        .l2_advertisements
        .values()
        .filter(|a| a.pools.contains(pool))
        .collect();
    if advs.is_empty() {
        return Err(Reason::NoAdvertisement { pool: pool.into() });
    }
    let selecting = |n: &NodeFacts<'_>| -> Vec<&L2Adv> {
        advs.iter()
            .copied()
            .filter(|a| {
                a.spec.node_selectors.is_empty()
                    || a.spec.node_selectors.iter().any(|s| s.matches(&n.labels))
            })
            .collect()
    };
    let eligible: Vec<&NodeFacts<'_>> = nodes
        .iter()
        .filter(|n| n.usable && !selecting(n).is_empty())
        .collect();
    // Each Service with a serving endpoint, and the eligible nodes that can serve it.
    let mut per_service: Vec<(ServiceKey, BTreeSet<&str>)> = Vec::new();
    for svc in services {
        let key = service_key(svc);
        let serving = Serving::of(snapshot, &key, ip.is_ipv4());
        if !serving.anywhere {
            continue;
        }
        let local = svc.external_local;
        let can = eligible
            .iter()
            .filter(|n| !local || serving.nodes.contains(n.name))
            .map(|n| n.name)
            .collect();
        per_service.push((key, can));
    }
    if per_service.is_empty() {
        return Err(Reason::NoServingEndpoint);
    }
    let mut candidates: Vec<Candidate> = eligible
        .iter()
        .map(|n| Candidate {
            node: n.name.to_string(),
            serves: per_service
                .iter()
                .filter(|(_, c)| c.contains(n.name))
                .count(),
            held_down: n.held_down,
            preference: n.preference,
            hash: election_hash(n.name, ip),
        })
        .filter(|c| c.serves > 0)
        .collect();
    candidates.sort_by(|a, b| {
        let key = |c: &Candidate| {
            (
                Reverse(c.serves),
                c.held_down,
                Reverse(c.preference),
                c.hash,
            )
        };
        key(a).cmp(&key(b)).then_with(|| a.node.cmp(&b.node))
    });
    let owner = candidates.first().ok_or(Reason::NoCandidate)?.node.clone();
    let (served, unserved): (Vec<_>, Vec<_>) = per_service
        .into_iter()
        .partition(|(_, c)| c.contains(owner.as_str()));
    if !unserved.is_empty() {
        warnings.push(ElectionWarning::SharedIpSplit {
            ip,
            node: owner.clone(),
            unserved: unserved.into_iter().map(|(k, _)| k).collect(),
        });
    }
    let owner_facts = eligible.iter().find(|n| n.name == owner);
    let mut interfaces = Interfaces::Named(BTreeSet::new());
    for adv in owner_facts.map(|n| selecting(n)).unwrap_or_default() {
        if adv.spec.interfaces.is_empty() {
            interfaces = Interfaces::All;
        } else if let Interfaces::Named(names) = &mut interfaces {
            names.extend(adv.spec.interfaces.iter().cloned());
        }
    }
    Ok(Assignment {
        node: owner,
        pool: pool.into(),
        services: served.into_iter().map(|(k, _)| k).collect(),
        interfaces,
        candidates,
    })
}

/// The pool that contains `ip`, checked against the controller's annotations.
pub(crate) fn pool_of<'c>(
    config: &'c Config,
    ip: IpAddr,
    services: &[&Service],
    warnings: &mut Vec<ElectionWarning>,
) -> Option<&'c str> {
    let contains = |ranges: &[crate::alloc::IpRange]| {
        ranges.iter().any(|r| {
            r.start.is_ipv4() == ip.is_ipv4()
                && r.end.is_ipv4() == ip.is_ipv4()
                && r.start <= ip
                && ip <= r.end
        })
    };
    let actual = config
        .pools
        .values()
        .find(|p| contains(&p.ranges))
        .map(|p| p.name.as_str());
    for svc in services {
        if let Some(annotated) = status_pool(svc)
            && Some(annotated) != actual
        {
            warnings.push(ElectionWarning::PoolMismatch {
                ip,
                service: service_key(svc),
                annotated: annotated.into(),
                actual: actual.map(Into::into),
            });
        }
    }
    actual
}

#[cfg(test)]
pub(crate) mod tests;
