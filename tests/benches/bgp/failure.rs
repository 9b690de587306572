//! Node death to withdrawal at BIRD. Each daemon advertises one steady route (FerroLB: the
//! Service `steady`, GoBGP: 10.251.1.1/32); the node fails, and the bench polls BIRD every
//! millisecond until that route is no longer there from the node's session.
//!
//! Ways: `kill` (SIGKILL of the speaker / gobgpd: the node's kernel closes the TCP session,
//! so BIRD hears of it at once, whatever the timers) and `link` (the node's eth0 set down:
//! nothing more leaves the node, as when it loses power; only BFD or the hold timer tell).
//! Modes: FerroLB with BFD (300 ms × 3; BIRD detects after 3 × 300 ms of silence) and with
//! the hold timer alone (9 s, which BIRD shortens by up to 25 % at random, as RFC 4271
//! section 10 suggests: 3.75-9 s after a cut); GoBGP with the hold timer (it has no BFD).
//!
//! After each failure the node comes back (daemon restarted, link up) and the bench waits for
//! the session and the route before the next one.

use crate::setup::{self, Bench, SLOW, service, slices};
use crate::{gobgp, now, poll};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Way {
    Kill,
    Link,
}

impl Way {
    pub fn name(self) -> &'static str {
        match self {
            Way::Kill => "SIGKILL",
            Way::Link => "link down",
        }
    }
}

/// One line of the table: a system, a mode and a way, with its samples (seconds).
pub struct Row {
    pub system: &'static str,
    pub bfd: bool,
    pub way: Way,
    pub samples: Vec<f64>,
    pub errors: Vec<String>,
}

const GOBGP_PREFIX: &str = "10.251.1.1/32";

pub fn measure(b: &mut Bench, reps: usize) -> anyhow::Result<Vec<Row>> {
    // FerroLB's steady Service.
    b.lab
        .write_manifest("steady-slices.yaml", &slices(&b.lab, "steady"))?;
    b.lab
        .write_manifest("steady.yaml", &service("steady", None))?;
    let ip = b.lab.wait_service_ips("default", "steady", SLOW)?[0];
    let prefix = format!("{ip}/32");
    b.wait_route(setup::PROTO, &prefix, true)?;
    gobgp::add(&b.lab, GOBGP_PREFIX)?;
    b.wait_route(gobgp::PROTO, GOBGP_PREFIX, true)?;

    let mut rows = Vec::new();
    for bfd in [true, false] {
        note!("failure: FerroLB, BFD {}", if bfd { "on" } else { "off" });
        b.set_bfd(bfd)?;
        for way in [Way::Kill, Way::Link] {
            rows.push(series(b, reps, "FerroLB", bfd, way, &prefix));
        }
    }
    for way in [Way::Kill, Way::Link] {
        note!("failure: GoBGP, {}", way.name());
        rows.push(series(b, reps, "GoBGP", false, way, GOBGP_PREFIX));
    }
    Ok(rows)
}

fn series(
    b: &mut Bench,
    reps: usize,
    system: &'static str,
    bfd: bool,
    way: Way,
    prefix: &str,
) -> Row {
    let mut row = Row {
        system,
        bfd,
        way,
        samples: Vec::new(),
        errors: Vec::new(),
    };
    for i in 0..reps {
        match once(b, system, way, prefix) {
            Ok(s) => {
                note!(
                    "{system} {}, BFD {bfd}, {}/{reps}: withdrawn after {:.1} ms",
                    way.name(),
                    i + 1,
                    s * 1e3
                );
                row.samples.push(s);
            }
            Err(e) => {
                note!("{system} {} {}/{reps}: FAILED: {e:#}", way.name(), i + 1);
                row.errors.push(format!("{e:#}"));
            }
        }
    }
    row
}

/// One failure: seconds from it to the route gone; the node is back when this returns.
fn once(b: &mut Bench, system: &str, way: Way, prefix: &str) -> anyhow::Result<f64> {
    let ferrolb = system == "FerroLB";
    let (node, proto) = if ferrolb {
        (setup::NODE, setup::PROTO)
    } else {
        (gobgp::NODE, gobgp::PROTO)
    };
    let process = if ferrolb {
        setup::SPEAKER
    } else {
        gobgp::PROCESS
    };
    // Settled: up (with BFD, BFD too) and advertising.
    if ferrolb {
        b.wait_ready()?;
    } else {
        b.wait_established(proto)?;
    }
    b.wait_route(proto, prefix, true)?;
    // Out of step with the keepalives (every 3 s), so the hold timer's phase varies between
    // repetitions instead of repeating one case.
    let phase = (now() * 1e3) as u64 % 3000;
    std::thread::sleep(Duration::from_millis(300 + phase));
    let failed = now();
    match way {
        Way::Kill => b.lab.kill_process(process)?,
        Way::Link => b.lab.set_link(node, "eth0", false)?,
    }
    let bird = &mut b.bird;
    let limit = Duration::from_secs(setup::HOLD_SECS) + SLOW;
    let gone = poll(
        &format!("{prefix} gone from {proto}"),
        Duration::from_millis(1),
        limit,
        || Ok((!bird.sources(prefix)?.iter().any(|p| p == proto)).then(now)),
    );
    // Back in any case, before reporting.
    match way {
        Way::Kill => {
            b.lab.forget_process(process)?;
            if ferrolb {
                b.start_speaker()?;
            } else {
                gobgp::start(&b.lab)?;
                // A restarted gobgpd has an empty RIB.
                gobgp::add(&b.lab, prefix)?;
            }
        }
        Way::Link => b.lab.set_link(node, "eth0", true)?,
    }
    let gone = gone?;
    Ok(gone - failed)
}
