//! The constructors' trimming and projection: what goes, and that every field a reader uses
//! stays.

use super::*;
use crate::service::{
    Port, ServiceType, annotation, deprecated_annotations, is_ours, service_key, status_ips,
};
use std::net::IpAddr;

/// A Service as the API server returns it after a busy life: Helm's and kubectl's
/// annotations, a finalizer, an owner, a named target port, a status with conditions.
fn full() -> Service {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
            "generateName": "web-", "selfLink": "/api/v1/namespaces/shop/services/web",
            "finalizers": ["service.kubernetes.io/load-balancer-cleanup"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "x"}],
            "labels": {"app": "web", "tier": "front"},
            "annotations": {
                "meta.helm.sh/release-name": "shop",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "ferrolb.io/address-pool": "blue",
                "metallb.universe.tf/allow-shared-ip": "k",
                "ferrolb.io/ip-allocated-from-pool": "blue",
            },
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        },
        "spec": {
            "type": "LoadBalancer", "loadBalancerClass": "ferrolb",
            "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Cluster",
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http-alt", "protocol": "TCP",
                       "appProtocol": "http", "nodePort": 31000}],
            "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "externalIPs": ["192.0.2.9"], "loadBalancerSourceRanges": ["198.51.100.0/24"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
            "healthCheckNodePort": 32000, "trafficDistribution": "PreferClose",
        },
        "status": {
            "loadBalancer": {"ingress": [{"ip": "203.0.113.5", "ipMode": "VIP",
                                          "ports": [{"port": 80, "protocol": "TCP"}]}]},
            "conditions": [{"type": "Ready", "status": "True", "reason": "R", "message": "m",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        },
    }))
    .unwrap()
}

#[test]
fn a_service_keeps_what_is_read_and_nothing_else() {
    let before = full();
    let s = crate::service::Service::project(before.clone(), true);
    // Everything the readers use, resolved once.
    assert_eq!(service_key(&s), ServiceKey::new("shop", "web"));
    assert_eq!(s.uid.as_deref(), Some("u-1"));
    assert_eq!(s.resource_version.as_deref(), Some("42"));
    assert_eq!(s.labels.as_deref(), before.metadata.labels.as_ref());
    assert!(is_ours(&s, Some("ferrolb")));
    assert_eq!(
        annotation(&s, "address-pool"),
        Some(("ferrolb.io/", "blue"))
    );
    assert_eq!(
        annotation(&s, "allow-shared-ip"),
        Some(("metallb.universe.tf/", "k"))
    );
    assert_eq!(
        deprecated_annotations(&s),
        ["metallb.universe.tf/allow-shared-ip"]
    );
    assert_eq!(status_ips(&s), ["203.0.113.5".parse::<IpAddr>().unwrap()]);
    assert_eq!(crate::service::status_pool(&s), Some("blue"));
    assert_eq!(s.type_, ServiceType::LoadBalancer);
    assert!(s.external_local && !s.internal_local && !s.headless);
    assert_eq!(
        s.local_selector.as_deref(),
        Some("app=web"),
        "a Local Service keeps its selector, as its sharing key"
    );
    assert_eq!(
        &*s.ports,
        [Port {
            name: "http".into(),
            protocol: Ok(crate::ipvs::model::Proto::Tcp),
            port: 80,
            node_port: Some(31000),
        }]
    );
    assert_eq!(&*s.cluster_ips, ["10.96.0.10".parse::<IpAddr>().unwrap()]);
    assert_eq!(&*s.external_ips, ["192.0.2.9".parse::<IpAddr>().unwrap()]);
    assert_eq!(s.affinity, Some(std::time::Duration::from_secs(60)));
    assert_eq!(s.health_check_node_port, Some(32000));
    assert_eq!(&*s.ip_families, [crate::alloc::Family::V4]);
    assert_eq!(s.bad_family, None);
    // The rest is gone: only annotations under FerroLB's and MetalLB's prefixes stay (the
    // pool's is a field of its own).
    let kept: Vec<&str> = s.annotations.iter().map(|(k, _)| &**k).collect();
    assert_eq!(
        kept,
        [
            "ferrolb.io/address-pool",
            "metallb.universe.tf/allow-shared-ip"
        ]
    );
}

#[test]
fn labels_go_where_nobody_reads_them_and_other_fields_resolve() {
    let s = crate::service::Service::project(full(), false);
    assert!(s.labels.is_none());
    let mut plain = full();
    plain.metadata.annotations = Some(
        [("meta.helm.sh/release-name".to_owned(), "shop".to_owned())]
            .into_iter()
            .collect(),
    );
    let spec = plain.spec.as_mut().unwrap();
    spec.external_traffic_policy = Some("Cluster".into());
    spec.cluster_ip = Some("None".into());
    spec.cluster_ips = Some(vec!["fd00::a".into(), "10.96.0.1".into(), "fd00::a".into()]);
    spec.session_affinity_config = None;
    spec.ip_families = Some(vec!["IPv6".into(), "IPv5".into(), "IPv4".into()]);
    spec.ports.as_mut().unwrap()[0].protocol = Some("QUIC".into());
    let s = crate::service::Service::project(plain, true);
    assert!(s.annotations.is_empty(), "no FerroLB or MetalLB annotation");
    assert_eq!(s.local_selector, None, "not Local: no selector");
    assert!(s.headless);
    assert_eq!(
        &*s.cluster_ips,
        [
            "10.96.0.1".parse::<IpAddr>().unwrap(),
            "fd00::a".parse().unwrap()
        ],
        "merged, sorted, once each; `None` is no address"
    );
    assert_eq!(s.affinity, Some(crate::ipvs::build::DEFAULT_AFFINITY));
    assert_eq!(&*s.ip_families, [crate::alloc::Family::V6]);
    assert_eq!(s.bad_family.as_deref(), Some("IPv5"));
    assert_eq!(s.ports[0].protocol, Err("QUIC".into()));
}
