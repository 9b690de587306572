//! The other ways into a Service: its ClusterIP from a pod, and its NodePort on every node.

use super::fixture::{self, ECHO, answers, endpoints, host_addr, node_addr, pod_gateway, speakers};
use super::{family, tally};
use ferrolb_e2e::lab::{Lab, Proto};
use std::net::IpAddr;

const CLUSTER_IPS: [&str; 2] = ["10.96.0.10", "fd00:96::10"];

/// A lab with `pods`, the ClusterIP Service `web` over web-a and web-b, and a speaker on
/// `node` only.
fn cluster_ip_lab(pods: &[(&str, u8)], dataplane: &str, node: &str) -> anyhow::Result<Lab> {
    let lab = fixture::lab(pods)?;
    let spec = fixture::cluster_ips(CLUSTER_IPS);
    lab.write_manifest(
        "web.yaml",
        &fixture::service("web", "ClusterIP", None, "", &spec),
    )?;
    endpoints(&lab, "web", &["web-a", "web-b"])?;
    speakers(&lab, dataplane, &[node])?;
    Ok(lab)
}

/// A pod on node3 (not an endpoint) reaches a ClusterIP Service whose pods are on node1 and
/// node2, through node3's data path only (no other node runs a speaker). ClusterIP traffic
/// is not masqueraded: in the kernel path the pods see the client pod itself; the userspace
/// proxy opens its own connection from node3.
pub(crate) fn cluster_ip_from_a_pod(dataplane: &str) -> anyhow::Result<()> {
    let lab = cluster_ip_lab(
        &[("web-a", 1), ("web-b", 2), ("caller", 3)],
        dataplane,
        "node3",
    )?;
    super::ipvs_matches_model(&lab, dataplane, &[3])?;
    for ip in CLUSTER_IPS {
        let ip: IpAddr = ip.parse()?;
        let got = answers(&lab, "caller", ip, ECHO, 10)?;
        let counts = tally(got.iter().map(|a| a.pod.as_str()));
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [("web-a".into(), 5), ("web-b".into(), 5)],
            "{dataplane} {ip}: round robin over both pods"
        );
        let want = match dataplane {
            "nftables" | "ipvs" => host_addr(&lab, "caller", ip)?,
            _ => node_addr(3, ip),
        };
        for a in &got {
            assert_eq!(a.client.ip(), want, "{dataplane} {ip}: {a}");
        }
    }
    lab.down()?;
    Ok(())
}

#[test]
fn nftables_forwards_a_cluster_ip_from_a_pod() -> anyhow::Result<()> {
    cluster_ip_from_a_pod("nftables")
}

#[test]
fn userspace_forwards_a_cluster_ip_from_a_pod() -> anyhow::Result<()> {
    cluster_ip_from_a_pod("userspace")
}

/// A pod reaches its own Service and is balanced to itself (hairpin) or to a pod elsewhere.
/// The reply to a hairpin connection must come from the Service's address, so the node
/// masquerades exactly that traffic (the pod sees its node's pod gateway), and nothing else
/// (the other pod sees the caller's own address, in the kernel path; the userspace proxy
/// connects from the node anyway).
pub(crate) fn hairpin(dataplane: &str) -> anyhow::Result<()> {
    let lab = cluster_ip_lab(&[("web-a", 1), ("web-b", 2)], dataplane, "node1")?;
    super::ipvs_matches_model(&lab, dataplane, &[1])?;
    for ip in CLUSTER_IPS {
        let ip: IpAddr = ip.parse()?;
        let got = answers(&lab, "web-a", ip, ECHO, 6)?;
        let counts = tally(got.iter().map(|a| a.pod.as_str()));
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [("web-a".into(), 3), ("web-b".into(), 3)],
            "{dataplane} {ip}"
        );
        let caller = match dataplane {
            "nftables" | "ipvs" => host_addr(&lab, "web-a", ip)?,
            _ => node_addr(1, ip),
        };
        for a in &got {
            let want = if a.pod == "web-a" {
                pod_gateway(1, ip)
            } else {
                caller
            };
            assert_eq!(a.client.ip(), want, "{dataplane} {ip}: {a}");
        }
    }
    lab.down()?;
    Ok(())
}

#[test]
fn nftables_lets_a_pod_reach_itself_through_its_service() -> anyhow::Result<()> {
    hairpin("nftables")
}

#[test]
fn userspace_lets_a_pod_reach_itself_through_its_service() -> anyhow::Result<()> {
    hairpin("userspace")
}

const NODE_PORT: u16 = 30700;

/// The client reaches a NodePort Service (TCP and UDP on the same nodePort) on each node's
/// addresses, node3 included, which has no pod of it: every node forwards to the pods on the
/// others, and masquerades (Cluster policy), so each pod sees the node it came through.
pub(crate) fn node_port_on_every_node(dataplane: &str) -> anyhow::Result<()> {
    let lab = fixture::lab(&[("web-a", 1), ("web-b", 2)])?;
    fixture::tcp_and_udp_web(&lab, "NodePort", NODE_PORT, "")?;
    speakers(&lab, dataplane, &["node1", "node2", "node3"])?;
    super::ipvs_matches_model(&lab, dataplane, &[1, 2, 3])?;
    for i in 1..=3u8 {
        for v6 in [false, true] {
            let like = fixture::any(v6);
            let node = node_addr(i, like);
            let seen_as = [node, pod_gateway(i, like)];
            let got = answers(&lab, "client1", node, NODE_PORT, 4)?;
            let counts = tally(got.iter().map(|a| a.pod.as_str()));
            assert_eq!(
                counts.into_iter().collect::<Vec<_>>(),
                [("web-a".into(), 2), ("web-b".into(), 2)],
                "{dataplane} node{i} {}: TCP round robin over both pods",
                family(node)
            );
            for a in &got {
                assert!(seen_as.contains(&a.client.ip()), "{dataplane} node{i}: {a}");
            }
            let a = lab.probe("client1", Proto::Udp, node, NODE_PORT)?;
            assert!(
                ["web-a", "web-b"].contains(&a.pod.as_str()) && seen_as.contains(&a.client.ip()),
                "{dataplane} node{i} UDP: {a}"
            );
        }
    }
    lab.down()?;
    Ok(())
}

#[test]
fn nftables_forwards_a_node_port_on_every_node() -> anyhow::Result<()> {
    node_port_on_every_node("nftables")
}

#[test]
fn userspace_forwards_a_node_port_on_every_node() -> anyhow::Result<()> {
    node_port_on_every_node("userspace")
}
