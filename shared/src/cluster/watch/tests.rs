use super::*;
use crate::config::{IPAddressPool, IPAddressPoolSpec, L2Advertisement};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn svc(ns: &str, name: &str, rv: &str) -> ClusterObject {
    ClusterObject::service(Service {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some(rv.into()),
            ..Default::default()
        },
        ..Default::default()
    })
}

fn node(name: &str, rv: &str) -> ClusterObject {
    ClusterObject::Node(std::sync::Arc::new(Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            resource_version: Some(rv.into()),
            ..Default::default()
        },
        ..Default::default()
    }))
}

fn pool(name: &str, cidr: &str) -> ConfigObject {
    let mut p = IPAddressPool::new(
        name,
        IPAddressPoolSpec {
            addresses: vec![cidr.into()],
            ..Default::default()
        },
    );
    p.metadata.namespace = Some("ferrolb-system".into());
    ConfigObject::IPAddressPool(p)
}

fn l2(name: &str) -> ConfigObject {
    ConfigObject::L2Advertisement(L2Advertisement::new(name, Default::default()))
}

fn services_only() -> WatchState {
    WatchState::new(&Subscription::new([Kind::Service]))
}

fn service(e: WatchEvent<ClusterObject>) -> Update {
    Update::Cluster(Kind::Service, e)
}

/// Deliver an empty listing for every config kind.
fn list_config(s: &mut WatchState) -> Vec<ClusterEvent> {
    let mut out = Vec::new();
    for kind in CONFIG_KINDS {
        out.extend(s.handle(Update::Config(kind, WatchEvent::Init)));
        out.extend(s.handle(Update::Config(kind, WatchEvent::InitDone)));
    }
    out
}

fn names(events: &[ClusterEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            ClusterEvent::Upsert(o) => format!("upsert {}", o.key().name),
            ClusterEvent::Delete(kind, k) => format!("delete {kind} {}", k.name),
            ClusterEvent::Config { objects, .. } => format!("config {}", objects.len()),
            ClusterEvent::Synced => "synced".into(),
        })
        .collect()
}

#[test]
fn synced_once_after_every_watcher_listed() {
    let mut s = services_only();
    assert_eq!(names(&list_config(&mut s)), ["config 0"]);
    assert!(!s.synced());
    s.handle(service(WatchEvent::Init));
    s.handle(service(WatchEvent::InitApply(svc("a", "one", "1"))));
    let out = s.handle(service(WatchEvent::InitDone));
    assert_eq!(names(&out), ["upsert one", "synced"]);
    // A relist later never sends Synced again.
    s.handle(service(WatchEvent::Init));
    s.handle(service(WatchEvent::InitApply(svc("a", "one", "1"))));
    assert!(names(&s.handle(service(WatchEvent::InitDone))).is_empty());
}

#[test]
fn synced_waits_for_every_subscribed_kind() {
    let mut s = WatchState::new(&Subscription::new([Kind::Service, Kind::Node]));
    list_config(&mut s);
    s.handle(service(WatchEvent::Init));
    assert!(!names(&s.handle(service(WatchEvent::InitDone))).contains(&"synced".into()));
    s.handle(Update::Cluster(Kind::Node, WatchEvent::Init));
    s.handle(Update::Cluster(
        Kind::Node,
        WatchEvent::InitApply(node("n1", "3")),
    ));
    let out = s.handle(Update::Cluster(Kind::Node, WatchEvent::InitDone));
    assert_eq!(names(&out), ["upsert n1", "synced"]);
}

#[test]
fn events_of_unsubscribed_kinds_are_dropped() {
    let mut s = services_only();
    let out = s.handle(Update::Cluster(
        Kind::Node,
        WatchEvent::Apply(node("n", "1")),
    ));
    assert!(out.is_empty());
}

#[test]
fn nothing_is_passed_on_while_a_listing_is_buffered() {
    let mut s = services_only();
    list_config(&mut s);
    assert!(s.handle(service(WatchEvent::Init)).is_empty());
    assert!(
        s.handle(service(WatchEvent::InitApply(svc("a", "x", "1"))))
            .is_empty()
    );
}

#[test]
fn relist_diffs_against_what_was_known() {
    let mut s = services_only();
    list_config(&mut s);
    s.handle(service(WatchEvent::Init));
    for name in ["keep", "change", "gone"] {
        s.handle(service(WatchEvent::InitApply(svc("a", name, "1"))));
    }
    s.handle(service(WatchEvent::InitDone));
    // 410 Gone: the watcher starts over. Meanwhile "gone" was deleted, "new" created and
    // "change" modified.
    s.handle(service(WatchEvent::Init));
    s.handle(service(WatchEvent::InitApply(svc("a", "keep", "1"))));
    s.handle(service(WatchEvent::InitApply(svc("a", "change", "5"))));
    s.handle(service(WatchEvent::InitApply(svc("a", "new", "6"))));
    let out = s.handle(service(WatchEvent::InitDone));
    assert_eq!(
        names(&out),
        ["delete Service gone", "upsert change", "upsert new"]
    );
    assert_eq!(
        out[0],
        ClusterEvent::Delete(Kind::Service, ObjectKey::new("a", "gone"))
    );
}

#[test]
fn live_events_pass_through_and_repeats_are_dropped() {
    let mut s = services_only();
    list_config(&mut s);
    s.handle(service(WatchEvent::Init));
    s.handle(service(WatchEvent::InitDone));
    let a = svc("a", "x", "2");
    assert_eq!(
        names(&s.handle(service(WatchEvent::Apply(a.clone())))),
        ["upsert x"]
    );
    assert!(s.handle(service(WatchEvent::Apply(a.clone()))).is_empty());
    assert_eq!(
        names(&s.handle(service(WatchEvent::Delete(a.clone())))),
        ["delete Service x"]
    );
    // A delete for something unknown (already removed by a relist) is not repeated.
    assert!(s.handle(service(WatchEvent::Delete(a))).is_empty());
}

#[test]
fn config_waits_for_every_kind_then_sends_the_sorted_whole_set() {
    let mut s = services_only();
    // Listed out of order, and one kind not yet listed: nothing is sent.
    for kind in CONFIG_KINDS.iter().filter(|k| **k != "L2Advertisement") {
        s.handle(Update::Config(kind, WatchEvent::Init));
        if *kind == "IPAddressPool" {
            s.handle(Update::Config(
                kind,
                WatchEvent::InitApply(pool("b", "10.0.1.0/24")),
            ));
            s.handle(Update::Config(
                kind,
                WatchEvent::InitApply(pool("a", "10.0.0.0/24")),
            ));
        }
        assert!(
            s.handle(Update::Config(kind, WatchEvent::InitDone))
                .is_empty()
        );
    }
    s.handle(Update::Config("L2Advertisement", WatchEvent::Init));
    s.handle(Update::Config(
        "L2Advertisement",
        WatchEvent::InitApply(l2("adv")),
    ));
    let out = s.handle(Update::Config("L2Advertisement", WatchEvent::InitDone));
    let [ClusterEvent::Config { objects, errors }] = out.as_slice() else {
        panic!("expected one config event, got {out:?}");
    };
    assert!(errors.is_empty());
    let order: Vec<_> = objects
        .iter()
        .map(|(src, o)| {
            assert_eq!(*src, Source::api());
            format!("{}/{}", o.kind(), o.name())
        })
        .collect();
    assert_eq!(
        order,
        ["IPAddressPool/a", "IPAddressPool/b", "L2Advertisement/adv"]
    );
    // The same object again changes nothing; a deletion sends the smaller set.
    assert!(
        s.handle(Update::Config(
            "IPAddressPool",
            WatchEvent::Apply(pool("a", "10.0.0.0/24"))
        ))
        .is_empty()
    );
    let out = s.handle(Update::Config(
        "IPAddressPool",
        WatchEvent::Delete(pool("a", "x")),
    ));
    assert_eq!(names(&out), ["config 2"]);
}

#[test]
fn a_config_relist_that_changes_nothing_sends_nothing() {
    let mut s = services_only();
    for kind in CONFIG_KINDS {
        s.handle(Update::Config(kind, WatchEvent::Init));
        if kind == "IPAddressPool" {
            s.handle(Update::Config(
                kind,
                WatchEvent::InitApply(pool("a", "10.0.0.0/24")),
            ));
        }
        s.handle(Update::Config(kind, WatchEvent::InitDone));
    }
    s.handle(Update::Config("IPAddressPool", WatchEvent::Init));
    s.handle(Update::Config(
        "IPAddressPool",
        WatchEvent::InitApply(pool("a", "10.0.0.0/24")),
    ));
    assert!(
        s.handle(Update::Config("IPAddressPool", WatchEvent::InitDone))
            .is_empty()
    );
    // But a pool deleted while we were not watching is noticed.
    s.handle(Update::Config("IPAddressPool", WatchEvent::Init));
    let out = s.handle(Update::Config("IPAddressPool", WatchEvent::InitDone));
    assert_eq!(names(&out), ["config 0"]);
}
