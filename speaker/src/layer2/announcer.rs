//! The layer 2 announcer: answers ARP and NDP for the LoadBalancer IPs this node owns, with
//! raw packet sockets, and announces takeovers with gratuitous ARP / unsolicited neighbor
//! advertisements. The addresses are never configured on an interface.
//!
//! ```text
//!  set_owned / set_carrier ──(command, ack)──▶ control thread ──▶ workers: one per interface
//!                                               │ link dump, plan,   │ filtered AF_PACKET socket
//!                                               │ swap OwnedState,   │ receive thread: parse →
//!                                               │ multicast joins,   │ lookup (read lock) →
//!                                               │ gratuitous + timer │ token bucket → reply
//!                                               ▼                    ▼
//!                                     Shared { RwLock<OwnedState>, counters }
//! ```
//!
//! All sockets and threads are created by the control thread, which is spawned by
//! [`Announcer::new`]: the announcer works in the network namespace of the thread that
//! created it, whichever thread later calls its methods.
//!
//! Guarantees: a frame is answered only if, at that instant, its target is owned, assigned to
//! the interface it came in on, and that interface has carrier. `set_owned` and `set_carrier`
//! return only after the new state is in force: the receive threads hold the state's read
//! lock from lookup to send, and the swap takes the write lock, so no reply for a released
//! address leaves after the call returns. Newly answered (address, interface) pairs get a
//! gratuitous announcement before the call returns, repeated on a timer.

mod bucket;
mod filter;
mod state;
mod worker;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferrolb_shared::l2::election::Interfaces;
use ferrolb_shared::l2::packet::{
    MacAddr, gratuitous_arp, gratuitous_arp_reply, unsolicited_neighbor_advertisement,
};

use self::state::{IpStats, OwnedState, Plan};
use self::worker::Worker;
use super::interfaces::{self, Link, Unusable};

/// How the announcer behaves. [`AnnouncerConfig::default`] has the production values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnouncerConfig {
    /// Gratuitous announcements per takeover (the first at once). 0 sends none.
    pub gratuitous_repeats: u32,
    /// Time between two of them.
    pub gratuitous_interval: Duration,
    /// Re-announce every owned address this often, for switches and hosts with long caches.
    pub refresh: Option<Duration>,
    /// Replies a second to one requester MAC, per interface, after a burst of twice as many.
    /// 0 disables the limit.
    pub reply_rate_per_source: u32,
}

impl Default for AnnouncerConfig {
    fn default() -> Self {
        AnnouncerConfig {
            gratuitous_repeats: 3,
            gratuitous_interval: Duration::from_millis(200),
            refresh: None,
            reply_rate_per_source: 50,
        }
    }
}

/// The counters of one owned address, summed over its interfaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpCounters {
    pub ip: IpAddr,
    /// ARP requests / neighbor solicitations for it received on an interface it is assigned
    /// to.
    pub requests: u64,
    /// Replies sent.
    pub replies: u64,
    /// Gratuitous frames sent (for IPv4 each announcement is two: the request and the reply
    /// form; for IPv6 one unsolicited neighbor advertisement).
    pub gratuitous: u64,
    /// Requests not answered because the requester exceeded its rate.
    pub rate_limited: u64,
}

/// Counters not tied to one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlobalCounters {
    /// Frames claiming to be ARP/NDP that failed to parse or broke an RFC rule.
    pub malformed: u64,
    /// Replies suppressed by the per-requester rate limit, over all addresses.
    pub rate_limited: u64,
    /// Replies and announcements the kernel did not take.
    pub send_errors: u64,
    /// Requests left unanswered because the lease had run out (the process was frozen).
    pub lease_expired: u64,
}

/// The process-wide counters, bumped by the receive threads.
#[derive(Debug, Default)]
struct GlobalStats {
    malformed: AtomicU64,
    rate_limited: AtomicU64,
    send_errors: AtomicU64,
    lease_expired: AtomicU64,
}

impl GlobalStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Until when the announcer may answer, renewed by its owner's event loop
/// ([`Announcer::renew_lease`]). A process frozen (SIGSTOP, a stalled VM) resumes with its
/// lease run out, so the requests that queued in its sockets meanwhile, which other nodes have
/// answered since, are not answered again from a stale view. Never renewed: no limit.
#[derive(Debug)]
struct Lease {
    /// Nanoseconds after [`lease_epoch`]; `u64::MAX` is "no lease".
    until: AtomicU64,
}

impl Default for Lease {
    fn default() -> Self {
        Lease {
            until: AtomicU64::new(u64::MAX),
        }
    }
}

fn lease_epoch() -> Instant {
    static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    *EPOCH
}

impl Lease {
    fn renew(&self, until: Instant) {
        let nanos = until.saturating_duration_since(lease_epoch()).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1);
        self.until.store(nanos, Ordering::Relaxed);
    }

    fn valid(&self, now: Instant) -> bool {
        let until = self.until.load(Ordering::Relaxed);
        let now = u64::try_from(now.saturating_duration_since(lease_epoch()).as_nanos())
            .unwrap_or(u64::MAX);
        until == u64::MAX || now < until
    }
}

/// What the control thread and the receive threads share.
#[derive(Debug, Default)]
struct Shared {
    state: RwLock<OwnedState>,
    global: GlobalStats,
    lease: Lease,
}

impl Shared {
    fn read_state(&self) -> RwLockReadGuard<'_, OwnedState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn replace_state(&self, new: OwnedState) -> OwnedState {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *state, new)
    }
}

enum Command {
    SetOwned(BTreeMap<IpAddr, Interfaces>, mpsc::SyncSender<()>),
    SetCarrier(String, bool, mpsc::SyncSender<()>),
}

/// Answers ARP/NDP for the owned addresses. Dropping it stops it too; [`Announcer::shutdown`]
/// also waits for every thread.
pub struct Announcer {
    shared: Arc<Shared>,
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl Announcer {
    /// Starts the control thread (in the calling thread's network namespace). No socket is
    /// opened until an address is owned.
    pub fn new(config: AnnouncerConfig) -> Self {
        let shared = Arc::new(Shared::default());
        let (commands, rx) = mpsc::channel();
        let control = Control::new(config, shared.clone());
        let thread = std::thread::Builder::new()
            .name("l2-announcer".into())
            .spawn(move || control.run(rx))
            .expect("spawning the layer 2 announcer thread");
        Announcer {
            shared,
            commands: Some(commands),
            thread: Some(thread),
        }
    }

    /// Replaces the set of owned addresses and where to announce them. Addresses that left are
    /// not answered any more once this returns; new ones are answered from now on and have
    /// been announced once (then again on a timer). Blocks for the link dump, the socket
    /// setup and the first announcements (milliseconds).
    pub fn set_owned(&self, owned: BTreeMap<IpAddr, Interfaces>) {
        self.command(|ack| Command::SetOwned(owned, ack));
    }

    /// Fences an interface that lost carrier (nothing is answered or announced there) and
    /// resumes it, with fresh gratuitous announcements, when carrier returns. Until told,
    /// the announcer assumes the carrier the kernel reported when it started using the
    /// interface; feed it the [`CarrierWatcher`](super::interfaces::CarrierWatcher)'s changes.
    pub fn set_carrier(&self, interface: &str, up: bool) {
        self.command(|ack| Command::SetCarrier(interface.to_string(), up, ack));
    }

    /// Allow answers until `until` (see `Lease`); call again well before it runs out.
    pub fn renew_lease(&self, until: Instant) {
        self.shared.lease.renew(until);
    }

    fn command(&self, make: impl FnOnce(mpsc::SyncSender<()>) -> Command) {
        let (ack, done) = mpsc::sync_channel(1);
        let sent = self
            .commands
            .as_ref()
            .is_some_and(|c| c.send(make(ack)).is_ok());
        if !sent || done.recv().is_err() {
            tracing::error!("the layer 2 announcer thread is gone; the command was not applied");
        }
    }

    /// Counters of every owned address.
    pub fn counters(&self) -> Vec<IpCounters> {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.shared
            .read_state()
            .stats
            .iter()
            .map(|(ip, s)| IpCounters {
                ip: *ip,
                requests: load(&s.requests),
                replies: load(&s.replies),
                gratuitous: load(&s.gratuitous),
                rate_limited: load(&s.rate_limited),
            })
            .collect()
    }

    /// Counters not tied to one address.
    pub fn global_counters(&self) -> GlobalCounters {
        let g = &self.shared.global;
        GlobalCounters {
            malformed: g.malformed.load(Ordering::Relaxed),
            rate_limited: g.rate_limited.load(Ordering::Relaxed),
            send_errors: g.send_errors.load(Ordering::Relaxed),
            lease_expired: g.lease_expired.load(Ordering::Relaxed),
        }
    }

    /// The addresses answered right now, and on which interfaces (owned, usable, with
    /// carrier).
    pub fn answering(&self) -> BTreeMap<IpAddr, BTreeSet<String>> {
        let mut out: BTreeMap<IpAddr, BTreeSet<String>> = BTreeMap::new();
        for (ip, interface) in self.shared.read_state().answering() {
            out.entry(ip).or_default().insert(interface);
        }
        out
    }

    /// Stops answering, closes every socket (leaving the multicast groups) and waits for all
    /// threads (within about 100 ms).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.commands = None; // disconnects the control thread's channel
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the layer 2 announcer thread panicked");
        }
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Gratuitous announcements still to send for one (address, interface).
#[derive(Clone, Copy, Debug)]
struct Repeat {
    next: Instant,
    remaining: u32,
}

/// The control thread: owns the workers, the desired state and the announcement timers.
struct Control {
    config: AnnouncerConfig,
    shared: Arc<Shared>,
    owned: BTreeMap<IpAddr, Interfaces>,
    /// What `set_carrier` said, per interface.
    carrier: HashMap<String, bool>,
    /// The last successful link dump.
    links: Vec<Link>,
    workers: BTreeMap<String, Worker>,
    /// Workers told to stop, joined once their thread has ended.
    retiring: Vec<Worker>,
    repeats: BTreeMap<(IpAddr, String), Repeat>,
    next_refresh: Option<Instant>,
    reported: BTreeMap<(IpAddr, String), Unusable>,
    reported_nowhere: BTreeSet<IpAddr>,
}

/// How often the control thread looks at retiring workers.
const REAP_INTERVAL: Duration = Duration::from_millis(100);

impl Control {
    fn new(config: AnnouncerConfig, shared: Arc<Shared>) -> Self {
        Control {
            config,
            shared,
            owned: BTreeMap::new(),
            carrier: HashMap::new(),
            links: Vec::new(),
            workers: BTreeMap::new(),
            retiring: Vec::new(),
            repeats: BTreeMap::new(),
            next_refresh: None,
            reported: BTreeMap::new(),
            reported_nowhere: BTreeSet::new(),
        }
    }

    fn run(mut self, commands: mpsc::Receiver<Command>) {
        loop {
            let command = match self.next_deadline() {
                Some(at) => commands.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => commands
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match command {
                Ok(Command::SetOwned(owned, ack)) => {
                    self.owned = owned;
                    self.reconcile();
                    let _ = ack.send(());
                }
                Ok(Command::SetCarrier(interface, up, ack)) => {
                    let changes = self.carrier_changes(&interface, up);
                    self.carrier.insert(interface, up);
                    if changes {
                        self.reconcile();
                    }
                    let _ = ack.send(());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            self.on_timer(Instant::now());
        }
        // Stop answering first, then take the sockets down.
        self.shared.replace_state(OwnedState::default());
        let workers = std::mem::take(&mut self.workers);
        let all: Vec<Worker> = workers
            .into_values()
            .chain(self.retiring.drain(..))
            .collect();
        for w in &all {
            w.signal_stop();
        }
        for w in all {
            w.join();
        }
    }

    /// Whether carrier `up` on `interface` changes anything: an interface in use whose
    /// state differs, or one not in use (absent, unusable, or its socket failed) that some
    /// address wants and that may now be usable. Keeps a watcher reporting every link of a
    /// busy node from causing a reconcile per unrelated flap.
    fn carrier_changes(&self, interface: &str, up: bool) -> bool {
        let in_use = self
            .shared
            .read_state()
            .interfaces
            .get(interface)
            .map(|i| i.carrier);
        match in_use {
            Some(carrier) => carrier != up,
            None => up && self.owned.values().any(|s| s.contains(interface)),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let repeat = self.repeats.values().map(|r| r.next).min();
        let reap = (!self.retiring.is_empty()).then(|| Instant::now() + REAP_INTERVAL);
        [repeat, self.next_refresh, reap]
            .into_iter()
            .flatten()
            .min()
    }

    /// Brings sockets, memberships and the shared state in line with `owned`, the links and
    /// the carrier, then announces every (address, interface) newly answered.
    fn reconcile(&mut self) {
        match interfaces::links() {
            Ok(links) => self.links = links,
            Err(error) => tracing::warn!(%error, "link dump failed; using the last known links"),
        }
        let plan = state::plan(&self.owned, &self.links);
        self.report(&plan);
        self.update_workers(&plan);
        let workers = &self.workers;
        let carrier = &self.carrier;
        let new_state = {
            let previous = self.shared.read_state();
            state::build(
                &self.owned,
                &plan,
                &previous,
                |name| workers.contains_key(name),
                |iface| carrier.get(&iface.name).copied().unwrap_or(iface.carrier),
            )
        };
        let after = new_state.answering();
        let before = self.shared.replace_state(new_state).answering();
        // From here on, released addresses and fenced interfaces get no answer.
        for (name, worker) in &mut self.workers {
            let ipv6 = plan.interfaces.get(name).map(|(_, ips)| {
                ips.iter()
                    .filter_map(|ip| match ip {
                        IpAddr::V6(v6) => Some(*v6),
                        IpAddr::V4(_) => None,
                    })
                    .collect()
            });
            worker.memberships.update(name, &ipv6.unwrap_or_default());
        }
        self.repeats.retain(|pair, _| after.contains(pair));
        let now = Instant::now();
        for pair in after.difference(&before) {
            tracing::info!(ip = %pair.0, interface = %pair.1, "answering ARP/NDP");
            self.start_announcing(pair.clone(), now);
        }
        for (ip, interface) in before.difference(&after) {
            tracing::info!(%ip, %interface, "no longer answering ARP/NDP");
        }
        self.next_refresh = match (self.config.refresh, after.is_empty()) {
            (Some(period), false) => Some(self.next_refresh.unwrap_or(now + period)),
            _ => None,
        };
    }

    /// Starts workers for interfaces the plan needs, restarts those whose index or MAC
    /// changed (the link was recreated), and retires the rest.
    fn update_workers(&mut self, plan: &Plan) {
        let stale: Vec<String> = self
            .workers
            .iter()
            .filter(|(name, w)| match plan.interfaces.get(*name) {
                Some((iface, _)) => iface.index != w.index || iface.mac != w.mac,
                None => true,
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(worker) = self.workers.remove(&name) {
                worker.signal_stop();
                self.retiring.push(worker);
            }
        }
        for (name, (iface, _)) in &plan.interfaces {
            if self.workers.contains_key(name) {
                continue;
            }
            let rate = self.config.reply_rate_per_source;
            match Worker::start(iface, self.shared.clone(), rate) {
                Ok(worker) => {
                    tracing::debug!(interface = %name, index = iface.index, mac = %iface.mac, "packet socket open");
                    self.workers.insert(name.clone(), worker);
                }
                Err(error) => tracing::error!(
                    interface = %name, %error,
                    "cannot open a packet socket; not answering on this interface"
                ),
            }
        }
    }

    /// Logs named interfaces that cannot be used, and addresses with nowhere to go, when
    /// that changes.
    fn report(&mut self, plan: &Plan) {
        for ((ip, interface), why) in &plan.unusable {
            if self.reported.get(&(*ip, interface.clone())) != Some(why) {
                tracing::warn!(%ip, %interface, reason = %why, "cannot announce on this interface");
            }
        }
        self.reported = plan.unusable.clone();
        for ip in plan.nowhere.difference(&self.reported_nowhere) {
            tracing::warn!(%ip, "owned, but no usable interface to announce it on");
        }
        self.reported_nowhere = plan.nowhere.clone();
    }

    fn start_announcing(&mut self, pair: (IpAddr, String), now: Instant) {
        if self.config.gratuitous_repeats == 0 || !self.announce(&pair) {
            return;
        }
        let remaining = self.config.gratuitous_repeats - 1;
        if remaining > 0 {
            let next = now + self.config.gratuitous_interval;
            self.repeats.insert(pair, Repeat { next, remaining });
        }
    }

    /// Sends due repeats and refreshes, and joins retired workers that have stopped.
    fn on_timer(&mut self, now: Instant) {
        let due: Vec<(IpAddr, String)> = self
            .repeats
            .iter()
            .filter(|(_, r)| r.next <= now)
            .map(|(pair, _)| pair.clone())
            .collect();
        for pair in due {
            let still = self.announce(&pair);
            if let Some(repeat) = self.repeats.get_mut(&pair) {
                repeat.remaining = repeat.remaining.saturating_sub(1);
                repeat.next = now + self.config.gratuitous_interval;
                if !still || repeat.remaining == 0 {
                    self.repeats.remove(&pair);
                }
            }
        }
        if let (Some(at), Some(period)) = (self.next_refresh, self.config.refresh)
            && at <= now
        {
            let pairs = self.shared.read_state().answering();
            for pair in pairs.iter().filter(|p| !self.repeats.contains_key(*p)) {
                self.announce(pair);
            }
            self.next_refresh = Some(now + period);
        }
        let (done, running): (Vec<Worker>, Vec<Worker>) = std::mem::take(&mut self.retiring)
            .into_iter()
            .partition(Worker::is_finished);
        self.retiring = running;
        for worker in done {
            worker.join();
        }
    }

    /// Sends one gratuitous announcement of `ip` on `interface` if it is answered there right
    /// now (checked under the read lock, like a reply). Returns whether it is.
    fn announce(&self, (ip, interface): &(IpAddr, String)) -> bool {
        if !self.shared.lease.valid(Instant::now()) {
            return false;
        }
        let state = self.shared.read_state();
        let Some((stats, true)) = state.lookup(interface, *ip) else {
            return false;
        };
        let Some(worker) = self.workers.get(interface) else {
            return false;
        };
        for frame in gratuitous_frames(worker.mac, *ip) {
            match worker.send(&frame) {
                Ok(()) => IpStats::bump(&stats.gratuitous),
                Err(error) => {
                    GlobalStats::bump(&self.shared.global.send_errors);
                    tracing::debug!(%ip, %interface, %error, "sending a gratuitous announcement failed");
                }
            }
        }
        true
    }
}

/// The frames announcing that `ip` is at `mac`: for IPv4 a gratuitous ARP request then the
/// reply form (as MetalLB does, for stacks that only learn from replies); for IPv6 an
/// unsolicited neighbor advertisement to all nodes with the Override flag.
fn gratuitous_frames(mac: MacAddr, ip: IpAddr) -> Vec<Vec<u8>> {
    match ip {
        IpAddr::V4(v4) => vec![gratuitous_arp(mac, v4), gratuitous_arp_reply(mac, v4)],
        IpAddr::V6(v6) => vec![unsolicited_neighbor_advertisement(mac, v6)],
    }
}
