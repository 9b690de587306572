//! `ferrolb-controller status`: one report of what FerroLB is doing, from the API server or a
//! standalone status directory: the configuration's verdict per component, the pools with
//! capacity and use, each Service with its addresses, the node announcing it over layer 2 and
//! the peers each node advertises it to, and the BGP sessions per node with state, uptime and
//! BFD. A table for people, `-o json` / `-o yaml` for scripts.
//!
//! ```text
//!  from_kube (API server) ─┐
//!                          ├─▶ Inputs ──▶ assemble (pure) ──▶ Report ──▶ table | json | yaml
//!  from_dir (status dir) ──┘
//! ```

pub mod from_dir;
pub mod from_kube;
mod table;

use ferrolb_shared::config::{BGPSessionStateStatus, ConfigurationStateStatus};
use ferrolb_shared::service::{Service, service_key, status_ips, status_pool};
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything a report is made of, however it was read.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub configuration: Vec<ConfigurationStateStatus>,
    pub pools: Vec<Pool>,
    /// LoadBalancer Services with an address (or waiting for one), by `namespace/name`.
    pub services: BTreeMap<String, ServiceAddresses>,
    /// Each layer 2 announcement (Service `namespace/name`, node, what and where).
    pub layer2: Vec<Announcement>,
    /// (Service `namespace/name`, node, peers) of each BGP advertisement.
    pub bgp: Vec<(String, String, Vec<String>)>,
    pub sessions: Vec<BGPSessionStateStatus>,
}

impl Inputs {
    /// A Service's addresses and pool, as its status and annotation say.
    pub fn add_service(&mut self, svc: &Service) {
        let key = service_key(svc).to_string();
        let addresses = status_ips(svc).iter().map(|ip| ip.to_string()).collect();
        let pool = status_pool(svc).unwrap_or_default().to_string();
        self.services
            .insert(key, ServiceAddresses { addresses, pool });
    }
}

/// One node answering ARP/NDP for some of a Service's addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Announcement {
    pub service: String,
    pub node: String,
    /// Empty: every usable interface.
    pub interfaces: Vec<String>,
    pub addresses: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAddresses {
    pub addresses: Vec<String>,
    pub pool: String,
}

/// A pool's capacity and use (addresses), per family.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    pub name: String,
    #[serde(rename = "capacityIPv4")]
    pub capacity_v4: u128,
    #[serde(rename = "inUseIPv4")]
    pub in_use_v4: u128,
    #[serde(rename = "capacityIPv6")]
    pub capacity_v6: u128,
    #[serde(rename = "inUseIPv6")]
    pub in_use_v6: u128,
}

/// The report: what `-o json` prints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub configuration: Vec<ConfigurationStateStatus>,
    pub pools: Vec<Pool>,
    pub services: Vec<ServiceReport>,
    pub bgp_sessions: Vec<SessionReport>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReport {
    pub namespace: String,
    pub name: String,
    pub addresses: Vec<String>,
    pub pool: String,
    /// The nodes answering ARP/NDP for it: one per address (each address is elected on its
    /// own, so a dual-stack Service's two may sit on two nodes).
    pub layer2_nodes: Vec<Layer2Node>,
    /// Per advertising node, the `BGPPeer`s receiving it.
    pub bgp: Vec<BgpNode>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer2Node {
    pub node: String,
    /// The addresses this node answers for.
    pub addresses: Vec<String>,
    /// Empty: every usable interface.
    pub interfaces: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpNode {
    pub node: String,
    pub peers: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionReport {
    #[serde(flatten)]
    pub state: BGPSessionStateStatus,
    /// Whole seconds since `establishedSince`; absent while the session is not up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<u64>,
}

/// The report of `inputs` at `now` (pure): sorted, so two reads of the same state print the
/// same.
pub fn assemble(inputs: Inputs, now: jiff::Timestamp) -> Report {
    let mut configuration = inputs.configuration;
    configuration.sort_by(|a, b| (&a.component, &a.node).cmp(&(&b.component, &b.node)));
    let mut pools = inputs.pools;
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    let mut services: BTreeMap<String, ServiceReport> = inputs
        .services
        .into_iter()
        .map(|(key, s)| {
            let (namespace, name) = key.split_once('/').unwrap_or(("", &key));
            let report = ServiceReport {
                namespace: namespace.to_string(),
                name: name.to_string(),
                addresses: s.addresses,
                pool: s.pool,
                ..Default::default()
            };
            (key, report)
        })
        .collect();
    for a in inputs.layer2 {
        if let Some(s) = services.get_mut(&a.service) {
            let mut addresses = a.addresses;
            addresses.sort();
            s.layer2_nodes.push(Layer2Node {
                node: a.node,
                addresses,
                interfaces: a.interfaces,
            });
        }
    }
    for (key, node, mut peers) in inputs.bgp {
        if let Some(s) = services.get_mut(&key) {
            peers.sort();
            s.bgp.push(BgpNode { node, peers });
        }
    }
    for s in services.values_mut() {
        s.layer2_nodes.sort_by(|a, b| a.node.cmp(&b.node));
        s.bgp.sort_by(|a, b| a.node.cmp(&b.node));
    }
    let mut bgp_sessions: Vec<SessionReport> = inputs
        .sessions
        .into_iter()
        .map(|state| {
            let uptime_seconds = state
                .established_since
                .parse::<jiff::Timestamp>()
                .ok()
                .map(|since| now.duration_since(since).as_secs().max(0) as u64);
            SessionReport {
                state,
                uptime_seconds,
            }
        })
        .collect();
    bgp_sessions
        .sort_by(|a, b| (&a.state.node, &a.state.peer).cmp(&(&b.state.node, &b.state.peer)));
    Report {
        configuration,
        pools,
        services: services.into_values().collect(),
        bgp_sessions,
    }
}

/// How to print a report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Json,
    Yaml,
}

pub fn render(report: &Report, output: Output) -> String {
    match output {
        Output::Table => table::render(report),
        Output::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Output::Yaml => serde_yaml::to_string(report).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
