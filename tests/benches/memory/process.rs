//! The binaries under test: started inside the bench's network namespace (`ip netns exec`,
//! which execs the binary itself, so the child's pid is the binary's), their output in a log
//! file, killed when dropped. Read only from outside: `/proc/<pid>/status` and their metrics
//! endpoint on 127.0.0.1 of the namespace.

use crate::cleanup;
use ferrolb_e2e::ChildGuard;
use ferrolb_e2e::bench::proc_status;
use ferrolb_e2e::netns::Netns;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The controller's metrics port (its default) on the namespace's loopback.
pub const CONTROLLER_PORT: u16 = 7472;
/// The speaker's (its default).
pub const SPEAKER_PORT: u16 = 7473;

/// Environment a binary under test must not inherit: it would pick another source, another
/// node, or a proxy for the fake API server.
const UNSET: &[&str] = &[
    "FERROLB_MANIFESTS",
    "FERROLB_NODE_NAME",
    "FERROLB_NAMESPACE",
    "FERROLB_POD_NAME",
    "FERROLB_LB_CLASS",
    "FERROLB_GOSSIP_SECRET_FILE",
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
];

pub struct Process {
    pub name: &'static str,
    pub pid: u32,
    port: u16,
    log: PathBuf,
    child: ChildGuard,
}

impl Process {
    /// Start workspace binary `binary` (`ferrolb-speaker`, `ferrolb-controller`) in `ns` with
    /// `args` and `env`; its stdout and stderr go to `<dir>/<name>.log`. `port`: its metrics
    /// port.
    pub fn start(
        ns: &Netns,
        name: &'static str,
        binary: &str,
        args: &[String],
        env: &[(&str, String)],
        port: u16,
        dir: &Path,
    ) -> anyhow::Result<Process> {
        let bin = ferrolb_e2e::lab::binary(binary)?;
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let bin = bin.to_string_lossy().into_owned();
        let mut c = ns.command(&[bin.as_str()]);
        c.args(args)
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for var in UNSET.iter().chain(&ferrolb_fake_apiserver::PROXY_VARIABLES) {
            c.env_remove(var);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        note!(
            "starting the {name}: {}",
            ferrolb_e2e::lab::cmd::describe(&c)
        );
        let child = cleanup::spawn(&mut c)?;
        let pid = child.0.id();
        Ok(Process {
            name,
            pid,
            port,
            log,
            child,
        })
    }

    /// Fails, with the end of its log, if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.0.try_wait()? {
            anyhow::bail!(
                "the {} exited ({status}); the end of its log {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail(30)
            );
        }
        Ok(())
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Its metrics text, if it answers.
    pub fn metrics(&self, ns: &Netns) -> Option<String> {
        match get(ns, self.port, "/metrics") {
            Some((200, body)) => Some(body),
            _ => None,
        }
    }

    /// Its memory now.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        // The pid must be the binary itself, not `ip netns exec` before its exec.
        let exe = std::fs::read_link(format!("/proc/{}/exe", self.pid))?;
        anyhow::ensure!(
            exe.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("ferrolb-")),
            "pid {} is {}, not the {}",
            self.pid,
            exe.display(),
            self.name
        );
        let [rss, hwm, anon, file, threads] = proc_status(
            self.pid,
            ["VmRSS:", "VmHWM:", "RssAnon:", "RssFile:", "Threads:"],
        )?;
        Ok(Memory {
            rss,
            hwm,
            anon,
            file,
            threads,
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        cleanup::forget_pid(self.pid);
        // ChildGuard kills and reaps it.
    }
}

/// A process's memory, KiB (and its thread count).
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss: u64,
    /// Peak VmRSS so far.
    pub hwm: u64,
    pub anon: u64,
    pub file: u64,
    pub threads: u64,
}

/// GET `path` from 127.0.0.1:`port` inside `ns` (the connection is opened from a thread that
/// entered it): the status code and the body.
pub fn get(ns: &Netns, port: u16, path: &str) -> Option<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = ns.enter(|| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
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
