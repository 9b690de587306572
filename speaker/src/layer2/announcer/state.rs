//! What the announcer answers for, as one immutable value swapped whole, and the pure planning
//! that turns the election's result into it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferrolb_shared::l2::election::Interfaces;

use crate::layer2::interfaces::{Interface, Link, Unusable, select_from};

/// Counters of one owned address, shared by every interface it is announced on and carried
/// over from one state to the next while the address stays owned.
#[derive(Debug, Default)]
pub(super) struct IpStats {
    pub requests: AtomicU64,
    pub replies: AtomicU64,
    pub gratuitous: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl IpStats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One interface's part of the state.
#[derive(Debug)]
pub(super) struct InterfaceState {
    /// Whether the interface has carrier; without it nothing is answered there (fencing).
    pub carrier: bool,
    pub ips: HashMap<IpAddr, Arc<IpStats>>,
}

/// Which addresses are answered where, right now.
#[derive(Debug, Default)]
pub(super) struct OwnedState {
    pub interfaces: HashMap<String, InterfaceState>,
    /// Every owned address (including any that no usable interface carries).
    pub stats: BTreeMap<IpAddr, Arc<IpStats>>,
}

impl OwnedState {
    /// The counters of `ip` if it is owned on `interface`, and whether to answer there
    /// (carrier up).
    pub fn lookup(&self, interface: &str, ip: IpAddr) -> Option<(&IpStats, bool)> {
        let iface = self.interfaces.get(interface)?;
        let stats = iface.ips.get(&ip)?;
        Some((stats, iface.carrier))
    }

    /// Whether `ip` is answered on `interface` right now.
    #[cfg(test)]
    pub fn is_answering(&self, interface: &str, ip: IpAddr) -> bool {
        matches!(self.lookup(interface, ip), Some((_, true)))
    }

    /// Every (address, interface) pair answered right now.
    pub fn answering(&self) -> BTreeSet<(IpAddr, String)> {
        self.interfaces
            .iter()
            .filter(|(_, i)| i.carrier)
            .flat_map(|(name, i)| i.ips.keys().map(move |ip| (*ip, name.clone())))
            .collect()
    }
}

/// Where each owned address goes, resolved against the current links.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    /// Usable interfaces carrying at least one address, with those addresses.
    pub interfaces: BTreeMap<String, (Interface, BTreeSet<IpAddr>)>,
    /// Named interfaces an address asked for that cannot be used, with why.
    pub unusable: BTreeMap<(IpAddr, String), Unusable>,
    /// Addresses that ended up on no interface at all.
    pub nowhere: BTreeSet<IpAddr>,
}

/// Resolves every owned address's [`Interfaces`] against `links`.
pub(super) fn plan(owned: &BTreeMap<IpAddr, Interfaces>, links: &[Link]) -> Plan {
    let mut out = Plan::default();
    let all = select_from(links, &Interfaces::All);
    for (ip, selection) in owned {
        let named;
        let selected = match selection {
            Interfaces::All => &all,
            Interfaces::Named(_) => {
                named = select_from(links, selection);
                &named
            }
        };
        for (name, why) in &selected.unusable {
            out.unusable.insert((*ip, name.clone()), why.clone());
        }
        if selected.usable.is_empty() {
            out.nowhere.insert(*ip);
        }
        for iface in &selected.usable {
            out.interfaces
                .entry(iface.name.clone())
                .or_insert_with(|| (iface.clone(), BTreeSet::new()))
                .1
                .insert(*ip);
        }
    }
    out
}

/// Builds the state for `plan`, keeping the counters of addresses already in `previous`.
/// Interfaces for which `available` is false (no receive socket) are left out; `carrier`
/// says whether each interface may answer.
pub(super) fn build(
    owned: &BTreeMap<IpAddr, Interfaces>,
    plan: &Plan,
    previous: &OwnedState,
    available: impl Fn(&str) -> bool,
    carrier: impl Fn(&Interface) -> bool,
) -> OwnedState {
    let stats: BTreeMap<IpAddr, Arc<IpStats>> = owned
        .keys()
        .map(|ip| (*ip, previous.stats.get(ip).cloned().unwrap_or_default()))
        .collect();
    let interfaces = plan
        .interfaces
        .iter()
        .filter(|(name, _)| available(name))
        .map(|(name, (iface, ips))| {
            let ips = ips
                .iter()
                .filter_map(|ip| Some((*ip, stats.get(ip)?.clone())))
                .collect();
            let state = InterfaceState {
                carrier: carrier(iface),
                ips,
            };
            (name.clone(), state)
        })
        .collect();
    OwnedState { interfaces, stats }
}
