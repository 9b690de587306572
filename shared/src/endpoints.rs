//! EndpointSlices as FerroLB reads them: a slim, typed projection built where an object enters
//! (the manifest parser, the Kubernetes watcher), so no component ever stores the whole
//! Kubernetes object.
//!
//! Why: with 10,000 Services × 10 endpoints the whole objects were most of the speaker's
//! memory (a `k8s_openapi` `Endpoint` is 352 bytes before its strings: pod references with
//! uid, hints, zone, hostname, deprecated topology), while the data path, the layer 2 election
//! and BGP read only an endpoint's first address, its three conditions, its node and its pod's
//! name. The projection resolves what every reader resolved on its own before: the first
//! address parsed, the conditions with the API's defaults applied, the port's protocol parsed.
//! Node names are interned ([`crate::intern`]): thousands of endpoints share a few nodes.

use crate::intern::intern;
use crate::ipvs::build::SERVICE_NAME_LABEL;
use crate::ipvs::model::Proto;
use k8s_openapi::api::discovery::v1 as k8s;
use std::net::IpAddr;
use std::sync::Arc;

/// One EndpointSlice: its identity, the Service it belongs to (label), ports and endpoints.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Slice {
    pub name: Box<str>,
    /// Interned: a cluster has few namespaces and many slices.
    pub namespace: Option<Arc<str>>,
    /// How the Kubernetes source tells a change from a repeat (`cluster::watch`).
    pub resource_version: Option<Box<str>>,
    /// Its `kubernetes.io/service-name` label: held on its own, since a label map costs
    /// ~0.5 KB even with one label (5 MiB at 10,000 slices).
    pub service: Option<Box<str>>,
    pub ports: Vec<Port>,
    pub endpoints: Vec<Endpoint>,
}

/// A port of a slice: the target port its pods listen on, for the Service port of that name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// The Service port's name (empty for an unnamed port).
    pub name: Box<str>,
    /// `None`: a protocol FerroLB does not forward.
    pub protocol: Option<Proto>,
    /// `None`: unset, 0 or out of range (the port is unusable).
    pub port: Option<u16>,
}

/// One endpoint (a pod).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The first address, which is the one the data path uses (`None`: none, or not an IP).
    pub address: Option<IpAddr>,
    /// The conditions, unset ones defaulted as the API defines them (ready: true; serving:
    /// as ready; terminating: false).
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// The node it runs on.
    pub node: Option<Arc<str>>,
    /// `targetRef.name` (the pod's name), for logs and the status.
    pub target: Option<Box<str>>,
}

impl Slice {
    /// The Service this slice belongs to (its `kubernetes.io/service-name` label).
    pub fn service_name(&self) -> Option<&str> {
        self.service.as_deref()
    }
}

impl From<k8s::EndpointSlice> for Slice {
    fn from(s: k8s::EndpointSlice) -> Self {
        let service = s
            .metadata
            .labels
            .and_then(|mut l| l.remove(SERVICE_NAME_LABEL))
            .map(String::into_boxed_str);
        Slice {
            name: s.metadata.name.unwrap_or_default().into_boxed_str(),
            namespace: s.metadata.namespace.as_deref().map(intern),
            resource_version: s.metadata.resource_version.map(String::into_boxed_str),
            service,
            ports: s.ports.into_iter().flatten().map(Port::from).collect(),
            endpoints: s
                .endpoints
                .into_iter()
                .flatten()
                .map(Endpoint::from)
                .collect(),
        }
    }
}

impl From<k8s::EndpointPort> for Port {
    fn from(p: k8s::EndpointPort) -> Self {
        Port {
            name: p.name.unwrap_or_default().into_boxed_str(),
            protocol: Proto::from_k8s(p.protocol.as_deref()),
            port: p
                .port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0),
        }
    }
}

impl From<k8s::Endpoint> for Endpoint {
    fn from(ep: k8s::Endpoint) -> Self {
        let c = ep.conditions.as_ref();
        let ready = c.and_then(|c| c.ready).unwrap_or(true);
        Endpoint {
            address: ep.addresses.first().and_then(|a| a.parse().ok()),
            ready,
            serving: c.and_then(|c| c.serving).unwrap_or(ready),
            terminating: c.and_then(|c| c.terminating).unwrap_or(false),
            node: ep.node_name.as_deref().map(intern),
            target: ep
                .target_ref
                .and_then(|t| t.name)
                .map(String::into_boxed_str),
        }
    }
}

#[cfg(test)]
mod tests;
