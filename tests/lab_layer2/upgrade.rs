//! A rolling upgrade in layer 2 mode under traffic: every speaker is restarted one node at a
//! time with `--on-stop keep`, as a DaemonSet's rolling update does (SIGTERM, the old one
//! exits, the new one starts, the next node once it is ready), while a LAN client holds TCP
//! connections through the LoadBalancer IPs and opens new ones.
//!
//! Why nothing breaks. The stopping speaker leaves its node's data path programmed and, before
//! it leaves the gossip, tells the others it is restarting (`l2::gossip::restart`): they keep
//! counting its node alive, so its addresses stay where they are, and the client, whose ARP /
//! NDP entry still names that node, goes on reaching the kept data path and its connection
//! state. The replacement reads the planned restart its predecessor left on the node
//! (`--l2-restart-file`), rejoins as the same member (no hold-down) and answers for its
//! addresses again. So: no held connection lost, no new connection failed, and no other node
//! ever announces a restarted node's address.
//!
//! The control, with planned restarts off (`--l2-restart-grace 0s`): the address moves away
//! at once and back after the hold-down, and every connection held through it breaks
//! (the Cluster policy masquerades with the announcing node's address, and the interim node
//! has no conntrack entry for them). That is what MetalLB does on every speaker restart.

use super::fixture::*;
use super::forwarding;
use ferrolb_e2e::lab::hold::unix_ms;
use ferrolb_e2e::lab::{HoldReport, HoldSpec, Lab};
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

/// The longest stretch of failing new connections allowed: layer 2's failover target
/// (README, "Upgrading"). Measured: none failed at all. A connection attempt that hung (2 s
/// timeout) would count as a 2 s outage and fail this.
const WINDOW: Duration = Duration::from_millis(250);

const HELD: usize = 4;
/// How long each step is watched after the SIGTERM: the restart (about 1 s), then longer than
/// the hold-down (3 s, in [`FLAGS`]), in case the restarted speaker were held down and its
/// addresses moved late.
const WATCH_MS: u64 = 7_000;

/// ARP requests sent (every 50 ms) around the restart of the IPv4 address's announcer: from
/// 1 s before the SIGTERM to 4 s after.
const ARP_REQUESTS: u32 = 100;

/// Check and print what the client's ARP requests got during a restart of the announcer: one
/// answer each, but for one stretch (the restart), and answered again at the end.
fn arp_gap(exchanges: &[Vec<String>]) {
    let twice = exchanges.iter().filter(|macs| macs.len() > 1).count();
    let mut longest = 0;
    let mut run = 0;
    for macs in exchanges {
        run = if macs.is_empty() { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let unanswered = exchanges.iter().filter(|macs| macs.is_empty()).count();
    let macs: BTreeSet<&String> = exchanges.iter().flatten().collect();
    eprintln!(
        "ARP during the restart of the announcer: {} requests, {unanswered} unanswered, \
         longest stretch {longest} ({} ms), {twice} answered twice, answered by {macs:?}",
        exchanges.len(),
        longest * 50
    );
    assert_eq!(twice, 0, "two nodes answered: {exchanges:?}");
    assert_eq!(macs.len(), 1, "the address moved: {exchanges:?}");
    assert_eq!(
        unanswered, longest,
        "more than one unanswered stretch: {exchanges:?}"
    );
    assert!(
        exchanges.last().is_some_and(|m| !m.is_empty()),
        "not answered again at the end: {exchanges:?}"
    );
}

/// One line per hold run, for the figures in the README.
fn report(what: &str, r: &HoldReport, restarted: u64) {
    eprintln!(
        "{what}: lost {} of {} held (at +{:?} ms), {} new, failed {} (outage {:?} ms)",
        r.lost.len(),
        r.held.len(),
        r.lost
            .iter()
            .map(|l| l.1.saturating_sub(restarted))
            .collect::<Vec<_>>(),
        r.new.len(),
        r.failed().len(),
        outage(r),
    );
}

/// One restart of `node` (with `flags`) under held and new connections through `ips`: the
/// hold reports, and every node other than the address's usual owner seen announcing it
/// meanwhile (sampled every 50 ms).
fn restart_under_traffic(
    lab: &Lab,
    node: &str,
    flags: &[&str],
    ips: &[IpAddr],
    owners: &[String],
) -> anyhow::Result<(u64, Vec<HoldReport>, Vec<BTreeSet<String>>)> {
    let spec = HoldSpec {
        hold: HELD,
        // 1 s before the restart, the watch, and room for the restart itself.
        duration: Duration::from_millis(WATCH_MS + 4_000),
        new_every: Duration::from_millis(20),
        ..HoldSpec::default()
    };
    let holds: Vec<String> = ips
        .iter()
        .enumerate()
        .map(|(k, ip)| {
            let name = format!("hold{k}-{node}-{}", flags.len());
            lab.start_hold(&name, CLIENT, *ip, forwarding::ECHO, &spec)
        })
        .collect::<Result<_, _>>()?;
    std::thread::sleep(Duration::from_secs(1));
    let restarted = now();
    lab.restart_speaker(node, flags, ANNOUNCED)?;
    let mut intruders = vec![BTreeSet::new(); ips.len()];
    while now() < restarted + WATCH_MS {
        for (k, (ip, owner)) in ips.iter().zip(owners).enumerate() {
            for n in announcers(lab, *ip)? {
                if n != *owner {
                    intruders[k].insert(n);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let reports = holds
        .iter()
        .map(|h| lab.hold_report(h, Duration::from_secs(60)))
        .collect::<Result<_, _>>()?;
    Ok((restarted, reports, intruders))
}

#[test]
fn a_rolling_restart_loses_no_connection_and_moves_no_address() -> anyhow::Result<()> {
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
    // The cluster has run for longer than a hold-down, as any cluster being upgraded has: a
    // restarted speaker that came back as a new one would be held down.
    std::thread::sleep(Duration::from_secs(3));
    let mut restarted_owner = 0;
    for node in NODES {
        let step = || restart_under_traffic(&lab, node, &FLAGS, &ips, &owners);
        // Nobody answers ARP for a restarted announcer's address between the old speaker's
        // exit and the new one's first answer: only a client without a cached entry notices.
        // Measured on the IPv4 address's announcer, with ARP requests every 50 ms.
        let ((restarted, reports, intruders), exchanges) = if node == owners[0] {
            arp_exchanges_while(&lab, v4, ARP_REQUESTS, step)?
        } else {
            (step()?, Vec::new())
        };
        if !exchanges.is_empty() {
            arp_gap(&exchanges);
        }
        for (k, r) in reports.iter().enumerate() {
            let what = format!("restart of {node}, {} announced by {}", ips[k], owners[k]);
            report(&what, r, restarted);
            assert!(
                r.answered_between(restarted + WATCH_MS - 1_000, u64::MAX)
                    .len()
                    >= 10,
                "{what}: the run ended too early"
            );
            assert!(
                r.lost.is_empty(),
                "{what}: held connections lost: {:?}",
                r.lost
            );
            assert!(
                r.failed().is_empty(),
                "{what}: new connections failed: {:?}",
                r.failed()
            );
            assert!(
                intruders[k].is_empty(),
                "{what}: announced meanwhile by {:?}",
                intruders[k]
            );
            if owners[k] == node {
                restarted_owner += 1;
            }
        }
        for (ip, owner) in ips.iter().zip(&owners) {
            assert_eq!(announcers(&lab, *ip)?, BTreeSet::from([owner.clone()]));
        }
    }
    assert_eq!(
        restarted_owner,
        ips.len(),
        "every address's owner was restarted once"
    );

    // The control: the same restart of an owner with planned restarts off.
    let mut off = FLAGS.to_vec();
    off.extend(["--l2-restart-grace", "0s"]);
    let owner = owners[0].clone();
    // The flag counts for the stopping speaker: first replace the owner's (a planned restart
    // still) by one started with it.
    lab.restart_speaker(&owner, &off, ANNOUNCED)?;
    let (restarted, reports, intruders) = restart_under_traffic(&lab, &owner, &off, &ips, &owners)?;
    let what = format!(
        "control: restart of {owner} without a planned restart, {}",
        ips[0]
    );
    report(&what, &reports[0], restarted);
    assert!(!intruders[0].is_empty(), "{what}: the address never moved");
    assert_eq!(reports[0].lost.len(), HELD, "{what}: {:?}", reports[0].lost);
    let outage = outage(&reports[0]);
    assert!(
        outage.is_none_or(|ms| ms <= WINDOW.as_millis() as u64),
        "{what}: new connections failed for {outage:?} ms: {:?}",
        reports[0].failed()
    );
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
