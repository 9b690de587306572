//! `externalTrafficPolicy: Local`: only a node with a local endpoint announces, and the
//! address follows the endpoint; configuration changes move addresses while traffic flows.

use super::fixture::*;
use super::forwarding;

#[test]
fn local_policy_announces_from_the_endpoints_node_and_follows_it() -> anyhow::Result<()> {
    let lab = up(&[("web-a", 2), ("web-b", 3)], &[])?;
    lab.write_manifest("web.yaml", &web_service(true))?;
    forwarding::endpoints(&lab, "web", &["web-a"])?;
    let (v4, v6) = ips(&lab, "web")?;
    assert_eq!(owner_of(&lab, v4.into())?, "node2");
    assert_eq!(arp(&lab, v4)?, vec![lab.mac("node2", "eth0")?]);
    assert_eq!(ndp(&lab, v6)?, vec![lab.mac("node2", "eth0")?]);
    // The client's own address reaches the pod (Local keeps it).
    let answer = forwarding::first_answer(&lab, CLIENT, v4.into(), forwarding::ECHO)?;
    assert_eq!(answer.pod, "web-a");
    assert_eq!(
        answer.client.ip(),
        forwarding::host_addr(&lab, CLIENT, v4.into())?
    );
    // The endpoint moves to node3: so does the address.
    forwarding::endpoints(&lab, "web", &["web-b"])?;
    assert_eq!(owner_except(&lab, v4.into(), Some("node2"))?, "node3");
    let node3 = lab.mac("node3", "eth0")?;
    ferrolb_e2e::lab::wait_for("node3 to answer ARP", ANNOUNCED, || {
        (lab.arping(CLIENT, "eth0", v4, 1).ok()? == vec![node3.clone()]).then_some(())
    })?;
    let answer = forwarding::first_answer(&lab, CLIENT, v4.into(), forwarding::ECHO)?;
    assert_eq!(answer.pod, "web-b");
    lab.down()?;
    Ok(())
}

#[test]
fn an_advertisement_limited_to_one_node_moves_the_address_there() -> anyhow::Result<()> {
    let lab = up(&[("web-a", 1), ("web-b", 2), ("web-c", 3)], &[])?;
    lab.write_manifest("web.yaml", &web_service(false))?;
    forwarding::endpoints(&lab, "web", &["web-a", "web-b", "web-c"])?;
    let (v4, _) = ips(&lab, "web")?;
    let owner = owner_of(&lab, v4.into())?;
    let target = NODES
        .iter()
        .find(|n| **n != owner)
        .copied()
        .unwrap_or("node1");
    lab.write_manifest(
        "l2.yaml",
        &format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: lan}}\n\
             spec: {{nodeSelectors: [{{matchLabels: {{kubernetes.io/hostname: {target}}}}}]}}\n"
        ),
    )?;
    assert_eq!(owner_except(&lab, v4.into(), Some(&owner))?, target);
    let mac = lab.mac(target, "eth0")?;
    ferrolb_e2e::lab::wait_for("the new owner to answer ARP", ANNOUNCED, || {
        (lab.arping(CLIENT, "eth0", v4, 1).ok()? == vec![mac.clone()]).then_some(())
    })?;
    forwarding::first_answer(&lab, CLIENT, v4.into(), forwarding::ECHO)?;
    // The Service goes away: nobody announces its address any more.
    lab.remove_manifest("web.yaml")?;
    ferrolb_e2e::lab::wait_for("nobody to answer ARP", ANNOUNCED, || {
        lab.arping(CLIENT, "eth0", v4, 1)
            .ok()?
            .is_empty()
            .then_some(())
    })?;
    lab.down()?;
    Ok(())
}
