//! The configuration kinds an operator writes, with MetalLB's field names and defaults.
//!
//! Each spec derives `CustomResource`, so the CRDs in `config/crds/` are generated from these
//! very types (see `ferrolb-controller crds`) and cannot drift from them unnoticed. Optional
//! fields stay `Option` so that "unset" and "set to the default" remain distinguishable; the
//! accessor methods apply the documented defaults.

// kube-derive takes one `printcolumn(...)` per column, which clippy mistakes for repeats.
#![allow(clippy::duplicated_attributes)]

use super::schema_rules as rules;
use crate::selector::LabelSelector;
use kube_derive::CustomResource;
use kube_derive::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The API group of FerroLB's own kinds. Manifests in MetalLB's groups are accepted too.
pub const GROUP: &str = "ferrolb.io";
/// MetalLB's API group, accepted unchanged for migration.
pub const METALLB_GROUP: &str = "metallb.io";

/// A set of addresses the controller hands out to LoadBalancer Services.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "IPAddressPool",
    namespaced,
    status = "IPAddressPoolStatus",
    shortname = "pool",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    derive = "PartialEq",
    printcolumn(
        name = "Auto Assign",
        type_ = "boolean",
        json_path = ".spec.autoAssign"
    ),
    printcolumn(
        name = "Avoid Buggy IPs",
        type_ = "boolean",
        json_path = ".spec.avoidBuggyIPs"
    ),
    printcolumn(name = "Addresses", type_ = "string", json_path = ".spec.addresses"),
    printcolumn(
        name = "Assigned v4",
        type_ = "integer",
        json_path = ".status.assignedIPv4"
    ),
    printcolumn(
        name = "Available v4",
        type_ = "integer",
        json_path = ".status.availableIPv4"
    ),
    printcolumn(
        name = "Assigned v6",
        type_ = "integer",
        json_path = ".status.assignedIPv6",
        priority = 1
    ),
    printcolumn(
        name = "Available v6",
        type_ = "integer",
        json_path = ".status.availableIPv6",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct IPAddressPoolSpec {
    /// CIDRs (`10.0.0.0/24`, `2001:db8::/120`) or inclusive ranges (`10.0.0.10-10.0.0.20`).
    #[schemars(length(min = 1, max = 1024), inner(length(max = 100)))]
    #[x_kube(validation = Rule::new(rules::POOL_ADDRESSES).message(rules::POOL_ADDRESSES_MESSAGE))]
    pub addresses: Vec<String>,
    /// Whether the controller may pick this pool on its own. Default `true`; `false` pools are
    /// only used when a Service asks for them by name or asks for one of their addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_assign: Option<bool>,
    /// Skip IPv4 addresses ending in `.0` and `.255`, which some old devices mishandle.
    #[serde(
        default,
        rename = "avoidBuggyIPs",
        skip_serializing_if = "Option::is_none"
    )]
    pub avoid_buggy_ips: Option<bool>,
    /// Reserve the pool for some namespaces and Services, and rank it among other such pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocationSpec>,
}

impl IPAddressPoolSpec {
    pub fn auto_assign(&self) -> bool {
        self.auto_assign.unwrap_or(true)
    }
    pub fn avoid_buggy_ips(&self) -> bool {
        self.avoid_buggy_ips.unwrap_or(false)
    }
}

/// Usage counters the controller reports on each pool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IPAddressPoolStatus {
    #[serde(rename = "assignedIPv4", default)]
    pub assigned_ipv4: u64,
    #[serde(rename = "assignedIPv6", default)]
    pub assigned_ipv6: u64,
    #[serde(rename = "availableIPv4", default)]
    pub available_ipv4: u64,
    #[serde(rename = "availableIPv6", default)]
    pub available_ipv6: u64,
}

/// Which Services may use a pool, and in which order pools are tried.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAllocationSpec {
    /// Lower numbers are tried first; pools without a priority come after those with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
}

/// Announce the addresses of some pools over layer 2 (ARP / NDP).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "L2Advertisement",
    namespaced,
    shortname = "l2adv",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    derive = "PartialEq",
    printcolumn(name = "Pools", type_ = "string", json_path = ".spec.ipAddressPools"),
    printcolumn(
        name = "Pool Selectors",
        type_ = "string",
        json_path = ".spec.ipAddressPoolSelectors",
        priority = 1
    ),
    printcolumn(name = "Interfaces", type_ = "string", json_path = ".spec.interfaces"),
    printcolumn(
        name = "Node Selectors",
        type_ = "string",
        json_path = ".spec.nodeSelectors",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct L2AdvertisementSpec {
    /// Pools by name. With neither this nor `ipAddressPoolSelectors`, every pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pools: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that may announce. Empty: every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// Interfaces to announce on. Empty: every usable interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
}

/// Announce the addresses of some pools to BGP peers.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BGPAdvertisement",
    namespaced,
    shortname = "bgpadv",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    derive = "PartialEq",
    printcolumn(name = "Pools", type_ = "string", json_path = ".spec.ipAddressPools"),
    printcolumn(name = "Peers", type_ = "string", json_path = ".spec.peers"),
    printcolumn(
        name = "Aggregation",
        type_ = "integer",
        json_path = ".spec.aggregationLength",
        priority = 1
    ),
    printcolumn(
        name = "Local Pref",
        type_ = "integer",
        json_path = ".spec.localPref",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct BGPAdvertisementSpec {
    /// Prefix length of the IPv4 routes advertised. Default 32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 32))]
    pub aggregation_length: Option<i32>,
    /// Prefix length of the IPv6 routes advertised. Default 128.
    #[serde(
        default,
        rename = "aggregationLengthV6",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0, max = 128))]
    pub aggregation_length_v6: Option<i32>,
    /// BGP LOCAL_PREF, sent to iBGP peers only. 0 means unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// `65000:100`, `large:1:2:3`, a well-known name, or an alias from a `Community`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pools: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// Names of the BGPPeers to advertise to. Empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}

impl BGPAdvertisementSpec {
    pub fn aggregation_length(&self) -> i32 {
        self.aggregation_length.unwrap_or(32)
    }
    pub fn aggregation_length_v6(&self) -> i32 {
        self.aggregation_length_v6.unwrap_or(128)
    }
}

/// A BGP router the speakers keep a session with (MetalLB v1beta2 shape; v1beta1 is a subset).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(
    crates(kube_core = ::kube_core),
    validation = Rule::new(rules::PEER_ASN_XOR_DYNAMIC).message(rules::PEER_ASN_XOR_DYNAMIC_MESSAGE),
    validation = Rule::new(rules::PASSWORD_XOR_SECRET).message(rules::PASSWORD_XOR_SECRET_MESSAGE),
    validation = Rule::new(rules::PEER_ADDRESS_OR_INTERFACE).message(rules::PEER_ADDRESS_OR_INTERFACE_MESSAGE),
    validation = Rule::new(rules::KEEPALIVE_WITHIN_HOLD).message(rules::KEEPALIVE_WITHIN_HOLD_MESSAGE),
    validation = Rule::new(rules::SAME_FAMILY).message(rules::SAME_FAMILY_MESSAGE)
)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta2",
    kind = "BGPPeer",
    namespaced,
    shortname = "bgppeer",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    derive = "PartialEq",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.peerAddress"),
    printcolumn(name = "ASN", type_ = "integer", json_path = ".spec.peerASN"),
    printcolumn(name = "My ASN", type_ = "integer", json_path = ".spec.myASN"),
    printcolumn(name = "BFD Profile", type_ = "string", json_path = ".spec.bfdProfile"),
    printcolumn(
        name = "Multi Hops",
        type_ = "boolean",
        json_path = ".spec.ebgpMultiHop",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct BGPPeerSpec {
    /// 1-4294967295 (0 is reserved, RFC 7607).
    #[serde(rename = "myASN")]
    #[schemars(range(min = 1))]
    pub my_asn: u32,
    /// The peer's AS. Exactly one of this and `dynamicASN`.
    #[serde(rename = "peerASN", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub peer_asn: Option<u32>,
    /// `internal` or `external`: accept whatever AS the peer announces, of that kind.
    #[serde(
        rename = "dynamicASN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(regex(pattern = r"^(internal|external)$"))]
    pub dynamic_asn: Option<String>,
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new(rules::IP_OR_EMPTY).message("peerAddress must be an IP address"))]
    pub peer_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new(rules::IP).message("sourceAddress must be an IP address"))]
    pub source_address: Option<String>,
    /// Default 179.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub peer_port: Option<u16>,
    /// Go duration (`90s`, `1m30s`). Default 90s; 0 disables keepalives; otherwise at least 3s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = rules::DURATION_PATTERN))]
    #[x_kube(validation = Rule::new(rules::HOLD_TIME).message(rules::HOLD_TIME_MESSAGE))]
    pub hold_time: Option<String>,
    /// Go duration. Default a third of the hold time; never above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = rules::DURATION_PATTERN))]
    pub keepalive_time: Option<String>,
    /// Go duration between connection attempts. Default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = rules::DURATION_PATTERN))]
    #[x_kube(validation = Rule::new(rules::POSITIVE_DURATION).message("connectTime must be more than 0"))]
    pub connect_time: Option<String>,
    #[serde(rename = "routerID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 15))]
    #[x_kube(validation = Rule::new(rules::IPV4).message("routerID must be an IPv4 address"))]
    pub router_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// TCP-MD5 password (at most 80 bytes). Not together with `passwordSecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 80))]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_graceful_restart: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebgp_multi_hop: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrf: Option<String>,
    #[serde(rename = "disableMP", default, skip_serializing_if = "Option::is_none")]
    pub disable_mp: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual_stack_address_family: Option<bool>,
    /// Unnumbered BGP over this interface instead of `peerAddress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

impl BGPPeerSpec {
    pub fn peer_port(&self) -> u16 {
        self.peer_port.unwrap_or(179)
    }
}

/// A reference to a Secret (`kubernetes.io/basic-auth`, key `password`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecretReference {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Bidirectional Forwarding Detection timers for BGP sessions.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BFDProfile",
    namespaced,
    shortname = "bfdprofile",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    derive = "PartialEq",
    printcolumn(name = "Passive", type_ = "boolean", json_path = ".spec.passiveMode"),
    printcolumn(
        name = "Transmit Interval",
        type_ = "integer",
        json_path = ".spec.transmitInterval"
    ),
    printcolumn(
        name = "Receive Interval",
        type_ = "integer",
        json_path = ".spec.receiveInterval"
    ),
    printcolumn(
        name = "Multiplier",
        type_ = "integer",
        json_path = ".spec.detectMultiplier"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct BFDProfileSpec {
    /// Milliseconds, 10–60000, default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub receive_interval: Option<u32>,
    /// Milliseconds, 10–60000, default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub transmit_interval: Option<u32>,
    /// 2–255, default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 255))]
    pub detect_multiplier: Option<u32>,
    /// Milliseconds, 10–60000, default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub echo_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_mode: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_mode: Option<bool>,
    /// 1–254, default 254.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub minimum_ttl: Option<u32>,
}

impl BFDProfileSpec {
    pub fn receive_interval(&self) -> Duration {
        Duration::from_millis(self.receive_interval.unwrap_or(300).into())
    }
    pub fn transmit_interval(&self) -> Duration {
        Duration::from_millis(self.transmit_interval.unwrap_or(300).into())
    }
    pub fn detect_multiplier(&self) -> u32 {
        self.detect_multiplier.unwrap_or(3)
    }
}

/// Names for BGP communities, usable in `BGPAdvertisement.communities`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "Community",
    namespaced,
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct CommunitySpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<CommunityAlias>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommunityAlias {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

// ---------------------------------------------------------------------------------------------
// Status kinds. Written by FerroLB for operators to read; never configuration. They are not
// `ConfigObject`s, are never validated, and manifest readers skip them (`crate::manifest`).
// ---------------------------------------------------------------------------------------------

/// Kinds (in [`GROUP`], and MetalLB's equivalents in [`METALLB_GROUP`]) that FerroLB writes as
/// status. A copy of one in a manifest directory is not configuration and is skipped.
pub const STATUS_KINDS: [&str; 4] = [
    "ServiceL2Status",
    "ServiceBGPStatus",
    "ConfigurationState",
    "BGPSessionState",
];

/// Label on a [`ServiceL2Status`]: the announced Service's name (as a label value).
pub const LABEL_SERVICE_NAME: &str = "ferrolb.io/service-name";
/// Label on a [`ServiceL2Status`]: the announced Service's namespace.
pub const LABEL_SERVICE_NAMESPACE: &str = "ferrolb.io/service-namespace";
/// Label on a [`ServiceL2Status`]: the announcing node (as a label value: node names longer
/// than 63 characters are cut and given a hash suffix).
pub const LABEL_NODE: &str = "ferrolb.io/node";

/// Which node announces a Service over layer 2, and how: one object per (Service, announcing
/// node), in the Service's namespace, owned by the Service, written by that node's speaker
/// (server-side apply, field manager `ferrolb-speaker`) and deleted when it stops announcing.
/// The spec is empty; everything is in the status (MetalLB's `ServiceL2Status` shape, with the
/// addresses added).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "ServiceL2Status",
    namespaced,
    status = "ServiceL2StatusStatus",
    shortname = "l2status",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    derive = "PartialEq",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(name = "Service", type_ = "string", json_path = ".status.serviceName"),
    printcolumn(name = "IPs", type_ = "string", json_path = ".status.ips"),
    printcolumn(
        name = "Interfaces",
        type_ = "string",
        json_path = ".status.interfaces"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct ServiceL2StatusSpec {}

/// What one node announces for one Service over layer 2.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceL2StatusStatus {
    /// The announcing node.
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub service_name: String,
    #[serde(default)]
    pub service_namespace: String,
    /// The interfaces it answers ARP / NDP on. Empty: every usable interface.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// The Service's addresses this node announces (IPv4 first).
    #[serde(default)]
    pub ips: Vec<String>,
}

/// Which peers a node advertises a Service to over BGP: one object per (Service, advertising
/// node), in the Service's namespace, owned by the Service, written by that node's speaker
/// (server-side apply, field manager `ferrolb-speaker`) and deleted when it stops advertising.
/// The spec is empty; everything is in the status (MetalLB's `ServiceBGPStatus` shape, with the
/// addresses added). Labelled like a [`ServiceL2Status`].
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "ServiceBGPStatus",
    namespaced,
    status = "ServiceBGPStatusStatus",
    shortname = "bgpstatus",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    derive = "PartialEq",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(name = "Service", type_ = "string", json_path = ".status.serviceName"),
    printcolumn(name = "IPs", type_ = "string", json_path = ".status.ips"),
    printcolumn(name = "Peers", type_ = "string", json_path = ".status.peers"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct ServiceBGPStatusSpec {}

/// What one node advertises for one Service over BGP, and to which peers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBGPStatusStatus {
    /// The advertising node.
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub service_name: String,
    #[serde(default)]
    pub service_namespace: String,
    /// The `BGPPeer`s this node hands a route of the Service to.
    #[serde(default)]
    pub peers: Vec<String>,
    /// The Service's addresses this node advertises.
    #[serde(default)]
    pub ips: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigState, Outcome};
    use crate::manifest::{Manifest, parse_documents};

    const SAVED_STATUS: &str = r#"
apiVersion: ferrolb.io/v1beta1
kind: ServiceL2Status
metadata:
  name: web.node1
  namespace: front
  labels: {ferrolb.io/node: node1, ferrolb.io/service-name: web, ferrolb.io/service-namespace: front}
spec: {}
status: {node: node1, serviceName: web, serviceNamespace: front, interfaces: [], ips: [192.0.2.10]}
---
apiVersion: metallb.io/v1beta1
kind: ServiceL2Status
metadata: {name: l2-abcde, namespace: metallb-system}
status: {node: node1, serviceName: web, serviceNamespace: front, interfaces: [{name: eth0}]}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: a}
spec: {addresses: [192.0.2.0/24]}
"#;

    #[test]
    fn a_saved_status_object_in_a_manifest_is_skipped_not_read_as_config() {
        let f = parse_documents("dump.yaml", SAVED_STATUS);
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(f.objects.len(), 1, "only the pool is read");
        assert!(matches!(
            &f.objects[0].manifest,
            Manifest::Config(c) if c.kind() == "IPAddressPool"
        ));
        let mut state = ConfigState::default();
        assert_eq!(state.offer(f.config_objects(), f.errors), Outcome::Accepted);
        assert_eq!(state.config().unwrap().pools.len(), 1);
    }

    #[test]
    fn the_status_kind_round_trips_with_its_camel_case_fields() {
        let mut s = ServiceL2Status::new("web.node1", ServiceL2StatusSpec {});
        s.status = Some(ServiceL2StatusStatus {
            node: "node1".into(),
            service_name: "web".into(),
            service_namespace: "front".into(),
            interfaces: vec![],
            ips: vec!["192.0.2.10".into()],
        });
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["apiVersion"], "ferrolb.io/v1beta1");
        assert_eq!(v["kind"], "ServiceL2Status");
        assert_eq!(v["spec"], serde_json::json!({}));
        assert_eq!(v["status"]["serviceNamespace"], "front");
        assert_eq!(v["status"]["interfaces"], serde_json::json!([]));
        let back: ServiceL2Status = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
