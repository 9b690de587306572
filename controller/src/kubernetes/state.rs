//! What the watchers have seen so far, and the [`Input`]s each watcher event turns into.
//!
//! Every watcher delivers `Init`, a full listing (`InitApply`...), `InitDone`, then live
//! `Apply`/`Delete` events; after a `410 Gone` or a lost watch it starts over with `Init`.
//! A listing is buffered until its `InitDone` and then diffed against what we had: only
//! objects that changed are passed on, and objects missing from the new listing are deleted.
//! So a relist never produces spurious deletes, and deletions that happened while we were
//! not watching are still noticed.
//!
//! Config objects are not passed on one by one: the allocation core wants the whole set, so
//! any change sends every config object, sorted by kind and name. The first set is only sent
//! once every config kind has been listed (a partial set would be rejected for dangling
//! references), and `Synced` once every watcher has been listed, exactly once.

use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::config::{ConfigObject, Source};
use ferrolb_shared::reconcile::Input;
use ferrolb_shared::selector::Labels;
use ferrolb_shared::service::service_key;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::runtime::watcher::Event;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The six config kinds, by `ConfigObject::kind()`.
pub const CONFIG_KINDS: [&str; 6] = [
    "BFDProfile",
    "BGPAdvertisement",
    "BGPPeer",
    "Community",
    "IPAddressPool",
    "L2Advertisement",
];

/// One watcher event, tagged with the watcher it came from.
#[derive(Debug)]
pub enum Update {
    Service(Event<Service>),
    Namespace(Event<Namespace>),
    /// A config object, of kind `.0`.
    Config(&'static str, Event<ConfigObject>),
}

/// Facts the sink needs but the allocation core does not carry: where each pool lives (to
/// write its status) and each Service's uid (for Events' involvedObject).
#[derive(Debug, Default)]
pub struct ClusterView {
    pub pool_namespaces: BTreeMap<String, String>,
    pub service_uids: BTreeMap<ServiceKey, String>,
}

/// A shared handle on the [`ClusterView`], written by the source and read by the sink.
pub type SharedView = Arc<Mutex<ClusterView>>;

/// What one watcher has delivered: a fingerprint `F` of each object `V` (enough to tell
/// whether it changed), not the object itself, which the allocation core already keeps.
#[derive(Debug)]
struct Store<K, V, F> {
    items: BTreeMap<K, F>,
    /// The listing in progress (between `Init` and `InitDone`).
    relist: Option<BTreeMap<K, V>>,
    listed: bool,
}

impl<K, V, F> Default for Store<K, V, F> {
    fn default() -> Self {
        Store {
            items: BTreeMap::new(),
            relist: None,
            listed: false,
        }
    }
}

/// The changes an event makes: objects new or changed, and keys gone.
struct Diff<K, V> {
    upserts: Vec<V>,
    deletes: Vec<K>,
}

impl<K: Ord + Clone, V, F: PartialEq> Store<K, V, F> {
    /// Apply one event; returns the changes to pass on (none while a listing is buffered).
    fn handle(
        &mut self,
        event: Event<V>,
        key_of: impl Fn(&V) -> K,
        fingerprint: impl Fn(&V) -> F,
    ) -> Diff<K, V> {
        let mut diff = Diff {
            upserts: Vec::new(),
            deletes: Vec::new(),
        };
        match event {
            Event::Init => self.relist = Some(BTreeMap::new()),
            Event::InitApply(obj) => {
                // An InitApply without Init cannot happen; treat it as starting a listing.
                self.relist
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key_of(&obj), obj);
            }
            Event::InitDone => {
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
            Event::Apply(obj) => {
                let key = key_of(&obj);
                let fp = fingerprint(&obj);
                if self.items.get(&key) != Some(&fp) {
                    self.items.insert(key, fp);
                    diff.upserts.push(obj);
                }
            }
            Event::Delete(obj) => {
                let key = key_of(&obj);
                if self.items.remove(&key).is_some() {
                    diff.deletes.push(key);
                }
            }
        }
        diff
    }
}

/// Everything the watchers have delivered. See the module documentation.
pub struct SourceState {
    /// Services by their resourceVersion: the server gives every change a new one.
    services: Store<ServiceKey, Service, Option<String>>,
    /// Namespaces by their labels, all that allocation looks at.
    namespaces: Store<String, (String, Labels), Labels>,
    /// Config objects in full: every change sends the whole set.
    config: BTreeMap<&'static str, Store<(String, String), ConfigObject, ConfigObject>>,
    /// The config set last sent, so an unchanged set is not sent again.
    last_config: Option<Vec<(Source, ConfigObject)>>,
    synced: bool,
    view: SharedView,
}

impl SourceState {
    pub fn new(view: SharedView) -> Self {
        SourceState {
            services: Store::default(),
            namespaces: Store::default(),
            config: CONFIG_KINDS
                .iter()
                .map(|k| (*k, Store::default()))
                .collect(),
            last_config: None,
            synced: false,
            view,
        }
    }

    /// Whether `Synced` has been sent.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// Turn one watcher event into the inputs for the allocation core.
    pub fn handle(&mut self, update: Update) -> Vec<Input> {
        let mut out = Vec::new();
        match update {
            Update::Service(event) => {
                let diff = self
                    .services
                    .handle(event, service_key, |s| s.metadata.resource_version.clone());
                let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
                // Deletions first: the addresses they free are then available to the
                // Services the same listing brought.
                for key in diff.deletes {
                    view.service_uids.remove(&key);
                    out.push(Input::ServiceDelete(key));
                }
                for svc in diff.upserts {
                    let key = service_key(&svc);
                    match &svc.metadata.uid {
                        Some(uid) => view.service_uids.insert(key, uid.clone()),
                        None => view.service_uids.remove(&key),
                    };
                    out.push(Input::ServiceUpsert(Box::new(svc)));
                }
            }
            Update::Namespace(event) => {
                // Only labels matter to allocation: keep (name, labels), so that updates
                // changing anything else compare equal and are not passed on.
                let event = map_event(event, |n| {
                    let name = name_of(&n.metadata);
                    (name, n.metadata.labels.unwrap_or_default())
                });
                let diff =
                    self.namespaces
                        .handle(event, |(name, _)| name.clone(), |(_, l)| l.clone());
                out.extend(diff.deletes.into_iter().map(Input::NamespaceDelete));
                for (name, labels) in diff.upserts {
                    out.push(Input::NamespaceUpsert { name, labels });
                }
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
            && self.services.listed
            && self.namespaces.listed
            && self.config.values().all(|s| s.listed)
        {
            self.synced = true;
            out.push(Input::Synced);
        }
        out
    }

    /// Send the whole config set if every kind has been listed and the set changed.
    fn push_config(&mut self, out: &mut Vec<Input>) {
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
        let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        view.pool_namespaces = objects
            .iter()
            .filter(|(_, o)| matches!(o, ConfigObject::IPAddressPool(_)))
            .map(|(_, o)| {
                let ns = o.metadata().namespace.clone().unwrap_or_default();
                (o.name().to_string(), ns)
            })
            .collect();
        drop(view);
        self.last_config = Some(objects.clone());
        out.push(Input::Config {
            objects,
            errors: vec![],
        });
    }
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

/// The same event, carrying `f(object)` instead of the object.
pub fn map_event<A, B>(event: Event<A>, mut f: impl FnMut(A) -> B) -> Event<B> {
    match event {
        Event::Apply(o) => Event::Apply(f(o)),
        Event::Delete(o) => Event::Delete(f(o)),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(f(o)),
        Event::InitDone => Event::InitDone,
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
