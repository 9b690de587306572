//! The benchmark re-runs itself inside a lab node (`ip netns exec <node> <bench> --scenario
//! ...`) for whatever must happen in the node's network namespace: programming nftables and
//! running the speaker's data paths. Helpers for both sides of that.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use ferrolb_e2e::bench::require_lab_netns;

/// Print one figure for the parent (`figure KEY VALUE`), at once.
pub fn emit(key: &str, value: f64) {
    println!("figure {key} {value}");
    let _ = std::io::stdout().flush();
}

/// [`emit`] a duration in seconds.
pub fn emit_time(key: &str, d: Duration) {
    emit(key, d.as_secs_f64());
}

/// The figures in a child's output.
pub fn figures(lines: &[String]) -> BTreeMap<String, f64> {
    lines
        .iter()
        .filter_map(|l| {
            let mut w = l.strip_prefix("figure ")?.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect()
}

/// Run `argv` to completion within `limit`, returning the stdout lines it printed (also when
/// it failed or was killed at the limit, so figures measured before that are kept) and, if
/// it did not succeed, why.
pub fn run_bounded(argv: &[String], limit: Duration) -> (Vec<String>, Option<String>) {
    let mut child = match Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return (Vec::new(), Some(format!("cannot start {}: {e}", argv[0]))),
    };
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut stderr = child.stderr.take().expect("piped stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let mut problem = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(status)) => {
                problem = Some(status.to_string());
                break;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                problem = Some(format!("killed after {limit:?}"));
                break;
            }
        }
    }
    let _ = reader.join();
    let stderr = err_reader.join().unwrap_or_default();
    if let Some(p) = problem.as_mut()
        && let Some(last) = stderr.lines().rev().find(|l| !l.trim().is_empty())
    {
        p.push_str(": ");
        p.push_str(last.trim());
    }
    (rx.try_iter().collect(), problem)
}
