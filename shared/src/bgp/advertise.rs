//! What this node advertises to each BGP peer, as a pure function of the speaker's
//! [`Snapshot`] (DESIGN.md section 5, "BGP").
//!
//! Unlike layer 2 there is no election: every eligible node advertises and the routers spread
//! traffic with ECMP. So [`advertise`] only asks, for this node:
//!
//! * **Peers.** Every configured `BGPPeer` whose `nodeSelectors` select this node (none:
//!   every node), once this node's Node object is known. A session is kept with each even
//!   when nothing is advertised.
//! * **Node.** This node must be usable: not excluded (label
//!   [`EXCLUDE_LABEL`](crate::l2::election::EXCLUDE_LABEL), condition `NetworkUnavailable`),
//!   by the same rules as layer 2. An unusable node keeps its sessions and advertises nothing.
//! * **Addresses.** Every address in the status of a Service of ours, in the pool that contains
//!   it (as the layer 2 election finds it), covered by a `BGPAdvertisement` whose pools include
//!   that pool, whose `nodeSelectors` select this node and whose `peers` (none: all) name the
//!   peer.
//! * **Endpoints**, per address family: `externalTrafficPolicy: Cluster` needs a serving
//!   endpoint anywhere, `Local` one on this node (the same "serving" as the layer 2
//!   election and the data path). Services sharing an address need only one of them to serve.
//! * **Routes.** The address truncated to the advertisement's `aggregationLength` (IPv4) or
//!   `aggregationLengthV6`, carrying its communities and large communities (aliases were
//!   resolved when the config was validated), and LOCAL_PREF for iBGP peers only. Addresses
//!   and advertisements that land on the same prefix make one route with the union of their
//!   communities and the highest LOCAL_PREF (validation rejects real conflicts).
//!
//! The next hop is not set here: it is this end of the TCP session ("next hop self"), which
//! only the driver knows.

use crate::alloc::ServiceKey;
use crate::bgp::codec::Attributes;
use crate::config::community::Community;
use crate::config::validate::{BgpAdv, Peer};
use crate::l2::election::endpoints::Serving;
use crate::l2::election::{Liveness, NodeFacts, pool_of};
use crate::selector::{LabelSelector, Labels};
use crate::service::Service;
use crate::service::{is_ours, service_key, status_ips};
use crate::small_set::SmallSet;
use crate::snapshot::Snapshot;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// One route for one peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Route {
    /// Everything but the next hop (and the attributes the session completes: ORIGIN,
    /// AS_PATH).
    pub attributes: Attributes,
    /// The LoadBalancer addresses this prefix covers.
    pub ips: SmallSet<IpAddr>,
    /// The Services on those addresses, for status and logs.
    pub services: SmallSet<ServiceKey>,
}

/// What one peer gets from this node.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerPlan {
    /// The validated `BGPPeer`.
    pub peer: Peer,
    /// Same AS on both sides (`peerASN == myASN`, or `dynamicASN: internal`).
    pub ibgp: bool,
    pub routes: BTreeMap<IpNet, Route>,
}

/// Whether a peer is iBGP, from its validated spec.
pub fn is_ibgp(peer: &Peer) -> bool {
    match (peer.spec.peer_asn, peer.spec.dynamic_asn.as_deref()) {
        (Some(asn), _) => asn == peer.spec.my_asn,
        (None, Some(kind)) => kind == "internal",
        (None, None) => false,
    }
}

/// The peers of `node` and the routes each gets (see the module docs). `lb_class` is the
/// `loadBalancerClass` whose Services are ours (`None`: Services without one).
pub fn advertise(
    snapshot: &Snapshot,
    node: &str,
    lb_class: Option<&str>,
) -> BTreeMap<String, PeerPlan> {
    let Some(config) = snapshot.config.as_deref() else {
        return BTreeMap::new(); // nothing configured: no peers, nothing to advertise
    };
    // This node's labels and usability, by the layer 2 rules. Until its Node object is seen
    // there are no sessions: `nodeSelectors` cannot be judged without its labels, and
    // guessing would start sessions only to stop them a moment later.
    let mut warnings = Vec::new();
    let Some(facts) = snapshot
        .nodes
        .get(node)
        .map(|n| NodeFacts::of(node, n, &|_| Liveness::Alive, &mut warnings))
    else {
        return BTreeMap::new();
    };
    let (labels, usable) = (&facts.labels, facts.usable);
    let mut out: BTreeMap<String, PeerPlan> = config
        .peers
        .values()
        .filter(|p| selects(&p.spec.node_selectors, labels))
        .map(|p| {
            let plan = PeerPlan {
                peer: p.clone(),
                ibgp: is_ibgp(p),
                routes: BTreeMap::new(),
            };
            (p.name.clone(), plan)
        })
        .collect();
    if !usable || out.is_empty() {
        return out;
    }
    // Each route's addresses and Services are gathered in trees (an aggregate can cover
    // thousands of Services, met in no particular order), then stored compactly.
    let mut gathered: BTreeMap<(String, IpNet), (BTreeSet<IpAddr>, BTreeSet<ServiceKey>)> =
        BTreeMap::new();
    for (ip, services) in addresses(snapshot, lb_class) {
        let Some(pool) = pool_of(config, ip, &services, &mut warnings) else {
            continue; // in no pool: the controller will take it back
        };
        let advs: Vec<&BgpAdv> = config
            .bgp_advertisements
            .values()
            .filter(|a| a.pools.contains(pool) && selects(&a.spec.node_selectors, labels))
            .collect();
        if advs.is_empty() {
            continue;
        }
        let serving = serving_services(snapshot, node, ip, &services);
        if serving.is_empty() {
            continue;
        }
        for adv in advs {
            for plan in out.values_mut() {
                if !adv.spec.peers.is_empty() && !adv.spec.peers.contains(&plan.peer.name) {
                    continue;
                }
                let Some(prefix) = prefix_of(ip, adv) else {
                    continue; // validation keeps lengths in range; never panic on one
                };
                let route = plan.routes.entry(prefix).or_default();
                merge(&mut route.attributes, adv, plan.ibgp);
                let (ips, keys) = gathered
                    .entry((plan.peer.name.clone(), prefix))
                    .or_default();
                ips.insert(ip);
                keys.extend(serving.iter().cloned());
            }
        }
    }
    for ((peer, prefix), (ips, keys)) in gathered {
        if let Some(route) = out.get_mut(&peer).and_then(|p| p.routes.get_mut(&prefix)) {
            route.ips = ips.into_iter().collect();
            route.services = keys.into_iter().collect();
        }
    }
    out
}

/// A selector list selects every node when empty, else when one of them matches.
fn selects(selectors: &[LabelSelector], labels: &Labels) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| s.matches(labels))
}

/// Every address of a Service of ours, with the Services on it (sorted by key).
fn addresses<'s>(
    snapshot: &'s Snapshot,
    lb_class: Option<&str>,
) -> BTreeMap<IpAddr, Vec<&'s Service>> {
    let mut by_ip: BTreeMap<IpAddr, Vec<&Service>> = BTreeMap::new();
    for svc in snapshot.services.values() {
        if is_ours(svc, lb_class) {
            for ip in status_ips(svc).iter().copied().collect::<BTreeSet<_>>() {
                by_ip.entry(ip).or_default().push(svc);
            }
        }
    }
    by_ip
}

/// The Services on `ip` that this node can serve: a serving endpoint in the address's family
/// anywhere (`Cluster`) or on this node (`Local`).
fn serving_services(
    snapshot: &Snapshot,
    node: &str,
    ip: IpAddr,
    services: &[&Service],
) -> BTreeSet<ServiceKey> {
    services
        .iter()
        .filter_map(|svc| {
            let key = service_key(svc);
            let serving = Serving::of(snapshot, &key, ip.is_ipv4());
            let local = svc.external_local;
            let ok = if local {
                serving.nodes.contains(node)
            } else {
                serving.anywhere
            };
            ok.then_some(key)
        })
        .collect()
}

/// `ip` widened to the advertisement's aggregation length for its family.
fn prefix_of(ip: IpAddr, adv: &BgpAdv) -> Option<IpNet> {
    let len = if ip.is_ipv4() {
        adv.spec.aggregation_length()
    } else {
        adv.spec.aggregation_length_v6()
    };
    let len = u8::try_from(len).ok()?;
    IpNet::new(ip, len).ok().map(|n| n.trunc())
}

/// Adds one advertisement's attributes to a route, keeping lists sorted and unique.
fn merge(attributes: &mut Attributes, adv: &BgpAdv, ibgp: bool) {
    for c in &adv.communities {
        match *c {
            Community::Standard(v) => attributes.communities.push(v),
            Community::Large(a, b, c) => attributes.large_communities.push((a, b, c)),
        }
    }
    attributes.communities.sort_unstable();
    attributes.communities.dedup();
    attributes.large_communities.sort_unstable();
    attributes.large_communities.dedup();
    // localPref 0 means unset (MetalLB); it is meaningless towards eBGP peers.
    if let Some(lp) = adv.spec.local_pref.filter(|lp| ibgp && *lp > 0) {
        attributes.local_pref = Some(attributes.local_pref.map_or(lp, |old| old.max(lp)));
    }
}

#[cfg(test)]
mod tests;
