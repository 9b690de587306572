//! The membership gossip driver: a UDP socket, timers and a task around the pure
//! [`Membership`] state machine, publishing which speakers are alive.
//!
//! ```text
//!  UDP socket ──datagram──┐
//!  Timers ──timer─────────┼──▶ Membership::handle ──▶ Send ──▶ UDP socket (try_send_to)
//!  set_seeds ──watch──────┤    (pure, ferrolb-shared)├─▶ Schedule ──▶ Timers (timerfd)
//!  leave_and_stop ──stop──┘                          └─▶ MemberUp / MemberDown ──▶ tracing,
//!                                                        watch<MembershipView>, counters
//! ```
//!
//! One task, on its own thread and single-threaded runtime ([`spawn_on`] says why), owns
//! everything; socket errors are counted, logged (at most one warning per
//! [`WARN_EVERY`] per direction) and survived. Sends never wait: a full socket buffer drops
//! the datagram, which SWIM tolerates like any loss.

#[cfg(test)]
mod tests;
mod timers;

use ferrolb_shared::l2::gossip::{Action, Auth, Input, Membership, NodeId, Timing};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use timers::{TimerKey, Timers};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

pub use ferrolb_shared::l2::gossip::DEFAULT_PORT;

/// Socket errors are logged at most once per this period (per direction), and counted always.
pub const WARN_EVERY: Duration = Duration::from_secs(10);
/// How long [`GossipHandle::leave_and_stop`] waits for the task to finish.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a restart notice spreads before this speaker leaves: a few gossip periods, so
/// that no member learns of the leave (and takes this node's addresses) before the notice.
pub const RESTART_SPREAD: Duration = Duration::from_millis(100);
/// Pause after a receive error, so a persistent one cannot spin the task.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// How the gossip runs.
#[derive(Clone)]
pub struct GossipConfig {
    /// This node's name (the Node object's).
    pub node: String,
    /// The node's own address and the gossip port ([`DEFAULT_PORT`]); not `0.0.0.0`: it is
    /// the address peers reach this speaker at (the Node's InternalIP).
    pub bind: SocketAddr,
    /// The cluster's shared secret (at least 16 bytes), read from a file or Secret.
    pub secret: Vec<u8>,
    pub timing: Timing,
    /// The boot number to gossip under; `None`: the start time. A speaker replacing one that
    /// announced a planned restart passes the next one (`layer2::restart_file`), so it is
    /// the same member to the others, not a late starter held down.
    pub boot: Option<u64>,
}

impl GossipConfig {
    /// Default timing.
    pub fn new(node: impl Into<String>, bind: SocketAddr, secret: Vec<u8>) -> Self {
        GossipConfig {
            node: node.into(),
            bind,
            secret,
            timing: Timing::default(),
            boot: None,
        }
    }
}

impl std::fmt::Debug for GossipConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GossipConfig")
            .field("node", &self.node)
            .field("bind", &self.bind)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("timing", &self.timing)
            .finish()
    }
}

/// Which speakers are alive, as this one sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipView {
    /// Node names, this one included.
    pub alive: BTreeSet<String>,
    /// Alive peers, this node not included (0: alone or cut off).
    pub reachable_peers: usize,
    /// When `alive` last changed (start-up, at first).
    pub changed: Instant,
    /// Alive members with their boot numbers (start time, ms since the epoch).
    pub members: BTreeMap<String, u64>,
    /// Speakers gone for a planned restart, with their deadlines (ms since the epoch).
    pub restarting: BTreeMap<String, u64>,
}

/// Datagram and socket counters, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GossipCounters {
    /// Authentic datagrams handled.
    pub accepted: u64,
    /// Dropped: tag missing or wrong.
    pub bad_auth: u64,
    /// Dropped: empty, unknown version, or undecodable.
    pub malformed: u64,
    /// Datagrams handed to the socket.
    pub sent: u64,
    /// Failed sends (dropped datagrams) and receives.
    pub socket_errors: u64,
}

#[derive(Default)]
struct SharedCounters {
    accepted: AtomicU64,
    bad_auth: AtomicU64,
    malformed: AtomicU64,
    sent: AtomicU64,
    socket_errors: AtomicU64,
}

/// A running gossip task. Dropping it stops the task without telling anyone (peers detect
/// it as a failure); [`GossipHandle::leave_and_stop`] leaves gracefully.
pub struct GossipHandle {
    seeds: watch::Sender<Vec<SocketAddr>>,
    /// Carries the deadline of a planned restart, if it is one.
    stop: Option<oneshot::Sender<Option<u64>>>,
    view: watch::Receiver<MembershipView>,
    counters: Arc<SharedCounters>,
    local_addr: SocketAddr,
    node: String,
    /// Closed when the driver's thread ends.
    done: Option<oneshot::Receiver<()>>,
}

impl GossipHandle {
    /// The gossip addresses of every node (InternalIP + gossip port), this one included or
    /// not. Replaces the previous list; only the latest one counts.
    pub fn set_seeds(&self, seeds: Vec<SocketAddr>) {
        self.seeds.send_replace(seeds);
    }

    /// The alive set, updated as members come and go.
    pub fn view(&self) -> watch::Receiver<MembershipView> {
        self.view.clone()
    }

    pub fn counters(&self) -> GossipCounters {
        let c = &self.counters;
        GossipCounters {
            accepted: c.accepted.load(Ordering::Relaxed),
            bad_auth: c.bad_auth.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            socket_errors: c.socket_errors.load(Ordering::Relaxed),
        }
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Tell a few peers this speaker is leaving (so the cluster moves its addresses at
    /// once), then stop.
    pub async fn leave_and_stop(self) {
        self.stop_with(None).await;
    }

    /// The boot number this speaker gossips under now.
    pub fn boot(&self) -> u64 {
        self.view
            .borrow()
            .members
            .get(&self.node)
            .copied()
            .unwrap_or(0)
    }

    /// A planned restart: tell the cluster this node's speaker is coming back by `until_ms`
    /// (wall clock, ms since the epoch), so the others keep counting it alive and leave its
    /// addresses where they are; let that spread ([`RESTART_SPREAD`]), then leave and stop.
    pub async fn restart_and_stop(self, until_ms: u64) {
        self.stop_with(Some(until_ms)).await;
    }

    async fn stop_with(mut self, restart_until_ms: Option<u64>) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(restart_until_ms);
        }
        if let Some(done) = self.done.take()
            && tokio::time::timeout(STOP_TIMEOUT, done).await.is_err()
        {
            warn!("gossip did not stop in time");
        }
    }
}

// Dropping the handle drops `stop`'s sender: the driver sees it and ends at once, silently.

/// Bind the gossip socket and start the task (within a Tokio runtime). Fails if the socket
/// cannot be bound, or on a bad configuration (`InvalidInput`: short secret, unspecified
/// address, bad node name or timing).
pub fn spawn(config: GossipConfig) -> io::Result<GossipHandle> {
    let socket = std::net::UdpSocket::bind(config.bind)?;
    socket.set_nonblocking(true)?;
    let local = socket.local_addr()?;
    spawn_on(config, move || UdpSocket::from_std(socket), local)
}

/// What the task needs from a socket; the UDP socket, or an in-memory one in tests.
pub(crate) trait Transport: Send + Sync + 'static {
    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;
    fn try_send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<()>;
}

impl Transport for UdpSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        UdpSocket::recv_from(self, buf).await
    }

    fn try_send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        UdpSocket::try_send_to(self, bytes, to).map(|_| ())
    }
}

/// Start the driver on its own thread, with a single-threaded Tokio runtime, so that its
/// probes and acks (some 40 wake-ups a second even when nothing happens) never queue behind
/// the speaker's other work, which would delay acks and get a busy speaker declared dead; it
/// also spares each wake-up the multi-threaded runtime's hand-off between workers (measured:
/// a speaker's idle CPU 1.2 % before, 1.1 % after, within noise). `transport` is made on that
/// thread, so a socket registers with its runtime.
pub(crate) fn spawn_on<T: Transport>(
    config: GossipConfig,
    transport: impl FnOnce() -> io::Result<T> + Send + 'static,
    local: SocketAddr,
) -> io::Result<GossipHandle> {
    let invalid =
        |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    let auth = Auth::secret(&config.secret).map_err(|e| invalid(&e))?;
    let id = NodeId {
        node: config.node.clone(),
        addr: local,
        boot: config.boot.unwrap_or_else(boot_number),
    };
    let membership =
        Membership::new(id, auth, config.timing, random_seed()).map_err(|e| invalid(&e))?;
    let (seeds_tx, seeds_rx) = watch::channel(Vec::new());
    let (stop_tx, stop_rx) = oneshot::channel();
    let (view_tx, view_rx) = watch::channel(MembershipView {
        alive: membership.alive_nodes(),
        reachable_peers: 0,
        changed: now(),
        members: membership.members(),
        restarting: BTreeMap::new(),
    });
    let counters = Arc::new(SharedCounters::default());
    let shared = counters.clone();
    let span = tracing::info_span!("gossip", node = %config.node, addr = %local);
    let (done_tx, done_rx) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("gossip".into())
        .spawn(move || {
            let _done = done_tx;
            let _entered = span.enter();
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => return tracing::error!("cannot start the gossip runtime: {e}"),
            };
            runtime.block_on(async move {
                let transport = match transport() {
                    Ok(t) => t,
                    Err(e) => return tracing::error!("cannot set up the gossip socket: {e}"),
                };
                let timers = match Timers::new() {
                    Ok(t) => t,
                    Err(e) => return tracing::error!("cannot set up the gossip timers: {e}"),
                };
                let driver = Driver {
                    membership,
                    transport,
                    timers,
                    ack_deadline: None,
                    view: view_tx,
                    counters: shared,
                    warned: [None, None, None],
                };
                driver.run(seeds_rx, stop_rx).await;
            });
        })?;
    Ok(GossipHandle {
        seeds: seeds_tx,
        stop: Some(stop_tx),
        view: view_rx,
        counters,
        local_addr: local,
        node: config.node.clone(),
        done: Some(done_rx),
    })
}

/// Start time in milliseconds since the epoch: a restarted speaker gets a larger boot
/// number than its previous run, so its new identity wins everywhere.
fn boot_number() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2))
}

/// A per-process random seed (std's hasher keys come from the OS).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(boot_number())
}

/// The current time, from Tokio's clock (which tests may pause).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

const RECV: usize = 0;
const SEND: usize = 1;
const TIMER: usize = 2;

struct Driver<T> {
    membership: Membership,
    transport: T,
    timers: Timers,
    /// The pending ack deadline's key, for [`Action::CancelAckDeadline`].
    ack_deadline: Option<TimerKey>,
    view: watch::Sender<MembershipView>,
    counters: Arc<SharedCounters>,
    /// When a receive / send / timer error was last logged.
    warned: [Option<Instant>; 3],
}

impl<T: Transport> Driver<T> {
    async fn run(
        mut self,
        mut seeds: watch::Receiver<Vec<SocketAddr>>,
        mut stop: oneshot::Receiver<Option<u64>>,
    ) {
        info!("gossip started");
        let mut buf = vec![0u8; 65_536];
        let mut actions = Vec::new();
        // Set once a planned restart was announced: leave then.
        let mut leave_at: Option<tokio::time::Instant> = None;
        let mut timer_failed = false;
        loop {
            // Timers first: one may have come due while a datagram was handled.
            while let Some(timer) = self.timers.pop_due(Instant::now()) {
                self.membership
                    .handle_into(now(), Input::Timer(timer), &mut actions);
                self.carry_out(&mut actions);
            }
            // The timerfd failing (never seen: a valid fd and a valid time) must not stop the
            // datagrams: the timers are then looked at every RECV_ERROR_PAUSE instead.
            if !timer_failed && let Err(e) = self.timers.rearm() {
                self.timer_error(&e);
                timer_failed = true;
            }
            // Armed only once a restart was announced: not a timer per datagram.
            let leave = async {
                match leave_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.transport.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let input = Input::Datagram { from, bytes: &buf[..n] };
                        self.membership.handle_into(now(), input, &mut actions);
                    }
                    Err(e) => {
                        self.socket_error(RECV, &e);
                        tokio::time::sleep(RECV_ERROR_PAUSE).await;
                    }
                },
                r = self.timers.fired(), if !timer_failed => if let Err(e) = r {
                    self.timer_error(&e);
                    timer_failed = true;
                },
                () = tokio::time::sleep(RECV_ERROR_PAUSE), if timer_failed => timer_failed = false,
                Ok(()) = seeds.changed() => {
                    let list = seeds.borrow_and_update().clone();
                    debug!(seeds = list.len(), "seeds updated");
                    self.membership.handle_into(now(), Input::SetSeeds(list), &mut actions);
                }
                r = &mut stop, if leave_at.is_none() => match r {
                    Ok(Some(until_ms)) => {
                        let input = Input::AnnounceRestart { until_ms };
                        self.membership.handle_into(now(), input, &mut actions);
                        leave_at = Some(tokio::time::Instant::now() + RESTART_SPREAD);
                        info!(until_ms, "announced a planned restart");
                    }
                    Ok(None) => return self.leave(&mut actions),
                    // A dropped handle, which aborts this task: leave silently.
                    Err(_) => return,
                },
                () = leave => return self.leave(&mut actions),
            }
            self.carry_out(&mut actions);
        }
    }

    fn leave(&mut self, actions: &mut Vec<Action>) {
        self.membership.handle_into(now(), Input::Leave, actions);
        self.carry_out(actions);
        info!("left the gossip cluster");
    }

    fn carry_out(&mut self, actions: &mut Vec<Action>) {
        let mut members_changed = false;
        for action in actions.drain(..) {
            match action {
                Action::Send { to, bytes } => {
                    if let Err(e) = self.transport.try_send_to(&bytes, to) {
                        self.socket_error(SEND, &e);
                    }
                }
                Action::Schedule { after, timer } => {
                    let ack_deadline = timer.is_ack_deadline();
                    let key = self.timers.insert(timer, after);
                    if ack_deadline {
                        self.ack_deadline = Some(key);
                    }
                }
                // Keys are never reused: one that already came due is simply gone.
                Action::CancelAckDeadline => {
                    if let Some(key) = self.ack_deadline.take() {
                        self.timers.remove(key);
                    }
                }
                Action::MemberUp { node, addr } => {
                    info!(peer = %node, %addr, "member up");
                    members_changed = true;
                }
                Action::MemberDown { node } => {
                    info!(peer = %node, "member down");
                    members_changed = true;
                }
                Action::Rejoined { boot } => {
                    warn!(boot, "the cluster had declared this speaker down; rejoined");
                    members_changed = true;
                }
                Action::Isolated => warn!("no peer reachable"),
                Action::Connected => info!("peers reachable"),
                Action::RestartsChanged => members_changed = true,
            }
        }
        self.store_counters();
        let m = &self.membership;
        let peers = m.reachable_peers();
        self.view.send_if_modified(|view| {
            if !members_changed && view.reachable_peers == peers {
                return false;
            }
            view.restarting = m.restarting();
            let alive = m.alive_nodes();
            if alive != view.alive {
                view.changed = now();
                view.alive = alive;
            }
            view.members = m.members();
            view.reachable_peers = peers;
            true
        });
    }

    fn store_counters(&self) {
        let c = self.membership.counters();
        let s = &self.counters;
        s.accepted.store(c.accepted, Ordering::Relaxed);
        s.bad_auth.store(c.bad_auth, Ordering::Relaxed);
        s.malformed.store(c.malformed, Ordering::Relaxed);
        s.sent.store(c.sent, Ordering::Relaxed);
    }

    fn socket_error(&mut self, direction: usize, error: &io::Error) {
        self.counters.socket_errors.fetch_add(1, Ordering::Relaxed);
        let what = if direction == RECV { "receive" } else { "send" };
        if self.may_warn(direction) {
            warn!(%error, "gossip {what} failed (more are logged at debug level)");
        } else {
            debug!(%error, "gossip {what} failed");
        }
    }

    /// Without its timer this speaker probes nobody (the others still hear its acks): loud.
    fn timer_error(&mut self, error: &io::Error) {
        if self.may_warn(TIMER) {
            tracing::error!(%error, "the gossip timer failed; polling every {RECV_ERROR_PAUSE:?}");
        } else {
            debug!(%error, "the gossip timer failed");
        }
    }

    /// Whether an error of this kind may be logged loudly now (once per [`WARN_EVERY`]).
    fn may_warn(&mut self, kind: usize) -> bool {
        let t = now();
        match self.warned[kind] {
            Some(last) if t.duration_since(last) < WARN_EVERY => false,
            _ => {
                self.warned[kind] = Some(t);
                true
            }
        }
    }
}
