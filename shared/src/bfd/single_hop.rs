//! Reception of single-hop BFD Control packets (RFC 5881 §5), before any session sees them.
//!
//! A single-hop session runs between neighbors on one link, so every packet of it is sent
//! with TTL (IPv4) or Hop Limit (IPv6) 255, and a router forwarding it would have lowered
//! that. RFC 5881 §5: without authentication (FerroLB never uses it, see [`super::packet`]),
//! "all received BFD Control packets that are demultiplexed to the session MUST be discarded
//! if the received TTL or Hop Limit is not equal to 255". That is what makes a forged packet
//! from off the link (say, a Down that would tear a BGP session down) harmless: nobody
//! further away can make one arrive with 255.
//!
//! The driver asks the kernel for each datagram's TTL (`IP_RECVTTL`, `IPV6_RECVHOPLIMIT`)
//! and hands it here with the bytes.

use super::packet::{ControlPacket, PacketError};

/// The only TTL / Hop Limit a single-hop packet may arrive with.
pub const REQUIRED_TTL: u8 = 255;

/// Why a received datagram was dropped before reaching a session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// It crossed a router (or the kernel did not say: without the TTL the packet cannot be
    /// shown to come from the link, so it is not trusted).
    #[error("BFD packet with TTL {0:?}, single hop requires 255")]
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

/// The Control packet in `bytes`, if it arrived with `ttl` 255 and is well formed. The TTL is
/// checked first: a packet from off the link is dropped whatever it holds.
pub fn accept(bytes: &[u8], ttl: Option<u8>) -> Result<ControlPacket, Discard> {
    if ttl != Some(REQUIRED_TTL) {
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
    fn only_ttl_255_is_accepted() {
        let bytes = down_packet();
        let ok = accept(&bytes, Some(255)).unwrap();
        assert_eq!(ok.state, State::Down);
        for ttl in [Some(254), Some(1), Some(0), Some(64), None] {
            assert_eq!(accept(&bytes, ttl), Err(Discard::Ttl(ttl)), "{ttl:?}");
        }
        assert_eq!(Discard::Ttl(Some(254)).reason(), "ttl");
    }

    #[test]
    fn a_malformed_packet_at_255_is_malformed_and_at_254_is_off_link() {
        let garbage = [0u8; 7];
        let e = accept(&garbage, Some(255)).unwrap_err();
        assert!(matches!(e, Discard::Malformed(_)), "{e:?}");
        assert_eq!(e.reason(), "malformed");
        assert_eq!(accept(&garbage, Some(254)), Err(Discard::Ttl(Some(254))));
    }
}
