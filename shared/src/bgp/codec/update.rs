//! The UPDATE message (RFC 4271 §4.3): withdrawn IPv4 prefixes, path attributes, announced
//! IPv4 prefixes; IPv6 unicast travels in MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760,
//! next hops per RFC 2545). This file holds the types and the encoder; `update/decode.rs`
//! the decoder.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::open::AS_TRANS;
use super::wire::put_prefix;
use super::{Afi, CodecOptions, Safi};

mod decode;

pub(super) use decode::decode_body;

/// An UPDATE message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Update {
    /// Withdrawn prefixes: IPv4 ones in the Withdrawn Routes field, IPv6 ones in
    /// MP_UNREACH_NLRI. Decoding lists the IPv4 ones first.
    pub withdrawn: Vec<IpNet>,
    pub attributes: Attributes,
    /// Announced prefixes: IPv4 ones in the NLRI field (next hop: `attributes.next_hop`),
    /// IPv6 ones in MP_REACH_NLRI (next hop: `attributes.mp_next_hop`). Decoding lists the
    /// IPv4 ones first.
    pub nlri: Vec<IpNet>,
    /// An MP_UNREACH_NLRI that withdraws nothing: the End-of-RIB marker of a family other
    /// than IPv4 unicast (RFC 4724). Encoding ignores it when `withdrawn` holds IPv6
    /// prefixes (their MP_UNREACH_NLRI takes its place).
    pub empty_mp_unreach: Option<(Afi, Safi)>,
}

/// Path attributes. Encoding writes them in ascending type code order, skipping unset
/// ones; an empty `Vec` is the same as an absent attribute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// ORIGIN (1), well-known mandatory.
    pub origin: Option<Origin>,
    /// AS_PATH (2), well-known mandatory; `Some(vec![])` is the empty path of a route
    /// originated inside the AS. Segments are written 4 octets per AS when the session
    /// negotiated 4-octet AS numbers, else 2 ([`AS_TRANS`] for those that do not fit).
    pub as_path: Option<Vec<AsSegment>>,
    /// NEXT_HOP (3): the next hop of the IPv4 prefixes in the NLRI field.
    pub next_hop: Option<Ipv4Addr>,
    /// The next hop inside MP_REACH_NLRI: the next hop of the IPv6 prefixes.
    pub mp_next_hop: Option<Ipv6NextHop>,
    /// MULTI_EXIT_DISC (4).
    pub med: Option<u32>,
    /// LOCAL_PREF (5), for iBGP peers.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE (6).
    pub atomic_aggregate: bool,
    /// COMMUNITIES (8, RFC 1997), each `asn << 16 | value`.
    pub communities: Vec<u32>,
    /// LARGE_COMMUNITY (32, RFC 8092): (global administrator, local data 1, local data 2).
    pub large_communities: Vec<(u32, u32, u32)>,
    /// Attributes kept as bytes: optional ones this codec does not interpret (AGGREGATOR,
    /// AS4_PATH, extended communities, ...), and MP_REACH_NLRI / MP_UNREACH_NLRI of
    /// families other than IPv6 unicast. A speaker passes on only the transitive ones
    /// ([`RawAttribute::is_transitive`]), with the Partial bit set.
    pub other: Vec<RawAttribute>,
}

/// ORIGIN values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp,
    Egp,
    Incomplete,
}

/// One AS_PATH segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AsSegment {
    pub kind: AsSegmentKind,
    /// Never empty on the wire: encoding skips empty segments and splits ones longer than
    /// 255 ASes.
    pub asns: Vec<u32>,
}

/// AS_PATH segment types (RFC 4271, RFC 5065 for confederations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AsSegmentKind {
    Set,
    Sequence,
    ConfedSequence,
    ConfedSet,
}

/// The next hop of IPv6 routes (RFC 2545): a global address, and a link-local one when the
/// peer shares the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6NextHop {
    pub global: Ipv6Addr,
    pub link_local: Option<Ipv6Addr>,
}

/// A path attribute kept as bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    /// Optional (0x80), Transitive (0x40) and Partial (0x20) bits; encoding recomputes the
    /// Extended Length bit and clears the unused low bits.
    pub flags: u8,
    pub code: u8,
    pub value: Vec<u8>,
}

/// Attribute type codes.
pub(super) mod attr {
    pub(crate) const ORIGIN: u8 = 1;
    pub(crate) const AS_PATH: u8 = 2;
    pub(crate) const NEXT_HOP: u8 = 3;
    pub(crate) const MED: u8 = 4;
    pub(crate) const LOCAL_PREF: u8 = 5;
    pub(crate) const ATOMIC_AGGREGATE: u8 = 6;
    pub(crate) const COMMUNITIES: u8 = 8;
    pub(crate) const MP_REACH_NLRI: u8 = 14;
    pub(crate) const MP_UNREACH_NLRI: u8 = 15;
    pub(crate) const LARGE_COMMUNITY: u8 = 32;
}

/// Attribute flag bits.
pub(super) mod flag {
    pub(crate) const OPTIONAL: u8 = 0x80;
    pub(crate) const TRANSITIVE: u8 = 0x40;
    pub(crate) const PARTIAL: u8 = 0x20;
    pub(crate) const EXTENDED_LENGTH: u8 = 0x10;
    pub(crate) const WELL_KNOWN: u8 = TRANSITIVE;
    pub(crate) const OPTIONAL_TRANSITIVE: u8 = OPTIONAL | TRANSITIVE;
}

impl Update {
    /// The End-of-RIB marker of a family (RFC 4724): an empty UPDATE for IPv4 unicast, an
    /// UPDATE holding only an empty MP_UNREACH_NLRI for any other family.
    pub fn end_of_rib(afi: Afi, safi: Safi) -> Update {
        if (afi, safi) == (Afi::IPV4, Safi::UNICAST) {
            Update::default()
        } else {
            Update {
                empty_mp_unreach: Some((afi, safi)),
                ..Update::default()
            }
        }
    }

    /// The family this UPDATE is the End-of-RIB marker of, if it is one.
    pub fn end_of_rib_family(&self) -> Option<(Afi, Safi)> {
        if !self.withdrawn.is_empty()
            || !self.nlri.is_empty()
            || self.attributes != Attributes::default()
        {
            return None;
        }
        Some(self.empty_mp_unreach.unwrap_or((Afi::IPV4, Safi::UNICAST)))
    }

    pub fn is_end_of_rib(&self) -> bool {
        self.end_of_rib_family().is_some()
    }

    pub(super) fn encode_body(&self, opts: &CodecOptions, out: &mut Vec<u8>) {
        let (v4_withdrawn, v6_withdrawn) = split_families(&self.withdrawn);
        let (v4_nlri, v6_nlri) = split_families(&self.nlri);

        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        v4_withdrawn.iter().for_each(|p| put_prefix(out, p));
        let len = out.len() - at - 2;
        super::wire::patch_len16(out, at, len);

        let mp_reach = (self.attributes.mp_next_hop.is_some() || !v6_nlri.is_empty())
            .then(|| mp_reach_value(self.attributes.mp_next_hop.as_ref(), &v6_nlri));
        let mp_unreach = if !v6_withdrawn.is_empty() {
            Some(mp_unreach_value((Afi::IPV6, Safi::UNICAST), &v6_withdrawn))
        } else {
            self.empty_mp_unreach.map(|f| mp_unreach_value(f, &[]))
        };
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        self.attributes.encode(opts, mp_reach, mp_unreach, out);
        let len = out.len() - at - 2;
        super::wire::patch_len16(out, at, len);

        v4_nlri.iter().for_each(|p| put_prefix(out, p));
    }
}

fn split_families(prefixes: &[IpNet]) -> (Vec<IpNet>, Vec<IpNet>) {
    prefixes.iter().partition(|p| matches!(p, IpNet::V4(_)))
}

/// The value of an MP_REACH_NLRI for IPv6 unicast. Without a next hop (a caller error) it
/// carries `::`, which the peer will reject.
pub(super) fn mp_reach_value(next_hop: Option<&Ipv6NextHop>, prefixes: &[IpNet]) -> Vec<u8> {
    let mut v = Vec::with_capacity(40);
    v.extend_from_slice(&Afi::IPV6.0.to_be_bytes());
    v.push(Safi::UNICAST.0);
    let nh = next_hop.copied().unwrap_or(Ipv6NextHop {
        global: Ipv6Addr::UNSPECIFIED,
        link_local: None,
    });
    match nh.link_local {
        Some(ll) => {
            v.push(32);
            v.extend_from_slice(&nh.global.octets());
            v.extend_from_slice(&ll.octets());
        }
        None => {
            v.push(16);
            v.extend_from_slice(&nh.global.octets());
        }
    }
    v.push(0); // reserved
    prefixes.iter().for_each(|p| put_prefix(&mut v, p));
    v
}

/// The value of an MP_UNREACH_NLRI.
pub(super) fn mp_unreach_value((afi, safi): (Afi, Safi), prefixes: &[IpNet]) -> Vec<u8> {
    let mut v = Vec::with_capacity(3);
    v.extend_from_slice(&afi.0.to_be_bytes());
    v.push(safi.0);
    prefixes.iter().for_each(|p| put_prefix(&mut v, p));
    v
}

/// Appends one attribute, with the Extended Length bit set exactly when the value needs it.
pub(super) fn put_attribute(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    let flags = flags & (flag::OPTIONAL | flag::TRANSITIVE | flag::PARTIAL);
    if let Ok(len) = u8::try_from(value.len()) {
        out.extend_from_slice(&[flags, code, len]);
    } else {
        out.extend_from_slice(&[flags | flag::EXTENDED_LENGTH, code]);
        super::wire::put_len16(out, value.len());
    }
    out.extend_from_slice(value);
}

impl Attributes {
    /// Appends the attributes in ascending type code order, the MP attributes given as
    /// values.
    fn encode(
        &self,
        opts: &CodecOptions,
        mp_reach: Option<Vec<u8>>,
        mp_unreach: Option<Vec<u8>>,
        out: &mut Vec<u8>,
    ) {
        let mut list: Vec<(u8, u8, Vec<u8>)> = Vec::with_capacity(8 + self.other.len());
        if let Some(origin) = self.origin {
            let v = match origin {
                Origin::Igp => 0,
                Origin::Egp => 1,
                Origin::Incomplete => 2,
            };
            list.push((flag::WELL_KNOWN, attr::ORIGIN, vec![v]));
        }
        if let Some(path) = &self.as_path {
            list.push((flag::WELL_KNOWN, attr::AS_PATH, as_path_value(path, opts)));
        }
        if let Some(nh) = self.next_hop {
            list.push((flag::WELL_KNOWN, attr::NEXT_HOP, nh.octets().to_vec()));
        }
        if let Some(med) = self.med {
            list.push((flag::OPTIONAL, attr::MED, med.to_be_bytes().to_vec()));
        }
        if let Some(pref) = self.local_pref {
            list.push((
                flag::WELL_KNOWN,
                attr::LOCAL_PREF,
                pref.to_be_bytes().to_vec(),
            ));
        }
        if self.atomic_aggregate {
            list.push((flag::WELL_KNOWN, attr::ATOMIC_AGGREGATE, Vec::new()));
        }
        if !self.communities.is_empty() {
            let v = self
                .communities
                .iter()
                .flat_map(|c| c.to_be_bytes())
                .collect();
            list.push((flag::OPTIONAL_TRANSITIVE, attr::COMMUNITIES, v));
        }
        if let Some(v) = mp_reach {
            list.push((flag::OPTIONAL, attr::MP_REACH_NLRI, v));
        }
        if let Some(v) = mp_unreach {
            list.push((flag::OPTIONAL, attr::MP_UNREACH_NLRI, v));
        }
        if !self.large_communities.is_empty() {
            let v = self
                .large_communities
                .iter()
                .flat_map(|(g, l1, l2)| [g.to_be_bytes(), l1.to_be_bytes(), l2.to_be_bytes()])
                .flatten()
                .collect();
            list.push((flag::OPTIONAL_TRANSITIVE, attr::LARGE_COMMUNITY, v));
        }
        for raw in &self.other {
            list.push((raw.flags, raw.code, raw.value.clone()));
        }
        list.sort_by_key(|(_, code, _)| *code);
        for (flags, code, value) in list {
            put_attribute(out, flags, code, &value);
        }
    }
}

/// AS_PATH segments, 4 or 2 octets per AS.
fn as_path_value(path: &[AsSegment], opts: &CodecOptions) -> Vec<u8> {
    let mut v = Vec::new();
    for segment in path {
        let kind = match segment.kind {
            AsSegmentKind::Set => 1,
            AsSegmentKind::Sequence => 2,
            AsSegmentKind::ConfedSequence => 3,
            AsSegmentKind::ConfedSet => 4,
        };
        for chunk in segment.asns.chunks(255) {
            v.push(kind);
            v.push(u8::try_from(chunk.len()).unwrap_or(u8::MAX));
            for asn in chunk {
                if opts.four_octet_as {
                    v.extend_from_slice(&asn.to_be_bytes());
                } else {
                    let as2 = u16::try_from(*asn).unwrap_or(AS_TRANS);
                    v.extend_from_slice(&as2.to_be_bytes());
                }
            }
        }
    }
    v
}

impl RawAttribute {
    pub fn is_optional(&self) -> bool {
        self.flags & flag::OPTIONAL != 0
    }

    pub fn is_transitive(&self) -> bool {
        self.flags & flag::TRANSITIVE != 0
    }

    pub fn is_partial(&self) -> bool {
        self.flags & flag::PARTIAL != 0
    }
}
