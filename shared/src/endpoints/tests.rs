use super::*;
use serde_json::json;

fn k8s_slice(v: serde_json::Value) -> k8s::EndpointSlice {
    serde_json::from_value(v).unwrap()
}

#[test]
fn the_projection_keeps_what_readers_use_and_resolves_the_defaults() {
    let s = Slice::from(k8s_slice(json!({
        "metadata": {
            "name": "web-abcde", "namespace": "shop", "generateName": "web-",
            "uid": "0c7d", "resourceVersion": "42",
            "labels": {"kubernetes.io/service-name": "web",
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
            "annotations": {"a": "b"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "9"}]
        },
        "addressType": "IPv4",
        "ports": [
            {"name": "http", "port": 8080, "protocol": "TCP"},
            {"port": 53},
            {"name": "odd", "port": 0, "protocol": "ICMP"}
        ],
        "endpoints": [
            {"addresses": ["10.244.1.5", "10.244.1.6"],
             "conditions": {"ready": true, "serving": true, "terminating": false},
             "nodeName": "node1", "zone": "z1", "hostname": "h",
             "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop", "uid": "u1"}},
            {"addresses": ["fd00::5"], "conditions": {"ready": false, "terminating": true}},
            {"addresses": ["not-an-ip"], "conditions": {"ready": false, "serving": true}},
            {"addresses": []}
        ]
    })));
    assert_eq!(&*s.name, "web-abcde");
    assert_eq!(s.namespace.as_deref(), Some("shop"));
    assert_eq!(s.service_name(), Some("web"));
    // Of the metadata only these are kept (the struct has no room for more).
    assert_eq!(s.resource_version.as_deref(), Some("42"));

    assert_eq!(
        s.ports,
        vec![
            Port {
                name: "http".into(),
                protocol: Some(Proto::Tcp),
                port: Some(8080)
            },
            Port {
                name: "".into(),
                protocol: Some(Proto::Tcp),
                port: Some(53)
            },
            Port {
                name: "odd".into(),
                protocol: None,
                port: None
            },
        ]
    );
    let [first, second, third, fourth] = &s.endpoints[..] else {
        panic!("four endpoints expected: {:?}", s.endpoints);
    };
    assert_eq!(first.address, Some("10.244.1.5".parse().unwrap()));
    assert!(first.ready && first.serving && !first.terminating);
    assert_eq!(first.node.as_deref(), Some("node1"));
    assert_eq!(first.target.as_deref(), Some("web-1"));
    // serving defaults to ready; terminating to false; ready to true.
    assert_eq!(second.address, Some("fd00::5".parse().unwrap()));
    assert!(!second.ready && !second.serving && second.terminating);
    assert_eq!((second.node.clone(), second.target.clone()), (None, None));
    assert_eq!(third.address, None);
    assert!(!third.ready && third.serving && !third.terminating);
    assert_eq!(fourth.address, None);
    assert!(fourth.ready && fourth.serving && !fourth.terminating);
}

#[test]
fn endpoints_on_one_node_share_its_name() {
    let s = Slice::from(k8s_slice(json!({
        "metadata": {"name": "a", "namespace": "n"},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.0.0.1"], "nodeName": "endpoints-test-node"},
            {"addresses": ["10.0.0.2"], "nodeName": "endpoints-test-node"}
        ]
    })));
    let (a, b) = (s.endpoints[0].node.as_ref(), s.endpoints[1].node.as_ref());
    assert!(Arc::ptr_eq(a.unwrap(), b.unwrap()));
}

#[test]
fn a_slice_without_endpoints_or_ports_is_empty_not_an_error() {
    let s = Slice::from(k8s_slice(json!({
        "metadata": {"name": "a"}, "addressType": "IPv4", "endpoints": []
    })));
    assert!(s.ports.is_empty() && s.endpoints.is_empty());
    assert_eq!(s.service_name(), None);
}
