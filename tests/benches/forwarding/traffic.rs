//! Throughput (iperf3, one TCP stream) and new TCP connections per second (short connections
//! to the pod's echo server) from client1 for every [`Path`], side by side in one lab.

use crate::paths::{self, CLIENT, NODE, POD, Path};
use crate::report::{self, Report};
use ferrolb_e2e::lab::load::CpsReport;
use ferrolb_e2e::lab::{Lab, LabSpec, binary, cmd};
use std::net::IpAddr;
use std::time::Duration;

/// How each path is loaded.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// iperf3 measuring time (after one omitted second of slow start).
    pub iperf_secs: u32,
    /// Short-connection load: how long, and how many connections at once.
    pub cps_secs: f64,
    pub cps_concurrency: usize,
}

/// What one path did.
pub struct Measured {
    pub bps: Result<f64, String>,
    pub cps: Result<CpsReport, String>,
}

/// node1 with one pod (the echo server and an iperf3 server), node2, one LAN client; no
/// router daemon; IPv4 only. Short-connection load needs many ports: client1 and node1 get a wide
/// ephemeral range and reuse of TIME_WAIT ports for new connections (their own sysctls).
pub fn lab() -> anyhow::Result<Lab> {
    cmd::require_tool("iperf3", "iperf3")?;
    cmd::require_tool("nft", "nftables")?;
    let spec = LabSpec {
        // node2 only for programming many Services (`program`), away from the traffic.
        nodes: 2,
        lan_clients: 1,
        external_clients: 0,
        dual_stack: false,
        router: None,
        ..LabSpec::default()
    }
    .pod(POD, 1, "bench");
    let lab = Lab::up(spec)?;
    for host in [CLIENT, NODE] {
        let script = "echo '1024 65000' > /proc/sys/net/ipv4/ip_local_port_range\n\
                      echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse\n";
        lab.exec(host, &["sh", "-ec", script])?;
    }
    let iperf = lab.spawn(
        "iperf3",
        POD,
        &["iperf3", "-s", "-p", "5201", "--forceflush"],
    )?;
    lab.wait_log(&iperf, "Server listening", Duration::from_secs(10))?;
    paths::route_vips(&lab)?;
    Ok(lab)
}

/// Measure every path, one after the other.
pub fn measure(lab: &Lab, load: Load) -> anyhow::Result<Vec<(Path, Measured)>> {
    let mut out = Vec::new();
    let only = std::env::var("FERROLB_BENCH_PATHS").unwrap_or_default();
    let wanted = |p: Path| only.is_empty() || only.split(',').any(|w| w.trim() == p.name());
    let candidates = if only.is_empty() {
        &Path::ALL[..]
    } else {
        &Path::NAMED[..]
    };
    for path in candidates.iter().copied().filter(|p| wanted(*p)) {
        eprintln!("forwarding bench: {path:?}: throughput and connections per second");
        let addr = path.addr(lab)?;
        let m = match paths::set_up(lab, path) {
            Ok(process) => {
                let m = Measured {
                    bps: iperf3(lab, addr, load.iperf_secs),
                    cps: cps(lab, addr, load),
                };
                paths::tear_down(lab, path, process)?;
                m
            }
            // Set up failed (and was undone): both figures say why; the other paths go on.
            Err(e) => Measured {
                bps: Err(format!("{e:#}")),
                cps: Err(format!("{e:#}")),
            },
        };
        out.push((path, m));
    }
    Ok(out)
}

fn iperf3(lab: &Lab, addr: IpAddr, secs: u32) -> Result<f64, String> {
    let (a, t) = (addr.to_string(), secs.to_string());
    let argv = [
        "iperf3",
        "-c",
        &a,
        "-p",
        "5201",
        "-t",
        &t,
        "-O",
        "1",
        "-J",
        "--connect-timeout",
        "3000",
    ];
    let out = lab.exec_output(CLIENT, &argv).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "iperf3 printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(format!("iperf3: {e}"));
    }
    v.pointer("/end/sum_received/bits_per_second")
        .and_then(|b| b.as_f64())
        .ok_or_else(|| "iperf3: no end.sum_received in its JSON".into())
}

fn cps(lab: &Lab, addr: IpAddr, load: Load) -> Result<CpsReport, String> {
    let bin = binary("ferrolb-lab-echo").map_err(|e| e.to_string())?;
    let (a, c, s) = (
        addr.to_string(),
        load.cps_concurrency.to_string(),
        load.cps_secs.to_string(),
    );
    let argv = [
        &*bin.to_string_lossy(),
        "cps",
        &a,
        "7000",
        "--concurrency",
        &c,
        "--seconds",
        &s,
        "--conns",
        "1000000",
    ];
    let out = lab.exec(CLIENT, &argv).map_err(|e| e.to_string())?;
    CpsReport::parse(out.trim()).ok_or_else(|| format!("not a cps report: {out:?}"))
}

/// The throughput and connection-rate rows, with their targets.
pub fn report(rep: &mut Report, results: &[(Path, Measured)], load: Load) {
    let get = |p: Path| results.iter().find(|(q, _)| *q == p).map(|(_, m)| m);
    rep.section(&format!(
        "throughput: iperf3, one TCP stream, {} s (after 1 s omitted), client1 → pod",
        load.iperf_secs
    ));
    let bps = |p: Path| get(p).and_then(|m| m.bps.as_ref().ok()).copied();
    let direct = bps(Path::Direct).unwrap_or(0.0);
    let haproxy = bps(Path::Haproxy).unwrap_or(0.0);
    let nftables = bps(Path::Nftables).unwrap_or(0.0);
    for (path, m) in results {
        let what = path.label();
        match (&m.bps, path) {
            (Err(e), _) => rep.failed(
                what,
                e,
                target(*path, "≥ 0.90 × direct", "≥ 1.30 × HAProxy"),
            ),
            (Ok(v), Path::Nftables) => {
                rep.at_least(what, report::bits(*v), *v, (direct, "direct"), 0.90)
            }
            (Ok(v), Path::Userspace) => {
                rep.at_least(what, report::bits(*v), *v, (haproxy, "HAProxy"), 1.30)
            }
            (Ok(v), Path::Ipvs) => rep.relative(what, report::bits(*v), *v, (nftables, "nftables")),
            (Ok(v), _) => rep.relative(what, report::bits(*v), *v, (direct, "direct")),
        }
    }
    rep.section(&format!(
        "new TCP connections per second: connect, read the echo line, close; {} at once, {} s",
        load.cps_concurrency, load.cps_secs
    ));
    let rate = |p: Path| {
        get(p)
            .and_then(|m| m.cps.as_ref().ok())
            .map(CpsReport::rate)
    };
    let direct = rate(Path::Direct).unwrap_or(0.0);
    let haproxy = rate(Path::Haproxy).unwrap_or(0.0);
    let nftables = rate(Path::Nftables).unwrap_or(0.0);
    for (path, m) in results {
        let what = path.label();
        match (&m.cps, path) {
            (Err(e), _) => rep.failed(what, e, target(*path, "", "≥ 1.00 × HAProxy")),
            (Ok(r), _) => {
                let mut shown = report::rate(r.rate());
                if r.errors > 0 {
                    shown = format!("{shown} ({} failed)", r.errors);
                }
                if *path == Path::Userspace {
                    rep.at_least(what, shown, r.rate(), (haproxy, "HAProxy"), 1.00);
                } else if *path == Path::Ipvs {
                    rep.relative(what, shown, r.rate(), (nftables, "nftables"));
                } else {
                    rep.relative(what, shown, r.rate(), (direct, "direct"));
                }
            }
        }
    }
}

fn target(path: Path, nftables: &'static str, userspace: &'static str) -> &'static str {
    match path {
        Path::Nftables => nftables,
        Path::Userspace => userspace,
        _ => "",
    }
}
