//! Continuous load against an echo server, for tests that change things under traffic
//! (endpoint churn, a speaker restart): `ferrolb-lab-echo hold` runs in a host as a lab
//! process, holds long-lived TCP connections that it checks by echoing a line through them,
//! and opens short new connections in a bounded loop. It logs one [`HoldEvent`] per line,
//! stamped with the wall clock, so a test can line events up with the changes it made.
//!
//! ```text
//! held 0 pod=web-a                      a long-lived connection and the pod behind it
//! started at=1700000000000              every held connection is up; new ones follow
//! new at=1700000000020 pod=web-b        a new connection and who answered
//! new at=1700000000040 error=...        one that failed
//! lost 1 at=1700000000100 error=...     a held connection broke (reset, closed, no echo)
//! checks 0 57                           echo checks that held connection passed
//! done                                  the run ended by itself
//! ```

use super::error::{LabError, Result};
use super::instance::{Lab, binary};
use super::probe::Answer;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bounds of a run, whatever it is asked: held connections, new connections, length.
pub const MAX_HOLD: usize = 64;
/// At most this many new connections per run.
pub const MAX_NEW: usize = 10_000;
/// A run never lasts longer than this.
pub const MAX_DURATION: Duration = Duration::from_secs(60);
/// Connecting, reading the pod's line, or an echo: each must happen within this long.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Milliseconds since the Unix epoch: the clock load events are stamped with.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a hold run is asked to do.
#[derive(Clone, Copy, Debug)]
pub struct HoldSpec {
    /// Long-lived connections held for the whole run.
    pub hold: usize,
    /// How long the run lasts (at most 60 s).
    pub duration: Duration,
    /// Pause between new connections.
    pub new_every: Duration,
    /// How often every held connection is checked.
    pub check_every: Duration,
}

impl Default for HoldSpec {
    fn default() -> Self {
        HoldSpec {
            hold: 6,
            duration: Duration::from_secs(4),
            new_every: Duration::from_millis(20),
            check_every: Duration::from_millis(100),
        }
    }
}

/// One line of a hold run's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldEvent {
    /// Held connection `index` is up and `pod` answered it.
    Held { index: usize, pod: String },
    /// Every held connection is up (or failed to come up); new connections follow.
    Started { at: u64 },
    /// A new connection at `at` (Unix ms): the pod that answered, or why it failed.
    New {
        at: u64,
        result: std::result::Result<String, String>,
    },
    /// Held connection `index` broke at `at`; it is not checked again.
    Lost {
        index: usize,
        at: u64,
        error: String,
    },
    /// Held connection `index` passed `count` echo checks.
    Checks { index: usize, count: u64 },
    /// The run ended by itself.
    Done,
}

impl fmt::Display for HoldEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoldEvent::Held { index, pod } => write!(f, "held {index} pod={pod}"),
            HoldEvent::Started { at } => write!(f, "started at={at}"),
            HoldEvent::New {
                at,
                result: Ok(pod),
            } => write!(f, "new at={at} pod={pod}"),
            HoldEvent::New { at, result: Err(e) } => write!(f, "new at={at} error={e}"),
            HoldEvent::Lost { index, at, error } => write!(f, "lost {index} at={at} error={error}"),
            HoldEvent::Checks { index, count } => write!(f, "checks {index} {count}"),
            HoldEvent::Done => f.write_str("done"),
        }
    }
}

impl HoldEvent {
    /// Parse one line (`None` for anything else, such as a stray message).
    pub fn parse(line: &str) -> Option<HoldEvent> {
        let mut words = line.trim().splitn(4, ' ');
        let kind = words.next()?;
        let num =
            |w: Option<&str>, key: &str| -> Option<u64> { w?.strip_prefix(key)?.parse().ok() };
        Some(match kind {
            "held" => HoldEvent::Held {
                index: words.next()?.parse().ok()?,
                pod: words.next()?.strip_prefix("pod=")?.to_string(),
            },
            "started" => HoldEvent::Started {
                at: num(words.next(), "at=")?,
            },
            "new" => {
                let at = num(words.next(), "at=")?;
                let rest = line.trim().splitn(3, ' ').nth(2)?;
                let result = match rest.strip_prefix("pod=") {
                    Some(pod) => Ok(pod.to_string()),
                    None => Err(rest.strip_prefix("error=")?.to_string()),
                };
                HoldEvent::New { at, result }
            }
            "lost" => {
                let index = words.next()?.parse().ok()?;
                let at = num(words.next(), "at=")?;
                let rest = line.trim().splitn(4, ' ').nth(3)?;
                HoldEvent::Lost {
                    index,
                    at,
                    error: rest.strip_prefix("error=")?.to_string(),
                }
            }
            "checks" => HoldEvent::Checks {
                index: words.next()?.parse().ok()?,
                count: words.next()?.parse().ok()?,
            },
            "done" => HoldEvent::Done,
            _ => return None,
        })
    }
}

/// A finished hold run, from its log.
#[derive(Clone, Debug, Default)]
pub struct HoldReport {
    /// The pod behind each held connection, by index (empty for one that never came up: its
    /// failure is in `lost`).
    pub held: Vec<String>,
    /// When the new connections began (Unix ms).
    pub started: u64,
    /// Every new connection: when, and the pod or the error.
    pub new: Vec<(u64, std::result::Result<String, String>)>,
    /// Held connections that broke: index, when, why.
    pub lost: Vec<(usize, u64, String)>,
    /// Echo checks passed, per held connection.
    pub checks: Vec<u64>,
}

impl HoldReport {
    /// Read a whole run's log; it must have ended by itself (`done`).
    pub fn parse(log: &str) -> std::result::Result<HoldReport, String> {
        let mut r = HoldReport::default();
        let mut done = false;
        for event in log.lines().filter_map(HoldEvent::parse) {
            match event {
                HoldEvent::Held { index, pod } => {
                    if r.held.len() <= index {
                        r.held.resize(index + 1, String::new());
                    }
                    r.held[index] = pod;
                }
                HoldEvent::Started { at } => r.started = at,
                HoldEvent::New { at, result } => r.new.push((at, result)),
                HoldEvent::Lost { index, at, error } => r.lost.push((index, at, error)),
                HoldEvent::Checks { count, .. } => r.checks.push(count),
                HoldEvent::Done => done = true,
            }
        }
        let n = r.held.len().max(r.checks.len());
        r.held.resize(n, String::new());
        if done {
            Ok(r)
        } else {
            Err(format!("the hold run did not finish:\n{log}"))
        }
    }

    /// New connections that answered, with the pod, started in `[from, to)` (Unix ms).
    pub fn answered_between(&self, from: u64, to: u64) -> Vec<(u64, &str)> {
        self.new
            .iter()
            .filter(|(at, _)| (from..to).contains(at))
            .filter_map(|(at, r)| r.as_deref().ok().map(|p| (*at, p)))
            .collect()
    }

    /// New connections that failed: when, and why.
    pub fn failed(&self) -> Vec<(u64, &str)> {
        self.new
            .iter()
            .filter_map(|(at, r)| r.as_ref().err().map(|e| (*at, e.as_str())))
            .collect()
    }
}

/// A connection to an echo server, past its first line.
struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connect and read the pod's line: the connection and the pod that answered.
    fn open(to: SocketAddr) -> std::result::Result<(Conn, String), String> {
        let stream = TcpStream::connect_timeout(&to, IO_TIMEOUT).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut conn = Conn {
            reader: BufReader::new(stream),
        };
        let line = conn.line()?;
        let answer = Answer::parse(&line).ok_or_else(|| format!("not an echo answer: {line:?}"))?;
        Ok((conn, answer.pod))
    }

    fn line(&mut self) -> std::result::Result<String, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("closed by the other end".into()),
            Ok(_) => Ok(line.trim_end().to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Send a line through the connection and expect it back.
    fn check(&mut self, seq: u64) -> std::result::Result<(), String> {
        let sent = format!("check {seq}");
        writeln!(self.reader.get_mut(), "{sent}").map_err(|e| e.to_string())?;
        match self.line()? {
            got if got == sent => Ok(()),
            got => Err(format!("sent {sent:?}, echoed {got:?}")),
        }
    }
}

/// Run a hold against `to` and write its events to `out` as they happen (flushed, so a test
/// can watch the log). Bounded by [`MAX_HOLD`], [`MAX_NEW`] and [`MAX_DURATION`].
pub fn run(to: SocketAddr, spec: &HoldSpec, out: &mut impl Write) -> std::io::Result<()> {
    let mut emit = |e: HoldEvent| -> std::io::Result<()> {
        writeln!(out, "{e}")?;
        out.flush()
    };
    let now = || unix_ms(SystemTime::now());
    let mut held: Vec<Option<Conn>> = Vec::new();
    for index in 0..spec.hold.min(MAX_HOLD) {
        match Conn::open(to) {
            Ok((conn, pod)) => {
                emit(HoldEvent::Held { index, pod })?;
                held.push(Some(conn));
            }
            Err(error) => {
                let at = now();
                emit(HoldEvent::Lost { index, at, error })?;
                held.push(None);
            }
        }
    }
    emit(HoldEvent::Started { at: now() })?;
    let begin = Instant::now();
    let duration = spec.duration.min(MAX_DURATION);
    let mut checks = vec![0u64; held.len()];
    let mut next_check = begin;
    let mut seq = 0u64;
    for _ in 0..MAX_NEW {
        if begin.elapsed() >= duration {
            break;
        }
        let at = now();
        let result = Conn::open(to).map(|(_, pod)| pod);
        emit(HoldEvent::New { at, result })?;
        if Instant::now() >= next_check {
            for (index, slot) in held.iter_mut().enumerate() {
                let Some(conn) = slot else { continue };
                seq += 1;
                match conn.check(seq) {
                    Ok(()) => checks[index] += 1,
                    Err(error) => {
                        let at = now();
                        emit(HoldEvent::Lost { index, at, error })?;
                        *slot = None;
                    }
                }
            }
            next_check = Instant::now() + spec.check_every;
        }
        std::thread::sleep(spec.new_every);
    }
    for (index, count) in checks.into_iter().enumerate() {
        emit(HoldEvent::Checks { index, count })?;
    }
    emit(HoldEvent::Done)
}

impl Lab {
    /// Start `ferrolb-lab-echo hold` in host `from` against the echo server at `addr:port`, as
    /// lab process `<what>@<from>`; it returns once every held connection is up.
    pub fn start_hold(
        &self,
        what: &str,
        from: &str,
        addr: IpAddr,
        port: u16,
        spec: &HoldSpec,
    ) -> Result<String> {
        let bin = binary("ferrolb-lab-echo")?;
        let ms = |d: Duration| d.as_millis().to_string();
        let args = [
            bin.to_string_lossy().into_owned(),
            "hold".into(),
            addr.to_string(),
            port.to_string(),
            "--hold".into(),
            spec.hold.to_string(),
            "--duration-ms".into(),
            ms(spec.duration),
            "--new-every-ms".into(),
            ms(spec.new_every),
            "--check-every-ms".into(),
            ms(spec.check_every),
        ];
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let name = self.spawn(what, from, &argv)?;
        self.wait_log(&name, "started at=", Duration::from_secs(10))?;
        Ok(name)
    }

    /// Wait for a hold run to end by itself and read its report.
    pub fn hold_report(&self, name: &str, limit: Duration) -> Result<HoldReport> {
        super::wait::wait_until(&format!("{name} to finish"), limit, || {
            Ok(if self.is_running(name)? {
                Err("still running".to_string())
            } else {
                Ok(())
            })
        })?;
        HoldReport::parse(&self.log(name)?).map_err(LabError::Spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let events = [
            HoldEvent::Held {
                index: 0,
                pod: "web-a".into(),
            },
            HoldEvent::Started { at: 17 },
            HoldEvent::New {
                at: 18,
                result: Ok("web-b".into()),
            },
            HoldEvent::New {
                at: 19,
                result: Err("tcp 10.0.0.1:7000: connection refused (os error 111)".into()),
            },
            HoldEvent::Lost {
                index: 1,
                at: 20,
                error: "echo: connection reset by peer".into(),
            },
            HoldEvent::Checks { index: 0, count: 5 },
            HoldEvent::Done,
        ];
        for e in &events {
            assert_eq!(HoldEvent::parse(&e.to_string()).as_ref(), Some(e), "{e}");
        }
        let log: String = events.iter().map(|e| format!("{e}\n")).collect();
        let r = HoldReport::parse(&log).unwrap();
        assert_eq!(r.held, ["web-a"]);
        assert_eq!(r.started, 17);
        assert_eq!(r.answered_between(0, 100), [(18, "web-b")]);
        assert_eq!(r.failed().len(), 1);
        assert_eq!(r.lost.len(), 1);
        assert_eq!(r.checks, [5]);
        assert!(HoldReport::parse("held 0 pod=x\n").is_err(), "not done");
        // A connection that never came up keeps its place.
        let r = HoldReport::parse(
            "held 0 pod=a\nlost 1 at=1 error=refused\nchecks 0 3\nchecks 1 0\ndone\n",
        )
        .unwrap();
        assert_eq!(r.held, ["a", ""]);
        assert_eq!(r.lost, [(1, 1, "refused".to_string())]);
    }
}
