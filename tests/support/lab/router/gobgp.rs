//! GoBGP: `gobgpd` with a TOML configuration, its gRPC API on the host's own loopback, read
//! with `gobgp -j`. A peer's routes are added through the API once it is up.
//!
//! gobgpd does not touch the kernel. For the router the lab runs `ferrolb-lab gobgp-sync`
//! beside it, which every 200 ms mirrors gobgpd's RIB into the router's kernel table: for each
//! prefix, the next hops of every path as good as the best one (same LOCAL_PREF and AS path
//! length, i.e. multipath) become one ECMP route with `proto bgp`; prefixes that disappeared
//! are deleted.

use super::view::{Community, LargeCommunity, RoutePath, Session, session_name};
use super::{BgpConfig, BgpDaemon, GOBGP_API_PORT};
use crate::lab::cmd;
use crate::lab::error::{LabError, Result, io};
use crate::lab::instance::{Lab, binary};
use ipnet::IpNet;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

/// `gobgpd.toml` for `c`.
pub fn config(c: &BgpConfig) -> String {
    let mut s = format!(
        "[global.config]\n  as = {}\n  router-id = \"{}\"\n",
        c.asn, c.router_id
    );
    // The router learns and never re-advertises. (A peer cannot reject imports the same way:
    // GoBGP's global import policy also rejects routes added through its own API. It learns
    // nothing anyway, since the router exports nothing.)
    if c.install_routes {
        s.push_str("[global.apply-policy.config]\n  default-export-policy = \"reject-route\"\n");
    }
    s.push_str("[global.use-multiple-paths.config]\n  enabled = true\n");
    for n in &c.neighbors {
        let fam = if n.addr.is_ipv4() {
            "ipv4-unicast"
        } else {
            "ipv6-unicast"
        };
        let _ = writeln!(
            s,
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}",
            n.addr, n.asn
        );
        if let Some(p) = &c.password {
            let _ = writeln!(s, "    auth-password = \"{p}\"");
        }
        s.push_str(
            "  [neighbors.timers.config]\n    connect-retry = 1\n    idle-hold-time-after-reset = 1\n",
        );
        if c.graceful_restart {
            s.push_str("  [neighbors.graceful-restart.config]\n    enabled = true\n");
        }
        let _ = writeln!(
            s,
            "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{fam}\""
        );
        if c.graceful_restart {
            s.push_str(
                "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n",
            );
        }
    }
    s
}

/// A `gobgp` CLI command against the API port; in `netns` from outside, or locally from the
/// sync agent that already runs in the router's namespace.
fn gobgp(netns: Option<&str>, args: &[&str]) -> Command {
    let port = GOBGP_API_PORT.to_string();
    let mut argv = vec!["gobgp", "-u", "127.0.0.1", "-p", &port];
    argv.extend(args);
    match netns {
        Some(ns) => cmd::in_netns(ns, &argv),
        None => {
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            c
        }
    }
}

pub(super) fn start(lab: &Lab, d: &mut BgpDaemon) -> Result<()> {
    let conf = d.dir.join("gobgpd.toml");
    std::fs::write(&conf, config(&d.config)).map_err(io(&conf))?;
    let api = format!("127.0.0.1:{GOBGP_API_PORT}");
    let conf = conf.to_string_lossy().into_owned();
    let argv = [
        "gobgpd",
        "-f",
        &conf,
        "--api-hosts",
        &api,
        "--pprof-disable",
        "-p",
        "-l",
        "info",
    ];
    let name = lab.spawn("gobgpd", &d.host, &argv)?;
    d.processes.push(name.clone());
    lab.wait_process(
        &name,
        &format!("{name} to answer on {api}"),
        Duration::from_secs(10),
        || {
            cmd::run(&d.host, gobgp(Some(&d.netns), &["neighbor", "-j"]))
                .map(drop)
                .map_err(|e| e.to_string())
        },
    )?;
    for a in &d.config.announce {
        let fam = if a.prefix.addr().is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let prefix = a.prefix.to_string();
        let mut args: Vec<String> = ["global", "rib", "-a", fam, "add", &prefix]
            .map(String::from)
            .to_vec();
        if !a.communities.is_empty() {
            let list: Vec<String> = a.communities.iter().map(|c| c.to_string()).collect();
            args.extend(["community".into(), list.join(",")]);
        }
        if !a.large_communities.is_empty() {
            let list: Vec<String> = a.large_communities.iter().map(|c| c.to_string()).collect();
            args.extend(["large-community".into(), list.join(",")]);
        }
        if let Some(lp) = a.local_pref {
            args.extend(["local-pref".into(), lp.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cmd::run(&d.host, gobgp(Some(&d.netns), &args))?;
    }
    if d.config.install_routes {
        let bin = binary("ferrolb-lab")?.to_string_lossy().into_owned();
        d.processes
            .push(lab.spawn("gobgp-sync", &d.host, &[&bin, "gobgp-sync"])?);
    }
    Ok(())
}

fn parse(host: &str, command: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| LabError::Parse {
        host: host.into(),
        command: command.into(),
        reason: e.to_string(),
    })
}

const STATES: [&str; 7] = [
    "Unknown",
    "Idle",
    "Connect",
    "Active",
    "OpenSent",
    "OpenConfirm",
    "Established",
];

pub(super) fn sessions(d: &BgpDaemon) -> Result<Vec<Session>> {
    let text = cmd::run(&d.host, gobgp(Some(&d.netns), &["neighbor", "-j"]))?;
    let v = parse(&d.host, "gobgp neighbor -j", &text)?;
    let mut out = Vec::new();
    for n in v.as_array().into_iter().flatten() {
        let state = n.get("state");
        let Some(peer) = state
            .and_then(|s| s.get("neighbor_address"))
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok())
        else {
            continue;
        };
        let word = match state.and_then(|s| s.get("session_state")) {
            Some(Value::Number(n)) => STATES
                .get(n.as_u64().unwrap_or(0) as usize)
                .copied()
                .unwrap_or("?")
                .to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => "Idle".to_string(),
        };
        out.push(Session {
            name: session_name(&d.config.neighbors, peer),
            peer,
            peer_asn: n
                .get("conf")
                .and_then(|c| c.get("peer_asn"))
                .and_then(Value::as_u64)
                .map(|a| a as u32),
            established: word.eq_ignore_ascii_case("established"),
            state: word,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn rib(netns: Option<&str>, host: &str) -> Result<Vec<RoutePath>> {
    let mut out = Vec::new();
    for fam in ["ipv4", "ipv6"] {
        let text = cmd::run(host, gobgp(netns, &["global", "rib", "-a", fam, "-j"]))?;
        out.extend(parse_rib(&parse(host, "gobgp global rib -j", &text)?));
    }
    Ok(out)
}

pub(super) fn routes(d: &BgpDaemon) -> Result<Vec<RoutePath>> {
    rib(Some(&d.netns), &d.host)
}

/// Parse `gobgp global rib -j`: prefix -> paths, each with typed path attributes.
pub fn parse_rib(v: &Value) -> Vec<RoutePath> {
    let mut out = Vec::new();
    for (prefix, paths) in v.as_object().into_iter().flatten() {
        let Ok(prefix) = prefix.parse::<IpNet>() else {
            continue;
        };
        for p in paths.as_array().into_iter().flatten() {
            let mut r = RoutePath::new(prefix);
            r.best = p.get("best").and_then(Value::as_bool).unwrap_or(false);
            r.peer = p
                .get("neighbor-ip")
                .and_then(Value::as_str)
                .and_then(|a| a.parse().ok());
            for a in p
                .get("attrs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                match a.get("type").and_then(Value::as_u64) {
                    Some(2) => {
                        r.as_path = a
                            .get("as_paths")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .flat_map(|s| {
                                s.get("asns")
                                    .and_then(Value::as_array)
                                    .cloned()
                                    .unwrap_or_default()
                            })
                            .filter_map(|n| n.as_u64().map(|n| n as u32))
                            .collect()
                    }
                    Some(3 | 14) => {
                        r.next_hop = a
                            .get("nexthop")
                            .and_then(Value::as_str)
                            .and_then(|n| n.parse().ok())
                    }
                    Some(5) => {
                        r.local_pref = a.get("value").and_then(Value::as_u64).map(|n| n as u32)
                    }
                    Some(8) => {
                        r.communities = a
                            .get("communities")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|c| c.as_u64().map(|c| Community::from_u32(c as u32)))
                            .collect()
                    }
                    Some(32) => {
                        let n =
                            |c: &Value, k: &str| c.get(k).and_then(Value::as_u64).map(|n| n as u32);
                        r.large_communities = a
                            .get("value")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|c| {
                                Some(LargeCommunity(
                                    n(c, "ASN")?,
                                    n(c, "LocalData1")?,
                                    n(c, "LocalData2")?,
                                ))
                            })
                            .collect()
                    }
                    _ => {}
                }
            }
            out.push(r);
        }
    }
    out
}

/// For each prefix, the sorted next hops of the paths as good as the best one.
pub fn multipath(paths: &[RoutePath]) -> BTreeMap<IpNet, Vec<IpAddr>> {
    let mut by_prefix: BTreeMap<IpNet, Vec<&RoutePath>> = BTreeMap::new();
    for p in paths {
        by_prefix.entry(p.prefix).or_default().push(p);
    }
    let key = |p: &RoutePath| (p.local_pref.unwrap_or(100), usize::MAX - p.as_path.len());
    by_prefix
        .into_iter()
        .filter_map(|(prefix, ps)| {
            let best = ps.iter().find(|p| p.best).or(ps.first())?;
            let mut hops: Vec<IpAddr> = ps
                .iter()
                .filter(|p| key(p) == key(best))
                .filter_map(|p| p.next_hop)
                .collect();
            hops.sort();
            hops.dedup();
            (!hops.is_empty()).then_some((prefix, hops))
        })
        .collect()
}

fn kernel_bgp_routes(v6: bool) -> Result<BTreeMap<IpNet, Vec<IpAddr>>> {
    let mut c = Command::new("ip");
    c.args([
        "-j",
        if v6 { "-6" } else { "-4" },
        "route",
        "show",
        "proto",
        "bgp",
    ]);
    let text = cmd::run("router", c)?;
    let v = parse("router", "ip -j route show proto bgp", &text)?;
    let mut out = BTreeMap::new();
    for r in v.as_array().into_iter().flatten() {
        let Some(dst) = r.get("dst").and_then(Value::as_str) else {
            continue;
        };
        let net: Option<IpNet> = match dst {
            "default" if v6 => "::/0".parse().ok(),
            "default" => "0.0.0.0/0".parse().ok(),
            d if d.contains('/') => d.parse().ok(),
            d => d.parse::<IpAddr>().ok().map(IpNet::from),
        };
        let gw = |x: &Value| x.get("gateway")?.as_str()?.parse::<IpAddr>().ok();
        let mut hops: Vec<IpAddr> = gw(r).into_iter().collect();
        hops.extend(
            r.get("nexthops")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(gw),
        );
        hops.sort();
        if let Some(net) = net {
            out.insert(net, hops);
        }
    }
    Ok(out)
}

/// One pass of the sync: make the kernel's `proto bgp` routes equal gobgpd's multipath RIB.
/// Runs inside the router's namespace. Returns the changes made, for the log.
pub fn sync_once() -> Result<Vec<String>> {
    let want = multipath(&rib(None, "router")?);
    let mut changes = Vec::new();
    for v6 in [false, true] {
        let have = kernel_bgp_routes(v6)?;
        let fam = if v6 { "-6" } else { "-4" };
        for (net, hops) in want.iter().filter(|(n, _)| n.addr().is_ipv6() == v6) {
            if have.get(net) == Some(hops) {
                continue;
            }
            let mut c = Command::new("ip");
            c.args([fam, "route", "replace", &net.to_string(), "proto", "bgp"]);
            if let [one] = hops[..] {
                c.args(["via", &one.to_string()]);
            } else {
                for h in hops {
                    c.args(["nexthop", "via", &h.to_string()]);
                }
            }
            cmd::run("router", c)?;
            changes.push(format!("{net} via {hops:?}"));
        }
        for net in have.keys().filter(|n| !want.contains_key(n)) {
            let mut c = Command::new("ip");
            c.args([fam, "route", "del", &net.to_string(), "proto", "bgp"]);
            cmd::run("router", c)?;
            changes.push(format!("{net} withdrawn"));
        }
    }
    Ok(changes)
}

/// Run [`sync_once`] every 200 ms until killed, logging every change and error.
pub fn sync_forever() -> ! {
    println!("gobgp-sync: mirroring gobgpd's RIB (API port {GOBGP_API_PORT}) into the kernel");
    loop {
        match sync_once() {
            Ok(changes) => changes.iter().for_each(|c| println!("gobgp-sync: {c}")),
            Err(e) => eprintln!("gobgp-sync: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RIB: &str = r#"{"10.250.0.1/32":[
        {"nlri":{"prefix":"10.250.0.1/32"},"best":true,"attrs":[{"type":1,"value":0},
         {"type":2,"as_paths":[{"segment_type":2,"num":1,"asns":[64512]}]},{"type":3,"nexthop":"10.100.0.11"},
         {"type":8,"communities":[4259840300]},{"type":32,"value":[{"ASN":64512,"LocalData1":1,"LocalData2":1}]}],
         "neighbor-ip":"10.100.0.11"},
        {"nlri":{"prefix":"10.250.0.1/32"},"attrs":[{"type":2,"as_paths":[{"segment_type":2,"num":1,"asns":[64512]}]},
         {"type":3,"nexthop":"10.100.0.12"}],"neighbor-ip":"10.100.0.12"},
        {"nlri":{"prefix":"10.250.0.1/32"},"attrs":[{"type":2,"as_paths":[{"segment_type":2,"num":2,"asns":[64513,64512]}]},
         {"type":3,"nexthop":"10.100.0.13"}],"neighbor-ip":"10.100.0.13"}],
      "fd00:250::1/128":[{"nlri":{"prefix":"fd00:250::1/128"},"best":true,"attrs":[{"type":5,"value":150},
         {"type":14,"nexthop":"fd00:100::11","afi":2,"safi":1}],"neighbor-ip":"fd00:100::11"}]}"#;

    #[test]
    fn parses_the_rib_and_picks_multipath_next_hops() {
        let paths = parse_rib(&serde_json::from_str(RIB).unwrap());
        assert_eq!(paths.len(), 4);
        let p = &paths[0];
        assert!(p.best);
        assert_eq!(p.as_path, [64512]);
        assert_eq!(p.communities, [Community(65000, 300)]);
        assert_eq!(p.large_communities, [LargeCommunity(64512, 1, 1)]);
        assert_eq!(p.peer, p.next_hop);
        let v6 = paths.iter().find(|p| p.prefix.addr().is_ipv6()).unwrap();
        assert_eq!(v6.local_pref, Some(150));
        assert_eq!(v6.next_hop, Some("fd00:100::11".parse().unwrap()));
        let m = multipath(&paths);
        // The longer AS path via .13 is not as good as the best: it is left out.
        let v4: IpNet = "10.250.0.1/32".parse().unwrap();
        assert_eq!(
            m[&v4],
            [
                "10.100.0.11".parse::<IpAddr>().unwrap(),
                "10.100.0.12".parse().unwrap()
            ]
        );
    }
}
