use super::*;
use crate::manifest::parse_documents;
// Tests write Services as the API holds them; the reconciler gets their projection.
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};

const CONFIG: &str = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.0.0.0/30]}\n";

fn config(text: &str) -> Input {
    let f = parse_documents("c.yaml", text);
    let objects = f.config_objects();
    Input::Config {
        objects,
        errors: f.errors,
    }
}

fn svc(name: &str, status_ip: Option<&str>) -> Service {
    let mut s = Service {
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ports: Some(vec![ServicePort {
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    s.metadata.name = Some(name.into());
    s.metadata.namespace = Some("default".into());
    if let Some(ip) = status_ip {
        let recorded = service::status_object(&key(name), &[ip.parse().unwrap()], Some("p"));
        s.status = recorded.status;
        s.metadata.annotations = recorded.metadata.annotations;
    }
    s
}

fn key(name: &str) -> ServiceKey {
    ServiceKey {
        namespace: "default".into(),
        name: name.into(),
    }
}

fn statuses(actions: &[Action]) -> Vec<(String, Vec<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetStatus { key, ips, .. } => Some((
                key.name.clone(),
                ips.iter().map(|i| i.to_string()).collect(),
            )),
            _ => None,
        })
        .collect()
}

fn upsert(s: impl Into<service::Service>) -> Input {
    Input::ServiceUpsert(std::sync::Arc::new(s.into()))
}

#[test]
fn nothing_is_allocated_before_the_first_full_listing() {
    let mut r = Reconciler::new(None);
    assert!(
        r.handle(config(CONFIG))
            .iter()
            .any(|a| matches!(a, Action::ConfigAccepted { .. }))
    );
    assert!(statuses(&r.handle(upsert(svc("a", None)))).is_empty());
    let out = r.handle(Input::Synced);
    assert_eq!(
        statuses(&out),
        [("a".to_string(), vec!["10.0.0.0".to_string()])]
    );
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Event {
            reason: "IPAllocated",
            ..
        }
    )));
}

#[test]
fn restart_reclaims_status_addresses_before_allocating_new_ones() {
    let mut r = Reconciler::new(None);
    r.handle(config(CONFIG));
    // "a" sorts first and has no status; "z" held 10.0.0.0 before the restart.
    r.handle(upsert(svc("a", None)));
    r.handle(upsert(svc("z", Some("10.0.0.0"))));
    let out = r.handle(Input::Synced);
    assert_eq!(
        statuses(&out),
        [("a".to_string(), vec!["10.0.0.1".to_string()])]
    );
    assert_eq!(
        r.assignment(&key("z")).unwrap().ips,
        ["10.0.0.0".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn repeated_inputs_produce_no_actions() {
    let mut r = Reconciler::new(None);
    r.handle(config(CONFIG));
    r.handle(Input::Synced);
    let first = r.handle(upsert(svc("a", None)));
    assert_eq!(statuses(&first).len(), 1);
    // The source echoes the written status back (the API server does; the standalone source
    // restores it from the status file): nothing more to do.
    let again = r.handle(upsert(svc("a", Some("10.0.0.0"))));
    assert!(
        again.is_empty(),
        "no write when the status is already right: {again:?}"
    );
    // Someone wiped the status: it is written again.
    assert_eq!(statuses(&r.handle(upsert(svc("a", None)))).len(), 1);
    assert!(
        r.handle(config(CONFIG)).is_empty(),
        "the same config again is a no-op"
    );
}

#[test]
fn rejected_config_keeps_the_last_good_one() {
    let mut r = Reconciler::new(None);
    r.handle(config(CONFIG));
    r.handle(Input::Synced);
    r.handle(upsert(svc("a", None)));
    let bad = CONFIG.replace("10.0.0.0/30", "10.0.0.0/99");
    let out = r.handle(config(&bad));
    assert!(
        matches!(&out[..], [Action::ConfigRejected { errors }] if errors[0].field == "spec.addresses[0]")
    );
    assert!(r.config_stale());
    assert_eq!(r.config().unwrap().pools["p"].ranges.len(), 1);
    // Allocation goes on with the old pools.
    assert_eq!(
        statuses(&r.handle(upsert(svc("b", None)))),
        [("b".to_string(), vec!["10.0.0.1".to_string()])]
    );
    // A document that cannot be read rejects the config too.
    let unreadable = Input::Config {
        objects: vec![],
        errors: vec![ConfigError::default()],
    };
    assert!(matches!(
        &r.handle(unreadable)[..],
        [Action::ConfigRejected { .. }]
    ));
    r.handle(config(CONFIG));
    assert!(!r.config_stale());
}

#[test]
fn exhaustion_is_reported_once_and_retried_when_space_frees() {
    let mut r = Reconciler::new(None);
    r.handle(config(CONFIG));
    r.handle(Input::Synced);
    for n in ["a", "b", "c", "d"] {
        r.handle(upsert(svc(n, None)));
    }
    let out = r.handle(upsert(svc("e", None)));
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::Event {
                reason: "AllocationFailed",
                ..
            }
        )),
        "{out:?}"
    );
    // The same failure again is not reported twice.
    let mut changed = svc("e", None);
    changed.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
    assert!(r.handle(upsert(changed.clone())).is_empty());
    r.handle(Input::ServiceDelete(key("b")));
    assert_eq!(
        statuses(&r.handle(upsert(changed))),
        [("e".to_string(), vec!["10.0.0.1".to_string()])]
    );
}

#[test]
fn services_that_stop_being_ours_are_cleared() {
    let mut r = Reconciler::new(None);
    r.handle(config(CONFIG));
    r.handle(Input::Synced);
    r.handle(upsert(svc("a", None)));
    let mut s = svc("a", Some("10.0.0.0"));
    s.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    let out = r.handle(upsert(s));
    assert!(
        out.contains(&Action::ClearStatus { key: key("a") }),
        "{out:?}"
    );
    assert!(r.assignment(&key("a")).is_none());
    // Someone else's Service (another class) is left alone.
    let mut other = svc("o", Some("10.9.9.9"));
    other.metadata.annotations = None;
    other.spec.as_mut().unwrap().load_balancer_class = Some("vendor/lb".into());
    assert!(r.handle(upsert(other)).is_empty());
}

#[test]
fn pool_edits_reallocate_addresses_that_left() {
    let mut r = Reconciler::new(None);
    r.handle(config(CONFIG));
    r.handle(Input::Synced);
    r.handle(upsert(svc("a", None)));
    let out = r.handle(config(&CONFIG.replace("10.0.0.0/30", "10.0.1.0/30")));
    assert_eq!(
        statuses(&out),
        [("a".to_string(), vec!["10.0.1.0".to_string()])]
    );
}

#[test]
fn deprecated_prefix_earns_a_warning() {
    let mut r = Reconciler::new(None);
    let mut s = svc("a", None);
    s.metadata.annotations = Some(
        [(
            "metallb.universe.tf/address-pool".to_string(),
            "p".to_string(),
        )]
        .into(),
    );
    let out = r.handle(upsert(s));
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Event {
            reason: "DeprecatedAnnotation",
            kind: EventType::Warning,
            ..
        }
    )));
}

#[test]
fn namespace_labels_drive_pool_selection() {
    let text = format!(
        "{CONFIG}---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: gold}}\nspec: {{addresses: [10.1.0.0/30], serviceAllocation: {{namespaceSelectors: [{{matchLabels: {{tier: gold}}}}]}}}}\n"
    );
    let mut r = Reconciler::new(None);
    r.handle(config(&text));
    r.handle(Input::Synced);
    assert_eq!(
        statuses(&r.handle(upsert(svc("a", None))))[0].1,
        ["10.0.0.0"]
    );
    let out = r.handle(Input::NamespaceUpsert {
        name: "default".into(),
        labels: [("tier".to_string(), "gold".to_string())].into(),
    });
    // The existing address stays valid (pool p is still usable), so nothing moves.
    assert!(statuses(&out).is_empty(), "{out:?}");
    assert_eq!(
        statuses(&r.handle(upsert(svc("b", None))))[0].1,
        ["10.1.0.0"]
    );
}

#[test]
fn allocation_failures_say_what_was_wrong() {
    let mut r = Reconciler::new(None);
    r.handle(config(CONFIG));
    r.handle(Input::Synced);
    let message = |out: &[Action]| {
        out.iter()
            .find_map(|a| match a {
                Action::Event {
                    reason: "AllocationFailed",
                    message,
                    ..
                } => Some(message.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no AllocationFailed in {out:?}"))
    };
    let mut three = svc("three", None);
    three.metadata.annotations = Some(
        [(
            "metallb.io/loadBalancerIPs".to_string(),
            "1.2.4.6,1000::4:6,1.2.4.7".to_string(),
        )]
        .into(),
    );
    assert_eq!(
        message(&r.handle(upsert(three))),
        "failed to allocate: annotation metallb.io/loadBalancerIPs asks for 3 addresses \
         (1.2.4.6, 1000::4:6, 1.2.4.7); a Service may have at most two, one IPv4 and one IPv6"
    );
    let mut outside = svc("outside", None);
    outside.spec.as_mut().unwrap().load_balancer_ip = Some("1.2.4.6".into());
    assert_eq!(
        message(&r.handle(upsert(outside))),
        "failed to allocate: requested address 1.2.4.6 is not in any address pool"
    );
}

mod proptests;
mod waiting;
