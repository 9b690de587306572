//! The constructors' trimming: what goes, and that every field a reader uses stays.

use super::*;
use crate::service::{annotation, deprecated_annotations, is_ours, service_key, status_ips};

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
    let s = trimmed_service(before.clone(), true);
    // Everything the readers use, unchanged.
    assert_eq!(service_key(&s), service_key(&before));
    assert_eq!(s.metadata.uid, before.metadata.uid);
    assert_eq!(
        s.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(s.metadata.labels, before.metadata.labels);
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
    assert_eq!(status_ips(&s), status_ips(&before));
    assert_eq!(crate::service::status_pool(&s), Some("blue"));
    let (spec, was) = (s.spec.as_ref().unwrap(), before.spec.as_ref().unwrap());
    assert_eq!(
        spec.selector, was.selector,
        "a Local Service keeps its selector"
    );
    for (p, q) in spec.ports.iter().flatten().zip(was.ports.iter().flatten()) {
        assert_eq!(
            (&p.name, p.port, &p.protocol, p.node_port),
            (&q.name, q.port, &q.protocol, q.node_port)
        );
    }
    assert_eq!(spec.cluster_ips, was.cluster_ips);
    assert_eq!(spec.external_ips, was.external_ips);
    assert_eq!(spec.session_affinity_config, was.session_affinity_config);
    assert_eq!(spec.health_check_node_port, was.health_check_node_port);
    assert_eq!(spec.ip_families, was.ip_families);
    // The rest is gone.
    let m = &s.metadata;
    let kept: Vec<&String> = m.annotations.iter().flat_map(|a| a.keys()).collect();
    assert_eq!(
        kept,
        [
            "ferrolb.io/address-pool",
            "ferrolb.io/ip-allocated-from-pool",
            "metallb.universe.tf/allow-shared-ip"
        ]
    );
    assert!(m.managed_fields.is_none() && m.finalizers.is_none() && m.owner_references.is_none());
    assert!(m.generate_name.is_none() && m.self_link.is_none());
    assert!(spec.load_balancer_source_ranges.is_none() && spec.traffic_distribution.is_none());
    let port = &spec.ports.as_ref().unwrap()[0];
    assert!(port.target_port.is_none() && port.app_protocol.is_none());
    let status = s.status.as_ref().unwrap();
    assert!(status.conditions.is_none());
    let ingress = &status
        .load_balancer
        .as_ref()
        .unwrap()
        .ingress
        .as_ref()
        .unwrap()[0];
    assert!(ingress.ip_mode.is_none() && ingress.ports.is_none());
}

#[test]
fn labels_go_where_nobody_reads_them_and_empty_maps_go_too() {
    let s = trimmed_service(full(), false);
    assert!(s.metadata.labels.is_none());
    let mut plain = full();
    plain.metadata.annotations = Some(
        [("meta.helm.sh/release-name".to_owned(), "shop".to_owned())]
            .into_iter()
            .collect(),
    );
    plain.spec.as_mut().unwrap().external_traffic_policy = Some("Cluster".into());
    let s = trimmed_service(plain, true);
    assert!(
        s.metadata.annotations.is_none(),
        "no FerroLB or MetalLB annotation: no map"
    );
    assert!(s.spec.unwrap().selector.is_none(), "not Local: no selector");
}
