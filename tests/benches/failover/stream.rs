//! A process in a lab host whose output the bench reads while it runs (packet captures, the
//! UDP probe, arping): `ip netns exec <host> ...` with stdout and stderr read line by line on
//! threads. Every such process is bounded by its own arguments (a count, a lifetime or
//! `timeout`), stopped by the bench by its pid, killed when dropped, and in any case killed
//! with the lab's namespaces at teardown.

use ferrolb_e2e::lab::{Lab, cmd, registry};
use rustix::process::Signal;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Lines = Arc<Mutex<Vec<String>>>;

pub struct Stream {
    what: String,
    child: Child,
    out: Lines,
    err: Lines,
    readers: Vec<JoinHandle<()>>,
}

fn reader(pipe: impl Read + Send + 'static, into: Lines) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            into.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line);
        }
    })
}

impl Stream {
    /// Start `argv` in lab host `host`.
    pub fn start(lab: &Lab, host: &str, argv: &[&str]) -> anyhow::Result<Stream> {
        let h = lab.host(host)?;
        let mut c = cmd::in_netns(&h.netns, argv);
        let what = format!("`{}` in {host}", argv.join(" "));
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {what}: {e}"))?;
        let (out, err) = (Lines::default(), Lines::default());
        let readers = vec![
            reader(child.stdout.take().expect("piped stdout"), out.clone()),
            reader(child.stderr.take().expect("piped stderr"), err.clone()),
        ];
        Ok(Stream {
            what,
            child,
            out,
            err,
            readers,
        })
    }

    /// Stdout lines from `from` on (by index).
    pub fn lines_from(&self, from: usize) -> Vec<String> {
        let out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        out.get(from..).map(<[String]>::to_vec).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        self.err
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }

    /// Wait until a line of stdout (or stderr) contains `needle`; fail at once if the process
    /// exits first.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let seen = |l: &Lines| {
                l.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .any(|line| line.contains(needle))
            };
            if seen(&self.out) || seen(&self.err) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                anyhow::bail!(
                    "{} exited ({status}) before printing {needle:?}: {}",
                    self.what,
                    self.stderr()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} printed no {needle:?} within {limit:?}: {}",
                self.what,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop it (SIGTERM, SIGKILL after a second), wait for its output and return it all.
    pub fn stop(mut self) -> Vec<String> {
        self.halt();
        let out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        out.clone()
    }

    fn halt(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            registry::signal(self.child.id(), Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(1);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.halt();
    }
}
