//! Each router daemon (BIRD, FRR, GoBGP) runs in the router host, its view can be read, and it
//! really routes: a second instance of the same daemon in node1 and node2 peers with it over
//! IPv4 and IPv6, the prefixes they advertise show up on the router with the right next hops
//! and attributes, the router installs them into its kernel as ECMP routes, and a client
//! behind the router reaches the nodes through them. iBGP carries LOCAL_PREF.
//!
//! Needs root and the Debian packages bird2, frr and gobgpd (tests/run.sh installs them).

use ferrolb_e2e::lab::{
    Announce, Community, Lab, LabSpec, LargeCommunity, Proto, RouterKind, plan, wait_for,
    wait_until,
};
use std::net::IpAddr;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const V4: &str = "10.250.0.1/32";
const V6: &str = "fd00:250::1/128";

fn announce(prefix: &str, local_pref: Option<u32>) -> Announce {
    Announce {
        communities: vec![Community(65000, 300)],
        large_communities: vec![LargeCommunity(64512, 1, 1)],
        local_pref,
        ..Announce::prefix(prefix)
    }
}

fn ip(s: impl ToString) -> IpAddr {
    s.to_string().parse().unwrap()
}

fn router_routes_through_nodes(kind: RouterKind) -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        nodes: 2,
        lan_clients: 0,
        echo: false,
        ..LabSpec::default().router(Some(kind))
    })?;
    let router = lab.router()?;

    // The view is readable before any peer exists: a session per node and family, down.
    let sessions = router.sessions()?;
    let names: Vec<&str> = sessions.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["node1_v4", "node1_v6", "node2_v4", "node2_v6"],
        "{sessions:?}"
    );
    assert!(sessions.iter().all(|s| !s.established), "{sessions:?}");
    assert_eq!(sessions[1].peer, ip(plan::node(1).1));
    assert!(sessions.iter().all(|s| s.peer_asn == Some(plan::NODE_ASN)));
    assert!(router.routes()?.is_empty());

    // A second instance of the same daemon in each node advertises one IPv4 and one IPv6
    // address of the BGP pool, and serves on it (the echo server binds [::]).
    for node in ["node1", "node2"] {
        let peer = lab.start_bgp_peer(node, kind, vec![announce(V4, None), announce(V6, None)])?;
        peer.wait_established(&["router_v4", "router_v6"], LIMIT)?;
        lab.exec(node, &["ip", "addr", "add", V4, "dev", "lo"])?;
        lab.exec(node, &["ip", "addr", "add", V6, "dev", "lo"])?;
        let echo = ferrolb_e2e::lab::binary("ferrolb-lab-echo")?;
        let name = lab.spawn(
            "echo",
            node,
            &[&echo.to_string_lossy(), "--name", node, "--tcp", "7000"],
        )?;
        lab.wait_log(&name, "listening", LIMIT)?;
    }
    router.wait_established(&["node1_v4", "node1_v6", "node2_v4", "node2_v6"], LIMIT)?;

    for (prefix, v6) in [(V4, false), (V6, true)] {
        let hops: Vec<IpAddr> = (1..=2)
            .map(|i| {
                if v6 {
                    ip(plan::node(i).1)
                } else {
                    ip(plan::node(i).0)
                }
            })
            .collect();
        let paths = router.wait_route(prefix, &hops, LIMIT)?;
        for p in &paths {
            assert_eq!(p.as_path, [plan::NODE_ASN], "{p:?}");
            assert_eq!(p.peer, p.next_hop, "eBGP from the node itself: {p:?}");
            assert!(p.communities.contains(&Community(65000, 300)), "{p:?}");
            assert_eq!(p.large_communities, [LargeCommunity(64512, 1, 1)], "{p:?}");
        }
        assert_eq!(paths.iter().filter(|p| p.best).count(), 1, "{paths:?}");
        // ECMP in the router's kernel: one route, a next hop per node (FRR installs IPv6
        // routes via the nodes' link-local addresses, so count those).
        let kernel = wait_until(
            &format!("an ECMP kernel route for {prefix} on the router"),
            LIMIT,
            || {
                let k = lab.kernel_next_hops("router", prefix)?;
                Ok(if k.len() == 2 {
                    Ok(k)
                } else {
                    Err(format!("{k:?}"))
                })
            },
        )?;
        if !(v6 && kind == RouterKind::Frr) {
            assert_eq!(kernel, hops);
        }
    }

    // The external client, behind the router, reaches the address through those routes.
    for addr in [ip("10.250.0.1"), ip("fd00:250::1")] {
        let a = lab.probe("ext1", Proto::Tcp, addr, 7000)?;
        assert!(["node1", "node2"].contains(&a.pod.as_str()), "{a:?}");
        assert_eq!(
            a.client.ip(),
            lab.host("ext1")?.addr(addr.is_ipv6()).unwrap(),
            "{a:?}"
        );
    }

    // A peer that goes away takes its paths with it, on the router and in its kernel.
    for p in lab
        .process_names()
        .iter()
        .filter(|p| p.ends_with("@node1") && !p.starts_with("echo"))
    {
        lab.stop_process(p)?;
    }
    router.wait_route(V4, &[ip(plan::node(2).0)], LIMIT)?;
    router.wait_route(V6, &[ip(plan::node(2).1)], LIMIT)?;
    wait_until(
        "the router's kernel to drop node1's next hop",
        LIMIT,
        || {
            let k = lab.kernel_next_hops("router", V4)?;
            Ok(if k == [ip(plan::node(2).0)] {
                Ok(())
            } else {
                Err(format!("{k:?}"))
            })
        },
    )?;
    lab.down()?;
    Ok(())
}

fn ibgp_carries_local_pref(kind: RouterKind) -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        nodes: 1,
        lan_clients: 0,
        external_clients: 0,
        echo: false,
        node_asn: plan::ROUTER_ASN,
        ..LabSpec::default().router(Some(kind))
    })?;
    let router = lab.router()?;
    let peer = lab.start_bgp_peer(
        "node1",
        kind,
        vec![announce(V4, Some(150)), announce(V6, Some(150))],
    )?;
    peer.wait_established(&["router_v4", "router_v6"], LIMIT)?;
    let (n4, n6) = plan::node(1);
    for (prefix, hop) in [(V4, ip(n4)), (V6, ip(n6))] {
        router.wait_route(prefix, &[hop], LIMIT)?;
        // Best once the router has resolved the iBGP next hop: FRR lists the path a moment
        // before its nexthop tracking marks it valid, so wait for that rather than read once.
        let paths = wait_for(&format!("{prefix} best at {kind:?}"), LIMIT, || {
            let paths = router.routes_for(prefix).ok()?;
            paths.first().is_some_and(|p| p.best).then_some(paths)
        })?;
        assert_eq!(paths[0].local_pref, Some(150), "{paths:?}");
        assert!(paths[0].as_path.is_empty(), "iBGP adds no AS: {paths:?}");
        assert_eq!(paths[0].next_hop, Some(hop), "{paths:?}");
    }
    lab.down()?;
    Ok(())
}

#[test]
fn bird_routes_through_nodes() -> anyhow::Result<()> {
    router_routes_through_nodes(RouterKind::Bird)
}

#[test]
fn frr_routes_through_nodes() -> anyhow::Result<()> {
    router_routes_through_nodes(RouterKind::Frr)
}

#[test]
fn gobgp_routes_through_nodes() -> anyhow::Result<()> {
    router_routes_through_nodes(RouterKind::Gobgp)
}

#[test]
fn bird_ibgp_carries_local_pref() -> anyhow::Result<()> {
    ibgp_carries_local_pref(RouterKind::Bird)
}

#[test]
fn frr_ibgp_carries_local_pref() -> anyhow::Result<()> {
    ibgp_carries_local_pref(RouterKind::Frr)
}

#[test]
fn gobgp_ibgp_carries_local_pref() -> anyhow::Result<()> {
    ibgp_carries_local_pref(RouterKind::Gobgp)
}
