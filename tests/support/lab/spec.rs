//! The declarative description a lab is built from.

use super::error::{LabError, Result};
use super::plan;

/// Which BGP daemon runs in the router host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouterKind {
    /// BIRD 2 (the default).
    Bird,
    /// FRR: zebra, bgpd and bfdd.
    Frr,
    /// GoBGP, with the lab's route sync into the kernel.
    Gobgp,
}

impl RouterKind {
    /// Every kind, for tests that try them all.
    pub const ALL: [RouterKind; 3] = [RouterKind::Bird, RouterKind::Frr, RouterKind::Gobgp];

    /// Short lower-case name (`bird`, `frr`, `gobgp`).
    pub fn name(self) -> &'static str {
        match self {
            RouterKind::Bird => "bird",
            RouterKind::Frr => "frr",
            RouterKind::Gobgp => "gobgp",
        }
    }
}

impl std::str::FromStr for RouterKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "bird" => Ok(RouterKind::Bird),
            "frr" => Ok(RouterKind::Frr),
            "gobgp" => Ok(RouterKind::Gobgp),
            _ => Err(format!("unknown router {s:?}: use bird, frr or gobgp")),
        }
    }
}

impl std::fmt::Display for RouterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A pod to create on a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSpec {
    /// The pod's name; also its host name in the lab. At most 15 characters of `[a-z0-9-]`.
    pub name: String,
    /// 1-based index of its node.
    pub node: u8,
    /// Its `app` label, for EndpointSlices written by the lab.
    pub app: String,
}

/// What a lab consists of. `LabSpec::default()` is the standard lab: 3 dual-stack nodes with
/// one pod each (app `echo`), one LAN client, one external client, BIRD in the router.
#[derive(Clone, Debug)]
pub struct LabSpec {
    /// Number of node hosts.
    pub nodes: u8,
    /// Pods; empty means one pod per node named `node<i>-pod1` with app `echo`.
    pub pods: Vec<PodSpec>,
    /// Clients on the LAN (`client1`, ...).
    pub lan_clients: u8,
    /// Clients behind the router (`ext1`, ...).
    pub external_clients: u8,
    /// IPv6 as well as IPv4 on every link.
    pub dual_stack: bool,
    /// The router's BGP daemon; `None` runs no daemon (the router still forwards).
    pub router: Option<RouterKind>,
    /// The router's ASN.
    pub router_asn: u32,
    /// The nodes' ASN (equal to `router_asn` for iBGP).
    pub node_asn: u32,
    /// Enable BFD on the router's sessions (BIRD, FRR).
    pub bfd: bool,
    /// Start an echo server in every pod.
    pub echo: bool,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            nodes: 3,
            pods: Vec::new(),
            lan_clients: 1,
            external_clients: 1,
            dual_stack: true,
            router: Some(RouterKind::Bird),
            router_asn: plan::ROUTER_ASN,
            node_asn: plan::NODE_ASN,
            bfd: false,
            echo: true,
        }
    }
}

impl LabSpec {
    /// The standard lab with `n` nodes.
    pub fn with_nodes(n: u8) -> Self {
        LabSpec {
            nodes: n,
            ..Default::default()
        }
    }

    /// Set the router daemon.
    pub fn router(mut self, kind: Option<RouterKind>) -> Self {
        self.router = kind;
        self
    }

    /// Add a pod.
    pub fn pod(mut self, name: &str, node: u8, app: &str) -> Self {
        self.pods.push(PodSpec {
            name: name.into(),
            node,
            app: app.into(),
        });
        self
    }

    /// The pods to create, with the default filled in.
    pub fn effective_pods(&self) -> Vec<PodSpec> {
        if !self.pods.is_empty() {
            return self.pods.clone();
        }
        (1..=self.nodes)
            .map(|i| PodSpec {
                name: format!("node{i}-pod1"),
                node: i,
                app: "echo".into(),
            })
            .collect()
    }

    /// Check limits that the address plan and interface names impose.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LabError::Spec(m));
        if !(1..=50).contains(&self.nodes) {
            return bad(format!("nodes = {}: use 1 to 50", self.nodes));
        }
        if self.lan_clients > 50 || self.external_clients > 50 {
            return bad("at most 50 LAN and 50 external clients".into());
        }
        if self.router_asn == 0 || self.node_asn == 0 {
            return bad("ASN 0 is reserved".into());
        }
        let pods = self.effective_pods();
        let mut names = std::collections::BTreeSet::new();
        for p in &pods {
            let ok_chars = p
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if p.name.is_empty() || p.name.len() > 15 || !ok_chars {
                return bad(format!(
                    "pod name {:?}: use 1 to 15 characters of a-z, 0-9 and '-' (it names a link)",
                    p.name
                ));
            }
            if !(1..=self.nodes).contains(&p.node) {
                return bad(format!(
                    "pod {} is on node {} of {}",
                    p.name, p.node, self.nodes
                ));
            }
            if !names.insert(p.name.clone()) || reserved(&p.name) {
                return bad(format!("pod name {:?} is taken", p.name));
            }
        }
        for i in 1..=self.nodes {
            if pods.iter().filter(|p| p.node == i).count() > 50 {
                return bad(format!("node{i}: at most 50 pods"));
            }
        }
        Ok(())
    }
}

fn reserved(name: &str) -> bool {
    let numbered = |p: &str| {
        name.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    matches!(name, "lan" | "router" | "ctl")
        || numbered("node")
        || numbered("client")
        || numbered("ext")
}
