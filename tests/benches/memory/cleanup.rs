//! What the bench leaves running is undone on every way out: children are killed and network
//! namespaces deleted on drop (panics included), and on SIGINT/SIGTERM a handler thread does
//! the same for whatever is still registered here before the process exits.

use ferrolb_e2e::ChildGuard;
use ferrolb_e2e::netns::Netns;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
struct Live {
    pids: Vec<u32>,
    namespaces: Vec<String>,
    shutting_down: bool,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    pids: Vec::new(),
    namespaces: Vec::new(),
    shutting_down: false,
});

fn live() -> MutexGuard<'static, Live> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Install the SIGINT/SIGTERM handler (once, at the start).
pub fn install() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("memory bench: cannot install the SIGINT/SIGTERM handler: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let mut l = live();
            l.shutting_down = true;
            for pid in l.pids.drain(..) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            for ns in l.namespaces.drain(..) {
                let _ = Command::new("ip").args(["netns", "del", &ns]).status();
                eprintln!("memory bench: signal {sig}: deleted network namespace {ns}");
            }
            std::process::exit(128 + sig);
        }
    });
}

/// Spawn `c`, registered for the signal handler (under its lock, so a signal never misses a
/// child that is being started).
pub fn spawn(c: &mut Command) -> anyhow::Result<ChildGuard> {
    let mut l = live();
    anyhow::ensure!(!l.shutting_down, "shutting down");
    let child = c.spawn()?;
    l.pids.push(child.id());
    Ok(ChildGuard(child))
}

pub fn forget_pid(pid: u32) {
    live().pids.retain(|p| *p != pid);
}

/// A network namespace with its loopback up, deleted when dropped (or on a signal).
pub struct Namespace(pub Netns);

impl Namespace {
    pub fn new(tag: &str) -> anyhow::Result<Namespace> {
        let mut l = live();
        anyhow::ensure!(!l.shutting_down, "shutting down");
        let ns = Netns::with_loopback("mem", tag);
        l.namespaces.push(ns.name().to_string());
        note!("network namespace {}", ns.name());
        Ok(Namespace(ns))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let name = self.0.name().to_string();
        live().namespaces.retain(|n| *n != name);
        // Netns's own drop deletes it.
    }
}
