//! Route visible at the router, and withdrawn again, one route at a time.
//!
//! FerroLB: the Service's endpoints are written first (so it can be advertised as soon as it
//! has an address), then the Service; the bench polls the Service's status file (its mtime is
//! when the controller wrote the address) and BIRD's table every millisecond. GoBGP: the CLI is started
//! and BIRD polled while it runs. Deleting: the Service manifest removed / `gobgp global rib
//! del`, to the route gone from BIRD.

use crate::setup::{Bench, PROTO, SLOW, service, slices};
use crate::{gobgp, now, poll};
use std::time::Duration;

#[derive(Default)]
pub struct Visible {
    /// FerroLB: seconds from the status file to the route at BIRD.
    pub status: Vec<f64>,
    /// FerroLB: seconds from writing the manifest to the route at BIRD.
    pub manifest: Vec<f64>,
    /// FerroLB: seconds from removing the manifest to the route gone.
    pub withdrawn: Vec<f64>,
    /// GoBGP: seconds from starting the CLI to the route at BIRD.
    pub gobgp: Vec<f64>,
    /// GoBGP: seconds from starting the CLI's delete to the route gone.
    pub gobgp_withdrawn: Vec<f64>,
    pub errors: Vec<String>,
}

const EVERY: Duration = Duration::from_millis(1);

pub fn measure(b: &mut Bench, reps: usize) -> anyhow::Result<Visible> {
    note!("route visible: {reps} Services, {reps} GoBGP routes");
    let mut out = Visible::default();
    for i in 0..reps {
        match ferrolb(b, &format!("lat{i}")) {
            Ok((status, manifest, gone)) => {
                note!(
                    "FerroLB {}/{reps}: {:.1} ms from the status, {:.1} ms from the manifest, withdrawn in {:.1} ms",
                    i + 1,
                    status * 1e3,
                    manifest * 1e3,
                    gone * 1e3
                );
                out.status.push(status);
                out.manifest.push(manifest);
                out.withdrawn.push(gone);
            }
            Err(e) => {
                note!("FerroLB {}/{reps}: FAILED: {e:#}", i + 1);
                out.errors.push(format!("FerroLB: {e:#}"));
            }
        }
        match gobgp_once(b, &format!("10.251.0.{}/32", i + 1)) {
            Ok((seen, gone)) => {
                note!(
                    "GoBGP {}/{reps}: {:.1} ms from the CLI call, withdrawn in {:.1} ms",
                    i + 1,
                    seen * 1e3,
                    gone * 1e3
                );
                out.gobgp.push(seen);
                out.gobgp_withdrawn.push(gone);
            }
            Err(e) => {
                note!("GoBGP {}/{reps}: FAILED: {e:#}", i + 1);
                out.errors.push(format!("GoBGP: {e:#}"));
            }
        }
    }
    Ok(out)
}

/// One Service: (status → route, manifest → route, removal → gone), seconds.
fn ferrolb(b: &mut Bench, name: &str) -> anyhow::Result<(f64, f64, f64)> {
    b.lab
        .write_manifest(&format!("{name}-slices.yaml"), &slices(&b.lab, name))?;
    // Let the speaker take the endpoints in first: the Service alone is measured.
    std::thread::sleep(Duration::from_millis(300));
    let status = b
        .lab
        .status_dir()
        .join("services")
        .join("default")
        .join(format!("{name}.yaml"));
    let written = now();
    b.lab
        .write_manifest(&format!("{name}.yaml"), &service(name, None))?;
    // The address is read from the status as soon as it is written; the route cannot reach
    // BIRD much before that, and if it does it is seen on the next look, a poll later.
    let mut status_at: Option<(f64, String)> = None;
    let (lab, bird) = (&b.lab, &mut b.bird);
    let seen = poll(
        &format!("Service {name}'s route at BIRD"),
        EVERY,
        SLOW,
        || {
            if status_at.is_none() {
                let ip = lab
                    .service_ips("default", name)
                    .and_then(|v| v.first().copied());
                let mtime = std::fs::metadata(&status).and_then(|m| m.modified());
                if let (Some(ip), Ok(mtime)) = (ip, mtime) {
                    status_at = Some((crate::epoch(mtime), format!("{ip}/32")));
                }
                return Ok(None);
            }
            let prefix = status_at.as_ref().map_or("", |s| s.1.as_str());
            let has = bird.sources(prefix)?.iter().any(|p| p == PROTO);
            Ok(has.then(now))
        },
    )?;
    let (status_at, prefix) = status_at.expect("set before the route is looked for");
    let removed = now();
    b.lab.remove_manifest(&format!("{name}.yaml"))?;
    let gone = b.wait_route(PROTO, &prefix, false)?;
    b.lab.remove_manifest(&format!("{name}-slices.yaml"))?;
    Ok((seen - status_at, seen - written, gone - removed))
}

/// One GoBGP route: (CLI add → route, CLI del → gone), seconds.
fn gobgp_once(b: &mut Bench, prefix: &str) -> anyhow::Result<(f64, f64)> {
    let mut timed = |args: &[&str], present: bool| -> anyhow::Result<f64> {
        let start = now();
        let child = gobgp::spawn_cli(&b.lab, args)?;
        let bird = &mut b.bird;
        let at = poll(&format!("{prefix} at BIRD: {present}"), EVERY, SLOW, || {
            let has = bird.sources(prefix)?.iter().any(|p| p == gobgp::PROTO);
            Ok((has == present).then(now))
        });
        gobgp::finish(child, &format!("gobgp {}", args.join(" ")))?;
        Ok(at? - start)
    };
    let seen = timed(&["global", "rib", "-a", "ipv4", "add", prefix], true)?;
    let gone = timed(&["global", "rib", "-a", "ipv4", "del", prefix], false)?;
    Ok((seen, gone))
}
