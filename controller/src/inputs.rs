//! The controller's side of the shared cluster sources: what it subscribes to, and how a
//! [`ClusterEvent`] becomes an [`Input`] of the allocation core. Both modes use this mapping;
//! each adds only what its sink needs (see `standalone::StandaloneInputs` and
//! `kubernetes::state::KubeInputs`).

use ferrolb_cluster::{Closed, ClusterEvent, Kind, Subscription};
use ferrolb_shared::manifest::ClusterObject;
use ferrolb_shared::reconcile::Input;
use tokio::sync::mpsc;

/// Allocation looks at Services and at Namespaces' labels (pool namespace selectors).
pub fn subscription() -> Subscription {
    Subscription::new([Kind::Service, Kind::Namespace])
}

/// The allocation core's input for `event`, if it has one.
pub fn to_input(event: ClusterEvent) -> Option<Input> {
    Some(match event {
        ClusterEvent::Upsert(ClusterObject::Service(svc)) => Input::ServiceUpsert(svc),
        ClusterEvent::Upsert(ClusterObject::Namespace(ns)) => {
            let meta = std::sync::Arc::unwrap_or_clone(ns).metadata;
            Input::NamespaceUpsert {
                name: meta.name.unwrap_or_default(),
                labels: meta.labels.unwrap_or_default(),
            }
        }
        ClusterEvent::Upsert(_) => return None,
        ClusterEvent::Delete(Kind::Service, key) => Input::ServiceDelete(key.into()),
        ClusterEvent::Delete(Kind::Namespace, key) => Input::NamespaceDelete(key.name),
        ClusterEvent::Delete(..) => return None,
        ClusterEvent::Config { objects, errors } => Input::Config { objects, errors },
        ClusterEvent::Synced => Input::Synced,
    })
}

/// Send `event`'s input, if it has one, to the event loop.
pub async fn forward(tx: &mpsc::Sender<Input>, event: ClusterEvent) -> Result<(), Closed> {
    match to_input(event) {
        Some(input) => tx.send(input).await.map_err(|_| Closed),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_cluster::ObjectKey;
    use ferrolb_shared::alloc::ServiceKey;
    use k8s_openapi::api::core::v1::{Namespace, Node};

    #[test]
    fn namespaces_carry_their_labels_and_other_kinds_are_dropped() {
        let mut ns = Namespace::default();
        ns.metadata.name = Some("team".into());
        ns.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        let Some(Input::NamespaceUpsert { name, labels }) = to_input(ClusterEvent::Upsert(
            ClusterObject::Namespace(std::sync::Arc::new(ns)),
        )) else {
            panic!("a namespace upsert");
        };
        assert_eq!(name, "team");
        assert_eq!(labels.get("a").map(String::as_str), Some("b"));
        let node = ClusterObject::Node(std::sync::Arc::<Node>::default());
        assert!(to_input(ClusterEvent::Upsert(node)).is_none());
        assert!(to_input(ClusterEvent::Delete(Kind::Node, ObjectKey::new("", "n"))).is_none());
        let Some(Input::ServiceDelete(key)) = to_input(ClusterEvent::Delete(
            Kind::Service,
            ObjectKey::new("default", "web"),
        )) else {
            panic!("a service delete");
        };
        assert_eq!(key, ServiceKey::new("default", "web"));
    }
}
