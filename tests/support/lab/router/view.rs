//! The structured view of a BGP daemon, the same whichever daemon it is.

use ipnet::IpNet;
use std::net::IpAddr;

/// A standard BGP community (RFC 1997), `high:low`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Community(pub u16, pub u16);

impl Community {
    /// From the 32-bit wire value.
    pub fn from_u32(v: u32) -> Community {
        Community((v >> 16) as u16, v as u16)
    }

    /// Parse `a:b`, or the well-known names FRR prints.
    pub fn parse(s: &str) -> Option<Community> {
        match s {
            "no-export" => return Some(Community::from_u32(0xFFFF_FF01)),
            "no-advertise" => return Some(Community::from_u32(0xFFFF_FF02)),
            "local-AS" | "no-export-subconfed" => return Some(Community::from_u32(0xFFFF_FF03)),
            "blackhole" => return Some(Community::from_u32(0xFFFF_029A)),
            _ => {}
        }
        let (a, b) = s.split_once(':')?;
        Some(Community(a.trim().parse().ok()?, b.trim().parse().ok()?))
    }
}

impl std::fmt::Display for Community {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// A large BGP community (RFC 8092), `global:local1:local2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity(pub u32, pub u32, pub u32);

impl LargeCommunity {
    /// Parse `a:b:c` (also with spaces, or commas as BIRD prints them).
    pub fn parse(s: &str) -> Option<LargeCommunity> {
        let parts: Vec<u32> = s
            .split([':', ','])
            .map(|p| p.trim().parse().ok())
            .collect::<Option<_>>()?;
        match parts[..] {
            [a, b, c] => Some(LargeCommunity(a, b, c)),
            _ => None,
        }
    }
}

impl std::fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.0, self.1, self.2)
    }
}

/// A BGP session as the daemon sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Its name (`node1_v4`); for daemons without names, derived from the neighbor.
    pub name: String,
    /// The neighbor's address.
    pub peer: IpAddr,
    /// The neighbor's ASN as configured.
    pub peer_asn: Option<u32>,
    /// The daemon's word for the state (`Established`, `Active`, `Connect`, `Idle`...).
    pub state: String,
    /// Whether the session is established.
    pub established: bool,
}

/// One received path for a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePath {
    /// The prefix.
    pub prefix: IpNet,
    /// The neighbor it came from.
    pub peer: Option<IpAddr>,
    /// The BGP next hop (the global one for IPv6).
    pub next_hop: Option<IpAddr>,
    /// AS path, nearest AS first.
    pub as_path: Vec<u32>,
    /// Standard communities.
    pub communities: Vec<Community>,
    /// Large communities.
    pub large_communities: Vec<LargeCommunity>,
    /// LOCAL_PREF, when the daemon reports one.
    pub local_pref: Option<u32>,
    /// Whether the daemon selected it as best.
    pub best: bool,
}

impl RoutePath {
    pub(crate) fn new(prefix: IpNet) -> RoutePath {
        RoutePath {
            prefix,
            peer: None,
            next_hop: None,
            as_path: Vec::new(),
            communities: Vec::new(),
            large_communities: Vec::new(),
            local_pref: None,
            best: false,
        }
    }
}

/// The neighbor name the lab gives a session: `<host>_v4` / `<host>_v6` from the config, or
/// the address when the config does not know it.
pub(crate) fn session_name(neighbors: &[super::Neighbor], peer: IpAddr) -> String {
    neighbors
        .iter()
        .find(|n| n.addr == peer)
        .map(|n| n.name.clone())
        .unwrap_or_else(|| peer.to_string())
}
