//! BGP status in standalone mode: each speaker writes `<status-dir>.speakers/<node>/bgp.yaml`
//! naming, per Service, the addresses it advertises and the peers receiving them; it follows
//! the Service's endpoints and its deletion, and agrees with what the router really received.
//!
//! Needs root (namespaces) and BIRD (bird2) besides the lab's usual tools.

#[allow(dead_code)]
#[path = "lab_forwarding/fixture.rs"]
mod forwarding;

use ferrolb_e2e::lab::{Lab, LabSpec, RouterKind, plan, wait_until};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const NODES: [&str; 3] = ["node1", "node2", "node3"];

/// A pool, one peer per router address family, one advertisement for every peer.
fn config() -> String {
    let (r4, r6) = plan::router_lan();
    let peer = |name: &str, addr: String| {
        format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: {name}}}\n\
             spec: {{myASN: {}, peerASN: {}, peerAddress: '{addr}', holdTime: 9s}}\n",
            plan::NODE_ASN,
            plan::ROUTER_ASN
        )
    };
    [
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: bgp}}\n\
             spec: {{addresses: ['{}', '{}']}}\n",
            plan::BGP_POOL_V4,
            plan::BGP_POOL_V6
        ),
        peer("router-v4", r4.to_string()),
        peer("router-v6", r6.to_string()),
        "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bgp}\n\
         spec: {ipAddressPools: [bgp]}\n"
            .to_string(),
    ]
    .join("---\n")
}

/// One Service of a `bgp.yaml`: its addresses and peers, sorted.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    ips: Vec<IpAddr>,
    peers: Vec<String>,
}

/// `node`'s `bgp.yaml`, by Service (`namespace/name`); `None` until it is written.
fn report(lab: &Lab, node: &str) -> Option<BTreeMap<String, Entry>> {
    let mut dir = lab.status_dir().into_os_string();
    dir.push(".speakers");
    let path = std::path::PathBuf::from(dir).join(node).join("bgp.yaml");
    let v: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    assert_eq!(v.get("node")?.as_str(), Some(node), "{v:?}");
    let strings = |e: &serde_yaml::Value, key: &str| -> Vec<String> {
        let mut out: Vec<String> = e
            .get(key)
            .and_then(|l| l.as_sequence())
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect();
        out.sort();
        out
    };
    let mut out = BTreeMap::new();
    for e in v.get("services")?.as_sequence()? {
        let mut ips: Vec<IpAddr> = strings(e, "ips")
            .iter()
            .map(|s| s.parse().expect("an address"))
            .collect();
        ips.sort();
        let entry = Entry {
            ips,
            peers: strings(e, "peers"),
        };
        out.insert(e.get("service")?.as_str()?.to_string(), entry);
    }
    Some(out)
}

/// Waits until `node`'s report lists `service` with `want` (or not at all, for `None`).
fn wait_report(lab: &Lab, node: &str, service: &str, want: Option<&Entry>) -> anyhow::Result<()> {
    let what = format!("{node}'s bgp.yaml to say {want:?} for {service}");
    wait_until(&what, LIMIT, || {
        Ok(match report(lab, node) {
            Some(r) if r.get(service) == want => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })?;
    Ok(())
}

fn service(lab: &Lab, name: &str, local: bool, pod: &str) -> anyhow::Result<Vec<IpAddr>> {
    let policy = if local { "Local" } else { "Cluster" };
    let yaml = forwarding::service(
        name,
        "LoadBalancer",
        None,
        "",
        &format!("  externalTrafficPolicy: {policy}\n"),
    );
    forwarding::endpoints(lab, name, &[pod])?;
    lab.write_manifest(&format!("{name}.yaml"), &yaml)?;
    let mut ips = lab.wait_service_ips("default", name, LIMIT)?;
    ips.sort();
    Ok(ips)
}

#[test]
fn bgp_status_names_the_peers_receiving_each_service() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        lan_clients: 0,
        external_clients: 0,
        echo: false,
        ..LabSpec::default().router(Some(RouterKind::Bird))
    })?;
    lab.write_manifest("bgp.yaml", &config())?;
    lab.start_controller()?;
    for node in NODES {
        lab.start_speaker_with(node, &["--dataplane", "none", "--layer2", "false"])?;
    }
    let router = lab.router()?;

    // Cluster policy: every node advertises both addresses, each to the peer of its family.
    let web = service(&lab, "web", false, "node1-pod1")?;
    let both = Entry {
        ips: web.clone(),
        peers: vec!["router-v4".into(), "router-v6".into()],
    };
    for node in NODES {
        wait_report(&lab, node, "default/web", Some(&both))?;
    }
    // The status is what the router really has: a path from every node.
    for ip in &web {
        let len = if ip.is_ipv4() { 32 } else { 128 };
        let hops: Vec<IpAddr> = (1..=3).map(|i| forwarding::node_addr(i, *ip)).collect();
        router.wait_route(&format!("{ip}/{len}"), &hops, LIMIT)?;
    }

    // Local policy: only the node with the endpoint names it.
    let local = service(&lab, "local", true, "node2-pod1")?;
    let entry = Entry {
        ips: local,
        peers: vec!["router-v4".into(), "router-v6".into()],
    };
    wait_report(&lab, "node2", "default/local", Some(&entry))?;
    for node in ["node1", "node3"] {
        wait_report(&lab, node, "default/local", None)?;
    }

    // Deleted: gone from every report; the other Service stays.
    lab.remove_manifest("web.yaml")?;
    for node in NODES {
        wait_report(&lab, node, "default/web", None)?;
    }
    wait_report(&lab, "node2", "default/local", Some(&entry))?;
    lab.down()?;
    Ok(())
}
