//! The Kubernetes writer of one status kind: a task that keeps this node's objects equal to
//! the desired set (server-side apply of what changed, delete of what is stale).

use super::naming::node_selector;
use super::{FIELD_MANAGER, Objects, StatusKind};
use ferrolb_cluster::backoff::delay;
use ferrolb_shared::config::{LABEL_NODE, LABEL_SERVICE_NAME, LABEL_SERVICE_NAMESPACE};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

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

/// The Kubernetes writer of one status kind: a task fed with the desired set.
pub struct Writer<K: StatusKind> {
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

/// A listed object reduced to the fields this speaker owns (those a desired object has), so it
/// compares equal to the desired object when nothing needs writing.
pub(crate) fn owned_fields<K: StatusKind>(o: &K) -> Option<((String, String), K)> {
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
