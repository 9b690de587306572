//! Why a received frame was not turned into a [`Frame`](super::Frame).
//!
//! Two kinds of outcome share the one enum so the driver has a single `match`:
//! [`FrameError::NotArpOrNdp`] is the everyday "not for us" (most frames on a LAN) and is
//! decided from a couple of header fields; every other variant means the frame claimed to be
//! ARP or NDP but is malformed or breaks an RFC rule, which is worth a counter and maybe a log.

use std::fmt;
use std::net::Ipv6Addr;

/// A parse failure, carrying the offending value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not ARP and not an IPv6 neighbor solicitation/advertisement: nothing for the
    /// responder. Cheap to reach (no checksum is computed) and not a sign of a problem.
    #[error("not ARP or NDP: {0}")]
    NotArpOrNdp(Skipped),

    /// The frame ends before a header or field it needs.
    #[error("{layer} truncated: need {needed} bytes, have {available}")]
    Truncated {
        layer: Layer,
        needed: usize,
        available: usize,
    },

    /// ARP for a hardware type other than Ethernet (1).
    #[error("ARP hardware type {0} is not Ethernet (1)")]
    ArpHardwareType(u16),

    /// ARP for a protocol other than IPv4 (0x0800).
    #[error("ARP protocol type {0:#06x} is not IPv4 (0x0800)")]
    ArpProtocolType(u16),

    /// ARP address lengths other than 6 (MAC) and 4 (IPv4).
    #[error("ARP address lengths hlen={hlen} plen={plen}, expected 6 and 4")]
    ArpAddressLengths { hlen: u8, plen: u8 },

    /// An ARP opcode other than request (1) or reply (2), e.g. RARP or InARP.
    #[error("ARP operation {0} is neither request (1) nor reply (2)")]
    ArpOperation(u16),

    /// Ethertype 0x86DD but the IP version nibble is not 6.
    #[error("IP version {0} in an IPv6 frame")]
    Ipv6Version(u8),

    /// RFC 4861 §7.1.1/§7.1.2: NDP must arrive with hop limit 255, which proves it was not
    /// forwarded by a router (i.e. it comes from the local link).
    #[error("NDP hop limit {0}, must be 255")]
    HopLimit(u8),

    /// The ICMPv6 checksum (over the IPv6 pseudo-header) does not match.
    #[error("ICMPv6 checksum {received:#06x} is wrong, computed {computed:#06x}")]
    Checksum { received: u16, computed: u16 },

    /// RFC 4861: the ICMP code of a solicitation or advertisement must be 0.
    #[error("ICMPv6 type {icmp_type} with code {code}, must be 0")]
    Icmpv6Code { icmp_type: u8, code: u8 },

    /// An NDP message from a multicast IPv6 source (never valid, RFC 4291 §2.7).
    #[error("NDP message from multicast source {0}")]
    MulticastSource(Ipv6Addr),

    /// RFC 4861: the target address must not be a multicast address.
    #[error("NDP target {0} is a multicast address")]
    MulticastTarget(Ipv6Addr),

    /// RFC 4861 §4.6: an option with length 0 is invalid (and would loop forever).
    #[error("NDP option type {option_type} at ICMPv6 offset {offset} has length 0")]
    ZeroLengthOption { option_type: u8, offset: usize },

    /// A link-layer address option that is not 8 bytes (one 6-byte MAC plus type and length),
    /// the only size for Ethernet (RFC 2464 §6).
    #[error(
        "NDP link-layer address option (type {option_type}) has length {length} (x8 bytes), expected 1"
    )]
    LinkLayerOptionLength { option_type: u8, length: u8 },

    /// RFC 4861 §7.1.1: a solicitation from the unspecified address (duplicate address
    /// detection) must be sent to a solicited-node multicast address.
    #[error("NDP solicitation from :: sent to {0}, not to a solicited-node multicast address")]
    DadNotToSolicitedNode(Ipv6Addr),

    /// RFC 4861 §7.1.1: a solicitation from the unspecified address must not carry a source
    /// link-layer address option.
    #[error("NDP solicitation from :: carries a source link-layer address option")]
    DadWithSourceLinkLayer,

    /// RFC 4861 §7.1.2: an advertisement sent to a multicast address must have the Solicited
    /// flag clear.
    #[error("NDP advertisement to multicast {0} has the Solicited flag set")]
    SolicitedToMulticast(Ipv6Addr),
}

impl FrameError {
    /// Whether this is the ordinary "not for the responder" outcome rather than a malformed
    /// or rule-breaking ARP/NDP frame.
    pub fn is_not_for_us(&self) -> bool {
        matches!(self, FrameError::NotArpOrNdp(_))
    }
}

/// Which part of the frame was cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// The 14-byte Ethernet II header.
    Ethernet,
    /// The 4 bytes of an 802.1Q tag.
    Vlan,
    /// The 28-byte Ethernet/IPv4 ARP packet.
    Arp,
    /// The 40-byte IPv6 header, or its payload length running past the frame.
    Ipv6,
    /// The fixed 24 bytes of a solicitation or advertisement.
    Icmpv6,
    /// An NDP option's header or body.
    NdpOption,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet header",
            Layer::Vlan => "802.1Q tag",
            Layer::Arp => "ARP packet",
            Layer::Ipv6 => "IPv6 packet",
            Layer::Icmpv6 => "ICMPv6 message",
            Layer::NdpOption => "NDP option",
        })
    }
}

/// Why a frame is not ARP or NDP; the first field that said so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// An ethertype other than ARP, IPv6 or one 802.1Q tag (values below 0x0600 are 802.3
    /// lengths; a second tag, i.e. QinQ, lands here too).
    EtherType(u16),
    /// IPv6 carrying something other than ICMPv6 directly.
    Ipv6NextHeader(u8),
    /// IPv6 with an extension header before the payload. Neighbor discovery never needs one
    /// (RFC 6980 even forbids fragmenting it) and we do not walk the chain; this is mostly
    /// MLD reports, which carry a hop-by-hop Router Alert.
    Ipv6ExtensionHeader(u8),
    /// ICMPv6 other than types 135 and 136 (echo, router discovery, errors, MLD...).
    Icmpv6Type(u8),
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skipped::EtherType(t) => write!(f, "ethertype {t:#06x}"),
            Skipped::Ipv6NextHeader(n) => write!(f, "IPv6 next header {n}"),
            Skipped::Ipv6ExtensionHeader(n) => write!(f, "IPv6 extension header {n}"),
            Skipped::Icmpv6Type(t) => write!(f, "ICMPv6 type {t}"),
        }
    }
}
