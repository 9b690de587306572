//! The userspace proxy on loopback: TCP and UDP forwarding, round robin, in-place updates of
//! real servers (same port), and closing a removed virtual server's listener.

use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::ipvs::model::*;
use ferrolb_shared::ipvs::scheduler::SchedulerKind;
use ferrolb_speaker::dataplane::userspace::UserspaceProxy;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

async fn tcp_backend(name: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let _ = s.write_all(name.as_bytes()).await;
            });
        }
    });
    port
}

async fn udp_backend(name: &'static str) -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = s.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 100];
        loop {
            let (_, peer) = s.recv_from(&mut buf).await.unwrap();
            s.send_to(name.as_bytes(), peer).await.unwrap();
        }
    });
    port
}

fn vs(proto: Proto, port: u16, sched: SchedulerKind, backends: &[(u16, &str)]) -> VirtualServer {
    VirtualServer {
        key: VsKey {
            proto,
            addr: "10.96.0.1".parse().unwrap(),
            port,
        },
        service: ServiceKey::new("default", "s"),
        port_name: String::new(),
        frontend: Frontend::ClusterIp,
        scheduler: sched,
        scheduler_flags: Default::default(),
        affinity: None,
        masquerade: false,
        drop: false,
        real_servers: backends
            .iter()
            .map(|(p, n)| RealServer {
                addr: "127.0.0.1".parse().unwrap(),
                port: *p,
                weight: 1,
                local: true,
                state: EndpointState::Ready,
                name: n.to_string(),
            })
            .collect(),
    }
}

#[tokio::test]
async fn tcp_and_udp_round_robin_and_updates() {
    let (a, b) = (tcp_backend("a").await, tcp_backend("b").await);
    let (ua, ub) = (udp_backend("ua").await, udp_backend("ub").await);
    let t = vs(Proto::Tcp, 80, SchedulerKind::Rr, &[(a, "a"), (b, "b")]);
    let u = vs(Proto::Udp, 53, SchedulerKind::Rr, &[(ua, "ua"), (ub, "ub")]);
    let mut table = Table {
        servers: [(t.key, t.clone()), (u.key, u.clone())].into(),
        ..Default::default()
    };
    let mut proxy = UserspaceProxy::new(41000..=41100, Duration::from_secs(30));
    let (ports, errors) = proxy.apply(&table, None).await;
    assert!(errors.is_empty());
    let tp = ports[&t.key];
    let mut got = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(("127.0.0.1", tp)).await.unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        got.push(buf);
    }
    assert_eq!(got, ["a", "b", "a", "b"]);
    // UDP: two clients, two flows, spread by rr; replies come back to each client.
    let up = ports[&u.key];
    let mut answers = Vec::new();
    for _ in 0..2 {
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(b"q", ("127.0.0.1", up)).await.unwrap();
        let mut buf = [0u8; 10];
        let n = tokio::time::timeout(Duration::from_secs(2), c.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        answers.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    answers.sort();
    assert_eq!(answers, ["ua", "ub"]);
    // Update: only b remains; the listener port stays.
    let t2 = vs(Proto::Tcp, 80, SchedulerKind::Rr, &[(b, "b")]);
    table.servers.insert(t2.key, t2.clone());
    let (ports2, _) = proxy.apply(&table, None).await;
    assert_eq!(ports2[&t.key], tp);
    for _ in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", tp)).await.unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        assert_eq!(buf, "b");
    }
    table.servers.remove(&t.key);
    let (ports3, _) = proxy.apply(&table, None).await;
    assert!(!ports3.contains_key(&t.key));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        TcpStream::connect(("127.0.0.1", tp)).await.is_err(),
        "listener of a removed server is closed"
    );
}
