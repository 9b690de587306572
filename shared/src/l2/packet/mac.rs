//! The Ethernet MAC address newtype.
//!
//! Defined here rather than borrowed from pnet so the shared crate stays pure (no socket
//! crates); the speaker converts to pnet's type at its edge.

use std::fmt;
use std::str::FromStr;

/// A 48-bit Ethernet (IEEE 802) MAC address.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff, the destination of ARP requests and gratuitous ARP.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00, the "unknown" target hardware address of ARP requests.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The six octets, most significant first (as on the wire).
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// Whether the group bit (least significant bit of the first octet) is set: broadcast and
    /// multicast addresses, which never identify a single sender.
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(self) -> bool {
        self == Self::BROADCAST
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(mac: MacAddr) -> Self {
        mac.0
    }
}

impl fmt::Debug for MacAddr {
    /// `MacAddr(aa:bb:cc:dd:ee:ff)`: readable in logs and test failures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

impl fmt::Display for MacAddr {
    /// Lower-case, colon-separated: `aa:bb:cc:dd:ee:ff` (what `ip link` prints).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Why a string is not a MAC address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid MAC address {0:?}: expected six two-digit hex octets separated by ':', like aa:bb:cc:dd:ee:ff"
)]
pub struct ParseMacAddrError(pub String);

impl FromStr for MacAddr {
    type Err = ParseMacAddrError;

    /// Accepts exactly `xx:xx:xx:xx:xx:xx` with hex digits in either case; nothing looser, so
    /// a typo in configuration is an error rather than a different address.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseMacAddrError(s.to_string());
        let mut octets = [0u8; 6];
        let mut parts = s.split(':');
        for octet in &mut octets {
            let part = parts.next().ok_or_else(bad)?;
            // from_str_radix alone would accept "+f" or "f"; insist on two hex digits.
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(octets))
    }
}
