//! The reply decision.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{LINUX_ARP_REPLY, LINUX_ARP_REQUEST, LINUX_DAD_NS, LINUX_NA, LINUX_NS, hex, padded};
use crate::l2::packet::{
    Answer, Frame, MacAddr, Message, answer, gratuitous_arp, parse_frame,
    unsolicited_neighbor_advertisement,
};

const REQUESTER: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const US: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const ARP_TARGET: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
const NS_TARGET: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));

fn frame(fixture: &str) -> Frame {
    parse_frame(&hex(fixture)).unwrap()
}

fn everything(_: IpAddr) -> bool {
    true
}

fn nothing(_: IpAddr) -> bool {
    false
}

#[test]
fn answers_an_arp_request_for_an_owned_address_like_linux() {
    let asked = RefCell::new(Vec::new());
    let owns = |ip| {
        asked.borrow_mut().push(ip);
        ip == ARP_TARGET
    };
    assert_eq!(
        answer(&frame(LINUX_ARP_REQUEST), US, owns),
        Answer::Reply(padded(hex(LINUX_ARP_REPLY)))
    );
    assert_eq!(asked.into_inner(), vec![ARP_TARGET]);
}

#[test]
fn leaves_requests_for_other_addresses() {
    assert_eq!(
        answer(&frame(LINUX_ARP_REQUEST), US, nothing),
        Answer::NotOurs
    );
    assert_eq!(answer(&frame(LINUX_NS), US, nothing), Answer::NotOurs);
    assert_eq!(answer(&frame(LINUX_DAD_NS), US, nothing), Answer::NotOurs);
}

#[test]
fn defends_owned_addresses_against_probes() {
    let probe = frame(
        "
        ffffffffffff 020000000001 0806
        0001 0800 06 04 0001
        020000000001 00000000
        000000000000 c0000202",
    );
    let expected = padded(hex("
        020000000001 020000000002 0806
        0001 0800 06 04 0002
        020000000002 c0000202
        020000000001 00000000"));
    assert_eq!(answer(&probe, US, everything), Answer::Reply(expected));
    assert_eq!(answer(&probe, US, nothing), Answer::NotOurs);
}

#[test]
fn defends_owned_addresses_against_dad() {
    let Answer::Reply(bytes) = answer(&frame(LINUX_DAD_NS), US, everything) else {
        panic!("DAD for an owned address must be answered");
    };
    let reply = parse_frame(&bytes).unwrap();
    assert_eq!(reply.destination, MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    let Message::NeighborAdvertisement(na) = reply.message else {
        panic!("not an advertisement");
    };
    assert_eq!(na.destination, "ff02::1".parse::<Ipv6Addr>().unwrap());
    assert!(!na.flags.solicited && na.flags.override_);
}

#[test]
fn answers_a_solicitation_like_linux() {
    let owns = |ip| ip == NS_TARGET;
    assert_eq!(
        answer(&frame(LINUX_NS), US, owns),
        Answer::Reply(hex(LINUX_NA))
    );
}

#[test]
fn replies_and_advertisements_are_not_questions() {
    assert_eq!(
        answer(&frame(LINUX_ARP_REPLY), US, everything),
        Answer::NotAQuestion
    );
    assert_eq!(
        answer(&frame(LINUX_NA), US, everything),
        Answer::NotAQuestion
    );
    let ours = parse_frame(&unsolicited_neighbor_advertisement(US, Ipv6Addr::LOCALHOST)).unwrap();
    assert_eq!(answer(&ours, US, everything), Answer::NotAQuestion);
}

#[test]
fn never_answers_our_own_frames() {
    // A packet socket sees our own gratuitous ARP go out: a request for an owned address.
    let own_garp = parse_frame(&gratuitous_arp(US, Ipv4Addr::new(192, 0, 2, 2))).unwrap();
    assert_eq!(answer(&own_garp, US, everything), Answer::FromUs);
    // The requests and solicitations of the node itself.
    assert_eq!(
        answer(&frame(LINUX_ARP_REQUEST), REQUESTER, everything),
        Answer::FromUs
    );
    assert_eq!(
        answer(&frame(LINUX_NS), REQUESTER, everything),
        Answer::FromUs
    );
    // Our MAC in the ARP body or the link-layer option alone is enough.
    let mut spoofed = frame(LINUX_ARP_REQUEST);
    spoofed.source = MacAddr([2, 0, 0, 0, 0, 7]);
    assert_eq!(answer(&spoofed, REQUESTER, everything), Answer::FromUs);
    let mut spoofed = frame(LINUX_NS);
    spoofed.source = MacAddr([2, 0, 0, 0, 0, 7]);
    assert_eq!(answer(&spoofed, REQUESTER, everything), Answer::FromUs);
}

#[test]
fn leaves_questions_sent_to_another_host() {
    // A unicast ARP request (a neighbor re-checking its cache) to some other MAC, seen in
    // promiscuous mode.
    let mut other = frame(LINUX_ARP_REQUEST);
    other.destination = MacAddr([2, 0, 0, 0, 0, 9]);
    assert_eq!(answer(&other, US, everything), Answer::NotOurs);
    other.destination = US;
    assert!(matches!(answer(&other, US, everything), Answer::Reply(_)));
}

#[test]
fn replies_on_the_question_vlan() {
    let tagged = frame(
        "
        ffffffffffff 020000000001 8100 0123 0806
        0001 0800 06 04 0001
        020000000001 c0000201
        000000000000 c0000202",
    );
    let Answer::Reply(bytes) = answer(&tagged, US, everything) else {
        panic!("expected a reply");
    };
    assert_eq!(parse_frame(&bytes).unwrap().vlan, Some(0x123));
    let mut ns = frame(LINUX_NS);
    ns.vlan = Some(4094);
    let Answer::Reply(bytes) = answer(&ns, US, everything) else {
        panic!("expected a reply");
    };
    assert_eq!(parse_frame(&bytes).unwrap().vlan, Some(4094));
}
