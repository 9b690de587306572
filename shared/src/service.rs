//! What a Kubernetes Service asks of the allocator: its class, requested addresses and pool,
//! sharing key, families and ports, read from the spec and the annotations under each
//! accepted prefix.

use crate::alloc::{BackendKey, Family, FamilyPolicy, Protocol, ServiceKey, ServiceRequest};
use crate::selector::Labels;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use std::net::IpAddr;

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
        namespace: svc
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name: svc.metadata.name.clone().unwrap_or_default(),
    }
}

/// Whether this controller handles `svc`: a LoadBalancer whose class is ours. With no class
/// configured we take Services that name no class, as the default implementation does.
pub fn is_ours(svc: &Service, lb_class: Option<&str>) -> bool {
    let Some(spec) = &svc.spec else { return false };
    spec.type_.as_deref() == Some("LoadBalancer") && spec.load_balancer_class.as_deref() == lb_class
}

/// The value of annotation `name` under the first prefix that has it, with that prefix.
pub fn annotation<'a>(svc: &'a Service, name: &str) -> Option<(&'static str, &'a str)> {
    let annotations = svc.metadata.annotations.as_ref()?;
    ANNOTATION_PREFIXES.iter().find_map(|p| {
        annotations
            .get(&format!("{p}{name}"))
            .map(|v| (*p, v.as_str()))
    })
}

/// Annotations this Service uses under the deprecated prefix (for a warning).
pub fn deprecated_annotations(svc: &Service) -> Vec<String> {
    let Some(a) = &svc.metadata.annotations else {
        return Vec::new();
    };
    a.keys()
        .filter(|k| k.starts_with(DEPRECATED_PREFIX))
        .cloned()
        .collect()
}

/// The addresses in the Service's status.
pub fn status_ips(svc: &Service) -> Vec<IpAddr> {
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    ingress
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect()
}

/// The pool named in the Service's allocation annotation, if it has one.
pub fn status_pool(svc: &Service) -> Option<&str> {
    svc.metadata
        .annotations
        .as_ref()?
        .get(POOL_ANNOTATION)
        .map(String::as_str)
}

/// Set (or with no `ips`, clear) the addresses and pool annotation this controller owns.
pub fn apply_status(svc: &mut Service, ips: &[IpAddr], pool: Option<&str>) {
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
    let ingress: Vec<LoadBalancerIngress> = ips
        .iter()
        .map(|ip| LoadBalancerIngress {
            ip: Some(ip.to_string()),
            ip_mode: Some("VIP".into()),
            ..Default::default()
        })
        .collect();
    let status = svc.status.get_or_insert_with(ServiceStatus::default);
    status.load_balancer = Some(LoadBalancerStatus {
        ingress: (!ingress.is_empty()).then_some(ingress),
    });
    let annotations = svc
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    match pool {
        Some(p) => {
            annotations.insert(POOL_ANNOTATION.into(), p.into());
        }
        None => {
            annotations.remove(POOL_ANNOTATION);
        }
    }
}

/// Build the allocator request for `svc`.
pub fn request(svc: &Service, namespace_labels: &Labels) -> Result<ServiceRequest, RequestError> {
    let no_spec = ServiceSpec::default();
    let spec = svc.spec.as_ref().unwrap_or(&no_spec);
    let mut requested_ips: Vec<IpAddr> = Vec::new();
    let mut field = "spec.loadBalancerIP".to_string();
    if let Some((prefix, list)) = annotation(svc, "loadBalancerIPs") {
        let name = format!("{prefix}loadBalancerIPs");
        field = format!("annotation {name}");
        if spec
            .load_balancer_ip
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
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
    } else if let Some(ip) = spec.load_balancer_ip.as_deref().filter(|s| !s.is_empty()) {
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
    let families = spec
        .ip_families
        .iter()
        .flatten()
        .map(|f| match f.as_str() {
            "IPv4" => Ok(Family::V4),
            "IPv6" => Ok(Family::V6),
            other => Err(RequestError::BadFamily(other.into())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let family_policy = match spec.ip_family_policy.as_deref() {
        Some("PreferDualStack") => FamilyPolicy::PreferDualStack,
        Some("RequireDualStack") => FamilyPolicy::RequireDualStack,
        _ => FamilyPolicy::SingleStack,
    };
    let backend_key = if spec.external_traffic_policy.as_deref() == Some("Local") {
        BackendKey::Local(
            // The sources keep a Service's selector only when its policy is Local, for this
            // (`ClusterObject::service`).
            spec.selector
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        )
    } else {
        BackendKey::Cluster
    };
    let ports = spec
        .ports
        .iter()
        .flatten()
        .map(|p| {
            let proto = match p.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            (proto, u16::try_from(p.port).unwrap_or(0))
        })
        .collect();
    Ok(ServiceRequest {
        key: service_key(svc),
        namespace_labels: namespace_labels.clone(),
        service_labels: svc.metadata.labels.clone().unwrap_or_default(),
        families,
        family_policy,
        requested_ips,
        requested_pool: annotation(svc, "address-pool")
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty()),
        sharing_key: annotation(svc, "allow-shared-ip")
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty()),
        backend_key,
        ports,
        previous_ips: status_ips(svc),
    })
}

fn ip_list(ips: &[IpAddr]) -> String {
    let names: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests;
