//! Layer 2 mode in the lab: real speakers in the node namespaces answer ARP and NDP for the
//! LoadBalancer IPs they are elected for, a real LAN client resolves and reaches them through
//! the forwarding layer, and the IPs move when a node dies, pauses or loses its link, without
//! ever two nodes answering at once; a rolling restart of every speaker under traffic
//! (`lab_layer2/upgrade.rs`) loses no connection, held or new, and moves no address.
//!
//! Needs root (namespaces) and the Debian packages iproute2, nftables, arping, ndisc6 and
//! tcpdump (tests/install-deps.sh); fails loudly without them.

#[allow(dead_code)]
#[path = "lab_forwarding/fixture.rs"]
mod forwarding;

#[path = "lab_layer2/failover.rs"]
mod failover;
#[path = "lab_layer2/fixture.rs"]
mod fixture;
#[path = "lab_layer2/policy.rs"]
mod policy;
#[path = "lab_layer2/upgrade.rs"]
mod upgrade;

use ferrolb_e2e::lab::wait_for;
use fixture::*;

#[test]
fn the_elected_node_answers_arp_and_ndp_and_traffic_reaches_a_pod() -> anyhow::Result<()> {
    elected_node_answers("nftables")
}

/// The IPVS path puts every LoadBalancer IP on each node's dummy interface `ferrolb0`; still
/// only the elected node answers ARP and NDP for it (arp_ignore/arp_announce, and no
/// neighbour answers for addresses of another interface): MetalLB's strictARP trap closed.
/// VM lab only (the host kernel has no IPVS).
#[cfg(feature = "vm-lab")]
#[test]
fn ipvs_the_elected_node_answers_arp_and_ndp_though_every_node_holds_the_address()
-> anyhow::Result<()> {
    elected_node_answers("ipvs")
}

fn elected_node_answers(dataplane: &str) -> anyhow::Result<()> {
    let lab = up_on(dataplane, &[("web-a", 1), ("web-b", 2), ("web-c", 3)], &[])?;
    lab.write_manifest("web.yaml", &web_service(false))?;
    forwarding::endpoints(&lab, "web", &["web-a", "web-b", "web-c"])?;
    let (v4, v6) = ips(&lab, "web")?;
    if dataplane == "ipvs" {
        for node in NODES {
            wait_for(
                &format!("{v4} and {v6} on {node}'s ferrolb0"),
                ANNOUNCED,
                || {
                    let held = lab
                        .exec(node, &["ip", "-br", "addr", "show", "dev", "ferrolb0"])
                        .ok()?;
                    (held.contains(&format!("{v4}/32")) && held.contains(&format!("{v6}/128")))
                        .then_some(())
                },
            )?;
        }
    }
    let owner = owner_of(&lab, v4.into())?;
    // The client resolves each address to the elected node's MAC, and only to it.
    let mac = lab.mac(&owner, "eth0")?;
    assert_eq!(arp(&lab, v4)?, vec![mac.clone()], "ARP for {v4}");
    let owner6 = owner_of(&lab, v6.into())?;
    assert_eq!(
        ndp(&lab, v6)?,
        vec![lab.mac(&owner6, "eth0")?],
        "NDP for {v6}"
    );
    // Real traffic reaches a pod through the forwarding layer of the announcing node.
    for ip in [v4.into(), v6.into()] {
        let answer = forwarding::first_answer(&lab, CLIENT, ip, forwarding::ECHO)?;
        assert!(answer.pod.starts_with("web-"), "{answer:?}");
    }
    let neigh = lab.neighbors(CLIENT)?;
    assert!(
        neigh
            .iter()
            .any(|n| n.ip == std::net::IpAddr::from(v4) && n.lladdr.as_deref() == Some(&mac)),
        "{neigh:?}"
    );
    // The owner says so: its report, its Event and its metrics.
    let events = events(&lab, &owner)?;
    assert!(
        events.contains(&format!(
            "nodeAssigned default/web: announcing {v4} from node {owner}"
        )),
        "{events}"
    );
    for node in NODES {
        if node != owner && node != owner6 {
            assert!(
                !announces(&lab, node, v4.into())?,
                "{node} also announces {v4}"
            );
        }
    }
    // The metrics the alerts read (config/prometheus/alerts.yaml): every speaker's election
    // gives the address to some node; only the owner says it announces it.
    let localhost = std::net::IpAddr::from([127, 0, 0, 1]);
    for node in NODES {
        let (status, metrics) = lab.http_request(node, localhost, 7473, "/metrics")?;
        assert_eq!(status, 200, "{node}");
        let elected = format!("ferrolb_l2_elected{{ip=\"{v4}\"}} 1");
        assert!(
            metrics.contains(&elected),
            "{node}: no {elected} in\n{metrics}"
        );
        let announced = format!("ferrolb_l2_announced{{ip=\"{v4}\"}} 1");
        assert_eq!(
            metrics.contains(&announced),
            node == owner,
            "{node} (owner {owner}): {announced}"
        );
    }
    lab.down()?;
    Ok(())
}

#[test]
fn exactly_one_node_answers_for_each_address() -> anyhow::Result<()> {
    let lab = up(&[("web-a", 1), ("web-b", 2), ("web-c", 3)], &[])?;
    for i in 0..4 {
        lab.write_manifest(
            &format!("svc{i}.yaml"),
            &named_service(&format!("svc{i}"), false),
        )?;
        forwarding::endpoints(&lab, &format!("svc{i}"), &["web-a", "web-b", "web-c"])?;
    }
    let mut owners = std::collections::BTreeSet::new();
    for i in 0..4 {
        let (v4, v6) = ips(&lab, &format!("svc{i}"))?;
        owners.insert(owner_of(&lab, v4.into())?);
        // A capture of the client's LAN side: every request is answered once, by one MAC.
        let exchanges = arp_exchanges(&lab, v4, 10)?;
        assert!(
            exchanges.iter().all(|e| e.len() == 1),
            "{v4}: {exchanges:?}"
        );
        let macs: std::collections::BTreeSet<_> = exchanges.iter().flatten().collect();
        assert_eq!(macs.len(), 1, "{v4} answered by {macs:?}");
        assert_eq!(ndp(&lab, v6)?.len(), 1, "NDP for {v6}");
    }
    assert!(!owners.is_empty());
    lab.down()?;
    Ok(())
}
