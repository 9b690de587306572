use super::*;
use crate::alloc::FamilyPolicy;
use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};

fn svc(annotations: &[(&str, &str)], spec: ServiceSpec) -> Service {
    let mut s = k8s::Service {
        spec: Some(spec),
        ..Default::default()
    };
    s.metadata.name = Some("web".into());
    s.metadata.namespace = Some("prod".into());
    s.metadata.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    s.into()
}

fn lb() -> ServiceSpec {
    ServiceSpec {
        type_: Some("LoadBalancer".into()),
        ..Default::default()
    }
}

#[test]
fn class_filter() {
    assert!(is_ours(&svc(&[], lb()), None));
    assert!(!is_ours(&svc(&[], lb()), Some("ferrolb.io/lb")));
    let classed = ServiceSpec {
        load_balancer_class: Some("ferrolb.io/lb".into()),
        ..lb()
    };
    assert!(is_ours(&svc(&[], classed.clone()), Some("ferrolb.io/lb")));
    assert!(!is_ours(&svc(&[], classed), None));
    assert!(!is_ours(
        &svc(
            &[],
            ServiceSpec {
                type_: Some("ClusterIP".into()),
                ..Default::default()
            }
        ),
        None
    ));
}

#[test]
fn ferrolb_prefix_wins_over_metallb() {
    let s = svc(
        &[
            ("metallb.universe.tf/address-pool", "old"),
            ("ferrolb.io/address-pool", "new"),
            ("metallb.io/allow-shared-ip", "k"),
        ],
        lb(),
    );
    let r = request(&s, &Default::default()).unwrap();
    assert_eq!(r.requested_pool.as_deref(), Some("new"));
    assert_eq!(r.sharing_key.as_deref(), Some("k"));
    assert_eq!(
        deprecated_annotations(&s),
        ["metallb.universe.tf/address-pool"]
    );
}

#[test]
fn requested_ips_from_annotation_or_spec() {
    let s = svc(&[("metallb.io/loadBalancerIPs", "10.0.0.1, fd00::1")], lb());
    let r = request(&s, &Default::default()).unwrap();
    assert_eq!(
        r.requested_ips,
        [
            "10.0.0.1".parse::<IpAddr>().unwrap(),
            "fd00::1".parse().unwrap()
        ]
    );
    let s = svc(
        &[],
        ServiceSpec {
            load_balancer_ip: Some("10.0.0.9".into()),
            ..lb()
        },
    );
    assert_eq!(
        request(&s, &Default::default()).unwrap().requested_ips,
        ["10.0.0.9".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn bad_requests_are_explained() {
    let e = request(
        &svc(&[("ferrolb.io/loadBalancerIPs", "10.0.0.1,nope")], lb()),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "annotation ferrolb.io/loadBalancerIPs: \"nope\" is not an IP address"
    );
    let e = request(
        &svc(
            &[],
            ServiceSpec {
                load_balancer_ip: Some("10.0.0.300".into()),
                ..lb()
            },
        ),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "spec.loadBalancerIP: \"10.0.0.300\" is not an IP address"
    );
    let e = request(
        &svc(
            &[],
            ServiceSpec {
                ip_families: Some(vec!["IPv5".into()]),
                ..lb()
            },
        ),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "spec.ipFamilies lists \"IPv5\", which is neither IPv4 nor IPv6"
    );
    let e = request(
        &svc(&[("ferrolb.io/loadBalancerIPs", "10.0.0.1,10.0.0.2")], lb()),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "annotation ferrolb.io/loadBalancerIPs asks for two IPv4 addresses (10.0.0.1 and \
         10.0.0.2); a Service may have at most one address per IP family"
    );
    // Three addresses: the count is the problem, whatever their families.
    let e = request(
        &svc(
            &[("metallb.io/loadBalancerIPs", "1.2.4.6,1000::4:6,1.2.4.7")],
            lb(),
        ),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "annotation metallb.io/loadBalancerIPs asks for 3 addresses (1.2.4.6, 1000::4:6, \
         1.2.4.7); a Service may have at most two, one IPv4 and one IPv6"
    );
    // The same address twice is one address.
    let r = request(
        &svc(
            &[("ferrolb.io/loadBalancerIPs", "10.0.0.1, 10.0.0.1")],
            lb(),
        ),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(r.requested_ips, ["10.0.0.1".parse::<IpAddr>().unwrap()]);
    let both = ServiceSpec {
        load_balancer_ip: Some("10.0.0.9".into()),
        ..lb()
    };
    let e = request(
        &svc(&[("ferrolb.io/loadBalancerIPs", "10.0.0.1")], both),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "both spec.loadBalancerIP and the ferrolb.io/loadBalancerIPs annotation are set; use one"
    );
}

#[test]
fn backend_key_ports_and_families() {
    let spec = ServiceSpec {
        external_traffic_policy: Some("Local".into()),
        selector: Some(
            [
                ("app".to_string(), "x".to_string()),
                ("tier".to_string(), "y".to_string()),
            ]
            .into(),
        ),
        ports: Some(vec![
            ServicePort {
                port: 53,
                protocol: Some("UDP".into()),
                ..Default::default()
            },
            ServicePort {
                port: 53,
                ..Default::default()
            },
        ]),
        ip_families: Some(vec!["IPv6".into(), "IPv4".into()]),
        ip_family_policy: Some("RequireDualStack".into()),
        ..lb()
    };
    let r = request(&svc(&[], spec), &Default::default()).unwrap();
    assert_eq!(r.backend_key, BackendKey::Local("app=x,tier=y".into()));
    assert_eq!(r.ports, [(Protocol::Udp, 53), (Protocol::Tcp, 53)]);
    assert_eq!(r.families, [Family::V6, Family::V4]);
    assert_eq!(r.family_policy, FamilyPolicy::RequireDualStack);
}

#[test]
fn status_round_trip() {
    let mut s = svc(&[], lb());
    let ips: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap()];
    apply_status(&mut s, &ips, Some("p"));
    assert_eq!(status_ips(&s), ips);
    assert_eq!(status_pool(&s), Some("p"));
    apply_status(&mut s, &[], None);
    assert!(status_ips(&s).is_empty());
    assert_eq!(status_pool(&s), None);
}

#[test]
fn a_status_object_reads_back_as_written() {
    let key = ServiceKey::new("prod", "web");
    let ips: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
    let written = status_object(&key, &ips, Some("p"));
    let ingress = written.status.as_ref().unwrap().load_balancer.as_ref();
    let ingress = ingress.unwrap().ingress.as_ref().unwrap();
    assert_eq!(ingress[0].ip_mode.as_deref(), Some("VIP"));
    let read = Service::from(written);
    assert_eq!(service_key(&read), key);
    assert_eq!(status_ips(&read), ips);
    assert_eq!(status_pool(&read), Some("p"));
    // No addresses: no ingress list and no pool annotation, as the API server shows it.
    let empty = status_object(&key, &[], None);
    let lb = empty
        .status
        .as_ref()
        .unwrap()
        .load_balancer
        .as_ref()
        .unwrap();
    assert_eq!(lb.ingress, None);
    assert_eq!(empty.metadata.annotations, None);
}
