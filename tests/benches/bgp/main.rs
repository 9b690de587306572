//! BGP benchmark, in the lab: `cargo bench -p ferrolb-e2e --bench bgp` (as root; needs
//! iproute2, bird2 and gobgpd, which `tests/install-deps.sh` installs). Issue #6, section 5.
//!
//! One lab, one router running BIRD 2, two nodes: FerroLB's speaker in node1 and GoBGP's
//! gobgpd (the Debian package, driven with its `gobgp` CLI) in node2, both eBGP (AS 64512)
//! towards BIRD (AS 64500), both with hold time 9 s, announcing different prefixes of the same
//! sizes to the same BIRD at the same time. BIRD's table is read through its control socket
//! ([`birdc`]), every millisecond where latency is measured. Progress goes to stderr; the
//! table (with the machine it ran on) to stdout at the end. About 4 minutes on a 2-core
//! machine with the defaults, after building the binaries.
//!
//! 1. **Route visible** (part `visible`): FerroLB: a LoadBalancer Service is written (its
//!    endpoints already there); timed from the controller writing its status (the status
//!    file's mtime: what the speaker reacts to) and from writing the manifest, to BIRD having
//!    the route from node1. GoBGP: from starting `gobgp global rib add <prefix>` to BIRD
//!    having it from node2. Then each is deleted (manifest removed / `gobgp global rib del`)
//!    and the withdrawal timed the same way.
//! 2. **10,000 routes** (part `bulk`): FerroLB: 10,000 single-stack Services with an endpoint
//!    each, in pool `big` (10.64.0.0/15), written at once while the session is up: timed from
//!    the write, and from the controller's last status write, to BIRD having all 10,000
//!    (BIRD's per-protocol "imported" count). GoBGP: 10,000 /32s (10.128.0.0/15) injected
//!    with `gobgp mrt inject global` from a TABLE_DUMP_V2 file the bench writes ([`mrt`]),
//!    through a FIFO (see [`bulk`]): one gRPC stream, the fastest bulk path GoBGP's CLI has
//!    (10,000 `gobgp global rib add` processes would measure process starts, not GoBGP). Then, for both, the session is
//!    closed and reopened from BIRD (`disable`/`enable` of the protocol) and the full table
//!    transfer is timed from BIRD seeing the session Established to all 10,000 in its table:
//!    the same work for both daemons, and the figure compared (ratio FerroLB / GoBGP). The
//!    RSS (VmRSS, and peak VmHWM) of the speaker and of gobgpd with the 10,000 routes.
//! 3. **Node death** (part `failure`): the node's daemon SIGKILLed (its kernel closes the TCP
//!    session at once), or the node's link cut (`ip link set eth0 down` in the node: nothing
//!    is sent any more), timed from the failure to BIRD no longer having the node's route.
//!    FerroLB with the peer's `bfdProfile` (300 ms × 3, MetalLB's defaults; BIRD runs BFD on
//!    its side) and without (hold timer 9 s); GoBGP has no BFD, hold timer only.
//!
//! Every load and wait is bounded; nothing touches the root namespace (the BIRD socket is a
//! file).
//!
//! Environment:
//! - `FERROLB_BGP_REPS` (5): route-visible repetitions per system.
//! - `FERROLB_BGP_ROUTES` (10000): routes of the bulk part (1 to 120000; 100000 is the issue's
//!   large case).
//! - `FERROLB_BGP_FAIL_REPS` (2): repetitions per failure way and mode.
//! - `FERROLB_BGP_ONLY` (all): a comma list of `visible`, `bulk`, `failure`.
//! - `FERROLB_BGP_NO_BUILD` (unset): do not build the binaries first (also with
//!   `FERROLB_BIN_DIR`).

/// Progress on stderr, stamped with the time since the benchmark started.
macro_rules! note {
    ($($arg:tt)*) => {
        eprintln!("bgp bench [{:6.1} s]: {}", $crate::elapsed(), format!($($arg)*))
    };
}

mod birdc;
mod build;
mod bulk;
mod failure;
mod gobgp;
mod mrt;
mod report;
mod setup;
mod visible;

use ferrolb_e2e::bench::{load_average, machine};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use ferrolb_e2e::bench::elapsed;

/// Wall-clock seconds: comparable with file modification times.
pub fn now() -> f64 {
    epoch(SystemTime::now())
}

pub fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Polls `f` every `every` until it returns `Some`, for at most `limit`.
pub fn poll<T>(
    what: &str,
    every: Duration,
    limit: Duration,
    mut f: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

fn main() -> ExitCode {
    elapsed();
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("bgp bench: some measurements failed (see the table)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("bgp bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// What a run does (from the environment).
#[derive(Clone, Debug)]
pub struct Settings {
    pub reps: usize,
    pub routes: usize,
    pub fail_reps: usize,
    pub only: Vec<String>,
}

const PARTS: [&str; 3] = ["visible", "bulk", "failure"];

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let only: Vec<String> = std::env::var("FERROLB_BGP_ONLY")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        for part in &only {
            anyhow::ensure!(
                PARTS.contains(&part.as_str()),
                "FERROLB_BGP_ONLY: unknown part {part:?} (use {})",
                PARTS.join(", ")
            );
        }
        Ok(Settings {
            reps: env_or("FERROLB_BGP_REPS", 5usize).clamp(1, 100),
            routes: env_or("FERROLB_BGP_ROUTES", 10_000usize).clamp(1, 120_000),
            fail_reps: env_or("FERROLB_BGP_FAIL_REPS", 2usize).clamp(1, 20),
            only,
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
        "FerroLB BGP benchmark: FerroLB's speaker against GoBGP, announcing to one BIRD\n{}\n\
         settings: {} route-visible repetitions, {} routes in bulk, {} repetitions per failure, \
         hold time {} s, BFD 300 ms x 3",
        machine(&[&["bird", "--version"], &["gobgpd", "--version"]]),
        settings.reps,
        settings.routes,
        settings.fail_reps,
        setup::HOLD_SECS,
    );
    note!("{header}");
    let mut bench = setup::Bench::up()?;
    let mut results = report::Results::default();
    if settings.wanted("visible") {
        let r = visible::measure(&mut bench, settings.reps);
        results.visible = part(&mut results.errors, "visible", r);
    }
    if settings.wanted("bulk") {
        let r = bulk::measure(&mut bench, settings.routes);
        results.bulk = part(&mut results.errors, "bulk", r);
    }
    if settings.wanted("failure") {
        let r = failure::measure(&mut bench, settings.fail_reps);
        results.failure = part(&mut results.errors, "failure", r);
    }
    bench.down()?;
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

/// A part that could not go on is reported in the table; the others still run.
fn part<T>(errors: &mut Vec<String>, name: &str, r: anyhow::Result<T>) -> Option<T> {
    r.map_err(|e| {
        note!("{name} FAILED: {e:#}");
        errors.push(format!("{name}: {e:#}"));
    })
    .ok()
}
