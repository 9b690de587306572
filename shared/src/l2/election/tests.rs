use super::*;
use fixture::{Cluster, Ep, snapshot_of};

pub(crate) mod fixture;
mod props;

const IP: &str = "192.0.2.10";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(name: &str) -> ServiceKey {
    ServiceKey::new("default", name)
}

/// One pool (v4 and v6) advertised to every node on every interface.
fn base() -> Cluster {
    Cluster::new()
        .pool("p", &["192.0.2.0/24", "2001:db8::/120"])
        .l2("all", &["p"], "[]", &[])
}

fn all_alive(s: &Snapshot) -> Election {
    elect(s, None, |_| Liveness::Alive)
}

fn except<'a>(dead: &'a [&'a str]) -> impl Fn(&str) -> Liveness + 'a {
    move |n| (!dead.contains(&n)).into()
}

fn owner(e: &Election, addr: &str) -> String {
    match e.assignments.get(&ip(addr)) {
        Some(a) => a.node.clone(),
        None => panic!("{addr} not announced: {:?}", e.unannounced.get(&ip(addr))),
    }
}

fn candidates(e: &Election, addr: &str) -> Vec<String> {
    e.assignments[&ip(addr)]
        .candidates
        .iter()
        .map(|c| c.node.clone())
        .collect()
}

fn reason(e: &Election, addr: &str) -> Reason {
    e.unannounced[&ip(addr)].reason.clone()
}

/// The nodes sorted by their hash for `addr`: the election order when nothing else differs.
fn by_hash(nodes: &[&str], addr: &str) -> Vec<String> {
    let mut v: Vec<&str> = nodes.to_vec();
    v.sort_by_key(|n| election_hash(n, ip(addr)));
    v.into_iter().map(String::from).collect()
}

#[test]
fn the_hash_is_pinned() {
    // Speakers of different versions must agree: these values never change.
    // (Computed independently, from the definition, in Python.)
    assert_eq!(
        election_hash("node-a", ip("192.0.2.10")),
        0x619f_8e7e_66e3_dc3f
    );
    assert_eq!(
        election_hash("node-b", ip("2001:db8::1")),
        0x563d_8183_cec2_c2b2
    );
}

#[test]
fn cluster_policy_every_node_is_a_candidate_ranked_by_hash() {
    let nodes = ["n1", "n2", "n3"];
    let s = base()
        .nodes(&nodes)
        .service("web", &[IP], false)
        .ready_on("web", &["n1"])
        .snapshot("n1");
    let e = all_alive(&s);
    assert_eq!(candidates(&e, IP), by_hash(&nodes, IP));
    let a = &e.assignments[&ip(IP)];
    assert_eq!(a.node, by_hash(&nodes, IP)[0]);
    assert_eq!(
        (a.pool.as_str(), a.services.clone()),
        ("p", vec![key("web")])
    );
    assert_eq!(a.interfaces, Interfaces::All);
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
}

#[test]
fn cluster_policy_without_a_serving_endpoint_is_not_announced() {
    let c = base().nodes(&["n1", "n2"]).service("web", &[IP], false);
    let e = all_alive(&c.snapshot("n1"));
    assert_eq!(reason(&e, IP), Reason::NoServingEndpoint);
    let unusable = c.clone().slice(
        "web-a",
        "web",
        &[
            ("10.244.0.1", "n1", Ep::NotReady),
            ("10.244.0.2", "n2", Ep::Gone),
        ],
    );
    let e = all_alive(&unusable.snapshot("n1"));
    assert_eq!(reason(&e, IP), Reason::NoServingEndpoint);
    assert_eq!(e.unannounced[&ip(IP)].services, [key("web")]);
    // A draining endpoint still serves when nothing is ready.
    let draining = c.slice("web-a", "web", &[("10.244.0.1", "n1", Ep::Draining)]);
    let e = all_alive(&draining.snapshot("n1"));
    assert_eq!(candidates(&e, IP).len(), 2);
}

#[test]
fn local_policy_only_nodes_with_a_serving_endpoint() {
    let c = base()
        .nodes(&["n1", "n2", "n3"])
        .service("web", &[IP], true);
    let s = c.clone().ready_on("web", &["n2"]).snapshot("n1");
    let e = all_alive(&s);
    assert_eq!(candidates(&e, IP), ["n2"]);
    // n1 drains while n3 is ready: only n3 (the "nothing ready" test is Service-wide).
    let s = c
        .clone()
        .slice(
            "web-a",
            "web",
            &[
                ("10.244.0.1", "n1", Ep::Draining),
                ("10.244.0.2", "n2", Ep::Gone),
                ("10.244.0.3", "n3", Ep::Ready),
            ],
        )
        .snapshot("n1");
    assert_eq!(candidates(&all_alive(&s), IP), ["n3"]);
    // Nothing ready anywhere: the draining node serves, the not-serving one does not.
    let s = c
        .clone()
        .slice(
            "web-a",
            "web",
            &[
                ("10.244.0.1", "n1", Ep::Draining),
                ("10.244.0.2", "n2", Ep::Gone),
                ("10.244.0.3", "n3", Ep::NotReady),
            ],
        )
        .snapshot("n1");
    assert_eq!(candidates(&all_alive(&s), IP), ["n1"]);
}

#[test]
fn local_policy_without_a_live_local_endpoint_has_no_candidate() {
    let c = base().nodes(&["n1", "n2"]).service("web", &[IP], true);
    // The endpoint's node is not a Node we know.
    let e = all_alive(&c.clone().ready_on("web", &["n9"]).snapshot("n1"));
    assert_eq!(reason(&e, IP), Reason::NoCandidate);
    // Its node is dead.
    let s = c.ready_on("web", &["n2"]).snapshot("n1");
    assert_eq!(
        reason(&elect(&s, None, except(&["n2"])), IP),
        Reason::NoCandidate
    );
}

#[test]
fn local_endpoint_moves_and_the_owner_follows() {
    let c = base()
        .nodes(&["n1", "n2", "n3"])
        .service("web", &[IP], true);
    let before = all_alive(&c.clone().ready_on("web", &["n1"]).snapshot("n1"));
    assert_eq!(owner(&before, IP), "n1");
    let after = all_alive(&c.ready_on("web", &["n3"]).snapshot("n1"));
    assert_eq!(owner(&after, IP), "n3");
}

#[test]
fn node_selectors_limit_the_candidates() {
    let s = Cluster::new()
        .pool("p", &["192.0.2.0/24"])
        .l2(
            "zone-a",
            &["p"],
            "[{matchLabels: {zone: a}}, {matchExpressions: [{key: edge, operator: Exists}]}]",
            &[],
        )
        .node_with("n1", "labels: {zone: a}", "[]")
        .node_with("n2", "labels: {zone: b}", "[]")
        .node_with("n3", "labels: {zone: b, edge: \"yes\"}", "[]")
        .node("n4")
        .service("web", &[IP], false)
        .ready_on("web", &["n2"])
        .snapshot("n1");
    let mut got = candidates(&all_alive(&s), IP);
    got.sort();
    assert_eq!(got, ["n1", "n3"]);
}

#[test]
fn an_address_without_advertisement_or_pool_is_not_announced() {
    let s = Cluster::new()
        .pool("l2", &["192.0.2.0/25"])
        .pool("bgp-only", &["192.0.2.128/25"])
        .l2("a", &["l2"], "[]", &[])
        .node("n1")
        .service("a", &["192.0.2.1"], false)
        .service("b", &["192.0.2.200"], false)
        .service("c", &["198.51.100.1"], false)
        .ready_on("a", &["n1"])
        .ready_on("b", &["n1"])
        .ready_on("c", &["n1"])
        .snapshot("n1");
    let e = all_alive(&s);
    assert_eq!(owner(&e, "192.0.2.1"), "n1");
    assert_eq!(
        reason(&e, "192.0.2.200"),
        Reason::NoAdvertisement {
            pool: "bgp-only".into()
        }
    );
    assert_eq!(reason(&e, "198.51.100.1"), Reason::NoPool);
}

#[test]
fn excluded_nodes_are_never_candidates() {
    let s = base()
        .node_with("n1", &format!("labels: {{{EXCLUDE_LABEL}: \"\"}}"), "[]")
        .node_with("n2", "", "[{type: NetworkUnavailable, status: \"True\"}]")
        .node_with("n3", "", "[{type: NetworkUnavailable, status: \"False\"}]")
        .service("web", &[IP], false)
        .ready_on("web", &["n1", "n2"])
        .snapshot("n1");
    assert_eq!(candidates(&all_alive(&s), IP), ["n3"]);
}

#[test]
fn a_dead_owner_is_replaced_by_the_next_candidate() {
    let nodes = ["n1", "n2", "n3", "n4"];
    let s = base()
        .nodes(&nodes)
        .service("web", &[IP], false)
        .ready_on("web", &["n1"])
        .snapshot("n1");
    let ranked = candidates(&all_alive(&s), IP);
    let first = ranked[0].as_str();
    let e = elect(&s, None, except(&[first]));
    assert_eq!(owner(&e, IP), ranked[1]);
    assert_eq!(candidates(&e, IP), ranked[1..]);
    // Everyone dead: nobody.
    let e = elect(&s, None, |_| Liveness::Dead);
    assert_eq!(reason(&e, IP), Reason::NoCandidate);
}

#[test]
fn preference_wins_over_hash_and_bad_values_count_as_zero() {
    let pref = |v: &str| format!("annotations: {{{PREFERENCE_ANNOTATION}: \"{v}\"}}");
    let c = base()
        .node_with("n1", &pref("5"), "[]")
        .node_with("n2", &pref(" 5 "), "[]")
        .node_with("n3", &pref("high"), "[]")
        .node_with("n4", &pref("-1"), "[]")
        .node("n5")
        .service("web", &[IP], false)
        .ready_on("web", &["n1"]);
    let e = all_alive(&c.snapshot("n1"));
    let ranked = candidates(&e, IP);
    assert_eq!(
        ranked[..2],
        by_hash(&["n1", "n2"], IP)[..],
        "ties broken by hash"
    );
    assert_eq!(
        ranked[2..4],
        by_hash(&["n3", "n5"], IP)[..],
        "bad value counts as 0"
    );
    assert_eq!(ranked[4], "n4");
    assert_eq!(
        e.warnings,
        [ElectionWarning::BadPreference {
            node: "n3".into(),
            value: "high".into()
        }]
    );
    let top = c.node_with("n6", &pref("100"), "[]").snapshot("n1");
    assert_eq!(owner(&all_alive(&top), IP), "n6");
}

#[test]
fn services_sharing_an_address_have_one_owner() {
    let nodes = ["n1", "n2", "n3", "n4", "n5"];
    let c = base()
        .nodes(&nodes)
        .service("a", &[IP], false)
        .service("b", &[IP], false)
        .service("idle", &[IP], false)
        .ready_on("a", &["n1"])
        .ready_on("b", &["n2"]);
    let e = all_alive(&c.snapshot("n1"));
    assert_eq!(e.assignments.len(), 1);
    let a = &e.assignments[&ip(IP)];
    // The idle one has no endpoint: it takes no part, and does not take the others down.
    assert_eq!(a.services, [key("a"), key("b")]);
    assert_eq!(a.node, by_hash(&nodes, IP)[0]);
    // Local services sharing one address (same selector, so the same endpoints).
    let local = base()
        .nodes(&nodes)
        .service("a", &[IP], true)
        .service("b", &[IP], true)
        .ready_on("a", &["n2", "n4"])
        .ready_on("b", &["n2", "n4"]);
    let e = all_alive(&local.snapshot("n1"));
    assert_eq!(e.assignments[&ip(IP)].services, [key("a"), key("b")]);
    assert_eq!(owner(&e, IP), by_hash(&["n2", "n4"], IP)[0]);
}

#[test]
fn shared_local_services_without_a_common_node_still_get_one_owner() {
    let e = all_alive(
        &base()
            .nodes(&["n1", "n2", "n3"])
            .service("a", &[IP], true)
            .service("b", &[IP], true)
            .service("c", &[IP], true)
            .ready_on("a", &["n1", "n2"])
            .ready_on("b", &["n2"])
            .ready_on("c", &["n3"])
            .snapshot("n1"),
    );
    // n2 serves two of three: it wins on coverage, whatever the hash says.
    let a = &e.assignments[&ip(IP)];
    assert_eq!(
        (a.node.as_str(), a.services.clone()),
        ("n2", vec![key("a"), key("b")])
    );
    assert_eq!(
        e.warnings,
        [ElectionWarning::SharedIpSplit {
            ip: ip(IP),
            node: "n2".into(),
            unserved: vec![key("c")]
        }]
    );
}

#[test]
fn every_speaker_agrees_whatever_the_order_of_its_inputs() {
    let nodes = ["n1", "n2", "n3", "n4", "n5", "n6"];
    let mut c = Cluster::new()
        .pool("p", &["192.0.2.0/24"])
        .pool("q", &["198.51.100.0/24"])
        .l2("a", &["p"], "[{matchLabels: {l2: \"on\"}}]", &["eth0"])
        .l2("b", &["p", "q"], "[]", &[]);
    for (i, n) in nodes.iter().enumerate() {
        let labels = if i % 2 == 0 {
            "labels: {l2: \"on\"}"
        } else {
            ""
        };
        c = c.node_with(n, labels, "[]");
    }
    for i in 0..20 {
        let (name, addr) = (format!("s{i}"), format!("192.0.2.{i}"));
        c = c
            .service(&name, &[&addr, &format!("198.51.100.{i}")], i % 3 == 0)
            .ready_on(&name, &nodes[i % 4..i % 4 + 2]);
    }
    let reference = all_alive(&c.snapshot("n1"));
    assert_eq!(reference.assignments.len(), 40);
    let mut docs = c.docs.clone();
    for (i, this) in nodes.iter().enumerate() {
        docs.rotate_left(7);
        if i % 2 == 1 {
            docs.reverse();
        }
        let e = all_alive(&snapshot_of(docs.iter(), this));
        assert_eq!(e, reference, "speaker {this} disagrees");
    }
}

#[test]
fn addresses_spread_over_all_nodes() {
    let nodes = ["n1", "n2", "n3", "n4", "n5"];
    let mut c = base().nodes(&nodes);
    for i in 0..250 {
        let name = format!("s{i}");
        c = c
            .service(
                &name,
                &[&format!("192.0.2.{i}"), &format!("2001:db8::{i:x}")],
                false,
            )
            .ready_on(&name, &["n1"])
            .slice(
                &format!("{name}-v6"),
                &name,
                &[("fd00::1", "n1", Ep::Ready)],
            );
    }
    let e = all_alive(&c.snapshot("n1"));
    assert_eq!(e.assignments.len(), 500);
    for n in nodes {
        let share = e.owned_by(n).count();
        // 100 expected; the bounds are about four standard deviations wide.
        assert!((60..=140).contains(&share), "{n} owns {share} of 500");
    }
}

#[test]
fn interfaces_are_the_union_of_the_owners_advertisements() {
    let c = Cluster::new()
        .pool("p", &["192.0.2.0/24"])
        .l2("a", &["p"], "[{matchLabels: {zone: a}}]", &["eth0"])
        .l2("b", &["p"], "[]", &["eth1", "bond0"])
        .l2("c", &["p"], "[{matchLabels: {zone: c}}]", &[])
        .pool("q", &["198.51.100.0/24"])
        .l2("other", &["q"], "[]", &["eth9"]) // another pool: never counts here
        .service("web", &[IP], false)
        .ready_on("web", &["x"]);
    let named = |v: &[&str]| Interfaces::Named(v.iter().map(|s| s.to_string()).collect());
    for (zone, want) in [
        ("a", named(&["bond0", "eth0", "eth1"])),
        ("b", named(&["bond0", "eth1"])),
        ("c", Interfaces::All),
    ] {
        let s = c
            .clone()
            .node_with("n1", &format!("labels: {{zone: {zone}}}"), "[]")
            .snapshot("n1");
        let e = all_alive(&s);
        assert_eq!(e.assignments[&ip(IP)].interfaces, want, "zone {zone}");
        assert!(e.assignments[&ip(IP)].interfaces.contains("bond0"));
    }
}

#[test]
fn dual_stack_addresses_are_elected_separately_per_family() {
    let (v4, v6) = (IP, "2001:db8::10");
    let c = base()
        .nodes(&["n1", "n2", "n3"])
        .service("web", &[v4, v6], true)
        .slice("web-v4", "web", &[("10.244.0.1", "n1", Ep::Ready)]);
    let e = all_alive(&c.clone().snapshot("n1"));
    assert_eq!(owner(&e, v4), "n1");
    // No IPv6 endpoint: the data path could not forward v6, so v6 is not announced.
    assert_eq!(reason(&e, v6), Reason::NoServingEndpoint);
    let e = all_alive(
        &c.slice("web-v6", "web", &[("fd00::3", "n3", Ep::Ready)])
            .snapshot("n1"),
    );
    assert_eq!((owner(&e, v4), owner(&e, v6)), ("n1".into(), "n3".into()));
    assert_eq!(
        e.owned_by("n3").map(|(a, _)| a).collect::<Vec<_>>(),
        [ip(v6)]
    );
}

#[test]
fn only_our_load_balancers_and_a_wrong_pool_annotation_is_reported() {
    let theirs = "apiVersion: v1\nkind: Service\nmetadata: {name: theirs, namespace: default}\n\
        spec: {type: LoadBalancer, loadBalancerClass: vendor/lb}\n\
        status: {loadBalancer: {ingress: [{ip: 192.0.2.11}]}}\n";
    let s = base()
        .node("n1")
        .service_with(
            "mine",
            &[IP],
            false,
            ", annotations: {ferrolb.io/ip-allocated-from-pool: q}",
        )
        .raw(theirs)
        .ready_on("mine", &["n1"])
        .ready_on("theirs", &["n1"])
        .snapshot("n1");
    let e = all_alive(&s);
    assert_eq!(e.assignments.keys().copied().collect::<Vec<_>>(), [ip(IP)]);
    assert!(e.unannounced.is_empty());
    assert_eq!(
        e.warnings,
        [ElectionWarning::PoolMismatch {
            ip: ip(IP),
            service: key("mine"),
            annotated: "q".into(),
            actual: Some("p".into())
        }]
    );
    let e = elect(&s, Some("vendor/lb"), |_| Liveness::Alive);
    assert_eq!(e.assignments[&ip("192.0.2.11")].services, [key("theirs")]);
    assert_eq!(e.assignments.len(), 1);
}

#[test]
fn nothing_without_a_configuration() {
    let c = Cluster::new()
        .node("n1")
        .service("web", &[IP], false)
        .ready_on("web", &["n1"]);
    // An empty configuration: no pool holds the address.
    let e = all_alive(&c.snapshot("n1"));
    assert_eq!(reason(&e, IP), Reason::NoPool);
    // None at all (none accepted yet): nothing is ours.
    let mut b = crate::snapshot::SnapshotBuilder::new("n1");
    let parsed = crate::manifest::parse_documents("c.yaml", &c.docs.join("---\n"));
    for p in parsed.objects {
        if let crate::manifest::Manifest::Cluster(o) = p.manifest {
            b.apply(crate::cluster::ClusterEvent::Upsert(o));
        }
    }
    assert_eq!(all_alive(b.current()), Election::default());
}
