use super::*;
use ferrolb_shared::config::{IPAddressPool, IPAddressPoolSpec, L2Advertisement};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn svc(ns: &str, name: &str, rv: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some(rv.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn namespace(name: &str, label: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("team".to_string(), label.to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    }
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

fn state() -> (SourceState, SharedView) {
    let view = SharedView::default();
    (SourceState::new(view.clone()), view)
}

/// Deliver an empty listing for every config kind and Namespaces.
fn list_everything_but_services(s: &mut SourceState) -> Vec<Input> {
    let mut out = Vec::new();
    for kind in CONFIG_KINDS {
        out.extend(s.handle(Update::Config(kind, Event::Init)));
        out.extend(s.handle(Update::Config(kind, Event::InitDone)));
    }
    out.extend(s.handle(Update::Namespace(Event::Init)));
    out.extend(s.handle(Update::Namespace(Event::InitDone)));
    out
}

fn names(inputs: &[Input]) -> Vec<String> {
    inputs
        .iter()
        .map(|i| match i {
            Input::ServiceUpsert(s) => format!("upsert {}", s.metadata.name.as_deref().unwrap()),
            Input::ServiceDelete(k) => format!("delete {}", k.name),
            Input::NamespaceUpsert { name, .. } => format!("ns {name}"),
            Input::NamespaceDelete(n) => format!("ns-delete {n}"),
            Input::Config { objects, .. } => format!("config {}", objects.len()),
            Input::Synced => "synced".into(),
        })
        .collect()
}

#[test]
fn synced_once_after_every_watcher_listed() {
    let (mut s, _) = state();
    assert!(names(&list_everything_but_services(&mut s)) == ["config 0"]);
    assert!(!s.synced());
    s.handle(Update::Service(Event::Init));
    s.handle(Update::Service(Event::InitApply(svc("a", "one", "1"))));
    let out = s.handle(Update::Service(Event::InitDone));
    assert_eq!(names(&out), ["upsert one", "synced"]);
    // A relist later never sends Synced again.
    s.handle(Update::Service(Event::Init));
    s.handle(Update::Service(Event::InitApply(svc("a", "one", "1"))));
    assert!(names(&s.handle(Update::Service(Event::InitDone))).is_empty());
}

#[test]
fn nothing_is_passed_on_while_a_listing_is_buffered() {
    let (mut s, _) = state();
    list_everything_but_services(&mut s);
    assert!(s.handle(Update::Service(Event::Init)).is_empty());
    assert!(
        s.handle(Update::Service(Event::InitApply(svc("a", "x", "1"))))
            .is_empty()
    );
}

#[test]
fn relist_diffs_against_what_was_known() {
    let (mut s, view) = state();
    list_everything_but_services(&mut s);
    s.handle(Update::Service(Event::Init));
    for name in ["keep", "change", "gone"] {
        s.handle(Update::Service(Event::InitApply(svc("a", name, "1"))));
    }
    s.handle(Update::Service(Event::InitDone));
    assert!(view.lock().unwrap().service_uids.len() == 3);
    // 410 Gone: the watcher starts over. Meanwhile "gone" was deleted, "new" created and
    // "change" modified.
    s.handle(Update::Service(Event::Init));
    s.handle(Update::Service(Event::InitApply(svc("a", "keep", "1"))));
    s.handle(Update::Service(Event::InitApply(svc("a", "change", "5"))));
    s.handle(Update::Service(Event::InitApply(svc("a", "new", "6"))));
    let out = s.handle(Update::Service(Event::InitDone));
    assert_eq!(names(&out), ["delete gone", "upsert change", "upsert new"]);
    let view = view.lock().unwrap();
    assert!(
        !view
            .service_uids
            .contains_key(&ServiceKey::new("a", "gone"))
    );
    assert_eq!(
        view.service_uids
            .get(&ServiceKey::new("a", "new"))
            .map(String::as_str),
        Some("uid-new")
    );
}

#[test]
fn live_events_pass_through_and_repeats_are_dropped() {
    let (mut s, _) = state();
    list_everything_but_services(&mut s);
    s.handle(Update::Service(Event::Init));
    s.handle(Update::Service(Event::InitDone));
    let a = svc("a", "x", "2");
    assert_eq!(
        names(&s.handle(Update::Service(Event::Apply(a.clone())))),
        ["upsert x"]
    );
    assert!(
        s.handle(Update::Service(Event::Apply(a.clone())))
            .is_empty()
    );
    assert_eq!(
        names(&s.handle(Update::Service(Event::Delete(a.clone())))),
        ["delete x"]
    );
    // A delete for something unknown (already removed by a relist) is not repeated.
    assert!(s.handle(Update::Service(Event::Delete(a))).is_empty());
}

#[test]
fn namespaces_only_pass_on_label_changes() {
    let (mut s, _) = state();
    s.handle(Update::Namespace(Event::Init));
    s.handle(Update::Namespace(Event::InitApply(namespace("n", "a"))));
    assert_eq!(
        names(&s.handle(Update::Namespace(Event::InitDone))),
        ["ns n"]
    );
    let mut annotated = namespace("n", "a");
    annotated.metadata.annotations = Some([("x".to_string(), "y".to_string())].into());
    annotated.metadata.resource_version = Some("9".into());
    assert!(
        s.handle(Update::Namespace(Event::Apply(annotated)))
            .is_empty()
    );
    let out = s.handle(Update::Namespace(Event::Apply(namespace("n", "b"))));
    match out.as_slice() {
        [Input::NamespaceUpsert { name, labels }] => {
            assert_eq!(name, "n");
            assert_eq!(labels.get("team").map(String::as_str), Some("b"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        names(&s.handle(Update::Namespace(Event::Delete(namespace("n", "b"))))),
        ["ns-delete n"]
    );
}

#[test]
fn config_waits_for_every_kind_then_sends_the_sorted_whole_set() {
    let (mut s, view) = state();
    // Listed out of order, and one kind not yet listed: nothing is sent.
    for kind in CONFIG_KINDS.iter().filter(|k| **k != "L2Advertisement") {
        s.handle(Update::Config(kind, Event::Init));
        if *kind == "IPAddressPool" {
            s.handle(Update::Config(
                kind,
                Event::InitApply(pool("b", "10.0.1.0/24")),
            ));
            s.handle(Update::Config(
                kind,
                Event::InitApply(pool("a", "10.0.0.0/24")),
            ));
        }
        assert!(s.handle(Update::Config(kind, Event::InitDone)).is_empty());
    }
    s.handle(Update::Config("L2Advertisement", Event::Init));
    s.handle(Update::Config(
        "L2Advertisement",
        Event::InitApply(l2("adv")),
    ));
    let out = s.handle(Update::Config("L2Advertisement", Event::InitDone));
    let [Input::Config { objects, errors }] = out.as_slice() else {
        panic!("expected one config input, got {out:?}");
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
    assert_eq!(
        view.lock()
            .unwrap()
            .pool_namespaces
            .get("a")
            .map(String::as_str),
        Some("ferrolb-system")
    );
    // The same object again changes nothing; a deletion sends the smaller set.
    assert!(
        s.handle(Update::Config(
            "IPAddressPool",
            Event::Apply(pool("a", "10.0.0.0/24"))
        ))
        .is_empty()
    );
    let out = s.handle(Update::Config(
        "IPAddressPool",
        Event::Delete(pool("a", "x")),
    ));
    assert_eq!(names(&out), ["config 2"]);
    assert!(!view.lock().unwrap().pool_namespaces.contains_key("a"));
}

#[test]
fn a_config_relist_that_changes_nothing_sends_nothing() {
    let (mut s, _) = state();
    for kind in CONFIG_KINDS {
        s.handle(Update::Config(kind, Event::Init));
        if kind == "IPAddressPool" {
            s.handle(Update::Config(
                kind,
                Event::InitApply(pool("a", "10.0.0.0/24")),
            ));
        }
        s.handle(Update::Config(kind, Event::InitDone));
    }
    s.handle(Update::Config("IPAddressPool", Event::Init));
    s.handle(Update::Config(
        "IPAddressPool",
        Event::InitApply(pool("a", "10.0.0.0/24")),
    ));
    assert!(
        s.handle(Update::Config("IPAddressPool", Event::InitDone))
            .is_empty()
    );
    // But a pool deleted while we were not watching is noticed.
    s.handle(Update::Config("IPAddressPool", Event::Init));
    let out = s.handle(Update::Config("IPAddressPool", Event::InitDone));
    assert_eq!(names(&out), ["config 0"]);
}
