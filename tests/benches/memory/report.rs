//! The tables on stdout: one per source, then the targets side by side.

use crate::measure::{Point, mib};
use crate::process::Memory;
use crate::{Settings, Source};

/// Issue 14's target for each process at 10,000 Services × 10 endpoints, MiB of VmRSS.
pub const TARGET_MIB: f64 = 60.0;
/// The scale the target is set at.
const TARGET_SCALE: (usize, usize) = (10_000, 10);

/// The measurements of one source, or why there are none.
pub struct Outcome {
    pub source: Source,
    pub result: Result<Vec<Point>, String>,
}

/// Print everything; `false` if a source failed.
pub fn print(settings: &Settings, outcomes: &[Outcome]) -> bool {
    let mut ok = true;
    for o in outcomes {
        println!();
        println!(
            "{}: {} Services x {} endpoints",
            o.source.title(),
            thousands(settings.services as u64),
            settings.endpoints
        );
        match &o.result {
            Ok(points) => source_table(points),
            Err(e) => {
                ok = false;
                println!("  FAILED: {e}");
            }
        }
    }
    println!();
    targets(settings, outcomes);
    ok
}

fn source_table(points: &[Point]) {
    let [empty, half, full] = points else {
        println!("  (expected three points, got {})", points.len());
        return;
    };
    println!(
        "| | empty | {} Services | {} Services | per additional Service |",
        thousands(half.services as u64),
        thousands(full.services as u64)
    );
    println!("|---|---|---|---|---|");
    type Process = fn(&Point) -> Memory;
    type Field = fn(&Memory) -> u64;
    let rows: [(&str, Process, &str, Field); 8] = [
        ("speaker", |p| p.speaker, "VmRSS", |m| m.rss),
        ("speaker", |p| p.speaker, "VmHWM (peak)", |m| m.hwm),
        ("speaker", |p| p.speaker, "RssAnon", |m| m.anon),
        ("speaker", |p| p.speaker, "RssFile", |m| m.file),
        ("controller", |p| p.controller, "VmRSS", |m| m.rss),
        ("controller", |p| p.controller, "VmHWM (peak)", |m| m.hwm),
        ("controller", |p| p.controller, "RssAnon", |m| m.anon),
        ("controller", |p| p.controller, "RssFile", |m| m.file),
    ];
    for (who, process, what, field) in rows {
        let v = |p: &Point| field(&process(p));
        let per = if matches!(what, "VmHWM (peak)" | "RssFile") {
            String::new()
        } else {
            format!(
                "{} bytes",
                signed_thousands(per_service(v(half), v(full), full.services - half.services))
            )
        };
        println!(
            "| {who} {what} | {} | {} | {} | {per} |",
            mib_text(v(empty)),
            mib_text(v(half)),
            mib_text(v(full)),
        );
    }
    println!(
        "| threads: speaker / controller | {} | {} | {} | |",
        threads(empty),
        threads(half),
        threads(full)
    );
    println!(
        "| this step: written / controller synced / speaker synced | {} | {} | {} | |",
        timing(empty),
        timing(half),
        timing(full)
    );
}

fn targets(settings: &Settings, outcomes: &[Outcome]) {
    let at_scale = (settings.services, settings.endpoints) == TARGET_SCALE;
    println!(
        "issue 14 targets at 10,000 Services x 10 endpoints: speaker and controller VmRSS <= {TARGET_MIB} MiB each{}",
        if at_scale {
            ""
        } else {
            " (this run is at another scale: the verdicts below do not apply)"
        }
    );
    println!(
        "| source | speaker VmRSS | controller VmRSS | speaker per Service | controller per Service |"
    );
    println!("|---|---|---|---|---|");
    for o in outcomes {
        let Ok(points) = &o.result else {
            println!("| {} | failed | failed | | |", o.source.name());
            continue;
        };
        let (Some(half), Some(full)) = (points.get(1), points.get(2)) else {
            continue;
        };
        let verdict = |kib: u64| {
            let met = mib(kib) <= TARGET_MIB;
            match (at_scale, met) {
                (false, _) => mib_text(kib),
                (true, true) => format!("{}: met", mib_text(kib)),
                (true, false) => format!("{}: NOT met", mib_text(kib)),
            }
        };
        let per = |a: u64, b: u64| {
            format!(
                "{} bytes",
                signed_thousands(per_service(a, b, full.services - half.services))
            )
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            o.source.name(),
            verdict(full.speaker.rss),
            verdict(full.controller.rss),
            per(half.speaker.rss, full.speaker.rss),
            per(half.controller.rss, full.controller.rss),
        );
    }
    println!(
        "(per additional Service: (VmRSS with all - VmRSS with half) / the Services of the second half)"
    );
}

/// Bytes per Service between two KiB figures `added` Services apart.
fn per_service(before_kib: u64, after_kib: u64, added: usize) -> i64 {
    if added == 0 {
        return 0;
    }
    (after_kib as i64 - before_kib as i64) * 1024 / added as i64
}

fn mib_text(kib: u64) -> String {
    format!("{:.1} MiB", mib(kib))
}

fn threads(p: &Point) -> String {
    format!("{} / {}", p.speaker.threads, p.controller.threads)
}

fn timing(p: &Point) -> String {
    format!(
        "{:.2} / {:.2} / {:.2} s",
        p.write.as_secs_f64(),
        p.controller_synced.as_secs_f64(),
        p.speaker_synced.as_secs_f64()
    )
}

pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn signed_thousands(v: i64) -> String {
    let t = thousands(v.unsigned_abs());
    if v < 0 { format!("-{t}") } else { t }
}
