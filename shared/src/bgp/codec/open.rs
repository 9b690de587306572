//! The OPEN message (RFC 4271 §4.2) and the capabilities it advertises (RFC 5492): 4-octet
//! AS numbers (RFC 6793), multiprotocol families (RFC 4760), route refresh (RFC 2918),
//! graceful restart (RFC 4724, with the N bit of RFC 8538); anything else is kept as bytes.
//! Optional parameters longer than 255 bytes use the extended format of RFC 9072.

use std::net::Ipv4Addr;

use super::error::{DecodeError, ErrorKind};
use super::wire::{Reader, put_len16};
use super::{Afi, Safi};

/// The 2-octet stand-in for a 4-octet AS number (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// An OPEN message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Open {
    /// Always 4 when sent; decoding rejects anything else.
    pub version: u8,
    /// The sender's AS. Decoding takes it from the 4-octet AS capability when present, else
    /// from the 2-octet field; encoding writes it to the 2-octet field, or [`AS_TRANS`] when
    /// it does not fit (the caller adds [`Capability::FourOctetAs`] with the same number).
    pub my_as: u32,
    /// Proposed hold time in seconds: 0 or at least 3.
    pub hold_time: u16,
    /// BGP Identifier, non-zero.
    pub router_id: Ipv4Addr,
    /// In the order sent.
    pub capabilities: Vec<Capability>,
}

/// A capability advertised in an OPEN.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Code 1: the sender exchanges this family (RFC 4760).
    MultiProtocol { afi: Afi, safi: Safi },
    /// Code 2: the sender accepts ROUTE-REFRESH (RFC 2918).
    RouteRefresh,
    /// Code 65: the sender's 4-octet AS number (RFC 6793).
    FourOctetAs(u32),
    /// Code 64: graceful restart (RFC 4724).
    GracefulRestart {
        /// R bit: the sender has restarted and is not waiting for our End-of-RIB.
        restart_state: bool,
        /// N bit (RFC 8538): the sender keeps routes across a NOTIFICATION too.
        notification: bool,
        /// Seconds the receiver keeps routes while the sender restarts (12 bits, ≤ 4095).
        restart_time: u16,
        /// Families with their Forwarding State preserved (F) bit.
        families: Vec<(Afi, Safi, bool)>,
    },
    /// Any other capability, value kept as bytes (at most 255).
    Unknown { code: u8, data: Vec<u8> },
}

mod cap_code {
    pub(super) const MULTIPROTOCOL: u8 = 1;
    pub(super) const ROUTE_REFRESH: u8 = 2;
    pub(super) const GRACEFUL_RESTART: u8 = 64;
    pub(super) const FOUR_OCTET_AS: u8 = 65;
}

/// Optional parameter type 2 (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;
/// The Non-Ext OP Type announcing RFC 9072's extended optional parameters.
const PARAM_EXTENDED: u8 = 255;
/// The fixed part of an OPEN body: version, AS, hold time, identifier, parameters length.
pub(super) const OPEN_FIXED_LEN: usize = 10;

impl Open {
    /// The number in the 4-octet AS capability, if the sender advertised one.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    pub(super) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        let as2 = u16::try_from(self.my_as).unwrap_or(AS_TRANS);
        out.extend_from_slice(&as2.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.router_id.octets());

        // Capabilities, packed into as few parameters as fit 255 bytes each.
        let mut params: Vec<Vec<u8>> = Vec::new();
        for cap in &self.capabilities {
            let mut bytes = Vec::new();
            cap.encode(&mut bytes);
            match params.last_mut() {
                Some(p) if p.len() + bytes.len() <= 255 => p.extend(bytes),
                _ => params.push(bytes),
            }
        }
        let regular_len: usize = params.iter().map(|p| p.len() + 2).sum();
        if let Ok(len) = u8::try_from(regular_len) {
            out.push(len);
            for p in params {
                out.push(PARAM_CAPABILITIES);
                out.push(u8::try_from(p.len()).unwrap_or(u8::MAX));
                out.extend(p);
            }
        } else {
            // RFC 9072: one capabilities parameter with a 2-octet length.
            let caps: Vec<u8> = params.concat();
            out.push(PARAM_EXTENDED);
            out.push(PARAM_EXTENDED);
            put_len16(out, caps.len() + 3);
            out.push(PARAM_CAPABILITIES);
            put_len16(out, caps.len());
            out.extend(caps);
        }
    }

    /// Decodes an OPEN body (the framing checked it is at least 10 bytes).
    pub(super) fn decode_body(body: &[u8]) -> Result<Open, DecodeError> {
        let mut r = Reader::new(body);
        let (Some(version), Some(as2), Some(hold_time), Some(router_id), Some(params_len)) =
            (r.u8(), r.u16(), r.u16(), r.ipv4(), r.u8())
        else {
            return Err(DecodeError::open(ErrorKind::MalformedOpen(
                "shorter than its fixed fields",
            )));
        };
        if version != 4 {
            return Err(DecodeError::open(ErrorKind::UnsupportedVersion(version)));
        }
        let capabilities = if params_len != 0 && r.rest().first() == Some(&PARAM_EXTENDED) {
            // RFC 9072: the length octet is a placeholder; a 2-octet length follows the
            // marker type and covers the rest of the message.
            let _marker = r.u8();
            let len = r
                .u16()
                .ok_or(malformed("extended optional parameters length missing"))?;
            if usize::from(len) != r.rest().len() {
                return Err(malformed(
                    "extended optional parameters length does not match the message",
                ));
            }
            parse_params(r.rest(), true)?
        } else {
            let params = r
                .take(usize::from(params_len))
                .ok_or(malformed("optional parameters run past the message"))?;
            if !r.is_empty() {
                return Err(malformed("bytes after the optional parameters"));
            }
            parse_params(params, false)?
        };
        let open = Open {
            version,
            my_as: u32::from(as2),
            hold_time,
            router_id,
            capabilities,
        };
        let my_as = open.four_octet_as().unwrap_or(open.my_as);
        if my_as == 0 || as2 == 0 {
            return Err(DecodeError::open(ErrorKind::BadPeerAs(0)));
        }
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::open(ErrorKind::UnacceptableHoldTime(
                hold_time,
            )));
        }
        if router_id.is_unspecified() {
            return Err(DecodeError::open(ErrorKind::BadBgpIdentifier(router_id)));
        }
        Ok(Open { my_as, ..open })
    }
}

fn malformed(what: &'static str) -> DecodeError {
    DecodeError::open(ErrorKind::MalformedOpen(what))
}

/// Parses optional parameters (2-octet lengths when `extended`) into their capabilities.
fn parse_params(bytes: &[u8], extended: bool) -> Result<Vec<Capability>, DecodeError> {
    let mut caps = Vec::new();
    let mut r = Reader::new(bytes);
    while let Some(kind) = r.u8() {
        let len = if extended {
            r.u16().map(usize::from)
        } else {
            r.u8().map(usize::from)
        };
        let value = len
            .and_then(|len| r.take(len))
            .ok_or(malformed("an optional parameter runs past the parameters"))?;
        if kind != PARAM_CAPABILITIES {
            return Err(DecodeError::open(ErrorKind::UnsupportedOptionalParameter(
                kind,
            )));
        }
        let mut c = Reader::new(value);
        while let Some(code) = c.u8() {
            let data = c
                .u8()
                .and_then(|len| c.take(usize::from(len)))
                .ok_or(malformed("a capability runs past its parameter"))?;
            caps.push(Capability::decode(code, data)?);
        }
    }
    Ok(caps)
}

impl Capability {
    fn decode(code: u8, data: &[u8]) -> Result<Capability, DecodeError> {
        let bad = || {
            DecodeError::open(ErrorKind::MalformedCapability {
                code,
                length: data.len(),
            })
        };
        Ok(match (code, data) {
            (cap_code::MULTIPROTOCOL, &[a0, a1, _reserved, safi]) => Capability::MultiProtocol {
                afi: Afi(u16::from_be_bytes([a0, a1])),
                safi: Safi(safi),
            },
            (cap_code::ROUTE_REFRESH, []) => Capability::RouteRefresh,
            (cap_code::FOUR_OCTET_AS, &[a, b, c, d]) => {
                Capability::FourOctetAs(u32::from_be_bytes([a, b, c, d]))
            }
            (cap_code::GRACEFUL_RESTART, [f0, f1, tuples @ ..])
                if tuples.len().is_multiple_of(4) =>
            {
                let families = tuples
                    .chunks_exact(4)
                    .map(|t| match *t {
                        [a0, a1, safi, flags] => (
                            Afi(u16::from_be_bytes([a0, a1])),
                            Safi(safi),
                            flags & 0x80 != 0,
                        ),
                        _ => (Afi(0), Safi(0), false),
                    })
                    .collect();
                Capability::GracefulRestart {
                    restart_state: f0 & 0x80 != 0,
                    notification: f0 & 0x40 != 0,
                    restart_time: u16::from_be_bytes([*f0, *f1]) & 0x0fff,
                    families,
                }
            }
            (
                cap_code::MULTIPROTOCOL
                | cap_code::ROUTE_REFRESH
                | cap_code::FOUR_OCTET_AS
                | cap_code::GRACEFUL_RESTART,
                _,
            ) => return Err(bad()),
            _ => Capability::Unknown {
                code,
                data: data.to_vec(),
            },
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let (code, data): (u8, Vec<u8>) = match self {
            Capability::MultiProtocol { afi, safi } => {
                let [a0, a1] = afi.0.to_be_bytes();
                (cap_code::MULTIPROTOCOL, vec![a0, a1, 0, safi.0])
            }
            Capability::RouteRefresh => (cap_code::ROUTE_REFRESH, Vec::new()),
            Capability::FourOctetAs(asn) => (cap_code::FOUR_OCTET_AS, asn.to_be_bytes().to_vec()),
            Capability::GracefulRestart {
                restart_state,
                notification,
                restart_time,
                families,
            } => {
                let mut flags_time = restart_time & 0x0fff;
                if *restart_state {
                    flags_time |= 0x8000;
                }
                if *notification {
                    flags_time |= 0x4000;
                }
                let mut d = flags_time.to_be_bytes().to_vec();
                // 63 families fill the 255-byte value; a longer list is cut there.
                for (afi, safi, forwarding) in families.iter().take(63) {
                    d.extend_from_slice(&afi.0.to_be_bytes());
                    d.push(safi.0);
                    d.push(if *forwarding { 0x80 } else { 0 });
                }
                (cap_code::GRACEFUL_RESTART, d)
            }
            Capability::Unknown { code, data } => (*code, data.clone()),
        };
        let data = data.get(..255).unwrap_or(&data);
        out.push(code);
        out.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(data);
    }
}
