//! Services that wait for an address get one as soon as one is left, oldest waiter first
//! (MetalLB's controller test "delete recycles IP", and every other way an address is left).

use super::*;

/// Two addresses: 1.2.3.0 and 1.2.3.1.
const SMALL: &str = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [1.2.3.0/31]}\n";

fn reasons(actions: &[Action], name: &str) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event {
                key: Some(k),
                reason,
                ..
            } if k.name == name => Some(*reason),
            _ => None,
        })
        .collect()
}

fn ip_of(r: &Reconciler, name: &str) -> Option<String> {
    r.assignment(&key(name)).map(|a| a.ips[0].to_string())
}

/// A reconciler with `a` on 1.2.3.0, `b` on 1.2.3.1 and `c` waiting.
fn full() -> Reconciler {
    let mut r = Reconciler::new(None);
    r.handle(config(SMALL));
    r.handle(Input::Synced);
    r.handle(upsert(svc("a", None)));
    r.handle(upsert(svc("b", None)));
    let out = r.handle(upsert(svc("c", None)));
    assert_eq!(reasons(&out, "c"), ["AllocationFailed"], "{out:?}");
    assert_eq!(r.waiting().collect::<Vec<_>>(), [&key("c")]);
    r
}

fn with_spec(mut s: Service, edit: impl FnOnce(&mut ServiceSpec)) -> Service {
    edit(s.spec.as_mut().unwrap());
    s
}

#[test]
fn a_deleted_service_leaves_its_address_to_the_waiting_one() {
    let mut r = full();
    let out = r.handle(Input::ServiceDelete(key("a")));
    assert_eq!(
        statuses(&out),
        [("c".to_string(), vec!["1.2.3.0".to_string()])]
    );
    assert_eq!(reasons(&out, "c"), ["IPAllocated"]);
    assert_eq!(r.waiting().count(), 0);
}

#[test]
fn a_service_that_stops_being_a_load_balancer_leaves_its_address() {
    let mut r = full();
    let node_port = with_spec(svc("b", Some("1.2.3.1")), |s| {
        s.type_ = Some("NodePort".into())
    });
    let out = r.handle(upsert(node_port));
    assert!(
        out.contains(&Action::ClearStatus { key: key("b") }),
        "{out:?}"
    );
    assert_eq!(
        statuses(&out),
        [("c".to_string(), vec!["1.2.3.1".to_string()])]
    );

    let mut r = full();
    let cluster_ip = with_spec(svc("a", Some("1.2.3.0")), |s| {
        s.type_ = Some("ClusterIP".into())
    });
    assert_eq!(ip_of(&r, "c"), None);
    r.handle(upsert(cluster_ip));
    assert_eq!(ip_of(&r, "c").as_deref(), Some("1.2.3.0"));
}

#[test]
fn a_service_moved_to_another_class_leaves_its_address() {
    let mut r = full();
    let elsewhere = with_spec(svc("a", Some("1.2.3.0")), |s| {
        s.load_balancer_class = Some("vendor.example/lb".into())
    });
    let out = r.handle(upsert(elsewhere));
    assert_eq!(
        statuses(&out),
        [("c".to_string(), vec!["1.2.3.0".to_string()])]
    );
}

#[test]
fn an_address_given_back_by_a_pool_edit_goes_to_the_waiting_one() {
    let mut r = Reconciler::new(None);
    r.handle(config(SMALL));
    r.handle(Input::Synced);
    r.handle(upsert(svc("a", None)));
    r.handle(upsert(svc("b", None)));
    let mut c = svc("c", None);
    c.metadata.labels = Some([("app".to_string(), "c".to_string())].into());
    let out = r.handle(upsert(c));
    assert_eq!(reasons(&out, "c"), ["AllocationFailed"]);
    // Pool p is now reserved for app=c, and an open pool q appears: "a" and "b" leave p, "a"
    // moves to q, "b" waits behind "c", and "c" gets the first address p gave back.
    let edited = SMALL.replace(
        "addresses: [1.2.3.0/31]",
        "addresses: [1.2.3.0/31], serviceAllocation: {serviceSelectors: [{matchLabels: {app: c}}]}",
    ) + "---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: q}\nspec: {addresses: [1.2.4.0/32]}\n";
    let out = r.handle(config(&edited));
    assert_eq!(ip_of(&r, "c").as_deref(), Some("1.2.3.0"), "{out:?}");
    assert_eq!(ip_of(&r, "a").as_deref(), Some("1.2.4.0"));
    assert_eq!(r.waiting().collect::<Vec<_>>(), [&key("b")]);
    assert_eq!(reasons(&out, "c"), ["IPAllocated"]);
}

#[test]
fn a_sharing_key_change_that_frees_an_address_lets_the_oldest_waiter_in() {
    let mut r = Reconciler::new(None);
    r.handle(config(SMALL));
    r.handle(Input::Synced);
    let sharing = |name: &str, key: &str, port: i32, status: Option<&str>| {
        let mut s = svc(name, status);
        s.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert("ferrolb.io/allow-shared-ip".into(), key.into());
        s.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = port;
        s
    };
    r.handle(upsert(sharing("a", "k", 80, None)));
    r.handle(upsert(sharing("b", "k", 81, None)));
    assert_eq!(ip_of(&r, "b").as_deref(), Some("1.2.3.0"));
    r.handle(upsert(svc("c", None)));
    assert_eq!(ip_of(&r, "c").as_deref(), Some("1.2.3.1"));
    // "z" waits first, "d" second: the order is by waiting time, not by name.
    r.handle(upsert(svc("z", None)));
    r.handle(upsert(svc("d", None)));
    assert_eq!(r.waiting().collect::<Vec<_>>(), [&key("z"), &key("d")]);
    // "b" changes its key: it may no longer share with "a" and joins the queue last.
    r.handle(upsert(sharing("b", "other", 81, Some("1.2.3.0"))));
    assert_eq!(ip_of(&r, "b"), None);
    assert_eq!(
        r.waiting().collect::<Vec<_>>(),
        [&key("z"), &key("d"), &key("b")]
    );
    // "a" changes its key too and keeps its address (it is alone on it now). Then "a" is
    // deleted: the address goes to the oldest waiter, "z".
    r.handle(upsert(sharing("a", "solo", 80, Some("1.2.3.0"))));
    assert_eq!(ip_of(&r, "a").as_deref(), Some("1.2.3.0"));
    let out = r.handle(Input::ServiceDelete(key("a")));
    assert_eq!(
        statuses(&out),
        [("z".to_string(), vec!["1.2.3.0".to_string()])]
    );
    assert_eq!(reasons(&out, "z"), ["IPAllocated"]);
    assert_eq!(r.waiting().collect::<Vec<_>>(), [&key("d"), &key("b")]);
}

#[test]
fn an_edited_waiting_service_keeps_its_place() {
    let mut r = full();
    r.handle(upsert(svc("0-new", None)));
    assert_eq!(r.waiting().collect::<Vec<_>>(), [&key("c"), &key("0-new")]);
    let mut edited = svc("c", None);
    edited.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
    assert!(r.handle(upsert(edited)).is_empty());
    r.handle(Input::ServiceDelete(key("b")));
    assert_eq!(ip_of(&r, "c").as_deref(), Some("1.2.3.1"));
    assert_eq!(ip_of(&r, "0-new"), None);
}

#[test]
fn nothing_is_retried_while_nobody_waits() {
    let mut r = Reconciler::new(None);
    r.handle(config(SMALL));
    r.handle(Input::Synced);
    r.handle(upsert(svc("a", None)));
    assert_eq!(r.waiting().count(), 0);
    // A release with an empty queue produces nothing but the release itself.
    assert!(r.handle(Input::ServiceDelete(key("a"))).is_empty());
}
