//! The report's inputs from a standalone status directory: the controller's files in it, and
//! each speaker's report directory beside it (`<status-dir>.speakers/<node>/`).
//!
//! A file that cannot be read is named in a warning and left out: a report of what can be
//! read beats no report (a speaker may be writing for the first time).

use super::{Announcement, Inputs, Pool};
use ferrolb_cluster::files::{STATE_FILE, manifest_files, speaker_report_dir};
use ferrolb_shared::config::{BGPSessionState, ConfigurationState};
use k8s_openapi::api::core::v1::Service;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Read everything; `Err` only when `dir` holds no controller status at all.
pub fn read(dir: &Path) -> anyhow::Result<(Inputs, Vec<String>)> {
    if !dir.join(STATE_FILE).is_file() {
        anyhow::bail!(
            "{} holds no {STATE_FILE}: is it the --status-dir of a running ferrolb-controller?",
            dir.display()
        );
    }
    let mut warnings = Vec::new();
    let mut inputs = Inputs::default();
    let mut state = |path: &Path, warnings: &mut Vec<String>| {
        if let Some(s) = yaml::<ConfigurationState>(path, warnings).and_then(|s| s.status) {
            inputs.configuration.push(s);
        }
    };
    state(&dir.join(STATE_FILE), &mut warnings);
    let speakers = speaker_dirs(dir);
    for (_, speaker) in &speakers {
        let file = speaker.join(STATE_FILE);
        if file.is_file() {
            state(&file, &mut warnings);
        }
    }
    inputs.pools = pools(&dir.join("pools.yaml"), &mut warnings);
    let mut errors = Vec::new();
    for file in manifest_files(&dir.join("services"), &mut errors) {
        let Some(svc) = yaml::<Service>(&file, &mut warnings) else {
            continue;
        };
        inputs.add_service(&svc.into());
    }
    warnings.extend(errors.iter().map(|e| e.to_string()));
    for (node, speaker) in &speakers {
        layer2(
            node,
            &speaker.join("announcements.yaml"),
            &mut inputs,
            &mut warnings,
        );
        bgp(node, &speaker.join("bgp.yaml"), &mut inputs, &mut warnings);
        sessions(&speaker.join("sessions.yaml"), &mut inputs, &mut warnings);
    }
    Ok((inputs, warnings))
}

/// (node, report directory) of every speaker that has written one.
fn speaker_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let root = speaker_report_dir(dir, "x");
    let Some(root) = root.parent() else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

fn read_text(path: &Path, warnings: &mut Vec<String>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            warnings.push(format!("{}: {e}", path.display()));
            None
        }
    }
}

fn yaml<T: DeserializeOwned>(path: &Path, warnings: &mut Vec<String>) -> Option<T> {
    let text = read_text(path, warnings)?;
    serde_yaml::from_str(&text)
        .map_err(|e| warnings.push(format!("{}: {e}", path.display())))
        .ok()
}

/// `pools.yaml`: name -> counts, written as strings (IPv6 pools outgrow JSON's numbers).
fn pools(path: &Path, warnings: &mut Vec<String>) -> Vec<Pool> {
    let Some(map) = yaml::<serde_yaml::Mapping>(path, warnings) else {
        return Vec::new();
    };
    let count = |v: &serde_yaml::Value, key: &str| -> u128 {
        match v.get(key) {
            Some(serde_yaml::Value::String(s)) => s.parse().unwrap_or(0),
            Some(serde_yaml::Value::Number(n)) => n.as_u64().unwrap_or(0).into(),
            _ => 0,
        }
    };
    map.iter()
        .filter_map(|(name, v)| {
            Some(Pool {
                name: name.as_str()?.to_string(),
                capacity_v4: count(v, "capacityIPv4"),
                in_use_v4: count(v, "inUseIPv4"),
                capacity_v6: count(v, "capacityIPv6"),
                in_use_v6: count(v, "inUseIPv6"),
            })
        })
        .collect()
}

fn strings(v: &serde_yaml::Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(|l| l.as_sequence())
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// `announcements.yaml`: `announcing: [{ip, interfaces, services: [ns/name]}]`.
fn layer2(node: &str, path: &Path, inputs: &mut Inputs, warnings: &mut Vec<String>) {
    let Some(v) = yaml::<serde_yaml::Value>(path, warnings) else {
        return;
    };
    // One entry per (Service, node), with every address of the Service this node holds.
    let mut by_service: std::collections::BTreeMap<String, Announcement> = Default::default();
    for a in v
        .get("announcing")
        .and_then(|l| l.as_sequence())
        .into_iter()
        .flatten()
    {
        let ip = a.get("ip").and_then(|ip| ip.as_str()).unwrap_or_default();
        // A list of names, or the speaker's words for "all" (an empty list, as in Kubernetes).
        let interfaces = match a.get("interfaces") {
            Some(serde_yaml::Value::String(s)) if s == "every usable interface" => Vec::new(),
            Some(serde_yaml::Value::String(s)) => s.split(", ").map(String::from).collect(),
            _ => strings(a, "interfaces"),
        };
        for service in strings(a, "services") {
            let entry = by_service
                .entry(service.clone())
                .or_insert_with(|| Announcement {
                    service,
                    node: node.to_string(),
                    interfaces: interfaces.clone(),
                    addresses: Vec::new(),
                });
            entry.addresses.push(ip.to_string());
        }
    }
    inputs.layer2.extend(by_service.into_values());
}

/// `bgp.yaml`: `services: [{service: ns/name, ips, peers}]`.
fn bgp(node: &str, path: &Path, inputs: &mut Inputs, warnings: &mut Vec<String>) {
    let Some(v) = yaml::<serde_yaml::Value>(path, warnings) else {
        return;
    };
    for s in v
        .get("services")
        .and_then(|l| l.as_sequence())
        .into_iter()
        .flatten()
    {
        if let Some(service) = s.get("service").and_then(|n| n.as_str()) {
            inputs
                .bgp
                .push((service.to_string(), node.to_string(), strings(s, "peers")));
        }
    }
}

/// `sessions.yaml`: `BGPSessionState` objects, one document each.
fn sessions(path: &Path, inputs: &mut Inputs, warnings: &mut Vec<String>) {
    let Some(text) = read_text(path, warnings) else {
        return;
    };
    for doc in serde_yaml::Deserializer::from_str(&text) {
        match <Option<BGPSessionState> as serde::Deserialize>::deserialize(doc) {
            Ok(Some(s)) => inputs.sessions.extend(s.status),
            Ok(None) => {}
            // serde_yaml's document iterator repeats a syntax error forever: stop at the first.
            Err(e) => {
                warnings.push(format!("{}: {e}", path.display()));
                break;
            }
        }
    }
}
