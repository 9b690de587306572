//! Ethernet II framing with at most one 802.1Q tag.
//!
//! Note for the driver: on Linux a packet socket usually receives VLAN-tagged frames with the
//! tag already stripped by the NIC or veth (it travels in `PACKET_AUXDATA` instead), so an
//! inline tag is only seen when VLAN offload is off. Either way, a reply leaves with the same
//! tag the question had.

use super::error::{FrameError, Layer, Skipped};
use super::mac::MacAddr;
use super::wire::Reader;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// The 802.1Q tag protocol identifier.
pub const ETHERTYPE_VLAN: u16 = 0x8100;

/// Destination + source + ethertype.
pub(super) const HEADER_LEN: usize = 14;
/// The shortest Ethernet frame, FCS excluded. We pad what we build to this length: most NICs
/// pad in hardware, but a few drivers and virtual switches drop runts, and padding costs
/// nothing (mdlayher/ethernet, used by MetalLB, does the same).
pub(super) const MIN_FRAME_LEN: usize = 60;

/// The link-layer part of a frame, and the bytes it carries.
pub(super) struct Header<'a> {
    pub destination: MacAddr,
    pub source: MacAddr,
    pub vlan: Option<u16>,
    pub ethertype: u16,
    pub payload: &'a [u8],
}

/// Reads the Ethernet header. Only the ethertypes the responder cares about get past this
/// (the cheap "not for us" check); everything else is [`Skipped::EtherType`].
pub(super) fn parse(frame: &[u8]) -> Result<Header<'_>, FrameError> {
    let mut r = Reader::new(frame, Layer::Ethernet);
    r.require(HEADER_LEN)?;
    let destination = r.mac()?;
    let source = r.mac()?;
    let mut ethertype = r.u16()?;
    let mut vlan = None;
    if ethertype == ETHERTYPE_VLAN {
        let mut tag = Reader::new(r.rest(), Layer::Vlan);
        tag.require(4)?;
        // Tag control information: priority (3 bits), drop eligible (1), VLAN id (12).
        vlan = Some(tag.u16()? & 0x0fff);
        ethertype = tag.u16()?;
        r = tag;
    }
    match ethertype {
        ETHERTYPE_ARP | ETHERTYPE_IPV6 => Ok(Header {
            destination,
            source,
            vlan,
            ethertype,
            payload: r.rest(),
        }),
        other => Err(FrameError::NotArpOrNdp(Skipped::EtherType(other))),
    }
}

/// Appends an Ethernet header (with an 802.1Q tag, priority 0, when `vlan` is set; only the
/// low 12 bits of `vlan` are used).
pub(super) fn write_header(
    out: &mut Vec<u8>,
    destination: MacAddr,
    source: MacAddr,
    vlan: Option<u16>,
    ethertype: u16,
) {
    out.extend_from_slice(&destination.0);
    out.extend_from_slice(&source.0);
    if let Some(id) = vlan {
        out.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        out.extend_from_slice(&(id & 0x0fff).to_be_bytes());
    }
    out.extend_from_slice(&ethertype.to_be_bytes());
}
