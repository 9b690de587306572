//! Layer 2 status for operators: which node announces each Service, on which interfaces.
//!
//! - Kubernetes mode: one `ServiceL2Status` (`kubectl get l2status -A`) per (Service,
//!   announcing node), written by the generic [`Writer`] of `crate::status`.
//! - Standalone mode: `<status-dir>.speakers/<node>/announcements.yaml`.
//!
//! The layer 2 loop never waits for the API server: [`StatusSink::report`] publishes the
//! desired set ([`desired`], pure) and the writer task catches up.

use super::driver::describe;
#[cfg(test)]
use crate::status::owned_fields;
use crate::status::{Objects, STOP_TIMEOUT, StatusTarget, Timing, Writer, keyed, object};
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::config::{ServiceL2Status, ServiceL2StatusStatus};
use ferrolb_shared::l2::election::{Election, Interfaces};
use ferrolb_shared::snapshot::Snapshot;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The `ServiceL2Status` objects a speaker wants.
pub type Desired = Objects<ServiceL2Status>;

/// What [`StatusSink::report`] writes to.
pub enum StatusSink {
    None,
    File {
        dir: PathBuf,
        node: String,
    },
    Kubernetes {
        node: String,
        writer: Writer<ServiceL2Status>,
    },
}

impl StatusSink {
    /// Start the sink of `node` (the writer task, in Kubernetes mode).
    pub fn start(target: StatusTarget, node: &str) -> Self {
        match target {
            StatusTarget::None => StatusSink::None,
            StatusTarget::File(dir) => StatusSink::File {
                dir,
                node: node.to_string(),
            },
            StatusTarget::Kubernetes(client) => StatusSink::Kubernetes {
                node: node.to_string(),
                writer: Writer::spawn(client, node.to_string(), Timing::default()),
            },
        }
    }

    /// The owned set changed: say what this node announces now. Never waits.
    pub fn report(
        &self,
        snapshot: &Snapshot,
        election: &Election,
        owned: &BTreeMap<IpAddr, Interfaces>,
    ) {
        match self {
            StatusSink::None => {}
            StatusSink::File { dir, node } => {
                if let Err(e) = write_report(dir, node, election, owned) {
                    tracing::warn!("cannot write the layer 2 report in {}: {e}", dir.display());
                }
            }
            StatusSink::Kubernetes { node, writer } => {
                let uid = |s: &ServiceKey| Some(snapshot.services.get(s)?.uid.as_deref()?.into());
                writer.set(desired(node, election, owned, uid));
            }
        }
    }

    /// Stopping: delete this node's objects (it announces nothing any more), waiting at most
    /// a moment for the API server.
    pub async fn stop(self) {
        if let StatusSink::Kubernetes { writer, .. } = self {
            writer.stop(STOP_TIMEOUT).await;
        }
    }
}

/// The `ServiceL2Status` saying that `node` announces `ips` of `service` on `interfaces`;
/// owned by the Service when its uid is known.
pub fn build(
    node: &str,
    service: &ServiceKey,
    uid: Option<String>,
    ips: &[IpAddr],
    interfaces: &Interfaces,
) -> ServiceL2Status {
    let interfaces = match interfaces {
        Interfaces::All => Vec::new(),
        Interfaces::Named(names) => names.iter().cloned().collect(),
    };
    let status = ServiceL2StatusStatus {
        node: node.to_string(),
        service_name: service.name.clone(),
        service_namespace: service.namespace.clone(),
        interfaces,
        ips: ips.iter().map(ToString::to_string).collect(),
    };
    object(node, service, uid, status)
}

/// The objects `node` wants, from what it announces (`owned`) and the Services on each
/// address (`election`). A Service with several addresses here (dual-stack) gets one object
/// listing them all, on the union of their interfaces (every usable one if any address is
/// announced on every usable one).
pub fn desired(
    node: &str,
    election: &Election,
    owned: &BTreeMap<IpAddr, Interfaces>,
    uid: impl Fn(&ServiceKey) -> Option<String>,
) -> Desired {
    let mut per_service: BTreeMap<&ServiceKey, (Vec<IpAddr>, Option<BTreeSet<String>>)> =
        BTreeMap::new();
    for (ip, interfaces) in owned {
        let Some(a) = election.assignments.get(ip) else {
            continue;
        };
        for service in &a.services {
            let (ips, names) = per_service
                .entry(service)
                .or_insert_with(|| (Vec::new(), Some(BTreeSet::new())));
            ips.push(*ip);
            match interfaces {
                Interfaces::All => *names = None,
                Interfaces::Named(n) => {
                    if let Some(names) = names {
                        names.extend(n.iter().cloned());
                    }
                }
            }
        }
    }
    per_service
        .into_iter()
        .map(|(service, (ips, names))| {
            let interfaces = names.map_or(Interfaces::All, Interfaces::Named);
            keyed(build(node, service, uid(service), &ips, &interfaces))
        })
        .collect()
}

/// `<dir>/announcements.yaml`: what this node announces, for operators and tests.
pub fn write_report(
    dir: &Path,
    node: &str,
    election: &Election,
    owned: &BTreeMap<IpAddr, Interfaces>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut text = format!(
        "# written by ferrolb-speaker: the addresses this node announces
node: {node}
"
    );
    text.push_str(if owned.is_empty() {
        "announcing: []\n"
    } else {
        "announcing:\n"
    });
    for (ip, interfaces) in owned {
        let services: Vec<String> = election
            .assignments
            .get(ip)
            .map(|a| a.services.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        text.push_str(&format!(
            "  - ip: {ip}\n    interfaces: {}\n    services: [{}]\n",
            describe(interfaces),
            services.join(", ")
        ));
    }
    let tmp = dir.join(".announcements.yaml.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, dir.join("announcements.yaml"))
}

#[cfg(test)]
mod tests;
