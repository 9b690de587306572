//! An MRT TABLE_DUMP_V2 file (RFC 6396) holding one path per prefix, for
//! `gobgp mrt inject global`: the way to hand GoBGP 10,000 routes over one gRPC stream.
//!
//! Layout: a PEER_INDEX_TABLE with one peer, then one RIB_IPV4_UNICAST record per prefix,
//! each with one entry carrying ORIGIN IGP, an empty AS_PATH (GoBGP prepends its own AS
//! towards an eBGP peer, as for `gobgp global rib add`) and NEXT_HOP (the node's own address,
//! which GoBGP sets towards an eBGP peer anyway).

use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

const TABLE_DUMP_V2: u16 = 13;
const PEER_INDEX_TABLE: u16 = 1;
const RIB_IPV4_UNICAST: u16 = 2;

fn record(out: &mut Vec<u8>, subtype: u16, body: &[u8]) {
    out.extend_from_slice(&0u32.to_be_bytes()); // timestamp: unused by the injector
    out.extend_from_slice(&TABLE_DUMP_V2.to_be_bytes());
    out.extend_from_slice(&subtype.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
}

/// The file's bytes: `prefixes`, each with next hop `next_hop`.
pub fn table_dump(prefixes: &[Ipv4Net], next_hop: Ipv4Addr) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + prefixes.len() * 40);
    // Collector ID, empty view name, one peer: AS4 and IPv4 (type 0x02), ID and address
    // 0.0.0.0, AS 0 (what GoBGP records for routes added through its API).
    let mut peers = Vec::new();
    peers.extend_from_slice(&next_hop.octets());
    peers.extend_from_slice(&0u16.to_be_bytes());
    peers.extend_from_slice(&1u16.to_be_bytes());
    peers.push(0x02);
    peers.extend_from_slice(&[0; 4]);
    peers.extend_from_slice(&[0; 4]);
    peers.extend_from_slice(&0u32.to_be_bytes());
    record(&mut out, PEER_INDEX_TABLE, &peers);

    let mut attrs = vec![0x40, 1, 1, 0]; // ORIGIN IGP (well-known transitive)
    attrs.extend_from_slice(&[0x40, 2, 0]); // AS_PATH, empty
    attrs.extend_from_slice(&[0x40, 3, 4]); // NEXT_HOP
    attrs.extend_from_slice(&next_hop.octets());
    for (seq, prefix) in prefixes.iter().enumerate() {
        let mut body = Vec::with_capacity(32);
        body.extend_from_slice(&(seq as u32).to_be_bytes());
        let len = prefix.prefix_len();
        body.push(len);
        body.extend_from_slice(&prefix.network().octets()[..usize::from(len.div_ceil(8))]);
        body.extend_from_slice(&1u16.to_be_bytes()); // one entry
        body.extend_from_slice(&0u16.to_be_bytes()); // peer index
        body.extend_from_slice(&0u32.to_be_bytes()); // originated time
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        record(&mut out, RIB_IPV4_UNICAST, &body);
    }
    out
}

/// The first `n` /32s of `base` (at most all of them).
pub fn host_routes(base: Ipv4Net, n: usize) -> Vec<Ipv4Net> {
    let first = u32::from(base.network());
    let n = n.min(1 << (32 - base.prefix_len()));
    (0..n as u32)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(first + i), 32).expect("a /32"))
        .collect()
}
