//! Programming N Services × E endpoints from nothing, and then one endpoint change in that
//! state, for both data paths, in a lab node's namespace, through the speaker's own code:
//! cluster events go into a `SnapshotBuilder`, each published snapshot into the data path's
//! `Programmer` (the incremental virtual server table, then `nft -f` or the userspace proxy's
//! listeners plus their redirects). What is timed is what the speaker does from a snapshot to
//! a programmed kernel. The whole-table build the speaker used to do per snapshot is timed
//! apart, for comparison.

use crate::child::{emit, emit_time, figures, require_lab_netns, run_bounded};
use crate::report::{Report, duration, thousands};
use crate::services;
use ferrolb_e2e::lab::Lab;
use ferrolb_shared::cluster::ClusterEvent;
use ferrolb_shared::ipvs::model::Table;
use ferrolb_shared::ipvs::nft::{RoundRobin, chain_name, map_name};
use ferrolb_shared::manifest::ClusterObject;
use ferrolb_shared::snapshot::SnapshotBuilder;
use ferrolb_speaker::dataplane::{Mode, Programmer, Settings};
use k8s_openapi::api::core::v1::Node;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Endpoint changes measured (the figure is their median; the worst is reported too).
pub const CHANGES: usize = 5;
/// A node of its own (no pods, no traffic): the program starts from nothing.
const NODE: &str = "node2";
const NODE_ADDR: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 12);

/// The scenario, inside the node: prints `figure KEY VALUE` lines as it goes.
pub fn child(n: usize, per_service: usize) -> Result<(), String> {
    require_lab_netns()?;
    let (svcs, slices) = services::cluster_ip_services(n, per_service);
    let t = Instant::now();
    let table = services::table(&svcs, &slices, NODE, NODE_ADDR.into());
    emit_time("whole_build", t.elapsed());
    emit("virtual_servers", table.servers.len() as f64);
    let real: usize = table.servers.values().map(|v| v.real_servers.len()).sum();
    emit("real_servers", real as f64);
    drop(table);
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let (own, shared) = (RoundRobin::PerService, RoundRobin::Shared);
    for (mode, round_robin, prefix) in [
        (Mode::Nftables, own, "nft"),
        (Mode::Nftables, shared, "nfts"),
        (Mode::Userspace, own, "user"),
    ] {
        let mut settings = Settings::new(mode);
        settings.nft_round_robin = round_robin;
        rt.block_on(program(
            &settings,
            prefix,
            &svcs,
            slices.clone(),
            n,
            per_service,
        ))?;
    }
    Ok(())
}

async fn program(
    settings: &Settings,
    prefix: &str,
    svcs: &[k8s_openapi::api::core::v1::Service],
    mut slices: Vec<k8s_openapi::api::discovery::v1::EndpointSlice>,
    n: usize,
    per_service: usize,
) -> Result<(), String> {
    let mut snapshots = SnapshotBuilder::new(NODE);
    snapshots.apply(ClusterEvent::Upsert(ClusterObject::Node(
        std::sync::Arc::new(node()?),
    )));
    for s in svcs {
        snapshots.apply(ClusterEvent::Upsert(ClusterObject::service(s.clone())));
    }
    for s in &slices {
        snapshots.apply(ClusterEvent::Upsert(ClusterObject::endpoint_slice(
            s.clone(),
        )));
    }
    snapshots.apply(ClusterEvent::Synced);
    let mode = settings.mode;
    let mut programmer = Programmer::new(settings);
    let t = Instant::now();
    let snapshot = snapshots.publish().ok_or("no snapshot")?;
    emit_time(&format!("{prefix}_full_publish"), t.elapsed());
    let outcome = programmer.on_snapshot(&snapshot).await;
    emit_time(&format!("{prefix}_full"), t.elapsed());
    emit_time(&format!("{prefix}_full_build"), outcome.build);
    emit_time(&format!("{prefix}_full_apply"), outcome.apply);
    if let Some(e) = outcome.failed {
        return Err(format!("{mode}: {e}"));
    }
    verify(&programmer, None)?;
    let (mut times, mut touched) = (Vec::new(), 0);
    let (mut publish, mut build, mut apply) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..CHANGES {
        let i = (r + 1) * n / (CHANGES + 1);
        let new_addr = Ipv4Addr::new(10, 244, 255, r as u8 + 1);
        services::move_endpoint(&mut slices, i, per_service / 2, new_addr);
        let previous = programmer.table().clone();
        let slice = ClusterObject::endpoint_slice(slices[i].clone());
        snapshots.apply(ClusterEvent::Upsert(slice));
        let t = Instant::now();
        let snapshot = snapshots.publish().ok_or("no snapshot after a change")?;
        publish.push(t.elapsed());
        let outcome = programmer.on_snapshot(&snapshot).await;
        times.push(t.elapsed());
        build.push(outcome.build);
        apply.push(outcome.apply);
        touched = touched.max(outcome.touched);
        if let Some(e) = outcome.failed {
            return Err(format!("{mode}: {e}"));
        }
        verify(&programmer, Some(&previous))?;
    }
    emit_time(&format!("{prefix}_change"), median(&times));
    emit_time(
        &format!("{prefix}_change_worst"),
        times.iter().copied().max().unwrap_or_default(),
    );
    emit(&format!("{prefix}_touched"), touched as f64);
    emit_time(&format!("{prefix}_change_publish"), median(&publish));
    emit_time(&format!("{prefix}_change_build"), median(&build));
    emit_time(&format!("{prefix}_change_apply"), median(&apply));
    if let Some(p) = programmer.proxy() {
        emit("user_listeners", p.states().len() as f64);
    }
    programmer.shutdown().await;
    Ok(())
}

fn node() -> Result<Node, String> {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
        "status": {"addresses": [{"type": "InternalIP", "address": NODE_ADDR.to_string()}]},
    }))
    .map_err(|e| e.to_string())
}

/// The data path really holds the table: for the kernel path, see [`check_chain`]; for the
/// userspace path, one listener per virtual server.
fn verify(programmer: &Programmer, old: Option<&Table>) -> Result<(), String> {
    match programmer.proxy() {
        None => check_chain(programmer.table(), old),
        Some(p) => {
            let (listeners, servers) = (p.states().len(), programmer.table().servers.len());
            if listeners == servers {
                Ok(())
            } else {
                Err(format!(
                    "{listeners} listeners for {servers} virtual servers"
                ))
            }
        }
    }
}

/// The kernel really holds the program: a changed virtual server (the first one when nothing
/// changed) DNATs to its current real servers, in the shared map it reads or in its chain.
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
    // Round robin: the elements of the virtual server in its protocol's shared map.
    let prefix = format!("{} . {} . ", vs.key.addr, vs.key.port);
    let want = vs.real_servers.iter().enumerate();
    let want: Vec<String> = want
        .map(|(n, r)| format!("{prefix}{n} : {} . {}", r.addr, r.port))
        .collect();
    let map = list("map", &map_name(&vs.key))?;
    if want.iter().all(|w| map.contains(w.as_str())) {
        return Ok(());
    }
    // Any other scheduler: the rule of its own chain.
    let chain = list("chain", &chain_name(&vs.key))?;
    let want = vs.real_servers.iter();
    let want: Vec<String> = want.map(|r| format!(": {} . {}", r.addr, r.port)).collect();
    match want.iter().find(|w| !chain.contains(w.as_str())) {
        None => Ok(()),
        Some(w) => Err(format!("{}: {w:?} is not in the kernel:\n{chain}", vs.key)),
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
    let info = |rep: &mut Report, what: &str, d: Option<Duration>| match d {
        Some(d) => rep.info(what, duration(d)),
        None => rep.failed(what, &problem, ""),
    };
    let target = |rep: &mut Report, what: &str, d: Option<Duration>, limit: Duration| match d {
        Some(d) => rep.below(what, d, limit),
        None => rep.failed(what, &problem, &format!("< {}", duration(limit))),
    };
    info(
        rep,
        "whole-table build from the objects (what a non-incremental speaker redoes per change)",
        time("whole_build"),
    );
    // The kernel path's targets are issue 14's, for the layout built for them (shared
    // round-robin chains); the default layout (a chain per virtual server) and the userspace
    // path keep the earlier ones.
    let (ms, s) = (Duration::from_millis, Duration::from_secs);
    for (prefix, name, full, change) in [
        ("nft", "nftables, a chain per Service", s(2), ms(50)),
        ("nfts", "nftables, shared chains", ms(500), ms(5)),
        ("user", "userspace", s(2), ms(50)),
    ] {
        target(
            rep,
            &format!("{name}: snapshot → programmed, from nothing"),
            time(&format!("{prefix}_full")),
            full,
        );
        for (part, what) in [
            ("publish", "snapshot published"),
            ("build", "table built"),
            ("apply", "data path programmed"),
        ] {
            info(
                rep,
                &format!("{name}: of which {what}"),
                time(&format!("{prefix}_full_{part}")),
            );
        }
        let what = format!(
            "{name}: snapshot → programmed, one endpoint change (median of {CHANGES}; {} virtual servers touched)",
            count(&format!("{prefix}_touched"))
        );
        target(rep, &what, time(&format!("{prefix}_change")), change);
        info(
            rep,
            &format!("{name}: worst endpoint change"),
            time(&format!("{prefix}_change_worst")),
        );
        for (part, what) in [
            ("publish", "snapshot published"),
            ("build", "table updated"),
            ("apply", "data path programmed"),
        ] {
            info(
                rep,
                &format!("{name}: of which {what}"),
                time(&format!("{prefix}_change_{part}")),
            );
        }
    }
    rep.info("userspace: listeners started", count("user_listeners"));
    Ok(())
}
