//! Neighbor discovery in both directions against fixed bytes.

use std::net::Ipv6Addr;

use super::{LINUX_DAD_NS, LINUX_NA, LINUX_NS, assert_every_prefix_truncated, hex, padded};
use crate::l2::packet::{
    ALL_NODES, Frame, MacAddr, Message, NaFlags, NeighborAdvertisement, NeighborSolicitation,
    icmpv6_checksum, ipv6_multicast_mac, neighbor_advertisement, parse_frame,
    solicited_node_multicast, unsolicited_neighbor_advertisement,
};

const MAC1: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const MAC2: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const IP1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const IP2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn solicitation(frame: &Frame) -> NeighborSolicitation {
    match frame.message {
        Message::NeighborSolicitation(ns) => ns,
        other => panic!("not a solicitation: {other:?}"),
    }
}

fn advertisement(frame: &Frame) -> NeighborAdvertisement {
    match frame.message {
        Message::NeighborAdvertisement(na) => na,
        other => panic!("not an advertisement: {other:?}"),
    }
}

#[test]
fn parses_a_linux_solicitation() {
    let frame = parse_frame(&hex(LINUX_NS)).unwrap();
    assert_eq!(frame.destination, MacAddr([0x33, 0x33, 0xff, 0, 0, 2]));
    assert_eq!((frame.source, frame.vlan), (MAC1, None));
    let ns = solicitation(&frame);
    assert_eq!(
        ns,
        NeighborSolicitation {
            source: IP1,
            destination: "ff02::1:ff00:2".parse().unwrap(),
            target: IP2,
            source_mac: Some(MAC1),
        }
    );
    assert!(!ns.is_dad());
}

#[test]
fn parses_a_linux_advertisement() {
    let frame = parse_frame(&hex(LINUX_NA)).unwrap();
    assert_eq!(
        (frame.destination, frame.source, frame.vlan),
        (MAC1, MAC2, None)
    );
    assert_eq!(
        advertisement(&frame),
        NeighborAdvertisement {
            source: IP2,
            destination: IP1,
            target: IP2,
            flags: NaFlags {
                router: false,
                solicited: true,
                override_: true,
            },
            target_mac: Some(MAC2),
        }
    );
}

#[test]
fn parses_a_linux_dad_solicitation_skipping_the_nonce() {
    let ns = solicitation(&parse_frame(&hex(LINUX_DAD_NS)).unwrap());
    assert!(ns.is_dad());
    assert_eq!(ns.source, Ipv6Addr::UNSPECIFIED);
    assert_eq!(
        ns.destination,
        "ff02::1:ff00:5".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(ns.target, "2001:db8::5".parse::<Ipv6Addr>().unwrap());
    assert_eq!(ns.source_mac, None);
}

#[test]
fn parses_router_flag_and_ignores_reserved_bits() {
    // LINUX_NA with R set and the reserved bits all ones (receivers must ignore them),
    // checksum recomputed by hand.
    let frame = parse_frame(&hex("
        020000000001 020000000002 86dd
        60000000 0020 3a ff
        20010db8000000000000000000000002
        20010db8000000000000000000000001
        88 00 ea71 ffffffff
        20010db8000000000000000000000002
        02 01 020000000002"))
    .unwrap();
    let flags = advertisement(&frame).flags;
    assert!(flags.router && flags.solicited && flags.override_);
}

#[test]
fn ignores_padding_after_the_ipv6_payload() {
    let mut bytes = hex(LINUX_NS);
    bytes.extend_from_slice(&[0xa5; 8]);
    assert_eq!(
        parse_frame(&bytes).unwrap(),
        parse_frame(&hex(LINUX_NS)).unwrap()
    );
}

#[test]
fn checksum_matches_linux() {
    for (fixture, expected) in [
        (LINUX_NS, 0x1c27),
        (LINUX_NA, 0x8a71),
        (LINUX_DAD_NS, 0x7476),
    ] {
        let bytes = hex(fixture);
        let source = Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[22..38]).unwrap());
        let destination = Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[38..54]).unwrap());
        assert_eq!(icmpv6_checksum(source, destination, &bytes[54..]), expected);
    }
}

#[test]
fn accepts_both_forms_of_a_zero_checksum() {
    // LINUX_NS with a reserved word chosen so the computed checksum is zero; a sender may
    // then write 0x0000 or 0xffff.
    for checksum in ["0000", "ffff"] {
        let frame = hex(&format!(
            "3333ff000002 020000000001 86dd
             60000000 0020 3a ff
             20010db8000000000000000000000001
             ff0200000000000000000001ff000002
             87 00 {checksum} 1c270000
             20010db8000000000000000000000002
             01 01 020000000001"
        ));
        let ns = solicitation(&parse_frame(&frame).unwrap());
        assert_eq!(ns.target, IP2);
    }
}

#[test]
fn builds_the_same_advertisement_as_linux() {
    let ns = solicitation(&parse_frame(&hex(LINUX_NS)).unwrap());
    // The Ethernet source only matters when the solicitation has no link-layer option.
    let built = neighbor_advertisement(&ns, MacAddr([2, 0, 0, 0, 0, 0x99]), MAC2, None);
    assert_eq!(built, hex(LINUX_NA));
}

#[test]
fn advertises_to_the_ethernet_source_without_a_link_layer_option() {
    let ns = NeighborSolicitation {
        source: IP1,
        destination: IP2,
        target: IP2,
        source_mac: None,
    };
    let built = neighbor_advertisement(&ns, MAC1, MAC2, Some(42));
    let expected = hex("
        020000000001 020000000002 8100 002a 86dd
        60000000 0020 3a ff
        20010db8000000000000000000000002
        20010db8000000000000000000000001
        88 00 8a71 60000000
        20010db8000000000000000000000002
        02 01 020000000002");
    assert_eq!(built, expected);
}

#[test]
fn answers_dad_to_all_nodes_without_the_solicited_flag() {
    let ns = solicitation(&parse_frame(&hex(LINUX_DAD_NS)).unwrap());
    let built = neighbor_advertisement(&ns, MAC1, MacAddr([2, 0, 0, 0, 0, 0x0a]), None);
    let expected = hex("
        333300000001 02000000000a 86dd
        60000000 0020 3a ff
        20010db8000000000000000000000005
        ff020000000000000000000000000001
        88 00 f919 20000000
        20010db8000000000000000000000005
        02 01 02000000000a");
    assert_eq!(built, expected);
}

#[test]
fn builds_an_unsolicited_advertisement() {
    let expected = hex("
        333300000001 020000000002 86dd
        60000000 0020 3a ff
        20010db8000000000000000000000002
        ff020000000000000000000000000001
        88 00 f927 20000000
        20010db8000000000000000000000002
        02 01 020000000002");
    assert_eq!(unsolicited_neighbor_advertisement(MAC2, IP2), expected);
    let na = advertisement(&parse_frame(&expected).unwrap());
    assert_eq!(na.destination, ALL_NODES);
    assert_eq!(
        na.flags,
        NaFlags {
            router: false,
            solicited: false,
            override_: true
        }
    );
}

#[test]
fn frames_round_trip() {
    for fixture in [LINUX_NS, LINUX_NA] {
        let bytes = hex(fixture);
        assert_eq!(parse_frame(&bytes).unwrap().to_bytes(), padded(bytes));
    }
    // The nonce option is not kept, so DAD re-encodes shorter but parses the same.
    let dad = parse_frame(&hex(LINUX_DAD_NS)).unwrap();
    let reencoded = dad.to_bytes();
    assert_eq!(reencoded.len(), 14 + 40 + 24);
    assert_eq!(parse_frame(&reencoded).unwrap(), dad);
}

#[test]
fn solicited_node_multicast_and_its_mac() {
    let addr: Ipv6Addr = "2001:db8::1:2345:6789".parse().unwrap();
    let group = solicited_node_multicast(addr);
    assert_eq!(group, "ff02::1:ff45:6789".parse::<Ipv6Addr>().unwrap());
    assert_eq!(
        ipv6_multicast_mac(group),
        MacAddr([0x33, 0x33, 0xff, 0x45, 0x67, 0x89])
    );
    assert_eq!(
        ipv6_multicast_mac(ALL_NODES).to_string(),
        "33:33:00:00:00:01"
    );
    assert_eq!(
        solicited_node_multicast(IP2),
        "ff02::1:ff00:2".parse::<Ipv6Addr>().unwrap()
    );
}

#[test]
fn every_truncation_is_an_error() {
    for fixture in [LINUX_NS, LINUX_NA, LINUX_DAD_NS] {
        assert_every_prefix_truncated(&hex(fixture));
    }
}
