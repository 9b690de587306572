//! The speaker's view of the cluster: one immutable, consistent [`Snapshot`] of everything the
//! forwarding layer, layer 2 and BGP need (the configuration in force, Services with their
//! status, EndpointSlices, Nodes, Secrets), built from [`ClusterEvent`]s by a pure
//! [`SnapshotBuilder`].
//!
//! Consistency: the builder applies events to a working copy and hands out a snapshot only
//! when asked ([`SnapshotBuilder::publish`]), which the driver does after a whole batch of
//! events, and never before the source's first full listing (`Synced`). So no consumer ever
//! sees a half-listed cluster (which would look like every Service vanished) or half a burst.
//!
//! A rejected configuration never replaces the last good one (see [`ConfigState`]): the
//! snapshot keeps it and says so with [`Snapshot::config_stale`] and the errors.

use crate::alloc::ServiceKey;
use crate::cluster::{ClusterEvent, ClusterObject, Kind, ObjectKey};
use crate::config::{Config, ConfigError, ConfigState, Outcome};
use crate::endpoints::Slice;
use crate::ipvs::build::{NodeView, Options, Warning, build_table};
use crate::ipvs::model::Table;
use crate::service::Service;
use crate::service::status_ips;
use imbl::OrdMap;
use k8s_openapi::api::core::v1::{Node, Secret};
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// The cluster as one speaker sees it at one moment. Objects are shared (`Arc`) and so are the
/// maps' unchanged parts (persistent `imbl` maps), so publishing a snapshot costs O(1), not a
/// copy of every key.
#[derive(Clone, Default)]
pub struct Snapshot {
    /// The node this speaker runs on.
    pub node: String,
    /// Counts published snapshots: 1 for the first, one more for every later one.
    pub generation: u64,
    /// The last good configuration, if one was ever accepted.
    pub config: Option<Arc<Config>>,
    /// The newest configuration was rejected; [`Self::config`] is older (or absent).
    pub config_stale: bool,
    /// Why the newest configuration was rejected (empty unless stale).
    pub config_errors: Vec<ConfigError>,
    /// Every Service, with the status the controller wrote.
    pub services: OrdMap<ServiceKey, Arc<Service>>,
    pub endpoint_slices: OrdMap<ObjectKey, Arc<Slice>>,
    /// Every Node (the election needs them all), by name.
    pub nodes: OrdMap<String, Arc<Node>>,
    /// Secrets of the speaker's namespace (BGP passwords). Never logged.
    pub secrets: OrdMap<ObjectKey, Arc<Secret>>,
    /// EndpointSlices by the Service they belong to (their `kubernetes.io/service-name`),
    /// each list sorted. A `Vec`, not a `BTreeSet`: a Service has one slice or a few, and a
    /// set's first node costs ~0.5 KB (5 MiB at 10,000 Services).
    slices_by_service: OrdMap<ServiceKey, Vec<ObjectKey>>,
    /// What changed since the previous snapshot (generation - 1), for consumers that follow
    /// every generation and want to look at the changes only.
    pub changes: Arc<Changes>,
}

/// The objects that changed between two consecutive snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Services whose Service object or EndpointSlices were added, changed or removed.
    pub services: BTreeSet<ServiceKey>,
    /// Some Node changed (this node's addresses, or any node's labels and conditions).
    pub nodes: bool,
    /// The configuration changed (accepted or rejected).
    pub config: bool,
}

impl Snapshot {
    /// The EndpointSlices of one Service.
    pub fn endpoint_slices_of(&self, service: &ServiceKey) -> impl Iterator<Item = &Slice> {
        self.shared_endpoint_slices_of(service).map(|s| &**s)
    }

    /// [`Self::endpoint_slices_of`] as the shared handles, which tell by pointer whether a
    /// slice changed between two snapshots.
    pub fn shared_endpoint_slices_of(
        &self,
        service: &ServiceKey,
    ) -> impl Iterator<Item = &Arc<Slice>> {
        self.slices_by_service
            .get(service)
            .into_iter()
            .flatten()
            .filter_map(|k| self.endpoint_slices.get(k))
    }

    /// This node's Node object, once it has been seen.
    pub fn this_node(&self) -> Option<&Node> {
        self.nodes.get(&self.node).map(|n| &**n)
    }

    /// This node as the forwarding layer sees it: its name and the addresses NodePorts listen
    /// on (the Node's InternalIP and ExternalIP addresses).
    pub fn node_view(&self) -> NodeView {
        let addresses = self
            .this_node()
            .and_then(|n| n.status.as_ref())
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
            .filter(|a| matches!(a.type_.as_str(), "InternalIP" | "ExternalIP"))
            .filter_map(|a| a.address.parse::<IpAddr>().ok())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        NodeView {
            name: self.node.clone(),
            addresses,
        }
    }

    /// The virtual server table this node should program ([`build_table`] over the whole
    /// snapshot).
    pub fn table(&self, options: &Options) -> (Table, Vec<Warning>) {
        let services: Vec<Service> = self.services.values().map(|s| (**s).clone()).collect();
        let slices: Vec<Slice> = self
            .endpoint_slices
            .values()
            .map(|s| (**s).clone())
            .collect();
        build_table(&services, &slices, &self.node_view(), options)
    }

    /// Counts for logs and metrics.
    pub fn summary(&self) -> Summary {
        let endpoints = self
            .endpoint_slices
            .values()
            .map(|s| s.endpoints.len())
            .sum();
        let mut lb_ips = 0;
        let mut services_with_ips = 0;
        for svc in self.services.values() {
            let n = status_ips(svc).len();
            lb_ips += n;
            services_with_ips += usize::from(n > 0);
        }
        Summary {
            services: self.services.len(),
            services_with_ips,
            lb_ips,
            endpoint_slices: self.endpoint_slices.len(),
            endpoints,
            nodes: self.nodes.len(),
            secrets: self.secrets.len(),
            config: match (&self.config, self.config_stale) {
                (None, false) => ConfigStatus::None,
                (Some(_), false) => ConfigStatus::Accepted,
                (_, true) => ConfigStatus::Stale,
            },
            config_loaded: self.config.is_some(),
        }
    }
}

/// Secrets must never reach a log, so `Debug` shows keys and counts only.
impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("node", &self.node)
            .field("generation", &self.generation)
            .field("config_loaded", &self.config.is_some())
            .field("config_stale", &self.config_stale)
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .field(
                "endpoint_slices",
                &self.endpoint_slices.keys().collect::<Vec<_>>(),
            )
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Whether a configuration is in force, and whether the newest one was rejected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConfigStatus {
    /// None received yet.
    #[default]
    None,
    Accepted,
    /// The newest was rejected; the last good one (if any) is in force.
    Stale,
}

impl ConfigStatus {
    pub fn name(self) -> &'static str {
        match self {
            ConfigStatus::None => "none",
            ConfigStatus::Accepted => "accepted",
            ConfigStatus::Stale => "stale",
        }
    }
}

/// The size of a snapshot, for the log and the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub services: usize,
    /// Services with at least one address in their status.
    pub services_with_ips: usize,
    /// Addresses in Service status, all Services together.
    pub lb_ips: usize,
    pub endpoint_slices: usize,
    /// Endpoints in all EndpointSlices, whatever their conditions.
    pub endpoints: usize,
    pub nodes: usize,
    pub secrets: usize,
    pub config: ConfigStatus,
    /// A configuration is in force (even if a newer one was rejected).
    pub config_loaded: bool,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} services ({} with {} LoadBalancer IPs), {} EndpointSlices ({} endpoints), {} nodes, {} secrets, config {}",
            self.services,
            self.services_with_ips,
            self.lb_ips,
            self.endpoint_slices,
            self.endpoints,
            self.nodes,
            self.secrets,
            self.config.name()
        )
    }
}

/// What applying one event did.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    /// Nothing changed: a repeat, a kind the snapshot does not keep, or a delete of an object
    /// it did not have.
    Unchanged,
    /// Objects were added, changed or removed.
    Objects,
    /// A new configuration is in force.
    ConfigAccepted,
    /// The newest configuration was rejected with these errors; the last good one stays.
    ConfigRejected(Vec<ConfigError>),
    /// The first full listing is complete: snapshots may be published from now on.
    Synced,
}

/// Builds snapshots from events. Pure: the driver feeds events and publishes.
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    working: Snapshot,
    config: ConfigState,
    synced: bool,
    /// Something changed since the last published snapshot.
    dirty: bool,
    /// What changed since the last published snapshot.
    pending: Changes,
}

impl SnapshotBuilder {
    /// A builder for the speaker on `node`.
    pub fn new(node: impl Into<String>) -> Self {
        SnapshotBuilder {
            working: Snapshot {
                node: node.into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Whether the source's first full listing has been applied.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The working copy (not yet published), for inspection.
    pub fn current(&self) -> &Snapshot {
        &self.working
    }

    /// Apply one event to the working copy.
    pub fn apply(&mut self, event: ClusterEvent) -> Applied {
        let applied = match event {
            ClusterEvent::Upsert(obj) => {
                if self.upsert(obj) {
                    Applied::Objects
                } else {
                    Applied::Unchanged
                }
            }
            ClusterEvent::Delete(kind, key) => {
                if self.delete(kind, &key) {
                    Applied::Objects
                } else {
                    Applied::Unchanged
                }
            }
            ClusterEvent::Config { objects, errors } => {
                let outcome = self.config.offer(objects, errors);
                let w = &mut self.working;
                w.config = self.config.config().cloned();
                w.config_stale = self.config.stale();
                w.config_errors = self.config.errors().to_vec();
                self.pending.config |= !matches!(outcome, Outcome::Unchanged);
                match outcome {
                    Outcome::Unchanged => Applied::Unchanged,
                    Outcome::Accepted => Applied::ConfigAccepted,
                    Outcome::Rejected(errors) => Applied::ConfigRejected(errors),
                }
            }
            ClusterEvent::Synced if self.synced => Applied::Unchanged,
            ClusterEvent::Synced => {
                self.synced = true;
                Applied::Synced
            }
        };
        self.dirty |= applied != Applied::Unchanged;
        applied
    }

    /// A new snapshot, if the first full listing is in and something changed since the last
    /// one.
    pub fn publish(&mut self) -> Option<Arc<Snapshot>> {
        if !self.synced || !self.dirty {
            return None;
        }
        self.dirty = false;
        self.working.generation += 1;
        self.working.changes = Arc::new(std::mem::take(&mut self.pending));
        Some(Arc::new(self.working.clone()))
    }

    /// Insert or replace; returns whether anything changed.
    fn upsert(&mut self, obj: ClusterObject) -> bool {
        let key = obj.key();
        let w = &mut self.working;
        match obj {
            ClusterObject::Service(s) => {
                let service: ServiceKey = key.into();
                let changed = replace(&mut w.services, service.clone(), s);
                if changed {
                    self.pending.services.insert(service);
                }
                changed
            }
            ClusterObject::Node(n) => {
                let changed = replace(&mut w.nodes, key.name, n);
                self.pending.nodes |= changed;
                changed
            }
            ClusterObject::Secret(s) => replace(&mut w.secrets, key, s),
            ClusterObject::EndpointSlice(s) => {
                let service = owner(&s);
                let old = w.endpoint_slices.get(&key).and_then(|old| owner(old));
                if !replace(&mut w.endpoint_slices, key.clone(), s) {
                    return false;
                }
                self.pending.services.extend(old.clone());
                unindex(&mut w.slices_by_service, old, &key);
                if let Some(service) = service {
                    self.pending.services.insert(service.clone());
                    let slices = w.slices_by_service.entry(service).or_default();
                    if let Err(at) = slices.binary_search(&key) {
                        slices.insert(at, key);
                    }
                }
                true
            }
            // Namespaces matter to allocation, not to announcing or forwarding.
            ClusterObject::Namespace(_) => false,
        }
    }

    /// Remove; returns whether it was there.
    fn delete(&mut self, kind: Kind, key: &ObjectKey) -> bool {
        let w = &mut self.working;
        match kind {
            Kind::Service => {
                let service: ServiceKey = key.clone().into();
                let removed = w.services.remove(&service).is_some();
                if removed {
                    self.pending.services.insert(service);
                }
                removed
            }
            Kind::Node => {
                let removed = w.nodes.remove(&key.name).is_some();
                self.pending.nodes |= removed;
                removed
            }
            Kind::Secret => w.secrets.remove(key).is_some(),
            Kind::EndpointSlice => match w.endpoint_slices.remove(key) {
                Some(old) => {
                    let service = owner(&old);
                    self.pending.services.extend(service.clone());
                    unindex(&mut w.slices_by_service, service, key);
                    true
                }
                None => false,
            },
            Kind::Namespace => false,
        }
    }
}

/// Put `value` at `key` unless an equal value is already there; returns whether it changed.
/// Keeps the source's own `Arc`: the snapshot shares the object, it does not copy it.
fn replace<K: Ord + Clone, V: PartialEq>(
    map: &mut OrdMap<K, Arc<V>>,
    key: K,
    value: Arc<V>,
) -> bool {
    if map
        .get(&key)
        .is_some_and(|old| Arc::ptr_eq(old, &value) || **old == *value)
    {
        return false;
    }
    map.insert(key, value);
    true
}

/// The Service an EndpointSlice belongs to.
fn owner(slice: &Slice) -> Option<ServiceKey> {
    let name = slice.service_name()?;
    let key = ObjectKey::named(
        Kind::EndpointSlice,
        slice.namespace.as_deref(),
        Some(&slice.name),
    );
    Some(ServiceKey::new(key.namespace, name))
}

/// Remove `slice` from the index entry of `service`, its previous owner.
fn unindex(
    index: &mut OrdMap<ServiceKey, Vec<ObjectKey>>,
    service: Option<ServiceKey>,
    slice: &ObjectKey,
) {
    let Some(service) = service else { return };
    if let Some(slices) = index.get_mut(&service) {
        if let Ok(at) = slices.binary_search(slice) {
            slices.remove(at);
        }
        if slices.is_empty() {
            index.remove(&service);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
