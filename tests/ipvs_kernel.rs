//! The speaker's IPVS socket against a real kernel's IPVS, in a namespace of its own: virtual
//! and real servers added, changed, read back and deleted through FerroLB's generic netlink
//! code, checked both by reading the table back through the same socket and by `ipvsadm`.
//!
//! The host kernel of FerroLB's machines has no IPVS: this suite runs in the VM lab, inside a
//! stock Debian kernel (`tests/vm.sh`; `tests/run.sh` builds it with `--features vm-lab` and
//! runs it there). Built without that feature it is not compiled at all, so nothing is ever
//! skipped.

use ferrolb_e2e::netns::Netns;
use ferrolb_shared::ipvs::genl::{
    Command, Dest, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, Service, ServiceId,
    whole_address_netmask,
};
use ferrolb_shared::ipvs::model::Proto;
use ferrolb_speaker::dataplane::ipvs::socket::{IpvsError, IpvsSocket};

fn id(proto: Proto, addr: &str, port: u16) -> ServiceId {
    ServiceId::Addr {
        proto,
        addr: addr.parse().unwrap(),
        port,
    }
}

fn service(id: ServiceId, scheduler: &str, flags: u32, timeout: u32) -> Service {
    let ipv6 = matches!(id, ServiceId::Addr { addr, .. } if addr.is_ipv6());
    Service {
        id,
        scheduler: scheduler.into(),
        flags,
        timeout,
        netmask: whole_address_netmask(ipv6),
    }
}

/// A namespace for one test, loopback up (IPVS needs it).
fn namespace(tag: &str) -> Netns {
    Netns::with_loopback("ipvs", tag)
}

fn dest(addr: &str, port: u16, weight: u32) -> Dest {
    Dest::masq(addr.parse().unwrap(), port, weight)
}

/// A virtual server made by another tool (ipvsadm): FerroLB must never touch it.
fn another_tools_service(ns: &Netns, proto: &str, addr: &str) {
    let out = ns.output(&["ipvsadm", "-A", proto, addr, "-s", "rr"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ipvsadm -Ln` (with `options`) in the namespace: an independent reader of the table.
fn ipvsadm(ns: &Netns, options: &[&str]) -> String {
    let mut argv = vec!["ipvsadm", "-Ln"];
    argv.extend(options);
    let out = ns.output(&argv);
    assert!(
        out.status.success(),
        "ipvsadm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` to completion on a runtime of the calling thread (the one in the namespace).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The table as ipvsadm prints it, sorted, minus its header lines and trailing spaces.
fn table_lines(ns: &Netns) -> Vec<String> {
    ipvsadm(ns, &["--sort"])
        .lines()
        .skip(3)
        .map(|l| l.trim_end().to_string())
        .collect()
}

#[test]
fn virtual_and_real_servers_round_trip_through_the_kernel() {
    let ns = namespace("rt");
    let web = service(id(Proto::Tcp, "10.96.0.1", 80), "rr", 0, 0);
    let dns = service(
        id(Proto::Udp, "fd00:96::1", 53),
        "mh",
        SVC_F_SCHED1 | SVC_F_SCHED2,
        0,
    );
    let sticky = service(
        id(Proto::Sctp, "10.96.0.2", 3868),
        "wlc",
        SVC_F_PERSISTENT,
        10800,
    );
    ns.enter(|| {
        let mut s = IpvsSocket::open().expect("IPVS in the guest kernel");
        for svc in [&web, &dns, &sticky] {
            s.service(Command::NewService, svc).unwrap();
        }
        s.dest(Command::NewDest, &web.id, &dest("10.244.1.11", 7000, 1))
            .unwrap();
        s.dest(Command::NewDest, &web.id, &dest("10.244.2.11", 7000, 3))
            .unwrap();
        s.dest(Command::NewDest, &dns.id, &dest("fd00:244:1::11", 53, 1))
            .unwrap();
        // Read back through the same socket: what was sent, plus the kernel's HASHED flag.
        let mut got = s.services().unwrap();
        got.sort_by_key(|svc| svc.id);
        let mut want = vec![web.clone(), dns.clone(), sticky.clone()];
        want.sort_by_key(|svc| svc.id);
        for svc in &mut want {
            svc.flags |= 0x2;
        }
        assert_eq!(got, want);
        // The kernel lists real servers newest first.
        let mut dests: Vec<(Dest, u32)> = s
            .dests(&web.id)
            .unwrap()
            .into_iter()
            .map(|d| (d.dest, d.active))
            .collect();
        dests.sort();
        assert_eq!(
            dests,
            [
                (dest("10.244.1.11", 7000, 1), 0),
                (dest("10.244.2.11", 7000, 3), 0)
            ]
        );
    });
    assert_eq!(
        table_lines(&ns),
        [
            "TCP  10.96.0.1:80 rr",
            "  -> 10.244.1.11:7000             Masq    1      0          0",
            "  -> 10.244.2.11:7000             Masq    3      0          0",
            "SCTP 10.96.0.2:3868 wlc persistent 10800",
            "UDP  [fd00:96::1]:53 mh (mh-fallback,mh-port)",
            "  -> [fd00:244:1::11]:53          Masq    1      0          0",
        ]
    );

    // Changes: a weight to 0 (graceful removal's first step), a scheduler, deletions.
    ns.enter(|| {
        let mut s = IpvsSocket::open().unwrap();
        s.dest(Command::SetDest, &web.id, &dest("10.244.2.11", 7000, 0))
            .unwrap();
        s.service(Command::SetService, &service(web.id, "lc", 0, 0))
            .unwrap();
        s.dest(Command::DelDest, &web.id, &dest("10.244.1.11", 7000, 0))
            .unwrap();
        s.service(Command::DelService, &dns).unwrap();
        s.service(Command::DelService, &sticky).unwrap();
    });
    assert_eq!(
        table_lines(&ns),
        [
            "TCP  10.96.0.1:80 lc",
            "  -> 10.244.2.11:7000             Masq    0      0          0",
        ]
    );
}

#[test]
fn the_kernels_refusals_name_the_request() {
    let ns = namespace("no");
    let web = service(id(Proto::Tcp, "10.96.0.1", 80), "rr", 0, 0);
    ns.enter(|| {
        let mut s = IpvsSocket::open().unwrap();
        s.service(Command::NewService, &web).unwrap();
        let err = s.service(Command::NewService, &web).unwrap_err();
        assert!(matches!(err, IpvsError::Refused { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "the kernel refused NewService tcp/10.96.0.1:80: EEXIST: File exists"
        );
        let missing = id(Proto::Tcp, "10.96.0.9", 80);
        let err = s
            .dest(Command::NewDest, &missing, &dest("10.244.1.11", 7000, 1))
            .unwrap_err();
        assert!(err.to_string().contains("tcp/10.96.0.9:80"), "{err}");
        let err = s
            .service(
                Command::NewService,
                &service(id(Proto::Tcp, "10.96.0.3", 80), "nope", 0, 0),
            )
            .unwrap_err();
        assert!(
            matches!(err, IpvsError::Refused { .. }) && err.to_string().contains("ENOENT"),
            "an unknown scheduler: {err}"
        );
    });
    // The socket survived its refusals and the table holds only what was accepted.
    assert_eq!(table_lines(&ns), ["TCP  10.96.0.1:80 rr"]);
}

/// The pure plan carried out against the kernel: a model table programmed from nothing, read
/// back with nothing left to do, an endpoint leaving drained (weight 0) and then deleted, and
/// a virtual server another tool made (with ipvsadm) never touched.
#[test]
fn the_plan_brings_the_kernel_in_line_and_leaves_others_alone() {
    use ferrolb_shared::ipvs::fixtures::{rs, table};
    use ferrolb_shared::ipvs::kernel::{Draining, plan, wanted};
    use ferrolb_shared::ipvs::model::VirtualServer;
    use ferrolb_shared::ipvs::scheduler::SchedulerKind;
    use ferrolb_speaker::dataplane::ipvs::{apply, read};
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    let vs = |addr: &str, scheduler, servers: &[&str]| VirtualServer {
        affinity: Some(Duration::from_secs(30)),
        ..ferrolb_shared::ipvs::fixtures::vs(
            addr,
            80,
            scheduler,
            servers.iter().map(|a| rs(a, 7000)).collect(),
        )
    };
    let ns = namespace("pl");
    another_tools_service(&ns, "-t", "192.0.2.1:80");

    let two = wanted(&table(vec![
        vs(
            "10.96.0.1",
            SchedulerKind::Sed,
            &["10.244.1.11", "10.244.2.11"],
        ),
        vs("fd00:96::1", SchedulerKind::Nq, &["fd00:244:1::11"]),
    ]));
    let one = wanted(&table(vec![
        vs("10.96.0.1", SchedulerKind::Sed, &["10.244.1.11"]),
        vs("fd00:96::1", SchedulerKind::Nq, &["fd00:244:1::11"]),
    ]));
    let owned: BTreeSet<ServiceId> = two.keys().copied().collect();
    let t0 = Instant::now();
    let mut draining = Draining::default();
    ns.enter(|| {
        let mut s = IpvsSocket::open().unwrap();
        let held = read(&mut s).unwrap();
        apply(&mut s, &plan(&two, &held, &owned, &mut draining, t0)).unwrap();
        let held = read(&mut s).unwrap();
        assert!(plan(&two, &held, &owned, &mut draining, t0).is_empty());
        // 10.244.2.11 leaves: weight 0 first; with no connection it goes on the next pass.
        let first = plan(&one, &held, &owned, &mut draining, t0);
        assert_eq!(first.len(), 1, "{first:?}");
        apply(&mut s, &first).unwrap();
    });
    assert!(
        ipvsadm(&ns, &[]).contains("10.244.2.11:7000             Masq    0"),
        "{}",
        ipvsadm(&ns, &[])
    );
    ns.enter(|| {
        let mut s = IpvsSocket::open().unwrap();
        let held = read(&mut s).unwrap();
        let later = t0 + Duration::from_secs(1);
        apply(&mut s, &plan(&one, &held, &owned, &mut draining, later)).unwrap();
        let held = read(&mut s).unwrap();
        assert!(plan(&one, &held, &owned, &mut draining, later).is_empty());
        assert!(draining.is_empty());
    });
    assert_eq!(
        table_lines(&ns),
        [
            "TCP  192.0.2.1:80 rr",
            "TCP  10.96.0.1:80 sed persistent 30",
            "  -> 10.244.1.11:7000             Masq    1      0          0",
            "TCP  [fd00:96::1]:80 nq persistent 30",
            "  -> [fd00:244:1::11]:7000        Masq    1      0          0",
        ]
    );
    // Everything of ours goes; the other tool's virtual server stays.
    ns.enter(|| {
        let mut s = IpvsSocket::open().unwrap();
        let held = read(&mut s).unwrap();
        let empty = Default::default();
        apply(&mut s, &plan(&empty, &held, &owned, &mut draining, t0)).unwrap();
    });
    assert_eq!(table_lines(&ns), ["TCP  192.0.2.1:80 rr"]);
}

/// The table keeper pass after pass: from nothing, nothing more to send for the same table,
/// an endpoint drained then deleted, a restarted speaker (a new keeper on the same state
/// file) adopting and cleaning up what its predecessor made, and a clean stop removing all of
/// FerroLB's virtual servers and none of another tool's.
#[test]
fn the_table_keeper_adopts_its_predecessors_work_and_cleans_up() {
    use ferrolb_shared::ipvs::fixtures::{rs, table, vs};
    use ferrolb_shared::ipvs::model::VsKey;
    use ferrolb_shared::ipvs::scheduler::SchedulerKind;
    use ferrolb_speaker::dataplane::ipvs::table::IpvsTable;
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    let ns = namespace("tk");
    another_tools_service(&ns, "-u", "192.0.2.1:53");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ipvs-owned");
    let web = |servers: &[&str]| {
        vs(
            "10.96.0.1",
            80,
            SchedulerKind::Wlc,
            servers.iter().map(|a| rs(a, 7000)).collect(),
        )
    };
    let api = vs(
        "fd00:96::7",
        443,
        SchedulerKind::Mh,
        vec![rs("fd00:244:2::11", 8443)],
    );
    let both = table(vec![web(&["10.244.1.11", "10.244.2.11"]), api.clone()]);
    let fewer = table(vec![web(&["10.244.1.11"]), api.clone()]);
    let t0 = Instant::now();
    ns.enter(|| {
        let mut keeper = IpvsTable::new(state.clone());
        assert_eq!(keeper.apply(&both, None, t0).unwrap().len(), 5);
        assert!(
            keeper.apply(&both, None, t0).unwrap().is_empty(),
            "nothing changed"
        );
        // Passes that look only at what a change touched: web's endpoint leaves ...
        let web_key: BTreeSet<VsKey> = [web(&[]).key].into();
        let drain = keeper.apply(&fewer, Some(&web_key), t0).unwrap();
        assert_eq!(drain.len(), 1, "weight 0 first: {drain:?}");
        assert!(keeper.drain_deadline().is_some());
        // ... and a later pass about another Service finishes web's drain all the same.
        let api_key: BTreeSet<VsKey> = [api.key].into();
        let later = t0 + Duration::from_secs(1);
        let gone = keeper.apply(&fewer, Some(&api_key), later).unwrap();
        assert_eq!(
            gone.len(),
            1,
            "then deleted, with no connection left: {gone:?}"
        );
        assert!(keeper.drain_deadline().is_none());
        // The keeper is dropped here without a clean stop, as in a crash.
    });
    let saved = std::fs::read_to_string(&state).unwrap();
    assert_eq!(saved, "tcp 10.96.0.1 80\ntcp fd00:96::7 443\n");
    assert_eq!(
        table_lines(&ns),
        [
            "TCP  10.96.0.1:80 wlc",
            "  -> 10.244.1.11:7000             Masq    1      0          0",
            "UDP  192.0.2.1:53 rr",
            "TCP  [fd00:96::7]:443 mh",
            "  -> [fd00:244:2::11]:8443        Masq    1      0          0",
        ]
    );
    ns.enter(|| {
        // The next speaker: web's Service is gone meanwhile. Its predecessor's virtual server
        // is FerroLB's (the state file says so) and goes; the other tool's stays.
        let mut keeper = IpvsTable::new(state.clone());
        let sent = keeper.apply(&table(vec![api.clone()]), None, t0).unwrap();
        assert_eq!(sent.len(), 1, "only web's deletion: {sent:?}");
    });
    assert_eq!(
        table_lines(&ns),
        [
            "UDP  192.0.2.1:53 rr",
            "TCP  [fd00:96::7]:443 mh",
            "  -> [fd00:244:2::11]:8443        Masq    1      0          0",
        ]
    );
    ns.enter(|| {
        let mut keeper = IpvsTable::new(state.clone());
        keeper.remove(t0).unwrap();
    });
    assert_eq!(table_lines(&ns), ["UDP  192.0.2.1:53 rr"]);
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "");
}

/// The dummy interface holding IPVS's addresses, through rtnetlink: created with exactly the
/// wanted addresses, changed, removed; and the node never answers ARP or NDP for them on its
/// own, even for a LoadBalancer IP on the LAN's own subnet (MetalLB's "strictARP" trap).
/// Checked from a client host on a veth link, with a control that the same ARP request is
/// answered once the sysctl is undone.
#[test]
fn service_addresses_live_on_a_dummy_link_that_never_answers_arp_or_ndp() {
    use ferrolb_speaker::dataplane::ipvs::addresses::ServiceAddresses;
    use std::collections::BTreeSet;
    use std::net::IpAddr;
    use std::process::Command;

    let (node, client) = (namespace("dn"), namespace("dc"));
    let run = |ns: &Netns, argv: &[&str]| {
        let out = ns.output(argv);
        assert!(
            out.status.success(),
            "{argv:?} in {}: {}",
            ns.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let out = Command::new("ip")
        .args(["link", "add", "eth0", "netns", node.name(), "type", "veth"])
        .args(["peer", "name", "eth0", "netns", client.name()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (ns, last) in [(&node, "11"), (&client, "101")] {
        run(
            ns,
            &[
                "ip",
                "addr",
                "add",
                &format!("10.100.0.{last}/24"),
                "dev",
                "eth0",
            ],
        );
        run(
            ns,
            &[
                "ip",
                "addr",
                "add",
                &format!("fd00:100::{last}/64"),
                "dev",
                "eth0",
                "nodad",
            ],
        );
        run(ns, &["ip", "link", "set", "eth0", "up"]);
    }
    // A LoadBalancer IP on the LAN's subnet, a ClusterIP, and their IPv6 peers.
    let lb_v4: IpAddr = "10.100.0.200".parse().unwrap();
    let lb_v6: IpAddr = "fd00:100::200".parse().unwrap();
    let wanted: BTreeSet<IpAddr> = [lb_v4, lb_v6, "10.96.0.1".parse().unwrap()].into();
    let sync = |wanted: &BTreeSet<IpAddr>| {
        node.enter(|| {
            block_on(async {
                let link = ServiceAddresses::open("ferrolb0").unwrap();
                link.sync(wanted).await.unwrap()
            })
        })
    };
    let (added, removed) = sync(&wanted);
    assert_eq!((added.len(), removed.len()), (3, 0));
    let shown = String::from_utf8_lossy(&node.output(&["ip", "addr", "show", "ferrolb0"]).stdout)
        .into_owned();
    for want in ["10.100.0.200/32", "fd00:100::200/128", "10.96.0.1/32"] {
        assert!(shown.contains(want), "{want} missing:\n{shown}");
    }
    let details = String::from_utf8_lossy(
        &node
            .output(&["ip", "-d", "link", "show", "ferrolb0"])
            .stdout,
    )
    .into_owned();
    assert!(
        details.contains("dummy") && details.contains("UP"),
        "{details}"
    );

    let arping = || {
        client
            .output(&["arping", "-c", "2", "-w", "2", "-I", "eth0", "10.100.0.200"])
            .status
            .success()
    };
    let ndisc = |target: &str| {
        client
            .output(&["ndisc6", "-r", "2", "-w", "500", target, "eth0"])
            .status
            .success()
    };
    assert!(
        !arping(),
        "the node answered ARP for an address on its dummy interface"
    );
    assert!(
        !ndisc("fd00:100::200"),
        "the node answered NDP for an address on its dummy interface"
    );
    assert!(
        ndisc("fd00:100::11"),
        "control: NDP for the node's own LAN address is answered"
    );
    // Control: without arp_ignore the node's kernel answers for the dummy's address: the
    // trap the sysctls close.
    run(&node, &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=0"]);
    assert!(arping(), "control: without arp_ignore the kernel answers");

    // Changes: one address leaves, one comes (and the sysctl is restored); then all goes.
    let next: BTreeSet<IpAddr> = [lb_v4, "10.96.0.2".parse().unwrap()].into();
    let (added, removed) = sync(&next);
    assert_eq!(added, ["10.96.0.2".parse::<IpAddr>().unwrap()]);
    let mut removed = removed;
    removed.sort();
    assert_eq!(removed, ["10.96.0.1".parse::<IpAddr>().unwrap(), lb_v6]);
    assert!(!arping(), "arp_ignore restored by the next sync");
    node.enter(|| {
        block_on(async {
            ServiceAddresses::open("ferrolb0")
                .unwrap()
                .remove()
                .await
                .unwrap()
        })
    });
    assert!(
        !node
            .output(&["ip", "link", "show", "ferrolb0"])
            .status
            .success()
    );
}

/// The `vs` sysctls land in the namespace the speaker runs in, and only there: another
/// namespace keeps the kernel's defaults.
#[test]
fn the_vs_sysctls_are_set_in_the_nodes_namespace_only() {
    use ferrolb_speaker::dataplane::ipvs::sysctls::{VS_SYSCTLS, apply};

    let (node, other) = (namespace("sn"), namespace("so"));
    let read = |ns: &Netns| -> Vec<String> {
        VS_SYSCTLS
            .iter()
            .map(|(path, _)| {
                String::from_utf8_lossy(&ns.output(&["cat", path]).stdout)
                    .trim()
                    .to_string()
            })
            .collect()
    };
    node.enter(|| {
        // Loads ip_vs, which creates the net.ipv4.vs settings.
        IpvsSocket::open().unwrap();
        let written = apply().unwrap();
        assert_eq!(written.len(), VS_SYSCTLS.len(), "{written:?}");
        assert!(apply().unwrap().is_empty(), "a second pass writes nothing");
    });
    assert_eq!(read(&node), ["1", "1", "1", "1"]);
    assert_eq!(
        read(&other),
        ["0", "0", "0", "0"],
        "another namespace is untouched"
    );
}
