//! The nftables scripts FerroLB renders are accepted by the real kernel, in a throwaway
//! network namespace, as full programs and as incremental changes on top of them.

use ferrolb_e2e::netns::Netns;
use ferrolb_shared::ipvs::fixtures::{self, rs, table};
use ferrolb_shared::ipvs::model::{Proto, Table, VirtualServer, VsKey};
use ferrolb_shared::ipvs::nft::{
    Family, RoundRobin, Target, render_changes, render_changes_with, render_first, render_full,
    render_full_with,
};
use ferrolb_shared::ipvs::scheduler::SchedulerKind;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

/// A network namespace for this test only, deleted on drop (also when the test panics).
/// The nftables side of a test namespace.
trait NftNs {
    fn nft(&self, script: &str) -> Result<(), String>;
    fn list(&self, family: &str) -> String;
}

impl NftNs for Netns {
    fn nft(&self, script: &str) -> Result<(), String> {
        let mut child = self
            .command(&["nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nft (package nftables)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn list(&self, family: &str) -> String {
        let out = self.output(&["nft", "list", "table", family, "ferrolb"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A virtual server on `addr:port` over real servers on port 8080.
fn vs(addr: &str, port: u16, scheduler: SchedulerKind, servers: &[&str]) -> VirtualServer {
    let real_servers = servers.iter().map(|a| rs(a, 8080)).collect();
    fixtures::vs(addr, port, scheduler, real_servers)
}

fn sample() -> Table {
    let mut aff = vs(
        "10.96.0.4",
        80,
        SchedulerKind::Rr,
        &["10.244.1.1", "10.244.1.2"],
    );
    aff.affinity = Some(Duration::from_secs(30));
    // A local real server: its hairpin pair goes into the `hairpin` set.
    aff.real_servers[0].local = true;
    let mut dropped = vs("10.96.0.5", 80, SchedulerKind::Rr, &[]);
    dropped.drop = true;
    let mut udp = vs(
        "10.96.0.6",
        53,
        SchedulerKind::Wrr,
        &["10.244.1.1", "10.244.2.1"],
    );
    udp.key.proto = Proto::Udp;
    udp.real_servers[0].weight = 3;
    table(vec![
        vs(
            "10.96.0.1",
            80,
            SchedulerKind::Rr,
            &["10.244.1.1", "10.244.2.1", "10.244.3.1"],
        ),
        vs(
            "10.96.0.2",
            80,
            SchedulerKind::Sh,
            &["10.244.1.1", "10.244.2.1"],
        ),
        vs(
            "10.96.0.3",
            80,
            SchedulerKind::Mh,
            &["10.244.1.1", "10.244.2.1", "10.244.3.1"],
        ),
        aff,
        dropped,
        udp,
        vs(
            "fd00:96::1",
            80,
            SchedulerKind::Dh,
            &["fd00:244:1::1", "fd00:244:2::1"],
        ),
        vs("fd00:96::2", 443, SchedulerKind::Rr, &["fd00:244:1::1"]),
    ])
}

/// The first program (structure through `nft`, elements through netlink) builds exactly the
/// table the one-transaction program builds: for the sample in both round-robin layouts, and
/// for 2,400 virtual servers × 10 real servers (transactions and messages cut by size, both
/// families).
#[test]
fn a_first_program_builds_the_same_table_and_refuses_a_stale_one() {
    use ferrolb_speaker::dataplane::nftables::write_first_elements;
    let (own, shared) = (RoundRobin::PerService, RoundRobin::Shared);
    for (t, round_robin, what) in [
        (sample(), own, "sample"),
        (sample(), shared, "sample, shared chains"),
        (bulk(2000, 400), shared, "bulk, shared chains"),
    ] {
        let (first_ns, whole_ns) = (Netns::new("nft", "f"), Netns::new("nft", "w"));
        let target = Target::Kernel(round_robin);
        for fam in [Family::Ip, Family::Ip6] {
            let first = render_first(&t, fam, target);
            first_ns
                .nft(&first.script)
                .unwrap_or_else(|e| panic!("{what} script {fam:?}: {e}"));
            first_ns
                .enter(|| write_first_elements(fam, &first))
                .unwrap_or_else(|e| panic!("{what} elements {fam:?}: {e}"));
            whole_ns
                .nft(&render_full_with(&t, fam, target))
                .unwrap_or_else(|e| panic!("{what} full {fam:?}: {e}"));
            // A table exists now: the script refuses to build over it.
            assert!(first_ns.nft(&first.script).is_err(), "{what} {fam:?}");
        }
        for fam in ["ip", "ip6"] {
            let (first, whole) = (first_ns.list(fam), whole_ns.list(fam));
            assert!(first.contains(" . tcp . "), "{first}");
            assert_eq!(first, whole, "{what} {fam}");
        }
    }
}

/// `v4` + `v6` round-robin virtual servers of 10 real servers each.
fn bulk(v4: u32, v6: u32) -> Table {
    let servers = (0..v4 + v6).map(|i| {
        let (vip, pods): (String, Vec<String>) = if i < v4 {
            let pods = (0..10).map(|b| format!("10.{}.{}.{b}", 100 + i / 256, i % 256));
            (format!("10.96.{}.{}", i / 256, i % 256), pods.collect())
        } else {
            let pods = (0..10).map(|b| format!("fd00:244:{i:x}::{b}"));
            (format!("fd00:96::{i:x}"), pods.collect())
        };
        let pods: Vec<&str> = pods.iter().map(String::as_str).collect();
        vs(&vip, 80, SchedulerKind::Rr, &pods)
    });
    table(servers.collect())
}

#[test]
fn full_programs_and_changes_are_accepted_by_the_kernel() {
    programs_and_changes(RoundRobin::PerService);
    programs_and_changes(RoundRobin::Shared);
}

fn programs_and_changes(round_robin: RoundRobin) {
    let target = Target::Kernel(round_robin);
    let ns = Netns::new("nft", "a");
    let t = sample();
    for fam in [Family::Ip, Family::Ip6] {
        ns.nft(&render_full_with(&t, fam, target))
            .unwrap_or_else(|e| panic!("full {fam:?}: {e}"));
    }
    let v4 = ns.list("ip");
    for needle in [
        "10.96.0.1 . tcp . 80",
        "10.96.0.6 . udp . 53",
        "jhash ip saddr mod 65537",
        "numgen inc mod 4",
        "timeout 30s",
        "10.244.1.1 . 10.244.1.1",
    ] {
        assert!(v4.contains(needle), "{needle} missing from:\n{v4}");
    }
    assert!(ns.list("ip6").contains("fd00:96::2 . tcp . 443"));

    // Change one server's backends, turn affinity off on another, remove one, add one.
    let mut next = t.clone();
    let key = |a: &str, p: u16| VsKey {
        proto: Proto::Tcp,
        addr: a.parse().unwrap(),
        port: p,
    };
    next.servers
        .get_mut(&key("10.96.0.1", 80))
        .unwrap()
        .real_servers
        .pop();
    next.servers
        .get_mut(&key("10.96.0.4", 80))
        .unwrap()
        .affinity = None;
    next.servers.remove(&key("10.96.0.2", 80));
    let added = vs("10.96.0.9", 8443, SchedulerKind::Rr, &["10.244.9.9"]);
    next.servers.insert(added.key, added);
    let script = render_changes_with(&t, &next, Family::Ip, target);
    ns.nft(&script)
        .unwrap_or_else(|e| panic!("changes: {e}\n{script}"));
    let v4 = ns.list("ip");
    assert!(!v4.contains("10.96.0.2 . tcp . 80"), "{v4}");
    assert!(v4.contains("10.96.0.9 . tcp . 8443"), "{v4}");
    assert!(
        !v4.contains("timeout 30s"),
        "the affinity sets must be gone:\n{v4}"
    );
    // rr keeps its real servers in a shared map: two left, the third's element gone.
    assert!(v4.contains("numgen inc mod 2 map @be-"), "{v4}");
    assert!(
        v4.contains("10.96.0.1 . 80 . 1 : 10.244.2.1 . 8080"),
        "{v4}"
    );
    assert!(!v4.contains("10.96.0.1 . 80 . 2 :"), "{v4}");
    // The same program as one built from nothing: shared chains created and deleted as their
    // users came and went (the order of the chains aside).
    let fresh = Netns::new("nft", "r");
    fresh
        .nft(&render_full_with(&next, Family::Ip, target))
        .unwrap();
    let lines = |listing: String| {
        let mut l: Vec<String> = listing.lines().map(String::from).collect();
        l.sort_unstable();
        l
    };
    assert_eq!(lines(v4.clone()), lines(fresh.list("ip")), "{v4}");
    let rr_chain = match round_robin {
        RoundRobin::PerService => "chain vs-tcp-0a600001-80 {",
        RoundRobin::Shared => "chain rr-tcp-",
    };
    assert!(v4.contains(rr_chain), "{v4}");

    // A real server replaced by another: elements only, on top of the kernel's state.
    let mut moved = next.clone();
    moved
        .servers
        .get_mut(&key("10.96.0.1", 80))
        .unwrap()
        .real_servers[1] = rs("10.244.7.7", 8080);
    let script = render_changes_with(&next, &moved, Family::Ip, target);
    assert!(!script.contains("rule"), "{script}");
    ns.nft(&script)
        .unwrap_or_else(|e| panic!("in place: {e}\n{script}"));
    let v4 = ns.list("ip");
    assert!(
        v4.contains("10.96.0.1 . 80 . 1 : 10.244.7.7 . 8080"),
        "{v4}"
    );
    assert!(!v4.contains("10.96.0.1 . 80 . 1 : 10.244.2.1 "), "{v4}");

    // The userspace path's program: redirects to local proxy ports, on top of nothing.
    let ports = t
        .servers
        .keys()
        .enumerate()
        .map(|(i, k)| (*k, 40000 + i as u16))
        .collect();
    let proxy = render_full_with(&t, Family::Ip6, Target::Proxy(&ports));
    ns.nft(&proxy)
        .unwrap_or_else(|e| panic!("proxy: {e}\n{proxy}"));
    assert!(ns.list("ip6").contains("redirect to :"));

    // A full program replaces whatever is there, stale or not.
    ns.nft(&render_full_with(&t, Family::Ip, target)).unwrap();
    assert!(ns.list("ip").contains("10.96.0.2 . tcp . 80"));
}

/// Real servers replaced behind rules that stay (round robin v4 and v6, weighted UDP): the
/// speaker writes the elements through netlink, and the kernel then holds exactly what
/// `nft -f` of the change script gives; a change the kernel refuses leaves the table as it
/// was.
#[test]
fn element_changes_through_netlink_equal_the_nft_script() {
    use ferrolb_shared::ipvs::nft::element_changes_for;
    use ferrolb_speaker::dataplane::nftables::write_elements;
    let (script_ns, netlink_ns) = (Netns::new("nft", "e"), Netns::new("nft", "n"));
    let t = sample();
    let mut next = t.clone();
    let key = |a: &str, p: u16, proto: Proto| VsKey {
        proto,
        addr: a.parse().unwrap(),
        port: p,
    };
    let mut replace = |k: VsKey, i: usize, to: &str, port: u16| {
        next.servers.get_mut(&k).unwrap().real_servers[i] = rs(to, port);
    };
    replace(key("10.96.0.1", 80, Proto::Tcp), 1, "10.244.7.7", 9090);
    replace(key("10.96.0.6", 53, Proto::Udp), 1, "10.244.8.8", 5353);
    replace(key("fd00:96::2", 443, Proto::Tcp), 0, "fd00:244:9::9", 8443);
    let keys = t.servers.keys().copied().collect();
    for fam in [Family::Ip, Family::Ip6] {
        for ns in [&script_ns, &netlink_ns] {
            ns.nft(&render_full(&t, fam))
                .unwrap_or_else(|e| panic!("full {fam:?}: {e}"));
        }
        let changes = element_changes_for(&t, &next, &keys, fam, RoundRobin::PerService)
            .unwrap_or_else(|| panic!("{fam:?}: not an element change"));
        assert!(!changes.is_empty(), "{fam:?}");
        let script = render_changes(&t, &next, fam);
        script_ns
            .nft(&script)
            .unwrap_or_else(|e| panic!("script {fam:?}: {e}\n{script}"));
        netlink_ns
            .enter(|| write_elements(fam, &changes))
            .unwrap_or_else(|e| panic!("netlink {fam:?}: {e}"));
    }
    for (fam, needle) in [
        ("ip", "10.96.0.1 . 80 . 1 : 10.244.7.7 . 9090"),
        ("ip", "10.96.0.6 . 53 . 3 : 10.244.8.8 . 5353"),
        ("ip6", "fd00:96::2 . 443 . 0 : fd00:244:9::9 . 8443"),
    ] {
        let (by_script, by_netlink) = (script_ns.list(fam), netlink_ns.list(fam));
        assert!(
            by_netlink.contains(needle),
            "{needle} missing:\n{by_netlink}"
        );
        assert_eq!(by_netlink, by_script, "{fam}");
    }
    // Refused (the old element is not there: someone edited the table), nothing applied:
    // the first replacement's map exists and would have taken its element.
    let before = netlink_ns.list("ip");
    let stale = element_changes_for(&t, &next, &keys, Family::Ip, RoundRobin::PerService).unwrap();
    let mut bogus = stale.clone();
    bogus[0].slots[0].0.n = 77;
    bogus.extend(stale);
    let refused = netlink_ns.enter(|| write_elements(Family::Ip, &bogus));
    assert!(refused.is_err(), "a missing element must be refused");
    assert_eq!(
        netlink_ns.list("ip"),
        before,
        "a refused transaction changes nothing"
    );
}
