//! The `Lab`: a built topology, its processes, and its teardown.

use super::build;
use super::cmd::{self, require_root, require_tool};
use super::error::{LabError, Result};
use super::host::{Host, Role};
use super::process::LabProcess;
use super::registry;
use super::router::BgpDaemon;
use super::spec::{LabSpec, RouterKind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// A running lab. End a test with [`Lab::down`], which tears everything down and reports
/// anything left behind. Dropping a lab without it (a panic, an early error return) tears
/// down too, after printing the tail of every lab process's log.
pub struct Lab {
    pub(crate) prefix: String,
    pub(crate) dir: PathBuf,
    pub(crate) spec: LabSpec,
    pub(crate) hosts: Vec<Host>,
    pub(crate) procs: Mutex<Vec<LabProcess>>,
    pub(crate) router: Option<BgpDaemon>,
    down: bool,
}

/// Tools every lab needs, with the Debian package providing each.
const BASE_TOOLS: &[(&str, &str)] = &[("ip", "iproute2"), ("sh", "dash")];

/// Tools a router daemon needs.
pub fn router_tools(kind: RouterKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        RouterKind::Bird => &[("bird", "bird2"), ("birdc", "bird2")],
        RouterKind::Frr => &[
            ("zebra", "frr"),
            ("bgpd", "frr"),
            ("bfdd", "frr"),
            ("vtysh", "frr"),
        ],
        RouterKind::Gobgp => &[("gobgpd", "gobgpd"), ("gobgp", "gobgpd")],
    }
}

/// Where this workspace's binaries are: `$FERROLB_BIN_DIR`, else the directory of the running
/// executable (`target/<profile>`, also for tests in `target/<profile>/deps`).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FERROLB_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("path of the running executable");
    let dir = exe.parent().expect("executable directory");
    if dir.ends_with("deps") {
        dir.parent()
            .expect("target profile directory")
            .to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The path of a workspace binary, or an error saying how to build it.
pub fn binary(name: &str) -> Result<PathBuf> {
    let p = bin_dir().join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(LabError::NotBuilt {
            path: p.display().to_string(),
        })
    }
}

impl Lab {
    /// Check that everything the spec needs is installed and that we are root, then build the
    /// lab, start the router daemon and the pods' echo servers, and wait until they answer.
    pub fn up(spec: LabSpec) -> Result<Lab> {
        spec.validate()?;
        require_root()?;
        for (tool, package) in BASE_TOOLS {
            require_tool(tool, package)?;
        }
        if let Some(kind) = spec.router {
            for (tool, package) in router_tools(kind) {
                require_tool(tool, package)?;
            }
        }
        if spec.echo {
            binary("ferrolb-lab-echo")?;
        }
        if spec.router == Some(RouterKind::Gobgp) {
            binary("ferrolb-lab")?;
        }
        registry::sweep_leftovers();
        let prefix = registry::new_prefix();
        registry::register(&prefix)?;
        let mut lab = Lab {
            dir: registry::lab_dir(&prefix),
            hosts: build::hosts(&prefix, &spec),
            prefix,
            spec,
            procs: Mutex::new(Vec::new()),
            router: None,
            down: false,
        };
        // From here on, an error drops `lab`, which tears down whatever was built.
        registry::make_lab_dir(&lab.prefix)?;
        std::fs::create_dir_all(lab.dir.join("logs")).map_err(super::error::io(&lab.dir))?;
        build::namespaces(&lab.hosts, lab.spec.dual_stack)?;
        build::links(&lab.hosts, &lab.spec, &lab.dir)?;
        super::cluster::write_nodes(&lab)?;
        if let Some(kind) = lab.spec.router {
            lab.router = Some(super::router::start_router(&lab, kind)?);
        }
        if lab.spec.echo {
            super::probe::start_echo_servers(&lab)?;
        }
        Ok(lab)
    }

    /// The per-run prefix of every namespace of this lab.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The lab's directory: logs, daemon configs, the manifest directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The description it was built from.
    pub fn spec(&self) -> &LabSpec {
        &self.spec
    }

    /// Every host.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// A host by short name (`router`, `node1`, `client1`, `ext1`, a pod name).
    pub fn host(&self, name: &str) -> Result<&Host> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| LabError::Unknown {
                kind: "host",
                name: name.into(),
                known: self
                    .hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The node hosts, in order.
    pub fn nodes(&self) -> Vec<&Host> {
        self.hosts
            .iter()
            .filter(|h| matches!(h.role, Role::Node(_)))
            .collect()
    }

    /// The pod hosts.
    pub fn pods(&self) -> Vec<&Host> {
        self.hosts
            .iter()
            .filter(|h| matches!(h.role, Role::Pod { .. }))
            .collect()
    }

    /// The router's BGP daemon, if the spec asked for one.
    pub fn router(&self) -> Result<&BgpDaemon> {
        self.router.as_ref().ok_or_else(|| LabError::Unknown {
            kind: "router daemon",
            name: "router".into(),
            known: "none: the spec has router: None".into(),
        })
    }

    /// Run `argv` in `host` and return its stdout; an error carries its stderr.
    pub fn exec(&self, host: &str, argv: &[&str]) -> Result<String> {
        let h = self.host(host)?;
        cmd::run(&h.name, cmd::in_netns(&h.netns, argv))
    }

    /// Run `argv` in `host` and return its full output, whatever the exit status.
    pub fn exec_output(&self, host: &str, argv: &[&str]) -> Result<std::process::Output> {
        let h = self.host(host)?;
        cmd::output(&h.name, cmd::in_netns(&h.netns, argv), cmd::COMMAND_LIMIT)
    }

    /// Shell command that opens a shell in `host` (for people, in messages).
    pub fn shell_hint(&self, host: &str) -> String {
        match self.host(host) {
            Ok(h) => format!("ip netns exec {} bash", h.netns),
            Err(e) => e.to_string(),
        }
    }

    /// Tear the lab down now and report what could not be removed.
    pub fn down(mut self) -> Result<()> {
        let problems = self.teardown();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LabError::Leftovers {
                prefix: self.prefix.clone(),
                problems,
            })
        }
    }

    fn teardown(&mut self) -> Vec<String> {
        if self.down {
            return Vec::new();
        }
        self.down = true;
        let started = Instant::now();
        let keep = std::env::var_os("FERROLB_LAB_KEEP").is_some();
        if keep {
            // The next run's sweep removes the directory (its owner is dead by then).
            eprintln!(
                "ferrolb lab {}: FERROLB_LAB_KEEP is set: logs and configs stay in {} until the next run",
                self.prefix,
                self.dir.display()
            );
        }
        let mut problems = registry::teardown_prefix(&self.prefix, keep);
        // Reap our own children (they were killed above) so none stays a zombie.
        for p in self
            .procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
        {
            if let Err(e) = p.reap() {
                problems.push(e);
            }
        }
        registry::unregister(&self.prefix);
        if std::env::var_os("FERROLB_LAB_VERBOSE").is_some() {
            eprintln!(
                "ferrolb lab {}: torn down in {:?}",
                self.prefix,
                started.elapsed()
            );
        }
        problems
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // A lab that a test did not end with `down()` is one whose test panicked or returned
        // an error: show what its processes said.
        if !self.down {
            let why = if std::thread::panicking() {
                "the test panicked"
            } else {
                "the lab was dropped without Lab::down() (did the test return an error?)"
            };
            eprintln!(
                "ferrolb lab {}: {why}; the last lines of every lab process's log follow",
                self.prefix
            );
            self.print_logs(40);
        }
        for p in self.teardown() {
            eprintln!("ferrolb lab {}: teardown: {p}", self.prefix);
        }
    }
}
