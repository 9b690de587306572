//! The forwarding layer with real traffic in the lab: a client reaches a LoadBalancer IP
//! (routed to node1 statically, until layer 2 and BGP announce it) and the node's data path
//! spreads connections over the pods on every node, over IPv4 and IPv6, for both data paths.
//!
//! Needs root, iproute2, nftables, and the workspace binaries (tests/run.sh provides all).

use ferrolb_e2e::lab::{Lab, LabSpec, Proto};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

const POOL: &str = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: lan}\nspec: {addresses: [10.100.0.200-10.100.0.250, 'fd00:100::200-fd00:100::250']}\n";

const WEB: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec:\n  type: LoadBalancer\n  selector: {app: web}\n  ipFamilyPolicy: RequireDualStack\n  ports: [{name: echo, port: 7000, targetPort: 7000, protocol: TCP}]\n";

/// Bring up a lab with pods of app `web` on node1 and node2, the controller, and speakers
/// running `dataplane`; route the Service's addresses from the client to node1.
fn lab_with_web(dataplane: &str) -> anyhow::Result<(Lab, Vec<IpAddr>)> {
    let spec = LabSpec {
        router: None,
        external_clients: 0,
        ..LabSpec::default()
    }
    .pod("web-a", 1, "web")
    .pod("web-b", 2, "web");
    let lab = Lab::up(spec)?;
    lab.write_manifest("pool.yaml", POOL)?;
    lab.write_manifest("web.yaml", WEB)?;
    let slices = lab.endpoint_slices_yaml("default", "web", "web", &[("echo", 7000, "TCP")]);
    lab.write_manifest("web-slices.yaml", &slices)?;
    lab.start_controller()?;
    for node in ["node1", "node2", "node3"] {
        lab.start_speaker_with(node, &["--dataplane", dataplane])?;
    }
    let ips = lab.wait_service_ips("default", "web", Duration::from_secs(20))?;
    for ip in &ips {
        let (via, len) = if ip.is_ipv4() {
            ("10.100.0.11", "32")
        } else {
            ("fd00:100::11", "128")
        };
        lab.exec(
            "client1",
            &["ip", "route", "replace", &format!("{ip}/{len}"), "via", via],
        )?;
    }
    Ok((lab, ips))
}

/// Connect `n` times to `addr:7000` from the client; count the answers per pod.
fn spread(lab: &Lab, addr: IpAddr, n: usize) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    // The data path may still be programming when the Service first gets its address.
    let first = ferrolb_e2e::lab::wait_for(
        "the first answer through the data path",
        Duration::from_secs(20),
        || lab.probe("client1", Proto::Tcp, addr, 7000).ok(),
    )?;
    *counts.entry(first.pod).or_default() += 1;
    for _ in 1..n {
        let a = lab.probe("client1", Proto::Tcp, addr, 7000)?;
        *counts.entry(a.pod).or_default() += 1;
    }
    Ok(counts)
}

fn check_data_path(dataplane: &str) -> anyhow::Result<()> {
    let (lab, ips) = lab_with_web(dataplane)?;
    for ip in &ips {
        let counts = spread(&lab, *ip, 20)?;
        assert_eq!(
            counts.keys().cloned().collect::<Vec<_>>(),
            ["web-a", "web-b"],
            "{dataplane} {ip}: {counts:?}"
        );
        // Round robin over two pods: an even split.
        assert!(
            counts.values().all(|c| (8..=12).contains(c)),
            "{dataplane} {ip}: {counts:?}"
        );
    }
    // Cluster policy: pods see node1 as the client (masquerade in the kernel path, the
    // proxy's own connection in the userspace path), never the real client, so replies come
    // back through node1: on node1 its pod-bridge address, from node2 its LAN address.
    for _ in 0..4 {
        let a = lab.probe("client1", Proto::Tcp, ips[0], 7000)?;
        let want = if a.pod == "web-a" {
            "10.244.1.1"
        } else {
            "10.100.0.11"
        };
        assert_eq!(a.client.ip(), want.parse::<IpAddr>()?, "{dataplane}: {a:?}");
    }
    lab.down()?;
    Ok(())
}

#[test]
fn nftables_forwards_a_loadbalancer_ip_to_pods_on_every_node() -> anyhow::Result<()> {
    check_data_path("nftables")
}

#[test]
fn userspace_forwards_a_loadbalancer_ip_to_pods_on_every_node() -> anyhow::Result<()> {
    check_data_path("userspace")
}
