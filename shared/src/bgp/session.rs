//! One BGP peering, as a sans-IO state machine (RFC 4271 §8): `handle(now, input)` returns
//! the [`Action`]s the driver carries out. Nothing here reads a clock or touches a socket.
//!
//! ```text
//!   TCP connect/accept/read/close ─Input::{TcpConnected, TcpAccepted, Bytes, ..}─▶ ┌─────────┐
//!   driver timers ──────────────────────────────────────────────Input::Timer────▶ │ Session │
//!   routes wanted, BFD ───────────────────Input::{Advertise, Withdraw, BfdDown}──▶ └────┬────┘
//!      ◀── Action::{Connect, Send, Close, Schedule, Cancel, Established, Down} ─────────┘
//! ```
//!
//! FerroLB's speaker only advertises: UPDATEs received are decoded (so malformed ones get
//! their NOTIFICATION) and counted, never installed.
//!
//! - **States**: [`State`] follows RFC 4271 §8.2.2. Connect means an outbound TCP attempt
//!   is in progress; Active means we wait for the ConnectRetry timer (or, passive, for the
//!   peer to connect). After any failure the session goes to Active with an exponential
//!   backoff (`timers.rs`) instead of Idle: only [`Input::Stop`] returns it to Idle.
//! - **Connections** carry a driver-chosen [`ConnId`]. Up to two may be open at once, one we
//!   opened and one the peer opened; RFC 4271 §6.8 collision detection (`collision.rs`)
//!   keeps exactly one. Hold and keepalive timers are per connection.
//! - **Framing**: [`Input::Bytes`] feeds the stream; the session buffers partial messages
//!   and decodes with [`codec::decode`](super::codec::decode). Every error detected is
//!   answered with the prescribed NOTIFICATION before the connection is closed, except the
//!   RFC 7606 treat-as-withdraw UPDATE errors, which are counted and skipped.
//! - **Adj-RIB-Out** (`rib_out.rs`): [`Input::Advertise`] and [`Input::Withdraw`] change
//!   the desired table; once Established only the differences are sent, packed with
//!   [`pack_updates`](super::codec::pack_updates). The first table of a connection is
//!   followed by an End-of-RIB per negotiated family; a ROUTE-REFRESH re-sends the
//!   family's table.
//! - **Graceful restart** (RFC 4724), restarting-speaker side: the capability is sent when
//!   enabled, with the R bit when [`SessionConfig::restarting`] says this process restarted
//!   (until the first Established) and the F bit of every family always (the node's data
//!   path keeps forwarding through a session flap and a speaker restart alike).
//! - **Errors** (`fsm.rs`): header and OPEN errors as the codec reports them (1/x, 2/1,
//!   2/2 also for a peer AS other than the configured one, 2/3 for an iBGP peer with our
//!   identifier, 2/6, 2/7 when [`SessionConfig::require_four_octet_as`] and the peer lacks
//!   it), hold timer expiry 4/0, messages in the wrong state 5/1–5/3 (RFC 6608), Cease 6/2
//!   on Stop, 6/10 on BFD down, 6/7 to the loser of a collision, 6/5 to a connection
//!   refused while Established. A NOTIFICATION from the peer closes at once.
//! - **Not done**: DelayOpen, AS4_PATH for 2-octet peers, enhanced route refresh (RFC
//!   7313), the receiving-speaker side of graceful restart (we never keep a peer's routes), and
//!   per-family Adj-RIB-Out policy (the caller decides what to advertise to each peer).
//!
//! Layout: `config.rs` (the [`SessionConfig`]), `fsm.rs` (messages and timers per
//! connection), `collision.rs`, `rib_out.rs`, `timers.rs` (backoff), `tests.rs` (two
//! sessions back to back through an in-memory TCP with a virtual clock).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::codec::notification::cease;
use super::codec::{Afi, Attributes, CodecOptions, Message, Notification, PackError, Safi, encode};

mod collision;
mod config;
mod fsm;
mod rib_out;
mod timers;

#[cfg(test)]
mod tests;

pub use config::{
    ConfigError, DEFAULT_CONNECT_RETRY, DEFAULT_HOLD_TIME, DEFAULT_MAX_CONNECT_RETRY,
    GracefulRestart, LARGE_HOLD_TIME, PeerAs, SessionConfig,
};
pub use rib_out::{MissingNextHop, RibOut};
pub use timers::Backoff;

/// A TCP connection, numbered by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// RFC 4271 session states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// The timers the driver runs for a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// Connect (again).
    ConnectRetry,
    /// The peer has been silent for the hold time on this connection.
    Hold(ConnId),
    /// Send a KEEPALIVE on this connection.
    Keepalive(ConnId),
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// Start the session (ManualStart / AutomaticStart). No-op unless Idle.
    Start,
    /// Stop it: Cease / Administrative Shutdown on every connection, back to Idle.
    Stop,
    /// The outbound connection asked for by [`Action::Connect`] is up.
    TcpConnected(ConnId),
    /// The peer connected to us.
    TcpAccepted(ConnId),
    /// The outbound connection attempt failed.
    TcpFailed,
    /// A connection was closed by the peer or broke.
    TcpClosed(ConnId),
    /// Bytes read from a connection.
    Bytes(ConnId, &'a [u8]),
    /// A timer armed by [`Action::Schedule`] fired.
    Timer(TimerKind),
    /// Routes we want the peer to have (added or replacing the previous attributes).
    Advertise(Vec<(IpNet, Attributes)>),
    /// Routes we no longer want to advertise.
    Withdraw(Vec<IpNet>),
    /// BFD saw the peer go down: tear down at once (Cease / BFD Down).
    BfdDown,
}

/// Why the session left Established (or a connection attempt ended).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// We sent this NOTIFICATION (an error we detected, Stop, BFD down, hold timer).
    NotificationSent(Notification),
    /// The peer sent this NOTIFICATION.
    NotificationReceived(Notification),
    /// The TCP connection closed without a NOTIFICATION.
    ConnectionClosed,
    /// The outbound TCP connection could not be made.
    ConnectFailed,
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer (abandoning any attempt still in progress) and
    /// answer with [`Input::TcpConnected`] or [`Input::TcpFailed`].
    Connect,
    /// Write these bytes (one or more whole messages) to the connection.
    Send(ConnId, Vec<u8>),
    /// Close the connection (after writing what was sent).
    Close(ConnId),
    /// Feed `Input::Timer(timer)` back at `at`; replaces the previous deadline of `timer`.
    Schedule { timer: TimerKind, at: Instant },
    /// Forget the deadline of this timer.
    Cancel(TimerKind),
    /// The session reached Established.
    Established,
    /// The session left Established.
    Down { reason: DownReason },
}

/// Counters, for metrics and status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// UPDATE messages sent (End-of-RIB markers included).
    pub updates_sent: u64,
    /// UPDATE messages received (including treat-as-withdraw ones).
    pub updates_received: u64,
    /// Prefixes announced by the peer (counted, never installed).
    pub prefixes_received: u64,
    /// UPDATEs received with RFC 7606 treat-as-withdraw errors.
    pub updates_treated_as_withdraw: u64,
    pub keepalives_sent: u64,
    pub keepalives_received: u64,
    pub notifications_sent: u64,
    pub notifications_received: u64,
    pub route_refreshes_received: u64,
    /// Times the session reached Established.
    pub established_transitions: u64,
    /// The last error, ours or the peer's.
    pub last_error: Option<DownReason>,
    /// Why the last routes could not be advertised (a route without a next hop for its
    /// family, attributes too large for one UPDATE).
    pub last_advertise_error: Option<String>,
}

/// What the OPEN exchange settled for the established connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_as: u32,
    pub peer_router_id: Ipv4Addr,
    /// min(ours, theirs); zero disables keepalives and the hold timer.
    pub hold_time: Duration,
    pub keepalive_time: Duration,
    pub four_octet_as: bool,
    /// Families both sides advertised (IPv4 unicast alone if the peer sent none).
    pub families: Vec<(Afi, Safi)>,
    /// Both sides advertised route refresh.
    pub route_refresh: bool,
    /// The peer advertised graceful restart.
    pub peer_graceful_restart: bool,
    /// We advertised graceful restart and the peer did too.
    pub graceful_restart: bool,
}

impl Negotiated {
    fn codec(&self) -> CodecOptions {
        CodecOptions {
            four_octet_as: self.four_octet_as,
        }
    }
}

/// A connection's own state, in the order of progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ConnState {
    OpenSent,
    OpenConfirm,
    Established,
}

/// One TCP connection to the peer.
#[derive(Debug)]
struct Conn {
    id: ConnId,
    /// The peer opened it.
    inbound: bool,
    state: ConnState,
    /// Bytes read and not yet decoded.
    buf: Vec<u8>,
    /// Set once the peer's OPEN is accepted.
    negotiated: Option<Negotiated>,
}

/// One BGP peering. See the [module documentation](self).
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    /// Started and not stopped.
    running: bool,
    /// An outbound attempt is in progress.
    connecting: bool,
    conns: Vec<Conn>,
    /// Send the R bit (cleared when Established).
    restarting: bool,
    backoff: Backoff,
    rib: RibOut,
    counters: Counters,
}

impl Session {
    /// A session in Idle, waiting for [`Input::Start`]. `rng_seed` drives the reconnect
    /// jitter (fixed in tests, random in the driver).
    pub fn new(config: SessionConfig, rng_seed: u64) -> Result<Session, ConfigError> {
        config.validate()?;
        Ok(Session {
            restarting: config.restarting,
            backoff: Backoff::new(config.connect_retry, config.max_connect_retry, rng_seed),
            config,
            running: false,
            connecting: false,
            conns: Vec::new(),
            rib: RibOut::default(),
            counters: Counters::default(),
        })
    }

    /// Processes one input at time `now` and returns what to do, in order.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Start => self.on_start(now, &mut out),
            Input::Stop => self.on_stop(&mut out),
            Input::TcpConnected(conn) => self.on_connected(now, conn, false, &mut out),
            Input::TcpAccepted(conn) => self.on_connected(now, conn, true, &mut out),
            Input::TcpFailed => {
                if self.connecting {
                    self.connecting = false;
                    self.counters.last_error = Some(DownReason::ConnectFailed);
                    self.after_failure(now, &mut out);
                }
            }
            Input::TcpClosed(conn) => {
                if self.conn_index(conn).is_some() {
                    self.drop_conn(conn, DownReason::ConnectionClosed, &mut out);
                    self.after_failure(now, &mut out);
                }
            }
            Input::Bytes(conn, bytes) => self.on_bytes(now, conn, bytes, &mut out),
            Input::Timer(timer) => self.on_timer(now, timer, &mut out),
            Input::Advertise(routes) => {
                if let Err(e) = self.rib.advertise(routes) {
                    self.counters.last_advertise_error = Some(e.to_string());
                }
                self.sync_rib(&mut out);
            }
            Input::Withdraw(prefixes) => {
                self.rib.withdraw(prefixes);
                self.sync_rib(&mut out);
            }
            Input::BfdDown => {
                if !self.conns.is_empty() {
                    self.abort_all(Notification::cease(cease::BFD_DOWN), &mut out);
                    self.after_failure(now, &mut out);
                }
            }
        }
        out
    }

    /// The RFC 4271 state: that of the most advanced connection, else Connect while an
    /// outbound attempt runs, Active while started, Idle.
    pub fn state(&self) -> State {
        let best = self.conns.iter().map(|c| c.state).max();
        match best {
            Some(ConnState::Established) => State::Established,
            Some(ConnState::OpenConfirm) => State::OpenConfirm,
            Some(ConnState::OpenSent) => State::OpenSent,
            None if self.connecting => State::Connect,
            None if self.running => State::Active,
            None => State::Idle,
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Prefixes the peer has from us now (zero unless Established).
    pub fn prefixes_advertised(&self) -> usize {
        self.rib.sent_len()
    }

    /// The desired Adj-RIB-Out.
    pub fn rib_out(&self) -> &RibOut {
        &self.rib
    }

    /// The open connections.
    pub fn connections(&self) -> Vec<ConnId> {
        self.conns.iter().map(|c| c.id).collect()
    }

    /// The Established connection, if any.
    pub fn established_connection(&self) -> Option<ConnId> {
        self.established().map(|c| c.id)
    }

    /// What the established connection negotiated.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.established().and_then(|c| c.negotiated.as_ref())
    }

    /// Consecutive failures since the last Established (drives the backoff).
    pub fn consecutive_failures(&self) -> u32 {
        self.backoff.failures()
    }

    fn established(&self) -> Option<&Conn> {
        self.conns
            .iter()
            .find(|c| c.state == ConnState::Established)
    }

    fn conn_index(&self, id: ConnId) -> Option<usize> {
        self.conns.iter().position(|c| c.id == id)
    }

    fn on_start(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.running {
            return;
        }
        self.running = true;
        if !self.config.passive {
            self.connect(now, out);
        }
    }

    /// Asks for an outbound connection and arms ConnectRetry in case it hangs.
    fn connect(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.connecting = true;
        out.push(Action::Connect);
        out.push(Action::Schedule {
            timer: TimerKind::ConnectRetry,
            at: now + self.backoff.current(),
        });
    }

    fn on_stop(&mut self, out: &mut Vec<Action>) {
        if !self.running {
            return;
        }
        self.abort_all(Notification::administrative_shutdown(""), out);
        self.running = false;
        self.connecting = false;
        self.backoff.reset();
        out.push(Action::Cancel(TimerKind::ConnectRetry));
    }

    fn on_connected(&mut self, now: Instant, id: ConnId, inbound: bool, out: &mut Vec<Action>) {
        if self.conn_index(id).is_some() {
            return;
        }
        if !self.running {
            out.push(Action::Close(id));
            return;
        }
        if !inbound {
            if !self.connecting {
                // A late answer to an attempt we abandoned.
                out.push(Action::Close(id));
                return;
            }
            self.connecting = false;
            out.push(Action::Cancel(TimerKind::ConnectRetry));
        }
        if self.established().is_some() || self.conns.len() >= 2 {
            // RFC 4271 §6.8: the Established connection wins; more than two is never needed.
            let n = Notification::cease(cease::CONNECTION_REJECTED);
            self.counters.notifications_sent += 1;
            out.push(Action::Send(
                id,
                encode(&Message::Notification(n), &CodecOptions::default()),
            ));
            out.push(Action::Close(id));
            return;
        }
        let open = self.make_open();
        out.push(Action::Send(
            id,
            encode(&Message::Open(open), &CodecOptions::default()),
        ));
        self.conns.push(Conn {
            id,
            inbound,
            state: ConnState::OpenSent,
            buf: Vec::new(),
            negotiated: None,
        });
        out.push(Action::Schedule {
            timer: TimerKind::Hold(id),
            at: now + LARGE_HOLD_TIME,
        });
    }

    /// Sends `notification` on every connection and closes them all.
    fn abort_all(&mut self, notification: Notification, out: &mut Vec<Action>) {
        let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for id in ids {
            self.notify_and_drop(id, notification.clone(), out);
        }
    }

    /// Sends `notification` on one connection, closes it and forgets it.
    fn notify_and_drop(&mut self, id: ConnId, notification: Notification, out: &mut Vec<Action>) {
        let opts = self
            .conn_index(id)
            .and_then(|i| self.conns.get(i))
            .and_then(|c| c.negotiated.as_ref())
            .map(Negotiated::codec)
            .unwrap_or_default();
        out.push(Action::Send(
            id,
            encode(&Message::Notification(notification.clone()), &opts),
        ));
        self.counters.notifications_sent += 1;
        self.drop_conn(id, DownReason::NotificationSent(notification), out);
    }

    /// Closes and forgets a connection, cancelling its timers; reports Down if it was the
    /// Established one.
    fn drop_conn(&mut self, id: ConnId, reason: DownReason, out: &mut Vec<Action>) {
        let Some(i) = self.conn_index(id) else {
            return;
        };
        let conn = self.conns.remove(i);
        out.push(Action::Close(id));
        out.push(Action::Cancel(TimerKind::Hold(id)));
        out.push(Action::Cancel(TimerKind::Keepalive(id)));
        self.counters.last_error = Some(reason.clone());
        if conn.state == ConnState::Established {
            self.rib.reset_sent();
            out.push(Action::Down { reason });
        }
    }

    /// A connection or attempt failed: if nothing else is going on, back off and retry.
    fn after_failure(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.running || !self.conns.is_empty() || self.connecting {
            return;
        }
        let delay = self.backoff.fail();
        if self.config.passive {
            return;
        }
        out.push(Action::Schedule {
            timer: TimerKind::ConnectRetry,
            at: now + delay,
        });
    }

    /// Sends what the peer lacks of the desired table, if Established.
    fn sync_rib(&mut self, out: &mut Vec<Action>) {
        let Some(conn) = self.established() else {
            return;
        };
        let Some(neg) = conn.negotiated.clone() else {
            return;
        };
        let id = conn.id;
        let peer_as = neg.peer_as;
        let ibgp = self.config.is_ibgp(peer_as);
        let result =
            self.rib
                .pending_updates(&neg.families, self.config.local_as, ibgp, &neg.codec());
        self.send_packed(id, result, out);
    }

    /// Sends packed UPDATEs, or notes why they could not be packed.
    fn send_packed(
        &mut self,
        id: ConnId,
        result: Result<Vec<Vec<u8>>, PackError>,
        out: &mut Vec<Action>,
    ) {
        match result {
            Ok(messages) => self.send_updates(id, messages, out),
            Err(e) => self.counters.last_advertise_error = Some(e.to_string()),
        }
    }

    /// Sends UPDATE messages as one write.
    fn send_updates(&mut self, id: ConnId, messages: Vec<Vec<u8>>, out: &mut Vec<Action>) {
        if !messages.is_empty() {
            self.counters.updates_sent += messages.len() as u64;
            out.push(Action::Send(id, messages.concat()));
        }
    }
}

/// `BTreeSet` of families, for the negotiation.
fn family_set(families: &[(Afi, Safi)]) -> BTreeSet<(Afi, Safi)> {
    families.iter().copied().collect()
}
