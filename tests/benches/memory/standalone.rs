//! Standalone mode: a manifest directory. The config, Namespaces and Nodes are written before
//! the binaries start; the Services and their EndpointSlices go in as files of [`PER_FILE`]
//! Services each (`services-NNNNNN.yaml` and `endpointslices-NNNNNN.yaml`, named by the first
//! Service's index), each written beside the directory and renamed into it, so a scan never
//! sees half a file. The controller writes the addresses to `<manifests>.status`, where the
//! speaker reads them.

use crate::Settings;
use crate::cleanup::Namespace;
use crate::measure::{self, Pair, Point};
use crate::objects::{NODES, Objects};
use serde_json::Value;
use std::path::Path;

/// Services per manifest file.
pub const PER_FILE: usize = 1000;

pub fn run(settings: &Settings) -> anyhow::Result<Vec<Point>> {
    let tmp = tempfile::Builder::new()
        .prefix("ferrolb-memory-")
        .tempdir()?;
    let manifests = tmp.path().join("manifests");
    std::fs::create_dir(&manifests)?;
    let mut objects = Objects::new(settings.services, settings.endpoints);
    let mut cluster = objects.namespaces();
    cluster.extend(objects.nodes());
    write(tmp.path(), &manifests, "cluster.yaml", &cluster)?;
    write(tmp.path(), &manifests, "ferrolb.yaml", &objects.config())?;

    let ns = Namespace::new("sa")?;
    let dir = manifests.to_string_lossy().into_owned();
    let mut pair = Pair::start(
        &ns.0,
        tmp.path(),
        (args(&["--manifests", &dir, "--log", "info"]), vec![]),
        (speaker_args(tmp.path(), &["--manifests", &dir]), vec![]),
    )?;
    measure::run(&mut pair, settings, |range| {
        let mut start = range.start;
        while start < range.end {
            let end = (start + PER_FILE).min(range.end);
            // Named by their first Service, so no step rewrites another's file.
            let file = start;
            let mut services = Vec::with_capacity(end - start);
            let mut slices = Vec::with_capacity(end - start);
            for i in start..end {
                let svc = objects.service(i);
                let uid = svc["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                services.push(svc);
                slices.push(objects.slice(i, &uid));
            }
            // Slices first, as in a cluster where the pods exist before their Service is
            // exposed; both land within the same scan or the next.
            let slice_file = format!("endpointslices-{file:06}.yaml");
            write(tmp.path(), &manifests, &slice_file, &slices)?;
            write(
                tmp.path(),
                &manifests,
                &format!("services-{file:06}.yaml"),
                &services,
            )?;
            start = end;
        }
        Ok(())
    })
}

/// The speaker's flags: the cluster view only (as the README's idle-CPU table measured it),
/// its node-local files kept in the bench's directory, plus `source`.
pub fn speaker_args(dir: &Path, source: &[&str]) -> Vec<String> {
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let mut v = args(&[
        "--node",
        NODES[0],
        "--dataplane",
        "none",
        "--layer2",
        "false",
        "--bgp",
        "false",
        "--log",
        "info",
    ]);
    v.extend(args(&[
        "--l2-restart-file",
        &file("speaker.layer2-restart"),
        "--ipvs-state-file",
        &file("speaker.ipvs-owned"),
    ]));
    v.extend(args(source));
    v
}

pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Write `docs` as one multi-document YAML file `name` in `manifests`: first beside it in
/// `staging`, then renamed in.
fn write(staging: &Path, manifests: &Path, name: &str, docs: &[Value]) -> anyhow::Result<()> {
    let mut text = String::new();
    for d in docs {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(d)?);
    }
    let tmp = staging.join(format!(".{name}"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, manifests.join(name))?;
    Ok(())
}
