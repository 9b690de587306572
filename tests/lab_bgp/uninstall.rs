//! Uninstall leaves the nodes clean. `kubectl delete -f config/install.yaml` deletes the
//! DaemonSet and the Deployment, and the pods get SIGTERM; here the controller and every
//! speaker get SIGTERM at once while a BGP Service is forwarded and advertised by every node
//! and a layer 2 Service is announced by its elected node. The speakers run with the default
//! `--on-stop auto`, which is a clean stop in standalone mode (in Kubernetes mode it is one
//! once the DaemonSet is gone, see `ferrolb_shared::stop`). Each must exit by itself, and
//! leave in its node's namespace no nftables table of FerroLB, no `ferrolb0`, no service
//! address, and no route at the router; nobody answers ARP for the layer 2 address.

use super::forwarding::{self, ECHO};
use super::{LIMIT, NODES, config, host_route, leftovers, node_addr, wait_sessions};
use ferrolb_e2e::lab::{Lab, LabSpec, Proto, RouterKind, plan, wait_until};
use std::net::IpAddr;
use std::time::Duration;

/// The layer 2 pool, its advertisement, and the gossip key (standalone mode reads Secrets
/// from the manifests).
const LAYER2: &str = "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: lan}\n\
                      spec: {ipAddressPools: [lan]}\n---\n\
                      apiVersion: v1\nkind: Secret\nmetadata: {name: ferrolb-memberlist, namespace: ferrolb-system}\n\
                      data: {secretkey: ZmVycm9sYi1sYWItZ29zc2lwLWtleS0wMTIzNDU2Nzg5}\n";

/// How long a stopping process may take: a clean stop takes well under a second; this only
/// catches one that hangs (the lab's own stop would SIGKILL it after 5 s and hide that).
const EXIT: Duration = Duration::from_secs(10);

#[test]
fn bird_uninstall_leaves_every_node_clean() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default().router(Some(RouterKind::Bird)))?;
    let router = lab.router()?;
    lab.write_manifest("bgp.yaml", &config(plan::NODE_ASN, "", ""))?;
    lab.write_manifest("pool.yaml", forwarding::POOL)?;
    lab.write_manifest("l2.yaml", LAYER2)?;
    let pods = ["node1-pod1", "node2-pod1", "node3-pod1"];
    // Pools are tried by name: `bgp` first, unless the Service names `lan`.
    lab.write_manifest(
        "web.yaml",
        &forwarding::service("web", "LoadBalancer", None, "", ""),
    )?;
    let lan = "  annotations: {metallb.io/address-pool: lan}\n";
    lab.write_manifest(
        "l2web.yaml",
        &forwarding::service("l2web", "LoadBalancer", None, lan, ""),
    )?;
    forwarding::endpoints(&lab, "web", &pods)?;
    forwarding::endpoints(&lab, "l2web", &pods)?;
    lab.start_controller()?;
    for node in NODES {
        lab.start_speaker_with(node, &["--dataplane", "nftables"])?;
    }
    wait_sessions(&lab)?;
    let bgp_ips = lab.wait_service_ips("default", "web", LIMIT)?;
    let l2_ips = lab.wait_service_ips("default", "l2web", LIMIT)?;
    for ip in &bgp_ips {
        let hops: Vec<IpAddr> = (1..=3).map(|i| node_addr(i, ip.is_ipv6())).collect();
        router.wait_route(&host_route(*ip), &hops, LIMIT)?;
        answered(&lab, "ext1", *ip)?;
    }
    let l2_v4 = l2_ips
        .iter()
        .find_map(|ip| match ip {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
        .ok_or_else(|| anyhow::anyhow!("no IPv4 address in {l2_ips:?}"))?;
    for ip in &l2_ips {
        answered(&lab, "client1", *ip)?;
    }
    assert_eq!(lab.arping("client1", "eth0", l2_v4, 1)?.len(), 1);
    // Before: every node forwards (the same tables wherever the addresses are announced).
    for node in NODES {
        assert_eq!(
            leftovers::ferrolb_tables(&lab, node)?,
            ["table ip ferrolb", "table ip6 ferrolb"],
            "{node}"
        );
    }

    // The uninstall: every FerroLB pod gets SIGTERM at once.
    leftovers::uninstall(&lab, &NODES, EXIT)?;

    // After: nothing of FerroLB on any node, no route at the router, no answer anywhere.
    let all: Vec<IpAddr> = bgp_ips.iter().chain(&l2_ips).copied().collect();
    for node in NODES {
        leftovers::assert_clean(&lab, node, &all)?;
    }
    for ip in &bgp_ips {
        // At once (the Cease), not after the 9 s hold time.
        router.wait_route(&host_route(*ip), &[], Duration::from_secs(3))?;
        assert!(forwarding::refused(&lab, "ext1", *ip, ECHO), "{ip} answers");
    }
    assert_eq!(
        lab.arping("client1", "eth0", l2_v4, 2)?,
        Vec::<String>::new()
    );
    forwarding::all_refused(&lab, "client1", &l2_ips)?;
    lab.down()?;
    Ok(())
}

/// An echo answer from a pod through `ip`, once it comes.
fn answered(lab: &Lab, from: &str, ip: IpAddr) -> anyhow::Result<()> {
    wait_until(&format!("an answer from {ip} to {from}"), LIMIT, || {
        Ok(lab
            .probe_with_timeout(from, Proto::Tcp, ip, ECHO, Duration::from_secs(1))
            .map(|_| ())
            .map_err(|e| e.to_string()))
    })?;
    Ok(())
}
