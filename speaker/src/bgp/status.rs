//! BGP status for operators: per Service, the addresses this node advertises and the peers
//! (`BGPPeer` names) that receive them — the BGP counterpart of the layer 2 status.
//!
//! - Standalone mode: `<status-dir>.speakers/<node>/bgp.yaml`, beside layer 2's
//!   `announcements.yaml`.
//! - Kubernetes mode: one `ServiceBGPStatus` (`kubectl get bgpstatus -A`, MetalLB's shape
//!   with the addresses added) per (Service, advertising node), named `<service>.<node>` in
//!   the Service's namespace, owned by the Service and labelled like the layer 2 ones; written
//!   by layer 2's [`Writer`] (server-side apply, stale ones deleted).
//!
//! "Receives" means what this speaker hands each peer's session (the advertisement plan), as
//! MetalLB's `ServiceBGPStatus.status.peers` does; whether a session is up is in the metrics
//! (`ferrolb_bgp_session_up`).
//!
//! ```text
//!  BGP loop ── report(snapshot, plans) ──▶ watch<Desired> ──▶ writer task ──▶ bgp.yaml
//!  (never waits; pure: desired())                             (blocking pool, latest only)
//!                                     └──▶ objects() ──▶ Writer ──▶ API server
//! ```
//!
//! The loop never writes itself: with 10,000 Services the file is ~1 MB and the routes must
//! not wait for it. The writer skips to the newest set when several arrive during a write.

use crate::status::{Objects, StatusTarget, Timing, Writer, keyed, object};
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::bgp::advertise::PeerPlan;
use ferrolb_shared::bgp::codec::Afi;
use ferrolb_shared::config::{ServiceBGPStatus, ServiceBGPStatusStatus};
use ferrolb_shared::service::status_ips;
use ferrolb_shared::small_set::SmallSet;
use ferrolb_shared::snapshot::Snapshot;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use tokio::sync::watch;
use tracing::Instrument;

/// What one Service gets from this node over BGP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advertised {
    /// Its addresses that are advertised (to at least one peer).
    pub ips: SmallSet<IpAddr>,
    /// The peers that receive at least one of them.
    pub peers: SmallSet<String>,
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
                    .map_or(&[][..], |s| status_ips(s))
                    .iter()
                    .copied()
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

/// The `ServiceBGPStatus` objects of `node` for `desired`; each owned by its Service when
/// `uid` knows it.
pub fn objects(
    node: &str,
    desired: &Desired,
    uid: impl Fn(&ServiceKey) -> Option<String>,
) -> Objects<ServiceBGPStatus> {
    desired
        .iter()
        .map(|(service, a)| {
            let status = ServiceBGPStatusStatus {
                node: node.to_string(),
                service_name: service.name.clone(),
                service_namespace: service.namespace.clone(),
                peers: a.peers.iter().cloned().collect(),
                ips: a.ips.iter().map(ToString::to_string).collect(),
            };
            keyed(object::<ServiceBGPStatus>(
                node,
                service,
                uid(service),
                status,
            ))
        })
        .collect()
}

/// Writes `<dir>/bgp.yaml` atomically (readers never see half a file).
pub fn write_report(dir: &Path, node: &str, desired: &Desired) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".bgp.yaml.tmp");
    std::fs::write(&tmp, render(node, desired))?;
    std::fs::rename(tmp, dir.join("bgp.yaml"))
}

/// Where the BGP loop reports to. Dropping it (the BGP loop ended) stops the writer; in
/// Kubernetes mode that deletes this node's objects first.
pub enum StatusSink {
    None,
    File(watch::Sender<Desired>),
    Kubernetes {
        node: String,
        writer: Writer<ServiceBGPStatus>,
    },
}

impl StatusSink {
    /// Starts the writer of `node` for `target` (a task in either mode).
    pub fn start(target: &StatusTarget, node: &str) -> StatusSink {
        match target {
            StatusTarget::None => StatusSink::None,
            StatusTarget::File(dir) => {
                // Starts as "nothing advertised", so the file exists (and says so) from the
                // start.
                let (tx, rx) = watch::channel(Desired::new());
                let span = tracing::info_span!("bgpstatus");
                tokio::spawn(write_loop(dir.clone(), node.to_string(), rx).instrument(span));
                StatusSink::File(tx)
            }
            StatusTarget::Kubernetes(client) => StatusSink::Kubernetes {
                node: node.to_string(),
                writer: Writer::spawn(client.clone(), node.to_string(), Timing::default()),
            },
        }
    }

    /// The plans changed: say what this node advertises now. Never waits.
    pub fn report(&self, snapshot: &Snapshot, plans: &BTreeMap<String, PeerPlan>) {
        match self {
            StatusSink::None => {}
            StatusSink::File(tx) => {
                let want = desired(snapshot, plans);
                tx.send_if_modified(|d| {
                    let changed = *d != want;
                    *d = want;
                    changed
                });
            }
            StatusSink::Kubernetes { node, writer } => {
                let uid = |s: &ServiceKey| Some(snapshot.services.get(s)?.uid.as_deref()?.into());
                writer.set(objects(node, &desired(snapshot, plans), uid));
            }
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
    use ferrolb_shared::service::Service;
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
        let ips: Vec<std::net::IpAddr> = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        Arc::new(Service {
            name: name.into(),
            namespace: Some("default".into()),
            status_ips: ips.into(),
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

    const RESOURCE: &str = "ferrolb.io/servicebgpstatuses";

    async fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kubernetes mode, against the fake API server: the peers this node would advertise each
    /// Service to (no session needed), one object per Service, deleted when it is no longer
    /// advertised; a stale object of this node is deleted, another node's is left alone.
    #[tokio::test]
    async fn kubernetes_mode_writes_one_service_bgp_status_per_advertised_service() {
        use ferrolb_fake_apiserver::FakeApiServer;
        use serde_json::json;
        let fake = FakeApiServer::start().await;
        fake.create(
            "namespaces",
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "default" } }),
        );
        let stale = objects(
            "node1",
            &Desired::from([(key("old"), Advertised::default())]),
            |_| None,
        );
        let theirs = objects(
            "node2",
            &Desired::from([(key("a"), Advertised::default())]),
            |_| None,
        );
        for o in stale.values().chain(theirs.values()) {
            fake.create(RESOURCE, serde_json::to_value(o).unwrap());
        }

        let mut snapshot = Snapshot::default();
        let mut a = (*service("a", &["10.0.0.1"])).clone();
        a.uid = Some("uid-a".into());
        snapshot.services.insert(key("a"), Arc::new(a));
        let routes: &[(&str, &[&str], &[&str])] = &[("10.0.0.1/32", &["10.0.0.1"], &["a"])];
        let plans = BTreeMap::from([
            ("r1".to_string(), plan("r1", "192.0.2.1", routes)),
            ("r2".to_string(), plan("r2", "192.0.2.2", routes)),
        ]);
        let target = StatusTarget::Kubernetes(fake.client("speaker"));
        let sink = StatusSink::start(&target, "node1");
        sink.report(&snapshot, &plans);
        let get = || fake.get(RESOURCE, "default", "a.node1");
        eventually("the object is written", || {
            get().is_some_and(|o| o["status"]["peers"] == json!(["r1", "r2"]))
        })
        .await;
        let o = get().unwrap();
        assert_eq!(o["kind"], "ServiceBGPStatus");
        assert_eq!(o["status"]["node"], "node1");
        assert_eq!(o["status"]["serviceName"], "a");
        assert_eq!(o["status"]["serviceNamespace"], "default");
        assert_eq!(o["status"]["ips"], json!(["10.0.0.1"]));
        assert_eq!(o["metadata"]["labels"]["ferrolb.io/node"], "node1");
        assert_eq!(o["metadata"]["labels"]["ferrolb.io/service-name"], "a");
        assert_eq!(o["metadata"]["ownerReferences"][0]["uid"], "uid-a");
        eventually("the stale object is deleted", || {
            fake.get(RESOURCE, "default", "old.node1").is_none()
        })
        .await;

        // One peer left: the list follows. None: the object goes; another node's stays.
        let one = BTreeMap::from([("r2".to_string(), plan("r2", "192.0.2.2", routes))]);
        sink.report(&snapshot, &one);
        eventually("the peers follow the plans", || {
            get().is_some_and(|o| o["status"]["peers"] == json!(["r2"]))
        })
        .await;
        sink.report(&snapshot, &BTreeMap::new());
        eventually("the object is deleted", || get().is_none()).await;
        assert!(fake.get(RESOURCE, "default", "a.node2").is_some());
        drop(sink);
    }
}
