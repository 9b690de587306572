//! The view the sink reads is kept in step with what reaches the core. (How watcher events
//! become cluster events is tested with the pure state in `ferrolb_shared::cluster::watch`.)

use super::*;
use ferrolb_cluster::ObjectKey;
use ferrolb_shared::config::{IPAddressPool, IPAddressPoolSpec, Source};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn svc(ns: &str, name: &str) -> ClusterEvent {
    ClusterEvent::Upsert(ClusterObject::service(Service {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        ..Default::default()
    }))
}

fn pool(name: &str) -> (Source, ConfigObject) {
    let mut p = IPAddressPool::new(
        name,
        IPAddressPoolSpec {
            addresses: vec!["10.0.0.0/24".into()],
            ..Default::default()
        },
    );
    p.metadata.namespace = Some("ferrolb-system".into());
    (Source::api(), ConfigObject::IPAddressPool(p))
}

fn adapter() -> (KubeInputs, SharedView, mpsc::Receiver<Input>) {
    let view = SharedView::default();
    let (tx, rx) = mpsc::channel(16);
    (KubeInputs::new(tx, view.clone()), view, rx)
}

#[tokio::test]
async fn service_uids_follow_upserts_and_deletes() {
    let (mut a, view, mut rx) = adapter();
    a.deliver(vec![svc("a", "one"), svc("a", "two")])
        .await
        .unwrap();
    assert_eq!(
        view.lock()
            .unwrap()
            .service_uids
            .get(&ServiceKey::new("a", "one"))
            .map(String::as_str),
        Some("uid-one")
    );
    a.deliver(vec![ClusterEvent::Delete(
        Kind::Service,
        ObjectKey::new("a", "one"),
    )])
    .await
    .unwrap();
    {
        let view = view.lock().unwrap();
        assert!(!view.service_uids.contains_key(&ServiceKey::new("a", "one")));
        assert!(view.service_uids.contains_key(&ServiceKey::new("a", "two")));
    }
    let mut got = Vec::new();
    rx.recv_many(&mut got, 16).await;
    assert!(matches!(
        got.as_slice(),
        [
            Input::ServiceUpsert(_),
            Input::ServiceUpsert(_),
            Input::ServiceDelete(_)
        ]
    ));
}

#[tokio::test]
async fn pool_namespaces_follow_the_config_set() {
    let (mut a, view, _rx) = adapter();
    let config = |objects| ClusterEvent::Config {
        objects,
        errors: vec![],
    };
    a.deliver(vec![config(vec![pool("a"), pool("b")])])
        .await
        .unwrap();
    assert_eq!(
        view.lock()
            .unwrap()
            .pool_namespaces
            .get("a")
            .map(String::as_str),
        Some("ferrolb-system")
    );
    a.deliver(vec![config(vec![pool("b")])]).await.unwrap();
    assert!(!view.lock().unwrap().pool_namespaces.contains_key("a"));
}

#[tokio::test]
async fn a_closed_event_loop_stops_the_source() {
    let (mut a, _, rx) = adapter();
    drop(rx);
    assert!(a.deliver(vec![svc("a", "x")]).await.is_err());
}
