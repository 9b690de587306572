//! The failover measurement, the same for every system: fail the node serving the address in
//! one [`Way`], watch the probes, undo the failure, wait until the system has settled, repeat.
//!
//! Per repetition (times are wall clock, the probes' time base):
//! 1. the owner is found and checked (it alone answers ARP); arping starts, every 10 ms;
//! 2. after 0.5 s the owner is failed, between `t0` and `t1`;
//! 3. once a reply from another MAC has come (`first_new`) and the UDP traffic answers again,
//!    arping slows to every 25 ms; the failure is undone and the system settles;
//! 4. from the capture and the UDP answers:
//!    - ARP takeover = `first_new` − the last reply from the old owner at or before `t1`;
//!    - traffic gap = the longest gap between UDP answers from 0.5 s before `t0` until the
//!      traffic answered again after `first_new`;
//!    - doubled = requests of client2 answered by two MACs, from the start of the repetition
//!      until it has settled.

use crate::probes::{self, Arp, ArpWatch, UdpProbe, now};
use ferrolb_e2e::lab::Lab;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

/// How the serving node is failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Way {
    /// SIGKILL of its speaker (keepalived: of its VRRP process and its parent).
    Kill,
    /// SIGSTOP of its speaker (keepalived: both processes).
    Pause,
    /// Its LAN link goes down (`ip link set eth0 down` in the node).
    Link,
}

impl Way {
    pub const ALL: [Way; 3] = [Way::Kill, Way::Pause, Way::Link];

    pub fn name(self) -> &'static str {
        match self {
            Way::Kill => "kill",
            Way::Pause => "pause",
            Way::Link => "link",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Way::Kill => "SIGKILL",
            Way::Pause => "SIGSTOP",
            Way::Link => "link cut",
        }
    }
}

impl std::str::FromStr for Way {
    type Err = String;
    fn from_str(s: &str) -> Result<Way, String> {
        Way::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| format!("unknown way {s:?}: use kill, pause, link"))
    }
}

/// A system guarding one address on the LAN.
pub trait System {
    /// Its name in the table.
    fn name(&self) -> String;
    fn lab(&self) -> &Lab;
    /// The address it guards.
    fn vip(&self) -> Ipv4Addr;
    /// The node serving the address, once exactly one does and the system is steady.
    fn owner(&mut self) -> anyhow::Result<String>;
    /// Fail `node` in `way`.
    fn fail(&mut self, node: &str, way: Way) -> anyhow::Result<()>;
    /// Undo the failure of `node`.
    fn undo(&mut self, node: &str, way: Way) -> anyhow::Result<()>;
    /// Wait until `node` is back and the system is steady, ready for the next repetition.
    fn settle(&mut self, node: &str, way: Way) -> anyhow::Result<()>;
    /// The longest a takeover may take before the repetition counts as failed.
    fn takeover_limit(&self) -> Duration;
}

/// What one repetition measured.
#[derive(Clone, Debug)]
pub struct Sample {
    pub arp_takeover: f64,
    pub traffic_gap: f64,
    /// Requests answered by two MACs.
    pub doubled: usize,
    /// When the first of them was, and who answered.
    pub first_doubled: Option<String>,
    pub old: String,
    pub new: String,
}

/// Every repetition of one system, per way.
pub struct SystemResult {
    pub name: String,
    pub ways: BTreeMap<Way, Vec<Result<Sample, String>>>,
}

/// Pause before the failure, so the probes have a baseline.
const BEFORE: Duration = Duration::from_millis(300);
/// How long traffic may take to flow again once another node answers ARP.
const TRAFFIC_LIMIT: Duration = Duration::from_secs(3);
/// How long a failure lasts after the takeover was seen, before it is undone.
const HELD: Duration = Duration::from_millis(300);
/// arping while a failure is undone and the system settles.
const SLOW: Duration = Duration::from_millis(25);

/// Every way, `settings.reps` times, on `sys`.
pub fn session(sys: &mut dyn System, settings: &crate::Settings) -> anyhow::Result<SystemResult> {
    let name = sys.name();
    let mut arp = ArpWatch::start(sys.lab())?;
    let mut udp = UdpProbe::start(sys.lab(), sys.vip())?;
    let mut ways = BTreeMap::new();
    for &way in &settings.ways {
        let mut samples = Vec::new();
        for rep in 1..=settings.reps {
            let r = repetition(sys, way, &mut arp, &mut udp);
            match &r {
                Ok(s) if s.doubled > 0 => note!(
                    "{name} {} {rep}/{}: ARP takeover {:.0} ms, traffic gap {:.0} ms, {} -> {}; DOUBLED {}: first {}",
                    way.label(),
                    settings.reps,
                    s.arp_takeover * 1e3,
                    s.traffic_gap * 1e3,
                    s.old,
                    s.new,
                    s.doubled,
                    s.first_doubled.as_deref().unwrap_or("-")
                ),
                Ok(s) => note!(
                    "{name} {} {rep}/{}: ARP takeover {:.0} ms, traffic gap {:.0} ms, doubled {}, {} -> {}",
                    way.label(),
                    settings.reps,
                    s.arp_takeover * 1e3,
                    s.traffic_gap * 1e3,
                    s.doubled,
                    s.old,
                    s.new
                ),
                Err(e) => note!(
                    "{name} {} {rep}/{}: FAILED: {e:#}",
                    way.label(),
                    settings.reps
                ),
            }
            let failed = r.is_err();
            samples.push(r.map_err(|e| format!("{e:#}")));
            if failed {
                // The next repetition needs a steady system: one node serving the address.
                sys.owner().map_err(|e| {
                    e.context(format!("{name} did not recover after a failed repetition"))
                })?;
            }
        }
        ways.insert(way, samples);
    }
    udp.stop();
    arp.stop();
    Ok(SystemResult { name, ways })
}

fn repetition(
    sys: &mut dyn System,
    way: Way,
    arp: &mut ArpWatch,
    udp: &mut UdpProbe,
) -> anyhow::Result<Sample> {
    let vip = sys.vip();
    let owner = sys.owner()?;
    let old_mac = sys.lab().mac(&owner, "eth0")?;
    let macs = node_macs(sys.lab())?;
    let start = now();
    let limit = sys.takeover_limit();
    let count = ((BEFORE + limit + TRAFFIC_LIMIT).as_secs_f64() / probes::INTERVAL.as_secs_f64())
        .ceil() as u32;
    let fast = probes::arping(sys.lab(), vip, probes::INTERVAL, count)?;
    wait(
        || arp.first_request(vip, start),
        Duration::from_secs(5),
        "arping to start",
    )?;
    std::thread::sleep(BEFORE);

    let t0 = now();
    sys.fail(&owner, way)?;
    let t1 = now();
    let outcome = (|| {
        let (first_new, mac) = wait(
            || arp.first_other_reply(vip, &old_mac, t0),
            limit,
            "another node to answer ARP",
        )?;
        let resumed = wait(
            || udp.first_after(first_new.max(t1)),
            TRAFFIC_LIMIT,
            "UDP answers after the takeover",
        )?;
        anyhow::Ok((first_new, mac, resumed))
    })();
    // The failed node stays failed a little longer, as a real one would.
    std::thread::sleep(HELD);
    drop(fast.stop());
    // Undo whatever happened, so a failed repetition leaves a working system behind.
    let slow = probes::arping(sys.lab(), vip, SLOW, 4000)?;
    let undo_at = now();
    let undone = sys.undo(&owner, way).and_then(|()| sys.settle(&owner, way));
    std::thread::sleep(Duration::from_millis(150));
    drop(slow.stop());
    let end = now();
    undone?;
    let (first_new, new_mac, resumed) = outcome?;

    let events = arp.window(vip, start, end);
    let last_old = events
        .iter()
        .filter_map(|e| match e {
            Arp::Reply { t, mac, .. } if *mac == old_mac && *t <= t1 => Some(*t),
            _ => None,
        })
        .fold(f64::NAN, f64::max);
    anyhow::ensure!(
        !last_old.is_nan(),
        "no ARP reply from {owner} ({old_mac}) before the failure"
    );
    let traffic_gap = udp
        .longest_gap(t0 - BEFORE.as_secs_f64(), resumed)
        .ok_or_else(|| anyhow::anyhow!("no UDP answers around the failure"))?;
    let doubled: Vec<probes::Exchange> = probes::exchanges(&events)
        .into_iter()
        .filter(|x| x.macs() > 1)
        .collect();
    let first_doubled = doubled.first().map(|x| {
        // Consecutive replies from one node, collapsed: `node2 ×32 from +0.438 s`.
        let mut runs: Vec<(&str, usize, f64)> = Vec::new();
        for (mac, t) in &x.replies {
            let node = macs.get(mac).map_or(mac.as_str(), String::as_str);
            match runs.last_mut() {
                Some((n, count, _)) if *n == node => *count += 1,
                _ => runs.push((node, 1, *t)),
            }
        }
        let replies: Vec<String> = runs
            .iter()
            .map(|(node, count, t)| format!("{node} ×{count} from {:+.3} s", t - t0))
            .collect();
        format!(
            "request at {:+.3} s (failure at 0, undone at {:+.3} s): {}",
            x.t - t0,
            undo_at - t0,
            replies.join(", ")
        )
    });
    Ok(Sample {
        arp_takeover: first_new - last_old,
        traffic_gap,
        doubled: doubled.len(),
        first_doubled,
        old: owner,
        new: macs.get(&new_mac).cloned().unwrap_or(new_mac),
    })
}

/// The node hosts by the MAC of their LAN link.
fn node_macs(lab: &Lab) -> anyhow::Result<BTreeMap<String, String>> {
    lab.nodes()
        .iter()
        .map(|h| Ok((lab.mac(&h.name, "eth0")?, h.name.clone())))
        .collect()
}

/// Poll `check` every 5 ms until it returns `Some`, for at most `limit`.
pub fn wait<T>(
    mut check: impl FnMut() -> Option<T>,
    limit: Duration,
    what: &str,
) -> anyhow::Result<T> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no {what} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Wait until `owner` alone answers ARP for `vip` (client2's view), then return it.
pub fn answered_by_alone(lab: &Lab, vip: Ipv4Addr, owner: String) -> anyhow::Result<String> {
    let mac = lab.mac(&owner, "eth0")?;
    let mut seen = Vec::new();
    wait(
        || {
            seen = probes::arp_once(lab, vip).ok()?;
            (seen == [mac.clone()]).then_some(())
        },
        Duration::from_secs(10),
        &format!("ARP answer from {owner} ({mac}) alone"),
    )
    .map_err(|e| e.context(format!("last answers: {seen:?}")))?;
    Ok(owner)
}
