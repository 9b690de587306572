//! Random histories of Services coming, going and changing type, class, sharing key and
//! ports, and of pool edits, fed to the reconciler. After every input: no Service waits while
//! an address it could take is free, and the queue is exactly the Services of ours without
//! an address. The check replays the current assignments into an independent allocator and
//! asks it for each waiting Service.

use super::*;
use crate::alloc::Allocator;
use crate::service::{Service, ServiceType};
use proptest::prelude::*;

const NAMES: [&str; 6] = ["s0", "s1", "s2", "s3", "s4", "s5"];

#[derive(Clone, Debug)]
enum Op {
    /// Create or replace Service `.0` as a LoadBalancer, with a sharing key (`.1`) and a port.
    Upsert(usize, Option<&'static str>, i32),
    Delete(usize),
    /// Turn Service `.0` into a ClusterIP Service.
    ClusterIp(usize),
    /// Move Service `.0` to another load balancer class.
    OtherClass(usize),
    /// The pool is `1.2.3.0` plus `.0` more addresses.
    Resize(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let key = prop_oneof![Just(None), Just(Some("k")), Just(Some("j"))];
    prop_oneof![
        5 => (0..6usize, key, prop_oneof![Just(80), Just(81)])
            .prop_map(|(s, k, p)| Op::Upsert(s, k, p)),
        2 => (0..6usize).prop_map(Op::Delete),
        1 => (0..6usize).prop_map(Op::ClusterIp),
        1 => (0..6usize).prop_map(Op::OtherClass),
        1 => (0u8..4).prop_map(Op::Resize),
    ]
}

fn pool(extra: u8) -> String {
    format!(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: p}}\nspec: {{addresses: [1.2.3.0-1.2.3.{extra}]}}\n"
    )
}

/// The Service as the source would deliver it next: the status the reconciler wrote.
fn echo(r: &Reconciler, mut s: Service) -> Service {
    let k = service::service_key(&s);
    match r.assignment(&k) {
        Some(a) => service::apply_status(&mut s, &a.ips, Some(&a.pool)),
        None => service::apply_status(&mut s, &[], None),
    }
    s
}

fn check(r: &Reconciler, services: &BTreeMap<ServiceKey, Service>) {
    let config = r.config().expect("a config is in force");
    let mut replica = Allocator::new();
    assert!(replica.set_pools(config.pool_defs()).is_empty());
    let ours: Vec<(&ServiceKey, &Service)> = services
        .iter()
        .filter(|(_, s)| service::is_ours(s, None))
        .collect();
    for (k, s) in &ours {
        if let Some(a) = r.assignment(k) {
            let mut req = service::request(s, &Default::default()).unwrap();
            req.previous_ips = a.ips.clone();
            assert_eq!(replica.assign(&req).as_ref(), Ok(a), "replaying {k}");
        }
    }
    let unassigned: Vec<&ServiceKey> = ours
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| r.assignment(k).is_none())
        .collect();
    let mut waiting: Vec<&ServiceKey> = r.waiting().collect();
    waiting.sort();
    assert_eq!(
        waiting, unassigned,
        "the queue is not the unassigned Services"
    );
    for k in unassigned {
        let mut req = service::request(&services[k], &Default::default()).unwrap();
        req.previous_ips.clear();
        let probe = replica.assign(&req);
        assert!(probe.is_err(), "{k} waits but could get {probe:?}");
    }
}

fn run(ops: Vec<Op>) {
    let mut r = Reconciler::new(None);
    r.handle(config(&pool(1)));
    r.handle(Input::Synced);
    let mut services: BTreeMap<ServiceKey, Service> = BTreeMap::new();
    for op in ops {
        let changed = match op {
            Op::Upsert(i, sharing, port) => {
                let mut s = Service::from(svc(NAMES[i], None));
                if let Some(k) = sharing {
                    s.annotations = [("metallb.io/allow-shared-ip".into(), k.into())].into();
                }
                s.ports[0].port = port;
                Some(s)
            }
            Op::Delete(i) => {
                services.remove(&key(NAMES[i]));
                r.handle(Input::ServiceDelete(key(NAMES[i])));
                None
            }
            Op::ClusterIp(i) | Op::OtherClass(i) => services.get(&key(NAMES[i])).map(|s| {
                let mut s = s.clone();
                if matches!(op, Op::ClusterIp(_)) {
                    s.type_ = ServiceType::ClusterIp;
                } else {
                    s.class = Some("vendor.example/lb".into());
                }
                s
            }),
            Op::Resize(extra) => {
                r.handle(config(&pool(extra)));
                None
            }
        };
        if let Some(s) = changed {
            let s = echo(&r, s);
            services.insert(service::service_key(&s), s.clone());
            r.handle(upsert(s));
        }
        for s in services.values_mut() {
            *s = echo(&r, s.clone());
        }
        check(&r, &services);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn nobody_waits_while_an_address_it_could_take_is_free(
        ops in prop::collection::vec(op(), 1..40),
    ) {
        run(ops);
    }
}
