//! ARP for Ethernet and IPv4 (RFC 826), plus the gratuitous forms used to announce a
//! takeover (RFC 5227 §3, RFC 5944 §4.6).

use std::net::Ipv4Addr;

use super::error::{FrameError, Layer};
use super::ethernet::ETHERTYPE_IPV4;
use super::mac::MacAddr;
use super::wire::Reader;
use super::{Frame, Message};

/// Hardware type 1 (Ethernet), the only one we speak.
const HTYPE_ETHERNET: u16 = 1;

/// The ARP opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// 1: who-has.
    Request,
    /// 2: is-at.
    Reply,
}

impl ArpOperation {
    fn code(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpPacket {
    pub operation: ArpOperation,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// Size on the wire (without Ethernet header or padding).
    pub const LEN: usize = 28;

    /// An RFC 5227 probe: a request from 0.0.0.0, sent by a host checking that an address is
    /// free before using it.
    pub fn is_probe(&self) -> bool {
        self.operation == ArpOperation::Request && self.sender_ip.is_unspecified()
    }

    /// A gratuitous ARP / announcement: sender and target IP are the same.
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }
}

/// Parses the ARP packet after the Ethernet header. Bytes after the 28 (Ethernet padding)
/// are ignored.
pub(super) fn parse(payload: &[u8]) -> Result<ArpPacket, FrameError> {
    let mut r = Reader::new(payload, Layer::Arp);
    r.require(ArpPacket::LEN)?;
    let htype = r.u16()?;
    let ptype = r.u16()?;
    let hlen = r.u8()?;
    let plen = r.u8()?;
    let op = r.u16()?;
    if htype != HTYPE_ETHERNET {
        return Err(FrameError::ArpHardwareType(htype));
    }
    if ptype != ETHERTYPE_IPV4 {
        return Err(FrameError::ArpProtocolType(ptype));
    }
    if (hlen, plen) != (6, 4) {
        return Err(FrameError::ArpAddressLengths { hlen, plen });
    }
    let operation = match op {
        1 => ArpOperation::Request,
        2 => ArpOperation::Reply,
        other => return Err(FrameError::ArpOperation(other)),
    };
    Ok(ArpPacket {
        operation,
        sender_mac: r.mac()?,
        sender_ip: r.ipv4()?,
        target_mac: r.mac()?,
        target_ip: r.ipv4()?,
    })
}

/// Appends the 28 bytes of `arp`.
pub(super) fn write(out: &mut Vec<u8>, arp: &ArpPacket) {
    out.extend_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    out.extend_from_slice(&[6, 4]);
    out.extend_from_slice(&arp.operation.code().to_be_bytes());
    out.extend_from_slice(&arp.sender_mac.0);
    out.extend_from_slice(&arp.sender_ip.octets());
    out.extend_from_slice(&arp.target_mac.0);
    out.extend_from_slice(&arp.target_ip.octets());
}

/// The reply to `request`: "`request.target_ip` is at `our_mac`", unicast to the requester
/// (its ARP sender MAC, as Linux does) and tagged with `vlan` like the request was.
///
/// For a probe (sender IP 0.0.0.0) the reply's target IP is 0.0.0.0 too, which is what
/// Linux sends and what RFC 5227 prober implementations look for.
pub fn arp_reply(request: &ArpPacket, our_mac: MacAddr, vlan: Option<u16>) -> Vec<u8> {
    Frame {
        destination: request.sender_mac,
        source: our_mac,
        vlan,
        message: Message::Arp(ArpPacket {
            operation: ArpOperation::Reply,
            sender_mac: our_mac,
            sender_ip: request.target_ip,
            target_mac: request.sender_mac,
            target_ip: request.sender_ip,
        }),
    }
    .to_bytes()
}

/// A gratuitous ARP announcing that `ip` is now at `mac`, in the request form: a broadcast
/// ARP request with sender IP == target IP. This is the form keepalived sends on VRRP
/// takeover and the first of the two MetalLB sends (it follows with the reply form, see
/// [`gratuitous_arp_reply`]); every common stack updates an existing cache entry from it.
///
/// The target MAC is ff:ff:ff:ff:ff:ff as keepalived and MetalLB write it (RFC 5227 says
/// zero, Linux's own `arp_notify` uses zero; receivers ignore the field either way).
pub fn gratuitous_arp(mac: MacAddr, ip: Ipv4Addr) -> Vec<u8> {
    gratuitous(ArpOperation::Request, mac, ip)
}

/// The reply form of gratuitous ARP (RFC 5944 §4.6): a broadcast ARP reply with sender IP ==
/// target IP. Some old stacks only update their cache from replies, which is why MetalLB
/// sends this after [`gratuitous_arp`].
pub fn gratuitous_arp_reply(mac: MacAddr, ip: Ipv4Addr) -> Vec<u8> {
    gratuitous(ArpOperation::Reply, mac, ip)
}

fn gratuitous(operation: ArpOperation, mac: MacAddr, ip: Ipv4Addr) -> Vec<u8> {
    Frame {
        destination: MacAddr::BROADCAST,
        source: mac,
        vlan: None,
        message: Message::Arp(ArpPacket {
            operation,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: MacAddr::BROADCAST,
            target_ip: ip,
        }),
    }
    .to_bytes()
}
