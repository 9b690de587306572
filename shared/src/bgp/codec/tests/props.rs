//! Properties: hostile bytes never panic, and every valid message survives encode→decode.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

use super::super::{
    Afi, AsSegment, AsSegmentKind, Attributes, Capability, CodecOptions, Ipv6NextHop, Message,
    Notification, Open, Origin, RawAttribute, Safi, Update, decode, encode,
};
use super::{FOUR, TWO, assert_round_trip, frame};

pub(super) fn opts() -> impl Strategy<Value = CodecOptions> {
    any::<bool>().prop_map(|four_octet_as| CodecOptions { four_octet_as })
}

pub(super) fn v4_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u32>(), 0u8..=32)
        .prop_map(|(a, len)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc()))
}

pub(super) fn v6_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, len)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc()))
}

/// IPv4 prefixes, then IPv6 ones: the order decoding reports them in.
fn prefixes(max: usize) -> impl Strategy<Value = Vec<IpNet>> {
    (
        prop::collection::vec(v4_prefix(), 0..max),
        prop::collection::vec(v6_prefix(), 0..max),
    )
        .prop_map(|(mut v4, v6)| {
            v4.extend(v6);
            v4
        })
}

/// A unicast host address, as NEXT_HOP must be when IPv4 routes use it.
pub(super) fn host_v4() -> impl Strategy<Value = Ipv4Addr> {
    (1u8..224, any::<[u8; 3]>())
        .prop_filter("not loopback", |(a, _)| *a != 127)
        .prop_map(|(a, [b, c, d])| Ipv4Addr::new(a, b, c, d))
}

pub(super) fn v6_next_hop() -> impl Strategy<Value = Ipv6NextHop> {
    (any::<u128>(), proptest::option::of(any::<u64>())).prop_map(|(g, ll)| Ipv6NextHop {
        global: Ipv6Addr::from(g),
        link_local: ll.map(|iid| Ipv6Addr::from(0xfe80_u128 << 112 | u128::from(iid))),
    })
}

fn as_path(two_octet: bool) -> impl Strategy<Value = Vec<AsSegment>> {
    let max = if two_octet { 65535 } else { u32::MAX };
    let kind = prop_oneof![
        Just(AsSegmentKind::Sequence),
        Just(AsSegmentKind::Set),
        Just(AsSegmentKind::ConfedSequence),
        Just(AsSegmentKind::ConfedSet),
    ];
    prop::collection::vec(
        (kind, prop::collection::vec(1..=max, 1..8))
            .prop_map(|(kind, asns)| AsSegment { kind, asns }),
        0..4,
    )
}

/// Codes this codec interprets (or must not see as raw).
const KNOWN: [u8; 10] = [1, 2, 3, 4, 5, 6, 8, 14, 15, 32];

fn raw_attributes() -> impl Strategy<Value = Vec<RawAttribute>> {
    prop::collection::btree_map(
        any::<u8>().prop_filter("not interpreted", |c| !KNOWN.contains(c)),
        (
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..300),
        ),
        0..3,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(code, (transitive, partial, value))| RawAttribute {
                flags: 0x80 | if transitive { 0x40 } else { 0 } | if partial { 0x20 } else { 0 },
                code,
                value,
            })
            .collect()
    })
}

/// Path attributes for routes: ORIGIN and AS_PATH always, the rest at random.
pub(super) fn route_attributes(two_octet: bool) -> impl Strategy<Value = Attributes> {
    (
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ],
        as_path(two_octet),
        proptest::option::of(host_v4()),
        proptest::option::of(v6_next_hop()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
        prop::collection::vec(any::<u32>(), 0..6),
        prop::collection::vec(any::<(u32, u32, u32)>(), 0..4),
        raw_attributes(),
    )
        .prop_map(
            |(
                origin,
                path,
                next_hop,
                mp_next_hop,
                med,
                local_pref,
                atomic,
                communities,
                large,
                other,
            )| {
                Attributes {
                    origin: Some(origin),
                    as_path: Some(path),
                    next_hop,
                    mp_next_hop,
                    med,
                    local_pref,
                    atomic_aggregate: atomic,
                    communities,
                    large_communities: large,
                    other,
                }
            },
        )
}

/// A valid UPDATE: whatever announces routes has ORIGIN, AS_PATH and the family's next hop.
fn update(two_octet: bool) -> impl Strategy<Value = Update> {
    (
        prefixes(6),
        prefixes(6),
        route_attributes(two_octet),
        proptest::option::of((any::<u16>(), any::<u8>())),
    )
        .prop_map(|(withdrawn, nlri, mut attributes, eor)| {
            let has_v4 = nlri.iter().any(|p| matches!(p, IpNet::V4(_)));
            let has_v6 = nlri.iter().any(|p| matches!(p, IpNet::V6(_)));
            if has_v4 && attributes.next_hop.is_none() {
                attributes.next_hop = Some(Ipv4Addr::new(192, 0, 2, 1));
            }
            if has_v6 && attributes.mp_next_hop.is_none() {
                attributes.mp_next_hop = Some(Ipv6NextHop {
                    global: "2001:db8::1".parse().unwrap(),
                    link_local: None,
                });
            }
            let withdraws_v6 = withdrawn.iter().any(|p| matches!(p, IpNet::V6(_)));
            Update {
                withdrawn,
                attributes,
                nlri,
                empty_mp_unreach: eor
                    .filter(|_| !withdraws_v6)
                    .map(|(afi, safi)| (Afi(afi), Safi(safi))),
            }
        })
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Capability::MultiProtocol {
            afi: Afi(a),
            safi: Safi(s)
        }),
        Just(Capability::RouteRefresh),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            prop::collection::vec((any::<u16>(), any::<u8>(), any::<bool>()), 0..4)
        )
            .prop_map(|(r, n, t, f)| Capability::GracefulRestart {
                restart_state: r,
                notification: n,
                restart_time: t,
                families: f
                    .into_iter()
                    .map(|(a, s, fw)| (Afi(a), Safi(s), fw))
                    .collect(),
            }),
        (
            any::<u8>().prop_filter("not interpreted", |c| ![1, 2, 64, 65].contains(c)),
            prop::collection::vec(any::<u8>(), 0..80)
        )
            .prop_map(|(code, data)| Capability::Unknown { code, data }),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    (
        1..=u32::MAX,
        prop_oneof![Just(0u16), 3..=u16::MAX],
        1..=u32::MAX,
        prop::collection::vec(capability(), 0..8),
        any::<bool>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(my_as, hold_time, id, mut capabilities, four, at)| {
            // The 4-octet capability carries my_as; it must be there when my_as needs it.
            if four || my_as > 65535 {
                let at = at.index(capabilities.len() + 1);
                capabilities.insert(at, Capability::FourOctetAs(my_as));
            }
            Open {
                version: 4,
                my_as,
                hold_time,
                router_id: Ipv4Addr::from(id),
                capabilities,
            }
        })
}

pub(super) fn message(two_octet: bool) -> impl Strategy<Value = Message> {
    prop_oneof![
        open().prop_map(Message::Open),
        update(two_octet).prop_map(Message::Update),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..100)
        )
            .prop_map(|(c, s, d)| Message::Notification(Notification::new(c, s, d))),
        Just(Message::Keepalive),
        (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(a, s, t)| Message::RouteRefresh {
            afi: Afi(a),
            safi: Safi(s),
            subtype: t,
        }),
    ]
}

/// Decodes whatever `bytes` hold in a framing loop; every message that decodes must come
/// back the same from its own encoding.
fn exercise(bytes: &[u8], opts: &CodecOptions) {
    let mut rest = bytes;
    while let Ok(Some((m, consumed))) = decode(rest, opts) {
        assert!((19..=4096).contains(&consumed));
        assert_round_trip(&m, opts);
        rest = &rest[consumed..];
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), opts in opts()) {
        exercise(&bytes, &opts);
    }

    /// Random bodies behind a valid header, so the body decoders see the bytes.
    #[test]
    fn arbitrary_bodies_never_panic(
        message_type in 1u8..=5,
        body in prop::collection::vec(any::<u8>(), 0..400),
        opts in opts(),
    ) {
        exercise(&frame(message_type, &body), &opts);
    }

    /// UPDATEs whose attribute list is made of plausible attribute headers with random
    /// flags, codes and values: the decoder's attribute paths, not just its framing.
    #[test]
    fn arbitrary_attributes_never_panic(
        attributes in prop::collection::vec(
            (any::<u8>(), prop_oneof![1u8..=16, Just(32), any::<u8>()], prop::collection::vec(any::<u8>(), 0..40)),
            0..6,
        ),
        nlri in prop::collection::vec(any::<u8>(), 0..12),
        opts in opts(),
    ) {
        let mut list = Vec::new();
        for (flags, code, value) in attributes {
            list.extend_from_slice(&[flags & !0x10, code, u8::try_from(value.len()).unwrap()]);
            list.extend(value);
        }
        exercise(&frame(2, &super::update_body(&list, &nlri)), &opts);
    }

    /// Real messages with a few bytes changed after the header.
    #[test]
    fn mutated_captures_never_panic(
        which in 0usize..CAPTURED.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        opts in opts(),
    ) {
        let mut m = super::msg(CAPTURED[which]);
        for (at, byte) in edits {
            let i = 19 + at.index(m.len() - 19);
            m[i] = byte;
        }
        exercise(&m, &opts);
    }

    #[test]
    fn valid_messages_round_trip_4_octet(m in message(false)) {
        let bytes = encode(&m, &FOUR);
        prop_assume!(bytes.len() <= 4096);
        assert_round_trip(&m, &FOUR);
    }

    #[test]
    fn valid_messages_round_trip_2_octet(m in message(true)) {
        let bytes = encode(&m, &TWO);
        prop_assume!(bytes.len() <= 4096);
        assert_round_trip(&m, &TWO);
    }
}

/// A few captured messages (see `vectors.rs`), for mutation.
pub(super) const CAPTURED: [&str; 5] = [
    "0039 01 04 5ba0 00f0 c0000201 1c 02 1a 01 04 0001 00 01 02 00 40 06 0078 0001 01 00 41 04 fa56ea01 46 00 47 00",
    "005a 02 0000 0035 40010100 400206 0201 fa56ea01 400304 c0000201 800404 00000032 c00808 fde80064 ffffff01 c0200c fa56ea01 00000001 00000002 18c63364 19cb007180 1ac0000240",
    "0087 02 0000 0070 900e003d 0002 01 20 20010db8000000000000000000000001 fe80000000000000c86c60fffe009284 00 30 20010db80100 80 20010db8020000000000000000000010 40010100 400206 0201 fa56ea01 c00804 fde80064 c02018 fa56ea01 00000001 00000002 fa56ea01 00000003 00000004",
    "0036 02 0000 001f 900f001b 0002 01 30 20010db80100 80 20010db8020000000000000000000010",
    "0064 01 04 5ba0 00b4 c0000201 47 0206 0104 00010001 0202 8000 0202 0200 0202 4600 0206 4104 fa56ea03 0202 0600 0206 4504 00010101 0208 4906 04 66727241 00 0208 4006 c078 00010100 0209 4707 0001 01 80 000000",
];

#[test]
fn captured_samples_are_valid() {
    for c in CAPTURED {
        super::decode_one(&super::msg(c), &FOUR);
    }
}
