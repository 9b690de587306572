//! The Kubernetes sink: turns the allocation core's actions into API writes (Service status
//! and annotation, Events, IPAddressPool status) and hands them to the write queue.
//!
//! `apply` only enqueues, so a slow or absent API server never stalls the event loop; the
//! queue retries failed writes in the background. Dropping the sink stops the queue and
//! every write in flight, which is how a deposed leader stops writing at once.

use super::AbortOnDrop;
use super::events::rejected_message;
use super::queue::{Lane, Writer};
use super::state::SharedView;
use super::writes::{Job, Writes};
use crate::sink::Sink;
use ferrolb_shared::alloc::PoolStats;
use ferrolb_shared::config::{ConfigurationStateStatus, IPAddressPoolStatus};
use ferrolb_shared::reconcile::{Action, EventType};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Writes the controller's actions to the API server.
pub struct KubeSink {
    writes: Arc<Writes>,
    tx: mpsc::UnboundedSender<(Lane, Job)>,
    view: SharedView,
    /// Pool status last enqueued, so unchanged counters are not written again.
    last_pools: BTreeMap<String, IPAddressPoolStatus>,
    _writer: AbortOnDrop<()>,
}

impl KubeSink {
    /// A sink whose queue writes up to `concurrency` objects at once.
    pub fn new(writes: Writes, view: SharedView, concurrency: usize) -> Self {
        let writes = Arc::new(writes);
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(Writer::new(writes.clone(), concurrency).run(rx));
        KubeSink {
            writes,
            tx,
            view,
            last_pools: BTreeMap::new(),
            _writer: AbortOnDrop(writer),
        }
    }

    fn send(&self, lane: Lane, job: Job) {
        // The writer only stops when this sink is dropped.
        let _ = self.tx.send((lane, job));
    }

    fn event(
        &self,
        key: Option<&ferrolb_shared::alloc::ServiceKey>,
        kind: EventType,
        reason: &str,
        message: &str,
    ) {
        let lane = key.map_or(Lane::Controller, |k| Lane::Service(k.clone()));
        self.send(lane, self.writes.event_job(key, kind, reason, message));
    }
}

impl Sink for KubeSink {
    async fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::SetStatus { key, ips, pool } => self.send(
                    Lane::Service(key.clone()),
                    Job::SetStatus { key, ips, pool },
                ),
                Action::ClearStatus { key } => {
                    self.send(Lane::Service(key.clone()), Job::ClearStatus { key })
                }
                Action::Event {
                    key,
                    kind,
                    reason,
                    message,
                } => self.event(key.as_ref(), kind, reason, &message),
                Action::ConfigAccepted { summary } => {
                    self.event(None, EventType::Normal, "ConfigLoaded", &summary);
                    let state = ConfigurationStateStatus::valid("controller", "", summary);
                    self.send(Lane::ConfigState, Job::ConfigState(state));
                }
                Action::ConfigRejected { errors } => {
                    // The event loop has logged every error; the Event tells `kubectl` users,
                    // and the ConfigurationState keeps the whole list until the next verdict.
                    let message = rejected_message(&errors);
                    self.event(None, EventType::Warning, "ConfigRejected", &message);
                    let state = ConfigurationStateStatus::invalid("controller", "", &errors);
                    self.send(Lane::ConfigState, Job::ConfigState(state));
                }
            }
        }
    }

    async fn pools(&mut self, stats: &[PoolStats]) {
        let clamp = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        let namespaces = self
            .view
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pool_namespaces
            .clone();
        self.last_pools
            .retain(|name, _| stats.iter().any(|s| &s.name == name));
        for s in stats {
            let status = IPAddressPoolStatus {
                assigned_ipv4: clamp(s.in_use_v4),
                assigned_ipv6: clamp(s.in_use_v6),
                available_ipv4: clamp(s.capacity_v4.saturating_sub(s.in_use_v4)),
                available_ipv6: clamp(s.capacity_v6.saturating_sub(s.in_use_v6)),
            };
            if self.last_pools.get(&s.name) == Some(&status) {
                continue;
            }
            let Some(namespace) = namespaces.get(&s.name) else {
                continue; // not from the API server (cannot happen); nowhere to write
            };
            self.last_pools.insert(s.name.clone(), status.clone());
            let job = Job::PoolStatus {
                name: s.name.clone(),
                namespace: namespace.clone(),
                status,
            };
            self.send(Lane::Pool(s.name.clone()), job);
        }
    }
}
