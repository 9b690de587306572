use super::*;
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::ipvs::model::{EndpointState, Frontend, RealServer, VirtualServer, VsKey};
use ferrolb_shared::ipvs::scheduler::SchedulerKind;

fn vs(proto: Proto, vip: &str, backends: &[&str]) -> VirtualServer {
    VirtualServer {
        key: VsKey {
            proto,
            addr: vip.parse().unwrap(),
            port: 53,
        },
        service: ServiceKey::new("default", "dns"),
        port_name: String::new(),
        frontend: Frontend::ClusterIp,
        scheduler: SchedulerKind::Rr,
        scheduler_flags: Default::default(),
        affinity: None,
        masquerade: false,
        drop: false,
        real_servers: backends
            .iter()
            .map(|a| RealServer {
                addr: a.parse().unwrap(),
                port: 5353,
                weight: 1,
                local: false,
                state: EndpointState::Ready,
                name: a.to_string(),
            })
            .collect(),
    }
}

fn table(v: Vec<VirtualServer>) -> Table {
    Table {
        servers: v.into_iter().map(|v| (v.key, v)).collect(),
        ..Default::default()
    }
}

fn untranslated(vip: &str) -> Stale {
    Stale::Untranslated {
        vip: vip.parse().unwrap(),
        port: 53,
    }
}

#[test]
fn a_start_clears_untranslated_udp_flows_of_every_serving_virtual_server() {
    let mut dropped = vs(Proto::Udp, "10.96.0.3", &["10.244.1.1"]);
    dropped.drop = true;
    let t = table(vec![
        vs(Proto::Udp, "10.96.0.1", &["10.244.1.1"]),
        vs(Proto::Udp, "fd00:96::1", &["fd00:244:1::1"]),
        vs(Proto::Tcp, "10.96.0.2", &["10.244.1.1"]),
        vs(Proto::Udp, "10.96.0.4", &[]),
        dropped,
    ]);
    for kernel in [true, false] {
        assert_eq!(
            stale_udp(None, &t, kernel, None),
            [untranslated("10.96.0.1"), untranslated("fd00:96::1")].into()
        );
    }
}

#[test]
fn changes_clear_new_virtual_servers_and_departed_backends() {
    let old = table(vec![vs(
        Proto::Udp,
        "10.96.0.1",
        &["10.244.1.1", "10.244.2.1"],
    )]);
    let new = table(vec![
        vs(Proto::Udp, "10.96.0.1", &["10.244.2.1"]),
        vs(Proto::Udp, "10.96.0.9", &["10.244.2.1"]),
    ]);
    let gone = Stale::Backend {
        vip: "10.96.0.1".parse().unwrap(),
        port: 53,
        backend: "10.244.1.1".parse().unwrap(),
    };
    assert_eq!(
        stale_udp(Some(&old), &new, true, None),
        [gone, untranslated("10.96.0.9")].into()
    );
    // The userspace proxy ends flows to departed backends itself.
    assert_eq!(
        stale_udp(Some(&old), &new, false, None),
        [untranslated("10.96.0.9")].into()
    );
    assert!(stale_udp(Some(&new), &new, true, None).is_empty());
    // Told which servers were touched, it looks at those only.
    let touched: BTreeSet<VsKey> = new.servers.keys().copied().collect();
    assert_eq!(
        stale_udp(Some(&old), &new, true, Some(&touched)),
        [gone, untranslated("10.96.0.9")].into()
    );
    let one = [untranslated_key("10.96.0.9")].into();
    assert_eq!(
        stale_udp(Some(&old), &new, true, Some(&one)),
        [untranslated("10.96.0.9")].into()
    );
}

fn untranslated_key(vip: &str) -> VsKey {
    VsKey {
        proto: Proto::Udp,
        addr: vip.parse().unwrap(),
        port: 53,
    }
}

#[test]
fn conntrack_arguments() {
    assert_eq!(
        args(&untranslated("fd00:96::1")).join(" "),
        "-D -f ipv6 -p udp --orig-dst fd00:96::1 --orig-port-dst 53 --reply-src fd00:96::1 --reply-port-src 53"
    );
    let gone = Stale::Backend {
        vip: "10.96.0.1".parse().unwrap(),
        port: 53,
        backend: "10.244.1.1".parse().unwrap(),
    };
    assert_eq!(
        args(&gone).join(" "),
        "-D -f ipv4 -p udp --orig-dst 10.96.0.1 --orig-port-dst 53 --dst-nat 10.244.1.1"
    );
}
