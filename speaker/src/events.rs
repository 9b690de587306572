//! The speaker's Events: what an operator sees with `kubectl describe service` (which node
//! announces a Service, a scheduler the data path refuses) or, in standalone mode, in
//! `<status-dir>.speakers/<node>/events.log`.
//!
//! Recording never blocks the caller: Events go through a bounded channel to one task that
//! writes them (dropped and counted when it is full), and an Event repeated with the same
//! reason and message for the same object within [`REPEAT_WINDOW`] is written once.

use ferrolb_cluster::events::{Reporter, build, service_ref};
use ferrolb_shared::alloc::ServiceKey;
pub use ferrolb_shared::reconcile::EventType;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, PostParams};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub const COMPONENT: &str = "ferrolb-speaker";
/// The same Event again within this window is not written again.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(600);
const QUEUE: usize = 1024;

/// Where Events go.
pub enum Backend {
    Kubernetes(kube::Client),
    /// Standalone mode: one line per Event appended to this file.
    File(PathBuf),
    /// Logged only (tests, `--dataplane none` tools).
    Log,
}

/// One Event about a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEvent {
    pub service: ServiceKey,
    /// The Service's uid, so `kubectl describe` lists the Event.
    pub uid: Option<String>,
    pub kind: EventType,
    pub reason: &'static str,
    pub message: String,
}

/// The handle every part of the speaker records Events with. Cheap to clone.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::Sender<ServiceEvent>,
    dropped: Arc<AtomicU64>,
}

impl Events {
    /// Start the writer task for `node`.
    pub fn spawn(backend: Backend, node: String) -> Events {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write(backend, node, rx));
        Events {
            tx,
            dropped: Arc::default(),
        }
    }

    /// Record an Event (never waits; dropped and counted when the writer is behind).
    pub fn record(&self, event: ServiceEvent) {
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write(backend: Backend, node: String, mut rx: mpsc::Receiver<ServiceEvent>) {
    let mut recent: HashMap<(ServiceKey, &'static str, String), Instant> = HashMap::new();
    let mut unique = 0u64;
    while let Some(e) = rx.recv().await {
        let now = Instant::now();
        recent.retain(|_, at| now.duration_since(*at) < REPEAT_WINDOW);
        let key = (e.service.clone(), e.reason, e.message.clone());
        if recent.insert(key, now).is_some() {
            continue;
        }
        match e.kind {
            EventType::Normal => {
                tracing::info!(service = %e.service, reason = e.reason, "{}", e.message)
            }
            EventType::Warning => {
                tracing::warn!(service = %e.service, reason = e.reason, "{}", e.message)
            }
        }
        unique += 1;
        let result = match &backend {
            Backend::Kubernetes(client) => create(client, &node, &e, unique).await,
            Backend::File(path) => append(path, &e),
            Backend::Log => Ok(()),
        };
        if let Err(err) = result {
            tracing::warn!(service = %e.service, reason = e.reason, "cannot write the Event: {err}");
        }
    }
}

async fn create(
    client: &kube::Client,
    node: &str,
    e: &ServiceEvent,
    unique: u64,
) -> anyhow::Result<()> {
    let reporter = Reporter {
        component: COMPONENT,
        instance: node,
        host: Some(node),
    };
    let event = build(
        service_ref(&e.service, e.uid.clone()),
        reporter,
        e.kind,
        e.reason,
        &e.message,
        unique,
    );
    let api: Api<Event> = Api::namespaced(client.clone(), &e.service.namespace);
    match api.create(&PostParams::default(), &event).await {
        Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
        r => r.map(drop).map_err(Into::into),
    }
}

/// `<unix seconds> <Type> <reason> <namespace>/<name>: <message>`, one line.
fn append(path: &PathBuf, e: &ServiceEvent) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let kind = match e.kind {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    };
    let message = e.message.replace('\n', " ");
    writeln!(f, "{secs} {kind} {} {}: {message}", e.reason, e.service)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_events_are_written_once_per_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node1/events.log");
        let events = Events::spawn(Backend::File(path.clone()), "node1".into());
        let e = ServiceEvent {
            service: ServiceKey::new("web", "front"),
            uid: None,
            kind: EventType::Warning,
            reason: "SchedulerRefused",
            message: "lc needs connection counts".into(),
        };
        for _ in 0..3 {
            events.record(e.clone());
        }
        events.record(ServiceEvent {
            reason: "nodeAssigned",
            kind: EventType::Normal,
            message: "announcing from node1".into(),
            ..e.clone()
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() >= 2 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let text = std::fs::read_to_string(&path).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                assert_eq!(lines.len(), 2, "{text}");
                assert!(
                    lines[0].contains("Warning SchedulerRefused web/front: lc needs"),
                    "{text}"
                );
                assert!(lines[1].contains("Normal nodeAssigned web/front: announcing from node1"));
                break;
            }
            assert!(Instant::now() < deadline, "events not written: {text:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(events.dropped(), 0);
    }
}
