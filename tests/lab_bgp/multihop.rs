//! Multi-hop eBGP (`ebgpMultiHop: true`): the speakers peer with an address of the router
//! that is not on their link, a loopback address the nodes reach through a static route via
//! the router's LAN address, the way a router's loopback is peered with across a fabric.
//! The router's daemon peers multi-hop from that address. The sessions establish and the
//! route arrives with each node's LAN address as next hop: the connection's local address,
//! not the loopback's network, is what the speaker advertises.
//!
//! Everything added here (the address, the routes) is inside the lab's namespaces.

use super::{LIMIT, NODES, host_route, metric, node_addr, service, start};
use ferrolb_e2e::lab::{Lab, LabSpec, RouterKind, plan, wait_for};
use std::net::{IpAddr, Ipv4Addr};

/// The router's loopback address: outside every network of the lab plan.
const LOOPBACK: Ipv4Addr = Ipv4Addr::new(10, 255, 255, 1);

/// The pool, one multi-hop IPv4 peer (the router's loopback) and an advertisement.
fn manifest() -> String {
    [
        super::pool(),
        format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: router-mh}}\n\
             spec: {{myASN: {}, peerASN: {}, peerAddress: '{LOOPBACK}', holdTime: 9s, \
             ebgpMultiHop: true}}\n",
            plan::NODE_ASN,
            plan::ROUTER_ASN
        ),
        "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bgp}\n\
         spec: {ipAddressPools: [bgp]}\n"
            .into(),
    ]
    .join("---\n")
}

fn multihop(kind: RouterKind) -> anyhow::Result<()> {
    let mut lab = Lab::up(LabSpec {
        lan_clients: 0,
        ..LabSpec::default().router(Some(kind))
    })?;
    // The address first: the daemon binds its sessions' source to it when it starts.
    lab.exec(
        "router",
        &["ip", "addr", "add", &format!("{LOOPBACK}/32"), "dev", "lo"],
    )?;
    let r4 = plan::router_lan().0.to_string();
    for node in NODES {
        lab.exec(
            node,
            &[
                "ip",
                "route",
                "replace",
                &format!("{LOOPBACK}/32"),
                "via",
                &r4,
            ],
        )?;
    }
    lab.reconfigure_router(|c| c.multihop_source = Some(LOOPBACK.into()))?;
    start(&lab, &manifest())?;
    let router = lab.router()?;
    router.wait_established(&["node1_v4", "node2_v4", "node3_v4"], LIMIT)?;

    let ips = service(&lab, "web", false, &["node1-pod1"])?;
    let v4 = ips
        .iter()
        .copied()
        .find(IpAddr::is_ipv4)
        .ok_or_else(|| anyhow::anyhow!("no IPv4 address in {ips:?}"))?;
    let hops: Vec<IpAddr> = (1..=3).map(|i| node_addr(i, false)).collect();
    for p in router.wait_route(&host_route(v4), &hops, LIMIT)? {
        assert_eq!(p.as_path, [plan::NODE_ASN], "{p:?}");
    }
    for node in NODES {
        wait_for(&format!("{node}'s multi-hop session up"), LIMIT, || {
            let series = "ferrolb_bgp_session_up{peer=\"router-mh\"}";
            (metric(&lab, node, series).ok()? == Some(1.0)).then_some(())
        })?;
    }
    lab.down()?;
    Ok(())
}

#[test]
fn bird_multihop_session_to_a_loopback_carries_the_routes() -> anyhow::Result<()> {
    multihop(RouterKind::Bird)
}

#[test]
fn frr_multihop_session_to_a_loopback_carries_the_routes() -> anyhow::Result<()> {
    multihop(RouterKind::Frr)
}
