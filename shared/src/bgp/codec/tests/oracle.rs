//! `bgp-rs` 0.6 as an independent second decoder, and the findings that kept it out of
//! the product (module docs of `codec.rs`).
//!
//! Agreement: every message we encode, `bgp-rs` reads the same way (within what it
//! supports); messages `bgp-rs` encodes, we read as meant. Findings: inputs on which
//! `bgp-rs` panics, misreads valid messages, accepts invalid ones or cannot encode, each
//! next to what our codec does with the same bytes.

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr};
use std::panic::{AssertUnwindSafe, catch_unwind};

use bgp_rs::{NLRIEncoding, OpenCapability, OpenParameter, PathAttribute};
use ipnet::IpNet;
use proptest::prelude::*;

use super::super::{
    AS_TRANS, Afi, AsSegment, AsSegmentKind, Capability, ErrorKind, Message, Origin, Safi, decode,
    encode,
};
use super::{FOUR, decode_one, frame, hex, msg, update_body};

/// What `bgp-rs` reads from one message (it never checks the marker or the length).
fn theirs(bytes: &[u8]) -> std::io::Result<bgp_rs::Message> {
    bgp_rs::Reader::new(Cursor::new(bytes))
        .read()
        .map(|(_, m)| m)
}

/// Runs `f`, telling whether it panicked.
fn panics<T>(f: impl FnOnce() -> T) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

fn their_prefixes(list: &[NLRIEncoding]) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = list
        .iter()
        .filter_map(|n| match n {
            NLRIEncoding::IP(p) => {
                let (addr, len): (IpAddr, u8) = p.into();
                IpNet::new(addr, len).ok()
            }
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// Asserts `bgp-rs` reads `bytes` as we read them into `ours`, field by field where it
/// has the field. AS_PATH is left out: `bgp-rs` guesses its width (see the findings).
fn assert_agree(bytes: &[u8], ours: &Message) {
    let theirs = theirs(bytes).unwrap_or_else(|e| panic!("bgp-rs refused {bytes:02x?}: {e}"));
    match (ours, &theirs) {
        (Message::Keepalive, bgp_rs::Message::KeepAlive) => {}
        (Message::Notification(n), bgp_rs::Message::Notification(t)) => {
            assert_eq!(
                (n.code, n.subcode, &n.data),
                (t.major_err_code, t.minor_err_code, &t.data)
            );
        }
        (Message::RouteRefresh { afi, safi, subtype }, bgp_rs::Message::RouteRefresh(t)) => {
            assert_eq!(
                (afi.0, safi.0, *subtype),
                (t.afi as u16, t.safi as u8, t.subtype)
            );
        }
        (Message::Open(o), bgp_rs::Message::Open(t)) => {
            let as2 = u16::try_from(o.my_as).unwrap_or(AS_TRANS);
            assert_eq!(
                (as2, o.hold_time, u32::from(o.router_id)),
                (t.peer_asn, t.hold_timer, t.identifier)
            );
            let their_caps: Vec<&OpenCapability> = t
                .parameters
                .iter()
                .flat_map(|p| match p {
                    OpenParameter::Capabilities(c) => c.iter().collect(),
                    OpenParameter::Unknown { .. } => Vec::new(),
                })
                .collect();
            assert_eq!(o.capabilities.len(), their_caps.len());
            for (ours, theirs) in o.capabilities.iter().zip(their_caps) {
                match (ours, theirs) {
                    (
                        Capability::MultiProtocol { afi, safi },
                        OpenCapability::MultiProtocol((a, s)),
                    ) => {
                        assert_eq!((afi.0, safi.0), (*a as u16, *s as u8));
                    }
                    (Capability::RouteRefresh, OpenCapability::RouteRefresh) => {}
                    (Capability::FourOctetAs(a), OpenCapability::FourByteASN(b)) => {
                        assert_eq!(a, b)
                    }
                    (
                        Capability::GracefulRestart { .. },
                        OpenCapability::Unknown { cap_code: 64, .. },
                    ) => {}
                    // ADD-PATH and ORF, which bgp-rs interprets and we keep as bytes.
                    (
                        Capability::Unknown { code: 69 | 3, .. },
                        OpenCapability::AddPath(_) | OpenCapability::OutboundRouteFiltering(_),
                    ) => {}
                    (
                        Capability::Unknown { code, data },
                        OpenCapability::Unknown {
                            cap_code, value, ..
                        },
                    ) => {
                        assert_eq!((code, data), (cap_code, value));
                    }
                    (o, t) => panic!("capability {o:?} read by bgp-rs as {t:?}"),
                }
            }
        }
        (Message::Update(u), bgp_rs::Message::Update(t)) => {
            let mut t = t.clone();
            t.normalize();
            let mut nlri = u.nlri.clone();
            nlri.sort();
            let mut withdrawn = u.withdrawn.clone();
            withdrawn.sort();
            assert_eq!(nlri, their_prefixes(&t.announced_routes), "NLRI");
            assert_eq!(withdrawn, their_prefixes(&t.withdrawn_routes), "withdrawn");
            let a = &u.attributes;
            for attribute in &t.attributes {
                match attribute {
                    PathAttribute::ORIGIN(o) => assert_eq!(
                        a.origin.map(|o| o as u8),
                        Some(match o {
                            bgp_rs::Origin::IGP => Origin::Igp as u8,
                            bgp_rs::Origin::EGP => Origin::Egp as u8,
                            bgp_rs::Origin::INCOMPLETE => Origin::Incomplete as u8,
                        })
                    ),
                    PathAttribute::NEXT_HOP(IpAddr::V4(nh)) => assert_eq!(a.next_hop, Some(*nh)),
                    PathAttribute::MULTI_EXIT_DISC(m) => assert_eq!(a.med, Some(*m)),
                    PathAttribute::LOCAL_PREF(l) => assert_eq!(a.local_pref, Some(*l)),
                    PathAttribute::ATOMIC_AGGREGATOR => assert!(a.atomic_aggregate),
                    PathAttribute::COMMUNITY(c) => assert_eq!(&a.communities, c),
                    PathAttribute::LARGE_COMMUNITY(l) => assert_eq!(&a.large_communities, l),
                    PathAttribute::MP_REACH_NLRI(r) => {
                        let hop = a.mp_next_hop.expect("an MP next hop");
                        let mut bytes = hop.global.octets().to_vec();
                        bytes.extend(hop.link_local.iter().flat_map(|l| l.octets()));
                        assert_eq!(r.next_hop, bytes);
                    }
                    _ => {}
                }
            }
            let count =
                |f: fn(&PathAttribute) -> bool| t.attributes.iter().filter(|x| f(x)).count();
            assert_eq!(
                count(|x| matches!(x, PathAttribute::ORIGIN(_))),
                usize::from(a.origin.is_some())
            );
            assert_eq!(
                count(|x| matches!(x, PathAttribute::MULTI_EXIT_DISC(_))),
                usize::from(a.med.is_some())
            );
            assert_eq!(
                count(|x| matches!(x, PathAttribute::COMMUNITY(_))),
                usize::from(!a.communities.is_empty())
            );
        }
        (o, t) => panic!("{o:?} read by bgp-rs as {t:?}"),
    }
}

/// Every captured message (see `vectors.rs`): `bgp-rs` agrees with us.
#[test]
fn captured_messages_agree() {
    for hexed in super::props::CAPTURED.iter().chain(&[
        "004d 02 0000 0031 40010102 400206 0201 0000fdea 400304 c0000202 800404 0000000a c00804 fdea00c8 c0200c 0000fdea 00000003 00000004 19cb007100",
        "004a 02 0000 0033 40010102 400206 0201 0000fdea c00804 fdea012c 800e1c 0002 01 10 20010db8000000000000000000000002 00 30 20010db80300",
        "0025 02 000e 18c63364 19cb007180 1ac0000240 0000",
        "001d 02 0000 0006 800f03 000201",
        "0017 05 0001 00 01",
        "0028 03 06 02 12 6d61696e74656e616e63652077696e646f77",
        "0013 04",
    ]) {
        let bytes = msg(hexed);
        assert_agree(&bytes, &decode_one(&bytes, &FOUR));
    }
}

/// Messages `bgp-rs` encodes (with what it encodes correctly), read by us as meant.
#[test]
fn we_read_what_bgp_rs_writes() {
    use bgp_rs::{AFI, SAFI};
    let prefix = |s: &str| {
        let n: IpNet = s.parse().unwrap();
        NLRIEncoding::IP((n.addr(), n.prefix_len()).into())
    };
    let update = bgp_rs::Message::Update(bgp_rs::Update {
        withdrawn_routes: vec![prefix("198.51.100.0/24"), prefix("2001:db8:dead::/48")],
        attributes: vec![
            PathAttribute::ORIGIN(bgp_rs::Origin::EGP),
            // Only 4-byte ASNs make bgp-rs write 4 octets (see the findings).
            PathAttribute::AS_PATH(bgp_rs::ASPath {
                segments: vec![bgp_rs::Segment::AS_SEQUENCE(vec![
                    4_200_000_001,
                    4_200_000_002,
                ])],
            }),
            PathAttribute::NEXT_HOP(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            PathAttribute::MULTI_EXIT_DISC(7),
            PathAttribute::LOCAL_PREF(200),
            PathAttribute::COMMUNITY(vec![0xfde8_0064]),
            PathAttribute::MP_REACH_NLRI(bgp_rs::MPReachNLRI {
                afi: AFI::IPV6,
                safi: SAFI::Unicast,
                next_hop: hex("20010db8000000000000000000000001"),
                announced_routes: vec![prefix("2001:db8:100::/48")],
            }),
        ],
        announced_routes: vec![prefix("203.0.113.0/24"), prefix("10.0.0.0/8")],
    });
    let open = bgp_rs::Message::Open(bgp_rs::Open {
        version: 4,
        peer_asn: AS_TRANS,
        hold_timer: 90,
        identifier: 0xc000_0201,
        parameters: vec![OpenParameter::Capabilities(vec![
            OpenCapability::MultiProtocol((AFI::IPV6, SAFI::Unicast)),
            OpenCapability::RouteRefresh,
            OpenCapability::FourByteASN(4_200_000_001),
        ])],
    });
    let refresh = bgp_rs::Message::RouteRefresh(bgp_rs::RouteRefresh {
        afi: AFI::IPV6,
        safi: SAFI::Unicast,
        subtype: 0,
    });
    let notification = bgp_rs::Message::Notification(bgp_rs::Notification {
        major_err_code: 6,
        minor_err_code: 4,
        data: vec![],
    });
    for m in [
        update,
        open,
        refresh,
        notification,
        bgp_rs::Message::KeepAlive,
    ] {
        let mut bytes = Vec::new();
        m.encode(&mut bytes).unwrap();
        let ours = decode_one(&bytes, &FOUR);
        assert_agree(&bytes, &ours);
        if let Message::Update(u) = &ours {
            assert_eq!(
                u.attributes.as_path,
                Some(vec![AsSegment {
                    kind: AsSegmentKind::Sequence,
                    asns: vec![4_200_000_001, 4_200_000_002]
                }])
            );
        }
        if let Message::Open(o) = &ours {
            assert_eq!(o.my_as, 4_200_000_001);
        }
    }
}

/// Valid messages within what `bgp-rs` supports: known families, no extended optional
/// parameters, no raw attributes it would interpret its own way, no default route first in
/// the NLRI field (see the ADD-PATH finding).
fn supported(m: Message) -> Option<Message> {
    match m {
        Message::Open(mut o) => {
            o.capabilities.retain(|c| match c {
                Capability::MultiProtocol { afi, safi } => {
                    afi.0 <= 2 && afi.0 >= 1 && safi.0 <= 2 && safi.0 >= 1
                }
                Capability::Unknown { code, .. } => ![3, 69].contains(code),
                _ => true,
            });
            (encode(&Message::Open(o.clone()), &FOUR)[28] != 0xff).then_some(Message::Open(o))
        }
        Message::Update(mut u) => {
            u.attributes.other.clear();
            u.empty_mp_unreach = None;
            for p in &mut u.nlri {
                if p.prefix_len() == 0 {
                    *p = IpNet::new(p.addr(), 1).unwrap().trunc();
                }
            }
            Some(Message::Update(u))
        }
        Message::RouteRefresh { subtype, .. } => Some(Message::RouteRefresh {
            afi: Afi::IPV6,
            safi: Safi::UNICAST,
            subtype,
        }),
        other => Some(other),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bgp_rs_reads_our_messages_as_we_do(m in super::props::message(false)) {
        if let Some(m) = supported(m) {
            let bytes = encode(&m, &FOUR);
            prop_assume!(bytes.len() <= 4096);
            assert_agree(&bytes, &decode_one(&bytes, &FOUR));
        }
    }
}

// ---------------------------------------------------------------- findings

const ORIGIN_AS_PATH: &str = "40 01 01 00 40 02 06 02 01 0000fde9";

/// Inputs that make `bgp-rs` panic (`unimplemented!()`, slice bounds, overflow), each
/// decoded by us without one.
#[test]
fn bgp_rs_panics_where_we_do_not() {
    let cases = [
        // MP_REACH_NLRI for BGP-LS (AFI 16388): `unimplemented!()` in MPReachNLRI::parse
        // (update/nlri.rs). We keep the attribute as bytes.
        format!("{ORIGIN_AS_PATH} 80 0e 05 4004 47 00 00"),
        // MP_UNREACH_NLRI for L2VPN (AFI 25) with a prefix: `unimplemented!()` in
        // Prefix::parse (update/mod.rs), reached from MPUnreachNLRI::parse.
        format!("{ORIGIN_AS_PATH} 80 0f 05 0019 01 08 0a"),
        // MP_REACH_NLRI, SAFI 4 (labelled), a 255-bit prefix: `pfx_buf[..remaining]` out of
        // range in MPReachNLRI::parse.
        format!(
            "{ORIGIN_AS_PATH} 80 0e 2a 0001 04 04 0a000001 00 ff {}",
            "00".repeat(32)
        ),
    ];
    for attributes in cases {
        let bytes = frame(2, &update_body(&hex(&attributes), &[]));
        assert!(
            panics(|| theirs(&bytes)),
            "bgp-rs no longer panics on {attributes}"
        );
        let Message::Update(u) = decode_one(&bytes, &FOUR) else {
            panic!("not an UPDATE")
        };
        assert_eq!(u.attributes.other.len(), 1);
    }
    // MP_REACH_NLRI with a 255-byte next hop: `5 + next_hop_length` overflows a u8 in
    // MPReachNLRI::parse (a panic where overflow checks are on, as in tests and fuzzing).
    let mut attributes = hex(ORIGIN_AS_PATH);
    attributes.extend(hex("90 0e 0104 0002 01 ff"));
    attributes.extend([0u8; 256]);
    let bytes = frame(2, &update_body(&attributes, &[]));
    if cfg!(debug_assertions) {
        assert!(panics(|| theirs(&bytes)));
    }
    let e = decode(&bytes, &FOUR).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (3, 9));
    // Encoding LARGE_COMMUNITY: `unimplemented!()` in PathAttribute::encode
    // (update/attributes.rs), as for every attribute but ten.
    assert!(panics(|| {
        let mut out = Vec::new();
        PathAttribute::LARGE_COMMUNITY(vec![(1, 2, 3)]).encode(&mut out)
    }));
}

/// Valid messages `bgp-rs` reads wrong, and invalid ones it accepts.
#[test]
fn bgp_rs_misreads() {
    // Five default routes in the NLRI field: util::detect_add_path_prefix guesses ADD-PATH
    // (never negotiated) and reads one route with path id 0.
    let bytes = frame(
        2,
        &update_body(&hex("40 01 01 00 40 02 00 40 03 04 c0000201"), &[0; 5]),
    );
    let Ok(bgp_rs::Message::Update(t)) = theirs(&bytes) else {
        panic!("bgp-rs refused it")
    };
    assert!(matches!(
        t.announced_routes[..],
        [NLRIEncoding::IP_WITH_PATH_ID(_)]
    ));
    let Message::Update(u) = decode_one(&bytes, &FOUR) else {
        panic!("not an UPDATE")
    };
    assert_eq!(u.nlri, vec!["0.0.0.0/0".parse::<IpNet>().unwrap(); 5]);

    // A 4-octet AS_PATH [66048]: Segment::parse_unknown_segments tries 2 octets first, and
    // the bytes parse that way too, as [1] followed by an empty sequence.
    let bytes = frame(2, &update_body(&hex("40 02 06 02 01 00010200"), &[]));
    let Ok(bgp_rs::Message::Update(t)) = theirs(&bytes) else {
        panic!("bgp-rs refused it")
    };
    let Some(PathAttribute::AS_PATH(path)) = t.attributes.first() else {
        panic!("no AS_PATH")
    };
    assert_eq!(
        format!("{:?}", path.segments),
        "[AS_SEQUENCE([1]), AS_SEQUENCE([])]"
    );
    let Message::Update(u) = decode_one(&bytes, &FOUR) else {
        panic!("not an UPDATE")
    };
    assert_eq!(
        u.attributes.as_path,
        Some(vec![AsSegment {
            kind: AsSegmentKind::Sequence,
            asns: vec![66048]
        }])
    );

    // An invalid ORIGIN is dropped without a word (Update::parse skips attributes that fail
    // to parse); RFC 4271 wants 3/6.
    let bytes = frame(
        2,
        &update_body(&hex("40 01 01 07 40 02 00 40 03 04 c0000201"), &[8, 10]),
    );
    let Ok(bgp_rs::Message::Update(t)) = theirs(&bytes) else {
        panic!("bgp-rs refused it")
    };
    assert!(
        !t.attributes
            .iter()
            .any(|a| matches!(a, PathAttribute::ORIGIN(_)))
    );
    assert_eq!(
        decode(&bytes, &FOUR).unwrap_err().kind,
        ErrorKind::InvalidOrigin(7)
    );

    // Reader::read checks neither the marker nor the length.
    let mut bad_marker = msg("0013 04");
    bad_marker[0] = 0;
    assert!(matches!(
        theirs(&bad_marker),
        Ok(bgp_rs::Message::KeepAlive)
    ));
    assert_eq!(
        decode(&bad_marker, &FOUR).unwrap_err().kind,
        ErrorKind::BadMarker
    );
    let long_keepalive = msg("1000 04");
    assert!(matches!(
        theirs(&long_keepalive),
        Ok(bgp_rs::Message::KeepAlive)
    ));
    assert_eq!(
        decode(&long_keepalive, &FOUR)
            .unwrap_err()
            .notification
            .subcode,
        2
    );

    // An OPEN advertising a family it does not know (AFI 3) is refused whole.
    let bytes = msg("0025 01 04 fde9 005a c0000201 08 02 06 01 04 0003 00 01");
    assert!(theirs(&bytes).is_err());
    let Message::Open(o) = decode_one(&bytes, &FOUR) else {
        panic!("not an OPEN")
    };
    assert_eq!(
        o.capabilities,
        vec![Capability::MultiProtocol {
            afi: Afi(3),
            safi: Safi::UNICAST
        }]
    );

    // AS_PATH is written 2 octets per AS whenever every AS fits 16 bits, whatever the
    // session negotiated: a 4-octet peer reads garbage.
    let mut out = Vec::new();
    PathAttribute::AS_PATH(bgp_rs::ASPath {
        segments: vec![bgp_rs::Segment::AS_SEQUENCE(vec![65001])],
    })
    .encode(&mut out)
    .unwrap();
    assert_eq!(out, hex("40 02 04 02 01 fde9"));
}
