//! BGP mode in the lab: real speakers in the node namespaces open sessions to the router's
//! real BGP daemon, which receives each LoadBalancer IP from every eligible node (read from
//! the daemon's own CLI), installs ECMP routes, and carries an external client's traffic to
//! the pods; deleting the Service, or its last local endpoint, withdraws the route.
//! Sessions signed with TCP-MD5 (`lab_bgp/md5.rs`), a speaker restart with and without
//! graceful restart (`lab_bgp/restart.rs`), a peer that misbehaves beside the real router
//! (`lab_bgp/misbehaving.rs`), multi-hop sessions to the router's loopback
//! (`lab_bgp/multihop.rs`), BFD packets forged from off the link (`lab_bgp/bfd_ttl.rs`), a
//! rolling restart of every speaker under traffic and a controller restart
//! (`lab_bgp/upgrade.rs`), and an uninstall leaving every node clean (`lab_bgp/uninstall.rs`).
//!
//! Needs root (namespaces) and the Debian packages of the router daemons (bird2, frr,
//! gobgpd) besides the lab's usual tools (tests/install-deps.sh).

#[allow(dead_code)]
#[path = "lab_forwarding/fixture.rs"]
mod forwarding;
#[path = "lab_forwarding/leftovers.rs"]
mod leftovers;

use ferrolb_e2e::lab::{
    Community, Lab, LabSpec, LargeCommunity, Proto, RouterKind, plan, wait_for, wait_until,
};
use std::net::IpAddr;
use std::time::Duration;

/// Generous: the controller assigns, every speaker reads the status, sessions come up.
const LIMIT: Duration = Duration::from_secs(30);
const NODES: [&str; 3] = ["node1", "node2", "node3"];

/// The BGP pool, a BFD profile, a peer per router address family with this node ASN and
/// `peer` (extra fields of its spec), and an advertisement with communities and `adv`
/// (likewise).
fn config(node_asn: u32, adv: &str, peer: &str) -> String {
    let extra = peer;
    let (r4, r6) = plan::router_lan();
    let peer = |name: &str, addr: String| {
        format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: {name}}}\n\
             spec: {{myASN: {}, peerASN: {}, peerAddress: '{addr}', holdTime: 9s{extra}}}\n",
            node_asn,
            plan::ROUTER_ASN
        )
    };
    [
        pool(),
        FAST_BFD.to_string(),
        peer("router-v4", r4.to_string()),
        peer("router-v6", r6.to_string()),
        format!(
            "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: bgp}}\n\
             spec: {{ipAddressPools: [bgp], communities: ['65000:300', 'large:64512:1:1']{adv}}}\n"
        ),
    ]
    .join("---\n")
}

/// The BGP pool of the lab's address plan (both families), named `bgp`.
fn pool() -> String {
    format!(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: bgp}}\n\
         spec: {{addresses: ['{}', '{}']}}\n",
        plan::BGP_POOL_V4,
        plan::BGP_POOL_V6
    )
}

/// A lab with `kind` in the router, the config, the controller and a speaker on every node
/// (nftables data path, layer 2 off so only BGP attracts traffic).
fn up(kind: RouterKind, node_asn: u32, adv: &str) -> anyhow::Result<Lab> {
    up_with(kind, node_asn, adv, "", false)
}

/// [`up`] with extra `peer` fields, and BFD on the router's sessions when `bfd`.
fn up_with(
    kind: RouterKind,
    node_asn: u32,
    adv: &str,
    peer: &str,
    bfd: bool,
) -> anyhow::Result<Lab> {
    let lab = Lab::up(LabSpec {
        lan_clients: 0,
        node_asn,
        bfd,
        ..LabSpec::default().router(Some(kind))
    })?;
    start(&lab, &config(node_asn, adv, peer))?;
    Ok(lab)
}

/// The speakers' flags: nftables data path, layer 2 off so only BGP attracts traffic.
const SPEAKER_FLAGS: [&str; 4] = ["--dataplane", "nftables", "--layer2", "false"];

/// Writes the BGP manifest `yaml`, starts the controller and a speaker on every node.
fn start(lab: &Lab, yaml: &str) -> anyhow::Result<()> {
    lab.write_manifest("bgp.yaml", yaml)?;
    lab.start_controller()?;
    for node in NODES {
        lab.start_speaker_with(node, &SPEAKER_FLAGS)?;
    }
    Ok(())
}

fn node_addr(i: u8, v6: bool) -> IpAddr {
    let (a4, a6) = plan::node(i);
    if v6 { a6.into() } else { a4.into() }
}

fn host_route(ip: IpAddr) -> String {
    let len = if ip.is_ipv4() { 32 } else { 128 };
    format!("{ip}/{len}")
}

/// A dual-stack Service `name` over the pods `pods`, with its policy.
fn service(lab: &Lab, name: &str, local: bool, pods: &[&str]) -> anyhow::Result<Vec<IpAddr>> {
    let policy = if local { "Local" } else { "Cluster" };
    let yaml = forwarding::service(
        name,
        "LoadBalancer",
        None,
        "",
        &format!("  externalTrafficPolicy: {policy}\n"),
    );
    lab.write_manifest(&format!("{name}.yaml"), &yaml)?;
    forwarding::endpoints(lab, name, pods)?;
    Ok(lab.wait_service_ips("default", name, LIMIT)?)
}

/// Opens a socket inside the lab namespace `netns`: a thread enters it (setns), runs `open`
/// and ends; the socket stays in that namespace wherever it is used from.
fn in_netns<T: Send + 'static>(
    netns: &str,
    open: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    use std::os::fd::AsFd;
    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || -> anyhow::Result<T> {
        let ns = std::fs::File::open(&path)?;
        rustix::thread::move_into_link_name_space(
            ns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        Ok(open()?)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the namespace thread panicked"))?
}

/// Waits until the router has a session with every node over both families.
fn wait_sessions(lab: &Lab) -> anyhow::Result<()> {
    let sessions: Vec<String> = NODES
        .iter()
        .flat_map(|n| [format!("{n}_v4"), format!("{n}_v6")])
        .collect();
    let names: Vec<&str> = sessions.iter().map(String::as_str).collect();
    lab.router()?.wait_established(&names, LIMIT)?;
    Ok(())
}

/// The Prometheus text `node`'s speaker serves.
fn metrics(lab: &Lab, node: &str) -> anyhow::Result<String> {
    let localhost = IpAddr::from([127, 0, 0, 1]);
    Ok(lab.http_request(node, localhost, 7473, "/metrics")?.1)
}

/// The value of metric `series` (name and labels, as printed) on `node`'s speaker.
fn metric(lab: &Lab, node: &str, series: &str) -> anyhow::Result<Option<f64>> {
    Ok(metrics(lab, node)?
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok()))
}

/// The `error` labels of `peer`'s `ferrolb_bgp_last_error_info` series set to 1 on `node`.
fn last_errors(lab: &Lab, node: &str, peer: &str) -> anyhow::Result<Vec<String>> {
    let peer_label = format!("peer=\"{peer}\"");
    Ok(metrics(lab, node)?
        .lines()
        .filter_map(|l| l.strip_prefix("ferrolb_bgp_last_error_info{"))
        .filter(|l| l.contains(&peer_label) && l.ends_with("} 1"))
        .filter_map(|l| {
            let from = l.find("error=\"")? + "error=\"".len();
            let len = l[from..].find('"')?;
            Some(l[from..from + len].to_string())
        })
        .collect())
}

fn every_node_advertises(kind: RouterKind) -> anyhow::Result<()> {
    let lab = up(kind, plan::NODE_ASN, "")?;
    let router = lab.router()?;
    wait_sessions(&lab)?;

    // Cluster policy with one pod on node1: every node advertises, both families.
    let ips = service(&lab, "web", false, &["node1-pod1"])?;
    for ip in &ips {
        let hops: Vec<IpAddr> = (1..=3).map(|i| node_addr(i, ip.is_ipv6())).collect();
        let paths = router.wait_route(&host_route(*ip), &hops, LIMIT)?;
        for p in &paths {
            assert_eq!(p.as_path, [plan::NODE_ASN], "{p:?}");
            assert_eq!(p.peer, p.next_hop, "next hop self: {p:?}");
            assert!(p.communities.contains(&Community(65000, 300)), "{p:?}");
            assert_eq!(p.large_communities, [LargeCommunity(64512, 1, 1)], "{p:?}");
        }
    }
    // Each speaker counts its sessions and what it advertised.
    for node in NODES {
        for peer in ["router-v4", "router-v6"] {
            let up = metric(
                &lab,
                node,
                &format!("ferrolb_bgp_session_up{{peer=\"{peer}\"}}"),
            )?;
            assert_eq!(up, Some(1.0), "{node} {peer}");
            let n = format!("ferrolb_bgp_announced_prefixes{{peer=\"{peer}\"}}");
            assert_eq!(metric(&lab, node, &n)?, Some(1.0), "{node} {peer}");
        }
    }
    // The external client behind the router reaches the pod through the ECMP routes and
    // whichever node's data path the router picked.
    for ip in &ips {
        let answer = wait_until(&format!("an answer from {ip}"), LIMIT, || {
            Ok(match lab.probe("ext1", Proto::Tcp, *ip, forwarding::ECHO) {
                Ok(a) => Ok(a),
                Err(e) => Err(e.to_string()),
            })
        })?;
        assert_eq!(answer.pod, "node1-pod1", "{answer:?}");
    }

    // Local policy: only the node with the endpoint; moving the endpoint moves the route.
    let local = service(&lab, "local", true, &["node2-pod1"])?;
    for ip in &local {
        router.wait_route(&host_route(*ip), &[node_addr(2, ip.is_ipv6())], LIMIT)?;
    }
    forwarding::endpoints(&lab, "local", &["node3-pod1"])?;
    for ip in &local {
        router.wait_route(&host_route(*ip), &[node_addr(3, ip.is_ipv6())], LIMIT)?;
    }

    // Deleting the Service withdraws it everywhere; the other Service stays.
    lab.remove_manifest("web.yaml")?;
    for ip in &ips {
        router.wait_route(&host_route(*ip), &[], LIMIT)?;
    }
    router.wait_route(
        &host_route(local[0]),
        &[node_addr(3, local[0].is_ipv6())],
        LIMIT,
    )?;

    // A speaker that stops ceases its sessions: its routes go at once, not after the hold time.
    lab.stop_process("speaker@node3")?;
    for ip in &local {
        router.wait_route(&host_route(*ip), &[], Duration::from_secs(5))?;
    }
    lab.down()?;
    Ok(())
}

/// A node that hangs (its speaker frozen, its sockets open) loses its routes when the router's
/// hold timer (9 s here) expires; when it comes back its session recovers and so do they.
fn hung_node_is_withdrawn_after_the_hold_time(kind: RouterKind) -> anyhow::Result<()> {
    let lab = up(kind, plan::NODE_ASN, "")?;
    wait_sessions(&lab)?;
    node2_hangs(&lab, Duration::from_secs(15))?;
    lab.down()?;
    Ok(())
}

/// Freezes node2's speaker (its sockets stay open, it sends nothing) while a Service served
/// from node1 is advertised by all three; the router must drop node2's path `within`, and
/// take it back once the speaker resumes.
fn node2_hangs(lab: &Lab, within: Duration) -> anyhow::Result<()> {
    let router = lab.router()?;
    let ips = service(lab, "web", false, &["node1-pod1"])?;
    let all: Vec<IpAddr> = (1..=3).map(|i| node_addr(i, false)).collect();
    let v4 = ips
        .iter()
        .copied()
        .find(IpAddr::is_ipv4)
        .ok_or_else(|| anyhow::anyhow!("no IPv4 address in {ips:?}"))?;
    router.wait_route(&host_route(v4), &all, LIMIT)?;
    lab.pause_process("speaker@node2")?;
    let rest = [node_addr(1, false), node_addr(3, false)];
    router.wait_route(&host_route(v4), &rest, within)?;
    lab.resume_process("speaker@node2")?;
    router.wait_route(&host_route(v4), &all, LIMIT)?;
    Ok(())
}

/// The BFD profile peers may name (`bfdProfile: fast`): 100 ms × 3.
const FAST_BFD: &str = "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: fast}\n\
                        spec: {receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3}\n";

/// With BFD (BIRD and FRR run it on their side), a hung node's routes go within the BFD
/// detection time, long before the 9 s hold timer.
fn bfd_withdraws_a_hung_node_at_once(kind: RouterKind) -> anyhow::Result<()> {
    let lab = up_with(kind, plan::NODE_ASN, "", ", bfdProfile: fast", true)?;
    wait_sessions(&lab)?;
    for node in NODES {
        wait_for(&format!("BFD up on {node}"), LIMIT, || {
            let series = "ferrolb_bfd_session_up{peer=\"router-v4\"}";
            (metric(&lab, node, series).ok()? == Some(1.0)).then_some(())
        })?;
    }
    node2_hangs(&lab, Duration::from_secs(3))?;
    lab.down()?;
    Ok(())
}

#[test]
fn bird_bfd_withdraws_a_hung_node_at_once() -> anyhow::Result<()> {
    bfd_withdraws_a_hung_node_at_once(RouterKind::Bird)
}

#[test]
fn frr_bfd_withdraws_a_hung_node_at_once() -> anyhow::Result<()> {
    bfd_withdraws_a_hung_node_at_once(RouterKind::Frr)
}

/// iBGP: no AS in the path, and the advertisement's LOCAL_PREF reaches the router.
fn ibgp_carries_local_pref(kind: RouterKind) -> anyhow::Result<()> {
    let lab = up(kind, plan::ROUTER_ASN, ", localPref: 150")?;
    let router = lab.router()?;
    wait_sessions(&lab)?;
    for ip in service(&lab, "web", false, &["node1-pod1"])? {
        let hops: Vec<IpAddr> = (1..=3).map(|i| node_addr(i, ip.is_ipv6())).collect();
        for p in router.wait_route(&host_route(ip), &hops, LIMIT)? {
            assert_eq!(p.local_pref, Some(150), "{p:?}");
            assert!(p.as_path.is_empty(), "iBGP adds no AS: {p:?}");
        }
    }
    lab.down()?;
    Ok(())
}

/// One test per router daemon for `scenario`, so a failure names the daemon.
macro_rules! per_router {
    ($scenario:ident: $bird:ident, $frr:ident, $gobgp:ident) => {
        #[test]
        fn $bird() -> anyhow::Result<()> {
            $scenario(RouterKind::Bird)
        }

        #[test]
        fn $frr() -> anyhow::Result<()> {
            $scenario(RouterKind::Frr)
        }

        #[test]
        fn $gobgp() -> anyhow::Result<()> {
            $scenario(RouterKind::Gobgp)
        }
    };
}

per_router!(every_node_advertises:
    bird_receives_every_ip_from_every_eligible_node,
    frr_receives_every_ip_from_every_eligible_node,
    gobgp_receives_every_ip_from_every_eligible_node);
per_router!(hung_node_is_withdrawn_after_the_hold_time:
    bird_withdraws_a_hung_node, frr_withdraws_a_hung_node, gobgp_withdraws_a_hung_node);
per_router!(ibgp_carries_local_pref:
    bird_ibgp_carries_local_pref, frr_ibgp_carries_local_pref, gobgp_ibgp_carries_local_pref);

// After `per_router!`: the scenarios in these files use it.
#[path = "lab_bgp/bfd_ttl.rs"]
mod bfd_ttl;
#[path = "lab_bgp/md5.rs"]
mod md5;
#[path = "lab_bgp/misbehaving.rs"]
mod misbehaving;
#[path = "lab_bgp/multihop.rs"]
mod multihop;
#[path = "lab_bgp/restart.rs"]
mod restart;
#[path = "lab_bgp/uninstall.rs"]
mod uninstall;
#[path = "lab_bgp/upgrade.rs"]
mod upgrade;
