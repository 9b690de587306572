//! Checked reads of untrusted bytes and the small writers every message shares.
//!
//! Readers return `None` when the input is too short; each caller turns that into the
//! NOTIFICATION its context calls for, so nothing here indexes input or panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A cursor over a byte slice.
#[derive(Clone, Debug)]
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(super) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.rest.split_first_chunk::<N>()?;
        self.rest = tail;
        Some(*head)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        let [b] = self.array::<1>()?;
        Some(b)
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    pub(super) fn ipv4(&mut self) -> Option<Ipv4Addr> {
        self.array::<4>().map(Ipv4Addr::from)
    }

    pub(super) fn ipv6(&mut self) -> Option<Ipv6Addr> {
        self.array::<16>().map(Ipv6Addr::from)
    }

    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    /// Everything not read yet.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

/// Why a prefix in an NLRI-style list did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PrefixError {
    /// The length octet exceeds the family's address width.
    TooLong(u8),
    /// The list ends inside the prefix's address octets.
    Truncated(u8),
}

/// Decodes a list of `<length, prefix>` pairs (RFC 4271 §4.3) that fills `bytes` exactly.
/// Host bits past the prefix length are cleared ("trailing bits are irrelevant").
pub(super) fn prefixes(bytes: &[u8], v6: bool) -> Result<Vec<IpNet>, PrefixError> {
    let max_bits: u8 = if v6 { 128 } else { 32 };
    let mut out = Vec::new();
    let mut r = Reader::new(bytes);
    while let Some(bits) = r.u8() {
        if bits > max_bits {
            return Err(PrefixError::TooLong(bits));
        }
        let octets = r
            .take(usize::from(bits).div_ceil(8))
            .ok_or(PrefixError::Truncated(bits))?;
        out.push(prefix_from(octets, bits, v6));
    }
    Ok(out)
}

fn prefix_from(octets: &[u8], bits: u8, v6: bool) -> IpNet {
    if v6 {
        let mut addr = [0u8; 16];
        addr.iter_mut().zip(octets).for_each(|(a, o)| *a = *o);
        // `bits` was checked against 128 by the caller; the fallback is never taken.
        Ipv6Net::new(Ipv6Addr::from(addr), bits)
            .map(|n| IpNet::V6(n.trunc()))
            .unwrap_or_default()
    } else {
        let mut addr = [0u8; 4];
        addr.iter_mut().zip(octets).for_each(|(a, o)| *a = *o);
        Ipv4Net::new(Ipv4Addr::from(addr), bits)
            .map(|n| IpNet::V4(n.trunc()))
            .unwrap_or_default()
    }
}

/// The number of bytes `prefix` takes in an NLRI-style list.
pub(super) fn prefix_len(prefix: &IpNet) -> usize {
    1 + usize::from(prefix.prefix_len()).div_ceil(8)
}

/// Appends `prefix` as `<length, prefix>` with the host bits cleared.
pub(super) fn put_prefix(out: &mut Vec<u8>, prefix: &IpNet) {
    let bits = prefix.prefix_len();
    let octets = usize::from(bits).div_ceil(8);
    out.push(bits);
    match prefix.trunc().addr() {
        IpAddr::V4(a) => out.extend(a.octets().iter().take(octets)),
        IpAddr::V6(a) => out.extend(a.octets().iter().take(octets)),
    }
}

/// Appends a big-endian u16 length, saturating: callers keep lengths in range (messages are
/// at most 4096 bytes), and a length that does not fit must not wrap into a plausible one.
pub(super) fn put_len16(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
}

/// Overwrites the big-endian u16 at `at` with `len` (saturating), for lengths known only
/// after the field they measure was written.
pub(super) fn patch_len16(out: &mut [u8], at: usize, len: usize) {
    let bytes = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&bytes);
    }
}
