//! What the IPVS path keeps around the kernel's virtual server table, as kube-proxy's IPVS
//! mode does, kept incrementally from the node's virtual server table:
//!
//! - the service addresses on FerroLB's dummy interface: ClusterIPs, external and
//!   LoadBalancer IPs (IPVS serves only addresses the kernel takes as local; NodePorts are on
//!   the node's own addresses already);
//! - FerroLB's own nftables table, `inet ferrolb-ipvs`, with what IPVS cannot do itself:
//!
//! ```text
//! set services4/6    (daddr . l4proto . dport)  every virtual server
//! set masquerade4/6  (daddr . l4proto . dport)  virtual servers that masquerade (Cluster policy)
//! set drop4/6        (daddr . l4proto . dport)  Local policy, no endpoint on this node
//! set hairpin4/6     (saddr . daddr)            local real servers, each paired with itself
//! chain prerouting (filter, mangle)  drop @drop; mark @masquerade for masquerading
//! chain output     (filter, mangle)  mark @services: traffic the node sends itself
//! chain postrouting (nat, srcnat)    masquerade what is marked, and hairpin traffic
//! ```
//!
//! Why the output chain marks every virtual server: a connection the node opens to an address
//! on its dummy interface takes that address as its source, which a pod elsewhere could never
//! answer; masquerading gives it the node's address on the way out. Why the chains sit at the
//! mangle priority: IPVS rewrites locally sent packets at `NF_IP_PRI_NAT_DST + 2` on output
//! (and takes incoming ones at input), so the marks must be set before that to see the
//! virtual address. The mark bit is the nftables path's and kube-proxy's (`0x4000`).
//! `net.ipv4.vs.conntrack=1` gives IPVS's connections conntrack entries, so masquerading and
//! the replies' reverse translation work as for any NAT.

use crate::ipvs::model::{Frontend, Table, VirtualServer, VsKey};
use crate::ipvs::nft::MASQ_MARK;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::IpAddr;

/// The table's name (family `inet`: one table for both families).
pub const TABLE: &str = "ferrolb-ipvs";

/// One element of one of the table's sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    Service(VsKey),
    Masquerade(VsKey),
    Drop(VsKey),
    Hairpin(IpAddr),
}

impl Element {
    /// The set holding it.
    pub fn set(self) -> &'static str {
        let v6 = self.addr().is_ipv6();
        match (self, v6) {
            (Element::Service(_), false) => "services4",
            (Element::Service(_), true) => "services6",
            (Element::Masquerade(_), false) => "masquerade4",
            (Element::Masquerade(_), true) => "masquerade6",
            (Element::Drop(_), false) => "drop4",
            (Element::Drop(_), true) => "drop6",
            (Element::Hairpin(_), false) => "hairpin4",
            (Element::Hairpin(_), true) => "hairpin6",
        }
    }

    fn addr(self) -> IpAddr {
        match self {
            Element::Service(k) | Element::Masquerade(k) | Element::Drop(k) => k.addr,
            Element::Hairpin(a) => a,
        }
    }

    /// The element as nft writes it.
    pub fn render(self) -> String {
        match self {
            Element::Service(k) | Element::Masquerade(k) | Element::Drop(k) => {
                format!("{} . {} . {}", k.addr, k.proto.name(), k.port)
            }
            Element::Hairpin(a) => format!("{a} . {a}"),
        }
    }
}

/// What one virtual server contributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Contribution {
    elements: Vec<Element>,
    address: Option<IpAddr>,
}

fn contribution(vs: &VirtualServer) -> Contribution {
    let mut elements = vec![Element::Service(vs.key)];
    if vs.drop {
        elements.push(Element::Drop(vs.key));
    } else {
        elements.extend(
            vs.real_servers
                .iter()
                .filter(|r| r.local)
                .map(|r| Element::Hairpin(r.addr)),
        );
    }
    if vs.masquerade {
        elements.push(Element::Masquerade(vs.key));
    }
    let address = (vs.frontend != Frontend::NodePort).then_some(vs.key.addr);
    Contribution { elements, address }
}

/// The differences one update made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub add: Vec<Element>,
    pub delete: Vec<Element>,
    /// Addresses the dummy interface must gain and lose.
    pub addresses_added: Vec<IpAddr>,
    pub addresses_removed: Vec<IpAddr>,
}

impl Changes {
    /// Whether the nftables table needs a change.
    pub fn rules_changed(&self) -> bool {
        !self.add.is_empty() || !self.delete.is_empty()
    }

    /// Whether the dummy interface needs a change.
    pub fn addresses_changed(&self) -> bool {
        !self.addresses_added.is_empty() || !self.addresses_removed.is_empty()
    }
}

/// The companion state: each virtual server's contribution and the reference counts of the
/// elements and addresses (a hairpin pair or a ClusterIP serves several virtual servers).
#[derive(Clone, Debug, Default)]
pub struct Companion {
    per_vs: BTreeMap<VsKey, Contribution>,
    elements: BTreeMap<Element, usize>,
    addresses: BTreeMap<IpAddr, usize>,
}

impl Companion {
    /// Follows `table`, looking only at the `touched` virtual servers when given (`None`: all),
    /// and returns what changed.
    pub fn update(&mut self, table: &Table, touched: Option<&BTreeSet<VsKey>>) -> Changes {
        let keys: Vec<VsKey> = match touched {
            Some(keys) => keys.iter().copied().collect(),
            None => self
                .per_vs
                .keys()
                .chain(table.servers.keys())
                .copied()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        let mut element_delta: BTreeMap<Element, i64> = BTreeMap::new();
        let mut address_delta: BTreeMap<IpAddr, i64> = BTreeMap::new();
        for key in keys {
            let new = table.servers.get(&key).map(contribution);
            let old = match &new {
                Some(c) => self.per_vs.insert(key, c.clone()),
                None => self.per_vs.remove(&key),
            };
            if old == new {
                continue;
            }
            for (c, sign) in [(old, -1), (new, 1)] {
                let Some(c) = c else { continue };
                for e in c.elements {
                    *element_delta.entry(e).or_default() += sign;
                }
                if let Some(a) = c.address {
                    *address_delta.entry(a).or_default() += sign;
                }
            }
        }
        let mut changes = Changes::default();
        for (e, delta) in element_delta {
            match apply_delta(&mut self.elements, e, delta) {
                Some(true) => changes.add.push(e),
                Some(false) => changes.delete.push(e),
                None => {}
            }
        }
        for (a, delta) in address_delta {
            match apply_delta(&mut self.addresses, a, delta) {
                Some(true) => changes.addresses_added.push(a),
                Some(false) => changes.addresses_removed.push(a),
                None => {}
            }
        }
        changes
    }

    /// The addresses the dummy interface holds.
    pub fn addresses(&self) -> BTreeSet<IpAddr> {
        self.addresses.keys().copied().collect()
    }

    /// Every element of the table's sets.
    pub fn elements(&self) -> impl Iterator<Item = Element> + '_ {
        self.elements.keys().copied()
    }

    /// A script that replaces whatever table of this name exists (a stale one from a crash
    /// included) with the whole table, in one transaction.
    pub fn render_full(&self) -> String {
        let mut s = String::new();
        // `add` then `delete` makes the delete succeed whether or not the table existed.
        let _ = writeln!(
            s,
            "add table inet {TABLE}\ndelete table inet {TABLE}\nadd table inet {TABLE}"
        );
        for (family, addr) in [("4", "ipv4_addr"), ("6", "ipv6_addr")] {
            for set in ["services", "masquerade", "drop"] {
                let _ = writeln!(
                    s,
                    "add set inet {TABLE} {set}{family} {{ type {addr} . inet_proto . inet_service; }}"
                );
            }
            let _ = writeln!(
                s,
                "add set inet {TABLE} hairpin{family} {{ type {addr} . {addr}; }}"
            );
        }
        for (chain, hook, kind, priority) in [
            ("prerouting", "prerouting", "filter", "mangle"),
            ("output", "output", "filter", "mangle"),
            ("postrouting", "postrouting", "nat", "srcnat"),
        ] {
            let _ = writeln!(
                s,
                "add chain inet {TABLE} {chain} {{ type {kind} hook {hook} priority {priority}; policy accept; }}"
            );
        }
        let mark = format!("meta mark set meta mark | {MASQ_MARK:#x}");
        for (ip, family) in [("ip", "4"), ("ip6", "6")] {
            let dest = format!("{ip} daddr . meta l4proto . th dport");
            let _ = writeln!(
                s,
                "add rule inet {TABLE} prerouting {dest} @drop{family} drop\n\
                 add rule inet {TABLE} prerouting {dest} @masquerade{family} {mark}\n\
                 add rule inet {TABLE} output {dest} @services{family} {mark}"
            );
        }
        let _ = writeln!(
            s,
            "add rule inet {TABLE} postrouting meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} masquerade"
        );
        for (ip, family) in [("ip", "4"), ("ip6", "6")] {
            let _ = writeln!(
                s,
                "add rule inet {TABLE} postrouting {ip} saddr . {ip} daddr @hairpin{family} masquerade"
            );
        }
        render_elements(&mut s, "add", self.elements.keys().copied());
        s
    }

    /// A script carrying out `changes` on a table [`Self::render_full`] made.
    pub fn render_changes(changes: &Changes) -> String {
        let mut s = String::new();
        render_elements(&mut s, "delete", changes.delete.iter().copied());
        render_elements(&mut s, "add", changes.add.iter().copied());
        s
    }

    /// A script removing the table whether or not it exists.
    pub fn render_removal() -> String {
        format!("add table inet {TABLE}\ndelete table inet {TABLE}\n")
    }
}

/// Adds `delta` to `key`'s count; `Some(true)` when it appeared, `Some(false)` when it went.
fn apply_delta<K: Ord + Copy>(counts: &mut BTreeMap<K, usize>, key: K, delta: i64) -> Option<bool> {
    let before = counts.get(&key).copied().unwrap_or(0);
    let after = usize::try_from(i64::try_from(before).unwrap_or(i64::MAX) + delta).unwrap_or(0);
    if after == 0 {
        counts.remove(&key);
    } else {
        counts.insert(key, after);
    }
    match (before, after) {
        (0, a) if a > 0 => Some(true),
        (b, 0) if b > 0 => Some(false),
        _ => None,
    }
}

/// `{verb} element` lines, one per set.
fn render_elements(s: &mut String, verb: &str, elements: impl Iterator<Item = Element>) {
    let mut by_set: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for e in elements {
        by_set.entry(e.set()).or_default().push(e.render());
    }
    for (set, items) in by_set {
        let _ = writeln!(
            s,
            "{verb} element inet {TABLE} {set} {{ {} }}",
            items.join(", ")
        );
    }
}

#[cfg(test)]
mod tests;
