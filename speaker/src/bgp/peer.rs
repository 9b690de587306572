//! One task per BGP peer: it owns the sans-IO [`Session`], its timers and its connections,
//! and carries out the session's [`Action`]s.
//!
//! ```text
//!  top-level loop ──PeerCmd::{Routes, Accepted, Stop}──▶ ┌──────────────┐ ──Action::Send──▶ writer task
//!  conn.rs tasks ──Io::{Connected, Bytes, Closed, ..}──▶ │ peer task     │ ──Action::Connect──▶ conn::connect
//!  timers (one sleep until the earliest deadline) ─────▶ │  Session      │ ──▶ metrics, logs
//!                                                         └──────────────┘
//! ```
//!
//! Routes come without a next hop: it is "next hop self", our end of the connection, so it
//! is filled in here from each new connection's local address before the connection can
//! reach Established (and from the Node's addresses for the other family).

use super::bfd::{Hub, Link, Settings as BfdSettings};
use super::conn::{self, Conn, Dial, Io};
use super::md5::Key;
use super::routes::{OurAddresses, diff, with_next_hops};
use super::sessions::Board;
use super::take_due;
use crate::metrics::Metrics;
use ferrolb_cluster::task::AbortOnDrop;
use ferrolb_shared::bfd::session::Input as BfdInput;
use ferrolb_shared::bgp::advertise::is_ibgp;
use ferrolb_shared::bgp::codec::{Afi, Attributes, Notification};
use ferrolb_shared::bgp::session::{
    Action, ConnId, DownReason, GracefulRestart, Input, PeerAs, Session, SessionConfig, State,
    TimerKind,
};
use ferrolb_shared::config::validate::Peer;
use ferrolb_shared::config::{BFD_NOT_CONFIGURED, BGPSessionStateStatus};
use ipnet::IpNet;
use prometheus::IntGaugeVec;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The restart time we ask peers to keep our routes for, with graceful restart (RFC 4724).
const RESTART_TIME: u16 = 120;
/// How long a stopping session gets to send its Cease before its sockets are dropped.
const STOP_GRACE: Duration = Duration::from_millis(200);
/// How long a session stopping for a restart waits between closing its connection and its BFD
/// AdminDown, so the peer has read the close (and holds our routes as stale) first.
const ADMIN_DOWN_AFTER: Duration = Duration::from_millis(100);

/// The routes a peer should have, without next hops, and this node's addresses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Routes {
    pub routes: BTreeMap<IpNet, Attributes>,
    /// The Node's addresses: the next hop of routes of the other family than the session's.
    pub node_addresses: Vec<IpAddr>,
}

/// What the top-level loop tells a peer's task.
#[derive(Debug)]
pub enum PeerCmd {
    Routes(Arc<Routes>),
    /// The peer connected to our port 179.
    Accepted(TcpStream),
    /// End the session; `forget`: the peer is gone from the configuration, so its metric
    /// series go too (a restarting peer keeps them for its next task). `cease`: send a
    /// NOTIFICATION Cease (the router withdraws our routes at once); without it the
    /// connections just close, as when the process dies, so a router that negotiated
    /// graceful restart keeps our routes as stale for the next speaker.
    Stop {
        forget: bool,
        cease: bool,
    },
}

/// The session settings a `BGPPeer` asks for. `router_id` is decided by the caller.
pub fn session_config(peer: &Peer, router_id: Ipv4Addr) -> SessionConfig {
    let peer_as = match peer.spec.peer_asn {
        Some(asn) => PeerAs::Fixed(asn),
        None => PeerAs::Dynamic,
    };
    let mut c = SessionConfig::new(peer.spec.my_asn, peer_as, router_id);
    c.hold_time = peer.hold_time;
    // Only an explicit keepalive overrides the session's "a third of the negotiated hold".
    c.keepalive_time = peer
        .spec
        .keepalive_time
        .as_ref()
        .map(|_| peer.keepalive_time);
    if peer.spec.enable_graceful_restart == Some(true) {
        c.graceful_restart = Some(GracefulRestart {
            restart_time: RESTART_TIME,
        });
        // The first session of a peer's task says "restarted" (R); every session says
        // "forwarding kept" (F per family, see the session's OPEN). The task cannot tell a
        // process restart from a first start without state on disk, and need not: if the
        // router holds our routes as stale (we were killed or crashed, and a crash leaves the
        // kernel's forwarding programmed), F is what lets it keep them until our End-of-RIB
        // instead of dropping them at our new OPEN (RFC 4724 §4.2); if it holds none (first
        // start, or the old task ceased the session on a config change or SIGTERM), R and F
        // change nothing, R only tells it not to wait for our End-of-RIB before sending its
        // own routes, and we import none. The session clears R once Established, so later
        // reconnects of the same process do not claim a restart.
        c.restarting = true;
    }
    // A session carries its own address family, as MetalLB's do, unless the peer asks for
    // both (`dualStackAddressFamily`, multiprotocol): routers configure one family per
    // neighbor, and a route learned twice from one node would count twice in ECMP.
    let both =
        peer.spec.dual_stack_address_family == Some(true) && peer.spec.disable_mp != Some(true);
    if let (false, Some(addr)) = (both, peer.peer_address) {
        c.families
            .retain(|(afi, _)| (*afi == Afi::IPV4) == addr.is_ipv4());
    }
    c
}

/// The running task of one peer.
pub struct PeerHandle {
    pub peer: Peer,
    /// Its BFD settings (from its `bfdProfile`); a change restarts the task.
    pub bfd: Option<BfdSettings>,
    /// Its TCP-MD5 key (from `password` or the Secret); a change restarts the task, and the
    /// listeners carry it for the peer's address.
    pub md5: Option<Key>,
    pub tx: mpsc::UnboundedSender<PeerCmd>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the task of `peer`, with BFD when `bfd` is given (packets through `hub`) and its
/// connections signed with `md5`; `None` (logged) if its settings cannot drive a session.
pub fn spawn(
    peer: Peer,
    router_id: Ipv4Addr,
    bfd: Option<BfdSettings>,
    md5: Option<Key>,
    hub: Hub,
    metrics: Arc<Metrics>,
    sessions: Board,
) -> Option<PeerHandle> {
    let Some(address) = peer.peer_address else {
        tracing::error!(
            peer = peer.name,
            "unnumbered BGP (interface without peerAddress) is not supported yet"
        );
        return None;
    };
    let config = session_config(&peer, router_id);
    let seed = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), &peer.name);
    let session = match Session::new(config, seed) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(peer = peer.name, "cannot start the BGP session: {e}");
            return None;
        }
    };
    // iBGP by `peerASN == myASN` or `dynamicASN: internal`; `dynamicASN: external` is eBGP
    // and gets TTL 1 unless multi-hop: the peer's AS is unknown until its OPEN, but the
    // operator has already said which kind it is, and the socket needs its TTL before that.
    let dial = Dial {
        peer: SocketAddr::new(address, peer.spec.peer_port()),
        source: peer.source_address,
        timeout: peer.connect_time,
        ttl: conn::ttl(is_ibgp(&peer), peer.spec.ebgp_multi_hop == Some(true)),
        md5: md5.clone(),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let (io_tx, io_rx) = mpsc::unbounded_channel();
    let task = PeerTask {
        name: peer.name.clone(),
        dial,
        session,
        timers: HashMap::new(),
        conns: HashMap::new(),
        next_conn: 0,
        attempt: 0,
        connecting: None,
        io_tx,
        wanted: Arc::new(Routes::default()),
        local: None,
        given: BTreeMap::new(),
        metrics,
        exported: Exported::default(),
        sessions,
        established_since: None,
        address,
        bfd_config: bfd,
        hub,
        bfd: None,
    };
    let span = tracing::info_span!("bgp", peer = %peer.name, address = %address);
    let task = tokio::spawn(tracing::Instrument::instrument(task.run(rx, io_rx), span));
    Some(PeerHandle {
        peer,
        bfd,
        md5,
        tx,
        task,
    })
}

struct PeerTask {
    name: String,
    dial: Dial,
    session: Session,
    timers: HashMap<TimerKind, Instant>,
    conns: HashMap<ConnId, Conn>,
    next_conn: u64,
    /// The number of the newest outbound attempt (older ones' outcomes are ignored).
    attempt: u64,
    connecting: Option<AbortOnDrop<()>>,
    io_tx: mpsc::UnboundedSender<Io>,
    wanted: Arc<Routes>,
    /// Our address on the newest connection: the next hop of its family.
    local: Option<IpAddr>,
    /// The routes (with next hops) the session was last given.
    given: BTreeMap<IpNet, Attributes>,
    metrics: Arc<Metrics>,
    exported: Exported,
    /// Where this session's state is posted for operators (`BGPSessionState`).
    sessions: Board,
    /// When the session last reached Established; `None` while it is not.
    established_since: Option<jiff::Timestamp>,
    address: IpAddr,
    bfd_config: Option<BfdSettings>,
    hub: Hub,
    /// Started with the first connection, when our address is known; runs until the end.
    bfd: Option<Link>,
}

/// Metric values last exported, so counters only grow by what is new.
#[derive(Default)]
struct Exported {
    updates_sent: u64,
    updates_received: u64,
    /// The `error` label last set to 1, removed when another error replaces it.
    last_error: Option<String>,
    /// (state, BFD up, last error) last posted as the session's `BGPSessionState`.
    posted: Option<(State, bool, Option<String>)>,
}

/// The `error` label of a [`DownReason`]: names and numbers only, never a NOTIFICATION's data
/// (a shutdown communication is free text), so the label takes a bounded set of values.
fn error_label(reason: &DownReason) -> String {
    let notification = |dir: &str, n: &Notification| {
        let name = n.subcode_name().unwrap_or_else(|| n.code_name());
        format!("{dir} {name} ({}/{})", n.code, n.subcode)
    };
    match reason {
        DownReason::NotificationSent(n) => notification("sent", n),
        DownReason::NotificationReceived(n) => notification("received", n),
        DownReason::ConnectionClosed => "connection closed".to_string(),
        DownReason::ConnectFailed => "connect failed".to_string(),
    }
}

impl PeerTask {
    async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<PeerCmd>,
        mut io: mpsc::UnboundedReceiver<Io>,
    ) {
        self.input(Input::Start);
        let (forget_series, cease) = loop {
            let bfd = self.bfd.as_ref().and_then(Link::deadline);
            let deadline = self
                .timers
                .values()
                .min()
                .copied()
                .into_iter()
                .chain(bfd)
                .min();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(PeerCmd::Routes(routes)) => {
                        self.wanted = routes;
                        self.sync_routes();
                    }
                    Some(PeerCmd::Accepted(stream)) => self.accepted(stream),
                    Some(PeerCmd::Stop { forget, cease }) => break (forget, cease),
                    None => break (false, true),
                },
                Some(event) = io.recv() => self.io(event),
                () = sleep => self.fire_timers(),
            }
            self.export();
        };
        if cease {
            self.input(Input::Stop);
        } else {
            // Dropping the connections closes them (FIN) without a NOTIFICATION. The session
            // object goes with this task, so it never sees the close.
            tracing::info!("closing the connections without a NOTIFICATION (graceful restart)");
            self.conns.clear();
            // Then BFD, which must go Down at the peer while it holds our routes for the
            // restart: a BFD Down (even AdminDown) that FRR hears while the session is still
            // Established, or that reaches our next speaker's new session (our BFD expiring
            // after we are gone, or the new BFD session's first Down packets meeting the old
            // one still Up), ends the session hard with a Cease, stale routes and all. So:
            // after the close, with a moment for the peer to read it, and before we exit.
            if let Some(link) = self.bfd.as_mut() {
                tokio::time::sleep(ADMIN_DOWN_AFTER).await;
                link.handle(BfdInput::AdminDown);
            }
        }
        self.bfd = None; // the peer's BFD goes down with the session, by design
        if forget_series {
            self.forget_series();
        } else {
            self.export();
        }
        // Let the writers flush the Cease before the runtime drops everything.
        tokio::time::sleep(STOP_GRACE).await;
    }

    fn input(&mut self, input: Input<'_>) {
        let actions = self.session.handle(Instant::now(), input);
        self.act(actions);
    }

    fn act(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Connect => {
                    self.attempt += 1;
                    tracing::debug!(attempt = self.attempt, "connecting");
                    self.connecting = Some(conn::connect(
                        self.dial.clone(),
                        self.attempt,
                        self.io_tx.clone(),
                    ));
                }
                Action::Send(id, bytes) => {
                    if let Some(c) = self.conns.get(&id) {
                        c.send(bytes);
                    }
                }
                Action::Close(id) => {
                    self.conns.remove(&id);
                }
                Action::Schedule { timer, at } => {
                    self.timers.insert(timer, at);
                }
                Action::Cancel(timer) => {
                    self.timers.remove(&timer);
                }
                Action::Established => {
                    let n = self.session.negotiated();
                    tracing::info!(
                        peer_as = n.map(|n| n.peer_as),
                        hold = ?n.map(|n| n.hold_time),
                        "session established"
                    );
                }
                Action::Down { reason } => {
                    tracing::warn!(?reason, "session down");
                }
            }
        }
    }

    fn io(&mut self, event: Io) {
        match event {
            Io::Connected { attempt, stream } if attempt == self.attempt => {
                self.connecting = None;
                if let Some(id) = self.adopt(stream) {
                    self.input(Input::TcpConnected(id));
                } else {
                    self.input(Input::TcpFailed);
                }
            }
            Io::ConnectFailed { attempt, error } if attempt == self.attempt => {
                self.connecting = None;
                tracing::debug!("connection attempt failed: {error}");
                self.input(Input::TcpFailed);
            }
            Io::Connected { .. } | Io::ConnectFailed { .. } => {} // an abandoned attempt
            Io::Bytes(id, bytes) => self.input(Input::Bytes(id, &bytes)),
            Io::Closed(id) => {
                if self.conns.remove(&id).is_some() {
                    self.input(Input::TcpClosed(id));
                }
            }
            Io::Bfd(packet) => {
                let down = self
                    .bfd
                    .as_mut()
                    .is_some_and(|l| l.handle(BfdInput::Packet(packet)));
                if down {
                    self.input(Input::BfdDown);
                }
            }
        }
    }

    fn accepted(&mut self, stream: TcpStream) {
        if self.session.state() == State::Idle {
            return; // stopping; dropping the stream refuses it
        }
        // The SYN-ACK went out with the listener's TTL (255: one listener serves every peer);
        // every segment from here on carries this peer's, as on the connections we open. The
        // socket's own family decides which option applies.
        let v6 = stream
            .local_addr()
            .map_or(self.dial.peer.is_ipv6(), |a| a.is_ipv6());
        if let Err(e) = conn::set_ttl((&stream).into(), v6, self.dial.ttl) {
            // A session sent with the wrong TTL could cross routers it must not: refuse it.
            tracing::warn!(
                ttl = self.dial.ttl,
                "cannot set the TTL of an accepted connection: {e}"
            );
            return;
        }
        if let Some(id) = self.adopt(stream) {
            self.input(Input::TcpAccepted(id));
        }
    }

    /// Numbers a new connection, starts its I/O and takes its local address as next hop.
    fn adopt(&mut self, stream: TcpStream) -> Option<ConnId> {
        self.next_conn += 1;
        let id = ConnId(self.next_conn);
        let conn = Conn::start(id, stream, self.io_tx.clone())?;
        // Before the session sees the connection: it cannot be Established yet, so the
        // peer never gets a route with another next hop from it.
        let local = conn.local.ip().to_canonical();
        self.local = Some(local);
        self.conns.insert(id, conn);
        self.start_bfd(local);
        self.sync_routes();
        Some(id)
    }

    fn start_bfd(&mut self, local: IpAddr) {
        let (Some(config), None) = (self.bfd_config, &self.bfd) else {
            return;
        };
        let peer = self.dial.peer.ip();
        match Link::start(&self.hub, peer, local, config, self.io_tx.clone()) {
            Ok(link) => self.bfd = Some(link),
            Err(e) => {
                // Without BFD the hold timer still detects failures, only slower.
                tracing::error!("cannot start BFD: {e}");
                self.bfd_config = None;
            }
        }
    }

    fn fire_timers(&mut self) {
        if self.bfd.as_mut().is_some_and(Link::fire_timers) {
            self.input(Input::BfdDown);
        }
        for timer in take_due(&mut self.timers) {
            self.input(Input::Timer(timer));
        }
    }

    /// Hands the session the difference between the routes it has and the wanted ones with
    /// their next hops. Routes whose family has no next hop yet are held back.
    fn sync_routes(&mut self) {
        let ours = OurAddresses {
            local: self.local,
            source: self.dial.source,
            node: &self.wanted.node_addresses,
        };
        let want = with_next_hops(&self.wanted.routes, ours);
        let (withdraw, announce) = diff(&self.given, &want);
        self.given = want;
        if !withdraw.is_empty() {
            self.input(Input::Withdraw(withdraw));
        }
        if !announce.is_empty() {
            self.input(Input::Advertise(announce));
        }
    }

    fn export(&mut self) {
        let label = [self.name.as_str()];
        let m = &self.metrics;
        let up = self.session.state() == State::Established;
        m.bgp_session_up
            .with_label_values(&label)
            .set(i64::from(up));
        m.bgp_prefixes_advertised
            .with_label_values(&label)
            .set(self.session.prefixes_advertised() as i64);
        let bfd_up = self.bfd.as_ref().is_some_and(Link::is_up);
        m.bfd_session_up
            .with_label_values(&label)
            .set(i64::from(bfd_up));
        let sent = self.session.counters().updates_sent;
        m.bgp_updates_sent
            .with_label_values(&label)
            .inc_by(sent.saturating_sub(self.exported.updates_sent));
        self.exported.updates_sent = sent;
        let received = self.session.counters().updates_received;
        m.bgp_updates_received
            .with_label_values(&label)
            .inc_by(received.saturating_sub(self.exported.updates_received));
        self.exported.updates_received = received;
        let error = self.session.counters().last_error.as_ref().map(error_label);
        export_last_error(
            &m.bgp_last_error,
            &self.name,
            &mut self.exported.last_error,
            error,
        );
        self.post_state(bfd_up);
    }

    /// The same facts as the metrics (read back from what was just exported), for `kubectl get
    /// bgpsessionstates` and `ferrolb status`. Runs after every event of the session, so it
    /// builds and posts a state only when the session state, BFD or the last error changed.
    fn post_state(&mut self, bfd_up: bool) {
        let state = self.session.state();
        let error = &self.exported.last_error;
        if matches!(&self.exported.posted, Some((s, b, e)) if *s == state && *b == bfd_up && e == error)
        {
            return;
        }
        self.exported.posted = Some((state, bfd_up, error.clone()));
        let up = state == State::Established;
        self.established_since = match (up, self.established_since) {
            (true, None) => Some(jiff::Timestamp::now()),
            (true, since) => since,
            (false, _) => None,
        };
        let bfd_status = match (&self.bfd_config, bfd_up) {
            (None, _) => BFD_NOT_CONFIGURED,
            (Some(_), true) => "Up",
            (Some(_), false) => "Down",
        };
        let state = BGPSessionStateStatus {
            node: String::new(),
            peer: self.name.clone(),
            peer_address: self.address.to_string(),
            bgp_status: format!("{state:?}"),
            established_since: self
                .established_since
                .map(|t| t.to_string())
                .unwrap_or_default(),
            bfd_status: bfd_status.to_string(),
            last_error: self.exported.last_error.clone().unwrap_or_default(),
        };
        self.sessions.post(&self.name, state);
    }

    /// Removes every series of this peer: a deleted `BGPPeer` must not go on reporting its
    /// last state (a session "up" forever on a dashboard).
    fn forget_series(&mut self) {
        self.sessions.forget(&self.name);
        let label = [self.name.as_str()];
        let m = &self.metrics;
        // Each fails only when the series is absent, which leaves nothing to remove.
        for gauge in [
            &m.bgp_session_up,
            &m.bgp_prefixes_advertised,
            &m.bfd_session_up,
        ] {
            let _ = gauge.remove_label_values(&label);
        }
        for counter in [&m.bgp_updates_sent, &m.bgp_updates_received] {
            let _ = counter.remove_label_values(&label);
        }
        export_last_error(
            &m.bgp_last_error,
            &self.name,
            &mut self.exported.last_error,
            None,
        );
    }
}

/// Sets `error` (the label of the peer's last error) to 1 and removes the previous error's
/// series, so a peer has at most one and `== 1` queries need no `max by`.
fn export_last_error(
    gauge: &IntGaugeVec,
    peer: &str,
    exported: &mut Option<String>,
    error: Option<String>,
) {
    if error == *exported {
        return;
    }
    if let Some(old) = exported.as_deref() {
        // Fails only when the series is absent, which leaves nothing to remove.
        let _ = gauge.remove_label_values(&[peer, old]);
    }
    if let Some(new) = error.as_deref() {
        gauge.with_label_values(&[peer, new]).set(1);
    }
    *exported = error;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_labels_name_the_error_and_drop_free_text() {
        // A shutdown communication's text must not reach the label (unbounded values).
        let shutdown = Notification::new(6, 2, b"\x0bmaintenance".to_vec());
        assert_eq!(
            error_label(&DownReason::NotificationReceived(shutdown)),
            "received Administrative Shutdown (6/2)"
        );
        let hold = Notification::new(4, 0, Vec::new());
        assert_eq!(
            error_label(&DownReason::NotificationSent(hold)),
            "sent Hold Timer Expired (4/0)"
        );
        assert_eq!(error_label(&DownReason::ConnectFailed), "connect failed");
    }

    #[test]
    fn export_keeps_one_last_error_series_per_peer() {
        let metrics = Metrics::new();
        let m = &metrics.bgp_last_error;
        let mut exported = None;
        for reason in [DownReason::ConnectFailed, DownReason::ConnectionClosed] {
            export_last_error(m, "p", &mut exported, Some(error_label(&reason)));
        }
        // Unchanged: nothing to do, the series stays.
        let same = Some(error_label(&DownReason::ConnectionClosed));
        export_last_error(m, "p", &mut exported, same);
        let text = metrics.render();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ferrolb_bgp_last_error_info{"))
            .collect();
        assert_eq!(
            series,
            ["ferrolb_bgp_last_error_info{error=\"connection closed\",peer=\"p\"} 1"]
        );
    }
}
