//! A small cluster builder: YAML documents in, a published [`Snapshot`] out, through the same
//! parser and [`SnapshotBuilder`] the speaker uses.

use crate::cluster::ClusterEvent;
use crate::manifest::{Manifest, parse_documents};
use crate::snapshot::{Snapshot, SnapshotBuilder};
use std::sync::Arc;

/// An endpoint's conditions.
#[derive(Clone, Copy, Debug)]
pub enum Ep {
    Ready,
    /// Serving and terminating: used only when nothing is ready.
    Draining,
    /// Terminating and no longer serving: never used.
    Gone,
    NotReady,
}

impl Ep {
    fn conditions(self) -> &'static str {
        match self {
            Ep::Ready => "{ready: true, serving: true, terminating: false}",
            Ep::Draining => "{ready: false, serving: true, terminating: true}",
            Ep::Gone => "{ready: false, serving: false, terminating: true}",
            Ep::NotReady => "{ready: false, serving: false, terminating: false}",
        }
    }
}

/// YAML documents, config kinds and cluster objects mixed.
#[derive(Clone, Default)]
pub struct Cluster {
    pub docs: Vec<String>,
}

impl Cluster {
    pub fn new() -> Self {
        Self::default()
    }

    fn doc(mut self, doc: String) -> Self {
        self.docs.push(doc);
        self
    }

    /// Any document, as YAML.
    pub fn raw(self, doc: &str) -> Self {
        self.doc(doc.to_string())
    }

    pub fn pool(self, name: &str, addresses: &[&str]) -> Self {
        self.doc(format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: {name}}}\n\
             spec: {{addresses: [{}]}}\n",
            quoted(addresses)
        ))
    }

    /// An L2Advertisement; `selectors` is the YAML of `nodeSelectors` (`[]` for none).
    pub fn l2(self, name: &str, pools: &[&str], selectors: &str, interfaces: &[&str]) -> Self {
        self.doc(format!(
            "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: {name}}}\n\
             spec: {{ipAddressPools: [{}], nodeSelectors: {selectors}, interfaces: [{}]}}\n",
            quoted(pools),
            quoted(interfaces)
        ))
    }

    /// A Node; `meta` is extra YAML inside `metadata` (labels, annotations), `conditions` the
    /// YAML of `status.conditions`.
    pub fn node_with(self, name: &str, meta: &str, conditions: &str) -> Self {
        let sep = if meta.is_empty() { "" } else { ", " };
        self.doc(format!(
            "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}{sep}{meta}}}\n\
             status: {{conditions: {conditions}}}\n"
        ))
    }

    pub fn node(self, name: &str) -> Self {
        self.node_with(name, "", "[]")
    }

    pub fn nodes(self, names: &[&str]) -> Self {
        names.iter().fold(self, |c, n| c.node(n))
    }

    /// A LoadBalancer Service with `ips` in its status (no pool annotation: found by
    /// containment).
    pub fn service(self, name: &str, ips: &[&str], local: bool) -> Self {
        self.service_with(name, ips, local, "")
    }

    /// Like [`Self::service`], with extra YAML inside `metadata`.
    pub fn service_with(self, name: &str, ips: &[&str], local: bool, meta: &str) -> Self {
        let policy = if local { "Local" } else { "Cluster" };
        let ingress: Vec<String> = ips.iter().map(|ip| format!("{{ip: \"{ip}\"}}")).collect();
        self.doc(format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default{meta}}}\n\
             spec: {{type: LoadBalancer, externalTrafficPolicy: {policy}, \
             ports: [{{port: 80, protocol: TCP}}]}}\n\
             status: {{loadBalancer: {{ingress: [{}]}}}}\n",
            ingress.join(", ")
        ))
    }

    /// An EndpointSlice of `service` with one endpoint per (address, node, conditions). The
    /// family comes from the first address.
    pub fn slice(self, name: &str, service: &str, endpoints: &[(&str, &str, Ep)]) -> Self {
        let family = match endpoints.first() {
            Some((a, _, _)) if a.contains(':') => "IPv6",
            _ => "IPv4",
        };
        let eps: Vec<String> = endpoints
            .iter()
            .map(|(addr, node, ep)| {
                format!(
                    "{{addresses: [\"{addr}\"], nodeName: {node}, conditions: {}}}",
                    ep.conditions()
                )
            })
            .collect();
        self.doc(format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: {{name: {name}, namespace: default, \
             labels: {{kubernetes.io/service-name: {service}}}}}\n\
             addressType: {family}\nports: [{{port: 8080, protocol: TCP}}]\nendpoints: [{}]\n",
            eps.join(", ")
        ))
    }

    /// A ready endpoint of `service` on each of `nodes`.
    pub fn ready_on(self, service: &str, nodes: &[&str]) -> Self {
        let eps: Vec<(String, &str)> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("10.244.{i}.{}", self.docs.len() % 250), *n))
            .collect();
        let eps: Vec<(&str, &str, Ep)> = eps
            .iter()
            .map(|(a, n)| (a.as_str(), *n, Ep::Ready))
            .collect();
        let name = format!("{service}-{}", self.docs.len());
        self.slice(&name, service, &eps)
    }

    /// The snapshot a speaker on `this_node` publishes after the whole listing.
    pub fn snapshot(&self, this_node: &str) -> Arc<Snapshot> {
        snapshot_of(self.docs.iter(), this_node)
    }
}

/// Feed `docs` (config kinds as one set, cluster objects in the given order) to a builder.
pub fn snapshot_of<'a>(docs: impl Iterator<Item = &'a String>, this_node: &str) -> Arc<Snapshot> {
    let text = docs.map(String::as_str).collect::<Vec<_>>().join("---\n");
    let parsed = parse_documents("cluster.yaml", &text);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let mut b = SnapshotBuilder::new(this_node);
    b.apply(ClusterEvent::Config {
        objects: parsed.config_objects(),
        errors: vec![],
    });
    assert!(!b.current().config_stale, "{:?}", b.current().config_errors);
    for p in parsed.objects {
        if let Manifest::Cluster(c) = p.manifest {
            b.apply(ClusterEvent::Upsert(c));
        }
    }
    b.apply(ClusterEvent::Synced);
    b.publish().expect("a snapshot after Synced")
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
