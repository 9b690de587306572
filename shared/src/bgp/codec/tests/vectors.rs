//! Real messages, both directions: each decodes to the value written out here, and where
//! the sender lays fields out as we do (one capabilities parameter; attributes in type
//! order, Extended Length only when needed) our encoder reproduces it byte for byte.
//! BIRD and FRR put MP_REACH_NLRI first and set Extended Length on short MP attributes,
//! FRR on AS_PATH too, and FRR sends one capability per parameter: those are checked by
//! decoding and by `decode(encode(value)) == value`.

use std::net::Ipv4Addr;

use ipnet::IpNet;

use super::super::{
    Afi, AsSegment, AsSegmentKind, Attributes, Capability, Ipv6NextHop, Message, Notification,
    Open, Origin, Safi, Update, decode, encode, notification,
};
use super::{FOUR, TWO, assert_round_trip, assert_truncations, decode_one, msg};

const V4: (Afi, Safi) = (Afi::IPV4, Safi::UNICAST);
const V6: (Afi, Safi) = (Afi::IPV6, Safi::UNICAST);

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn seq(asns: &[u32]) -> Option<Vec<AsSegment>> {
    Some(vec![AsSegment {
        kind: AsSegmentKind::Sequence,
        asns: asns.to_vec(),
    }])
}

/// Decodes to `expected`, encodes back to the same bytes, and survives truncation.
fn exact(bytes: &[u8], expected: &Message) {
    assert_eq!(&decode_one(bytes, &FOUR), expected);
    assert_eq!(encode(expected, &FOUR), bytes, "encoding of {expected:?}");
    assert_truncations(bytes, &FOUR);
}

/// Decodes to `expected`, which round-trips through our own encoding.
fn decodes(bytes: &[u8], expected: &Message) {
    assert_eq!(&decode_one(bytes, &FOUR), expected);
    assert_round_trip(expected, &FOUR);
    assert_truncations(bytes, &FOUR);
}

// ---------------------------------------------------------------- OPEN

/// BIRD's OPEN on the IPv4 session: AS 4200000001 (AS_TRANS in the 2-octet field), hold
/// time 240, capabilities in one parameter: MP IPv4 unicast, route refresh, graceful
/// restart (120 s), 4-octet AS, enhanced route refresh (70), long-lived GR (71).
const BIRD_OPEN: &str = "0039 01 04 5ba0 00f0 c0000201 1c | 02 1a | 01 04 0001 00 01 | 02 00 | \
     40 06 0078 0001 01 00 | 41 04 fa56ea01 | 46 00 | 47 00";

fn bird_open(family: (Afi, Safi)) -> Message {
    Message::Open(Open {
        version: 4,
        my_as: 4_200_000_001,
        hold_time: 240,
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: vec![
            Capability::MultiProtocol {
                afi: family.0,
                safi: family.1,
            },
            Capability::RouteRefresh,
            Capability::GracefulRestart {
                restart_state: false,
                notification: false,
                restart_time: 120,
                families: vec![(family.0, family.1, false)],
            },
            Capability::FourOctetAs(4_200_000_001),
            Capability::Unknown {
                code: 70,
                data: vec![],
            },
            Capability::Unknown {
                code: 71,
                data: vec![],
            },
        ],
    })
}

#[test]
fn bird_open_ipv4() {
    exact(&msg(BIRD_OPEN), &bird_open(V4));
    // The 2-octet field is AS_TRANS; the real AS comes from the capability.
    assert_eq!(&msg(BIRD_OPEN)[20..22], &[0x5b, 0xa0]);
}

#[test]
fn bird_open_ipv6() {
    let bytes = msg(
        "0039 01 04 5ba0 00f0 c0000201 1c | 02 1a | 01 04 0002 00 01 | 02 00 | \
         40 06 0078 0002 01 00 | 41 04 fa56ea01 | 46 00 | 47 00",
    );
    exact(&bytes, &bird_open(V6));
}

/// GoBGP's OPEN: AS 65002, hold time 90, one parameter: route refresh, FQDN (73, "vm"),
/// MP IPv4 unicast, 4-octet AS, graceful restart, extended next hop (5).
#[test]
fn gobgp_open() {
    let bytes = msg(
        "0043 01 04 fdea 005a c0000202 26 | 02 24 | 02 00 | 49 04 02 766d 00 | \
         01 04 0001 00 01 | 41 04 0000fdea | 40 06 0078 0001 01 00 | 05 06 0001 0001 0002",
    );
    let expected = Message::Open(Open {
        version: 4,
        my_as: 65002,
        hold_time: 90,
        router_id: Ipv4Addr::new(192, 0, 2, 2),
        capabilities: vec![
            Capability::RouteRefresh,
            Capability::Unknown {
                code: 73,
                data: vec![2, b'v', b'm', 0],
            },
            Capability::MultiProtocol {
                afi: Afi::IPV4,
                safi: Safi::UNICAST,
            },
            Capability::FourOctetAs(65002),
            Capability::GracefulRestart {
                restart_state: false,
                notification: false,
                restart_time: 120,
                families: vec![(Afi::IPV4, Safi::UNICAST, false)],
            },
            Capability::Unknown {
                code: 5,
                data: vec![0, 1, 0, 1, 0, 2],
            },
        ],
    });
    exact(&bytes, &expected);
}

/// FRR's OPEN: one capability per parameter, graceful restart with the R and N bits set,
/// ADD-PATH (69), extended message (6), old Cisco route refresh (128), FQDN "frrA",
/// long-lived GR with a stale time.
#[test]
fn frr_open() {
    let bytes = msg(
        "0064 01 04 5ba0 00b4 c0000201 47 | 02 06 01 04 0001 00 01 | 02 02 80 00 | \
         02 02 02 00 | 02 02 46 00 | 02 06 41 04 fa56ea03 | 02 02 06 00 | \
         02 06 45 04 0001 01 01 | 02 08 49 06 04 66727241 00 | \
         02 08 40 06 c078 0001 01 00 | 02 09 47 07 0001 01 80 000000",
    );
    let unknown = |code: u8, data: &[u8]| Capability::Unknown {
        code,
        data: data.to_vec(),
    };
    let expected = Message::Open(Open {
        version: 4,
        my_as: 4_200_000_003,
        hold_time: 180,
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: vec![
            Capability::MultiProtocol {
                afi: Afi::IPV4,
                safi: Safi::UNICAST,
            },
            unknown(128, &[]),
            Capability::RouteRefresh,
            unknown(70, &[]),
            Capability::FourOctetAs(4_200_000_003),
            unknown(6, &[]),
            unknown(69, &[0, 1, 1, 1]),
            unknown(73, &[4, b'f', b'r', b'r', b'A', 0]),
            Capability::GracefulRestart {
                restart_state: true,
                notification: true,
                restart_time: 120,
                families: vec![(Afi::IPV4, Safi::UNICAST, false)],
            },
            unknown(71, &[0, 1, 1, 0x80, 0, 0, 0]),
        ],
    });
    decodes(&bytes, &expected);
    let Message::Open(open) = expected else {
        unreachable!()
    };
    assert_eq!(open.four_octet_as(), Some(4_200_000_003));
}

// ---------------------------------------------------------------- UPDATE

/// BIRD announcing three IPv4 prefixes: ORIGIN IGP, AS_PATH [4200000001], NEXT_HOP,
/// MED 50, COMMUNITIES 65000:100 and NO_EXPORT, LARGE_COMMUNITY 4200000001:1:2.
#[test]
fn bird_update_ipv4() {
    let bytes = msg(
        "005a 02 0000 0035 | 40 01 01 00 | 40 02 06 02 01 fa56ea01 | \
         40 03 04 c0000201 | 80 04 04 00000032 | c0 08 08 fde80064 ffffff01 | \
         c0 20 0c fa56ea01 00000001 00000002 | 18 c63364 | 19 cb0071 80 | 1a c0000240",
    );
    let expected = Message::Update(Update {
        nlri: vec![
            net("198.51.100.0/24"),
            net("203.0.113.128/25"),
            net("192.0.2.64/26"),
        ],
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: seq(&[4_200_000_001]),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            med: Some(50),
            communities: vec![0xfde8_0064, 0xffff_ff01],
            large_communities: vec![(4_200_000_001, 1, 2)],
            ..Attributes::default()
        },
        ..Update::default()
    });
    exact(&bytes, &expected);
}

/// GoBGP announcing 203.0.113.0/25 with MED, a community and a large community.
#[test]
fn gobgp_update_ipv4() {
    let bytes = msg(
        "004d 02 0000 0031 | 40 01 01 02 | 40 02 06 02 01 0000fdea | \
         40 03 04 c0000202 | 80 04 04 0000000a | c0 08 04 fdea00c8 | \
         c0 20 0c 0000fdea 00000003 00000004 | 19 cb0071 00",
    );
    let expected = Message::Update(Update {
        nlri: vec![net("203.0.113.0/25")],
        attributes: Attributes {
            origin: Some(Origin::Incomplete),
            as_path: seq(&[65002]),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 2)),
            med: Some(10),
            communities: vec![0xfdea_00c8],
            large_communities: vec![(65002, 3, 4)],
            ..Attributes::default()
        },
        ..Update::default()
    });
    exact(&bytes, &expected);
}

/// GoBGP announcing 2001:db8:300::/48 in MP_REACH_NLRI with a global next hop only.
#[test]
fn gobgp_update_ipv6() {
    let bytes = msg(
        "004a 02 0000 0033 | 40 01 01 02 | 40 02 06 02 01 0000fdea | \
         c0 08 04 fdea012c | 80 0e 1c 0002 01 10 20010db8000000000000000000000002 00 \
         30 20010db80300",
    );
    let expected = Message::Update(Update {
        nlri: vec![net("2001:db8:300::/48")],
        attributes: Attributes {
            origin: Some(Origin::Incomplete),
            as_path: seq(&[65002]),
            mp_next_hop: Some(Ipv6NextHop {
                global: "2001:db8::2".parse().unwrap(),
                link_local: None,
            }),
            communities: vec![0xfdea_012c],
            ..Attributes::default()
        },
        ..Update::default()
    });
    exact(&bytes, &expected);
}

/// BIRD announcing two IPv6 prefixes with a global and a link-local next hop (32 bytes),
/// MP_REACH_NLRI first and with Extended Length, and two large communities.
#[test]
fn bird_update_ipv6_link_local() {
    let bytes = msg("0087 02 0000 0070 | 90 0e 003d 0002 01 20 \
         20010db8000000000000000000000001 fe80000000000000c86c60fffe009284 00 \
         30 20010db80100 | 80 20010db8020000000000000000000010 | 40 01 01 00 | \
         40 02 06 02 01 fa56ea01 | c0 08 04 fde80064 | \
         c0 20 18 fa56ea01 00000001 00000002 fa56ea01 00000003 00000004");
    let expected = Message::Update(Update {
        nlri: vec![net("2001:db8:100::/48"), net("2001:db8:200::10/128")],
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: seq(&[4_200_000_001]),
            mp_next_hop: Some(Ipv6NextHop {
                global: "2001:db8::1".parse().unwrap(),
                link_local: Some("fe80::c86c:60ff:fe00:9284".parse().unwrap()),
            }),
            communities: vec![0xfde8_0064],
            large_communities: vec![(4_200_000_001, 1, 2), (4_200_000_001, 3, 4)],
            ..Attributes::default()
        },
        ..Update::default()
    });
    decodes(&bytes, &expected);
}

/// FRR passing GoBGP's routes on: AS_PATH with Extended Length and two ASes.
#[test]
fn frr_updates() {
    let v4 = msg(
        "004b 02 0000 002f | 40 01 01 02 | 50 02 000a 02 02 fa56ea03 0000fdea | \
         40 03 04 c0000201 | c0 08 04 fdea00c8 | c0 20 0c 0000fdea 00000003 00000004 | \
         19 cb0071 00",
    );
    let path = seq(&[4_200_000_003, 65002]);
    decodes(
        &v4,
        &Message::Update(Update {
            nlri: vec![net("203.0.113.0/25")],
            attributes: Attributes {
                origin: Some(Origin::Incomplete),
                as_path: path.clone(),
                next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
                communities: vec![0xfdea_00c8],
                large_communities: vec![(65002, 3, 4)],
                ..Attributes::default()
            },
            ..Update::default()
        }),
    );
    let v6 = msg(
        "0050 02 0000 0039 | 90 0e 001c 0002 01 10 20010db8000000000000000000000001 00 \
         30 20010db80300 | 40 01 01 02 | 50 02 000a 02 02 fa56ea03 0000fdea | \
         c0 08 04 fdea012c",
    );
    decodes(
        &v6,
        &Message::Update(Update {
            nlri: vec![net("2001:db8:300::/48")],
            attributes: Attributes {
                origin: Some(Origin::Incomplete),
                as_path: path,
                mp_next_hop: Some(Ipv6NextHop {
                    global: "2001:db8::1".parse().unwrap(),
                    link_local: None,
                }),
                communities: vec![0xfdea_012c],
                ..Attributes::default()
            },
            ..Update::default()
        }),
    );
}

#[test]
fn withdrawals() {
    let withdraw = |prefixes: &[&str]| {
        Message::Update(Update {
            withdrawn: prefixes.iter().map(|p| net(p)).collect(),
            ..Update::default()
        })
    };
    // BIRD, IPv4: three prefixes in the Withdrawn Routes field.
    exact(
        &msg("0025 02 000e 18 c63364 19 cb0071 80 1a c0000240 0000"),
        &withdraw(&["198.51.100.0/24", "203.0.113.128/25", "192.0.2.64/26"]),
    );
    // GoBGP, IPv4.
    exact(
        &msg("001c 02 0005 19 cb0071 00 0000"),
        &withdraw(&["203.0.113.0/25"]),
    );
    // GoBGP, IPv6: MP_UNREACH_NLRI.
    exact(
        &msg("0024 02 0000 000d 80 0f 0a 0002 01 30 20010db80300"),
        &withdraw(&["2001:db8:300::/48"]),
    );
    // BIRD, IPv6, with Extended Length.
    decodes(
        &msg("0036 02 0000 001f 90 0f 001b 0002 01 30 20010db80100 \
              80 20010db8020000000000000000000010"),
        &withdraw(&["2001:db8:100::/48", "2001:db8:200::10/128"]),
    );
    // FRR, IPv6, with Extended Length.
    decodes(
        &msg("0025 02 0000 000e 90 0f 000a 0002 01 30 20010db80300"),
        &withdraw(&["2001:db8:300::/48"]),
    );
}

/// End-of-RIB as BIRD, FRR and GoBGP all sent it.
#[test]
fn end_of_rib() {
    let v4 = msg("0017 02 0000 0000");
    exact(
        &v4,
        &Message::Update(Update::end_of_rib(Afi::IPV4, Safi::UNICAST)),
    );
    let v6 = msg("001d 02 0000 0006 80 0f 03 0002 01");
    exact(
        &v6,
        &Message::Update(Update::end_of_rib(Afi::IPV6, Safi::UNICAST)),
    );
    for (bytes, family) in [(v4, V4), (v6, V6)] {
        let Message::Update(u) = decode_one(&bytes, &TWO) else {
            panic!("not an UPDATE");
        };
        assert!(u.is_end_of_rib());
        assert_eq!(u.end_of_rib_family(), Some(family));
    }
    // A withdrawal is not an End-of-RIB.
    let Message::Update(u) = decode_one(&msg("001c 02 0005 19 cb0071 00 0000"), &FOUR) else {
        panic!("not an UPDATE");
    };
    assert!(!u.is_end_of_rib());
}

/// A 2-octet AS_PATH (a session without the 4-octet capability), by hand from RFC 4271
/// §4.3: AS_SET {65001, 65002} then AS_SEQUENCE [64512]; an AS over 65535 becomes
/// AS_TRANS.
#[test]
fn two_octet_as_path() {
    let bytes = msg(
        "0032 02 0000 0018 | 40 01 01 01 | 40 02 0a 01 02 fde9 fdea 02 01 fc00 | \
         40 03 04 c0000201 | 10 0a00",
    );
    let mut expected = Update {
        nlri: vec![net("10.0.0.0/16")],
        attributes: Attributes {
            origin: Some(Origin::Egp),
            as_path: Some(vec![
                AsSegment {
                    kind: AsSegmentKind::Set,
                    asns: vec![65001, 65002],
                },
                AsSegment {
                    kind: AsSegmentKind::Sequence,
                    asns: vec![64512],
                },
            ]),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ..Attributes::default()
        },
        ..Update::default()
    };
    assert_eq!(decode_one(&bytes, &TWO), Message::Update(expected.clone()));
    assert_eq!(encode(&Message::Update(expected.clone()), &TWO), bytes);
    // The width is the session's to say: read as 4-octet, the same bytes are another path.
    let Message::Update(four) = decode_one(&bytes, &FOUR) else {
        panic!("not an UPDATE")
    };
    assert_eq!(
        four.attributes.as_path.unwrap()[0].asns,
        vec![0xfde9_fdea, 0x0201_fc00]
    );
    expected.attributes.as_path = seq(&[4_200_000_001]);
    let two = encode(&Message::Update(expected), &TWO);
    assert_eq!(&two[27..33], &[0x40, 2, 4, 2, 1, 0x5b]);
}

// ---------------------------------------------------------------- the rest

#[test]
fn keepalive() {
    exact(&msg("0013 04"), &Message::Keepalive);
}

/// BIRD asking GoBGP to resend IPv4 unicast (`birdc reload in`).
#[test]
fn route_refresh() {
    exact(
        &msg("0017 05 0001 00 01"),
        &Message::RouteRefresh {
            afi: Afi::IPV4,
            safi: Safi::UNICAST,
            subtype: 0,
        },
    );
}

/// BIRD's `disable peer4 "maintenance window"`: Cease / Administrative Shutdown with an
/// RFC 9003 shutdown communication; and the plain one `disable peer6` sent.
#[test]
fn notifications() {
    let with_text = msg("0028 03 06 02 12 6d61696e74656e616e63652077696e646f77");
    let n = Notification::administrative_shutdown("maintenance window");
    exact(&with_text, &Message::Notification(n.clone()));
    assert_eq!(n.shutdown_communication(), Some("maintenance window"));
    assert_eq!(
        n.to_string(),
        "Cease / Administrative Shutdown (6/2): \"maintenance window\""
    );
    let plain = msg("0015 03 06 02");
    exact(
        &plain,
        &Message::Notification(Notification::cease(
            notification::cease::ADMINISTRATIVE_SHUTDOWN,
        )),
    );
    assert_eq!(
        Notification::administrative_shutdown(""),
        Notification::cease(2)
    );
    // A communication is cut to 255 bytes at a character boundary.
    let long = "é".repeat(200);
    let n = Notification::administrative_shutdown(&long);
    assert_eq!(n.data[0], 254);
    assert_eq!(n.shutdown_communication(), Some("é".repeat(127).as_str()));
    assert_eq!(
        Notification::new(3, 5, vec![0x40, 0x01, 0x02, 0x00, 0x00]).to_string(),
        "UPDATE Message Error / Attribute Length Error (3/5), data 4001020000"
    );
    assert_eq!(
        Notification::hold_timer_expired().to_string(),
        "Hold Timer Expired (4/0)"
    );
}

/// BIRD's half of the IPv4 session as one TCP stream, fed to the decoder in pieces of
/// every size: the framing loop sees each message once, whole.
#[test]
fn stream_framing() {
    let messages = [
        msg(BIRD_OPEN),
        msg("0013 04"),
        msg(
            "005a 02 0000 0035 40010100 400206 0201 fa56ea01 400304 c0000201 800404 00000032 \
             c00808 fde80064 ffffff01 c0200c fa56ea01 00000001 00000002 18c63364 19cb007180 \
             1ac0000240",
        ),
        msg("0017 02 0000 0000"),
        msg("0017 05 0001 00 01"),
        msg("0025 02 000e 18 c63364 19 cb0071 80 1a c0000240 0000"),
        msg("0028 03 06 02 12 6d61696e74656e616e63652077696e646f77"),
    ];
    let stream: Vec<u8> = messages.concat();
    let expected: Vec<Message> = messages.iter().map(|m| decode_one(m, &FOUR)).collect();
    for chunk in [1, 2, 7, 19, 64, 4096] {
        let mut buffer = Vec::new();
        let mut seen = Vec::new();
        for piece in stream.chunks(chunk) {
            buffer.extend_from_slice(piece);
            while let Some((m, consumed)) = decode(&buffer, &FOUR).unwrap() {
                seen.push(m);
                buffer.drain(..consumed);
            }
        }
        assert!(buffer.is_empty());
        assert_eq!(seen, expected, "in pieces of {chunk}");
    }
    let Message::Open(open) = &expected[0] else {
        panic!("not an OPEN");
    };
    assert_eq!(open.router_id, Ipv4Addr::new(192, 0, 2, 1));
}
