use super::*;
use crate::ipvs::fixtures::{rs, table, vs};
use crate::ipvs::model::{Proto, RealServer};
use crate::ipvs::scheduler::SchedulerKind;

fn local(addr: &str) -> RealServer {
    RealServer {
        local: true,
        ..rs(addr, 7000)
    }
}

/// A LoadBalancer IP (Cluster policy, a local and a remote real server), its NodePort, a
/// ClusterIP on two ports sharing the local real server, and a Local-policy virtual server
/// with no local endpoint.
fn sample() -> Table {
    let lb = vs(
        "10.100.0.200",
        80,
        SchedulerKind::Rr,
        vec![local("10.244.1.5"), rs("10.244.2.5", 7000)],
    );
    let mut node_port = vs(
        "10.100.0.11",
        30080,
        SchedulerKind::Rr,
        lb.real_servers.clone(),
    );
    node_port.frontend = Frontend::NodePort;
    let mut cluster = vs(
        "fd00:96::10",
        80,
        SchedulerKind::Rr,
        vec![local("fd00:244:1::5")],
    );
    cluster.frontend = Frontend::ClusterIp;
    cluster.masquerade = false;
    let mut cluster_udp = cluster.clone();
    cluster_udp.key.proto = Proto::Udp;
    let mut local_policy = vs("10.100.0.201", 80, SchedulerKind::Rr, Vec::new());
    local_policy.masquerade = false;
    local_policy.drop = true;
    table(vec![lb, node_port, cluster, cluster_udp, local_policy])
}

fn rendered(elements: &[Element]) -> Vec<String> {
    elements
        .iter()
        .map(|e| format!("{} {}", e.set(), e.render()))
        .collect()
}

#[test]
fn the_sets_and_addresses_follow_the_table() {
    let mut c = Companion::default();
    let changes = c.update(&sample(), None);
    assert_eq!(
        rendered(&changes.add),
        [
            "services4 10.100.0.11 . tcp . 30080",
            "services4 10.100.0.200 . tcp . 80",
            "services4 10.100.0.201 . tcp . 80",
            "services6 fd00:96::10 . tcp . 80",
            "services6 fd00:96::10 . udp . 80",
            "masquerade4 10.100.0.11 . tcp . 30080",
            "masquerade4 10.100.0.200 . tcp . 80",
            "drop4 10.100.0.201 . tcp . 80",
            "hairpin4 10.244.1.5 . 10.244.1.5",
            "hairpin6 fd00:244:1::5 . fd00:244:1::5",
        ]
    );
    assert!(changes.delete.is_empty());
    // The NodePort is on the node's own address: not on the dummy interface.
    let want: Vec<IpAddr> = ["10.100.0.200", "10.100.0.201", "fd00:96::10"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(changes.addresses_added, want);
    assert_eq!(c.addresses().into_iter().collect::<Vec<_>>(), want);
    // Nothing changed, nothing to do.
    assert_eq!(c.update(&sample(), None), Changes::default());
}

#[test]
fn shared_elements_and_addresses_go_with_their_last_user() {
    let mut c = Companion::default();
    let mut t = sample();
    c.update(&t, None);
    let udp = VsKey {
        proto: Proto::Udp,
        addr: "fd00:96::10".parse().unwrap(),
        port: 80,
    };
    t.servers.remove(&udp);
    let changes = c.update(&t, Some(&BTreeSet::from([udp])));
    // The TCP port still uses the address and the hairpin pair.
    assert_eq!(
        rendered(&changes.delete),
        ["services6 fd00:96::10 . udp . 80"]
    );
    assert!(changes.add.is_empty() && !changes.addresses_changed());
    let tcp = VsKey {
        proto: Proto::Tcp,
        ..udp
    };
    t.servers.remove(&tcp);
    let changes = c.update(&t, Some(&BTreeSet::from([tcp])));
    assert_eq!(
        rendered(&changes.delete),
        [
            "services6 fd00:96::10 . tcp . 80",
            "hairpin6 fd00:244:1::5 . fd00:244:1::5"
        ]
    );
    assert_eq!(
        changes.addresses_removed,
        ["fd00:96::10".parse::<IpAddr>().unwrap()]
    );
    // The local pod leaves the LoadBalancer IP but stays behind the NodePort: its pair stays.
    let lb = t.servers.keys().find(|k| k.port == 80).copied().unwrap();
    t.servers.get_mut(&lb).unwrap().real_servers.remove(0);
    let changes = c.update(&t, Some(&BTreeSet::from([lb])));
    assert_eq!(changes, Changes::default());
}

#[test]
fn incremental_updates_end_where_a_full_one_does() {
    let mut incremental = Companion::default();
    let mut t = sample();
    incremental.update(&t, None);
    // Local policy gains a local endpoint; the LoadBalancer IP's policy turns Local.
    let keys: Vec<VsKey> = t.servers.keys().copied().collect();
    for k in &keys {
        let v = t.servers.get_mut(k).unwrap();
        if v.drop {
            v.drop = false;
            v.real_servers = vec![local("10.244.1.9")];
        } else if v.frontend == Frontend::LoadBalancer {
            v.masquerade = false;
        }
    }
    let changes = incremental.update(&t, Some(&keys.iter().copied().collect()));
    assert_eq!(
        rendered(&changes.delete),
        [
            "masquerade4 10.100.0.200 . tcp . 80",
            "drop4 10.100.0.201 . tcp . 80"
        ]
    );
    assert_eq!(rendered(&changes.add), ["hairpin4 10.244.1.9 . 10.244.1.9"]);
    let mut full = Companion::default();
    full.update(&t, None);
    assert_eq!(
        incremental.elements().collect::<Vec<_>>(),
        full.elements().collect::<Vec<_>>()
    );
    assert_eq!(incremental.addresses(), full.addresses());
}

#[test]
fn scripts() {
    let mut c = Companion::default();
    c.update(&sample(), None);
    let full = c.render_full();
    for line in [
        "add table inet ferrolb-ipvs\ndelete table inet ferrolb-ipvs\nadd table inet ferrolb-ipvs\n",
        "add chain inet ferrolb-ipvs prerouting { type filter hook prerouting priority mangle; policy accept; }",
        "add rule inet ferrolb-ipvs prerouting ip daddr . meta l4proto . th dport @drop4 drop",
        "add rule inet ferrolb-ipvs prerouting ip6 daddr . meta l4proto . th dport @masquerade6 meta mark set meta mark | 0x4000",
        "add rule inet ferrolb-ipvs output ip daddr . meta l4proto . th dport @services4 meta mark set meta mark | 0x4000",
        "add rule inet ferrolb-ipvs postrouting meta mark & 0x4000 == 0x4000 masquerade",
        "add rule inet ferrolb-ipvs postrouting ip6 saddr . ip6 daddr @hairpin6 masquerade",
        "add element inet ferrolb-ipvs drop4 { 10.100.0.201 . tcp . 80 }",
        "add element inet ferrolb-ipvs services6 { fd00:96::10 . tcp . 80, fd00:96::10 . udp . 80 }",
    ] {
        assert!(full.contains(line), "{line}\nnot in\n{full}");
    }
    let changes = Changes {
        add: vec![Element::Hairpin("10.244.1.9".parse().unwrap())],
        delete: vec![Element::Drop(VsKey {
            proto: Proto::Sctp,
            addr: "10.100.0.201".parse().unwrap(),
            port: 9,
        })],
        ..Changes::default()
    };
    assert_eq!(
        Companion::render_changes(&changes),
        "delete element inet ferrolb-ipvs drop4 { 10.100.0.201 . sctp . 9 }\n\
         add element inet ferrolb-ipvs hairpin4 { 10.244.1.9 . 10.244.1.9 }\n"
    );
    assert_eq!(
        Companion::render_removal(),
        "add table inet ferrolb-ipvs\ndelete table inet ferrolb-ipvs\n"
    );
}
