//! The driver over an in-memory network (no sockets): speakers find each other, publish
//! their views, notice a dead one, see a graceful leave at once, and count forged datagrams.

use super::*;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc;

const SECRET: &[u8] = b"driver-test-secret-0123456789";
/// Generous: the protocol takes a few hundred milliseconds, the machine may be busy.
const PATIENCE: Duration = Duration::from_secs(10);

type Datagram = (Vec<u8>, SocketAddr);

/// Delivers datagrams between [`MemSocket`]s by address; unknown addresses lose them.
#[derive(Default)]
struct Hub {
    inboxes: Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Datagram>>>,
}

struct MemSocket {
    addr: SocketAddr,
    hub: Arc<Hub>,
    inbox: tokio::sync::Mutex<mpsc::UnboundedReceiver<Datagram>>,
}

impl Hub {
    fn socket(self: &Arc<Self>, addr: SocketAddr) -> MemSocket {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inboxes.lock().unwrap().insert(addr, tx);
        MemSocket {
            addr,
            hub: self.clone(),
            inbox: tokio::sync::Mutex::new(rx),
        }
    }

    fn send(&self, bytes: &[u8], from: SocketAddr, to: SocketAddr) {
        if let Some(tx) = self.inboxes.lock().unwrap().get(&to) {
            let _ = tx.send((bytes.to_vec(), from));
        }
    }
}

impl Transport for MemSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut inbox = self.inbox.lock().await;
        match inbox.recv().await {
            Some((bytes, from)) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                Ok((n, from))
            }
            None => std::future::pending().await,
        }
    }

    fn try_send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        self.hub.send(bytes, self.addr, to);
        Ok(())
    }
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, i as u8 + 1], DEFAULT_PORT))
}

/// [`spawn_on`] on the hub's in-memory socket for `addr`.
fn spawn_mem(hub: &Arc<Hub>, config: GossipConfig, addr: SocketAddr) -> io::Result<GossipHandle> {
    let socket = hub.socket(addr);
    spawn_on(config, move || Ok(socket), addr)
}

fn start(hub: &Arc<Hub>, i: usize, secret: &[u8]) -> GossipHandle {
    let config = GossipConfig::new(format!("node-{i}"), addr(i), secret.to_vec());
    spawn_mem(hub, config, addr(i)).expect("valid config")
}

/// `n` speakers seeded with every address, once each sees all of them: the handles and the
/// seed list.
async fn converged(hub: &Arc<Hub>, n: usize) -> (Vec<Option<GossipHandle>>, Vec<SocketAddr>) {
    let handles: Vec<Option<GossipHandle>> = (0..n).map(|i| Some(start(hub, i, SECRET))).collect();
    let seeds: Vec<SocketAddr> = (0..n).map(addr).collect();
    for h in handles.iter().flatten() {
        h.set_seeds(seeds.clone());
    }
    for h in handles.iter().flatten() {
        wait_for(h, |v| v.alive == names(0..n) && v.reachable_peers == n - 1).await;
    }
    (handles, seeds)
}

async fn wait_for(handle: &GossipHandle, want: impl Fn(&MembershipView) -> bool) -> Duration {
    let started = tokio::time::Instant::now();
    let mut view = handle.view();
    tokio::time::timeout(PATIENCE, view.wait_for(|v| want(v)))
        .await
        .expect("in time")
        .expect("task running");
    started.elapsed()
}

fn names(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("node-{i}")).collect()
}

#[tokio::test]
async fn speakers_find_each_other_and_notice_a_death_and_a_leave() {
    let hub = Arc::new(Hub::default());
    let (mut handles, _) = converged(&hub, 4).await;

    // Killed: the task is aborted, its inbox stays but nobody answers.
    drop(handles[3].take());
    let mut took = Duration::ZERO;
    for h in handles.iter().flatten() {
        took = took.max(wait_for(h, |v| v.alive == names(0..3)).await);
    }
    println!(
        "driver: a killed speaker was dropped by all in {} ms",
        took.as_millis()
    );

    // Graceful leave: seen well before a failure would be.
    let leaving = handles[2].take().unwrap();
    leaving.leave_and_stop().await;
    let mut took = Duration::ZERO;
    for h in handles.iter().flatten() {
        took = took.max(wait_for(h, |v| v.alive == names(0..2)).await);
    }
    println!("driver: a leave was seen by all in {} ms", took.as_millis());

    let c = handles[0].as_ref().unwrap().counters();
    assert!(c.accepted > 0 && c.sent > 0, "{c:?}");
    assert_eq!(
        (c.bad_auth, c.malformed, c.socket_errors),
        (0, 0, 0),
        "{c:?}"
    );
}

#[tokio::test]
async fn a_planned_restart_is_known_before_the_leave_and_its_replacement_rejoins_as_the_same_member()
 {
    let hub = Arc::new(Hub::default());
    let (mut handles, seeds) = converged(&hub, 3).await;
    let leaving = handles[2].take().unwrap();
    let boot = leaving.boot();
    assert_eq!(
        handles[0].as_ref().unwrap().view().borrow().members["node-2"],
        boot
    );
    leaving.restart_and_stop(123_456).await;
    let restarting = BTreeMap::from([("node-2".to_string(), 123_456u64)]);
    for h in handles.iter().flatten() {
        // Gone from the members, but restarting (both already, since the notice went first).
        wait_for(h, |v| v.alive == names(0..2)).await;
        assert_eq!(h.view().borrow().restarting, restarting);
    }
    // The replacement, under the next boot number, is a member again and ends the restart.
    let mut config = GossipConfig::new("node-2", addr(2), SECRET.to_vec());
    config.boot = Some(boot + 1);
    let back = spawn_mem(&hub, config, addr(2)).expect("valid config");
    back.set_seeds(seeds.clone());
    for h in handles.iter().flatten() {
        wait_for(h, |v| v.alive == names(0..3) && v.restarting.is_empty()).await;
        assert_eq!(h.view().borrow().members["node-2"], boot + 1);
    }
}

#[tokio::test]
async fn forged_and_garbage_datagrams_are_counted_and_ignored() {
    let hub = Arc::new(Hub::default());
    let a = start(&hub, 0, SECRET);
    let b = start(&hub, 1, SECRET);
    let intruder = start(&hub, 2, b"some-other-secret-entirely");
    let seeds: Vec<SocketAddr> = (0..3).map(addr).collect();
    for h in [&a, &b, &intruder] {
        h.set_seeds(seeds.clone());
    }
    wait_for(&a, |v| v.reachable_peers == 1).await;
    wait_for(&b, |v| v.reachable_peers == 1).await;
    for junk in [&b""[..], &[1], &[1; 40], &[9; 100]] {
        hub.send(junk, addr(7), addr(0));
    }
    tokio::time::timeout(PATIENCE, async {
        while a.counters().bad_auth < 2 || a.counters().malformed < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("counted");
    assert_eq!(a.view().borrow().alive, names(0..2));
    assert_eq!(
        intruder.view().borrow().alive,
        BTreeSet::from(["node-2".to_owned()])
    );
}

#[tokio::test]
async fn bad_configurations_are_refused() {
    let hub = Arc::new(Hub::default());
    let short = GossipConfig::new("n", addr(0), b"short".to_vec());
    let err = spawn_mem(&hub, short, addr(0)).err().expect("refused");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let unspecified: SocketAddr = "0.0.0.0:7946".parse().unwrap();
    let config = GossipConfig::new("n", unspecified, SECRET.to_vec());
    let err = spawn_mem(&hub, config, unspecified).err().expect("refused");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("0.0.0.0:7946"), "{err}");
    let shown = format!("{:?}", GossipConfig::new("n", addr(0), SECRET.to_vec()));
    assert!(!shown.contains("driver-test"), "{shown}");
}
