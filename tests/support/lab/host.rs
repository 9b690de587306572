//! Hosts: what each network namespace of a lab is for, and its addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a host is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The LAN switch: holds the bridges `br-lan` and `br-ext`, no addresses.
    Switch,
    /// Runs the controller; has only a loopback.
    Control,
    /// The router between the LAN and the external network; runs the BGP daemon.
    Router,
    /// A Kubernetes node (1-based index).
    Node(u8),
    /// A client on the LAN (1-based index).
    LanClient(u8),
    /// A client behind the router (1-based index).
    ExternalClient(u8),
    /// A pod on node `node`, with its `app` label.
    Pod {
        /// 1-based node index.
        node: u8,
        /// The `app` label.
        app: String,
    },
}

/// One host of a lab: a network namespace.
#[derive(Clone, Debug)]
pub struct Host {
    /// Short name used in the API and in logs: `router`, `node1`, `client1`, `ext1`, pod names.
    pub name: String,
    /// The network namespace's full name (`<prefix>-<name>`), for `ip netns exec`.
    pub netns: String,
    /// What it is.
    pub role: Role,
    /// Its main IPv4 address (the LAN address for the router).
    pub ipv4: Option<Ipv4Addr>,
    /// Its main IPv6 address, in a dual-stack lab.
    pub ipv6: Option<Ipv6Addr>,
}

impl Host {
    /// Its address of one family: `v6 == false` for IPv4.
    pub fn addr(&self, v6: bool) -> Option<IpAddr> {
        if v6 {
            self.ipv6.map(IpAddr::V6)
        } else {
            self.ipv4.map(IpAddr::V4)
        }
    }

    /// Its addresses, IPv4 first.
    pub fn addrs(&self) -> Vec<IpAddr> {
        [self.addr(false), self.addr(true)]
            .into_iter()
            .flatten()
            .collect()
    }

    /// The node index if this is a node.
    pub fn node_index(&self) -> Option<u8> {
        match self.role {
            Role::Node(i) => Some(i),
            _ => None,
        }
    }
}
