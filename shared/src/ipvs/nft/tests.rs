use super::*;
use crate::ipvs::fixtures::{rs, table, vs};
use std::time::Duration;

#[test]
fn full_script_has_one_map_entry_per_virtual_server() {
    let t = table(vec![
        vs(
            "10.96.0.10",
            80,
            SchedulerKind::Rr,
            vec![rs("10.244.1.10", 8080), rs("10.244.2.10", 8080)],
        ),
        vs(
            "fd00:96::10",
            80,
            SchedulerKind::Rr,
            vec![rs("fd00:244:1::10", 8080)],
        ),
    ]);
    let v4 = render_full(&t, Family::Ip);
    assert!(
        v4.contains(
            "add element ip ferrolb services { 10.96.0.10 . tcp . 80 : goto vs-tcp-0a60000a-80 }"
        ),
        "{v4}"
    );
    // rr keeps its real servers in a shared map, declared before the rule that reads it.
    let map = map_name(&t.servers.keys().next().unwrap().clone());
    let rule = format!("dnat ip to ip daddr . tcp dport . numgen inc mod 2 map @{map}\n");
    let decl = format!("add map ip ferrolb {map} {{ typeof ip daddr . tcp dport");
    assert!(v4.contains(&rule), "{v4}");
    assert!(v4.find(&decl).unwrap() < v4.find(&rule).unwrap(), "{v4}");
    assert!(
        v4.contains(&format!("add element ip ferrolb {map} {{ 10.96.0.10 . 80 . 0 : 10.244.1.10 . 8080, 10.96.0.10 . 80 . 1 : 10.244.2.10 . 8080 }}")),
        "{v4}"
    );
    assert!(v4.contains("meta mark set meta mark | 0x4000"));
    assert!(
        !v4.contains("fd00"),
        "IPv6 servers stay out of the ip table"
    );
    let v6 = render_full(&t, Family::Ip6);
    assert!(v6.contains("fd00:96::10 . tcp . 80"), "{v6}");
    assert!(v6.starts_with("add table ip6 ferrolb\ndelete table ip6 ferrolb\n"));
}

#[test]
fn weights_repeat_a_server_and_huge_weights_become_ranges() {
    let mut servers = vec![rs("10.244.1.10", 80), rs("10.244.1.11", 80)];
    servers[0].weight = 3;
    let v = vs("10.96.0.1", 80, SchedulerKind::Wrr, servers);
    let s = render_full(&table(vec![v.clone()]), Family::Ip);
    assert!(s.contains("numgen inc mod 4 map @be-"), "{s}");
    assert!(
        s.contains(
            " 10.96.0.1 . 80 . 2 : 10.244.1.10 . 80, 10.96.0.1 . 80 . 3 : 10.244.1.11 . 80 }"
        ),
        "{s}"
    );
    let mut heavy = v;
    heavy.real_servers[0].weight = 5000;
    let s = render_full(&table(vec![heavy]), Family::Ip);
    assert!(
        s.contains(
            "numgen inc mod 5001 map { 0-4999 : 10.244.1.10 . 80, 5000 : 10.244.1.11 . 80 }"
        ),
        "{s}"
    );
}

#[test]
fn hashing_schedulers_use_jhash_with_the_shared_tables() {
    let servers = vec![rs("10.244.1.10", 80), rs("10.244.1.11", 80)];
    let sh = render_full(
        &table(vec![vs(
            "10.96.0.1",
            80,
            SchedulerKind::Sh,
            servers.clone(),
        )]),
        Family::Ip,
    );
    assert!(
        sh.contains("jhash ip saddr mod 256 seed 0x46654c42 map {"),
        "{sh}"
    );
    let mh = render_full(
        &table(vec![vs("10.96.0.1", 80, SchedulerKind::Mh, servers)]),
        Family::Ip,
    );
    assert!(mh.contains("jhash ip saddr mod 65537 seed"), "{mh}");
    // Every one of the 65537 buckets is covered exactly once by the ranges.
    let body = mh.lines().find(|l| l.contains("jhash")).unwrap();
    let arms = body.split("map {").nth(1).unwrap();
    let mut covered = 0u32;
    for arm in arms.trim_end_matches(" }").split(", ") {
        let range = arm.trim().split(" : ").next().unwrap();
        let (a, b) = range
            .split_once('-')
            .map(|(a, b)| (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap()))
            .unwrap_or_else(|| {
                let x = range.parse().unwrap();
                (x, x)
            });
        assert_eq!(a, covered);
        covered = b + 1;
    }
    assert_eq!(covered as usize, DEFAULT_TABLE_SIZE);
}

#[test]
fn connection_count_schedulers_are_refused_not_replaced() {
    let v = vs(
        "10.96.0.1",
        80,
        SchedulerKind::Lc,
        vec![rs("10.244.1.10", 80)],
    );
    let err = check(&v).unwrap_err();
    assert!(
        err.to_string()
            .contains("scheduler lc needs live connection counts"),
        "{err}"
    );
    assert!(!render_full(&table(vec![v]), Family::Ip).contains("10.96.0.1"));
}

#[test]
fn scheduler_flags_are_refused_not_ignored() {
    let mut v = vs(
        "10.96.0.1",
        80,
        SchedulerKind::Mh,
        vec![rs("10.244.1.10", 80)],
    );
    assert!(check(&v).is_ok());
    v.scheduler_flags.port = true;
    assert_eq!(
        check(&v).unwrap_err().to_string(),
        "tcp/10.96.0.1:80: scheduler mh with flags port is carried out by the ipvs data path only; use it, or remove the flags"
    );
}

#[test]
fn local_policy_without_endpoints_drops() {
    let mut v = vs("10.100.0.200", 80, SchedulerKind::Rr, vec![]);
    v.drop = true;
    let s = render_full(&table(vec![v]), Family::Ip);
    // One chain for every dropping virtual server.
    assert!(
        s.contains("add rule ip ferrolb dropped counter drop"),
        "{s}"
    );
    assert!(
        s.contains("services { 10.100.0.200 . tcp . 80 : goto dropped }"),
        "{s}"
    );
    assert!(!s.contains("vs-tcp"), "{s}");
}

#[test]
fn affinity_uses_per_server_sets_with_the_timeout() {
    let mut v = vs(
        "10.96.0.1",
        80,
        SchedulerKind::Rr,
        vec![rs("10.244.1.10", 80), rs("10.244.1.11", 80)],
    );
    v.affinity = Some(Duration::from_secs(60));
    let s = render_full(&table(vec![v]), Family::Ip);
    // Named after the real server (10.244.1.11 = 0af4010b, port 80), not its position.
    assert!(s.contains("add set ip ferrolb vs-tcp-0a600001-80-a-0af4010b-80 { type ipv4_addr; flags dynamic,timeout; timeout 60s; }"), "{s}");
    assert!(
        s.contains(
            "ip saddr @vs-tcp-0a600001-80-a-0af4010a-80 goto vs-tcp-0a600001-80-s-0af4010a-80"
        ),
        "{s}"
    );
    assert!(
        s.contains("update @vs-tcp-0a600001-80-a-0af4010b-80 { ip saddr }"),
        "{s}"
    );
}

#[test]
fn affinity_of_remaining_servers_survives_endpoint_changes() {
    let mut old = vs(
        "10.96.0.1",
        80,
        SchedulerKind::Rr,
        vec![
            rs("10.244.1.10", 80),
            rs("10.244.1.11", 80),
            rs("10.244.1.12", 80),
        ],
    );
    old.affinity = Some(Duration::from_secs(60));
    // The first one leaves: the others move up a position, and keep their sets.
    let mut new = old.clone();
    new.real_servers.remove(0);
    let s = render_changes(
        &table(vec![old.clone()]),
        &table(vec![new.clone()]),
        Family::Ip,
    );
    assert!(
        s.contains("delete set ip ferrolb vs-tcp-0a600001-80-a-0af4010a-80\n"),
        "{s}"
    );
    assert_eq!(s.matches("delete set").count(), 1, "{s}");
    assert!(
        s.contains("flush chain ip ferrolb vs-tcp-0a600001-80-s-0af4010b-80\n"),
        "the kept server's chain gets its rule anew: {s}"
    );
    // A new timeout cannot be set on a set: every set is made again.
    let mut longer = new.clone();
    longer.affinity = Some(Duration::from_secs(90));
    let s = render_changes(&table(vec![new.clone()]), &table(vec![longer]), Family::Ip);
    assert_eq!(s.matches("delete set").count(), 2, "{s}");
    // No affinity any more: every set goes.
    let mut none = new.clone();
    none.affinity = None;
    let s = render_changes(&table(vec![new]), &table(vec![none]), Family::Ip);
    assert_eq!(s.matches("delete set").count(), 2, "{s}");
}

#[test]
fn changes_touch_only_the_changed_server() {
    let a = vs(
        "10.96.0.1",
        80,
        SchedulerKind::Rr,
        vec![rs("10.244.1.10", 80)],
    );
    let b = vs(
        "10.96.0.2",
        80,
        SchedulerKind::Rr,
        vec![rs("10.244.1.20", 80)],
    );
    let old = table(vec![a.clone(), b.clone()]);
    let mut b2 = b.clone();
    b2.real_servers.push(rs("10.244.1.21", 80));
    let new = table(vec![a.clone(), b2]);
    let s = render_changes(&old, &new, Family::Ip);
    assert_eq!(
        s.lines().filter(|l| l.contains("0a600001")).count(),
        0,
        "untouched server appears: {s}"
    );
    // One more real server: a new counter range, so the rule is replaced with the elements.
    let map = map_name(&b.key);
    assert!(
        s.contains(&format!(
            "flush chain ip ferrolb vs-tcp-0a600002-80\n\
             delete element ip ferrolb {map} {{ 10.96.0.2 . 80 . 0 }}\n\
             add rule ip ferrolb vs-tcp-0a600002-80 meta mark set meta mark | 0x4000 meta l4proto tcp dnat ip to ip daddr . tcp dport . numgen inc mod 2 map @{map}\n"
        )),
        "{s}"
    );
    assert!(s.ends_with(&format!("add element ip ferrolb {map} {{ 10.96.0.2 . 80 . 0 : 10.244.1.20 . 80, 10.96.0.2 . 80 . 1 : 10.244.1.21 . 80 }}\n")), "{s}");
    assert!(render_changes(&old, &old, Family::Ip).is_empty());
    // A real server replaced by another: only its element, no rule, and no declaration of
    // the map its old element was in.
    let mut b3 = b.clone();
    b3.real_servers[0] = rs("10.244.1.22", 80);
    let s = render_changes(&old, &table(vec![a.clone(), b3]), Family::Ip);
    assert_eq!(
        s,
        format!(
            "delete element ip ferrolb {map} {{ 10.96.0.2 . 80 . 0 }}\n\
             add element ip ferrolb {map} {{ 10.96.0.2 . 80 . 0 : 10.244.1.22 . 80 }}\n"
        )
    );
    let removed = render_changes(&old, &table(vec![a]), Family::Ip);
    assert!(
        removed.contains("delete element ip ferrolb services { 10.96.0.2 . tcp . 80 }"),
        "{removed}"
    );
    assert!(
        removed.contains("delete chain ip ferrolb vs-tcp-0a600002-80"),
        "{removed}"
    );
    assert!(
        removed.contains(&format!(
            "delete element ip ferrolb {map} {{ 10.96.0.2 . 80 . 0 }}"
        )),
        "{removed}"
    );
}

#[test]
fn element_changes_are_the_scripts_element_replacements_or_none() {
    let a = vs(
        "10.96.0.1",
        80,
        SchedulerKind::Rr,
        vec![rs("10.244.1.10", 80), rs("10.244.1.11", 80)],
    );
    let b = vs(
        "10.96.0.2",
        80,
        SchedulerKind::Wrr,
        vec![rs("10.244.1.20", 80)],
    );
    let old = table(vec![a.clone(), b.clone()]);
    let keys: BTreeSet<VsKey> = [a.key, b.key].into();
    let changes =
        |new: &Table| element_changes_for(&old, new, &keys, Family::Ip, RoundRobin::PerService);
    // The second real server of `a` replaced: counter value 1 gets the new one, as the
    // script's delete and add of that one element.
    let mut a2 = a.clone();
    a2.real_servers[1] = rs("10.244.1.12", 8080);
    let new = table(vec![a2, b.clone()]);
    let slot = Slot {
        addr: a.key.addr,
        port: 80,
        n: 1,
    };
    let want = Replacement {
        map: map_name(&a.key),
        slots: vec![(slot, "10.244.1.12:8080".parse().unwrap())],
    };
    assert_eq!(changes(&new), Some(vec![want]));
    assert_eq!(
        render_changes(&old, &new, Family::Ip),
        format!(
            "delete element ip ferrolb {map} {{ 10.96.0.1 . 80 . 1 }}\n\
             add element ip ferrolb {map} {{ 10.96.0.1 . 80 . 1 : 10.244.1.12 . 8080 }}\n",
            map = map_name(&a.key)
        )
    );
    // Nothing changed: nothing to write.
    assert_eq!(changes(&old), Some(vec![]));
    // The IPv6 side of the same change has nothing of it.
    assert_eq!(
        element_changes_for(&old, &new, &keys, Family::Ip6, RoundRobin::PerService),
        Some(vec![])
    );
    // Anything that changes a rule is not an element replacement.
    let mut grown = b.clone();
    grown.real_servers.push(rs("10.244.1.21", 80));
    assert_eq!(
        changes(&table(vec![a.clone(), grown])),
        None,
        "counter range"
    );
    assert_eq!(changes(&table(vec![a.clone()])), None, "removed");
    let c = vs(
        "10.96.0.3",
        80,
        SchedulerKind::Rr,
        vec![rs("10.244.1.30", 80)],
    );
    let with_c = table(vec![a.clone(), b.clone(), c.clone()]);
    let keys_c: BTreeSet<VsKey> = [a.key, b.key, c.key].into();
    assert_eq!(
        element_changes_for(&old, &with_c, &keys_c, Family::Ip, RoundRobin::PerService),
        None,
        "added"
    );
    let mut hashed = a.clone();
    hashed.scheduler = SchedulerKind::Sh;
    assert_eq!(changes(&table(vec![hashed, b.clone()])), None, "scheduler");
    // A real server becoming local changes the hairpin set: not elements of a backend map.
    let mut local = a.clone();
    local.real_servers[1].local = true;
    assert_eq!(changes(&table(vec![local, b])), None, "hairpin");
}

#[test]
fn runs_collapse_consecutive_owners() {
    assert_eq!(
        runs(&[0, 0, 1, 1, 1, 0]),
        [
            ("0-1".to_string(), 0),
            ("2-4".to_string(), 1),
            ("5".to_string(), 0)
        ]
    );
}

#[test]
fn proxy_target_redirects_and_ignores_backend_churn() {
    let a = vs(
        "10.96.0.1",
        80,
        SchedulerKind::Lc,
        vec![rs("10.244.1.10", 80)],
    );
    let ports: BTreeMap<VsKey, u16> = [(a.key, 40001)].into();
    let old = table(vec![a.clone()]);
    let s = render_full_with(&old, Family::Ip, Target::Proxy(&ports));
    assert!(
        s.contains("add rule ip ferrolb vs-tcp-0a600001-80 meta l4proto tcp redirect to :40001"),
        "{s}"
    );
    // lc is fine here: the proxy has connection counts.
    let mut more = a.clone();
    more.real_servers.push(rs("10.244.1.11", 80));
    assert!(
        render_changes_with(&old, &table(vec![more]), Family::Ip, Target::Proxy(&ports)).is_empty()
    );
    // From no endpoint (dropping) to some: the rule changes.
    let mut empty = a.clone();
    empty.real_servers.clear();
    let s = render_changes_with(&table(vec![empty]), &old, Family::Ip, Target::Proxy(&ports));
    assert!(s.contains("redirect to :40001"), "{s}");
}

#[test]
fn hairpin_pairs_are_the_local_real_servers() {
    let mut local = rs("10.244.1.10", 80);
    local.local = true;
    let a = vs(
        "10.96.0.1",
        80,
        SchedulerKind::Rr,
        vec![local.clone(), rs("10.244.2.10", 80)],
    );
    let s = render_full(&table(vec![a.clone()]), Family::Ip);
    assert!(
        s.contains("add set ip ferrolb hairpin { type ipv4_addr . ipv4_addr; }"),
        "{s}"
    );
    assert!(
        s.contains("postrouting ct status dnat ip saddr . ip daddr @hairpin masquerade"),
        "{s}"
    );
    assert!(
        s.contains("add element ip ferrolb hairpin { 10.244.1.10 . 10.244.1.10 }"),
        "only the local one: {s}"
    );
    // Backend churn that keeps the local set leaves the set alone; a change replaces it.
    let mut b = a.clone();
    b.real_servers.pop();
    let s = render_changes(&table(vec![a.clone()]), &table(vec![b]), Family::Ip);
    assert!(!s.contains("hairpin"), "{s}");
    let mut c = a.clone();
    c.real_servers.remove(0);
    let s = render_changes(&table(vec![a.clone()]), &table(vec![c]), Family::Ip);
    assert!(s.contains("flush set ip ferrolb hairpin\n"), "{s}");
    assert!(!s.contains("add element ip ferrolb hairpin"), "{s}");
    // The proxy connects from the node itself: no pairs.
    let ports: BTreeMap<VsKey, u16> = [(a.key, 40001)].into();
    let s = render_full_with(&table(vec![a]), Family::Ip, Target::Proxy(&ports));
    assert!(!s.contains("add element ip ferrolb hairpin"), "{s}");
}

#[test]
fn a_first_program_is_the_full_program_with_its_elements_as_data() {
    let mut servers: Vec<VirtualServer> = (0..40)
        .map(|i| {
            let backends = (0..3)
                .map(|b| rs(&format!("10.244.{b}.{i}"), 8080))
                .collect();
            vs(&format!("10.96.0.{i}"), 80, SchedulerKind::Rr, backends)
        })
        .collect();
    let mut sticky = vs(
        "10.96.1.1",
        443,
        SchedulerKind::Mh,
        vec![rs("10.244.9.1", 8443), rs("10.244.9.2", 8443)],
    );
    sticky.affinity = Some(Duration::from_secs(60));
    servers.push(sticky);
    let mut local = rs("10.244.9.9", 8080);
    local.local = true;
    servers.push(vs("10.96.1.2", 80, SchedulerKind::Rr, vec![local]));
    let t = table(servers);
    for round_robin in [RoundRobin::PerService, RoundRobin::Shared] {
        let target = Target::Kernel(round_robin);
        let full = render_full_with(&t, Family::Ip, target);
        let first = render_first(&t, Family::Ip, target);
        first_program_matches(&t, &full, &first, round_robin);
    }
}

fn first_program_matches(t: &Table, full: &str, first: &FirstProgram, round_robin: RoundRobin) {
    assert!(first.script.starts_with("create table ip ferrolb\n"));
    // No steering in the script: no services element; the hairpin pairs are harmless early.
    assert!(!first.script.contains("add element ip ferrolb services"));
    assert!(!first.script.contains("add element ip ferrolb be-"));
    assert!(first.script.contains("add element ip ferrolb hairpin"));
    // Per service: a chain each. Shared: the 40 virtual servers of 3 slots share one chain
    // (one rule) per backend map they use; the local one has a chain of one slot.
    let own = first.script.matches("add chain ip ferrolb vs-tcp-").count();
    let shared = first
        .script
        .matches("add chain ip ferrolb rr-tcp-3-masq-")
        .count();
    let rules = first
        .script
        .matches("add rule ip ferrolb rr-tcp-3-masq-")
        .count();
    let three = t.servers.values().filter(|v| v.real_servers.len() == 3);
    let buckets: BTreeSet<u8> = three.map(|v| backends::bucket(&v.key)).collect();
    match round_robin {
        // 42 virtual servers, and the affinity server's two per-server chains.
        RoundRobin::PerService => assert_eq!((own, shared), (44, 0)),
        RoundRobin::Shared => {
            assert_eq!(own, 3, "{}", first.script);
            assert_eq!(shared, buckets.len());
            assert_eq!(rules, shared);
            assert!(first.script.contains("add chain ip ferrolb rr-tcp-1-masq-"));
        }
    }
    // The affinity server keeps a chain of its own.
    assert!(
        first
            .script
            .contains("add chain ip ferrolb vs-tcp-0a600101-443\n")
    );
    // Every backend map is declared in the script, before the rules that read it.
    for r in &first.backends {
        assert!(
            first
                .script
                .contains(&format!("add map ip ferrolb {} ", r.map))
        );
    }
    // The same elements as the one-transaction program, which replaces the table instead.
    let slots: usize = first.backends.iter().map(|r| r.slots.len()).sum();
    assert_eq!(slots, 40 * 3 + 1);
    let mut services: Vec<String> = first
        .services
        .iter()
        .map(|(k, chain)| format!("{} . {} . {} : goto {chain}", k.addr, k.proto, k.port))
        .collect();
    let listed = full
        .lines()
        .find(|l| l.starts_with("add element ip ferrolb services"))
        .unwrap();
    let listed = listed.split_once("{ ").unwrap().1.trim_end_matches(" }");
    let mut whole: Vec<String> = listed.split(", ").map(String::from).collect();
    services.sort_unstable();
    whole.sort_unstable();
    assert_eq!(services, whole);
    // The rest of the script is the full program's structure.
    for line in first.script.lines().skip(1) {
        assert!(
            full.lines().any(|l| l == line),
            "{line} not in the full program"
        );
    }
}

const SHARED: Target<'static> = Target::Kernel(RoundRobin::Shared);

/// The shared round-robin chain of `key` with `slots` slots (masquerading, as the fixtures).
fn rr_chain(key: &VsKey, slots: u32) -> String {
    format!("rr-tcp-{slots}-masq-{:02x}", backends::bucket(key))
}

/// A virtual server on port 80 of another address whose backend map is `key`'s.
fn same_map_as(key: &VsKey, servers: Vec<RealServer>) -> VirtualServer {
    let same = (1..=4096u32).find_map(|i| {
        let addr = format!("10.97.{}.{}", i / 256, i % 256);
        let v = vs(&addr, 80, SchedulerKind::Rr, servers.clone());
        (backends::bucket(&v.key) == backends::bucket(key)).then_some(v)
    });
    same.expect("4,096 addresses over 256 maps: one shares the map")
}

#[test]
fn shared_round_robin_chains_serve_every_virtual_server_alike() {
    let two = || vec![rs("10.244.1.10", 8080), rs("10.244.2.10", 8080)];
    let a = vs("10.96.0.10", 80, SchedulerKind::Rr, two());
    let b = same_map_as(&a.key, two());
    let six = vs(
        "fd00:96::10",
        80,
        SchedulerKind::Rr,
        vec![rs("fd00:244:1::10", 8080)],
    );
    let t = table(vec![a.clone(), b.clone(), six]);
    let v4 = render_full_with(&t, Family::Ip, SHARED);
    let chain = rr_chain(&a.key, 2);
    for k in [&a.key, &b.key] {
        let element = format!("{} . tcp . 80 : goto {chain}", k.addr);
        assert!(v4.contains(&element), "{v4}");
    }
    // One chain, one rule for both, reading the map both keep their real servers in,
    // declared before it.
    let map = map_name(&a.key);
    assert_eq!(
        v4.matches(&format!("add chain ip ferrolb {chain}\n"))
            .count(),
        1
    );
    let rule = format!(
        "add rule ip ferrolb {chain} meta mark set meta mark | 0x4000 meta l4proto tcp dnat ip to ip daddr . tcp dport . numgen inc mod 2 map @{map}\n"
    );
    assert_eq!(v4.matches(&rule).count(), 1, "{v4}");
    let decl = format!("add map ip ferrolb {map} {{ typeof ip daddr . tcp dport");
    assert!(v4.find(&decl).unwrap() < v4.find(&rule).unwrap(), "{v4}");
    assert!(
        v4.contains("10.96.0.10 . 80 . 1 : 10.244.2.10 . 8080"),
        "{v4}"
    );
    assert!(!v4.contains("vs-tcp"), "no chain of its own: {v4}");
    assert!(
        !v4.contains("fd00"),
        "IPv6 servers stay out of the ip table"
    );
    let v6 = render_full_with(&t, Family::Ip6, SHARED);
    assert!(
        v6.contains("fd00:96::10 . tcp . 80 : goto rr-tcp-1-masq-"),
        "{v6}"
    );
}

#[test]
fn shared_chains_come_and_go_with_their_users() {
    let a = vs(
        "10.96.0.1",
        80,
        SchedulerKind::Rr,
        vec![rs("10.244.1.10", 80)],
    );
    let b = same_map_as(&a.key, vec![rs("10.244.1.20", 80)]);
    let (one, two, map) = (rr_chain(&a.key, 1), rr_chain(&a.key, 2), map_name(&a.key));
    let b_addr = b.key.addr;
    let old = table(vec![a.clone(), b.clone()]);
    let mut b2 = b.clone();
    b2.real_servers.push(rs("10.244.1.21", 80));
    let new = table(vec![a.clone(), b2]);
    let changes = |from: &Table, to: &Table| render_changes_with(from, to, Family::Ip, SHARED);
    // One more real server: another chain (created, as no virtual server used it yet), the
    // element replaced; a still uses the old chain, which stays.
    assert_eq!(
        changes(&old, &new),
        format!(
            "add chain ip ferrolb {two}\n\
             add rule ip ferrolb {two} meta mark set meta mark | 0x4000 meta l4proto tcp dnat ip to ip daddr . tcp dport . numgen inc mod 2 map @{map}\n\
             delete element ip ferrolb services {{ {b_addr} . tcp . 80 }}\n\
             delete element ip ferrolb {map} {{ {b_addr} . 80 . 0 }}\n\
             add element ip ferrolb services {{ {b_addr} . tcp . 80 : goto {two} }}\n\
             add element ip ferrolb {map} {{ {b_addr} . 80 . 0 : 10.244.1.20 . 80, {b_addr} . 80 . 1 : 10.244.1.21 . 80 }}\n"
        )
    );
    // Back again: the chain nobody uses any more goes, after the element that jumped to it.
    let back = changes(&new, &old);
    assert!(
        back.ends_with(&format!(
            "delete chain ip ferrolb {two}\n\
             add element ip ferrolb services {{ {b_addr} . tcp . 80 : goto {one} }}\n\
             add element ip ferrolb {map} {{ {b_addr} . 80 . 0 : 10.244.1.20 . 80 }}\n"
        )),
        "{back}"
    );
    assert!(!back.contains("add chain"), "{back}");
    assert!(changes(&old, &old).is_empty());
    // A real server replaced by another: only its element.
    let mut b3 = b.clone();
    b3.real_servers[0] = rs("10.244.1.22", 80);
    assert_eq!(
        changes(&old, &table(vec![a.clone(), b3])),
        format!(
            "delete element ip ferrolb {map} {{ {b_addr} . 80 . 0 }}\n\
             add element ip ferrolb {map} {{ {b_addr} . 80 . 0 : 10.244.1.22 . 80 }}\n"
        )
    );
    // b leaves: a still jumps to the chain; then a leaves too, and the chain goes.
    let only_a = table(vec![a]);
    let removed = changes(&old, &only_a);
    assert!(removed.contains(&format!(
        "delete element ip ferrolb services {{ {b_addr} . tcp . 80 }}"
    )));
    assert!(!removed.contains("delete chain"), "{removed}");
    let empty = changes(&only_a, &Table::default());
    assert!(
        empty.ends_with(&format!("delete chain ip ferrolb {one}\n")),
        "{empty}"
    );
}
