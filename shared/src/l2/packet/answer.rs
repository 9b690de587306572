//! The responder's decision: given a parsed frame, should this node answer, and with what.
//!
//! Pure so the driver stays a thin loop (read frame, parse, `answer`, send) and every rule
//! below is unit-tested without a socket.

use std::net::IpAddr;

use super::arp::{ArpOperation, arp_reply};
use super::mac::MacAddr;
use super::ndp::neighbor_advertisement;
use super::{Frame, Message};

/// What to do with a received frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Send these bytes (a complete Ethernet frame) out of the interface the question came in
    /// on.
    Reply(Vec<u8>),
    /// A question, but not one for us: about an address this node does not own right now, or
    /// sent to another host's MAC (seen only when the interface is promiscuous).
    NotOurs,
    /// Not a question: an ARP reply or a neighbor advertisement. Nothing to answer (a
    /// conflicting claim for one of our addresses is the election's business, not ours).
    NotAQuestion,
    /// Sent by this node: a packet socket also sees our own outgoing frames (including our
    /// gratuitous ARP requests), and answering them would loop.
    FromUs,
}

/// Decides whether to answer `frame`, given this interface's MAC and whether this node owns
/// an address right now.
///
/// We answer ARP requests and neighbor solicitations whose target we own, including RFC 5227
/// ARP probes (sender IP 0.0.0.0) and DAD solicitations (source `::`): another host probing
/// one of our LoadBalancer IPs is about to take it, and the answer is what tells it the
/// address is in use (address conflict defence; Linux answers probes for its own addresses
/// the same way). For the same reason a gratuitous ARP request from another host for one of
/// our addresses is answered, as Linux does. Probes for addresses we do not own are left
/// alone like any other request.
pub fn answer(frame: &Frame, our_mac: MacAddr, owns: impl Fn(IpAddr) -> bool) -> Answer {
    // Broadcast, multicast (solicited-node groups) or us; anything else was meant for
    // another host.
    let to_us = frame.destination.is_multicast() || frame.destination == our_mac;
    match &frame.message {
        Message::Arp(arp) => {
            if arp.operation != ArpOperation::Request {
                return Answer::NotAQuestion;
            }
            if arp.sender_mac == our_mac || frame.source == our_mac {
                return Answer::FromUs;
            }
            if !to_us || !owns(IpAddr::V4(arp.target_ip)) {
                return Answer::NotOurs;
            }
            Answer::Reply(arp_reply(arp, our_mac, frame.vlan))
        }
        Message::NeighborSolicitation(ns) => {
            if ns.source_mac == Some(our_mac) || frame.source == our_mac {
                return Answer::FromUs;
            }
            if !to_us || !owns(IpAddr::V6(ns.target)) {
                return Answer::NotOurs;
            }
            Answer::Reply(neighbor_advertisement(
                ns,
                frame.source,
                our_mac,
                frame.vlan,
            ))
        }
        Message::NeighborAdvertisement(_) => Answer::NotAQuestion,
    }
}
