//! A rolling upgrade in layer 2 mode under traffic: every speaker is restarted one node at a
//! time with `--on-stop keep`, as a DaemonSet's rolling update does (SIGTERM, the old one
//! exits, the new one starts, the next node once it is ready and its addresses settled),
//! while a LAN client holds TCP connections through the LoadBalancer IPs and opens new ones.
//!
//! What layer 2 can and cannot do here. The stopping speaker leaves the gossip, so another
//! node takes its addresses at once and sends gratuitous ARP / unsolicited NA; the restarted
//! one takes them back after its hold-down. The old node's data path stays programmed (keep),
//! so packets still sent to it are forwarded until the client follows the announcement.
//! Established connections through an address that moves cannot survive the move: the
//! Cluster policy masquerades them with the old node's address, and the new node has no
//! conntrack entry for them, so their next segment reaches a pod as an unknown connection
//! (reset). An address moves twice when its announcer restarts: away at once, and back when
//! the restarted speaker's hold-down ends (the election's order does not change). So: on the
//! steps that restart a node that announces nothing, nothing at all may be lost; on the step
//! that restarts an address's announcer, the connections held through it break at the move
//! away, those opened through the interim announcer break at the move back (asserted: all of
//! them, so a change that made them survive would be noticed), and new connections may fail
//! only within [`WINDOW`].

use super::fixture::*;
use super::forwarding;
use ferrolb_e2e::lab::hold::unix_ms;
use ferrolb_e2e::lab::{HoldReport, HoldSpec, wait_for};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// The speakers' flags: those of [`up`] and `--on-stop keep`.
const FLAGS: [&str; 6] = [
    "--dataplane",
    "nftables",
    "--l2-hold-down",
    "3s",
    "--on-stop",
    "keep",
];

/// The longest stretch of failing new connections allowed on a step that moves an address:
/// layer 2's failover target (README, "Upgrading"). Measured: none failed at all (some 2,800
/// attempts 20 ms apart per run), since the old node, its data path kept, forwards whatever
/// still reaches it until the client follows the new announcer's gratuitous ARP/NA, and the
/// new announcer forwards from then on. A connection attempt that hung (2 s timeout) would
/// count as a 2 s outage and fail this.
const WINDOW: Duration = Duration::from_millis(250);

const HELD: usize = 4;
/// The speakers' `--l2-hold-down` (in [`FLAGS`]), in ms.
const HOLD_DOWN_MS: u64 = 3000;

/// One line per hold run, for the figures in the README.
fn report(what: &str, r: &HoldReport, restarted: u64, settled: u64) {
    eprintln!(
        "{what}: lost {} of {} held (at +{:?} ms), {} new, failed {} (outage {:?} ms), settled +{} ms",
        r.lost.len(),
        r.held.len(),
        r.lost
            .iter()
            .map(|l| l.1.saturating_sub(restarted))
            .collect::<Vec<_>>(),
        r.new.len(),
        r.failed().len(),
        outage(r),
        settled - restarted,
    );
}

#[test]
fn a_rolling_restart_fails_no_new_connection_and_breaks_only_those_through_a_moved_address()
-> anyhow::Result<()> {
    let lab = up(&[("web-a", 1), ("web-b", 2), ("web-c", 3)], &FLAGS[4..])?;
    lab.write_manifest("web.yaml", &web_service(false))?;
    forwarding::endpoints(&lab, "web", &["web-a", "web-b", "web-c"])?;
    let (v4, v6) = ips(&lab, "web")?;
    let ips: [IpAddr; 2] = [v4.into(), v6.into()];
    let mut owners = Vec::new();
    for ip in ips {
        owners.push(owner_of(&lab, ip)?);
        forwarding::first_answer(&lab, CLIENT, ip, forwarding::ECHO)?;
    }
    // The cluster has run for longer than a hold-down, as any cluster being upgraded has:
    // a speaker restarted earlier would count as one of the first ones, not as a late
    // starter, and take its addresses back without a hold-down.
    std::thread::sleep(Duration::from_secs(3));
    // `before`: opened through the announcer before the restart, broken by the move away;
    // `between`: opened once the new speaker is ready, through the interim announcer while
    // the restarted one is held down, broken by the move back.
    let before = HoldSpec {
        hold: HELD,
        // A restart (under 1 s), the hold-down (3 s) and the move back, with room to spare;
        // checked below.
        duration: Duration::from_secs(12),
        new_every: Duration::from_millis(20),
        ..HoldSpec::default()
    };
    let between = HoldSpec {
        duration: Duration::from_secs(10),
        ..before
    };
    let mut moved = 0;
    for node in NODES {
        let start = |what: &str, spec: &HoldSpec| -> anyhow::Result<Vec<String>> {
            ips.iter()
                .enumerate()
                .map(|(k, ip)| {
                    let name = format!("{what}{k}-{node}");
                    Ok(lab.start_hold(&name, CLIENT, *ip, forwarding::ECHO, spec)?)
                })
                .collect()
        };
        let holds_before = start("before", &before)?;
        std::thread::sleep(Duration::from_secs(1));
        let restarted = now();
        lab.restart_speaker(node, &FLAGS, ANNOUNCED)?;
        let holds_between = start("between", &between)?;
        // Settled: every address with its usual owner again (the election's order is the
        // same; a restarted owner takes its addresses back after its hold-down).
        for (ip, owner) in ips.iter().zip(&owners) {
            wait_for(&format!("{owner} announcing {ip} again"), ANNOUNCED, || {
                (announcers(&lab, *ip).ok()? == BTreeSet::from([owner.clone()])).then_some(())
            })?;
        }
        let settled = now();
        for (k, (ip, owner)) in ips.iter().zip(&owners).enumerate() {
            let what = format!("restart of {node}, {ip} announced by {owner}");
            let a = lab.hold_report(&holds_before[k], Duration::from_secs(60))?;
            let b = lab.hold_report(&holds_between[k], Duration::from_secs(60))?;
            for r in [&a, &b] {
                let after = r.answered_between(settled, u64::MAX).len();
                assert!(after >= 10, "{what}: a run ended before it settled");
                report(&what, r, restarted, settled);
            }
            if node == owner {
                moved += 1;
                for (r, when) in [(&a, "before the restart"), (&b, "on the interim node")] {
                    assert_eq!(r.lost.len(), HELD, "{what}: held {when}: {:?}", r.lost);
                    let outage = outage(r);
                    assert!(
                        outage.is_none_or(|ms| ms <= WINDOW.as_millis() as u64),
                        "{what}: new connections failed for {outage:?} ms: {:?}",
                        r.failed()
                    );
                }
                // Broken by the move away (the client follows the interim announcer's
                // gratuitous ARP/NA) and by the move back, after the hold-down.
                assert!(
                    a.lost.iter().all(|l| l.1 >= restarted),
                    "{what}: {:?}",
                    a.lost
                );
                assert!(
                    b.lost.iter().all(|l| l.1 >= restarted + HOLD_DOWN_MS),
                    "{what}: {:?}",
                    b.lost
                );
            } else {
                for r in [&a, &b] {
                    assert!(r.lost.is_empty(), "{what}: {:?}", r.lost);
                    assert!(r.failed().is_empty(), "{what}: {:?}", r.failed());
                }
            }
        }
    }
    assert_eq!(moved, ips.len(), "every address's owner was restarted once");
    lab.down()?;
    Ok(())
}

/// From the first failed new connection to the first one that answered after the last
/// failure (ms), if any failed.
fn outage(r: &HoldReport) -> Option<u64> {
    let (first, _) = r.failed().first().copied()?;
    let (last, _) = r.failed().last().copied()?;
    let back = r
        .answered_between(last, u64::MAX)
        .first()
        .map_or(u64::MAX, |(at, _)| *at);
    Some(back.saturating_sub(first))
}

fn now() -> u64 {
    unix_ms(SystemTime::now())
}
