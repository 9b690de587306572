//! Decoding UPDATE bodies. Errors follow RFC 4271 §6.3 for the NOTIFICATION and RFC 7606
//! for how bad they are: anything that hides where the prefixes are (framing, attribute
//! overruns, MP_REACH_NLRI / MP_UNREACH_NLRI, the NLRI fields) ends the session at once;
//! a malformed attribute whose prefixes can still be read is reported after the whole
//! message was checked, marked `treat_as_withdraw`.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::super::error::{DecodeError, ErrorKind, MpProblem, PrefixProblem};
use super::super::wire::{Reader, prefixes};
use super::super::{Afi, CodecOptions, Safi};
use super::{
    AsSegment, AsSegmentKind, Attributes, Ipv6NextHop, Origin, RawAttribute, Update, attr, flag,
};

/// Decodes an UPDATE body (the framing checked it is at least 4 bytes).
pub(in super::super) fn decode_body(
    body: &[u8],
    opts: &CodecOptions,
) -> Result<Update, DecodeError> {
    let mut r = Reader::new(body);
    let withdrawn_len = usize::from(r.u16().unwrap_or_default());
    let withdrawn_bytes = r.take(withdrawn_len).ok_or_else(|| {
        hard(ErrorKind::WithdrawnOverrun {
            length: withdrawn_len,
            available: r.rest().len(),
        })
    })?;
    let attributes_len = r.u16().map(usize::from).ok_or_else(|| {
        hard(ErrorKind::AttributesOverrun {
            length: 2,
            available: 0,
        })
    })?;
    let attribute_bytes = r.take(attributes_len).ok_or_else(|| {
        hard(ErrorKind::AttributesOverrun {
            length: attributes_len,
            available: r.rest().len(),
        })
    })?;
    let mut withdrawn = prefixes(withdrawn_bytes, false)
        .map_err(|e| hard(ErrorKind::BadWithdrawn(PrefixProblem::from(e))))?;
    let mut nlri = prefixes(r.rest(), false).map_err(|e| {
        DecodeError::update(
            ErrorKind::BadNlri(PrefixProblem::from(e)),
            Vec::new(),
            false,
        )
    })?;

    let mut parsed = Parsed::default();
    parse_attributes(attribute_bytes, opts, &mut parsed)?;
    let Parsed {
        mut attributes,
        soft,
        v6_nlri,
        v6_withdrawn,
        mp_reach_seen,
        empty_mp_unreach,
        next_hop_raw,
        ..
    } = parsed;

    if let Some(e) = soft {
        return Err(e);
    }
    if !nlri.is_empty() || mp_reach_seen {
        let missing = if attributes.origin.is_none() {
            Some(attr::ORIGIN)
        } else if attributes.as_path.is_none() {
            Some(attr::AS_PATH)
        } else if !nlri.is_empty() && attributes.next_hop.is_none() {
            Some(attr::NEXT_HOP)
        } else {
            None
        };
        if let Some(code) = missing {
            return Err(DecodeError::update(
                ErrorKind::MissingWellKnown(code),
                vec![code],
                true,
            ));
        }
    }
    // NEXT_HOP is checked only when IPv4 NLRI uses it (RFC 7606 §7.3: otherwise ignored).
    if let Some(nh) = attributes.next_hop
        && !nlri.is_empty()
        && !is_host_address(nh)
    {
        return Err(DecodeError::update(
            ErrorKind::InvalidNextHop(nh),
            next_hop_raw,
            true,
        ));
    }
    // Attributes may come in any order; the value keeps ours (by type code), so equal
    // messages decode equal.
    attributes.other.sort_by_key(|raw| raw.code);
    withdrawn.extend(v6_withdrawn);
    nlri.extend(v6_nlri);
    Ok(Update {
        withdrawn,
        attributes,
        nlri,
        empty_mp_unreach,
    })
}

/// An error that ends the session whatever RFC 7606 allows for attributes.
fn hard(kind: ErrorKind) -> DecodeError {
    DecodeError::update(kind, Vec::new(), false)
}

/// A unicast host address, as RFC 4271 §6.3 wants of NEXT_HOP: not in 0/8, 127/8 or
/// 224/3 (multicast, reserved, broadcast).
fn is_host_address(a: Ipv4Addr) -> bool {
    let [first, ..] = a.octets();
    first != 0 && first != 127 && first < 224
}

#[derive(Default)]
struct Parsed {
    attributes: Attributes,
    /// The first error that allows treat-as-withdraw.
    soft: Option<DecodeError>,
    v6_nlri: Vec<IpNet>,
    v6_withdrawn: Vec<IpNet>,
    mp_reach_seen: bool,
    empty_mp_unreach: Option<(Afi, Safi)>,
    /// The whole NEXT_HOP attribute, for an Invalid NEXT_HOP notification.
    next_hop_raw: Vec<u8>,
}

impl Parsed {
    fn soft(&mut self, kind: ErrorKind, data: &[u8]) {
        if self.soft.is_none() {
            self.soft = Some(DecodeError::update(kind, data.to_vec(), true));
        }
    }
}

fn parse_attributes(bytes: &[u8], opts: &CodecOptions, p: &mut Parsed) -> Result<(), DecodeError> {
    let mut seen = [false; 256];
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let start = bytes.len() - r.rest().len();
        let overrun = |code: u8, length: usize, available: usize| {
            hard(ErrorKind::AttributeOverrun {
                code,
                length,
                available,
            })
        };
        let (Some(flags), Some(code)) = (r.u8(), r.u8()) else {
            return Err(overrun(0, 2, 1));
        };
        let len = if flags & flag::EXTENDED_LENGTH != 0 {
            r.u16().map(usize::from)
        } else {
            r.u8().map(usize::from)
        };
        let Some(len) = len else {
            return Err(overrun(code, 0, r.rest().len()));
        };
        let available = r.rest().len();
        let value = r.take(len).ok_or_else(|| overrun(code, len, available))?;
        let whole = bytes
            .get(start..bytes.len() - r.rest().len())
            .unwrap_or_default();

        if seen[usize::from(code)] {
            if code == attr::MP_REACH_NLRI || code == attr::MP_UNREACH_NLRI {
                return Err(hard(ErrorKind::DuplicateAttribute(code)));
            }
            // RFC 7606 §3g: keep the first, discard the rest.
            continue;
        }
        seen[usize::from(code)] = true;
        attribute(flags, code, value, whole, opts, p)?;
    }
    Ok(())
}

/// The Optional/Transitive bits a known attribute must carry, and whether Partial may be
/// set (only on optional transitive ones).
fn expected_flags(code: u8) -> Option<u8> {
    Some(match code {
        attr::ORIGIN
        | attr::AS_PATH
        | attr::NEXT_HOP
        | attr::LOCAL_PREF
        | attr::ATOMIC_AGGREGATE => flag::WELL_KNOWN,
        attr::MED | attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI => flag::OPTIONAL,
        attr::COMMUNITIES | attr::LARGE_COMMUNITY => flag::OPTIONAL_TRANSITIVE,
        _ => return None,
    })
}

fn attribute(
    flags: u8,
    code: u8,
    value: &[u8],
    whole: &[u8],
    opts: &CodecOptions,
    p: &mut Parsed,
) -> Result<(), DecodeError> {
    let Some(expected) = expected_flags(code) else {
        if flags & flag::OPTIONAL == 0 {
            return Err(DecodeError::update(
                ErrorKind::UnrecognizedWellKnown(code),
                whole.to_vec(),
                false,
            ));
        }
        p.attributes.other.push(RawAttribute {
            flags: flags & (flag::OPTIONAL | flag::TRANSITIVE | flag::PARTIAL),
            code,
            value: value.to_vec(),
        });
        return Ok(());
    };
    let partial_ok = expected == flag::OPTIONAL_TRANSITIVE;
    let flags_ok = flags & (flag::OPTIONAL | flag::TRANSITIVE) == expected
        && (partial_ok || flags & flag::PARTIAL == 0);
    let is_mp = code == attr::MP_REACH_NLRI || code == attr::MP_UNREACH_NLRI;
    if !flags_ok {
        let e = ErrorKind::AttributeFlags { code, flags };
        if is_mp {
            return Err(DecodeError::update(e, whole.to_vec(), false));
        }
        p.soft(e, whole);
        return Ok(());
    }
    let length_error = ErrorKind::AttributeLength {
        code,
        length: value.len(),
    };
    let a = &mut p.attributes;
    match (code, value) {
        (attr::ORIGIN, &[v]) => match v {
            0 => a.origin = Some(Origin::Igp),
            1 => a.origin = Some(Origin::Egp),
            2 => a.origin = Some(Origin::Incomplete),
            _ => p.soft(ErrorKind::InvalidOrigin(v), whole),
        },
        (attr::AS_PATH, _) => match as_path(value, opts) {
            Ok(path) => a.as_path = Some(path),
            Err(why) => p.soft(ErrorKind::MalformedAsPath(why), &[]),
        },
        (attr::NEXT_HOP, &[b0, b1, b2, b3]) => {
            a.next_hop = Some(Ipv4Addr::new(b0, b1, b2, b3));
            p.next_hop_raw = whole.to_vec();
        }
        (attr::MED, &[b0, b1, b2, b3]) => a.med = Some(u32::from_be_bytes([b0, b1, b2, b3])),
        (attr::LOCAL_PREF, &[b0, b1, b2, b3]) => {
            a.local_pref = Some(u32::from_be_bytes([b0, b1, b2, b3]));
        }
        (attr::ATOMIC_AGGREGATE, []) => a.atomic_aggregate = true,
        // RFC 7606 §7.6: a malformed ATOMIC_AGGREGATE is discarded.
        (attr::ATOMIC_AGGREGATE, _) => {}
        (attr::COMMUNITIES, _) if !value.is_empty() && value.len().is_multiple_of(4) => {
            let mut r = Reader::new(value);
            a.communities = std::iter::from_fn(|| r.u32()).collect();
        }
        (attr::LARGE_COMMUNITY, _) if !value.is_empty() && value.len().is_multiple_of(12) => {
            let mut r = Reader::new(value);
            a.large_communities =
                std::iter::from_fn(|| Some((r.u32()?, r.u32()?, r.u32()?))).collect();
        }
        (attr::MP_REACH_NLRI, _) => mp_reach(value, whole, p)?,
        (attr::MP_UNREACH_NLRI, _) => mp_unreach(value, whole, p)?,
        _ => p.soft(length_error, whole),
    }
    Ok(())
}

/// AS_PATH segments (RFC 4271 §4.3, RFC 7606 §7.2: no overrun, no underrun, no empty
/// segment, no unknown segment type).
fn as_path(value: &[u8], opts: &CodecOptions) -> Result<Vec<AsSegment>, &'static str> {
    let mut segments = Vec::new();
    let mut r = Reader::new(value);
    while let Some(kind) = r.u8() {
        let kind = match kind {
            1 => AsSegmentKind::Set,
            2 => AsSegmentKind::Sequence,
            3 => AsSegmentKind::ConfedSequence,
            4 => AsSegmentKind::ConfedSet,
            _ => return Err("unknown segment type"),
        };
        let count = r.u8().ok_or("a segment header is cut short")?;
        if count == 0 {
            return Err("an empty segment");
        }
        let mut asns = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let asn = if opts.four_octet_as {
                r.u32()
            } else {
                r.u16().map(u32::from)
            };
            asns.push(asn.ok_or("a segment runs past the attribute")?);
        }
        segments.push(AsSegment { kind, asns });
    }
    Ok(segments)
}

fn mp_error(problem: MpProblem, code: u8, whole: &[u8]) -> DecodeError {
    DecodeError::update(
        ErrorKind::MalformedMpAttribute { code, problem },
        whole.to_vec(),
        false,
    )
}

fn mp_reach(value: &[u8], whole: &[u8], p: &mut Parsed) -> Result<(), DecodeError> {
    let code = attr::MP_REACH_NLRI;
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi), Some(nh_len)) = (r.u16(), r.u8(), r.u8()) else {
        return Err(mp_error(MpProblem::Truncated, code, whole));
    };
    let (Some(next_hop), Some(_reserved)) = (r.take(usize::from(nh_len)), r.u8()) else {
        return Err(mp_error(MpProblem::Truncated, code, whole));
    };
    p.mp_reach_seen = true;
    if (Afi(afi), Safi(safi)) != (Afi::IPV6, Safi::UNICAST) {
        p.attributes.other.push(RawAttribute {
            flags: flag::OPTIONAL,
            code,
            value: value.to_vec(),
        });
        return Ok(());
    }
    let mut nh = Reader::new(next_hop);
    let hop = match nh_len {
        16 => nh.ipv6().map(|global| Ipv6NextHop {
            global,
            link_local: None,
        }),
        32 => nh
            .ipv6()
            .zip(nh.ipv6())
            .map(|(global, ll): (Ipv6Addr, Ipv6Addr)| Ipv6NextHop {
                global,
                link_local: Some(ll),
            }),
        _ => None,
    };
    let hop = hop.ok_or_else(|| mp_error(MpProblem::NextHopLength(nh_len), code, whole))?;
    p.attributes.mp_next_hop = Some(hop);
    p.v6_nlri =
        prefixes(r.rest(), true).map_err(|e| mp_error(MpProblem::Prefix(e.into()), code, whole))?;
    Ok(())
}

fn mp_unreach(value: &[u8], whole: &[u8], p: &mut Parsed) -> Result<(), DecodeError> {
    let code = attr::MP_UNREACH_NLRI;
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return Err(mp_error(MpProblem::Truncated, code, whole));
    };
    let family = (Afi(afi), Safi(safi));
    if r.is_empty() {
        p.empty_mp_unreach = Some(family);
    } else if family == (Afi::IPV6, Safi::UNICAST) {
        p.v6_withdrawn = prefixes(r.rest(), true)
            .map_err(|e| mp_error(MpProblem::Prefix(e.into()), code, whole))?;
    } else {
        p.attributes.other.push(RawAttribute {
            flags: flag::OPTIONAL,
            code,
            value: value.to_vec(),
        });
    }
    Ok(())
}
