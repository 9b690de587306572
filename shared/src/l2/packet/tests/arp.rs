//! ARP in both directions against fixed bytes.

use std::net::Ipv4Addr;

use super::{
    LINUX_ARP_REPLY, LINUX_ARP_REQUEST, LINUX_GRATUITOUS_ARP, assert_every_prefix_truncated, hex,
    padded,
};
use crate::l2::packet::{
    ArpOperation, ArpPacket, Frame, MacAddr, Message, arp_reply, gratuitous_arp,
    gratuitous_arp_reply, parse_frame,
};

const MAC1: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const MAC2: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const IP1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const IP2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn arp_of(frame: &Frame) -> ArpPacket {
    match frame.message {
        Message::Arp(arp) => arp,
        other => panic!("not ARP: {other:?}"),
    }
}

#[test]
fn parses_a_linux_request() {
    let frame = parse_frame(&hex(LINUX_ARP_REQUEST)).unwrap();
    assert_eq!(frame.destination, MacAddr::BROADCAST);
    assert_eq!(frame.source, MAC1);
    assert_eq!(frame.vlan, None);
    let arp = arp_of(&frame);
    assert_eq!(
        arp,
        ArpPacket {
            operation: ArpOperation::Request,
            sender_mac: MAC1,
            sender_ip: IP1,
            target_mac: MacAddr::ZERO,
            target_ip: IP2,
        }
    );
    assert!(!arp.is_probe());
    assert!(!arp.is_gratuitous());
}

#[test]
fn parses_a_linux_reply() {
    let frame = parse_frame(&hex(LINUX_ARP_REPLY)).unwrap();
    assert_eq!(
        (frame.destination, frame.source, frame.vlan),
        (MAC1, MAC2, None)
    );
    assert_eq!(
        arp_of(&frame),
        ArpPacket {
            operation: ArpOperation::Reply,
            sender_mac: MAC2,
            sender_ip: IP2,
            target_mac: MAC1,
            target_ip: IP1,
        }
    );
}

#[test]
fn parses_linux_gratuitous_arp() {
    let arp = arp_of(&parse_frame(&hex(LINUX_GRATUITOUS_ARP)).unwrap());
    assert_eq!(arp.operation, ArpOperation::Request);
    assert!(arp.is_gratuitous());
    assert!(!arp.is_probe());
    assert_eq!((arp.sender_mac, arp.sender_ip), (MAC2, IP2));
}

#[test]
fn ignores_ethernet_padding() {
    let bare = parse_frame(&hex(LINUX_ARP_REQUEST)).unwrap();
    let mut bytes = padded(hex(LINUX_ARP_REQUEST));
    // Padding is supposed to be zero, but nothing may depend on it.
    bytes[50..].fill(0xa5);
    assert_eq!(parse_frame(&bytes).unwrap(), bare);
}

#[test]
fn parses_a_probe() {
    // An RFC 5227 probe for 192.0.2.2, as `arping -D` sends it.
    let frame = parse_frame(&hex("
        ffffffffffff 020000000001 0806
        0001 0800 06 04 0001
        020000000001 00000000
        000000000000 c0000202"))
    .unwrap();
    let arp = arp_of(&frame);
    assert!(arp.is_probe());
    assert_eq!(arp.sender_ip, Ipv4Addr::UNSPECIFIED);
    assert_eq!(arp.target_ip, IP2);
}

#[test]
fn reads_the_vlan_id_of_a_tagged_frame() {
    // LINUX_ARP_REQUEST with an 802.1Q tag: priority 7, DEI 0, VLAN 7.
    let frame = parse_frame(&hex("
        ffffffffffff 020000000001 8100 e007 0806
        0001 0800 06 04 0001
        020000000001 c0000201
        000000000000 c0000202"))
    .unwrap();
    assert_eq!(frame.vlan, Some(7));
    let untagged = parse_frame(&hex(LINUX_ARP_REQUEST)).unwrap();
    assert_eq!(frame.message, untagged.message);
}

#[test]
fn builds_the_same_reply_as_linux() {
    let request = arp_of(&parse_frame(&hex(LINUX_ARP_REQUEST)).unwrap());
    assert_eq!(
        arp_reply(&request, MAC2, None),
        padded(hex(LINUX_ARP_REPLY))
    );
}

#[test]
fn builds_a_tagged_reply() {
    let request = arp_of(&parse_frame(&hex(LINUX_ARP_REQUEST)).unwrap());
    let expected = padded(hex("
        020000000001 020000000002 8100 0064 0806
        0001 0800 06 04 0002
        020000000002 c0000202
        020000000001 c0000201"));
    assert_eq!(expected.len(), 60);
    assert_eq!(arp_reply(&request, MAC2, Some(100)), expected);
}

#[test]
fn answers_a_probe_to_the_unspecified_address() {
    let probe = ArpPacket {
        operation: ArpOperation::Request,
        sender_mac: MAC1,
        sender_ip: Ipv4Addr::UNSPECIFIED,
        target_mac: MacAddr::ZERO,
        target_ip: IP2,
    };
    let expected = padded(hex("
        020000000001 020000000002 0806
        0001 0800 06 04 0002
        020000000002 c0000202
        020000000001 00000000"));
    assert_eq!(arp_reply(&probe, MAC2, None), expected);
}

#[test]
fn builds_gratuitous_arp_in_request_form() {
    let expected = hex("
        ffffffffffff 020000000002 0806
        0001 0800 06 04 0001
        020000000002 c0000202
        ffffffffffff c0000202
        000000000000000000000000000000000000");
    assert_eq!(gratuitous_arp(MAC2, IP2), expected);
    let arp = arp_of(&parse_frame(&expected).unwrap());
    assert!(arp.is_gratuitous());
    assert_eq!(arp.operation, ArpOperation::Request);
}

#[test]
fn builds_gratuitous_arp_in_reply_form() {
    let expected = hex("
        ffffffffffff 020000000002 0806
        0001 0800 06 04 0002
        020000000002 c0000202
        ffffffffffff c0000202
        000000000000000000000000000000000000");
    assert_eq!(gratuitous_arp_reply(MAC2, IP2), expected);
}

#[test]
fn frames_round_trip() {
    for fixture in [LINUX_ARP_REQUEST, LINUX_ARP_REPLY, LINUX_GRATUITOUS_ARP] {
        let bytes = hex(fixture);
        let frame = parse_frame(&bytes).unwrap();
        assert_eq!(frame.to_bytes(), padded(bytes));
    }
}

#[test]
fn write_to_appends() {
    let frame = parse_frame(&hex(LINUX_ARP_REPLY)).unwrap();
    let mut buffer = vec![0xee];
    frame.write_to(&mut buffer);
    assert_eq!(buffer[0], 0xee);
    assert_eq!(buffer[1..], padded(hex(LINUX_ARP_REPLY))[..]);
}

#[test]
fn every_truncation_is_an_error() {
    assert_every_prefix_truncated(&hex(LINUX_ARP_REQUEST));
    assert_every_prefix_truncated(&hex("
        ffffffffffff 020000000001 8100 0007 0806
        0001 0800 06 04 0001
        020000000001 c0000201
        000000000000 c0000202"));
}
