//! The standalone cluster source: a directory of YAML manifests (config kinds, Services,
//! Namespaces) instead of an API server, and a status directory beside it where the
//! controller writes what it would otherwise write to the API server.
//!
//! ```text
//! <status-dir>/services/<namespace>/<name>.yaml   the Service's status and pool annotation
//! <status-dir>/config.yaml                        accepted or rejected, with every error
//! <status-dir>/pools.yaml                         capacity and usage of each pool
//! <status-dir>/events.log                         one line per Event, newest last
//! ```
//!
//! The operator's files are never written. Every file write is atomic (write, then rename),
//! so a reader never sees half a file. On start, the status files are read back: they are
//! the "status" of the Services, so a restart reclaims every address it had handed out.

use crate::check::{is_manifest, manifest_files};
use crate::sink::Sink;
use ferrolb_shared::alloc::{PoolStats, ServiceKey};
use ferrolb_shared::config::{ConfigError, ConfigObject, Source};
use ferrolb_shared::manifest::{ClusterObject, Manifest, ParsedFile, parse_documents};
use ferrolb_shared::reconcile::{Action, EventType, Input};
use ferrolb_shared::selector::Labels;
use ferrolb_shared::service::{self, service_key};
use k8s_openapi::api::core::v1::Service;
use notify::Watcher;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// Kinds whose documents are cluster objects, not configuration: a broken one of these
/// does not reject the configuration.
const CLUSTER_KINDS: [&str; 5] = ["Service", "Namespace", "Node", "EndpointSlice", "Secret"];
/// How long to wait for more file events before rescanning, so an editor's burst of writes
/// becomes one rescan.
const DEBOUNCE: Duration = Duration::from_millis(5);
/// A full rescan even without file events, in case the watcher missed something.
const RESCAN_EVERY: Duration = Duration::from_secs(2);

/// The default status directory for a manifest directory: `<dir>.status` beside it.
pub fn default_status_dir(manifests: &Path) -> PathBuf {
    let mut name = manifests
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "manifests".into());
    name.push(".status");
    manifests.with_file_name(name)
}

/// What the directory held at one scan.
#[derive(Default, PartialEq)]
struct Snapshot {
    config: (Vec<(Source, ConfigObject)>, Vec<ConfigError>),
    services: BTreeMap<ServiceKey, Service>,
    namespaces: BTreeMap<String, Labels>,
}

struct CachedFile {
    stamp: (SystemTime, u64),
    parsed: ParsedFile,
}

/// Reads the manifest directory and turns changes into [`Input`]s.
pub struct DirectorySource {
    dir: PathBuf,
    status_dir: PathBuf,
    cache: BTreeMap<PathBuf, CachedFile>,
    last: Snapshot,
}

impl DirectorySource {
    pub fn new(dir: PathBuf, status_dir: PathBuf) -> Self {
        DirectorySource {
            dir,
            status_dir,
            cache: BTreeMap::new(),
            last: Snapshot::default(),
        }
    }

    /// Scan, then watch for changes until the receiver goes away.
    pub async fn run(mut self, tx: mpsc::Sender<Input>) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.dir.is_dir(),
            "manifest directory {} does not exist or is not a directory",
            self.dir.display()
        );
        let (wake_tx, mut wake) = mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
                let _ = wake_tx.send(());
            })?;
        watcher.watch(&self.dir, notify::RecursiveMode::Recursive)?;

        for input in self.scan() {
            if tx.send(input).await.is_err() {
                return Ok(());
            }
        }
        self.remove_orphan_status();
        if tx.send(Input::Synced).await.is_err() {
            return Ok(());
        }
        loop {
            tokio::select! {
                woke = wake.recv() => {
                    if woke.is_none() {
                        return Ok(());
                    }
                    tokio::time::sleep(DEBOUNCE).await;
                    while wake.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(RESCAN_EVERY) => {}
            }
            for input in self.scan() {
                if tx.send(input).await.is_err() {
                    return Ok(());
                }
            }
        }
    }

    /// Read the directory and return the inputs that describe what changed since last time.
    fn scan(&mut self) -> Vec<Input> {
        let mut list_errors = Vec::new();
        let files = manifest_files(&self.dir, &mut list_errors);
        self.cache.retain(|p, _| files.contains(p));
        let mut next = Snapshot::default();
        next.config.1 = list_errors;
        for file in &files {
            let Some(parsed) = self.read_cached(file) else {
                continue;
            };
            for e in &parsed.errors {
                if CLUSTER_KINDS.contains(&e.kind.as_str()) {
                    tracing::warn!("ignoring a manifest: {e}");
                } else {
                    next.config.1.push(e.clone());
                }
            }
            for p in &parsed.objects {
                match &p.manifest {
                    Manifest::Config(c) => next.config.0.push((p.source.clone(), (**c).clone())),
                    Manifest::Cluster(ClusterObject::Service(s)) => {
                        next.services.insert(service_key(s), (**s).clone());
                    }
                    Manifest::Cluster(ClusterObject::Namespace(n)) => {
                        let name = n.metadata.name.clone().unwrap_or_default();
                        next.namespaces
                            .insert(name, n.metadata.labels.clone().unwrap_or_default());
                    }
                    Manifest::Cluster(_) => {}
                }
            }
        }
        let mut inputs = Vec::new();
        for (name, labels) in &next.namespaces {
            if self.last.namespaces.get(name) != Some(labels) {
                inputs.push(Input::NamespaceUpsert {
                    name: name.clone(),
                    labels: labels.clone(),
                });
            }
        }
        for name in self
            .last
            .namespaces
            .keys()
            .filter(|n| !next.namespaces.contains_key(*n))
        {
            inputs.push(Input::NamespaceDelete(name.clone()));
        }
        if next.config != self.last.config {
            inputs.push(Input::Config {
                objects: next.config.0.clone(),
                errors: next.config.1.clone(),
            });
        }
        for (key, svc) in &next.services {
            if self.last.services.get(key) != Some(svc) {
                let mut svc = svc.clone();
                if service::status_ips(&svc).is_empty() {
                    self.restore_status(&key.clone(), &mut svc);
                }
                inputs.push(Input::ServiceUpsert(Box::new(svc)));
            }
        }
        for key in self
            .last
            .services
            .keys()
            .filter(|k| !next.services.contains_key(*k))
        {
            let _ = std::fs::remove_file(status_path(&self.status_dir, key));
            inputs.push(Input::ServiceDelete(key.clone()));
        }
        self.last = next;
        inputs
    }

    fn read_cached(&mut self, file: &Path) -> Option<&ParsedFile> {
        let meta = std::fs::metadata(file).ok()?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let fresh = self.cache.get(file).is_some_and(|c| c.stamp == stamp);
        if !fresh {
            let name = file.display().to_string();
            let parsed = match std::fs::read(file).map(String::from_utf8) {
                Ok(Ok(text)) => parse_documents(&name, &text),
                Ok(Err(_)) => bad_file(&name, "not UTF-8 text".into()),
                Err(e) => bad_file(&name, format!("cannot read: {e}")),
            };
            self.cache
                .insert(file.to_path_buf(), CachedFile { stamp, parsed });
        }
        self.cache.get(file).map(|c| &c.parsed)
    }

    /// Copy the status recorded for `key` into `svc`, as the API server would hold it.
    fn restore_status(&self, key: &ServiceKey, svc: &mut Service) {
        let Ok(text) = std::fs::read_to_string(status_path(&self.status_dir, key)) else {
            return;
        };
        let Ok(recorded) = serde_yaml::from_str::<Service>(&text) else {
            tracing::warn!(service = %key, "ignoring an unreadable status file");
            return;
        };
        let ips = service::status_ips(&recorded);
        service::apply_status(svc, &ips, service::status_pool(&recorded));
    }

    /// Status files of Services that no longer exist (deleted while the controller was down).
    fn remove_orphan_status(&self) {
        let mut errs = Vec::new();
        for file in manifest_files(&self.status_dir.join("services"), &mut errs) {
            let ns = file
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or("");
            let name = file.file_stem().and_then(|n| n.to_str()).unwrap_or("");
            let key = ServiceKey {
                namespace: ns.into(),
                name: name.into(),
            };
            if !self.last.services.contains_key(&key) && is_manifest(&file) {
                let _ = std::fs::remove_file(&file);
            }
        }
    }
}

fn bad_file(name: &str, message: String) -> ParsedFile {
    let source = Source::file(name, 0);
    ParsedFile {
        objects: Vec::new(),
        errors: vec![ConfigError {
            source,
            kind: "file".into(),
            name: String::new(),
            field: String::new(),
            message,
        }],
    }
}

/// Where the status of `key` lives.
pub fn status_path(status_dir: &Path, key: &ServiceKey) -> PathBuf {
    status_dir
        .join("services")
        .join(&key.namespace)
        .join(format!("{}.yaml", key.name))
}

/// Write `contents` to `path` atomically: readers see the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
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
        let mut svc = Service::default();
        svc.metadata.name = Some(key.name.clone());
        svc.metadata.namespace = Some(key.namespace.clone());
        service::apply_status(&mut svc, ips, Some(pool));
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
