//! Naming, ownership and cleanup of lab objects, process-wide.
//!
//! Every lab gets a prefix `flb<owner pid, base 36>-<counter>`; its namespaces are
//! `<prefix>-<host>` and its files live in `$TMPDIR/<prefix>`. Encoding the owner's pid lets
//! a new run sweep what dead runs left behind without touching the labs of test processes that
//! are still running in parallel, and never anything without the prefix.
//!
//! Live labs are registered here so that a SIGINT or SIGTERM handler (installed with the first
//! lab) can tear every one of them down before the process exits. Creating namespaces and
//! starting processes happens under the same lock, so nothing can be added behind the
//! handler's back.

use super::cmd;
use super::error::{LabError, Result};
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

/// What every lab namespace name and directory starts with.
pub const LAB_PREFIX: &str = "flb";
/// Marks a lab's directory, so the sweep removes only directories the lab made.
const MARKER: &str = ".ferrolb-lab";

#[derive(Default)]
struct State {
    live: BTreeSet<String>,
    shutting_down: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    live: BTreeSet::new(),
    shutting_down: false,
});
static COUNTER: AtomicU32 = AtomicU32::new(0);
static HANDLER: Once = Once::new();

fn state() -> MutexGuard<'static, State> {
    // A panic while holding the lock must not stop other labs from cleaning up.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn base36(mut n: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    loop {
        s.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

/// A fresh prefix owned by this process.
pub(crate) fn new_prefix() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{LAB_PREFIX}{}-{n}", base36(std::process::id()))
}

/// The prefix (`flb<pid>-<n>`) and owner pid of a lab namespace or directory name, if it is
/// one.
pub fn parse_name(name: &str) -> Option<(String, u32)> {
    let rest = name.strip_prefix(LAB_PREFIX)?;
    let (pid, rest) = rest.split_once('-')?;
    let n: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let after = &rest[n.len()..];
    if pid.is_empty() || n.is_empty() || !(after.is_empty() || after.starts_with('-')) {
        return None;
    }
    // Linux pids never exceed PID_MAX_LIMIT (2^22): anything larger is not one of ours.
    let owner = u32::from_str_radix(pid, 36)
        .ok()
        .filter(|p| *p <= 1 << 22)?;
    Some((format!("{LAB_PREFIX}{pid}-{n}"), owner))
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purpose: it holds no namespace and will never clean up.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Register a live lab and make sure the signal handler is installed.
pub(crate) fn register(prefix: &str) -> Result<()> {
    HANDLER.call_once(install_handler);
    let mut s = state();
    if s.shutting_down {
        return Err(LabError::ShuttingDown);
    }
    s.live.insert(prefix.into());
    Ok(())
}

/// Forget a lab that has been torn down.
pub(crate) fn unregister(prefix: &str) {
    state().live.remove(prefix);
}

/// Run `f` (which creates namespaces or starts processes) unless a signal handler has begun
/// tearing labs down; the handler waits for `f` to finish.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let s = state();
    if s.shutting_down {
        return Err(LabError::ShuttingDown);
    }
    let r = f();
    drop(s);
    r
}

fn install_handler() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ferrolb lab: cannot install the SIGINT/SIGTERM handler: {e}");
            return;
        }
    };
    std::thread::Builder::new()
        .name("lab-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                let mut s = state();
                s.shutting_down = true;
                for prefix in std::mem::take(&mut s.live) {
                    let problems = teardown_prefix(&prefix, false);
                    eprintln!("ferrolb lab: {name}: tore down lab {prefix}");
                    for p in problems {
                        eprintln!("ferrolb lab: {prefix}: {p}");
                    }
                }
                std::process::exit(128 + sig);
            }
        })
        .expect("spawn the lab signal thread");
}

/// Every network namespace whose name carries the lab prefix.
pub fn lab_namespaces() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(LAB_PREFIX))
        .collect();
    v.sort();
    v
}

/// The namespaces of the lab with this prefix.
pub fn namespaces_of(prefix: &str) -> Vec<String> {
    let head = format!("{prefix}-");
    lab_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&head))
        .collect()
}

/// The lab's directory for this prefix.
pub fn lab_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(prefix)
}

pub(crate) fn make_lab_dir(prefix: &str) -> Result<PathBuf> {
    let dir = lab_dir(prefix);
    std::fs::create_dir_all(&dir).map_err(super::error::io(&dir))?;
    // FRR drops privileges to the `frr` user, which must reach its files below this directory.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .map_err(super::error::io(&dir))?;
    std::fs::write(dir.join(MARKER), "").map_err(super::error::io(&dir))?;
    Ok(dir)
}

/// Pids of the processes whose network namespace is `ns` (what `ip netns pids` prints).
pub fn netns_pids(ns: &str) -> Vec<u32> {
    let Ok(meta) = std::fs::metadata(Path::new("/run/netns").join(ns)) else {
        return Vec::new();
    };
    let want = format!("net:[{}]", meta.ino());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|l| l.to_string_lossy() == want)
        })
        .collect()
}

/// Send `sig` to `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

/// Stop every process in `namespaces`: SIGTERM, then SIGKILL after `grace`. Returns the pids
/// still alive after that (which should never happen).
pub fn kill_all_in(namespaces: &[String], grace: Duration) -> Vec<u32> {
    use rustix::process::Signal;
    let pids = |ns: &[String]| -> Vec<u32> { ns.iter().flat_map(|n| netns_pids(n)).collect() };
    let first = pids(namespaces);
    for &p in &first {
        signal(p, Signal::CONT); // a paused process cannot act on SIGTERM
        signal(p, Signal::TERM);
    }
    let wait_gone = |limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            let left = pids(namespaces);
            if left.is_empty() || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    if first.is_empty() {
        return Vec::new();
    }
    let left = wait_gone(grace);
    for &p in &left {
        signal(p, Signal::KILL);
    }
    wait_gone(Duration::from_secs(3))
}

/// Remove everything of the lab with this prefix: its processes, namespaces and (unless
/// `keep_dir`) directory. Returns what could not be removed (empty when all is clean).
pub fn teardown_prefix(prefix: &str, keep_dir: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let namespaces = namespaces_of(prefix);
    let left = kill_all_in(&namespaces, Duration::from_millis(1500));
    if !left.is_empty() {
        problems.push(format!("processes survived SIGKILL: {left:?}"));
    }
    for ns in &namespaces {
        if let Err(e) = cmd::ip(&["netns", "del", ns]) {
            problems.push(e.to_string());
        }
    }
    let left = namespaces_of(prefix);
    if !left.is_empty() {
        problems.push(format!("namespaces left: {left:?}"));
    }
    let dir = lab_dir(prefix);
    if !keep_dir
        && dir.join(MARKER).exists()
        && let Err(e) = std::fs::remove_dir_all(&dir)
    {
        problems.push(format!("{}: {e}", dir.display()));
    }
    problems
}

/// Remove what labs of dead processes left behind: namespaces and directories whose name has
/// the lab prefix and whose owner pid is no longer running. Labs of live processes (other
/// tests running in parallel) are left alone. Returns the prefixes swept.
pub fn sweep_leftovers() -> Vec<String> {
    // One sweep at a time: labs starting in parallel would otherwise race to delete the same
    // leftovers and report each other's deletions as failures.
    static SWEEP: Mutex<()> = Mutex::new(());
    let _one = SWEEP.lock().unwrap_or_else(|e| e.into_inner());
    let mut dead = BTreeSet::new();
    let dirs = std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(MARKER).exists())
        .filter_map(|e| e.file_name().into_string().ok());
    for name in lab_namespaces().into_iter().chain(dirs) {
        if let Some((prefix, owner)) = parse_name(&name)
            && !alive(owner)
        {
            dead.insert(prefix);
        }
    }
    for prefix in &dead {
        for p in teardown_prefix(prefix, false) {
            eprintln!("ferrolb lab: sweeping {prefix}: {p}");
        }
    }
    dead.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = new_prefix();
        let (prefix, owner) = parse_name(&format!("{p}-node1")).unwrap();
        assert_eq!(prefix, p);
        assert_eq!(owner, std::process::id());
        assert_eq!(parse_name(&p).unwrap().0, p);
        assert_eq!(
            parse_name("flbzz-12-lan").unwrap(),
            ("flbzz-12".into(), 36 * 36 - 1)
        );
        for bad in [
            "flb",
            "flb-1-x",
            "flbx",
            "flbab-",
            "flbab-x",
            "flbab-1x",
            "other-1-x",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
