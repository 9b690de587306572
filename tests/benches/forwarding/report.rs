//! The printed table: what was measured, the target, the ratio to it, and whether it was met.

use std::time::Duration;

enum Line {
    Section(String),
    Row {
        what: String,
        measured: String,
        target: String,
        ratio: String,
        /// `None`: a figure without a target.
        met: Option<bool>,
    },
}

/// Rows in the order they were measured, printed at the end.
#[derive(Default)]
pub struct Report {
    lines: Vec<Line>,
}

impl Report {
    /// A heading for the rows that follow.
    pub fn section(&mut self, title: &str) {
        self.lines.push(Line::Section(title.into()));
    }

    /// A figure without a target.
    pub fn info(&mut self, what: &str, measured: String) {
        self.row(what, measured, String::new(), String::new(), None);
    }

    /// A figure whose target is `value ≥ min_ratio × base` (`base_name` says what base is).
    pub fn at_least(
        &mut self,
        what: &str,
        measured: String,
        value: f64,
        (base, base_name): (f64, &str),
        min_ratio: f64,
    ) {
        let ratio = if base > 0.0 { value / base } else { 0.0 };
        self.row(
            what,
            measured,
            format!("≥ {min_ratio:.2} × {base_name}"),
            format!("{ratio:.2}"),
            Some(ratio >= min_ratio),
        );
    }

    /// A figure shown next to a base, without a target.
    pub fn relative(
        &mut self,
        what: &str,
        measured: String,
        value: f64,
        (base, name): (f64, &str),
    ) {
        let ratio = if base > 0.0 {
            format!("{:.2}", value / base)
        } else {
            "-".into()
        };
        self.row(what, measured, format!("(vs {name})"), ratio, None);
    }

    /// A duration whose target is `< limit`; the ratio is measured / limit.
    pub fn below(&mut self, what: &str, measured: Duration, limit: Duration) {
        self.row(
            what,
            duration(measured),
            format!("< {}", duration(limit)),
            format!("{:.2}", measured.as_secs_f64() / limit.as_secs_f64()),
            Some(measured < limit),
        );
    }

    /// A measurement that could not be made; counts as a missed target when it had one.
    pub fn failed(&mut self, what: &str, error: &str, target: &str) {
        let met = (!target.is_empty()).then_some(false);
        self.row(
            what,
            format!("FAILED: {error}"),
            target.into(),
            "-".into(),
            met,
        );
    }

    fn row(
        &mut self,
        what: &str,
        measured: String,
        target: String,
        ratio: String,
        met: Option<bool>,
    ) {
        self.lines.push(Line::Row {
            what: what.into(),
            measured,
            target,
            ratio,
            met,
        });
    }

    /// The rows whose target was missed.
    pub fn missed(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Row {
                    what,
                    met: Some(false),
                    ..
                } => Some(what.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn print(&self) {
        println!(
            "{:<56} {:>16}  {:<20} {:>6}  result",
            "scenario", "measured", "target", "ratio"
        );
        for l in &self.lines {
            match l {
                Line::Section(t) => println!("\n{t}"),
                Line::Row {
                    what,
                    measured,
                    target,
                    ratio,
                    met,
                } => {
                    let verdict = match met {
                        Some(true) => "met",
                        Some(false) => "MISSED",
                        None => "",
                    };
                    println!("  {what:<54} {measured:>16}  {target:<20} {ratio:>6}  {verdict}");
                }
            }
        }
    }
}

/// `1.23 s`, `45.6 ms`, `789 µs`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.01 {
        format!("{:.1} ms", s * 1e3)
    } else if s >= 0.001 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

/// `9.41 Gbit/s`.
pub fn bits(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2} Gbit/s", bps / 1e9)
    } else {
        format!("{:.0} Mbit/s", bps / 1e6)
    }
}

/// `12,345 /s`.
pub fn rate(per_sec: f64) -> String {
    format!("{} /s", thousands(per_sec.round() as u64))
}

/// `10,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
