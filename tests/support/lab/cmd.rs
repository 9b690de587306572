//! Running commands for the lab: in a host (`ip netns exec`), or the `ip` bookkeeping commands
//! that create and delete namespaces. Every command has a deadline, and a failure names the
//! host, the command line and its stderr.

use super::error::{LabError, Result};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a lab command may run before it is killed and reported.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(20);

/// Where to look for programs besides `PATH` (sbin is not always on a test runner's PATH, and
/// FRR keeps its daemons in /usr/lib/frr).
const EXTRA_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/lib/frr"];

/// The full path of `tool`, if installed.
pub fn which(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        return p.is_file().then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .filter(|d| !d.is_empty())
        .chain(EXTRA_DIRS.iter().copied())
        .map(|d| PathBuf::from(d).join(tool))
        .find(|p| p.is_file())
}

/// The full path of `tool`, or an error naming the Debian package that provides it.
pub fn require_tool(tool: &str, package: &str) -> Result<PathBuf> {
    which(tool).ok_or_else(|| LabError::MissingTool {
        tool: tool.into(),
        package: package.into(),
    })
}

/// Fail unless this process runs as root.
pub fn require_root() -> Result<()> {
    if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err(LabError::NotRoot)
    }
}

/// A command line as text, for error messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A command that runs `argv` inside the network namespace `ns`.
pub fn in_netns(ns: &str, argv: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(argv);
    c
}

/// Run `cmd` to completion within `limit`; `host` names where it ran, for errors.
pub fn output(host: &str, mut cmd: Command, limit: Duration) -> Result<Output> {
    let line = describe(&cmd);
    let fail = |status: String, stderr: String| LabError::Command {
        host: host.into(),
        command: line.clone(),
        status,
        stderr,
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("could not start: {e}"), String::new()))?;
    // Read both pipes on threads so a chatty command never blocks on a full pipe.
    let out = reader(&mut child, true);
    let err = reader(&mut child, false);
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err.join().unwrap_or_default();
                return Err(fail(
                    format!("killed after {limit:?}"),
                    String::from_utf8_lossy(&stderr).trim().into(),
                ));
            }
        }
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn reader(child: &mut Child, stdout: bool) -> std::thread::JoinHandle<Vec<u8>> {
    let mut pipe: Box<dyn Read + Send> = if stdout {
        Box::new(child.stdout.take().expect("piped stdout"))
    } else {
        Box::new(child.stderr.take().expect("piped stderr"))
    };
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Run `cmd` and return its stdout, or an error with its stderr if it fails.
pub fn run(host: &str, cmd: Command) -> Result<String> {
    let line = describe(&cmd);
    let out = output(host, cmd, COMMAND_LIMIT)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            host: host.into(),
            command: line,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().into(),
        })
    }
}

/// `ip ARGS...` in the root namespace: only namespace bookkeeping (`netns add/del`) and
/// `ip -n NS ...` (which acts inside NS) go through here.
pub fn ip(args: &[&str]) -> Result<String> {
    let mut c = Command::new("ip");
    c.args(args);
    run("root namespace (ip bookkeeping)", c)
}

/// Run a batch of `ip` commands (one per line, `ip -batch` syntax) with `ip -n ns`, so that
/// building a host costs one process instead of dozens.
pub fn ip_batch(host: &str, ns: &str, dir: &std::path::Path, lines: &[String]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = dir.join(format!("{host}.{n}.ipbatch"));
    std::fs::write(&file, lines.join("\n") + "\n").map_err(super::error::io(&file))?;
    let mut c = Command::new("ip");
    c.args(["-n", ns, "-batch"]).arg(&file);
    let r = run(host, c).map_err(|e| match e {
        LabError::Command {
            host,
            command,
            status,
            stderr,
        } => LabError::Command {
            host,
            command: format!("{command} with:\n  {}", lines.join("\n  ")),
            status,
            stderr,
        },
        e => e,
    });
    let _ = std::fs::remove_file(&file);
    r.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_package() {
        let e = require_tool("ferrolb-no-such-tool", "ferrolb-pkg").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`ferrolb-no-such-tool` is missing: install the Debian package `ferrolb-pkg` \
             (apt-get install ferrolb-pkg), or run tests/run.sh which installs it"
        );
        assert!(require_tool("sh", "dash").is_ok());
    }

    #[test]
    fn a_failing_command_reports_host_command_and_stderr() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo oops >&2; exit 3"]);
        let e = run("node1", c).unwrap_err().to_string();
        assert!(
            e.starts_with("on node1: `sh -c echo oops >&2; exit 3` failed (exit status: 3): oops"),
            "{e}"
        );
        let mut slow = Command::new("sleep");
        slow.arg("5");
        let e = output("node2", slow, Duration::from_millis(100))
            .unwrap_err()
            .to_string();
        assert!(e.contains("killed after 100ms"), "{e}");
    }
}
