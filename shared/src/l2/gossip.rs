//! Speaker membership gossip: which speakers are alive, agreed by all of them in well under a
//! second, so layer 2 failover does not wait ~40 s for Kubernetes node readiness.
//!
//! [`Membership`] is a sans-IO state machine: [`Membership::handle`] takes the time and one
//! [`Input`] (a datagram, a timer firing, a new seed list, leave) and returns [`Action`]s (send
//! a datagram, arm a timer, a member came up or went down). It never reads a clock: timers
//! go out as [`Action::Schedule`] and come back as [`Input::Timer`].
//!
//! # Protocol
//!
//! SWIM with suspicion and infection-style dissemination, as implemented by the `foca`
//! crate: every `probe_period` each member pings one member (a shuffled round robin, so each
//! member is probed by someone about once a period), asks `indirect_probes` others to ping it
//! too when no ack comes within `probe_rtt`, marks it *suspect* when the period ends without
//! any ack, and declares it *down* `suspect_to_down` later unless it refutes by raising its
//! incarnation. News rides on every ping and ack, and on gossip messages sent to
//! `indirect_probes` members every `gossip_period` while there is news to tell (a timer armed
//! only then: an idle member wakes only to probe).
//!
//! foca implements the SWIM paper's extensions, not Lifeguard's (no local health multiplier,
//! no suspicion timeout that shrinks with confirmations): timeouts are fixed, so they are
//! chosen for a LAN below. A member wrongly declared down (a stalled process) learns it from
//! the next message it sends (`TurnUndead`) and rejoins at once under a renewed identity
//! ([`NodeId::boot`] + 1), so a false positive costs one failover and one failback.
//!
//! Joining: [`Input::SetSeeds`] gives the gossip addresses of every node (from the Node
//! objects). New seeds that are not members yet are sent an `Announce` at once (the reply
//! carries a sample of members), and every `seed_retry` up to `seed_fanout` random seeds that
//! are not alive members are announced to again: that (re)joins an isolated member, heals a
//! partition, and finds members started later. Every `announce_period` one random member is
//! also asked for a sample of members, so full membership converges in a large cluster.
//!
//! # Traffic
//!
//! Per member and per `probe_period`, in steady state: one ping and one ack sent (and one of
//! each received on average), independent of the cluster size N. A failed probe adds
//! `indirect_probes` ping requests (each costing 4 small datagrams). News adds gossip
//! datagrams for a bounded number of rounds (each item is sent at most `max_transmissions`
//! times by each member, and that bound grows as log N). Every `announce_period`: one announce
//! and one reply of at most `max_datagram` bytes. Every `seed_retry`: at most `seed_fanout`
//! announces, only while some seed is not an alive member. Nothing is all-to-all: the cost per
//! member is O(1) per period (and O(log N) per membership change); datagrams stay under
//! `max_datagram` (1400 bytes, below a 1500-byte MTU).
//!
//! # Authentication
//!
//! Every datagram is `[version][HMAC-SHA256 tag][payload]` (see [`auth`]). Datagrams with a
//! wrong version or a bad or missing tag are dropped and counted ([`Counters`]) before any
//! parsing; foca's payload is decoded by a bounds-checked codec that never panics.

pub mod auth;
mod codec;
pub mod restart;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use auth::{Auth, AuthError};
pub use codec::{MAX_NAME_LEN, NodeId};
pub use restart::RestartNotice;

use codec::WireCodec;
use foca::{Codec, Foca, Message, Notification, PeriodicParams, ProbeNumber, Runtime};
use rand::rngs::SmallRng;
use rand::seq::IteratorRandom;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroUsize};
use std::time::{Duration, Instant};

/// The Secret (in the speakers' namespace, or a manifest in standalone mode) whose key
/// [`SECRET_KEY`] authenticates gossip, as MetalLB's `memberlist` Secret does; the
/// controller creates it when it is missing.
pub const SECRET_NAME: &str = "ferrolb-memberlist";
pub const SECRET_KEY: &str = "secretkey";

/// The default UDP port of speaker gossip (memberlist's, as MetalLB uses).
pub const DEFAULT_PORT: u16 = 7946;
/// At most this many seeds are announced to at once when a seed list arrives; the rest are
/// reached by the periodic retry.
const JOIN_BURST: usize = 64;
/// How long foca remembers a down identity (it is keyed by address, so memory stays bounded
/// by the number of nodes); foca's own default.
const REMOVE_DOWN_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Protocol timing. [`Timing::default`] is tuned for sub-second detection on a LAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How often each member probes one other member. Default 50 ms.
    pub probe_period: Duration,
    /// How long a direct ping waits for its ack before asking others to try. Default 20 ms:
    /// LAN round trips are well under 1 ms, the rest is room for a busy node; the indirect
    /// round (two round trips) must fit in the remaining `probe_period - probe_rtt`.
    pub probe_rtt: Duration,
    /// Members asked to ping a member that did not answer. Default 3.
    pub indirect_probes: usize,
    /// How long a suspect may refute before it is declared down. Default 100 ms: two probe
    /// periods, long enough for the suspicion to reach the member (every ping carries news)
    /// and its refutation to come back, short enough to keep the median takeover near 200 ms.
    ///
    /// The defaults were chosen on the failover bench (`--bench failover`, part `timing`):
    /// SIGKILL takeover median / worst 100/40/200 ms: 329-340 / 417-420 ms; 50/20/100 ms:
    /// 205-224 / 266-306 ms; 40/15/60 ms: 133 / 143-154 ms; and no false failover under
    /// either with both cores busy (16 busy threads). What does cost a failover is a stall of
    /// the speaker longer than the detection time (a paused process or VM), so the shorter
    /// settings are left to clusters whose nodes never stall that long.
    pub suspect_to_down: Duration,
    /// How often news (if any) is pushed to `indirect_probes` random members (foca's gossip
    /// fanout). Default 20 ms. Each piece of news is sent a bounded number of times
    /// (`max_transmissions`) whatever the period, so a short one costs nothing more, nor
    /// anything at all while nothing changes (the timer is armed only while there is news);
    /// it only makes a death reach 100 members in ~5 rounds, ~100 ms.
    pub gossip_period: Duration,
    /// How often one random member is asked for a sample of members. Default 5 s.
    pub announce_period: Duration,
    /// How often seeds that are not alive members are announced to again. Default 1 s.
    pub seed_retry: Duration,
    /// Seeds announced to per retry. Default 2.
    pub seed_fanout: usize,
    /// Least number of times each member passes on each piece of news; grows as
    /// `4 × log10(N + 1)` in larger clusters. Default 10.
    pub max_transmissions: u8,
    /// Largest datagram sent or accepted, framing included. Default 1400.
    pub max_datagram: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            probe_period: Duration::from_millis(50),
            probe_rtt: Duration::from_millis(20),
            indirect_probes: 3,
            suspect_to_down: Duration::from_millis(100),
            gossip_period: Duration::from_millis(20),
            announce_period: Duration::from_secs(5),
            seed_retry: Duration::from_secs(1),
            seed_fanout: 2,
            max_transmissions: 10,
            max_datagram: 1400,
        }
    }
}

impl Timing {
    /// Check the values foca would otherwise reject or misbehave with.
    pub fn validate(&self) -> Result<(), GossipError> {
        let bad = |what: &str| Err(GossipError::Timing(what.to_owned()));
        let zero = Duration::ZERO;
        if self.probe_rtt == zero || self.probe_rtt >= self.probe_period {
            return bad("probe_rtt must be non-zero and shorter than probe_period");
        }
        if [
            self.suspect_to_down,
            self.gossip_period,
            self.announce_period,
            self.seed_retry,
        ]
        .contains(&zero)
        {
            return bad("durations must be non-zero");
        }
        if self.indirect_probes == 0 || self.seed_fanout == 0 {
            return bad("fanouts must be at least 1");
        }
        if self.max_transmissions == 0 {
            return bad("max_transmissions must be at least 1");
        }
        // A header can hold three identities of up to 281 bytes each (253-byte names).
        if !(1200..=65_000).contains(&self.max_datagram) {
            return bad("max_datagram must be between 1200 and 65000");
        }
        Ok(())
    }
}

/// Why a [`Membership`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GossipError {
    /// The node name is empty or longer than [`MAX_NAME_LEN`] bytes.
    #[error("node name {0:?} must be 1 to {MAX_NAME_LEN} bytes long")]
    NodeName(String),
    /// The gossip address has an unspecified IP or port 0: peers could not reach it.
    #[error("gossip address {0} is not one peers can reach (unspecified IP or port 0)")]
    Address(SocketAddr),
    /// A [`Timing`] value is out of range (which one is said).
    #[error("invalid gossip timing: {0}")]
    Timing(String),
}

/// Something that happened to the membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// A datagram arrived on the gossip socket. `from` is informational: who sent it is
    /// taken from the authenticated payload.
    Datagram { from: SocketAddr, bytes: &'a [u8] },
    /// A timer armed by [`Action::Schedule`] fired.
    Timer(Timer),
    /// The gossip addresses of every node (InternalIP + gossip port). Replaces the last list.
    SetSeeds(Vec<SocketAddr>),
    /// A planned restart: spread a [`RestartNotice`] (this speaker's node and boot, until
    /// `until_ms`, wall clock in ms since the epoch) so the others keep counting this node
    /// alive while its replacement starts. Followed by [`Input::Leave`] once it had time to
    /// spread (a few gossip periods), so nobody learns of the leave before the notice.
    AnnounceRestart { until_ms: u64 },
    /// Graceful shutdown: tell a few members we are leaving so the cluster learns at once.
    /// Everything after this is ignored.
    Leave,
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send one datagram.
    Send { to: SocketAddr, bytes: Vec<u8> },
    /// Feed `timer` back as [`Input::Timer`] once `after` has elapsed.
    Schedule { after: Duration, timer: Timer },
    /// A node's speaker is now alive (it was not).
    MemberUp { node: String, addr: SocketAddr },
    /// A node's speaker is no longer alive.
    MemberDown { node: String },
    /// The cluster had declared this speaker down (a stall, a partition); it rejoined under
    /// a renewed identity.
    Rejoined { boot: u64 },
    /// No peer is alive any more: this speaker is alone, or cut off.
    Isolated,
    /// At least one peer is alive again.
    Connected,
    /// The set of speakers gone for a planned restart changed (see [`Membership::restarting`]).
    RestartsChanged,
    /// The ack deadline armed last ([`Timer::is_ack_deadline`]) need not fire: the ack came
    /// first and the membership already did what the timer would have. Drop it if it is
    /// still pending; a driver that lets it fire is still correct (it is then ignored), it
    /// only wakes for nothing.
    CancelAckDeadline,
}

/// A timer handed out by [`Action::Schedule`]; opaque to the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timer(TimerKind);

impl Timer {
    /// Whether this is a probe's ack deadline, the timer [`Action::CancelAckDeadline`] may
    /// cancel. A driver that wants to cancel it keeps a handle on the last one it armed.
    pub fn is_ack_deadline(&self) -> bool {
        matches!(
            self.0,
            TimerKind::Swim(foca::Timer::SendIndirectProbe { .. })
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TimerKind {
    Swim(foca::Timer<NodeId>),
    Seeds,
    /// Push news to `indirect_probes` members; armed only while there is news (foca's own
    /// periodic gossip timer fires every period even when idle, waking the speaker 50 times
    /// a second for nothing).
    Gossip,
}

/// Datagram counters, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Authentic datagrams handled.
    pub accepted: u64,
    /// Dropped: tag missing or wrong (wrong secret, or forged).
    pub bad_auth: u64,
    /// Dropped: empty, unknown version, or authentic but undecodable.
    pub malformed: u64,
    /// Datagrams sent (handed out as [`Action::Send`]).
    pub sent: u64,
}

type Swim = Foca<NodeId, WireCodec, SmallRng, restart::Handler>;

/// This speaker's view of which speakers are alive.
pub struct Membership {
    swim: Swim,
    id: NodeId,
    auth: Auth,
    timing: Timing,
    rng: SmallRng,
    seeds: BTreeSet<SocketAddr>,
    seed_timer_armed: bool,
    gossip_timer_armed: bool,
    /// Alive peers (not this node), by gossip address.
    peers: BTreeMap<SocketAddr, NodeId>,
    max_transmissions: u8,
    counters: Counters,
    left: bool,
    last_change: Option<Instant>,
    notices: restart::Board,
    /// The direct ping in flight, while its ack is awaited.
    awaited: Option<AwaitedAck>,
}

/// A probe's direct ping, and foca's second probe stage for it (`SendIndirectProbe`: ask
/// others to ping when no ack came within `probe_rtt`). In a healthy cluster the ack always
/// comes first and the timer does nothing when it fires, but it wakes the speaker: a fifth
/// of its idle wake-ups. So when the ack comes, foca is handed the timer at once (it then
/// only notes that the stage was reached) and the driver is told to drop it.
struct AwaitedAck {
    from: NodeId,
    probe: ProbeNumber,
    deadline: foca::Timer<NodeId>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("id", &self.swim.identity())
            .field("peers", &self.peers.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Membership {
    /// A speaker that knows nobody yet. `id.boot` must grow across restarts of the same node
    /// (the driver uses the start time in milliseconds) so a restarted speaker wins over its
    /// old identity. `rng_seed` drives probe order and member choice.
    pub fn new(id: NodeId, auth: Auth, timing: Timing, rng_seed: u64) -> Result<Self, GossipError> {
        if id.node.is_empty() || id.node.len() > MAX_NAME_LEN {
            return Err(GossipError::NodeName(id.node));
        }
        if id.addr.ip().is_unspecified() || id.addr.port() == 0 {
            return Err(GossipError::Address(id.addr));
        }
        timing.validate()?;
        let max_transmissions = timing.max_transmissions;
        let config = swim_config(&timing, max_transmissions);
        let notices = restart::Board::default();
        let swim = Foca::with_custom_broadcast(
            id.clone(),
            config,
            SmallRng::seed_from_u64(rng_seed),
            WireCodec,
            notices.handler(),
        );
        Ok(Membership {
            swim,
            id,
            auth,
            timing,
            rng: SmallRng::seed_from_u64(rng_seed ^ 0x5eed_5eed_5eed_5eed),
            seeds: BTreeSet::new(),
            seed_timer_armed: false,
            gossip_timer_armed: false,
            peers: BTreeMap::new(),
            max_transmissions,
            counters: Counters::default(),
            left: false,
            last_change: None,
            notices,
            awaited: None,
        })
    }

    /// Feed one input; returns what to do.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Vec<Action> {
        let mut actions = Vec::new();
        self.handle_into(now, input, &mut actions);
        actions
    }

    /// [`Membership::handle`], appending to `actions`.
    pub fn handle_into(&mut self, now: Instant, input: Input<'_>, actions: &mut Vec<Action>) {
        if self.left {
            return;
        }
        let mut fx = Effects::default();
        match input {
            Input::Datagram { from: _, bytes } => self.receive(bytes, &mut fx),
            Input::Timer(Timer(TimerKind::Swim(timer))) => {
                if self.awaited.as_ref().is_some_and(|a| a.deadline == timer) {
                    self.awaited = None;
                }
                // Errors here are foca noticing a late or stale timer; nothing to do.
                let _ = self.swim.handle_timer(timer, &mut fx);
            }
            Input::Timer(Timer(TimerKind::Gossip)) => {
                self.gossip_timer_armed = false;
                if self.has_news() {
                    // Errors: nobody to send to yet; the news waits for the next member.
                    let _ = self.swim.gossip(&mut fx);
                }
            }
            Input::Timer(Timer(TimerKind::Seeds)) => {
                self.seed_timer_armed = false;
                let targets = self.pick_seeds(self.timing.seed_fanout, |_| true);
                self.announce(targets, &mut fx);
                self.arm_seed_timer(actions);
            }
            Input::SetSeeds(list) => {
                let list: BTreeSet<SocketAddr> =
                    list.into_iter().filter(|a| *a != self.id.addr).collect();
                let old = std::mem::replace(&mut self.seeds, list);
                let targets = self.pick_seeds(JOIN_BURST, |a| !old.contains(a));
                self.announce(targets, &mut fx);
                self.arm_seed_timer(actions);
            }
            Input::AnnounceRestart { until_ms } => {
                let notice = RestartNotice {
                    node: self.id.node.clone(),
                    boot: self.id.boot,
                    until_ms,
                };
                // Learnt here too (foca passes it through the handler), then pushed at once.
                let _ = self.swim.add_broadcast(&notice.encode());
                let _ = self.swim.gossip(&mut fx);
            }
            Input::Leave => {
                let _ = self.swim.leave_cluster(&mut fx);
                self.left = true;
            }
        }
        self.apply(now, fx, actions);
    }

    /// Names of the nodes whose speaker is alive, this one included (until it leaves).
    pub fn alive_nodes(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.peers.values().map(|id| id.node.clone()).collect();
        if !self.left {
            out.insert(self.id.node.clone());
        }
        out
    }

    /// Every alive member (this one included, until it leaves) with its boot number: the
    /// start time (ms since the epoch) of its current incarnation, which every member sees
    /// alike.
    pub fn members(&self) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = self
            .peers
            .values()
            .map(|id| (id.node.clone(), id.boot))
            .collect();
        if !self.left {
            out.insert(self.id.node.clone(), self.id.boot);
        }
        out
    }

    /// Nodes whose speaker announced a planned restart and has not come back yet, with the
    /// deadline of each (ms since the epoch; some may be past): see [`restart`].
    pub fn restarting(&self) -> BTreeMap<String, u64> {
        self.notices.restarting()
    }

    /// Alive peers, this node not included.
    pub fn reachable_peers(&self) -> usize {
        self.peers.len()
    }

    /// The identity this speaker gossips under now (its `boot` grows on each rejoin).
    pub fn identity(&self) -> &NodeId {
        &self.id
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// When the alive set last changed (`None`: never).
    pub fn last_change(&self) -> Option<Instant> {
        self.last_change
    }

    fn receive(&mut self, bytes: &[u8], fx: &mut Effects) {
        match self.auth.open(bytes) {
            Ok(payload) => {
                let awaited = self.is_awaited_ack(payload);
                match self.swim.handle_data(payload, &mut *fx) {
                    Ok(()) => {
                        self.counters.accepted += 1;
                        if awaited {
                            self.ack_came_first(fx);
                        }
                    }
                    Err(_) => self.counters.malformed += 1,
                }
            }
            Err(auth::Rejected::BadAuth) => self.counters.bad_auth += 1,
            Err(auth::Rejected::Malformed) => self.counters.malformed += 1,
        }
    }

    /// Whether `payload` is the ack of the direct ping in flight, to this identity.
    fn is_awaited_ack(&self, payload: &[u8]) -> bool {
        let Some(a) = &self.awaited else {
            return false;
        };
        WireCodec.decode_header(payload).is_ok_and(|h| {
            h.message == Message::Ack(a.probe) && h.src == a.from && h.dst == *self.swim.identity()
        })
    }

    /// The awaited ack came (and foca took it): run the probe's second stage now, which
    /// finds the probe succeeded, and let the driver drop its timer.
    fn ack_came_first(&mut self, fx: &mut Effects) {
        if let Some(a) = self.awaited.take() {
            let _ = self.swim.handle_timer(a.deadline, &mut *fx);
            fx.ack_deadline_passed = true;
        }
    }

    /// If `deadline` is a probe's ack deadline, note the direct ping foca just sent with it
    /// (if it can be found).
    fn await_ack(&mut self, deadline: &foca::Timer<NodeId>, sends: &[(SocketAddr, Vec<u8>)]) {
        let foca::Timer::SendIndirectProbe { probed_id, .. } = deadline else {
            return;
        };
        self.awaited = sends
            .iter()
            .filter(|(to, _)| *to == probed_id.addr)
            .find_map(|(_, payload)| match WireCodec.decode_header(&payload[..]) {
                Ok(h) if h.dst == *probed_id => match h.message {
                    Message::Ping(probe) => Some(probe),
                    _ => None,
                },
                _ => None,
            })
            .map(|probe| AwaitedAck {
                from: probed_id.clone(),
                probe,
                deadline: deadline.clone(),
            });
    }

    /// Up to `n` random seeds that pass `filter` and are not alive members.
    fn pick_seeds(&mut self, n: usize, filter: impl Fn(&SocketAddr) -> bool) -> Vec<SocketAddr> {
        let peers = &self.peers;
        self.seeds
            .iter()
            .filter(|a| !peers.contains_key(a) && filter(a))
            .copied()
            .sample(&mut self.rng, n)
    }

    fn announce(&mut self, targets: Vec<SocketAddr>, fx: &mut Effects) {
        for addr in targets {
            // foca accepts an Announce addressed to any identity with the receiver's address,
            // so the seed's name and boot need not be known.
            let dst = NodeId {
                node: String::new(),
                addr,
                boot: 0,
            };
            let _ = self.swim.announce(dst, &mut *fx);
        }
    }

    fn has_news(&self) -> bool {
        self.swim.updates_backlog() > 0 || self.swim.custom_broadcast_backlog() > 0
    }

    fn arm_gossip_timer(&mut self, actions: &mut Vec<Action>) {
        if !self.gossip_timer_armed && !self.left && self.has_news() {
            self.gossip_timer_armed = true;
            actions.push(Action::Schedule {
                after: self.timing.gossip_period,
                timer: Timer(TimerKind::Gossip),
            });
        }
    }

    fn arm_seed_timer(&mut self, actions: &mut Vec<Action>) {
        if !self.seed_timer_armed && !self.seeds.is_empty() {
            self.seed_timer_armed = true;
            // Jitter (±25 %) keeps members from announcing in lockstep.
            let base = self.timing.seed_retry;
            let after = base.mul_f64(0.75 + self.rng.random::<f64>() * 0.5);
            actions.push(Action::Schedule {
                after,
                timer: Timer(TimerKind::Seeds),
            });
        }
    }

    /// Turn what foca did into actions, and refresh the alive set if it changed.
    fn apply(&mut self, now: Instant, fx: Effects, actions: &mut Vec<Action>) {
        if fx.ack_deadline_passed {
            actions.push(Action::CancelAckDeadline);
        }
        for (_, timer) in &fx.timers {
            self.await_ack(timer, &fx.sends);
        }
        for (to, payload) in fx.sends {
            self.counters.sent += 1;
            actions.push(Action::Send {
                to,
                bytes: self.auth.seal(&payload),
            });
        }
        for (after, timer) in fx.timers {
            actions.push(Action::Schedule {
                after,
                timer: Timer(TimerKind::Swim(timer)),
            });
        }
        if let Some(id) = fx.rejoined {
            actions.push(Action::Rejoined { boot: id.boot });
            self.id = id;
        }
        if fx.members_changed {
            self.refresh_peers(now, actions);
        }
        self.arm_gossip_timer(actions);
        // A notice ends when its node is back under a newer incarnation: only a change of
        // the members or of the notices can bring that about.
        if fx.members_changed || self.notices.changed() {
            let me = &self.id;
            let peers = &self.peers;
            self.notices.supersede(|node| {
                if node == me.node {
                    return Some(me.boot);
                }
                peers
                    .values()
                    .filter(|id| id.node == node)
                    .map(|id| id.boot)
                    .max()
            });
        }
        if self.notices.take_changed() {
            actions.push(Action::RestartsChanged);
        }
        // After the member changes, so a consumer sees the last member go down first.
        match fx.connected {
            Some(true) => actions.push(Action::Connected),
            Some(false) => actions.push(Action::Isolated),
            None => {}
        }
    }

    fn refresh_peers(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let before = self.alive_nodes();
        self.peers = self
            .swim
            .iter_members()
            .map(|m| (m.id().addr, m.id().clone()))
            .collect();
        let after = self.alive_nodes();
        for node in before.difference(&after) {
            actions.push(Action::MemberDown { node: node.clone() });
        }
        for node in after.difference(&before) {
            if let Some(id) = self.peers.values().find(|id| &id.node == node) {
                actions.push(Action::MemberUp {
                    node: node.clone(),
                    addr: id.addr,
                });
            }
        }
        if before != after {
            self.last_change = Some(now);
        }
        self.tune();
    }

    /// Raise `max_transmissions` as the cluster grows (memberlist's `4 × log10(N + 1)`), so
    /// news still reaches everyone.
    fn tune(&mut self) {
        let n = self.peers.len() + 1;
        let wanted = (4.0 * ((n + 1) as f64).log10()).ceil().min(255.0) as u8;
        let wanted = wanted.max(self.timing.max_transmissions);
        if wanted != self.max_transmissions {
            self.max_transmissions = wanted;
            // Only max_transmissions changes, which foca always allows.
            let _ = self.swim.set_config(swim_config(&self.timing, wanted));
        }
    }
}

fn swim_config(t: &Timing, max_transmissions: u8) -> foca::Config {
    let nz = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
    foca::Config {
        probe_period: t.probe_period,
        probe_rtt: t.probe_rtt,
        num_indirect_probes: nz(t.indirect_probes),
        max_transmissions: NonZeroU8::new(max_transmissions).unwrap_or(NonZeroU8::MIN),
        suspect_to_down_after: t.suspect_to_down,
        remove_down_after: Some(REMOVE_DOWN_AFTER),
        max_packet_size: nz(t.max_datagram.saturating_sub(auth::OVERHEAD)),
        // A member declared down learns it from the next message it sends, and rejoins.
        notify_down_members: true,
        periodic_announce: Some(PeriodicParams {
            frequency: t.announce_period,
            num_members: NonZeroUsize::MIN,
        }),
        periodic_announce_to_down_members: Some(PeriodicParams {
            frequency: t.announce_period,
            num_members: NonZeroUsize::MIN,
        }),
        // Driven by `TimerKind::Gossip`, only while there is news.
        periodic_gossip: None,
    }
}

/// foca's runtime: collects what one call did.
#[derive(Default)]
struct Effects {
    sends: Vec<(SocketAddr, Vec<u8>)>,
    timers: Vec<(Duration, foca::Timer<NodeId>)>,
    members_changed: bool,
    rejoined: Option<NodeId>,
    connected: Option<bool>,
    /// The awaited ack came; its deadline timer is moot.
    ack_deadline_passed: bool,
}

impl Runtime<NodeId> for Effects {
    fn notify(&mut self, notification: Notification<'_, NodeId>) {
        match notification {
            Notification::MemberUp(_) | Notification::MemberDown(_) | Notification::Rename(..) => {
                self.members_changed = true;
            }
            Notification::Rejoin(id) => self.rejoined = Some(id.clone()),
            Notification::Active => self.connected = Some(true),
            Notification::Idle => self.connected = Some(false),
            // Defunct only follows Leave (identities always renew), which ends everything;
            // the rest are foca's optional message-level notifications.
            _ => {}
        }
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.sends.push((to.addr, data.to_vec()));
    }

    fn submit_after(&mut self, event: foca::Timer<NodeId>, after: Duration) {
        self.timers.push((after, event));
    }
}
