//! The layer 2 event loop: snapshots, the gossip membership and the links' carrier in; the
//! announcer's owned set, Events and the layer 2 status ([`super::status`]) out.
//!
//! ```text
//!  SnapshotReceiver ─┐                    ┌─ elect (pure, ferrolb_shared::l2::election)
//!  gossip view ──────┼─▶ recompute ───────┼─ Handover (pure: release at once, take over from
//!  carrier watch ────┤   (one task)       │  a live node after a delay, from a dead one now)
//!  deadlines ────────┘                    └─▶ Announcer::set_owned, Events, status, metrics
//! ```
//!
//! Liveness comes from gossip (fast) and Node readiness (slow, authoritative); a speaker
//! younger than the hold-down, or back from the dead, is ranked last. Nothing is announced in
//! the first moments after start ([`L2Settings::settle`]), while gossip finds the others.

use super::announcer::{Announcer, AnnouncerConfig};
use super::interfaces::{CARRIER_RESYNC, CarrierWatcher};
use super::restart_file::{self, Resume};
use super::status::StatusSink;
use crate::events::{EventType, Events, ServiceEvent};
use crate::gossip::{self, GossipConfig, GossipHandle, MembershipView};
use crate::metrics::Metrics;
use crate::snapshots::SnapshotReceiver;
use crate::status::StatusTarget;
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::l2::election::{Election, Interfaces, Liveness, elect};
use ferrolb_shared::l2::gossip::Timing;
use ferrolb_shared::l2::handover::{Changes, Handover, LivenessView, node_ready};
use ferrolb_shared::snapshot::Snapshot;
use ferrolb_shared::stop::StopKind;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use ferrolb_shared::l2::gossip::{SECRET_KEY, SECRET_NAME};
/// How long the announcer may answer without hearing from this loop again, and how often the
/// loop renews that lease (see `Lease` in the announcer).
const LEASE: Duration = Duration::from_millis(500);
const LEASE_RENEW: Duration = Duration::from_millis(100);
/// The longest a starting speaker waits for the other speakers before announcing.
pub const SETTLE_MAX: Duration = Duration::from_secs(5);

/// Layer 2 settings (speaker flags).
#[derive(Clone, Debug)]
pub struct L2Settings {
    pub node: String,
    pub lb_class: Option<String>,
    /// UDP port of the gossip, the same on every node.
    pub gossip_port: u16,
    /// The gossip key from `--gossip-secret-file`; otherwise the Secret [`SECRET_NAME`].
    pub gossip_secret: Option<Vec<u8>>,
    pub gossip_timing: Timing,
    /// How long a returning node waits before it may take addresses back.
    pub hold_down: Duration,
    /// How long a new owner waits for a live old owner to let go.
    pub handover: Duration,
    /// Nothing is announced this long after start, nor until gossip has found the other
    /// speakers (at most [`SETTLE_MAX`]).
    pub settle: Duration,
    pub announcer: AnnouncerConfig,
    /// A planned restart ([`StopKind::Keep`]): how long the other speakers keep counting this
    /// node alive, and its addresses here, while its replacement starts. Zero: never (every
    /// stop moves this node's addresses at once).
    pub restart_grace: Duration,
    /// Where a planned restart is handed to the replacement ([`restart_file`]); `None`:
    /// nowhere, so every stop is a leave and the addresses move at once.
    pub restart_file: Option<PathBuf>,
    /// Where the layer 2 status goes: `ServiceL2Status` objects (Kubernetes mode) or
    /// `announcements.yaml` (standalone mode).
    pub status: StatusTarget,
}

impl L2Settings {
    pub fn new(node: impl Into<String>) -> Self {
        L2Settings {
            node: node.into(),
            lb_class: None,
            gossip_port: ferrolb_shared::l2::gossip::DEFAULT_PORT,
            gossip_secret: None,
            gossip_timing: Timing::default(),
            hold_down: Duration::from_secs(10),
            handover: ferrolb_shared::l2::handover::DEFAULT_DELAY,
            settle: Duration::from_millis(500),
            announcer: AnnouncerConfig::default(),
            restart_grace: Duration::from_secs(30),
            restart_file: None,
            status: StatusTarget::None,
        }
    }
}

/// The running layer 2 loop.
pub struct Layer2 {
    stop: watch::Sender<Option<StopKind>>,
    task: JoinHandle<()>,
}

impl Layer2 {
    /// Stop announcing (at once), leave the gossip gracefully, then return. With
    /// [`StopKind::Keep`] (a restart, the data path left programmed) the others are told this
    /// node's speaker comes back within [`L2Settings::restart_grace`], and keep its addresses
    /// here meanwhile; with [`StopKind::Clean`] they take them over at once.
    pub async fn stop(mut self, kind: StopKind) {
        let _ = self.stop.send(Some(kind));
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for Layer2 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn spawn(
    settings: L2Settings,
    snapshots: SnapshotReceiver,
    events: Events,
    metrics: Arc<Metrics>,
) -> Layer2 {
    let (stop, stopped) = watch::channel(None);
    let span = tracing::info_span!("layer2");
    let task = tokio::spawn(run(settings, snapshots, events, metrics, stopped).instrument(span));
    Layer2 { stop, task }
}

/// The gossip this speaker runs, and what it was started with.
struct Gossip {
    handle: GossipHandle,
    bind: SocketAddr,
    secret: Vec<u8>,
    view: watch::Receiver<MembershipView>,
}

struct State {
    settings: L2Settings,
    events: Events,
    metrics: Arc<Metrics>,
    announcer: Announcer,
    handover: Handover,
    snapshot: Option<Arc<Snapshot>>,
    gossip: Option<Gossip>,
    started: Instant,
    settled: bool,
    /// The links' carrier as last handed to the announcer.
    carrier: BTreeMap<String, bool>,
    /// The wall clock (ms since the epoch) of the last [`State::recompute`].
    recomputed_ms: u64,
    /// Gossip has reached another speaker at least once.
    had_peers: bool,
    /// Fenced: cut off from every other speaker (see `isolated`).
    cut_off: bool,
    /// The Services on each owned address, as last reported.
    served: Vec<(IpAddr, Vec<ServiceKey>)>,
    /// Why gossip is not running, said once.
    gossip_problem: Option<String>,
    /// The boot number to gossip under first: this speaker replaces one that announced a
    /// planned restart ([`restart_file`]).
    resume_boot: Option<u64>,
    /// This speaker replaces one that announced a planned restart, and has not resettled
    /// since: the others keep its addresses free for it, so it need not wait
    /// [`L2Settings::settle`] before answering, only for gossip to find them.
    resumed: bool,
    election: Election,
    status: StatusSink,
}

async fn run(
    settings: L2Settings,
    mut snapshots: SnapshotReceiver,
    events: Events,
    metrics: Arc<Metrics>,
    mut stopped: watch::Receiver<Option<StopKind>>,
) {
    let (carrier_watcher, mut carrier) = match CarrierWatcher::spawn(CARRIER_RESYNC) {
        Ok((w, rx)) => (Some(w), Some(rx)),
        Err(e) => {
            tracing::error!("cannot watch the links' carrier ({e}); assuming every link is up");
            (None, None)
        }
    };
    let resume_boot = settings
        .restart_file
        .as_deref()
        .and_then(|p| restart_file::take(p, wall_ms()));
    if let Some(boot) = resume_boot {
        tracing::info!(
            boot,
            "replacing a speaker that announced a planned restart: keeping its addresses"
        );
    }
    let mut state = State {
        resumed: resume_boot.is_some(),
        resume_boot,
        announcer: Announcer::new(settings.announcer.clone()),
        handover: Handover::new(settings.node.clone(), settings.handover),
        status: StatusSink::start(settings.status.clone(), &settings.node),
        settings,
        events,
        metrics,
        snapshot: None,
        gossip: None,
        started: Instant::now(),
        settled: false,
        recomputed_ms: 0,
        carrier: BTreeMap::new(),
        had_peers: false,
        cut_off: false,
        served: Vec::new(),
        gossip_problem: None,
        election: Election::default(),
    };
    if let Some(rx) = carrier.as_mut() {
        let map = rx.borrow_and_update().clone();
        state.apply_carrier(&map);
    }
    let mut metrics_tick = tokio::time::interval(Duration::from_secs(1));
    let mut lease_tick = tokio::time::interval(LEASE_RENEW);
    lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_renewal = Instant::now();
    state.announcer.renew_lease(last_renewal + LEASE);
    let mut exported = Exported::default();
    loop {
        let deadline = state.next_deadline();
        let sleep = tokio::time::sleep_until(deadline.unwrap_or_else(far_future).into());
        tokio::select! {
            s = snapshots.next() => match s {
                Some(s) => {
                    state.snapshot = Some(s);
                    state.ensure_gossip();
                }
                None => break,
            },
            Some(()) = changed(state.gossip.as_mut().map(|g| &mut g.view)) => state.follow_membership(),
            Some(()) = changed(carrier.as_mut()) => {
                if let Some(rx) = carrier.as_mut() {
                    let map = rx.borrow_and_update().clone();
                    state.apply_carrier(&map);
                }
            }
            () = sleep, if deadline.is_some() => {}
            _ = lease_tick.tick() => {
                // A late tick means this process was frozen: the lease ran out meanwhile and
                // the others took over; start over rather than answer from a stale view.
                let now = Instant::now();
                let gap = now.duration_since(last_renewal);
                if gap > LEASE {
                    state.resettle(&format!("this speaker was frozen for {gap:?}"));
                }
                state.announcer.renew_lease(now + LEASE);
                last_renewal = now;
                if !due(deadline) {
                    continue;
                }
            }
            _ = metrics_tick.tick() => {
                state.export_counters(&mut exported);
                if !due(deadline) {
                    continue;
                }
            }
            _ = stopped.changed() => break,
        }
        state.recompute();
    }
    // Stop answering first, then tell the others, so they take over at once (or, for a
    // restart, keep counting this node alive).
    state.announcer.set_owned(BTreeMap::new());
    state.announcer.shutdown();
    let kind = *stopped.borrow();
    if let Some(g) = state.gossip.take() {
        match (kind, state.settings.restart_file.as_deref()) {
            (Some(StopKind::Keep), Some(path)) if !state.settings.restart_grace.is_zero() => {
                let until_ms = wall_ms().saturating_add(
                    u64::try_from(state.settings.restart_grace.as_millis()).unwrap_or(u64::MAX),
                );
                let boot = g.handle.boot();
                match restart_file::save(path, Resume { boot, until_ms }) {
                    Ok(()) => g.handle.restart_and_stop(until_ms).await,
                    Err(e) => {
                        tracing::warn!(
                            file = %path.display(),
                            "cannot leave the planned restart to the next speaker ({e}): \
                             leaving instead, the others take this node's addresses"
                        );
                        g.handle.leave_and_stop().await;
                    }
                }
            }
            _ => g.handle.leave_and_stop().await,
        }
    }
    if let Some(w) = carrier_watcher {
        w.stop();
    }
    state.status.stop().await;
}

/// The deadline has passed. A tick that wins the race against the deadline's own sleep must
/// still recompute: some deadlines (a hold-down's end) are gone from
/// [`State::next_deadline`] once passed, and would otherwise never be acted on (seen in the
/// lab: a paused speaker never took its address back).
fn due(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| d <= Instant::now())
}

/// Waits for a change of an optional watch; never resolves without one (or once it closed).
async fn changed<T>(rx: Option<&mut watch::Receiver<T>>) -> Option<()> {
    match rx {
        Some(rx) => rx.changed().await.ok(),
        None => std::future::pending().await,
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl State {
    fn next_deadline(&self) -> Option<Instant> {
        let now = Instant::now();
        let settle = (self.started + self.settings.settle).max(now + Duration::from_millis(50));
        let settling = (!self.settled).then_some(settle);
        // Hold-downs (and restart deadlines) ending after the last recompute, even if the wall
        // clock has passed them meanwhile: one that ended between two passes of the loop must
        // still be acted on (found in the lab: a paused speaker, back, never took its address
        // again). Read in place: this runs on every turn of the loop.
        let young = self.gossip.as_ref().and_then(|g| {
            let v = g.view.borrow();
            let view = LivenessView {
                members: Some(&v.members),
                restarting: Some(&v.restarting),
                now_ms: self.recomputed_ms,
                hold: self.settings.hold_down,
            };
            let end = view.next_change_ms()?;
            Some(now + Duration::from_millis(end.saturating_sub(wall_ms())))
        });
        [settling, self.handover.next_deadline(), young]
            .into_iter()
            .flatten()
            .min()
    }

    /// Hand the links' carrier to the announcer (it answers nothing on a link without one).
    /// A link coming back means this node may have been cut off, with others taking its
    /// addresses: start over (answer nothing until settled again) before it answers there.
    fn apply_carrier(&mut self, map: &BTreeMap<String, bool>) {
        let regained = map
            .iter()
            .any(|(i, up)| *up && self.carrier.get(i) == Some(&false));
        if regained {
            self.resettle("a link regained its carrier");
        }
        for (interface, up) in map {
            if self.carrier.get(interface) != Some(up) {
                self.announcer.set_carrier(interface, *up);
            }
        }
        for gone in self.carrier.keys().filter(|i| !map.contains_key(*i)) {
            self.announcer.set_carrier(gone, false);
        }
        self.carrier = map.clone();
    }

    /// Forget what this node announces and settle again, as after a start: used when its view
    /// of who owns what can no longer be trusted (it was cut off).
    fn resettle(&mut self, why: &str) {
        if !self.settled {
            return;
        }
        tracing::warn!("{why}: stopping every announcement until the speakers agree again");
        self.handover = Handover::new(self.settings.node.clone(), self.settings.handover);
        self.announcer.set_owned(BTreeMap::new());
        self.metrics.l2_announced.reset();
        self.settled = false;
        self.resumed = false;
        self.started = Instant::now();
        // The status must not go on naming this node while it answers nothing.
        self.served.clear();
        if let Some(snapshot) = &self.snapshot {
            self.status
                .report(snapshot, &self.election, self.handover.owned());
        }
    }

    /// Cut off: gossip reaches no other speaker although it did before, or although other
    /// speakers are out there (their datagrams fail authentication: this one has the wrong
    /// key), while other Ready nodes exist. This speaker cannot tell whether they died or it
    /// is the one cut off, and Node readiness, still Ready, says they are alive: it fences
    /// itself (announces nothing), rather than answer for every address beside them. In a
    /// two-node cluster that means a takeover waits for the dead Node to turn NotReady.
    fn isolated(&self, snapshot: &Snapshot) -> bool {
        let Some(g) = &self.gossip else {
            return false;
        };
        let strangers = g.handle.counters().bad_auth > 0;
        let view = g.view.borrow();
        // A node whose speaker announced a planned restart is not one this speaker could be
        // cut off from (in a two-node cluster, the other one restarting).
        let now_ms = wall_ms();
        let restarting = |n: &str| view.restarting.get(n).is_some_and(|until| *until > now_ms);
        (self.had_peers || strangers)
            && view.reachable_peers == 0
            && snapshot.nodes.keys().any(|n| {
                *n != self.settings.node
                    && node_ready(snapshot, n)
                    && node_address(snapshot, n).is_some()
                    && !restarting(n)
            })
    }

    /// Start gossip once this node's address and the key are known; restart it when either
    /// changes; keep the seeds (every other node's address) current.
    fn ensure_gossip(&mut self) {
        let Some(snapshot) = self.snapshot.clone() else {
            return;
        };
        let Some(addr) = node_address(&snapshot, &self.settings.node) else {
            self.problem("this node has no InternalIP address yet; gossip waits for it");
            return;
        };
        let bind = SocketAddr::new(addr, self.settings.gossip_port);
        let Some(secret) = self.secret(&snapshot) else {
            self.problem(&format!(
                "no gossip key (--gossip-secret-file, or Secret {SECRET_NAME} key {SECRET_KEY}): \
                 layer 2 failover falls back to Node readiness, which takes tens of seconds"
            ));
            self.stop_gossip();
            return;
        };
        let current = self
            .gossip
            .as_ref()
            .is_some_and(|g| g.bind == bind && g.secret == secret);
        if !current {
            self.stop_gossip();
            let config = GossipConfig {
                node: self.settings.node.clone(),
                bind,
                secret: secret.clone(),
                timing: self.settings.gossip_timing.clone(),
                boot: self.resume_boot.take(),
            };
            match gossip::spawn(config) {
                Ok(handle) => {
                    tracing::info!(%bind, "gossip started");
                    let view = handle.view();
                    self.gossip = Some(Gossip {
                        handle,
                        bind,
                        secret,
                        view,
                    });
                    self.gossip_problem = None;
                }
                Err(e) => {
                    self.problem(&format!("cannot start gossip on {bind}: {e}"));
                    return;
                }
            }
        }
        if let Some(g) = &self.gossip {
            let seeds: Vec<SocketAddr> = snapshot
                .nodes
                .keys()
                .filter(|n| **n != self.settings.node)
                .filter_map(|n| node_address(&snapshot, n))
                .filter(|a| a.is_ipv4() == addr.is_ipv4())
                .map(|a| SocketAddr::new(a, self.settings.gossip_port))
                .collect();
            g.handle.set_seeds(seeds);
        }
    }

    fn stop_gossip(&mut self) {
        if let Some(g) = self.gossip.take() {
            tokio::spawn(g.handle.leave_and_stop());
        }
    }

    fn problem(&mut self, message: &str) {
        if self.gossip_problem.as_deref() != Some(message) {
            tracing::warn!("{message}");
            self.gossip_problem = Some(message.to_string());
        }
    }

    fn secret(&self, snapshot: &Snapshot) -> Option<Vec<u8>> {
        if let Some(s) = &self.settings.gossip_secret {
            return Some(s.clone());
        }
        snapshot
            .secrets
            .iter()
            .find(|(k, _)| k.name == SECRET_NAME)
            .and_then(|(_, s)| s.data.as_ref()?.get(SECRET_KEY).map(|b| b.0.clone()))
    }

    /// Gossip changed (the election reads the view itself): leave the fence when the other
    /// speakers are back.
    fn follow_membership(&mut self) {
        let Some(g) = self.gossip.as_mut() else {
            return;
        };
        let view = g.view.borrow_and_update().clone();
        if view.reachable_peers > 0 {
            if self.cut_off {
                self.cut_off = false;
                self.resettle("the other speakers are reachable again");
            }
            self.had_peers = true;
        }
        self.metrics.gossip_members.set(view.alive.len() as i64);
    }

    /// Settled once gossip has found every other Ready node's speaker, or after
    /// [`SETTLE_MAX`] (a node without a speaker must not keep the others silent), and never
    /// before [`L2Settings::settle`]: until then this speaker does not know who else is alive,
    /// and would claim addresses others answer for.
    fn settled(&mut self, snapshot: &Snapshot, now: Instant) -> bool {
        if self.settled {
            return true;
        }
        let age = now.duration_since(self.started);
        if age < self.settings.settle && !self.resumed {
            return false;
        }
        let everyone = match &self.gossip {
            None => true,
            Some(g) => {
                let alive = &g.view.borrow().alive;
                snapshot
                    .nodes
                    .keys()
                    .filter(|n| node_ready(snapshot, n) && node_address(snapshot, n).is_some())
                    .all(|n| alive.contains(n))
            }
        };
        self.settled = everyone || age >= SETTLE_MAX;
        if self.settled {
            tracing::info!(after = ?age, all_speakers_seen = everyone, "layer 2 settled");
        }
        self.settled
    }

    fn recompute(&mut self) {
        let now = Instant::now();
        let now_ms = wall_ms();
        // Before the early returns: the first pass after settling looks at everything anyway.
        self.recomputed_ms = now_ms;
        let Some(snapshot) = self.snapshot.clone() else {
            return;
        };
        if !self.settled(&snapshot, now) {
            return;
        }
        let (members, restarting) = self
            .gossip
            .as_ref()
            .map(|g| {
                let v = g.view.borrow();
                (v.members.clone(), v.restarting.clone())
            })
            .unzip();
        let view = LivenessView {
            members: members.as_ref(),
            restarting: restarting.as_ref(),
            now_ms,
            hold: self.settings.hold_down,
        };
        let isolated = self.isolated(&snapshot);
        if isolated != self.cut_off {
            if isolated {
                tracing::warn!("cut off from every other speaker: announcing nothing");
            }
            self.cut_off = isolated;
        }
        let me = self.settings.node.clone();
        let election = elect(&snapshot, self.settings.lb_class.as_deref(), |n| {
            if isolated && n == me {
                Liveness::Dead
            } else {
                view.of(&snapshot, n)
            }
        });
        let alive = |n: &str| view.of(&snapshot, n) != Liveness::Dead;
        if tracing::enabled!(tracing::Level::DEBUG) {
            let liveness: Vec<String> = snapshot
                .nodes
                .keys()
                .map(|n| format!("{n}={:?}", view.of(&snapshot, n)))
                .collect();
            let owners: Vec<String> = election
                .assignments
                .iter()
                .map(|(ip, a)| format!("{ip}={}", a.node))
                .collect();
            tracing::debug!(liveness = liveness.join(" "), owners = owners.join(" "), next = ?self.next_deadline().map(|d| d.saturating_duration_since(now)), "recomputed");
        }
        let changes = self.handover.update(now, &election, alive);
        let elected_changed = !self
            .election
            .assignments
            .keys()
            .eq(election.assignments.keys());
        self.election = election;
        if elected_changed {
            self.metrics.l2_elected.reset();
            for ip in self.election.assignments.keys() {
                self.metrics
                    .l2_elected
                    .with_label_values(&[&ip.to_string()])
                    .set(1);
            }
        }
        for ip in self.handover.pending() {
            tracing::debug!(%ip, "waiting for the previous owner to let go");
        }
        // The Services on an owned address can change without the address moving (a Service
        // joins a shared IP, one is recreated): the status follows them too.
        let served: Vec<(IpAddr, Vec<ServiceKey>)> = self
            .handover
            .owned()
            .keys()
            .map(|ip| {
                let services = self.election.assignments.get(ip);
                (
                    *ip,
                    services.map(|a| a.services.clone()).unwrap_or_default(),
                )
            })
            .collect();
        if changes.is_empty() {
            if served != self.served {
                self.served = served;
                self.status
                    .report(&snapshot, &self.election, self.handover.owned());
            }
            return;
        }
        self.served = served;
        let liveness: Vec<String> = snapshot
            .nodes
            .keys()
            .map(|n| format!("{n}={:?}", view.of(&snapshot, n)))
            .collect();
        tracing::info!(liveness = liveness.join(" "), now_ms = view.now_ms, members = ?members, "layer 2 ownership changed");
        self.announcer.set_owned(self.handover.owned().clone());
        self.report(&snapshot, &changes);
    }

    /// Log, Events, metrics and the layer 2 status after the owned set changed.
    fn report(&self, snapshot: &Snapshot, changes: &Changes) {
        let node = &self.settings.node;
        for ip in &changes.acquired {
            let Some(a) = self.election.assignments.get(ip) else {
                continue;
            };
            let interfaces = describe(&a.interfaces);
            tracing::info!(%ip, interfaces, "announcing");
            for service in &a.services {
                let uid = snapshot
                    .services
                    .get(service)
                    .and_then(|s| s.uid.as_deref().map(String::from));
                self.events.record(ServiceEvent {
                    service: service.clone(),
                    uid,
                    kind: EventType::Normal,
                    reason: "nodeAssigned",
                    message: format!(
                        "announcing {ip} from node {node} ({interfaces}) with layer 2"
                    ),
                });
            }
        }
        for ip in &changes.released {
            let owner = self.election.assignments.get(ip).map(|a| a.node.as_str());
            tracing::info!(%ip, new_owner = owner.unwrap_or("none"), "no longer announcing");
        }
        self.metrics.l2_announced.reset();
        for ip in self.handover.owned().keys() {
            self.metrics
                .l2_announced
                .with_label_values(&[&ip.to_string()])
                .set(1);
        }
        self.status
            .report(snapshot, &self.election, self.handover.owned());
    }
}

/// The counters as last exported, so Prometheus counters grow by the difference.
#[derive(Default)]
struct Exported {
    per_ip: BTreeMap<(IpAddr, &'static str), u64>,
    global: BTreeMap<&'static str, u64>,
}

impl Exported {
    fn delta(&mut self, key: (IpAddr, &'static str), now: u64) -> u64 {
        let was = self.per_ip.insert(key, now).unwrap_or(0);
        now.saturating_sub(was)
    }

    fn global_delta(&mut self, key: &'static str, now: u64) -> u64 {
        let was = self.global.insert(key, now).unwrap_or(0);
        now.saturating_sub(was)
    }
}

impl State {
    fn export_counters(&self, exported: &mut Exported) {
        let m = &self.metrics;
        for c in self.announcer.counters() {
            let ip = c.ip.to_string();
            for (name, value, counter) in [
                ("requests", c.requests, &m.l2_requests),
                ("replies", c.replies, &m.l2_replies),
                ("gratuitous", c.gratuitous, &m.l2_gratuitous),
            ] {
                let d = exported.delta((c.ip, name), value);
                counter.with_label_values(&[&ip]).inc_by(d);
            }
        }
        let g = self.announcer.global_counters();
        for (name, value) in [
            ("malformed", g.malformed),
            ("rate_limited", g.rate_limited),
            ("send_error", g.send_errors),
            ("lease_expired", g.lease_expired),
        ] {
            let d = exported.global_delta(name, value);
            m.l2_dropped.with_label_values(&[name]).inc_by(d);
        }
        if let Some(gossip) = &self.gossip {
            let c = gossip.handle.counters();
            for (name, value) in [
                ("accepted", c.accepted),
                ("bad_auth", c.bad_auth),
                ("malformed", c.malformed),
            ] {
                let d = exported.global_delta(name, value);
                m.gossip_datagrams.with_label_values(&[name]).inc_by(d);
            }
        }
    }
}

pub(super) fn describe(interfaces: &Interfaces) -> String {
    match interfaces {
        Interfaces::All => "every usable interface".into(),
        Interfaces::Named(names) => names.iter().cloned().collect::<Vec<_>>().join(", "),
    }
}

/// This node's first InternalIP (IPv4 first), where its gossip listens.
fn node_address(snapshot: &Snapshot, node: &str) -> Option<IpAddr> {
    let mut addrs: Vec<IpAddr> = snapshot
        .nodes
        .get(node)?
        .status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .filter_map(|a| a.address.parse().ok())
        .collect();
    addrs.sort_by_key(|a: &IpAddr| a.is_ipv6());
    addrs.first().copied()
}
