//! Every forwarding case with `--dataplane ipvs`, in the VM lab's stock kernel (the host's has
//! no IPVS): built only with the `vm-lab` feature, run by `tests/run.sh` through `tests/vm.sh`.
//! The shared cases compare each node's `ipvsadm -Ln` with the model at their steps
//! ([`super::ipvs_matches_model`]); the ones below are the IPVS path's own: lc in the kernel,
//! and a speaker killed (the kernel forwards on), restarted (it adopts its table) and stopped
//! (everything it added goes).

use super::churn::{APPLY, lab_with, now, reports, start_holds};
use super::fixture::{self, any, endpoints, first_answer, node_addr, scheduler, speakers};
use super::{churn, frontends, leftovers, policy, schedulers};
use ferrolb_e2e::lab::{HoldSpec, Lab};
use std::time::Duration;

#[test]
fn ipvs_forwards_a_loadbalancer_ip_to_pods_on_every_node() -> anyhow::Result<()> {
    super::check_data_path("ipvs")
}

#[test]
fn ipvs_is_what_auto_picks_on_a_kernel_with_ipvs() -> anyhow::Result<()> {
    super::auto_resolves("ipvs")
}

#[test]
fn ipvs_forwards_a_cluster_ip_from_a_pod() -> anyhow::Result<()> {
    frontends::cluster_ip_from_a_pod("ipvs")
}

#[test]
fn ipvs_lets_a_pod_reach_itself_through_its_service() -> anyhow::Result<()> {
    frontends::hairpin("ipvs")
}

#[test]
fn ipvs_forwards_a_node_port_on_every_node() -> anyhow::Result<()> {
    frontends::node_port_on_every_node("ipvs")
}

#[test]
fn ipvs_rr_and_wrr_rotate_over_the_pods() -> anyhow::Result<()> {
    schedulers::rotation("ipvs")
}

#[test]
fn ipvs_sh_and_mh_keep_a_client_on_one_pod_through_every_node() -> anyhow::Result<()> {
    schedulers::hashing("ipvs")
}

#[test]
fn ipvs_session_affinity_is_persistence_with_the_services_timeout() -> anyhow::Result<()> {
    schedulers::affinity("ipvs")
}

#[test]
fn ipvs_local_policy_keeps_the_client_and_drops_without_a_local_endpoint() -> anyhow::Result<()> {
    policy::local_policy("ipvs")
}

#[test]
fn ipvs_endpoint_removal_under_load_drains_at_weight_zero() -> anyhow::Result<()> {
    churn::endpoint_churn("ipvs")
}

#[test]
fn ipvs_udp_flows_follow_their_service() -> anyhow::Result<()> {
    churn::udp_flow("ipvs")
}

/// lc in the kernel (refused by the nftables path): with one connection held to a pod, new
/// connections go to the other (fewest active connections). A few may race the count of a
/// connection that just closed.
#[test]
fn ipvs_lc_sends_new_connections_to_the_least_loaded_pod() -> anyhow::Result<()> {
    let port = 30740;
    let lab = fixture::lab(&[("web-a", 1), ("web-b", 2)])?;
    let yaml = fixture::service("least", "NodePort", Some(port), &scheduler("lc"), "");
    lab.write_manifest("least.yaml", &yaml)?;
    endpoints(&lab, "least", &["web-a", "web-b"])?;
    speakers(&lab, "ipvs", &["node1"])?;
    super::ipvs_matches_model(&lab, "ipvs", &[1])?;
    for v6 in [false, true] {
        let node = node_addr(1, any(v6));
        first_answer(&lab, "client1", node, port)?;
        schedulers::least_connections_steer_new_ones(
            &lab,
            &format!("hold{}", u8::from(v6)),
            node,
            port,
        )?;
    }
    lab.down()?;
    Ok(())
}

/// What the IPVS path leaves on `node`: FerroLB's virtual servers (as `ipvsadm -Ln` lines),
/// whether `ferrolb0` exists, whether the `inet ferrolb-ipvs` table exists.
fn footprint(lab: &Lab, node: u8) -> anyhow::Result<(usize, bool, bool)> {
    let host = format!("node{node}");
    let (live, _) = super::ipvs_table::read(lab, node)?;
    let link = lab
        .exec_output(&host, &["ip", "link", "show", "dev", "ferrolb0"])?
        .status
        .success();
    let table = lab
        .exec_output(&host, &["nft", "list", "table", "inet", "ferrolb-ipvs"])?
        .status
        .success();
    Ok((live.len(), link, table))
}

/// The IPVS path outlives its speaker: killed (SIGKILL), the kernel's table, the addresses
/// and the rules stay and traffic keeps flowing; restarted, the speaker adopts the table and
/// brings it to the current state (web-b left while it was dead: drained, no connection
/// lost); stopped cleanly (SIGTERM), it removes everything it added.
#[test]
fn ipvs_keeps_forwarding_through_a_speaker_kill_and_cleans_up_on_sigterm() -> anyhow::Result<()> {
    let pods = [("web-a", 1), ("web-b", 2)];
    let (lab, ips) = lab_with(&pods, "ipvs", &["node1"])?;
    super::ipvs_matches_model(&lab, "ipvs", &[1])?;
    let programmed = footprint(&lab, 1)?;
    assert!(
        programmed.0 > 0 && programmed.1 && programmed.2,
        "{programmed:?}"
    );
    let spec = HoldSpec {
        hold: 4,
        // Long enough to outlast a kill and a restart in the emulated guest while other labs
        // run beside it (17 s seen), plus ten new connections after.
        duration: Duration::from_secs(45),
        ..HoldSpec::default()
    };
    let holds = start_holds(&lab, &ips, &spec)?;
    std::thread::sleep(Duration::from_millis(500));

    lab.kill_process("speaker@node1")?;
    let killed = now();
    assert_eq!(
        footprint(&lab, 1)?,
        programmed,
        "all of it outlives the speaker"
    );
    endpoints(&lab, "web", &["web-a"])?;
    std::thread::sleep(Duration::from_millis(1000));

    lab.forget_process("speaker@node1")?;
    let restarted = now();
    speakers(&lab, "ipvs", &["node1"])?;
    // Settled once the kernel's table is the model's (web-b at weight 0: draining), which a
    // speaker starting in the emulated guest takes a few seconds to reach.
    super::ipvs_matches_model(&lab, "ipvs", &[1])?;
    let settled = now().max(restarted + APPLY.as_millis() as u64);
    for (ip, r) in ips.iter().zip(reports(&lab, &holds)?) {
        churn::served_through_a_restart(&r, &ip.to_string(), (killed, restarted, settled));
    }

    // Another tool's virtual server must survive FerroLB's clean stop.
    lab.exec(
        "node1",
        &["ipvsadm", "-A", "-t", "192.0.2.1:80", "-s", "rr"],
    )?;
    lab.stop_process("speaker@node1")?;
    let (live, _) = super::ipvs_table::read(&lab, 1)?;
    assert_eq!(
        live.keys().cloned().collect::<Vec<_>>(),
        ["TCP 192.0.2.1:80 rr"],
        "a clean stop removes FerroLB's virtual servers, and only them"
    );
    let (_, link, table) = footprint(&lab, 1)?;
    assert!(
        !link && !table,
        "ferrolb0 {link}, table inet ferrolb-ipvs {table}"
    );
    fixture::all_refused(&lab, "client1", &ips)?;
    lab.down()?;
    Ok(())
}

/// Uninstall on the IPVS path (see `leftovers.rs`): with a Service programmed on every node,
/// the controller and every speaker get SIGTERM at once; no node keeps a virtual server,
/// `ferrolb0`, a FerroLB nftables table or a service address, and the addresses stop
/// answering.
#[test]
fn ipvs_uninstall_leaves_every_node_clean() -> anyhow::Result<()> {
    let nodes = ["node1", "node2", "node3"];
    let pods = [("web-a", 1), ("web-b", 2)];
    let (lab, ips) = lab_with(&pods, "ipvs", &nodes)?;
    super::ipvs_matches_model(&lab, "ipvs", &[1, 2, 3])?;
    for i in 1..=3 {
        let (servers, link, table) = footprint(&lab, i)?;
        assert!(
            servers > 0 && link && table,
            "node{i}: {servers} {link} {table}"
        );
    }
    // Generous: the emulated guest stops slowly, and a hang is what this catches.
    leftovers::uninstall(&lab, &nodes, Duration::from_secs(30))?;
    for i in 1..=3 {
        let (live, _) = super::ipvs_table::read(&lab, i)?;
        assert!(live.is_empty(), "node{i}: virtual servers left: {live:?}");
        leftovers::assert_clean(&lab, &format!("node{i}"), &ips)?;
    }
    fixture::all_refused(&lab, "client1", &ips)?;
    lab.down()?;
    Ok(())
}
