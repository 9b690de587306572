//! Status objects for operators, per (Service, node): which node announces a Service and how.
//!
//! Two kinds share everything here: `ServiceL2Status` (layer 2: which node answers ARP/NDP
//! for it, `crate::layer2::status`) and `ServiceBGPStatus` (BGP: which peers receive it,
//! `crate::bgp::status`). Each is
//!
//! - in Kubernetes mode: one object per (Service, speaking node), in the Service's namespace,
//!   owned by the Service (garbage-collected with it), labelled with the node and the
//!   Service ([`naming`]); each speaker writes only its own objects, with server-side apply
//!   (field manager [`FIELD_MANAGER`]), and deletes its own objects for Services it no longer
//!   speaks for ([`Writer`]);
//! - in standalone mode: a YAML report in `<status-dir>.speakers/<node>/`.
//!
//! A mode's loop never waits for the API server: it publishes the desired set and the
//! writer task catches up.
//!
//! ```text
//!  layer 2 / BGP loop ──▶ watch<Objects<K>> ──▶ writer task ──▶ API server
//!  (never waits)                                list own (start, every RESYNC),
//!                                               apply changed, delete stale;
//!                                               failures retried with backoff
//! ```

pub mod config_state;
pub(crate) mod naming;
mod writer;

/// For the kinds' tests: a listed object must compare equal to the one its mode builds.
#[cfg(test)]
pub(crate) use writer::owned_fields;
pub use writer::{StatusError, Timing, Writer};

use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::config::{
    BGPSessionState, BGPSessionStateSpec, BGPSessionStateStatus, ConfigurationState,
    ConfigurationStateSpec, ConfigurationStateStatus, ServiceBGPStatus, ServiceBGPStatusSpec,
    ServiceBGPStatusStatus, ServiceL2Status, ServiceL2StatusSpec, ServiceL2StatusStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// The field manager of the speaker's server-side applies.
pub const FIELD_MANAGER: &str = "ferrolb-speaker";
/// How long a stopping speaker waits for its objects to be deleted.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the status objects go (a speaker setting, for every kind).
#[derive(Clone, Default)]
pub enum StatusTarget {
    /// Nowhere (tests, tools).
    #[default]
    None,
    /// Standalone mode: each mode's YAML report (`announcements.yaml`, `bgp.yaml`) in
    /// this directory.
    File(PathBuf),
    /// Kubernetes mode: the status objects through this client.
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

/// The status object of kind `K` saying `status` for `service`, written by `node`: named and
/// labelled for both ([`naming::object_meta`]), owned by the Service when its uid is known.
pub fn object<K: StatusKind>(
    node: &str,
    service: &ServiceKey,
    uid: Option<String>,
    status: K::Status,
) -> K {
    K::assemble(naming::object_meta(node, service, uid), Some(status))
}

/// `object` with its key in [`Objects`]: (namespace, name), from its metadata.
pub fn keyed<K: StatusKind>(object: K) -> ((String, String), K) {
    let meta = object.meta();
    let key = (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    );
    (key, object)
}

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
// One per speaker, and one per (speaker, BGP peer): not per Service, but written the same way.
status_kind!(
    ConfigurationState,
    ConfigurationStateSpec,
    ConfigurationStateStatus
);
status_kind!(BGPSessionState, BGPSessionStateSpec, BGPSessionStateStatus);

impl<K: StatusKind> Writer<K> {
    /// The writer of `node`'s objects in Kubernetes mode; `None` in the other modes (which
    /// write files, or nothing).
    pub fn for_target(target: &StatusTarget, node: &str) -> Option<Writer<K>> {
        match target {
            StatusTarget::Kubernetes(client) => Some(Writer::spawn(
                client.clone(),
                node.to_string(),
                Timing::default(),
            )),
            _ => None,
        }
    }
}

/// A status task that follows a source until told to stop: the speaker's ConfigurationState
/// and BGPSessionState writers. Stopping waits (a bounded while) for it to delete its objects.
pub struct StatusTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl StatusTask {
    /// Run `body` (given the stop signal) in `span`.
    pub fn spawn<F>(span: tracing::Span, body: impl FnOnce(watch::Receiver<bool>) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(body(stopped).instrument(span));
        StatusTask { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(STOP_TIMEOUT * 2, self.task).await;
    }
}
