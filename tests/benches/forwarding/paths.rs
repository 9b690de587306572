//! The ways client1 reaches the pod, each set up in node1 and torn down again:
//!
//! ```text
//! direct     client1 ──▶ node1 (routing only) ──▶ pod          the limit of this machine
//! nftables   client1 ──▶ VIP 10.250.0.10 ─(node1: DNAT, masquerade)─▶ pod
//! userspace  client1 ──▶ VIP 10.250.0.11 ─(node1: redirect ▶ tokio proxy ▶ new connection)─▶ pod
//! haproxy    client1 ──▶ VIP 10.250.0.12 ─(node1: on lo, HAProxy mode tcp ▶ new connection)─▶ pod
//! ipvs       client1 ──▶ VIP 10.250.0.13 ─(node1: the kernel's IPVS, masquerade)─▶ pod
//! ```
//!
//! `ipvs` needs a kernel with IPVS (the VM lab: `tests/benches/ipvs.sh` runs it there), so it
//! is measured only when `FERROLB_BENCH_PATHS` names it.
//!
//! Each VIP is routed from client1 to node1 (statically, as the layer-2/BGP announcement
//! would); only one path is set up at a time, and node1's nftables ruleset is flushed between
//! them. Everything happens in lab namespaces.

use ferrolb_e2e::lab::{Lab, LabError, Proto, cmd, wait_until};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

pub const NODE: &str = "node1";
pub const CLIENT: &str = "client1";
pub const POD: &str = "bench-pod";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Direct,
    Nftables,
    Userspace,
    Haproxy,
    Ipvs,
}

impl Path {
    /// The paths measured by default (every one this machine's kernel can run).
    pub const ALL: [Path; 4] = [Path::Direct, Path::Nftables, Path::Userspace, Path::Haproxy];
    /// Every path, for `FERROLB_BENCH_PATHS`.
    pub const NAMED: [Path; 5] = [
        Path::Direct,
        Path::Nftables,
        Path::Userspace,
        Path::Haproxy,
        Path::Ipvs,
    ];

    /// Its name in `FERROLB_BENCH_PATHS`.
    pub fn name(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Nftables => "nftables",
            Path::Userspace => "userspace",
            Path::Haproxy => "haproxy",
            Path::Ipvs => "ipvs",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Path::Direct => "client → pod, direct through node1 (the limit)",
            Path::Nftables => "client → LB IP → pod, nftables (kernel DNAT)",
            Path::Userspace => "client → LB IP → pod, userspace proxy",
            Path::Haproxy => "client → LB IP → pod, HAProxy (mode tcp)",
            Path::Ipvs => "client → LB IP → pod, IPVS (kernel, masquerade)",
        }
    }

    /// The address client1 connects to.
    pub fn addr(self, lab: &Lab) -> anyhow::Result<IpAddr> {
        Ok(match self {
            Path::Direct => lab
                .host(POD)?
                .addr(false)
                .ok_or_else(|| anyhow::anyhow!("{POD} has no IPv4 address"))?,
            Path::Nftables => Ipv4Addr::new(10, 250, 0, 10).into(),
            Path::Userspace => Ipv4Addr::new(10, 250, 0, 11).into(),
            Path::Haproxy => Ipv4Addr::new(10, 250, 0, 12).into(),
            Path::Ipvs => Ipv4Addr::new(10, 250, 0, 13).into(),
        })
    }
}

/// Route every VIP from client1 to node1.
pub fn route_vips(lab: &Lab) -> anyhow::Result<()> {
    let via = lab
        .host(NODE)?
        .addr(false)
        .ok_or_else(|| anyhow::anyhow!("{NODE} has no IPv4 address"))?
        .to_string();
    for p in [Path::Nftables, Path::Userspace, Path::Haproxy, Path::Ipvs] {
        let vip = format!("{}/32", p.addr(lab)?);
        lab.exec(CLIENT, &["ip", "route", "replace", &vip, "via", &via])?;
    }
    Ok(())
}

/// Set `path` up in node1 and wait until the echo server answers through it; returns the name
/// of the lab process serving it, if any.
pub fn set_up(lab: &Lab, path: Path) -> anyhow::Result<Option<String>> {
    let addr = path.addr(lab)?;
    let backend = path_backend(lab)?;
    let process = match path {
        Path::Direct => None,
        Path::Nftables | Path::Userspace | Path::Ipvs => {
            let mode = path.name();
            let exe = std::env::current_exe()?;
            let (exe, vip, be) = (exe.to_string_lossy(), addr.to_string(), backend.to_string());
            let argv = [&*exe, "--scenario", "serve", mode, &vip, &be];
            let name = lab.spawn(&format!("dataplane-{mode}"), NODE, &argv)?;
            lab.wait_log(&name, "ready", Duration::from_secs(20))?;
            Some(name)
        }
        Path::Haproxy => {
            let bin = cmd::require_tool("haproxy", "haproxy")?;
            let config = lab.dir().join("haproxy.cfg");
            std::fs::write(&config, haproxy_config(addr, backend))?;
            lab.exec(
                NODE,
                &["ip", "addr", "add", &format!("{addr}/32"), "dev", "lo"],
            )?;
            let (bin, cfg) = (bin.to_string_lossy(), config.to_string_lossy());
            Some(lab.spawn("haproxy", NODE, &[&*bin, "-db", "-f", &*cfg])?)
        }
    };
    let what = format!("the echo server to answer through {path:?}");
    let answered = wait_until(&what, Duration::from_secs(15), || {
        if let Some(name) = &process
            && !lab.is_running(name)?
        {
            return Err(LabError::Command {
                host: NODE.into(),
                command: name.clone(),
                status: "exited".into(),
                stderr: lab.log(name)?,
            });
        }
        Ok(lab
            .probe(CLIENT, Proto::Tcp, addr, 7000)
            .map_err(|e| e.to_string()))
    });
    match answered {
        Ok(_) => Ok(process),
        Err(e) => {
            let _ = tear_down(lab, path, process);
            Err(e.into())
        }
    }
}

/// Undo [`set_up`]: stop the process, remove the VIP from lo, flush node1's ruleset.
pub fn tear_down(lab: &Lab, path: Path, process: Option<String>) -> anyhow::Result<()> {
    if let Some(name) = process {
        lab.stop_process(&name)?;
    }
    if path == Path::Haproxy {
        let vip = format!("{}/32", path.addr(lab)?);
        lab.exec(NODE, &["ip", "addr", "del", &vip, "dev", "lo"])?;
    }
    if path == Path::Ipvs {
        // The serving process was stopped without its clean stop: clear what it programmed.
        lab.exec(NODE, &["ipvsadm", "-C"])?;
        lab.exec(NODE, &["ip", "link", "del", "ferrolb0"])?;
    }
    lab.exec(NODE, &["nft", "flush", "ruleset"])?;
    Ok(())
}

fn path_backend(lab: &Lab) -> anyhow::Result<IpAddr> {
    Path::Direct.addr(lab)
}

/// HAProxy as one would deploy it for this: mode tcp, the same backend, default tuning
/// (threads: one per CPU; no splicing unless asked for).
fn haproxy_config(vip: IpAddr, backend: IpAddr) -> String {
    let mut s = String::from(
        "global\n    maxconn 8000\n\ndefaults\n    mode tcp\n    timeout connect 3s\n    \
         timeout client 60s\n    timeout server 60s\n",
    );
    for (name, port) in crate::dataplane::PORTS {
        s.push_str(&format!(
            "\nlisten {name}\n    bind {vip}:{port}\n    server pod {backend}:{port}\n"
        ));
    }
    s
}
