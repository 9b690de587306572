//! Kubernetes Services as FerroLB holds them ([`Service`], a projection built where one
//! enters), and what one asks of the allocator: its class, requested addresses and pool,
//! sharing key, families and ports, read from the spec and the annotations under each
//! accepted prefix.

mod view;

pub use view::{Port, Service, ServiceType};

use crate::alloc::{BackendKey, Family, Protocol, ServiceKey, ServiceRequest};
use crate::intern::intern;
use crate::ipvs::model::Proto;
use crate::selector::Labels;
use k8s_openapi::api::core::v1 as k8s;
use std::net::IpAddr;
use std::sync::Arc;

/// Annotation prefixes, most specific first: FerroLB's own wins over MetalLB's.
pub const ANNOTATION_PREFIXES: [&str; 3] = ["ferrolb.io/", "metallb.io/", "metallb.universe.tf/"];
/// MetalLB deprecated this prefix; using it still works but earns a warning Event.
pub const DEPRECATED_PREFIX: &str = "metallb.universe.tf/";
/// Set by the controller on every Service it gave an address.
pub const POOL_ANNOTATION: &str = "ferrolb.io/ip-allocated-from-pool";

/// Why a Service's request could not even be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("annotation {annotation}: {value:?} is not an IP address")]
    BadIp { annotation: String, value: String },
    #[error("spec.loadBalancerIP: {0:?} is not an IP address")]
    BadSpecIp(String),
    #[error("both spec.loadBalancerIP and the {0} annotation are set; use one")]
    BothIpFields(String),
    #[error(
        "{field} asks for {count} addresses ({}); a Service may have at most two, one IPv4 \
         and one IPv6",
        ip_list(.ips),
        count = .ips.len()
    )]
    TooManyIps { field: String, ips: Vec<IpAddr> },
    #[error(
        "{field} asks for two {family} addresses ({first} and {second}); a Service may have \
         at most one address per IP family"
    )]
    TwoOfAFamily {
        field: String,
        family: Family,
        first: IpAddr,
        second: IpAddr,
    },
    #[error("spec.ipFamilies lists {0:?}, which is neither IPv4 nor IPv6")]
    BadFamily(String),
}

/// The service's key.
pub fn service_key(svc: &Service) -> ServiceKey {
    ServiceKey {
        namespace: svc.namespace.as_deref().unwrap_or("default").into(),
        name: svc.name.to_string(),
    }
}

/// Whether this controller handles `svc`: a LoadBalancer whose class is ours. With no class
/// configured we take Services that name no class, as the default implementation does.
pub fn is_ours(svc: &Service, lb_class: Option<&str>) -> bool {
    svc.type_ == ServiceType::LoadBalancer && svc.class.as_deref() == lb_class
}

/// The value of annotation `name` under the first prefix that has it, with that prefix.
pub fn annotation<'a>(svc: &'a Service, name: &str) -> Option<(&'static str, &'a str)> {
    ANNOTATION_PREFIXES.iter().find_map(|p| {
        // Compared as prefix + name without building the string: this runs for every
        // Service on every table build.
        let wanted = || p.bytes().chain(name.bytes());
        let at = svc
            .annotations
            .binary_search_by(|(k, _)| k.bytes().cmp(wanted()))
            .ok()?;
        Some((*p, &*svc.annotations[at].1))
    })
}

/// Annotations this Service uses under the deprecated prefix (for a warning).
pub fn deprecated_annotations(svc: &Service) -> Vec<String> {
    svc.annotations
        .iter()
        .filter(|(k, _)| k.starts_with(DEPRECATED_PREFIX))
        .map(|(k, _)| k.to_string())
        .collect()
}

/// The addresses in the Service's status (parsed when it was projected: no copy).
pub fn status_ips(svc: &Service) -> &[IpAddr] {
    &svc.status_ips
}

/// The pool named in the Service's allocation annotation, if it has one.
pub fn status_pool(svc: &Service) -> Option<&str> {
    svc.pool.as_deref()
}

/// Set (or with no `ips`, clear) the addresses and pool annotation this controller owns.
pub fn apply_status(svc: &mut Service, ips: &[IpAddr], pool: Option<&str>) {
    svc.status_ips = ips.into();
    svc.pool = pool.map(intern);
}

/// A Service holding only a status, as the controller records it in standalone mode and the
/// API server would show it: `status.loadBalancer.ingress` (each address in `VIP` mode) and
/// the pool annotation.
pub fn status_object(key: &ServiceKey, ips: &[IpAddr], pool: Option<&str>) -> k8s::Service {
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
    let ingress: Vec<LoadBalancerIngress> = ips
        .iter()
        .map(|ip| LoadBalancerIngress {
            ip: Some(ip.to_string()),
            ip_mode: Some("VIP".into()),
            ..Default::default()
        })
        .collect();
    let mut svc = k8s::Service::default();
    svc.metadata.name = Some(key.name.clone());
    svc.metadata.namespace = Some(key.namespace.clone());
    svc.status = Some(ServiceStatus {
        load_balancer: Some(LoadBalancerStatus {
            ingress: (!ingress.is_empty()).then_some(ingress),
        }),
        ..Default::default()
    });
    if let Some(p) = pool {
        svc.metadata.annotations = Some([(POOL_ANNOTATION.to_string(), p.to_string())].into());
    }
    svc
}

/// Build the allocator request for `svc`.
pub fn request(
    svc: &Service,
    namespace_labels: &Arc<Labels>,
) -> Result<ServiceRequest, RequestError> {
    let spec_ip = svc.load_balancer_ip.as_deref().filter(|s| !s.is_empty());
    let mut requested_ips: Vec<IpAddr> = Vec::new();
    let mut field = "spec.loadBalancerIP".to_string();
    if let Some((prefix, list)) = annotation(svc, "loadBalancerIPs") {
        let name = format!("{prefix}loadBalancerIPs");
        field = format!("annotation {name}");
        if spec_ip.is_some() {
            return Err(RequestError::BothIpFields(name));
        }
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let ip = part.parse::<IpAddr>().map_err(|_| RequestError::BadIp {
                annotation: name.clone(),
                value: part.into(),
            })?;
            // The same address twice is one request, not two.
            if !requested_ips.contains(&ip) {
                requested_ips.push(ip);
            }
        }
    } else if let Some(ip) = spec_ip {
        requested_ips.push(ip.parse().map_err(|_| RequestError::BadSpecIp(ip.into()))?);
    }
    if requested_ips.len() > 2 {
        return Err(RequestError::TooManyIps {
            field,
            ips: requested_ips,
        });
    }
    if let [first, second] = requested_ips[..]
        && Family::of(first) == Family::of(second)
    {
        return Err(RequestError::TwoOfAFamily {
            field,
            family: Family::of(first),
            first,
            second,
        });
    }
    if let Some(bad) = &svc.bad_family {
        return Err(RequestError::BadFamily(bad.to_string()));
    }
    let backend_key = match &svc.local_selector {
        Some(selector) => BackendKey::Local(selector.to_string()),
        None => BackendKey::Cluster,
    };
    let ports = svc
        .ports
        .iter()
        .map(|p| {
            // A protocol the data path does not forward still holds the port for sharing.
            let proto = match p.protocol {
                Ok(Proto::Udp) => Protocol::Udp,
                Ok(Proto::Sctp) => Protocol::Sctp,
                Ok(Proto::Tcp) | Err(_) => Protocol::Tcp,
            };
            (proto, u16::try_from(p.port).unwrap_or(0))
        })
        .collect();
    Ok(ServiceRequest {
        key: service_key(svc),
        namespace_labels: namespace_labels.clone(),
        service_labels: svc.labels.clone().unwrap_or_default(),
        families: svc.ip_families.to_vec(),
        family_policy: svc.family_policy,
        requested_ips,
        requested_pool: annotation(svc, "address-pool")
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty()),
        sharing_key: annotation(svc, "allow-shared-ip")
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty()),
        backend_key,
        ports,
        previous_ips: status_ips(svc).to_vec(),
    })
}

fn ip_list(ips: &[IpAddr]) -> String {
    let names: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests;
