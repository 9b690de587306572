//! Connection-rate load: many short TCP connections to an echo server (connect, read its
//! line, close), bounded in count and time, from inside a lab host (`ferrolb-lab-echo cps ADDR
//! PORT`). The forwarding benchmark reads the one-line report it prints.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a run does.
#[derive(Clone, Copy, Debug)]
pub struct CpsOptions {
    /// The echo server.
    pub to: SocketAddr,
    /// Connections in all, at most.
    pub conns: u64,
    /// Connections at once (threads).
    pub concurrency: usize,
    /// No connection starts after this long.
    pub duration: Duration,
    /// Per connection: connect and read within this long.
    pub timeout: Duration,
}

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpsReport {
    /// Connections that answered with a line.
    pub ok: u64,
    /// Connections that failed (refused, timed out, no line).
    pub errors: u64,
    /// How long the run took.
    pub secs: f64,
}

impl CpsReport {
    /// Answered connections per second.
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.ok as f64 / self.secs
        } else {
            0.0
        }
    }

    /// The report as one line: `ok=N errors=N secs=S cps=R`.
    pub fn line(&self) -> String {
        format!(
            "ok={} errors={} secs={:.3} cps={:.1}",
            self.ok,
            self.errors,
            self.secs,
            self.rate()
        )
    }

    /// Parse [`CpsReport::line`].
    pub fn parse(line: &str) -> Option<CpsReport> {
        let (mut ok, mut errors, mut secs) = (None, None, None);
        for word in line.split_whitespace() {
            match word.split_once('=')? {
                ("ok", v) => ok = v.parse().ok(),
                ("errors", v) => errors = v.parse().ok(),
                ("secs", v) => secs = v.parse().ok(),
                _ => {}
            }
        }
        Some(CpsReport {
            ok: ok?,
            errors: errors?,
            secs: secs?,
        })
    }
}

/// One short connection: connect, read the server's first line, close.
fn one(to: SocketAddr, timeout: Duration) -> bool {
    let Ok(c) = TcpStream::connect_timeout(&to, timeout) else {
        return false;
    };
    if c.set_read_timeout(Some(timeout)).is_err() {
        return false;
    }
    let mut line = String::new();
    matches!(BufReader::new(c).read_line(&mut line), Ok(n) if n > 0)
}

/// Run the load and report; bounded by `conns` and `duration`.
pub fn run(opts: CpsOptions) -> CpsReport {
    let started = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let begin = Instant::now();
    let threads: Vec<_> = (0..opts.concurrency.max(1))
        .map(|_| {
            let (started, ok, errors) = (started.clone(), ok.clone(), errors.clone());
            std::thread::spawn(move || {
                while begin.elapsed() < opts.duration
                    && started.fetch_add(1, Ordering::Relaxed) < opts.conns
                {
                    let counter = if one(opts.to, opts.timeout) {
                        &ok
                    } else {
                        &errors
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    CpsReport {
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        secs: begin.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips() {
        let r = CpsReport {
            ok: 1200,
            errors: 3,
            secs: 2.0,
        };
        assert_eq!(r.rate(), 600.0);
        assert_eq!(CpsReport::parse(&r.line()), Some(r));
        assert_eq!(CpsReport::parse("nonsense"), None);
    }
}
