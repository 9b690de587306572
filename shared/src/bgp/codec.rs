//! BGP-4 messages on the wire (RFC 4271), hand-written: [`encode`] and [`decode`] are the
//! only way the rest of FerroLB reads or writes BGP bytes.
//!
//! Covered: OPEN with capabilities (multiprotocol, route refresh, 4-octet AS, graceful
//! restart, anything else kept as bytes; RFC 9072 extended optional parameters), UPDATE
//! with withdrawn routes, NLRI and the path attributes ORIGIN, AS_PATH (2- or 4-octet per
//! session), NEXT_HOP, MULTI_EXIT_DISC, LOCAL_PREF, ATOMIC_AGGREGATE, COMMUNITIES,
//! LARGE_COMMUNITY and MP_REACH_NLRI / MP_UNREACH_NLRI for IPv6 unicast (global and
//! link-local next hops); other optional attributes are kept as bytes. KEEPALIVE,
//! NOTIFICATION (with the registered codes, [`notification`]) and ROUTE-REFRESH. End-of-RIB
//! markers ([`Update::end_of_rib`]) and [`pack_updates`] for the sender. ADD-PATH and
//! extended messages (RFC 8654) are not negotiated, so not decoded.
//!
//! Input is untrusted. [`decode`] checks the header (marker, length 19..=4096, type) before
//! it looks at a body, every length before it reads, and never indexes input or panics; the
//! `bgp_messages` fuzz target holds it to that. Each error carries the NOTIFICATION RFC 4271
//! §6 prescribes and whether RFC 7606 lets the session survive it ([`DecodeError`]).
//!
//! Why not a crate: `bgp-rs` 0.6, the crate issue #6 named, panics on hostile UPDATEs
//! (`unimplemented!()` for some AFIs, slice bounds and overflow in MP_REACH_NLRI), guesses
//! ADD-PATH and the AS_PATH width from the bytes instead of the session, drops malformed
//! attributes silently, checks neither marker nor length, and cannot encode
//! LARGE_COMMUNITY; it is GPL-3.0 besides. It serves as an independent second decoder in
//! the tests (`codec/tests/oracle.rs`, which also pins each of those findings).
//!
//! Layout: `open.rs`, `update.rs` (+ `update/decode.rs`), `notification.rs` (codes and
//! subcodes), `pack.rs`, `error.rs`, `wire.rs` (checked reads, prefixes).

use std::fmt;

mod error;
pub mod notification;
mod open;
mod pack;
mod update;
mod wire;

#[cfg(test)]
mod tests;

pub use error::{DecodeError, ErrorKind, MpProblem, PrefixProblem};
pub use notification::Notification;
pub use open::{AS_TRANS, Capability, Open};
pub use pack::{PackError, pack_updates};
pub use update::{AsSegment, AsSegmentKind, Attributes, Ipv6NextHop, Origin, RawAttribute, Update};

/// The 16-byte marker that opens every message.
pub const MARKER: [u8; 16] = [0xff; 16];
/// Marker, length and type.
pub const HEADER_LEN: usize = 19;
/// The largest message RFC 4271 allows.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Message type codes.
pub mod message_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// An Address Family Identifier (IANA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Afi(pub u16);

impl Afi {
    pub const IPV4: Afi = Afi(1);
    pub const IPV6: Afi = Afi(2);
}

/// A Subsequent Address Family Identifier (IANA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Safi(pub u8);

impl Safi {
    pub const UNICAST: Safi = Safi(1);
}

impl fmt::Display for Afi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Afi::IPV4 => f.write_str("ipv4"),
            Afi::IPV6 => f.write_str("ipv6"),
            Afi(n) => write!(f, "afi-{n}"),
        }
    }
}

impl fmt::Display for Safi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Safi::UNICAST => f.write_str("unicast"),
            Safi(n) => write!(f, "safi-{n}"),
        }
    }
}

/// What the session negotiated that changes the bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CodecOptions {
    /// Both sides advertised the 4-octet AS capability: AS_PATH carries 4 octets per AS.
    /// Until the OPENs are exchanged, and with old peers, it is false (2 octets).
    pub four_octet_as: bool,
}

/// A BGP message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    /// ROUTE-REFRESH (RFC 2918). `subtype` is 0 for a request; 1 and 2 are the
    /// Beginning/End-of-RIB-Refresh markers of enhanced route refresh (RFC 7313), which a
    /// peer sends only if we advertised it, and other values are to be ignored.
    RouteRefresh {
        afi: Afi,
        safi: Safi,
        subtype: u8,
    },
}

impl Message {
    pub fn message_type(&self) -> u8 {
        match self {
            Message::Open(_) => message_type::OPEN,
            Message::Update(_) => message_type::UPDATE,
            Message::Notification(_) => message_type::NOTIFICATION,
            Message::Keepalive => message_type::KEEPALIVE,
            Message::RouteRefresh { .. } => message_type::ROUTE_REFRESH,
        }
    }
}

/// Encodes one message, header included.
///
/// The caller keeps messages within [`MAX_MESSAGE_LEN`] ([`pack_updates`] does for routes);
/// a longer one is still encoded (RFC 8654 framing), and lengths past 65535 saturate, which
/// the peer will reject rather than misread.
pub fn encode(msg: &Message, opts: &CodecOptions) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&[0, 0]);
    out.push(msg.message_type());
    match msg {
        Message::Open(open) => open.encode_body(&mut out),
        Message::Update(update) => update.encode_body(opts, &mut out),
        Message::Notification(n) => n.encode_body(&mut out),
        Message::Keepalive => {}
        Message::RouteRefresh { afi, safi, subtype } => {
            out.extend_from_slice(&afi.0.to_be_bytes());
            out.push(*subtype);
            out.push(safi.0);
        }
    }
    let len = out.len();
    wire::patch_len16(&mut out, MARKER.len(), len);
    out
}

/// Decodes the message at the start of `buf`, a TCP stream's unread bytes.
///
/// `Ok(None)`: the message is not complete yet (read more and call again).
/// `Ok(Some((message, consumed)))`: drop `consumed` bytes and call again for the next one.
/// `Err(e)`: send `e.notification` and close, unless `e.treat_as_withdraw` says RFC 7606
/// lets the session skip `e.message_len` bytes and go on.
///
/// The header is checked as soon as its bytes arrive (a bad marker even before all 16
/// are in), so garbage is refused without waiting for a length it names.
pub fn decode(buf: &[u8], opts: &CodecOptions) -> Result<Option<(Message, usize)>, DecodeError> {
    if buf.iter().take(MARKER.len()).any(|b| *b != 0xff) {
        return Err(DecodeError::header(ErrorKind::BadMarker));
    }
    let Some(&[l0, l1, message_type]) = buf.get(MARKER.len()..HEADER_LEN) else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([l0, l1]);
    let len = usize::from(length);
    let bad_length = || {
        DecodeError::header(ErrorKind::BadLength {
            length,
            message_type,
        })
    };
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(bad_length());
    }
    // The smallest body of each type (and the only one, for KEEPALIVE).
    let min_body = match message_type {
        message_type::OPEN => open::OPEN_FIXED_LEN,
        message_type::UPDATE => 4,
        message_type::NOTIFICATION => 2,
        message_type::KEEPALIVE | message_type::ROUTE_REFRESH => 0,
        other => return Err(DecodeError::header(ErrorKind::BadType(other))),
    };
    let body_len = len - HEADER_LEN;
    if body_len < min_body || (message_type == message_type::KEEPALIVE && body_len != 0) {
        return Err(bad_length());
    }
    let Some(message) = buf.get(..len) else {
        return Ok(None);
    };
    let body = message.get(HEADER_LEN..).unwrap_or_default();
    let decoded = match message_type {
        message_type::OPEN => open::Open::decode_body(body).map(Message::Open),
        message_type::UPDATE => update::decode_body(body, opts).map(Message::Update),
        message_type::NOTIFICATION => Ok(Message::Notification(Notification::decode_body(body))),
        message_type::ROUTE_REFRESH => match *body {
            [a0, a1, subtype, safi] => Ok(Message::RouteRefresh {
                afi: Afi(u16::from_be_bytes([a0, a1])),
                safi: Safi(safi),
                subtype,
            }),
            // RFC 7313 §5: a bad BoRR/EoRR gets its own error; a bad request is a plain
            // header length error.
            [_, _, 1 | 2, ..] => Err(DecodeError::route_refresh_length(length, message)),
            _ => Err(bad_length()),
        },
        _ => Ok(Message::Keepalive),
    };
    match decoded {
        Ok(m) => Ok(Some((m, len))),
        Err(e) => Err(DecodeError {
            message_len: Some(len),
            ..e
        }),
    }
}
