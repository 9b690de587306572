//! A misbehaving peer: besides the real router, every speaker has a second BGPPeer, a fake
//! one written here, listening in the LAN client's namespace. Each connection it gets from a
//! speaker it answers worse than the last: garbage instead of an OPEN, half a message then
//! the end of the connection, a NOTIFICATION. The speakers must answer garbage with the
//! proper NOTIFICATION, reconnect with a growing backoff, never crash, and keep their session
//! with the real router Established, its routes in place, the whole time.

use super::{
    LIMIT, NODES, config, host_route, in_netns, last_errors, node_addr, service, start,
    wait_sessions,
};
use ferrolb_e2e::lab::{Lab, LabSpec, RouterKind, plan};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections each speaker must make to the fake peer: one per misbehaviour, then one more
/// (it came back after the NOTIFICATION too).
const ATTEMPTS: usize = 4;
/// First reconnect delay 5 s, doubling, jittered to 75–100 %: 4 attempts take at most 35 s.
const ATTEMPTS_WITHIN: Duration = Duration::from_secs(60);
/// The shortest gap the backoff allows (75 % of 5 s), with some slack for a loaded machine.
const MIN_GAP: Duration = Duration::from_secs(3);
const MARKER: [u8; 16] = [0xff; 16];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Misbehaviour {
    /// 19 bytes of zeros: a header with a bad marker.
    Garbage,
    /// The first 10 bytes of a header, then FIN.
    HalfAMessage,
    /// NOTIFICATION Cease / Administrative Shutdown instead of an OPEN.
    Notification,
}

const SEQUENCE: [Misbehaviour; 3] = [
    Misbehaviour::Garbage,
    Misbehaviour::HalfAMessage,
    Misbehaviour::Notification,
];

/// One connection a speaker made to the fake peer.
#[derive(Clone, Debug)]
struct Attempt {
    at: Instant,
    did: Misbehaviour,
    /// What the speaker sent after its OPEN (filled in once the connection ends).
    reply: Vec<u8>,
}

/// The fake peer: a listener in a lab namespace, and what it saw per speaker address.
struct FakePeer {
    seen: Arc<Mutex<BTreeMap<IpAddr, Vec<Attempt>>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl FakePeer {
    fn start(listener: TcpListener) -> anyhow::Result<FakePeer> {
        listener.set_nonblocking(true)?;
        let peer = FakePeer {
            seen: Arc::default(),
            stop: Arc::default(),
        };
        let (seen, stop) = (peer.seen.clone(), peer.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, from)) => {
                        let seen = seen.clone();
                        std::thread::spawn(move || misbehave(conn, from.ip(), &seen));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        Ok(peer)
    }

    fn attempts(&self) -> BTreeMap<IpAddr, Vec<Attempt>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Reads the speaker's OPEN, misbehaves as the speaker's next turn says, and keeps what the
/// speaker answered.
fn misbehave(mut conn: TcpStream, from: IpAddr, seen: &Mutex<BTreeMap<IpAddr, Vec<Attempt>>>) {
    let at = Instant::now();
    let (i, did) = {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        let list = seen.entry(from).or_default();
        let did = SEQUENCE[list.len() % SEQUENCE.len()];
        list.push(Attempt {
            at,
            did,
            reply: Vec::new(),
        });
        (list.len() - 1, did)
    };
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(3)));
    let mut open = [0u8; 19];
    if conn.read_exact(&mut open).is_err() {
        return;
    }
    let rest = usize::from(u16::from_be_bytes([open[16], open[17]])).saturating_sub(19);
    let _ = conn.read_exact(&mut vec![0u8; rest]);
    match did {
        Misbehaviour::Garbage => {
            let _ = conn.write_all(&[0u8; 19]);
        }
        Misbehaviour::HalfAMessage => {
            let _ = conn.write_all(&MARKER[..10]);
            return; // dropped: FIN mid-message
        }
        Misbehaviour::Notification => {
            let mut n = MARKER.to_vec();
            n.extend([0, 21, 3, 6, 2]);
            let _ = conn.write_all(&n);
        }
    }
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(a) = seen.get_mut(&from).and_then(|l| l.get_mut(i)) {
        a.reply = reply;
    }
}

/// The (code, subcode) of the first NOTIFICATION in `bytes`.
fn notification(bytes: &[u8]) -> Option<(u8, u8)> {
    let at = bytes.windows(16).position(|w| w == MARKER)?;
    match bytes.get(at + 18..at + 21)? {
        [3, code, subcode] => Some((*code, *subcode)),
        _ => None,
    }
}

/// Lines of `node`'s speaker log about its session with `peer` that contain `what`.
fn log_lines(lab: &Lab, node: &str, peer: &str, what: &str) -> anyhow::Result<usize> {
    let log = lab.log(&format!("speaker@{node}"))?;
    let tag = format!("peer={peer} ");
    Ok(log
        .lines()
        .filter(|l| l.contains(&tag) && l.contains(what))
        .count())
}

#[test]
fn a_misbehaving_peer_is_retried_with_backoff_and_the_router_session_is_untouched()
-> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        lan_clients: 1,
        ..LabSpec::default().router(Some(RouterKind::Bird))
    })?;
    let fake_addr = plan::lan_client(1).0;
    let listener = in_netns(&lab.host("client1")?.netns, move || {
        TcpListener::bind(SocketAddr::new(fake_addr.into(), 179))
    })?;
    let fake = FakePeer::start(listener)?;
    let fake_peer = format!(
        "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: fake}}\n\
         spec: {{myASN: {}, peerASN: 64999, peerAddress: '{fake_addr}', holdTime: 9s}}\n",
        plan::NODE_ASN
    );
    start(&lab, &(config(plan::NODE_ASN, "", "") + &fake_peer))?;
    let router = lab.router()?;
    wait_sessions(&lab)?;
    let ips = service(&lab, "web", false, &["node1-pod1"])?;
    let all = |v6: bool| -> Vec<IpAddr> { (1..=3).map(|i| node_addr(i, v6)).collect() };
    for ip in &ips {
        router.wait_route(&host_route(*ip), &all(ip.is_ipv6()), LIMIT)?;
    }

    // While the speakers fight the fake peer, the router's sessions and routes never move.
    let started = Instant::now();
    loop {
        let sessions = router.sessions()?;
        anyhow::ensure!(
            sessions.iter().all(|s| s.established),
            "a router session went down: {sessions:?}"
        );
        for ip in &ips {
            let mut via: Vec<IpAddr> = router
                .routes_for(&host_route(*ip))?
                .iter()
                .filter_map(|p| p.next_hop)
                .collect();
            via.sort();
            anyhow::ensure!(via == all(ip.is_ipv6()), "{ip} via {via:?}");
        }
        for node in NODES {
            anyhow::ensure!(
                lab.is_running(&format!("speaker@{node}"))?,
                "{node}'s speaker exited"
            );
        }
        let seen = fake.attempts();
        let done = (1..=3).all(|i| {
            seen.get(&node_addr(i, false))
                .is_some_and(|a| a.len() >= ATTEMPTS)
        });
        if done {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < ATTEMPTS_WITHIN,
            "fewer than {ATTEMPTS} attempts per speaker within {ATTEMPTS_WITHIN:?}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Let the last connections finish (their replies).
    std::thread::sleep(Duration::from_secs(1));

    for (i, node) in (1..=3).zip(NODES) {
        let seen = fake.attempts();
        let attempts = &seen[&node_addr(i, false)];
        let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1].at - w[0].at).collect();
        let did: Vec<Misbehaviour> = attempts.iter().map(|a| a.did).collect();
        eprintln!("{node}: reconnected after {gaps:?} to {did:?}");
        // Spaced apart, and each wait longer than the one before (the backoff doubles).
        assert!(gaps.iter().all(|g| *g >= MIN_GAP), "{node}: {gaps:?}");
        assert!(gaps.windows(2).all(|w| w[1] > w[0]), "{node}: {gaps:?}");
        // Garbage is answered with Message Header Error / Connection Not Synchronized.
        let garbage = attempts
            .iter()
            .find(|a| a.did == Misbehaviour::Garbage)
            .map(|a| notification(&a.reply));
        assert_eq!(garbage, Some(Some((1, 1))), "{node}: {attempts:?}");
        // The router's session came up once and never went down.
        assert_eq!(
            log_lines(&lab, node, "router-v4", "session established")?,
            1,
            "{node}"
        );
        assert_eq!(
            log_lines(&lab, node, "router-v4", "session down")?,
            0,
            "{node}"
        );
        // The fake peer's last error is exported as one info series, one of the three it
        // provoked (whichever came last).
        let errors = last_errors(&lab, node, "fake")?;
        let expected = [
            "sent Connection Not Synchronized (1/1)",
            "connection closed",
            "received Administrative Shutdown (6/2)",
        ];
        assert!(
            matches!(errors.as_slice(), [e] if expected.contains(&e.as_str())),
            "{node}: {errors:?}"
        );
        let log = lab.log(&format!("speaker@{node}"))?;
        assert!(
            !log.contains("panicked"),
            "{node}'s speaker panicked:\n{log}"
        );
    }
    drop(fake);
    lab.down()?;
    Ok(())
}
