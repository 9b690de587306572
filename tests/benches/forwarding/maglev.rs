//! Maglev (`mh`): the time to build the 65,537-entry table for 1,000 backends, and how much of
//! it moves when one backend leaves (ideally only what it owned: 1/1,000).

use crate::report::{self, Report};
use ferrolb_shared::ipvs::maglev::{DEFAULT_TABLE_SIZE, MaglevBackend, MaglevTable, disruption};
use std::time::{Duration, Instant};

const BACKENDS: usize = 1_000;
const BUILDS: usize = 5;

pub fn measure(rep: &mut Report) {
    let backends: Vec<MaglevBackend> = (0..BACKENDS)
        .map(|i| MaglevBackend {
            id: format!("10.244.{}.{}:8080", i / 200 + 1, i % 200 + 10),
            weight: 1,
        })
        .collect();
    let build = |b: &[MaglevBackend]| {
        MaglevTable::build(b, DEFAULT_TABLE_SIZE).expect("1,000 backends fit 65,537 entries")
    };
    let mut times: Vec<Duration> = (0..BUILDS)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(build(&backends));
            t.elapsed()
        })
        .collect();
    times.sort();
    let before = build(&backends);
    let leaving = &backends[BACKENDS / 2].id;
    let rest: Vec<MaglevBackend> = backends
        .iter()
        .filter(|b| &b.id != leaving)
        .cloned()
        .collect();
    let after = build(&rest);
    let moved = disruption(&before, &after);
    let owners = before.owners();
    let owned =
        owners.iter().filter(|o| **o == leaving.as_str()).count() as f64 / owners.len() as f64;
    rep.section(&format!(
        "Maglev (mh): {} entries, {} backends of weight 1",
        report::thousands(DEFAULT_TABLE_SIZE as u64),
        report::thousands(BACKENDS as u64)
    ));
    rep.info(
        &format!("table build (median of {BUILDS})"),
        report::duration(times[BUILDS / 2]),
    );
    let ideal = 1.0 / BACKENDS as f64;
    rep.relative(
        "entries moved when 1 backend leaves",
        format!("{:.3} %", moved * 100.0),
        moved,
        (ideal, "ideal 1/1,000"),
    );
    rep.info(
        "  of which the leaver's own entries",
        format!("{:.3} %", owned * 100.0),
    );
    rep.info(
        "  of which moved between remaining backends",
        format!("{:.3} %", (moved - owned) * 100.0),
    );
    // For comparison: the Maglev paper's advice, a table of at least 100 entries per backend.
    let (before, after) = (build_sized(&backends, BIG), build_sized(&rest, BIG));
    rep.relative(
        "  the same with 100,003 entries (100 per backend)",
        format!("{:.3} %", disruption(&before, &after) * 100.0),
        disruption(&before, &after),
        (ideal, "ideal 1/1,000"),
    );
}

/// The smallest prime of at least 100 entries per backend.
const BIG: usize = 100_003;

fn build_sized(b: &[MaglevBackend], size: usize) -> MaglevTable {
    MaglevTable::build(b, size).expect("a prime larger than the backends")
}
