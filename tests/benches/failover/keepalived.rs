//! keepalived in the lab, guarding the same address FerroLB does (10.100.0.200) between node1
//! and node2: VRRP over unicast on the LAN (eth0), no virtual MAC, both `state BACKUP` with
//! `nopreempt` and priorities 150 and 100 (so a node that comes back does not take the
//! address back, and every repetition fails whichever node is master). Each node runs the
//! lab's echo server itself (UDP 7000 on `[::]`), so the same UDP probe gets answers from
//! whoever holds the address.
//!
//! Timers: `advert_int 1` with keepalived's default VRRP version 2 (the default setup), and
//! `advert_int 0.1`, which needs `vrrp_version 3` (VRRPv2 has whole seconds only).
//!
//! keepalived runs as `keepalived -n -l -D -G -P -R` (foreground, console log, VRRP only, no
//! respawn of its VRRP child) with every pid file in the lab's directory. Failing it: SIGKILL
//! of the VRRP child (the process that speaks VRRP and holds the address), then of its parent;
//! SIGSTOP of both; or the link cut. A SIGKILLed keepalived leaves the address on the
//! interface (nothing removes it), which is what it does on a real crash; the restarted one
//! removes it at start-up ("removing VIPs").

use crate::failover::{System, Way, wait};
use ferrolb_e2e::lab::{Lab, LabSpec, binary, cmd, registry};
use rustix::process::Signal;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

pub const NODES: [&str; 2] = ["node1", "node2"];
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 200);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advert {
    /// `advert_int 1` (keepalived's default), VRRPv2.
    Default,
    /// `advert_int 0.1`, VRRPv3.
    Fast,
}

impl Advert {
    pub fn interval(self) -> Duration {
        match self {
            Advert::Default => Duration::from_secs(1),
            Advert::Fast => Duration::from_millis(100),
        }
    }

    fn conf(self) -> (&'static str, u8) {
        match self {
            Advert::Default => ("1", 2),
            Advert::Fast => ("0.1", 3),
        }
    }
}

pub struct Keepalived {
    lab: Lab,
    advert: Advert,
    dir: PathBuf,
}

fn node_index(node: &str) -> u8 {
    node.strip_prefix("node")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

impl Keepalived {
    /// Two nodes and two LAN clients, an echo server in each node; keepalived not started.
    pub fn up() -> anyhow::Result<Keepalived> {
        note!("keepalived lab: 2 nodes, 2 LAN clients");
        let lab = Lab::up(LabSpec {
            nodes: 2,
            lan_clients: 2,
            external_clients: 0,
            dual_stack: false,
            router: None,
            echo: false,
            ..LabSpec::default()
        })?;
        let echo = binary("ferrolb-lab-echo")?;
        for node in NODES {
            let name = lab.spawn(
                "echo",
                node,
                &[&echo.to_string_lossy(), "--name", node, "--udp", "7000"],
            )?;
            lab.wait_log(&name, "listening", Duration::from_secs(10))?;
        }
        let dir = lab.dir().join("keepalived");
        std::fs::create_dir_all(&dir)?;
        Ok(Keepalived {
            lab,
            advert: Advert::Default,
            dir,
        })
    }

    fn file(&self, node: &str, what: &str) -> PathBuf {
        self.dir.join(format!("{node}.{what}"))
    }

    fn config(&self, node: &str) -> String {
        let i = node_index(node);
        let peer = 3 - i;
        let priority = if i == 1 { 150 } else { 100 };
        let (advert, version) = self.advert.conf();
        format!(
            "global_defs {{\n  router_id {node}\n  vrrp_version {version}\n}}\n\
             vrrp_instance VI_1 {{\n  state BACKUP\n  nopreempt\n  interface eth0\n  \
             virtual_router_id 51\n  priority {priority}\n  advert_int {advert}\n  \
             unicast_src_ip 10.100.0.{}\n  unicast_peer {{\n    10.100.0.{}\n  }}\n  \
             virtual_ipaddress {{\n    {VIP}/32 dev eth0\n  }}\n}}\n",
            10 + i,
            10 + peer
        )
    }

    fn start_node(&self, node: &str) -> anyhow::Result<()> {
        let keepalived = cmd::require_tool("keepalived", "keepalived")?;
        let conf = self.file(node, "conf");
        std::fs::write(&conf, self.config(node))?;
        for what in ["pid", "vrrp.pid", "checkers.pid", "bfd.pid"] {
            let _ = std::fs::remove_file(self.file(node, what));
        }
        let path = |what: &str| self.file(node, what).to_string_lossy().into_owned();
        let argv = [
            keepalived.to_string_lossy().into_owned(),
            "-n".into(),
            "-l".into(),
            "-D".into(),
            "-G".into(),
            "-P".into(),
            "-R".into(),
            "-f".into(),
            path("conf"),
            "-p".into(),
            path("pid"),
            "-r".into(),
            path("vrrp.pid"),
            "-c".into(),
            path("checkers.pid"),
            "-b".into(),
            path("bfd.pid"),
        ];
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let name = self.lab.spawn("keepalived", node, &argv)?;
        self.lab
            .wait_log(&name, "Entering BACKUP STATE", Duration::from_secs(10))?;
        self.vrrp_pid(node)?;
        Ok(())
    }

    /// The pid of `node`'s VRRP child (from its pid file).
    fn vrrp_pid(&self, node: &str) -> anyhow::Result<u32> {
        let file = self.file(node, "vrrp.pid");
        wait(
            || {
                let pid: u32 = std::fs::read_to_string(&file).ok()?.trim().parse().ok()?;
                std::path::Path::new(&format!("/proc/{pid}"))
                    .exists()
                    .then_some(pid)
            },
            Duration::from_secs(5),
            &format!("VRRP child pid in {}", file.display()),
        )
    }

    /// Start keepalived on both nodes with these timers; returns once one is master.
    pub fn start(&mut self, advert: Advert) -> anyhow::Result<()> {
        self.advert = advert;
        note!("starting {}", self.name());
        for node in NODES {
            self.start_node(node)?;
        }
        self.owner()?;
        Ok(())
    }

    /// Stop keepalived on both nodes (SIGTERM: it gives the address up).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        for node in NODES {
            let name = format!("keepalived@{node}");
            self.lab.stop_process(&name)?;
            self.lab.forget_process(&name)?;
        }
        for node in NODES {
            anyhow::ensure!(
                !self.holds(node)?,
                "{node} still holds {VIP} after keepalived stopped"
            );
        }
        Ok(())
    }

    pub fn down(self) -> anyhow::Result<()> {
        Ok(self.lab.down()?)
    }

    fn holds(&self, node: &str) -> anyhow::Result<bool> {
        let text = self
            .lab
            .exec(node, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"])?;
        Ok(text.contains(&format!(" {VIP}/")))
    }

    fn holders(&self) -> Vec<&'static str> {
        NODES
            .into_iter()
            .filter(|n| self.holds(n).unwrap_or(false))
            .collect()
    }
}

impl System for Keepalived {
    fn name(&self) -> String {
        format!("keepalived advert_int {}", self.advert.conf().0)
    }

    fn lab(&self) -> &Lab {
        &self.lab
    }

    fn vip(&self) -> Ipv4Addr {
        VIP
    }

    fn owner(&mut self) -> anyhow::Result<String> {
        for node in NODES {
            anyhow::ensure!(
                self.lab.is_running(&format!("keepalived@{node}"))?,
                "keepalived@{node} is not running"
            );
        }
        let owner = wait(
            || match self.holders().as_slice() {
                [one] => Some(one.to_string()),
                _ => None,
            },
            Duration::from_secs(20),
            &format!("single node holding {VIP}"),
        )?;
        crate::failover::answered_by_alone(&self.lab, VIP, owner)
    }

    fn fail(&mut self, node: &str, way: Way) -> anyhow::Result<()> {
        let name = format!("keepalived@{node}");
        let child = self.vrrp_pid(node)?;
        let parent = self.lab.pid(&name)?;
        match way {
            Way::Kill => {
                registry::signal(child, Signal::KILL);
                // Let the parent reap it (with -R it then stops), then kill the parent too.
                let _ = wait(
                    || (!std::path::Path::new(&format!("/proc/{child}")).exists()).then_some(()),
                    Duration::from_secs(2),
                    "the VRRP child to be reaped",
                );
                self.lab.kill_process(&name)?;
            }
            Way::Pause => {
                registry::signal(child, Signal::STOP);
                registry::signal(parent, Signal::STOP);
            }
            Way::Link => self.lab.set_link(node, "eth0", false)?,
        }
        Ok(())
    }

    fn undo(&mut self, node: &str, way: Way) -> anyhow::Result<()> {
        match way {
            Way::Kill => {
                self.lab.forget_process(&format!("keepalived@{node}"))?;
                self.start_node(node)?;
            }
            Way::Pause => {
                let child = self.vrrp_pid(node)?;
                registry::signal(child, Signal::CONT);
                registry::signal(self.lab.pid(&format!("keepalived@{node}"))?, Signal::CONT);
            }
            Way::Link => self.lab.set_link(node, "eth0", true)?,
        }
        Ok(())
    }

    fn settle(&mut self, _node: &str, _way: Way) -> anyhow::Result<()> {
        // A resumed master advertises at once and the other yields on hearing it; a restarted
        // or reconnected node stays backup (nopreempt). `owner` waits for a single holder.
        std::thread::sleep(Duration::from_millis(300));
        self.owner().map(drop)
    }

    fn takeover_limit(&self) -> Duration {
        self.advert.interval() * 6 + Duration::from_secs(3)
    }
}
