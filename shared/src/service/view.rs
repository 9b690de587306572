//! A Kubernetes Service as FerroLB reads it: a slim, typed projection built where the object
//! enters (the manifest parser, the Kubernetes watcher, a status file), like the slices'
//! ([`crate::endpoints`]), so no component stores the whole Kubernetes object.
//!
//! Why: at 10,000 Services the whole objects were the largest part of the speaker's memory
//! after the slices. A `k8s_openapi` `Service` is 840 bytes of struct before its two dozen
//! strings, vectors and maps (the pool annotation alone is a one-entry map of ~0.5 KB); this
//! one is about 300 bytes and half a dozen small allocations. The projection also resolves
//! once what every reader resolved on its own: the type and policies as enums and flags, the
//! cluster addresses parsed, merged and sorted, the affinity timeout with its default, the
//! status addresses parsed, a Local Service's selector joined into its sharing key.

use crate::alloc::{Family, FamilyPolicy};
use crate::intern::intern;
use crate::ipvs::build::DEFAULT_AFFINITY;
use crate::ipvs::model::Proto;
use crate::selector::Labels;
use crate::service::{ANNOTATION_PREFIXES, POOL_ANNOTATION};
use k8s_openapi::api::core::v1 as k8s;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// One Service: identity, what the allocator, the data path, the election and BGP read of
/// its spec, and its status (the addresses and the pool the controller recorded).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Service {
    pub name: Box<str>,
    /// Interned: a cluster has few namespaces and many Services.
    pub namespace: Option<Arc<str>>,
    /// For Events and the owner references of status objects.
    pub uid: Option<Box<str>>,
    /// How the Kubernetes source tells a change from a repeat (`cluster::watch`).
    pub resource_version: Option<Box<str>>,
    /// Kept only where something reads them: the controller's allocation (an
    /// IPAddressPool's `serviceSelectors`). See `cluster::keep_service_labels`.
    pub labels: Option<Arc<Labels>>,
    /// The annotations under FerroLB's and MetalLB's prefixes ([`ANNOTATION_PREFIXES`]),
    /// sorted by key, except the pool annotation, which is [`Service::pool`].
    pub annotations: Box<[(Box<str>, Box<str>)]>,
    pub type_: ServiceType,
    /// `spec.loadBalancerClass`, interned (a cluster has few classes).
    pub class: Option<Arc<str>>,
    /// `spec.clusterIP` is `None`: DNS only, nothing to forward.
    pub headless: bool,
    /// `spec.clusterIP` and `spec.clusterIPs` parsed, merged, sorted, without repeats.
    pub cluster_ips: Box<[IpAddr]>,
    /// `spec.externalIPs` parsed, in order (ones that do not parse are left out).
    pub external_ips: Box<[IpAddr]>,
    /// `spec.loadBalancerIP` as written (an error message quotes it).
    pub load_balancer_ip: Option<Box<str>>,
    /// `spec.externalTrafficPolicy` is `Local`.
    pub external_local: bool,
    /// `spec.internalTrafficPolicy` is `Local`.
    pub internal_local: bool,
    /// `spec.ipFamilies` up to the first value that is neither `IPv4` nor `IPv6`.
    pub ip_families: Box<[Family]>,
    /// That value, if there is one (the allocator refuses the Service, naming it).
    pub bad_family: Option<Box<str>>,
    pub family_policy: FamilyPolicy,
    /// `spec.sessionAffinity` is `ClientIP`: for how long (the default when unset or negative).
    pub affinity: Option<Duration>,
    pub health_check_node_port: Option<i32>,
    pub ports: Box<[Port]>,
    /// A Local Service's selector as `k=v,...` in key order: its address sharing key (two
    /// Local Services share an address only if they select the same pods). `None` for
    /// other Services, whose pods are found through their EndpointSlices alone.
    pub local_selector: Option<Box<str>>,
    /// `status.loadBalancer.ingress[].ip` parsed, in order, repeats kept.
    pub status_ips: Box<[IpAddr]>,
    /// The pool annotation ([`POOL_ANNOTATION`]), interned (a cluster has few pools).
    pub pool: Option<Arc<str>>,
}

/// `spec.type`. An unset or unknown type reads as `ClusterIP`, which is what every reader
/// did with it (none treats it as a LoadBalancer or a NodePort).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceType {
    #[default]
    ClusterIp,
    NodePort,
    LoadBalancer,
    ExternalName,
}

impl ServiceType {
    fn parse(s: Option<&str>) -> Self {
        match s {
            Some("NodePort") => ServiceType::NodePort,
            Some("LoadBalancer") => ServiceType::LoadBalancer,
            Some("ExternalName") => ServiceType::ExternalName,
            _ => ServiceType::ClusterIp,
        }
    }

    /// Whether the Service has node ports (NodePort and LoadBalancer).
    pub fn has_node_ports(self) -> bool {
        matches!(self, ServiceType::NodePort | ServiceType::LoadBalancer)
    }
}

/// One Service port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Empty for an unnamed port.
    pub name: Box<str>,
    /// `Err`: a protocol FerroLB does not forward, as written (a warning quotes it).
    pub protocol: Result<Proto, Box<str>>,
    pub port: i32,
    pub node_port: Option<i32>,
}

impl Service {
    /// The projection of `s`, with its labels only if `keep_labels`.
    pub fn project(s: k8s::Service, keep_labels: bool) -> Self {
        let meta = s.metadata;
        let mut annotations: Vec<(Box<str>, Box<str>)> = Vec::new();
        let mut pool = None;
        for (k, v) in meta.annotations.into_iter().flatten() {
            if k == POOL_ANNOTATION {
                pool = Some(intern(&v));
            } else if ANNOTATION_PREFIXES.iter().any(|p| k.starts_with(p)) {
                annotations.push((k.into(), v.into()));
            }
        }
        let spec = s.spec.unwrap_or_default();
        let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
        let (ip_families, bad_family) = families(spec.ip_families.as_deref().unwrap_or(&[]));
        Service {
            name: meta.name.unwrap_or_default().into(),
            namespace: meta.namespace.as_deref().map(intern),
            uid: meta.uid.map(Into::into),
            resource_version: meta.resource_version.map(Into::into),
            labels: meta.labels.filter(|_| keep_labels).map(Arc::new),
            annotations: annotations.into(),
            type_: ServiceType::parse(spec.type_.as_deref()),
            class: spec.load_balancer_class.as_deref().map(intern),
            headless: spec.cluster_ip.as_deref() == Some("None"),
            cluster_ips: parsed(spec.cluster_ips.iter().flatten().chain(&spec.cluster_ip))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            external_ips: parsed(spec.external_ips.iter().flatten()).collect(),
            load_balancer_ip: spec.load_balancer_ip.map(Into::into),
            external_local,
            internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            ip_families,
            bad_family,
            family_policy: match spec.ip_family_policy.as_deref() {
                Some("PreferDualStack") => FamilyPolicy::PreferDualStack,
                Some("RequireDualStack") => FamilyPolicy::RequireDualStack,
                _ => FamilyPolicy::SingleStack,
            },
            affinity: (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
                let secs = spec
                    .session_affinity_config
                    .and_then(|c| c.client_ip)
                    .and_then(|c| c.timeout_seconds);
                secs.and_then(|s| u64::try_from(s).ok())
                    .map_or(DEFAULT_AFFINITY, Duration::from_secs)
            }),
            health_check_node_port: spec.health_check_node_port,
            ports: spec.ports.into_iter().flatten().map(Port::from).collect(),
            local_selector: external_local.then(|| {
                let pairs: Vec<String> = spec
                    .selector
                    .iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                pairs.join(",").into()
            }),
            status_ips: parsed(
                s.status
                    .and_then(|s| s.load_balancer)
                    .and_then(|lb| lb.ingress)
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.ip),
            )
            .collect(),
            pool,
        }
    }
}

/// Every field, labels included (what tests and one-off readers want).
impl From<k8s::Service> for Service {
    fn from(s: k8s::Service) -> Self {
        Service::project(s, true)
    }
}

impl From<k8s::ServicePort> for Port {
    fn from(p: k8s::ServicePort) -> Self {
        Port {
            name: p.name.unwrap_or_default().into(),
            protocol: Proto::from_k8s(p.protocol.as_deref())
                .ok_or_else(|| p.protocol.unwrap_or_default().into()),
            port: p.port,
            node_port: p.node_port,
        }
    }
}

fn parsed<S: AsRef<str>>(texts: impl IntoIterator<Item = S>) -> impl Iterator<Item = IpAddr> {
    texts.into_iter().filter_map(|s| s.as_ref().parse().ok())
}

/// The families listed, up to the first that is neither, and that one.
fn families(names: &[String]) -> (Box<[Family]>, Option<Box<str>>) {
    let mut out = Vec::new();
    for name in names {
        match name.as_str() {
            "IPv4" => out.push(Family::V4),
            "IPv6" => out.push(Family::V6),
            other => return (out.into(), Some(other.into())),
        }
    }
    (out.into(), None)
}
