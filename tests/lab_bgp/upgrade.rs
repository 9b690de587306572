//! A rolling upgrade under traffic, with BGP graceful restart: every speaker is restarted one
//! node at a time, as a DaemonSet's rolling update does (SIGTERM, the old one exits, the new
//! one starts, the next node once it is ready), with `--on-stop keep` (what `auto` chooses
//! while the DaemonSet replaces its pods). Each old speaker leaves the kernel's data path
//! programmed and closes its BGP connections without a NOTIFICATION, so the router keeps its
//! routes as stale (RFC 4724) until the new speaker's End-of-RIB.
//!
//! Meanwhile an external client holds TCP connections through the LoadBalancer IPs (checked by
//! echoing through them every 100 ms) and opens new ones one after another: none of either
//! may fail. Then the controller is restarted, with a Service deleted while it is down: every
//! other Service keeps its address (a controller that allocated afresh would hand out the
//! lowest free address first and move them).

use super::forwarding::{self, ECHO};
use super::{LIMIT, NODES, SPEAKER_FLAGS, config, host_route, node_addr, service, wait_sessions};
use ferrolb_e2e::lab::hold::unix_ms;
use ferrolb_e2e::lab::{HoldReport, HoldSpec, Lab, LabSpec, RouterKind, plan};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// Pods on every node, so every node advertises a Cluster Service and the router spreads it
/// with ECMP.
const PODS: [&str; 3] = ["node1-pod1", "node2-pod1", "node3-pod1"];

/// A rolling restart's lab (still up) and what the clients saw: one hold report per address,
/// and when the restart began and ended (Unix ms).
struct Run {
    lab: Lab,
    ips: Vec<IpAddr>,
    reports: Vec<HoldReport>,
    began: u64,
    ended: u64,
}

/// Every node advertises a Cluster Service (pods on every node) to `kind` with graceful
/// restart (and BFD on both sides when `bfd`); external clients hold connections and open new
/// ones through both its addresses for `duration` while every speaker is restarted in turn
/// with `--on-stop on_stop`.
fn rolling_restart(
    kind: RouterKind,
    on_stop: &str,
    duration: Duration,
    bfd: bool,
) -> anyhow::Result<Run> {
    let mut lab = Lab::up(LabSpec {
        lan_clients: 0,
        bfd,
        ..LabSpec::default().router(Some(kind))
    })?;
    lab.reconfigure_router(|c| c.graceful_restart = true)?;
    let peer = if bfd {
        ", enableGracefulRestart: true, bfdProfile: fast"
    } else {
        ", enableGracefulRestart: true"
    };
    lab.write_manifest("bgp.yaml", &config(plan::NODE_ASN, "", peer))?;
    lab.start_controller()?;
    let flags: Vec<&str> = SPEAKER_FLAGS
        .iter()
        .copied()
        .chain(["--on-stop", on_stop])
        .collect();
    for node in NODES {
        lab.start_speaker_with(node, &flags)?;
    }
    wait_sessions(&lab)?;
    let ips = service(&lab, "web", false, &PODS)?;
    for ip in &ips {
        let hops: Vec<IpAddr> = (1..=3).map(|i| node_addr(i, ip.is_ipv6())).collect();
        lab.router()?.wait_route(&host_route(*ip), &hops, LIMIT)?;
        forwarding::first_answer(&lab, "ext1", *ip, ECHO)?;
    }
    let spec = HoldSpec {
        hold: HELD,
        duration,
        new_every: Duration::from_millis(50),
        ..HoldSpec::default()
    };
    let holds: Vec<String> = ips
        .iter()
        .enumerate()
        .map(|(k, ip)| Ok(lab.start_hold(&format!("hold{k}"), "ext1", *ip, ECHO, &spec)?))
        .collect::<anyhow::Result<_>>()?;
    // New connections before the upgrade too, to compare with.
    std::thread::sleep(Duration::from_secs(1));
    let began = now();
    let mut steps = Vec::new();
    for node in NODES {
        // The next node as soon as this one is ready, as a DaemonSet goes: its sessions may
        // still be coming up (GoBGP takes ~10 s to accept a restarted peer again); the
        // router's stale routes carry the traffic meanwhile.
        let at = now();
        lab.restart_speaker(node, &flags, LIMIT)?;
        steps.push((node, now() - at));
    }
    let restarted = now();
    wait_sessions(&lab)?;
    let ended = now();
    eprintln!(
        "{kind:?} --on-stop {on_stop}: every speaker restarted in {} ms {steps:?}, every \
         session up again {} ms later",
        restarted - began,
        ended - restarted
    );
    let reports = holds
        .iter()
        .map(|name| Ok(lab.hold_report(name, Duration::from_secs(90))?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (ip, r) in ips.iter().zip(&reports) {
        let held: BTreeMap<&str, usize> = r.held.iter().fold(BTreeMap::new(), |mut m, p| {
            *m.entry(p.as_str()).or_default() += 1;
            m
        });
        eprintln!(
            "{kind:?} --on-stop {on_stop} {ip}: held {held:?}, lost {}, new {} of which failed {}",
            r.lost.len(),
            r.answered_between(0, u64::MAX).len() + r.failed().len(),
            r.failed().len()
        );
    }
    Ok(Run {
        lab,
        ips,
        reports,
        began,
        ended,
    })
}

/// Held connections per address.
const HELD: usize = 8;

fn rolling_restart_loses_nothing(kind: RouterKind) -> anyhow::Result<()> {
    keep_loses_nothing(kind, false)
}

/// With BFD on the sessions too: a stopping speaker sends BFD AdminDown, which routers must
/// not take for a failure (RFC 5882 §3.2) that would end the graceful restart.
fn with_bfd_rolling_restart_loses_nothing(kind: RouterKind) -> anyhow::Result<()> {
    keep_loses_nothing(kind, true)
}

fn keep_loses_nothing(kind: RouterKind, bfd: bool) -> anyhow::Result<()> {
    // Past the whole rolling restart (2 s with BIRD and FRR, 15 s with GoBGP's slow session),
    // with room for a slow machine; checked below.
    let run = rolling_restart(kind, "keep", Duration::from_secs(45), bfd)?;
    let (began, ended) = (run.began, run.ended);
    for (ip, r) in run.ips.iter().zip(&run.reports) {
        assert_eq!(r.held.len(), HELD, "{ip}: {:?}", r.held);
        assert!(
            r.lost.is_empty(),
            "{ip}: held connections lost: {:?}",
            r.lost
        );
        assert!(
            r.failed().is_empty(),
            "{ip}: new connections failed: {:?}",
            r.failed()
        );
        // The run covered the whole upgrade: new connections before, during and after it,
        // and every held connection was checked all along (every 100 ms).
        for (from, to, what) in [
            (0, began, "before"),
            (began, ended, "during"),
            (ended, u64::MAX, "after"),
        ] {
            let n = r.answered_between(from, to).len();
            assert!(n >= 10, "{ip}: only {n} new connections {what} the upgrade");
        }
        let least = (ended - began) / 100;
        assert!(
            r.checks.iter().all(|c| *c >= least),
            "{ip}: held connections checked fewer than {least} times: {:?}",
            r.checks
        );
    }
    for ip in &run.ips {
        let hops: Vec<IpAddr> = (1..=3).map(|i| node_addr(i, ip.is_ipv6())).collect();
        run.lab
            .router()?
            .wait_route(&host_route(*ip), &hops, LIMIT)?;
    }
    if !bfd {
        controller_restart_keeps_addresses(&run.lab)?;
    }
    run.lab.down()?;
    Ok(())
}

/// The control: the same rolling restart with `--on-stop clean` (every speaker's SIGTERM
/// before `--on-stop` existed) breaks held connections: each stopping speaker removes its
/// nftables table (the kernel stops translating its connections) and ceases its sessions (the
/// router moves them to other nodes, which do not know them).
#[test]
fn bird_rolling_restart_with_clean_stops_breaks_connections() -> anyhow::Result<()> {
    let run = rolling_restart(RouterKind::Bird, "clean", Duration::from_secs(15), false)?;
    let lost: usize = run.reports.iter().map(|r| r.lost.len()).sum();
    assert!(lost > 0, "no held connection broke: {:?}", run.reports);
    run.lab.down()?;
    Ok(())
}

/// Services `a`, `b`, `c` get the next three addresses; `a` is deleted while the controller
/// is down; the restarted controller gives `b`, `c` and `web` exactly what they had, and a
/// new Service the address `a` freed (the lowest free one).
fn controller_restart_keeps_addresses(lab: &Lab) -> anyhow::Result<()> {
    let mut before = BTreeMap::new();
    for name in ["web", "a", "b", "c"] {
        before.insert(name, service(lab, name, false, &PODS)?);
    }
    lab.signal("controller@ctl", rustix::process::Signal::TERM)?;
    lab.wait_exit("controller@ctl", LIMIT)?;
    lab.forget_process("controller@ctl")?;
    lab.remove_manifest("a.yaml")?;
    lab.start_controller()?;
    let freed = before.remove("a").unwrap_or_default();
    // Written after `a`'s removal was handled: the freed addresses are the lowest free ones.
    let d = service(lab, "d", false, &PODS)?;
    for (name, ips) in &before {
        assert_eq!(
            lab.service_ips("default", name).as_ref(),
            Some(ips),
            "{name} kept its addresses through the controller's restart"
        );
    }
    assert_eq!(d, freed, "the new Service got the addresses a freed");
    Ok(())
}

fn now() -> u64 {
    unix_ms(SystemTime::now())
}

per_router!(rolling_restart_loses_nothing:
    bird_rolling_restart_with_graceful_restart_loses_no_connection,
    frr_rolling_restart_with_graceful_restart_loses_no_connection,
    gobgp_rolling_restart_with_graceful_restart_loses_no_connection);

#[test]
fn bird_rolling_restart_with_bfd_and_graceful_restart_loses_no_connection() -> anyhow::Result<()> {
    with_bfd_rolling_restart_loses_nothing(RouterKind::Bird)
}

#[test]
fn frr_rolling_restart_with_bfd_and_graceful_restart_loses_no_connection() -> anyhow::Result<()> {
    with_bfd_rolling_restart_loses_nothing(RouterKind::Frr)
}
