//! BGP status for operators: per Service, the addresses this node advertises and the peers
//! (`BGPPeer` names) that receive them — the BGP counterpart of the layer 2 status.
//!
//! - Standalone mode: `<status-dir>.speakers/<node>/bgp.yaml`, beside layer 2's
//!   `announcements.yaml`.
//! - Kubernetes mode: nothing yet (a `ServiceBGPStatus` kind, MetalLB's shape, would be
//!   written by a writer like layer 2's; not built yet).
//!
//! "Receives" means what this speaker hands each peer's session (the advertisement plan), as
//! MetalLB's `ServiceBGPStatus.status.peers` does; whether a session is up is in the metrics
//! (`ferrolb_bgp_session_up`).
//!
//! ```text
//!  BGP loop ── report(snapshot, plans) ──▶ watch<Desired> ──▶ writer task ──▶ bgp.yaml
//!  (never waits; pure: desired())                             (blocking pool, latest only)
//! ```
//!
//! The loop never writes itself: with 10,000 Services the file is ~1 MB and the routes must
//! not wait for it. The writer skips to the newest set when several arrive during a write.

use crate::layer2::status::StatusTarget;
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::bgp::advertise::PeerPlan;
use ferrolb_shared::bgp::codec::Afi;
use ferrolb_shared::service::status_ips;
use ferrolb_shared::snapshot::Snapshot;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use tokio::sync::watch;
use tracing::Instrument;

/// What one Service gets from this node over BGP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advertised {
    /// Its addresses that are advertised (to at least one peer).
    pub ips: BTreeSet<IpAddr>,
    /// The peers that receive at least one of them.
    pub peers: BTreeSet<String>,
}

/// Everything this node advertises, by Service.
pub type Desired = BTreeMap<ServiceKey, Advertised>;

/// Per Service, its advertised addresses and the peers receiving them. A route aggregating
/// several addresses names each of its Services with only that Service's own addresses. A
/// peer receives only the address families its session carries (one, unless it asks for
/// both), decided as the peer task decides them.
pub fn desired(snapshot: &Snapshot, plans: &BTreeMap<String, PeerPlan>) -> Desired {
    let mut out = Desired::new();
    for (peer, plan) in plans {
        let families = super::peer::session_config(&plan.peer, Ipv4Addr::UNSPECIFIED).families;
        let carried = |prefix: &IpNet| {
            let afi = if prefix.addr().is_ipv4() {
                Afi::IPV4
            } else {
                Afi::IPV6
            };
            families.iter().any(|(a, _)| *a == afi)
        };
        for (_, route) in plan.routes.iter().filter(|(p, _)| carried(p)) {
            for key in &route.services {
                let own: Vec<IpAddr> = snapshot
                    .services
                    .get(key)
                    .map(|s| status_ips(s))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|ip| route.ips.contains(ip))
                    .collect();
                let entry = out.entry(key.clone()).or_default();
                entry.ips.extend(own);
                entry.peers.insert(peer.clone());
            }
        }
    }
    out
}

/// The text of `bgp.yaml`.
pub fn render(node: &str, desired: &Desired) -> String {
    let mut text = format!(
        "# written by ferrolb-speaker: the Services this node advertises over BGP, and to which peers\nnode: {node}\n"
    );
    if desired.is_empty() {
        text.push_str("services: []\n");
        return text;
    }
    text.push_str("services:\n");
    let list = |items: Vec<String>| items.join(", ");
    for (key, a) in desired {
        let _ = write!(
            text,
            "  - service: {key}\n    ips: [{}]\n    peers: [{}]\n",
            // Quoted: an IPv6 address ending in `::` would end a flow list otherwise.
            list(a.ips.iter().map(|ip| format!("\"{ip}\"")).collect()),
            list(a.peers.iter().cloned().collect()),
        );
    }
    text
}

/// Writes `<dir>/bgp.yaml` atomically (readers never see half a file).
pub fn write_report(dir: &Path, node: &str, desired: &Desired) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".bgp.yaml.tmp");
    std::fs::write(&tmp, render(node, desired))?;
    std::fs::rename(tmp, dir.join("bgp.yaml"))
}

/// Where the BGP loop reports to.
pub struct StatusSink {
    tx: Option<watch::Sender<Desired>>,
}

impl StatusSink {
    /// Starts the writer of `node` for `target` (a task in standalone mode).
    pub fn start(target: &StatusTarget, node: &str) -> StatusSink {
        let StatusTarget::File(dir) = target else {
            if matches!(target, StatusTarget::Kubernetes(_)) {
                tracing::debug!("ServiceBGPStatus objects are not written yet");
            }
            return StatusSink { tx: None };
        };
        // Starts as "nothing advertised", so the file exists (and says so) from the start.
        let (tx, rx) = watch::channel(Desired::new());
        let span = tracing::info_span!("bgpstatus");
        tokio::spawn(write_loop(dir.clone(), node.to_string(), rx).instrument(span));
        StatusSink { tx: Some(tx) }
    }

    /// The plans changed: say what this node advertises now. Never waits.
    pub fn report(&self, snapshot: &Snapshot, plans: &BTreeMap<String, PeerPlan>) {
        if let Some(tx) = &self.tx {
            let want = desired(snapshot, plans);
            tx.send_if_modified(|d| {
                let changed = *d != want;
                *d = want;
                changed
            });
        }
    }
}

async fn write_loop(dir: PathBuf, node: String, mut rx: watch::Receiver<Desired>) {
    loop {
        let want = rx.borrow_and_update().clone();
        let (d, n) = (dir.clone(), node.clone());
        match tokio::task::spawn_blocking(move || write_report(&d, &n, &want)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!("cannot write the BGP report in {}: {e}", dir.display())
            }
            Err(e) => tracing::warn!("the BGP report writer failed: {e}"),
        }
        // The sender is gone when the BGP loop has ended.
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_shared::bgp::advertise::Route;
    use ferrolb_shared::config::validate::Peer;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, Service, ServiceStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::sync::Arc;
    use std::time::Duration;

    fn key(name: &str) -> ServiceKey {
        ServiceKey::new("default", name)
    }

    #[test]
    fn renders_services_with_their_peers() {
        let mut d = Desired::new();
        d.insert(
            key("web"),
            Advertised {
                ips: ["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()].into(),
                peers: ["router-v4".to_string(), "router-v6".to_string()].into(),
            },
        );
        assert_eq!(
            render("node1", &d),
            "# written by ferrolb-speaker: the Services this node advertises over BGP, and to which peers\n\
             node: node1\nservices:\n  - service: default/web\n    ips: [\"10.0.0.1\", \"fd00::1\"]\n    \
             peers: [router-v4, router-v6]\n"
        );
        assert!(render("node1", &Desired::new()).ends_with("services: []\n"));
    }

    fn service(name: &str, ips: &[&str]) -> Arc<Service> {
        let ingress = ips
            .iter()
            .map(|ip| LoadBalancerIngress {
                ip: Some(ip.to_string()),
                ..Default::default()
            })
            .collect();
        Arc::new(Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(ingress),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn plan(name: &str, address: &str, routes: &[(&str, &[&str], &[&str])]) -> PeerPlan {
        let peer = Peer {
            name: name.into(),
            spec: Default::default(),
            peer_address: Some(address.parse().unwrap()),
            source_address: None,
            hold_time: Duration::from_secs(90),
            keepalive_time: Duration::from_secs(30),
            connect_time: Duration::from_secs(10),
            router_id: None,
        };
        let routes = routes
            .iter()
            .map(|(prefix, ips, services)| {
                let route = Route {
                    ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
                    services: services.iter().map(|s| key(s)).collect(),
                    ..Default::default()
                };
                (prefix.parse().unwrap(), route)
            })
            .collect();
        PeerPlan {
            peer,
            ibgp: false,
            routes,
        }
    }

    #[test]
    fn desired_names_each_service_with_its_own_addresses_and_peers() {
        let mut snapshot = Snapshot::default();
        snapshot
            .services
            .insert(key("a"), service("a", &["10.0.0.1"]));
        snapshot
            .services
            .insert(key("b"), service("b", &["10.0.0.2", "fd00::2"]));
        // Both peers are planned both routes: the aggregate of a and b, and b's IPv6 route.
        // Each session carries its own family only.
        let routes: &[(&str, &[&str], &[&str])] = &[
            ("10.0.0.0/24", &["10.0.0.1", "10.0.0.2"], &["a", "b"]),
            ("fd00::2/128", &["fd00::2"], &["b"]),
        ];
        let plans = BTreeMap::from([
            ("r1".to_string(), plan("r1", "192.0.2.1", routes)),
            ("r2".to_string(), plan("r2", "2001:db8::1", routes)),
        ]);
        let d = desired(&snapshot, &plans);
        let ips = |v: &[&str]| v.iter().map(|i| i.parse::<IpAddr>().unwrap()).collect();
        let peers = |v: &[&str]| v.iter().map(|p| p.to_string()).collect();
        assert_eq!(d[&key("a")].ips, ips(&["10.0.0.1"]));
        assert_eq!(d[&key("a")].peers, peers(&["r1"]));
        assert_eq!(d[&key("b")].ips, ips(&["10.0.0.2", "fd00::2"]));
        assert_eq!(d[&key("b")].peers, peers(&["r1", "r2"]));
        assert!(desired(&snapshot, &BTreeMap::new()).is_empty());
    }
}
