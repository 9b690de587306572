//! The userspace proxy's listeners are reached only through the redirects of the Services'
//! addresses: a LAN client (or a pod) connecting to a node's address at a proxy port directly
//! is dropped by the guard (`inet ferrolb-proxy-guard`), while the Service still answers on
//! its ClusterIP, NodePort and LoadBalancer IP, over TCP and UDP, IPv4 and IPv6.

use super::fixture::{self, ECHO, first_answer, node_addr, pod_gateway, route, speakers};
use ferrolb_e2e::lab::{Lab, Proto};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

const CLUSTER_IPS: [&str; 2] = ["10.96.0.20", "fd00:96::20"];
const NODE_PORT: u16 = 30710;
/// The proxy's default port range (`--proxy-ports`).
const PROXY_PORTS: std::ops::RangeInclusive<u16> = 20000..=29999;

/// The ports in the proxy's range that node's sockets listen on (`ss`), for `udp` or TCP.
fn proxy_listeners(lab: &Lab, node: &str, udp: bool) -> anyhow::Result<BTreeSet<u16>> {
    let flags = if udp { "-Hlnu" } else { "-Hlnt" };
    let out = lab.exec(node, &["ss", flags])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .nth(3)?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
        .filter(|p| PROXY_PORTS.contains(p))
        .collect())
}

/// Whether `from` gets no answer from `addr:port` over `proto` within half a second.
fn unreachable(lab: &Lab, from: &str, proto: Proto, addr: IpAddr, port: u16) -> bool {
    lab.probe_with_timeout(from, proto, addr, port, Duration::from_millis(500))
        .is_err()
}

/// The guard's drop counter on `node`, or `None` without a guard table.
fn guard_drops(lab: &Lab, node: &str) -> anyhow::Result<Option<u64>> {
    let out = lab.exec_output(
        node,
        &["nft", "list", "table", "inet", "ferrolb-proxy-guard"],
    )?;
    if !out.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let packets = text.lines().find(|l| l.contains(" drop")).and_then(|l| {
        l.split("counter packets ")
            .nth(1)?
            .split(' ')
            .next()?
            .parse()
            .ok()
    });
    anyhow::ensure!(packets.is_some(), "no drop counter in the guard:\n{text}");
    Ok(packets)
}

/// The Service answers through every front door; the proxy's ports answer nobody directly.
fn service_answers(lab: &Lab, lb_ips: &[IpAddr]) -> anyhow::Result<()> {
    for ip in lb_ips {
        first_answer(lab, "client1", *ip, ECHO)?;
        lab.probe("client1", Proto::Udp, *ip, ECHO)?;
    }
    for v6 in [false, true] {
        let node = node_addr(1, fixture::any(v6));
        first_answer(lab, "client1", node, NODE_PORT)?;
        lab.probe("client1", Proto::Udp, node, NODE_PORT)?;
    }
    for ip in CLUSTER_IPS {
        first_answer(lab, "caller", ip.parse()?, ECHO)?;
    }
    Ok(())
}

#[test]
fn userspace_proxy_ports_are_closed_to_direct_access() -> anyhow::Result<()> {
    let lab = fixture::lab(&[("web-a", 1), ("web-b", 2), ("caller", 1)])?;
    fixture::tcp_and_udp_web(
        &lab,
        "LoadBalancer",
        NODE_PORT,
        &fixture::cluster_ips(CLUSTER_IPS),
    )?;
    lab.start_controller()?;
    speakers(&lab, "userspace", &["node1"])?;
    let lb_ips = lab.wait_service_ips("default", "web", Duration::from_secs(20))?;
    route(&lab, "client1", &lb_ips, 1)?;
    service_answers(&lab, &lb_ips)?;

    let tcp = proxy_listeners(&lab, "node1", false)?;
    let udp = proxy_listeners(&lab, "node1", true)?;
    // Two families of LoadBalancer IP and ClusterIP, and the NodePort on node1's addresses.
    anyhow::ensure!(
        tcp.len() >= 6 && udp.len() >= 6,
        "too few proxy listeners: TCP {tcp:?}, UDP {udp:?}"
    );
    let before = guard_drops(&lab, "node1")?.unwrap_or_default();
    for &port in &tcp {
        for v6 in [false, true] {
            let node = node_addr(1, fixture::any(v6));
            assert!(
                unreachable(&lab, "client1", Proto::Tcp, node, port),
                "TCP {node} port {port} answers the LAN client directly"
            );
        }
        let gateway = pod_gateway(1, fixture::any(false));
        assert!(
            unreachable(&lab, "caller", Proto::Tcp, gateway, port),
            "TCP {gateway} port {port} answers a pod directly"
        );
    }
    for &port in &udp {
        let node = node_addr(1, fixture::any(false));
        assert!(
            unreachable(&lab, "client1", Proto::Udp, node, port),
            "UDP {node} port {port} answers the LAN client directly"
        );
    }
    let after = guard_drops(&lab, "node1")?.unwrap_or_default();
    assert!(
        after >= before + (3 * tcp.len() + udp.len()) as u64,
        "the guard dropped {} packets for {} direct attempts",
        after - before,
        3 * tcp.len() + udp.len()
    );
    // The front doors still work after all that.
    service_answers(&lab, &lb_ips)?;

    // A clean stop takes the guard with it.
    lab.stop_process("speaker@node1")?;
    assert_eq!(
        guard_drops(&lab, "node1")?,
        None,
        "the guard outlived its speaker"
    );
    lab.down()?;
    Ok(())
}
