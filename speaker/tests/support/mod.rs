//! Fixtures for the speaker's tests: the real binary as a child process whose log is
//! collected, a minimal HTTP client for its metrics endpoint (127.0.0.1 only), polling with a
//! deadline.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// No wait in these tests may take longer than this, so a bug never hangs CI.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Poll `f` every 20 ms until it returns `Some`; panic with `what` after [`LIMIT`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The speaker binary, killed when dropped, with its log collected line by line.
pub struct SpeakerProcess {
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
    /// The log's pipe reached its end (the speaker exited and every line is in `log`).
    drained: Arc<AtomicBool>,
}

impl SpeakerProcess {
    /// Start `ferrolb-speaker` with `args` and `--metrics-addr 127.0.0.1:0`; `env` is added.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferrolb-speaker"));
        command
            .args(args)
            .args(["--metrics-addr", "127.0.0.1:0"])
            // These speakers run in the root namespace: never announce anything there (the
            // example config has a BGPPeer, which BGP mode would connect to).
            .args(["--layer2", "false", "--bgp", "false"])
            .env("FERROLB_LOG", "info")
            .env_remove("FERROLB_MANIFESTS")
            .env_remove("FERROLB_NODE_NAME")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for var in ferrolb_fake_apiserver::PROXY_VARIABLES {
            command.env_remove(var);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn ferrolb-speaker");
        let stdout = child.stdout.take().expect("piped stdout");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let drained = Arc::new(AtomicBool::new(false));
        let end = drained.clone();
        // Drain the pipe continuously: a full pipe would block the speaker.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("speaker| {line}");
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
            end.store(true, Ordering::Release);
        });
        SpeakerProcess {
            child,
            log,
            drained,
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The metrics address the speaker bound, from its log.
    pub fn metrics_addr(&self) -> SocketAddr {
        wait_for("the metrics address in the log", || {
            self.log().iter().find_map(|l| {
                let rest = l.split("listening on http://").nth(1)?;
                rest.split_whitespace().next()?.parse().ok()
            })
        })
    }

    /// Send SIGTERM and wait for the exit; returns whether it exited successfully.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.success();
            }
            assert!(Instant::now() < deadline, "the speaker ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl SpeakerProcess {
    /// [`SpeakerProcess::terminate`], then everything the speaker logged, to its last line.
    pub fn terminate_logged(self) -> (bool, Vec<String>) {
        let (log, drained) = (self.log.clone(), self.drained.clone());
        let clean = self.terminate();
        wait_for("the end of the speaker's log", || {
            drained.load(Ordering::Acquire).then_some(())
        });
        let lines = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (clean, lines)
    }
}

impl Drop for SpeakerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `path` from `addr` (always 127.0.0.1 here): the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    assert!(addr.ip().is_loopback(), "tests only talk to 127.0.0.1");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// The value of an unlabelled (or exactly labelled) sample in a metrics text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}
