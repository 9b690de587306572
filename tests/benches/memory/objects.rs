//! The cluster the benchmark loads, as JSON objects shaped like a real cluster's: what the API
//! server returns for them (defaulted Service fields), EndpointSlices as Kubernetes'
//! EndpointSlice controller writes them, labelled Nodes. The same objects go to the manifest
//! directory (as YAML) and to the fake API server; only the binaries read them, so nothing
//! here uses the workspace's own types.
//!
//! Addresses: the pool is 10.200.0.0/16 (10.192.0.0/12 above 60,000 Services), ClusterIPs come
//! from 10.96.0.0/12, pod IPs from 10.128.0.0/10, nodes are 192.168.10.11-13. Everything
//! random (name suffixes, pod and owner UIDs) comes from a fixed seed, so two runs load the
//! same cluster.

use serde_json::{Value, json};
use std::net::Ipv4Addr;

/// The namespace of FerroLB's own objects (its configuration, the controller's Lease).
pub const SYSTEM_NS: &str = "ferrolb-system";
/// The namespaces the Services are spread over, in turn.
pub const APP_NAMESPACES: [&str; 5] = ["default", "shop", "payments", "analytics", "platform"];
/// The nodes; the speaker runs as the first.
pub const NODES: [&str; 3] = ["node1", "node2", "node3"];
const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];
/// Most Services a run may have: the pool below and the ClusterIP range must hold them.
pub const MAX_SERVICES: usize = 200_000;
/// Most endpoints all Services together may have (pod IPs come from a /10).
pub const MAX_ENDPOINTS: usize = 4_000_000;
/// The time every object claims to have been written at.
const WRITTEN: &str = "2026-12-08T09:00:00Z";

/// The pool's addresses for `services` Services.
pub fn pool_cidr(services: usize) -> &'static str {
    if services <= 60_000 {
        "10.200.0.0/16"
    } else {
        "10.192.0.0/12"
    }
}

/// Makes the objects; deterministic.
pub struct Objects {
    services: usize,
    endpoints: usize,
    rng: Rng,
}

impl Objects {
    pub fn new(services: usize, endpoints: usize) -> Objects {
        Objects {
            services,
            endpoints,
            rng: Rng(0x9e37_79b9_7f4a_7c15),
        }
    }

    /// The Namespaces: FerroLB's and the applications'.
    pub fn namespaces(&self) -> Vec<Value> {
        std::iter::once(SYSTEM_NS)
            .chain(APP_NAMESPACES)
            .map(|ns| {
                json!({
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": {
                        "name": ns,
                        "labels": { "kubernetes.io/metadata.name": ns },
                    },
                    "spec": { "finalizers": ["kubernetes"] },
                })
            })
            .collect()
    }

    /// The Nodes, with the labels and addresses a kubelet reports.
    pub fn nodes(&self) -> Vec<Value> {
        NODES
            .iter()
            .zip(ZONES)
            .enumerate()
            .map(|(i, (node, zone))| {
                json!({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {
                        "name": node,
                        "labels": {
                            "kubernetes.io/hostname": node,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "beta.kubernetes.io/os": "linux",
                            "beta.kubernetes.io/arch": "amd64",
                            "node.kubernetes.io/instance-type": "metal",
                            "topology.kubernetes.io/region": "region-1",
                            "topology.kubernetes.io/zone": zone,
                        },
                    },
                    "status": {
                        "addresses": [
                            { "type": "InternalIP", "address": format!("192.168.10.{}", 11 + i) },
                            { "type": "Hostname", "address": node },
                        ],
                        "conditions": [{
                            "type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": WRITTEN, "lastTransitionTime": WRITTEN,
                        }],
                    },
                })
            })
            .collect()
    }

    /// FerroLB's configuration: one pool large enough for every Service, announced in
    /// layer 2 (the speaker under test runs with `--layer2 false`, so it announces nothing).
    pub fn config(&self) -> Vec<Value> {
        vec![
            json!({
                "apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
                "metadata": { "name": "services", "namespace": SYSTEM_NS },
                "spec": { "addresses": [pool_cidr(self.services)] },
            }),
            json!({
                "apiVersion": "ferrolb.io/v1beta1", "kind": "L2Advertisement",
                "metadata": { "name": "lan", "namespace": SYSTEM_NS },
                "spec": { "ipAddressPools": ["services"] },
            }),
        ]
    }

    /// Service `i`'s namespace and name.
    pub fn service_key(i: usize) -> (&'static str, String) {
        (
            APP_NAMESPACES[i % APP_NAMESPACES.len()],
            format!("app-{i:06}"),
        )
    }

    /// Service `i` as the API server holds it after `kubectl apply` (its defaults filled in;
    /// no status yet). `allocateLoadBalancerNodePorts: false`: 10,000 LoadBalancer Services
    /// could not all have node ports (the range holds 2,768).
    pub fn service(&mut self, i: usize) -> Value {
        let (ns, name) = Self::service_key(i);
        let cluster_ip = ip(Ipv4Addr::new(10, 96, 0, 0), 10 + i);
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {
                "name": name, "namespace": ns,
                "uid": self.rng.uuid(),
                "creationTimestamp": WRITTEN,
                "labels": {
                    "app.kubernetes.io/name": name,
                    "app.kubernetes.io/part-of": ns,
                },
            },
            "spec": {
                "type": "LoadBalancer",
                "selector": { "app.kubernetes.io/name": name },
                "ports": [{ "name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP" }],
                "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
                "sessionAffinity": "None",
                "allocateLoadBalancerNodePorts": false,
            },
        })
    }

    /// The EndpointSlice of Service `i` (whose uid is `service_uid`), as the EndpointSlice
    /// controller writes it: `<service>-<5 random>` from generateName, the Service's labels and
    /// the controller's two, an owner reference, every pod ready on the target port.
    pub fn slice(&mut self, i: usize, service_uid: &str) -> Value {
        let (ns, name) = Self::service_key(i);
        let replica_set = format!("{name}-{}", self.rng.suffix(10));
        let endpoints: Vec<Value> = (0..self.endpoints)
            .map(|j| {
                let pod = i * self.endpoints + j;
                let node = pod % NODES.len();
                json!({
                    "addresses": [ip(Ipv4Addr::new(10, 128, 0, 0), pod)],
                    "conditions": { "ready": true, "serving": true, "terminating": false },
                    "nodeName": NODES[node],
                    "targetRef": {
                        "kind": "Pod", "namespace": ns,
                        "name": format!("{replica_set}-{}", self.rng.suffix(5)),
                        "uid": self.rng.uuid(),
                    },
                    "zone": ZONES[node],
                })
            })
            .collect();
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {
                "name": format!("{name}-{}", self.rng.suffix(5)),
                "generateName": format!("{name}-"),
                "namespace": ns,
                "uid": self.rng.uuid(),
                "creationTimestamp": WRITTEN,
                "labels": {
                    "app.kubernetes.io/name": name,
                    "app.kubernetes.io/part-of": ns,
                    "kubernetes.io/service-name": name,
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                },
                "annotations": { "endpoints.kubernetes.io/last-change-trigger-time": WRITTEN },
                "ownerReferences": [{
                    "apiVersion": "v1", "kind": "Service", "name": name, "uid": service_uid,
                    "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "addressType": "IPv4",
            "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }],
            "endpoints": endpoints,
        })
    }
}

/// `base` + `offset`, as text.
fn ip(base: Ipv4Addr, offset: usize) -> String {
    let offset = u32::try_from(offset).expect("offset within IPv4");
    Ipv4Addr::from(u32::from(base) + offset).to_string()
}

/// A small deterministic generator (xorshift64*): names and UIDs need only look random.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `len` characters of the alphabet Kubernetes uses for generated names.
    fn suffix(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len)
            .map(|_| char::from(ALPHABET[(self.next() % ALPHABET.len() as u64) as usize]))
            .collect()
    }

    /// A version 4 UUID.
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
}
