//! TCP-MD5 (RFC 2385): the router's daemon requires a password on every session. In one lab,
//! node1 has it from the BGPPeer's `password`, node2 from a Secret (`passwordSecret`), node3 a
//! wrong one: node1 and node2 establish and carry traffic, node3 never does, until its
//! password is corrected, which proves nothing else was keeping it out.

use super::{LIMIT, host_route, node_addr, service, start};
use ferrolb_e2e::lab::{Lab, LabSpec, Proto, RouterKind, plan, wait_until};
use std::net::IpAddr;
use std::time::{Duration, Instant};

const PASSWORD: &str = "ferrolb-lab-md5";
/// [`PASSWORD`] in base64, as a Secret's `data` holds it.
const PASSWORD_B64: &str = "ZmVycm9sYi1sYWItbWQ1";
/// How long the wrong password is watched not to establish: the router retries every second
/// and the speaker after its backoff, so several attempts each way.
const WRONG_FOR: Duration = Duration::from_secs(6);

/// The pool, the Secret, IPv4 peers per node (node3's with `node3_password`) and an IPv6 peer
/// for every node with the right password.
fn manifest(node3_password: &str) -> String {
    let (r4, r6) = plan::router_lan();
    let peer = |name: &str, addr: String, auth: String, node: Option<&str>| {
        let selector = node
            .map(|n| format!(", nodeSelectors: [{{matchLabels: {{kubernetes.io/hostname: {n}}}}}]"))
            .unwrap_or_default();
        format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: {name}}}\n\
             spec: {{myASN: {}, peerASN: {}, peerAddress: '{addr}', holdTime: 9s, {auth}{selector}}}\n",
            plan::NODE_ASN,
            plan::ROUTER_ASN
        )
    };
    let field = |p: &str| format!("password: '{p}'");
    [
        super::pool(),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: bgp-md5, namespace: ferrolb-system}}\n\
             type: kubernetes.io/basic-auth\ndata: {{password: {PASSWORD_B64}}}\n"
        ),
        peer("v4-field", r4.to_string(), field(PASSWORD), Some("node1")),
        peer(
            "v4-secret",
            r4.to_string(),
            "passwordSecret: {name: bgp-md5}".into(),
            Some("node2"),
        ),
        peer(
            "v4-node3",
            r4.to_string(),
            field(node3_password),
            Some("node3"),
        ),
        peer("v6", r6.to_string(), field(PASSWORD), None),
        "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bgp}\n\
         spec: {ipAddressPools: [bgp]}\n"
            .into(),
    ]
    .join("---\n")
}

fn md5_sessions(kind: RouterKind) -> anyhow::Result<()> {
    let mut lab = Lab::up(LabSpec {
        lan_clients: 0,
        ..LabSpec::default().router(Some(kind))
    })?;
    lab.reconfigure_router(|c| c.password = Some(PASSWORD.into()))?;
    start(&lab, &manifest("not-the-password"))?;
    let router = lab.router()?;
    let good = ["node1_v4", "node2_v4", "node1_v6", "node2_v6", "node3_v6"];
    router.wait_established(&good, LIMIT)?;

    // The routes come over the signed sessions, and the client's traffic follows them.
    let ips = service(&lab, "web", false, &["node1-pod1"])?;
    let v4 = ips
        .iter()
        .copied()
        .find(IpAddr::is_ipv4)
        .ok_or_else(|| anyhow::anyhow!("no IPv4 address in {ips:?}"))?;
    router.wait_route(
        &host_route(v4),
        &[node_addr(1, false), node_addr(2, false)],
        LIMIT,
    )?;
    for ip in ips.iter().filter(|ip| ip.is_ipv6()) {
        let all: Vec<IpAddr> = (1..=3).map(|i| node_addr(i, true)).collect();
        router.wait_route(&host_route(*ip), &all, LIMIT)?;
    }
    wait_until(&format!("an answer from {v4}"), LIMIT, || {
        Ok(lab
            .probe("ext1", Proto::Tcp, v4, super::forwarding::ECHO)
            .map_err(|e| e.to_string()))
    })?;

    // The wrong password: never past the SYN, however long both sides retry.
    let until = Instant::now() + WRONG_FOR;
    while Instant::now() < until {
        let sessions = router.sessions()?;
        let node3 = sessions.iter().find(|s| s.name == "node3_v4");
        assert!(
            node3.is_some_and(|s| !s.established),
            "node3 with a wrong password: {sessions:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(lab.is_running("speaker@node3")?, "node3's speaker exited");

    // The same speaker with the right password: established, and its route is there.
    lab.write_manifest("bgp.yaml", &manifest(PASSWORD))?;
    router.wait_established(&["node3_v4"], LIMIT)?;
    let all: Vec<IpAddr> = (1..=3).map(|i| node_addr(i, false)).collect();
    router.wait_route(&host_route(v4), &all, LIMIT)?;
    lab.down()?;
    Ok(())
}

per_router!(md5_sessions:
    bird_md5_right_password_establishes_wrong_one_never,
    frr_md5_right_password_establishes_wrong_one_never,
    gobgp_md5_right_password_establishes_wrong_one_never);
