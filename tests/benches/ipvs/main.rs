//! The kernel IPVS path against the nftables path, programming the same virtual server table
//! in one guest kernel (the VM lab: the host kernel has no IPVS), through the speaker's own
//! code: `IpvsTable` (one netlink message per virtual or real server) and `NftablesDataplane`
//! (staged `nft` programs, netlink element changes).
//!
//! ```console
//! # tests/benches/ipvs.sh [SERVICES [ENDPOINTS]]        # default 10,000 x 10
//! ```
//!
//! Figures: the whole table from nothing, and one endpoint change in that table (one real
//! server of one Service replaced: the median and worst of 5), for each path, with their
//! ratio. Emulation (QEMU TCG) slows both paths alike: compare the ratio, not the absolute
//! times. Each path runs in a network namespace of its own, deleted afterwards.

use ferrolb_e2e::netns::Netns;
use ferrolb_shared::ipvs::fixtures::{rs, table, vs};
use ferrolb_shared::ipvs::model::{Table, VsKey};
use ferrolb_shared::ipvs::scheduler::SchedulerKind;
use ferrolb_speaker::dataplane::ipvs::table::IpvsTable;
use ferrolb_speaker::dataplane::nftables::NftablesDataplane;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Endpoint changes timed per path.
const CHANGES: usize = 5;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let services = args.first().copied().unwrap_or(10_000).clamp(1, 60_000);
    let endpoints = args.get(1).copied().unwrap_or(10).clamp(1, 100);
    let base = model(services, endpoints);
    println!(
        "IPVS against nftables, {services} Services x {endpoints} endpoints ({} real servers), in {}",
        services * endpoints,
        kernel()
    );
    let ipvs = measure("ipvs", &base, ipvs_path);
    let nft = measure("nftables", &base, nft_path);
    println!();
    println!("| figure | IPVS | nftables | IPVS / nftables |");
    println!("|---|---|---|---|");
    row("whole table from nothing", ipvs.full, nft.full);
    row(
        "one endpoint change (median of 5)",
        median(&ipvs.changes),
        median(&nft.changes),
    );
    row(
        "one endpoint change (worst of 5)",
        worst(&ipvs.changes),
        worst(&nft.changes),
    );
    println!(
        "\nnetlink messages per endpoint change (IPVS): {}",
        ipvs.messages_per_change
    );
}

/// Virtual servers 10.96.x.y:80, TCP, round robin, each over `endpoints` pods on 8080.
fn model(services: usize, endpoints: usize) -> Table {
    let servers = (0..services)
        .map(|i| {
            let vip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + i as u32 + 1);
            let pods = (0..endpoints)
                .map(|e| {
                    let pod = Ipv4Addr::from(
                        u32::from(Ipv4Addr::new(10, 244, 0, 0)) + (i * endpoints + e) as u32,
                    );
                    rs(&pod.to_string(), 8080)
                })
                .collect();
            vs(&vip.to_string(), 80, SchedulerKind::Rr, pods)
        })
        .collect();
    table(servers)
}

/// The tables one run goes through: the whole one, then `CHANGES` single endpoint changes,
/// each with the virtual server it touched.
fn changes(base: &Table) -> Vec<(Table, VsKey)> {
    let keys: Vec<VsKey> = base.servers.keys().copied().collect();
    let mut current = base.clone();
    (0..CHANGES)
        .map(|r| {
            let key = keys[(r + 1) * keys.len() / (CHANGES + 1)];
            let vs = current
                .servers
                .get_mut(&key)
                .expect("the key is in the table");
            let moved = Ipv4Addr::new(10, 255, 0, r as u8 + 1);
            vs.real_servers[0] = rs(&moved.to_string(), 8080);
            (current.clone(), key)
        })
        .collect()
}

struct Figures {
    full: Duration,
    changes: Vec<Duration>,
    messages_per_change: usize,
}

fn measure(
    name: &str,
    base: &Table,
    path: impl FnOnce(&Netns, (&Table, &[(Table, VsKey)])) -> Figures,
) -> Figures {
    let ns = Netns::with_loopback("bench", name);
    let steps = changes(base);
    let figures = path(&ns, (base, &steps));
    println!(
        "{name}: whole table {:?}, endpoint changes {:?}",
        figures.full, figures.changes
    );
    figures
}

fn ipvs_path(ns: &Netns, (base, steps): (&Table, &[(Table, VsKey)])) -> Figures {
    let dir = std::env::temp_dir().join(format!("ferrolb-ipvs-bench-{}", std::process::id()));
    let state = dir.join("ipvs-owned");
    let figures = ns.enter(|| {
        let mut keeper = IpvsTable::new(state.clone());
        let t = Instant::now();
        keeper
            .apply(base, None, Instant::now())
            .expect("the whole table");
        let full = t.elapsed();
        let (mut changes, mut messages) = (Vec::new(), 0);
        for (table, key) in steps {
            let touched: BTreeSet<VsKey> = [*key].into();
            let t = Instant::now();
            let sent = keeper
                .apply(table, Some(&touched), Instant::now())
                .expect("an endpoint change");
            changes.push(t.elapsed());
            messages = messages.max(sent.len());
        }
        keeper.remove(Instant::now()).expect("the clean stop");
        Figures {
            full,
            changes,
            messages_per_change: messages,
        }
    });
    let _ = std::fs::remove_dir_all(dir);
    figures
}

fn nft_path(ns: &Netns, (base, steps): (&Table, &[(Table, VsKey)])) -> Figures {
    ns.enter(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let mut nft = NftablesDataplane::kernel(Default::default());
            let ports = BTreeMap::new();
            let t = Instant::now();
            nft.apply(base, None, &ports)
                .await
                .expect("the whole table");
            let full = t.elapsed();
            let mut changes = Vec::new();
            for (table, key) in steps {
                let touched: BTreeSet<VsKey> = [*key].into();
                let t = Instant::now();
                nft.apply(table, Some(&touched), &ports)
                    .await
                    .expect("an endpoint change");
                changes.push(t.elapsed());
            }
            nft.remove().await.expect("the clean stop");
            Figures {
                full,
                changes,
                messages_per_change: 0,
            }
        })
    })
}

fn row(what: &str, ipvs: Duration, nft: Duration) {
    let ratio = ipvs.as_secs_f64() / nft.as_secs_f64().max(1e-9);
    println!("| {what} | {ipvs:.1?} | {nft:.1?} | {ratio:.2} |");
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn worst(v: &[Duration]) -> Duration {
    v.iter().copied().max().unwrap_or_default()
}

/// The running kernel, as `uname -r` would say.
fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| "an unknown kernel".into())
}
