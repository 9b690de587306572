//! Helpers tests use to look at and disturb a lab: neighbor and route tables, links, packet
//! captures, ARP and NDP probes.

use super::cmd::require_tool;
use super::error::{LabError, Result};
use super::instance::Lab;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// What a packet capture's process names start with (`tcpdump0@router`, ...).
pub(super) const CAPTURE: &str = "tcpdump";

/// One entry of a host's neighbor (ARP/NDP) table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbor {
    /// The neighbor's address.
    pub ip: IpAddr,
    /// The interface.
    pub dev: String,
    /// Its link-layer address, lower case, if resolved.
    pub lladdr: Option<String>,
    /// Kernel states (`REACHABLE`, `STALE`, `FAILED`, ...).
    pub state: Vec<String>,
}

/// A running packet capture (tcpdump in a host); see [`Lab::capture`].
#[derive(Debug)]
pub struct Capture {
    /// The lab process running tcpdump.
    pub process: String,
}

fn parse_json(host: &str, command: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| LabError::Parse {
        host: host.into(),
        command: command.into(),
        reason: e.to_string(),
    })
}

fn macs_after(text: &str, marker: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once(marker))
        .filter_map(|(_, rest)| rest.split_whitespace().next())
        .map(|m| m.trim_end_matches(['(', ')', ',']).to_ascii_lowercase())
        .collect();
    v.sort();
    v.dedup();
    v
}

impl Lab {
    /// The host's neighbor table, both families.
    pub fn neighbors(&self, host: &str) -> Result<Vec<Neighbor>> {
        let text = self.exec(host, &["ip", "-j", "neigh", "show"])?;
        let v = parse_json(host, "ip -j neigh show", &text)?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| {
                Some(Neighbor {
                    ip: n.get("dst")?.as_str()?.parse().ok()?,
                    dev: n.get("dev")?.as_str()?.into(),
                    lladdr: n
                        .get("lladdr")
                        .and_then(Value::as_str)
                        .map(str::to_ascii_lowercase),
                    state: n
                        .get("state")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect(),
                })
            })
            .collect())
    }

    /// Forget every neighbor entry of `dev` in `host`.
    pub fn flush_neighbors(&self, host: &str, dev: &str) -> Result<()> {
        self.exec(host, &["ip", "neigh", "flush", "dev", dev])
            .map(drop)
    }

    /// The next hops the host's kernel uses for `prefix` (several for an ECMP route; empty if
    /// there is no such route).
    pub fn kernel_next_hops(&self, host: &str, prefix: &str) -> Result<Vec<IpAddr>> {
        let family = if prefix.contains(':') { "-6" } else { "-4" };
        let text = self.exec(
            host,
            &["ip", "-j", family, "route", "show", "exact", prefix],
        )?;
        let v = parse_json(host, "ip -j route show", &text)?;
        let gw = |r: &Value| r.get("gateway")?.as_str()?.parse::<IpAddr>().ok();
        let mut hops: Vec<IpAddr> = Vec::new();
        for r in v.as_array().into_iter().flatten() {
            hops.extend(gw(r));
            for n in r
                .get("nexthops")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                hops.extend(gw(n));
            }
        }
        hops.sort();
        Ok(hops)
    }

    /// Bring a link of a host down or up, as a pulled cable would.
    pub fn set_link(&self, host: &str, dev: &str, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        self.exec(host, &["ip", "link", "set", "dev", dev, state])
            .map(drop)
    }

    /// The MAC address of a host's interface, lower case.
    pub fn mac(&self, host: &str, dev: &str) -> Result<String> {
        let text = self.exec(host, &["ip", "-j", "link", "show", "dev", dev])?;
        let v = parse_json(host, "ip -j link show", &text)?;
        v.get(0)
            .and_then(|l| l.get("address"))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| LabError::Parse {
                host: host.into(),
                command: format!("ip -j link show dev {dev}"),
                reason: "no address".into(),
            })
    }

    /// Send `count` ARP requests for `target` out of `dev` of `host` (arping) and return the
    /// MAC addresses that answered (empty if none did).
    pub fn arping(
        &self,
        host: &str,
        dev: &str,
        target: Ipv4Addr,
        count: u32,
    ) -> Result<Vec<String>> {
        self.run_arping(host, dev, target, &["-c", &count.to_string()])
    }

    /// One ARP request for `target` out of `dev` of `host`, waiting at most `deadline` for
    /// answers (arping -w): the MACs that answered in time, for polling at a fine grain.
    pub fn arping_once(
        &self,
        host: &str,
        dev: &str,
        target: Ipv4Addr,
        deadline: Duration,
    ) -> Result<Vec<String>> {
        let secs = format!("{:.3}", deadline.as_secs_f64());
        self.run_arping(host, dev, target, &["-c", "1", "-w", &secs])
    }

    fn run_arping(
        &self,
        host: &str,
        dev: &str,
        target: Ipv4Addr,
        options: &[&str],
    ) -> Result<Vec<String>> {
        require_tool("arping", "arping")?;
        let target = target.to_string();
        let mut argv = vec!["arping"];
        argv.extend_from_slice(options);
        argv.extend(["-i", dev, &target]);
        let out = self.exec_output(host, &argv)?;
        Ok(macs_after(
            &String::from_utf8_lossy(&out.stdout),
            "bytes from ",
        ))
    }

    /// Send an NDP neighbor solicitation for `target` out of `dev` of `host` (ndisc6) and
    /// return the MAC addresses that answered (empty if none did).
    pub fn ndisc(&self, host: &str, dev: &str, target: Ipv6Addr) -> Result<Vec<String>> {
        require_tool("ndisc6", "ndisc6")?;
        let out = self.exec_output(
            host,
            &[
                "ndisc6",
                "-m",
                "-n",
                "-r",
                "1",
                "-w",
                "1000",
                &target.to_string(),
                dev,
            ],
        )?;
        Ok(macs_after(
            &String::from_utf8_lossy(&out.stdout),
            "Target link-layer address:",
        ))
    }

    /// Start capturing packets on `dev` of `host` (tcpdump, numeric, with link-layer headers)
    /// matching the pcap `filter`; returns once tcpdump listens.
    pub fn capture(&self, host: &str, dev: &str, filter: &str) -> Result<Capture> {
        static N: AtomicU32 = AtomicU32::new(0);
        let tcpdump = require_tool("tcpdump", "tcpdump")?;
        let what = format!("{CAPTURE}{}", N.fetch_add(1, Ordering::Relaxed));
        let mut argv = vec![
            tcpdump.to_str().unwrap_or("tcpdump"),
            "-i",
            dev,
            "-n",
            "-e",
            "-l",
            "-U",
            // Hand each packet over at once, not in blocks: a short capture must see it all.
            "--immediate-mode",
        ];
        argv.extend(filter.split_whitespace());
        let process = self.spawn(&what, host, &argv)?;
        self.wait_log(&process, "listening on", Duration::from_secs(5))?;
        Ok(Capture { process })
    }

    /// Stop a capture and return the packets it saw, one line each.
    pub fn stop_capture(&self, capture: Capture) -> Result<Vec<String>> {
        self.stop_process(&capture.process)?;
        let log = self.log(&capture.process)?;
        Ok(log
            .lines()
            .filter(|l| {
                !(l.starts_with("listening on")
                    || l.starts_with("tcpdump:")
                    || l.contains("packets captured")
                    || l.contains("packets received by filter")
                    || l.contains("packets dropped by kernel"))
            })
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect())
    }
}
