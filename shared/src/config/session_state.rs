//! `BGPSessionState`: one BGP session of one node, as that node's speaker sees it (MetalLB's
//! kind of the same name, with the session's start and last error added), so `kubectl get
//! bgpsessionstates` (and `ferrolb status`) answer "which sessions are up, since when" without
//! scraping every speaker's metrics. One object per (node, BGPPeer), named `<peer>.<node>`,
//! in the speaker's namespace, labelled with the node; written by that node's speaker and
//! deleted when the peer goes or the speaker stops. Never configuration.

// kube-derive takes one `printcolumn(...)` per column, which clippy mistakes for repeats.
#![allow(clippy::duplicated_attributes)]

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BGPSessionState",
    namespaced,
    status = "BGPSessionStateStatus",
    shortname = "bgpsession",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    derive = "PartialEq",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(name = "Peer", type_ = "string", json_path = ".status.peer"),
    printcolumn(name = "Address", type_ = "string", json_path = ".status.peerAddress"),
    printcolumn(name = "BGP", type_ = "string", json_path = ".status.bgpStatus"),
    printcolumn(name = "BFD", type_ = "string", json_path = ".status.bfdStatus"),
    printcolumn(
        name = "Established",
        type_ = "date",
        json_path = ".status.establishedSince"
    )
)]
pub struct BGPSessionStateSpec {}

/// One session's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BGPSessionStateStatus {
    #[serde(default)]
    pub node: String,
    /// The `BGPPeer`'s name.
    #[serde(default)]
    pub peer: String,
    #[serde(default)]
    pub peer_address: String,
    /// The RFC 4271 state: Idle, Connect, Active, OpenSent, OpenConfirm, Established.
    #[serde(default)]
    pub bgp_status: String,
    /// When the session last reached Established (RFC 3339); empty while it is not.
    #[serde(default)]
    pub established_since: String,
    /// `Up`, `Down`, or `N/A` when the peer has no BFD profile.
    #[serde(default)]
    pub bfd_status: String,
    /// The last error that ended or refused the session (a NOTIFICATION, a lost
    /// connection); empty if none.
    #[serde(default)]
    pub last_error: String,
}

/// Its BFD column when the peer has no BFD profile.
pub const BFD_NOT_CONFIGURED: &str = "N/A";
