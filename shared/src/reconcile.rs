//! The controller's allocation core, as a state machine: inputs are what the cluster source
//! observed (config objects, Services, Namespaces, "initial listing done"), outputs are the
//! status writes and Events the driver must carry out. No I/O, no clock, so the Kubernetes
//! source and the standalone directory drive exactly the same logic.
//!
//! Restart stability: until the source says its first full listing is in, nothing is
//! allocated. Then Services that already carry addresses in their status are assigned first,
//! so that no new Service can take an address an existing one held before the restart.
//!
//! Waiting Services: a Service of ours that could not be given an address waits in a queue,
//! oldest failure first. Whenever a Service leaves an address (deleted, no longer a
//! LoadBalancer of our class, moved to another address, its status no longer valid, a pool
//! edit), the waiting Services are retried in that order, and the first that fits gets it
//! (as MetalLB re-processes every Service after a release). Nothing is scanned when nobody
//! waits: the allocator counts releases and the queue is checked only when the count moved.

use crate::alloc::{AllocError, Allocator, Assignment, PoolStats, ServiceKey};
use crate::config::{Config, ConfigError, ConfigObject, ConfigState, Outcome, Source};
use crate::selector::Labels;
use crate::service;
use crate::service::Service;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

/// What the cluster source observed.
#[derive(Clone, Debug)]
pub enum Input {
    /// The complete current set of config objects (after any change to one of them), and the
    /// problems with config documents that could not even be read: any such problem rejects
    /// the whole configuration.
    Config {
        objects: Vec<(Source, ConfigObject)>,
        errors: Vec<ConfigError>,
    },
    ServiceUpsert(std::sync::Arc<Service>),
    ServiceDelete(ServiceKey),
    NamespaceUpsert {
        name: String,
        labels: Labels,
    },
    NamespaceDelete(String),
    /// The first full listing of every kind has been delivered.
    Synced,
}

/// Event severity, as Kubernetes Events have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write `status.loadBalancer.ingress` (ipMode VIP) and the pool annotation.
    SetStatus {
        key: ServiceKey,
        ips: Vec<IpAddr>,
        pool: String,
    },
    /// Remove the addresses and the pool annotation this controller wrote.
    ClearStatus { key: ServiceKey },
    /// An Event on a Service (`Some`) or on the controller itself (`None`).
    Event {
        key: Option<ServiceKey>,
        kind: EventType,
        reason: &'static str,
        message: String,
    },
    /// A new configuration was accepted and is now in force.
    ConfigAccepted { summary: String },
    /// A new configuration was rejected; the previous one (if any) stays in force.
    ConfigRejected { errors: Vec<ConfigError> },
}

/// The allocation core. See the module documentation.
#[derive(Default)]
pub struct Reconciler {
    lb_class: Option<String>,
    /// The configuration in force, and whether the newest one was rejected.
    config: ConfigState,
    synced: bool,
    allocator: Allocator,
    /// Shared with the source that reported them: held once, not copied.
    services: BTreeMap<ServiceKey, std::sync::Arc<Service>>,
    /// Shared with the requests of the namespace's Services (the allocator keeps them).
    namespaces: BTreeMap<String, Arc<Labels>>,
    /// The last failure reported per Service, so a repeat is not reported again.
    failures: BTreeMap<ServiceKey, String>,
    /// Services of ours waiting for an address: when each started waiting, and the same as an
    /// ordered queue (oldest first).
    waiting: BTreeMap<ServiceKey, u64>,
    queue: BTreeSet<(u64, ServiceKey)>,
    /// Stamps the next Service that starts waiting.
    next_wait: u64,
    /// The allocator's release count when the waiting Services were last retried.
    releases_seen: u64,
}

impl Reconciler {
    /// A reconciler for Services of `lb_class` (`None`: Services without a class).
    pub fn new(lb_class: Option<String>) -> Self {
        Reconciler {
            lb_class,
            ..Default::default()
        }
    }

    /// Feed one observation; returns what to do about it.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Config { objects, errors } => match self.config.offer(objects, errors) {
                Outcome::Unchanged => {}
                Outcome::Accepted => {
                    let Some(config) = self.config.config().cloned() else {
                        return out; // accepted always leaves a configuration in force
                    };
                    out.push(Action::ConfigAccepted {
                        summary: summarize(&config),
                    });
                    let dropped = self.allocator.set_pools(config.pool_defs());
                    for key in dropped {
                        out.push(Action::Event {
                            key: Some(key.clone()),
                            kind: EventType::Normal,
                            reason: "ClearAssignment",
                            message: "address left its pool in the new configuration; reallocating"
                                .into(),
                        });
                    }
                    self.reconcile_all(&mut out);
                }
                Outcome::Rejected(errors) => out.push(Action::ConfigRejected { errors }),
            },
            Input::ServiceUpsert(svc) => {
                let key = service::service_key(&svc);
                let first_sight = !self.services.contains_key(&key);
                let deprecated = service::deprecated_annotations(&svc);
                if first_sight
                    && !deprecated.is_empty()
                    && service::is_ours(&svc, self.lb_class.as_deref())
                {
                    out.push(event(&key, EventType::Warning, "DeprecatedAnnotation", format!(
                        "annotations {} use the deprecated prefix metallb.universe.tf/; use ferrolb.io/ instead",
                        deprecated.join(", ")
                    )));
                }
                self.services.insert(key.clone(), svc);
                if self.synced {
                    self.reconcile_service(&key, &mut out);
                }
            }
            Input::ServiceDelete(key) => {
                self.services.remove(&key);
                self.failures.remove(&key);
                self.stop_waiting(&key);
                self.allocator.release(&key);
            }
            Input::NamespaceUpsert { name, labels } => {
                if self.namespaces.get(&name).map(|l| &**l) != Some(&labels) {
                    self.namespaces.insert(name.clone(), Arc::new(labels));
                    self.reconcile_namespace(&name, &mut out);
                }
            }
            Input::NamespaceDelete(name) => {
                self.namespaces.remove(&name);
            }
            Input::Synced => {
                if !self.synced {
                    self.synced = true;
                    self.reconcile_all(&mut out);
                }
            }
        }
        self.retry_waiting(&mut out);
        out
    }

    /// The Services waiting for an address, oldest first.
    pub fn waiting(&self) -> impl Iterator<Item = &ServiceKey> + '_ {
        self.queue.iter().map(|(_, key)| key)
    }

    /// Whether the last configuration seen was rejected (the metric `ferrolb_config_stale`).
    pub fn config_stale(&self) -> bool {
        self.config.stale()
    }

    /// The configuration in force, if one was ever accepted.
    pub fn config(&self) -> Option<&Config> {
        self.config.config().map(|c| &**c)
    }

    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.allocator.pool_stats()
    }

    pub fn assignment(&self, key: &ServiceKey) -> Option<&Assignment> {
        self.allocator.assignment(key)
    }

    /// Number of Services that hold addresses.
    pub fn allocated_services(&self) -> usize {
        self.services
            .keys()
            .filter(|k| self.allocator.assignment(k).is_some())
            .count()
    }

    fn reconcile_all(&mut self, out: &mut Vec<Action>) {
        if !self.synced {
            return;
        }
        // Services with addresses in their status go first: a restart must not reshuffle.
        // Then those already waiting, oldest first, so a freed address goes to the longest
        // waiter; then the rest.
        let (with_status, without): (Vec<_>, Vec<_>) = self
            .services
            .iter()
            .partition(|(_, s)| !service::status_ips(s).is_empty());
        let keys: Vec<ServiceKey> = with_status
            .into_iter()
            .map(|(k, _)| k)
            .chain(self.queue.iter().map(|(_, k)| k))
            .chain(
                without
                    .into_iter()
                    .map(|(k, _)| k)
                    .filter(|k| !self.waiting.contains_key(*k)),
            )
            .cloned()
            .collect();
        for key in &keys {
            self.reconcile_service(key, out);
        }
    }

    fn reconcile_namespace(&mut self, namespace: &str, out: &mut Vec<Action>) {
        if !self.synced {
            return;
        }
        let keys: Vec<ServiceKey> = self
            .services
            .keys()
            .filter(|k| k.namespace == namespace)
            .cloned()
            .collect();
        for key in keys {
            self.reconcile_service(&key, out);
        }
    }

    fn reconcile_service(&mut self, key: &ServiceKey, out: &mut Vec<Action>) {
        let Some(svc) = self.services.get(key) else {
            return;
        };
        let observed_ips = service::status_ips(svc).to_vec();
        let observed_pool = service::status_pool(svc).map(str::to_string);
        if !service::is_ours(svc, self.lb_class.as_deref()) {
            self.allocator.release(key);
            self.failures.remove(key);
            self.stop_waiting(key);
            if observed_pool.is_some() {
                out.push(Action::ClearStatus { key: key.clone() });
                self.record_status(key, &[], None);
                out.push(event(
                    key,
                    EventType::Normal,
                    "ClearAssignment",
                    "no longer a LoadBalancer of this class".into(),
                ));
            }
            return;
        }
        if self.config.config().is_none() {
            return; // Nothing to allocate from yet; the config's arrival reconciles everything.
        }
        let ns_labels = self
            .namespaces
            .get(&key.namespace)
            .cloned()
            .unwrap_or_default();
        let result = service::request(svc, &ns_labels)
            .map_err(|e| e.to_string())
            .and_then(|req| {
                self.allocator
                    .assign(&req)
                    .map_err(|e: AllocError| e.to_string())
            });
        match result {
            Ok(a) => {
                self.failures.remove(key);
                self.stop_waiting(key);
                if observed_ips != a.ips || observed_pool.as_deref() != Some(&*a.pool) {
                    let ips: Vec<String> = a.ips.iter().map(IpAddr::to_string).collect();
                    if observed_ips != a.ips {
                        out.push(event(
                            key,
                            EventType::Normal,
                            "IPAllocated",
                            format!("assigned IP {} from pool {}", ips.join(", "), a.pool),
                        ));
                    }
                    out.push(Action::SetStatus {
                        key: key.clone(),
                        ips: a.ips.clone(),
                        pool: a.pool.to_string(),
                    });
                    self.record_status(key, &a.ips, Some(&a.pool));
                }
            }
            Err(reason) => {
                self.allocator.release(key);
                self.start_waiting(key);
                if !observed_ips.is_empty() || observed_pool.is_some() {
                    out.push(Action::ClearStatus { key: key.clone() });
                    self.record_status(key, &[], None);
                    out.push(event(
                        key,
                        EventType::Normal,
                        "ClearAssignment",
                        format!("current addresses are no longer valid: {reason}"),
                    ));
                }
                if self.failures.get(key) != Some(&reason) {
                    out.push(event(
                        key,
                        EventType::Warning,
                        "AllocationFailed",
                        format!("failed to allocate: {reason}"),
                    ));
                    self.failures.insert(key.clone(), reason);
                }
            }
        }
    }
}

impl Reconciler {
    /// Retries the waiting Services, oldest first, if any address was left since the last
    /// time. A retry that succeeds leaves nothing (a waiting Service holds nothing), so one
    /// pass over the queue sees every release.
    fn retry_waiting(&mut self, out: &mut Vec<Action>) {
        let releases = self.allocator.releases();
        if releases == self.releases_seen {
            return;
        }
        self.releases_seen = releases;
        if !self.synced || self.queue.is_empty() {
            return;
        }
        let queue: Vec<ServiceKey> = self.queue.iter().map(|(_, k)| k.clone()).collect();
        for key in &queue {
            self.reconcile_service(key, out);
        }
        self.releases_seen = self.allocator.releases();
    }

    /// Puts `key` in the queue unless it already waits (it keeps its place).
    fn start_waiting(&mut self, key: &ServiceKey) {
        if self.waiting.contains_key(key) {
            return;
        }
        let stamp = self.next_wait;
        self.next_wait += 1;
        self.waiting.insert(key.clone(), stamp);
        self.queue.insert((stamp, key.clone()));
    }

    fn stop_waiting(&mut self, key: &ServiceKey) {
        if let Some(stamp) = self.waiting.remove(key) {
            self.queue.remove(&(stamp, key.clone()));
        }
    }

    /// Remember what was written, so the cached Service matches the status the driver is
    /// about to write, whether or not the source ever echoes it back.
    fn record_status(&mut self, key: &ServiceKey, ips: &[IpAddr], pool: Option<&str>) {
        if let Some(svc) = self.services.get_mut(key) {
            service::apply_status(std::sync::Arc::make_mut(svc), ips, pool);
        }
    }
}

fn event(key: &ServiceKey, kind: EventType, reason: &'static str, message: String) -> Action {
    Action::Event {
        key: Some(key.clone()),
        kind,
        reason,
        message,
    }
}

/// A one-line description of an accepted configuration.
pub fn summarize(config: &Config) -> String {
    format!(
        "{} pools, {} L2 advertisements, {} BGP advertisements, {} BGP peers, {} BFD profiles, {} community aliases",
        config.pools.len(),
        config.l2_advertisements.len(),
        config.bgp_advertisements.len(),
        config.peers.len(),
        config.bfd_profiles.len(),
        config.communities.len()
    )
}

#[cfg(test)]
mod tests;
