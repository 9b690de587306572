//! All-or-nothing validation: a set of config objects becomes a [`Config`] only when nothing is
//! wrong with any of them; otherwise every problem is returned at once.

use super::ConfigObject;
use super::addresses::{covering_cidrs, parse_pool_address};
use super::community::Community as CommunityValue;
use super::duration::parse_go_duration;
use super::error::{ConfigError, ObjectRef, Source};
use super::types::*;
use crate::alloc::{IpRange, PoolDef, ServiceAllocation};
use crate::selector::{LabelSelector, Labels, validate_dns_subdomain};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// A validated configuration. Every reference in it resolves and every value is in range.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub pools: BTreeMap<String, Pool>,
    pub l2_advertisements: BTreeMap<String, L2Adv>,
    pub bgp_advertisements: BTreeMap<String, BgpAdv>,
    pub peers: BTreeMap<String, Peer>,
    pub bfd_profiles: BTreeMap<String, BFDProfileSpec>,
    /// Community aliases from `Community` objects.
    pub communities: BTreeMap<String, CommunityValue>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub name: String,
    pub labels: Labels,
    pub spec: IPAddressPoolSpec,
    pub ranges: Vec<IpRange>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct L2Adv {
    pub name: String,
    pub spec: L2AdvertisementSpec,
    /// The pools this advertisement covers, by name.
    pub pools: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BgpAdv {
    pub name: String,
    pub spec: BGPAdvertisementSpec,
    pub pools: BTreeSet<String>,
    /// Communities with aliases resolved.
    pub communities: Vec<CommunityValue>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub name: String,
    pub spec: BGPPeerSpec,
    pub peer_address: Option<IpAddr>,
    pub source_address: Option<IpAddr>,
    pub hold_time: Duration,
    pub keepalive_time: Duration,
    pub connect_time: Duration,
    pub router_id: Option<Ipv4Addr>,
}

impl Config {
    /// The pools as the allocator wants them.
    pub fn pool_defs(&self) -> Vec<PoolDef> {
        self.pools
            .values()
            .map(|p| PoolDef {
                name: p.name.clone(),
                ranges: p.ranges.clone(),
                auto_assign: p.spec.auto_assign(),
                avoid_buggy_ips: p.spec.avoid_buggy_ips(),
                allocation: p
                    .spec
                    .service_allocation
                    .as_ref()
                    .map(|a| ServiceAllocation {
                        priority: a.priority,
                        namespaces: a.namespaces.clone(),
                        namespace_selectors: a.namespace_selectors.clone(),
                        service_selectors: a.service_selectors.clone(),
                    }),
            })
            .collect()
    }
}

/// Validate a whole configuration. `objects` carry their source for error messages.
pub fn validate(objects: &[(Source, ConfigObject)]) -> Result<Config, Vec<ConfigError>> {
    let mut v = Validator::default();
    v.check_names(objects);
    // Pools and profiles first: advertisements and peers refer to them.
    for (src, obj) in objects {
        let r = ObjectRef {
            source: src,
            kind: obj.kind(),
            name: obj.name(),
        };
        match obj {
            ConfigObject::IPAddressPool(p) => v.pool(&r, p),
            ConfigObject::BFDProfile(b) => v.bfd(&r, &b.spec),
            ConfigObject::Community(c) => v.community(&r, &c.spec),
            _ => {}
        }
    }
    v.check_overlaps();
    for (src, obj) in objects {
        let r = ObjectRef {
            source: src,
            kind: obj.kind(),
            name: obj.name(),
        };
        if let ConfigObject::BGPPeer(p) = obj {
            v.peer(&r, &p.spec);
        }
    }
    for (src, obj) in objects {
        let r = ObjectRef {
            source: src,
            kind: obj.kind(),
            name: obj.name(),
        };
        match obj {
            ConfigObject::L2Advertisement(a) => v.l2(&r, &a.spec),
            ConfigObject::BGPAdvertisement(a) => v.bgp_adv(&r, &a.spec),
            _ => {}
        }
    }
    v.check_local_pref_conflicts(objects);
    if v.errors.is_empty() {
        Ok(v.config)
    } else {
        v.errors.sort();
        v.errors.dedup();
        Err(v.errors)
    }
}

/// One parsed `addresses` entry and where it was written.
struct PoolRange {
    range: IpRange,
    pool: String,
    field: String,
    source: Source,
}

#[derive(Default)]
struct Validator {
    config: Config,
    errors: Vec<ConfigError>,
    /// Every pool range with its owner, for the overlap check.
    ranges: Vec<PoolRange>,
    /// Pools whose addresses failed to parse: references to them are not reported again.
    broken_pools: BTreeSet<String>,
}

impl Validator {
    fn check_names(&mut self, objects: &[(Source, ConfigObject)]) {
        let mut seen: BTreeMap<(&str, &str), &Source> = BTreeMap::new();
        for (src, obj) in objects {
            let r = ObjectRef {
                source: src,
                kind: obj.kind(),
                name: obj.name(),
            };
            if obj.name().is_empty() {
                self.errors.push(r.error("metadata.name", "missing name"));
                continue;
            }
            if let Err(e) = validate_dns_subdomain(obj.name()) {
                self.errors.push(r.error(
                    "metadata.name",
                    format!("invalid name {:?}: {e}", obj.name()),
                ));
            }
            if let Some(first) = seen.insert((obj.kind(), obj.name()), src) {
                self.errors.push(r.error(
                    "metadata.name",
                    format!(
                        "duplicate name: {} {:?} is also defined in {first}",
                        obj.kind(),
                        obj.name()
                    ),
                ));
            }
        }
    }

    fn selectors(&mut self, r: &ObjectRef<'_>, field: &str, selectors: &[LabelSelector]) {
        for (i, s) in selectors.iter().enumerate() {
            for e in s.validate() {
                self.errors
                    .push(r.error(format!("{field}[{i}].{}", e.field), e.message));
            }
        }
    }

    fn pool(&mut self, r: &ObjectRef<'_>, pool: &IPAddressPool) {
        let spec = &pool.spec;
        if spec.addresses.is_empty() {
            self.errors.push(r.error(
                "spec.addresses",
                "a pool needs at least one address, CIDR or range",
            ));
        }
        let mut ranges = Vec::new();
        for (i, a) in spec.addresses.iter().enumerate() {
            match parse_pool_address(a) {
                Ok(range) => {
                    self.ranges.push(PoolRange {
                        range,
                        pool: r.name.to_string(),
                        field: format!("spec.addresses[{i}]"),
                        source: r.source.clone(),
                    });
                    ranges.push(range);
                }
                Err(e) => {
                    self.broken_pools.insert(r.name.to_string());
                    self.errors.push(r.error(format!("spec.addresses[{i}]"), e));
                }
            }
        }
        if let Some(alloc) = &spec.service_allocation {
            for (i, ns) in alloc.namespaces.iter().enumerate() {
                if let Err(e) = validate_dns_subdomain(ns) {
                    self.errors.push(r.error(
                        format!("spec.serviceAllocation.namespaces[{i}]"),
                        format!("invalid namespace {ns:?}: {e}"),
                    ));
                }
            }
            self.selectors(
                r,
                "spec.serviceAllocation.namespaceSelectors",
                &alloc.namespace_selectors,
            );
            self.selectors(
                r,
                "spec.serviceAllocation.serviceSelectors",
                &alloc.service_selectors,
            );
            if alloc.priority.is_some_and(|p| p < 0) {
                self.errors.push(r.error(
                    "spec.serviceAllocation.priority",
                    format!(
                        "priority must not be negative, got {}",
                        alloc.priority.unwrap_or(0)
                    ),
                ));
            }
        }
        self.config.pools.insert(
            r.name.to_string(),
            Pool {
                name: r.name.to_string(),
                labels: pool.metadata.labels.clone().unwrap_or_default(),
                spec: spec.clone(),
                ranges,
            },
        );
    }

    /// Pools may not share a single address, within a pool or across pools.
    fn check_overlaps(&mut self) {
        self.ranges
            .sort_by_key(|p| (p.range.start.is_ipv6(), p.range.start, p.range.end));
        // Compare each range with the one reaching furthest so far, so that a long range
        // overlapping several later ones is reported against each of them.
        let mut reach: Option<&PoolRange> = None;
        for cur in &self.ranges {
            let same_family = |p: &PoolRange| p.range.start.is_ipv6() == cur.range.start.is_ipv6();
            match reach {
                Some(prev) if same_family(prev) && cur.range.start <= prev.range.end => {
                    let r = ObjectRef {
                        source: &cur.source,
                        kind: "IPAddressPool",
                        name: &cur.pool,
                    };
                    self.errors.push(r.error(
                        cur.field.clone(),
                        format!(
                            "{}-{} overlaps {}-{} of pool {:?} ({}): pools may not share addresses",
                            cur.range.start,
                            cur.range.end,
                            prev.range.start,
                            prev.range.end,
                            prev.pool,
                            prev.field
                        ),
                    ));
                    if cur.range.end > prev.range.end {
                        reach = Some(cur);
                    }
                }
                _ => reach = Some(cur),
            }
        }
    }

    fn bfd(&mut self, r: &ObjectRef<'_>, spec: &BFDProfileSpec) {
        let mut range = |field: &str, v: Option<u32>, lo: u32, hi: u32| {
            if let Some(v) = v.filter(|v| !(lo..=hi).contains(v)) {
                self.errors.push(r.error(
                    format!("spec.{field}"),
                    format!("{v} is out of range {lo}-{hi}"),
                ));
            }
        };
        range("receiveInterval", spec.receive_interval, 10, 60000);
        range("transmitInterval", spec.transmit_interval, 10, 60000);
        range("detectMultiplier", spec.detect_multiplier, 2, 255);
        range("echoInterval", spec.echo_interval, 10, 60000);
        range("minimumTtl", spec.minimum_ttl, 1, 254);
        self.config
            .bfd_profiles
            .insert(r.name.to_string(), spec.clone());
    }

    fn community(&mut self, r: &ObjectRef<'_>, spec: &CommunitySpec) {
        for (i, alias) in spec.communities.iter().enumerate() {
            let field = format!("spec.communities[{i}]");
            if alias.name.is_empty() {
                self.errors
                    .push(r.error(format!("{field}.name"), "missing alias name"));
                continue;
            }
            match CommunityValue::parse(&alias.value) {
                Ok(c) => {
                    if self
                        .config
                        .communities
                        .insert(alias.name.clone(), c)
                        .is_some()
                    {
                        self.errors.push(r.error(
                            format!("{field}.name"),
                            format!("duplicate community alias {:?}", alias.name),
                        ));
                    }
                }
                Err(e) => self.errors.push(r.error(format!("{field}.value"), e)),
            }
        }
    }

    fn peer(&mut self, r: &ObjectRef<'_>, spec: &BGPPeerSpec) {
        let mut errs = Vec::new();
        if spec.my_asn == 0 {
            errs.push(r.error("spec.myASN", "ASN 0 is reserved (RFC 7607)"));
        }
        let ibgp = match (spec.peer_asn, spec.dynamic_asn.as_deref()) {
            (Some(_), Some(d)) => {
                errs.push(r.error(
                    "spec.dynamicASN",
                    format!("set both peerASN and dynamicASN ({d:?}): give exactly one"),
                ));
                false
            }
            (None, None) => {
                errs.push(r.error(
                    "spec.peerASN",
                    "set peerASN or dynamicASN (internal or external)",
                ));
                false
            }
            (Some(0), None) => {
                errs.push(r.error("spec.peerASN", "ASN 0 is reserved (RFC 7607)"));
                false
            }
            (Some(asn), None) => asn == spec.my_asn,
            (None, Some("internal")) => true,
            (None, Some("external")) => false,
            (None, Some(other)) => {
                errs.push(r.error(
                    "spec.dynamicASN",
                    format!("{other:?} is not internal or external"),
                ));
                false
            }
        };
        if ibgp && spec.ebgp_multi_hop == Some(true) {
            errs.push(r.error(
                "spec.ebgpMultiHop",
                "ebgpMultiHop applies to eBGP only, but this peer is iBGP (same AS)",
            ));
        }
        let ip = |field: &str, text: &str, errs: &mut Vec<ConfigError>| match text.parse::<IpAddr>()
        {
            Ok(ip) => Some(ip),
            Err(_) => {
                errs.push(r.error(
                    format!("spec.{field}"),
                    format!("{text:?} is not an IP address"),
                ));
                None
            }
        };
        let peer_address = match (spec.peer_address.as_str(), &spec.interface) {
            ("", None) => {
                errs.push(r.error(
                    "spec.peerAddress",
                    "missing peerAddress (or interface for unnumbered BGP)",
                ));
                None
            }
            ("", Some(_)) => None,
            (text, _) => ip("peerAddress", text, &mut errs),
        };
        if spec.peer_port == Some(0) {
            errs.push(r.error(
                "spec.peerPort",
                "0 is not a port: give 1-65535 (default 179)",
            ));
        }
        let source_address = spec
            .source_address
            .as_deref()
            .and_then(|s| ip("sourceAddress", s, &mut errs));
        if let (Some(p), Some(s)) = (peer_address, source_address)
            && p.is_ipv4() != s.is_ipv4()
        {
            errs.push(r.error(
                "spec.sourceAddress",
                format!("source {s} and peer {p} are of different IP families"),
            ));
        }
        let duration = |field: &str,
                        v: &Option<String>,
                        default: Duration,
                        errs: &mut Vec<ConfigError>| match v {
            None => default,
            Some(text) => parse_go_duration(text).unwrap_or_else(|e| {
                errs.push(r.error(format!("spec.{field}"), e));
                default
            }),
        };
        let hold_time = duration(
            "holdTime",
            &spec.hold_time,
            Duration::from_secs(90),
            &mut errs,
        );
        if !hold_time.is_zero() && hold_time < Duration::from_secs(3) {
            errs.push(r.error(
                "spec.holdTime",
                format!(
                    "{hold_time:?} is under 3s: use 0 (no keepalives) or at least 3s (RFC 4271)"
                ),
            ));
        }
        let keepalive_time = duration(
            "keepaliveTime",
            &spec.keepalive_time,
            hold_time / 3,
            &mut errs,
        );
        if keepalive_time > hold_time {
            errs.push(r.error(
                "spec.keepaliveTime",
                format!("{keepalive_time:?} is longer than holdTime {hold_time:?}"),
            ));
        }
        let connect_time = duration(
            "connectTime",
            &spec.connect_time,
            Duration::from_secs(10),
            &mut errs,
        );
        if spec.connect_time.is_some() && connect_time.is_zero() {
            errs.push(r.error("spec.connectTime", "must be more than 0"));
        }
        let router_id = spec
            .router_id
            .as_deref()
            .and_then(|t| match t.parse::<Ipv4Addr>() {
                Ok(id) => Some(id),
                Err(_) => {
                    errs.push(r.error("spec.routerID", format!("{t:?} is not an IPv4 address")));
                    None
                }
            });
        if spec.password.is_some() && spec.password_secret.is_some() {
            errs.push(r.error(
                "spec.passwordSecret",
                "set both password and passwordSecret: give at most one",
            ));
        }
        // The kernel's TCP-MD5 key (struct tcp_md5sig) holds at most 80 bytes.
        if let Some(p) = spec.password.as_deref().filter(|p| p.len() > 80) {
            errs.push(r.error(
                "spec.password",
                format!("{} bytes long: TCP-MD5 keys are at most 80 bytes", p.len()),
            ));
        }
        if spec
            .password_secret
            .as_ref()
            .is_some_and(|s| s.name.is_empty())
        {
            errs.push(r.error("spec.passwordSecret.name", "missing Secret name"));
        }
        if let Some(p) = &spec.bfd_profile
            && !self.config.bfd_profiles.contains_key(p)
        {
            errs.push(r.error(
                "spec.bfdProfile",
                format!("BFDProfile {p:?} does not exist"),
            ));
        }
        self.selectors(r, "spec.nodeSelectors", &spec.node_selectors);
        self.errors.append(&mut errs);
        self.config.peers.insert(
            r.name.to_string(),
            Peer {
                name: r.name.to_string(),
                spec: spec.clone(),
                peer_address,
                source_address,
                hold_time,
                keepalive_time,
                connect_time,
                router_id,
            },
        );
    }

    /// The pools an advertisement covers: named ones plus selected ones; none given means all.
    fn advertised_pools(
        &mut self,
        r: &ObjectRef<'_>,
        names: &[String],
        selectors: &[LabelSelector],
    ) -> BTreeSet<String> {
        self.selectors(r, "spec.ipAddressPoolSelectors", selectors);
        for (i, n) in names.iter().enumerate() {
            if !self.config.pools.contains_key(n) {
                self.errors.push(r.error(
                    format!("spec.ipAddressPools[{i}]"),
                    format!("IPAddressPool {n:?} does not exist"),
                ));
            }
        }
        let all = names.is_empty() && selectors.is_empty();
        self.config
            .pools
            .values()
            .filter(|p| {
                all || names.contains(&p.name) || selectors.iter().any(|s| s.matches(&p.labels))
            })
            .map(|p| p.name.clone())
            .collect()
    }

    fn l2(&mut self, r: &ObjectRef<'_>, spec: &L2AdvertisementSpec) {
        let pools =
            self.advertised_pools(r, &spec.ip_address_pools, &spec.ip_address_pool_selectors);
        self.selectors(r, "spec.nodeSelectors", &spec.node_selectors);
        for (i, name) in spec.interfaces.iter().enumerate() {
            if name.is_empty()
                || name.len() > 15
                || name.contains(['/', ' ', '\t', '\n'])
                || name == "."
                || name == ".."
            {
                self.errors.push(r.error(
                    format!("spec.interfaces[{i}]"),
                    format!(
                        "{name:?} is not a valid interface name (1-15 characters, no '/' or spaces)"
                    ),
                ));
            }
        }
        self.config.l2_advertisements.insert(
            r.name.to_string(),
            L2Adv {
                name: r.name.to_string(),
                spec: spec.clone(),
                pools,
            },
        );
    }

    fn bgp_adv(&mut self, r: &ObjectRef<'_>, spec: &BGPAdvertisementSpec) {
        let pools =
            self.advertised_pools(r, &spec.ip_address_pools, &spec.ip_address_pool_selectors);
        self.selectors(r, "spec.nodeSelectors", &spec.node_selectors);
        let (len4, len6) = (spec.aggregation_length(), spec.aggregation_length_v6());
        let mut len_ok = true;
        if !(0..=32).contains(&len4) {
            len_ok = false;
            self.errors.push(r.error(
                "spec.aggregationLength",
                format!("{len4} is out of range 0-32"),
            ));
        }
        if !(0..=128).contains(&len6) {
            len_ok = false;
            self.errors.push(r.error(
                "spec.aggregationLengthV6",
                format!("{len6} is out of range 0-128"),
            ));
        }
        if len_ok {
            for name in pools.iter().filter(|p| !self.broken_pools.contains(*p)) {
                let pool = &self.config.pools[name];
                for cidr in pool.ranges.iter().flat_map(covering_cidrs) {
                    let (field, len) = if cidr.addr().is_ipv4() {
                        ("spec.aggregationLength", len4)
                    } else {
                        ("spec.aggregationLengthV6", len6)
                    };
                    if i32::from(cidr.prefix_len()) > len {
                        self.errors.push(r.error(
                            field,
                            format!("{len} is shorter than prefix {cidr} of pool {name:?}: the aggregate route would cover addresses outside the pool"),
                        ));
                        break;
                    }
                }
            }
        }
        let mut communities = Vec::new();
        for (i, c) in spec.communities.iter().enumerate() {
            let field = format!("spec.communities[{i}]");
            match CommunityValue::parse(c) {
                Ok(v) => communities.push(v),
                Err(e) if !c.contains(':') => match self.config.communities.get(c) {
                    Some(v) => communities.push(*v),
                    None => self.errors.push(r.error(
                        field,
                        format!("{c:?} is neither a community value nor a known alias ({e})"),
                    )),
                },
                Err(e) => self.errors.push(r.error(field, e)),
            }
        }
        for (i, p) in spec.peers.iter().enumerate() {
            if !self.config.peers.contains_key(p) {
                self.errors.push(r.error(
                    format!("spec.peers[{i}]"),
                    format!("BGPPeer {p:?} does not exist"),
                ));
            }
        }
        self.config.bgp_advertisements.insert(
            r.name.to_string(),
            BgpAdv {
                name: r.name.to_string(),
                spec: spec.clone(),
                pools,
                communities,
            },
        );
    }

    /// Two advertisements may not give the same pool different local preferences towards the
    /// same peers from the same nodes: a router would get two conflicting routes.
    fn check_local_pref_conflicts(&mut self, objects: &[(Source, ConfigObject)]) {
        let advs: Vec<(&Source, &BgpAdv)> = objects
            .iter()
            .filter_map(|(src, o)| match o {
                ConfigObject::BGPAdvertisement(a) => self
                    .config
                    .bgp_advertisements
                    .get(o.name())
                    .filter(|b| b.spec == a.spec)
                    .map(|b| (src, b)),
                _ => None,
            })
            .collect();
        for (i, (src, a)) in advs.iter().enumerate() {
            for (_, b) in &advs[..i] {
                let (pa, pb) = (
                    a.spec.local_pref.unwrap_or(0),
                    b.spec.local_pref.unwrap_or(0),
                );
                if pa == 0 || pb == 0 || pa == pb {
                    continue;
                }
                let peers_overlap = a.spec.peers.is_empty()
                    || b.spec.peers.is_empty()
                    || a.spec.peers.iter().any(|p| b.spec.peers.contains(p));
                let nodes_overlap = a.spec.node_selectors.is_empty()
                    || b.spec.node_selectors.is_empty()
                    || a.spec.node_selectors == b.spec.node_selectors;
                if let Some(pool) = a
                    .pools
                    .intersection(&b.pools)
                    .next()
                    .filter(|_| peers_overlap && nodes_overlap)
                {
                    let r = ObjectRef {
                        source: src,
                        kind: "BGPAdvertisement",
                        name: &a.name,
                    };
                    self.errors.push(r.error(
                        "spec.localPref",
                        format!("{pa} conflicts with localPref {pb} of BGPAdvertisement {:?} for pool {pool:?} on the same nodes and peers", b.name),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
