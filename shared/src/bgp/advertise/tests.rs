use super::*;
use crate::l2::election::tests::fixture::Cluster;

const IP: &str = "192.0.2.10";
const IP6: &str = "2001:db8::10";

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn key(name: &str) -> ServiceKey {
    ServiceKey::new("default", name)
}

fn peer(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: {name}}}\n\
         spec: {{myASN: 64512, peerAddress: 10.0.0.1{extra}}}\n"
    )
}

fn ebgp(name: &str) -> String {
    peer(name, ", peerASN: 64500")
}

fn adv(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: {name}}}\n\
         spec: {{ipAddressPools: [p]{spec}}}\n"
    )
}

/// One v4+v6 pool, nodes n1..n3, one eBGP peer `r1` for every node.
fn base() -> Cluster {
    Cluster::new()
        .pool("p", &["192.0.2.0/24", "2001:db8::/120"])
        .nodes(&["n1", "n2", "n3"])
        .raw(&ebgp("r1"))
}

fn prefixes(plan: &BTreeMap<String, PeerPlan>, peer: &str) -> Vec<IpNet> {
    plan[peer].routes.keys().copied().collect()
}

#[test]
fn cluster_policy_every_node_advertises_if_any_endpoint_serves() {
    let c = base().raw(&adv("a", "")).service("web", &[IP, IP6], false);
    // No endpoint: the session is kept, nothing is advertised.
    let plan = advertise(&c.snapshot("n1"), "n1", None);
    assert!(plan["r1"].routes.is_empty(), "{plan:?}");
    assert!(!plan["r1"].ibgp);
    // A v4 endpoint on n2: n1 advertises the v4 address only (families are separate).
    let s = c.clone().ready_on("web", &["n2"]).snapshot("n1");
    let plan = advertise(&s, "n1", None);
    assert_eq!(prefixes(&plan, "r1"), [net("192.0.2.10/32")]);
    let route = &plan["r1"].routes[&net("192.0.2.10/32")];
    assert_eq!(route.services, [key("web")].into());
    assert_eq!(route.attributes.local_pref, None);
    assert_eq!(route.attributes.next_hop, None, "the driver sets it");
    // A v6 endpoint too: both families.
    let s = c
        .ready_on("web", &["n2"])
        .slice("web-6", "web", &[("fd00::1", "n3", fixture_ready())])
        .snapshot("n1");
    let plan = advertise(&s, "n1", None);
    assert_eq!(
        prefixes(&plan, "r1"),
        [net("192.0.2.10/32"), net("2001:db8::10/128")]
    );
}

fn fixture_ready() -> crate::l2::election::tests::fixture::Ep {
    crate::l2::election::tests::fixture::Ep::Ready
}

#[test]
fn local_policy_only_the_nodes_with_an_endpoint() {
    let s = base()
        .raw(&adv("a", ""))
        .service("web", &[IP], true)
        .ready_on("web", &["n2"])
        .snapshot("n1");
    assert!(advertise(&s, "n1", None)["r1"].routes.is_empty());
    assert_eq!(
        prefixes(&advertise(&s, "n2", None), "r1"),
        [net("192.0.2.10/32")]
    );
}

#[test]
fn shared_addresses_make_one_route_and_aggregation_merges_addresses() {
    let s = base()
        .raw(&adv(
            "a",
            ", aggregationLength: 24, aggregationLengthV6: 120",
        ))
        .service("web", &[IP], false)
        .service("dns", &[IP], false)
        .service("other", &["192.0.2.20"], false)
        .service("idle", &["192.0.2.30"], false)
        .ready_on("web", &["n3"])
        .ready_on("dns", &["n3"])
        .ready_on("other", &["n3"])
        .snapshot("n1");
    let plan = advertise(&s, "n1", None);
    assert_eq!(prefixes(&plan, "r1"), [net("192.0.2.0/24")]);
    let route = &plan["r1"].routes[&net("192.0.2.0/24")];
    // The idle Service's address is not a reason to advertise.
    assert_eq!(
        route.ips,
        ["192.0.2.10", "192.0.2.20"]
            .map(|a| a.parse::<IpAddr>().unwrap())
            .into()
    );
    assert_eq!(
        route.services,
        [key("dns"), key("other"), key("web")].into()
    );
}

#[test]
fn node_selectors_of_peers_and_advertisements() {
    let c = Cluster::new()
        .pool("p", &["192.0.2.0/24"])
        .node_with("n1", "labels: {rack: a}", "[]")
        .node_with("n2", "labels: {rack: b}", "[]")
        .raw(&peer(
            "rack-a",
            ", peerASN: 64500, nodeSelectors: [{matchLabels: {rack: a}}]",
        ))
        .raw(&ebgp("all"))
        .raw(&adv("a", ", nodeSelectors: [{matchLabels: {rack: b}}]"))
        .service("web", &[IP], false)
        .ready_on("web", &["n1"]);
    let s = c.snapshot("n1");
    let plan = advertise(&s, "n1", None);
    assert_eq!(plan.keys().collect::<Vec<_>>(), ["all", "rack-a"]);
    assert!(
        plan.values().all(|p| p.routes.is_empty()),
        "rack a is not advertised"
    );
    let plan = advertise(&s, "n2", None);
    assert_eq!(plan.keys().collect::<Vec<_>>(), ["all"]);
    assert_eq!(prefixes(&plan, "all"), [net("192.0.2.10/32")]);
}

#[test]
fn peers_limit_an_advertisement_and_attributes_follow_the_peer() {
    let s = base()
        .raw(&peer("inner", ", peerASN: 64512"))
        .raw(
            "apiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {name: c}\n\
             spec: {communities: [{name: vip, value: '65000:7'}]}\n",
        )
        .raw(&adv(
            "a",
            ", localPref: 150, communities: [vip, no-export, 'large:1:2:3'], peers: [inner]",
        ))
        .raw(&adv("b", ", communities: ['65000:1'], peers: [r1, inner]"))
        .service("web", &[IP], false)
        .ready_on("web", &["n1"])
        .snapshot("n1");
    let plan = advertise(&s, "n1", None);
    let outer = &plan["r1"].routes[&net("192.0.2.10/32")].attributes;
    assert_eq!(outer.communities, [65000 << 16 | 1]);
    assert!(outer.large_communities.is_empty());
    assert_eq!(outer.local_pref, None, "eBGP never carries LOCAL_PREF");
    assert!(plan["inner"].ibgp);
    let inner = &plan["inner"].routes[&net("192.0.2.10/32")].attributes;
    assert_eq!(
        inner.communities,
        [65000 << 16 | 1, 65000 << 16 | 7, 0xFFFF_FF01]
    );
    assert_eq!(inner.large_communities, [(1, 2, 3)]);
    assert_eq!(inner.local_pref, Some(150));
}

#[test]
fn excluded_nodes_keep_sessions_and_advertise_nothing() {
    let s = base()
        .node_with(
            "n4",
            "labels: {node.kubernetes.io/exclude-from-external-load-balancers: ''}",
            "[]",
        )
        .raw(&adv("a", ""))
        .service("web", &[IP], false)
        .ready_on("web", &["n1"])
        .snapshot("n4");
    let plan = advertise(&s, "n4", None);
    assert!(plan["r1"].routes.is_empty(), "{plan:?}");
    // Without an advertisement for the pool nothing goes out either.
    let s = base()
        .service("web", &[IP], false)
        .ready_on("web", &["n1"])
        .snapshot("n1");
    assert!(advertise(&s, "n1", None)["r1"].routes.is_empty());
}

#[test]
fn other_classes_and_no_config_advertise_nothing() {
    let s = base()
        .raw(&adv("a", ""))
        .service_with("web", &[IP], false, "")
        .ready_on("web", &["n1"])
        .snapshot("n1");
    assert!(advertise(&s, "n1", Some("other"))["r1"].routes.is_empty());
    assert!(advertise(&Snapshot::default(), "n1", None).is_empty());
    // A node whose Node object is not seen yet has no sessions.
    assert!(advertise(&s, "n9", None).is_empty());
}
