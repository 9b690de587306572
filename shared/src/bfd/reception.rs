//! Reception of BFD Control packets, before any session sees them: the ports and the TTL
//! rule of single-hop (RFC 5881) and multi-hop (RFC 5883) sessions.
//!
//! A single-hop session runs between neighbors on one link, so every packet of it is sent
//! with TTL (IPv4) or Hop Limit (IPv6) 255, and a router forwarding it would have lowered
//! that. RFC 5881 §5: without authentication (FerroLB never uses it, see [`super::packet`]),
//! "all received BFD Control packets that are demultiplexed to the session MUST be discarded
//! if the received TTL or Hop Limit is not equal to 255". That is what makes a forged packet
//! from off the link (say, a Down that would tear a BGP session down) harmless: nobody
//! further away can make one arrive with 255.
//!
//! A multi-hop session (RFC 5883, for `ebgpMultiHop` peers) crosses routers by design, so it
//! has a port of its own and a weaker rule: packets are still sent with 255, and the receiver
//! accepts the TTL of the configured number of hops (§5), `BFDProfile.minimumTtl` (254 by
//! default: one router in between, as MetalLB).
//!
//! The driver asks the kernel for each datagram's TTL (`IP_RECVTTL`, `IPV6_RECVHOPLIMIT`)
//! and hands it here with the bytes.

use super::packet::{ControlPacket, PacketError};
use ipnet::IpNet;
use std::net::IpAddr;

/// The only TTL / Hop Limit a single-hop packet may arrive with, and what we send with.
pub const REQUIRED_TTL: u8 = 255;

/// Whether a session is with a neighbor on the link or further away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hops {
    /// RFC 5881: UDP port 3784, received TTL must be 255.
    Single,
    /// RFC 5883: UDP port 4784, received TTL at least `min_ttl`.
    Multi { min_ttl: u8 },
}

impl Hops {
    /// The destination port of Control packets.
    pub fn port(self) -> u16 {
        match self {
            Hops::Single => 3784,
            Hops::Multi { .. } => 4784,
        }
    }

    /// The lowest TTL / Hop Limit a packet of the session may arrive with.
    pub fn min_ttl(self) -> u8 {
        match self {
            Hops::Single => REQUIRED_TTL,
            Hops::Multi { min_ttl } => min_ttl,
        }
    }
}

/// The kind of BFD session a BGP peer gets, as FRR decides it: multi-hop for an eBGP
/// multi-hop peer and for an iBGP peer that is not on a network we share (a route reflector,
/// a loopback), single hop otherwise. `min_ttl` is the profile's `minimumTtl`.
pub fn hops_for(ebgp_multihop: bool, ibgp: bool, on_link: bool, min_ttl: u8) -> Hops {
    if ebgp_multihop || (ibgp && !on_link) {
        Hops::Multi { min_ttl }
    } else {
        Hops::Single
    }
}

/// Whether `peer` is on a network we share: one of the node's `networks` (its interface
/// addresses with their prefix lengths) holds both our `local` address and the peer's.
pub fn on_link(local: IpAddr, peer: IpAddr, networks: &[IpNet]) -> bool {
    let (local, peer) = (local.to_canonical(), peer.to_canonical());
    networks
        .iter()
        .any(|n| n.contains(&local) && n.contains(&peer))
}

/// Why a received datagram was dropped before reaching a session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// It crossed a router (more routers, for multi-hop), or the kernel did not say: without
    /// the TTL the packet cannot be shown to come from near enough, so it is not trusted.
    #[error("BFD packet with TTL {0:?}, below the session's minimum")]
    Ttl(Option<u8>),
    /// Not a valid Control packet.
    #[error(transparent)]
    Malformed(#[from] PacketError),
}

impl Discard {
    /// A short label for metrics (bounded: one per variant).
    pub fn reason(&self) -> &'static str {
        match self {
            Discard::Ttl(_) => "ttl",
            Discard::Malformed(_) => "malformed",
        }
    }
}

/// The Control packet in `bytes`, if it is well formed and arrived with a `ttl` the session
/// accepts (255 single hop, the minimum multi-hop). The TTL is checked first: a packet from
/// too far away is dropped whatever it holds.
pub fn accept(bytes: &[u8], ttl: Option<u8>, hops: Hops) -> Result<ControlPacket, Discard> {
    if ttl.is_none_or(|t| t < hops.min_ttl()) {
        return Err(Discard::Ttl(ttl));
    }
    Ok(ControlPacket::parse(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfd::packet::State;
    use std::num::NonZeroU32;

    fn down_packet() -> Vec<u8> {
        let packet = ControlPacket {
            diag: crate::bfd::packet::Diag::NoDiagnostic,
            state: State::Down,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: std::num::NonZeroU8::MIN,
            my_discriminator: NonZeroU32::MIN,
            your_discriminator: None,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 1_000_000,
            required_min_echo_rx_us: 0,
        };
        packet.to_bytes().to_vec()
    }

    #[test]
    fn single_hop_accepts_only_ttl_255() {
        let bytes = down_packet();
        let ok = accept(&bytes, Some(255), Hops::Single).unwrap();
        assert_eq!(ok.state, State::Down);
        for ttl in [Some(254), Some(1), Some(0), Some(64), None] {
            let got = accept(&bytes, ttl, Hops::Single);
            assert_eq!(got, Err(Discard::Ttl(ttl)), "{ttl:?}");
        }
        assert_eq!(Discard::Ttl(Some(254)).reason(), "ttl");
    }

    #[test]
    fn multi_hop_accepts_its_minimum_and_above() {
        let bytes = down_packet();
        let hops = Hops::Multi { min_ttl: 254 };
        for ttl in [255, 254] {
            assert!(accept(&bytes, Some(ttl), hops).is_ok(), "{ttl}");
        }
        for ttl in [Some(253), Some(1), None] {
            assert_eq!(accept(&bytes, ttl, hops), Err(Discard::Ttl(ttl)), "{ttl:?}");
        }
        let far = Hops::Multi { min_ttl: 1 };
        assert!(accept(&bytes, Some(1), far).is_ok());
        assert_eq!((Hops::Single.port(), hops.port()), (3784, 4784));
    }

    #[test]
    fn multi_hop_for_ebgp_multihop_and_for_ibgp_off_the_link() {
        let multi = Hops::Multi { min_ttl: 200 };
        assert_eq!(
            hops_for(false, false, true, 200),
            Hops::Single,
            "eBGP on the link"
        );
        // Single-hop eBGP off the link cannot form a session at all (TTL 1): single hop
        // BFD says so rather than guessing.
        assert_eq!(hops_for(false, false, false, 200), Hops::Single);
        assert_eq!(hops_for(true, false, true, 200), multi, "eBGP multi-hop");
        assert_eq!(
            hops_for(false, true, true, 200),
            Hops::Single,
            "iBGP on the link"
        );
        assert_eq!(
            hops_for(false, true, false, 200),
            multi,
            "iBGP off the link"
        );
    }

    #[test]
    fn on_link_needs_one_network_holding_both_addresses() {
        let nets: Vec<IpNet> = ["10.100.0.11/24", "fd00:100::11/64", "127.0.0.1/8"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(on_link(ip("10.100.0.11"), ip("10.100.0.1"), &nets));
        assert!(on_link(ip("fd00:100::11"), ip("fd00:100::1"), &nets));
        assert!(!on_link(ip("10.100.0.11"), ip("10.255.255.1"), &nets));
        // Both addresses must be in the same network, not each in one.
        assert!(!on_link(ip("10.100.0.11"), ip("127.0.0.2"), &nets));
        // An IPv4-mapped peer address (from a dual-stack socket) is its IPv4 address.
        assert!(on_link(ip("10.100.0.11"), ip("::ffff:10.100.0.1"), &nets));
    }

    #[test]
    fn a_malformed_packet_at_255_is_malformed_and_at_254_is_off_link() {
        let garbage = [0u8; 7];
        for hops in [Hops::Single, Hops::Multi { min_ttl: 1 }] {
            let e = accept(&garbage, Some(255), hops).unwrap_err();
            assert!(matches!(e, Discard::Malformed(_)), "{e:?}");
            assert_eq!(e.reason(), "malformed");
        }
        let e = accept(&garbage, Some(254), Hops::Single);
        assert_eq!(e, Err(Discard::Ttl(Some(254))));
    }
}
