//! Graceful restart (RFC 4724): a Local Service served by node1 alone is reached through
//! node1's route only. node1's speaker is killed (SIGKILL, as a crash or an OOM kill; it
//! leaves the kernel's forwarding programmed) and started again. With `enableGracefulRestart`
//! the router keeps the route as stale and the client's traffic never stops, through the new
//! session and its End-of-RIB; without it, the same router withdraws the route at once.
//!
//! A second Service deleted while the speaker is down shows the End-of-RIB doing its job: the
//! router keeps its stale route until the new speaker's End-of-RIB, then drops it at once
//! (not after the 120 s restart time), since it was not re-advertised.
//!
//! A SIGTERM is a clean stop: the speaker removes its forwarding and ceases its sessions, so
//! the routes must go; `every_node_advertises` covers that.

use super::{
    LIMIT, SPEAKER_FLAGS, config, host_route, metric, node_addr, service, start, wait_sessions,
};
use ferrolb_e2e::lab::{Lab, LabSpec, Proto, RouterKind, plan, wait_for, wait_until};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long the killed speaker stays down: longer than the router needs to notice the closed
/// connection, far shorter than the 120 s restart time we ask for.
const DOWN_FOR: Duration = Duration::from_secs(4);
/// After the new session is up: time for the re-advertisement and End-of-RIB to be handled.
const SETTLE: Duration = Duration::from_secs(3);

fn restart(kind: RouterKind, graceful: bool) -> anyhow::Result<()> {
    let mut lab = Lab::up(LabSpec {
        lan_clients: 0,
        ..LabSpec::default().router(Some(kind))
    })?;
    // The router helps a restarting neighbor in both runs: only the speaker's setting differs.
    lab.reconfigure_router(|c| c.graceful_restart = true)?;
    let peer = if graceful {
        ", enableGracefulRestart: true"
    } else {
        ""
    };
    start(&lab, &config(plan::NODE_ASN, "", peer))?;
    let router = lab.router()?;
    wait_sessions(&lab)?;
    let v4 = v4_of(&service(&lab, "local", true, &["node1-pod1"])?)?;
    let node1 = [node_addr(1, false)];
    router.wait_route(&host_route(v4), &node1, LIMIT)?;
    let gone = v4_of(&service(&lab, "gone", true, &["node1-pod1"])?)?;
    router.wait_route(&host_route(gone), &node1, LIMIT)?;
    let probe = || {
        lab.probe_with_timeout(
            "ext1",
            Proto::Tcp,
            v4,
            super::forwarding::ECHO,
            Duration::from_secs(1),
        )
    };
    wait_until(&format!("an answer from {v4}"), LIMIT, || {
        Ok(probe().map_err(|e| e.to_string()))
    })?;

    lab.kill_process("speaker@node1")?;
    if !graceful {
        router.wait_route(&host_route(v4), &[], Duration::from_secs(5))?;
        // And the traffic stops (GoBGP's routes reach the kernel up to 200 ms later).
        wait_until(
            &format!("{v4} to stop answering"),
            Duration::from_secs(5),
            || {
                Ok(match probe() {
                    Ok(a) => Err(format!("answered: {a:?}")),
                    Err(_) => Ok(()),
                })
            },
        )?;
    } else {
        // Route and traffic stay while the speaker is gone...
        lab.remove_manifest("gone.yaml")?;
        let until = Instant::now() + DOWN_FOR;
        while Instant::now() < until {
            check(&lab, v4, &node1, "while node1's speaker is down")?;
        }
        // ...the deleted Service's too: nobody is there to withdraw it.
        router.wait_route(&host_route(gone), &node1, Duration::ZERO)?;
    }
    lab.forget_process("speaker@node1")?;
    lab.start_speaker_with("node1", &SPEAKER_FLAGS)?;
    router.wait_established(&["node1_v4", "node1_v6"], LIMIT)?;
    if graceful {
        // With graceful restart negotiated the router sends its End-of-RIB (RFC 4724), an
        // UPDATE: the new speaker counts it, although it never installs anything.
        wait_for("the router's End-of-RIB counted on node1", LIMIT, || {
            let series = "ferrolb_bgp_updates_received_total{peer=\"router-v4\"}";
            (metric(&lab, "node1", series).ok()?? >= 1.0).then_some(())
        })?;
        // ...and through the new session, its re-advertisement and End-of-RIB.
        let until = Instant::now() + SETTLE;
        while Instant::now() < until {
            check(&lab, v4, &node1, "after node1's speaker is back")?;
        }
        // The End-of-RIB came after the re-advertisement without the deleted Service.
        router.wait_route(&host_route(gone), &[], Duration::from_secs(5))?;
    }
    router.wait_route(&host_route(v4), &node1, LIMIT)?;
    wait_until(&format!("an answer from {v4}"), LIMIT, || {
        Ok(probe().map_err(|e| e.to_string()))
    })?;
    lab.down()?;
    Ok(())
}

fn v4_of(ips: &[IpAddr]) -> anyhow::Result<IpAddr> {
    ips.iter()
        .copied()
        .find(IpAddr::is_ipv4)
        .ok_or_else(|| anyhow::anyhow!("no IPv4 address in {ips:?}"))
}

/// The router still routes `v4` via `hops` and the client gets an answer.
fn check(lab: &Lab, v4: IpAddr, hops: &[IpAddr], when: &str) -> anyhow::Result<()> {
    let paths = lab.router()?.routes_for(&host_route(v4))?;
    let via: Vec<IpAddr> = paths.iter().filter_map(|p| p.next_hop).collect();
    anyhow::ensure!(
        via == hops,
        "{when}: {v4} via {via:?}, not {hops:?}: {paths:?}"
    );
    let answer = lab
        .probe_with_timeout(
            "ext1",
            Proto::Tcp,
            v4,
            super::forwarding::ECHO,
            Duration::from_secs(1),
        )
        .map_err(|e| anyhow::anyhow!("{when}: no answer from {v4}: {e}"))?;
    anyhow::ensure!(answer.pod == "node1-pod1", "{when}: {answer:?}");
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}

fn graceful_restart_keeps_traffic(kind: RouterKind) -> anyhow::Result<()> {
    restart(kind, true)
}

fn without_graceful_restart_the_route_goes(kind: RouterKind) -> anyhow::Result<()> {
    restart(kind, false)
}

per_router!(graceful_restart_keeps_traffic:
    bird_graceful_restart_keeps_traffic_through_a_speaker_restart,
    frr_graceful_restart_keeps_traffic_through_a_speaker_restart,
    gobgp_graceful_restart_keeps_traffic_through_a_speaker_restart);
per_router!(without_graceful_restart_the_route_goes:
    bird_without_graceful_restart_a_killed_speaker_is_withdrawn,
    frr_without_graceful_restart_a_killed_speaker_is_withdrawn,
    gobgp_without_graceful_restart_a_killed_speaker_is_withdrawn);
