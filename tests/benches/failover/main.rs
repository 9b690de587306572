//! Layer 2 failover benchmark, in the lab: `cargo bench -p ferrolb-e2e --bench failover` (as
//! root; needs iproute2, nftables, arping, tcpdump and keepalived, which
//! `tests/install-deps.sh` installs). Issue #5, section 5.
//!
//! One run brings up its own labs, measures side by side, prints one table with the targets
//! (at the end, with the machine it ran on) and tears everything down: about 6 minutes on a
//! 2-core machine with the defaults, after building the binaries (see below). Progress goes to
//! stderr, stamped with the seconds since the start.
//!
//! 1. **Failover** (parts `ferrolb` and `keepalived`): FerroLB (3 nodes, a speaker on each with
//!    `--dataplane nftables --l2-hold-down 2s`, gossip on, one `externalTrafficPolicy: Local`
//!    UDP Service with a pod on every node) and keepalived (two nodes, VRRP over the LAN,
//!    once with `advert_int 1`, once with `advert_int 0.1`) guard one IPv4 address on the
//!    LAN. The node serving it is failed in three ways: SIGKILL of its speaker / keepalived,
//!    SIGSTOP of it, its LAN link cut. Each way is repeated REPS times; each failure lasts
//!    until another node has taken over and 0.3 s more, then it is undone and the bench waits
//!    until the node is back (and, for FerroLB, the hold-down has passed and the address has
//!    settled) before the next repetition.
//!    Probes, identical for both systems: client2 sends an ARP request for the address every
//!    10 ms (arping) and captures the replies (tcpdump); client1 sends a UDP datagram to
//!    port 7000 of the address every 10 ms (this bench, re-run inside client1 with
//!    `--scenario udp`) and records every answer of the lab's echo server (`ferrolb-lab-echo`:
//!    in the pods behind the Service for FerroLB, in the nodes themselves for keepalived).
//! 2. **New Service** (part `resolve`): from writing a Service manifest, and from the controller
//!    writing its status, to client2's first ARP reply for its (predicted) address.
//! 3. **Scale** (part `scale`): the speaker's RSS and CPU with 1,000 addresses announced by one
//!    node (a second pool, 10.100.16.0/20, advertised by node3 only), idle and while client2
//!    ARPs for all of them in a bounded loop.
//!
//! Definitions (also printed under the table): *ARP takeover* is the time from the last ARP
//! reply of the failed node to a request sent before the failure to the first reply from
//! another node: the outage a client sees when the node is really gone (its data path with
//! it). This is the primary figure for every way. *Traffic gap* is the longest gap between two
//! UDP echo answers around the failure: with a cut link it is the client's real outage; a
//! SIGKILLed or SIGSTOPped speaker (or keepalived) leaves the node's kernel forwarding, so the
//! gap stays near the 10 ms probe interval. *Two nodes answering* counts repetitions in which
//! any single ARP request of client2 got replies from two different MACs, from just before the
//! failure until the system has settled again.
//!
//! The benchmark first builds the speaker and controller binaries it runs (`cargo build
//! --profile bench -p ferrolb-speaker -p ferrolb-controller -p ferrolb-e2e --bins --bench
//! failover`: the bench's profile and features, so the libraries `cargo bench` just built are
//! reused), unless `FERROLB_FAILOVER_NO_BUILD=1` or `FERROLB_BIN_DIR` is set. Every load and
//! probe is bounded in count and time; nothing touches the root namespace.
//!
//! Environment:
//! - `FERROLB_FAILOVER_REPS` (10): repetitions per way and system (at least 1).
//! - `FERROLB_FAILOVER_WAYS` (`kill,pause,link`): which failures.
//! - `FERROLB_FAILOVER_ONLY` (all): a comma list of `ferrolb`, `keepalived`, `resolve`, `scale`.
//! - `FERROLB_FAILOVER_HOLD_DOWN_MS` (2000): the speakers' `--l2-hold-down`.
//! - `FERROLB_FAILOVER_RESOLVE_REPS` (5): new Services measured.
//! - `FERROLB_FAILOVER_SCALE_IPS` (1000): addresses announced by one node.
//! - `FERROLB_FAILOVER_CPU_SECS` (5): the idle CPU window, seconds.
//! - `FERROLB_FAILOVER_ARP_SECS` (10): the ARP load window, seconds (at most 60).
//! - `FERROLB_FAILOVER_NO_BUILD` (unset): do not build the binaries first.
//! - `FERROLB_FAILOVER_SPEAKER_FLAGS` (none): extra speaker flags, space separated, for every
//!   part (e.g. a gossip timing to try).
//! - `FERROLB_FAILOVER_TIMINGS` (`100/40/200,50/20/100,40/15/60`): the gossip timings of part
//!   `timing` (probe period / probe timeout / suspect timeout, ms; see `timing.rs`).
//! - `FERROLB_FAILOVER_TIMING_REPS` (5): kills per timing.
//! - `FERROLB_FAILOVER_LOAD_SECS` (20): how long every core is kept busy per timing (at most 60).
//! - `FERROLB_FAILOVER_HOGS_PER_CORE` (2): busy threads per core then (1 to 8).

/// Progress on stderr, stamped with the time since the benchmark started.
macro_rules! note {
    ($($arg:tt)*) => {
        eprintln!("failover bench [{:6.1} s]: {}", $crate::elapsed(), format!($($arg)*))
    };
}

mod build;
mod child;
mod failover;
mod ferrolb;
mod keepalived;
mod probes;
mod report;
mod resolve;
mod scale;
mod stream;
mod timing;

use failover::Way;
use ferrolb_e2e::bench::{load_average, machine};
use std::process::ExitCode;
use std::time::Duration;

pub use ferrolb_e2e::bench::elapsed;

fn main() -> ExitCode {
    elapsed();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--scenario") {
        return match child::scenario(&args[i + 1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("failover bench scenario: {e}");
                ExitCode::from(1)
            }
        };
    }
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("failover bench: some measurements failed (see the table)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("failover bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// What a run does (from the environment).
#[derive(Clone, Debug)]
pub struct Settings {
    pub reps: usize,
    pub ways: Vec<Way>,
    pub only: Vec<String>,
    pub hold_down: Duration,
    pub resolve_reps: usize,
    pub scale_ips: usize,
    pub cpu_window: Duration,
    pub arp_window: Duration,
    pub speaker_flags: Vec<String>,
    pub timings: Vec<timing::Preset>,
    pub timing_reps: usize,
    pub load_window: Duration,
    pub hogs_per_core: usize,
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let ways = match std::env::var("FERROLB_FAILOVER_WAYS") {
            Ok(v) if !v.trim().is_empty() => v
                .split(',')
                .map(|w| w.trim().parse::<Way>().map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?,
            _ => Way::ALL.to_vec(),
        };
        let only: Vec<String> = std::env::var("FERROLB_FAILOVER_ONLY")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        for part in &only {
            anyhow::ensure!(
                ["ferrolb", "keepalived", "resolve", "scale", "timing"].contains(&part.as_str()),
                "FERROLB_FAILOVER_ONLY: unknown part {part:?} (use ferrolb, keepalived, resolve, scale, timing)"
            );
        }
        let timings = std::env::var("FERROLB_FAILOVER_TIMINGS")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "100/40/200,50/20/100,40/15/60".into())
            .split(',')
            .map(|t| t.parse::<timing::Preset>().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Settings {
            reps: env_or("FERROLB_FAILOVER_REPS", 10usize).max(1),
            ways,
            only,
            hold_down: Duration::from_millis(
                env_or("FERROLB_FAILOVER_HOLD_DOWN_MS", 2000u64).max(100),
            ),
            resolve_reps: env_or("FERROLB_FAILOVER_RESOLVE_REPS", 5usize).max(1),
            scale_ips: env_or("FERROLB_FAILOVER_SCALE_IPS", 1000usize).clamp(1, 4000),
            cpu_window: Duration::from_secs_f64(
                env_or("FERROLB_FAILOVER_CPU_SECS", 5.0f64).clamp(1.0, 60.0),
            ),
            arp_window: Duration::from_secs_f64(
                env_or("FERROLB_FAILOVER_ARP_SECS", 10.0f64).clamp(1.0, 60.0),
            ),
            speaker_flags: std::env::var("FERROLB_FAILOVER_SPEAKER_FLAGS")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            timings,
            timing_reps: env_or("FERROLB_FAILOVER_TIMING_REPS", 5usize).max(1),
            load_window: Duration::from_secs_f64(
                env_or("FERROLB_FAILOVER_LOAD_SECS", 20.0f64).clamp(1.0, 60.0),
            ),
            hogs_per_core: env_or("FERROLB_FAILOVER_HOGS_PER_CORE", 2usize).clamp(1, 8),
        })
    }

    pub fn wanted(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }
}

use ferrolb_e2e::bench::env_or;

fn run() -> anyhow::Result<bool> {
    let settings = Settings::from_env()?;
    build::preflight()?;
    let began = std::time::Instant::now();
    let header = format!(
        "FerroLB layer 2 failover benchmark\n{}\nsettings: {} repetitions per way ({}), speaker --l2-hold-down {:?}, probes every 10 ms",
        machine(&[
            &["keepalived", "--version"],
            &["arping", "--help"],
            &["tcpdump", "--version"]
        ]),
        settings.reps,
        settings
            .ways
            .iter()
            .map(|w| w.name())
            .collect::<Vec<_>>()
            .join(", "),
        settings.hold_down,
    );
    note!("{header}");
    let mut results = report::Results::default();
    if ["ferrolb", "resolve", "scale", "timing"]
        .iter()
        .any(|p| settings.wanted(p))
    {
        let mut lab = ferrolb::FerroLb::up(&settings)?;
        if settings.wanted("ferrolb") {
            results
                .systems
                .push(failover::session(&mut lab, &settings)?);
        }
        if settings.wanted("resolve") {
            results.resolve = Some(resolve::measure(&lab, settings.resolve_reps)?);
        }
        if settings.wanted("scale") {
            results.scale = Some(scale::measure(&lab, &settings)?);
        }
        if settings.wanted("timing") {
            results.timing = timing::measure(&mut lab, &settings.timings, &settings)?;
        }
        lab.down()?;
    }
    if settings.wanted("keepalived") {
        let mut ka = keepalived::Keepalived::up()?;
        for advert in [keepalived::Advert::Default, keepalived::Advert::Fast] {
            ka.start(advert)?;
            results.systems.push(failover::session(&mut ka, &settings)?);
            ka.stop()?;
        }
        ka.down()?;
    }
    println!();
    println!("{header}");
    println!();
    let ok = results.print(&settings);
    println!(
        "ran for {:.0} s; load average at the end: {}",
        began.elapsed().as_secs_f64(),
        load_average()
    );
    Ok(ok)
}
