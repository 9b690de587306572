//! Forwarding benchmarks, in the lab: `cargo bench -p ferrolb-e2e --bench forwarding` (as root;
//! needs iproute2, nftables, iperf3 and haproxy, which `tests/install-deps.sh` installs).
//!
//! One run brings up its own lab (node1 with one pod running the echo server and iperf3,
//! client1 on the LAN), measures side by side, prints one table with the targets and tears
//! everything down:
//!
//! - throughput (iperf3, one TCP stream) and new TCP connections per second (short
//!   connections to the echo server) from client1 to the pod: directly through node1 (the
//!   limit of this machine), through a LoadBalancer IP on the nftables path, on the userspace
//!   path, and through HAProxy doing the same forwarding in node1 (`paths`);
//! - programming 10,000 Services × 10 endpoints from nothing and applying one endpoint change
//!   in that state, on both paths, in node2's namespace (`program`);
//! - Maglev: table build time for 1,000 backends and the disruption when one leaves.
//!
//! Targets: nftables throughput ≥ 0.9 × direct; userspace ≥ 1.3 × HAProxy in throughput and
//! ≥ 1.0 × in connections per second (issue 14); 10,000 Services programmed in < 2 s; one endpoint change
//! applied in < 50 ms.
//!
//! The data paths are the speaker's own (`ferrolb_speaker::dataplane`), driven with the table
//! the speaker would build: the benchmark re-runs itself inside node1 (`--scenario ...`) for
//! everything that must happen in the node's namespace; nothing touches the root namespace.
//! Every load is bounded in count and time (about 1.5 minutes in all).
//!
//! Environment: `FERROLB_BENCH_SERVICES` (10000), `FERROLB_BENCH_ENDPOINTS` (10),
//! `FERROLB_BENCH_SECONDS` (iperf3 seconds per path, 5), `FERROLB_BENCH_ONLY` (a comma list
//! of `traffic`, `program`, `maglev`), `FERROLB_BENCH_PATHS` (a comma list of `direct`,
//! `nftables`, `userspace`, `haproxy`).

mod child;
mod dataplane;
mod maglev;
mod paths;
mod program;
mod report;
mod services;
mod traffic;

use ferrolb_e2e::bench::{load_average, machine};
use report::Report;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--scenario") {
        return match scenario(&args[i + 1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("forwarding bench scenario: {e}");
                ExitCode::from(1)
            }
        };
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("forwarding bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The parts that run inside a lab node.
fn scenario(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| {
        arg(i)
            .parse::<usize>()
            .map_err(|e| format!("{:?}: {e}", arg(i)))
    };
    let ip = |i: usize| {
        arg(i)
            .parse::<std::net::IpAddr>()
            .map_err(|e| format!("{:?}: {e}", arg(i)))
    };
    match arg(0) {
        "serve" => dataplane::child(arg(1), ip(2)?, ip(3)?),
        "program" => program::child(num(1)?, num(2)?),
        other => Err(format!("unknown scenario {other:?}")),
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run() -> anyhow::Result<()> {
    let only = std::env::var("FERROLB_BENCH_ONLY").unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only.split(',').any(|p| p.trim() == part);
    let services = env_or("FERROLB_BENCH_SERVICES", 10_000usize);
    let endpoints = env_or("FERROLB_BENCH_ENDPOINTS", 10usize);
    let load = traffic::Load {
        iperf_secs: env_or("FERROLB_BENCH_SECONDS", 5u32).clamp(1, 60),
        cps_secs: 3.0,
        cps_concurrency: 16,
    };
    println!("FerroLB forwarding benchmark");
    println!(
        "{}",
        machine(&[
            &["nft", "--version"],
            &["haproxy", "-v"],
            &["iperf3", "--version"]
        ])
    );
    println!();
    let mut rep = Report::default();
    if wanted("traffic") || wanted("program") {
        let lab = traffic::lab()?;
        if wanted("traffic") {
            let results = traffic::measure(&lab, load)?;
            traffic::report(&mut rep, &results, load);
        }
        if wanted("program") {
            program::measure(&lab, &mut rep, services, endpoints)?;
        }
        lab.down()?;
    }
    if wanted("maglev") {
        maglev::measure(&mut rep);
    }
    rep.print();
    println!();
    let missed = rep.missed();
    if missed.is_empty() {
        println!("every target met");
    } else {
        println!("targets missed: {}", missed.join("; "));
    }
    println!("load average at the end: {}", load_average());
    Ok(())
}
