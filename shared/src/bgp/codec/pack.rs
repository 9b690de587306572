//! Packing many routes into few UPDATE messages: the sender's half of the codec.

use std::collections::HashMap;

use ipnet::IpNet;

use super::update::{Attributes, Ipv6NextHop, Update};
use super::wire::prefix_len;
use super::{Afi, CodecOptions, MAX_MESSAGE_LEN, Message, Safi, encode};

/// Why routes could not be packed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    /// Even alone, this prefix's UPDATE would exceed the size limit (its attributes are too
    /// large, or the limit too small).
    #[error("an UPDATE for {prefix} needs {needed} bytes, over the {max_len}-byte limit")]
    TooLarge {
        prefix: IpNet,
        needed: usize,
        max_len: usize,
    },
    /// An IPv4 route without `next_hop`, or an IPv6 route without `mp_next_hop`.
    #[error("route {prefix} has no next hop for its address family")]
    MissingNextHop { prefix: IpNet },
}

/// Encodes `withdrawn` and `routes` as UPDATE messages of at most `max_len` bytes (itself
/// capped at 4096), as few as fit: withdrawals first (IPv4 in the Withdrawn Routes field,
/// IPv6 in MP_UNREACH_NLRI), then, for each distinct set of attributes in order of first
/// appearance, its IPv4 prefixes in the NLRI field and its IPv6 prefixes in MP_REACH_NLRI.
///
/// IPv4 messages carry the attributes without `mp_next_hop`, IPv6 messages without
/// `next_hop`, so one `Attributes` value may serve both families. Nothing is sent unless
/// everything fits: the error names the first route that cannot.
pub fn pack_updates(
    routes: &[(IpNet, Attributes)],
    withdrawn: &[IpNet],
    max_len: usize,
    opts: &CodecOptions,
) -> Result<Vec<Vec<u8>>, PackError> {
    let max_len = max_len.min(MAX_MESSAGE_LEN);
    let mut out = Vec::new();

    let (w4, w6): (Vec<IpNet>, Vec<IpNet>) =
        withdrawn.iter().partition(|p| matches!(p, IpNet::V4(_)));
    let withdraw = |batch: Vec<IpNet>| Update {
        withdrawn: batch,
        ..Update::default()
    };
    pack(&w4, &withdraw, None, max_len, opts, &mut out)?;
    // The empty marker stands in for the MP_UNREACH_NLRI (AFI and SAFI) of the empty
    // message; the encoder drops it once the batch holds IPv6 prefixes.
    let withdraw6 = |batch: Vec<IpNet>| Update {
        withdrawn: batch,
        empty_mp_unreach: Some((Afi::IPV6, Safi::UNICAST)),
        ..Update::default()
    };
    pack(&w6, &withdraw6, Some(3), max_len, opts, &mut out)?;

    // Group by attributes, keeping the order in which each set first appears.
    let mut index: HashMap<&Attributes, usize> = HashMap::new();
    let mut groups: Vec<(&Attributes, Vec<IpNet>, Vec<IpNet>)> = Vec::new();
    for (prefix, attributes) in routes {
        let i = *index.entry(attributes).or_insert_with(|| {
            groups.push((attributes, Vec::new(), Vec::new()));
            groups.len() - 1
        });
        if let Some((_, v4, v6)) = groups.get_mut(i) {
            match prefix {
                IpNet::V4(_) => v4.push(*prefix),
                IpNet::V6(_) => v6.push(*prefix),
            }
        }
    }
    for (attributes, v4, v6) in groups {
        if let Some(prefix) = v4.first()
            && attributes.next_hop.is_none()
        {
            return Err(PackError::MissingNextHop { prefix: *prefix });
        }
        if let Some(prefix) = v6.first()
            && attributes.mp_next_hop.is_none()
        {
            return Err(PackError::MissingNextHop { prefix: *prefix });
        }
        let v4_attributes = Attributes {
            mp_next_hop: None,
            ..attributes.clone()
        };
        let v6_attributes = Attributes {
            next_hop: None,
            ..attributes.clone()
        };
        let announce = |attributes: &Attributes| {
            let attributes = attributes.clone();
            move |batch: Vec<IpNet>| Update {
                attributes: attributes.clone(),
                nlri: batch,
                ..Update::default()
            }
        };
        pack(
            &v4,
            &announce(&v4_attributes),
            None,
            max_len,
            opts,
            &mut out,
        )?;
        // MP_REACH_NLRI: AFI, SAFI, next hop length, next hop, reserved.
        let next_hop_len = match attributes.mp_next_hop {
            Some(Ipv6NextHop {
                link_local: Some(_),
                ..
            }) => 32,
            _ => 16,
        };
        let mp_base = Some(5 + next_hop_len);
        pack(
            &v6,
            &announce(&v6_attributes),
            mp_base,
            max_len,
            opts,
            &mut out,
        )?;
    }
    Ok(out)
}

/// Fills messages made by `make` with `prefixes` (all of one family), greedily.
///
/// A message's size is that of the empty one plus the prefixes' bytes, plus one when they
/// push the MP attribute (whose value is `mp_base` bytes in the empty message, for IPv6)
/// past 255 bytes, where its length field widens to 2 octets.
fn pack(
    prefixes: &[IpNet],
    make: &dyn Fn(Vec<IpNet>) -> Update,
    mp_base: Option<usize>,
    max_len: usize,
    opts: &CodecOptions,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), PackError> {
    if prefixes.is_empty() {
        return Ok(());
    }
    let empty = encode(&Message::Update(make(Vec::new())), opts).len();
    let size = |bytes: usize| {
        let widen = mp_base.is_some_and(|base| base <= 255 && base + bytes > 255);
        empty + bytes + usize::from(widen)
    };
    let too_large = |prefix: &IpNet| PackError::TooLarge {
        prefix: *prefix,
        needed: size(prefix_len(prefix)),
        max_len,
    };

    let mut batch: Vec<IpNet> = Vec::new();
    let mut bytes = 0;
    for prefix in prefixes {
        let len = prefix_len(prefix);
        if size(len) > max_len {
            return Err(too_large(prefix));
        }
        if size(bytes + len) > max_len {
            out.push(encode(
                &Message::Update(make(std::mem::take(&mut batch))),
                opts,
            ));
            bytes = 0;
        }
        batch.push(*prefix);
        bytes += len;
    }
    out.push(encode(&Message::Update(make(batch)), opts));
    Ok(())
}
