//! The Adj-RIB-Out: the routes we want the peer to have (`desired`), what it has from us
//! on the current connection (`sent`), and the prefixes whose two differ (`dirty`), so a
//! change of one route costs one prefix's work, not a walk of the table.
//!
//! Attributes are completed before they are compared or sent: ORIGIN defaults to IGP,
//! AS_PATH to our AS (eBGP) or the empty path (iBGP), LOCAL_PREF to 100 on iBGP.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::super::codec::{
    Afi, AsSegment, AsSegmentKind, Attributes, CodecOptions, MAX_MESSAGE_LEN, Message, Origin,
    PackError, Safi, Update, encode, pack_updates,
};

/// LOCAL_PREF sent to iBGP peers when the route does not set one.
const DEFAULT_LOCAL_PREF: u32 = 100;

/// The Adj-RIB-Out: the desired routes, what the peer has, and the prefixes whose two
/// differ. Attributes are completed (ORIGIN IGP, AS_PATH, iBGP LOCAL_PREF 100) when sent.
#[derive(Clone, Debug, Default)]
pub struct RibOut {
    desired: BTreeMap<IpNet, Attributes>,
    sent: BTreeMap<IpNet, Attributes>,
    dirty: BTreeSet<IpNet>,
}

/// Routes refused by [`RibOut::advertise`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} route(s) without a next hop for their family, first {first}", .count)]
pub struct MissingNextHop {
    pub first: IpNet,
    pub count: usize,
}

impl RibOut {
    /// Adds or replaces routes. Routes without the next hop their family needs (`next_hop`
    /// for IPv4, `mp_next_hop` for IPv6) are refused; the others are taken.
    pub fn advertise(&mut self, routes: Vec<(IpNet, Attributes)>) -> Result<(), MissingNextHop> {
        let mut refused: Option<MissingNextHop> = None;
        for (prefix, attributes) in routes {
            let prefix = prefix.trunc();
            let has_next_hop = match prefix {
                IpNet::V4(_) => attributes.next_hop.is_some(),
                IpNet::V6(_) => attributes.mp_next_hop.is_some(),
            };
            if !has_next_hop {
                match &mut refused {
                    Some(r) => r.count += 1,
                    None => {
                        refused = Some(MissingNextHop {
                            first: prefix,
                            count: 1,
                        })
                    }
                }
                continue;
            }
            self.desired.insert(prefix, attributes);
            self.dirty.insert(prefix);
        }
        refused.map_or(Ok(()), Err)
    }

    /// Removes routes (unknown ones are ignored).
    pub fn withdraw(&mut self, prefixes: Vec<IpNet>) {
        for prefix in prefixes {
            let prefix = prefix.trunc();
            if self.desired.remove(&prefix).is_some() || self.sent.contains_key(&prefix) {
                self.dirty.insert(prefix);
            }
        }
    }

    /// The desired routes.
    pub fn desired(&self) -> &BTreeMap<IpNet, Attributes> {
        &self.desired
    }

    /// How many prefixes the peer has from us.
    pub fn sent_len(&self) -> usize {
        self.sent.len()
    }

    /// The connection is gone: the peer has nothing from us, and everything desired is due
    /// at the next Established.
    pub(super) fn reset_sent(&mut self) {
        self.sent.clear();
        self.dirty = self.desired.keys().copied().collect();
    }

    /// The UPDATEs that bring the peer from `sent` to `desired` for the negotiated
    /// `families`; on success `sent` is updated. Prefixes of other families are dropped
    /// from the work list (they are never sent on this connection).
    pub(super) fn pending_updates(
        &mut self,
        families: &[(Afi, Safi)],
        local_as: u32,
        ibgp: bool,
        opts: &CodecOptions,
    ) -> Result<Vec<Vec<u8>>, PackError> {
        let mut announce = Vec::new();
        let mut withdraw = Vec::new();
        for prefix in &self.dirty {
            if !families.contains(&family(prefix)) {
                continue;
            }
            match self.desired.get(prefix) {
                Some(a) => {
                    let a = complete(a, local_as, ibgp);
                    if self.sent.get(prefix) != Some(&a) {
                        announce.push((*prefix, a));
                    }
                }
                None if self.sent.contains_key(prefix) => withdraw.push(*prefix),
                None => {}
            }
        }
        let messages = pack_updates(&announce, &withdraw, MAX_MESSAGE_LEN, opts)?;
        for prefix in withdraw {
            self.sent.remove(&prefix);
        }
        self.sent.extend(announce);
        self.dirty.clear();
        Ok(messages)
    }

    /// The routes of one family the peer has, again (answering a ROUTE-REFRESH).
    pub(super) fn refresh(
        &self,
        afi: Afi,
        safi: Safi,
        opts: &CodecOptions,
    ) -> Result<Vec<Vec<u8>>, PackError> {
        let routes: Vec<(IpNet, Attributes)> = self
            .sent
            .iter()
            .filter(|(p, _)| family(p) == (afi, safi))
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        pack_updates(&routes, &[], MAX_MESSAGE_LEN, opts)
    }
}

/// One End-of-RIB marker per family.
pub(super) fn end_of_rib(families: &[(Afi, Safi)], opts: &CodecOptions) -> Vec<Vec<u8>> {
    families
        .iter()
        .map(|(afi, safi)| encode(&Message::Update(Update::end_of_rib(*afi, *safi)), opts))
        .collect()
}

/// The (unicast) family of a prefix.
pub(super) fn family(prefix: &IpNet) -> (Afi, Safi) {
    match prefix {
        IpNet::V4(_) => (Afi::IPV4, Safi::UNICAST),
        IpNet::V6(_) => (Afi::IPV6, Safi::UNICAST),
    }
}

/// Fills in the mandatory attributes the route left unset.
fn complete(attributes: &Attributes, local_as: u32, ibgp: bool) -> Attributes {
    let mut a = attributes.clone();
    a.origin.get_or_insert(Origin::Igp);
    a.as_path.get_or_insert_with(|| {
        if ibgp {
            Vec::new()
        } else {
            vec![AsSegment {
                kind: AsSegmentKind::Sequence,
                asns: vec![local_as],
            }]
        }
    });
    if ibgp {
        a.local_pref.get_or_insert(DEFAULT_LOCAL_PREF);
    }
    a
}
