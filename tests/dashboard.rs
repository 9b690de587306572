//! The Grafana dashboard (`config/grafana/ferrolb.json`) queries only metrics the binaries
//! really export: a lab run with everything the dashboard shows switched on (layer 2 with
//! gossip, BGP with BFD against BIRD, a Service in each mode reached by a client) is scraped
//! (the controller's and every speaker's real `/metrics`), and every `ferrolb_` name in every
//! panel's queries must appear there as a series. Needs root and the lab's packages.

use ferrolb_e2e::lab::{Lab, LabSpec, Proto, RouterKind, plan, wait_for};
use ferrolb_e2e::{ferrolb_metric_names, workspace_root};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(40);
const NODES: [&str; 3] = ["node1", "node2", "node3"];

/// The `ferrolb_` names in the dashboard's queries.
fn queried_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(workspace_root().join("config/grafana/ferrolb.json"))
        .expect("the dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().expect("targets"))
        .flat_map(|target| ferrolb_metric_names(target["expr"].as_str().expect("a query")))
        .collect()
}

/// Layer 2 and BGP pools, BGP peers on both families with BFD, and the gossip key.
fn config() -> String {
    let (r4, r6) = plan::router_lan();
    let peer = |name: &str, addr: String| {
        format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: {name}}}\n\
             spec: {{myASN: {}, peerASN: {}, peerAddress: '{addr}', holdTime: 9s, bfdProfile: fast}}\n",
            plan::NODE_ASN,
            plan::ROUTER_ASN
        )
    };
    [
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: lan}\nspec: {addresses: [10.100.0.200-10.100.0.250]}\n".to_string(),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: bgp}}\nspec: {{addresses: ['{}']}}\n",
            plan::BGP_POOL_V4
        ),
        "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: lan}\nspec: {ipAddressPools: [lan]}\n".to_string(),
        "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bgp}\nspec: {ipAddressPools: [bgp]}\n".to_string(),
        "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: fast}\nspec: {receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3}\n".to_string(),
        peer("router-v4", r4.to_string()),
        peer("router-v6", r6.to_string()),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: ferrolb-memberlist, namespace: ferrolb-system}\ndata: {secretkey: ZmVycm9sYi1sYWItZ29zc2lwLWtleS0wMTIzNDU2Nzg5}\n".to_string(),
    ]
    .join("---\n")
}

/// A LoadBalancer Service `name` over the `web` pods, from `pool`.
fn service(name: &str, pool: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n  \
         annotations: {{metallb.io/address-pool: {pool}}}\nspec:\n  type: LoadBalancer\n  \
         selector: {{app: web}}\n  ports: [{{name: echo, port: {p}, targetPort: {p}, protocol: TCP}}]\n",
        p = plan::ECHO_TCP
    )
}

/// `/metrics` of the process listening on `127.0.0.1:port` in `host`.
fn scrape(lab: &Lab, host: &str, port: u16) -> anyhow::Result<String> {
    let localhost = IpAddr::from([127, 0, 0, 1]);
    let (status, body) = lab.http_request(host, localhost, port, "/metrics")?;
    anyhow::ensure!(status == 200, "{host}: /metrics answered {status}");
    Ok(body)
}

/// The names of `wanted` that no series of the controller's or the speakers' `/metrics` has.
fn missing_from_scrapes(lab: &Lab, wanted: &BTreeSet<String>) -> anyhow::Result<Vec<String>> {
    let mut exported = scrape(lab, "ctl", 7472)?;
    for node in NODES {
        exported.push_str(&scrape(lab, node, 7473)?);
    }
    let series: BTreeSet<&str> = exported
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    Ok(wanted
        .iter()
        .filter(|name| !series.contains(name.as_str()))
        .cloned()
        .collect())
}

#[test]
fn every_dashboard_query_names_a_metric_a_lab_run_exports() -> anyhow::Result<()> {
    let wanted = queried_metrics();
    assert!(wanted.len() >= 20, "{wanted:?}");
    let lab = Lab::up(LabSpec {
        bfd: true,
        external_clients: 0,
        ..LabSpec::default()
            .router(Some(RouterKind::Bird))
            .pod("web-a", 1, "web")
            .pod("web-b", 2, "web")
    })?;
    lab.write_manifest("config.yaml", &config())?;
    for (name, pool) in [("l2", "lan"), ("routed", "bgp")] {
        lab.write_manifest(&format!("{name}.yaml"), &service(name, pool))?;
        let slices = lab.endpoint_slices_for(
            "default",
            name,
            &["web-a", "web-b"],
            &[("echo", plan::ECHO_TCP, "TCP")],
        );
        lab.write_manifest(&format!("{name}-slices.yaml"), &slices)?;
    }
    lab.start_controller()?;
    for node in NODES {
        lab.start_speaker_with(node, &["--dataplane", "nftables", "--l2-hold-down", "3s"])?;
    }
    // Everything the dashboard shows happening: the layer 2 address answered to a client
    // (ARP requests and replies), every BGP session and its BFD up.
    let l2 = lab.wait_service_ips("default", "l2", LIMIT)?;
    let v4 = l2
        .iter()
        .find(|ip| ip.is_ipv4())
        .copied()
        .expect("an IPv4 address");
    wait_for(&format!("an answer from {v4}"), LIMIT, || {
        lab.probe("client1", Proto::Tcp, v4, plan::ECHO_TCP).ok()
    })?;
    lab.wait_service_ips("default", "routed", LIMIT)?;
    for node in NODES {
        wait_for(&format!("BGP and BFD up on {node}"), LIMIT, || {
            let m = scrape(&lab, node, 7473).ok()?;
            (m.contains("ferrolb_bgp_session_up{peer=\"router-v4\"} 1")
                && m.contains("ferrolb_bfd_session_up{peer=\"router-v4\"} 1"))
            .then_some(())
        })?;
    }
    // Some counters reach /metrics in periodic batches: give them the time, then name
    // whatever is still missing.
    let deadline = std::time::Instant::now() + LIMIT;
    let missing = loop {
        let missing = missing_from_scrapes(&lab, &wanted)?;
        if missing.is_empty() || std::time::Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, which this lab run does not export"
    );
    lab.down()?;
    Ok(())
}
