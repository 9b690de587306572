//! Programming N Services × E endpoints from nothing, and then one endpoint change in that
//! state, for both data paths, in a lab node's namespace.
//!
//! - nftables: `render_full` + `nft -f` per family (what `NftablesDataplane::apply` does the
//!   first time), then `render_changes` + `nft -f` for one moved endpoint (what it does next);
//! - userspace: `UserspaceProxy::apply` (one listener per virtual server) + the redirect
//!   program, then the same endpoint change.
//!
//! The table itself is built the way the speaker builds it from a snapshot (clone the
//! objects, `build_table`); that time is reported apart.

use crate::child::{emit, emit_time, figures, nft, require_lab_netns, run_bounded};
use crate::report::{Report, duration, thousands};
use crate::services;
use ferrolb_e2e::lab::Lab;
use ferrolb_shared::ipvs::model::{Table, VsKey};
use ferrolb_shared::ipvs::nft::{
    Family, Target, chain_name, map_name, render_changes, render_changes_with, render_full,
    render_full_with,
};
use ferrolb_speaker::dataplane::userspace::{
    DEFAULT_PORTS, DEFAULT_UDP_IDLE_TIMEOUT, UserspaceProxy,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// Endpoint changes measured (the figure is their median; the worst is reported too).
pub const CHANGES: usize = 5;
const FAMILIES: [Family; 2] = [Family::Ip, Family::Ip6];
/// A node of its own (no pods, no traffic): the program starts from nothing.
const NODE: &str = "node2";

/// The scenario, inside the node: prints `figure KEY VALUE` lines as it goes.
pub fn child(n: usize, per_service: usize) -> Result<(), String> {
    require_lab_netns()?;
    let node_addr = IpAddr::from(Ipv4Addr::new(10, 100, 0, 12));
    let (svcs, mut slices) = services::cluster_ip_services(n, per_service);
    let t = Instant::now();
    let table = services::table(&svcs, &slices, NODE, node_addr);
    emit_time("table_build", t.elapsed());
    emit("virtual_servers", table.servers.len() as f64);
    let real: usize = table.servers.values().map(|v| v.real_servers.len()).sum();
    emit("real_servers", real as f64);

    // The successive tables: one endpoint moves in a different Service each time.
    let mut tables = vec![table];
    let mut rebuild = Vec::new();
    for r in 0..CHANGES {
        let i = (r + 1) * n / (CHANGES + 1);
        let new_addr = Ipv4Addr::new(10, 244, 255, r as u8 + 1);
        services::move_endpoint(&mut slices, i, per_service / 2, new_addr);
        let t = Instant::now();
        tables.push(services::table(&svcs, &slices, NODE, node_addr));
        rebuild.push(t.elapsed());
    }
    emit_time("table_rebuild", median(&rebuild));

    nftables(&tables)?;
    for f in ["ip", "ip6"] {
        nft(&format!("delete table {f} ferrolb"))?;
    }
    userspace(&tables)
}

fn nftables(tables: &[Table]) -> Result<(), String> {
    let (mut render, mut apply) = (Duration::ZERO, Duration::ZERO);
    let mut lines = 0;
    for family in FAMILIES {
        let t = Instant::now();
        let script = render_full(&tables[0], family);
        render += t.elapsed();
        lines += script.lines().count();
        let t = Instant::now();
        nft(&script)?;
        apply += t.elapsed();
    }
    emit_time("nft_full_render", render);
    emit_time("nft_full_apply", apply);
    emit("nft_full_lines", lines as f64);
    check_chain(&tables[0], None)?;
    let (mut render, mut apply) = (Vec::new(), Vec::new());
    for w in tables.windows(2) {
        let (mut r, mut a) = (Duration::ZERO, Duration::ZERO);
        for family in FAMILIES {
            let t = Instant::now();
            let script = render_changes(&w[0], &w[1], family);
            r += t.elapsed();
            if !script.is_empty() {
                let t = Instant::now();
                nft(&script)?;
                a += t.elapsed();
            }
        }
        render.push(r);
        apply.push(a);
        check_chain(&w[1], Some(&w[0]))?;
    }
    let total: Vec<Duration> = render.iter().zip(&apply).map(|(r, a)| *r + *a).collect();
    emit_time("nft_change_render", median(&render));
    emit_time("nft_change_apply", median(&apply));
    emit_time("nft_change_total", median(&total));
    emit_time(
        "nft_change_worst",
        total.iter().copied().max().unwrap_or_default(),
    );
    Ok(())
}

fn userspace(tables: &[Table]) -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let mut proxy = UserspaceProxy::new(DEFAULT_PORTS, DEFAULT_UDP_IDLE_TIMEOUT);
    let t = Instant::now();
    let (ports, errors) = rt.block_on(proxy.apply(&tables[0]));
    emit_time("user_full_proxy", t.elapsed());
    emit("user_listeners", ports.len() as f64);
    emit("user_errors", errors.len() as f64);
    let t = Instant::now();
    redirects(None, &tables[0], &ports)?;
    emit_time("user_full_redirects", t.elapsed());
    let (mut proxy_t, mut nft_t) = (Vec::new(), Vec::new());
    let mut ports = ports;
    for w in tables.windows(2) {
        let t = Instant::now();
        let (next, _) = rt.block_on(proxy.apply(&w[1]));
        proxy_t.push(t.elapsed());
        let t = Instant::now();
        redirects(Some((&w[0], &ports)), &w[1], &next)?;
        nft_t.push(t.elapsed());
        ports = next;
    }
    let total: Vec<Duration> = proxy_t.iter().zip(&nft_t).map(|(p, n)| *p + *n).collect();
    emit_time("user_change_proxy", median(&proxy_t));
    emit_time("user_change_redirects", median(&nft_t));
    emit_time("user_change_total", median(&total));
    emit_time(
        "user_change_worst",
        total.iter().copied().max().unwrap_or_default(),
    );
    proxy.shutdown();
    Ok(())
}

type Ports = BTreeMap<VsKey, u16>;

/// The userspace path's nftables side: the whole redirect program, or the changes to it.
fn redirects(old: Option<(&Table, &Ports)>, new: &Table, ports: &Ports) -> Result<(), String> {
    for family in FAMILIES {
        let script = match old {
            None => render_full_with(new, family, Target::Proxy(ports)),
            Some((old, _)) => render_changes_with(old, new, family, Target::Proxy(ports)),
        };
        if !script.is_empty() {
            nft(&script)?;
        }
    }
    Ok(())
}

/// The kernel really holds the program: a changed virtual server (the first one when nothing
/// changed) DNATs to its current real servers, in its chain or in the shared map it reads.
fn check_chain(table: &Table, old: Option<&Table>) -> Result<(), String> {
    let vs = match old {
        Some(old) => table
            .servers
            .values()
            .find(|v| old.servers.get(&v.key) != Some(v)),
        None => table.servers.values().next(),
    }
    .ok_or("no virtual server changed")?;
    let list = |what: &str, name: &str| {
        std::process::Command::new("nft")
            .args(["list", what, "ip", "ferrolb", name])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .map_err(|e| e.to_string())
    };
    let chain = list("chain", &chain_name(&vs.key))?;
    let shared = map_name(&vs.key);
    let (listed, want): (String, Vec<String>) = if chain.contains(&format!("map @{shared}")) {
        let prefix = format!("{} . {} . ", vs.key.addr, vs.key.port);
        let want = vs.real_servers.iter().enumerate();
        let want = want.map(|(n, r)| format!("{prefix}{n} : {} . {}", r.addr, r.port));
        (list("map", &shared)?, want.collect())
    } else {
        let want = vs
            .real_servers
            .iter()
            .map(|r| format!(": {} . {}", r.addr, r.port));
        (chain, want.collect())
    };
    match want.iter().find(|w| !listed.contains(w.as_str())) {
        None => Ok(()),
        Some(w) => Err(format!("{}: {w:?} is not in the kernel:\n{listed}", vs.key)),
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The parent side: run [`child`] in node2 (bounded) and add its rows.
pub fn measure(lab: &Lab, rep: &mut Report, n: usize, per_service: usize) -> anyhow::Result<()> {
    eprintln!("forwarding bench: programming {n} Services × {per_service} endpoints");
    lab.exec(NODE, &["nft", "flush", "ruleset"])?;
    let argv: Vec<String> = ["ip", "netns", "exec", &lab.host(NODE)?.netns]
        .into_iter()
        .map(String::from)
        .chain([std::env::current_exe()?.to_string_lossy().into_owned()])
        .chain(
            [
                "--scenario",
                "program",
                &n.to_string(),
                &per_service.to_string(),
            ]
            .map(String::from),
        )
        .collect();
    let (lines, problem) = run_bounded(&argv, Duration::from_secs(150));
    let problem = problem.unwrap_or_else(|| "not reported".into());
    let f = figures(&lines);
    let count = |k: &str| f.get(k).map_or("?".into(), |v| thousands(*v as u64));
    rep.section(&format!(
        "programming {} Services × {per_service} endpoints from nothing ({} virtual servers, {} real servers), in node2",
        thousands(n as u64),
        count("virtual_servers"),
        count("real_servers"),
    ));
    let time = |k: &str| f.get(k).map(|s| Duration::from_secs_f64(*s));
    let sum = |a: &str, b: &str| Some(time(a)? + time(b)?);
    let info = |rep: &mut Report, what: &str, d: Option<Duration>| match d {
        Some(d) => rep.info(what, duration(d)),
        None => rep.failed(what, &problem, ""),
    };
    let target = |rep: &mut Report, what: &str, d: Option<Duration>, limit: Duration| match d {
        Some(d) => rep.below(what, d, limit),
        None => rep.failed(what, &problem, &format!("< {}", duration(limit))),
    };
    let (full, change) = (Duration::from_secs(2), Duration::from_millis(50));
    info(
        rep,
        "table from the snapshot (clone + build_table)",
        time("table_build"),
    );
    info(
        rep,
        "nftables: render_full (both families)",
        time("nft_full_render"),
    );
    info(
        rep,
        &format!("nftables: nft -f ({} lines)", count("nft_full_lines")),
        time("nft_full_apply"),
    );
    target(
        rep,
        "nftables: programmed from nothing",
        sum("nft_full_render", "nft_full_apply"),
        full,
    );
    info(
        rep,
        "nftables: render_changes, one endpoint moved",
        time("nft_change_render"),
    );
    info(
        rep,
        "nftables: nft -f of the change",
        time("nft_change_apply"),
    );
    let what = format!("nftables: one endpoint change applied (median of {CHANGES})");
    target(rep, &what, time("nft_change_total"), change);
    info(
        rep,
        "nftables: worst endpoint change",
        time("nft_change_worst"),
    );
    let what = format!("userspace: {} listeners started", count("user_listeners"));
    info(rep, &what, time("user_full_proxy"));
    info(
        rep,
        "userspace: redirect program (render + nft -f)",
        time("user_full_redirects"),
    );
    target(
        rep,
        "userspace: programmed from nothing",
        sum("user_full_proxy", "user_full_redirects"),
        full,
    );
    let what = format!("userspace: one endpoint change applied (median of {CHANGES})");
    target(rep, &what, time("user_change_total"), change);
    info(
        rep,
        "userspace: worst endpoint change",
        time("user_change_worst"),
    );
    info(
        rep,
        "table rebuilt from the snapshot after a change",
        time("table_rebuild"),
    );
    if f.get("user_errors").is_some_and(|e| *e > 0.0) {
        rep.info(
            "userspace: listeners that could not start",
            count("user_errors"),
        );
    }
    Ok(())
}
