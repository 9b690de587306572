//! `ferrolb-controller check FILE...`: validate manifests offline, the way the controller
//! would, and say what is wrong with all of them at once.

pub use ferrolb_cluster::files::{file_error, is_manifest, manifest_files};
use ferrolb_shared::alloc::{Allocator, PoolStats};
use ferrolb_shared::config::{Config, ConfigError, ConfigObject, validate};
use ferrolb_shared::manifest::{ClusterObject, Manifest, parse_documents};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The verdict on a set of files: a summary line per object, or every error.
pub struct Report {
    pub lines: Vec<String>,
    pub errors: Vec<ConfigError>,
}

/// Read and validate `paths` (files, or directories searched for `*.yaml`, `*.yml`, `*.json`).
pub fn check(paths: &[PathBuf]) -> Report {
    let mut errors = Vec::new();
    let mut objects = Vec::new();
    let mut cluster = Vec::new();
    let files: Vec<PathBuf> = paths
        .iter()
        .flat_map(|p| manifest_files(p, &mut errors))
        .collect();
    for file in files {
        let name = file.display().to_string();
        let text = match std::fs::read(&file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(file_error(
                        &name,
                        format!(
                            "not UTF-8 text (invalid byte at offset {})",
                            e.utf8_error().valid_up_to()
                        ),
                    ));
                    continue;
                }
            },
            Err(e) => {
                errors.push(file_error(&name, format!("cannot read: {e}")));
                continue;
            }
        };
        let parsed = parse_documents(&name, &text);
        errors.extend(parsed.errors);
        for p in parsed.objects {
            match p.manifest {
                Manifest::Config(c) => objects.push((p.source, *c)),
                Manifest::Cluster(c) => cluster.push((p.source, c)),
            }
        }
    }
    let config = match validate(&objects) {
        Ok(c) => Some(c),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    errors.sort();
    let mut lines = Vec::new();
    if let Some(config) = config.filter(|_| errors.is_empty()) {
        let mut allocator = Allocator::new();
        allocator.set_pools(config.pool_defs());
        let stats: BTreeMap<String, PoolStats> = allocator
            .pool_stats()
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        for (source, obj) in &objects {
            lines.push(format!(
                "ok  {:<16} {:<24} {}  ({source})",
                obj.kind(),
                obj.name(),
                describe(obj, &config, &stats)
            ));
        }
        for (source, obj) in &cluster {
            let (kind, name) = cluster_name(obj);
            lines.push(format!("ok  {kind:<16} {name:<24} ({source})"));
        }
    }
    Report { lines, errors }
}

fn describe(obj: &ConfigObject, config: &Config, stats: &BTreeMap<String, PoolStats>) -> String {
    match obj {
        ConfigObject::IPAddressPool(p) => {
            let (v4, v6) = stats
                .get(obj.name())
                .map(|s| (s.capacity_v4, s.capacity_v6))
                .unwrap_or_default();
            format!(
                "{} ({v4} IPv4 + {v6} IPv6 usable addresses{})",
                p.spec.addresses.join(", "),
                if p.spec.auto_assign() {
                    ""
                } else {
                    ", autoAssign off"
                }
            )
        }
        ConfigObject::L2Advertisement(_) => {
            let pools = &config.l2_advertisements[obj.name()].pools;
            format!(
                "layer 2 for pools [{}]",
                pools.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        }
        ConfigObject::BGPAdvertisement(_) => {
            let pools = &config.bgp_advertisements[obj.name()].pools;
            format!(
                "BGP for pools [{}]",
                pools.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        }
        ConfigObject::BGPPeer(p) => {
            let peer = &config.peers[obj.name()];
            let asn = p
                .spec
                .peer_asn
                .map(|a| a.to_string())
                .or(p.spec.dynamic_asn.clone())
                .unwrap_or_default();
            format!(
                "AS{} -> {} AS {asn}, hold {:?}",
                p.spec.my_asn, p.spec.peer_address, peer.hold_time
            )
        }
        ConfigObject::BFDProfile(b) => format!(
            "rx {:?} tx {:?} x{}",
            b.spec.receive_interval(),
            b.spec.transmit_interval(),
            b.spec.detect_multiplier()
        ),
        ConfigObject::Community(c) => format!("{} aliases", c.spec.communities.len()),
    }
}

fn cluster_name(obj: &ClusterObject) -> (&'static str, String) {
    let kind = match obj {
        ClusterObject::Service(_) => "Service",
        ClusterObject::Namespace(_) => "Namespace",
        ClusterObject::Node(_) => "Node",
        ClusterObject::EndpointSlice(_) => "EndpointSlice",
        ClusterObject::Secret(_) => "Secret",
    };
    let name = obj.name().unwrap_or_default();
    match obj.in_namespace() {
        Some(ns) => (kind, format!("{ns}/{name}")),
        None => (kind, name.to_owned()),
    }
}
