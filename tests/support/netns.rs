//! A bare network namespace for kernel-level tests (nftables, IPVS): made by the test, named
//! with a unique per-process prefix, deleted on drop. Nothing is configured outside it.

use std::process::{Command, Output};

pub struct Netns(String);

impl Netns {
    /// `flb<prefix><pid><tag>`: unique per test process and tag.
    pub fn new(prefix: &str, tag: &str) -> Netns {
        let name = format!("flb{prefix}{}{tag}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip (package iproute2)");
        assert!(
            out.status.success(),
            "ip netns add {name} (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns(name)
    }

    /// [`Netns::new`] with its loopback up. IPVS needs it: it refuses a masquerading IPv4
    /// real server (EINVAL) while the namespace has no local routing table, which only
    /// appears with a link up.
    pub fn with_loopback(prefix: &str, tag: &str) -> Netns {
        let ns = Netns::new(prefix, tag);
        let out = ns.output(&["ip", "link", "set", "lo", "up"]);
        assert!(
            out.status.success(),
            "ip link set lo up in {}: {}",
            ns.0,
            String::from_utf8_lossy(&out.stderr)
        );
        ns
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// `argv` run inside the namespace (`ip netns exec`).
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).args(argv);
        c
    }

    /// `argv` run inside the namespace; its output, whatever its status.
    pub fn output(&self, argv: &[&str]) -> Output {
        self.command(argv)
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {} {argv:?}: {e}", self.0))
    }

    /// Runs `f` on a thread that has entered this namespace (the thread alone: sockets it
    /// opens belong to the namespace, the test process stays where it is).
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&ns),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            })
            .join()
            .expect("the thread in the namespace panicked")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
