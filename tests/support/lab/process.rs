//! Long-running lab processes (daemons, echo servers, the controller and speakers): started in
//! their host's namespace with output captured to a log file, and stopped, killed, paused or
//! resumed by name.

use super::cmd;
use super::error::{LabError, Result};
use super::instance::Lab;
use super::registry;
use rustix::process::Signal;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// How many lines of a packet capture a failed test's log dump shows.
const CAPTURE_LINES: usize = 5;

/// A process the lab started.
pub struct LabProcess {
    /// Its name in the lab: `<what>@<host>`, e.g. `bird@router`, `speaker@node1`.
    pub name: String,
    /// The host it runs in.
    pub host: String,
    /// Its pid.
    pub pid: u32,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Child,
}

impl LabProcess {
    /// Wait for the (already signalled) process so it does not stay a zombie.
    pub(crate) fn reap(&mut self) -> std::result::Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(_)) => Ok(()),
            _ => {
                // Still running after the namespace sweep: it must have escaped it.
                let _ = self.child.kill();
                self.child
                    .wait()
                    .map(drop)
                    .map_err(|e| format!("{}: {e}", self.name))
            }
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Lab {
    /// Start `argv` in `host` as a long-running process called `what@host`, with stdout and
    /// stderr going to `logs/<what>@<host>.log` in the lab directory. Returns its name.
    pub fn spawn(&self, what: &str, host: &str, argv: &[&str]) -> Result<String> {
        let h = self.host(host)?;
        let name = format!("{what}@{}", h.name);
        if self.procs().iter().any(|p| p.name == name) {
            return Err(LabError::Spec(format!(
                "a process named {name} already runs"
            )));
        }
        let log = self.dir.join("logs").join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(super::error::io(&log))?;
        let err = file.try_clone().map_err(super::error::io(&log))?;
        let mut c = cmd::in_netns(&h.netns, argv);
        // Plain logs: they are files, read by people and by `wait_log`.
        c.env("NO_COLOR", "1")
            // The data path's passes too (a line per program), so a log shows whether and
            // when a speaker programmed; an explicit --log wins.
            .env("FERROLB_LOG", "info,ferrolb_speaker::dataplane=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err));
        let line = cmd::describe(&c);
        // Under the registry lock: a SIGINT handler tearing the lab down waits for this.
        let child = registry::guarded(|| {
            c.spawn().map_err(|e| LabError::Command {
                host: h.name.clone(),
                command: line.clone(),
                status: format!("could not start: {e}"),
                stderr: String::new(),
            })
        })?;
        self.procs().push(LabProcess {
            name: name.clone(),
            host: h.name.clone(),
            pid: child.id(),
            log,
            child,
        });
        Ok(name)
    }

    pub(crate) fn procs(&self) -> std::sync::MutexGuard<'_, Vec<LabProcess>> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_proc<T>(&self, name: &str, f: impl FnOnce(&mut LabProcess) -> T) -> Result<T> {
        let mut procs = self.procs();
        let known = procs
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
            .join(", ");
        match procs.iter_mut().find(|p| p.name == name) {
            Some(p) => Ok(f(p)),
            None => Err(LabError::Unknown {
                kind: "process",
                name: name.into(),
                known,
            }),
        }
    }

    /// Names of the lab's processes, in start order.
    pub fn process_names(&self) -> Vec<String> {
        self.procs().iter().map(|p| p.name.clone()).collect()
    }

    /// The pid of a lab process.
    pub fn pid(&self, name: &str) -> Result<u32> {
        self.with_proc(name, |p| p.pid)
    }

    /// Wait until `ready` succeeds for the lab process `name`, failing at once (with its log)
    /// if the process exits meanwhile.
    pub fn wait_process(
        &self,
        name: &str,
        what: &str,
        limit: std::time::Duration,
        mut ready: impl FnMut() -> std::result::Result<(), String>,
    ) -> Result<()> {
        super::wait::wait_until(what, limit, || {
            if !self.is_running(name)? {
                return Err(super::LabError::Spec(format!(
                    "{name} exited:\n{}",
                    self.log(name)?
                )));
            }
            Ok(ready())
        })
    }

    /// Whether a lab process is still running (false once it exited).
    pub fn is_running(&self, name: &str) -> Result<bool> {
        self.with_proc(name, |p| matches!(p.child.try_wait(), Ok(None)))
    }

    /// Send a signal to a lab process.
    pub fn signal(&self, name: &str, sig: Signal) -> Result<()> {
        self.with_proc(name, |p| registry::signal(p.pid, sig))
    }

    /// Kill a lab process at once (SIGKILL, as a crash would) and wait for it.
    pub fn kill_process(&self, name: &str) -> Result<()> {
        self.with_proc(name, |p| {
            let _ = p.child.kill();
            let _ = p.child.wait();
        })
    }

    /// Stop a lab process gracefully (SIGTERM, then SIGKILL after 5 s) and wait for it.
    pub fn stop_process(&self, name: &str) -> Result<()> {
        self.with_proc(name, |p| {
            registry::signal(p.pid, Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(p.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
        })
    }

    /// Wait until a lab process exits by itself (after a signal the test sent): unlike
    /// [`Lab::stop_process`], one that hangs past `limit` is an error, not killed quietly.
    pub fn wait_exit(&self, name: &str, limit: Duration) -> Result<()> {
        super::wait::wait_until(&format!("{name} to exit by itself"), limit, || {
            Ok(if self.is_running(name)? {
                Err("still running".to_string())
            } else {
                Ok(())
            })
        })
    }

    /// Freeze a lab process (SIGSTOP): it keeps its sockets but does nothing, like a hung one.
    pub fn pause_process(&self, name: &str) -> Result<()> {
        self.signal(name, Signal::STOP)
    }

    /// Let a paused lab process run again (SIGCONT).
    pub fn resume_process(&self, name: &str) -> Result<()> {
        self.signal(name, Signal::CONT)
    }

    /// Forget a process that has exited, so one of the same name can be started again.
    pub fn forget_process(&self, name: &str) -> Result<()> {
        if self.is_running(name)? {
            return Err(LabError::Spec(format!("{name} is still running")));
        }
        self.procs().retain(|p| p.name != name);
        Ok(())
    }

    /// Everything a lab process has logged so far.
    pub fn log(&self, name: &str) -> Result<String> {
        let path = self.with_proc(name, |p| p.log.clone())?;
        std::fs::read_to_string(&path).map_err(super::error::io(&path))
    }

    /// Print the last `lines` lines of every process's log to stderr.
    pub fn print_logs(&self, lines: usize) {
        for p in self.procs().iter() {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            // A capture's packets are what its test asserts on (and says so when it fails);
            // a few lines show it ran without pushing the daemons' logs and the error away.
            let lines = if p.name.starts_with(super::ops::CAPTURE) {
                lines.min(CAPTURE_LINES)
            } else {
                lines
            };
            eprintln!(
                "----- {} (pid {}, {}) -----\n{}",
                p.name,
                p.pid,
                p.log.display(),
                last_lines(&text, lines)
            );
        }
    }

    /// Wait until the log of `name` contains `needle` (e.g. a readiness line).
    pub fn wait_log(&self, name: &str, needle: &str, limit: Duration) -> Result<()> {
        super::wait::wait_until(&format!("{needle:?} in the log of {name}"), limit, || {
            if !self.is_running(name)? {
                return Err(LabError::Spec(format!(
                    "{name} exited before logging {needle:?}:\n{}",
                    last_lines(&self.log(name)?, 20)
                )));
            }
            let log = self.log(name)?;
            Ok(if log.contains(needle) {
                Ok(())
            } else {
                Err(last_lines(&log, 3))
            })
        })
    }
}
