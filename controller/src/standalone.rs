//! The controller's standalone mode: a directory of YAML manifests (config kinds, Services,
//! Namespaces) instead of an API server, read by the shared [`DirectorySource`], and a status
//! directory beside it where the controller writes what it would otherwise write to the API
//! server (the speaker reads the Service files back).
//!
//! ```text
//! <status-dir>/services/<namespace>/<name>.yaml   the Service's status and pool annotation
//! <status-dir>/config.yaml                        accepted or rejected, with every error
//! <status-dir>/configurationstate.yaml            the same as the controller's ConfigurationState
//! <status-dir>/pools.yaml                         capacity and usage of each pool
//! <status-dir>/events.log                         one line per Event, newest last
//! ```
//!
//! The operator's files are never written. Every file write is atomic (write, then rename),
//! so a reader never sees half a file. On start, the status files are read back: they are
//! the "status" of the Services, so a restart reclaims every address it had handed out.

use crate::inputs;
use crate::sink::Sink;
use ferrolb_cluster::dir::{DirectorySource, StatusDir};
use ferrolb_cluster::files::manifest_files;
pub use ferrolb_cluster::files::{
    STATE_FILE, default_status_dir, status_path, write_atomic, write_state,
};
use ferrolb_cluster::{Closed, ClusterEvent, EventSink, Kind};
use ferrolb_shared::alloc::{PoolStats, ServiceKey};
use ferrolb_shared::config::{
    CONTROLLER_STATE_NAME, ConfigError, ConfigurationStateStatus, configuration_state,
};
use ferrolb_shared::manifest::ClusterObject;
use ferrolb_shared::reconcile::{Action, EventType, Input};
use ferrolb_shared::service::{self, service_key};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use tokio::sync::mpsc;

/// The directory source as the controller runs it: Services and Namespaces, with the status
/// of each Service restored from its status file (its own earlier writes).
pub fn source(dir: PathBuf, status_dir: PathBuf) -> DirectorySource {
    DirectorySource::new(dir, inputs::subscription(), StatusDir::Restore(status_dir))
}

/// Turns the directory source's events into the allocation core's inputs, and keeps the
/// status directory in step with the manifests: the status of a Service that is gone is
/// removed (the sink never hears of deletions: the core has nothing to write for them).
pub struct StandaloneInputs {
    tx: mpsc::Sender<Input>,
    status_dir: PathBuf,
    /// The Services the manifests hold.
    services: BTreeSet<ServiceKey>,
}

impl StandaloneInputs {
    pub fn new(tx: mpsc::Sender<Input>, status_dir: PathBuf) -> Self {
        StandaloneInputs {
            tx,
            status_dir,
            services: BTreeSet::new(),
        }
    }

    /// Status files of Services that no longer exist (deleted while the controller was down).
    fn remove_orphan_status(&self) {
        let keep: BTreeSet<PathBuf> = self
            .services
            .iter()
            .map(|k| status_path(&self.status_dir, k))
            .collect();
        let mut errors = Vec::new();
        for file in manifest_files(&self.status_dir.join("services"), &mut errors) {
            if !keep.contains(&file) && file.is_file() {
                let _ = std::fs::remove_file(&file);
            }
        }
    }
}

impl EventSink for StandaloneInputs {
    async fn deliver(&mut self, events: Vec<ClusterEvent>) -> Result<(), Closed> {
        for event in events {
            match &event {
                ClusterEvent::Upsert(ClusterObject::Service(svc)) => {
                    self.services.insert(service_key(svc));
                }
                ClusterEvent::Delete(Kind::Service, key) => {
                    let key = ServiceKey::from(key.clone());
                    let _ = std::fs::remove_file(status_path(&self.status_dir, &key));
                    self.services.remove(&key);
                }
                // Before the core hears that the listing is complete, as a restart would find it.
                ClusterEvent::Synced => self.remove_orphan_status(),
                _ => {}
            }
            inputs::forward(&self.tx, event).await?;
        }
        Ok(())
    }
}

/// Writes the controller's actions into the status directory.
pub struct StatusDirSink {
    dir: PathBuf,
    last_pools: String,
}

impl StatusDirSink {
    pub fn new(dir: PathBuf) -> Self {
        StatusDirSink {
            dir,
            last_pools: String::new(),
        }
    }

    fn write_service(
        &self,
        key: &ServiceKey,
        ips: &[std::net::IpAddr],
        pool: &str,
    ) -> std::io::Result<()> {
        let svc = service::status_object(key, ips, Some(pool));
        let mut value = serde_json::to_value(&svc).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("apiVersion".into(), "v1".into());
            obj.insert("kind".into(), "Service".into());
            obj.remove("spec");
        }
        let text = serde_yaml::to_string(&value).unwrap_or_default();
        write_atomic(&status_path(&self.dir, key), text.as_bytes())
    }

    fn append_event(&self, line: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("events.log"))?;
        writeln!(f, "{} {line}", jiff::Timestamp::now())
    }

    fn write_config(
        &self,
        accepted: bool,
        summary: &str,
        errors: &[ConfigError],
    ) -> std::io::Result<()> {
        let doc = serde_json::json!({
            "accepted": accepted,
            "stale": !accepted,
            "time": jiff::Timestamp::now().to_string(),
            "summary": summary,
            "errors": errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        });
        write_atomic(
            &self.dir.join("config.yaml"),
            serde_yaml::to_string(&doc).unwrap_or_default().as_bytes(),
        )?;
        let status = if accepted {
            ConfigurationStateStatus::valid("controller", "", summary)
        } else {
            ConfigurationStateStatus::invalid("controller", "", errors)
        };
        write_state(
            &self.dir,
            configuration_state(CONTROLLER_STATE_NAME, "standalone", status),
        )
    }
}

impl Sink for StatusDirSink {
    async fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            let result = match &action {
                Action::SetStatus { key, ips, pool } => self.write_service(key, ips, pool),
                Action::ClearStatus { key } => {
                    match std::fs::remove_file(status_path(&self.dir, key)) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                        _ => Ok(()),
                    }
                }
                Action::Event {
                    key,
                    kind,
                    reason,
                    message,
                } => {
                    let kind = if *kind == EventType::Warning {
                        "Warning"
                    } else {
                        "Normal"
                    };
                    let obj = key
                        .as_ref()
                        .map(|k| format!("Service {k}"))
                        .unwrap_or_else(|| "controller".into());
                    self.append_event(&format!("{kind} {reason} {obj}: {message}"))
                }
                Action::ConfigAccepted { summary } => self.write_config(true, summary, &[]),
                Action::ConfigRejected { errors } => {
                    let _ = self.append_event(&format!("Warning ConfigRejected controller: {} errors; keeping the last good configuration", errors.len()));
                    self.write_config(
                        false,
                        "rejected; the last good configuration stays in force",
                        errors,
                    )
                }
            };
            if let Err(e) = result {
                tracing::error!(dir = %self.dir.display(), "cannot write status: {e}");
            }
        }
    }

    async fn pools(&mut self, stats: &[PoolStats]) {
        let doc: BTreeMap<&str, serde_json::Value> = stats
            .iter()
            .map(|s| {
                let v = serde_json::json!({
                    "capacityIPv4": s.capacity_v4.to_string(), "inUseIPv4": s.in_use_v4.to_string(),
                    "capacityIPv6": s.capacity_v6.to_string(), "inUseIPv6": s.in_use_v6.to_string(),
                });
                (s.name.as_str(), v)
            })
            .collect();
        let text = serde_yaml::to_string(&doc).unwrap_or_default();
        if text != self.last_pools {
            if let Err(e) = write_atomic(&self.dir.join("pools.yaml"), text.as_bytes()) {
                tracing::error!(dir = %self.dir.display(), "cannot write pool status: {e}");
            }
            self.last_pools = text;
        }
    }
}
