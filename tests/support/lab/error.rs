//! What can go wrong building or driving a lab. Every variant names the host and the command
//! (with its stderr) or the thing that was missing, so a failing test says what to fix.

use std::time::Duration;

/// An error from the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The lab creates network namespaces, which needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
    #[error("the lab needs root (network namespaces, veth links): run the tests as root")]
    NotRoot,
    /// A tool the lab needs is not installed.
    #[error(
        "`{tool}` is missing: install the Debian package `{package}` (apt-get install {package}), \
         or run tests/run.sh which installs it"
    )]
    MissingTool {
        /// The program that was looked for.
        tool: String,
        /// The Debian package that provides it.
        package: String,
    },
    /// A binary of this workspace has not been built.
    #[error("{path} is not built: run `cargo build --workspace --bins` first")]
    NotBuilt {
        /// Where it was expected.
        path: String,
    },
    /// A command run for the lab failed.
    #[error("on {host}: `{command}` failed ({status}): {stderr}")]
    Command {
        /// The lab host (or "root namespace" for `ip netns` bookkeeping).
        host: String,
        /// The command line.
        command: String,
        /// Exit status, or the spawn error.
        status: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
    /// A condition did not come true in time.
    #[error("timed out after {after:?} waiting for {what}; last seen: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        after: Duration,
        /// The last observation, to tell "almost" from "nothing happened".
        last: String,
    },
    /// Output from a tool could not be understood.
    #[error("on {host}: cannot parse the output of `{command}`: {reason}")]
    Parse {
        /// The lab host.
        host: String,
        /// The command whose output it was.
        command: String,
        /// What was wrong.
        reason: String,
    },
    /// The topology description is not usable.
    #[error("invalid lab description: {0}")]
    Spec(String),
    /// A host or process name that the lab does not have.
    #[error("the lab has no {kind} named {name:?} (it has: {known})")]
    Unknown {
        /// "host" or "process".
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The names it does have.
        known: String,
    },
    /// Teardown could not remove everything.
    #[error("lab {prefix} left things behind: {}", problems.join("; "))]
    Leftovers {
        /// The lab's prefix.
        prefix: String,
        /// What was left and why.
        problems: Vec<String>,
    },
    /// The process is shutting down after SIGINT/SIGTERM; no new lab objects are made.
    #[error("the lab is shutting down after a signal")]
    ShuttingDown,
    /// A file in the lab's directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Shorthand for results of lab operations.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

pub(crate) fn io(path: impl AsRef<std::path::Path>) -> impl FnOnce(std::io::Error) -> LabError {
    let path = path.as_ref().display().to_string();
    move |source| LabError::Io { path, source }
}
