//! Property: whatever the cluster and whoever is alive, every announced address has exactly
//! one owner, the owner is a live candidate that can serve it, and every speaker agrees.

use super::fixture::{Cluster, Ep, snapshot_of};
use super::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct NodeSpec {
    liveness: Liveness,
    excluded: bool,
    zone_a: bool,
    /// `None`: an invalid annotation.
    preference: Option<i8>,
}

#[derive(Clone, Debug)]
struct SvcSpec {
    /// Index into a handful of addresses, so Services often share one.
    ip: usize,
    local: bool,
    /// (node index, conditions).
    endpoints: Vec<(usize, Ep)>,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    let liveness = prop_oneof![
        4 => Just(Liveness::Alive),
        1 => Just(Liveness::HeldDown),
        2 => Just(Liveness::Dead)
    ];
    (
        liveness,
        prop::bool::weighted(0.15),
        any::<bool>(),
        prop::option::weighted(0.9, -2i8..3),
    )
        .prop_map(|(liveness, excluded, zone_a, preference)| NodeSpec {
            liveness,
            excluded,
            zone_a,
            preference,
        })
}

fn svc_spec() -> impl Strategy<Value = SvcSpec> {
    let ep = prop_oneof![3 => Just(Ep::Ready), 1 => Just(Ep::Draining), 1 => Just(Ep::Gone)];
    (
        0..4usize,
        any::<bool>(),
        prop::collection::vec((0..8usize, ep), 0..4),
    )
        .prop_map(|(ip, local, endpoints)| SvcSpec {
            ip,
            local,
            endpoints,
        })
}

fn addr(i: usize) -> String {
    format!("192.0.2.{}", 10 + i)
}

fn cluster(nodes: &[NodeSpec], services: &[SvcSpec], zone_only: bool) -> Cluster {
    let selectors = if zone_only {
        "[{matchLabels: {zone: a}}]"
    } else {
        "[]"
    };
    let mut c = Cluster::new()
        .pool("p", &["192.0.2.0/24"])
        .l2("a", &["p"], selectors, &["eth0"]);
    for (i, n) in nodes.iter().enumerate() {
        let mut labels = vec![format!("zone: {}", if n.zone_a { "a" } else { "b" })];
        if n.excluded {
            labels.push(format!("{EXCLUDE_LABEL}: \"\""));
        }
        let pref = n.preference.map_or("bad".into(), |p| p.to_string());
        let meta = format!(
            "labels: {{{}}}, annotations: {{{PREFERENCE_ANNOTATION}: \"{pref}\"}}",
            labels.join(", ")
        );
        c = c.node_with(&format!("n{i}"), &meta, "[]");
    }
    for (i, s) in services.iter().enumerate() {
        let name = format!("s{i}");
        c = c.service(&name, &[&addr(s.ip)], s.local);
        let eps: Vec<(String, String, Ep)> = s
            .endpoints
            .iter()
            .enumerate()
            .map(|(j, (n, ep))| (format!("10.244.{i}.{j}"), format!("n{n}"), *ep))
            .collect();
        if !eps.is_empty() {
            let eps: Vec<(&str, &str, Ep)> = eps
                .iter()
                .map(|(a, n, e)| (a.as_str(), n.as_str(), *e))
                .collect();
            c = c.slice(&format!("{name}-a"), &name, &eps);
        }
    }
    c
}

/// The nodes that can serve `s` by the documented rules, computed independently.
fn serving_nodes(s: &SvcSpec) -> Vec<String> {
    let ready = s.endpoints.iter().any(|(_, e)| matches!(e, Ep::Ready));
    s.endpoints
        .iter()
        .filter(|(_, e)| matches!(e, Ep::Ready) || (!ready && matches!(e, Ep::Draining)))
        .map(|(n, _)| format!("n{n}"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn one_live_owner_per_address_and_everyone_agrees(
        nodes in prop::collection::vec(node_spec(), 1..7),
        services in prop::collection::vec(svc_spec(), 1..6),
        zone_only in any::<bool>(),
    ) {
        let c = cluster(&nodes, &services, zone_only);
        let liveness = |name: &str| -> Liveness {
            name[1..].parse::<usize>().ok().and_then(|i| nodes.get(i)).map_or(Liveness::Dead, |n| n.liveness)
        };
        let e = elect(&c.snapshot("n0"), None, liveness);

        // Every address is either announced or explained, never both.
        let mut addrs: Vec<IpAddr> = services.iter().map(|s| ip(&addr(s.ip))).collect();
        addrs.sort();
        addrs.dedup();
        let mut seen: Vec<IpAddr> =
            e.assignments.keys().chain(e.unannounced.keys()).copied().collect();
        seen.sort();
        prop_assert_eq!(&seen, &addrs);

        for (ip_, a) in &e.assignments {
            prop_assert_eq!(&a.candidates[0].node, &a.node);
            for cand in &a.candidates {
                let i: usize = cand.node[1..].parse().unwrap();
                let n = &nodes[i];
                prop_assert!(n.liveness != Liveness::Dead, "{} is dead", cand.node);
                prop_assert!(!n.excluded && (!zone_only || n.zone_a), "{} not eligible", cand.node);
                prop_assert_eq!(cand.held_down, n.liveness == Liveness::HeldDown);
            }
            // Nobody better was passed over.
            let best = |c: &Candidate| (Reverse(c.serves), c.held_down, Reverse(c.preference), c.hash);
            prop_assert!(a.candidates.windows(2).all(|w| best(&w[0]) <= best(&w[1])));
            prop_assert!(!a.services.is_empty());
            for key in &a.services {
                let s = &services[key.name[1..].parse::<usize>().unwrap()];
                prop_assert_eq!(ip(&addr(s.ip)), *ip_);
                let serving = serving_nodes(s);
                prop_assert!(!serving.is_empty(), "{} has no serving endpoint", key);
                if s.local {
                    prop_assert!(serving.contains(&a.node), "{} not on {}", key, a.node);
                }
            }
        }

        // Another speaker, which received everything in another order, agrees.
        let mut docs = c.docs.clone();
        docs.reverse();
        let last = format!("n{}", nodes.len() - 1);
        prop_assert_eq!(&elect(&snapshot_of(docs.iter(), &last), None, liveness), &e);
    }
}
