//! Every allocation failure, word for word: each names the rule broken and the values
//! involved (addresses, pools, families, the holding service), as the operator reads it in
//! the Service's `AllocationFailed` Event.

use super::*;

fn fails(a: &mut Allocator, req: &ServiceRequest) -> String {
    a.assign(req).unwrap_err().to_string()
}

fn with(req: ServiceRequest, edit: impl FnOnce(&mut ServiceRequest)) -> ServiceRequest {
    let mut r = req;
    edit(&mut r);
    r
}

#[test]
fn pool_choice_failures() {
    let mut manual = pool("cheap", &["10.0.0.0/31"]);
    manual.auto_assign = false;
    let team = pinned(
        "team",
        &["10.1.0.0/31"],
        ServiceAllocation {
            namespaces: vec!["team-a".into()],
            ..Default::default()
        },
    );
    let mut a = allocator(vec![manual, team]);
    assert_eq!(
        fails(&mut a, &svc("ns", "x")),
        "no address pool may be used automatically: \"cheap\" has autoAssign: false (name it \
         in the address-pool annotation); \"team\": namespace \"ns\" is neither in its \
         namespaces nor matched by its namespaceSelectors"
    );
    assert_eq!(
        fails(&mut allocator(vec![]), &svc("ns", "x")),
        "no address pool is configured"
    );
    let named = |pool: &str| with(svc("ns", "x"), |r| r.requested_pool = Some(pool.into()));
    assert_eq!(
        fails(&mut a, &named("gold")),
        "address pool \"gold\", asked for by the address-pool annotation, does not exist"
    );
    assert_eq!(
        fails(&mut a, &named("team")),
        "address pool \"team\" may not be used by this service: namespace \"ns\" is neither \
         in its namespaces nor matched by its namespaceSelectors"
    );
    let mut web = pinned(
        "web",
        &["10.2.0.0/31"],
        ServiceAllocation {
            service_selectors: vec![selector(&[("app", "web")])],
            ..Default::default()
        },
    );
    web.auto_assign = false;
    let mut w = allocator(vec![web]);
    let named_web = with(svc("ns", "x"), |r| r.requested_pool = Some("web".into()));
    assert_eq!(
        fails(&mut w, &named_web),
        "address pool \"web\" may not be used by this service: the service's labels match \
         none of its serviceSelectors"
    );
}

#[test]
fn exhaustion_failures() {
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/32", "fd00::/128"]),
        pool("b", &["10.0.1.0/32"]),
    ]);
    a.assign(&svc("ns", "first")).unwrap();
    a.assign(&svc("ns", "second")).unwrap();
    assert_eq!(
        fails(&mut a, &svc("ns", "x")),
        "no usable address pool has a free IPv4 address left (tried [\"a\", \"b\"])"
    );
    let named = with(svc("ns", "x"), |r| r.requested_pool = Some("a".into()));
    assert_eq!(
        fails(&mut a, &named),
        "address pool \"a\" has no free IPv4 address left"
    );
    let require = with(svc("ns", "x"), |r| {
        r.family_policy = FamilyPolicy::RequireDualStack
    });
    // Pool a is the only one with both families; its IPv4 address is taken.
    assert_eq!(
        fails(
            &mut a,
            &with(require.clone(), |r| r.requested_pool = Some("a".into()))
        ),
        "address pool \"a\" has no free IPv4 address left"
    );
    let v6 = with(svc("ns", "v6"), |r| r.families = vec![Family::V6]);
    a.assign(&v6).unwrap();
    assert_eq!(
        fails(
            &mut a,
            &with(require, |r| r.requested_pool = Some("a".into()))
        ),
        "address pool \"a\" has no free IPv4 address and no free IPv6 address left"
    );
    // PreferDualStack would have taken either family.
    let prefer = with(svc("ns", "x"), |r| {
        r.family_policy = FamilyPolicy::PreferDualStack
    });
    assert_eq!(
        fails(&mut a, &prefer),
        "no usable address pool has a free IPv4 or IPv6 address left (tried [\"a\", \"b\"])"
    );
    let mut dual = allocator(vec![
        pool("c", &["10.0.0.0/32", "fd00::/128"]),
        pool("d", &["10.0.1.0/32", "fd01::/128"]),
    ]);
    let both = with(svc("ns", "both"), |r| {
        r.family_policy = FamilyPolicy::RequireDualStack
    });
    dual.assign(&both).unwrap();
    dual.assign(&with(both.clone(), |r| r.key.name = "both-2".into()))
        .unwrap();
    assert_eq!(
        fails(&mut dual, &with(both, |r| r.key.name = "x".into())),
        "no usable address pool has both a free IPv4 and a free IPv6 address left (tried \
         [\"c\", \"d\"])"
    );
}

#[test]
fn family_failures() {
    let mut a = allocator(vec![pool("v4", &["10.0.0.0/24"])]);
    let v6 = with(svc("ns", "x"), |r| r.families = vec![Family::V6]);
    assert_eq!(
        fails(&mut a, &v6),
        "an IPv6 address is needed but address pool \"v4\" has no IPv6 range"
    );
    let mut b = allocator(vec![
        pool("v4", &["10.0.0.0/24"]),
        pool("v4b", &["10.1.0.0/24"]),
    ]);
    assert_eq!(
        fails(&mut b, &v6),
        "an IPv6 address is needed but no usable address pool has an IPv6 range"
    );
    let mut c = allocator(vec![
        pool("v4", &["10.0.0.0/24"]),
        pool("v6", &["fd00::/120"]),
    ]);
    let require = with(svc("ns", "x"), |r| {
        r.family_policy = FamilyPolicy::RequireDualStack
    });
    assert_eq!(
        fails(&mut c, &require),
        "ipFamilyPolicy RequireDualStack needs an IPv4 and an IPv6 address from one pool, but \
         no usable address pool has both IPv4 and IPv6 ranges (tried [\"v4\", \"v6\"])"
    );
}

#[test]
fn requested_address_failures() {
    let mut buggy = pool("edge", &["10.0.1.0/24"]);
    buggy.avoid_buggy_ips = true;
    let mut a = allocator(vec![pool("a", &["10.0.0.0/24", "fd00::/120"]), buggy]);
    let asking = |list: &[&str]| with(svc("ns", "x"), |r| r.requested_ips = ips(list));
    assert_eq!(
        fails(&mut a, &asking(&["192.0.2.1"])),
        "requested address 192.0.2.1 is not in any address pool"
    );
    assert_eq!(
        fails(
            &mut a,
            &with(asking(&["10.0.1.5"]), |r| r.requested_pool =
                Some("a".into()))
        ),
        "requested address 10.0.1.5 is not in address pool \"a\""
    );
    assert_eq!(
        fails(&mut a, &asking(&["10.0.1.255"])),
        "requested address 10.0.1.255 ends in .0 or .255, which address pool \"edge\" avoids \
         (avoidBuggyIPs)"
    );
    let dual = |list: &[&str]| {
        with(asking(list), |r| {
            r.family_policy = FamilyPolicy::RequireDualStack
        })
    };
    assert_eq!(
        fails(&mut a, &dual(&["10.0.1.5", "fd00::5"])),
        "requested addresses must come from a single pool, but 10.0.1.5 is in address pool \
         \"edge\" and fd00::5 in \"a\""
    );
    assert_eq!(
        fails(&mut a, &dual(&["10.0.0.5"])),
        "ipFamilyPolicy RequireDualStack needs an IPv6 address too, but only 10.0.0.5 is \
         requested"
    );
    assert_eq!(
        fails(
            &mut a,
            &with(asking(&["10.0.0.5"]), |r| r.families = vec![Family::V6])
        ),
        "requested address 10.0.0.5 is IPv4, but the service's ipFamilies are IPv6"
    );
    assert_eq!(
        fails(&mut a, &asking(&["10.0.0.5", "10.0.0.6"])),
        "two IPv4 addresses are requested (10.0.0.5 and 10.0.0.6); at most one per family is \
         allowed"
    );
}

#[test]
fn sharing_failures_name_the_holder_and_the_rule() {
    let mut a = allocator(vec![pool("a", &["10.0.0.0/24"])]);
    let holder = with(shared("holder", "k", 80), |r| {
        r.requested_ips = ips(&["10.0.0.7"])
    });
    a.assign(&holder).unwrap();
    let joining = |edit: fn(&mut ServiceRequest)| {
        with(shared("x", "k", 81), |r| {
            r.requested_ips = ips(&["10.0.0.7"]);
            edit(r)
        })
    };
    type Edit = fn(&mut ServiceRequest);
    let cases: [(Edit, &str); 4] = [
        (
            |r| r.sharing_key = None,
            "this service has no allow-shared-ip annotation (the holder's key is \"k\")",
        ),
        (
            |r| r.sharing_key = Some("other".into()),
            "allow-shared-ip keys differ (\"other\" here, \"k\" on the holder)",
        ),
        (
            |r| r.backend_key = BackendKey::Local("app=x".into()),
            "services sharing an address must send traffic to the same endpoints, but this one \
             has traffic policy Local to \"app=x\" and the holder traffic policy Cluster",
        ),
        (|r| r.ports = vec![(Protocol::Tcp, 80)], "both use TCP/80"),
    ];
    for (edit, reason) in cases {
        assert_eq!(
            fails(&mut a, &joining(edit)),
            format!(
                "requested address 10.0.0.7 is held by default/holder, and they may not share \
                 it: {reason}"
            )
        );
    }
    let mut b = allocator(vec![pool("a", &["10.0.0.0/24"])]);
    let alone = with(svc("default", "alone"), |r| {
        r.requested_ips = ips(&["10.0.0.7"])
    });
    b.assign(&alone).unwrap();
    assert_eq!(
        fails(&mut b, &joining(|_| {})),
        "requested address 10.0.0.7 is held by default/alone, and they may not share it: the \
         holder has no allow-shared-ip annotation"
    );
    assert_eq!(
        fails(&mut b, &with(joining(|_| {}), |r| r.sharing_key = None)),
        "requested address 10.0.0.7 is held by default/alone, and they may not share it: \
         neither has an allow-shared-ip annotation"
    );
}
