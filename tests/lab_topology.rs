//! The lab's network: a 3-node dual-stack lab comes up and goes down cleanly (twice in a row,
//! leaving no namespace, link, file or process), runs the controller and speakers on its
//! manifest directory, and every pod answers every other node, every other pod and the
//! clients (through its node) over IPv4 and IPv6, with the client address preserved.
//!
//! Needs root, iproute2 and bird2, and the workspace binaries (`cargo build --workspace
//! --bins`; tests/run.sh does both).

use ferrolb_e2e::lab::{Lab, LabSpec, Proto, Role, namespaces_of, plan, registry};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

/// Names of the links in the root namespace (the lab must never add one).
fn root_links() -> BTreeSet<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
        .collect()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn three_node_lab_comes_up_and_down_cleanly_twice() -> anyhow::Result<()> {
    let links_before = root_links();
    for round in 1..=2 {
        let lab = Lab::up(LabSpec::default())?;
        let prefix = lab.prefix().to_string();
        // 11 hosts: switch, control, router, 3 nodes, a LAN client, an external client, 3 pods.
        assert_eq!(namespaces_of(&prefix).len(), 11, "round {round}");
        assert_eq!(lab.hosts().len(), 11);
        for h in lab.hosts() {
            // Only the switch and control hosts have no address.
            assert_eq!(
                h.addrs().len(),
                if matches!(h.role, Role::Switch | Role::Control) {
                    0
                } else {
                    2
                },
                "{h:?}"
            );
        }
        let nodes: Vec<_> = lab
            .nodes()
            .iter()
            .map(|h| (h.name.clone(), h.addrs()))
            .collect();
        assert_eq!(nodes[2].0, "node3");
        assert_eq!(
            nodes[2].1,
            [IpAddr::from(plan::node(3).0), IpAddr::from(plan::node(3).1)]
        );

        // The FerroLB processes run on the manifest directory, in their own hosts.
        lab.start_controller()?;
        lab.start_speakers()?;
        lab.write_manifest(
            "pool.yaml",
            &format!(
                "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: lan, namespace: ferrolb-system}}\n\
                 spec: {{addresses: [{}, {}]}}\n",
                plan::L2_POOL_V4,
                plan::L2_POOL_V6
            ),
        )?;
        lab.write_manifest(
            "svc.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: default}\n\
             spec: {type: LoadBalancer, ipFamilyPolicy: RequireDualStack, selector: {app: echo}, ports: [{port: 7000}]}\n",
        )?;
        let ips = lab.wait_service_ips("default", "echo", Duration::from_secs(15))?;
        assert_eq!(
            ips,
            ["10.100.0.200".parse::<IpAddr>()?, "fd00:100::200".parse()?]
        );
        let names = lab.process_names();
        for want in [
            "controller@ctl",
            "speaker@node1",
            "speaker@node3",
            "bird@router",
            "echo@node2-pod1",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
            assert!(
                lab.is_running(want)?,
                "{want} is not running:\n{}",
                lab.log(want)?
            );
        }
        let pids: Vec<u32> = names.iter().map(|n| lab.pid(n)).collect::<Result<_, _>>()?;
        let dir = lab.dir().to_path_buf();

        lab.down()?;
        assert!(
            namespaces_of(&prefix).is_empty(),
            "round {round}: {:?}",
            namespaces_of(&prefix)
        );
        assert!(!dir.exists(), "round {round}: {} is left", dir.display());
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        assert!(left.is_empty(), "round {round}: processes left: {left:?}");
        assert_eq!(
            root_links(),
            links_before,
            "round {round}: the root namespace's links changed"
        );
        assert!(
            !registry::lab_namespaces()
                .iter()
                .any(|n| n.starts_with(&prefix))
        );
    }
    Ok(())
}

#[test]
fn every_pod_answers_other_nodes_pods_and_clients_over_both_families() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec::default().router(None))?;
    let pods: Vec<_> = lab.pods().into_iter().cloned().collect();
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        let Role::Pod { node, .. } = pod.role else {
            unreachable!()
        };
        // Every other node, every other pod, the LAN client and the external client.
        let mut from: Vec<String> = lab
            .nodes()
            .iter()
            .filter(|n| n.node_index() != Some(node))
            .map(|n| n.name.clone())
            .collect();
        from.extend(
            pods.iter()
                .filter(|p| p.name != pod.name)
                .map(|p| p.name.clone()),
        );
        from.extend(["client1".to_string(), "ext1".to_string()]);
        for v6 in [false, true] {
            let to = pod.addr(v6).expect("dual-stack pod");
            for host in &from {
                let a = lab.connect_tcp(host, to)?;
                assert_eq!(a.pod, pod.name, "{host} -> {to}");
                // No NAT anywhere in the lab: the pod sees the client's own address.
                assert_eq!(
                    Some(a.client.ip()),
                    lab.host(host)?.addr(v6),
                    "{host} -> {to}: {a:?}"
                );
            }
            for proto in [Proto::Udp, Proto::Http] {
                let a = lab.probe("client1", proto, to, proto.echo_port())?;
                assert_eq!(a.pod, pod.name, "{proto:?} client1 -> {to}");
            }
        }
        // The LAN client reaches the pod CIDR through the pod's node, as with a host-gateway CNI.
        let (c4, c6) = plan::pod_cidr(node);
        let (n4, n6) = plan::node(node);
        assert_eq!(lab.kernel_next_hops("client1", &c4)?, [IpAddr::from(n4)]);
        assert_eq!(lab.kernel_next_hops("client1", &c6)?, [IpAddr::from(n6)]);
        assert_eq!(lab.kernel_next_hops("router", &c4)?, [IpAddr::from(n4)]);
    }
    lab.down()?;
    Ok(())
}

#[test]
fn helpers_see_neighbors_links_and_packets() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        nodes: 1,
        external_clients: 0,
        ..LabSpec::default().router(None)
    })?;
    let (n4, n6) = plan::node(1);
    let node_mac = lab.mac("node1", "eth0")?;

    // ARP and NDP probes from the client find node1's MAC.
    assert_eq!(
        lab.arping("client1", "eth0", n4, 1)?,
        std::slice::from_ref(&node_mac)
    );
    assert_eq!(
        lab.ndisc("client1", "eth0", n6)?,
        std::slice::from_ref(&node_mac)
    );

    // A capture on node1 sees the client's packets; the client's neighbor table has node1.
    let cap = lab.capture("node1", "eth0", "tcp port 7000")?;
    let pod = lab.pods()[0].addr(false).unwrap();
    lab.connect_tcp("client1", pod)?;
    let packets = lab.stop_capture(cap)?;
    assert!(
        packets
            .iter()
            .any(|p| p.contains("10.100.0.101") && p.contains("10.244.1.11.7000")),
        "{packets:#?}"
    );
    let neigh = lab.neighbors("client1")?;
    assert!(
        neigh
            .iter()
            .any(|n| n.ip == IpAddr::from(n4) && n.lladdr.as_deref() == Some(&node_mac)),
        "{neigh:?}"
    );

    // A link taken down cuts the pod off; up again, it answers again (addresses are kept).
    lab.set_link("node1", "eth0", false)?;
    let err = lab.probe_with_timeout(
        "client1",
        Proto::Tcp,
        pod,
        plan::ECHO_TCP,
        Duration::from_millis(500),
    );
    assert!(err.is_err(), "answered with node1's link down: {err:?}");
    lab.set_link("node1", "eth0", true)?;
    ferrolb_e2e::lab::wait_until("the pod to answer again", Duration::from_secs(10), || {
        Ok(lab.connect_tcp("client1", pod).map_err(|e| e.to_string()))
    })?;
    lab.connect_tcp("client1", lab.pods()[0].addr(true).unwrap())?;

    // A paused echo server keeps its socket but does not answer; resumed, it does.
    lab.pause_process("echo@node1-pod1")?;
    let err = lab.probe_with_timeout(
        "client1",
        Proto::Tcp,
        pod,
        plan::ECHO_TCP,
        Duration::from_millis(500),
    );
    assert!(err.is_err(), "a paused server answered: {err:?}");
    lab.resume_process("echo@node1-pod1")?;
    lab.connect_tcp("client1", pod)?;
    // Killed, it is gone.
    lab.kill_process("echo@node1-pod1")?;
    assert!(!lab.is_running("echo@node1-pod1")?);
    assert!(lab.connect_tcp("client1", pod).is_err());
    lab.down()?;
    Ok(())
}

#[test]
fn an_ipv4_only_lab_works_too() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        nodes: 2,
        dual_stack: false,
        ..LabSpec::default()
    })?;
    assert!(lab.hosts().iter().all(|h| h.ipv6.is_none()));
    let names: Vec<String> = lab
        .router()?
        .sessions()?
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["node1_v4", "node2_v4"]);
    for pod in lab.pods() {
        let a = lab.connect_tcp("ext1", pod.addr(false).unwrap())?;
        assert_eq!(a.pod, pod.name);
    }
    let global_v6 = lab.exec("node1", &["ip", "-6", "addr", "show", "scope", "global"])?;
    assert!(global_v6.trim().is_empty(), "{global_v6}");
    lab.down()?;
    Ok(())
}
