//! BIRD 2: `bird -f` in the foreground as a lab process, configuration and control socket in
//! the daemon's directory, read through `birdc -s <socket>`.

use super::view::{Community, LargeCommunity, RoutePath, Session};
use super::{BgpConfig, BgpDaemon, MULTIHOP_HOPS};
use crate::lab::cmd;
use crate::lab::error::{LabError, Result};
use crate::lab::instance::Lab;
use std::fmt::Write as _;
use std::time::Duration;

fn socket(d: &BgpDaemon) -> String {
    d.dir.join("bird.ctl").to_string_lossy().into_owned()
}

/// The configuration for `c`. Protocol names are the neighbor names, so the router's view
/// names sessions `node1_v4`, `node1_v6`, ...
pub fn config(c: &BgpConfig) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "router id {};\nlog stderr all;", c.router_id);
    s.push_str("protocol device { scan time 10; }\n");
    if c.install_routes {
        // ECMP: routes to one prefix from several nodes become one multipath kernel route.
        for (fam, name) in [("ipv4", "kernel4"), ("ipv6", "kernel6")] {
            let _ = writeln!(
                s,
                "protocol kernel {name} {{ {fam} {{ import none; export where source = RTS_BGP; }}; merge paths on; }}"
            );
        }
    }
    if c.bfd {
        s.push_str("protocol bfd { }\n");
    }
    if c.multihop_source.is_some() {
        // Multi-hop sessions resolve their next hops recursively, through the connected
        // networks this puts in the tables (only BGP routes go to the kernel).
        s.push_str("protocol direct { ipv4; ipv6; }\n");
    }
    let v4: Vec<_> = c
        .announce
        .iter()
        .filter(|a| a.prefix.addr().is_ipv4())
        .collect();
    let v6: Vec<_> = c
        .announce
        .iter()
        .filter(|a| a.prefix.addr().is_ipv6())
        .collect();
    for (fam, list) in [("ipv4", &v4), ("ipv6", &v6)] {
        if !list.is_empty() {
            let routes: String = list
                .iter()
                .map(|a| format!(" route {} blackhole;", a.prefix))
                .collect();
            let _ = writeln!(s, "protocol static announce_{fam} {{ {fam};{routes} }}");
        }
    }
    s.push_str("filter announce {\n");
    for a in &c.announce {
        let mut set = String::new();
        for cm in &a.communities {
            let _ = write!(set, " bgp_community.add(({},{}));", cm.0, cm.1);
        }
        for l in &a.large_communities {
            let _ = write!(set, " bgp_large_community.add(({},{},{}));", l.0, l.1, l.2);
        }
        if let Some(lp) = a.local_pref {
            let _ = write!(set, " bgp_local_pref = {lp};");
        }
        if !set.is_empty() {
            let _ = writeln!(s, "  if net = {} then {{{set} }}", a.prefix);
        }
    }
    s.push_str("  accept;\n}\n");
    // Short timers: a session comes up within a second of both sides being there, and a
    // refused connection is retried after a second instead of BIRD's default minutes. A
    // connection whose OPEN never comes (a neighbor sending a TTL that GTSM drops) is given
    // up after 5 s instead of 4 minutes, during which BIRD would refuse the neighbor's
    // every new connection.
    // With graceful restart too, a BFD session going down (a restarting speaker's AdminDown)
    // starts a graceful restart instead of a hard reset that would drop the neighbor's routes
    // (BIRD's `bfd graceful`; FRR needs nothing: it does not take AdminDown for a failure).
    let bfd = match (c.bfd, c.graceful_restart) {
        (true, true) => " bfd graceful;",
        (true, false) => " bfd on;",
        (false, _) => "",
    };
    let password = c
        .password
        .as_ref()
        .map(|p| format!(" password \"{p}\";"))
        .unwrap_or_default();
    // `aware` (BIRD's default) already keeps a restarting neighbor's routes; `on` says so.
    let gr = if c.graceful_restart {
        " graceful restart on;"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "template bgp peers {{ local as {}; connect delay time 1; connect retry time 1; error wait time 1, 5; startup hold time 5;{bfd}{password}{gr} }}",
        c.asn
    );
    for n in &c.neighbors {
        let fam = if n.addr.is_ipv4() { "ipv4" } else { "ipv6" };
        let ibgp = n.asn == c.asn;
        let multihop = c
            .multihop_source
            .filter(|src| src.is_ipv4() == n.addr.is_ipv4());
        let channel = if c.install_routes {
            // BIRD refuses `gateway direct` on a multi-hop session.
            let gateway = if multihop.is_some() {
                "recursive"
            } else {
                "direct"
            };
            format!("import all; export none; gateway {gateway};")
        } else {
            let nh = if ibgp { " next hop self;" } else { "" };
            format!("import none; export filter announce;{nh}")
        };
        // `direct` makes BIRD insist the neighbor is on a connected network; a multi-hop
        // session instead comes from the source address, over the routing table. GTSM (RFC
        // 5082) on it: BIRD sends TTL 255 and drops segments with less than 256 - 2 = 254,
        // so the session only forms if the neighbor sends 255 itself, which is what proves
        // the speaker's multi-hop TTL (the kernel's default 64, or 1, is refused).
        let hops = match multihop {
            Some(src) => {
                format!("multihop {MULTIHOP_HOPS}; ttl security yes; source address {src};")
            }
            None => "direct;".to_string(),
        };
        let _ = writeln!(
            s,
            "protocol bgp {} from peers {{ neighbor {} as {}; {hops} {fam} {{ {channel} }}; }}",
            n.name, n.addr, n.asn
        );
    }
    s
}

fn birdc(d: &BgpDaemon, args: &[&str]) -> Result<String> {
    let sock = socket(d);
    let mut argv = vec!["birdc", "-s", &sock];
    argv.extend(args);
    cmd::run(&d.host, cmd::in_netns(&d.netns, &argv))
}

pub(super) fn start(lab: &Lab, d: &mut BgpDaemon) -> Result<()> {
    let conf = d.dir.join("bird.conf");
    std::fs::write(&conf, config(&d.config)).map_err(crate::lab::error::io(&conf))?;
    let (conf, sock) = (conf.to_string_lossy().into_owned(), socket(d));
    let name = lab.spawn("bird", &d.host, &["bird", "-f", "-c", &conf, "-s", &sock])?;
    d.processes.push(name.clone());
    lab.wait_process(
        &name,
        &format!("{name} to answer on {sock}"),
        Duration::from_secs(10),
        || {
            birdc(d, &["show", "status"])
                .map(drop)
                .map_err(|e| e.to_string())
        },
    )
}

pub(super) fn sessions(d: &BgpDaemon) -> Result<Vec<Session>> {
    Ok(parse_sessions(&birdc(d, &["show", "protocols", "all"])?))
}

/// Parse `show protocols all`: a block per protocol, BGP ones carrying `BGP state`,
/// `Neighbor address` and `Neighbor AS` lines.
pub fn parse_sessions(text: &str) -> Vec<Session> {
    let mut out = Vec::new();
    let mut cur: Option<(String, bool)> = None; // (name, is BGP)
    let mut fields: (Option<String>, Option<String>, Option<u32>) = (None, None, None);
    let mut flush = |cur: &Option<(String, bool)>,
                     f: &mut (Option<String>, Option<String>, Option<u32>)| {
        if let (Some((name, true)), Some(peer)) = (cur, f.1.as_ref().and_then(|p| p.parse().ok())) {
            let state = f.0.clone().unwrap_or_else(|| "?".into());
            out.push(Session {
                name: name.clone(),
                peer,
                peer_asn: f.2,
                established: state == "Established",
                state,
            });
        }
        *f = (None, None, None);
    };
    for line in text.lines() {
        if line.is_empty() || line.starts_with("BIRD ") || line.starts_with("Name ") {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            flush(&cur, &mut fields);
            let mut w = line.split_whitespace();
            let name = w.next().unwrap_or_default().to_string();
            cur = Some((name, w.next() == Some("BGP")));
            continue;
        }
        let t = line.trim();
        if let Some(v) = t.strip_prefix("BGP state:") {
            fields.0 = Some(v.trim().into());
        } else if let Some(v) = t.strip_prefix("Neighbor address:") {
            fields.1 = Some(v.trim().into());
        } else if let Some(v) = t.strip_prefix("Neighbor AS:") {
            fields.2 = v.trim().parse().ok();
        }
    }
    flush(&cur, &mut fields);
    out
}

pub(super) fn routes(d: &BgpDaemon) -> Result<Vec<RoutePath>> {
    let text = birdc(d, &["show", "route", "all"])?;
    let mut paths = parse_routes(&text).map_err(|reason| LabError::Parse {
        host: d.host.clone(),
        command: "birdc show route all".into(),
        reason,
    })?;
    for (proto, p) in &mut paths {
        p.peer = d
            .config
            .neighbors
            .iter()
            .find(|n| n.name == *proto)
            .map(|n| n.addr);
    }
    Ok(paths.into_iter().map(|(_, p)| p).collect())
}

fn parens(v: &str) -> Vec<&str> {
    v.split('(')
        .filter_map(|p| p.split_once(')').map(|(inner, _)| inner))
        .collect()
}

/// Parse `show route all` into (protocol name, path) for every BGP route.
pub fn parse_routes(text: &str) -> std::result::Result<Vec<(String, RoutePath)>, String> {
    const KINDS: [&str; 4] = ["unicast", "blackhole", "unreachable", "prohibit"];
    let mut out: Vec<(String, RoutePath, bool)> = Vec::new(); // (proto, path, is BGP)
    let mut prefix = None;
    for line in text.lines() {
        if line.is_empty() || line.starts_with("BIRD ") || line.starts_with("Table ") {
            continue;
        }
        let t = line.trim();
        let first = t.split_whitespace().next().unwrap_or_default();
        let header = if !line.starts_with(char::is_whitespace) {
            let p = first.parse().map_err(|e| format!("{first:?}: {e}"))?;
            prefix = Some(p);
            t[first.len()..].trim_start()
        } else if line.starts_with(' ') && KINDS.contains(&first) {
            t
        } else {
            ""
        };
        if !header.is_empty() {
            let prefix = prefix.ok_or("a route before its prefix")?;
            let proto = header
                .split_once('[')
                .and_then(|(_, r)| r.split_whitespace().next())
                .unwrap_or_default()
                .to_string();
            let mut p = RoutePath::new(prefix);
            p.best = header.contains(" * ");
            out.push((proto, p, false));
            continue;
        }
        let Some((_, p, is_bgp)) = out.last_mut() else {
            continue;
        };
        let (key, value) = t.split_once(':').unwrap_or((t, ""));
        let value = value.trim();
        match key {
            "Type" => *is_bgp = value.starts_with("BGP"),
            "BGP.next_hop" => {
                p.next_hop = value.split_whitespace().next().and_then(|a| a.parse().ok())
            }
            "BGP.as_path" => {
                p.as_path = value
                    .split_whitespace()
                    .filter_map(|a| a.parse().ok())
                    .collect()
            }
            "BGP.local_pref" => p.local_pref = value.parse().ok(),
            "BGP.community" => {
                p.communities = parens(value)
                    .into_iter()
                    .filter_map(|c| Community::parse(&c.replace(',', ":")))
                    .collect()
            }
            "BGP.large_community" => {
                p.large_communities = parens(value)
                    .into_iter()
                    .filter_map(LargeCommunity::parse)
                    .collect()
            }
            _ => {}
        }
    }
    Ok(out
        .into_iter()
        .filter(|(_, _, bgp)| *bgp)
        .map(|(proto, p, _)| (proto, p))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = "BIRD 2.0.12 ready.
Table master4:
10.250.0.1/32        unicast [node1_v4 03:44:03.641] * (100) [AS64512i]
\tvia 10.100.0.11 on eth0
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 64512
\tBGP.next_hop: 10.100.0.11
\tBGP.local_pref: 100
\tBGP.community: (65000,300) (1,2)
\tBGP.large_community: (64512, 1, 1)
                     unicast [node2_v4 03:44:04.000] (100) [AS64512i]
\tvia 10.100.0.12 on eth0
\tType: BGP univ
\tBGP.as_path: 64512
\tBGP.next_hop: 10.100.0.12
\tBGP.local_pref: 100
10.244.1.0/24        blackhole [announce_ipv4 03:44:03.641] * (200)
\tType: static univ

Table master6:
fd00:250::1/128      unicast [node1_v6 03:44:03.685] * (100) [AS64512i]
\tvia fd00:100::11 on eth0
\tType: BGP univ
\tBGP.next_hop: fd00:100::11 fe80::8dc:24ff:fefd:cb52
";

    #[test]
    fn parses_routes() {
        let r = parse_routes(ROUTES).unwrap();
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!(r[0].0, "node1_v4");
        assert!(r[0].1.best && !r[1].1.best);
        assert_eq!(r[0].1.communities, [Community(65000, 300), Community(1, 2)]);
        assert_eq!(r[0].1.large_communities, [LargeCommunity(64512, 1, 1)]);
        assert_eq!(r[0].1.local_pref, Some(100));
        assert_eq!(r[0].1.as_path, [64512]);
        assert_eq!(r[1].1.next_hop, Some("10.100.0.12".parse().unwrap()));
        assert_eq!(r[2].1.next_hop, Some("fd00:100::11".parse().unwrap()));
        assert_eq!(r[2].1.prefix.to_string(), "fd00:250::1/128");
    }

    #[test]
    fn parses_sessions() {
        let text = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     03:44:02.754

node1_v4   BGP        ---        up     03:44:03.553  Established
  BGP state:          Established
    Neighbor address: 10.100.0.11
    Neighbor AS:      64512
node2_v6   BGP        ---        start  03:44:03.553  Active        Socket: Connection refused
  BGP state:          Active
    Neighbor address: fd00:100::12
    Neighbor AS:      64512
";
        let s = parse_sessions(text);
        assert_eq!(s.len(), 2);
        assert!(s[0].established);
        assert_eq!(s[1].state, "Active");
        assert_eq!(
            s[1].peer,
            "fd00:100::12".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(s[1].peer_asn, Some(64512));
    }
}
