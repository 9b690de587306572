//! The pure part of a peer's routes: "next hop self" filled in, and the change to hand the
//! session. Kept apart from the task so it is tested without sockets.

use ferrolb_shared::bgp::codec::{Attributes, Ipv6NextHop};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Where our addresses come from, best first.
#[derive(Clone, Copy, Debug, Default)]
pub struct OurAddresses<'a> {
    /// Our end of the newest connection.
    pub local: Option<IpAddr>,
    /// `BGPPeer.sourceAddress`.
    pub source: Option<IpAddr>,
    /// The Node's addresses.
    pub node: &'a [IpAddr],
}

impl OurAddresses<'_> {
    /// Our address of one family: the connection's if it is of that family (what the peer
    /// reaches us on), else the configured source, else one of the Node's.
    pub fn of(&self, v4: bool) -> Option<IpAddr> {
        let family = |a: &IpAddr| a.is_ipv4() == v4;
        self.local
            .filter(family)
            .or(self.source.filter(family))
            .or_else(|| self.node.iter().copied().find(family))
    }
}

/// `routes` with our address as next hop; routes of a family we have no address of are left
/// out (the session would refuse them).
pub fn with_next_hops(
    routes: &BTreeMap<IpNet, Attributes>,
    ours: OurAddresses<'_>,
) -> BTreeMap<IpNet, Attributes> {
    let (v4, v6) = (ours.of(true), ours.of(false));
    routes
        .iter()
        .filter_map(|(prefix, attrs)| {
            let mut a = attrs.clone();
            match (prefix, v4, v6) {
                (IpNet::V4(_), Some(IpAddr::V4(hop)), _) => a.next_hop = Some(hop),
                (IpNet::V6(_), _, Some(IpAddr::V6(hop))) => {
                    a.mp_next_hop = Some(Ipv6NextHop {
                        global: hop,
                        link_local: None,
                    })
                }
                _ => return None,
            }
            Some((*prefix, a))
        })
        .collect()
}

/// What turns `given` into `want`: prefixes to withdraw, routes to (re)advertise.
pub fn diff(
    given: &BTreeMap<IpNet, Attributes>,
    want: &BTreeMap<IpNet, Attributes>,
) -> (Vec<IpNet>, Vec<(IpNet, Attributes)>) {
    let withdraw = given
        .keys()
        .filter(|p| !want.contains_key(p))
        .copied()
        .collect();
    let announce = want
        .iter()
        .filter(|(p, a)| given.get(p) != Some(a))
        .map(|(p, a)| (*p, a.clone()))
        .collect();
    (withdraw, announce)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table(prefixes: &[&str]) -> BTreeMap<IpNet, Attributes> {
        prefixes
            .iter()
            .map(|p| (p.parse().unwrap(), Attributes::default()))
            .collect()
    }

    #[test]
    fn next_hop_self_per_family() {
        let node = [ip("10.0.0.11"), ip("fd00::11")];
        let routes = table(&["192.0.2.1/32", "2001:db8::1/128"]);
        // An IPv4 connection: its local address for IPv4, the Node's for IPv6.
        let ours = OurAddresses {
            local: Some(ip("10.0.0.99")),
            source: None,
            node: &node,
        };
        let out = with_next_hops(&routes, ours);
        let v4: IpNet = "192.0.2.1/32".parse().unwrap();
        let v6: IpNet = "2001:db8::1/128".parse().unwrap();
        assert_eq!(out[&v4].next_hop, Some("10.0.0.99".parse().unwrap()));
        assert_eq!(
            out[&v6].mp_next_hop.as_ref().map(|h| h.global),
            Some("fd00::11".parse().unwrap())
        );
        // No connection yet: the source address, else the Node's.
        let ours = OurAddresses {
            local: None,
            source: Some(ip("10.0.0.50")),
            node: &node,
        };
        assert_eq!(
            with_next_hops(&routes, ours)[&v4].next_hop,
            Some("10.0.0.50".parse().unwrap())
        );
        // No IPv6 address at all: IPv6 routes wait.
        let ours = OurAddresses {
            local: Some(ip("10.0.0.99")),
            source: None,
            node: &[],
        };
        assert_eq!(
            with_next_hops(&routes, ours).keys().collect::<Vec<_>>(),
            [&v4]
        );
    }

    #[test]
    fn diff_withdraws_the_gone_and_advertises_the_changed() {
        let given = table(&["192.0.2.1/32", "192.0.2.2/32"]);
        let mut want = table(&["192.0.2.2/32", "192.0.2.3/32"]);
        let (withdraw, announce) = diff(&given, &want);
        assert_eq!(withdraw, ["192.0.2.1/32".parse::<IpNet>().unwrap()]);
        assert_eq!(announce.len(), 1);
        // A changed attribute re-advertises.
        for a in want.values_mut() {
            a.communities = vec![1];
        }
        assert_eq!(diff(&given, &want).1.len(), 2);
        assert_eq!(diff(&want, &want), (vec![], vec![]));
    }
}
