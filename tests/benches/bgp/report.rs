//! The printed tables, FerroLB and GoBGP side by side, with the targets of issue #6 and
//! whether they were met; then what each figure means.

use crate::bulk::{Bulk, Side};
use crate::failure::{Row, Way};
use crate::visible::Visible;

#[derive(Default)]
pub struct Results {
    pub visible: Option<Visible>,
    pub bulk: Option<Bulk>,
    pub failure: Option<Vec<Row>>,
    /// Parts that stopped early.
    pub errors: Vec<String>,
}

/// Median and worst.
fn stats(v: &[f64]) -> Option<(f64, f64)> {
    ferrolb_e2e::bench::median_worst(v)
}

/// `1.23 s`, `45 ms`, `7.8 ms`.
fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.01 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

fn pair(v: &[f64]) -> String {
    stats(v).map_or("FAILED".into(), |(m, w)| {
        format!("{} / {}", secs(m), secs(w))
    })
}

fn one(v: Option<f64>) -> String {
    v.map_or("FAILED".into(), secs)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

const W: usize = 46;
const C: usize = 19;

fn line(what: &str, a: &str, b: &str, target: &str) {
    println!("  {what:<W$} {a:>C$} {b:>C$}   {target}");
}

impl Results {
    /// Print everything; false if a measurement failed.
    pub fn print(&self, settings: &crate::Settings) -> bool {
        let mut missed = Vec::new();
        let mut failed = !self.errors.is_empty();
        for e in &self.errors {
            println!("FAILED part {e}");
        }
        if let Some(v) = &self.visible {
            failed |= print_visible(v, settings, &mut missed);
        }
        if let Some(b) = &self.bulk {
            failed |= print_bulk(b, &mut missed);
        }
        if let Some(rows) = &self.failure {
            failed |= print_failure(rows, settings, &mut missed);
        }
        println!();
        print_notes();
        println!();
        if missed.is_empty() {
            println!("every target met");
        } else {
            println!("targets missed: {}", missed.join("; "));
        }
        !failed
    }
}

fn print_visible(v: &Visible, settings: &crate::Settings, missed: &mut Vec<String>) -> bool {
    println!(
        "route visible at BIRD (median / worst of {})",
        settings.reps
    );
    line("", "FerroLB", "GoBGP", "target");
    let met = stats(&v.status).is_some_and(|(_, worst)| worst < 0.1);
    if !met {
        missed.push("route visible < 100 ms".into());
    }
    line(
        "from the status written / the CLI started",
        &pair(&v.status),
        &pair(&v.gobgp),
        &format!("< 100 ms (worst): {}", if met { "met" } else { "MISSED" }),
    );
    line(
        "from the Service manifest written",
        &pair(&v.manifest),
        "-",
        "",
    );
    line(
        "withdrawn: manifest removed / CLI del started",
        &pair(&v.withdrawn),
        &pair(&v.gobgp_withdrawn),
        "",
    );
    for e in &v.errors {
        println!("  failed: {e}");
    }
    println!();
    !v.errors.is_empty()
}

fn memory(s: &Side) -> String {
    match (s.memory, s.rss_before) {
        (Some((rss, hwm)), Some(before)) => {
            format!("{} ({} peak, {} before)", mib(rss), mib(hwm), mib(before))
        }
        _ => "FAILED".into(),
    }
}

fn print_bulk(b: &Bulk, missed: &mut Vec<String>) -> bool {
    println!("{} routes at BIRD", b.routes);
    line("", "FerroLB", "GoBGP", "target");
    let (f, g) = (&b.ferrolb, &b.gobgp);
    line(
        "live: from the write / the injection started",
        &one(f.live),
        &one(g.live),
        "",
    );
    line(
        "live: from the last status written",
        &one(f.after_status),
        "-",
        "",
    );
    line("live: the injecting CLI read them in", "-", &one(g.cli), "");
    let ratio = match (f.session, g.session) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let under = f.session.is_some_and(|s| s < 2.0);
    // Issue 14: at most half GoBGP's time for the same table.
    let faster = ratio.is_some_and(|r| r <= 0.5);
    if !under {
        missed.push(format!("{} routes < 2 s", b.routes));
    }
    if !faster {
        missed.push(format!("{} routes in ≤ 0.5 × GoBGP's time", b.routes));
    }
    line(
        "session: Established to all at BIRD",
        &one(f.session),
        &one(g.session),
        &format!(
            "< 2 s: {}; FerroLB/GoBGP {} (≤ 0.5): {}",
            if under { "met" } else { "MISSED" },
            ratio.map_or("-".into(), |r| format!("{r:.2}")),
            if faster { "met" } else { "MISSED" }
        ),
    );
    line(
        "session: BIRD's enable to Established",
        &one(f.reconnect),
        &one(g.reconnect),
        "(reconnect backoff; not compared)",
    );
    println!("  memory with the routes, VmRSS:");
    println!("    FerroLB speaker: {}", memory(f));
    println!("    GoBGP gobgpd:    {}", memory(g));
    for e in &b.errors {
        println!("  failed: {e}");
    }
    println!();
    !b.errors.is_empty()
}

fn print_failure(rows: &[Row], settings: &crate::Settings, missed: &mut Vec<String>) -> bool {
    println!(
        "node death to withdrawal at BIRD (median / worst of {})",
        settings.fail_reps
    );
    let find = |system: &str, bfd: bool, way: Way| {
        rows.iter()
            .find(|r| r.system == system && r.bfd == bfd && r.way == way)
    };
    let cell = |r: Option<&Row>| r.map_or("-".into(), |r| pair(&r.samples));
    println!(
        "  {:<12} {:>C$} {:>C$} {:>C$}   target",
        "", "FerroLB BFD", "FerroLB hold", "GoBGP hold"
    );
    let hold = crate::setup::HOLD_SECS as f64;
    for way in [Way::Kill, Way::Link] {
        let bfd = find("FerroLB", true, way);
        let target = match way {
            Way::Kill => "(TCP closed by the kernel: at once)".to_string(),
            Way::Link => {
                let worst = |r: Option<&Row>| r.and_then(|r| stats(&r.samples)).map(|s| s.1);
                let bfd_ok = worst(bfd).is_some_and(|w| w <= 0.9);
                let hold_ok = worst(find("FerroLB", false, way)).is_some_and(|w| w <= hold + 0.1);
                if !bfd_ok {
                    missed.push("BFD withdrawal within 900 ms".into());
                }
                if !hold_ok {
                    missed.push(format!("hold-timer withdrawal within {hold} s"));
                }
                format!(
                    "BFD <= 900 ms: {}; hold <= {hold} s: {}",
                    if bfd_ok { "met" } else { "MISSED" },
                    if hold_ok { "met" } else { "MISSED" }
                )
            }
        };
        println!(
            "  {:<12} {:>C$} {:>C$} {:>C$}   {target}",
            way.name(),
            cell(bfd),
            cell(find("FerroLB", false, way)),
            cell(find("GoBGP", false, way)),
        );
    }
    println!("  (GoBGP has no BFD)");
    let mut failed = false;
    for r in rows {
        for e in &r.errors {
            failed = true;
            println!("  failed: {} {} BFD {}: {e}", r.system, r.way.name(), r.bfd);
        }
    }
    println!();
    failed
}

fn print_notes() {
    println!("what the figures are:");
    println!(
        "- route visible: FerroLB from the controller writing the Service's status (file mtime) \
         to BIRD's table having the route from node1; GoBGP from starting `gobgp global rib add` \
         (process start and gRPC included) to BIRD having it from node2; BIRD polled every 1 ms \
         over its control socket."
    );
    println!(
        "- routes at BIRD: BIRD's per-session imported counter, polled every 2 ms. Live: FerroLB \
         through the controller (an allocation and a status file per route), GoBGP through one \
         `gobgp mrt inject global` stream. Session: BIRD disables and re-enables the session; \
         from Established to the whole table imported: the comparison of the two daemons."
    );
    println!(
        "- node death: SIGKILL lets the node's kernel close the TCP session (BIRD withdraws at \
         once); link down silences the node, so BFD (BIRD detects after 3 x 300 ms) or the hold \
         timer decides: 9 s after the last keepalive (sent every 3 s), less up to 25 % (BIRD \
         jitters its BGP timers, RFC 4271 section 10): 3.75-9 s after the cut."
    );
}
