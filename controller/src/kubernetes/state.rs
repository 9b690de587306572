//! Facts the Kubernetes sink needs but the allocation core does not carry, kept up to date
//! from the source's events on their way to the core by [`KubeInputs`]: where each pool lives
//! (to write its status) and each Service's uid (for Events' involvedObject).
//!
//! What the watchers deliver and how relists are diffed is the shared source's business
//! (`ferrolb_shared::cluster::watch`); this is only the controller's adapter.

use crate::inputs;
use ferrolb_cluster::{Closed, ClusterEvent, EventSink, Kind};
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::config::ConfigObject;
use ferrolb_shared::manifest::ClusterObject;
use ferrolb_shared::reconcile::Input;
use ferrolb_shared::service::service_key;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ClusterView {
    pub pool_namespaces: BTreeMap<String, String>,
    pub service_uids: BTreeMap<ServiceKey, String>,
}

/// A shared handle on the [`ClusterView`], written by the source and read by the sink.
pub type SharedView = Arc<Mutex<ClusterView>>;

/// Updates the [`ClusterView`] from each event, then passes its input to the event loop.
pub struct KubeInputs {
    tx: mpsc::Sender<Input>,
    view: SharedView,
}

impl KubeInputs {
    pub fn new(tx: mpsc::Sender<Input>, view: SharedView) -> Self {
        KubeInputs { tx, view }
    }

    /// Record what `event` tells the sink. Done before the core sees the event, so the sink
    /// knows a Service's uid by the time it writes an Event about it.
    fn observe(&self, event: &ClusterEvent) {
        let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            ClusterEvent::Upsert(ClusterObject::Service(svc)) => {
                let key = service_key(svc);
                match &svc.uid {
                    Some(uid) => view.service_uids.insert(key, uid.to_string()),
                    None => view.service_uids.remove(&key),
                };
            }
            ClusterEvent::Delete(Kind::Service, key) => {
                view.service_uids.remove(&ServiceKey::from(key.clone()));
            }
            ClusterEvent::Config { objects, .. } => {
                view.pool_namespaces = objects
                    .iter()
                    .filter(|(_, o)| matches!(o, ConfigObject::IPAddressPool(_)))
                    .map(|(_, o)| {
                        let ns = o.metadata().namespace.clone().unwrap_or_default();
                        (o.name().to_string(), ns)
                    })
                    .collect();
            }
            _ => {}
        }
    }
}

impl EventSink for KubeInputs {
    async fn deliver(&mut self, events: Vec<ClusterEvent>) -> Result<(), Closed> {
        for event in events {
            self.observe(&event);
            inputs::forward(&self.tx, event).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
