//! Failover: the announcing speaker is killed (SIGKILL), paused (SIGSTOP) or cut off (its
//! link goes down); another node takes the address over, the client's traffic flows again,
//! and when the old node returns there is never a moment with two nodes answering.

use super::fixture::*;
use super::forwarding;
use ferrolb_e2e::lab::{Lab, wait_for};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

#[derive(Clone, Copy, Debug)]
enum Failure {
    Kill,
    Pause,
    CutLink,
}

/// The MAC answering ARP for `ip`, once it is not `old` (and exactly one answers).
fn new_answer(lab: &Lab, ip: Ipv4Addr, old: &str) -> anyhow::Result<String> {
    Ok(wait_for(
        &format!("another node answering for {ip}"),
        ANNOUNCED,
        || match lab.arping(CLIENT, "eth0", ip, 1).ok()?.as_slice() {
            [one] if one != old => Some(one.clone()),
            _ => None,
        },
    )?)
}

fn failover(failure: Failure) -> anyhow::Result<()> {
    let lab = up(&[("web-a", 1), ("web-b", 2), ("web-c", 3)], &[])?;
    lab.write_manifest("web.yaml", &web_service(false))?;
    forwarding::endpoints(&lab, "web", &["web-a", "web-b", "web-c"])?;
    let (v4, _) = ips(&lab, "web")?;
    let owner = owner_of(&lab, v4.into())?;
    let old_mac = lab.mac(&owner, "eth0")?;
    assert_eq!(arp(&lab, v4)?, vec![old_mac.clone()]);
    forwarding::first_answer(&lab, CLIENT, v4.into(), forwarding::ECHO)?;

    let speaker = format!("speaker@{owner}");
    // Every request from before the failure until after the old node is back (and past its
    // 3 s hold-down) gets exactly one answer: none from a frozen speaker's backlog, none from
    // a returning one before the others let go.
    let (new_mac, exchanges) = arp_exchanges_while(&lab, v4, 200, || {
        match failure {
            Failure::Kill => lab.kill_process(&speaker)?,
            Failure::Pause => lab.pause_process(&speaker)?,
            Failure::CutLink => lab.set_link(&owner, "eth0", false)?,
        }
        let new_mac = new_answer(&lab, v4, &old_mac)?;
        // The client follows (the gratuitous ARP updated its cache) and reaches a pod.
        let answer = forwarding::first_answer(&lab, CLIENT, v4.into(), forwarding::ECHO)?;
        anyhow::ensure!(answer.pod.starts_with("web-"), "{answer:?}");
        match failure {
            Failure::Kill => {
                lab.forget_process(&speaker)?;
                lab.start_speaker_with(
                    &owner,
                    &["--dataplane", "nftables", "--l2-hold-down", "3s"],
                )?;
            }
            Failure::Pause => lab.resume_process(&speaker)?,
            Failure::CutLink => lab.set_link(&owner, "eth0", true)?,
        }
        Ok(new_mac)
    })?;
    let others: BTreeSet<String> = NODES
        .iter()
        .filter(|n| **n != owner)
        .map(|n| lab.mac(n, "eth0"))
        .collect::<Result<_, _>>()?;
    assert!(others.contains(&new_mac), "{new_mac} is not another node's");
    let doubled: Vec<_> = exchanges.iter().filter(|e| e.len() > 1).collect();
    assert!(
        doubled.is_empty(),
        "{failure:?}: two nodes answered at once: {doubled:?}"
    );
    let order: Vec<&String> = exchanges.iter().flatten().collect();
    // Old owner, the new one, and the old one again once its hold-down is over.
    let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches <= 2, "{failure:?}: the address flapped: {order:?}");
    // Settled: one node answers, and traffic flows.
    assert_eq!(arp(&lab, v4)?.len(), 1);
    forwarding::first_answer(&lab, CLIENT, v4.into(), forwarding::ECHO)?;
    lab.down()?;
    Ok(())
}

#[test]
fn a_killed_speaker_is_replaced_and_returns_without_overlap() -> anyhow::Result<()> {
    failover(Failure::Kill)
}

#[test]
fn a_paused_speaker_is_replaced_and_returns_without_overlap() -> anyhow::Result<()> {
    failover(Failure::Pause)
}

#[test]
fn a_node_that_loses_its_link_is_replaced_and_returns_without_overlap() -> anyhow::Result<()> {
    failover(Failure::CutLink)
}

/// A speaker with the wrong gossip key hears the others but cannot authenticate them: it
/// fences itself instead of answering for every address beside them.
#[test]
fn a_speaker_with_the_wrong_gossip_key_announces_nothing() -> anyhow::Result<()> {
    let lab = up(&[("web-a", 1), ("web-b", 2), ("web-c", 3)], &[])?;
    let wrong = lab.dir().join("wrong-gossip-key");
    std::fs::write(&wrong, "not-the-cluster-key-0123456789")?;
    lab.stop_process("speaker@node3")?;
    lab.forget_process("speaker@node3")?;
    let key = wrong.to_string_lossy().into_owned();
    lab.start_speaker_with(
        "node3",
        &["--dataplane", "nftables", "--gossip-secret-file", &key],
    )?;
    for i in 0..4 {
        let name = format!("svc{i}");
        lab.write_manifest(&format!("{name}.yaml"), &named_service(&name, false))?;
        forwarding::endpoints(&lab, &name, &["web-a", "web-b", "web-c"])?;
    }
    let node3 = lab.mac("node3", "eth0")?;
    for i in 0..4 {
        let (v4, v6) = ips(&lab, &format!("svc{i}"))?;
        let owner = owner_of(&lab, v4.into())?;
        assert_ne!(owner, "node3");
        let exchanges = arp_exchanges(&lab, v4, 5)?;
        assert!(
            exchanges.iter().all(|e| e.len() == 1),
            "{v4}: {exchanges:?}"
        );
        assert!(
            !exchanges.iter().flatten().any(|m| *m == node3),
            "{exchanges:?}"
        );
        assert_ne!(ndp(&lab, v6)?, vec![node3.clone()]);
    }
    let log = lab.log("speaker@node3")?;
    assert!(log.contains("cut off from every other speaker"), "{log}");
    lab.down()?;
    Ok(())
}
