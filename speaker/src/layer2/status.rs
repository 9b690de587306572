//! Layer 2 status for operators: which node announces each Service, on which interfaces.
//!
//! - Kubernetes mode: one `ServiceL2Status` (`kubectl get l2status -A`) per (Service,
//!   announcing node), in the Service's namespace, owned by the Service (garbage-collected with
//!   it), labelled [`LABEL_NODE`], [`LABEL_SERVICE_NAME`], [`LABEL_SERVICE_NAMESPACE`]. Each
//!   speaker writes only its own objects, with server-side apply (field manager
//!   [`FIELD_MANAGER`]), and deletes its own objects for Services it no longer announces.
//! - Standalone mode: `<status-dir>.speakers/<node>/announcements.yaml`.
//!
//! The layer 2 loop never waits for the API server: it publishes the desired set and a writer
//! task catches up.
//! The writer is generic over the kind ([`StatusKind`]): the BGP status
//! (`ServiceBGPStatus`, `crate::bgp::status`) uses it too, with the same names and labels.
//!
//! ```text
//!  layer 2 loop ── StatusSink::report ──▶ watch<Desired> ──▶ writer task ──▶ API server
//!  (never waits)   (pure: desired())                         list own (start, every RESYNC),
//!                                                            apply changed, delete stale;
//!                                                            failures retried with backoff
//! ```

use super::driver::describe;
use ferrolb_cluster::backoff::delay;
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::config::{
    LABEL_NODE, LABEL_SERVICE_NAME, LABEL_SERVICE_NAMESPACE, ServiceBGPStatus,
    ServiceBGPStatusSpec, ServiceBGPStatusStatus, ServiceL2Status, ServiceL2StatusSpec,
    ServiceL2StatusStatus,
};
use ferrolb_shared::l2::election::{Election, Interfaces};
use ferrolb_shared::snapshot::Snapshot;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

/// The field manager of the speaker's server-side applies.
pub const FIELD_MANAGER: &str = "ferrolb-speaker";
/// The longest names Kubernetes accepts: a DNS-1123 subdomain, a label value.
pub const MAX_NAME: usize = 253;
pub const MAX_LABEL_VALUE: usize = 63;
/// How long a stopping speaker waits for its objects to be deleted.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the layer 2 status goes (a speaker setting).
#[derive(Clone, Default)]
pub enum StatusTarget {
    /// Nowhere (tests, tools).
    #[default]
    None,
    /// Standalone mode: `announcements.yaml` in this directory.
    File(PathBuf),
    /// Kubernetes mode: `ServiceL2Status` objects through this client.
    Kubernetes(kube::Client),
}

impl std::fmt::Debug for StatusTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusTarget::None => f.write_str("None"),
            StatusTarget::File(dir) => f.debug_tuple("File").field(dir).finish(),
            StatusTarget::Kubernetes(_) => f.write_str("Kubernetes"),
        }
    }
}

impl StatusTarget {
    pub fn is_none(&self) -> bool {
        matches!(self, StatusTarget::None)
    }

    /// The API server when there is a client, else the report directory, else nowhere.
    pub fn choose(client: Option<kube::Client>, report_dir: Option<PathBuf>) -> Self {
        match (client, report_dir) {
            (Some(client), _) => StatusTarget::Kubernetes(client),
            (None, Some(dir)) => StatusTarget::File(dir),
            (None, None) => StatusTarget::None,
        }
    }
}

/// The objects of kind `K` a speaker wants to exist, by (namespace, name). Only the fields the
/// speaker owns are set: name, namespace, the labels, the owner reference, the status.
pub type Objects<K> = BTreeMap<(String, String), K>;
/// The `ServiceL2Status` objects a speaker wants.
pub type Desired = Objects<ServiceL2Status>;

/// A per-(Service, node) status kind the [`Writer`] keeps in line: an empty spec, everything
/// in the status.
pub trait StatusKind:
    kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + PartialEq
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The status type.
    type Status: Clone + PartialEq + serde::Serialize + Send + Sync;
    fn status(&self) -> Option<&Self::Status>;
    /// An object with `metadata` and `status` (and the empty spec).
    fn assemble(metadata: ObjectMeta, status: Option<Self::Status>) -> Self;
}

/// `impl StatusKind` for a kind with an empty spec `$spec` and status `$status`.
macro_rules! status_kind {
    ($kind:ident, $spec:ident, $status:ident) => {
        impl StatusKind for $kind {
            type Status = $status;
            fn status(&self) -> Option<&Self::Status> {
                self.status.as_ref()
            }
            fn assemble(metadata: ObjectMeta, status: Option<Self::Status>) -> Self {
                $kind {
                    metadata,
                    spec: $spec {},
                    status,
                }
            }
        }
    };
}

status_kind!(ServiceL2Status, ServiceL2StatusSpec, ServiceL2StatusStatus);
status_kind!(
    ServiceBGPStatus,
    ServiceBGPStatusSpec,
    ServiceBGPStatusStatus
);

/// What [`StatusSink::report`] writes to.
pub enum StatusSink {
    None,
    File { dir: PathBuf, node: String },
    Kubernetes { node: String, writer: Writer },
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
                let uid = |s: &ServiceKey| snapshot.services.get(s)?.metadata.uid.clone();
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

/// `name` made a DNS-1123 label: lowercase ASCII letters, digits and `-`, starting and ending
/// with a letter or digit (no length limit here).
fn label_chars(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    mapped.trim_matches('-').to_string()
}

/// `name` made a DNS-1123 subdomain: dot-separated labels (no length limit here).
fn subdomain_chars(name: &str) -> String {
    name.split('.')
        .map(label_chars)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

/// A short hash of `parts`, the same in every speaker and every version (FNV-1a, 32 bits
/// folded from 64, as 8 hex digits).
fn short_hash(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.join("\0").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:08x}", ((h >> 32) as u32) ^ (h as u32))
}

/// `candidate` when it is exactly what was asked for and fits in `max`; otherwise its first
/// characters (ending with a letter or digit) and a hash of `parts`, so that different inputs
/// still give different names.
fn fit(candidate: String, exact: bool, max: usize, parts: &[&str]) -> String {
    if exact && candidate.len() <= max && !candidate.is_empty() {
        return candidate;
    }
    let hash = short_hash(parts);
    let keep = max - hash.len() - 1;
    let start = candidate.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut prefix: String = start.chars().take(keep).collect();
    while prefix.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        prefix.pop();
    }
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// The name of the `ServiceL2Status` of `service` announced by `node`: `<service>.<node>`, a
/// valid DNS-1123 subdomain of at most [`MAX_NAME`] characters. Service names have no dots
/// (they are DNS-1035 labels), so the first dot separates the two and no two (Service, node)
/// pairs share a name. Anything that had to be changed or cut gets a stable hash suffix.
pub fn object_name(service: &str, node: &str) -> String {
    let (s, n) = (label_chars(service), subdomain_chars(node));
    let exact = s == service && n == node && !s.is_empty() && !n.is_empty();
    fit(format!("{s}.{n}"), exact, MAX_NAME, &[service, node])
}

/// `value` as a label value (at most [`MAX_LABEL_VALUE`] characters of letters, digits, `-`,
/// `_` and `.`, beginning and ending with a letter or digit): unchanged when it already is one,
/// otherwise cut and given a stable hash suffix. Node names can be longer than a label value.
pub fn label_value(value: &str) -> String {
    let mapped: String = value
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '-',
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let exact = trimmed == value;
    fit(trimmed.to_string(), exact, MAX_LABEL_VALUE, &[value])
}

/// The label selector of the objects `node` writes.
pub fn node_selector(node: &str) -> String {
    format!("{LABEL_NODE}={}", label_value(node))
}

/// The metadata of the status object of `service` written by `node`: its name, namespace,
/// labels, and the Service as owner when its uid is known.
pub fn object_meta(node: &str, service: &ServiceKey, uid: Option<String>) -> ObjectMeta {
    let labels = BTreeMap::from([
        (LABEL_NODE.to_string(), label_value(node)),
        (LABEL_SERVICE_NAME.to_string(), label_value(&service.name)),
        (
            LABEL_SERVICE_NAMESPACE.to_string(),
            label_value(&service.namespace),
        ),
    ]);
    let owner = uid.map(|uid| OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: service.name.clone(),
        uid,
        ..Default::default()
    });
    ObjectMeta {
        name: Some(object_name(&service.name, node)),
        namespace: Some(service.namespace.clone()),
        labels: Some(labels),
        owner_references: owner.map(|o| vec![o]),
        ..Default::default()
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
    ServiceL2Status {
        metadata: object_meta(node, service, uid),
        spec: ServiceL2StatusSpec {},
        status: Some(ServiceL2StatusStatus {
            node: node.to_string(),
            service_name: service.name.clone(),
            service_namespace: service.namespace.clone(),
            interfaces,
            ips: ips.iter().map(ToString::to_string).collect(),
        }),
    }
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
            let object = build(node, service, uid(service), &ips, &interfaces);
            (
                (service.namespace.clone(), object_key_name(&object)),
                object,
            )
        })
        .collect()
}

fn object_key_name<K: StatusKind>(o: &K) -> String {
    o.meta().name.clone().unwrap_or_default()
}

/// The writer task's timers.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// List this node's objects again (and repair what others changed) this often.
    pub resync: Duration,
    /// Retry a failed pass after `retry_min`, doubling up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            resync: Duration::from_secs(30),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// Why a pass of the writer failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The API server does not serve the kind (its plural): its CRD is not installed.
    #[error(
        "the API server does not serve {0}.ferrolb.io: apply \
         config/crds/{0}.yaml (and the speaker's RBAC in config/rbac)"
    )]
    NotInstalled(String),
    /// Listing this node's objects (by label selector) failed.
    #[error("cannot list the {kind} objects with {selector}: {source}")]
    List {
        kind: String,
        selector: String,
        source: kube::Error,
    },
    /// Creating or updating one object failed.
    #[error("cannot apply {kind} {namespace}/{name}: {source}")]
    Apply {
        kind: String,
        namespace: String,
        name: String,
        source: kube::Error,
    },
    /// Deleting one object failed.
    #[error("cannot delete {kind} {namespace}/{name}: {source}")]
    Delete {
        kind: String,
        namespace: String,
        name: String,
        source: kube::Error,
    },
}

/// The Kubernetes writer of one status kind (`ServiceL2Status` unless said otherwise): a task
/// fed with the desired set.
pub struct Writer<K: StatusKind = ServiceL2Status> {
    tx: watch::Sender<Objects<K>>,
    task: JoinHandle<()>,
}

impl<K: StatusKind> Writer<K> {
    /// Start writing the objects of `node`. The first pass lists them and deletes the stale
    /// ones (left by an earlier run), even before anything is desired.
    pub fn spawn(client: kube::Client, node: String, timing: Timing) -> Writer<K> {
        let (tx, rx) = watch::channel(Objects::<K>::new());
        let span = tracing::info_span!("status", kind = %K::kind(&()));
        let task = tokio::spawn(write_loop(client, node, rx, timing).instrument(span));
        Writer { tx, task }
    }

    /// Replace the desired set (a no-op when it is the same).
    pub fn set(&self, desired: Objects<K>) {
        self.tx.send_if_modified(|d| {
            let changed = *d != desired;
            *d = desired;
            changed
        });
    }

    /// Delete every object (this node announces nothing any more) and stop, waiting at
    /// most `limit`. Dropping the writer does the same without waiting.
    pub async fn stop(self, limit: Duration) {
        let Writer { tx, mut task } = self;
        drop(tx);
        if tokio::time::timeout(limit, &mut task).await.is_err() {
            let kind = K::kind(&());
            tracing::warn!("the {kind} objects were not cleaned up within {limit:?}");
            task.abort();
        }
    }
}

async fn write_loop<K: StatusKind>(
    client: kube::Client,
    node: String,
    mut rx: watch::Receiver<Objects<K>>,
    timing: Timing,
) {
    let selector = node_selector(&node);
    // What the API server holds (the fields this speaker owns); `None`: list it first.
    let mut written: Option<Objects<K>> = None;
    let mut failures = 0u32;
    let mut retry: Option<Instant> = None;
    let mut due = true;
    let mut closing = false;
    let mut resync = tokio::time::interval_at(Instant::now() + timing.resync, timing.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if due && (closing || retry.is_none_or(|t| t <= Instant::now())) {
            // The sender is gone once the loop feeding it has ended: nothing is announced.
            let want = if closing {
                Objects::new()
            } else {
                rx.borrow_and_update().clone()
            };
            match pass(&client, &selector, &want, &mut written).await {
                Ok(()) => {
                    if failures > 0 {
                        let kind = K::kind(&());
                        tracing::info!("{kind} objects written after {failures} failed attempts");
                    }
                    failures = 0;
                    retry = None;
                    due = false;
                }
                Err(errors) => {
                    let wait = delay(failures, timing.retry_min, timing.retry_max);
                    failures = failures.saturating_add(1);
                    for e in &errors {
                        tracing::warn!(retry_in = ?wait, "{e}");
                    }
                    retry = Some(Instant::now() + wait);
                }
            }
        }
        if closing {
            return;
        }
        let sleep = tokio::time::sleep_until(retry.unwrap_or_else(Instant::now));
        tokio::select! {
            r = rx.changed() => {
                due = true;
                // The sender is gone: one last pass (deleting everything), then stop.
                closing = r.is_err();
            }
            _ = resync.tick() => {
                written = None;
                due = true;
            }
            () = sleep, if retry.is_some() => retry = None,
        }
    }
}

/// One pass: list this node's objects if needed, apply what differs, delete what is not
/// wanted. Carries on past failures (reported together); `written` follows what succeeded.
async fn pass<K: StatusKind>(
    client: &kube::Client,
    selector: &str,
    want: &Objects<K>,
    written: &mut Option<Objects<K>>,
) -> Result<(), Vec<StatusError>> {
    let kind = K::kind(&()).to_string();
    let have = match written {
        Some(have) => have,
        None => {
            let api: Api<K> = Api::all(client.clone());
            let listed = api
                .list(&ListParams::default().labels(selector))
                .await
                .map_err(|source| {
                    vec![match source {
                        kube::Error::Api(s) if s.is_not_found() => {
                            StatusError::NotInstalled(K::plural(&()).to_string())
                        }
                        source => StatusError::List {
                            kind: kind.clone(),
                            selector: selector.to_string(),
                            source,
                        },
                    }]
                })?;
            written.insert(listed.items.iter().filter_map(owned_fields).collect())
        }
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut errors = Vec::new();
    for (key, object) in want {
        let (namespace, name) = key;
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        let old = have.get(key);
        let same_meta = old.is_some_and(|o| o.meta() == object.meta());
        let same_status = same_meta && old.is_some_and(|o| o.status() == object.status());
        if same_status {
            continue;
        }
        let failed = |source| StatusError::Apply {
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        };
        if !same_meta {
            let body = K::assemble(object.meta().clone(), None);
            if let Err(e) = api.patch(name, &params, &Patch::Apply(&body)).await {
                errors.push(failed(e));
                continue;
            }
            have.insert(key.clone(), body);
            tracing::debug!(namespace, name, kind, "applied");
        }
        let body = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": kind,
            "metadata": { "name": name, "namespace": namespace },
            "status": object.status(),
        });
        match api.patch_status(name, &params, &Patch::Apply(&body)).await {
            Ok(_) => {
                have.insert(key.clone(), object.clone());
                tracing::debug!(namespace, name, kind, "status applied");
            }
            Err(e) => errors.push(failed(e)),
        }
    }
    let stale: Vec<(String, String)> = have
        .keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    for key in stale {
        let (namespace, name) = &key;
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::debug!(namespace, name, kind, "deleted");
                have.remove(&key);
            }
            Err(kube::Error::Api(s)) if s.is_not_found() => {
                have.remove(&key);
            }
            Err(source) => errors.push(StatusError::Delete {
                kind: kind.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
                source,
            }),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A listed object reduced to the fields this speaker owns (as [`build`] sets them), so it
/// compares equal to the desired object when nothing needs writing.
fn owned_fields<K: StatusKind>(o: &K) -> Option<((String, String), K)> {
    let name = o.meta().name.clone()?;
    let namespace = o.meta().namespace.clone()?;
    let labels = o.meta().labels.as_ref().map(|l| {
        l.iter()
            .filter(|(k, _)| {
                [LABEL_NODE, LABEL_SERVICE_NAME, LABEL_SERVICE_NAMESPACE].contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    });
    let owners: Vec<OwnerReference> = o
        .meta()
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.api_version == "v1" && r.kind == "Service")
        .cloned()
        .collect();
    let metadata = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(namespace.clone()),
        labels,
        owner_references: (!owners.is_empty()).then_some(owners),
        ..Default::default()
    };
    let object = K::assemble(metadata, o.status().cloned());
    Some(((namespace, name), object))
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
