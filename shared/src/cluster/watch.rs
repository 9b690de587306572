//! The pure half of the Kubernetes source: what the watchers have delivered so far, and the
//! [`ClusterEvent`]s each watcher event turns into.
//!
//! Every watcher delivers `Init`, a full listing (`InitApply`...), `InitDone`, then live
//! `Apply`/`Delete` events; after a `410 Gone` or a lost watch it starts over with `Init`.
//! A listing is buffered until its `InitDone` and then diffed against what we had: only
//! objects that changed are passed on, and objects missing from the new listing are deleted.
//! So a relist never produces spurious deletes, and deletions that happened while we were
//! not watching are still noticed.
//!
//! Config objects are not passed on one by one: validation wants the whole set, so any change
//! sends every config object, sorted by kind and name. The first set is only sent once every
//! config kind has been listed (a partial set would be rejected for dangling references), and
//! `Synced` once every watcher has been listed, exactly once.

use super::{ClusterEvent, ClusterObject, Kind, ObjectKey, Subscription};
use crate::config::{ConfigObject, Source};
use std::collections::BTreeMap;

/// The six config kinds, by `ConfigObject::kind()`, in the order config sets are sorted.
pub const CONFIG_KINDS: [&str; 6] = [
    "BFDProfile",
    "BGPAdvertisement",
    "BGPPeer",
    "Community",
    "IPAddressPool",
    "L2Advertisement",
];

/// One watcher event, as `kube_runtime::watcher::Event` has it (mirrored here so that this
/// crate needs no runtime).
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent<T> {
    Init,
    InitApply(T),
    InitDone,
    Apply(T),
    Delete(T),
}

impl<T> WatchEvent<T> {
    /// The same event, carrying `f(object)` instead of the object.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> WatchEvent<U> {
        match self {
            WatchEvent::Init => WatchEvent::Init,
            WatchEvent::InitApply(o) => WatchEvent::InitApply(f(o)),
            WatchEvent::InitDone => WatchEvent::InitDone,
            WatchEvent::Apply(o) => WatchEvent::Apply(f(o)),
            WatchEvent::Delete(o) => WatchEvent::Delete(f(o)),
        }
    }

    pub fn object(&self) -> Option<&T> {
        match self {
            WatchEvent::InitApply(o) | WatchEvent::Apply(o) | WatchEvent::Delete(o) => Some(o),
            WatchEvent::Init | WatchEvent::InitDone => None,
        }
    }
}

/// One watcher event, tagged with the watcher it came from.
// Config objects are large and cluster objects boxed; an update lives only on its way from
// the watcher into a store, so the size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    Cluster(Kind, WatchEvent<ClusterObject>),
    /// A config object, from the watcher of config kind `.0` (one of [`CONFIG_KINDS`]).
    Config(&'static str, WatchEvent<ConfigObject>),
}

/// What one watcher has delivered: a fingerprint `F` of each object `V` (enough to tell
/// whether it changed), not the object itself, which the consumer keeps.
#[derive(Debug)]
pub struct Relist<K, V, F> {
    items: BTreeMap<K, F>,
    /// The listing in progress (between `Init` and `InitDone`).
    relist: Option<BTreeMap<K, V>>,
    listed: bool,
}

impl<K, V, F> Default for Relist<K, V, F> {
    fn default() -> Self {
        Relist {
            items: BTreeMap::new(),
            relist: None,
            listed: false,
        }
    }
}

/// The changes one watcher event makes: objects new or changed, and keys gone.
#[derive(Debug)]
pub struct Diff<K, V> {
    pub upserts: Vec<V>,
    pub deletes: Vec<K>,
}

impl<K: Ord + Clone, V, F: PartialEq> Relist<K, V, F> {
    /// Whether a first full listing has been received.
    pub fn listed(&self) -> bool {
        self.listed
    }

    /// The fingerprints of what is known, by key.
    pub fn items(&self) -> &BTreeMap<K, F> {
        &self.items
    }

    /// Apply one event; returns the changes to pass on (none while a listing is buffered).
    pub fn handle(
        &mut self,
        event: WatchEvent<V>,
        key_of: impl Fn(&V) -> K,
        fingerprint: impl Fn(&V) -> F,
    ) -> Diff<K, V> {
        let mut diff = Diff {
            upserts: Vec::new(),
            deletes: Vec::new(),
        };
        match event {
            WatchEvent::Init => self.relist = Some(BTreeMap::new()),
            WatchEvent::InitApply(obj) => {
                // An InitApply without Init cannot happen; treat it as starting a listing.
                self.relist
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key_of(&obj), obj);
            }
            WatchEvent::InitDone => {
                let listed = self.relist.take().unwrap_or_default();
                let mut items = BTreeMap::new();
                for (key, obj) in listed {
                    let fp = fingerprint(&obj);
                    if self.items.get(&key) != Some(&fp) {
                        diff.upserts.push(obj);
                    }
                    items.insert(key, fp);
                }
                diff.deletes = self
                    .items
                    .keys()
                    .filter(|k| !items.contains_key(*k))
                    .cloned()
                    .collect();
                self.items = items;
                self.listed = true;
            }
            WatchEvent::Apply(obj) => {
                let key = key_of(&obj);
                let fp = fingerprint(&obj);
                if self.items.get(&key) != Some(&fp) {
                    self.items.insert(key, fp);
                    diff.upserts.push(obj);
                }
            }
            WatchEvent::Delete(obj) => {
                let key = key_of(&obj);
                if self.items.remove(&key).is_some() {
                    diff.deletes.push(key);
                }
            }
        }
        diff
    }
}

/// Cluster objects are told apart by resourceVersion: the server gives every change (status
/// included) a new one, so comparing versions is as good as comparing objects, and cheaper.
type ClusterStore = Relist<ObjectKey, ClusterObject, Option<String>>;
/// Config objects are kept whole: the sources strip server-maintained metadata, so only an
/// operator's edit compares unequal (a pool status write would bump its resourceVersion).
type ConfigStore = Relist<(String, String), ConfigObject, ConfigObject>;

/// Everything the watchers have delivered. See the module documentation.
pub struct WatchState {
    cluster: BTreeMap<Kind, ClusterStore>,
    config: BTreeMap<&'static str, ConfigStore>,
    /// The config set last sent, so an unchanged set is not sent again.
    last_config: Option<Vec<(Source, ConfigObject)>>,
    synced: bool,
}

impl WatchState {
    /// State for the watchers `subscription` needs: one per subscribed kind, one per config
    /// kind.
    pub fn new(subscription: &Subscription) -> Self {
        WatchState {
            cluster: subscription
                .kinds
                .iter()
                .map(|k| (*k, Relist::default()))
                .collect(),
            config: CONFIG_KINDS
                .iter()
                .map(|k| (*k, Relist::default()))
                .collect(),
            last_config: None,
            synced: false,
        }
    }

    /// Whether `Synced` has been sent.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// Turn one watcher event into the events for the consumer. Events of a watcher nobody
    /// subscribed to are dropped.
    pub fn handle(&mut self, update: Update) -> Vec<ClusterEvent> {
        let mut out = Vec::new();
        match update {
            Update::Cluster(kind, event) => {
                let Some(store) = self.cluster.get_mut(&kind) else {
                    return out;
                };
                let diff = store.handle(event, ClusterObject::key, |o| {
                    o.resource_version().map(str::to_owned)
                });
                // Deletions first: for the controller, the addresses they free are then
                // available to the Services the same listing brought.
                out.extend(
                    diff.deletes
                        .into_iter()
                        .map(|k| ClusterEvent::Delete(kind, k)),
                );
                out.extend(diff.upserts.into_iter().map(ClusterEvent::Upsert));
            }
            Update::Config(kind, event) => {
                if let Some(store) = self.config.get_mut(kind) {
                    let key = |o: &ConfigObject| {
                        let ns = o.metadata().namespace.clone().unwrap_or_default();
                        (o.name().to_string(), ns)
                    };
                    store.handle(event, key, ConfigObject::clone);
                }
                self.push_config(&mut out);
            }
        }
        if !self.synced
            && self.cluster.values().all(|s| s.listed)
            && self.config.values().all(|s| s.listed)
        {
            self.synced = true;
            out.push(ClusterEvent::Synced);
        }
        out
    }

    /// Send the whole config set if every kind has been listed and the set changed.
    fn push_config(&mut self, out: &mut Vec<ClusterEvent>) {
        if !self.config.values().all(|s| s.listed) {
            return;
        }
        // BTreeMaps keyed by kind, then (name, namespace): already sorted.
        let objects: Vec<(Source, ConfigObject)> = self
            .config
            .values()
            .flat_map(|s| s.items.values())
            .map(|o| (Source::api(), o.clone()))
            .collect();
        if self.last_config.as_ref() == Some(&objects) {
            return;
        }
        self.last_config = Some(objects.clone());
        out.push(ClusterEvent::Config {
            objects,
            errors: vec![],
        });
    }
}

#[cfg(test)]
mod tests;
