//! The individual API writes the sink makes, each one idempotent so it can be retried.
//!
//! Status and annotations are written with JSON merge patches that carry no
//! resourceVersion: they say "these fields must be this", whatever else changed meanwhile, so
//! a concurrent edit of the Service by someone else cannot make them fail with a conflict.
//! A 409 can still come back (from an admission layer, or an API server under pressure); it
//! is retried like any other failure.

use super::events::{self, Regarding};
use super::state::SharedView;
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::config::{
    CONTROLLER_STATE_NAME, ConfigurationState, ConfigurationStateStatus, IPAddressPool,
    IPAddressPoolStatus,
};
use ferrolb_shared::reconcile::EventType;
use ferrolb_shared::service::POOL_ANNOTATION;
use k8s_openapi::api::core::v1::{Event, Service};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The field manager of the controller's server-side applies.
const FIELD_MANAGER: &str = "ferrolb-controller";

/// One write to carry out.
#[derive(Clone, Debug, PartialEq)]
pub enum Job {
    SetStatus {
        key: ServiceKey,
        ips: Vec<IpAddr>,
        pool: String,
    },
    ClearStatus {
        key: ServiceKey,
    },
    /// Create this Event. Built once, so that a retry cannot create it twice.
    Event(Box<Event>),
    PoolStatus {
        name: String,
        namespace: String,
        status: IPAddressPoolStatus,
    },
    /// The controller's `ConfigurationState`, created if missing.
    ConfigState(ConfigurationStateStatus),
}

impl Job {
    /// Whether this job writes state that a later job of the same lane fully replaces.
    pub fn is_state(&self) -> bool {
        !matches!(self, Job::Event { .. })
    }
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The object is gone; there is nothing left to write.
    #[error("not found: {0}")]
    NotFound(String),
    /// Someone else wrote first; retry soon.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("timed out")]
    Timeout,
}

impl WriteError {
    fn classify(e: kube::Error) -> Self {
        match &e {
            kube::Error::Api(s) if s.is_not_found() => WriteError::NotFound(s.message.clone()),
            kube::Error::Api(s) if s.is_conflict() => WriteError::Conflict(s.message.clone()),
            _ => WriteError::Api(e),
        }
    }
}

/// Carries out [`Job`]s against the API server.
pub struct Writes {
    client: Client,
    /// The controller's namespace, where Events about the controller go.
    namespace: String,
    identity: String,
    view: SharedView,
    events_sent: AtomicU64,
}

impl Writes {
    pub fn new(client: Client, namespace: String, identity: String, view: SharedView) -> Self {
        Writes {
            client,
            namespace,
            identity,
            view,
            events_sent: AtomicU64::new(0),
        }
    }

    pub async fn run(&self, job: &Job) -> Result<(), WriteError> {
        let result = match job {
            Job::SetStatus { key, ips, pool } => self.set_status(key, ips, Some(pool)).await,
            Job::ClearStatus { key } => self.set_status(key, &[], None).await,
            Job::Event(event) => self.event(event).await,
            Job::PoolStatus {
                name,
                namespace,
                status,
            } => {
                let api: Api<IPAddressPool> = Api::namespaced(self.client.clone(), namespace);
                let patch = Patch::Merge(json!({ "status": status }));
                api.patch_status(name, &PatchParams::default(), &patch)
                    .await
                    .map(drop)
            }
            Job::ConfigState(status) => self.config_state(status).await,
        };
        result.map_err(WriteError::classify)
    }

    /// Write (or with no `pool`, remove) the ingress addresses, then the pool annotation.
    /// The status goes first: if the annotation write fails, the Service already has its
    /// address, and the retry only adds the annotation.
    ///
    /// The API server answers each patch with the whole Service, which nothing here reads:
    /// the answer is taken as text and dropped, not parsed into a `Service` (about 130
    /// allocations each, 10,000 Services' worth of short-lived objects interleaved with the
    /// long-lived ones, which left the controller's memory fragmented).
    async fn set_status(
        &self,
        key: &ServiceKey,
        ips: &[IpAddr],
        pool: Option<&str>,
    ) -> Result<(), kube::Error> {
        let request = kube::core::Request::new(<Service as kube::Resource>::url_path(
            &(),
            Some(&key.namespace),
        ));
        let pp = PatchParams::default();
        let ingress: Vec<_> = ips
            .iter()
            .map(|ip| json!({ "ip": ip.to_string(), "ipMode": "VIP" }))
            .collect();
        // A merge patch replaces lists whole; null removes the field.
        let ingress = if ingress.is_empty() {
            serde_json::Value::Null
        } else {
            ingress.into()
        };
        let status = json!({ "status": { "loadBalancer": { "ingress": ingress } } });
        let mut patch = request
            .patch_subresource("status", &key.name, &pp, &Patch::Merge(status))
            .map_err(kube::Error::BuildRequest)?;
        // The name kube's trace layer gives the call, as `Api::patch_status` sets it.
        patch.extensions_mut().insert("patch_status");
        self.client.request_text(patch).await?;
        let annotation = json!({ "metadata": { "annotations": { POOL_ANNOTATION: pool } } });
        let mut patch = request
            .patch(&key.name, &pp, &Patch::Merge(annotation))
            .map_err(kube::Error::BuildRequest)?;
        patch.extensions_mut().insert("patch");
        self.client.request_text(patch).await?;
        Ok(())
    }

    /// Server-side apply of the object, then of its status (a subresource): creates it when
    /// missing (a fresh install, or an operator deleted it) and owns only these fields.
    async fn config_state(&self, status: &ConfigurationStateStatus) -> Result<(), kube::Error> {
        let api: Api<ConfigurationState> = Api::namespaced(self.client.clone(), &self.namespace);
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        let object = json!({
            "apiVersion": "ferrolb.io/v1beta1",
            "kind": "ConfigurationState",
            "metadata": { "name": CONTROLLER_STATE_NAME, "namespace": self.namespace },
            "spec": {},
        });
        api.patch(CONTROLLER_STATE_NAME, &pp, &Patch::Apply(&object))
            .await?;
        let mut with_status = object;
        with_status["status"] = json!(status);
        api.patch_status(CONTROLLER_STATE_NAME, &pp, &Patch::Apply(&with_status))
            .await
            .map(drop)
    }

    async fn event(&self, event: &Event) -> Result<(), kube::Error> {
        let namespace = event
            .metadata
            .namespace
            .as_deref()
            .unwrap_or(&self.namespace);
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        match api.create(&PostParams::default(), event).await {
            // Already there: this very Event, from an attempt whose answer was lost.
            Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
            r => r.map(drop),
        }
    }

    /// The Event job for an allocation-core Event.
    pub fn event_job(
        &self,
        key: Option<&ServiceKey>,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> Job {
        let unique = self.events_sent.fetch_add(1, Ordering::Relaxed);
        let regarding = match key {
            Some(key) => {
                let uid = self
                    .view
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .service_uids
                    .get(key)
                    .cloned();
                Regarding::Service { key, uid }
            }
            None => Regarding::Controller {
                namespace: &self.namespace,
            },
        };
        let event = events::build(regarding, kind, reason, message, &self.identity, unique);
        Job::Event(Box::new(event))
    }
}
