//! Multi-hop eBGP (`ebgpMultiHop: true`): the speakers peer with an address of the router
//! that is not on their link, a loopback address the nodes reach through a static route via
//! the router's LAN address, the way a router's loopback is peered with across a fabric.
//! The router's daemon peers multi-hop from that address with GTSM (RFC 5082: it accepts
//! only segments with a TTL of at least 254), so the test proves the speakers' TTL:
//!
//! - Without `ebgpMultiHop` the speakers send single-hop eBGP's TTL 1 (captured on the
//!   router's side: every SYN and every segment with BGP in it, on the connections they open
//!   to the loopback, has TTL 1), which still reaches the router's loopback (local delivery
//!   takes nothing off), but GTSM drops it: the router never has the session established.
//!   This is the negative control: the router really refuses a low TTL, and nothing but the
//!   TTL differs from what follows.
//! - With `ebgpMultiHop: true` (after the peer is dropped, every speaker removes its metric
//!   series, and the router restarts, so no refused connection is left; then the manifest
//!   file is rewritten with the flag) they send TTL 255 (their SYNs are captured with it,
//!   and GTSM vouches for the rest): the sessions establish and the route arrives with each
//!   node's LAN address as next hop: the connection's local address, not the loopback's
//!   network, is what the speaker advertises.
//! - Multi-hop BFD (RFC 5883, port 4784) runs beside it with the router's BFD (the peer names
//!   a profile): it comes up on every node, and a hung node's route goes within the BFD
//!   detection time (100 ms x 3), long before the 9 s hold timer.
//! - iBGP to the same loopback (BIRD): multi-hop BFD without `ebgpMultiHop`, because the
//!   speaker sees the peer is on none of the node's networks.
//!
//! Everything added here (the address, the routes) is inside the lab's namespaces.

use super::{LIMIT, NODES, host_route, metric, node_addr, node2_hangs, service, start};
use ferrolb_e2e::lab::{BgpDaemon, Capture, Lab, LabSpec, RouterKind, plan, wait_for};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// The router's loopback address: outside every network of the lab plan.
const LOOPBACK: Ipv4Addr = Ipv4Addr::new(10, 255, 255, 1);
/// The manifest file `start` writes; written again with `ebgpMultiHop`.
const MANIFEST: &str = "bgp.yaml";
/// The router's sessions with the speakers (IPv4 only: the peer is an IPv4 loopback).
const SESSIONS: [&str; 3] = ["node1_v4", "node2_v4", "node3_v4"];
/// How long the sessions must stay down while the speakers send TTL 1: the speakers dial at
/// once and the router's connect retry is 1 s, so both sides try several times within it.
const REFUSED_FOR: Duration = Duration::from_secs(10);
/// A SYN or a segment with payload (pcap): what a connection's own socket sends, with its TTL.
const SPEAKER_SENT: &str = "( tcp[tcpflags] & tcp-syn != 0 or \
                            ( ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) ) != 0 )";
/// The speakers' series of the session's state.
const SESSION_UP: &str = "ferrolb_bgp_session_up{peer=\"router-mh\"}";

/// The BFD profile of the multi-hop peer: 100 ms x 3, and a minimum received TTL of 60. RFC
/// 5883 leaves the TTL of multi-hop BFD to the sender: FRR sends 255, BIRD its system
/// default (64), so MetalLB's default minimum of 254 would refuse BIRD's packets; 60 still
/// refuses anything from further than a few routers away.
const MULTIHOP_BFD: &str = "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\n\
                            metadata: {name: multihop}\nspec: {receiveInterval: 100, \
                            transmitInterval: 100, detectMultiplier: 3, minimumTtl: 60}\n";

/// Every node advertises the pool's IPs.
const ADVERTISEMENT: &str = "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\n\
                             metadata: {name: bgp}\nspec: {ipAddressPools: [bgp]}\n";

/// The pool, a BFD profile, one IPv4 peer (the router's loopback) with BFD from `my_asn`,
/// multi-hop if `multihop`, and an advertisement.
fn manifest(my_asn: u32, multihop: bool) -> String {
    let multihop = if multihop { ", ebgpMultiHop: true" } else { "" };
    [
        super::pool(),
        MULTIHOP_BFD.to_string(),
        format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: router-mh}}\n\
             spec: {{myASN: {}, peerASN: {}, peerAddress: '{LOOPBACK}', holdTime: 9s, \
             bfdProfile: multihop{multihop}}}\n",
            my_asn,
            plan::ROUTER_ASN
        ),
        ADVERTISEMENT.to_string(),
    ]
    .join("---\n")
}

/// The manifest without the peer: the pool and the advertisement only.
fn without_peer() -> String {
    [super::pool(), ADVERTISEMENT.to_string()].join("---\n")
}

/// A lab whose router has [`LOOPBACK`] on its loopback, reached by every node through the
/// router's LAN address, and its daemon peering from it with GTSM; the nodes in `node_asn`.
fn loopback_lab(kind: RouterKind, node_asn: u32) -> anyhow::Result<Lab> {
    let mut lab = Lab::up(LabSpec {
        lan_clients: 0,
        bfd: true,
        node_asn,
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
    Ok(lab)
}

fn multihop(kind: RouterKind) -> anyhow::Result<()> {
    let mut lab = loopback_lab(kind, plan::NODE_ASN)?;
    // What the speakers' connections to the loopback carry on the wire, seen by the router:
    // TTL 1 on every SYN and every segment with BGP in it. Not on every segment: the kernel
    // answers for a connection the speaker has already closed (a RST to the router's late
    // retransmission, which GTSM keeps coming, since it drops our ACKs) from no socket, with
    // the system's default TTL (64), whatever the closed socket had.
    let ttl_1 = capture(&lab, "ip[8] = 1")?;
    let not_1 = capture(&lab, &format!("ip[8] != 1 and {SPEAKER_SENT}"))?;
    start(&lab, &manifest(plan::NODE_ASN, false))?;
    let router = lab.router()?;
    stays_down(&lab, router)?;
    let (ttl_1, not_1) = (lab.stop_capture(ttl_1)?, lab.stop_capture(not_1)?);
    anyhow::ensure!(!ttl_1.is_empty(), "no segment to {LOOPBACK}:179 seen");
    anyhow::ensure!(
        not_1.is_empty(),
        "single-hop segments without TTL 1: {not_1:?}"
    );

    // The refused connections end before the good ones start. Dropping the peer is not
    // enough: the speakers' Cease and FIN carry TTL 1 too, which GTSM drops, so the router
    // keeps each connection until its own timers give up, and BIRD then resets the whole
    // neighbor, the good session of the next step with it. So the peer goes (every speaker
    // forgets its series), then the router's daemon restarts.
    lab.write_manifest(MANIFEST, &without_peer())?;
    for node in NODES {
        wait_for(&format!("{node} to drop the peer"), LIMIT, || {
            metric(&lab, node, SESSION_UP).ok()?.is_none().then_some(())
        })?;
    }
    lab.reconfigure_router(|_| {})?;
    let router = lab.router()?;

    // Their SYNs now carry 255 (the router's GTSM vouches for the later segments).
    let syn_255 = capture(&lab, "tcp[tcpflags] & tcp-syn != 0 and ip[8] = 255")?;
    lab.write_manifest(MANIFEST, &manifest(plan::NODE_ASN, true))?;
    router.wait_established(&SESSIONS, LIMIT)?;
    let syn_255 = lab.stop_capture(syn_255)?;
    anyhow::ensure!(!syn_255.is_empty(), "no SYN with TTL 255 to {LOOPBACK}:179");

    routes_and_bfd(&lab, router, false)?;
    lab.down()?;
    Ok(())
}

/// The route from every node with the nodes' LAN addresses as next hops, the speakers'
/// sessions and multi-hop BFD up, and a hung node's route gone within the BFD detection time.
/// `ibgp`: the nodes are in the router's AS, so the path has no AS.
fn routes_and_bfd(lab: &Lab, router: &BgpDaemon, ibgp: bool) -> anyhow::Result<()> {
    let ips = service(lab, "web", false, &["node1-pod1"])?;
    let v4 = ips
        .iter()
        .copied()
        .find(IpAddr::is_ipv4)
        .ok_or_else(|| anyhow::anyhow!("no IPv4 address in {ips:?}"))?;
    let hops: Vec<IpAddr> = (1..=3).map(|i| node_addr(i, false)).collect();
    for p in router.wait_route(&host_route(v4), &hops, LIMIT)? {
        let path: &[u32] = if ibgp { &[] } else { &[plan::NODE_ASN] };
        assert_eq!(p.as_path, path, "{p:?}");
    }
    for node in NODES {
        wait_for(&format!("{node}'s multi-hop session up"), LIMIT, || {
            (metric(lab, node, SESSION_UP).ok()? == Some(1.0)).then_some(())
        })?;
        wait_for(&format!("{node}'s multi-hop BFD up"), LIMIT, || {
            let series = "ferrolb_bfd_session_up{peer=\"router-mh\"}";
            (metric(lab, node, series).ok()? == Some(1.0)).then_some(())
        })?;
    }
    node2_hangs(lab, Duration::from_secs(3))
}

/// iBGP to the router's loopback: no `ebgpMultiHop` (validation refuses it on iBGP), yet the
/// peer is not on any network the node has, so BFD is multi-hop (as FRR decides it): it only
/// comes up if the speaker finds that out, since the router runs multi-hop BFD with it.
///
/// BIRD only: BIRD runs multi-hop BFD on every multi-hop session, iBGP's included. FRR decides
/// by its own view of the peer, and in this lab that view differs from ours: the nodes'
/// addresses are on the router's LAN, so FRR calls them directly connected and runs single
/// hop BFD from its loopback, which ours, seeing a peer off the link, rightly does not match.
/// Across a real fabric (a route reflector's loopback) both sides see multi-hop.
fn ibgp_multihop(kind: RouterKind) -> anyhow::Result<()> {
    let lab = loopback_lab(kind, plan::ROUTER_ASN)?;
    start(&lab, &manifest(plan::ROUTER_ASN, false))?;
    let router = lab.router()?;
    router.wait_established(&SESSIONS, LIMIT)?;
    routes_and_bfd(&lab, router, true)?;
    lab.down()?;
    Ok(())
}

#[test]
fn bird_ibgp_session_to_a_loopback_runs_multihop_bfd() -> anyhow::Result<()> {
    ibgp_multihop(RouterKind::Bird)
}

/// Captures, on the router's LAN side, the segments of connections the speakers open to the
/// loopback's BGP port that also match `also` (pcap syntax).
fn capture(lab: &Lab, also: &str) -> anyhow::Result<Capture> {
    let filter = format!("tcp and dst host {LOOPBACK} and dst port 179 and {also}");
    Ok(lab.capture("router", "eth0", &filter)?)
}

/// The negative control: the speakers run the session to the loopback without
/// `ebgpMultiHop`, so they send TTL 1, and for [`REFUSED_FOR`] the router never has it
/// established.
///
/// The router's view is the proof, not the speakers': BIRD and FRR apply GTSM to a
/// connection only once they have accepted it, so the OPEN a speaker sends right after the
/// handshake may already be queued, and gets read. The router then answers with its OPEN and
/// KEEPALIVE (TTL 255, which the speaker takes), and the speaker's side can reach Established
/// alone while its own KEEPALIVE never gets through, until the router gives up.
fn stays_down(lab: &Lab, router: &BgpDaemon) -> anyhow::Result<()> {
    // First every speaker runs the session (its series exists): the control is not vacuous.
    for node in NODES {
        wait_for(
            &format!("{node}'s session to the loopback started"),
            LIMIT,
            || metric(lab, node, SESSION_UP).ok()?.map(drop),
        )?;
    }
    let until = Instant::now() + REFUSED_FOR;
    while Instant::now() < until {
        let up: Vec<_> = router
            .sessions()?
            .into_iter()
            .filter(|s| s.established && SESSIONS.contains(&s.name.as_str()))
            .collect();
        anyhow::ensure!(
            up.is_empty(),
            "{} established sessions with speakers sending TTL 1, despite GTSM: {up:?}",
            router.kind
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
