//! IPv6 neighbor discovery (RFC 4861): neighbor solicitations and advertisements, the IPv6
//! counterpart of ARP request and reply, carried in ICMPv6.
//!
//! Parsing applies the receiver validity checks of RFC 4861 §7.1.1 and §7.1.2 (hop limit 255,
//! checksum, code 0, length, non-multicast target, option lengths, the DAD rules), so the
//! responder never answers a message the kernel itself would have dropped.

use std::net::Ipv6Addr;

use super::checksum::{icmpv6_checksum, same_checksum};
use super::error::{FrameError, Layer, Skipped};
use super::mac::MacAddr;
use super::wire::Reader;
use super::{Frame, Message};

/// IPv6 next header value of ICMPv6.
pub(super) const NEXT_HEADER_ICMPV6: u8 = 58;
const TYPE_NEIGHBOR_SOLICITATION: u8 = 135;
const TYPE_NEIGHBOR_ADVERTISEMENT: u8 = 136;
const OPTION_SOURCE_LINK_LAYER: u8 = 1;
const OPTION_TARGET_LINK_LAYER: u8 = 2;
/// The only hop limit NDP accepts: proof the message was not routed.
const HOP_LIMIT: u8 = 255;
const IPV6_HEADER_LEN: usize = 40;
/// Type, code, checksum, flags/reserved, target.
const FIXED_LEN: usize = 24;
/// A link-layer address option for Ethernet: type, length (1 = 8 bytes), MAC.
const LINK_LAYER_OPTION_LEN: usize = 8;
const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// ff02::1, all nodes on the link.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// "Who has `target`?" (ICMPv6 type 135).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NeighborSolicitation {
    /// IPv6 source; `::` during duplicate address detection.
    pub source: Ipv6Addr,
    /// IPv6 destination: the target's solicited-node multicast group, or the target itself
    /// when a neighbor re-checks a cached entry.
    pub destination: Ipv6Addr,
    pub target: Ipv6Addr,
    /// The source link-layer address option: the solicitor's MAC.
    pub source_mac: Option<MacAddr>,
}

impl NeighborSolicitation {
    /// Duplicate address detection (RFC 4862 §5.4): the solicitor has no address yet.
    pub fn is_dad(&self) -> bool {
        self.source.is_unspecified()
    }
}

/// "`target` is at `target_mac`" (ICMPv6 type 136).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NeighborAdvertisement {
    pub source: Ipv6Addr,
    pub destination: Ipv6Addr,
    pub target: Ipv6Addr,
    pub flags: NaFlags,
    /// The target link-layer address option.
    pub target_mac: Option<MacAddr>,
}

/// The three flags of a neighbor advertisement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NaFlags {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in response to a solicitation.
    pub solicited: bool,
    /// O: receivers should replace an existing cache entry (what makes takeover work).
    pub override_: bool,
}

impl NaFlags {
    fn from_byte(b: u8) -> Self {
        NaFlags {
            router: b & FLAG_ROUTER != 0,
            solicited: b & FLAG_SOLICITED != 0,
            override_: b & FLAG_OVERRIDE != 0,
        }
    }

    fn to_byte(self) -> u8 {
        let bit = |set: bool, flag: u8| if set { flag } else { 0 };
        bit(self.router, FLAG_ROUTER)
            | bit(self.solicited, FLAG_SOLICITED)
            | bit(self.override_, FLAG_OVERRIDE)
    }
}

/// The solicited-node multicast address of `addr` (RFC 4291 §2.7.1): ff02::1:ff00:0/104 plus
/// the low 24 bits of `addr`. Solicitations for `addr` go there, so the speaker must join it
/// (or its MAC, [`ipv6_multicast_mac`]) on the interface to hear them.
pub fn solicited_node_multicast(addr: Ipv6Addr) -> Ipv6Addr {
    let [.., a, b, c] = addr.octets();
    Ipv6Addr::from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, a, b, c])
}

/// The Ethernet MAC of an IPv6 multicast group (RFC 2464 §7): 33:33 plus its low 32 bits.
pub fn ipv6_multicast_mac(addr: Ipv6Addr) -> MacAddr {
    let [.., a, b, c, d] = addr.octets();
    MacAddr([0x33, 0x33, a, b, c, d])
}

fn is_solicited_node_multicast(addr: Ipv6Addr) -> bool {
    solicited_node_multicast(addr) == addr
}

/// IANA's IPv6 extension header numbers (hop-by-hop, routing, fragment, ESP, AH, destination
/// options, mobility, HIP, shim6, two experimental).
fn is_extension_header(next_header: u8) -> bool {
    matches!(
        next_header,
        0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254
    )
}

/// Parses the IPv6 packet after the Ethernet header. Anything after the declared payload
/// length (Ethernet padding) is ignored.
pub(super) fn parse(packet: &[u8]) -> Result<Message, FrameError> {
    let mut ip = Reader::new(packet, Layer::Ipv6);
    ip.require(IPV6_HEADER_LEN)?;
    let [version_class, ..] = ip.array::<4>()?;
    let payload_len = ip.u16()?;
    let next_header = ip.u8()?;
    let hop_limit = ip.u8()?;
    let source = ip.ipv6()?;
    let destination = ip.ipv6()?;
    let version = version_class >> 4;
    if version != 6 {
        return Err(FrameError::Ipv6Version(version));
    }
    if next_header != NEXT_HEADER_ICMPV6 {
        return Err(FrameError::NotArpOrNdp(
            if is_extension_header(next_header) {
                Skipped::Ipv6ExtensionHeader(next_header)
            } else {
                Skipped::Ipv6NextHeader(next_header)
            },
        ));
    }
    let message = ip.take(usize::from(payload_len))?;
    let mut icmp = Reader::new(message, Layer::Icmpv6);
    let icmp_type = icmp.u8()?;
    // Decided before the checksum so the many other ICMPv6 messages stay cheap to skip.
    if icmp_type != TYPE_NEIGHBOR_SOLICITATION && icmp_type != TYPE_NEIGHBOR_ADVERTISEMENT {
        return Err(FrameError::NotArpOrNdp(Skipped::Icmpv6Type(icmp_type)));
    }
    if hop_limit != HOP_LIMIT {
        return Err(FrameError::HopLimit(hop_limit));
    }
    icmp.require(FIXED_LEN - 1)?;
    let code = icmp.u8()?;
    let received = icmp.u16()?;
    let computed = icmpv6_checksum(source, destination, message);
    if !same_checksum(received, computed) {
        return Err(FrameError::Checksum { received, computed });
    }
    if code != 0 {
        return Err(FrameError::Icmpv6Code { icmp_type, code });
    }
    // Multicast is never a valid source (RFC 4291 §2.7); answering one would send a unicast
    // reply to a group.
    if source.is_multicast() {
        return Err(FrameError::MulticastSource(source));
    }
    let [flags, ..] = icmp.array::<4>()?;
    let target = icmp.ipv6()?;
    if target.is_multicast() {
        return Err(FrameError::MulticastTarget(target));
    }
    let options = icmp.rest();
    if icmp_type == TYPE_NEIGHBOR_SOLICITATION {
        let source_mac = link_layer_option(options, OPTION_SOURCE_LINK_LAYER)?;
        if source.is_unspecified() {
            if !is_solicited_node_multicast(destination) {
                return Err(FrameError::DadNotToSolicitedNode(destination));
            }
            if source_mac.is_some() {
                return Err(FrameError::DadWithSourceLinkLayer);
            }
        }
        Ok(Message::NeighborSolicitation(NeighborSolicitation {
            source,
            destination,
            target,
            source_mac,
        }))
    } else {
        let flags = NaFlags::from_byte(flags);
        if destination.is_multicast() && flags.solicited {
            return Err(FrameError::SolicitedToMulticast(destination));
        }
        Ok(Message::NeighborAdvertisement(NeighborAdvertisement {
            source,
            destination,
            target,
            flags,
            target_mac: link_layer_option(options, OPTION_TARGET_LINK_LAYER)?,
        }))
    }
}

/// Walks the options (type, length in units of 8 bytes, body), checking every option's
/// length, and returns the MAC of the first link-layer address option of `wanted` type.
/// Later duplicates and unknown options are ignored, as RFC 4861 §4.6 and Linux do.
fn link_layer_option(options: &[u8], wanted: u8) -> Result<Option<MacAddr>, FrameError> {
    let mut found = None;
    let mut rest = options;
    while !rest.is_empty() {
        let offset = FIXED_LEN.saturating_add(options.len().saturating_sub(rest.len()));
        let mut option = Reader::new(rest, Layer::NdpOption);
        let [option_type, length] = option.array::<2>()?;
        if length == 0 {
            return Err(FrameError::ZeroLengthOption {
                option_type,
                offset,
            });
        }
        // The length counts the two header bytes too; at most 255 * 8, so no overflow.
        let mut body = Reader::new(option.take(usize::from(length) * 8 - 2)?, Layer::NdpOption);
        rest = option.rest();
        if option_type == wanted && found.is_none() {
            if usize::from(length) * 8 != LINK_LAYER_OPTION_LEN {
                return Err(FrameError::LinkLayerOptionLength {
                    option_type,
                    length,
                });
            }
            found = Some(body.mac()?);
        }
    }
    Ok(found)
}

/// Appends an IPv6 header and an NDP message with a correct checksum and hop limit 255.
fn write(
    out: &mut Vec<u8>,
    source: Ipv6Addr,
    destination: Ipv6Addr,
    icmp_type: u8,
    flags: u8,
    target: Ipv6Addr,
    option: Option<(u8, MacAddr)>,
) {
    let icmp_len: u16 = if option.is_some() { 32 } else { 24 };
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&icmp_len.to_be_bytes());
    out.extend_from_slice(&[NEXT_HEADER_ICMPV6, HOP_LIMIT]);
    out.extend_from_slice(&source.octets());
    out.extend_from_slice(&destination.octets());
    let start = out.len();
    out.extend_from_slice(&[icmp_type, 0, 0, 0, flags, 0, 0, 0]);
    out.extend_from_slice(&target.octets());
    if let Some((option_type, mac)) = option {
        out.extend_from_slice(&[option_type, 1]);
        out.extend_from_slice(&mac.0);
    }
    let checksum = icmpv6_checksum(source, destination, out.get(start..).unwrap_or_default());
    if let Some(field) = out.get_mut(start + 2..start + 4) {
        field.copy_from_slice(&checksum.to_be_bytes());
    }
}

pub(super) fn write_solicitation(out: &mut Vec<u8>, ns: &NeighborSolicitation) {
    let option = ns.source_mac.map(|mac| (OPTION_SOURCE_LINK_LAYER, mac));
    write(
        out,
        ns.source,
        ns.destination,
        TYPE_NEIGHBOR_SOLICITATION,
        0,
        ns.target,
        option,
    );
}

pub(super) fn write_advertisement(out: &mut Vec<u8>, na: &NeighborAdvertisement) {
    let option = na.target_mac.map(|mac| (OPTION_TARGET_LINK_LAYER, mac));
    write(
        out,
        na.source,
        na.destination,
        TYPE_NEIGHBOR_ADVERTISEMENT,
        na.flags.to_byte(),
        na.target,
        option,
    );
}

/// The advertisement answering `solicitation` for an address we own: "`target` is at
/// `our_mac`", from the target address itself (it is not configured on any interface, so
/// there is no better source), with Override set and hop limit 255, tagged with `vlan`.
///
/// Sent unicast, Solicited set, to the solicitor: its IPv6 source, at the MAC in its source
/// link-layer option or, when it sent none (a unicast re-check may omit it),
/// `solicitor_mac`, the Ethernet source of the solicitation. A DAD solicitation (from `::`)
/// is answered to ff02::1 with Solicited clear, as RFC 4861 §7.2.4 requires.
pub fn neighbor_advertisement(
    solicitation: &NeighborSolicitation,
    solicitor_mac: MacAddr,
    our_mac: MacAddr,
    vlan: Option<u16>,
) -> Vec<u8> {
    let (destination, destination_mac, solicited) = if solicitation.is_dad() {
        (ALL_NODES, ipv6_multicast_mac(ALL_NODES), false)
    } else {
        let mac = solicitation.source_mac.unwrap_or(solicitor_mac);
        (solicitation.source, mac, true)
    };
    advertisement(
        destination_mac,
        our_mac,
        vlan,
        destination,
        solicitation.target,
        solicited,
    )
}

/// The unsolicited advertisement sent on takeover (RFC 4861 §7.2.6): to ff02::1, Override
/// set so neighbors replace the previous owner's MAC, Solicited clear.
pub fn unsolicited_neighbor_advertisement(mac: MacAddr, ip: Ipv6Addr) -> Vec<u8> {
    advertisement(
        ipv6_multicast_mac(ALL_NODES),
        mac,
        None,
        ALL_NODES,
        ip,
        false,
    )
}

fn advertisement(
    destination_mac: MacAddr,
    our_mac: MacAddr,
    vlan: Option<u16>,
    destination: Ipv6Addr,
    target: Ipv6Addr,
    solicited: bool,
) -> Vec<u8> {
    Frame {
        destination: destination_mac,
        source: our_mac,
        vlan,
        message: Message::NeighborAdvertisement(NeighborAdvertisement {
            source: target,
            destination,
            target,
            flags: NaFlags {
                router: false,
                solicited,
                override_: true,
            },
            target_mac: Some(our_mac),
        }),
    }
    .to_bytes()
}
