//! Map elements as nfnetlink batches: the messages `nft -f` sends for `delete element` and
//! `add element`, without `nft` first reading the whole table back (nft 1.0 dumps every chain
//! before any command: 40 of the 47 ms of an endpoint change at 10,000 Services) or parsing
//! text (100,000 elements: most of a second). Pure: this module makes the bytes and reads the
//! replies; the speaker owns the `NETLINK_NETFILTER` socket.
//!
//! ```text
//! BATCH_BEGIN  (res_id NFNL_SUBSYS_NFTABLES)
//! DELSETELEM   table ferrolb, set be-<proto>, the old elements' keys          ACK
//! NEWSETELEM   table ferrolb, set be-<proto>, keys and new real servers      ACK
//! ...          (a replacement: one pair per map; a first program: additions only,
//!              in messages of at most MAX_ELEMENTS_BYTES of elements)
//! BATCH_END    one transaction: all of it or nothing
//! ```
//!
//! The `services` map's elements (a first program's last step) are keyed by
//! `addr . inet_proto . inet_service` (the protocol a byte, the port in network order, each in
//! a 32-bit register) and hold a verdict: goto the virtual server's chain.
//!
//! Element layout, as the map's `typeof <f> daddr . <p> dport . numgen inc mod 2` gives it:
//! every part of a concatenation takes whole 32-bit registers, so the port (network order)
//! is followed by two zero bytes; numgen's counter is a host-order 32-bit integer. The value
//! (`<f> daddr . <p> dport`) is the real server's address and port, the same way.

use super::{Family, Replacement, Slot, TABLE};
use crate::ipvs::model::VsKey;
use crate::netlink::{NLA_F_NESTED, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, messages};
use crate::netlink::{push_attr as attr, push_message};
use std::net::{IpAddr, SocketAddr};

// linux/netfilter/nfnetlink.h, nf_tables.h
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
/// `NFT_GOTO`, a negative verdict code, as the kernel reads it (big-endian).
const NFT_GOTO: i32 = -4;

/// A batch to send, and the sequence numbers the kernel must acknowledge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub acks: Vec<u32>,
}

/// One transaction replacing the elements of `replacements` in `family`'s table; messages
/// numbered from `seq`.
pub fn encode(family: Family, replacements: &[Replacement], seq: u32) -> Batch {
    let mut w = Writer::begin(family, seq);
    for r in replacements {
        let keys = r.slots.iter().map(|(s, _)| element(*s, None));
        w.elements(NFT_MSG_DELSETELEM, &r.map, keys);
        let elements = r.slots.iter().map(|(s, to)| element(*s, Some(*to)));
        w.elements(NFT_MSG_NEWSETELEM, &r.map, elements);
    }
    w.end()
}

/// Transactions adding the elements of `maps` (a first program's backends), each carrying at
/// most about `max_bytes` of elements; messages numbered from `seq`.
pub fn encode_additions(
    family: Family,
    maps: &[Replacement],
    seq: u32,
    max_bytes: usize,
) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut w = Writer::begin(family, seq);
    for r in maps {
        for chunk in r.slots.chunks(max_bytes / ELEMENT_BYTES_HINT + 1) {
            let elements = chunk.iter().map(|(s, to)| element(*s, Some(*to)));
            w.elements(NFT_MSG_NEWSETELEM, &r.map, elements);
            if w.out.bytes.len() >= max_bytes {
                // The end delimiter takes the next number.
                let next = w.seq.wrapping_add(1);
                out.push(w.end());
                w = Writer::begin(family, next);
            }
        }
    }
    if !w.out.acks.is_empty() {
        out.push(w.end());
    }
    out
}

/// One transaction adding `services` to the `services` map: each virtual server's key and a
/// goto to its chain. Messages numbered from `seq`.
pub fn encode_services(family: Family, services: &[(VsKey, String)], seq: u32) -> Batch {
    let mut w = Writer::begin(family, seq);
    w.elements(
        NFT_MSG_NEWSETELEM,
        "services",
        services.iter().map(|(k, chain)| service_element(k, chain)),
    );
    w.end()
}

/// Roughly the bytes of one backend element (IPv4: 44, IPv6: 68): only to cut lists early.
const ELEMENT_BYTES_HINT: usize = 56;

/// The most bytes of elements in one message: the element list is one attribute, whose
/// length is 16 bits.
const MAX_ELEMENTS_BYTES: usize = 60 * 1024;

/// Builds one batch (one transaction).
struct Writer {
    out: Batch,
    seq: u32,
    proto: u8,
}

impl Writer {
    fn begin(family: Family, seq: u32) -> Writer {
        let proto = match family {
            Family::Ip => NFPROTO_IPV4,
            Family::Ip6 => NFPROTO_IPV6,
        };
        let mut w = Writer {
            out: Batch {
                bytes: Vec::new(),
                acks: Vec::new(),
            },
            seq,
            proto,
        };
        let seq = w.next();
        message(&mut w.out.bytes, NFNL_MSG_BATCH_BEGIN, 0, seq, 0, &[]);
        w
    }

    fn next(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// `kind` (add or delete) of `elements` in `set`, in as many messages as their size needs.
    fn elements(&mut self, kind: u16, set: &str, elements: impl Iterator<Item = Vec<u8>>) {
        let mut list = Vec::new();
        for e in elements {
            if !list.is_empty() && list.len() + e.len() > MAX_ELEMENTS_BYTES {
                self.message(kind, set, &list);
                list.clear();
            }
            list.extend(e);
        }
        if !list.is_empty() {
            self.message(kind, set, &list);
        }
    }

    fn message(&mut self, kind: u16, set: &str, list: &[u8]) {
        let mut body = Vec::new();
        attr(&mut body, NFTA_SET_ELEM_LIST_TABLE, &c_string(TABLE));
        attr(&mut body, NFTA_SET_ELEM_LIST_SET, &c_string(set));
        attr(&mut body, NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED, list);
        let flags = match kind {
            NFT_MSG_NEWSETELEM => NLM_F_ACK | NLM_F_CREATE,
            _ => NLM_F_ACK,
        };
        let (seq, proto) = (self.next(), self.proto);
        let kind = (NFNL_SUBSYS_NFTABLES << 8) | kind;
        message(&mut self.out.bytes, kind, flags, seq, proto, &body);
        self.out.acks.push(seq);
    }

    fn end(mut self) -> Batch {
        let seq = self.next();
        message(&mut self.out.bytes, NFNL_MSG_BATCH_END, 0, seq, 0, &[]);
        self.out
    }
}

/// One `NFTA_LIST_ELEM` of the services map: the virtual server's key, goto `chain`.
fn service_element(key: &VsKey, chain: &str) -> Vec<u8> {
    let mut k = address(key.addr);
    k.extend([key.proto.number(), 0, 0, 0]);
    k.extend(port(key.port));
    let mut verdict = Vec::new();
    attr(&mut verdict, NFTA_VERDICT_CODE, &NFT_GOTO.to_be_bytes());
    attr(&mut verdict, NFTA_VERDICT_CHAIN, &c_string(chain));
    let mut value = Vec::new();
    attr(&mut value, NFTA_DATA_VERDICT | NLA_F_NESTED, &verdict);
    let mut elem = Vec::new();
    attr(&mut elem, NFTA_SET_ELEM_KEY | NLA_F_NESTED, &data(&k));
    attr(&mut elem, NFTA_SET_ELEM_DATA | NLA_F_NESTED, &value);
    let mut out = Vec::new();
    attr(&mut out, NFTA_LIST_ELEM | NLA_F_NESTED, &elem);
    out
}

/// One `NFTA_LIST_ELEM`: the slot's key and, when adding, the real server as its value.
fn element(slot: Slot, to: Option<SocketAddr>) -> Vec<u8> {
    let mut key = address(slot.addr);
    key.extend(port(slot.port));
    key.extend(slot.n.to_ne_bytes());
    let mut elem = Vec::new();
    attr(&mut elem, NFTA_SET_ELEM_KEY | NLA_F_NESTED, &data(&key));
    if let Some(to) = to {
        let mut value = address(to.ip());
        value.extend(port(to.port()));
        attr(&mut elem, NFTA_SET_ELEM_DATA | NLA_F_NESTED, &data(&value));
    }
    let mut out = Vec::new();
    attr(&mut out, NFTA_LIST_ELEM | NLA_F_NESTED, &elem);
    out
}

fn address(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// A port in a concatenation: network order, padded to a 32-bit register.
fn port(p: u16) -> [u8; 4] {
    let [a, b] = p.to_be_bytes();
    [a, b, 0, 0]
}

/// `NFTA_DATA_VALUE` holding `bytes`.
fn data(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    attr(&mut out, NFTA_DATA_VALUE, bytes);
    out
}

fn c_string(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Append a request with nfnetlink's header before `body`: family, version 0, and the
/// resource id (the subsystem, for the batch delimiters).
fn message(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, body: &[u8]) {
    let res_id = if kind == NFNL_MSG_BATCH_BEGIN || kind == NFNL_MSG_BATCH_END {
        NFNL_SUBSYS_NFTABLES
    } else {
        0
    };
    let mut payload = vec![family, 0]; // NFNETLINK_V0
    payload.extend(res_id.to_be_bytes());
    payload.extend(body);
    push_message(out, kind, NLM_F_REQUEST | flags, seq, &payload);
}

/// The kernel's answer to one message: 0 (acknowledged) or a negative errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub seq: u32,
    pub error: i32,
}

/// The `NLMSG_ERROR` replies in a datagram from the kernel (acknowledgements are errors with
/// code 0). Anything else is skipped; a malformed message ends the walk.
pub fn replies(buf: &[u8]) -> Vec<Reply> {
    messages(buf)
        .map_while(Result::ok)
        .filter_map(|m| {
            Some(Reply {
                seq: m.seq,
                error: m.error_code()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
