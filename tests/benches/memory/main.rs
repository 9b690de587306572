//! Memory benchmark: `cargo bench -p ferrolb-e2e --bench memory` (as root: it makes network
//! namespaces; needs iproute2). Issue 14, item 1: at 10,000 Services × 10 endpoints, measured
//! in both sources, speaker VmRSS ≤ 60 MiB and controller VmRSS ≤ 60 MiB, and the memory per
//! additional Service printed in bytes.
//!
//! For each source — `standalone` (a manifest directory, [`standalone`]) and `kubernetes` (the
//! fake API server run in this process, [`kubernetes`]) — the bench loads a cluster shaped
//! like a real one ([`objects`]: LoadBalancer Services with one TCP port and a selector, in 5
//! namespaces, from one IPAddressPool; one EndpointSlice per Service as the EndpointSlice
//! controller writes them; 3 labelled Nodes) and runs the release-built controller and one
//! speaker (`--node node1 --dataplane none --layer2 false --bgp false`: a speaker keeping only
//! the cluster view) in a network namespace of its own (`flbmem<pid><tag>`, deleted at the
//! end; nothing is configured in the root namespace). Both are read only from outside: their
//! metrics on 127.0.0.1 of that namespace and `/proc/<pid>/status`.
//!
//! Memory (VmRSS, VmHWM, RssAnon) of each process is read at three points, each once both
//! have the whole view and have settled ([`measure`]): empty (config and Nodes only), after
//! the first half of the Services with their EndpointSlices, after all of them. "The whole
//! view": the speaker's metrics count the config loaded, the 3 Nodes, every Service, every
//! endpoint and an address for every Service (so the controller's status has reached it), and
//! the controller's count every Service allocated. Memory per additional Service is
//! (VmRSS with all − VmRSS with half) / (Services of the second half). Progress goes to stderr;
//! the tables (with the machine) to stdout. Every wait is bounded and fails naming what it
//! waited for; the binaries are killed and the namespaces deleted on any way out (a panic,
//! SIGINT, SIGTERM included).
//!
//! Environment:
//! - `FERROLB_MEMORY_SERVICES` (10000): Services (1 to 200,000).
//! - `FERROLB_MEMORY_ENDPOINTS` (10): endpoints per Service's EndpointSlice (1 to 1,000).
//! - `FERROLB_MEMORY_ONLY` (both): `standalone` or `kubernetes`.
//! - `FERROLB_MEMORY_SETTLE` (3): seconds to let both settle before each reading.
//! - `FERROLB_MEMORY_LIMIT` (180): seconds each step may take to sync.
//! - `FERROLB_MEMORY_NO_BUILD` (unset): do not build the binaries first (also with
//!   `FERROLB_BIN_DIR`, where they are taken from).

/// Progress on stderr, stamped with the time since the benchmark started.
macro_rules! note {
    ($($arg:tt)*) => {
        eprintln!("memory bench [{:6.1} s]: {}", $crate::elapsed(), format!($($arg)*))
    };
}

mod cleanup;
mod kubernetes;
mod measure;
mod objects;
mod process;
mod report;
mod standalone;

use ferrolb_e2e::bench::{env_or, load_average, machine};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub use ferrolb_e2e::bench::elapsed;

/// Where the cluster comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Standalone,
    Kubernetes,
}

impl Source {
    const ALL: [Source; 2] = [Source::Standalone, Source::Kubernetes];

    pub fn name(self) -> &'static str {
        match self {
            Source::Standalone => "standalone",
            Source::Kubernetes => "kubernetes",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Source::Standalone => "standalone (manifest directory)",
            Source::Kubernetes => "kubernetes (fake API server)",
        }
    }
}

/// What a run does (from the environment).
#[derive(Clone, Debug)]
pub struct Settings {
    pub services: usize,
    pub endpoints: usize,
    pub sources: Vec<Source>,
    pub settle: Duration,
    pub limit: Duration,
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let only = std::env::var("FERROLB_MEMORY_ONLY").unwrap_or_default();
        let only = only.trim();
        let sources = if only.is_empty() {
            Source::ALL.to_vec()
        } else {
            let s = Source::ALL
                .into_iter()
                .find(|s| s.name() == only)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "FERROLB_MEMORY_ONLY: unknown source {only:?} (use standalone or kubernetes)"
                    )
                })?;
            vec![s]
        };
        let services =
            env_or("FERROLB_MEMORY_SERVICES", 10_000usize).clamp(1, objects::MAX_SERVICES);
        let endpoints = env_or("FERROLB_MEMORY_ENDPOINTS", 10usize).clamp(1, 1000);
        anyhow::ensure!(
            services * endpoints <= objects::MAX_ENDPOINTS,
            "{services} Services x {endpoints} endpoints: more than {} pod IPs",
            objects::MAX_ENDPOINTS
        );
        Ok(Settings {
            services,
            endpoints,
            sources,
            settle: Duration::from_secs(env_or("FERROLB_MEMORY_SETTLE", 3u64).min(600)),
            limit: Duration::from_secs(env_or("FERROLB_MEMORY_LIMIT", 180u64).clamp(10, 3600)),
        })
    }
}

fn main() -> ExitCode {
    elapsed();
    cleanup::install();
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("memory bench: a source could not be measured (see the table)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("memory bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run() -> anyhow::Result<bool> {
    let settings = Settings::from_env()?;
    ferrolb_e2e::bench::preflight("memory", &[("ip", "iproute2")], "FERROLB_MEMORY_NO_BUILD")?;
    let began = Instant::now();
    let header = format!(
        "FerroLB memory benchmark: controller and one speaker (--dataplane none --layer2 false \
         --bgp false), VmRSS from /proc/<pid>/status\n{}\n\
         settings: {} Services x {} endpoints (one EndpointSlice each), 3 Nodes, 5 namespaces, \
         settle {} s before each reading",
        machine(&[&["ip", "-V"]]),
        report::thousands(settings.services as u64),
        settings.endpoints,
        settings.settle.as_secs(),
    );
    note!("{header}");
    let mut outcomes = Vec::new();
    for source in &settings.sources {
        note!("source {}", source.title());
        let started = Instant::now();
        let result = match source {
            Source::Standalone => standalone::run(&settings),
            Source::Kubernetes => kubernetes::run(&settings),
        };
        note!(
            "source {} done in {:.0} s",
            source.name(),
            started.elapsed().as_secs_f64()
        );
        outcomes.push(report::Outcome {
            source: *source,
            result: result.map_err(|e| {
                note!("{} FAILED: {e:#}", source.name());
                format!("{e:#}")
            }),
        });
    }
    println!();
    println!("{header}");
    let ok = report::print(&settings, &outcomes);
    println!(
        "ran for {:.0} s; load average at the end: {}",
        began.elapsed().as_secs_f64(),
        load_average()
    );
    Ok(ok)
}
