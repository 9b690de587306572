//! The schedulers with real traffic (`ferrolb.io/scheduler`), each Service on a NodePort.
//!
//! What is checked, honestly: EndpointSlices carry no weight, so every real server has weight
//! 1 and wrr reduces to rr; weighted shares are covered by the unit tests in `ferrolb-shared`
//! (scheduler, nft), not here. rr and wrr must then be an exact rotation: we check the order
//! (every three consecutive connections reach three different pods), the counts (equal), and
//! a chi-square statistic against the uniform split below the p = 0.001 critical value for
//! two degrees of freedom (13.82), which a fair random scheduler would pass too. sh and mh are
//! checked against the model: each client address must land on the pod `ferrolb-shared`
//! predicts (see [`super::predict`]), every time, through node1 and node2 alike; on the IPVS
//! path, whose kernel hashes its own way, on one pod every time through both nodes.

use super::fixture::{
    self, ECHO, answers, any, endpoints, first_answer, host_addr, node_addr, scheduler, speakers,
};
use super::{family, predict, tally};
use ferrolb_e2e::lab::{HoldSpec, Lab, Proto};
use ferrolb_shared::ipvs::scheduler::SchedulerKind;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const PODS: [(&str, u8); 3] = [("web-a", 1), ("web-b", 2), ("web-c", 3)];
const NAMES: [&str; 3] = ["web-a", "web-b", "web-c"];
/// Chi-square critical value, two degrees of freedom, p = 0.001.
const CHI2_CRITICAL: f64 = 13.82;

/// A lab with three pods (one per node) and, for each `(scheduler, nodePort)`, a NodePort
/// Service of that name using it, with every pod as an endpoint.
fn lab_with(services: &[(&str, u16)], spec: &str) -> anyhow::Result<Lab> {
    let lab = fixture::lab(&PODS)?;
    for (name, port) in services {
        let yaml = fixture::service(name, "NodePort", Some(*port), &scheduler(name), spec);
        lab.write_manifest(&format!("{name}.yaml"), &yaml)?;
        endpoints(&lab, name, &NAMES)?;
    }
    Ok(lab)
}

/// rr and wrr rotate; halfway through, another Service appears, and the rotation goes on
/// where it was (a data path must not restart the schedulers of unchanged virtual servers).
pub(crate) fn rotation(dataplane: &str) -> anyhow::Result<()> {
    let services = [("rr", 30701), ("wrr", 30702)];
    let lab = lab_with(&services, "")?;
    speakers(&lab, dataplane, &["node1"])?;
    let mut seqs: BTreeMap<(&str, bool), Vec<String>> = BTreeMap::new();
    for (name, port) in services {
        for v6 in [false, true] {
            // Not a multiple of three: a restarted rotation would repeat a pod.
            let got = answers(&lab, "client1", node_addr(1, any(v6)), port, 16)?;
            seqs.insert((name, v6), got.into_iter().map(|a| a.pod).collect());
        }
    }
    let other = 30709;
    let yaml = fixture::service("other", "NodePort", Some(other), "", "");
    lab.write_manifest("other.yaml", &yaml)?;
    endpoints(&lab, "other", &NAMES)?;
    // The nftables paths program nftables last (the userspace one after updating every
    // listener); the IPVS path's table is compared with the model.
    if dataplane == "ipvs" {
        super::ipvs_matches_model(&lab, dataplane, &[1])?;
    } else {
        ferrolb_e2e::lab::wait_for(
            "the other Service in node1's table",
            fixture::PROGRAMMED,
            || {
                let table = fixture::nft_table(&lab, "node1", "ip").ok()?;
                table.contains(&format!(". tcp . {other} :")).then_some(())
            },
        )?;
    }
    for (name, port) in services {
        for v6 in [false, true] {
            let seq = seqs.get_mut(&(name, v6)).expect("first half");
            for _ in 0..14 {
                seq.push(
                    lab.probe("client1", Proto::Tcp, node_addr(1, any(v6)), port)?
                        .pod,
                );
            }
        }
    }
    for ((name, v6), seq) in &seqs {
        let what = format!("{dataplane} {name} {}: {seq:?}", family(any(*v6)));
        for w in seq.windows(3) {
            let distinct: BTreeSet<&String> = w.iter().collect();
            assert_eq!(distinct.len(), 3, "not a rotation: {what}");
        }
        let counts = tally(seq.iter().map(String::as_str));
        assert_eq!(counts.len(), 3, "{what}");
        let expected = seq.len() as f64 / 3.0;
        let chi2: f64 = counts
            .values()
            .map(|&o| (o as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < CHI2_CRITICAL, "chi2 {chi2}: {what}");
        assert!(counts.values().all(|&c| c == 10), "{counts:?}: {what}");
    }
    lab.down()?;
    Ok(())
}

#[test]
fn nftables_rr_and_wrr_rotate_over_the_pods() -> anyhow::Result<()> {
    rotation("nftables")
}

#[test]
fn userspace_rr_and_wrr_rotate_over_the_pods() -> anyhow::Result<()> {
    rotation("userspace")
}

/// The shared round-robin layout (`--nft-round-robin shared`): rr and wrr over three pods jump
/// to shared chains (none of their own), whose counter any virtual server of the same chain
/// advances. Each still rotates in strict turn while it alone is busy, and splits evenly:
/// blocks of 15 connections, alternating between the Services and families, 5 per pod each.
#[test]
fn nftables_shared_round_robin_spreads_evenly() -> anyhow::Result<()> {
    let services = [("rr", 30701), ("wrr", 30702)];
    let lab = lab_with(&services, "")?;
    let flags = ["--dataplane", "nftables", "--nft-round-robin", "shared"];
    lab.start_speaker_with("node1", &flags)?;
    let mut blocks = Vec::new();
    for _round in 0..2 {
        for (name, port) in services {
            for v6 in [false, true] {
                let got = answers(&lab, "client1", node_addr(1, any(v6)), port, 15)?;
                let pods: Vec<String> = got.into_iter().map(|a| a.pod).collect();
                blocks.push((format!("{name} {}", family(any(v6))), pods));
            }
        }
    }
    for (what, pods) in &blocks {
        for w in pods.windows(3) {
            let distinct: BTreeSet<&String> = w.iter().collect();
            assert_eq!(distinct.len(), 3, "not a rotation: {what}: {pods:?}");
        }
        let counts = tally(pods.iter().map(String::as_str));
        assert!(counts.values().all(|&c| c == 5), "{what}: {counts:?}");
    }
    for family in ["ip", "ip6"] {
        let table = fixture::nft_table(&lab, "node1", family)?;
        assert!(table.contains("chain rr-tcp-3-masq-"), "{table}");
        assert!(!table.contains("chain vs-tcp-"), "{table}");
    }
    lab.down()?;
    Ok(())
}

/// Extra client addresses on client1 (`k` in 0..n): 10.100.0.15k and fd00:100::15k. Only
/// probes that ask for them use them: IPv4 keeps the primary address as the default source,
/// and the IPv6 ones are deprecated (`preferred_lft 0`), which source selection skips.
fn add_sources(lab: &Lab, n: u8) -> anyhow::Result<Vec<IpAddr>> {
    let mut v = Vec::new();
    for k in 0..n {
        let v4: IpAddr = format!("10.100.0.{}", 150 + k).parse()?;
        let v6: IpAddr = format!("fd00:100::{}", 150 + k).parse()?;
        let (a4, a6) = (format!("{v4}/24"), format!("{v6}/64"));
        lab.exec("client1", &["ip", "addr", "add", &a4, "dev", "eth0"])?;
        let argv = [
            "ip",
            "addr",
            "add",
            &a6,
            "dev",
            "eth0",
            "nodad",
            "preferred_lft",
            "0",
        ];
        lab.exec("client1", &argv)?;
        v.extend([v4, v6]);
    }
    Ok(v)
}

/// The model's pick for `src` among the pods, as a pod name (the same on both data paths).
fn predicted(lab: &Lab, kind: SchedulerKind, src: IpAddr) -> anyhow::Result<String> {
    let mut by_id = BTreeMap::new();
    let mut addrs = Vec::new();
    for pod in NAMES {
        let a = host_addr(lab, pod, src)?;
        addrs.push(a);
        by_id.insert(predict::ids(&[a], ECHO).remove(0), pod);
    }
    let ids = predict::ids(&addrs, ECHO);
    let id = predict::pick(kind, &ids, src, node_addr(1, src));
    Ok(by_id[&id].to_string())
}

pub(crate) fn hashing(dataplane: &str) -> anyhow::Result<()> {
    let services = [(SchedulerKind::Sh, 30711), (SchedulerKind::Mh, 30712)];
    let named: Vec<(&str, u16)> = services.iter().map(|(k, p)| (k.name(), *p)).collect();
    let lab = lab_with(&named, "")?;
    if dataplane == "ipvs" {
        // The kernel's own sh/mh options reach it: compared with the model below.
        let meta = "  annotations: {ferrolb.io/scheduler: mh, ferrolb.io/scheduler-flags: 'fallback,port'}\n";
        let yaml = fixture::service("flagged", "NodePort", Some(30713), meta, "");
        lab.write_manifest("flagged.yaml", &yaml)?;
        endpoints(&lab, "flagged", &NAMES)?;
    }
    speakers(&lab, dataplane, &["node1", "node2"])?;
    let sources = add_sources(&lab, 8)?;
    for (kind, port) in services {
        for node in [1, 2] {
            for v6 in [false, true] {
                first_answer(&lab, "client1", node_addr(node, any(v6)), port)?;
            }
        }
        super::ipvs_matches_model(&lab, dataplane, &[1, 2])?;
        let mut landed = BTreeSet::new();
        for src in &sources {
            // The kernel's IPVS hashes with its own function, not the model's: there, what
            // is checked is that a client lands on one pod, the same through every node.
            let want = if dataplane == "ipvs" {
                let to = node_addr(1, *src);
                lab.probe_as("client1", SocketAddr::new(*src, 0), Proto::Tcp, to, port)?
                    .pod
            } else {
                predicted(&lab, kind, *src)?
            };
            for node in [1, 2, 1, 2] {
                let to = node_addr(node, *src);
                let a = lab.probe_as("client1", SocketAddr::new(*src, 0), Proto::Tcp, to, port)?;
                assert_eq!(
                    a.pod, want,
                    "{dataplane} {kind}: client {src} through node{node} reached {a}, the model says {want}"
                );
            }
            landed.insert(want);
        }
        // Otherwise "always the same pod" would prove nothing about hashing.
        assert!(
            landed.len() >= 2,
            "{dataplane} {kind}: every source on {landed:?}"
        );
    }
    lab.down()?;
    Ok(())
}

#[test]
fn nftables_sh_and_mh_pick_what_the_model_picks_on_every_node() -> anyhow::Result<()> {
    hashing("nftables")
}

#[test]
fn userspace_sh_and_mh_pick_what_the_model_picks_on_every_node() -> anyhow::Result<()> {
    hashing("userspace")
}

const STICKY: u16 = 30720;
/// `sessionAffinityConfig.clientIP.timeoutSeconds`: short, so the test can outwait it.
const AFFINITY_SECS: u64 = 2;

/// `sessionAffinity: ClientIP` over rr. Three clients arrive in turn and take the three pods;
/// the second (client1's own address) stays on its pod however many connections it opens,
/// also while the third client's pod leaves the Service (the other clients' affinity must
/// survive an endpoint change); once client1 has been quiet for longer than the timeout, rr
/// moves it on.
pub(crate) fn affinity(dataplane: &str) -> anyhow::Result<()> {
    let spec = format!(
        "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {{clientIP: {{timeoutSeconds: {AFFINITY_SECS}}}}}\n"
    );
    let lab = lab_with(&[("rr", STICKY)], &spec)?;
    speakers(&lab, dataplane, &["node1"])?;
    let sources = add_sources(&lab, 2)?;
    let mut pinned = Vec::new();
    for v6 in [false, true] {
        let node = node_addr(1, any(v6));
        let what = format!("{dataplane} {}", family(node));
        let mut mine = sources.iter().filter(|s| s.is_ipv6() == v6).copied();
        let (first, third) = (mine.next().expect("source"), mine.next().expect("source"));
        let a =
            ferrolb_e2e::lab::wait_for(&format!("{what}: an answer"), fixture::PROGRAMMED, || {
                lab.probe_as(
                    "client1",
                    SocketAddr::new(first, 0),
                    Proto::Tcp,
                    node,
                    STICKY,
                )
                .ok()
            })?;
        let got = answers(&lab, "client1", node, STICKY, 10)?;
        let pods = tally(got.iter().map(|a| a.pod.as_str()));
        assert_eq!(pods.len(), 1, "{what}: client1 pinned: {pods:?}");
        let c = lab.probe_as(
            "client1",
            SocketAddr::new(third, 0),
            Proto::Tcp,
            node,
            STICKY,
        )?;
        let order = [a.pod, got[0].pod.clone(), c.pod];
        assert_eq!(
            tally(order.iter().map(String::as_str)).len(),
            3,
            "{what}: rr order {order:?}"
        );
        pinned.push((node, order));
    }
    // The third client's pod leaves; client1 keeps connecting meanwhile (which also keeps
    // its affinity fresh), for longer than the speaker needs to apply the change.
    let gone = pinned[0].1[2].clone();
    let rest: Vec<&str> = NAMES.into_iter().filter(|p| *p != gone).collect();
    endpoints(&lab, "rr", &rest)?;
    for _ in 0..12 {
        for (node, order) in &pinned {
            let a = lab.probe("client1", Proto::Tcp, *node, STICKY)?;
            assert_eq!(
                a.pod,
                order[1],
                "{dataplane} {}: affinity lost while {gone} left",
                family(*node)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    super::ipvs_matches_model(&lab, dataplane, &[1])?;
    if dataplane == "ipvs" {
        // IPVS keeps a persistence template while connections it placed are still tracked
        // (closed TCP ones linger in TIME_WAIT for the kernel's own timeout, two minutes by
        // default, and the template is then kept 60 s more: as under kube-proxy), so the move
        // after the timeout is not observed here. What is checked: the kernel's virtual
        // server carries the Service's timeout (`persistent 2`, in the comparison with the
        // model above) and holds a template pinning client1 to its pod.
        let mut pins = Vec::new();
        for (node, order) in &pinned {
            let pod = host_addr(&lab, &order[1], *node)?;
            pins.push((host_addr(&lab, "client1", *node)?, pod));
        }
        ipvs_templates_pin(&lab, &pins)?;
        lab.down()?;
        return Ok(());
    }
    std::thread::sleep(Duration::from_secs(AFFINITY_SECS) + Duration::from_millis(1500));
    for (node, order) in pinned {
        let got = answers(&lab, "client1", node, STICKY, 5)?;
        let pods = tally(got.iter().map(|a| a.pod.as_str()));
        let what = format!("{dataplane} {}", family(node));
        assert_eq!(pods.len(), 1, "{what}: pinned again: {pods:?}");
        assert!(
            got[0].pod != order[1] && got[0].pod != gone,
            "{what}: moved after the timeout: {pods:?}"
        );
    }
    fixture::applied_as_changes(&lab, "node1")?;
    lab.down()?;
    Ok(())
}

/// `ipvsadm -Lnc`: a persistence template (source port 0) for each of `pinned`, to the pod
/// the client was pinned to (`pinned`: client address, the pod's address).
fn ipvs_templates_pin(lab: &Lab, pinned: &[(IpAddr, IpAddr)]) -> anyhow::Result<()> {
    let out = lab.exec("node1", &["ipvsadm", "-Lnc"])?;
    for (client, pod) in pinned {
        let source = SocketAddr::new(*client, 0).to_string();
        let to = SocketAddr::new(*pod, ECHO).to_string();
        anyhow::ensure!(
            out.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.get(3) == Some(&source.as_str()) && w.get(5) == Some(&to.as_str())
            }),
            "no persistence template {source} -> {to} in\n{out}"
        );
    }
    Ok(())
}

#[test]
fn nftables_session_affinity_pins_a_client_until_the_timeout() -> anyhow::Result<()> {
    affinity("nftables")
}

#[test]
fn userspace_session_affinity_pins_a_client_until_the_timeout() -> anyhow::Result<()> {
    affinity("userspace")
}

/// lc needs live connection counts: the kernel path refuses it (no virtual server in its
/// table, an error in the log naming the Service and the virtual server) while serving the node's other Services; the
/// userspace path serves it, and a held connection steers new ones to the other pod.
#[test]
fn lc_is_refused_by_nftables_and_served_by_userspace() -> anyhow::Result<()> {
    let (least, plain) = (30740, 30741);
    let lab = fixture::lab(&[("web-a", 1), ("web-b", 2)])?;
    for (name, port, sched) in [("least", least, "lc"), ("plain", plain, "rr")] {
        let yaml = fixture::service(name, "NodePort", Some(port), &scheduler(sched), "");
        lab.write_manifest(&format!("{name}.yaml"), &yaml)?;
        endpoints(&lab, name, &["web-a", "web-b"])?;
    }
    let kernel = lab.start_speaker_with("node1", &["--dataplane", "nftables"])?;
    lab.start_speaker_with("node2", &["--dataplane", "userspace"])?;
    for v6 in [false, true] {
        let (n1, n2) = (node_addr(1, any(v6)), node_addr(2, any(v6)));
        // The kernel path forwards its other Service, so its table is programmed...
        first_answer(&lab, "client1", n1, plain)?;
        let key = match n1 {
            IpAddr::V4(a) => format!("tcp/{a}:{least}"),
            IpAddr::V6(a) => format!("tcp/[{a}]:{least}"),
        };
        lab.wait_log(
            &kernel,
            &format!("default/least: {key}: scheduler lc"),
            fixture::PROGRAMMED,
        )?;
        let table = fixture::nft_table(&lab, "node1", if v6 { "ip6" } else { "ip" })?;
        assert!(table.contains(&format!(". tcp . {plain} :")), "{table}");
        // ...without the lc one: no map element, no chain.
        assert!(!table.contains(&format!(". tcp . {least} :")), "{table}");
        assert!(!table.contains(&format!("-{least} {{")), "{table}");
        assert!(
            fixture::refused(&lab, "client1", n1, least),
            "{key} answered"
        );
        // ...and says so with a Warning Event on the Service (standalone mode: a log file
        // beside the status directory).
        let mut events = lab.status_dir().into_os_string();
        events.push(".speakers/node1/events.log");
        let events =
            ferrolb_e2e::lab::wait_for("the SchedulerRefused Event", fixture::PROGRAMMED, || {
                std::fs::read_to_string(&events)
                    .ok()
                    .filter(|t| t.contains("Warning SchedulerRefused default/least:"))
            })?;
        assert!(events.contains("scheduler lc"), "{events}");
        // The userspace path serves it; a connection held to one pod sends new ones to the
        // other (lc: fewest active connections). A few may race the count of a connection
        // that just closed.
        first_answer(&lab, "client1", n2, least)?;
        least_connections_steer_new_ones(&lab, &format!("hold{}", u8::from(v6)), n2, least)?;
    }
    lab.down()?;
    Ok(())
}

/// lc with real traffic: while client1 holds one connection to `addr:port`, new connections
/// (one every 50 ms for 1 s, through hold run `name`) go to the other pod, nine in ten at
/// least (a few may race the count of a connection that just closed), and none fails.
pub(crate) fn least_connections_steer_new_ones(
    lab: &Lab,
    name: &str,
    addr: IpAddr,
    port: u16,
) -> anyhow::Result<()> {
    let spec = HoldSpec {
        hold: 1,
        duration: Duration::from_secs(1),
        new_every: Duration::from_millis(50),
        ..HoldSpec::default()
    };
    let name = lab.start_hold(name, "client1", addr, port, &spec)?;
    let report = lab.hold_report(&name, Duration::from_secs(10))?;
    let held = &report.held[0];
    let new = report.answered_between(0, u64::MAX);
    let elsewhere = new.iter().filter(|(_, p)| p != held).count();
    assert!(
        new.len() >= 10 && elsewhere * 10 >= new.len() * 9,
        "held on {held}, new ones: {new:?}"
    );
    assert!(
        report.lost.is_empty() && report.failed().is_empty(),
        "{report:?}"
    );
    Ok(())
}
