//! One BFD session (RFC 5880 §6.8, asynchronous mode, RFC 5881 single hop): a sans-IO state
//! machine.
//!
//! [`Session::handle`] takes the time and one [`Input`] (start, a parsed packet, a timer,
//! administrative down/up, new timers) and returns [`Action`]s in order: send a packet, arm
//! or cancel a timer, report a state change. It never reads a clock: timers go out as
//! [`Action::Schedule`] and come back as [`Input::Timer`].
//!
//! # Driver contract
//!
//! - The driver owns the UDP socket (RFC 5881: destination port 3784, source port in
//!   49152–65535, TTL 255 on send), parses datagrams with
//!   [`ControlPacket::parse`](super::packet::ControlPacket::parse) and picks the session:
//!   by Your Discriminator when it is not zero, else by source address and interface.
//! - **Minimum TTL** is checked before a packet gets here, by the driver with
//!   [`reception::accept`](super::reception::accept): 255 for single hop (RFC 5881 §5), the
//!   profile's [`minimum_ttl`] for multi-hop peers (RFC 5883).
//! - One deadline per [`TimerKind`]: `Schedule` replaces the previous one of that kind,
//!   `Cancel` removes it. A timer that fires early is re-armed with its deadline, one that
//!   the session no longer wants is ignored, so a sloppy driver costs a wake-up, never a
//!   stuck session.
//! - `StateChanged { from: Up, .. }` is what the BGP side acts on: it tears its session down
//!   at once rather than waiting for the hold timer.
//! - Local discriminators are chosen by the caller: nonzero and unique among this node's
//!   sessions (RFC 5880 §6.8.1). The RNG seed for jitter is the caller's too (tests pass
//!   fixed seeds; the driver passes fresh randomness).
//!
//! # What is implemented
//!
//! - States AdminDown/Down/Init/Up and the §6.8.6 reception rules (a three-way handshake:
//!   Down→Init on the peer's Down, Init→Up on the peer's Init or Up, Down→Up on Init).
//! - Slow start: Desired Min TX is at least 1 s while not Up (§6.8.3); the configured rate
//!   applies once Up.
//! - Negotiation: we transmit every max(our Desired Min TX, the peer's Required Min RX),
//!   jittered to 75–100 % (75–90 % when our Detect Mult is 1) per packet (§6.8.7); we detect
//!   a silent peer after its Detect Mult × max(our Required Min RX, its Desired Min TX)
//!   (§6.8.4).
//! - Poll Sequences (§6.5, §6.8.3): any change of our advertised intervals (coming Up, going
//!   down, [`Input::Reconfigure`]) sets Poll on the periodic packets until a Final arrives. A
//!   slower TX rate, or a faster RX requirement, takes effect only when the Poll is answered;
//!   the opposite changes apply at once. A change made during a Poll is polled for again
//!   after one non-Final packet (§6.8.3, choice 3). A Poll from the peer is answered with a
//!   Final at once, in every state.
//! - Passive mode: no packet until the peer's first one has taught us its discriminator; a
//!   peer silent for a Detection Time is forgotten (its discriminator zeroed, §6.8.1), so a
//!   passive session falls silent again.
//! - The peer's Demand bit is honored (no periodic packets while both are Up and it asks, as
//!   §6.8.7 requires); we never ask for Demand mode ourselves. Required Min RX zero from the
//!   peer stops periodic packets too.
//! - AdminDown (§6.8.16): diag 7; periodic AdminDown packets continue at the slow rate so the
//!   peer goes Down with diag 3 instead of timing out.
//!
//! One deliberate deviation, the one FRR's bfdd and BIRD make: a local state change sends a
//! packet at once (carrying the new state, and the Poll it may start) and restarts the
//! periodic timer, instead of waiting up to an interval for the next periodic packet. A
//! session comes Up in one round trip rather than up to three slow (1 s) intervals, and a
//! peer learns we went Down without waiting. It adds at most one packet per state change.
//!
//! # Not implemented
//!
//! - **Echo mode** (`BFDProfile.echoMode`, `echoInterval`): ignored. We advertise Required
//!   Min Echo RX 0, which tells the peer not to send Echo packets, and detect failures with
//!   Control packets at the configured intervals. [`echo_mode_ignored`] tells the driver when
//!   to log that.
//! - Authentication (see [`packet`](super::packet)), Demand mode on our side, multihop
//!   (RFC 5883) specifics beyond the minimum TTL.

use std::num::{NonZeroU8, NonZeroU32};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::packet::{ControlPacket, Diag, State};
use crate::config::BFDProfileSpec;

#[cfg(test)]
mod tests;

/// Desired Min TX while the session is not Up (RFC 5880 §6.8.3: at least one second).
pub const SLOW_TX: Duration = Duration::from_secs(1);
/// `BFDProfile.minimumTtl` when unset (MetalLB's default).
pub const DEFAULT_MINIMUM_TTL: u8 = 254;

const SLOW_TX_US: u32 = 1_000_000;

/// The timers of one session, from a `BFDProfile` (see [`SessionConfig::from_profile`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// bfd.DesiredMinTxInterval once Up (`transmitInterval`). Zero is reserved by the RFC and
    /// taken as 1 µs; more than `u32::MAX` µs is taken as that.
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval (`receiveInterval`).
    pub required_min_rx: Duration,
    /// bfd.DetectMult (`detectMultiplier`).
    pub detect_mult: NonZeroU8,
    /// Passive role (`passiveMode`): wait for the peer's first packet.
    pub passive: bool,
}

impl Default for SessionConfig {
    /// MetalLB's `BFDProfile` defaults: 300 ms both ways, multiplier 3, active.
    fn default() -> Self {
        SessionConfig {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: NonZeroU8::MIN.saturating_add(2),
            passive: false,
        }
    }
}

impl SessionConfig {
    /// The session timers of a `BFDProfile`, with MetalLB's defaults for unset fields.
    /// Validation already bounds the fields (intervals 10–60000 ms, multiplier 2–255); this
    /// checks again only what would break the protocol. `echoMode`/`echoInterval` are
    /// ignored ([`echo_mode_ignored`]) and `minimumTtl` is the driver's ([`minimum_ttl`]).
    pub fn from_profile(spec: &BFDProfileSpec) -> Result<SessionConfig, ProfileError> {
        let mult = spec.detect_multiplier();
        let detect_mult = u8::try_from(mult)
            .ok()
            .and_then(NonZeroU8::new)
            .ok_or(ProfileError::DetectMultiplier(mult))?;
        let interval = |field: &'static str, value: Duration| {
            if value.is_zero() {
                Err(ProfileError::ZeroInterval(field))
            } else {
                Ok(value)
            }
        };
        Ok(SessionConfig {
            desired_min_tx: interval("transmitInterval", spec.transmit_interval())?,
            required_min_rx: interval("receiveInterval", spec.receive_interval())?,
            detect_mult,
            passive: spec.passive_mode.unwrap_or(false),
        })
    }
}

/// `BFDProfile.minimumTtl` (default 254): the lowest TTL the driver accepts from a multihop
/// peer. Out-of-range values (validation rejects them) are clamped to 1–255.
pub fn minimum_ttl(spec: &BFDProfileSpec) -> u8 {
    spec.minimum_ttl.map_or(DEFAULT_MINIMUM_TTL, |ttl| {
        u8::try_from(ttl.max(1)).unwrap_or(u8::MAX)
    })
}

/// Whether the profile asks for Echo mode, which FerroLB does not implement: the driver
/// should say so once (the session runs on Control packets alone).
pub fn echo_mode_ignored(spec: &BFDProfileSpec) -> bool {
    spec.echo_mode == Some(true)
}

/// A `BFDProfile` that cannot drive a session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// detectMultiplier outside 1–255 (it is one byte on the wire, and zero is invalid).
    #[error("detectMultiplier {0} is out of range 1-255")]
    DetectMultiplier(u32),
    /// An interval of zero.
    #[error("{0} is 0 ms")]
    ZeroInterval(&'static str),
}

/// The two timers of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// Send the next periodic packet.
    Transmit,
    /// The peer has been silent for a Detection Time.
    Detection,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Begin: an active session sends its first packet now. Packets and timers before
    /// `Start` are ignored; later `Start`s are no-ops.
    Start,
    /// A packet for this session (parsed, demultiplexed by the driver).
    Packet(ControlPacket),
    /// A timer armed by [`Action::Schedule`] fired.
    Timer(TimerKind),
    /// Take the session administratively down (diag 7).
    AdminDown,
    /// Leave AdminDown (to Down, where the handshake starts again).
    AdminUp,
    /// New timers or role (a `BFDProfile` changed): a Poll Sequence if intervals changed.
    Reconfigure(SessionConfig),
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this packet to the peer ([`ControlPacket::to_bytes`]).
    Send(ControlPacket),
    /// Feed `Input::Timer(timer)` back at `at`; replaces the previous deadline of `timer`.
    Schedule { timer: TimerKind, at: Instant },
    /// Forget the deadline of this timer.
    Cancel(TimerKind),
    /// The session changed state; `diag` is why (and what the peer is told).
    StateChanged { from: State, to: State, diag: Diag },
}

/// Packet and event counters, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets accepted (including those merely noted while AdminDown).
    pub received: u64,
    /// Packets dropped because Your Discriminator was not ours.
    pub wrong_your_discriminator: u64,
    /// Packets and timers ignored before [`Input::Start`].
    pub ignored_before_start: u64,
    /// Packets sent, Finals included.
    pub sent: u64,
    /// Finals sent in answer to a Poll.
    pub finals_sent: u64,
    /// Poll Sequences of ours that a Final completed.
    pub polls_completed: u64,
    /// Detection Times that passed without a packet from the peer.
    pub detection_expired: u64,
}

/// Where our Poll Sequence stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Poll {
    Idle,
    /// Poll is set on periodic packets; `again` if the intervals changed once more after
    /// the first Poll was sent (its Final will not cover that change).
    Polling {
        again: bool,
    },
    /// A Final arrived but another change awaits a Poll: wait for one non-Final packet so
    /// the next Final cannot be a late answer to the old Poll (RFC 5880 §6.8.3).
    Pending,
}

/// One BFD session. See the [module documentation](self).
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    local_discr: NonZeroU32,
    started: bool,
    state: State,
    local_diag: Diag,

    remote_discr: Option<NonZeroU32>,
    remote_state: State,
    remote_demand: bool,
    /// bfd.RemoteMinRxInterval, µs (initially 1).
    remote_min_rx_us: u32,
    /// The last Desired Min TX Interval received, µs.
    remote_desired_min_tx_us: u32,
    remote_detect_mult: u8,
    last_rx: Option<Instant>,

    /// bfd.DesiredMinTxInterval, µs: what we advertise.
    desired_min_tx_us: u32,
    /// bfd.RequiredMinRxInterval, µs: what we advertise.
    required_min_rx_us: u32,
    /// The Desired Min TX our transmit rate follows (lags an increase until its Poll ends).
    tx_desired_in_use_us: u32,
    /// The Required Min RX our Detection Time follows (lags a decrease until its Poll ends).
    rx_required_in_use_us: u32,
    poll: Poll,

    tx_deadline: Option<Instant>,
    /// The negotiated interval `tx_deadline` was computed from.
    tx_deadline_interval_us: u32,
    last_tx: Option<Instant>,
    detect_deadline: Option<Instant>,

    rng: SmallRng,
    counters: Counters,
}

impl Session {
    /// A session in state Down, silent until [`Input::Start`]. `rng_seed` drives the
    /// transmit jitter (fixed in tests; random in the driver).
    pub fn new(local_discriminator: NonZeroU32, config: SessionConfig, rng_seed: u64) -> Session {
        let mut session = Session {
            config,
            local_discr: local_discriminator,
            started: false,
            state: State::Down,
            local_diag: Diag::NoDiagnostic,
            remote_discr: None,
            remote_state: State::Down,
            remote_demand: false,
            remote_min_rx_us: 1,
            remote_desired_min_tx_us: 0,
            remote_detect_mult: 0,
            last_rx: None,
            desired_min_tx_us: 0,
            required_min_rx_us: 0,
            tx_desired_in_use_us: 0,
            rx_required_in_use_us: 0,
            poll: Poll::Idle,
            tx_deadline: None,
            tx_deadline_interval_us: 0,
            last_tx: None,
            detect_deadline: None,
            rng: SmallRng::seed_from_u64(rng_seed),
            counters: Counters::default(),
        };
        session.desired_min_tx_us = session.desired_for_state();
        session.required_min_rx_us = micros(config.required_min_rx);
        session.tx_desired_in_use_us = session.desired_min_tx_us;
        session.rx_required_in_use_us = session.required_min_rx_us;
        session
    }

    /// Processes one input at time `now` and returns what to do, in order.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut actions = Vec::new();
        match input {
            Input::Start => {
                if !self.started {
                    self.started = true;
                    self.rearm_transmit(now, &mut actions);
                }
            }
            Input::Packet(packet) => self.on_packet(now, &packet, &mut actions),
            Input::Timer(TimerKind::Transmit) => self.on_transmit_timer(now, &mut actions),
            Input::Timer(TimerKind::Detection) => self.on_detection_timer(now, &mut actions),
            Input::AdminDown => {
                if self.state != State::AdminDown {
                    self.change_state(
                        now,
                        State::AdminDown,
                        Diag::AdministrativelyDown,
                        &mut actions,
                    );
                }
            }
            Input::AdminUp => {
                if self.state == State::AdminDown {
                    self.change_state(now, State::Down, Diag::NoDiagnostic, &mut actions);
                }
            }
            Input::Reconfigure(config) => {
                self.config = config;
                self.set_advertised(self.desired_for_state(), micros(config.required_min_rx));
                self.rearm_detection(now, &mut actions);
                self.rearm_transmit(now, &mut actions);
            }
        }
        actions
    }

    /// bfd.SessionState.
    pub fn state(&self) -> State {
        self.state
    }

    /// bfd.LocalDiag: why we last changed state (sent in every packet).
    pub fn local_diag(&self) -> Diag {
        self.local_diag
    }

    /// bfd.LocalDiscr.
    pub fn local_discriminator(&self) -> NonZeroU32 {
        self.local_discr
    }

    /// bfd.RemoteDiscr: `None` until a packet arrives, and again after a Detection Time of
    /// silence.
    pub fn remote_discriminator(&self) -> Option<NonZeroU32> {
        self.remote_discr
    }

    /// bfd.RemoteSessionState.
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// The configuration in force.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The negotiated transmit interval before jitter: max(our Desired Min TX in use, the
    /// peer's Required Min RX).
    pub fn transmit_interval(&self) -> Duration {
        Duration::from_micros(self.tx_interval_us().into())
    }

    /// The Detection Time: the peer's Detect Mult × max(our Required Min RX in use, its
    /// Desired Min TX). `None` before the first packet and after a Detection Time of
    /// silence.
    pub fn detection_time(&self) -> Option<Duration> {
        self.last_rx?;
        let interval = self
            .rx_required_in_use_us
            .max(self.remote_desired_min_tx_us);
        Some(Duration::from_micros(
            u64::from(self.remote_detect_mult) * u64::from(interval),
        ))
    }

    /// Whether our Poll Sequence is unanswered (or waits to start).
    pub fn poll_in_progress(&self) -> bool {
        self.poll != Poll::Idle
    }

    /// The deadline of a timer, if armed.
    pub fn deadline(&self, timer: TimerKind) -> Option<Instant> {
        match timer {
            TimerKind::Transmit => self.tx_deadline,
            TimerKind::Detection => self.detect_deadline,
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    fn on_packet(&mut self, now: Instant, packet: &ControlPacket, actions: &mut Vec<Action>) {
        if !self.started {
            self.counters.ignored_before_start += 1;
            return;
        }
        if packet
            .your_discriminator
            .is_some_and(|yours| yours != self.local_discr)
        {
            self.counters.wrong_your_discriminator += 1;
            return;
        }
        // The codec already discarded a zero Your Discriminator outside Down/AdminDown.
        self.counters.received += 1;
        self.remote_discr = Some(packet.my_discriminator);
        self.remote_state = packet.state;
        self.remote_demand = packet.demand;
        self.remote_min_rx_us = packet.required_min_rx_us;
        self.remote_desired_min_tx_us = packet.desired_min_tx_us;
        self.remote_detect_mult = packet.detect_mult.get();
        self.last_rx = Some(now);
        if packet.final_ {
            match self.poll {
                Poll::Polling { again: false } => {
                    self.poll = Poll::Idle;
                    self.counters.polls_completed += 1;
                    self.tx_desired_in_use_us = self.desired_min_tx_us;
                    self.rx_required_in_use_us = self.required_min_rx_us;
                }
                Poll::Polling { again: true } => self.poll = Poll::Pending,
                Poll::Idle | Poll::Pending => {}
            }
        } else if self.poll == Poll::Pending {
            self.poll = Poll::Polling { again: false };
        }

        if self.state != State::AdminDown {
            let next = match (self.state, packet.state) {
                (State::Down, State::AdminDown) => None,
                (_, State::AdminDown) => Some((State::Down, Diag::NeighborSignaledSessionDown)),
                (State::Down, State::Down) => Some((State::Init, Diag::NoDiagnostic)),
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    Some((State::Up, Diag::NoDiagnostic))
                }
                (State::Up, State::Down) => Some((State::Down, Diag::NeighborSignaledSessionDown)),
                _ => None,
            };
            if let Some((to, diag)) = next {
                self.change_state(now, to, diag, actions);
            }
        }
        // Answered in every state (RFC 5880 §6.8.7), after any state change so the Final
        // carries the new state.
        if packet.poll {
            let reply = self.packet(false, true);
            self.counters.sent += 1;
            self.counters.finals_sent += 1;
            actions.push(Action::Send(reply));
        }
        self.rearm_detection(now, actions);
        self.rearm_transmit(now, actions);
    }

    fn on_transmit_timer(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if !self.started {
            self.counters.ignored_before_start += 1;
            return;
        }
        match self.tx_deadline {
            None => {}
            Some(at) if now < at => actions.push(Action::Schedule {
                timer: TimerKind::Transmit,
                at,
            }),
            Some(_) => self.transmit(now, actions),
        }
    }

    fn on_detection_timer(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if !self.started {
            self.counters.ignored_before_start += 1;
            return;
        }
        match self.detect_deadline {
            None => {}
            Some(at) if now < at => actions.push(Action::Schedule {
                timer: TimerKind::Detection,
                at,
            }),
            Some(_) => {
                self.detect_deadline = None;
                self.last_rx = None;
                self.counters.detection_expired += 1;
                // Forget the peer (§6.8.1 zeroes bfd.RemoteDiscr; the rest returns to its
                // initial value so a returning peer negotiates from scratch).
                self.remote_discr = None;
                self.remote_state = State::Down;
                self.remote_demand = false;
                self.remote_min_rx_us = 1;
                if matches!(self.state, State::Init | State::Up) {
                    self.change_state(now, State::Down, Diag::ControlDetectionTimeExpired, actions);
                }
                self.rearm_transmit(now, actions);
            }
        }
    }

    fn change_state(&mut self, now: Instant, to: State, diag: Diag, actions: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.local_diag = diag;
        actions.push(Action::StateChanged { from, to, diag });
        self.set_advertised(self.desired_for_state(), self.required_min_rx_us);
        if to != State::Up {
            // The hold-until-Poll rules are for Up sessions only (§6.8.3).
            self.tx_desired_in_use_us = self.desired_min_tx_us;
            self.rx_required_in_use_us = self.required_min_rx_us;
        }
        self.rearm_detection(now, actions);
        // Tell the peer now (see the module documentation), if we may send at all.
        if self.periodic_allowed() {
            self.transmit(now, actions);
        }
    }

    /// Sets what we advertise; a change starts a Poll Sequence and, while Up, is applied to
    /// the rates only in the safe direction until the Poll is answered.
    fn set_advertised(&mut self, desired_min_tx_us: u32, required_min_rx_us: u32) {
        if desired_min_tx_us == self.desired_min_tx_us
            && required_min_rx_us == self.required_min_rx_us
        {
            return;
        }
        let up = self.state == State::Up;
        if !up || desired_min_tx_us < self.tx_desired_in_use_us {
            self.tx_desired_in_use_us = desired_min_tx_us;
        }
        if !up || required_min_rx_us > self.rx_required_in_use_us {
            self.rx_required_in_use_us = required_min_rx_us;
        }
        self.desired_min_tx_us = desired_min_tx_us;
        self.required_min_rx_us = required_min_rx_us;
        self.poll = match self.poll {
            Poll::Idle => Poll::Polling { again: false },
            Poll::Polling { .. } => Poll::Polling { again: true },
            Poll::Pending => Poll::Pending,
        };
    }

    fn desired_for_state(&self) -> u32 {
        let configured = micros(self.config.desired_min_tx).max(1);
        if self.state == State::Up {
            configured
        } else {
            configured.max(SLOW_TX_US)
        }
    }

    fn tx_interval_us(&self) -> u32 {
        self.tx_desired_in_use_us.max(self.remote_min_rx_us)
    }

    /// RFC 5880 §6.8.7: when periodic packets may be sent.
    fn periodic_allowed(&self) -> bool {
        let remote_demand_active = self.remote_demand
            && self.state == State::Up
            && self.remote_state == State::Up
            && !matches!(self.poll, Poll::Polling { .. });
        self.started
            && !(self.config.passive && self.remote_discr.is_none())
            && self.remote_min_rx_us != 0
            && !remote_demand_active
    }

    /// Arms, moves or cancels the transmit timer after anything that may change whether or
    /// how often we send. A new interval counts from the last packet sent: a shorter one is
    /// honored at once (sending now if already due, §6.8.3), a longer one postpones.
    fn rearm_transmit(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if !self.periodic_allowed() {
            if self.tx_deadline.take().is_some() {
                actions.push(Action::Cancel(TimerKind::Transmit));
            }
            return;
        }
        let interval = self.tx_interval_us();
        if self.tx_deadline.is_some() && interval == self.tx_deadline_interval_us {
            return;
        }
        let next = match self.last_tx {
            Some(last) => later(last, self.jittered(interval)),
            None => now,
        };
        if next <= now {
            self.transmit(now, actions);
        } else {
            self.tx_deadline = Some(next);
            self.tx_deadline_interval_us = interval;
            actions.push(Action::Schedule {
                timer: TimerKind::Transmit,
                at: next,
            });
        }
    }

    /// Sends a periodic packet now and schedules the next one.
    fn transmit(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let polling = matches!(self.poll, Poll::Polling { .. });
        actions.push(Action::Send(self.packet(polling, false)));
        self.counters.sent += 1;
        self.last_tx = Some(now);
        let interval = self.tx_interval_us();
        let at = later(now, self.jittered(interval));
        self.tx_deadline = Some(at);
        self.tx_deadline_interval_us = interval;
        actions.push(Action::Schedule {
            timer: TimerKind::Transmit,
            at,
        });
    }

    /// Keeps the detection deadline at last packet + Detection Time (or now, if a shorter
    /// Detection Time has already passed).
    fn rearm_detection(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let (Some(last_rx), Some(time)) = (self.last_rx, self.detection_time()) else {
            return;
        };
        let at = later(last_rx, time).max(now);
        if self.detect_deadline != Some(at) {
            self.detect_deadline = Some(at);
            actions.push(Action::Schedule {
                timer: TimerKind::Detection,
                at,
            });
        }
    }

    /// `interval_us` reduced by 0–25 % (10–25 % when our Detect Mult is 1), never below
    /// 1 µs (RFC 5880 §6.8.7).
    fn jittered(&mut self, interval_us: u32) -> Duration {
        let interval = u64::from(interval_us);
        let top_percent = if self.config.detect_mult.get() == 1 {
            90
        } else {
            100
        };
        let low = interval * 75 / 100;
        let high = interval * top_percent / 100;
        Duration::from_micros(self.rng.random_range(low..=high).max(1))
    }

    fn packet(&self, poll: bool, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            poll,
            final_,
            control_plane_independent: false,
            demand: false,
            detect_mult: self.config.detect_mult,
            my_discriminator: self.local_discr,
            your_discriminator: self.remote_discr,
            desired_min_tx_us: self.desired_min_tx_us,
            required_min_rx_us: self.required_min_rx_us,
            required_min_echo_rx_us: 0,
        }
    }
}

/// A duration in whole microseconds, saturating at the wire's `u32`.
fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// `t + d`, or (for an `Instant` near the end of its range) an hour later, or `t`: never a
/// panic.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(3600)))
        .unwrap_or(t)
}
