//! The lab's address plan. Deterministic: the same host always gets the same addresses, and
//! the IPv6 address of a host repeats the last IPv4 octet as hex digits (node1 is 10.100.0.11
//! and fd00:100::11), so the two are easy to tell apart and to pair up.
//!
//! | what | IPv4 | IPv6 |
//! |---|---|---|
//! | LAN (bridge `br-lan` in the `lan` switch namespace) | 10.100.0.0/24 | fd00:100::/64 |
//! | router, LAN side | 10.100.0.1 | fd00:100::1 |
//! | node *i* (1-based) | 10.100.0.(10+i) | fd00:100::(10+i) |
//! | LAN client *j* | 10.100.0.(100+j) | fd00:100::(100+j) |
//! | external network (bridge `br-ext`, behind the router) | 10.200.0.0/24 | fd00:200::/64 |
//! | router, external side | 10.200.0.1 | fd00:200::1 |
//! | external client *j* | 10.200.0.(100+j) | fd00:200::(100+j) |
//! | pod CIDR of node *i* (bridge `br-pod` in the node) | 10.244.i.0/24 | fd00:244:i::/64 |
//! | node *i*'s pod gateway | 10.244.i.1 | fd00:244:i::1 |
//! | pod *k* of node *i* | 10.244.i.(10+k) | fd00:244:i::(10+k) |
//! | ClusterIP range (reserved for the forwarding layer) | 10.96.0.0/16 | fd00:96::/112 |
//! | layer-2 LoadBalancer pool (on the LAN) | 10.100.0.200-10.100.0.250 | fd00:100::200-fd00:100::250 |
//! | BGP LoadBalancer pool (off the LAN, routed) | 10.250.0.0/24 | fd00:250::/120 |
//!
//! BGP: the router is AS 64500 and the nodes AS 64512 (eBGP) by default; both are settable.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The LAN's IPv4 prefix length.
pub const LAN_V4: &str = "10.100.0.0/24";
/// The LAN's IPv6 prefix.
pub const LAN_V6: &str = "fd00:100::/64";
/// The external network behind the router.
pub const EXT_V4: &str = "10.200.0.0/24";
/// The external network behind the router, IPv6.
pub const EXT_V6: &str = "fd00:200::/64";
/// The ClusterIP range (IPv4).
pub const CLUSTER_IP_V4: &str = "10.96.0.0/16";
/// The ClusterIP range (IPv6).
pub const CLUSTER_IP_V6: &str = "fd00:96::/112";
/// The layer-2 pool, on the LAN.
pub const L2_POOL_V4: &str = "10.100.0.200-10.100.0.250";
/// The layer-2 pool, IPv6.
pub const L2_POOL_V6: &str = "fd00:100::200-fd00:100::250";
/// The BGP pool, off the LAN.
pub const BGP_POOL_V4: &str = "10.250.0.0/24";
/// The BGP pool, IPv6.
pub const BGP_POOL_V6: &str = "fd00:250::/120";
/// The router's default ASN.
pub const ROUTER_ASN: u32 = 64500;
/// The nodes' default ASN.
pub const NODE_ASN: u32 = 64512;

/// Ports of the pods' echo servers.
pub const ECHO_TCP: u16 = 7000;
/// UDP echo port.
pub const ECHO_UDP: u16 = 7000;
/// HTTP echo port.
pub const ECHO_HTTP: u16 = 8080;

/// Turns a decimal number 0..=999 into the IPv6 group with the same digits (11 -> 0x11).
fn hexlike(n: u16) -> u16 {
    u16::from_str_radix(&n.to_string(), 16).expect("decimal digits are hex digits")
}

/// The router's LAN address.
pub fn router_lan() -> (Ipv4Addr, Ipv6Addr) {
    (
        Ipv4Addr::new(10, 100, 0, 1),
        Ipv6Addr::new(0xfd00, 0x100, 0, 0, 0, 0, 0, 1),
    )
}

/// The router's address on the external network.
pub fn router_ext() -> (Ipv4Addr, Ipv6Addr) {
    (
        Ipv4Addr::new(10, 200, 0, 1),
        Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 1),
    )
}

/// Node `i`'s LAN address (1-based).
pub fn node(i: u8) -> (Ipv4Addr, Ipv6Addr) {
    let n = 10 + u16::from(i);
    (
        Ipv4Addr::new(10, 100, 0, n as u8),
        Ipv6Addr::new(0xfd00, 0x100, 0, 0, 0, 0, 0, hexlike(n)),
    )
}

/// LAN client `j`'s address (1-based).
pub fn lan_client(j: u8) -> (Ipv4Addr, Ipv6Addr) {
    let n = 100 + u16::from(j);
    (
        Ipv4Addr::new(10, 100, 0, n as u8),
        Ipv6Addr::new(0xfd00, 0x100, 0, 0, 0, 0, 0, hexlike(n)),
    )
}

/// External client `j`'s address (1-based).
pub fn ext_client(j: u8) -> (Ipv4Addr, Ipv6Addr) {
    let n = 100 + u16::from(j);
    (
        Ipv4Addr::new(10, 200, 0, n as u8),
        Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, hexlike(n)),
    )
}

/// Node `i`'s pod CIDRs, as `(ipv4/24, ipv6/64)` text.
pub fn pod_cidr(i: u8) -> (String, String) {
    (format!("10.244.{i}.0/24"), format!("fd00:244:{i}::/64"))
}

/// Node `i`'s pod gateway (the address of its pod bridge).
pub fn pod_gateway(i: u8) -> (Ipv4Addr, Ipv6Addr) {
    (
        Ipv4Addr::new(10, 244, i, 1),
        Ipv6Addr::new(0xfd00, 0x244, u16::from(i), 0, 0, 0, 0, 1),
    )
}

/// Pod `k` (1-based) of node `i`.
pub fn pod(i: u8, k: u8) -> (Ipv4Addr, Ipv6Addr) {
    let n = 10 + u16::from(k);
    (
        Ipv4Addr::new(10, 244, i, n as u8),
        Ipv6Addr::new(0xfd00, 0x244, u16::from(i), 0, 0, 0, 0, hexlike(n)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_as_documented() {
        assert_eq!(node(1).0.to_string(), "10.100.0.11");
        assert_eq!(node(1).1.to_string(), "fd00:100::11");
        assert_eq!(lan_client(1).1.to_string(), "fd00:100::101");
        assert_eq!(ext_client(2).0.to_string(), "10.200.0.102");
        assert_eq!(pod(3, 2).1.to_string(), "fd00:244:3::12");
        assert_eq!(pod_cidr(2).1, "fd00:244:2::/64");
        assert_eq!(pod_gateway(2).1.to_string(), "fd00:244:2::1");
    }
}
