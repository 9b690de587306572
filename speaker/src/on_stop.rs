//! `--on-stop auto`: on SIGTERM, ask the API server about this speaker's pod and its
//! DaemonSet; [`ferrolb_shared::stop::decide`] turns the answers into keep or clean.
//!
//! Two GETs in the speaker's own namespace (RBAC: `get` on pods and `apps` daemonsets, in the
//! speaker's Role), bounded by [`LOOKUP_LIMIT`] so a slow API server cannot eat the pod's
//! termination grace period (30 s by default).

use ferrolb_shared::stop::{Facts, OnStop, StopKind, decide};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use std::time::Duration;

/// How long the lookup may take before it counts as failed (and the stop is clean).
pub const LOOKUP_LIMIT: Duration = Duration::from_secs(5);

/// Where this speaker runs, for the lookup: `None` in standalone mode.
#[derive(Clone)]
pub struct PodRef {
    pub client: kube::Client,
    pub namespace: String,
    /// `FERROLB_POD_NAME` (the downward API's `metadata.name`).
    pub pod: Option<String>,
}

/// The stop to carry out for `flag`, and why. Asks the API server only for `auto`.
pub async fn choose(flag: OnStop, pod: Option<&PodRef>) -> (StopKind, String) {
    let facts = match (flag, pod) {
        (OnStop::Auto, Some(p)) => match tokio::time::timeout(LOOKUP_LIMIT, lookup(p)).await {
            Ok(f) => f,
            Err(_) => Facts::Unknown(format!("no answer within {LOOKUP_LIMIT:?}")),
        },
        // Not needed: the flag decides, or standalone mode.
        _ => Facts::Standalone,
    };
    decide(flag, &facts)
}

/// What the API server says about the pod and its controlling DaemonSet.
pub async fn lookup(p: &PodRef) -> Facts {
    let Some(name) = p.pod.as_deref() else {
        return Facts::NoPodName;
    };
    let pods: Api<Pod> = Api::namespaced(p.client.clone(), &p.namespace);
    let pod = match pods.get_opt(name).await {
        Ok(Some(pod)) => pod,
        Ok(None) => return Facts::PodGone,
        Err(e) => return failed(e),
    };
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "DaemonSet" && o.controller == Some(true));
    let Some(owner) = owner else {
        return Facts::NoDaemonSet;
    };
    let sets: Api<DaemonSet> = Api::namespaced(p.client.clone(), &p.namespace);
    let set = match sets.get_opt(&owner.name).await {
        Ok(set) => set,
        Err(e) => return failed(e),
    };
    Facts::Found {
        pod_deleting: pod.metadata.deletion_timestamp.is_some(),
        daemonset: set.is_some(),
        daemonset_deleting: set.is_some_and(|s| s.metadata.deletion_timestamp.is_some()),
    }
}

fn failed(e: kube::Error) -> Facts {
    match &e {
        kube::Error::Api(status) if status.code == 403 => Facts::Forbidden,
        _ => Facts::Unknown(e.to_string()),
    }
}
