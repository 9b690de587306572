use super::*;
use crate::alloc::ServiceKey;
use crate::ipvs::model::{EndpointState, Frontend, Proto, VsKey};
use crate::ipvs::scheduler::SchedulerKind;

fn vs(scheduler: SchedulerKind, servers: &[&str], affinity: Option<u64>) -> VirtualServer {
    VirtualServer {
        key: VsKey {
            proto: Proto::Tcp,
            addr: "10.96.0.1".parse().unwrap(),
            port: 80,
        },
        service: ServiceKey::new("default", "s"),
        port_name: String::new(),
        frontend: Frontend::ClusterIp,
        scheduler,
        scheduler_flags: Default::default(),
        affinity: affinity.map(Duration::from_secs),
        masquerade: false,
        drop: false,
        real_servers: servers
            .iter()
            .map(|a| RealServer {
                addr: a.parse().unwrap(),
                port: 80,
                weight: 1,
                local: true,
                state: EndpointState::Ready,
                name: a.to_string(),
            })
            .collect(),
    }
}

fn flow(src: &str) -> Flow {
    Flow {
        src: src.parse().unwrap(),
        dst: "10.96.0.1".parse().unwrap(),
    }
}

fn pick(b: &mut Balancer, now: Instant, src: &str) -> String {
    b.pick(now, &flow(src))
        .map(|(_, r)| r.addr.to_string())
        .unwrap_or_default()
}

#[test]
fn least_connections_see_live_counts() {
    let mut b = Balancer::new(&vs(SchedulerKind::Lc, &["10.0.0.1", "10.0.0.2"], None)).unwrap();
    let t = Instant::now();
    assert_eq!(pick(&mut b, t, "1.1.1.1"), "10.0.0.1");
    assert_eq!(pick(&mut b, t, "1.1.1.2"), "10.0.0.2");
    assert_eq!(pick(&mut b, t, "1.1.1.3"), "10.0.0.1");
    b.closed("10.0.0.2:80");
    assert_eq!(
        pick(&mut b, t, "1.1.1.4"),
        "10.0.0.2",
        "the server that lost a connection is least loaded"
    );
    assert_eq!(
        b.active(),
        [
            ("10.0.0.1:80".to_string(), 2),
            ("10.0.0.2:80".to_string(), 1)
        ]
    );
}

#[test]
fn affinity_holds_until_the_timeout() {
    let mut b = Balancer::new(&vs(
        SchedulerKind::Rr,
        &["10.0.0.1", "10.0.0.2", "10.0.0.3"],
        Some(10),
    ))
    .unwrap();
    let t0 = Instant::now();
    let first = pick(&mut b, t0, "1.1.1.1");
    for s in 1..10 {
        assert_eq!(
            pick(&mut b, t0 + Duration::from_secs(s), "1.1.1.1"),
            first,
            "second {s}"
        );
    }
    // Each pick refreshes the entry; after a silence longer than the timeout, rr moves on.
    let later = t0 + Duration::from_secs(9 + 11);
    assert_ne!(pick(&mut b, later, "1.1.1.1"), first);
}

#[test]
fn update_keeps_counts_and_affinity_of_surviving_servers() {
    let mut b =
        Balancer::new(&vs(SchedulerKind::Rr, &["10.0.0.1", "10.0.0.2"], Some(100))).unwrap();
    let t = Instant::now();
    let a = pick(&mut b, t, "1.1.1.1");
    let c = pick(&mut b, t, "1.1.1.2");
    assert_ne!(a, c);
    // The server of client 1.1.1.2 leaves; client 1.1.1.1 keeps its server.
    let keep: Vec<&str> = vec![a.as_str(), "10.0.0.3"];
    b.update(&vs(SchedulerKind::Rr, &keep, Some(100))).unwrap();
    assert_eq!(pick(&mut b, t, "1.1.1.1"), a);
    let count = format!("{a}:80");
    assert!(
        b.active().contains(&(count, 2)),
        "the count carried over: {:?}",
        b.active()
    );
    assert_ne!(
        pick(&mut b, t, "1.1.1.2"),
        c,
        "a removed server is never picked"
    );
}

#[test]
fn affinity_table_is_bounded() {
    let mut b = Balancer::new(&vs(SchedulerKind::Rr, &["10.0.0.1"], Some(1000))).unwrap();
    let t = Instant::now();
    for i in 0..(MAX_AFFINITY_ENTRIES as u32 + 10) {
        let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + i));
        b.pick(
            t + Duration::from_millis(u64::from(i)),
            &Flow {
                src: ip,
                dst: "10.96.0.1".parse().unwrap(),
            },
        );
    }
    assert!(b.clients.len() <= MAX_AFFINITY_ENTRIES);
}

#[test]
fn no_servers_no_pick() {
    let mut b = Balancer::new(&vs(SchedulerKind::Wlc, &[], None)).unwrap();
    assert!(b.is_empty());
    assert!(b.pick(Instant::now(), &flow("1.1.1.1")).is_none());
}

#[test]
fn an_unchanged_definition_keeps_the_scheduler_state() {
    // Every snapshot hands every virtual server its definition again, changed or not: a
    // change elsewhere in the cluster must not restart the rotation (which would skew rr
    // and wrr toward the first real servers) or rebuild a Maglev table.
    let def = vs(
        SchedulerKind::Rr,
        &["10.0.0.1", "10.0.0.2", "10.0.0.3"],
        None,
    );
    let mut b = Balancer::new(&def).unwrap();
    let t = Instant::now();
    assert_eq!(pick(&mut b, t, "1.1.1.1"), "10.0.0.1");
    b.update(&def).unwrap();
    assert_eq!(
        pick(&mut b, t, "1.1.1.1"),
        "10.0.0.2",
        "the rotation goes on"
    );
    let wrr = vs(SchedulerKind::Wrr, &["10.0.0.1", "10.0.0.2"], None);
    let mut b = Balancer::new(&wrr).unwrap();
    assert_eq!(pick(&mut b, t, "1.1.1.1"), "10.0.0.1");
    b.update(&wrr).unwrap();
    assert_eq!(
        pick(&mut b, t, "1.1.1.1"),
        "10.0.0.2",
        "the rotation goes on"
    );
    // A real change still takes effect.
    b.update(&vs(SchedulerKind::Wrr, &["10.0.0.3"], None))
        .unwrap();
    assert_eq!(pick(&mut b, t, "1.1.1.1"), "10.0.0.3");
}
