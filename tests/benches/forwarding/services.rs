//! Synthetic Services and EndpointSlices, turned into the node's virtual server table by the
//! speaker's own code (`build_table`, as `Snapshot::table` does). Every address is in the lab's
//! plan: ClusterIPs in 10.96.0.0/16, endpoints in the pod range 10.244.0.0/16.

use ferrolb_shared::endpoints::Slice;
use ferrolb_shared::ipvs::build::{NodeView, Options, build_table};
use ferrolb_shared::ipvs::model::Table;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};

pub const NAMESPACE: &str = "bench";

/// `10.96.0.0 + 1 + i`.
fn cluster_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + 1 + i as u32 % 65_000)
}

/// Endpoint `k` of Service `i`: somewhere in 10.244.0.0/16 (addresses repeat across Services
/// beyond 65,000 endpoints, which nothing here minds).
fn endpoint(i: usize, k: usize, per_service: usize) -> Ipv4Addr {
    let n = (i * per_service + k) % 65_000;
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 0)) + 1 + n as u32)
}

/// `n` ClusterIP Services (one TCP port, 80 → 8080), each with `per_service` ready endpoints
/// in one EndpointSlice, on another node than the one programmed.
pub fn cluster_ip_services(n: usize, per_service: usize) -> (Vec<Service>, Vec<EndpointSlice>) {
    let mut services = Vec::with_capacity(n);
    let mut slices = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("svc-{i}");
        let ip = cluster_ip(i).to_string();
        services.push(service(json!({
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
        })));
        let addrs: Vec<IpAddr> = (0..per_service)
            .map(|k| endpoint(i, k, per_service).into())
            .collect();
        slices.push(slice(&name, &addrs, "node3", &[("http", 8080)]));
    }
    (services, slices)
}

/// One LoadBalancer Service at `vip` (Cluster policy, no NodePorts) with these TCP ports, all
/// served by `backend` on `node`.
pub fn load_balancer(
    vip: IpAddr,
    backend: IpAddr,
    node: &str,
    ports: &[(&str, u16)],
) -> (Service, EndpointSlice) {
    let name = "bench-lb";
    let ip = cluster_ip(64_999).to_string();
    let svc_ports: Vec<_> = ports
        .iter()
        .map(|(n, p)| json!({"name": n, "port": p, "targetPort": p, "protocol": "TCP"}))
        .collect();
    let svc = service(json!({
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"type": "LoadBalancer", "clusterIP": ip, "clusterIPs": [ip],
                 "allocateLoadBalancerNodePorts": false, "ports": svc_ports},
        "status": {"loadBalancer": {"ingress": [{"ip": vip.to_string()}]}}
    }));
    (svc, slice(name, &[backend], node, ports))
}

fn service(v: serde_json::Value) -> Service {
    serde_json::from_value(v).expect("a valid Service")
}

fn slice(service: &str, addrs: &[IpAddr], node: &str, ports: &[(&str, u16)]) -> EndpointSlice {
    let endpoints: Vec<_> = addrs
        .iter()
        .map(|a| json!({"addresses": [a.to_string()], "conditions": {"ready": true}, "nodeName": node}))
        .collect();
    let ports: Vec<_> = ports
        .iter()
        .map(|(n, p)| json!({"name": n, "port": p, "protocol": "TCP"}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("{service}-x1"), "namespace": NAMESPACE,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports
    }))
    .expect("a valid EndpointSlice")
}

/// Replace endpoint `k` of slice `i` with `addr` (one endpoint leaves, another joins).
pub fn move_endpoint(slices: &mut [EndpointSlice], i: usize, k: usize, addr: Ipv4Addr) {
    if let Some(ep) = slices[i].endpoints.as_mut().and_then(|e| e.get_mut(k)) {
        ep.addresses = vec![addr.to_string()];
    }
}

/// The table node `node` (at `addr`) programs, exactly as the speaker computes it from a
/// snapshot (which clones the objects first, as timed here).
pub fn table(services: &[Service], slices: &[EndpointSlice], node: &str, addr: IpAddr) -> Table {
    let services: Vec<_> = services.iter().cloned().map(Into::into).collect();
    let slices: Vec<Slice> = slices.iter().cloned().map(Slice::from).collect();
    let view = NodeView {
        name: node.into(),
        addresses: vec![addr],
    };
    build_table(&services, &slices, &view, &Options::default()).0
}
