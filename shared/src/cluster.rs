//! What a cluster source reports, whichever source it is: the Kubernetes API server
//! (`kube-runtime` watchers) or a directory of manifests. Both sources (in the
//! `ferrolb-cluster` crate) turn what they observe into the same [`ClusterEvent`]s, so the
//! controller and the speaker consume one event type and never care where it came from.
//!
//! The pure halves of the sources live here: [`watch`] buffers watcher listings and diffs
//! relists, [`scan`] diffs one directory scan against the previous one. Neither does I/O.

pub mod scan;
pub mod watch;

use crate::alloc::ServiceKey;
use crate::config::{ConfigError, ConfigObject, Source};
use crate::endpoints::Slice;
pub use crate::manifest::ClusterObject;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The Kubernetes kinds a component can subscribe to (the config kinds always come as one
/// set, see [`ClusterEvent::Config`]). The order is the order a scan reports them in: what
/// other objects depend on first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Node,
    Secret,
    EndpointSlice,
    Service,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Namespace,
        Kind::Node,
        Kind::Secret,
        Kind::EndpointSlice,
        Kind::Service,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Node => "Node",
            Kind::Secret => "Secret",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Service => "Service",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::Node)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An object's identity within its kind: namespace (empty for cluster-scoped kinds) and name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of an object of `kind` with this namespace and name. A namespaced object
    /// without a namespace (a manifest that leaves it out) is in `default`, as `kubectl apply`
    /// would put it.
    pub fn named(kind: Kind, namespace: Option<&str>, name: Option<&str>) -> Self {
        let namespace = if kind.namespaced() {
            namespace.filter(|n| !n.is_empty()).unwrap_or("default")
        } else {
            ""
        };
        ObjectKey::new(namespace, name.unwrap_or_default())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

impl From<ObjectKey> for ServiceKey {
    fn from(k: ObjectKey) -> Self {
        ServiceKey::new(k.namespace, k.name)
    }
}

impl From<ServiceKey> for ObjectKey {
    fn from(k: ServiceKey) -> Self {
        ObjectKey::new(k.namespace, k.name)
    }
}

/// The annotation `kubectl apply` leaves on every object it applied: a copy of the whole object
/// as JSON, read by nobody here.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Whether this process keeps Services' labels (see [`keep_service_labels`]).
static SERVICE_LABELS: AtomicBool = AtomicBool::new(true);

/// Whether the Services this process reads keep their labels. Their only reader is the
/// controller's allocation (an IPAddressPool's `serviceSelectors`); the speaker says `false`
/// once at start-up, before any source runs: a label map costs ~0.5 KB even with one label,
/// plus its strings, per Service.
pub fn keep_service_labels(keep: bool) {
    SERVICE_LABELS.store(keep, Ordering::Relaxed);
}

/// The constructors every source uses, so that what a component stores is trimmed to what it
/// reads before anything stores it: managed fields and `kubectl`'s copy of the object go
/// everywhere (they are often most of an object's size), a Node loses its image list and
/// volume lists, a Service and an EndpointSlice become their projections
/// ([`crate::service::Service`], [`Slice`]).
impl ClusterObject {
    pub fn service(s: Service) -> Self {
        let keep_labels = SERVICE_LABELS.load(Ordering::Relaxed);
        ClusterObject::Service(Arc::new(crate::service::Service::project(s, keep_labels)))
    }

    pub fn namespace(mut n: Namespace) -> Self {
        trim_metadata(&mut n.metadata);
        ClusterObject::Namespace(Arc::new(n))
    }

    pub fn node(mut n: Node) -> Self {
        trim_metadata(&mut n.metadata);
        if let Some(status) = n.status.as_mut() {
            status.images = None;
            status.volumes_attached = None;
            status.volumes_in_use = None;
        }
        ClusterObject::Node(Arc::new(n))
    }

    pub fn secret(mut s: Secret) -> Self {
        trim_metadata(&mut s.metadata);
        ClusterObject::Secret(Arc::new(s))
    }

    pub fn endpoint_slice(s: EndpointSlice) -> Self {
        ClusterObject::EndpointSlice(Arc::new(Slice::from(s)))
    }
}

fn trim_metadata(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

impl ClusterObject {
    pub fn kind(&self) -> Kind {
        match self {
            ClusterObject::Service(_) => Kind::Service,
            ClusterObject::Namespace(_) => Kind::Namespace,
            ClusterObject::Node(_) => Kind::Node,
            ClusterObject::EndpointSlice(_) => Kind::EndpointSlice,
            ClusterObject::Secret(_) => Kind::Secret,
        }
    }

    /// The Kubernetes metadata, for the kinds that keep it whole (a Service and a slice keep
    /// only their name, namespace, resourceVersion and what they need of the rest: see
    /// [`ClusterObject::name`] and the others).
    fn metadata(&self) -> Option<&ObjectMeta> {
        match self {
            ClusterObject::Service(_) | ClusterObject::EndpointSlice(_) => None,
            ClusterObject::Namespace(o) => Some(&o.metadata),
            ClusterObject::Node(o) => Some(&o.metadata),
            ClusterObject::Secret(o) => Some(&o.metadata),
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            ClusterObject::Service(s) => Some(&s.name),
            ClusterObject::EndpointSlice(s) => Some(&s.name),
            _ => self.metadata().and_then(|m| m.name.as_deref()),
        }
    }

    pub fn in_namespace(&self) -> Option<&str> {
        match self {
            ClusterObject::Service(s) => s.namespace.as_deref(),
            ClusterObject::EndpointSlice(s) => s.namespace.as_deref(),
            _ => self.metadata().and_then(|m| m.namespace.as_deref()),
        }
    }

    pub fn resource_version(&self) -> Option<&str> {
        match self {
            ClusterObject::Service(s) => s.resource_version.as_deref(),
            ClusterObject::EndpointSlice(s) => s.resource_version.as_deref(),
            _ => self.metadata().and_then(|m| m.resource_version.as_deref()),
        }
    }

    pub fn key(&self) -> ObjectKey {
        ObjectKey::named(self.kind(), self.in_namespace(), self.name())
    }
}

/// What a cluster source observed. Events come in the order they must be applied.
#[derive(Clone, Debug, PartialEq)]
pub enum ClusterEvent {
    /// An object appeared or changed (for a Service: its status too).
    Upsert(ClusterObject),
    /// An object went away.
    Delete(Kind, ObjectKey),
    /// The complete current set of config objects (after any change to one of them), sorted,
    /// and the problems with config documents that could not even be read: any such problem
    /// rejects the whole configuration.
    Config {
        objects: Vec<(Source, ConfigObject)>,
        errors: Vec<ConfigError>,
    },
    /// The first full listing of every subscribed kind has been delivered. Sent once.
    Synced,
}

/// What a component wants to hear about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    pub kinds: BTreeSet<Kind>,
    /// Kubernetes mode: read the config kinds from this namespace only (`None`: everywhere).
    pub config_namespace: Option<String>,
    /// Kubernetes mode: read Secrets from this namespace only (`None`: everywhere). The
    /// speaker reads its own namespace's only; that is all its RBAC grants.
    pub secrets_namespace: Option<String>,
}

impl Subscription {
    pub fn new(kinds: impl IntoIterator<Item = Kind>) -> Self {
        Subscription {
            kinds: kinds.into_iter().collect(),
            ..Default::default()
        }
    }

    pub fn wants(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }
}

#[cfg(test)]
mod tests;
