//! Properties: hostile bytes never panic, and what we build parses back to what we meant.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::{LINUX_ARP_REQUEST, LINUX_DAD_NS, LINUX_NA, LINUX_NS, hex};
use crate::l2::packet::{
    Answer, ArpOperation, ArpPacket, Frame, MacAddr, Message, NaFlags, NeighborAdvertisement,
    NeighborSolicitation, answer, gratuitous_arp, neighbor_advertisement, parse_frame,
    solicited_node_multicast, unsolicited_neighbor_advertisement,
};

/// Parses, and if that works, answers as a node that owns everything; any reply must parse.
fn exercise(bytes: &[u8], our_mac: MacAddr) {
    if let Ok(frame) = parse_frame(bytes)
        && let Answer::Reply(reply) = answer(&frame, our_mac, |_| true)
    {
        assert_reply_parses(&reply);
    }
}

fn assert_reply_parses(reply: &[u8]) {
    if let Err(e) = parse_frame(reply) {
        panic!("our own reply does not parse: {e}");
    }
}

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

/// Any IPv6 address that is not multicast (sources and targets).
fn unicast_v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(|mut octets| {
        if octets[0] == 0xff {
            octets[0] = 0x20;
        }
        Ipv6Addr::from(octets)
    })
}

fn any_v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(Ipv6Addr::from)
}

fn vlan() -> impl Strategy<Value = Option<u16>> {
    proptest::option::of(0u16..4096)
}

fn arp() -> impl Strategy<Value = Message> {
    (any::<bool>(), mac(), ipv4(), mac(), ipv4()).prop_map(|(request, sm, si, tm, ti)| {
        Message::Arp(ArpPacket {
            operation: if request {
                ArpOperation::Request
            } else {
                ArpOperation::Reply
            },
            sender_mac: sm,
            sender_ip: si,
            target_mac: tm,
            target_ip: ti,
        })
    })
}

/// A valid solicitation; a quarter of them DAD (which forces destination and option).
fn solicitation() -> impl Strategy<Value = NeighborSolicitation> {
    (
        0u8..4,
        unicast_v6(),
        any_v6(),
        unicast_v6(),
        proptest::option::of(mac()),
    )
        .prop_map(|(kind, source, destination, target, source_mac)| {
            if kind == 0 {
                NeighborSolicitation {
                    source: Ipv6Addr::UNSPECIFIED,
                    destination: solicited_node_multicast(target),
                    target,
                    source_mac: None,
                }
            } else {
                NeighborSolicitation {
                    source,
                    destination,
                    target,
                    source_mac,
                }
            }
        })
}

fn advertisement() -> impl Strategy<Value = Message> {
    (
        unicast_v6(),
        any_v6(),
        unicast_v6(),
        any::<[bool; 3]>(),
        proptest::option::of(mac()),
    )
        .prop_map(
            |(source, destination, target, [router, solicited, o], target_mac)| {
                Message::NeighborAdvertisement(NeighborAdvertisement {
                    source,
                    destination,
                    target,
                    flags: NaFlags {
                        router,
                        // RFC 4861: never Solicited to a multicast destination.
                        solicited: solicited && !destination.is_multicast(),
                        override_: o,
                    },
                    target_mac,
                })
            },
        )
}

fn frame() -> impl Strategy<Value = Frame> {
    let message = prop_oneof![
        arp(),
        solicitation().prop_map(Message::NeighborSolicitation),
        advertisement(),
    ];
    (mac(), mac(), vlan(), message).prop_map(|(destination, source, vlan, message)| Frame {
        destination,
        source,
        vlan,
        message,
    })
}

/// A captured frame with a few bytes overwritten, truncated or extended: close enough to
/// valid to get past the cheap checks, unlike uniformly random bytes.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let base = prop_oneof![
        Just(hex(LINUX_ARP_REQUEST)),
        Just(hex(LINUX_NS)),
        Just(hex(LINUX_NA)),
        Just(hex(LINUX_DAD_NS)),
    ];
    (
        base,
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        any::<usize>(),
        proptest::collection::vec(any::<u8>(), 0..24),
    )
        .prop_map(|(mut bytes, edits, cut, tail)| {
            for (at, value) in edits {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            bytes.extend(tail);
            bytes
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), us in mac()) {
        exercise(&bytes, us);
    }

    #[test]
    fn arbitrary_bytes_behind_our_ethertypes_never_panic(
        ethertype in prop_oneof![Just([0x08, 0x06]), Just([0x86, 0xdd]), Just([0x81, 0x00])],
        body in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut bytes = hex("ffffffffffff 020000000001");
        bytes.extend(ethertype);
        bytes.extend(body);
        exercise(&bytes, MacAddr([2, 0, 0, 0, 0, 2]));
    }

    #[test]
    fn mutated_frames_never_panic(bytes in mutated(), us in mac()) {
        exercise(&bytes, us);
    }

    #[test]
    fn frames_round_trip(frame in frame()) {
        let bytes = frame.to_bytes();
        prop_assert!(bytes.len() >= 60);
        prop_assert_eq!(parse_frame(&bytes), Ok(frame));
    }

    #[test]
    fn gratuitous_announcements_parse(us in mac(), v4 in ipv4(), v6 in unicast_v6()) {
        let garp = parse_frame(&gratuitous_arp(us, v4)).unwrap();
        prop_assert_eq!(garp.source, us);
        let Message::Arp(arp) = garp.message else { panic!("not ARP") };
        prop_assert!(arp.is_gratuitous());
        prop_assert_eq!((arp.sender_mac, arp.sender_ip), (us, v4));

        let na = parse_frame(&unsolicited_neighbor_advertisement(us, v6)).unwrap();
        let Message::NeighborAdvertisement(na) = na.message else { panic!("not an NA") };
        prop_assert_eq!((na.target, na.target_mac), (v6, Some(us)));
        prop_assert!(na.flags.override_ && !na.flags.solicited);
    }

    #[test]
    fn advertisements_answer_their_solicitation(
        ns in solicitation(), solicitor in mac(), us in mac(), vlan in vlan(),
    ) {
        let reply = parse_frame(&neighbor_advertisement(&ns, solicitor, us, vlan)).unwrap();
        prop_assert_eq!((reply.source, reply.vlan), (us, vlan));
        let Message::NeighborAdvertisement(na) = reply.message else { panic!("not an NA") };
        prop_assert_eq!((na.source, na.target, na.target_mac), (ns.target, ns.target, Some(us)));
        prop_assert_eq!(na.flags.solicited, !ns.is_dad());
        if !ns.is_dad() {
            prop_assert_eq!(na.destination, ns.source);
            prop_assert_eq!(reply.destination, ns.source_mac.unwrap_or(solicitor));
        }
        let question = Frame {
            destination: MacAddr::BROADCAST,
            source: solicitor,
            vlan,
            message: Message::NeighborSolicitation(ns),
        };
        let owns_target = |ip: IpAddr| ip == IpAddr::V6(ns.target);
        if solicitor != us && ns.source_mac != Some(us) {
            prop_assert!(matches!(answer(&question, us, owns_target), Answer::Reply(_)));
        }
    }
}
