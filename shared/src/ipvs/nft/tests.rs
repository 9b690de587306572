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
    assert!(
        s.contains("add rule ip ferrolb vs-tcp-0a6400c8-80 counter drop"),
        "{s}"
    );
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
    let changes = |new: &Table| element_changes_for(&old, new, &keys, Family::Ip);
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
        element_changes_for(&old, &new, &keys, Family::Ip6),
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
        element_changes_for(&old, &with_c, &keys_c, Family::Ip),
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
fn a_staged_program_is_the_full_program_cut_in_order() {
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
    let full = render_full(&t, Family::Ip);
    let staged = render_staged(&t, Family::Ip, Target::Kernel, 3);
    assert_eq!(staged.backends.len(), 3, "{staged:?}");
    assert!(staged.setup.starts_with("create table ip ferrolb\n"));
    // Steering comes last, and only there: the services map's elements and the hairpin pairs.
    assert!(staged.commit.contains("add element ip ferrolb services"));
    assert!(staged.commit.contains("add element ip ferrolb hairpin"));
    for part in [&staged.setup, &staged.chains]
        .into_iter()
        .chain(&staged.backends)
    {
        assert!(!part.contains("add element ip ferrolb services"), "{part}");
    }
    // Every backend map is declared in setup, before the chains and elements that use it.
    for part in &staged.backends {
        for line in part.lines() {
            let map = line.split_whitespace().nth(4).unwrap();
            assert!(
                staged.setup.contains(&format!("add map ip ferrolb {map} ")),
                "{map}"
            );
        }
    }
    // The same commands as the one-transaction program, which replaces the table instead.
    let mut cut: Vec<&str> = [&staged.setup, &staged.chains, &staged.commit]
        .into_iter()
        .chain(&staged.backends)
        .flat_map(|s| s.lines())
        .filter(|l| !l.starts_with("create table"))
        .collect();
    let mut whole: Vec<&str> = full
        .lines()
        .filter(|l| !l.ends_with("table ip ferrolb"))
        .collect();
    cut.sort_unstable();
    whole.sort_unstable();
    assert_eq!(cut, whole);
}
