//! The virtual server table kept up to date Service by Service, so that a change to one
//! Service costs the work of that Service, not of the whole cluster.
//!
//! A snapshot names the Services that changed since the one before; following every
//! generation, only those are looked at. Otherwise every Service is, and since snapshots share
//! unchanged objects (`Arc`), "did this Service's inputs change?" is a pointer comparison of
//! the Service and of its EndpointSlices. Only the Services whose inputs
//! changed are rebuilt (with the same [`add_service`] as [`build_table`], so the result is
//! always what a whole build would give: the property tests check exactly that), and the
//! [`Delta`] names the virtual servers that changed, so the data paths touch only those.
//!
//! Two Services can claim the same virtual server (the same external IP and port, say). A
//! whole build lets the last Service in key order win; here every claim is remembered, the
//! greatest claimant's server is in the table, and when it lets go the next one is rebuilt
//! into its place.

use super::build::{NodeView, Options, Warning, add_service};
use super::model::{Table, VsKey};
use crate::alloc::ServiceKey;
use crate::endpoints::Slice;
use crate::service::Service;
use crate::snapshot::Snapshot;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What one [`TableBuilder::update`] changed.
#[derive(Debug, Default)]
pub struct Delta {
    /// Virtual servers added, changed or removed.
    pub servers: BTreeSet<VsKey>,
    /// The health checks changed.
    pub health_checks: bool,
    /// Everything was rebuilt (the first snapshot, or this node's addresses changed).
    pub full: bool,
    /// Warnings of the Services rebuilt by this update.
    pub warnings: Vec<Warning>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && !self.health_checks
    }
}

/// The inputs one Service was last built from, and what it put in the table.
struct Entry {
    service: Arc<Service>,
    slices: Vec<Arc<Slice>>,
    servers: Vec<VsKey>,
    health_check: Option<u16>,
}

/// The table of one node, updated from successive snapshots.
pub struct TableBuilder {
    options: Options,
    node: Option<NodeView>,
    table: Table,
    entries: HashMap<ServiceKey, Entry>,
    /// Every Service that builds each virtual server and health-check port.
    claims: Claims<VsKey>,
    health_claims: Claims<u16>,
    /// The generation of the last snapshot seen.
    generation: Option<u64>,
}

impl TableBuilder {
    pub fn new(options: Options) -> Self {
        TableBuilder {
            options,
            node: None,
            table: Table::default(),
            entries: HashMap::new(),
            claims: Claims::default(),
            health_claims: Claims::default(),
            generation: None,
        }
    }

    /// The table as of the last update.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Bring the table in line with `snapshot`, rebuilding only the Services whose Service
    /// object or EndpointSlices changed (all of them when this node's addresses changed).
    pub fn update(&mut self, snapshot: &Snapshot) -> Delta {
        let mut delta = Delta::default();
        let node = snapshot.node_view();
        if self.node.as_ref() != Some(&node) {
            delta.full = true;
            delta.servers.extend(self.table.servers.keys().copied());
            delta.health_checks = true;
            self.table = Table::default();
            self.entries.clear();
            self.claims = Claims::default();
            self.health_claims = Claims::default();
            self.node = Some(node);
        }
        // Following every generation, the snapshot says which Services changed; otherwise
        // (the first one, a skipped generation, a new node view) every Service is compared.
        let follows = !delta.full
            && self
                .generation
                .is_some_and(|g| g + 1 == snapshot.generation);
        self.generation = Some(snapshot.generation);
        let candidates: Vec<ServiceKey> = if follows {
            snapshot.changes.services.iter().cloned().collect()
        } else {
            self.entries
                .keys()
                .chain(snapshot.services.keys())
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        let mut again = BTreeSet::new();
        for key in candidates {
            let Some(service) = snapshot.services.get(&key) else {
                self.release(&key, &mut delta, &mut again);
                self.entries.remove(&key);
                continue;
            };
            let slices = || snapshot.shared_endpoint_slices_of(&key);
            let unchanged = self.entries.get(&key).is_some_and(|e| {
                Arc::ptr_eq(&e.service, service) && same_handles(&e.slices, slices())
            });
            if !unchanged {
                let slices = slices().cloned().collect();
                self.rebuild(&key, service.clone(), slices, &mut delta, &mut again);
            }
        }
        // Services whose claim surfaced because a greater claimant let go.
        while let Some(key) = again.pop_first() {
            if let Some(e) = self.entries.get(&key) {
                let (service, slices) = (e.service.clone(), e.slices.clone());
                self.rebuild(&key, service, slices, &mut delta, &mut again);
            }
        }
        delta
    }

    fn rebuild(
        &mut self,
        key: &ServiceKey,
        service: Arc<Service>,
        slices: Vec<Arc<Slice>>,
        delta: &mut Delta,
        again: &mut BTreeSet<ServiceKey>,
    ) {
        self.release(key, delta, again);
        let node = self.node.as_ref().expect("set before any rebuild");
        let mut built = Table::default();
        let refs: Vec<&Slice> = slices.iter().map(|s| &**s).collect();
        add_service(
            &service,
            key,
            &refs,
            node,
            &self.options,
            &mut built,
            &mut delta.warnings,
        );
        let servers = built.servers.keys().copied().collect();
        let health_check = built.health_checks.keys().next().copied();
        for (k, vs) in built.servers {
            if self.claims.claim(k, key) {
                if self.table.servers.get(&k) != Some(&vs) {
                    delta.servers.insert(k);
                }
                self.table.servers.insert(k, vs);
            }
        }
        for (port, hc) in built.health_checks {
            if self.health_claims.claim(port, key) {
                delta.health_checks |= self.table.health_checks.get(&port) != Some(&hc);
                self.table.health_checks.insert(port, hc);
            }
        }
        self.entries.insert(
            key.clone(),
            Entry {
                service,
                slices,
                servers,
                health_check,
            },
        );
    }

    /// Take `key`'s virtual servers and health check out of the table; where another Service
    /// claims the same one, queue that Service to be rebuilt into its place.
    fn release(&mut self, key: &ServiceKey, delta: &mut Delta, again: &mut BTreeSet<ServiceKey>) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        for k in std::mem::take(&mut entry.servers) {
            let next = self.claims.release(k, key);
            if self
                .table
                .servers
                .get(&k)
                .is_some_and(|v| &v.service == key)
            {
                self.table.servers.remove(&k);
                delta.servers.insert(k);
                again.extend(next);
            }
        }
        if let Some(port) = entry.health_check.take() {
            let next = self.health_claims.release(port, key);
            if self
                .table
                .health_checks
                .get(&port)
                .is_some_and(|h| &h.service == key)
            {
                self.table.health_checks.remove(&port);
                delta.health_checks = true;
                again.extend(next);
            }
        }
    }
}

/// Which Services build each item (a virtual server, a health-check port); the greatest one's
/// version is the one in the table, as in a whole build where the last Service wins.
struct Claims<K>(HashMap<K, BTreeSet<ServiceKey>>);

impl<K> Default for Claims<K> {
    fn default() -> Self {
        Claims(HashMap::new())
    }
}

impl<K: std::hash::Hash + Eq> Claims<K> {
    /// `service` builds `item`; whether its version is the one to keep.
    fn claim(&mut self, item: K, service: &ServiceKey) -> bool {
        let claimants = self.0.entry(item).or_default();
        claimants.insert(service.clone());
        claimants.last() == Some(service)
    }

    /// `service` no longer builds `item`; the claimant whose version comes next, if any.
    fn release(&mut self, item: K, service: &ServiceKey) -> Option<ServiceKey> {
        let claimants = self.0.get_mut(&item)?;
        claimants.remove(service);
        let next = claimants.last().cloned();
        if claimants.is_empty() {
            self.0.remove(&item);
        }
        next
    }
}

fn same_handles<'a>(old: &[Arc<Slice>], new: impl Iterator<Item = &'a Arc<Slice>>) -> bool {
    let mut n = 0;
    for (i, s) in new.enumerate() {
        if old.get(i).is_none_or(|o| !Arc::ptr_eq(o, s)) {
            return false;
        }
        n = i + 1;
    }
    n == old.len()
}

#[cfg(test)]
mod tests;
