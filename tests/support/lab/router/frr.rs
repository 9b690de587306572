//! FRR: zebra, bgpd and (for the router, or with BFD) bfdd, each in the foreground as a lab
//! process. Every path is per daemon instance (config, pid file, zserv socket, vty sockets,
//! bfdd control socket in the instance's directory), so parallel labs never share anything
//! under /etc/frr or /var/run/frr. The daemons drop privileges to the `frr` user, which owns
//! the directory; `vtysh --vty_socket <dir>` reads them.

use super::view::{Community, LargeCommunity, RoutePath, Session, session_name};
use super::{BgpConfig, BgpDaemon, MULTIHOP_HOPS};
use crate::lab::cmd;
use crate::lab::error::{LabError, Result, io};
use crate::lab::instance::Lab;
use serde_json::Value;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

/// `bgpd.conf` for `c`.
pub fn bgpd_config(c: &BgpConfig, hostname: &str) -> String {
    let mut s =
        format!("frr defaults datacenter\nhostname {hostname}\nlog stdout informational\n!\n");
    s.push_str("route-map DENY deny 10\n!\n");
    for (i, a) in c.announce.iter().enumerate() {
        let (pl, m) = if a.prefix.addr().is_ipv4() {
            ("ip", "ip")
        } else {
            ("ipv6", "ipv6")
        };
        let _ = writeln!(s, "{pl} prefix-list ANN{i} permit {}", a.prefix);
        let _ = writeln!(
            s,
            "route-map ANNOUNCE permit {}\n match {m} address prefix-list ANN{i}",
            10 * (i + 1)
        );
        if !a.communities.is_empty() {
            let list: Vec<String> = a.communities.iter().map(|c| c.to_string()).collect();
            let _ = writeln!(s, " set community {}", list.join(" "));
        }
        if !a.large_communities.is_empty() {
            let list: Vec<String> = a.large_communities.iter().map(|c| c.to_string()).collect();
            let _ = writeln!(s, " set large-community {}", list.join(" "));
        }
        if let Some(lp) = a.local_pref {
            let _ = writeln!(s, " set local-preference {lp}");
        }
    }
    s.push_str("route-map ANNOUNCE permit 65000\n!\n");
    let _ = writeln!(
        s,
        "router bgp {}\n bgp router-id {}\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n \
         no bgp network import-check\n bgp bestpath as-path multipath-relax",
        c.asn, c.router_id
    );
    if c.graceful_restart {
        s.push_str(" bgp graceful-restart\n");
    }
    for n in &c.neighbors {
        let _ = writeln!(
            s,
            " neighbor {} remote-as {}\n neighbor {} timers connect 1",
            n.addr, n.asn, n.addr
        );
        if c.bfd {
            let _ = writeln!(s, " neighbor {} bfd", n.addr);
        }
        if let Some(p) = &c.password {
            let _ = writeln!(s, " neighbor {} password {p}", n.addr);
        }
        // Multi-hop: FRR otherwise refuses an eBGP neighbor that is not on a connected
        // network, and the sessions must come from the address not on the nodes' link.
        // `ttl-security hops` (GTSM, RFC 5082) allows it like `ebgp-multihop` (FRR refuses
        // both together), sends TTL 255 and drops segments with less than 255 - hops + 1:
        // the session only forms if the neighbor sends 255 itself, which is what proves the
        // speaker's multi-hop TTL.
        if let Some(src) = c
            .multihop_source
            .filter(|a| a.is_ipv4() == n.addr.is_ipv4())
        {
            let _ = writeln!(
                s,
                " neighbor {} ttl-security hops {MULTIHOP_HOPS}\n neighbor {} update-source {src}",
                n.addr, n.addr
            );
        }
    }
    for (v6, fam) in [(false, "ipv4"), (true, "ipv6")] {
        let _ = writeln!(s, " address-family {fam} unicast");
        for a in c
            .announce
            .iter()
            .filter(|a| a.prefix.addr().is_ipv6() == v6)
        {
            let _ = writeln!(s, "  network {}", a.prefix);
        }
        for n in c.neighbors.iter().filter(|n| n.addr.is_ipv6() == v6) {
            let _ = writeln!(s, "  neighbor {} activate", n.addr);
            if c.install_routes {
                let _ = writeln!(s, "  neighbor {} route-map DENY out", n.addr);
            } else {
                let _ = writeln!(s, "  neighbor {} route-map DENY in", n.addr);
                let _ = writeln!(s, "  neighbor {} route-map ANNOUNCE out", n.addr);
                if n.asn == c.asn {
                    let _ = writeln!(s, "  neighbor {} next-hop-self", n.addr);
                }
            }
        }
        s.push_str("  maximum-paths 8\n  maximum-paths ibgp 8\n exit-address-family\n");
    }
    s
}

fn vtysh(d: &BgpDaemon, commands: &[String]) -> Result<String> {
    let dir = d.dir.to_string_lossy().into_owned();
    let mut argv = vec!["vtysh", "--vty_socket", &dir];
    for c in commands {
        argv.extend(["-c", c.as_str()]);
    }
    cmd::run(&d.host, cmd::in_netns(&d.netns, &argv))
}

pub(super) fn start(lab: &Lab, d: &mut BgpDaemon) -> Result<()> {
    if !std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .contains("\nfrr:")
    {
        return Err(LabError::MissingTool {
            tool: "the frr user".into(),
            package: "frr".into(),
        });
    }
    let dir = d.dir.to_string_lossy().into_owned();
    let hostname = d.host.clone();
    let mut daemons = vec!["zebra", "bgpd"];
    if d.config.install_routes || d.config.bfd {
        daemons.push("bfdd");
    }
    for daemon in &daemons {
        let text = if *daemon == "bgpd" {
            bgpd_config(&d.config, &hostname)
        } else {
            format!("hostname {hostname}\nlog stdout informational\n")
        };
        let p = d.dir.join(format!("{daemon}.conf"));
        std::fs::write(&p, text).map_err(io(&p))?;
    }
    cmd::run(&d.host, {
        let mut c = std::process::Command::new("chown");
        c.args(["-R", "frr:frr", &dir]);
        c
    })?;
    let zserv = format!("{dir}/zserv.api");
    for daemon in &daemons {
        let bin = cmd::require_tool(daemon, "frr")?
            .to_string_lossy()
            .into_owned();
        let (conf, pid) = (
            format!("{dir}/{daemon}.conf"),
            format!("{dir}/{daemon}.pid"),
        );
        let bfdctl = format!("{dir}/bfdd.sock");
        let mut argv = vec![
            bin.as_str(),
            "-u",
            "frr",
            "-g",
            "frr",
            "-f",
            &conf,
            "-i",
            &pid,
            "-z",
            &zserv,
            "--vty_socket",
            &dir,
            "-A",
            "127.0.0.1",
            "-P",
            "0",
            "--log",
            "stdout",
        ];
        if *daemon == "bfdd" {
            argv.extend(["--bfdctl", &bfdctl]);
        }
        let name = lab.spawn(daemon, &d.host, &argv)?;
        d.processes.push(name.clone());
        if *daemon == "zebra" {
            // The other daemons connect to zebra at start; let it listen first.
            let sock = std::path::PathBuf::from(&zserv);
            lab.wait_process(
                &name,
                &format!("{name} to create {zserv}"),
                Duration::from_secs(10),
                || {
                    if sock.exists() {
                        Ok(())
                    } else {
                        Err("no socket yet".into())
                    }
                },
            )?;
        }
    }
    crate::lab::wait::wait_until(
        &format!("FRR bgpd on {} to answer vtysh", d.host),
        Duration::from_secs(10),
        || {
            for p in &d.processes {
                if !lab.is_running(p)? {
                    return Err(LabError::Spec(format!("{p} exited:\n{}", lab.log(p)?)));
                }
            }
            Ok(vtysh(d, &["show bgp summary json".into()])
                .map(drop)
                .map_err(|e| e.to_string()))
        },
    )
}

fn json_values(d: &BgpDaemon, command: &str, text: &str) -> Result<Vec<Value>> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| LabError::Parse {
            host: d.host.clone(),
            command: command.into(),
            reason: e.to_string(),
        })
}

pub(super) fn sessions(d: &BgpDaemon) -> Result<Vec<Session>> {
    let command = "show bgp neighbors json";
    let text = vtysh(d, &[command.into()])?;
    let v = json_values(d, command, &text)?;
    let mut out = Vec::new();
    for (addr, n) in v.first().and_then(Value::as_object).into_iter().flatten() {
        let Ok(peer) = addr.parse::<IpAddr>() else {
            continue;
        };
        let state = n
            .get("bgpState")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        out.push(Session {
            name: session_name(&d.config.neighbors, peer),
            peer,
            peer_asn: n.get("remoteAs").and_then(Value::as_u64).map(|a| a as u32),
            established: state == "Established",
            state,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub(super) fn routes(d: &BgpDaemon) -> Result<Vec<RoutePath>> {
    let families = ["ipv4", "ipv6"];
    let lists: Vec<String> = families
        .iter()
        .map(|f| format!("show bgp {f} unicast json"))
        .collect();
    let text = vtysh(d, &lists)?;
    let tables = json_values(d, "show bgp ... unicast json", &text)?;
    let mut details = Vec::new();
    for (fam, table) in families.iter().zip(&tables) {
        for prefix in table
            .get("routes")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            details.push(format!("show bgp {fam} unicast {prefix} json"));
        }
    }
    if details.is_empty() {
        return Ok(Vec::new());
    }
    let text = vtysh(d, &details)?;
    let mut out = Vec::new();
    for detail in json_values(d, "show bgp ... unicast PREFIX json", &text)? {
        out.extend(parse_detail(&detail));
    }
    Ok(out)
}

/// Parse the paths of `show bgp <afi> unicast <prefix> json`.
pub fn parse_detail(v: &Value) -> Vec<RoutePath> {
    let Some(prefix) = v
        .get("prefix")
        .and_then(Value::as_str)
        .and_then(|p| p.parse().ok())
    else {
        return Vec::new();
    };
    let strings = |p: &Value, key: &str| -> Vec<String> {
        p.get(key)
            .and_then(|c| c.get("list"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    let mut out = Vec::new();
    for p in v
        .get("paths")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut r = RoutePath::new(prefix);
        r.as_path = p
            .get("aspath")
            .and_then(|a| a.get("segments"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|s| {
                s.get("list")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|a| a.as_u64().map(|a| a as u32))
            .collect();
        r.communities = strings(p, "community")
            .iter()
            .filter_map(|c| Community::parse(c))
            .collect();
        r.large_communities = strings(p, "largeCommunity")
            .iter()
            .filter_map(|c| LargeCommunity::parse(c))
            .collect();
        r.local_pref = p.get("locPrf").and_then(Value::as_u64).map(|l| l as u32);
        r.best = p
            .get("bestpath")
            .and_then(|b| b.get("overall"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        r.peer = p
            .get("peer")
            .and_then(|x| x.get("peerId"))
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok());
        // IPv6 paths carry the global next hop and the link-local one; report the global.
        r.next_hop = p
            .get("nexthops")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|n| n.get("scope").and_then(Value::as_str) != Some("link-local"))
            .and_then(|n| n.get("ip")?.as_str()?.parse().ok());
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_prefix_detail() {
        let v: Value = serde_json::from_str(
            r#"{"prefix":"fd00:250::1/128","paths":[{"aspath":{"string":"64512","segments":[{"type":"as-sequence","list":[64512]}],"length":1},
            "bestpath":{"overall":true},"community":{"string":"65000:300 no-export","list":["65000:300","no-export"]},
            "largeCommunity":{"string":"64512:1:1","list":["64512:1:1"]},"locPrf":150,
            "nexthops":[{"ip":"fd00:100::11","afi":"ipv6","scope":"global"},{"ip":"fe80::1","afi":"ipv6","scope":"link-local","used":true}],
            "peer":{"peerId":"fd00:100::11"}},{"aspath":{"segments":[]},"nexthops":[{"ip":"fd00:100::12"}],"peer":{"peerId":"fd00:100::12"}}]}"#,
        )
        .unwrap();
        let r = parse_detail(&v);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].prefix.to_string(), "fd00:250::1/128");
        assert_eq!(r[0].as_path, [64512]);
        assert!(r[0].best && !r[1].best);
        assert_eq!(
            r[0].communities,
            [Community(65000, 300), Community(65535, 65281)]
        );
        assert_eq!(r[0].large_communities, [LargeCommunity(64512, 1, 1)]);
        assert_eq!(r[0].local_pref, Some(150));
        assert_eq!(r[0].next_hop, Some("fd00:100::11".parse().unwrap()));
        assert_eq!(r[1].peer, Some("fd00:100::12".parse().unwrap()));
        assert_eq!(r[1].local_pref, None);
    }
}
