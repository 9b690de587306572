//! From a new Service to the client resolving its address: client2 ARPs every 10 ms for the
//! address the controller will give it (the lowest free one of pool `lan`), the Service is
//! written, and the first ARP reply is timed from two starts:
//!
//! - *total*: from writing the Service manifest (the controller reads it, allocates, writes
//!   the status; every speaker reads the status, elects, and the owner answers);
//! - *speaker's share*: from the controller writing the Service's status file (its mtime) to
//!   the reply: what the speaker adds, the fair figure for the < 100 ms target.

use crate::failover::wait;
use crate::ferrolb::{FerroLb, service, slices};
use crate::probes::{self, ArpWatch, epoch, now};
use ferrolb_e2e::lab::Lab;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

#[derive(Default)]
pub struct Resolve {
    /// Seconds from writing the manifest to the first ARP reply.
    pub total: Vec<f64>,
    /// Seconds from the status file to the first ARP reply.
    pub speaker: Vec<f64>,
    pub errors: Vec<String>,
}

const LIMIT: Duration = Duration::from_secs(15);

pub fn measure(f: &FerroLb, reps: usize) -> anyhow::Result<Resolve> {
    note!("new Service to ARP answer, {reps} times");
    let lab = &f.lab;
    let mut arp = ArpWatch::start(lab)?;
    let mut out = Resolve::default();
    for i in 0..reps {
        match one(lab, &mut arp, &format!("new{i}")) {
            Ok((total, speaker)) => {
                note!(
                    "new Service {}/{reps}: {:.1} ms total, {:.1} ms from the status",
                    i + 1,
                    total * 1e3,
                    speaker * 1e3
                );
                out.total.push(total);
                out.speaker.push(speaker);
            }
            Err(e) => {
                note!("new Service {}/{reps}: FAILED: {e:#}", i + 1);
                out.errors.push(format!("{e:#}"));
            }
        }
    }
    arp.stop();
    Ok(out)
}

fn one(lab: &Lab, arp: &mut ArpWatch, name: &str) -> anyhow::Result<(f64, f64)> {
    let ip = next_free(lab)?;
    // Endpoints first, so the Service is announced as soon as it has an address.
    lab.write_manifest(&format!("{name}-slices.yaml"), &slices(lab, name))?;
    let start = now();
    let pinger = probes::arping(lab, ip, probes::INTERVAL, 2000)?;
    wait(
        || arp.first_request(ip, start),
        Duration::from_secs(5),
        "arping to start",
    )?;
    std::thread::sleep(Duration::from_millis(100));
    let written = now();
    lab.write_manifest(&format!("{name}.yaml"), &service(name, false, None))?;
    let status = lab
        .status_dir()
        .join("services")
        .join("default")
        .join(format!("{name}.yaml"));
    let mut status_at = None;
    let reply = wait(
        || {
            if status_at.is_none() {
                status_at = std::fs::metadata(&status).ok()?.modified().ok().map(epoch);
            }
            let reply = arp.first_reply(ip, start)?;
            status_at.is_some().then_some(reply)
        },
        LIMIT,
        &format!("ARP reply for {ip}"),
    );
    drop(pinger.stop());
    let reply = reply?;
    let status_at = status_at.expect("set before the reply is taken");
    anyhow::ensure!(
        reply > written,
        "{ip} was answered before Service {name} was written"
    );
    let ips = lab.wait_service_ips("default", name, LIMIT)?;
    anyhow::ensure!(
        ips == [IpAddr::V4(ip)],
        "Service {name} got {ips:?}, not the predicted {ip}"
    );
    Ok((reply - written, reply - status_at))
}

/// The lowest address of pool `lan` (10.100.0.200-250) no Service has.
fn next_free(lab: &Lab) -> anyhow::Result<Ipv4Addr> {
    let dir = lab.status_dir().join("services");
    let mut used = BTreeSet::new();
    for ns in std::fs::read_dir(&dir)?.flatten() {
        for file in std::fs::read_dir(ns.path())?.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if let Some(svc) = name.strip_suffix(".yaml")
                && let Some(ips) = lab.service_ips(&ns.file_name().to_string_lossy(), svc)
            {
                used.extend(ips);
            }
        }
    }
    (200..=250)
        .map(|n| Ipv4Addr::new(10, 100, 0, n))
        .find(|ip| !used.contains(&IpAddr::V4(*ip)))
        .ok_or_else(|| anyhow::anyhow!("pool lan is full"))
}
