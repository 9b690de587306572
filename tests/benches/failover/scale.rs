//! The speaker with many announced addresses: N Services (default 1,000) take addresses from
//! pool `big` (10.100.16.0/20), which only node3 advertises, so node3's speaker announces all
//! of them. Its memory (VmRSS of /proc/<pid>/status) and CPU (utime + stime of
//! /proc/<pid>/stat over a window, as % of one core) are read before, idle with N, and while
//! client2 ARPs for all N in a loop (one `arping -c 1` after the other, bounded in time and
//! count). node1's speaker (same Services and data path, announcing none of them) is shown
//! for comparison. Client2 needs no address in that range: arping asks on eth0 regardless.

use crate::failover::wait;
use crate::ferrolb::{BIG_NODE, FerroLb, announced, service, slices};
use crate::probes::{ARP_CLIENT, Arp, ArpWatch, now};
use ferrolb_e2e::lab::{Lab, cmd};
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub struct Scale {
    pub ips: usize,
    /// From writing the Services to node3 reporting every address.
    pub announce: Duration,
    pub rss_before_kib: u64,
    pub rss_idle_kib: u64,
    pub rss_arp_kib: u64,
    pub rss_other_kib: u64,
    /// % of one core.
    pub cpu_before: f64,
    pub cpu_idle: f64,
    pub cpu_other_idle: f64,
    pub arp: ArpLoad,
}

const OTHER_NODE: &str = "node1";

pub fn measure(f: &FerroLb, settings: &crate::Settings) -> anyhow::Result<Scale> {
    let lab = &f.lab;
    let n = settings.scale_ips;
    note!("scale: {n} addresses announced by {BIG_NODE}");
    let ticks = clock_ticks();
    let pid = lab.pid(&format!("speaker@{BIG_NODE}"))?;
    let other = lab.pid(&format!("speaker@{OTHER_NODE}"))?;
    let rss_before_kib = rss_kib(pid)?;
    let cpu_before = cpu_percent(&[pid], settings.cpu_window, ticks)?[0];

    let names: Vec<String> = (0..n).map(|i| format!("scale{i:04}")).collect();
    let slices_yaml: Vec<String> = names.iter().map(|s| slices(lab, s)).collect();
    let services: Vec<String> = names
        .iter()
        .map(|s| service(s, false, Some("big")))
        .collect();
    let started = Instant::now();
    lab.write_manifest("scale-slices.yaml", &slices_yaml.join("---\n"))?;
    lab.write_manifest("scale.yaml", &services.join("---\n"))?;
    let big = |ip: &IpAddr| matches!(ip, IpAddr::V4(a) if a.octets()[..2] == [10, 100] && (16..32).contains(&a.octets()[2]));
    let mut count = 0;
    let ips: Vec<IpAddr> = wait(
        || {
            let ips: Vec<IpAddr> = announced(lab, BIG_NODE).into_iter().filter(big).collect();
            count = ips.len();
            (ips.len() >= n).then_some(ips)
        },
        Duration::from_secs(240),
        &format!("{BIG_NODE} announcing {n} addresses of pool big"),
    )
    .map_err(|e| e.context(format!("it announces {count}")))?;
    let announce = started.elapsed();
    note!("scale: {n} addresses announced after {announce:?}");
    // Settle, showing how busy the speaker still is, second by second.
    let mut series = Vec::new();
    for _ in 0..3 {
        series.push(format!(
            "{:.0}%",
            cpu_percent(&[pid], Duration::from_secs(1), ticks)?[0]
        ));
    }
    note!(
        "scale: {BIG_NODE}'s speaker over the next 3 s: {}",
        series.join(" ")
    );

    let idle = cpu_percent(&[pid, other], settings.cpu_window, ticks)?;
    let rss_idle_kib = rss_kib(pid)?;
    let rss_other_kib = rss_kib(other)?;

    let arp = arp_load(lab, [pid, other], &ips, settings.arp_window, ticks)?;
    let rss_arp_kib = rss_kib(pid)?;
    Ok(Scale {
        ips: n,
        announce,
        rss_before_kib,
        rss_idle_kib,
        rss_arp_kib,
        rss_other_kib,
        cpu_before,
        cpu_idle: idle[0],
        cpu_other_idle: idle[1],
        arp,
    })
}

/// Parallel arping loops in client2 (each `arping -c 5` for one address, then the next).
const LOOPS: usize = 4;
/// Requests per arping process: amortises its start (tens of ms, most of it waiting).
const PER_ADDRESS: u32 = 5;

/// client2 ARPs for `ips` in [`LOOPS`] parallel loops over slices of them, pass after pass,
/// for `window` (checked between addresses; at most 20 passes); the capture on client2 counts
/// what was asked and answered. Returns both speakers' CPU over that time.
fn arp_load(
    lab: &Lab,
    [pid, other]: [u32; 2],
    ips: &[IpAddr],
    window: Duration,
    ticks: f64,
) -> anyhow::Result<ArpLoad> {
    let arping = cmd::require_tool("arping", "arping")?;
    let chunk = ips.len().div_ceil(LOOPS).max(1);
    let mut loops = String::new();
    for (i, part) in ips.chunks(chunk).enumerate() {
        let list = lab.dir().join(format!("scale-ips-{i}.txt"));
        let text: String = part.iter().map(|ip| format!("{ip}\n")).collect();
        std::fs::write(&list, text)?;
        loops.push_str(&format!(
            "( pass=0; while [ $pass -lt 20 ]; do pass=$((pass+1)); for ip in $(cat {list}); do \
               {arping} -q -c {PER_ADDRESS} -W 0.002 -w 1 -i eth0 \"$ip\"; \
               [ $(( $(date +%s%N) / 1000000 )) -ge $deadline ] && exit 0; \
             done; done ) &\n",
            list = list.display(),
            arping = arping.display(),
        ));
    }
    let script = format!(
        "deadline=$(( $(date +%s%N) / 1000000 + {ms} ))\n{loops}wait\n",
        ms = window.as_millis()
    );
    let mut watch = ArpWatch::start(lab)?;
    let h = lab.host(ARP_CLIENT)?;
    let before = (cpu_ticks(pid)?, cpu_ticks(other)?);
    let (from, started) = (now(), Instant::now());
    let out = cmd::output(
        ARP_CLIENT,
        cmd::in_netns(&h.netns, &["sh", "-c", &script]),
        window + Duration::from_secs(30),
    )?;
    let secs = started.elapsed().as_secs_f64();
    let used = (cpu_ticks(pid)? - before.0, cpu_ticks(other)? - before.1);
    anyhow::ensure!(
        out.status.success(),
        "the ARP load failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(200));
    let events = watch.all(from, now());
    watch.stop();
    let mut asked = std::collections::BTreeSet::new();
    let mut answered = std::collections::BTreeSet::new();
    let (mut sent, mut replies) = (0u64, 0u64);
    for e in &events {
        match e {
            Arp::Request { ip, .. } => {
                sent += 1;
                asked.insert(*ip);
            }
            Arp::Reply { ip, .. } => {
                replies += 1;
                answered.insert(*ip);
            }
        }
    }
    Ok(ArpLoad {
        cpu: used.0 as f64 / ticks / secs * 100.0,
        cpu_other: used.1 as f64 / ticks / secs * 100.0,
        sent,
        replies,
        asked: asked.len(),
        answered: answered.len(),
        secs,
    })
}

/// What the ARP load did.
pub struct ArpLoad {
    /// The announcing speaker's CPU, % of one core.
    pub cpu: f64,
    /// node1's speaker's meanwhile (it receives the broadcast requests too, answers none).
    pub cpu_other: f64,
    pub sent: u64,
    pub replies: u64,
    /// Distinct addresses asked for and answered.
    pub asked: usize,
    pub answered: usize,
    pub secs: f64,
}

/// Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces), from field 3 (state) on.
    let rest = stat
        .rsplit_once(')')
        .map(|x| x.1)
        .ok_or_else(|| anyhow::anyhow!("odd /proc/{pid}/stat: {stat}"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state (field 3).
    let num = |i: usize| -> anyhow::Result<u64> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no field {} in /proc/{pid}/stat", i + 3))
    };
    Ok(num(11)? + num(12)?)
}

/// CPU of each of `pids` over `window`, in % of one core.
fn cpu_percent(pids: &[u32], window: Duration, ticks: f64) -> anyhow::Result<Vec<f64>> {
    let before: Vec<u64> = pids
        .iter()
        .map(|p| cpu_ticks(*p))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    std::thread::sleep(window);
    let secs = started.elapsed().as_secs_f64();
    pids.iter()
        .zip(before)
        .map(|(p, b)| Ok((cpu_ticks(*p)? - b) as f64 / ticks / secs * 100.0))
        .collect()
}

/// VmRSS of a process, KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    Ok(ferrolb_e2e::bench::proc_status(pid, ["VmRSS:"])?[0])
}
