//! A lab leaves nothing behind however its test ends: a panic, SIGTERM or SIGINT to the test
//! process, or a crash that runs no cleanup at all (then the next run's sweep removes it,
//! without touching labs of processes still running).
//!
//! Each case runs this test binary again as a child, in "victim" mode (the ignored test
//! `victim`, selected by FERROLB_LAB_VICTIM), which builds a lab with running processes,
//! prints its prefix and pids, and then panics, waits for a signal, or aborts.

use ferrolb_e2e::lab::{Lab, LabSpec, namespaces_of, registry, sweep_leftovers};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const VICTIM: &str = "FERROLB_LAB_VICTIM";

/// The tests of this file run one at a time: a lab started by one would sweep the lab an
/// aborted victim of another left behind before that test could look at it.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The child's side: never run directly (it is ignored), only by the tests below.
#[test]
#[ignore = "run as a child process by the other tests in this file"]
fn victim() {
    let mode = std::env::var(VICTIM).expect("FERROLB_LAB_VICTIM");
    let lab = Lab::up(LabSpec::with_nodes(2)).expect("lab");
    lab.start_speakers().expect("speakers");
    let pids: Vec<String> = lab
        .process_names()
        .iter()
        .map(|n| lab.pid(n).unwrap().to_string())
        .collect();
    println!("VICTIM {} {}", lab.prefix(), pids.join(","));
    match mode.as_str() {
        "panic" => panic!("the victim panics on purpose"),
        "abort" => std::process::abort(),
        _ => {
            println!("READY");
            std::thread::sleep(Duration::from_secs(60));
            panic!("no signal came");
        }
    }
}

struct Victim {
    child: Child,
    prefix: String,
    pids: Vec<u32>,
    lines: mpsc::Receiver<String>,
}

impl Victim {
    /// The next line the victim prints, within 30 s.
    fn line(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(e) => {
                let _ = self.child.kill();
                let mut err = String::new();
                let _ =
                    std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut err);
                panic!("no line from the victim ({e}); its stderr:\n{err}");
            }
        }
    }
}

fn spawn_victim(mode: &str) -> Victim {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "victim",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(VICTIM, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read on a thread, so waiting for a line has a deadline.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut v = Victim {
        child,
        prefix: String::new(),
        pids: Vec::new(),
        lines,
    };
    // libtest may print "test victim ... " on the same line first.
    let line = loop {
        let l = v.line();
        if let Some(i) = l.find("VICTIM ") {
            break l[i..].to_string();
        }
    };
    let mut words = line.split_whitespace().skip(1);
    v.prefix = words.next().unwrap().to_string();
    v.pids = words
        .next()
        .unwrap()
        .split(',')
        .map(|p| p.parse().unwrap())
        .collect();
    v
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the victim did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: u32) -> bool {
    // Orphans killed by a sweep may linger as zombies until init reaps them: those are dead.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

fn assert_clean(v: &Victim) {
    assert!(
        namespaces_of(&v.prefix).is_empty(),
        "{:?}",
        namespaces_of(&v.prefix)
    );
    assert!(
        !registry::lab_dir(&v.prefix).exists(),
        "{} is left",
        v.prefix
    );
    let left: Vec<u32> = v.pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "lab processes left: {left:?}");
}

#[test]
fn a_panic_inside_a_test_leaves_nothing_and_prints_the_logs() {
    let _serial = serial();
    let mut v = spawn_victim("panic");
    assert_eq!(
        v.pids.len(),
        5,
        "bird, 2 echo servers, 2 speakers: {:?}",
        v.pids
    );
    let status = wait_exit(&mut v.child);
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(v.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("the victim panics on purpose"), "{stderr}");
    assert!(
        stderr.contains("----- speaker@node1"),
        "logs are printed on failure: {stderr}"
    );
    assert_clean(&v);
}

fn signalled(sig: rustix::process::Signal, code: i32) {
    let _serial = serial();
    let mut v = spawn_victim("signal");
    assert_eq!(v.line(), "READY");
    assert!(!namespaces_of(&v.prefix).is_empty());
    registry::signal(v.child.id(), sig);
    let status = wait_exit(&mut v.child);
    assert_eq!(status.code(), Some(code), "{status:?}");
    assert_clean(&v);
}

#[test]
fn sigterm_to_the_test_process_leaves_nothing() {
    signalled(rustix::process::Signal::TERM, 128 + 15);
}

#[test]
fn sigint_to_the_test_process_leaves_nothing() {
    signalled(rustix::process::Signal::INT, 128 + 2);
}

#[test]
fn the_sweep_removes_labs_of_dead_processes_only() -> anyhow::Result<()> {
    let _serial = serial();
    // A lab of this (live) process must survive the sweep.
    let mine = Lab::up(LabSpec {
        nodes: 1,
        ..LabSpec::default().router(None)
    })?;
    let mut v = spawn_victim("abort");
    let status = wait_exit(&mut v.child);
    assert!(!status.success());
    // Nothing ran on abort: the victim's lab is all there, processes included.
    assert_eq!(
        namespaces_of(&v.prefix).len(),
        9,
        "{:?}",
        namespaces_of(&v.prefix)
    );
    assert!(v.pids.iter().all(|p| alive(*p)));
    let swept = sweep_leftovers();
    assert!(swept.contains(&v.prefix), "{swept:?}");
    assert!(!swept.iter().any(|p| p == mine.prefix()), "{swept:?}");
    assert_clean(&v);
    assert_eq!(namespaces_of(mine.prefix()).len(), 7);
    mine.connect_tcp("client1", mine.pods()[0].addr(false).unwrap())?;
    mine.down()?;
    Ok(())
}
