//! The ICMPv6 checksum, which covers an IPv6 pseudo-header as well as the message (so a
//! message replayed to another address fails it).

use std::net::Ipv6Addr;

use super::ndp::NEXT_HEADER_ICMPV6;

/// Whether a received checksum matches the computed one. One's-complement zero has two
/// forms, 0x0000 and 0xffff, and a sender may write either.
pub(super) fn same_checksum(received: u16, computed: u16) -> bool {
    let normalize = |c: u16| if c == 0xffff { 0 } else { c };
    normalize(received) == normalize(computed)
}

/// The ICMPv6 checksum (RFC 4443 §2.3): the one's-complement of the one's-complement sum of
/// the IPv6 pseudo-header (source, destination, length, next header 58) and `message`, with
/// the message's own checksum field (bytes 2 and 3) counted as zero, so it both computes the
/// field and, compared with it, verifies a received message.
pub fn icmpv6_checksum(source: Ipv6Addr, destination: Ipv6Addr, message: &[u8]) -> u16 {
    // A u64 cannot overflow: that would take 2^48 words of 16 bits.
    let mut sum: u64 = 0;
    for pair in source
        .octets()
        .chunks_exact(2)
        .chain(destination.octets().chunks_exact(2))
    {
        if let [hi, lo] = pair {
            sum += u64::from(u16::from_be_bytes([*hi, *lo]));
        }
    }
    // Upper-layer length as 32 bits, then three zero bytes and the next header.
    let len = message.len() as u64;
    sum += (len >> 16) + (len & 0xffff) + u64::from(NEXT_HEADER_ICMPV6);
    for (i, pair) in message.chunks(2).enumerate() {
        sum += match (i, pair) {
            (1, _) => 0,
            (_, [hi, lo]) => u64::from(u16::from_be_bytes([*hi, *lo])),
            (_, [hi]) => u64::from(*hi) << 8,
            _ => 0,
        };
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves sum <= 0xffff, so the cast keeps every bit.
    !(sum as u16)
}
