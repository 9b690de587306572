//! Changes under continuous load (`ferrolb-lab-echo hold`: long-lived connections checked by
//! echoing through them, and new connections one after another): an endpoint leaves the
//! EndpointSlice; the speaker is killed, restarted and stopped. And a UDP flow across the
//! Service's appearance and an endpoint change.
//!
//! The tests check correctness, not timing: after a change, the speaker gets [`APPLY`] before
//! new connections are held to the new state.

use super::fixture::{
    self, ECHO, endpoints, ferrolb_tables, first_answer, nft_table, route, speakers,
};
use super::tally;
use ferrolb_e2e::lab::hold::unix_ms;
use ferrolb_e2e::lab::{HoldReport, HoldSpec, Lab, Proto, wait_for};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

/// A generous moment for the speaker to apply a change.
pub(crate) const APPLY: Duration = Duration::from_secs(2);

/// A lab with `pods`, a LoadBalancer Service `web` over all of them, the controller and
/// speakers on `nodes`, and the Service's addresses routed from the client to node1.
pub(crate) fn lab_with(
    pods: &[(&str, u8)],
    dataplane: &str,
    nodes: &[&str],
) -> anyhow::Result<(Lab, Vec<IpAddr>)> {
    let lab = fixture::lab(pods)?;
    lab.write_manifest(
        "web.yaml",
        &fixture::service("web", "LoadBalancer", None, "", ""),
    )?;
    let names: Vec<&str> = pods.iter().map(|(n, _)| *n).collect();
    endpoints(&lab, "web", &names)?;
    lab.start_controller()?;
    speakers(&lab, dataplane, nodes)?;
    let ips = lab.wait_service_ips("default", "web", Duration::from_secs(20))?;
    route(&lab, "client1", &ips, 1)?;
    for ip in &ips {
        first_answer(&lab, "client1", *ip, ECHO)?;
    }
    Ok((lab, ips))
}

/// One hold run per address (named `hold<k>@client1`).
pub(crate) fn start_holds(
    lab: &Lab,
    ips: &[IpAddr],
    spec: &HoldSpec,
) -> anyhow::Result<Vec<String>> {
    ips.iter()
        .enumerate()
        .map(|(k, ip)| Ok(lab.start_hold(&format!("hold{k}"), "client1", *ip, ECHO, spec)?))
        .collect()
}

pub(crate) fn reports(lab: &Lab, names: &[String]) -> anyhow::Result<Vec<HoldReport>> {
    names
        .iter()
        // A bound that catches a hung run, past the longest hold (the IPVS restart case).
        .map(|n| Ok(lab.hold_report(n, Duration::from_secs(90))?))
        .collect()
}

pub(crate) fn now() -> u64 {
    unix_ms(SystemTime::now())
}

/// web-c leaves the Service while connections are held to every pod and new ones keep
/// coming: no held connection to web-a or web-b breaks, no new connection fails, and once the
/// speaker had its moment none reaches web-c. (Held connections to web-c may go on: the pod
/// still runs, as a terminating pod would.)
pub(crate) fn endpoint_churn(dataplane: &str) -> anyhow::Result<()> {
    let pods = [("web-a", 1), ("web-b", 2), ("web-c", 3)];
    let (lab, ips) = lab_with(&pods, dataplane, &["node1"])?;
    let spec = HoldSpec {
        hold: 6,
        // Room for ten new connections after the change, in the VM lab's emulated guest too.
        duration: Duration::from_secs(6),
        ..HoldSpec::default()
    };
    let holds = start_holds(&lab, &ips, &spec)?;
    std::thread::sleep(Duration::from_millis(700));
    let changed = now();
    endpoints(&lab, "web", &["web-a", "web-b"])?;
    let settled = changed + APPLY.as_millis() as u64;
    for (ip, r) in ips.iter().zip(reports(&lab, &holds)?) {
        let what = format!("{dataplane} {ip}");
        assert_eq!(
            tally(r.held.iter().map(String::as_str)).len(),
            3,
            "{what}: {:?}",
            r.held
        );
        for (index, at, error) in &r.lost {
            assert_eq!(
                r.held[*index], "web-c",
                "{what}: held connection to {} broke at {at}: {error}",
                r.held[*index]
            );
        }
        assert!(
            r.checks
                .iter()
                .zip(&r.held)
                .all(|(n, pod)| pod == "web-c" || *n >= 10),
            "{what}: every surviving held connection was checked throughout: {:?}",
            r.checks
        );
        assert!(
            r.failed().is_empty(),
            "{what}: new connections failed: {:?}",
            r.failed()
        );
        let before = r.answered_between(0, changed);
        assert!(
            before.iter().any(|(_, p)| *p == "web-c"),
            "{what}: web-c served before: {before:?}"
        );
        let after = r.answered_between(settled, u64::MAX);
        assert!(
            after.len() >= 10,
            "{what}: too few new connections after the change: {after:?}"
        );
        let stray: Vec<_> = after.iter().filter(|(_, p)| *p == "web-c").collect();
        assert!(
            stray.is_empty(),
            "{what}: web-c reached after the change: {stray:?}"
        );
    }
    fixture::applied_as_changes(&lab, "node1")?;
    super::ipvs_matches_model(&lab, dataplane, &[1])?;
    if dataplane == "ipvs" {
        // Graceful removal: web-c is still listed, at weight 0, while its connections close
        // (closed TCP connections count as inactive until the kernel forgets them).
        let (_, draining) = super::ipvs_table::read(&lab, 1)?;
        for ip in &ips {
            let addr = fixture::host_addr(&lab, "web-c", *ip)?;
            let dest = match addr {
                IpAddr::V4(a) => format!("-> {a}:{ECHO} Masq 0"),
                IpAddr::V6(a) => format!("-> [{a}]:{ECHO} Masq 0"),
            };
            anyhow::ensure!(
                draining.values().flatten().any(|d| *d == dest),
                "{dest} not draining on node1: {draining:?}"
            );
        }
    }
    lab.down()?;
    Ok(())
}

#[test]
fn nftables_endpoint_removal_under_load() -> anyhow::Result<()> {
    endpoint_churn("nftables")
}

#[test]
fn userspace_endpoint_removal_under_load() -> anyhow::Result<()> {
    endpoint_churn("userspace")
}

/// The kernel path outlives its speaker: killed (SIGKILL), its table stays and traffic keeps
/// flowing; restarted, it replaces the table with one for the current state (web-b left while
/// it was dead), with no second table and no connection lost; stopped cleanly (SIGTERM), it
/// removes its tables.
#[test]
fn nftables_keeps_forwarding_through_a_speaker_restart() -> anyhow::Result<()> {
    let pods = [("web-a", 1), ("web-b", 2)];
    let (lab, ips) = lab_with(&pods, "nftables", &["node1"])?;
    let both = ["table ip ferrolb", "table ip6 ferrolb"];
    assert_eq!(ferrolb_tables(&lab, "node1")?, both);
    let spec = HoldSpec {
        hold: 4,
        duration: Duration::from_secs(5),
        ..HoldSpec::default()
    };
    let holds = start_holds(&lab, &ips, &spec)?;
    std::thread::sleep(Duration::from_millis(500));

    lab.kill_process("speaker@node1")?;
    let killed = now();
    assert_eq!(
        ferrolb_tables(&lab, "node1")?,
        both,
        "the table outlives the speaker"
    );
    // A change the dead speaker misses.
    endpoints(&lab, "web", &["web-a"])?;
    std::thread::sleep(Duration::from_millis(1000));

    lab.forget_process("speaker@node1")?;
    let restarted = now();
    speakers(&lab, "nftables", &["node1"])?;
    let web_b: Vec<String> = ips
        .iter()
        .map(|ip| Ok(fixture::host_addr(&lab, "web-b", *ip)?.to_string()))
        .collect::<anyhow::Result<_>>()?;
    ferrolb_e2e::lab::wait_until(
        "the restarted speaker's table without web-b",
        fixture::PROGRAMMED,
        || {
            let tables = [
                nft_table(&lab, "node1", "ip"),
                nft_table(&lab, "node1", "ip6"),
            ];
            let text = tables
                .into_iter()
                .map(|t| t.unwrap_or_default())
                .collect::<String>();
            Ok(if web_b.iter().any(|a| text.contains(a.as_str())) {
                Err(text)
            } else {
                Ok(())
            })
        },
    )?;
    assert_eq!(ferrolb_tables(&lab, "node1")?, both, "one table per family");

    let settled = restarted + APPLY.as_millis() as u64;
    for (ip, r) in ips.iter().zip(reports(&lab, &holds)?) {
        served_through_a_restart(&r, &ip.to_string(), (killed, restarted, settled));
    }

    lab.stop_process("speaker@node1")?;
    assert_eq!(
        ferrolb_tables(&lab, "node1")?,
        Vec::<String>::new(),
        "a clean stop removes the tables"
    );
    fixture::all_refused(&lab, "client1", &ips)?;
    lab.down()?;
    Ok(())
}

/// A hold run through a speaker's SIGKILL and restart while web-b left the Service (the
/// times, in ms: killed, restarted, settled): every held connection survives (established
/// flows live in conntrack and, for IPVS, in its connection table, whatever happens to the
/// program; web-b's too: the pod still runs), no new connection fails, the old program
/// served on while the speaker was dead (web-b included), and once settled only web-a.
pub(crate) fn served_through_a_restart(
    r: &HoldReport,
    what: &str,
    (killed, restarted, settled): (u64, u64, u64),
) {
    assert!(
        r.lost.is_empty(),
        "{what}: held connections broke: {:?}",
        r.lost
    );
    assert!(
        r.failed().is_empty(),
        "{what}: new connections failed: {:?}",
        r.failed()
    );
    let dead = r.answered_between(killed, restarted);
    assert!(
        dead.len() >= 10,
        "{what}: too few connections while the speaker was dead: {dead:?}"
    );
    assert!(
        dead.iter().any(|(_, p)| *p == "web-b"),
        "{what}: the old table served on: {dead:?}"
    );
    let after = r.answered_between(settled, u64::MAX);
    assert!(
        after.len() >= 10,
        "{what}: too few new connections after the restart: {after:?}"
    );
    assert!(
        after.iter().all(|(_, p)| *p == "web-a"),
        "{what}: stale table after the restart: {after:?}"
    );
}

const UDP_PORT: u16 = 30760;

/// UDP has no connection to end, so the kernel's conntrack entries decide where a client's
/// datagrams go until they time out (30 s, renewed by every datagram). One client flow (fixed
/// source port) talks to a UDP NodePort: it starts before the data path exists (its first
/// datagrams go nowhere, and the node, tracking connections as real nodes do, remembers that),
/// is forwarded once the Service is programmed, sticks to one pod, and moves to the other pod
/// when its pod leaves the Service.
pub(crate) fn udp_flow(dataplane: &str) -> anyhow::Result<()> {
    let lab = fixture::lab(&[("web-a", 1), ("web-b", 2)])?;
    let ports = [fixture::echo_port("UDP", Some(UDP_PORT))];
    let yaml = fixture::service_with_ports("dns", "NodePort", &ports, "", "");
    lab.write_manifest("dns.yaml", &yaml)?;
    let slice = |pods: &[&str]| {
        lab.endpoint_slices_for("default", "dns", pods, &[("echo-udp", ECHO, "UDP")])
    };
    lab.write_manifest("dns-slices.yaml", &slice(&["web-a", "web-b"]))?;
    let flows: Vec<(IpAddr, SocketAddr)> = [false, true]
        .into_iter()
        .map(|v6| {
            let like = fixture::any(v6);
            let client = fixture::host_addr(&lab, "client1", like)?;
            Ok((fixture::node_addr(1, like), SocketAddr::new(client, 40123)))
        })
        .collect::<anyhow::Result<_>>()?;
    let ask = |node: IpAddr, source: SocketAddr| {
        lab.probe_as("client1", source, Proto::Udp, node, UDP_PORT)
    };
    fixture::track_connections(&lab, "node1")?;
    for (node, source) in &flows {
        assert!(
            ask(*node, *source).is_err(),
            "{source} answered before any speaker ran"
        );
    }
    speakers(&lab, dataplane, &["node1"])?;
    let mut pinned = Vec::new();
    for (node, source) in &flows {
        let first = wait_for(
            &format!("{dataplane}: an answer to {source}"),
            fixture::PROGRAMMED,
            || ask(*node, *source).ok(),
        )?;
        for _ in 0..4 {
            assert_eq!(
                ask(*node, *source)?.pod,
                first.pod,
                "{dataplane} {source}: one flow, one pod"
            );
        }
        pinned.push(first.pod);
    }
    // Each flow's pod leaves in turn (the IPv4 one first): its datagrams move to the other.
    for (k, (node, source)) in flows.iter().enumerate() {
        let stay = if pinned[k] == "web-a" {
            "web-b"
        } else {
            "web-a"
        };
        lab.write_manifest("dns-slices.yaml", &slice(&[stay]))?;
        let moved = wait_for(
            &format!("{dataplane}: {source} moved to {stay}"),
            fixture::PROGRAMMED,
            || ask(*node, *source).ok().filter(|a| a.pod == stay),
        )?;
        for _ in 0..3 {
            assert_eq!(
                ask(*node, *source)?.pod,
                moved.pod,
                "{dataplane} {source}: stays moved"
            );
        }
        lab.write_manifest("dns-slices.yaml", &slice(&["web-a", "web-b"]))?;
    }
    lab.down()?;
    Ok(())
}

#[test]
fn nftables_udp_flows_follow_their_service() -> anyhow::Result<()> {
    udp_flow("nftables")
}

#[test]
fn userspace_udp_flows_follow_their_service() -> anyhow::Result<()> {
    udp_flow("userspace")
}
