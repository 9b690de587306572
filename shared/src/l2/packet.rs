//! The ARP and NDP frames of layer 2 mode: a pure codec, no sockets.
//!
//! LoadBalancer IPs are not configured on any interface, so the kernel never answers for
//! them; the speaker does. It reads every Ethernet frame from a packet socket, hands it to
//! [`parse_frame`], asks [`answer`] whether this node should reply, and sends the bytes it
//! gets back. On takeover it sends [`gratuitous_arp`] and
//! [`unsolicited_neighbor_advertisement`] so neighbors forget the previous owner's MAC.
//!
//! Input is untrusted: every length is checked, nothing indexes or unwraps input-derived
//! data, and the `l2_frames` fuzz target holds the parser and [`answer`] to that. Parsing
//! returns [`FrameError::NotArpOrNdp`] early for the bulk of traffic (other ethertypes, IPv6
//! that is not a solicitation or advertisement) without computing checksums; the other
//! errors mean a malformed or RFC-violating ARP/NDP frame.
//!
//! Layout: `ethernet.rs` (framing, 802.1Q), `arp.rs`, `ndp.rs` (solicitations,
//! advertisements, multicast helpers), `checksum.rs` (ICMPv6), `answer.rs` (the reply
//! decision), `mac.rs` (the address type), `wire.rs` (checked reads), `error.rs`.

mod answer;
mod arp;
mod checksum;
mod error;
mod ethernet;
mod mac;
mod ndp;
mod wire;

#[cfg(test)]
mod tests;

pub use answer::{Answer, answer};
pub use arp::{ArpOperation, ArpPacket, arp_reply, gratuitous_arp, gratuitous_arp_reply};
pub use checksum::icmpv6_checksum;
pub use error::{FrameError, Layer, Skipped};
pub use ethernet::{ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN};
pub use mac::{MacAddr, ParseMacAddrError};
pub use ndp::{
    ALL_NODES, NaFlags, NeighborAdvertisement, NeighborSolicitation, ipv6_multicast_mac,
    neighbor_advertisement, solicited_node_multicast, unsolicited_neighbor_advertisement,
};

/// A parsed ARP or NDP frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Ethernet destination.
    pub destination: MacAddr,
    /// Ethernet source.
    pub source: MacAddr,
    /// The VLAN id of an 802.1Q tag, if the frame carried one inline.
    pub vlan: Option<u16>,
    pub message: Message,
}

/// What the frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    Arp(ArpPacket),
    NeighborSolicitation(NeighborSolicitation),
    NeighborAdvertisement(NeighborAdvertisement),
}

/// Parses an Ethernet II frame (FCS excluded, as packet sockets deliver it) with at most one
/// 802.1Q tag. Trailing bytes after the ARP packet or the IPv6 payload (Ethernet padding)
/// are ignored; unknown NDP options are skipped.
pub fn parse_frame(frame: &[u8]) -> Result<Frame, FrameError> {
    let header = ethernet::parse(frame)?;
    let message = if header.ethertype == ETHERTYPE_ARP {
        Message::Arp(arp::parse(header.payload)?)
    } else {
        ndp::parse(header.payload)?
    };
    Ok(Frame {
        destination: header.destination,
        source: header.source,
        vlan: header.vlan,
        message,
    })
}

impl Frame {
    /// Encodes the frame, padded with zeros to the 60-byte Ethernet minimum. NDP messages
    /// get hop limit 255 and a correct checksum.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        self.write_to(&mut out);
        out
    }

    /// Appends the encoded frame to `out` (so a driver can reuse one buffer).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let ethertype = match self.message {
            Message::Arp(_) => ETHERTYPE_ARP,
            _ => ETHERTYPE_IPV6,
        };
        ethernet::write_header(out, self.destination, self.source, self.vlan, ethertype);
        match &self.message {
            Message::Arp(packet) => arp::write(out, packet),
            Message::NeighborSolicitation(ns) => ndp::write_solicitation(out, ns),
            Message::NeighborAdvertisement(na) => ndp::write_advertisement(out, na),
        }
        let min_end = start + ethernet::MIN_FRAME_LEN;
        if out.len() < min_end {
            out.resize(min_end, 0);
        }
    }
}
